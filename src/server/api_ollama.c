/*
 * api_ollama.c - ollama's generation API on the same port as OpenAI's:
 * POST /api/chat and POST /api/generate (ollama's docs/api.md).
 *
 * An ollama request is translated into the OpenAI body it means (messages,
 * stream, max_tokens from options.num_predict, the sampling options, stop,
 * response_format from "format") and parsed by srv_parse_request, so both
 * APIs share one validation; what the OpenAI body cannot say
 * (options.repeat_last_n) is set on the parsed request. Ollama's defaults
 * apply where the client gives nothing (temperature 0.8, top_k 40, top_p 0.9,
 * repeat_penalty 1.1, repeat_last_n 64, num_predict -1: no limit), unless the
 * model's "parameters" (--models-file) say otherwise, as a Modelfile's
 * PARAMETER lines do. As in ollama, a generation that fills the context
 * shifts it (keeping options.num_keep tokens, 4 by default, and forgetting
 * half of the rest) and goes on, unless the request says "shift": false;
 * one without num_predict stops after 10 times the context, as ollama's.
 * The request then goes the way /v1/chat/completions goes: the chat
 * template, the tokenizer, srv_gateway_route (privacy guard, ledger,
 * cascade) and api_gen.c / sse.c, which write ollama's objects because the
 * request's dialect says so. x->body stays the client's ollama body: what a
 * remote tier gets (temperature, top_p) comes from the parsed request (the
 * client's values or ollama's defaults, never the model's parameters).
 *
 * /api/generate renders {system?, user: prompt} with the chat template as
 * ollama applies the model's template; raw: true sends the prompt as it is
 * (a /v1/completions request). An empty prompt (or an empty chat) is
 * ollama's "load" request: answered at once with done_reason "load".
 *
 * /api/generate's suffix is fill in the middle: the prompt is the code before
 * the cursor (a /v1/completions request with "suffix", answered locally).
 *
 * Images (a message's on /api/chat, /api/generate's with its prompt) become
 * OpenAI image parts, the images before the text; raw and suffix take none.
 * Not supported, with a 400: template overrides, a non-empty
 * context, tools (use /v1/chat/completions). keep_alive sets how long the
 * model stays loaded once the request is done (models.c; an empty prompt
 * with keep_alive 0 unloads it: done_reason "unload"). Ignored: the options
 * that do not apply to a model already loaded with its context (num_ctx,
 * num_batch, num_gpu, num_thread, ...). typical_p and mirostat* are
 * llama.cpp's samplers, as in ollama.
 */
#include "server.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the answer's objects ---------------------------------------------------- */

cJSON *srv_ollama_head(const srv_model *m, const srv_request *r, const char *model) {
    cJSON *o = cJSON_CreateObject();
    if (!model) model = r && r->model && r->model[0] ? r->model : m->id;
    cJSON_AddStringToObject(o, "model", model);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64], frac[16];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(frac, sizeof frac, ".%09ldZ", ts.tv_nsec);
    strncat(when, frac, sizeof when - strlen(when) - 1);
    cJSON_AddStringToObject(o, "created_at", when);
    return o;
}

