/*
 * ftype.c - a label for a GGUF file's quantization, as llama-bench and
 * ollama print it: llama.cpp's general.file_type when the file has one
 * Hearth knows, else the tensor type that holds most weights (files such as
 * hearth synth's carry no file_type).
 */
#include "gguf.h"

#include "kernels/kernels.h"

const char *gguf_ftype_name(uint32_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 21: return "Q2_K_S";
    case 25: return "IQ4_NL";
    case 30: return "IQ4_XS";
    case 32: return "BF16";
    default: return NULL;
    }
}

const char *gguf_quant_label(const gguf_file *f) {
    uint32_t ft = 0;
    const char *name = gguf_get_u32(f, "general.file_type", &ft) ? gguf_ftype_name(ft) : NULL;
    if (name) return name;
    uint64_t n[KERN_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->type < KERN_TYPE_COUNT) n[t->type] += (uint64_t)t->n_elements;
    }
    uint32_t best = 0;
    for (uint32_t t = 1; t < KERN_TYPE_COUNT; t++)
        if (n[t] > n[best]) best = t;
    return kern_type_get(best)->name;
}
