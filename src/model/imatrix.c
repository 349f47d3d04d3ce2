/*
 * imatrix.c - importance-matrix files (imatrix.h): llama.cpp's GGUF form
 * and its legacy .dat form, read with every count and size checked against
 * the file, and written as llama-imatrix writes them (same keys, tensors,
 * order and arithmetic), so that llama-quantize reads Hearth's and Hearth
 * reads llama-imatrix's.
 */
#include "imatrix.h"

#include "gguf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_SUM2 ".in_sum2"
#define COUNTS  ".counts"

static void entry_clear(imatrix_entry *e) {
    free(e->name);
    free(e->sums);
    free(e->counts);
}

void imatrix_free(imatrix *im) {
    if (!im) return;
    for (int64_t i = 0; i < im->n_entries; i++) entry_clear(&im->entries[i]);
    free(im->entries);
    for (int i = 0; i < im->n_datasets; i++) free(im->datasets[i]);
    free(im->datasets);
    free(im);
}

int imatrix_cmp_entry(const void *a, const void *b) {
    return strcmp(((const imatrix_entry *)a)->name, ((const imatrix_entry *)b)->name);
}

const imatrix_entry *imatrix_find(const imatrix *im, const char *name) {
    const imatrix_entry key = {.name = (char *)name};
    if (im->n_entries == 0) return NULL; /* bsearch wants a base even then */
    return bsearch(&key, im->entries, (size_t)im->n_entries, sizeof key, imatrix_cmp_entry);
}

static bool contains_any(const char *name, const char *const *subs, int n) {
    for (int i = 0; i < n; i++)
        if (strstr(name, subs[i])) return true;
    return false;
}

void imatrix_filter(imatrix *im, const char *const *include, int n_include,
                    const char *const *exclude, int n_exclude) {
    int64_t k = 0;
    for (int64_t i = 0; i < im->n_entries; i++) {
        imatrix_entry *e = &im->entries[i];
        if (contains_any(e->name, exclude, n_exclude) ||
            (n_include > 0 && !contains_any(e->name, include, n_include)))
            entry_clear(e);
        else
            im->entries[k++] = *e;
    }
    im->n_entries = k;
}

void imatrix_weights(const imatrix_entry *e, bool legacy, float *out) {
    for (int64_t m = 0; m < e->n_mat; m++) {
        const float *s = e->sums + m * e->n_cols;
        float *w = out + m * e->n_cols;
        /* llama-quantize's float division by the integer count or ncall */
        const float count = (float)e->counts[legacy ? 0 : m];
        for (int64_t j = 0; j < e->n_cols; j++)
            w[j] = legacy ? (count > 0 ? s[j] / count : s[j]) : (count > 0 ? s[j] / count : 1.0f);
    }
}

/* A copy of s[0..len) as a C string, or NULL (out of memory, or a NUL
 * inside: such a name could never match a tensor's). */
static char *str_dup(const char *s, uint64_t len) {
    if (memchr(s, '\0', (size_t)len)) return NULL;
    char *c = malloc((size_t)len + 1);
    if (!c) return NULL;
    memcpy(c, s, (size_t)len);
    c[len] = '\0';
    return c;
}

static hearth_err check_finite(const imatrix *im) {
    for (int64_t i = 0; i < im->n_entries; i++) {
        const imatrix_entry *e = &im->entries[i];
        for (int64_t j = 0; j < e->n_mat * e->n_cols; j++)
            if (!isfinite(e->sums[j]))
                return hr_fail(HEARTH_ERR_FORMAT, "entry %s holds a value that is not finite",
                               e->name);
    }
    return HEARTH_OK;
}

/* Sorts the entries and refuses a name given twice. */
static hearth_err finish(imatrix *im) {
    qsort(im->entries, (size_t)im->n_entries, sizeof *im->entries, imatrix_cmp_entry);
    for (int64_t i = 1; i < im->n_entries; i++)
        if (!strcmp(im->entries[i - 1].name, im->entries[i].name))
            return hr_fail(HEARTH_ERR_FORMAT, "entry %s appears twice", im->entries[i].name);
    return check_finite(im);
}

/* ---- combining ---- */

/* Whether from's entry e can be added to d (into's entry of the same name):
 * the same number of sums; counts per matrix equal in number, or d's one
 * count spread over e's matrices. */
