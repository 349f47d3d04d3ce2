/*
 * arm_neon_attn.c - kern_attn_tile for AArch64 NEON (+fp16): the arithmetic
 * of ops.c's kern_attn_* (llama.cpp's order), vectorised across the 16 keys
 * of a tile of the transposed K cache as four vectors of 4 lanes. Lane i of
 * a vector is key i, so each of ggml's per-key accumulators becomes one
 * vector and its horizontal sums become the same additions between
 * vectors: the bits equal ops.c's (vfmaq is a fused multiply-add, as
 * fmaf; conversions to f16 round to nearest even in the default FPCR mode).
 * The scores of all rows share each tile's conversion; the weighted sum of
 * V runs one accumulator chain (lane j of the tile, accumulator set) at a
 * time over the positions of that chain, sharing each V row between the
 * rows. x86_avx2_attn.c and x86_avx512.c do the same with 8 and 16 lanes.
 *
 * Also the Q8_0 cache (kernels.h, attn_q8.h): a group of 4 dims of a tile's
 * keys is four 16-byte loads of 4 keys, each met by the query's 4 bytes in
 * one sdot (signed by signed, no offset). V rows are widened to floats and
 * added with each row's weight times the block's scale.
 */
#include "kernels/arm_neon_priv.h"
#include "kernels/attn_q8.h"
#include "kernels/kern_ref.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

enum { AT = KERN_KV_TILE, AR = KERN_ATTN_ROWS };

/* 4 cache elements (f16 or f32) as floats. */
AI float32x4_t cache4(const uint8_t *p, bool f16) {
    return f16 ? vcvt_f32_f16(vld1_f16((const float16_t *)p)) : vld1q_f32((const float *)p);
}

AI float32x4_t round_f16(float32x4_t x) { return vcvt_f32_f16(vcvt_f16_f32(x)); }

/* kern_ggml_hsum16 lane by lane over 16 vectors. */
AI float32x4_t tree16(const float32x4_t *v) {
    float32x4_t t[8], u[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) t[i] = vaddq_f32(v[i + 8], v[i]);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) u[i] = vaddq_f32(t[i + 4], t[i]);
    return vaddq_f32(vaddq_f32(u[0], u[2]), vaddq_f32(u[1], u[3]));
}

/* kern_ggml_hsum16 of 16 values. */
static float hsum16_ggml(const float v[16]) {
    const float32x4_t t0 = vaddq_f32(vld1q_f32(v + 8), vld1q_f32(v));
    const float32x4_t t1 = vaddq_f32(vld1q_f32(v + 12), vld1q_f32(v + 4));
    const float32x4_t u = vaddq_f32(t1, t0);
    return (vgetq_lane_f32(u, 0) + vgetq_lane_f32(u, 2)) +
           (vgetq_lane_f32(u, 1) + vgetq_lane_f32(u, 3));
}

/* kern_ggml_expf on 4 lanes; lanes outside 2^n's normal range take the
 * scalar function. */
AI float32x4_t ggml_exp4(float32x4_t x) {
    const float32x4_t r = vdupq_n_f32(0x1.8p23f);
    const float32x4_t z = vfmaq_f32(r, x, vdupq_n_f32(0x1.715476p+0f));
    const float32x4_t n = vsubq_f32(z, r);
    const float32x4_t b =
        vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(0x1.62e4p-1f)), n, vdupq_n_f32(0x1.7f7d1cp-20f));
    const float32x4_t u = vmulq_f32(b, b);
    const float32x4_t p5 = vfmaq_f32(vdupq_n_f32(0x1.573e2ep-5f), vdupq_n_f32(0x1.0e4020p-7f), b);
    const float32x4_t p3 = vfmaq_f32(vdupq_n_f32(0x1.fffdb6p-2f), vdupq_n_f32(0x1.555e66p-3f), b);
    const float32x4_t p1 = vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0x1.ffffecp-1f), b);
    const float32x4_t j = vfmaq_f32(p1, vfmaq_f32(p3, p5, u), u);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t y = vmulq_f32(j, vreinterpretq_f32_s32(e));
    const uint32x4_t ok =
        vandq_u32(vcgeq_f32(n, vdupq_n_f32(-126.0f)), vcleq_f32(n, vdupq_n_f32(127.0f)));
    if (vminvq_u32(ok) == 0) {
        float xs[4], ys[4];
        uint32_t oks[4];
        vst1q_f32(xs, x);
        vst1q_f32(ys, y);
        vst1q_u32(oks, ok);
        for (int i = 0; i < 4; i++)
            if (!oks[i]) ys[i] = kern_ggml_expf(xs[i]);
        y = vld1q_f32(ys);
    }
    return y;
}

