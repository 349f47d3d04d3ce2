/*
 * test_server_nprobs.c - llama-server's n_probs, post_sampling_probs and
 * return_tokens on POST /completion, through `hearth serve` (curl against
 * the real program; tiny-llama from ../shared/conformance, else a synthetic
 * model). The reference is the library's own logits for each position (the
 * prompt, then the prompt and the tokens so far, evaluated by hearth_decode):
 *  - greedy, n_probs 5: one entry per generated token, its id the token
 *    "tokens" lists (return_tokens), its logprob the log-softmax of that
 *    row, top_logprobs the row's 5 best in order with theirs, bytes the
 *    token's piece; the text and tokens equal the answer without n_probs;
 *  - streamed: each event one token (tokens [id]) with its one entry, the
 *    same as the answer's; the last event has neither;
 *  - post_sampling_probs with top_k 3 (temperature 1 and 0.5): prob and
 *    top_probs, the softmax of the 3 best logits over the temperature, at
 *    most 3 listed, summing to 1, the chosen token among them with the same
 *    prob; the sampled text unchanged by asking; greedy: one entry, prob 1;
 *  - llama-server's alias "logprobs", "tokens" empty without return_tokens,
 *    and 400s naming the field for a negative, fractional, too large or
 *    non-number n_probs and non-boolean flags.
 */
#include "test.h"

#include "core/core.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

enum { N_GEN = 8, N_PROBS = 5, TOP_K = 3 };

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_nprobs_XXXXXX";
static hearth_model *model;
static int n_vocab;
static int32_t prompt[64];
static int n_prompt;
static char prompt_json[1024];
static char eos_ban[64]; /* "logit_bias":{"<eos>":-100}: every answer has N_GEN tokens */

static cJSON *completion(test_server *sv, const char *extra) {
    char body[4096];
    snprintf(body, sizeof body,
             "{\"prompt\":%s,\"n_predict\":%d,\"repeat_penalty\":1,\"top_p\":1,\"min_p\":0,%s,%s}",
             prompt_json, N_GEN, eos_ban, extra);
    int status;
    cJSON *j = post(sv, "/completion", body, &status);
    CHECKF(status == 200 && j, "%s: %d", extra, status);
    return j;
}

/* The generated ids of an answer's "tokens" into ids (N_GEN of them). */
static bool answer_ids(const cJSON *j, int32_t *ids) {
    const cJSON *t = jget(j, "tokens");
    CHECKF(cJSON_GetArraySize(t) == N_GEN, "tokens: %d ids", cJSON_GetArraySize(t));
    if (cJSON_GetArraySize(t) != N_GEN) return false;
    for (int i = 0; i < N_GEN; i++) ids[i] = (int32_t)cJSON_GetArrayItem(t, i)->valuedouble;
    return true;
}

/* The library's logits before each generated token: rows[i] ([n_vocab])
 * follows the prompt and ids[0..i). */
static float *reference_rows(const int32_t *ids) {
    float *rows = malloc((size_t)N_GEN * (size_t)n_vocab * sizeof *rows);
    hearth_session *s = NULL;
    REQUIRE(rows && hearth_session_new(model, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_decode(s, prompt, n_prompt, rows, false) == HEARTH_OK);
    for (int i = 1; i < N_GEN; i++)
        REQUIRE(hearth_decode(s, ids + i - 1, 1, rows + (size_t)i * n_vocab, false) == HEARTH_OK);
    hearth_session_free(s);
    return rows;
}

/* log of the softmax denominator of row / temperature. */
static double log_sum_exp(const float *row, int n, double temperature) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) max = row[i] / temperature > max ? row[i] / temperature : max;
    for (int i = 0; i < n; i++) sum += exp(row[i] / temperature - max);
    return max + log(sum);
}

/* The k best ids of row but `skip` (-1: none), best first (ties: the
 * lower id). */
static void best_ids(const float *row, int k, int32_t skip, int32_t *out) {
    for (int r = 0; r < k; r++) {
        int32_t b = -1;
        for (int32_t i = 0; i < n_vocab; i++) {
            bool taken = i == skip;
            for (int q = 0; q < r; q++) taken |= out[q] == i;
            if (!taken && (b < 0 || row[i] > row[b])) b = i;
        }
        out[r] = b;
    }
}

