/*
 * arm_neon.c - kernels for AArch64 CPUs with the dot-product extension and
 * half-precision arithmetic (ARMv8.2-A +dotprod +fp16: Cortex-A55/A76 and
 * later, Neoverse, Apple M1 and later); the only file built with those flags.
 *
 * Integer types use sdot (vdotq_s32: 4 signed byte products summed into each
 * int32 lane), so weights are turned into signed levels in registers and
 * never widened to float. Sub-block scales of the K-quants are applied to the
 * int32 lanes (Q2_K and Q3_K: to the levels, before sdot); the float scale
 * once per block. Results differ from the scalar references only by float
 * rounding (Q2_K's not at all); the activation quantizers are
 * bit-identical to the scalar ones (vcvtnq rounds half to even, as
 * kern_nearest_int; the fp16 scales go through kern_f32_to_f16).
 */
#include "kernels/isa.h"
#include "kernels/kern_ref.h"
#include "kernels/arm_neon_priv.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#if defined(__linux__)
#include <sys/auxv.h>
#endif

/* An fp16 scale as float with one fcvt instead of a call: the bits of
 * kern_f16_to_f32 for every pattern (subnormals kept, NaNs quieted with
 * their payload, as test_kernels_simd's to_float check sees vcvt do). */
static inline float f16_at(const kern_f16 *p) {
    float16_t h;
    memcpy(&h, p, sizeof h);
    return (float)h;
}

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

/* ---- tiles: one weight row against up to 4 tokens ---------------------------------
 * The products of the types with a gemm are written once, for a tile of one
 * weight row and T tokens (T a constant: 1, 2 or 4). vec_dot is the tile
 * with T = 1 and gemm runs the tiles with T = 2 or 4, so each (row, token)
 * pair goes through the same float operations in the same order whatever
 * the batch (the contract of kern_gemm_fn); only the unpacking of the
 * weights is shared between the tokens. Integer sums are exact, so their
 * order is free. */

enum { TMAX = 4 };

#define AI static inline __attribute__((always_inline))

/* ---- 32-element block formats ---------------------------------------------------- */

typedef enum { BK_Q4_0, BK_Q5_0, BK_Q8_0, BK_IQ4_NL } blk_kind;

AI size_t blk_wsize(blk_kind k) {
    return k == BK_Q4_0     ? sizeof(block_q4_0)
           : k == BK_Q5_0   ? sizeof(block_q5_0)
           : k == BK_IQ4_NL ? sizeof(block_iq4_nl)
                            : sizeof(block_q8_0);
}

/* Nibbles (0..15) looked up in the IQ4 codebook (tbl). */
AI int8x16_t iq4_lookup(int8x16_t nib) {
    return vqtbl1q_s8(vld1q_s8(kern_iq4nl_values), vreinterpretq_u8_s8(nib));
}

/* The 32 signed levels of one weight block: elements 0..15 in lo, 16..31 in hi. */
AI void blk_levels(blk_kind k, const uint8_t *w, int8x16_t *lo, int8x16_t *hi) {
    switch (k) {
    case BK_Q4_0: {
        const block_q4_0 *b = (const block_q4_0 *)w;
        nibbles(b->qs, lo, hi);
        *lo = vsubq_s8(*lo, vdupq_n_s8(8));
        *hi = vsubq_s8(*hi, vdupq_n_s8(8));
        return;
    }
    case BK_Q5_0: {
        const block_q5_0 *b = (const block_q5_0 *)w;
        nibbles(b->qs, lo, hi);
        *lo = vsubq_s8(vorrq_s8(*lo, vreinterpretq_s8_u8(bit4_16(b->qh))), vdupq_n_s8(16));
        *hi = vsubq_s8(vorrq_s8(*hi, vreinterpretq_s8_u8(bit4_16(b->qh + 2))), vdupq_n_s8(16));
        return;
    }
    case BK_IQ4_NL: {
        const block_iq4_nl *b = (const block_iq4_nl *)w;
        nibbles(b->qs, lo, hi);
        *lo = iq4_lookup(*lo);
        *hi = iq4_lookup(*hi);
        return;
    }
    case BK_Q8_0: break;
    }
    const block_q8_0 *b = (const block_q8_0 *)w;
    *lo = vld1q_s8(b->qs);
    *hi = vld1q_s8(b->qs + 16);
}