/* Scores of one row against 4 keys of a tile (kt: [hd][16] floats, from the
 * first of the 4). `tiny`: tinyBLAS's order (16 accumulators, lane r of the
 * dimension); otherwise ggml_vec_dot's (four accumulators over 64-element
 * steps, then the rest added in float for an f32 cache, in double for
 * f16). Each dimension lane's chain is independent, so they run one after
 * the other and meet in the tree. */
static float32x4_t tile_scores4(const float *kt, const float *q, int hd, bool tiny, bool f16) {
    float32x4_t v[16];
    if (tiny) {
        for (int r = 0; r < 16; r++) {
            float32x4_t a = vdupq_n_f32(0.0f);
            for (int e = 0; e < hd; e += 16)
                a = vfmaq_n_f32(a, vld1q_f32(kt + (e + r) * AT), q[e + r]);
            v[r] = a;
        }
        return tree16(v);
    }
    const int np = hd & ~63;
    for (int r = 0; r < 16; r++) {
        float32x4_t a[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                            vdupq_n_f32(0.0f)};
        for (int e = 0; e < np; e += 64)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const int i = e + 16 * c + r;
                a[c] = vfmaq_n_f32(a[c], vld1q_f32(kt + i * AT), q[i]);
            }
        v[r] = vaddq_f32(vaddq_f32(a[0], a[2]), vaddq_f32(a[1], a[3]));
    }
    float32x4_t s = tree16(v);
    if (!f16) {
        for (int e = np; e < hd; e++) s = vaddq_f32(s, vmulq_n_f32(vld1q_f32(kt + e * AT), q[e]));
        return s;
    }
    if (np == hd) return s;
    float64x2_t lo = vcvt_f64_f32(vget_low_f32(s)), hi = vcvt_high_f64_f32(s);
    for (int e = np; e < hd; e++) {
        const float32x4_t p = vmulq_n_f32(vld1q_f32(kt + e * AT), q[e]);
        lo = vaddq_f64(lo, vcvt_f64_f32(vget_low_f32(p)));
        hi = vaddq_f64(hi, vcvt_high_f64_f32(p));
    }
    return vcvt_high_f32_f64(vcvt_f32_f64(lo), hi);
}

/* kern_attn_softmax over sc[lo..hi] (indexed by position), a group of 16
 * positions at a time through a local copy whose lanes outside lo..hi are
 * zero; with an f16 cache the weights are then rounded to f16, as
 * kern_attn_values does. */
