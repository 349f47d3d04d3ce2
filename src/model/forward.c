/*
 * forward.c - the transformer forward pass for a batch of tokens of one
 * sequence, shared by every architecture: arch_desc flags select fused
 * projections, biases, q/k norms, post-norms, embedding scaling, sliding
 * windows and the FFN activation. Every matrix product goes through
 * kern_matmul (kern_matmul_ggml in exact mode, for llama.cpp's bits);
 * attention is split over (token, head) pairs on the pool.
 */
#include "session.h"

#include <math.h>
#include <string.h>

typedef struct attn_job {
    hearth_session *s;
    const model_layer *l;
    int il, n, pos0;
} attn_job;

/* Element `off` of the cached K or V row of layer il at position pos. */
static const void *kv_at(const hearth_session *s, const void *cache, int il, int pos, int off) {
    const size_t idx =
        ((size_t)il * (size_t)s->n_ctx + (size_t)pos) * (size_t)s->n_kv + (size_t)off;
    return s->kv_f16 ? (const void *)((const uint16_t *)cache + idx)
                     : (const void *)((const float *)cache + idx);
}

static void kv_store(hearth_session *s, void *cache, int il, int pos, const float *src) {
    void *dst = (void *)kv_at(s, cache, il, pos, 0);
    if (s->kv_f16) {
        uint16_t *d = dst;
        for (int i = 0; i < s->n_kv; i++) d[i] = kern_f32_to_f16(src[i]);
    } else {
        memcpy(dst, src, (size_t)s->n_kv * sizeof(float));
    }
}

/* Where 1/sqrt(head_dim) goes. llama.cpp scales the scores (inside its
 * softmax) for most families, but its gemma3 graph multiplies Q after RoPE
 * (f_attention_scale) and passes a score scale of 1; the two round
 * differently and the difference reaches the logits (4e-4 with F32
 * weights, more once activations are quantized). */
static void attn_scales(const hearth_model *m, float *q_scale, float *kq_scale) {
    const float scale = 1.0f / sqrtf((float)m->hp.head_dim);
    const bool on_q = m->arch->scale_q;
    *q_scale = on_q ? scale : 1.0f;
    *kq_scale = on_q ? 1.0f : scale;
}

/* softmax(q k^T / sqrt(head_dim)) v for each (token, head) pair this thread
 * owns; query head h reads kv head h / (n_head / n_head_kv) (GQA). A
 * sliding-window layer lets position p see keys k with p - k < window. The
 * kern_attn_* functions reproduce llama.cpp's arithmetic, which differs
 * between a batch of several tokens and a single one. */
static void attention_job(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    const int qkv_stride = s->n_q + 2 * s->n_kv;
    float q_scale, kq_scale;
    attn_scales(s->model, &q_scale, &kq_scale);
    const bool batch = j->n > 1;
    float *scores = s->scores + (size_t)ith * (size_t)s->n_ctx;
    for (int unit = ith; unit < j->n * hp->n_head; unit += nth) {
        const int t = unit / hp->n_head, h = unit % hp->n_head, off = (h / group) * hd;
        const int p = j->pos0 + t;
        const int k0 = j->l->swa && p - hp->swa_window + 1 > 0 ? p - hp->swa_window + 1 : 0;
        const int n_keys = p - k0 + 1;
        const float *q = s->qkv + (size_t)t * qkv_stride + (size_t)h * hd;
        float *out = s->att + (size_t)t * s->n_q + (size_t)h * hd;
        kern_attn_scores(scores, q, kv_at(s, s->k_cache, j->il, k0, off), (size_t)s->n_kv, n_keys,
                         hd, s->kv_f16, batch);
        kern_attn_softmax(scores, k0, n_keys, kq_scale);
        kern_attn_values(out, scores, kv_at(s, s->v_cache, j->il, k0, off), (size_t)s->n_kv, k0,
                         n_keys, hd, s->kv_f16, batch);
    }
}

static void matmul(hearth_session *s, const model_weight *w, const float *x, int n, float *y,
                   int64_t ldy) {
    const hearth_model *m = s->model;
    if (kern_exact()) /* llama.cpp repacks every product weight but a tied embedding */
        kern_matmul_ggml(m->pool, w->type, w->data, w->n_rows, w->n_cols, x, n, y, ldy, s->scratch,
                         w->data != m->tok_embd.data);
    else
        kern_matmul(m->pool, w->type, w->data, w->n_rows, w->n_cols, x, n, y, ldy, s->scratch);
}

static void add_bias(float *y, const float *b, int64_t n) {
    if (b)
        for (int64_t i = 0; i < n; i++) y[i] += b[i];
}

/* Q, K, V of every token into s->qkv ([n][n_q | n_kv | n_kv]), with biases,
 * per-head norms and RoPE applied; K and V are then stored in the cache. */
