/*
 * api_llama.c - llama-server's own completion API on the same port, for the
 * clients written against it (llama.vim, llama.vscode, scripts that post to
 * /completion): POST /completion (also /completions) and POST /infill.
 *
 * A request is translated into the /v1/completions body it means (n_predict
 * -> max_tokens, json_schema -> response_format, the sampling fields under
 * their shared names) with llama-server's defaults where the client gives
 * nothing (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * repeat_last_n 64, n_predict -1: until the context is full; a model's
 * "parameters" in --models-file win over them), parsed by
 * srv_parse_request and routed as /v1/completions routes it (gateway,
 * ledger). llama.cpp's other samplers (typical_p, top_n_sigma, xtc_*,
 * mirostat*, dry_*, ignore_eos, min_keep, dynatemp_*, and samplers: the
 * chain's order) go through under their own names
 * (request_samplers.c). n_probs N (0..20; llama-server's alias "logprobs"
 * when it is absent) becomes the completions API's logprobs N: the answer's
 * completion_probabilities, one entry per generated token (its id, token,
 * bytes, logprob: the raw softmax, before any sampler) with its N likeliest
 * alternatives (top_logprobs); post_sampling_probs gives prob / top_probs
 * from the candidates the sampler chain kept instead (hearth_gen_params);
 * return_tokens fills "tokens" with the generated ids. Fields about
 * llama-server's own machinery
 * (cache_prompt: Hearth always reuses a slot's prefix; id_slot;
 * timings_per_token) are
 * ignored. n_predict 0 evaluates the prompt into a slot's cache and answers
 * an empty content (stop_type "limit"), as llama-server documents it. n_keep and n_discard are what
 * a context shift keeps and forgets (hearth serve --context-shift), as llama-server's.
 *
 * /infill builds the prompt as llama-server does (hearth_tokenize_infill:
 * input_extra chunks as repository context, the prefix's end and the
 * suffix's start kept for a batch of min(2048, the slot's context) tokens,
 * the extra context cut to the slot's context minus that batch minus twice
 * n_predict) and is answered by the local model only.
 *
 * The answer is llama-server's object: content, tokens, stop, stop_type
 * (eos/limit/word) and stopping_word, tokens_predicted / _evaluated /
 * _cached, timings, completion_probabilities with n_probs; streamed, one
 * "data: {content, tokens: [id], stop: false}" per generated token (with its
 * completion_probabilities entry; text released at the end without a token
 * comes with tokens []) and the whole object (stop: true, content "",
 * tokens [], no probabilities) at the end, without [DONE].
 */
#include "server.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- token probabilities (n_probs) ------------------------------------------------ */

enum { PIECE_MAX = 256 };

/* Bytes at the end of s[0..n) that start a character without finishing it
 * (llama-server leaves them out of "token"; "bytes" keeps them). */
static size_t incomplete_tail(const char *s, size_t n) {
    for (size_t i = 1; i <= 3 && i <= n; i++) {
        const unsigned char c = (unsigned char)s[n - i];
        const size_t need = (c & 0xE0) == 0xC0   ? 2
                            : (c & 0xF0) == 0xE0 ? 3
                            : (c & 0xF8) == 0xF0 ? 4
                                                 : 0;
        if (need) return need > i ? i : 0;
        if ((c & 0xC0) != 0x80) return 0; /* ASCII or a stray byte: nothing pending */
    }
    return 0;
}

/* id, token (the piece as text) and bytes of token id, onto o. */
static void add_piece(cJSON *o, const srv_model *m, int32_t id) {
    char raw[PIECE_MAX], text[3 * PIECE_MAX + 1];
    const size_t n = srv_token_bytes(m, id, raw, sizeof raw);
    srv_utf8_clean(raw, n - incomplete_tail(raw, n), text);
    cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "token", text);
    cJSON_AddItemToObject(o, "bytes", srv_bytes_json(raw, n));
}

/* logprob, or with post_sampling_probs prob; -inf (JSON has none) as the
 * lowest float, as llama-server writes it. */
static void add_prob(cJSON *o, float logprob, bool post) {
    if (post)
        cJSON_AddNumberToObject(o, "prob", exp((double)logprob));
    else
        cJSON_AddNumberToObject(o, "logprob", logprob >= -FLT_MAX ? logprob : -FLT_MAX);
}

