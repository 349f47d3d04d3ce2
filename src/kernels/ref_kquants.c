/*
 * ref_kquants.c - scalar references for the K-quant super-blocks of 256
 * elements: Q2_K (16 sub-blocks of 16 with 4-bit scales and mins), Q3_K (16
 * of 16 with 6-bit scales), Q4_K and Q5_K (8 sub-blocks of 32 with 6-bit
 * scales and mins), Q6_K (16 sub-blocks of 16 with int8 scales) and Q8_K (the
 * activations they are multiplied with); and the non-linear 4-bit formats IQ4_NL (blocks of 32,
 * against Q8_0) and IQ4_XS (super-blocks of 256 with 6-bit sub-block scales,
 * against Q8_K), which share their quantizer.
 *
 * Spec: ggml-quants.c quantize_row_{q2,q3,q4,q5,q6,q8}_K_ref with
 * make_qkx2_quants, make_q3_quants and make_qx_quants (the no-imatrix path
 * llama-quantize takes), the
 * dequantize_row_*_K, and the generic dot products of ggml-cpu/quants.c;
 * quantize_iq4_nl / quantize_iq4_xs without importance weights (what
 * llama-quantize runs without an imatrix), dequantize_row_iq4_*, and
 * ggml_vec_dot_iq4_{nl_q8_0,xs_q8_K}_generic.
 * As in ref_quants.c the float operations follow ggml's order exactly: the
 * quantizers search over candidate scales and a different last bit picks a
 * different candidate, so "equivalent" algebra is not equivalent here.
 * The kref_ helpers (kern_ref.h) are shared with ref_imatrix.c, the
 * importance-weighted quantizers, which fit differently but end the same way.
 */
#include "kernels/kern_ref.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define H2F(h) kern_f16_to_f32(h)
#define F2H(f) kern_f32_to_f16(f)

#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Fits x[i] ~ scale * L[i] - the_min with L in [0, nmax] by weighted least
 * squares over a sweep of nstep+1 candidate inverse scales, keeping the
 * candidate with the least weighted squared (or, with use_mad, absolute)
 * error: ggml's make_qkx2_quants, and make_qkx3_quants given weights (the
 * same operations; its `max <= min` is `max == min` here, as min <= 0 and
 * min <= max once clamped). Returns the scale; *the_min >= 0. */
float kref_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                            float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                            bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = kern_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = kern_nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* The value of x[0..n) of the largest magnitude (the first of equals, its
 * sign kept) into *max; false, with L all zero, when the group is all but
 * zero (ggml's GROUP_MAX_EPS test). */
static bool group_max(int n, const float *x, int8_t *L, float *max) {
    float amax = 0;
    *max = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            *max = x[i];
        }
    }
    if (amax >= GROUP_MAX_EPS) return true;
    for (int i = 0; i < n; i++) L[i] = 0;
    return false;
}

/* Fits x[i] ~ scale * (L[i] - nmax) with L in [0, 2*nmax) by least squares
 * weighted by weights[i] (NULL: x[i]^2), trying 19 inverse scales around
 * -nmax/max: ggml's make_qx_quants with rmse_type 1, the form the Q6_K
 * reference and every importance-weighted caller use. */
float kref_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *weights) {
    float max;
    if (!group_max(n, x, L, &max)) return 0.f;
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = kern_nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = weights ? weights[i] : x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = kern_nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            const float w = weights ? weights[i] : x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = kern_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Packs eight 6-bit scales and mins into the 12 bytes of Q4_K/Q5_K: bytes
 * 0-3 scales 0-3 (+ top 2 bits of scales 4-7), bytes 4-7 mins 0-3 (+ top 2
 * bits of mins 4-7), bytes 8-11 the low nibbles of scales and mins 4-7. */
static void pack_scales_k4(uint8_t *out, const uint8_t *ls, const uint8_t *lm) {
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
        out[j + 4] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
        out[j + 8] = (uint8_t)((ls[j + 4] & 0xF) | (lm[j + 4] & 0xF) << 4);
    }
}

