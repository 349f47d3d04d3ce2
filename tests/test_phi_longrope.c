/*
 * test_phi_longrope.c - Phi-3.5 / Phi-4-mini LongRoPE (loader.c,
 * hparams.c, session.c, forward.c) and the loader's refusal of tensors an
 * architecture does not use.
 *
 * LongRoPE divides RoPE's angles by per-frequency factors, the short ones
 * for a session whose context (rounded up to 256, as llama.cpp rounds it)
 * is within rope.scaling.original_context_length and the long ones beyond
 * it, and multiplies cos and sin by rope.scaling.attn_factor. The checks:
 *  - factors all 1 with attention factor 1 give the plain model's logits
 *    bit for bit, whatever the context;
 *  - a short session equals the same weights with the short factors as
 *    rope_freqs.weight (the path llama3 files take), a long one the long
 *    factors, bit for bit, and the two differ;
 *  - with a full rotary, an attention factor a scales q and k by a, so the
 *    scores by a^2: the logits equal (to rounding) those of the plain model
 *    whose Q rows are a^2 times larger;
 *  - a partial rotary (Phi-4-mini: 96 of 128) loads and runs the same way;
 *  - a file with a tensor the architecture does not use is refused, naming
 *    it; a short session's cache does not copy into a long one.
 */
#include "hearth.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

enum { N_TOK = 24, ORIG = 256, SHORT_CTX = 256, LONG_CTX = 512 };

static char tmp_dir[64];
static int n_files;
static char files[32][160];
static int32_t ids[N_TOK];

static const char *tmp(const char *name) {
    REQUIRE(n_files < 32);
    snprintf(files[n_files], sizeof files[0], "%s/%s", tmp_dir, name);
    return files[n_files++];
}

/* A small phi3 (fused QKV and gate/up, tied output) with head_dim 32 and
 * n_rot as given; the model's training context is LONG_CTX. */
static synth_params phi3(int n_rot) {
    synth_params p = synth_default_params();
    p.arch = "phi3";
    p.n_embd = 128;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.head_dim = 32;
    p.n_ff = 192;
    p.n_ctx = LONG_CTX;
    p.n_rot = n_rot;
    p.tied = true;
    p.seed = 11;
    return p;
}

static const char *write_model(const char *name, const synth_params *p) {
    const char *path = tmp(name);
    REQUIRE(synth_write(path, p) == HEARTH_OK);
    return path;
}

/* Every position's logits ([N_TOK][n_vocab], caller frees) of ids in a
 * session of n_ctx positions with an F32 cache. */
static float *run(const char *path, int n_ctx, int *n_vocab) {
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    hearth_err err = hearth_model_load(path, NULL, &m);
    REQUIRE(err == HEARTH_OK);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    sp.kv_type = HEARTH_KV_F32;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    *n_vocab = hearth_model_n_vocab(m);
    float *out = malloc((size_t)N_TOK * (size_t)*n_vocab * sizeof *out);
    REQUIRE(out);
    REQUIRE(hearth_decode(s, ids, N_TOK, out, true) == HEARTH_OK);
    hearth_session_free(s);
    hearth_model_free(m);
    return out;
}

static bool same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof *a) == 0;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* Factors all 1 and attention factor 1: the plain model, bit for bit. */
static void test_identity(int n_rot) {
    synth_params p = phi3(n_rot);
    const char *plain = write_model(n_rot == 32 ? "plain.gguf" : "plain_partial.gguf", &p);
    p.factors = SYNTH_ROPE_ONES;
    p.rope_orig_ctx = ORIG;
    p.rope_attn_factor = 1.0f;
    const char *ones = write_model(n_rot == 32 ? "ones.gguf" : "ones_partial.gguf", &p);
    for (int c = 0; c < 2; c++) {
        const int n_ctx = c ? LONG_CTX : SHORT_CTX;
        int nv;
        float *a = run(plain, n_ctx, &nv), *b = run(ones, n_ctx, &nv);
        CHECKF(same_bits(a, b, (size_t)N_TOK * (size_t)nv),
               "n_rot %d, n_ctx %d: factors of 1 changed the logits by %g", n_rot, n_ctx,
               test_max_diff(a, b, (size_t)N_TOK * (size_t)nv));
        free(a);
        free(b);
    }
}

