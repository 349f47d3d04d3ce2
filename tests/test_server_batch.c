/*
 * test_server_batch.c - several prompts in one POST /v1/completions, as
 * lm-evaluation-harness's local-completions sends them with batch_size > 1
 * ([[ids], ...] with max_tokens 1, logprobs and echo; or a list of strings),
 * through `hearth serve` (tiny-llama from ../shared/conformance, else a
 * synthetic model):
 *  - parsing: a list of strings or of id arrays is k prompts, each kept;
 *    mixing the two, an empty one, a bad id or too many are 400s naming
 *    prompt[i] (prompt[i][j]);
 *  - every choice of a batch equals the same prompt sent alone (with the
 *    same n): greedy text and finish (also against the library), logprobs,
 *    prompt logprobs and text offsets with echo, echo of its own prompt;
 *    choice index i * n + j for prompt i's choice j with n = 2; the prompts
 *    are of equal length and run side by side in the slots, so a choice
 *    that copied another prompt's evaluated prompt would answer that one;
 *  - prompts longer than a scoring chunk, of different lengths, scored
 *    side by side (one forward pass for the slots' chunks): as alone;
 *  - ids and string prompts; seeded sampling (choice j of each prompt has
 *    seed + j, as alone);
 *  - usage sums the prompts (each once) and all completions;
 *  - streamed = not streamed per index, one finish chunk each, one usage
 *    chunk and one [DONE];
 *  - llama-server's /completion with a list: an array of its objects (a
 *    list of one: one object), each as its prompt alone; streamed, each
 *    event with its prompt's index;
 *  - the 400s over HTTP (empty list, a bad id in prompt[1], more choices
 *    than the slots and queue hold, a suffix);
 *  - behind a gateway with a cloud tier: refused unless the request asks
 *    for the local model; then one ledger row with the summed tokens.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/server.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

#include <math.h>

enum { K = 3, LEN = 9, N_TOP = 2 };

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_batch_XXXXXX";
static hearth_model *model;
static int32_t ids[K][LEN]; /* K prompts of LEN tokens each */
static char ids_text[K][512];
static char batch_ids[2048]; /* [[...],[...],[...]] */

static void make_prompts(void) {
    static const char *const texts[K] = {
        "Once upon a time there was a little girl who liked to play",
        "The big brown dog ran to the park to find a red ball",
        "Tom and his mom went to the store because they needed food",
    };
    size_t o = (size_t)snprintf(batch_ids, sizeof batch_ids, "[");
    for (int i = 0; i < K; i++) {
        int32_t all[64];
        size_t n = 0;
        REQUIRE(hearth_tokenize(model, texts[i], strlen(texts[i]), true, true, all, 64, &n) ==
                HEARTH_OK);
        REQUIRE(n >= LEN);
        memcpy(ids[i], all, sizeof ids[i]);
        ids_json(ids[i], LEN, ids_text[i], sizeof ids_text[i]);
        o += (size_t)snprintf(batch_ids + o, sizeof batch_ids - o, "%s%s", i ? "," : "",
                              ids_text[i]);
    }
    snprintf(batch_ids + o, sizeof batch_ids - o, "]");
}

static cJSON *complete(test_server *sv, const char *prompt, const char *extra) {
    char body[8192];
    snprintf(body, sizeof body, "{\"prompt\":%s,%s}", prompt, extra);
    int status;
    cJSON *j = post(sv, "/v1/completions", body, &status);
    CHECKF(status == 200 && j, "%.120s: %d", body, status);
    return j;
}

/* a and b equal, numbers within 1e-4 (a batch's steps may group the slots
 * differently from a request alone) */
static bool near_json(const cJSON *a, const cJSON *b) {
    if (!a || !b) return a == b;
    if ((a->type & 0xff) != (b->type & 0xff)) return false;
    if (cJSON_IsNumber(a)) return fabs(a->valuedouble - b->valuedouble) <= 1e-4;
    if (cJSON_IsString(a)) return !strcmp(a->valuestring, b->valuestring);
    if (!cJSON_IsArray(a) && !cJSON_IsObject(a)) return true;
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return false;
    for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next)
        if ((cJSON_IsObject(a) && strcmp(x->string, y->string)) || !near_json(x, y)) return false;
    return true;
}

