/*
 * forward.c - the transformer forward pass for a batch of tokens from one
 * or several sequences, shared by every architecture: arch_desc flags select
 * fused projections, biases, q/k norms, post-norms, embedding scaling,
 * sliding windows and the FFN activation. Every matrix product goes through
 * kern_matmul (kern_matmul_ggml in exact mode, for llama.cpp's bits);
 * attention is split over (token, head) pairs on the pool.
 *
 * A batch is a list of runs (session.h): consecutive rows of one session at
 * consecutive positions. The activations live in one session's buffers (the
 * one passed as s); RoPE positions, the KV store and the attention of a row
 * use its own run's session and position, so sequences never see each
 * other. A single sequence is one run, and then everything is computed as
 * before runs existed.
 */
#include "session.h"

#include <assert.h>
#include <math.h>
#include <string.h>

typedef struct attn_job {
    hearth_session *s; /* whose buffers hold the batch */
    const model_layer *l;
    const fwd_run *runs; /* the batch's sequences, covering rows 0..n-1 in order */
    int n_runs, n;
} attn_job;

/* The run that holds batch row t. */
static const fwd_run *run_of(const fwd_run *runs, int n_runs, int t) {
    int i = 0;
    while (i + 1 < n_runs && t >= runs[i + 1].t0) i++;
    return &runs[i];
}

static int kv_slot(const hearth_session *s, const model_layer *l) {
    return s->kv_one_layer ? 0 : l->kv_slot;
}

/* Offset in bytes of the cache of attention layer l, kv head g (session.h),
 * from a view's first position. */
static size_t kv_head_off(const hearth_session *s, const model_layer *l, int g) {
    const int slot = kv_slot(s, l);
    return session_kv_head(s, slot, g) + (size_t)s->kv_pos0 * session_kv_row(s, slot);
}

/* The cache row of position p in layer l's slot (a sliding-window cache's
 * window slots start at win_base). */
static int kv_row(const hearth_session *s, const model_layer *l, int p) {
    return p - session_kv_base(s, kv_slot(s, l));
}

/* Bytes of one element of an F32 or F16 cache. */
static size_t kv_elem_bytes(const hearth_session *s) {
    return s->kv_type == KERN_F16 ? 2 : sizeof(float);
}

static void *kv_at(void *cache, size_t off) { return (uint8_t *)cache + off; }

/* Floats of a layer's Q and of its K (or V) per token, and the row of
 * qkv it computes them into: [q | k | v] (session.h's buffers are sized for
 * the widest layer). */
static int layer_n_q(const hearth_session *s, const model_layer *l) {
    return s->model->hp.n_head * l->head_dim;
}
static int layer_n_kv(const hearth_session *s, const model_layer *l) {
    return s->model->hp.n_head_kv * l->head_dim;
}
static int qkv_stride(const hearth_session *s, const model_layer *l) {
    return layer_n_q(s, l) + 2 * layer_n_kv(s, l);
}

/* K and V of one token (all kv heads, [n_kv] each) into the cache: V as a
 * row, K scattered into its tile (kern_kv_store). */
static void kv_store(hearth_session *s, const model_layer *l, int pos, const float *k,
                     const float *v) {
    const int hd = l->head_dim;
    for (int g = 0; g < s->model->hp.n_head_kv; g++) {
        const size_t off = kv_head_off(s, l, g);
        kern_kv_store(s->kv_type, kv_at(s->k_cache, off), kv_at(s->v_cache, off), hd,
                      kv_row(s, l, pos), k + (size_t)g * hd, v + (size_t)g * hd);
    }
}

/* Keys k0..k0+n-1 of layer l, kv head g of an F32 or F16 cache as rows of
 * head_dim elements. */
static void kv_gather_k(const hearth_session *s, const model_layer *l, int g, int k0, int n,
                        uint8_t *dst) {
    const int hd = l->head_dim;
    const size_t es = kv_elem_bytes(s), off = kv_head_off(s, l, g);
    const int r0 = kv_row(s, l, k0);
    for (int p = r0; p < r0 + n; p++) {
        const uint8_t *kt =
            kv_at(s->k_cache, off + ((size_t)(p / KERN_KV_TILE) * KERN_KV_TILE * (size_t)hd +
                                     (size_t)(p % KERN_KV_TILE)) *
                                        es);
        uint8_t *row = dst + (size_t)(p - r0) * (size_t)hd * es;
        for (int d = 0; d < hd; d++)
            memcpy(row + (size_t)d * es, kt + (size_t)d * KERN_KV_TILE * es, es);
    }
}

/* Where the attention scale (1/sqrt(head_dim) mostly) goes. llama.cpp
 * scales the scores (inside its softmax) for most families, but its gemma
 * graphs multiply Q after RoPE (f_attention_scale) and pass a score scale
 * of 1; the two round differently and the difference reaches the logits
 * (4e-4 with F32 weights, more once activations are quantized). */
static void attn_scales(const hearth_model *m, float *q_scale, float *kq_scale) {
    const bool on_q = m->arch->scale_q;
    *q_scale = on_q ? m->hp.attn_scale : 1.0f;
    *kq_scale = on_q ? 1.0f : m->hp.attn_scale;
}

/* The first key position p sees in cache kv: 0, or on a sliding-window
 * layer the window's first, or the first the cache still holds (after a
 * context shift that a sliding-window cache could not keep whole). */
static int attn_first_key(const hearth_session *kv, const model_layer *l, int p) {
    if (!l->swa) return 0;
    const int first = p - session_swa_reach(kv);
    return first > kv->win_first ? first : kv->win_first;
}

/* The last key position p attends to: itself (causal), or an encoder's
 * whole text or a bidirectional run, the last row of its run (or the
 * window's last). */
static int attn_last_key(const hearth_session *s, const model_layer *l, const fwd_run *r, int p) {
    if (!s->model->arch->encoder && !r->bidir) return p;
    const int end = r->pos0 + r->n - 1;
    const int reach = session_swa_reach(s);
    return l->swa && s->model->arch->swa_symmetric && p + reach < end ? p + reach : end;
}

