/*
 * test_decode_multi.c - hearth_decode_multi (continuous batching) on models
 * the test writes itself (every architecture, F32 and Q8_0 weights, both
 * numeric modes): sessions at different positions decoded in one call get
 * the logits each gets decoded alone, a session may bring several
 * consecutive tokens, the caches end up as if decoded alone, every session
 * keeps its last logits without a caller's buffer, a single session is
 * hearth_decode bit for bit, and bad calls (a full context, entries of a
 * session that are not consecutive, mismatched sessions, too many tokens)
 * fail before anything changes.
 */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <unistd.h>

enum { N_SESS = 3, N_CTX = 40 };

static int32_t tok(int seq, int i) { return (int32_t)(3 + (seq * 37 + i * 11) % 250); }

/* Sessions a[i] and twins b[i], each fed prefix[i] tokens of sequence i. */
typedef struct fixture {
    hearth_model *m;
    hearth_session *a[N_SESS], *b[N_SESS];
    int nv;
} fixture;

static const int prefix[N_SESS] = {5, 13, 21}; /* past gemma3's window of 8 */

/* The default F16 cache, but F32 in exact mode: there llama.cpp's F16
 * arithmetic for a batch (tinyBLAS's order) and for one token (vec_dot_f16)
 * differ by up to 2e-3 on these models, more than the F32 weights' bound. */
static hearth_session_params session_params(void) {
    hearth_session_params sp = hearth_session_default_params();
    if (kern_exact()) sp.kv_type = HEARTH_KV_F32;
    return sp;
}

static bool fixture_open(fixture *f, const char *path, int n_seq_max) {
    memset(f, 0, sizeof *f);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    if (hearth_model_load(path, &mp, &f->m) != HEARTH_OK) {
        CHECKF(0, "%s: %s", path, hearth_last_error());
        return false;
    }
    f->nv = hearth_model_n_vocab(f->m);
    hearth_session_params sp = session_params();
    sp.n_ctx = N_CTX;
    sp.n_seq_max = n_seq_max;
    for (int i = 0; i < N_SESS; i++) {
        REQUIRE(hearth_session_new(f->m, &sp, &f->a[i]) == HEARTH_OK);
        REQUIRE(hearth_session_new(f->m, &sp, &f->b[i]) == HEARTH_OK);
        int32_t ids[32];
        for (int k = 0; k < prefix[i]; k++) ids[k] = tok(i, k);
        REQUIRE(hearth_decode(f->a[i], ids, prefix[i], NULL, false) == HEARTH_OK);
        REQUIRE(hearth_decode(f->b[i], ids, prefix[i], NULL, false) == HEARTH_OK);
    }
    return true;
}

static void fixture_close(fixture *f) {
    for (int i = 0; i < N_SESS; i++) {
        hearth_session_free(f->a[i]);
        hearth_session_free(f->b[i]);
    }
    hearth_model_free(f->m);
}

/* One more token for every session, each alone, on both sets: the logits
 * must agree to `tol` (the caches hold the same keys and values). */
static void check_continuation(fixture *f, const char *what, double tol) {
    // NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): nv is the vocabulary's size, > 0
    float *x = malloc(sizeof(float) * (size_t)f->nv), *y = malloc(sizeof(float) * (size_t)f->nv);
    REQUIRE(x && y);
    for (int i = 0; i < N_SESS; i++) {
        const int32_t id = tok(i, 99);
        CHECK(hearth_session_pos(f->a[i]) == hearth_session_pos(f->b[i]));
        REQUIRE(hearth_decode(f->a[i], &id, 1, x, false) == HEARTH_OK);
        REQUIRE(hearth_decode(f->b[i], &id, 1, y, false) == HEARTH_OK);
        const double d = test_max_diff(x, y, (size_t)f->nv);
        CHECKF(d <= tol, "%s: session %d continues %g apart", what, i, d);
    }
    free(x);
    free(y);
}

/* Session 0 one token, session 1 two, session 2 one, in one call, against
 * each decoded alone; then the logits-less form with n_seq_max rows. */