/* Short and long factors against the same values as rope_freqs.weight. */
static void test_short_long(int n_rot) {
    synth_params p = phi3(n_rot);
    p.rope_orig_ctx = ORIG;
    p.rope_attn_factor = 1.1f;
    p.factors = SYNTH_ROPE_LONGROPE;
    const char *lr = write_model(n_rot == 32 ? "longrope.gguf" : "longrope_partial.gguf", &p);
    p.factors = SYNTH_ROPE_FREQS_SHORT;
    const char *fs = write_model(n_rot == 32 ? "freqs_short.gguf" : "freqs_short_partial.gguf", &p);
    p.factors = SYNTH_ROPE_FREQS_LONG;
    const char *fl = write_model(n_rot == 32 ? "freqs_long.gguf" : "freqs_long_partial.gguf", &p);
    int nv;
    float *short_lr = run(lr, SHORT_CTX, &nv), *short_ref = run(fs, SHORT_CTX, &nv);
    /* 200 positions round up to 256: still the short factors */
    float *short_200 = run(lr, 200, &nv);
    float *long_lr = run(lr, LONG_CTX, &nv), *long_ref = run(fl, LONG_CTX, &nv);
    /* 257 positions: beyond the original context, the long factors */
    float *long_257 = run(lr, ORIG + 1, &nv);
    const size_t n = (size_t)N_TOK * (size_t)nv;
    CHECKF(same_bits(short_lr, short_ref, n), "n_rot %d: short session differs by %g", n_rot,
           test_max_diff(short_lr, short_ref, n));
    CHECKF(same_bits(short_200, short_ref, n), "n_rot %d: 200 positions differ by %g", n_rot,
           test_max_diff(short_200, short_ref, n));
    CHECKF(same_bits(long_lr, long_ref, n), "n_rot %d: long session differs by %g", n_rot,
           test_max_diff(long_lr, long_ref, n));
    CHECKF(same_bits(long_257, long_ref, n), "n_rot %d: 257 positions differ by %g", n_rot,
           test_max_diff(long_257, long_ref, n));
    /* the factors matter: the first token (position 0, no rotation) agrees */
    const double d = test_max_diff(short_lr, long_lr, n);
    CHECKF(d > 1e-3 * max_abs(short_lr, n), "n_rot %d: short and long factors agree (%g)", n_rot,
           d);
    CHECKF(same_bits(short_lr, long_lr, (size_t)nv), "n_rot %d: position 0 depends on factors",
           n_rot);
    free(short_lr);
    free(short_ref);
    free(short_200);
    free(long_lr);
    free(long_ref);
    free(long_257);
}

/* Attention factor a with a full rotary: scores times a^2, as a plain
 * model whose Q rows are a^2 larger. */
static void test_attn_factor(void) {
    const float a = 1.25f;
    synth_params p = phi3(32);
    p.factors = SYNTH_ROPE_ONES;
    p.rope_orig_ctx = ORIG;
    p.rope_attn_factor = a;
    const char *scaled = write_model("attn.gguf", &p);
    p = phi3(32);
    p.q_gain = a * a;
    const char *gained = write_model("gain.gguf", &p);
    p.q_gain = 0.0f;
    const char *plain = write_model("plain_again.gguf", &p);
    int nv;
    float *x = run(scaled, SHORT_CTX, &nv), *y = run(gained, SHORT_CTX, &nv),
          *z = run(plain, SHORT_CTX, &nv);
    const size_t n = (size_t)N_TOK * (size_t)nv;
    const double d = test_max_diff(x, y, n), scale = max_abs(y, n), moved = test_max_diff(x, z, n);
    CHECKF(d <= 1e-4 * scale, "attn_factor %g vs Q times %g: %g (logits up to %g)", (double)a,
           (double)(a * a), d, scale);
    CHECKF(moved > 100 * d, "the attention factor hardly changes the logits (%g vs %g)", moved, d);
    free(x);
    free(y);
    free(z);
}

static void expect_refused(const char *path, hearth_err code, const char *needle) {
    hearth_model *m = NULL;
    const hearth_err err = hearth_model_load(path, NULL, &m);
    CHECKF(err == code && !m, "%s: got %d", path, (int)err);
    CHECKF(strstr(hearth_last_error(), needle), "%s: message '%s' lacks '%s'", path,
           hearth_last_error(), needle);
    hearth_model_free(m);
}

static void test_refusals(void) {
    synth_params p = phi3(32);
    p.extra_tensor = "blk.0.attn_sinks.weight";
    expect_refused(write_model("extra.gguf", &p), HEARTH_ERR_UNSUPPORTED,
                   "blk.0.attn_sinks.weight");
    p = phi3(32);
    p.arch = "llama";
    p.extra_tensor = "rope_factors_medium.weight";
    expect_refused(write_model("extra_llama.gguf", &p), HEARTH_ERR_UNSUPPORTED,
                   "rope_factors_medium.weight");
}

/* A short session's keys were rotated with the short factors. */
static void test_copy_refused(void) {
    synth_params p = phi3(32);
    p.factors = SYNTH_ROPE_LONGROPE;
    p.rope_orig_ctx = ORIG;
    const char *path = write_model("copy.gguf", &p);
    hearth_model *m = NULL;
    hearth_session *a = NULL, *b = NULL, *c = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = SHORT_CTX;
    REQUIRE(hearth_session_new(m, &sp, &a) == HEARTH_OK);
    sp.n_ctx = 128;
    REQUIRE(hearth_session_new(m, &sp, &c) == HEARTH_OK);
    sp.n_ctx = LONG_CTX;
    REQUIRE(hearth_session_new(m, &sp, &b) == HEARTH_OK);
    REQUIRE(hearth_decode(a, ids, 8, NULL, false) == HEARTH_OK);
    CHECK(hearth_session_copy(b, a, 8) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "LongRoPE") != NULL);
    CHECK(hearth_session_copy(c, a, 8) == HEARTH_OK); /* both short */
    hearth_session_free(a);
    hearth_session_free(b);
    hearth_session_free(c);
    hearth_model_free(m);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_longrope.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    unsigned long long seed = 3;
    for (int t = 0; t < N_TOK; t++) ids[t] = (int32_t)(3 + test_rand_u64(&seed) % 300);
    test_identity(32);
    test_identity(24); /* partial rotary, as Phi-4-mini's 96 of 128 */
    test_short_long(32);
    test_short_long(24);
    test_attn_factor();
    test_refusals();
    test_copy_refused();
    for (int i = 0; i < n_files; i++) unlink(files[i]);
    rmdir(tmp_dir);
    return test_done("test_phi_longrope");
}
