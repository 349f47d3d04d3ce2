/*
 * api_util.c - llama.cpp server's utility endpoints, for clients written
 * against llama-server (shapes from its tools/server/README.md):
 *
 *   POST /tokenize        {"content", "add_special", "parse_special", "with_pieces"}
 *                         -> {"tokens": [id, ...]} or [{"id", "piece"}, ...]
 *   POST /detokenize      {"tokens": [id, ...]} -> {"content": text}
 *   POST /apply-template  a chat request -> {"prompt": text}
 *   GET  /props           the server's properties
 *
 * and vLLM's shapes on the same paths, for its clients (lm-evaluation-
 * harness's remote tokenizer among them):
 *
 *   POST /tokenize        {"prompt", "add_special_tokens", "return_token_strs"}
 *                         or a chat request ("messages": the chat's prompt ids)
 *                         -> {"count", "max_model_len", "tokens", "token_strs"}
 *   POST /detokenize      -> "prompt" beside "content"
 *   GET  /tokenizer_info  the special tokens, the chat template, the context
 *                         (?model= picks the model, as /props)
 *
 * They run on the connection's own thread and never enter the scheduler: a
 * loaded model's vocabulary is immutable (tokenizer.h), so any number of
 * threads may tokenize while the scheduler thread decodes, and these
 * requests never wait behind a busy slot.
 *
 * Limits: a request is at most UTIL_MAX_TOKENS tokens either way and a
 * detokenized text at most UTIL_MAX_TEXT bytes (413 beyond), so that a body
 * under --max-body cannot ask for an answer many times its size.
 */
#include "request_impl.h"

#include "engine/chat.h"
#include "engine/engine.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    UTIL_MAX_TOKENS = 1 << 18, /* more than any context a small model has */
    UTIL_MAX_TEXT = 8 << 20    /* bytes of a detokenized text */
};

/* llama.cpp's LLAMA_DEFAULT_SEED: what /props reports for "a random seed". */
#define UTIL_LLAMA_SEED_RANDOM 4294967295.0

/* /props' build_info: the build may define HEARTH_VERSION (CMake's
 * PROJECT_VERSION) for this file. */
#ifndef HEARTH_VERSION
#define HEARTH_VERSION "unknown"
#endif

/* JSON's whitespace (RFC 8259): space, tab, CR, LF. */
static bool json_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The body as a JSON object, by the rules the chat parser applies (valid
 * UTF-8, one JSON value and nothing after it, an object); NULL with e
 * filled otherwise. */
