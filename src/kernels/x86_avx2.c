/*
 * x86_avx2.c - kernels for CPUs with AVX2, FMA and F16C (Haswell, Zen 1 and
 * later); the only file built with those flags, so nothing here runs before
 * kern_avx2_usable() said yes.
 *
 * Integer types multiply their quants against 8-bit activations with
 * vpmaddubsw (unsigned x signed bytes -> pairs of int16) and vpmaddwd; the
 * weights are never widened to float. Pair sums stay within int16 because
 * activations are in [-127, 127] and weight levels are at most 128 in
 * magnitude once signs are moved onto the activations (blk_levels). Per-block
 * integer sums are converted to float and scaled once per block (once per
 * 256 for the K-quants, whose sub-block scales are applied in int16/int32).
 *
 * Prompts go through gemm: each product is written once as a tile of one
 * weight row against several tokens, vec_dot being the one-token tile, so
 * a batch has the bits of one token at a time (see "tiles" below). Q4_0,
 * Q5_0 and IQ4_NL compute the same integers another way for many tokens
 * (gemm_nl) and for up to 8 tokens against all the rows (x86_avx2_gemv.c,
 * as Q8_0), with the same float operations.
 *
 * Float sums are kept in 8 lanes and added at the end, so results differ
 * from the scalar references only by float rounding; the activation
 * quantizers reproduce the scalar ones bit for bit (same operations on the
 * same values, and vcvtps2dq in the default MXCSR mode rounds half to even,
 * like kern_nearest_int).
 */
#include "kernels/isa.h"
#include "kernels/kern_ref.h"
#include "kernels/x86_avx2.h"

#include <assert.h>
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------- */

static inline float hsum_ps128(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Sums of u*s over each group of 4 bytes: 8 int32. u is read unsigned. */
static inline __m256i dot_us(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

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

/* Prefetches the nbytes at p, a line at a time (a prefetch never faults,
 * even past the weight). */
static inline void prefetch_bytes(const void *p, size_t nbytes) {
    for (size_t o = 0; o < nbytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

/* How far ahead rows ws bytes long are prefetched: whole rows some 16 KiB
 * on (the hardware prefetcher alone lags behind memory: x86_avx2_gemv.c).
 * gemm_tiles prefetches as it first reads each group of rows (the first
 * group of tokens) for 3 tokens and more, so that the tiles do not wait on
 * memory: with the weights from memory, 4 tokens of Q8_0 at 896 x 4864 took
 * 614 us without, 436 with, Q6_K 309 and 261 (bench/README.md); 2 tokens of
 * Q6_K took 15 % longer with, so they do not. gemm_nl's column chunks
 * gained nothing from it: they do not either. */
static inline size_t ahead_bytes(size_t ws) { return (16384 / (ws ? ws : 1) + 1) * ws; }

/* ---- tiles: one weight row against up to 8 tokens ---------------------------------
 * Every product below is written once, for a tile of one weight row and T
 * tokens (T a constant: 1 to 4, or 8). vec_dot is the tile with T = 1 and
 * gemm runs the tiles with T > 1, so each (row, token) pair goes through the
 * same float operations in the same order whatever the batch (the contract
 * of kern_gemm_fn); only the unpacking of the weights (levels, scales) is
 * shared between the tokens. Integer sums are exact, so their order is free. */

enum { TMAX = 4 };

#define NOINLINE static __attribute__((noinline))

/* Pins v to a register at this point: without it the compiler reassociates
 * a tile's integer sums (which is exact) into long trees that spill. */
#define KEEP(v) __asm__("" : "+x"(v))

/* ---- 32-element block formats ------------------------------------------------
 * Four blocks per step: their fp16 scales are gathered with word unpacks and
 * converted together (one vcvtph2ps instead of four), each block's integer
 * sum is scaled by its lane of the products. Leftover blocks go one by one. */

typedef enum { BK_Q4_0, BK_Q5_0, BK_Q4_1, BK_Q5_1, BK_Q8_0, BK_IQ4_NL } blk_kind;

/* Byte sizes of the weight and activation blocks, offset of the activation
 * quants; affine formats add w.m * x.s per block. */
AI size_t blk_wsize(blk_kind k) {
    switch (k) {
    case BK_Q4_0: return sizeof(block_q4_0);
    case BK_Q5_0: return sizeof(block_q5_0);
    case BK_Q4_1: return sizeof(block_q4_1);
    case BK_Q5_1: return sizeof(block_q5_1);
    case BK_IQ4_NL: return sizeof(block_iq4_nl);
    case BK_Q8_0: break;
    }
    return sizeof(block_q8_0);
}
AI bool blk_affine(blk_kind k) { return k == BK_Q4_1 || k == BK_Q5_1; }

/* The 32 levels of one weight block, ready for any token: u is read unsigned
 * by vpmaddubsw; for the signed formats u = |level| and s carries the signs
 * that move onto the activations with vpsignb (|-128| reads as 128
 * unsigned, which is right). */
typedef struct {
    __m256i u, s;
} blk_levels;

AI blk_levels blk_unpack(blk_kind k, const uint8_t *w) {
    if (k == BK_Q4_1) return (blk_levels){nibbles32(w + 4), _mm256_setzero_si256()};
    if (k == BK_Q5_1) {
        const __m256i b4 = _mm256_and_si256(bytes_from_bits32(w + 4), _mm256_set1_epi8(0x10));
        return (blk_levels){_mm256_or_si256(nibbles32(w + 8), b4), _mm256_setzero_si256()};
    }
    const __m256i v = load256(w + 2); /* Q8_0 (Q4_0 and Q5_0 go in pairs: pair_unpack) */
    return (blk_levels){_mm256_sign_epi8(v, v), v};
}

/* The int32 lanes of one unpacked weight block times activation quants xq. */
AI __m256i blk_dot(blk_kind k, blk_levels l, const int8_t *xq) {
    const __m256i x = load256(xq);
    if (blk_affine(k)) return dot_us(l.u, x);
    return dot_us(l.u, _mm256_sign_epi8(x, l.s));
}

/* One row of a 32-element block format against T tokens (xp[t]: their
 * activation rows); out[t] = the dot products. Per pair: lanes of even
 * blocks of each group of 4 and of the leftover blocks go to acc0, of odd
 * blocks to acc1; w.m * x.s terms of a group are added in 4 lanes. Used
 * for the vec_dot of Q4_1 and Q5_1, which have no gemm (bp_tile below
 * serves the others). */
AI void blk_tile(blk_kind k, const int T, int64_t n, const uint8_t *w, const uint8_t *const *xp,
                 float *out) {
    const size_t ws = blk_wsize(k);
    const size_t xs = blk_affine(k) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t xo = blk_affine(k) ? 4 : 2;
    const int64_t nb = n / 32;
    __m256 acc0[TMAX], acc1[TMAX];
    __m128 accm[TMAX];
    float summ[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        acc0[t] = _mm256_setzero_ps();
        acc1[t] = _mm256_setzero_ps();
        accm[t] = _mm_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t *wb = w + i * ws;
        const __m256 wd = fields4(wb, ws);
        /* through memory: broadcasts from a load cost no shuffle (or register) */
        float sc[TMAX][8];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            _mm256_storeu_ps(sc[t], _mm256_mul_ps(wd, fields4(xp[t] + i * xs, xs)));
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            const blk_levels l = blk_unpack(k, wb + b * ws);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const __m256i p = blk_dot(k, l, (const int8_t *)(xp[t] + (i + b) * xs + xo));
                const __m256 d = _mm256_broadcast_ss(&sc[t][b]);
                if (b & 1)
                    acc1[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc1[t]);
                else
                    acc0[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0[t]);
            }
        }
        if (blk_affine(k))
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) accm[t] = _mm_add_ps(accm[t], _mm_loadu_ps(sc[t] + 4));
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) summ[t] = hsum_ps128(accm[t]);
    for (; i < nb; i++) {
        const uint8_t *wb = w + i * ws;
        const blk_levels l = blk_unpack(k, wb);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = xp[t] + i * xs;
            const __m256i p = blk_dot(k, l, (const int8_t *)(xb + xo));
            const __m256 d =
                _mm256_set1_ps(f16_at((const kern_f16 *)wb) * f16_at((const kern_f16 *)xb));
            acc0[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0[t]);
            if (blk_affine(k))
                summ[t] += f16_at((const kern_f16 *)(wb + 2)) * f16_at((const kern_f16 *)(xb + 2));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) out[t] = hsum_ps(_mm256_add_ps(acc0[t], acc1[t])) + summ[t];
}

/* ---- Q8_0, Q4_0, Q5_0 and IQ4_NL against Q8_0: blocks in pairs -------------------
 * The int32 sums of two blocks go in one vector: for Q8_0 vphaddd puts the
 * lanes of the two blocks side by side ("pair layout": lanes 0, 1, 4, 5 the
 * first block's, 2, 3, 6, 7 the second's, each the sum of 8 consecutive
 * products); Q4_0 and Q5_0 unpack both blocks in one vector per half
 * ("nibble layout", x86_avx2.h: lanes 0..3 the first block's, 4..7 the
 * second's), which needs no horizontal add (vphaddw costs as much as
 * four vpand). So one conversion and one multiply-add by the blocks' w.d *
 * x.d, [a a b b a a b b] or [a a a a b b b b], scale both into one
 * accumulator per pair. A lone last block pairs with zeros (scale 0). The
 * activations' scales in that layout can be made once per token for all
 * the rows of a gemm (bp_prep, nl_prep); they are exact conversions, so the
 * products are the same either way. One accumulator per token lets a tile
 * take 8 tokens, each weight pair's unpacking serving all of them.
 * x86_avx2_gemv.c computes the same lanes for one token. */

/* A gemm prepares each token of a group in PREP_BYTES (bp_prep: 16 bytes a
 * block, rows of up to 8192). */
enum { TBIG = 8, PREP_BYTES = 4096 };

/* Lanes 2q (a) and 2q + 1 (b) of v spread as the sums of k's layout want:
 * [a a b b a a b b] (Q8_0) or [a a a a b b b b]. */
AI __m256 pair_lanes(blk_kind k, __m256 v, int q) {
    const int a = 2 * q, b = a + 1;
    return _mm256_permutevar8x32_ps(v, k == BK_Q8_0 ? _mm256_setr_epi32(a, a, b, b, a, a, b, b)
                                                    : _mm256_setr_epi32(a, a, a, a, b, b, b, b));
}

/* The first fp16 field of the block at p and, when `two`, of the one at
 * p + stride (else 0), in k's layout. */
AI __m256 pair_scales(blk_kind k, const uint8_t *p, size_t stride, bool two) {
    uint16_t a, b = 0;
    memcpy(&a, p, 2);
    if (two) memcpy(&b, p + stride, 2);
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)b << 16 | a)));
    return pair_lanes(k, _mm256_castps128_ps256(f), 0);
}

