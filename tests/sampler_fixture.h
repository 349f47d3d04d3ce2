/*
 * sampler_fixture.h - what the sampler tests share: a sampler with every
 * stage off but temperature 1 (a plain softmax draw), its constructor, and
 * the order the references sort candidates in (logit down, then id), and
 * the reference chain's truncations written plainly.
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

/* The reference chain on m candidates: sorted, cut by top-k, top-p and
 * min-p as their definitions say, divided by the temperature; returns how
 * many survive. */
static int ref_truncate(smp_cand *out, int m, const smp_params *p) {
    qsort(out, (size_t)m, sizeof *out, cmp_ref);
    if (p->top_k > 0 && p->top_k < m) m = p->top_k;
    if (p->top_p < 1.0f) {
        double sum = 0, cum = 0;
        for (int i = 0; i < m; i++) sum += exp((double)out[i].logit - out[0].logit);
        int i = 0;
        while (i < m) {
            cum += exp((double)out[i].logit - out[0].logit);
            i++;
            if (cum >= p->top_p * sum) break;
        }
        m = i;
    }
    if (p->min_p > 0.0f) {
        int i = 1;
        while (i < m && exp((double)out[i].logit - out[0].logit) >= p->min_p) i++;
        m = i;
    }
    for (int i = 0; i < m; i++) out[i].logit /= p->temperature;
    return m;
}

#endif
