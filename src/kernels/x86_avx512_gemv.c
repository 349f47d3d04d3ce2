/*
 * x86_avx512_gemv.c - the canonical VNNI arithmetic of the integer formats
 * (x86_avx512.h) one row at a time: the VNNI table's vec_dot of Q8_0, Q4_0,
 * Q5_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, and their products of one to four tokens
 * (rows in address order, each row's levels unpacked once for all the tokens, the activations
 * prepared once), which x86_avx512_gemm.c calls where they fit. A row chunk's 16 sub-blocks sit in
 * the 16 lanes of a vector, so the tree is four shuffle-adds and the row is read once, in order.
 */
#include "kernels/x86_avx512.h"

/* Per 128-bit lane: a0 + a1, a2 + a3, b0 + b1, b2 + b3 (int32). */
AI __m512i iadd_pairs(__m512i a, __m512i b) {
    const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
    return _mm512_add_epi32(
        _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0))),
        _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1))));
}

/* 128-bit lanes a0 + a1, a2 + a3, b0 + b1, b2 + b3. */
AI __m512i iadd_halves(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Activations 64q..64q+63 of a chunk (from a block start). */
AI __m512i vd_x64(gemm_kind k, const uint8_t *x, int q, bool two) {
    if (gemm_geom_of(k).xbe == 32) {
        const uint8_t *b = x + (size_t)q * 68;
        return load2x32(b + 2, two ? b + 36 : NULL);
    }
    return load512(x + (size_t)(q / 4) * 292 + 4 + 64 * (q % 4));
}

/* 4 x 16 partial sums whose 128-bit lane L of p[q] belongs to sub-block
 * 4q + L, as one vector of 16 sub-block sums (lane s = sub-block s). */
AI __m512i quad_reduce(const __m512i *p) {
    const __m512i c = iadd_pairs(iadd_pairs(p[0], p[1]), iadd_pairs(p[2], p[3]));
    return _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), c);
}

/* The int32 partial sums of 8 segments (4 for 16-element sub-blocks) as
 * one vector of 16 sub-block sums, lane s = sub-block s. */
AI __m512i vd_reduce(gemm_kind k, const __m512i *p) {
    if (gemm_geom_of(k).sb == 32) {
        const __m512i c0 = iadd_pairs(iadd_pairs(p[0], p[1]), iadd_pairs(p[2], p[3]));
        const __m512i c1 = iadd_pairs(iadd_pairs(p[4], p[5]), iadd_pairs(p[6], p[7]));
        return _mm512_permutexvar_epi32(
            _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15),
            iadd_halves(c0, c1));
    }
    return quad_reduce(p);
}

/* The 16 bytes at p + off of each of nb <= 4 blocks `stride` apart, in
 * 128-bit lane b (zero past nb). */
AI __m512i quad16(const uint8_t *p, int stride, int off, int nb) {
    __m512i v = _mm512_zextsi128_si512(nb > 0 ? _mm_loadu_si128((const __m128i *)(p + off))
                                              : _mm_setzero_si128());
    if (nb > 1) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + stride + off)), 1);
    if (nb > 2)
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * stride + off)), 2);
    if (nb > 3)
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 3 * stride + off)), 3);
    return v;
}

/* Q4_0, IQ4_NL and Q5_0 rows go four blocks at a time: the low nibbles (elements 0..15) of
 * four blocks in one vector, the high ones in another, and the activations
 * rearranged to match once per chunk (a sub-block's sum does not depend on
 * the order of its terms). */
AI bool nibble_quads(gemm_kind k) { return k == GK_Q4_0 || k == GK_IQ4_NL || k == GK_Q5_0; }

/* Which 16-bit words of a window of four blocks (18 bytes: Q4_0, IQ4_NL;
 * 22: Q5_0) a nibble quad needs (this table has no vpermt2b, but every field
 * starts at an even offset): word m of the quants is word m % 8 of block
 * m / 8's; for Q5_0, words 0..3 of the fifth bits are the low halves of the
 * four blocks' qh (elements 0..15), words 4..7 their high halves. */
