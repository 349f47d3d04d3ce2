/*
 * ggml_math.c - scalar twins of the float arithmetic llama.cpp's CPU backend
 * runs on x86-64 with AVX-512 (the build the conformance data come from):
 * its exp and SiLU approximations, the order in which its SIMD loops and
 * horizontal sums add, and where its compiler fuses a multiply into an add.
 *
 * Why: Hearth quantizes activations to 8 bits exactly as llama.cpp does, so
 * any last-bit difference in the float value before quantization can move it
 * across a rounding boundary of its code and shift every later logit by a
 * visible amount. Reproducing the arithmetic bit for bit removes that.
 *
 * Each function names the ggml routine whose arithmetic it reproduces; the
 * lane structure is described in the comment and the code spells it out with
 * scalar variables and fmaf() where ggml uses a fused multiply-add. No
 * intrinsics: this file is portable C and gives the same bits everywhere
 * (fmaf is exact by definition; without FMA hardware it is only slower).
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* Contractions would change the bits; gcc in ISO C mode does not contract,
 * clang needs to be told. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ggml_v_expf for __m512 (vec.h): n = round(x / ln 2) with the 1.5 * 2^23
 * trick, b = x - n ln 2 in two fused steps, a degree-5 polynomial in b by
 * Estrin's scheme, then j * 2^n (vscalefps, which ldexpf matches: both are
 * exact or correctly rounded). |n| > 192 saturates to 0 or +inf. */
KERN_FMA_CLONES float kern_ggml_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = fmaf(
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    /* j * 2^n: one exact multiplication while 2^n is a normal float (a
     * subnormal product rounds once, as vscalefps does). */
    if (n >= -126.0f && n <= 127.0f) {
        const uint32_t e = (uint32_t)((int)n + 127) << 23;
        float p;
        memcpy(&p, &e, sizeof p);
        return j * p;
    }
    if (isnan(n)) return j; /* NaN (converting it to int is undefined) */
    return ldexpf(j, (int)n);
}

/* ggml_v_silu: x / (1 + exp(0 - x)) with the approximate exp. */
float kern_ggml_silu(float x) { return x / (1.0f + kern_ggml_expf(0.0f - x)); }

/* hsum_float_8 / tinyBLAS hsum(__m256): (hi4 + lo4), movehl, movehdup. */
static inline float hsum8(const float v[8]) {
    float t[4];
    for (int i = 0; i < 4; i++) t[i] = v[i + 4] + v[i];
    return (t[0] + t[2]) + (t[1] + t[3]);
}

/* _mm512_reduce_add_ps as gcc implements it: halves, then quarters, then
 * pairs: ((v0+v8)+(v4+v12)) ... a fixed tree over the 16 lanes. */
static inline float hsum16(const float v[16]) {
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = v[i + 8] + v[i];
    return hsum8(t);
}

/* The GGML_F32_VEC_REDUCE step shared by the f32 and f16 dot products
 * (inline here: the scan's step calls it for every channel of every token). */
static inline float reduce4x16(float acc[4][16]) {
    float v[16];
    for (int r = 0; r < 16; r++) v[r] = (acc[0][r] + acc[2][r]) + (acc[1][r] + acc[3][r]);
    return hsum16(v);
}

float kern_ggml_hsum16(const float v[16]) { return hsum16(v); }
float kern_ggml_hsum8(const float v[8]) { return hsum8(v); }
float kern_ggml_reduce4x16(float acc[4][16]) { return reduce4x16(acc); }

/* ggml_vec_dot_f32 (AVX-512): four 16-lane accumulators take elements
 * i = 64 s + 16 j + r (accumulator j, lane r) with a fused multiply-add per
 * step s; then acc0 += acc2, acc1 += acc3, acc0 += acc1, the 16-lane tree.
 * The n % 64 remaining elements are added one by one in a scalar loop that
 * gcc -O3 vectorises: products of whole groups of 8 are rounded before the
 * (in-order) additions, the last n % 8 are fused multiply-adds. */
KERN_FMA_CLONES float kern_ggml_dot_f32(const float *x, const float *y, int64_t n) {
    const int64_t np = n & ~(int64_t)63;
    float acc[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int r = 0; r < 16; r++) {
                const int64_t e = i + 16 * j + r;
                acc[j][r] = fmaf(x[e], y[e], acc[j][r]);
            }
    float sum = reduce4x16(acc);
    const int64_t nv = np + ((n - np) & ~(int64_t)7);
    for (int64_t i = np; i < nv; i++) sum += x[i] * y[i];
    for (int64_t i = nv; i < n; i++) sum = fmaf(x[i], y[i], sum);
    return sum;
}

