/*
 * api_embeddings.c - POST /v1/embeddings, OpenAI's shape: `input` is a
 * string, a list of strings, a list of token ids or a list of such lists;
 * `encoding_format` "float" (default) or "base64" (little-endian float32, as
 * the OpenAI SDKs ask for by default); `dimensions`, when given, must be the
 * model's. The texts are embedded by the local model through the scheduler
 * (in a slot, like a generation's prompt; several short texts share a
 * forward pass, hearth_embed_batch) with the server's pooling and L2
 * normalisation. A model that a remote tier declares (and no local model
 * is named) goes to that tier through the gateway instead (remote(),
 * api_remote_embed.c): its texts redacted, its vectors the tier's, of the
 * redacted texts, written here in the same shape.
 *
 * The pipeline after parsing (texts checked, tokenized into one buffer, one
 * job submitted and waited for) is here too, shared with ollama's routes
 * (api_ollama_embed.c) through api_embed.h.
 */
#include "api_embed.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---- the shared pipeline (api_embed.h) ----------------------------------- */

static bool input_append(srv_embed_input *in, const int32_t *ids, int n, srv_error *e) {
    assert(n > 0); /* an empty input is refused before */
    if (in->n == in->cap) {
        const int cap = in->cap ? 2 * in->cap : 8;
        int *nl = realloc(in->len, (size_t)cap * sizeof *nl);
        if (!nl) return srv_fail(e, 500, NULL, NULL, "out of memory");
        in->len = nl;
        in->cap = cap;
    }
    if (in->n_ids + n > in->cap_ids) {
        int cap = in->cap_ids ? in->cap_ids : 256;
        while (cap < in->n_ids + n) cap *= 2;
        int32_t *nb = realloc(in->ids, (size_t)cap * sizeof *nb);
        if (!nb) return srv_fail(e, 500, NULL, NULL, "out of memory");
        in->ids = nb;
        in->cap_ids = cap;
    }
    memcpy(in->ids + in->n_ids, ids, (size_t)n * sizeof *ids);
    in->n_ids += n;
    in->len[in->n++] = n;
    return true;
}

bool srv_embed_add_ids(const srv_model *m, srv_embed_input *in, const int32_t *ids, int n,
                       bool truncate, const char *field, srv_error *e) {
    const int n_ctx = srv_sched_n_ctx(m->sched);
    if (n > n_ctx && !truncate)
        return srv_fail(e, 400, field, "context_length_exceeded",
                        "the input has %d tokens but a slot's context holds %d; shorten it or "
                        "start the server with a larger --ctx",
                        n, n_ctx);
    return input_append(in, ids, n > n_ctx ? n_ctx : n, e);
}

bool srv_embed_add_text(const srv_model *m, srv_embed_input *in, const char *text, size_t len,
                        bool truncate, const char *field, srv_error *e) {
    size_t bad;
    if (len == 0) return srv_fail(e, 400, field, NULL, "an input must not be empty");
    if (!hr_utf8_valid(text, len, &bad))
        return srv_fail(e, 400, field, NULL, "invalid UTF-8 at byte %zu", bad);
    int32_t *ids = NULL;
    int n = 0;
    if (!srv_tokenize(m, text, len, &ids, &n, e)) return false;
    const bool ok = srv_embed_add_ids(m, in, ids, n, truncate, field, e);
    free(ids);
    return ok;
}

void srv_embed_input_fini(srv_embed_input *in) {
    free(in->ids);
    free(in->len);
    *in = (srv_embed_input){0};
}

/* The job of in's texts: their vectors, or their scores when `rank`. */
static srv_job *run(srv_exchange *x, srv_embed_input *in, bool normalize, bool rank) {
    srv_server *s = x->srv;
    srv_error e;
    const size_t d = rank ? 1 : (size_t)hearth_model_n_embd(x->model->model);
    assert(in->n > 0 && d > 0); /* no empty input; every model has n_embd */
    srv_job *j = srv_job_new(in->ids, in->n_ids);
    if (j) j->embd = malloc((size_t)in->n * d * sizeof *j->embd);
    if (!j || !j->embd) {
        srv_embed_input_fini(in);
        srv_job_release(j);
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return NULL;
    }
    j->n_inputs = in->n;
    j->input_len = in->len; /* the job's now */
    in->len = NULL;
    srv_embed_input_fini(in);
    j->pooling = x->model->pooling;
    j->normalize = normalize;
    j->rank = rank;
    if (s->cfg.timeout_s > 0) j->deadline_ms = srv_now_ms() + 1e3 * s->cfg.timeout_s;
    x->prompt_tokens = j->n_prompt;
    if (!srv_run_job(x, j, false)) return NULL;
    if (j->err)
        srv_fail(&e, 500, NULL, NULL, "embedding failed: %s", j->err_msg);
    else if (j->n_done < j->n_inputs)
        srv_fail(&e, 503, NULL, "timeout",
                 "the request ran out of time (%d s) after %d of %d inputs", s->cfg.timeout_s,
                 j->n_done, j->n_inputs);
    else
        return j;
    srv_job_release(j);
    srv_respond_error(x, &e);
    return NULL;
}

