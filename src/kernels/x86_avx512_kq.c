/*
 * x86_avx512_kq.c - the K-quants on AVX-512: vec_dot of Q4_K, Q5_K, Q6_K
 * and IQ4_XS weights against Q8_K activations (64 elements per register, sub-block
 * scales applied as int16 with dpwssd to an int32 accumulator converted to
 * float once per 256 elements), with and without VNNI, and the Q8_K
 * activation quantizer (bit-identical to the scalar one). (The VNNI table
 * replaces these vec_dot with the canonical arithmetic of
 * x86_avx512_gemv.c, shared with their gemm.)
 */
#include "kernels/x86_avx512.h"

#include <stddef.h>

/* acc - dmin * sum_j min_j * (bsum[2j] + bsum[2j+1]), in 4 lanes. */
AI __m128 k4_mins_term(__m128i scmn, const int16_t *bsums, float dmin, __m128 acc) {
    const __m128i mins = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(scmn, scmn));
    const __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
    const __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    const __m128i prod = _mm_madd_epi16(mins, _mm_hadd_epi16(b0, b1));
    return _mm_fmadd_ps(_mm_set1_ps(-dmin), _mm_cvtepi32_ps(prod), acc);
}

/* Each int32 lane of v (holding a small signed value) as the int16 pair
 * (v, v), so that dpwssd multiplies both halves of a lane by it. */
AI __m512i pair16(__m512i v) {
    return _mm512_or_si512(_mm512_and_si512(v, _mm512_set1_epi32(0xFFFF)),
                           _mm512_slli_epi32(v, 16));
}

/* One Q4_K or Q5_K block against Q8_K: the int32 lanes of sum_j sc_j * q.x. */
AI __m512i k4_block(const uint8_t *qs, const uint8_t *qh, const int8_t *q8, __m128i scmn,
                    bool vnni) {
    const __m512i scw = pair16(_mm512_cvtepu8_epi32(scmn));
    const __m512i hb = qh ? _mm512_broadcast_i64x4(load256(qh)) : _mm512_setzero_si512();
    __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int j = 0; j < QK_K / 64; j++) {
        __m512i q = k4_levels64(qs + 32 * j);
        if (qh) { /* bit 2j of qh[l]: element 64j + l; bit 2j+1: 64j + 32 + l */
            const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * j))),
                                                   _mm256_set1_epi8((char)(2 << (2 * j))), 1);
            const __mmask64 hi = _mm512_test_epi8_mask(hb, sel);
            q = _mm512_mask_add_epi8(q, hi, q, _mm512_set1_epi8(16));
        }
        const __m512i p = _mm512_maddubs_epi16(q, load512(q8 + 64 * j));
        const int a = 2 * j, b = 2 * j + 1;
        const __m512i idx = _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
        sumi = dp_ww(sumi, p, _mm512_permutexvar_epi32(idx, scw), vnni);
    }
    return sumi;
}

/* Q4_K (q5 false) or Q5_K (q5: the fifth bits in qh) against Q8_K; the two
 * block layouts differ only by qh before qs. */
AI void vd_k45(bool q5, int64_t n, float *s, const void *vw, const void *vx, bool vnni) {
    const uint8_t *w = vw;
    const size_t bb = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qs = q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    const block_q8_K *x = vx;
    __m512 acc = _mm512_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *wb = w + (size_t)i * bb;
        const __m128i scmn = k4_scales_mins(wb + offsetof(block_q4_K, scales));
        const float dmin = f16_at(wb + offsetof(block_q4_K, dmin));
        accm = k4_mins_term(scmn, x[i].bsums, dmin * x[i].d, accm);
        const uint8_t *qh = q5 ? wb + offsetof(block_q5_K, qh) : NULL;
        const __m512i sumi = k4_block(wb + qs, qh, x[i].qs, scmn, vnni);
        const float d = f16_at(wb + offsetof(block_q4_K, d)) * x[i].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
    *s = _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(accm);
}
AI void vd_q4_K(int64_t n, float *s, const void *w, const void *x, bool vnni) {
    vd_k45(false, n, s, w, x, vnni);
}
AI void vd_q5_K(int64_t n, float *s, const void *w, const void *x, bool vnni) {
    vd_k45(true, n, s, w, x, vnni);
}

/* Q6_K: per 128 elements, ql[0..63] holds the low nibbles of elements 0..63
 * and the high nibbles of 64..127; qh[l] the 2-bit pairs of elements l,
 * l+32, l+64, l+96. Levels are stored +32; the offset comes off once per
 * block through the activations' 16-element sums. */
