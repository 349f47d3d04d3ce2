/*
 * x86_avx512.c - kernels for CPUs with AVX-512 F/BW/VL/DQ (Skylake-X, Ice
 * Lake, Zen 4 and later); the only file built with those flags.
 *
 * Two tables come from the same code: the "-vnni" one multiplies bytes with
 * vpdpbusd and applies int16 scales with vpdpwssd; the plain one uses
 * vpmaddubsw + vpmaddwd, for AVX-512 CPUs without VNNI. Every kernel body is
 * an always-inline function of a constant `vnni` flag, and thin wrappers
 * instantiate it twice, so the plain instantiation executes no VNNI
 * instruction even though this file is compiled with -mavx512vnni (when
 * optimizing, it contains none: the other branch is folded away).
 *
 * Layout of the work: the 32-element formats go four blocks per step,
 * rearranged with vpermt2w so that one int32 vector holds the four blocks'
 * sums and their four fp16 scales convert in one vcvtph2ps (Q8_0 weights, which
 * need no unpacking, go two blocks per register as they lie); a last partial
 * step uses masked loads. BF16 uses vdpbf16ps where the CPU has AVX512-BF16
 * (chosen at install time). K-quants go 64 elements per register with the
 * sub-block scales applied as int16 (dpwssd) to an int32 accumulator that is
 * converted to float once per 256 elements. Float sums are left in 16 lanes
 * until the end; results therefore differ from the scalar references only by
 * float rounding. Activation quantizers are bit-identical to the scalar ones.
 */
#include "kernels/isa.h"
#include "kernels/kern_ref.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- helpers -------------------------------------------------------------------- */

AI float f16_at(const void *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

AI __m512i load512(const void *p) { return _mm512_loadu_si512(p); }
AI __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 64 bytes of weights. Weights stream from memory and their rows have no
 * alignment, so an unaligned 64-byte load would always straddle two cache
 * lines; measured, such loads that miss cut the streaming rate to a half or
 * a third, where two 32-byte loads do not. (Activations stay in L1.) */
AI __m512i wload512(const void *p) {
    const uint8_t *b = p;
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(b)), load256(b + 32), 1);
}

/* Two 32-byte rows side by side; b == NULL leaves the upper half zero. */
AI __m512i load2x32(const void *a, const void *b) {
    const __m512i lo = _mm512_zextsi256_si512(load256(a));
    return b ? _mm512_inserti64x4(lo, load256(b), 1) : lo;
}

/* Sums of u*s over each group of 4 bytes (u unsigned, s signed), added to acc.
 * Without VNNI the int16 pair sums must not saturate: |s| <= 127 and u <= 128
 * make them at most 32512. */
AI __m512i dp_us(__m512i acc, __m512i u, __m512i s, bool vnni) {
    if (vnni) return _mm512_dpbusd_epi32(acc, u, s);
    const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
    return _mm512_add_epi32(acc, p);
}

/* Sums of int16 pairs a*b, added to acc. */
AI __m512i dp_ww(__m512i acc, __m512i a, __m512i b, bool vnni) {
    if (vnni) return _mm512_dpwssd_epi32(acc, a, b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

/* Signed x signed bytes: the sign of a moves onto b, |a| is read unsigned. */
AI __m512i dot_ss(__m512i a, __m512i b, bool vnni) {
    const __mmask64 neg = _mm512_movepi8_mask(a);
    const __m512i sb = _mm512_mask_sub_epi8(b, neg, _mm512_setzero_si512(), b);
    return dp_us(_mm512_setzero_si512(), _mm512_abs_epi8(a), sb, vnni);
}

/* ---- 32-element block formats ------------------------------------------------------
 * Four blocks per step. Their bytes are loaded as a few 64-byte vectors and
 * rearranged with vpermt2w (every field of these formats sits at an even
 * offset) into: the first 16 levels of each block in 128-bit lane b, the
 * last 16 in a second vector, the activations likewise, and the fp16 scales
 * of the four blocks side by side. One int32 vector then holds block b in
 * lane b, so a step costs one conversion and one FMA. The last, partial
 * step uses masked loads that read nothing past the rows; missing blocks
 * load as zeros, scales included, and add nothing. */

typedef enum { BK_Q4_0, BK_Q5_0, BK_Q4_1, BK_Q5_1, BK_Q8_0 } blk_kind;

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

/* The 64 bytes at p + o, of which those at or past p + lim read as zero (and
 * are not read) unless `full`; `weights` as wload512. */
AI __m512i load_lim(const uint8_t *p, int o, int lim, bool full, bool weights) {
    if (full) return weights ? wload512(p + o) : load512(p + o);
    const int avail = lim - o;
    if (avail <= 0) return _mm512_setzero_si512();
    const __mmask64 m = avail >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << avail) - 1;
    return _mm512_maskz_loadu_epi8(m, p + o);
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
        if (g.off && vnni) {
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

/* ---- K-quants ------------------------------------------------------------------------ */

/* Bytes 0..7: the 6-bit scales of a Q4_K/Q5_K block, 8..15: the mins. */
AI __m128i k4_scales_mins(const uint8_t *q12) {
    uint32_t a, b, c;
    memcpy(&a, q12, 4);
    memcpy(&b, q12 + 4, 4);
    memcpy(&c, q12 + 8, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3fu;
    const uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4;
    const uint32_t m_lo = b & 0x3f3f3f3fu;
    const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4;
    return _mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo);
}

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

/* 64 levels of Q4_K/Q5_K elements 64j..64j+63: low nibbles of the 32 bytes at
 * q4, then their high nibbles. */
AI __m512i k4_levels64(const uint8_t *q4) {
    const __m512i b = _mm512_broadcast_i64x4(load256(q4));
    const __m512i h = _mm512_mask_srli_epi16(b, (__mmask32)0xFFFF0000u, b, 4);
    return _mm512_and_si512(h, _mm512_set1_epi8(0x0F));
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

AI void vd_q4_K(int64_t n, float *s, const void *vw, const void *vx, bool vnni) {
    const block_q4_K *w = vw;
    const block_q8_K *x = vx;
    __m512 acc = _mm512_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i scmn = k4_scales_mins(w[i].scales);
        accm = k4_mins_term(scmn, x[i].bsums, f16_at(&w[i].dmin) * x[i].d, accm);
        const __m512i sumi = k4_block(w[i].qs, NULL, x[i].qs, scmn, vnni);
        const float d = f16_at(&w[i].d) * x[i].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
    *s = _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(accm);
}

AI void vd_q5_K(int64_t n, float *s, const void *vw, const void *vx, bool vnni) {
    const block_q5_K *w = vw;
    const block_q8_K *x = vx;
    __m512 acc = _mm512_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i scmn = k4_scales_mins(w[i].scales);
        accm = k4_mins_term(scmn, x[i].bsums, f16_at(&w[i].dmin) * x[i].d, accm);
        const __m512i sumi = k4_block(w[i].qs, w[i].qh, x[i].qs, scmn, vnni);
        const float d = f16_at(&w[i].d) * x[i].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
    *s = _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(accm);
}

/* Q6_K: per 128 elements, ql[0..63] holds the low nibbles of elements 0..63
 * and the high nibbles of 64..127; qh[l] the 2-bit pairs of elements l,
 * l+32, l+64, l+96. Levels are stored +32; the offset comes off once per
 * block through the activations' 16-element sums. */
AI void vd_q6_K(int64_t n, float *s, const void *vw, const void *vx, bool vnni) {
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* high pairs of elements 0..31 / 32..63 (bits 0-1 / 2-3) to bits 4-5 */
    const __m512i mlo = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0C), 1);
    const __m512i slo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    /* of elements 64..95 / 96..127 (bits 4-5 / 6-7) */
    const __m512i mhi = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8((char)0xC0), 1);
    const __m512i shi = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
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
            const __m512i hl = _mm512_sllv_epi16(_mm512_and_si512(h, mlo), slo);
            const __m512i hh = _mm512_srlv_epi16(_mm512_and_si512(h, mhi), shi);
            const __m512i qlo = _mm512_ternarylogic_epi32(l, m4, hl, 0xEA); /* (l & m4) | hl */
            const __m512i qhi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), m4, hh, 0xEA);
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

