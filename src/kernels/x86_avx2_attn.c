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
 *
 * Also the Q8_0 cache (kernels.h, attn_q8.h): a group of 4 dims of a tile's
 * keys is two 32-byte loads of 8 keys; the key bytes take the signs of the
 * query bytes (vpsignb) and meet their magnitudes in vpmaddubsw, whose pair
 * sums cannot saturate (|q|, |k| <= 127). V rows are widened to floats 8
 * values at a time and added with each row's weight times the block's
 * scale.
 */
#include "kernels/attn_q8.h"
#include "kernels/kern_ref.h"
#include "kernels/x86_avx2.h"

#include <assert.h>
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
    assert(nr >= 1 && nr <= AR && hd >= 16 && hd % 16 == 0 && hd <= KERN_ATTN_MAX_HD);
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
        if (a->softcap > 0.0f) kern_softcap(sc[r] + row->lo, row->hi - row->lo + 1, a->softcap);
        row_softmax(sc[r], row->lo, row->hi, a->scale, f16);
        for (int p = lo; p < row->lo; p++) sc[r][p] = 0.0f;
        for (int p = row->hi + 1; p <= hi; p++) sc[r][p] = 0.0f;
    }
    tile_values_any(a, f16, sc, acc_buf, lo, hi);
}

void kern_avx2_attn_f32(const kern_attn_args *a) { attn_tile(a, false); }
void kern_avx2_attn_f16(const kern_attn_args *a) { attn_tile(a, true); }

/* ---- Q8_0 cache ---- */

enum { QB = KERN_KV_Q8_BLOCK_BYTES, QMAXG = KERN_ATTN_MAX_HD / 4 };

/* The rows' queries: per group of 4 dims the 4 bytes as one int32 (for
 * their signs) and their magnitudes. */
typedef struct q8_rows {
    kern_q8_query q[AR];
    int32_t w[AR][QMAXG], mag[AR][QMAXG];
} q8_rows;

static void q8_prepare(const kern_attn_args *a, q8_rows *qr) {
    for (int r = 0; r < a->n_rows; r++) {
        kern_attn_q8_query(a->rows[r].q, a->hd, &qr->q[r]);
        for (int g = 0; g < a->hd / 4; g++) {
            int8_t b[4];
            memcpy(b, &qr->q[r].blk[g / 8].qs[(g % 8) * 4], 4);
            memcpy(&qr->w[r][g], b, 4);
            for (int i = 0; i < 4; i++) b[i] = (int8_t)(b[i] < 0 ? -b[i] : b[i]); /* |q| <= 127 */
            memcpy(&qr->mag[r][g], b, 4);
        }
    }
}

AI float q8_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* s[r][h] = kernels.h's s_p of row r for keys 8h..8h+7 of the tile. */
AI void q8_tile_scores(const uint8_t *tile, int nb, const q8_rows *qr, const int nr,
                       __m256 s[][2]) {
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) s[r][0] = s[r][1] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *g = tile + (size_t)b * QB * AT;
        const __m256 dk[2] = {_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g)),
                              _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16)))};
        __m256i acc[AR][2];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        for (int i = 0; i < 8; i++) {
            const __m256i kv[2] = {load256(g + 2 * AT + i * 4 * AT),
                                   load256(g + 2 * AT + i * 4 * AT + 32)};
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256i qs = _mm256_set1_epi32(qr->w[r][b * 8 + i]);
                const __m256i mag = _mm256_set1_epi32(qr->mag[r][b * 8 + i]);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const __m256i p16 = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(kv[h], qs));
                    acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(p16, ones));
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const __m256 dq = _mm256_set1_ps(qr->q[r].d[b]);
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                s[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][h]), _mm256_mul_ps(dk[h], dq),
                                          s[r][h]);
        }
    }
}

