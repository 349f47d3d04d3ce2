/*
 * gbnf_mask.c - a GBNF grammar as a constraint over a vocabulary: which
 * tokens may come next so that the output stays a prefix of a text of the
 * grammar (the recognizer is gbnf_match.c).
 *
 * A mask is one walk over the tokens sorted by their bytes (vocab_bytes.h's
 * `all` order), as json_schema_mask.c does: prefix[d] is the recognizer's
 * state after the first d bytes of the current token, a token feeds only the
 * bytes after the prefix it shares with the one before, and every token
 * sharing a refused prefix is skipped. States are ids and transitions are
 * memoized by the recognizer, so a step of the walk is mostly one table
 * look-up; masks are cached by state (16), since loops of a grammar (the
 * characters of a string, items of a list) come back to the same states.
 *
 * The recognizer's tables are flushed when they are more than half full
 * before a walk, or when one fills during a walk (the walk then starts
 * again once on empty tables, and fails with an error if they fill again).
 */
#include "gbnf.h"
#include "vocab_bytes.h"

#include <stdlib.h>
#include <string.h>

enum { GC_CACHE = 16 };

typedef struct gc_entry {
    uint32_t state;
    bool valid;
    uint64_t used;
    int32_t n_allowed;
    uint32_t *mask; /* [n_words] */
} gc_entry;

struct smp_gramc {
    const smp_vocab *v;
    smp_grammar *g;
    gbnf_m *m;
    uint32_t state;
    uint32_t *prefix; /* [max_len + 1] */
    gc_entry cache[GC_CACHE];
    uint64_t clock;
    int32_t n_over;
};

/* Keeps the current state only; every cached mask goes with the others. */
void smp_gramc_flush(smp_gramc *c) {
    c->state = gbnf_m_flush(c->m, c->state);
    for (int i = 0; i < GC_CACHE; i++) c->cache[i].valid = false;
}

hearth_err smp_gramc_new(const smp_vocab *v, smp_grammar *g, smp_gramc **out) {
    smp_gramc *c = hr_calloc(1, sizeof *c);
    if (!c) {
        smp_grammar_free(g);
        return HEARTH_ERR_NOMEM;
    }
    c->v = v;
    c->g = g;
    hearth_err err = gbnf_m_new(g, &c->m);
    if (!err) {
        c->prefix = malloc(((size_t)v->max_len + 1) * sizeof *c->prefix);
        bool ok = c->prefix != NULL;
        for (int i = 0; i < GC_CACHE && ok; i++)
            ok = (c->cache[i].mask = malloc(v->n_words * sizeof(uint32_t))) != NULL;
        if (!ok) err = hr_fail(HEARTH_ERR_NOMEM, "grammar: out of memory for the token masks");
    }
    if (err) {
        smp_gramc_free(c);
        return err;
    }
    smp_gramc_reset(c);
    *out = c;
    return HEARTH_OK;
}

void smp_gramc_free(smp_gramc *c) {
    if (!c) return;
    for (int i = 0; i < GC_CACHE; i++) free(c->cache[i].mask);
    free(c->prefix);
    gbnf_m_free(c->m);
    smp_grammar_free(c->g);
    free(c);
}

void smp_gramc_reset(smp_gramc *c) {
    uint32_t st = gbnf_m_start(c->m);
    if (st == GBNF_FULL) {
        smp_gramc_flush(c);
        st = gbnf_m_start(c->m);
    }
    /* gbnf_m_new computed the start already, so neither FULL (after a flush)
     * nor OVER (the same grammar) can come back */
    c->state = st;
}

bool smp_gramc_done(const smp_gramc *c) { return gbnf_m_done(c->m, c->state); }

int32_t smp_gramc_n_over(const smp_gramc *c) { return c->n_over; }