/* ---- float types ----------------------------------------------------------------------- */

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

AI void fgemm(flt_kind k, int64_t n, const void *vw, size_t ws, int64_t nr, const void *vx,
              size_t xs, int64_t nt, float *y, int64_t ldy) {
    const uint8_t *w = vw, *x = vx;
    if (nt == 1) { /* rows one after the other: two interleaved streams from memory are slower */
        for (int64_t r = 0; r < nr; r++) vd_float(k, n, y + r, w + (size_t)r * ws, x);
        return;
    }
    for (int64_t r = 0; r < nr; r += 2) {
        const uint8_t *wr = w + (size_t)r * ws;
        for (int64_t t = 0; t < nt;) {
            const uint8_t *xt = x + (size_t)t * xs;
            float *yt = y + t * ldy + r;
            const int rn = nt - t >= 3 ? 3 : (int)(nt - t);
            if (nr - r >= 2) {
                if (rn == 3)
                    fgemm_tile(k, 2, 3, n, wr, ws, xt, xs, yt, ldy);
                else if (rn == 2)
                    fgemm_tile(k, 2, 2, n, wr, ws, xt, xs, yt, ldy);
                else
                    fgemm_tile(k, 2, 1, n, wr, ws, xt, xs, yt, ldy);
            } else {
                if (rn == 3)
                    fgemm_tile(k, 1, 3, n, wr, ws, xt, xs, yt, ldy);
                else if (rn == 2)
                    fgemm_tile(k, 1, 2, n, wr, ws, xt, xs, yt, ldy);
                else
                    fgemm_tile(k, 1, 1, n, wr, ws, xt, xs, yt, ldy);
            }
            t += rn;
        }
    }
}

static void gemm_f32(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                     int64_t nt, float *y, int64_t ldy) {
    fgemm(FK_F32, n, w, ws, nr, x, xs, nt, y, ldy);
}
static void gemm_f16(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                     int64_t nt, float *y, int64_t ldy) {
    fgemm(FK_F16, n, w, ws, nr, x, xs, nt, y, ldy);
}

static void vec_dot_f32(int64_t n, float *s, const void *w, const void *x) {
    vd_float(FK_F32, n, s, w, x);
}
static void vec_dot_f16(int64_t n, float *s, const void *w, const void *x) {
    vd_float(FK_F16, n, s, w, x);
}
static void vec_dot_bf16(int64_t n, float *s, const void *w, const void *x) {
    vd_float(FK_BF16, n, s, w, x);
}

/* BF16 x BF16 with vdpbf16ps (pairs of exact products added to float lanes),
 * installed only on CPUs with AVX512-BF16. Like ggml's, it reads bf16 values
 * below the normal range as zero. */
__attribute__((target("avx512bf16"))) static void vec_dot_bf16_dp(int64_t n, float *s,
                                                                  const void *vw, const void *vx) {
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

static void to_float_f16(const void *x, float *y, int64_t n) { to_float16(FK_F16, x, y, n); }
static void to_float_bf16(const void *x, float *y, int64_t n) { to_float16(FK_BF16, x, y, n); }

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

static void from_float_f16(const float *x, void *y, int64_t n) { from_float16(FK_F16, x, y, n); }
static void from_float_bf16(const float *x, void *y, int64_t n) { from_float16(FK_BF16, x, y, n); }

/* ---- activation quantizers ------------------------------------------------------------------ */

/* The 32 values at x and their largest magnitude. */
AI float absmax32(const float *x, __m512 v[2]) {
    v[0] = _mm512_loadu_ps(x);
    v[1] = _mm512_loadu_ps(x + 16);
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])));
}

/* v * mul rounded half to even (vcvtps2dq in the default rounding mode),
 * stored as int8 at q; returns the int32 values. */
AI __m512i quant16(__m512 v, float mul, int8_t *q) {
    const __m512i iv = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(mul)));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtsepi32_epi8(iv));
    return iv;
}

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
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

static void from_float_q8_1(const float *x, void *vy, int64_t n) {
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

/* As the reference: the scale comes from the first element of largest
 * magnitude, with its sign; an all-zero block is all zeros. */
static void from_float_q8_K(const float *x, void *vy, int64_t n) {
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

/* ---- attention in ggml's order (kern_attn_tile) -----------------------------------------------
 * The arithmetic of ops.c's kern_attn_* (llama.cpp's), vectorised across the
 * 16 keys of a tile: K is stored transposed, so lane i of a vector is key i,
 * each of ggml's per-key accumulators becomes one vector and its horizontal
 * sums become the same additions between vectors. The bits equal ops.c's.
 * The scores of all rows share each tile's conversion; the weighted sum of V
 * runs one accumulator chain (lane j of the tile, accumulator set) at a time
 * over the positions of that chain, in ggml's order, sharing each V row
 * between the rows. */

enum { AT = KERN_KV_TILE, AR = KERN_ATTN_ROWS, AMAXV = KERN_ATTN_MAX_HD / 16 };

/* 16 cache elements (f16 or f32) as floats. */
AI __m512 cache16(const uint8_t *p, bool f16) {
    return f16 ? _mm512_cvtph_ps(load256(p)) : _mm512_loadu_ps((const float *)p);
}

/* kern_ggml_hsum16 lane by lane over 16 vectors. */
AI __m512 tree16(const __m512 v[16]) {
    __m512 t[8], u[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) t[i] = _mm512_add_ps(v[i + 8], v[i]);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) u[i] = _mm512_add_ps(t[i + 4], t[i]);
    return _mm512_add_ps(_mm512_add_ps(u[0], u[2]), _mm512_add_ps(u[1], u[3]));
}

/* kern_ggml_hsum16 of one vector. */
AI float hsum16_ggml(__m512 v) {
    const __m256 t = _mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v));
    const __m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u)); /* u0 + u2, u1 + u3 */
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

