/*
 * tune.h - the tune layer: LoRA fine-tuning of a loaded model on CPU, and the
 * training sets it learns from (labelled JSONL, or the gateway's ledger:
 * distillation from the cloud tier's answers). `hearth tune` (cmd_tune.c)
 * drives it; the adapter it writes is llama.cpp's GGUF LoRA format, which
 * `--lora` loads (model/lora.c). docs/tune.md has the method.
 *
 * The base model stays frozen and is read as loaded (quantized weights
 * included); only the adapters' A and B matrices, in F32, are trained.
 */
#ifndef HEARTH_TUNE_H
#define HEARTH_TUNE_H

#include "model/model.h"
#include "tokenizer/chat_template.h"

#include <stddef.h>
#include <stdint.h>

/* ---- training sets (tune_data.c) ---- */

/* One training sequence: a prompt, then the target the model must learn to
 * continue it with. The loss is the mean negative log-likelihood of
 * ids[n_prompt..n-1], each predicted from the tokens before it. */
typedef struct tune_example {
    int32_t *ids;    /* [n], owned by the set */
    int n, n_prompt; /* 1 <= n_prompt < n */
} tune_example;

typedef struct tune_set {
    tune_example *ex;
    size_t n, cap;
    size_t n_too_long; /* sequences longer than max_len, left out */
    size_t n_skipped;  /* records that gave no example (why: see the loaders) */
} tune_set;

void tune_set_free(tune_set *set);

/* How a record becomes tokens: the prompt's messages rendered with the
 * chat template (generation prompt included) and tokenized as `hearth
 * chat` does; then the answer's text and the token that ends a turn. */
typedef struct tune_render {
    const tok_chat_template *tmpl;
    const char *bos, *eos; /* special-token texts for the template (eng_token_text) */
    int max_len;           /* longest sequence kept, in tokens */
} tune_render;

/* Appends the examples of a JSONL file: one object per line,
 * {"prompt": "...", "completion": "..."} (and an optional "system") or
 * {"messages": [{"role", "content"}, ...]} whose last message is the
 * assistant's answer. Blank lines are skipped; an empty answer counts in
 * n_skipped. A malformed line fails (HEARTH_ERR_FORMAT) with its file:line,
 * and then nothing of the file is added. */
hearth_err tune_set_add_jsonl(tune_set *set, const hearth_model *m, const tune_render *r,
                              const char *path);
/* The same for JSONL text[0..len) (any bytes), errors naming name:line. */
hearth_err tune_set_add_jsonl_text(tune_set *set, const hearth_model *m, const tune_render *r,
                                   const char *name, const char *text, size_t len);

/* Appends distillation examples from the gateway's ledger (read-only): the
 * requests recorded with their prompt and the cloud tier's answer
 * (--ledger-prompts), not failed, not degraded, at or after since_ms. The
 * ledger keeps the messages' texts joined by newlines, without their roles:
 * that text becomes one user message. An empty answer, or text that is not
 * UTF-8, counts in n_skipped. */
hearth_err tune_set_add_ledger(tune_set *set, const hearth_model *m, const tune_render *r,
                               const char *db_path, int64_t since_ms);

/* Moves a share (0 <= val_share < 1) of `all` into *val, chosen by a hash of
 * each example's tokens and the seed (equal examples land together), the
 * rest into *train (both appended to); `all` is left without examples (its
 * counts stay). */
hearth_err tune_set_split(tune_set *all, double val_share, uint64_t seed, tune_set *train,
                          tune_set *val);

/* ---- trainable adapters (tune_adapter.c) ---- */

/* Which of each layer's matrices get an adapter (bit set). */
enum {
    TUNE_ATTN_Q = 1u << 0,
    TUNE_ATTN_K = 1u << 1,
    TUNE_ATTN_V = 1u << 2,
    TUNE_ATTN_QKV = 1u << 3, /* fused [q; k; v] (phi3) */
    TUNE_ATTN_OUT = 1u << 4,
    TUNE_FFN_GATE = 1u << 5,
    TUNE_FFN_UP = 1u << 6, /* fused [gate; up] too (phi3's ffn_up) */
    TUNE_FFN_DOWN = 1u << 7,
    TUNE_ALL = (1u << 8) - 1
};

