/*
 * cmd_router.c - `hearth router train|score|eval|calibrate|experiment`: the
 * learned pre-router's command line (gateway/router.h does the work). It
 * parses options, loads datasets, prints. `experiment` runs the whole
 * evaluation protocol of docs/router.md on RouteLLM's data in one go.
 */
#include "cli.h"
#include "gateway/router.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_router_impl.h"

static const char router_usage[] =
    "usage: hearth router <train|score|eval|calibrate|experiment> [options]\n"
    "  train      --data FILE... -o ROUTER [--tune] [model options]\n"
    "  score      --router ROUTER --input FILE.jsonl      one {\"id\",\"score\"} line per input\n"
    "  eval       --router ROUTER --data FILE...          RouteLLM's metrics vs random/oracle\n"
    "  calibrate  --router ROUTER --data FILE... --local-share S [--dry-run]\n"
    "  calibrate  --confidence --from-ledger DB --local-share S   the gateway's mean_logprob\n"
    "  experiment --routellm DIR [-o ROUTER] [--write-split DIR] [--tune] [--dev]\n"
    "  experiment: --eval-pct P held out by prompt hash (20); --dev cross-validates inside the\n"
    "  training part only and never scores the held-out part; --dump FILE (with --dev) writes\n"
    "  the out-of-fold scores\n"
    "data options (train, eval, calibrate):\n"
    "  --data FILE...        JSONL ({prompt, weak_ok, strong_ok, id?, group?}) or .csv files\n"
    "  --exclude FILE        drop prompts listed as eval_prompt in a contaminated_prompts.jsonl\n"
    "  --prompt-col/--weak-col/--strong-col NAME   CSV column names (defaults: prompt; weak_ok\n"
    "                        or mistralai/Mixtral-8x7B-Instruct-v0.1; strong_ok or\n"
    "                        gpt-4-1106-preview)\n"
    "model options (train):\n"
    "  --target gain|needs-strong   score P(only strong right) - P(only weak right) (default),\n"
    "                        or P(only strong right) alone\n"
    "  --l2 X  --iters N  --hash-bits N  --word-ngrams N  --char-ngrams MIN-MAX|0  --no-dense\n"
    "  --tune                pick l2 and --group-smooth by cross-validation on the data\n"
    "                        (--folds N, default 3)\n"
    "  --group-smooth S      blend labels toward their group's mean (0..1; groups are CSV\n"
    "                        files or the JSONL \"group\" field)\n"
    "  --item-weight W --l2-item X   add plain-label heads with weight W (with S > 0)\n"
    "  --subject W           add the subject part with weight W (0: none): a softmax classifier\n"
    "                        of the group from the words, scoring sum_g P(g|text)*rate(g)\n"
    "  --subject-bits N --subject-l2 X --subject-chars MAX --subject-iters N   its settings\n"
    "  --subject-head-weight H   the heads' weight for groups of a benchmark with several\n"
    "                        groups (MMLU subjects; a benchmark of one group: 1)\n"
    "  --knn K               the neighbours part (with the subject part): the subject's rate\n"
    "                        moves toward the mean gain of the K most similar training prompts\n"
    "                        (0: none; the file then holds no bag of words of any prompt)\n"
    "  --knn-weight A        how far (0..1)   --knn-bits N   its hashed word space (12..24)\n"
    "  --knn-subject B       first move P(g|text) B of the way (0..1) to the K nearest\n"
    "                        prompts' groups (0: none; B > 0 writes file version 4)\n"
    "  --from-ledger DB      labels from the gateway's ledger (see docs/router.md)\n";

/* Collects FILE... after --data: every following argument not starting with
 * '-'. Returns the index of the last one consumed. */
static int take_files(int argc, char **argv, int i, rcli *c) {
    while (i + 1 < argc && argv[i + 1][0] != '-' && c->n_data < RCLI_MAX_FILES)
        c->data[c->n_data++] = argv[++i];
    return i;
}

static bool parse_uint(const char *s, unsigned *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > 1 << 30) return false;
    *out = (unsigned)v;
    return true;
}

