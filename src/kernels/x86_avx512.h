/*
 * x86_avx512.h - what the AVX-512 kernel files (x86_avx512*.c, the only
 * files built with those flags) share, private to them: load and multiply
 * helpers, the K-quant scale unpacking, the integer formats' canonical VNNI
 * arithmetic (its kinds and geometry), and the functions each file exports
 * to the tables of x86_avx512.c. Everything here is static inline or a
 * declaration; it must not be included by files built without AVX-512.
 */
#ifndef HEARTH_KERN_X86_AVX512_H
#define HEARTH_KERN_X86_AVX512_H

#include "kernels/isa.h"
#include "kernels/kern_ref.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- helpers -------------------------------------------------------------------------------- */

AI float f16_at(const void *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

AI __m512i load512(const void *p) { return _mm512_loadu_si512(p); }
AI __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 64 bytes of weights. Weights stream from memory and their rows have no
 * alignment, so an unaligned 64-byte load would always straddle two cache
 * lines; measured, such loads that miss cut the streaming rate to a half or
 * a third, where two 32-byte loads do not. (Activations stay in L1.) */
AI __m512i wload512(const void *p) {
    const uint8_t *b = p;
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(b)), load256(b + 32), 1);
}

/* Two 32-byte rows side by side; b == NULL leaves the upper half zero. */
AI __m512i load2x32(const void *a, const void *b) {
    const __m512i lo = _mm512_zextsi256_si512(load256(a));
    return b ? _mm512_inserti64x4(lo, load256(b), 1) : lo;
}

/* Sums of u*s over each group of 4 bytes (u unsigned, s signed), added to acc.
 * Without VNNI the int16 pair sums must not saturate: |s| <= 127 and u <= 128
 * make them at most 32512. */
AI __m512i dp_us(__m512i acc, __m512i u, __m512i s, bool vnni) {
    if (vnni) return _mm512_dpbusd_epi32(acc, u, s);
    const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
    return _mm512_add_epi32(acc, p);
}

/* Sums of int16 pairs a*b, added to acc. */
AI __m512i dp_ww(__m512i acc, __m512i a, __m512i b, bool vnni) {
    if (vnni) return _mm512_dpwssd_epi32(acc, a, b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

/* Signed x signed bytes: the sign of a moves onto b, |a| is read unsigned. */
AI __m512i dot_ss(__m512i a, __m512i b, bool vnni) {
    const __mmask64 neg = _mm512_movepi8_mask(a);
    const __m512i sb = _mm512_mask_sub_epi8(b, neg, _mm512_setzero_si512(), b);
    return dp_us(_mm512_setzero_si512(), _mm512_abs_epi8(a), sb, vnni);
}

/* The 64 bytes at p + o, of which those at or past p + lim read as zero (and
 * are not read) unless `full`; `weights` as wload512. */
AI __m512i load_lim(const uint8_t *p, int o, int lim, bool full, bool weights) {
    if (full) return weights ? wload512(p + o) : load512(p + o);
    const int avail = lim - o;
    if (avail <= 0) return _mm512_setzero_si512();
    const __mmask64 m = avail >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << avail) - 1;
    return _mm512_maskz_loadu_epi8(m, p + o);
}

/* v * mul rounded half to even (vcvtps2dq in the default rounding mode),
 * stored as int8 at q; returns the int32 values. */
AI __m512i quant16(__m512 v, float mul, int8_t *q) {
    const __m512i iv = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(mul)));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtsepi32_epi8(iv));
    return iv;
}

/* The IQ4 codebook in every 128-bit lane, for vpshufb: signed (the plain
 * kernels) or plus 128 (unsigned levels for vpdpbusd, offset 128). */
AI __m512i iq4_lut(bool plus128) {
    const __m128i v = _mm_loadu_si128((const __m128i *)kern_iq4nl_values);
    return _mm512_broadcast_i32x4(plus128 ? _mm_xor_si128(v, _mm_set1_epi8((char)0x80)) : v);
}

/* Nibble indices of IQ4_XS elements 64j..64j+63 (sub-blocks 2j and 2j + 1,
 * from the 32 quant bytes at q4) in element order: low nibbles of bytes
 * 0..15, their high nibbles, then the same of bytes 16..31. */
