/*
 * ssm.c - recurrent layers, Mamba-2 (Granite 4.0-H's granitehybrid) and
 * Gated DeltaNet (Qwen3.5), and the state a session keeps for them. Mamba-2
 * as llama.cpp's build_mamba2_layer computes it:
 *
 *   z, xBC, dt = in_proj(x)
 *   xBC = silu(causal depthwise conv over the last ssm_conv inputs + bias)
 *   x, B, C = xBC (B and C per group of heads)
 *   per head h: dt' = softplus(dt + dt_bias), dA = exp(dt' A)
 *     per channel i of the head: state = state dA + B x_i dt'; y_i = C . state
 *   y = (y + x D) * silu(z), RMS-normed per group (where the layer has the
 *   norm: Falcon-H1's may not); out_proj(y)
 *
 * Gated DeltaNet as llama.cpp's qwen35 graph with its fused
 * ggml_gated_delta_net: q k v = silu(the same convolution over attn_qkv(x)),
 * q and k L2-normed per key head; per value head h (reading key head
 * h % key heads), g = softplus(alpha + dt_bias) A, beta = sigmoid(beta), and
 * per token: S *= exp(g); d = (v - S k) beta; S += k d^T; y = S q / sqrt(S_v);
 * then RMSNorm(y) per head times silu(z) and ssm_out. Its state is the
 * convolution's window and one S_v x S_v matrix per value head, in Mamba-2's
 * place (the same size: d_inner x d_state).
 *
 * Unlike keys and values, the state cannot be cut back to an earlier
 * position: it holds every token before it. A session keeps the state after
 * rs_pos tokens and one checkpoint, taken where a batch of several tokens
 * starts (a prompt's chunk, a speculative draft's verification). When a run
 * starts elsewhere (after hearth_session_truncate, a partial copy, a session
 * file's load), the state is rebuilt first by replaying the session's tokens
 * from the nearest of the state, the checkpoint and position 0: in default
 * mode the same bits as before (its arithmetic does not depend on the
 * batch), in exact mode what llama.cpp computes when it evaluates those
 * tokens again in batches of that size.
 */
#include "session.h"

#include <math.h>
#include <string.h>

/* A row of the in-projections: z [d_inner], x B C (Gated DeltaNet: q k v)
 * [conv_dim], dt [heads] (Gated DeltaNet: beta, then alpha). */
static int64_t ssm_d_in(const hearth_model *m) {
    const model_hparams *hp = &m->hp;
    return hp->ssm_inner + model_ssm_conv_dim(hp) + hp->ssm_heads * (m->arch->gdn ? 2 : 1);
}

static float *layer_state(const hearth_session *s, const model_layer *l) {
    return s->ssm_rs + (size_t)l->ssm_slot * (size_t)model_ssm_state_floats(&s->model->hp);
}

typedef struct ssm_job {
    hearth_session *s;
    const model_layer *l;
    const fwd_run *runs;
    int n_runs, n; /* the runs cover rows 0..n-1 */
} ssm_job;

/* The convolution, channels split across the pool: each channel's window
 * is its state's last ssm_conv - 1 inputs, then the run's rows; the sum is
 * ggml_ssm_conv's (from 0, tap by tap, fused), then the bias and SiLU
 * (ggml's approximate one on whole groups of 16 of a row, expf on the
 * rest). The window's last ssm_conv - 1 inputs become the state. */
static void conv_job(void *ctx, int ith, int nth) {
    const ssm_job *j = ctx;
    const model_hparams *hp = &j->s->model->hp;
    const int taps = hp->ssm_conv, hist = taps - 1;
    const int64_t conv = model_ssm_conv_dim(hp), d_in = ssm_d_in(j->s->model);
    const int64_t silu_vec = conv & ~(int64_t)15;
    int c0, c1;
    hr_pool_part((int)conv, ith, nth, &c0, &c1);
    for (int ir = 0; ir < j->n_runs; ir++) {
        const fwd_run *r = &j->runs[ir];
        const float *in = j->s->ssm_zx + (size_t)r->t0 * (size_t)d_in + (size_t)hp->ssm_inner;
        float *out = j->s->ssm_xbc + (size_t)r->t0 * (size_t)conv;
        float *state = layer_state(r->s, j->l);
        for (int c = c0; c < c1; c++) {
            const float *w = j->l->ssm_conv_w + (size_t)c * (size_t)taps;
            float *st = state + (size_t)c * (size_t)hist;
#define WINDOW(k) ((k) < hist ? st[k] : in[(size_t)((k)-hist) * (size_t)d_in + (size_t)c])
            for (int t = 0; t < r->n; t++) {
                float sum = 0.0f;
                for (int k = 0; k < taps; k++) sum = fmaf(WINDOW(t + k), w[k], sum);
                if (j->l->ssm_conv_b) sum += j->l->ssm_conv_b[c];
                out[(size_t)t * (size_t)conv + (size_t)c] =
                    c < silu_vec ? kern_ggml_silu(sum) : sum / (1.0f + expf(-sum));
            }
            /* ascending: entry k reads k + n > k, not yet overwritten */
            for (int k = 0; k < hist; k++) st[k] = WINDOW(r->n + k);
#undef WINDOW
        }
    }
}

