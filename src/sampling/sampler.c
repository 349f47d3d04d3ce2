/*
 * sampler.c - the sampler chain: logit bias -> penalties -> DRY -> top-n-sigma
 * -> top-k -> typical -> top-p -> min-p -> XTC -> temperature -> draw, or the
 * stages smp_params.stages lists after the bias, with the semantics of
 * llama.cpp's samplers of the same names (src/llama-sampler.cpp; min_keep as
 * its top-p, min-p, typical and XTC take it) and OpenAI's logit_bias and
 * frequency/presence penalties; Mirostat in place of the chain. This file
 * holds the chain, the candidates' order and heap, bias, penalties, top-k,
 * top-p, min-p, temperature and the draw; the other stages are in stages.c,
 * mirostat.c and dry.c (sampler_impl.h: the state).
 *
 * Top-k selects its k into `sorted` in one pass (a heap of the k best so far);
 * a later stage that needs the i-th best candidate pops it from the heap on
 * demand (smp_have_rank). No stage sorts the whole vocabulary unless it keeps
 * all of it, and nothing is allocated per token.
 *
 * "Better" is a total order (higher logit, then lower id) so that ties go to
 * the lowest id and no result depends on the order of equal elements.
 *
 * A constraint's mask (JSON mode, JSON Schema, a GBNF grammar) is applied when the candidates are
 * first filled: a token it refuses is not a candidate at all, so no later stage, and no all -inf
 * row, can bring it back. Logit biases are applied there too, first (a banned token is likewise no
 * candidate): they are kept sorted by id, duplicates summed, so the fill merges them in one pass.
 */
#include "sampler_impl.h"

#include <stdlib.h>
#include <string.h>

/* Far beyond any real vocabulary or context; keeps a bad argument from
 * turning into a multi-gigabyte allocation. */
enum { SMP_WINDOW_MAX = 1 << 24 };

/* XTC's random stream is seeded with the seed XOR this ("XTC_RNG!"), apart
 * from the draw's (llama.cpp gives each sampler a generator of its own). */
#define XTC_STREAM 0x5854435f524e4721ULL

smp_params smp_default_params(void) {
    smp_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .penalty_last_n = 64,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = SMP_SEED_RANDOM,
        .constraint = SMP_CONSTRAINT_NONE,
        .vocab = NULL,
        .typical_p = 1.0f,
        .top_n_sigma = -1.0f,
        .xtc_probability = 0.0f,
        .xtc_threshold = 0.1f,
        .mirostat = 0,
        .mirostat_tau = 5.0f,
        .mirostat_eta = 0.1f,
        .dry_multiplier = 0.0f,
        .dry_base = 1.75f,
        .dry_allowed_length = 2,
        .dry_penalty_last_n = 64,
        .min_keep = 0,
        .dynatemp_range = 0.0f,
        .dynatemp_exponent = 1.0f,
        .n_stages = 0,
    };
    return p;
}

/* The settings of llama.cpp's other stages; each message names the field. */
static hearth_err check_extra(const smp_params *p) {
    const struct {
        const char *name;
        double value, lo, hi; /* finite, in [lo, hi] */
    } ranges[] = {
        {"typical_p", p->typical_p, 0, 1},
        {"top_n_sigma", p->top_n_sigma, -INFINITY, INFINITY},
        {"xtc_probability", p->xtc_probability, 0, 1},
        {"xtc_threshold", p->xtc_threshold, 0, 1},
        {"mirostat (0: off, 1, 2: Mirostat 2.0)", p->mirostat, 0, 2},
        {"mirostat_tau", p->mirostat_tau, 0, INFINITY},
        {"mirostat_eta", p->mirostat_eta, 0, INFINITY},
        {"dry_multiplier", p->dry_multiplier, 0, INFINITY},
        {"dry_base", p->dry_base, 1, INFINITY},
        {"dry_allowed_length", p->dry_allowed_length, 0, INT32_MAX},
        {"dry_penalty_last_n (map -1 to n_ctx first)", p->dry_penalty_last_n, 0, SMP_WINDOW_MAX},
        {"min_keep", p->min_keep, 0, INT32_MAX},
        {"dynatemp_range", p->dynatemp_range, -INFINITY, INFINITY},
        {"dynatemp_exponent", p->dynatemp_exponent, -INFINITY, INFINITY},
        {"the number of samplers (-1: none, 0: the default chain)", p->n_stages, SMP_STAGES_NONE,
         SMP_STAGES_MAX},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if (!isfinite(ranges[i].value) || ranges[i].value < ranges[i].lo ||
            ranges[i].value > ranges[i].hi)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "sampling: %s %g must be a finite number in [%g, %g]", ranges[i].name,
                           ranges[i].value, ranges[i].lo, ranges[i].hi);
    if (p->n_dry_breakers > 0 && !p->dry_breakers)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: %zu DRY sequence breakers but no array",
                       p->n_dry_breakers);
    if (p->n_dry_breakers > SMP_BIAS_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: %zu DRY sequence breakers (at most %d)",
                       p->n_dry_breakers, (int)SMP_BIAS_MAX);
    for (int32_t i = 0; i < p->n_stages; i++)
        if (p->stages[i] < SMP_STAGE_PENALTIES || p->stages[i] > SMP_STAGE_LAST)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: samplers[%d]: %d is not a stage",
                           (int)i, (int)p->stages[i]);
    return HEARTH_OK;
}

