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
    ROPE_NEOX, /* rotate x[i] with x[i + n_rot/2]: qwen, gemma, phi, nomic-bert */
    ROPE_NONE  /* no rotation: learned absolute positions instead (bert) */
} rope_mode;

typedef enum ffn_act { FFN_SILU, FFN_GELU } ffn_act;

typedef enum qk_norm_kind {
    QK_NORM_NONE,
    QK_NORM_HEAD, /* RMSNorm of each head of q and k, [head_dim] weights (qwen3, gemma3) */
    QK_NORM_FULL  /* RMSNorm of the whole q and k, [n_q] and [n_kv] weights (olmoe) */
} qk_norm_kind;

/* A mixture of experts' shared expert: a SwiGLU FFN on every token beside
 * the chosen experts, expert_shared_feed_forward_length wide. */
typedef enum arch_shexp {
    SHEXP_NONE,
    SHEXP_OPTIONAL, /* when the file gives the width (Granite; 0 or absent: none) */
    SHEXP_GATED     /* always (default width: feed_forward_length), times
                       sigmoid(ffn_gate_inp_shexp . x) (Qwen3.5-MoE) */
} arch_shexp;

typedef enum arch_moe {
    MOE_NEVER,    /* dense; an expert_count key is ignored, as llama.cpp ignores it */
    MOE_OPTIONAL, /* experts when the file has expert_count > 0 (llama: Mixtral) */
    MOE_ALWAYS    /* every layer's FFN is a mixture of experts (qwen3moe) */
} arch_moe;

