/*
 * router_train.c - fitting a router: featurize the labeled rows once, compact
 * the hashed buckets that occur into matrix columns, standardize the dense
 * numbers, fit one logistic head per label (router_lbfgs.c), and keep the
 * non-zero weights under their bucket numbers. rtr_train_tune picks the
 * hyper-parameters on a validation part of the training rows only.
 */
#include "router_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The defaults are the method chosen by 5-fold cross-validation inside the
 * RouteLLM training part (docs/router.md): the heads with l2 3e-4 and full
 * group smoothing, the subject part with weight 0.25 that replaces the heads
 * on benchmarks of several groups (head weight 0 there), and the neighbours
 * part moving its rate 0.3 of the way to the mean gain of the 100 nearest
 * training prompts (words in 2^24 buckets: with 2^18, thousands of rare
 * words shared a bucket and linked unrelated prompts). */
rtr_train_params rtr_train_default_params(void) {
    return (rtr_train_params){
        .target = RTR_TARGET_GAIN,
        .l2 = 3e-4,
        .max_iter = 300,
        .hash_bits = 16,
        .word_ngrams = 2,
        .char_min = 3,
        .char_max = 5,
        .dense = true,
        .group_smooth = 1,
        .subject_weight = 0.25,
        .subject_bits = 13,
        .subject_chars = 0,
        .subject_l2 = 2e-5,
        .subject_head_weight = 0,
        .subject_iter = 300,
        .knn_k = 100,
        .knn_weight = 0.3,
        .knn_bits = 24,
    };
}

static rtr_feat_cfg cfg_of(const rtr_train_params *p) {
    return (rtr_feat_cfg){p->hash_bits, p->word_ngrams, p->char_min, p->char_max, p->dense};
}

/* The subject classifier's features: word 1-2-grams (and char n-grams when
 * asked) in their own, smaller hashed space; no dense block. */
static rtr_feat_cfg subject_cfg_of(const rtr_train_params *p) {
    return (rtr_feat_cfg){p->subject_bits, 2, p->subject_chars ? 3 : 0, p->subject_chars, 0};
}

/* The featurized rows of a dataset under one feature configuration. */
typedef struct design {
    size_t n;
    size_t *start; /* [n + 1] into idx/val */
    uint32_t *idx;
    float *val;
    float *dense; /* [n][RTR_N_DENSE] */
} design;

static void design_fini(design *x) {
    free(x->start);
    free(x->idx);
    free(x->val);
    free(x->dense);
    memset(x, 0, sizeof *x);
}

static hearth_err design_build(const rtr_dataset *d, const size_t *rows, size_t n,
                               const rtr_feat_cfg *cfg, design *x) {
    hearth_err e = HEARTH_OK;
    rtr_fvec f = {0};
    size_t cap = 0, nnz = 0;
    memset(x, 0, sizeof *x);
    x->n = n;
    x->start = malloc((n + 1) * sizeof *x->start);
    x->dense = malloc((n ? n : 1) * RTR_N_DENSE * sizeof *x->dense);
    if (!x->start || !x->dense) e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    for (size_t i = 0; i < n && !e; i++) {
        const rtr_example *ex = &d->ex[rows ? rows[i] : i];
        if ((e = rtr_featurize(cfg, ex->prompt, ex->prompt_len, &f))) break;
        if (nnz + f.n > cap) {
            size_t nc = cap ? cap : 1 << 16;
            while (nc < nnz + f.n) nc *= 2;
            uint32_t *ni = realloc(x->idx, nc * sizeof *ni);
            if (ni) x->idx = ni;
            float *nv = ni ? realloc(x->val, nc * sizeof *nv) : NULL;
            if (nv) x->val = nv;
            if (!ni || !nv) {
                e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (%zu features)", nc);
                break;
            }
            cap = nc;
        }
        x->start[i] = nnz;
        if (f.n) { /* an empty prompt may have no features at all */
            memcpy(x->idx + nnz, f.idx, f.n * sizeof *f.idx);
            memcpy(x->val + nnz, f.val, f.n * sizeof *f.val);
        }
        memcpy(x->dense + i * RTR_N_DENSE, f.dense, sizeof f.dense);
        nnz += f.n;
    }
    if (!e) x->start[n] = nnz;
    rtr_fvec_fini(&f);
    if (e) design_fini(x);
    return e;
}

