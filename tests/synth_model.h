/*
 * synth_model.h - a small model with random weights and synth's
 * SentencePiece vocabulary (byte tokens, "▁the", "he", ...), written to a
 * fresh directory under /tmp and loaded with one thread, for tests that need
 * a vocabulary but no trained weights; synth_model_close unloads it and
 * removes the files.
 */
#ifndef HEARTH_TESTS_SYNTH_MODEL_H
#define HEARTH_TESTS_SYNTH_MODEL_H

#include "model/synth.h"
#include "test.h"

#include <unistd.h>

typedef struct synth_model {
    char dir[64], path[128];
    hearth_model *m;
} synth_model;

static inline hearth_model *synth_model_open(synth_model *s) {
    snprintf(s->dir, sizeof s->dir, "/tmp/hearth_synth_XXXXXX");
    REQUIRE(mkdtemp(s->dir));
    snprintf(s->path, sizeof s->path, "%s/synth.gguf", s->dir);
    synth_params sp = synth_default_params();
    sp.arch = "llama";
    sp.n_ctx = 64;
    REQUIRE(synth_write(s->path, &sp) == HEARTH_OK);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    s->m = NULL;
    REQUIRE(hearth_model_load(s->path, &mp, &s->m) == HEARTH_OK);
    return s->m;
}

static inline void synth_model_close(synth_model *s) {
    hearth_model_free(s->m);
    unlink(s->path);
    rmdir(s->dir);
}

#endif