void srv_ollama_piece(cJSON *o, srv_dialect d, const char *text, size_t len) {
    if (d == SRV_DIALECT_OLLAMA_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(o, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddItemToObject(m, "content", srv_json_string(text, len));
    } else {
        cJSON_AddItemToObject(o, "response", srv_json_string(text, len));
    }
}

void srv_ollama_thinking(cJSON *o, srv_dialect d, const char *text, size_t len) {
    cJSON *at = d == SRV_DIALECT_OLLAMA_CHAT ? cJSON_GetObjectItemCaseSensitive(o, "message") : o;
    if (at) cJSON_AddItemToObject(at, "thinking", srv_json_string(text, len));
}

static double ns(double ms) { return ms > 0 ? floor(ms * 1e6) : 0; }

void srv_ollama_done(cJSON *o, const srv_request *r, const srv_job *j) {
    cJSON_AddTrueToObject(o, "done");
    cJSON_AddStringToObject(o, "done_reason", srv_finish_reason(j));
    const double total_ms = r && r->t0_ms > 0 ? srv_now_ms() - r->t0_ms : 0;
    cJSON_AddNumberToObject(o, "total_duration", ns(total_ms));
    cJSON_AddNumberToObject(o, "load_duration", 0); /* the model is loaded at start-up */
    cJSON_AddNumberToObject(o, "prompt_eval_count", j->result.n_prompt + j->result.n_cached);
    cJSON_AddNumberToObject(o, "prompt_eval_duration", ns(j->result.prompt_ms));
    cJSON_AddNumberToObject(o, "eval_count", j->result.n_gen);
    cJSON_AddNumberToObject(o, "eval_duration", ns(j->result.gen_ms));
}

char *srv_ollama_response_json(const srv_gen *g, const srv_job *j) {
    cJSON *o = srv_ollama_head(g->local, g->req, g->model);
    srv_ollama_piece(o, g->req->dialect, j->text ? j->text : "", j->text_len);
    if (j->reasoning_len) srv_ollama_thinking(o, g->req->dialect, j->reasoning, j->reasoning_len);
    srv_ollama_done(o, g->req, j);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

/* ---- the request: ollama's body as OpenAI's ------------------------------------ */

static const cJSON *given(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* ollama's options: the OpenAI body's field and ollama's default. */
static const struct {
    const char *name, *openai; /* openai NULL: not a field of the OpenAI body */
    double def;                /* NAN: no default */
    bool integer;
    srv_param p;
} options[] = {
    {"temperature", "temperature", 0.8, false, SRV_P_TEMPERATURE},
    {"top_p", "top_p", 0.9, false, SRV_P_TOP_P},
    {"top_k", "top_k", 40, true, SRV_P_TOP_K},
    {"min_p", "min_p", NAN, false, SRV_P_MIN_P},
    {"seed", "seed", NAN, true, SRV_P_SEED},
    {"repeat_penalty", "repeat_penalty", 1.1, false, SRV_P_REPEAT_PENALTY},
    {"presence_penalty", "presence_penalty", NAN, false, SRV_P_PRESENCE_PENALTY},
    {"frequency_penalty", "frequency_penalty", NAN, false, SRV_P_FREQUENCY_PENALTY},
    {"num_predict", "max_tokens", NAN, true, SRV_P_MAX_TOKENS},
    {"repeat_last_n", NULL, 64, true, SRV_P_REPEAT_LAST_N},
};

/* options -> the OpenAI body's sampling fields, those the client gave;
 * *given_mask gets each option given, also those the body cannot say
 * (repeat_last_n; num_predict <= 0: no limit; top_k <= 0: off). ollama's
 * defaults come after parsing (apply_defaults), so that a model's
 * parameters win over them. */
static bool translate_options(const cJSON *opts, cJSON *out, int *repeat_last_n,
                              unsigned *given_mask, srv_error *e) {
    if (opts && !cJSON_IsObject(opts))
        return srv_fail(e, 400, "options", NULL, "'options' must be an object");
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const cJSON *v = opts ? given(opts, options[i].name) : NULL;
        if (!v) continue;
        if (!cJSON_IsNumber(v))
            return srv_fail(e, 400, "options", NULL, "options.%s must be a number",
                            options[i].name);
        const double d = v->valuedouble;
        *given_mask |= SRV_GIVEN(options[i].p);
        if (options[i].integer && d != floor(d))
            return srv_fail(e, 400, "options", NULL, "options.%s must be an integer",
                            options[i].name);
        if (!strcmp(options[i].name, "num_predict") && d <= 0) continue; /* -1, -2: no limit */
        if (!strcmp(options[i].name, "top_k") && d <= 0) continue;       /* ollama: <= 0 is off */
        if (!options[i].openai) {
            if (d < -1 || d > 1e9)
                return srv_fail(e, 400, "options", NULL,
                                "options.repeat_last_n must be -1 (the context), 0 (off) or more");
            *repeat_last_n = (int)d;
            continue;
        }
        cJSON_AddNumberToObject(out, options[i].openai, d);
    }
    /* llama.cpp's samplers ollama passes on (its defaults are llama.cpp's):
     * checked as the OpenAI body's fields of the same names */
    static const char *const samplers[] = {"typical_p", "mirostat", "mirostat_tau", "mirostat_eta"};
    for (size_t i = 0; opts && i < sizeof samplers / sizeof *samplers; i++) {
        const cJSON *v = given(opts, samplers[i]);
        if (v) cJSON_AddItemToObject(out, samplers[i], cJSON_Duplicate(v, true));
    }
    const cJSON *stop = opts ? given(opts, "stop") : NULL;
    if (stop) cJSON_AddItemToObject(out, "stop", cJSON_Duplicate(stop, true));
    /* what a context shift keeps: llama.cpp's n_keep, counted from the
     * first token (ollama's; negative or longer than the prompt: all) */
    const cJSON *keep = opts ? given(opts, "num_keep") : NULL;
    if (keep && (!cJSON_IsNumber(keep) || keep->valuedouble != floor(keep->valuedouble) ||
                 fabs(keep->valuedouble) > 1e9))
        return srv_fail(e, 400, "options", NULL, "options.num_keep must be an integer");
    if (keep)
        cJSON_AddNumberToObject(out, "n_keep", keep->valuedouble < 0 ? -1 : keep->valuedouble);
    return true;
}

/* ollama's defaults for the options the client did not give (given: those
 * the OpenAI body could not say). */
static void apply_defaults(srv_request *r, unsigned given_mask) {
    r->given |= given_mask;
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (options[i].openai && !isnan(options[i].def))
            srv_request_default(r, options[i].p, options[i].def);
}

/* format: "json" (JSON mode), a JSON Schema object (structured output), or
 * "" / absent (text). */
static bool translate_format(const cJSON *fmt, cJSON *out, srv_error *e) {
    if (!fmt || (cJSON_IsString(fmt) && !fmt->valuestring[0])) return true;
    cJSON *rf = cJSON_AddObjectToObject(out, "response_format");
    if (cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "json")) {
        cJSON_AddStringToObject(rf, "type", "json_object");
        return true;
    }
    if (!cJSON_IsObject(fmt))
        return srv_fail(e, 400, "format", NULL,
                        "'format' must be \"json\" or a JSON Schema object");
    cJSON_AddStringToObject(rf, "type", "json_schema");
    cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
    cJSON_AddStringToObject(js, "name", "format");
    cJSON_AddItemToObject(js, "schema", cJSON_Duplicate(fmt, true));
    return true;
}

/* think: true or false turns a reasoning model's thinking on or off
 * (enable_thinking; absent: the template's default). Its thinking comes
 * back in "thinking" either way. ollama's levels ("low", "high") are for
 * models that have them, which Hearth does not run. */
static bool translate_think(const cJSON *think, cJSON *out, srv_error *e) {
    if (!think) return true;
    if (!cJSON_IsBool(think))
        return srv_fail(e, 400, "think", NULL,
                        "'think' must be true or false (thinking levels are not supported)");
    cJSON *kw = cJSON_AddObjectToObject(out, "chat_template_kwargs");
    cJSON_AddBoolToObject(kw, "enable_thinking", cJSON_IsTrue(think));
    return true;
}

/* What neither route supports: a 400 naming it. */
static bool refuse_unsupported(const cJSON *root, srv_error *e) {
    const cJSON *v;
    if ((v = given(root, "tools")) && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 0))
        return srv_fail(e, 400, "tools", NULL,
                        "tools are not supported on /api/chat; use /v1/chat/completions");
    if ((v = given(root, "suffix")) && !cJSON_IsString(v))
        return srv_fail(e, 400, "suffix", NULL, "'suffix' must be a string");
    if ((v = given(root, "template")) && (!cJSON_IsString(v) || v->valuestring[0]))
        return srv_fail(e, 400, "template", NULL,
                        "'template' overrides are not supported (start the server with "
                        "--chat-template)");
    if ((v = given(root, "context")) && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 0))
        return srv_fail(e, 400, "context", NULL,
                        "'context' (deprecated by ollama) is not supported: send the messages "
                        "to /api/chat");
    return true;
}

