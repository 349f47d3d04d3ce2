/*
 * gbnf_mask.c - a GBNF grammar as a constraint over a vocabulary: which
 * tokens may come next so that the output stays a prefix of a text of the
 * grammar (the recognizer is gbnf_match.c).
 *
 * A mask is one walk over the tokens sorted by their bytes, with masks
 * cached by state (mask_walk.h, shared with json_schema_mask.c). States
 * are ids and transitions are memoized by the recognizer, so a step of the
 * walk is mostly one table look-up; the grammar's loops (the characters of
 * a string, items of a list) come back to the same states.
 *
 * Loops: in a state S that every character of some classes leads back to
 * (inside a string, a free line), every token made of those characters is
 * allowed without reading it. The grammar splits the ASCII characters into
 * classes that every terminal treats alike (at most 62, else this is off),
 * and the others into one more class when no terminal tells them apart
 * (no literal above U+007F, every class holding all or none of them);
 * each token carries the set of its characters' classes (bit 63: bytes
 * that are not whole characters of a class), in walk order, and S's loop
 * classes are found with one character per class. The walk skips such
 * tokens (mask_walk.h): in a string that is nearly every token.
 *
 * The recognizer's tables are flushed when they are more than half full
 * before a walk, or when one fills during a walk (the walk then starts
 * again once on empty tables, and fails with an error if they fill again).
 */
#include "gbnf.h"
#include "mask_walk.h"

#include <stdlib.h>
#include <string.h>

struct smp_gramc {
    smp_mask_core mc; /* prefix states: uint32_t ids */
    smp_grammar *g;
    gbnf_m *m;
    uint32_t state;
    int32_t n_over;
    uint64_t *sig;    /* [v->all.n] classes of each token's bytes; NULL: loops are off */
    uint8_t cls[128]; /* the class of each ASCII byte */
    uint8_t rep[64];  /* a byte of each class */
    uint32_t n_cls;
    bool non_ascii; /* the characters above U+007F are one class (bit NON_ASCII) */
};

enum { NON_ASCII = 62, RAW = 63 }; /* token class bits besides the ASCII classes */

/* Splits the byte classes by membership in[b]; false past 62 classes. */
static bool refine(smp_gramc *c, const bool in[128]) {
    uint8_t split[64][2]; /* old class, member -> new class (0xff: none yet) */
    memset(split, 0xff, sizeof split);
    uint32_t n = 0;
    for (uint32_t b = 0; b < 128; b++) {
        uint8_t *to = &split[c->cls[b]][in[b]];
        if (*to == 0xff) {
            if (n == NON_ASCII) return false; /* bits 62 and 63 are taken */
            *to = (uint8_t)n++;
        }
        c->cls[b] = *to;
    }
    c->n_cls = n;
    return true;
}

/* Whether class k holds every character above U+007F or none. */
static bool all_or_none_above_ascii(const smp_grammar *g, uint32_t k) {
    if (!gbnf_class_meets(g, k, 0x80, 0x10FFFF)) return true;
    const gbnf_class *cl = &g->classes[k];
    const gbnf_range *r = g->ranges + cl->first;
    uint32_t next = 0x80; /* covered up to here; the surrogates are never in a class */
    for (uint32_t j = 0; j < cl->n; j++) {
        if (r[j].hi < 0x80) continue;
        if (r[j].lo > next) return false;
        next = r[j].hi + 1;
        if (next == 0xD800) next = 0xE000;
    }
    return next == 0x110000;
}

/* The classes of ASCII bytes no terminal of g tells apart (the partition
 * refined by each distinct terminal), and whether the characters above
 * U+007F are one more. False past 62 classes or 4096 character classes
 * (then the loops are off: a speed-up only). */
static bool byte_classes(smp_gramc *c) {
    const smp_grammar *g = c->g;
    if (g->n_classes > 4096) return false;
    memset(c->cls, 0, sizeof c->cls);
    c->n_cls = 1;
    c->non_ascii = true;
    bool lit[128] = {false}, in[128];
    for (uint32_t i = 0; i < g->n_syms; i++) {
        if (g->syms[i].kind != GBNF_CHAR) continue;
        if (g->syms[i].arg < 128)
            lit[g->syms[i].arg] = true;
        else
            c->non_ascii = false; /* a literal tells it apart */
    }
    for (uint32_t ch = 0; ch < 128; ch++) {
        if (!lit[ch]) continue;
        for (uint32_t b = 0; b < 128; b++) in[b] = b == ch;
        if (!refine(c, in)) return false;
    }
    for (uint32_t k = 0; k < g->n_classes; k++) {
        for (uint32_t b = 0; b < 128; b++) in[b] = gbnf_class_has(g, k, b);
        if (!refine(c, in)) return false;
        c->non_ascii = c->non_ascii && all_or_none_above_ascii(g, k);
    }
    for (uint32_t b = 128; b-- > 0;) c->rep[c->cls[b]] = (uint8_t)b;
    return true;
}

/* The length of the whole, strictly encoded character at p[0, n) (0: not
 * one: a partial or invalid sequence). */