/* pair_scales of every pair of one token's Q8_0 row (for Q8_0 weights), 8
 * floats per pair. */
static void bp_prep(int64_t n, const uint8_t *x, float *xd) {
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i += 2)
        _mm256_storeu_ps(xd + 4 * i, pair_scales(BK_Q8_0, x + i * sizeof(block_q8_0),
                                                 sizeof(block_q8_0), i + 1 < nb));
}

/* A weight pair's levels, ready for any token: u = |level| (read unsigned by
 * vpmaddubsw) and s = level, whose signs move onto the activations with
 * vpsignb; for Q8_0 (u0, s0) is the first block, (u1, s1) the second, for
 * Q4_0 and Q5_0 the lo and hi halves of nl_levels. */
typedef struct {
    __m256i u0, s0, u1, s1;
} pair_levels;

AI pair_levels pair_unpack(blk_kind k, const uint8_t *w, bool two) {
    __m256i a, b;
    if (k == BK_Q8_0) {
        a = load256(w + 2);
        b = two ? load256(w + sizeof(block_q8_0) + 2) : _mm256_setzero_si256();
    } else if (k == BK_IQ4_NL) {
        iq4nl_levels(w, two, &a, &b);
    } else {
        const __m256i bias = _mm256_set1_epi8(k == BK_Q5_0 ? 16 : 8);
        nl_levels(k == BK_Q5_0, w, two, &a, &b);
        a = _mm256_sub_epi8(a, bias);
        b = _mm256_sub_epi8(b, bias);
    }
    return (pair_levels){_mm256_sign_epi8(a, a), a, _mm256_sign_epi8(b, b), b};
}

/* The int32 sums of a weight pair and the activation blocks at x (the
 * second only when `two`) in k's layout. Levels of at most 16 in magnitude
 * (Q4_0, Q5_0) keep sums of 4 products within int16, so the halves' vpmaddubsw
 * results are added before one vpmaddwd; Q8_0 widens each block. */