/* The stages the chain runs after the bias, in order. */
static size_t chain_stages(const smp_params *p, const uint8_t **out) {
    if (p->n_stages == 0) return smp_default_stages(out);
    *out = p->stages;
    return p->n_stages > 0 ? (size_t)p->n_stages : 0;
}

static bool chain_has(const smp_params *p, smp_stage stage) {
    const uint8_t *st;
    const size_t n = chain_stages(p, &st);
    for (size_t i = 0; i < n; i++)
        if (st[i] == stage) return true;
    return false;
}

static hearth_err check_params(const smp_params *p) {
    if (isnan(p->temperature))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: temperature is NaN");
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: top_p %g is outside [0, 1]",
                       (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: min_p %g is outside [0, 1]",
                       (double)p->min_p);
    if (p->penalty_last_n < 0 || p->penalty_last_n > SMP_WINDOW_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: penalty_last_n %d is outside [0, %d] (map -1 to n_ctx first)",
                       (int)p->penalty_last_n, (int)SMP_WINDOW_MAX);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: repeat_penalty %g must be > 0",
                       (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: frequency and presence penalties must be finite");
    if (p->constraint != SMP_CONSTRAINT_NONE && p->constraint != SMP_CONSTRAINT_JSON_OBJECT &&
        p->constraint != SMP_CONSTRAINT_JSON_SCHEMA && p->constraint != SMP_CONSTRAINT_GRAMMAR)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: unknown constraint %d",
                       (int)p->constraint);
    if (p->constraint != SMP_CONSTRAINT_NONE && !p->vocab)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: a constraint needs the vocabulary");
    if (p->n_logit_bias > 0 && !p->logit_bias)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: %zu logit biases but no array",
                       p->n_logit_bias);
    if (p->n_logit_bias > SMP_BIAS_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: %zu logit biases (at most %d)",
                       p->n_logit_bias, (int)SMP_BIAS_MAX);
    if (p->think_on && p->constraint != SMP_CONSTRAINT_NONE)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: a thinking budget cannot be combined with a constraint");
    return check_extra(p);
}

static int bias_cmp(const void *a, const void *b) {
    const int32_t x = ((const hearth_logit_bias *)a)->id, y = ((const hearth_logit_bias *)b)->id;
    return (x > y) - (x < y);
}

/* Checks and copies the biases: sorted by id, one entry per id (their sum;
 * a ban stays a ban). */
static hearth_err bias_init(smp_sampler *s, const hearth_logit_bias *in, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (in[i].id < 0 || in[i].id >= s->n_vocab)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "sampling: logit_bias[%zu]: token %d is outside [0, %d)", i,
                           (int)in[i].id, (int)s->n_vocab);
        if (isnan(in[i].bias) || in[i].bias == INFINITY)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "sampling: logit_bias[%zu]: bias %g for token %d (NaN and +inf are "
                           "refused; a ban is <= %g)",
                           i, (double)in[i].bias, (int)in[i].id, (double)SMP_BIAS_BAN);
    }
    if (n == 0) return HEARTH_OK;
    s->bias = hr_calloc(n, sizeof *s->bias);
    if (!s->bias) return hr_wrap(HEARTH_ERR_NOMEM, "sampling: %zu logit biases: ", n);
    memcpy(s->bias, in, n * sizeof *s->bias);
    qsort(s->bias, n, sizeof *s->bias, bias_cmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && s->bias[w - 1].id == s->bias[i].id)
            s->bias[w - 1].bias += s->bias[i].bias; /* -inf + finite stays -inf */
        else
            s->bias[w++] = s->bias[i];
    }
    s->n_bias = w;
    return HEARTH_OK;
}

