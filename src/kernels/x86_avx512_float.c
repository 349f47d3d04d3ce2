/*
 * x86_avx512_float.c - the float element types on AVX-512: F32, F16 and BF16
 * dot products (BF16 also with vdpbf16ps where the CPU has AVX512-BF16), the
 * F32/F16 gemm in tiles that keep vec_dot's bits, and the F16/BF16
 * conversions. Sums stay in 16 lanes until the end, so results differ from
 * the scalar references only by float rounding; conversions are exact
 * (round to nearest even).
 */
#include "kernels/x86_avx512.h"

/* The lanes of a 16-wide step with `rem` elements left. */
AI __mmask16 tail16(int64_t rem) { return (__mmask16)(rem >= 16 ? 0xFFFFu : (1u << rem) - 1u); }

typedef enum { FK_F32, FK_F16, FK_BF16 } flt_kind;

/* 16 elements at p; with a mask only its lanes are read (the rest are zero). */
AI __m512 load16f(flt_kind k, const void *p, bool masked, __mmask16 m, bool weights) {
    switch (k) {
    case FK_F32:
        if (masked) return _mm512_maskz_loadu_ps(m, p);
        return weights ? _mm512_castsi512_ps(wload512(p)) : _mm512_loadu_ps(p);
    case FK_F16: return _mm512_cvtph_ps(masked ? _mm256_maskz_loadu_epi16(m, p) : load256(p));
    case FK_BF16: {
        const __m256i h = masked ? _mm256_maskz_loadu_epi16(m, p) : load256(p);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    }
    return _mm512_setzero_ps();
}

AI void vd_float(flt_kind k, int64_t n, float *s, const void *vw, const void *vx) {
    const size_t es = k == FK_F32 ? 4 : 2;
    const uint8_t *a = vw, *b = vx;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const size_t o = (size_t)(i + 16 * j) * es;
            acc[j] = _mm512_fmadd_ps(load16f(k, a + o, false, 0, true),
                                     load16f(k, b + o, false, 0, false), acc[j]);
        }
    for (; i < n; i += 16) {
        const __mmask16 m = tail16(n - i);
        const size_t o = (size_t)i * es;
        acc[0] = _mm512_fmadd_ps(load16f(k, a + o, true, m, true),
                                 load16f(k, b + o, true, m, false), acc[0]);
    }
    *s = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

/* vd_float for a tile of rm <= 2 weight rows and rn <= 3 tokens: each
 * pair keeps vd_float's four accumulators and its order (so the bits are
 * vec_dot's), and every loaded and converted vector serves 2 or 3 pairs. */
AI void fgemm_tile(flt_kind k, const int rm, const int rn, int64_t n, const uint8_t *w, size_t ws,
                   const uint8_t *x, size_t xs, float *y, int64_t ldy) {
    const size_t es = k == FK_F32 ? 4 : 2;
    __m512 acc[4][2][3];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 2
        for (int r = 0; r < rm; r++)
#pragma GCC unroll 3
            for (int t = 0; t < rn; t++) acc[j][r][t] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const size_t o = (size_t)(i + 16 * j) * es;
            __m512 wv[2], xv[3];
#pragma GCC unroll 2
            for (int r = 0; r < rm; r++) wv[r] = load16f(k, w + r * ws + o, false, 0, true);
#pragma GCC unroll 3
            for (int t = 0; t < rn; t++) xv[t] = load16f(k, x + t * xs + o, false, 0, false);
#pragma GCC unroll 2
            for (int r = 0; r < rm; r++)
#pragma GCC unroll 3
                for (int t = 0; t < rn; t++)
                    acc[j][r][t] = _mm512_fmadd_ps(wv[r], xv[t], acc[j][r][t]);
        }
    for (; i < n; i += 16) {
        const __mmask16 m = tail16(n - i);
        const size_t o = (size_t)i * es;
        __m512 wv[2], xv[3];
        for (int r = 0; r < rm; r++) wv[r] = load16f(k, w + r * ws + o, true, m, true);
        for (int t = 0; t < rn; t++) xv[t] = load16f(k, x + t * xs + o, true, m, false);
        for (int r = 0; r < rm; r++)
            for (int t = 0; t < rn; t++) acc[0][r][t] = _mm512_fmadd_ps(wv[r], xv[t], acc[0][r][t]);
    }
#pragma GCC unroll 2
    for (int r = 0; r < rm; r++)
#pragma GCC unroll 3
        for (int t = 0; t < rn; t++)
            y[t * ldy + r] =
                _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0][r][t], acc[1][r][t]),
                                                   _mm512_add_ps(acc[2][r][t], acc[3][r][t])));
}

