/*
 * tune_graph.c - the training graph: a forward pass over one sequence that
 * keeps every activation the backward pass needs, and that backward pass,
 * which adds the gradient of the sequence's summed NLL to the adapter's
 * A and B gradients.
 *
 * It computes what forward.c computes, for every arch_desc flag (fused
 * projections, biases, q/k norms, post-norms, embedding scaling, sliding
 * windows, Q-side attention scaling, GELU or SiLU, soft-capping, Granite's
 * multipliers), in
 * plain F32 with analytic activations (not ggml's tables), so that the
 * backward pass is the exact derivative of this forward pass: the tests
 * check it against finite differences, and this forward's NLL against the
 * inference engine's.
 *
 * The frozen products run through kern_matmul on the model's own
 * (quantized) weights. The backward pass needs dX = dY W, a product with
 * the transpose; each frozen matrix is dequantized and transposed into F32
 * once, when the graph is made (4 bytes per weight: the price of reusing
 * the fast kernels; docs/tune.md). Layer 0's Q/K/V need no transpose: no
 * gradient flows below them. The logits are computed a chunk of rows at a
 * time, so the vocabulary never costs [n][n_vocab].
 */
#include "tune.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { LOGIT_CHUNK = 32, TRANSPOSE_ROWS = 16 };

/* What the backward pass reads of one layer, [n] rows each. */
typedef struct layer_acts {
    float *x_in;   /* [E] residual stream entering the layer */
    float *xn1;    /* [E] attn_norm(x_in) */
    float *qk_pre; /* [Q + KV] q and k before their norms (qk_norm only) */
    float *qkv;    /* [Q + 2 KV] after biases, norms, RoPE and Q scaling */
    float *att;    /* [Q] attention output */
    float *yo;     /* [E] wo att (post_norms only) */
    float *x_mid;  /* [E] x_in + attention sub-layer */
    float *xn2;    /* [E] ffn_norm(x_mid) */
    float *ffn;    /* [2 F] gate then up, before the activation */
    float *hb;     /* [F] act(gate) * up */
    float *yf;     /* [E] down hb (post_norms only) */
} layer_acts;

/* F32 transposes of one layer's frozen matrices ([n_cols][n_rows]). */
typedef struct layer_t {
    float *q, *k, *v, *qkv, *o, *gate, *up, *gate_up, *down;
} layer_t;

struct tune_graph {
    const hearth_model *m;
    tune_adapter *ad;
    int n_max, n, E, Q, KV, QKV, F, V;
    layer_acts *acts; /* [n_layer] */
    layer_t *lt;      /* [n_layer] */
    float *out_t;     /* [E][V] */
    float *x_final, *xn_final;
    float **u;                 /* per adapter pair: A x, [n_max][rank] */
    float *du;                 /* [n_max][rank] */
    float *rope;               /* [n_max][n_rot] cos/sin of the current layer */
    const float *rope_factors; /* the model's for a context of n_max (LongRoPE), or NULL */
    float *logits;             /* [LOGIT_CHUNK][V] */
    float *tok_nll;            /* [n_max]: the last step's NLL per target token */
    float *dx, *dx2, *dxn, *dqkv, *datt, *dffn, *dh, *dtmp, *slice;
    float *att_p, *att_dp, *att_tr; /* [n_max][n_max]: P, dP then dS, a transpose */
    float *att_h;                   /* [4][n_max][head_dim]: head_bufs */
    void *scratch;
    void *mem;    /* every activation and gradient buffer */
    size_t bytes; /* mem, the transposes and the scratch */
};

/* ---- small row operations ---- */

static float dot(const float *a, const float *b, int n) {
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static float rms_inv(const float *x, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return (float)(1.0 / sqrt(ss / n + eps));
}

/* y = x / rms(x) * w (w may be NULL); y may be x. */
static void norm_row(float *y, const float *x, const float *w, int n, float eps) {
    const float r = rms_inv(x, n, eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * r * (w ? w[i] : 1.0f);
}

/* dx = d(norm_row)/dx^T dy for the row x; dx may not alias dy. add: dx +=. */
static void norm_row_back(float *dx, const float *x, const float *w, const float *dy, int n,
                          float eps, bool add) {
    const float r = rms_inv(x, n, eps);
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)(w ? w[i] : 1.0f) * dy[i] * x[i];
    const float c = (float)(s * r * r * r / n);
    for (int i = 0; i < n; i++) {
        const float d = r * (w ? w[i] : 1.0f) * dy[i] - x[i] * c;
        dx[i] = add ? dx[i] + d : d;
    }
}

/* Rotates the first n_rot dims by the angles of cs (sign -1: back). */
static void rope_row(float *x, const float *cs, int n_rot, bool neox, float sign) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        const float c = cs[2 * i], s = sign * cs[2 * i + 1];
        float *a = neox ? &x[i] : &x[2 * i], *b = neox ? &x[i + half] : &x[2 * i + 1];
        const float x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
    }
}

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static const float GELU_K = 0.7978845608f, GELU_C = 0.044715f; /* sqrt(2/pi) */

static float gelu(float x) { return 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))); }

