/*
 * test_server_n.c - n choices through `hearth serve` (curl against the real
 * program, a small model): with a seed, choice i is what the library
 * samples with seed + i (srv_choice_seed), so the choices are reproducible
 * and a request for one choice with seed + i gives choice i; greedy choices
 * are all the library's greedy text; usage counts the prompt once and sums
 * the completion tokens (each choice's counted from its logprobs); streamed,
 * each choice's chunks carry its index and reassemble into the same texts,
 * each ends with one finish chunk, one usage chunk and one [DONE] close the
 * stream, also with more choices than slots (the others wait in the queue);
 * limits (16, and what the slots and queue can hold) are 400s naming n;
 * forced tool calls (tool_choice required, constrained decoding) give one
 * call per choice, streamed and not; and behind a gateway with a remote
 * tier, n > 1 is refused unless the request asks for the local model.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/server.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_n_XXXXXX";
static hearth_model *model;
static int32_t prompt[64];
static int n_prompt;
static char prompt_json[1024]; /* the ids as a JSON array */

static void make_prompt(void) {
    size_t n = 0;
    const char *text = "Once upon a time there was";
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, prompt, 64, &n) == HEARTH_OK);
    n_prompt = (int)n;
    ids_json(prompt, n_prompt, prompt_json, sizeof prompt_json);
}

/* A completion request on the prompt's ids with the given extra members. */
static char *completion_body(const char *extra) {
    char *b = malloc(4096);
    REQUIRE(b);
    snprintf(b, 4096, "{\"prompt\":%s,%s}", prompt_json, extra);
    return b;
}

static cJSON *complete(test_server *sv, const char *extra) {
    char *b = completion_body(extra);
    int status;
    cJSON *j = post(sv, "/v1/completions", b, &status);
    CHECKF(status == 200 && j, "%s: %d", extra, status);
    free(b);
    return j;
}

/* ---- the tests ------------------------------------------------------------ */

static void test_choice_seed(void) {
    CHECK(srv_choice_seed(42, 0, 3) == 42 && srv_choice_seed(42, 2, 3) == 44);
    CHECK(srv_choice_seed(HEARTH_SEED_RANDOM, 1, 3) == HEARTH_SEED_RANDOM);
    /* near the reserved value: three different seeds, none reserved */
    const uint64_t s = HEARTH_SEED_RANDOM - 1;
    const uint64_t a = srv_choice_seed(s, 0, 3), b = srv_choice_seed(s, 1, 3),
                   c = srv_choice_seed(s, 2, 3);
    CHECK(a != b && b != c && a != c);
    CHECK(a != HEARTH_SEED_RANDOM && b != HEARTH_SEED_RANDOM && c != HEARTH_SEED_RANDOM);
}

/* n = 3 with a seed: choice i = the library with seed 42 + i; the same
 * again; usage sums the choices. */
