/*
 * attn_q8.h - attention over a Q8_0 KV cache (layout and arithmetic in
 * kernels.h), private to src/kernels/: the per-ISA kernels, the query
 * quantizer they share and the lookup attn.c dispatches with.
 *
 * Every kernel here has the bits of kern_attn_tile_q8_0_ref for head sizes
 * that are multiples of 32 up to KERN_ATTN_MAX_HD (callers check). They
 * are not entries of kern_fns (whose tables are indexed by weight type):
 * kern_attn_q8_0_kernel maps the instruction set dispatch.c chose to one.
 */
#ifndef HEARTH_KERN_ATTN_Q8_H
#define HEARTH_KERN_ATTN_Q8_H

#include "kernels/blocks.h"
#include "kernels/kernels.h"

/* A query row as the Q8_0 kernels read it: its Q8_0 blocks (padded with
 * zeros to whole blocks) and, per block, the scale as a float and the sum
 * of the 32 values (for kernels that offset the keys to unsigned bytes). */
typedef struct kern_q8_query {
    block_q8_0 blk[KERN_ATTN_MAX_HD / 32];
    float d[KERN_ATTN_MAX_HD / 32];
    int32_t sum[KERN_ATTN_MAX_HD / 32];
} kern_q8_query;

/* Quantizes q[hd] (hd <= KERN_ATTN_MAX_HD) into *out with ggml's CPU
 * quantizer (kern_quantize_q8_0_act's bits). */
void kern_attn_q8_query(const float *q, int hd, kern_q8_query *out);

/* The kernel for instruction set `isa` (a name of kern_isa_name()), or NULL
 * when this build has none for it (then the reference runs). */
kern_attn_fn kern_attn_q8_0_kernel(const char *isa);

#if defined(__x86_64__) || defined(_M_X64)
void kern_avx2_attn_q8_0(const kern_attn_args *a);        /* x86_avx2_attn.c */
void kern_avx512_attn_q8_0(const kern_attn_args *a);      /* x86_avx512_attn.c */
void kern_avx512_vnni_attn_q8_0(const kern_attn_args *a); /* x86_avx512_attn.c */
#elif defined(__aarch64__)
void kern_neon_attn_q8_0(const kern_attn_args *a); /* arm_neon_attn.c */
#endif

#endif