/* Exact mode: softmax(q k^T / sqrt(head_dim)) v for each (token, head) pair
 * this thread owns, in llama.cpp's arithmetic (kern_attn_* in ops.c), which
 * differs between a batch of several tokens and a single one. Query head h
 * reads kv head h / (n_head / n_head_kv) (GQA); its keys are first gathered
 * from the tiles into rows. F32 and F16 caches only: llama.cpp reads a
 * quantized V only through flash attention, whose arithmetic Hearth does
 * not copy, so a Q8_0 cache takes the tiled path in both modes. */
static void attention_exact_job(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    const int hd = j->l->head_dim, group = hp->n_head / hp->n_head_kv;
    const int stride = qkv_stride(s, j->l), n_q = layer_n_q(s, j->l);
    float q_scale, kq_scale;
    attn_scales(s->model, &q_scale, &kq_scale);
    float *scores = s->attn_work + (size_t)ith * s->attn_work_floats; /* [n_ctx_pad] */
    uint8_t *krows = (uint8_t *)(scores + s->n_ctx_pad);              /* [n_ctx_pad][hd] */
    for (int unit = ith; unit < j->n * hp->n_head; unit += nth) {
        const int t = unit / hp->n_head, h = unit % hp->n_head, g = h / group;
        const fwd_run *r = run_of(j->runs, j->n_runs, t);
        const hearth_session *kv = r->s; /* the row's own cache */
        /* An encoder's row is its text (llama.cpp keeps no cache for it);
         * tinyBLAS takes the values' product only for a row of whole
         * 16-lane groups. */
        const bool encoder = s->model->arch->encoder;
        const int64_t n_row = encoder ? r->n : KERN_ATTN_ROW_PADDED;
        const bool batch = r->n > 1 && n_row % 16 == 0; /* as if decoded alone */
        const int p = r->pos0 + t - r->t0, k0 = attn_first_key(kv, j->l, p),
                  n_keys = attn_last_key(s, j->l, r, p) - k0 + 1;
        const float *q = s->qkv + (size_t)t * stride + (size_t)h * hd;
        float *out = s->att + (size_t)t * n_q + (size_t)h * hd;
        const size_t off = kv_head_off(kv, j->l, g); /* a view: its own first position */
        const bool f16 = s->kv_type == KERN_F16;
        kv_gather_k(kv, j->l, g, k0, n_keys, krows);
        kern_attn_scores(scores, q, krows, (size_t)hd, n_keys, hd, f16, batch);
        if (hp->attn_softcap > 0.0f) kern_softcap(scores, n_keys, hp->attn_softcap);
        kern_attn_softmax(scores, k0, n_keys, n_row, kq_scale);
        /* k0 stays the position: ggml's order groups the keys by it */
        kern_attn_values(
            out, scores,
            kv_at(kv->v_cache, off + (size_t)kv_row(kv, j->l, k0) * (size_t)hd * kv_elem_bytes(s)),
            (size_t)hd, k0, n_keys, n_row, hd, f16, batch);
    }
}

/* Tiles of KERN_ATTN_ROWS (token, head) rows a run has per kv head. */
static int run_tiles(const fwd_run *r, int group) {
    return (r->n * group + KERN_ATTN_ROWS - 1) / KERN_ATTN_ROWS;
}

/* Default mode: the same arithmetic through kern_attn_tile, which takes the
 * (token, head) rows that read kv head g KERN_ATTN_ROWS at a time in
 * (token, head) order and shares its loads of the cache between them. Units
 * (tile, kv head) are dealt round-robin: later tokens see more keys, so
 * consecutive units cost about the same. */
static void attention_fast_job(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    const int hd = j->l->head_dim, group = hp->n_head / hp->n_head_kv;
    const int stride = qkv_stride(s, j->l), n_q = layer_n_q(s, j->l);
    float q_scale, kq_scale;
    attn_scales(s->model, &q_scale, &kq_scale);
    int n_tiles = 0; /* tiles never mix sequences: each run has its own */
    for (int i = 0; i < j->n_runs; i++) n_tiles += run_tiles(&j->runs[i], group);
    for (int unit = ith; unit < n_tiles * hp->n_head_kv; unit += nth) {
        const int g = unit % hp->n_head_kv;
        int tile = unit / hp->n_head_kv;
        const fwd_run *r = j->runs;
        while (tile >= run_tiles(r, group)) tile -= run_tiles(r++, group);
        const hearth_session *kv = r->s;
        const int n_rows = r->n * group;
        kern_attn_row rows[KERN_ATTN_ROWS];
        int nr = 0;
        for (int i = tile * KERN_ATTN_ROWS; i < n_rows && nr < KERN_ATTN_ROWS; i++, nr++) {
            const int t = r->t0 + i / group, h = g * group + i % group, p = r->pos0 + i / group;
            rows[nr] = (kern_attn_row){
                .q = s->qkv + (size_t)t * stride + (size_t)h * hd,
                .out = s->att + (size_t)t * n_q + (size_t)h * hd,
                .lo = kv_row(kv, j->l, attn_first_key(kv, j->l, p)),
                .hi = kv_row(kv, j->l, attn_last_key(s, j->l, r, p)),
            };
        }
        const size_t off = kv_head_off(kv, j->l, g); /* a view: its own first position */
        const kern_attn_args args = {
            .rows = rows,
            .n_rows = nr,
            .hd = hd,
            .n_pos = session_kv_npos(kv, kv_slot(kv, j->l)),
            .k = kv_at(kv->k_cache, off),
            .v = kv_at(kv->v_cache, off),
            /* One summation order whatever the batch: a token gets the same
             * bits decoded alone, in a prompt or beside other sequences
             * (exact mode keeps llama.cpp's two orders). */
            .batch = true,
            .scale = kq_scale,
            .softcap = hp->attn_softcap,
            .work = s->attn_work + (size_t)ith * s->attn_work_floats,
        };
        if (s->kv_type == KERN_Q8_0)
            kern_attn_tile_q8_0(&args);
        else
            kern_attn_tile(&args, s->kv_type == KERN_F16);
    }
}

