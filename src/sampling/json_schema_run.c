/*
 * json_schema_run.c - the schema recognizer of json_schema.h: JSON syntax
 * is left to the JSON recognizer (json_prefix.c); this file reads its
 * modes before and after each byte as events (a value starts, a key
 * starts or ends, a string byte, a number ends, a separator, a container
 * closes) and checks them against the schema.
 *
 * A reading is a stack of frames, one per value being read (containers
 * and the innermost scalar). anyOf makes several readings when a value
 * starts: one per alternative that can start with that byte; a reading
 * that refuses an event is dropped, and the byte is refused when none is
 * left. Identical readings are merged, so their number stays that of the
 * alternatives that are still possible. An "any value" part of the schema
 * is one frame that only waits for its value to end (the JSON recognizer
 * checks it), so free JSON costs no frames.
 *
 * Exactness: a frame is only entered, a key only read, a ',' only taken
 * when the value can still be completed: the compiled nodes know the
 * fewest nested containers a value needs (json_schema_compile.c), and
 * every check below refuses a byte only when no completion is left.
 */
#include "json_schema.h"

#include <string.h>

enum { THREAD_MAX = SMP_SCHEMA_MAX_DEPTH + 2 }; /* containers + the innermost value */

typedef enum ev_kind {
    EV_NONE,
    EV_VALUE_START,
    EV_KEY_START,
    EV_STR_BYTE,
    EV_STR_END,
    EV_KEY_END,
    EV_NUM_BYTE,
    EV_NUM_END,
    EV_LIT_END,
    EV_SEP,
    EV_CLOSE
} ev_kind;

typedef struct event {
    uint8_t kind;
    uint8_t c;
    bool newchar;  /* a string byte that starts a character */
    uint8_t depth; /* the JSON recognizer's depth: where the value starts or ended, or the
                      container a key or separator is in */
} event;

static inline bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline bool is_num_mode(uint8_t m) { return m >= SMP_J_NUM_MINUS && m <= SMP_J_NUM_EXP; }

/* The events of byte c, which took the JSON recognizer from pre to post: a
 * byte that ends a number is first that end, then a byte after a value. */
static int classify(const smp_json *pre, const smp_json *post, uint8_t c, event *ev) {
    int n = 0;
    uint8_t mode = pre->mode;
    if (is_num_mode(mode)) {
        if (is_num_mode(post->mode)) {
            ev[0] = (event){.kind = EV_NUM_BYTE, .c = c};
            return 1;
        }
        ev[n++] = (event){.kind = EV_NUM_END, .depth = pre->depth};
        mode = pre->depth ? SMP_J_AFTER : SMP_J_DONE;
    }
    event e = {.kind = EV_NONE, .c = c, .depth = pre->depth};
    switch ((smp_jmode)mode) {
    case SMP_J_TOP:
    case SMP_J_VALUE:
        if (!is_ws(c)) e.kind = EV_VALUE_START;
        break;
    case SMP_J_ARR_FIRST:
        if (!is_ws(c)) e.kind = c == ']' ? EV_CLOSE : EV_VALUE_START;
        break;
    case SMP_J_OBJ_FIRST:
    case SMP_J_KEY:
        if (c == '"') e.kind = EV_KEY_START;
        if (c == '}') e.kind = EV_CLOSE;
        break;
    case SMP_J_AFTER:
        if (c == ',') e.kind = EV_SEP;
        if (c == '}' || c == ']') e.kind = EV_CLOSE;
        break;
    case SMP_J_STR:
        if (pre->need == 0 && c == '"') {
            e.kind = post->mode == SMP_J_COLON ? EV_KEY_END : EV_STR_END;
        } else {
            e.kind = EV_STR_BYTE;
            e.newchar = pre->need == 0;
        }
        break;
    case SMP_J_ESC:
    case SMP_J_HEX:
    case SMP_J_LOW_BSL:
    case SMP_J_LOW_U: e.kind = EV_STR_BYTE; break;
    case SMP_J_LIT:
        if (post->mode != SMP_J_LIT) e.kind = EV_LIT_END;
        break;
    default: break;
    }
    if (e.kind == EV_CLOSE) e.depth = post->depth;
    if (e.kind != EV_NONE) ev[n++] = e;
    return n;
}

