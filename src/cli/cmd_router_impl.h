/*
 * cmd_router_impl.h - shared between cmd_router.c (argument parsing and the
 * train/score/eval/calibrate subcommands) and cmd_router_exp.c (reports, the
 * tuning grid, the RouteLLM experiment and --from-ledger).
 */
#ifndef HEARTH_CMD_ROUTER_IMPL_H
#define HEARTH_CMD_ROUTER_IMPL_H

#include "gateway/router.h"

#include <stdio.h>

enum { RCLI_MAX_FILES = 256, RCLI_MAX_GRID = 64 };

typedef struct rcli {
    const char *cmd;
    const char *data[RCLI_MAX_FILES];
    size_t n_data;
    const char *exclude[RCLI_MAX_FILES];
    size_t n_exclude;
    const char *out, *router, *input, *routellm, *split_dir, *ledger, *dump;
    rtr_load_opts lo;
    rtr_train_params tp;
    bool tune, dry_run, quiet, dev, confidence;
    unsigned folds, eval_pct;
    double local_share;
} rcli;

int rcli_load(rcli *c, rtr_dataset *d, bool labels);
int rcli_fit(rcli *c, const rtr_dataset *d, const size_t *rows, size_t n, rtr_model **m);
double *rcli_score_all(const rtr_model *m, const rtr_dataset *d, const size_t *rows, size_t n);

/* The --tune candidates (from c->tp's feature settings). */
void rcli_grid(const rcli *c, rtr_train_params *grid, size_t *n);
/* Prints RouteLLM's metrics per benchmark (and for all rows when there are
 * several) for the router's scores, the random router, the oracle and, when
 * given, the baseline's scores. Returns the exit status. */
int rcli_report(FILE *out, const rtr_dataset *d, const size_t *rows, size_t n, const double *scores,
                const double *baseline);
int rcli_experiment(rcli *c);
int rcli_from_ledger(rcli *c, rtr_dataset *d);

#endif
