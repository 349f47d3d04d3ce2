/*
 * test_kernels_simd.c - every SIMD kernel of every instruction set this CPU
 * runs, against the scalar table dispatch.c starts from.
 *
 * Each ISA row of KERN_ISA_ROWS is installed over a copy of the scalar
 * table; every entry that changed is a kernel under test:
 *  - vec_dot on random weight bytes, on reference-quantized weights and on
 *    inputs whose float arithmetic is exact (scales 1 or 2, activations in
 *    [-1, 1]); the first two within float rounding (1e-5 of the sum of the
 *    magnitudes of the terms), the last bit for bit;
 *  - from_float bit for bit against the scalar quantizer, including ties,
 *    zero blocks and both signs of the largest magnitude;
 *  - to_float bit for bit (every F16/BF16 pattern).
 * Block counts 1..33 and float lengths that are no multiple of any vector
 * width, in heap buffers of exactly the row's size so ASan sees overreads.
 * Dispatch itself (the choice, HEARTH_ISA) is checked in child processes,
 * since the choice is made once per process.
 * ISAs the CPU lacks are reported and skipped.
 */
#include "kernels/isa.h"
#include "kernels/kern_ref.h"
#include "test.h"

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *name;
    bool (*usable)(void);
    void (*install)(kern_fns *table);
} isa_row;

static const isa_row k_isas[] = {{"scalar", NULL, NULL}, KERN_ISA_ROWS};
#define N_ISAS ((int)(sizeof k_isas / sizeof k_isas[0]))

static kern_fns g_scalar[KERN_ISA_NTYPES];
static unsigned long long g_seed = 0x9E3779B97F4A7C15ULL;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    REQUIRE(p != NULL);
    return p;
}

static uint32_t rnd_u32(void) { return (uint32_t)(test_rand_u64(&g_seed) >> 32); }
static float rnd_f(void) { return test_rand_f(&g_seed); }

static void fill_bytes(void *p, size_t n) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rnd_u32();
}

static void put_f16(uint8_t *p, float f) {
    const uint16_t h = kern_f32_to_f16(f);
    memcpy(p, &h, sizeof h);
}

static bool is_float_type(kern_type t) { return t == KERN_F32 || t == KERN_F16 || t == KERN_BF16; }

/* ---- input generation ---------------------------------------------------- */

typedef enum { GEN_BYTES, GEN_QUANTIZED, GEN_EXACT } gen_mode;

/* Offsets of the fp16 scale fields of a block (-1: none). */
static void scale_fields(kern_type t, int *a, int *b) {
    *a = 0;
    *b = -1;
    switch (t) {
    case KERN_Q4_1:
    case KERN_Q5_1:
    case KERN_Q8_1: *b = 2; break;
    case KERN_Q2_K: /* ggml's block_q2_K: scales[16], qs[64], d, dmin */
        *a = 80;
        *b = 82;
        break;
    case KERN_Q3_K: *a = 108; break; /* block_q3_K: hmask[32], qs[64], scales[12], d */
    case KERN_Q4_K: *b = (int)offsetof(block_q4_K, dmin); break;
    case KERN_Q5_K: *b = (int)offsetof(block_q5_K, dmin); break;
    case KERN_Q6_K: *a = (int)offsetof(block_q6_K, d); break;
    default: break;
    }
}

/* Small integers (exact) or random values of a float type. */
static void gen_float_row(kern_type t, void *row, int64_t n, bool exact) {
    float *f = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        f[i] = exact ? (float)((int)(rnd_u32() % 17) - 8) : rnd_f() * 2.0f;
    kern_ref_quantize_row(t, f, row, n);
    free(f);
}

/* A weight row of n elements of quantized type t. */
static void gen_weights(kern_type t, void *row, int64_t n, gen_mode mode) {
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    const int64_t nb = n / ti->block_size;
    if (is_float_type(t)) {
        gen_float_row(t, row, n, mode == GEN_EXACT);
        return;
    }
    if (mode == GEN_QUANTIZED) {
        float *f = xmalloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) f[i] = rnd_f() * (1.0f + (float)(i % 7));
        kern_ref_quantize_row(t, f, row, n);
        free(f);
        return;
    }
    fill_bytes(row, (size_t)nb * ti->block_bytes);
    int fa, fb;
    scale_fields(t, &fa, &fb);
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *blk = (uint8_t *)row + i * ti->block_bytes;
        if (mode == GEN_EXACT) {
            put_f16(blk + fa, (float)(1 + rnd_u32() % 2));
            if (fb >= 0) put_f16(blk + fb, (float)(1 + rnd_u32() % 2));
        } else {
            put_f16(blk + fa, rnd_f() * 0.1f);
            if (fb >= 0) put_f16(blk + fb, rnd_f() * 0.1f);
        }
    }
}

/* Activations in vec_dot type vt: a quantized random row, or (exact) levels
 * in [-1, 1] with scales 1 or 2 (Q8_K: 1) and consistent sums. */
static void gen_acts(kern_type vt, void *row, int64_t n, bool exact) {
    const kern_type_info *ti = kern_type_get((uint32_t)vt);
    const int64_t nb = n / ti->block_size;
    if (is_float_type(vt)) {
        gen_float_row(vt, row, n, exact);
        return;
    }
    if (!exact) {
        float *f = xmalloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) f[i] = rnd_f() * (float)(1 + i % 5);
        g_scalar[vt].from_float(f, row, n);
        free(f);
        return;
    }
    for (int64_t i = 0; i < nb; i++) {
        if (vt == KERN_Q8_K) {
            block_q8_K *b = (block_q8_K *)row + i;
            b->d = 1.0f;
            for (int j = 0; j < QK_K; j++) b->qs[j] = (int8_t)((int)(rnd_u32() % 3) - 1);
            for (int j = 0; j < QK_K / 16; j++) {
                int sum = 0;
                for (int k = 0; k < 16; k++) sum += b->qs[16 * j + k];
                b->bsums[j] = (int16_t)sum;
            }
        } else {
            uint8_t *b = (uint8_t *)row + i * ti->block_bytes;
            const int qoff = vt == KERN_Q8_1 ? 4 : 2;
            const float d = (float)(1 + rnd_u32() % 2);
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                const int8_t q = (int8_t)((int)(rnd_u32() % 3) - 1);
                b[qoff + j] = (uint8_t)q;
                sum += q;
            }
            put_f16(b, d);
            if (vt == KERN_Q8_1) put_f16(b + 2, d * (float)sum);
        }
    }
}