/* kern_ggml_expf on 16 lanes; the few `valid` lanes outside 2^n's normal
 * range take the scalar function. */
AI __m512 ggml_exp16(__m512 x, __mmask16 valid) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 p5 =
        _mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f));
    const __m512 p3 =
        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f));
    const __m512 p1 = _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f));
    const __m512 j = _mm512_fmadd_ps(_mm512_fmadd_ps(p5, u, p3), u, p1);
    const __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(j, _mm512_castsi512_ps(e));
    const __mmask16 odd = valid & (_mm512_cmp_ps_mask(n, _mm512_set1_ps(-126.0f), _CMP_NGE_UQ) |
                                   _mm512_cmp_ps_mask(n, _mm512_set1_ps(127.0f), _CMP_NLE_UQ));
    if (odd) {
        float xs[16], ys[16];
        _mm512_storeu_ps(xs, x);
        _mm512_storeu_ps(ys, y);
        for (int i = 0; i < 16; i++)
            if (odd >> i & 1) ys[i] = kern_ggml_expf(xs[i]);
        y = _mm512_loadu_ps(ys);
    }
    return y;
}

/* Lanes of the tile at position g that lie in lo..hi. */
AI __mmask16 lanes_in(int g, int lo, int hi) {
    const int a = lo - g > 0 ? lo - g : 0, b = hi - g < 15 ? hi - g : 15;
    return (__mmask16)(a > b ? 0u : ((1u << (b - a + 1)) - 1u) << a);
}

/* Scores of one row against the 16 keys of a tile (kt: [hd][16] floats).
 * `tiny`: tinyBLAS's order (16 accumulators, lane r of the dimension);
 * otherwise ggml_vec_dot's (four accumulators over 64-element steps, then
 * the rest added in float for an f32 cache, in double for f16). */
AI __m512 tile_scores(const float *kt, const float *q, int hd, bool tiny, bool f16) {
    __m512 v[16];
    if (tiny) {
#pragma GCC unroll 16
        for (int r = 0; r < 16; r++) v[r] = _mm512_setzero_ps();
        for (int e = 0; e < hd; e += 16)
#pragma GCC unroll 16
            for (int r = 0; r < 16; r++)
                v[r] = _mm512_fmadd_ps(_mm512_loadu_ps(kt + (e + r) * AT), _mm512_set1_ps(q[e + r]),
                                       v[r]);
        return tree16(v);
    }
    const int np = hd & ~63;
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) {
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        for (int e = 0; e < np; e += 64)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const int i = e + 16 * c + r;
                a[c] = _mm512_fmadd_ps(_mm512_loadu_ps(kt + i * AT), _mm512_set1_ps(q[i]), a[c]);
            }
        v[r] = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
    }
    __m512 s = tree16(v);
    if (!f16) {
        for (int e = np; e < hd; e++)
            s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_loadu_ps(kt + e * AT), _mm512_set1_ps(q[e])));
        return s;
    }
    if (np == hd) return s;
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(s));
    __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(s, 1));
    for (int e = np; e < hd; e++) {
        const __m512 p = _mm512_mul_ps(_mm512_loadu_ps(kt + e * AT), _mm512_set1_ps(q[e]));
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(p, 1)));
    }
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

/* kern_attn_softmax over sc[lo..hi] (indexed by position); with an f16
 * cache the weights are then rounded to f16, as kern_attn_values does. */
static void row_softmax(float *sc, int lo, int hi, float scale, bool f16) {
    const int g0 = lo & ~(AT - 1);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int g = g0; g <= hi; g += AT) {
        const __mmask16 m = lanes_in(g, lo, hi);
        const __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, sc + g), _mm512_set1_ps(scale));
        _mm512_mask_storeu_ps(sc + g, m, x);
        mx = _mm512_mask_max_ps(mx, m, mx, x);
    }
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    double sum = 0.0;
    for (int g = g0; g <= hi; g += AT) {
        const __mmask16 m = lanes_in(g, lo, hi);
        const __m512 x = _mm512_maskz_loadu_ps(m, sc + g);
        const __m512 v = _mm512_maskz_mov_ps(m, ggml_exp16(_mm512_sub_ps(x, max), m));
        _mm512_mask_storeu_ps(sc + g, m, v);
        sum += (double)hsum16_ggml(v);
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (int g = g0; g <= hi; g += AT) {
        const __mmask16 m = lanes_in(g, lo, hi);
        __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, sc + g), inv);
        if (f16)
            x = _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(sc + g, m, x);
    }
}

/* out_r = sum_p w_r[p] v_p over positions lo..hi (w_r zero outside row r's
 * keys, which adds exact zeros). ggml's accumulators are (set, lane j):
 * one set for a batch, four (set (p / 16) % 4) for a single token; each is
 * a chain of multiply-adds over its positions in increasing order, then
 * they are added as kern_attn_values does. nr rows, nvc vectors per row (0:
 * hd / 16, known only at run time). */
