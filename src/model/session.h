/*
 * session.h - the session's buffers, shared by session.c (lifecycle,
 * batching) and forward.c (the forward pass). Private to src/model/.
 */
#ifndef HEARTH_SESSION_H
#define HEARTH_SESSION_H

#include "model.h"

#include <limits.h>

/* Rows t0..t0+n-1 of a batch: session s's tokens at positions pos0..pos0+n-1
 * (forward.c; a batch of several sequences is a list of these). */
typedef struct fwd_run {
    hearth_session *s;
    int t0, n, pos0;
    bool bidir; /* the run's rows see each other both ways (hearth_decode_embd) */
} fwd_run;

struct hearth_session {
    hearth_model *model;
    int n_ctx, n_batch, pos;
    int n_ctx_pad; /* n_ctx rounded up to whole KV tiles (KERN_KV_TILE) */
    int n_q, n_kv; /* n_head and n_head_kv times the widest head (model_max_head_dim) */
    int n_threads;
    const float *rope_factors; /* [n_rot/2] or NULL: model_rope_factors for n_ctx */
    kern_type kv_type;         /* KERN_F32, KERN_F16 or KERN_Q8_0 */
    bool kv_one_layer;   /* encoders: K and V of the layer being computed only (no cache to keep) */
    size_t kv_row_bytes; /* one position of one kv head of the widest head in K (or V): a
                            session file's row (session_file.c) */
    /* Per cache slot (model_layer.kv_slot; an encoder's one): its head size
     * (Gemma 4's window layers have their own) and where its heads' blocks
     * start in K (and in V), [slots + 1]: the last is the cache's bytes. */
    int *kv_slot_hd;
    size_t *kv_slot_off;
    /* Sliding-window cache (docs/kv-cache.md): the slots of window layers
     * (kv_slot_win[slot]; NULL: none, every slot holds n_ctx_pad positions)
     * hold win_pos positions from win_base on, a multiple of KERN_KV_TILE
     * (session_win_room moves it up). win_first: the first position whose
     * keys and values the window slots still hold (>= win_base; 0 in a
     * session that never dropped any); window layers attend from there.
     * Below it lie rows a context shift or a session file could not bring. */
    uint8_t *kv_slot_win;
    int win_pos, win_base, win_first;
    int kv_pos0;  /* a view's first position in the cache (session_kv_view; 0 else) */
    float *x;     /* [n_batch][n_embd] residual stream */
    float *xb;    /* [n_batch][n_embd] normalised input / sub-layer output */
    float *qkv;   /* [n_batch][n_q + 2 n_kv] */
    float *qgate; /* arch attn_gate: [n_batch][2 n_q], each head's q then its gate */
    float *att;   /* [n_batch][n_q] attention output */
    float *ffn;   /* [n_batch][2 n_ff] gate, up */
    float *hb;    /* [n_batch][n_ff] activation(gate) * up */
    /* MoE (moe.c; NULL for a dense model): the router's logits, then
     * probabilities; each token's k chosen experts and weights; the n * k
     * (token, choice) rows sorted by expert (moe_pos: each one's place,
     * moe_start: where each expert's rows start, then a cursor per expert),
     * their inputs and outputs. ffn and hb then have n_batch * k rows. */
    float *moe_logits; /* [n_batch][n_expert] */
    int32_t *moe_sel;  /* [n_batch][k] */
    float *moe_w;      /* [n_batch][k] */
    int *moe_pos;      /* [n_batch][k] */
    int *moe_start;    /* [2 n_expert + 1] */
    float *moe_x;      /* [n_batch * k][n_embd] */
    float *moe_y;      /* [n_batch * k][n_embd], then [n_batch][n_embd] of the shared expert */
    float *attn_work;  /* [n_threads][attn_work_floats] kern_attn_tile's work space */
    size_t attn_work_floats;
    float *rope; /* [n_batch][max n_rot] cos/sin pairs of the current layer */
    /* Per-layer embeddings (Gemma 4; NULL without): each token's inputs for
     * every layer, and its row of pl_tok_embd while they are computed. */
    float *pl_inp, *pl_row; /* [n_batch][n_layer * n_embd_pl] */
    /* AltUp (Gemma 3n, altup.c; NULL without): the streams and the layer's
     * predictions of them, stream by stream ([MODEL_ALTUP][n_batch][n_embd]:
     * a stream's rows go through products as they lie); the LAuReL branch's
     * output; the router's output and the coefficients of each row. */
    float *alt, *alt_pred;     /* [MODEL_ALTUP][n_batch][n_embd] */
    float *alt_laurel;         /* [n_batch][n_embd] */
    float *alt_mod, *alt_coef; /* [n_batch][MODEL_ALTUP], [n_batch][MODEL_ALTUP^2] */
    float *logits;             /* [n_vocab] of the last evaluated token */
    float *rows;               /* [rows_cap][n_vocab]: the last n_rows entries' logits of the last
                                  hearth_decode_multi that was asked for them (model_session_keep_rows) */
    int rows_cap, keep_rows, n_rows;
    fwd_run *runs;   /* [n_batch] hearth_decode_multi's runs when this session leads */
    float *out_rows; /* [n_seq_max][n_vocab] their last rows' logits (NULL if n_seq_max is 1) */
    int n_seq_max;
    int32_t *tokens; /* [n_ctx] ids at positions 0..pos-1 */
    /* The first position a context shift moved keys and values into (its
     * n_keep; INT_MAX: none): from there on the cache holds text computed
     * beside what was discarded, not what evaluating its tokens would give,
     * so no prompt may reuse it (hearth_session_tokens' n_exact). */
    int moved_from;
    bool logits_ok; /* logits are those of the token at pos - 1 (a decode computed them) */
    /* KV cache, F32, F16 or Q8_0, in the layouts of kern_attn_tile and
     * kern_attn_tile_q8_0 (kernels.h): per attention layer and kv head n_ctx_pad *
     * session_kv_row bytes each; for F32/F16 K as [n_ctx_pad / KERN_KV_TILE]
     * [head_dim][KERN_KV_TILE] (tiles of positions, transposed) and V as
     * [n_ctx_pad][head_dim]; Q8_0 in tiles of the same positions. */
    void *k_cache; /* [attention layers (model_layer.kv_slot)][n_head_kv][...] */
    void *v_cache;
    /* Short-convolution layers (LFM2): b * x of every position, F32 as
     * llama.cpp keeps its convolution state, [n_conv][n_ctx_pad][n_embd]
     * (session_conv_row). Kept per position rather than as a state of the
     * last conv_l - 1, so that a truncation, a copy, a shift or a session
     * file treats it as it treats V. NULL without such layers; mapped pages,
     * resident as positions are written. */
    float *conv_hist;
    uint64_t conv_bytes;
    float *conv_bcx; /* [n_batch][3 n_embd]: in_proj's b, c and x of each row */
    float *ssm_x;    /* arch ssm_parallel: [n_batch][n_embd] the mixer's output */
    /* Mamba-2 layers (ssm.c; NULL without): the recurrent state after the
     * first rs_pos tokens, [n_ssm][model_ssm_state_floats], and a checkpoint
     * of it after cp_pos, taken where a batch of several tokens starts; -1:
     * none (a truncation went below it). */
    float *ssm_rs, *ssm_cp;
    int rs_pos, cp_pos;
    uint64_t ssm_bytes;              /* of the state and the checkpoint together */
    float *ssm_zx;                   /* [n_batch][d_in]: in_proj's z, x B C and dt of each row */
    float *ssm_xbc;                  /* [n_batch][conv_dim]: the convolution's output */
    void *scratch;                   /* activations converted for the matrix products */
    float *lora_ax;                  /* [n_batch][max rank] A x of one adapter (NULL: none) */
    float *lora_bx;                  /* [n_batch][max n_out] B (A x) before it is added */
    uint64_t kv_bytes, buffer_bytes; /* what hearth_session_memory reports */
    model_observe_fn observe;        /* the forward pass's products, as they run (NULL: none) */
    void *observe_user;
};