/* Choice bi of a batch against choice ai of the prompt alone. */
static void same_choice(const cJSON *batch, int bi, const cJSON *alone, int ai, const char *what) {
    char pb[64], pa[64];
    snprintf(pb, sizeof pb, "choices.%d", bi);
    snprintf(pa, sizeof pa, "choices.%d", ai);
    const cJSON *b = jget(batch, pb), *a = jget(alone, pa);
    CHECKF(b && a, "%s: batch choice %d, alone %d", what, bi, ai);
    if (!a || !b) return;
    CHECKF(jnum(b, "index") == bi, "%s: index %g, want %d", what, jnum(b, "index"), bi);
    CHECKF(jstr(b, "text") && jstr(a, "text") && !strcmp(jstr(b, "text"), jstr(a, "text")),
           "%s: batch '%s', alone '%s'", what, jstr(b, "text"), jstr(a, "text"));
    CHECKF(jstr(b, "finish_reason") && !strcmp(jstr(b, "finish_reason"), jstr(a, "finish_reason")),
           "%s: finish %s vs %s", what, jstr(b, "finish_reason"), jstr(a, "finish_reason"));
    CHECKF(near_json(jget(b, "logprobs"), jget(a, "logprobs")), "%s: logprobs differ", what);
}

/* Each choice of the batch reply against the prompts alone (n each), and
 * usage: the prompts' and completions' sums. */
static void check_batch(test_server *sv, const cJSON *batch, const char *const *prompts, int k,
                        int n, const char *extra, const char *what) {
    CHECKF(cJSON_GetArraySize(jget(batch, "choices")) == k * n, "%s: %d choices, want %d", what,
           cJSON_GetArraySize(jget(batch, "choices")), k * n);
    double prompt = 0, completion = 0;
    for (int i = 0; i < k; i++) {
        cJSON *alone = complete(sv, prompts[i], extra);
        for (int j = 0; alone && j < n; j++) {
            char w[96];
            snprintf(w, sizeof w, "%s prompt %d choice %d", what, i, j);
            same_choice(batch, i * n + j, alone, j, w);
        }
        prompt += jnum(alone, "usage.prompt_tokens");
        completion += jnum(alone, "usage.completion_tokens");
        cJSON_Delete(alone);
    }
    CHECKF(jnum(batch, "usage.prompt_tokens") == prompt &&
               jnum(batch, "usage.completion_tokens") == completion &&
               jnum(batch, "usage.total_tokens") == prompt + completion,
           "%s: usage %g + %g, the prompts alone %g + %g", what, jnum(batch, "usage.prompt_tokens"),
           jnum(batch, "usage.completion_tokens"), prompt, completion);
}

/* ---- parsing --------------------------------------------------------------- */

static bool parse(const char *body, srv_request *r, srv_error *e) {
    return srv_parse_request(SRV_COMPLETION, body, strlen(body), r, e);
}

static void refused(const char *body, const char *param, const char *needle) {
    srv_request r;
    srv_error e = {0};
    const bool ok = parse(body, &r, &e);
    CHECKF(!ok, "accepted: %.80s", body);
    if (ok) {
        srv_request_free(&r);
        return;
    }
    CHECKF(e.status == 400 && !strcmp(e.param, param), "%.80s: %d param '%s', want '%s'", body,
           e.status, e.param, param);
    if (needle) CHECKF(strstr(e.message, needle), "%.80s: message '%s'", body, e.message);
}

