/*
 * api_rerank.c - POST /v1/rerank (also /rerank, /v1/reranking, /reranking,
 * as llama-server routes them): a reranker scores documents against a
 * query. Two shapes, as llama-server takes them:
 *
 *   Jina / Cohere: {model, query, documents: [string | {text}], top_n?,
 *                  return_documents?} -> {model, object: "list", usage,
 *                  results: [{index, relevance_score, document?: {text}}]}
 *   TEI (Hugging Face's text-embeddings-inference), when `texts` is given:
 *                  {query, texts: [string], return_text?} ->
 *                  [{index, score, text?}]
 *
 * results best first, top_n of them (default all). Each pair is tokenized
 * as the model asks (hearth_tokenize_rerank) and the pairs run as one
 * scheduler job, several in a forward pass, like /v1/embeddings' texts.
 * Scores are llama.cpp's: an encoder's raw logit, Qwen3-Reranker's P(yes).
 * A model that a remote tier declares (rerank_models; no local model of
 * that name) goes to that tier through the gateway instead (remote(),
 * api_remote_embed.c), in Cohere's shape whatever the client's: query and
 * documents redacted, top_n passed on, the documents never asked back (a
 * result's text is the client's own document, taken by index).
 */
#include "api_embed.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* A pair's tokens appended to in (documents[i] names it in errors). */
static bool add_pair(const srv_model *m, srv_embed_input *in, const char *query, const char *doc,
                     const char *field, srv_error *e) {
    const size_t q_len = strlen(query), d_len = strlen(doc);
    size_t n = 0;
    hearth_err err = hearth_tokenize_rerank(m->model, query, q_len, doc, d_len, NULL, 0, &n);
    if (err && err != HEARTH_ERR_INVALID_ARG)
        return srv_fail(e, 500, NULL, NULL, "tokenizing: %s", hearth_last_error());
    if (n > (size_t)INT32_MAX / 2)
        return srv_fail(e, 400, field, "context_length_exceeded", "the document is too long");
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return srv_fail(e, 500, NULL, NULL, "out of memory");
    err = hearth_tokenize_rerank(m->model, query, q_len, doc, d_len, ids, n, &n);
    const bool ok = err ? srv_fail(e, 500, NULL, NULL, "tokenizing: %s", hearth_last_error())
                        : srv_embed_add_ids(m, in, ids, (int)n, false, field, e);
    free(ids);
    return ok;
}

/* The text of documents[i]: a string, or Cohere's {"text": string}. */
static const char *doc_text(const cJSON *item) {
    if (cJSON_IsString(item)) return item->valuestring;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(item, "text");
    return cJSON_IsObject(item) && cJSON_IsString(t) ? t->valuestring : NULL;
}

typedef struct rerank_req {
    const char *model; /* as asked for (NULL: the default model) */
    const char *query;
    const cJSON *docs;  /* the array, in the parsed body */
    const char **texts; /* [n] each document's text, in the parsed body (malloc'd) */
    int n;
    bool tei;       /* `texts` given: TEI's shape */
    bool with_text; /* return_documents / return_text */
    int top_n;
} rerank_req;

/* The body's fields, checked (the model is taken afterwards, by whichever
 * answers: the local reranker or a remote tier). */
static bool parse(const cJSON *root, rerank_req *r, srv_error *e) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(root, "query");
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(root, "texts");
    const cJSON *top_n = cJSON_GetObjectItemCaseSensitive(root, "top_n");
    r->tei = texts != NULL;
    const char *docs_name = r->tei ? "texts" : "documents";
    const char *ret_name = r->tei ? "return_text" : "return_documents";
    const cJSON *ret = cJSON_GetObjectItemCaseSensitive(root, ret_name);
    r->docs = r->tei ? texts : cJSON_GetObjectItemCaseSensitive(root, "documents");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model))
        return srv_fail(e, 400, "model", NULL, "'model' must be a string");
    r->model = cJSON_IsString(model) ? model->valuestring : NULL;
    if (!cJSON_IsString(query)) return srv_fail(e, 400, "query", NULL, "'query' must be a string");
    size_t bad;
    if (!hr_utf8_valid(query->valuestring, strlen(query->valuestring), &bad))
        return srv_fail(e, 400, "query", NULL, "invalid UTF-8 at byte %zu", bad);
    r->query = query->valuestring;
    const int n = cJSON_GetArraySize(r->docs);
    if (!cJSON_IsArray(r->docs) || n == 0)
        return srv_fail(e, 400, docs_name, NULL, "'%s' must be a non-empty array of strings",
                        docs_name);
    if (n > SRV_EMBED_MAX_INPUTS)
        return srv_fail(e, 400, docs_name, NULL, "%d documents; at most %d per request", n,
                        SRV_EMBED_MAX_INPUTS);
    r->top_n = n;
    if (top_n && !cJSON_IsNull(top_n)) {
        if (!cJSON_IsNumber(top_n) || !(top_n->valuedouble >= 1) ||
            top_n->valuedouble != (double)(int)top_n->valuedouble)
            return srv_fail(e, 400, "top_n", NULL, "'top_n' must be a positive integer");
        if (top_n->valuedouble < n) r->top_n = (int)top_n->valuedouble;
    }
    if (ret && !cJSON_IsBool(ret))
        return srv_fail(e, 400, ret_name, NULL, "'%s' must be a boolean", ret_name);
    r->with_text = cJSON_IsTrue(ret);
    if (!(r->texts = calloc((size_t)n, sizeof *r->texts)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (const cJSON *item = r->docs->child; item; item = item->next, r->n++) {
        char field[32];
        snprintf(field, sizeof field, "%s[%d]", docs_name, r->n);
        const char *text =
            r->tei ? (cJSON_IsString(item) ? item->valuestring : NULL) : doc_text(item);
        if (!text)
            return srv_fail(e, 400, field, NULL, "'%s' must be a string%s", field,
                            r->tei ? "" : " or {\"text\": string}");
        if (!hr_utf8_valid(text, strlen(text), &bad))
            return srv_fail(e, 400, field, NULL, "invalid UTF-8 at byte %zu", bad);
        r->texts[r->n] = text;
    }
    return true;
}

/* The local reranker's pairs, one a document. */
static bool local_pairs(srv_exchange *x, const rerank_req *r, srv_embed_input *in, srv_error *e) {
    const srv_model *m = srv_model_take(x, r->model, e);
    if (!m) return false;
    if (!hearth_model_ranks(m->model))
        return srv_fail(e, 400, "model", "model_not_reranker",
                        "model '%s' is not a reranker (its file has no pooling_type rank); "
                        "serve a reranker such as bge-reranker or Qwen3-Reranker",
                        m->id);
    for (int i = 0; i < r->n; i++) {
        char field[32];
        snprintf(field, sizeof field, "%s[%d]", r->tei ? "texts" : "documents", i);
        if (!add_pair(m, in, r->query, r->texts[i], field, e)) return false;
    }
    return true;
}

/* The results: document order[k] scored score[k], best first, count of
 * them; with its text when asked for, always the client's own document. */
static cJSON *results(const rerank_req *r, const int *order, const float *score, int count) {
    cJSON *arr = cJSON_CreateArray();
    bool ok = arr != NULL;
    for (int k = 0; ok && k < count; k++) {
        const int i = order[k];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o) && cJSON_AddNumberToObject(o, "index", i) &&
             cJSON_AddNumberToObject(o, r->tei ? "score" : "relevance_score", score[k]);
        if (ok && r->with_text) {
            cJSON *d = r->tei ? o : cJSON_AddObjectToObject(o, "document");
            ok = d && cJSON_AddStringToObject(d, "text", r->texts[i]);
        }
    }
    if (!ok) cJSON_Delete(arr);
    return ok ? arr : NULL;
}