static hearth_err merge_check(const imatrix_entry *d, const imatrix_entry *e, bool legacy) {
    if (d->n_cols * d->n_mat != e->n_cols * e->n_mat)
        return hr_fail(HEARTH_ERR_FORMAT, "entry %s: %lld values, before %lld", e->name,
                       (long long)(e->n_cols * e->n_mat), (long long)(d->n_cols * d->n_mat));
    if (!legacy && d->n_mat != e->n_mat && d->n_mat != 1)
        return hr_fail(HEARTH_ERR_FORMAT, "entry %s: %lld matrices, before %lld", e->name,
                       (long long)e->n_mat, (long long)d->n_mat);
    return HEARTH_OK;
}

/* d += e (checked by merge_check). A legacy entry holds mean x^2 times its
 * calls: times chunk_size it is a sum again, and its calls times chunk_size
 * are added to every count of d. */
static hearth_err merge_entry(imatrix_entry *d, const imatrix_entry *e, bool legacy,
                              uint32_t chunk_size) {
    const int64_t nv = e->n_cols * e->n_mat;
    if (!legacy && d->n_mat == 1 && e->n_mat > 1) { /* one count becomes one per matrix */
        int64_t *c = malloc((size_t)e->n_mat * sizeof *c);
        if (!c) return HEARTH_ERR_NOMEM;
        for (int64_t m = 0; m < e->n_mat; m++) c[m] = d->counts[0];
        free(d->counts);
        d->counts = c;
        d->n_mat = e->n_mat;
        d->n_cols = e->n_cols;
    }
    for (int64_t j = 0; j < nv; j++)
        d->sums[j] += legacy ? e->sums[j] * (float)chunk_size : e->sums[j];
    for (int64_t m = 0; m < d->n_mat; m++)
        d->counts[m] += legacy ? e->counts[0] * (int64_t)chunk_size : e->counts[m];
    return HEARTH_OK;
}

hearth_err imatrix_merge(imatrix *into, const imatrix *from, uint32_t chunk_size) {
    if (chunk_size == 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "no chunk size");
    int64_t n_new = 0;
    for (int64_t i = 0; i < from->n_entries; i++) {
        const imatrix_entry *d = imatrix_find(into, from->entries[i].name);
        if (!d) {
            n_new++;
            continue;
        }
        hearth_err err = merge_check(d, &from->entries[i], from->legacy);
        if (err) return err;
    }
    imatrix_entry *grown =
        realloc(into->entries, (size_t)(into->n_entries + n_new + 1) * sizeof *grown);
    char **ds =
        realloc(into->datasets, (size_t)(into->n_datasets + from->n_datasets + 1) * sizeof *ds);
    if (grown) into->entries = grown;
    if (ds) into->datasets = ds;
    if (!grown || !ds) return HEARTH_ERR_NOMEM;
    /* the new entries go after the old ones (found by bsearch among those
     * alone), zeroed, and the list is sorted again at the end */
    const int64_t n_old = into->n_entries;
    hearth_err err = HEARTH_OK;
    for (int64_t i = 0; !err && i < from->n_entries; i++) {
        const imatrix_entry *e = &from->entries[i];
        imatrix_entry *d = n_old ? bsearch(&(imatrix_entry){.name = e->name}, into->entries,
                                           (size_t)n_old, sizeof *d, imatrix_cmp_entry)
                                 : NULL;
        if (!d) {
            d = &into->entries[into->n_entries];
            const int64_t n_mat = from->legacy ? 1 : e->n_mat;
            *d = (imatrix_entry){.n_cols = e->n_cols, .n_mat = n_mat};
            d->name = str_dup(e->name, strlen(e->name));
            d->sums = hr_calloc((size_t)(e->n_cols * e->n_mat), sizeof *d->sums);
            d->counts = hr_calloc((size_t)n_mat, sizeof *d->counts);
            if (!d->name || !d->sums || !d->counts) {
                entry_clear(d);
                err = HEARTH_ERR_NOMEM;
                break;
            }
            into->n_entries++;
        }
        err = merge_entry(d, e, from->legacy, chunk_size);
    }
    qsort(into->entries, (size_t)into->n_entries, sizeof *into->entries, imatrix_cmp_entry);
    for (int i = 0; !err && i < from->n_datasets; i++) {
        if (!(into->datasets[into->n_datasets] =
                  str_dup(from->datasets[i], strlen(from->datasets[i]))))
            err = HEARTH_ERR_NOMEM;
        else
            into->n_datasets++;
    }
    int64_t max = 0;
    for (int64_t i = 0; i < into->n_entries; i++)
        for (int64_t m = 0; m < into->entries[i].n_mat; m++)
            if (into->entries[i].counts[m] > max) max = into->entries[i].counts[m];
    into->chunk_size = chunk_size;
    into->chunk_count = (uint32_t)(max / chunk_size);
    into->legacy = false;
    return err;
}