/* llamafile's tinyBLAS for F32 on AVX-512: one 16-lane accumulator, lane r
 * takes elements 16 s + r in order by fused multiply-add, then the 16-lane
 * tree. n must be a multiple of 16 (tinyBLAS declines otherwise). */
KERN_FMA_CLONES float kern_ggml_dot_f32_x16(const float *x, const float *y, int64_t n) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i += 16)
        for (int r = 0; r < 16; r++) acc[r] = fmaf(x[i + r], y[i + r], acc[r]);
    return hsum16(acc);
}

/* ggml_vec_dot_f16 (AVX-512 without FP16 arithmetic): the f32 dot product's
 * accumulators on values converted from f16, but the tree's result goes to
 * a double and the n % 64 remaining products are added in double. */
KERN_FMA_CLONES float kern_ggml_dot_f16(const uint16_t *x, const uint16_t *y, int64_t n) {
    const int64_t np = n & ~(int64_t)63;
    float acc[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int r = 0; r < 16; r++) {
                const int64_t e = i + 16 * j + r;
                acc[j][r] = fmaf(kern_f16_to_f32(x[e]), kern_f16_to_f32(y[e]), acc[j][r]);
            }
    double sum = reduce4x16(acc);
    for (int64_t i = np; i < n; i++) sum += (double)(kern_f16_to_f32(x[i]) * kern_f16_to_f32(y[i]));
    return (float)sum;
}

/* ggml_compute_forward_gated_delta_net_one_chunk's token step (scalar gating):
 * ggml_vec_scale_f32 of the whole state, then per column c vec_dot_f32 with k,
 * then vec_mad_f32 (fused: ggml's FMA vectors, and its compiler fuses the
 * scalar rest), then vec_dot_f32 with q. */
KERN_FMA_CLONES void kern_ggml_gdn_step(float *st, const float *q, const float *k, const float *v,
                                        float decay, float beta, float scale, int n, float *y) {
    float delta[1024];
    for (int64_t i = 0; i < (int64_t)n * n; i++) st[i] *= decay;
    for (int c = 0; c < n; c++)
        delta[c] = (v[c] - kern_ggml_dot_f32(st + (size_t)c * (size_t)n, k, n)) * beta;
    for (int c = 0; c < n; c++) {
        float *row = st + (size_t)c * (size_t)n;
        for (int i = 0; i < n; i++) row[i] = fmaf(k[i], delta[c], row[i]);
    }
    for (int c = 0; c < n; c++) y[c] = kern_ggml_dot_f32(st + (size_t)c * (size_t)n, q, n) * scale;
}

/* One token's step of a Mamba-2 channel in ggml_compute_forward_ssm_scan_f32
 * (AVX-512): state[i] = state[i] dA + B[i] x_dt (the product with x_dt
 * rounded, the other fused into the add, as its compiler emits them), and
 * the new state's dot product with C in four 16-lane accumulators by fused
 * multiply-adds over the first n & ~63 elements, the GGML_F32_VEC_REDUCE
 * tree, then the rest one by one, fused the same way (the scalar loop's
 * fusions as read in its disassembly; Granite 4.0-H's 128 states have no
 * rest). */
KERN_FMA_CLONES_512 float kern_ggml_ssm_step(float *state, const float *B, const float *C, float dA,
                                             float x_dt, int64_t n) {
    const int64_t np = n & ~(int64_t)63;
    float acc[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int r = 0; r < 16; r++) {
                const int64_t e = i + 16 * j + r;
                state[e] = fmaf(state[e], dA, B[e] * x_dt);
                acc[j][r] = fmaf(state[e], C[e], acc[j][r]);
            }
    float sum = reduce4x16(acc);
    for (int64_t i = np; i < n; i++) {
        state[i] = fmaf(state[i], dA, B[i] * x_dt);
        sum = fmaf(state[i], C[i], sum);
    }
    return sum;
}

/* tinyBLAS for F16 x F16 on AVX-512: the 16-lane order of
 * kern_ggml_dot_f32_x16 on values converted from f16; n % 16 == 0. */
KERN_FMA_CLONES float kern_ggml_dot_f16_x16(const uint16_t *x, const uint16_t *y, int64_t n) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i += 16)
        for (int r = 0; r < 16; r++)
            acc[r] = fmaf(kern_f16_to_f32(x[i + r]), kern_f16_to_f32(y[i + r]), acc[r]);
    return hsum16(acc);
}