static void test_seeded(test_server *sv) {
    const char *extra = "\"max_tokens\":8,\"temperature\":1,\"seed\":42,\"n\":3,\"logprobs\":0";
    cJSON *a = complete(sv, extra), *b = complete(sv, extra);
    if (!a || !b) goto out;
    CHECKF(cJSON_GetArraySize(jget(a, "choices")) == 3, "3 choices");
    int sum_lib = 0, sum_lp = 0;
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "choices.%d.index", i);
        CHECKF(jnum(a, path) == i, "choice %d index", i);
        snprintf(path, sizeof path, "choices.%d.text", i);
        const char *ta = jstr(a, path), *tb = jstr(b, path);
        CHECKF(ta && tb && !strcmp(ta, tb), "choice %d reproducible: '%s' vs '%s'", i, ta, tb);
        const hearth_sampling sp = openai_sampling(1.0f, 42 + (uint64_t)i);
        int n_gen = 0;
        char *want = library_text(model, prompt, n_prompt, &sp, 8, &n_gen);
        CHECKF(ta && !strcmp(ta, want), "choice %d: server '%s', library (seed %d) '%s'", i, ta,
               42 + i, want);
        free(want);
        sum_lib += n_gen;
        snprintf(path, sizeof path, "choices.%d.logprobs.tokens", i);
        sum_lp += cJSON_GetArraySize(jget(a, path));
    }
    /* the choices differ (8 sampled tokens each from a 1000-token model) */
    CHECK(strcmp(jstr(a, "choices.0.text"), jstr(a, "choices.1.text")) != 0 ||
          strcmp(jstr(a, "choices.1.text"), jstr(a, "choices.2.text")) != 0);
    CHECKF(jnum(a, "usage.prompt_tokens") == n_prompt, "prompt once: %g vs %d",
           jnum(a, "usage.prompt_tokens"), n_prompt);
    CHECKF(jnum(a, "usage.completion_tokens") == sum_lp && sum_lp == sum_lib,
           "completion tokens %g, logprobs %d, library %d", jnum(a, "usage.completion_tokens"),
           sum_lp, sum_lib);
    CHECK(jnum(a, "usage.total_tokens") == n_prompt + sum_lp);
    /* one choice with seed 43 is choice 1 */
    cJSON *one = complete(sv, "\"max_tokens\":8,\"temperature\":1,\"seed\":43");
    if (one) {
        CHECK(cJSON_GetArraySize(jget(one, "choices")) == 1);
        CHECKF(jstr(one, "choices.0.text") &&
                   !strcmp(jstr(one, "choices.0.text"), jstr(a, "choices.1.text")),
               "seed 43: '%s' vs choice 1 '%s'", jstr(one, "choices.0.text"),
               jstr(a, "choices.1.text"));
    }
    cJSON_Delete(one);
out:
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Greedy: every choice is the library's greedy text (OpenAI too gives n
 * equal choices at temperature 0). */
static void test_greedy(test_server *sv) {
    const hearth_sampling sp = openai_sampling(0.0f, 1);
    char *want = library_text(model, prompt, n_prompt, &sp, 10, NULL);
    cJSON *a = complete(sv, "\"max_tokens\":10,\"temperature\":0,\"n\":4");
    for (int i = 0; a && i < 4; i++) {
        char path[64];
        snprintf(path, sizeof path, "choices.%d.text", i);
        CHECKF(jstr(a, path) && !strcmp(jstr(a, path), want), "greedy choice %d: '%s' vs '%s'", i,
               jstr(a, path), want);
    }
    cJSON_Delete(a);
    free(want);
}

/* Streamed (completion and chat) = not streamed, per index. */
static void check_stream(test_server *sv, bool chat, int n) {
    char extra[512], what[64];
    snprintf(what, sizeof what, "%s n=%d", chat ? "chat" : "completion", n);
    snprintf(extra, sizeof extra,
             "\"max_tokens\":6,\"temperature\":0.9,\"seed\":7,\"n\":%d,\"stream_options\":{"
             "\"include_usage\":true}",
             n);
    char *b;
    if (chat) {
        b = malloc(4096);
        REQUIRE(b);
        snprintf(b, 4096,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story.\"}],%s}", extra);
    } else {
        b = completion_body(extra);
    }
    const char *path = chat ? "/v1/chat/completions" : "/v1/completions";
    int status;
    cJSON *plain = post(sv, path, b, &status);
    CHECKF(status == 200 && plain, "%s: %d", what, status);
    /* the same body with "stream": true */
    char *sb = malloc(strlen(b) + 32);
    REQUIRE(sb);
    snprintf(sb, strlen(b) + 32, "%.*s,\"stream\":true}", (int)strlen(b) - 1, b);
    test_reply r = test_http(sv, "POST", path, sb, NULL);
    CHECKF(r.status == 200, "%s streamed: %d", what, r.status);
    const sse_choices s = parse_sse_choices(r.body, chat);
    CHECKF(s.framing_ok && s.done && s.index_ok, "%s: framing %d done %d index %d", what,
           s.framing_ok, s.done, s.index_ok);
    CHECKF(s.max_index == n - 1, "%s: highest index %d", what, s.max_index);
    CHECK(!s.finish_then_text);
    for (int i = 0; plain && i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, chat ? "choices.%d.message.content" : "choices.%d.text", i);
        const char *want = jstr(plain, p);
        CHECKF(want && !strcmp(s.text[i], want), "%s choice %d: streamed '%s', not '%s'", what, i,
               s.text[i], want);
        snprintf(p, sizeof p, "choices.%d.finish_reason", i);
        CHECKF(s.n_finish[i] == 1 && jstr(plain, p) && !strcmp(s.finish[i], jstr(plain, p)),
               "%s choice %d: %d finish chunks, '%s'", what, i, s.n_finish[i], s.finish[i]);
        if (chat) CHECKF(s.n_role[i] == 1, "%s choice %d: %d role chunks", what, i, s.n_role[i]);
    }
    if (plain) {
        CHECKF(s.usage_prompt == jnum(plain, "usage.prompt_tokens") &&
                   s.usage_completion == jnum(plain, "usage.completion_tokens") &&
                   s.usage_total == jnum(plain, "usage.total_tokens"),
               "%s: streamed usage %d/%d/%d", what, s.usage_prompt, s.usage_completion,
               s.usage_total);
    }
    free(r.body);
    cJSON_Delete(plain);
    free(sb);
    free(b);
}

