/*
 * matmul.c - the one matrix product every layer goes through:
 * Y[t][r] = dot(W row r, X row t), for one weight or several that read the
 * same input (Q, K, V; gate, up) in one pass over the pool.
 *
 * The activations are first converted to the weights' vec_dot type (Q8_0,
 * Q8_1, Q8_K, F16, ...) exactly as llama.cpp does, once for all the weights.
 * Then the rows of all the weights, counted in panels of 16, are split
 * across the pool in contiguous ranges: one handoff per call, which matters
 * when generating (hundreds of small products per token). A range goes
 * through the type's gemm kernel where the CPU has one (which gives
 * vec_dot's bits for any number of tokens), else each thread walks its rows
 * in the outer loop so a weight row stays in L1 while every token passes.
 * The conversion and the split (kern_matmul_run, matmul.h) serve
 * kern_matmul_ggml too.
 */
#include "matmul.h"

#include <assert.h>

/* Rows go to threads in whole panels of this many (the gemm kernels' size). */
enum { MATMUL_PANEL = 16 };

size_t kern_matmul_scratch_bytes(kern_type type, int64_t n_cols, int64_t n_tok) {
    const kern_type_info *ti = kern_type_get((uint32_t)type);
    if (!ti || ti->vec_dot_type == KERN_F32) return 0;
    return kern_row_bytes(ti->vec_dot_type, n_cols) * (size_t)n_tok;
}

/* ---- the job splitter (matmul.h), also kern_matmul_ggml's -------------------- */

typedef struct split_job {
    kern_rows_fn rows;
    const void *ctx;
    int n_ops;
    int64_t n_rows[KERN_MATMUL_MAX_OPS];
    int64_t first_panel[KERN_MATMUL_MAX_OPS + 1]; /* of each op in the common count */
    const kern_fns *act_fns;
    int64_t n_cols;
    const float *x;
    int64_t n_tok;
    uint8_t *xq;
    size_t xq_row_bytes;
} split_job;

static void split_convert(void *ctx, int ith, int nth) {
    split_job *j = ctx;
    for (int64_t t = ith; t < j->n_tok; t += nth)
        j->act_fns->from_float(j->x + t * j->n_cols, j->xq + (size_t)t * j->xq_row_bytes,
                               j->n_cols);
}

static void split_run(void *ctx, int ith, int nth) {
    const split_job *j = ctx;
    const int64_t total = j->first_panel[j->n_ops];
    const int64_t p0 = total * ith / nth, p1 = total * (ith + 1) / nth;
    for (int o = 0; o < j->n_ops; o++) {
        const int64_t a = p0 > j->first_panel[o] ? p0 : j->first_panel[o];
        const int64_t b = p1 < j->first_panel[o + 1] ? p1 : j->first_panel[o + 1];
        if (a >= b) continue;
        const int64_t r0 = (a - j->first_panel[o]) * MATMUL_PANEL;
        const int64_t r1 = (b - j->first_panel[o]) * MATMUL_PANEL;
        j->rows(j->ctx, o, r0, r1 < j->n_rows[o] ? r1 : j->n_rows[o], j->xq, j->xq_row_bytes);
    }
}

void kern_matmul_run(hr_pool *pool, kern_type act, int64_t n_cols, const float *x, int64_t n_tok,
                     void *scratch, const int64_t *n_rows, int n_ops, kern_rows_fn rows,
                     const void *ctx) {
    assert(n_ops >= 1 && n_ops <= KERN_MATMUL_MAX_OPS);
    split_job j = {
        .rows = rows,
        .ctx = ctx,
        .n_ops = n_ops,
        .act_fns = kern_get(act),
        .n_cols = n_cols,
        .x = x,
        .n_tok = n_tok,
    };
    for (int o = 0; o < n_ops; o++) {
        j.n_rows[o] = n_rows[o];
        j.first_panel[o + 1] = j.first_panel[o] + (n_rows[o] + MATMUL_PANEL - 1) / MATMUL_PANEL;
    }
    if (act == KERN_F32) {
        j.xq = (uint8_t *)x;
        j.xq_row_bytes = (size_t)n_cols * sizeof(float);
    } else {
        j.xq = scratch;
        j.xq_row_bytes = kern_row_bytes(act, n_cols);
        if (n_tok > 1)
            hr_pool_run(pool, split_convert, &j);
        else
            split_convert(&j, 0, 1);
    }
    hr_pool_run(pool, split_run, &j);
}

/* ---- the fast product -------------------------------------------------------- */

typedef struct matmul_job {
    const kern_matmul_op *ops;
    const kern_fns *fns[KERN_MATMUL_MAX_OPS];
    int64_t n_cols;
    int64_t n_tok;
} matmul_job;