/* ---- GGUF ---- */

static hearth_err add_dataset(imatrix *im, const char *s, uint64_t len) {
    char **d = realloc(im->datasets, (size_t)(im->n_datasets + 1) * sizeof *d);
    if (!d) return HEARTH_ERR_NOMEM;
    im->datasets = d;
    if (!(d[im->n_datasets] = str_dup(s, len)))
        return hr_fail(HEARTH_ERR_FORMAT, "a dataset name is not text");
    im->n_datasets++;
    return HEARTH_OK;
}

static bool has_suffix(gguf_str name, const char *suffix, uint64_t *base_len) {
    const size_t n = strlen(suffix);
    if (name.len <= n || memcmp(name.ptr + name.len - n, suffix, n) != 0) return false;
    *base_len = name.len - n;
    return true;
}

/* The entry of one NAME.in_sum2 tensor and its NAME.counts partner. */
static hearth_err gguf_entry(const gguf_file *f, const gguf_tensor *sums, uint64_t base_len,
                             imatrix_entry *e) {
    char name[512];
    if (base_len + sizeof COUNTS > sizeof name || memchr(sums->name.ptr, '\0', (size_t)base_len))
        return hr_fail(HEARTH_ERR_FORMAT, "a tensor name is too long or not text");
    memcpy(name, sums->name.ptr, (size_t)base_len);
    memcpy(name + base_len, COUNTS, sizeof COUNTS);
    const gguf_tensor *counts = gguf_find_tensor(f, name);
    name[base_len] = '\0';
    if (!counts) return hr_fail(HEARTH_ERR_FORMAT, "%s" IN_SUM2 " has no " COUNTS, name);
    if (sums->type != KERN_F32 || counts->type != KERN_F32)
        return hr_fail(HEARTH_ERR_FORMAT, "%s: sums and counts must be F32", name);
    const int64_t n_mat = counts->n_elements;
    if (n_mat < 1 || sums->n_elements % n_mat != 0)
        return hr_fail(HEARTH_ERR_FORMAT, "%s: %lld sums do not split into %lld matrices", name,
                       (long long)sums->n_elements, (long long)n_mat);
    e->n_mat = n_mat;
    e->n_cols = sums->n_elements / n_mat;
    e->name = str_dup(name, base_len);
    e->sums = malloc((size_t)sums->n_elements * sizeof *e->sums);
    e->counts = malloc((size_t)n_mat * sizeof *e->counts);
    if (!e->name || !e->sums || !e->counts)
        return hr_fail(HEARTH_ERR_NOMEM, "out of memory reading %s", name);
    memcpy(e->sums, sums->data, (size_t)sums->n_elements * sizeof *e->sums);
    const float *c = counts->data;
    for (int64_t m = 0; m < n_mat; m++) {
        if (!(c[m] >= 0 && c[m] < 9.0e15f))
            return hr_fail(HEARTH_ERR_FORMAT, "%s: a count is %g", name, (double)c[m]);
        e->counts[m] = llroundf(c[m]);
    }
    return HEARTH_OK;
}

static hearth_err load_gguf(const uint8_t *data, uint64_t size, imatrix *im) {
    gguf_file *f;
    hearth_err err = gguf_open_memory(data, size, &f);
    if (err) return err;
    gguf_arr ds;
    const bool has_ds = gguf_get_arr(f, "imatrix.datasets", &ds);
    if (!has_ds || !gguf_get_u32(f, "imatrix.chunk_count", &im->chunk_count) ||
        !gguf_get_u32(f, "imatrix.chunk_size", &im->chunk_size))
        err = hr_fail(HEARTH_ERR_FORMAT,
                      "not an importance matrix (no imatrix.datasets, chunk_count, chunk_size)");
    if (!err && ds.type != GGUF_STRING)
        err = hr_fail(HEARTH_ERR_FORMAT, "imatrix.datasets is not an array of strings");
    for (uint64_t i = 0; !err && i < ds.n; i++) {
        const gguf_str s = gguf_arr_str(&ds, i);
        err = add_dataset(im, s.ptr, s.len);
    }
    const int64_t n = gguf_n_tensors(f);
    if (!err && !(im->entries = hr_calloc(n > 0 ? (size_t)n : 1, sizeof *im->entries)))
        err = HEARTH_ERR_NOMEM;
    uint64_t base_len, n_counts = 0;
    for (int64_t i = 0; !err && i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (has_suffix(t->name, IN_SUM2, &base_len))
            err = gguf_entry(f, t, base_len, &im->entries[im->n_entries++]);
        else if (has_suffix(t->name, COUNTS, &base_len))
            n_counts++;
    }
    if (!err && n_counts != (uint64_t)im->n_entries)
        err = hr_fail(HEARTH_ERR_FORMAT, "a .counts tensor has no .in_sum2");
    if (!err && im->n_entries == 0) err = hr_fail(HEARTH_ERR_FORMAT, "no entries");
    gguf_close(f);
    return err;
}

