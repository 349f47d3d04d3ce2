/*
 * imatrix_collect.c - accumulating an importance matrix from a session's
 * forward passes (imatrix.h), as llama-imatrix's collector does: for each
 * observed product of n >= 16 rows, every row's squared activations are
 * added to its weight's sums in row order, in float, and n to its count.
 */
#include "imatrix.h"

#include "session.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* llama-imatrix ignores products of fewer rows (token-by-token decoding). */
#define MIN_ROWS 16

struct imatrix_collector {
    imatrix im;                   /* entries sorted by name; every dataset owned */
    const model_weight **weights; /* entries[i]'s weight, its first expert's for n_mat > 1
                                     (NULL: a prior's other entry) */
    int64_t last;                 /* the entry of the last product (they come in order) */
    int n_prior_datasets;         /* im.datasets after these: the text's, from _result */
};

void imatrix_collector_free(imatrix_collector *c) {
    if (!c) return;
    for (int64_t i = 0; i < c->im.n_entries; i++) {
        free(c->im.entries[i].name);
        free(c->im.entries[i].sums);
        free(c->im.entries[i].counts);
    }
    free(c->im.entries);
    free(c->weights);
    for (int i = 0; i < c->im.n_datasets; i++) free(c->im.datasets[i]);
    free(c->im.datasets);
    free(c);
}

/* Whether a weight of this name is observed: a blk.N matrix, or
 * output.weight when asked. */
static bool observed(const char *name, size_t len, bool with_output) {
    return (len > 4 && !memcmp(name, "blk.", 4)) ||
           (with_output && len == 13 && !memcmp(name, "output.weight", 13));
}

/* The weight of entry name: its views and how many (n_expert for an expert
 * tensor, else 1), or NULL when the model has no such product. */
static const model_weight *named(hearth_model *m, gguf_str name, bool with_output, int64_t *n_mat) {
    if (!observed(name.ptr, (size_t)name.len, with_output)) return NULL;
    *n_mat = 1;
    const model_weight *w = model_weight_named(m, name);
    if (!w && (w = model_experts_named(m, name))) *n_mat = m->hp.n_expert;
    return w;
}

/* Adds an entry for each blk.N matrix the model multiplies, and for
 * output.weight when asked and not tied, that the collector lacks (the
 * prior's entries are already there). */
static hearth_err add_observed(imatrix_collector *c, hearth_model *m, bool with_output) {
    const int64_t n = gguf_n_tensors(m->gguf), n_old = c->im.n_entries;
    imatrix_entry *e = realloc(c->im.entries, (size_t)(n_old + n + 1) * sizeof *e);
    if (!e) return HEARTH_ERR_NOMEM;
    c->im.entries = e;
    for (int64_t i = 0; i < n; i++) {
        const gguf_str name = gguf_tensor_at(m->gguf, i)->name;
        int64_t n_mat;
        const model_weight *w = named(m, name, with_output, &n_mat);
        if (!w) continue;
        char *cname = malloc((size_t)name.len + 1);
        if (!cname) return HEARTH_ERR_NOMEM;
        memcpy(cname, name.ptr, (size_t)name.len);
        cname[name.len] = '\0';
        if (n_old && bsearch(&(imatrix_entry){.name = cname}, e, (size_t)n_old, sizeof *e,
                             imatrix_cmp_entry)) {
            free(cname);
            continue;
        }
        imatrix_entry *d = &e[c->im.n_entries++];
        *d = (imatrix_entry){.name = cname, .n_cols = w->n_cols, .n_mat = n_mat};
        d->sums = hr_calloc((size_t)(w->n_cols * n_mat), sizeof *d->sums);
        d->counts = hr_calloc((size_t)n_mat, sizeof *d->counts);
        if (!d->sums || !d->counts) return HEARTH_ERR_NOMEM;
    }
    qsort(e, (size_t)c->im.n_entries, sizeof *e, imatrix_cmp_entry);
    return HEARTH_OK;
}

/* Each entry's weight; a prior's entry of an observed weight must be one
 * matrix of its width. */
static hearth_err bind_weights(imatrix_collector *c, hearth_model *m, bool with_output) {
    if (!(c->weights = hr_calloc((size_t)c->im.n_entries + 1, sizeof *c->weights)))
        return HEARTH_ERR_NOMEM;
    int64_t n_bound = 0;
    for (int64_t i = 0; i < c->im.n_entries; i++) {
        const imatrix_entry *e = &c->im.entries[i];
        int64_t n_mat;
        const model_weight *w =
            named(m, (gguf_str){.ptr = e->name, .len = strlen(e->name)}, with_output, &n_mat);
        if (!w) continue;
        if (e->n_mat != n_mat || e->n_cols != w->n_cols)
            return hr_fail(HEARTH_ERR_FORMAT,
                           "the earlier matrix's %s has %lld x %lld values, the model's weight "
                           "%lld x %lld (matrices x columns)",
                           e->name, (long long)e->n_mat, (long long)e->n_cols, (long long)n_mat,
                           (long long)w->n_cols);
        c->weights[i] = w;
        n_bound++;
    }
    return n_bound ? HEARTH_OK
                   : hr_fail(HEARTH_ERR_UNSUPPORTED, "the model has no blk.N matrices to observe");
}