static void test_parse(void) {
    srv_request r;
    srv_error e;
    REQUIRE(parse("{\"prompt\":[\"a\",\"bc\",\"d\"],\"echo\":true}", &r, &e));
    CHECK(r.n_prompts == 3 && srv_n_prompts(&r) == 3 && r.prompt && !strcmp(r.prompt, "a"));
    CHECK(r.more_prompts && !strcmp(r.more_prompts[0].text, "bc") &&
          r.more_prompts[0].text_len == 2 && !strcmp(r.more_prompts[1].text, "d"));
    size_t len = 0;
    const char *echo = srv_request_echo_i(&r, 1, &len);
    CHECK(echo && !strcmp(echo, "bc") && len == 2);
    srv_request_free(&r);
    REQUIRE(parse("{\"prompt\":[[1,2],[3]]}", &r, &e));
    CHECK(r.n_prompts == 2 && r.n_prompt_ids == 2 && r.prompt_ids[1] == 2);
    CHECK(r.more_prompts[0].n_ids == 1 && r.more_prompts[0].ids[0] == 3 && !r.more_prompts[0].text);
    CHECK(!srv_request_echo_i(&r, 1, &len) && len == 0); /* no echo asked */
    srv_request_free(&r);
    /* one listed prompt is a prompt (as before), and a bare one counts 1 */
    REQUIRE(parse("{\"prompt\":[[5,6]]}", &r, &e));
    CHECK(srv_n_prompts(&r) == 1 && !r.more_prompts && r.n_prompt_ids == 2);
    srv_request_free(&r);
    REQUIRE(parse("{\"prompt\":\"x\"}", &r, &e));
    CHECK(srv_n_prompts(&r) == 1 && !r.more_prompts);
    srv_request_free(&r);
    refused("{\"prompt\":[\"a\",[1]]}", "prompt[1]", "not both");
    refused("{\"prompt\":[[1],\"a\"]}", "prompt[1]", "not both");
    refused("{\"prompt\":[\"a\",\"\"]}", "prompt[1]", "empty");
    refused("{\"prompt\":[[1],[2],[]]}", "prompt[2]", "empty");
    refused("{\"prompt\":[[1],[2,-1]]}", "prompt[1][1]", "token id");
    refused("{\"prompt\":[[1],[2,1.5]]}", "prompt[1][1]", "token id");
    refused("{\"prompt\":[\"a\",\"b\"],\"suffix\":\"c\"}", "suffix", "one prompt");
    refused("{\"prompt\":[]}", "prompt", "empty");
    /* SRV_MAX_PROMPTS + 1 prompts */
    char *big = malloc(8 * (SRV_MAX_PROMPTS + 2));
    REQUIRE(big);
    size_t o = (size_t)sprintf(big, "{\"prompt\":[");
    for (int i = 0; i <= SRV_MAX_PROMPTS; i++) o += (size_t)sprintf(big + o, "%s[1]", i ? "," : "");
    sprintf(big + o, "]}");
    refused(big, "prompt", "at most 256");
    free(big);
}

/* ---- the server --------------------------------------------------------------- */

/* Greedy, n = 2, token-id prompts: each choice is the prompt alone's, and
 * the library's greedy text. */
static void test_greedy(test_server *sv) {
    const char *extra = "\"max_tokens\":6,\"temperature\":0,\"n\":2";
    cJSON *b = complete(sv, batch_ids, extra);
    const char *prompts[K];
    for (int i = 0; i < K; i++) prompts[i] = ids_text[i];
    if (b) check_batch(sv, b, prompts, K, 2, extra, "greedy");
    const hearth_sampling sp = openai_sampling(0.0f, 1);
    for (int i = 0; b && i < K; i++) {
        char *want = library_text(model, ids[i], LEN, &sp, 6, NULL);
        for (int j = 0; j < 2; j++) {
            char p[64];
            snprintf(p, sizeof p, "choices.%d.text", i * 2 + j);
            CHECKF(jstr(b, p) && !strcmp(jstr(b, p), want),
                   "prompt %d choice %d: '%s', library '%s'", i, j, jstr(b, p), want);
        }
        free(want);
    }
    cJSON_Delete(b);
}

/* Each prompt is evaluated once for its n choices, and only for its own:
 * /metrics counts every choice's prompt (prompt_tokens_total) and what the
 * slots did not have to evaluate (cached_total). Two prompts no slot has
 * seen, n = 2, on 4 free slots (all four start together): the tokens
 * evaluated are the prompts' (usage: prompt - cached). A choice that took
 * another prompt's evaluated prompt (the engine keeps only their common
 * start, BOS) would evaluate its own again. */
