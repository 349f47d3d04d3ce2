/*
 * ref_imatrix.c - the quantizers llama-quantize runs given an importance
 * matrix: qw[j], the mean squared activation column j saw, weights each
 * element's error, so the columns that matter most are kept most exactly.
 * Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL and IQ4_XS; the other types
 * have no weighted form (ggml ignores the matrix for them).
 *
 * Spec: ggml-quants.c quantize_row_{q4_0,q4_1,q5_0,q5_1}_impl,
 * quantize_row_{q2,q3,q4,q5,q6}_K_impl and quantize_iq4_{nl,xs} with
 * quant_weights (what ggml_quantize_chunk runs given an imatrix), with
 * make_qx_quants, make_qkx3_quants and make_qp_quants. Most weights are
 * qw * sqrt(sigma2 + x^2), sigma2 a mean of x^2 whose span differs by type:
 * the whole row for the 32-element formats, the super-block for the K-quants
 * (Q2_K half as large as the others), none for Q6_K (qw alone).
 * As in ref_kquants.c, whose fits and block ends this file shares (kref_ in
 * kern_ref.h), the float operations follow ggml's order exactly.
 */
#include "kernels/kern_ref.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define F2H(f) kern_f32_to_f16(f)

#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }

static float sum_squares(const float *x, int64_t n) {
    float s = 0;
    for (int64_t j = 0; j < n; j++) s += x[j] * x[j];
    return s;
}

/* weight[j] = qw[j] * sqrt(sigma2 + x[j]^2) for j < n; returns their sum. */
static float importance(int n, const float *x, const float *qw, float sigma2, float *weight) {
    float sum = 0;
    for (int j = 0; j < n; j++) weight[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
    for (int j = 0; j < n; j++) sum += weight[j];
    return sum;
}

/* Fits x[i] ~ scale * L[i], L <= nmax, for the non-negative sub-block scales
 * and mins of the K-quants, weighted by w: the best by weighted squared error
 * of nine inverse scales around nmax/max, then up to 5 rounds moving single
 * levels while that raises (sum w l x)^2 / sum w l^2. Returns the scale.
 * ggml's make_qp_quants; as there a level below 0 (a negative x) is not
 * clamped, enters the first sums as it is and is kept modulo 256. */
static float make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i];
    if (max < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)kern_nearest_int(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * (float)L[i];
        best_mse += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            const int l = imin(nmax, kern_nearest_int(iscale_is * x[i]));
            const float diff = x[i] - scale_is * (float)l;
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imin(nmax, kern_nearest_int(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * (float)l;
        suml2 += w[i] * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * (float)L[i];
            float sl2 = suml2 - w[i] * (float)L[i] * (float)L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            const int new_l = imin(nmax, kern_nearest_int(x[i] * sl2 / slx));
            if (new_l == L[i]) continue;
            slx += w[i] * x[i] * (float)new_l;
            sl2 += w[i] * (float)new_l * (float)new_l;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ---- Q4_0, Q4_1, Q5_0, Q5_1: sigma2 = mean of x^2 over the whole row -------- */

/* 32 levels into nibbles (element j low, j + 16 high) and, for the 5-bit
 * formats (qh != NULL), bit 4 of element j into bit j of qh. */
static void pack_block32(const uint8_t *L, uint8_t *qs, uint8_t *qh) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((L[j] & 0xF) | (L[j + 16] & 0xF) << 4);
        h |= (uint32_t)(L[j] >> 4 & 1) << j | (uint32_t)(L[j + 16] >> 4 & 1) << (j + 16);
    }
    if (qh) memcpy(qh, &h, sizeof h); /* little-endian, as in files */
}

static float row_sigma2(const float *x, int64_t n) { return sum_squares(x, n) / (float)n; }

/* x ~ d * (L - 8), the fit's levels kept (no requantization) */
static void quantize_q4_0_imatrix(const float *x, block_q4_0 *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    float weight[QK4_0];
    int8_t L[QK4_0]; /* 0..15: the same bits as uint8_t */
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0, qw += QK4_0) {
        importance(QK4_0, x, qw, sigma2, weight);
        y[i].d = F2H(kref_make_qx_quants(QK4_0, 8, x, L, weight));
        pack_block32((const uint8_t *)L, y[i].qs, NULL);
    }
}