/* A view of row i of a design as a feature vector (no copy). */
static rtr_fvec design_row(const design *x, size_t i) {
    rtr_fvec f = {0};
    f.idx = x->idx + x->start[i];
    f.val = x->val + x->start[i];
    f.n = x->start[i + 1] - x->start[i];
    memcpy(f.dense, x->dense + i * RTR_N_DENSE, sizeof f.dense);
    return f;
}

int rtr_cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The matrix over the chosen design rows (sel[0..n_sel)): used buckets become
 * columns 0..n_b-1, then the standardized dense numbers, then the bias. */
typedef struct fit_matrix {
    rtr_csr x;
    uint32_t *buckets; /* [n_b] */
    size_t n_b;
    float mean[RTR_N_DENSE], inv_std[RTR_N_DENSE];
} fit_matrix;

static void fit_matrix_fini(fit_matrix *m) {
    rtr_csr_fini(&m->x);
    free(m->buckets);
    memset(m, 0, sizeof *m);
}

static void dense_stats(const design *x, const size_t *sel, size_t n_sel, float *mean,
                        float *inv_std) {
    for (int k = 0; k < RTR_N_DENSE; k++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n_sel; i++) s += x->dense[sel[i] * RTR_N_DENSE + k];
        double mu = n_sel ? s / (double)n_sel : 0;
        for (size_t i = 0; i < n_sel; i++) {
            double dv = x->dense[sel[i] * RTR_N_DENSE + k] - mu;
            ss += dv * dv;
        }
        double sd = n_sel ? sqrt(ss / (double)n_sel) : 0;
        mean[k] = (float)mu;
        inv_std[k] = sd > 1e-6 ? (float)(1.0 / sd) : 0.0f; /* a constant carries nothing */
    }
}

static hearth_err fit_matrix_build(const design *x, const size_t *sel, size_t n_sel, bool dense,
                                   fit_matrix *m) {
    memset(m, 0, sizeof *m);
    size_t nnz = 0;
    for (size_t i = 0; i < n_sel; i++) nnz += x->start[sel[i] + 1] - x->start[sel[i]];
    size_t extra = (dense ? RTR_N_DENSE : 0) + 1;
    m->buckets = malloc((nnz ? nnz : 1) * sizeof *m->buckets);
    m->x.row_start = malloc((n_sel + 1) * sizeof *m->x.row_start);
    m->x.col = malloc((nnz + n_sel * extra + 1) * sizeof *m->x.col);
    m->x.val = malloc((nnz + n_sel * extra + 1) * sizeof *m->x.val);
    if (!m->buckets || !m->x.row_start || !m->x.col || !m->x.val) {
        fit_matrix_fini(m);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (%zu non-zeros)", nnz);
    }
    size_t k = 0;
    for (size_t i = 0; i < n_sel; i++)
        for (size_t j = x->start[sel[i]]; j < x->start[sel[i] + 1]; j++)
            m->buckets[k++] = x->idx[j];
    qsort(m->buckets, nnz, sizeof *m->buckets, rtr_cmp_u32);
    size_t nb = 0;
    for (size_t i = 0; i < nnz; i++)
        if (!nb || m->buckets[nb - 1] != m->buckets[i]) m->buckets[nb++] = m->buckets[i];
    m->n_b = nb;
    dense_stats(x, sel, n_sel, m->mean, m->inv_std);
    m->x.n_rows = n_sel;
    m->x.n_cols = nb + extra;
    k = 0;
    for (size_t i = 0; i < n_sel; i++) {
        m->x.row_start[i] = k;
        for (size_t j = x->start[sel[i]]; j < x->start[sel[i] + 1]; j++) {
            m->x.col[k] = (uint32_t)rtr_lower_bound(m->buckets, 0, nb, x->idx[j]);
            m->x.val[k++] = x->val[j];
        }
        if (dense)
            for (int q = 0; q < RTR_N_DENSE; q++) {
                m->x.col[k] = (uint32_t)(nb + (size_t)q);
                m->x.val[k++] = (x->dense[sel[i] * RTR_N_DENSE + q] - m->mean[q]) * m->inv_std[q];
            }
        m->x.col[k] = (uint32_t)(m->x.n_cols - 1);
        m->x.val[k++] = 1.0f;
    }
    m->x.row_start[n_sel] = k;
    return HEARTH_OK;
}

