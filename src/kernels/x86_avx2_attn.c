/*
 * x86_avx2_attn.c - kern_attn_tile for AVX2 + FMA + F16C: the arithmetic of
 * ops.c's kern_attn_* (llama.cpp's order), vectorised across the 16 keys of a
 * tile of the transposed K cache as two halves of 8 lanes. Lane i of a
 * vector is key i, so each of ggml's per-key accumulators becomes one
 * vector and its horizontal sums become the same additions between
 * vectors: the bits equal ops.c's. The scores of all rows share each tile's
 * conversion; the weighted sum of V runs one accumulator chain (lane j of
 * the tile, accumulator set) at a time over the positions of that chain, in
 * ggml's order, sharing each V row between the rows. The AVX-512 file does
 * the same with 16 lanes.
 */
#include "kernels/kern_ref.h"
#include "kernels/x86_avx2.h"

#include <immintrin.h>
#include <math.h>

enum { AT = KERN_KV_TILE, AR = KERN_ATTN_ROWS };

/* 8 cache elements (f16 or f32) as floats. */
AI __m256 cache8(const uint8_t *p, bool f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p))
               : _mm256_loadu_ps((const float *)p);
}

/* f16 rounding of 8 floats (to nearest even, as kern_f32_to_f16). */
AI __m256 round_f16(__m256 x) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* kern_ggml_hsum16 lane by lane over 16 vectors. */
AI __m256 tree16(const __m256 *v) {
    __m256 t[8], u[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) t[i] = _mm256_add_ps(v[i + 8], v[i]);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) u[i] = _mm256_add_ps(t[i + 4], t[i]);
    return _mm256_add_ps(_mm256_add_ps(u[0], u[2]), _mm256_add_ps(u[1], u[3]));
}

/* kern_ggml_hsum16 of lanes 0..7 (lo) and 8..15 (hi). */
AI float hsum16_ggml(__m256 lo, __m256 hi) {
    const __m256 t = _mm256_add_ps(hi, lo);
    const __m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u)); /* u0 + u2, u1 + u3 */
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

/* kern_ggml_expf on 8 lanes; the `valid` lanes (bit mask) outside 2^n's
 * normal range take the scalar function. */
AI __m256 ggml_exp8(__m256 x, int valid) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 p5 =
        _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f));
    const __m256 p3 =
        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f));
    const __m256 p1 = _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f));
    const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p5, u, p3), u, p1);
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(j, _mm256_castsi256_ps(e));
    const __m256 out = _mm256_or_ps(_mm256_cmp_ps(n, _mm256_set1_ps(-126.0f), _CMP_NGE_UQ),
                                    _mm256_cmp_ps(n, _mm256_set1_ps(127.0f), _CMP_NLE_UQ));
    const int odd = valid & _mm256_movemask_ps(out);
    if (odd) {
        float xs[8], ys[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(ys, y);
        for (int i = 0; i < 8; i++)
            if (odd >> i & 1) ys[i] = kern_ggml_expf(xs[i]);
        y = _mm256_loadu_ps(ys);
    }
    return y;
}

/* All-ones in the lanes of positions g..g+7 that lie in lo..hi. */
AI __m256i lanes_in(int g, int lo, int hi) {
    const __m256i idx =
        _mm256_add_epi32(_mm256_set1_epi32(g), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32(hi + 1), idx));
}

/* Scores of one row against 8 keys of a tile (kt: [hd][16] floats, from the
 * first of the 8). `tiny`: tinyBLAS's order (16 accumulators, lane r of the
 * dimension); otherwise ggml_vec_dot's (four accumulators over 64-element
 * steps, then the rest added in float for an f32 cache, in double for
 * f16). Each dimension lane's chain is independent, so they run one after
 * the other and meet in the tree. */