static void quantize_q5_0_imatrix(const float *x, block_q5_0 *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    float weight[QK5_0];
    int8_t L[QK5_0]; /* 0..31 */
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0, qw += QK5_0) {
        importance(QK5_0, x, qw, sigma2, weight);
        y[i].d = F2H(kref_make_qx_quants(QK5_0, 16, x, L, weight));
        pack_block32((const uint8_t *)L, y[i].qs, y[i].qh);
    }
}

/* One 32-block x ~ d * L - m, L in [0, nmax], by make_qkx3_quants' sweep
 * (36 steps from nmax - 0.9): Q4_1 and Q5_1. */
static void fit_block32_min(const float *x, const float *qw, float sigma2, int nmax, kern_f16 *d,
                            kern_f16 *m, uint8_t *L) {
    float weight[32], min;
    uint8_t Laux[32];
    importance(32, x, qw, sigma2, weight);
    *d = F2H(kref_make_qkx2_quants(32, nmax, x, weight, L, &min, Laux, -0.9f, 0.05f, 36, false));
    *m = F2H(-min);
}

static void quantize_q4_1_imatrix(const float *x, block_q4_1 *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    uint8_t L[QK4_1];
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1, qw += QK4_1) {
        fit_block32_min(x, qw, sigma2, 15, &y[i].d, &y[i].m, L);
        pack_block32(L, y[i].qs, NULL);
    }
}

static void quantize_q5_1_imatrix(const float *x, block_q5_1 *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    uint8_t L[QK5_1];
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1, qw += QK5_1) {
        fit_block32_min(x, qw, sigma2, 31, &y[i].d, &y[i].m, L);
        pack_block32(L, y[i].qs, y[i].qh);
    }
}

/* ---- K-quants: sigma2 per super-block ------------------------------------------ */

/* Scales and mins by make_qp_quants against the sub-blocks' weight sums
 * (4-bit), not relative to the largest as without weights. */
static void quantize_q2_K_imatrix(const float *x, block_q2_K *y, int64_t n, const float *qw) {
    uint8_t L[QK_K], Laux[16], Ls[QK_K / 16], Lm[QK_K / 16];
    float weight[16], sw[QK_K / 16], scales[QK_K / 16], mins[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        const float sigma2 = sum_squares(x, QK_K) / (float)QK_K; /* not 2x, unlike the others */
        for (int j = 0; j < QK_K / 16; j++) {
            sw[j] = importance(16, x + 16 * j, qw + 16 * j, sigma2, weight);
            scales[j] = kref_make_qkx2_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux,
                                              -0.9f, 0.05f, 36, false);
        }
        y[i].d = F2H(make_qp_quants(QK_K / 16, 15, scales, Ls, sw));
        y[i].dmin = F2H(make_qp_quants(QK_K / 16, 15, mins, Lm, sw));
        for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
        kref_q2_K_finish(x, L, &y[i]);
    }
}

/* Levels by make_qx_quants with the weights; the 6-bit scales by the same
 * fit of the sub-block scales, weighted by the sub-blocks' weight sums. */
static void quantize_q3_K_imatrix(const float *x, block_q3_K *y, int64_t n, const float *qw) {
    int8_t L[QK_K], Ls[QK_K / 16];
    float weight[16], sw[QK_K / 16], scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        const float sigma2 = 2.f * sum_squares(x, QK_K) / (float)QK_K;
        for (int j = 0; j < QK_K / 16; j++) {
            sw[j] = importance(16, x + 16 * j, qw + 16 * j, sigma2, weight);
            scales[j] = kref_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, weight);
        }
        const float d = kref_make_qx_quants(QK_K / 16, 32, scales, Ls, sw);
        kref_q3_K_finish(x, Ls, d, L, &y[i]);
    }
}

/* Q4_K and Q5_K: per 32-element sub-block a make_qkx3_quants fit, then the
 * 6-bit scales and mins by make_qp_quants (Q5_K clamps them at 63, Q4_K
 * does not: make_qp_quants' levels are <= 63 unless they wrapped). */