/* The quant bits of a copy of a weight row set to zero: dequantizing it gives
 * the part of each weight that does not depend on its level (the offset). */
static void zero_levels(kern_type t, void *row, int64_t nb) {
    const size_t bb = kern_type_get((uint32_t)t)->block_bytes;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = (uint8_t *)row + i * bb;
        switch (t) {
        case KERN_Q4_0: memset(b + 2, 0, 16); break;
        case KERN_Q4_1: memset(b + 4, 0, 16); break;
        case KERN_Q5_0: memset(b + 2, 0, 20); break;
        case KERN_Q5_1: memset(b + 4, 0, 20); break;
        case KERN_Q8_0: memset(b + 2, 0, 32); break;
        case KERN_Q8_1: memset(b + 4, 0, 32); break;
        case KERN_Q2_K: memset(b + 16, 0, QK_K / 4); break;
        case KERN_Q3_K: memset(b, 0, QK_K / 8 + QK_K / 4); break; /* every level -4 */
        case KERN_Q4_K: memset(b + offsetof(block_q4_K, qs), 0, QK_K / 2); break;
        case KERN_Q5_K: memset(b + offsetof(block_q5_K, qh), 0, QK_K / 8 + QK_K / 2); break;
        case KERN_Q6_K: memset(b, 0, QK_K / 2 + QK_K / 4); break;
        case KERN_Q8_K: memset(b + 4, 0, QK_K); break;
        default: break;
        }
    }
}

/* Per element of a row: |level part| + |offset part| of its dequantized
 * weights, into out[0..n). */
static void magnitude_weights(kern_type t, const void *w, int64_t n, size_t wbytes, double *out) {
    float *wf = xmalloc((size_t)n * sizeof(float));
    float *of = xmalloc((size_t)n * sizeof(float));
    kern_ref_dequantize_row(t, w, wf, n);
    if (is_float_type(t)) {
        memset(of, 0, (size_t)n * sizeof(float));
    } else {
        void *z = xmalloc(wbytes);
        memcpy(z, w, wbytes);
        zero_levels(t, z, n / kern_type_get((uint32_t)t)->block_size);
        kern_ref_dequantize_row(t, z, of, n);
        free(z);
    }
    for (int64_t i = 0; i < n; i++)
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): of[0..n) dequantized
        out[i] = fabs((double)wf[i] - (double)of[i]) + fabs((double)of[i]);
    free(wf);
    free(of);
}

/* |x| per element of an activation row, into out[0..n). */
static void magnitude_acts(kern_type vt, const void *x, int64_t n, double *out) {
    float *xf = xmalloc((size_t)n * sizeof(float));
    kern_ref_dequantize_row(vt, x, xf, n);
    for (int64_t i = 0; i < n; i++) out[i] = fabs((double)xf[i]);
    free(xf);
}

static double dot_d(const double *a, const double *b, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m += a[i] * b[i];
    return m;
}

/* Sum over elements of |level part| * |x| + |offset part| * |x|: the scale
 * of the rounding errors any correct order of summation can make. */
static double magnitude(kern_type t, kern_type vt, const void *w, const void *x, int64_t n,
                        size_t wbytes) {
    double *mw = xmalloc((size_t)n * sizeof(double)), *mx = xmalloc((size_t)n * sizeof(double));
    magnitude_weights(t, w, n, wbytes, mw);
    magnitude_acts(vt, x, n, mx);
    const double m = dot_d(mw, mx, n);
    free(mw);
    free(mx);
    return m;
}

/* ---- vec_dot -------------------------------------------------------------- */

static const int k_nb32[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 18, 33, 131, 1057};
static const int k_nbK[] = {1, 2, 3, 5, 8, 9, 131};
static const int k_nfloat[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000};

static int64_t case_n(kern_type t, int i, int *count) {
    const uint32_t bs = kern_type_get((uint32_t)t)->block_size;
    if (bs == 1) {
        *count = (int)(sizeof k_nfloat / sizeof k_nfloat[0]);
        return i < *count ? k_nfloat[i] : 0;
    }
    if (bs == QK_K) {
        *count = (int)(sizeof k_nbK / sizeof k_nbK[0]);
        return i < *count ? (int64_t)k_nbK[i] * QK_K : 0;
    }
    *count = (int)(sizeof k_nb32 / sizeof k_nb32[0]);
    return i < *count ? (int64_t)k_nb32[i] * bs : 0;
}

/* Kernels whose float steps are the reference's, term for term, with integer
 * sums that are exact whatever their order, so that their vec_dot must have
 * the reference's bits on every input, not only within rounding: NEON's
 * Q2_K (the reference scales whole-block integer sums once per block). */
static bool same_bits_as_ref(const char *isa, kern_type t) {
    return strcmp(isa, "neon") == 0 && t == KERN_Q2_K;
}

static void check_vec_dot(const char *isa, kern_type t, kern_vec_dot_fn fn) {
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    const kern_type vt = ti->vec_dot_type;
    int count = 0;
    case_n(t, 0, &count);
    for (int c = 0; c < count; c++) {
        const int64_t n = case_n(t, c, &count);
        const size_t wb = kern_row_bytes(t, n), xb = kern_row_bytes(vt, n);
        void *w = xmalloc(wb), *x = xmalloc(xb);
        for (int mode = GEN_BYTES; mode <= GEN_EXACT; mode++) {
            /* exact sums stay below 2^24 only for short K-quant rows */
            if (mode == GEN_EXACT && ti->block_size == QK_K && n > 5 * QK_K) continue;
            if (mode == GEN_BYTES && is_float_type(t)) continue;
            gen_weights(t, w, n, (gen_mode)mode);
            gen_acts(vt, x, n, mode == GEN_EXACT);
            float ref = NAN, got = NAN;
            g_scalar[t].vec_dot(n, &ref, w, x);
            fn(n, &got, w, x);
            if (mode == GEN_EXACT) {
                CHECKF(got == ref, "%s %s n=%lld exact: got %.9g want %.9g", isa, ti->name,
                       (long long)n, got, ref);
            } else {
                const double tol = 1e-5 * magnitude(t, vt, w, x, n, wb) + 1e-30;
                CHECKF(fabs((double)got - (double)ref) <= tol,
                       "%s %s n=%lld mode %d: got %.9g want %.9g (tol %.3g)", isa, ti->name,
                       (long long)n, mode, got, ref, tol);
                if (same_bits_as_ref(isa, t))
                    CHECKF(memcmp(&got, &ref, sizeof got) == 0,
                           "%s %s n=%lld mode %d: got %.9g, not the reference's bits %.9g", isa,
                           ti->name, (long long)n, mode, got, ref);
            }
        }
        free(w);
        free(x);
    }
}

