/*
 * x86_avx2_gemv.c - one to four tokens against many rows (generation,
 * speculative verification, a few busy slots) for the 32-element block
 * formats Q4_0, Q5_0, Q8_0 and IQ4_NL: the gemm of x86_avx2.c for n_tok <= 4
 * (and, in two passes, up to 8), with the bits of its vec_dot. Rows go in
 * address order, each read once for all the tokens (its levels unpacked
 * once), prefetched well ahead.
 *
 * vec_dot (bp_tile there) adds, for each pair of blocks in turn, one vector
 * of 8 int32 sums (Q8_0: pair layout, Q4_0/Q5_0: nibble layout) times the
 * blocks' scale products into one accumulator, and sums the 8 lanes at the
 * end. Each lane sees an exact integer and the same float operations in the
 * same order whatever route computed the integer, so this file computes the
 * same lanes more cheaply:
 *  - the activations are laid out once per product (gv_prep) as the
 *    nibble layout wants them, so that a Q4_0/Q5_0 pair needs no sign moves:
 *    the unsigned levels u of nl_levels go straight into vpmaddubsw and the
 *    offset (8 or 16 times the sum of the 8 activations of a lane, made once
 *    per product) is subtracted from the int32 sums: u*x - o*x is the
 *    signed level times x, the same integer;
 *  - the weight scales of 4 blocks are gathered in a general register,
 *    converted together and multiplied by the activations' (converted once
 *    per product) with one vmulps (the scales took 15 % of a Q4_0 row with
 *    vector gathers);
 *  - the weights are prefetched well ahead of the reads (gv_run).
 * Each token's lanes go through the same operations in the same order
 * whatever the number of tokens, so 2 to 4 tokens give each token's
 * one-token bits.
 * Sums of 4 products stay within int16 before the vpmaddwd: |u| <= 31,
 * |x| <= 127. (IQ4_NL, whose levels reach 127, keeps vec_dot's sign moves
 * and widens pairs, x86_avx2.h, but takes its activations from the same
 * once-per-product layout.)
 */
#include "kernels/x86_avx2.h"

typedef enum { GV_Q4_0, GV_Q5_0, GV_Q8_0, GV_IQ4_NL } gv_kind;

/* GV_PF_BYTES: how far ahead the rows are prefetched (see gv_run);
 * GV_PREP_PAIRS: the prepared pairs of all the tokens of a product (of
 * stack, 72 KiB: up to 4 tokens of rows of up to 12288, 3 of 16384). */
enum {
    GV_MAX_BLOCKS = KERN_AVX2_GEMV_MAX / QK8_0,
    GV_MAXT = KERN_AVX2_GEMV_MAXT,
    GV_PREP_PAIRS = 768,
    GV_PF_BYTES = 16384
};

AI size_t gv_bsize(gv_kind k) {
    return k == GV_Q4_0     ? sizeof(block_q4_0)
           : k == GV_Q5_0   ? sizeof(block_q5_0)
           : k == GV_IQ4_NL ? sizeof(block_iq4_nl)
                            : sizeof(block_q8_0);
}

/* The activation scales of the nb blocks at x as floats, and for Q4_0,
 * Q5_0 and IQ4_NL the pairs (xp != NULL; levels offset by `bias`, 0 for
 * IQ4_NL, which keeps its signed levels). A lone last block pairs with
 * zeros, as in vec_dot. */
static void gv_prep(int64_t nb, const uint8_t *x, float *xd, nl_xpair *xp, short bias) {
    const size_t xs = sizeof(block_q8_0);
    for (int64_t i = 0; i < nb; i++) xd[i] = f16_at((const kern_f16 *)(x + (size_t)i * xs));
    if (!xp) return;
    for (int64_t i = 0; i < nb; i += 2)
        xp[i / 2] = nl_xpair_make(x + (size_t)i * xs, i + 1 < nb, bias);
}

/* The levels of the pair of blocks at b (the second only when `two`, else
 * zeros), unpacked once for every token: Q8_0 the two blocks' quants, Q4_0
 * and Q5_0 the unsigned levels of nl_levels, IQ4_NL the signed ones of
 * iq4nl_levels, each in one vector per half. */
AI void gv_unpack(gv_kind k, const uint8_t *b, bool two, __m256i *lo, __m256i *hi) {
    if (k == GV_Q8_0) {
        *lo = load256(b + 2);
        *hi = two ? load256(b + sizeof(block_q8_0) + 2) : _mm256_setzero_si256();
    } else if (k == GV_IQ4_NL) {
        iq4nl_levels(b, two, lo, hi);
    } else {
        nl_levels(k == GV_Q5_0, b, two, lo, hi);
    }
}

