/*
 * arch.c - the architectures Hearth runs, as data. Adding a family whose
 * blocks are a combination of these features is one table row. The
 * encoders (bert: all-MiniLM, bge; nomic-bert: nomic-embed-text;
 * gemma-embedding: EmbeddingGemma) share the decoders' forward pass: their
 * differences (no causal mask, post-LN with biases, learned positions or
 * none, an ungated GELU FFN, a centred sliding window) are flags.
 */
#include "model.h"

#include <string.h>

static const arch_desc arches[] = {
    {.name = "llama", .rope = ROPE_NORM, .act = FFN_SILU, .moe = MOE_OPTIONAL},
    {.name = "qwen2", .rope = ROPE_NEOX, .act = FFN_SILU},
    {.name = "smollm3", .rope = ROPE_NORM, .act = FFN_SILU, .nope_every = 4},
    {.name = "qwen3", .rope = ROPE_NEOX, .act = FFN_SILU, .qk_norm = QK_NORM_HEAD},
    {.name = "qwen3moe",
     .rope = ROPE_NEOX,
     .act = FFN_SILU,
     .qk_norm = QK_NORM_HEAD,
     .moe = MOE_ALWAYS,
     .expert_ff = true},
    {.name = "olmoe",
     .rope = ROPE_NEOX,
     .act = FFN_SILU,
     .qk_norm = QK_NORM_FULL,
     .moe = MOE_ALWAYS,
     .moe_raw_weights = true},
    {.name = "olmo2",
     .rope = ROPE_NEOX,
     .act = FFN_SILU,
     .qk_norm = QK_NORM_FULL,
     .post_norms = true,
     .no_pre_norms = true,
     .refuse_swa = true},
    {.name = "granite", .rope = ROPE_NORM, .act = FFN_SILU, .granite_scales = true},
    {.name = "granitemoe",
     .rope = ROPE_NORM,
     .act = FFN_SILU,
     .moe = MOE_ALWAYS,
     .granite_scales = true},
    {.name = "gemma2",
     .rope = ROPE_NEOX,
     .act = FFN_GELU,
     .post_norms = true,
     .scale_embd = true,
     .swa = true,
     .swa_window = 4096,
     .swa_pattern = 2,
     .swa_global_rope = true,
     .scale_q = true,
     .wide_scale_layers = 46,
     .tied_only = true,
     .softcap = true},
    {.name = "gemma3",
     .rope = ROPE_NEOX,
     .act = FFN_GELU,
     .qk_norm = QK_NORM_HEAD,
     .post_norms = true,
     .scale_embd = true,
     .swa = true,
     .swa_pattern = 6,
     .scale_q = true,
     .wide_scale_layers = 62},
    {.name = "phi3",
     .rope = ROPE_NEOX,
     .act = FFN_SILU,
     .fused_qkv = true,
     .fused_gate_up = true,
     .scale_q = true},
    {.name = "gemma-embedding",
     .rope = ROPE_NEOX,
     .act = FFN_GELU,
     .qk_norm = QK_NORM_HEAD,
     .post_norms = true,
     .scale_embd = true,
     .swa = true,
     .swa_pattern = 6,
     .scale_q = true,
     .encoder = true,
     .swa_symmetric = true},
    {.name = "bert",
     .rope = ROPE_NONE,
     .act = FFN_GELU,
     .encoder = true,
     .post_ln = true,
     .learned_pos = true,
     .ffn_no_gate = true,
     .biases = true},
    {.name = "nomic-bert",
     .rope = ROPE_NEOX,
     .act = FFN_SILU,
     .fused_qkv = true,
     .encoder = true,
     .post_ln = true},
};

const arch_desc *arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
        if (strlen(arches[i].name) == len && memcmp(arches[i].name, name, len) == 0)
            return &arches[i];
    return NULL;
}
