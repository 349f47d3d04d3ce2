/*
 * cmd_imatrix.c - `hearth imatrix`: llama-imatrix's importance matrix
 * (docs/quantize.md). The text is cut into chunks of -c tokens as
 * llama-perplexity cuts it (BOS in front of each); while each chunk is
 * evaluated, every product of the layers adds its inputs' squared
 * activations to its weight's sums (model/imatrix_collect.c). The second
 * half of each chunk is scored as it goes ("[1]12.3456,..."), and the
 * matrix is written every --output-frequency chunks and at the end, for
 * `hearth quantize --imatrix`.
 */
#include "cli.h"

#include "core/core.h"
#include "eval/eval.h"
#include "model/imatrix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char imatrix_usage[] =
    "usage: hearth imatrix -m FILE -f TEXT [-o imatrix.gguf] [--in-file F...] [options]\n"
    "       hearth imatrix --in-file F [--in-file F...] [-o imatrix.gguf]   (combine)\n"
    "       hearth imatrix --in-file F --show-statistics\n"
    "  llama-imatrix's importance matrix of a model on a text, for quantize --imatrix\n"
    "  -m, --model FILE    a GGUF model (F32, F16 or BF16 is best: the one to quantize)\n"
    "  -f, --file TEXT     calibration text\n"
    "  -o, --output FILE   where to write it (default imatrix.gguf)\n"
    "  --output-format gguf|dat  llama.cpp's GGUF file (default) or its legacy .dat\n"
    "  -c, --ctx-size N    tokens per chunk (default 512)\n"
    "  -b, --batch-size N  most tokens per decode call (default 2048; at most -c)\n"
    "  --chunks N          use only the first N chunks (default -1: all)\n"
    "  --chunk N           skip the first N chunks of the text\n"
    "  --output-frequency N  write the file every N chunks (default 10)\n"
    "  --save-frequency N  also keep a copy OUTPUT.at_K every N chunks (default 0: none)\n"
    "  --in-file F         start from this matrix (GGUF or .dat; repeat to add several up);\n"
    "                      without -f, write them combined\n"
    "  --show-statistics   print the statistics of the one --in-file per tensor and layer\n"
    "  --process-output    collect output.weight too (llama-imatrix leaves it out)\n"
    "  --no-ppl            do not score the chunks\n"
    "  -t N                threads (default: physical cores)\n";

enum { MAX_IN_FILES = 64 };

typedef struct imat_opts {
    const char *model, *text, *out;
    const char *in_files[MAX_IN_FILES];
    int n_in_files;
    int n_ctx, n_batch, n_chunks, from_chunk, out_freq, save_freq;
    bool process_output, ppl, legacy, show_stats;
    hearth_model_params mp;
} imat_opts;

/* 0, -1 (help printed) or 2 (usage, printed). */
static int parse(int argc, char **argv, imat_opts *o) {
    static const struct {
        const char *name, *alias;
        long lo, hi;
        size_t off;
    } ints[] = {
        {"-c", "--ctx-size", 16, 1L << 20, offsetof(imat_opts, n_ctx)},
        {"-b", "--batch-size", 16, 1L << 20, offsetof(imat_opts, n_batch)},
        {"--chunks", NULL, -1, 1L << 30, offsetof(imat_opts, n_chunks)},
        {"--chunk", "--from-chunk", 0, 1L << 30, offsetof(imat_opts, from_chunk)},
        {"--output-frequency", NULL, 1, 1L << 30, offsetof(imat_opts, out_freq)},
        {"--save-frequency", NULL, 0, 1L << 30, offsetof(imat_opts, save_freq)},
        {"-t", "--threads", 0, 1024, offsetof(imat_opts, mp.n_threads)},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(imatrix_usage, stdout);
            return -1;
        }
        if (!strcmp(a, "--process-output")) {
            o->process_output = true;
            continue;
        }
        if (!strcmp(a, "--no-ppl")) {
            o->ppl = false;
            continue;
        }
        if (!strcmp(a, "--show-statistics")) {
            o->show_stats = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth imatrix: option '%s' needs a value\n", a);
            return 2;
        }
        size_t k = 0;
        while (k < sizeof ints / sizeof ints[0] && strcmp(a, ints[k].name) &&
               (!ints[k].alias || strcmp(a, ints[k].alias)))
            k++;
        if (k < sizeof ints / sizeof ints[0]) {
            if (!cli_parse_int(v, ints[k].lo, ints[k].hi,
                               (int *)(void *)((char *)o + ints[k].off))) {
                fprintf(stderr, "hearth imatrix: %s wants a whole number in [%ld, %ld], not '%s'\n",
                        a, ints[k].lo, ints[k].hi, v);
                return 2;
            }
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            o->text = v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--output-file")) {
            o->out = v;
        } else if (!strcmp(a, "--in-file")) {
            if (o->n_in_files == MAX_IN_FILES) {
                fprintf(stderr, "hearth imatrix: at most %d --in-file\n", MAX_IN_FILES);
                return 2;
            }
            o->in_files[o->n_in_files++] = v;
        } else if (!strcmp(a, "--output-format") && (!strcmp(v, "gguf") || !strcmp(v, "dat"))) {
            o->legacy = v[0] == 'd';
        } else {
            fprintf(stderr, "hearth imatrix: unknown option or value '%s %s'\n%s", a, v,
                    imatrix_usage);
            return 2;
        }
    }
    const char *bad = o->show_stats && o->n_in_files != 1
                          ? "--show-statistics reads exactly one --in-file"
                      : !o->show_stats && !o->text && o->n_in_files == 0
                          ? "-f TEXT (with -m MODEL) or --in-file is required"
                      : !o->show_stats && o->text && !o->model ? "-f TEXT needs -m MODEL"
                                                               : NULL;
    if (bad) {
        fprintf(stderr, "hearth imatrix: %s\n%s", bad, imatrix_usage);
        return 2;
    }
    return 0;
}