AI __m512i iq4_xs_idx64(const uint8_t *q4) {
    const __m512i b = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                               _mm512_castsi256_si512(load256(q4)));
    const __m512i h = _mm512_mask_srli_epi16(b, (__mmask32)0xFF00FF00u, b, 4);
    return _mm512_and_si512(h, _mm512_set1_epi8(0x0F));
}

/* The 8 sub-block multipliers ls - 32 of an IQ4_XS block, as int32. */
AI __m256i iq4_xs_scales8(const uint8_t *blk) {
    uint16_t sh;
    uint32_t sl;
    memcpy(&sh, blk + 2, sizeof sh);
    memcpy(&sl, blk + 4, sizeof sl);
    const __m256i j = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lo =
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)sl), _mm256_slli_epi32(j, 2)),
                         _mm256_set1_epi32(0xF));
    const __m256i hi = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32(sh), _mm256_add_epi32(j, j)), _mm256_set1_epi32(3));
    return _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
}

/* Bytes 0..7: the 6-bit scales of a Q4_K/Q5_K block, 8..15: the mins. */
AI __m128i k4_scales_mins(const uint8_t *q12) {
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

/* The 16 signed 6-bit multipliers (sc - 32) of a Q3_K block as bytes. */
AI __m128i q3k_scales16(const uint8_t *s12) {
    uint32_t u[4];
    kern_q3k_scale_bytes(s12, u);
    return _mm_sub_epi8(_mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]),
                        _mm_set1_epi8(32));
}

/* Q2_K's sub-block scales and min coefficients from its 16 scale bytes s
 * (scale in the low nibble, min in the high one): d * scale, -dmin * min. */
AI void q2k_scales_mins(__m128i s, __m512 d, __m512 dmin, __m512 *sc, __m512 *mn) {
    const __m128i m4 = _mm_set1_epi8(0x0F);
    *sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(s, m4))));
    *mn = _mm512_mul_ps(
        _mm512_sub_ps(_mm512_setzero_ps(), dmin),
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(s, 4), m4))));
}

/* 64 levels of Q4_K/Q5_K elements 64j..64j+63: low nibbles of the 32 bytes at
 * q4, then their high nibbles. */
AI __m512i k4_levels64(const uint8_t *q4) {
    const __m512i b = _mm512_broadcast_i64x4(load256(q4));
    const __m512i h = _mm512_mask_srli_epi16(b, (__mmask32)0xFFFF0000u, b, 4);
    return _mm512_and_si512(h, _mm512_set1_epi8(0x0F));
}

/* Levels (unsigned, stored +32) of 64 Q6_K elements from l, 64 bytes of ql,
 * and h, the 32 bytes of qh in both halves: elements 0..63 of the
 * 128-element half (hi false: (l & 15) | qh bits 0-1 / 2-3 << 4) or 64..127
 * (hi true: (l >> 4) | qh bits 4-5 / 6-7 << 4). */
AI __m512i q6_levels64(__m512i l, __m512i h, bool hi) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if (!hi) {
        const __m512i mlo = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0C), 1);
        const __m512i slo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        return _mm512_ternarylogic_epi32(l, m4, _mm512_sllv_epi16(_mm512_and_si512(h, mlo), slo),
                                         0xEA); /* (l & m4) | the high pairs */
    }
    const __m512i mhi = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8((char)0xC0), 1);
    const __m512i shi = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    return _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), m4,
                                     _mm512_srlv_epi16(_mm512_and_si512(h, mhi), shi), 0xEA);
}

/* ---- the VNNI products of the integer formats: vec_dot and gemm in one arithmetic -------------
 * Q8_0, Q4_0, Q5_0, IQ4_NL (against Q8_0 activations) and Q2_K, Q3_K, Q4_K,
 * Q5_K, Q6_K, IQ4_XS (against Q8_K) have, in the VNNI table, one arithmetic
 * that a single row (vec_dot) and a panel of rows against several tokens
 * (gemm) both compute cheaply, so that a batch and one token at a time give
 * the same bits:
 *  - a row is cut into chunks of 16 sub-blocks (one scale each: 32 elements,
 *    16 for Q2_K, Q3_K and Q6_K); per sub-block s the exact integer
 *    I_s = sum (level - offset) * x and the float P_s = (scale_s * d_x) * I_s, plus
 *    min_s * (d_x * sum x) for the K-quants with mins (one fused step);
 *  - a chunk's value is the pairwise tree ((P0 + P1) + (P2 + P3)) + ... over
 *    its 16 sub-blocks (absent ones are +0); the row's, the chunks added in
 *    order.
 * x86_avx512_gemv.c computes it a row at a time (vec_dot, and gemm of one to
 * four tokens), x86_avx512_gemm.c for panels of 16 rows (five tokens and
 * more). */