/* ---- gemm ------------------------------------------------------------------ */

/* gemm against the same table's vec_dot, bit for bit (its contract: a batch
 * and one token at a time agree), on every row length of check_vec_dot,
 * row counts around the 16-row panels, token counts around its register
 * tiles, padded row strides and an output stride whose gaps must stay
 * untouched. The rows and tokens of one length are generated once (the
 * reference quantizers are slow) and each case takes its first ones. */
static void check_gemm(const char *isa, kern_type t, kern_gemm_fn gemm, kern_vec_dot_fn vec_dot) {
    enum { MAX_ROWS = 35, MAX_TOKS = 16 };
    static const int rows[] = {1, 7, 16, 19, MAX_ROWS};
    static const int toks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, MAX_TOKS};
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    const kern_type vt = ti->vec_dot_type;
    int count = 0;
    case_n(t, 0, &count);
    for (int c = 0; c < count; c++) {
        const int64_t n = case_n(t, c, &count);
        const size_t wb = kern_row_bytes(t, n), xb = kern_row_bytes(vt, n);
        const size_t ws = wb + (size_t)(c % 2) * 6; /* some rows padded */
        uint8_t *w[2] = {xmalloc(ws * MAX_ROWS), xmalloc(ws * MAX_ROWS)};
        uint8_t *x = xmalloc(xb * MAX_TOKS);
        for (int r = 0; r < MAX_ROWS; r++) {
            gen_weights(t, w[0] + ws * (size_t)r, n, GEN_BYTES);
            gen_weights(t, w[1] + ws * (size_t)r, n, GEN_QUANTIZED);
        }
        for (int k = 0; k < MAX_TOKS; k++) gen_acts(vt, x + xb * (size_t)k, n, false);
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
            for (size_t ti2 = 0; ti2 < sizeof toks / sizeof toks[0]; ti2++) {
                const int nr = rows[ri], nt = toks[ti2];
                const uint8_t *wm = w[(ri + ti2) % 2]; /* quantized or random bytes */
                const int64_t ldy = nr + 3;
                float *y = xmalloc(sizeof(float) * (size_t)(ldy * nt));
                for (int64_t i = 0; i < ldy * nt; i++) y[i] = -12345.0f;
                gemm(n, wm, ws, nr, x, xb, nt, y, ldy);
                int bad = 0, hit = 0;
                for (int k = 0; k < nt; k++) {
                    for (int r = 0; r < nr; r++) {
                        float want;
                        vec_dot(n, &want, wm + ws * (size_t)r, x + xb * (size_t)k);
                        bad += memcmp(&want, &y[k * ldy + r], sizeof want) != 0;
                    }
                    for (int64_t r = nr; r < ldy; r++) hit += y[k * ldy + r] != -12345.0f;
                }
                CHECKF(bad == 0,
                       "%s %s gemm n=%lld rows %d tokens %d: %d of %d differ from vec_dot", isa,
                       ti->name, (long long)n, nr, nt, bad, nr * nt);
                CHECKF(hit == 0, "%s %s gemm n=%lld rows %d tokens %d: wrote %d gap entries", isa,
                       ti->name, (long long)n, nr, nt, hit);
                free(y);
            }
        free(w[0]), free(w[1]), free(x);
    }
}

/* Activation quants all of magnitude 127 (random signs, sums kept): the
 * largest integer sums a kernel can meet. */
static void max_acts(kern_type vt, void *row, int64_t n) {
    const size_t bb = kern_type_get((uint32_t)vt)->block_bytes;
    for (int64_t i = 0; i < n / (vt == KERN_Q8_K ? QK_K : 32); i++) {
        uint8_t *b = (uint8_t *)row + (size_t)i * bb;
        if (vt == KERN_Q8_K) {
            block_q8_K *q = (block_q8_K *)b;
            for (int j = 0; j < QK_K; j++) q->qs[j] = (int8_t)(rnd_u32() % 2 ? 127 : -127);
            for (int j = 0; j < QK_K / 16; j++) {
                int sum = 0;
                for (int k = 0; k < 16; k++) sum += q->qs[16 * j + k];
                q->bsums[j] = (int16_t)sum;
            }
        } else if (vt == KERN_Q8_0) {
            for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(rnd_u32() % 2 ? 127 : -127);
        }
    }
}

/* Few tokens against many rows (generation, speculative verification, a
 * few busy slots), the path the per-ISA gemv kernels take: the gemm of 1 to
 * 8 tokens against vec_dot bit for bit and against the scalar reference
 * within float rounding, on row counts around their groups of rows, rows up
 * to and past the lengths their buffers hold (AVX2: 512 blocks of one to
 * three tokens, 384 of four), and activations of the largest magnitude;
 * weights and the tokens in buffers of exactly their size (rows back to
 * back), so ASan sees reads past the last row. */
