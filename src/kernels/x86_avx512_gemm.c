/*
 * x86_avx512_gemm.c - the VNNI table's gemm for Q8_0, Q4_0, Q5_0, Q4_K,
 * Q5_K, Q6_K, IQ4_NL and IQ4_XS: one to four tokens go row by row with vec_dot's code
 * (x86_avx512_gemv.c), more through panels of 16 rows, which this file
 * owns. Both compute the canonical arithmetic described in x86_avx512.h, so
 * every entry has the bits of vec_dot whatever n_tok.
 *
 * A panel chunk's rows are read with gemv's code (levels of 64 columns,
 * scale vectors) and transposed 16 x 16 in registers, so that lane = row:
 * the 4 levels of one row and group of 4 columns sit in one int32 lane, and
 * one vpdpbusd against 4 broadcast activation bytes advances 16 rows at once
 * for each of up to 4 tokens held in registers, without horizontal sums; the
 * level offset comes off through the activations' sums (computed once per
 * token and chunk), and each token's tree is built as its sub-blocks arrive.
 * The transposition costs per row what gemv's horizontal sums cost per token
 * and row; the panels win from five tokens (x86_avx512_gemv.c).
 */
#include "kernels/x86_avx512.h"

/* Per sub-block of one token's kcn activations (from a block start): the
 * int32 start of its sums (-offset * sum x), its scale and d * sum x. */
AI void gemm_prep(gemm_kind k, const uint8_t *x, int kcn, int32_t *xc, float *xd, float *xm) {
    const gemm_geom g = gemm_geom_of(k);
    for (int s = 0; s < kcn / g.sb; s++) {
        int sum;
        float d;
        if (g.xbe == 32) { /* Q8_0: sum of the 32 quants */
            const uint8_t *xb = x + (size_t)s * g.xbb;
            const __m256i u = _mm256_xor_si256(load256(xb + 2), _mm256_set1_epi8((char)0x80));
            const __m256i sad = _mm256_sad_epu8(u, _mm256_setzero_si256());
            const __m128i t =
                _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            sum = (int)(_mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1)) - 32 * 128;
            d = f16_at(xb);
        } else { /* Q8_K: d, qs[256], bsums[16] (sums of 16) */
            const int e = s * g.sb;
            const uint8_t *xb = x + (size_t)(e / 256) * g.xbb;
            int16_t bs[2];
            memcpy(bs, xb + 260 + 2 * ((e % 256) / 16), g.sb == 32 ? 4 : 2);
            sum = bs[0] + (g.sb == 32 ? bs[1] : 0);
            memcpy(&d, xb, sizeof d);
        }
        xc[s] = -g.off * sum;
        xd[s] = d;
        xm[s] = d * (float)sum;
    }
}

/* acc + vpdpbusd(w, the 4 bytes at p in every lane), the broadcast folded
 * into the instruction ({1to16}): one micro-op less per step of the gemm's
 * inner loop, which is bound by micro-ops. gcc 12 does not fold it itself. */
typedef int32_t i32_alias __attribute__((may_alias));
AI __m512i dpbusd_b32(__m512i acc, __m512i w, const uint8_t *p) {
#if defined(__GNUC__) && !defined(__clang__)
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const i32_alias *)p));
    return acc;
#else
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(v));
#endif
}

/* P_s of sub-block s for nt tokens (lv/sc/mn: the unpacked panel; xt: each
 * token's activations at the chunk start; xc/xd/xm: their sums, ldp apart). */
