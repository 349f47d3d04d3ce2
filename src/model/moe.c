/*
 * moe.c - a mixture-of-experts FFN (qwen3moe, olmoe, Mixtral-style llama,
 * lfm2moe), as llama.cpp's build_moe_ffn computes it: the router's logits
 * W_r x, p = softmax (LFM2-MoE: sigmoid), the k experts of the highest p
 * (LFM2-MoE: p plus a bias per expert; ties to the lower index), their p
 * divided by their sum (at least 2^-14; olmoe keeps them as they are),
 * each chosen expert's down(silu(gate x) * up x) (nomic-bert-moe's, which
 * have no gate: down(gelu(up x))) times its weight, and the k results added
 * in the order they were chosen. A shared expert (Granite 4.0-H Tiny,
 * Qwen3.5-MoE), a dense SwiGLU FFN of its own width on every token (Qwen3.5:
 * times the sigmoid of its gate), is added to that sum.
 *
 * The (token, choice) rows are sorted by expert, so each expert's products
 * run once over every token that chose it (one matrix product per expert
 * instead of one per token), between steps that go through the pool row by
 * row: gathering the inputs, SwiGLU, and adding each token's choices. Exact
 * mode multiplies token by token instead, which is the summation order of
 * ggml's mul_mat_id (one vec_dot, or one repacked gemv, per row and token).
 */
#include "session.h"

#include <math.h>
#include <string.h>

/* p = softmax(x) over n in ggml's order (ggml_soft_max on the CPU's
 * AVX-512 path): 16 lanes of the approximate exp, each group's tree sum
 * added in double, the rest one by one with expf; then times 1 / sum. */
static void router_softmax(float *p, const float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    int i = 0;
    for (; i + 15 < n; i += 16) {
        for (int r = 0; r < 16; r++) p[i + r] = kern_ggml_expf(x[i + r] - max);
        sum += (double)kern_ggml_hsum16(p + i);
    }
    for (; i < n; i++) {
        p[i] = expf(x[i] - max);
        sum += (double)p[i];
    }
    const float inv = (float)(1.0 / sum);
    for (i = 0; i < n; i++) p[i] *= inv;
}

/* Expert e's score for the choice: its probability plus the gate's bias
 * (ggml_add, then the sort). */
static float choice_score(const moe_gate *g, const float *probs, int e) {
    return g->bias ? probs[e] + g->bias[e] : probs[e];
}

void moe_route(const float *logits, int n_expert, int k, const moe_gate *g, float *probs,
               int32_t *sel, float *w) {
    if (g->sigmoid) /* ggml_sigmoid */
        for (int e = 0; e < n_expert; e++) probs[e] = 1.0f / (1.0f + expf(-logits[e]));
    else
        router_softmax(probs, logits, n_expert);
    for (int j = 0; j < k; j++) { /* the k best by selection: k is small */
        int best = -1;
        for (int e = 0; e < n_expert; e++) {
            bool taken = false;
            for (int i = 0; i < j && !taken; i++) taken = sel[i] == e;
            if (!taken && (best < 0 || choice_score(g, probs, e) > choice_score(g, probs, best)))
                best = e;
        }
        sel[j] = best;
        w[j] = probs[best];
    }
    if (!g->renorm) return;
    double sum = 0.0; /* ggml_sum_rows, then the clamp to F16's smallest normal */
    for (int j = 0; j < k; j++) sum += (double)w[j];
    const float total = fmaxf((float)sum, 6.103515625e-5f);
    for (int j = 0; j < k; j++) w[j] /= total;
}

/* Row r of the gathered [n * k] rows: expert e's rows are moe_start[e] on
 * (the token order within each); moe_pos[t * k + j] is the row of token t's
 * j-th choice. */
static void sort_by_expert(hearth_session *s, int n, int n_expert, int k, int *start) {
    for (int e = 0; e <= n_expert; e++) start[e] = 0;
    for (int r = 0; r < n * k; r++) start[s->moe_sel[r] + 1]++;
    for (int e = 0; e < n_expert; e++) start[e + 1] += start[e];
    int *next = start + n_expert + 1;
    memcpy(next, start, (size_t)n_expert * sizeof *next);
    for (int r = 0; r < n * k; r++) s->moe_pos[r] = next[s->moe_sel[r]]++;
}

