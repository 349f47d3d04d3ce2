/*
 * test_server_ctx_shift.c - context shift through `hearth serve` (curl
 * against the real program, slots of a 64-token context):
 *  - with --context-shift, a completion of 150 tokens (EOS banned, greedy)
 *    finishes with all 150, the library's text for the same generation
 *    with hearth_gen_params.ctx_shift (n_keep 0 after the BOS, llama-
 *    server's default), and a follow-up whose prompt is what the slot then
 *    holds reuses only the kept start (the moved text keeps traces of what
 *    was discarded) and answers as a fresh session would;
 *  - without it the same request stops at the context, finish_reason
 *    "length", after n_ctx - prompt + 1 tokens;
 *  - llama-server's /completion takes n_keep (-1: the whole prompt kept);
 *  - n = 2 seeded choices each shift on their own and equal the library's;
 *  - ollama's /api/generate shifts by default (as ollama does), stops at the
 *    context with "shift": false, takes options.num_keep, and refuses a
 *    shift that is not a boolean.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/server.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

enum { CTX = 64, LONG = 150 };

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_shift_XXXXXX";
static hearth_model *model;
static int32_t prompt[64];
static int n_prompt;
static char prompt_json[1024];
static char eos_ban[64]; /* "logit_bias":{"<eos>":-100} */

/* The library's generation as a slot of the server makes it (F16 cache of
 * CTX positions): its text (malloc'd), tokens generated, and the tokens
 * the session holds at the end (into held, *n_held). */
static char *library_with(const int32_t *ids, int n_ids, const hearth_sampling *sp, int max,
                          bool shift, int n_keep, int n_discard, int *n_gen, int32_t *held,
                          int *n_held) {
    hearth_session_params spp = hearth_session_default_params();
    spp.n_ctx = CTX;
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_session_new(model, &spp, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(model, sp, &smp) == HEARTH_OK);
    ref_text *t = calloc(1, sizeof *t);
    REQUIRE(t);
    hearth_gen_params gp = {
        .max_tokens = max, .ctx_shift = shift, .n_keep = n_keep, .n_discard = n_discard};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s, smp, ids, n_ids, &gp, ref_sink, t, &r) == HEARTH_OK);
    if (n_gen) *n_gen = r.n_gen;
    if (held) {
        *n_held = hearth_session_pos(s);
        memcpy(held, hearth_session_tokens(s, NULL), (size_t)*n_held * sizeof *held);
    }
    hearth_sampler_free(smp);
    hearth_session_free(s);
    char *text = strdup(t->buf);
    free(t);
    return text;
}

/* The same with an OpenAI request's sampling and EOS banned. */
static char *library(const int32_t *ids, int n_ids, float temperature, uint64_t seed, int max,
                     bool shift, int n_keep, int *n_gen, int32_t *held, int *n_held) {
    hearth_sampling sp = openai_sampling(temperature, seed);
    hearth_logit_bias ban = {.id = hearth_token_eos(model), .bias = -100};
    sp.logit_bias = &ban;
    sp.n_logit_bias = 1;
    return library_with(ids, n_ids, &sp, max, shift, n_keep, 0, n_gen, held, n_held);
}

static cJSON *request(test_server *sv, const char *path, const char *body) {
    int status;
    cJSON *j = post(sv, path, body, &status);
    CHECKF(status == 200 && j, "%s %s: %d", path, body, status);
    return j;
}

/* --context-shift: the long completion, then a follow-up on what the slot
 * holds. */
