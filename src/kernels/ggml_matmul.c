/*
 * ggml_matmul.c - matrix products with llama.cpp's float arithmetic, bit
 * for bit: the same Y[t][r] = dot(W row r, X row t) as kern_matmul, but each
 * dot product adds its terms in the order the kernel llama.cpp's x86-64
 * AVX-512 build runs for that weight type and batch size would:
 *
 *   F32, F16     two or more tokens: llamafile's tinyBLAS (16 lanes), when
 *                n_cols % 16 == 0 and n_rows % 4 == 0; else ggml_vec_dot_f32/
 *                _f16 (4 x 16 lanes). F16 activations are rounded to f16.
 *   Q8_0, Q5_0,  8 lanes of 4 products per block, scaled and accumulated by
 *   Q4_0         fused multiply-add, then an 8-lane tree (ggml_vec_dot_*_q8_0
 *                AVX2 and tinyBLAS_Q0_AVX add identically).
 *   Q4_0, Q4_K,  with n_rows % 8 == 0, llama.cpp moves the weights to its
 *   Q2_K         CPU_REPACK buffer (8 rows interleaved) unless they are the
 *                tied token embedding: one accumulator per output, one fused
 *                multiply-add per block of the block's whole integer sum
 *                (Q4_K: per super-block for single rows, per 64 elements for
 *                rows taken four at a time; Q2_K: per super-block and per
 *                128, the mins in an accumulator of their own).
 *   Q4_1, Q5_1,  ggml_vec_dot_*_q8_1 / _q8_K, AVX2 code (there is no AVX-512
 *   Q2_K, Q3_K,  variant): 8 lanes per block or super-block, min terms as
 *   Q4_K, Q5_K,  that code adds them.
 *   Q6_K
 *   IQ4_NL       repacked (n_rows % 8 == 0, not the tied embedding) as Q4_0
 *                (the same CPU_REPACK template, levels from the codebook);
 *                else tinyBLAS_Q0_AVX for two or more tokens (Q4_0's order)
 *                and, for one token, ggml_vec_dot_iq4_nl_q8_0 (AVX2 code):
 *                even and odd blocks in two 8-lane accumulators added
 *                before the tree, a last odd block by a scalar fused step.
 *   IQ4_XS       ggml_vec_dot_iq4_xs_q8_K (AVX2 code): 8 lanes per
 *                super-block with the sub-block scales applied in integers.
 *
 * Integer parts are exact in any order; what is spelled out is which
 * integers become one float and the order of the float operations. The
 * activations are converted by the dispatched from_float (bit-identical to
 * ggml's). Other types fall back to the dispatched vec_dot.
 *
 * This is scalar code: several times slower than the SIMD kernels, meant
 * for conformance checks (or until those kernels adopt the same order).
 */
#include "kernels/blocks.h"
#include "kernels/kern_ref.h"
#include "kernels/matmul.h"

#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef float (*gm_dot_fn)(int64_t n, const void *w, const void *x);

/* ---- 32-element blocks ---------------------------------------------------------- */

/* Q4_0 and IQ4_NL blocks are laid out alike (an fp16 scale, 16 nibble
 * bytes) and differ only in the levels their nibbles stand for: Q4_0's are
 * the linear codebook below, IQ4_NL's kern_iq4nl_values. Their dot
 * products share one body taking the codebook, reading both as block_q4_0. */