typedef struct arch_desc {
    const char *name;
    rope_mode rope;
    ffn_act act;
    bool fused_qkv;       /* attn_qkv = [q; k; v] rows (phi3) */
    bool fused_gate_up;   /* ffn_up = [gate; up] rows (phi3) */
    qk_norm_kind qk_norm; /* RMSNorm of q and k before RoPE */
    bool post_norms;      /* RMSNorm of each sub-layer's output before the residual (gemma3) */
    bool no_pre_norms;    /* no attn_norm / ffn_norm: the sub-layers read x itself (olmo2) */
    bool scale_embd;      /* input embeddings times sqrt(n_embd) (gemma3) */
    bool swa;             /* sliding-window layers by pattern (gemma2, gemma3) */
    /* The sliding window's defaults: the window and the layer pattern when the
     * file gives none (window 0: none unless the file sets one), and whether
     * the window layers keep the global RoPE base and scale (gemma2) or take
     * rope.freq_base_swa (10000 when absent) unscaled (gemma3). */
    int swa_window, swa_pattern;
    bool swa_global_rope;
    /* OLMo 3: the window layers rotate plainly, with the file's global base
     * (or rope.freq_base_swa), no scaling, no YaRN and no magnitude factor. */
    bool swa_plain_rope;
    bool scale_q; /* the attention scale multiplies Q after RoPE, not the scores (gemma2, gemma3) */
    /* llama.cpp runs a sliding window from attention.sliding_window for this
     * family (EXAONE 4.0), or for a file of refuse_swa_layers layers
     * without the key (EXAONE 4.0 32B), Hearth does not: such a file is
     * refused, not run with full attention. */
    bool refuse_swa;
    int refuse_swa_layers;
    /* Every nope_every-th layer (il + 1 a multiple of it) rotates nothing: its
     * keys carry no position (SmolLM3: 4); 0: every layer rotates. */
    int nope_every;
    /* llama.cpp's attention scale is 1/sqrt(n_embd / n_head) instead of
     * 1/sqrt(head_dim) for a file of this many layers (the gemma 27B
     * models, which it recognizes by layer count); 0: never. */
    int wide_scale_layers;
    /* IBM Granite's multipliers: embedding_scale (the input embeddings),
     * residual_scale (each sub-layer's output before its residual add),
     * attention.scale (the scores, instead of 1/sqrt(head_dim)) and
     * logit_scale (the logits are divided by it). */
    bool granite_scales;
    /* The output layer is token_embd; llama.cpp refuses an output.weight (gemma2). */
    bool tied_only;
    /* tanh soft-capping of attention scores (default 50) and logits (default 30) (gemma2). */
    bool softcap;
    /* Encoders (bert, nomic-bert, gemma-embedding): embeddings only, no
     * output layer. Every token of a text attends to every other
     * (non-causal), so a text runs in one pass. */
    bool encoder;
    /* BERT's post-LN (bert, nomic-bert): LayerNorms with bias come after each
     * residual addition (x = norm(x + attn(x)), x = norm(x + ffn(x))) and
     * after the input embeddings (token_embd_norm), which add token type 0's
     * row (token_types) and, for learned positions, position_embd's row;
     * the last layer's norm is the final one. */
    bool post_ln;
    /* The sliding window is centred on the token: an encoder's token sees
     * those within window / 2 positions either side (gemma-embedding). */
    bool swa_symmetric;
    bool learned_pos; /* position_embd.weight [n_ctx_train][n_embd] (bert) */
    bool ffn_no_gate; /* act(up x + b) without a gate (bert's GELU FFN) */
    bool biases;      /* optional biases on attn_output, ffn_up, ffn_down (bert) */
    arch_moe moe;     /* whether the FFN is a mixture of experts (moe.c) */
    bool expert_ff;   /* experts' width from expert_feed_forward_length, else feed_forward_length
                         / expert_used_count (qwen3moe); without: feed_forward_length */
    bool yarn_keys;   /* reads YaRN's beta_fast, beta_slow and log multiplier and the
                         attention temperature (mistral3) */
    bool moe_raw_weights; /* the chosen experts' probabilities weigh them as they are, not
                             divided by their sum (olmoe) */
    arch_shexp shexp;     /* the experts' shared one, if any */
    /* LFM2-MoE: expert_gating_func chooses the router's softmax or sigmoid,
     * blk.N.exp_probs_b.bias moves each expert's score for the choice (not
     * for its weight), and the first leading_dense_block_count layers have
     * a dense FFN feed_forward_length wide. */
    bool moe_gating;
    /* LFM2: a layer whose attention.head_count_kv entry is 0 is a gated short
     * convolution (blk.N.shortconv.*) instead of attention; a session keeps
     * each such layer's convolution inputs per position (forward.c). */
    bool shortconv;
    /* Granite 4.0-H: a layer whose attention.head_count_kv entry is 0 is a
     * Mamba-2 layer (blk.N.ssm_*, ssm.c) instead of attention; a session
     * keeps each such layer's recurrent state. */
    bool ssm;
    /* Qwen3.5: Gated DeltaNet layers (ssm.c) in place of attention on the
     * layers attention.recurrent_layers marks, else on all but every
     * full_attention_interval-th (4); they share Mamba-2's ssm.* keys and
     * state machinery. The attention layers' Q projection is twice as wide:
     * each head's q, then its gate, by whose sigmoid the head's output is
     * multiplied (attn_gate). */
    bool gdn, attn_gate;
    /* Interleaved multimodal RoPE (Qwen3.5's IMROPE): rotary pair i takes
     * the position of section (i mod the sections' sum) mod 3, interleaved
     * t, h, w while each has pairs left; text puts its position in t, h and w
     * and 0 in the fourth, so the pairs past them do not rotate. mrope
     * (Qwen2-VL, Qwen2.5-VL): the same with the sections contiguous. Either
     * reads rope.dimension_sections; Hearth runs text through them (no
     * vision projector for these families yet). */
    bool imrope, mrope;
    /* Gemma 4: the layers past
     * n_layer - attention.shared_kv_layers compute no keys or values and
     * read those of the last window layer or the last global layer before
     * them (shared_kv); per-layer embeddings (per_layer_embd, when the file
     * gives embedding_length_per_layer_input); each head's V normed without
     * a weight and K standing in for a missing attn_v (v_norm); an
     * attention scale of 1, the q and k norms scaling instead (unit_scale);
     * an optional scalar multiplying each layer's output
     * (layer_output_scale); the window layers' own head size and rotary
     * dims (attention.key_length_swa, rope.dimension_count_swa), the RoPE
     * factors (rope_freqs) on the global layers only, and a
     * feed_forward_length per layer (layer_dims). */
    bool shared_kv, per_layer_embd, v_norm, unit_scale, out_scale, layer_dims;
    /* Logits soft-capped at 30 unless final_logit_softcapping says
     * otherwise, the scores not (gemma4; gemma2's softcap caps both). */
    bool final_softcap;
    /* Gemma 3n (altup.c): the residual stream is MODEL_ALTUP streams, of
     * which each layer runs one (AltUp's predict and correct steps around
     * it); a low-rank LAuReL branch beside the attention; activation
     * sparsity on the first layers' FFN gates; without
     * attention.shared_kv_layers, the layers from kv_from_default on share
     * keys and values (llama.cpp's constant for the family). */
    bool altup;
    int kv_from_default;
    /* Falcon-H1: every layer runs attention and a Mamba-2 mixer (ssm.c) side
     * by side on its normed input and adds their outputs; each keeps keys
     * and values and a recurrent state. */
    bool ssm_parallel;
    /* ModernBERT: the pre-norms, the embeddings' norm (token_embd_norm, no
     * bias) and the final norm are LayerNorms without bias, not RMSNorms;
     * layer 0 has no attn_norm (it reads the normed embeddings). The first
     * layer of each sliding-window pattern is the global one (il % pattern
     * == 0: swa_dense_first), and a file without attention.sliding_window has
     * no window layers. <arch>.hidden_activation picks the FFN's
     * activation: gelu (GeGLU) or silu (SwiGLU) (hidden_act). A reranker's
     * head reads the mean of the rows (layer_norm; rank.c). */
    bool layer_norm, swa_dense_first, hidden_act;
    const char *output_norm; /* the final norm's tensor; NULL: output_norm.weight */
    const char *ffn_norm;    /* the FFN's norm; NULL: ffn_norm.weight */
} arch_desc;

