/*
 * rows.c - scoring a chunk's rows on the model's threads: each scored
 * position's log-softmax over the vocabulary (and, for the base file or KL
 * divergence, a pass more over it) is independent of the others, so the
 * rows are split among the threads of the model's pool, which is idle
 * between decodes. Every row's result is the one-row function's, and the
 * caller sums them in order: the output does not depend on the threads.
 */
#include "eval.h"

#include "core/core.h"
#include "model/model.h"

typedef enum rows_kind { ROWS_NLL, ROWS_NLL_STRIDED, ROWS_BASE, ROWS_KLD } rows_kind;

typedef struct rows_job {
    rows_kind kind;
    const float *logits;
    int n_vocab, n_rows;
    const int32_t *next;
    uint16_t *base; /* ROWS_BASE: out; ROWS_KLD: in (base_in) */
    const uint16_t *base_in;
    size_t row_len;
    double *out;       /* ROWS_NLL*, ROWS_BASE */
    eval_kld_pos *kld; /* ROWS_KLD */
} rows_job;

static void rows_part(void *ctx, int ith, int nth) {
    const rows_job *j = ctx;
    const int a = (int)((long)j->n_rows * ith / nth), b = (int)((long)j->n_rows * (ith + 1) / nth);
    for (int r = a; r < b; r++) {
        const float *row = j->logits + (size_t)r * (size_t)j->n_vocab;
        switch (j->kind) {
        case ROWS_NLL: j->out[r] = eval_nll(row, j->n_vocab, j->next[r]); break;
        case ROWS_NLL_STRIDED: j->out[r] = eval_nll_strided(row, j->n_vocab, j->next[r]); break;
        case ROWS_BASE:
            j->out[r] =
                eval_base_row(row, j->n_vocab, j->next[r], j->base + (size_t)r * j->row_len);
            break;
        case ROWS_KLD:
            j->kld[r] =
                eval_kld_row(row, j->n_vocab, j->base_in + (size_t)r * j->row_len, j->next[r]);
            break;
        }
    }
}

static void rows_run(const hearth_model *m, rows_job *j) {
    if (j->n_rows > 1 && m->pool && hr_pool_size(m->pool) > 1)
        hr_pool_run(m->pool, rows_part, j);
    else
        rows_part(j, 0, 1);
}

void eval_rows_nll(const hearth_model *m, const float *logits, int n_vocab, const int32_t *next,
                   int n_rows, bool strided, double *out) {
    rows_job j = {.kind = strided ? ROWS_NLL_STRIDED : ROWS_NLL,
                  .logits = logits,
                  .n_vocab = n_vocab,
                  .n_rows = n_rows,
                  .next = next,
                  .out = out};
    rows_run(m, &j);
}

void eval_rows_base(const hearth_model *m, const float *logits, int n_vocab, const int32_t *next,
                    int n_rows, uint16_t *base, double *out) {
    rows_job j = {.kind = ROWS_BASE,
                  .logits = logits,
                  .n_vocab = n_vocab,
                  .n_rows = n_rows,
                  .next = next,
                  .base = base,
                  .row_len = eval_base_row_len(n_vocab),
                  .out = out};
    rows_run(m, &j);
}

void eval_rows_kld(const hearth_model *m, const float *logits, int n_vocab, const int32_t *next,
                   int n_rows, const uint16_t *base_rows, size_t row_len, eval_kld_pos *out) {
    rows_job j = {.kind = ROWS_KLD,
                  .logits = logits,
                  .n_vocab = n_vocab,
                  .n_rows = n_rows,
                  .next = next,
                  .base_in = base_rows,
                  .row_len = row_len,
                  .kld = out};
    rows_run(m, &j);
}