static const int8_t k_q4_0_levels[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
_Static_assert(sizeof(block_q4_0) == sizeof(block_iq4_nl) &&
                   offsetof(block_q4_0, qs) == offsetof(block_iq4_nl, qs),
               "Q4_0 and IQ4_NL share a layout");

/* The signed levels of 16 nibble bytes (a Q4_0 or IQ4_NL block, an IQ4_XS
 * sub-block) in element order: low nibbles are elements 0..15, high ones
 * 16..31, each looked up in the 16-entry codebook lut. */
static void nib_values(const uint8_t *qs, const int8_t *lut, int8_t v[32]) {
    for (int e = 0; e < 16; e++) {
        v[e] = lut[qs[e] & 15];
        v[e + 16] = lut[qs[e] >> 4];
    }
}

static void q5_0_values(const block_q5_0 *b, int8_t v[32]) {
    uint32_t qh;
    memcpy(&qh, b->qh, sizeof qh);
    for (int e = 0; e < 16; e++) {
        v[e] = (int8_t)(((b->qs[e] & 15) | (((qh >> e) & 1) << 4)) - 16);
        v[e + 16] = (int8_t)(((b->qs[e] >> 4) | (((qh >> (e + 16)) & 1) << 4)) - 16);
    }
}

/* lane[l] = sum of w[e] x[e] over e = 4l..4l+3 (vpdpbusd / pmaddubsw+pmaddwd). */
static void lanes8(const int8_t *w, const int8_t *x, int32_t lane[8]) {
    for (int l = 0; l < 8; l++) {
        int32_t s = 0;
        for (int k = 0; k < 4; k++) s += w[4 * l + k] * x[4 * l + k];
        lane[l] = s;
    }
}

/* The whole integer sum of one 32-element block: sum of w[e] x[e]. */
static int32_t sum32(const int8_t *w, const int8_t *x) {
    int32_t s = 0;
    for (int e = 0; e < 32; e++) s += w[e] * x[e];
    return s;
}

static void lanes8_u(const uint8_t *w, const int8_t *x, int32_t lane[8]) {
    for (int l = 0; l < 8; l++) {
        int32_t s = 0;
        for (int k = 0; k < 4; k++) s += w[4 * l + k] * x[4 * l + k];
        lane[l] = s;
    }
}

/* acc[l] += d * lane[l], fused; the vec_dot and tinyBLAS inner step. */
static void acc8(float acc[8], float d, const int32_t lane[8]) {
    for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
}

KERN_FMA_CLONES static float dot_q8_0(int64_t n, const void *vw, const void *vx) {
    const block_q8_0 *w = vw, *x = vx;
    float acc[8] = {0};
    int32_t lane[8];
    for (int64_t b = 0; b < n / 32; b++) {
        lanes8(w[b].qs, x[b].qs, lane);
        acc8(acc, kern_f16_to_f32(w[b].d) * kern_f16_to_f32(x[b].d), lane);
    }
    return kern_ggml_hsum8(acc);
}

/* Q4_0 (lut k_q4_0_levels) or IQ4_NL (kern_iq4nl_values) in Q4_0's order:
 * ggml_vec_dot_q4_0_q8_0 and tinyBLAS_Q0_AVX (IQ4_NL with two or more
 * tokens). */
static inline __attribute__((always_inline)) float dot_nib(int64_t n, const block_q4_0 *w,
                                                           const block_q8_0 *x, const int8_t *lut) {
    float acc[8] = {0};
    int32_t lane[8];
    int8_t v[32];
    for (int64_t b = 0; b < n / 32; b++) {
        nib_values(w[b].qs, lut, v);
        lanes8(v, x[b].qs, lane);
        acc8(acc, kern_f16_to_f32(w[b].d) * kern_f16_to_f32(x[b].d), lane);
    }
    return kern_ggml_hsum8(acc);
}

KERN_FMA_CLONES static float dot_q4_0(int64_t n, const void *vw, const void *vx) {
    return dot_nib(n, vw, vx, k_q4_0_levels);
}

KERN_FMA_CLONES static float dot_q5_0(int64_t n, const void *vw, const void *vx) {
    const block_q5_0 *w = vw;
    const block_q8_0 *x = vx;
    float acc[8] = {0};
    int32_t lane[8];
    int8_t v[32];
    for (int64_t b = 0; b < n / 32; b++) {
        q5_0_values(&w[b], v);
        lanes8(v, x[b].qs, lane);
        acc8(acc, kern_f16_to_f32(w[b].d) * kern_f16_to_f32(x[b].d), lane);
    }
    return kern_ggml_hsum8(acc);
}

/* Q4_1 / Q5_1: unsigned levels; the m * s terms go to a scalar sum that
 * ggml's compiler fuses. */
KERN_FMA_CLONES static float dot_q4_1(int64_t n, const void *vw, const void *vx) {
    const block_q4_1 *w = vw;
    const block_q8_1 *x = vx;
    float acc[8] = {0}, summs = 0.0f;
    int32_t lane[8];
    uint8_t v[32];
    for (int64_t b = 0; b < n / 32; b++) {
        summs = fmaf(kern_f16_to_f32(w[b].m), kern_f16_to_f32(x[b].s), summs);
        for (int e = 0; e < 16; e++) {
            v[e] = w[b].qs[e] & 15;
            v[e + 16] = w[b].qs[e] >> 4;
        }
        lanes8_u(v, x[b].qs, lane);
        acc8(acc, kern_f16_to_f32(w[b].d) * kern_f16_to_f32(x[b].d), lane);
    }
    return kern_ggml_hsum8(acc) + summs;
}

KERN_FMA_CLONES static float dot_q5_1(int64_t n, const void *vw, const void *vx) {
    const block_q5_1 *w = vw;
    const block_q8_1 *x = vx;
    float acc[8] = {0}, summs = 0.0f;
    int32_t lane[8];
    uint8_t v[32];
    for (int64_t b = 0; b < n / 32; b++) {
        summs = fmaf(kern_f16_to_f32(w[b].m), kern_f16_to_f32(x[b].s), summs);
        uint32_t qh;
        memcpy(&qh, w[b].qh, sizeof qh);
        for (int e = 0; e < 16; e++) {
            v[e] = (uint8_t)((w[b].qs[e] & 15) | (((qh >> e) & 1) << 4));
            v[e + 16] = (uint8_t)((w[b].qs[e] >> 4) | (((qh >> (e + 16)) & 1) << 4));
        }
        lanes8_u(v, x[b].qs, lane);
        acc8(acc, kern_f16_to_f32(w[b].d) * kern_f16_to_f32(x[b].d), lane);
    }
    return kern_ggml_hsum8(acc) + summs;
}

/* tinyBLAS_Q0_AVX on IQ4_NL: Q4_0's order. */
KERN_FMA_CLONES static float dot_iq4_nl(int64_t n, const void *vw, const void *vx) {
    return dot_nib(n, vw, vx, kern_iq4nl_values);
}

/* ggml_vec_dot_iq4_nl_q8_0 (AVX2 code, one token): blocks in pairs, the
 * first of each pair into acc1, the second into acc2; the tree of
 * acc1 + acc2; an odd last block as sumf += d * sumi, which ggml's compiler
 * fuses. */
KERN_FMA_CLONES static float dot_iq4_nl_vec(int64_t n, const void *vw, const void *vx) {
    const block_iq4_nl *w = vw;
    const block_q8_0 *x = vx;
    const int64_t nb = n / 32;
    float acc1[8] = {0}, acc2[8] = {0};
    int32_t lane[8];
    int8_t v[32];
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        nib_values(w[b].qs, kern_iq4nl_values, v);
        lanes8(v, x[b].qs, lane);
        acc8(acc1, kern_f16_to_f32(x[b].d) * kern_f16_to_f32(w[b].d), lane);
        nib_values(w[b + 1].qs, kern_iq4nl_values, v);
        lanes8(v, x[b + 1].qs, lane);
        acc8(acc2, kern_f16_to_f32(x[b + 1].d) * kern_f16_to_f32(w[b + 1].d), lane);
    }
    for (int l = 0; l < 8; l++) acc1[l] += acc2[l];
    float sumf = kern_ggml_hsum8(acc1);
    for (; b < nb; b++) {
        nib_values(w[b].qs, kern_iq4nl_values, v);
        const int32_t sumi = sum32(v, x[b].qs);
        sumf = fmaf(kern_f16_to_f32(x[b].d) * kern_f16_to_f32(w[b].d), (float)sumi, sumf);
    }
    return sumf;
}

