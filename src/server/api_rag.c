/*
 * api_rag.c - retrieval in `hearth serve --rag DB` (docs/rag.md):
 *
 *   POST /v1/hearth/rag/search {"query", "k", "mode"}: the best chunks;
 *   "rag": true | {"k", "mode"} in a /v1/chat/completions body: once the
 *   chat request is parsed (request.c keeps the member, api_chat.c calls
 *   srv_rag_augment), its last user message gets the best chunks for its
 *   text as numbered context before it, then the request goes on as any
 *   chat request; the body is parsed once.
 *
 * The index is opened read-only at start and shared under rag_mu (a handle
 * serves one thread at a time); it reloads the vectors when `hearth rag
 * index` has written since. Query vectors come from the server's model
 * through the scheduler's embedding jobs, and only when the index's vectors
 * are that model's. Retrieved text is the deployment's own documents: unless
 * --rag-allow-cloud, a request that used it is answered by the local tier.
 */
#include "api_embed.h"
#include "core/core.h"
#include "rag/rag.h"
#include "server.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

enum { RAG_K_DEFAULT = 5 };

/* k and mode from an object (the search body, or the chat body's "rag"). */
static bool parse_knobs(const cJSON *o, const char *prefix, int *k, rag_mode *mode, srv_error *e) {
    char field[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "k");
    *k = RAG_K_DEFAULT;
    *mode = RAG_MODE_AUTO;
    if (v) {
        snprintf(field, sizeof field, "%sk", prefix);
        if (!cJSON_IsNumber(v) || v->valuedouble != (int)v->valuedouble || v->valuedouble < 1 ||
            v->valuedouble > 100)
            return srv_fail(e, 400, field, NULL, "'%s' must be an integer in 1..100", field);
        *k = (int)v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "mode"))) {
        snprintf(field, sizeof field, "%smode", prefix);
        if (!cJSON_IsString(v) || !rag_mode_parse(v->valuestring, mode))
            return srv_fail(e, 400, field, NULL, "'%s' must be one of auto, bm25, vector, hybrid",
                            field);
    }
    return true;
}

/* The query's embedding by the request's model (x->model) when the index's
 * vectors are that model's; NULL otherwise, or when x was answered (an
 * error: *failed). */
static float *query_vector(srv_exchange *x, const char *text, size_t len, bool *failed) {
    srv_server *s = x->srv;
    const srv_model *m = x->model;
    *failed = false;
    rag_info in;
    pthread_mutex_lock(&s->rag_mu);
    const hearth_err err = rag_info_get(s->rag, &in);
    pthread_mutex_unlock(&s->rag_mu);
    if (err || !in.n_vectors || strcmp(in.model, m->rag_model_id)) return NULL;
    srv_embed_input input = {0};
    srv_error e;
    if (!srv_embed_add_text(m, &input, text, len, true, "query", &e)) {
        srv_embed_input_fini(&input);
        srv_respond_error(x, &e);
        *failed = true;
        return NULL;
    }
    srv_job *j = srv_embed_run(x, &input, true);
    if (!j) {
        *failed = true;
        return NULL;
    }
    const int d = hearth_model_n_embd(m->model);
    float *v = malloc((size_t)d * sizeof *v);
    if (v) memcpy(v, j->embd, (size_t)d * sizeof *v);
    srv_job_release(j);
    return v;
}

/* The hits for text; false when x was answered (an error). */
static bool retrieve(srv_exchange *x, const char *text, size_t len, int k, rag_mode mode,
                     rag_hits *h) {
    srv_server *s = x->srv;
    bool failed;
    float *v = mode == RAG_MODE_BM25 ? NULL : query_vector(x, text, len, &failed);
    if (mode != RAG_MODE_BM25 && failed) return false;
    const rag_query q = {.text = text,
                         .len = len,
                         .vector = v,
                         .model = v ? x->model->rag_model_id : NULL,
                         .k = k,
                         .mode = mode};
    pthread_mutex_lock(&s->rag_mu);
    const hearth_err err = rag_search(s->rag, &q, h);
    pthread_mutex_unlock(&s->rag_mu);
    free(v);
    if (err) {
        srv_error e;
        srv_fail(&e, err == HEARTH_ERR_INVALID_ARG ? 400 : 500, "query",
                 err == HEARTH_ERR_INVALID_ARG ? NULL : "rag_error", "%s", hearth_last_error());
        srv_respond_error(x, &e);
        return false;
    }
    return true;
}

static bool no_index(srv_exchange *x) {
    if (x->srv->rag) return false;
    srv_error e;
    srv_fail(&e, 400, "rag", "rag_disabled",
             "retrieval is off: start the server with --rag DB (an index from hearth rag index)");
    srv_respond_error(x, &e);
    return true;
}