static __m256 tile_scores8(const float *kt, const float *q, int hd, bool tiny, bool f16) {
    __m256 v[16];
    if (tiny) {
        for (int r = 0; r < 16; r++) {
            __m256 a = _mm256_setzero_ps();
            for (int e = 0; e < hd; e += 16)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(kt + (e + r) * AT), _mm256_set1_ps(q[e + r]),
                                    a);
            v[r] = a;
        }
        return tree16(v);
    }
    const int np = hd & ~63;
    for (int r = 0; r < 16; r++) {
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
        for (int e = 0; e < np; e += 64)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const int i = e + 16 * c + r;
                a[c] = _mm256_fmadd_ps(_mm256_loadu_ps(kt + i * AT), _mm256_set1_ps(q[i]), a[c]);
            }
        v[r] = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));
    }
    __m256 s = tree16(v);
    if (!f16) {
        for (int e = np; e < hd; e++)
            s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_loadu_ps(kt + e * AT), _mm256_set1_ps(q[e])));
        return s;
    }
    if (np == hd) return s;
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(s));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1));
    for (int e = np; e < hd; e++) {
        const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(kt + e * AT), _mm256_set1_ps(q[e]));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
    }
    return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
}

/* kern_attn_softmax over sc[lo..hi] (indexed by position); with an f16
 * cache the weights are then rounded to f16, as kern_attn_values does. */
static void row_softmax(float *sc, int lo, int hi, float scale, bool f16) {
    const int g0 = lo & ~(AT - 1);
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int g = g0; g <= hi; g += 8) {
        const __m256i m = lanes_in(g, lo, hi);
        const __m256 x = _mm256_mul_ps(_mm256_maskload_ps(sc + g, m), _mm256_set1_ps(scale));
        _mm256_maskstore_ps(sc + g, m, x);
        mx = _mm256_blendv_ps(mx, _mm256_max_ps(mx, x), _mm256_castsi256_ps(m));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const __m256 max = _mm256_set1_ps(_mm_cvtss_f32(m4));
    double sum = 0.0;
    for (int g = g0; g <= hi; g += AT) {
        __m256 v[2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i m = lanes_in(g + 8 * h, lo, hi);
            const __m256 x = _mm256_maskload_ps(sc + g + 8 * h, m);
            const int valid = _mm256_movemask_ps(_mm256_castsi256_ps(m));
            v[h] = _mm256_and_ps(ggml_exp8(_mm256_sub_ps(x, max), valid), _mm256_castsi256_ps(m));
            _mm256_maskstore_ps(sc + g + 8 * h, m, v[h]);
        }
        sum += (double)hsum16_ggml(v[0], v[1]);
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (int g = g0; g <= hi; g += 8) {
        const __m256i m = lanes_in(g, lo, hi);
        __m256 x = _mm256_mul_ps(_mm256_maskload_ps(sc + g, m), inv);
        if (f16) x = round_f16(x);
        _mm256_maskstore_ps(sc + g, m, x);
    }
}

/* out_r = sum_p w_r[p] v_p over positions lo..hi (w_r zero outside row r's
 * keys, which adds exact zeros). ggml's accumulators are (set, lane j):
 * one set for a batch, four (set (p / 16) % 4) for a single token; each is
 * a chain of multiply-adds over its positions in increasing order, kept
 * here for 16 output dims at a time, then they are added as
 * kern_attn_values does. nr rows (a constant). */
AI void tile_values(const kern_attn_args *a, bool f16, float *const *w, float *acc_buf, int lo,
                    int hi, const int nr) {
    const int hd = a->hd, nsets = a->batch ? 1 : 4;
    const size_t es = f16 ? 2 : sizeof(float);
    const uint8_t *v = a->v;
    const int b0 = lo / AT, b1 = hi / AT;
    for (int set = 0; set < nsets; set++)
        for (int j = 0; j < AT; j++)
            for (int c0 = 0; c0 < hd; c0 += 16) {
                __m256 acc[AR][2];
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
                for (int b = b0 + ((set - b0 % nsets) + nsets) % nsets; b <= b1; b += nsets) {
                    const int p = b * AT + j;
                    if (p < lo || p > hi) continue;
                    const uint8_t *vr = v + ((size_t)p * (size_t)hd + (size_t)c0) * es;
                    const __m256 x0 = cache8(vr, f16), x1 = cache8(vr + 8 * es, f16);
#pragma GCC unroll 4
                    for (int r = 0; r < nr; r++) {
                        const __m256 wr = _mm256_set1_ps(w[r][p]);
                        acc[r][0] = _mm256_fmadd_ps(x0, wr, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(x1, wr, acc[r][1]);
                    }
                }
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) {
                    float *dst = acc_buf + ((size_t)(r * 4 + set) * AT + j) * hd + c0;
                    _mm256_storeu_ps(dst, acc[r][0]);
                    _mm256_storeu_ps(dst + 8, acc[r][1]);
                }
            }
    const size_t st = (size_t)AT * hd; /* from one set to the next */
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < hd; c += 8) {
            __m256 l[16];
            const float *ab = acc_buf + (size_t)r * 4 * st + c;
#pragma GCC unroll 16
            for (int j = 0; j < AT; j++) {
                const float *aj = ab + (size_t)j * hd;
                if (nsets == 1)
                    l[j] = _mm256_loadu_ps(aj);
                else
                    l[j] = _mm256_add_ps(
                        _mm256_add_ps(_mm256_loadu_ps(aj), _mm256_loadu_ps(aj + 2 * st)),
                        _mm256_add_ps(_mm256_loadu_ps(aj + st), _mm256_loadu_ps(aj + 3 * st)));
            }
            _mm256_storeu_ps(a->rows[r].out + c, tree16(l));
        }
}

