/*
 * router_lbfgs.c - L2-regularized logistic regression by L-BFGS (Nocedal &
 * Wright, "Numerical Optimization", algorithm 7.4, two-loop recursion, with a
 * backtracking Armijo line search). The loss is convex, so the result depends
 * only on the data and the regularization, not on the order of the rows:
 * training is deterministic, with no learning rate to tune. One evaluation of
 * the loss and its gradient is two passes over the sparse matrix.
 */
#include "router_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The rows are cut into LR_CHUNKS fixed chunks whatever the thread count,
 * and the chunks' sums are added in chunk order: the fit is bit-identical
 * with 1 thread or 4. */
enum { LBFGS_M = 10, LBFGS_MAX_BACKTRACK = 40, LR_CHUNKS = 4 };

void rtr_csr_fini(rtr_csr *m) {
    free(m->row_start);
    free(m->col);
    free(m->val);
    memset(m, 0, sizeof *m);
}

typedef struct lr_eval {
    const rtr_lr_problem *p;
    double inv_w; /* 1 / sum of row weights */
    const double *w;
    double *g_part; /* [LR_CHUNKS][n_cols]: each row chunk's part of the gradient */
    double loss_part[LR_CHUNKS];
    hr_pool *pool;
} lr_eval;

/* log(1 + exp(z)) without overflow */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

/* One chunk of rows: its loss and its part of X^T r, r = sigmoid(z) - y. */
static void lr_chunk(lr_eval *ev, int chunk) {
    const rtr_lr_problem *p = ev->p;
    const rtr_csr *x = p->x;
    size_t r0 = x->n_rows * (size_t)chunk / LR_CHUNKS;
    size_t r1 = x->n_rows * (size_t)(chunk + 1) / LR_CHUNKS;
    double *g = ev->g_part + (size_t)chunk * x->n_cols, loss = 0;
    memset(g, 0, x->n_cols * sizeof *g);
    for (size_t i = r0; i < r1; i++) {
        double z = 0;
        for (size_t k = x->row_start[i]; k < x->row_start[i + 1]; k++)
            z += ev->w[x->col[k]] * (double)x->val[k];
        double c = p->weight ? (double)p->weight[i] : 1.0;
        double y = (double)p->y[i];
        loss += c * (softplus(z) - y * z);
        double r = c * (rtr_sigmoid(z) - y) * ev->inv_w;
        for (size_t k = x->row_start[i]; k < x->row_start[i + 1]; k++)
            g[x->col[k]] += r * (double)x->val[k];
    }
    ev->loss_part[chunk] = loss;
}

static void lr_rows_job(void *ctx, int ith, int nth) {
    for (int c = ith; c < LR_CHUNKS; c += nth) lr_chunk(ctx, c);
}

/* Sums the chunks' gradient parts into part 0, by column ranges. */
static void lr_reduce_job(void *ctx, int ith, int nth) {
    lr_eval *ev = ctx;
    size_t n = ev->p->x->n_cols;
    size_t c0 = n * (size_t)ith / (size_t)nth, c1 = n * (size_t)(ith + 1) / (size_t)nth;
    for (int t = 1; t < LR_CHUNKS; t++) {
        const double *gt = ev->g_part + (size_t)t * n;
        for (size_t j = c0; j < c1; j++) ev->g_part[j] += gt[j];
    }
}

