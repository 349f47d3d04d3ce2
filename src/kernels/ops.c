/*
 * ops.c - the element-wise and row operations of a transformer block and the
 * attention of one query. Each reproduces the arithmetic of llama.cpp's CPU
 * backend (x86-64 AVX-512 build) bit for bit: double sums in norms, the
 * iterative RoPE angle with the multiply-adds its compiler fuses, GELU
 * through an FP16 table, SiLU and softmax with ggml's approximate exp, and
 * the lane order of its attention dot products (ggml_math.c has the
 * primitives). Bit equality matters because activations are then quantized.
 */
#include "kernels.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* The fused multiply-adds below are spelled out with fmaf; no others may be
 * formed (gcc does not in ISO C mode, clang must be told). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

void kern_rms_norm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

/* The dimension (of n_rot) whose wavelength makes n_rot_turns turns over
 * n_ctx_orig positions, as ggml computes it. */
static float yarn_corr_dim(int n_rot, int n_ctx_orig, float n_rot_turns, float base) {
    const float pi = 3.14159265358979323846f; /* (float)M_PI */
    return (float)n_rot * logf((float)n_ctx_orig / (n_rot_turns * 2 * pi)) / (2 * logf(base));
}

void kern_rope_yarn_dims(int n_rot, int n_ctx_orig, float base, float beta_fast, float beta_slow,
                         float dims[2]) {
    const float start = floorf(yarn_corr_dim(n_rot, n_ctx_orig, beta_fast, base)),
                end = ceilf(yarn_corr_dim(n_rot, n_ctx_orig, beta_slow, base));
    dims[0] = start > 0.0f ? start : 0.0f;
    dims[1] = end < (float)(n_rot - 1) ? end : (float)(n_rot - 1);
}

KERN_FMA_CLONES void kern_rope_cache(float *cos_sin, int n_rot, float pos, float base, float scale,
                                     const float *freq_factors, const float *yarn_dims) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = pos;
    for (int i = 0; i < n_rot / 2; i++) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float extrap = theta / ff;
        float t = scale * extrap;
        if (yarn_dims) { /* ggml's rope_yarn, ext_factor 1: its compiler fuses the mix */
            const float lo = yarn_dims[0], span = yarn_dims[1] - lo;
            const float y = ((float)i - lo) / (span > 0.001f ? span : 0.001f);
            const float ramp = 1.0f - (y > 1.0f ? 1.0f : y < 0.0f ? 0.0f : y);
            t = fmaf(t, 1.0f - ramp, extrap * ramp);
        }
        cos_sin[2 * i] = cosf(t);
        cos_sin[2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
}

KERN_FMA_CLONES void kern_rope_apply(float *x, const float *cos_sin, int n_rot, bool neox) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
        float *a = neox ? &x[i] : &x[2 * i];
        float *b = neox ? &x[i + half] : &x[2 * i + 1];
        const float x0 = *a, x1 = *b;
        /* ggml's compiler fuses the first product of each line. */
        *a = fmaf(x0, c, -(x1 * s));
        *b = fmaf(x0, s, x1 * c);
    }
}

/* --- attention (llama.cpp's build_attn_mha without flash attention) ---
 * ggml computes, per query head, kq = K^T q over the whole cache (masked
 * positions get -inf), softmax(kq * scale + mask), then V kq. The order of
 * the float additions depends on the cache position of each key, not on its
 * index among the keys a query sees, so these take the absolute position p0
 * of their first key. ggml's cache is at least as long as the last position
 * and a multiple of 64 (it pads it to 256), which these assume. */

/* f16 rounding of an activation, as ggml converts src1 to the cache type. */
static inline float f16_round(float x) { return kern_f16_to_f32(kern_f32_to_f16(x)); }

/* One key of an F16 cache against q rounded to f16 (by ggml when it
 * converts src1; here q16 holds the rounded values, or q itself is rounded
 * on the fly when q16 is NULL): tinyBLAS F16 (several tokens and
 * hd % 16 == 0) or ggml_vec_dot_f16. */