/* The text's tokens, less the first --chunk chunks. */
static int text_tokens(const imat_opts *o, const hearth_model *m, int32_t **ids, size_t *n) {
    if (eval_tokenize_file(m, o->text, false, ids, n))
        return cli_fail("imatrix", "tokenizing the text");
    const size_t skip = (size_t)o->from_chunk * (size_t)o->n_ctx;
    if (o->from_chunk > 0) {
        if (skip + 2 * (size_t)o->n_ctx >= *n) {
            fprintf(stderr, "hearth imatrix: too few tokens left after skipping %d chunks\n",
                    o->from_chunk);
            return 1;
        }
        memmove(*ids, *ids + skip, (*n - skip) * sizeof **ids);
        *n -= skip;
    }
    if (*n < 2 * (size_t)o->n_ctx) {
        fprintf(stderr,
                "hearth imatrix: %s tokenizes to only %zu tokens: at least %d are needed for a "
                "context of %d (-c)\n",
                o->text, *n, 2 * o->n_ctx, o->n_ctx);
        return 1;
    }
    return 0;
}

/* Writes im to the output, or with at > 0 to its copy OUTPUT.at_AT. */
static int save_as(const imatrix *im, const imat_opts *o, uint32_t at) {
    char path[4096];
    if (at > 0 && snprintf(path, sizeof path, "%s.at_%u", o->out, at) >= (int)sizeof path) {
        fprintf(stderr, "hearth imatrix: output path too long\n");
        return 1;
    }
    if (imatrix_save(im, at > 0 ? path : o->out, o->legacy))
        return cli_fail("imatrix", "writing the matrix");
    return 0;
}

/* The matrix so far written out (main) and its copy OUTPUT.at_K (copy). */
static int save(imatrix_collector *c, const imat_opts *o, bool main, bool copy) {
    const imatrix *im;
    if (imatrix_collector_result(c, o->text, &im)) return cli_fail("imatrix", "writing the matrix");
    int rc = main ? save_as(im, o, 0) : 0;
    if (!rc && copy) rc = save_as(im, o, im->chunk_count);
    return rc;
}

/* The --in-file matrices added up, tokens per chunk -c (for a .dat). */
static int load_in_files(const imat_opts *o, imatrix **out) {
    imatrix *sum = hr_calloc(1, sizeof *sum);
    if (!sum) return cli_fail("imatrix", "allocating");
    for (int i = 0; i < o->n_in_files; i++) {
        fprintf(stderr, "imatrix: loading imatrix from '%s'\n", o->in_files[i]);
        imatrix *im = NULL;
        hearth_err err = imatrix_load(o->in_files[i], &im);
        if (!err) err = hr_wrap(imatrix_merge(sum, im, (uint32_t)o->n_ctx), "%s: ", o->in_files[i]);
        imatrix_free(im);
        if (err) {
            imatrix_free(sum);
            return cli_fail("imatrix", "combining the --in-file matrices");
        }
    }
    *out = sum;
    return 0;
}