static float gelu_grad(float x) {
    const float t = tanhf(GELU_K * (x + GELU_C * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
}

/* ---- products with the frozen weights and the adapter ---- */

/* The adapter's part of one product, split over the pool: rows t (or
 * outputs o, or A's columns i) are dealt in ranges, so that no two threads
 * write the same gradient. */
typedef struct lora_job {
    tune_graph *g;
    tune_pair *p;
    const float *x, *dy; /* [n][n_in], [n][n_out] */
    float *y, *dx;       /* forward: y (stride ldy); backward: dx or NULL */
    int64_t ldy;
    int n, phase;
} lora_job;

static void lora_run(void *ctx, int ith, int nth) {
    const lora_job *j = ctx;
    const tune_pair *p = j->p;
    const int r = j->g->ad->rank, n_in = (int)p->w->n_cols, n_out = (int)p->w->n_rows;
    const float s = j->g->ad->scale, *u = j->g->u[p - j->g->ad->pairs];
    float *du = j->g->du;
    int lo, hi;
    switch (j->phase) {
    case 0: /* forward: u = A x, y += s B u */
        hr_pool_part(j->n, ith, nth, &lo, &hi);
        for (int t = lo; t < hi; t++) {
            float *ut = j->g->u[p - j->g->ad->pairs] + (size_t)t * r;
            for (int k = 0; k < r; k++)
                ut[k] = dot(p->a + (size_t)k * n_in, j->x + (size_t)t * n_in, n_in);
            for (int o = 0; o < n_out; o++)
                j->y[(size_t)t * j->ldy + o] += s * dot(p->b + (size_t)o * r, ut, r);
        }
        break;
    case 1: /* du = s dy B, by rows; gB += s dy^T u, by outputs */
        hr_pool_part(j->n, ith, nth, &lo, &hi);
        for (int t = lo; t < hi; t++) {
            float *dut = du + (size_t)t * r;
            memset(dut, 0, (size_t)r * sizeof(float));
            for (int o = 0; o < n_out; o++)
                axpy(dut, s * j->dy[(size_t)t * n_out + o], p->b + (size_t)o * r, r);
        }
        hr_pool_part(n_out, ith, nth, &lo, &hi);
        for (int t = 0; t < j->n; t++)
            for (int o = lo; o < hi; o++)
                axpy(p->gb + (size_t)o * r, s * j->dy[(size_t)t * n_out + o], u + (size_t)t * r, r);
        break;
    case 2: /* gA += du^T x, by A's columns; dx += du A, by rows */
        hr_pool_part(n_in, ith, nth, &lo, &hi);
        for (int t = 0; t < j->n; t++)
            for (int k = 0; k < r; k++)
                axpy(p->ga + (size_t)k * n_in + lo, du[(size_t)t * r + k],
                     j->x + (size_t)t * n_in + lo, hi - lo);
        if (!j->dx) break;
        hr_pool_part(j->n, ith, nth, &lo, &hi);
        for (int t = lo; t < hi; t++)
            for (int k = 0; k < r; k++)
                axpy(j->dx + (size_t)t * n_in, du[(size_t)t * r + k], p->a + (size_t)k * n_in,
                     n_in);
        break;
    }
}

static tune_pair *pair_of(const tune_graph *g, const model_weight *w) {
    return (tune_pair *)tune_adapter_find(g->ad, w);
}

/* y[t] (stride ldy) = W x[t] + scale B (A x[t]) for t < n; x rows of n_cols. */
static void prod(tune_graph *g, const model_weight *w, const float *x, int n, float *y,
                 int64_t ldy) {
    model_weight_matmul(g->m->pool, w, x, n, y, ldy, g->scratch);
    lora_job j = {.g = g, .p = pair_of(g, w), .x = x, .y = y, .ldy = ldy, .n = n, .phase = 0};
    if (j.p) hr_pool_run(g->m->pool, lora_run, &j);
}

/* For y = W x + scale B A x with dy ([n][n_out], contiguous): the adapter's
 * gradients, and (dx != NULL) dx = dy W + scale dy B A, added to dx when
 * `add`. wt: W's transpose (NULL only when dx is NULL). */
static void prod_back(tune_graph *g, const model_weight *w, const float *wt, const float *x,
                      const float *dy, int n, float *dx, bool add) {
    const int n_in = (int)w->n_cols, n_out = (int)w->n_rows;
    if (dx) {
        float *dst = add ? g->dtmp : dx;
        kern_matmul(g->m->pool, KERN_F32, wt, n_in, n_out, dy, n, dst, n_in, g->scratch);
        if (add)
            for (size_t i = 0; i < (size_t)n * n_in; i++) dx[i] += dst[i];
    }
    lora_job j = {.g = g, .p = pair_of(g, w), .x = x, .dy = dy, .dx = dx, .n = n, .phase = 1};
    if (!j.p) return;
    hr_pool_run(g->m->pool, lora_run, &j);
    j.phase = 2;
    hr_pool_run(g->m->pool, lora_run, &j);
}

/* dst [n][nc] = columns c0.. of src's rows (stride ld). */
static void cols(float *dst, const float *src, int64_t ld, int64_t c0, int nc, int n) {
    for (int t = 0; t < n; t++)
        memcpy(dst + (size_t)t * nc, src + (size_t)t * ld + c0, (size_t)nc * sizeof(float));
}

/* The same into g->slice, for a product's dY. */
static float *slice_cols(tune_graph *g, const float *src, int64_t ld, int c0, int nc, int n) {
    cols(g->slice, src, ld, c0, nc, n);
    return g->slice;
}

/* ---- attention ----
 * Per query head, as matrix products through the F32 kernel: S = Q K^T
 * over every (query, key) pair, masked to the causal (and sliding) window
 * in the softmax, then P V. The backward pass recomputes P the same way
 * (bit for bit) instead of keeping n^2 floats per head and layer. */

typedef struct head_bufs {
    float *q, *k, *o; /* [n][hd] */
    float *t;         /* [hd][n] */
} head_bufs;

static int first_key(const tune_graph *g, const model_layer *l, int t) {
    const int w = g->m->hp.swa_window;
    return l->swa && t - w + 1 > 0 ? t - w + 1 : 0;
}

/* y[t] = W x[t] with W [rows][cols] in F32, for n rows x. */
static void mm(tune_graph *g, const float *w, int rows, int cols, const float *x, int n, float *y) {
    kern_matmul(g->m->pool, KERN_F32, w, rows, cols, x, n, y, rows, g->scratch);
}

/* dst [nc][n] = the transpose of those columns. */
static void cols_t(float *dst, const float *src, int64_t ld, int64_t c0, int nc, int n) {
    for (int t = 0; t < n; t++)
        for (int d = 0; d < nc; d++) dst[(size_t)d * n + t] = src[(size_t)t * ld + c0 + d];
}

/* dst[j][t] = src[t][j], n x n. */
static void square_t(float *dst, const float *src, int n) {
    for (int t = 0; t < n; t++)
        for (int j = 0; j < n; j++) dst[(size_t)j * n + t] = src[(size_t)t * n + j];
}

/* dst columns c0.. of rows (stride ld) += src [n][nc]. */
static void add_cols(float *dst, int64_t ld, int64_t c0, const float *src, int nc, int n) {
    for (int t = 0; t < n; t++) axpy(dst + (size_t)t * ld + c0, 1.0f, src + (size_t)t * nc, nc);
}

/* g->att_p [n][n] = softmax of query head h's scores over each row's
 * window, zero outside it; hb->q and hb->k hold the head's Q and K. */
static void attn_probs(tune_graph *g, const model_layer *l, const layer_acts *a, int h,
                       float kq_scale, head_bufs *hb) {
    const model_hparams *hp = &g->m->hp;
    const int hd = hp->head_dim, n = g->n, kvh = h / (hp->n_head / hp->n_head_kv);
    cols(hb->q, a->qkv, g->QKV, (int64_t)h * hd, hd, n);
    cols(hb->k, a->qkv, g->QKV, g->Q + (int64_t)kvh * hd, hd, n);
    mm(g, hb->k, n, hd, hb->q, n, g->att_p);
    for (int t = 0; t < n; t++) {
        float *p = g->att_p + (size_t)t * n;
        const int lo = first_key(g, l, t);
        if (hp->attn_softcap > 0.0f) kern_softcap(p + lo, t - lo + 1, hp->attn_softcap);
        float mx = -INFINITY;
        for (int j = lo; j <= t; j++) mx = fmaxf(mx, p[j] *= kq_scale);
        double sum = 0.0;
        for (int j = lo; j <= t; j++) sum += p[j] = expf(p[j] - mx);
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < n; j++) p[j] = j >= lo && j <= t ? p[j] * inv : 0.0f;
    }
}

static head_bufs head_buffers(const tune_graph *g) {
    const size_t nh = (size_t)g->n_max * (size_t)g->m->hp.head_dim;
    return (head_bufs){
        .q = g->att_h, .k = g->att_h + nh, .o = g->att_h + 2 * nh, .t = g->att_h + 3 * nh};
}

static void attn_fwd(tune_graph *g, const model_layer *l, layer_acts *a, float kq_scale) {
    const model_hparams *hp = &g->m->hp;
    const int hd = hp->head_dim, n = g->n, group = hp->n_head / hp->n_head_kv;
    head_bufs hb = head_buffers(g);
    for (int h = 0; h < hp->n_head; h++) {
        attn_probs(g, l, a, h, kq_scale, &hb);
        cols_t(hb.t, a->qkv, g->QKV, g->Q + g->KV + (int64_t)(h / group) * hd, hd, n);
        mm(g, hb.t, hd, n, g->att_p, n, hb.o); /* P V */
        for (int t = 0; t < n; t++)
            memcpy(a->att + (size_t)t * g->Q + (size_t)h * hd, hb.o + (size_t)t * hd,
                   (size_t)hd * sizeof(float));
    }
}

/* From g->datt to g->dqkv (zeroed before; the heads of a group add into
 * their kv head's dK and dV). */
static void attn_back(tune_graph *g, const model_layer *l, const layer_acts *a, float kq_scale) {
    const model_hparams *hp = &g->m->hp;
    const int hd = hp->head_dim, n = g->n, group = hp->n_head / hp->n_head_kv;
    head_bufs hb = head_buffers(g);
    float *p = g->att_p, *ds = g->att_dp, *tr = g->att_tr;
    for (int h = 0; h < hp->n_head; h++) {
        const int64_t k0 = g->Q + (int64_t)(h / group) * hd, v0 = k0 + g->KV;
        attn_probs(g, l, a, h, kq_scale, &hb);
        cols(hb.o, g->datt, g->Q, (int64_t)h * hd, hd, n); /* dO */
        cols(hb.t, a->qkv, g->QKV, v0, hd, n);             /* V, [n][hd] */
        mm(g, hb.t, n, hd, hb.o, n, ds);                   /* dP = dO V^T */
        for (int t = 0; t < n; t++) {
            float *dst = ds + (size_t)t * n;
            const float *pt = p + (size_t)t * n;
            double sum = 0.0;
            for (int j = 0; j <= t; j++) sum += (double)pt[j] * dst[j];
            for (int j = 0; j < n; j++) dst[j] = pt[j] * (dst[j] - (float)sum) * kq_scale;
        }
        if (hp->attn_softcap > 0.0f) {       /* through cap tanh(s / cap): times 1 - tanh^2 */
            mm(g, hb.k, n, hd, hb.q, n, tr); /* the raw scores again */
            for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
                const float th = tanhf(tr[i] / hp->attn_softcap);
                ds[i] *= 1.0f - th * th;
            }
        }
        /* dV += P^T dO */
        square_t(tr, p, n);
        cols_t(hb.t, g->datt, g->Q, (int64_t)h * hd, hd, n);
        mm(g, hb.t, hd, n, tr, n, hb.q);
        add_cols(g->dqkv, g->QKV, v0, hb.q, hd, n);
        /* dK += dS^T Q */
        square_t(tr, ds, n);
        cols_t(hb.t, a->qkv, g->QKV, (int64_t)h * hd, hd, n);
        mm(g, hb.t, hd, n, tr, n, hb.q);
        add_cols(g->dqkv, g->QKV, k0, hb.q, hd, n);
        /* dQ = dS K */
        cols_t(hb.t, a->qkv, g->QKV, k0, hd, n);
        mm(g, hb.t, hd, n, ds, n, hb.q);
        add_cols(g->dqkv, g->QKV, (int64_t)h * hd, hb.q, hd, n);
    }
}

