/*
 * x86_avx512_pack.h - the VNNI table's packed weights: a weight repacked
 * once at load (x86_avx512_pack.c) so that the canonical arithmetic
 * (x86_avx512.h) reads it with lane = row and neither transposes rows nor
 * sums lanes (x86_avx512_gemm.c): one vpdpbusd takes 4 levels of each of
 * 16 rows against 4 broadcast activation bytes.
 *
 * A weight is a sequence of panels of GR (16) rows, rows past its last
 * repeating the last. A panel is its rows' units in order: unit u holds
 * elements [u E, u E + E) of each of the 16 rows in pk_unit_bytes(k) bytes,
 * E = pk_unit_elems(k) (two blocks of the 32-element formats, the second
 * zero where a row has an odd number; one of the K-quants), a multiple of
 * 64 bytes so that every vector load is aligned. In every 64-byte vector
 * below, bytes 4r..4r+3 belong to row r, and "group g" is elements
 * 4g..4g+3 of a sub-block (its levels are groups 0..sb/4-1, as vd_levels64
 * gives them):
 *   Q8_0   per block: 8 vectors, group g's levels (quant + 128); then d[2][16]
 *          (fp16, per block)
 *   Q4_0   per block: 4 nibble vectors, vector g holding group g in its low
 *          nibbles and group g + 4 in its high ones; then d[2][16]
 *   Q5_0   per block: as Q4_0, then the fifth bits of each group's 64
 *          levels as one 64-bit mask (8 masks); then d[2][16]
 *   Q4_K   per sub-block j < 8: Q4_0's 4 nibble vectors; d[16], dmin[16];
 *          the 6-bit scales and mins a byte each: scale[8][16], min[8][16]
 *   Q5_K   as Q4_K, with Q5_0's 8 masks of fifth bits after each sub-block's
 *          nibbles
 *   Q6_K   per sub-block j < 16 (groups 0..3): the nibble vectors of groups
 *          0 (low) and 1 (high), 2 and 3, and one vector of the levels' top
 *          two bits, groups 0..3 in bits 0-1, 2-3, 4-5, 6-7 (192 bytes, read
 *          in order); scale[16][16] (int8); d[16]; 32 bytes of padding
 *   Q2_K   per sub-block j < 16 (groups 0..3): one vector of the levels, group
 *          g in bits 2g-2g+1; the file's scale bytes (scale in the low
 *          nibble, min in the high one): scale[16][16]; d[16], dmin[16]
 *   Q3_K   per pair of sub-blocks 2i, 2i + 1 (i < 8; groups 0..3 each): a
 *          vector of the levels' low two bits of each (group g in bits
 *          2g-2g+1), then the third bits of each group's 64 levels as
 *          64-bit masks (4 per sub-block; 192 bytes); scale[16][16] (int8,
 *          sc - 32); d[16]; 32 bytes of padding
 *   IQ4_NL as Q4_0, the nibbles being codebook indices
 *   IQ4_XS per sub-block j < 8: Q4_0's 4 nibble vectors of codebook
 *          indices; d[16], 32 bytes of padding; the multipliers ls - 32 as
 *          int8: scale[8][16]
 * Q4_K grows by 64 bytes per 2304 (the scales unpacked), Q5_K by 64 per
 * 2816, Q6_K by 32 per 3360, IQ4_XS by 64 per 2176 and Q3_K by 96 per 1760;
 * the others (Q2_K too) keep their size. The levels and scales decoded
 * here are vd_levels64's and vd_scales' (the same bits).
 */
#ifndef HEARTH_KERN_X86_AVX512_PACK_H
#define HEARTH_KERN_X86_AVX512_PACK_H

#include "kernels/x86_avx512.h"

/* Bytes of one sub-block's levels (16 rows) in a packed unit. */
AI int pk_sub_levels(gemm_kind k) {
    switch (k) {
    case GK_Q8_0: return 512;
    case GK_Q5_0:
    case GK_Q5_K: return 320; /* nibbles, then the fifth bits */
    case GK_Q6_K: return 192;
    case GK_Q2_K: return 64;
    case GK_Q3_K: return 96;
    default: return 256;
    }
}

/* Elements of a row in one packed unit, and the unit's bytes (16 rows). */
AI int pk_unit_elems(gemm_kind k) { return gemm_geom_of(k).wbe == 32 ? 64 : 256; }
AI int pk_unit_bytes(gemm_kind k) {
    if (gemm_geom_of(k).wbe == 32) return 2 * pk_sub_levels(k) + 64;
    if (k == GK_Q6_K) return 3392;
    if (k == GK_Q3_K) return 1856;
    if (k == GK_Q2_K) return 1344;
    return 8 * pk_sub_levels(k) + (k == GK_IQ4_XS ? 192 : 320);
}