/* A counter from /metrics (-1 if absent). */
/* The prompt is evaluated once for all choices: /metrics counts each
 * choice's prompt (prompt_tokens_total), and what the slots did not have to
 * evaluate (cached_total); their difference, the tokens evaluated, is what
 * one choice alone evaluates (usage: prompt - cached). A prompt no slot has
 * seen, n = 2 on 2 free slots (both start together), streamed and not; the
 * choices are still the library's with seed + i. */
static void test_prompt_once(test_server *sv) {
    for (int stream = 0; stream < 2; stream++) {
        char text[128], ids_json[1024], body[2048];
        int32_t ids[64];
        size_t n = 0;
        snprintf(text, sizeof text, "A lantern %s glowed in the window of the old mill",
                 stream ? "suddenly" : "quietly");
        REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, ids, 64, &n) == HEARTH_OK);
        size_t o = (size_t)snprintf(ids_json, sizeof ids_json, "[");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(ids_json + o, sizeof ids_json - o, "%s%d", i ? "," : "",
                                  (int)ids[i]);
        snprintf(ids_json + o, sizeof ids_json - o, "]");
        snprintf(body, sizeof body,
                 "{\"prompt\":%s,\"max_tokens\":6,\"temperature\":1,\"seed\":11,\"n\":2,"
                 "\"stream\":%s,\"stream_options\":{\"include_usage\":true}}",
                 ids_json, stream ? "true" : "false");
        const long p0 = test_metric(sv, "hearth_prompt_tokens_total"),
                   c0 = test_metric(sv, "hearth_prompt_tokens_cached_total");
        test_reply r = test_http(sv, "POST", "/v1/completions", body, NULL);
        CHECKF(r.status == 200, "prompt once stream=%d: %d %.300s", stream, r.status, r.body);
        int n_usage = -1, cached = -1;
        const char *texts[2] = {NULL, NULL};
        cJSON *j = NULL;
        sse_choices sc; /* its texts are read below */
        if (stream) {
            sc = parse_sse_choices(r.body, false);
            CHECK(sc.done && sc.max_index == 1);
            n_usage = sc.usage_prompt;
            cached = sc.usage_cached;
            texts[0] = sc.text[0];
            texts[1] = sc.text[1];
        } else {
            j = cJSON_ParseWithLength(r.body, r.len);
            const double p = jnum(j, "usage.prompt_tokens"),
                         c = jnum(j, "usage.prompt_tokens_details.cached_tokens");
            n_usage = p >= 0 ? (int)p : -1;
            cached = c >= 0 ? (int)c : -1;
            texts[0] = jstr(j, "choices.0.text");
            texts[1] = jstr(j, "choices.1.text");
        }
        CHECKF(n_usage == (int)n && cached >= 0 && cached < n_usage, "usage: %d prompt, %d cached",
               n_usage, cached);
        /* the last choice's count may reach /metrics just after the reply */
        long dp = 0, dc = 0;
        for (int t = 0; t < 100; t++) {
            dp = test_metric(sv, "hearth_prompt_tokens_total") - p0;
            dc = test_metric(sv, "hearth_prompt_tokens_cached_total") - c0;
            if (dp >= 2 * n_usage) break;
            test_sleep_ms(10);
        }
        CHECKF(dp == 2 * n_usage, "stream=%d: /metrics counted %ld prompt tokens, not 2 x %d",
               stream, dp, n_usage);
        CHECKF(dp - dc == n_usage - cached,
               "stream=%d: %ld prompt tokens evaluated for 2 choices, one alone evaluates %d",
               stream, dp - dc, n_usage - cached);
        for (int i = 0; i < 2; i++) {
            const hearth_sampling sp = openai_sampling(1.0f, 11 + (uint64_t)i);
            char *want = library_text(model, ids, (int)n, &sp, 6, NULL);
            CHECKF(texts[i] && !strcmp(texts[i], want), "stream=%d choice %d: '%s' vs library '%s'",
                   stream, i, texts[i], want);
            free(want);
        }
        cJSON_Delete(j);
        free(r.body);
    }
}