#define QS_WORD(bw, qw, m) ((m) / 8 * (bw) + (qw) + (m) % 8)
#define QS_ROW8(bw, qw, m)                                                                         \
    QS_WORD(bw, qw, m), QS_WORD(bw, qw, (m) + 1), QS_WORD(bw, qw, (m) + 2),                        \
        QS_WORD(bw, qw, (m) + 3), QS_WORD(bw, qw, (m) + 4), QS_WORD(bw, qw, (m) + 5),              \
        QS_WORD(bw, qw, (m) + 6), QS_WORD(bw, qw, (m) + 7)
#define QS_IDX(bw, qw)                                                                             \
    { QS_ROW8(bw, qw, 0), QS_ROW8(bw, qw, 8), QS_ROW8(bw, qw, 16), QS_ROW8(bw, qw, 24) }
static const _Alignas(64) uint16_t q4_qs_idx[32] = QS_IDX(9, 1);
static const _Alignas(64) uint16_t q5_qs_idx[32] = QS_IDX(11, 3);
static const _Alignas(64) uint16_t q5_qh_idx[32] = {1, 12, 23, 34, 2, 13, 24, 35};

/* The levels of nb <= 4 blocks in nibble quads' order: the nb blocks come
 * in (at most) two loads, the masked one reading nothing past the last
 * block, and vpermt2w picks out the quants (and Q5_0's qh halves, which
 * become the two 64-bit masks of fifth bits). */
AI void nibble_quad(gemm_kind k, const uint8_t *w, int nb, __m512i *lo, __m512i *hi) {
    const int avail = nb * gemm_geom_of(k).wbb;
    const __m512i a = load_lim(w, 0, avail, avail >= 64, true);
    const __m512i b = load_lim(w, 64, avail, false, true);
    const __m512i qs =
        _mm512_permutex2var_epi16(a, load512(k == GK_Q5_0 ? q5_qs_idx : q4_qs_idx), b);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i l0 = _mm512_and_si512(qs, m4), l1 = _mm512_and_si512(_mm512_srli_epi16(qs, 4), m4);
    if (k == GK_Q5_0) {
        const __m128i qh =
            _mm512_castsi512_si128(_mm512_permutex2var_epi16(a, load512(q5_qh_idx), b));
        const __m512i sixteen = _mm512_set1_epi8(16);
        l0 = _mm512_mask_add_epi8(l0, _cvtu64_mask64((uint64_t)_mm_cvtsi128_si64(qh)), l0, sixteen);
        l1 = _mm512_mask_add_epi8(l1, _cvtu64_mask64((uint64_t)_mm_extract_epi64(qh, 1)), l1,
                                  sixteen);
    }
    if (k == GK_IQ4_NL) { /* the codebook, plus 128 */
        l0 = _mm512_shuffle_epi8(iq4_lut(true), l0);
        l1 = _mm512_shuffle_epi8(iq4_lut(true), l1);
    }
    *lo = l0;
    *hi = l1;
}

/* What a chunk of one token contributes to every row's sums: its activation
 * segments, -offset * sum x per sub-block (int32), d_x and d_x * sum x
 * (lanes = sub-blocks; the same values gemm_prep gives). */
typedef struct {
    __m512i xv[8];
    __m512i corr;
    __m512 xd, xm;
} vd_xchunk;