/* id, token and bytes of an entry: its piece as the library detokenizes it. */
static void check_piece(const cJSON *e, int32_t id, const char *what) {
    CHECKF(jnum(e, "id") == id, "%s: id %g, expected %d", what, jnum(e, "id"), (int)id);
    /* a piece in the middle of a text: the text after another token (alone,
     * a leading space would be dropped) */
    const int32_t two[2] = {prompt[n_prompt - 1], id};
    char one[256], both[512];
    size_t n1 = 0, n2 = 0;
    REQUIRE(hearth_detokenize(model, two, 1, false, one, sizeof one, &n1) == HEARTH_OK);
    REQUIRE(hearth_detokenize(model, two, 2, false, both, sizeof both, &n2) == HEARTH_OK);
    REQUIRE(n2 >= n1 && !memcmp(one, both, n1));
    const char *raw = both + n1;
    const size_t n = n2 - n1;
    const cJSON *b = jget(e, "bytes");
    bool same = cJSON_GetArraySize(b) == (int)n;
    for (size_t i = 0; same && i < n; i++)
        same = cJSON_GetArrayItem(b, (int)i)->valuedouble == (unsigned char)raw[i];
    CHECKF(same, "%s: bytes differ from the piece of %d", what, (int)id);
    CHECKF(cJSON_IsString(jget(e, "token")), "%s: no token text", what);
    size_t bad;
    if (n && hr_utf8_valid(raw, n, &bad) && !memchr(raw, '\0', n))
        CHECKF(jstr(e, "token") && strlen(jstr(e, "token")) == n &&
                   !memcmp(jstr(e, "token"), raw, n),
               "%s: token '%s' is not its piece", what, jstr(e, "token"));
}

/* An entry (pre-sampling) against the reference row; greedy: id must be
 * the best there but EOS. */
static void check_entry(const cJSON *e, int32_t id, const float *row, bool greedy,
                        const char *what) {
    const double lse = log_sum_exp(row, n_vocab, 1.0);
    check_piece(e, id, what);
    CHECKF(fabs(jnum(e, "logprob") - (row[id] - lse)) < 1e-4, "%s: logprob %g, library %g", what,
           jnum(e, "logprob"), row[id] - lse);
    CHECKF(!jget(e, "prob") && !jget(e, "top_probs"), "%s: post-sampling fields", what);
    const cJSON *top = jget(e, "top_logprobs");
    CHECKF(cJSON_GetArraySize(top) == N_PROBS, "%s: %d alternatives", what,
           cJSON_GetArraySize(top));
    int32_t best[N_PROBS], best_but_eos; /* EOS is banned */
    best_ids(row, N_PROBS, -1, best);
    best_ids(row, 1, hearth_token_eos(model), &best_but_eos);
    for (int k = 0; k < cJSON_GetArraySize(top) && k < N_PROBS; k++) {
        const cJSON *a = cJSON_GetArrayItem(top, k);
        char w[96];
        snprintf(w, sizeof w, "%s top %d", what, k);
        check_piece(a, best[k], w);
        CHECKF(fabs(jnum(a, "logprob") - (row[best[k]] - lse)) < 1e-4, "%s: %g, library %g", w,
               jnum(a, "logprob"), row[best[k]] - lse);
        if (k > 0)
            CHECKF(jnum(a, "logprob") <= jnum(cJSON_GetArrayItem(top, k - 1), "logprob"),
                   "%s: not sorted", w);
    }
    CHECKF(!greedy || id == best_but_eos, "%s: greedy chose %d, the best is %d", what, (int)id,
           (int)best_but_eos);
}