static void test_limits(test_server *sv) {
    /* 2 slots and a queue of 2: 4 at once */
    char *b = completion_body("\"max_tokens\":2,\"n\":5");
    test_reply r = test_http(sv, "POST", "/v1/completions", b, NULL);
    expect_error("n=5", &r, 400, "n", "--parallel");
    free(r.body);
    free(b);
    const char *bad[] = {"\"n\":17", "\"n\":0", "\"n\":\"2\"", "\"n\":1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = completion_body(bad[i]);
        r = test_http(sv, "POST", "/v1/completions", b, NULL);
        expect_error(bad[i], &r, 400, "n", NULL);
        free(r.body);
        free(b);
    }
}

/* ---- forced tool calls, one per choice ----------------------------------------- */

static const char forced_tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":"
    "\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12}},\"required\":["
    "\"city\"],\"additionalProperties\":false}}}]";

/* Each index's call name and arguments, assembled from the chunks. */
typedef struct calls_seen {
    char name[2][64];
    char args[2][1024];
    int n_first[2]; /* chunks that opened a call (id and name) */
    char finish[2][32];
} calls_seen;

static calls_seen stream_calls(const char *body) {
    calls_seen c = {0};
    for (const char *p = body; (p = strstr(p, "data: {")) != NULL;) {
        const char *end = strstr(p, "\n\n");
        if (!end) break;
        cJSON *j = cJSON_ParseWithLength(p + 6, (size_t)(end - p - 6));
        const double d = jnum(j, "choices.0.index");
        if (j && d >= 0 && d < 2) {
            const int i = (int)d;
            const cJSON *ch = jget(j, "choices.0");
            const char *nm = jstr(ch, "delta.tool_calls.0.function.name");
            const char *ar = jstr(ch, "delta.tool_calls.0.function.arguments");
            if (nm) {
                snprintf(c.name[i], sizeof c.name[i], "%s", nm);
                c.n_first[i]++;
            }
            if (ar && strlen(c.args[i]) + strlen(ar) < sizeof c.args[i]) strcat(c.args[i], ar);
            if (jstr(ch, "finish_reason"))
                snprintf(c.finish[i], sizeof c.finish[i], "%s", jstr(ch, "finish_reason"));
        }
        cJSON_Delete(j);
        p = end;
    }
    return c;
}