/* The description of architecture `name`, or NULL if Hearth has none. */
const arch_desc *arch_find(const char *name, size_t len);
/* Every architecture's name, ", " between them, into out (truncated to cap). */
void arch_names(char *out, size_t cap);

/* llama.cpp's LLAMA_MAX_EXPERTS; and a bound on experts per token, which
 * sizes per-token arrays on the stack. */
enum { MODEL_MAX_EXPERTS = 1024, MODEL_MAX_EXPERTS_USED = 64 };

/* Gemma 3n's AltUp streams: altup.num_inputs, which every published model
 * and llama.cpp's converter fix at 4 (the stream run is altup.active_idx 0). */
enum { MODEL_ALTUP = 4 };

typedef struct model_hparams {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_ff;
    ffn_act act; /* the FFN's activation: the architecture's, or the file's (arch hidden_act) */
    int n_head, n_head_kv, head_dim, n_rot;
    float rms_eps; /* also LayerNorm's epsilon (attention.layer_norm_epsilon) for encoders */
    float rope_base, rope_base_swa, rope_scale, rope_scale_swa; /* a scale multiplies positions */
    int n_ctx_orig;         /* rope.scaling.original_context_length (n_ctx_train when absent): a
                               session longer than this takes the long LongRoPE factors */
    float rope_attn_factor; /* rope.scaling.attn_factor (1 when absent): multiplies RoPE's cos
                               and sin, so the rotated part of q and k (LongRoPE's scaling);
                               with YaRN, times llama.cpp's yarn_attn_factor */
    bool yarn;              /* rope.scaling.type yarn: RoPE with YaRN's ramp (ext_factor 1) */
    float yarn_beta_fast, yarn_beta_slow; /* YaRN's correction turns (32 and 1 unless arch
                                             yarn_keys reads them from the file) */
    /* Llama 4's attention temperature (arch yarn_keys: Ministral 3): Q after
     * RoPE times 1 + attn_temp_scale ln(floor(pos / attn_temp_floor) + 1);
     * 0: none. The floor is the file's original context. */
    float attn_temp_scale;
    int attn_temp_floor;
    int swa_window, swa_pattern; /* 0: no sliding window */
    bool swa_by_layer;    /* attention.sliding_window_pattern marks each layer (model_swa_layer) */
    float attn_scale;     /* multiplies Q (arch scale_q) or the scores */
    float embd_scale;     /* multiplies the input embeddings (1: none) */
    float residual_scale; /* multiplies each sub-layer's output before the add (1: none) */
    float logit_scale;    /* the logits are multiplied by 1 / logit_scale (1: none) */
    float attn_softcap, final_softcap; /* cap * tanh(x / cap) of scores and logits; 0: none */
    int pooling; /* hearth_pooling from "<arch>.pooling_type"; mean when absent or unknown;
                    a reranker's: the row its head reads (cls for encoders, else last) */
    bool rank;   /* pooling_type rank: a reranker, scored by its classification head */
    /* Mixture of experts (0: a dense FFN): each token's FFN is the sum of
     * its n_expert_used best experts' (by the router's softmax), weighted by
     * their probabilities renormalized to sum 1. n_ff is then an expert's
     * width (expert_feed_forward_length). n_ff_shexp > 0: a shared expert
     * of that width (expert_shared_feed_forward_length: Granite 4.0-H Tiny)
     * runs on every token and is added to the chosen experts' sum. */
    int n_expert, n_expert_used, n_ff_shexp;
    /* arch moe_gating: the router's sigmoid instead of its softmax, and the
     * leading dense layers (none: 0) with their FFN's width. */
    bool moe_sigmoid;
    int n_dense_lead, n_ff_dense;
    /* > 0: experts on the layers il with il % moe_every == 1 only, the others
     * dense (moe_every_n_layers: nomic-bert-moe's 2). */
    int moe_every;
    /* Short convolutions (arch shortconv): the kernel's length
     * (shortconv.l_cache: the token and conv_l - 1 before it) and how many
     * layers are convolutions; 0 and 0 for a model without. */
    int conv_l, n_conv;
    /* Mamba-2 layers (arch ssm; 0 for a model without): how many; the
     * convolution's kernel (ssm.conv_kernel), the inner width d_inner
     * (ssm.inner_size: heads of d_inner / ssm_heads channels), the state per
     * channel (ssm.state_size), the heads (ssm.time_step_rank) and the
     * groups sharing B and C (ssm.group_count). */
    int n_ssm, ssm_conv, ssm_inner, ssm_state, ssm_heads, ssm_groups;
    bool ssm_parallel; /* arch ssm_parallel: the n_ssm Mamba-2 layers also attend */
    /* Layers past n_layer that predict further tokens (nextn_predict_layers,
     * Qwen3.5's MTP block): in the file, never run. */
    int n_nextn;
    bool rope_off;        /* rope.scaling.finetuned = false: no layer rotates (Granite 4.0-H) */
    int rope_sections[4]; /* arch imrope, mrope: rope.dimension_sections */
    /* Arch layer_dims: the window layers' head size and rotary dims (the
     * others' are head_dim and n_rot); n_ff is then the widest layer's.
     * Otherwise equal to head_dim and n_rot. */
    int head_dim_swa, n_rot_swa;
    /* Arch shared_kv: the layers from n_kv_from_start on read an earlier
     * layer's keys and values (n_layer: none does). */
    int n_kv_from_start;
    int n_embd_pl;   /* arch per_layer_embd: each layer's embedding width (0: none) */
    int laurel_rank; /* arch altup: the LAuReL branch's rank (laurel_l's rows) */
} model_hparams;

