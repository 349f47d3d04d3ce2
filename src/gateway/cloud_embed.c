/*
 * cloud_embed.c - what a remote tier's embeddings and rerank endpoints are
 * sent and what they answer, read strictly (the transport is cloud.c's
 * gw_cloud_post; the request end to end is embed.c):
 *
 *   POST {base}/embeddings  {"model", "input": [string], "dimensions"?}
 *        -> {"data": [{"embedding": [number], "index"?}], "usage"?}     (OpenAI)
 *   POST {base}/rerank      {"model", "query", "documents": [string], "top_n"?}
 *        -> {"results": [{"index", "relevance_score"}], "usage"?, "meta"?}
 *                                                   (Cohere, Jina, vLLM; Voyage's "data")
 *
 * The inputs always go as a list of strings (the privacy guard reads text,
 * never token ids) and the vectors are asked for as floats (the default
 * everywhere; base64 is written for the client by the server). Every answer
 * is checked before anything reaches a client: the count of vectors, one
 * size for all (the one asked for), finite numbers, indices in range and
 * each once; anything else makes the call a bad response (a 502).
 */
#include "gateway.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { EMBED_DIM_MAX = 1 << 16 }; /* OpenAI's largest is 3072 */

const char *gw_embed_kind_name(gw_embed_kind k) {
    return k == GW_EMBED_RERANK ? "rerank" : "embeddings";
}

int gw_config_embed_tier(const gw_config *c, gw_embed_kind kind, const char *model) {
    for (int t = 1; model && t < c->n_tiers; t++) {
        const gw_tier *a = &c->tiers[t];
        const int n = kind == GW_EMBED_RERANK ? a->n_rerank_models : a->n_embedding_models;
        for (int i = 0; i < n; i++)
            if (!strcmp(kind == GW_EMBED_RERANK ? a->rerank_models[i] : a->embedding_models[i],
                        model))
                return t;
    }
    return -1;
}

/* Whether s[0..n) ends in "/v" and digits (an API version). */
static bool ends_in_version(const char *s, size_t n) {
    size_t k = n;
    while (k > 0 && isdigit((unsigned char)s[k - 1])) k--;
    return k < n && k >= 2 && s[k - 1] == 'v' && s[k - 2] == '/';
}

hearth_err gw_service_url(const char *base, const char *path, const char *suffix, char *out,
                          size_t cap) {
    const bool https = !strncasecmp(base, "https://", 8);
    if (!https && strncasecmp(base, "http://", 7))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "'%s' is not an http:// or https:// URL", base);
    int m;
    if (path && (!strncasecmp(path, "http://", 7) || !strncasecmp(path, "https://", 8))) {
        m = snprintf(out, cap, "%s", path);
    } else if (path) {
        if (path[0] != '/')
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "'%s' is neither a path from '/' nor an http(s):// URL", path);
        const char *host = base + (https ? 8 : 7);
        const size_t origin = (size_t)(host - base) + strcspn(host, "/?#");
        m = snprintf(out, cap, "%.*s%s", (int)origin, base, path);
    } else {
        size_t n = strlen(base);
        while (n > 8 && base[n - 1] == '/') n--;
        static const char chat[] = "/chat/completions";
        if (n >= sizeof chat - 1 && !strncmp(base + n - (sizeof chat - 1), chat, sizeof chat - 1))
            n -= sizeof chat - 1;
        m = snprintf(out, cap, "%.*s%s%s", (int)n, base, ends_in_version(base, n) ? "" : "/v1",
                     suffix);
    }
    if (m < 0 || (size_t)m >= cap)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "the URL '%.40s...' is too long", base);
    return HEARTH_OK;
}

/* ---- request bodies ----------------------------------------------------------- */