/* "LO-HI", two whole numbers ("-1-5" and "2-5x" are not). */
static bool parse_range(const char *s, unsigned *lo, unsigned *hi) {
    char *end;
    const long a = strtol(s, &end, 10);
    if (end == s || *end != '-' || a < 0 || a > 1 << 30) return false;
    const char *t = end + 1;
    const long b = strtol(t, &end, 10);
    if (end == t || *end || b < 0 || b > 1 << 30) return false;
    *lo = (unsigned)a;
    *hi = (unsigned)b;
    return true;
}

/* The options without a value; true when `a` is one. */
static bool flag_opt(const char *a, rcli *c) {
    if (!strcmp(a, "--tune"))
        c->tune = true;
    else if (!strcmp(a, "--no-dense"))
        c->tp.dense = false;
    else if (!strcmp(a, "--confidence"))
        c->confidence = true;
    else if (!strcmp(a, "--dry-run"))
        c->dry_run = true;
    else if (!strcmp(a, "--dev"))
        c->dev = true;
    else if (!strcmp(a, "-q"))
        c->quiet = true;
    else
        return false;
    return true;
}

/* Returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, rcli *c) {
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool bad = false;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(router_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--data")) {
            const int j = take_files(argc, argv, i, c);
            if (j == i) {
                fprintf(stderr, "hearth router: --data needs FILE...\n");
                return 2;
            }
            i = j;
            continue;
        }
        if (flag_opt(a, c)) continue;
        if (!v) {
            fprintf(stderr, "hearth router: option '%s' needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            c->out = v;
        else if (!strcmp(a, "--router"))
            c->router = v;
        else if (!strcmp(a, "--input"))
            c->input = v;
        else if (!strcmp(a, "--routellm"))
            c->routellm = v;
        else if (!strcmp(a, "--write-split"))
            c->split_dir = v;
        else if (!strcmp(a, "--dump"))
            c->dump = v;
        else if (!strcmp(a, "--from-ledger"))
            c->ledger = v;
        else if (!strcmp(a, "--prompt-col"))
            c->lo.prompt_col = v;
        else if (!strcmp(a, "--weak-col"))
            c->lo.weak_col = v;
        else if (!strcmp(a, "--strong-col"))
            c->lo.strong_col = v;
        else if (!strcmp(a, "--exclude")) {
            if (c->n_exclude == RCLI_MAX_FILES)
                bad = true;
            else
                c->exclude[c->n_exclude++] = v;
        } else if (!strcmp(a, "--local-share")) {
            char *end;
            c->local_share = strtod(v, &end);
            bad = *end || !(c->local_share >= 0 && c->local_share <= 1);
        } else if (!strcmp(a, "--l2")) {
            char *end;
            c->tp.l2 = strtod(v, &end);
            bad = *end || !(c->tp.l2 >= 0);
        } else if (!strcmp(a, "--group-smooth")) {
            char *end;
            c->tp.group_smooth = strtod(v, &end);
            bad = *end || !(c->tp.group_smooth >= 0 && c->tp.group_smooth <= 1);
        } else if (!strcmp(a, "--item-weight")) {
            char *end;
            c->tp.item_weight = strtod(v, &end);
            bad = *end || !(c->tp.item_weight >= 0);
        } else if (!strcmp(a, "--l2-item")) {
            char *end;
            c->tp.l2_item = strtod(v, &end);
            bad = *end || !(c->tp.l2_item >= 0);
        } else if (!strcmp(a, "--subject")) {
            char *end;
            c->tp.subject_weight = strtod(v, &end);
            bad = *end || !(c->tp.subject_weight >= 0);
        } else if (!strcmp(a, "--subject-head-weight")) {
            char *end;
            c->tp.subject_head_weight = strtod(v, &end);
            bad = *end || !(c->tp.subject_head_weight >= 0);
        } else if (!strcmp(a, "--subject-l2")) {
            char *end;
            c->tp.subject_l2 = strtod(v, &end);
            bad = *end || !(c->tp.subject_l2 >= 0);
        } else if (!strcmp(a, "--subject-bits"))
            bad = !parse_uint(v, &c->tp.subject_bits);
        else if (!strcmp(a, "--knn"))
            bad = !parse_uint(v, &c->tp.knn_k);
        else if (!strcmp(a, "--knn-bits"))
            bad = !parse_uint(v, &c->tp.knn_bits);
        else if (!strcmp(a, "--knn-weight")) {
            char *end;
            c->tp.knn_weight = strtod(v, &end);
            bad = *end || !(c->tp.knn_weight >= 0 && c->tp.knn_weight <= 1);
        } else if (!strcmp(a, "--knn-subject")) {
            char *end;
            c->tp.knn_subject_weight = strtod(v, &end);
            bad = *end || !(c->tp.knn_subject_weight >= 0 && c->tp.knn_subject_weight <= 1);
        } else if (!strcmp(a, "--subject-chars"))
            bad = !parse_uint(v, &c->tp.subject_chars);
        else if (!strcmp(a, "--subject-iters")) {
            unsigned n = 0;
            bad = !parse_uint(v, &n);
            c->tp.subject_iter = (int)n;
        } else if (!strcmp(a, "--iters")) {
            unsigned n = 0;
            bad = !parse_uint(v, &n);
            c->tp.max_iter = (int)n;
        } else if (!strcmp(a, "--hash-bits"))
            bad = !parse_uint(v, &c->tp.hash_bits);
        else if (!strcmp(a, "--word-ngrams"))
            bad = !parse_uint(v, &c->tp.word_ngrams);
        else if (!strcmp(a, "--folds"))
            bad = !parse_uint(v, &c->folds);
        else if (!strcmp(a, "--eval-pct"))
            bad = !parse_uint(v, &c->eval_pct);
        else if (!strcmp(a, "--char-ngrams")) {
            unsigned lo = 0, hi = 0;
            if (!strcmp(v, "0"))
                c->tp.char_min = c->tp.char_max = 0;
            else if (parse_range(v, &lo, &hi))
                c->tp.char_min = lo, c->tp.char_max = hi;
            else
                bad = true;
        } else if (!strcmp(a, "--target")) {
            if (!strcmp(v, "gain"))
                c->tp.target = RTR_TARGET_GAIN;
            else if (!strcmp(v, "needs-strong"))
                c->tp.target = RTR_TARGET_NEEDS_STRONG;
            else
                bad = true;
        } else {
            fprintf(stderr, "hearth router: unknown option '%s'\n%s", a, router_usage);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "hearth router: bad value for '%s'\n", a);
            return 2;
        }
    }
    return -1;
}

/* Loads every --data file (and drops --exclude prompts). */
int rcli_load(rcli *c, rtr_dataset *d, bool labels) {
    rtr_load_opts o = c->lo;
    o.require_labels = labels;
    if (!c->n_data && !c->ledger) {
        fprintf(stderr, "hearth router %s: --data FILE... is required\n", c->cmd);
        return 2;
    }
    for (size_t i = 0; i < c->n_data; i++)
        if (rtr_dataset_load(d, c->data[i], &o)) return cli_fail("router", "loading data");
    for (size_t i = 0; i < c->n_exclude; i++) {
        size_t removed = 0;
        if (rtr_dataset_decontaminate(d, c->exclude[i], &removed))
            return cli_fail("router", "reading the exclusion list");
        if (!c->quiet)
            fprintf(stderr, "hearth router: %s removed %zu prompts\n", c->exclude[i], removed);
    }
    if (d->n == 0) {
        fprintf(stderr, "hearth router %s: the data holds no rows\n", c->cmd);
        return 1;
    }
    return 0;
}