/* ---- the forward pass ---- */

static void attn_scales(const hearth_model *m, float *q_scale, float *kq_scale) {
    *q_scale = m->arch->scale_q ? m->hp.attn_scale : 1.0f;
    *kq_scale = m->arch->scale_q ? 1.0f : m->hp.attn_scale;
}

/* What multiplies Q after RoPE at position t: the attention scale where the
 * architecture puts it there, and the attention temperature (Ministral 3). */
static float q_factor(const model_hparams *hp, float q_scale, int t) {
    return hp->attn_temp_scale != 0.0f ? q_scale * model_attn_temp(hp, t) : q_scale;
}

/* As the forward pass's, with the factors of the context (LongRoPE's short
 * or long ones, or rope_freqs). */
static void rope_cache(tune_graph *g, const model_layer *l) {
    for (int t = 0; t < g->n; t++)
        model_rope_cs(g->m, l, g->rope_factors, (float)t, true,
                      g->rope + (size_t)t * g->m->hp.n_rot);
}

static void add_bias(float *y, const float *b, int n) {
    if (b)
        for (int i = 0; i < n; i++) y[i] += b[i];
}

/* Q, K, V of layer l into a->qkv, and the pre-norm copies. */
static void qkv_fwd(tune_graph *g, const model_layer *l, layer_acts *a) {
    const hearth_model *m = g->m;
    const model_hparams *hp = &m->hp;
    const int n = g->n, hd = hp->head_dim;
    if (l->wqkv.data) {
        prod(g, &l->wqkv, a->xn1, n, a->qkv, g->QKV);
    } else {
        prod(g, &l->wq, a->xn1, n, a->qkv, g->QKV);
        prod(g, &l->wk, a->xn1, n, a->qkv + g->Q, g->QKV);
        prod(g, &l->wv, a->xn1, n, a->qkv + g->Q + g->KV, g->QKV);
    }
    float q_scale, kq_scale;
    attn_scales(m, &q_scale, &kq_scale);
    const bool neox = m->arch->rope == ROPE_NEOX;
    const bool full = l->q_norm && m->arch->qk_norm == QK_NORM_FULL, head = l->q_norm && !full;
    if (l->rope) rope_cache(g, l);
    for (int t = 0; t < n; t++) {
        float *q = a->qkv + (size_t)t * g->QKV, *k = q + g->Q;
        const float *cs = g->rope + (size_t)t * hp->n_rot;
        add_bias(q, l->bq, g->Q);
        add_bias(k, l->bk, g->KV);
        add_bias(k + g->KV, l->bv, g->KV);
        if (l->q_norm || l->k_norm)
            memcpy(a->qk_pre + (size_t)t * (g->Q + g->KV), q,
                   (size_t)(g->Q + g->KV) * sizeof(float));
        if (full) { /* q and k normalized whole (olmo2) */
            norm_row(q, q, l->q_norm, g->Q, hp->rms_eps);
            norm_row(k, k, l->k_norm, g->KV, hp->rms_eps);
        }
        for (int h = 0; h < hp->n_head; h++) {
            if (head) norm_row(q + h * hd, q + h * hd, l->q_norm, hd, hp->rms_eps);
            if (l->rope) rope_row(q + h * hd, cs, hp->n_rot, neox, 1.0f);
        }
        const float qf = q_factor(hp, q_scale, t);
        for (int i = 0; i < g->Q; i++) q[i] *= qf;
        for (int h = 0; h < hp->n_head_kv; h++) {
            if (head) norm_row(k + h * hd, k + h * hd, l->k_norm, hd, hp->rms_eps);
            if (l->rope) rope_row(k + h * hd, cs, hp->n_rot, neox, 1.0f);
        }
    }
}