/* The layers that keep keys and values in a session's cache: all but the
 * short convolutions, Mamba-2 layers (unless they attend too) and layers
 * that share another's. */
static inline int model_kv_layers(const model_hparams *hp) {
    return hp->n_kv_from_start - hp->n_conv - (hp->ssm_parallel ? 0 : hp->n_ssm);
}

/* The widest head and rotary dims of any layer: what buffers are sized by. */
static inline int model_max_head_dim(const model_hparams *hp) {
    return hp->head_dim > hp->head_dim_swa ? hp->head_dim : hp->head_dim_swa;
}
static inline int model_max_rot(const model_hparams *hp) {
    return hp->n_rot > hp->n_rot_swa ? hp->n_rot : hp->n_rot_swa;
}

/* A Mamba-2 layer's convolution channels (x, B and C: d_inner + 2 groups *
 * d_state) and the floats of its recurrent state: the convolution's last
 * ssm_conv - 1 inputs per channel, then the scan's d_state per inner
 * channel. */
static inline int64_t model_ssm_conv_dim(const model_hparams *hp) {
    return (int64_t)hp->ssm_inner + 2 * (int64_t)hp->ssm_groups * hp->ssm_state;
}
static inline int64_t model_ssm_state_floats(const model_hparams *hp) {
    return (int64_t)(hp->ssm_conv - 1) * model_ssm_conv_dim(hp) +
           (int64_t)hp->ssm_inner * hp->ssm_state;
}

typedef struct model_lora_ab model_lora_ab;

/* A 2-D weight: n_rows rows of n_cols elements of `type`, in the mapping,
 * and (model_pack) the kernels' packed form of it, or NULL. */
typedef struct model_weight {
    kern_type type;
    const void *data;
    const void *packed;
    int64_t n_rows, n_cols;
    const model_lora_ab *lora; /* LoRA adapters on this weight (a chain; lora.c), NULL: none */
} model_weight;

/* Sees a product's weight and its n input rows ([n][w->n_cols]) before the
 * product is computed: what `hearth imatrix` accumulates (imatrix.c). */
typedef void (*model_observe_fn)(void *user, const model_weight *w, const float *x, int n);

