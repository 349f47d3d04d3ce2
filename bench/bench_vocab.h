/*
 * bench_vocab.h - what the constraint benchmarks (bench_grammar.c,
 * bench_json_mask.c) share: their command line "VOCAB.gguf [repeats]", the
 * vocabulary loaded, and the tokens of a text that brings a constraint to a
 * state.
 */
#ifndef HEARTH_BENCH_VOCAB_H
#define HEARTH_BENCH_VOCAB_H

#include "bench.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "PROG VOCAB.gguf [repeats]": 0 with *tv loaded (free with tok_vocab_free)
 * and *reps set; 2 after the usage, 1 when the file does not load (both
 * said on stderr). */
static inline int bench_vocab_open(int argc, char **argv, int default_reps, tok_vocab **tv,
                                   int *reps) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VOCAB.gguf [repeats]\n", argv[0]);
        return 2;
    }
    *reps = argc > 2 ? atoi(argv[2]) : default_reps;
    gguf_file *f = NULL;
    hearth_err err = gguf_open(argv[1], &f);
    if (!err) err = tok_vocab_load(f, tv);
    if (err) fprintf(stderr, "%s: %s\n", argv[1], hearth_last_error());
    gguf_close(f);
    return err ? 1 : 0;
}

/* The tokens of text, at most cap, without special tokens: their count, or
 * -1 when it does not encode (said on stderr). */
static inline int bench_tokens(const tok_vocab *tv, const char *text, int32_t *ids, size_t cap) {
    size_t n = 0;
    if (tok_encode(tv, text, strlen(text), false, false, ids, cap, &n)) {
        fprintf(stderr, "'%s': %s\n", text, hearth_last_error());
        return -1;
    }
    return (int)n;
}

#endif
