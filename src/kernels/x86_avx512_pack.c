/*
 * x86_avx512_pack.c - repacks a weight into the VNNI table's packed layout
 * (x86_avx512_pack.h), once at load. The levels come from the panels' own
 * reader (panel_levels: vd_levels64, transposed to lane = row; the IQ4
 * formats' codebook indices before the codebook), so the packed form
 * decodes to exactly what the row-major kernels read; scales and d are
 * copied as the format stores them.
 */
#include "kernels/x86_avx512_pack.h"

/* Low nibbles a, high nibbles b (levels below 16). */
AI __m512i nibbles(__m512i a, __m512i b) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    return _mm512_or_si512(_mm512_and_si512(a, m4), _mm512_slli_epi16(_mm512_and_si512(b, m4), 4));
}

/* Bits 4-5 of each level of v, at bit `at`. */
AI __m512i top2(__m512i v, int at) {
    const __m512i t = _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(3));
    return _mm512_slli_epi16(t, at);
}

/* Bit `bit` (a power of two) of each of the 64 levels of v, as one 64-bit
 * mask at dst. */
AI void level_bits(uint8_t *dst, __m512i v, char bit) {
    const uint64_t m = _cvtmask64_u64(_mm512_test_epi8_mask(v, _mm512_set1_epi8(bit)));
    memcpy(dst, &m, sizeof m);
}

/* The low two bits of the levels of groups 0..3 at v, group g in bits 2g-2g+1. */
AI __m512i low2(const __m512i *v) {
    __m512i lo = _mm512_setzero_si512();
    for (int q = 0; q < 4; q++)
        lo = _mm512_or_si512(lo,
                             _mm512_slli_epi16(_mm512_and_si512(v[q], _mm512_set1_epi8(3)), 2 * q));
    return lo;
}

AI void put_f16s(uint8_t *dst, const uint8_t *const *wr, size_t at) {
    for (int r = 0; r < GR; r++) memcpy(dst + 2 * r, wr[r] + at, 2);
}

/* One unit (zeroed) at u from the transposed levels lv of its elements
 * (lv vector i: elements 4i..4i+3) and the rows wr[] at its first block
 * blk; `elems`: the row's elements in it (a half unit at a row's end). */
AI void pack_unit(gemm_kind k, const uint8_t *lv, const uint8_t *const *wr, int64_t blk, int elems,
                  uint8_t *u) {
    const gemm_geom g = gemm_geom_of(k);
    const __m512i *v = (const __m512i *)lv;
    const int lb = pk_sub_levels(k);
    if (g.wbe == 32) {
        for (int j = 0; j < elems / 32; j++) {
            const __m512i *b = v + 8 * j;
            uint8_t *o = u + lb * j;
            for (int q = 0; q < 8; q++) {
                if (k == GK_Q8_0)
                    _mm512_store_si512(o + 64 * q, b[q]);
                else if (q < 4)
                    _mm512_store_si512(o + 64 * q, nibbles(b[q], b[q + 4]));
                if (k == GK_Q5_0) level_bits(o + 256 + 8 * q, b[q], 16);
            }
            put_f16s(u + pk_d_at(k, j), wr, (size_t)(blk + j) * g.wbb);
        }
        return;
    }
    const size_t at = (size_t)blk * g.wbb;
    if (k == GK_Q2_K) {
        for (int j = 0; j < 16; j++) _mm512_store_si512(u + 64 * j, low2(v + 4 * j));
        for (int r = 0; r < GR; r++)
            for (int j = 0; j < 16; j++)
                u[pk_scale_at(k, j) + r] = wr[r][at + Q2K_SCALES + (size_t)j];
        put_f16s(u + pk_d_at(k, 0), wr, at + Q2K_D);
        put_f16s(u + pk_d_at(k, 0) + 32, wr, at + Q2K_DMIN);
        return;
    }
    if (k == GK_Q3_K) {
        for (int j = 0; j < 16; j++) {
            uint8_t *p = u + 192 * (j / 2);
            for (int q = 0; q < 4; q++) level_bits(p + 128 + 32 * (j % 2) + 8 * q, v[4 * j + q], 4);
            _mm512_store_si512(p + 64 * (j % 2), low2(v + 4 * j));
        }
        for (int r = 0; r < GR; r++) {
            uint8_t sc[16];
            _mm_storeu_si128((__m128i *)sc, q3k_scales16(wr[r] + at + Q3K_SCALES));
            for (int j = 0; j < 16; j++) u[pk_scale_at(k, j) + r] = sc[j];
        }
        put_f16s(u + pk_d_at(k, 0), wr, at + Q3K_D);
        return;
    }
    if (k != GK_Q6_K) { /* Q4_K, Q5_K, IQ4_XS */
        for (int j = 0; j < 8; j++)
            for (int q = 0; q < 8; q++) {
                const __m512i b = v[8 * j + q];
                if (q < 4) _mm512_store_si512(u + lb * j + 64 * q, nibbles(b, v[8 * j + q + 4]));
                if (k == GK_Q5_K) level_bits(u + lb * j + 256 + 8 * q, b, 16);
            }
        put_f16s(u + pk_d_at(k, 0), wr, at);
        if (k == GK_IQ4_XS) {
            for (int r = 0; r < GR; r++) {
                int32_t ls[8]; /* ls - 32, in -32..31 */
                _mm256_storeu_si256((__m256i *)ls, iq4_xs_scales8(wr[r] + at));
                for (int j = 0; j < 8; j++) u[pk_scale_at(k, j) + r] = (uint8_t)(int8_t)ls[j];
            }
            return;
        }
        put_f16s(u + pk_d_at(k, 0) + 32, wr, at + 2);
        for (int r = 0; r < GR; r++) {
            uint8_t sm[16]; /* the 8 scales, the 8 mins */
            _mm_storeu_si128((__m128i *)sm, k4_scales_mins(wr[r] + at + 4));
            for (int j = 0; j < 8; j++) {
                u[pk_scale_at(k, j) + r] = sm[j];
                u[pk_scale_at(k, j) + 128 + r] = sm[8 + j];
            }
        }
        return;
    }
    for (int j = 0; j < 16; j++) { /* Q6_K */
        const __m512i *b = v + 4 * j;
        _mm512_store_si512(u + 192 * j, nibbles(b[0], b[1]));
        _mm512_store_si512(u + 192 * j + 64, nibbles(b[2], b[3]));
        const __m512i h = _mm512_or_si512(_mm512_or_si512(top2(b[0], 0), top2(b[1], 2)),
                                          _mm512_or_si512(top2(b[2], 4), top2(b[3], 6)));
        _mm512_store_si512(u + 192 * j + 128, h);
        for (int r = 0; r < GR; r++) u[pk_scale_at(k, j) + r] = wr[r][at + 192 + (size_t)j];
    }
    put_f16s(u + pk_d_at(k, 0), wr, at + 208);
}

