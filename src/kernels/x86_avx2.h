/*
 * x86_avx2.h - what the AVX2 kernel files (x86_avx2*.c, built with AVX2, FMA
 * and F16C) share; private to them. x86_avx2.c holds the table.
 */
#ifndef HEARTH_X86_AVX2_H
#define HEARTH_X86_AVX2_H

#include "kernels/blocks.h"
#include "kernels/kernels.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float f16_at(const kern_f16 *p) { return _cvtsh_ss(*p); }

AI __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* The first fp16 fields of 4 consecutive blocks (stride bytes apart) in
 * lanes 0..3, the second ones in 4..7, as floats. */
AI __m256 fields4(const uint8_t *p, size_t stride) {
    const __m128i p01 = _mm_unpacklo_epi16(_mm_loadu_si32(p), _mm_loadu_si32(p + stride));
    const __m128i p23 =
        _mm_unpacklo_epi16(_mm_loadu_si32(p + 2 * stride), _mm_loadu_si32(p + 3 * stride));
    return _mm256_cvtph_ps(_mm_unpacklo_epi32(p01, p23));
}

/* ---- Q4_0 and Q5_0 in pairs of blocks (x86_avx2.c's tiles, x86_avx2_gemv.c)
 * The 16 quant bytes of a block hold elements 0..15 in their low nibbles and
 * 16..31 in their high ones, so the two blocks of a pair unpack into one
 * vector per half: lo = elements 0..15 of the first block, then of the
 * second; hi = 16..31 of both. vpmaddubsw of lo and of hi against the
 * activations laid out the same way (nl_acts), added in int16 and widened
 * by one vpmaddwd, gives the pair's 8 int32 sums in the "nibble layout":
 * lane m (0..3) of the first block sums elements 4m..4m+3 and
 * 16+4m..16+4m+3, lanes 4..7 the same of the second. */

/* The unsigned levels u of the pair whose first block is at b (q5: Q5_0,
 * else Q4_0; the second block only when `two`, else zeros): the nibble,
 * plus 16 where Q5_0's fifth bit is set. The signed level is u - 8 (Q4_0)
 * or u - 16 (Q5_0). */
AI void nl_levels(bool q5, const uint8_t *b, bool two, __m256i *lo, __m256i *hi) {
    const size_t bs = q5 ? sizeof(block_q5_0) : sizeof(block_q4_0), qo = q5 ? 6 : 2;
    const __m128i q0 = _mm_loadu_si128((const __m128i *)(b + qo));
    const __m256i v =
        two ? _mm256_inserti128_si256(_mm256_castsi128_si256(q0),
                                      _mm_loadu_si128((const __m128i *)(b + bs + qo)), 1)
            : _mm256_zextsi128_si256(q0);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    *lo = _mm256_and_si256(v, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if (!q5) return;
    /* bit j of a block's qh is the fifth bit of element j: spread bytes 0, 1
     * (lo) or 2, 3 (hi) of each block's qh over its half, pick bit j % 8 */
    uint32_t h0, h1 = 0;
    memcpy(&h0, b + 2, 4);
    if (two) memcpy(&h1, b + bs + 2, 4);
    const __m256i h = _mm256_set1_epi64x((long long)((uint64_t)h1 << 32 | h0));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i b16 = _mm256_set1_epi8(0x10);
    const __m256i clo =
        _mm256_setr_epi64x(0, 0x0101010101010101, 0x0404040404040404, 0x0505050505050505);
    const __m256i chi = _mm256_add_epi8(clo, _mm256_set1_epi8(2));
    const __m256i blo = _mm256_and_si256(_mm256_shuffle_epi8(h, clo), sel);
    const __m256i bhi = _mm256_and_si256(_mm256_shuffle_epi8(h, chi), sel);
    *lo = _mm256_or_si256(*lo, _mm256_and_si256(_mm256_cmpeq_epi8(blo, sel), b16));
    *hi = _mm256_or_si256(*hi, _mm256_and_si256(_mm256_cmpeq_epi8(bhi, sel), b16));
}

/* The activation quants of the Q8_0 blocks at x (and x + 34 when `two`,
 * else zeros) laid out as nl_levels lays out the weights. */
AI void nl_acts(const uint8_t *x, bool two, __m256i *lo, __m256i *hi) {
    const uint8_t *a = x + 2, *b = a + sizeof(block_q8_0);
    const __m128i alo = _mm_loadu_si128((const __m128i *)a);
    const __m128i ahi = _mm_loadu_si128((const __m128i *)(a + 16));
    if (two) {
        *lo = _mm256_inserti128_si256(_mm256_castsi128_si256(alo),
                                      _mm_loadu_si128((const __m128i *)b), 1);
        *hi = _mm256_inserti128_si256(_mm256_castsi128_si256(ahi),
                                      _mm_loadu_si128((const __m128i *)(b + 16)), 1);
    } else {
        *lo = _mm256_zextsi128_si256(alo);
        *hi = _mm256_zextsi128_si256(ahi);
    }
}

/* What a pair of Q4_0/Q5_0 blocks needs of a token to be multiplied with
 * unsigned levels: its activations as nl_acts lays them out and, per lane of
 * the nibble layout, `bias` (8 for Q4_0, 16 for Q5_0) times the sum of its 8
 * activations, to subtract. IQ4_NL (iq4nl_dot) takes the activations alone:
 * bias 0, off 0. */
typedef struct {
    __m256i lo, hi, off;
} nl_xpair;

AI nl_xpair nl_xpair_make(const uint8_t *x, bool two, short bias) {
    nl_xpair p;
    nl_acts(x, two, &p.lo, &p.hi);
    if (!bias) { /* IQ4_NL: signed levels, no offset */
        p.off = _mm256_setzero_si256();
        return p;
    }
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i s4 =
        _mm256_add_epi16(_mm256_maddubs_epi16(one, p.lo), _mm256_maddubs_epi16(one, p.hi));
    p.off = _mm256_madd_epi16(s4, _mm256_set1_epi16(bias));
    return p;
}

/* The nibble-layout sums of a pair of unsigned levels (nl_levels) and a
 * prepared token: u*x - bias*x is the signed level times x, the same
 * integers as with the signs moved onto the activations. */
AI __m256i nl_xdot(__m256i lo, __m256i hi, const nl_xpair *x) {
    const __m256i s4 =
        _mm256_add_epi16(_mm256_maddubs_epi16(lo, x->lo), _mm256_maddubs_epi16(hi, x->hi));
    return _mm256_sub_epi32(_mm256_madd_epi16(s4, _mm256_set1_epi16(1)), x->off);
}

/* ---- IQ4_NL pairs (x86_avx2.c's tiles, x86_avx2_gemv.c): the nibble
 * layout of Q4_0 with the levels looked up in the codebook (vpshufb). The
 * levels reach 127 in magnitude, so each half's vpmaddubsw pairs are widened
 * on their own (4 products could overflow int16) and the signs move onto the
 * activations (levels plus 128 would overflow vpmaddubsw's pairs). */

/* The IQ4_NL / IQ4_XS codebook in both 128-bit lanes, for vpshufb. */
AI __m256i iq4_lut256(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kern_iq4nl_values));
}

