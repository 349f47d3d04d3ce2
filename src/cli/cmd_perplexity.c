/*
 * cmd_perplexity.c - `hearth perplexity`: llama-perplexity's perplexity and
 * KL divergence (docs/perplexity.md). The text is cut into chunks of -c
 * tokens, each evaluated from an empty KV cache with BOS in front, and the
 * second half of each is scored; the running estimate is printed per
 * chunk ("[1]12.3456,[2]..."), then "Final estimate: PPL = X +/- Y".
 * --kl-divergence-base FILE also saves the base model's log-probabilities
 * in llama-perplexity's file; --kl-divergence reads one back and compares
 * this model with it. The arithmetic lives in src/eval; this file reads,
 * checks and prints.
 */
#include "cli.h"
#include "cmd_perplexity_bench.h"

#include "core/core.h"
#include "eval/eval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char ppl_usage[] =
    "usage: hearth perplexity -m FILE -f TEXT [options]\n"
    "  llama-perplexity's perplexity of a model on a text (docs/perplexity.md)\n"
    "  -m, --model FILE    a GGUF model\n"
    "  -f, --file TEXT     the text (e.g. wiki.test.raw)\n"
    "  -c, --ctx-size N    tokens per chunk (default 512); the second half is scored\n"
    "  -b, --batch-size N  most tokens per decode call (default 2048; at most -c)\n"
    "  --chunks N          score only the first N chunks (default -1: all)\n"
    "  --ppl-stride N      strided perplexity: windows every N tokens, the last N scored\n"
    "  --ppl-output-type 0|1  1: one line per chunk (offset, PPL, mean and error of -log p)\n"
    "  --kl-divergence-base FILE  save the base model's log-probabilities to FILE (with\n"
    "                      -f); with --kl-divergence, read them from FILE\n"
    "  --kl-divergence     compare this model with FILE's: KL divergence, Δp, same top\n"
    "  --hellaswag         HellaSwag's score on -f's tasks (6 lines each) instead\n"
    "  --hellaswag-tasks N tasks chosen at random (default 400)\n"
    "  --winogrande        WinoGrande's score on -f's CSV\n"
    "  --winogrande-tasks N  tasks chosen at random (default 0: all)\n"
    "  --multiple-choice   the score on llama.cpp's binary task file (-bf; MMLU, ARC, ...)\n"
    "  --multiple-choice-tasks N  tasks chosen at random (default 0: all)\n"
    "  -bf, --binary-file F  the file read as it is (-f drops its final newline)\n"
    "  -np, --parallel N   benchmarks: a task may hold max(4, N) x -c tokens\n"
    "  -t N                threads (default: physical cores)\n"
    "  --kv-type f32|f16|q8_0  KV cache type (default f16, llama.cpp's)\n" CLI_MODEL_USAGE;

typedef struct ppl_opts {
    const char *model, *text, *base;
    int n_ctx, n_batch, n_chunks, stride, out_type;
    int n_tasks[4]; /* per ppl_bench */
    int n_parallel;
    ppl_bench bench;
    bool ctx_given, kld, binary;
    cli_model_opts lora;
    hearth_model_params mp;
    hearth_session_params sp;
    unsigned kv_given;
} ppl_opts;