/* The product op of w (kern_matmul_multi), its packed form when it has one. */
static inline kern_matmul_op model_weight_op(const model_weight *w, float *y, int64_t ldy) {
    return (kern_matmul_op){.type = w->type,
                            .w = w->packed ? w->packed : w->data,
                            .packed = w->packed != NULL,
                            .n_rows = w->n_rows,
                            .y = y,
                            .ldy = ldy};
}

/* y = w x for n rows of x (kern_matmul, through the packed form). */
static inline void model_weight_matmul(hr_pool *pool, const model_weight *w, const float *x, int n,
                                       float *y, int64_t ldy, void *scratch) {
    const kern_matmul_op op = model_weight_op(w, y, ldy);
    kern_matmul_multi(pool, &op, 1, w->n_cols, x, n, scratch);
}

/* One weight's low-rank update from one adapter (lora.c): the product W x
 * becomes W x + scale B (A x). A and B stay in the adapter's mapping. For
 * token_embd the row of token id in A ([n_vocab][rank]) replaces A x. */
struct model_lora_ab {
    model_weight a;            /* [rank][n_in] (token_embd: [n_vocab][rank]) */
    model_weight b;            /* [n_out][rank] */
    float scale;               /* user scale * alpha / rank (user scale alone when alpha is 0) */
    bool gather;               /* token_embd: A's row of each token id, no product */
    const model_lora_ab *next; /* the next adapter on the same weight */
};

/* One adapter file bound to a model. */
typedef struct model_lora {
    gguf_file *gguf;   /* the adapter's mapping, owned */
    model_lora_ab *ab; /* [n_ab] */
    int n_ab;
    float alpha, scale; /* adapter.lora.alpha (0: none), the user's scale */
} model_lora;

typedef struct model_layer {
    const float *attn_norm;                       /* [n_embd] */
    model_weight wq, wk, wv, wqkv, wo;            /* wqkv when fused */
    const float *bq, *bk, *bv, *bqkv;             /* optional biases (bqkv: [q; k; v] when fused) */
    const float *bo, *b_up, *b_down;              /* optional biases (arch->biases) */
    const float *attn_out_norm, *attn_out_norm_b; /* encoders: LayerNorm of x + attention */
    const float *out_norm, *out_norm_b;           /* encoders: LayerNorm of x + ffn */
    const float *q_norm, *k_norm;                 /* [head_dim] */
    const float *post_attn_norm;                  /* [n_embd] */
    const float *ffn_norm;                        /* [n_embd] */
    model_weight gate, up, gate_up, down;         /* gate_up when fused */
    model_weight gate_inp;                        /* MoE: the router, [n_expert][n_embd] */
    const float *exp_probs_b;                     /* MoE: the choice's bias, [n_expert] or NULL */
    model_weight *exps; /* MoE: [3][n_expert] views of ffn_{gate,up,down}_exps, one per expert */
    model_weight gate_shexp, up_shexp, down_shexp; /* MoE: the shared expert (hp.n_ff_shexp) */
    model_weight gate_inp_shexp;                   /* its gate, [1][n_embd] (SHEXP_GATED) */
    const float *post_ffn_norm;                    /* [n_embd] */
    bool swa;                                      /* sliding-window attention layer */
    bool rope; /* RoPE on q and k (not on a NoPE layer, nor without positions) */
    float rope_base, rope_scale;
    float rope_mscale;  /* multiplies cos and sin: rope_attn_factor, with YaRN's magnitude */
    bool yarn;          /* YaRN on this layer's RoPE (hp.yarn, but not OLMo 3's window layers) */
    float yarn_dims[2]; /* its correction dims for this layer's base */
    /* A short-convolution layer (LFM2) in place of attention: in_proj
     * [3 n_embd][n_embd] gives b, c and x; the depthwise causal kernel
     * conv_w [n_embd][conv_l] runs over b * x of this token and those
     * before; out_proj [n_embd][n_embd] maps c * conv back. conv_w is NULL
     * on an attention layer. conv_slot: its place among the session's
     * per-layer histories of b * x (session.h), -1 on an attention layer;
     * kv_slot: an attention layer's place in the session's K and V caches,
     * -1 on a convolution layer (which has no keys or values). */
    const float *conv_w;
    model_weight conv_in, conv_out;
    int conv_slot, kv_slot;
    /* A Mamba-2 layer (ssm.c) in place of attention: ssm_in [d_in][n_embd]
     * gives z, x B C and dt (d_in = 2 d_inner + 2 groups d_state + heads);
     * ssm_conv_w [conv_dim][ssm_conv] and its bias (or NULL), the heads'
     * dt bias, A and D, the grouped norm's weight [d_inner], ssm_out
     * [n_embd][d_inner]. ssm_slot: its state's place in the session, -1
     * on another layer. */
    model_weight ssm_in, ssm_out;
    const float *ssm_conv_w, *ssm_conv_b, *ssm_dt_b, *ssm_a, *ssm_d, *ssm_norm;
    int ssm_slot;
    /* A Gated DeltaNet layer (ssm.c) in place of attention: wqkv is its
     * attn_qkv (q, k, v into the convolution), ssm_z attn_gate, ssm_beta and
     * ssm_alpha the per-head write strength and decay inputs; ssm_conv_w,
     * ssm_dt_b, ssm_a, ssm_norm ([head_v_dim]) and ssm_out as Mamba-2's. */
    model_weight ssm_z, ssm_beta, ssm_alpha;
    /* Its own sizes (arch layer_dims; else the model's head_dim, n_rot, n_ff). */
    int head_dim, n_rot, n_ff;
    bool rope_factors; /* takes the session's RoPE factors (not Gemma 4's window layers) */
    bool kv_shared;    /* reads the keys and values of kv_slot, stores none (arch shared_kv) */
    /* Per-layer embeddings (arch per_layer_embd): after the FFN's residual,
     * x += post_norm(proj (gelu(inp_gate x) * this layer's embedding)). */
    model_weight pl_gate, pl_proj; /* [n_embd_pl][n_embd], [n_embd][n_embd_pl] */
    const float *pl_post_norm;     /* [n_embd] */
    float out_scale;               /* multiplies x after the layer (1: none) */
    /* AltUp (arch altup, altup.c): the router ([MODEL_ALTUP][n_embd]) after
     * its norm, the predict and correct coefficients' products from the
     * router's output ([MODEL_ALTUP^2][MODEL_ALTUP], [MODEL_ALTUP][MODEL_ALTUP]),
     * the corrected active stream's scale before the per-layer embedding. */
    model_weight alt_router, alt_predict, alt_correct;
    const float *alt_router_norm, *alt_correct_scale; /* [n_embd] */
    /* LAuReL: xb + post_norm(laurel_r laurel_l xb) beside the attention. */
    model_weight laurel_l, laurel_r; /* [rank][n_embd], [n_embd][rank] */
    const float *laurel_norm;        /* [n_embd] */
    /* Gaussian top-k on the FFN gate: g = relu(g - mean(g) - sparsity *
     * std(g)) before the activation, where sparse. */
    bool sparse;
    float sparsity;
} model_layer;