static void attention_inputs(hearth_session *s, const model_layer *l, int il, int n, int pos0) {
    const hearth_model *m = s->model;
    const model_hparams *hp = &m->hp;
    const int stride = s->n_q + 2 * s->n_kv, hd = hp->head_dim;
    if (l->wqkv.data) {
        matmul(s, &l->wqkv, s->xb, n, s->qkv, stride);
    } else {
        matmul(s, &l->wq, s->xb, n, s->qkv, stride);
        matmul(s, &l->wk, s->xb, n, s->qkv + s->n_q, stride);
        matmul(s, &l->wv, s->xb, n, s->qkv + s->n_q + s->n_kv, stride);
    }
    const bool neox = m->arch->rope == ROPE_NEOX;
    float q_scale, kq_scale;
    attn_scales(m, &q_scale, &kq_scale);
    for (int t = 0; t < n; t++) {
        float *q = s->qkv + (size_t)t * stride, *k = q + s->n_q, *v = k + s->n_kv;
        add_bias(q, l->bq, s->n_q);
        add_bias(k, l->bk, s->n_kv);
        add_bias(v, l->bv, s->n_kv);
        float *cs = s->rope + (size_t)t * hp->n_rot;
        kern_rope_cache(cs, hp->n_rot, (float)(pos0 + t), l->rope_base, l->rope_scale,
                        m->rope_freqs);
        for (int h = 0; h < hp->n_head; h++) {
            if (l->q_norm) kern_rms_norm(q + h * hd, q + h * hd, l->q_norm, hd, hp->rms_eps);
            kern_rope_apply(q + h * hd, cs, hp->n_rot, neox);
        }
        if (q_scale != 1.0f)
            for (int i = 0; i < s->n_q; i++) q[i] *= q_scale;
        for (int h = 0; h < hp->n_head_kv; h++) {
            if (l->k_norm) kern_rms_norm(k + h * hd, k + h * hd, l->k_norm, hd, hp->rms_eps);
            kern_rope_apply(k + h * hd, cs, hp->n_rot, neox);
        }
        kv_store(s, s->k_cache, il, pos0 + t, k);
        kv_store(s, s->v_cache, il, pos0 + t, v);
    }
}

/* x += post_norm(f(norm(x))) for one sub-layer's output already in s->xb. */
static void residual_add(hearth_session *s, const float *post_norm, int n) {
    const model_hparams *hp = &s->model->hp;
    for (int t = 0; t < n; t++) {
        float *y = s->xb + (size_t)t * hp->n_embd, *x = s->x + (size_t)t * hp->n_embd;
        if (post_norm) kern_rms_norm(y, y, post_norm, hp->n_embd, hp->rms_eps);
        for (int i = 0; i < hp->n_embd; i++) x[i] += y[i];
    }
}

static void norm_rows(hearth_session *s, const float *w, int n) {
    const model_hparams *hp = &s->model->hp;
    for (int t = 0; t < n; t++)
        kern_rms_norm(s->xb + (size_t)t * hp->n_embd, s->x + (size_t)t * hp->n_embd, w, hp->n_embd,
                      hp->rms_eps);
}

static void feed_forward(hearth_session *s, const model_layer *l, int n) {
    const hearth_model *m = s->model;
    const int n_ff = m->hp.n_ff;
    if (l->gate_up.data) {
        matmul(s, &l->gate_up, s->xb, n, s->ffn, 2 * n_ff);
    } else {
        matmul(s, &l->gate, s->xb, n, s->ffn, 2 * n_ff);
        matmul(s, &l->up, s->xb, n, s->ffn + n_ff, 2 * n_ff);
    }
    for (int t = 0; t < n; t++) {
        const float *g = s->ffn + (size_t)t * 2 * n_ff;
        float *h = s->hb + (size_t)t * n_ff;
        if (m->arch->act == FFN_GELU)
            kern_geglu(h, g, g + n_ff, n_ff);
        else
            kern_swiglu(h, g, g + n_ff, n_ff);
    }
    matmul(s, &l->down, s->hb, n, s->xb, m->hp.n_embd);
}

static void embed(hearth_session *s, const int32_t *ids, int n) {
    const hearth_model *m = s->model;
    const int n_embd = m->hp.n_embd;
    const size_t row_bytes = kern_row_bytes(m->tok_embd.type, n_embd);
    const kern_fns *fns = kern_get(m->tok_embd.type);
    const float scale = m->arch->scale_embd ? sqrtf((float)n_embd) : 1.0f;
    for (int t = 0; t < n; t++) {
        float *x = s->x + (size_t)t * n_embd;
        fns->to_float((const uint8_t *)m->tok_embd.data + (size_t)ids[t] * row_bytes, x, n_embd);
        if (scale != 1.0f)
            for (int i = 0; i < n_embd; i++) x[i] *= scale;
    }
}

void forward_batch(hearth_session *s, const int32_t *ids, int n, float *out, int out_first) {
    const hearth_model *m = s->model;
    const model_hparams *hp = &m->hp;
    embed(s, ids, n);
    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        norm_rows(s, l->attn_norm, n);
        attention_inputs(s, l, il, n, s->pos);
        attn_job job = {.s = s, .l = l, .il = il, .n = n, .pos0 = s->pos};
        hr_pool_run(m->pool, attention_job, &job);
        matmul(s, &l->wo, s->att, n, s->xb, hp->n_embd);
        residual_add(s, l->post_attn_norm, n);
        norm_rows(s, l->ffn_norm, n);
        feed_forward(s, l, n);
        residual_add(s, l->post_ffn_norm, n);
    }
    if (!out) return;
    const int n_out = n - out_first;
    for (int t = out_first; t < n; t++)
        kern_rms_norm(s->xb + (size_t)(t - out_first) * hp->n_embd, s->x + (size_t)t * hp->n_embd,
                      m->output_norm, hp->n_embd, hp->rms_eps);
    matmul(s, &m->output, s->xb, n_out, out, hp->n_vocab);
    if (hp->final_softcap > 0.0f)
        for (size_t i = 0; i < (size_t)n_out * (size_t)hp->n_vocab; i++)
            out[i] = hp->final_softcap * tanhf(out[i] / hp->final_softcap);
}