/* Runs n tokens (n <= n_batch) at positions pos..pos+n-1 and writes the
 * logits of rows out_first..n-1 to out ([n - out_first][n_vocab]) unless out
 * is NULL. Does not advance pos. */
void forward_batch(hearth_session *s, const int32_t *ids, int n, float *out, int out_first);
/* The same for n tokens from several sequences: runs[0..n_runs) cover rows
 * 0..n-1 in order, each at its own session's positions (pos0 given, not
 * advanced), with every session of s's model and KV layout; s's buffers
 * hold the activations. ids NULL: the input rows are already in s->x
 * (embeddings, hearth_decode_embd). */
void forward_multi(hearth_session *s, const fwd_run *runs, int n_runs, const int32_t *ids, int n,
                   float *out, int out_first);
/* After forward_multi(s, ...) with out NULL: the logits of rows t0..t0+k-1
 * into out ([k][n_vocab], k <= n_batch). */
void forward_rows_logits(hearth_session *s, int t0, int k, float *out);
/* After forward_multi(s, ...) with out NULL: the logits of the last row of
 * each of runs[0..n_runs) into out ([n_runs][n_vocab], n_runs <= n_batch). */
void forward_run_logits(hearth_session *s, const fwd_run *runs, int n_runs, float *out);
/* After forward_multi(s, ..., NULL, 0): row t's final normalised hidden
 * state (what the output layer reads, llama.cpp's embedding) into
 * out[n_embd]. */