AI __m256i pair_dot(blk_kind k, pair_levels l, const uint8_t *x, bool two) {
    if (k == BK_Q8_0) {
        const __m256i p0 = dot_us(l.u0, _mm256_sign_epi8(load256(x + 2), l.s0));
        const __m256i p1 =
            two ? dot_us(l.u1, _mm256_sign_epi8(load256(x + sizeof(block_q8_0) + 2), l.s1))
                : _mm256_setzero_si256();
        return _mm256_hadd_epi32(p0, p1);
    }
    __m256i lo, hi;
    nl_acts(x, two, &lo, &hi);
    if (k == BK_IQ4_NL) return iq4nl_dot(l.s0, l.s1, lo, hi);
    const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(l.u0, _mm256_sign_epi8(lo, l.s0)),
                                       _mm256_maddubs_epi16(l.u1, _mm256_sign_epi8(hi, l.s1)));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/* One row of k against T tokens; xd: their prepared scales, or NULL. Groups
 * of 4 blocks take their scales with one conversion per side, the rest of
 * the row goes pair by pair. */
AI void bp_tile(blk_kind k, const int T, int64_t n, const uint8_t *w, const uint8_t *const *xp,
                const float *const *xd, float *out) {
    const size_t ws = blk_wsize(k), xs = sizeof(block_q8_0);
    const int64_t nb = n / QK8_0;
    __m256 acc[TBIG];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t *wb = w + i * ws;
        const __m256 w4 = fields4(wb, ws);
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++) {
            const pair_levels l = pair_unpack(k, wb + 2 * q * ws, true);
            const __m256 wd = pair_lanes(k, w4, q);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const uint8_t *xb = xp[t] + (i + 2 * q) * xs;
                const __m256i p = pair_dot(k, l, xb, true);
                const __m256 xdv = xd ? _mm256_loadu_ps(xd[t] + 4 * (i + 2 * q))
                                      : pair_lanes(k, fields4(xp[t] + i * xs, xs), q);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(wd, xdv), acc[t]);
            }
        }
    }
    for (; i < nb; i += 2) {
        const bool two = i + 1 < nb;
        const uint8_t *wb = w + i * ws;
        const pair_levels l = pair_unpack(k, wb, two);
        const __m256 wd = pair_scales(k, wb, ws, two);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = xp[t] + i * xs;
            const __m256i p = pair_dot(k, l, xb, two);
            const __m256 xdv = xd ? _mm256_loadu_ps(xd[t] + 4 * i) : pair_scales(k, xb, xs, two);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(wd, xdv), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) out[t] = hsum_ps(acc[t]);
}

/* ---- Q4_0, Q5_0 and IQ4_NL against several tokens: prepared activations --------------
 * bp_tile's products for these formats, cheaper when the tokens are
 * prepared first (nl_prep) for unsigned levels (nl_xdot): no sign moves, 8
 * vector instructions a pair and token instead of 11; same integers and
 * float operations, so the same bits. IQ4_NL keeps its signed levels and
 * sign moves (iq4nl_dot) but is spared laying out the activations and
 * their scales again for every row. Preparing costs about as much as a
 * row's products, so a group of tokens is prepared once for a group of
 * rows (about 64 KiB of weights); rows longer than NL_CHUNK blocks go in
 * column chunks (whole groups of 4 blocks), their accumulators kept between
 * chunks, so that the preparations of 8 tokens take at most 32 KiB (of
 * stack, as gemm_tiles' 32 KiB of scales). */

enum { NL_CHUNK = 64, NL_ROWS = 32 /* rows of a group when the rows go in chunks */ };

/* A token prepared for a pair: activations and their scales in the nibble
 * layout. */
typedef struct {
    nl_xpair x;
    __m256 d;
} nl_tpair;

/* Blocks i0 <= i < i1 of a token's row of nb blocks at x, as pairs (bias:
 * nl_xpair_make's). */
static void nl_prep(short bias, int64_t i0, int64_t i1, int64_t nb, const uint8_t *x, nl_tpair *p) {
    const size_t xs = sizeof(block_q8_0);
    for (int64_t i = i0; i < i1; i += 2) {
        const bool two = i + 1 < nb;
        p[(i - i0) / 2] = (nl_tpair){nl_xpair_make(x + i * xs, two, bias),
                                     pair_scales(BK_Q4_0, x + i * xs, xs, two)};
    }
}

/* The levels of k's weight pair at b: unsigned (nl_levels) for Q4_0 and
 * Q5_0, signed (iq4nl_levels) for IQ4_NL. */
AI void nl_pair_levels(blk_kind k, const uint8_t *b, bool two, __m256i *lo, __m256i *hi) {
    if (k == BK_IQ4_NL)
        iq4nl_levels(b, two, lo, hi);
    else
        nl_levels(k == BK_Q5_0, b, two, lo, hi);
}

/* The nibble-layout sums of nl_pair_levels and a prepared token. */
AI __m256i nl_pair_dot(blk_kind k, __m256i lo, __m256i hi, const nl_xpair *x) {
    return k == BK_IQ4_NL ? iq4nl_dot(lo, hi, x->lo, x->hi) : nl_xdot(lo, hi, x);
}

/* Blocks i0 <= i < i1 (i0 a multiple of 4; i1 too unless it is nb) of one
 * row against T prepared tokens (xt[t]: the pairs from block i0), into
 * acc[t]. */
AI void nl_span(blk_kind k, const int T, int64_t i0, int64_t i1, int64_t nb, const uint8_t *w,
                const nl_tpair *const *xt, __m256 *acc) {
    const size_t ws = blk_wsize(k);
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        const uint8_t *wb = w + i * ws;
        const __m256 w4 = fields4(wb, ws);
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++) {
            __m256i lo, hi;
            nl_pair_levels(k, wb + 2 * q * ws, true, &lo, &hi);
            const __m256 wd = pair_lanes(k, w4, q);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const nl_tpair *x = xt[t] + (i - i0) / 2 + q;
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nl_pair_dot(k, lo, hi, &x->x)),
                                         _mm256_mul_ps(wd, x->d), acc[t]);
            }
        }
    }
    for (; i < i1; i += 2) {
        const bool two = i + 1 < nb;
        const uint8_t *wb = w + i * ws;
        __m256i lo, hi;
        nl_pair_levels(k, wb, two, &lo, &hi);
        const __m256 wd = pair_scales(k, wb, ws, two);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const nl_tpair *x = xt[t] + (i - i0) / 2;
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nl_pair_dot(k, lo, hi, &x->x)),
                                     _mm256_mul_ps(wd, x->d), acc[t]);
        }
    }
}