/* The front half of the Q4_K and Q5_K references: per-sub-block scale/min
 * fits (levels into L) and their 6-bit quantization ls, lm against the block
 * scales *d, *dmin. */
static void fit_k4_block(const float *x, int nmax, float rmin, int nstep, uint8_t *ls, uint8_t *lm,
                         float *d, float *dmin, uint8_t *L) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = kref_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                          rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        /* ggml stores nearest_int in a uint8_t before clamping: keep the wrap */
        const uint8_t s8 = (uint8_t)kern_nearest_int(inv_scale * scales[j]);
        const uint8_t m8 = (uint8_t)kern_nearest_int(inv_min * mins[j]);
        ls[j] = s8 < 63 ? s8 : 63;
        lm[j] = m8 < 63 ? m8 : 63;
    }
    *d = max_scale / 63.f;
    *dmin = max_min / 63.f;
}

/* The back half of Q4_K and Q5_K: stores the scales and block scales, then
 * requantizes the levels L (0..nmax) against the scales as rounded. */
static void finish_k4_block(const float *x, int nmax, const uint8_t *ls, const uint8_t *lm, float d,
                            float dmin, uint8_t *scales12, kern_f16 *d_out, kern_f16 *dmin_out,
                            uint8_t *L) {
    pack_scales_k4(scales12, ls, lm);
    *d_out = F2H(d);
    *dmin_out = F2H(dmin);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        kern_get_scale_min_k4(j, scales12, &sc, &m);
        const float dl = H2F(*d_out) * (float)sc;
        if (dl == 0.0f) continue; /* keep the levels of the fit */
        const float dm = H2F(*dmin_out) * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = kern_nearest_int((x[32 * j + ii] + dm) / dl);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

/* ---- Q4_K ------------------------------------------------------------------- */

/* Stores the 6-bit scales ls and mins lm, d and dmin, then requantizes the
 * levels L (0..15) against them and packs them. */
void kref_q4_K_finish(const float *x, const uint8_t *ls, const uint8_t *lm, float d, float dmin,
                      uint8_t *L, block_q4_K *y) {
    finish_k4_block(x, 15, ls, lm, d, dmin, y->scales, &y->d, &y->dmin, L);
    /* 64 elements per 32 bytes: low nibbles first half, high nibbles second */
    uint8_t *q = y->qs;
    for (int j = 0; j < QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
}

void kern_ref_quantize_q4_K(const float *x, void *vy, int64_t n) {
    block_q4_K *y = vy;
    uint8_t L[QK_K], ls[QK_K / 32], lm[QK_K / 32];
    float d, dmin;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        fit_k4_block(x, 15, -1.f, 20, ls, lm, &d, &dmin, L);
        kref_q4_K_finish(x, ls, lm, d, dmin, L, &y[i]);
    }
}

void kern_ref_dequantize_q4_K(const void *vx, float *y, int64_t n) {
    const block_q4_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(x[i].d), min = H2F(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
            uint8_t sc, m;
            kern_get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            kern_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = min * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* The common tail of the K-quant dots: ggml's generic versions keep eight
 * float lanes, lane l summing d * (integer sum over the elements l mod 8), and
 * add the lanes only at the end; the min corrections go straight to sumf. */
typedef struct {
    float lanes[8];
    float sumf;
} kdot_acc;

static void kdot_add(kdot_acc *a, float d, const int32_t *aux32) {
    for (int l = 0; l < 8; l++) a->lanes[l] += d * (float)aux32[l];
}

static float kdot_finish(const kdot_acc *a) {
    float s = a->sumf;
    for (int l = 0; l < 8; l++) s += a->lanes[l];
    return s;
}

/* Integer part of a Q4_K/Q5_K block: levels q[256] (0..31) against the Q8_K
 * quants, scaled per 32-element sub-block, into 8 lanes by index mod 8. Also
 * returns the min correction sum(bsums * mins). */
static int kdot_k4_block(const uint8_t *scales12, const int8_t *q, const block_q8_K *y,
                         int32_t *aux32) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) kern_get_scale_min_k4(j, scales12, &sc[j], &mn[j]);
    int summ = 0;
    for (int j = 0; j < QK_K / 16; j++) summ += y->bsums[j] * mn[j / 2];
    memset(aux32, 0, 8 * sizeof(int32_t));
    for (int k = 0; k < QK_K; k++) aux32[k % 8] += sc[k / 32] * (q[k] * y->qs[k]);
    return summ;
}

void kern_ref_vec_dot_q4_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q4_K *w = vw;
    const block_q8_K *x = vx;
    kdot_acc acc = {{0}, 0.0f};
    int8_t q[QK_K];
    int32_t aux32[8];
    for (int64_t i = 0; i < n / QK_K; i++) {
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++) {
                q[64 * j + l] = (int8_t)(w[i].qs[32 * j + l] & 0xF);
                q[64 * j + 32 + l] = (int8_t)(w[i].qs[32 * j + l] >> 4);
            }
        const int summ = kdot_k4_block(w[i].scales, q, &x[i], aux32);
        kdot_add(&acc, H2F(w[i].d) * x[i].d, aux32);
        const float dmin = H2F(w[i].dmin) * x[i].d;
        acc.sumf -= dmin * (float)summ;
    }
    *s = kdot_finish(&acc);
}

