/*
 * gbnf_match.c - the GBNF recognizer (gbnf.h): which inputs are prefixes of
 * a text of the grammar, and which are whole texts.
 *
 * A stack is a chain of frames; a frame (pos, parent) says "go on reading
 * at symbol `pos`, and when its sequence ends, go on with frame `parent`"
 * (NONE: the text may end). Frames are hash-consed: each (pos, parent) pair
 * exists once, so equal stacks are one frame id, and a parent always has a
 * smaller id than its children. A state is the sorted set of frames whose
 * symbol is a terminal (the "tops", llama.cpp's stacks), whether the input
 * can end here, and the bytes of a character read in part; states are
 * interned too, so one id names one state.
 *
 * Reading a character: every top whose terminal matches continues at the
 * symbol after it, and that continuation is expanded until it reaches
 * terminals: the end of a sequence returns to the parent, a reference to a
 * rule continues at each alternative with a frame for what follows the
 * reference as parent, or with the current parent when the reference is the
 * last symbol of its sequence (so right recursion and repetition do not
 * grow the stack). A frame past GBNF_MAX_DEPTH makes the whole step
 * GBNF_OVER, like too many stacks: refused with a reason rather than
 * followed in part. Each frame is expanded once per character (a stamp),
 * which merges equal stacks and stops the cycles of last-symbol references
 * the parser allows. The parser refused the other left recursion.
 *
 * Partial characters: after a lead byte the state keeps the bytes so far
 * and is viable iff some top's terminal contains a code point the bytes can
 * still become (a contiguous range, under strict UTF-8).
 *
 * Transitions are memoized by (state, byte). The tables grow up to their
 * caps; past one, gbnf_m_step answers GBNF_FULL and the caller flushes
 * (keeping one state: the frames it reaches, renumbered in order).
 */
#include "gbnf.h"

#include <stdlib.h>
#include <string.h>

enum { NONE = UINT32_MAX, DEEP = UINT32_MAX - 3 };
enum {
    MAX_NODES = 1 << 19,
    MAX_STATES = 1 << 17,
    MAX_TOPS = 1 << 21, /* the states' top lists together */
    MAX_MEMO = 1 << 20, /* memo slots (power of two) */
    MAX_DENSE = 4096    /* states with a row of 256 transitions (4 MiB) */
};

/* A dense row's entry not computed yet. */
enum { UNSET = UINT32_MAX - 4 };

typedef struct mnode {
    uint32_t pos, parent, next, depth; /* next: hash chain */
} mnode;

typedef struct mstate {
    uint32_t tops, n_tops; /* tops pool[tops ..] */
    uint32_t utf8;         /* partial character: bytes b0 | b1 << 8 | b2 << 16, count << 24,
                              need << 28; 0: none */
    uint32_t can_end;
    uint32_t hash, next;
    uint32_t dense; /* its row of the dense transition table, NONE: none yet */
} mstate;

typedef struct memo_e {
    uint32_t key; /* state * 256 + byte, + 1 (states < 2^24); 0: empty */
    uint32_t val;
} memo_e;

struct gbnf_m {
    const smp_grammar *g;
    mnode *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *node_head, node_mask; /* buckets: NONE or a node */
    uint32_t *stamp;                /* [cap_nodes] */
    uint32_t cur;
    mstate *states;
    uint32_t n_states, cap_states;
    uint32_t *state_head, state_mask;
    uint32_t *pool;
    uint32_t n_pool, cap_pool;
    memo_e *memo; /* transitions of the states without a dense row */
    uint32_t n_memo, memo_mask;
    uint32_t *dense; /* [n_dense][256] transitions of the first MAX_DENSE states stepped from */
    uint32_t n_dense, cap_dense;
    uint32_t *work, *out; /* scratch: [GBNF_MAX_WORK], [GBNF_MAX_STACKS] */
    uint64_t flushes;
};

static uint32_t mix(uint32_t h, uint32_t x) {
    h ^= x + 0x9e3779b9u + (h << 6) + (h >> 2);
    return h;
}