static void test_greedy(test_server *sv, const float **rows_out, int32_t *ids) {
    cJSON *plain = completion(sv, "\"temperature\":0,\"return_tokens\":true");
    char extra[128];
    snprintf(extra, sizeof extra, "\"temperature\":0,\"return_tokens\":true,\"n_probs\":%d",
             N_PROBS);
    cJSON *j = completion(sv, extra);
    REQUIRE(plain && j && answer_ids(j, ids));
    CHECKF(jstr(j, "content") && jstr(plain, "content") &&
               !strcmp(jstr(j, "content"), jstr(plain, "content")),
           "n_probs changed the text: '%s' / '%s'", jstr(j, "content"), jstr(plain, "content"));
    CHECK(cJSON_Compare(jget(j, "tokens"), jget(plain, "tokens"), true));
    CHECKF(!jget(plain, "completion_probabilities"), "probabilities without n_probs");
    const cJSON *probs = jget(j, "completion_probabilities");
    CHECKF(cJSON_GetArraySize(probs) == N_GEN && jnum(j, "tokens_predicted") == N_GEN,
           "%d entries for %g tokens", cJSON_GetArraySize(probs), jnum(j, "tokens_predicted"));
    const float *rows = reference_rows(ids);
    for (int i = 0; i < N_GEN && i < cJSON_GetArraySize(probs); i++) {
        char what[64];
        snprintf(what, sizeof what, "greedy token %d", i);
        check_entry(cJSON_GetArrayItem(probs, i), ids[i], rows + (size_t)i * n_vocab, true, what);
    }
    /* the text is those tokens' */
    char text[4096];
    size_t n = 0;
    REQUIRE(hearth_detokenize(model, ids, N_GEN, false, text, sizeof text - 1, &n) == HEARTH_OK);
    text[n] = '\0';
    if (hr_utf8_valid(text, n, NULL) && !memchr(text, '\0', n))
        CHECKF(!strcmp(jstr(j, "content"), text), "content '%s', tokens '%s'", jstr(j, "content"),
               text);
    /* llama-server's alias, and no ids without return_tokens */
    cJSON *alias = completion(sv, "\"temperature\":0,\"logprobs\":2");
    CHECKF(alias && cJSON_GetArraySize(jget(alias, "completion_probabilities")) == N_GEN &&
               cJSON_GetArraySize(jget(alias, "completion_probabilities.0.top_logprobs")) == 2,
           "logprobs 2 as n_probs");
    CHECKF(alias && cJSON_IsArray(jget(alias, "tokens")) &&
               cJSON_GetArraySize(jget(alias, "tokens")) == 0,
           "tokens without return_tokens");
    cJSON_Delete(alias);
    cJSON_Delete(plain);
    cJSON_Delete(j);
    *rows_out = rows;
}

/* The stream of the greedy request: one event per token, the same entries. */
static void test_stream(test_server *sv, const float *rows, const int32_t *ids) {
    char body[4096];
    snprintf(body, sizeof body,
             "{\"prompt\":%s,\"n_predict\":%d,\"repeat_penalty\":1,%s,\"temperature\":0,"
             "\"n_probs\":%d,\"stream\":true}",
             prompt_json, N_GEN, eos_ban, N_PROBS);
    test_reply r = test_http(sv, "POST", "/completion", body, NULL);
    CHECKF(r.status == 200, "stream: %d", r.status);
    const char *p = r.body;
    bool done = false, ended = false;
    int n_tok = 0, got;
    cJSON *ev;
    while ((got = test_sse_next(&p, &done, &ev)) == 1) {
        CHECKF(!ended, "an event after the last");
        if (cJSON_IsTrue(jget(ev, "stop"))) {
            ended = true;
            CHECKF(cJSON_GetArraySize(jget(ev, "tokens")) == 0 &&
                       !jget(ev, "completion_probabilities"),
                   "the last event carries tokens or probabilities");
        } else if (cJSON_GetArraySize(jget(ev, "tokens")) == 1 && n_tok < N_GEN) {
            CHECKF(jnum(ev, "tokens.0") == ids[n_tok], "event %d: token %g, not %d", n_tok,
                   jnum(ev, "tokens.0"), (int)ids[n_tok]);
            const cJSON *probs = jget(ev, "completion_probabilities");
            CHECKF(cJSON_GetArraySize(probs) == 1, "event %d: %d entries", n_tok,
                   cJSON_GetArraySize(probs));
            char what[64];
            snprintf(what, sizeof what, "streamed token %d", n_tok);
            if (probs && probs->child)
                check_entry(probs->child, ids[n_tok], rows + (size_t)n_tok * n_vocab, true, what);
            n_tok++;
        } else {
            CHECKF(cJSON_GetArraySize(jget(ev, "tokens")) == 0 &&
                       !jget(ev, "completion_probabilities"),
                   "text without a token carries one");
        }
        cJSON_Delete(ev);
    }
    CHECKF(got == 0 && ended && !done && n_tok == N_GEN,
           "stream: framing %d, end %d, [DONE] %d, %d tokens", got, ended, done, n_tok);
    free(r.body);
}