/* A message's "images" (base64 strings; `where` names them in errors) and
 * content as OpenAI's parts: the images first, then the text
 * (docs/vision.md). */
static bool image_parts(const cJSON *im, const cJSON *content, const char *where, cJSON *c,
                        srv_error *e) {
    cJSON *parts = cJSON_AddArrayToObject(c, "content");
    const cJSON *b;
    cJSON_ArrayForEach(b, im) {
        if (!cJSON_IsString(b))
            return srv_fail(e, 400, "images", NULL, "%s must hold base64 strings", where);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToArray(parts, p);
        cJSON_AddStringToObject(p, "type", "image_url");
        cJSON_AddItemToObject(cJSON_AddObjectToObject(p, "image_url"), "url",
                              cJSON_Duplicate(b, false));
    }
    if (content) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(parts, t);
        cJSON_AddStringToObject(t, "type", "text");
        cJSON_AddItemToObject(t, "text", cJSON_Duplicate(content, false));
    }
    return true;
}

/* messages: role and content as they are (OpenAI's roles are ollama's),
 * images as image parts. */
static bool translate_messages(const cJSON *msgs, cJSON *out, srv_error *e) {
    if (!cJSON_IsArray(msgs))
        return srv_fail(e, 400, "messages", NULL, "'messages' must be an array");
    cJSON *a = cJSON_AddArrayToObject(out, "messages");
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m))
            return srv_fail(e, 400, "messages", NULL, "messages[%d] must be an object", i);
        const cJSON *im = given(m, "images"), *tc = given(m, "tool_calls");
        if (im && !cJSON_IsArray(im))
            return srv_fail(e, 400, "messages", NULL, "messages[%d].images must be an array", i);
        if (tc && (!cJSON_IsArray(tc) || cJSON_GetArraySize(tc) > 0))
            return srv_fail(e, 400, "messages", NULL,
                            "messages[%d].tool_calls: tools are not supported on /api/chat", i);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(a, c);
        const cJSON *role = given(m, "role"), *content = given(m, "content");
        if (role) cJSON_AddItemToObject(c, "role", cJSON_Duplicate(role, true));
        if (im && cJSON_GetArraySize(im) > 0) {
            if (content && !cJSON_IsString(content))
                return srv_fail(e, 400, "messages", NULL, "messages[%d].content must be a string",
                                i);
            char where[48];
            snprintf(where, sizeof where, "messages[%d].images", i);
            if (!image_parts(im, content, where, c, e)) return false;
        } else if (content) {
            cJSON_AddItemToObject(c, "content", cJSON_Duplicate(content, true));
        }
    }
    return true;
}