/* y = w x as the mode asks. `repack`: exact mode's layout flag (see
 * kern_matmul_ggml). */
static void product(hearth_session *s, const model_weight *w, const float *x, int n, float *y,
                    int64_t ldy, bool repack) {
    const hearth_model *m = s->model;
    if (kern_exact()) {
        kern_matmul_ggml(m->pool, w->type, w->data, w->n_rows, w->n_cols, x, n, y, ldy, s->scratch,
                         repack);
        return;
    }
    model_weight_matmul(m->pool, w, x, n, y, ldy, s->scratch);
}

/* y += scale B (A x) for each LoRA adapter on w, after w's own product,
 * in llama.cpp's order: the two products, then the scale, then the sum
 * (its adapters stay in plain buffers, never repacked). A x of one
 * adapter goes through lora_ax ([n][rank]), B (A x) through lora_bx. */
static void lora_add(hearth_session *s, const model_lora_ab *ab, int n, float *y, int64_t ldy) {
    const int64_t n_out = ab->b.n_rows;
    product(s, &ab->b, s->lora_ax, n, s->lora_bx, n_out, false);
    for (int t = 0; t < n; t++) {
        const float *d = s->lora_bx + (size_t)t * (size_t)n_out;
        float *yt = y + (size_t)t * (size_t)ldy;
        for (int64_t r = 0; r < n_out; r++) yt[r] += d[r] * ab->scale;
    }
}

static void lora_products(hearth_session *s, const model_weight *w, const float *x, int n, float *y,
                          int64_t ldy) {
    for (const model_lora_ab *ab = w->lora; ab; ab = ab->next) {
        product(s, &ab->a, x, n, s->lora_ax, ab->a.n_rows, false);
        lora_add(s, ab, n, y, ldy);
    }
}

static void matmul(hearth_session *s, const model_weight *w, const float *x, int n, float *y,
                   int64_t ldy) {
    if (s->observe) s->observe(s->observe_user, w, x, n);
    /* llama.cpp repacks every product weight but a tied embedding */
    product(s, w, x, n, y, ldy, w->data != s->model->tok_embd.data);
    if (w->lora) lora_products(s, w, x, n, y, ldy);
}

/* The products of several weights that read the same x ([n] rows of
 * n_cols), y_i[t] at ys[i] + t * ldy. In default mode they go through the
 * pool together when their activations convert alike (one handoff instead
 * of one each: generation runs hundreds of products per token). */
void forward_matmul_group(hearth_session *s, const model_weight *const *ws, float *const *ys,
                          int count, const float *x, int n, int64_t ldy) {
    bool together = !kern_exact() && count <= KERN_MATMUL_MAX_OPS;
    const kern_type act = kern_type_get((uint32_t)ws[0]->type)->vec_dot_type;
    for (int i = 1; i < count; i++)
        together = together && kern_type_get((uint32_t)ws[i]->type)->vec_dot_type == act &&
                   ws[i]->n_cols == ws[0]->n_cols;
    if (!together) {
        for (int i = 0; i < count; i++) matmul(s, ws[i], x, n, ys[i], ldy);
        return;
    }
    kern_matmul_op ops[KERN_MATMUL_MAX_OPS];
    for (int i = 0; i < count; i++) {
        if (s->observe) s->observe(s->observe_user, ws[i], x, n);
        ops[i] = model_weight_op(ws[i], ys[i], ldy);
    }
    kern_matmul_multi(s->model->pool, ops, count, ws[0]->n_cols, x, n, s->scratch);
    for (int i = 0; i < count; i++)
        if (ws[i]->lora) lora_products(s, ws[i], x, n, ys[i], ldy);
}

static void add_bias(float *y, const float *b, int64_t n) {
    if (b)
        for (int64_t i = 0; i < n; i++) y[i] += b[i];
}

/* RMSNorm as the mode asks: ggml's summation order in exact mode. */
static void rms_norm(float *y, const float *x, const float *w, int64_t n, float eps) {
    if (kern_exact())
        kern_rms_norm(y, x, w, n, eps);
    else
        kern_rms_norm_fast(y, x, w, n, eps);
}

void forward_rms_norm(float *y, const float *x, const float *w, int64_t n, float eps) {
    rms_norm(y, x, w, n, eps);
}

/* A pre-norm of one row (attn_norm, ffn_norm, the final norm): RMSNorm, or
 * ModernBERT's LayerNorm without bias. */
static void pre_norm(const hearth_model *m, float *y, const float *x, const float *w) {
    if (m->arch->layer_norm)
        kern_layer_norm(y, x, w, NULL, m->hp.n_embd, m->hp.rms_eps);
    else
        rms_norm(y, x, w, m->hp.n_embd, m->hp.rms_eps);
}

/* ---- per-token work, split across the pool by token ranges ----
 * Each step owns tokens t0..t1-1 and touches only their rows. A batch of
 * one (generation) runs inline: a handoff would cost more than the work. */

typedef struct tok_job tok_job;
typedef void (*tok_fn)(const tok_job *j, int t0, int t1);
struct tok_job {
    hearth_session *s;
    const model_layer *l, *next; /* next: the following layer (NULL after the last) */
    const fwd_run *runs;         /* the batch's sequences (attn_job) */
    const int32_t *ids;          /* the batch's token ids */
    int n_runs, n;
    bool rope_fresh; /* the rope cache must be recomputed for this layer */
    tok_fn fn;
};

typedef struct rows_job {
    fwd_rows_fn fn;
    void *ctx;
    int n;
} rows_job;

static void rows_job_run(void *ctx, int ith, int nth) {
    const rows_job *j = ctx;
    int t0, t1;
    hr_pool_part(j->n, ith, nth, &t0, &t1);
    if (t0 < t1) j->fn(j->ctx, t0, t1);
}