AI void gemm_leaf(gemm_kind k, const int nt, int s, const uint8_t *lv, const float *sc,
                  const float *mn, const uint8_t *const *xt, const int32_t *xc, const float *xd,
                  const float *xm, int ldp, __m512 *ps) {
    const gemm_geom g = gemm_geom_of(k);
    const int e = s * g.sb, xo = (e / g.xbe) * g.xbb + g.xq + e % g.xbe;
    __m512i ai[GNT];
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) ai[t] = _mm512_set1_epi32(xc[t * ldp + s]);
#pragma GCC unroll 8
    for (int q = 0; q < g.sb / 4; q++) {
        const __m512i wv = _mm512_load_si512(lv + (size_t)(s * (g.sb / 4) + q) * 64);
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) ai[t] = dpbusd_b32(ai[t], wv, xt[t] + xo + 4 * q);
    }
    const __m512 scv = _mm512_load_ps(sc + s * GR);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        ps[t] = _mm512_mul_ps(_mm512_mul_ps(scv, _mm512_set1_ps(xd[t * ldp + s])),
                              _mm512_cvtepi32_ps(ai[t]));
        if (g.off == 0)
            ps[t] = _mm512_fmadd_ps(_mm512_load_ps(mn + s * GR), _mm512_set1_ps(xm[t * ldp + s]),
                                    ps[t]);
    }
}

/* One chunk of ns <= 16 sub-blocks for nt tokens: the pairwise tree of their
 * P_s, added to y (accumulate) or stored, rows 0..rn-1 of each token. */
AI void gemm_micro(gemm_kind k, const int nt, int ns, const uint8_t *lv, const float *sc,
                   const float *mn, const uint8_t *const *xt, const int32_t *xc, const float *xd,
                   const float *xm, int ldp, float *y, int64_t ldy, int rn, bool accumulate) {
    __m512 l2[GNT], l3[GNT], l4[GNT];
    /* the tree's loops stay loops: unrolled, the 16 leaves made this file
     * slow to compile (minutes under the sanitizers) for no measurable gain */
#pragma GCC unroll 1
    for (int h = 0; h < 2; h++) {
#pragma GCC unroll 1
        for (int q = 0; q < 2; q++) {
#pragma GCC unroll 1
            for (int p = 0; p < 2; p++) {
                const int s = 8 * h + 4 * q + 2 * p;
                __m512 pa[GNT], pb[GNT];
                for (int t = 0; t < nt; t++) pa[t] = pb[t] = _mm512_setzero_ps();
                if (s < ns) gemm_leaf(k, nt, s, lv, sc, mn, xt, xc, xd, xm, ldp, pa);
                if (s + 1 < ns) gemm_leaf(k, nt, s + 1, lv, sc, mn, xt, xc, xd, xm, ldp, pb);
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) {
                    const __m512 l1 = _mm512_add_ps(pa[t], pb[t]);
                    l2[t] = p ? _mm512_add_ps(l2[t], l1) : l1;
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) l3[t] = q ? _mm512_add_ps(l3[t], l2[t]) : l2[t];
        }
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) l4[t] = h ? _mm512_add_ps(l4[t], l3[t]) : l3[t];
    }
    const __mmask16 m = (__mmask16)(rn >= 16 ? 0xFFFFu : (1u << rn) - 1u);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        float *yt = y + t * ldy;
        __m512 v = l4[t];
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, yt));
        _mm512_mask_storeu_ps(yt, m, v);
    }
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

/* A panel chunk: rows 0..rn-1 (rn <= GR) at w, w_stride apart, kcn
 * elements from a block start, read with gemv's code (vd_levels64,
 * vd_scales: the same levels and scales, and no copy through memory) and
 * transposed 16 x 16 into the levels lv and the scales sc (and min
 * coefficients mn) of sub-block s at s * GR, lane = row. Rows past rn
 * repeat row rn - 1 (their lanes are never stored). */
AI void gemm_panel_load(gemm_kind k, const uint8_t *w, size_t w_stride, int rn, int kcn,
                        uint8_t *lv, float *sc, float *mn) {
    const gemm_geom g = gemm_geom_of(k);
    const int ns = kcn / g.sb;
    const uint8_t *wr[GR];
#pragma GCC unroll 16
    for (int r = 0; r < GR; r++) wr[r] = w + (size_t)(r < rn ? r : rn - 1) * w_stride;
    __m512i v[GR], m[GR];
    for (int q = 0; q < (kcn + 63) / 64; q++) {
#pragma GCC unroll 16
        for (int r = 0; r < GR; r++) v[r] = vd_levels64(k, wr[r], q, 64 * q + 64 <= kcn);
        transpose16(v, lv + q * 64 * GR);
    }
#pragma GCC unroll 16
    for (int r = 0; r < GR; r++) {
        __m512 a, b;
        vd_scales(k, wr[r], ns, &a, &b);
        v[r] = _mm512_castps_si512(a);
        m[r] = _mm512_castps_si512(b);
    }
    transpose16(v, sc);
    if (g.off == 0) transpose16(m, mn);
}

