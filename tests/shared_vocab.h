/*
 * shared_vocab.h - a conformance vocabulary from ../shared
 * (conformance/tokenizer/ggml-vocab-NAME.gguf), loaded for the tests that
 * run the tokenizer or a constraint on real vocabularies. Header-only.
 */
#ifndef HEARTH_TEST_SHARED_VOCAB_H
#define HEARTH_TEST_SHARED_VOCAB_H

#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>

/* NULL with *err HEARTH_OK when the file is absent (said on stdout: the
 * caller skips that part); NULL with the load's error when it does not
 * load. */
static inline tok_vocab *shared_vocab(const char *name, hearth_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/ggml-vocab-%s.gguf", HEARTH_SHARED_DIR,
             name);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    *err = HEARTH_OK;
    if (gguf_open(path, &f) != HEARTH_OK) {
        printf("SKIP (%s): %s is absent\n", name, path);
        return NULL;
    }
    if ((*err = tok_vocab_load(f, &v))) fprintf(stderr, "%s: %s\n", path, hearth_last_error());
    gguf_close(f);
    return v;
}

#endif