static uint32_t fin(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

/* Reallocates a chained table's buckets for n entries (at least 2n
 * buckets, all empty); the caller links the entries again. */
static bool rehash(uint32_t **head, uint32_t *mask, uint32_t n) {
    uint32_t size = 1024;
    while (size < 2 * n) size *= 2;
    uint32_t *h = realloc(*head, (size_t)size * sizeof *h);
    if (!h) return false;
    memset(h, 0xff, (size_t)size * sizeof *h);
    *head = h;
    *mask = size - 1;
    return true;
}

/* ---- frames ------------------------------------------------------------------------- */

static void node_link_all(gbnf_m *m) {
    memset(m->node_head, 0xff, ((size_t)m->node_mask + 1) * sizeof *m->node_head);
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const uint32_t b = fin(mix(m->nodes[i].pos, m->nodes[i].parent)) & m->node_mask;
        m->nodes[i].next = m->node_head[b];
        m->node_head[b] = i;
    }
}

/* The frame (pos, parent): its id, GBNF_FULL, or DEEP past GBNF_MAX_DEPTH. */
static uint32_t node(gbnf_m *m, uint32_t pos, uint32_t parent) {
    uint32_t b = fin(mix(pos, parent)) & m->node_mask;
    /* a bucket holds NONE (memset 0xff) or a linked node's id */
    for (uint32_t i = m->node_head[b]; i != NONE; i = m->nodes[i].next)
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
        if (m->nodes[i].pos == pos && m->nodes[i].parent == parent) return i;
    const uint32_t depth = parent == NONE ? 1 : m->nodes[parent].depth + 1;
    if (depth > GBNF_MAX_DEPTH) return DEEP;
    if (m->n_nodes == m->cap_nodes) {
        if (m->cap_nodes == MAX_NODES) return GBNF_FULL;
        const uint32_t cap = m->cap_nodes * 2;
        mnode *n = realloc(m->nodes, (size_t)cap * sizeof *n);
        if (n) m->nodes = n;
        uint32_t *s = realloc(m->stamp, (size_t)cap * sizeof *s);
        if (s) m->stamp = s;
        if (!n || !s || !rehash(&m->node_head, &m->node_mask, cap)) return GBNF_FULL;
        m->cap_nodes = cap;
        node_link_all(m);
        b = fin(mix(pos, parent)) & m->node_mask;
    }
    const uint32_t id = m->n_nodes++;
    m->nodes[id] = (mnode){pos, parent, m->node_head[b], depth};
    m->stamp[id] = 0;
    m->node_head[b] = id;
    return id;
}

/* ---- states ----------------------------------------------------------------------- */

static void state_link_all(gbnf_m *m) {
    memset(m->state_head, 0xff, ((size_t)m->state_mask + 1) * sizeof *m->state_head);
    for (uint32_t i = 0; i < m->n_states; i++) {
        const uint32_t b = m->states[i].hash & m->state_mask;
        m->states[i].next = m->state_head[b];
        m->state_head[b] = i;
    }
}

/* The state of tops[0, n) (sorted, distinct), utf8, can_end: its id or
 * GBNF_FULL. */