/* The model, its session and the logits of one chunk's scored rows. */
typedef struct ppl_run {
    hearth_model *m;
    hearth_session *s;
    int n_vocab, n_ctx, n_batch, first;
    int32_t bos;
    float *logits;    /* [n_ctx - first][n_vocab] */
    double *nll;      /* [n_ctx - first]: each scored row's -log p */
    eval_kld_pos *kl; /* [n_ctx - first]: each scored row's KL figures */
    long n_evaluated; /* tokens through the model */
    double decode_s;  /* seconds spent evaluating them */
    double score_s;   /* seconds spent scoring their rows */
} ppl_run;

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* One option with a value; 1 taken, 0 not ours, -1 bad value (printed). */
static int int_opt(const char *a, const char *v, ppl_opts *o) {
    static const struct {
        const char *name, *alias;
        long lo, hi;
        size_t off;
    } ints[] = {
        {"-c", "--ctx-size", 3, 1L << 24, offsetof(ppl_opts, n_ctx)},
        {"-b", "--batch-size", 1, 1L << 24, offsetof(ppl_opts, n_batch)},
        {"--chunks", NULL, -1, 1L << 30, offsetof(ppl_opts, n_chunks)},
        {"--ppl-stride", NULL, 0, 1L << 24, offsetof(ppl_opts, stride)},
        {"--ppl-output-type", NULL, 0, 1, offsetof(ppl_opts, out_type)},
        {"-t", "--threads", 0, 1024, offsetof(ppl_opts, mp.n_threads)},
        {"--hellaswag-tasks", NULL, 0, 1L << 30, offsetof(ppl_opts, n_tasks[PPL_BENCH_HELLASWAG])},
        {"--winogrande-tasks", NULL, 0, 1L << 30,
         offsetof(ppl_opts, n_tasks[PPL_BENCH_WINOGRANDE])},
        {"--multiple-choice-tasks", NULL, 0, 1L << 30, offsetof(ppl_opts, n_tasks[PPL_BENCH_MC])},
        {"-np", "--parallel", 1, 256, offsetof(ppl_opts, n_parallel)},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(a, ints[i].name) && (!ints[i].alias || strcmp(a, ints[i].alias))) continue;
        if (cli_parse_int(v, ints[i].lo, ints[i].hi, (int *)(void *)((char *)o + ints[i].off))) {
            if (!strcmp(ints[i].name, "-c")) o->ctx_given = true;
            return 1;
        }
        fprintf(stderr, "hearth perplexity: %s wants a whole number in [%ld, %ld], not '%s'\n", a,
                ints[i].lo, ints[i].hi, v);
        return -1;
    }
    return 0;
}

/* 0, or the exit status (2: usage, printed). */
static int parse(int argc, char **argv, ppl_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(ppl_usage, stdout);
            return -1;
        }
        if (!strcmp(a, "--kl-divergence")) {
            o->kld = true;
            continue;
        }
        const ppl_bench b = !strcmp(a, "--hellaswag")         ? PPL_BENCH_HELLASWAG
                            : !strcmp(a, "--winogrande")      ? PPL_BENCH_WINOGRANDE
                            : !strcmp(a, "--multiple-choice") ? PPL_BENCH_MC
                                                              : PPL_BENCH_NONE;
        if (b) {
            if (o->bench && o->bench != b) {
                fprintf(stderr, "hearth perplexity: one benchmark at a time\n");
                return 2;
            }
            o->bench = b;
            continue;
        }
        const int lr = cli_model_opt("perplexity", argc, argv, &i, &o->lora);
        if (lr < 0) return 2;
        if (lr) continue;
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth perplexity: option '%s' needs a value\n", a);
            return 2;
        }
        int r = cli_kv_type_opt("perplexity", a, v, &o->sp.kv_type, &o->kv_given);
        if (!r) r = int_opt(a, v, o);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file") || !strcmp(a, "-bf") ||
                 !strcmp(a, "--binary-file")) {
            o->text = v;
            o->binary = a[1] == 'b' || a[2] == 'b'; /* -bf, --binary-file */
        } else if (!strcmp(a, "--kl-divergence-base") || !strcmp(a, "--save-all-logits"))
            o->base = v;
        else {
            fprintf(stderr, "hearth perplexity: unknown option '%s'\n%s", a, ppl_usage);
            return 2;
        }
    }
    const char *bad = !o->model             ? "-m MODEL is required"
                      : o->kld && !o->base  ? "--kl-divergence needs --kl-divergence-base FILE"
                      : !o->kld && !o->text ? "-f TEXT is required"
                      : o->stride && (o->base || o->kld) ? "--ppl-stride has no KL divergence"
                      : o->bench && (o->base || o->kld || o->stride)
                          ? "a benchmark has no KL divergence or stride"
                          : NULL;
    if (bad) {
        fprintf(stderr, "hearth perplexity: %s\n%s", bad, ppl_usage);
        return 2;
    }
    return 0;
}

/* The tokens of the text file, its final newline dropped as
 * llama-perplexity's -f drops it. */
static int text_tokens(const ppl_opts *o, const hearth_model *m, int32_t **ids, size_t *n) {
    if (eval_tokenize_file(m, o->text, o->binary, ids, n))
        return cli_fail("perplexity", "tokenizing the text");
    fprintf(stderr, "perplexity: %s is %zu tokens\n", o->text, *n);
    return 0;
}

