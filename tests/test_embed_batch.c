/*
 * test_embed_batch.c - hearth_embed_batch against hearth_embed text by text,
 * on models the test writes itself (every architecture; F32, Q8_0 and Q4_K
 * weights; F32 and F16 KV caches; the three poolings; exact mode on two
 * architectures, one cache type and mean pooling, as it is slow):
 * texts of many lengths (one token, a whole KV tile, a partial one, one
 * longer than the batch, more than fit in one pass) give the vectors they
 * get alone - bit for bit in default mode, where a row's arithmetic does
 * not depend on the rows beside it - and close to them in exact mode
 * (llama.cpp's products sum a batch in other orders); the session is left
 * empty and decodes as a fresh one; bad batches fail naming the text, before
 * anything runs.
 */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

enum { N_CTX = 64, N_BATCH = 32, N_TEXTS = 9 };

/* Lengths: one token, a tile, a tile and one, one longer than the batch
 * (alone, in chunks), and enough short ones that the rest needs two passes. */
static const int lengths[N_TEXTS] = {1, 16, 17, 40, 5, 23, 3, 9, 12};

static hearth_session *session(hearth_model *m, hearth_kv_type kv) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = N_CTX;
    sp.n_batch = N_BATCH;
    sp.kv_type = kv;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

/* Batch vs alone for one model; returns the largest difference seen. */
static double check_model(const char *path, hearth_kv_type kv, bool exact, const char *what) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    const int d = hearth_model_n_embd(m), nv = hearth_model_n_vocab(m);
    int total = 0;
    for (int i = 0; i < N_TEXTS; i++) total += lengths[i];
    int32_t *ids = malloc((size_t)total * sizeof *ids);
    float *batch = malloc((size_t)N_TEXTS * (size_t)d * sizeof *batch);
    float *alone = malloc((size_t)d * sizeof *alone);
    REQUIRE(ids && batch && alone);
    for (int i = 0; i < total; i++) ids[i] = (int32_t)(3 + (i * 37) % (nv - 3));
    hearth_session *s = session(m, kv), *one = session(m, kv);
    double worst = 0;
    static const hearth_pooling pools[] = {HEARTH_POOL_MEAN, HEARTH_POOL_CLS, HEARTH_POOL_LAST};
    /* exact mode's products are slow in a debug build: mean pooling only */
    for (size_t p = 0; p < (exact ? 1u : 3u); p++) {
        REQUIRE(hearth_embed_batch(s, ids, lengths, N_TEXTS, pools[p], p != 1, batch) == HEARTH_OK);
        CHECK(hearth_session_pos(s) == 0);
        for (int i = 0, off = 0; i < N_TEXTS; off += lengths[i++]) {
            REQUIRE(hearth_embed(one, ids + off, lengths[i], pools[p], p != 1, alone) == HEARTH_OK);
            const float *v = batch + (size_t)i * (size_t)d;
            const double diff = test_max_diff(v, alone, (size_t)d);
            if (diff > worst) worst = diff;
            if (!exact)
                CHECKF(!memcmp(v, alone, (size_t)d * sizeof *v),
                       "%s %s: text %d (%d tokens) differs from alone by %g", what,
                       hearth_pooling_name(pools[p]), i, lengths[i], diff);
            else
                CHECKF(diff < 1e-4, "%s %s: text %d differs by %g", what,
                       hearth_pooling_name(pools[p]), i, diff);
        }
    }
    /* A batch of one is hearth_embed (bit for bit, in either mode). */
    REQUIRE(hearth_embed_batch(s, ids, lengths + 5, 1, HEARTH_POOL_MEAN, true, batch) == HEARTH_OK);
    REQUIRE(hearth_embed(one, ids, lengths[5], HEARTH_POOL_MEAN, true, alone) == HEARTH_OK);
    CHECKF(!memcmp(batch, alone, (size_t)d * sizeof *alone), "%s: batch of one", what);

    /* Afterwards the session decodes like a fresh one. */
    float *l1 = malloc((size_t)nv * sizeof *l1), *l2 = malloc((size_t)nv * sizeof *l2);
    REQUIRE(l1 && l2);
    hearth_session *fresh = session(m, kv);
    REQUIRE(hearth_decode(fresh, ids, 7, l1, false) == HEARTH_OK);
    REQUIRE(hearth_decode(s, ids, 7, l2, false) == HEARTH_OK);
    CHECKF(!memcmp(l1, l2, (size_t)nv * sizeof *l1), "%s: decode after a batch", what);

    /* Bad batches: nothing runs, the message names the text. */
    const int zero[3] = {2, 0, 3}, too_long[2] = {2, N_CTX + 1};
    int32_t bad[4] = {5, 6, 7, (int32_t)nv};
    const int bad_len[2] = {2, 2};
    CHECK(hearth_embed_batch(s, ids, lengths, 0, HEARTH_POOL_MEAN, true, batch) ==
          HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_embed_batch(s, ids, zero, 3, HEARTH_POOL_MEAN, true, batch) ==
          HEARTH_ERR_INVALID_ARG);
    CHECKF(strstr(hearth_last_error(), "text 1: no tokens"), "%s", hearth_last_error());
    int32_t *long_ids = calloc(N_CTX + 3, sizeof *long_ids);
    REQUIRE(long_ids);
    CHECK(hearth_embed_batch(s, long_ids, too_long, 2, HEARTH_POOL_MEAN, true, batch) ==
          HEARTH_ERR_CONTEXT_FULL);
    CHECKF(strstr(hearth_last_error(), "text 1: 65 tokens"), "%s", hearth_last_error());
    CHECK(hearth_embed_batch(s, bad, bad_len, 2, HEARTH_POOL_MEAN, true, batch) ==
          HEARTH_ERR_INVALID_ARG);
    CHECKF(strstr(hearth_last_error(), "text 1: token id"), "%s", hearth_last_error());
    CHECK(hearth_embed_batch(s, ids, lengths, 2, (hearth_pooling)0, true, batch) ==
          HEARTH_ERR_INVALID_ARG);
    /* hearth_embed's own messages name no text */
    CHECK(hearth_embed(s, ids, 0, HEARTH_POOL_MEAN, true, alone) == HEARTH_ERR_INVALID_ARG);
    CHECKF(!strcmp(hearth_last_error(), "embed: no tokens"), "%s", hearth_last_error());

    free(long_ids);
    free(l1);
    free(l2);
    free(ids);
    free(batch);
    free(alone);
    hearth_session_free(s);
    hearth_session_free(one);
    hearth_session_free(fresh);
    hearth_model_free(m);
    return worst;
}

