/*
 * cmd_embed.c - `hearth embed -m FILE [options] [TEXT]`: prints a text's
 * embedding as a JSON array. Without TEXT, every line of stdin (or --file)
 * is one text and its vector one output line (JSONL), so a corpus can be
 * embedded with one model load. Empty lines are skipped, not embedded.
 * Lines are embedded in batches (hearth_embed_batch: short texts share
 * forward passes), each vector what the line gets alone.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth embed -m FILE [options] [--file F | [--] TEXT]\n"
            "  prints the embedding of TEXT as a JSON array; without TEXT, one array per line\n"
            "  of F (or stdin), each line one text\n"
            "  -m, --model FILE   a GGUF model\n"
            "  --pooling P        mean|cls|last (default: the model's pooling_type, else mean)\n"
            "  --no-normalize     print the pooled vector as is (default: unit length)\n"
            "  --ctx N            longest text in tokens (default: min(model's, 4096))\n"
            "  -t N               threads (default: physical cores)\n"
            "  --file F           read the texts from F, one per line\n" CLI_MODEL_USAGE);
}

/* Lines batched: up to EMBED_BATCH_TEXTS texts of EMBED_BATCH_TOKENS tokens
 * in all (a longer text goes alone), about one forward pass of the default
 * batch. */
enum { EMBED_BATCH_TEXTS = 64, EMBED_BATCH_TOKENS = 512 };

typedef struct embedder {
    hearth_model *model;
    hearth_session *session;
    hearth_pooling pooling;
    bool normalize;
    int32_t *ids; /* [n_ctx] one text's tokens */
    float *vec;   /* [EMBED_BATCH_TEXTS][n_embd] */
    /* the batch waiting to be embedded: its texts' tokens back to back */
    int32_t *batch; /* [max(n_ctx, EMBED_BATCH_TOKENS)] */
    int lens[EMBED_BATCH_TEXTS];
    int n_texts, n_tokens;
    long first_line, last_line; /* the batch's, for an error */
} embedder;

/* Tokenizes text[0..len) into e->ids; *n receives the count. */
static int tokenize(embedder *e, const char *text, size_t len, const char *what, int *n) {
    const int n_ctx = hearth_session_n_ctx(e->session);
    size_t k = 0;
    hearth_err err = hearth_tokenize(e->model, text, len, true, false, e->ids, (size_t)n_ctx, &k);
    if (err == HEARTH_ERR_INVALID_ARG && k > (size_t)n_ctx) {
        fprintf(stderr, "hearth embed: %s: %zu tokens exceed the context of %d (--ctx)\n", what, k,
                n_ctx);
        return 1;
    }
    if (err) return cli_fail("embed", what);
    *n = (int)k;
    return 0;
}

static void print_vector(const embedder *e, const float *v) {
    const int d = hearth_model_n_embd(e->model);
    putchar('[');
    for (int i = 0; i < d; i++) printf(i ? ",%.9g" : "%.9g", (double)v[i]);
    fputs("]\n", stdout);
}

/* Embeds and prints the waiting batch (if any). */
static int flush(embedder *e) {
    if (!e->n_texts) return 0;
    const int n = e->n_texts;
    e->n_texts = e->n_tokens = 0;
    if (hearth_embed_batch(e->session, e->batch, e->lens, n, e->pooling, e->normalize, e->vec)) {
        char what[64];
        snprintf(what, sizeof what, "lines %ld-%ld", e->first_line, e->last_line);
        return cli_fail("embed", what);
    }
    const size_t d = (size_t)hearth_model_n_embd(e->model);
    for (int i = 0; i < n; i++) print_vector(e, e->vec + (size_t)i * d);
    return 0;
}

/* Embeds text[0..len) and prints it; what names it in an error. */
static int embed_one(embedder *e, const char *text, size_t len, const char *what) {
    int n = 0;
    if (tokenize(e, text, len, what, &n)) return 1;
    if (hearth_embed(e->session, e->ids, n, e->pooling, e->normalize, e->vec))
        return cli_fail("embed", what);
    print_vector(e, e->vec);
    return 0;
}

/* Adds line no's text to the batch, embedding the batch first when it is
 * full. */