/* One generated token's completion_probabilities entry. */
static cJSON *token_entry(const srv_model *m, const srv_event *e, bool post) {
    cJSON *o = cJSON_CreateObject();
    add_piece(o, m, e->id);
    add_prob(o, post ? e->post_logprob : e->logprob, post);
    cJSON *top = cJSON_AddArrayToObject(o, post ? "top_probs" : "top_logprobs");
    for (int k = 0; k < e->n_top; k++) {
        cJSON *a = cJSON_CreateObject();
        add_piece(a, m, e->top[k].id);
        add_prob(a, e->top[k].logprob, post);
        cJSON_AddItemToArray(top, a);
    }
    return o;
}

/* Whether the request asked for probabilities (n_probs > 0, which came as
 * logprobs). */
static bool wants_probs(const srv_request *r) { return r->logprobs && r->top_logprobs > 0; }

/* ---- the answer ------------------------------------------------------------------ */

/* What ended the generation, as llama-server says it. */
static const char *stop_type(char *const *stop, int n_stop, const srv_job *j, const char **word) {
    *word = "";
    if (strcmp(srv_finish_reason(j), "stop")) return "limit";
    const int k = j->result.stop_index;
    if (k >= 0 && k < n_stop) {
        *word = stop[k];
        return "word";
    }
    return "eos";
}

static void add_rate(cJSON *t, const char *per_token, const char *per_second, double ms, int n) {
    cJSON_AddNumberToObject(t, per_token, n > 0 ? ms / n : 0);
    cJSON_AddNumberToObject(t, per_second, ms > 0 ? 1e3 * n / ms : 0);
}

/* The final object: the content (final stream chunk: "") and what llama-
 * server reports beside it. */
static cJSON *final_object(const char *model, char *const *stop, int n_stop, const srv_job *j,
                           const char *text, size_t len) {
    cJSON *o = cJSON_CreateObject();
    const char *word;
    const char *type = stop_type(stop, n_stop, j, &word);
    cJSON_AddNumberToObject(o, "index", j->choice);
    cJSON_AddItemToObject(o, "content", srv_json_string(text, len));
    cJSON_AddArrayToObject(o, "tokens");
    cJSON_AddNumberToObject(o, "id_slot", j->slot);
    cJSON_AddTrueToObject(o, "stop");
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddNumberToObject(o, "tokens_predicted", j->result.n_gen);
    cJSON_AddNumberToObject(o, "tokens_evaluated", j->result.n_prompt + j->result.n_cached);
    cJSON_AddBoolToObject(o, "has_new_line", len && memchr(text, '\n', len) != NULL);
    cJSON_AddBoolToObject(o, "truncated", false);
    cJSON_AddStringToObject(o, "stop_type", type);
    cJSON_AddStringToObject(o, "stopping_word", word);
    cJSON_AddNumberToObject(o, "tokens_cached", j->result.n_cached);
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(t, "prompt_n", j->result.n_prompt);
    cJSON_AddNumberToObject(t, "prompt_ms", j->result.prompt_ms);
    add_rate(t, "prompt_per_token_ms", "prompt_per_second", j->result.prompt_ms,
             j->result.n_prompt);
    cJSON_AddNumberToObject(t, "predicted_n", j->result.n_gen);
    cJSON_AddNumberToObject(t, "predicted_ms", j->result.gen_ms);
    add_rate(t, "predicted_per_token_ms", "predicted_per_second", j->result.gen_ms,
             j->result.n_gen);
    return o;
}

/* One job's final object (a prompt's answer). */
static cJSON *response_object(const srv_gen *g, const srv_job *j) {
    const srv_request *r = g->req;
    /* the job's stop strings are the model's when the request gave none */
    cJSON *o =
        final_object(srv_asked_model(g), j->n_stop ? j->stop : r->stop,
                     j->n_stop ? j->n_stop : r->n_stop, j, j->text ? j->text : "", j->text_len);
    /* a remote tier's answer (its events carry no token) has neither */
    cJSON *tokens = cJSON_GetObjectItemCaseSensitive(o, "tokens"), *probs = cJSON_CreateArray();
    for (int i = 0; i < j->n_events; i++) {
        const srv_event *e = &j->events[i];
        if (e->id < 0) continue;
        if (r->return_tokens) cJSON_AddItemToArray(tokens, cJSON_CreateNumber(e->id));
        if (wants_probs(r))
            cJSON_AddItemToArray(probs, token_entry(g->local, e, r->post_sampling_probs));
    }
    if (cJSON_GetArraySize(probs))
        cJSON_AddItemToObject(o, "completion_probabilities", probs);
    else
        cJSON_Delete(probs);
    return o;
}

