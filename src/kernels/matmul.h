/*
 * matmul.h - private to src/kernels: the part of a matrix product that does
 * not depend on how a dot product adds its terms, shared by kern_matmul
 * (matmul.c) and kern_matmul_ggml (ggml_matmul.c): the activations converted
 * once to the weights' vec_dot type, then the rows of one or several weights
 * split across the pool in one handoff.
 */
#ifndef HEARTH_KERN_MATMUL_H
#define HEARTH_KERN_MATMUL_H

#include "kernels/kernels.h"

/* Rows r0..r1-1 of weight `o` against every token: the tokens converted to
 * the vec_dot type are at xq, xq_row_bytes apart. */
typedef void (*kern_rows_fn)(const void *ctx, int o, int64_t r0, int64_t r1, const uint8_t *xq,
                             size_t xq_row_bytes);

/* Converts x [n_tok][n_cols] f32 to `act` into scratch (at least
 * kern_matmul_scratch_bytes; unused when act is F32, where x itself is
 * read), then calls rows() over the n_rows[o] rows of each of the n_ops
 * weights (n_ops <= KERN_MATMUL_MAX_OPS), split across the pool in
 * contiguous ranges of whole 16-row panels counted across all of them.
 * Every row goes to exactly one call, so the split never changes a result. */
void kern_matmul_run(hr_pool *pool, kern_type act, int64_t n_cols, const float *x, int64_t n_tok,
                     void *scratch, const int64_t *n_rows, int n_ops, kern_rows_fn rows,
                     const void *ctx);

#endif