/* rm (constant) rows at wr against every token, in tiles of 3 tokens and a
 * last one of 1 or 2. */
AI void fgemm_rows(flt_kind k, const int rm, int64_t n, const uint8_t *wr, size_t ws,
                   const uint8_t *x, size_t xs, int64_t nt, float *y, int64_t ldy) {
    for (int64_t t = 0; t < nt;) {
        const uint8_t *xt = x + (size_t)t * xs;
        float *yt = y + t * ldy;
        const int rn = nt - t >= 3 ? 3 : (int)(nt - t);
        if (rn == 3)
            fgemm_tile(k, rm, 3, n, wr, ws, xt, xs, yt, ldy);
        else if (rn == 2)
            fgemm_tile(k, rm, 2, n, wr, ws, xt, xs, yt, ldy);
        else
            fgemm_tile(k, rm, 1, n, wr, ws, xt, xs, yt, ldy);
        t += rn;
    }
}

AI void fgemm(flt_kind k, int64_t n, const void *vw, size_t ws, int64_t nr, const void *vx,
              size_t xs, int64_t nt, float *y, int64_t ldy) {
    const uint8_t *w = vw, *x = vx;
    if (nt == 1) { /* rows one after the other: two interleaved streams from memory are slower */
        for (int64_t r = 0; r < nr; r++) vd_float(k, n, y + r, w + (size_t)r * ws, x);
        return;
    }
    for (int64_t r = 0; r < nr; r += 2) {
        if (nr - r >= 2)
            fgemm_rows(k, 2, n, w + (size_t)r * ws, ws, x, xs, nt, y + r, ldy);
        else
            fgemm_rows(k, 1, n, w + (size_t)r * ws, ws, x, xs, nt, y + r, ldy);
    }
}

void kern_avx512_gemm_f32(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                          int64_t nt, float *y, int64_t ldy) {
    fgemm(FK_F32, n, w, ws, nr, x, xs, nt, y, ldy);
}
void kern_avx512_gemm_f16(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                          int64_t nt, float *y, int64_t ldy) {
    fgemm(FK_F16, n, w, ws, nr, x, xs, nt, y, ldy);
}

void kern_avx512_vec_dot_f32(int64_t n, float *s, const void *w, const void *x) {
    vd_float(FK_F32, n, s, w, x);
}
void kern_avx512_vec_dot_f16(int64_t n, float *s, const void *w, const void *x) {
    vd_float(FK_F16, n, s, w, x);
}
void kern_avx512_vec_dot_bf16(int64_t n, float *s, const void *w, const void *x) {
    vd_float(FK_BF16, n, s, w, x);
}

/* BF16 x BF16 with vdpbf16ps (pairs of exact products added to float lanes),
 * installed only on CPUs with AVX512-BF16. Like ggml's, it reads bf16 values
 * below the normal range as zero. */
__attribute__((target("avx512bf16"))) void
kern_avx512_vec_dot_bf16_dp(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *a = vw, *b = vx;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)wload512(a + i), (__m512bh)load512(b + i));
        acc1 =
            _mm512_dpbf16_ps(acc1, (__m512bh)wload512(a + i + 32), (__m512bh)load512(b + i + 32));
    }
    for (; i < n; i += 32) {
        const int64_t rem = n - i;
        const __mmask32 m = (__mmask32)(rem >= 32 ? 0xFFFFFFFFu : (1u << rem) - 1u);
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_maskz_loadu_epi16(m, a + i),
                                (__m512bh)_mm512_maskz_loadu_epi16(m, b + i));
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

AI void to_float16(flt_kind k, const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, load16f(k, x + i, false, 0, false));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(y + i, m, load16f(k, x + i, true, m, false));
    }
}

void kern_avx512_to_float_f16(const void *x, float *y, int64_t n) { to_float16(FK_F16, x, y, n); }
void kern_avx512_to_float_bf16(const void *x, float *y, int64_t n) { to_float16(FK_BF16, x, y, n); }

/* f32 -> f16 or bf16, both rounding to nearest even. For bf16, NaNs keep
 * their top bits and become quiet (as kern_f32_to_bf16). */
AI __m256i to_half16(flt_kind k, __m512 v) {
    if (k == FK_F16) return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
    r = _mm512_srli_epi32(r, 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(64));
    return _mm512_cvtepi32_epi16(r);
}

AI void from_float16(flt_kind k, const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), to_half16(k, _mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm256_mask_storeu_epi16(y + i, m, to_half16(k, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

void kern_avx512_from_float_f16(const float *x, void *y, int64_t n) {
    from_float16(FK_F16, x, y, n);
}
void kern_avx512_from_float_bf16(const float *x, void *y, int64_t n) {
    from_float16(FK_BF16, x, y, n);
}