/* ---- K-quants ------------------------------------------------------------------- */

/* Scales and mins of the 8 sub-blocks of a Q4_K/Q5_K super-block. */
static void k4_scales(const uint8_t *q, int32_t sc[8], int32_t mn[8]) {
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        kern_get_scale_min_k4(j, q, &s, &m);
        sc[j] = s;
        mn[j] = m;
    }
}

/* Sums of pairs of bsums: the 32-element sums of the activations. */
static void bsums32(const block_q8_K *x, int32_t s[8]) {
    for (int j = 0; j < 8; j++) s[j] = x->bsums[2 * j] + x->bsums[2 * j + 1];
}

/* lane[l] += sc * sum of q[e] x[e] over e = 4l..4l+3 of a 32-element run. */
static void lanes8_k(const uint8_t *q, const int8_t *x, int32_t sc, int32_t lane[8]) {
    for (int l = 0; l < 8; l++) {
        int32_t s = 0;
        for (int k = 0; k < 4; k++) s += q[4 * l + k] * x[4 * l + k];
        lane[l] += sc * s;
    }
}

/* Levels of sub-block j (32 elements) of a Q4_K/Q5_K super-block. */
static void k4_levels(const uint8_t *qs, const uint8_t *qh, int j, uint8_t v[32]) {
    const uint8_t *q = qs + 32 * (j / 2);
    for (int e = 0; e < 32; e++) {
        v[e] = (uint8_t)(j % 2 ? q[e] >> 4 : q[e] & 15);
        if (qh) v[e] = (uint8_t)(v[e] | (((qh[e] >> j) & 1) << 4));
    }
}