AI void vd_xprep(gemm_kind k, const uint8_t *x, int kcn, vd_xchunk *o) {
    const gemm_geom g = gemm_geom_of(k);
    const int ns = kcn / g.sb, nseg = (kcn + 63) / 64;
    o->xm = _mm512_setzero_ps();
    __m512i sum;
    if (nibble_quads(k)) { /* xv[2Q], xv[2Q + 1]: elements 0..15, 16..31 of blocks 4Q.. */
        __m512i p[4];
        for (int q = 0; q < 4; q++) {
            const int nb = ns - 4 * q < 0 ? 0 : ns - 4 * q > 4 ? 4 : ns - 4 * q;
            o->xv[2 * q] = quad16(x + (size_t)q * 4 * 34, 34, 2, nb);
            o->xv[2 * q + 1] = quad16(x + (size_t)q * 4 * 34, 34, 18, nb);
            const __m512i one = _mm512_set1_epi8(1);
            p[q] =
                _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), one, o->xv[2 * q]),
                                    one, o->xv[2 * q + 1]);
        }
        sum = quad_reduce(p);
        o->xd = block_d16(x, 34, ns);
        o->corr = _mm512_mullo_epi32(sum, _mm512_set1_epi32(-g.off));
        return;
    }
    for (int q = 0; q < 8; q++)
        o->xv[q] = q < nseg ? vd_x64(k, x, q, 64 * q + 64 <= kcn) : _mm512_setzero_si512();
    if (g.xbe == 32) {
        __m512i p[8];
        for (int q = 0; q < 8; q++)
            p[q] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), o->xv[q]);
        sum = vd_reduce(k, p);
        o->xd = block_d16(x, 34, ns);
    } else if (g.sb == 16) { /* Q8_K bsums are the sums of 16 */
        sum = _mm512_cvtepi16_epi32(load256(x + 260));
        float d;
        memcpy(&d, x, sizeof d);
        o->xd = _mm512_set1_ps(d);
        if (g.off == 0) o->xm = _mm512_mul_ps(o->xd, _mm512_cvtepi32_ps(sum));
    } else {
        __m256i s2[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        __m256 d2[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int b = 0; b < ns / 8; b++) {
            const uint8_t *xb = x + (size_t)b * 292;
            s2[b] = _mm256_madd_epi16(load256(xb + 260), _mm256_set1_epi16(1));
            float d;
            memcpy(&d, xb, sizeof d);
            d2[b] = _mm256_set1_ps(d);
        }
        sum = _mm512_inserti64x4(_mm512_castsi256_si512(s2[0]), s2[1], 1);
        o->xd = _mm512_insertf32x8(_mm512_castps256_ps512(d2[0]), d2[1], 1);
        o->xm = _mm512_mul_ps(o->xd, _mm512_cvtepi32_ps(sum));
    }
    o->corr = _mm512_mullo_epi32(sum, _mm512_set1_epi32(-g.off));
}

/* One row chunk against nt <= GV_MAXT prepared activation chunks (the row's
 * levels and scales unpacked once): each token's 16 P_s (lanes =
 * sub-blocks, +0 past ns), as gemm_leaf computes them. */
AI void vd_chunk_mt(gemm_kind k, const uint8_t *w, const vd_xchunk *const *xps, const int nt,
                    int kcn, __m512 *out) {
    const gemm_geom g = gemm_geom_of(k);
    const int ns = kcn / g.sb, nseg = (kcn + 63) / 64;
    __m512i lev[8]; /* nibble quads: low, high nibbles of 4 blocks per pair */
    if (nibble_quads(k)) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            const int nb = ns - 4 * q < 0 ? 0 : ns - 4 * q > 4 ? 4 : ns - 4 * q;
            nibble_quad(k, w + (size_t)q * 4 * g.wbb, nb, &lev[2 * q], &lev[2 * q + 1]);
        }
    } else {
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++)
            lev[q] = q < nseg ? vd_levels64(k, w, q, 64 * q + 64 <= kcn) : _mm512_setzero_si512();
    }
    __m512 sc, mn;
    vd_scales(k, w, ns, &sc, &mn);
    const __mmask16 live = (__mmask16)(ns >= 16 ? 0xFFFFu : (1u << ns) - 1u);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        const vd_xchunk *xp = xps[t];
        __m512i p[8], is;
        if (nibble_quads(k)) {
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                p[q] = _mm512_dpbusd_epi32(
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), lev[2 * q], xp->xv[2 * q]),
                    lev[2 * q + 1], xp->xv[2 * q + 1]);
            is = _mm512_add_epi32(quad_reduce(p), xp->corr);
        } else {
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++)
                p[q] = q < nseg ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), lev[q], xp->xv[q])
                                : _mm512_setzero_si512();
            is = _mm512_add_epi32(vd_reduce(k, p), xp->corr);
        }
        __m512 ps = _mm512_mul_ps(_mm512_mul_ps(sc, xp->xd), _mm512_cvtepi32_ps(is));
        if (g.off == 0) ps = _mm512_fmadd_ps(mn, xp->xm, ps);
        out[t] = _mm512_maskz_mov_ps(live, ps);
    }
}

