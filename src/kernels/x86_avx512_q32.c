/*
 * x86_avx512_q32.c - the 32-element block formats on AVX-512: vec_dot of
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL weights against Q8_0/Q8_1 activations,
 * with vpdpbusd (the -vnni table) or vpmaddubsw + vpmaddwd (the plain one),
 * and the Q8_0/Q8_1 activation quantizers (bit-identical to the scalar
 * ones). (The VNNI table replaces Q4_0, Q5_0, Q8_0 and IQ4_NL's vec_dot with the
 * canonical arithmetic of x86_avx512_gemv.c, shared with their gemm.)
 */
#include "kernels/x86_avx512.h"

/* Four blocks per step. Their bytes are loaded as a few 64-byte vectors and
 * rearranged with vpermt2w (every field of these formats sits at an even
 * offset) into: the first 16 levels of each block in 128-bit lane b, the
 * last 16 in a second vector, the activations likewise, and the fp16 scales
 * of the four blocks side by side. One int32 vector then holds block b in
 * lane b, so a step costs one conversion and one FMA. The last, partial
 * step uses masked loads that read nothing past the rows; missing blocks
 * load as zeros, scales included, and add nothing. */

typedef enum { BK_Q4_0, BK_Q5_0, BK_Q4_1, BK_Q5_1, BK_Q8_0, BK_IQ4_NL } blk_kind;

/* Byte geometry of a weight block and its activation block. */
typedef struct {
    int sw, qo, ho, mo; /* weight block bytes; offsets of the quants, qh and m (-1: none) */
    int sx, xo, so;     /* activation block bytes; offsets of the quants and s (-1: none) */
    int off;            /* stored level offset (8 or 16), 0 for affine and Q8_0 */
} blk_geom;

AI blk_geom geom_of(blk_kind k) {
    switch (k) {
    case BK_Q4_0: return (blk_geom){18, 2, -1, -1, 34, 2, -1, 8};
    case BK_Q5_0: return (blk_geom){22, 6, 2, -1, 34, 2, -1, 16};
    case BK_Q4_1: return (blk_geom){20, 4, -1, 2, 36, 4, 2, 0};
    case BK_Q5_1: return (blk_geom){24, 8, 4, 2, 36, 4, 2, 0};
    case BK_IQ4_NL: return (blk_geom){18, 2, -1, -1, 34, 2, -1, 0};
    case BK_Q8_0: break;
    }
    return (blk_geom){34, 2, -1, -1, 34, 2, -1, 0};
}

/* vpermt2w index of the word at byte c, with the two sources loaded from
 * bytes b0 and b1; `len` bytes from c must lie in the first source, or else
 * in the second. */
AI int wsrc(int c, int b0, int b1, int len) {
    return c - b0 + len <= 64 ? (c - b0) / 2 : 32 + (c - b1) / 2;
}

/* Indices that put the 16 bytes at c + b * stride in 128-bit lane b. */
AI __m512i idx_chunks(int c, int stride, int b0, int b1) {
    int s[4];
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) s[b] = wsrc(c + b * stride, b0, b1, 16) * 0x10001;
    const __m512i base = _mm512_setr_epi32(s[0], s[0], s[0], s[0], s[1], s[1], s[1], s[1], s[2],
                                           s[2], s[2], s[2], s[3], s[3], s[3], s[3]);
    const __m512i step =
        _mm512_setr_epi32(0x10000, 0x30002, 0x50004, 0x70006, 0x10000, 0x30002, 0x50004, 0x70006,
                          0x10000, 0x30002, 0x50004, 0x70006, 0x10000, 0x30002, 0x50004, 0x70006);
    return _mm512_add_epi16(base, step);
}

/* Indices that put the words at ca + b * stride in words 0..3 and those at
 * cb + b * stride in words 4..7. */