/* llama-imatrix --show-statistics' tables: each tensor, then each layer's
 * figures weighted by the tensors' sizes. */
static int show_statistics(const imat_opts *o, const imatrix *im) {
    imatrix_stat *st;
    int64_t n;
    if (imatrix_stats(im, &st, &n)) return cli_fail("imatrix", "computing statistics");
    if (n == 0) {
        free(st);
        fprintf(stderr, "hearth imatrix: %s has no entry with data\n", o->in_files[0]);
        return 1;
    }
    printf("\nComputing statistics for %s (%d tensors)\n", o->in_files[0], (int)n);
    printf("\n%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", " Layer", "       Tensor",
           "          \u03a3(Act\u00b2)", "  Min", "            Max", "           \u03bc",
           "   \u03c3", " % Active", "N", "   Entropy", "E (norm)", "ZD", "  CosSim");
    for (int i = 0; i < 169; i++) putchar('=');
    putchar('\n');
    /* per layer: sums of elements x total, x zd, x cossim (float, in this order) */
    int max_layer = -1;
    for (int64_t i = 0; i < n; i++) max_layer = st[i].layer > max_layer ? st[i].layer : max_layer;
    float(*ws)[3] = hr_calloc((size_t)max_layer + 2, sizeof *ws);
    int *elements = hr_calloc((size_t)max_layer + 2, sizeof *elements);
    if (!ws || !elements) {
        free(ws), free(elements), free(st);
        return cli_fail("imatrix", "allocating");
    }
    for (int64_t i = 0; i < n; i++) {
        const imatrix_stat *s = &st[i];
        char layer[16] = "-";
        if (s->layer >= 0) snprintf(layer, sizeof layer, "%d", s->layer);
        printf("%5s\t%-20.*s\t%10.2f\t%8.4f\t%11.4f\t%6.2f\t%6.2f\t%8.2f%%\t%6d\t%10.4f\t%6.2f%%\t"
               "%10.2f%%\t%8.4f\n",
               layer, s->tensor_len, s->tensor, (double)s->total, (double)s->min, (double)s->max,
               (double)s->mean, (double)s->stddev, (double)(s->active * 100.0f), s->elements,
               (double)s->entropy, 100.0f * ((double)s->entropy / log2((double)s->elements)),
               (double)(100.0f * s->zd), (double)s->cossim);
        if (s->layer < 0) continue;
        float *w = ws[s->layer];
        w[0] += (float)s->elements * s->total;
        w[1] += (float)s->elements * s->zd;
        w[2] += (float)s->elements * s->cossim;
        elements[s->layer] += s->elements;
    }
    int layers = 0;
    for (int l = 0; l <= max_layer; l++) layers += elements[l] > 0;
    printf("\nComputing weighted average statistics per layer (%d layers)\n", layers);
    printf("\n%s\t%s\t%s\t%s\n", "  Layer", "     \u03bc\u03a3(Act\u00b2)", "      \u03bcZD",
           "\u03bcCosSim");
    printf("================================================\n");
    for (int l = 0; l <= max_layer; l++)
        if (elements[l] > 0)
            printf("%5d\t%14.2f\t%10.4f%%\t%6.4f\n", l, (double)(ws[l][0] / (float)elements[l]),
                   (double)(100.0f * (ws[l][1] / (float)elements[l])),
                   (double)(ws[l][2] / (float)elements[l]));
    printf("\n");
    free(ws), free(elements), free(st);
    return 0;
}

/* Evaluates the chunks with the collector attached, scoring and saving as
 * it goes. */