struct hearth_model {
    gguf_file *gguf;
    const arch_desc *arch;
    model_hparams hp;
    model_weight tok_embd, output; /* output == tok_embd when tied */
    const float *output_norm;      /* [n_embd]; NULL for a post-LN encoder */
    model_weight pos_embd;         /* encoders with learned positions: [n_ctx_train][n_embd] */
    model_weight type_embd;        /* encoders: token_types [n_types][n_embd]; row 0 is added */
    const float *tok_norm, *tok_norm_b; /* encoders: LayerNorm of the input embeddings */
    model_weight cls;                   /* rerankers' head (both parts optional): cls [n_embd] */
    model_weight cls_out;               /*   [n_embd][n_embd], tanh, then cls.output */
    const float *cls_b, *cls_out_b;     /*   [n_labels][n_embd]; optional biases */
    const float *cls_norm; /* ModernBERT's head: GELU instead of tanh, then this LayerNorm */
    /* Sentence-transformers' dense projections of the pooled vector
     * (gemma-embedding, both or neither): dense_2 [n_dense][n_embd], then
     * dense_3 [n_embd][n_dense]. */
    model_weight dense_2, dense_3;
    /* Per-layer embeddings (arch per_layer_embd; n_embd_pl = 0: none): each
     * token's row of pl_tok_embd ([n_vocab][n_layer * n_embd_pl]) plus the
     * normed projection of its embedding by pl_model_proj ([n_layer *
     * n_embd_pl][n_embd]), split into one input per layer. */
    model_weight pl_tok_embd, pl_model_proj;
    const float *pl_proj_norm; /* [n_embd_pl] */
    /* AltUp (arch altup): the projections of the embedding into streams
     * 1.. and of those streams back at the end, [n_embd][n_embd] each (the
     * slices of altup_proj and altup_unembd_proj). */
    model_weight alt_proj[MODEL_ALTUP - 1], alt_unembd[MODEL_ALTUP - 1];
    const float *rope_freqs; /* [n_rot/2] or NULL: frequency divisors for every session */
    const float *rope_long;  /* [n_rot/2] or NULL: LongRoPE's (phi3), when rope_freqs is */
    const float *rope_short; /*   absent, for sessions longer / not longer than n_ctx_orig */
    model_layer *layers;     /* [n_layer] */
    model_weight *exps;      /* MoE: every layer's expert views, [n_layer][3][n_expert] */
    hr_pool *pool;
    void *vocab;       /* the engine's tokenizer; the model never reads it */
    model_lora *loras; /* [n_loras] adapters, in the order they were added */
    int n_loras;
    uint8_t *bound; /* [gguf_n_tensors] while binding: which tensors the architecture took */
    /* The F32 vectors (norms, biases, RoPE factors), copied out of the file:
     * read on every token, from the mapping they would map the page cache's
     * large folio around each (about 1 MiB on ext4 with Linux 6.18,
     * measured), pages of packed weights handed back among them. */
    float *vectors;
    int64_t vectors_cap, vectors_used;
    void *packed; /* every packed weight (model_pack), packed_bytes; NULL: none */
    size_t packed_bytes;
    size_t packed_file_bytes; /* the packed weights' bytes in the file (handed back) */
};

