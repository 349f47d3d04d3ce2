/*
 * arm_neon.c - kernels for AArch64 CPUs with the dot-product extension and
 * half-precision arithmetic (ARMv8.2-A +dotprod +fp16: Cortex-A55/A76 and
 * later, Neoverse, Apple M1 and later); the only file built with those flags.
 *
 * Integer types use sdot (vdotq_s32: 4 signed byte products summed into each
 * int32 lane), so weights are turned into signed levels in registers and
 * never widened to float. Sub-block scales of the K-quants are applied to the
 * int32 lanes; the float scale once per block. Results differ from the
 * scalar references only by float rounding; the activation quantizers are
 * bit-identical to the scalar ones (vcvtnq rounds half to even, as
 * kern_nearest_int; the fp16 scales go through kern_f32_to_f16).
 */
#include "kernels/isa.h"
#include "kernels/kern_ref.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#if defined(__linux__)
#include <sys/auxv.h>
#endif

static inline float f16_at(const kern_f16 *p) { return kern_f16_to_f32(*p); }

static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    return vdotq_s32(acc, a, b);
}

/* The 32 signed levels of a nibble block minus `off`: elements 0..15 from the
 * low nibbles, 16..31 from the high ones. */
static inline void nibbles(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(qs);
    *lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
}

/* 0x10 in byte j where bit j of the 16-bit little-endian value at qh is set. */
static inline uint8x16_t bit4_16(const uint8_t *qh) {
    static const uint8_t sel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t b = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
    return vandq_u8(vtstq_u8(b, vld1q_u8(sel)), vdupq_n_u8(0x10));
}

/* ---- 32-element block formats ---------------------------------------------------- */

static void vec_dot_q8_0(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q8_0 *w = vw;
    const block_q8_0 *x = vx;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int32x4_t p = dot16(vdupq_n_s32(0), vld1q_s8(w[i].qs), vld1q_s8(x[i].qs));
        p = dot16(p, vld1q_s8(w[i].qs + 16), vld1q_s8(x[i].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16_at(&w[i].d) * f16_at(&x[i].d));
    }
    *s = vaddvq_f32(acc);
}

static void vec_dot_q4_0(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q4_0 *w = vw;
    const block_q8_0 *x = vx;
    const int8x16_t eight = vdupq_n_s8(8);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int8x16_t lo, hi;
        nibbles(w[i].qs, &lo, &hi);
        int32x4_t p = dot16(vdupq_n_s32(0), vsubq_s8(lo, eight), vld1q_s8(x[i].qs));
        p = dot16(p, vsubq_s8(hi, eight), vld1q_s8(x[i].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16_at(&w[i].d) * f16_at(&x[i].d));
    }
    *s = vaddvq_f32(acc);
}

static void vec_dot_q5_0(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q5_0 *w = vw;
    const block_q8_0 *x = vx;
    const int8x16_t sixteen = vdupq_n_s8(16);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int8x16_t lo, hi;
        nibbles(w[i].qs, &lo, &hi);
        lo = vorrq_s8(lo, vreinterpretq_s8_u8(bit4_16(w[i].qh)));
        hi = vorrq_s8(hi, vreinterpretq_s8_u8(bit4_16(w[i].qh + 2)));
        int32x4_t p = dot16(vdupq_n_s32(0), vsubq_s8(lo, sixteen), vld1q_s8(x[i].qs));
        p = dot16(p, vsubq_s8(hi, sixteen), vld1q_s8(x[i].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16_at(&w[i].d) * f16_at(&x[i].d));
    }
    *s = vaddvq_f32(acc);
}

static void vec_dot_q4_1(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q4_1 *w = vw;
    const block_q8_1 *x = vx;
    float32x4_t acc = vdupq_n_f32(0.0f);
    float summ = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int8x16_t lo, hi;
        nibbles(w[i].qs, &lo, &hi);
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(x[i].qs));
        p = dot16(p, hi, vld1q_s8(x[i].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16_at(&w[i].d) * f16_at(&x[i].d));
        summ += f16_at(&w[i].m) * f16_at(&x[i].s);
    }
    *s = vaddvq_f32(acc) + summ;
}

