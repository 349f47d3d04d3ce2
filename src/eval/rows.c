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

static void rows_part(void *ctx, int ith, int nth) {
    const eval_rows *j = ctx;
    int a, b;
    hr_pool_part(j->n_rows, ith, nth, &a, &b);
    for (int r = a; r < b; r++) {
        const float *row = j->logits + (size_t)r * (size_t)j->n_vocab;
        const int32_t tok = j->next[r];
        switch (j->kind) {
        case EVAL_ROWS_NLL: j->nll[r] = eval_nll(row, j->n_vocab, tok); break;
        case EVAL_ROWS_NLL_STRIDED: j->nll[r] = eval_nll_strided(row, j->n_vocab, tok); break;
        case EVAL_ROWS_BASE:
            j->nll[r] = eval_base_row(row, j->n_vocab, tok, j->base + (size_t)r * j->row_len);
            break;
        case EVAL_ROWS_KLD:
            j->kld[r] = eval_kld_row(row, j->n_vocab, j->base_in + (size_t)r * j->row_len, tok);
            break;
        }
    }
}

void eval_parallel(const hearth_model *m, size_t n, eval_part_fn part, void *ctx) {
    if (n > 1 && m->pool && hr_pool_size(m->pool) > 1)
        hr_pool_run(m->pool, part, ctx);
    else
        part(ctx, 0, 1);
}

void eval_rows_score(const hearth_model *m, const eval_rows *job) {
    eval_parallel(m, job->n_rows > 0 ? (size_t)job->n_rows : 0, rows_part, (void *)job);
}