static void tune_log(void *user, const rtr_train_params *p, double apgr) {
    const rcli *c = user;
    if (c->quiet) return;
    fprintf(stderr,
            "  candidate: target %-12s l2 %-7g smooth %.2f item %.2f l2-item %-7g word 1..%u "
            "char %u..%u dense %d bits %u subject %g knn %u (weight %g) -> cross-validated "
            "APGR %.4f\n",
            p->target == RTR_TARGET_GAIN ? "gain" : "needs-strong", p->l2, p->group_smooth,
            p->item_weight, p->l2_item, p->word_ngrams, p->char_min, p->char_max, p->dense,
            p->hash_bits, p->subject_weight, p->knn_k, p->knn_weight, apgr);
}

/* Trains on the given rows (all when NULL), with tuning when asked. */
int rcli_fit(rcli *c, const rtr_dataset *d, const size_t *rows, size_t n, rtr_model **m) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hearth_err e;
    if (c->tune) {
        size_t n_grid = 0;
        rtr_train_params grid[RCLI_MAX_GRID], best;
        rcli_grid(c, grid, &n_grid);
        e = rtr_train_tune(d, rows, rows ? n : d->n, grid, n_grid, c->folds, tune_log, c, &best, m);
        if (!e) c->tp = best;
    } else
        e = rtr_train(d, rows, rows ? n : d->n, &c->tp, m);
    if (e) return cli_fail("router", "training");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!c->quiet) {
        char desc[1024];
        rtr_describe(*m, desc, sizeof desc);
        fprintf(stderr, "hearth router: trained in %.1f s: %s\n",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9, desc);
    }
    return 0;
}

