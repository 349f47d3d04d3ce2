/*
 * altup.c - Gemma 3n's AltUp (alternating updates) and LAuReL around the
 * shared forward pass. The residual stream is MODEL_ALTUP streams s_k of
 * n_embd each, and every layer runs on one of them, the active s_0:
 *
 *   predict  r = tanh(router (norm(s_0) / n_embd)), c = W_predict r
 *            ([k][k] per row); p_j = s_j + sum_k c[j][k] s_k. The layer
 *            (attention beside LAuReL's low-rank branch, then the FFN) runs
 *            on p_0 and leaves a.
 *   correct  r = tanh(router (norm(a) / n_embd)), e = W_correct r + 1;
 *            s_j = p_j + e_j (a - p_0); then the per-layer embedding of
 *            s_0 * correct_scale is added to every stream but s_0.
 *
 * The embedding is s_0, its projections (altup_proj) the others, each
 * scaled to its magnitude; at the end the others are projected back
 * (altup_unembd_proj), scaled to s_0's magnitude and averaged with it.
 * One arithmetic in both modes, llama.cpp's graph (gemma3n.cpp) op for op
 * (sums of squares in double as ggml_sum_rows, the k-term mixes as its F32
 * dot product of fewer than 8 terms: a chain of fused multiply-adds), so
 * that exact mode gives its bits; it is a small part of a layer's work.
 */
#include "session.h"

#include <math.h>
#include <string.h>

enum { K = MODEL_ALTUP };

/* Stream k of a [K][n_batch][n_embd] buffer. */
static float *stream(const hearth_session *s, float *base, int k) {
    return base + (size_t)k * (size_t)s->n_batch * (size_t)s->model->hp.n_embd;
}

/* ggml_sqrt(ggml_sum_rows(ggml_sqr(x))): the squares rounded, summed in
 * double, the sum rounded. */
static float magnitude(const float *x, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    return sqrtf((float)sum);
}

/* y times target over its own magnitude (ggml_mul, then ggml_div). */
static void to_magnitude(float *y, int n, float target) {
    const float mag = magnitude(y, n);
    for (int i = 0; i < n; i++) y[i] = y[i] * target / mag;
}

/* sum_k a[k * stride] c[k] as ggml_vec_dot_f32 adds K < 8 terms. */
static KERN_FMA_CLONES float mix(const float *a, size_t stride, const float *c) {
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum = fmaf(a[(size_t)k * stride], c[k], sum);
    return sum;
}

typedef struct alt_job {
    hearth_session *s;
    const model_layer *l;
    const float *x; /* the router's input rows */
} alt_job;

static void embed_rows(void *ctx, int t0, int t1) {
    const alt_job *j = ctx;
    hearth_session *s = j->s;
    const int d = s->model->hp.n_embd;
    for (int t = t0; t < t1; t++) {
        const float *x = s->x + (size_t)t * d;
        const float target = magnitude(x, d);
        memcpy(stream(s, s->alt, 0) + (size_t)t * d, x, (size_t)d * sizeof *x);
        for (int k = 1; k < K; k++) to_magnitude(stream(s, s->alt, k) + (size_t)t * d, d, target);
    }
}

void altup_embed(hearth_session *s, int n) {
    const hearth_model *m = s->model;
    const int d = m->hp.n_embd;
    for (int k = 1; k < K; k++)
        forward_matmul(s, &m->alt_proj[k - 1], s->x, n, stream(s, s->alt, k), d);
    alt_job j = {.s = s};
    forward_for_rows(s, n, embed_rows, &j);
}

static void router_in_rows(void *ctx, int t0, int t1) {
    const alt_job *j = ctx;
    const model_hparams *hp = &j->s->model->hp;
    const float inv = 1.0f / (float)hp->n_embd;
    for (int t = t0; t < t1; t++) {
        float *y = j->s->xb + (size_t)t * hp->n_embd;
        forward_rms_norm(y, j->x + (size_t)t * hp->n_embd, j->l->alt_router_norm, hp->n_embd,
                         hp->rms_eps);
        for (int i = 0; i < hp->n_embd; i++) y[i] *= inv;
    }
}

/* alt_mod = tanh(router (norm(x) / n_embd)) for the n rows of x (through xb). */
static void route(alt_job *j, const float *x, int n) {
    j->x = x;
    forward_for_rows(j->s, n, router_in_rows, j);
    forward_matmul(j->s, &j->l->alt_router, j->s->xb, n, j->s->alt_mod, K);
    for (int i = 0; i < n * K; i++) j->s->alt_mod[i] = tanhf(j->s->alt_mod[i]);
}

/* The predictions, x = p_0 and xb = the attention's norm of it. */
static void predict_rows(void *ctx, int t0, int t1) {
    const alt_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    const int d = hp->n_embd;
    const size_t stride = (size_t)s->n_batch * (size_t)d;
    for (int t = t0; t < t1; t++) {
        /* row t of every stream, K apart by stride; c[k][.] mixes them into p_k */
        const float *c = s->alt_coef + (size_t)t * K * K, *rows = s->alt + (size_t)t * d;
        for (int k = 0; k < K; k++) {
            const float *own = stream(s, s->alt, k) + (size_t)t * d;
            float *p = stream(s, s->alt_pred, k) + (size_t)t * d;
            for (int e = 0; e < d; e++) p[e] = mix(rows + e, stride, c + k * K) + own[e];
        }
        float *x = s->x + (size_t)t * d;
        memcpy(x, s->alt_pred + (size_t)t * d, (size_t)d * sizeof *x);
        forward_rms_norm(s->xb + (size_t)t * d, x, j->l->attn_norm, d, hp->rms_eps);
    }
}