hearth_err imatrix_collector_new(hearth_model *m, bool with_output, uint32_t chunk_size,
                                 const imatrix *prior, imatrix_collector **out) {
    imatrix_collector *c = hr_calloc(1, sizeof *c);
    if (!c) return HEARTH_ERR_NOMEM;
    hearth_err err = prior ? imatrix_merge(&c->im, prior, chunk_size) : HEARTH_OK;
    c->im.chunk_size = chunk_size;
    c->n_prior_datasets = c->im.n_datasets;
    if (!err) err = add_observed(c, m, with_output);
    if (!err) err = bind_weights(c, m, with_output);
    if (err) {
        imatrix_collector_free(c);
        return err;
    }
    *out = c;
    return HEARTH_OK;
}

/* Which of entry i's matrices w is, or -1 (addresses compared as integers:
 * the views of one entry are one array). */
static int64_t matrix_of(const imatrix_collector *c, int64_t i, const model_weight *w) {
    const uintptr_t base = (uintptr_t)c->weights[i], at = (uintptr_t)w;
    if (!base || at < base) return -1;
    const uintptr_t k = (at - base) / sizeof *w;
    return k < (uintptr_t)c->im.entries[i].n_mat && (at - base) % sizeof *w == 0 ? (int64_t)k : -1;
}

static void observe(void *user, const model_weight *w, const float *x, int n) {
    imatrix_collector *c = user;
    const int64_t n_e = c->im.n_entries;
    int64_t i = 0, k = -1;
    while (i < n_e && (k = matrix_of(c, (c->last + i) % n_e, w)) < 0) i++;
    if (i == n_e) return; /* not a weight we keep (a tied output, an adapter's) */
    c->last = (c->last + i) % n_e;
    imatrix_entry *e = &c->im.entries[c->last];
    if (e->n_mat == 1 && n < MIN_ROWS) return;
    float *sums = e->sums + k * e->n_cols;
    for (int t = 0; t < n; t++) {
        const float *row = x + (size_t)t * (size_t)e->n_cols;
        for (int64_t j = 0; j < e->n_cols; j++) sums[j] += row[j] * row[j];
    }
    e->counts[k] += n;
}

void imatrix_collector_attach(imatrix_collector *c, hearth_session *s) {
    s->observe = observe;
    s->observe_user = c;
}

int64_t imatrix_collector_tokens(const imatrix_collector *c) {
    int64_t max = 0;
    for (int64_t i = 0; i < c->im.n_entries; i++)
        for (int64_t m = 0; m < c->im.entries[i].n_mat; m++)
            if (c->im.entries[i].counts[m] > max) max = c->im.entries[i].counts[m];
    return max;
}

hearth_err imatrix_collector_result(imatrix_collector *c, const char *dataset,
                                    const imatrix **out) {
    for (int64_t i = 0; i < c->im.n_entries; i++) {
        const imatrix_entry *e = &c->im.entries[i];
        for (int64_t j = 0; j < e->n_cols * e->n_mat; j++)
            if (!isfinite(e->sums[j]))
                return hr_fail(HEARTH_ERR_FORMAT, "non-finite activations reached %s", e->name);
    }
    while (c->im.n_datasets > c->n_prior_datasets) free(c->im.datasets[--c->im.n_datasets]);
    if (dataset) {
        char **d = realloc(c->im.datasets, (size_t)(c->im.n_datasets + 1) * sizeof *d);
        if (!d) return HEARTH_ERR_NOMEM;
        c->im.datasets = d;
        const size_t len = strlen(dataset) + 1;
        if (!(d[c->im.n_datasets] = malloc(len))) return HEARTH_ERR_NOMEM;
        memcpy(d[c->im.n_datasets++], dataset, len);
    }
    const int64_t tokens = imatrix_collector_tokens(c);
    if (tokens == 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "no product of %d or more rows was seen (decode more tokens at once)",
                       MIN_ROWS);
    c->im.chunk_count = c->im.chunk_size ? (uint32_t)(tokens / c->im.chunk_size) : 0;
    *out = &c->im;
    return HEARTH_OK;
}
