/*
 * imatrix_stats.c - llama-imatrix --show-statistics' figures of each entry
 * of an importance matrix (imatrix.h), with its arithmetic: float sums in
 * element order, so that the printed digits are the same.
 */
#include "imatrix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The layer N of a "blk.N." name (-1 for none) and the part of the name
 * before its ".weight" component (the whole name without one), as
 * llama-imatrix splits a name at its dots. */
static void split_name(const char *name, int *layer, const char **tensor, int *tensor_len) {
    *layer = -1;
    *tensor = name;
    *tensor_len = (int)strlen(name);
    bool have_layer = false, have_tensor = false;
    for (const char *p = name, *prev = NULL; !have_tensor || !have_layer;) {
        const char *dot = strchr(p, '.');
        const size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!have_layer && prev && !strncmp(prev, "blk.", 4) && p == prev + 4) {
            char *end;
            const long v = strtol(p, &end, 10);
            if (end != p && v >= 0 && v < 1 << 20) *layer = (int)v;
            have_layer = true;
        }
        if (!have_tensor && prev && len == 6 && !strncmp(p, "weight", 6)) {
            *tensor = prev;
            *tensor_len = (int)(p - 1 - prev);
            have_tensor = true;
        }
        if (!dot) break;
        prev = p;
        p = dot + 1;
    }
}

/* Fills s from the entry's mean squared activations a[0..n). */
static void describe(imatrix_stat *s, const float *a, int n) {
    float total = 0.0f, sq = 0.0f, max = a[0], min = a[0];
    int inactive = 0;
    for (int i = 0; i < n; i++) {
        total += a[i];
        sq += a[i] * a[i];
        max = a[i] > max ? a[i] : max;
        min = a[i] < min ? a[i] : min;
        inactive += fabsf(a[i]) <= 1e-5f;
    }
    const float mean = total / (float)n, var = sq / (float)n - mean * mean;
    const float dev = sqrtf(var > 0.0f ? var : 0.0f);
    float entropy = 0.0f;
    for (int i = 0; total > 0.0f && i < n; i++) {
        const float p = a[i] / total;
        if (p > 0.0f) entropy -= p * log2f(p);
    }
    int above = 0;
    for (int i = 0; dev > 0.0f && i < n; i++) above += (a[i] - mean) / dev > 1.0f;
    s->elements = n;
    s->total = total;
    s->min = min;
    s->max = max;
    s->mean = mean;
    s->stddev = dev;
    s->active = 1.0f - (float)inactive / (float)n;
    s->entropy = entropy;
    s->zd = (float)above / (float)n;
}

static float dot(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* The cosine between an entry's sums and those of the entry named like it
 * with its first "blk.N." made "blk.N-1." (0 without one). */
static float cos_prev(const imatrix *im, const imatrix_entry *e) {
    const char *b = e->name, *digits = NULL, *end = NULL;
    for (; (b = strstr(b, "blk.")) != NULL; b++) {
        digits = b + 4;
        for (end = digits; *end >= '0' && *end <= '9'; end++) {
        }
        if (end > digits && *end == '.') break;
    }
    if (!b || end - digits > 9) return 0.0f;
    char prev[600];
    const long layer = strtol(digits, NULL, 10);
    const int len =
        snprintf(prev, sizeof prev, "%.*s%ld%s", (int)(digits - e->name), e->name, layer - 1, end);
    if (len < 0 || len >= (int)sizeof prev) return 0.0f;
    const imatrix_entry *p = imatrix_find(im, prev);
    const int64_t n = e->n_cols * e->n_mat;
    bool counted = false; /* only an entry with statistics of its own */
    for (int64_t m = 0; p && m < p->n_mat; m++) counted |= p->counts[m] > 0;
    if (!counted || p->n_cols * p->n_mat != n) return 0.0f;
    return dot(e->sums, p->sums, n) /
           (sqrtf(dot(e->sums, e->sums, n)) * sqrtf(dot(p->sums, p->sums, n)));
}

static int cmp_stat(const void *va, const void *vb) {
    const imatrix_stat *a = va, *b = vb;
    const int n = a->tensor_len < b->tensor_len ? a->tensor_len : b->tensor_len;
    const int c = memcmp(a->tensor, b->tensor, (size_t)n);
    if (c || a->tensor_len != b->tensor_len) return c ? c : a->tensor_len - b->tensor_len;
    return (a->total < b->total) - (a->total > b->total); /* the largest first */
}

hearth_err imatrix_stats(const imatrix *im, imatrix_stat **out, int64_t *n_out) {
    imatrix_stat *st = hr_calloc((size_t)im->n_entries + 1, sizeof *st);
    if (!st) return HEARTH_ERR_NOMEM;
    int64_t n = 0;
    for (int64_t i = 0; i < im->n_entries; i++) {
        const imatrix_entry *e = &im->entries[i];
        if (e->n_cols * e->n_mat > INT32_MAX) continue;
        float *a = malloc((size_t)(e->n_cols * e->n_mat) * sizeof *a);
        if (!a) {
            free(st);
            return HEARTH_ERR_NOMEM;
        }
        int k = 0; /* matrices nothing reached are left out */
        for (int64_t m = 0; m < e->n_mat; m++)
            for (int64_t j = 0; e->counts[m] > 0 && j < e->n_cols; j++)
                a[k++] = e->sums[m * e->n_cols + j] / (float)e->counts[m];
        if (k > 0) {
            imatrix_stat *s = &st[n++];
            s->entry = e;
            split_name(e->name, &s->layer, &s->tensor, &s->tensor_len);
            describe(s, a, k);
        }
        free(a);
    }
    for (int64_t i = 0; i < n; i++) st[i].cossim = cos_prev(im, st[i].entry);
    qsort(st, (size_t)n, sizeof *st, cmp_stat);
    *out = st;
    *n_out = n;
    return HEARTH_OK;
}