enum { GR = 16, GKC = 512, GTC = 128, GNT = 4 };

/* (IQ4 levels are the codebook plus 128, unsigned, with offset 128.) */
typedef enum {
    GK_Q8_0,
    GK_Q4_0,
    GK_Q5_0,
    GK_Q4_K,
    GK_Q5_K,
    GK_Q6_K,
    GK_IQ4_NL,
    GK_IQ4_XS,
    GK_Q2_K,
    GK_Q3_K
} gemm_kind;

typedef struct {
    int sb, off;      /* elements per sub-block (one scale), level offset (0: mins) */
    int wbe, wbb;     /* weight block elements and bytes */
    int xbe, xbb, xq; /* activation block elements, bytes, offset of its int8 quants */
} gemm_geom;

AI gemm_geom gemm_geom_of(gemm_kind k) {
    switch (k) {
    case GK_Q8_0: return (gemm_geom){32, 128, 32, 34, 32, 34, 2};
    case GK_Q4_0: return (gemm_geom){32, 8, 32, 18, 32, 34, 2};
    case GK_Q5_0: return (gemm_geom){32, 16, 32, 22, 32, 34, 2};
    case GK_Q4_K: return (gemm_geom){32, 0, 256, 144, 256, 292, 4};
    case GK_Q5_K: return (gemm_geom){32, 0, 256, 176, 256, 292, 4};
    case GK_IQ4_NL: return (gemm_geom){32, 128, 32, 18, 32, 34, 2};
    case GK_IQ4_XS: return (gemm_geom){32, 128, 256, 136, 256, 292, 4};
    case GK_Q2_K: return (gemm_geom){16, 0, 256, 84, 256, 292, 4};
    case GK_Q3_K: return (gemm_geom){16, 4, 256, 110, 256, 292, 4};
    case GK_Q6_K: break;
    }
    return (gemm_geom){16, 32, 256, 210, 256, 292, 4};
}

/* ---- a row chunk's levels and scales, as gemv and the panels read them ---- */

/* The fp16 values at the start of nblk <= 16 consecutive blocks of bb bytes,
 * as floats in lanes 0..nblk-1 (zero above): picked out of 128-byte windows
 * with vpermt2w. */
