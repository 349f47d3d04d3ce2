/*
 * test_server_echo.c - the prompt's logprobs on POST /v1/completions with
 * echo and logprobs (what lm-evaluation-harness's loglikelihood asks:
 * "prompt": [[ids]], "max_tokens": 1, "logprobs": 1, "echo": true), through
 * `hearth serve` (tiny-llama from ../shared/conformance, else a synthetic
 * model). The reference is the library's logits of every prompt position
 * (one hearth_decode with all rows):
 *  - a token-id prompt longer than a scoring step (sched.c scores 32 tokens
 *    a step): the logprobs list the prompt's tokens, then the generated one;
 *    the first has null logprob and alternatives, each other one the
 *    log-softmax of the row before it, its alternatives that row's best in
 *    order; the generated token is the last row's best; the text echoes the
 *    prompt's text; the usage counts no cached tokens;
 *  - the same ids flat, as [[ids]] and in two requests in a row (the slot's
 *    cache must not turn the second into a partial list);
 *  - a text prompt: its tokens (BOS included) lead the list, the text
 *    offsets rise and stay within the text;
 *  - echo without logprobs, and logprobs without echo: no prompt tokens;
 *  - streamed: the echo with the first token (the prompt's logprobs and the
 *    token's in its chunk, as vLLM), the same text and logprobs as not
 *    streamed; with nothing generated, the echo alone with the prompt's, and
 *    so with max_tokens 0 (scoring without generating);
 *  - a malformed list of prompts is a 400 naming the prompt (several
 *    prompts are test_server_batch's).
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

#include <math.h>

enum { MAX_PROMPT = 512, N_TOP = 3 }; /* a synthetic vocabulary: about a token a byte */

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_echo_XXXXXX";
static hearth_model *model;
static int n_vocab;

static const char text[] =
    "Once upon a time there was a little girl named Lily. She liked to play outside in the sun "
    "with her friend, a big brown dog. They ran to the park and found a red ball under a tree.";

/* Every row of the prompt's logits ([n][n_vocab]). */
static float *reference_rows(const int32_t *ids, int n) {
    float *rows = malloc((size_t)n * (size_t)n_vocab * sizeof *rows);
    hearth_session *s = NULL;
    REQUIRE(rows && hearth_session_new(model, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_decode(s, ids, n, rows, true) == HEARTH_OK);
    hearth_session_free(s);
    return rows;
}

static double log_sum_exp(const float *row) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < n_vocab; i++) max = row[i] > max ? row[i] : max;
    for (int i = 0; i < n_vocab; i++) sum += exp(row[i] - max);
    return max + log(sum);
}

static int32_t best(const float *row) {
    int32_t b = 0;
    for (int32_t i = 1; i < n_vocab; i++) b = row[i] > row[b] ? i : b;
    return b;
}

static cJSON *complete(test_server *sv, const char *prompt, const char *extra) {
    char body[8192];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":1,\"temperature\":0%s}", prompt,
             extra);
    int status;
    cJSON *j = post(sv, "/v1/completions", body, &status);
    CHECKF(status == 200 && j, "%.80s: %d", body, status);
    return j;
}

/* The logprobs of a reply with the prompt scored: n prompt entries and the
 * generated token, against the reference rows. */