/* One row of Q8_0, Q4_0, Q5_0 or IQ4_NL against T tokens of Q8_0: per pair, each
 * block's int32 lanes scaled by w.d * x.d into one float accumulator. */
AI void blk_tile(blk_kind k, const int T, int64_t n, const uint8_t *w, const uint8_t *const *xp,
                 float *out) {
    const size_t ws = blk_wsize(k);
    float32x4_t acc[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const uint8_t *wb = w + i * ws;
        int8x16_t lo, hi;
        blk_levels(k, wb, &lo, &hi);
        const float wd = f16_at((const kern_f16 *)wb);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const block_q8_0 *x = (const block_q8_0 *)xp[t] + i;
            int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(x->qs));
            p = dot16(p, hi, vld1q_s8(x->qs + 16));
            acc[t] = vmlaq_n_f32(acc[t], vcvtq_f32_s32(p), wd * f16_at(&x->d));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) out[t] = vaddvq_f32(acc[t]);
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

/* One Q4_K (q5 false) or Q5_K row against T tokens of Q8_K: per pair,
 * sum_j sc_j * q.x and the mins term in int32, scaled once per block. */
AI void k45_tile(bool q5, const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp,
                 float *out) {
    const size_t wsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), t4 = vdupq_n_u8(0x10);
    float sum[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) sum[t] = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        /* Q4_K and Q5_K share d, dmin and scales at the start of the block */
        const block_q4_K *w4 = (const block_q4_K *)(vw + i * wsz);
        const block_q5_K *w5 = (const block_q5_K *)(vw + i * wsz);
        const block_q8_K *x[TMAX];
        uint8_t sc[16];
        k4_scales_mins(w4->scales, sc);
        int32_t summ[TMAX];
        int32x4_t acc[TMAX];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            x[t] = (const block_q8_K *)xp[t] + i;
            summ[t] = k4_mins_dot(sc + 8, x[t]->bsums);
            acc[t] = vdupq_n_s32(0);
        }
        const uint8_t *qs = q5 ? w5->qs : w4->qs;
        uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
        if (q5) {
            h0 = vld1q_u8(w5->qh);
            h1 = vld1q_u8(w5->qh + 16);
        }
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, qs += 32) {
            const uint8x16_t b0 = vld1q_u8(qs), b1 = vld1q_u8(qs + 16);
            uint8x16_t l0 = vandq_u8(b0, m4), l1 = vandq_u8(b1, m4);
            uint8x16_t u0 = vshrq_n_u8(b0, 4), u1 = vshrq_n_u8(b1, 4);
            if (q5) { /* bit 2j of qh[l]: element 64j + l; bit 2j+1: 64j + 32 + l */
                const uint8x16_t s0 = vdupq_n_u8((uint8_t)(1u << (2 * j)));
                const uint8x16_t s1 = vdupq_n_u8((uint8_t)(2u << (2 * j)));
                l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(h0, s0), t4));
                l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(h1, s0), t4));
                u0 = vorrq_u8(u0, vandq_u8(vtstq_u8(h0, s1), t4));
                u1 = vorrq_u8(u1, vandq_u8(vtstq_u8(h1, s1), t4));
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const int8_t *q8 = x[t]->qs + 64 * j;
                int32x4_t plo = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(l0), vld1q_s8(q8));
                plo = dot16(plo, vreinterpretq_s8_u8(l1), vld1q_s8(q8 + 16));
                int32x4_t phi = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(u0), vld1q_s8(q8 + 32));
                phi = dot16(phi, vreinterpretq_s8_u8(u1), vld1q_s8(q8 + 48));
                acc[t] = vmlaq_n_s32(acc[t], plo, sc[2 * j]);
                acc[t] = vmlaq_n_s32(acc[t], phi, sc[2 * j + 1]);
            }
        }
        const float wd = f16_at(&w4->d), wdmin = f16_at(&w4->dmin);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const int32_t sumi = vaddvq_s32(acc[t]);
            sum[t] += wd * x[t]->d * (float)sumi - wdmin * x[t]->d * (float)summ[t];
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) out[t] = sum[t];
}

/* One Q6_K row against T tokens. Per 128 elements, ql[0..63] holds the low
 * nibbles of elements 0..63 and the high nibbles of 64..127, qh[l] the
 * 2-bit pairs of l, l+32, l+64, l+96. Levels are made signed (-32..31) in
 * registers; each 16 elements have their own int8 scale. */