hearth_err smp_new(int32_t n_vocab, const smp_params *params, smp_sampler **out) {
    smp_params p = params ? *params : smp_default_params();
    smp_schema *schema = p.schema; /* ours from here: freed on every failure */
    smp_grammar *gbnf = p.gbnf;    /* likewise */
    p.schema = NULL;
    p.gbnf = NULL;
    hearth_err err = n_vocab <= 0
                         ? hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: n_vocab %d", (int)n_vocab)
                         : check_params(&p);
    smp_sampler *s = err ? NULL : hr_calloc(1, sizeof *s);
    if (!err && !s) err = HEARTH_ERR_NOMEM;
    if (err) {
        smp_schema_free(schema);
        smp_grammar_free(gbnf);
        return err;
    }
    s->params = p;
    s->params.logit_bias = NULL; /* the caller's: copied into s->bias */
    s->params.n_logit_bias = 0;
    s->params.grammar = NULL; /* the caller's: compiled below */
    s->n_vocab = n_vocab;
    err = bias_init(s, p.logit_bias, p.n_logit_bias);
    if (err) {
        smp_schema_free(schema);
        smp_grammar_free(gbnf);
        smp_free(s);
        return err;
    }
    /* Mirostat's chain has no penalties (llama.cpp's: bias, temperature, Mirostat), nor
     * does a chain without the stage */
    s->penalties_on =
        p.mirostat == 0 && p.penalty_last_n > 0 && chain_has(&p, SMP_STAGE_PENALTIES) &&
        (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f);
    s->params.dry_breakers = NULL; /* the caller's: copied by smp_dry_init */
    s->params.n_dry_breakers = 0;
    s->mu = 2.0 * (double)p.mirostat_tau;
    /* n_vocab and the window are positive int32, so the byte counts of these
     * calloc calls fit in size_t; calloc checks n * size itself. */
    s->rest = hr_calloc((size_t)n_vocab, sizeof *s->rest);
    s->sorted = hr_calloc((size_t)n_vocab, sizeof *s->sorted);
    s->weights = hr_calloc((size_t)n_vocab, sizeof *s->weights);
    if (!s->rest || !s->sorted || !s->weights) goto nomem;
    if (s->penalties_on) {
        s->counts = hr_calloc((size_t)n_vocab, sizeof *s->counts);
        s->window = hr_calloc((size_t)p.penalty_last_n, sizeof *s->window);
        if (!s->counts || !s->window) goto nomem;
    }
    s->params.dry_breakers = p.dry_breakers; /* for smp_dry_init only */
    s->params.n_dry_breakers = p.n_dry_breakers;
    err = smp_dry_init(s);
    s->params.dry_breakers = NULL;
    s->params.n_dry_breakers = 0;
    if (s->dry_on && !chain_has(&p, SMP_STAGE_DRY)) { /* not in the chain: never runs */
        smp_dry_fini(s);
        memset(&s->dry, 0, sizeof s->dry);
        s->dry_on = false;
    }
    if (!err) err = smp_stages_init(s);
    if (err) {
        smp_schema_free(schema);
        smp_grammar_free(gbnf);
        smp_free(s);
        return err;
    }
    if ((s->budgeted = p.think_on)) {
        if (p.think_budget < 0 || p.think_end < 0 || p.think_end >= n_vocab ||
            p.think_start >= n_vocab) {
            smp_schema_free(schema);
            smp_grammar_free(gbnf);
            smp_free(s);
            return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: thinking budget %d, tags' ids %d, %d",
                           (int)p.think_budget, (int)p.think_start, (int)p.think_end);
        }
        s->force_mask = hr_calloc(((size_t)n_vocab + 31) / 32, sizeof *s->force_mask);
        if (!s->force_mask) goto nomem;
        s->force_mask[p.think_end / 32] = 1u << (p.think_end % 32);
        smp_think_init(&s->think, p.think_budget, p.think_start, p.think_end, p.think_open);
    }
    if (p.constraint != SMP_CONSTRAINT_NONE) {
        hearth_err jerr = HEARTH_OK;
        if (smp_vocab_n(p.vocab) != n_vocab)
            jerr = hr_fail(HEARTH_ERR_INVALID_ARG,
                           "sampling: the vocabulary has %d tokens but the logits %d",
                           (int)smp_vocab_n(p.vocab), (int)n_vocab);
        else if (p.constraint == SMP_CONSTRAINT_GRAMMAR) {
            if (!gbnf) jerr = smp_grammar_compile(p.grammar, &gbnf);
            if (!jerr) jerr = smp_gramc_new(p.vocab, gbnf, &s->gram);
            gbnf = NULL; /* the constraint's now, freed by it on failure too */
        } else if (p.constraint == SMP_CONSTRAINT_JSON_OBJECT) {
            smp_schema_free(schema);
            schema = NULL;
            jerr = smp_schema_json_object(&schema);
        } else if (!schema) {
            jerr = smp_schema_compile(p.json_schema, &schema);
        }
        if (!jerr && p.constraint != SMP_CONSTRAINT_GRAMMAR) {
            jerr = smp_schemac_new(p.vocab, schema, &s->schema);
            schema = NULL; /* the constraint's now, freed by it on failure too */
        }
        if (jerr) {
            smp_schema_free(schema);
            smp_grammar_free(gbnf);
            smp_free(s);
            return jerr;
        }
    }
    smp_schema_free(schema); /* given for a sampler that does not use it */
    smp_grammar_free(gbnf);
    s->seed = p.seed != SMP_SEED_RANDOM ? p.seed : hr_seed_from_entropy();
    if (s->seed == SMP_SEED_RANDOM) s->seed = 0; /* an entropy draw; never ask again */
    hr_rng_seed(&s->rng, s->seed);
    hr_rng_seed(&s->xtc_rng, s->seed ^ XTC_STREAM);
    *out = s;
    return HEARTH_OK;