static void test_tools(const char *model_path) {
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 -t 1 --chat-template qwen3 -c 3072"));
    char b[4096];
    for (int stream = 0; stream < 2; stream++) {
        snprintf(b, sizeof b,
                 "{\"model\":\"local\",\"max_tokens\":600,\"temperature\":1,\"seed\":5,\"n\":2,"
                 "\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"Weather in "
                 "Paris?\"}],\"tools\":%s,\"tool_choice\":\"required\"}",
                 stream ? "true" : "false", forced_tools);
        test_reply r = test_http(&sv, "POST", "/v1/chat/completions", b, NULL);
        CHECKF(r.status == 200, "tools stream=%d: %d %.300s", stream, r.status, r.body);
        if (!stream) {
            cJSON *j = cJSON_ParseWithLength(r.body, r.len);
            for (int i = 0; j && i < 2; i++) {
                char p[96];
                snprintf(p, sizeof p, "choices.%d.message.tool_calls.0.function.name", i);
                CHECKF(jstr(j, p) && !strcmp(jstr(j, p), "get_weather"), "choice %d: a call", i);
                snprintf(p, sizeof p, "choices.%d.finish_reason", i);
                CHECKF(jstr(j, p) && !strcmp(jstr(j, p), "tool_calls"), "choice %d: finish", i);
                snprintf(p, sizeof p, "choices.%d.message.tool_calls.0.function.arguments", i);
                const char *args = jstr(j, p);
                cJSON *a = args ? cJSON_Parse(args) : NULL;
                CHECKF(a && cJSON_IsString(jget(a, "city")), "choice %d: arguments '%s'", i, args);
                cJSON_Delete(a);
            }
            cJSON_Delete(j);
        } else {
            const calls_seen c = stream_calls(r.body);
            for (int i = 0; i < 2; i++) {
                CHECKF(c.n_first[i] == 1 && !strcmp(c.name[i], "get_weather") &&
                           !strcmp(c.finish[i], "tool_calls"),
                       "streamed choice %d: %d calls '%s', finish '%s'", i, c.n_first[i], c.name[i],
                       c.finish[i]);
                cJSON *a = cJSON_Parse(c.args[i]);
                CHECKF(a && cJSON_IsString(jget(a, "city")), "streamed choice %d: '%s'", i,
                       c.args[i]);
                cJSON_Delete(a);
            }
        }
        free(r.body);
    }
    CHECK(test_server_stop(&sv) == 0);
}

/* A remote tier configured (never reached: the answer is refused or local):
 * the cascade follows one answer, so n > 1 is a 400 unless the client asks
 * for the local model. */
static void test_gateway(const char *model_path) {
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 -t 1 --chat-template chatml --cloud-url "
                              "http://127.0.0.1:9/v1 --cloud-model remote"));
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char b[512];
    snprintf(b, sizeof b, "{%s,\"max_tokens\":3,\"n\":2}", msgs);
    test_reply r = test_http(&sv, "POST", "/v1/chat/completions", b, NULL);
    expect_error("gateway n=2", &r, 400, "n", "local");
    free(r.body);
    snprintf(b, sizeof b, "{%s,\"max_tokens\":3,\"n\":2,\"model\":\"local\"}", msgs);
    r = test_http(&sv, "POST", "/v1/chat/completions", b, NULL);
    CHECKF(r.status == 200 && strstr(r.body, "\"index\":1"), "gateway local n=2: %d %.300s",
           r.status, r.body);
    free(r.body);
    snprintf(b, sizeof b, "{%s,\"max_tokens\":3,\"n\":2,\"stream\":true}", msgs);
    r = test_http(&sv, "POST", "/v1/chat/completions", b, "-H 'x-hearth-tier: local'");
    const sse_choices s = parse_sse_choices(r.body, true);
    CHECKF(r.status == 200 && s.done && s.max_index == 1, "gateway header local: %d %.300s",
           r.status, r.body);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);
}

int main(void) {
    test_choice_seed();
    bool skip;
    const char *model_path = fixture_server_model("test_server_n", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(model_path, &mp, &model) == HEARTH_OK);
    make_prompt();

    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 --queue 2 -t 1 --chat-template chatml"));
    test_seeded(&sv);
    test_greedy(&sv);
    check_stream(&sv, false, 2);
    check_stream(&sv, true, 2);
    check_stream(&sv, true, 4); /* two choices wait for a slot */
    test_prompt_once(&sv);
    test_limits(&sv);
    CHECK(test_server_stop(&sv) == 0);
    test_tools(model_path);
    test_gateway(model_path);

    hearth_model_free(model);
    fixture_server_cleanup("test_server_n", scratch, test_failures > 0);
    return test_done("test_server_n");
}