/* The int32 sums of an unpacked pair and one token: Q8_0 (activations xb)
 * in the pair layout, Q4_0/Q5_0/IQ4_NL (prepared activations xp) in the
 * nibble layout. */
AI __m256i gv_dot(gv_kind k, __m256i lo, __m256i hi, bool two, const nl_xpair *xp,
                  const uint8_t *xb) {
    if (k == GV_Q8_0) {
        const __m256i ones = _mm256_set1_epi16(1);
        const __m256i p0 = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(lo, lo), _mm256_sign_epi8(load256(xb + 2), lo)),
            ones);
        const __m256i p1 =
            two ? _mm256_madd_epi16(_mm256_maddubs_epi16(
                                        _mm256_sign_epi8(hi, hi),
                                        _mm256_sign_epi8(load256(xb + sizeof(block_q8_0) + 2), hi)),
                                    ones)
                : _mm256_setzero_si256();
        return _mm256_hadd_epi32(p0, p1);
    }
    if (k == GV_IQ4_NL) return iq4nl_dot(lo, hi, xp->lo, xp->hi); /* signs move, as in vec_dot */
    return nl_xdot(lo, hi, xp);
}

/* Lane indices that spread the scale products of blocks 2q and 2q + 1 (in
 * lanes 2q, 2q + 1) over a pair's sums. */
AI __m256i gv_spread(gv_kind k, int q) {
    const int a = 2 * q, b = 2 * q + 1;
    return k == GV_Q8_0 ? _mm256_setr_epi32(a, a, b, b, a, a, b, b)
                        : _mm256_setr_epi32(a, a, a, a, b, b, b, b);
}

/* The first fp16 fields of 4 blocks stride bytes apart as floats (lanes
 * 0..3; 4..7 are 0): gathered in a general register, so that only the
 * conversion takes a vector instruction. */
AI __m256 gv_scales4(const uint8_t *p, size_t stride) {
    uint16_t h[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) memcpy(&h[k], p + k * stride, 2);
    const uint64_t v = h[0] | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 32 | (uint64_t)h[3] << 48;
    return _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)v)));
}

/* A product's tokens, prepared (gv_prep): for token t, its activation
 * scales xd[t], its pairs xp[t] (Q4_0, Q5_0, IQ4_NL) and its Q8_0 row x[t]. */
typedef struct {
    const float *xd[GV_MAXT];
    const nl_xpair *xp[GV_MAXT];
    const uint8_t *x[GV_MAXT];
} gv_tokens;

/* The row at w against T prepared tokens, into y[t * ldy]; the bytes pf
 * further on are prefetched as the row is read. Per token, the operations
 * of the one-token row whatever T. */
AI void gv_row(gv_kind k, const int T, int64_t nb, const uint8_t *w, size_t pf, const gv_tokens *tk,
               float *y, int64_t ldy) {
    const size_t bs = gv_bsize(k), xs = sizeof(block_q8_0);
    __m256 acc[GV_MAXT];
    /* xq: each token's pair of block i, stepped rather than indexed (the
     * compiler recomputed i / 2 * sizeof(nl_xpair) for every pair) */
    const nl_xpair *xq[GV_MAXT];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        acc[t] = _mm256_setzero_ps();
        xq[t] = tk->xp[t];
    }
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        /* every line of these 4 blocks (72 to 136 bytes) pf bytes on */
        const char *ahead = (const char *)w + i * bs + pf;
        _mm_prefetch(ahead, _MM_HINT_T0);
        _mm_prefetch(ahead + 64, _MM_HINT_T0);
        if (4 * bs > 128) _mm_prefetch(ahead + 4 * bs - 1, _MM_HINT_T0);
        const __m256 w4 = gv_scales4(w + i * bs, bs);
        __m256 sc[GV_MAXT];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            sc[t] = _mm256_mul_ps(w4, _mm256_broadcast_ps((const __m128 *)(tk->xd[t] + i)));
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++) {
            const int64_t j = i + 2 * q;
            __m256i lo, hi;
            gv_unpack(k, w + j * bs, true, &lo, &hi);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const __m256i p = gv_dot(k, lo, hi, true, xq[t] + q, tk->x[t] + j * xs);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                         _mm256_permutevar8x32_ps(sc[t], gv_spread(k, q)), acc[t]);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) xq[t] += 2;
    }
    for (; i < nb; i += 2) {
        const bool two = i + 1 < nb;
        const uint8_t *b = w + i * bs;
        const float wa = f16_at((const kern_f16 *)b);
        const float wb = two ? f16_at((const kern_f16 *)(b + bs)) : 0.0f;
        __m256i lo, hi;
        gv_unpack(k, b, two, &lo, &hi);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const float pa = wa * tk->xd[t][i];
            const float pb = two ? wb * tk->xd[t][i + 1] : 0.0f;
            const __m256 sc = k == GV_Q8_0 ? _mm256_setr_ps(pa, pa, pb, pb, pa, pa, pb, pb)
                                           : _mm256_setr_ps(pa, pa, pa, pa, pb, pb, pb, pb);
            const __m256i p = gv_dot(k, lo, hi, two, xq[t], tk->x[t] + i * xs);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, acc[t]);
            xq[t]++;
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) y[t * ldy] = hsum_ps(acc[t]);
}