/* x_out = x + (post ? norm(y, post) : y) * residual_scale, rows of E. */
static void residual(const tune_graph *g, float *x_out, const float *x, const float *y,
                     const float *post) {
    const model_hparams *hp = &g->m->hp;
    for (int t = 0; t < g->n; t++) {
        const size_t o = (size_t)t * g->E;
        if (post)
            norm_row(x_out + o, y + o, post, g->E, hp->rms_eps);
        else
            memcpy(x_out + o, y + o, (size_t)g->E * sizeof(float));
        for (int i = 0; i < g->E; i++) x_out[o + i] = x_out[o + i] * hp->residual_scale + x[o + i];
    }
}

static void norm_rows(const tune_graph *g, float *y, const float *x, const float *w) {
    for (int t = 0; t < g->n; t++)
        norm_row(y + (size_t)t * g->E, x + (size_t)t * g->E, w, g->E, g->m->hp.rms_eps);
}

/* A sub-layer's input: its pre-norm of x, or x itself (olmo2 has none). */
static void pre_norm_rows(const tune_graph *g, float *y, const float *x, const float *w) {
    if (w)
        norm_rows(g, y, x, w);
    else
        memcpy(y, x, (size_t)g->n * g->E * sizeof *y);
}

static void layer_fwd(tune_graph *g, int il) {
    const hearth_model *m = g->m;
    const model_layer *l = &m->layers[il];
    layer_acts *a = &g->acts[il];
    const int n = g->n, F = g->F;
    pre_norm_rows(g, a->xn1, a->x_in, l->attn_norm);
    qkv_fwd(g, l, a);
    float q_scale, kq_scale;
    attn_scales(m, &q_scale, &kq_scale);
    attn_fwd(g, l, a, kq_scale);
    float *yo = l->post_attn_norm ? a->yo : g->dtmp;
    prod(g, &l->wo, a->att, n, yo, g->E);
    residual(g, a->x_mid, a->x_in, yo, l->post_attn_norm);
    pre_norm_rows(g, a->xn2, a->x_mid, l->ffn_norm);
    if (l->gate_up.data) {
        prod(g, &l->gate_up, a->xn2, n, a->ffn, 2 * F);
    } else {
        prod(g, &l->gate, a->xn2, n, a->ffn, 2 * F);
        prod(g, &l->up, a->xn2, n, a->ffn + F, 2 * F);
    }
    const bool gelu_act = m->arch->act == FFN_GELU;
    for (int t = 0; t < n; t++) {
        const float *gt = a->ffn + (size_t)t * 2 * F, *ut = gt + F;
        float *h = a->hb + (size_t)t * F;
        for (int i = 0; i < F; i++)
            h[i] = (gelu_act ? gelu(gt[i]) : gt[i] * sigmoid(gt[i])) * ut[i];
    }
    float *yf = l->post_ffn_norm ? a->yf : g->dtmp;
    prod(g, &l->down, a->hb, n, yf, g->E);
    float *x_next = il + 1 < m->hp.n_layer ? g->acts[il + 1].x_in : g->x_final;
    residual(g, x_next, a->x_mid, yf, l->post_ffn_norm);
}