static void test_shift_on(test_server *sv) {
    char body[4096];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":0,%s}",
             prompt_json, LONG, eos_ban);
    cJSON *j = request(sv, "/v1/completions", body);
    int n_gen = 0, n_held = 0;
    int32_t held[CTX + 8];
    char *want = library(prompt, n_prompt, 0, 1, LONG, true, 1, &n_gen, held, &n_held);
    CHECKF(n_gen == LONG, "the library generated %d", n_gen);
    if (j) {
        CHECKF(jstr(j, "choices.0.finish_reason") &&
                   !strcmp(jstr(j, "choices.0.finish_reason"), "length"),
               "finish %s", jstr(j, "choices.0.finish_reason"));
        CHECKF(jnum(j, "usage.completion_tokens") == LONG, "%g tokens, not %d",
               jnum(j, "usage.completion_tokens"), LONG);
        CHECKF(jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want),
               "shifted text differs from the library's:\n%s\n%s", jstr(j, "choices.0.text"), want);
    }
    cJSON_Delete(j);
    free(want);
    /* The slot holds held[0..n_held): a prompt that starts with it reuses
     * only the BOS that was kept, and answers as a fresh session would. */
    int32_t next[CTX + 8];
    memcpy(next, held, (size_t)n_held * sizeof *held);
    next[n_held] = prompt[1];
    char ids[2048];
    ids_json(next, n_held + 1, ids, sizeof ids);
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":8,\"temperature\":0,%s}", ids,
             eos_ban);
    j = request(sv, "/v1/completions", body);
    want = library(next, n_held + 1, 0, 1, 8, true, 1, NULL, NULL, NULL);
    if (j) {
        CHECKF(jnum(j, "usage.prompt_tokens_details.cached_tokens") == 1,
               "cached %g of the %d the slot holds (1 kept)",
               jnum(j, "usage.prompt_tokens_details.cached_tokens"), n_held);
        CHECKF(jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want),
               "follow-up: '%s', fresh '%s'", jstr(j, "choices.0.text"), want);
    }
    cJSON_Delete(j);
    free(want);
    /* llama-server's /completion with n_keep -1: the whole prompt kept */
    snprintf(body, sizeof body,
             "{\"prompt\":%s,\"n_predict\":100,\"temperature\":0,\"n_keep\":-1,\"logit_bias\":[[%d,"
             "false]],\"repeat_penalty\":1,\"top_k\":0,\"top_p\":1,\"min_p\":0}",
             prompt_json, (int)hearth_token_eos(model));
    j = request(sv, "/completion", body);
    want = library(prompt, n_prompt, 0, 1, 100, true, -1, NULL, NULL, NULL);
    if (j) {
        CHECKF(jnum(j, "tokens_predicted") == 100, "/completion: %g tokens",
               jnum(j, "tokens_predicted"));
        CHECKF(jstr(j, "content") && !strcmp(jstr(j, "content"), want),
               "/completion n_keep -1: '%s'\nnot '%s'", jstr(j, "content"), want);
    }
    cJSON_Delete(j);
    free(want);
    /* and n_discard: each shift forgets 5 tokens after the BOS */
    snprintf(body, sizeof body,
             "{\"prompt\":%s,\"n_predict\":100,\"temperature\":0,\"n_discard\":5,"
             "\"logit_bias\":[[%d,false]],\"repeat_penalty\":1,\"top_k\":0,\"top_p\":1,"
             "\"min_p\":0}",
             prompt_json, (int)hearth_token_eos(model));
    j = request(sv, "/completion", body);
    hearth_sampling sp = openai_sampling(0, 1);
    hearth_logit_bias ban = {.id = hearth_token_eos(model), .bias = -INFINITY};
    sp.logit_bias = &ban;
    sp.n_logit_bias = 1;
    want = library_with(prompt, n_prompt, &sp, 100, true, 1, 5, NULL, NULL, NULL);
    char *half = library(prompt, n_prompt, 0, 1, 100, true, 1, NULL, NULL, NULL);
    if (j) {
        CHECKF(jstr(j, "content") && !strcmp(jstr(j, "content"), want),
               "/completion n_discard 5: '%s'\nnot '%s'", jstr(j, "content"), want);
        CHECKF(strcmp(want, half), "n_discard 5 and the default half give the same text");
    }
    cJSON_Delete(j);
    free(want);
    free(half);
    /* n = 2 seeded choices shift on their own */
    snprintf(body, sizeof body,
             "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":1,\"seed\":42,\"n\":2,%s}",
             prompt_json, LONG, eos_ban);
    j = request(sv, "/v1/completions", body);
    for (int i = 0; j && i < 2; i++) {
        want = library(prompt, n_prompt, 1, 42 + (uint64_t)i, LONG, true, 1, NULL, NULL, NULL);
        char path[64];
        snprintf(path, sizeof path, "choices.%d.text", i);
        CHECKF(jstr(j, path) && !strcmp(jstr(j, path), want), "choice %d differs", i);
        free(want);
    }
    cJSON_Delete(j);
}