void forward_for_rows(const hearth_session *s, int n, fwd_rows_fn fn, void *ctx) {
    if (n < 4) {
        fn(ctx, 0, n);
        return;
    }
    rows_job j = {.fn = fn, .ctx = ctx, .n = n};
    hr_pool_run(s->model->pool, rows_job_run, &j);
}

static void tok_job_rows(void *ctx, int t0, int t1) {
    const tok_job *j = ctx;
    j->fn(j, t0, t1);
}

static void for_tokens(tok_job *j, tok_fn fn) {
    j->fn = fn;
    forward_for_rows(j->s, j->n, tok_job_rows, j);
}

/* xb = attn_norm(x) of the first layer (later layers get it from the
 * residual step before them); x itself for a post-LN encoder and
 * ModernBERT's first layer. */
static void tok_attn_norm(const tok_job *j, int t0, int t1) {
    const size_t d = (size_t)j->s->model->hp.n_embd;
    for (int t = t0; t < t1; t++) {
        if (j->l->attn_norm)
            pre_norm(j->s->model, j->s->xb + t * d, j->s->x + t * d, j->l->attn_norm);
        else
            memcpy(j->s->xb + t * d, j->s->x + t * d, d * sizeof(float));
    }
}

void model_rope_cs(const hearth_model *m, const model_layer *l, const float *factors, float pos,
                   bool mscale, float *cs) {
    const int n_rot = l->n_rot;
    kern_rope_cache(cs, n_rot, pos, l->rope_base, l->rope_scale, l->rope_factors ? factors : NULL,
                    l->yarn ? l->yarn_dims : NULL);
    const arch_desc *a = m->arch;
    if (a->imrope || a->mrope) { /* the pairs of the fourth section: position 0 */
        const int *sec = m->hp.rope_sections, sum = sec[0] + sec[1] + sec[2] + sec[3];
        for (int i = 0; i < n_rot / 2; i++) {
            const int sector = i % sum; /* t, h, w: interleaved while each has pairs left, or
                                           one after the other */
            if (a->imrope ? sector >= 3 * sec[sector % 3] : sector >= sec[0] + sec[1] + sec[2])
                cs[2 * i] = 1.0f, cs[2 * i + 1] = 0.0f;
        }
    }
    /* ggml multiplies cos and sin by attn_factor (and YaRN's magnitude) after
     * computing them; the pass-through dimensions of a partial rotary stay */
    if (mscale && l->rope_mscale != 1.0f)
        for (int i = 0; i < n_rot; i++) cs[i] *= l->rope_mscale;
}

void forward_rope_head(const hearth_session *s, const model_layer *l, float *x, const float *cs) {
    kern_rope_apply(x, cs, l->n_rot, s->model->arch->rope == ROPE_NEOX);
}

/* Biases, per-head norms and RoPE on each token's Q and K, then K and V
 * into the cache (none on a layer that reads another's). The cos/sin of a
 * position depend on the layer only through its rope base, scale, dims,
 * factors, YaRN and magnitude, so they are computed once per batch unless
 * those change. Gemma 4's V is each head normed without a weight, from
 * K's projection when the layer has no attn_v. */
static void tok_qkv(const tok_job *j, int t0, int t1) {
    hearth_session *s = j->s;
    const hearth_model *m = s->model;
    const model_hparams *hp = &m->hp;
    const model_layer *l = j->l;
    const int stride = qkv_stride(s, l), hd = l->head_dim, n_q = layer_n_q(s, l),
              n_kv = layer_n_kv(s, l);
    const bool rope = l->rope;
    const bool head_qk_norm = l->q_norm && m->arch->qk_norm == QK_NORM_HEAD,
               full_qk_norm = l->q_norm && m->arch->qk_norm == QK_NORM_FULL;
    float q_scale, kq_scale;
    attn_scales(m, &q_scale, &kq_scale);
    const fwd_run *r = run_of(j->runs, j->n_runs, t0);
    for (int t = t0; t < t1; t++) {
        if (t >= r->t0 + r->n) r++;
        const int pos = r->pos0 + t - r->t0;
        float *q = s->qkv + (size_t)t * stride, *k = q + n_q, *v = k + n_kv;
        if (s->qgate) /* each head's q, then its gate */
            for (int h = 0; h < hp->n_head; h++)
                memcpy(q + h * hd, s->qgate + (size_t)t * 2 * n_q + (size_t)h * 2 * hd,
                       (size_t)hd * sizeof(float));
        add_bias(q, l->bqkv, stride); /* fused: [q; k; v] like the row */
        add_bias(q, l->bq, n_q);
        float *cs = s->rope + (size_t)t * (size_t)model_max_rot(hp);
        if (j->rope_fresh && rope) model_rope_cs(m, l, s->rope_factors, (float)pos, true, cs);
        if (full_qk_norm) rms_norm(q, q, l->q_norm, n_q, hp->rms_eps);
        for (int h = 0; h < hp->n_head; h++) {
            if (head_qk_norm) rms_norm(q + h * hd, q + h * hd, l->q_norm, hd, hp->rms_eps);
            if (rope) forward_rope_head(s, l, q + h * hd, cs);
        }
        if (q_scale != 1.0f)
            for (int i = 0; i < n_q; i++) q[i] *= q_scale;
        const float temp = hp->attn_temp_scale != 0.0f ? model_attn_temp(hp, pos) : 1.0f;
        if (temp != 1.0f) /* (1 below the floor: every position of most contexts) */
            for (int i = 0; i < n_q; i++) q[i] *= temp;
        if (l->kv_shared) continue;
        add_bias(k, l->bk, n_kv);
        if (m->arch->v_norm && !l->wv.data) memcpy(v, k, (size_t)n_kv * sizeof *v);
        add_bias(v, l->bv, n_kv);
        if (full_qk_norm) rms_norm(k, k, l->k_norm, n_kv, hp->rms_eps);
        for (int h = 0; h < hp->n_head_kv; h++) {
            if (head_qk_norm) rms_norm(k + h * hd, k + h * hd, l->k_norm, hd, hp->rms_eps);
            if (rope) forward_rope_head(s, l, k + h * hd, cs);
            if (m->arch->v_norm) rms_norm(v + h * hd, v + h * hd, NULL, hd, hp->rms_eps);
        }
        kv_store(r->s, j->l, pos, k, v);
    }
}