/* The search response; NULL when out of memory. */
static char *hits_json(const rag_hits *h) {
    cJSON *out = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(out, "data");
    cJSON_AddStringToObject(out, "object", "list");
    cJSON_AddStringToObject(out, "mode", rag_mode_name(h->mode));
    for (size_t i = 0; i < h->n; i++)
        cJSON_AddItemToArray(data, rag_hit_json(&h->hit[i], (int)i + 1));
    char *json = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return json;
}

void srv_handle_rag_search(srv_exchange *x) {
    if (no_index(x)) return;
    srv_error e;
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(root, "query");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model"); /* whose vectors */
    int k;
    rag_mode mode;
    rag_hits h;
    bool answered = false;
    if (!cJSON_IsObject(root))
        srv_fail(&e, 400, NULL, NULL, "the body must be a JSON object");
    else if (model && !cJSON_IsString(model) && !cJSON_IsNull(model))
        srv_fail(&e, 400, "model", NULL, "'model' must be a string");
    else if (!srv_model_take(x, cJSON_IsString(model) ? model->valuestring : NULL, &e))
        ; /* e says why */
    else if (!cJSON_IsString(query) || !*query->valuestring)
        srv_fail(&e, 400, "query", NULL, "'query' must be a non-empty string");
    else if (parse_knobs(root, "", &k, &mode, &e)) {
        answered = !retrieve(x, query->valuestring, strlen(query->valuestring), k, mode, &h);
        if (!answered) {
            char *json = hits_json(&h);
            rag_hits_free(&h);
            answered = json != NULL;
            if (json)
                srv_respond_json(x, 200, json);
            else
                srv_fail(&e, 500, NULL, "out_of_memory", "out of memory");
        }
    }
    cJSON_Delete(root);
    if (!answered) srv_respond_error(x, &e);
}

/* The last user message of a chat request (NULL: none). */
static srv_message *last_user(srv_request *r) {
    srv_message *last = NULL;
    for (int i = 0; i < r->n_messages; i++)
        if (r->messages[i].role == TOK_CHAT_USER) last = &r->messages[i];
    return last;
}

/* The checks before retrieval; false with e filled. */
static bool rag_request_ok(const srv_exchange *x, const cJSON *opt, const srv_message *user, int *k,
                           rag_mode *mode, srv_error *e) {
    *k = RAG_K_DEFAULT;
    *mode = RAG_MODE_AUTO;
    if (!cJSON_IsTrue(opt) && !cJSON_IsObject(opt))
        return srv_fail(e, 400, "rag", NULL,
                        "'rag' must be a boolean or an object {\"k\", \"mode\"}");
    if (cJSON_IsObject(opt) && !parse_knobs(opt, "rag.", k, mode, e)) return false;
    if (!user || !user->content_len)
        return srv_fail(e, 400, "messages", NULL,
                        "'rag' needs a last user message whose content is a non-empty string");
    if (!x->srv->cfg.rag_allow_cloud && x->tier_header[0] && strcmp(x->tier_header, "local"))
        return srv_fail(e, 403, "rag", "rag_local_only",
                        "retrieved documents stay on this server: a 'rag' request is answered "
                        "locally (the operator can allow escalation with --rag-allow-cloud)");
    return true;
}

bool srv_rag_augment(srv_exchange *x, srv_request *r) {
    const cJSON *opt = r->rag;
    if (!opt) return true; /* not asked ("rag": false is not kept by the parser) */
    if (no_index(x)) return false;
    srv_error e;
    int k;
    rag_mode mode;
    srv_message *user = last_user(r);
    if (!rag_request_ok(x, opt, user, &k, &mode, &e)) {
        srv_respond_error(x, &e);
        return false;
    }
    rag_hits h;
    if (!retrieve(x, user->content, user->content_len, k, mode, &h)) return false;
    char *text = rag_user_message(&h, user->content);
    /* documents are the deployment's files: ill-formed UTF-8 in them is
     * replaced, as every message the server takes is valid UTF-8 */
    const size_t n = text ? strlen(text) : 0;
    char *clean = text && n < SIZE_MAX / 3 ? malloc(3 * n + 1) : NULL;
    if (clean) {
        free(user->content);
        user->content_len = srv_utf8_clean(text, n, clean);
        user->content = clean;
    }
    snprintf(x->rag_note, sizeof x->rag_note, "%zu passage%s, %s", h.n, h.n == 1 ? "" : "s",
             rag_mode_name(h.mode));
    if (!x->srv->cfg.rag_allow_cloud) snprintf(x->tier_header, sizeof x->tier_header, "local");
    free(text);
    rag_hits_free(&h);
    if (!clean) {
        srv_fail(&e, 500, NULL, "out_of_memory", "out of memory building the context");
        srv_respond_error(x, &e);
        return false;
    }
    return true;
}
