/*
 * gbnf_ref.h - for the grammar tests: an independent reference recognizer
 * over a compiled grammar (smp_grammar, gbnf.h), an Earley parser written
 * plainly (items are a dot in the symbol array and an origin; nullable rules
 * are predicted through, as Aycock and Horspool do), against which the
 * stack recognizer and the token masks are compared. It reads the output as
 * bytes: strict UTF-8, a trailing partial character viable iff some item
 * expects a code point the bytes can still become.
 */
#ifndef HEARTH_TESTS_GBNF_REF_H
#define HEARTH_TESTS_GBNF_REF_H

#include "sampling/gbnf.h"
#include "test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_item {
    uint32_t dot, origin;
} ref_item;

typedef struct ref_set {
    ref_item *it;
    uint32_t n, cap;
} ref_set;

typedef struct ref_g {
    const smp_grammar *g;
    uint32_t *rule_of; /* [n_syms]: the rule whose alternative holds the symbol */
    bool *nullable;    /* [n_rules] */
} ref_g;

static inline ref_g ref_new(const smp_grammar *g) {
    ref_g r = {g, calloc(g->n_syms + 1, sizeof(uint32_t)), calloc(g->n_rules + 1, sizeof(bool))};
    REQUIRE(r.rule_of && r.nullable);
    for (uint32_t k = 0; k < g->n_rules; k++)
        for (uint32_t a = 0; a < g->rules[k].n_alts; a++)
            for (uint32_t p = g->alts[g->rules[k].alt_first + a];; p++) {
                r.rule_of[p] = k;
                if (g->syms[p].kind == GBNF_END) break;
            }
    for (bool changed = true; changed;) { /* plain iteration to the fixed point */
        changed = false;
        for (uint32_t k = 0; k < g->n_rules; k++) {
            if (r.nullable[k]) continue;
            for (uint32_t a = 0; a < g->rules[k].n_alts && !r.nullable[k]; a++) {
                bool all = true;
                for (uint32_t p = g->alts[g->rules[k].alt_first + a]; g->syms[p].kind != GBNF_END;
                     p++)
                    all = all && g->syms[p].kind == GBNF_REF && r.nullable[g->syms[p].arg];
                if (all) r.nullable[k] = changed = true;
            }
        }
    }
    return r;
}

static inline void ref_free(ref_g *r) {
    free(r->rule_of);
    free(r->nullable);
}

static inline void ref_add(ref_set *s, uint32_t dot, uint32_t origin) {
    for (uint32_t i = 0; i < s->n; i++)
        if (s->it[i].dot == dot && s->it[i].origin == origin) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->it = realloc(s->it, s->cap * sizeof *s->it);
        REQUIRE(s->it);
    }
    s->it[s->n++] = (ref_item){dot, origin};
}

/* Predicts and completes set k until nothing changes. */
static inline void ref_close(const ref_g *r, ref_set *sets, uint32_t k) {
    const smp_grammar *g = r->g;
    ref_set *s = &sets[k];
    for (uint32_t i = 0; i < s->n; i++) {
        const ref_item it = s->it[i];
        const gbnf_sym sym = g->syms[it.dot];
        if (sym.kind == GBNF_REF) {
            const gbnf_rule *rl = &g->rules[sym.arg];
            for (uint32_t a = 0; a < rl->n_alts; a++) ref_add(s, g->alts[rl->alt_first + a], k);
            if (r->nullable[sym.arg]) ref_add(s, it.dot + 1, it.origin);
        } else if (sym.kind == GBNF_END) {
            const uint32_t done = r->rule_of[it.dot];
            ref_set *o = &sets[it.origin];
            for (uint32_t j = 0; j < o->n; j++) { /* o may be s: index, not pointer */
                const ref_item w = o->it[j];
                if (g->syms[w.dot].kind == GBNF_REF && g->syms[w.dot].arg == done)
                    ref_add(s, w.dot + 1, w.origin);
            }
        }
    }
}

static inline bool ref_term_has(const smp_grammar *g, gbnf_sym s, uint32_t lo, uint32_t hi) {
    if (s.kind == GBNF_CHAR) return s.arg >= lo && s.arg <= hi;
    const gbnf_class *c = &g->classes[s.arg]; /* every range, plainly */
    for (uint32_t i = 0; i < c->n; i++)
        if (g->ranges[c->first + i].lo <= hi && g->ranges[c->first + i].hi >= lo) return true;
    return false;
}

/* Decodes b[0, n) strictly into cps (at most n); *partial_lo/hi: the range a
 * trailing incomplete character can still become (lo > hi: none). False
 * when the bytes are not a prefix of valid UTF-8. */