static cJSON *parse_body(const srv_exchange *x, srv_error *e) {
    size_t bad;
    if (!hr_utf8_valid(x->body, x->body_len, &bad)) {
        srv_fail(e, 400, NULL, "invalid_utf8",
                 "the request body is not valid UTF-8 (ill-formed byte at offset %zu)", bad);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(x->body, x->body_len, &end, false);
    size_t at = end && end >= x->body ? (size_t)(end - x->body) : 0;
    while (root && at < x->body_len && json_space(x->body[at])) at++;
    if (!root || at < x->body_len)
        srv_fail(e, 400, NULL, "invalid_json", "the request body is not one JSON value (byte %zu)",
                 at);
    else if (!cJSON_IsObject(root))
        srv_fail(e, 400, NULL, "invalid_json", "the request body must be a JSON object");
    else
        return root;
    cJSON_Delete(root);
    return NULL;
}

/* The boolean member `name` of obj (def when absent or null). */
static bool get_bool(const cJSON *obj, const char *name, bool def, bool *out, srv_error *e) {
    const cJSON *v = srv_req_field(obj, name);
    if (!v) {
        *out = def;
        return true;
    }
    if (!cJSON_IsBool(v)) return srv_req_bad_type(e, name, "a boolean");
    *out = cJSON_IsTrue(v);
    return true;
}

/* text[0..len) as a JSON string, ill-formed UTF-8 replaced by U+FFFD (and
 * U+0000 dropped, as srv_json_string does). NULL when out of memory. */
static cJSON *clean_string(const char *text, size_t len) {
    char *c = len <= (SIZE_MAX - 1) / 3 ? malloc(3 * len + 1) : NULL;
    cJSON *j = c ? srv_json_string(c, srv_utf8_clean(text, len, c)) : NULL;
    free(c);
    return j;
}

/* Answers root (deleted here) printed, or a 500 when it could not be built. */
static void respond(srv_exchange *x, cJSON *root, bool built) {
    char *json = built ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    srv_respond_json(x, 200, json); /* NULL: a 500 "out of memory" */
}

/* ---- POST /tokenize --------------------------------------------------------- */

/* text tokenized into *ids (malloc'd, *n of them); more than UTIL_MAX_TOKENS
 * is a 413. The first buffer holds any tokenization of text: no vocabulary
 * makes more tokens than bytes, plus BOS, EOS and a space prefix. */
static bool tokenize(const srv_model *m, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t **ids, size_t *n, srv_error *e) {
    size_t cap = len < UTIL_MAX_TOKENS - 8 ? len + 8 : UTIL_MAX_TOKENS;
    for (;;) {
        int32_t *buf = malloc(cap * sizeof *buf);
        if (!buf) return srv_fail(e, 500, NULL, NULL, "out of memory");
        size_t got = 0;
        const hearth_err err =
            hearth_tokenize(m->model, text, len, add_special, parse_special, buf, cap, &got);
        if (!err) {
            *ids = buf;
            *n = got;
            return true;
        }
        free(buf);
        if (err != HEARTH_ERR_INVALID_ARG || got <= cap)
            return srv_fail(e, 500, NULL, NULL, "tokenizing: %s", hearth_last_error());
        if (got > UTIL_MAX_TOKENS)
            return srv_fail(e, 413, "content", "too_many_tokens",
                            "'content' is %zu tokens; at most %d are tokenized in one request", got,
                            (int)UTIL_MAX_TOKENS);
        cap = got;
    }
}

/* A piece as llama.cpp gives it: a string when it is valid UTF-8 on its own,
 * else its bytes as numbers (a NUL byte too: a JSON string here cannot hold
 * it). */
static cJSON *piece_json(const char *p, size_t n) {
    if (hr_utf8_valid(p, n, NULL) && !memchr(p, '\0', n)) return srv_json_string(p, n);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)p[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

/* {"id", "piece"} for each id into arr, or with bare each piece alone. */
static bool pieces_json(const srv_model *m, const int32_t *ids, size_t n, bool bare, cJSON *arr) {
    const tok_vocab *v = engine_vocab(m->model);
    const size_t cap = v ? tok_max_piece_len(v) : 0;
    char *buf = malloc(cap + 1); /* + 1: srv_json_string reads p[n] */
    bool ok = v && buf;
    for (size_t i = 0; ok && i < n; i++) {
        size_t len = 0;
        ok = tok_piece(v, ids[i], true, buf, cap, &len) == HEARTH_OK;
        if (!ok) break;
        buf[len] = '\0';
        cJSON *t = bare ? piece_json(buf, len) : cJSON_CreateObject();
        if (!bare)
            ok = t && cJSON_AddNumberToObject(t, "id", ids[i]) &&
                 cJSON_AddItemToObject(t, "piece", piece_json(buf, len));
        ok = cJSON_AddItemToArray(arr, t) && ok;
    }
    free(buf);
    return ok;
}

/* The model a utility request's body names ("model", optional: the
 * default); NULL with e filled. */
static const srv_model *body_model(srv_exchange *x, const cJSON *root, srv_error *e) {
    const cJSON *model = srv_req_field(root, "model");
    if (model && !cJSON_IsString(model)) {
        srv_req_bad_type(e, "model", "a string");
        return NULL;
    }
    return srv_model_take(x, model ? model->valuestring : NULL, e);
}

/* The answer's "tokens": ids, or {"id", "piece"} objects with_pieces. */
static bool ids_json(const srv_model *m, const int32_t *ids, size_t n, bool with_pieces,
                     cJSON *arr) {
    if (with_pieces) return pieces_json(m, ids, n, false, arr);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) ok = cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
    return ok;
}

/* vLLM's answer: the ids, how many, the context, and each one's text when
 * asked (its piece; vLLM's are the vocabulary's raw strings). */
static void respond_vllm(srv_exchange *x, const srv_model *m, const int32_t *ids, size_t n,
                         bool strs) {
    cJSON *out = cJSON_CreateObject(), *arr = NULL, *texts = NULL;
    bool built = out && cJSON_AddNumberToObject(out, "count", (double)n) &&
                 cJSON_AddNumberToObject(out, "max_model_len", srv_sched_n_ctx(m->sched)) &&
                 (arr = cJSON_AddArrayToObject(out, "tokens")) && ids_json(m, ids, n, false, arr);
    if (built && strs)
        built = (texts = cJSON_AddArrayToObject(out, "token_strs")) &&
                pieces_json(m, ids, n, true, texts);
    respond(x, out, built);
}

/* The chat request of x's body parsed, retrieval added ("rag") and rendered
 * exactly as /v1/chat/completions renders it (srv_chat_prompt, a forced tool
 * call's opening included): its prompt ids and text (the caller frees both,
 * set or not) and its model; NULL when x was answered with an error. */
static const srv_model *chat_rendered(srv_exchange *x, int32_t **ids, int *n, char **text) {
    srv_request r;
    srv_error e;
    if (!srv_parse_request(SRV_CHAT, x->body, x->body_len, &r, &e)) {
        srv_respond_error(x, &e);
        return NULL;
    }
    const srv_model *m = srv_model_use(x, r.model);
    bool ok = m && srv_rag_augment(x, &r); /* else x was answered */
    if (ok && !(ok = srv_chat_prompt(m, &r, ids, n, text, &e))) srv_respond_error(x, &e);
    srv_request_free(&r);
    return ok ? m : NULL;
}

/* vLLM's chat shape: the prompt ids a chat completion of this body would
 * evaluate (BOS as the model adds it). */
static void tokenize_chat(srv_exchange *x, bool strs) {
    int32_t *ids = NULL;
    int n = 0;
    char *text = NULL;
    const srv_model *m = chat_rendered(x, &ids, &n, &text);
    if (m) respond_vllm(x, m, ids, (size_t)n, strs);
    free(ids);
    free(text);
}

void srv_handle_tokenize(srv_exchange *x) {
    srv_error e;
    const srv_model *m = NULL;
    bool add_special = false, parse_special = true, with_pieces = false, strs = false;
    int32_t *ids = NULL;
    size_t n = 0;
    cJSON *root = parse_body(x, &e);
    /* llama-server's "content", or vLLM's "prompt" (whose add_special_tokens is on by default) */
    const cJSON *content = root ? srv_req_field(root, "content") : NULL;
    const bool vllm = root && !content && !srv_req_field(root, "add_special") &&
                      (srv_req_field(root, "prompt") || srv_req_field(root, "messages"));
    const char *field = vllm ? "prompt" : "content";
    if (vllm) content = srv_req_field(root, "prompt");
    bool ok = root && get_bool(root, "return_token_strs", false, &strs, &e);
    if (ok && vllm && srv_req_field(root, "messages")) {
        cJSON_Delete(root);
        tokenize_chat(x, strs);
        return;
    }
    ok = ok && (m = body_model(x, root, &e));
    if (ok && !content)
        ok = srv_fail(&e, 400, field, NULL, "'%s' is required", field);
    else if (ok && !cJSON_IsString(content))
        ok = srv_req_bad_type(&e, field, "a string");
    ok = ok &&
         get_bool(root, vllm ? "add_special_tokens" : "add_special", vllm, &add_special, &e) &&
         get_bool(root, "parse_special", true, &parse_special, &e) &&
         get_bool(root, "with_pieces", false, &with_pieces, &e) &&
         tokenize(m, content->valuestring, strlen(content->valuestring), add_special, parse_special,
                  &ids, &n, &e);
    cJSON_Delete(root);
    if (!ok) {
        srv_respond_error(x, &e);
    } else if (vllm) {
        respond_vllm(x, m, ids, n, strs);
    } else {
        cJSON *out = cJSON_CreateObject(), *arr = NULL;
        const bool built = out && (arr = cJSON_AddArrayToObject(out, "tokens")) &&
                           ids_json(m, ids, n, with_pieces, arr);
        respond(x, out, built);
    }
    free(ids);
}

/* ---- POST /detokenize ------------------------------------------------------- */

/* "tokens": an array of ids of the vocabulary, into *ids (malloc'd). */
static bool parse_ids(const srv_model *m, const cJSON *root, int32_t **ids, size_t *n,
                      srv_error *e) {
    const cJSON *arr = srv_req_field(root, "tokens");
    if (!arr) return srv_fail(e, 400, "tokens", NULL, "'tokens' is required");
    if (!cJSON_IsArray(arr)) return srv_req_bad_type(e, "tokens", "an array of token ids");
    const int count = cJSON_GetArraySize(arr), n_vocab = hearth_model_n_vocab(m->model);
    if (count > UTIL_MAX_TOKENS)
        return srv_fail(e, 413, "tokens", "too_many_tokens",
                        "'tokens' has %d ids; at most %d are detokenized in one request", count,
                        (int)UTIL_MAX_TOKENS);
    int32_t *buf = malloc((count ? (size_t)count : 1) * sizeof *buf);
    if (!buf) return srv_fail(e, 500, NULL, NULL, "out of memory");
    int i = 0;
    for (const cJSON *v = arr->child; v; v = v->next, i++) {
        char name[32];
        snprintf(name, sizeof name, "tokens[%d]", i);
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
            free(buf);
            return srv_req_bad_type(e, name, "an integer token id");
        }
        if (!(v->valuedouble >= 0 && v->valuedouble < n_vocab)) { /* before any conversion */
            free(buf);
            return srv_fail(e, 400, name, "invalid_token",
                            "%s = %.15g is not a token id of this model (0..%d)", name,
                            v->valuedouble, n_vocab - 1);
        }
        buf[i] = (int32_t)v->valuedouble;
    }
    *ids = buf;
    *n = (size_t)count;
    return true;
}