void forward_hidden_row(hearth_session *s, int t, float *out);
/* y = w x for n rows of x ([n][w->n_cols], n <= n_batch), y's rows ldy
 * floats apart: the forward pass's own product (exact mode, adapters). */
void forward_matmul(hearth_session *s, const model_weight *w, const float *x, int n, float *y,
                    int64_t ldy);
/* The products of count weights reading the same x, y_i = ys[i] (rows ldy
 * apart): in default mode through the pool together where they can be. */
void forward_matmul_group(hearth_session *s, const model_weight *const *ws, float *const *ys,
                          int count, const float *x, int n, int64_t ldy);

/* ssm.c: Mamba-2 (or Gated DeltaNet) layer l's output y ([n][n_embd]) of
 * its normalized input x (may be y) for the n rows of runs[0..n_runs), each
 * run's state advancing in its own session. */
void forward_ssm(hearth_session *s, const model_layer *l, const float *x, float *y,
                 const fwd_run *runs, int n_runs, int n);
/* Around a forward pass: ssm_begin brings each run's session's state to the
 * run's first position (replaying its tokens when a truncation left it
 * elsewhere) and takes a checkpoint where a run of several tokens starts;
 * ssm_end records where the states now are. ssm_truncate drops states
 * past pos; ssm_copy gives dst src's state and checkpoint where they lie
 * within its first n positions. No-ops without Mamba-2 layers. */
void ssm_begin(const fwd_run *runs, int n_runs);
void ssm_end(const fwd_run *runs, int n_runs);
void ssm_truncate(hearth_session *s, int pos);
void ssm_copy(hearth_session *dst, const hearth_session *src, int n);
/* RMSNorm of x[n] times w into y (may be x) as the mode asks. */
void forward_rms_norm(float *y, const float *x, const float *w, int64_t n, float eps);

/* moe.c: xb ([n][n_embd], the FFN's normalized input) becomes layer l's
 * mixture-of-experts output. */
void forward_moe(hearth_session *s, const model_layer *l, int n);

/* Runs fn(ctx, t0, t1) over rows 0..n-1 split across the pool (inline for
 * fewer than 4 rows: a handoff would cost more than the work). */
typedef void (*fwd_rows_fn)(void *ctx, int t0, int t1);
void forward_for_rows(const hearth_session *s, int n, fwd_rows_fn fn, void *ctx);
/* Layer l's per-layer embedding step before its norm: xb = pl_proj
 * (gelu(pl_gate x) * the layer's input) for the n rows of x (Gemma 4: x
 * itself; Gemma 3n: its corrected active stream, scaled). */
void forward_pl_embedding(hearth_session *s, const model_layer *l, const float *x, int n);

/* Gemma 3n's AltUp (altup.c), around forward_multi's layers: altup_embed
 * turns the rows of x (the scaled embeddings) into the streams;
 * altup_predict, before layer l, predicts each stream and leaves x = the
 * active prediction, xb = l's attention norm of it and the LAuReL branch
 * of xb in alt_laurel; altup_correct, after l's FFN residual, corrects the
 * predictions by x and adds the per-layer embedding; altup_merge leaves in
 * x the streams' average (the others projected back). */
void altup_embed(hearth_session *s, int n);
void altup_predict(hearth_session *s, const model_layer *l, int n);
void altup_correct(hearth_session *s, const model_layer *l, int n);
void altup_merge(hearth_session *s, int n);
/* Gemma 3n's activation sparsity on one row of FFN gates (altup.c). */
void altup_sparsify(float *g, int n, float std_mul);
/* How a router's logits choose and weigh experts: softmax or sigmoid
 * probabilities; bias ([n_expert], or NULL) added to them for the choice
 * alone; the chosen ones' probabilities over their sum when renorm. */
typedef struct moe_gate {
    bool sigmoid, renorm;
    const float *bias;
} moe_gate;

/* One token's routing: probs = the gate's probabilities (may be the same
 * array as logits), sel[k] the k experts of the highest probability plus
 * bias (ties to the lower index), w[k] their probabilities, over their
 * sum when the gate renormalizes. */
void moe_route(const float *logits, int n_expert, int k, const moe_gate *g, float *probs,
               int32_t *sel, float *w);