static void vec_dot_q5_1(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q5_1 *w = vw;
    const block_q8_1 *x = vx;
    float32x4_t acc = vdupq_n_f32(0.0f);
    float summ = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int8x16_t lo, hi;
        nibbles(w[i].qs, &lo, &hi);
        lo = vorrq_s8(lo, vreinterpretq_s8_u8(bit4_16(w[i].qh)));
        hi = vorrq_s8(hi, vreinterpretq_s8_u8(bit4_16(w[i].qh + 2)));
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(x[i].qs));
        p = dot16(p, hi, vld1q_s8(x[i].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16_at(&w[i].d) * f16_at(&x[i].d));
        summ += f16_at(&w[i].m) * f16_at(&x[i].s);
    }
    *s = vaddvq_f32(acc) + summ;
}

/* ---- K-quants --------------------------------------------------------------------- */

/* sc[0..7]: the 6-bit scales of a Q4_K/Q5_K block, sc[8..15]: the mins. */
static inline void k4_scales_mins(const uint8_t *q12, uint8_t sc[16]) {
    uint32_t a, b, c, u[4];
    memcpy(&a, q12, 4);
    memcpy(&b, q12 + 4, 4);
    memcpy(&c, q12 + 8, 4);
    u[0] = a & 0x3f3f3f3fu;
    u[1] = (c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4;
    u[2] = b & 0x3f3f3f3fu;
    u[3] = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4;
    memcpy(sc, u, 16);
}

/* sum_j min_j * (bsum[2j] + bsum[2j+1]) */
static inline int32_t k4_mins_dot(const uint8_t *mins, const int16_t *bsums) {
    const int16x8_t pairs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins)));
    const int32x4_t p = vmlal_s16(vmull_s16(vget_low_s16(m), vget_low_s16(pairs)), vget_high_s16(m),
                                  vget_high_s16(pairs));
    return vaddvq_s32(p);
}

/* One Q4_K/Q5_K block (qh == NULL: Q4_K) against Q8_K: sum_j sc_j * q.x. */
static inline int32_t k4_block(const uint8_t *qs, const uint8_t *qh, const int8_t *q8,
                               const uint8_t *sc) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
    if (qh) {
        h0 = vld1q_u8(qh);
        h1 = vld1q_u8(qh + 16);
    }
    int32x4_t acc = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int j = 0; j < QK_K / 64; j++, qs += 32, q8 += 64) {
        const uint8x16_t b0 = vld1q_u8(qs), b1 = vld1q_u8(qs + 16);
        uint8x16_t l0 = vandq_u8(b0, m4), l1 = vandq_u8(b1, m4);
        uint8x16_t u0 = vshrq_n_u8(b0, 4), u1 = vshrq_n_u8(b1, 4);
        if (qh) { /* bit 2j of qh[l]: element 64j + l; bit 2j+1: 64j + 32 + l */
            const uint8x16_t s0 = vdupq_n_u8((uint8_t)(1u << (2 * j)));
            const uint8x16_t s1 = vdupq_n_u8((uint8_t)(2u << (2 * j)));
            const uint8x16_t t = vdupq_n_u8(0x10);
            l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(h0, s0), t));
            l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(h1, s0), t));
            u0 = vorrq_u8(u0, vandq_u8(vtstq_u8(h0, s1), t));
            u1 = vorrq_u8(u1, vandq_u8(vtstq_u8(h1, s1), t));
        }
        int32x4_t plo = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(l0), vld1q_s8(q8));
        plo = dot16(plo, vreinterpretq_s8_u8(l1), vld1q_s8(q8 + 16));
        int32x4_t phi = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(u0), vld1q_s8(q8 + 32));
        phi = dot16(phi, vreinterpretq_s8_u8(u1), vld1q_s8(q8 + 48));
        acc = vmlaq_n_s32(acc, plo, sc[2 * j]);
        acc = vmlaq_n_s32(acc, phi, sc[2 * j + 1]);
    }
    return vaddvq_s32(acc);
}

static void vec_dot_q4_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q4_K *w = vw;
    const block_q8_K *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[16];
        k4_scales_mins(w[i].scales, sc);
        const int32_t summ = k4_mins_dot(sc + 8, x[i].bsums);
        const int32_t sumi = k4_block(w[i].qs, NULL, x[i].qs, sc);
        sum += f16_at(&w[i].d) * x[i].d * (float)sumi - f16_at(&w[i].dmin) * x[i].d * (float)summ;
    }
    *s = sum;
}

