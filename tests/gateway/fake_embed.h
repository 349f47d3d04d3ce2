/*
 * fake_embed.h - the fake cloud's embeddings and rerank endpoints, for the
 * remote embeddings tests: fake_embed_serve(fc) has fake_cloud.h's server
 * answer POST /v1/embeddings (OpenAI's format) and POST /v1/rerank,
 * /v2/rerank (Jina's and Cohere's). Bodies are recorded as chats' are.
 *
 * Input i's vector is [its length in bytes, i, its bytes' sum mod 1000,
 * 0.5, 0.5, ...]: 4 numbers, or "dimensions" when the request asks; the
 * length says which text the tier saw (a redacted one is shorter). The usage
 * is prompt_tokens 5 n + 2 (/v1/rerank: total_tokens 3 n + 1; /v2/rerank:
 * only Cohere's meta.billed_units.search_units, no tokens). A document's
 * relevance is the count of the query's words (split at spaces) it holds;
 * results best first (equal scores in document order), top_n of them.
 *
 * By the model: fake_cloud.h's faults (e429-N, e500-N, drop0-N, bad,
 * garbage), slow-MS, "unsorted" (results in document order), "nousage"
 * (no usage at all), and answers a strict client must refuse:
 *   short    (embeddings) a vector fewer than the inputs
 *   ragged   the second vector one number shorter
 *   nonnum   a number given as a string
 *   oob      a result whose index is the number of documents
 *   dup      the first result twice
 *   nodata   {"object": "list"} without data or results
 */
#ifndef HEARTH_TEST_FAKE_EMBED_H
#define HEARTH_TEST_FAKE_EMBED_H

#include "gateway/fake_cloud.h"

static inline cJSON *fe_vectors(const cJSON *input, int dims, const char *model) {
    cJSON *data = cJSON_CreateArray();
    const int n = cJSON_GetArraySize(input);
    const int keep = !strcmp(model, "short") ? n - 1 : n;
    for (int i = 0; i < keep; i++) {
        const char *t = cJSON_GetStringValue(cJSON_GetArrayItem(input, i));
        t = t ? t : "";
        unsigned sum = 0;
        for (const unsigned char *p = (const unsigned char *)t; *p; p++) sum += *p;
        cJSON *item = cJSON_CreateObject(), *v = cJSON_AddArrayToObject(item, "embedding");
        cJSON_AddStringToObject(item, "object", "embedding");
        cJSON_AddNumberToObject(item, "index", i);
        const int d = !strcmp(model, "ragged") && i == 1 ? dims - 1 : dims;
        for (int k = 0; k < d; k++) {
            const double x = k == 0 ? (double)strlen(t) : k == 1 ? i : k == 2 ? sum % 1000 : 0.5;
            cJSON_AddItemToArray(v, !strcmp(model, "nonnum") && k == 2 ? cJSON_CreateString("x")
                                                                       : cJSON_CreateNumber(x));
        }
        cJSON_AddItemToArray(data, item);
    }
    return data;
}

/* The count of the query's words that doc holds. */
static inline int fe_score(const char *query, const char *doc) {
    char q[512];
    snprintf(q, sizeof q, "%s", query);
    int n = 0;
    for (char *save = NULL, *w = strtok_r(q, " ", &save); w; w = strtok_r(NULL, " ", &save))
        n += strstr(doc, w) != NULL;
    return n;
}

static inline cJSON *fe_results(const cJSON *req, const char *model) {
    const cJSON *docs = cJSON_GetObjectItem(req, "documents");
    const char *query = cJSON_GetStringValue(cJSON_GetObjectItem(req, "query"));
    const int n = cJSON_GetArraySize(docs);
    const cJSON *tn = cJSON_GetObjectItem(req, "top_n");
    const int top = cJSON_IsNumber(tn) && tn->valueint < n ? tn->valueint : n;
    int order[64], score[64];
    for (int i = 0; i < n && i < 64; i++) {
        const char *d = cJSON_GetStringValue(cJSON_GetArrayItem(docs, i));
        score[i] = fe_score(query ? query : "", d ? d : "");
        order[i] = i;
    }
    for (int i = 1; i < n && i < 64 && strcmp(model, "unsorted"); i++) /* stable insertion */
        for (int k = i; k > 0 && score[order[k]] > score[order[k - 1]]; k--) {
            const int t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    cJSON *res = cJSON_CreateArray();
    for (int k = 0; k < top && k < 64; k++) {
        cJSON *r = cJSON_CreateObject();
        const int i = !strcmp(model, "dup") && k == 1 ? order[0] : order[k];
        cJSON_AddNumberToObject(r, "index", !strcmp(model, "oob") && k == 0 ? n : i);
        if (!strcmp(model, "nonnum"))
            cJSON_AddStringToObject(r, "relevance_score", "high");
        else
            cJSON_AddNumberToObject(r, "relevance_score", score[i]);
        cJSON_AddItemToArray(res, r);
    }
    return res;
}

static inline enum MHD_Result fe_answer(fake_cloud *fc, struct MHD_Connection *c, const char *url,
                                        const char *body) {
    const bool embed = !strcmp(url, "/v1/embeddings");
    const bool cohere = !strcmp(url, "/v2/rerank");
    if (!embed && !cohere && strcmp(url, "/v1/rerank"))
        return fc_send(c, 404, "{\"error\":{\"message\":\"no such endpoint\"}}");
    cJSON *req = cJSON_Parse(body);
    if (!req) return fc_send(c, 400, "{\"error\":{\"message\":\"not JSON\"}}");
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(req, "model"));
    model = model ? model : "ok";
    enum MHD_Result rc;
    int ms = 0;
    if (fc_fault(fc, c, model, &rc)) {
        cJSON_Delete(req);
        return rc;
    }
    if (sscanf(model, "slow-%d", &ms) == 1) fc_sleep_ms(ms);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    int n;
    if (embed) {
        const cJSON *input = cJSON_GetObjectItem(req, "input");
        const cJSON *dims = cJSON_GetObjectItem(req, "dimensions");
        n = cJSON_GetArraySize(input);
        cJSON_AddStringToObject(o, "object", "list");
        if (strcmp(model, "nodata"))
            cJSON_AddItemToObject(
                o, "data", fe_vectors(input, cJSON_IsNumber(dims) ? dims->valueint : 4, model));
    } else {
        n = cJSON_GetArraySize(cJSON_GetObjectItem(req, "documents"));
        if (strcmp(model, "nodata")) cJSON_AddItemToObject(o, "results", fe_results(req, model));
    }
    const bool usage = strcmp(model, "nousage") != 0;
    if (usage && cohere) {
        cJSON_AddNumberToObject(
            cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "meta"), "billed_units"),
            "search_units", 1);
    } else if (usage) {
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        if (embed) cJSON_AddNumberToObject(u, "prompt_tokens", 5 * n + 2);
        cJSON_AddNumberToObject(u, "total_tokens", embed ? 5 * n + 2 : 3 * n + 1);
    }
    char *json = cJSON_PrintUnformatted(o);
    rc = fc_send(c, 200, json);
    free(json);
    cJSON_Delete(o);
    cJSON_Delete(req);
    return rc;
}

/* Has fc answer the embeddings and rerank paths too. */
static inline void fake_embed_serve(fake_cloud *fc) { fc->other = fe_answer; }

#endif