static void embed(tune_graph *g, const int32_t *ids) {
    const hearth_model *m = g->m;
    const float scale = m->hp.embd_scale;
    float *x = g->acts[0].x_in;
    model_embd_rows(m, ids, g->n, x);
    for (size_t i = 0; i < (size_t)g->n * (size_t)g->E; i++) x[i] *= scale;
}

/* One chunk of the loss's rows (logits in g->logits), split over the pool:
 * each row's NLL into tok_nll and, with `backward`, its logits replaced by
 * dNLL/dlogits. */
typedef struct loss_job {
    tune_graph *g;
    const int32_t *ids;
    int t0, nc, first; /* rows t0..t0+nc-1; tok_nll index of row t: t - first */
    bool backward;
} loss_job;

static void loss_run(void *ctx, int ith, int nth) {
    const loss_job *j = ctx;
    tune_graph *g = j->g;
    const float cap = g->m->hp.final_softcap, inv_scale = 1.0f / g->m->hp.logit_scale;
    int lo, hi;
    hr_pool_part(j->nc, ith, nth, &lo, &hi);
    for (int i = lo; i < hi; i++) {
        float *z = g->logits + (size_t)i * g->V;
        if (inv_scale != 1.0f)
            for (int v = 0; v < g->V; v++) z[v] *= inv_scale;
        if (cap > 0.0f)
            for (int v = 0; v < g->V; v++) z[v] = cap * tanhf(z[v] / cap);
        float mx = -INFINITY;
        for (int v = 0; v < g->V; v++) mx = fmaxf(mx, z[v]);
        double sum = 0.0;
        for (int v = 0; v < g->V; v++) sum += expf(z[v] - mx);
        const int32_t target = j->ids[j->t0 + i + 1];
        /* sum >= 1: the largest logit adds exp(0) (the vocabulary is never empty) */
        // cppcheck-suppress invalidFunctionArg
        g->tok_nll[j->t0 + i - j->first] = (float)(log(sum) + mx - z[target]);
        if (!j->backward) continue;
        const float inv = (float)(1.0 / sum);
        for (int v = 0; v < g->V; v++) {
            float d = expf(z[v] - mx) * inv - (v == target ? 1.0f : 0.0f);
            if (cap > 0.0f) d *= 1.0f - (z[v] / cap) * (z[v] / cap);
            z[v] = d * inv_scale;
        }
    }
}

/* The NLL of ids[n_prompt..n-1] from the final rows and, with `backward`,
 * its gradient with respect to xn_final in g->dxn (other rows zero). */
static double loss(tune_graph *g, const int32_t *ids, int n_prompt, bool backward) {
    const hearth_model *m = g->m;
    if (backward) memset(g->dxn, 0, (size_t)g->n * g->E * sizeof(float));
    for (int t0 = n_prompt - 1; t0 < g->n - 1; t0 += LOGIT_CHUNK) {
        const int nc = g->n - 1 - t0 < LOGIT_CHUNK ? g->n - 1 - t0 : LOGIT_CHUNK;
        const float *x = g->xn_final + (size_t)t0 * g->E;
        model_weight_matmul(m->pool, &m->output, x, nc, g->logits, g->V, g->scratch);
        loss_job j = {
            .g = g, .ids = ids, .t0 = t0, .nc = nc, .first = n_prompt - 1, .backward = backward};
        hr_pool_run(m->pool, loss_run, &j);
        if (backward)
            kern_matmul(m->pool, KERN_F32, g->out_t, g->E, g->V, g->logits, nc,
                        g->dxn + (size_t)t0 * g->E, g->E, g->scratch);
    }
    double nll = 0.0; /* summed in order: the same bits with any number of threads */
    for (int i = 0; i < g->n - n_prompt; i++) nll += g->tok_nll[i];
    return nll;
}

/* ---- the backward pass ---- */

/* dx (rows of E) = d/dx of norm(x, w) applied to dy, added when `add`. */
static void norm_rows_back(const tune_graph *g, float *dx, const float *x, const float *w,
                           const float *dy, bool add) {
    for (int t = 0; t < g->n; t++) {
        const size_t o = (size_t)t * g->E;
        norm_row_back(dx + o, x + o, w, dy + o, g->E, g->m->hp.rms_eps, add);
    }
}

/* dx += the gradient reaching x through pre_norm_rows from dy. */
static void pre_norm_back(const tune_graph *g, float *dx, const float *x, const float *w,
                          const float *dy) {
    if (w) {
        norm_rows_back(g, dx, x, w, dy, true);
        return;
    }
    for (size_t i = 0; i < (size_t)g->n * g->E; i++) dx[i] += dy[i];
}

