/*
 * ref_quants.c - the type table, half-precision conversions and the scalar
 * references for the float types and the 32-element block formats (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q8_1). These are the specification the SIMD kernels
 * are tested against.
 *
 * Spec: ggml's quantize_row_*_ref / dequantize_row_* (ggml-quants.c) and the
 * generic dot products (ggml-cpu/quants.c, vec.cpp). Quantization must give
 * the same bytes as llama-quantize, so every float operation below is done in
 * the same order and precision as there; do not "simplify" an expression
 * (x * (1/d) is not x / d, (a*b)*c is not a*(b*c)). Contraction to FMA
 * would change results too: gcc in ISO C mode does not contract, clang is told
 * not to below.
 */
#include "kernels/kern_ref.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- type table ---------------------------------------------------------- */

#define KT_TABLE_N                                                                                 \
    43 /* ggml ids 0..42 (40..42: NVFP4, Q1_0, Q2_0 - newer than KERN_TYPE_COUNT)                  \
        */

#define KT(nm, bs, bb, vdt, sup)                                                                   \
    { nm, bs, bb, (kern_type)(vdt), sup }

/* Entries with a NULL name are ids GGML never had or has removed (Q4_2,
 * Q4_3, the Q4_0_x_y / IQ4_NL_x_y repacked ids): kern_type_get says NULL. */
static const kern_type_info k_types[KT_TABLE_N] = {
    [KERN_F32] = KT("f32", 1, 4, KERN_F32, true),
    [KERN_F16] = KT("f16", 1, 2, KERN_F16, true),
    [KERN_Q4_0] = KT("q4_0", QK4_0, sizeof(block_q4_0), KERN_Q8_0, true),
    [KERN_Q4_1] = KT("q4_1", QK4_1, sizeof(block_q4_1), KERN_Q8_1, true),
    [KERN_Q5_0] = KT("q5_0", QK5_0, sizeof(block_q5_0), KERN_Q8_0, true),
    [KERN_Q5_1] = KT("q5_1", QK5_1, sizeof(block_q5_1), KERN_Q8_1, true),
    [KERN_Q8_0] = KT("q8_0", QK8_0, sizeof(block_q8_0), KERN_Q8_0, true),
    [KERN_Q8_1] = KT("q8_1", QK8_1, sizeof(block_q8_1), KERN_Q8_1, true),
    [KERN_Q2_K] = KT("q2_K", QK_K, 84, KERN_Q8_K, true),
    [KERN_Q3_K] = KT("q3_K", QK_K, 110, KERN_Q8_K, true),
    [KERN_Q4_K] = KT("q4_K", QK_K, sizeof(block_q4_K), KERN_Q8_K, true),
    [KERN_Q5_K] = KT("q5_K", QK_K, sizeof(block_q5_K), KERN_Q8_K, true),
    [KERN_Q6_K] = KT("q6_K", QK_K, sizeof(block_q6_K), KERN_Q8_K, true),
    [KERN_Q8_K] = KT("q8_K", QK_K, sizeof(block_q8_K), KERN_Q8_K, true),
    [16] = KT("iq2_xxs", QK_K, 66, KERN_Q8_K, false),
    [17] = KT("iq2_xs", QK_K, 74, KERN_Q8_K, false),
    [18] = KT("iq3_xxs", QK_K, 98, KERN_Q8_K, false),
    [19] = KT("iq1_s", QK_K, 50, KERN_Q8_K, false),
    [KERN_IQ4_NL] = KT("iq4_nl", QK4_NL, sizeof(block_iq4_nl), KERN_Q8_0, true),
    [21] = KT("iq3_s", QK_K, 110, KERN_Q8_K, false),
    [22] = KT("iq2_s", QK_K, 82, KERN_Q8_K, false),
    [KERN_IQ4_XS] = KT("iq4_xs", QK_K, sizeof(block_iq4_xs), KERN_Q8_K, true),
    [24] = KT("i8", 1, 1, 24, false),
    [25] = KT("i16", 1, 2, 25, false),
    [26] = KT("i32", 1, 4, 26, false),
    [27] = KT("i64", 1, 8, 27, false),
    [28] = KT("f64", 1, 8, 28, false),
    [29] = KT("iq1_m", QK_K, 56, KERN_Q8_K, false),
    [KERN_BF16] = KT("bf16", 1, 2, KERN_BF16, true),
    [34] = KT("tq1_0", QK_K, 54, KERN_Q8_K, false),
    [35] = KT("tq2_0", QK_K, 66, KERN_Q8_K, false),
    [39] = KT("mxfp4", 32, 17, KERN_Q8_0, false),
    [40] = KT("nvfp4", 64, 36, KERN_Q8_0, false),
    [41] = KT("q1_0", 128, 18, KERN_Q8_0, false),
    [42] = KT("q2_0", 64, 18, KERN_Q8_0, false),
};

