/*
 * x86_avx2.c - kernels for CPUs with AVX2, FMA and F16C (Haswell, Zen 1 and
 * later); the only file built with those flags, so nothing here runs before
 * kern_avx2_usable() said yes.
 *
 * Integer types multiply their quants against 8-bit activations with
 * vpmaddubsw (unsigned x signed bytes -> pairs of int16) and vpmaddwd; the
 * weights are never widened to float. Pair sums stay within int16 because
 * activations are in [-127, 127] and weight levels are at most 128 in
 * magnitude once signs are moved onto the activations (dot_ss). Per-block
 * integer sums are converted to float and scaled once per block (once per
 * 256 for the K-quants, whose sub-block scales are applied in int16/int32).
 *
 * Float sums are kept in 8 lanes and added at the end, so results differ
 * from the scalar references only by float rounding; the activation
 * quantizers reproduce the scalar ones bit for bit (same operations on the
 * same values, and vcvtps2dq in the default MXCSR mode rounds half to even,
 * like kern_nearest_int).
 */
#include "kernels/isa.h"
#include "kernels/kern_ref.h"

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------- */

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum_ps128(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16_at(const kern_f16 *p) { return _cvtsh_ss(*p); }

/* Sums of u*s over each group of 4 bytes: 8 int32. u is read unsigned. */
static inline __m256i dot_us(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* Signed x signed bytes: the sign of a moves onto b so that |a| can be the
 * unsigned operand (|-128| reads as 128 unsigned, which is right). */
static inline __m256i dot_ss(__m256i a, __m256i b) {
    return dot_us(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* (q - off) * x for unsigned levels q: the offset is taken off in int16. */
static inline __m256i dot_off(__m256i q, __m256i x, __m256i off) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, x), _mm256_maddubs_epi16(off, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* The 32 levels of a 16-byte nibble array in element order: low nibbles are
 * elements 0..15, high nibbles 16..31. */
static inline __m256i nibbles32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* 0xFF in byte i where bit i of the 32-bit little-endian word at qh is set. */
static inline __m256i bytes_from_bits32(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)bits),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
}

/* ---- 32-element block formats ------------------------------------------------
 * Four blocks per step: their fp16 scales are gathered with word unpacks and
 * converted together (one vcvtph2ps instead of four), each block's integer
 * sum is scaled by its lane of the products. Leftover blocks go one by one. */

typedef enum { BK_Q4_0, BK_Q5_0, BK_Q4_1, BK_Q5_1, BK_Q8_0 } blk_kind;

#define AI static inline __attribute__((always_inline))

/* Byte sizes of the weight and activation blocks, offset of the activation
 * quants; affine formats add w.m * x.s per block. */
AI size_t blk_wsize(blk_kind k) {
    switch (k) {
    case BK_Q4_0: return sizeof(block_q4_0);
    case BK_Q5_0: return sizeof(block_q5_0);
    case BK_Q4_1: return sizeof(block_q4_1);
    case BK_Q5_1: return sizeof(block_q5_1);
    case BK_Q8_0: break;
    }
    return sizeof(block_q8_0);
}
AI bool blk_affine(blk_kind k) { return k == BK_Q4_1 || k == BK_Q5_1; }

/* The int32 lanes of one weight block (whole block at w) times its
 * activation quants. */
AI __m256i blk_dot(blk_kind k, const uint8_t *w, const int8_t *xq) {
    const __m256i x = load256(xq);
    switch (k) {
    case BK_Q4_0: return dot_off(nibbles32(w + 2), x, _mm256_set1_epi8(8));
    case BK_Q5_0: { /* level - 16 as a signed byte: 0xF0 on top where bit 4 is clear */
        const __m256i top =
            _mm256_andnot_si256(bytes_from_bits32(w + 2), _mm256_set1_epi8((char)0xF0));
        return dot_ss(_mm256_or_si256(nibbles32(w + 6), top), x);
    }
    case BK_Q4_1: return dot_us(nibbles32(w + 4), x);
    case BK_Q5_1: {
        const __m256i b4 = _mm256_and_si256(bytes_from_bits32(w + 4), _mm256_set1_epi8(0x10));
        return dot_us(_mm256_or_si256(nibbles32(w + 8), b4), x);
    }
    case BK_Q8_0: break;
    }
    return dot_ss(load256(w + 2), x);
}

/* Products of the first fp16 fields (w.d * x.d) of 4 consecutive blocks in
 * lanes 0..3, of the second ones (w.m * x.s where they exist) in 4..7. */
AI __m256 scales4(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs) {
    const __m128i w01 = _mm_unpacklo_epi16(_mm_loadu_si32(w), _mm_loadu_si32(w + ws));
    const __m128i w23 = _mm_unpacklo_epi16(_mm_loadu_si32(w + 2 * ws), _mm_loadu_si32(w + 3 * ws));
    const __m128i x01 = _mm_unpacklo_epi16(_mm_loadu_si32(x), _mm_loadu_si32(x + xs));
    const __m128i x23 = _mm_unpacklo_epi16(_mm_loadu_si32(x + 2 * xs), _mm_loadu_si32(x + 3 * xs));
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_unpacklo_epi32(w01, w23)),
                         _mm256_cvtph_ps(_mm_unpacklo_epi32(x01, x23)));
}