srv_job *srv_embed_run(srv_exchange *x, srv_embed_input *in, bool normalize) {
    return run(x, in, normalize, false);
}

srv_job *srv_rank_run(srv_exchange *x, srv_embed_input *in) { return run(x, in, false, true); }

/* ---- POST /v1/embeddings --------------------------------------------------- */

/* One text: a string, or an array of token ids. */
static bool parse_text(const srv_model *m, const cJSON *item, const char *field,
                       srv_embed_input *in, srv_error *e) {
    if (cJSON_IsString(item))
        return srv_embed_add_text(m, in, item->valuestring, strlen(item->valuestring), false, field,
                                  e);
    if (!cJSON_IsArray(item))
        return srv_fail(e, 400, field, NULL,
                        "must be a string, an array of strings or an array of token ids");
    const int n = cJSON_GetArraySize(item);
    if (n == 0) return srv_fail(e, 400, field, NULL, "an input must not be empty");
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) return srv_fail(e, 500, NULL, NULL, "out of memory");
    const int n_vocab = hearth_model_n_vocab(m->model);
    int i = 0;
    for (const cJSON *t = item->child; t; t = t->next, i++) {
        const double v = cJSON_IsNumber(t) ? t->valuedouble : -1.0;
        if (!(v >= 0 && v < n_vocab && v == (double)(int32_t)v)) {
            free(ids);
            return srv_fail(e, 400, field, NULL,
                            "element %d is not a token id of this model (its vocabulary has %d)", i,
                            n_vocab);
        }
        ids[i] = (int32_t)v;
    }
    const bool ok = srv_embed_add_ids(m, in, ids, n, false, field, e);
    free(ids);
    return ok;
}

static bool parse_input(const srv_model *m, const cJSON *input, srv_embed_input *in, srv_error *e) {
    if (!input) return srv_fail(e, 400, "input", NULL, "'input' is required");
    int n = 1;
    bool list = false; /* a list of texts, not one text given as token ids */
    if (cJSON_IsArray(input)) {
        n = cJSON_GetArraySize(input);
        if (n == 0) return srv_fail(e, 400, "input", NULL, "'input' must not be empty");
        list = !cJSON_IsNumber(input->child);
    }
    if (!list) n = 1;
    if (n > SRV_EMBED_MAX_INPUTS)
        return srv_fail(e, 400, "input", NULL, "%d inputs; at most %d per request", n,
                        SRV_EMBED_MAX_INPUTS);
    if (!list) return parse_text(m, input, "input", in, e);
    int i = 0;
    for (const cJSON *item = input->child; item; item = item->next, i++) {
        char field[32];
        snprintf(field, sizeof field, "input[%d]", i);
        if (!parse_text(m, item, field, in, e)) return false;
    }
    return true;
}

static char *base64(const float *v, int n) {
    assert(n >= 0);
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t len = (size_t)n * sizeof *v;
    unsigned char *b = malloc(len);
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!b || !out) {
        free(b);
        free(out);
        return NULL;
    }
    for (int i = 0; i < n; i++) { /* little-endian whatever the host */
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        for (int k = 0; k < 4; k++) b[4 * i + k] = (unsigned char)(u >> (8 * k));
    }
    char *o = out;
    for (size_t i = 0; i < len; i += 3) {
        const uint32_t w = (uint32_t)b[i] << 16 | (i + 1 < len ? (uint32_t)b[i + 1] << 8 : 0) |
                           (i + 2 < len ? b[i + 2] : 0);
        *o++ = digits[w >> 18 & 63];
        *o++ = digits[w >> 12 & 63];
        *o++ = i + 1 < len ? digits[w >> 6 & 63] : '=';
        *o++ = i + 2 < len ? digits[w & 63] : '=';
    }
    *o = '\0';
    free(b);
    return out;
}

/* The answer: n vectors of d numbers from embd, for the model named model. */
static char *response_json(const char *model, const float *embd, int n, int d, int prompt_tokens,
                           bool b64) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    bool ok = root && data;
    for (int i = 0; ok && i < n; i++) {
        const float *v = embd + (size_t)i * (size_t)d;
        cJSON *item = cJSON_CreateObject();
        ok = item && cJSON_AddItemToArray(data, item);
        if (!ok) break;
        cJSON_AddStringToObject(item, "object", "embedding");
        cJSON_AddNumberToObject(item, "index", i);
        if (b64) {
            char *text = base64(v, d);
            ok = text && cJSON_AddStringToObject(item, "embedding", text);
            free(text);
        } else {
            cJSON *arr = cJSON_AddArrayToObject(item, "embedding");
            for (int k = 0; ok && k < d; k++)
                ok = arr && cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)v[k]));
        }
    }
    cJSON_AddStringToObject(root, "model", model);
    cJSON *usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", prompt_tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", prompt_tokens);
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