static void row_softmax(float *sc, int lo, int hi, float scale, bool f16) {
    const int g0 = lo & ~(AT - 1);
    float max = -INFINITY;
    for (int p = lo; p <= hi; p++) {
        sc[p] *= scale;
        max = sc[p] > max ? sc[p] : max;
    }
    const float32x4_t vmax = vdupq_n_f32(max);
    double sum = 0.0;
    for (int g = g0; g <= hi; g += AT) {
        float v[AT];
        const int a = lo > g ? lo - g : 0, b = hi - g < AT - 1 ? hi - g : AT - 1;
        for (int i = 0; i < AT; i++) v[i] = i >= a && i <= b ? sc[g + i] : 0.0f;
#pragma GCC unroll 4
        for (int i = 0; i < AT; i += 4)
            vst1q_f32(v + i, ggml_exp4(vsubq_f32(vld1q_f32(v + i), vmax)));
        for (int i = 0; i < AT; i++) {
            if (i < a || i > b)
                v[i] = 0.0f;
            else
                sc[g + i] = v[i];
        }
        sum += (double)hsum16_ggml(v);
    }
    const float inv = (float)(1.0 / sum);
    int p = lo;
    for (; p + 4 <= hi + 1; p += 4) {
        float32x4_t x = vmulq_n_f32(vld1q_f32(sc + p), inv);
        if (f16) x = round_f16(x);
        vst1q_f32(sc + p, x);
    }
    for (; p <= hi; p++) {
        const float x = sc[p] * inv;
        sc[p] = f16 ? kern_f16_to_f32(kern_f32_to_f16(x)) : x;
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
                float32x4_t acc[AR][4];
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
                    for (int c = 0; c < 4; c++) acc[r][c] = vdupq_n_f32(0.0f);
                for (int b = b0 + ((set - b0 % nsets) + nsets) % nsets; b <= b1; b += nsets) {
                    const int p = b * AT + j;
                    if (p < lo || p > hi) continue;
                    const uint8_t *vr = v + ((size_t)p * (size_t)hd + (size_t)c0) * es;
                    float32x4_t x[4];
#pragma GCC unroll 4
                    for (int c = 0; c < 4; c++) x[c] = cache4(vr + 4 * c * es, f16);
#pragma GCC unroll 4
                    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
                        for (int c = 0; c < 4; c++)
                            acc[r][c] = vfmaq_n_f32(acc[r][c], x[c], w[r][p]);
                }
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
                    for (int c = 0; c < 4; c++)
                        vst1q_f32(acc_buf + ((size_t)(r * 4 + set) * AT + j) * hd + c0 + 4 * c,
                                  acc[r][c]);
            }
    const size_t st = (size_t)AT * hd; /* from one set to the next */
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < hd; c += 4) {
            float32x4_t l[16];
            const float *ab = acc_buf + (size_t)r * 4 * st + c;
#pragma GCC unroll 16
            for (int j = 0; j < AT; j++) {
                const float *aj = ab + (size_t)j * hd;
                if (nsets == 1)
                    l[j] = vld1q_f32(aj);
                else
                    l[j] = vaddq_f32(vaddq_f32(vld1q_f32(aj), vld1q_f32(aj + 2 * st)),
                                     vaddq_f32(vld1q_f32(aj + st), vld1q_f32(aj + 3 * st)));
            }
            vst1q_f32(a->rows[r].out + c, tree16(l));
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
    _Alignas(16) float qr[AR][KERN_ATTN_MAX_HD];
    _Alignas(16) float kbuf[AT * KERN_ATTN_MAX_HD];
    int lo = a->rows[0].lo, hi = a->rows[0].hi;
    for (int r = 0; r < nr; r++) {
        const kern_attn_row *row = &a->rows[r];
        sc[r] = a->work + (size_t)r * (size_t)a->n_pos;
        lo = row->lo < lo ? row->lo : lo;
        hi = row->hi > hi ? row->hi : hi;
        for (int e = 0; e < hd; e += 4) { /* an f16 cache meets q rounded to f16 */
            float32x4_t x = vld1q_f32(row->q + e);
            if (f16) x = round_f16(x);
            vst1q_f32(qr[r] + e, x);
        }
    }
    const uint8_t *k = a->k;
    const size_t es = f16 ? 2 : sizeof(float);
    for (int b = lo / AT; b <= hi / AT; b++) {
        const uint8_t *kb = k + (size_t)b * AT * (size_t)hd * es;
        const float *kt = (const float *)kb;
        if (f16) {
            for (int e = 0; e < hd * AT; e += 4)
                vst1q_f32(kbuf + e, cache4(kb + (size_t)e * es, true));
            kt = kbuf;
        }
        for (int r = 0; r < nr; r++) {
            if (b * AT > a->rows[r].hi || b * AT + AT - 1 < a->rows[r].lo) continue;
            const bool tiny = f16 && a->batch;
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++)
                vst1q_f32(sc[r] + b * AT + 4 * h, tile_scores4(kt + 4 * h, qr[r], hd, tiny, f16));
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

void kern_neon_attn_f32(const kern_attn_args *a) { attn_tile(a, false); }
void kern_neon_attn_f16(const kern_attn_args *a) { attn_tile(a, true); }

/* ---- Q8_0 cache ---- */

enum { QB = KERN_KV_Q8_BLOCK_BYTES, QMAXG = KERN_ATTN_MAX_HD / 4 };

/* s[r][h] = kernels.h's s_p of row r for keys 4h..4h+3 of the tile;
 * w[r][g]: row r's bytes of dim group g as one int32. */
AI void q8_tile_scores(const uint8_t *tile, int nb, const kern_q8_query *q,
                       const int32_t (*w)[QMAXG], const int nr, float32x4_t s[][4]) {
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) s[r][h] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        const uint8_t *g = tile + (size_t)b * QB * AT;
        float32x4_t dk[4];
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) dk[h] = vcvt_f32_f16(vld1_f16((const float16_t *)(g + 8 * h)));
        int32x4_t acc[AR][4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++) acc[r][h] = vdupq_n_s32(0);
        for (int i = 0; i < 8; i++) {
            int8x16_t kv[4];
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++)
                kv[h] = vld1q_s8((const int8_t *)(g + 2 * AT + i * 4 * AT + 16 * h));
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const int8x16_t qb = vreinterpretq_s8_s32(vdupq_n_s32(w[r][b * 8 + i]));
#pragma GCC unroll 4
                for (int h = 0; h < 4; h++) acc[r][h] = vdotq_s32(acc[r][h], kv[h], qb);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const float32x4_t dq = vdupq_n_f32(q[r].d[b]);
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++)
                s[r][h] = vfmaq_f32(s[r][h], vcvtq_f32_s32(acc[r][h]), vmulq_f32(dk[h], dq));
        }
    }
}