/* "attn_q,attn_k,attn_v,attn_qkv,attn_output,ffn_gate,ffn_up,ffn_down" or
 * "all" into a bit set; HEARTH_ERR_INVALID_ARG names an unknown one. */
hearth_err tune_parse_targets(const char *list, unsigned *targets);

typedef struct tune_adapter_params {
    int rank;         /* >= 1 */
    float alpha;      /* the update is (alpha / rank) B A x */
    unsigned targets; /* TUNE_* bits; a bit the architecture lacks is ignored */
    uint64_t seed;    /* A's initialisation; B starts at zero */
} tune_adapter_params;

/* One adapted matrix: W x becomes W x + scale B (A x). */
typedef struct tune_pair {
    const model_weight *w; /* the frozen base weight (the model's) */
    int layer;
    unsigned target;          /* its TUNE_* bit */
    float *a, *b;             /* [rank][n_in], [n_out][rank] */
    float *ga, *gb;           /* gradients, same shapes */
    float *ma, *va, *mb, *vb; /* AdamW moments */
} tune_pair;

typedef struct tune_adapter {
    tune_pair *pairs;
    int n_pairs, rank;
    float alpha, scale; /* scale = alpha / rank */
} tune_adapter;

hearth_err tune_adapter_new(const hearth_model *m, const tune_adapter_params *p,
                            tune_adapter **out);
void tune_adapter_free(tune_adapter *a);
/* The pair on layer il's matrix w, or NULL. */
const tune_pair *tune_adapter_find(const tune_adapter *a, const model_weight *w);
void tune_adapter_zero_grad(tune_adapter *a);
/* Trainable numbers (A and B of every pair). */
size_t tune_adapter_n_params(const tune_adapter *a);

typedef struct tune_adamw {
    float lr, beta1, beta2, eps, weight_decay;
    float clip; /* global gradient-norm clip; <= 0: none */
} tune_adamw;

/* One AdamW step (the step-th, from 1) on the gradients, which are first
 * multiplied by grad_scale (1 / tokens in the batch). Returns the gradient's
 * norm after scaling, before clipping. */
double tune_adamw_step(tune_adapter *a, const tune_adamw *opt, int step, float grad_scale);

/* Starts a from the adapter file at path (its A and B; gradients and
 * moments stay zero): same architecture, rank, alpha and matrices as a,
 * else HEARTH_ERR_INVALID_ARG naming the difference. Any type --lora
 * reads (F32, F16, BF16, Q8_0). */
hearth_err tune_adapter_init_from(tune_adapter *a, const hearth_model *m, const char *path);

/* Writes the adapter in llama.cpp's GGUF LoRA format (F32, adapter.lora.alpha
 * = alpha) for model m, whose architecture it names: into path + ".tmp",
 * then renamed to path, so that a file being replaced is never torn. */
hearth_err tune_adapter_save(const tune_adapter *a, const hearth_model *m, const char *path,
                             const char *name);

/* ---- the training graph (tune_graph.c) ---- */

/* Activations and workspace for sequences of up to n_max tokens: a
 * forward pass that keeps what the backward pass needs, in F32. */
typedef struct tune_graph tune_graph;

hearth_err tune_graph_new(const hearth_model *m, tune_adapter *a, int n_max, tune_graph **out);
void tune_graph_free(tune_graph *g);

/* Forward over ids[0..n-1] (positions 0..n-1) and, with `backward`, the
 * gradient of the summed NLL of ids[n_prompt..n-1] added to the adapter's
 * ga/gb. *nll gets that sum; *n_pred the tokens in it. */
hearth_err tune_graph_step(tune_graph *g, const int32_t *ids, int n, int n_prompt, bool backward,
                           double *nll, int *n_pred);

/* Bytes the graph allocated: activations for n_max tokens, the frozen
 * weights' F32 transposes, workspace. */
size_t tune_graph_bytes(const tune_graph *g);

/* The NLL of each target token of the last step ([n - n_prompt]). */
const float *tune_graph_token_nll(const tune_graph *g);

#endif