static void multi_vs_alone(const char *path, const char *what, double tol, int n_seq_max) {
    fixture f;
    if (!fixture_open(&f, path, n_seq_max)) return;
    const size_t nv = (size_t)f.nv;
    hearth_session *const order[4] = {f.a[0], f.a[1], f.a[1], f.a[2]};
    const int32_t ids[4] = {tok(0, prefix[0]), tok(1, prefix[1]), tok(1, prefix[1] + 1),
                            tok(2, prefix[2])};
    float *multi = malloc(sizeof(float) * 4 * nv), *alone = malloc(sizeof(float) * 4 * nv);
    REQUIRE(multi && alone);
    REQUIRE(hearth_decode_multi(order, ids, 4, multi) == HEARTH_OK);
    REQUIRE(hearth_decode(f.b[0], &ids[0], 1, alone, false) == HEARTH_OK);
    REQUIRE(hearth_decode(f.b[1], &ids[1], 2, alone + nv, true) == HEARTH_OK);
    REQUIRE(hearth_decode(f.b[2], &ids[3], 1, alone + 3 * nv, false) == HEARTH_OK);
    const double d = test_max_diff(multi, alone, 4 * nv);
    CHECKF(d <= tol, "%s: multi vs alone differ by %g", what, d);
    for (int i = 0; i < N_SESS; i++) {
        CHECKF(hearth_session_pos(f.a[i]) == prefix[i] + (i == 1 ? 2 : 1), "%s: position %d", what,
               hearth_session_pos(f.a[i]));
        const int32_t *ta = model_session_tokens(f.a[i]), *tb = model_session_tokens(f.b[i]);
        CHECK(memcmp(ta, tb, sizeof(int32_t) * (size_t)hearth_session_pos(f.a[i])) == 0);
    }
    /* Each session keeps its last entry's row. */
    CHECK(memcmp(model_session_logits(f.a[0]), multi, nv * sizeof(float)) == 0);
    CHECK(memcmp(model_session_logits(f.a[1]), multi + 2 * nv, nv * sizeof(float)) == 0);
    CHECK(memcmp(model_session_logits(f.a[2]), multi + 3 * nv, nv * sizeof(float)) == 0);

    /* Without a logits buffer, in the other order: the sessions' own rows
     * (n_seq_max at a time) match a call that asks for every row. */
    hearth_session *const rev[3] = {f.a[2], f.a[1], f.a[0]};
    hearth_session *const rev_b[3] = {f.b[2], f.b[1], f.b[0]};
    const int32_t next[3] = {tok(2, 50), tok(1, 50), tok(0, 50)};
    REQUIRE(hearth_decode_multi(rev, next, 3, NULL) == HEARTH_OK);
    REQUIRE(hearth_decode_multi(rev_b, next, 3, multi) == HEARTH_OK);
    for (int i = 0; i < 3; i++) {
        const double e =
            test_max_diff(model_session_logits(rev[i]), multi + (size_t)i * nv, (size_t)f.nv);
        CHECKF(e <= tol, "%s: n_seq_max %d: session row %d differs by %g", what, n_seq_max, i, e);
    }
    check_continuation(&f, what, tol);
    free(multi);
    free(alone);
    fixture_close(&f);
}

/* One session through hearth_decode_multi is hearth_decode, bit for bit. */
static void single_is_decode(const char *path, const char *what) {
    fixture f;
    if (!fixture_open(&f, path, 1)) return;
    const size_t nv = (size_t)f.nv;
    float *x = malloc(sizeof(float) * 3 * nv), *y = malloc(sizeof(float) * 3 * nv);
    REQUIRE(x && y);
    const int32_t ids[3] = {7, 8, 9};
    hearth_session *const one[3] = {f.a[2], f.a[2], f.a[2]};
    REQUIRE(hearth_decode_multi(one, ids, 3, x) == HEARTH_OK);
    REQUIRE(hearth_decode(f.b[2], ids, 3, y, true) == HEARTH_OK);
    CHECKF(memcmp(x, y, 3 * nv * sizeof(float)) == 0, "%s: one session, 3 tokens", what);
    REQUIRE(hearth_decode_multi(one, ids, 1, NULL) == HEARTH_OK);
    REQUIRE(hearth_decode(f.b[2], ids, 1, NULL, false) == HEARTH_OK);
    CHECKF(memcmp(model_session_logits(f.a[2]), model_session_logits(f.b[2]), nv * sizeof(float)) ==
               0,
           "%s: one session, one token, no buffer", what);
    check_continuation(&f, what, 0);
    free(x);
    free(y);
    fixture_close(&f);
}

/* Failures change nothing: the sessions then continue exactly as their
 * twins that never saw the failed calls. */