static uint32_t state(gbnf_m *m, const uint32_t *tops, uint32_t n, uint32_t utf8, bool can_end) {
    uint32_t h = mix(mix(n, utf8), can_end);
    for (uint32_t i = 0; i < n; i++) h = mix(h, tops[i]);
    h = fin(h);
    for (uint32_t i = m->state_head[h & m->state_mask]; i != NONE; i = m->states[i].next) {
        const mstate *s = &m->states[i];
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): as in node()
        if (s->hash == h && s->n_tops == n && s->utf8 == utf8 && s->can_end == can_end &&
            !memcmp(m->pool + s->tops, tops, n * sizeof *tops))
            return i;
    }
    if ((uint64_t)m->n_pool + n > m->cap_pool) {
        uint64_t cap = m->cap_pool;
        while (cap < (uint64_t)m->n_pool + n) cap *= 2;
        if (cap > MAX_TOPS) return GBNF_FULL;
        uint32_t *p = realloc(m->pool, (size_t)cap * sizeof *p);
        if (!p) return GBNF_FULL;
        m->pool = p;
        m->cap_pool = (uint32_t)cap;
    }
    if (m->n_states == m->cap_states) {
        if (m->cap_states == MAX_STATES) return GBNF_FULL;
        const uint32_t cap = m->cap_states * 2;
        mstate *s = realloc(m->states, (size_t)cap * sizeof *s);
        if (!s) return GBNF_FULL;
        m->states = s;
        if (!rehash(&m->state_head, &m->state_mask, cap)) return GBNF_FULL;
        m->cap_states = cap;
        state_link_all(m);
    }
    const uint32_t id = m->n_states++;
    if (n) memcpy(m->pool + m->n_pool, tops, n * sizeof *tops);
    m->states[id] =
        (mstate){m->n_pool, n, utf8, can_end, h, m->state_head[h & m->state_mask], NONE};
    m->state_head[h & m->state_mask] = id;
    m->n_pool += n;
    return id;
}

/* ---- reading ---------------------------------------------------------------------- */