char *srv_llama_response_json(const srv_gen *g, srv_job *const *jobs, int n) {
    cJSON *o = n == 1 ? response_object(g, jobs[0]) : cJSON_CreateArray();
    for (int i = 0; n > 1 && i < n; i++) cJSON_AddItemToArray(o, response_object(g, jobs[i]));
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

/* ---- the answer streamed (srv_llama_stream) ---------------------------------------- */

typedef struct llama_stream {
    char *model;
    char *stop[SRV_MAX_STOP]; /* the request's stop strings, for stopping_word */
    int n_stop;
    bool probs, post; /* n_probs > 0; post_sampling_probs */
    int index;        /* the choice's (several prompts) */
} llama_stream;

static void ls_close(void *p) {
    llama_stream *st = p;
    if (!st) return;
    for (int i = 0; i < st->n_stop; i++) free(st->stop[i]);
    free(st->model);
    free(st);
}

static void *ls_open(const srv_request *r, const char *model, const srv_job *j) {
    llama_stream *st = calloc(1, sizeof *st);
    bool ok = st && (st->model = strdup(model));
    if (ok) {
        st->probs = wants_probs(r);
        st->post = r->post_sampling_probs;
        st->index = j->choice;
    }
    for (int i = 0; ok && i < r->n_stop; i++) {
        ok = (st->stop[i] = strdup(r->stop[i])) != NULL;
        st->n_stop = i + 1;
    }
    if (!ok) {
        ls_close(st);
        return NULL;
    }
    return st;
}

static void ls_head(void *p, srv_emit_fn emit, void *user) {
    (void)p, (void)emit, (void)user; /* llama-server sends nothing before the text */
}

/* A partial object: text, stop false; its "tokens" array into *tokens. */
static cJSON *partial(const llama_stream *st, const char *text, size_t len, cJSON **tokens) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", st->index);
    cJSON_AddItemToObject(o, "content", srv_json_string(text, len));
    *tokens = cJSON_AddArrayToObject(o, "tokens");
    cJSON_AddFalseToObject(o, "stop");
    return o;
}

/* Text without a token (released at the end). */
static void ls_text(void *p, const char *text, size_t len, srv_emit_fn emit, void *user) {
    cJSON *tokens;
    emit(user, partial(p, text, len, &tokens));
}

void srv_llama_stream_token(void *p, const srv_model *m, const srv_job *j, int ev, srv_emit_fn emit,
                            void *user) {
    const llama_stream *st = p;
    const srv_event *e = &j->events[ev];
    cJSON *tokens, *o = partial(st, j->text + e->text_off, e->text_len, &tokens);
    cJSON_AddItemToArray(tokens, cJSON_CreateNumber(e->id));
    if (st->probs)
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "completion_probabilities"),
                             token_entry(m, e, st->post));
    emit(user, o);
}

static void ls_call(void *p, const struct srv_call_out *c, srv_emit_fn emit, void *user) {
    (void)p, (void)c, (void)emit, (void)user; /* no tools on these routes */
}

static void ls_end(void *p, const srv_job *j, bool calls, srv_emit_fn emit, void *user) {
    (void)calls;
    const llama_stream *st = p;
    emit(user, final_object(st->model, j->n_stop ? j->stop : st->stop,
                            j->n_stop ? j->n_stop : st->n_stop, j, "", 0));
}

static void ls_fail(void *p, const srv_error *e, srv_emit_fn emit, void *user) {
    (void)p;
    char *json = srv_error_json(e);
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    free(json);
    if (o) emit(user, o);
}

/* a completion has no reasoning split off (its text is the model's, raw) */
const srv_typed_ops srv_llama_stream = {ls_open, ls_head, ls_text,  NULL, ls_call,
                                        ls_end,  ls_fail, ls_close, NULL};