AI void tile_values(const kern_attn_args *a, bool f16, float *const *w, float *acc_buf, int lo,
                    int hi, const int nr, const int nvc) {
    const int hd = a->hd, nv = nvc ? nvc : hd / 16, nsets = a->batch ? 1 : 4;
    const size_t es = f16 ? 2 : sizeof(float);
    const uint8_t *v = a->v;
    const int b0 = lo / AT, b1 = hi / AT;
    for (int set = 0; set < nsets; set++)
        for (int j = 0; j < AT; j++) {
            __m512 acc[AR][AMAXV];
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
                for (int c = 0; c < nv; c++) acc[r][c] = _mm512_setzero_ps();
            for (int b = b0 + ((set - b0 % nsets) + nsets) % nsets; b <= b1; b += nsets) {
                const int p = b * AT + j;
                if (p < lo || p > hi) continue;
                const uint8_t *vr = v + (size_t)p * (size_t)hd * es;
#pragma GCC unroll 8
                for (int c = 0; c < nv; c++) {
                    const __m512 x = cache16(vr + (size_t)c * 16 * es, f16);
#pragma GCC unroll 4
                    for (int r = 0; r < nr; r++)
                        acc[r][c] = _mm512_fmadd_ps(x, _mm512_set1_ps(w[r][p]), acc[r][c]);
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
                for (int c = 0; c < nv; c++)
                    _mm512_storeu_ps(acc_buf + ((size_t)(r * 4 + set) * AT + j) * hd + 16 * c,
                                     acc[r][c]);
        }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nv; c++) {
            __m512 l[16];
            const float *ab = acc_buf + (size_t)r * 4 * AT * hd + 16 * c;
#pragma GCC unroll 16
            for (int j = 0; j < AT; j++) {
                const float *aj = ab + (size_t)j * hd;
                if (nsets == 1) {
                    l[j] = _mm512_loadu_ps(aj);
                } else {
                    const size_t st = (size_t)AT * hd; /* from one set to the next */
                    l[j] = _mm512_add_ps(
                        _mm512_add_ps(_mm512_loadu_ps(aj), _mm512_loadu_ps(aj + 2 * st)),
                        _mm512_add_ps(_mm512_loadu_ps(aj + st), _mm512_loadu_ps(aj + 3 * st)));
                }
            }
            _mm512_storeu_ps(a->rows[r].out + 16 * c, tree16(l));
        }
}

/* tile_values with the row count and vector count as constants for the
 * common shapes (4 rows, or 3 for a group of 3 query heads; head sizes 64
 * and 128), so that the accumulators live in registers; others at run time
 * (few copies: the file compiles slowly enough under the sanitizers). */
static void tile_values_any(const kern_attn_args *a, bool f16, float *const *w, float *acc_buf,
                            int lo, int hi) {
    if (a->n_rows == 4 && a->hd == 64)
        tile_values(a, f16, w, acc_buf, lo, hi, 4, 4);
    else if (a->n_rows == 4 && a->hd == 128)
        tile_values(a, f16, w, acc_buf, lo, hi, 4, 8);
    else if (a->n_rows == 3 && a->hd == 64)
        tile_values(a, f16, w, acc_buf, lo, hi, 3, 4);
    else
        tile_values(a, f16, w, acc_buf, lo, hi, a->n_rows, 0);
}

AI void attn_tile(const kern_attn_args *a, bool f16) {
    const int hd = a->hd, nr = a->n_rows;
    float *sc[AR];
    float *acc_buf = a->work + (size_t)AR * (size_t)a->n_pos;
    _Alignas(64) float qr[AR][KERN_ATTN_MAX_HD];
    _Alignas(64) float kbuf[AT * KERN_ATTN_MAX_HD];
    int lo = a->rows[0].lo, hi = a->rows[0].hi;
    for (int r = 0; r < nr; r++) {
        const kern_attn_row *row = &a->rows[r];
        sc[r] = a->work + (size_t)r * (size_t)a->n_pos;
        lo = row->lo < lo ? row->lo : lo;
        hi = row->hi > hi ? row->hi : hi;
        for (int e = 0; e < hd; e += 16) { /* an f16 cache meets q rounded to f16 */
            __m512 x = _mm512_loadu_ps(row->q + e);
            if (f16)
                x = _mm512_cvtph_ps(
                    _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm512_storeu_ps(qr[r] + e, x);
        }
    }
    const uint8_t *k = a->k;
    const size_t es = f16 ? 2 : sizeof(float);
    for (int b = lo / AT; b <= hi / AT; b++) {
        const uint8_t *kb = k + (size_t)b * AT * (size_t)hd * es;
        const float *kt = (const float *)kb;
        if (f16) {
            for (int e = 0; e < hd; e++)
                _mm512_storeu_ps(kbuf + e * AT, cache16(kb + (size_t)e * AT * es, true));
            kt = kbuf;
        }
        for (int r = 0; r < nr; r++) {
            if (b * AT > a->rows[r].hi || b * AT + AT - 1 < a->rows[r].lo) continue;
            _mm512_storeu_ps(sc[r] + b * AT, tile_scores(kt, qr[r], hd, f16 && a->batch, f16));
        }
    }
    for (int r = 0; r < nr; r++) {
        const kern_attn_row *row = &a->rows[r];
        row_softmax(sc[r], row->lo, row->hi, a->scale, f16);
        for (int p = lo; p < row->lo; p++) sc[r][p] = 0.0f;
        for (int p = row->hi + 1; p <= hi; p++) sc[r][p] = 0.0f;
    }
    tile_values_any(a, f16, sc, acc_buf, lo, hi);
}

static void attn_f32(const kern_attn_args *a) { attn_tile(a, false); }
static void attn_f16(const kern_attn_args *a) { attn_tile(a, true); }

/* ---- the VNNI products of the integer formats: vec_dot and gemm in one arithmetic -------------
 * Q8_0, Q4_0, Q5_0 (against Q8_0 activations) and Q4_K, Q5_K, Q6_K (against
 * Q8_K) have, in the VNNI table, one arithmetic that a single row (vec_dot)
 * and a panel of rows against several tokens (gemm) both compute cheaply, so
 * that a batch and one token at a time give the same bits:
 *  - a row is cut into chunks of 16 sub-blocks (one scale each: 32 elements,
 *    16 for Q6_K); per sub-block s the exact integer I_s = sum (level -
 *    offset) * x and the float P_s = (scale_s * d_x) * I_s, plus
 *    min_s * (d_x * sum x) for the K-quants with mins (one fused step);
 *  - a chunk's value is the pairwise tree ((P0 + P1) + (P2 + P3)) + ... over
 *    its 16 sub-blocks (absent ones are +0); the row's, the chunks added in
 *    order.
 * vec_dot holds a row chunk's 16 sub-blocks in the 16 lanes of a vector (the
 * tree is four shuffle-adds) and reads the row once, in order. gemm unpacks
 * a panel of 16 rows into unsigned levels interleaved by 4 bytes (the 4
 * levels of one row and group of 4 columns in int32 lane = row), so that one
 * vpdpbusd against 4 broadcast activation bytes advances 16 rows at once for
 * each of 4 tokens held in registers, without horizontal sums; the level
 * offset comes off through the activations' sums (computed once per token
 * and chunk), and each token's tree is built as its sub-blocks arrive. */

enum { GR = 16, GKC = 512, GTC = 128, GNT = 4 };

typedef enum { GK_Q8_0, GK_Q4_0, GK_Q5_0, GK_Q4_K, GK_Q5_K, GK_Q6_K } gemm_kind;

typedef struct {
    int sb, off;      /* elements per sub-block (one scale), level offset (0: mins) */
    int wbe, wbb;     /* weight block elements and bytes */
    int xbe, xbb, xq; /* activation block elements, bytes, offset of its int8 quants */
} gemm_geom;

AI gemm_geom gemm_geom_of(gemm_kind k) {
    switch (k) {
    case GK_Q8_0: return (gemm_geom){32, 128, 32, 34, 32, 34, 2};
    case GK_Q4_0: return (gemm_geom){32, 8, 32, 18, 32, 34, 2};
    case GK_Q5_0: return (gemm_geom){32, 16, 32, 22, 32, 34, 2};
    case GK_Q4_K: return (gemm_geom){32, 0, 256, 144, 256, 292, 4};
    case GK_Q5_K: return (gemm_geom){32, 0, 256, 176, 256, 292, 4};
    case GK_Q6_K: break;
    }
    return (gemm_geom){16, 32, 256, 210, 256, 292, 4};
}

/* Unsigned levels of kcn elements of one weight row (from a block start)
 * into lev, and the scale (and min coefficient) of each sub-block into
 * sc[s * GR] (mn[s * GR]). */
AI void gemm_unpack(gemm_kind k, const uint8_t *w, int kcn, uint8_t *lev, float *sc, float *mn) {
    const gemm_geom g = gemm_geom_of(k);
    const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    for (int b = 0; b < kcn / g.wbe; b++) {
        const uint8_t *wb = w + (size_t)b * g.wbb;
        uint8_t *lb = lev + b * g.wbe;
        if (k == GK_Q8_0) {
            _mm256_storeu_si256((__m256i *)lb,
                                _mm256_xor_si256(load256(wb + 2), _mm256_set1_epi8((char)0x80)));
            sc[b * GR] = f16_at(wb);
        } else if (k == GK_Q4_0 || k == GK_Q5_0) {
            const __m128i q = _mm_loadu_si128((const __m128i *)(wb + (k == GK_Q4_0 ? 2 : 6)));
            __m256i v = _mm256_and_si256(
                _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1), m4);
            if (k == GK_Q5_0) {
                uint32_t qh;
                memcpy(&qh, wb + 2, sizeof qh);
                v = _mm256_mask_add_epi8(v, (__mmask32)qh, v, sixteen);
            }
            _mm256_storeu_si256((__m256i *)lb, v);
            sc[b * GR] = f16_at(wb);
        } else if (k == GK_Q4_K || k == GK_Q5_K) {
            const uint8_t *qs = wb + (k == GK_Q4_K ? 16 : 48);
            uint8_t sm[16];
            _mm_storeu_si128((__m128i *)sm, k4_scales_mins(wb + 4));
            const float d = f16_at(wb), dmin = f16_at(wb + 2);
            for (int j = 0; j < 8; j++) {
                sc[(8 * b + j) * GR] = d * (float)sm[j];
                mn[(8 * b + j) * GR] = -dmin * (float)sm[8 + j];
            }
            const __m256i h = k == GK_Q5_K ? load256(wb + 16) : _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) { /* elements 64j.. low nibbles, 64j+32.. high */
                const __m256i q = load256(qs + 32 * j);
                __m256i lo = _mm256_and_si256(q, m4),
                        hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if (k == GK_Q5_K) {
                    lo = _mm256_mask_add_epi8(
                        lo, _mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(1 << (2 * j)))), lo,
                        sixteen);
                    hi = _mm256_mask_add_epi8(
                        hi, _mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(2 << (2 * j)))), hi,
                        sixteen);
                }
                _mm256_storeu_si256((__m256i *)(lb + 64 * j), lo);
                _mm256_storeu_si256((__m256i *)(lb + 64 * j + 32), hi);
            }
        } else { /* Q6_K: ql[128], qh[64], int8 scales[16], d */
            const __m256i m3 = _mm256_set1_epi8(3);
            for (int half = 0; half < 2; half++) {
                const __m256i a = load256(wb + 64 * half), c = load256(wb + 64 * half + 32);
                const __m256i hb = load256(wb + 128 + 32 * half);
                const __m256i a_hi = _mm256_and_si256(_mm256_srli_epi16(a, 4), m4);
                const __m256i c_hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
#define Q6_HI(sh) _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, sh), m3), 4)
                uint8_t *o = lb + 128 * half;
                _mm256_storeu_si256((__m256i *)o,
                                    _mm256_or_si256(_mm256_and_si256(a, m4), Q6_HI(0)));
                _mm256_storeu_si256((__m256i *)(o + 32),
                                    _mm256_or_si256(_mm256_and_si256(c, m4), Q6_HI(2)));
                _mm256_storeu_si256((__m256i *)(o + 64), _mm256_or_si256(a_hi, Q6_HI(4)));
                _mm256_storeu_si256((__m256i *)(o + 96), _mm256_or_si256(c_hi, Q6_HI(6)));
#undef Q6_HI
            }
            const float d = f16_at(wb + 208);
            for (int j = 0; j < 16; j++) sc[(16 * b + j) * GR] = d * (float)(int8_t)wb[192 + j];
        }
    }
}

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
 * int32 j of the 16 rows at in + i * ld. Unpacking 32- then 64-bit pairs
 * leaves 4 x 4 blocks transposed in each 128-bit lane; two rounds of
 * 128-bit shuffles move the blocks into place. */