/* ggml_vec_dot_q4_K_q8_K (AVX2): 8 integer lanes per super-block scaled by
 * d and accumulated; the mins as 4 lanes of pairs, accumulated separately
 * and added after the 8-lane tree as (m0 + m2) + (m1 + m3). */
KERN_FMA_CLONES static float dot_q4_K(int64_t n, const void *vw, const void *vx) {
    const block_q4_K *w = vw;
    const block_q8_K *x = vx;
    float acc[8] = {0}, accm[4] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = x[i].d * kern_f16_to_f32(w[i].d);
        const float dmin = -x[i].d * kern_f16_to_f32(w[i].dmin);
        int32_t sc[8], mn[8], bs[8], lane[8] = {0};
        k4_scales(w[i].scales, sc, mn);
        bsums32(&x[i], bs);
        for (int m = 0; m < 4; m++)
            accm[m] =
                fmaf(dmin, (float)(mn[2 * m] * bs[2 * m] + mn[2 * m + 1] * bs[2 * m + 1]), accm[m]);
        uint8_t v[32];
        for (int j = 0; j < 8; j++) {
            k4_levels(w[i].qs, NULL, j, v);
            lanes8_k(v, x[i].qs + 32 * j, sc[j], lane);
        }
        acc8(acc, d, lane);
    }
    return kern_ggml_hsum8(acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]));
}

/* ggml_vec_dot_q5_K_q8_K (AVX2): like Q4_K, but the mins go to one scalar,
 * summs += dmin * (integer sum), which ggml's compiler fuses. */
KERN_FMA_CLONES static float dot_q5_K(int64_t n, const void *vw, const void *vx) {
    const block_q5_K *w = vw;
    const block_q8_K *x = vx;
    float acc[8] = {0}, summs = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = x[i].d * kern_f16_to_f32(w[i].d);
        const float dmin = -x[i].d * kern_f16_to_f32(w[i].dmin);
        int32_t sc[8], mn[8], bs[8], lane[8] = {0}, msum = 0;
        k4_scales(w[i].scales, sc, mn);
        bsums32(&x[i], bs);
        for (int j = 0; j < 8; j++) msum += mn[j] * bs[j];
        summs = fmaf(dmin, (float)msum, summs);
        uint8_t v[32];
        for (int j = 0; j < 8; j++) {
            k4_levels(w[i].qs, w[i].qh, j, v);
            lanes8_k(v, x[i].qs + 32 * j, sc[j], lane);
        }
        acc8(acc, d, lane);
    }
    return kern_ggml_hsum8(acc) + summs;
}

