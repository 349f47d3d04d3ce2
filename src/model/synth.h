/*
 * synth.h - writes small models with random weights through the GGUF writer:
 * the demo model of `hearth synth` and the fixtures of tests that must run
 * without ../shared. Real shapes and metadata for each architecture, a
 * SentencePiece-style vocabulary of byte tokens plus common English pieces.
 */
#ifndef HEARTH_SYNTH_H
#define HEARTH_SYNTH_H

#include "model.h"

typedef struct synth_params {
    const char *arch;  /* "llama", "qwen2", "qwen3", "gemma3", "phi3" */
    kern_type type;    /* type of the 2-D weights: F32, F16, Q8_0, Q4_0, Q4_K, Q6_K, ... */
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    bool tied;         /* no output.weight: token_embd serves both */
    uint64_t seed;
} synth_params;

synth_params synth_default_params(void);
hearth_err synth_write(const char *path, const synth_params *p);

#endif