/* encoding_format: "float" (the default) or "base64". */
static bool parse_format(const cJSON *root, bool *b64, srv_error *e) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
    *b64 = false;
    if (fmt && !cJSON_IsNull(fmt)) {
        if (!cJSON_IsString(fmt) ||
            (strcmp(fmt->valuestring, "float") && strcmp(fmt->valuestring, "base64")))
            return srv_fail(e, 400, "encoding_format", NULL,
                            "'encoding_format' must be \"float\" or \"base64\"");
        *b64 = !strcmp(fmt->valuestring, "base64");
    }
    return true;
}

/* The request's options other than the input; false with e filled. */
static bool parse_options(srv_exchange *x, const cJSON *root, const srv_model **m, bool *b64,
                          srv_error *e) {
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model))
        return srv_fail(e, 400, "model", NULL, "'model' must be a string");
    if (!(*m = srv_model_take(x, cJSON_IsString(model) ? model->valuestring : NULL, e)))
        return false;
    if (!parse_format(root, b64, e)) return false;
    const int d = hearth_model_n_embd((*m)->model);
    if (dims && !cJSON_IsNull(dims) && !(cJSON_IsNumber(dims) && dims->valuedouble == d))
        return srv_fail(e, 400, "dimensions", NULL,
                        "this model's embeddings have %d dimensions; it cannot shorten them", d);
    return true;
}

/* ---- a remote tier's model ------------------------------------------------------ */

/* input for a remote tier: a string or a list of strings (token ids cannot
 * pass the privacy guard, which reads text). *texts (malloc'd) points into
 * input. */
static bool remote_texts(const cJSON *input, const char ***texts, int *n, srv_error *e) {
    const bool list = cJSON_IsArray(input);
    *n = list ? cJSON_GetArraySize(input) : 1;
    if (!input) return srv_fail(e, 400, "input", NULL, "'input' is required");
    if (*n == 0) return srv_fail(e, 400, "input", NULL, "'input' must not be empty");
    if (*n > SRV_EMBED_MAX_INPUTS)
        return srv_fail(e, 400, "input", NULL, "%d inputs; at most %d per request", *n,
                        SRV_EMBED_MAX_INPUTS);
    if (list && (cJSON_IsNumber(input->child) || cJSON_IsArray(input->child)))
        return srv_fail(e, 400, "input", NULL,
                        "token ids cannot go to a remote tier (the privacy guard reads text): "
                        "send the text");
    if (!(*texts = calloc((size_t)*n, sizeof **texts)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    if (!list) return srv_remote_text(input, "input", &(*texts)[0], e);
    int i = 0;
    for (const cJSON *it = input->child; it; it = it->next, i++) {
        char field[32];
        snprintf(field, sizeof field, "input[%d]", i);
        if (!srv_remote_text(it, field, &(*texts)[i], e)) return false;
    }
    return true;
}

static void remote(srv_exchange *x, const cJSON *root, const char *model) {
    srv_error e;
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    gw_embed_request r = {.kind = GW_EMBED_VECTORS, .model = model};
    const char **texts = NULL;
    bool b64 = false, ok = parse_format(root, &b64, &e);
    if (ok && dims && !cJSON_IsNull(dims)) {
        ok = cJSON_IsNumber(dims) && dims->valuedouble >= 1 && dims->valuedouble <= 65536 &&
             dims->valuedouble == (double)(int)dims->valuedouble;
        if (!ok) srv_fail(&e, 400, "dimensions", NULL, "'dimensions' must be a positive integer");
        r.dimensions = ok ? (int)dims->valuedouble : 0;
    }
    ok =
        ok && remote_texts(cJSON_GetObjectItemCaseSensitive(root, "input"), &texts, &r.n_texts, &e);
    r.texts = texts;
    gw_embed_response out;
    if (!ok)
        srv_respond_error(x, &e);
    else if (srv_remote_run(x, &r, &out))
        srv_remote_respond(x,
                           response_json(model, out.answer.vectors, r.n_texts, out.answer.dim,
                                         out.prompt_tokens, b64),
                           &out);
    free(texts);
}

void srv_handle_embeddings(srv_exchange *x) {
    srv_error e;
    srv_embed_input in = {0};
    const srv_model *m = NULL;
    bool b64 = false;
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    bool ok = root ? cJSON_IsObject(root) ||
                         srv_fail(&e, 400, NULL, NULL, "the body must be a JSON object")
                   : srv_fail(&e, 400, NULL, NULL, "the body is not valid JSON");
    const cJSON *model = ok ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    if (cJSON_IsString(model) && srv_remote_tier(x, GW_EMBED_VECTORS, model->valuestring) > 0) {
        remote(x, root, model->valuestring);
        cJSON_Delete(root);
        return;
    }
    ok = ok && parse_options(x, root, &m, &b64, &e) &&
         parse_input(m, cJSON_GetObjectItemCaseSensitive(root, "input"), &in, &e);
    cJSON_Delete(root);
    if (!ok) {
        srv_embed_input_fini(&in);
        srv_respond_error(x, &e);
        return;
    }
    srv_job *j = srv_embed_run(x, &in, true);
    if (!j) return;
    char *json =
        response_json(m->id, j->embd, j->n_inputs, hearth_model_n_embd(m->model), j->n_prompt, b64);
    srv_job_release(j);
    srv_respond_json(x, 200, json);
}