/* nl_span of nrow rows (ws bytes apart) against T tokens, tc of them real:
 * the accumulators start at zero (i0 == 0) or from accs, and go back to
 * accs, or (i1 == nb) are summed into y. */
AI void nl_rows(blk_kind k, const int T, int64_t i0, int64_t i1, int64_t nb, const uint8_t *w,
                size_t ws, int64_t nrow, const nl_tpair *const *xt, __m256 (*accs)[TBIG], int tc,
                float *y, int64_t ldy) {
    for (int64_t r = 0; r < nrow; r++) {
        __m256 acc[TBIG];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t] = i0 ? accs[r][t] : _mm256_setzero_ps();
        nl_span(k, T, i0, i1, nb, w + r * ws, xt, acc);
        if (i1 < nb) {
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) accs[r][t] = acc[t];
        } else {
            for (int t = 0; t < tc; t++) y[t * ldy + r] = hsum_ps(acc[t]);
        }
    }
}

#define NL_ROWS_FN(name, k, T)                                                                     \
    NOINLINE void name(int64_t i0, int64_t i1, int64_t nb, const uint8_t *w, size_t ws,            \
                       int64_t nrow, const nl_tpair *const *xt, __m256(*accs)[TBIG], int tc,       \
                       float *y, int64_t ldy) {                                                    \
        nl_rows(k, T, i0, i1, nb, w, ws, nrow, xt, accs, tc, y, ldy);                              \
    }
typedef void (*nl_rows_fn)(int64_t i0, int64_t i1, int64_t nb, const uint8_t *w, size_t ws,
                           int64_t nrow, const nl_tpair *const *xt, __m256 (*accs)[TBIG], int tc,
                           float *y, int64_t ldy);
NL_ROWS_FN(nl_q4_0_t8, BK_Q4_0, 8)
NL_ROWS_FN(nl_q4_0_t4, BK_Q4_0, 4)
NL_ROWS_FN(nl_q4_0_t2, BK_Q4_0, 2)
NL_ROWS_FN(nl_q5_0_t8, BK_Q5_0, 8)
NL_ROWS_FN(nl_q5_0_t4, BK_Q5_0, 4)
NL_ROWS_FN(nl_q5_0_t2, BK_Q5_0, 2)
NL_ROWS_FN(nl_iq4_nl_t8, BK_IQ4_NL, 8)
NL_ROWS_FN(nl_iq4_nl_t4, BK_IQ4_NL, 4)
NL_ROWS_FN(nl_iq4_nl_t2, BK_IQ4_NL, 2)

/* The gemm of Q4_0, Q5_0 or IQ4_NL for nt >= 2 tokens (the contract of
 * kern_gemm_fn). A last group of one token pairs it with itself. */
static void gemm_nl(blk_kind k, int64_t n, const uint8_t *w, size_t ws, int64_t nr,
                    const uint8_t *x, size_t xs, int64_t nt, float *y, int64_t ldy) {
    static const nl_rows_fn q4[3] = {nl_q4_0_t2, nl_q4_0_t4, nl_q4_0_t8};
    static const nl_rows_fn q5[3] = {nl_q5_0_t2, nl_q5_0_t4, nl_q5_0_t8};
    static const nl_rows_fn iq4[3] = {nl_iq4_nl_t2, nl_iq4_nl_t4, nl_iq4_nl_t8};
    const int64_t nb = n / QK8_0;
    const short bias = k == BK_Q5_0 ? 16 : k == BK_Q4_0 ? 8 : 0;
    _Alignas(32) nl_tpair prep[TBIG][NL_CHUNK / 2];
    _Alignas(32) __m256 accs[NL_ROWS][TBIG];
    const int64_t rmax = nb > NL_CHUNK ? NL_ROWS : 256;
    int64_t rg = (int64_t)(65536 / ws);
    rg = rg < 4 ? 4 : rg > rmax ? rmax : rg;
    for (int64_t r0 = 0; r0 < nr; r0 += rg) {
        const int64_t nrow = nr - r0 < rg ? nr - r0 : rg;
        for (int64_t t0 = 0; t0 < nt; t0 += TBIG) {
            const int tc = nt - t0 < TBIG ? (int)(nt - t0) : TBIG;
            const int sel = tc > 4 ? 2 : tc > 2 ? 1 : 0;
            const nl_rows_fn rows = (k == BK_Q5_0 ? q5 : k == BK_IQ4_NL ? iq4 : q4)[sel];
            const nl_tpair *xt[TBIG];
            for (int t = 0; t < TBIG; t++) xt[t] = prep[t < tc ? t : tc - 1];
            for (int64_t i0 = 0; i0 < nb; i0 += NL_CHUNK) {
                const int64_t i1 = nb - i0 < NL_CHUNK ? nb : i0 + NL_CHUNK;
                for (int t = 0; t < tc; t++)
                    nl_prep(bias, i0, i1, nb, x + (size_t)(t0 + t) * xs, prep[t]);
                rows(i0, i1, nb, w + (size_t)r0 * ws, ws, nrow, xt, accs, tc, y + t0 * ldy + r0,
                     ldy);
            }
        }
    }
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

/* -dmin * sum_j min_j * (bsum[2j] + bsum[2j+1]) of one block, in 4 lanes
 * (mins: the 8 mins as int16). */
static inline __m128 k4_mins_term(__m128i mins, const int16_t *bsums, float dmin, __m128 acc) {
    const __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
    const __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    const __m128i prod = _mm_madd_epi16(mins, _mm_hadd_epi16(b0, b1));
    return _mm_fmadd_ps(_mm_set1_ps(-dmin), _mm_cvtepi32_ps(prod), acc);
}

/* One Q4_K (q5 false) or Q5_K row against T tokens of Q8_K. Per pair: the
 * block's integer sum scaled once into acc, the mins term into accm. */
AI void k45_tile(bool q5, const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp,
                 float *out) {
    const size_t wsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc[TBIG];
    __m128 accm[TBIG];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        acc[t] = _mm256_setzero_ps();
        accm[t] = _mm_setzero_ps();
    }
    for (int64_t i = 0; i < nb; i++) {
        /* Q4_K and Q5_K share d, dmin and scales at the start of the block */
        const block_q4_K *w4 = (const block_q4_K *)(vw + i * wsz);
        const block_q5_K *w5 = (const block_q5_K *)(vw + i * wsz);
        const block_q8_K *x[TBIG];
        const __m128i scmn = k4_scales_mins(w4->scales);
        const __m128i mins = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(scmn, scmn));
        const float wdmin = f16_at(&w4->dmin), wd = f16_at(&w4->d);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            x[t] = (const block_q8_K *)xp[t] + i;
            accm[t] = k4_mins_term(mins, x[t]->bsums, wdmin * x[t]->d, accm[t]);
        }
        const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scmn));
        const uint8_t *q4 = q5 ? w5->qs : w4->qs;
        /* bit 2j of qh[l] is bit 4 of element 64j + l, bit 2j+1 of 64j + 32 + l;
         * h is shifted right once per sub-block so bit 0 is always the next
         * (16-bit shifts carry across bytes only into bits that are masked). */
        __m256i h = q5 ? load256(w5->qh) : _mm256_setzero_si256();
        __m256i sumi[TBIG];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) sumi[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < QK_K / 64; j++, q4 += 32) {
            const __m256i b = load256(q4);
            __m256i lo = _mm256_and_si256(b, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            if (q5) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(h, one), 4));
                h = _mm256_srli_epi16(h, 1);
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(h, one), 4));
                h = _mm256_srli_epi16(h, 1);
            }
            const __m256i slo = word_bcast(sc, 2 * j), shi = word_bcast(sc, 2 * j + 1);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const int8_t *q8 = x[t]->qs + 64 * j;
                const __m256i plo = _mm256_maddubs_epi16(lo, load256(q8));
                const __m256i phi = _mm256_maddubs_epi16(hi, load256(q8 + 32));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(plo, slo));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(phi, shi));
                KEEP(sumi[t]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            acc[t] =
                _mm256_fmadd_ps(_mm256_set1_ps(wd * x[t]->d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) out[t] = hsum_ps(acc[t]) + hsum_ps128(accm[t]);
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

/* Q6_K and IQ4_XS rows share a frame (kq_tile): per super-block, a body
 * that leaves one int32 vector per token (sumi) and returns the block's
 * scale w.d; the frame scales it by w.d * x.d into the token's accumulator. */
typedef enum { KQ_Q6_K, KQ_IQ4_XS } kq_kind;

/* Q6_K: levels are stored +32; the offset is removed once per block through
 * the activations' 16-element sums: sum sc_k * 32 * bsum_k. */
AI float q6_block(const int T, const block_q6_K *w, const block_q8_K *const *x, __m256i *sumi) {
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)w->scales);
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    /* the even scales in the low lane, the odd ones in the high lane, as
     * int16: word j of each lane spreads scales 2j and 2j + 1 (one vpshufb
     * for each 32 elements) */
    const __m256i sc_eo = _mm256_cvtepi8_epi16(
        _mm_shuffle_epi8(sc8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15)));
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        const __m256i off = _mm256_madd_epi16(sc16, load256(x[t]->bsums));
        sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
    }