AI __m512 block_d16(const uint8_t *p, int bb, int nblk) {
    const int per = 126 / bb + 1; /* blocks whose d lies in one window */
    const __m512i iota = _mm512_setr_epi32(0x10000, 0x30002, 0x50004, 0x70006, 0x90008, 0xb000a,
                                           0xd000c, 0xf000e, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i d = _mm512_setzero_si512();
#pragma GCC unroll 6
    for (int b0 = 0; b0 < nblk; b0 += per) {
        const int avail = (nblk - b0) * bb, nw = nblk - b0 < per ? nblk - b0 : per;
        const uint8_t *w = p + (size_t)b0 * bb;
        const __m512i lo = load_lim(w, 0, avail, avail >= 128, true);
        const __m512i hi = load_lim(w, 64, avail, avail >= 128, true);
        const __m512i idx = _mm512_mullo_epi16(_mm512_sub_epi16(iota, _mm512_set1_epi16((short)b0)),
                                               _mm512_set1_epi16((short)(bb / 2)));
        d = _mm512_mask_mov_epi16(d, (__mmask32)(((1u << nw) - 1u) << b0),
                                  _mm512_permutex2var_epi16(lo, idx, hi));
    }
    return _mm512_cvtph_ps(_mm512_castsi512_si256(d));
}

/* Codebook indices of IQ4_XS elements 64q..64q+63 of a row chunk. */
AI __m512i iq4_xs_chunk_idx64(const uint8_t *w, int q) {
    return iq4_xs_idx64(w + (size_t)(q / 4) * sizeof(block_iq4_xs) + offsetof(block_iq4_xs, qs) +
                        32 * (q % 4));
}

/* Levels (unsigned) of elements 64q..64q+63 of a row chunk (from a block
 * start); `two`: both 32-element blocks exist (else the second is zero). */
AI __m512i vd_levels64(gemm_kind k, const uint8_t *w, int q, bool two) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    switch (k) {
    case GK_Q8_0: {
        const uint8_t *b = w + (size_t)q * 68;
        return _mm512_xor_si512(load2x32(b + 2, two ? b + 36 : NULL), _mm512_set1_epi8((char)0x80));
    }
    case GK_Q4_0:
    case GK_IQ4_NL:
    case GK_Q5_0: {
        const int bb = k != GK_Q5_0 ? 18 : 22, qo = k != GK_Q5_0 ? 2 : 6;
        const uint8_t *b = w + (size_t)q * 2 * bb;
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(b + qo));
        const __m128i q1 =
            two ? _mm_loadu_si128((const __m128i *)(b + bb + qo)) : _mm_setzero_si128();
        const __m256i v0 =
            _mm256_inserti128_si256(_mm256_castsi128_si256(q0), _mm_srli_epi16(q0, 4), 1);
        const __m256i v1 =
            _mm256_inserti128_si256(_mm256_castsi128_si256(q1), _mm_srli_epi16(q1, 4), 1);
        __m512i v = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1), m4);
        if (k == GK_Q5_0) {
            uint32_t h0, h1 = 0;
            memcpy(&h0, b + 2, sizeof h0);
            if (two) memcpy(&h1, b + bb + 2, sizeof h1);
            v = _mm512_mask_add_epi8(v, _cvtu64_mask64((uint64_t)h0 | (uint64_t)h1 << 32), v,
                                     _mm512_set1_epi8(16));
        }
        if (k == GK_IQ4_NL) v = _mm512_shuffle_epi8(iq4_lut(true), v);
        return v;
    }
    case GK_IQ4_XS: return _mm512_shuffle_epi8(iq4_lut(true), iq4_xs_chunk_idx64(w, q));
    case GK_Q4_K:
    case GK_Q5_K: {
        const int j = q % 4;
        const uint8_t *b = w + (size_t)(q / 4) * (k == GK_Q4_K ? 144 : 176);
        __m512i v = k4_levels64(b + (k == GK_Q4_K ? 16 : 48) + 32 * j);
        if (k == GK_Q5_K) {
            const __m512i h = _mm512_broadcast_i64x4(load256(b + 16));
            const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * j))),
                                                   _mm256_set1_epi8((char)(2 << (2 * j))), 1);
            v = _mm512_mask_add_epi8(v, _mm512_test_epi8_mask(h, sel), v, _mm512_set1_epi8(16));
        }
        return v;
    }
    case GK_Q2_K:
    case GK_Q3_K: { /* element 128h + 32j + l: bits 2j-2j+1 of qs[32h + l] (Q3_K: plus 4
                     * where bit 4h + j of hmask[l] is set); here j = 2(q % 2) and
                     * (upper 32 bytes) 2(q % 2) + 1 */
        const int h = q / 2, j = 2 * (q % 2);
        const __m512i b =
            _mm512_broadcast_i64x4(load256(w + (k == GK_Q2_K ? Q2K_QS : Q3K_QS) + 32 * h));
        const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * j)),
                                              _mm256_set1_epi16((short)(2 * j + 2)), 1);
        const __m512i v = _mm512_and_si512(_mm512_srlv_epi16(b, sh), _mm512_set1_epi8(3));
        if (k == GK_Q2_K) return v;
        const __m512i hm = _mm512_broadcast_i64x4(load256(w + Q3K_HMASK));
        const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (4 * h + j))),
                                               _mm256_set1_epi8((char)(1 << (4 * h + j + 1))), 1);
        return _mm512_mask_add_epi8(v, _mm512_test_epi8_mask(hm, sel), v, _mm512_set1_epi8(4));
    }
    case GK_Q6_K: break;
    }
    /* Q6_K: elements 128 half + 64 part + (0..63) of the block */
    const int half = q / 2, part = q % 2;
    return q6_levels64(wload512(w + 64 * half),
                       _mm512_broadcast_i64x4(load256(w + 128 + 32 * half)), part);
}