/* The walk over the sorted tokens; -1 when the recognizer's tables filled. */
static int32_t walk(smp_gramc *c, uint32_t *mask) {
    const smp_vocab *v = c->v;
    const walk_order *o = &v->all;
    uint32_t *prefix = c->prefix;
    prefix[0] = c->state;
    uint32_t bad = 0;
    int32_t n_allowed = 0;
    for (int32_t k = 0; k < o->n; k++) {
        const uint32_t shared = o->shared[k];
        if (bad && shared >= bad) continue;
        const int32_t id = o->id[k];
        const uint8_t *p = v->bytes + v->off[id];
        const uint32_t len = v->off[id + 1] - v->off[id];
        bad = 0;
        uint32_t d = shared;
        for (; d < len; d++) {
            const uint32_t r = gbnf_m_step(c->m, prefix[d], p[d]);
            if (r == GBNF_FULL) return -1;
            if (r == GBNF_DEAD || r == GBNF_OVER) {
                c->n_over += r == GBNF_OVER;
                break;
            }
            prefix[d + 1] = r;
        }
        if (d < len) {
            bad = d + 1;
            continue;
        }
        mask[id / 32] |= 1u << (id % 32);
        n_allowed++;
    }
    return n_allowed;
}

static int32_t compute_mask(smp_gramc *c, uint32_t *mask) {
    const smp_vocab *v = c->v;
    const size_t bytes = v->n_words * sizeof *mask;
    c->n_over = 0;
    if (gbnf_m_can_end(c->m, c->state)) {
        memcpy(mask, v->eog, bytes);
        if (gbnf_m_done(c->m, c->state)) return v->n_eog;
    } else {
        memset(mask, 0, bytes);
    }
    const int32_t n = walk(c, mask);
    if (n < 0) return -1;
    return n + (gbnf_m_can_end(c->m, c->state) ? v->n_eog : 0);
}

const uint32_t *smp_gramc_mask(smp_gramc *c, int32_t *n_allowed) {
    c->clock++;
    if (gbnf_m_crowded(c->m)) smp_gramc_flush(c);
    gc_entry *e = NULL, *oldest = &c->cache[0];
    for (int i = 0; i < GC_CACHE; i++) {
        gc_entry *x = &c->cache[i];
        if (x->valid && x->state == c->state) {
            e = x;
            break;
        }
        if (!x->valid || (oldest->valid && x->used < oldest->used)) oldest = x;
    }
    if (!e) {
        e = oldest;
        e->valid = false;
        int32_t n = compute_mask(c, e->mask);
        if (n < 0) { /* the tables filled during the walk: once more on empty ones */
            smp_gramc_flush(c);
            n = compute_mask(c, e->mask);
        }
        if (n < 0) {
            hr_fail(HEARTH_ERR_UNSUPPORTED,
                    "grammar: the next token's mask needs more recognizer states than fit "
                    "(the grammar is too ambiguous here)");
            return NULL;
        }
        e->state = c->state;
        e->n_allowed = n;
        e->valid = true;
    }
    e->used = c->clock;
    *n_allowed = e->n_allowed;
    return e->mask;
}

bool smp_gramc_advance(smp_gramc *c, int32_t id) {
    const smp_vocab *v = c->v;
    if (id < 0 || id >= v->n_vocab) return false;
    if (smp_bit(v->eog, id)) return gbnf_m_can_end(c->m, c->state);
    const uint32_t len = v->off[id + 1] - v->off[id];
    if (gbnf_m_done(c->m, c->state) || len == 0 || len > SMP_VOCAB_PIECE_MAX) return false;
    const uint8_t *p = v->bytes + v->off[id];
    for (int attempt = 0; attempt < 2; attempt++) {
        uint32_t st = c->state;
        uint32_t i = 0;
        for (; i < len; i++) {
            st = gbnf_m_step(c->m, st, p[i]);
            if (st == GBNF_FULL || st == GBNF_DEAD || st == GBNF_OVER) break;
        }
        if (i == len) {
            c->state = st;
            return true;
        }
        if (st != GBNF_FULL) return false;
        smp_gramc_flush(c);
    }
    return false;
}
