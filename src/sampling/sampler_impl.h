/*
 * sampler_impl.h - the sampler's state, shared by the files that hold its
 * stages (private to src/sampling): sampler.c (the chain, bias, penalties,
 * top-k, top-p, min-p, temperature, the draw), stages.c (typical,
 * top-n-sigma, XTC, dynamic temperature), mirostat.c and dry.c.
 *
 * Candidates live in two buffers sized n_vocab at creation:
 *   sorted[0, n_sorted)  the best candidates, best first;
 *   rest[0, n_rest)      the others, each worse than every sorted one, kept as
 *                        a binary max-heap when rest_is_heap.
 * A stage that needs the i-th best candidate pops it from the heap on demand
 * (smp_have_rank); one that filters without an order may leave its result in
 * `rest`, unsorted, with n_sorted 0. Right after the fill, `rest` holds the
 * candidates in id order (rest_by_id), which DRY's lookup uses; a stage that
 * moves candidates within `rest` clears it. Nothing is allocated per token.
 */
#ifndef HEARTH_SAMPLER_IMPL_H
#define HEARTH_SAMPLER_IMPL_H

#include "gbnf.h"
#include "json_schema.h"
#include "sampling.h"

#include <float.h>
#include <math.h>

/* A candidate and a score a stage orders by (typical sampling's distance
 * from the entropy). */
typedef struct smp_scored {
    smp_cand c;
    double score;
} smp_scored;

/* DRY's state (dry.c): a ring of the last penalty_last_n accepted tokens and
 * what one draw's scan needs, sized at creation. */
typedef struct smp_dry {
    int32_t cap;          /* dry_penalty_last_n */
    int32_t *ring;        /* [cap] */
    int32_t head, len;    /* oldest at ring[head]; len <= cap */
    int32_t *hist;        /* [cap] the window oldest first, for one scan */
    int32_t *z;           /* [cap] repeat lengths by distance from the end */
    int32_t *best;        /* [n_vocab] longest repetition a token would extend, + 1; 0: none */
    int32_t *touched;     /* [cap] the tokens with best > 0 */
    smp_dry_breaker *brk; /* [n_brk] by head ascending */
    size_t n_brk;
} smp_dry;

struct smp_sampler {
    smp_params params;
    int32_t n_vocab;
    uint64_t seed; /* resolved: never SMP_SEED_RANDOM */
    hr_rng rng;
    hr_rng xtc_rng; /* XTC's own stream: a draw's tokens do not depend on whether XTC is on */

    smp_cand *rest;   /* [n_vocab] */
    smp_cand *sorted; /* [n_vocab] */
    float *weights;   /* [n_vocab] the draw's exp(logit - max), in walk order */
    size_t n_rest, n_sorted;
    bool rest_is_heap;
    bool rest_by_id; /* n_sorted 0 and rest[0, n_rest) by id ascending, as the fill leaves it */
    bool greedy;     /* this draw's temperature stage kept only the best candidate */

    bool penalties_on;
    int32_t *counts; /* [n_vocab] occurrences in the window, NULL when penalties are off */
    int32_t *window; /* ring of the last penalty_last_n accepted tokens */
    int32_t win_head, win_len;

    smp_schemac *schema;  /* the constraint (JSON mode: the schema {"type":"object"}), or NULL */
    smp_gramc *gram;      /* the constraint of a GBNF grammar, or NULL */
    const uint32_t *mask; /* the constraint's allowed tokens for this draw, or NULL */

    hearth_logit_bias *bias; /* [n_bias] by id ascending, one entry per id (summed); NULL if none */
    size_t n_bias;

    bool budgeted;        /* a thinking budget (think.c) */
    smp_think think;      /* ... where the reply stands */
    uint32_t *force_mask; /* ... its closing token alone, the mask while FORCING */

    smp_scored *scored; /* [n_vocab] typical sampling's scratch, NULL when it is off */
    bool dry_on;
    smp_dry dry;
    double mu; /* Mirostat's running threshold, 2 tau at the start */
};

/* "Better": higher logit, then lower id (a total order). */
static inline bool smp_better(smp_cand a, smp_cand b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

/* Model output is not trusted to be finite: NaN would break the total order
 * and inf - inf the softmax. */
static inline float smp_sanitize(float x) {
    if (isnan(x)) return -INFINITY;
    return x > FLT_MAX ? FLT_MAX : x;
}

/* The i-th kept candidate in walk order: the sorted ones, then the rest. */
static inline smp_cand *smp_walk(smp_sampler *s, size_t i) {
    return i < s->n_sorted ? &s->sorted[i] : &s->rest[i - s->n_sorted];
}

/* sampler.c */
/* Makes sorted[i] hold the i-th best kept candidate if there is one. */
bool smp_have_rank(smp_sampler *s, size_t i);
/* The best kept candidate's logit, without sorting anything. */
float smp_best_logit(const smp_sampler *s);
/* sum over the kept candidates of exp(logit - max), max = smp_best_logit
 * (not -inf: the caller checks). */
double smp_exp_sum(const smp_sampler *s, float max);
/* Keeps only the candidates with logit >= threshold, and the best one
 * whatever its logit (the sorted prefix stays sorted; the rest is left
 * unsorted). */
void smp_keep_above(smp_sampler *s, float threshold);
/* The same keeping at least the min_keep best (llama.cpp's min-p). */
void smp_keep_above_n(smp_sampler *s, float threshold, size_t min_keep);
/* Draws from softmax over the kept candidates; *p gets the drawn token's
 * probability among them. */
int32_t smp_draw(smp_sampler *s, double *p);

/* stages.c */
hearth_err smp_stages_init(smp_sampler *s);
void smp_stage_top_n_sigma(smp_sampler *s, float n);
/* Typical and XTC keep at least min_keep candidates (llama.cpp's). */
void smp_stage_typical(smp_sampler *s, float p, size_t min_keep);
void smp_stage_xtc(smp_sampler *s, float probability, float threshold, size_t min_keep);
/* Dynamic temperature's value for the kept candidates (at least 2, one of
 * them with a finite logit). */
double smp_dynatemp(smp_sampler *s);

/* mirostat.c: the truncation for the current mu (no random number), then
 * the draw and the update of mu. */
void smp_mirostat_truncate(smp_sampler *s);
int32_t smp_mirostat_draw(smp_sampler *s);

/* dry.c */
hearth_err smp_dry_init(smp_sampler *s);
void smp_dry_fini(smp_sampler *s);
void smp_dry_reset(smp_sampler *s);
void smp_dry_accept(smp_sampler *s, int32_t token);
/* Subtracts the penalties from the candidates, which stage_fill left in id
 * order in rest[0, n_rest). */
void smp_dry_apply(smp_sampler *s);

#endif