/* The RoPE frequency divisors a session of n_ctx positions uses (NULL:
 * none): rope_freqs when the file has it, else LongRoPE's long factors when
 * the context, rounded up to 256 as llama.cpp rounds it, exceeds
 * n_ctx_orig, else the short ones (llama_model::get_rope_factors). */
const float *model_rope_factors(const hearth_model *m, int n_ctx);

/* Maps and binds the model at `path` with a pool of n_threads (<= 0: one per
 * physical core), its products' weights packed unless no_repack. On success
 * *out owns it; free with model_close. */
hearth_err model_open(const char *path, const hearth_model_params *p, bool no_repack,
                      hearth_model **out);

/* Layer l's bound weights of products, into out: the attention's or
 * mixer's, the FFN's, the router and the shared expert (at most
 * MODEL_LAYER_PRODUCTS), then its n_expert experts' three each. Returns how
 * many. */
enum { MODEL_LAYER_PRODUCTS = 28 };
int model_layer_products(model_layer *l, int n_expert, model_weight **out);

/* Packs every weight of a product (the layers' and the output layer's, a
 * tied one too) that this CPU's kernels have a layout for (kern_pack) into
 * one block the model owns, and hands the mapping's pages of each back to
 * the page cache (hr_map_release): what still reads them (the tuner's
 * gradients through frozen weights) faults in what it touches. Not in exact
 * mode, whose products read the file's layout; nothing is packed (and
 * nothing fails) when the memory for it cannot be had. */
hearth_err model_pack(hearth_model *m);
/* x[t] = the embedding row of ids[t] (n_embd floats each), for t < n. */
void model_embd_rows(const hearth_model *m, const int32_t *ids, int n, float *x);
void model_close(hearth_model *m);

hearth_model *model_session_model(const hearth_session *s);
/* Token ids held in the session's KV cache, positions 0..pos-1. */
const int32_t *model_session_tokens(const hearth_session *s);
/* Logits of the last token decoded ([n_vocab]); valid until the next decode. */
const float *model_session_logits(const hearth_session *s);
/* Whether those logits belong to the token at position pos - 1 (false after
 * a truncation below it, an embedding, or before any decode). */
bool model_session_has_logits(const hearth_session *s);
/* Speculative decoding (generate.c) verifies several proposed tokens in one
 * pass and needs the logits after each: the next hearth_decode_multi keeps
 * the logits of the session's last min(k, its entries) entries, which
 * model_session_row(s, i) then reads (i = 0 the earliest) until the decode
 * after it. k is for that one decode only. */
hearth_err model_session_keep_rows(hearth_session *s, int k);
const float *model_session_row(const hearth_session *s, int i);
/* Most tokens one forward pass of the session takes (hearth_decode_multi). */
int model_session_n_batch(const hearth_session *s);

/* Whether m is an encoder (arch_desc.encoder): embeddings only. */
bool model_is_encoder(const hearth_model *m);

/* Reads the hyper-parameters of `arch` from the file's metadata. */
hearth_err model_load_hparams(const gguf_file *f, const arch_desc *arch,
                              const hearth_model_params *p, model_hparams *hp);
