/*
 * test_server_prompt_only.c - max_tokens 0 on POST /v1/completions (vLLM's prompt
 * scoring: lm-evaluation-harness's loglikelihood can send "max_tokens": 0
 * with echo and logprobs) and llama-server's /completion with n_predict 0,
 * through `hearth serve` (tiny-llama from ../shared/conformance, else a
 * synthetic model):
 *  - echo and logprobs: the prompt's entries are those of the same request
 *    with max_tokens 1, less its generated token; the text is the echo
 *    alone; finish_reason "length", usage.completion_tokens 0 (streamed:
 *    test_server_echo);
 *  - nothing is sampled or fed: hearth_generated_tokens_total and
 *    hearth_decode_steps_total stay where they were;
 *  - the prompt goes into the slot's cache: the next request with that
 *    prompt reuses it (cached tokens);
 *  - without echo: an empty text (and an empty logprobs list);
 *  - n = 2 and two prompts: four choices, each its prompt's echo, none
 *    generating;
 *  - /completion n_predict 0: content "", tokens_predicted 0, stop_type
 *    "limit";
 *  - a chat's max_tokens / max_completion_tokens 0 is a 400 naming it;
 *  - with a remote tier (the fake cloud), max_tokens 0 is answered locally
 *    and never reaches the tier; naming the tier (x-hearth-tier, model) is a
 *    400 naming max_tokens.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

#include <math.h>

enum { MAX_PROMPT = 512 }; /* a synthetic vocabulary takes about a token a byte */

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_ponly_XXXXXX";
static hearth_model *model;

static const char text[] =
    "Once upon a time there was a little girl named Lily. She liked to play outside in the sun "
    "with her friend, a big brown dog. They ran to the park and found a red ball under a tree.";

static cJSON *completion(test_server *sv, const char *prompt, int max_tokens, const char *extra) {
    char body[8192];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":0%s}", prompt,
             max_tokens, extra);
    int status;
    cJSON *j = post(sv, "/v1/completions", body, &status);
    CHECKF(status == 200 && j, "%.80s: %d", body, status);
    return j;
}

/* Whether arrays a and b agree on their first n entries (numbers within
 * 1e-5, everything else equal). */
static bool same_prefix(const cJSON *a, const cJSON *b, int n) {
    if (cJSON_GetArraySize(a) < n || cJSON_GetArraySize(b) < n) return false;
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
        const bool ok = cJSON_IsNumber(x)
                            ? cJSON_IsNumber(y) && fabs(x->valuedouble - y->valuedouble) <= 1e-5
                            : cJSON_Compare(x, y, true);
        if (!ok) return false;
    }
    return true;
}

/* The logprobs of `zero` (max_tokens 0) are the first n of `one`'s
 * (max_tokens 1: the prompt's n, then the generated token's). */
static void check_same_prompt(const cJSON *zero, const cJSON *one, int n, const char *what) {
    static const char *const fields[] = {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        char path[64];
        snprintf(path, sizeof path, "choices.0.logprobs.%s", fields[f]);
        const cJSON *a = jget(zero, path), *b = jget(one, path);
        CHECKF(cJSON_GetArraySize(a) == n && cJSON_GetArraySize(b) == n + 1 && same_prefix(a, b, n),
               "%s: %s: %d entries with max_tokens 0, %d with 1 (want %d and %d, the same prompt "
               "entries)",
               what, fields[f], cJSON_GetArraySize(a), cJSON_GetArraySize(b), n, n + 1);
    }
}

/* A reply that generated nothing: finish "length", no completion tokens. */
static void check_nothing(const cJSON *j, int n_prompt, const char *what) {
    const char *fr = jstr(j, "choices.0.finish_reason");
    CHECKF(fr && !strcmp(fr, "length") && jnum(j, "usage.completion_tokens") == 0 &&
               jnum(j, "usage.prompt_tokens") == n_prompt,
           "%s: finish_reason %s, completion_tokens %g, prompt_tokens %g (want %d)", what,
           fr ? fr : "(none)", jnum(j, "usage.completion_tokens"), jnum(j, "usage.prompt_tokens"),
           n_prompt);
}

/* max_tokens 0 against 1; nothing sampled or fed; the prompt left in the
 * slot's cache. */
