/*
 * cmd_perplexity_bench.c - llama-perplexity's multiple-choice benchmarks in
 * `hearth perplexity` (docs/perplexity.md): HellaSwag (--hellaswag, acc_norm
 * with its 95% Wilson interval after each task), WinoGrande (--winogrande,
 * both choices' scores and the running accuracy) and llama.cpp's binary
 * multiple-choice files (--multiple-choice: MMLU, ARC, TruthfulQA). The
 * files are read, the tasks chosen and scored in src/eval; this file prints
 * llama-perplexity's lines, then a final score with its standard error.
 */
#include "cmd_perplexity_bench.h"

#include "cli.h"
#include "core/core.h"
#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const bench_name[] = {"", "HellaSwag", "WinoGrande", "multiple choice"};

/* "label: P +/- E": a share p of n_done tasks in percent with its
 * standard error, as llama-perplexity's closing lines compute it (in
 * float); the error is 0 where one task leaves none. */
static void final_line(const char *label, float p, int n_done) {
    const float sigma = n_done > 1 ? sqrtf(p * (1 - p) / (float)(n_done - 1)) : 0.f;
    printf("%s: %.4f +/- %.4f\n", label, (double)(100.f * p), (double)(100.f * sigma));
}

static int task_fail(const char *name, size_t i, const eval_tasks *t) {
    fprintf(stderr, "hearth perplexity: %s task %zu of %zu: %s\n", name, i + 1, t->n,
            hearth_last_error());
    return 1;
}

static int run_hellaswag(eval_scorer *sc, const eval_tasks *t) {
    printf("\ntask\tacc_norm\t95%% confidence interval\n");
    int n_correct = 0;
    double score[4];
    for (size_t i = 0; i < t->n; i++) {
        int best;
        if (eval_score_endings(sc, &t->v[i], false, score, &best))
            return task_fail("HellaSwag", i, t);
        n_correct += best == t->v[i].gold;
        /* the Wilson score interval at 95% */
        const double n = (double)(i + 1), freq = n_correct / n, za = 1.95996398454;
        const double z = za * za / n;
        const double cnf = z * sqrt(n * (4.0 * freq * (1 - freq) + z)) / (za + za);
        const double a = (freq + z * 0.5 - cnf) / (1.0 + z), b = (freq + z * 0.5 + cnf) / (1.0 + z);
        printf("%zu\t%3.8f%%\t[%3.4f%%, %3.4f%%]\n", i + 1, freq * 100.0, a * 100.0, b * 100.0);
        fflush(stdout);
    }
    printf("\n");
    char label[64];
    snprintf(label, sizeof label, "Final HellaSwag score(%zu tasks)", t->n);
    final_line(label, (float)n_correct / (float)t->n, (int)t->n);
    return 0;
}

static int run_winogrande(eval_scorer *sc, const eval_tasks *t) {
    int n_correct = 0;
    for (size_t i = 0; i < t->n; i++) {
        float score[2];
        if (eval_score_winogrande(sc, &t->v[i], score)) return task_fail("WinoGrande", i, t);
        const int result = score[0] > score[1] ? 1 : 2;
        n_correct += result == t->v[i].gold;
        printf("%zu\t%.4f\t%10.6f  %10.6f  %d  %d\n", i + 1, 100.0 * n_correct / (double)(i + 1),
               (double)score[0], (double)score[1], result, t->v[i].gold);
        fflush(stdout);
    }
    printf("\n");
    /* llama-perplexity prints its final score only from 100 tasks on */
    if (t->n >= 100) {
        char label[64];
        snprintf(label, sizeof label, "Final Winogrande score(%zu tasks)", t->n);
        final_line(label, (float)n_correct / (float)t->n, (int)t->n);
    }
    return 0;
}

static int run_mc(eval_scorer *sc, const eval_tasks *t) {
    printf("\ntask\tacc_norm\n");
    int n_correct = 0;
    size_t n_answers = 0;
    double *score = hr_calloc(100, sizeof *score);
    if (!score) return cli_fail("perplexity", "allocating");
    for (size_t i = 0; i < t->n; i++) {
        int best;
        if (eval_score_endings(sc, &t->v[i], true, score, &best)) {
            free(score);
            return task_fail("multiple-choice", i, t);
        }
        n_answers += (size_t)t->v[i].n_endings;
        n_correct += t->v[i].labels[best] == 1;
        printf("%zu\t%.8f\n", i + 1, 100. * n_correct / (double)(i + 1));
        fflush(stdout);
    }
    free(score);
    printf("\n");
    final_line("Final result", (float)n_correct / (float)t->n, (int)t->n);
    /* what picking an answer at random would score */
    final_line("Random chance", (float)t->n / (float)n_answers, (int)t->n);
    return 0;
}

/* The task file's bytes: with -f its final newline dropped. */
static int read_tasks(ppl_bench which, const char *path, bool binary, size_t n_tasks,
                      eval_tasks *t) {
    hr_map map;
    if (hr_map_open(&map, path)) return cli_fail("perplexity", "reading the task file");
    size_t len = (size_t)map.size;
    if (!binary && map.data[len - 1] == '\n') len--;
    const char *text = (const char *)map.data;
    const hearth_err err = which == PPL_BENCH_HELLASWAG ? eval_hellaswag_read(text, len, n_tasks, t)
                           : which == PPL_BENCH_WINOGRANDE
                               ? eval_winogrande_read(text, len, n_tasks, t)
                               : eval_mc_read(map.data, len, n_tasks, t);
    hr_map_close(&map);
    if (err) {
        fprintf(stderr, "hearth perplexity: %s is not a %s task file: %s\n", path,
                bench_name[which], hearth_last_error());
        return 1;
    }
    if (t->n_skipped)
        fprintf(stderr,
                "perplexity: %zu lines skipped, as llama-perplexity skips them (line %zu: %s)\n",
                t->n_skipped, t->first_skipped, t->skip_why);
    fprintf(stderr, "perplexity: %zu %s tasks in %s, scoring %zu%s\n", t->n_total,
            bench_name[which], path, t->n,
            which == PPL_BENCH_HELLASWAG || t->n < t->n_total ? " chosen at random (seed 1)" : "");
    return 0;
}

int ppl_bench_run(ppl_bench which, const char *path, bool binary, size_t n_tasks, hearth_model *m,
                  hearth_session *s, int max_tokens) {
    eval_tasks t = {0};
    if (read_tasks(which, path, binary, n_tasks, &t)) return 1;
    eval_scorer sc;
    eval_scorer_init(&sc, s, m, max_tokens);
    int rc = 0;
    if (t.n == 0)
        fprintf(stderr, "perplexity: no tasks to score\n");
    else if (which == PPL_BENCH_HELLASWAG)
        rc = run_hellaswag(&sc, &t);
    else if (which == PPL_BENCH_WINOGRANDE)
        rc = run_winogrande(&sc, &t);
    else
        rc = run_mc(&sc, &t);
    eval_scorer_fini(&sc);
    eval_tasks_free(&t);
    return rc;
}