/* d * scale and -dmin * min of the 8 sub-blocks of each of nb (1 or 2)
 * Q4_K/Q5_K blocks bb bytes apart, block b's in lanes 8b..8b+7 (zero past
 * nb): k4_scales_mins's bit fields, decoded for both blocks at once in the
 * vector unit (per 128-bit lane: the block's scale bytes a, b, c become
 * a & 0x3f, c & 0xf | (a >> 6) << 4, b & 0x3f, c >> 4 | (b >> 6) << 4). */
AI void k4_scales16(const uint8_t *w, int bb, int nb, __m512 *sc_out, __m512 *mn_out) {
    const __m128i u0 = _mm_loadu_si128((const __m128i *)(w + 4));
    const __m128i u1 =
        nb > 1 ? _mm_loadu_si128((const __m128i *)(w + bb + 4)) : _mm_setzero_si128();
    const __m256i u = _mm256_inserti128_si256(_mm256_castsi128_si256(u0), u1, 1);
    const __m256i acbc = _mm256_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0));
    const __m256i aabb = _mm256_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0));
    const __m256i low =
        _mm256_and_si256(_mm256_srlv_epi32(acbc, _mm256_setr_epi32(0, 0, 0, 4, 0, 0, 0, 4)),
                         _mm256_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f,
                                           0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m256i hi_mask =
        _mm256_setr_epi32(0, 0x30303030, 0, 0x30303030, 0, 0x30303030, 0, 0x30303030);
    const __m256i f = _mm256_ternarylogic_epi32(_mm256_srli_epi32(aabb, 2), hi_mask, low, 0xEA);
    /* scales of both blocks in the low 128 bits, mins in the high */
    const __m256i sm = _mm256_permutevar8x32_epi32(f, _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
    uint32_t h0, h1 = 0;
    memcpy(&h0, w, sizeof h0);
    if (nb > 1) memcpy(&h1, w + bb, sizeof h1);
    const __m512 dm = _mm512_castps128_ps512(/* d0, dmin0, d1, dmin1 */
                                             _mm_cvtph_ps(_mm_insert_epi32(
                                                 _mm_cvtsi32_si128((int)h0), (int)h1, 1)));
    const __m512 d = _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2), dm);
    const __m512 m = _mm512_permutexvar_ps(
        _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3), dm);
    *sc_out =
        _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(sm))));
    *mn_out =
        _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), m),
                      _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(sm, 1))));
}

/* The scales of the ns sub-blocks of a row chunk (from a block start) and,
 * for the K-quants with mins, their min coefficients (else zero): lane s =
 * sub-block s, zero past ns. */
AI void vd_scales(gemm_kind k, const uint8_t *w, int ns, __m512 *sc_out, __m512 *mn_out) {
    const gemm_geom g = gemm_geom_of(k);
    __m512 sc, mn = _mm512_setzero_ps();
    if (g.wbe == 32) {
        sc = block_d16(w, g.wbb, ns);
    } else if (k == GK_IQ4_XS) { /* one or two blocks of 8 sub-blocks: d * (ls - 32) */
        __m256 s2[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int b = 0; b < ns / 8; b++) {
            const uint8_t *wb = w + (size_t)b * g.wbb;
            s2[b] =
                _mm256_mul_ps(_mm256_set1_ps(f16_at(wb)), _mm256_cvtepi32_ps(iq4_xs_scales8(wb)));
        }
        sc = _mm512_insertf32x8(_mm512_castps256_ps512(s2[0]), s2[1], 1);
    } else if (k == GK_Q2_K) {
        q2k_scales_mins(_mm_loadu_si128((const __m128i *)(w + Q2K_SCALES)),
                        _mm512_set1_ps(f16_at(w + Q2K_D)), _mm512_set1_ps(f16_at(w + Q2K_DMIN)),
                        &sc, &mn);
    } else if (k == GK_Q6_K || k == GK_Q3_K) { /* d * the 16 signed bytes */
        const __m128i s8 = k == GK_Q6_K ? _mm_loadu_si128((const __m128i *)(w + 192))
                                        : q3k_scales16(w + Q3K_SCALES);
        sc = _mm512_mul_ps(_mm512_set1_ps(f16_at(w + (k == GK_Q6_K ? 208 : Q3K_D))),
                           _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s8)));
    } else { /* Q4_K, Q5_K: one or two blocks of 8 sub-blocks */
        k4_scales16(w, g.wbb, ns / 8, &sc, &mn);
    }
    *sc_out = sc;
    *mn_out = mn;
}

