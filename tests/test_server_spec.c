/*
 * test_server_spec.c - speculative decoding through `hearth serve` (curl
 * against the real program, a small model): with a draft model
 * (-md, the model itself, so that proposals are accepted) and with prompt
 * lookup (--spec-type ngram), greedy and seeded completions are the
 * library's plain-loop text, also for two choices generated at once in two
 * slots (each slot drafts with its own session); the start-up log says
 * what is on; per-request speculative.n_max / n_min / p_min (llama.cpp's)
 * turn it off or change the speed, never the text; a draft whose vocabulary
 * is not the model's stops the server at load with a message naming the
 * draft.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"
#include "test_sh.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_spec_XXXXXX";
static hearth_model *model;
static const char *model_path;
static int32_t prompt[64];
static int n_prompt;
static char prompt_json[1024];

static void make_prompt(void) {
    size_t n = 0;
    const char *text = "one two three one two three one two three";
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, prompt, 64, &n) == HEARTH_OK);
    n_prompt = (int)n;
    ids_json(prompt, n_prompt, prompt_json, sizeof prompt_json);
}

/* Choice i of a completion with `extra` members against the library's
 * plain loop at temperature t and seed + i. */
static void check_completion(test_server *sv, const char *what, const char *extra, float t,
                             uint64_t seed, int n_choices) {
    char body[4096];
    snprintf(body, sizeof body, "{\"prompt\":%s,\"max_tokens\":40,%s}", prompt_json, extra);
    int status;
    cJSON *j = post(sv, "/v1/completions", body, &status);
    CHECKF(status == 200 && j, "%s: status %d", what, status);
    for (int i = 0; j && i < n_choices; i++) {
        const hearth_sampling sp = openai_sampling(t, seed + (uint64_t)i);
        char *want = library_text(model, prompt, n_prompt, &sp, 40, NULL);
        const cJSON *c = cJSON_GetArrayItem(jget(j, "choices"), i);
        const char *got = c ? jstr(c, "text") : NULL;
        CHECKF(got && !strcmp(got, want), "%s: choice %d: '%s', the library: '%s'", what, i,
               got ? got : "(none)", want);
        free(want);
    }
    cJSON_Delete(j);
}

static void exercise(const char *args, const char *log_needle) {
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    char *log = test_read_file(sv.log, NULL);
    CHECKF(log && (!log_needle || strstr(log, log_needle)), "%s: the log lacks '%s'", args,
           log_needle);
    free(log);
    check_completion(&sv, args, "\"temperature\":0", 0, 0, 1);
    check_completion(&sv, args, "\"temperature\":1,\"seed\":42", 1, 42, 1);
    check_completion(&sv, args, "\"temperature\":0.7,\"seed\":7,\"n\":2", 0.7f, 7, 2);
    const long drafted = test_metric(&sv, "hearth_spec_drafted_tokens_total"),
               accepted = test_metric(&sv, "hearth_spec_accepted_tokens_total");
    printf("%s: %ld proposed, %ld accepted\n", args, drafted, accepted);
    CHECKF(drafted > 0 && accepted > 0 && accepted <= drafted, "%s: %ld proposed, %ld accepted",
           args, drafted, accepted);
    /* per request (llama.cpp's speculative.*): n_max 0 proposes nothing, a
     * larger one and a p_min change only the speed */
    check_completion(&sv, args, "\"temperature\":0,\"speculative.n_max\":0", 0, 0, 1);
    CHECKF(test_metric(&sv, "hearth_spec_drafted_tokens_total") == drafted,
           "%s: speculative.n_max 0 still proposed", args);
    check_completion(&sv, args,
                     "\"temperature\":0.8,\"seed\":3,\"speculative.n_max\":12,"
                     "\"speculative.n_min\":2,\"speculative.p_min\":0.1",
                     0.8f, 3, 1);
    CHECKF(test_metric(&sv, "hearth_spec_drafted_tokens_total") > drafted,
           "%s: speculative.n_max 12 proposed nothing", args);
    CHECK(test_server_stop(&sv) == 0);
}

/* A draft of another vocabulary: the server does not start, and says why. */
static void mismatch(void) {
    char other[8192];
    snprintf(other, sizeof other, "%s/draft.gguf", scratch);
    synth_params p = synth_default_params();
    p.n_ctx = 256;
    REQUIRE(synth_write(other, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(other, NULL, &m) == HEARTH_OK);
    const bool differs = hearth_draft_check(model, m) != HEARTH_OK;
    hearth_model_free(m);
    if (!differs) {
        printf("SKIP (mismatch): the test model has synth's vocabulary\n");
        return;
    }
    char log_path[8300];
    snprintf(log_path, sizeof log_path, "%s/mismatch.log", scratch);
    const int rc = test_sh("timeout 60 '%s' serve -m '%s' --port 0 -t 1 -md '%s' 2>'%s'", binary,
                           model_path, other, log_path);
    CHECKF(rc == 1, "exit status %d", rc);
    char *log = test_read_file(log_path, NULL);
    CHECKF(log && strstr(log, "--model-draft") && strstr(log, "draft model"), "the log: %s",
           log ? log : "(none)");
    free(log);
}

int main(void) {
    bool skip;
    model_path = fixture_server_model("test_server_spec", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(model_path, &mp, &model) == HEARTH_OK);
    make_prompt();
    char args[8300];
    snprintf(args, sizeof args,
             "--parallel 2 -t 1 -md '%s' --spec-draft-n-max 4 --spec-draft-p-min 0", model_path);
    exercise(args, "speculative decoding: draft");
    exercise("--parallel 2 -t 1 --spec-type ngram --spec-ngram-size-n 1", "prompt lookup");
    mismatch();
    hearth_model_free(model);
    fixture_server_cleanup("test_server_spec", scratch, test_failures > 0);
    return test_done("test_server_spec");
}