/* ---- Q5_K ------------------------------------------------------------------- */

/* As kref_q4_K_finish, with levels 0..31 and their high bits in qh. */
void kref_q5_K_finish(const float *x, const uint8_t *ls, const uint8_t *lm, float d, float dmin,
                      uint8_t *L, block_q5_K *y) {
    finish_k4_block(x, 31, ls, lm, d, dmin, y->scales, &y->d, &y->dmin, L);
    /* low 4 bits as Q4_K; bit 4 of element 64*k + j in qh[j] bit 2k, of
     * element 64*k + 32 + j in qh[j] bit 2k+1 */
    memset(y->qh, 0, sizeof y->qh);
    uint8_t *ql = y->qs;
    for (int k = 0; k < QK_K / 64; k++, ql += 32) {
        for (int j = 0; j < 32; j++) {
            const int l1 = L[64 * k + j], l2 = L[64 * k + j + 32];
            y->qh[j] |= (uint8_t)(((l1 >> 4) & 1) << (2 * k) | ((l2 >> 4) & 1) << (2 * k + 1));
            ql[j] = (uint8_t)((l1 & 0xF) | (l2 & 0xF) << 4);
        }
    }
}

void kern_ref_quantize_q5_K(const float *x, void *vy, int64_t n) {
    block_q5_K *y = vy;
    uint8_t L[QK_K], ls[QK_K / 32], lm[QK_K / 32];
    float d, dmin;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        fit_k4_block(x, 31, -0.5f, 15, ls, lm, &d, &dmin, L);
        kref_q5_K_finish(x, ls, lm, d, dmin, L, &y[i]);
    }
}

static void unpack_q5_K(const block_q5_K *b, int8_t *q) {
    for (int k = 0; k < QK_K / 64; k++)
        for (int l = 0; l < 32; l++) {
            const uint8_t byte = b->qs[32 * k + l], h = b->qh[l];
            q[64 * k + l] = (int8_t)((byte & 0xF) | ((h >> (2 * k)) & 1) << 4);
            q[64 * k + 32 + l] = (int8_t)((byte >> 4) | ((h >> (2 * k + 1)) & 1) << 4);
        }
}

