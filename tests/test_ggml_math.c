/*
 * test_ggml_math.c - the exact-numerics layer (ggml_math.c, ggml_matmul.c and
 * the attention in ops.c) against independent computations. Bit equality
 * with llama.cpp itself is what test_conformance checks; here every function
 * must be accurate (its error within the bound its summation order allows)
 * and agree with the other implementations of the same quantity:
 * - kern_ggml_expf within ggml's documented error of expf, its saturation;
 * - SiLU, RoPE, the f32/f16 dot product orders and the horizontal sums
 *   against double precision;
 * - the attention functions against a double-precision softmax attention,
 *   for F32 and F16 caches, batch and single-token orders, odd head sizes
 *   and windows that start anywhere;
 * - kern_matmul_ggml against kern_matmul (the dispatched SIMD kernels, an
 *   independent implementation) for every type, batch size and the repacked
 *   orders: a wrong nibble, scale or lane would be far outside rounding.
 */
#include "kernels/kernels.h"
#include "test.h"

#include <float.h>

static unsigned long long seed = 0x5eed5eedULL;

static float gauss(void) { /* Irwin-Hall approximation, enough for test data */
    float s = 0.0f;
    for (int i = 0; i < 12; i++) s += test_rand_f(&seed) * 0.5f;
    return s;
}

/* ulp distance between two finite floats of the same sign */
static double ulps(float a, float b) {
    if (a == b) return 0.0;
    const double d = fabs((double)a - (double)b);
    const double m = fmax(fabs((double)a), fabs((double)b));
    int e;
    frexp(m, &e);
    return d / ldexp(1.0, e - 24);
}

static void test_expf(void) {
    double worst = 0.0;
    for (int i = 0; i <= 200000; i++) {
        const float x = -87.0f + 175.0f * (float)i / 200000.0f;
        const float got = kern_ggml_expf(x), want = expf(x);
        const double u = ulps(got, want);
        worst = u > worst ? u : worst;
    }
    /* ggml documents 1.45 ulp + 0.5 for the approximation itself. */
    CHECKF(worst <= 2.5, "kern_ggml_expf is %.2f ulp from expf", worst);
    CHECK(kern_ggml_expf(0.0f) == 1.0f);
    CHECK(kern_ggml_expf(-INFINITY) == 0.0f);
    CHECK(kern_ggml_expf(-200.0f) == 0.0f);
    CHECK(isinf(kern_ggml_expf(200.0f)));
    CHECK(isnan(kern_ggml_expf(NAN)));
    /* the subnormal range is reached (ggml flushes only below -103.97) */
    const float sub = kern_ggml_expf(-100.0f);
    CHECK(sub > 0.0f && sub < FLT_MIN && ulps(sub, expf(-100.0f)) <= 2.5);
    double worst_silu = 0.0;
    for (int i = 0; i < 20000; i++) {
        const float x = gauss() * 6.0f;
        const double want = (double)x / (1.0 + exp(-(double)x));
        const double err = fabs(kern_ggml_silu(x) - want) / fmax(fabs(want), 1e-30);
        worst_silu = err > worst_silu ? err : worst_silu;
    }
    CHECKF(worst_silu < 1e-6, "kern_ggml_silu relative error %g", worst_silu);
    float g[37], u[37], y[37];
    for (int i = 0; i < 37; i++) g[i] = gauss() * 3, u[i] = gauss();
    kern_swiglu(y, g, u, 37); /* 32 approximate lanes, 5 with expf */
    for (int i = 0; i < 37; i++) {
        const double want = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
        CHECKF(fabs(y[i] - want) <= 1e-6 * fabs(want) + 1e-30, "swiglu[%d] %g vs %g", i, y[i],
               want);
    }
}