static int too_short(const char *text, size_t n, int need, int n_ctx) {
    fprintf(stderr,
            "hearth perplexity: %s tokenizes to only %zu tokens: at least %d are needed to "
            "evaluate perplexity with a context of %d (-c)\n",
            text, n, need, n_ctx);
    return 1;
}

/* Evaluates chunk `chunk` into r->logits; prints the time per pass after
 * the first. */
static int run_chunk(ppl_run *r, const int32_t *chunk, int i, int n_chunk, int32_t bos) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (eval_chunk(r->s, r->n_vocab, chunk, r->n_ctx, r->n_batch, r->first, bos, r->logits))
        return cli_fail("perplexity", "evaluating a chunk");
    const double pass = seconds_since(&t);
    r->n_evaluated += r->n_ctx;
    r->decode_s += pass;
    if (i == 0) {
        fprintf(stderr, "perplexity: %.2f seconds per pass - ETA %.2f minutes\n", pass,
                pass * n_chunk / 60.0);
    }
    return 0;
}

/* Scores n rows of the chunk's logits against next[0..n) on the model's
 * threads, timed: against the base file's rows (base_in: into r->kl), or
 * -log p into r->nll (and the base file's rows into base when not NULL). */
static void score_rows(ppl_run *r, const int32_t *next, int n, bool strided, uint16_t *base,
                       const uint16_t *base_in, size_t row_len) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const eval_rows job = {.kind = base_in   ? EVAL_ROWS_KLD
                                   : base    ? EVAL_ROWS_BASE
                                   : strided ? EVAL_ROWS_NLL_STRIDED
                                             : EVAL_ROWS_NLL,
                           .logits = r->logits,
                           .n_vocab = r->n_vocab,
                           .n_rows = n,
                           .next = next,
                           .base = base,
                           .base_in = base_in,
                           .row_len = base ? eval_base_row_len(r->n_vocab) : row_len,
                           .nll = r->nll,
                           .kld = r->kl};
    eval_rows_score(r->m, &job);
    r->score_s += seconds_since(&t);
}

static int write_all(FILE *f, const void *p, size_t size, size_t n, const char *path) {
    if (fwrite(p, size, n, f) == n) return 0;
    fprintf(stderr, "hearth perplexity: cannot write '%s': %s\n", path, hr_strerror(errno));
    return 1;
}

/* The plain run: perplexity over every chunk, and the base file when asked. */
static int run_ppl(const ppl_opts *o, ppl_run *r, const int32_t *ids, size_t n) {
    if (n < 2 * (size_t)o->n_ctx) return too_short(o->text, n, 2 * o->n_ctx, o->n_ctx);
    const int n_max = (int)(n / (size_t)o->n_ctx);
    const int n_chunk = o->n_chunks < 0 || o->n_chunks > n_max ? n_max : o->n_chunks;
    const int scored = eval_scored(r->n_ctx);
    const size_t row_len = eval_base_row_len(r->n_vocab);
    FILE *f = NULL;
    uint16_t *rows = NULL;
    int rc = 0;
    if (o->base) {
        uint8_t head[EVAL_BASE_HEADER_SIZE];
        eval_base_header(head, r->n_ctx, r->n_vocab, n_chunk);
        f = fopen(o->base, "wb");
        rows = f ? hr_calloc(row_len * (size_t)scored, sizeof *rows) : NULL;
        if (!f || !rows) {
            fprintf(stderr, "hearth perplexity: cannot write '%s': %s\n", o->base,
                    f ? "no memory" : hr_strerror(errno));
            rc = 1;
        } else {
            rc = write_all(f, head, 1, sizeof head, o->base) ||
                 write_all(f, ids, sizeof *ids, (size_t)n_chunk * r->n_ctx, o->base);
        }
    }
    fprintf(stderr, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d\n",
            n_chunk, r->n_ctx, r->n_batch);
    double nll = 0, nll2 = 0;
    size_t count = 0;
    for (int i = 0; i < n_chunk && !rc; i++) {
        const int32_t *chunk = ids + (size_t)i * r->n_ctx;
        rc = run_chunk(r, chunk, i, n_chunk, r->bos);
        if (!rc) score_rows(r, chunk + r->first + 1, scored, false, rows, NULL, 0);
        for (int j = 0; j < scored && !rc; j++) {
            nll += r->nll[j];
            nll2 += r->nll[j] * r->nll[j];
        }
        if (!rc && rows) rc = write_all(f, rows, sizeof *rows, row_len * (size_t)scored, o->base);
        count += (size_t)scored;
        if (o->out_type == 0) {
            printf("[%d]%.4f,", i + 1, exp(nll / (double)count));
        } else {
            const double av = nll / (double)count;
            double av2 = nll2 / (double)count - av * av;
            if (av2 > 0) av2 = sqrt(av2 / (double)(count - 1));
            printf("%8d  %.4f  %4f  %4f\n", i * r->n_ctx, exp(nll / (double)count), av, av2);
        }
        fflush(stdout);
    }
    if (f && fclose(f) != 0 && !rc) {
        fprintf(stderr, "hearth perplexity: cannot write '%s': %s\n", o->base, hr_strerror(errno));
        rc = 1;
    }
    free(rows);
    if (rc) return rc;
    printf("\n");
    double ppl, unc;
    if (!eval_ppl_final(nll, nll2, count, &ppl, &unc)) {
        fprintf(stderr, "hearth perplexity: no uncertainty: the log-probabilities do not vary\n");
        return 1;
    }
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, unc);
    return 0;
}