nomem:
    smp_schema_free(schema);
    smp_grammar_free(gbnf);
    smp_free(s);
    return hr_wrap(HEARTH_ERR_NOMEM, "sampling: %d candidates: ", (int)n_vocab);
}

void smp_free(smp_sampler *s) {
    if (!s) return;
    free(s->rest);
    free(s->sorted);
    free(s->weights);
    free(s->counts);
    free(s->window);
    free(s->bias);
    free(s->force_mask);
    free(s->scored);
    smp_dry_fini(s);
    smp_schemac_free(s->schema);
    smp_gramc_free(s->gram);
    free(s);
}

void smp_reset(smp_sampler *s) {
    if (s->penalties_on) {
        for (int32_t i = 0; i < s->win_len; i++) {
            s->counts[s->window[(s->win_head + i) % s->params.penalty_last_n]] = 0;
        }
    }
    s->win_head = 0;
    s->win_len = 0;
    hr_rng_seed(&s->rng, s->seed);
    hr_rng_seed(&s->xtc_rng, s->seed ^ XTC_STREAM);
    s->mu = 2.0 * (double)s->params.mirostat_tau;
    smp_dry_reset(s);
    if (s->schema) smp_schemac_reset(s->schema);
    if (s->gram) smp_gramc_reset(s->gram);
    if (s->budgeted)
        smp_think_init(&s->think, s->params.think_budget, s->params.think_start,
                       s->params.think_end, s->params.think_open);
}

uint64_t smp_seed(const smp_sampler *s) { return s->seed; }

hearth_err smp_accept(smp_sampler *s, int32_t token) {
    if (token < 0 || token >= s->n_vocab)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: token %d is outside [0, %d)", (int)token,
                       (int)s->n_vocab);
    if (s->dry_on) smp_dry_accept(s, token);
    if (!s->penalties_on) return HEARTH_OK;
    const int32_t cap = s->params.penalty_last_n;
    if (s->win_len == cap) { /* full: the oldest token leaves the window */
        s->counts[s->window[s->win_head]]--;
        s->window[s->win_head] = token;
        s->win_head = (s->win_head + 1) % cap;
    } else {
        s->window[(s->win_head + s->win_len) % cap] = token;
        s->win_len++;
    }
    s->counts[token]++;
    return HEARTH_OK;
}

hearth_err smp_advance(smp_sampler *s, int32_t token) {
    if (s->budgeted) smp_think_advance(&s->think, token);
    if (s->gram && !smp_gramc_advance(s->gram, token))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: token %d would not keep the output a prefix of a text of the "
                       "grammar",
                       (int)token);
    if (s->schema && !smp_schemac_advance(s->schema, token))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       s->params.constraint == SMP_CONSTRAINT_JSON_OBJECT
                           ? "sampling: token %d would not keep the output one JSON object"
                           : "sampling: token %d would not keep the output valid against the "
                             "JSON schema",
                       (int)token);
    return HEARTH_OK;
}

bool smp_constraint_done(const smp_sampler *s) {
    return (s->schema && smp_schemac_done(s->schema)) || (s->gram && smp_gramc_done(s->gram));
}

/* ---- ordering and the heap ----------------------------------------------- */

/* Sift-down for a heap whose root is its best element (worst_on_top false)
 * or its worst (true). */
static void heap_sift_down(smp_cand *h, size_t n, size_t i, bool worst_on_top) {
    smp_cand x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && smp_better(h[c + 1], h[c]) != worst_on_top) c++;
        if (smp_better(h[c], x) == worst_on_top) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_build(smp_cand *h, size_t n, bool worst_on_top) {
    for (size_t i = n / 2; i-- > 0;) heap_sift_down(h, n, i, worst_on_top);
}

bool smp_have_rank(smp_sampler *s, size_t i) {
    while (i >= s->n_sorted) {
        if (s->n_rest == 0) return false;
        if (!s->rest_is_heap) {
            heap_build(s->rest, s->n_rest, false);
            s->rest_is_heap = true;
            s->rest_by_id = false;
        }
        s->sorted[s->n_sorted++] = s->rest[0];
        s->n_rest--;
        if (s->n_rest > 0) {
            s->rest[0] = s->rest[s->n_rest];
            heap_sift_down(s->rest, s->n_rest, 0, false);
        }
    }
    return true;
}

float smp_best_logit(const smp_sampler *s) {
    if (s->n_sorted > 0) return s->sorted[0].logit;
    if (s->rest_is_heap) return s->rest[0].logit;
    float m = -INFINITY;
    for (size_t i = 0; i < s->n_rest; i++) m = s->rest[i].logit > m ? s->rest[i].logit : m;
    return m;
}

/* ---- the stages ------------------------------------------------------------ */

/* llama.cpp's repetition penalty divides positive logits and multiplies the
 * others (dividing a negative logit would make the token more likely); then
 * OpenAI's: logit -= count * frequency_penalty + (count > 0) * presence_penalty. */
static float penalize(const smp_params *p, float logit, int32_t count) {
    logit = logit <= 0.0f ? logit * p->repeat_penalty : logit / p->repeat_penalty;
    return logit - ((float)count * p->frequency_penalty + p->presence_penalty);
}