#pragma GCC unroll 2
    for (int half = 0; half < 2; half++) {
        __m256i q[4];
        q6_levels(w->ql + 64 * half, w->qh + 32 * half, q);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            /* scales 8*half + 2k (first 16 elements) and + 1 (next 16) */
            const __m256i scv = word_bcast(sc_eo, 4 * half + k);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const int8_t *q8 = x[t]->qs + 128 * half + 32 * k;
                const __m256i p = _mm256_maddubs_epi16(q[k], load256(q8));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, scv));
                KEEP(sumi[t]);
            }
        }
    }
    return f16_at(&w->d);
}

/* IQ4_XS: per 64 elements the codebook levels of sub-blocks 2j and 2j + 1
 * (each in element order, one vector), their signs moved onto the
 * activations, the int16 pair sums scaled by ls - 32 with vpmaddwd into the
 * block's int32 sum. */
AI float iq4_xs_block(const int T, const block_iq4_xs *w, const block_q8_K *const *x,
                      __m256i *sumi) {
    const __m256i lut = iq4_lut256(), m4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) sumi[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < QK_K / 64; j++) {
        const __m256i b = load256(w->qs + 32 * j);
        const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(b, m4));
        const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(b, 4), m4));
        const __m256i v0 = _mm256_permute2x128_si256(lo, hi, 0x20);
        const __m256i v1 = _mm256_permute2x128_si256(lo, hi, 0x31);
        const __m256i u0 = _mm256_sign_epi8(v0, v0), u1 = _mm256_sign_epi8(v1, v1);
        const __m256i s0 = _mm256_set1_epi16((short)(kern_iq4_xs_ls(w, 2 * j) - 32));
        const __m256i s1 = _mm256_set1_epi16((short)(kern_iq4_xs_ls(w, 2 * j + 1) - 32));
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const int8_t *q8 = x[t]->qs + 64 * j;
            const __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(load256(q8), v0));
            const __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(load256(q8 + 32), v1));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p0, s0));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p1, s1));
            KEEP(sumi[t]);
        }
    }
    return f16_at(&w->d);
}

/* One Q6_K or IQ4_XS row against T tokens of Q8_K. */
AI void kq_tile(kq_kind k, const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp,
                float *out) {
    const size_t bs = k == KQ_Q6_K ? sizeof(block_q6_K) : sizeof(block_iq4_xs);
    const int64_t nb = n / QK_K;
    __m256 acc[TBIG];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const block_q8_K *x[TBIG];
        __m256i sumi[TBIG];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) x[t] = (const block_q8_K *)xp[t] + i;
        const uint8_t *wb = vw + (size_t)i * bs;
        const float wd = k == KQ_Q6_K ? q6_block(T, (const block_q6_K *)wb, x, sumi)
                                      : iq4_xs_block(T, (const block_iq4_xs *)wb, x, sumi);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            acc[t] =
                _mm256_fmadd_ps(_mm256_set1_ps(wd * x[t]->d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) out[t] = hsum_ps(acc[t]);
}

/* ---- Q2_K and Q3_K ----------------------------------------------------------
 * Both store 2 low bits a level as 4 levels a byte: per 128 elements, byte l
 * of the 32 holds elements l, l + 32, l + 64 and l + 96 in bits 0-1, 2-3,
 * 4-5 and 6-7, so one 32-byte load and a shift give 32 consecutive
 * elements: sub-blocks 2p and 2p + 1 (16 each) in the two 128-bit lanes.
 * The sub-block scales are applied in int16 with vpmaddwd, lane-wise (the
 * low lane gets scale 2p, the high one 2p + 1), so each block's integer
 * sum is exact and scaled once, in 8 float lanes like Q4_K-Q6_K (within
 * float rounding of the references, which sum in another order). The
 * block layouts are block_q2_K and block_q3_K (blocks.h). */