/* ggml_vec_dot_q6_K_q8_K (AVX2): unsigned 6-bit levels in 32-element chunks,
 * lanes of 4 with the 16-element sub-block scale; the -32 offset is taken
 * out per lane as 32 (bsums[2l] sc[2l] + bsums[2l+1] sc[2l+1]). */
KERN_FMA_CLONES static float dot_q6_K(int64_t n, const void *vw, const void *vx) {
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = x[i].d * kern_f16_to_f32(w[i].d);
        const int8_t *sc = w[i].scales;
        int32_t lane[8];
        for (int l = 0; l < 8; l++)
            lane[l] = -32 * (x[i].bsums[2 * l] * sc[2 * l] + x[i].bsums[2 * l + 1] * sc[2 * l + 1]);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
            for (int k = 0; k < 4; k++) {
                const int8_t *q8 = x[i].qs + 128 * h + 32 * k;
                uint8_t v[32];
                for (int e = 0; e < 32; e++) {
                    const uint8_t lo = k < 2 ? ql[32 * k + e] & 15 : ql[32 * (k - 2) + e] >> 4;
                    v[e] = (uint8_t)(lo | (((qh[e] >> (2 * k)) & 3) << 4));
                }
                for (int l = 0; l < 8; l++) {
                    int32_t s = 0;
                    for (int b = 0; b < 4; b++) s += v[4 * l + b] * q8[4 * l + b];
                    lane[l] += sc[8 * h + 2 * k + (l >= 4)] * s;
                }
            }
        }
        acc8(acc, d, lane);
    }
    return kern_ggml_hsum8(acc);
}

/* ggml_vec_dot_q3_K_q8_K (AVX2; ggml has no AVX-512 variant and no CPU_REPACK
 * layout for it): lane l of a super-block sums, over its eight 32-element
 * runs, the products of the run's elements 4l..4l+3 times their 16-element
 * sub-block's scale (sc - 32), the levels signed (-4..3); one fused step by
 * x.d * w.d per super-block, the 8-lane tree at the end. */
KERN_FMA_CLONES static float dot_q3_K(int64_t n, const void *vw, const void *vx) {
    const block_q3_K *w = vw;
    const block_q8_K *x = vx;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint32_t u[4];
        int8_t sc[16];
        kern_q3k_scale_bytes(w[i].scales, u);
        memcpy(sc, u, sizeof sc);
        int32_t lane[8] = {0};
        for (int e = 0; e < QK_K; e++) {
            const int low = (w[i].qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
            const int q = (w[i].hmask[e % 32] >> (e / 32)) & 1 ? low : low - 4;
            lane[e % 32 / 4] += (sc[e / 16] - 32) * q * x[i].qs[e];
        }
        acc8(acc, x[i].d * kern_f16_to_f32(w[i].d), lane);
    }
    return kern_ggml_hsum8(acc);
}