static void test_prompt_once(test_server *sv) {
    const int n_vocab = hearth_model_n_vocab(model);
    char p[2][256], batch[600];
    for (int i = 0; i < 2; i++) {
        int32_t fresh[LEN] = {hearth_token_bos(model)};
        for (int t = 1; t < LEN; t++) fresh[t] = (300 + 37 * t + 101 * i) % n_vocab;
        ids_json(fresh, LEN, p[i], sizeof p[i]);
    }
    snprintf(batch, sizeof batch, "[%s,%s]", p[0], p[1]);
    const long p0 = test_metric(sv, "hearth_prompt_tokens_total"),
               c0 = test_metric(sv, "hearth_prompt_tokens_cached_total");
    cJSON *b = complete(sv, batch, "\"max_tokens\":3,\"temperature\":0,\"n\":2");
    const double prompt = jnum(b, "usage.prompt_tokens"),
                 cached = jnum(b, "usage.prompt_tokens_details.cached_tokens");
    CHECKF(prompt == 2 * LEN && cached >= 0 && cached < LEN, "usage %g prompt, %g cached", prompt,
           cached);
    long dp = 0, dc = 0; /* the last choice's count may reach /metrics just after the reply */
    for (int t = 0; t < 100; t++) {
        dp = test_metric(sv, "hearth_prompt_tokens_total") - p0;
        dc = test_metric(sv, "hearth_prompt_tokens_cached_total") - c0;
        if (dp >= 2 * (long)prompt) break;
        test_sleep_ms(10);
    }
    CHECKF(dp == 2 * (long)prompt, "/metrics counted %ld prompt tokens, not 2 x %g", dp, prompt);
    CHECKF(dp - dc == (long)(prompt - cached),
           "%ld prompt tokens evaluated for 2 prompts x 2 choices; the prompts are %g", dp - dc,
           prompt - cached);
    cJSON_Delete(b);
}

/* lm-evaluation-harness's loglikelihood shape (max_tokens 1, echo,
 * logprobs), with n = 2: every choice scores its own prompt. */
static void test_echo_logprobs(test_server *sv) {
    char extra[128];
    snprintf(extra, sizeof extra,
             "\"max_tokens\":1,\"temperature\":0,\"n\":2,\"echo\":true,\"logprobs\":%d", N_TOP);
    cJSON *b = complete(sv, batch_ids, extra);
    const char *prompts[K];
    for (int i = 0; i < K; i++) prompts[i] = ids_text[i];
    if (b) check_batch(sv, b, prompts, K, 2, extra, "echo+logprobs");
    for (int c = 0; b && c < K * 2; c++) { /* LEN prompt entries and the generated one */
        char p[64];
        snprintf(p, sizeof p, "choices.%d.logprobs.tokens", c);
        CHECKF(cJSON_GetArraySize(jget(b, p)) == LEN + 1, "choice %d: %d logprob entries", c,
               cJSON_GetArraySize(jget(b, p)));
    }
    /* and without n, the way the harness sends it */
    cJSON *one =
        complete(sv, batch_ids, "\"max_tokens\":1,\"temperature\":0,\"echo\":true,\"logprobs\":1");
    if (one)
        check_batch(sv, one, prompts, K, 1,
                    "\"max_tokens\":1,\"temperature\":0,\"echo\":true,\"logprobs\":1", "harness");
    cJSON_Delete(one);
    cJSON_Delete(b);
}

/* The harness's shape with prompts longer than a scoring step's chunk and
 * of different lengths, as many as the slots: they score side by side, their
 * chunks sharing forward passes at different offsets, and each choice is
 * the prompt alone's. */
static void test_long_scores(test_server *sv) {
    enum { NL = 4 };
    static const int lens[NL] = {75, 40, 100, 33};
    const int n_vocab = hearth_model_n_vocab(model);
    static char p[NL][1024], batch[4200];
    const char *prompts[NL];
    size_t o = (size_t)snprintf(batch, sizeof batch, "[");
    for (int i = 0; i < NL; i++) {
        int32_t x[100] = {hearth_token_bos(model)};
        for (int t = 1; t < lens[i]; t++) x[t] = (500 + 53 * t + 211 * i) % n_vocab;
        ids_json(x, lens[i], p[i], sizeof p[i]);
        prompts[i] = p[i];
        o += (size_t)snprintf(batch + o, sizeof batch - o, "%s%s", i ? "," : "", p[i]);
    }
    snprintf(batch + o, sizeof batch - o, "]");
    static const char extra[] = "\"max_tokens\":1,\"temperature\":0,\"echo\":true,\"logprobs\":1";
    cJSON *b = complete(sv, batch, extra);
    if (b) check_batch(sv, b, prompts, NL, 1, extra, "long scores");
    cJSON_Delete(b);
}