void kern_ref_dequantize_q5_K(const void *vx, float *y, int64_t n) {
    const block_q5_K *x = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(x[i].d), min = H2F(x[i].dmin);
        unpack_q5_K(&x[i], q);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            kern_get_scale_min_k4(j, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = min * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)q[32 * j + l] - m1;
        }
    }
}

void kern_ref_vec_dot_q5_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q5_K *w = vw;
    const block_q8_K *x = vx;
    kdot_acc acc = {{0}, 0.0f};
    int8_t q[QK_K];
    int32_t aux32[8];
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q5_K(&w[i], q);
        const int summ = kdot_k4_block(w[i].scales, q, &x[i], aux32);
        kdot_add(&acc, H2F(w[i].d) * x[i].d, aux32);
        const float dmin = H2F(w[i].dmin) * x[i].d;
        acc.sumf -= dmin * (float)summ;
    }
    *s = kdot_finish(&acc);
}

/* ---- Q6_K ------------------------------------------------------------------- */

/* Q6_K from the 16 sub-block fits (scales, levels L): int8 scales against
 * d = max_scale / -128, then the levels again against them, packed. */
void kref_q6_K_finish(const float *x, const float *scales, int8_t *L, block_q6_K *y) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ib++) {
        if (fabsf(scales[ib]) > max_abs_scale) {
            max_abs_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, sizeof *y);
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d = F2H(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ib++)
        y->scales[ib] = (int8_t)imin(127, kern_nearest_int(iscale * scales[ib]));
    for (int j = 0; j < QK_K / 16; j++) {
        const float d = H2F(y->d) * (float)y->scales[j];
        if (d == 0.0f) continue;
        for (int ii = 0; ii < 16; ii++) {
            const int l = kern_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
        }
    }
    /* per 128 elements: ql[0..31] = low nibbles of 0..31 | 64..95 << 4,
     * ql[32..63] = 32..63 | 96..127 << 4, qh[l] = the four top 2-bit pairs */
    uint8_t *ql = y->ql, *qh = y->qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
            ql[l] = (uint8_t)((q1 & 0xF) | (q3 & 0xF) << 4);
            ql[l + 32] = (uint8_t)((q2 & 0xF) | (q4 & 0xF) << 4);
            qh[l] = (uint8_t)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
        }
    }
}

void kern_ref_quantize_q6_K(const float *x, void *vy, int64_t n) {
    block_q6_K *y = vy;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        for (int ib = 0; ib < QK_K / 16; ib++)
            scales[ib] = kref_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, NULL);
        kref_q6_K_finish(x, scales, L, &y[i]);
    }
}

/* The 256 signed levels (-32..31) of a Q6_K block, in element order. */
static void unpack_q6_K(const block_q6_K *b, int8_t *q) {
    const uint8_t *ql = b->ql, *qh = b->qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32, q += 128) {
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
    }
}

void kern_ref_dequantize_q6_K(const void *vx, float *y, int64_t n) {
    const block_q6_K *x = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = H2F(x[i].d);
        unpack_q6_K(&x[i], q);
        for (int k = 0; k < QK_K; k++) {
            const int8_t sc = x[i].scales[k / 16];
            y[k] = d * (float)sc * (float)q[k];
        }
    }
}

void kern_ref_vec_dot_q6_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    kdot_acc acc = {{0}, 0.0f};
    int8_t q[QK_K];
    int32_t aux32[8];
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q6_K(&w[i], q);
        memset(aux32, 0, sizeof aux32);
        for (int k = 0; k < QK_K; k++) aux32[k % 8] += w[i].scales[k / 16] * (q[k] * x[i].qs[k]);
        kdot_add(&acc, H2F(w[i].d) * x[i].d, aux32);
    }
    *s = kdot_finish(&acc);
}

/* ---- Q2_K and Q3_K (layouts: blocks.h) ----------------------------------------- */