/* Label of head h for an example: 0 "only strong right", 1 "only weak right". */
static double head_label(const rtr_example *ex, uint32_t h) {
    return h == 0 ? (ex->strong_ok && !ex->weak_ok) : (ex->weak_ok && !ex->strong_ok);
}

/* src[g] for each of d's groups: the first group with g's benchmark name,
 * which stands for the benchmark. */
static void group_benchmarks(const rtr_dataset *d, uint32_t *src) {
    for (size_t g = 0; g < d->n_groups; g++) {
        char a[128], b[128];
        rtr_group_source(d->groups[g], a, sizeof a);
        src[g] = (uint32_t)g;
        for (size_t k = 0; k < g; k++) {
            rtr_group_source(d->groups[k], b, sizeof b);
            if (!strcmp(a, b)) {
                src[g] = src[k];
                break;
            }
        }
    }
}

/* The training labels of head h: each example's own label blended by
 * `smooth` toward its group's mean label (shrunk toward its benchmark's mean
 * by GROUP_PRIOR pseudo-examples). The blend teaches the text model the
 * group-level rate, which one noisy outcome per prompt states badly. A group
 * that is its benchmark's only one (GSM8K) says nothing beyond the benchmark,
 * so its labels are left as they are. */
enum { GROUP_PRIOR = 20 };

static hearth_err soft_labels(const rtr_dataset *d, const size_t *rows, const size_t *sel,
                              size_t n_sel, uint32_t h, double smooth, float *y) {
    size_t ng = d->n_groups;
    double *sum = calloc(3 * ng + 1, sizeof *sum);
    uint32_t *src = calloc(2 * ng + 1, sizeof *src);
    double *scnt = calloc(ng + 1, sizeof *scnt);
    if (!sum || !src || !scnt) {
        free(sum), free(src), free(scnt);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    }
    double *cnt = sum + ng, *ssum = sum + 2 * ng;
    uint32_t *n_in_src = src + ng;
    group_benchmarks(d, src);
    for (size_t i = 0; i < n_sel; i++) {
        const rtr_example *ex = &d->ex[rows[sel[i]]];
        double v = head_label(ex, h);
        if (cnt[ex->group] == 0) n_in_src[src[ex->group]]++;
        sum[ex->group] += v;
        cnt[ex->group] += 1;
        ssum[src[ex->group]] += v;
        scnt[src[ex->group]] += 1;
    }
    for (size_t i = 0; i < n_sel; i++) {
        const rtr_example *ex = &d->ex[rows[sel[i]]];
        uint32_t g = ex->group, b = src[g];
        double v = head_label(ex, h);
        if (n_in_src[b] >= 2) {
            double mean_b = ssum[b] / scnt[b];
            v = (1 - smooth) * v +
                smooth * (sum[g] + GROUP_PRIOR * mean_b) / (cnt[g] + GROUP_PRIOR);
        }
        y[i] = (float)v;
    }
    free(sum), free(src), free(scnt);
    return HEARTH_OK;
}

/* Each group's expected gain (share only-strong-right minus share
 * only-weak-right) on the selected rows, shrunk toward its benchmark's by
 * GROUP_PRIOR pseudo-examples (a group with no rows gets its benchmark's), and
 * its head weight: 1 for a group alone in its benchmark (GSM8K: the subject
 * says nothing there, the heads are all), else multi_head_w. */
static hearth_err group_rates(const rtr_dataset *d, const size_t *rows, const size_t *sel,
                              size_t n_sel, double multi_head_w, float *rate, float *head_w) {
    size_t ng = d->n_groups;
    double *sum = calloc(5 * ng + 1, sizeof *sum);
    uint32_t *src = malloc((ng + 1) * sizeof *src);
    if (!sum || !src) {
        free(sum), free(src);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    }
    double *cnt = sum + ng, *bsum = sum + 2 * ng, *bcnt = sum + 3 * ng, *bgroups = sum + 4 * ng;
    group_benchmarks(d, src);
    for (size_t i = 0; i < n_sel; i++) {
        const rtr_example *ex = &d->ex[rows[sel[i]]];
        double v = head_label(ex, 0) - head_label(ex, 1);
        if (cnt[ex->group] == 0) bgroups[src[ex->group]] += 1;
        sum[ex->group] += v;
        cnt[ex->group] += 1;
        bsum[src[ex->group]] += v;
        bcnt[src[ex->group]] += 1;
    }
    for (size_t g = 0; g < ng; g++) {
        uint32_t b = src[g];
        double mean_b = bcnt[b] > 0 ? bsum[b] / bcnt[b] : 0;
        rate[g] = (float)((sum[g] + GROUP_PRIOR * mean_b) / (cnt[g] + GROUP_PRIOR));
        head_w[g] = (float)(bgroups[b] >= 2 ? multi_head_w : 1.0);
    }
    free(sum), free(src);
    return HEARTH_OK;
}

