/*
 * dispatch.c - picks, once per process, the kernels every type runs with.
 *
 * The table starts as the scalar references; each instruction set this CPU
 * has (and HEARTH_ISA=scalar|avx2|avx512 allows) then overrides the entries
 * it implements, so an ISA file only registers what it speeds up and the
 * rest stays scalar. Filled under pthread_once; read-only afterwards.
 *
 * from_float is what ggml-cpu uses to convert activations to a type (its
 * type_traits_cpu[type].from_float): for Q8_0 and Q8_1 that is the x86 SIMD
 * quantizer, whose rounding differs from the weight reference, so the
 * scalar entry is its exact scalar twin (kern_quantize_q8_*_act) and not
 * kern_ref_quantize_q8_*. For the other types it is the reference.
 */
#include "kernels/isa.h"
#include "kernels/kern_ref.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KD_TABLE_N 43 /* covers every id kern_type_get knows */

static kern_fns kd_table[KD_TABLE_N];
static bool kd_present[KD_TABLE_N];
static const char *kd_isa = "scalar";
static pthread_once_t kd_once = PTHREAD_ONCE_INIT;

static void kd_set(kern_type t, kern_vec_dot_fn vd, kern_from_float_fn ff, kern_to_float_fn tf) {
    kd_table[t] = (kern_fns){.vec_dot = vd, .from_float = ff, .to_float = tf};
    kd_present[t] = true;
}

#define KD_REF(t, name)                                                                            \
    kd_set(t, kern_ref_vec_dot_##name, kern_ref_quantize_##name, kern_ref_dequantize_##name)

static void kd_init_scalar(void) {
    KD_REF(KERN_F32, f32);
    KD_REF(KERN_F16, f16);
    KD_REF(KERN_BF16, bf16);
    KD_REF(KERN_Q4_0, q4_0);
    KD_REF(KERN_Q4_1, q4_1);
    KD_REF(KERN_Q5_0, q5_0);
    KD_REF(KERN_Q5_1, q5_1);
    KD_REF(KERN_Q2_K, q2_K);
    KD_REF(KERN_Q3_K, q3_K);
    KD_REF(KERN_Q4_K, q4_K);
    KD_REF(KERN_Q5_K, q5_K);
    KD_REF(KERN_Q6_K, q6_K);
    KD_REF(KERN_Q8_K, q8_K); /* x86 ggml quantizes Q8_K activations with the reference */
    KD_REF(KERN_IQ4_NL, iq4_nl);
    KD_REF(KERN_IQ4_XS, iq4_xs);
    kd_set(KERN_Q8_0, kern_ref_vec_dot_q8_0, kern_quantize_q8_0_act, kern_ref_dequantize_q8_0);
    kd_set(KERN_Q8_1, kern_ref_vec_dot_q8_1, kern_quantize_q8_1_act, kern_ref_dequantize_q8_1);
}

/* Instruction sets in increasing order of preference. `usable` says whether
 * this CPU runs it; `install` overrides table entries. ISA files add a row
 * here (e.g. {"avx2", cpu_has_avx2, kern_avx2_register}). */
typedef struct {
    const char *name;
    bool (*usable)(void);
    void (*install)(kern_fns *table);
} kd_isa_entry;

static const kd_isa_entry kd_isas[] = {
    {"scalar", NULL, NULL}, KERN_ISA_ROWS /* isa.h: the rows of this architecture */
};

static void kd_init(void) {
    kd_init_scalar();
    /* HEARTH_ISA caps the choice at the named set ("scalar" disables all). */
    const char *cap = getenv("HEARTH_ISA");
    for (size_t i = 1; i < sizeof kd_isas / sizeof kd_isas[0]; i++) {
        if (cap && strcmp(cap, kd_isas[i - 1].name) == 0) break;
        if (!kd_isas[i].usable()) continue;
        kd_isas[i].install(kd_table);
        kd_isa = kd_isas[i].name;
    }
}

const kern_fns *kern_get(kern_type type) {
    pthread_once(&kd_once, kd_init);
    if ((unsigned)type >= KD_TABLE_N || !kd_present[type]) return NULL;
    return &kd_table[type];
}

const char *kern_isa_name(void) {
    pthread_once(&kd_once, kd_init);
    return kd_isa;
}