/* ---- the request: llama-server's body as OpenAI's ----------------------------------- */

static const cJSON *given(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* n_probs (llama-server reads "logprobs" when it is absent) as the
 * completions API's logprobs, and the booleans beside it. llama-server
 * takes any n_probs (a negative one as 0, more than the vocabulary as all
 * of it); Hearth's events hold SRV_MAX_LOGPROBS alternatives, so more is a
 * 400 rather than fewer than asked. */
static bool probs_fields(const cJSON *root, cJSON *out, srv_error *e) {
    const char *name = "n_probs";
    const cJSON *v = given(root, name);
    if (!v && (v = given(root, "logprobs"))) name = "logprobs";
    if (v && (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
              v->valuedouble > SRV_MAX_LOGPROBS))
        return srv_fail(e, 400, name, NULL,
                        "'%s' must be a whole number from 0 (off) to %d (the most alternatives "
                        "per token Hearth gives)",
                        name, (int)SRV_MAX_LOGPROBS);
    if (v && v->valuedouble > 0) cJSON_AddNumberToObject(out, "logprobs", v->valuedouble);
    static const char *const flags[] = {"post_sampling_probs", "return_tokens"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const cJSON *f = given(root, flags[i]);
        if (f && !cJSON_IsBool(f))
            return srv_fail(e, 400, flags[i], NULL, "'%s' must be a boolean", flags[i]);
    }
    return true;
}

/* The /v1/completions body of a llama-server body; *repeat_last_n gets
 * repeat_last_n (-1: the context). *mapped gets the settings translated with
 * llama-server's defaults, *client those of them the client gave (the
 * defaults yield to a model's parameters). For /infill the prompt is left
 * out (its tokens are built apart). */
static bool translate(const cJSON *root, bool infill, cJSON *out, int *repeat_last_n,
                      unsigned *mapped, unsigned *client, srv_error *e) {
    static const struct {
        const char *name, *openai;
        double def; /* NAN: none */
        srv_param p;
    } map[] = {
        {"temperature", "temperature", 0.8, SRV_P_TEMPERATURE},
        {"top_k", "top_k", 40, SRV_P_TOP_K},
        {"top_p", "top_p", 0.95, SRV_P_TOP_P},
        {"min_p", "min_p", 0.05, SRV_P_MIN_P},
        {"seed", "seed", NAN, SRV_P_SEED},
        {"repeat_penalty", "repeat_penalty", NAN, SRV_P_REPEAT_PENALTY},
        {"presence_penalty", "presence_penalty", NAN, SRV_P_PRESENCE_PENALTY},
        {"frequency_penalty", "frequency_penalty", NAN, SRV_P_FREQUENCY_PENALTY},
        {"n_predict", "max_tokens", NAN, SRV_P_MAX_TOKENS},
    };
    if (!cJSON_IsObject(root))
        return srv_fail(e, 400, NULL, "invalid_json", "the body must be a JSON object");
    if (!probs_fields(root, out, e)) return false;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const cJSON *v = given(root, map[i].name);
        if (v && !cJSON_IsNumber(v))
            return srv_fail(e, 400, map[i].name, NULL, "'%s' must be a number", map[i].name);
        const double d = v ? v->valuedouble : map[i].def;
        *mapped |= SRV_GIVEN(map[i].p);
        *client |= v ? SRV_GIVEN(map[i].p) : 0;
        if (isnan(d)) continue;
        if (!strcmp(map[i].name, "n_predict") && d < 0) continue; /* -1: no limit */
        cJSON_AddNumberToObject(out, map[i].openai, d);
    }
    const cJSON *rln = given(root, "repeat_last_n");
    if (rln && (!cJSON_IsNumber(rln) || rln->valuedouble != floor(rln->valuedouble) ||
                rln->valuedouble < -1 || rln->valuedouble > 1e9))
        return srv_fail(e, 400, "repeat_last_n", NULL,
                        "'repeat_last_n' must be -1 (the context), 0 (off) or more");
    *repeat_last_n = rln ? (int)rln->valuedouble : 64;
    *mapped |= SRV_GIVEN(SRV_P_REPEAT_LAST_N);
    *client |= rln ? SRV_GIVEN(SRV_P_REPEAT_LAST_N) : 0;
    static const char *const same[] = {
        "model", "stop", "stream", "logit_bias", "grammar", "n_keep", "n_discard",
        /* llama.cpp's other samplers (request_samplers.c) */
        "ignore_eos", "typical_p", "top_n_sigma", "xtc_probability", "xtc_threshold", "mirostat",
        "mirostat_tau", "mirostat_eta", "dry_multiplier", "dry_base", "dry_allowed_length",
        "dry_penalty_last_n", "dry_sequence_breakers", "min_keep", "dynatemp_range",
        "dynatemp_exponent", "samplers"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const cJSON *v = given(root, same[i]);
        if (v) cJSON_AddItemToObject(out, same[i], cJSON_Duplicate(v, true));
    }
    const cJSON *schema = given(root, "json_schema");
    if (schema) {
        if (!cJSON_IsObject(schema))
            return srv_fail(e, 400, "json_schema", NULL, "'json_schema' must be an object");
        cJSON *rf = cJSON_AddObjectToObject(out, "response_format");
        cJSON_AddStringToObject(rf, "type", "json_schema");
        cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
        cJSON_AddStringToObject(js, "name", "json_schema");
        cJSON_AddItemToObject(js, "schema", cJSON_Duplicate(schema, true));
    }
    const cJSON *prompt = given(root, "prompt");
    if (infill) { /* the request's text (for the log and the guard): the code around the cursor */
        const cJSON *pre = given(root, "input_prefix"), *suf = given(root, "input_suffix");
        if (prompt && !cJSON_IsString(prompt))
            return srv_fail(e, 400, "prompt", NULL, "'prompt' must be a string");
        if (!cJSON_IsString(pre) || !cJSON_IsString(suf))
            return srv_fail(e, 400, cJSON_IsString(pre) ? "input_suffix" : "input_prefix", NULL,
                            "'input_prefix' and 'input_suffix' are required strings");
        cJSON_AddStringToObject(out, "prompt", pre->valuestring);
        cJSON_AddStringToObject(out, "suffix", suf->valuestring);
    } else if (!prompt) {
        return srv_fail(e, 400, "prompt", NULL, "'prompt' is required");
    } else {
        cJSON_AddItemToObject(out, "prompt", cJSON_Duplicate(prompt, true));
    }
    return true;
}

