/*
 * hybrid_test.h - what test_lfm2 and test_ssm share: a session of a small
 * context, a fixed token sequence fed in batches, and the check that a
 * generation reusing part of a session's text draws what a fresh session
 * draws (the layers without attention keep state that a reuse must cut back
 * or rebuild: LFM2's convolution inputs, Mamba-2's recurrent state).
 */
#ifndef HEARTH_HYBRID_TEST_H
#define HEARTH_HYBRID_TEST_H

#include "hearth.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/synth.h"
#include "test.h"

#include <unistd.h>

enum { N_CTX = 64, N_FIRST = 12, N_KEEP_T = 7, N_MORE = 9 };

static int32_t tok(int i) { return (int32_t)(3 + (i * 37) % 250); }

static hearth_session *session(hearth_model *m) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = N_CTX;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

/* Tokens from..from+n-1 of the sequence tok() into s as one batch; their
 * last logits into out. */
static void feed(hearth_session *s, int from, int n, float *out) {
    int32_t ids[N_CTX];
    for (int i = 0; i < n; i++) ids[i] = tok(from + i);
    REQUIRE(hearth_decode(s, ids, n, out, false) == HEARTH_OK);
}

static bool collect(const hearth_token_event *ev, void *user) {
    int32_t *ids = user;
    if (ev->id >= 0 && ids[0] < 16) ids[++ids[0]] = ev->id;
    return true;
}

/* 16 tokens drawn greedily after prompt on s; ids[0] counts them. */
static hearth_gen_result generate(hearth_model *m, hearth_session *s, const int32_t *prompt,
                                  int32_t *ids) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = 0.0f;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_sampler_new(m, &sp, &smp) == HEARTH_OK);
    const hearth_gen_params gp = {.max_tokens = 16};
    hearth_gen_result r = {0};
    REQUIRE(hearth_generate(s, smp, prompt, N_FIRST, &gp, collect, ids, &r) == HEARTH_OK);
    hearth_sampler_free(smp);
    return r;
}

/* A generation on a session that holds a longer, diverging text reuses only
 * the common prefix and draws what a fresh session draws. */
static void reuse(hearth_model *m, const char *what) {
    int32_t prompt[N_FIRST], got[17] = {0}, want[17] = {0};
    for (int i = 0; i < N_FIRST; i++) prompt[i] = tok(i);
    hearth_session *s = session(m), *t = session(m);
    feed(s, 0, N_KEEP_T, NULL);
    feed(s, 100, 6, NULL); /* diverges after N_KEEP_T */
    const hearth_gen_result r = generate(m, s, prompt, got);
    generate(m, t, prompt, want);
    CHECKF(r.n_cached == N_KEEP_T, "%s: %d tokens reused", what, r.n_cached);
    CHECKF(got[0] == 16 && !memcmp(got, want, sizeof got), "%s: generation after reuse", what);
    hearth_session_free(s);
    hearth_session_free(t);
}

/* check(m, what) on a synthetic 5-layer `arch` model with n_recurrent layers
 * recurrent (lfm2, granitehybrid: 0, 1 and 3; qwen35: all but 3; falcon-h1: all, beside attention),
 * with F32 and Q8_0 weights (seeds seed, seed + 1), in both numeric modes. */
static void hybrid_each(const char *arch, int n_embd, int n_recurrent, uint64_t seed,
                        void (*check)(hearth_model *m, const char *what)) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-%s-%d.gguf", arch, (int)getpid());
    const kern_type types[] = {KERN_F32, KERN_Q8_0};
    for (int mode = 0; mode < 2; mode++) {
        kern_set_exact(mode == 1);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            synth_params p = synth_default_params();
            p.arch = arch;
            p.type = types[t];
            p.n_layer = 5;
            p.n_embd = n_embd;
            p.seed = seed + t;
            REQUIRE(synth_write(path, &p) == HEARTH_OK);
            hearth_model_params mp = hearth_model_default_params();
            mp.n_threads = 2;
            hearth_model *m = NULL;
            REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
            REQUIRE(m->hp.n_conv + m->hp.n_ssm == n_recurrent);
            char what[64];
            snprintf(what, sizeof what, "%s %s %s", arch, kern_type_get(types[t])->name,
                     mode ? "exact" : "default");
            check(m, what);
            hearth_model_free(m);
        }
    }
    unlink(path);
}

#endif