AI void transpose16(const uint8_t *in, size_t ld, uint8_t *out) {
    __m512i a[16], b[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        const __m512i r0 = load512(in + i * ld), r1 = load512(in + (i + 1) * ld);
        a[i] = _mm512_unpacklo_epi32(r0, r1);
        a[i + 1] = _mm512_unpackhi_epi32(r0, r1);
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

AI void gemm_body(gemm_kind k, int64_t n, const void *vw, size_t w_stride, int64_t nr,
                  const void *vx, size_t x_stride, int64_t nt, float *y, int64_t ldy) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb; /* one chunk: 16 sub-blocks */
    const uint8_t *w = vw, *x = vx;
    _Alignas(64) uint8_t tmp[GR][GKC];
    _Alignas(64) uint8_t lv[GKC * GR];
    _Alignas(64) float sc[16 * GR], mn[16 * GR];
    int32_t xc[GTC * 16];
    float xd[GTC * 16], xm[GTC * 16];
    for (int64_t kc0 = 0; kc0 < n; kc0 += kc) {
        const int kcn = (int)(n - kc0 < kc ? n - kc0 : kc), ns = kcn / g.sb;
        const size_t wo = (size_t)(kc0 / g.wbe) * g.wbb, xo = (size_t)(kc0 / g.xbe) * g.xbb;
        for (int64_t t0 = 0; t0 < nt; t0 += GTC) {
            const int tn = (int)(nt - t0 < GTC ? nt - t0 : GTC);
            for (int t = 0; t < tn; t++)
                gemm_prep(k, x + (size_t)(t0 + t) * x_stride + xo, kcn, xc + t * ns, xd + t * ns,
                          xm + t * ns);
            for (int64_t r0 = 0; r0 < nr; r0 += GR) {
                const int rn = (int)(nr - r0 < GR ? nr - r0 : GR);
                /* rows past rn keep stale levels and scales: their lanes are never stored */
                for (int r = 0; r < rn; r++)
                    gemm_unpack(k, w + (size_t)(r0 + r) * w_stride + wo, kcn, tmp[r], sc + r,
                                mn + r);
                for (int c0 = 0; c0 < kcn; c0 += 64) transpose16(tmp[0] + c0, GKC, lv + c0 * GR);
                for (int t = 0; t < tn;) {
                    const uint8_t *xt[GNT];
                    const int step = tn - t >= 4 ? 4 : 1; /* (two copies of the code: enough) */
                    for (int i = 0; i < step; i++) xt[i] = x + (size_t)(t0 + t + i) * x_stride + xo;
                    float *yt = y + (t0 + t) * ldy + r0;
                    const int32_t *c = xc + t * ns;
                    const float *dd = xd + t * ns, *mm = xm + t * ns;
                    if (step == 4)
                        gemm_micro(k, 4, ns, lv, sc, mn, xt, c, dd, mm, ns, yt, ldy, rn, kc0 > 0);
                    else
                        gemm_micro(k, 1, ns, lv, sc, mn, xt, c, dd, mm, ns, yt, ldy, rn, kc0 > 0);
                    t += step;
                }
            }
        }
    }
}

/* ---- vec_dot in the same arithmetic ---- */

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

/* The fp16 values at the start of nblk <= 16 consecutive blocks of bb bytes,
 * as floats in lanes 0..nblk-1 (zero above): picked out of 128-byte windows
 * with vpermt2w. */
AI __m512 block_d16(const uint8_t *p, int bb, int nblk) {
    const int per = 126 / bb + 1; /* blocks whose d lies in one window */
    const __m512i iota = _mm512_setr_epi32(0x10000, 0x30002, 0x50004, 0x70006, 0x90008, 0xb000a,
                                           0xd000c, 0xf000e, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i d = _mm512_setzero_si512();
#pragma GCC unroll 6
    for (int b0 = 0; b0 < nblk; b0 += per) {
        const int avail = (nblk - b0) * bb, nw = nblk - b0 < per ? nblk - b0 : per;
        const uint8_t *w = p + (size_t)b0 * bb;
        const __m512i lo = load_lim(w, 0, avail, avail >= 128, true);
        const __m512i hi = load_lim(w, 64, avail, avail >= 128, true);
        const __m512i idx = _mm512_mullo_epi16(_mm512_sub_epi16(iota, _mm512_set1_epi16((short)b0)),
                                               _mm512_set1_epi16((short)(bb / 2)));
        d = _mm512_mask_mov_epi16(d, (__mmask32)(((1u << nw) - 1u) << b0),
                                  _mm512_permutex2var_epi16(lo, idx, hi));
    }
    return _mm512_cvtph_ps(_mm512_castsi512_si256(d));
}

/* Levels (unsigned) of elements 64q..64q+63 of a row chunk (from a block
 * start); `two`: both 32-element blocks exist (else the second is zero). */
AI __m512i vd_levels64(gemm_kind k, const uint8_t *w, int q, bool two) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    switch (k) {
    case GK_Q8_0: {
        const uint8_t *b = w + (size_t)q * 68;
        return _mm512_xor_si512(load2x32(b + 2, two ? b + 36 : NULL), _mm512_set1_epi8((char)0x80));
    }
    case GK_Q4_0:
    case GK_Q5_0: {
        const int bb = k == GK_Q4_0 ? 18 : 22, qo = k == GK_Q4_0 ? 2 : 6;
        const uint8_t *b = w + (size_t)q * 2 * bb;
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(b + qo));
        const __m128i q1 =
            two ? _mm_loadu_si128((const __m128i *)(b + bb + qo)) : _mm_setzero_si128();
        const __m256i v0 =
            _mm256_inserti128_si256(_mm256_castsi128_si256(q0), _mm_srli_epi16(q0, 4), 1);
        const __m256i v1 =
            _mm256_inserti128_si256(_mm256_castsi128_si256(q1), _mm_srli_epi16(q1, 4), 1);
        __m512i v = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1), m4);
        if (k == GK_Q5_0) {
            uint32_t h0, h1 = 0;
            memcpy(&h0, b + 2, sizeof h0);
            if (two) memcpy(&h1, b + bb + 2, sizeof h1);
            v = _mm512_mask_add_epi8(v, _cvtu64_mask64((uint64_t)h0 | (uint64_t)h1 << 32), v,
                                     _mm512_set1_epi8(16));
        }
        return v;
    }
    case GK_Q4_K:
    case GK_Q5_K: {
        const int j = q % 4;
        const uint8_t *b = w + (size_t)(q / 4) * (k == GK_Q4_K ? 144 : 176);
        __m512i v = k4_levels64(b + (k == GK_Q4_K ? 16 : 48) + 32 * j);
        if (k == GK_Q5_K) {
            const __m512i h = _mm512_broadcast_i64x4(load256(b + 16));
            const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * j))),
                                                   _mm256_set1_epi8((char)(2 << (2 * j))), 1);
            v = _mm512_mask_add_epi8(v, _mm512_test_epi8_mask(h, sel), v, _mm512_set1_epi8(16));
        }
        return v;
    }
    case GK_Q6_K: break;
    }
    /* Q6_K: elements 128 half + 64 part + (0..63) of the block */
    const int half = q / 2, part = q % 2;
    const __m512i l = wload512(w + 64 * half);
    const __m512i h = _mm512_broadcast_i64x4(load256(w + 128 + 32 * half));
    if (part == 0) { /* (l & 15) | (h bits 0-1 / 2-3) << 4 */
        const __m512i mlo = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0C), 1);
        const __m512i slo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        return _mm512_ternarylogic_epi32(l, m4, _mm512_sllv_epi16(_mm512_and_si512(h, mlo), slo),
                                         0xEA);
    }
    const __m512i mhi = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8((char)0xC0), 1);
    const __m512i shi = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    return _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), m4,
                                     _mm512_srlv_epi16(_mm512_and_si512(h, mhi), shi), 0xEA);
}