/* One head's step of a recurrent layer's scan: the token's row t of the
 * session's buffers, against the head's part of `states`. */
typedef void (*scan_head_fn)(const ssm_job *j, float *states, int t, int h);

/* Heads split across the pool; each run's tokens in order against its
 * session's state, head by head (a head's state, 16-64 KiB, then stays in
 * the core's cache through the run's tokens; heads are independent). */
static void scan_runs(const ssm_job *j, int ith, int nth, scan_head_fn step) {
    const model_hparams *hp = &j->s->model->hp;
    const int64_t conv_state = (int64_t)(hp->ssm_conv - 1) * model_ssm_conv_dim(hp);
    int h0, h1;
    hr_pool_part(hp->ssm_heads, ith, nth, &h0, &h1);
    for (int ir = 0; ir < j->n_runs; ir++) {
        const fwd_run *r = &j->runs[ir];
        float *states = layer_state(r->s, j->l) + conv_state;
        for (int h = h0; h < h1; h++)
            for (int t = r->t0; t < r->t0 + r->n; t++) step(j, states, t, h);
    }
}

/* Default mode's step of a head's channels: the same recurrence with one
 * 16-lane accumulator per channel, in one call (exact mode's per-channel
 * step, llama.cpp's order, costs a call and a 64-float reduction tree per
 * channel: 40 % of Falcon-H1's prompt time). Per token and channel alike
 * for any batch, so a replayed state is the same bits. */
static KERN_FMA_CLONES_512 void head_step(float *restrict state, const float *restrict B,
                                          const float *restrict C, const float *restrict x,
                                          float dt, float dA, int hd, int n, float *restrict y) {
    for (int i = 0; i < hd; i++) {
        float *st = state + (size_t)i * (size_t)n;
        const float x_dt = x[i] * dt;
        float acc[16] = {0};
        int e = 0;
        for (; e + 16 <= n; e += 16)
            for (int r = 0; r < 16; r++) {
                st[e + r] = fmaf(st[e + r], dA, B[e + r] * x_dt);
                acc[r] = fmaf(st[e + r], C[e + r], acc[r]);
            }
        for (int w = 8; w > 0; w /= 2)
            for (int r = 0; r < w; r++) acc[r] += acc[r + w];
        float sum = acc[0];
        for (; e < n; e++) {
            st[e] = fmaf(st[e], dA, B[e] * x_dt);
            sum = fmaf(st[e], C[e], sum);
        }
        y[i] = sum;
    }
}

/* Mamba-2's scan of head h, then y + x D (rounded apart, as two ggml ops). */
static void mamba2_head(const ssm_job *j, float *states, int t, int h) {
    const model_hparams *hp = &j->s->model->hp;
    const model_layer *l = j->l;
    const int heads = hp->ssm_heads, hd = hp->ssm_inner / heads, n_st = hp->ssm_state;
    const int64_t conv = model_ssm_conv_dim(hp), d_in = ssm_d_in(j->s->model);
    const float *xbc = j->s->ssm_xbc + (size_t)t * (size_t)conv;
    const float *dt = j->s->ssm_zx + (size_t)t * (size_t)d_in + (size_t)(d_in - heads);
    float *y = j->s->att + (size_t)t * (size_t)hp->ssm_inner;
    const float v = dt[h] + l->ssm_dt_b[h];
    const float sp = v > 20.0f ? v : logf(1 + expf(v)); /* softplus */
    const float dA = expf(sp * l->ssm_a[h]);
    const int g = h / (heads / hp->ssm_groups);
    const float *B = xbc + hp->ssm_inner + (size_t)g * (size_t)n_st;
    const float *C = B + (size_t)hp->ssm_groups * (size_t)n_st;
    const int i0 = h * hd;
    if (!kern_exact())
        head_step(states + (size_t)i0 * (size_t)n_st, B, C, xbc + i0, sp, dA, hd, n_st, y + i0);
    for (int i = i0; i < i0 + hd; i++) {
        const float x = xbc[i];
        const float sum = kern_exact() ? kern_ggml_ssm_step(states + (size_t)i * (size_t)n_st, B, C,
                                                            dA, x * sp, n_st)
                                       : y[i];
        const float xd = x * l->ssm_d[h];
        y[i] = sum + xd;
    }
}