typedef struct moe_job {
    hearth_session *s;
    int n, k;
    int rows, n_ff; /* act_job's: rows of ffn and hb, n_ff wide */
    bool gelu;      /* act_job's activation: gelu(up), the experts having no gate */
} moe_job;

/* moe_x's row for each (token, choice): xb's row of the token. */
static void gather_job(void *ctx, int ith, int nth) {
    const moe_job *j = ctx;
    const int d = j->s->model->hp.n_embd;
    int lo, hi;
    hr_pool_part(j->n * j->k, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r++)
        memcpy(j->s->moe_x + (size_t)j->s->moe_pos[r] * d, j->s->xb + (size_t)(r / j->k) * d,
               (size_t)d * sizeof(float));
}

/* hb = silu(gate) * up, or gelu(up) for experts without a gate (as the
 * dense FFN computes it). */
static void act_job(void *ctx, int ith, int nth) {
    const moe_job *j = ctx;
    const int n_ff = j->n_ff;
    int lo, hi;
    hr_pool_part(j->rows, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r++) {
        const float *g = j->s->ffn + (size_t)r * 2 * n_ff;
        float *h = j->s->hb + (size_t)r * n_ff;
        if (j->gelu)
            kern_geglu(h, g, NULL, n_ff);
        else if (kern_exact())
            kern_swiglu(h, g, g + n_ff, n_ff);
        else
            kern_swiglu_fast(h, g, g + n_ff, n_ff);
    }
}

/* xb[t] = the token's choices' outputs times their weights, added in the
 * order chosen: (y0 w0) + (y1 w1) + ..., each product rounded first as
 * ggml's mul then add round it; then plus the shared expert's output. */
static void combine_job(void *ctx, int ith, int nth) {
    const moe_job *j = ctx;
    const hearth_session *s = j->s;
    const int d = s->model->hp.n_embd, k = j->k;
    int lo, hi;
    hr_pool_part(j->n, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++) {
        float *out = s->xb + (size_t)t * d;
        for (int c = 0; c < k; c++) {
            const float *y = s->moe_y + (size_t)s->moe_pos[t * k + c] * d, w = s->moe_w[t * k + c];
            for (int i = 0; i < d; i++) {
                const float p = y[i] * w; /* not fused with the add */
                out[i] = c ? out[i] + p : p;
            }
        }
        if (s->model->hp.n_ff_shexp) {
            const float *y = s->moe_y + ((size_t)j->n * k + (size_t)t) * d;
            for (int i = 0; i < d; i++) out[i] += y[i];
        }
    }
}

/* y = w x for c rows (x ldx floats apart, y ldy): exact mode row by row,
 * as mul_mat_id multiplies. */
static void expert_product(hearth_session *s, const model_weight *w, const float *x, int64_t ldx,
                           int c, float *y, int64_t ldy) {
    if (!kern_exact()) {
        forward_matmul(s, w, x, c, y, ldy);
        return;
    }
    for (int i = 0; i < c; i++) forward_matmul(s, w, x + i * ldx, 1, y + i * ldy, ldy);
}

/* Expert e's products over its c gathered rows from row r0: gate and up
 * into ffn (together in default mode), or down from hb into moe_y. */
static void run_expert(hearth_session *s, const model_layer *l, int e, int r0, int c, bool down) {
    const model_hparams *hp = &s->model->hp;
    const int64_t n_ff = hp->n_ff, d = hp->n_embd;
    const model_weight *gate = &l->exps[e], *up = &l->exps[hp->n_expert + e];
    float *g = s->ffn + (size_t)r0 * 2 * (size_t)n_ff;
    const float *x = s->moe_x + (size_t)r0 * (size_t)d;
    if (down)
        expert_product(s, &l->exps[2 * hp->n_expert + e], s->hb + (size_t)r0 * (size_t)n_ff, n_ff,
                       c, s->moe_y + (size_t)r0 * (size_t)d, d);
    else if (!gate->data) /* up alone, where the gate would be */
        expert_product(s, up, x, d, c, g, 2 * n_ff);
    else if (kern_exact()) {
        expert_product(s, gate, x, d, c, g, 2 * n_ff);
        expert_product(s, up, x, d, c, g + n_ff, 2 * n_ff);
    } else {
        const model_weight *ws[2] = {gate, up};
        float *ys[2] = {g, g + n_ff};
        forward_matmul_group(s, ws, ys, 2, x, c, 2 * n_ff);
    }
}