/* The subject part: a softmax classifier of the rows' groups on the subject
 * features xs, and the groups' rates. Left empty (no part) when the selected
 * rows hold fewer than two groups or more than RTR_MAX_SUBJECTS. */
static hearth_err fit_subject(const rtr_dataset *d, const size_t *rows, const design *xs,
                              const size_t *sel, size_t n_sel, const rtr_train_params *p,
                              rtr_subject *sj) {
    size_t ng = d->n_groups, n_present = 0;
    if (ng < 2 || ng > RTR_MAX_SUBJECTS) return HEARTH_OK;
    bool *seen = calloc(ng, 1);
    if (!seen) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    for (size_t i = 0; i < n_sel; i++) {
        uint32_t g = d->ex[rows[sel[i]]].group;
        n_present += !seen[g];
        seen[g] = true;
    }
    free(seen);
    if (n_present < 2) return HEARTH_OK;
    fit_matrix fm;
    hearth_err e = fit_matrix_build(xs, sel, n_sel, false, &fm);
    if (e) return e;
    uint32_t nc = (uint32_t)ng;
    size_t buckets = (size_t)1 << p->subject_bits;
    uint32_t *y = malloc((n_sel ? n_sel : 1) * sizeof *y);
    double *w = calloc(fm.x.n_cols * nc, sizeof *w);
    sj->rate = malloc(nc * sizeof *sj->rate);
    sj->bias = malloc(nc * sizeof *sj->bias);
    sj->head_w = malloc(nc * sizeof *sj->head_w);
    sj->w = calloc(buckets * nc, sizeof *sj->w);
    sj->n = nc;
    if (!y || !w || !sj->rate || !sj->bias || !sj->head_w || !sj->w) {
        e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (subject part)");
        goto done;
    }
    for (size_t i = 0; i < n_sel; i++) y[i] = d->ex[rows[sel[i]]].group;
    if ((e = rtr_softmax_fit(&fm.x, y, nc, p->subject_l2, fm.n_b, p->subject_iter,
                             p->n_threads > 0 ? p->n_threads : hr_cpu_cores(), w)))
        goto done;
    for (size_t j = 0; j < fm.n_b; j++)
        for (uint32_t k = 0; k < nc; k++)
            sj->w[(size_t)fm.buckets[j] * nc + k] = (float)w[j * nc + k];
    for (uint32_t k = 0; k < nc; k++) sj->bias[k] = (float)w[(fm.x.n_cols - 1) * nc + k];
    if ((e = group_rates(d, rows, sel, n_sel, p->subject_head_weight, sj->rate, sj->head_w)))
        goto done;
    sj->cfg = subject_cfg_of(p);
    sj->coef = (float)p->subject_weight;
done:
    free(y);
    free(w);
    fit_matrix_fini(&fm);
    if (e) rtr_subject_fini(sj);
    return e;
}