static void test_sums(void) {
    float v[16];
    double exact = 0.0;
    for (int i = 0; i < 16; i++) v[i] = (float)(i * 3 - 7), exact += v[i];
    CHECK(kern_ggml_hsum16(v) == (float)exact);
    CHECK(kern_ggml_hsum8(v) ==
          (float)(exact - (v[8] + v[9] + v[10] + v[11] + v[12] + v[13] + v[14] + v[15])));
    const int sizes[] = {1, 7, 8, 15, 16, 44, 63, 64, 65, 128, 172, 200};
    float x[200], y[200];
    uint16_t xh[200], yh[200];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int n = sizes[k];
        double dot = 0.0, mag = 0.0, doth = 0.0, magh = 0.0;
        for (int i = 0; i < n; i++) {
            x[i] = gauss(), y[i] = gauss();
            xh[i] = kern_f32_to_f16(x[i]), yh[i] = kern_f32_to_f16(y[i]);
            dot += (double)x[i] * y[i], mag += fabs((double)x[i] * y[i]);
            const double ph = (double)kern_f16_to_f32(xh[i]) * kern_f16_to_f32(yh[i]);
            doth += ph, magh += fabs(ph);
        }
        const double tol = (n + 8.0) * FLT_EPSILON * mag, tolh = (n + 8.0) * FLT_EPSILON * magh;
        CHECKF(fabs(kern_ggml_dot_f32(x, y, n) - dot) <= tol, "dot_f32 n=%d", n);
        CHECKF(fabs(kern_ggml_dot_f16(xh, yh, n) - doth) <= tolh, "dot_f16 n=%d", n);
        if (n % 16 == 0) {
            CHECKF(fabs(kern_ggml_dot_f32_x16(x, y, n) - dot) <= tol, "dot_f32_x16 n=%d", n);
            CHECKF(fabs(kern_ggml_dot_f16_x16(xh, yh, n) - doth) <= tolh, "dot_f16_x16 n=%d", n);
        }
    }
}

static void test_rope(void) {
    const int n_rot = 64;
    float cs[64], x[64], y[64];
    const float ff[32] = {1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                          4, 4, 4, 4, 4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8};
    for (int neox = 0; neox < 2; neox++)
        for (int pos = 0; pos < 300; pos += 37) {
            kern_rope_cache(cs, n_rot, (float)pos, 10000.0f, 1.0f, neox ? NULL : ff, NULL);
            for (int i = 0; i < n_rot; i++) x[i] = y[i] = gauss();
            kern_rope_apply(y, cs, n_rot, neox);
            for (int i = 0; i < n_rot / 2; i++) {
                const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
                const double c = cs[2 * i], s = cs[2 * i + 1];
                CHECK(fabs(c * c + s * s - 1.0) < 1e-6);
                const double w0 = x[a] * c - x[b] * s, w1 = x[a] * s + x[b] * c;
                const double tol = 4 * FLT_EPSILON * (fabs(x[a]) + fabs(x[b]));
                CHECKF(fabs(y[a] - w0) <= tol && fabs(y[b] - w1) <= tol, "rope pos %d pair %d", pos,
                       i);
            }
        }
}

/* One query against a cache of n_ctx positions (row stride ld), in double. */
static void attention_ref(double *out, const float *q, const float *k, const float *v, size_t ld,
                          int p0, int n, int hd, float scale) {
    double sc[512], max = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++) {
        double d = 0.0;
        for (int e = 0; e < hd; e++) d += (double)q[e] * k[(size_t)(p0 + i) * ld + e];
        sc[i] = d * scale;
        max = sc[i] > max ? sc[i] : max;
    }
    for (int i = 0; i < n; i++) sum += sc[i] = exp(sc[i] - max);
    for (int d = 0; d < hd; d++) {
        out[d] = 0.0;
        for (int i = 0; i < n; i++) out[d] += sc[i] / sum * v[(size_t)(p0 + i) * ld + d];
    }
}

