/*
 * x86_avx512_gemm.c - the VNNI table's gemm for Q8_0, Q4_0, Q5_0, Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS: one to four tokens go row by row with vec_dot's code
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
 *
 * Weights packed at load (x86_avx512_pack.h) are already lane = row: the
 * same micro kernel reads them straight into registers for up to eight
 * tokens (pk_rows, in groups of four), and more tokens unpack them chunk by
 * chunk into the panel buffers, with no transposition.
 */
#include "kernels/x86_avx512_pack.h"

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

/* P_s of sub-block s for nt tokens, its levels and scales unpacked in
 * lv/sc/mn (pk NULL) or read from the packed chunk at pk. xt: each token's
 * activations at the chunk start; xc/xd/xm: their sums, ldp apart. */
AI void gemm_leaf(gemm_kind k, const int nt, int s, const uint8_t *lv, const float *sc,
                  const float *mn, const uint8_t *pk, const uint8_t *const *xt, const int32_t *xc,
                  const float *xd, const float *xm, int ldp, __m512 *ps) {
    const gemm_geom g = gemm_geom_of(k);
    const int e = s * g.sb, xo = (e / g.xbe) * g.xbb + g.xq + e % g.xbe;
    const int per = pk_unit_elems(k) / g.sb; /* sub-blocks per packed unit */
    const uint8_t *u = pk ? pk + (size_t)(s / per) * (size_t)pk_unit_bytes(k) : NULL;
    __m512i ai[GNT];
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) ai[t] = _mm512_set1_epi32(xc[t * ldp + s]);
#pragma GCC unroll 8
    for (int q = 0; q < g.sb / 4; q++) {
        const __m512i wv = u ? pk_level(k, u, s % per, q)
                             : _mm512_load_si512(lv + (size_t)(s * (g.sb / 4) + q) * 64);
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) ai[t] = dpbusd_b32(ai[t], wv, xt[t] + xo + 4 * q);
    }
    __m512 scv, mnv = _mm512_setzero_ps();
    if (u) {
        pk_scales(k, u, s % per, &scv, &mnv);
    } else {
        scv = _mm512_load_ps(sc + s * GR);
        if (g.off == 0) mnv = _mm512_load_ps(mn + s * GR);
    }
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        ps[t] = _mm512_mul_ps(_mm512_mul_ps(scv, _mm512_set1_ps(xd[t * ldp + s])),
                              _mm512_cvtepi32_ps(ai[t]));
        if (g.off == 0) ps[t] = _mm512_fmadd_ps(mnv, _mm512_set1_ps(xm[t * ldp + s]), ps[t]);
    }
}

/* One chunk of ns <= 16 sub-blocks for nt tokens (unpacked in lv/sc/mn, or
 * packed at pk): the pairwise tree of their P_s, added to y (accumulate) or
 * stored, rows 0..rn-1 of each token. */