/* One loaded panel chunk (ns sub-blocks) against tn tokens whose
 * activations start at x (x_stride apart, xo into the row) and whose sums
 * are xc/xd/xm (ns per token): steps of GNT tokens, the rest in one step. */
AI void gemm_panel_tokens(gemm_kind k, int ns, const uint8_t *lv, const float *sc, const float *mn,
                          const uint8_t *x, size_t x_stride, size_t xo, int tn, const int32_t *xc,
                          const float *xd, const float *xm, float *y, int64_t ldy, int rn,
                          bool accumulate) {
    for (int t = 0; t < tn;) {
        const uint8_t *xt[GNT];
        const int step = tn - t >= GNT ? GNT : tn - t;
        for (int i = 0; i < step; i++) xt[i] = x + (size_t)(t + i) * x_stride + xo;
        float *yt = y + t * ldy;
        const int32_t *c = xc + t * ns;
        const float *dd = xd + t * ns, *mm = xm + t * ns;
        if (step == 4)
            gemm_micro(k, 4, ns, lv, sc, mn, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
        else if (step == 3)
            gemm_micro(k, 3, ns, lv, sc, mn, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
        else if (step == 2)
            gemm_micro(k, 2, ns, lv, sc, mn, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
        else
            gemm_micro(k, 1, ns, lv, sc, mn, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
        t += step;
    }
}

/* Chunk after chunk, each chunk of the tokens (GTC at a time) against every
 * panel, so that the activations' chunk stays in L1. */
typedef void (*panel_load_fn)(const uint8_t *w, size_t w_stride, int rn, int kcn, uint8_t *lv,
                              float *sc, float *mn);
typedef void (*panel_tokens_fn)(int ns, const uint8_t *lv, const float *sc, const float *mn,
                                const uint8_t *x, size_t x_stride, size_t xo, int tn,
                                const int32_t *xc, const float *xd, const float *xm, float *y,
                                int64_t ldy, int rn, bool accumulate);

/* load_full / load_any: gemm_panel_load of a whole chunk (its size a
 * constant) or of any; tokens: gemm_panel_tokens (all of kind k). */
AI void gemm_body(gemm_kind k, panel_load_fn load_full, panel_load_fn load_any,
                  panel_tokens_fn tokens, int64_t n, const void *vw, size_t w_stride, int64_t nr,
                  const void *vx, size_t x_stride, int64_t nt, float *y, int64_t ldy) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb; /* one chunk: 16 sub-blocks */
    const uint8_t *w = vw, *x = vx;
    _Alignas(64) uint8_t lv[GKC * GR];
    _Alignas(64) float sc[16 * GR], mn[16 * GR];
    int32_t xc[GTC * 16];
    float xd[GTC * 16], xm[GTC * 16];
    for (int64_t kc0 = 0; kc0 < n; kc0 += kc) {
        const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc), ns = kcn / g.sb;
        const size_t wo = (size_t)(kc0 / g.wbe) * g.wbb, xo = (size_t)(kc0 / g.xbe) * g.xbb;
        const size_t cb = (size_t)(kcn / g.wbe) * g.wbb; /* bytes of a row's chunk */
        for (int64_t t0 = 0; t0 < nt; t0 += GTC) {
            const int tn = (int)(nt - t0 < GTC ? nt - t0 : GTC);
            const uint8_t *xt0 = x + (size_t)t0 * x_stride;
            for (int t = 0; t < tn; t++)
                gemm_prep(k, xt0 + (size_t)t * x_stride + xo, kcn, xc + t * ns, xd + t * ns,
                          xm + t * ns);
            for (int64_t r0 = 0; r0 < nr; r0 += GR) {
                const int rn = (int)(nr - r0 < GR ? nr - r0 : GR);
                const uint8_t *wp = w + (size_t)r0 * w_stride + wo;
                (kcn == kc ? load_full : load_any)(wp, w_stride, rn, kcn, lv, sc, mn);
                /* the next panel's rows of this chunk, while this one computes */
                const int64_t nn = nr - r0 - GR < GR ? nr - r0 - GR : GR;
                for (int64_t r = 0; r < nn; r++)
                    for (size_t b = 0; b < cb; b += 64)
                        _mm_prefetch((const char *)wp + (size_t)(GR + r) * w_stride + b,
                                     _MM_HINT_T0);
                tokens(ns, lv, sc, mn, xt0, x_stride, xo, tn, xc, xd, xm, y + t0 * ldy + r0, ldy,
                       rn, kc0 > 0);
            }
        }
    }
}

/* Each kind's code in a few separate functions rather than one: the
 * compiler's register dataflow grows faster than linearly with a function's
 * size, which made this file take minutes to compile under the sanitizers. */
#define NOINLINE static __attribute__((noinline))
#define GEMM_FN(name, kind)                                                                        \
    NOINLINE void load_full_##name(const uint8_t *w, size_t ws, int rn, int kcn, uint8_t *lv,      \
                                   float *sc, float *mn) {                                         \
        (void)kcn;                                                                                 \
        gemm_panel_load(kind, w, ws, rn, 16 * gemm_geom_of(kind).sb, lv, sc, mn);                  \
    }                                                                                              \
    NOINLINE void load_any_##name(const uint8_t *w, size_t ws, int rn, int kcn, uint8_t *lv,       \
                                  float *sc, float *mn) {                                          \
        gemm_panel_load(kind, w, ws, rn, kcn, lv, sc, mn);                                         \
    }                                                                                              \
    NOINLINE void tokens_##name(int ns, const uint8_t *lv, const float *sc, const float *mn,       \
                                const uint8_t *x, size_t xs, size_t xo, int tn, const int32_t *xc, \
                                const float *xd, const float *xm, float *y, int64_t ldy, int rn,   \
                                bool acc) {                                                        \
        gemm_panel_tokens(kind, ns, lv, sc, mn, x, xs, xo, tn, xc, xd, xm, y, ldy, rn, acc);       \
    }                                                                                              \
    NOINLINE void panels_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,    \
                                size_t xs, int64_t nt, float *y, int64_t ldy) {                    \
        gemm_body(kind, load_full_##name, load_any_##name, tokens_##name, n, w, ws, nr, x, xs, nt, \
                  y, ldy);                                                                         \
    }                                                                                              \
    AVX512_GEMM(name) {                                                                            \
        if (gemv_fits(kind, n, nt))                                                                \
            kern_avx512_gemv_##name(n, w, ws, nr, x, xs, nt, y, ldy);                              \
        else if (nt == 1) /* rows too long to prepare: vec_dot as it is */                         \
            for (int64_t r = 0; r < nr; r++)                                                       \
                kern_avx512_vec_dot_##name##_canon(n, y + r, (const uint8_t *)w + r * ws, x);      \
        else                                                                                       \
            panels_##name(n, w, ws, nr, x, xs, nt, y, ldy);                                        \
    }
GEMM_FN(q8_0, GK_Q8_0)
GEMM_FN(q4_0, GK_Q4_0)
GEMM_FN(q5_0, GK_Q5_0)
GEMM_FN(q4_K, GK_Q4_K)
GEMM_FN(q5_K, GK_Q5_K)
GEMM_FN(q6_K, GK_Q6_K)
GEMM_FN(iq4_nl, GK_IQ4_NL)
GEMM_FN(iq4_xs, GK_IQ4_XS)