const kern_type_info *kern_type_get(uint32_t type) {
    if (type >= KT_TABLE_N || !k_types[type].name) return NULL;
    return &k_types[type];
}

size_t kern_row_bytes(kern_type type, int64_t n) {
    const kern_type_info *ti = kern_type_get((uint32_t)type);
    if (!ti || n < 0 || n % ti->block_size != 0) return 0;
    uint64_t bytes;
    if (!hr_mul_ok((uint64_t)(n / ti->block_size), ti->block_bytes, &bytes) || bytes > SIZE_MAX)
        return 0;
    return (size_t)bytes;
}

/* ---- half-precision conversions ------------------------------------------ */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float kern_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in f32 */
        const float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) /* inf; NaNs come out quiet, as from vcvtph2ps and ggml */
        return f32_from_bits(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0));
    return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

/* Round to nearest, ties to even, as F16C's vcvtps2ph with imm 0. NaNs keep
 * the top payload bits and become quiet, as the instruction does. */
uint16_t kern_f32_to_f16(float f) {
    const uint32_t w = f32_bits(f);
    const uint16_t sign = (uint16_t)((w >> 16) & 0x8000);
    const uint32_t a = w & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                                 /* normal half: rebias 127 -> 15 */
        const uint32_t r = a - 0x38000000u;
        uint32_t h = r >> 13;
        const uint32_t rem = r & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry moves into the exponent */
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u) return sign; /* <= 2^-25: the tie with 2^-24 goes to even (zero) */
    /* subnormal half: value = m * 2^(e-150), in units of 2^-24 that is m >> (126 - e) */
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e; /* 14..24 */
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float kern_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

/* As ggml: round to nearest even; NaNs become quiet; subnormals are kept. */
uint16_t kern_f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

#define H2F(h) kern_f16_to_f32(h)
#define F2H(f) kern_f32_to_f16(f)

/* ---- float types ----------------------------------------------------------- */

void kern_ref_quantize_f32(const float *x, void *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void kern_ref_dequantize_f32(const void *x, float *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

/* ggml's scalar ggml_vec_dot_f32: float products summed in double. */
void kern_ref_vec_dot_f32(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(a[i] * b[i]);
    *s = (float)sum;
}

void kern_ref_quantize_f16(const float *x, void *y, int64_t n) {
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = F2H(x[i]);
}

void kern_ref_dequantize_f16(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = H2F(h[i]);
}

void kern_ref_vec_dot_f16(int64_t n, float *s, const void *w, const void *x) {
    const uint16_t *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(H2F(a[i]) * H2F(b[i]));
    *s = (float)sum;
}

void kern_ref_quantize_bf16(const float *x, void *y, int64_t n) {
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = kern_f32_to_bf16(x[i]);
}

void kern_ref_dequantize_bf16(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = kern_bf16_to_f32(h[i]);
}

void kern_ref_vec_dot_bf16(int64_t n, float *s, const void *w, const void *x) {
    const uint16_t *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(kern_bf16_to_f32(a[i]) * kern_bf16_to_f32(b[i]));
    *s = (float)sum;
}

/* ---- Q4_0, Q5_0: symmetric, scale from the signed value of largest magnitude */

/* The first element of largest magnitude, with its sign. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

void kern_ref_quantize_q4_0(const float *x, void *vy, int64_t n) {
    block_q4_0 *y = vy;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            /* truncation of a value in [0.5, 16.5]: rounds half up */
            const int q0 = (int)(x[j] * id + 8.5f);
            const int q1 = (int)(x[QK4_0 / 2 + j] * id + 8.5f);
            y[i].qs[j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

void kern_ref_dequantize_q4_0(const void *vx, float *y, int64_t n) {
    const block_q4_0 *x = vx;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void kern_ref_vec_dot_q4_0(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q4_0 *w = vw;
    const block_q8_0 *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        /* sum((q - 8) * y) computed as sum(q * y) - 8 * sum(y): the same
         * integer, but gcc 12 with AVX-VNNI (-march=native on recent x86)
         * vectorizes the direct form into vpdpbusd and gets it wrong. */
        int sumqy = 0, sumy = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            sumqy += (w[i].qs[j] & 0x0F) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + QK8_0 / 2];
            sumy += x[i].qs[j] + x[i].qs[j + QK8_0 / 2];
        }
        sum += (float)(sumqy - 8 * sumy) * H2F(w[i].d) * H2F(x[i].d);
    }
    *s = sum;
}

void kern_ref_quantize_q5_0(const float *x, void *vy, int64_t n) {
    block_q5_0 *y = vy;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int q0 = (int)(x[j] * id + 16.5f);
            int q1 = (int)(x[QK5_0 / 2 + j] * id + 16.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh); /* little-endian, as stored in files */
    }
}

