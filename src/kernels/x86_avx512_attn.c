/*
 * x86_avx512_attn.c - kern_attn_tile on AVX-512 (kern_fns.attn of F32 and
 * F16 caches): attention of up to KERN_ATTN_ROWS query rows over a tiled
 * KV cache, bit for bit as ops.c's kern_attn_* (llama.cpp's order).
 *
 * The arithmetic of ops.c's kern_attn_* (llama.cpp's), vectorised across the
 * 16 keys of a tile: K is stored transposed, so lane i of a vector is key i,
 * each of ggml's per-key accumulators becomes one vector and its horizontal
 * sums become the same additions between vectors. The bits equal ops.c's.
 * The scores of all rows share each tile's conversion; the weighted sum of V
 * runs one accumulator chain (lane j of the tile, accumulator set) at a time
 * over the positions of that chain, in ggml's order, sharing each V row
 * between the rows.
 *
 * Also the Q8_0 cache (kernels.h, attn_q8.h): the scores of a tile's 16 keys
 * are 16 int32 lanes of one accumulator per row, a group of 4 dims of the
 * 16 keys one 64-byte load; with VNNI the keys are made unsigned (+128)
 * for vpdpbusd and 128 times the query block's sum is taken off after,
 * without it the key bytes take the sign of the query bytes for
 * vpmaddubsw. V rows are widened to floats 16 values at a time and added
 * with each row's weight times the block's scale. */

#include "kernels/attn_q8.h"
#include "kernels/x86_avx512.h"

#include <assert.h>
#include <math.h>

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
    assert(nr >= 1 && nr <= AR && hd >= 16 && hd % 16 == 0 && hd <= KERN_ATTN_MAX_HD);
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
        if (a->softcap > 0.0f) kern_softcap(sc[r] + row->lo, row->hi - row->lo + 1, a->softcap);
        row_softmax(sc[r], row->lo, row->hi, a->scale, f16);
        for (int p = lo; p < row->lo; p++) sc[r][p] = 0.0f;
        for (int p = row->hi + 1; p <= hi; p++) sc[r][p] = 0.0f;
    }
    tile_values_any(a, f16, sc, acc_buf, lo, hi);
}

void kern_avx512_attn_f32(const kern_attn_args *a) { attn_tile(a, false); }
void kern_avx512_attn_f16(const kern_attn_args *a) { attn_tile(a, true); }

/* ---- Q8_0 cache ---- */

enum { QB = KERN_KV_Q8_BLOCK_BYTES, QMAXG = KERN_ATTN_MAX_HD / 4 };

/* The rows' queries as the score loop reads them: per group of 4 dims, the
 * 4 bytes as one int32 (VNNI) or their magnitudes and the 64-lane mask of
 * the key bytes that take a minus sign (without VNNI). */
typedef struct q8_rows {
    kern_q8_query q[AR];
    int32_t w[AR][QMAXG];
    __mmask64 neg[AR][QMAXG];
} q8_rows;

static void q8_prepare(const kern_attn_args *a, q8_rows *qr, bool vnni) {
    for (int r = 0; r < a->n_rows; r++) {
        kern_attn_q8_query(a->rows[r].q, a->hd, &qr->q[r]);
        for (int g = 0; g < a->hd / 4; g++) {
            int8_t b[4];
            memcpy(b, &qr->q[r].blk[g / 8].qs[(g % 8) * 4], 4);
            if (vnni) {
                memcpy(&qr->w[r][g], b, 4);
                continue;
            }
            unsigned nib = 0;
            for (int i = 0; i < 4; i++) {
                nib |= (unsigned)(b[i] < 0) << i;
                b[i] = (int8_t)(b[i] < 0 ? -b[i] : b[i]); /* never -128: |q| <= 127 */
            }
            memcpy(&qr->w[r][g], b, 4);
            qr->neg[r][g] = (__mmask64)(nib * 0x1111111111111111ULL);
        }
    }
}

/* s[r] = kernels.h's s_p of row r for the 16 keys of the tile at `tile`. */
AI void q8_tile_scores(const uint8_t *tile, int nb, const q8_rows *qr, const int nr, __m512 *s,
                       bool vnni) {
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) s[r] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *g = tile + (size_t)b * QB * AT;
        const __m512 dk = _mm512_cvtph_ps(load256(g));
        __m512i acc[AR];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m512i kv = load512(g + 2 * AT + i * 4 * AT);
            if (vnni) {
                const __m512i ku = _mm512_xor_si512(kv, _mm512_set1_epi8((char)0x80));
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++)
                    acc[r] =
                        _mm512_dpbusd_epi32(acc[r], ku, _mm512_set1_epi32(qr->w[r][b * 8 + i]));
            } else {
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) {
                    const __m512i sk =
                        _mm512_mask_sub_epi8(kv, qr->neg[r][b * 8 + i], _mm512_setzero_si512(), kv);
                    acc[r] = dp_us(acc[r], _mm512_set1_epi32(qr->w[r][b * 8 + i]), sk, false);
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            __m512i isum = acc[r];
            if (vnni) isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(128 * qr->q[r].sum[b]));
            s[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum),
                                   _mm512_mul_ps(dk, _mm512_set1_ps(qr->q[r].d[b])), s[r]);
        }
    }
}