AI __m512 vd_chunk(gemm_kind k, const uint8_t *w, const vd_xchunk *xp, int kcn) {
    __m512 out;
    vd_chunk_mt(k, w, &xp, 1, kcn, &out);
    return out;
}

/* The pairwise tree over 16 lanes: pairs, then quads, octets, the two halves. */
AI float tree_sum16(__m512 v) {
    v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtss_f32(v) + _mm_cvtss_f32(_mm512_extractf32x4_ps(v, 2));
}

/* One chunk of a row: whole chunks and the common partial ones (rows of
 * 576, 896, 4864 elements...) with their sizes as constants (unrolled, no
 * tail tests), others at run time. */
AI float vd_chunk_sum(gemm_kind k, const uint8_t *w, const vd_xchunk *xp, int kcn, int kc) {
    (void)kc; /* one copy: kern_matmul goes through gemv_rows, which has the fast ones */
    return tree_sum16(vd_chunk(k, w, xp, kcn));
}

AI void vd_canon(gemm_kind k, int64_t n, float *s, const void *vw, const void *vx) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb;
    const uint8_t *w = vw, *x = vx;
    float sum = 0.0f;
    for (int64_t kc0 = 0; kc0 < n; kc0 += kc) {
        const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc);
        vd_xchunk xp;
        vd_xprep(k, x + (size_t)(kc0 / g.xbe) * g.xbb, kcn, &xp);
        const float c = vd_chunk_sum(k, w + (size_t)(kc0 / g.wbe) * g.wbb, &xp, kcn, kc);
        sum = kc0 ? sum + c : c;
    }
    *s = sum;
}

/* vd_chunk_sum for nt tokens. */
AI void vd_chunk_sum_mt(gemm_kind k, const uint8_t *w, const vd_xchunk *const *xps, const int nt,
                        int kcn, int kc, float *out) {
    __m512 v[GV_MAXT];
    const bool blocks32 = gemm_geom_of(k).wbe == 32;
    if (kcn == kc) /* whole chunks with their sizes as constants */
        vd_chunk_mt(k, w, xps, nt, kc, v);
    else if (blocks32 && kcn == 64)        /* short tails too, or they cost a whole chunk: */
        vd_chunk_mt(k, w, xps, nt, 64, v); /* rows of 576 (SmolLM2-135M) */
    else if (blocks32 && kcn == 128)
        vd_chunk_mt(k, w, xps, nt, 128, v); /* 1152 (Gemma 3 1B) */
    else /* (other tails at run time: fewer copies of the code, which compiles slowly) */
        vd_chunk_mt(k, w, xps, nt, kcn, v);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) out[t] = tree_sum16(v[t]);
}

/* gemm of one to four tokens: vec_dot's code row after row (rows stream
 * from memory in address order, each row's levels and scales unpacked once
 * for all the tokens), the activation side prepared once. Its horizontal
 * sums cost per token what the panels' transposition (x86_avx512_gemm.c)
 * costs per row, but the panels read their rows less evenly: with the
 * weights coming from memory (any real model), 3 and 4 tokens cost 20-40 %
 * less here (bench_gemm_ntok 896 4864 ... 256: Q4_K 188/226 us against the
 * panels' 304/321), 5 and more cost more. */
/* How far ahead of the reads the weights are prefetched: the hardware
 * prefetcher alone does not keep up with memory in generation (the same
 * finding as x86_avx2_gemv.c; a prefetch never faults). Into L1, so not too
 * far: on Zen 4 (32 KiB L1d) 2 KiB ahead generated llama3.2-1b Q4_K_M 10 %
 * faster on one thread than 16 KiB (CPU time of `hearth bench`, alternating
 * runs), and 1 KiB and 4 KiB were between the two. */
enum { GV_PF_BYTES = 2048 };