/* Stage 0 (and the penalties when they come first, as in the default chain,
 * in the same pass): every token the constraint allows and no bias bans, in
 * id order, with its biased (then penalized) logit. False, with an error
 * recorded, when no token is left (the biases banned every one allowed). */
static bool stage_fill(smp_sampler *s, const float *logits, bool pen) {
    const uint32_t *mask = s->mask;
    const hearth_logit_bias *bias = s->bias, *bias_end = bias ? bias + s->n_bias : NULL;
    size_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (mask && !(mask[i / 32] >> (i % 32) & 1)) continue;
        float l = smp_sanitize(logits[i]);
        while (bias < bias_end && bias->id < i) bias++;
        if (bias < bias_end && bias->id == i) {
            if (bias->bias <= SMP_BIAS_BAN) continue;
            l = smp_sanitize(l + bias->bias);
        }
        if (pen && s->counts[i] > 0) l = smp_sanitize(penalize(&s->params, l, s->counts[i]));
        s->rest[n].id = i;
        s->rest[n].logit = l;
        n++;
    }
    s->n_rest = n;
    s->n_sorted = 0;
    s->rest_is_heap = false;
    s->rest_by_id = true;
    s->greedy = false;
    if (n > 0) return true;
    hr_fail(HEARTH_ERR_UNSUPPORTED, s->mask ? "sampling: logit_bias bans every token the "
                                              "constraint allows here"
                                            : "sampling: logit_bias bans every token");
    return false;
}

/* Makes every kept candidate part of the unsorted rest (after a stage that
 * changed logits without keeping their order). */
static void unsort(smp_sampler *s) {
    if (s->n_sorted == 0 && !s->rest_is_heap) return; /* already: the order is untouched */
    memcpy(s->rest + s->n_rest, s->sorted, s->n_sorted * sizeof *s->rest);
    s->n_rest += s->n_sorted;
    s->n_sorted = 0;
    s->rest_is_heap = false;
    s->rest_by_id = false;
}

/* The penalties anywhere but first: each kept candidate's logit, then no
 * order is assumed. */
static void stage_penalties(smp_sampler *s) {
    if (!s->penalties_on || s->win_len == 0) return;
    for (size_t i = 0; i < s->n_sorted + s->n_rest; i++) {
        smp_cand *c = smp_walk(s, i);
        if (s->counts[c->id] > 0)
            c->logit = smp_sanitize(penalize(&s->params, c->logit, s->counts[c->id]));
    }
    unsort(s);
}

/* Puts the kept candidates back in id order in `rest`, for DRY's lookup,
 * in one pass over the vocabulary: weights[id] holds each one's logit
 * (logits are never NaN, which marks the others). */
static void order_by_id(smp_sampler *s) {
    if (s->rest_by_id) return;
    for (int32_t i = 0; i < s->n_vocab; i++) s->weights[i] = NAN;
    for (size_t i = 0; i < s->n_sorted + s->n_rest; i++) {
        const smp_cand *c = smp_walk(s, i);
        s->weights[c->id] = c->logit;
    }
    size_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (!isnan(s->weights[i])) s->rest[n++] = (smp_cand){i, s->weights[i]};
    s->n_rest = n;
    s->n_sorted = 0;
    s->rest_is_heap = false;
    s->rest_by_id = true;
}

static void stage_dry(smp_sampler *s) {
    if (!s->dry_on) return;
    order_by_id(s);
    smp_dry_apply(s); /* in place: rest stays in id order */
}

/* The k best, best first. Selection through a heap of the k best so far with
 * the worst on top: in a logits row most tokens lose against that root in one
 * comparison, so this is one cheap pass over n_vocab plus O(k log k). */
static void stage_top_k(smp_sampler *s, size_t k) {
    if (k >= s->n_sorted + s->n_rest) return;
    if (s->n_sorted > 0) { /* after a stage that sorted some */
        while (s->n_sorted < k && smp_have_rank(s, s->n_sorted)) {
        }
        if (s->n_sorted > k) s->n_sorted = k;
        s->n_rest = 0;
        return;
    }
    smp_cand *h = s->sorted;
    size_t m = 0;
    for (size_t i = 0; i < s->n_rest; i++) {
        const smp_cand c = s->rest[i];
        if (m < k) {
            h[m++] = c;
            if (m == k) heap_build(h, k, true);
        } else if (smp_better(c, h[0])) {
            h[0] = c;
            heap_sift_down(h, k, 0, true);
        }
    }
    if (m < k) heap_build(h, m, true);
    /* Heap sort: moving the worst to the end each time leaves best first. */
    for (size_t end = m; end > 1; end--) {
        const smp_cand t = h[0];
        h[0] = h[end - 1];
        h[end - 1] = t;
        heap_sift_down(h, end - 1, 0, true);
    }
    s->n_sorted = m;
    s->n_rest = 0;
    s->rest_is_heap = false;
    s->rest_by_id = false;
}