/* Packs 256 levels of 2 bits (Q2_K, and the low bits of Q3_K). */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] =
                (uint8_t)(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

/* Level k (0..255) of the 2-bit field of qs. */
static inline int level_2bit(const uint8_t *qs, int k) {
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

/* With the scales byte, d and dmin of y set: the levels again against the
 * scales as rounded (a sub-block of scale 0 keeps its fit's), packed. */
void kref_q2_K_finish(const float *x, uint8_t *L, block_q2_K *y) {
    for (int j = 0; j < QK_K / 16; j++) {
        const float d = H2F(y->d) * (float)(y->scales[j] & 0xF);
        if (d == 0.0f) continue; /* keep the levels of the fit */
        const float dm = H2F(y->dmin) * (float)(y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ii++) {
            const int l = kern_nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
        }
    }
    pack_2bit(L, y->qs);
}

void kern_ref_quantize_q2_K(const float *x, void *vy, int64_t n) {
    block_q2_K *y = vy;
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = kref_make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j],
                                              Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        /* 4-bit scales and mins relative to the largest of each; ggml stores
         * the rounded int straight into the byte (a wrap, not a clamp) */
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = F2H(0.f);
        y[i].dmin = F2H(0.f);
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] = (uint8_t)kern_nearest_int(iscale * scales[j]);
            y[i].d = F2H(max_scale / 15.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] |= (uint8_t)((unsigned)kern_nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = F2H(max_min / 15.f);
        }
        kref_q2_K_finish(x, L, &y[i]);
    }
}

void kern_ref_dequantize_q2_K(const void *vx, float *y, int64_t n) {
    const block_q2_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = H2F(x[i].d), min = H2F(x[i].dmin);
        for (int k = 0; k < QK_K; k++) {
            const uint8_t sc = x[i].scales[k / 16];
            const float dl = d * (float)(sc & 0xF), ml = min * (float)(sc >> 4);
            y[k] = dl * (float)level_2bit(x[i].qs, k) - ml;
        }
    }
}

/* ggml_vec_dot_q2_K_q8_K_generic: the whole block's integer sums, then one
 * float step per block (no lanes). */
void kern_ref_vec_dot_q2_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q2_K *w = vw;
    const block_q8_K *x = vx;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int summs = 0, isum = 0;
        for (int j = 0; j < QK_K / 16; j++) summs += x[i].bsums[j] * (w[i].scales[j] >> 4);
        for (int k = 0; k < QK_K; k++)
            isum += (w[i].scales[k / 16] & 0xF) * (x[i].qs[k] * level_2bit(w[i].qs, k));
        const float dall = x[i].d * H2F(w[i].d), dmin = x[i].d * H2F(w[i].dmin);
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

/* ---- Q3_K ------------------------------------------------------------------- */

/* Fits x[i] ~ scale * (L[i] - nmax) with L in [0, 2*nmax), weights x^2:
 * levels from -nmax/max, then up to 5 rounds moving single levels while that
 * raises sumlx^2 / suml2 (ggml's make_q3_quants with do_rmse, the form the
 * Q3_K reference uses). Returns the scale. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max;
    if (!group_max(n, x, L, &max)) return 0.f;
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, kern_nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            const int new_l = imax(-nmax, imin(nmax - 1, kern_nearest_int(x[i] * sl2 / slx)));
            if (new_l == L[i]) continue;
            slx += w * x[i] * (float)new_l;
            sl2 += w * (float)new_l * (float)new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* The 6-bit scale (0..63, the multiplier is sc - 32) of sub-block j. */
