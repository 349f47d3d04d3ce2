/*
 * test_server_logit_bias.c - logit_bias through `hearth serve` (curl against
 * the real program, a small model). Every answer is compared with what the
 * library generates from the same tokens under the same biases: a large
 * positive bias on a chosen token makes greedy (and sampling) repeat it; -100
 * (or false) on the greedy token changes the output; the array form
 * [[id, bias]] means the same as the object form; chat, streaming and n
 * choices carry the biases; and each malformed form is a 400 naming the
 * field (logit_bias, logit_bias.<id>, logit_bias[i]).
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_bias_XXXXXX";
static hearth_model *model;
static int32_t prompt[64], chat_prompt[256];
static int n_prompt, n_chat_prompt;
static char prompt_json[1024];
static int32_t forced; /* the token the tests force */

static int tokenize(const char *text, int32_t *ids, size_t cap) {
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, ids, cap, &n) == HEARTH_OK);
    return (int)n;
}

static void setup(void) {
    n_prompt = tokenize("Once upon a time there was", prompt, 64);
    size_t o = (size_t)snprintf(prompt_json, sizeof prompt_json, "[");
    for (int i = 0; i < n_prompt; i++)
        o += (size_t)snprintf(prompt_json + o, sizeof prompt_json - o, "%s%d", i ? "," : "",
                              (int)prompt[i]);
    snprintf(prompt_json + o, sizeof prompt_json - o, "]");
    /* the chat template the server is started with (chatml), one user message */
    n_chat_prompt = tokenize(
        "<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\n", chat_prompt, 256);
    forced = 300 % hearth_model_n_vocab(model);
    while (hearth_token_is_eog(model, forced)) forced++;
}

static bool first_id(const hearth_token_event *ev, void *user) {
    int32_t *id = user;
    if (*id < 0 && ev->id >= 0) *id = ev->id;
    return true;
}

/* The library's greedy first token from the prompt. */
static int32_t library_first(void) {
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    const hearth_sampling sp = openai_sampling(0.0f, 1);
    REQUIRE(hearth_session_new(model, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(model, &sp, &smp) == HEARTH_OK);
    int32_t id = -1;
    hearth_gen_params gp = {.max_tokens = 1};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s, smp, prompt, n_prompt, &gp, first_id, &id, &r) == HEARTH_OK);
    hearth_sampler_free(smp);
    hearth_session_free(s);
    return id;
}

/* The library's text under one bias (n_bias 0: none). */
static char *library_biased(const int32_t *ids, int n_ids, float temperature, uint64_t seed,
                            int32_t id, float bias, int n_bias, int max_tokens) {
    hearth_sampling sp = openai_sampling(temperature, seed);
    const hearth_logit_bias b = {id, bias};
    sp.logit_bias = n_bias ? &b : NULL;
    sp.n_logit_bias = (size_t)n_bias;
    return library_text(model, ids, n_ids, &sp, max_tokens, NULL);
}

static char *complete(test_server *sv, const char *extra, const char *what) {
    char b[4096];
    snprintf(b, sizeof b, "{\"prompt\":%s,%s}", prompt_json, extra);
    return post_text(sv, "/v1/completions", b, "choices.0.text", what);
}

static void same(const char *what, const char *got, const char *want) {
    CHECKF(!strcmp(got, want), "%s: server '%s', library '%s'", what, got, want);
}