static int embed_line(embedder *e, const char *text, size_t len, long no) {
    char what[48];
    snprintf(what, sizeof what, "line %ld", no);
    int n = 0, rc = tokenize(e, text, len, what, &n);
    if (rc) return rc;
    if (e->n_texts == EMBED_BATCH_TEXTS || (e->n_texts && e->n_tokens + n > EMBED_BATCH_TOKENS))
        if ((rc = flush(e))) return rc;
    if (!e->n_texts) e->first_line = no;
    e->last_line = no;
    memcpy(e->batch + e->n_tokens, e->ids, (size_t)n * sizeof *e->ids);
    e->lens[e->n_texts++] = n;
    e->n_tokens += n;
    return 0;
}

/* A line is one text; a text longer than the context fails anyway, so the
 * limit only stops a file without newlines from filling memory. */
enum { EMBED_LINE_MAX = 16 << 20 };

static int embed_lines(embedder *e, FILE *in) {
    char *line;
    size_t len;
    int rc = 0, got;
    for (long no = 1; rc == 0 && (got = cli_read_line(in, EMBED_LINE_MAX, &line, &len)); no++) {
        if (got < 0) {
            /* the lines before it are printed first, as they were line by line */
            if (flush(e) == 0)
                fprintf(stderr, "hearth embed: line %ld: %s\n", no,
                        got == -1 ? "longer than 16 MiB" : "cannot read the input");
            return 1;
        }
        if (len) rc = embed_line(e, line, len, no);
        free(line);
    }
    /* after a failing line too: what came before it is printed */
    const int rf = flush(e);
    return rc ? rc : rf;
}

static int bad_number(const char *opt, const char *v) {
    fprintf(stderr, "hearth embed: %s wants a positive integer, not '%s'\n", opt, v);
    return 2;
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL, *pooling = NULL;
    int n_ctx = 0, n_threads = 0;
    bool normalize = true, options = true;
    cli_model_opts lora = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int lr = options ? cli_model_opt("embed", argc, argv, &i, &lora) : 0;
        if (lr < 0) return 2;
        if (lr) continue;
        if (options && !strcmp(a, "--")) {
            options = false;
        } else if (options && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            return 0;
        } else if (options && (!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (options && !strcmp(a, "--file") && i + 1 < argc) {
            file = argv[++i];
        } else if (options && !strcmp(a, "--pooling") && i + 1 < argc) {
            pooling = argv[++i];
        } else if (options && !strcmp(a, "--ctx") && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], 1, 1 << 24, &n_ctx)) return bad_number(a, argv[i]);
        } else if (options && !strcmp(a, "-t") && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], 1, 1024, &n_threads)) return bad_number(a, argv[i]);
        } else if (options && !strcmp(a, "--no-normalize")) {
            normalize = false;
        } else if (options && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "hearth embed: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!text) {
            text = a;
        } else {
            fprintf(stderr, "hearth embed: more than one TEXT argument\n");
            return 2;
        }
    }
    hearth_pooling pool = HEARTH_POOL_MEAN;
    if (!model || (file && text) || (pooling && !hearth_pooling_parse(pooling, &pool))) {
        usage(stderr);
        return 2;
    }
    embedder e = {.normalize = normalize};
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = n_threads;
    cli_model_params(&lora, &mp);
    if (hearth_model_load(model, &mp, &e.model)) return cli_fail("embed", model);
    e.pooling = pooling ? pool : hearth_model_pooling(e.model);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    int rc = 1;
    if (hearth_session_new(e.model, &sp, &e.session)) {
        rc = cli_fail("embed", "creating the session");
        goto done;
    }
    const int ctx = hearth_session_n_ctx(e.session);
    e.ids = malloc((size_t)ctx * sizeof *e.ids);
    e.vec =
        malloc((size_t)EMBED_BATCH_TEXTS * (size_t)hearth_model_n_embd(e.model) * sizeof *e.vec);
    e.batch =
        malloc((size_t)(n_ctx > EMBED_BATCH_TOKENS ? n_ctx : EMBED_BATCH_TOKENS) * sizeof *e.batch);
    if (!e.ids || !e.vec || !e.batch) {
        fprintf(stderr, "hearth embed: out of memory\n");
        goto done;
    }
    if (text) {
        rc = embed_one(&e, text, strlen(text), "the text");
    } else {
        FILE *in = file ? fopen(file, "rb") : stdin;
        if (!in) {
            fprintf(stderr, "hearth embed: cannot open '%s'\n", file);
            goto done;
        }
        rc = embed_lines(&e, in);
        if (file) fclose(in);
    }
    if (fflush(stdout) != 0) rc = 1;
done:
    free(e.ids);
    free(e.vec);
    free(e.batch);
    hearth_session_free(e.session);
    hearth_model_free(e.model);
    return rc;
}