AI __m512i idx_words(int ca, int cb, int stride, int b0, int b1) {
    int v[8];
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        v[b] = wsrc(ca + b * stride, b0, b1, 2);
        v[4 + b] = wsrc(cb + b * stride, b0, b1, 2);
    }
    return _mm512_setr_epi32(v[0] | v[1] << 16, v[2] | v[3] << 16, v[4] | v[5] << 16,
                             v[6] | v[7] << 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

#define PERM2W(a, idx, b) _mm512_permutex2var_epi16(a, idx, b)

/* Adds to acc (and the w.m * x.s terms to accm) the products of the four
 * blocks at w and x, of which only the first nblk exist unless `full`. */
AI void blk_step4(blk_kind k, const uint8_t *w, const uint8_t *x, int nblk, bool full, bool vnni,
                  __m512 *acc, __m128 *accm) {
    const blk_geom g = geom_of(k);
    const __m512i m4 = _mm512_set1_epi8(0x0F), z = _mm512_setzero_si512();
    const int xl = nblk * g.sx, x2 = 4 * g.sx - 128, x3 = 4 * g.sx - 64;
    const __m512i lx0 = load_lim(x, 0, xl, full, false), lx1 = load_lim(x, 64, xl, full, false);
    const __m512i lx2 = load_lim(x, x2, xl, full, false), lx3 = load_lim(x, x3, xl, full, false);
    const __m512i xlo = PERM2W(lx0, idx_chunks(g.xo, g.sx, 0, 64), lx1);
    const __m512i xhi = PERM2W(lx2, idx_chunks(g.xo + 16, g.sx, x2, x3), lx3);
    const __m512i xsc = PERM2W(lx0, idx_words(0, g.so >= 0 ? g.so : 0, g.sx, 0, 64), lx1);
    const int wl = nblk * g.sw;
    __m512i wsc, p;
    if (k == BK_Q8_0) { /* weights laid out as the activations */
        const __m512i lw0 = load_lim(w, 0, wl, full, true), lw1 = load_lim(w, 64, wl, full, true);
        const __m512i lw2 = load_lim(w, x2, wl, full, true), lw3 = load_lim(w, x3, wl, full, true);
        wsc = PERM2W(lw0, idx_words(0, 0, g.sw, 0, 64), lw1);
        p = dot_ss(PERM2W(lw0, idx_chunks(g.qo, g.sw, 0, 64), lw1), xlo, vnni);
        p = _mm512_add_epi32(
            p, dot_ss(PERM2W(lw2, idx_chunks(g.qo + 16, g.sw, x2, x3), lw3), xhi, vnni));
    } else {
        const int w1 = 4 * g.sw - 64;
        const __m512i lw0 = load_lim(w, 0, wl, full, true), lw1 = load_lim(w, w1, wl, full, true);
        wsc = PERM2W(lw0, idx_words(0, g.mo >= 0 ? g.mo : 0, g.sw, 0, w1), lw1);
        const __m512i q = PERM2W(lw0, idx_chunks(g.qo, g.sw, 0, w1), lw1);
        __m512i lo = _mm512_and_si512(q, m4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        if (g.ho >= 0) { /* bit j of qh: +16 on level j (0..15 lo, 16..31 hi) */
            const __m128i h =
                _mm512_castsi512_si128(PERM2W(lw0, idx_words(g.ho, g.ho + 2, g.sw, 0, w1), lw1));
            const __m512i sixteen = _mm512_set1_epi8(16);
            lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64((uint64_t)_mm_cvtsi128_si64(h)), lo,
                                      sixteen);
            hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64((uint64_t)_mm_extract_epi64(h, 1)), hi,
                                      sixteen);
        }
        if (k == BK_IQ4_NL) { /* signed codebook levels: the signs move onto x */
            lo = _mm512_shuffle_epi8(iq4_lut(false), lo);
            hi = _mm512_shuffle_epi8(iq4_lut(false), hi);
            p = _mm512_add_epi32(dot_ss(lo, xlo, vnni), dot_ss(hi, xhi, vnni));
        } else if (g.off && vnni) {
            const __m512i o = _mm512_set1_epi8((char)g.off);
            const __m512i qx = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, lo, xlo), hi, xhi);
            p = _mm512_sub_epi32(qx, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, o, xlo), o, xhi));
        } else if (g.off) { /* |pair sums| <= 2*(2*31*127) + 4*16*127 < 2^15 */
            const __m512i o = _mm512_set1_epi8((char)g.off);
            const __m512i qx =
                _mm512_add_epi16(_mm512_maddubs_epi16(lo, xlo), _mm512_maddubs_epi16(hi, xhi));
            const __m512i ox =
                _mm512_add_epi16(_mm512_maddubs_epi16(o, xlo), _mm512_maddubs_epi16(o, xhi));
            p = _mm512_madd_epi16(_mm512_sub_epi16(qx, ox), _mm512_set1_epi16(1));
        } else {
            p = dp_us(dp_us(z, lo, xlo, vnni), hi, xhi, vnni);
        }
    }
    const __m256 prod = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(wsc)),
                                      _mm256_cvtph_ps(_mm512_castsi512_si128(xsc)));
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512 d = _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(prod));
    *acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), *acc);
    if (g.mo >= 0) *accm = _mm_add_ps(*accm, _mm256_extractf128_ps(prod, 1));
}

/* Q8_0 weights need no rearranging: two blocks per vector as they lie, with
 * the scales of the two halves spread over 8 lanes each. */