static void test_force_and_ban(test_server *sv) {
    char extra[512];
    char *plain = complete(sv, "\"max_tokens\":6,\"temperature\":0", "plain");
    char *want = library_biased(prompt, n_prompt, 0, 1, 0, 0, 0, 6);
    same("plain", plain, want);
    free(want);

    /* +100: greedy repeats the forced token */
    snprintf(extra, sizeof extra, "\"max_tokens\":6,\"temperature\":0,\"logit_bias\":{\"%d\":100}",
             (int)forced);
    char *got = complete(sv, extra, "forced");
    want = library_biased(prompt, n_prompt, 0, 1, forced, 100, 1, 6);
    same("forced", got, want);
    CHECKF(strcmp(got, plain) != 0, "a bias of 100 changed nothing: '%s'", got);
    free(want);
    /* every token the forced one: its logprobs list one token six times */
    snprintf(extra, sizeof extra,
             "{\"prompt\":%s,\"max_tokens\":6,\"temperature\":0,\"logprobs\":0,\"logit_bias\":{"
             "\"%d\":100}}",
             prompt_json, (int)forced);
    int status;
    cJSON *j = post(sv, "/v1/completions", extra, &status);
    const cJSON *toks = j ? jget(j, "choices.0.logprobs.tokens") : NULL;
    CHECKF(cJSON_GetArraySize(toks) == 6, "forced: %d tokens", cJSON_GetArraySize(toks));
    for (const cJSON *t = toks ? toks->child : NULL; t; t = t->next)
        CHECKF(cJSON_IsString(t) && !strcmp(t->valuestring, toks->child->valuestring),
               "forced: token '%s' after '%s'", t->valuestring, toks->child->valuestring);
    cJSON_Delete(j);

    /* the array form and the object form agree */
    snprintf(extra, sizeof extra, "\"max_tokens\":6,\"temperature\":0,\"logit_bias\":[[%d,100]]",
             (int)forced);
    char *arr = complete(sv, extra, "array form");
    same("array form", arr, got);
    free(arr);
    free(got);

    /* sampled: the forced token too, and the library's draw */
    snprintf(extra, sizeof extra,
             "\"max_tokens\":5,\"temperature\":1,\"seed\":3,\"logit_bias\":{\"%d\":100}",
             (int)forced);
    got = complete(sv, extra, "sampled forced");
    want = library_biased(prompt, n_prompt, 1, 3, forced, 100, 1, 5);
    same("sampled forced", got, want);
    free(want);
    free(got);

    /* -100 on the greedy first token: another first token, the library's */
    const int32_t g = library_first();
    REQUIRE(g >= 0);
    snprintf(extra, sizeof extra, "\"max_tokens\":6,\"temperature\":0,\"logit_bias\":{\"%d\":-100}",
             (int)g);
    got = complete(sv, extra, "banned");
    want = library_biased(prompt, n_prompt, 0, 1, g, -100, 1, 6);
    same("banned", got, want);
    CHECKF(strcmp(got, plain) != 0, "banning the greedy token changed nothing: '%s'", got);
    /* false is llama.cpp's ban: the same */
    snprintf(extra, sizeof extra,
             "\"max_tokens\":6,\"temperature\":0,\"logit_bias\":{\"%d\":false}", (int)g);
    char *f = complete(sv, extra, "false");
    same("false = -100", f, got);
    free(f);
    free(want);
    free(got);
    free(plain);
}

/* chat, streamed and not, and n = 2: the biases reach every job */
static void test_chat_stream_n(test_server *sv) {
    char b[1024];
    snprintf(b, sizeof b,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story.\"}],\"max_tokens\":"
             "4,\"temperature\":0,\"logit_bias\":{\"%d\":100}}",
             (int)forced);
    char *got = post_text(sv, "/v1/chat/completions", b, "choices.0.message.content", "chat");
    char *want = library_biased(chat_prompt, n_chat_prompt, 0, 1, forced, 100, 1, 4);
    same("chat", got, want);
    snprintf(b, sizeof b,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story.\"}],\"max_tokens\":"
             "4,\"temperature\":0,\"stream\":true,\"n\":2,\"logit_bias\":{\"%d\":100}}",
             (int)forced);
    test_reply r = test_http(sv, "POST", "/v1/chat/completions", b, NULL);
    const sse_choices s = parse_sse_choices(r.body, true);
    CHECKF(r.status == 200 && s.done && s.max_index == 1, "chat stream n=2: %d", r.status);
    same("chat streamed choice 0", s.text[0], want);
    same("chat streamed choice 1", s.text[1], want);
    free(r.body);
    free(got);
    free(want);
}