/* Activations 64q..64q+63 of a chunk (from a block start). */
AI __m512i vd_x64(gemm_kind k, const uint8_t *x, int q, bool two) {
    if (gemm_geom_of(k).xbe == 32) {
        const uint8_t *b = x + (size_t)q * 68;
        return load2x32(b + 2, two ? b + 36 : NULL);
    }
    return load512(x + (size_t)(q / 4) * 292 + 4 + 64 * (q % 4));
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
    const __m512i c = iadd_pairs(iadd_pairs(p[0], p[1]), iadd_pairs(p[2], p[3]));
    return _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), c);
}

/* 4 x 16 partial sums whose 128-bit lane L of p[q] belongs to sub-block
 * 4q + L, as one vector of 16 sub-block sums (lane s = sub-block s). */
AI __m512i quad_reduce(const __m512i *p) {
    const __m512i c = iadd_pairs(iadd_pairs(p[0], p[1]), iadd_pairs(p[2], p[3]));
    return _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), c);
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

/* Q4_0 rows go four blocks at a time: the low nibbles (elements 0..15) of
 * four blocks in one vector, the high ones in another, and the activations
 * rearranged to match once per chunk (a sub-block's sum does not depend on
 * the order of its terms). (Q5_0 is faster two blocks at a time: its high
 * bits come as one 64-bit mask per two blocks.) */
