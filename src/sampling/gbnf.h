/*
 * gbnf.h - private to src/sampling: GBNF grammars (llama.cpp's grammar
 * format, its grammars/README.md) as a sampling constraint.
 *
 *   gbnf_parse.c  the text -> smp_grammar: rules whose alternatives are
 *                 sequences of terminals (one code point, or a class of
 *                 code points) and references to rules; groups and
 *                 repetitions become rules of their own, as in llama.cpp.
 *                 Checks every reference, the root, left recursion (the
 *                 matcher expands rules eagerly, so a rule that can reach
 *                 itself before reading a character would never stop) and
 *                 that every rule can complete (so every viable prefix can
 *                 be finished: the masks are exact).
 *   gbnf_match.c  the recognizer: a set of stacks as llama.cpp keeps them,
 *                 but each stack a chain of shared, hash-consed frames
 *                 (pos, parent), so equal stacks are one id and a whole set
 *                 of stacks (plus a partial UTF-8 character and whether the
 *                 input may end here) is one interned state id. Transitions
 *                 (state, byte) -> state are memoized: the mask walk over a
 *                 vocabulary mostly looks them up (a lazily built DFA with
 *                 a bounded cache that is flushed when full).
 *   gbnf_mask.c   the constraint over a vocabulary (smp_gramc): masks by
 *                 a walk over the tokens sorted by bytes, cached by state.
 *
 * Terminals are Unicode scalar values read from strictly decoded UTF-8 (no
 * overlongs, surrogates or values above U+10FFFF): output bytes that are not
 * such UTF-8 are never viable.
 */
#ifndef HEARTH_GBNF_H
#define HEARTH_GBNF_H

#include "sampling.h"

#include <stdbool.h>
#include <stdint.h>

/* Limits: a grammar past one is refused (HEARTH_ERR_INVALID_ARG naming it),
 * never a hang or a huge allocation. */
enum {
    GBNF_MAX_TEXT = 1 << 20,   /* bytes of grammar text */
    GBNF_MAX_RULES = 1 << 16,  /* rules, those made for groups and repetitions included */
    GBNF_MAX_SYMS = 1 << 18,   /* symbols of all alternatives, repetitions expanded */
    GBNF_MAX_RANGES = 1 << 18, /* ranges of all character classes */
    GBNF_MAX_NEST = 64,        /* nested parentheses */
    GBNF_MAX_REPEAT = 10000,   /* the bounds of {m,n} */
    GBNF_MAX_NAME = 256        /* bytes of a rule name */
};

/* Limits of the recognizer: a code point whose reading would need a stack
 * deeper than GBNF_MAX_DEPTH frames (rule calls that are not the last of
 * their sequence, nested: output nesting that deep), more than
 * GBNF_MAX_STACKS stacks or GBNF_MAX_WORK expansion steps is refused
 * (GBNF_OVER) and counted, so that a mask left empty by it is an error
 * that says so. */
enum { GBNF_MAX_DEPTH = 2048, GBNF_MAX_STACKS = 4096, GBNF_MAX_WORK = 1 << 16 };

/* ---- the compiled grammar (gbnf_parse.c) ----------------------------------- */

enum { GBNF_END = 0, GBNF_CHAR, GBNF_CLASS, GBNF_REF };

typedef struct gbnf_sym {
    uint32_t kind; /* GBNF_* */
    uint32_t arg;  /* CHAR: the code point; CLASS: class index; REF: rule index */
} gbnf_sym;

typedef struct gbnf_range {
    uint32_t lo, hi; /* inclusive */
} gbnf_range;

/* A set of code points: ranges sorted, disjoint, not adjacent, without
 * surrogates; never empty (the parser refuses an empty class). */
typedef struct gbnf_class {
    uint32_t first, n; /* ranges[first .. first + n) */
    uint32_t ascii[4]; /* membership of 0..127, for the common case */
} gbnf_class;

typedef struct gbnf_rule {
    uint32_t alt_first, n_alts; /* alts[alt_first ..]: each the position in syms of a
                                   sequence ending with a GBNF_END */
} gbnf_rule;

struct smp_grammar {
    gbnf_sym *syms;
    uint32_t n_syms;
    uint32_t *alts;
    uint32_t n_alts;
    gbnf_rule *rules;
    uint32_t n_rules;
    gbnf_class *classes;
    uint32_t n_classes;
    gbnf_range *ranges;
    uint32_t n_ranges;
    uint32_t root;
};