/* --ppl-stride N: llama-perplexity's strided windows, one every N tokens,
 * the last N of each scored. A window is its whole context: -c + N/2
 * rounded up to a multiple of 256, as llama.cpp sizes contexts (with -b at
 * most -c; larger, its parallel sequences make a window that does not fit).
 * Each window's first token stays the text's (llama-perplexity puts BOS
 * there only after the decode). */
static int run_strided(const ppl_opts *o, ppl_run *r, const int32_t *ids, size_t n) {
    const int win = r->n_ctx;
    if (n < 2 * (size_t)win) return too_short(o->text, n, 2 * win, win);
    const int n_max = (int)((n - (size_t)win + (size_t)o->stride - 1) / (size_t)o->stride);
    const int n_chunk = o->n_chunks < 0 || o->n_chunks > n_max ? n_max : o->n_chunks;
    fprintf(stderr, "perplexity: computing over %d chunks, n_ctx=%d, batch_size=%d, stride=%d\n",
            n_chunk, win, r->n_batch, o->stride);
    double nll = 0;
    size_t count = 0;
    for (int i = 0; i < n_chunk; i++) {
        const int32_t *chunk = ids + (size_t)i * o->stride;
        if (run_chunk(r, chunk, i, n_chunk, -1)) return 1;
        score_rows(r, chunk + r->first + 1, o->stride, true, NULL, NULL, 0);
        for (int j = 0; j < o->stride; j++) nll += r->nll[j];
        count += (size_t)o->stride;
        if (o->out_type == 0)
            printf("[%d]%.4f,", i + 1, exp(nll / (double)count));
        else
            printf("%8d  %.4f\n", i * o->stride, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\nFinal estimate: PPL = %.4f\n", exp(nll / (double)count));
    return 0;
}

/* sqrt of an uncertainty's square, 0 where rounding left it below 0 (where
 * llama-perplexity prints nan) */
static double root(double x) { return x > 0 ? sqrt(x) : 0; }

/* The RMS of Δp with its uncertainty, from the mean of Δp^2. */
static eval_stat rms_of(eval_stat mse) {
    const double rms = sqrt(mse.val);
    return (eval_stat){rms, rms > 0 ? 0.5 / rms * mse.unc : 0};
}

/* The share of positions whose top token agrees, with its binomial error. */
static eval_stat same_top(const eval_kld *k) {
    const double p = (double)k->n_same_top / (double)k->count;
    return (eval_stat){p, k->count > 1 ? root(p * (1 - p) / (double)(k->count - 1)) : 0};
}

/* ln(PPL(Q)/PPL(base)) with its uncertainty. */
static eval_stat log_ratio(const eval_kld *k) {
    const eval_stat lp = eval_mean(k->sum_nll, k->sum_nll2, k->count);
    const eval_stat lb = eval_mean(k->sum_nll_base, k->sum_nll_base2, k->count);
    const double cov = eval_cov(k->sum_nll, k->sum_nll_base, k->sum_nll_nll_base, k->count);
    return (eval_stat){lp.val - lb.val, root(lp.unc * lp.unc + lb.unc * lb.unc - 2.0 * cov)};
}

/* One line of the KL table per chunk, as llama-perplexity prints it. */
static void kld_line(const eval_kld *k, int chunk) {
    const eval_stat lp = eval_mean(k->sum_nll, k->sum_nll2, k->count), ratio = log_ratio(k);
    const eval_stat kl = eval_mean(k->sum_kld, k->sum_kld2, k->count);
    const eval_stat rms = rms_of(eval_mean(k->sum_p_diff2, k->sum_p_diff4, k->count));
    const eval_stat top = same_top(k);
    printf("%4d    %9.4f ± %9.4f", chunk, exp(lp.val), exp(lp.val) * lp.unc);
    printf("    %10.5f ± %10.5f", ratio.val, ratio.unc);
    printf("    %10.5f ± %10.5f", kl.val, kl.unc);
    printf("    %6.3f ± %6.3f %%", 100.0 * rms.val, 100.0 * rms.unc);
    printf("    %6.3f ± %6.3f %%\n", 100.0 * top.val, 100.0 * top.unc);
    fflush(stdout);
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The rows from Maximum to Minimum of one sorted series, as a fraction
 * (KLD) or in percent (Δp, which adds 75% and 25%). */
static void kld_percentiles(const float *v, size_t n, const char *name, bool pct) {
    static const struct {
        const char *label;
        float at; /* > 1: the maximum, < 0: the minimum, 0.5: the median */
        bool pct_only;
    } rows[] = {{"Maximum", 2, 0},  {"99.9%", 0.999f, 0}, {"99.0%", 0.99f, 0}, {"95.0%", 0.95f, 0},
                {"90.0%", 0.9f, 0}, {"75.0%", 0.75f, 1},  {"Median", 0.5f, 0}, {"25.0%", 0.25f, 1},
                {"10.0%", 0.1f, 0}, {" 5.0%", 0.05f, 0},  {" 1.0%", 0.01f, 0}, {" 0.1%", 0.001f, 0},
                {"Minimum", -1, 0}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].pct_only && !pct) continue;
        const float at = rows[i].at;
        const double x = at > 1       ? v[n - 1]
                         : at < 0     ? v[0]
                         : at == 0.5f ? eval_median(v, n)
                                      : eval_percentile(v, n, at);
        if (pct)
            printf("%-8s%s: %6.3f%%\n", rows[i].label, name, 100.0 * x);
        else
            printf("%-8s%s: %10.6f\n", rows[i].label, name, x);
    }
}

/* llama-perplexity's closing statistics of a --kl-divergence run. */
static void kld_summary(const eval_kld *k, float *kld, float *dp) {
    const size_t n = k->count;
    qsort(kld, n, sizeof *kld, cmp_float);
    qsort(dp, n, sizeof *dp, cmp_float);
    const eval_stat lp = eval_mean(k->sum_nll, k->sum_nll2, n);
    const eval_stat lb = eval_mean(k->sum_nll_base, k->sum_nll_base2, n), ratio = log_ratio(k);
    const double cov = eval_cov(k->sum_nll, k->sum_nll_base, k->sum_nll_nll_base, n);
    const double ppl = exp(lp.val), ppl_unc = ppl * lp.unc;
    const double base = exp(lb.val), base_unc = base * lb.unc;
    printf("====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", ppl, ppl_unc);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", base, base_unc);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * cov / (lp.unc * lb.unc));
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", ratio.val, ratio.unc);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", exp(ratio.val),
           exp(ratio.val) * ratio.unc);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n\n", ppl - base,
           root(ppl_unc * ppl_unc + base_unc * base_unc - 2.0 * ppl * base * cov));
    printf("====== KL divergence statistics ======\n");
    const eval_stat kl = eval_mean(k->sum_kld, k->sum_kld2, n);
    printf("Mean    KLD: %10.6f ± %10.6f\n", kl.val, kl.unc);
    kld_percentiles(kld, n, "KLD", false);
    printf("\n====== Token probability statistics ======\n");
    const eval_stat d = eval_mean(k->sum_p_diff, k->sum_p_diff2, n);
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100.0 * d.val, 100.0 * d.unc);
    kld_percentiles(dp, n, "Δp", true);
    const eval_stat rms = rms_of(eval_mean(k->sum_p_diff2, k->sum_p_diff4, n)), top = same_top(k);
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100.0 * rms.val, 100.0 * rms.unc);
    printf("Same top p: %6.3f ± %5.3f %%\n", 100.0 * top.val, 100.0 * top.unc);
}