void kern_ref_dequantize_q5_0(const void *vx, float *y, int64_t n) {
    const block_q5_0 *x = vx;
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        const float d = H2F(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + QK5_0 / 2)) & 1) << 4;
            y[j] = (float)(((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + QK5_0 / 2] = (float)(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void kern_ref_vec_dot_q5_0(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q5_0 *w = vw;
    const block_q8_0 *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        uint32_t qh;
        memcpy(&qh, w[i].qh, sizeof qh);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + QK8_0 / 2)) & 1) << 4;
            sumi0 += (((w[i].qs[j] & 0x0F) | h0) - 16) * x[i].qs[j];
            sumi1 += (((w[i].qs[j] >> 4) | h1) - 16) * x[i].qs[j + QK8_0 / 2];
        }
        sum += (H2F(w[i].d) * H2F(x[i].d)) * (float)(sumi0 + sumi1);
    }
    *s = sum;
}

/* ---- Q4_1, Q5_1: affine, scale and minimum from the block's range ------------ */

static void block_min_max(const float *x, int n, float *min, float *max) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

void kern_ref_quantize_q4_1(const float *x, void *vy, int64_t n) {
    block_q4_1 *y = vy;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float min, max;
        block_min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = (int)((x[j] - min) * id + 0.5f);
            const int q1 = (int)((x[QK4_1 / 2 + j] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

void kern_ref_dequantize_q4_1(const void *vx, float *y, int64_t n) {
    const block_q4_1 *x = vx;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0F) * d + m;
            y[j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

void kern_ref_vec_dot_q4_1(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q4_1 *w = vw;
    const block_q8_1 *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            sumi0 += (w[i].qs[j] & 0x0F) * x[i].qs[j];
            sumi1 += (w[i].qs[j] >> 4) * x[i].qs[j + QK8_1 / 2];
        }
        sum += (H2F(w[i].d) * H2F(x[i].d)) * (float)(sumi0 + sumi1) + H2F(w[i].m) * H2F(x[i].s);
    }
    *s = sum;
}

void kern_ref_quantize_q5_1(const float *x, void *vy, int64_t n) {
    block_q5_1 *y = vy;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float min, max;
        block_min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            /* ggml stores the truncation unclamped in a uint8_t and keeps 5
             * bits (its rounding, bit for bit, not lround's) */
            // NOLINTBEGIN(bugprone-incorrect-roundings)
            const int q0 = (uint8_t)(int)((x[j] - min) * id + 0.5f);
            const int q1 = (uint8_t)(int)((x[QK5_1 / 2 + j] - min) * id + 0.5f);
            // NOLINTEND(bugprone-incorrect-roundings)
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

void kern_ref_dequantize_q5_1(const void *vx, float *y, int64_t n) {
    const block_q5_1 *x = vx;
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + QK5_1 / 2)) & 1) << 4;
            y[j] = (float)((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[j + QK5_1 / 2] = (float)((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void kern_ref_vec_dot_q5_1(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q5_1 *w = vw;
    const block_q8_1 *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        uint32_t qh;
        memcpy(&qh, w[i].qh, sizeof qh);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + QK8_1 / 2)) & 1) << 4;
            sumi0 += ((w[i].qs[j] & 0x0F) | h0) * x[i].qs[j];
            sumi1 += ((w[i].qs[j] >> 4) | h1) * x[i].qs[j + QK8_1 / 2];
        }
        sum += (H2F(w[i].d) * H2F(x[i].d)) * (float)(sumi0 + sumi1) + H2F(w[i].m) * H2F(x[i].s);
    }
    *s = sum;
}