/* smp_grammar_compile (errors "grammar: LINE:COLUMN: what is wrong", the
 * column in characters, 1-based) and smp_grammar_free: sampling.h. */

/* The index in class cls's ranges of the first range with hi >= cp (n when
 * none). */
static inline uint32_t gbnf_class_find(const smp_grammar *g, uint32_t cls, uint32_t cp) {
    const gbnf_class *c = &g->classes[cls];
    const gbnf_range *r = g->ranges + c->first;
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        const uint32_t mid = (lo + hi) / 2;
        if (r[mid].hi < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Whether class cls has a code point in [lo, hi]. */
static inline bool gbnf_class_meets(const smp_grammar *g, uint32_t cls, uint32_t lo, uint32_t hi) {
    const gbnf_class *c = &g->classes[cls];
    const uint32_t i = gbnf_class_find(g, cls, lo);
    return i < c->n && g->ranges[c->first + i].lo <= hi;
}

static inline bool gbnf_class_has(const smp_grammar *g, uint32_t cls, uint32_t cp) {
    if (cp < 128) return g->classes[cls].ascii[cp / 32] >> (cp % 32) & 1;
    return gbnf_class_meets(g, cls, cp, cp);
}

/* ---- the recognizer (gbnf_match.c) ------------------------------------------ */

/* Results of gbnf_m_step besides a state id. */
enum {
    GBNF_DEAD = UINT32_MAX,     /* no text the grammar accepts starts so */
    GBNF_FULL = UINT32_MAX - 1, /* the tables are full: flush, then step again */
    GBNF_OVER = UINT32_MAX - 2  /* past GBNF_MAX_DEPTH, GBNF_MAX_STACKS or GBNF_MAX_WORK */
};

typedef struct gbnf_m gbnf_m;

/* Borrows g (must outlive the matcher). Fails for NOMEM, or with
 * INVALID_ARG when the grammar's start is already past a limit. */
hearth_err gbnf_m_new(const smp_grammar *g, gbnf_m **out);
void gbnf_m_free(gbnf_m *m);
/* The state before any input; GBNF_FULL or GBNF_OVER as gbnf_m_step. */
uint32_t gbnf_m_start(gbnf_m *m);
/* The state after byte b from state st (memoized). */
uint32_t gbnf_m_step(gbnf_m *m, uint32_t st, uint8_t b);
/* The input read so far is a whole text of the grammar. */
bool gbnf_m_can_end(const gbnf_m *m, uint32_t st);
/* ... and nothing can follow it. */
bool gbnf_m_done(const gbnf_m *m, uint32_t st);
/* The tables are more than half full: flush before a walk. */
bool gbnf_m_crowded(const gbnf_m *m);
/* Forgets every state but `keep` and returns keep's new id (GBNF_FULL is
 * impossible after a flush; a state always fits an empty table). Every other
 * state id is invalid afterwards. */
uint32_t gbnf_m_flush(gbnf_m *m, uint32_t keep);
/* Flushes so far (for tests and the bench). */
uint64_t gbnf_m_flushes(const gbnf_m *m);

/* ---- the constraint over a vocabulary (gbnf_mask.c) --------------------------- */

/* As smp_schemac (json_schema.h): a token is allowed iff its bytes are
 * non-empty (at most SMP_VOCAB_PIECE_MAX) and keep the output a prefix of a
 * text of the grammar, or it is an end-of-generation token and the output
 * is a whole text of the grammar. */
typedef struct smp_gramc smp_gramc;

/* Takes ownership of g (freed with the constraint, also on failure); vocab
 * is borrowed and must outlive it. */
hearth_err smp_gramc_new(const smp_vocab *vocab, smp_grammar *g, smp_gramc **out);
void smp_gramc_free(smp_gramc *c);
void smp_gramc_reset(smp_gramc *c);
/* The mask of allowed tokens (bit id % 32 of word id / 32), owned by c and
 * valid until its next call; NULL with an error recorded when the matcher
 * cannot compute it (past its limits). */
const uint32_t *smp_gramc_mask(smp_gramc *c, int32_t *n_allowed);
bool smp_gramc_advance(smp_gramc *c, int32_t id);
bool smp_gramc_done(const smp_gramc *c);
/* Empties the recognizer's tables but for the current state, as when they
 * fill (for tests: the masks after it must not change). */
void smp_gramc_flush(smp_gramc *c);
/* Tokens refused in the last computed mask because their reading was past
 * a limit of the recognizer (0 normally). */
int32_t smp_gramc_n_over(const smp_gramc *c);

#endif