KERN_FMA_CLONES static float score_f16(const uint16_t *kr, const float *q16, const float *q, int hd,
                                       bool tiny) {
#define QR(e) (q16 ? q16[e] : f16_round(q[e]))
    if (tiny) {
        float acc[16] = {0};
        for (int e = 0; e < hd; e += 16)
            for (int r = 0; r < 16; r++)
                acc[r] = fmaf(kern_f16_to_f32(kr[e + r]), QR(e + r), acc[r]);
        return kern_ggml_hsum16(acc);
    }
    float acc[4][16] = {{0}};
    const int np = hd & ~63;
    for (int e = 0; e < np; e += 64)
        for (int j = 0; j < 4; j++)
            for (int r = 0; r < 16; r++)
                acc[j][r] =
                    fmaf(kern_f16_to_f32(kr[e + 16 * j + r]), QR(e + 16 * j + r), acc[j][r]);
    double sum = kern_ggml_reduce4x16(acc);
    for (int e = np; e < hd; e++) sum += (double)(kern_f16_to_f32(kr[e]) * QR(e));
    return (float)sum;
#undef QR
}

void kern_attn_scores(float *sc, const float *q, const void *k, size_t ld, int64_t n, int hd,
                      bool k_f16, bool batch) {
    if (!k_f16) { /* ggml_vec_dot_f32: q is not contiguous, so tinyBLAS is not tried */
        for (int64_t i = 0; i < n; i++)
            sc[i] = kern_ggml_dot_f32((const float *)k + (size_t)i * ld, q, hd);
        return;
    }
    float q16[512];
    const bool pre = hd <= 512; /* larger heads round q on the fly */
    for (int e = 0; pre && e < hd; e++) q16[e] = f16_round(q[e]);
    for (int64_t i = 0; i < n; i++)
        sc[i] = score_f16((const uint16_t *)k + (size_t)i * ld, pre ? q16 : NULL, q, hd,
                          batch && hd % 16 == 0);
}

/* ggml_compute_forward_soft_max_f32: x * scale, max, then ggml_vec_soft_max_f32
 * exponentiates 16 row positions at a time (from position 0) with
 * ggml_v_expf and adds each group's 16-lane tree to a double, then the
 * row's last n_row % 16 one at a time with libm expf; the weights are
 * multiplied by (float)(1 / sum). Masked positions contribute exact zeros. */
KERN_FMA_CLONES void kern_attn_softmax(float *x, int64_t p0, int64_t n, int64_t n_row,
                                       float scale) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] *= scale;
        max = x[i] > max ? x[i] : max;
    }
    const int64_t tail = n_row & ~(int64_t)15, end = p0 + n;
    double sum = 0.0;
    for (int64_t g = p0 & ~(int64_t)15; g < end && g < tail; g += 16) {
        float v[16];
        for (int r = 0; r < 16; r++) {
            const int64_t i = g + r - p0;
            v[r] = 0.0f;
            if (i >= 0 && i < n) x[i] = v[r] = kern_ggml_expf(x[i] - max);
        }
        sum += (double)kern_ggml_hsum16(v);
    }
    for (int64_t p = p0 > tail ? p0 : tail; p < end; p++) {
        x[p - p0] = expf(x[p - p0] - max);
        sum += (double)x[p - p0];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

/* ggml_scale by 1/cap, ggml_tanh (libm tanhf), ggml_scale by cap: the
 * three ops of llama.cpp's graphs for soft-capping, each rounding. */
void kern_softcap(float *x, int64_t n, float cap) {
    const float inv = 1.0f / cap;
    for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i] * inv) * cap;
}

/* acc[d] += v[d] w for the 16 (or nd) output dims of one cache row. */
KERN_FMA_CLONES static void axpy16(float *acc, const float *v, float w) {
    for (int d = 0; d < 16; d++) acc[d] = fmaf(v[d], w, acc[d]);
}
KERN_FMA_CLONES static void axpy16_f16(float *acc, const uint16_t *v, float w) {
    for (int d = 0; d < 16; d++) acc[d] = fmaf(kern_f16_to_f32(v[d]), w, acc[d]);
}

/* out = sum_i w[i] v_i. Several tokens: tinyBLAS, one 16-lane accumulator
 * per output, lane = position % 16. One token: ggml_vec_dot over the row,
 * four accumulators chosen by (position / 16) % 4, and the row's last
 * n_row % 64 added in order after their reduction (a cache's row has no
 * such rest). With an F16 cache the weights are rounded to f16 first.
 * Output dims go 16 at a time so the accumulators stay small; a last
 * partial group is padded. */
