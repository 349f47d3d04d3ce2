/*
 * engine.h - the engine layer's private interface: the façade over model,
 * tokenizer and sampling that the public API (and later the server's
 * scheduler) uses.
 */
#ifndef HEARTH_ENGINE_H
#define HEARTH_ENGINE_H

#include "model/model.h"
#include "sampling/sampling.h"
#include "tokenizer/tokenizer.h"

/* The model's vocabulary, or NULL with an error recorded when the file has
 * none. */
const tok_vocab *engine_vocab(const hearth_model *m);

struct hearth_sampler {
    smp_sampler *smp;
    smp_vocab *vocab; /* the tokens' bytes, for a constraint (NULL without one) */
};

#endif