static void check_gemv(const char *isa, kern_type t, kern_gemm_fn gemm, kern_vec_dot_fn vec_dot) {
    static const int rows[] = {1, 2, 3, 4, 5, 6, 7, 9, 13, 33};
    static const int toks[] = {1, 2, 3, 4, 5, 8};
    static const int nb32[] = {1, 2, 3, 4, 5, 6, 7, 9, 18, 28, 36, 152, 384, 385, 511, 512, 513};
    static const int nbK[] = {1, 2, 3, 5, 19, 64, 65};
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    const kern_type vt = ti->vec_dot_type;
    const bool k = ti->block_size == QK_K;
    const int n_len = k ? (int)(sizeof nbK / sizeof nbK[0]) : (int)(sizeof nb32 / sizeof nb32[0]);
    if (is_float_type(t) || (ti->block_size != 32 && !k)) return;
    for (int c = 0; c < n_len; c++) {
        const int64_t n = (int64_t)(k ? nbK[c] : nb32[c]) * ti->block_size;
        const size_t ws = kern_row_bytes(t, n), xb = kern_row_bytes(vt, n);
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            const int nr = rows[ri];
            const int nt = toks[(c + ri) % (sizeof toks / sizeof toks[0])];
            const int variant = (int)((c + ri) % 3); /* bytes, quantized, largest activations */
            uint8_t *w = xmalloc(ws * (size_t)nr), *x = xmalloc(xb * (size_t)nt);
            float *y = xmalloc(sizeof(float) * (size_t)nr * (size_t)nt);
            for (int r = 0; r < nr; r++)
                gen_weights(t, w + ws * (size_t)r, n, variant == 1 ? GEN_QUANTIZED : GEN_BYTES);
            for (int j = 0; j < nt; j++) {
                gen_acts(vt, x + xb * (size_t)j, n, false);
                if (variant == 2) max_acts(vt, x + xb * (size_t)j, n);
            }
            gemm(n, w, ws, nr, x, xb, nt, y, nr);
            /* each row's and token's part of the tolerance, once */
            double *mw = xmalloc(sizeof(double) * (size_t)n * (size_t)nr);
            double *mx = xmalloc(sizeof(double) * (size_t)n * (size_t)nt);
            for (int r = 0; r < nr; r++)
                magnitude_weights(t, w + ws * (size_t)r, n, ws, mw + n * r);
            for (int j = 0; j < nt; j++) magnitude_acts(vt, x + xb * (size_t)j, n, mx + n * j);
            int bad = 0, far = 0;
            for (int j = 0; j < nt; j++)
                for (int r = 0; r < nr; r++) {
                    float want, ref;
                    const uint8_t *wr = w + ws * (size_t)r, *xr = x + xb * (size_t)j;
                    vec_dot(n, &want, wr, xr);
                    g_scalar[t].vec_dot(n, &ref, wr, xr);
                    bad += memcmp(&want, &y[j * nr + r], sizeof want) != 0;
                    const double tol = 1e-5 * dot_d(mw + n * r, mx + n * j, n) + 1e-30;
                    far += !(fabs((double)y[j * nr + r] - (double)ref) <= tol);
                }
            free(mw), free(mx);
            CHECKF(bad == 0, "%s %s %d tokens n=%lld rows %d: %d differ from vec_dot", isa,
                   ti->name, nt, (long long)n, nr, bad);
            CHECKF(far == 0, "%s %s %d tokens n=%lld rows %d variant %d: %d off the reference", isa,
                   ti->name, nt, (long long)n, nr, variant, far);
            free(w), free(x), free(y);
        }
    }
}

/* A packed layout as a plain gemm: the rows packed (ws apart, padded rows
 * too), then its gemm_packed, so that check_gemm and check_gemv hold it to
 * the bits of the same table's vec_dot. The packed form is allocated at
 * exactly its size, so ASan sees reads past it. */
static const kern_fns *g_packed;
static void packed_gemm(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                        int64_t nt, float *y, int64_t ldy) {
    const size_t bytes = g_packed->pack_bytes(nr, n), panel = g_packed->pack_bytes(16, n);
    REQUIRE(bytes > 0 && bytes % 64 == 0 && bytes == panel * (size_t)((nr + 15) / 16));
    void *p = aligned_alloc(64, bytes);
    REQUIRE(p != NULL);
    g_packed->pack(w, ws, nr, n, p);
    g_packed->gemm_packed(n, p, panel, nr, x, xs, nt, y, ldy);
    free(p);
}

static void check_packed(const char *isa, kern_type t, const kern_fns *f) {
    char name[64];
    snprintf(name, sizeof name, "%s packed", isa);
    CHECKF(f->pack && f->gemm_packed && f->gemm,
           "%s %s: a packed layout needs pack, its gemm and a gemm", isa,
           kern_type_get((uint32_t)t)->name);
    if (!f->pack || !f->gemm_packed) return;
    CHECK(f->pack_bytes(16, kern_type_get((uint32_t)t)->block_size + 1) == 0); /* no such rows */
    g_packed = f;
    check_gemm(name, t, packed_gemm, f->vec_dot);
    check_gemv(name, t, packed_gemm, f->vec_dot);
}

/* The products real models run (Q4_K_M files mix Q4_K, Q6_K and Q5_0;
 * IQ4_XS files IQ4_XS, IQ4_NL and Q8_0/Q6_K):
 * each of these tables must have a gemm for every one, and tiled attention
 * for both cache types, so that reading a prompt is batched there. */
static const char *const k_gemm_isas[] = {"avx2", "avx512-vnni", "neon"};
static const kern_type k_gemm_types[] = {KERN_F32,  KERN_F16,  KERN_Q8_0, KERN_Q4_0,   KERN_Q5_0,
                                         KERN_Q4_K, KERN_Q5_K, KERN_Q6_K, KERN_IQ4_NL, KERN_IQ4_XS};

static void check_coverage(const char *isa, const kern_fns *table) {
    bool listed = false;
    for (size_t i = 0; i < sizeof k_gemm_isas / sizeof k_gemm_isas[0]; i++)
        listed = listed || strcmp(isa, k_gemm_isas[i]) == 0;
    if (!listed) return;
    for (size_t i = 0; i < sizeof k_gemm_types / sizeof k_gemm_types[0]; i++) {
        const kern_type t = k_gemm_types[i];
        CHECKF(table[t].gemm != NULL && table[t].gemm != g_scalar[t].gemm, "%s: no gemm for %s",
               isa, kern_type_get((uint32_t)t)->name);
    }
    CHECKF(table[KERN_F32].attn != NULL, "%s: no attn for f32 caches", isa);
    CHECKF(table[KERN_F16].attn != NULL, "%s: no attn for f16 caches", isa);
}

/* A few gemm shapes against vec_dot, bit for bit: for the tables dispatch.c
 * builds (every usable row up to the cap installed over the ones before),
 * where a gemm left by an earlier row beside a later row's vec_dot would
 * break the contract. */
static int gemm_mismatches(kern_type t, const kern_fns *f) {
    const kern_type vt = kern_type_get((uint32_t)t)->vec_dot_type;
    const int64_t n = kern_type_get((uint32_t)t)->block_size == 1      ? 200
                      : kern_type_get((uint32_t)t)->block_size == QK_K ? 3 * QK_K
                                                                       : 9 * 32;
    enum { NR = 5, NT = 6 };
    const size_t wb = kern_row_bytes(t, n), xb = kern_row_bytes(vt, n);
    uint8_t *w = xmalloc(wb * NR), *x = xmalloc(xb * NT);
    float y[NT * NR];
    for (int r = 0; r < NR; r++) gen_weights(t, w + wb * (size_t)r, n, GEN_QUANTIZED);
    for (int k = 0; k < NT; k++) gen_acts(vt, x + xb * (size_t)k, n, false);
    f->gemm(n, w, wb, NR, x, xb, NT, y, NR);
    int bad = 0;
    for (int k = 0; k < NT; k++)
        for (int r = 0; r < NR; r++) {
            float want;
            f->vec_dot(n, &want, w + wb * (size_t)r, x + xb * (size_t)k);
            bad += memcmp(&want, &y[k * NR + r], sizeof want) != 0;
        }
    free(w), free(x);
    return bad;
}