void kern_attn_values(float *out, const float *w, const void *v, size_t ld, int64_t p0, int64_t n,
                      int64_t n_row, int hd, bool v_f16, bool batch) {
    enum { D = 16 };
    batch = batch && hd % 4 == 0; /* tinyBLAS needs whole 4-row tiles */
    const int64_t tail = batch ? n_row : n_row & ~(int64_t)63;
    /* the keys before the rest: tail - p0, within [0, n] */
    const int64_t n_vec = tail <= p0 ? 0 : tail - p0 < n ? tail - p0 : n;
    /* gcc vectorizes ggml's loop over the row's rest: products of 16 and
     * then 8 rounded before their in-order adds, its last n_row % 8 fused
     * (masked positions add exact zeros either way) */
    const int64_t left = n_row - tail,
                  fused_from = tail + left / 16 * 16 + (left % 16 >= 8 ? 8 : 0);
    for (int d0 = 0; d0 < hd; d0 += D) {
        const int nd = hd - d0 < D ? hd - d0 : D;
        float acc[4][16][D];
        memset(acc, 0, sizeof acc);
        for (int64_t i = 0; i < n_vec; i++) {
            const int64_t pos = p0 + i;
            float *a = acc[batch ? 0 : (pos >> 4) & 3][pos & 15];
            if (v_f16) {
                const uint16_t *vr = (const uint16_t *)v + (size_t)i * ld + d0;
                const float wi = f16_round(w[i]);
                if (nd == D) {
                    axpy16_f16(a, vr, wi);
                } else {
                    uint16_t pad[D] = {0};
                    memcpy(pad, vr, (size_t)nd * sizeof *pad);
                    axpy16_f16(a, pad, wi);
                }
            } else {
                const float *vr = (const float *)v + (size_t)i * ld + d0;
                if (nd == D) {
                    axpy16(a, vr, w[i]);
                } else {
                    float pad[D] = {0};
                    memcpy(pad, vr, (size_t)nd * sizeof *pad);
                    axpy16(a, pad, w[i]);
                }
            }
        }
        for (int d = 0; d < nd; d++) {
            float lanes[4][16];
            for (int j = 0; j < 4; j++)
                for (int r = 0; r < 16; r++) lanes[j][r] = acc[j][r][d];
            float o = batch ? kern_ggml_hsum16(lanes[0]) : kern_ggml_reduce4x16(lanes);
            for (int64_t i = n_vec; i < n; i++) { /* F32: an F16 row is a cache's, padded */
                const float x = ((const float *)v)[(size_t)i * ld + (size_t)(d0 + d)];
                o = p0 + i < fused_from ? o + x * w[i] : fmaf(x, w[i], o);
            }
            out[d0 + d] = o;
        }
    }
}

/* ggml_vec_swiglu_f32: 16 at a time with ggml_v_silu, the n % 16 rest with
 * expf. */
KERN_FMA_CLONES void kern_swiglu(float *y, const float *g, const float *u, int64_t n) {
    const int64_t nv = n & ~(int64_t)15;
    for (int64_t i = 0; i < nv; i++) y[i] = kern_ggml_silu(g[i]) * u[i];
    for (int64_t i = nv; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* kern_swiglu 16 elements at a time: kern_ggml_silu's operations spelled
 * out per lane (fmaf, the 2^n built in the exponent field while n is in the
 * normal range, the scalar function for the rare lanes outside it) so that
 * the lane loops vectorise; the same bits as kern_swiglu. */
KERN_FMA_CLONES_512 void kern_swiglu_fast(float *restrict y, const float *restrict g,
                                          const float *restrict u, int64_t n) {
    const int64_t nv = n & ~(int64_t)15;
    for (int64_t i0 = 0; i0 < nv; i0 += 16) {
        float e[16];
        int outside = 0; /* lanes whose 2^n is not a normal float */
        for (int r = 0; r < 16; r++) {
            const float x = 0.0f - g[i0 + r];
            const float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f);
            const float n2 = z - 0x1.8p23f;
            const float b = fmaf(-n2, 0x1.7f7d1cp-20f, fmaf(-n2, 0x1.62e4p-1f, x));
            const float v = b * b;
            const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), v,
                                      fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                                 v, fmaf(0x1.ffffecp-1f, b, 1.0f));
            /* NaN (a NaN activation) clamps too: converting it to int is undefined */
            const float nc = n2 >= -126.0f ? (n2 <= 127.0f ? n2 : 127.0f) : -126.0f;
            const uint32_t bits = (uint32_t)((int32_t)nc + 127) << 23;
            float p;
            memcpy(&p, &bits, sizeof p);
            e[r] = j * p;
            outside |= nc != n2;
        }
        if (outside) /* rare: the scalar function for those lanes */
            for (int r = 0; r < 16; r++) {
                const float x = 0.0f - g[i0 + r];
                const float n2 = fmaf(x, 0x1.715476p+0f, 0x1.8p23f) - 0x1.8p23f;
                if (!(n2 >= -126.0f && n2 <= 127.0f)) e[r] = kern_ggml_expf(x);
            }
        for (int r = 0; r < 16; r++) y[i0 + r] = g[i0 + r] / (1.0f + e[r]) * u[i0 + r];
    }
    for (int64_t i = nv; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* 16 lanes' dot product of a[0..n) and b (n a multiple of 16), then the
 * 16-lane tree. The loops run over whole groups of 16, which gcc turns into
 * vector operations at -O2. */
static inline float dot16(const float *restrict a, const float *restrict b, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] = fmaf(a[i + l], b[i + l], acc[l]);
    return kern_ggml_hsum16(acc);
}

