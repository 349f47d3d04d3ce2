/*
 * dry.c - DRY ("Don't Repeat Yourself", from koboldcpp and text-generation-
 * webui), with the semantics of llama.cpp's sampler of that name, written
 * from its definition:
 *
 *   Over the window h of the last dry_penalty_last_n accepted tokens (prompt
 *   and output; h[L-1] the latest), a token t that would extend a repetition
 *   is one that followed an earlier occurrence of the window's end: for each
 *   position i < L-1, let n(i) be the length of the longest common suffix of
 *   h[0..i] and h[0..L-1], capped at the distance from the end of the window
 *   back to its latest sequence breaker (repetitions never run across one);
 *   when n(i) >= dry_allowed_length, t = h[i+1] could make it n(i) + 1 long.
 *   Each such t (the longest n for it) gets its logit lowered by
 *   dry_multiplier * dry_base^(n - dry_allowed_length), the exponent capped
 *   so the power stays a finite float, unless t is a breaker on its own.
 *   Nothing happens while L <= dry_allowed_length, or when the latest
 *   breaker leaves fewer than dry_allowed_length tokens after it.
 *
 * Sequence breakers come as tokens (smp_dry_breaker, built by the engine from
 * strings as llama.cpp builds them): the head, then its tail, in the text.
 * The common suffixes are computed for every i at once with the Z-algorithm
 * on the reversed window (linear in L), so a draw costs O(L) plus a binary
 * search per penalized token; nothing allocates (the buffers are sized
 * dry_penalty_last_n and n_vocab at creation).
 */
#include "sampler_impl.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static int brk_cmp(const void *a, const void *b) {
    const int32_t x = ((const smp_dry_breaker *)a)->head, y = ((const smp_dry_breaker *)b)->head;
    return (x > y) - (x < y);
}

static hearth_err check_breakers(const smp_dry_breaker *b, size_t n, int32_t n_vocab) {
    for (size_t i = 0; i < n; i++) {
        bool ok = b[i].head >= 0 && b[i].head < n_vocab && b[i].n_tail >= 0 &&
                  b[i].n_tail <= SMP_DRY_TAIL_MAX;
        for (int32_t j = 0; ok && j < b[i].n_tail; j++)
            ok = b[i].tail[j] >= 0 && b[i].tail[j] < n_vocab;
        if (!ok)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "sampling: DRY sequence breaker %zu: a token outside [0, %d) or more "
                           "than %d tail tokens",
                           i, (int)n_vocab, (int)SMP_DRY_TAIL_MAX);
    }
    return HEARTH_OK;
}

hearth_err smp_dry_init(smp_sampler *s) {
    const smp_params *p = &s->params;
    smp_dry *d = &s->dry;
    s->dry_on = p->mirostat == 0 && p->dry_multiplier != 0.0f && p->dry_penalty_last_n > 0;
    if (!s->dry_on) return HEARTH_OK;
    hearth_err err = check_breakers(p->dry_breakers, p->n_dry_breakers, s->n_vocab);
    if (err) return err;
    const size_t cap = (size_t)p->dry_penalty_last_n;
    d->cap = p->dry_penalty_last_n;
    d->ring = calloc(cap, sizeof *d->ring);
    d->hist = calloc(cap, sizeof *d->hist);
    d->z = calloc(cap, sizeof *d->z);
    d->touched = calloc(cap, sizeof *d->touched);
    d->best = calloc((size_t)s->n_vocab, sizeof *d->best);
    if (p->n_dry_breakers) d->brk = calloc(p->n_dry_breakers, sizeof *d->brk);
    if (!d->ring || !d->hist || !d->z || !d->touched || !d->best || (p->n_dry_breakers && !d->brk))
        return hr_wrap(HEARTH_ERR_NOMEM, "sampling: DRY over %d tokens: ", (int)d->cap);
    if (p->n_dry_breakers) {
        memcpy(d->brk, p->dry_breakers, p->n_dry_breakers * sizeof *d->brk);
        qsort(d->brk, p->n_dry_breakers, sizeof *d->brk, brk_cmp);
    }
    d->n_brk = p->n_dry_breakers;
    return HEARTH_OK;
}

void smp_dry_fini(smp_sampler *s) {
    smp_dry *d = &s->dry;
    free(d->ring);
    free(d->hist);
    free(d->z);
    free(d->touched);
    free(d->best);
    free(d->brk);
}

void smp_dry_reset(smp_sampler *s) {
    s->dry.head = 0;
    s->dry.len = 0;
}

void smp_dry_accept(smp_sampler *s, int32_t token) {
    smp_dry *d = &s->dry;
    if (d->len == d->cap) { /* full: the oldest leaves */
        d->ring[d->head] = token;
        d->head = (d->head + 1) % d->cap;
    } else {
        d->ring[(d->head + d->len) % d->cap] = token;
        d->len++;
    }
}