AI void q6_tile(const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp, float *out) {
    const block_q6_K *w = (const block_q6_K *)vw;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t off = vdupq_n_s8(32);
    float sum[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) sum[t] = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const block_q8_K *x[TMAX];
        int32x4_t acc[TMAX];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            x[t] = (const block_q8_K *)xp[t] + i;
            acc[t] = vdupq_n_s32(0);
        }
        const int8_t *sc = w[i].scales;
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
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
                    const int s = sc[8 * half + 2 * g + k];
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) {
                        const int8_t *q8 = x[t]->qs + 128 * half + 32 * g + 16 * k;
                        const int32x4_t p = dot16(vdupq_n_s32(0), lv, vld1q_s8(q8));
                        acc[t] = vmlaq_n_s32(acc[t], p, s);
                    }
                }
            }
        }
        const float wd = f16_at(&w[i].d);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) sum[t] += wd * x[t]->d * (float)vaddvq_s32(acc[t]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) out[t] = sum[t];
}

/* One IQ4_XS row against T tokens of Q8_K: per sub-block of 32 the codebook
 * levels (tbl) against the activations with sdot, scaled by ls - 32 into an
 * int32 sum per block, converted once. */
AI void iq4_xs_tile(const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp,
                    float *out) {
    const block_iq4_xs *w = (const block_iq4_xs *)vw;
    float32x4_t acc[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const block_q8_K *x[TMAX];
        int32x4_t sumi[TMAX];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            x[t] = (const block_q8_K *)xp[t] + i;
            sumi[t] = vdupq_n_s32(0);
        }
        for (int ib = 0; ib < QK_K / 32; ib++) {
            int8x16_t lo, hi;
            nibbles(w[i].qs + 16 * ib, &lo, &hi);
            lo = iq4_lookup(lo);
            hi = iq4_lookup(hi);
            const int32_t ls = kern_iq4_xs_ls(&w[i], ib) - 32;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const int8_t *q8 = x[t]->qs + 32 * ib;
                int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(q8));
                p = dot16(p, hi, vld1q_s8(q8 + 16));
                sumi[t] = vmlaq_n_s32(sumi[t], p, ls);
            }
        }
        const float wd = f16_at(&w[i].d);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[t] = vmlaq_n_f32(acc[t], vcvtq_f32_s32(sumi[t]), wd * x[t]->d);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) out[t] = vaddvq_f32(acc[t]);
}

/* ---- Q2_K and Q3_K -----------------------------------------------------------------
 * Both keep 2 low bits a level, 4 levels a byte: per 128 elements, byte l of
 * 32 holds elements l, l + 32, l + 64 and l + 96 in bits 0-1, 2-3, 4-5 and
 * 6-7, so 16 bytes shifted and masked are the 16 elements of one sub-block.
 * The sub-block scale is multiplied into those levels in int8 before sdot,
 * which the ranges allow: Q2_K's level 0..3 times its 4-bit scale is at most
 * 45; Q3_K's level q = u - 4 (-4..3) times its scale s (-32..31) would reach
 * 128 at (-4)(-32), so it is taken negated, (4 - u) s in [-128, 124], and
 * the block sum negated back. One product then serves all T tokens, and
 * every sum is exact in int32 (|level * scale * x| <= 128 * 127, 256 terms).
 * Q2_K's float step per block is the reference's, term for term (its sums
 * are whole-block integers), so its vec_dot has the reference's bits; Q3_K's
 * reference sums in 8 lanes by index mod 8, so it is within float rounding.
 * Layouts: block_q2_K and block_q3_K (blocks.h). */

/* The 16 signed 6-bit scales (sc - 32) of a Q3_K block: sub-block j has its
 * low nibble in byte j % 8 (low nibble for j < 8, high for j >= 8) and its
 * top 2 bits in bits 2 (j / 4) of byte 8 + j % 4. */
static inline int8x16_t q3k_scales(const uint8_t *s12) {
    uint32_t u[4];
    kern_q3k_scale_bytes(s12, u);
    return vsubq_s8(vreinterpretq_s8_u32(vld1q_u32(u)), vdupq_n_s8(32));
}