/* Sampled (temperature 1.5, no truncation): the logprobs are still the raw
 * softmax's, for tokens that are often not the likeliest. */
static void test_sampled(test_server *sv) {
    char extra[128];
    snprintf(extra, sizeof extra,
             "\"temperature\":1.5,\"seed\":11,\"top_k\":0,\"return_tokens\":true,\"n_probs\":%d",
             N_PROBS);
    cJSON *j = completion(sv, extra);
    int32_t ids[N_GEN];
    REQUIRE(j && answer_ids(j, ids));
    const cJSON *probs = jget(j, "completion_probabilities");
    CHECKF(cJSON_GetArraySize(probs) == N_GEN, "sampled: %d entries", cJSON_GetArraySize(probs));
    float *rows = reference_rows(ids);
    int not_best = 0;
    for (int i = 0; i < N_GEN && i < cJSON_GetArraySize(probs); i++) {
        char what[64];
        snprintf(what, sizeof what, "sampled token %d", i);
        const cJSON *e = cJSON_GetArrayItem(probs, i);
        check_entry(e, ids[i], rows + (size_t)i * n_vocab, false, what);
        not_best += jnum(e, "top_logprobs.0.id") != ids[i];
    }
    CHECKF(not_best > 0, "every sampled token was the likeliest: a weak test");
    free(rows);
    cJSON_Delete(j);
}

/* post_sampling_probs with top_k 3 at a temperature: the kept three's
 * softmax of logit / temperature. */
static void test_post_sampling(test_server *sv, double temperature) {
    char extra[256];
    snprintf(extra, sizeof extra,
             "\"temperature\":%g,\"seed\":7,\"top_k\":%d,\"return_tokens\":true", temperature,
             TOP_K);
    cJSON *plain = completion(sv, extra);
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
             ",\"n_probs\":%d,\"post_sampling_probs\":true", N_PROBS);
    cJSON *j = completion(sv, extra);
    int32_t ids[N_GEN];
    REQUIRE(plain && j && answer_ids(j, ids));
    CHECKF(cJSON_Compare(jget(j, "tokens"), jget(plain, "tokens"), true),
           "t %g: asking for probabilities changed the draws", temperature);
    const cJSON *probs = jget(j, "completion_probabilities");
    CHECKF(cJSON_GetArraySize(probs) == N_GEN, "t %g: %d entries", temperature,
           cJSON_GetArraySize(probs));
    float *rows = reference_rows(ids);
    for (int i = 0; i < N_GEN && i < cJSON_GetArraySize(probs); i++) {
        const cJSON *e = cJSON_GetArrayItem(probs, i);
        const float *row = rows + (size_t)i * n_vocab;
        char what[64];
        snprintf(what, sizeof what, "t %g token %d", temperature, i);
        check_piece(e, ids[i], what);
        CHECKF(!jget(e, "logprob") && !jget(e, "top_logprobs"), "%s: pre-sampling fields", what);
        int32_t best[TOP_K]; /* the bias removes EOS before top-k */
        best_ids(row, TOP_K, hearth_token_eos(model), best);
        float kept[TOP_K];
        for (int k = 0; k < TOP_K; k++) kept[k] = row[best[k]];
        const double lse = log_sum_exp(kept, TOP_K, temperature);
        const cJSON *top = jget(e, "top_probs");
        const int n = cJSON_GetArraySize(top);
        CHECKF(n >= 1 && n <= TOP_K, "%s: %d listed (top_k %d)", what, n, TOP_K);
        double sum = 0, chosen = -1;
        for (int k = 0; k < n && k < TOP_K; k++) {
            const cJSON *a = cJSON_GetArrayItem(top, k);
            char w[96];
            snprintf(w, sizeof w, "%s top %d", what, k);
            check_piece(a, best[k], w);
            const double want = exp(row[best[k]] / temperature - lse);
            CHECKF(fabs(jnum(a, "prob") - want) < 1e-5, "%s: prob %g, library %g", w,
                   jnum(a, "prob"), want);
            CHECKF(jnum(a, "prob") > 0 && (k == 0 || jnum(a, "prob") <= jnum(top->child, "prob")),
                   "%s: zero or unsorted", w);
            sum += jnum(a, "prob");
            if (best[k] == ids[i]) chosen = jnum(a, "prob");
        }
        CHECKF(fabs(sum - 1) < 1e-5, "%s: the kept probabilities sum to %g", what, sum);
        CHECKF(chosen > 0 && fabs(jnum(e, "prob") - chosen) < 1e-6,
               "%s: chosen %d has prob %g, listed %g", what, (int)ids[i], jnum(e, "prob"), chosen);
    }
    free(rows);
    cJSON_Delete(plain);
    cJSON_Delete(j);
    /* greedy: the one candidate, certain */
    snprintf(extra, sizeof extra, "\"temperature\":0,\"n_probs\":%d,\"post_sampling_probs\":true",
             N_PROBS);
    j = completion(sv, extra);
    for (int i = 0; j && i < N_GEN; i++) {
        const cJSON *e = cJSON_GetArrayItem(jget(j, "completion_probabilities"), i);
        CHECKF(jnum(e, "prob") == 1 && cJSON_GetArraySize(jget(e, "top_probs")) == 1 &&
                   jnum(e, "top_probs.0.prob") == 1 && jnum(e, "top_probs.0.id") == jnum(e, "id"),
               "greedy post-sampling token %d: prob %g", i, jnum(e, "prob"));
    }
    cJSON_Delete(j);
}