static hearth_err fit_model(const rtr_dataset *d, const size_t *rows, const design *x,
                            const design *xs, const size_t *sel, size_t n_sel,
                            const rtr_train_params *p, rtr_model **out) {
    fit_matrix fm;
    hearth_err e = fit_matrix_build(x, sel, n_sel, p->dense, &fm);
    if (e) return e;
    rtr_model *m = calloc(1, sizeof *m);
    float *y = malloc((n_sel ? n_sel : 1) * sizeof *y);
    double *w = calloc(fm.x.n_cols, sizeof *w);
    if (!m || !y || !w) {
        e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
        goto done;
    }
    m->cfg = cfg_of(p);
    m->target = p->target;
    m->threshold = INFINITY;
    m->local_share = NAN;
    if (p->dense) {
        memcpy(m->dense_mean, fm.mean, sizeof fm.mean);
        memcpy(m->dense_inv_std, fm.inv_std, sizeof fm.inv_std);
    }
    /* the heads: (label, smoothing, l2, coefficient) */
    uint32_t n_lab = p->target == RTR_TARGET_GAIN ? 2 : 1;
    bool item = p->group_smooth > 0 && p->item_weight > 0;
    double l2_item = p->l2_item > 0 ? p->l2_item : p->l2;
    m->n_heads = n_lab * (item ? 2 : 1);
    for (uint32_t h = 0; h < m->n_heads; h++) {
        bool second = h >= n_lab;
        m->heads[h].label = h % n_lab;
        m->heads[h].smooth = second ? 0.0f : (float)p->group_smooth;
        m->heads[h].coef = (float)((second ? p->item_weight : 1.0) * (h % n_lab ? -1 : 1));
    }
    for (uint32_t h = 0; h < m->n_heads && !e; h++) {
        double l2 = h >= n_lab ? l2_item : p->l2;
        if ((e = soft_labels(d, rows, sel, n_sel, m->heads[h].label, m->heads[h].smooth, y))) break;
        memset(w, 0, fm.x.n_cols * sizeof *w);
        rtr_lr_problem lp = {&fm.x,
                             y,
                             NULL,
                             l2,
                             fm.x.n_cols - 1,
                             p->max_iter,
                             p->n_threads > 0 ? p->n_threads : hr_cpu_cores()};
        if ((e = rtr_lr_fit(&lp, w, NULL))) break;
        rtr_head *hd = &m->heads[h];
        size_t nz = 0;
        for (size_t j = 0; j < fm.n_b; j++) nz += w[j] != 0;
        hd->idx = malloc((nz ? nz : 1) * sizeof *hd->idx);
        hd->w = malloc((nz ? nz : 1) * sizeof *hd->w);
        if (!hd->idx || !hd->w) {
            e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
            break;
        }
        for (size_t j = 0; j < fm.n_b; j++)
            if (w[j] != 0) {
                hd->idx[hd->n_sparse] = fm.buckets[j];
                hd->w[hd->n_sparse++] = (float)w[j];
            }
        if (p->dense)
            for (int q = 0; q < RTR_N_DENSE; q++) hd->dense_w[q] = (float)w[fm.n_b + (size_t)q];
        hd->bias = (float)w[fm.x.n_cols - 1];
    }
    if (!e && p->subject_weight > 0 && xs) e = fit_subject(d, rows, xs, sel, n_sel, p, &m->subj);
    if (!e && m->subj.n && p->knn_k)
        e = rtr_knn_fit(d, rows, sel, n_sel, p->knn_k, p->knn_weight, p->knn_subject_weight,
                        p->knn_bits, &m->knn);
done:
    free(y);
    free(w);
    fit_matrix_fini(&fm);
    if (e)
        rtr_free(m);
    else
        *out = m;
    return e;
}

static hearth_err check_params(const rtr_train_params *p) {
    rtr_feat_cfg c = cfg_of(p);
    hearth_err e = rtr_feat_cfg_check(&c);
    if (e) return e;
    if (!(p->l2 >= 0 && p->l2 < 1e3))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: l2 %g outside [0, 1000)", p->l2);
    if (p->max_iter < 1 || p->max_iter > 100000)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: max_iter %d outside 1..100000",
                       p->max_iter);
    if (!(p->item_weight >= 0 && p->item_weight < 1e3) || !(p->l2_item >= 0 && p->l2_item < 1e3))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: item weight %g or l2_item %g out of range",
                       p->item_weight, p->l2_item);
    if (!(p->group_smooth >= 0 && p->group_smooth <= 1))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: group_smooth %g outside [0, 1]",
                       p->group_smooth);
    if (!(p->subject_weight >= 0 && p->subject_weight <= 1e3) ||
        (p->subject_weight > 0 &&
         (p->subject_bits < RTR_SUBJ_MIN_BITS || p->subject_bits > RTR_SUBJ_MAX_BITS ||
          (p->subject_chars && (p->subject_chars < 3 || p->subject_chars > 6)) ||
          !(p->subject_l2 >= 0 && p->subject_l2 < 1e3) ||
          !(p->subject_head_weight >= 0 && p->subject_head_weight <= 1e3) || p->subject_iter < 1 ||
          p->subject_iter > 100000)))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "router: subject part (weight %g, bits %u, chars %u, l2 %g, iters %d) out "
                       "of range",
                       p->subject_weight, p->subject_bits, p->subject_chars, p->subject_l2,
                       p->subject_iter);
    if (p->knn_k > RTR_KNN_MAX_K || !(p->knn_weight >= 0 && p->knn_weight <= 1) ||
        !(p->knn_subject_weight >= 0 && p->knn_subject_weight <= 1) ||
        (p->knn_k && (p->knn_bits < RTR_KNN_MIN_BITS || p->knn_bits > RTR_KNN_MAX_BITS)))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "router: neighbours part (k %u of at most %d, weight %g and subject "
                       "weight %g in [0, 1], bits %u in %d..%d) out of range",
                       p->knn_k, RTR_KNN_MAX_K, p->knn_weight, p->knn_subject_weight, p->knn_bits,
                       RTR_KNN_MIN_BITS, RTR_KNN_MAX_BITS);
    if (p->target != RTR_TARGET_GAIN && p->target != RTR_TARGET_NEEDS_STRONG)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: unknown target %d", (int)p->target);
    return HEARTH_OK;
}