static void vec_dot_q5_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q5_K *w = vw;
    const block_q8_K *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[16];
        k4_scales_mins(w[i].scales, sc);
        const int32_t summ = k4_mins_dot(sc + 8, x[i].bsums);
        const int32_t sumi = k4_block(w[i].qs, w[i].qh, x[i].qs, sc);
        sum += f16_at(&w[i].d) * x[i].d * (float)sumi - f16_at(&w[i].dmin) * x[i].d * (float)summ;
    }
    *s = sum;
}

/* Q6_K: per 128 elements, ql[0..63] holds the low nibbles of elements 0..63
 * and the high nibbles of 64..127, qh[l] the 2-bit pairs of l, l+32, l+64,
 * l+96. Levels are made signed (-32..31) in registers; each 16 elements
 * have their own int8 scale. */
static void vec_dot_q6_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t off = vdupq_n_s8(32);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32x4_t acc = vdupq_n_s32(0);
        const int8_t *sc = w[i].scales;
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            const int8_t *q8 = x[i].qs + 128 * half;
#pragma GCC unroll 2
            for (int k = 0; k < 2; k++) { /* l in 16k .. 16k + 15 */
                const uint8x16_t l0 = vld1q_u8(ql + 16 * k), l1 = vld1q_u8(ql + 32 + 16 * k);
                const uint8x16_t h = vld1q_u8(qh + 16 * k);
                uint8x16_t q[4];
                q[0] = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(h, m3), 4));
                q[1] = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m3), 4));
                q[2] = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), m3), 4));
                q[3] = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4));
#pragma GCC unroll 4
                for (int g = 0; g < 4; g++) { /* elements 32g + 16k + (0..15) */
                    const int8x16_t lv = vsubq_s8(vreinterpretq_s8_u8(q[g]), off);
                    const int32x4_t p = dot16(vdupq_n_s32(0), lv, vld1q_s8(q8 + 32 * g + 16 * k));
                    acc = vmlaq_n_s32(acc, p, sc[8 * half + 2 * g + k]);
                }
            }
        }
        sum += f16_at(&w[i].d) * x[i].d * (float)vaddvq_s32(acc);
    }
    *s = sum;
}

/* ---- float types ---------------------------------------------------------------------- */

static void vec_dot_f32(int64_t n, float *s, const void *vw, const void *vx) {
    const float *a = vw, *b = vx;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) sum += a[i] * b[i];
    *s = sum;
}

static void vec_dot_f16(int64_t n, float *s, const void *vw, const void *vx) {
    const float16_t *a = vw, *b = vx;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t va = vld1q_f16(a + i), vb = vld1q_f16(b + i);
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(va)), vcvt_f32_f16(vget_low_f16(vb)));
        acc1 = vfmaq_f32(acc1, vcvt_high_f32_f16(va), vcvt_high_f32_f16(vb));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    const uint16_t *ha = vw, *hb = vx;
    for (; i < n; i++) sum += kern_f16_to_f32(ha[i]) * kern_f16_to_f32(hb[i]);
    *s = sum;
}

static inline float32x4_t bf16x4(const uint16_t *p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

static void vec_dot_bf16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *a = vw, *b = vx;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, bf16x4(a + i), bf16x4(b + i));
        acc1 = vfmaq_f32(acc1, bf16x4(a + i + 4), bf16x4(b + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) sum += kern_bf16_to_f32(a[i]) * kern_bf16_to_f32(b[i]);
    *s = sum;
}

/* ---- conversions and activation quantizers ------------------------------------------- */

static void from_float_f16(const float *x, void *vy, int64_t n) {
    float16_t *y = vy;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_f16(y + i, vcvt_f16_f32(vld1q_f32(x + i)));
    uint16_t *h = vy;
    for (; i < n; i++) h[i] = kern_f32_to_f16(x[i]);
}

static void to_float_f16(const void *vx, float *y, int64_t n) {
    const float16_t *x = vx;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vld1_f16(x + i)));
    const uint16_t *h = vx;
    for (; i < n; i++) y[i] = kern_f16_to_f32(h[i]);
}

