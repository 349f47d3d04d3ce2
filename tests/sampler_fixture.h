/*
 * sampler_fixture.h - what the sampler tests share: a sampler with every
 * stage off but temperature 1 (a plain softmax draw), its constructor, and
 * the order the references sort candidates in (logit down, then id).
 */
#ifndef HEARTH_TESTS_SAMPLER_FIXTURE_H
#define HEARTH_TESTS_SAMPLER_FIXTURE_H

#include "sampling/sampling.h"
#include "test.h"

#include <stdio.h>

static smp_params plain_params(uint64_t seed) {
    smp_params p = smp_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.penalty_last_n = 0;
    p.seed = seed;
    return p;
}

static smp_sampler *make(int32_t n_vocab, const smp_params *p) {
    smp_sampler *s = NULL;
    hearth_err err = smp_new(n_vocab, p, &s);
    if (err) fprintf(stderr, "smp_new: %s\n", hearth_last_error());
    REQUIRE(err == HEARTH_OK && s);
    return s;
}

static int cmp_ref(const void *a, const void *b) {
    const smp_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

#endif