/* What a residual step does around x += y. */
typedef struct residual_norms {
    const float *post_norm;        /* RMSNorm of y first (gemma3), or NULL */
    const float *laurel;           /* rows averaged into the sum (Gemma 3n's LAuReL), or NULL */
    const float *bias;             /* y's bias (the sub-layer's output projection), or NULL */
    const float *sum_norm, *sum_b; /* LayerNorm of the sum (an encoder's post-LN), or NULL */
    const float *next_norm;        /* xb = RMSNorm(x) for what comes next, or NULL */
} residual_norms;

/* x += (post_norm(y) + bias) * residual_scale for the sub-layer output y in xb (post-LN:
 * x = LayerNorm(x + y + bias)), then xb = next_norm(x) for what comes next
 * (a post-LN encoder's or olmo2's next step reads x itself; a decoder's last step
 * nothing). */
static void residual_rows(const tok_job *j, int t0, int t1, const residual_norms *rn) {
    const model_hparams *hp = &j->s->model->hp;
    /* what reads x itself next: a post-LN encoder's sub-layers, olmo2's */
    const bool plain_next = j->s->model->arch->post_ln || j->s->model->arch->no_pre_norms;
    for (int t = t0; t < t1; t++) {
        float *y = j->s->xb + (size_t)t * hp->n_embd, *x = j->s->x + (size_t)t * hp->n_embd;
        if (rn->post_norm) rms_norm(y, y, rn->post_norm, hp->n_embd, hp->rms_eps);
        add_bias(y, rn->bias, hp->n_embd);
        if (hp->residual_scale != 1.0f)
            for (int i = 0; i < hp->n_embd; i++) y[i] *= hp->residual_scale;
        for (int i = 0; i < hp->n_embd; i++) x[i] += y[i];
        if (rn->laurel) {
            const float *r = rn->laurel + (size_t)t * hp->n_embd, half = 1.0f / sqrtf(2.0f);
            for (int i = 0; i < hp->n_embd; i++) x[i] = (x[i] + r[i]) * half;
        }
        if (rn->sum_norm) kern_layer_norm(x, x, rn->sum_norm, rn->sum_b, hp->n_embd, hp->rms_eps);
        if (rn->next_norm)
            pre_norm(j->s->model, y, x, rn->next_norm);
        else if (plain_next)
            memcpy(y, x, (size_t)hp->n_embd * sizeof *y);
    }
}

static void tok_attn_residual(const tok_job *j, int t0, int t1) {
    const model_layer *l = j->l;
    const residual_norms rn = {.post_norm = l->post_attn_norm,
                               .laurel = j->s->model->arch->altup ? j->s->alt_laurel : NULL,
                               .bias = l->bo,
                               .sum_norm = l->attn_out_norm,
                               .sum_b = l->attn_out_norm_b,
                               .next_norm = l->ffn_norm};
    residual_rows(j, t0, t1, &rn);
}

/* Whether layer l does more after its FFN's residual (Gemma 4's per-layer
 * embedding and output scale: layer_tail), the next layer's norm then
 * coming after that. */
static bool has_tail(const model_layer *l) { return l->pl_gate.data || l->out_scale != 1.0f; }

static void tok_ffn_residual(const tok_job *j, int t0, int t1) {
    const model_layer *l = j->l;
    const residual_norms rn = {.post_norm = l->post_ffn_norm,
                               .bias = l->b_down,
                               .sum_norm = l->out_norm,
                               .sum_b = l->out_norm_b,
                               .next_norm = j->next && !has_tail(l) ? j->next->attn_norm : NULL};
    residual_rows(j, t0, t1, &rn);
}

/* ---- Gemma 4's per-layer embeddings ----
 * Each token gets one input per layer, n_embd_pl wide: its row of
 * pl_tok_embd times sqrt(n_embd_pl), plus the RMS-normed slice of
 * pl_model_proj times its scaled embedding over sqrt(n_embd), the sum over
 * sqrt(2) (llama.cpp's operations in its order). After the FFN's residual,
 * layer il adds post_norm(proj (gelu(inp_gate x) * input il)) to x. */

static void tok_pl_inputs(const tok_job *j, int t0, int t1) {
    hearth_session *s = j->s;
    const hearth_model *m = s->model;
    const model_hparams *hp = &m->hp;
    const int pl = hp->n_embd_pl;
    const size_t width = (size_t)pl * (size_t)hp->n_layer;
    const size_t row_bytes = kern_row_bytes(m->pl_tok_embd.type, (int64_t)width);
    const float proj_scale = 1.0f / sqrtf((float)hp->n_embd), tok_scale = sqrtf((float)pl),
                sum_scale = 1.0f / sqrtf(2.0f);
    for (int t = t0; t < t1; t++) {
        float *in = s->pl_inp + (size_t)t * width, *row = s->pl_row + (size_t)t * width;
        kern_get(m->pl_tok_embd.type)
            ->to_float((const uint8_t *)m->pl_tok_embd.data + (size_t)j->ids[t] * row_bytes, row,
                       (int64_t)width);
        for (size_t i = 0; i < width; i++) in[i] *= proj_scale;
        for (int il = 0; il < hp->n_layer; il++)
            rms_norm(in + (size_t)il * pl, in + (size_t)il * pl, m->pl_proj_norm, pl, hp->rms_eps);
        for (size_t i = 0; i < width; i++) { /* one operation a statement, as ggml rounds */
            const float tok = row[i] * tok_scale;
            in[i] = (in[i] + tok) * sum_scale;
        }
    }
}