static void fit_k4_imatrix(const float *x, const float *qw, int nmax, uint8_t *ls, uint8_t *lm,
                           float *d, float *dmin, uint8_t *L) {
    uint8_t Laux[32];
    float weight[32], sw[QK_K / 32], scales[QK_K / 32], mins[QK_K / 32];
    const float sigma2 = 2.f * sum_squares(x, QK_K) / (float)QK_K;
    for (int j = 0; j < QK_K / 32; j++) {
        sw[j] = importance(32, x + 32 * j, qw + 32 * j, sigma2, weight);
        scales[j] = kref_make_qkx2_quants(32, nmax, x + 32 * j, weight, L + 32 * j, &mins[j], Laux,
                                          -0.9f, 0.05f, 36, false);
    }
    *d = make_qp_quants(QK_K / 32, 63, scales, ls, sw);
    *dmin = make_qp_quants(QK_K / 32, 63, mins, lm, sw);
}

static void quantize_q4_K_imatrix(const float *x, block_q4_K *y, int64_t n, const float *qw) {
    uint8_t L[QK_K], ls[QK_K / 32], lm[QK_K / 32];
    float d, dmin;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        fit_k4_imatrix(x, qw, 15, ls, lm, &d, &dmin, L);
        kref_q4_K_finish(x, ls, lm, d, dmin, L, &y[i]);
    }
}

static void quantize_q5_K_imatrix(const float *x, block_q5_K *y, int64_t n, const float *qw) {
    uint8_t L[QK_K], ls[QK_K / 32], lm[QK_K / 32];
    float d, dmin;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        fit_k4_imatrix(x, qw, 31, ls, lm, &d, &dmin, L);
        for (int j = 0; j < QK_K / 32; j++) {
            ls[j] = ls[j] < 63 ? ls[j] : 63;
            lm[j] = lm[j] < 63 ? lm[j] : 63;
        }
        kref_q5_K_finish(x, ls, lm, d, dmin, L, &y[i]);
    }
}

/* The reference's fits with qw itself as the weights (no sigma2 term). */
static void quantize_q6_K_imatrix(const float *x, block_q6_K *y, int64_t n, const float *qw) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        for (int ib = 0; ib < QK_K / 16; ib++)
            scales[ib] = kref_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw + 16 * ib);
        kref_q6_K_finish(x, scales, L, &y[i]);
    }
}

/* ---- entry point ------------------------------------------------------------------ */

void kern_ref_quantize_row_imatrix(kern_type type, const float *x, void *y, int64_t n,
                                   const float *qw) {
    if (!qw) {
        kern_ref_quantize_row(type, x, y, n);
        return;
    }
    switch (type) {
    case KERN_Q4_0: quantize_q4_0_imatrix(x, y, n, qw); break;
    case KERN_Q4_1: quantize_q4_1_imatrix(x, y, n, qw); break;
    case KERN_Q5_0: quantize_q5_0_imatrix(x, y, n, qw); break;
    case KERN_Q5_1: quantize_q5_1_imatrix(x, y, n, qw); break;
    case KERN_Q2_K: quantize_q2_K_imatrix(x, y, n, qw); break;
    case KERN_Q3_K: quantize_q3_K_imatrix(x, y, n, qw); break;
    case KERN_Q4_K: quantize_q4_K_imatrix(x, y, n, qw); break;
    case KERN_Q5_K: quantize_q5_K_imatrix(x, y, n, qw); break;
    case KERN_Q6_K: quantize_q6_K_imatrix(x, y, n, qw); break;
    case KERN_IQ4_NL: {
        block_iq4_nl *b = y;
        for (int64_t i = 0; i < n / QK4_NL; i++)
            kref_iq4_quantize_block(QK4_NL, x + QK4_NL * i, qw + QK4_NL * i, &b[i].d, b[i].qs, NULL,
                                    NULL);
        break;
    }
    case KERN_IQ4_XS: {
        block_iq4_xs *b = y;
        for (int64_t i = 0; i < n / QK_K; i++)
            kref_iq4_quantize_block(QK_K, x + QK_K * i, qw + QK_K * i, &b[i].d, b[i].qs,
                                    &b[i].scales_h, b[i].scales_l);
        break;
    }
    default: kern_ref_quantize_row(type, x, y, n); break; /* no weighted form */
    }
}