static inline int q3_K_scale(const uint8_t *scales, int j) {
    const int lo = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    return lo | ((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
}

/* The 256 signed levels (-4..3) of a Q3_K block, in element order. */
static void unpack_q3_K(const block_q3_K *b, int8_t *q) {
    for (int k = 0; k < QK_K; k++) {
        const int hi = (b->hmask[k % 32] >> (k / 32)) & 1;
        q[k] = (int8_t)(level_2bit(b->qs, k) - (hi ? 0 : 4));
    }
}

/* Stores the 6-bit scales Ls (0..63, the multiplier is Ls - 32) and d, then
 * the levels again against them (a sub-block of scale 0 keeps its fit's),
 * packed with their high bits in hmask. */
void kref_q3_K_finish(const float *x, const int8_t *Ls, float d, int8_t *L, block_q3_K *y) {
    memset(y->scales, 0, sizeof y->scales);
    for (int j = 0; j < QK_K / 16; j++) {
        const int l = Ls[j];
        if (j < 8)
            y->scales[j] = (uint8_t)(l & 0xF);
        else
            y->scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        y->scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    y->d = F2H(d);
    for (int j = 0; j < QK_K / 16; j++) {
        const float dl = H2F(y->d) * (float)(int8_t)(q3_K_scale(y->scales, j) - 32);
        if (dl == 0.0f) continue; /* keep the levels of the fit */
        for (int ii = 0; ii < 16; ii++) {
            const int l = kern_nearest_int(x[16 * j + ii] / dl);
            L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
        }
    }
    uint8_t low[QK_K];
    memset(y->hmask, 0, sizeof y->hmask);
    for (int k = 0; k < QK_K; k++) {
        if (L[k] > 3) y->hmask[k % 32] |= (uint8_t)(1u << (k / 32));
        low[k] = (uint8_t)(L[k] & 3);
    }
    pack_2bit(low, y->qs);
}

void kern_ref_quantize_q3_K(const float *x, void *vy, int64_t n) {
    block_q3_K *y = vy;
    int8_t L[QK_K], Ls[QK_K / 16];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        /* 6-bit scales (0 for all when all are zero), d = 1/iscale */
        memset(Ls, 0, sizeof Ls);
        float d = 0.f;
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                /* ggml keeps the rounded value in an int8_t before clamping */
                const int8_t r = (int8_t)kern_nearest_int(iscale * scales[j]);
                Ls[j] = (int8_t)(imax(-32, imin(31, r)) + 32);
            }
            d = 1 / iscale;
        }
        kref_q3_K_finish(x, Ls, d, L, &y[i]);
    }
}

void kern_ref_dequantize_q3_K(const void *vx, float *y, int64_t n) {
    const block_q3_K *x = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d_all = H2F(x[i].d);
        unpack_q3_K(&x[i], q);
        for (int k = 0; k < QK_K; k++) {
            const float dl = d_all * (float)(q3_K_scale(x[i].scales, k / 16) - 32);
            y[k] = dl * (float)q[k];
        }
    }
}

/* ggml_vec_dot_q3_K_q8_K_generic: eight lanes as Q4_K-Q6_K's. */
void kern_ref_vec_dot_q3_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q3_K *w = vw;
    const block_q8_K *x = vx;
    kdot_acc acc = {{0}, 0.0f};
    int8_t q[QK_K];
    int32_t aux32[8];
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q3_K(&w[i], q);
        memset(aux32, 0, sizeof aux32);
        for (int k = 0; k < QK_K; k++)
            aux32[k % 8] += (q3_K_scale(w[i].scales, k / 16) - 32) * (q[k] * x[i].qs[k]);
        kdot_add(&acc, H2F(w[i].d) * x[i].d, aux32);
    }
    *s = kdot_finish(&acc);
}

/* ---- Q8_K ------------------------------------------------------------------- */

void kern_ref_quantize_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            /* ggml leaves bsums unset here; zero is what they sum to */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++)
            y[i].qs[j] = (int8_t)imin(127, kern_nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[16 * j + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void kern_ref_dequantize_q8_K(const void *vx, float *y, int64_t n) {
    const block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) *y++ = x[i].d * (float)x[i].qs[j];
}

/* Not in ggml (Q8_K is only an activation format); completes the table. */
void kern_ref_vec_dot_q8_K(int64_t n, float *s, const void *vw, const void *vx) {
    const block_q8_K *w = vw;
    const block_q8_K *x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0;
        for (int j = 0; j < QK_K; j++) sumi += w[i].qs[j] * x[i].qs[j];
        sum += (float)sumi * (w[i].d * x[i].d);
    }
    *s = sum;
}

