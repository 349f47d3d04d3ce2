/*
 * router_subject.c - the subject part of a router (docs/router.md, "Subject
 * part"): a multinomial logistic (softmax) classifier that estimates from the
 * prompt's words which training group (MMLU subject) it comes from, and the
 * expectation of the groups' gain rates under that distribution. The group is
 * still never a feature: it is the classifier's training label, and at
 * scoring time only the text is seen.
 */
#include "router_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fixed row chunks whose gradient parts are added in chunk order: the fit is
 * bit-identical whatever the thread count (as in router_lbfgs.c). */
enum { SM_CHUNKS = 4 };

void rtr_subject_fini(rtr_subject *s) {
    free(s->rate);
    free(s->bias);
    free(s->head_w);
    free(s->w);
    memset(s, 0, sizeof *s);
}

/* p[0..n) = softmax(z) in place. */
static void softmax(double *z, uint32_t n) {
    double mx = z[0], sum = 0;
    for (uint32_t k = 1; k < n; k++) mx = z[k] > mx ? z[k] : mx;
    for (uint32_t k = 0; k < n; k++) sum += (z[k] = exp(z[k] - mx));
    for (uint32_t k = 0; k < n; k++) z[k] /= sum;
}

void rtr_subject_probs_fvec(const rtr_subject *s, const rtr_fvec *fs, double *p) {
    for (uint32_t k = 0; k < s->n; k++) p[k] = s->bias[k];
    for (size_t i = 0; i < fs->n; i++) {
        const float *w = s->w + (size_t)fs->idx[i] * s->n;
        double v = fs->val[i];
        for (uint32_t k = 0; k < s->n; k++) p[k] += (double)w[k] * v;
    }
    softmax(p, s->n);
}

void rtr_subject_expect(const rtr_subject *s, const rtr_fvec *fs, double *rate, double *head_w) {
    *rate = 0;
    *head_w = 1;
    if (!s->n || !fs) return;
    double z[RTR_MAX_SUBJECTS], hw = 0;
    rtr_subject_probs_fvec(s, fs, z);
    for (uint32_t k = 0; k < s->n; k++) {
        *rate += z[k] * (double)s->rate[k];
        hw += z[k] * (double)s->head_w[k];
    }
    *head_w = hw;
}

/* ------------------------------------------------------------- fitting */

typedef struct sm_eval {
    const rtr_csr *x;
    const uint32_t *y;
    uint32_t nc;
    double l2;
    size_t n_reg;
    const double *w;
    double *g_part; /* [SM_CHUNKS][n_cols * nc] */
    double loss_part[SM_CHUNKS];
    hr_pool *pool;
} sm_eval;

static void sm_chunk(sm_eval *ev, int chunk) {
    const rtr_csr *x = ev->x;
    size_t np = x->n_cols * ev->nc;
    size_t r0 = x->n_rows * (size_t)chunk / SM_CHUNKS;
    size_t r1 = x->n_rows * (size_t)(chunk + 1) / SM_CHUNKS;
    double *g = ev->g_part + (size_t)chunk * np, loss = 0, z[RTR_MAX_SUBJECTS];
    double inv_n = 1.0 / (double)x->n_rows;
    memset(g, 0, np * sizeof *g);
    for (size_t i = r0; i < r1; i++) {
        for (uint32_t k = 0; k < ev->nc; k++) z[k] = 0;
        for (size_t j = x->row_start[i]; j < x->row_start[i + 1]; j++) {
            const double *wc = ev->w + (size_t)x->col[j] * ev->nc;
            double v = x->val[j];
            for (uint32_t k = 0; k < ev->nc; k++) z[k] += wc[k] * v;
        }
        softmax(z, ev->nc);
        loss -= log(z[ev->y[i]] > 1e-300 ? z[ev->y[i]] : 1e-300);
        z[ev->y[i]] -= 1; /* the residual p - onehot(y) */
        for (size_t j = x->row_start[i]; j < x->row_start[i + 1]; j++) {
            double *gc = g + (size_t)x->col[j] * ev->nc;
            double v = x->val[j] * inv_n;
            for (uint32_t k = 0; k < ev->nc; k++) gc[k] += z[k] * v;
        }
    }
    ev->loss_part[chunk] = loss * inv_n;
}

static void sm_rows_job(void *ctx, int ith, int nth) {
    for (int c = ith; c < SM_CHUNKS; c += nth) sm_chunk(ctx, c);
}

static void sm_reduce_job(void *ctx, int ith, int nth) {
    sm_eval *ev = ctx;
    size_t n = ev->x->n_cols * ev->nc;
    size_t c0 = n * (size_t)ith / (size_t)nth, c1 = n * (size_t)(ith + 1) / (size_t)nth;
    for (int t = 1; t < SM_CHUNKS; t++) {
        const double *gt = ev->g_part + (size_t)t * n;
        for (size_t j = c0; j < c1; j++) ev->g_part[j] += gt[j];
    }
}

static double sm_fg(void *ctx, const double *w, double *g) {
    sm_eval *ev = ctx;
    size_t n = ev->x->n_cols * ev->nc, n_reg = ev->n_reg * ev->nc;
    ev->w = w;
    if (ev->pool) {
        hr_pool_run(ev->pool, sm_rows_job, ev);
        hr_pool_run(ev->pool, sm_reduce_job, ev);
    } else {
        sm_rows_job(ev, 0, 1);
        sm_reduce_job(ev, 0, 1);
    }
    double loss = 0, reg = 0;
    for (int t = 0; t < SM_CHUNKS; t++) loss += ev->loss_part[t];
    memcpy(g, ev->g_part, n * sizeof *g);
    for (size_t j = 0; j < n_reg; j++) {
        reg += w[j] * w[j];
        g[j] += ev->l2 * w[j];
    }
    return loss + 0.5 * ev->l2 * reg;
}

hearth_err rtr_softmax_fit(const rtr_csr *x, const uint32_t *y, uint32_t n_class, double l2,
                           size_t n_reg, int max_iter, int n_threads, double *w) {
    if (!x->n_rows) return hr_fail(HEARTH_ERR_INVALID_ARG, "router: no training rows");
    if (n_class < 2 || n_class > RTR_MAX_SUBJECTS)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: %u classes (2..%d)", n_class,
                       RTR_MAX_SUBJECTS);
    for (size_t i = 0; i < x->n_rows; i++)
        if (y[i] >= n_class)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "router: class %u of row %zu >= %u", y[i], i,
                           n_class);
    uint64_t np64;
    if (!hr_mul_ok(x->n_cols, n_class, &np64) || np64 > ((uint64_t)1 << 28))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: %zu columns x %u classes is too many",
                       x->n_cols, n_class);
    size_t np = (size_t)np64;
    sm_eval ev = {.x = x, .y = y, .nc = n_class, .l2 = l2, .n_reg = n_reg};
    if (n_threads > 1 && hr_pool_new(n_threads < SM_CHUNKS ? n_threads : SM_CHUNKS, &ev.pool))
        ev.pool = NULL;
    ev.g_part = malloc((size_t)SM_CHUNKS * np * sizeof(double));
    hearth_err e = ev.g_part ? rtr_lbfgs(np, w, sm_fg, &ev, max_iter, NULL)
                             : hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (%zu weights)", np);
    free(ev.g_part);
    hr_pool_free(ev.pool);
    return e;
}