static void scan_job(void *ctx, int ith, int nth) { scan_runs(ctx, ith, nth, mamba2_head); }

/* Per token: y * silu(z) head by head (ggml's glu takes rows of a head),
 * then the RMS norm of each group. */
static void gate_norm_job(void *ctx, int ith, int nth) {
    const ssm_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    const int hd = hp->ssm_inner / hp->ssm_heads, gs = hp->ssm_inner / hp->ssm_groups;
    const int64_t d_in = ssm_d_in(j->s->model);
    int t0, t1;
    hr_pool_part(j->n, ith, nth, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        float *y = s->att + (size_t)t * (size_t)hp->ssm_inner;
        const float *z = s->ssm_zx + (size_t)t * (size_t)d_in;
        for (int i = 0; i < hp->ssm_inner; i += hd) kern_swiglu(y + i, z + i, y + i, hd);
        for (int i = 0; j->l->ssm_norm && i < hp->ssm_inner; i += gs)
            forward_rms_norm(y + i, y + i, j->l->ssm_norm + i, gs, hp->rms_eps);
    }
}

/* ---- Gated DeltaNet ---- */

/* x *= 1 / max(|x|, eps), |x| summed in double as ggml_l2_norm sums it. */
static void l2_norm(float *x, int n, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / fmaxf(sqrtf((float)sum), eps);
    for (int i = 0; i < n; i++) x[i] *= scale;
}

/* q and k of every key head L2-normed, tokens split across the pool. */
static void gdn_norm_job(void *ctx, int ith, int nth) {
    const ssm_job *j = ctx;
    const model_hparams *hp = &j->s->model->hp;
    const int64_t conv = model_ssm_conv_dim(hp);
    const int dk = hp->ssm_state;
    int t0, t1;
    hr_pool_part(j->n, ith, nth, &t0, &t1);
    for (int t = t0; t < t1; t++)
        for (int h = 0; h < 2 * hp->ssm_groups; h++)
            l2_norm(j->s->ssm_xbc + (size_t)t * (size_t)conv + (size_t)h * (size_t)dk, dk,
                    hp->rms_eps);
}

/* Value head h of ggml_gated_delta_net: its gates (beta = sigmoid(beta),
 * decay = exp(softplus(alpha + dt_bias) A), each a ggml op) and the step
 * (kern_ggml_gdn_step), reading key head h % key heads as Qwen3.5 does. */
static void gdn_head(const ssm_job *j, float *states, int t, int h) {
    const model_hparams *hp = &j->s->model->hp;
    const model_layer *l = j->l;
    const int heads = hp->ssm_heads, dv = hp->ssm_state;
    const int64_t conv = model_ssm_conv_dim(hp), d_in = ssm_d_in(j->s->model);
    const int64_t key_dim = (int64_t)hp->ssm_groups * dv;
    const float *qkv = j->s->ssm_xbc + (size_t)t * (size_t)conv;
    const float *ba = j->s->ssm_zx + (size_t)t * (size_t)d_in + (size_t)(d_in - 2 * heads);
    const float *q = qkv + (size_t)(h % hp->ssm_groups) * (size_t)dv, *k = q + key_dim;
    const float *v = qkv + 2 * key_dim + (size_t)h * (size_t)dv;
    float *y = j->s->att + (size_t)t * (size_t)hp->ssm_inner + (size_t)h * (size_t)dv;
    const float beta = 1.0f / (1.0f + expf(-ba[h]));
    const float a = ba[heads + h] + l->ssm_dt_b[h];
    const float decay = expf((a > 20.0f ? a : logf(1.0f + expf(a))) * l->ssm_a[h]);
    (kern_exact() ? kern_ggml_gdn_step
                  : kern_gdn_step_fast)(states + (size_t)h * (size_t)dv * (size_t)dv, q, k, v,
                                        decay, beta, 1.0f / sqrtf((float)dv), dv, y);
}

static void gdn_scan_job(void *ctx, int ith, int nth) { scan_runs(ctx, ith, nth, gdn_head); }

/* Per token and value head: RMSNorm(y) times silu(z) (ggml_silu on rows of
 * a head, then the product). */
static void gdn_gate_norm_job(void *ctx, int ith, int nth) {
    const ssm_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    const int dv = hp->ssm_state;
    const int64_t d_in = ssm_d_in(s->model);
    int t0, t1;
    hr_pool_part(j->n, ith, nth, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        float *y = s->att + (size_t)t * (size_t)hp->ssm_inner;
        const float *z = s->ssm_zx + (size_t)t * (size_t)d_in;
        for (int i = 0; i < hp->ssm_inner; i += dv) {
            forward_rms_norm(y + i, y + i, j->l->ssm_norm, dv, hp->rms_eps);
            kern_swiglu(y + i, z + i, y + i, dv);
        }
    }
}

