/*
 * moe.c - a mixture-of-experts FFN (qwen3moe, Mixtral-style llama), as
 * llama.cpp's build_moe_ffn computes it with softmax gating and normalized
 * weights: the router's logits W_r x, p = softmax, the k most probable
 * experts (ties to the lower index), their probabilities divided by their
 * sum (at least 2^-14), each chosen expert's down(silu(gate x) * up x) times
 * its weight, and the k results added in the order they were chosen.
 *
 * Tokens are grouped by expert, so each expert's products run once over
 * every token that chose it (one matrix product per expert instead of one
 * per token). Exact mode multiplies token by token instead, which is the
 * summation order of ggml's mul_mat_id (one vec_dot, or one repacked gemv,
 * per row and token).
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

void moe_route(const float *logits, int n_expert, int k, float *probs, int32_t *sel, float *w) {
    router_softmax(probs, logits, n_expert);
    for (int j = 0; j < k; j++) { /* the k best by selection: k is small */
        int best = -1;
        for (int e = 0; e < n_expert; e++) {
            bool taken = false;
            for (int i = 0; i < j && !taken; i++) taken = sel[i] == e;
            if (!taken && (best < 0 || probs[e] > probs[best])) best = e;
        }
        sel[j] = best;
        w[j] = probs[best];
    }
    double sum = 0.0; /* ggml_sum_rows, then the clamp to F16's smallest normal */
    for (int j = 0; j < k; j++) sum += (double)w[j];
    const float total = fmaxf((float)sum, 6.103515625e-5f);
    for (int j = 0; j < k; j++) w[j] /= total;
}

/* The chosen experts' outputs, for rows of xb gathered by expert. */
static void run_expert(hearth_session *s, const model_layer *l, int e, int c) {
    const hearth_model *m = s->model;
    const int n_ff = m->hp.n_ff, n_expert = m->hp.n_expert;
    const model_weight *gate = &l->exps[e], *up = &l->exps[n_expert + e],
                       *down = &l->exps[2 * n_expert + e];
    if (kern_exact()) { /* mul_mat_id's order: token by token */
        for (int i = 0; i < c; i++) {
            const float *x = s->moe_x + (size_t)i * m->hp.n_embd;
            float *g = s->ffn + (size_t)i * 2 * n_ff;
            forward_matmul(s, gate, x, 1, g, 2 * n_ff);
            forward_matmul(s, up, x, 1, g + n_ff, 2 * n_ff);
            kern_swiglu(s->hb + (size_t)i * n_ff, g, g + n_ff, n_ff);
            forward_matmul(s, down, s->hb + (size_t)i * n_ff, 1,
                           s->moe_y + (size_t)i * m->hp.n_embd, m->hp.n_embd);
        }
        return;
    }
    const model_weight *ws[2] = {gate, up};
    float *ys[2] = {s->ffn, s->ffn + n_ff};
    forward_matmul_group(s, ws, ys, 2, s->moe_x, c, 2 * n_ff);
    for (int i = 0; i < c; i++) {
        const float *g = s->ffn + (size_t)i * 2 * n_ff;
        kern_swiglu_fast(s->hb + (size_t)i * n_ff, g, g + n_ff, n_ff);
    }
    forward_matmul(s, down, s->hb, c, s->moe_y, m->hp.n_embd);
}

void forward_moe(hearth_session *s, const model_layer *l, int n) {
    const model_hparams *hp = &s->model->hp;
    const int n_expert = hp->n_expert, k = hp->n_expert_used, d = hp->n_embd;
    forward_matmul(s, &l->gate_inp, s->xb, n, s->moe_logits, n_expert);
    for (int t = 0; t < n; t++) {
        float *lg = s->moe_logits + (size_t)t * n_expert;
        moe_route(lg, n_expert, k, lg, s->moe_sel + (size_t)t * k, s->moe_w + (size_t)t * k);
    }
    for (int e = 0; e < n_expert; e++) {
        int c = 0; /* the (token, slot) rows that chose e; a token chooses e at most once */
        for (int r = 0; r < n * k; r++) {
            if (s->moe_sel[r] != e) continue;
            memcpy(s->moe_x + (size_t)c * d, s->xb + (size_t)(r / k) * d,
                   (size_t)d * sizeof(float));
            s->moe_rows[c++] = r;
        }
        if (!c) continue;
        run_expert(s, l, e, c);
        for (int i = 0; i < c; i++) {
            const int r = s->moe_rows[i];
            const float *y = s->moe_y + (size_t)i * d, w = s->moe_w[r];
            float *o = s->moe_out + (size_t)r * d;
            for (int j = 0; j < d; j++) o[j] = y[j] * w;
        }
    }
    for (int t = 0; t < n; t++) { /* the slots' results added in slot order */
        const float *o = s->moe_out + (size_t)t * k * d;
        float *y = s->xb + (size_t)t * d;
        memcpy(y, o, (size_t)d * sizeof *y);
        for (int j = 1; j < k; j++)
            for (int i = 0; i < d; i++) y[i] += o[(size_t)j * d + i];
    }
}