static const char *const strings[2] = {"\"Once upon a time\"", "\"The little dog ran\""};
static const char string_batch[] = "[\"Once upon a time\",\"The little dog ran\"]";
static const char string_extra[] =
    "\"max_tokens\":5,\"temperature\":0.9,\"seed\":5,\"n\":2,\"echo\":true";

/* Text prompts, sampled with a seed: choice j of each prompt as alone
 * (seed + j), each echoing its own prompt. */
static void test_strings(test_server *sv) {
    cJSON *b = complete(sv, string_batch, string_extra);
    if (b) check_batch(sv, b, strings, 2, 2, string_extra, "strings");
    for (int c = 0; b && c < 4; c++) {
        char p[64];
        snprintf(p, sizeof p, "choices.%d.text", c);
        const char *want = c < 2 ? "Once upon a time" : "The little dog ran";
        CHECKF(jstr(b, p) && !strncmp(jstr(b, p), want, strlen(want)),
               "choice %d echoes '%s': '%s'", c, want, jstr(b, p));
    }
    cJSON_Delete(b);
}

/* Streamed: the same texts (echo first) per index, one finish chunk each,
 * the same usage, one [DONE]; n_ch choices. */
static void test_stream(test_server *sv, const char *prompt, const char *extra, int n_ch) {
    char body[4096];
    snprintf(body, sizeof body, "{\"prompt\":%s,%s}", prompt, extra);
    int status;
    cJSON *plain = post(sv, "/v1/completions", body, &status);
    CHECKF(status == 200 && plain, "plain: %d", status);
    snprintf(body, sizeof body,
             "{\"prompt\":%s,%s,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             prompt, extra);
    test_reply r = test_http(sv, "POST", "/v1/completions", body, NULL);
    CHECKF(r.status == 200, "streamed: %d", r.status);
    const sse_choices s = parse_sse_choices(r.body, false);
    CHECKF(s.framing_ok && s.done && s.index_ok && s.max_index == n_ch - 1 && !s.finish_then_text,
           "stream: framing %d done %d index %d max %d", s.framing_ok, s.done, s.index_ok,
           s.max_index);
    for (int c = 0; plain && c < n_ch; c++) {
        char p[64];
        snprintf(p, sizeof p, "choices.%d.text", c);
        CHECKF(jstr(plain, p) && !strcmp(s.text[c], jstr(plain, p)) && s.n_finish[c] == 1,
               "choice %d: streamed '%s' (%d finish chunks), plain '%s'", c, s.text[c],
               s.n_finish[c], jstr(plain, p));
    }
    CHECKF(plain && s.usage_prompt == jnum(plain, "usage.prompt_tokens") &&
               s.usage_completion == jnum(plain, "usage.completion_tokens"),
           "stream usage %d + %d", s.usage_prompt, s.usage_completion);
    free(r.body);
    cJSON_Delete(plain);
}

/* llama-server's /completion with a list: an array of its objects, each
 * with its prompt's index and the content that prompt gets alone; streamed,
 * each event carries its prompt's index, and each prompt's events join to
 * the same content and end in one final (stop) object. One prompt in a list
 * is one object, as llama-server answers it. */
static void test_llama(test_server *sv) {
    static const char *const prompts[] = {"Once upon a time", "The little dog ran", "Tom and"};
    enum { NP = 3 };
    const char *const extra = "\"n_predict\":4,\"temperature\":0";
    char body[1024], alone[NP][256];
    for (int i = 0; i < NP; i++) {
        snprintf(body, sizeof body, "{\"prompt\":\"%s\",%s}", prompts[i], extra);
        cJSON *j = post(sv, "/completion", body, NULL);
        snprintf(alone[i], sizeof alone[i], "%s", jstr(j, "content") ? jstr(j, "content") : "?");
        cJSON_Delete(j);
    }
    snprintf(body, sizeof body, "{\"prompt\":[\"%s\",\"%s\",\"%s\"],%s}", prompts[0], prompts[1],
             prompts[2], extra);
    int status;
    cJSON *arr = post(sv, "/completion", body, &status);
    CHECKF(status == 200 && cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == NP,
           "/completion list: %d, %d objects", status, cJSON_GetArraySize(arr));
    for (int i = 0; cJSON_IsArray(arr) && i < cJSON_GetArraySize(arr); i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, i);
        CHECKF(jnum(o, "index") == i && jstr(o, "content") && !strcmp(jstr(o, "content"), alone[i]),
               "/completion list: object %d has index %g, content '%s', alone '%s'", i,
               jnum(o, "index"), jstr(o, "content"), alone[i]);
    }
    cJSON_Delete(arr);

    snprintf(body, sizeof body, "{\"prompt\":[\"%s\",\"%s\",\"%s\"],%s,\"stream\":true}",
             prompts[0], prompts[1], prompts[2], extra);
    test_reply r = test_http(sv, "POST", "/completion", body, NULL);
    char got[NP][256] = {{0}};
    int finals[NP] = {0}, bad = 0, rc;
    bool done = false;
    const char *p = r.body;
    cJSON *ev;
    while ((rc = test_sse_next(&p, &done, &ev)) == 1) {
        const int i = (int)jnum(ev, "index");
        if (i < 0 || i >= NP || finals[i] || !jstr(ev, "content")) {
            bad++;
        } else {
            snprintf(got[i] + strlen(got[i]), sizeof got[i] - strlen(got[i]), "%s",
                     jstr(ev, "content"));
            finals[i] += cJSON_IsTrue(jget(ev, "stop"));
        }
        cJSON_Delete(ev);
    }
    CHECKF(r.status == 200 && rc == 0 && bad == 0, "/completion stream: %d, rc %d, %d bad events",
           r.status, rc, bad);
    for (int i = 0; i < NP; i++)
        CHECKF(finals[i] == 1 && !strcmp(got[i], alone[i]),
               "/completion stream: prompt %d '%s' (%d finals), alone '%s'", i, got[i], finals[i],
               alone[i]);
    free(r.body);

    snprintf(body, sizeof body, "{\"prompt\":[\"%s\"],%s}", prompts[0], extra);
    cJSON *one = post(sv, "/completion", body, NULL);
    CHECKF(cJSON_IsObject(one) && jstr(one, "content") && !strcmp(jstr(one, "content"), alone[0]),
           "/completion list of one: an object");
    cJSON_Delete(one);
}