/* The text of ids[0..n) (hearth_detokenize with control tokens' text) as a
 * JSON string; its size is measured before anything is allocated. */
static bool detokenize(const srv_model *m, const int32_t *ids, size_t n, cJSON **out,
                       srv_error *e) {
    size_t need = 0;
    hearth_err err = hearth_detokenize(m->model, ids, n, true, NULL, 0, &need);
    if (err && err != HEARTH_ERR_INVALID_ARG)
        return srv_fail(e, 500, NULL, NULL, "detokenizing: %s", hearth_last_error());
    if (need > UTIL_MAX_TEXT)
        return srv_fail(e, 413, "tokens", "request_too_large",
                        "the text of these tokens is %zu bytes; the limit is %d", need,
                        (int)UTIL_MAX_TEXT);
    char *text = malloc(need + 1);
    if (!text) return srv_fail(e, 500, NULL, NULL, "out of memory");
    err = hearth_detokenize(m->model, ids, n, true, text, need, &need);
    *out = err ? NULL : clean_string(text, need);
    free(text);
    if (err) return srv_fail(e, 500, NULL, NULL, "detokenizing: %s", hearth_last_error());
    return *out || srv_fail(e, 500, NULL, NULL, "out of memory");
}

void srv_handle_detokenize(srv_exchange *x) {
    srv_error e;
    int32_t *ids = NULL;
    size_t n = 0;
    cJSON *text = NULL;
    const srv_model *m = NULL;
    cJSON *root = parse_body(x, &e);
    const bool ok = root && (m = body_model(x, root, &e)) && parse_ids(m, root, &ids, &n, &e) &&
                    detokenize(m, ids, n, &text, &e);
    cJSON_Delete(root);
    free(ids);
    if (!ok) {
        srv_respond_error(x, &e);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    bool built = out && cJSON_AddItemToObject(out, "content", text);
    if (!built) cJSON_Delete(text);
    built = built && cJSON_AddItemToObject(out, "prompt", cJSON_Duplicate(text, false)); /* vLLM */
    respond(x, out, built);
}

/* ---- POST /apply-template --------------------------------------------------- */

/* The chat request rendered (chat_rendered), minus a leading BOS text: that
 * is what the chat's tokens are made from (the tokenizer adds BOS itself),
 * so POST /tokenize with add_special true gives the chat's prompt tokens
 * back. */
void srv_handle_apply_template(srv_exchange *x) {
    int32_t *ids = NULL;
    int n = 0;
    char *text = NULL;
    const srv_model *m = chat_rendered(x, &ids, &n, &text);
    free(ids);
    if (!m) {
        free(text);
        return;
    }
    const size_t len = strlen(text), skip = eng_chat_bos_skip(text, len, m->bos_text);
    cJSON *out = cJSON_CreateObject();
    const bool built =
        out && cJSON_AddItemToObject(out, "prompt", clean_string(text + skip, len - skip));
    free(text);
    respond(x, out, built);
}

/* ---- GET /props ------------------------------------------------------------- */

/* The sampling a request that sets nothing gets on m: request.c's defaults
 * and m's parameters, read by parsing such a request and taking its
 * settings as a generation does, so that /props cannot drift from them. */
static cJSON *default_params(const srv_model *m) {
    static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}";
    srv_request r;
    srv_error e;
    if (!srv_parse_request(SRV_CHAT, body, sizeof body - 1, &r, &e)) return NULL;
    srv_settings st;
    srv_model_settings(m, &r, &st);
    const hearth_sampling *sp = &st.sampling;
    const int max_tokens = st.max_tokens;
    cJSON *p = cJSON_CreateObject();
    bool ok = p && cJSON_AddNumberToObject(p, "n_predict", max_tokens > 0 ? max_tokens : -1) &&
              cJSON_AddNumberToObject(p, "seed",
                                      sp->seed == HEARTH_SEED_RANDOM ? UTIL_LLAMA_SEED_RANDOM
                                                                     : (double)sp->seed) &&
              cJSON_AddNumberToObject(p, "temperature", sp->temperature) &&
              cJSON_AddNumberToObject(p, "top_k", sp->top_k) &&
              cJSON_AddNumberToObject(p, "top_p", sp->top_p) &&
              cJSON_AddNumberToObject(p, "min_p", sp->min_p) &&
              cJSON_AddNumberToObject(p, "repeat_last_n", sp->penalty_last_n) &&
              cJSON_AddNumberToObject(p, "repeat_penalty", sp->repeat_penalty) &&
              cJSON_AddNumberToObject(p, "presence_penalty", sp->presence_penalty) &&
              cJSON_AddNumberToObject(p, "frequency_penalty", sp->frequency_penalty) &&
              cJSON_AddArrayToObject(p, "stop") &&
              cJSON_AddNumberToObject(p, "max_tokens", max_tokens > 0 ? max_tokens : -1) &&
              cJSON_AddNumberToObject(p, "n_probs", 0) &&
              cJSON_AddStringToObject(p, "grammar", "") && srv_samplers_props(p, sp);
    cJSON *stop = ok ? cJSON_GetObjectItemCaseSensitive(p, "stop") : NULL;
    for (int i = 0; stop && i < st.n_stop; i++) /* before r goes: they may be its */
        cJSON_AddItemToArray(stop, cJSON_CreateString(st.stop[i]));
    srv_request_free(&r);
    if (!ok) cJSON_Delete(p);
    return ok ? p : NULL;
}