/* Word lanes of scale pair p from 16 scale bytes broadcast to both lanes:
 * byte 2p (low lane) or 2p + 1 (high lane) moved to the high byte of every
 * word, then shifted down with its sign. */
AI __m256i k23_scale_pair(__m256i sc_bytes, int p) {
    const __m256i ctl = _mm256_set_m128i(_mm_set1_epi16((short)((2 * p + 1) << 8 | 0x80)),
                                         _mm_set1_epi16((short)((2 * p) << 8 | 0x80)));
    return _mm256_srai_epi16(_mm256_shuffle_epi8(sc_bytes, ctl), 8);
}

/* The 16 signed 6-bit scales (sc - 32) of a Q3_K block as bytes. */
static inline __m128i q3k_scales(const uint8_t *s12) {
    uint32_t u[4];
    kern_q3k_scale_bytes(s12, u);
    return _mm_sub_epi8(_mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]),
                        _mm_set1_epi8(32));
}

/* One Q2_K (q3 false) or Q3_K row against T tokens of Q8_K. Per block the
 * integer sum_j sc_j * sum(u * x) over the sub-blocks, with u the unsigned
 * level (Q2_K 0..3, Q3_K 0..7), less the offset times the activation sums
 * (bsums): Q2_K's d*sc*u - dmin*m gives dmin * sum_j m_j * bsum_j, scaled
 * apart; Q3_K's levels u - 4 give 4 * sum_j sc_j * bsum_j, exact in int32
 * (|sc| <= 32, |bsum| <= 16 * 127), taken from the same sum. */
AI void k23_tile(bool q3, const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp,
                 float *out) {
    const size_t bs = q3 ? sizeof(block_q3_K) : sizeof(block_q2_K);
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc[TBIG];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wb = vw + (size_t)i * bs;
        const block_q8_K *x[TBIG];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) x[t] = (const block_q8_K *)xp[t] + i;
        __m128i sc8;  /* the 16 sub-block scales as bytes */
        __m256i offs; /* Q2_K: the 16 mins, Q3_K: the scales, as int16 */
        float wd, wdmin = 0.0f;
        if (q3) {
            sc8 = q3k_scales(wb + Q3K_SCALES);
            offs = _mm256_cvtepi8_epi16(sc8);
            wd = f16_at((const kern_f16 *)(wb + Q3K_D));
        } else {
            const __m128i s = _mm_loadu_si128((const __m128i *)(wb + Q2K_SCALES));
            const __m128i m4 = _mm_set1_epi8(0x0F);
            sc8 = _mm_and_si128(s, m4);
            offs = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
            wd = f16_at((const kern_f16 *)(wb + Q2K_D));
            wdmin = f16_at((const kern_f16 *)(wb + Q2K_DMIN));
        }
        const __m256i scb = _mm256_broadcastsi128_si256(sc8);
        __m256i sumi[TBIG], offi[TBIG];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            sumi[t] = _mm256_setzero_si256();
            offi[t] = _mm256_madd_epi16(offs, load256(x[t]->bsums));
        }
        const uint8_t *qs = wb + (q3 ? Q3K_QS : Q2K_QS);
        const __m256i h = q3 ? load256(wb + Q3K_HMASK) : _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int j = 0; j < 2; j++) {
            const __m256i b = load256(qs + 32 * j);
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                const int p = 4 * j + s; /* elements 32p..32p+31 */
                __m256i u = _mm256_and_si256(_mm256_srli_epi16(b, 2 * s), m3);
                if (q3) {
                    /* bit p of each hmask byte to bit 2 (16-bit shifts only
                     * carry into bits the mask drops) */
                    const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(h, p), one);
                    u = _mm256_or_si256(u, _mm256_slli_epi16(hb, 2));
                }
                const __m256i sc = k23_scale_pair(scb, p);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    const __m256i prod = _mm256_maddubs_epi16(u, load256(x[t]->qs + 32 * p));
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(prod, sc));
                    KEEP(sumi[t]);
                }
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            if (q3) {
                const __m256i s = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(offi[t], 2));
                acc[t] =
                    _mm256_fmadd_ps(_mm256_set1_ps(wd * x[t]->d), _mm256_cvtepi32_ps(s), acc[t]);
            } else {
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(wd * x[t]->d), _mm256_cvtepi32_ps(sumi[t]),
                                         acc[t]);
                acc[t] = _mm256_fnmadd_ps(_mm256_set1_ps(wdmin * x[t]->d),
                                          _mm256_cvtepi32_ps(offi[t]), acc[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) out[t] = hsum_ps(acc[t]);
}

/* ---- float types ------------------------------------------------------------- */

static inline __m256 f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 bf16x8(const uint16_t *p) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

/* 8 elements of an F32 (f16 false) or F16 row as floats. */
AI __m256 flt8(bool f16, const uint8_t *row, int64_t i) {
    return f16 ? f16x8((const uint16_t *)row + i) : _mm256_loadu_ps((const float *)row + i);
}
/* One element; rows need not be aligned to their element size. */
AI float flt1(bool f16, const uint8_t *row, int64_t i) {
    if (f16) {
        uint16_t h;
        memcpy(&h, row + 2 * i, sizeof h);
        return _cvtsh_ss(h);
    }
    float f;
    memcpy(&f, row + 4 * i, sizeof f);
    return f;
}

/* One F32 or F16 row against T tokens. Per pair: elements 16s..16s+7 go to
 * acc0 and 16s+8..16s+15 to acc1, then one more 8 to acc0, the last n % 8
 * added one by one after the two accumulators' sum. */