bool srv_llama_parse(const char *body, size_t len, bool infill, srv_request *r, int *repeat_last_n,
                     cJSON **root_out, srv_error *e) {
    cJSON *root = cJSON_ParseWithLength(body, len), *out = cJSON_CreateObject();
    char *openai = NULL;
    unsigned mapped = 0, client = 0;
    bool ok = root ? translate(root, infill, out, repeat_last_n, &mapped, &client, e)
                   : srv_fail(e, 400, NULL, "invalid_json", "the body is not valid JSON");
    if (ok && !(openai = cJSON_PrintUnformatted(out)))
        ok = srv_fail(e, 500, NULL, NULL, "out of memory");
    cJSON_Delete(out);
    ok = ok && srv_parse_request(SRV_COMPLETION, openai, strlen(openai), r, e);
    free(openai);
    if (ok) {
        r->dialect = SRV_DIALECT_LLAMA;
        /* the translated settings' bits are what the client gave; the fields
         * passed through (stop, samplers, typical_p, ...) keep the parser's */
        r->given = client | (r->given & ~mapped);
        r->post_sampling_probs = cJSON_IsTrue(given(root, "post_sampling_probs"));
        r->return_tokens = cJSON_IsTrue(given(root, "return_tokens"));
    }
    if (ok && root_out)
        *root_out = root;
    else
        cJSON_Delete(root);
    return ok;
}

/* srv_llama_parse of x's body; false when x was answered. */
static bool parse(srv_exchange *x, bool infill, cJSON **root, srv_request *r, int *repeat_last_n) {
    srv_error e;
    *root = NULL;
    if (!srv_llama_parse(x->body, x->body_len, infill, r, repeat_last_n, root, &e)) {
        srv_respond_error(x, &e);
        return false;
    }
    r->t0_ms = x->t0_ms;
    return true;
}