AI bool nibble_quads(gemm_kind k) { return k == GK_Q4_0; }

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
enum { GV_MAXT = 4 };

AI void vd_chunk_mt(gemm_kind k, const uint8_t *w, const vd_xchunk *const *xps, const int nt,
                    int kcn, __m512 *out) {
    const gemm_geom g = gemm_geom_of(k);
    const int ns = kcn / g.sb, nseg = (kcn + 63) / 64;
    __m512i lev[8]; /* nibble quads: low, high nibbles of 4 blocks per pair */
    if (nibble_quads(k)) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            const int nb = ns - 4 * q < 0 ? 0 : ns - 4 * q > 4 ? 4 : ns - 4 * q;
            const __m512i v = quad16(w + (size_t)q * 4 * g.wbb, g.wbb, 2, nb);
            lev[2 * q] = _mm512_and_si512(v, m4);
            lev[2 * q + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
    } else {
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++)
            lev[q] = q < nseg ? vd_levels64(k, w, q, 64 * q + 64 <= kcn) : _mm512_setzero_si512();
    }
    __m512 sc, mn = _mm512_setzero_ps();
    if (g.wbe == 32) {
        sc = block_d16(w, g.wbb, ns);
    } else if (k == GK_Q6_K) {
        const __m512 s8 =
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + 192))));
        sc = _mm512_mul_ps(_mm512_set1_ps(f16_at(w + 208)), s8);
    } else { /* Q4_K, Q5_K: one or two blocks of 8 sub-blocks */
        __m256 s2[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()},
               m2[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int b = 0; b < ns / 8; b++) {
            const uint8_t *wb = w + (size_t)b * g.wbb;
            const __m512 sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(k4_scales_mins(wb + 4)));
            const __m512 dd =
                _mm512_insertf32x8(_mm512_set1_ps(f16_at(wb)), _mm256_set1_ps(-f16_at(wb + 2)), 1);
            const __m512 v = _mm512_mul_ps(dd, sm);
            s2[b] = _mm512_castps512_ps256(v);
            m2[b] = _mm512_extractf32x8_ps(v, 1);
        }
        sc = _mm512_insertf32x8(_mm512_castps256_ps512(s2[0]), s2[1], 1);
        mn = _mm512_insertf32x8(_mm512_castps256_ps512(m2[0]), m2[1], 1);
    }
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
    if (kcn == kc) /* whole chunks with their sizes as constants */
        vd_chunk_mt(k, w, xps, nt, kc, v);
    else /* (the tails at run time: fewer copies of the code, which compiles slowly) */
        vd_chunk_mt(k, w, xps, nt, kcn, v);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) out[t] = tree_sum16(v[t]);
}

/* gemm of a few tokens: vec_dot's code row after row (rows stream from
 * memory in address order, each row's levels unpacked once for all the
 * tokens), the activation side prepared once. Panels of 16 rows reread the
 * weights as 16 interleaved streams, which from memory costs more than the
 * unpacking they save unless the tokens are many. */
enum { GV_MAXPREP = 64 }; /* prepared chunks: tokens x chunks per row */

AI void gemv_rows(gemm_kind k, const int nt, int nt_out, int64_t n, const uint8_t *w,
                  size_t w_stride, int64_t nr, const uint8_t *x, size_t x_stride, float *y,
                  int64_t ldy, vd_xchunk *xp) {
    const gemm_geom g = gemm_geom_of(k);
    const int kc = 16 * g.sb, nc = (int)((n + kc - 1) / kc);
    for (int t = 0; t < nt_out; t++)
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
            for (int t = 0; t < nt; t++) xps[t] = &xp[(t < nt_out ? t : nt_out - 1) * nc + c];
            vd_chunk_sum_mt(k, wr + (size_t)(kc0 / g.wbe) * g.wbb, xps, nt, kcn, kc, v);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) sum[t] = c ? sum[t] + v[t] : v[t];
        }
        for (int t = 0; t < nt_out; t++) y[t * ldy + r] = sum[t];
    }
}

/* Whether gemv_rows takes nt tokens of rows of n elements. */
AI bool gemv_fits(gemm_kind k, int64_t n, int64_t nt) {
    const int64_t kc = 16 * gemm_geom_of(k).sb;
    return nt <= GV_MAXT && nt * ((n + kc - 1) / kc) <= GV_MAXPREP;
}

/* Each kind's code in a few separate functions rather than one: the
 * compiler's register dataflow grows faster than linearly with a function's
 * size, which made this file take minutes to compile under the sanitizers. */
