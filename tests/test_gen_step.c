/*
 * test_gen_step.c - step-wise generation (hearth_gen) on a model the test
 * writes itself: several generations advanced together, one token each per
 * hearth_gen_step, joining at different steps, with chunked prefills (their
 * own calls, or in the step's batch at STEP_PROMPT tokens per step), stop
 * strings, max_tokens, sampling seeds and a callback that stops, produce the
 * same tokens, text and finish reasons as hearth_generate gives each alone;
 * a conversation's next turn reuses its session's prefix; misuse fails.
 */
#include "hearth.h"
#include "gen_collect.h"
#include "model/synth.h"
#include "test.h"

#include <unistd.h>

enum { N_GEN = 4, STEP_PROMPT = 5 };

typedef struct job {
    const char *prompt;
    float temperature;
    int max_tokens;
    const char *stop;
    int stop_after;
    int join_step; /* the step at which it starts */
    int chunk;     /* hearth_gen_prefill chunk (0: all at once; -1: by hearth_gen_step) */
} job;

static job jobs[N_GEN] = {
    {"Once upon a time there was a little girl", 0.0f, 30, NULL, 0, 0, 0},
    {"The cat sat on the mat and", 1.5f, 40, NULL, 0, 0, 3},
    {"One day a dog", 1.5f, 25, NULL, 7, 2, -1},
    {"She said hello to the big tree", 0.0f, 35, NULL, 0, 5, -1}, /* stop: pick_stop */
};

static hearth_sampler *sampler(hearth_model *m, const job *jb) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = jb->temperature;
    sp.seed = 77;
    hearth_sampler *s = NULL;
    REQUIRE(hearth_sampler_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

static int tokenize(hearth_model *m, const char *text, int32_t *ids) {
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, text, strlen(text), true, false, ids, 128, &n) == HEARTH_OK);
    return (int)n;
}

static hearth_gen_params params(const job *jb, const char **stop) {
    *stop = jb->stop;
    return (hearth_gen_params){.max_tokens = jb->max_tokens,
                               .stop = jb->stop ? stop : NULL,
                               .n_stop = jb->stop ? 1 : 0,
                               .n_top_logprobs = 2};
}

/* Two ASCII bytes from the second half of job 3's free run become its stop
 * string, so that it stops in the middle of a generation. */
static void pick_stop(hearth_model *m, char stop[3]) {
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    hearth_sampler *smp = sampler(m, &jobs[3]);
    int32_t ids[128];
    const int n = tokenize(m, jobs[3].prompt, ids);
    hearth_gen_params gp = {.max_tokens = jobs[3].max_tokens};
    collected c = {0};
    REQUIRE(hearth_generate(s, smp, ids, n, &gp, collect, &c, NULL) == HEARTH_OK);
    for (size_t i = c.len / 2; i + 1 < c.len; i++)
        if (c.text[i] > ' ' && c.text[i] < 127 && c.text[i + 1] > ' ' && c.text[i + 1] < 127) {
            memcpy(stop, c.text + i, 2);
            stop[2] = '\0';
            jobs[3].stop = stop;
            break;
        }
    CHECKF(jobs[3].stop != NULL, "no stop string in '%s'", c.text);
    hearth_sampler_free(smp);
    hearth_session_free(s);
}