static void check_scored(const cJSON *j, const int32_t *ids, int n, const float *rows,
                         const char *what) {
    const cJSON *lp = jget(j, "choices.0.logprobs");
    const cJSON *lps = jget(lp, "token_logprobs"), *tops = jget(lp, "top_logprobs");
    CHECKF(cJSON_GetArraySize(lps) == n + 1 && cJSON_GetArraySize(tops) == n + 1 &&
               cJSON_GetArraySize(jget(lp, "tokens")) == n + 1 &&
               cJSON_GetArraySize(jget(lp, "text_offset")) == n + 1,
           "%s: %d logprobs for %d prompt tokens and one generated", what, cJSON_GetArraySize(lps),
           n);
    if (cJSON_GetArraySize(lps) != n + 1) return;
    CHECKF(cJSON_IsNull(cJSON_GetArrayItem(lps, 0)) && cJSON_IsNull(cJSON_GetArrayItem(tops, 0)),
           "%s: the first token has no logprob", what);
    int bad = 0;
    for (int i = 1; i <= n; i++) {
        const float *row = rows + (size_t)(i - 1) * n_vocab;
        const int32_t id = i < n ? ids[i] : best(row); /* the last: the greedy token */
        const double want = row[id] - log_sum_exp(row);
        const cJSON *got = cJSON_GetArrayItem(lps, i), *top = cJSON_GetArrayItem(tops, i);
        /* the alternatives: the row's N_TOP best, keyed by piece (two ids with
         * the same text are one key), so the largest is the best's logprob */
        bool ok = cJSON_IsNumber(got) && fabs(got->valuedouble - want) <= 1e-3 &&
                  cJSON_GetArraySize(top) >= 1 && cJSON_GetArraySize(top) <= N_TOP;
        double max = -INFINITY;
        for (const cJSON *t = top ? top->child : NULL; t; t = t->next)
            max = t->valuedouble > max ? t->valuedouble : max;
        ok = ok && fabs(max - (row[best(row)] - log_sum_exp(row))) <= 1e-3;
        if (!ok && bad++ < 3)
            printf("%s: token %d (id %d): logprob %g, want %g; best alternative %g, want %g\n",
                   what, i, (int)id, cJSON_IsNumber(got) ? got->valuedouble : NAN, want, max,
                   row[best(row)] - log_sum_exp(row));
    }
    CHECKF(bad == 0, "%s: %d tokens' logprobs differ from the library's", what, bad);
}

static void test_ids(test_server *sv) {
    int32_t ids[MAX_PROMPT];
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, ids, MAX_PROMPT, &n) ==
            HEARTH_OK);
    REQUIRE(n > 40); /* more than one scoring step */
    float *rows = reference_rows(ids, (int)n);
    char flat[4096], nested[4200], extra[64];
    ids_json(ids, (int)n, flat, sizeof flat);
    snprintf(nested, sizeof nested, "[%s]", flat);
    snprintf(extra, sizeof extra, ",\"logprobs\":%d,\"echo\":true", N_TOP);
    const char *const prompts[] = {nested, flat, nested};
    for (int k = 0; k < 3; k++) {
        char what[32];
        snprintf(what, sizeof what, "ids %d", k);
        cJSON *j = complete(sv, prompts[k], extra);
        check_scored(j, ids, (int)n, rows, what);
        CHECKF(jnum(j, "usage.prompt_tokens") == (double)n &&
                   jnum(j, "usage.prompt_tokens_details.cached_tokens") == 0,
               "%s: usage %g prompt, %g cached", what, jnum(j, "usage.prompt_tokens"),
               jnum(j, "usage.prompt_tokens_details.cached_tokens"));
        /* the echo: the ids' text (BOS renders as nothing), then the answer */
        char echo[1024];
        size_t len = 0;
        REQUIRE(hearth_detokenize(model, ids, n, false, echo, sizeof echo - 1, &len) == HEARTH_OK);
        echo[len] = '\0';
        const char *got = jstr(j, "choices.0.text");
        CHECKF(got && !strncmp(got, echo, len) && strlen(got) > len, "%s: text '%s'", what,
               got ? got : "(none)");
        cJSON_Delete(j);
    }
    /* echo alone, and logprobs alone: no prompt tokens in the list */
    cJSON *j = complete(sv, nested, ",\"echo\":true");
    CHECK(cJSON_IsNull(jget(j, "choices.0.logprobs")));
    cJSON_Delete(j);
    j = complete(sv, nested, ",\"logprobs\":1");
    CHECK(cJSON_GetArraySize(jget(j, "choices.0.logprobs.token_logprobs")) == 1);
    cJSON_Delete(j);
    free(rows);
}

static void test_text(test_server *sv) {
    int32_t ids[MAX_PROMPT];
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, ids, MAX_PROMPT, &n) ==
            HEARTH_OK);
    float *rows = reference_rows(ids, (int)n);
    char prompt[512];
    snprintf(prompt, sizeof prompt, "\"%s\"", text);
    cJSON *j = complete(sv, prompt, ",\"logprobs\":3,\"echo\":true");
    check_scored(j, ids, (int)n, rows, "text");
    const cJSON *offs = jget(j, "choices.0.logprobs.text_offset");
    double last = 0;
    bool rising = cJSON_GetArraySize(offs) == (int)n + 1;
    for (const cJSON *o = offs ? offs->child : NULL; rising && o; o = o->next) {
        rising = o->valuedouble >= last && o->valuedouble <= (double)strlen(text);
        last = o->valuedouble;
    }
    CHECKF(rising && last == (double)strlen(text), "text offsets rise to the prompt's end (%g)",
           last);
    const char *got = jstr(j, "choices.0.text");
    CHECK(got && !strncmp(got, text, strlen(text)));
    cJSON_Delete(j);
    free(rows);
}