static void test_errors(test_server *sv) {
    static const struct {
        const char *field, *param;
    } bad[] = {
        {"\"n_probs\":-1", "n_probs"},
        {"\"n_probs\":2.5", "n_probs"},
        {"\"n_probs\":21", "n_probs"},
        {"\"n_probs\":1e300", "n_probs"},
        {"\"n_probs\":\"3\"", "n_probs"},
        {"\"n_probs\":true", "n_probs"},
        {"\"logprobs\":-2", "logprobs"},
        {"\"n_probs\":2,\"post_sampling_probs\":1", "post_sampling_probs"},
        {"\"return_tokens\":\"yes\"", "return_tokens"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"n_predict\":1,%s}", bad[i].field);
        test_reply r = test_http(sv, "POST", "/completion", body, NULL);
        expect_error(bad[i].field, &r, 400, bad[i].param, bad[i].param);
        free(r.body);
    }
    /* n_probs 0 is off, not an error */
    cJSON *j = completion(sv, "\"temperature\":0,\"n_probs\":0");
    CHECKF(j && !jget(j, "completion_probabilities"), "n_probs 0");
    cJSON_Delete(j);
}

int main(void) {
    bool skip;
    const char *path = fixture_server_model("test_server_nprobs", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(path);
    if (!strstr(path, "conformance"))
        printf("test_server_nprobs: no ../shared/conformance (HEARTH_SHARED_DIR); a synthetic "
               "model with random weights instead\n");
    REQUIRE(hearth_model_load(path, NULL, &model) == HEARTH_OK);
    n_vocab = hearth_model_n_vocab(model);
    size_t n = 0;
    const char *text = "Once upon a time there was";
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, prompt, 64, &n) == HEARTH_OK);
    n_prompt = (int)n;
    ids_json(prompt, n_prompt, prompt_json, sizeof prompt_json);
    snprintf(eos_ban, sizeof eos_ban, "\"logit_bias\":{\"%d\":-100}", (int)hearth_token_eos(model));
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, path, scratch, "--ctx 256"));
    const float *rows = NULL;
    int32_t ids[N_GEN];
    test_greedy(&sv, &rows, ids);
    test_stream(&sv, rows, ids);
    free((void *)rows);
    test_sampled(&sv);
    test_post_sampling(&sv, 1.0);
    test_post_sampling(&sv, 0.5);
    test_errors(&sv);
    CHECK(test_server_stop(&sv) == 0);
    hearth_model_free(model);
    fixture_server_cleanup("test_server_nprobs", scratch, test_failures > 0);
    return test_done("test_server_nprobs");
}