AI void vd_blocks(blk_kind k, int64_t n, float *s, const void *vw, const void *vx) {
    const size_t ws = blk_wsize(k);
    const size_t xs = blk_affine(k) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t xo = blk_affine(k) ? 4 : 2;
    const uint8_t *w = vw, *x = vx;
    const int64_t nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4, w += 4 * ws, x += 4 * xs) {
        /* through memory: broadcasts from a load cost no shuffle (or register) */
        float sc[8];
        _mm256_storeu_ps(sc, scales4(w, ws, x, xs));
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            const __m256i p = blk_dot(k, w + b * ws, (const int8_t *)(x + b * xs + xo));
            const __m256 d = _mm256_broadcast_ss(&sc[b]);
            if (b & 1)
                acc1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc1);
            else
                acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0);
        }
        if (blk_affine(k)) accm = _mm_add_ps(accm, _mm_loadu_ps(sc + 4));
    }
    float summ = hsum_ps128(accm);
    for (; i < nb; i++, w += ws, x += xs) {
        const __m256i p = blk_dot(k, w, (const int8_t *)(x + xo));
        const __m256 d = _mm256_set1_ps(f16_at((const kern_f16 *)w) * f16_at((const kern_f16 *)x));
        acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0);
        if (blk_affine(k))
            summ += f16_at((const kern_f16 *)(w + 2)) * f16_at((const kern_f16 *)(x + 2));
    }
    *s = hsum_ps(_mm256_add_ps(acc0, acc1)) + summ;
}

static void vec_dot_q8_0(int64_t n, float *s, const void *w, const void *x) {
    vd_blocks(BK_Q8_0, n, s, w, x);
}
static void vec_dot_q4_0(int64_t n, float *s, const void *w, const void *x) {
    vd_blocks(BK_Q4_0, n, s, w, x);
}
static void vec_dot_q5_0(int64_t n, float *s, const void *w, const void *x) {
    vd_blocks(BK_Q5_0, n, s, w, x);
}
static void vec_dot_q4_1(int64_t n, float *s, const void *w, const void *x) {
    vd_blocks(BK_Q4_1, n, s, w, x);
}
static void vec_dot_q5_1(int64_t n, float *s, const void *w, const void *x) {
    vd_blocks(BK_Q5_1, n, s, w, x);
}

/* ---- K-quants ---------------------------------------------------------------- */

/* The 6-bit scales and mins of a Q4_K/Q5_K block, unpacked to bytes:
 * out[0..7] = scales of sub-blocks 0..7, out[8..15] = their mins. */
static inline __m128i k4_scales_mins(const uint8_t *q12) {
    uint32_t a, b, c;
    memcpy(&a, q12, 4);
    memcpy(&b, q12 + 4, 4);
    memcpy(&c, q12 + 8, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3fu;
    const uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4;
    const uint32_t m_lo = b & 0x3f3f3f3fu;
    const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4;
    return _mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo);
}

/* Broadcasts int16 word k of each 128-bit lane to the whole lane. */
static inline __m256i word_bcast(__m256i v, int k) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)((2 * k + 1) << 8 | 2 * k)));
}

/* -dmin * sum_j min_j * (bsum[2j] + bsum[2j+1]) of one block, in 4 lanes. */
static inline __m128 k4_mins_term(__m128i scmn, const int16_t *bsums, float dmin, __m128 acc) {
    const __m128i mins = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(scmn, scmn));
    const __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
    const __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    const __m128i prod = _mm_madd_epi16(mins, _mm_hadd_epi16(b0, b1));
    return _mm_fmadd_ps(_mm_set1_ps(-dmin), _mm_cvtepi32_ps(prod), acc);
}

