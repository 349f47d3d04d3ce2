/*
 * cmd_rerank.c - `hearth rerank -m FILE -q QUERY [DOC...]`: scores documents
 * against a query with a reranker (hearth_rank_batch) and prints them best
 * first, one JSON line each: {"index": i, "score": s, "document": "..."},
 * index counting the documents from 0 in the order given. Without DOC
 * arguments every non-empty line of --file (or stdin) is one document.
 */
#include "cli.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth rerank -m FILE -q QUERY [options] [--file F | [--] DOC...]\n"
            "  scores each document against the query with a reranker (bge-reranker,\n"
            "  ms-marco-MiniLM, Qwen3-Reranker, ...) and prints them best first as JSON\n"
            "  lines {\"index\", \"score\", \"document\"}; without DOC, each non-empty line of\n"
            "  F (or stdin) is a document\n"
            "  -m, --model FILE   a GGUF reranker (pooling_type rank)\n"
            "  -q, --query TEXT   the query\n"
            "  --top-n N          print the N best only\n"
            "  --ctx N            longest query + document in tokens (default: min(model's, "
            "4096))\n"
            "  -t N               threads (default: physical cores)\n"
            "  --file F           read the documents from F, one per line\n");
}

typedef struct docs {
    char **text;
    int n, cap;
} docs;

static int add_doc(docs *d, char *text) {
    if (d->n == d->cap) {
        const int cap = d->cap ? 2 * d->cap : 16;
        char **t = realloc(d->text, (size_t)cap * sizeof *t);
        if (!t) return -1;
        d->text = t;
        d->cap = cap;
    }
    d->text[d->n++] = text;
    return 0;
}

enum { RERANK_LINE_MAX = 16 << 20 };

static int read_docs(docs *d, FILE *in) {
    char *line;
    size_t len;
    int got;
    for (long no = 1; (got = cli_read_line(in, RERANK_LINE_MAX, &line, &len)); no++) {
        if (got < 0) {
            fprintf(stderr, "hearth rerank: line %ld: %s\n", no,
                    got == -1 ? "longer than 16 MiB" : "cannot read the input");
            return 1;
        }
        if (!len) {
            free(line);
        } else if (add_doc(d, line)) {
            free(line);
            fprintf(stderr, "hearth rerank: out of memory\n");
            return 1;
        }
    }
    return 0;
}

/* Every pair's tokens back to back into *ids, their counts into lens. */
static int tokenize_pairs(hearth_model *m, const char *query, const docs *d, int n_ctx,
                          int32_t **ids, int *lens) {
    size_t n_ids = 0, cap = 0;
    for (int i = 0; i < d->n; i++) {
        const size_t room = (size_t)n_ctx;
        if (cap - n_ids < room) {
            cap = 2 * (n_ids + room);
            int32_t *p = realloc(*ids, cap * sizeof *p);
            if (!p) return cli_fail("rerank", "tokenizing");
            *ids = p;
        }
        size_t k = 0;
        const hearth_err err = hearth_tokenize_rerank(m, query, strlen(query), d->text[i],
                                                      strlen(d->text[i]), *ids + n_ids, room, &k);
        if (err == HEARTH_ERR_INVALID_ARG && k > room) {
            fprintf(stderr,
                    "hearth rerank: document %d: %zu tokens with the query exceed the context of "
                    "%d (--ctx)\n",
                    i, k, n_ctx);
            return 1;
        }
        if (err) return cli_fail("rerank", "tokenizing");
        lens[i] = (int)k;
        n_ids += k;
    }
    return 0;
}

