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
    const char *arch; /* "llama", "qwen2", "qwen3", "gemma3", "phi3" */
    kern_type type;   /* type of the 2-D weights: F32, F16, Q8_0, Q4_0, Q4_K, Q6_K, ... */
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    bool tied; /* no output.weight: token_embd serves both */
    uint64_t seed;
} synth_params;

synth_params synth_default_params(void);
hearth_err synth_write(const char *path, const synth_params *p);

/* A random LoRA adapter (llama.cpp's GGUF format, lora.c) for the model
 * file `base`: a lora_a/lora_b pair for each targeted matrix. A is
 * N(0, 1/n_in) (token_embd: N(0, 1/n_embd)), B is N(0, strength^2 / rank),
 * so that at scale 1 and alpha = rank the update is about `strength` times
 * the size of W x. */
typedef struct synth_lora_params {
    kern_type type;      /* of A and B: F32, F16, BF16, Q8_0 (rank and n_in multiples of 32) */
    int rank;            /* >= 1 */
    float alpha;         /* adapter.lora.alpha; 0: the key is left out */
    float strength;      /* see above */
    const char *targets; /* comma-separated weight names without "blk.N." and ".weight"
                            ("attn_q,ffn_down,output"); NULL: every matrix (token_embd only
                            when the output is not tied) */
    uint64_t seed;
} synth_lora_params;

synth_lora_params synth_lora_default_params(void);
hearth_err synth_lora_write(const char *path, const char *base, const synth_lora_params *p);

#endif