/* RoPE as the forward pass applies it, for hearth_session_shift to rotate
 * cached keys the same way (cos/sin from model_rope_cs with the session's
 * factors). forward_rope_head: rotates one head x[head_dim] of layer l by
 * them (its first n_rot dims, in pairs or NEOX halves as the architecture
 * says). */
void forward_rope_head(const hearth_session *s, const model_layer *l, float *x, const float *cs);

/* The bytes of one position of one kv head of cache slot `slot`, and
 * where that slot's head g starts in K (and in V). */
static inline size_t session_kv_row(const hearth_session *s, int slot) {
    return kern_kv_row_bytes(s->kv_type, s->kv_slot_hd[slot]);
}
/* Positions per kv head of cache slot `slot`, and the first of them: a
 * window slot of a sliding-window cache holds win_pos from win_base on,
 * the others every position from 0. */
static inline bool session_kv_win(const hearth_session *s, int slot) {
    return s->kv_slot_win && s->kv_slot_win[slot];
}
static inline int session_kv_npos(const hearth_session *s, int slot) {
    return session_kv_win(s, slot) ? s->win_pos : s->n_ctx_pad;
}
static inline int session_kv_base(const hearth_session *s, int slot) {
    return session_kv_win(s, slot) ? s->win_base : 0;
}
static inline size_t session_kv_head(const hearth_session *s, int slot, int g) {
    return s->kv_slot_off[slot] +
           (size_t)g * (size_t)session_kv_npos(s, slot) * session_kv_row(s, slot);
}

/* How far back a sliding-window layer's token sees (and, centred, ahead):
 * p - k < window, or |p - k| <= window / 2 (llama.cpp's symmetric window). */
static inline int session_swa_reach(const hearth_session *s) {
    const int w = s->model->hp.swa_window;
    return s->model->arch->swa_symmetric ? w / 2 : w - 1;
}

/* Position p's key of one kv head, in a session file's order, from its
 * tiles (kernels.h's layouts) into row[kv_row_bytes], or with `put` from
 * row into the tiles: F32 and F16 as head_dim elements, Q8_0 as its
 * blocks, each an fp16 scale then 32 int8 values (ggml's block_q8_0), as V
 * holds them (session_file.c). */
void session_k_row(kern_type type, uint8_t *tiles, int hd, int p, uint8_t *row, bool put);

/* Positions a window layer's slot keeps beyond its window and the batch
 * (session_win_room): how far back a truncation (a prompt that shares all
 * but the last tokens of the previous one, a rejected draft) can go. */
enum { KV_WIN_SPARE = 256 };

/* Sliding-window cache (session.c). session_win_room: before a forward
 * pass writes positions pos0..pos0+n-1 of s, makes room for them in the
 * window slots, moving the rows that the window of pos0 and
 * KV_WIN_SPARE positions before it need to the slots' start when the
 * last would fall past their end. session_win_keep: the lowest position
 * above 0 that s may be truncated to (0: any): below it a window layer
 * would miss keys it saw before. session_win_reset: s holds nothing. */
void session_win_room(hearth_session *s, int pos0, int n);
/* The base of the window slots that make room for position pos: the first
 * of the tile that holds pos's window less KV_WIN_SPARE (0 without a
 * sliding-window cache). */
int session_win_base(const hearth_session *s, int pos);
int session_win_keep(const hearth_session *s);
void session_win_reset(hearth_session *s);

/* The history row of conv layer `slot` (model_layer.conv_slot) at position
 * pos of s: [n_embd] floats. */
static inline float *session_conv_row(const hearth_session *s, int slot, int pos) {
    return s->conv_hist +
           ((size_t)slot * (size_t)s->n_ctx_pad + (size_t)pos) * (size_t)s->model->hp.n_embd;
}

/* A view of s's KV cache from position kv0 on (a multiple of KERN_KV_TILE,
 * below n_ctx_pad): its position p is s's kv0 + p, so a run on it
 * (fwd_run.s) stores and reads its keys and values in that stretch of s's
 * cache, in the tiles and at the in-tile places they have from position 0.
 * Several sequences can thus share one session's cache (hearth_embed_batch).
 * Only what forward_multi reads of a run's session is meaningful in a view;
 * it lives as long as s's buffers and is never freed. */
void session_kv_view(const hearth_session *s, int kv0, hearth_session *view);

/* hearth_session_load's reader over a file's bytes data[0..size)
 * (session_file.c; the fuzz target feeds it): the session takes the
 * state, or on failure (every check comes first) stays as it was. */
hearth_err session_state_read(hearth_session *s, const uint8_t *data, uint64_t size);

#endif
