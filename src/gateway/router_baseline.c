/*
 * router_baseline.c - the simple baseline the router must beat (issue
 * "Router quality"): a logistic regression on one-hot group (the MMLU
 * subject, known from the file a row came from) and the standardized log
 * length of the prompt, predicting "only the strong tier was right". With one
 * weight per group it learns each group's rate (as a log-odds), adjusted by
 * length. It uses the group label, which a real pre-router never sees; that
 * is what makes it a fair yardstick for a text-only model.
 */
#include "router_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

hearth_err rtr_baseline_scores(const rtr_dataset *d, const size_t *train_rows, size_t n_train,
                               const size_t *rows, size_t n_rows, double *scores) {
    size_t ng = d->n_groups, n_cols = ng + 2; /* groups, log length, bias */
    rtr_csr x = {.n_rows = n_train, .n_cols = n_cols};
    float *y = malloc((n_train ? n_train : 1) * sizeof *y);
    double *w = calloc(n_cols, sizeof *w);
    x.row_start = malloc((n_train + 1) * sizeof *x.row_start);
    x.col = malloc((3 * n_train + 1) * sizeof *x.col);
    x.val = malloc((3 * n_train + 1) * sizeof *x.val);
    hearth_err e = HEARTH_OK;
    if (!y || !w || !x.row_start || !x.col || !x.val) {
        e = hr_fail(HEARTH_ERR_NOMEM, "router baseline: out of memory");
        goto done;
    }
    double s = 0, ss = 0;
    for (size_t i = 0; i < n_train; i++) s += log1p((double)d->ex[train_rows[i]].prompt_len);
    double mu = n_train ? s / (double)n_train : 0;
    for (size_t i = 0; i < n_train; i++) {
        double v = log1p((double)d->ex[train_rows[i]].prompt_len) - mu;
        ss += v * v;
    }
    double sd = n_train ? sqrt(ss / (double)n_train) : 0, inv = sd > 0 ? 1 / sd : 0;
    size_t k = 0;
    for (size_t i = 0; i < n_train; i++) {
        const rtr_example *ex = &d->ex[train_rows[i]];
        x.row_start[i] = k;
        x.col[k] = ex->group, x.val[k++] = 1.0f;
        x.col[k] = (uint32_t)ng, x.val[k++] = (float)((log1p((double)ex->prompt_len) - mu) * inv);
        x.col[k] = (uint32_t)ng + 1, x.val[k++] = 1.0f;
        y[i] = ex->strong_ok && !ex->weak_ok ? 1.0f : 0.0f;
    }
    x.row_start[n_train] = k;
    /* a light penalty: enough to keep a group seen only with one label finite */
    rtr_lr_problem lp = {&x, y, NULL, 1e-4, n_cols - 1, 500, 1};
    if ((e = rtr_lr_fit(&lp, w, NULL))) goto done;
    for (size_t i = 0; i < n_rows; i++) {
        const rtr_example *ex = &d->ex[rows[i]];
        double z = w[ex->group] + w[ng] * (log1p((double)ex->prompt_len) - mu) * inv + w[ng + 1];
        scores[i] = rtr_sigmoid(z);
    }
done:
    free(y);
    free(w);
    rtr_csr_fini(&x);
    return e;
}