/* With -f beside --kl-divergence: the base file must hold that text's tokens. */
static int check_same_text(const ppl_opts *o, const ppl_run *r, const eval_base *b, int n_chunk) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (text_tokens(o, r->m, &ids, &n)) return 1;
    const size_t want = (size_t)n_chunk * b->n_ctx;
    const bool same = n >= want && !memcmp(ids, b->tokens, want * sizeof *ids);
    free(ids);
    if (same) return 0;
    fprintf(stderr,
            "hearth perplexity: %s's tokens are not those of %s: the base was made from "
            "another text or tokenizer\n",
            o->base, o->text);
    return 1;
}

/* Reads and checks the base file against the model and the options. */
static int open_base(const ppl_opts *o, const hearth_model *m, hr_map *map, eval_base *b) {
    if (hr_map_open(map, o->base)) return cli_fail("perplexity", "reading the base file");
    hearth_err err = eval_base_parse(map->data, map->size, b);
    const char *bad = NULL;
    char why[160];
    if (!err && b->n_vocab != hearth_model_n_vocab(m)) {
        snprintf(why, sizeof why, "its vocabulary has %d tokens, this model's %d", b->n_vocab,
                 hearth_model_n_vocab(m));
        bad = why;
    } else if (!err && o->ctx_given && b->n_ctx != o->n_ctx) {
        snprintf(why, sizeof why, "it was made with a context of %d, not %d (-c)", b->n_ctx,
                 o->n_ctx);
        bad = why;
    }
    if (!err && !bad) return 0;
    if (bad)
        fprintf(stderr, "hearth perplexity: '%s' is another model's or run's: %s\n", o->base, bad);
    else
        fprintf(stderr, "hearth perplexity: '%s': %s\n", o->base, hearth_last_error());
    hr_map_close(map);
    return 1;
}

