/*
 * x86_avx512.c - the AVX-512 kernel tables (plain and -vnni), whether this
 * CPU runs them, and their installation. The kernels live in the other
 * x86_avx512*.c files (the only ones built with these flags; their shared
 * helpers in x86_avx512.h): _float (F32, F16, BF16), _attn (tiled
 * attention), _q32 (32-element formats), _kq (K-quants), _kq23 (Q2_K and
 * Q3_K, vec_dot and gemm from one tile), _gemv and _gemm
 * (the integer formats' canonical VNNI arithmetic, vec_dot and gemm).
 *
 * Two tables come from the same code: the "-vnni" one multiplies bytes with
 * vpdpbusd and applies int16 scales with vpdpwssd; the plain one uses
 * vpmaddubsw + vpmaddwd, for AVX-512 CPUs without VNNI. Every kernel body is
 * an always-inline function of a constant `vnni` flag, and thin wrappers
 * instantiate it twice, so the plain instantiation executes no VNNI
 * instruction even though the files are compiled with -mavx512vnni (when
 * optimizing, it contains none: the other branch is folded away). The VNNI
 * table then replaces the vec_dot of Q8_0, Q4_0, Q5_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and
 * IQ4_XS with the canonical arithmetic that their gemm shares, so that a batch and one token at a
 * time give the same bits, and gives them all a packed layout (x86_avx512_pack.h) read with the
 * same bits.
 */
#include "kernels/x86_avx512.h"

#define AVX512_TABLE(sfx)                                                                          \
    {                                                                                              \
        [KERN_F32] = {.vec_dot = kern_avx512_vec_dot_f32,                                          \
                      .attn = kern_avx512_attn_f32,                                                \
                      .gemm = kern_avx512_gemm_f32},                                               \
        [KERN_F16] = {.vec_dot = kern_avx512_vec_dot_f16,                                          \
                      .from_float = kern_avx512_from_float_f16,                                    \
                      .to_float = kern_avx512_to_float_f16,                                        \
                      .attn = kern_avx512_attn_f16,                                                \
                      .gemm = kern_avx512_gemm_f16},                                               \
        [KERN_BF16] = {.vec_dot = kern_avx512_vec_dot_bf16,                                        \
                       .from_float = kern_avx512_from_float_bf16,                                  \
                       .to_float = kern_avx512_to_float_bf16},                                     \
        [KERN_Q4_0] = {.vec_dot = kern_avx512_vec_dot_q4_0_##sfx},                                 \
        [KERN_Q4_1] = {.vec_dot = kern_avx512_vec_dot_q4_1_##sfx},                                 \
        [KERN_Q5_0] = {.vec_dot = kern_avx512_vec_dot_q5_0_##sfx},                                 \
        [KERN_Q5_1] = {.vec_dot = kern_avx512_vec_dot_q5_1_##sfx},                                 \
        [KERN_Q8_0] = {.vec_dot = kern_avx512_vec_dot_q8_0_##sfx,                                  \
                       .from_float = kern_avx512_from_float_q8_0},                                 \
        [KERN_Q8_1] = {.from_float = kern_avx512_from_float_q8_1},                                 \
        [KERN_Q2_K] = {.vec_dot = kern_avx512_vec_dot_q2_K_##sfx,                                  \
                       .gemm = kern_avx512_gemm_q2_K_##sfx},                                       \
        [KERN_Q3_K] = {.vec_dot = kern_avx512_vec_dot_q3_K_##sfx,                                  \
                       .gemm = kern_avx512_gemm_q3_K_##sfx},                                       \
        [KERN_Q4_K] = {.vec_dot = kern_avx512_vec_dot_q4_K_##sfx},                                 \
        [KERN_Q5_K] = {.vec_dot = kern_avx512_vec_dot_q5_K_##sfx},                                 \
        [KERN_Q6_K] = {.vec_dot = kern_avx512_vec_dot_q6_K_##sfx},                                 \
        [KERN_Q8_K] = {.from_float = kern_avx512_from_float_q8_K},                                 \
        [KERN_IQ4_NL] = {.vec_dot = kern_avx512_vec_dot_iq4_nl_##sfx},                             \
        [KERN_IQ4_XS] = {.vec_dot = kern_avx512_vec_dot_iq4_xs_##sfx},                             \
    }

const kern_fns kern_avx512_fns[KERN_ISA_NTYPES] = AVX512_TABLE(plain);
const kern_fns kern_avx512_vnni_fns[KERN_ISA_NTYPES] = AVX512_TABLE(vnni);

bool kern_avx512_usable(void) {
    return kern_avx2_usable() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
}

bool kern_avx512_vnni_usable(void) {
    return kern_avx512_usable() && __builtin_cpu_supports("avx512vnni");
}

void kern_avx512_install(kern_fns *table) {
    kern_isa_apply(table, kern_avx512_fns);
    if (__builtin_cpu_supports("avx512bf16"))
        table[KERN_BF16].vec_dot = kern_avx512_vec_dot_bf16_dp;
}

void kern_avx512_vnni_install(kern_fns *table) {
    kern_isa_apply(table, kern_avx512_vnni_fns);
    /* the integer formats' vec_dot and gemm share one arithmetic (x86_avx512.h) */
#define SET_CANON(T, name)                                                                         \
    table[T].vec_dot = kern_avx512_vec_dot_##name##_canon;                                         \
    table[T].gemm = kern_avx512_gemm_##name;
    SET_CANON(KERN_Q8_0, q8_0)
    SET_CANON(KERN_Q4_0, q4_0)
    SET_CANON(KERN_Q5_0, q5_0)
    SET_CANON(KERN_Q4_K, q4_K)
    SET_CANON(KERN_Q5_K, q5_K)
    SET_CANON(KERN_Q6_K, q6_K)
    SET_CANON(KERN_IQ4_NL, iq4_nl)
    SET_CANON(KERN_IQ4_XS, iq4_xs)
    SET_CANON(KERN_Q2_K, q2_K)
    SET_CANON(KERN_Q3_K, q3_K)
#undef SET_CANON
#define SET_PACKED(T, name)                                                                        \
    table[T].pack_bytes = kern_avx512_pack_bytes_##name;                                           \
    table[T].pack = kern_avx512_pack_##name;                                                       \
    table[T].gemm_packed = kern_avx512_gemm_##name##_packed;
    SET_PACKED(KERN_Q8_0, q8_0)
    SET_PACKED(KERN_Q4_0, q4_0)
    SET_PACKED(KERN_Q5_0, q5_0)
    SET_PACKED(KERN_Q4_K, q4_K)
    SET_PACKED(KERN_Q5_K, q5_K)
    SET_PACKED(KERN_Q6_K, q6_K)
    SET_PACKED(KERN_IQ4_NL, iq4_nl)
    SET_PACKED(KERN_IQ4_XS, iq4_xs)
    SET_PACKED(KERN_Q2_K, q2_K)
    SET_PACKED(KERN_Q3_K, q3_K)
#undef SET_PACKED
    if (__builtin_cpu_supports("avx512bf16"))
        table[KERN_BF16].vec_dot = kern_avx512_vec_dot_bf16_dp;
}
