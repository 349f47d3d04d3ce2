/*
 * arm_neon_priv.h - what the NEON kernel files (arm_neon*.c, built with
 * +dotprod+fp16) share; private to them. arm_neon.c holds the table.
 */
#ifndef HEARTH_ARM_NEON_PRIV_H
#define HEARTH_ARM_NEON_PRIV_H

#include "kernels/kernels.h"

/* kern_attn_tile over an f32 or f16 cache (arm_neon_attn.c): the contract of
 * kernels.h, for head sizes that are multiples of 16 up to KERN_ATTN_MAX_HD. */
void kern_neon_attn_f32(const kern_attn_args *a);
void kern_neon_attn_f16(const kern_attn_args *a);

#endif