int main(void) {
    static const char *const arches[] = {"llama", "qwen2",         "qwen3",  "gemma3", "phi3",
                                         "lfm2",  "granitehybrid", "qwen35", "gemma4", "gemma3n"};
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-embed-batch-%d.gguf", (int)getpid());
    const kern_type types[] = {KERN_F32, KERN_Q8_0, KERN_Q4_K};
    for (int mode = 0; mode < 2; mode++) {
        kern_set_exact(mode == 1);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            double worst = 0;
            for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
                if (mode == 1 && a != 0 && a != 3) continue; /* llama, gemma3 (slow) */
                synth_params p = synth_default_params();
                p.arch = arches[a];
                p.type = types[t];
                p.seed = 4000 + a;
                REQUIRE(synth_write(path, &p) == HEARTH_OK);
                for (int kv = 0; kv < 2 - mode; kv++) {
                    char what[96];
                    snprintf(what, sizeof what, "%s/%s/%s/kv %s", arches[a],
                             kern_type_get(types[t])->name, mode ? "exact" : "default",
                             kv ? "f16" : "f32");
                    const double w =
                        check_model(path, kv ? HEARTH_KV_F16 : HEARTH_KV_F32, mode == 1, what);
                    if (w > worst) worst = w;
                }
            }
            printf("embed_batch: %s weights, %s mode: largest difference from alone %g\n",
                   kern_type_get(types[t])->name, mode ? "exact" : "default", worst);
        }
    }
    unlink(path);
    return test_done("embed_batch");
}