static void test_attention(void) {
    enum { CTX = 300, LD = 136 };
    float *k = malloc(sizeof(float) * CTX * LD), *v = malloc(sizeof(float) * CTX * LD);
    uint16_t *kh = malloc(sizeof(uint16_t) * CTX * LD), *vh = malloc(sizeof(uint16_t) * CTX * LD);
    REQUIRE(k && v && kh && vh);
    for (int i = 0; i < CTX * LD; i++) {
        kh[i] = kern_f32_to_f16(gauss()), vh[i] = kern_f32_to_f16(gauss());
        k[i] = kern_f16_to_f32(kh[i]), v[i] = kern_f16_to_f32(vh[i]); /* same values */
    }
    const int hds[] = {8, 64, 80, 128};
    const int spans[][2] = {{0, 1}, {0, 17}, {5, 40}, {100, 200}, {13, 287}};
    float q[128], sc[CTX], out[128];
    double want[128];
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
        for (size_t b = 0; b < sizeof spans / sizeof spans[0]; b++)
            for (int mode = 0; mode < 6; mode++) {
                const int hd = hds[a], p0 = spans[b][0], n = spans[b][1];
                /* modes 4, 5: an encoder's F32 row of its text's length (its tail summed
                   one at a time), the keys its last positions or 3 masked ones after */
                const bool f16 = mode < 4 && (mode & 1), batch = mode == 2 || mode == 3;
                const int64_t n_row = mode < 4 ? KERN_ATTN_ROW_PADDED : p0 + n + (mode & 1) * 3;
                for (int e = 0; e < hd; e++)
                    q[e] = f16 ? kern_f16_to_f32(kern_f32_to_f16(gauss())) : gauss();
                const float scale = 1.0f / sqrtf((float)hd);
                const void *kb = f16 ? (const void *)(kh + (size_t)p0 * LD)
                                     : (const void *)(k + (size_t)p0 * LD);
                const void *vb = f16 ? (const void *)(vh + (size_t)p0 * LD)
                                     : (const void *)(v + (size_t)p0 * LD);
                kern_attn_scores(sc, q, kb, LD, n, hd, f16, batch);
                for (int i = 0; i < n; i++) {
                    double d = 0.0, mag = 0.0;
                    for (int e = 0; e < hd; e++) {
                        d += (double)q[e] * k[(size_t)(p0 + i) * LD + e];
                        mag += fabs((double)q[e] * k[(size_t)(p0 + i) * LD + e]);
                    }
                    CHECKF(fabs(sc[i] - d) <= (hd + 8.0) * FLT_EPSILON * mag,
                           "scores hd %d span %d+%d mode %d key %d", hd, p0, n, mode, i);
                }
                kern_attn_softmax(sc, p0, n, n_row, scale);
                double total = 0.0;
                for (int i = 0; i < n; i++) total += sc[i];
                CHECKF(fabs(total - 1.0) < 1e-5, "softmax sums to %.9f", total);
                kern_attn_values(out, sc, vb, LD, p0, n, n_row, hd, f16, batch);
                attention_ref(want, q, k, v, LD, p0, n, hd, scale);
                double worst = 0.0;
                for (int d = 0; d < hd; d++) worst = fmax(worst, fabs(out[d] - want[d]));
                /* f16 weights (the F16 cache rounds them) cost ~2^-11 each */
                CHECKF(worst <= (f16 ? 3e-3 : 2e-5), "attention hd %d span %d+%d mode %d: %g", hd,
                       p0, n, mode, worst);
            }
    free(k), free(v), free(kh), free(vh);
}

/* kern_ggml_gdn_step and default mode's kern_gdn_step_fast (taking turns)
 * against the delta rule in double, over several tokens of one head: sizes
 * of ggml's whole 64-lane steps, with a rest, and not of 16 lanes. */
static void test_gdn(void) {
    enum { N_MAX = 80 };
    static float st[N_MAX * N_MAX];
    static double ref[N_MAX * N_MAX];
    const int sizes[] = {64, 80, 7};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int n = sizes[si];
        for (int i = 0; i < n * n; i++) ref[i] = st[i] = gauss() * 0.1f;
        for (int step = 0; step < 4; step++) {
            float q[N_MAX], k[N_MAX], v[N_MAX], y[N_MAX];
            for (int i = 0; i < n; i++) q[i] = gauss(), k[i] = gauss() * 0.2f, v[i] = gauss();
            const float decay = 0.9f, beta = 0.6f, scale = 0.125f;
            if (n % 16 == 0 && step % 2) /* default mode's twin on alternate tokens */
                kern_gdn_step_fast(st, q, k, v, decay, beta, scale, n, y);
            else
                kern_ggml_gdn_step(st, q, k, v, decay, beta, scale, n, y);
            double worst = 0.0;
            for (int c = 0; c < n; c++) { /* row c: the state's column that v[c] reads */
                double dot = 0.0;
                for (int i = 0; i < n; i++) dot += (ref[c * n + i] *= decay) * k[i];
                const double d = (v[c] - dot) * beta;
                double out = 0.0;
                for (int i = 0; i < n; i++) out += (ref[c * n + i] += k[i] * d) * q[i];
                worst = fmax(worst, fabs(out * scale - y[c]));
            }
            for (int i = 0; i < n * n; i++) worst = fmax(worst, fabs(ref[i] - st[i]));
            CHECKF(worst < 1e-4, "gdn step, %d states, token %d: off by %g", n, step, worst);
        }
    }
}