/* From dqkv (after RoPE and Q scaling) back to the products' outputs. */
static void qkv_back(tune_graph *g, const model_layer *l, const layer_acts *a) {
    const hearth_model *m = g->m;
    const model_hparams *hp = &m->hp;
    const int hd = hp->head_dim;
    float q_scale, kq_scale;
    attn_scales(m, &q_scale, &kq_scale);
    const bool neox = m->arch->rope == ROPE_NEOX;
    const bool full = l->q_norm && m->arch->qk_norm == QK_NORM_FULL, head = l->q_norm && !full;
    if (l->rope) rope_cache(g, l);
    float tmp[KERN_ATTN_MAX_HD];
    for (int t = 0; t < g->n; t++) {
        float *dq = g->dqkv + (size_t)t * g->QKV, *dk = dq + g->Q;
        const float *cs = g->rope + (size_t)t * hp->n_rot;
        /* (without q/k norms there is no qk_pre) */
        const float *pre = a->qk_pre ? a->qk_pre + (size_t)t * (g->Q + g->KV) : NULL;
        assert(pre || (!l->q_norm && !l->k_norm));
        const float qf = q_factor(hp, q_scale, t);
        for (int i = 0; i < g->Q; i++) dq[i] *= qf;
        for (int h = 0; h < hp->n_head; h++) {
            if (l->rope) rope_row(dq + h * hd, cs, hp->n_rot, neox, -1.0f);
            if (head) {
                norm_row_back(tmp, pre + h * hd, l->q_norm, dq + h * hd, hd, hp->rms_eps, false);
                memcpy(dq + h * hd, tmp, (size_t)hd * sizeof(float));
            }
        }
        for (int h = 0; h < hp->n_head_kv; h++) {
            if (l->rope) rope_row(dk + h * hd, cs, hp->n_rot, neox, -1.0f);
            if (head) {
                norm_row_back(tmp, pre + g->Q + h * hd, l->k_norm, dk + h * hd, hd, hp->rms_eps,
                              false);
                memcpy(dk + h * hd, tmp, (size_t)hd * sizeof(float));
            }
        }
        if (full) { /* datt is free once attn_back has read it: a row of Q >= KV floats */
            float *row = g->datt + (size_t)t * g->Q;
            norm_row_back(row, pre, l->q_norm, dq, g->Q, hp->rms_eps, false);
            memcpy(dq, row, (size_t)g->Q * sizeof(float));
            norm_row_back(row, pre + g->Q, l->k_norm, dk, g->KV, hp->rms_eps, false);
            memcpy(dk, row, (size_t)g->KV * sizeof(float));
        }
    }
}

/* From g->dx, dL/d(x + post(y) * residual_scale), the gradient of the
 * sub-layer's output y: g->dx itself, or into g->dx2. */
static const float *sublayer_grad(tune_graph *g, const float *y, const float *post) {
    const float rs = g->m->hp.residual_scale;
    const size_t n = (size_t)g->n * (size_t)g->E;
    if (!post && rs == 1.0f) return g->dx;
    if (post)
        norm_rows_back(g, g->dx2, y, post, g->dx, false);
    else
        memcpy(g->dx2, g->dx, n * sizeof(float));
    if (rs != 1.0f)
        for (size_t i = 0; i < n; i++) g->dx2[i] *= rs;
    return g->dx2;
}

/* g->dx holds dL/d(the layer's output); leaves dL/d(x_in) there. */
static void layer_back(tune_graph *g, int il) {
    const hearth_model *m = g->m;
    const model_layer *l = &m->layers[il];
    const layer_acts *a = &g->acts[il];
    const layer_t *w = &g->lt[il];
    const int n = g->n, F = g->F;
    /* feed-forward: x_out = x_mid + post(down hb) * residual_scale */
    const float *dyf = sublayer_grad(g, a->yf, l->post_ffn_norm);
    prod_back(g, &l->down, w->down, a->hb, dyf, n, g->dh, false);
    const bool gelu_act = m->arch->act == FFN_GELU;
    for (int t = 0; t < n; t++) {
        const float *gt = a->ffn + (size_t)t * 2 * F, *ut = gt + F, *dh = g->dh + (size_t)t * F;
        float *dg = g->dffn + (size_t)t * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            if (gelu_act) {
                du[i] = dh[i] * gelu(gt[i]);
                dg[i] = dh[i] * ut[i] * gelu_grad(gt[i]);
            } else {
                const float s = sigmoid(gt[i]);
                du[i] = dh[i] * gt[i] * s;
                dg[i] = dh[i] * ut[i] * s * (1.0f + gt[i] * (1.0f - s));
            }
        }
    }
    if (l->gate_up.data) {
        prod_back(g, &l->gate_up, w->gate_up, a->xn2, g->dffn, n, g->dxn, false);
    } else {
        prod_back(g, &l->gate, w->gate, a->xn2, slice_cols(g, g->dffn, 2 * F, 0, F, n), n, g->dxn,
                  false);
        prod_back(g, &l->up, w->up, a->xn2, slice_cols(g, g->dffn, 2 * F, F, F, n), n, g->dxn,
                  true);
    }
    pre_norm_back(g, g->dx, a->x_mid, l->ffn_norm, g->dxn); /* dx: now d x_mid */
    /* attention: x_mid = x_in + post(wo att) * residual_scale */
    const float *dyo = sublayer_grad(g, a->yo, l->post_attn_norm);
    prod_back(g, &l->wo, w->o, a->att, dyo, n, g->datt, false);
    memset(g->dqkv, 0, (size_t)n * g->QKV * sizeof(float));
    float q_scale, kq_scale;
    attn_scales(m, &q_scale, &kq_scale);
    attn_back(g, l, a, kq_scale);
    qkv_back(g, l, a);
    float *dxn = il > 0 ? g->dxn : NULL; /* nothing below layer 0 learns */
    if (l->wqkv.data) {
        prod_back(g, &l->wqkv, w->qkv, a->xn1, g->dqkv, n, dxn, false);
    } else {
        prod_back(g, &l->wq, w->q, a->xn1, slice_cols(g, g->dqkv, g->QKV, 0, g->Q, n), n, dxn,
                  false);
        prod_back(g, &l->wk, w->k, a->xn1, slice_cols(g, g->dqkv, g->QKV, g->Q, g->KV, n), n, dxn,
                  true);
        prod_back(g, &l->wv, w->v, a->xn1, slice_cols(g, g->dqkv, g->QKV, g->Q + g->KV, g->KV, n),
                  n, dxn, true);
    }
    if (dxn) pre_norm_back(g, g->dx, a->x_in, l->attn_norm, g->dxn);
}