/* The rows go one after the other, each read once for all the tokens while
 * the bytes GV_PF_BYTES on are prefetched: the hardware prefetcher alone
 * does not keep up with memory here (qwen2.5-0.5b Q4_0 generation on AVX2,
 * 1 thread: 61 t/s without, 66 prefetching the next row, 87 with 16 KiB).
 * Reading 4 rows side by side shared the activations' loads and made 4
 * independent chains (8 % faster on weights in cache) but made 4 short
 * streams, which came out slower from memory (80-83 t/s against 87-91, and
 * 105-109 against 123-125 with 2 threads). Several tokens cost less this
 * way than through x86_avx2.c's 4-token tiles (Q8_0, 896 x 4864 from
 * memory: 4 tokens 276 us against 436, prefetched too) or gemm_nl (Q4_0: 228
 * against 420, and 126 against 354 for 2 tokens: its column chunks are slow
 * on weights from memory, prefetched or not); bench/README.md.
 * Prefetches past the weight never fault. */
AI bool gv_run(gv_kind k, const int T, int64_t n, const uint8_t *w, size_t ws, int64_t nr,
               const uint8_t *x, size_t xs, float *y, int64_t ldy) {
    const int64_t nb = n / QK8_0, np = (nb + 1) / 2;
    if (n > KERN_AVX2_GEMV_MAX || (k != GV_Q8_0 && T * np > GV_PREP_PAIRS)) return false;
    float xd[GV_MAXT][GV_MAX_BLOCKS];
    nl_xpair xp[GV_PREP_PAIRS];
    gv_tokens tk;
    for (int t = 0; t < T; t++) {
        tk.x[t] = x + (size_t)t * xs;
        tk.xd[t] = xd[t];
        tk.xp[t] = xp + t * np;
        gv_prep(nb, tk.x[t], xd[t], k == GV_Q8_0 ? NULL : xp + t * np,
                k == GV_Q4_0   ? 8
                : k == GV_Q5_0 ? 16
                               : 0);
    }
    const size_t pf = (GV_PF_BYTES / ws + 1) * ws;
    for (int64_t r = 0; r < nr; r++) gv_row(k, T, nb, w + (size_t)r * ws, pf, &tk, y + r, ldy);
    return true;
}

/* One function per format, a constant token count in each branch. */
#define GV_FN(name, kind)                                                                          \
    bool kern_avx2_gemv_##name(int64_t n, const uint8_t *w, size_t ws, int64_t nr,                 \
                               const uint8_t *x, size_t xs, int64_t nt, float *y, int64_t ldy) {   \
        switch (nt) {                                                                              \
        case 1: return gv_run(kind, 1, n, w, ws, nr, x, xs, y, ldy);                               \
        case 2: return gv_run(kind, 2, n, w, ws, nr, x, xs, y, ldy);                               \
        case 3: return gv_run(kind, 3, n, w, ws, nr, x, xs, y, ldy);                               \
        case 4: return gv_run(kind, 4, n, w, ws, nr, x, xs, y, ldy);                               \
        default: return false;                                                                     \
        }                                                                                          \
    }
GV_FN(q4_0, GV_Q4_0)
GV_FN(q5_0, GV_Q5_0)
GV_FN(q8_0, GV_Q8_0)
GV_FN(iq4_nl, GV_IQ4_NL)