/* Rows r0..r1-1 of op `o` against every token (a kern_rows_fn). */
static void matmul_rows(const void *ctx, int o, int64_t r0, int64_t r1, const uint8_t *xq,
                        size_t xq_row_bytes) {
    const matmul_job *j = ctx;
    const kern_matmul_op *op = &j->ops[o];
    const kern_fns *fns = j->fns[o];
    if (op->packed) { /* r0 starts a panel (MATMUL_PANEL rows) */
        const size_t pb = fns->pack_bytes(MATMUL_PANEL, j->n_cols);
        fns->gemm_packed(j->n_cols, (const uint8_t *)op->w + (size_t)(r0 / MATMUL_PANEL) * pb, pb,
                         r1 - r0, xq, xq_row_bytes, j->n_tok, op->y + r0, op->ldy);
        return;
    }
    const size_t wrb = kern_row_bytes(op->type, j->n_cols);
    const uint8_t *w = (const uint8_t *)op->w + (size_t)r0 * wrb;
    if (fns->gemm) {
        fns->gemm(j->n_cols, w, wrb, r1 - r0, xq, xq_row_bytes, j->n_tok, op->y + r0, op->ldy);
        return;
    }
    for (int64_t r = r0; r < r1; r++, w += wrb)
        for (int64_t t = 0; t < j->n_tok; t++)
            fns->vec_dot(j->n_cols, op->y + t * op->ldy + r, w, xq + (size_t)t * xq_row_bytes);
}

void kern_matmul_multi(hr_pool *pool, const kern_matmul_op *ops, int n_ops, int64_t n_cols,
                       const float *x, int64_t n_tok, void *scratch) {
    assert(n_ops >= 1 && n_ops <= KERN_MATMUL_MAX_OPS);
    const kern_type act = kern_type_get((uint32_t)ops[0].type)->vec_dot_type;
    matmul_job j = {.ops = ops, .n_cols = n_cols, .n_tok = n_tok};
    int64_t n_rows[KERN_MATMUL_MAX_OPS];
    for (int o = 0; o < n_ops; o++) {
        assert(kern_type_get((uint32_t)ops[o].type)->vec_dot_type == act);
        j.fns[o] = kern_get(ops[o].type);
        n_rows[o] = ops[o].n_rows;
    }
    kern_matmul_run(pool, act, n_cols, x, n_tok, scratch, n_rows, n_ops, matmul_rows, &j);
}

void kern_matmul(hr_pool *pool, kern_type type, const void *w, int64_t n_rows, int64_t n_cols,
                 const float *x, int64_t n_tok, float *y, int64_t ldy, void *scratch) {
    const kern_matmul_op op = {.type = type, .w = w, .n_rows = n_rows, .y = y, .ldy = ldy};
    kern_matmul_multi(pool, &op, 1, n_cols, x, n_tok, scratch);
}

/* ---- packed weights ----------------------------------------------------------- */

size_t kern_packed_bytes(kern_type type, int64_t n_rows, int64_t n_cols) {
    const kern_fns *fns = kern_get(type);
    return fns && fns->pack_bytes ? fns->pack_bytes(n_rows, n_cols) : 0;
}

typedef struct pack_job {
    const kern_fns *fns;
    const uint8_t *w;
    size_t w_stride, panel_bytes;
    int64_t n_rows, n_cols;
    uint8_t *out;
} pack_job;

static void pack_run(void *ctx, int ith, int nth) {
    const pack_job *j = ctx;
    const int64_t panels = (j->n_rows + MATMUL_PANEL - 1) / MATMUL_PANEL;
    const int64_t p0 = panels * ith / nth, p1 = panels * (ith + 1) / nth;
    if (p0 >= p1) return;
    const int64_t r0 = p0 * MATMUL_PANEL, r1 = p1 * MATMUL_PANEL;
    j->fns->pack(j->w + (size_t)r0 * j->w_stride, j->w_stride,
                 (r1 < j->n_rows ? r1 : j->n_rows) - r0, j->n_cols,
                 j->out + (size_t)p0 * j->panel_bytes);
}

void kern_pack(hr_pool *pool, kern_type type, const void *w, int64_t n_rows, int64_t n_cols,
               void *out) {
    const kern_fns *fns = kern_get(type);
    assert(kern_packed_bytes(type, n_rows, n_cols) > 0);
    pack_job j = {.fns = fns,
                  .w = w,
                  .w_stride = kern_row_bytes(type, n_cols),
                  .panel_bytes = fns->pack_bytes(MATMUL_PANEL, n_cols),
                  .n_rows = n_rows,
                  .n_cols = n_cols,
                  .out = out};
    hr_pool_run(pool, pack_run, &j);
}