/* ---- the schema's questions -------------------------------------------------- */

/* A value of node can still be written at container depth `depth`. */
static inline bool sat(const smp_schema *s, int32_t node, uint32_t depth) {
    if (node < 0) return false;
    const uint8_t md = s->nodes[node].md;
    return md != SCH_INF && depth + md <= SMP_SCHEMA_MAX_DEPTH;
}

static inline int32_t element(const smp_schema *s, const sch_node *n, uint32_t i) {
    return i < n->n_prefix ? s->items[n->item_first + i] : n->items;
}

/* Counting elements past this changes nothing. */
static inline uint32_t count_cap(const sch_node *n) {
    uint32_t cap = n->min_items > n->n_prefix ? n->min_items : n->n_prefix;
    if (n->max_items != SCH_NONE && n->max_items > cap) cap = n->max_items;
    return cap;
}

/* The first required property at or after i (n_props if none). */
static uint32_t next_required(const smp_schema *s, const sch_node *n, uint32_t i) {
    while (i < n->n_props && !s->props[n->prop_first + i].required) i++;
    return i;
}

/* Another key may be an additional property now. */
static bool extra_ok(const smp_schema *s, const sch_node *n, const sch_frame *f, uint32_t depth) {
    if (n->additional < 0 || !sat(s, n->additional, depth)) return false;
    return (f->flags & SCH_OF_EXTRA) || next_required(s, n, f->count) == n->n_props;
}

/* Some declared property allowed now lies below trie node t (SCH_NONE:
 * anywhere): declared ones come in order, none required skipped. */
static bool decl_below(const smp_schema *s, const sch_node *n, const sch_frame *f, uint32_t t,
                       uint32_t depth) {
    if (f->flags & SCH_OF_EXTRA) return false;
    uint32_t last = next_required(s, n, f->count);
    if (last >= n->n_props) last = n->n_props - 1;
    const uint64_t *bits = t == SCH_NONE ? NULL : s->bits + s->trie[t].bits_off;
    for (uint32_t j = f->count; j <= last && j < n->n_props; j++) {
        if (bits && !(bits[j / 64] >> (j % 64) & 1)) continue;
        if (sat(s, s->props[n->prop_first + j].node, depth)) return true;
    }
    return false;
}

/* Keys of objects with declared properties are written in the canonical
 * form (json_schema.h): only the escapes \" \\ \b \f \n \r \t and \u00xx
 * (lower case) for other control bytes, so that an additional key never
 * spells a declared name differently. */
static bool canon_escape(uint8_t *esc, uint8_t c, bool newchar) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    switch (*esc) {
    case 0:
        if (newchar && c == '\\') *esc = 1;
        return true;
    case 1:
        if (c == 'u') return *esc = 2, true;
        *esc = 0;
        return strchr("\"\\bfnrt", c) != NULL && c != 0;
    case 2:
    case 3: return c == '0' ? (*esc = (uint8_t)(*esc + 1), true) : false;
    case 4: return c == '0' || c == '1' ? (*esc = c == '0' ? 5 : 6, true) : false;
    case 5: *esc = 0; return hex && c != '8' && c != '9' && c != 'a' && c != 'c' && c != 'd';
    default: *esc = 0; return hex;
    }
}

/* ---- events on one reading (frames f[0..*d)) ---------------------------------- */

/* The innermost value is complete: its frame goes and its container counts it. */
static void pop_value(const smp_schema *s, sch_frame *f, uint32_t *d) {
    --*d;
    if (*d == 0) return;
    sch_frame *p = &f[*d - 1];
    if (p->kind == SCH_FR_OBJECT) {
        p->flags &= (uint8_t)~SCH_OF_CHILD;
    } else if (p->kind == SCH_FR_ARRAY) {
        if (p->count < count_cap(&s->nodes[p->node])) p->count++;
    }
}