/* ---- from_float ----------------------------------------------------------- */

/* Random values with special blocks mixed in: zeros, exact ties after
 * scaling (largest magnitude 127 makes the multiplier exactly 1), both signs
 * of the largest magnitude, tiny and huge values. */
static void gen_float_input(float *f, int64_t n, int64_t bs, int variant) {
    for (int64_t i = 0; i < n; i++) f[i] = rnd_f() * (float)(1 + i % 9);
    const int64_t nb = bs > 1 ? n / bs : 0;
    for (int64_t b = 0; b < nb; b++) {
        float *blk = f + b * bs;
        switch ((b + variant) % 7) {
        case 0: memset(blk, 0, (size_t)bs * sizeof(float)); break;
        case 1:
            for (int64_t j = 0; j < bs; j++) blk[j] = (float)((int)(rnd_u32() % 254) - 127) + 0.5f;
            blk[rnd_u32() % bs] = 127.0f;
            break;
        case 2:
            for (int64_t j = 0; j < bs; j++) blk[j] = (float)((int)(rnd_u32() % 254) - 127) + 0.5f;
            blk[bs - 1] = -127.0f;
            blk[bs / 2] = 127.0f;
            break;
        case 3:
            for (int64_t j = 0; j < bs; j++) blk[j] *= 1e-30f;
            break;
        case 4:
            for (int64_t j = 0; j < bs; j++) blk[j] *= 1e30f;
            break;
        case 5: { /* near-ties: how the multiplier is computed matters */
            const float amax = 0.5f + rnd_f() * rnd_f() * 100.0f;
            for (int64_t j = 0; j < bs; j++)
                blk[j] = ((float)((int)(rnd_u32() % 254) - 127) + 0.5f) * (amax / 127.0f);
            blk[0] = amax;
            break;
        }
        default: /* the largest magnitude twice, the negative one first */
            blk[bs / 2 + 1] = -200.0f;
            blk[bs / 2 + 3] = 200.0f;
            break;
        }
    }
    if (bs == 1 && variant == 1) { /* every kind of float, NaN included */
        for (int64_t i = 0; i < n; i++) {
            const uint32_t u = rnd_u32();
            memcpy(&f[i], &u, sizeof u);
        }
    }
}

static void check_from_float(const char *isa, kern_type t, kern_from_float_fn fn) {
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    int count = 0;
    case_n(t, 0, &count);
    for (int c = 0; c < count; c++) {
        const int64_t n = case_n(t, c, &count);
        const size_t yb = kern_row_bytes(t, n);
        float *f = xmalloc((size_t)n * sizeof(float));
        uint8_t *want = xmalloc(yb), *got = xmalloc(yb);
        for (int variant = 0; variant < 7; variant++) {
            gen_float_input(f, n, ti->block_size, variant);
            memset(want, 0xAA, yb);
            memset(got, 0x55, yb);
            g_scalar[t].from_float(f, want, n);
            fn(f, got, n);
            size_t k = 0;
            while (k < yb && want[k] == got[k]) k++;
            CHECKF(k == yb, "%s from_float %s n=%lld variant %d: first difference at byte %zu", isa,
                   ti->name, (long long)n, variant, k);
        }
        free(f);
        free(want);
        free(got);
    }
}

/* ---- to_float --------------------------------------------------------------- */

static bool same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_to_float(const char *isa, kern_type t, kern_to_float_fn fn) {
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    int count = 0;
    case_n(t, 0, &count);
    for (int c = 0; c <= count; c++) {
        /* the last case: for 16-bit floats, every bit pattern */
        int64_t n = c < count ? case_n(t, c, &count) : 0;
        const bool all16 = c == count && (t == KERN_F16 || t == KERN_BF16);
        if (all16) n = 65536;
        if (n == 0) continue;
        const size_t xb = kern_row_bytes(t, n);
        uint8_t *x = xmalloc(xb);
        float *want = xmalloc((size_t)n * sizeof(float)), *got = xmalloc((size_t)n * sizeof(float));
        if (all16)
            for (int64_t i = 0; i < n; i++) ((uint16_t *)x)[i] = (uint16_t)i;
        else
            gen_weights(t, x, n, GEN_BYTES);
        g_scalar[t].to_float(x, want, n);
        fn(x, got, n);
        int64_t k = 0;
        while (k < n && same_float(want[k], got[k])) k++;
        CHECKF(k == n, "%s to_float %s n=%lld: element %lld differs", isa, ti->name, (long long)n,
               (long long)k);
        free(x);
        free(want);
        free(got);
    }
}

/* ---- one ISA ------------------------------------------------------------------ */

/* ---- attention over the tiled cache ------------------------------------------------- */

/* One kern_attn_tile case: n_rows rows with random key ranges over a cache of
 * n_pos positions whose unwritten positions (past the largest hi) hold NaNs;
 * each row against ops.c's functions on its keys gathered into rows, bit
 * for bit. fn NULL: the dispatched kern_attn_tile. */
