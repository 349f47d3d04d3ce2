/*
 * test_generate.c - text in, text out through the public API: the greedy
 * continuation of "Once upon a time" by stories260K equals llama.cpp's (when
 * ../shared is present), and on a model the test writes itself: a seed
 * reproduces a run, max_tokens, stop strings, the callback's stop and the
 * reuse of a cached prompt prefix.
 */
#include "hearth.h"
#include "golden.h"
#include "gen_collect.h"
#include "model/synth.h"
#include "test.h"

#include <unistd.h>

static hearth_err run(hearth_session *s, hearth_sampler *smp, const int32_t *ids, int n,
                      int max_tokens, const char *stop, collected *c, hearth_gen_result *r) {
    hearth_gen_params gp = {.max_tokens = max_tokens,
                            .stop = stop ? &stop : NULL,
                            .n_stop = stop ? 1 : 0,
                            .n_top_logprobs = 3};
    return hearth_generate(s, smp, ids, n, &gp, collect, c, r);
}

static void story(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/conformance/stories260K/golden/F32.story.json",
             HEARTH_SHARED_DIR);
    char *json = golden_read(path, NULL);
    if (!json) {
        printf("SKIP (story): %s is absent\n", path);
        return;
    }
    double want_prompt[16], want_gen[128], margins[128];
    const int np = golden_array(json, "prompt_ids", want_prompt, 16);
    const int ng = golden_array(json, "gen_ids", want_gen, 128);
    REQUIRE(golden_array(json, "gen_top1_margin", margins, 128) == ng && np > 0 && ng > 0);
    snprintf(path, sizeof path, "%s/conformance/stories260K/stories260K.F32.gguf",
             HEARTH_SHARED_DIR);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    int32_t ids[16];
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, "Once upon a time", 16, true, false, ids, 16, &n) == HEARTH_OK);
    CHECK((int)n == np);
    for (int i = 0; i < np && i < (int)n; i++) CHECK(ids[i] == (int32_t)want_prompt[i]);
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = 0;
    /* llama.cpp told its story with an F32 cache; this model's top-2 margins
     * are small enough for an F16 cache's rounding to change a token */
    hearth_session_params kp = hearth_session_default_params();
    kp.kv_type = HEARTH_KV_F32;
    REQUIRE(hearth_session_new(m, &kp, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(m, &sp, &smp) == HEARTH_OK);
    collected c = {0};
    hearth_gen_result r;
    REQUIRE(run(s, smp, ids, (int)n, ng, NULL, &c, &r) == HEARTH_OK);
    int agree = 0;
    while (agree < ng && agree < c.n && c.ids[agree] == (int32_t)want_gen[agree]) agree++;
    int decisive = 0;
    while (decisive < ng && margins[decisive] >= 4e-4) decisive++;
    printf("story: %d of %d greedy tokens agree with llama.cpp (%d decisive)\n", agree, ng,
           decisive);
    CHECK(agree >= decisive);
    CHECK(r.n_gen == ng && r.finish == HEARTH_FINISH_LENGTH);
    free(json);
    hearth_sampler_free(smp);
    hearth_session_free(s);
    hearth_model_free(m);
}

static void synthetic(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-gen-%d.gguf", (int)getpid());
    synth_params p = synth_default_params();
    p.type = KERN_Q8_0;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    unlink(path);
    int32_t ids[64];
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, "Once upon a time there was a little girl", 41, true, false, ids, 64,
                            &n) == HEARTH_OK);
    REQUIRE(n > 3 && ids[0] == hearth_token_bos(m));

    hearth_sampling sp = hearth_sampling_default_params();
    sp.seed = 1234;
    sp.temperature = 1.5f; /* spread the random model's choices */
    hearth_session *s = NULL;
    hearth_sampler *a = NULL, *b = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(m, &sp, &a) == HEARTH_OK);
    sp.seed = 99;
    REQUIRE(hearth_sampler_new(m, &sp, &b) == HEARTH_OK);
    collected c1 = {0}, c2 = {0}, c3 = {0};
    hearth_gen_result r1, r2, r3;
    REQUIRE(run(s, a, ids, (int)n, 40, NULL, &c1, &r1) == HEARTH_OK);
    CHECK(r1.n_cached == 0 && r1.n_prompt == (int)n);
    CHECK(r1.finish == HEARTH_FINISH_LENGTH || r1.finish == HEARTH_FINISH_STOP);
    hearth_sampler_reset(a);
    REQUIRE(run(s, a, ids, (int)n, 40, NULL, &c2, &r2) == HEARTH_OK);
    /* The same prompt again: all but its last token come from the cache. */
    CHECK(r2.n_cached == (int)n - 1 && r2.n_prompt == 1);
    CHECK(c1.n == c2.n && memcmp(c1.ids, c2.ids, sizeof(int32_t) * (size_t)c1.n) == 0);
    CHECK(strcmp(c1.text, c2.text) == 0);
    REQUIRE(run(s, b, ids, (int)n, 40, NULL, &c3, &r3) == HEARTH_OK);
    CHECK(c3.n != c1.n || memcmp(c1.ids, c3.ids, sizeof(int32_t) * (size_t)c1.n) != 0);

    /* A stop string taken from the first run's text ends the output before it. */
    if (c1.len > 6) {
        char stop[8];
        memcpy(stop, c1.text + c1.len / 2, 3);
        stop[3] = '\0';
        const char *first = strstr(c1.text, stop);
        collected c4 = {0};
        hearth_gen_result r4;
        hearth_sampler_reset(a);
        REQUIRE(run(s, a, ids, (int)n, 40, stop, &c4, &r4) == HEARTH_OK);
        CHECK(r4.finish == HEARTH_FINISH_STOP && r4.stop_index == 0);
        CHECK(strstr(c4.text, stop) == NULL);
        CHECK(first && c4.len == (size_t)(first - c1.text) &&
              memcmp(c4.text, c1.text, c4.len) == 0);
    }
    collected c5 = {.stop_after = 3};
    hearth_gen_result r5;
    REQUIRE(run(s, b, ids, (int)n, 40, NULL, &c5, &r5) == HEARTH_OK);
    CHECK(r5.finish == HEARTH_FINISH_CALLBACK && r5.n_gen == 3 && r5.stop_index == -1);
    CHECK(r2.stop_index == -1 && r3.stop_index == -1); /* no stop string given */
    /* Output is always valid UTF-8 (the detokenizer stream guarantees it). */
    CHECK(hearth_generate(s, a, ids, 0, NULL, NULL, NULL, NULL) == HEARTH_ERR_INVALID_ARG);
    hearth_sampler_free(a);
    hearth_sampler_free(b);
    hearth_session_free(s);
    hearth_model_free(m);
}

int main(void) {
    synthetic();
    story();
    return test_done("generate");
}