/* hb = gelu(hb) * the layer's input, for the rows of the gate's product. */
static void tok_pl_gate(const tok_job *j, int t0, int t1) {
    hearth_session *s = j->s;
    const int pl = s->model->hp.n_embd_pl;
    const size_t width = (size_t)pl * (size_t)s->model->hp.n_layer;
    const size_t il = (size_t)(j->l - s->model->layers);
    for (int t = t0; t < t1; t++) {
        float *g = s->hb + (size_t)t * (size_t)pl;
        kern_geglu(g, g, s->pl_inp + (size_t)t * width + il * (size_t)pl, pl);
    }
}

/* x += post_norm(xb) for the per-layer embedding's output in xb (when the
 * layer has one), x *= out_scale, then xb = the next layer's norm of x. */
static void tok_layer_tail(const tok_job *j, int t0, int t1) {
    const model_hparams *hp = &j->s->model->hp;
    const model_layer *l = j->l;
    for (int t = t0; t < t1; t++) {
        float *y = j->s->xb + (size_t)t * hp->n_embd, *x = j->s->x + (size_t)t * hp->n_embd;
        if (l->pl_gate.data) {
            rms_norm(y, y, l->pl_post_norm, hp->n_embd, hp->rms_eps);
            for (int i = 0; i < hp->n_embd; i++) x[i] += y[i];
        }
        if (l->out_scale != 1.0f)
            for (int i = 0; i < hp->n_embd; i++) x[i] *= l->out_scale;
        if (j->next) pre_norm(j->s->model, y, x, j->next->attn_norm);
    }
}

void forward_pl_embedding(hearth_session *s, const model_layer *l, const float *x, int n) {
    tok_job j = {.s = s, .l = l, .n = n};
    matmul(s, &l->pl_gate, x, n, s->hb, s->model->hp.n_embd_pl);
    for_tokens(&j, tok_pl_gate);
    matmul(s, &l->pl_proj, s->hb, n, s->xb, s->model->hp.n_embd);
}

static void layer_tail(tok_job *j) {
    if (j->l->pl_gate.data) forward_pl_embedding(j->s, j->l, j->s->x, j->n);
    for_tokens(j, tok_layer_tail);
}

static void tok_ffn_act(const tok_job *j, int t0, int t1) {
    hearth_session *s = j->s;
    const hearth_model *m = s->model;
    const int n_ff = j->l->n_ff;
    for (int t = t0; t < t1; t++) {
        float *g = s->ffn + (size_t)t * 2 * n_ff;
        float *h = s->hb + (size_t)t * n_ff;
        if (j->l->sparse) altup_sparsify(g, n_ff, j->l->sparsity); /* Gemma 3n's first layers */
        if (m->arch->ffn_no_gate) {                                /* gelu(up x + b) */
            add_bias(g, j->l->b_up, n_ff);
            kern_geglu(h, g, NULL, n_ff);
        } else if (m->hp.act == FFN_GELU)
            kern_geglu(h, g, g + n_ff, n_ff);
        else if (kern_exact())
            kern_swiglu(h, g, g + n_ff, n_ff);
        else
            kern_swiglu_fast(h, g, g + n_ff, n_ff);
    }
}

/* Q, K, V of every token into s->qkv ([n][n_q | n_kv | n_kv]), with biases,
 * per-head norms and RoPE applied; K and V are then stored in the cache. */
static void attention_inputs(tok_job *j) {
    hearth_session *s = j->s;
    const model_layer *l = j->l;
    const int stride = qkv_stride(s, l), n = j->n, n_q = layer_n_q(s, l), n_kv = layer_n_kv(s, l);
    if (l->wqkv.data) {
        matmul(s, &l->wqkv, s->xb, n, s->qkv, stride);
    } else if (s->qgate) {
        matmul(s, &l->wq, s->xb, n, s->qgate, 2 * (int64_t)n_q);
        const model_weight *ws[2] = {&l->wk, &l->wv};
        float *ys[2] = {s->qkv + n_q, s->qkv + n_q + n_kv};
        forward_matmul_group(s, ws, ys, 2, s->xb, n, stride);
    } else {
        /* Gemma 4: no K and V on a layer that reads another's; V from K's
           projection when it has no attn_v (tok_qkv) */
        const model_weight *ws[3] = {&l->wq, &l->wk, &l->wv};
        float *ys[3] = {s->qkv, s->qkv + n_q, s->qkv + n_q + n_kv};
        const int count = l->kv_shared ? 1 : l->wv.data ? 3 : 2;
        forward_matmul_group(s, ws, ys, count, s->xb, n, stride);
    }
    for_tokens(j, tok_qkv);
}

/* Falcon-H1: the attention's output plus the Mamba-2 mixer's (ggml_add's order). */
static void tok_add_mixer(const tok_job *j, int t0, int t1) {
    const int d = j->s->model->hp.n_embd;
    float *y = j->s->xb + (size_t)t0 * d;
    const float *mix = j->s->ssm_x + (size_t)t0 * d;
    for (size_t i = 0; i < (size_t)(t1 - t0) * (size_t)d; i++) y[i] += mix[i];
}

/* Qwen3.5: each head's attention output times the sigmoid of its gate. */
static void tok_attn_gate(const tok_job *j, int t0, int t1) {
    const hearth_session *s = j->s;
    const int hd = j->l->head_dim, n_q = layer_n_q(s, j->l);
    for (int t = t0; t < t1; t++) {
        for (int h = 0; h < s->model->hp.n_head; h++) {
            float *o = s->att + (size_t)t * n_q + (size_t)h * hd;
            const float *g = s->qgate + (size_t)t * 2 * n_q + (size_t)(2 * h + 1) * hd;
            for (int i = 0; i < hd; i++) o[i] *= 1.0f / (1.0f + expf(-g[i]));
        }
    }
}