static int cmd_train(rcli *c) {
    rtr_dataset d;
    rtr_model *m = NULL;
    int rc;
    if (!c->out) {
        fprintf(stderr, "hearth router train: -o ROUTER is required\n");
        return 2;
    }
    rtr_dataset_init(&d);
    if (c->ledger && (rc = rcli_from_ledger(c, &d))) goto done;
    if (c->n_data && (rc = rcli_load(c, &d, true))) goto done;
    if (!c->quiet) fprintf(stderr, "hearth router: %zu labeled prompts\n", d.n);
    if ((rc = rcli_fit(c, &d, NULL, d.n, &m))) goto done;
    if (rtr_save(m, c->out)) rc = cli_fail("router", "saving");
done:
    rtr_free(m);
    rtr_dataset_fini(&d);
    return rc;
}

static int cmd_score(rcli *c) {
    rtr_dataset d;
    rtr_model *m = NULL;
    int rc = 0;
    if (!c->router || !c->input) {
        fprintf(stderr, "hearth router score: --router ROUTER and --input FILE are required\n");
        return 2;
    }
    rtr_dataset_init(&d);
    rtr_load_opts o = c->lo;
    o.require_labels = false;
    if (rtr_load(c->router, &m))
        rc = cli_fail("router", "loading the router");
    else if (rtr_dataset_load(&d, c->input, &o))
        rc = cli_fail("router", "loading the input");
    for (size_t i = 0; !rc && i < d.n; i++) {
        double s;
        if (rtr_score(m, d.ex[i].prompt, d.ex[i].prompt_len, &s))
            rc = cli_fail("router", "score");
        else
            printf("{\"id\":%s,\"score\":%.6f}\n", d.ex[i].id, s);
    }
    rtr_free(m);
    rtr_dataset_fini(&d);
    return rc;
}

/* Scores every row of d with m into a new array (NULL on failure, reported). */
double *rcli_score_all(const rtr_model *m, const rtr_dataset *d, const size_t *rows, size_t n) {
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) {
        fprintf(stderr, "hearth router: out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const rtr_example *x = &d->ex[rows ? rows[i] : i];
        if (rtr_score(m, x->prompt, x->prompt_len, &s[i])) {
            cli_fail("router", "score");
            free(s);
            return NULL;
        }
    }
    return s;
}