static char *print(cJSON *o, bool ok) {
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* {"model": model, key: [strings]} */
static cJSON *body_with(const char *model, const char *key, const char *const *strings, int n,
                        bool *ok) {
    cJSON *o = cJSON_CreateObject();
    *ok = o && cJSON_AddStringToObject(o, "model", model);
    cJSON *a = *ok ? cJSON_AddArrayToObject(o, key) : NULL;
    *ok = a != NULL;
    for (int i = 0; *ok && i < n; i++)
        *ok = cJSON_AddItemToArray(a, cJSON_CreateString(strings[i]));
    return o;
}

char *gw_embed_body(const char *model, const char *const *texts, int n, int dimensions) {
    bool ok;
    cJSON *o = body_with(model, "input", texts, n, &ok);
    if (ok && dimensions > 0) ok = cJSON_AddNumberToObject(o, "dimensions", dimensions) != NULL;
    return print(o, ok);
}

char *gw_rerank_body(const char *model, const char *query, const char *const *docs, int n,
                     int top_n) {
    bool ok;
    cJSON *o = body_with(model, "documents", docs, n, &ok);
    ok = ok && cJSON_AddStringToObject(o, "query", query);
    if (ok && top_n > 0) ok = cJSON_AddNumberToObject(o, "top_n", top_n) != NULL;
    return print(o, ok);
}

/* ---- answers ------------------------------------------------------------------ */

void gw_embed_answer_free(gw_embed_answer *a) {
    free(a->vectors);
    free(a->order);
    free(a->scores);
    a->vectors = a->scores = NULL;
    a->order = NULL;
    a->dim = a->n_results = 0;
}

/* Says why an answer is refused; false. */
static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}
/* spelled out so that the static analyzer sees the false */
#define fail(why, cap, ...) (say(why, cap, __VA_ARGS__), false)

/* A non-negative integer below limit, else -1. */
static int index_of(const cJSON *v, int limit) {
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < limit &&
                   v->valuedouble == floor(v->valuedouble)
               ? (int)v->valuedouble
               : -1;
}

/* A token count the tier reported, else -1. */
static int count_at(const cJSON *o, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 2e9 ? (int)v->valuedouble
                                                                            : -1;
}

/* usage.prompt_tokens, usage.total_tokens (Jina, vLLM, Voyage), Cohere's
 * meta.billed_units.input_tokens or meta.tokens.input_tokens. */
static int tokens_of(const cJSON *root) {
    int n = count_at(root, "usage", "prompt_tokens");
    if (n < 0) n = count_at(root, "usage", "total_tokens");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    if (n < 0) n = count_at(meta, "billed_units", "input_tokens");
    if (n < 0) n = count_at(meta, "tokens", "input_tokens");
    return n;
}

/* Vector i of the answer (item, its place in data[]) into a->vectors. */
static bool read_vector(const cJSON *item, int place, gw_embed_answer *a, bool *seen, char *why,
                        size_t cap) {
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(item, "index");
    const int i = idx ? index_of(idx, a->n) : place;
    if (i < 0) return fail(why, cap, "data[%d].index is not an index below %d", place, a->n);
    if (seen[i]) return fail(why, cap, "data[%d]: a second vector for input %d", place, i);
    seen[i] = true;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(item, "embedding");
    const int d = cJSON_GetArraySize(e);
    if (!cJSON_IsArray(e) || d == 0)
        return fail(why, cap, "data[%d].embedding is not a non-empty array of numbers", place);
    if (!a->vectors) {
        if (a->want_dim && d != a->want_dim)
            return fail(why, cap, "vectors of %d dimensions, not the %d asked for", d, a->want_dim);
        if (d > EMBED_DIM_MAX) return fail(why, cap, "vectors of %d dimensions", d);
        a->dim = d;
        a->vectors = malloc((size_t)a->n * (size_t)d * sizeof *a->vectors);
        if (!a->vectors) return fail(why, cap, "out of memory");
    }
    if (d != a->dim)
        return fail(why, cap, "data[%d] has %d dimensions, data[0] %d", place, d, a->dim);
    float *v = a->vectors + (size_t)i * (size_t)d;
    int k = 0;
    for (const cJSON *x = e->child; x; x = x->next, k++) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 3.0e38)
            return fail(why, cap, "data[%d].embedding[%d] is not a finite number", place, k);
        v[k] = (float)x->valuedouble;
    }
    return true;
}

