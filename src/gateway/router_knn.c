/*
 * router_knn.c - the neighbours part of a router (docs/router.md,
 * "Neighbours part"): the labeled training prompts kept as L2-normalized
 * tf-idf vectors over hashed word unigrams, and the similarity-weighted mean
 * gain of a prompt's most similar ones. The subject part knows a subject's
 * rate; the neighbours know the topic clusters inside a subject, where the
 * weak tier fails more or less often than its subject's rate says. With each
 * row's group stored (version 4), the neighbours also estimate the prompt's
 * subject: the expected rate under their similarity-weighted groups.
 *
 * Invariants: terms are the buckets with an idf, in ascending bucket order;
 * a row's terms are strictly ascending and its weights in (0, 1] as half
 * floats (rounded at fitting, so that a model scores the same before it is
 * written and after it is read); the inverted index lists each term's rows in
 * ascending row order, so similarities are summed in one fixed order.
 */
#include "kernels/kernels.h"
#include "router_impl.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void rtr_knn_fini(rtr_knn *kn) {
    free(kn->bucket);
    free(kn->idf);
    free(kn->row_start);
    free(kn->term);
    free(kn->w16);
    free(kn->gain);
    free(kn->group);
    free(kn->post_start);
    free(kn->post_row);
    free(kn->post_w);
    memset(kn, 0, sizeof *kn);
}

hearth_err rtr_knn_index(rtr_knn *kn) {
    size_t nnz = kn->row_start[kn->n_rows];
    kn->post_start = calloc((size_t)kn->n_terms + 1, sizeof *kn->post_start);
    kn->post_row = malloc((nnz ? nnz : 1) * sizeof *kn->post_row);
    kn->post_w = malloc((nnz ? nnz : 1) * sizeof *kn->post_w);
    if (!kn->post_start || !kn->post_row || !kn->post_w)
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (neighbours index)");
    /* fit_rows wrote term[0..nnz) (the analyzer loses that across the calls) */
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
    for (size_t j = 0; j < nnz; j++) kn->post_start[kn->term[j] + 1]++;
    for (uint32_t t = 0; t < kn->n_terms; t++) kn->post_start[t + 1] += kn->post_start[t];
    /* fill in row order, with post_start[t] as term t's cursor, then shift back */
    for (uint32_t r = 0; r < kn->n_rows; r++)
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): as above
        for (uint32_t j = kn->row_start[r]; j < kn->row_start[r + 1]; j++) {
            uint32_t at = kn->post_start[kn->term[j]]++;
            kn->post_row[at] = r;
            kn->post_w[at] = kern_f16_to_f32(kn->w16[j]);
        }
    for (uint32_t t = kn->n_terms; t > 0; t--) kn->post_start[t] = kn->post_start[t - 1];
    kn->post_start[0] = 0;
    return HEARTH_OK;
}

/* ------------------------------------------------------------- fitting */

/* The training rows' word features, gathered once. */
typedef struct word_rows {
    size_t n, nnz, cap;
    size_t *start; /* [n + 1] */
    uint32_t *idx;
    float *val;
} word_rows;

static void word_rows_fini(word_rows *w) {
    free(w->start);
    free(w->idx);
    free(w->val);
}

static hearth_err word_rows_build(const rtr_dataset *d, const size_t *rows, const size_t *sel,
                                  size_t n_sel, uint32_t bits, word_rows *w) {
    hearth_err e = HEARTH_OK;
    rtr_fvec f = {0};
    memset(w, 0, sizeof *w);
    w->n = n_sel;
    if (!(w->start = malloc((n_sel + 1) * sizeof *w->start)))
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (neighbours)");
    for (size_t i = 0; i < n_sel && !e; i++) {
        const rtr_example *ex = &d->ex[rows[sel[i]]];
        if ((e = rtr_featurize_words(bits, ex->prompt, ex->prompt_len, &f))) break;
        if (w->nnz + f.n > w->cap) {
            size_t nc = w->cap ? w->cap : 1 << 16;
            while (nc < w->nnz + f.n) nc *= 2;
            uint32_t *ni = realloc(w->idx, nc * sizeof *ni);
            if (ni) w->idx = ni;
            float *nv = ni ? realloc(w->val, nc * sizeof *nv) : NULL;
            if (nv) w->val = nv;
            if (!ni || !nv) {
                e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (neighbours)");
                break;
            }
            w->cap = nc;
        }
        w->start[i] = w->nnz;
        if (f.n) {
            memcpy(w->idx + w->nnz, f.idx, f.n * sizeof *f.idx);
            memcpy(w->val + w->nnz, f.val, f.n * sizeof *f.val);
        }
        w->nnz += f.n;
    }
    if (!e) w->start[n_sel] = w->nnz;
    rtr_fvec_fini(&f);
    return e;
}

/* The idf of every bucket in at least two rows and not in all of them, from
 * the sorted list of every row's buckets (no table of 2^bits counters). */
