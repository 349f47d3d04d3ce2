/*
 * x86_avx512_kq23.c - Q2_K and Q3_K against Q8_K on AVX-512, with and
 * without VNNI: vec_dot and gemm, both from one tile of a weight row against
 * 1 to 4 tokens, so that a batch has the bits of one token at a time (the
 * gemm contract) by construction. The table without VNNI uses them; the
 * VNNI table gives both the canonical arithmetic of x86_avx512.h instead,
 * which has a packed layout.
 *
 * As x86_avx2.c's k23_tile, 64 elements a register: the 64 bytes of 2-bit
 * levels shifted by 2s hold elements 32s..32s+31 in the lower half and
 * 128+32s.. in the upper one, i.e. sub-blocks 2s, 2s+1, 8+2s and 9+2s in the
 * four 128-bit lanes, each lane's int16 pair sums times its sub-block scale
 * (dpwssd or vpmaddwd). Integer sums per block are exact; the block is
 * scaled once into 16 float lanes, so results are within float rounding of
 * the scalar references (and of the AVX2 kernels). Layouts: block_q2_K and
 * block_q3_K (blocks.h).
 */
#include "kernels/x86_avx512.h"

enum { K23_TMAX = 4 };

#define NOINLINE static __attribute__((noinline))

/* int16 words of scale byte k_l in 128-bit lane l (scales broadcast to every
 * lane): byte k_l moved to the high byte of each word, shifted down signed. */
AI __m512i k23_lane_scales(__m512i scb, int s) {
    const int k0 = 2 * s, k1 = 2 * s + 1, k2 = 8 + 2 * s, k3 = 9 + 2 * s;
    const __m256i lo = _mm256_set_m128i(_mm_set1_epi16((short)(k1 << 8 | 0x80)),
                                        _mm_set1_epi16((short)(k0 << 8 | 0x80)));
    const __m256i hi = _mm256_set_m128i(_mm_set1_epi16((short)(k3 << 8 | 0x80)),
                                        _mm_set1_epi16((short)(k2 << 8 | 0x80)));
    const __m512i ctl = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_srai_epi16(_mm512_shuffle_epi8(scb, ctl), 8);
}

/* One Q2_K (q3 false) or Q3_K row against T tokens of Q8_K (x86_avx2.c's
 * k23_tile: unsigned levels, the offsets through the activation sums). */
AI void k23_tile512(bool q3, const int T, int64_t n, const uint8_t *vw, const uint8_t *const *xp,
                    float *out, bool vnni) {
    const size_t bs = q3 ? sizeof(block_q3_K) : sizeof(block_q2_K);
    const int64_t nb = n / QK_K;
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512 acc[K23_TMAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *wb = vw + (size_t)i * bs;
        const block_q8_K *x[K23_TMAX];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) x[t] = (const block_q8_K *)xp[t] + i;
        __m128i sc8;
        __m256i offs; /* Q2_K: the mins, Q3_K: the scales, as int16 */
        float wd, wdmin = 0.0f;
        if (q3) {
            sc8 = q3k_scales16(wb + Q3K_SCALES);
            offs = _mm256_cvtepi8_epi16(sc8);
            wd = f16_at(wb + Q3K_D);
        } else {
            const __m128i s = _mm_loadu_si128((const __m128i *)wb);
            const __m128i m4 = _mm_set1_epi8(0x0F);
            sc8 = _mm_and_si128(s, m4);
            offs = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
            wd = f16_at(wb + Q2K_D);
            wdmin = f16_at(wb + Q2K_DMIN);
        }
        const __m512i scb = _mm512_broadcast_i32x4(sc8);
        __m512i sumi[K23_TMAX];
        __m256i offi[K23_TMAX];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            sumi[t] = _mm512_setzero_si512();
            offi[t] = _mm256_madd_epi16(offs, load256(x[t]->bsums));
        }
        const __m512i b = wload512(wb + (q3 ? 32 : 16));
        const __m512i h = q3 ? _mm512_broadcast_i64x4(load256(wb)) : _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            __m512i u = _mm512_and_si512(_mm512_srli_epi16(b, 2 * s), m3);
            if (q3) { /* high bit of element 32s + l: bit s of hmask[l]; of 128 + 32s + l: 4 + s */
                const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << s)),
                                                       _mm256_set1_epi8((char)(1 << (4 + s))), 1);
                u = _mm512_mask_add_epi8(u, _mm512_test_epi8_mask(h, sel), u, _mm512_set1_epi8(4));
            }
            const __m512i sc = k23_lane_scales(scb, s);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const __m512i xv = load2x32(x[t]->qs + 32 * s, x[t]->qs + 128 + 32 * s);
                sumi[t] = dp_ww(sumi[t], _mm512_maddubs_epi16(u, xv), sc, vnni);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m512i off = _mm512_zextsi256_si512(offi[t]);
            if (q3) {
                const __m512i si = _mm512_sub_epi32(sumi[t], _mm512_slli_epi32(off, 2));
                acc[t] =
                    _mm512_fmadd_ps(_mm512_set1_ps(wd * x[t]->d), _mm512_cvtepi32_ps(si), acc[t]);
            } else {
                acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(wd * x[t]->d), _mm512_cvtepi32_ps(sumi[t]),
                                         acc[t]);
                acc[t] = _mm512_fnmadd_ps(_mm512_set1_ps(wdmin * x[t]->d), _mm512_cvtepi32_ps(off),
                                          acc[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) out[t] = _mm512_reduce_add_ps(acc[t]);
}