static bool key_byte(const smp_schema *s, sch_frame *f, const event *e) {
    const sch_node *n = &s->nodes[f->node];
    if (n->n_props && !canon_escape(&f->esc, e->c, e->newchar)) return false;
    const bool extra = extra_ok(s, n, f, e->depth);
    if (f->pos == SCH_NONE) return extra;
    const uint32_t k = sch_trie_child(s, f->pos, e->c);
    if (k == SCH_NONE) {
        f->pos = SCH_NONE; /* no declared name: an additional key */
        return extra;
    }
    f->pos = k;
    return extra || decl_below(s, n, f, k, e->depth);
}

static bool key_end(const smp_schema *s, sch_frame *f, uint32_t depth) {
    const sch_node *n = &s->nodes[f->node];
    const int32_t j = f->pos == SCH_NONE ? -1 : s->trie[f->pos].term;
    if (j >= 0) { /* a declared name: that property, if it may come now */
        const uint32_t r = next_required(s, n, f->count);
        if ((f->flags & SCH_OF_EXTRA) || (uint32_t)j < f->count || (uint32_t)j > r) return false;
        const int32_t node = s->props[n->prop_first + (uint32_t)j].node;
        if (!sat(s, node, depth)) return false;
        f->count = (uint16_t)(j + 1);
        f->child = (uint16_t)node;
    } else {
        if (!extra_ok(s, n, f, depth)) return false;
        f->flags |= SCH_OF_EXTRA;
        f->child = (uint16_t)n->additional;
    }
    f->flags = (uint8_t)((f->flags & ~SCH_OF_KEY) | SCH_OF_CHILD);
    f->pos = 0;
    f->esc = 0;
    return true;
}

static bool string_byte(const smp_schema *s, sch_frame *f, const event *e) {
    const sch_node *n = &s->nodes[f->node];
    if (e->newchar) {
        if (n->max_len != SCH_NONE) {
            if (f->count >= n->max_len) return false;
            f->count++;
        } else if (f->count < n->min_len) {
            f->count++;
        }
    }
    if (n->str_trie == SCH_NONE) return true;
    return (f->pos = sch_trie_child(s, f->pos, e->c)) != SCH_NONE;
}

/* Every event but a value's start; false refuses it. */
static bool apply(const smp_schema *s, sch_frame *f, uint32_t *d, const event *e) {
    if (*d == 0) return false; /* only white space before and after the value */
    sch_frame *t = &f[*d - 1];
    const sch_node *n = &s->nodes[t->node];
    if (t->kind == SCH_FR_ANY) { /* its own end, or something inside it */
        const bool end = e->kind == EV_STR_END || e->kind == EV_NUM_END || e->kind == EV_LIT_END ||
                         e->kind == EV_CLOSE;
        if (end && e->depth == t->count) pop_value(s, f, d);
        return true;
    }
    switch ((ev_kind)e->kind) {
    case EV_KEY_START:
        if (t->kind != SCH_FR_OBJECT || (t->flags & (SCH_OF_KEY | SCH_OF_CHILD))) return false;
        if (!extra_ok(s, n, t, e->depth) && !decl_below(s, n, t, SCH_NONE, e->depth)) return false;
        t->flags |= SCH_OF_KEY;
        t->pos = n->key_trie;
        t->esc = 0;
        return true;
    case EV_STR_BYTE:
        if (t->kind == SCH_FR_STRING) return string_byte(s, t, e);
        return t->kind == SCH_FR_OBJECT && (t->flags & SCH_OF_KEY) && key_byte(s, t, e);
    case EV_KEY_END:
        return t->kind == SCH_FR_OBJECT && (t->flags & SCH_OF_KEY) && key_end(s, t, e->depth);
    case EV_STR_END:
        if (t->kind != SCH_FR_STRING || t->count < n->min_len) return false;
        if (n->str_trie != SCH_NONE && s->trie[t->pos].term < 0) return false;
        pop_value(s, f, d);
        return true;
    case EV_NUM_BYTE:
        if (t->kind != SCH_FR_NUMBER) return false;
        if (t->integer && (e->c == '.' || e->c == 'e' || e->c == 'E')) return false;
        if (n->num_trie == SCH_NONE) return true;
        return (t->pos = sch_trie_child(s, t->pos, e->c)) != SCH_NONE;
    case EV_NUM_END:
        if (t->kind != SCH_FR_NUMBER) return false;
        if (n->num_trie != SCH_NONE && s->trie[t->pos].term < 0) return false;
        pop_value(s, f, d);
        return true;
    case EV_LIT_END:
        if (t->kind != SCH_FR_LITERAL) return false;
        pop_value(s, f, d);
        return true;
    case EV_SEP:
        if (t->kind == SCH_FR_OBJECT)
            return extra_ok(s, n, t, e->depth) || decl_below(s, n, t, SCH_NONE, e->depth);
        if (t->kind != SCH_FR_ARRAY) return false;
        if (n->max_items != SCH_NONE && t->count >= n->max_items) return false;
        return sat(s, element(s, n, t->count), e->depth);
    case EV_CLOSE:
        if (t->kind == SCH_FR_OBJECT) {
            if (next_required(s, n, t->count) < n->n_props) return false;
        } else if (t->kind != SCH_FR_ARRAY || t->count < n->min_items) {
            return false;
        }
        pop_value(s, f, d);
        return true;
    default: return false;
    }
}