/* rows[] of the caller, or 0..n-1, as an owned index array. */
static size_t *row_list(const rtr_dataset *d, const size_t *rows, size_t *n_rows) {
    if (!rows) *n_rows = d->n;
    size_t *r = malloc((*n_rows ? *n_rows : 1) * sizeof *r);
    if (r)
        for (size_t i = 0; i < *n_rows; i++) r[i] = rows ? rows[i] : i;
    return r;
}

hearth_err rtr_train(const rtr_dataset *d, const size_t *rows, size_t n_rows,
                     const rtr_train_params *p, rtr_model **out) {
    hearth_err e = check_params(p);
    if (e) return e;
    size_t *r = row_list(d, rows, &n_rows), *sel = malloc((n_rows ? n_rows : 1) * sizeof *sel);
    design x = {0}, xs = {0};
    rtr_feat_cfg cfg = cfg_of(p), scfg = subject_cfg_of(p);
    bool subj = p->subject_weight > 0;
    if (!r || !sel) e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    size_t n_lab = 0;
    for (size_t i = 0; !e && i < n_rows; i++)
        if (d->ex[r[i]].labeled) sel[n_lab++] = i;
    if (!e && n_lab == 0)
        e = hr_fail(HEARTH_ERR_INVALID_ARG, "router: no labeled rows to train on");
    if (!e) e = design_build(d, r, n_rows, &cfg, &x);
    if (!e && subj) e = design_build(d, r, n_rows, &scfg, &xs);
    if (!e) e = fit_model(d, r, &x, subj ? &xs : NULL, sel, n_lab, p, out);
    design_fini(&x);
    design_fini(&xs);
    free(r);
    free(sel);
    return e;
}

/* ------------------------------------------------------------------ tuning */

void rtr_group_source(const char *group, char *out, size_t cap) {
    size_t n = strcspn(group, "_");
    if (n >= cap) n = cap - 1;
    memcpy(out, group, n);
    out[n] = '\0';
}

/* Mean APGR over the benchmarks present in the validation rows. */
static double val_score(const rtr_dataset *d, const size_t *rows, const size_t *val, size_t n_val,
                        const double *scores) {
    double *s = malloc((n_val ? n_val : 1) * sizeof *s);
    bool *wk = malloc(n_val ? n_val : 1), *st = malloc(n_val ? n_val : 1);
    bool *done = calloc(n_val ? n_val : 1, 1);
    double sum = 0;
    int n_src = 0;
    for (size_t i = 0; s && wk && st && done && i < n_val; i++) {
        if (done[i]) continue;
        char src[128], other[128];
        rtr_group_source(d->groups[d->ex[rows[val[i]]].group], src, sizeof src);
        size_t m = 0;
        for (size_t j = i; j < n_val; j++) {
            const rtr_example *ex = &d->ex[rows[val[j]]];
            rtr_group_source(d->groups[ex->group], other, sizeof other);
            if (done[j] || strcmp(src, other)) continue;
            done[j] = true;
            s[m] = scores[j];
            wk[m] = ex->weak_ok;
            st[m++] = ex->strong_ok;
        }
        rtr_metrics mt;
        if (m >= 20 && !rtr_metrics_compute(s, wk, st, m, &mt)) {
            sum += mt.apgr;
            n_src++;
        }
    }
    free(s);
    free(wk);
    free(st);
    free(done);
    return n_src ? sum / n_src : NAN;
}