static int id_cmp(const void *a, const void *b) {
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void sort_ids(uint32_t *a, uint32_t n) {
    if (n > 32) {
        qsort(a, n, sizeof *a, id_cmp);
        return;
    }
    for (uint32_t i = 1; i < n; i++) {
        const uint32_t x = a[i];
        uint32_t j = i;
        for (; j > 0 && a[j - 1] > x; j--) a[j] = a[j - 1];
        a[j] = x;
    }
}

typedef struct expansion {
    uint32_t n_work, n_out;
    bool can_end, over, full;
} expansion;

static void push(gbnf_m *m, expansion *x, uint32_t id) {
    if (id == DEEP) { /* past GBNF_MAX_DEPTH: refused as a whole, with a reason */
        x->over = true;
        return;
    }
    if (id == GBNF_FULL) {
        x->full = true;
        return;
    }
    if (m->stamp[id] == m->cur) return;
    m->stamp[id] = m->cur;
    if (x->n_work == GBNF_MAX_WORK) {
        x->over = true;
        return;
    }
    m->work[x->n_work++] = id;
}

/* Expands the frames pushed so far until only terminals are left (into
 * m->out). The work list is a stack: the order does not matter, the set
 * does. */
static void expand(gbnf_m *m, expansion *x) {
    const smp_grammar *g = m->g;
    while (x->n_work && !x->over && !x->full) {
        const uint32_t id = m->work[--x->n_work];
        const uint32_t pos = m->nodes[id].pos, parent = m->nodes[id].parent;
        const gbnf_sym s = g->syms[pos];
        if (s.kind == GBNF_END) {
            if (parent == NONE)
                x->can_end = true;
            else
                push(m, x, parent);
        } else if (s.kind != GBNF_REF) {
            if (x->n_out == GBNF_MAX_STACKS) {
                x->over = true;
                return;
            }
            m->out[x->n_out++] = id;
        } else {
            const uint32_t cont =
                g->syms[pos + 1].kind == GBNF_END ? parent : node(m, pos + 1, parent);
            if (cont == GBNF_FULL) {
                x->full = true;
                return;
            }
            if (cont == DEEP) {
                x->over = true;
                return;
            }
            const gbnf_rule *r = &g->rules[s.arg];
            for (uint32_t a = 0; a < r->n_alts; a++)
                push(m, x, node(m, g->alts[r->alt_first + a], cont));
        }
    }
}

static void next_stamp(gbnf_m *m) {
    if (++m->cur == 0) { /* wrapped: no stale stamp may equal a new one */
        memset(m->stamp, 0, (size_t)m->cap_nodes * sizeof *m->stamp);
        m->cur = 1;
    }
}

static uint32_t finish(gbnf_m *m, expansion *x) {
    expand(m, x);
    if (x->full) return GBNF_FULL;
    if (x->over) return GBNF_OVER;
    if (x->n_out == 0 && !x->can_end) return GBNF_DEAD;
    sort_ids(m->out, x->n_out);
    return state(m, m->out, x->n_out, 0, x->can_end);
}

uint32_t gbnf_m_start(gbnf_m *m) {
    next_stamp(m);
    expansion x = {0};
    const gbnf_rule *r = &m->g->rules[m->g->root];
    for (uint32_t a = 0; a < r->n_alts; a++)
        push(m, &x, node(m, m->g->alts[r->alt_first + a], NONE));
    return finish(m, &x);
}

/* After reading code point cp in state st. */
static uint32_t read_char(gbnf_m *m, uint32_t st, uint32_t cp) {
    const smp_grammar *g = m->g;
    next_stamp(m);
    expansion x = {0};
    const uint32_t first = m->states[st].tops, n = m->states[st].n_tops;
    for (uint32_t i = 0; i < n && !x.full; i++) {
        const uint32_t id = m->pool[first + i];
        const uint32_t pos = m->nodes[id].pos;
        const gbnf_sym s = g->syms[pos];
        const bool hit = s.kind == GBNF_CHAR ? s.arg == cp : gbnf_class_has(g, s.arg, cp);
        if (hit) push(m, &x, node(m, pos + 1, m->nodes[id].parent));
    }
    return finish(m, &x);
}

/* Whether some top of st can read a code point in [lo, hi]. */
static bool range_viable(const gbnf_m *m, uint32_t st, uint32_t lo, uint32_t hi) {
    const smp_grammar *g = m->g;
    const uint32_t first = m->states[st].tops, n = m->states[st].n_tops;
    for (uint32_t i = 0; i < n; i++) {
        const gbnf_sym s = g->syms[m->nodes[m->pool[first + i]].pos];
        if (s.kind == GBNF_CHAR) {
            if (s.arg >= lo && s.arg <= hi) return true;
            continue;
        }
        if (gbnf_class_meets(g, s.arg, lo, hi)) return true;
    }
    return false;
}

/* The range of continuation bytes at index i (1..3) of a character led by
 * `lead`, strict UTF-8 (no overlongs, surrogates, or values past U+10FFFF). */
static void cont_range(uint8_t lead, uint32_t i, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (i != 1) return;
    if (lead == 0xE0)
        *lo = 0xA0;
    else if (lead == 0xED)
        *hi = 0x9F;
    else if (lead == 0xF0)
        *lo = 0x90;
    else if (lead == 0xF4)
        *hi = 0x8F;
}

/* After byte b, which starts or continues a character of `need` bytes
 * whose first `have` bytes are in `bytes`. */
static uint32_t read_multi(gbnf_m *m, uint32_t st, uint8_t bytes[4], uint32_t have, uint32_t need) {
    uint32_t lo = bytes[0] & (0x7F >> need), hi = lo;
    for (uint32_t i = 1; i < need; i++) {
        uint8_t l = bytes[i], h = bytes[i];
        if (i >= have) cont_range(bytes[0], i, &l, &h);
        lo = lo << 6 | (l & 0x3Fu);
        hi = hi << 6 | (h & 0x3Fu);
    }
    if (have == need) return read_char(m, st, lo);
    if (!range_viable(m, st, lo, hi)) return GBNF_DEAD;
    const uint32_t utf8 =
        bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | have << 24 | need << 28;
    const mstate s = m->states[st]; /* its tops copied: state() may move the pool */
    memcpy(m->out, m->pool + s.tops, s.n_tops * sizeof *m->out);
    return state(m, m->out, s.n_tops, utf8, false);
}

static uint32_t compute(gbnf_m *m, uint32_t st, uint8_t b) {
    const uint32_t utf8 = m->states[st].utf8;
    uint8_t bytes[4] = {0};
    if (utf8) {
        const uint32_t have = utf8 >> 24 & 0xF, need = utf8 >> 28;
        bytes[0] = (uint8_t)utf8, bytes[1] = (uint8_t)(utf8 >> 8), bytes[2] = (uint8_t)(utf8 >> 16);
        uint8_t lo, hi;
        cont_range(bytes[0], have, &lo, &hi);
        if (b < lo || b > hi) return GBNF_DEAD;
        bytes[have] = b;
        /* the state's tops, read from a state without the partial character */
        return read_multi(m, st, bytes, have + 1, need);
    }
    if (b < 0x80) return read_char(m, st, b);
    uint32_t need;
    if (b >= 0xC2 && b <= 0xDF)
        need = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        need = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        need = 4;
    else
        return GBNF_DEAD;
    bytes[0] = b;
    return read_multi(m, st, bytes, 1, need);
}

static uint32_t memo_slot(const gbnf_m *m, uint32_t key) {
    uint32_t i = fin(key) & m->memo_mask;
    while (m->memo[i].key && m->memo[i].key != key) i = (i + 1) & m->memo_mask;
    return i;
}

static void memo_put(gbnf_m *m, uint32_t key, uint32_t val) {
    if ((m->n_memo + 1) * 2 > m->memo_mask + 1) {
        const uint32_t size = (m->memo_mask + 1) * 2;
        if (size > MAX_MEMO) return; /* not memoized; gbnf_m_crowded asks for a flush */
        memo_e *old = m->memo, *t = hr_calloc(size, sizeof *t);
        if (!t) return;
        const uint32_t old_size = m->memo_mask + 1;
        m->memo = t;
        m->memo_mask = size - 1;
        for (uint32_t i = 0; i < old_size; i++)
            if (old[i].key) m->memo[memo_slot(m, old[i].key)] = old[i];
        free(old);
    }
    const uint32_t i = memo_slot(m, key);
    m->memo[i] = (memo_e){key, val};
    m->n_memo++;
}

/* Gives state st a dense row if there is room; false if not. */
static bool dense_row(gbnf_m *m, uint32_t st) {
    if (m->n_dense == MAX_DENSE) return false;
    if (m->n_dense == m->cap_dense) {
        const uint32_t cap = m->cap_dense ? m->cap_dense * 2 : 16;
        uint32_t *d = realloc(m->dense, (size_t)cap * 256 * sizeof *d);
        if (!d) return false;
        m->dense = d;
        m->cap_dense = cap;
    }
    uint32_t *row = m->dense + (size_t)m->n_dense * 256;
    for (int i = 0; i < 256; i++) row[i] = UNSET;
    m->states[st].dense = m->n_dense++;
    return true;
}

/* A mask walk steps from the same few states over and over: their
 * transitions sit in dense rows (one load); the others in the memo. */
uint32_t gbnf_m_step(gbnf_m *m, uint32_t st, uint8_t b) {
    uint32_t d = m->states[st].dense;
    if (d != NONE) {
        const uint32_t v = m->dense[(size_t)d * 256 + b];
        if (v != UNSET) return v;
    } else if (!dense_row(m, st)) {
        const uint32_t key = (st << 8 | b) + 1;
        const memo_e *e = &m->memo[memo_slot(m, key)];
        if (e->key) return e->val;
        const uint32_t r = compute(m, st, b);
        if (r != GBNF_FULL) memo_put(m, key, r);
        return r;
    }
    const uint32_t r = compute(m, st, b);
    d = m->states[st].dense; /* compute may move the states */
    if (r != GBNF_FULL) m->dense[(size_t)d * 256 + b] = r;
    return r;
}

bool gbnf_m_can_end(const gbnf_m *m, uint32_t st) { return m->states[st].can_end; }

bool gbnf_m_done(const gbnf_m *m, uint32_t st) {
    return m->states[st].can_end && m->states[st].n_tops == 0 && !m->states[st].utf8;
}

bool gbnf_m_crowded(const gbnf_m *m) {
    return m->n_nodes > MAX_NODES / 2 || m->n_states > MAX_STATES / 2 || m->n_pool > MAX_TOPS / 2 ||
           (m->n_memo + 1) * 4 > MAX_MEMO;
}

uint64_t gbnf_m_flushes(const gbnf_m *m) { return m->flushes; }

uint32_t gbnf_m_flush(gbnf_m *m, uint32_t keep) {
    m->flushes++;
    const mstate s = m->states[keep];
    /* mark the frames keep reaches; parents have smaller ids, so one pass
     * from the top id down finds them all */
    next_stamp(m);
    for (uint32_t i = 0; i < s.n_tops; i++) m->stamp[m->pool[s.tops + i]] = m->cur;
    for (uint32_t i = m->n_nodes; i-- > 0;)
        if (m->stamp[i] == m->cur && m->nodes[i].parent != NONE)
            m->stamp[m->nodes[i].parent] = m->cur;
    /* renumber in order (new id <= old id: in place), reusing stamp as the map */
    const uint32_t mark = m->cur;
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        if (m->stamp[i] != mark) continue;
        const uint32_t parent = m->nodes[i].parent;
        m->nodes[n] = m->nodes[i];
        m->nodes[n].parent = parent == NONE ? NONE : m->stamp[parent];
        m->stamp[i] = n++;
    }
    for (uint32_t i = 0; i < s.n_tops; i++) m->out[i] = m->stamp[m->pool[s.tops + i]];
    m->n_nodes = n;
    memset(m->stamp, 0, (size_t)m->cap_nodes * sizeof *m->stamp);
    m->cur = 1;
    node_link_all(m);
    sort_ids(m->out, s.n_tops);
    m->n_states = 0;
    m->n_pool = 0;
    memset(m->state_head, 0xff, ((size_t)m->state_mask + 1) * sizeof *m->state_head);
    memset(m->memo, 0, ((size_t)m->memo_mask + 1) * sizeof *m->memo);
    m->n_memo = 0;
    m->n_dense = 0;
    return state(m, m->out, s.n_tops, s.utf8, s.can_end);
}