static void test_scored(test_server *sv, const int32_t *ids, int n) {
    char flat[4096], echo[1024];
    ids_json(ids, n, flat, sizeof flat);
    size_t len = 0;
    REQUIRE(hearth_detokenize(model, ids, (size_t)n, false, echo, sizeof echo - 1, &len) ==
            HEARTH_OK);
    echo[len] = '\0';
    const char *extra = ",\"logprobs\":3,\"echo\":true";
    cJSON *one = completion(sv, flat, 1, extra);
    const long gen0 = test_metric(sv, "hearth_generated_tokens_total");
    const long steps0 = test_metric(sv, "hearth_decode_steps_total");
    cJSON *zero = completion(sv, flat, 0, extra);
    CHECKF(test_metric(sv, "hearth_generated_tokens_total") == gen0 &&
               test_metric(sv, "hearth_decode_steps_total") == steps0,
           "max_tokens 0 sampled or fed a token: generated %ld -> %ld, decode steps %ld -> %ld",
           gen0, test_metric(sv, "hearth_generated_tokens_total"), steps0,
           test_metric(sv, "hearth_decode_steps_total"));
    check_same_prompt(zero, one, n, "ids");
    check_nothing(zero, n, "ids");
    const char *got = jstr(zero, "choices.0.text");
    CHECKF(got && !strcmp(got, echo), "max_tokens 0: text '%s', want the echo alone",
           got ? got : "(none)");

    /* the prompt is in a slot (with its last logits): the same prompt again
     * evaluates nothing */
    cJSON *again = completion(sv, flat, 0, "");
    CHECKF(jnum(again, "usage.prompt_tokens_details.cached_tokens") == n,
           "the slot's cache: %g of %d prompt tokens reused",
           jnum(again, "usage.prompt_tokens_details.cached_tokens"), n);
    /* without echo: nothing to say; with logprobs, no entries */
    check_nothing(again, n, "no echo");
    got = jstr(again, "choices.0.text");
    CHECKF(got && !*got, "max_tokens 0 without echo: text '%s'", got ? got : "(none)");
    cJSON_Delete(again);
    again = completion(sv, flat, 0, ",\"logprobs\":2");
    CHECK(cJSON_GetArraySize(jget(again, "choices.0.logprobs.tokens")) == 0);
    cJSON_Delete(again);
    cJSON_Delete(zero);
    cJSON_Delete(one);
}

/* n = 2 of two text prompts: prompt i's choice c at index 2 i + c, each
 * its prompt's echo, generating nothing; the prompts counted once each. */
static void test_batch(test_server *sv) {
    static const char *const prompts[] = {"The dog ran", "A red ball under a tree"};
    cJSON *j = completion(sv, "[\"The dog ran\",\"A red ball under a tree\"]", 0,
                          ",\"n\":2,\"echo\":true,\"logprobs\":1");
    int n_ids = 0;
    for (int i = 0; i < 2; i++) {
        int32_t ids[64];
        size_t n = 0;
        REQUIRE(hearth_tokenize(model, prompts[i], strlen(prompts[i]), true, true, ids, 64, &n) ==
                HEARTH_OK);
        n_ids += (int)n;
        for (int c = 0; c < 2; c++) {
            const cJSON *ch = cJSON_GetArrayItem(jget(j, "choices"), 2 * i + c);
            const char *t = jstr(ch, "text"), *fr = jstr(ch, "finish_reason");
            CHECKF(t && !strcmp(t, prompts[i]) && fr && !strcmp(fr, "length") &&
                       cJSON_GetArraySize(jget(ch, "logprobs.tokens")) == (int)n &&
                       jnum(ch, "index") == 2 * i + c,
                   "prompt %d choice %d: text '%s', finish %s, %d logprobs (want %d)", i, c,
                   t ? t : "(none)", fr ? fr : "(none)",
                   cJSON_GetArraySize(jget(ch, "logprobs.tokens")), (int)n);
        }
    }
    CHECKF(cJSON_GetArraySize(jget(j, "choices")) == 4 && jnum(j, "usage.completion_tokens") == 0 &&
               jnum(j, "usage.prompt_tokens") == n_ids,
           "batch: %d choices, %g completion tokens, %g prompt tokens (want 4, 0, %d)",
           cJSON_GetArraySize(jget(j, "choices")), jnum(j, "usage.completion_tokens"),
           jnum(j, "usage.prompt_tokens"), n_ids);
    cJSON_Delete(j);
}

/* llama-server's /completion with n_predict 0, not streamed and streamed. */
static void test_llama(test_server *sv, int n) {
    char body[1024];
    snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"n_predict\":0,\"n_probs\":2}", text);
    int status;
    cJSON *j = post(sv, "/completion", body, &status);
    const char *content = jstr(j, "content"), *type = jstr(j, "stop_type");
    CHECKF(status == 200 && content && !*content && type && !strcmp(type, "limit") &&
               jnum(j, "tokens_predicted") == 0 && jnum(j, "tokens_evaluated") == n,
           "/completion n_predict 0: %d, content '%s', stop_type %s, %g predicted, %g evaluated "
           "(want %d)",
           status, content ? content : "(none)", type ? type : "(none)",
           jnum(j, "tokens_predicted"), jnum(j, "tokens_evaluated"), n);
    cJSON_Delete(j);
    snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"n_predict\":0,\"stream\":true}", text);
    test_reply r = test_http(sv, "POST", "/completion", body, NULL);
    const char *p = r.body ? r.body : "";
    bool done = false, last = false;
    int rc, chunks = 0;
    while ((rc = test_sse_next(&p, &done, &j)) == 1) {
        chunks++;
        const char *c = jstr(j, "content");
        last = cJSON_IsTrue(jget(j, "stop")) && c && !*c && jnum(j, "tokens_predicted") == 0;
        cJSON_Delete(j);
    }
    CHECKF(r.status == 200 && rc == 0 && chunks == 1 && last,
           "/completion n_predict 0 streamed: %d, %d chunks, the final one %s", r.status, chunks,
           last ? "right" : "wrong");
    free(r.body);
}