static bool same_features(const rtr_train_params *a, const rtr_train_params *b) {
    return a->hash_bits == b->hash_bits && a->word_ngrams == b->word_ngrams &&
           a->char_min == b->char_min && a->char_max == b->char_max && a->dense == b->dense &&
           (a->subject_weight > 0) == (b->subject_weight > 0) &&
           a->subject_bits == b->subject_bits && a->subject_chars == b->subject_chars;
}

hearth_err rtr_train_tune(const rtr_dataset *d, const size_t *rows, size_t n_rows,
                          const rtr_train_params *grid, size_t n_grid, unsigned n_folds,
                          rtr_tune_log log, void *user, rtr_train_params *best, rtr_model **out) {
    hearth_err e = HEARTH_OK;
    if (!n_grid || n_folds < 2 || n_folds > 20)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: tuning needs candidates and 2..20 folds");
    for (size_t g = 0; g < n_grid; g++)
        if ((e = check_params(&grid[g]))) return e;
    size_t *r = row_list(d, rows, &n_rows), n_lab = 0, best_g = 0;
    size_t *lab = malloc((n_rows ? n_rows : 1) * sizeof *lab);
    size_t *fit = malloc((n_rows ? n_rows : 1) * sizeof *fit);
    size_t *val = malloc((n_rows ? n_rows : 1) * sizeof *val);
    unsigned *fold = malloc((n_rows ? n_rows : 1) * sizeof *fold);
    double *sc = malloc((n_rows ? n_rows : 1) * sizeof *sc), best_score = -INFINITY;
    design x = {0}, xs = {0};
    if (!r || !lab || !fit || !val || !fold || !sc)
        e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    for (size_t i = 0; !e && i < n_rows; i++) {
        const rtr_example *ex = &d->ex[r[i]];
        if (!ex->labeled) continue;
        fold[n_lab] =
            rtr_split_bucket("hearth-router-tune", ex->prompt, ex->prompt_len) * n_folds / 100;
        lab[n_lab++] = i;
    }
    if (!e && n_lab < 2 * n_folds)
        e = hr_fail(HEARTH_ERR_INVALID_ARG, "router: %zu labeled rows are too few to tune", n_lab);
    for (size_t g = 0; g < n_grid && !e; g++) {
        if (g == 0 || !same_features(&grid[g], &grid[g - 1])) {
            design_fini(&x);
            design_fini(&xs);
            rtr_feat_cfg cfg = cfg_of(&grid[g]), scfg = subject_cfg_of(&grid[g]);
            if ((e = design_build(d, r, n_rows, &cfg, &x))) break;
            if (grid[g].subject_weight > 0 && (e = design_build(d, r, n_rows, &scfg, &xs))) break;
        }
        const design *xsp = grid[g].subject_weight > 0 ? &xs : NULL;
        /* out-of-fold scores for every labeled row, in lab[] order */
        for (unsigned k = 0; k < n_folds && !e; k++) {
            size_t n_fit = 0, n_val = 0;
            for (size_t i = 0; i < n_lab; i++) {
                if (fold[i] == k)
                    val[n_val++] = i;
                else
                    fit[n_fit++] = lab[i];
            }
            if (!n_fit || !n_val) continue;
            rtr_model *m = NULL;
            if ((e = fit_model(d, r, &x, xsp, fit, n_fit, &grid[g], &m))) break;
            for (size_t i = 0; i < n_val && !e; i++) {
                const rtr_example *ex = &d->ex[r[lab[val[i]]]];
                rtr_fvec f = design_row(&x, lab[val[i]]), fs = {0};
                rtr_knn_est kn;
                if (xsp) fs = design_row(xsp, lab[val[i]]);
                if (!(e = rtr_model_kn(m, ex->prompt, ex->prompt_len, &kn)))
                    sc[val[i]] = rtr_model_score_fvec(m, &f, xsp ? &fs : NULL, kn);
            }
            rtr_free(m);
        }
        if (e) break;
        double v = val_score(d, r, lab, n_lab, sc);
        if (log) log(user, &grid[g], v);
        if (v > best_score) {
            best_score = v;
            best_g = g;
        }
    }
    design_fini(&x);
    design_fini(&xs);
    if (!e) e = rtr_train(d, r, n_rows, &grid[best_g], out);
    if (!e) *best = grid[best_g];
    free(r), free(lab), free(fit), free(val), free(fold), free(sc);
    return e;
}