double smp_exp_sum(const smp_sampler *s, float max) {
    double sum = 0.0;
    for (size_t i = 0; i < s->n_sorted; i++) sum += expf(s->sorted[i].logit - max);
    for (size_t i = 0; i < s->n_rest; i++) sum += expf(s->rest[i].logit - max);
    return sum;
}

/* Keeps the smallest best-first prefix whose probability (softmax over the
 * candidates still kept) reaches p and that holds min_keep; at least one. */
static void stage_top_p(smp_sampler *s, float p, size_t min_keep) {
    const float max = smp_best_logit(s);
    if (max == -INFINITY) return; /* nothing has any probability to rank */
    const double target = (double)p * smp_exp_sum(s, max);
    double cum = 0.0;
    size_t i = 0;
    while (smp_have_rank(s, i)) {
        cum += expf(s->sorted[i].logit - max);
        i++;
        if (cum >= target && i >= min_keep) break;
    }
    s->n_sorted = i;
    s->n_rest = 0;
}

void smp_keep_above(smp_sampler *s, float threshold) { smp_keep_above_n(s, threshold, 1); }

void smp_keep_above_n(smp_sampler *s, float threshold, size_t min_keep) {
    if (min_keep > 1) smp_have_rank(s, min_keep - 1); /* the min_keep best are sorted */
    for (size_t i = min_keep > 1 ? min_keep : 1; i < s->n_sorted; i++) {
        if (s->sorted[i].logit < threshold) {
            s->n_sorted = i;
            s->n_rest = 0;
            return;
        }
    }
    if (s->n_sorted == 0 && s->n_rest == 0) return;
    smp_cand best = s->n_sorted ? s->sorted[0] : s->rest[0];
    size_t w = 0;
    for (size_t i = 0; i < s->n_rest; i++) {
        if (smp_better(s->rest[i], best)) best = s->rest[i];
        if (s->rest[i].logit >= threshold) s->rest[w++] = s->rest[i];
    }
    if (s->n_sorted == 0 && w == 0) s->rest[w++] = best; /* the best stays */
    s->n_rest = w;
    s->rest_is_heap = false;
    if (s->n_sorted == 0 && w == 1) s->rest_by_id = false; /* perhaps the best alone, moved */
}

/* Keeps tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p), and
 * the min_keep best; the best token always. Unsorted candidates are filtered
 * without sorting. */
static void stage_min_p(smp_sampler *s, float min_p, size_t min_keep) {
    smp_keep_above_n(s, smp_best_logit(s) + logf(min_p), min_keep);
}

static void divide_logits(smp_sampler *s, float t) {
    /* Dividing by t > 0 keeps the order, so sorted and heap stay valid (a
     * tiny t may overflow to inf, clamped to FLT_MAX, which keeps it weakly;
     * ties then fall back on the id order, as everywhere). */
    for (size_t i = 0; i < s->n_sorted; i++)
        s->sorted[i].logit = smp_sanitize(s->sorted[i].logit / t);
    for (size_t i = 0; i < s->n_rest; i++) s->rest[i].logit = smp_sanitize(s->rest[i].logit / t);
}

/* llama.cpp's temp-ext: the temperature, or dynamic temperature's for these
 * candidates; at most 0 keeps only the best (greedy: the draw takes it). */
static void stage_temperature(smp_sampler *s) {
    const smp_params *p = &s->params;
    float t = p->temperature;
    if (p->dynatemp_range > 0.0f) {
        /* one candidate: nothing to measure (llama.cpp leaves it alone) */
        if (s->n_sorted + s->n_rest <= 1 || smp_best_logit(s) == -INFINITY) return;
        t = (float)smp_dynatemp(s);
    }
    if (t > 0.0f) {
        divide_logits(s, t);
        return;
    }
    smp_have_rank(s, 0);
    s->n_sorted = 1;
    s->n_rest = 0;
    s->rest_is_heap = false;
    s->rest_by_id = false;
    s->greedy = true;
}

static bool xtc_on(const smp_params *p) {
    return p->xtc_probability > 0.0f && p->xtc_threshold <= 0.5f;
}

static void run_stage(smp_sampler *s, int stage) {
    const smp_params *p = &s->params;
    const size_t keep = (size_t)p->min_keep;
    switch (stage) {
    case SMP_STAGE_PENALTIES: stage_penalties(s); break;
    case SMP_STAGE_DRY: stage_dry(s); break;
    case SMP_STAGE_TOP_N_SIGMA:
        if (p->top_n_sigma > 0.0f) smp_stage_top_n_sigma(s, p->top_n_sigma);
        break;
    case SMP_STAGE_TOP_K:
        if (p->top_k > 0) stage_top_k(s, (size_t)p->top_k);
        break;
    case SMP_STAGE_TYPICAL_P:
        if (p->typical_p < 1.0f) smp_stage_typical(s, p->typical_p, keep);
        break;
    case SMP_STAGE_TOP_P:
        if (p->top_p < 1.0f) stage_top_p(s, p->top_p, keep);
        break;
    case SMP_STAGE_MIN_P:
        if (p->min_p > 0.0f) stage_min_p(s, p->min_p, keep);
        break;
    case SMP_STAGE_XTC:
        if (xtc_on(p)) smp_stage_xtc(s, p->xtc_probability, p->xtc_threshold, keep);
        break;
    default: stage_temperature(s); break; /* SMP_STAGE_TEMPERATURE (smp_new checked) */
    }
}