/* The model, with repeat_last_n in the request (-1: the slot's context). */
static const srv_model *use_model(srv_exchange *x, srv_request *r, int repeat_last_n) {
    const srv_model *m = srv_model_use(x, r->model);
    if (m)
        r->sampling.penalty_last_n = repeat_last_n < 0 ? srv_sched_n_ctx(m->sched) : repeat_last_n;
    return m;
}

void srv_handle_llama_completion(srv_exchange *x) {
    cJSON *root = NULL;
    srv_request r;
    int repeat_last_n;
    if (parse(x, false, &root, &r, &repeat_last_n)) {
        if (use_model(x, &r, repeat_last_n)) srv_complete(x, &r);
        srv_request_free(&r);
    }
    cJSON_Delete(root);
}

/* input_extra: an array of {"text": string, "filename"?: string}. */
static bool extra_chunks(const cJSON *a, hearth_infill_chunk **out, int *n, srv_error *e) {
    *out = NULL;
    *n = 0;
    if (!a) return true;
    if (!cJSON_IsArray(a))
        return srv_fail(e, 400, "input_extra", NULL,
                        "'input_extra' must be an array of {\"filename\": string, \"text\": "
                        "string}");
    const int count = cJSON_GetArraySize(a);
    if (count && !(*out = calloc((size_t)count, sizeof **out)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    const cJSON *c;
    cJSON_ArrayForEach(c, a) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "filename");
        if (!cJSON_IsString(text) || (name && !cJSON_IsString(name))) {
            free(*out);
            *out = NULL;
            return srv_fail(e, 400, "input_extra", NULL,
                            "input_extra[%d] must have a string \"text\" (and may have a string "
                            "\"filename\")",
                            *n);
        }
        assert(*out); /* count > 0 */
        (*out)[(*n)++] = (hearth_infill_chunk){name ? name->valuestring : NULL, text->valuestring};
    }
    return true;
}

void srv_handle_infill(srv_exchange *x) {
    srv_server *s = x->srv;
    cJSON *root = NULL;
    srv_request r;
    int repeat_last_n;
    if (!parse(x, true, &root, &r, &repeat_last_n)) {
        cJSON_Delete(root);
        return;
    }
    srv_error e;
    const cJSON *pre = given(root, "input_prefix"), *suf = given(root, "input_suffix");
    const cJSON *prompt = given(root, "prompt");
    hearth_infill_chunk *chunks = NULL;
    int n_chunks = 0, n = 0;
    int32_t *ids = NULL;
    const srv_model *m = NULL;
    bool answered = false;
    bool ok = extra_chunks(given(root, "input_extra"), &chunks, &n_chunks, &e);
    if (ok && !(m = use_model(x, &r, repeat_last_n))) ok = !(answered = true);
    if (ok) {
        /* llama-server's cuts, with its batch of 2048 tokens (at most the context) */
        const int n_ctx = srv_sched_n_ctx(m->sched), n_batch = n_ctx < 2048 ? n_ctx : 2048;
        srv_settings st;
        srv_model_settings(m, &r, &st);
        const int n_predict = srv_prompt_only(&r) ? 0 : st.max_tokens > 0 ? st.max_tokens : -1;
        const int room = n_ctx - n_batch - 2 * n_predict;
        const hearth_infill in = {
            .prefix = pre->valuestring,
            .prefix_len = strlen(pre->valuestring),
            .suffix = suf->valuestring,
            .suffix_len = strlen(suf->valuestring),
            .prompt = prompt ? prompt->valuestring : NULL,
            .prompt_len = prompt ? strlen(prompt->valuestring) : 0,
            .extra = chunks,
            .n_extra = n_chunks,
            .n_batch = n_batch,
            .n_extra_max = room > 0 ? room : 0,
        };
        ok = srv_tokenize_infill(x, m, &r, &in, "input_prefix", &ids, &n, &e);
        if (ok && s->cfg.log_prompts) x->log_prompt = strdup(pre->valuestring);
    }
    if (ok)
        srv_gateway_route(x, &r, &ids, n);
    else if (!answered)
        srv_respond_error(x, &e);
    free(ids);
    free(chunks);
    srv_request_free(&r);
    cJSON_Delete(root);
}