/* LAuReL's output: post_norm(laurel_r laurel_l xb) + xb. */
static void laurel_rows(void *ctx, int t0, int t1) {
    const alt_job *j = ctx;
    const model_hparams *hp = &j->s->model->hp;
    for (int t = t0; t < t1; t++) {
        float *y = j->s->alt_laurel + (size_t)t * hp->n_embd;
        const float *xb = j->s->xb + (size_t)t * hp->n_embd;
        forward_rms_norm(y, y, j->l->laurel_norm, hp->n_embd, hp->rms_eps);
        for (int i = 0; i < hp->n_embd; i++) y[i] += xb[i];
    }
}

void altup_predict(hearth_session *s, const model_layer *l, int n) {
    const int d = s->model->hp.n_embd;
    alt_job j = {.s = s, .l = l};
    route(&j, s->alt, n);
    forward_matmul(s, &l->alt_predict, s->alt_mod, n, s->alt_coef, K * K);
    forward_for_rows(s, n, predict_rows, &j);
    forward_matmul(s, &l->laurel_l, s->xb, n, s->hb, s->model->hp.laurel_rank);
    forward_matmul(s, &l->laurel_r, s->hb, n, s->alt_laurel, d);
    forward_for_rows(s, n, laurel_rows, &j);
}

/* The corrected streams, and xb = s_0 * correct_scale for the per-layer
 * embedding. */
static void correct_rows(void *ctx, int t0, int t1) {
    const alt_job *j = ctx;
    hearth_session *s = j->s;
    const int d = s->model->hp.n_embd;
    for (int t = t0; t < t1; t++) {
        float *c = s->alt_coef + (size_t)t * K;
        for (int k = 0; k < K; k++) c[k] += 1.0f;
        const float *a = s->x + (size_t)t * d, *p0 = s->alt_pred + (size_t)t * d;
        for (int k = 0; k < K; k++) {
            const float *p = stream(s, s->alt_pred, k) + (size_t)t * d;
            float *out = stream(s, s->alt, k) + (size_t)t * d;
            for (int e = 0; e < d; e++) {
                const float innovation = a[e] - p0[e], scaled = innovation * c[k];
                out[e] = scaled + p[e];
            }
        }
        const float *s0 = s->alt + (size_t)t * d;
        float *y = s->xb + (size_t)t * d;
        for (int e = 0; e < d; e++) y[e] = s0[e] * j->l->alt_correct_scale[e];
    }
}

/* The per-layer embedding (in xb) normed and added to every stream but s_0. */
static void pl_add_rows(void *ctx, int t0, int t1) {
    const alt_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    const int d = hp->n_embd;
    for (int t = t0; t < t1; t++) {
        float *y = s->xb + (size_t)t * d;
        forward_rms_norm(y, y, j->l->pl_post_norm, d, hp->rms_eps);
        for (int k = 1; k < K; k++) {
            float *out = stream(s, s->alt, k) + (size_t)t * d;
            for (int e = 0; e < d; e++) out[e] += y[e];
        }
    }
}

void altup_correct(hearth_session *s, const model_layer *l, int n) {
    alt_job j = {.s = s, .l = l};
    route(&j, s->x, n);
    forward_matmul(s, &l->alt_correct, s->alt_mod, n, s->alt_coef, K);
    forward_for_rows(s, n, correct_rows, &j);
    forward_pl_embedding(s, l, s->xb, n);
    forward_for_rows(s, n, pl_add_rows, &j);
}

static void merge_rows(void *ctx, int t0, int t1) {
    const alt_job *j = ctx;
    hearth_session *s = j->s;
    const int d = s->model->hp.n_embd;
    for (int t = t0; t < t1; t++) {
        const float *s0 = s->alt + (size_t)t * d;
        const float target = magnitude(s0, d);
        float *x = s->x + (size_t)t * d;
        memcpy(x, s0, (size_t)d * sizeof *x);
        for (int k = 1; k < K; k++) {
            float *u = stream(s, s->alt_pred, k) + (size_t)t * d;
            to_magnitude(u, d, target);
            for (int e = 0; e < d; e++) x[e] += u[e];
        }
        for (int e = 0; e < d; e++) x[e] *= 1.0f / (float)K;
    }
}

void altup_merge(hearth_session *s, int n) {
    const hearth_model *m = s->model;
    const int d = m->hp.n_embd;
    for (int k = 1; k < K; k++)
        forward_matmul(s, &m->alt_unembd[k - 1], stream(s, s->alt, k), n, stream(s, s->alt_pred, k),
                       d);
    alt_job j = {.s = s};
    forward_for_rows(s, n, merge_rows, &j);
}

void altup_sparsify(float *g, int n, float std_mul) {
    /* ggml_mean, then the standard deviation of n - 1 degrees of freedom:
       sums in double, each operation rounded to float as ggml's ops round */
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)g[i];
    const float mean = (float)sum / (float)n;
    double sq = 0.0;
    for (int i = 0; i < n; i++) {
        const float dev = g[i] - mean;
        sq += (double)(dev * dev);
    }
    const float std = sqrtf((float)sq * (1.0f / (float)(n - 1))), cut = mean + std * std_mul;
    for (int i = 0; i < n; i++) {
        const float v = g[i] - cut;
        g[i] = v > 0.0f ? v : 0.0f;
    }
}