static void test_errors(test_server *sv) {
    char body[4096];
    test_reply r =
        test_http(sv, "POST", "/v1/completions", "{\"prompt\":[],\"max_tokens\":1}", NULL);
    expect_error("empty list", &r, 400, "prompt", "empty");
    free(r.body);
    const int n_vocab = hearth_model_n_vocab(model);
    snprintf(body, sizeof body, "{\"prompt\":[[1,2],[3,4,%d]],\"max_tokens\":1}", n_vocab);
    r = test_http(sv, "POST", "/v1/completions", body, NULL);
    expect_error("bad id", &r, 400, "prompt[1][2]", "vocabulary");
    free(r.body);
    /* 4 slots and a queue of 4: 5 prompts x n 2 do not fit */
    snprintf(body, sizeof body, "{\"prompt\":[[1],[2],[3],[4],[5]],\"n\":2,\"max_tokens\":1}");
    r = test_http(sv, "POST", "/v1/completions", body, NULL);
    expect_error("too many", &r, 400, "prompt", "--parallel");
    free(r.body);
    snprintf(body, sizeof body, "{\"prompt\":[\"a\",\"b\"],\"suffix\":\"c\",\"max_tokens\":1}");
    r = test_http(sv, "POST", "/v1/completions", body, NULL);
    expect_error("suffix", &r, 400, "suffix", NULL);
    free(r.body);
    /* 8 fit (the last four wait in the queue) */
    snprintf(body, sizeof body,
             "{\"prompt\":[[1],[2],[3],[4],[5],[6],[7],[8]],\"max_tokens\":2,\"temperature\":0}");
    cJSON *j = post(sv, "/v1/completions", body, NULL);
    CHECKF(cJSON_GetArraySize(jget(j, "choices")) == 8 && jnum(j, "choices.7.index") == 7,
           "8 prompts: %d choices", cJSON_GetArraySize(jget(j, "choices")));
    cJSON_Delete(j);
}