static char *response_json(const rerank_req *r, const char *model, const int *order,
                           const float *score, int count, int prompt_tokens) {
    cJSON *list = results(r, order, score, count);
    if (!list || r->tei) {
        char *json = list ? cJSON_PrintUnformatted(list) : NULL;
        cJSON_Delete(list);
        return json;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *usage = root ? cJSON_AddObjectToObject(root, "usage") : NULL;
    bool ok = usage && cJSON_AddStringToObject(root, "model", model) &&
              cJSON_AddStringToObject(root, "object", "list") &&
              cJSON_AddNumberToObject(usage, "prompt_tokens", prompt_tokens) &&
              cJSON_AddNumberToObject(usage, "total_tokens", prompt_tokens);
    ok = ok && cJSON_AddItemToObject(root, "results", list);
    if (!ok) cJSON_Delete(list); /* not attached */
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

/* The local reranker's answer: the job's scores, best first. */
static char *local_json(const srv_exchange *x, const rerank_req *r, const srv_job *j) {
    const int n = j->n_inputs, count = r->top_n;
    assert(count <= n); /* parse keeps it within the documents */
    int *order = malloc((size_t)n * sizeof *order);
    float *score = calloc((size_t)n, sizeof *score);
    char *json = NULL;
    if (order && score && hearth_rank_order(j->embd, n, order) == HEARTH_OK) {
        for (int k = 0; k < n; k++) score[k] = j->embd[order[k]];
        json = response_json(r, x->model->id, order, score, count, j->n_prompt);
    }
    free(order);
    free(score);
    return json;
}

/* A remote tier's answer: its results (top_n asked of it too), the
 * documents given back from the request. */
static void remote(srv_exchange *x, const rerank_req *r) {
    const gw_embed_request q = {.kind = GW_EMBED_RERANK,
                                .model = r->model,
                                .texts = r->texts,
                                .n_texts = r->n,
                                .query = r->query,
                                .top_n = r->top_n < r->n ? r->top_n : 0};
    gw_embed_response out;
    if (!srv_remote_run(x, &q, &out)) return;
    const gw_embed_answer *a = &out.answer;
    srv_remote_respond(x,
                       response_json(r, r->model, a->order, a->scores,
                                     a->n_results < r->top_n ? a->n_results : r->top_n,
                                     out.prompt_tokens),
                       &out);
}

void srv_handle_rerank(srv_exchange *x) {
    srv_error e;
    srv_embed_input in = {0};
    rerank_req r = {0};
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    bool ok = root ? cJSON_IsObject(root) ||
                         srv_fail(&e, 400, NULL, NULL, "the body must be a JSON object")
                   : srv_fail(&e, 400, NULL, NULL, "the body is not valid JSON");
    ok = ok && parse(root, &r, &e);
    const bool far = ok && srv_remote_tier(x, GW_EMBED_RERANK, r.model) > 0;
    srv_job *j = NULL;
    if (far) {
        remote(x, &r);
    } else if (!(ok && local_pairs(x, &r, &in, &e))) {
        srv_embed_input_fini(&in);
        srv_respond_error(x, &e);
    } else if ((j = srv_rank_run(x, &in))) {
        char *json = local_json(x, &r, j); /* reads the documents from root */
        srv_job_release(j);
        srv_respond_json(x, 200, json); /* NULL: a 500 "out of memory" */
    }
    free(r.texts);
    cJSON_Delete(root);
}