/* Without --context-shift: "length" at the context. */
static void test_shift_off(test_server *sv) {
    char body[4096];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":0,%s}",
             prompt_json, LONG, eos_ban);
    cJSON *j = request(sv, "/v1/completions", body);
    int n_gen = 0;
    char *want = library(prompt, n_prompt, 0, 1, LONG, false, 0, &n_gen, NULL, NULL);
    CHECK(n_gen == CTX - n_prompt + 1);
    if (j) {
        CHECKF(jstr(j, "choices.0.finish_reason") &&
                   !strcmp(jstr(j, "choices.0.finish_reason"), "length"),
               "finish %s", jstr(j, "choices.0.finish_reason"));
        CHECKF(jnum(j, "usage.completion_tokens") == CTX - n_prompt + 1,
               "%g tokens at a context of %d after %d", jnum(j, "usage.completion_tokens"), CTX,
               n_prompt);
        CHECK(jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want));
    }
    cJSON_Delete(j);
    free(want);
}

/* ollama's /api/generate (raw, greedy) on the server without the flag. */
static void test_ollama(test_server *sv) {
    static const char text[] = "Once upon a time there was";
    int32_t ids[64];
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, ids, 64, &n) == HEARTH_OK);
    static const struct {
        const char *extra;
        bool shift;
        int keep;
    } cases[] = {{"", true, 4}, {"\"shift\":false,", false, 4}, {"\"shift\":true,", true, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int with_keep = 0; with_keep < 2 && cases[c].shift; with_keep++) {
            char body[1024];
            snprintf(body, sizeof body,
                     "{\"model\":\"m\",\"prompt\":\"%s\",\"raw\":true,\"stream\":false,%s"
                     "\"options\":{\"temperature\":0,\"repeat_penalty\":1,\"num_predict\":%d%s}}",
                     text, cases[c].extra, LONG, with_keep ? ",\"num_keep\":-1" : "");
            cJSON *j = request(sv, "/api/generate", body);
            /* ollama's options: greedy, nothing else; EOS allowed */
            hearth_sampling sp = hearth_sampling_default_params();
            sp.temperature = 0;
            int n_gen = 0;
            char *want = library_with(ids, (int)n, &sp, LONG, cases[c].shift,
                                      with_keep ? -1 : cases[c].keep, 0, &n_gen, NULL, NULL);
            if (j) {
                CHECKF(jnum(j, "eval_count") == n_gen, "ollama %s keep %d: %g tokens, library %d",
                       cases[c].extra, with_keep, jnum(j, "eval_count"), n_gen);
                CHECKF(jstr(j, "response") && !strcmp(jstr(j, "response"), want),
                       "ollama %s keep %d: text differs", cases[c].extra, with_keep);
            }
            if (cases[c].shift && n_gen < CTX)
                printf("ollama: the greedy text ends before the context (%d tokens)\n", n_gen);
            if (!cases[c].shift) CHECK(n_gen <= CTX - (int)n + 1);
            cJSON_Delete(j);
            free(want);
        }
    }
    int status;
    cJSON *j =
        post(sv, "/api/generate",
             "{\"model\":\"m\",\"prompt\":\"hi\",\"shift\":\"yes\",\"stream\":false}", &status);
    CHECKF(status == 400 && jstr(j, "error") && strstr(jstr(j, "error"), "shift"), "bad shift: %d",
           status);
    cJSON_Delete(j);
}

int main(void) {
    bool skip;
    const char *path = fixture_server_model("test_server_ctx_shift", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(path);
    REQUIRE(hearth_model_load(path, NULL, &model) == HEARTH_OK);
    size_t n = 0;
    const char *text = "Once upon a time there was a";
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, prompt, 64, &n) == HEARTH_OK);
    n_prompt = (int)n;
    REQUIRE(prompt[0] == hearth_token_bos(model)); /* the default n_keep 0 keeps the BOS */
    ids_json(prompt, n_prompt, prompt_json, sizeof prompt_json);
    snprintf(eos_ban, sizeof eos_ban, "\"logit_bias\":{\"%d\":-100}", (int)hearth_token_eos(model));
    char args[256];
    test_server on, off;
    snprintf(args, sizeof args, "--ctx %d --parallel 2 --context-shift", CTX);
    REQUIRE(test_server_start(&on, binary, path, scratch, args));
    test_shift_on(&on);
    test_server_stop(&on);
    snprintf(args, sizeof args, "--ctx %d", CTX);
    REQUIRE(test_server_start(&off, binary, path, scratch, args));
    test_shift_off(&off);
    test_ollama(&off);
    test_server_stop(&off);
    hearth_model_free(model);
    fixture_server_cleanup("test_server_ctx_shift", scratch, test_failures > 0);
    return test_done("test_server_ctx_shift");
}
