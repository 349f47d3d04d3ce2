/*
 * model.h - the model layer's interface: bytes on disk to logits.
 *
 * A model is a GGUF mapping plus views of its tensors bound to an
 * architecture description. Architectures are data (arch_desc): the forward
 * pass in forward.c reads the flags and never branches on a family name.
 */
#ifndef HEARTH_MODEL_H
#define HEARTH_MODEL_H

#include "gguf.h"
#include "kernels/kernels.h"

typedef enum rope_mode {
    ROPE_NORM, /* rotate adjacent pairs (x[2i], x[2i+1]): llama */
    ROPE_NEOX  /* rotate x[i] with x[i + n_rot/2]: qwen, gemma, phi */
} rope_mode;

typedef enum ffn_act { FFN_SILU, FFN_GELU } ffn_act;

typedef struct arch_desc {
    const char *name;
    rope_mode rope;
    ffn_act act;
    bool fused_qkv;     /* attn_qkv = [q; k; v] rows (phi3) */
    bool fused_gate_up; /* ffn_up = [gate; up] rows (phi3) */
    bool qk_norm;       /* per-head RMSNorm of q and k before RoPE (qwen3, gemma3) */
    bool post_norms;    /* RMSNorm of each sub-layer's output before the residual (gemma3) */
    bool scale_embd;    /* input embeddings times sqrt(n_embd) (gemma3) */
    bool swa;           /* sliding-window layers by pattern (gemma3) */
    bool scale_q;       /* 1/sqrt(head_dim) multiplies Q after RoPE, not the scores (gemma3) */
} arch_desc;

/* The description of architecture `name`, or NULL if Hearth has none. */
const arch_desc *arch_find(const char *name, size_t len);

typedef struct model_hparams {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_ff;
    int n_head, n_head_kv, head_dim, n_rot;
    float rms_eps;
    float rope_base, rope_base_swa, rope_scale; /* rope_scale multiplies positions */
    int swa_window, swa_pattern;                /* 0: no sliding window */
    float final_softcap;                        /* 0: none */
    int pooling; /* hearth_pooling from "<arch>.pooling_type"; mean when absent or unknown */
} model_hparams;

/* A 2-D weight: n_rows rows of n_cols elements of `type`, in the mapping. */
typedef struct model_weight {
    kern_type type;
    const void *data;
    int64_t n_rows, n_cols;
} model_weight;

typedef struct model_layer {
    const float *attn_norm;               /* [n_embd] */
    model_weight wq, wk, wv, wqkv, wo;    /* wqkv when fused */
    const float *bq, *bk, *bv;            /* optional biases */
    const float *q_norm, *k_norm;         /* [head_dim] */
    const float *post_attn_norm;          /* [n_embd] */
    const float *ffn_norm;                /* [n_embd] */
    model_weight gate, up, gate_up, down; /* gate_up when fused */
    const float *post_ffn_norm;           /* [n_embd] */
    bool swa;                             /* sliding-window attention layer */
    float rope_base, rope_scale;
} model_layer;

struct hearth_model {
    gguf_file *gguf;
    const arch_desc *arch;
    model_hparams hp;
    model_weight tok_embd, output; /* output == tok_embd when tied */
    const float *output_norm;      /* [n_embd] */
    const float *rope_freqs;       /* [n_rot/2] or NULL */
    model_layer *layers;           /* [n_layer] */
    hr_pool *pool;
    void *vocab; /* the engine's tokenizer; the model never reads it */
};

/* Maps and binds the model at `path` with a pool of n_threads (<= 0: one per
 * physical core). On success *out owns it; free with model_close. */
hearth_err model_open(const char *path, int n_threads, hearth_model **out);
void model_close(hearth_model *m);

hearth_model *model_session_model(const hearth_session *s);
/* Token ids held in the session's KV cache, positions 0..pos-1. */
const int32_t *model_session_tokens(const hearth_session *s);
/* Logits of the last token decoded ([n_vocab]); valid until the next decode. */
const float *model_session_logits(const hearth_session *s);
/* Most tokens one forward pass of the session takes (hearth_decode_multi). */
int model_session_n_batch(const hearth_session *s);

/* Reads the hyper-parameters of `arch` from the file's metadata. */
hearth_err model_load_hparams(const gguf_file *f, const arch_desc *arch, model_hparams *hp);
/* Binds every tensor the architecture needs, checking types and shapes. */
hearth_err model_bind_tensors(hearth_model *m);

#endif