/* The stream's chunks of one choice, joined: text, and the logprobs'
 * tokens and token_logprobs; first_lp / first_text: the first chunk with
 * text's logprobs count and whether its text starts with `echo`. */
typedef struct streamed {
    char text[4096];
    cJSON *tokens, *lps;
    int chunks, first_lp, max_lp_after;
    bool first_has_echo, ok;
} streamed;

static streamed stream(test_server *sv, const char *prompt, const char *extra, const char *echo) {
    char body[8192];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"temperature\":0,\"stream\":true%s}", prompt,
             extra);
    test_reply r = test_http(sv, "POST", "/v1/completions", body, NULL);
    streamed s = {.tokens = cJSON_CreateArray(),
                  .lps = cJSON_CreateArray(),
                  .ok = r.status == 200,
                  .first_lp = -1};
    const char *p = r.body ? r.body : "";
    bool done = false;
    cJSON *ev;
    int rc;
    while ((rc = test_sse_next(&p, &done, &ev)) == 1) {
        const cJSON *c = jget(ev, "choices.0");
        const char *t = jstr(c, "text");
        const cJSON *lp = jget(c, "logprobs");
        const int n_lp = cJSON_GetArraySize(jget(lp, "tokens"));
        if (t && (*t || n_lp > 0)) {
            if (s.chunks++ == 0) {
                s.first_lp = n_lp;
                s.first_has_echo = !strncmp(t, echo, strlen(echo));
            } else if (n_lp > s.max_lp_after) {
                s.max_lp_after = n_lp;
            }
            snprintf(s.text + strlen(s.text), sizeof s.text - strlen(s.text), "%s", t);
        }
        for (const cJSON *x = jget(lp, "tokens") ? jget(lp, "tokens")->child : NULL; x; x = x->next)
            cJSON_AddItemToArray(s.tokens, cJSON_Duplicate(x, true));
        for (const cJSON *x = jget(lp, "token_logprobs") ? jget(lp, "token_logprobs")->child : NULL;
             x; x = x->next)
            cJSON_AddItemToArray(s.lps, cJSON_Duplicate(x, true));
        cJSON_Delete(ev);
    }
    s.ok = s.ok && rc == 0 && done;
    free(r.body);
    return s;
}

/* Whether two token_logprobs lists agree (nulls where nulls, numbers within
 * 1e-4). */
static bool same_logprobs(const cJSON *a, const cJSON *b) {
    bool same = cJSON_GetArraySize(a) == cJSON_GetArraySize(b);
    for (int i = 0; same && i < cJSON_GetArraySize(a); i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
        same = cJSON_IsNull(x) ? cJSON_IsNull(y) : fabs(x->valuedouble - y->valuedouble) < 1e-4;
    }
    return same;
}

/* Streamed, the echo goes out with the first token, as vLLM streams it: its
 * chunk carries the prompt's logprobs and the token's, each later chunk one
 * token's; joined, the chunks are the answer not streamed. With nothing
 * generated (the end-of-generation token forced first) the echo and the
 * prompt's logprobs still come, alone. */