/* Where the fp16 d[16] of sub-block j's block starts (Q4_K, Q5_K: dmin[16]
 * follows), and the 256-element formats' scale bytes of sub-block j (Q4_K,
 * Q5_K: the mins 128 bytes on). */
AI int pk_d_at(gemm_kind k, int j) {
    if (gemm_geom_of(k).wbe == 32) return 2 * pk_sub_levels(k) + 32 * j;
    switch (k) {
    case GK_Q6_K: return 3328;
    case GK_Q3_K: return 1792;
    case GK_Q2_K: return 1280;
    default: return 8 * pk_sub_levels(k);
    }
}
AI int pk_scale_at(gemm_kind k, int j) {
    switch (k) {
    case GK_Q6_K: return 3072 + 16 * j;
    case GK_Q3_K: return 1536 + 16 * j;
    case GK_Q2_K: return 1024 + 16 * j;
    default: return 8 * pk_sub_levels(k) + 64 + 16 * j;
    }
}

/* The levels of group q of sub-block j of the packed unit at b (each
 * group alone: the products take them one at a time, and a few registers
 * fewer live keep four tokens' sums from spilling). */
AI __m512i pk_level(gemm_kind k, const uint8_t *b, int j, int q) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if (k == GK_Q8_0) return _mm512_load_si512(b + 512 * j + 64 * q);
    if (k == GK_Q2_K)
        return _mm512_and_si512(_mm512_srli_epi16(_mm512_load_si512(b + 64 * j), 2 * q),
                                _mm512_set1_epi8(3));
    if (k == GK_Q3_K) {
        const uint8_t *p = b + 192 * (j / 2);
        const __m512i lo = _mm512_load_si512(p + 64 * (j % 2));
        const __m512i lev = _mm512_and_si512(_mm512_srli_epi16(lo, 2 * q), _mm512_set1_epi8(3));
        uint64_t third;
        memcpy(&third, p + 128 + 32 * (j % 2) + 8 * q, sizeof third);
        return _mm512_mask_add_epi8(lev, _cvtu64_mask64(third), lev, _mm512_set1_epi8(4));
    }
    if (k == GK_Q6_K) {
        const __m512i n = _mm512_load_si512(b + 192 * j + 64 * (q / 2));
        const __m512i h = _mm512_load_si512(b + 192 * j + 128);
        const __m512i top = q == 0   ? _mm512_slli_epi16(h, 4)
                            : q == 1 ? _mm512_slli_epi16(h, 2)
                            : q == 2 ? h
                                     : _mm512_srli_epi16(h, 2); /* bits 4-5 now */
        return _mm512_ternarylogic_epi32(q % 2 ? _mm512_srli_epi16(n, 4) : n, m4,
                                         _mm512_and_si512(top, _mm512_set1_epi8(0x30)), 0xEA);
    }
    const uint8_t *n = b + pk_sub_levels(k) * j;
    const __m512i v = _mm512_load_si512(n + 64 * (q % 4));
    __m512i lev = _mm512_and_si512(q < 4 ? v : _mm512_srli_epi16(v, 4), m4);
    if (k == GK_IQ4_NL || k == GK_IQ4_XS) return _mm512_shuffle_epi8(iq4_lut(true), lev);
    if (k == GK_Q5_0 || k == GK_Q5_K) {
        uint64_t fifth;
        memcpy(&fifth, n + 256 + 8 * q, sizeof fifth);
        lev = _mm512_mask_add_epi8(lev, _cvtu64_mask64(fifth), lev, _mm512_set1_epi8(16));
    }
    return lev;
}

/* The scales (lane = row) of sub-block j of the packed unit at b and, for
 * Q2_K, Q4_K and Q5_K, its min coefficients (else zero): vd_scales' values (for
 * Q3_K, Q6_K and IQ4_XS, d times the signed byte, as there). */
AI void pk_scales(gemm_kind k, const uint8_t *b, int j, __m512 *sc, __m512 *mn) {
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(b + pk_d_at(k, j))));
    *mn = _mm512_setzero_ps();
    if (gemm_geom_of(k).wbe == 32) {
        *sc = d;
        return;
    }
    const __m128i s = _mm_load_si128((const __m128i *)(b + pk_scale_at(k, j)));
    if (k == GK_Q2_K) {
        q2k_scales_mins(
            s, d, _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(b + pk_d_at(k, j) + 32))), sc,
            mn);
        return;
    }
    if (k == GK_Q6_K || k == GK_Q3_K || k == GK_IQ4_XS) {
        *sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s)));
        return;
    }
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(b + pk_d_at(k, j) + 32)));
    const __m128i m = _mm_load_si128((const __m128i *)(b + pk_scale_at(k, j) + 128));
    *sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(s)));
    *mn = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), dmin),
                        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(m)));
}

#endif