static bool read_vectors(const cJSON *root, gw_embed_answer *a, char *why, size_t cap) {
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsArray(data)) return fail(why, cap, "the answer has no \"data\" array");
    const int n = cJSON_GetArraySize(data);
    if (n != a->n) return fail(why, cap, "%d vectors for %d inputs", n, a->n);
    bool *seen = calloc((size_t)a->n, sizeof *seen);
    if (!seen) return fail(why, cap, "out of memory");
    bool ok = true;
    int place = 0;
    for (const cJSON *it = data->child; ok && it; it = it->next, place++)
        ok = read_vector(it, place, a, seen, why, cap);
    free(seen);
    return ok;
}

static bool read_results(const cJSON *root, gw_embed_answer *a, char *why, size_t cap) {
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (!res) res = cJSON_GetObjectItemCaseSensitive(root, "data"); /* Voyage's */
    const int n = cJSON_GetArraySize(res), most = a->top_n > 0 && a->top_n < a->n ? a->top_n : a->n;
    if (!cJSON_IsArray(res)) return fail(why, cap, "the answer has no \"results\" array");
    if (n < 1 || n > most)
        return fail(why, cap, "%d results for %d documents (at most %d)", n, a->n, most);
    bool *seen = calloc((size_t)a->n, sizeof *seen);
    int *doc = malloc((size_t)n * sizeof *doc), *pos = malloc((size_t)n * sizeof *pos);
    float *score = malloc((size_t)n * sizeof *score); /* per result, as the tier sent them */
    a->order = malloc((size_t)n * sizeof *a->order);
    a->scores = malloc((size_t)n * sizeof *a->scores);
    bool ok =
        (seen && doc && pos && score && a->order && a->scores) || fail(why, cap, "out of memory");
    int k = 0;
    for (const cJSON *it = res->child; ok && it; it = it->next, k++) {
        const int i = index_of(cJSON_GetObjectItemCaseSensitive(it, "index"), a->n);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "relevance_score");
        if (i < 0)
            ok = fail(why, cap, "results[%d].index is not an index below %d", k, a->n);
        else if (seen[i])
            ok = fail(why, cap, "results[%d]: document %d twice", k, i);
        else if (!cJSON_IsNumber(s) || !isfinite(s->valuedouble) || fabs(s->valuedouble) > 3.0e38)
            ok = fail(why, cap, "results[%d].relevance_score is not a finite number", k);
        else {
            seen[i] = true;
            doc[k] = i;
            score[k] = (float)s->valuedouble;
        }
    }
    /* best first, whatever order the tier sent them in */
    if (ok && hearth_rank_order(score, n, pos)) ok = fail(why, cap, "%s", hearth_last_error());
    for (k = 0; ok && k < n; k++) {
        a->order[k] = doc[pos[k]];
        a->scores[k] = score[pos[k]];
    }
    if (ok) a->n_results = n;
    free(seen);
    free(doc);
    free(pos);
    free(score);
    return ok;
}

bool gw_embed_read(gw_embed_kind kind, const char *body, size_t len, gw_embed_answer *a, char *why,
                   size_t cap) {
    gw_sha256_hex(body, len, a->received_sha256);
    a->tokens = -1;
    cJSON *root = cJSON_ParseWithLength(body, len);
    bool ok = root ? cJSON_IsObject(root) || fail(why, cap, "the answer is not a JSON object")
                   : fail(why, cap, "the answer is not JSON");
    if (ok)
        ok = kind == GW_EMBED_RERANK ? read_results(root, a, why, cap)
                                     : read_vectors(root, a, why, cap);
    if (ok) a->tokens = tokens_of(root);
    if (!ok) gw_embed_answer_free(a);
    cJSON_Delete(root);
    return ok;
}