hearth_err tune_graph_step(tune_graph *g, const int32_t *ids, int n, int n_prompt, bool backward,
                           double *nll, int *n_pred) {
    if (n < 2 || n > g->n_max || n_prompt < 1 || n_prompt >= n)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "tune: a sequence needs 1 <= prompt < length <= %d tokens (got %d of %d)",
                       g->n_max, n_prompt, n);
    for (int t = 0; t < n; t++)
        if (ids[t] < 0 || ids[t] >= g->V)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "tune: token id %d is outside the vocabulary",
                           (int)ids[t]);
    const hearth_model *m = g->m;
    g->n = n;
    embed(g, ids);
    for (int il = 0; il < m->hp.n_layer; il++) layer_fwd(g, il);
    norm_rows(g, g->xn_final, g->x_final, m->output_norm);
    *nll = loss(g, ids, n_prompt, backward);
    *n_pred = n - n_prompt;
    if (!backward) return HEARTH_OK;
    norm_rows_back(g, g->dx, g->x_final, m->output_norm, g->dxn, false);
    for (int il = m->hp.n_layer - 1; il >= 0; il--) layer_back(g, il);
    return HEARTH_OK;
}

/* ---- construction ---- */

typedef struct transpose_job {
    const model_weight *w;
    float *wt;
    float *rows; /* per thread: [TRANSPOSE_ROWS][n_cols] */
} transpose_job;

static void transpose_run(void *ctx, int ith, int nth) {
    const transpose_job *j = ctx;
    const model_weight *w = j->w;
    const kern_fns *f = kern_get(w->type);
    const size_t row_bytes = kern_row_bytes(w->type, w->n_cols);
    float *buf = j->rows + (size_t)ith * TRANSPOSE_ROWS * (size_t)w->n_cols;
    const int64_t blocks = (w->n_rows + TRANSPOSE_ROWS - 1) / TRANSPOSE_ROWS;
    for (int64_t b = ith; b < blocks; b += nth) {
        const int64_t r0 = b * TRANSPOSE_ROWS;
        const int nr = (int)(w->n_rows - r0 < TRANSPOSE_ROWS ? w->n_rows - r0 : TRANSPOSE_ROWS);
        for (int i = 0; i < nr; i++)
            f->to_float((const uint8_t *)w->data + (size_t)(r0 + i) * row_bytes,
                        buf + (size_t)i * w->n_cols, w->n_cols);
        for (int64_t c = 0; c < w->n_cols; c++)
            for (int i = 0; i < nr; i++)
                j->wt[(size_t)c * w->n_rows + r0 + i] = buf[(size_t)i * w->n_cols + c];
    }
}

/* W's transpose in F32 into *out (NULL for a missing weight). */
static hearth_err transpose(tune_graph *g, const model_weight *w, float *rows, float **out) {
    *out = NULL;
    if (!w->data) return HEARTH_OK;
    const size_t bytes = (size_t)w->n_rows * (size_t)w->n_cols * sizeof(float);
    g->bytes += bytes;
    if (!(*out = hr_aligned_alloc(bytes)))
        return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory for the weights' transposes");
    transpose_job j = {.w = w, .wt = *out, .rows = rows};
    hr_pool_run(g->m->pool, transpose_run, &j);
    return HEARTH_OK;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* The activation and gradient buffers: measured (base NULL) or carved
 * from base, 64-byte aligned each. */
static size_t layout(tune_graph *g, char *base) {
    const hearth_model *m = g->m;
    const size_t n = (size_t)g->n_max, E = (size_t)g->E, F = (size_t)g->F;
    const size_t r = (size_t)g->ad->rank, widest = max_sz(max_sz(E, 2 * F), (size_t)g->QKV);
    size_t off = 0;
#define CARVE(dst, floats)                                                                         \
    do {                                                                                           \
        if (base) (dst) = (float *)(void *)(base + off);                                           \
        off += ((floats) * sizeof(float) + 63) & ~(size_t)63;                                      \
    } while (0)
    for (int il = 0; il < m->hp.n_layer; il++) {
        layer_acts *a = &g->acts[il];
        const model_layer *l = &m->layers[il];
        CARVE(a->x_in, n * E);
        CARVE(a->xn1, n * E);
        if (l->q_norm || l->k_norm) CARVE(a->qk_pre, n * (size_t)(g->Q + g->KV));
        CARVE(a->qkv, n * (size_t)g->QKV);
        CARVE(a->att, n * (size_t)g->Q);
        if (l->post_attn_norm) CARVE(a->yo, n * E);
        CARVE(a->x_mid, n * E);
        CARVE(a->xn2, n * E);
        CARVE(a->ffn, n * 2 * F);
        CARVE(a->hb, n * F);
        if (l->post_ffn_norm) CARVE(a->yf, n * E);
    }
    for (int i = 0; i < g->ad->n_pairs; i++) CARVE(g->u[i], n * r);
    CARVE(g->du, n * r);
    CARVE(g->x_final, n * E);
    CARVE(g->xn_final, n * E);
    CARVE(g->tok_nll, n);
    CARVE(g->rope, n * (size_t)m->hp.n_rot);
    CARVE(g->logits, (size_t)LOGIT_CHUNK * (size_t)g->V);
    CARVE(g->dx, n * E);
    CARVE(g->dx2, n * E);
    CARVE(g->dxn, n * E);
    CARVE(g->dqkv, n * (size_t)g->QKV);
    CARVE(g->datt, n * (size_t)g->Q);
    CARVE(g->dffn, n * 2 * F);
    CARVE(g->dh, n * F);
    CARVE(g->dtmp, n * widest);
    CARVE(g->slice, n * widest);
    CARVE(g->att_p, n * n);
    CARVE(g->att_dp, n * n);
    CARVE(g->att_tr, n * n);
    CARVE(g->att_h, 4 * n * (size_t)m->hp.head_dim);
#undef CARVE
    return off;
}

static size_t scratch_need(const tune_graph *g) {
    const hearth_model *m = g->m;
    size_t s = kern_matmul_scratch_bytes(m->output.type, m->output.n_cols, LOGIT_CHUNK);
    s = max_sz(s, kern_matmul_scratch_bytes(KERN_F32, g->V, LOGIT_CHUNK));
    s = max_sz(s, kern_matmul_scratch_bytes(KERN_F32, g->n_max, g->n_max));
    s = max_sz(s, kern_matmul_scratch_bytes(KERN_F32, m->hp.head_dim, g->n_max));
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_weight *ws[] = {&l->wq,   &l->wk, &l->wv,      &l->wqkv, &l->wo,
                                    &l->gate, &l->up, &l->gate_up, &l->down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->data) {
                s = max_sz(s, kern_matmul_scratch_bytes(ws[i]->type, ws[i]->n_cols, g->n_max));
                s = max_sz(s, kern_matmul_scratch_bytes(KERN_F32, ws[i]->n_rows, g->n_max));
            }
    }
    return s;
}