/* Level e (0..3) of a Q2_K super-block. */
static inline int q2_level(const block_q2_K *b, int e) {
    return (b->qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
}

/* ggml_vec_dot_q2_K_q8_K (AVX2; the rows llama.cpp does not repack): per
 * super-block first the mins, lane l = m[2l] bsums[2l] + m[2l+1]
 * bsums[2l+1] by -x.d * w.dmin, then the levels in Q3_K's lanes with their
 * 16-element sub-block's scale, by x.d * w.d; the 8-lane tree at the end. */
KERN_FMA_CLONES static float dot_q2_K(int64_t n, const void *vw, const void *vx) {
    const block_q2_K *w = vw;
    const block_q8_K *x = vx;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *sm = w[i].scales; /* scale in the low nibble, min in the high */
        int32_t mins[8], lane[8] = {0};
        for (int l = 0; l < 8; l++)
            mins[l] =
                (sm[2 * l] >> 4) * x[i].bsums[2 * l] + (sm[2 * l + 1] >> 4) * x[i].bsums[2 * l + 1];
        acc8(acc, -x[i].d * kern_f16_to_f32(w[i].dmin), mins);
        for (int e = 0; e < QK_K; e++)
            lane[e % 32 / 4] += (sm[e / 16] & 15) * q2_level(&w[i], e) * x[i].qs[e];
        acc8(acc, x[i].d * kern_f16_to_f32(w[i].d), lane);
    }
    return kern_ggml_hsum8(acc);
}

/* ggml_vec_dot_iq4_xs_q8_K (AVX2): lane l of a super-block sums, over the 8
 * sub-blocks j, (ls_j - 32) times the products of elements 32j + 4l..4l+3
 * (exact integers); one fused step by w.d * x.d per super-block, the 8-lane
 * tree at the end. */
KERN_FMA_CLONES static float dot_iq4_xs(int64_t n, const void *vw, const void *vx) {
    const block_iq4_xs *w = vw;
    const block_q8_K *x = vx;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t lane[8] = {0};
        for (int j = 0; j < 8; j++) {
            int8_t v[32];
            int32_t sub[8];
            nib_values(w[i].qs + 16 * j, kern_iq4nl_values, v);
            lanes8(v, x[i].qs + 32 * j, sub);
            const int32_t ls = kern_iq4_xs_ls(&w[i], j) - 32;
            for (int l = 0; l < 8; l++) lane[l] += ls * sub[l];
        }
        acc8(acc, kern_f16_to_f32(w[i].d) * x[i].d, lane);
    }
    return kern_ggml_hsum8(acc);
}

/* ---- CPU_REPACK layouts: one accumulator per output ------------------------------- */

/* Q4_0 or IQ4_NL (lut as dot_nib's) in CPU_REPACK: one fused step per
 * block of its whole integer sum. */
static inline __attribute__((always_inline)) float
dot_nib_repacked(int64_t n, const block_q4_0 *w, const block_q8_0 *x, const int8_t *lut) {
    float acc = 0.0f;
    int8_t v[32];
    for (int64_t b = 0; b < n / 32; b++) {
        nib_values(w[b].qs, lut, v);
        acc =
            fmaf((float)sum32(v, x[b].qs), kern_f16_to_f32(w[b].d) * kern_f16_to_f32(x[b].d), acc);
    }
    return acc;
}

KERN_FMA_CLONES static float dot_q4_0_repacked(int64_t n, const void *vw, const void *vx) {
    return dot_nib_repacked(n, vw, vx, k_q4_0_levels);
}

/* IQ4_NL in CPU_REPACK: Q4_0's repacked order. */
KERN_FMA_CLONES static float dot_iq4_nl_repacked(int64_t n, const void *vw, const void *vx) {
    return dot_nib_repacked(n, vw, vx, kern_iq4nl_values);
}

/* Q2_K repacked (llama.cpp's AVX-512 build, n_rows % 8 == 0): the integer
 * sums of the levels times their scales, and of the mins times the bsums,
 * per `half` elements (gemv: the whole super-block, 256; gemm, rows in
 * groups of four: each 128), each by one fused step into its own
 * accumulator (w.d x.d and w.dmin x.d); the mins' accumulator subtracted at
 * the end. */