static void tile_values_any(const kern_attn_args *a, bool f16, float *const *w, float *acc_buf,
                            int lo, int hi) {
    switch (a->n_rows) {
    case 4: tile_values(a, f16, w, acc_buf, lo, hi, 4); break;
    case 3: tile_values(a, f16, w, acc_buf, lo, hi, 3); break;
    case 2: tile_values(a, f16, w, acc_buf, lo, hi, 2); break;
    default: tile_values(a, f16, w, acc_buf, lo, hi, 1); break;
    }
}

static void attn_tile(const kern_attn_args *a, bool f16) {
    const int hd = a->hd, nr = a->n_rows;
    float *sc[AR];
    float *acc_buf = a->work + (size_t)AR * (size_t)a->n_pos;
    _Alignas(32) float qr[AR][KERN_ATTN_MAX_HD];
    _Alignas(32) float kbuf[AT * KERN_ATTN_MAX_HD];
    int lo = a->rows[0].lo, hi = a->rows[0].hi;
    for (int r = 0; r < nr; r++) {
        const kern_attn_row *row = &a->rows[r];
        sc[r] = a->work + (size_t)r * (size_t)a->n_pos;
        lo = row->lo < lo ? row->lo : lo;
        hi = row->hi > hi ? row->hi : hi;
        for (int e = 0; e < hd; e += 8) { /* an f16 cache meets q rounded to f16 */
            __m256 x = _mm256_loadu_ps(row->q + e);
            if (f16) x = round_f16(x);
            _mm256_storeu_ps(qr[r] + e, x);
        }
    }
    const uint8_t *k = a->k;
    const size_t es = f16 ? 2 : sizeof(float);
    for (int b = lo / AT; b <= hi / AT; b++) {
        const uint8_t *kb = k + (size_t)b * AT * (size_t)hd * es;
        const float *kt = (const float *)kb;
        if (f16) {
            for (int e = 0; e < hd * AT; e += 8)
                _mm256_storeu_ps(kbuf + e, cache8(kb + (size_t)e * es, true));
            kt = kbuf;
        }
        for (int r = 0; r < nr; r++) {
            if (b * AT > a->rows[r].hi || b * AT + AT - 1 < a->rows[r].lo) continue;
            const bool tiny = f16 && a->batch;
            _mm256_storeu_ps(sc[r] + b * AT, tile_scores8(kt, qr[r], hd, tiny, f16));
            _mm256_storeu_ps(sc[r] + b * AT + 8, tile_scores8(kt + 8, qr[r], hd, tiny, f16));
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

void kern_avx2_attn_f32(const kern_attn_args *a) { attn_tile(a, false); }
void kern_avx2_attn_f16(const kern_attn_args *a) { attn_tile(a, true); }