AI __m512 q8_widen16(const uint8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/* out_r = sum over p of w_r[p] times V row p (w_r zero outside row r's
 * keys, which adds exact zeros), nbp blocks (1 or 2) of every row per
 * pass over the positions; nr and nbp are constants. */
AI void q8_values(const kern_attn_args *a, float *const *w, int lo, int hi, const int nr,
                  const int nbp) {
    const int nb = a->hd / QK8_0;
    const size_t row = (size_t)nb * QB;
    const uint8_t *v = a->v;
    for (int b0 = 0; b0 < nb; b0 += nbp) {
        __m512 acc[AR][4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int c = 0; c < 2 * nbp; c++) acc[r][c] = _mm512_setzero_ps();
        for (int p = lo; p <= hi; p++) {
            const uint8_t *vb = v + (size_t)p * row + (size_t)b0 * QB;
#pragma GCC unroll 2
            for (int bb = 0; bb < nbp; bb++) {
                const uint8_t *blk = vb + (size_t)bb * QB;
                const float dv = f16_at(blk);
                const __m512 x0 = q8_widen16(blk + 2), x1 = q8_widen16(blk + 18);
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) {
                    const __m512 c = _mm512_set1_ps(w[r][p] * dv);
                    acc[r][2 * bb] = _mm512_fmadd_ps(x0, c, acc[r][2 * bb]);
                    acc[r][2 * bb + 1] = _mm512_fmadd_ps(x1, c, acc[r][2 * bb + 1]);
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int c = 0; c < 2 * nbp; c++)
                _mm512_storeu_ps(a->rows[r].out + (size_t)b0 * QK8_0 + 16 * c, acc[r][c]);
    }
}

static void q8_values_any(const kern_attn_args *a, float *const *w, int lo, int hi) {
    const bool two = (a->hd / QK8_0) % 2 == 0;
    switch (a->n_rows * 2 + two) {
    case 8 + 1: q8_values(a, w, lo, hi, 4, 2); break;
    case 8: q8_values(a, w, lo, hi, 4, 1); break;
    case 6 + 1: q8_values(a, w, lo, hi, 3, 2); break;
    case 6: q8_values(a, w, lo, hi, 3, 1); break;
    case 4 + 1: q8_values(a, w, lo, hi, 2, 2); break;
    case 4: q8_values(a, w, lo, hi, 2, 1); break;
    case 2 + 1: q8_values(a, w, lo, hi, 1, 2); break;
    default: q8_values(a, w, lo, hi, 1, 1); break;
    }
}

AI void q8_scores(const kern_attn_args *a, const q8_rows *qr, float *const *sc, int lo, int hi,
                  const int nr, bool vnni) {
    const int nb = a->hd / QK8_0;
    const uint8_t *k = a->k;
    for (int t = lo / AT; t <= hi / AT; t++) {
        __m512 s[AR];
        q8_tile_scores(k + (size_t)t * (size_t)nb * QB * AT, nb, qr, nr, s, vnni);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            if (t * AT <= a->rows[r].hi && t * AT + AT - 1 >= a->rows[r].lo)
                _mm512_storeu_ps(sc[r] + t * AT, s[r]);
    }
}

AI void attn_q8(const kern_attn_args *a, bool vnni) {
    const int nr = a->n_rows;
    assert(nr >= 1 && nr <= AR && a->hd >= QK8_0 && a->hd % QK8_0 == 0 &&
           a->hd <= KERN_ATTN_MAX_HD);
    float *sc[AR];
    q8_rows qr;
    q8_prepare(a, &qr, vnni);
    int lo = a->rows[0].lo, hi = a->rows[0].hi;
    for (int r = 0; r < nr; r++) {
        sc[r] = a->work + (size_t)r * (size_t)a->n_pos;
        lo = a->rows[r].lo < lo ? a->rows[r].lo : lo;
        hi = a->rows[r].hi > hi ? a->rows[r].hi : hi;
    }
    switch (nr) {
    case 4: q8_scores(a, &qr, sc, lo, hi, 4, vnni); break;
    case 3: q8_scores(a, &qr, sc, lo, hi, 3, vnni); break;
    case 2: q8_scores(a, &qr, sc, lo, hi, 2, vnni); break;
    default: q8_scores(a, &qr, sc, lo, hi, 1, vnni); break;
    }
    for (int r = 0; r < nr; r++) {
        const kern_attn_row *row = &a->rows[r];
        if (a->softcap > 0.0f) kern_softcap(sc[r] + row->lo, row->hi - row->lo + 1, a->softcap);
        row_softmax(sc[r], row->lo, row->hi, a->scale, false);
        for (int p = lo; p < row->lo; p++) sc[r][p] = 0.0f;
        for (int p = row->hi + 1; p <= hi; p++) sc[r][p] = 0.0f;
    }
    q8_values_any(a, sc, lo, hi);
}

void kern_avx512_attn_q8_0(const kern_attn_args *a) { attn_q8(a, false); }
void kern_avx512_vnni_attn_q8_0(const kern_attn_args *a) { attn_q8(a, true); }