static void check_attn_case(const char *isa, kern_attn_fn fn, bool f16, int hd, int n_pos,
                            int n_rows, bool batch, float qmag, float cap) {
    const size_t es = f16 ? 2 : sizeof(float);
    uint8_t *k = xmalloc((size_t)n_pos * hd * es), *v = xmalloc((size_t)n_pos * hd * es);
    uint8_t *krow = xmalloc((size_t)n_pos * hd * es);
    float *q = xmalloc((size_t)n_rows * hd * sizeof(float));
    float *out = xmalloc((size_t)n_rows * hd * sizeof(float)), *want = xmalloc(hd * sizeof(float));
    float *sc = xmalloc((size_t)n_pos * sizeof(float));
    float *work = xmalloc(kern_attn_work_floats(hd, n_pos) * sizeof(float));
    kern_attn_row rows[KERN_ATTN_ROWS];
    int hi_max = 0;
    for (int r = 0; r < n_rows; r++) {
        const int hi = (int)(rnd_u32() % (uint32_t)n_pos);
        const int lo = rnd_u32() % 3 == 0 ? 0 : (int)(rnd_u32() % (uint32_t)(hi + 1));
        rows[r] = (kern_attn_row){
            .q = q + (size_t)r * hd, .out = out + (size_t)r * hd, .lo = lo, .hi = hi};
        hi_max = hi > hi_max ? hi : hi_max;
        for (int e = 0; e < hd; e++) q[(size_t)r * hd + e] = qmag * rnd_f();
    }
    for (int p = 0; p < n_pos; p++)
        for (int d = 0; d < hd; d++) {
            const size_t ik = ((size_t)(p / KERN_KV_TILE) * KERN_KV_TILE * hd +
                               (size_t)d * KERN_KV_TILE + (size_t)(p % KERN_KV_TILE)) *
                              es,
                         iv = ((size_t)p * hd + d) * es;
            const float kx = p <= hi_max ? rnd_f() : NAN, vx = p <= hi_max ? rnd_f() : NAN;
            if (f16) {
                put_f16(k + ik, kx);
                put_f16(v + iv, vx);
            } else {
                memcpy(k + ik, &kx, sizeof kx);
                memcpy(v + iv, &vx, sizeof vx);
            }
        }
    const float scale = 1.0f / sqrtf((float)hd);
    const kern_attn_args a = {.rows = rows,
                              .n_rows = n_rows,
                              .hd = hd,
                              .n_pos = n_pos,
                              .k = k,
                              .v = v,
                              .batch = batch,
                              .scale = scale,
                              .softcap = cap,
                              .work = work};
    if (fn)
        fn(&a);
    else
        kern_attn_tile(&a, f16);
    for (int r = 0; r < n_rows; r++) {
        const int lo = rows[r].lo, n = rows[r].hi - lo + 1;
        for (int p = lo; p < lo + n; p++)
            for (int d = 0; d < hd; d++)
                memcpy(krow + ((size_t)(p - lo) * hd + d) * es,
                       k + ((size_t)(p / KERN_KV_TILE) * KERN_KV_TILE * hd +
                            (size_t)d * KERN_KV_TILE + (size_t)(p % KERN_KV_TILE)) *
                               es,
                       es);
        kern_attn_scores(sc, rows[r].q, krow, (size_t)hd, n, hd, f16, batch);
        if (cap > 0.0f) kern_softcap(sc, n, cap);
        kern_attn_softmax(sc, lo, n, KERN_ATTN_ROW_PADDED, scale);
        kern_attn_values(want, sc, v + (size_t)lo * hd * es, (size_t)hd, lo, n,
                         KERN_ATTN_ROW_PADDED, hd, f16, batch);
        CHECKF(memcmp(want, rows[r].out, (size_t)hd * sizeof(float)) == 0,
               "%s attn %s hd %d rows %d batch %d q*%g cap %g: row %d (keys %d..%d) differs from "
               "ops.c (%g vs %g)",
               isa, f16 ? "f16" : "f32", hd, n_rows, batch, (double)qmag, (double)cap, r, lo,
               rows[r].hi, (double)rows[r].out[0], (double)want[0]);
    }
    free(k), free(v), free(krow), free(q), free(out), free(want), free(sc), free(work);
}

static void check_attn(const char *isa, kern_type t, kern_attn_fn fn) {
    static const int hds[] = {16, 32, 48, 64, 80, 128, 256, 512}; /* 512: Gemma 4's global layers */
    static const int n_poss[] = {16, 48, 160, 528};
    for (size_t i = 0; i < sizeof hds / sizeof hds[0]; i++)
        for (size_t j = 0; j < sizeof n_poss / sizeof n_poss[0]; j++)
            for (int rows = 1; rows <= KERN_ATTN_ROWS; rows++)
                for (int batch = 0; batch < 2; batch++)
                    /* q*40: score differences past 126 ln 2, exp's scalar lanes;
                       soft-capped scores (gemma2) on some */
                    check_attn_case(isa, fn, t == KERN_F16, hds[i], n_poss[j], rows, batch,
                                    rows == 2 ? 40.0f : 3.0f,
                                    rows == 3 || (rows == 2 && batch) ? 4.0f : 0.0f);
}

/* ---- default mode's element-wise twins ------------------------------------ */

/* kern_swiglu_fast has kern_swiglu's bits (inputs from tiny to past exp's
 * range, lengths with a tail); kern_rms_norm_fast is kern_rms_norm up to
 * the order of its double sum. */
static void check_ops_fast(void) {
    static const int64_t lens[] = {1, 15, 16, 17, 64, 100, 577};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        float *g = xmalloc((size_t)n * sizeof(float)), *u = xmalloc((size_t)n * sizeof(float));
        float *a = xmalloc((size_t)n * sizeof(float)), *b = xmalloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) {
            const float mag = i % 5 == 0 ? 150.0f : i % 3 == 0 ? 20.0f : 4.0f;
            g[i] = rnd_f() * mag;
            u[i] = rnd_f();
        }
        kern_swiglu(a, g, u, n);
        kern_swiglu_fast(b, g, u, n);
        CHECKF(memcmp(a, b, (size_t)n * sizeof(float)) == 0, "swiglu_fast n=%lld differs",
               (long long)n);
        kern_rms_norm(a, g, u, n, 1e-6f);
        kern_rms_norm_fast(b, g, u, n, 1e-6f);
        double worst = 0.0;
        for (int64_t i = 0; i < n; i++)
            worst = fmax(worst, fabs((double)a[i] - (double)b[i]) / (fabs((double)a[i]) + 1e-30));
        CHECKF(worst <= 4 * FLT_EPSILON, "rms_norm_fast n=%lld: relative difference %g",
               (long long)n, worst);
        free(g), free(u), free(a), free(b);
    }
}

/* Q2_K and Q3_K with extreme fp16 scales (largest finite, smallest normal,
 * subnormal, zero, both signs) and activations of the largest magnitude or
 * of huge and tiny float scales, against the scalar reference within float
 * rounding; random level and scale bytes. */