AI void gemm_micro(gemm_kind k, const int nt, int ns, const uint8_t *lv, const float *sc,
                   const float *mn, const uint8_t *pk, const uint8_t *const *xt, const int32_t *xc,
                   const float *xd, const float *xm, int ldp, float *y, int64_t ldy, int rn,
                   bool accumulate) {
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
                if (s < ns) gemm_leaf(k, nt, s, lv, sc, mn, pk, xt, xc, xd, xm, ldp, pa);
                if (s + 1 < ns) gemm_leaf(k, nt, s + 1, lv, sc, mn, pk, xt, xc, xd, xm, ldp, pb);
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
    panel_levels(k, wr, kcn, false, lv);
    __m512i v[GR], m[GR];
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
            gemm_micro(k, 4, ns, lv, sc, mn, NULL, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
        else if (step == 3)
            gemm_micro(k, 3, ns, lv, sc, mn, NULL, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
        else if (step == 2)
            gemm_micro(k, 2, ns, lv, sc, mn, NULL, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
        else
            gemm_micro(k, 1, ns, lv, sc, mn, NULL, xt, c, dd, mm, ns, yt, ldy, rn, accumulate);
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
 * constant) or of any; tokens: gemm_panel_tokens (all of kind k). With
 * `packed`, w is pack's form (w_stride: bytes per panel) and the loads
 * unpack it. */
AI void gemm_body(gemm_kind k, panel_load_fn load_full, panel_load_fn load_any,
                  panel_tokens_fn tokens, int64_t n, const void *vw, size_t w_stride, int64_t nr,
                  const void *vx, size_t x_stride, int64_t nt, float *y, int64_t ldy, bool packed) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb; /* one chunk: 16 sub-blocks */
    const uint8_t *w = vw, *x = vx;
    _Alignas(64) uint8_t lv[GKC * GR];
    _Alignas(64) float sc[16 * GR], mn[16 * GR];
    int32_t xc[GTC * 16];
    float xd[GTC * 16], xm[GTC * 16];
    for (int64_t kc0 = 0; kc0 < n; kc0 += kc) {
        const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc), ns = kcn / g.sb;
        const size_t wo = packed ? (size_t)(kc0 / pk_unit_elems(k)) * (size_t)pk_unit_bytes(k)
                                 : (size_t)(kc0 / g.wbe) * g.wbb;
        const size_t xo = (size_t)(kc0 / g.xbe) * g.xbb;
        /* bytes of a row's (a panel's) chunk */
        const size_t cb =
            packed ? (size_t)((kcn + pk_unit_elems(k) - 1) / pk_unit_elems(k)) * pk_unit_bytes(k)
                   : (size_t)(kcn / g.wbe) * g.wbb;
        for (int64_t t0 = 0; t0 < nt; t0 += GTC) {
            const int tn = (int)(nt - t0 < GTC ? nt - t0 : GTC);
            const uint8_t *xt0 = x + (size_t)t0 * x_stride;
            for (int t = 0; t < tn; t++)
                gemm_prep(k, xt0 + (size_t)t * x_stride + xo, kcn, xc + t * ns, xd + t * ns,
                          xm + t * ns);
            for (int64_t r0 = 0; r0 < nr; r0 += GR) {
                const int rn = (int)(nr - r0 < GR ? nr - r0 : GR);
                const uint8_t *wp = w + (size_t)(packed ? r0 / GR : r0) * w_stride + wo;
                (kcn == kc ? load_full : load_any)(wp, w_stride, rn, kcn, lv, sc, mn);
                /* the next panel's rows of this chunk, while this one computes */
                const int64_t nn = nr - r0 - GR < GR ? nr - r0 - GR : GR;
                if (packed && nn > 0)
                    for (size_t b = 0; b < cb; b += 64)
                        _mm_prefetch((const char *)wp + w_stride + b, _MM_HINT_T0);
                for (int64_t r = 0; !packed && r < nn; r++)
                    for (size_t b = 0; b < cb; b += 64)
                        _mm_prefetch((const char *)wp + (size_t)(GR + r) * w_stride + b,
                                     _MM_HINT_T0);
                tokens(ns, lv, sc, mn, xt0, x_stride, xo, tn, xc, xd, xm, y + t0 * ldy + r0, ldy,
                       rn, kc0 > 0);
            }
        }
    }
}

/* A packed panel chunk (kcn elements) unpacked into lv/sc/mn as
 * gemm_panel_load lays them out. */
AI void pk_unpack(gemm_kind k, const uint8_t *pk, int kcn, uint8_t *lv, float *sc, float *mn) {
    const gemm_geom g = gemm_geom_of(k);
    const int per = pk_unit_elems(k) / g.sb;
    for (int s = 0; s < kcn / g.sb; s++) {
        const uint8_t *u = pk + (size_t)(s / per) * (size_t)pk_unit_bytes(k);
        __m512 a, b;
        pk_scales(k, u, s % per, &a, &b);
#pragma GCC unroll 8
        for (int q = 0; q < g.sb / 4; q++)
            _mm512_store_si512(lv + (size_t)(s * (g.sb / 4) + q) * 64, pk_level(k, u, s % per, q));
        _mm512_store_ps(sc + s * GR, a);
        if (g.off == 0) _mm512_store_ps(mn + s * GR, b);
    }
}

/* Sub-blocks of activation sums the packed rows path prepares at most (on
 * the stack: 12 bytes each); tokens it takes (in groups of GNT) before the
 * panels' unpacking, which reads the weights once for GTC tokens, wins. */
enum { PK_MAXS = 4096, PK_ROWS_MAXT = 8 };

AI bool pk_rows_fit(gemm_kind k, int64_t n, int64_t nt) {
    return nt <= GNT && nt * (n / gemm_geom_of(k).sb) <= PK_MAXS;
}

/* One to four tokens (generation) over packed panels: every token's sums
 * prepared once, then each panel read once, in address order, chunk by
 * chunk straight from its packed form into the registers. One stream, in
 * order: the hardware prefetcher keeps up with it alone, and software
 * prefetches only slowed it (llama3.2-1b Q4_K_M, one thread: 30 t/s
 * without, 25 with the chunk prefetched as it starts, 22 with 2 KiB ahead
 * as x86_avx512_gemv.c does; alternating runs). */
AI void pk_rows(gemm_kind k, const int nt, int64_t n, const uint8_t *w, size_t w_stride, int64_t nr,
                const uint8_t *x, size_t x_stride, float *y, int64_t ldy) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb, nsr = (int)(n / g.sb); /* sub-blocks per row */
    int32_t xc[PK_MAXS];
    float xd[PK_MAXS], xm[PK_MAXS];
    for (int t = 0; t < nt; t++)
        for (int64_t kc0 = 0; kc0 < n; kc0 += kc) {
            const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc), s0 = t * nsr + (int)(kc0 / g.sb);
            gemm_prep(k, x + (size_t)t * x_stride + (size_t)(kc0 / g.xbe) * g.xbb, kcn, xc + s0,
                      xd + s0, xm + s0);
        }
    const size_t chunk = (size_t)(kc / pk_unit_elems(k)) * (size_t)pk_unit_bytes(k);
    for (int64_t r0 = 0; r0 < nr; r0 += GR) {
        const int rn = (int)(nr - r0 < GR ? nr - r0 : GR);
        const uint8_t *pw = w + (size_t)(r0 / GR) * w_stride;
        for (int64_t kc0 = 0, c = 0; kc0 < n; kc0 += kc, c++) {
            const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc);
            const uint8_t *pk = pw + (size_t)c * chunk;
            const uint8_t *xt[GNT];
            for (int t = 0; t < nt; t++)
                xt[t] = x + (size_t)t * x_stride + (size_t)(kc0 / g.xbe) * g.xbb;
            const int s0 = (int)(kc0 / g.sb);
            gemm_micro(k, nt, kcn / g.sb, NULL, NULL, NULL, pk, xt, xc + s0, xd + s0, xm + s0, nsr,
                       y + r0, ldy, rn, kc0 > 0);
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
                  y, ldy, false);                                                                  \
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
GEMM_FN(q2_K, GK_Q2_K)
GEMM_FN(q3_K, GK_Q3_K)