static int run(const imat_opts *o, hearth_model *m, hearth_session *s, imatrix_collector *c,
               const int32_t *ids, size_t n) {
    const int n_vocab = hearth_model_n_vocab(m), n_ctx = o->n_ctx;
    const int n_max = (int)(n / (size_t)n_ctx);
    const int n_chunk = o->n_chunks < 0 || o->n_chunks > n_max ? n_max : o->n_chunks;
    /* every row gets logits, as in llama-imatrix: a decode call is then never
     * cut at the scored half, so its products are the calls' own sizes (those
     * under 16 rows are not counted) and output.weight sees every row */
    const int first = n_ctx / 2, scored = eval_scored(n_ctx);
    const int32_t bos = eval_chunk_bos(m);
    float *logits = hr_calloc((size_t)n_ctx * (size_t)n_vocab, sizeof *logits);
    if (!logits) return cli_fail("imatrix", "allocating the logits");
    fprintf(stderr, "imatrix: computing over %d chunks, n_ctx=%d, batch_size=%d\n", n_chunk, n_ctx,
            o->n_batch < n_ctx ? o->n_batch : n_ctx);
    double nll = 0, nll2 = 0;
    size_t count = 0;
    int rc = 0;
    for (int i = 0; i < n_chunk && !rc; i++) {
        const int32_t *chunk = ids + (size_t)i * (size_t)n_ctx;
        if (eval_chunk(s, n_vocab, chunk, n_ctx, o->n_batch < n_ctx ? o->n_batch : n_ctx, 0, bos,
                       logits)) {
            rc = cli_fail("imatrix", "evaluating a chunk");
            break;
        }
        if (o->ppl) {
            /* rows n_ctx/2 .. n_ctx-2 predict the tokens after them */
            const float *rows = logits + (size_t)first * (size_t)n_vocab;
            for (int j = 0; j < scored; j++) {
                const double v =
                    eval_nll(rows + (size_t)j * (size_t)n_vocab, n_vocab, chunk[first + j + 1]);
                nll += v;
                nll2 += v * v;
            }
            count += (size_t)scored;
            printf("[%d]%.4f,", i + 1, exp(nll / (double)count));
            fflush(stdout);
        }
        /* chunks counted with an --in-file's, as llama-imatrix counts them */
        const int64_t done = imatrix_collector_tokens(c) / n_ctx;
        const bool main = done % o->out_freq == 0;
        const bool copy = o->save_freq > 0 && done % o->save_freq == 0;
        if (main || copy) rc = save(c, o, main, copy);
    }
    free(logits);
    if (!rc) rc = save(c, o, true, false);
    if (rc) return rc;
    double ppl, unc;
    if (o->ppl && eval_ppl_final(nll, nll2, count, &ppl, &unc))
        printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, unc);
    fprintf(stderr, "imatrix: %lld tokens per weight from %d chunks written to %s\n",
            (long long)imatrix_collector_tokens(c), n_chunk, o->out);
    return 0;
}

/* Collects on the text, from the --in-file matrices' sums when given. */
static int collect(const imat_opts *o, const imatrix *prior) {
    const size_t len = strlen(o->out);
    if (!o->legacy && (len < 5 || strcmp(o->out + len - 5, ".gguf") != 0))
        fprintf(stderr, "imatrix: writing GGUF to %s (--output-format dat for the legacy file)\n",
                o->out);
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    imatrix_collector *c = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    hearth_model_params mp = o->mp;
    if (hearth_model_load(o->model, &mp, &m)) return cli_fail("imatrix", "loading");
    int rc = text_tokens(o, m, &ids, &n); /* refuses a model without an output layer */
    if (!rc) {
        hearth_session_params sp = hearth_session_default_params();
        sp.n_ctx = o->n_ctx;
        sp.n_batch = o->n_batch < o->n_ctx ? o->n_batch : o->n_ctx;
        if (hearth_session_new(m, &sp, &s)) rc = cli_fail("imatrix", "creating a session");
    }
    if (!rc && imatrix_collector_new(m, o->process_output, (uint32_t)o->n_ctx, prior, &c))
        rc = cli_fail("imatrix", "preparing the collector");
    if (!rc) {
        imatrix_collector_attach(c, s);
        rc = run(o, m, s, c, ids, n);
    }
    imatrix_collector_free(c);
    free(ids);
    hearth_session_free(s);
    hearth_model_free(m);
    return rc;
}

int cmd_imatrix(int argc, char **argv) {
    imat_opts o = {.out = "imatrix.gguf",
                   .n_ctx = 512,
                   .n_batch = 2048,
                   .n_chunks = -1,
                   .out_freq = 10,
                   .ppl = true,
                   .mp = hearth_model_default_params()};
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    imatrix *prior = NULL;
    if (o.n_in_files > 0 && (rc = load_in_files(&o, &prior))) return rc;
    if (o.show_stats)
        rc = show_statistics(&o, prior);
    else if (o.text)
        rc = collect(&o, prior);
    else { /* only the --in-file matrices, combined */
        fprintf(stderr, "imatrix: writing the %s to %s\n",
                o.n_in_files > 1 ? "combined matrices" : "matrix", o.out);
        rc = save_as(prior, &o, 0);
    }
    imatrix_free(prior);
    return rc;
}