/* The objective at w and its gradient g. */
static double lr_loss_grad(lr_eval *ev, const double *w, double *g) {
    const rtr_lr_problem *p = ev->p;
    size_t n = p->x->n_cols;
    ev->w = w;
    if (ev->pool) {
        hr_pool_run(ev->pool, lr_rows_job, ev);
        hr_pool_run(ev->pool, lr_reduce_job, ev);
    } else {
        lr_rows_job(ev, 0, 1);
        lr_reduce_job(ev, 0, 1);
    }
    double loss = 0;
    for (int t = 0; t < LR_CHUNKS; t++) loss += ev->loss_part[t];
    loss *= ev->inv_w;
    memcpy(g, ev->g_part, n * sizeof *g);
    double reg = 0;
    for (size_t j = 0; j < p->n_reg; j++) {
        reg += w[j] * w[j];
        g[j] += p->l2 * w[j];
    }
    return loss + 0.5 * p->l2 * reg;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* d = -H g by the two-loop recursion over the stored pairs (s, y). */
static void two_loop(size_t n, const double *g, double *d, double *const *s, double *const *y,
                     const double *rho, int n_pairs, int newest, double *alpha) {
    for (size_t i = 0; i < n; i++) d[i] = -g[i];
    for (int k = 0; k < n_pairs; k++) {
        int j = (newest - k + LBFGS_M) % LBFGS_M;
        alpha[j] = rho[j] * dot(s[j], d, n);
        for (size_t i = 0; i < n; i++) d[i] -= alpha[j] * y[j][i];
    }
    if (n_pairs) {
        double gamma = dot(s[newest], y[newest], n) / dot(y[newest], y[newest], n);
        for (size_t i = 0; i < n; i++) d[i] *= gamma;
    }
    for (int k = n_pairs - 1; k >= 0; k--) {
        int j = (newest - k + LBFGS_M) % LBFGS_M;
        double beta = rho[j] * dot(y[j], d, n);
        for (size_t i = 0; i < n; i++) d[i] += (alpha[j] - beta) * s[j][i];
    }
}

static double lr_fg(void *ctx, const double *w, double *g) { return lr_loss_grad(ctx, w, g); }

hearth_err rtr_lr_fit(const rtr_lr_problem *p, double *w, double *final_loss) {
    size_t n = p->x->n_cols;
    double wsum = 0;
    for (size_t i = 0; i < p->x->n_rows; i++) wsum += p->weight ? (double)p->weight[i] : 1.0;
    if (!(wsum > 0)) return hr_fail(HEARTH_ERR_INVALID_ARG, "router: no training rows");
    lr_eval ev = {.p = p, .inv_w = 1.0 / wsum};
    /* without a pool (threads refused) the caller's thread does it all */
    if (p->n_threads > 1 &&
        hr_pool_new(p->n_threads < LR_CHUNKS ? p->n_threads : LR_CHUNKS, &ev.pool))
        ev.pool = NULL;
    ev.g_part = malloc((size_t)LR_CHUNKS * n * sizeof(double));
    hearth_err e = ev.g_part ? rtr_lbfgs(n, w, lr_fg, &ev, p->max_iter, final_loss)
                             : hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (%zu features)", n);
    free(ev.g_part);
    hr_pool_free(ev.pool);
    return e;
}

hearth_err rtr_lbfgs(size_t n, double *w, rtr_fg_fn fg, void *ctx, int max_iter,
                     double *final_loss) {
    /* g, d, w_new, g_new, then M pairs of s and y */
    double *buf = malloc((4 + 2 * (size_t)LBFGS_M) * n * sizeof(double));
    if (!buf) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (%zu parameters)", n);
    double *g = buf, *d = buf + n, *wn = buf + 2 * n, *gn = buf + 3 * n;
    double *s[LBFGS_M], *y[LBFGS_M], rho[LBFGS_M], alpha[LBFGS_M];
    for (int k = 0; k < LBFGS_M; k++) {
        s[k] = buf + (4 + 2 * (size_t)k) * n;
        y[k] = s[k] + n;
    }
    double f = fg(ctx, w, g);
    int n_pairs = 0, newest = LBFGS_M - 1;
    for (int it = 0; it < max_iter; it++) {
        double gnorm = sqrt(dot(g, g, n));
        if (gnorm < 1e-7) break;
        two_loop(n, g, d, s, y, rho, n_pairs, newest, alpha);
        double gd = dot(g, d, n);
        if (!(gd < 0)) { /* lost descent (rounding): restart from the gradient */
            n_pairs = 0;
            for (size_t i = 0; i < n; i++) d[i] = -g[i];
            gd = -gnorm * gnorm;
        }
        double step = n_pairs ? 1.0 : 1.0 / gnorm, fn = f;
        int bt = 0;
        for (; bt < LBFGS_MAX_BACKTRACK; bt++) {
            for (size_t i = 0; i < n; i++) wn[i] = w[i] + step * d[i];
            fn = fg(ctx, wn, gn);
            if (fn <= f + 1e-4 * step * gd) break;
            step *= 0.5;
        }
        if (bt == LBFGS_MAX_BACKTRACK) break; /* no decrease possible: converged */
        newest = (newest + 1) % LBFGS_M;
        for (size_t i = 0; i < n; i++) {
            s[newest][i] = wn[i] - w[i];
            y[newest][i] = gn[i] - g[i];
        }
        double sy = dot(s[newest], y[newest], n);
        if (sy > 1e-12) {
            rho[newest] = 1.0 / sy;
            if (n_pairs < LBFGS_M) n_pairs++;
        } else { /* drop a useless pair; its slot held the oldest one when full */
            newest = (newest + LBFGS_M - 1) % LBFGS_M;
            if (n_pairs == LBFGS_M) n_pairs--;
        }
        memcpy(w, wn, n * sizeof *w);
        memcpy(g, gn, n * sizeof *g);
        double rel = (f - fn) / fmax(fabs(fn), 1e-12);
        f = fn;
        if (rel < 1e-10) break;
    }
    if (final_loss) *final_loss = f;
    free(buf);
    return HEARTH_OK;
}