static void feed_forward(tok_job *j) {
    hearth_session *s = j->s;
    const model_layer *l = j->l;
    const int n_ff = l->n_ff, n = j->n;
    if (l->exps) {
        forward_moe(s, l, n);
        return;
    }
    if (l->gate_up.data) {
        matmul(s, &l->gate_up, s->xb, n, s->ffn, 2 * n_ff);
    } else if (!l->gate.data) { /* ungated: up alone, where the gate would be */
        matmul(s, &l->up, s->xb, n, s->ffn, 2 * n_ff);
    } else {
        const model_weight *ws[2] = {&l->gate, &l->up};
        float *ys[2] = {s->ffn, s->ffn + n_ff};
        forward_matmul_group(s, ws, ys, 2, s->xb, n, 2 * n_ff);
    }
    for_tokens(j, tok_ffn_act);
    matmul(s, &l->down, s->hb, n, s->xb, s->model->hp.n_embd);
}

/* ---- short convolutions (LFM2) ----
 * in_proj splits each row into b, c and x; b * x goes into the session's
 * history at the row's position (every row of the batch first: a row's
 * kernel reads the rows before it); then each channel's causal kernel over
 * the last conv_l positions, times c, is the mixer's output before out_proj.
 * The same arithmetic in both modes: ggml_ssm_conv's, one float sum from 0,
 * tap by tap, fused as its compiler fuses it. */

static void tok_conv_store(const tok_job *j, int t0, int t1) {
    const hearth_session *s = j->s;
    const int d = s->model->hp.n_embd;
    const fwd_run *r = run_of(j->runs, j->n_runs, t0);
    for (int t = t0; t < t1; t++) {
        if (t >= r->t0 + r->n) r++;
        const float *b = s->conv_bcx + (size_t)t * 3 * (size_t)d, *x = b + 2 * d;
        float *h = session_conv_row(r->s, j->l->conv_slot, r->pos0 + t - r->t0);
        for (int i = 0; i < d; i++) h[i] = b[i] * x[i];
    }
}

static void tok_conv_apply(const tok_job *j, int t0, int t1) {
    const hearth_session *s = j->s;
    const int d = s->model->hp.n_embd, taps = s->model->hp.conv_l;
    const fwd_run *r = run_of(j->runs, j->n_runs, t0);
    for (int t = t0; t < t1; t++) {
        if (t >= r->t0 + r->n) r++;
        const int p = r->pos0 + t - r->t0, first = p - taps + 1 > 0 ? 0 : taps - 1 - p;
        const float *c = s->conv_bcx + (size_t)t * 3 * (size_t)d + d;
        const float *h = session_conv_row(r->s, j->l->conv_slot, p - taps + 1 + first);
        float *y = s->att + (size_t)t * d;
        /* positions before 0 are the zero state: their terms add nothing */
        for (int i = 0; i < d; i++) {
            const float *w = j->l->conv_w + (size_t)i * (size_t)taps;
            float sum = 0.0f;
            for (int k = first; k < taps; k++)
                sum = fmaf(h[(size_t)(k - first) * (size_t)d + (size_t)i], w[k], sum);
            y[i] = c[i] * sum;
        }
    }
}

/* Layer l's short convolution of xb (its normalized input) into xb. */
static void short_conv(tok_job *j) {
    hearth_session *s = j->s;
    const int d = s->model->hp.n_embd;
    matmul(s, &j->l->conv_in, s->xb, j->n, s->conv_bcx, 3 * (int64_t)d);
    for_tokens(j, tok_conv_store);
    for_tokens(j, tok_conv_apply);
    matmul(s, &j->l->conv_out, s->att, j->n, s->xb, d);
}

/* A post-LN encoder's inputs: token type 0's row and, with learned positions,
 * the row of each token's position added to its embedding (in llama.cpp's
 * order: (token + type) + position), then LayerNorm, for the rows of run r.
 * The rows are converted into hb (free until the FFN). */
static void encoder_inputs(hearth_session *s, const fwd_run *r) {
    const hearth_model *m = s->model;
    const int n_embd = m->hp.n_embd;
    float *row = s->hb; /* [n_embd] */
    for (int t = r->t0; t < r->t0 + r->n; t++) {
        float *x = s->x + (size_t)t * n_embd;
        if (m->type_embd.data) {
            kern_get(m->type_embd.type)->to_float(m->type_embd.data, row, n_embd);
            for (int i = 0; i < n_embd; i++) x[i] += row[i];
        }
        if (m->pos_embd.data) {
            const size_t rb = kern_row_bytes(m->pos_embd.type, n_embd);
            const int pos = r->pos0 + t - r->t0;
            kern_get(m->pos_embd.type)
                ->to_float((const uint8_t *)m->pos_embd.data + (size_t)pos * rb, row, n_embd);
            for (int i = 0; i < n_embd; i++) x[i] += row[i];
        }
        kern_layer_norm(x, x, m->tok_norm, m->tok_norm_b, n_embd, m->hp.rms_eps);
    }
}

static void embed(hearth_session *s, const int32_t *ids, int n) {
    const hearth_model *m = s->model;
    const int n_embd = m->hp.n_embd;
    const float scale = m->hp.embd_scale;
    model_embd_rows(m, ids, n, s->x);
    /* An adapter's token rows of A are the low-rank codes B maps into the
     * embedding, added before any scaling (llama.cpp's build_inp_embd). */
    for (const model_lora_ab *ab = m->tok_embd.lora; ab; ab = ab->next) {
        const int64_t rank = ab->a.n_cols;
        const size_t a_row = kern_row_bytes(ab->a.type, rank);
        const kern_fns *af = kern_get(ab->a.type);
        for (int t = 0; t < n; t++)
            af->to_float((const uint8_t *)ab->a.data + (size_t)ids[t] * a_row,
                         s->lora_ax + (size_t)t * (size_t)rank, rank);
        lora_add(s, ab, n, s->x, n_embd);
    }
    if (scale != 1.0f)
        for (size_t i = 0; i < (size_t)n * (size_t)n_embd; i++) s->x[i] *= scale;
}