AI void q8_0_step4(const uint8_t *w, const uint8_t *x, bool vnni, __m512 *acc0, __m512 *acc1) {
    const __m512i wsc = PERM2W(wload512(w), idx_words(0, 0, 34, 0, 64), wload512(w + 64));
    const __m512i xsc = PERM2W(load512(x), idx_words(0, 0, 34, 0, 64), load512(x + 64));
    const __m256 prod = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(wsc)),
                                      _mm256_cvtph_ps(_mm512_castsi512_si128(xsc)));
    const __m512 dp = _mm512_castps256_ps512(prod);
    const __m512i pa = dot_ss(load2x32(w + 2, w + 36), load2x32(x + 2, x + 36), vnni);
    const __m512i pb = dot_ss(load2x32(w + 70, w + 104), load2x32(x + 70, x + 104), vnni);
    const __m512i ia = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i ib = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    *acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(ia, dp), _mm512_cvtepi32_ps(pa), *acc0);
    *acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(ib, dp), _mm512_cvtepi32_ps(pb), *acc1);
}

/* One Q8_0 block pair as 8 int32 lanes: the few blocks after the last step. */
AI __m256i q8_0_dot1(const uint8_t *w, const uint8_t *x, bool vnni) {
    const __m256i a = load256(w + 2), b = load256(x + 2);
    const __m256i sb = _mm256_mask_sub_epi8(b, _mm256_movepi8_mask(a), _mm256_setzero_si256(), b);
    const __m256i ua = _mm256_abs_epi8(a);
    if (vnni) return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ua, sb);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ua, sb), _mm256_set1_epi16(1));
}

AI void vd_blocks(blk_kind k, int64_t n, float *s, const void *vw, const void *vx, bool vnni) {
    const blk_geom g = geom_of(k);
    const uint8_t *w = vw, *x = vx;
    const int64_t nb = n / 32;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    int64_t i = 0;
    if (k == BK_Q8_0) {
        for (; i + 4 <= nb; i += 4) q8_0_step4(w + i * g.sw, x + i * g.sx, vnni, &acc0, &acc1);
        __m256 acc = _mm256_setzero_ps();
        for (; i < nb; i++) {
            const uint8_t *wb = w + i * g.sw, *xb = x + i * g.sx;
            const __m256 d = _mm256_set1_ps(f16_at(wb) * f16_at(xb));
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(q8_0_dot1(wb, xb, vnni)), acc);
        }
        acc0 = _mm512_add_ps(acc0, _mm512_zextps256_ps512(acc));
    }
    for (; i + 8 <= nb; i += 8) { /* two chains of FMAs */
        blk_step4(k, w + i * g.sw, x + i * g.sx, 4, true, vnni, &acc0, &accm);
        blk_step4(k, w + (i + 4) * g.sw, x + (i + 4) * g.sx, 4, true, vnni, &acc1, &accm);
    }
    if (i + 4 <= nb) {
        blk_step4(k, w + i * g.sw, x + i * g.sx, 4, true, vnni, &acc0, &accm);
        i += 4;
    }
    if (i < nb) blk_step4(k, w + i * g.sw, x + i * g.sx, (int)(nb - i), false, vnni, &acc1, &accm);
    accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
    *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + _mm_cvtss_f32(accm);
}

/* ---- activation quantizers ---- */

/* The 32 values at x and their largest magnitude. */
AI float absmax32(const float *x, __m512 v[2]) {
    v[0] = _mm512_loadu_ps(x);
    v[1] = _mm512_loadu_ps(x + 16);
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])));
}

void kern_avx512_from_float_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m512 v[2];
        const float amax = absmax32(x, v);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = (kern_f16)_cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
        quant16(v[0], id, y[i].qs);
        quant16(v[1], id, y[i].qs + 16);
    }
}

void kern_avx512_from_float_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        __m512 v[2];
        const float amax = absmax32(x, v);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = (kern_f16)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m512i a = quant16(v[0], id, y[i].qs);
        const __m512i b = quant16(v[1], id, y[i].qs + 16);
        const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(a, b));
        y[i].s = (kern_f16)_cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT);
    }
}

/* ---- instantiation: with VNNI and without ---- */

#define VD_BLOCKS(name, kind)                                                                      \
    void kern_avx512_vec_dot_##name##_vnni(int64_t n, float *s, const void *w, const void *x) {    \
        vd_blocks(kind, n, s, w, x, true);                                                         \
    }                                                                                              \
    void kern_avx512_vec_dot_##name##_plain(int64_t n, float *s, const void *w, const void *x) {   \
        vd_blocks(kind, n, s, w, x, false);                                                        \
    }

VD_BLOCKS(q4_0, BK_Q4_0)
VD_BLOCKS(q5_0, BK_Q5_0)
VD_BLOCKS(q8_0, BK_Q8_0)
VD_BLOCKS(q4_1, BK_Q4_1)
VD_BLOCKS(q5_1, BK_Q5_1)
VD_BLOCKS(iq4_nl, BK_IQ4_NL)