/* 32 values times mul, rounded half to even, stored as int8; returns their sum. */
static inline int32_t quant32(const float32x4_t v[8], float mul, int8_t *q) {
    int32x4_t sum = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int k = 0; k < 8; k += 2) {
        const int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(v[k], mul));
        const int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], mul));
        sum = vaddq_s32(sum, vaddq_s32(a, b));
        const int16x8_t h = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
        vst1_s8(q + 4 * k, vqmovn_s16(h));
    }
    return vaddvq_s32(sum);
}

static inline float absmax32(const float *x, float32x4_t v[8]) {
    float32x4_t m = vdupq_n_f32(0.0f);
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        m = vmaxq_f32(m, vabsq_f32(v[k]));
    }
    return vmaxvq_f32(m);
}

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float32x4_t v[8];
        const float amax = absmax32(x, v);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = kern_f32_to_f16(amax / 127.f);
        quant32(v, id, y[i].qs);
    }
}

static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float32x4_t v[8];
        const float amax = absmax32(x, v);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = kern_f32_to_f16(d);
        const int32_t sum = quant32(v, id, y[i].qs);
        y[i].s = kern_f32_to_f16(d * (float)sum);
    }
}

/* As the reference: the scale comes from the first element of largest
 * magnitude, with its sign; an all-zero block is all zeros. */
static void from_float_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K; k += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + k)));
        const float amax = vmaxvq_f32(m);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0;
        while (fabsf(x[first]) != amax) first++;
        const float iscale = -127.f / x[first];
        for (int k = 0; k < QK_K; k += 32) {
            float32x4_t v[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) v[j] = vld1q_f32(x + k + 4 * j);
            int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
#pragma GCC unroll 4
            for (int j = 0; j < 8; j += 2) {
                const int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(v[j], iscale));
                const int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(v[j + 1], iscale));
                if (j < 4)
                    s0 = vaddq_s32(s0, vaddq_s32(a, b));
                else
                    s1 = vaddq_s32(s1, vaddq_s32(a, b));
                vst1_s8(y[i].qs + k + 4 * j,
                        vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
            }
            y[i].bsums[k / 16] = (int16_t)vaddvq_s32(s0);
            y[i].bsums[k / 16 + 1] = (int16_t)vaddvq_s32(s1);
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- registration ---------------------------------------------------------------------- */

const kern_fns kern_neon_fns[KERN_ISA_NTYPES] = {
    [KERN_F32] = {.vec_dot = vec_dot_f32},
    [KERN_F16] = {.vec_dot = vec_dot_f16, .from_float = from_float_f16, .to_float = to_float_f16},
    [KERN_BF16] = {.vec_dot = vec_dot_bf16},
    [KERN_Q4_0] = {.vec_dot = vec_dot_q4_0},
    [KERN_Q4_1] = {.vec_dot = vec_dot_q4_1},
    [KERN_Q5_0] = {.vec_dot = vec_dot_q5_0},
    [KERN_Q5_1] = {.vec_dot = vec_dot_q5_1},
    [KERN_Q8_0] = {.vec_dot = vec_dot_q8_0, .from_float = from_float_q8_0},
    [KERN_Q8_1] = {.from_float = from_float_q8_1},
    [KERN_Q4_K] = {.vec_dot = vec_dot_q4_K},
    [KERN_Q5_K] = {.vec_dot = vec_dot_q5_K},
    [KERN_Q6_K] = {.vec_dot = vec_dot_q6_K},
    [KERN_Q8_K] = {.from_float = from_float_q8_K},
};

bool kern_neon_usable(void) {
#if defined(__linux__)
    /* HWCAP bits of the Linux arm64 ABI: ASIMDDP (sdot/udot), FPHP + ASIMDHP */
    const unsigned long hw = getauxval(AT_HWCAP);
    const unsigned long need = (1ul << 20) | (1ul << 9) | (1ul << 10);
    return (hw & need) == need;
#elif defined(__APPLE__)
    return true; /* every Apple arm64 CPU has dotprod and fp16 */
#else
    return false;
#endif
}

void kern_neon_install(kern_fns *table) { kern_isa_apply(table, kern_neon_fns); }