static void check_kq23_extremes(const char *isa, kern_type t, kern_vec_dot_fn fn) {
    static const float k_d[] = {65504.0f, -65504.0f, 6.103515625e-05f, 5.9604645e-08f, 0.0f, -0.0f,
                                1.0f,     -0.5f};
    static const float k_xs[] = {1e-30f, 1e-3f, 1.0f, 1e18f};
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    int fa, fb;
    scale_fields(t, &fa, &fb);
    for (int c = 0; c < 3; c++) {
        const int64_t n = (int64_t)(c == 0 ? 1 : c == 1 ? 3 : 17) * QK_K;
        const int64_t nb = n / QK_K;
        const size_t wb = kern_row_bytes(t, n), xb = kern_row_bytes(KERN_Q8_K, n);
        uint8_t *w = xmalloc(wb), *x = xmalloc(xb);
        float *f = xmalloc((size_t)n * sizeof(float));
        for (size_t di = 0; di < sizeof k_d / sizeof k_d[0]; di++)
            for (size_t xi = 0; xi <= sizeof k_xs / sizeof k_xs[0]; xi++) {
                fill_bytes(w, wb);
                for (int64_t i = 0; i < nb; i++) {
                    uint8_t *blk = w + (size_t)i * ti->block_bytes;
                    put_f16(blk + fa, k_d[(di + (size_t)i) % (sizeof k_d / sizeof k_d[0])]);
                    if (fb >= 0) put_f16(blk + fb, k_d[(di + 3 * (size_t)i + 1) % 8]);
                }
                if (xi == sizeof k_xs / sizeof k_xs[0]) {
                    gen_acts(KERN_Q8_K, x, n, false);
                    max_acts(KERN_Q8_K, x, n);
                } else {
                    for (int64_t i = 0; i < n; i++) f[i] = rnd_f() * k_xs[xi];
                    g_scalar[KERN_Q8_K].from_float(f, x, n);
                }
                float ref = NAN, got = NAN;
                g_scalar[t].vec_dot(n, &ref, w, x);
                fn(n, &got, w, x);
                const double tol = 1e-5 * magnitude(t, KERN_Q8_K, w, x, n, wb) + 1e-30;
                CHECKF(isfinite(ref) && fabs((double)got - (double)ref) <= tol,
                       "%s %s extreme n=%lld d %g acts %zu: got %.9g want %.9g (tol %.3g)", isa,
                       ti->name, (long long)n, (double)k_d[di], xi, got, ref, tol);
                if (same_bits_as_ref(isa, t))
                    CHECKF(memcmp(&got, &ref, sizeof got) == 0,
                           "%s %s extreme n=%lld d %g acts %zu: got %.9g, not the reference's "
                           "bits %.9g",
                           isa, ti->name, (long long)n, (double)k_d[di], xi, got, ref);
            }
        free(w), free(x), free(f);
    }
}

/* The largest products Q2_K and Q3_K can make: every level and scale at
 * its extreme (Q2_K: level 3, scale and min 15; Q3_K: level -4, scale -32,
 * whose product 128 does not fit the int8 a kernel may multiply levels and
 * scales into) against activations of magnitude 127, all scales 1, so that
 * every sum is an integer below 2^24 and the result must be exact. */
static void check_kq23_corner(const char *isa, kern_type t, kern_vec_dot_fn fn) {
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    int fa, fb;
    scale_fields(t, &fa, &fb);
    const int64_t n = 3 * QK_K;
    const size_t wb = kern_row_bytes(t, n), xb = kern_row_bytes(KERN_Q8_K, n);
    uint8_t *w = xmalloc(wb), *x = xmalloc(xb);
    memset(w, t == KERN_Q2_K ? 0xFF : 0x00, wb);
    for (int64_t i = 0; i < n / QK_K; i++) {
        put_f16(w + (size_t)i * ti->block_bytes + fa, 1.0f);
        if (fb >= 0) put_f16(w + (size_t)i * ti->block_bytes + fb, 1.0f);
    }
    for (int rep = 0; rep < 4; rep++) {
        gen_acts(KERN_Q8_K, x, n, true); /* d = 1 */
        max_acts(KERN_Q8_K, x, n);
        if (rep == 0) /* all +127: the largest block sums */
            for (int64_t i = 0; i < n / QK_K; i++) {
                block_q8_K *q = (block_q8_K *)x + i;
                memset(q->qs, 127, QK_K);
                for (int j = 0; j < QK_K / 16; j++) q->bsums[j] = 16 * 127;
            }
        float ref = NAN, got = NAN;
        g_scalar[t].vec_dot(n, &ref, w, x);
        fn(n, &got, w, x);
        CHECKF(got == ref, "%s %s corner %d: got %.9g want %.9g", isa, ti->name, rep, got, ref);
    }
    free(w), free(x);
}

static void check_isa(const isa_row *row) {
    kern_fns table[KERN_ISA_NTYPES];
    memcpy(table, g_scalar, sizeof table);
    row->install(table);
    int n_kernels = 0;
    for (int t = 0; t < KERN_ISA_NTYPES; t++) {
        const kern_type_info *ti = kern_type_get((uint32_t)t);
        if (!ti || !ti->supported) {
            CHECKF(memcmp(&table[t], &g_scalar[t], sizeof table[t]) == 0,
                   "%s installs kernels for unsupported type %d", row->name, t);
            continue;
        }
        if (table[t].vec_dot != g_scalar[t].vec_dot) {
            check_vec_dot(row->name, (kern_type)t, table[t].vec_dot);
            if (t == KERN_Q2_K || t == KERN_Q3_K) {
                check_kq23_extremes(row->name, (kern_type)t, table[t].vec_dot);
                check_kq23_corner(row->name, (kern_type)t, table[t].vec_dot);
            }
            n_kernels++;
        }
        if (table[t].from_float != g_scalar[t].from_float) {
            check_from_float(row->name, (kern_type)t, table[t].from_float);
            n_kernels++;
        }
        if (table[t].to_float != g_scalar[t].to_float) {
            check_to_float(row->name, (kern_type)t, table[t].to_float);
            n_kernels++;
        }
        if (table[t].gemm != g_scalar[t].gemm) {
            check_gemm(row->name, (kern_type)t, table[t].gemm, table[t].vec_dot);
            check_gemv(row->name, (kern_type)t, table[t].gemm, table[t].vec_dot);
            n_kernels++;
        }
        if (table[t].pack_bytes) {
            check_packed(row->name, (kern_type)t, &table[t]);
            n_kernels++;
        }
        if (table[t].attn != g_scalar[t].attn) {
            check_attn(row->name, (kern_type)t, table[t].attn);
            n_kernels++;
        }
    }
    check_coverage(row->name, table);
    printf("%s: %d kernels checked against scalar\n", row->name, n_kernels);
    CHECK(n_kernels > 0);
}