/* The first of a[0, n) whose key is >= key: the elements (breakers by
 * head, candidates by id) are `size` bytes apart and start with their
 * int32_t key, ascending. */
_Static_assert(offsetof(smp_dry_breaker, head) == 0 && offsetof(smp_cand, id) == 0,
               "lower_key reads the key at the start of each element");
static size_t lower_key(const void *a, size_t n, size_t size, int32_t key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        int32_t k;
        memcpy(&k, (const char *)a + mid * size, sizeof k);
        if (k < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first breaker whose head is >= tok. */
static size_t brk_lower(const smp_dry *d, int32_t tok) {
    return lower_key(d->brk, d->n_brk, sizeof *d->brk, tok);
}

/* How many of the window's last tokens a repetition may span: from its end
 * back to the latest complete breaker (the longest one ending there when
 * several share a head), or the whole window without one. */
static int32_t rep_limit(const smp_dry *d, int32_t L) {
    const int32_t *h = d->hist;
    for (int32_t i = 0; i < L; i++) { /* i: the head's distance from the end */
        int32_t longest = -1;
        for (size_t b = brk_lower(d, h[L - 1 - i]); b < d->n_brk && d->brk[b].head == h[L - 1 - i];
             b++) {
            const smp_dry_breaker *k = &d->brk[b];
            if (k->n_tail <= longest || k->n_tail > i) continue;
            bool match = true;
            for (int32_t o = 0; match && o < k->n_tail; o++) match = k->tail[o] == h[L - i + o];
            if (match) longest = k->n_tail;
        }
        if (longest >= 0) return i - longest;
    }
    return L;
}

/* z[k] for k in [1, L): the longest common suffix of h[0..L-1-k] and
 * h[0..L-1], i.e. the Z-array of the reversed window r[j] = h[L-1-j]. */
static void suffix_matches(smp_dry *d, int32_t L) {
    const int32_t *h = d->hist;
    int32_t *z = d->z;
    int32_t lo = 0, hi = 0; /* the match r[lo, hi) = r[0, hi - lo) reaching furthest */
    for (int32_t k = 1; k < L; k++) {
        int32_t n = 0;
        if (k < hi) n = z[k - lo] < hi - k ? z[k - lo] : hi - k;
        while (k + n < L && h[L - 1 - n] == h[L - 1 - k - n]) n++;
        z[k] = n;
        if (k + n > hi) {
            lo = k;
            hi = k + n;
        }
    }
}

static bool lone_breaker(const smp_dry *d, int32_t tok) {
    for (size_t b = brk_lower(d, tok); b < d->n_brk && d->brk[b].head == tok; b++)
        if (d->brk[b].n_tail == 0) return true;
    return false;
}

/* The candidate with id `tok` in rest[0, n_rest) (id order), or NULL. */
static smp_cand *find_cand(smp_sampler *s, int32_t tok) {
    const size_t i = lower_key(s->rest, s->n_rest, sizeof *s->rest, tok);
    return i < s->n_rest && s->rest[i].id == tok ? &s->rest[i] : NULL;
}

void smp_dry_apply(smp_sampler *s) {
    smp_dry *d = &s->dry;
    const smp_params *p = &s->params;
    const int32_t L = d->len, allowed = p->dry_allowed_length;
    if (L <= allowed) return;
    for (int32_t i = 0; i < L; i++) d->hist[i] = d->ring[(d->head + i) % d->cap];
    const int32_t limit = rep_limit(d, L);
    if (limit < allowed) return;
    suffix_matches(d, L);
    int32_t n_touched = 0;
    for (int32_t k = 1; k < L; k++) {
        const int32_t n = d->z[k] < limit ? d->z[k] : limit;
        if (n < allowed) continue;
        const int32_t tok = d->hist[L - k]; /* what followed that occurrence */
        if (d->best[tok] == 0) d->touched[n_touched++] = tok;
        if (d->best[tok] < n + 1) d->best[tok] = n + 1;
    }
    /* llama.cpp's cap: base^exponent below FLT_MAX (ln FLT_MAX = 88.72...) */
    const int32_t max_exp =
        p->dry_base > 1.000001f ? (int32_t)(88.7228391f / logf(p->dry_base)) : 0;
    for (int32_t i = 0; i < n_touched; i++) {
        const int32_t tok = d->touched[i];
        int32_t e = d->best[tok] - 1 - allowed;
        d->best[tok] = 0;
        smp_cand *c = lone_breaker(d, tok) ? NULL : find_cand(s, tok);
        if (!c) continue;
        if (max_exp > 0 && e > max_exp) e = max_exp;
        const float pen = (float)((double)p->dry_multiplier * pow((double)p->dry_base, e));
        c->logit = smp_sanitize(c->logit - pen);
    }
}