/* The template text in use: the GGUF's tokenizer.chat_template, or the
 * --chat-template file's text; "" for a built-in template chosen by name and
 * for the ChatML fallback (Hearth renders those in C; there is no text). */
static cJSON *template_text(const srv_model *m) {
    const char *override = m->srv->cfg.chat_template;
    if (!override) {
        const char *t = NULL;
        size_t len = 0;
        if (hearth_model_meta_str(m->model, "tokenizer.chat_template", &t, &len) != HEARTH_OK)
            return cJSON_CreateString("");
        return clean_string(t, len);
    }
    tok_chat_template named;
    hr_map map = {0};
    if (tok_chat_named(override, &named) == HEARTH_OK || hr_map_open(&map, override) != HEARTH_OK)
        return cJSON_CreateString("");
    cJSON *j = map.size <= UTIL_MAX_TEXT ? clean_string((const char *)map.data, (size_t)map.size)
                                         : cJSON_CreateString("");
    hr_map_close(&map);
    return j;
}

void srv_handle_props(srv_exchange *x) {
    const srv_model *m = srv_model_use(x, srv_query(x, "model")); /* llama-server's ?model= */
    if (!m) return;
    cJSON *out = cJSON_CreateObject(),
          *dgs = cJSON_AddObjectToObject(out, "default_generation_settings");
    cJSON *modalities = cJSON_AddObjectToObject(out, "modalities");
    bool ok =
        dgs && modalities && cJSON_AddNumberToObject(dgs, "n_ctx", srv_sched_n_ctx(m->sched)) &&
        cJSON_AddItemToObject(dgs, "params", default_params(m)) &&
        cJSON_AddNumberToObject(out, "total_slots", m->n_parallel) &&
        cJSON_AddStringToObject(out, "model_alias", m->id) &&
        cJSON_AddStringToObject(out, "model_path", m->path) &&
        cJSON_AddBoolToObject(modalities, "vision", m->vision != NULL) &&
        cJSON_AddBoolToObject(modalities, "audio", false) &&
        cJSON_AddItemToObject(out, "chat_template", template_text(m)) &&
        cJSON_AddStringToObject(out, "chat_template_name", m->have_template ? m->tmpl.name : "") &&
        cJSON_AddItemToObject(out, "bos_token", clean_string(m->bos_text, strlen(m->bos_text))) &&
        cJSON_AddItemToObject(out, "eos_token", clean_string(m->eos_text, strlen(m->eos_text))) &&
        cJSON_AddStringToObject(out, "build_info", "hearth-" HEARTH_VERSION);
    respond(x, out, ok);
}