static int cmd_eval(rcli *c) {
    rtr_dataset d;
    rtr_model *m = NULL;
    double *s = NULL;
    int rc;
    if (!c->router) {
        fprintf(stderr, "hearth router eval: --router ROUTER is required\n");
        return 2;
    }
    rtr_dataset_init(&d);
    if ((rc = rcli_load(c, &d, true))) goto done;
    if (rtr_load(c->router, &m)) {
        rc = cli_fail("router", "loading the router");
        goto done;
    }
    if (!(s = rcli_score_all(m, &d, NULL, d.n))) {
        rc = 1;
        goto done;
    }
    rc = rcli_report(stdout, &d, NULL, d.n, s, NULL);
done:
    free(s);
    rtr_free(m);
    rtr_dataset_fini(&d);
    return rc;
}

/* --confidence: the gateway's mean_logprob threshold from the ledger. The
 * gateway escalates when mean < threshold; scores here are -mean so that
 * rtr_calibrate's "strong when score >= t" reads the same way. */
static int calibrate_confidence(rcli *c) {
    double *conf = NULL, t, got;
    size_t n = 0;
    if (!c->ledger || isnan(c->local_share)) {
        fprintf(stderr, "hearth router calibrate --confidence: --from-ledger DB and "
                        "--local-share S are required\n");
        return 2;
    }
    if (rtr_ledger_confidences(c->ledger, &conf, &n))
        return cli_fail("router", "reading the ledger");
    int rc = 0;
    for (size_t i = 0; i < n; i++) conf[i] = -conf[i];
    if (n == 0) {
        fprintf(stderr, "hearth router calibrate: the ledger has no confidence-checked answers\n");
        rc = 1;
    } else if (rtr_calibrate(conf, n, c->local_share, &t, &got))
        rc = cli_fail("router", "calibrate");
    else
        printf("mean_logprob %.4f keeps %.2f %% of %zu checked answers local (asked %.2f %%); "
               "set it as \"confidence\": {\"mean_logprob\": %.4f} in the gateway's config\n",
               -t, 100 * got, n, 100 * c->local_share, -t);
    free(conf);
    return rc;
}

static int cmd_calibrate(rcli *c) {
    if (c->confidence) return calibrate_confidence(c);
    rtr_dataset d;
    rtr_model *m = NULL;
    double *s = NULL, t, got;
    int rc;
    if (!c->router || isnan(c->local_share)) {
        fprintf(stderr, "hearth router calibrate: --router ROUTER and --local-share S are "
                        "required\n");
        return 2;
    }
    rtr_dataset_init(&d);
    if ((rc = rcli_load(c, &d, false))) goto done;
    if (rtr_load(c->router, &m)) {
        rc = cli_fail("router", "loading the router");
        goto done;
    }
    if (!(s = rcli_score_all(m, &d, NULL, d.n))) {
        rc = 1;
        goto done;
    }
    if (rtr_calibrate(s, d.n, c->local_share, &t, &got)) {
        rc = cli_fail("router", "calibrate");
        goto done;
    }
    printf("threshold %.9g keeps %.2f %% of %zu prompts local (asked %.2f %%)\n", t, 100 * got, d.n,
           100 * c->local_share);
    if (!c->dry_run) {
        rtr_set_threshold(m, t, got);
        if (rtr_save(m, c->router))
            rc = cli_fail("router", "saving");
        else
            printf("written into %s\n", c->router);
    }
done:
    free(s);
    rtr_free(m);
    rtr_dataset_fini(&d);
    return rc;
}

int cmd_router(int argc, char **argv) {
    rcli c = {0};
    c.tp = rtr_train_default_params();
    c.local_share = NAN;
    c.folds = 3;
    c.eval_pct = 20;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(router_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    c.cmd = argv[1];
    int rc = parse(argc, argv, &c);
    if (rc >= 0) return rc;
    if (!strcmp(c.cmd, "train")) return cmd_train(&c);
    if (!strcmp(c.cmd, "score")) return cmd_score(&c);
    if (!strcmp(c.cmd, "eval")) return cmd_eval(&c);
    if (!strcmp(c.cmd, "calibrate")) return cmd_calibrate(&c);
    if (!strcmp(c.cmd, "experiment")) return rcli_experiment(&c);
    fprintf(stderr, "hearth router: unknown subcommand '%s'\n%s", c.cmd, router_usage);
    return 2;
}