/* --kl-divergence: this model on the base file's tokens, against its rows. */
static int run_kld(const ppl_opts *o, ppl_run *r, const eval_base *b) {
    const int n_chunk = o->n_chunks < 0 || o->n_chunks > b->n_chunk ? b->n_chunk : o->n_chunks;
    if (o->text && check_same_text(o, r, b, n_chunk)) return 1;
    const int scored = eval_scored(b->n_ctx);
    const size_t n = (size_t)n_chunk * scored;
    float *kld = hr_calloc(n, sizeof *kld), *dp = hr_calloc(n, sizeof *dp);
    int rc = kld && dp ? 0 : cli_fail("perplexity", "allocating");
    eval_kld k = {0};
    fprintf(stderr, "perplexity: computing over %d chunks, n_ctx=%d, batch_size=%d\n", n_chunk,
            b->n_ctx, r->n_batch);
    for (int i = 0; i < n_chunk && !rc; i++) {
        const int32_t *chunk = b->tokens + (size_t)i * b->n_ctx;
        rc = run_chunk(r, chunk, i, n_chunk, r->bos);
        if (!rc && i == 0)
            printf("\nchunk             PPL               ln(PPL(Q)/PPL(base))          KL "
                   "Divergence              Δp RMS            Same top p\n");
        const uint16_t *rows = b->rows + (size_t)i * scored * b->row_len;
        if (!rc) score_rows(r, chunk + r->first + 1, scored, false, NULL, rows, b->row_len);
        for (int j = 0; j < scored && !rc; j++) { /* added in order: the same sums */
            const size_t at = (size_t)i * scored + j;
            eval_kld_accum(&k, &r->kl[j]);
            kld[at] = (float)r->kl[j].kld;
            dp[at] = r->kl[j].p_diff;
        }
        if (!rc) kld_line(&k, i + 1);
    }
    if (!rc) printf("\n");
    if (!rc && k.count < 100)
        fprintf(stderr,
                "perplexity: %zu positions scored: too few for statistics (100 at "
                "least, as llama-perplexity)\n",
                k.count);
    else if (!rc)
        kld_summary(&k, kld, dp);
    free(kld);
    free(dp);
    return rc;
}

/* Loads the model (one with an output layer). */
static int load_model(ppl_opts *o, ppl_run *r) {
    cli_model_params(&o->lora, &o->mp);
    if (hearth_model_load(o->model, &o->mp, &r->m)) return cli_fail("perplexity", "loading");
    if (!hearth_model_generates(r->m)) {
        fprintf(stderr,
                "hearth perplexity: %s (%s) has no output layer: an embedding model gives no "
                "token probabilities\n",
                o->model, hearth_model_arch(r->m));
        return 1;
    }
    r->n_vocab = hearth_model_n_vocab(r->m);
    r->bos = eval_chunk_bos(r->m);
    return 0;
}

