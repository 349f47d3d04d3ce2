/*
 * sampler_opts.c - the public settings of llama.cpp's other samplers
 * (hearth_sampling: ignore_eos, typical_p, top_n_sigma, XTC, Mirostat, DRY)
 * as the sampling layer's smp_params, with what they need from the model:
 *
 *   ignore_eos: every end-of-generation token of the vocabulary gets a -inf
 *     bias, added to the caller's (llama-server's logit_bias_eog).
 *   DRY's sequence breakers, strings, become token sequences as llama.cpp
 *     makes them: a token whose text (detokenized alone, special tokens
 *     rendered) holds the whole string is a breaker by itself; a token whose
 *     text ends with a proper prefix of it is a head whose tail is the rest
 *     of the string tokenized (no special tokens, at most
 *     SMP_DRY_TAIL_MAX tokens). This reads every token once per sampler.
 *   dry_penalty_last_n -1 is the model's training context, as for the
 *     penalties' window.
 *   min_keep, dynatemp_range and dynatemp_exponent go as they are; the
 *     chain's order (samplers) too, hearth_sampler_stage having smp_stage's
 *     values.
 */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's limits on a breaker (longer ones it cuts, with a warning;
 * Hearth refuses them) and Hearth's on their number. */
enum { BREAKER_BYTES_MAX = 40, BREAKERS_MAX = 64, BREAKER_ENTRIES_MAX = 1 << 20 };

static const char *const default_breakers[] = {"\n", ":", "\"", "*"};

void engine_sampling_defaults(hearth_sampling *p) {
    const smp_params d = smp_default_params();
    p->ignore_eos = false;
    p->typical_p = d.typical_p;
    p->top_n_sigma = d.top_n_sigma;
    p->xtc_probability = d.xtc_probability;
    p->xtc_threshold = d.xtc_threshold;
    p->mirostat = d.mirostat;
    p->mirostat_tau = d.mirostat_tau;
    p->mirostat_eta = d.mirostat_eta;
    p->dry_multiplier = d.dry_multiplier;
    p->dry_base = d.dry_base;
    p->dry_allowed_length = d.dry_allowed_length;
    p->dry_penalty_last_n = d.dry_penalty_last_n;
    p->dry_sequence_breakers = NULL;
    p->n_dry_sequence_breakers = 0;
    p->min_keep = d.min_keep;
    p->dynatemp_range = d.dynatemp_range;
    p->dynatemp_exponent = d.dynatemp_exponent;
    memset(p->samplers, 0, sizeof p->samplers);
    p->n_samplers = 0; /* the default chain */
}

_Static_assert(HEARTH_SAMPLERS_MAX == SMP_STAGES_MAX && HEARTH_SAMPLERS_NONE == SMP_STAGES_NONE &&
                   (int)HEARTH_SAMPLER_STAGE_PENALTIES == SMP_STAGE_PENALTIES &&
                   (int)HEARTH_SAMPLER_STAGE_DRY == SMP_STAGE_DRY &&
                   (int)HEARTH_SAMPLER_STAGE_TOP_N_SIGMA == SMP_STAGE_TOP_N_SIGMA &&
                   (int)HEARTH_SAMPLER_STAGE_TOP_K == SMP_STAGE_TOP_K &&
                   (int)HEARTH_SAMPLER_STAGE_TYPICAL_P == SMP_STAGE_TYPICAL_P &&
                   (int)HEARTH_SAMPLER_STAGE_TOP_P == SMP_STAGE_TOP_P &&
                   (int)HEARTH_SAMPLER_STAGE_MIN_P == SMP_STAGE_MIN_P &&
                   (int)HEARTH_SAMPLER_STAGE_XTC == SMP_STAGE_XTC &&
                   (int)HEARTH_SAMPLER_STAGE_TEMPERATURE == SMP_STAGE_LAST,
               "hearth_sampler_stage and smp_stage agree");

/* The chain's order, checked (smp_new would see a stage out of range as a
 * number that no longer says which element of the caller's array it was). */
static hearth_err chain_order(const hearth_sampling *p, smp_params *sp) {
    if (p->n_samplers < HEARTH_SAMPLERS_NONE || p->n_samplers > HEARTH_SAMPLERS_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: n_samplers %d (-1: no stage, 0: the default chain, at most %d)",
                       (int)p->n_samplers, (int)HEARTH_SAMPLERS_MAX);
    for (int32_t i = 0; i < p->n_samplers; i++) {
        const int st = (int)p->samplers[i];
        if (st < SMP_STAGE_PENALTIES || st > SMP_STAGE_LAST)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "sampling: samplers[%d]: %d is not a hearth_sampler_stage", (int)i, st);
        sp->stages[i] = (uint8_t)st;
    }
    sp->n_stages = p->n_samplers;
    return HEARTH_OK;
}