/* The 16 x 16 int32 transpose: out row j (64 bytes at out + 64 j) takes
 * int32 j of the 16 vectors in[i]. Unpacking 32- then 64-bit pairs
 * leaves 4 x 4 blocks transposed in each 128-bit lane; two rounds of
 * 128-bit shuffles move the blocks into place. */
AI void transpose16(const __m512i *in, void *vout) {
    uint8_t *out = vout;
    __m512i a[16], b[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_epi32(in[i], in[i + 1]);
        a[i + 1] = _mm512_unpackhi_epi32(in[i], in[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) { /* b[i + c], lane L: rows i..i+3 of int32 4L + c */
        b[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
        b[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
        b[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
        b[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m512i e0 = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i e1 = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i e2 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i e3 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(3, 2, 3, 2));
        _mm512_store_si512(out + 64 * c, _mm512_shuffle_i32x4(e0, e2, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_store_si512(out + 64 * (4 + c),
                           _mm512_shuffle_i32x4(e0, e2, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm512_store_si512(out + 64 * (8 + c),
                           _mm512_shuffle_i32x4(e1, e3, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_store_si512(out + 64 * (12 + c),
                           _mm512_shuffle_i32x4(e1, e3, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}

/* vd_levels64, or with `idx` the IQ4 formats' codebook indices (the
 * nibbles the packed layout stores; Q4_0 has IQ4_NL's block layout). */
AI __m512i vd_levels64_or_idx(gemm_kind k, const uint8_t *w, int q, bool two, bool idx) {
    if (idx && k == GK_IQ4_NL) return vd_levels64(GK_Q4_0, w, q, two);
    if (idx && k == GK_IQ4_XS) return iq4_xs_chunk_idx64(w, q);
    return vd_levels64(k, w, q, two);
}

/* The levels (or, `idx`, IQ4 indices) of kcn elements (from a block start)
 * of the 16 rows at wr[], read with vd_levels64 and transposed to lane =
 * row: the 64 bytes at lv + 64 i hold elements 4i..4i+3 of each row. */
AI void panel_levels(gemm_kind k, const uint8_t *const *wr, int kcn, bool idx, uint8_t *lv) {
    __m512i v[GR];
    for (int q = 0; q < (kcn + 63) / 64; q++) {
#pragma GCC unroll 16
        for (int r = 0; r < GR; r++)
            v[r] = vd_levels64_or_idx(k, wr[r], q, 64 * q + 64 <= kcn, idx);
        transpose16(v, lv + q * 64 * GR);
    }
}

/* gemm of up to GV_MAXT tokens goes row by row (x86_avx512_gemv.c) when
 * tokens x chunks of a row fit its GV_MAXPREP prepared activation chunks;
 * more go by panels of 16 rows (x86_avx512_gemm.c). */
enum { GV_MAXT = 4, GV_MAXPREP = 128 };

/* Whether gemv_rows takes nt tokens of rows of n elements. */
AI bool gemv_fits(gemm_kind k, int64_t n, int64_t nt) {
    const int64_t kc = 16 * gemm_geom_of(k).sb;
    return nt <= GV_MAXT && nt * ((n + kc - 1) / kc) <= GV_MAXPREP;
}

/* ---- the kernels each file exports to the tables (x86_avx512.c) ------------------------------ */

#define AVX512_VEC_DOT(name)                                                                       \
    void kern_avx512_vec_dot_##name(int64_t n, float *s, const void *w, const void *x)
#define AVX512_GEMM(name)                                                                          \
    void kern_avx512_gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,   \
                                 size_t xs, int64_t nt, float *y, int64_t ldy)
#define AVX512_GEMV(name)                                                                          \
    void kern_avx512_gemv_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,   \
                                 size_t xs, int64_t nt, float *y, int64_t ldy)

/* x86_avx512_float.c: F32, F16, BF16 (vec_dot_bf16_dp: CPUs with AVX512-BF16) */
AVX512_VEC_DOT(f32);
AVX512_VEC_DOT(f16);
AVX512_VEC_DOT(bf16);
AVX512_VEC_DOT(bf16_dp);
AVX512_GEMM(f32);
AVX512_GEMM(f16);
void kern_avx512_to_float_f16(const void *x, float *y, int64_t n);
void kern_avx512_to_float_bf16(const void *x, float *y, int64_t n);
void kern_avx512_from_float_f16(const float *x, void *y, int64_t n);
void kern_avx512_from_float_bf16(const float *x, void *y, int64_t n);

/* x86_avx512_attn.c: kern_attn_tile over an F32 or F16 cache */
void kern_avx512_attn_f32(const kern_attn_args *a);
void kern_avx512_attn_f16(const kern_attn_args *a);

/* x86_avx512_q32.c: the 32-element formats, with (_vnni) and without VNNI */
#define AVX512_VEC_DOT2(name)                                                                      \
    AVX512_VEC_DOT(name##_vnni);                                                                   \
    AVX512_VEC_DOT(name##_plain)
AVX512_VEC_DOT2(q4_0);
AVX512_VEC_DOT2(q4_1);
AVX512_VEC_DOT2(q5_0);
AVX512_VEC_DOT2(q5_1);
AVX512_VEC_DOT2(q8_0);
AVX512_VEC_DOT2(iq4_nl);
void kern_avx512_from_float_q8_0(const float *x, void *y, int64_t n);
void kern_avx512_from_float_q8_1(const float *x, void *y, int64_t n);

/* x86_avx512_kq.c: the K-quants, with (_vnni) and without VNNI */
AVX512_VEC_DOT2(q4_K);
AVX512_VEC_DOT2(q5_K);
AVX512_VEC_DOT2(q6_K);
AVX512_VEC_DOT2(iq4_xs);
void kern_avx512_from_float_q8_K(const float *x, void *y, int64_t n);

/* x86_avx512_kq23.c: Q2_K and Q3_K, vec_dot and the gemm with its bits */
#define AVX512_VEC_DOT_GEMM2(name)                                                                 \
    AVX512_VEC_DOT2(name);                                                                         \
    AVX512_GEMM(name##_vnni);                                                                      \
    AVX512_GEMM(name##_plain)
AVX512_VEC_DOT_GEMM2(q2_K);
AVX512_VEC_DOT_GEMM2(q3_K);

/* x86_avx512_gemv.c: the canonical arithmetic's vec_dot and rows of a few
 * tokens (only where gemv_fits); x86_avx512_gemm.c: the VNNI table's gemm */
#define AVX512_CANON(name)                                                                         \
    AVX512_VEC_DOT(name##_canon);                                                                  \
    AVX512_GEMV(name);                                                                             \
    AVX512_GEMM(name)
AVX512_CANON(q8_0);
AVX512_CANON(q4_0);
AVX512_CANON(q5_0);
AVX512_CANON(q4_K);
AVX512_CANON(q5_K);
AVX512_CANON(q6_K);
AVX512_CANON(iq4_nl);
AVX512_CANON(iq4_xs);
AVX512_CANON(q2_K);
AVX512_CANON(q3_K);

/* x86_avx512_pack.c: the packed layout (x86_avx512_pack.h) of the formats
 * that have one; x86_avx512_gemm.c: its gemm */
#define AVX512_PACK_BYTES(name) size_t kern_avx512_pack_bytes_##name(int64_t n_rows, int64_t n_cols)
#define AVX512_PACK(name)                                                                          \
    void kern_avx512_pack_##name(const void *w, size_t w_stride, int64_t n_rows, int64_t n_cols,   \
                                 void *out)
#define AVX512_PACKED(name)                                                                        \
    AVX512_PACK_BYTES(name);                                                                       \
    AVX512_PACK(name);                                                                             \
    AVX512_GEMM(name##_packed)
AVX512_PACKED(q8_0);
AVX512_PACKED(q4_0);
AVX512_PACKED(q5_0);
AVX512_PACKED(q4_K);
AVX512_PACKED(q5_K);
AVX512_PACKED(q6_K);
AVX512_PACKED(iq4_nl);
AVX512_PACKED(iq4_xs);
AVX512_PACKED(q2_K);
AVX512_PACKED(q3_K);

#endif