/* Whether layer il of a file whose hyper-parameters model_load_hparams read
 * has no attention: its attention.head_count_kv entry is 0, a short
 * convolution (arch shortconv) or a Mamba-2 layer (arch ssm). */
bool model_kv_free_layer(const gguf_file *f, const arch_desc *arch, int il);
/* Whether layer il is a sliding-window layer, and its feed-forward width,
 * for a file whose hyper-parameters model_load_hparams read. */
bool model_swa_layer(const gguf_file *f, const arch_desc *arch, const model_hparams *hp, int il);
int model_layer_n_ff(const gguf_file *f, const arch_desc *arch, const model_hparams *hp, int il);
/* Whether layer il's FFN is a mixture of experts. */
bool model_layer_experts(const model_hparams *hp, int il);
/* Whether layer il's FFN gate is sparsified (arch altup), and by how many
 * standard deviations above the mean it is cut: activation_sparsity_scale's
 * entry where it is finite, or llama.cpp's constants without the key. */
bool model_layer_sparsity(const gguf_file *f, const arch_desc *arch, int il, float *std_mul);
/* cos/sin ([n_rot]) of a rotation by pos positions on layer l (its own base
 * and scale: sliding-window layers may have theirs; the frequency factors
 * of the context, where the layer takes them; multimodal RoPE's sections),
 * times rope.scaling.attn_factor and YaRN's magnitude when mscale (a
 * position's rotation; a rotation of keys that hold it already must not
 * scale them again). The forward pass's, the K-shift's and tune's. */
void model_rope_cs(const hearth_model *m, const model_layer *l, const float *factors, float pos,
                   bool mscale, float *cs);
/* What Q is multiplied by after RoPE at position pos (hp->attn_temp_scale
 * != 0), in llama.cpp's arithmetic: 1 below the floor. */
float model_attn_temp(const model_hparams *hp, int pos);
/* Binds every tensor the architecture needs, checking types and shapes, and
 * refuses a file with a tensor it does not use (as llama.cpp does: such a
 * tensor belongs to a variant whose forward pass differs). */
hearth_err model_bind_tensors(hearth_model *m);

/* The bound matrix of m whose tensor is `name` (token_embd.weight,
 * output.weight when it is not the tied embedding, blk.N.attn_q.weight...),
 * or NULL. A fused phi3 ffn_up is the model's gate_up. */
model_weight *model_weight_named(hearth_model *m, gguf_str name);
/* The n_expert views of a 3-D expert tensor "blk.N.ffn_{gate,up,down}_exps.weight"
 * (expert e's at [e]), or NULL. */
const model_weight *model_experts_named(hearth_model *m, gguf_str name);

/* ---- LoRA adapters (lora.c; llama.cpp's GGUF adapter format, docs/lora.md) ---- */

/* What an adapter file says about itself, checked without a base model. */
typedef struct model_lora_info {
    gguf_str arch; /* general.architecture */
    float alpha;   /* adapter.lora.alpha, 0 when absent */
    int n_pairs;   /* lora_a/lora_b pairs */
    int n_ignored; /* *_norm.weight tensors (skipped, as llama.cpp does) */
    int64_t rank_min, rank_max;
} model_lora_info;

/* Most adapters one model takes. */
#define MODEL_LORA_MAX 64

/* Checks f as an adapter on its own: general.type "adapter", adapter.type
 * "lora", a finite alpha, every tensor a complete 2-D .lora_a/.lora_b pair
 * of a type Hearth multiplies with one rank. */
hearth_err model_lora_scan(const gguf_file *f, model_lora_info *out);
/* Binds adapter f to m at user scale `scale`: same architecture, every pair
 * names a matrix of m with matching shapes. Takes f over, on failure too.
 * Only before any session of m exists (sessions size their scratch from
 * the adapters). A pair at scale 0 is checked but never applied. */
hearth_err model_lora_bind(hearth_model *m, gguf_file *f, float scale);
/* Maps the adapter at `path` and binds it (model_lora_bind). */
hearth_err model_lora_add(hearth_model *m, const char *path, float scale);
/* Frees every adapter of m and detaches them from its weights (model_close
 * does; no session of m may run meanwhile). */
void model_lora_free_all(hearth_model *m);
/* What a session of n_batch rows needs for the adapters' products: matmul
 * scratch bytes, floats of A x ([n_batch][rank]) and of B (A x)
 * ([n_batch][n_out]); all 0 without adapters. */
void model_lora_sizes(const hearth_model *m, int n_batch, size_t *scratch_bytes, size_t *ax_floats,
                      size_t *bx_floats);

#endif