/* The frame of a value of typed node `a` starting with byte c at depth
 * `depth`, if a can have such a value there. */
static bool start_frame(const smp_schema *s, uint32_t a, uint8_t c, uint32_t depth, sch_frame *fr) {
    const sch_node *n = &s->nodes[a];
    memset(fr, 0, sizeof *fr);
    fr->node = (uint16_t)a;
    switch (c) {
    case '{':
    case '[': {
        const bool obj = c == '{';
        const uint8_t md = obj ? n->md_obj : n->md_arr;
        if (md == SCH_INF || depth + md > SMP_SCHEMA_MAX_DEPTH) return false;
        if (obj ? n->obj_free : n->arr_free) {
            fr->kind = SCH_FR_ANY;
            fr->count = (uint16_t)depth;
        } else {
            fr->kind = obj ? SCH_FR_OBJECT : SCH_FR_ARRAY;
        }
        return true;
    }
    case '"':
        if (n->md_str == SCH_INF) return false;
        fr->kind = SCH_FR_STRING;
        fr->pos = n->str_trie == SCH_NONE ? 0 : n->str_trie;
        return true;
    case 't':
    case 'f':
    case 'n':
        fr->kind = SCH_FR_LITERAL;
        return n->types & (c == 't' ? SCH_T_TRUE : c == 'f' ? SCH_T_FALSE : SCH_T_NULL);
    default:
        if (n->md_num == SCH_INF) return false;
        fr->kind = SCH_FR_NUMBER;
        fr->integer = !(n->types & SCH_T_NUMBER);
        if (n->num_trie == SCH_NONE) return true;
        return (fr->pos = sch_trie_child(s, n->num_trie, c)) != SCH_NONE;
    }
}

/* ---- readings into the next state ----------------------------------------------- */

/* Keeps the reading just written at dst's end (depth d) unless an equal one
 * is there already. */
static void commit(smp_sstate *dst, uint32_t d) {
    const sch_frame *mine = dst->frames + dst->n_frames;
    const sch_frame *other = dst->frames;
    for (uint32_t t = 0; t < dst->n_threads; other += dst->depth[t], t++)
        if (dst->depth[t] == d && !memcmp(other, mine, d * sizeof *mine)) return;
    dst->depth[dst->n_threads++] = (uint8_t)d;
    dst->n_frames = (uint16_t)(dst->n_frames + d);
}

/* Room for one more reading of up to d frames. */
static bool room(const smp_sstate *dst, uint32_t d) {
    return dst->n_threads < SMP_SCHEMA_MAX_THREADS && dst->n_frames + d <= SMP_SCHEMA_MAX_FRAMES;
}