/* Rows wr[0..15] of n elements into one panel at out. */
AI void pack_panel(gemm_kind k, const uint8_t *const *wr, int64_t n, uint8_t *out) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb, ue = pk_unit_elems(k), ub = pk_unit_bytes(k);
    _Alignas(64) uint8_t lv[GKC * GR];
    for (int64_t kc0 = 0; kc0 < n; kc0 += kc) {
        const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc);
        const uint8_t *wc[GR];
        for (int r = 0; r < GR; r++) wc[r] = wr[r] + (size_t)(kc0 / g.wbe) * g.wbb;
        panel_levels(k, wc, kcn, true, lv);
        for (int e = 0; e < kcn; e += ue) {
            uint8_t *u = out + (size_t)((kc0 + e) / ue) * (size_t)ub;
            memset(u, 0, (size_t)ub);
            pack_unit(k, lv + 16 * e, wr, (kc0 + e) / g.wbe, kcn - e < ue ? kcn - e : ue, u);
        }
    }
}

AI size_t pack_bytes(gemm_kind k, int64_t n_rows, int64_t n_cols) {
    if (n_rows < 1 || n_cols < 1 || n_cols % gemm_geom_of(k).wbe) return 0;
    const int64_t ue = pk_unit_elems(k);
    return (size_t)((n_rows + GR - 1) / GR) * (size_t)((n_cols + ue - 1) / ue) *
           (size_t)pk_unit_bytes(k);
}

AI void pack(gemm_kind k, const void *w, size_t w_stride, int64_t n_rows, int64_t n_cols,
             void *out) {
    const size_t panel = pack_bytes(k, GR, n_cols);
    for (int64_t r0 = 0; r0 < n_rows; r0 += GR) {
        const uint8_t *wr[GR];
        for (int r = 0; r < GR; r++)
            wr[r] = (const uint8_t *)w + (size_t)(r0 + r < n_rows ? r0 + r : n_rows - 1) * w_stride;
        pack_panel(k, wr, n_cols, (uint8_t *)out + (size_t)(r0 / GR) * panel);
    }
}

#define PACK_FN(name, kind)                                                                        \
    AVX512_PACK_BYTES(name) { return pack_bytes(kind, n_rows, n_cols); }                           \
    AVX512_PACK(name) { pack(kind, w, w_stride, n_rows, n_cols, out); }
PACK_FN(q8_0, GK_Q8_0)
PACK_FN(q4_0, GK_Q4_0)
PACK_FN(q5_0, GK_Q5_0)
PACK_FN(q4_K, GK_Q4_K)
PACK_FN(q5_K, GK_Q5_K)
PACK_FN(q6_K, GK_Q6_K)
PACK_FN(iq4_nl, GK_IQ4_NL)
PACK_FN(iq4_xs, GK_IQ4_XS)
PACK_FN(q2_K, GK_Q2_K)
PACK_FN(q3_K, GK_Q3_K)
