/*
 * imatrix_collect.c - accumulating an importance matrix from a session's
 * forward passes (imatrix.h), as llama-imatrix's collector does: for each
 * observed product of n >= 16 rows, every row's squared activations are
 * added to its weight's sums in row order, in float, and n to its count.
 */
#include "imatrix.h"

#include "session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* llama-imatrix ignores products of fewer rows (token-by-token decoding). */
#define MIN_ROWS 16

struct imatrix_collector {
    imatrix im;
    const model_weight **weights; /* [im.n_entries]: entries[i]'s weight */
    int64_t last;                 /* the entry of the last product (they come in order) */
    char *dataset;
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
    free(c->dataset);
    free(c->im.datasets);
    free(c);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the weights to observe, sorted: the file's blk.N matrices
 * the model multiplies, and output.weight when asked and not tied. */
static hearth_err observed_names(hearth_model *m, bool with_output, char ***out, int64_t *n_out) {
    const int64_t n = gguf_n_tensors(m->gguf);
    char **names = hr_calloc(n > 0 ? (size_t)n : 1, sizeof *names);
    if (!names) return HEARTH_ERR_NOMEM;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const gguf_str name = gguf_tensor_at(m->gguf, i)->name;
        const bool blk = name.len > 4 && !memcmp(name.ptr, "blk.", 4);
        if (!(blk || (with_output && gguf_str_eq(name, "output.weight"))) ||
            !model_weight_named(m, name))
            continue;
        if (!(names[k] = malloc((size_t)name.len + 1))) {
            while (k > 0) free(names[--k]);
            free(names);
            return HEARTH_ERR_NOMEM;
        }
        memcpy(names[k], name.ptr, (size_t)name.len);
        names[k++][name.len] = '\0';
    }
    qsort(names, (size_t)k, sizeof *names, cmp_name);
    *out = names;
    *n_out = k;
    return HEARTH_OK;
}

hearth_err imatrix_collector_new(hearth_model *m, bool with_output, uint32_t chunk_size,
                                 imatrix_collector **out) {
    imatrix_collector *c = hr_calloc(1, sizeof *c);
    if (!c) return HEARTH_ERR_NOMEM;
    c->im.chunk_size = chunk_size;
    char **names = NULL;
    int64_t n = 0;
    hearth_err err = observed_names(m, with_output, &names, &n);
    if (!err && n == 0)
        err = hr_fail(HEARTH_ERR_UNSUPPORTED, "the model has no blk.N matrices to observe");
    if (!err) {
        c->im.entries = hr_calloc((size_t)n, sizeof *c->im.entries);
        c->weights = hr_calloc((size_t)n, sizeof *c->weights);
        if (!c->im.entries || !c->weights) err = HEARTH_ERR_NOMEM;
    }
    for (int64_t i = 0; !err && i < n; i++) {
        imatrix_entry *e = &c->im.entries[c->im.n_entries++];
        const model_weight *w =
            model_weight_named(m, (gguf_str){.ptr = names[i], .len = strlen(names[i])});
        e->name = names[i];
        names[i] = NULL;
        e->n_cols = w->n_cols;
        e->n_mat = 1;
        e->sums = hr_calloc((size_t)w->n_cols, sizeof *e->sums);
        e->counts = hr_calloc(1, sizeof *e->counts);
        if (!e->sums || !e->counts) err = HEARTH_ERR_NOMEM;
        c->weights[i] = w;
    }
    for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (err) {
        imatrix_collector_free(c);
        return err;
    }
    *out = c;
    return HEARTH_OK;
}

static void observe(void *user, const model_weight *w, const float *x, int n) {
    imatrix_collector *c = user;
    if (n < MIN_ROWS) return;
    const int64_t n_e = c->im.n_entries;
    int64_t i = 0;
    while (i < n_e && c->weights[(c->last + i) % n_e] != w) i++;
    if (i == n_e) return; /* not a weight we keep (a tied output, an adapter's) */
    c->last = (c->last + i) % n_e;
    imatrix_entry *e = &c->im.entries[c->last];
    for (int t = 0; t < n; t++) {
        const float *row = x + (size_t)t * (size_t)e->n_cols;
        for (int64_t j = 0; j < e->n_cols; j++) e->sums[j] += row[j] * row[j];
    }
    e->counts[0] += n;
}

void imatrix_collector_attach(imatrix_collector *c, hearth_session *s) {
    s->observe = observe;
    s->observe_user = c;
}

int64_t imatrix_collector_tokens(const imatrix_collector *c) {
    int64_t max = 0;
    for (int64_t i = 0; i < c->im.n_entries; i++)
        if (c->im.entries[i].counts[0] > max) max = c->im.entries[i].counts[0];
    return max;
}

hearth_err imatrix_collector_result(imatrix_collector *c, const char *dataset,
                                    const imatrix **out) {
    for (int64_t i = 0; i < c->im.n_entries; i++) {
        const imatrix_entry *e = &c->im.entries[i];
        for (int64_t j = 0; j < e->n_cols; j++)
            if (!isfinite(e->sums[j]))
                return hr_fail(HEARTH_ERR_FORMAT, "non-finite activations reached %s", e->name);
    }
    free(c->dataset);
    free(c->im.datasets);
    c->dataset = NULL;
    c->im.datasets = NULL;
    c->im.n_datasets = 0;
    if (dataset) {
        const size_t len = strlen(dataset) + 1;
        c->dataset = malloc(len);
        c->im.datasets = malloc(sizeof *c->im.datasets);
        if (!c->dataset || !c->im.datasets) return HEARTH_ERR_NOMEM;
        memcpy(c->dataset, dataset, len);
        c->im.datasets[0] = c->dataset;
        c->im.n_datasets = 1;
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