static int print_ranked(const docs *d, const float *scores, int top_n) {
    int *order = malloc((size_t)d->n * sizeof *order);
    if (!order || hearth_rank_order(scores, d->n, order)) {
        free(order);
        return cli_fail("rerank", "sorting");
    }
    int rc = 0;
    for (int r = 0; r < d->n && (top_n <= 0 || r < top_n) && !rc; r++) {
        cJSON *o = cJSON_CreateObject();
        char *s = NULL;
        if (o && cJSON_AddNumberToObject(o, "index", order[r]) &&
            cJSON_AddNumberToObject(o, "score", scores[order[r]]) &&
            cJSON_AddStringToObject(o, "document", d->text[order[r]]))
            s = cJSON_PrintUnformatted(o);
        if (s)
            puts(s);
        else
            rc = cli_fail("rerank", "printing");
        cJSON_free(s);
        cJSON_Delete(o);
    }
    free(order);
    return rc;
}

static int bad_number(const char *opt, const char *v) {
    fprintf(stderr, "hearth rerank: %s wants a positive integer, not '%s'\n", opt, v);
    return 2;
}

int cmd_rerank(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *query = NULL;
    int n_ctx = 0, n_threads = 0, top_n = 0;
    bool options = true;
    docs d = {0};
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && !strcmp(a, "--")) {
            options = false;
        } else if (options && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            free(d.text);
            return 0;
        } else if (options && (!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (options && (!strcmp(a, "-q") || !strcmp(a, "--query")) && i + 1 < argc) {
            query = argv[++i];
        } else if (options && !strcmp(a, "--file") && i + 1 < argc) {
            file = argv[++i];
        } else if (options && (!strcmp(a, "--ctx") || !strcmp(a, "-t") || !strcmp(a, "--top-n")) &&
                   i + 1 < argc) {
            int *v = !strcmp(a, "--ctx") ? &n_ctx : !strcmp(a, "-t") ? &n_threads : &top_n;
            if (!cli_parse_int(argv[++i], 1, 1 << 24, v)) {
                free(d.text);
                return bad_number(a, argv[i]);
            }
        } else if (options && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "hearth rerank: unknown option '%s'\n", a);
            usage(stderr);
            free(d.text);
            return 2;
        } else if (add_doc(&d, argv[i])) {
            fprintf(stderr, "hearth rerank: out of memory\n");
            free(d.text);
            return 1;
        }
    }
    const bool own = d.n == 0; /* documents read from lines are ours to free */
    if (!model || !query || (file && !own)) {
        usage(stderr);
        free(d.text);
        return 2;
    }
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    int32_t *ids = NULL;
    int *lens = NULL;
    float *scores = NULL;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = n_threads;
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    if (hearth_model_load(model, &mp, &m)) {
        rc = cli_fail("rerank", model);
        goto done;
    }
    rc = 1;
    if (!hearth_model_ranks(m)) {
        fprintf(stderr, "hearth rerank: %s is not a reranker (its file has no pooling_type rank)\n",
                model);
        goto done;
    }
    if (own) {
        FILE *in = file ? fopen(file, "r") : stdin;
        if (!in) {
            fprintf(stderr, "hearth rerank: cannot open %s\n", file);
            goto done;
        }
        const int rr = read_docs(&d, in);
        if (in != stdin) fclose(in);
        if (rr) goto done;
    }
    if (d.n == 0) {
        rc = 0; /* nothing to rank */
        goto done;
    }
    if (hearth_session_new(m, &sp, &s)) {
        rc = cli_fail("rerank", "creating the session");
        goto done;
    }
    lens = malloc((size_t)d.n * sizeof *lens);
    scores = malloc((size_t)d.n * sizeof *scores);
    if (!lens || !scores) {
        rc = cli_fail("rerank", "out of memory");
        goto done;
    }
    if (tokenize_pairs(m, query, &d, hearth_session_n_ctx(s), &ids, lens)) goto done;
    if (hearth_rank_batch(s, ids, lens, d.n, scores)) {
        rc = cli_fail("rerank", "scoring");
        goto done;
    }
    rc = print_ranked(&d, scores, top_n);
done:
    if (own)
        for (int i = 0; i < d.n; i++) free(d.text[i]);
    free(d.text);
    free(ids);
    free(lens);
    free(scores);
    hearth_session_free(s);
    hearth_model_free(m);
    return rc;
}