static void test_errors(test_server *sv) {
    static const struct {
        const char *bias, *param, *needle;
    } cases[] = {
        {"5", "logit_bias", "object"},
        {"\"x\"", "logit_bias", "object"},
        {"{\"abc\":1}", "logit_bias", "token ids"},
        {"{\"-1\":1}", "logit_bias", "token ids"},
        {"{\"1.5\":1}", "logit_bias", "token ids"},
        {"{\"\":1}", "logit_bias", "token ids"},
        {"{\"12345678901\":1}", "logit_bias", "token ids"},
        {"{\"99999999\":1}", "logit_bias.99999999", "vocabulary"},
        {"{\"5\":100.5}", "logit_bias.5", "between -100 and 100"},
        {"{\"5\":-101}", "logit_bias.5", "between -100 and 100"},
        {"{\"5\":\"1\"}", "logit_bias.5", "number"},
        {"{\"5\":true}", "logit_bias.5", "number"},
        {"{\"5\":null}", "logit_bias.5", "number"},
        {"[[5]]", "logit_bias[0]", "pair"},
        {"[[5,1],7]", "logit_bias[1]", "pair"},
        {"[[-5,1]]", "logit_bias[0]", "pair"},
        {"[[5,1],[99999999,1]]", "logit_bias[1]", "vocabulary"},
        {"[[5,200]]", "logit_bias[0]", "between"},
    };
    char b[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int chat = 0; chat < 2; chat++) {
            if (chat)
                snprintf(b, sizeof b,
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":%s}",
                         cases[i].bias);
            else
                snprintf(b, sizeof b, "{\"prompt\":\"x\",\"logit_bias\":%s}", cases[i].bias);
            test_reply r =
                test_http(sv, "POST", chat ? "/v1/chat/completions" : "/v1/completions", b, NULL);
            char what[256];
            snprintf(what, sizeof what, "%s %s", chat ? "chat" : "completion", cases[i].bias);
            expect_error(what, &r, 400, cases[i].param, cases[i].needle);
            free(r.body);
        }
    }
    /* the cap: 1024 entries pass, 1025 do not */
    for (int n = 1024; n <= 1025; n++) {
        char *big = malloc(32 * 1100);
        REQUIRE(big);
        size_t o = (size_t)sprintf(big, "{\"prompt\":\"x\",\"max_tokens\":1,\"logit_bias\":{");
        for (int i = 0; i < n; i++) o += (size_t)sprintf(big + o, "%s\"%d\":-1", i ? "," : "", i);
        sprintf(big + o, "}}");
        test_reply r = test_http(sv, "POST", "/v1/completions", big, NULL);
        if (n == 1024 && hearth_model_n_vocab(model) >= 1024)
            CHECKF(r.status == 200, "1024 entries: %d %.200s", r.status, r.body);
        if (n == 1025) expect_error("1025 entries", &r, 400, "logit_bias", "at most 1024");
        free(r.body);
        free(big);
    }
    /* {} and [] are no bias */
    char *e = complete(sv, "\"max_tokens\":3,\"temperature\":0,\"logit_bias\":{}", "{}");
    char *a = complete(sv, "\"max_tokens\":3,\"temperature\":0,\"logit_bias\":[]", "[]");
    char *want = library_biased(prompt, n_prompt, 0, 1, 0, 0, 0, 3);
    same("{}", e, want);
    same("[]", a, want);
    free(want);
    free(e);
    free(a);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_logit_bias", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(model_path, &mp, &model) == HEARTH_OK);
    setup();
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 -t 1 --chat-template chatml --max-body 200000"));
    test_force_and_ban(&sv);
    test_chat_stream_n(&sv);
    test_errors(&sv);
    CHECK(test_server_stop(&sv) == 0);
    hearth_model_free(model);
    fixture_server_cleanup("test_server_logit_bias", scratch, test_failures > 0);
    return test_done("test_server_logit_bias");
}
