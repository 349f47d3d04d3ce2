/*
 * api_ollama_embed.c - ollama's embedding routes:
 *
 *   POST /api/embed       {model, input: string | [string], truncate?}
 *                         -> {"model","embeddings":[[...]],"total_duration",
 *                             "load_duration","prompt_eval_count"}
 *   POST /api/embeddings  {model, prompt} -> {"embedding":[...]}  (legacy)
 *
 * This file only reads ollama's body and writes ollama's answer: the texts
 * go through /v1/embeddings' pipeline (api_embed.h: the same checks, the
 * scheduler, the server's pooling), or, for a model a remote tier declares,
 * through the gateway to that tier (remote(); its vectors as it sent them,
 * of the redacted texts; truncate is then the tier's business). /api/embed's vectors
 * are L2-normalised (as ollama's and /v1/embeddings' are); the legacy
 * route's are not (as ollama's are not). truncate (default true) cuts a text to the slot's context;
 * false makes a longer text a 400. An empty or absent input is ollama's "load" request (no
 * vectors); an empty string in a list of inputs is a 400.
 */
#include "api_embed.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* The texts of the request: input (a string or strings) or the legacy
 * prompt. An empty or absent top-level one is nothing to embed (ollama's
 * "load" request); an empty string in a list is an error. */
static bool parse_texts(srv_exchange *x, const cJSON *root, bool legacy, srv_embed_input *t,
                        srv_error *e) {
    if (!cJSON_IsObject(root))
        return srv_fail(e, 400, NULL, NULL, "the body must be a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(model) || !model->valuestring[0])
        return srv_fail(e, 400, "model", NULL, "model is required");
    const srv_model *m = srv_model_take(x, model->valuestring, e);
    if (!m) return false;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncate");
    if (tr && !cJSON_IsBool(tr) && !cJSON_IsNull(tr))
        return srv_fail(e, 400, "truncate", NULL, "'truncate' must be a boolean");
    const bool truncate = !cJSON_IsFalse(tr);
    const char *name = legacy ? "prompt" : "input";
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!in || cJSON_IsNull(in)) return true; /* nothing to embed */
    if (cJSON_IsString(in))
        return !in->valuestring[0] ||
               srv_embed_add_text(m, t, in->valuestring, strlen(in->valuestring), truncate, name,
                                  e);
    if (legacy || !cJSON_IsArray(in))
        return srv_fail(e, 400, name, NULL, "'%s' must be a string%s", name,
                        legacy ? "" : " or an array of strings");
    const int n = cJSON_GetArraySize(in);
    if (n > SRV_EMBED_MAX_INPUTS)
        return srv_fail(e, 400, name, NULL, "%d inputs; at most %d per request", n,
                        SRV_EMBED_MAX_INPUTS);
    for (const cJSON *it = in->child; it; it = it->next) {
        if (!cJSON_IsString(it))
            return srv_fail(e, 400, name, NULL, "'input' must be a string or an array of strings");
        if (!srv_embed_add_text(m, t, it->valuestring, strlen(it->valuestring), truncate, name, e))
            return false;
    }
    return true;
}

/* ollama's answer: n vectors of d numbers from embd (the legacy route's
 * first one alone). */