/* Runs every stage but the draw; false as stage_fill. s->greedy: the draw
 * takes the one candidate left. */
static bool run_chain(smp_sampler *s, const float *logits) {
    const smp_params *p = &s->params;
    if (p->mirostat) { /* llama.cpp's chain for it: bias, temperature, Mirostat */
        if (!stage_fill(s, logits, false)) return false;
        if (p->temperature > 0.0f) divide_logits(s, p->temperature);
        smp_mirostat_truncate(s);
        return true;
    }
    const uint8_t *st;
    const size_t n = chain_stages(p, &st);
    /* the default chain's first stage, the penalties, in the fill's pass */
    const size_t first = n > 0 && st[0] == SMP_STAGE_PENALTIES ? 1 : 0;
    if (!stage_fill(s, logits, first && s->penalties_on && s->win_len > 0)) return false;
    for (size_t i = first; i < n; i++) run_stage(s, st[i]);
    return true;
}

/* Whether a greedy draw is the argmax after the fill (penalties) and DRY,
 * without running the other stages: the default chain at a temperature <= 0
 * with no stage that may drop the best (typical, XTC); Mirostat's at one. */
static bool greedy_shortcut(const smp_params *p) {
    if (!(p->temperature <= 0.0f)) return false;
    if (p->mirostat) return true;
    return p->n_stages == 0 && !(p->dynatemp_range > 0.0f) && !(p->typical_p < 1.0f) && !xtc_on(p);
}

/* The shortcut's pick: the best biased, penalized candidate after DRY; id
 * -1 when stage_fill left none. */
static smp_cand greedy_pick(smp_sampler *s, const float *logits) {
    if (!stage_fill(s, logits, s->penalties_on && s->win_len > 0)) return (smp_cand){-1, -INFINITY};
    stage_dry(s);
    smp_cand best = s->rest[0];
    for (size_t i = 1; i < s->n_rest; i++) {
        if (smp_better(s->rest[i], best)) best = s->rest[i];
    }
    return best;
}

/* A candidate of probability 0 (logit -inf, or underflow) is never drawn: it
 * needs cum > target to win. */
int32_t smp_draw(smp_sampler *s, double *p) {
    const float max = smp_best_logit(s);
    if (max == -INFINITY) { /* all equally impossible: the order's first */
        smp_have_rank(s, 0);
        *p = 1.0 / (double)(s->n_sorted + s->n_rest);
        return s->sorted[0].id;
    }
    /* Walk order: the sorted candidates, then the rest. */
    const size_t n = s->n_sorted + s->n_rest;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        s->weights[i] = expf(smp_walk(s, i)->logit - max);
        sum += s->weights[i];
    }
    const double target = hr_rng_uniform(&s->rng) * sum;
    double cum = 0.0;
    size_t last = n;
    for (size_t i = 0; i < n; i++) {
        if (s->weights[i] <= 0.0f) continue;
        cum += s->weights[i];
        last = i;
        if (cum > target) break;
    }
    /* (rounding may leave target at the very top: the last possible one) */
    *p = s->weights[last] / sum;
    return smp_walk(s, last)->id;
}

/* ---- logprobs over the original logits ------------------------------------ */

/* lse: log of the softmax denominator, -inf when every logit is -inf (then
 * every token counts as equally likely). */
static float logprob_of(float logit, double lse, int32_t n_vocab) {
    if (lse == -INFINITY) return (float)-log((double)n_vocab);
    return (float)((double)logit - lse);
}

void smp_logprobs(const float *logits, int32_t n, int n_top, smp_info *info) {
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        const float l = smp_sanitize(logits[i]);
        max = l > max ? l : max;
    }
    double lse = -INFINITY;
    if (max != -INFINITY) {
        double sum = 0.0;
        for (int32_t i = 0; i < n; i++) sum += expf(smp_sanitize(logits[i]) - max);
        /* the largest logit adds exp(0) = 1: sum >= 1 */
        // cppcheck-suppress invalidFunctionArg
        lse = (double)max + log(sum);
    }
    info->logprob = logprob_of(smp_sanitize(logits[info->id]), lse, n);

    /* The n_top best by insertion into a short sorted list: most tokens fail
     * the first comparison with its current worst. */
    if (n_top < 0) n_top = 0;
    if (n_top > SMP_TOP_LOGPROBS_MAX) n_top = SMP_TOP_LOGPROBS_MAX;
    if (n_top > n) n_top = (int)n;
    smp_cand top[SMP_TOP_LOGPROBS_MAX];
    int k = 0;
    for (int32_t i = 0; i < n && n_top > 0; i++) {
        const smp_cand c = {i, smp_sanitize(logits[i])};
        if (k == n_top && !smp_better(c, top[k - 1])) continue;
        int j = k < n_top ? k++ : k - 1;
        for (; j > 0 && smp_better(c, top[j - 1]); j--) top[j] = top[j - 1];
        top[j] = c;
    }
    for (int j = 0; j < k; j++) {
        info->top[j].id = top[j].id;
        info->top[j].logprob = logprob_of(top[j].logit, lse, n);
    }
    info->n_top = k;
}