/* ---- Q8_0, Q8_1 ----------------------------------------------------------------- */

static float block_absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

/* Weight format reference: id = 1/d, roundf (half away from zero). */
void kern_ref_quantize_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float d = block_absmax(x, QK8_0) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void kern_ref_dequantize_q8_0(const void *vx, float *y, int64_t n) {
    const block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

void kern_ref_vec_dot_q8_0(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q8_0 *w = vw;
    const block_q8_0 *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += w[i].qs[j] * x[i].qs[j];
        sum += (float)sumi * (H2F(w[i].d) * H2F(x[i].d));
    }
    *s = sum;
}

void kern_ref_quantize_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = block_absmax(x, QK8_1) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = F2H((float)sum * d);
    }
}

/* ggml has no dequantize or dot for Q8_1 (it is only ever an activation
 * format); these complete the table: dequantize ignores s, the dot is Q8_0's. */
void kern_ref_dequantize_q8_1(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

void kern_ref_vec_dot_q8_1(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q8_1 *w = vw;
    const block_q8_1 *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_1; j++) sumi += w[i].qs[j] * x[i].qs[j];
        sum += (float)sumi * (H2F(w[i].d) * H2F(x[i].d));
    }
    *s = sum;
}

/* ---- activation quantizers as llama.cpp's x86 build runs them --------------------
 * ggml-cpu/arch/x86/quants.c quantize_row_q8_0/q8_1 (the AVX path, taken by
 * every AVX2 and AVX-512 build): the multiplier is 127/amax (not 1/d with
 * d = amax/127, which can differ in the last bit) and _mm256_round_ps rounds
 * half to even. kern_nearest_int is exactly that rounding for |v| <= 127. */

void kern_quantize_q8_0_act(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float amax = block_absmax(x, QK8_0);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = F2H(amax / 127.f);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)kern_nearest_int(x[j] * id);
    }
}

void kern_quantize_q8_1_act(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float amax = block_absmax(x, QK8_1);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = F2H(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)kern_nearest_int(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = F2H(d * (float)sum);
    }
}

/* ---- type-generic entry points ------------------------------------------------------ */

void kern_ref_quantize_row(kern_type type, const float *x, void *y, int64_t n) {
    switch (type) {
    case KERN_F32: kern_ref_quantize_f32(x, y, n); break;
    case KERN_F16: kern_ref_quantize_f16(x, y, n); break;
    case KERN_BF16: kern_ref_quantize_bf16(x, y, n); break;
    case KERN_Q4_0: kern_ref_quantize_q4_0(x, y, n); break;
    case KERN_Q4_1: kern_ref_quantize_q4_1(x, y, n); break;
    case KERN_Q5_0: kern_ref_quantize_q5_0(x, y, n); break;
    case KERN_Q5_1: kern_ref_quantize_q5_1(x, y, n); break;
    case KERN_Q8_0: kern_ref_quantize_q8_0(x, y, n); break;
    case KERN_Q8_1: kern_ref_quantize_q8_1(x, y, n); break;
    case KERN_Q2_K: kern_ref_quantize_q2_K(x, y, n); break;
    case KERN_Q3_K: kern_ref_quantize_q3_K(x, y, n); break;
    case KERN_Q4_K: kern_ref_quantize_q4_K(x, y, n); break;
    case KERN_Q5_K: kern_ref_quantize_q5_K(x, y, n); break;
    case KERN_Q6_K: kern_ref_quantize_q6_K(x, y, n); break;
    case KERN_Q8_K: kern_ref_quantize_q8_K(x, y, n); break;
    case KERN_IQ4_NL: kern_ref_quantize_iq4_nl(x, y, n); break;
    case KERN_IQ4_XS: kern_ref_quantize_iq4_xs(x, y, n); break;
    default: break; /* unsupported: callers check kern_type_info.supported */
    }
}

