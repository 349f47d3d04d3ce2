/*
 * isa.h - the per-instruction-set kernel tables, private to src/kernels/.
 *
 * Each ISA file (x86_avx2.c, x86_avx512.c, arm_neon.c) exports a sparse
 * table indexed by kern_type whose non-NULL members replace the scalar ones,
 * a `usable` check (does this CPU and OS run it) and an `install` that
 * applies the table. dispatch.c lists the rows of KERN_ISA_ROWS in order of
 * preference; tests call each table directly so that every ISA the CPU has
 * is checked, not only the one dispatched.
 *
 * Contracts of every kernel here: vec_dot equals the scalar reference up to
 * float rounding (activations must be in [-127, 127], as every quantizer
 * produces; weights may hold any byte); from_float is bit-identical to the
 * scalar from_float dispatch.c installs; to_float is bit-identical to the
 * reference dequantizer.
 */
#ifndef HEARTH_KERN_ISA_H
#define HEARTH_KERN_ISA_H

#include "kernels/kernels.h"

#include <stdbool.h>

/* Types an ISA table covers: every id below this (all supported ones are). */
#define KERN_ISA_NTYPES 31

/* Applies the non-NULL members of `over` [KERN_ISA_NTYPES] to `table`, which
 * must hold at least KERN_ISA_NTYPES entries. A gemm must have the bits of
 * the vec_dot beside it, so a table that replaces a vec_dot also replaces
 * the gemm and the packed layout, with its own or with none. */
static inline void kern_isa_apply(kern_fns *table, const kern_fns *over) {
    for (int t = 0; t < KERN_ISA_NTYPES; t++) {
        if (over[t].vec_dot) {
            table[t].vec_dot = over[t].vec_dot;
            table[t].gemm = over[t].gemm;
            table[t].pack_bytes = over[t].pack_bytes;
            table[t].pack = over[t].pack;
            table[t].gemm_packed = over[t].gemm_packed;
        }
        if (over[t].from_float) table[t].from_float = over[t].from_float;
        if (over[t].to_float) table[t].to_float = over[t].to_float;
        if (over[t].attn) table[t].attn = over[t].attn;
        if (over[t].gemm) table[t].gemm = over[t].gemm;
    }
}

#if defined(__x86_64__) || defined(_M_X64)
/* x86_avx2.c: AVX2 + FMA + F16C. */
extern const kern_fns kern_avx2_fns[KERN_ISA_NTYPES];
bool kern_avx2_usable(void);
void kern_avx2_install(kern_fns *table);

/* x86_avx512.c: AVX-512 F/BW/VL/DQ (+ AVX2, FMA, F16C). The plain table
 * multiplies bytes with vpmaddubsw/vpmaddwd; the -vnni one with vpdpbusd and
 * vpdpwssd, for CPUs that also have AVX512-VNNI. */
extern const kern_fns kern_avx512_fns[KERN_ISA_NTYPES];
extern const kern_fns kern_avx512_vnni_fns[KERN_ISA_NTYPES];
bool kern_avx512_usable(void);
bool kern_avx512_vnni_usable(void);
void kern_avx512_install(kern_fns *table);
void kern_avx512_vnni_install(kern_fns *table);

/* Rows {name, usable, install} in increasing order of preference. With
 * HEARTH_ISA=avx512 the choice stops at plain AVX-512; avx512-vnni (or no
 * cap) allows the VNNI kernels. */
#define KERN_ISA_ROWS                                                                              \
    {"avx2", kern_avx2_usable, kern_avx2_install},                                                 \
        {"avx512", kern_avx512_usable, kern_avx512_install},                                       \
        {"avx512-vnni", kern_avx512_vnni_usable, kern_avx512_vnni_install},

#elif defined(__aarch64__)
/* arm_neon.c: ARMv8.2-A with the dot-product extension (and FP16). */
extern const kern_fns kern_neon_fns[KERN_ISA_NTYPES];
bool kern_neon_usable(void);
void kern_neon_install(kern_fns *table);

#define KERN_ISA_ROWS {"neon", kern_neon_usable, kern_neon_install},

#else
#define KERN_ISA_ROWS
#endif

#endif