/* ---- legacy .dat ---- */

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static bool read_i32(reader *r, int32_t *v) {
    if (r->end - r->p < 4) return false;
    memcpy(v, r->p, 4);
    r->p += 4;
    return true;
}

static hearth_err dat_entry(reader *r, int i, imatrix_entry *e) {
    int32_t len, ncall, nval;
    if (!read_i32(r, &len) || len < 1 || r->end - r->p < len)
        return hr_fail(HEARTH_ERR_FORMAT, "entry %d: bad name", i);
    if (!(e->name = str_dup((const char *)r->p, (uint64_t)len)))
        return hr_fail(HEARTH_ERR_FORMAT, "entry %d: bad name", i);
    r->p += len;
    if (!read_i32(r, &ncall) || !read_i32(r, &nval) || ncall < 0 || nval < 1 ||
        (uint64_t)(r->end - r->p) / 4 < (uint64_t)nval)
        return hr_fail(HEARTH_ERR_FORMAT, "entry %s: bad or truncated values", e->name);
    e->n_mat = 1;
    e->n_cols = nval;
    e->sums = malloc((size_t)nval * sizeof *e->sums);
    e->counts = malloc(sizeof *e->counts);
    if (!e->sums || !e->counts) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    memcpy(e->sums, r->p, (size_t)nval * 4);
    r->p += (size_t)nval * 4;
    e->counts[0] = ncall;
    return HEARTH_OK;
}

static hearth_err load_dat(const uint8_t *data, uint64_t size, imatrix *im) {
    reader r = {data, data + size};
    int32_t n, chunks, len;
    if (!read_i32(&r, &n) || n < 1 || (uint64_t)n > size / 12)
        return hr_fail(HEARTH_ERR_FORMAT, "neither GGUF nor a legacy imatrix (no entries)");
    if (!(im->entries = hr_calloc((size_t)n, sizeof *im->entries))) return HEARTH_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        hearth_err err = dat_entry(&r, i, &im->entries[im->n_entries++]);
        if (err) return err;
    }
    im->legacy = true;
    /* optional tail: chunks evaluated, then the dataset's name */
    if (r.p == r.end) return HEARTH_OK;
    if (!read_i32(&r, &chunks) || chunks < 0)
        return hr_fail(HEARTH_ERR_FORMAT, "bad chunk count after the entries");
    im->chunk_count = (uint32_t)chunks;
    if (read_i32(&r, &len) && len > 0) {
        if (r.end - r.p < len) return hr_fail(HEARTH_ERR_FORMAT, "truncated dataset name");
        return add_dataset(im, (const char *)r.p, (uint64_t)len);
    }
    return HEARTH_OK;
}

hearth_err imatrix_parse(const uint8_t *data, uint64_t size, imatrix **out) {
    imatrix *im = hr_calloc(1, sizeof *im);
    if (!im) return HEARTH_ERR_NOMEM;
    const bool is_gguf = size >= 4 && !memcmp(data, "GGUF", 4);
    hearth_err err = is_gguf ? load_gguf(data, size, im) : load_dat(data, size, im);
    if (!err) err = finish(im);
    if (err) {
        imatrix_free(im);
        return err;
    }
    *out = im;
    return HEARTH_OK;
}

hearth_err imatrix_load(const char *path, imatrix **out) {
    hr_map map;
    hearth_err err = hr_map_open(&map, path);
    if (!err) {
        err = imatrix_parse(map.data, map.size, out);
        hr_map_close(&map);
    }
    return err ? hr_wrap(err, "importance matrix '%s': ", path) : HEARTH_OK;
}

/* ---- writing ---- */

/* Per-entry "calls" of the legacy file: its largest count over chunk_size,
 * rounded up (never 0 for an entry with data). */
static int32_t legacy_ncall(const imatrix_entry *e, uint32_t chunk_size) {
    int64_t max = 0;
    for (int64_t m = 0; m < e->n_mat; m++)
        if (e->counts[m] > max) max = e->counts[m];
    return (int32_t)((max + chunk_size - 1) / chunk_size);
}

static bool put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