void kern_ref_dequantize_row(kern_type type, const void *x, float *y, int64_t n) {
    switch (type) {
    case KERN_F32: kern_ref_dequantize_f32(x, y, n); break;
    case KERN_F16: kern_ref_dequantize_f16(x, y, n); break;
    case KERN_BF16: kern_ref_dequantize_bf16(x, y, n); break;
    case KERN_Q4_0: kern_ref_dequantize_q4_0(x, y, n); break;
    case KERN_Q4_1: kern_ref_dequantize_q4_1(x, y, n); break;
    case KERN_Q5_0: kern_ref_dequantize_q5_0(x, y, n); break;
    case KERN_Q5_1: kern_ref_dequantize_q5_1(x, y, n); break;
    case KERN_Q8_0: kern_ref_dequantize_q8_0(x, y, n); break;
    case KERN_Q8_1: kern_ref_dequantize_q8_1(x, y, n); break;
    case KERN_Q2_K: kern_ref_dequantize_q2_K(x, y, n); break;
    case KERN_Q3_K: kern_ref_dequantize_q3_K(x, y, n); break;
    case KERN_Q4_K: kern_ref_dequantize_q4_K(x, y, n); break;
    case KERN_Q5_K: kern_ref_dequantize_q5_K(x, y, n); break;
    case KERN_Q6_K: kern_ref_dequantize_q6_K(x, y, n); break;
    case KERN_Q8_K: kern_ref_dequantize_q8_K(x, y, n); break;
    case KERN_IQ4_NL: kern_ref_dequantize_iq4_nl(x, y, n); break;
    case KERN_IQ4_XS: kern_ref_dequantize_iq4_xs(x, y, n); break;
    default: break;
    }
}

void kern_ref_vec_dot(kern_type type, int64_t n, float *s, const void *w, const void *x) {
    switch (type) {
    case KERN_F32: kern_ref_vec_dot_f32(n, s, w, x); break;
    case KERN_F16: kern_ref_vec_dot_f16(n, s, w, x); break;
    case KERN_BF16: kern_ref_vec_dot_bf16(n, s, w, x); break;
    case KERN_Q4_0: kern_ref_vec_dot_q4_0(n, s, w, x); break;
    case KERN_Q4_1: kern_ref_vec_dot_q4_1(n, s, w, x); break;
    case KERN_Q5_0: kern_ref_vec_dot_q5_0(n, s, w, x); break;
    case KERN_Q5_1: kern_ref_vec_dot_q5_1(n, s, w, x); break;
    case KERN_Q8_0: kern_ref_vec_dot_q8_0(n, s, w, x); break;
    case KERN_Q8_1: kern_ref_vec_dot_q8_1(n, s, w, x); break;
    case KERN_Q2_K: kern_ref_vec_dot_q2_K(n, s, w, x); break;
    case KERN_Q3_K: kern_ref_vec_dot_q3_K(n, s, w, x); break;
    case KERN_Q4_K: kern_ref_vec_dot_q4_K(n, s, w, x); break;
    case KERN_Q5_K: kern_ref_vec_dot_q5_K(n, s, w, x); break;
    case KERN_Q6_K: kern_ref_vec_dot_q6_K(n, s, w, x); break;
    case KERN_Q8_K: kern_ref_vec_dot_q8_K(n, s, w, x); break;
    case KERN_IQ4_NL: kern_ref_vec_dot_iq4_nl(n, s, w, x); break;
    case KERN_IQ4_XS: kern_ref_vec_dot_iq4_xs(n, s, w, x); break;
    default: *s = 0.0f; break;
    }
}