static inline bool ref_utf8(const uint8_t *b, size_t n, uint32_t *cps, size_t *n_cps, uint32_t *plo,
                            uint32_t *phi) {
    size_t i = 0, k = 0;
    *plo = 1, *phi = 0;
    while (i < n) {
        const uint8_t c = b[i];
        size_t need;
        uint32_t v, min;
        if (c < 0x80)
            need = 1, v = c, min = 0;
        else if (c >= 0xC0 && c < 0xE0)
            need = 2, v = c & 0x1Fu, min = 0x80;
        else if (c >= 0xE0 && c < 0xF0)
            need = 3, v = c & 0x0Fu, min = 0x800;
        else if (c >= 0xF0 && c < 0xF8)
            need = 4, v = c & 0x07u, min = 0x10000;
        else
            return false;
        size_t j = 1;
        for (; j < need && i + j < n; j++) {
            if ((b[i + j] & 0xC0) != 0x80) return false;
            v = v << 6 | (b[i + j] & 0x3Fu);
        }
        if (j < need) { /* trailing partial: every completion, then keep the valid ones */
            uint32_t lo = v, hi = v;
            for (size_t r = j; r < need; r++) lo = lo << 6, hi = hi << 6 | 0x3F;
            if (lo < min) lo = min;
            if (hi > 0x10FFFF) hi = 0x10FFFF;
            if (lo >= 0xD800 && hi <= 0xDFFF) return false;
            if (lo >= 0xD800 && lo <= 0xDFFF) lo = 0xE000;
            if (hi >= 0xD800 && hi <= 0xDFFF) hi = 0xD7FF;
            if (lo > hi) return false;
            *plo = lo, *phi = hi;
            break;
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
        cps[k++] = v;
        i += need;
    }
    *n_cps = k;
    return true;
}

/* A chart: the item sets after each code point read so far. */
typedef struct ref_chart {
    ref_set *sets;
    size_t n, cap; /* sets[0, n): n - 1 code points read */
} ref_chart;

static inline void ref_chart_init(const ref_g *r, ref_chart *c) {
    memset(c, 0, sizeof *c);
    c->cap = 16;
    c->sets = calloc(c->cap, sizeof *c->sets);
    REQUIRE(c->sets);
    c->n = 1;
    const gbnf_rule *root = &r->g->rules[r->g->root];
    for (uint32_t a = 0; a < root->n_alts; a++)
        ref_add(&c->sets[0], r->g->alts[root->alt_first + a], 0);
    ref_close(r, c->sets, 0);
}

static inline void ref_chart_free(ref_chart *c) {
    for (size_t i = 0; i < c->cap; i++) free(c->sets[i].it);
    free(c->sets);
}

/* Reads code point cp: a new set (maybe empty). */
static inline void ref_chart_push(const ref_g *r, ref_chart *c, uint32_t cp) {
    if (c->n == c->cap) {
        c->sets = realloc(c->sets, 2 * c->cap * sizeof *c->sets);
        REQUIRE(c->sets);
        memset(c->sets + c->cap, 0, c->cap * sizeof *c->sets);
        c->cap *= 2;
    }
    const size_t k = c->n - 1;
    c->sets[k + 1].n = 0;
    for (uint32_t i = 0; i < c->sets[k].n; i++) {
        const ref_item it = c->sets[k].it[i];
        const gbnf_sym s = r->g->syms[it.dot];
        if ((s.kind == GBNF_CHAR || s.kind == GBNF_CLASS) && ref_term_has(r->g, s, cp, cp))
            ref_add(&c->sets[k + 1], it.dot + 1, it.origin);
    }
    c->n++;
    ref_close(r, c->sets, (uint32_t)k + 1);
}

/* 0: not viable; 1: a viable prefix; 2: a whole text of the grammar; with a
 * partial character of completions [plo, phi] after the chart (plo > phi:
 * none). */
static inline int ref_chart_verdict(const ref_g *r, const ref_chart *c, uint32_t plo,
                                    uint32_t phi) {
    const ref_set *s = &c->sets[c->n - 1];
    if (!s->n) return 0;
    if (plo <= phi) { /* some item must expect one of the partial's completions */
        for (uint32_t i = 0; i < s->n; i++) {
            const gbnf_sym y = r->g->syms[s->it[i].dot];
            if ((y.kind == GBNF_CHAR || y.kind == GBNF_CLASS) && ref_term_has(r->g, y, plo, phi))
                return 1;
        }
        return 0;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        const ref_item it = s->it[i];
        if (it.origin == 0 && r->g->syms[it.dot].kind == GBNF_END &&
            r->rule_of[it.dot] == r->g->root)
            return 2;
    }
    return 1;
}

/* The verdict after the chart plus bytes b[0, n) (the chart is left as it was). */
static inline int ref_chart_try(const ref_g *r, ref_chart *c, const void *b, size_t n) {
    uint32_t *cps = malloc((n + 1) * sizeof *cps);
    size_t n_cps = 0;
    uint32_t plo, phi;
    REQUIRE(cps);
    int res = 0;
    if (ref_utf8(b, n, cps, &n_cps, &plo, &phi)) {
        const size_t n0 = c->n;
        size_t i = 0;
        for (; i < n_cps && c->sets[c->n - 1].n; i++) ref_chart_push(r, c, cps[i]);
        res = i == n_cps ? ref_chart_verdict(r, c, plo, phi) : 0;
        c->n = n0;
    }
    free(cps);
    return res;
}

/* Moves the chart over the whole characters of out[*done, n) (a partial
 * one at the end stays out of it); *done advances past them. */
static inline void ref_chart_feed(const ref_g *r, ref_chart *c, const char *out, size_t *done,
                                  size_t n) {
    uint32_t *cps = malloc((n - *done + 1) * sizeof *cps), plo, phi;
    size_t n_cps = 0;
    REQUIRE(cps && ref_utf8((const uint8_t *)out + *done, n - *done, cps, &n_cps, &plo, &phi));
    for (size_t i = 0; i < n_cps; i++) {
        ref_chart_push(r, c, cps[i]);
        *done += cps[i] < 0x80 ? 1 : cps[i] < 0x800 ? 2 : cps[i] < 0x10000 ? 3 : 4;
    }
    free(cps);
}

/* 0: not viable; 1: a viable prefix; 2: a whole text of the grammar. */
static inline int ref_check(const ref_g *r, const void *bytes, size_t n) {
    ref_chart c;
    ref_chart_init(r, &c);
    const int res = ref_chart_try(r, &c, bytes, n);
    ref_chart_free(&c);
    return res;
}

#endif
