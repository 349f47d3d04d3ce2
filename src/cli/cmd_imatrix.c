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
    "usage: hearth imatrix -m FILE -f TEXT [-o imatrix.gguf] [options]\n"
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
    "  --process-output    collect output.weight too (llama-imatrix leaves it out)\n"
    "  --no-ppl            do not score the chunks\n"
    "  -t N                threads (default: physical cores)\n";

typedef struct imat_opts {
    const char *model, *text, *out;
    int n_ctx, n_batch, n_chunks, from_chunk, out_freq;
    bool process_output, ppl, legacy;
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
        } else if (!strcmp(a, "--output-format") && (!strcmp(v, "gguf") || !strcmp(v, "dat"))) {
            o->legacy = v[0] == 'd';
        } else {
            fprintf(stderr, "hearth imatrix: unknown option or value '%s %s'\n%s", a, v,
                    imatrix_usage);
            return 2;
        }
    }
    if (!o->model || !o->text) {
        fprintf(stderr, "hearth imatrix: -m MODEL and -f TEXT are required\n%s", imatrix_usage);
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

static int save(imatrix_collector *c, const imat_opts *o) {
    const imatrix *im;
    if (imatrix_collector_result(c, o->text, &im) || imatrix_save(im, o->out, o->legacy))
        return cli_fail("imatrix", "writing the matrix");
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
        if ((i + 1) % o->out_freq == 0) rc = save(c, o);
    }
    free(logits);
    if (!rc) rc = save(c, o);
    if (rc) return rc;
    double ppl, unc;
    if (o->ppl && eval_ppl_final(nll, nll2, count, &ppl, &unc))
        printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, unc);
    fprintf(stderr, "imatrix: %lld tokens per weight from %d chunks written to %s\n",
            (long long)imatrix_collector_tokens(c), n_chunk, o->out);
    return 0;
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
    const size_t len = strlen(o.out);
    if (!o.legacy && (len < 5 || strcmp(o.out + len - 5, ".gguf") != 0))
        fprintf(stderr, "imatrix: writing GGUF to %s (--output-format dat for the legacy file)\n",
                o.out);
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    imatrix_collector *c = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (hearth_model_load(o.model, &o.mp, &m)) return cli_fail("imatrix", "loading");
    rc = text_tokens(&o, m, &ids, &n); /* refuses a model without an output layer */
    if (!rc) {
        hearth_session_params sp = hearth_session_default_params();
        sp.n_ctx = o.n_ctx;
        sp.n_batch = o.n_batch < o.n_ctx ? o.n_batch : o.n_ctx;
        if (hearth_session_new(m, &sp, &s)) rc = cli_fail("imatrix", "creating a session");
    }
    if (!rc && imatrix_collector_new(m, o.process_output, (uint32_t)o.n_ctx, &c))
        rc = cli_fail("imatrix", "preparing the collector");
    if (!rc) {
        imatrix_collector_attach(c, s);
        rc = run(&o, m, s, c, ids, n);
    }
    imatrix_collector_free(c);
    free(ids);
    hearth_session_free(s);
    hearth_model_free(m);
    return rc;
}