static hearth_err save_dat(const imatrix *im, const char *path) {
    if (im->chunk_size == 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "no chunk size");
    FILE *f = fopen(path, "wb");
    if (!f) return hr_fail(HEARTH_ERR_IO, "cannot write '%s': %s", path, hr_strerror(errno));
    int32_t n = 0; /* entries with no data at all are left out */
    for (int64_t i = 0; i < im->n_entries; i++) n += legacy_ncall(&im->entries[i], 1) > 0;
    bool ok = put(f, &n, 4);
    float *tmp = NULL;
    for (int64_t i = 0; ok && i < im->n_entries; i++) {
        const imatrix_entry *e = &im->entries[i];
        const int32_t len = (int32_t)strlen(e->name), ncall = legacy_ncall(e, im->chunk_size);
        const int32_t nval = (int32_t)(e->n_mat * e->n_cols);
        if (legacy_ncall(e, 1) == 0) continue;
        free(tmp);
        if (!(tmp = malloc((size_t)nval * sizeof *tmp))) break;
        for (int32_t j = 0; j < nval; j++) {
            const int64_t m = j / e->n_cols;
            float count = (float)e->counts[m], value = e->sums[j];
            if (count == 0.0f) value = count = 1.0f; /* a matrix nothing reached */
            tmp[j] = (value / count) * (float)ncall;
        }
        ok = put(f, &len, 4) && put(f, e->name, (size_t)len) && put(f, &ncall, 4) &&
             put(f, &nval, 4) && put(f, tmp, (size_t)nval * sizeof *tmp);
    }
    const int32_t chunks = (int32_t)im->chunk_count;
    const char *ds = im->n_datasets ? im->datasets[im->n_datasets - 1] : "";
    const int32_t ds_len = (int32_t)strlen(ds);
    ok = ok && tmp && put(f, &chunks, 4) && put(f, &ds_len, 4) && put(f, ds, (size_t)ds_len);
    free(tmp);
    if (fclose(f) != 0) ok = false;
    return ok ? HEARTH_OK : hr_fail(HEARTH_ERR_IO, "cannot write '%s'", path);
}

static hearth_err save_gguf(const imatrix *im, const char *path) {
    gguf_writer *w;
    hearth_err err = gguf_writer_new(&w);
    if (err) return err;
    float **counts = hr_calloc((size_t)im->n_entries, sizeof *counts);
    if (!counts) err = HEARTH_ERR_NOMEM;
    if (!err) err = gguf_writer_set_str(w, "general.type", "imatrix");
    if (!err)
        err = gguf_writer_set_arr_str(w, "imatrix.datasets", (const char *const *)im->datasets,
                                      (uint64_t)im->n_datasets);
    if (!err) err = gguf_writer_set_u32(w, "imatrix.chunk_count", im->chunk_count);
    if (!err) err = gguf_writer_set_u32(w, "imatrix.chunk_size", im->chunk_size);
    char name[600];
    for (int64_t i = 0; !err && i < im->n_entries; i++) {
        const imatrix_entry *e = &im->entries[i];
        if (!(counts[i] = malloc((size_t)e->n_mat * sizeof **counts))) {
            err = HEARTH_ERR_NOMEM;
            break;
        }
        for (int64_t m = 0; m < e->n_mat; m++) counts[i][m] = (float)e->counts[m];
        /* ggml writes the dimensions up to the last one above 1 */
        const uint32_t dims = e->n_mat > 1 ? 2 : 1;
        const int64_t ne_sums[2] = {e->n_cols, e->n_mat}, ne_counts[2] = {1, e->n_mat};
        snprintf(name, sizeof name, "%s" IN_SUM2, e->name);
        err = gguf_writer_add_tensor(w, name, KERN_F32, dims, ne_sums, e->sums,
                                     (uint64_t)(e->n_mat * e->n_cols) * sizeof(float));
        snprintf(name, sizeof name, "%s" COUNTS, e->name);
        if (!err)
            err = gguf_writer_add_tensor(w, name, KERN_F32, dims, ne_counts, counts[i],
                                         (uint64_t)e->n_mat * sizeof(float));
    }
    if (!err) err = gguf_writer_write(w, path);
    for (int64_t i = 0; counts && i < im->n_entries; i++) free(counts[i]);
    free(counts);
    gguf_writer_free(w);
    return err;
}

hearth_err imatrix_save(const imatrix *im, const char *path, bool legacy) {
    for (int64_t i = 0; i < im->n_entries; i++)
        if (strlen(im->entries[i].name) > 500)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "tensor name too long");
    /* never a file the reader refuses: sums added up (--in-file) can overflow */
    hearth_err err = check_finite(im);
    if (err) return err;
    return legacy ? save_dat(im, path) : save_gguf(im, path);
}