/* sum_j mins[j] * bsums[j] over the 16 sub-blocks of a Q2_K block */
static inline int32_t q2k_mins_dot(uint8x16_t mins, const int16_t *bsums) {
    const int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins)));
    const int16x8_t m1 = vreinterpretq_s16_u16(vmovl_high_u8(mins));
    const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
    int32x4_t p = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
    p = vmlal_high_s16(p, m0, b0);
    p = vmlal_s16(p, vget_low_s16(m1), vget_low_s16(b1));
    p = vmlal_high_s16(p, m1, b1);
    return vaddvq_s32(p);
}

/* The 16 levels of one sub-block times its scale, as int8: u the low bits
 * (0..3) of the 16 elements; Q3_K: hset has 0xFF where the high bit is set. */
AI int8x16_t k23_weights(bool q3, uint8x16_t u, uint8x16_t hset, int8_t scale) {
    int8x16_t lv = vreinterpretq_s8_u8(u);
    if (q3) /* 4 - (u + 4 * high) */
        lv = vreinterpretq_s8_u8(vsubq_u8(vbicq_u8(vdupq_n_u8(4), hset), u));
    return vmulq_s8(lv, vdupq_n_s8(scale));
}

/* One Q2_K (q3 false) or Q3_K row against T tokens of Q8_K. */
AI void k23_tile(bool q3, const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp,
                 float *out) {
    const size_t bs = q3 ? sizeof(block_q3_K) : sizeof(block_q2_K);
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sum[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) sum[t] = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *wb = vw + (size_t)i * bs;
        const block_q8_K *x[TMAX];
        int8_t sc[16];
        int32_t summ[TMAX];
        int32x4_t acc[TMAX];
        uint8x16_t mins = vdupq_n_u8(0), h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
        if (q3) {
            vst1q_s8(sc, q3k_scales(wb + Q3K_SCALES));
            h0 = vld1q_u8(wb + Q3K_HMASK);
            h1 = vld1q_u8(wb + Q3K_HMASK + 16);
        } else {
            const uint8x16_t s = vld1q_u8(wb + Q2K_SCALES);
            vst1q_s8(sc, vreinterpretq_s8_u8(vandq_u8(s, vdupq_n_u8(0x0F))));
            mins = vshrq_n_u8(s, 4);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            x[t] = (const block_q8_K *)xp[t] + i;
            acc[t] = vdupq_n_s32(0);
            summ[t] = q3 ? 0 : q2k_mins_dot(mins, x[t]->bsums);
        }
        const uint8_t *qs = wb + (q3 ? Q3K_QS : Q2K_QS);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const uint8x16_t a = vld1q_u8(qs + 32 * h), b = vld1q_u8(qs + 32 * h + 16);
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                const int p = 4 * h + s; /* elements 32p..32p+31: sub-blocks 2p, 2p + 1 */
                const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * s));
                const uint8x16_t u0 = vandq_u8(vshlq_u8(a, sh), m3);
                const uint8x16_t u1 = vandq_u8(vshlq_u8(b, sh), m3);
                uint8x16_t hs0 = h0, hs1 = h1;
                if (q3) {
                    const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << p));
                    hs0 = vtstq_u8(h0, bit);
                    hs1 = vtstq_u8(h1, bit);
                }
                const int8x16_t w0 = k23_weights(q3, u0, hs0, sc[2 * p]);
                const int8x16_t w1 = k23_weights(q3, u1, hs1, sc[2 * p + 1]);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    const int8_t *q8 = x[t]->qs + 32 * p;
                    acc[t] = dot16(acc[t], w0, vld1q_s8(q8));
                    acc[t] = dot16(acc[t], w1, vld1q_s8(q8 + 16));
                }
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const int32_t isum = vaddvq_s32(acc[t]);
            if (q3) {
                sum[t] += f16_at((const kern_f16 *)(wb + Q3K_D)) * x[t]->d * (float)-isum;
            } else {
                /* the reference's expression, unfused (as ref_*.c's -ffp-contract=off):
                 * clang's default contracts only within a statement, GCC's
                 * none under -std=c17 */
                const float dall = x[t]->d * f16_at((const kern_f16 *)(wb + Q2K_D));
                const float dmin = x[t]->d * f16_at((const kern_f16 *)(wb + Q2K_DMIN));
                const float a = dall * (float)isum;
                const float m = dmin * (float)summ[t];
                sum[t] += a - m;
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) out[t] = sum[t];
}

/* ---- float types ---------------------------------------------------------------------- */