static hearth_err fit_terms(const word_rows *w, rtr_knn *kn) {
    uint32_t *all = malloc((w->nnz ? w->nnz : 1) * sizeof *all);
    if (!all) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (neighbours)");
    if (w->nnz) { /* w->idx is NULL without words */
        memcpy(all, w->idx, w->nnz * sizeof *all);
        qsort(all, w->nnz, sizeof *all, rtr_cmp_u32);
    }
    kn->bucket = malloc((w->nnz ? w->nnz : 1) * sizeof *kn->bucket);
    kn->idf = malloc((w->nnz ? w->nnz : 1) * sizeof *kn->idf);
    if (!kn->bucket || !kn->idf) {
        free(all);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (neighbours)");
    }
    for (size_t i = 0, j; i < w->nnz; i = j) {
        for (j = i + 1; j < w->nnz && all[j] == all[i];) j++;
        size_t df = j - i; /* a row's buckets are unique */
        if (df < 2 || df >= w->n) continue;
        kn->bucket[kn->n_terms] = all[i];
        kn->idf[kn->n_terms++] = (float)log((double)w->n / (double)df);
    }
    free(all);
    return HEARTH_OK;
}

/* The term of a bucket (UINT32_MAX: none). */
static uint32_t term_of(const rtr_knn *kn, uint32_t bucket) {
    size_t a = rtr_lower_bound(kn->bucket, 0, kn->n_terms, bucket);
    return a < kn->n_terms && kn->bucket[a] == bucket ? (uint32_t)a : UINT32_MAX;
}

/* Every row's tf-idf weights, normalized and rounded to half floats (a weight
 * that rounds to 0 is left out, and so is a row with no term left). */
static hearth_err fit_rows(const rtr_dataset *d, const size_t *rows, const size_t *sel,
                           const word_rows *w, rtr_knn *kn) {
    if (w->nnz >= UINT32_MAX || w->n >= UINT32_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: too many words for the neighbours part");
    kn->row_start = malloc((w->n + 1) * sizeof *kn->row_start);
    kn->term = malloc((w->nnz ? w->nnz : 1) * sizeof *kn->term);
    kn->w16 = malloc((w->nnz ? w->nnz : 1) * sizeof *kn->w16);
    kn->gain = malloc(w->n ? w->n : 1);
    kn->group = malloc(w->n ? w->n : 1);
    float *v = malloc((w->nnz ? w->nnz : 1) * sizeof *v);
    if (!kn->row_start || !kn->term || !kn->w16 || !kn->gain || !kn->group || !v) {
        free(v);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (neighbours)");
    }
    uint32_t nnz = 0;
    kn->row_start[0] = 0;
    for (size_t i = 0; i < w->n; i++) {
        double ss = 0;
        uint32_t first = nnz;
        for (size_t j = w->start[i]; j < w->start[i + 1]; j++) { /* start[n] = nnz */
            // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): idx is NULL only with no words
            uint32_t t = term_of(kn, w->idx[j]); /* buckets ascend in a row, and so do terms */
            if (t == UINT32_MAX) continue;
            v[nnz] = (float)((double)w->val[j] * kn->idf[t]);
            ss += (double)v[nnz] * v[nnz];
            kn->term[nnz++] = t;
        }
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
        uint32_t end = nnz;
        nnz = first;
        for (uint32_t j = first; j < end; j++) {
            uint16_t h = kern_f32_to_f16((float)(v[j] * inv));
            if (!(kern_f16_to_f32(h) > 0)) continue;
            kn->term[nnz] = kn->term[j];
            kn->w16[nnz++] = h;
        }
        if (nnz == first) continue;
        const rtr_example *ex = &d->ex[rows[sel[i]]];
        kn->gain[kn->n_rows] = (int8_t)((int)ex->strong_ok - (int)ex->weak_ok);
        kn->group[kn->n_rows] = (uint8_t)ex->group; /* < n_groups <= RTR_MAX_SUBJECTS */
        kn->row_start[++kn->n_rows] = nnz;
    }
    free(v);
    return HEARTH_OK;
}

hearth_err rtr_knn_fit(const rtr_dataset *d, const size_t *rows, const size_t *sel, size_t n_sel,
                       uint32_t k, double weight, double group_weight, uint32_t bits, rtr_knn *kn) {
    word_rows w;
    memset(kn, 0, sizeof *kn);
    if (d->n_groups > RTR_MAX_SUBJECTS)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: %zu groups for the neighbours part (%d)",
                       d->n_groups, RTR_MAX_SUBJECTS);
    hearth_err e = word_rows_build(d, rows, sel, n_sel, bits, &w);
    if (!e) e = fit_terms(&w, kn);
    if (!e) e = fit_rows(d, rows, sel, &w, kn);
    if (!e) e = rtr_knn_index(kn);
    if (!e) {
        kn->k = k;
        kn->weight = (float)weight;
        kn->group_weight = (float)group_weight;
        kn->bits = bits;
    } else
        rtr_knn_fini(kn);
    word_rows_fini(&w);
    return e;
}

