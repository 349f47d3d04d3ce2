/*
 * test_model.c - the engine on models the project writes itself (random
 * weights, every architecture, several weight types), so the forward pass is
 * covered without ../shared: one batch equals token-by-token decoding, the
 * thread count does not change the result, the context limit is an error,
 * truncation replays exactly, and broken model files fail with clear errors.
 */
#include "hearth.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <unistd.h>

static const char *const arches[] = {"llama",  "qwen2",   "qwen3",         "gemma3",
                                     "phi3",   "lfm2",    "granitehybrid", "qwen35",
                                     "gemma4", "gemma3n", "falcon-h1"};

static hearth_model *load(const char *path, int n_threads, bool no_repack) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = n_threads;
    mp.no_repack = no_repack;
    hearth_model *m = NULL;
    hearth_err err = hearth_model_load(path, &mp, &m);
    CHECKF(err == HEARTH_OK, "%s: %s", path, hearth_last_error());
    return m;
}

/* Logits of ids decoded as one batch ([n][n_vocab]) and one token at a time. */
static void batch_vs_incremental(const char *path, const char *what, kern_type type) {
    enum { N = 20 };
    const int32_t ids[N] = {1,   300, 301, 302, 40,  50,  60,  70,  80,  90,
                            100, 110, 120, 130, 140, 150, 160, 170, 180, 190};
    hearth_model *m1 = load(path, 1, false), *m2 = load(path, 2, false);
    if (!m1 || !m2) return;
    const int nv = hearth_model_n_vocab(m1);
    float *a = malloc(sizeof(float) * N * nv), *b = malloc(sizeof(float) * N * nv),
          *c = malloc(sizeof(float) * N * nv);
    REQUIRE(a && b && c);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 64;
    hearth_session *s1 = NULL, *s2 = NULL;
    REQUIRE(hearth_session_new(m1, &sp, &s1) == HEARTH_OK);
    REQUIRE(hearth_session_new(m2, &sp, &s2) == HEARTH_OK);
    REQUIRE(hearth_decode(s1, ids, N, a, true) == HEARTH_OK);
    for (int i = 0; i < N; i++)
        REQUIRE(hearth_decode(s2, &ids[i], 1, b + (size_t)i * nv, false) == HEARTH_OK);
    /* Integer kernels make 1 and 2 threads agree exactly; batch and single
     * rows agree to float rounding. */
    const double tol = type == KERN_F32 ? 1e-4 : 1e-3;
    CHECKF(test_max_diff(a, b, (size_t)N * nv) < tol, "%s: batch vs incremental differ by %g", what,
           test_max_diff(a, b, (size_t)N * nv));
    /* The weights as the file stores them (no packed layout): the same bits,
     * as a batch and one token at a time. */
    hearth_model *m4 = load(path, 2, true);
    REQUIRE(m4 != NULL);
    hearth_session *s4 = NULL;
    REQUIRE(hearth_session_new(m4, &sp, &s4) == HEARTH_OK);
    REQUIRE(hearth_decode(s4, ids, N, c, true) == HEARTH_OK);
    CHECKF(memcmp(a, c, sizeof(float) * N * nv) == 0, "%s: packed and plain weights differ", what);
    REQUIRE(hearth_session_truncate(s4, 0) == HEARTH_OK);
    for (int i = 0; i < 3; i++)
        REQUIRE(hearth_decode(s4, &ids[i], 1, c + (size_t)i * nv, false) == HEARTH_OK);
    CHECKF(memcmp(b, c, sizeof(float) * 3 * nv) == 0,
           "%s: packed and plain weights differ "
           "token by token",
           what);
    hearth_session_free(s4);
    hearth_model_free(m4);
    /* Truncate to 10 and replay the rest in a batch: same logits. */
    REQUIRE(hearth_session_truncate(s1, 10) == HEARTH_OK);
    CHECK(hearth_session_pos(s1) == 10);
    REQUIRE(hearth_decode(s1, ids + 10, N - 10, c, true) == HEARTH_OK);
    CHECKF(test_max_diff(a + (size_t)10 * nv, c, (size_t)(N - 10) * nv) < 1e-6,
           "%s: replay after truncate", what);
    /* The context limit is an error that changes nothing. */
    int32_t many[64] = {0};
    CHECK(hearth_decode(s1, many, 64, NULL, false) == HEARTH_ERR_CONTEXT_FULL);
    CHECK(hearth_session_pos(s1) == N);
    CHECK(strstr(hearth_last_error(), "do not fit") != NULL);
    int32_t bad = nv;
    CHECK(hearth_decode(s1, &bad, 1, NULL, false) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_session_truncate(s1, N + 1) == HEARTH_ERR_INVALID_ARG);
    /* The default F16 KV cache stays close to F32 (with quantized weights a
     * rounding change can flip an activation's 8-bit code, so the bound is
     * looser). */
    CHECK(sp.kv_type == HEARTH_KV_F16);
    sp.kv_type = HEARTH_KV_F32;
    hearth_session *s3 = NULL;
    REQUIRE(hearth_session_new(m1, &sp, &s3) == HEARTH_OK);
    REQUIRE(hearth_decode(s3, ids, N, c, true) == HEARTH_OK);
    CHECKF(test_max_diff(a, c, (size_t)N * nv) <
               (type == KERN_F32 || type == KERN_F16 ? 0.05 : 0.5),
           "%s: F16 KV cache differs by %g", what, test_max_diff(a, c, (size_t)N * nv));
    for (size_t i = 0; i < (size_t)N * nv; i++)
        if (!isfinite(a[i])) {
            CHECKF(0, "%s: non-finite logit", what);
            break;
        }
    hearth_session_free(s1);
    hearth_session_free(s2);
    hearth_session_free(s3);
    hearth_model_free(m1);
    hearth_model_free(m2);
    free(a);
    free(b);
    free(c);
}