static hearth_err build_transposes(tune_graph *g) {
    const hearth_model *m = g->m;
    int64_t widest = m->output.n_cols;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const int64_t c[] = {l->wq.n_cols,   l->wqkv.n_cols,    l->wo.n_cols,
                             l->gate.n_cols, l->gate_up.n_cols, l->down.n_cols};
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) widest = c[i] > widest ? c[i] : widest;
    }
    float *rows =
        malloc((size_t)hr_pool_size(m->pool) * TRANSPOSE_ROWS * (size_t)widest * sizeof(float));
    if (!rows) return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    hearth_err err = transpose(g, &m->output, rows, &g->out_t);
    for (int il = 0; il < m->hp.n_layer && !err; il++) {
        const model_layer *l = &m->layers[il];
        layer_t *t = &g->lt[il];
        if (il > 0 && ((err = transpose(g, &l->wq, rows, &t->q)) ||
                       (err = transpose(g, &l->wk, rows, &t->k)) ||
                       (err = transpose(g, &l->wv, rows, &t->v)) ||
                       (err = transpose(g, &l->wqkv, rows, &t->qkv))))
            break;
        if ((err = transpose(g, &l->wo, rows, &t->o)) ||
            (err = transpose(g, &l->gate, rows, &t->gate)) ||
            (err = transpose(g, &l->up, rows, &t->up)) ||
            (err = transpose(g, &l->gate_up, rows, &t->gate_up)))
            break;
        err = transpose(g, &l->down, rows, &t->down);
    }
    free(rows);
    return err;
}

hearth_err tune_graph_new(const hearth_model *m, tune_adapter *a, int n_max, tune_graph **out) {
    *out = NULL;
    if (n_max < 2 || n_max > 1 << 16)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "tune: sequence length must be 2..65536");
    if (m->hp.head_dim > KERN_ATTN_MAX_HD)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "tune: head size %d is over %d", m->hp.head_dim,
                       KERN_ATTN_MAX_HD);
    if (m->tok_embd.lora || m->n_loras)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "tune: the base model must be loaded without adapters");
    if (model_is_encoder(m))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "tune: '%s' is an embedding model (no output layer to train against)",
                       m->arch->name);
    if (m->hp.n_expert > 0)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "tune: mixture-of-experts models cannot be trained yet (no backward pass "
                       "through the experts)");
    if (m->hp.n_conv > 0 || m->hp.n_ssm > 0)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "tune: '%s' has %s layers, which cannot be trained yet (no backward pass "
                       "through them)",
                       m->arch->name,
                       m->hp.n_ssm ? "recurrent (Mamba-2, Gated DeltaNet)" : "short-convolution");
    if (m->arch->shared_kv || m->arch->layer_dims || m->hp.n_embd_pl > 0)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "tune: '%s' (per-layer embeddings, shared keys and values, AltUp "
                       "streams, layers of their own sizes) cannot be trained yet (no backward "
                       "pass through them)",
                       m->arch->name);
    tune_graph *g = calloc(1, sizeof *g);
    if (!g) return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    const model_hparams *hp = &m->hp;
    *g = (tune_graph){.m = m,
                      .ad = a,
                      .n_max = n_max,
                      .E = hp->n_embd,
                      .Q = hp->n_head * hp->head_dim,
                      .KV = hp->n_head_kv * hp->head_dim,
                      .F = hp->n_ff,
                      .V = hp->n_vocab,
                      .rope_factors = model_rope_factors(m, n_max)};
    g->QKV = g->Q + 2 * g->KV;
    g->acts = calloc((size_t)hp->n_layer, sizeof *g->acts);
    g->lt = calloc((size_t)hp->n_layer, sizeof *g->lt);
    g->u = calloc((size_t)a->n_pairs + 1, sizeof *g->u);
    hearth_err err = HEARTH_OK;
    if (!g->acts || !g->lt || !g->u) err = hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    const size_t bytes = err ? 0 : layout(g, NULL);
    if (!err && !(g->mem = hr_aligned_alloc(bytes)))
        err = hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory for %zu MiB of activations",
                      bytes >> 20);
    if (!err) layout(g, g->mem);
    const size_t sb = err ? 0 : scratch_need(g);
    g->bytes = bytes + sb;
    if (!err && sb && !(g->scratch = hr_aligned_alloc(sb)))
        err = hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    if (!err) err = build_transposes(g);
    if (err) {
        tune_graph_free(g);
        return err;
    }
    *out = g;
    return HEARTH_OK;
}

const float *tune_graph_token_nll(const tune_graph *g) { return g->tok_nll; }

size_t tune_graph_bytes(const tune_graph *g) { return g->bytes; }

void tune_graph_free(tune_graph *g) {
    if (!g) return;
    for (int il = 0; g->lt && il < g->m->hp.n_layer; il++) {
        layer_t *t = &g->lt[il];
        float *all[] = {t->q, t->k, t->v, t->qkv, t->o, t->gate, t->up, t->gate_up, t->down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    }
    free(g->out_t);
    free(g->lt);
    free(g->acts);
    free(g->u);
    free(g->mem);
    free(g->scratch);
    free(g);
}
