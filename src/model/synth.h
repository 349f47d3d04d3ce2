/*
 * synth.h - writes small models with random weights through the GGUF writer:
 * the demo model of `hearth synth` and the fixtures of tests that must run
 * without ../shared. Real shapes and metadata for each architecture, a
 * SentencePiece-style vocabulary of byte tokens plus common English pieces
 * (post-LN encoders: a WordPiece vocabulary of BERT's special tokens,
 * letters, words and "##" continuations, or XLM-RoBERTa's unigram layout).
 */
#ifndef HEARTH_SYNTH_H
#define HEARTH_SYNTH_H

#include "model.h"

/* RoPE frequency factors a synthetic model carries. Their values come from
 * a generator of their own, so that files differing only in this choice
 * have the same weights: short factors in [1, 1.1), long ones in [1, 31). */
typedef enum synth_rope_factors {
    SYNTH_ROPE_NONE,
    SYNTH_ROPE_LONGROPE,    /* rope_factors_short.weight and rope_factors_long.weight (phi3) */
    SYNTH_ROPE_ONES,        /* both LongRoPE tensors, every factor 1 */
    SYNTH_ROPE_FREQS_SHORT, /* the short factors as rope_freqs.weight */
    SYNTH_ROPE_FREQS_LONG   /* the long factors as rope_freqs.weight */
} synth_rope_factors;

typedef struct synth_params {
    const char *arch; /* "llama", "qwen2", "qwen3", "qwen3moe", "olmoe", "granite",
                         "granitemoe", "granitehybrid", "qwen35", "qwen35moe", "gemma2", "gemma3",
                         "gemma4",      "gemma3n", "falcon-h1", "phi3", "smollm3", "lfm2",
                         "lfm2moe", "mistral3", "qwen2vl", "qwen3vl", "qwen3vlmoe", "bert",
                         "nomic-bert", "nomic-bert-moe" (experts on odd layers), "modern-bert",
                         "eurobert", "gemma-embedding" */
    kern_type type;   /* type of the 2-D weights: F32, F16, Q8_0, Q4_0, Q4_K, Q6_K, ... */
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    bool tied; /* no output.weight: token_embd serves both */
    uint64_t seed;
    int n_rot;                  /* rope.dimension_count (partial rotary); 0: head_dim */
    synth_rope_factors factors; /* SYNTH_ROPE_NONE: no factor tensor */
    int rope_orig_ctx;          /* > 0: rope.scaling.original_context_length (LongRoPE's switch) */
    float rope_attn_factor;     /* > 0: rope.scaling.attn_factor; 0: with rope_orig_ctx what
                                   llama.cpp's converter writes for LongRoPE,
                                   sqrt(1 + ln(n_ctx / orig) / ln(orig)) (1 when n_ctx <= orig) */
    float yarn_factor;          /* > 0: rope.scaling.type yarn and this factor (the original
                                   context: rope_orig_ctx when set) */
    float yarn_beta_fast, yarn_beta_slow; /* > 0: rope.scaling.yarn_beta_fast, _slow */
    float yarn_log_mul;                   /* > 0: rope.scaling.yarn_log_multiplier */
    float attn_temp;                      /* != 0: attention.temperature_scale (mistral3) */
    float q_gain;                /* != 0 and != 1: the Q rows of the attention weights times it */
    float attn_softcap;          /* > 0: attn_logit_softcapping (gemma2; default 50) */
    float final_softcap;         /* > 0: final_logit_softcapping (gemma2's default 30; gemma3:
                                    none unless set) */
    const char *extra_tensor;    /* non-NULL: also a small F32 tensor of this name (tests) */
    int pooling;                 /* encoders' pooling_type (1 mean, 2 cls); 0: mean */
    int n_expert, n_expert_used; /* > 0: a mixture of experts of n_ff wide experts (required
                                    by qwen3moe; llama writes Mixtral's layout) */
    int n_ff_shexp;   /* > 0: and a shared expert this wide (granitemoe, granitehybrid) */
    int n_dense_lead; /* lfm2moe: the first layers' FFNs dense, 2 n_ff wide */
    int n_nextn;      /* > 0: Qwen3.5's multi-token-prediction blocks after the layers */
    int swa_window;   /* > 0: attention.sliding_window (gemma2/3: 8 when 0), for any arch */
    int n_dense;      /* > 0: dense_2 and dense_3 projections through n_dense (gemma-embedding) */
    bool unigram; /* bert: XLM-RoBERTa's vocabulary (bge-m3, multilingual-e5, bge-reranker-v2-m3)
                     as llama.cpp's converter writes it: SentencePiece unigram pieces
                     (tokenizer.ggml.model "t5"), <s> text </s>, one token type */
    int rerank;   /* > 0: a reranker with this many labels (pooling_type rank): an encoder gets
                    cls and cls.output with biases, a decoder cls.output alone and a rerank
                    prompt (Qwen3-Reranker's layout) */
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

/* A random vision projector ("mmproj", llama.cpp's clip GGUF) of the gemma3
 * type for a text model n_embd_text wide (src/vision/clip.c): a SigLIP
 * tower of image_size / patch patches per side, pooled merge x merge. The
 * tensors and keys are those Gemma 3's converter writes (the matrices and
 * the projection as `type`; the patch kernel, positions, norms and biases
 * F32). */
typedef struct synth_vision_params {
    kern_type type; /* F32 or F16 (the converter's default) */
    int n_embd_text, image_size, patch, n_embd, n_layer, n_head, n_ff, merge;
    uint64_t seed;
} synth_vision_params;
synth_vision_params synth_vision_default_params(void);
hearth_err synth_vision_write(const char *path, const synth_vision_params *p);
#endif