/* ---- entry points ------------------------------------------------------------ */

/* The constraint's mask for this draw; false (with an error recorded) when
 * it allows nothing, which a vocabulary with byte tokens never causes. */
/* The grammar's mask; false with an error recorded when it allows nothing. */
static bool begin_grammar_draw(smp_sampler *s) {
    int32_t n_allowed = 0;
    s->mask = smp_gramc_mask(s->gram, &n_allowed);
    if (!s->mask) return false; /* recorded */
    if (n_allowed > 0) return true;
    if (smp_gramc_done(s->gram))
        hr_fail(HEARTH_ERR_UNSUPPORTED, "sampling: the grammar's text is complete but the "
                                        "vocabulary has no end-of-generation token");
    else if (smp_gramc_n_over(s->gram) > 0)
        hr_fail(HEARTH_ERR_UNSUPPORTED,
                "sampling: every token that could continue the grammar's text needs more than "
                "%d parse stacks, %d nested rule calls or %d expansion steps (the grammar is too "
                "ambiguous or the output nests too deep)",
                (int)GBNF_MAX_STACKS, (int)GBNF_MAX_DEPTH, (int)GBNF_MAX_WORK);
    else
        hr_fail(HEARTH_ERR_UNSUPPORTED,
                "sampling: no token of the vocabulary continues the grammar's text");
    return false;
}

static bool begin_draw(smp_sampler *s) {
    s->mask = NULL;
    if (s->budgeted && s->think.state == SMP_THINK_FORCING) {
        s->mask = s->force_mask; /* the budget is spent: the block's end */
        return true;
    }
    if (s->gram) return begin_grammar_draw(s);
    if (!s->schema) return true;
    int32_t n_allowed;
    s->mask = smp_schemac_mask(s->schema, &n_allowed);
    if (n_allowed > 0) return true;
    hr_fail(HEARTH_ERR_UNSUPPORTED,
            smp_constraint_done(s)
                ? "sampling: the JSON value is complete but the vocabulary has no "
                  "end-of-generation token"
            : s->params.constraint == SMP_CONSTRAINT_JSON_OBJECT
                ? "sampling: no token of the vocabulary continues the JSON output"
                : "sampling: no token of the vocabulary continues the output the JSON "
                  "schema allows");
    return false;
}

int32_t smp_sample_ex(smp_sampler *s, const float *logits, int n_top, smp_info *info) {
    if (!begin_draw(s)) return -1;
    int32_t id;
    double p;
    if (greedy_shortcut(&s->params))
        id = greedy_pick(s, logits).id;
    else if (!run_chain(s, logits))
        id = -1;
    else if (s->greedy) /* no random number, as the shortcut */
        id = smp_have_rank(s, 0) ? s->sorted[0].id : -1;
    else
        id = s->params.mirostat ? smp_mirostat_draw(s) : smp_draw(s, &p);
    if (id < 0) return -1;
    if (info) {
        info->id = id;
        smp_logprobs(logits, s->n_vocab, n_top, info);
    }
    return id;
}

int32_t smp_sample(smp_sampler *s, const float *logits) {
    return smp_sample_ex(s, logits, 0, NULL);
}

int32_t smp_candidates(smp_sampler *s, const float *logits, smp_cand *out, int32_t cap) {
    return smp_candidates_ranked(s, logits, out, cap, cap);
}

int32_t smp_candidates_ranked(smp_sampler *s, const float *logits, smp_cand *out, int32_t cap,
                              int32_t n_best) {
    if (!begin_draw(s)) return 0;
    const hr_rng xtc = s->xtc_rng; /* XTC's chance is peeked at, not consumed */
    if (greedy_shortcut(&s->params)) {
        const smp_cand best = greedy_pick(s, logits);
        s->xtc_rng = xtc;
        if (best.id < 0) return 0;
        if (cap > 0) out[0] = best;
        return 1;
    }
    const bool ok = run_chain(s, logits);
    s->xtc_rng = xtc;
    if (!ok) return 0;
    const size_t n = s->n_sorted + s->n_rest;
    size_t m = cap > 0 ? (size_t)cap : 0;
    if (m > n) m = n;
    const size_t r = n_best > 0 && (size_t)n_best < m ? (size_t)n_best : m;
    if (r > 0) smp_have_rank(s, r - 1); /* the heap orders only the first r */
    for (size_t i = 0; i < m; i++) out[i] = *smp_walk(s, i);
    return (int32_t)n;
}