static void together_vs_alone(hearth_model *m) {
    char stop3[3];
    pick_stop(m, stop3);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 128;
    sp.n_seq_max = N_GEN;
    collected alone[N_GEN] = {0}, step[N_GEN] = {0};
    hearth_gen_result ra[N_GEN], rs[N_GEN];
    for (int i = 0; i < N_GEN; i++) {
        hearth_session *s = NULL;
        REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
        hearth_sampler *smp = sampler(m, &jobs[i]);
        int32_t ids[128];
        const int n = tokenize(m, jobs[i].prompt, ids);
        const char *stop;
        hearth_gen_params gp = params(&jobs[i], &stop);
        alone[i].stop_after = jobs[i].stop_after;
        REQUIRE(hearth_generate(s, smp, ids, n, &gp, collect, &alone[i], &ra[i]) == HEARTH_OK);
        hearth_sampler_free(smp);
        hearth_session_free(s);
    }

    hearth_session *sess[N_GEN];
    hearth_sampler *smps[N_GEN];
    hearth_gen *gens[N_GEN] = {0};
    for (int i = 0; i < N_GEN; i++) {
        REQUIRE(hearth_session_new(m, &sp, &sess[i]) == HEARTH_OK);
        smps[i] = sampler(m, &jobs[i]);
        step[i].stop_after = jobs[i].stop_after;
    }
    int n_done = 0, max_batch = 0;
    for (int t = 0; n_done < N_GEN && t < 1000; t++) {
        hearth_gen *active[N_GEN];
        int n_active = 0;
        for (int i = 0; i < N_GEN; i++) {
            if (t == jobs[i].join_step) {
                int32_t ids[128];
                const int n = tokenize(m, jobs[i].prompt, ids);
                const char *stop;
                hearth_gen_params gp = params(&jobs[i], &stop);
                REQUIRE(hearth_gen_new(sess[i], smps[i], ids, n, &gp, collect, &step[i],
                                       &gens[i]) == HEARTH_OK);
                int32_t tok;
                CHECK(hearth_gen_next_token(gens[i], &tok) == HEARTH_ERR_INVALID_ARG);
            }
            if (!gens[i] || hearth_gen_done(gens[i])) continue;
            bool done = hearth_gen_prompt_left(gens[i]) == 0;
            if (jobs[i].chunk >= 0)
                REQUIRE(hearth_gen_prefill(gens[i], jobs[i].chunk, &done) == HEARTH_OK);
            if (!done) { /* more prompt next step */
                active[n_active++] = gens[i];
                continue;
            }
            int32_t tok;
            REQUIRE(hearth_gen_next_token(gens[i], &tok) == HEARTH_OK);
            if (tok < 0) {
                hearth_gen_get_result(gens[i], &rs[i]);
                n_done++;
                continue;
            }
            CHECK(hearth_gen_next_token(gens[i], &tok) == HEARTH_ERR_INVALID_ARG);
            active[n_active++] = gens[i];
        }
        if (n_active > max_batch) max_batch = n_active;
        REQUIRE(hearth_gen_step(active, n_active, STEP_PROMPT) == HEARTH_OK);
    }
    CHECK(n_done == N_GEN);
    CHECKF(max_batch >= 3, "at most %d generations stepped together", max_batch);
    for (int i = 0; i < N_GEN; i++) {
        CHECKF(alone[i].n == step[i].n &&
                   !memcmp(alone[i].ids, step[i].ids, sizeof(int32_t) * (size_t)alone[i].n),
               "generation %d: %d tokens alone, %d stepped", i, alone[i].n, step[i].n);
        CHECKF(!strcmp(alone[i].text, step[i].text), "generation %d: '%s' alone, '%s' stepped", i,
               alone[i].text, step[i].text);
        CHECK(ra[i].finish == rs[i].finish && ra[i].n_gen == rs[i].n_gen);
        CHECK(ra[i].n_prompt == rs[i].n_prompt && rs[i].n_cached == 0);
        hearth_gen_free(gens[i]);
    }
    CHECK(rs[2].finish == HEARTH_FINISH_CALLBACK && rs[2].n_gen == 7);
    CHECK(rs[0].finish == HEARTH_FINISH_LENGTH || rs[0].finish == HEARTH_FINISH_STOP);
    CHECKF(rs[3].finish == HEARTH_FINISH_STOP && rs[3].n_gen < jobs[3].max_tokens &&
               !strstr(step[3].text, jobs[3].stop),
           "stop string '%s': finish %d after %d tokens", jobs[3].stop, (int)rs[3].finish,
           rs[3].n_gen);

    /* The next turn of conversation 0 reuses its prefix. */
    char next[8192 + 128];
    snprintf(next, sizeof next, "%s%s and then", jobs[0].prompt, step[0].text);
    int32_t ids[128];
    const int n = tokenize(m, next, ids);
    hearth_gen *g = NULL;
    hearth_gen_params gp = {.max_tokens = 3};
    REQUIRE(hearth_gen_new(sess[0], smps[0], ids, n, &gp, NULL, NULL, &g) == HEARTH_OK);
    hearth_gen_result r;
    hearth_gen_get_result(g, &r);
    CHECKF(r.n_cached > 5 && r.n_cached + r.n_prompt == n, "next turn: %d cached of %d", r.n_cached,
           n);
    /* Two generations on one session cannot step together. */
    hearth_gen *g2 = NULL;
    REQUIRE(hearth_gen_prefill(g, 0, NULL) == HEARTH_OK);
    int32_t tok;
    REQUIRE(hearth_gen_next_token(g, &tok) == HEARTH_OK && tok >= 0);
    REQUIRE(hearth_gen_new(sess[1], smps[1], ids, n, &gp, NULL, NULL, &g2) == HEARTH_OK);
    REQUIRE(hearth_gen_prefill(g2, 0, NULL) == HEARTH_OK);
    REQUIRE(hearth_gen_next_token(g2, &tok) == HEARTH_OK && tok >= 0);
    hearth_gen *same[2] = {g, g};
    CHECK(hearth_gen_step(same, 2, 0) == HEARTH_ERR_INVALID_ARG);
    hearth_gen *both[2] = {g, g2};
    CHECK(hearth_gen_step(both, 2, 0) == HEARTH_OK);
    hearth_gen_free(g);
    hearth_gen_free(g2);
    for (int i = 0; i < N_GEN; i++) {
        hearth_sampler_free(smps[i]);
        hearth_session_free(sess[i]);
    }
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-genstep-%d.gguf", (int)getpid());
    synth_params p = synth_default_params();
    p.type = KERN_Q8_0;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    unlink(path);
    together_vs_alone(m);
    hearth_model_free(m);
    return test_done("gen_step");
}