/* ------------------------------------------------------------- scoring */

typedef struct cand {
    float sim;
    uint32_t row;
} cand;

/* The ranking of neighbours: higher similarity first, then the earlier row. */
static bool ranks_before(cand a, cand b) {
    return a.sim > b.sim || (a.sim == b.sim && a.row < b.row);
}

/* A min-heap of the k best so far under ranks_before: h[0] is the worst. */
static void heap_down(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && ranks_before(h[w], h[l])) w = l;
        if (r < n && ranks_before(h[w], h[r])) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* The k-th best candidate among the rows with a positive similarity. */
static cand kth_best(const float *sim, uint32_t n_rows, uint32_t k, cand *h) {
    size_t n = 0;
    for (uint32_t r = 0; r < n_rows; r++) {
        if (!(sim[r] > 0)) continue;
        cand c = {sim[r], r};
        if (n < k) {
            h[n++] = c;
            if (n == k)
                for (size_t i = k / 2; i-- > 0;) heap_down(h, k, i);
        } else if (ranks_before(c, h[0])) {
            h[0] = c;
            heap_down(h, k, 0);
        }
    }
    assert(n == k); /* the caller has more than k rows of positive similarity */
    return h[0];
}

/* The query's normalized tf-idf weights over the part's terms, into qt/qw;
 * returns how many. */
static size_t query_terms(const rtr_knn *kn, const rtr_fvec *fw, uint32_t *qt, float *qw) {
    size_t n = 0;
    double ss = 0;
    for (size_t i = 0; i < fw->n; i++) {
        uint32_t t = term_of(kn, fw->idx[i]);
        if (t == UINT32_MAX) continue;
        double v = (double)fw->val[i] * kn->idf[t];
        qt[n] = t;
        qw[n++] = (float)v;
        ss += v * v;
    }
    for (size_t i = 0; i < n; i++) qw[i] = (float)(qw[i] / sqrt(ss));
    return n;
}

/* One k's estimates from the similarities: the rows that rank no lower than
 * the k-th, summed in row order whatever the selection did. */
static rtr_knn_est estimate(const rtr_knn *kn, const rtr_subject *s, const float *sim,
                            uint32_t n_pos, uint32_t k, cand *h) {
    bool all = n_pos <= k, groups = s && s->n && kn->group;
    cand th = all ? (cand){0, 0} : kth_best(sim, kn->n_rows, k, h);
    double num = 0, den = 0, rate = 0, hw = 0;
    for (uint32_t r = 0; r < kn->n_rows; r++) {
        cand c = {sim[r], r};
        if (!(c.sim > 0) || (!all && ranks_before(th, c))) continue;
        num += (double)c.sim * kn->gain[r];
        den += c.sim;
        if (groups) {
            rate += (double)c.sim * s->rate[kn->group[r]];
            hw += (double)c.sim * s->head_w[kn->group[r]];
        }
    }
    return (rtr_knn_est){num / den, groups ? rate / den : NAN, groups ? hw / den : NAN};
}

hearth_err rtr_knn_query(const rtr_knn *kn, const rtr_subject *s, const rtr_fvec *fw,
                         const uint32_t *ks, size_t n_k, rtr_knn_est *est) {
    for (size_t j = 0; j < n_k; j++) est[j] = (rtr_knn_est){NAN, NAN, NAN};
    if (!kn->n_rows || !fw->n) return HEARTH_OK;
    uint32_t k_max = 1;
    for (size_t j = 0; j < n_k; j++) k_max = ks[j] > k_max ? ks[j] : k_max;
    uint32_t *qt = malloc(fw->n * sizeof *qt);
    float *qw = malloc(fw->n * sizeof *qw), *sim = calloc(kn->n_rows, sizeof *sim);
    cand *h = malloc((k_max < kn->n_rows ? k_max : kn->n_rows) * sizeof *h);
    hearth_err e = HEARTH_OK;
    if (!qt || !qw || !sim || !h) {
        e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (neighbours)");
        goto done;
    }
    size_t nq = query_terms(kn, fw, qt, qw);
    for (size_t i = 0; i < nq; i++)
        for (uint32_t j = kn->post_start[qt[i]]; j < kn->post_start[qt[i] + 1]; j++)
            sim[kn->post_row[j]] += qw[i] * kn->post_w[j];
    uint32_t n_pos = 0;
    for (uint32_t r = 0; r < kn->n_rows; r++) n_pos += sim[r] > 0;
    for (size_t j = 0; j < n_k && n_pos; j++)
        if (ks[j]) est[j] = estimate(kn, s, sim, n_pos, ks[j], h);
done:
    free(qt);
    free(qw);
    free(sim);
    free(h);
    return e;
}