void gbnf_m_free(gbnf_m *m) {
    if (!m) return;
    free(m->nodes);
    free(m->node_head);
    free(m->stamp);
    free(m->states);
    free(m->state_head);
    free(m->pool);
    free(m->memo);
    free(m->dense);
    free(m->work);
    free(m->out);
    free(m);
}

hearth_err gbnf_m_new(const smp_grammar *g, gbnf_m **out) {
    gbnf_m *m = hr_calloc(1, sizeof *m);
    if (!m) return HEARTH_ERR_NOMEM;
    m->g = g;
    m->cap_nodes = 1024, m->cap_states = 256, m->cap_pool = 1024;
    m->nodes = malloc(m->cap_nodes * sizeof *m->nodes);
    m->stamp = hr_calloc(m->cap_nodes, sizeof *m->stamp);
    m->states = malloc(m->cap_states * sizeof *m->states);
    m->pool = malloc(m->cap_pool * sizeof *m->pool);
    m->memo = hr_calloc(1024, sizeof *m->memo);
    m->memo_mask = 1023;
    m->work = malloc(GBNF_MAX_WORK * sizeof *m->work);
    m->out = malloc(GBNF_MAX_STACKS * sizeof *m->out);
    if (!m->nodes || !m->stamp || !m->states || !m->pool || !m->memo || !m->work || !m->out ||
        !rehash(&m->node_head, &m->node_mask, m->cap_nodes) ||
        !rehash(&m->state_head, &m->state_mask, m->cap_states)) {
        gbnf_m_free(m);
        return hr_fail(HEARTH_ERR_NOMEM, "grammar: out of memory for the recognizer");
    }
    m->cur = 1;
    const uint32_t st = gbnf_m_start(m);
    if (st == GBNF_OVER || st == GBNF_FULL) {
        gbnf_m_free(m);
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "grammar: the start of the grammar needs more than %d parse stacks, %d "
                       "nested rule calls or %d expansion steps (too ambiguous or too deep)",
                       (int)GBNF_MAX_STACKS, (int)GBNF_MAX_DEPTH, (int)GBNF_MAX_WORK);
    }
    *out = m;
    return HEARTH_OK;
}