AI void q8_scores(const kern_attn_args *a, const q8_rows *qr, float *const *sc, int lo, int hi,
                  const int nr) {
    const int nb = a->hd / QK8_0;
    const uint8_t *k = a->k;
    for (int t = lo / AT; t <= hi / AT; t++) {
        __m256 s[AR][2];
        q8_tile_scores(k + (size_t)t * (size_t)nb * QB * AT, nb, qr, nr, s);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            if (t * AT <= a->rows[r].hi && t * AT + AT - 1 >= a->rows[r].lo) {
                _mm256_storeu_ps(sc[r] + t * AT, s[r][0]);
                _mm256_storeu_ps(sc[r] + t * AT + 8, s[r][1]);
            }
    }
}

AI __m256 q8_widen8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* out_r = sum over p of w_r[p] times V row p (w_r zero outside row r's
 * keys, which adds exact zeros), 16 dims (half a block) of every row per
 * pass over the positions, so that 4 rows' accumulators stay in the 16
 * registers; nr is a constant. */
AI void q8_values(const kern_attn_args *a, float *const *w, int lo, int hi, const int nr) {
    const size_t row = (size_t)(a->hd / QK8_0) * QB;
    const uint8_t *v = a->v;
    for (int c0 = 0; c0 < a->hd; c0 += 16) {
        const size_t off = (size_t)(c0 / QK8_0) * QB; /* the block's scale */
        const int in = 2 + c0 % QK8_0;                /* its 16 values */
        __m256 acc[AR][2];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int p = lo; p <= hi; p++) {
            const uint8_t *blk = v + (size_t)p * row + off;
            const float dv = q8_f16(blk);
            const __m256 x0 = q8_widen8(blk + in), x1 = q8_widen8(blk + in + 8);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256 c = _mm256_set1_ps(w[r][p] * dv);
                acc[r][0] = _mm256_fmadd_ps(x0, c, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x1, c, acc[r][1]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            _mm256_storeu_ps(a->rows[r].out + c0, acc[r][0]);
            _mm256_storeu_ps(a->rows[r].out + c0 + 8, acc[r][1]);
        }
    }
}

void kern_avx2_attn_q8_0(const kern_attn_args *a) {
    const int nr = a->n_rows;
    assert(nr >= 1 && nr <= AR && a->hd >= QK8_0 && a->hd % QK8_0 == 0 &&
           a->hd <= KERN_ATTN_MAX_HD);
    float *sc[AR];
    q8_rows qr;
    q8_prepare(a, &qr);
    int lo = a->rows[0].lo, hi = a->rows[0].hi;
    for (int r = 0; r < nr; r++) {
        sc[r] = a->work + (size_t)r * (size_t)a->n_pos;
        lo = a->rows[r].lo < lo ? a->rows[r].lo : lo;
        hi = a->rows[r].hi > hi ? a->rows[r].hi : hi;
    }
    switch (nr) {
    case 4: q8_scores(a, &qr, sc, lo, hi, 4); break;
    case 3: q8_scores(a, &qr, sc, lo, hi, 3); break;
    case 2: q8_scores(a, &qr, sc, lo, hi, 2); break;
    default: q8_scores(a, &qr, sc, lo, hi, 1); break;
    }
    for (int r = 0; r < nr; r++) {
        const kern_attn_row *row = &a->rows[r];
        if (a->softcap > 0.0f) kern_softcap(sc[r] + row->lo, row->hi - row->lo + 1, a->softcap);
        row_softmax(sc[r], row->lo, row->hi, a->scale, false);
        for (int p = lo; p < row->lo; p++) sc[r][p] = 0.0f;
        for (int p = row->hi + 1; p <= hi; p++) sc[r][p] = 0.0f;
    }
    switch (nr) {
    case 4: q8_values(a, sc, lo, hi, 4); break;
    case 3: q8_values(a, sc, lo, hi, 3); break;
    case 2: q8_values(a, sc, lo, hi, 2); break;
    default: q8_values(a, sc, lo, hi, 1); break;
    }
}