static void vec_dot_q4_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q4_K *w = vw;
    const block_q8_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m128i scmn = k4_scales_mins(w[i].scales);
        accm = k4_mins_term(scmn, x[i].bsums, f16_at(&w[i].dmin) * x[i].d, accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scmn));
        const uint8_t *q4 = w[i].qs;
        const int8_t *q8 = x[i].qs;
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            const __m256i b = load256(q4);
            const __m256i lo = _mm256_and_si256(b, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            const __m256i plo = _mm256_maddubs_epi16(lo, load256(q8));
            const __m256i phi = _mm256_maddubs_epi16(hi, load256(q8 + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, word_bcast(sc, 2 * j)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, word_bcast(sc, 2 * j + 1)));
        }
        const float d = f16_at(&w[i].d) * x[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) + hsum_ps128(accm);
}

static void vec_dot_q5_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q5_K *w = vw;
    const block_q8_K *x = vx;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m128i scmn = k4_scales_mins(w[i].scales);
        accm = k4_mins_term(scmn, x[i].bsums, f16_at(&w[i].dmin) * x[i].d, accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scmn));
        const uint8_t *q4 = w[i].qs;
        const int8_t *q8 = x[i].qs;
        /* bit 2j of qh[l] is bit 4 of element 64j + l, bit 2j+1 of 64j + 32 + l;
         * h is shifted right once per sub-block so bit 0 is always the next
         * (16-bit shifts carry across bytes only into bits that are masked). */
        __m256i h = load256(w[i].qh);
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            const __m256i b = load256(q4);
            const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(h, one), 4);
            h = _mm256_srli_epi16(h, 1);
            const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(h, one), 4);
            h = _mm256_srli_epi16(h, 1);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(b, m4), hlo);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), hhi);
            const __m256i plo = _mm256_maddubs_epi16(lo, load256(q8));
            const __m256i phi = _mm256_maddubs_epi16(hi, load256(q8 + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, word_bcast(sc, 2 * j)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, word_bcast(sc, 2 * j + 1)));
        }
        const float d = f16_at(&w[i].d) * x[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc) + hsum_ps128(accm);
}

/* The 128 levels (0..63) of half a Q6_K block as four vectors of 32, in
 * element order: ql[0..31] low nibbles, ql[32..63] low nibbles, then the
 * high nibbles of both, each with its 2-bit pair from qh. */
static inline void q6_levels(const uint8_t *ql, const uint8_t *qh, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i l0 = load256(ql), l1 = load256(ql + 32), h = load256(qh);
    const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x03)), 4);
    const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x0C)), 2);
    const __m256i h2 = _mm256_and_si256(h, _mm256_set1_epi8(0x30));
    const __m256i h3 = _mm256_srli_epi16(_mm256_and_si256(h, _mm256_set1_epi8((char)0xC0)), 2);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
}

/* Levels are stored +32; the offset is removed once per block through the
 * activations' 16-element sums: sum sc_k * 32 * bsum_k. */
static void vec_dot_q6_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    const int64_t nb = n / QK_K;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        const __m256i off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(x[i].bsums));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            __m256i q[4];
            q6_levels(w[i].ql + 64 * half, w[i].qh + 32 * half, q);
            const int8_t *q8 = x[i].qs + 128 * half;
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                /* scales 8*half + 2k (first 16 elements) and + 1 (next 16) */
                const int s0 = 8 * half + 2 * k;
                const __m128i ctl =
                    _mm_set_epi64x(0x0101010101010101LL * (s0 + 1), 0x0101010101010101LL * s0);
                const __m256i scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, ctl));
                const __m256i p = _mm256_maddubs_epi16(q[k], load256(q8 + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scv));
            }
        }
        const float d = f16_at(&w[i].d) * x[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* ---- float types ------------------------------------------------------------- */

static inline __m256 f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 bf16x8(const uint16_t *p) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

static void vec_dot_f32(int64_t n, float *s, const void *vw, const void *vx) {
    const float *a = vw, *b = vx;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k),
                                     acc[k]);
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
    float sum =
        hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += a[i] * b[i];
    *s = sum;
}