AI void q8_scores(const kern_attn_args *a, const kern_q8_query *q, const int32_t (*w)[QMAXG],
                  float *const *sc, int lo, int hi, const int nr) {
    const int nb = a->hd / QK8_0;
    const uint8_t *k = a->k;
    for (int t = lo / AT; t <= hi / AT; t++) {
        float32x4_t s[AR][4];
        q8_tile_scores(k + (size_t)t * (size_t)nb * QB * AT, nb, q, w, nr, s);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            if (t * AT <= a->rows[r].hi && t * AT + AT - 1 >= a->rows[r].lo)
#pragma GCC unroll 4
                for (int h = 0; h < 4; h++) vst1q_f32(sc[r] + t * AT + 4 * h, s[r][h]);
    }
}

/* out_r = sum over p of w_r[p] times V row p (w_r zero outside row r's
 * keys, which adds exact zeros), 16 dims (half a block) of every row per
 * pass over the positions; nr is a constant. */
AI void q8_values(const kern_attn_args *a, float *const *w, int lo, int hi, const int nr) {
    const size_t row = (size_t)(a->hd / QK8_0) * QB;
    const uint8_t *v = a->v;
    for (int c0 = 0; c0 < a->hd; c0 += 16) {
        const size_t off = (size_t)(c0 / QK8_0) * QB; /* the block's scale */
        const int in = 2 + c0 % QK8_0;                /* its 16 values */
        float32x4_t acc[AR][4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) acc[r][i] = vdupq_n_f32(0.0f);
        for (int p = lo; p <= hi; p++) {
            const uint8_t *blk = v + (size_t)p * row + off;
            uint16_t h;
            memcpy(&h, blk, sizeof h);
            const float dv = kern_f16_to_f32(h);
            const int8x16_t b8 = vld1q_s8((const int8_t *)(blk + in));
            const int16x8_t lo16 = vmovl_s8(vget_low_s8(b8)), hi16 = vmovl_s8(vget_high_s8(b8));
            const float32x4_t x[4] = {vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo16))),
                                      vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo16))),
                                      vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi16))),
                                      vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi16)))};
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const float32x4_t c = vdupq_n_f32(w[r][p] * dv);
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) acc[r][i] = vfmaq_f32(acc[r][i], x[i], c);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) vst1q_f32(a->rows[r].out + c0 + 4 * i, acc[r][i]);
    }
}

void kern_neon_attn_q8_0(const kern_attn_args *a) {
    const int nr = a->n_rows;
    float *sc[AR];
    kern_q8_query q[AR];
    int32_t w[AR][QMAXG];
    int lo = a->rows[0].lo, hi = a->rows[0].hi;
    for (int r = 0; r < nr; r++) {
        kern_attn_q8_query(a->rows[r].q, a->hd, &q[r]);
        for (int g = 0; g < a->hd / 4; g++) memcpy(&w[r][g], &q[r].blk[g / 8].qs[(g % 8) * 4], 4);
        sc[r] = a->work + (size_t)r * (size_t)a->n_pos;
        lo = a->rows[r].lo < lo ? a->rows[r].lo : lo;
        hi = a->rows[r].hi > hi ? a->rows[r].hi : hi;
    }
    const int32_t(*wc)[QMAXG] = (const int32_t(*)[QMAXG])w;
    switch (nr) {
    case 4: q8_scores(a, q, wc, sc, lo, hi, 4); break;
    case 3: q8_scores(a, q, wc, sc, lo, hi, 3); break;
    case 2: q8_scores(a, q, wc, sc, lo, hi, 2); break;
    default: q8_scores(a, q, wc, sc, lo, hi, 1); break;
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
