/*
 * sse_choices.h - what the n-choice and logit_bias server tests share: an
 * OpenAI error reply checked (status, shape, param), the library's own
 * generation from token ids under given sampling settings (the reference a
 * server answer is compared with), and an SSE body reassembled per choice
 * index (texts, finish reasons, where [DONE] came, the usage chunk).
 */
#ifndef HEARTH_TEST_SSE_CHOICES_H
#define HEARTH_TEST_SSE_CHOICES_H

#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"

#include <cjson/cJSON.h>

enum { SSE_CHOICES_MAX = 16 };

/* status, an {"error": {...}} body, and (when given) its param and a piece of
 * its message. */
static inline void expect_error(const char *what, const test_reply *r, int status,
                                const char *param, const char *needle) {
    CHECKF(r->status == status, "%s: status %d, expected %d (%.300s)", what, r->status, status,
           r->body);
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    CHECKF(j && cJSON_IsObject(jget(j, "error")), "%s: no error object: %.300s", what, r->body);
    if (j && param)
        CHECKF(jstr(j, "error.param") && !strcmp(jstr(j, "error.param"), param),
               "%s: param %s, expected %s", what, jstr(j, "error.param"), param);
    if (j && needle)
        CHECKF(jstr(j, "error.message") && strstr(jstr(j, "error.message"), needle),
               "%s: message '%s' lacks '%s'", what, jstr(j, "error.message"), needle);
    cJSON_Delete(j);
}

/* ---- the library's answer --------------------------------------------------- */

typedef struct ref_text {
    char buf[16384];
    size_t n;
} ref_text;

/* Keeps the text as the server's JSON shows it: without NUL bytes (a byte
 * token can be one; srv_json_string drops them). */
static inline bool ref_sink(const hearth_token_event *ev, void *user) {
    ref_text *t = user;
    for (size_t i = 0; i < ev->len && t->n + 1 < sizeof t->buf; i++)
        if (ev->text[i]) t->buf[t->n++] = ev->text[i];
    t->buf[t->n] = '\0';
    return true;
}

/* The server's sampling settings for an OpenAI request (request.c's
 * defaults: temperature 1, top_p 1, nothing else; a window of 64 with every
 * penalty off) with the temperature and seed given. */
static inline hearth_sampling openai_sampling(float temperature, uint64_t seed) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = temperature;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.penalty_last_n = 64;
    sp.seed = seed;
    return sp;
}

/* ids[0..n) as a JSON array into out (a request's "prompt" as token ids). */
static inline void ids_json(const int32_t *ids, int n, char *out, size_t cap) {
    size_t o = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%d", i ? "," : "", (int)ids[i]);
    if (o < cap) snprintf(out + o, cap - o, "]");
}

/* The text the library generates from ids (malloc'd); *n_gen receives the
 * tokens generated. */
static inline char *library_text(hearth_model *m, const int32_t *ids, int n_ids,
                                 const hearth_sampling *sp, int max_tokens, int *n_gen) {
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(m, sp, &smp) == HEARTH_OK);
    ref_text *t = calloc(1, sizeof *t);
    REQUIRE(t);
    hearth_gen_params gp = {.max_tokens = max_tokens};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s, smp, ids, n_ids, &gp, ref_sink, t, &r) == HEARTH_OK);
    if (n_gen) *n_gen = r.n_gen;
    hearth_sampler_free(smp);
    hearth_session_free(s);
    char *text = strdup(t->buf);
    free(t);
    return text;
}

/* ---- SSE, per choice ---------------------------------------------------------- */

typedef struct sse_choices {
    bool framing_ok; /* "data: <json>\n\n" events, [DONE] last and once */
    bool done;       /* [DONE] came */
    int max_index;   /* highest choice index seen (-1: none) */
    bool index_ok;   /* every chunk had exactly one choice with an index in range */
    char text[SSE_CHOICES_MAX][4096];
    char finish[SSE_CHOICES_MAX][32];
    int n_finish[SSE_CHOICES_MAX]; /* chunks with a finish_reason */
    int n_role[SSE_CHOICES_MAX];   /* chat: chunks with delta.role */
    bool finish_then_text;         /* a choice's text came after its finish chunk */
    int usage_prompt, usage_completion, usage_total; /* -1: no usage chunk */
    int usage_cached; /* its prompt_tokens_details.cached_tokens (-1: none) */
} sse_choices;

static inline sse_choices parse_sse_choices(const char *body, bool chat) {
    sse_choices r = {.index_ok = true,
                     .max_index = -1,
                     .usage_prompt = -1,
                     .usage_completion = -1,
                     .usage_total = -1,
                     .usage_cached = -1};
    cJSON *j;
    int got;
    while ((got = test_sse_next(&body, &r.done, &j)) > 0) {
        const cJSON *choices = jget(j, "choices");
        const int n = cJSON_GetArraySize(choices);
        const double d = n == 1 ? jnum(choices->child, "index") : -1;
        if (n == 0 && cJSON_IsObject(jget(j, "usage"))) {
            r.usage_prompt = (int)jnum(j, "usage.prompt_tokens");
            r.usage_completion = (int)jnum(j, "usage.completion_tokens");
            r.usage_total = (int)jnum(j, "usage.total_tokens");
            const double c = jnum(j, "usage.prompt_tokens_details.cached_tokens");
            r.usage_cached = c >= 0 ? (int)c : -1;
        } else if (!(d >= 0 && d < SSE_CHOICES_MAX)) {
            r.index_ok = false; /* not one choice, or an index out of range */
        } else {
            const cJSON *ch = choices->child;
            const int i = (int)d;
            if (i > r.max_index) r.max_index = i;
            const char *t = jstr(ch, chat ? "delta.content" : "text");
            if (t && *t && r.n_finish[i]) r.finish_then_text = true;
            if (t && strlen(r.text[i]) + strlen(t) < sizeof r.text[i]) strcat(r.text[i], t);
            if (chat && jstr(ch, "delta.role")) r.n_role[i]++;
            const char *f = jstr(ch, "finish_reason");
            if (f) {
                snprintf(r.finish[i], sizeof r.finish[i], "%s", f);
                r.n_finish[i]++;
            }
        }
        cJSON_Delete(j);
    }
    r.framing_ok = got == 0;
    return r;
}

#endif
