/*
 * kern_ref.h - per-type entry points of the scalar references (ref_quants.c,
 * ref_kquants.c) and the pieces of them ref_imatrix.c shares, private to
 * src/kernels/. dispatch.c puts them in its table; the SIMD files call them
 * for what they do not vectorise; tests compare against them. Signatures
 * match kern_fns so they can be stored there as is.
 *
 * Conventions: n is the number of elements and a multiple of the type's block
 * size; quantize_* reproduces ggml's quantize_row_*_ref byte for byte;
 * vec_dot_* takes the weight row `w` of the named type and the activations `x`
 * in its vec_dot type and reproduces ggml's generic (scalar) dot product,
 * including the order of its float operations.
 */
#ifndef HEARTH_KERN_REF_H
#define HEARTH_KERN_REF_H

#include "kernels/blocks.h"
#include "kernels/kernels.h"

#include <stdint.h>

#define KERN_REF_DECLARE(t)                                                                        \
    void kern_ref_quantize_##t(const float *x, void *y, int64_t n);                                \
    void kern_ref_dequantize_##t(const void *x, float *y, int64_t n);                              \
    void kern_ref_vec_dot_##t(int64_t n, float *s, const void *w, const void *x);

KERN_REF_DECLARE(f32)
KERN_REF_DECLARE(f16)
KERN_REF_DECLARE(bf16)
KERN_REF_DECLARE(q4_0)
KERN_REF_DECLARE(q4_1)
KERN_REF_DECLARE(q5_0)
KERN_REF_DECLARE(q5_1)
KERN_REF_DECLARE(q8_0)
KERN_REF_DECLARE(q8_1)
KERN_REF_DECLARE(q2_K)
KERN_REF_DECLARE(q3_K)
KERN_REF_DECLARE(q4_K)
KERN_REF_DECLARE(q5_K)
KERN_REF_DECLARE(q6_K)
KERN_REF_DECLARE(q8_K)
KERN_REF_DECLARE(iq4_nl)
KERN_REF_DECLARE(iq4_xs)

#undef KERN_REF_DECLARE

/* Activation quantizers as llama.cpp's x86 build runs them (the golden data
 * come from such a build). They differ from quantize_q8_0/q8_1 (the weight
 * format references) in two ways: the inverse scale is 127/amax instead of
 * 1/(amax/127), and values are rounded half to even instead of half away from
 * zero. Both change a quant now and then, so activations must use these. */
void kern_quantize_q8_0_act(const float *x, void *y, int64_t n);
void kern_quantize_q8_1_act(const float *x, void *y, int64_t n);

/* ---- kref_: pieces of ref_kquants.c that ref_imatrix.c (the quantizers
 * with importance weights) shares. */

/* ggml's make_qkx2_quants (= make_qkx3_quants given weights): x ~ scale * L -
 * *the_min, L in [0, nmax], by weighted least squares over nstep+1 inverse
 * scales; returns the scale. Laux: n bytes of scratch. */
float kref_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                            float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                            bool use_mad);
/* ggml's make_qx_quants, rmse_type 1: x ~ scale * (L - nmax), L in
 * [0, 2*nmax), weights (NULL: x^2); returns the scale. */
float kref_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *weights);
/* The ends of the K-quant block quantizers once the scales are chosen: x is
 * one super-block, L its 256 levels as fitted, requantized here. */
void kref_q2_K_finish(const float *x, uint8_t *L, block_q2_K *y); /* y's scales, d, dmin set */
void kref_q3_K_finish(const float *x, const int8_t *Ls, float d, int8_t *L, block_q3_K *y);
void kref_q4_K_finish(const float *x, const uint8_t *ls, const uint8_t *lm, float d, float dmin,
                      uint8_t *L, block_q4_K *y);
void kref_q5_K_finish(const float *x, const uint8_t *ls, const uint8_t *lm, float d, float dmin,
                      uint8_t *L, block_q5_K *y);
void kref_q6_K_finish(const float *x, const float *scales, int8_t *L, block_q6_K *y);
/* One IQ4_NL block (super = 32) or IQ4_XS super-block (super = 256, with
 * scales_h/scales_l), weighted by qw (NULL: x^2) as ggml's quantize_iq4_*. */
void kref_iq4_quantize_block(int super, const float *x, const float *qw, kern_f16 *dh, uint8_t *q4,
                             uint16_t *scales_h, uint8_t *scales_l);

/* ggml's nearest_int: round half to even via the 1.5*2^23 trick; valid for
 * |f| <= 4194303. Shared by the references and the SIMD tails. */
static inline int kern_nearest_int(float f) {
    union {
        float f;
        int32_t i;
    } u;
    u.f = f + 12582912.f;
    return (u.i & 0x007fffff) - 0x00400000;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static inline void kern_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