/* ---- IQ4_NL, IQ4_XS ------------------------------------------------------------
 * Levels are the 16 entries of kern_iq4nl_values times a scale. */

/* The codebook entry nearest x (ties to the larger), as ggml's
 * best_index_int8: a bisection, then the closer of the two neighbours. */
static int iq4_best_index(float x) {
    const int8_t *val = kern_iq4nl_values;
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (x < val[mav])
            mu = mav;
        else
            ml = mav;
    }
    return x - (float)val[mu - 1] < (float)val[mu] - x ? mu - 1 : mu;
}

/* One block of 32 (IQ4_NL: super == 32) or super-block of 256 (IQ4_XS) as
 * ggml's quantize_row_iq4_nl_impl with ntry = 7: per 32-element sub-block the
 * scale maximising (sum w q x)^2 / sum w q^2 over 15 trial inverse scales
 * around -127/max, w = x^2 or, given importance weights qw, qw *
 * sqrt(sigma2 + x^2) with sigma2 = 2 * mean(x^2) over the (super-)block;
 * IQ4_XS then quantizes the sub-block scales to 6 bits against
 * d = -max_scale / 32 and picks the levels again. Writes d, the packed
 * nibbles q4 and (IQ4_XS) the scales. */
void kref_iq4_quantize_block(int super, const float *x, const float *qw, kern_f16 *dh, uint8_t *q4,
                             uint16_t *scales_h, uint8_t *scales_l) {
    enum { NTRY = 7 };
    const int8_t *values = kern_iq4nl_values;
    uint8_t L[QK_K];
    float scales[QK_K / 32], weight[32];
    float sigma2 = 0;
    if (qw) {
        for (int j = 0; j < super; j++) sigma2 += x[j] * x[j];
        sigma2 *= 2.f / (float)super;
    }
    memset(q4, 0, (size_t)super / 2);
    *dh = F2H(0.f);
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super / 32; ib++) {
        const float *xb = x + 32 * ib;
        uint8_t *Lb = L + 32 * ib;
        for (int j = 0; j < 32; j++)
            weight[j] = qw ? qw[32 * ib + j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = -max / (float)values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const int l = iq4_best_index(id * xb[j]);
            Lb[j] = (uint8_t)l;
            const float q = (float)values[l], w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -NTRY; itry <= NTRY; itry++) {
            id = (float)(itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                const int l = iq4_best_index(id * xb[j]);
                const float q = (float)values[l], w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (fabsf(d) > amax_scale) {
            amax_scale = fabsf(d);
            max_scale = d;
        }
    }
    if (super > 32) {
        *scales_h = 0;
        const float d = -max_scale / 32;
        *dh = F2H(d);
        const float id = d != 0.0f ? 1 / d : 0.f;
        for (int ib = 0; ib < super / 32; ib++) {
            const int l = imax(-32, imin(31, kern_nearest_int(id * scales[ib])));
            const float dl = d * (float)l;
            const float idl = dl != 0.0f ? 1 / dl : 0.f;
            for (int j = 0; j < 32; j++)
                L[32 * ib + j] = (uint8_t)iq4_best_index(idl * x[32 * ib + j]);
            const int ls = l + 32;
            if (ib % 2 == 0)
                scales_l[ib / 2] = (uint8_t)(ls & 0xF);
            else
                scales_l[ib / 2] |= (uint8_t)((ls & 0xF) << 4);
            *scales_h |= (uint16_t)((ls >> 4) << 2 * ib);
        }
    } else {
        *dh = F2H(scales[0]);
        const float id = scales[0] != 0.0f ? 1 / scales[0] : 0.f;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_best_index(id * x[j]);
    }
    for (int i = 0; i < super / 32; i++)
        for (int j = 0; j < 16; j++)
            q4[16 * i + j] = (uint8_t)(L[32 * i + j] | L[32 * i + 16 + j] << 4);
}

/* llama-quantize's blocks (quantize_iq4_nl, ntry 7). ggml's
 * quantize_row_iq4_nl_ref, its from_float, tries no scales (ntry -1); it
 * only matters for IQ4_NL activations, which nothing uses. */
void kern_ref_quantize_iq4_nl(const float *x, void *vy, int64_t n) {
    block_iq4_nl *y = vy;
    for (int64_t i = 0; i < n / QK4_NL; i++, x += QK4_NL)
        kref_iq4_quantize_block(QK4_NL, x, NULL, &y[i].d, y[i].qs, NULL, NULL);
}

/* An IQ4_NL block or IQ4_XS sub-block is a group of 16 nibble bytes: low
 * nibbles are elements 0..15, high ones 16..31, each a codebook index. */

/* The 32 elements of the group at qs with scale d. */
static void iq4_dequantize_group(const uint8_t *qs, float d, float *y) {
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)kern_iq4nl_values[qs[j] & 0xF];
        y[j + 16] = d * (float)kern_iq4nl_values[qs[j] >> 4];
    }
}