void forward_ssm(hearth_session *s, const model_layer *l, const float *x, float *y,
                 const fwd_run *runs, int n_runs, int n) {
    const hearth_model *m = s->model;
    const model_hparams *hp = &m->hp;
    const int64_t d_in = ssm_d_in(m);
    ssm_job job = {.s = s, .l = l, .runs = runs, .n_runs = n_runs, .n = n};
    if (m->arch->gdn) { /* z, q k v, beta, alpha side by side in each row */
        const model_weight *ws[4] = {&l->ssm_z, &l->wqkv, &l->ssm_beta, &l->ssm_alpha};
        float *ys[4] = {s->ssm_zx, s->ssm_zx + hp->ssm_inner,
                        s->ssm_zx + hp->ssm_inner + model_ssm_conv_dim(hp),
                        s->ssm_zx + d_in - hp->ssm_heads};
        forward_matmul_group(s, ws, ys, 4, x, n, d_in);
        hr_pool_run(m->pool, conv_job, &job);
        hr_pool_run(m->pool, gdn_norm_job, &job);
        hr_pool_run(m->pool, gdn_scan_job, &job);
        hr_pool_run(m->pool, gdn_gate_norm_job, &job);
    } else {
        forward_matmul(s, &l->ssm_in, x, n, s->ssm_zx, d_in);
        hr_pool_run(m->pool, conv_job, &job);
        hr_pool_run(m->pool, scan_job, &job);
        hr_pool_run(m->pool, gate_norm_job, &job);
    }
    forward_matmul(s, &l->ssm_out, s->att, n, y, hp->n_embd);
}

/* ---- the state across calls ---- */

static size_t state_bytes(const hearth_session *s) {
    return (size_t)s->model->hp.n_ssm * (size_t)model_ssm_state_floats(&s->model->hp) *
           sizeof(float);
}

void ssm_truncate(hearth_session *s, int pos) {
    if (s->rs_pos > pos) s->rs_pos = -1;
    if (s->cp_pos > pos) s->cp_pos = -1;
}

/* s's state after its first pos tokens, replaying what it must from the
 * latest of the state (behind pos after a session file's load), the
 * checkpoint and position 0. */
static void sync_state(hearth_session *s, int pos) {
    ssm_truncate(s, pos); /* a run may start below them without a truncation (embeddings) */
    if (s->rs_pos == pos) return;
    if (s->rs_pos < 0 || s->rs_pos < s->cp_pos) {
        const bool cp = s->cp_pos >= 0;
        if (cp)
            memcpy(s->ssm_rs, s->ssm_cp, state_bytes(s));
        else
            memset(s->ssm_rs, 0, state_bytes(s));
        s->rs_pos = cp ? s->cp_pos : 0;
    }
    while (s->rs_pos < pos) {
        const int nb = pos - s->rs_pos < s->n_batch ? pos - s->rs_pos : s->n_batch;
        const fwd_run run = {.s = s, .t0 = 0, .n = nb, .pos0 = s->rs_pos};
        forward_multi(s, &run, 1, s->tokens + s->rs_pos, nb, NULL, 0); /* advances rs_pos */
    }
}

void ssm_begin(const fwd_run *runs, int n_runs) {
    for (int i = 0; i < n_runs; i++) {
        hearth_session *s = runs[i].s;
        if (!s->ssm_rs) continue;
        sync_state(s, runs[i].pos0); /* from 0: no tokens read (embeddings keep none) */
        if (runs[i].n > 1 && s->cp_pos != runs[i].pos0) {
            memcpy(s->ssm_cp, s->ssm_rs, state_bytes(s));
            s->cp_pos = runs[i].pos0;
        }
    }
}

void ssm_end(const fwd_run *runs, int n_runs) {
    for (int i = 0; i < n_runs; i++)
        if (runs[i].s->ssm_rs) runs[i].s->rs_pos = runs[i].pos0 + runs[i].n;
}

void ssm_copy(hearth_session *dst, const hearth_session *src, int n) {
    const size_t bytes = state_bytes(src);
    dst->rs_pos = dst->cp_pos = -1;
    if (src->rs_pos >= 0 && src->rs_pos <= n) {
        memcpy(dst->ssm_rs, src->ssm_rs, bytes);
        dst->rs_pos = src->rs_pos;
    }
    if (src->cp_pos >= 0 && src->cp_pos <= n) {
        memcpy(dst->ssm_cp, src->ssm_cp, bytes);
        dst->cp_pos = src->cp_pos;
    }
}