static void vec_dot_f16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *a = vw, *b = vx;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(f16x8(a + i + 8 * k), f16x8(b + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(f16x8(a + i), f16x8(b + i), acc[0]);
    float sum =
        hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += _cvtsh_ss(a[i]) * _cvtsh_ss(b[i]);
    *s = sum;
}

static void vec_dot_bf16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *a = vw, *b = vx;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(bf16x8(a + i + 8 * k), bf16x8(b + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(bf16x8(a + i), bf16x8(b + i), acc[0]);
    float sum =
        hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += kern_bf16_to_f32(a[i]) * kern_bf16_to_f32(b[i]);
    *s = sum;
}

/* ---- conversions and activation quantizers ------------------------------------ */

static void from_float_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = kern_f32_to_f16(x[i]);
}

static void to_float_f16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f16x8(x + i));
    for (; i < n; i++) y[i] = kern_f16_to_f32(x[i]);
}

/* Round to nearest even; NaNs keep their top bits and become quiet. */
static void from_float_bf16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i + 8 * k));
            const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
            const __m256i rounded = _mm256_srli_epi32(
                _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd)), 16);
            const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
            const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
            r[k] = _mm256_blendv_epi8(rounded, quiet, nan);
        }
        /* packus works within 128-bit lanes; put the quadwords back in order */
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(y + i), packed);
    }
    for (; i < n; i++) y[i] = kern_f32_to_bf16(x[i]);
}

static void to_float_bf16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, bf16x8(x + i));
    for (; i < n; i++) y[i] = kern_bf16_to_f32(x[i]);
}

static inline float absmax32(const float *x, __m256 v[4]) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* v[k] * id rounded half to even, as 32 int8 in element order; the int32
 * values are left in iv for sums. */
static inline __m256i quant32(const __m256 v[4], float id, __m256i iv[4]) {
    const __m256 mul = _mm256_set1_ps(id);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) iv[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], mul));
    const __m256i a = _mm256_packs_epi32(iv[0], iv[1]);
    const __m256i b = _mm256_packs_epi32(iv[2], iv[3]);
    /* the packs interleave 128-bit lanes: dwords 0 4 1 5 2 6 3 7 undo it */
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b),
                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m256 v[4];
        __m256i iv[4];
        const float amax = absmax32(x, v);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = (kern_f16)_cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256((__m256i *)y[i].qs, quant32(v, id, iv));
    }
}

static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        __m256 v[4];
        __m256i iv[4];
        const float amax = absmax32(x, v);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = (kern_f16)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256((__m256i *)y[i].qs, quant32(v, id, iv));
        const int sum = hsum_epi32(
            _mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]), _mm256_add_epi32(iv[2], iv[3])));
        y[i].s = (kern_f16)_cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT);
    }
}

/* As the reference: the scale comes from the first element of largest
 * magnitude, with its sign. */
static void from_float_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8)
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m256 am = _mm256_set1_ps(amax);
        int first = 0;
        for (int k = 0; k < QK_K; k += 8) {
            const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k));
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(a, am, _CMP_EQ_OQ));
            if (hit) {
                first = k + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = -127.f / x[first];
        for (int k = 0; k < QK_K; k += 32) {
            __m256 v[4];
            __m256i iv[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + k + 8 * j);
            _mm256_storeu_si256((__m256i *)(y[i].qs + k), quant32(v, iscale, iv));
            y[i].bsums[k / 16] = (int16_t)hsum_epi32(_mm256_add_epi32(iv[0], iv[1]));
            y[i].bsums[k / 16 + 1] = (int16_t)hsum_epi32(_mm256_add_epi32(iv[2], iv[3]));
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- registration ------------------------------------------------------------- */

const kern_fns kern_avx2_fns[KERN_ISA_NTYPES] = {
    [KERN_F32] = {.vec_dot = vec_dot_f32},
    [KERN_F16] = {.vec_dot = vec_dot_f16, .from_float = from_float_f16, .to_float = to_float_f16},
    [KERN_BF16] = {.vec_dot = vec_dot_bf16,
                   .from_float = from_float_bf16,
                   .to_float = to_float_bf16},
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

bool kern_avx2_usable(void) {
    unsigned a, b, c, d;
    /* F16C (CPUID.1:ECX bit 29) comes with every AVX2 CPU, but say so */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_F16C)) return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void kern_avx2_install(kern_fns *table) { kern_isa_apply(table, kern_avx2_fns); }