/* The packed layout's gemm: pk_rows for one to four tokens, panels unpacked
 * chunk by chunk for more. */
#define GEMM_PACKED_FN(name, kind)                                                                 \
    NOINLINE void pkload_full_##name(const uint8_t *w, size_t ws, int rn, int kcn, uint8_t *lv,    \
                                     float *sc, float *mn) {                                       \
        (void)ws, (void)rn, (void)kcn;                                                             \
        pk_unpack(kind, w, 16 * gemm_geom_of(kind).sb, lv, sc, mn);                                \
    }                                                                                              \
    NOINLINE void pkload_any_##name(const uint8_t *w, size_t ws, int rn, int kcn, uint8_t *lv,     \
                                    float *sc, float *mn) {                                        \
        (void)ws, (void)rn;                                                                        \
        pk_unpack(kind, w, kcn, lv, sc, mn);                                                       \
    }                                                                                              \
    NOINLINE void pkrows_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,    \
                                size_t xs, int64_t nt, float *y, int64_t ldy) {                    \
        if (nt == 1)                                                                               \
            pk_rows(kind, 1, n, w, ws, nr, x, xs, y, ldy);                                         \
        else if (nt == 2)                                                                          \
            pk_rows(kind, 2, n, w, ws, nr, x, xs, y, ldy);                                         \
        else if (nt == 3)                                                                          \
            pk_rows(kind, 3, n, w, ws, nr, x, xs, y, ldy);                                         \
        else                                                                                       \
            pk_rows(kind, 4, n, w, ws, nr, x, xs, y, ldy);                                         \
    }                                                                                              \
    AVX512_GEMM(name##_packed) {                                                                   \
        if (nt <= PK_ROWS_MAXT && pk_rows_fit(kind, n, GNT))                                       \
            for (int64_t t = 0, g = (nt + GNT - 1) / GNT; t < nt; g--) {                           \
                const int64_t step = (nt - t + g - 1) / g; /* even groups of at most GNT */        \
                pkrows_##name(n, w, ws, nr, (const uint8_t *)x + t * xs, xs, step, y + t * ldy,    \
                              ldy);                                                                \
                t += step;                                                                         \
            }                                                                                      \
        else                                                                                       \
            gemm_body(kind, pkload_full_##name, pkload_any_##name, tokens_##name, n, w, ws, nr, x, \
                      xs, nt, y, ldy, true);                                                       \
    }
GEMM_PACKED_FN(q8_0, GK_Q8_0)
GEMM_PACKED_FN(q4_0, GK_Q4_0)
GEMM_PACKED_FN(q5_0, GK_Q5_0)
GEMM_PACKED_FN(q4_K, GK_Q4_K)
GEMM_PACKED_FN(q5_K, GK_Q5_K)
GEMM_PACKED_FN(q6_K, GK_Q6_K)
GEMM_PACKED_FN(iq4_nl, GK_IQ4_NL)
GEMM_PACKED_FN(iq4_xs, GK_IQ4_XS)
GEMM_PACKED_FN(q2_K, GK_Q2_K)
GEMM_PACKED_FN(q3_K, GK_Q3_K)