/* ---- GET /tokenizer_info (vLLM's) ------------------------------------------ */

/* A special token's text, or null when the vocabulary has none. */
static cJSON *special_json(const srv_model *m, int id) {
    if (id < 0) return cJSON_CreateNull();
    char *t = eng_token_text(m->model, id);
    cJSON *j = t ? clean_string(t, strlen(t)) : NULL;
    free(t);
    return j;
}

void srv_handle_tokenizer_info(srv_exchange *x) {
    const srv_model *m = srv_model_use(x, srv_query(x, "model"));
    if (!m) return;
    const tok_vocab *v = engine_vocab(m->model);
    cJSON *out = cJSON_CreateObject();
    const bool built =
        out && v && cJSON_AddStringToObject(out, "tokenizer_model", tok_model_name(v)) &&
        cJSON_AddItemToObject(out, "bos_token", special_json(m, tok_bos(v))) &&
        cJSON_AddItemToObject(out, "eos_token", special_json(m, tok_eos(v))) &&
        cJSON_AddItemToObject(out, "eot_token", special_json(m, tok_eot(v))) &&
        cJSON_AddItemToObject(out, "pad_token", special_json(m, tok_pad(v))) &&
        cJSON_AddItemToObject(out, "unk_token", special_json(m, tok_unk(v))) &&
        cJSON_AddBoolToObject(out, "add_bos_token", tok_add_bos(v)) &&
        cJSON_AddBoolToObject(out, "add_eos_token", tok_add_eos(v)) &&
        cJSON_AddNumberToObject(out, "vocab_size", tok_n_vocab(v)) &&
        cJSON_AddNumberToObject(out, "model_max_length", srv_sched_n_ctx(m->sched)) &&
        cJSON_AddItemToObject(out, "chat_template", template_text(m));
    respond(x, out, built);
}
