/*
 * x86_avx2_gemv.c - one token against many rows (generation) for the
 * 32-element block formats Q4_0, Q5_0, Q8_0 and IQ4_NL: the gemm of x86_avx2.c for
 * n_tok = 1, with the bits of its vec_dot.
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
 * Sums of 4 products stay within int16 before the vpmaddwd: |u| <= 31,
 * |x| <= 127. (IQ4_NL, whose levels reach 127, keeps vec_dot's sign moves
 * and widens pairs, x86_avx2.h, but takes its activations from the same
 * once-per-product layout.)
 */
#include "kernels/x86_avx2.h"

typedef enum { GV_Q4_0, GV_Q5_0, GV_Q8_0, GV_IQ4_NL } gv_kind;

/* GV_PF_BYTES: how far ahead the rows are prefetched (see gv_run). */
enum { GV_MAX_BLOCKS = KERN_AVX2_GEMV_MAX / QK8_0, GV_PF_BYTES = 16384 };

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

/* The int32 sums of the pair of blocks at b (the second only when `two`):
 * Q8_0 (activations xb) in the pair layout, Q4_0/Q5_0/IQ4_NL (prepared
 * activations xp) in the nibble layout. */
AI __m256i gv_pair(gv_kind k, const uint8_t *b, bool two, const nl_xpair *xp, const uint8_t *xb) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (k == GV_Q8_0) {
        const size_t bs = sizeof(block_q8_0);
        const __m256i w0 = load256(b + 2);
        const __m256i p0 = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(load256(xb + 2), w0)),
            ones);
        __m256i p1 = _mm256_setzero_si256();
        if (two) {
            const __m256i w1 = load256(b + bs + 2);
            p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w1, w1),
                                                        _mm256_sign_epi8(load256(xb + bs + 2), w1)),
                                   ones);
        }
        return _mm256_hadd_epi32(p0, p1);
    }
    __m256i lo, hi;
    if (k == GV_IQ4_NL) { /* signed levels: the signs move, as in vec_dot */
        iq4nl_levels(b, two, &lo, &hi);
        return iq4nl_dot(lo, hi, xp->lo, xp->hi);
    }
    nl_levels(k == GV_Q5_0, b, two, &lo, &hi);
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

/* The row at w against the prepared token, into *y; the bytes pf further on
 * are prefetched as the row is read. */
AI void gv_row(gv_kind k, int64_t nb, const uint8_t *w, size_t pf, const float *xd,
               const nl_xpair *xp, const uint8_t *x, float *y) {
    const size_t bs = gv_bsize(k), xs = sizeof(block_q8_0);
    __m256 acc = _mm256_setzero_ps();
    /* xq: the pair of block i, stepped rather than indexed (the compiler
     * recomputed i / 2 * sizeof(nl_xpair) for every pair) */
    const nl_xpair *xq = xp;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4, xq += 2) {
        /* every line of these 4 blocks (72 to 136 bytes) pf bytes on */
        const char *ahead = (const char *)w + i * bs + pf;
        _mm_prefetch(ahead, _MM_HINT_T0);
        _mm_prefetch(ahead + 64, _MM_HINT_T0);
        if (4 * bs > 128) _mm_prefetch(ahead + 4 * bs - 1, _MM_HINT_T0);
        const __m256 sc = _mm256_mul_ps(gv_scales4(w + i * bs, bs),
                                        _mm256_broadcast_ps((const __m128 *)(xd + i)));
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++) {
            const int64_t j = i + 2 * q;
            const __m256i p = gv_pair(k, w + j * bs, true, xq + q, x + j * xs);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                  _mm256_permutevar8x32_ps(sc, gv_spread(k, q)), acc);
        }
    }
    for (; i < nb; i += 2, xq++) {
        const bool two = i + 1 < nb;
        const uint8_t *b = w + i * bs;
        const float pa = f16_at((const kern_f16 *)b) * xd[i];
        const float pb = two ? f16_at((const kern_f16 *)(b + bs)) * xd[i + 1] : 0.0f;
        const __m256 sc = k == GV_Q8_0 ? _mm256_setr_ps(pa, pa, pb, pb, pa, pa, pb, pb)
                                       : _mm256_setr_ps(pa, pa, pa, pa, pb, pb, pb, pb);
        const __m256i p = gv_pair(k, b, two, xq, x + i * xs);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, acc);
    }
    *y = hsum_ps(acc);
}

/* The rows go one after the other, each read while the bytes GV_PF_BYTES
 * on are prefetched: the hardware prefetcher alone does not keep up with
 * memory here (qwen2.5-0.5b Q4_0 generation on AVX2, 1 thread: 61 t/s
 * without, 66 prefetching the next row, 87 with 16 KiB). Reading 4 rows
 * side by side shared the activations' loads and made 4 independent
 * chains (8 % faster on weights in cache) but made 4 short streams, which
 * came out slower from memory (80-83 t/s against 87-91, and 105-109
 * against 123-125 with 2 threads).
 * Prefetches past the weight never fault. */
AI bool gv_run(gv_kind k, int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
               float *y) {
    if (n > KERN_AVX2_GEMV_MAX) return false;
    const int64_t nb = n / QK8_0;
    float xd[GV_MAX_BLOCKS];
    nl_xpair xp[GV_MAX_BLOCKS / 2];
    gv_prep(nb, x, xd, k == GV_Q8_0 ? NULL : xp, k == GV_Q4_0 ? 8 : k == GV_Q5_0 ? 16 : 0);
    const size_t pf = (GV_PF_BYTES / ws + 1) * ws;
    for (int64_t r = 0; r < nr; r++) gv_row(k, nb, w + (size_t)r * ws, pf, xd, xp, x, y + r);
    return true;
}

bool kern_avx2_gemv_q4_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         float *y) {
    return gv_run(GV_Q4_0, n, w, ws, nr, x, y);
}
bool kern_avx2_gemv_q5_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         float *y) {
    return gv_run(GV_Q5_0, n, w, ws, nr, x, y);
}
bool kern_avx2_gemv_q8_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         float *y) {
    return gv_run(GV_Q8_0, n, w, ws, nr, x, y);
}
bool kern_avx2_gemv_iq4_nl(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                           float *y) {
    return gv_run(GV_IQ4_NL, n, w, ws, nr, x, y);
}