/* The caller's biases and a ban of each end-of-generation token. */
static hearth_err eog_bans(const hearth_model *m, smp_params *sp, engine_smp_extra *x) {
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_OK; /* no vocabulary: no end-of-generation tokens */
    const int32_t n_vocab = tok_n_vocab(v);
    size_t n_eog = 0;
    for (int32_t i = 0; i < n_vocab; i++) n_eog += tok_is_eog(v, i);
    x->bias = calloc(sp->n_logit_bias + n_eog + 1, sizeof *x->bias);
    if (!x->bias) return hr_wrap(HEARTH_ERR_NOMEM, "sampling: ignore_eos: ");
    if (sp->n_logit_bias) memcpy(x->bias, sp->logit_bias, sp->n_logit_bias * sizeof *x->bias);
    size_t n = sp->n_logit_bias;
    for (int32_t i = 0; i < n_vocab; i++)
        if (tok_is_eog(v, i)) x->bias[n++] = (hearth_logit_bias){i, -INFINITY};
    sp->logit_bias = x->bias;
    sp->n_logit_bias = n;
    return HEARTH_OK;
}

/* A growing array of breakers. */
typedef struct brk_list {
    smp_dry_breaker *items;
    size_t n, cap;
    size_t first_of_token; /* where the current token's entries start, for dedup */
} brk_list;

static hearth_err brk_add(brk_list *l, int32_t head, const int32_t *tail, int32_t n_tail) {
    for (size_t i = l->first_of_token; i < l->n; i++)
        if (l->items[i].n_tail == n_tail &&
            (n_tail == 0 || !memcmp(l->items[i].tail, tail, (size_t)n_tail * sizeof *tail)))
            return HEARTH_OK; /* that one already */
    if (l->n == BREAKER_ENTRIES_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: dry_sequence_breakers match more than %d tokens",
                       (int)BREAKER_ENTRIES_MAX);
    if (l->n == l->cap) {
        const size_t cap = l->cap ? 2 * l->cap : 256;
        smp_dry_breaker *g = realloc(l->items, cap * sizeof *g);
        if (!g) return hr_wrap(HEARTH_ERR_NOMEM, "sampling: DRY sequence breakers: ");
        l->items = g;
        l->cap = cap;
    }
    smp_dry_breaker *b = &l->items[l->n++];
    memset(b, 0, sizeof *b);
    b->head = head;
    b->n_tail = n_tail;
    if (n_tail) memcpy(b->tail, tail, (size_t)n_tail * sizeof *tail);
    return HEARTH_OK;
}

/* One breaker's entries for one token's text w[0..wn). tails[i]: the
 * breaker's bytes from i on, tokenized (n_tails[i] tokens). */
static hearth_err match_breaker(brk_list *l, int32_t id, const char *w, size_t wn, const char *str,
                                size_t sn, const smp_dry_breaker *tails) {
    for (size_t pos = 0; pos < wn; pos++) {
        if (w[pos] != str[0]) continue;
        size_t i = 1;
        while (i < sn && pos + i < wn && w[pos + i] == str[i]) i++;
        if (i == sn) return brk_add(l, id, NULL, 0); /* the whole string is in the token */
        if (pos + i == wn) { /* the token ends with str[0..i): the rest must follow */
            hearth_err err = brk_add(l, id, tails[i].tail, tails[i].n_tail);
            if (err) return err;
        }
    }
    return HEARTH_OK;
}

static hearth_err check_breaker_strings(const hearth_sampling *p) {
    if (p->n_dry_sequence_breakers > BREAKERS_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: dry_sequence_breakers: %zu strings (at most %d)",
                       p->n_dry_sequence_breakers, (int)BREAKERS_MAX);
    for (size_t j = 0; j < p->n_dry_sequence_breakers; j++) {
        const char *s = p->dry_sequence_breakers[j];
        const size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > BREAKER_BYTES_MAX)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "sampling: dry_sequence_breakers[%zu] must be 1 to %d bytes", j,
                           (int)BREAKER_BYTES_MAX);
    }
    return HEARTH_OK;
}

