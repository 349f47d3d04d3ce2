/*
 * api_ollama_embed.c - ollama's embedding routes:
 *
 *   POST /api/embed       {model, input: string | [string], truncate?}
 *                         -> {"model","embeddings":[[...]],"total_duration",
 *                             "load_duration","prompt_eval_count"}
 *   POST /api/embeddings  {model, prompt} -> {"embedding":[...]}  (legacy)
 *
 * As /v1/embeddings (api_embeddings.c) each text is tokenized and embedded
 * by the local model through the scheduler with the server's pooling, never
 * through the gateway. /api/embed's vectors are L2-normalised (as ollama's
 * and /v1/embeddings' are); the legacy route's are not (as ollama's are
 * not). truncate (default true) cuts a text to the slot's context; false
 * makes a longer text a 400.
 */
#include "server.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

enum { MAX_INPUTS = 2048 };

typedef struct embed_texts {
    int32_t *ids; /* all texts' tokens back to back */
    int n_ids;
    int *end; /* [n] where text i's tokens end */
    int n;
} embed_texts;

static bool add_text(srv_server *s, const char *text, bool truncate, embed_texts *t, srv_error *e) {
    const int n_ctx = srv_sched_n_ctx(s->sched);
    int32_t *ids = NULL;
    int n = 0;
    if (!srv_tokenize(s, text, strlen(text), &ids, &n, e)) return false;
    if (n > n_ctx && !truncate) {
        free(ids);
        return srv_fail(e, 400, "input", NULL,
                        "the input has %d tokens but the context holds %d (truncate is false)", n,
                        n_ctx);
    }
    if (n > n_ctx) n = n_ctx;
    int32_t *all = realloc(t->ids, (size_t)(t->n_ids + n + 1) * sizeof *all);
    if (!all) {
        free(ids);
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    }
    t->ids = all;
    memcpy(t->ids + t->n_ids, ids, (size_t)n * sizeof *ids);
    free(ids);
    t->n_ids += n;
    t->end[t->n++] = t->n_ids;
    return true;
}

/* The texts of the request: input (a string or strings) or the legacy prompt. */
static bool parse_texts(srv_server *s, const cJSON *root, bool legacy, embed_texts *t,
                        srv_error *e) {
    if (!cJSON_IsObject(root))
        return srv_fail(e, 400, NULL, NULL, "the body must be a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(model) || !model->valuestring[0])
        return srv_fail(e, 400, "model", NULL, "model is required");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncate");
    if (tr && !cJSON_IsBool(tr) && !cJSON_IsNull(tr))
        return srv_fail(e, 400, "truncate", NULL, "'truncate' must be a boolean");
    const bool truncate = !cJSON_IsFalse(tr);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, legacy ? "prompt" : "input");
    const char *name = legacy ? "prompt" : "input";
    const int n = cJSON_IsArray(in) ? cJSON_GetArraySize(in) : 1;
    if (!legacy && cJSON_IsArray(in) && n > MAX_INPUTS)
        return srv_fail(e, 400, name, NULL, "%d inputs; at most %d per request", n, MAX_INPUTS);
    if (!(t->end = malloc((size_t)(n ? n : 1) * sizeof *t->end)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    if (!in || cJSON_IsNull(in)) return true; /* nothing to embed */
    if (cJSON_IsString(in))
        return !in->valuestring[0] || add_text(s, in->valuestring, truncate, t, e);
    if (legacy || !cJSON_IsArray(in))
        return srv_fail(e, 400, name, NULL, "'%s' must be a string%s", name,
                        legacy ? "" : " or an array of strings");
    for (const cJSON *it = in->child; it; it = it->next) {
        if (!cJSON_IsString(it))
            return srv_fail(e, 400, name, NULL, "'input' must be a string or an array of strings");
        if (!add_text(s, it->valuestring, truncate, t, e)) return false;
    }
    return true;
}

static char *answer_json(srv_server *s, const cJSON *root, const srv_job *j, bool legacy,
                         double t0_ms) {
    const int d = hearth_model_n_embd(s->model);
    cJSON *o = cJSON_CreateObject();
    const int n = j ? j->n_inputs : 0;
    if (legacy) {
        cJSON *a = cJSON_AddArrayToObject(o, "embedding");
        for (int k = 0; n && k < d; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(j->embd[k]));
    } else {
        cJSON_AddStringToObject(o, "model",
                                cJSON_GetObjectItemCaseSensitive(root, "model")->valuestring);
        cJSON *all = cJSON_AddArrayToObject(o, "embeddings");
        for (int i = 0; i < n; i++) {
            cJSON *a = cJSON_CreateArray();
            cJSON_AddItemToArray(all, a);
            const float *v = j->embd + (size_t)i * (size_t)d;
            for (int k = 0; k < d; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[k]));
        }
        cJSON_AddNumberToObject(o, "total_duration",
                                (double)(long long)((srv_now_ms() - t0_ms) * 1e6));
        cJSON_AddNumberToObject(o, "load_duration", 0);
        cJSON_AddNumberToObject(o, "prompt_eval_count", j ? j->n_prompt : 0);
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

void srv_handle_ollama_embed(srv_exchange *x, bool legacy) {
    srv_server *s = x->srv;
    srv_error e;
    embed_texts t = {0};
    srv_job *j = NULL;
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    bool ok = root ? parse_texts(s, root, legacy, &t, &e)
                   : srv_fail(&e, 400, NULL, NULL, "the body is not valid JSON");
    const size_t d = (size_t)hearth_model_n_embd(s->model);
    if (ok && t.n > 0) {
        j = srv_job_new(t.ids, t.n_ids);
        if (j) j->embd = malloc((size_t)t.n * d * sizeof *j->embd);
        ok = (j && j->embd) || srv_fail(&e, 500, NULL, NULL, "out of memory");
        if (ok) {
            j->n_inputs = t.n;
            j->input_end = t.end;
            t.end = NULL;
            j->pooling = s->pooling;
            j->normalize = !legacy;
            if (s->cfg.timeout_s > 0) j->deadline_ms = srv_now_ms() + 1e3 * s->cfg.timeout_s;
        }
    }
    free(t.ids);
    free(t.end);
    if (!ok) {
        srv_job_release(j);
        srv_respond_error(x, &e);
        cJSON_Delete(root);
        return;
    }
    if (j) {
        x->prompt_tokens = j->n_prompt;
        if (!srv_run_job(x, j, false)) {
            cJSON_Delete(root);
            return;
        }
    }
    char *json = NULL;
    if (j && j->err)
        srv_fail(&e, 500, NULL, NULL, "embedding failed: %s", j->err_msg);
    else if (j && j->n_done < j->n_inputs)
        srv_fail(&e, 503, NULL, NULL, "the request ran out of time (%d s) after %d of %d inputs",
                 s->cfg.timeout_s, j->n_done, j->n_inputs);
    else if (!(json = answer_json(s, root, j, legacy, x->t0_ms)))
        srv_fail(&e, 500, NULL, NULL, "out of memory");
    if (json)
        srv_respond_json(x, 200, json);
    else
        srv_respond_error(x, &e);
    srv_job_release(j);
    cJSON_Delete(root);
}