AI void vd_q6_K(int64_t n, float *s, const void *vw, const void *vx, bool vnni) {
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        const __m512i scw = pair16(_mm512_cvtepi8_epi32(sc8));
        const __m256i off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(x[i].bsums));
        __m512i sumi = _mm512_zextsi256_si512(
            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5)));
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m512i l = wload512(w[i].ql + 64 * half);
            const __m512i h = _mm512_broadcast_i64x4(load256(w[i].qh + 32 * half));
            const __m512i qlo = q6_levels64(l, h, false), qhi = q6_levels64(l, h, true);
            const int8_t *q8 = x[i].qs + 128 * half;
#pragma GCC unroll 2
            for (int k = 0; k < 2; k++) {
                const int b = 8 * half + 4 * k; /* scales b..b+3, 16 elements each */
                const __m512i idx =
                    _mm512_setr_epi32(b, b, b, b, b + 1, b + 1, b + 1, b + 1, b + 2, b + 2, b + 2,
                                      b + 2, b + 3, b + 3, b + 3, b + 3);
                const __m512i p = _mm512_maddubs_epi16(k ? qhi : qlo, load512(q8 + 64 * k));
                sumi = dp_ww(sumi, p, _mm512_permutexvar_epi32(idx, scw), vnni);
            }
        }
        const float d = f16_at(&w[i].d) * x[i].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ---- activation quantizer ---- */

/* As the reference: the scale comes from the first element of largest
 * magnitude, with its sign; an all-zero block is all zeros. */
void kern_avx512_from_float_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < QK_K; k += 16)
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
        const float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m512 am = _mm512_set1_ps(amax);
        int first = 0;
        for (int k = 0; k < QK_K; k += 16) {
            const __mmask16 hit =
                _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + k)), am, _CMP_EQ_OQ);
            if (hit) {
                first = k + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = -127.f / x[first];
        for (int k = 0; k < QK_K; k += 16) {
            const __m512i iv = quant16(_mm512_loadu_ps(x + k), iscale, y[i].qs + k);
            y[i].bsums[k / 16] = (int16_t)_mm512_reduce_add_epi32(iv);
        }
        y[i].d = 1 / iscale;
    }
}

/* IQ4_XS: per 64 elements (two sub-blocks) the signed codebook levels in
 * element order against the activations (signs moved onto them), the int16
 * pair sums times the sub-blocks' ls - 32 added by dpwssd (as k4_block),
 * summed over the block and converted once. The pair sums fit int16:
 * |level| <= 127, |x| <= 127. */
AI void vd_iq4_xs(int64_t n, float *s, const void *vw, const void *vx, bool vnni) {
    const block_iq4_xs *w = vw;
    const block_q8_K *x = vx;
    const __m512i lut = iq4_lut(false);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m512i scw = pair16(_mm512_zextsi256_si512(iq4_xs_scales8((const uint8_t *)&w[i])));
        __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m512i lev = _mm512_shuffle_epi8(lut, iq4_xs_idx64(w[i].qs + 32 * j));
            const __m512i xb = load512(x[i].qs + 64 * j);
            const __m512i sx =
                _mm512_mask_sub_epi8(xb, _mm512_movepi8_mask(lev), _mm512_setzero_si512(), xb);
            const __m512i p = _mm512_maddubs_epi16(_mm512_abs_epi8(lev), sx);
            const __m512i idx = _mm512_setr_epi32(2 * j, 2 * j, 2 * j, 2 * j, 2 * j, 2 * j, 2 * j,
                                                  2 * j, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1,
                                                  2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1);
            sumi = dp_ww(sumi, p, _mm512_permutexvar_epi32(idx, scw), vnni);
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(f16_at(&w[i].d) * x[i].d), _mm512_cvtepi32_ps(sumi),
                              acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ---- instantiation: with VNNI and without ---- */

#define VD_KQUANT(name, body)                                                                      \
    void kern_avx512_vec_dot_##name##_vnni(int64_t n, float *s, const void *w, const void *x) {    \
        body(n, s, w, x, true);                                                                    \
    }                                                                                              \
    void kern_avx512_vec_dot_##name##_plain(int64_t n, float *s, const void *w, const void *x) {   \
        body(n, s, w, x, false);                                                                   \
    }

VD_KQUANT(q4_K, vd_q4_K)
VD_KQUANT(q5_K, vd_q5_K)
VD_KQUANT(q6_K, vd_q6_K)
VD_KQUANT(iq4_xs, vd_iq4_xs)