static char *answer_json(const cJSON *root, const float *embd, int n, int d, int prompt_count,
                         bool legacy, double t0_ms) {
    cJSON *o = cJSON_CreateObject();
    if (legacy) {
        cJSON *a = cJSON_AddArrayToObject(o, "embedding");
        for (int k = 0; n && k < d; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(embd[k]));
    } else {
        cJSON_AddStringToObject(o, "model",
                                cJSON_GetObjectItemCaseSensitive(root, "model")->valuestring);
        cJSON *all = cJSON_AddArrayToObject(o, "embeddings");
        for (int i = 0; i < n; i++) {
            cJSON *a = cJSON_CreateArray();
            cJSON_AddItemToArray(all, a);
            const float *v = embd + (size_t)i * (size_t)d;
            for (int k = 0; k < d; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[k]));
        }
        cJSON_AddNumberToObject(o, "total_duration",
                                (double)(long long)((srv_now_ms() - t0_ms) * 1e6));
        cJSON_AddNumberToObject(o, "load_duration", 0);
        cJSON_AddNumberToObject(o, "prompt_eval_count", prompt_count);
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

/* A remote tier's model: input (or the legacy prompt) as strings; an empty
 * or absent one is ollama's "load" request, answered without the tier. */
static void remote(srv_exchange *x, const cJSON *root, bool legacy) {
    srv_error e;
    const char *name = legacy ? "prompt" : "input";
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, name);
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncate");
    const int n = cJSON_IsArray(in) ? cJSON_GetArraySize(in) : 1;
    gw_embed_request r = {.kind = GW_EMBED_VECTORS,
                          .model = cJSON_GetObjectItemCaseSensitive(root, "model")->valuestring};
    const char **texts = calloc((size_t)n + 1, sizeof *texts);
    bool ok = texts || srv_fail(&e, 500, NULL, NULL, "out of memory");
    if (ok && tr && !cJSON_IsBool(tr) && !cJSON_IsNull(tr))
        ok = srv_fail(&e, 400, "truncate", NULL, "'truncate' must be a boolean");
    else if (ok && cJSON_IsArray(in) && !legacy && n > SRV_EMBED_MAX_INPUTS)
        ok = srv_fail(&e, 400, name, NULL, "%d inputs; at most %d per request", n,
                      SRV_EMBED_MAX_INPUTS);
    else if (ok && cJSON_IsArray(in) && !legacy)
        for (const cJSON *it = in->child; ok && it; it = it->next)
            ok = srv_remote_text(it, name, &texts[r.n_texts++], &e);
    else if (ok && cJSON_IsString(in) && in->valuestring[0])
        ok = srv_remote_text(in, name, &texts[r.n_texts++], &e);
    else if (ok && in && !cJSON_IsNull(in) && !cJSON_IsString(in))
        ok = srv_fail(&e, 400, name, NULL, "'%s' must be a string%s", name,
                      legacy ? "" : " or an array of strings");
    r.texts = texts;
    gw_embed_response out;
    if (!ok)
        srv_respond_error(x, &e);
    else if (r.n_texts == 0) /* nothing to embed */
        srv_respond_json(x, 200, answer_json(root, NULL, 0, 0, 0, legacy, x->t0_ms));
    else if (srv_remote_run(x, &r, &out))
        srv_remote_respond(x,
                           answer_json(root, out.answer.vectors, r.n_texts, out.answer.dim,
                                       out.prompt_tokens, legacy, x->t0_ms),
                           &out);
    free(texts);
}

void srv_handle_ollama_embed(srv_exchange *x, bool legacy) {
    srv_error e;
    srv_embed_input t = {0};
    srv_job *j = NULL;
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsObject(root) && cJSON_IsString(model) &&
        srv_remote_tier(x, GW_EMBED_VECTORS, model->valuestring) > 0) {
        remote(x, root, legacy);
        cJSON_Delete(root);
        return;
    }
    if (!(root ? parse_texts(x, root, legacy, &t, &e)
               : srv_fail(&e, 400, NULL, NULL, "the body is not valid JSON"))) {
        srv_embed_input_fini(&t);
        cJSON_Delete(root);
        srv_respond_error(x, &e);
        return;
    }
    if (t.n > 0 && !(j = srv_embed_run(x, &t, !legacy))) {
        cJSON_Delete(root);
        return;
    }
    srv_embed_input_fini(&t);
    const int d = hearth_model_n_embd(x->model->model);
    char *json = j ? answer_json(root, j->embd, j->n_inputs, d, j->n_prompt, legacy, x->t0_ms)
                   : answer_json(root, NULL, 0, d, 0, legacy, x->t0_ms);
    srv_job_release(j);
    cJSON_Delete(root);
    srv_respond_json(x, 200, json);
}