static void test_stream(test_server *sv) {
    int32_t ids[MAX_PROMPT];
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, ids, MAX_PROMPT, &n) ==
            HEARTH_OK);
    char flat[4096], echo[1024], extra[128];
    ids_json(ids, (int)n, flat, sizeof flat);
    size_t len = 0;
    REQUIRE(hearth_detokenize(model, ids, n, false, echo, sizeof echo - 1, &len) == HEARTH_OK);
    echo[len] = '\0';
    snprintf(extra, sizeof extra, ",\"max_tokens\":4,\"logprobs\":%d,\"echo\":true", N_TOP);
    streamed s = stream(sv, flat, extra, echo);
    CHECKF(s.ok && s.first_has_echo && s.first_lp == (int)n + 1 && s.max_lp_after == 1,
           "stream: ok %d, first chunk echoes %d with %d logprobs (want %d), later at most %d",
           s.ok, s.first_has_echo, s.first_lp, (int)n + 1, s.max_lp_after);
    char body[8192];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"temperature\":0%s}", flat, extra);
    int status;
    cJSON *j = post(sv, "/v1/completions", body, &status);
    const char *want = jstr(j, "choices.0.text");
    CHECKF(want && !strcmp(want, s.text), "stream text '%s', not streamed '%s'", s.text,
           want ? want : "(none)");
    CHECKF(cJSON_Compare(jget(j, "choices.0.logprobs.tokens"), s.tokens, true),
           "streamed logprob tokens differ from the answer's");
    CHECKF(same_logprobs(jget(j, "choices.0.logprobs.token_logprobs"), s.lps),
           "streamed token_logprobs differ from the answer's");
    cJSON_Delete(j);
    cJSON_Delete(s.tokens);
    cJSON_Delete(s.lps);

    snprintf(extra, sizeof extra,
             ",\"max_tokens\":4,\"logprobs\":1,\"echo\":true,\"logit_bias\":{\"%d\":100}",
             (int)hearth_token_eos(model));
    s = stream(sv, flat, extra, echo);
    CHECKF(s.ok && s.chunks == 1 && s.first_has_echo && s.first_lp == (int)n &&
               !strcmp(s.text, echo),
           "nothing generated: ok %d, %d chunks, echo %d, %d logprobs (want %d), text '%s'", s.ok,
           s.chunks, s.first_has_echo, s.first_lp, (int)n, s.text);
    cJSON_Delete(s.tokens);
    cJSON_Delete(s.lps);

    /* max_tokens 0 (test_server_prompt_only): the same, nothing sampled, and
     * the logprobs of the answer not streamed */
    snprintf(extra, sizeof extra, ",\"max_tokens\":0,\"logprobs\":%d,\"echo\":true", N_TOP);
    s = stream(sv, flat, extra, echo);
    snprintf(body, sizeof body, "{\"prompt\":%s,\"temperature\":0%s}", flat, extra);
    j = post(sv, "/v1/completions", body, &status);
    CHECKF(s.ok && s.chunks == 1 && s.first_has_echo && s.first_lp == (int)n &&
               !strcmp(s.text, echo) &&
               cJSON_Compare(jget(j, "choices.0.logprobs.tokens"), s.tokens, true) &&
               same_logprobs(jget(j, "choices.0.logprobs.token_logprobs"), s.lps),
           "max_tokens 0 streamed: ok %d, %d chunks, echo %d, %d logprobs (want %d), text '%s'",
           s.ok, s.chunks, s.first_has_echo, s.first_lp, (int)n, s.text);
    cJSON_Delete(j);
    cJSON_Delete(s.tokens);
    cJSON_Delete(s.lps);
}

static void test_errors(test_server *sv) {
    static const char *const bad[] = {
        "{\"prompt\":[[1,2],[\"a\"]],\"echo\":true,\"logprobs\":1}",
        "{\"prompt\":[\"a\",\"\"],\"echo\":true,\"logprobs\":1}",
        "{\"prompt\":[[\"a\"]],\"echo\":true,\"logprobs\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int status;
        cJSON *j = post(sv, "/v1/completions", bad[i], &status);
        const char *param = jstr(j, "error.param");
        CHECKF(status == 400 && param && !strncmp(param, "prompt", 6), "%s: %d %s", bad[i], status,
               param ? param : "(none)");
        cJSON_Delete(j);
    }
}

int main(void) {
    bool skip;
    const char *path = fixture_server_model("test_server_echo", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(path);
    if (!strstr(path, "conformance"))
        printf("test_server_echo: no ../shared/conformance (HEARTH_SHARED_DIR); a synthetic model "
               "with random weights instead\n");
    REQUIRE(hearth_model_load(path, NULL, &model) == HEARTH_OK);
    n_vocab = hearth_model_n_vocab(model);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, path, scratch, "--ctx 1024 -t 1"));
    test_ids(&sv);
    test_text(&sv);
    test_stream(&sv);
    test_errors(&sv);
    CHECK(test_server_stop(&sv) == 0);
    hearth_model_free(model);
    fixture_server_cleanup("test_server_echo", scratch, test_failures > 0);
    return test_done("test_server_echo");
}