/* ---- the gateway ------------------------------------------------------------------ */

static double local_stat(test_server *sv, const char *what) {
    test_reply r = test_http(sv, "GET", "/v1/hearth/stats", NULL, NULL);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    char p[64];
    snprintf(p, sizeof p, "tiers.local.%s", what);
    const double v = jget(j, p) ? jnum(j, p) : 0;
    cJSON_Delete(j);
    free(r.body);
    return v;
}

static void test_gateway(const char *model_path) {
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 -t 1 --ctx 256 --cloud-url http://127.0.0.1:9/v1 "
                              "--cloud-model remote"));
    char body[1024];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":2}", string_batch);
    test_reply r = test_http(&sv, "POST", "/v1/completions", body, NULL);
    expect_error("gateway", &r, 400, "prompt", "local");
    free(r.body);
    const double req0 = local_stat(&sv, "requests"), p0 = local_stat(&sv, "prompt_tokens"),
                 c0 = local_stat(&sv, "completion_tokens");
    snprintf(body, sizeof body, "{\"model\":\"local\",\"prompt\":%s,\"max_tokens\":2,\"n\":2}",
             string_batch);
    int status;
    cJSON *j = post(&sv, "/v1/completions", body, &status);
    CHECKF(status == 200 && cJSON_GetArraySize(jget(j, "choices")) == 4, "local: %d", status);
    /* the row is written once the response is complete */
    double req = req0;
    for (int t = 0; t < 100 && req == req0; t++) {
        test_sleep_ms(20);
        req = local_stat(&sv, "requests");
    }
    CHECKF(req == req0 + 1, "ledger: %g local rows, was %g", req, req0);
    CHECKF(local_stat(&sv, "prompt_tokens") - p0 == jnum(j, "usage.prompt_tokens") &&
               local_stat(&sv, "completion_tokens") - c0 == jnum(j, "usage.completion_tokens"),
           "ledger tokens %g + %g, usage %g + %g", local_stat(&sv, "prompt_tokens") - p0,
           local_stat(&sv, "completion_tokens") - c0, jnum(j, "usage.prompt_tokens"),
           jnum(j, "usage.completion_tokens"));
    cJSON_Delete(j);
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":2,\"stream\":true}", string_batch);
    r = test_http(&sv, "POST", "/v1/completions", body, "-H 'x-hearth-tier: local'");
    const sse_choices s = parse_sse_choices(r.body, false);
    CHECKF(r.status == 200 && s.done && s.max_index == 1, "header local: %d %.200s", r.status,
           r.body);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);
}

int main(void) {
    test_parse();
    bool skip;
    const char *path = fixture_server_model("test_server_batch", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(path);
    if (!strstr(path, "conformance"))
        printf("test_server_batch: no ../shared/conformance (HEARTH_SHARED_DIR); a synthetic "
               "model with random weights instead\n");
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(path, &mp, &model) == HEARTH_OK);
    make_prompts();
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, path, scratch, "--parallel 4 --queue 4 -t 1 --ctx 256"));
    test_greedy(&sv);
    test_prompt_once(&sv);
    test_echo_logprobs(&sv);
    test_long_scores(&sv);
    test_strings(&sv);
    test_stream(&sv, string_batch, string_extra, 4);
    test_stream(&sv, batch_ids,
                "\"max_tokens\":2,\"temperature\":0,\"n\":2,\"echo\":true,\"logprobs\":1", K * 2);
    test_llama(&sv);
    test_errors(&sv);
    CHECK(test_server_stop(&sv) == 0);
    test_gateway(path);
    hearth_model_free(model);
    fixture_server_cleanup("test_server_batch", scratch, test_failures > 0);
    return test_done("test_server_batch");
}
