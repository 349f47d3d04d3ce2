/*
 * matmul.c - the one matrix product every layer goes through:
 * Y[t][r] = dot(W row r, X row t).
 *
 * The activations are first converted to the weight type's vec_dot type
 * (Q8_0, Q8_1, Q8_K, F16, ...) exactly as llama.cpp does, then the weight rows
 * are split across the pool in contiguous chunks. Several tokens go through
 * the type's gemm kernel where the CPU has one (panels of 16 rows against up
 * to 8 tokens in registers), else each thread walks its rows in the outer
 * loop so a weight row stays in L1 while every token passes.
 */
#include "kernels.h"

typedef struct matmul_job {
    const kern_fns *fns;
    const kern_fns *act_fns;
    const uint8_t *w;
    size_t w_row_bytes;
    int64_t n_rows, n_cols;
    const float *x;
    int64_t n_tok;
    float *y;
    int64_t ldy;
    uint8_t *xq;
    size_t xq_row_bytes;
} matmul_job;

size_t kern_matmul_scratch_bytes(kern_type type, int64_t n_cols, int64_t n_tok) {
    const kern_type_info *ti = kern_type_get((uint32_t)type);
    if (!ti || ti->vec_dot_type == KERN_F32) return 0;
    return kern_row_bytes(ti->vec_dot_type, n_cols) * (size_t)n_tok;
}

static void matmul_convert(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    for (int64_t t = ith; t < j->n_tok; t += nth)
        j->act_fns->from_float(j->x + t * j->n_cols, j->xq + (size_t)t * j->xq_row_bytes,
                               j->n_cols);
}

/* Rows of a gemm split go in whole panels of this many. */
enum { MATMUL_PANEL = 16 };

static void matmul_gemm(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    const int64_t panels = (j->n_rows + MATMUL_PANEL - 1) / MATMUL_PANEL;
    const int64_t per = (panels + nth - 1) / nth;
    const int64_t r0 = per * ith * MATMUL_PANEL;
    const int64_t r1 = r0 + per * MATMUL_PANEL < j->n_rows ? r0 + per * MATMUL_PANEL : j->n_rows;
    if (r0 >= r1) return;
    j->fns->gemm(j->n_cols, j->w + (size_t)r0 * j->w_row_bytes, j->w_row_bytes, r1 - r0, j->xq,
                 j->xq_row_bytes, j->n_tok, j->y + r0, j->ldy);
}

static void matmul_rows(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    int64_t per = (j->n_rows + nth - 1) / nth;
    int64_t r0 = per * ith;
    int64_t r1 = r0 + per < j->n_rows ? r0 + per : j->n_rows;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = j->w + (size_t)r * j->w_row_bytes;
        for (int64_t t = 0; t < j->n_tok; t++)
            j->fns->vec_dot(j->n_cols, j->y + t * j->ldy + r, wr,
                            j->xq + (size_t)t * j->xq_row_bytes);
    }
}

void kern_matmul(hr_pool *pool, kern_type type, const void *w, int64_t n_rows, int64_t n_cols,
                 const float *x, int64_t n_tok, float *y, int64_t ldy, void *scratch) {
    const kern_type_info *ti = kern_type_get((uint32_t)type);
    matmul_job j = {
        .fns = kern_get(type),
        .act_fns = kern_get(ti->vec_dot_type),
        .w = w,
        .w_row_bytes = kern_row_bytes(type, n_cols),
        .n_rows = n_rows,
        .n_cols = n_cols,
        .x = x,
        .n_tok = n_tok,
        .y = y,
        .ldy = ldy,
    };
    if (ti->vec_dot_type == KERN_F32) {
        j.xq = (uint8_t *)x;
        j.xq_row_bytes = (size_t)n_cols * sizeof(float);
    } else {
        j.xq = scratch;
        j.xq_row_bytes = kern_row_bytes(ti->vec_dot_type, n_cols);
        if (n_tok > 1)
            hr_pool_run(pool, matmul_convert, &j);
        else
            matmul_convert(&j, 0, 1);
    }
    hr_pool_run(pool, j.fns->gemm ? matmul_gemm : matmul_rows, &j);
}