/* The exact integer dot product of the group at qs with 32 activations. */
static int iq4_dot_group(const uint8_t *qs, const int8_t *q8) {
    int sumi1 = 0, sumi2 = 0;
    for (int j = 0; j < 16; j++) {
        sumi1 += q8[j] * kern_iq4nl_values[qs[j] & 0xF];
        sumi2 += q8[j + 16] * kern_iq4nl_values[qs[j] >> 4];
    }
    return sumi1 + sumi2;
}

void kern_ref_dequantize_iq4_nl(const void *vx, float *y, int64_t n) {
    const block_iq4_nl *x = vx;
    for (int64_t i = 0; i < n / QK4_NL; i++, y += QK4_NL)
        iq4_dequantize_group(x[i].qs, H2F(x[i].d), y);
}

/* ggml_vec_dot_iq4_nl_q8_0_generic: per block, the integer sum scaled by
 * x.d * w.d and added to one float. */
void kern_ref_vec_dot_iq4_nl(int64_t n, float *s, const void *vw, const void *vx) {
    const block_iq4_nl *w = vw;
    const block_q8_0 *x = vx;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK4_NL; i++) {
        const float d = H2F(x[i].d) * H2F(w[i].d);
        sumf += d * (float)iq4_dot_group(w[i].qs, x[i].qs);
    }
    *s = sumf;
}

void kern_ref_quantize_iq4_xs(const float *x, void *vy, int64_t n) {
    block_iq4_xs *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K)
        kref_iq4_quantize_block(QK_K, x, NULL, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l);
}

void kern_ref_dequantize_iq4_xs(const void *vx, float *y, int64_t n) {
    const block_iq4_xs *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            const float dl = d * (float)(kern_iq4_xs_ls(&x[i], ib) - 32);
            iq4_dequantize_group(x[i].qs + 16 * ib, dl, y);
        }
    }
}

/* ggml_vec_dot_iq4_xs_q8_K_generic: per sub-block, the integer sum scaled by
 * (w.d * x.d) * (ls - 32) and added to one float. */
void kern_ref_vec_dot_iq4_xs(int64_t n, float *s, const void *vw, const void *vx) {
    const block_iq4_xs *w = vw;
    const block_q8_K *x = vx;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d4d8 = H2F(w[i].d) * x[i].d;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float dl = d4d8 * (float)(kern_iq4_xs_ls(&w[i], ib) - 32);
            sumf += dl * (float)iq4_dot_group(w[i].qs + 16 * ib, x[i].qs + 32 * ib);
        }
    }
    *s = sumf;
}
