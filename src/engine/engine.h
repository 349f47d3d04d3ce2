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

/* Speculative decoding's proposals (spec.c) for the text hist[0..n_hist)
 * followed by `last`, at most max of them into out. spec_ngram: what
 * followed the latest earlier occurrence of the text's final size_n tokens;
 * returns how many. spec_draft: the draft session's greedy continuation
 * (it is brought to hold the text first, reusing the prefix it holds),
 * stopping before a token whose probability is under p_min or whose id is
 * not below n_vocab (the target's); *n_out receives how many. */
int spec_ngram(const int32_t *hist, int n_hist, int32_t last, int size_n, int max, int32_t *out);
hearth_err spec_draft(hearth_session *draft, const int32_t *hist, int n_hist, int32_t last, int max,
                      float p_min, int n_vocab, int32_t *out, int *n_out);

/* hearth_sampling's fields for llama.cpp's other samplers (sampler_opts.c):
 * their defaults, and smp_params from them with what they need from the
 * model (ignore_eos's bans merged with the biases, DRY's breakers as
 * tokens), held in x until smp_new has copied them. */
typedef struct engine_smp_extra {
    hearth_logit_bias *bias;
    smp_dry_breaker *brk;
} engine_smp_extra;
void engine_sampling_defaults(hearth_sampling *p);
hearth_err engine_smp_extra_fill(const hearth_model *m, const hearth_sampling *p, smp_params *sp,
                                 engine_smp_extra *x);
void engine_smp_extra_free(engine_smp_extra *x);

struct hearth_sampler {
    smp_sampler *smp;
    smp_vocab *vocab; /* the tokens' bytes, for a constraint (NULL without one) */
};

#endif