AI void flt_tile(bool f16, const int T, int64_t n, const uint8_t *w, const uint8_t *const *xp,
                 float *out) {
    __m256 acc0[TMAX], acc1[TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a0 = flt8(f16, w, i), a1 = flt8(f16, w, i + 8);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            acc0[t] = _mm256_fmadd_ps(a0, flt8(f16, xp[t], i), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(a1, flt8(f16, xp[t], i + 8), acc1[t]);
        }
    }
    if (i + 8 <= n) {
        const __m256 a0 = flt8(f16, w, i);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc0[t] = _mm256_fmadd_ps(a0, flt8(f16, xp[t], i), acc0[t]);
        i += 8;
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        float sum = hsum_ps(_mm256_add_ps(acc0[t], acc1[t]));
        for (int64_t e = i; e < n; e++) sum += flt1(f16, w, e) * flt1(f16, xp[t], e);
        out[t] = sum;
    }
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

/* ---- vec_dot and gemm of each type from its tile ---------------------------------
 * gemm walks the rows in groups of about 64 KiB of weights (in L2 once
 * read; with 16 KiB, meant for L1, the activations' scales were prepared 4
 * times as often and 8-token tiles of Q4_0/Q8_0 rows of 4864 took 11 %
 * longer) and, for each group of tokens, every row of the group: a group
 * of tokens' activations stays in L1 across the rows and a row's unpacking
 * serves all of them. Tokens go in groups of 8 (4 for the float types);
 * a rest of up to 4 tokens is one group with a tile of its exact size, a
 * rest of 5 to 7 a group of 4 and one of the others (the row group is in
 * L2 by then): an 8-token tile for 5 costs as much as for 8, and the
 * rounding up of 3 tokens to a 4-token tile cost 3 tokens 2.5 times one
 * (Q4_K, bench/README.md). Up to 8 tokens of Q8_0 (and of Q4_0, Q5_0,
 * IQ4_NL) go to the type's gemv (x86_avx2_gemv.c, vec_dot's bits) in passes
 * of up to 4, which cost less; one token of the others row by row through
 * vec_dot's code, prefetching ahead. */

typedef void (*tile_fn)(int64_t n, const uint8_t *w, const uint8_t *const *xp,
                        const float *const *xd, float *out);
typedef void (*prep_fn)(int64_t n, const uint8_t *x, float *xd);
typedef bool (*gemv_fn)(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                        size_t xs, int64_t nt, float *y, int64_t ldy);

/* The size of the next group of tokens, `left` of them to go (above). */
static int tile_group(int64_t left, int tmax) {
    return left >= tmax ? tmax : left > 4 ? 4 : (int)left;
}

/* At most this many tokens go through a gemv, in passes of up to
 * KERN_AVX2_GEMV_MAXT, each reading all the rows (bench/README.md: 5 to 8
 * tokens cost 20-45 % less so than by 8-token tiles or gemm_nl from memory,
 * and no more from cache; past 8 the rows' reads would add up, where the
 * tiles read them once). */
enum { GEMV_PASS_MAX = 8 };

/* nt tokens through gemv in passes of as even a size as allow at most
 * KERN_AVX2_GEMV_MAXT each (5 = 3 + 2). False, with nothing written, when
 * the gemv does not take them: only the first pass can refuse, as a gemv
 * that takes T tokens of a row takes fewer. */
static bool gemv_passes(gemv_fn gemv, int64_t n, const uint8_t *w, size_t ws, int64_t nr,
                        const uint8_t *x, size_t xs, int64_t nt, float *y, int64_t ldy) {
    if (!gemv || nt > GEMV_PASS_MAX) return false;
    const int64_t passes = (nt + KERN_AVX2_GEMV_MAXT - 1) / KERN_AVX2_GEMV_MAXT;
    for (int64_t p = 0, t0 = 0; p < passes; p++) {
        const int64_t t1 = nt * (p + 1) / passes;
        if (!gemv(n, w, ws, nr, x + (size_t)t0 * xs, xs, t1 - t0, y + t0 * ldy, ldy)) {
            assert(p == 0);
            return false;
        }
        t0 = t1;
    }
    return true;
}

/* tiles: for 1, 2, 3, 4 and 8 tokens (NULL: no 8-token tile); prep: what a
 * tile's xd wants per token, or NULL; gemv: up to KERN_AVX2_GEMV_MAXT
 * tokens against all the rows (x86_avx2_gemv.c), or NULL; ahead: one token
 * row by row prefetches the row some 16 KiB on (see x86_avx2_gemv.c: the
 * hardware prefetcher alone lags; F16 generation of qwen2.5-0.5b 31 -> 33
 * t/s; the K-quants' tiles, with more work a byte, were 8-20 % slower on
 * weights in cache and no faster in generation, so they do not). */
static void gemm_tiles(const tile_fn *tiles, prep_fn prep, gemv_fn gemv, bool ahead, int64_t n,
                       const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x, size_t xs,
                       int64_t nt, float *y, int64_t ldy) {
    if (gemv_passes(gemv, n, w, ws, nr, x, xs, nt, y, ldy)) return;
    const size_t pf = ahead_bytes(ws);
    if (nt == 1) {
        for (int64_t r = 0; r < nr; r++) {
            if (ahead) prefetch_bytes(w + (size_t)r * ws + pf, ws);
            tiles[0](n, w + (size_t)r * ws, &x, NULL, y + r);
        }
        return;
    }
    const int tmax = tiles[4] ? TBIG : TMAX;
    const bool pre = prep && (n / QK8_0 + 1) / 2 * 32 <= PREP_BYTES;
    _Alignas(32) float xd_buf[TBIG][PREP_BYTES / sizeof(float)];
    int64_t rg = (int64_t)(65536 / (ws ? ws : 1));
    rg = rg < 4 ? 4 : rg > 256 ? 256 : rg;
    for (int64_t r0 = 0; r0 < nr; r0 += rg) {
        const int64_t r1 = r0 + rg < nr ? r0 + rg : nr;
        for (int64_t t0 = 0, tc; t0 < nt; t0 += tc) {
            tc = tile_group(nt - t0, tmax);
            const uint8_t *xp[TBIG];
            const float *xd[TBIG];
            for (int t = 0; t < tc; t++) {
                xp[t] = x + (size_t)(t0 + t) * xs;
                if (pre) prep(n, xp[t], xd_buf[t]);
                xd[t] = xd_buf[t];
            }
            const tile_fn tile = tiles[tc == TBIG ? 4 : tc - 1];
            for (int64_t r = r0; r < r1; r++) {
                float out[TBIG];
                if (t0 == 0 && nt > 2) prefetch_bytes(w + (size_t)r * ws + pf, ws);
                tile(n, w + (size_t)r * ws, xp, pre ? xd : NULL, out);
                for (int t = 0; t < tc; t++) y[(t0 + t) * ldy + r] = out[t];
            }
        }
    }
}

#define TILE_FN(name, T, call)                                                                     \
    NOINLINE void name##_t##T(int64_t n, const uint8_t *w, const uint8_t *const *xp,               \
                              const float *const *xd, float *out) {                                \
        (void)xd;                                                                                  \
        call(T, n, w, xp, xd, out);                                                                \
    }
#define VEC_DOT(name)                                                                              \
    static void vec_dot_##name(int64_t n, float *s, const void *w, const void *x) {                \
        const uint8_t *xp = x;                                                                     \
        name##_t1(n, w, &xp, NULL, s);                                                             \
    }
