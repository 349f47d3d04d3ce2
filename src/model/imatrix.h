/*
 * imatrix.h - importance matrices as llama.cpp's llama-imatrix makes them
 * and llama-quantize --imatrix reads them (docs/quantize.md): for each 2-D
 * weight the forward pass multiplies, the sum over the evaluated tokens of
 * each input column's squared activation, and how many tokens that was.
 * Quantizing a row with these as per-column importance weights spends the
 * precision where the activations are large.
 *
 * Files: llama.cpp's GGUF form (general.type "imatrix", imatrix.datasets,
 * imatrix.chunk_count, imatrix.chunk_size, and per weight NAME the F32
 * tensors NAME.in_sum2 [n_cols][n_mat] and NAME.counts [n_mat]) and its
 * legacy .dat form (per entry the mean times the number of chunks). Both
 * are read and written; a file is untrusted input and is checked before
 * anything is used.
 */
#ifndef HEARTH_IMATRIX_H
#define HEARTH_IMATRIX_H

#include "model.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct imatrix_entry {
    char *name;      /* the weight's tensor, "blk.0.attn_q.weight" */
    int64_t n_cols;  /* input columns */
    int64_t n_mat;   /* matrices (experts); 1 for a dense weight */
    float *sums;     /* [n_mat][n_cols]: sum of x^2 (legacy files: mean x^2 times ncall) */
    int64_t *counts; /* [n_mat]: tokens summed (legacy files: {ncall}) */
} imatrix_entry;

typedef struct imatrix {
    imatrix_entry *entries; /* sorted by name (strcmp) */
    int64_t n_entries;
    char **datasets; /* the texts it was computed on, as given */
    int n_datasets;
    uint32_t chunk_count, chunk_size; /* chunks evaluated, tokens per chunk (0: unknown) */
    bool legacy;                      /* read from a .dat file */
} imatrix;

/* Reads a GGUF or .dat importance matrix (told apart by the GGUF magic).
 * HEARTH_ERR_FORMAT naming what is wrong for a damaged or foreign file, a
 * GGUF one without imatrix.datasets/chunk_count/chunk_size (llama-quantize
 * refuses those too), or one whose data are not finite. */
hearth_err imatrix_load(const char *path, imatrix **out);
/* The same over a file's bytes (nothing is kept pointing into them). */
hearth_err imatrix_parse(const uint8_t *data, uint64_t size, imatrix **out);

/* Writes im as GGUF (llama-imatrix's file, entries in name order) or, with
 * legacy, as .dat (chunk_size must then be > 0). */
hearth_err imatrix_save(const imatrix *im, const char *path, bool legacy);

void imatrix_free(imatrix *im);

/* Keeps the entries whose name contains one of include[0..n_include) (all
 * when n_include is 0) and none of exclude[0..n_exclude): llama-quantize's
 * --include-weights and --exclude-weights. */
void imatrix_filter(imatrix *im, const char *const *include, int n_include,
                    const char *const *exclude, int n_exclude);

/* Adds `from` into `into` as llama-imatrix --in-file combines files: sums
 * and counts added entry by entry (new entries copied), a legacy file's
 * entries first turned back into sums and token counts with chunk_size
 * (tokens per chunk, > 0), its datasets appended; `into` is then in the
 * GGUF form (not legacy) with chunk_size and chunk_count = its largest
 * count / chunk_size. An entry whose size disagrees with into's is
 * HEARTH_ERR_FORMAT, and leaves `into` unchanged. */
hearth_err imatrix_merge(imatrix *into, const imatrix *from, uint32_t chunk_size);

/* Orders entries by name (strcmp), for qsort and bsearch. */
int imatrix_cmp_entry(const void *a, const void *b);

/* The entry for tensor `name`, or NULL. */
const imatrix_entry *imatrix_find(const imatrix *im, const char *name);

/* The entry's importance weight per column, as llama-quantize derives it:
 * sums / count per matrix (1 where nothing was counted), or for a legacy
 * entry sums / ncall. out: [n_mat * n_cols] floats. */
void imatrix_weights(const imatrix_entry *e, bool legacy, float *out);

/* ---- collecting one (imatrix_collect.c) ---- */

typedef struct imatrix_collector imatrix_collector;

/* A collector for m's products: every blk.N matrix, and output.weight when
 * with_output (never a tied embedding: llama-imatrix names that product
 * token_embd and keeps none). chunk_size: tokens per chunk, for the file.
 * prior (may be NULL; merged with chunk_size, imatrix_merge): a matrix to
 * go on from, as llama-imatrix --in-file with a text: its sums and counts
 * are where the observed weights start, its other entries and its datasets
 * are kept. One of its entries whose width is not its weight's is
 * HEARTH_ERR_FORMAT. */
hearth_err imatrix_collector_new(hearth_model *m, bool with_output, uint32_t chunk_size,
                                 const imatrix *prior, imatrix_collector **out);
void imatrix_collector_free(imatrix_collector *c);

/* Observe s's forward passes from now on (s must be a session of the
 * collector's model and must not outlive it). Products of fewer than 16
 * rows are skipped, as llama-imatrix skips them (single-token decodes). */
void imatrix_collector_attach(imatrix_collector *c, hearth_session *s);

/* Tokens seen by the most-observed weight (a prior's included). */
int64_t imatrix_collector_tokens(const imatrix_collector *c);

/* The matrix so far (owned by the collector; chunk_count is the tokens seen
 * over chunk_size), with `dataset` after the prior's datasets (may be NULL).
 * HEARTH_ERR_FORMAT if an activation was not finite, HEARTH_ERR_INVALID_ARG
 * if nothing was counted yet. */
hearth_err imatrix_collector_result(imatrix_collector *c, const char *dataset, const imatrix **out);

/* ---- statistics (imatrix_stats.c) ---- */

/* llama-imatrix --show-statistics' figures of one entry, over its mean
 * squared activations (sums / count, matrices with a count only). */
typedef struct imatrix_stat {
    const imatrix_entry *entry;
    int layer;          /* N of blk.N, -1 for another tensor */
    const char *tensor; /* in entry->name: the part before ".weight" ("attn_q"), else all */
    int tensor_len;
    int elements; /* activations */
    float total, min, max, mean, stddev;
    float active;  /* share above 1e-5 in magnitude */
    float entropy; /* bits, of the activations as a distribution */
    float zd;      /* share more than one standard deviation above the mean */
    float cossim;  /* cosine of the sums with blk.N-1's same tensor (0: none) */
} imatrix_stat;

/* One stat per entry with data, in llama-imatrix's order (tensor name, then
 * the largest total first); *out is malloc'd (free it). */
hearth_err imatrix_stats(const imatrix *im, imatrix_stat **out, int64_t *n_out);

#endif
