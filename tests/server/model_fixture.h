/*
 * model_fixture.h - test models for the server tests: a copy of a GGUF file
 * with tokenizer.chat_template set (GGUF files without one are all the
 * conformance set has), and the path of a small model with a vocabulary
 * (tiny-llama from ../shared when present, else one written by synth_write).
 */
#ifndef HEARTH_TEST_MODEL_FIXTURE_H
#define HEARTH_TEST_MODEL_FIXTURE_H

#include "model/gguf.h"
#include "model/synth.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copies every key and tensor of src to dst, then sets tokenizer.chat_template
 * to tmpl (when not NULL). */
static inline hearth_err fixture_with_template(const char *src, const char *dst, const char *tmpl) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    hearth_err err = gguf_open(src, &f);
    if (!err) err = gguf_writer_new(&w);
    if (!err) err = gguf_writer_copy_kv(w, f);
    for (int64_t i = 0; !err && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        err = gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes);
    }
    if (!err && tmpl) err = gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    if (!err) err = gguf_writer_write(w, dst);
    gguf_writer_free(w);
    gguf_close(f);
    return err;
}

/* A model with a SentencePiece vocabulary: ../shared's tiny-llama, or a
 * random one written to `scratch`. Returns the path (static storage). */
static inline const char *fixture_model(const char *scratch) {
    static char path[8192];
    snprintf(path, sizeof path, "%s/conformance/models/tiny-llama/tiny-llama.Q8_0.gguf",
             HEARTH_SHARED_DIR);
    if (access(path, R_OK) == 0) return path;
    synth_params p = synth_default_params();
    p.arch = "llama";
    p.n_ctx = 256;
    if (synth_write(scratch, &p)) return NULL;
    snprintf(path, sizeof path, "%s", scratch);
    return path;
}

/* The opening of a test that drives `hearth serve`: *skip when curl is
 * missing (said on stdout, the test returns TEST_SKIP); else the scratch
 * directory is made from its mkdtemp template and the model's path returned
 * (fixture_model, written under scratch when ../shared is absent), NULL on
 * failure. */
static inline const char *fixture_server_model(const char *test, char *scratch, bool *skip) {
    *skip = system("curl --version > /dev/null 2>&1") != 0;
    if (*skip) {
        printf("%s: curl is not installed; skipping\n", test);
        return NULL;
    }
    if (!mkdtemp(scratch)) return NULL;
    char synth[4096];
    snprintf(synth, sizeof synth, "%s/synth.gguf", scratch);
    return fixture_model(synth);
}

/* A model slow enough that a generation of 1,500 tokens with EOS banned
 * takes well over 200 ms anywhere these tests run (wider, 4 layers,
 * context 2048), written to scratch/slow.gguf (path[cap]); its EOS id, -1
 * when it could not be written. */
static inline int fixture_slow_model(const char *scratch, char *path, size_t cap) {
    snprintf(path, cap, "%s/slow.gguf", scratch);
    synth_params p = synth_default_params();
    p.arch = "llama";
    p.n_embd = 256;
    p.n_layer = 4;
    p.n_ff = 1024;
    p.n_ctx = 2048;
    hearth_model *m = NULL;
    if (synth_write(path, &p) != HEARTH_OK || hearth_model_load(path, NULL, &m) != HEARTH_OK)
        return -1;
    const int eos = hearth_token_eos(m);
    hearth_model_free(m);
    return eos;
}

/* The end of such a test: the scratch directory goes when it passed, and
 * stays (said on stdout) for a look when it failed. */
static inline void fixture_server_cleanup(const char *test, const char *scratch, bool failed) {
    if (failed) {
        printf("%s: files kept in %s\n", test, scratch);
        return;
    }
    char rm[4200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", scratch);
    if (system(rm) != 0) printf("could not remove %s\n", scratch);
}

#endif