/* The signed levels of the IQ4_NL pair at b, in the nibble layout. Without
 * `two` the second block's nibbles read as 0 (level -127): its activations
 * are zeros there (nl_acts), so it adds nothing. */
AI void iq4nl_levels(const uint8_t *b, bool two, __m256i *lo, __m256i *hi) {
    const __m256i lut = iq4_lut256();
    nl_levels(false, b, two, lo, hi);
    *lo = _mm256_shuffle_epi8(lut, *lo);
    *hi = _mm256_shuffle_epi8(lut, *hi);
}

/* The nibble-layout int32 sums of signed levels lo/hi (iq4nl_levels) and
 * activations laid out by nl_acts. */
AI __m256i iq4nl_dot(__m256i lo, __m256i hi, __m256i xlo, __m256i xhi) {
    const __m256i one = _mm256_set1_epi16(1);
    const __m256i plo = _mm256_maddubs_epi16(_mm256_sign_epi8(lo, lo), _mm256_sign_epi8(xlo, lo));
    const __m256i phi = _mm256_maddubs_epi16(_mm256_sign_epi8(hi, hi), _mm256_sign_epi8(xhi, hi));
    return _mm256_add_epi32(_mm256_madd_epi16(plo, one), _mm256_madd_epi16(phi, one));
}

/* kern_attn_tile over an f32 or f16 cache (x86_avx2_attn.c): the contract of
 * kernels.h, for head sizes that are multiples of 16 up to KERN_ATTN_MAX_HD. */
void kern_avx2_attn_f32(const kern_attn_args *a);
void kern_avx2_attn_f16(const kern_attn_args *a);

/* nt tokens (x: the first, in Q8_0; the others xs bytes apart) against the
 * nr rows of a Q4_0, Q5_0, Q8_0 or IQ4_NL weight (rows ws bytes apart), for
 * x86_avx2_gemv.c: y[t * ldy + r] gets the bits the table's vec_dot gives
 * row r and token t. False, with nothing written, when nt is outside
 * 1..KERN_AVX2_GEMV_MAXT or n is longer than its buffers hold
 * (KERN_AVX2_GEMV_MAX for one token; fewer for 4 tokens of Q4_0, Q5_0,
 * IQ4_NL: see x86_avx2_gemv.c); then the caller takes another path. */
#define KERN_AVX2_GEMV_MAX  16384
#define KERN_AVX2_GEMV_MAXT 4
bool kern_avx2_gemv_q4_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         size_t xs, int64_t nt, float *y, int64_t ldy);
bool kern_avx2_gemv_q5_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         size_t xs, int64_t nt, float *y, int64_t ldy);
bool kern_avx2_gemv_q8_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         size_t xs, int64_t nt, float *y, int64_t ldy);
bool kern_avx2_gemv_iq4_nl(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                           size_t xs, int64_t nt, float *y, int64_t ldy);

#endif