AI void gemv_rows(gemm_kind k, const int nt, int64_t n, const uint8_t *w, size_t w_stride,
                  int64_t nr, const uint8_t *x, size_t x_stride, float *y, int64_t ldy,
                  vd_xchunk *xp) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb, nc = (int)((n + kc - 1) / kc);
    for (int t = 0; t < nt; t++)
        for (int c = 0; c < nc; c++) {
            const int64_t kc0 = (int64_t)c * kc;
            vd_xprep(k, x + (size_t)t * x_stride + (size_t)(kc0 / g.xbe) * g.xbb,
                     (int)(n - kc0 < kc ? n - kc0 : kc), &xp[t * nc + c]);
        }
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *wr = w + (size_t)r * w_stride;
        float sum[GV_MAXT] = {0};
        for (int c = 0; c < nc; c++) {
            const int64_t kc0 = (int64_t)c * kc;
            const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc);
            const vd_xchunk *xps[GV_MAXT];
            float v[GV_MAXT];
            for (int t = 0; t < nt; t++) xps[t] = &xp[t * nc + c];
            const uint8_t *wc = wr + (size_t)(kc0 / g.wbe) * g.wbb;
            const size_t cb = (size_t)((kcn + g.wbe - 1) / g.wbe) * g.wbb;
            for (size_t off = 0; off < cb; off += 64)
                _mm_prefetch((const char *)wc + off + GV_PF_BYTES, _MM_HINT_T0);
            vd_chunk_sum_mt(k, wc, xps, nt, kcn, kc, v);
#pragma GCC unroll 2
            for (int t = 0; t < nt; t++) sum[t] = c ? sum[t] + v[t] : v[t];
        }
        for (int t = 0; t < nt; t++) y[t * ldy + r] = sum[t];
    }
}

/* Each kind's code in a few separate functions rather than one: the
 * compiler's register dataflow grows faster than linearly with a function's
 * size, which made this file take minutes to compile under the sanitizers. */
#define NOINLINE static __attribute__((noinline))
#define GEMV_FN(name, kind)                                                                        \
    NOINLINE void gemv1_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,     \
                               float *y, int64_t ldy) {                                            \
        vd_xchunk xp[GV_MAXPREP];                                                                  \
        gemv_rows(kind, 1, n, w, ws, nr, x, 0, y, ldy, xp);                                        \
    }                                                                                              \
    NOINLINE void gemv2_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,     \
                               size_t xs, float *y, int64_t ldy) {                                 \
        vd_xchunk xp[GV_MAXPREP];                                                                  \
        gemv_rows(kind, 2, n, w, ws, nr, x, xs, y, ldy, xp);                                       \
    }                                                                                              \
    NOINLINE void gemvn_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,     \
                               size_t xs, int nt, float *y, int64_t ldy) {                         \
        vd_xchunk xp[GV_MAXPREP];                                                                  \
        if (nt == 3)                                                                               \
            gemv_rows(kind, 3, n, w, ws, nr, x, xs, y, ldy, xp);                                   \
        else /* 4: the caller checked gemv_fits */                                                 \
            gemv_rows(kind, 4, n, w, ws, nr, x, xs, y, ldy, xp);                                   \
    }                                                                                              \
    AVX512_VEC_DOT(name##_canon) { vd_canon(kind, n, s, w, x); }                                   \
    AVX512_GEMV(name) {                                                                            \
        if (nt == 1)                                                                               \
            gemv1_##name(n, w, ws, nr, x, y, ldy);                                                 \
        else if (nt == 2)                                                                          \
            gemv2_##name(n, w, ws, nr, x, xs, y, ldy);                                             \
        else                                                                                       \
            gemvn_##name(n, w, ws, nr, x, xs, (int)nt, y, ldy);                                    \
    }
GEMV_FN(q8_0, GK_Q8_0)
GEMV_FN(q4_0, GK_Q4_0)
GEMV_FN(q5_0, GK_Q5_0)
GEMV_FN(q4_K, GK_Q4_K)
GEMV_FN(q5_K, GK_Q5_K)
GEMV_FN(q6_K, GK_Q6_K)
GEMV_FN(iq4_nl, GK_IQ4_NL)
GEMV_FN(iq4_xs, GK_IQ4_XS)
GEMV_FN(q2_K, GK_Q2_K)
GEMV_FN(q3_K, GK_Q3_K)