/* 4 elements i..i+3 (or i+4..i+7 with high) of an F32 (f16 false) or F16 row. */
AI float32x4_t flt4(bool f16, const uint8_t *row, int64_t i) {
    if (f16) return vcvt_f32_f16(vld1_f16((const float16_t *)row + i));
    return vld1q_f32((const float *)row + i);
}
/* One element; rows need not be aligned to their element size. */
AI float flt1(bool f16, const uint8_t *row, int64_t i) {
    if (f16) {
        uint16_t h;
        memcpy(&h, row + 2 * i, sizeof h);
        return kern_f16_to_f32(h);
    }
    float f;
    memcpy(&f, row + 4 * i, sizeof f);
    return f;
}

/* One F32 or F16 row against T tokens: per pair, elements 8s..8s+3 go to
 * acc0 and 8s+4..8s+7 to acc1, the last n % 8 added one by one after the
 * accumulators' sum. */
AI void flt_tile(bool f16, const int T, int64_t n, const uint8_t *w, const uint8_t *const *xp,
                 float *out) {
    float32x4_t acc0[TMAX], acc1[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc0[t] = acc1[t] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t a0 = flt4(f16, w, i), a1 = flt4(f16, w, i + 4);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            acc0[t] = vfmaq_f32(acc0[t], a0, flt4(f16, xp[t], i));
            acc1[t] = vfmaq_f32(acc1[t], a1, flt4(f16, xp[t], i + 4));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        float sum = vaddvq_f32(vaddq_f32(acc0[t], acc1[t]));
        for (int64_t e = i; e < n; e++) sum += flt1(f16, w, e) * flt1(f16, xp[t], e);
        out[t] = sum;
    }
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

/* ---- vec_dot and gemm of each type from its tile ---------------------------------
 * gemm walks the rows in groups that stay in L1 (a few KiB of weights) and,
 * for each group of 4 tokens (2 or 1 for the last), every row of the group:
 * a group of tokens' activations stays in L1 across the rows and a row's
 * unpacking serves 4 tokens. Missing tokens of the last group repeat its
 * last token (their sums are computed and dropped). One token goes row by
 * row through vec_dot's code. */

typedef void (*tile_fn)(int64_t n, const uint8_t *w, const uint8_t *const *xp, float *out);

static void gemm_tiles(tile_fn tile1, tile_fn tile2, tile_fn tile4, int64_t n, const uint8_t *w,
                       size_t ws, int64_t nr, const uint8_t *x, size_t xs, int64_t nt, float *y,
                       int64_t ldy) {
    if (nt == 1) {
        for (int64_t r = 0; r < nr; r++) tile1(n, w + (size_t)r * ws, &x, y + r);
        return;
    }
    int64_t rg = (int64_t)(16384 / (ws ? ws : 1));
    rg = rg < 4 ? 4 : rg > 64 ? 64 : rg;
    for (int64_t r0 = 0; r0 < nr; r0 += rg) {
        const int64_t r1 = r0 + rg < nr ? r0 + rg : nr;
        for (int64_t t0 = 0; t0 < nt; t0 += TMAX) {
            const int tc = nt - t0 < TMAX ? (int)(nt - t0) : TMAX;
            const uint8_t *xp[TMAX];
            for (int t = 0; t < TMAX; t++) xp[t] = x + (size_t)(t0 + (t < tc ? t : tc - 1)) * xs;
            const tile_fn tile = tc > 2 ? tile4 : tc == 2 ? tile2 : tile1;
            for (int64_t r = r0; r < r1; r++) {
                float out[TMAX];
                tile(n, w + (size_t)r * ws, xp, out);
                for (int t = 0; t < tc; t++) y[(t0 + t) * ldy + r] = out[t];
            }
        }
    }
}

#define NOINLINE static __attribute__((noinline))
#define TILED(name, call)                                                                          \
    NOINLINE void name##_t1(int64_t n, const uint8_t *w, const uint8_t *const *xp, float *out) {   \
        call(1, n, w, xp, out);                                                                    \
    }                                                                                              \
    NOINLINE void name##_t2(int64_t n, const uint8_t *w, const uint8_t *const *xp, float *out) {   \
        call(2, n, w, xp, out);                                                                    \
    }                                                                                              \
    NOINLINE void name##_t4(int64_t n, const uint8_t *w, const uint8_t *const *xp, float *out) {   \
        call(4, n, w, xp, out);                                                                    \
    }                                                                                              \
    static void vec_dot_##name(int64_t n, float *s, const void *w, const void *x) {                \
        const uint8_t *xp = x;                                                                     \
        name##_t1(n, w, &xp, s);                                                                   \
    }                                                                                              \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,        \
                            size_t xs, int64_t nt, float *y, int64_t ldy) {                        \
        gemm_tiles(name##_t1, name##_t2, name##_t4, n, w, ws, nr, x, xs, nt, y, ldy);              \
    }

#define CALL_Q8_0(T, n, w, xp, out)   blk_tile(BK_Q8_0, T, n, w, xp, out)
#define CALL_Q4_0(T, n, w, xp, out)   blk_tile(BK_Q4_0, T, n, w, xp, out)
#define CALL_Q5_0(T, n, w, xp, out)   blk_tile(BK_Q5_0, T, n, w, xp, out)
#define CALL_IQ4_NL(T, n, w, xp, out) blk_tile(BK_IQ4_NL, T, n, w, xp, out)
#define CALL_Q2_K(T, n, w, xp, out)   k23_tile(false, T, n, w, xp, out)
#define CALL_Q3_K(T, n, w, xp, out)   k23_tile(true, T, n, w, xp, out)
#define CALL_Q4_K(T, n, w, xp, out)   k45_tile(false, T, n, w, xp, out)
#define CALL_Q5_K(T, n, w, xp, out)   k45_tile(true, T, n, w, xp, out)
#define CALL_F32(T, n, w, xp, out)    flt_tile(false, T, n, w, xp, out)
#define CALL_F16(T, n, w, xp, out)    flt_tile(true, T, n, w, xp, out)
TILED(q8_0, CALL_Q8_0)
TILED(q4_0, CALL_Q4_0)
TILED(q5_0, CALL_Q5_0)
TILED(q2_K, CALL_Q2_K)
TILED(q3_K, CALL_Q3_K)
TILED(q4_K, CALL_Q4_K)
TILED(q5_K, CALL_Q5_K)
TILED(q6_K, q6_tile)
TILED(iq4_nl, CALL_IQ4_NL)
TILED(iq4_xs, iq4_xs_tile)
TILED(f32, CALL_F32)
TILED(f16, CALL_F16)

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
    [KERN_F32] = {.vec_dot = vec_dot_f32, .attn = kern_neon_attn_f32, .gemm = gemm_f32},
    [KERN_F16] = {.vec_dot = vec_dot_f16,
                  .from_float = from_float_f16,
                  .to_float = to_float_f16,
                  .attn = kern_neon_attn_f16,
                  .gemm = gemm_f16},
    [KERN_BF16] = {.vec_dot = vec_dot_bf16},
    [KERN_Q4_0] = {.vec_dot = vec_dot_q4_0, .gemm = gemm_q4_0},
    [KERN_Q4_1] = {.vec_dot = vec_dot_q4_1},
    [KERN_Q5_0] = {.vec_dot = vec_dot_q5_0, .gemm = gemm_q5_0},
    [KERN_Q5_1] = {.vec_dot = vec_dot_q5_1},
    [KERN_Q8_0] = {.vec_dot = vec_dot_q8_0, .from_float = from_float_q8_0, .gemm = gemm_q8_0},
    [KERN_Q8_1] = {.from_float = from_float_q8_1},
    [KERN_Q2_K] = {.vec_dot = vec_dot_q2_K, .gemm = gemm_q2_K},
    [KERN_Q3_K] = {.vec_dot = vec_dot_q3_K, .gemm = gemm_q3_K},
    [KERN_Q4_K] = {.vec_dot = vec_dot_q4_K, .gemm = gemm_q4_K},
    [KERN_Q5_K] = {.vec_dot = vec_dot_q5_K, .gemm = gemm_q5_K},
    [KERN_Q6_K] = {.vec_dot = vec_dot_q6_K, .gemm = gemm_q6_K},
    [KERN_Q8_K] = {.from_float = from_float_q8_K},
    [KERN_IQ4_NL] = {.vec_dot = vec_dot_iq4_nl, .gemm = gemm_iq4_nl},
    [KERN_IQ4_XS] = {.vec_dot = vec_dot_iq4_xs, .gemm = gemm_iq4_xs},
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