static uint32_t utf8_char(const uint8_t *p, uint32_t n) {
    const uint8_t b = p[0];
    const uint32_t len = b < 0xC2 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF5 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    const uint8_t lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
    if (p[1] < lo || p[1] > hi) return 0;
    for (uint32_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

/* Each token's classes, in walk order; left off (NULL) when the grammar has
 * too many classes or there is no memory (a speed-up only). */
static void token_classes(smp_gramc *c) {
    const smp_vocab *v = c->mc.v;
    if (!byte_classes(c) || v->all.n == 0) return;
    c->sig = malloc((size_t)v->all.n * sizeof *c->sig);
    if (!c->sig) return;
    for (int32_t k = 0; k < v->all.n; k++) {
        const int32_t id = v->all.id[k];
        uint64_t m = 0;
        const uint8_t *p = v->bytes + v->off[id];
        const uint32_t len = v->off[id + 1] - v->off[id];
        for (uint32_t i = 0; i < len;) {
            if (p[i] < 128) {
                m |= 1ull << c->cls[p[i++]];
                continue;
            }
            const uint32_t n = utf8_char(p + i, len - i);
            if (n == 0 || !c->non_ascii) {
                m |= 1ull << RAW;
                break;
            }
            m |= 1ull << NON_ASCII;
            i += n;
        }
        c->sig[k] = m;
    }
}

/* Keeps the current state only; every cached mask goes with the others. */
void smp_gramc_flush(smp_gramc *c) {
    c->state = gbnf_m_flush(c->m, c->state);
    smp_mask_core_forget(&c->mc);
}

/* The walk's feed (mask_walk.h): prefix states are state ids. */
static uint32_t feed(void *ctx, uint32_t d, const uint8_t *p, uint32_t len) {
    smp_gramc *c = ctx;
    uint32_t *prefix = c->mc.prefix;
    for (; d < len; d++) {
        const uint32_t r = gbnf_m_step(c->m, prefix[d], p[d]);
        if (r == GBNF_FULL) return SMP_WALK_ABORT;
        if (r == GBNF_DEAD || r == GBNF_OVER) {
            c->n_over += r == GBNF_OVER;
            break;
        }
        prefix[d + 1] = r;
    }
    return d;
}

hearth_err smp_gramc_new(const smp_vocab *v, smp_grammar *g, smp_gramc **out) {
    smp_gramc *c = hr_calloc(1, sizeof *c);
    if (!c) {
        smp_grammar_free(g);
        return HEARTH_ERR_NOMEM;
    }
    c->g = g;
    hearth_err err = gbnf_m_new(g, &c->m);
    if (!err) err = smp_mask_core_init(&c->mc, v, sizeof c->state, sizeof c->state, "grammar");
    if (err) {
        smp_gramc_free(c);
        return err;
    }
    token_classes(c);
    smp_gramc_reset(c);
    *out = c;
    return HEARTH_OK;
}

void smp_gramc_free(smp_gramc *c) {
    if (!c) return;
    smp_mask_core_fini(&c->mc);
    free(c->sig);
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

/* The classes whose bytes lead the current state back to itself; *full
 * when the tables filled. */
static uint64_t loop_classes(smp_gramc *c, bool *full) {
    uint64_t a = 0;
    for (uint32_t k = 0; k < c->n_cls && c->sig; k++) {
        const uint32_t r = gbnf_m_step(c->m, c->state, c->rep[k]);
        *full |= r == GBNF_FULL;
        a |= (uint64_t)(r == c->state) << k;
    }
    if (c->sig && c->non_ascii) { /* U+00E9 stands for them all */
        uint32_t r = gbnf_m_step(c->m, c->state, 0xC3);
        if (r < GBNF_OVER) r = gbnf_m_step(c->m, r, 0xA9);
        *full |= r == GBNF_FULL;
        a |= (uint64_t)(r == c->state) << NON_ASCII;
    }
    return a;
}

/* The mask of the current state (smp_mask_fn); when the recognizer's
 * tables fill during the walk, once more on empty ones. */
static int32_t compute_mask(void *ctx, uint32_t *mask) {
    smp_gramc *c = ctx;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt) smp_gramc_flush(c);
        c->n_over = 0;
        const bool can_end = gbnf_m_can_end(c->m, c->state);
        const int32_t n_eog = smp_mask_start(c->mc.v, mask, can_end);
        if (can_end && gbnf_m_done(c->m, c->state)) return n_eog;
        bool full = false;
        const uint64_t loops = loop_classes(c, &full);
        ((uint32_t *)c->mc.prefix)[0] = c->state;
        const int32_t n =
            full ? -1 : smp_mask_walk(c->mc.v, &c->mc.v->all, feed, c, c->sig, loops, mask);
        if (n >= 0) return n + n_eog;
    }
    hr_fail(HEARTH_ERR_UNSUPPORTED, "grammar: the next token's mask needs more recognizer states "
                                    "than fit (the grammar is too ambiguous here)");
    return -1;
}

const uint32_t *smp_gramc_mask(smp_gramc *c, int32_t *n_allowed) {
    if (gbnf_m_crowded(c->m)) smp_gramc_flush(c);
    return smp_mask_get(&c->mc, &c->state, sizeof c->state, compute_mask, c, n_allowed);
}

bool smp_gramc_advance(smp_gramc *c, int32_t id) {
    const smp_vocab *v = c->mc.v;
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