/* ---- dispatch, in child processes ----------------------------------------------- */

/* What dispatch.c must choose under HEARTH_ISA=cap: the last usable row at or
 * before the row named cap (all rows when cap names none). */
static int expected_isa(const char *cap) {
    int best = 0;
    for (int i = 1; i < N_ISAS; i++) {
        if (cap && strcmp(cap, k_isas[i - 1].name) == 0) break;
        if (k_isas[i].usable()) best = i;
    }
    return best;
}

static int dispatch_child(const char *cap) {
    if (cap)
        setenv("HEARTH_ISA", cap, 1);
    else
        unsetenv("HEARTH_ISA");
    const int want = expected_isa(cap);
    kern_fns table[KERN_ISA_NTYPES] = {0};
    table[KERN_Q4_0].vec_dot = kern_ref_vec_dot_q4_0;
    table[KERN_Q8_0].from_float = kern_quantize_q8_0_act;
    for (int i = 1; i <= want && i < N_ISAS; i++)
        if (k_isas[i].usable()) k_isas[i].install(table);
    const kern_fns *q4 = kern_get(KERN_Q4_0), *q8 = kern_get(KERN_Q8_0);
    int bad = 0;
    if (strcmp(kern_isa_name(), k_isas[want].name) != 0) bad |= 1;
    if (!q4 || q4->vec_dot != table[KERN_Q4_0].vec_dot) bad |= 2;
    if (!q8 || q8->from_float != table[KERN_Q8_0].from_float) bad |= 4;
    if (bad)
        fprintf(stderr, "HEARTH_ISA=%s: dispatch chose %s, expected %s (mask %d)\n",
                cap ? cap : "(unset)", kern_isa_name(), k_isas[want].name, bad);
    return bad;
}

static void check_dispatch(void) {
    const char *caps[N_ISAS + 2];
    int n_caps = 0;
    caps[n_caps++] = NULL;
    caps[n_caps++] = "no-such-isa";
    for (int i = 0; i < N_ISAS; i++) caps[n_caps++] = k_isas[i].name;
    for (int c = 0; c < n_caps; c++) {
        fflush(NULL);
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) _exit(dispatch_child(caps[c]));
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dispatch with HEARTH_ISA=%s",
               caps[c] ? caps[c] : "(unset)");
    }
}

/* Every table dispatch.c can build on this CPU (HEARTH_ISA capped at each
 * row): each gemm has the bits of the vec_dot beside it. */
static void check_dispatch_gemm(void) {
    kern_fns table[KERN_ISA_NTYPES];
    memcpy(table, g_scalar, sizeof table);
    for (int i = 1; i < N_ISAS; i++) {
        if (!k_isas[i].usable()) continue;
        k_isas[i].install(table);
        for (int t = 0; t < KERN_ISA_NTYPES; t++) {
            const kern_type_info *ti = kern_type_get((uint32_t)t);
            if (!ti || !ti->supported || !table[t].gemm) continue;
            const int bad = gemm_mismatches((kern_type)t, &table[t]);
            CHECKF(bad == 0,
                   "dispatch up to %s: %s gemm differs from the vec_dot beside it in %d of 30 "
                   "pairs (a gemm must be replaced with its vec_dot)",
                   k_isas[i].name, ti->name, bad);
        }
#if defined(__x86_64__) || defined(_M_X64)
        /* Q2_K and Q3_K have SIMD kernels from the AVX2 row on: every table
         * built over it must keep them, gemm included (a later row's vec_dot
         * without a gemm would send prompts row by row) */
        if (kern_avx2_usable()) {
            CHECKF(table[KERN_Q2_K].vec_dot != g_scalar[KERN_Q2_K].vec_dot &&
                       table[KERN_Q2_K].gemm != NULL,
                   "dispatch up to %s: no SIMD vec_dot and gemm for q2_K", k_isas[i].name);
            CHECKF(table[KERN_Q3_K].vec_dot != g_scalar[KERN_Q3_K].vec_dot &&
                       table[KERN_Q3_K].gemm != NULL,
                   "dispatch up to %s: no SIMD vec_dot and gemm for q3_K", k_isas[i].name);
        }
#elif defined(__aarch64__)
        /* likewise from the NEON row (with sdot; no plain-NEON table) */
        if (kern_neon_usable()) {
            CHECKF(table[KERN_Q2_K].vec_dot != g_scalar[KERN_Q2_K].vec_dot &&
                       table[KERN_Q2_K].gemm != NULL,
                   "dispatch up to %s: no NEON vec_dot and gemm for q2_K", k_isas[i].name);
            CHECKF(table[KERN_Q3_K].vec_dot != g_scalar[KERN_Q3_K].vec_dot &&
                       table[KERN_Q3_K].gemm != NULL,
                   "dispatch up to %s: no NEON vec_dot and gemm for q3_K", k_isas[i].name);
        }
#endif
    }
}

int main(void) {
    check_dispatch(); /* before this process makes its own choice */

    setenv("HEARTH_ISA", "scalar", 1);
    REQUIRE(strcmp(kern_isa_name(), "scalar") == 0);
    for (int t = 0; t < KERN_ISA_NTYPES; t++) {
        const kern_type_info *ti = kern_type_get((uint32_t)t);
        const kern_fns *f = kern_get((kern_type)t);
        if (ti && ti->supported) REQUIRE(f && f->vec_dot && f->from_float && f->to_float);
        if (f) g_scalar[t] = *f;
    }

    check_ops_fast();
    /* the portable kern_attn_tile (scalar dispatch: no kern_fns.attn) */
    check_attn("scalar", KERN_F32, NULL);
    check_attn("scalar", KERN_F16, NULL);

    int n_run = 0;
    for (int i = 1; i < N_ISAS; i++) {
        if (!k_isas[i].usable()) {
            printf("%s: not supported by this CPU, skipped\n", k_isas[i].name);
            continue;
        }
        check_isa(&k_isas[i]);
        n_run++;
    }
    check_dispatch_gemm();
    if (n_run == 0) {
        printf("test_kernels_simd: no SIMD instruction set on this CPU\n");
        return TEST_SKIP;
    }
    return test_done("test_kernels_simd");
}
