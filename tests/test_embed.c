/*
 * test_embed.c - hearth_embed on models the test writes itself (F32 weights,
 * tied and untied output, every architecture): the last token's embedding
 * times the output matrix is hearth_decode's logits (so the vector is the
 * hidden state the output layer reads), mean pooling is the mean of the
 * prefixes' last-token embeddings (the model is causal), cls is the first
 * token's, the result does not depend on the batch size, normalisation gives
 * unit vectors, the session is left empty and decodes as a fresh one, and
 * bad calls fail with an error.
 */
#include "hearth.h"
#include "model/model.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

enum { N_TOK = 23 };

static hearth_session *session(hearth_model *m, int n_batch) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 32;
    sp.n_batch = n_batch;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

static void check_model(const char *path, const char *what) {
    hearth_model *m = NULL;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    const int d = hearth_model_n_embd(m), nv = hearth_model_n_vocab(m);
    CHECK(hearth_model_pooling(m) == HEARTH_POOL_MEAN); /* no pooling_type key */
    int32_t ids[N_TOK];
    for (int i = 0; i < N_TOK; i++) ids[i] = (int32_t)(3 + (i * 29) % (nv - 3));
    hearth_session *s = session(m, 512), *small = session(m, 5);
    float *e = malloc((size_t)d * sizeof *e), *e2 = malloc((size_t)d * sizeof *e2);
    float *mean = calloc((size_t)d, sizeof *mean), *logits = malloc((size_t)nv * sizeof *logits);
    REQUIRE(e && e2 && mean && logits);

    /* Last token, not normalised, times the output matrix = the logits. */
    REQUIRE(hearth_embed(s, ids, N_TOK, HEARTH_POOL_LAST, false, e) == HEARTH_OK);
    CHECKF(hearth_session_pos(s) == 0, "%s: the session is left empty", what);
    REQUIRE(hearth_decode(s, ids, N_TOK, logits, false) == HEARTH_OK);
    REQUIRE(m->output.type == KERN_F32);
    double worst = 0;
    for (int v = 0; v < nv; v++) {
        const float *w = (const float *)m->output.data + (size_t)v * (size_t)d;
        double dot = 0;
        for (int i = 0; i < d; i++) dot += (double)w[i] * e[i];
        dot /= m->hp.logit_scale;               /* Granite divides */
        const double cap = m->hp.final_softcap; /* Gemma 4 caps */
        if (cap > 0) dot = cap * tanh(dot / cap);
        const double diff = fabs(dot - logits[v]);
        if (!(diff <= worst)) worst = diff;
    }
    CHECKF(worst < 1e-3, "%s: output x last-token embedding vs logits: %g", what, worst);

    /* Causal: the mean over n tokens is the mean of the prefixes' last tokens. */
    for (int k = 1; k <= N_TOK; k++) {
        REQUIRE(hearth_embed(s, ids, k, HEARTH_POOL_LAST, false, e2) == HEARTH_OK);
        for (int i = 0; i < d; i++) mean[i] += e2[i] / N_TOK;
        if (k == 1) {
            REQUIRE(hearth_embed(s, ids, N_TOK, HEARTH_POOL_CLS, false, e) == HEARTH_OK);
            CHECKF(test_max_diff(e, e2, (size_t)d) < 1e-5, "%s: cls is the first token's", what);
        }
    }
    REQUIRE(hearth_embed(s, ids, N_TOK, HEARTH_POOL_MEAN, false, e) == HEARTH_OK);
    CHECKF(test_max_diff(e, mean, (size_t)d) < 1e-4, "%s: mean of the prefixes: %g", what,
           test_max_diff(e, mean, (size_t)d));

    /* Batches of 5 tokens give the same vector; normalising gives its direction. */
    REQUIRE(hearth_embed(small, ids, N_TOK, HEARTH_POOL_MEAN, false, e2) == HEARTH_OK);
    CHECKF(test_max_diff(e, e2, (size_t)d) < 1e-4, "%s: batch of 5 vs 512: %g", what,
           test_max_diff(e, e2, (size_t)d));
    REQUIRE(hearth_embed(s, ids, N_TOK, HEARTH_POOL_MEAN, true, e2) == HEARTH_OK);
    double n2 = 0, dot = 0, en2 = 0;
    for (int i = 0; i < d; i++) {
        n2 += (double)e2[i] * e2[i];
        dot += (double)e2[i] * e[i];
        en2 += (double)e[i] * e[i];
    }
    CHECKF(fabs(n2 - 1.0) < 1e-5, "%s: unit norm (%g)", what, n2);
    CHECKF(fabs(dot / sqrt(en2) - 1.0) < 1e-5, "%s: same direction", what);

    /* After an embedding the session decodes like a fresh one. */
    float *fresh = malloc((size_t)nv * sizeof *fresh);
    REQUIRE(fresh);
    REQUIRE(hearth_decode(small, ids, 7, fresh, false) == HEARTH_OK);
    REQUIRE(hearth_embed(s, ids, N_TOK, HEARTH_POOL_MEAN, true, e) == HEARTH_OK);
    REQUIRE(hearth_decode(s, ids, 7, logits, false) == HEARTH_OK);
    CHECKF(test_max_diff(fresh, logits, (size_t)nv) < 1e-4, "%s: decode after embed", what);

    /* Bad calls. */
    const int32_t bad[2] = {1, nv};
    int32_t many[33] = {0};
    CHECK(hearth_embed(s, ids, 0, HEARTH_POOL_MEAN, true, e) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_embed(s, bad, 2, HEARTH_POOL_MEAN, true, e) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_embed(s, many, 33, HEARTH_POOL_MEAN, true, e) == HEARTH_ERR_CONTEXT_FULL);
    CHECK(hearth_embed(s, ids, 3, (hearth_pooling)0, true, e) == HEARTH_ERR_INVALID_ARG);

    free(fresh);
    free(e);
    free(e2);
    free(mean);
    free(logits);
    hearth_session_free(s);
    hearth_session_free(small);
    hearth_model_free(m);
}

int main(void) {
    static const char *const arches[] = {"llama",  "qwen2",   "qwen3",         "gemma3",
                                         "phi3",   "lfm2",    "granitehybrid", "qwen35",
                                         "gemma4", "gemma3n", "falcon-h1"};
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-embed-%d.gguf", (int)getpid());
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
        synth_params p = synth_default_params();
        p.arch = arches[a];
        p.type = KERN_F32;
        p.tied = a % 2 == 1;
        p.seed = 3100 + a;
        REQUIRE(synth_write(path, &p) == HEARTH_OK);
        check_model(path, arches[a]);
    }
    unlink(path);
    return test_done("embed");
}