/* A chat generates: max_tokens 0 is refused under either name. */
static void test_chat(test_server *sv) {
    static const char *const names[] = {"max_tokens", "max_completion_tokens"};
    for (int i = 0; i < 2; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"%s\":0}", names[i]);
        int status;
        cJSON *j = post(sv, "/v1/chat/completions", body, &status);
        const char *param = jstr(j, "error.param"), *msg = jstr(j, "error.message");
        CHECKF(status == 400 && param && !strcmp(param, names[i]) && msg &&
                   strstr(msg, "/v1/completions"),
               "chat %s 0: %d, param %s, message %s", names[i], status, param ? param : "(none)",
               msg ? msg : "(none)");
        cJSON_Delete(j);
    }
}

/* Behind the gateway, with one remote tier: pinned to the local model. */
static void test_gateway(const char *path, const char *prompt) {
    fake_cloud fc;
    REQUIRE(fake_cloud_start(&fc));
    char args[256], body[1024];
    snprintf(args, sizeof args, "--ctx 1024 -t 1 --cloud-url http://127.0.0.1:%d --cloud-model ok",
             fc.port);
    test_server gw;
    REQUIRE(test_server_start(&gw, binary, path, scratch, args));
    snprintf(body, sizeof body,
             "{\"prompt\":%s,\"max_tokens\":0,\"echo\":true,\"logprobs\":1,\"temperature\":0}",
             prompt);
    test_reply r = test_http(&gw, "POST", "/v1/completions", body, NULL);
    CHECKF(r.status == 200 && strstr(r.body, "\"finish_reason\":\"length\"") &&
               fake_cloud_requests(&fc) == 0,
           "gateway: %d, %d calls to the tier: %.200s", r.status, fake_cloud_requests(&fc), r.body);
    free(r.body);
    r = test_http(&gw, "POST", "/v1/completions", body, "-H 'x-hearth-tier: cloud'");
    cJSON *j = parse_reply(&r);
    const char *param = jstr(j, "error.param");
    CHECKF(r.status == 400 && param && !strcmp(param, "max_tokens") &&
               fake_cloud_requests(&fc) == 0,
           "x-hearth-tier: cloud: %d, param %s", r.status, param ? param : "(none)");
    cJSON_Delete(j);
    free(r.body);
    snprintf(body, sizeof body, "{\"model\":\"cloud\",\"prompt\":%s,\"max_tokens\":0}", prompt);
    r = test_http(&gw, "POST", "/v1/completions", body, NULL);
    CHECKF(r.status == 400 && strstr(r.body, "max_tokens") && fake_cloud_requests(&fc) == 0,
           "model cloud: %d %.200s", r.status, r.body);
    free(r.body);
    CHECK(test_server_stop(&gw) == 0);
    fake_cloud_stop(&fc);
}

int main(void) {
    bool skip;
    const char *path = fixture_server_model("test_server_prompt_only", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(path);
    if (!strstr(path, "conformance"))
        printf("test_server_prompt_only: no ../shared/conformance (HEARTH_SHARED_DIR); a synthetic "
               "model "
               "with random weights instead\n");
    REQUIRE(hearth_model_load(path, NULL, &model) == HEARTH_OK);
    int32_t ids[MAX_PROMPT];
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, ids, MAX_PROMPT, &n) ==
            HEARTH_OK);
    REQUIRE(n > 40); /* more than one scoring step (sched.c scores 32 tokens a step) */
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, path, scratch, "--ctx 1024 -t 1 --parallel 4"));
    test_scored(&sv, ids, (int)n);
    test_batch(&sv);
    test_llama(&sv, (int)n);
    test_chat(&sv);
    CHECK(test_server_stop(&sv) == 0);
    char flat[4096];
    ids_json(ids, (int)n, flat, sizeof flat);
    test_gateway(path, flat);
    hearth_model_free(model);
    fixture_server_cleanup("test_server_prompt_only", scratch, test_failures > 0);
    return test_done("test_server_prompt_only");
}