KERN_FMA_CLONES_512 void kern_gdn_step_fast(float *restrict st, const float *restrict q,
                                            const float *restrict k, const float *restrict v,
                                            float decay, float beta, float scale, int n,
                                            float *restrict y) {
    if (n % 16) { /* the lanes want whole groups of 16 */
        kern_ggml_gdn_step(st, q, k, v, decay, beta, scale, n, y);
        return;
    }
    for (int c = 0; c < n; c++) {
        float *restrict row = st + (size_t)c * (size_t)n;
        for (int i = 0; i < n; i += 16)
            for (int l = 0; l < 16; l++) row[i + l] *= decay;
        const float delta = (v[c] - dot16(row, k, n)) * beta;
        for (int i = 0; i < n; i += 16)
            for (int l = 0; l < 16; l++) row[i + l] = fmaf(k[i + l], delta, row[i + l]);
        y[c] = dot16(row, q, n) * scale;
    }
}

/* kern_rms_norm with the sum of squares in 8 double lanes (another order
 * of the additions, which rounding to float almost always hides). */
KERN_FMA_CLONES_512 void kern_rms_norm_fast(float *y, const float *x, const float *w, int64_t n,
                                            float eps) {
    double acc[8] = {0};
    const int64_t nv = n & ~(int64_t)7;
    for (int64_t i = 0; i < nv; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)(x[i + l] * x[i + l]);
    double sum = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (int64_t i = nv; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

void kern_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t n,
                     float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i];
    const float mean = (float)sum / (float)n;
    double var = 0.0;
    int64_t i = 0;
    for (; i + 15 < n; i += 16) {
        float sq[16];
        for (int j = 0; j < 16; j++) {
            y[i + j] = x[i + j] - mean;
            sq[j] = y[i + j] * y[i + j];
        }
        var += (double)kern_ggml_hsum16(sq);
    }
    for (; i < n; i++) {
        y[i] = x[i] - mean;
        var += (double)(y[i] * y[i]);
    }
    const float scale = 1.0f / sqrtf((float)(var / (double)n) + eps);
    for (i = 0; i < n; i++) {
        y[i] *= scale;
        if (w) y[i] *= w[i];
        if (b) y[i] += b[i];
    }
}

/* ggml evaluates GELU on CPU through a 64K-entry table indexed by the FP16
 * bits of x; the golden logits of gemma3 depend on that rounding. */
static uint16_t gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    for (uint32_t i = 0; i < (1u << 16); i++) {
        const float x = kern_f16_to_f32((uint16_t)i);
        /* ggml's compiler fuses 1 + (a x) x into one multiply-add; one entry
         * (x = -1.999) differs without it. */
        const float gx = 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * fmaf(coef_a * x, x, 1.0f)));
        gelu_table[i] = kern_f32_to_f16(gx);
    }
}

void kern_geglu(float *y, const float *g, const float *u, int64_t n) {
    pthread_once(&gelu_once, gelu_table_init);
    for (int64_t i = 0; i < n; i++) {
        const float a = g[i] <= -10.0f  ? 0.0f
                        : g[i] >= 10.0f ? g[i]
                                        : kern_f16_to_f32(gelu_table[kern_f32_to_f16(g[i])]);
        y[i] = u ? a * u[i] : a;
    }
}