/* A value starts: one reading per alternative of the node it is for. */
static void value_start(const smp_schema *s, smp_sstate *dst, const sch_frame *src, uint32_t d,
                        const event *e) {
    int32_t node = s->root;
    if (d > 0) {
        const sch_frame *t = &src[d - 1];
        if (t->kind == SCH_FR_ANY) { /* a value inside it */
            if (!room(dst, d)) return;
            memcpy(dst->frames + dst->n_frames, src, d * sizeof *src);
            commit(dst, d);
            return;
        }
        const sch_node *n = &s->nodes[t->node];
        if (t->kind == SCH_FR_OBJECT && (t->flags & SCH_OF_CHILD)) {
            node = t->child;
        } else if (t->kind == SCH_FR_ARRAY) {
            if (n->max_items != SCH_NONE && t->count >= n->max_items) return;
            node = element(s, n, t->count);
        } else {
            return;
        }
    }
    if (node < 0 || d + 1 > THREAD_MAX) return;
    const sch_node *n = &s->nodes[node];
    const uint32_t n_alts = n->kind == SCH_ANYOF ? n->n_alts : 1;
    for (uint32_t i = 0; i < n_alts; i++) {
        const uint32_t a = n->kind == SCH_ANYOF ? s->alts[n->alt_first + i] : (uint32_t)node;
        sch_frame fr;
        if (!start_frame(s, a, e->c, e->depth, &fr) || !room(dst, d + 1)) continue;
        sch_frame *out = dst->frames + dst->n_frames;
        memcpy(out, src, d * sizeof *src);
        out[d] = fr;
        commit(dst, d + 1);
    }
}

bool smp_sstate_step(const smp_schema *s, smp_sstate *dst, const smp_sstate *src, uint8_t c) {
    dst->lex = src->lex;
    if (!smp_json_step(&dst->lex, c)) return false;
    event ev[2];
    const int n_ev = classify(&src->lex, &dst->lex, c, ev);
    if (n_ev == 0) { /* white space or syntax only: the readings stay */
        dst->n_threads = src->n_threads;
        dst->pad = 0;
        dst->n_frames = src->n_frames;
        memcpy(dst->depth, src->depth, sizeof dst->depth);
        memcpy(dst->frames, src->frames, src->n_frames * sizeof *src->frames);
        return true;
    }
    dst->n_threads = 0;
    dst->pad = 0;
    dst->n_frames = 0;
    const sch_frame *f = src->frames;
    for (uint32_t t = 0; t < src->n_threads; f += src->depth[t], t++) {
        uint32_t d = src->depth[t];
        if (ev[n_ev - 1].kind == EV_VALUE_START) { /* never after another event */
            value_start(s, dst, f, d, &ev[n_ev - 1]);
            continue;
        }
        if (!room(dst, d)) continue;
        sch_frame *out = dst->frames + dst->n_frames;
        memcpy(out, f, d * sizeof *f);
        bool ok = true;
        for (int i = 0; i < n_ev && ok; i++) ok = apply(s, out, &d, &ev[i]);
        if (ok) commit(dst, d);
    }
    memset(dst->depth + dst->n_threads, 0, SMP_SCHEMA_MAX_THREADS - dst->n_threads);
    return dst->n_threads > 0;
}

void smp_sstate_init(smp_sstate *st) {
    memset(st, 0, offsetof(smp_sstate, frames));
    smp_json_init(&st->lex, false);
    smp_json_limit_ws(&st->lex);
    st->n_threads = 1; /* one reading with no frame: before the value */
}

void smp_sstate_copy(smp_sstate *dst, const smp_sstate *src) {
    memcpy(dst, src, smp_sstate_size(src));
}

bool smp_sstate_feed(const smp_schema *s, smp_sstate *st, const void *bytes, size_t n) {
    smp_sstate a, b;
    const uint8_t *p = bytes;
    const smp_sstate *cur = st;
    for (size_t i = 0; i < n; i++) {
        /* only addresses are compared: cur is st or the state the previous
         * step wrote, never an unset one */
        // cppcheck-suppress uninitvar
        smp_sstate *next = cur == &a ? &b : &a;
        if (!smp_sstate_step(s, next, cur, p[i])) return false;
        cur = next;
    }
    if (cur != st) smp_sstate_copy(st, cur);
    return true;
}

bool smp_sstate_done(const smp_sstate *st) { return smp_json_done(&st->lex); }

bool smp_sstate_can_end(const smp_schema *s, const smp_sstate *st) {
    if (smp_json_done(&st->lex)) return true;
    if (!smp_json_can_end(&st->lex)) return false;
    smp_sstate t;
    return smp_sstate_step(s, &t, st, ' ') && smp_json_done(&t.lex);
}
