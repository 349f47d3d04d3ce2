/*
 * x86_avx2.h - what the AVX2 kernel files (x86_avx2*.c, built with AVX2, FMA
 * and F16C) share; private to them. x86_avx2.c holds the table.
 */
#ifndef HEARTH_X86_AVX2_H
#define HEARTH_X86_AVX2_H

#include "kernels/blocks.h"
#include "kernels/kernels.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float f16_at(const kern_f16 *p) { return _cvtsh_ss(*p); }

AI __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* The first fp16 fields of 4 consecutive blocks (stride bytes apart) in
 * lanes 0..3, the second ones in 4..7, as floats. */
AI __m256 fields4(const uint8_t *p, size_t stride) {
    const __m128i p01 = _mm_unpacklo_epi16(_mm_loadu_si32(p), _mm_loadu_si32(p + stride));
    const __m128i p23 =
        _mm_unpacklo_epi16(_mm_loadu_si32(p + 2 * stride), _mm_loadu_si32(p + 3 * stride));
    return _mm256_cvtph_ps(_mm_unpacklo_epi32(p01, p23));
}

/* kern_attn_tile over an f32 or f16 cache (x86_avx2_attn.c): the contract of
 * kernels.h, for head sizes that are multiples of 16 up to KERN_ATTN_MAX_HD. */
void kern_avx2_attn_f32(const kern_attn_args *a);
void kern_avx2_attn_f16(const kern_attn_args *a);

/* One token against the nr rows of a Q4_0, Q5_0 or Q8_0 weight (rows ws
 * bytes apart; x: the token in Q8_0) for x86_avx2_gemv.c: y[r] gets the
 * bits the table's vec_dot gives row r. False, with nothing written, when
 * n is longer than its buffers (KERN_AVX2_GEMV_MAX); then the caller goes
 * row by row. */
#define KERN_AVX2_GEMV_MAX 16384
bool kern_avx2_gemv_q4_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         float *y);
bool kern_avx2_gemv_q5_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         float *y);
bool kern_avx2_gemv_q8_0(int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *x,
                         float *y);

#endif