/* tails[i] for i in [1, n): str[i..n) tokenized, cut to SMP_DRY_TAIL_MAX. */
static hearth_err breaker_tails(const tok_vocab *v, const char *str, size_t n,
                                smp_dry_breaker *tails) {
    for (size_t i = 1; i < n; i++) {
        int32_t ids[2 * BREAKER_BYTES_MAX]; /* a token per byte at most, and a space prefix */
        size_t n_ids = 0;
        hearth_err err =
            tok_encode(v, str + i, n - i, false, false, ids, 2 * BREAKER_BYTES_MAX, &n_ids);
        if (err) return err;
        tails[i].n_tail = (int32_t)(n_ids < SMP_DRY_TAIL_MAX ? n_ids : SMP_DRY_TAIL_MAX);
        memcpy(tails[i].tail, ids, (size_t)tails[i].n_tail * sizeof *ids);
    }
    return HEARTH_OK;
}

enum { TAILS = BREAKER_BYTES_MAX + 1 }; /* tails per breaker string, by offset */

static hearth_err dry_breakers(const tok_vocab *v, const char *const *strs, size_t n_strs,
                               brk_list *l) {
    smp_dry_breaker *tails = calloc(n_strs * TAILS, sizeof *tails);
    const size_t cap = tok_max_piece_len(v) + 64;
    char *w = malloc(cap);
    hearth_err err = tails && w ? HEARTH_OK : HEARTH_ERR_NOMEM;
    for (size_t j = 0; !err && j < n_strs; j++)
        err = breaker_tails(v, strs[j], strlen(strs[j]), &tails[j * TAILS]);
    const int32_t n_vocab = tok_n_vocab(v);
    for (int32_t id = 0; !err && id < n_vocab; id++) {
        size_t wn = 0;
        /* llama.cpp's detokenize({id}, special): text as output shows it, controls rendered */
        if (tok_detokenize(v, &id, 1, false, true, w, cap, &wn) != HEARTH_OK || wn > cap)
            continue; /* longer than any piece: not a token text a breaker could be in */
        l->first_of_token = l->n;
        for (size_t j = 0; !err && j < n_strs; j++)
            err = match_breaker(l, id, w, wn, strs[j], strlen(strs[j]), &tails[j * TAILS]);
    }
    free(tails);
    free(w);
    return err == HEARTH_ERR_NOMEM ? hr_wrap(err, "sampling: DRY sequence breakers: ") : err;
}

hearth_err engine_smp_extra_fill(const hearth_model *m, const hearth_sampling *p, smp_params *sp,
                                 engine_smp_extra *x) {
    memset(x, 0, sizeof *x);
    sp->typical_p = p->typical_p;
    sp->top_n_sigma = p->top_n_sigma;
    sp->xtc_probability = p->xtc_probability;
    sp->xtc_threshold = p->xtc_threshold;
    sp->mirostat = p->mirostat;
    sp->mirostat_tau = p->mirostat_tau;
    sp->mirostat_eta = p->mirostat_eta;
    sp->dry_multiplier = p->dry_multiplier;
    sp->dry_base = p->dry_base;
    sp->dry_allowed_length = p->dry_allowed_length;
    sp->min_keep = p->min_keep;
    sp->dynatemp_range = p->dynatemp_range;
    sp->dynatemp_exponent = p->dynatemp_exponent;
    hearth_err err = chain_order(p, sp);
    if (err) return err;
    if (p->dry_penalty_last_n < -1)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "sampling: dry_penalty_last_n %d (-1: the context, 0: off)",
                       (int)p->dry_penalty_last_n);
    sp->dry_penalty_last_n = p->dry_penalty_last_n < 0 ? m->hp.n_ctx_train : p->dry_penalty_last_n;
    err = p->ignore_eos ? eog_bans(m, sp, x) : HEARTH_OK;
    if (err) return err;
    const bool dry = p->dry_multiplier != 0.0f && sp->dry_penalty_last_n > 0 && p->mirostat == 0;
    const tok_vocab *v = dry ? engine_vocab(m) : NULL;
    if (!v) return HEARTH_OK; /* smp_new checks the numbers; no vocabulary: no breakers */
    const bool given = p->dry_sequence_breakers != NULL;
    if (!given && p->n_dry_sequence_breakers)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "sampling: %zu dry_sequence_breakers but no array",
                       p->n_dry_sequence_breakers);
    if (given && (err = check_breaker_strings(p))) return err;
    brk_list l = {0};
    err = dry_breakers(v, given ? p->dry_sequence_breakers : default_breakers,
                       given ? p->n_dry_sequence_breakers
                             : sizeof default_breakers / sizeof *default_breakers,
                       &l);
    if (err) {
        free(l.items);
        return err;
    }
    x->brk = l.items;
    sp->dry_breakers = l.items;
    sp->n_dry_breakers = l.n;
    return HEARTH_OK;
}

void engine_smp_extra_free(engine_smp_extra *x) {
    free(x->bias);
    free(x->brk);
    memset(x, 0, sizeof *x);
}