#define VEC_DOT_GEMM(name, t8, prep, gemv, ahead)                                                  \
    VEC_DOT(name)                                                                                  \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,        \
                            size_t xs, int64_t nt, float *y, int64_t ldy) {                        \
        static const tile_fn tiles[5] = {name##_t1, name##_t2, name##_t3, name##_t4, t8};          \
        gemm_tiles(tiles, prep, gemv, ahead, n, w, ws, nr, x, xs, nt, y, ldy);                     \
    }
/* tiles of 1 to 4 tokens */
#define TILED(name, call)                                                                          \
    TILE_FN(name, 1, call)                                                                         \
    TILE_FN(name, 2, call)                                                                         \
    TILE_FN(name, 3, call)                                                                         \
    TILE_FN(name, 4, call)                                                                         \
    VEC_DOT_GEMM(name, NULL, NULL, NULL, true)
/* and of 8, with prepared activation scales and a kernel of few tokens */
#define TILED8(name, call, prep, gemv)                                                             \
    TILE_FN(name, 1, call)                                                                         \
    TILE_FN(name, 2, call)                                                                         \
    TILE_FN(name, 3, call)                                                                         \
    TILE_FN(name, 4, call)                                                                         \
    TILE_FN(name, 8, call)                                                                         \
    VEC_DOT_GEMM(name, name##_t8, prep, gemv, false)
/* Q4_0, Q5_0 and IQ4_NL: vec_dot moves the signs (bp_tile); up to 8 tokens
 * go through the gemv (or, for rows too long for it, one token vec_dot row
 * by row), more through gemm_nl */
#define NIBBLE(name, call, k, gemv)                                                                \
    TILE_FN(name, 1, call)                                                                         \
    VEC_DOT(name)                                                                                  \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,        \
                            size_t xs, int64_t nt, float *y, int64_t ldy) {                        \
        static const tile_fn tiles[5] = {name##_t1, NULL, NULL, NULL, NULL};                       \
        if (gemv_passes(gemv, n, w, ws, nr, x, xs, nt, y, ldy)) return;                            \
        if (nt > 1)                                                                                \
            gemm_nl(k, n, w, ws, nr, x, xs, nt, y, ldy);                                           \
        else                                                                                       \
            gemm_tiles(tiles, NULL, NULL, false, n, w, ws, nr, x, xs, nt, y, ldy);                 \
    }

/* (the two calls let the compiler drop the test of xd from the loops) */
#define CALL_BP(k, T, n, w, xp, xd, out)                                                           \
    ((xd) ? bp_tile(k, T, n, w, xp, xd, out) : bp_tile(k, T, n, w, xp, NULL, out))
#define CALL_Q8_0(T, n, w, xp, xd, out)   CALL_BP(BK_Q8_0, T, n, w, xp, xd, out)
#define CALL_Q4_0(T, n, w, xp, xd, out)   CALL_BP(BK_Q4_0, T, n, w, xp, xd, out)
#define CALL_Q5_0(T, n, w, xp, xd, out)   CALL_BP(BK_Q5_0, T, n, w, xp, xd, out)
#define CALL_Q4_K(T, n, w, xp, xd, out)   k45_tile(false, T, n, w, xp, out)
#define CALL_Q5_K(T, n, w, xp, xd, out)   k45_tile(true, T, n, w, xp, out)
#define CALL_Q6_K(T, n, w, xp, xd, out)   kq_tile(KQ_Q6_K, T, n, w, xp, out)
#define CALL_Q2_K(T, n, w, xp, xd, out)   k23_tile(false, T, n, w, xp, out)
#define CALL_Q3_K(T, n, w, xp, xd, out)   k23_tile(true, T, n, w, xp, out)
#define CALL_IQ4_NL(T, n, w, xp, xd, out) CALL_BP(BK_IQ4_NL, T, n, w, xp, xd, out)
#define CALL_IQ4_XS(T, n, w, xp, xd, out) kq_tile(KQ_IQ4_XS, T, n, w, xp, out)
#define CALL_F32(T, n, w, xp, xd, out)    flt_tile(false, T, n, w, xp, out)
#define CALL_F16(T, n, w, xp, xd, out)    flt_tile(true, T, n, w, xp, out)
TILED8(q8_0, CALL_Q8_0, bp_prep, kern_avx2_gemv_q8_0)
NIBBLE(q4_0, CALL_Q4_0, BK_Q4_0, kern_avx2_gemv_q4_0)
NIBBLE(q5_0, CALL_Q5_0, BK_Q5_0, kern_avx2_gemv_q5_0)
TILED8(q4_K, CALL_Q4_K, NULL, NULL)
TILED8(q5_K, CALL_Q5_K, NULL, NULL)
TILED8(q6_K, CALL_Q6_K, NULL, NULL)
TILED8(q2_K, CALL_Q2_K, NULL, NULL)
TILED8(q3_K, CALL_Q3_K, NULL, NULL)
NIBBLE(iq4_nl, CALL_IQ4_NL, BK_IQ4_NL, kern_avx2_gemv_iq4_nl)
TILED8(iq4_xs, CALL_IQ4_XS, NULL, NULL)
TILED(f32, CALL_F32)
TILED(f16, CALL_F16)

/* Q4_1 and Q5_1 have no gemm: the AVX-512 tables replace their vec_dot
 * without one, and a gemm must come with the vec_dot whose bits it has. */
static void vec_dot_q4_1(int64_t n, float *s, const void *w, const void *x) {
    const uint8_t *xp = x;
    blk_tile(BK_Q4_1, 1, n, w, &xp, s);
}
static void vec_dot_q5_1(int64_t n, float *s, const void *w, const void *x) {
    const uint8_t *xp = x;
    blk_tile(BK_Q5_1, 1, n, w, &xp, s);
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
    [KERN_F32] = {.vec_dot = vec_dot_f32, .attn = kern_avx2_attn_f32, .gemm = gemm_f32},
    [KERN_F16] = {.vec_dot = vec_dot_f16,
                  .from_float = from_float_f16,
                  .to_float = to_float_f16,
                  .attn = kern_avx2_attn_f16,
                  .gemm = gemm_f16},
    [KERN_BF16] = {.vec_dot = vec_dot_bf16,
                   .from_float = from_float_bf16,
                   .to_float = to_float_bf16},
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

bool kern_avx2_usable(void) {
    unsigned a, b, c, d;
    /* F16C (CPUID.1:ECX bit 29) comes with every AVX2 CPU, but say so */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_F16C)) return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void kern_avx2_install(kern_fns *table) { kern_isa_apply(table, kern_avx2_fns); }