/* The logits of the normalised rows 0..n_out-1 of xb into out. */
static void output_rows(hearth_session *s, int n_out, float *out) {
    const model_hparams *hp = &s->model->hp;
    matmul(s, &s->model->output, s->xb, n_out, out, hp->n_vocab);
    if (hp->logit_scale != 1.0f) {
        const float inv = 1.0f / hp->logit_scale; /* ggml_scale's factor */
        for (size_t i = 0; i < (size_t)n_out * (size_t)hp->n_vocab; i++) out[i] *= inv;
    }
    if (hp->final_softcap > 0.0f)
        kern_softcap(out, (int64_t)n_out * hp->n_vocab, hp->final_softcap);
}

void forward_multi(hearth_session *s, const fwd_run *runs, int n_runs, const int32_t *ids, int n,
                   float *out, int out_first) {
    const hearth_model *m = s->model;
    const model_hparams *hp = &m->hp;
    for (int i = 0; i < n_runs; i++) session_win_room(runs[i].s, runs[i].pos0, runs[i].n);
    ssm_begin(runs, n_runs);
    if (ids) embed(s, ids, n);
    if (m->tok_norm) /* an encoder's: BERT's or ModernBERT's */
        for (int i = 0; i < n_runs; i++) encoder_inputs(s, &runs[i]);
    tok_job tj = {.s = s, .l = &m->layers[0], .runs = runs, .n_runs = n_runs, .n = n, .ids = ids};
    if (hp->n_embd_pl) {
        assert(ids); /* per-layer inputs come from ids: hearth_decode_embd refuses such models */
        matmul(s, &m->pl_model_proj, s->x, n, s->pl_inp, m->pl_model_proj.n_rows);
        for_tokens(&tj, tok_pl_inputs);
    }
    if (m->arch->altup)
        altup_embed(s, n);
    else
        for_tokens(&tj, tok_attn_norm);
    const model_layer *rotated = NULL;
    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        tj.l = l;
        tj.next = il + 1 < hp->n_layer ? &m->layers[il + 1] : NULL;
        /* the cache holds the last rotating layer's cos/sin (NoPE layers skip it) */
        tj.rope_fresh = !rotated || l->rope_base != rotated->rope_base ||
                        l->rope_scale != rotated->rope_scale || l->yarn != rotated->yarn ||
                        l->rope_mscale != rotated->rope_mscale || l->n_rot != rotated->n_rot ||
                        l->rope_factors != rotated->rope_factors;
        if (l->rope) rotated = l;
        if (m->arch->altup) altup_predict(s, l, n); /* and xb = attn_norm(the active stream) */
        if (l->conv_w) {
            short_conv(&tj);
        } else if (l->ssm_slot >= 0 && l->kv_slot < 0) {
            forward_ssm(s, l, s->xb, s->xb, runs, n_runs, n);
        } else {
            if (l->ssm_slot >= 0) /* Falcon-H1: the mixer on the same input, first (it uses
                                     att as scratch, which the attention then fills) */
                forward_ssm(s, l, s->xb, s->ssm_x, runs, n_runs, n);
            attention_inputs(&tj);
            attn_job job = {.s = s, .l = l, .runs = runs, .n_runs = n_runs, .n = n};
            const bool exact_attn = kern_exact() && s->kv_type != KERN_Q8_0; /* the exact job */
            hr_pool_run(m->pool, exact_attn ? attention_exact_job : attention_fast_job, &job);
            if (s->qgate) for_tokens(&tj, tok_attn_gate);
            matmul(s, &l->wo, s->att, n, s->xb, hp->n_embd);
            if (l->ssm_slot >= 0) for_tokens(&tj, tok_add_mixer);
        }
        for_tokens(&tj, tok_attn_residual); /* and xb = ffn_norm(x) */
        feed_forward(&tj);
        for_tokens(&tj, tok_ffn_residual); /* and xb = the next layer's attn_norm(x) */
        if (m->arch->altup)
            altup_correct(s, l, n);
        else if (has_tail(l))
            layer_tail(&tj);
    }
    if (m->arch->altup) altup_merge(s, n);
    ssm_end(runs, n_runs);
    if (!out) return;
    for (int t = out_first; t < n; t++)
        rms_norm(s->xb + (size_t)(t - out_first) * hp->n_embd, s->x + (size_t)t * hp->n_embd,
                 m->output_norm, hp->n_embd, hp->rms_eps);
    output_rows(s, n - out_first, out);
}

void forward_batch(hearth_session *s, const int32_t *ids, int n, float *out, int out_first) {
    const fwd_run run = {.s = s, .t0 = 0, .n = n, .pos0 = s->pos};
    forward_multi(s, &run, 1, ids, n, out, out_first);
}

void forward_rows_logits(hearth_session *s, int t0, int k, float *out) {
    const model_hparams *hp = &s->model->hp;
    for (int i = 0; i < k; i++)
        rms_norm(s->xb + (size_t)i * hp->n_embd, s->x + (size_t)(t0 + i) * hp->n_embd,
                 s->model->output_norm, hp->n_embd, hp->rms_eps);
    output_rows(s, k, out);
}

void forward_run_logits(hearth_session *s, const fwd_run *runs, int n_runs, float *out) {
    const model_hparams *hp = &s->model->hp;
    for (int i = 0; i < n_runs; i++)
        rms_norm(s->xb + (size_t)i * hp->n_embd,
                 s->x + (size_t)(runs[i].t0 + runs[i].n - 1) * hp->n_embd, s->model->output_norm,
                 hp->n_embd, hp->rms_eps);
    output_rows(s, n_runs, out);
}

void forward_matmul(hearth_session *s, const model_weight *w, const float *x, int n, float *y,
                    int64_t ldy) {
    matmul(s, w, x, n, y, ldy);
}

void forward_hidden_row(hearth_session *s, int t, float *out) {
    const model_hparams *hp = &s->model->hp;
    if (s->model->arch->post_ln) { /* the last layer's LayerNorm was the final norm */
        memcpy(out, s->x + (size_t)t * hp->n_embd, (size_t)hp->n_embd * sizeof *out);
        return;
    }
    pre_norm(s->model, out, s->x + (size_t)t * hp->n_embd, s->model->output_norm);
}