/* What `hearth imatrix` sees of one expert tensor's products, in the order
 * llama-imatrix walks mul_mat_id's rows: each token's input to its expert,
 * choice by choice and token by token within a choice. rows: xb (one row
 * per token) or, per_choice, hb (one per gathered row), ld floats apart. */
static void observe_choices(const hearth_session *s, model_observe_fn fn, const model_weight *exps,
                            const float *rows, size_t ld, bool per_choice, int n, int k) {
    for (int j = 0; j < k; j++)
        for (int t = 0; t < n; t++) {
            const int r = t * k + j;
            fn(s->observe_user, &exps[s->moe_sel[r]],
               rows + (size_t)(per_choice ? s->moe_pos[r] : t) * ld, 1);
        }
}

/* The shared expert of xb's n rows into moe_y's rows after the n k
 * chosen ones: llama.cpp's dense FFN (build_ffn, one product per weight
 * over the batch, in both modes), observed as any dense product is. */
static void shared_expert(hearth_session *s, const model_layer *l, int n) {
    const int n_ff = s->model->hp.n_ff_shexp, k = s->model->hp.n_expert_used;
    const model_weight *ws[2] = {&l->gate_shexp, &l->up_shexp};
    float *ys[2] = {s->ffn, s->ffn + n_ff};
    forward_matmul_group(s, ws, ys, 2, s->xb, n, 2 * (int64_t)n_ff);
    moe_job job = {.s = s, .rows = n, .n_ff = n_ff};
    hr_pool_run(s->model->pool, act_job, &job);
    const int d = s->model->hp.n_embd;
    float *y = s->moe_y + (size_t)n * k * (size_t)d;
    forward_matmul(s, &l->down_shexp, s->hb, n, y, d);
    if (!l->gate_inp_shexp.data) return;
    /* Qwen3.5-MoE: times sigmoid(gate . x) (ggml_sigmoid, then ggml_mul); the
       routing is done, so its logits' buffer holds the gate's n values */
    forward_matmul(s, &l->gate_inp_shexp, s->xb, n, s->moe_logits, 1);
    for (int t = 0; t < n; t++) {
        const float g = 1.0f / (1.0f + expf(-s->moe_logits[t]));
        for (int i = 0; i < d; i++) y[(size_t)t * d + i] *= g;
    }
}

void forward_moe(hearth_session *s, const model_layer *l, int n) {
    const model_hparams *hp = &s->model->hp;
    const int n_expert = hp->n_expert, k = hp->n_expert_used;
    const moe_gate gate = {.sigmoid = hp->moe_sigmoid,
                           .renorm = !s->model->arch->moe_raw_weights,
                           .bias = l->exp_probs_b};
    forward_matmul(s, &l->gate_inp, s->xb, n, s->moe_logits, n_expert);
    for (int t = 0; t < n; t++) {
        float *lg = s->moe_logits + (size_t)t * n_expert;
        moe_route(lg, n_expert, k, &gate, lg, s->moe_sel + (size_t)t * k, s->moe_w + (size_t)t * k);
    }
    int *start = s->moe_start; /* [n_expert + 1], then n_expert cursors */
    sort_by_expert(s, n, n_expert, k, start);
    moe_job job = {
        .s = s, .n = n, .k = k, .rows = n * k, .n_ff = hp->n_ff, .gelu = !l->exps[0].data};
    hr_pool *pool = s->model->pool;
    /* the experts' products are observed here, in llama-imatrix's order */
    const model_observe_fn observe = s->observe;
    s->observe = NULL;
    if (observe)
        for (int w = l->exps[0].data ? 0 : 1; w < 2; w++)
            observe_choices(s, observe, l->exps + (size_t)w * n_expert, s->xb, (size_t)hp->n_embd,
                            false, n, k);
    hr_pool_run(pool, gather_job, &job);
    for (int e = 0; e < n_expert; e++)
        if (start[e + 1] > start[e]) run_expert(s, l, e, start[e], start[e + 1] - start[e], false);
    hr_pool_run(pool, act_job, &job);
    if (observe)
        observe_choices(s, observe, l->exps + 2 * (size_t)n_expert, s->hb, (size_t)hp->n_ff, true,
                        n, k);
    for (int e = 0; e < n_expert; e++)
        if (start[e + 1] > start[e]) run_expert(s, l, e, start[e], start[e + 1] - start[e], true);
    s->observe = observe;
    if (hp->n_ff_shexp) shared_expert(s, l, n);
    hr_pool_run(pool, combine_job, &job);
}
