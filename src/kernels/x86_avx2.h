/*
 * x86_avx2.h - what the AVX2 kernel files (x86_avx2*.c, built with AVX2, FMA
 * and F16C) share; private to them. x86_avx2.c holds the table.
 */
#ifndef HEARTH_X86_AVX2_H
#define HEARTH_X86_AVX2_H

#include "kernels/kernels.h"

/* kern_attn_tile over an f32 or f16 cache (x86_avx2_attn.c): the contract of
 * kernels.h, for head sizes that are multiples of 16 up to KERN_ATTN_MAX_HD. */
void kern_avx2_attn_f32(const kern_attn_args *a);
void kern_avx2_attn_f16(const kern_attn_args *a);

#endif