typedef void (*k23_tile_fn)(int64_t n, const uint8_t *w, const uint8_t *const *xp, float *out);

/* Rows in groups of about 64 KiB of weights (in L2 once read), tokens in
 * groups of up to 4 whose activations stay in L1 across the group's rows. */
static void k23_gemm(const k23_tile_fn *tiles, int64_t n, const uint8_t *w, size_t ws, int64_t nr,
                     const uint8_t *x, size_t xs, int64_t nt, float *y, int64_t ldy) {
    int64_t rg = (int64_t)(65536 / (ws ? ws : 1));
    rg = rg < 4 ? 4 : rg > 256 ? 256 : rg;
    for (int64_t r0 = 0; r0 < nr; r0 += rg) {
        const int64_t r1 = r0 + rg < nr ? r0 + rg : nr;
        for (int64_t t0 = 0; t0 < nt; t0 += K23_TMAX) {
            const int tc = nt - t0 < K23_TMAX ? (int)(nt - t0) : K23_TMAX;
            const uint8_t *xp[K23_TMAX];
            for (int t = 0; t < tc; t++) xp[t] = x + (size_t)(t0 + t) * xs;
            for (int64_t r = r0; r < r1; r++) {
                float out[K23_TMAX];
                tiles[tc - 1](n, w + (size_t)r * ws, xp, out);
                for (int t = 0; t < tc; t++) y[(t0 + t) * ldy + r] = out[t];
            }
        }
    }
}

#define K23_TILE(name, q3, T, vnni)                                                                \
    NOINLINE void name##_t##T(int64_t n, const uint8_t *w, const uint8_t *const *xp, float *out) { \
        k23_tile512(q3, T, n, w, xp, out, vnni);                                                   \
    }
#define K23_FNS(name, q3, vnni)                                                                    \
    K23_TILE(name, q3, 1, vnni)                                                                    \
    K23_TILE(name, q3, 2, vnni)                                                                    \
    K23_TILE(name, q3, 3, vnni)                                                                    \
    K23_TILE(name, q3, 4, vnni)                                                                    \
    AVX512_VEC_DOT(name) {                                                                         \
        const uint8_t *xp = x;                                                                     \
        name##_t1(n, w, &xp, s);                                                                   \
    }                                                                                              \
    AVX512_GEMM(name) {                                                                            \
        static const k23_tile_fn tiles[K23_TMAX] = {name##_t1, name##_t2, name##_t3, name##_t4};   \
        k23_gemm(tiles, n, w, ws, nr, x, xs, nt, y, ldy);                                          \
    }

K23_FNS(q2_K_vnni, false, true)
K23_FNS(q2_K_plain, false, false)
K23_FNS(q3_K_vnni, true, true)
K23_FNS(q3_K_plain, true, false)
