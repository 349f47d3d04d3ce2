/*
 * vocab_cases.h - runs a vocabulary on the inputs of a .inp file and compares
 * the ids with a .out file (the format of ../shared/conformance/tokenizer/:
 * inputs separated by "\n__ggml_vocab_test__\n", one line of ids each), and
 * checks that detokenizing gives the input back where the vocabulary allows
 * it. Header-only; for test_tokenizer and test_tokenizer_ugm.
 */
#ifndef HEARTH_TEST_VOCAB_CASES_H
#define HEARTH_TEST_VOCAB_CASES_H

#include "golden.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Does detokenize(tokenize(s)) == s hold for this vocabulary and input?
 * WordPiece lowercases and drops spaces, the unigram model normalizes
 * (tests of their own check those); GPT-2's clean-up rewrites " ," etc.,
 * so those vocabularies are compared after applying the clean-up's effect
 * (checked by running it on the input itself). */
static void check_round_trip(const tok_vocab *v, const char *name, const char *s, size_t len,
                             const int32_t *ids, size_t n) {
    if (tok_vocab_type(v) == TOK_TYPE_WPM || tok_vocab_type(v) == TOK_TYPE_UGM) return;
    size_t cap = len * 4 + 64, got = 0;
    char *out = malloc(cap);
    REQUIRE(out);
    hearth_err err = tok_detokenize(v, ids, n, false, false, out, cap, &got);
    CHECKF(err == HEARTH_OK, "%s: detokenize: %s", name, hearth_last_error());
    bool same = got == len && !memcmp(out, s, len);
    if (!same && tok_vocab_type(v) == TOK_TYPE_BPE) {
        /* with clean-up: compare with what the clean-up makes of s itself,
         * which is what detokenize must equal when the pieces are exact */
        size_t raw = 0;
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            tok_piece(v, ids[i], false, out + raw, cap - raw, &k);
            raw += k;
        }
        same = raw == len && !memcmp(out, s, len);
    }
    CHECKF(same, "%s: round trip of \"%.*s\" gives \"%.*s\"", name, (int)len, s, (int)got, out);
    free(out);
}

/* Every input of the .inp file `inp` against the ids of the .out file `outp`;
 * the number of cases that passed, *n_cases the number run. */
static int run_cases(const tok_vocab *v, const char *file, const char *inp, const char *outp,
                     int *n_cases_out) {
    size_t in_len = 0, out_len = 0;
    char *in = golden_read(inp, &in_len), *exp = golden_read(outp, &out_len);
    REQUIRE(in && exp);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    char *p = in, *line = exp;
    int n_cases = 0, n_ok = 0;
    int32_t ids[8192], want[8192];
    while (p < in + in_len) {
        char *end = strstr(p, sep);
        REQUIRE(end);
        size_t len = (size_t)(end - p);
        char *nl = strchr(line, '\n');
        REQUIRE(nl);
        *nl = '\0';
        size_t nw = 0;
        for (char *q = line; *q;) {
            char *e;
            long x = strtol(q, &e, 10);
            if (e == q) break;
            want[nw++] = (int32_t)x;
            q = e;
        }
        size_t n = 0;
        hearth_err err = tok_encode(v, p, len, false, false, ids, 8192, &n);
        bool ok = err == HEARTH_OK && n == nw && !memcmp(ids, want, n * sizeof *ids);
        n_cases++;
        n_ok += ok;
        CHECKF(ok, "%s case %d \"%.*s\"", file, n_cases, (int)len, p);
        if (!ok) {
            print_ids("want", want, nw);
            print_ids("got ", ids, n);
        }
        if (ok) check_round_trip(v, file, p, len, ids, n);
        p = end + sep_len;
        line = nl + 1;
    }
    free(in);
    free(exp);
    *n_cases_out = n_cases;
    return n_ok;
}

#endif