#define NOINLINE static __attribute__((noinline))
#define GEMM_FN(name, kind)                                                                        \
    NOINLINE void gemv1_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,     \
                               float *y, int64_t ldy) {                                            \
        vd_xchunk xp[GV_MAXPREP];                                                                  \
        gemv_rows(kind, 1, 1, n, w, ws, nr, x, 0, y, ldy, xp);                                     \
    }                                                                                              \
    NOINLINE void gemv2_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,     \
                               size_t xs, float *y, int64_t ldy) {                                 \
        vd_xchunk xp[GV_MAXPREP];                                                                  \
        gemv_rows(kind, 2, 2, n, w, ws, nr, x, xs, y, ldy, xp);                                    \
    }                                                                                              \
    NOINLINE void gemv4_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,     \
                               size_t xs, int64_t nt, float *y, int64_t ldy) {                     \
        vd_xchunk xp[GV_MAXPREP];                                                                  \
        gemv_rows(kind, 4, (int)nt, n, w, ws, nr, x, xs, y, ldy, xp);                              \
    }                                                                                              \
    NOINLINE void panels_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,    \
                                size_t xs, int64_t nt, float *y, int64_t ldy) {                    \
        gemm_body(kind, n, w, ws, nr, x, xs, nt, y, ldy);                                          \
    }                                                                                              \
    static void vec_dot_##name##_canon(int64_t n, float *s, const void *w, const void *x) {        \
        vd_canon(kind, n, s, w, x);                                                                \
    }                                                                                              \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,        \
                            size_t xs, int64_t nt, float *y, int64_t ldy) {                        \
        if (gemv_fits(kind, n, nt) && nt == 1)                                                     \
            gemv1_##name(n, w, ws, nr, x, y, ldy);                                                 \
        else if (gemv_fits(kind, n, nt) && nt == 2)                                                \
            gemv2_##name(n, w, ws, nr, x, xs, y, ldy);                                             \
        else if (gemv_fits(kind, n, nt)) /* 3 runs as 4 (the last one repeated) */                 \
            gemv4_##name(n, w, ws, nr, x, xs, nt, y, ldy);                                         \
        else if (nt == 1) /* rows too long to prepare: vec_dot as it is */                         \
            for (int64_t r = 0; r < nr; r++)                                                       \
                vec_dot_##name##_canon(n, y + r, (const uint8_t *)w + r * ws, x);                  \
        else                                                                                       \
            panels_##name(n, w, ws, nr, x, xs, nt, y, ldy);                                        \
    }
GEMM_FN(q8_0, GK_Q8_0)
GEMM_FN(q4_0, GK_Q4_0)
GEMM_FN(q5_0, GK_Q5_0)
GEMM_FN(q4_K, GK_Q4_K)
GEMM_FN(q5_K, GK_Q5_K)
GEMM_FN(q6_K, GK_Q6_K)

/* ---- instantiation and registration ------------------------------------------------------------
 */

#define VD_BLOCKS(name, kind)                                                                      \
    static void name##_vnni(int64_t n, float *s, const void *w, const void *x) {                   \
        vd_blocks(kind, n, s, w, x, true);                                                         \
    }                                                                                              \
    static void name##_plain(int64_t n, float *s, const void *w, const void *x) {                  \
        vd_blocks(kind, n, s, w, x, false);                                                        \
    }
#define VD_KQUANT(name, body)                                                                      \
    static void name##_vnni(int64_t n, float *s, const void *w, const void *x) {                   \
        body(n, s, w, x, true);                                                                    \
    }                                                                                              \
    static void name##_plain(int64_t n, float *s, const void *w, const void *x) {                  \
        body(n, s, w, x, false);                                                                   \
    }

VD_BLOCKS(vec_dot_q4_0, BK_Q4_0)
VD_BLOCKS(vec_dot_q5_0, BK_Q5_0)
VD_BLOCKS(vec_dot_q8_0, BK_Q8_0)
VD_BLOCKS(vec_dot_q4_1, BK_Q4_1)
VD_BLOCKS(vec_dot_q5_1, BK_Q5_1)
VD_KQUANT(vec_dot_q4_K, vd_q4_K)
VD_KQUANT(vec_dot_q5_K, vd_q5_K)
VD_KQUANT(vec_dot_q6_K, vd_q6_K)

#define AVX512_TABLE(sfx)                                                                          \
    {                                                                                              \
        [KERN_F32] = {.vec_dot = vec_dot_f32, .attn = attn_f32, .gemm = gemm_f32},                 \
        [KERN_F16] = {.vec_dot = vec_dot_f16,                                                      \
                      .from_float = from_float_f16,                                                \
                      .to_float = to_float_f16,                                                    \
                      .attn = attn_f16,                                                            \
                      .gemm = gemm_f16},                                                           \
        [KERN_BF16] = {.vec_dot = vec_dot_bf16,                                                    \
                       .from_float = from_float_bf16,                                              \
                       .to_float = to_float_bf16},                                                 \
        [KERN_Q4_0] = {.vec_dot = vec_dot_q4_0_##sfx},                                             \
        [KERN_Q4_1] = {.vec_dot = vec_dot_q4_1_##sfx},                                             \
        [KERN_Q5_0] = {.vec_dot = vec_dot_q5_0_##sfx},                                             \
        [KERN_Q5_1] = {.vec_dot = vec_dot_q5_1_##sfx},                                             \
        [KERN_Q8_0] = {.vec_dot = vec_dot_q8_0_##sfx, .from_float = from_float_q8_0},              \
        [KERN_Q8_1] = {.from_float = from_float_q8_1},                                             \
        [KERN_Q4_K] = {.vec_dot = vec_dot_q4_K_##sfx},                                             \
        [KERN_Q5_K] = {.vec_dot = vec_dot_q5_K_##sfx},                                             \
        [KERN_Q6_K] = {.vec_dot = vec_dot_q6_K_##sfx},                                             \
        [KERN_Q8_K] = {.from_float = from_float_q8_K},                                             \
    }

const kern_fns kern_avx512_fns[KERN_ISA_NTYPES] = AVX512_TABLE(plain);
const kern_fns kern_avx512_vnni_fns[KERN_ISA_NTYPES] = AVX512_TABLE(vnni);

bool kern_avx512_usable(void) {
    return kern_avx2_usable() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
}

bool kern_avx512_vnni_usable(void) {
    return kern_avx512_usable() && __builtin_cpu_supports("avx512vnni");
}

void kern_avx512_install(kern_fns *table) {
    kern_isa_apply(table, kern_avx512_fns);
    if (__builtin_cpu_supports("avx512bf16")) table[KERN_BF16].vec_dot = vec_dot_bf16_dp;
}

void kern_avx512_vnni_install(kern_fns *table) {
    kern_isa_apply(table, kern_avx512_vnni_fns);
    /* the integer formats' vec_dot and gemm share one arithmetic (above) */
#define SET_CANON(T, name)                                                                         \
    table[T].vec_dot = vec_dot_##name##_canon;                                                     \
    table[T].gemm = gemm_##name;
    SET_CANON(KERN_Q8_0, q8_0)
    SET_CANON(KERN_Q4_0, q4_0)
    SET_CANON(KERN_Q5_0, q5_0)
    SET_CANON(KERN_Q4_K, q4_K)
    SET_CANON(KERN_Q5_K, q5_K)
    SET_CANON(KERN_Q6_K, q6_K)
#undef SET_CANON
    if (__builtin_cpu_supports("avx512bf16")) table[KERN_BF16].vec_dot = vec_dot_bf16_dp;
}