KERN_FMA_CLONES static float q2_K_repacked(int64_t n, const void *vw, const void *vx, int half) {
    const block_q2_K *w = vw;
    const block_q8_K *x = vx;
    float acc = 0.0f, accm = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = kern_f16_to_f32(w[i].d) * x[i].d;
        const float dmin = kern_f16_to_f32(w[i].dmin) * x[i].d;
        for (int e0 = 0; e0 < QK_K; e0 += half) {
            int32_t sum = 0, msum = 0;
            for (int j = e0 / 16; j < (e0 + half) / 16; j++)
                msum += (w[i].scales[j] >> 4) * x[i].bsums[j];
            for (int e = e0; e < e0 + half; e++)
                sum += (w[i].scales[e / 16] & 15) * q2_level(&w[i], e) * x[i].qs[e];
            acc = fmaf((float)sum, d, acc);
            accm = fmaf((float)msum, dmin, accm);
        }
    }
    return acc - accm;
}

static float dot_q2_K_gemv(int64_t n, const void *w, const void *x) {
    return q2_K_repacked(n, w, x, QK_K);
}
static float dot_q2_K_gemm(int64_t n, const void *w, const void *x) {
    return q2_K_repacked(n, w, x, QK_K / 2);
}

/* Q4_K repacked: gemv (single rows) applies each super-block's integer sums
 * at once, gemm (rows in groups of four) each 64-element half-pair of
 * sub-blocks; `step` is the number of sub-blocks per fused multiply-add. */
KERN_FMA_CLONES static float q4_K_repacked(int64_t n, const void *vw, const void *vx, int step) {
    const block_q4_K *w = vw;
    const block_q8_K *x = vx;
    float acc = 0.0f, accm = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t sc[8], mn[8], bs[8];
        k4_scales(w[i].scales, sc, mn);
        bsums32(&x[i], bs);
        const float d = kern_f16_to_f32(w[i].d) * x[i].d;
        const float dmin = kern_f16_to_f32(w[i].dmin) * x[i].d;
        for (int j0 = 0; j0 < 8; j0 += step) {
            int32_t s = 0, sm = 0;
            for (int j = j0; j < j0 + step; j++) {
                uint8_t v[32];
                k4_levels(w[i].qs, NULL, j, v);
                int32_t sj = 0;
                for (int e = 0; e < 32; e++) sj += v[e] * x[i].qs[32 * j + e];
                s += sc[j] * sj;
                sm += mn[j] * bs[j];
            }
            acc = fmaf((float)s, d, acc);
            accm = fmaf((float)sm, dmin, accm);
        }
    }
    return acc - accm;
}

static float dot_q4_K_gemv(int64_t n, const void *w, const void *x) {
    return q4_K_repacked(n, w, x, 8);
}
static float dot_q4_K_gemm(int64_t n, const void *w, const void *x) {
    return q4_K_repacked(n, w, x, 2);
}

/* ---- float types ---------------------------------------------------------------- */

static float dot_f32(int64_t n, const void *w, const void *x) { return kern_ggml_dot_f32(w, x, n); }
static float dot_f32_x16(int64_t n, const void *w, const void *x) {
    return kern_ggml_dot_f32_x16(w, x, n);
}
static float dot_f16(int64_t n, const void *w, const void *x) { return kern_ggml_dot_f16(w, x, n); }
static float dot_f16_x16(int64_t n, const void *w, const void *x) {
    return kern_ggml_dot_f16_x16(w, x, n);
}

/* ---- the product ---------------------------------------------------------------- */

/* The ggml-order dot product for this weight matrix, or NULL for types this
 * file does not cover. */
