/*
 * cmd_tokenize.c - `hearth tokenize -m FILE [--no-special] [--parse-special]
 * [--file F | TEXT]`: prints the token ids of a text, separated by spaces.
 * Only the vocabulary is loaded (gguf_open + tok_vocab_load), so it works on
 * vocabulary-only GGUF files too. Without TEXT or --file the text is stdin.
 */
#include "cli.h"

#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TEXT_MAX_BYTES = 256 << 20 }; /* a cap on text read from a file or stdin */

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: hearth tokenize -m FILE [--no-special] [--parse-special] [--file F | [--] TEXT]\n"
        "  prints the token ids of TEXT (or of file F, or of stdin) separated by spaces\n"
        "  -m, --model FILE   a GGUF file with tokenizer metadata (a vocab-only file is fine)\n"
        "  --no-special       do not add BOS/EOS\n"
        "  --parse-special    text such as <|eot_id|> becomes its special token\n"
        "  --file F           read the text from F\n");
}

/* Reads all of f into a heap buffer (caller frees); NULL on error or when
 * larger than TEXT_MAX_BYTES. */
static char *read_all(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= TEXT_MAX_BYTES) break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb, cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) break;
            *len = n;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

static int run(const char *model, const char *text, size_t len, bool add_special,
               bool parse_special) {
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 1;
    if (gguf_open(model, &f)) return cli_fail("tokenize", model);
    if (tok_vocab_load(f, &v)) {
        rc = cli_fail("tokenize", model);
        goto done;
    }
    gguf_close(f), f = NULL;
    /* measure, then encode: at most one token per byte plus BOS/EOS is the
     * usual bound, but measuring keeps it exact for every vocabulary */
    hearth_err err = tok_encode(v, text, len, add_special, parse_special, NULL, 0, &n);
    if (err && err != HEARTH_ERR_INVALID_ARG) {
        rc = cli_fail("tokenize", "tokenizing");
        goto done;
    }
    ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids || tok_encode(v, text, len, add_special, parse_special, ids, n, &n)) {
        rc = cli_fail("tokenize", "tokenizing");
        goto done;
    }
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(ids);
    tok_vocab_free(v);
    gguf_close(f);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL;
    bool add_special = true, parse_special = false, options = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && !strcmp(a, "--")) {
            options = false; /* what follows is TEXT, even if it starts with '-' */
        } else if (!options) {
            if (text) {
                fprintf(stderr, "hearth tokenize: more than one TEXT argument\n");
                return 2;
            }
            text = a;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "--file") && i + 1 < argc) {
            file = argv[++i];
        } else if (!strcmp(a, "--no-special")) {
            add_special = false;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "hearth tokenize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!text) {
            text = a;
        } else {
            fprintf(stderr, "hearth tokenize: more than one TEXT argument\n");
            usage(stderr);
            return 2;
        }
    }
    if (!model || (file && text)) {
        usage(stderr);
        return 2;
    }
    if (text) return run(model, text, strlen(text), add_special, parse_special);
    FILE *in = file ? fopen(file, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "hearth tokenize: cannot open '%s'\n", file);
        return 1;
    }
    size_t len = 0;
    char *buf = read_all(in, &len);
    if (file) fclose(in);
    if (!buf) {
        fprintf(stderr, "hearth tokenize: cannot read the text (or it exceeds %d MiB)\n",
                TEXT_MAX_BYTES >> 20);
        return 1;
    }
    int rc = run(model, buf, len, add_special, parse_special);
    free(buf);
    return rc;
}