typedef struct ollama_req {
    cJSON *root;   /* the client's body */
    char *openai;  /* the translated body */
    bool load;     /* an empty prompt or chat: answer "load" (or "unload") at once */
    srv_kind kind; /* generate with raw: a completion */
    int repeat_last_n;
    unsigned given; /* the options given (SRV_GIVEN) */
    int shift;      /* "shift": 1, 0; -1: not given (ollama: on) */
} ollama_req;

static bool translate(srv_exchange *x, srv_dialect d, ollama_req *q, srv_error *e) {
    size_t bad;
    if (!hr_utf8_valid(x->body, x->body_len, &bad))
        return srv_fail(e, 400, NULL, NULL, "the body is not valid UTF-8 (byte %zu)", bad);
    q->root = cJSON_ParseWithLength(x->body, x->body_len);
    if (!q->root) return srv_fail(e, 400, NULL, NULL, "the body is not valid JSON");
    if (!cJSON_IsObject(q->root))
        return srv_fail(e, 400, NULL, NULL, "the body must be a JSON object");
    const cJSON *model = given(q->root, "model");
    if (!model || !cJSON_IsString(model) || !model->valuestring[0])
        return srv_fail(e, 400, "model", NULL, "model is required");
    if (!refuse_unsupported(q->root, e)) return false;
    const cJSON *stream = given(q->root, "stream"), *keep = given(q->root, "keep_alive");
    if (stream && !cJSON_IsBool(stream))
        return srv_fail(e, 400, "stream", NULL, "'stream' must be a boolean");
    const cJSON *shift = given(q->root, "shift");
    if (shift && !cJSON_IsBool(shift))
        return srv_fail(e, 400, "shift", NULL, "'shift' must be a boolean");
    q->shift = shift ? cJSON_IsTrue(shift) : -1;
    if (keep) {
        char num[32] = "";
        if (cJSON_IsNumber(keep)) snprintf(num, sizeof num, "%.17g", keep->valuedouble);
        if (!(cJSON_IsNumber(keep) || cJSON_IsString(keep)) ||
            !srv_parse_keep_alive(cJSON_IsNumber(keep) ? num : keep->valuestring,
                                  &x->keep_alive_ms))
            return srv_fail(e, 400, "keep_alive", NULL,
                            "'keep_alive' must be seconds or a duration (\"5m\", \"1h\"; "
                            "negative: forever)");
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", model->valuestring);
    cJSON_AddBoolToObject(out, "stream", !stream || cJSON_IsTrue(stream)); /* ollama streams */
    q->repeat_last_n = 64;
    q->kind = SRV_CHAT;
    bool ok = translate_options(given(q->root, "options"), out, &q->repeat_last_n, &q->given, e) &&
              translate_format(given(q->root, "format"), out, e) &&
              translate_think(given(q->root, "think"), out, e);
    if (ok && d == SRV_DIALECT_OLLAMA_CHAT) {
        const cJSON *msgs = given(q->root, "messages");
        ok = !msgs || translate_messages(msgs, out, e);
        q->load = !msgs || cJSON_GetArraySize(msgs) == 0;
    } else if (ok) {
        const cJSON *prompt = given(q->root, "prompt"), *sys = given(q->root, "system");
        const cJSON *raw = given(q->root, "raw"), *suffix = given(q->root, "suffix");
        const cJSON *im = given(q->root, "images");
        if (im && !cJSON_IsArray(im))
            ok = srv_fail(e, 400, "images", NULL, "'images' must be an array");
        else if (prompt && !cJSON_IsString(prompt))
            ok = srv_fail(e, 400, "prompt", NULL, "'prompt' must be a string");
        else if (sys && !cJSON_IsString(sys))
            ok = srv_fail(e, 400, "system", NULL, "'system' must be a string");
        else if (raw && !cJSON_IsBool(raw))
            ok = srv_fail(e, 400, "raw", NULL, "'raw' must be a boolean");
        const bool fim = ok && suffix && suffix->valuestring[0];
        q->load = ok && !fim && (!prompt || !prompt->valuestring[0]);
        const bool images = ok && im && cJSON_GetArraySize(im) > 0;
        if (ok && !q->load && ((raw && cJSON_IsTrue(raw)) || fim)) {
            if (images)
                ok = srv_fail(e, 400, "images", NULL,
                              "images go through the chat template: not with raw or suffix");
            q->kind = SRV_COMPLETION;
            cJSON_AddStringToObject(out, "prompt", prompt ? prompt->valuestring : "");
            if (fim) cJSON_AddStringToObject(out, "suffix", suffix->valuestring);
        } else if (ok && !q->load) {
            cJSON *a = cJSON_AddArrayToObject(out, "messages"), *m;
            if (sys && sys->valuestring[0]) {
                cJSON_AddItemToArray(a, m = cJSON_CreateObject());
                cJSON_AddStringToObject(m, "role", "system");
                cJSON_AddStringToObject(m, "content", sys->valuestring);
            }
            cJSON_AddItemToArray(a, m = cJSON_CreateObject());
            cJSON_AddStringToObject(m, "role", "user");
            if (images)
                ok = image_parts(im, prompt, "images", m, e);
            else
                cJSON_AddStringToObject(m, "content", prompt->valuestring);
        }
    }
    if (ok && !(q->openai = cJSON_PrintUnformatted(out)))
        ok = srv_fail(e, 500, NULL, NULL, "out of memory");
    cJSON_Delete(out);
    return ok;
}

/* ---- routing ------------------------------------------------------------------ */

/* The "load" answer: done at once, nothing generated; with keep_alive 0
 * "unload" (the model goes when the request completes, or at once when it
 * was not loaded). */
static void respond_load(srv_exchange *x, srv_dialect d, const ollama_req *q) {
    const cJSON *model = given(q->root, "model");
    const bool unload = x->keep_alive_ms == 0;
    srv_model *m = unload ? srv_model_find(x->srv, model->valuestring) : NULL;
    if (!(m && !srv_model_loaded(m)) && !(m = srv_model_use(x, model->valuestring))) return;
    cJSON *o = srv_ollama_head(m, NULL, model->valuestring);
    srv_ollama_piece(o, d, "", 0);
    cJSON_AddTrueToObject(o, "done");
    cJSON_AddStringToObject(o, "done_reason", unload ? "unload" : "load");
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (json) srv_respond_json(x, 200, json);
}

static void handle(srv_exchange *x, srv_dialect d) {
    srv_server *s = x->srv;
    srv_error e;
    ollama_req q = {0};
    srv_request r = {0};
    bool parsed = false, ok = translate(x, d, &q, &e);
    if (ok && q.load) {
        respond_load(x, d, &q);
        free(q.openai);
        cJSON_Delete(q.root);
        return;
    }
    if (ok) ok = parsed = srv_parse_request(q.kind, q.openai, strlen(q.openai), &r, &e);
    int32_t *ids = NULL;
    int n = 0;
    char *text = NULL;
    const srv_model *m = NULL;
    if (ok && !(m = srv_model_use(x, r.model))) {
        srv_request_free(&r);
        free(q.openai);
        cJSON_Delete(q.root);
        return;
    }
    if (ok) {
        r.dialect = d;
        r.t0_ms = x->t0_ms;
        r.shift = q.shift;
        apply_defaults(&r, q.given);
        r.sampling.penalty_last_n =
            q.repeat_last_n < 0 ? srv_sched_n_ctx(m->sched) : q.repeat_last_n;
        if (!srv_request_check_model(&r, m->model, m->id, &e)) {
            ok = false;
        } else if (q.kind == SRV_CHAT) {
            ok = srv_chat_prompt(m, &r, &ids, &n, s->cfg.log_prompts ? &text : NULL, &e) &&
                 srv_chat_images(x, m, &r, &e);
        } else if (r.suffix) {
            ok = srv_tokenize_fim(x, m, &r, &ids, &n, &e);
            if (ok && s->cfg.log_prompts) text = strdup(r.prompt);
        } else {
            ok = srv_tokenize(m, r.prompt, r.prompt_len, &ids, &n, &e);
            if (ok && s->cfg.log_prompts) text = strdup(r.prompt);
        }
        x->log_prompt = text;
    }
    if (ok) {
        srv_gateway_route(x, &r, &ids, n);
    } else {
        srv_respond_error(x, &e);
    }
    free(ids);
    if (parsed) srv_request_free(&r);
    free(q.openai);
    cJSON_Delete(q.root);
}

void srv_handle_ollama_chat(srv_exchange *x) { handle(x, SRV_DIALECT_OLLAMA_CHAT); }

void srv_handle_ollama_generate(srv_exchange *x) { handle(x, SRV_DIALECT_OLLAMA_GENERATE); }