static gm_dot_fn gm_pick(kern_type type, int64_t n_rows, int64_t n_cols, int64_t n_tok,
                         bool repack) {
    const bool tiny = n_tok >= 2 && n_cols % 16 == 0 && n_rows % 4 == 0;
    repack = repack && n_rows % 8 == 0;
    switch (type) {
    case KERN_F32: return tiny ? dot_f32_x16 : dot_f32;
    case KERN_F16: return tiny ? dot_f16_x16 : dot_f16;
    case KERN_Q8_0: return dot_q8_0;
    case KERN_Q4_0: return repack ? dot_q4_0_repacked : dot_q4_0;
    case KERN_Q5_0: return dot_q5_0;
    case KERN_Q4_1: return dot_q4_1;
    case KERN_Q5_1: return dot_q5_1;
    case KERN_Q2_K: return repack ? dot_q2_K_gemv : dot_q2_K;
    case KERN_Q3_K: return dot_q3_K;
    case KERN_Q4_K: return repack ? dot_q4_K_gemv : dot_q4_K;
    case KERN_Q5_K: return dot_q5_K;
    case KERN_Q6_K: return dot_q6_K;
    case KERN_IQ4_NL:
        return repack ? dot_iq4_nl_repacked : n_tok >= 2 ? dot_iq4_nl : dot_iq4_nl_vec;
    case KERN_IQ4_XS: return dot_iq4_xs;
    default: return NULL;
    }
}

typedef struct gm_job {
    gm_dot_fn dot;
    gm_dot_fn dot4; /* tokens in whole groups of four, when they differ */
    int64_t n_tok4;
    kern_vec_dot_fn vec_dot; /* when dot is NULL */
    const uint8_t *w;
    size_t w_row_bytes;
    int64_t n_cols;
    int64_t n_tok;
    float *y;
    int64_t ldy;
} gm_job;

/* Rows r0..r1-1 against every token (a kern_rows_fn; one weight, o == 0). */
static void gm_rows(const void *ctx, int o, int64_t r0, int64_t r1, const uint8_t *xq,
                    size_t xq_row_bytes) {
    const gm_job *j = ctx;
    (void)o;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = j->w + (size_t)r * j->w_row_bytes;
        for (int64_t t = 0; t < j->n_tok; t++) {
            const uint8_t *xr = xq + (size_t)t * xq_row_bytes;
            float *yr = j->y + t * j->ldy + r;
            if (t < j->n_tok4)
                *yr = j->dot4(j->n_cols, wr, xr);
            else if (j->dot)
                *yr = j->dot(j->n_cols, wr, xr);
            else
                j->vec_dot(j->n_cols, yr, wr, xr);
        }
    }
}

void kern_matmul_ggml(hr_pool *pool, kern_type type, const void *w, int64_t n_rows, int64_t n_cols,
                      const float *x, int64_t n_tok, float *y, int64_t ldy, void *scratch,
                      bool repack) {
    gm_job j = {
        .dot = gm_pick(type, n_rows, n_cols, n_tok, repack),
        .vec_dot = kern_get(type)->vec_dot,
        .w = w,
        .w_row_bytes = kern_row_bytes(type, n_cols),
        .n_cols = n_cols,
        .n_tok = n_tok,
        .y = y,
        .ldy = ldy,
    };
    /* CPU_REPACK's gemm takes the rows of src1 in groups of four when there
     * are more than three, its gemv the rest. */
    if ((j.dot == dot_q4_K_gemv || j.dot == dot_q2_K_gemv) && n_tok > 3) {
        j.dot4 = j.dot == dot_q4_K_gemv ? dot_q4_K_gemm : dot_q2_K_gemm;
        j.n_tok4 = n_tok & ~(int64_t)3;
    }
    kern_matmul_run(pool, kern_type_get((uint32_t)type)->vec_dot_type, n_cols, x, n_tok, scratch,
                    &n_rows, 1, gm_rows, &j);
}

/* ---- the switch ----------------------------------------------------------------- */

static pthread_once_t gm_once = PTHREAD_ONCE_INIT;
static atomic_bool gm_exact;

static void gm_init(void) {
    const char *e = getenv("HEARTH_EXACT");
    atomic_store(&gm_exact, e && *e && strcmp(e, "0") != 0);
}

bool kern_exact(void) {
    pthread_once(&gm_once, gm_init);
    return atomic_load_explicit(&gm_exact, memory_order_relaxed);
}

void kern_set_exact(bool on) {
    pthread_once(&gm_once, gm_init);
    atomic_store(&gm_exact, on);
}