/* The session for chunks of n_ctx tokens scored from `first`. */
static int open_session(ppl_opts *o, ppl_run *r, int n_ctx, int first) {
    if (first < 0) {
        fprintf(stderr, "hearth perplexity: --ppl-stride %d is too long for a context of %d\n",
                o->stride, o->n_ctx);
        return 2;
    }
    const int n_train = hearth_model_n_ctx_train(r->m);
    if (n_ctx > n_train)
        fprintf(stderr, "perplexity: the model was trained on only %d context tokens (%d asked)\n",
                n_train, n_ctx);
    r->n_ctx = n_ctx;
    r->first = first;
    r->n_batch = o->n_batch < n_ctx ? o->n_batch : n_ctx;
    o->sp.n_ctx = n_ctx;
    o->sp.n_batch = r->n_batch;
    if (hearth_session_new(r->m, &o->sp, &r->s))
        return cli_fail("perplexity", "creating a session");
    r->logits = hr_calloc((size_t)(n_ctx - first) * (size_t)r->n_vocab, sizeof *r->logits);
    r->nll = hr_calloc((size_t)(n_ctx - first), sizeof *r->nll);
    r->kl = hr_calloc((size_t)(n_ctx - first), sizeof *r->kl);
    return r->logits && r->nll && r->kl ? 0 : cli_fail("perplexity", "allocating the logits");
}

/* A benchmark: llama-perplexity's context for it is max(4, -np) x -c
 * tokens (its sequences run in parallel there); here one task's sequences
 * share the session in turn, and a task must fit in that context. */
static int run_bench(ppl_opts *o, ppl_run *r) {
    const int mult = o->n_parallel > 4 ? o->n_parallel : 4;
    if ((long)o->n_ctx * mult > (1L << 24)) {
        fprintf(stderr, "hearth perplexity: -c %d x %d sequences is too large a context\n",
                o->n_ctx, mult);
        return 2;
    }
    const int n_ctx = o->n_ctx * mult;
    o->sp.n_ctx = n_ctx;
    o->sp.n_batch = o->n_batch < n_ctx ? o->n_batch : n_ctx;
    if (hearth_session_new(r->m, &o->sp, &r->s))
        return cli_fail("perplexity", "creating a session");
    return ppl_bench_run(o->bench, o->text, o->binary, (size_t)o->n_tasks[o->bench], r->m, r->s,
                         n_ctx);
}

int cmd_perplexity(int argc, char **argv) {
    ppl_opts o = {
        .n_ctx = 512, .n_batch = 2048, .n_chunks = -1, .n_tasks[PPL_BENCH_HELLASWAG] = 400};
    o.mp = hearth_model_default_params();
    o.sp = hearth_session_default_params();
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    ppl_run r = {0};
    hr_map map = {0};
    eval_base b = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    rc = load_model(&o, &r);
    if (!rc && o.bench) {
        rc = run_bench(&o, &r);
        hearth_session_free(r.s);
        hearth_model_free(r.m);
        return rc;
    }
    if (!rc && o.kld)
        rc = open_base(&o, r.m, &map, &b);
    else if (!rc)
        rc = text_tokens(&o, r.m, &ids, &n);
    if (!rc) {
        const int win = o.kld      ? b.n_ctx
                        : o.stride ? (o.n_ctx + o.stride / 2 + 255) / 256 * 256
                                   : o.n_ctx;
        rc = open_session(&o, &r, win, o.stride ? win - o.stride - 1 : win / 2);
    }
    if (!rc)
        rc = o.kld      ? run_kld(&o, &r, &b)
             : o.stride ? run_strided(&o, &r, ids, n)
                        : run_ppl(&o, &r, ids, n);
    if (!rc && r.decode_s > 0)
        fprintf(stderr,
                "perplexity: %ld tokens evaluated in %.2f s: %.1f tokens/s; scoring %.2f s\n",
                r.n_evaluated, r.decode_s, (double)r.n_evaluated / r.decode_s, r.score_s);
    free(r.logits);
    free(r.nll);
    free(r.kl);
    free(ids);
    hr_map_close(&map);
    hearth_session_free(r.s);
    hearth_model_free(r.m);
    return rc;
}