/* kern_matmul_ggml against kern_matmul, which reaches the same integer sums
 * and scales through the dispatched kernels in another order. Rows of 160
 * (5 blocks of 32: IQ4_NL's one-token order ends on a lone block). */
static void test_matmul(hr_pool *pool) {
    const kern_type types[] = {KERN_F32,  KERN_F16,    KERN_Q8_0,   KERN_Q4_0, KERN_Q5_0,
                               KERN_Q4_1, KERN_Q5_1,   KERN_Q4_K,   KERN_Q5_K, KERN_Q6_K,
                               KERN_BF16, KERN_IQ4_NL, KERN_IQ4_XS, KERN_Q2_K, KERN_Q3_K};
    const int toks[] = {1, 2, 3, 5, 8, 13};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const kern_type t = types[ti];
        const kern_type_info *info = kern_type_get((uint32_t)t);
        const int n_cols = info->block_size == 256 ? 512 : 160, n_rows = 24;
        const size_t rb = kern_row_bytes(t, n_cols);
        uint8_t *w = malloc(rb * n_rows);
        float *wf = malloc(sizeof(float) * (size_t)n_rows * n_cols);
        float *x = malloc(sizeof(float) * 13 * (size_t)n_cols);
        float *y0 = malloc(sizeof(float) * 13 * n_rows), *y1 = malloc(sizeof(float) * 13 * n_rows);
        void *scratch = malloc(kern_matmul_scratch_bytes(t, n_cols, 13) + 1);
        REQUIRE(w && wf && x && y0 && y1 && scratch);
        for (int r = 0; r < n_rows; r++) {
            for (int c = 0; c < n_cols; c++) wf[(size_t)r * n_cols + c] = gauss() * 0.2f;
            kern_ref_quantize_row(t, wf + (size_t)r * n_cols, w + (size_t)r * rb, n_cols);
            kern_ref_dequantize_row(t, w + (size_t)r * rb, wf + (size_t)r * n_cols, n_cols);
        }
        for (int i = 0; i < 13 * n_cols; i++) x[i] = gauss() * (float)(1 + i % 5);
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++)
            for (int repack = 0; repack < 2; repack++) {
                const int nt = toks[k];
                kern_matmul(pool, t, w, n_rows, n_cols, x, nt, y0, n_rows, scratch);
                kern_matmul_ggml(pool, t, w, n_rows, n_cols, x, nt, y1, n_rows, scratch, repack);
                for (int i = 0; i < nt; i++)
                    for (int r = 0; r < n_rows; r++) {
                        double mag = 0.0;
                        for (int c = 0; c < n_cols; c++)
                            mag += fabs((double)wf[(size_t)r * n_cols + c] * x[i * n_cols + c]);
                        const float a = y0[i * n_rows + r], b = y1[i * n_rows + r];
                        CHECKF(fabs(a - b) <= 1e-5 * mag + 1e-6,
                               "%s n_tok %d repack %d row %d: %g vs %g", info->name, nt, repack, r,
                               a, b);
                    }
            }
        free(w), free(wf), free(x), free(y0), free(y1), free(scratch);
    }
}

int main(void) {
    test_expf();
    test_sums();
    test_rope();
    test_attention();
    test_gdn();
    hr_pool *pool = NULL;
    REQUIRE(hr_pool_new(2, &pool) == HEARTH_OK);
    test_matmul(pool);
    hr_pool_free(pool);
    /* the switch */
    const bool was = kern_exact();
    kern_set_exact(!was);
    CHECK(kern_exact() == !was);
    kern_set_exact(was);
    CHECK(kern_exact() == was);
    return test_done("ggml_math");
}