/* Rewrites `src` into `dst` without tensor `drop` and with the architecture
 * set to `arch` (NULL: unchanged). */
static void rewrite(const char *src, const char *dst, const char *drop, const char *arch) {
    gguf_file *f = NULL;
    REQUIRE(gguf_open(src, &f) == HEARTH_OK);
    gguf_writer *w = NULL;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    REQUIRE(gguf_writer_copy_kv(w, f) == HEARTH_OK);
    if (arch) REQUIRE(gguf_writer_set_str(w, "general.architecture", arch) == HEARTH_OK);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (drop && !strcmp(name, drop)) continue;
        REQUIRE(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes) ==
                HEARTH_OK);
    }
    REQUIRE(gguf_writer_write(w, dst) == HEARTH_OK);
    gguf_writer_free(w);
    gguf_close(f);
}

static void broken_models(const char *path, const char *tmp) {
    hearth_model *m = NULL;
    rewrite(path, tmp, "blk.1.ffn_down.weight", NULL);
    CHECK(hearth_model_load(tmp, NULL, &m) == HEARTH_ERR_FORMAT);
    CHECKF(strstr(hearth_last_error(), "blk.1.ffn_down.weight") != NULL, "%s", hearth_last_error());
    rewrite(path, tmp, NULL, "mamba");
    CHECK(hearth_model_load(tmp, NULL, &m) == HEARTH_ERR_UNSUPPORTED);
    CHECKF(strstr(hearth_last_error(), "mamba") != NULL, "%s", hearth_last_error());
    CHECK(hearth_model_load("/nonexistent/model.gguf", NULL, &m) == HEARTH_ERR_IO);
    CHECK(m == NULL);
}

int main(void) {
    char path[64], tmp[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-model-%d.gguf", (int)getpid());
    snprintf(tmp, sizeof tmp, "/tmp/hearth-test-broken-%d.gguf", (int)getpid());
    const kern_type types[] = {KERN_F32,  KERN_F16,  KERN_Q8_0,   KERN_Q4_0,
                               KERN_Q5_0, KERN_Q2_K, KERN_Q3_K,   KERN_Q4_K,
                               KERN_Q5_K, KERN_Q6_K, KERN_IQ4_NL, KERN_IQ4_XS};
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            synth_params p = synth_default_params();
            p.arch = arches[a];
            p.type = types[t];
            p.tied = a % 2 == 1;
            p.seed = 1000 + a;
            REQUIRE(synth_write(path, &p) == HEARTH_OK);
            char what[64];
            snprintf(what, sizeof what, "%s/%s", arches[a], kern_type_get(types[t])->name);
            batch_vs_incremental(path, what, types[t]);
            if (t == 0) broken_models(path, tmp);
        }
    }
    unlink(path);
    unlink(tmp);
    return test_done("model");
}