static void failures(const char *path, const char *what, double tol) {
    fixture f;
    if (!fixture_open(&f, path, 1)) return;
    /* Fill session 2 to two free positions. */
    int32_t fill[N_CTX];
    const int left = N_CTX - prefix[2] - 2;
    for (int k = 0; k < left; k++) fill[k] = tok(2, 30 + k);
    REQUIRE(hearth_decode(f.a[2], fill, left, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(f.b[2], fill, left, NULL, false) == HEARTH_OK);
    hearth_session *const full[5] = {f.a[0], f.a[1], f.a[2], f.a[2], f.a[2]};
    const int32_t ids[5] = {10, 11, 12, 13, 14};
    CHECK(hearth_decode_multi(full, ids, 5, NULL) == HEARTH_ERR_CONTEXT_FULL);
    CHECKF(strstr(hearth_last_error(), "do not fit") != NULL, "%s", hearth_last_error());
    hearth_session *const split[3] = {f.a[0], f.a[1], f.a[0]};
    CHECK(hearth_decode_multi(split, ids, 3, NULL) == HEARTH_ERR_INVALID_ARG);
    CHECKF(strstr(hearth_last_error(), "consecutive") != NULL, "%s", hearth_last_error());
    const int32_t bad[2] = {1, (int32_t)f.nv};
    CHECK(hearth_decode_multi(full, bad, 2, NULL) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_decode_multi(full, ids, 0, NULL) == HEARTH_ERR_INVALID_ARG);
    hearth_session_params sp = session_params();
    sp.n_ctx = N_CTX + 16;
    hearth_session *other = NULL;
    REQUIRE(hearth_session_new(f.m, &sp, &other) == HEARTH_OK);
    hearth_session *const mixed[2] = {f.a[0], other};
    CHECK(hearth_decode_multi(mixed, ids, 2, NULL) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_session_pos(other) == 0);
    hearth_session_free(other);
    sp.n_ctx = N_CTX;
    sp.n_batch = 2;
    hearth_session *small = NULL;
    REQUIRE(hearth_session_new(f.m, &sp, &small) == HEARTH_OK);
    hearth_session *const three[3] = {small, f.a[0], f.a[1]};
    CHECK(hearth_decode_multi(three, ids, 3, NULL) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_decode_multi(three, ids, 2, NULL) == HEARTH_OK); /* within its batch */
    hearth_session_free(small);
    REQUIRE(hearth_decode(f.b[0], &ids[1], 1, NULL, false) == HEARTH_OK); /* the same token */
    for (int i = 0; i < N_SESS; i++)
        CHECK(hearth_session_pos(f.a[i]) == hearth_session_pos(f.b[i]));
    /* Session 0's last token went through a batch of two (other arithmetic
     * in exact mode); the others are untouched. */
    check_continuation(&f, what, tol);
    /* The last position can still be filled through a multi call. */
    hearth_session *const last[1] = {f.a[2]};
    CHECK(hearth_decode_multi(last, ids, 1, NULL) == HEARTH_OK);
    CHECK(hearth_session_pos(f.a[2]) == N_CTX);
    CHECK(hearth_decode_multi(last, ids, 1, NULL) == HEARTH_ERR_CONTEXT_FULL);
    fixture_close(&f);
}

int main(void) {
    static const char *const arches[] = {"llama", "qwen2",         "qwen3",  "gemma3", "phi3",
                                         "lfm2",  "granitehybrid", "qwen35", "gemma4", "gemma3n"};
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-multi-%d.gguf", (int)getpid());
    const kern_type types[] = {KERN_F32, KERN_Q8_0};
    for (int mode = 0; mode < 2; mode++) {
        kern_set_exact(mode == 1);
        for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
            for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
                synth_params p = synth_default_params();
                p.arch = arches[a];
                p.type = types[t];
                p.tied = a % 2 == 1;
                p.seed = 2000 + a;
                REQUIRE(synth_write(path, &p) == HEARTH_OK);
                char what[96];
                snprintf(what, sizeof what, "%s/%s/%s", arches[a], kern_type_get(types[t])->name,
                         mode ? "exact" : "default");
                /* As test_model's batch vs incremental: the products of a
                 * batch may sum in another order than a single row's. Gemma
                 * 3n's four streams carry that difference further (4e-4 in
                 * exact mode, whose arithmetic is llama.cpp's bit for bit). */
                const double tol = (types[t] == KERN_F32 ? 1e-4 : 1e-3) *
                                   (strcmp(arches[a], "gemma3n") ? 1.0 : 10.0);
                multi_vs_alone(path, what, tol, 1);
                multi_vs_alone(path, what, tol, 2);
                single_is_decode(path, what);
                failures(path, what, tol);
            }
        }
    }
    unlink(path);
    return test_done("decode_multi");
}
