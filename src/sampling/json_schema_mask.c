/*
 * json_schema_mask.c - JSON Schema constrained output over a vocabulary:
 * which tokens may come next so that the output can still become one value
 * the schema accepts (the recognizer is json_schema_run.c).
 *
 * smp_vocab holds every token's bytes once, with the ids of the tokens a
 * JSON text may use sorted by those bytes and, for each, the length of the
 * prefix it shares with the one before. A mask is one walk over that order
 * that keeps the recognizer's state after every prefix of the current
 * token: a token feeds only the bytes after the prefix it shares with the
 * one before, and once a prefix is refused every following token that
 * shares it is skipped without feeding anything. The walk costs the number
 * of distinct prefixes the state lets through, at worst the vocabulary's
 * trie. A step copies the JSON recognizer's state plus one stack of frames
 * per reading, as far as it is used, so two shortcuts matter:
 *
 *   - inside a string that every reading takes as free text (an any-value
 *     part, a string schema without enum/const, an additional key), a
 *     token that stays in the string (vocab_bytes.h's text tokens) is
 *     allowed or not by the characters it adds alone, so those go as a
 *     block: all of them without maxLength, a stored mask per count
 *     (or the set minus the few longer ones) with it; escapes where they
 *     must be canonical are fed through the recognizer. The walk visits
 *     only the tokens that close the string; the others no string takes;
 *   - masks are cached by state (its used bytes compared whole): between
 *     the values of an array, or the fields of objects in a list, the same
 *     states come back.
 *
 * End-of-generation tokens are allowed exactly when the output is a
 * complete value as it stands; once the value is complete, only they are.
 */
#include "json_schema.h"
#include "vocab_bytes.h"

#include <stdlib.h>
#include <string.h>

enum { SC_CACHE = 16 };

typedef struct sc_entry {
    smp_sstate *key;
    bool valid;
    uint64_t used;
    int32_t n_allowed;
    uint32_t *mask; /* [n_words] */
} sc_entry;

struct smp_schemac {
    const smp_vocab *v;
    smp_schema *s;
    smp_sstate state;
    smp_sstate *prefix; /* [max_len + 1] */
    sc_entry cache[SC_CACHE];
    uint64_t clock;
};

hearth_err smp_schemac_new(const smp_vocab *v, smp_schema *schema, smp_schemac **out) {
    smp_schemac *c = hr_calloc(1, sizeof *c);
    if (!c) {
        smp_schema_free(schema);
        return HEARTH_ERR_NOMEM;
    }
    c->v = v;
    c->s = schema;
    c->prefix = malloc(((size_t)v->max_len + 1) * sizeof *c->prefix);
    bool ok = c->prefix != NULL;
    for (int i = 0; i < SC_CACHE && ok; i++) {
        ok = (c->cache[i].mask = malloc(v->n_words * sizeof(uint32_t))) != NULL &&
             (c->cache[i].key = malloc(sizeof(smp_sstate))) != NULL;
    }
    if (!ok) {
        smp_schemac_free(c);
        return hr_fail(HEARTH_ERR_NOMEM, "json_schema: out of memory for the token masks");
    }
    smp_schemac_reset(c);
    *out = c;
    return HEARTH_OK;
}

void smp_schemac_free(smp_schemac *c) {
    if (!c) return;
    for (int i = 0; i < SC_CACHE; i++) {
        free(c->cache[i].mask);
        free(c->cache[i].key);
    }
    free(c->prefix);
    smp_schema_free(c->s);
    free(c);
}

/* The cache stays: its masks depend on the state only. */
void smp_schemac_reset(smp_schemac *c) { smp_sstate_init(&c->state); }

bool smp_schemac_done(const smp_schemac *c) { return smp_sstate_done(&c->state); }

/* The walk over the sorted tokens. prefix[d] is the state after the first
 * d bytes of the current token, valid for d <= the bytes of the token
 * before that were fed; `bad` (0: none) is the length of the shortest
 * refused prefix of the token before, which every token sharing that many
 * bytes with it also has. Correct for any order; the sorted one shares the
 * most. */
static int32_t walk(smp_schemac *c, const walk_order *o, uint32_t *mask) {
    const smp_vocab *v = c->v;
    smp_sstate *prefix = c->prefix;
    smp_sstate_copy(&prefix[0], &c->state);
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
        for (; d < len; d++)
            if (!smp_sstate_step(c->s, &prefix[d + 1], &prefix[d], p[d])) break;
        if (d < len) {
            bad = d + 1;
            continue;
        }
        mask[id / 32] |= 1u << (id % 32);
        n_allowed++;
    }
    return n_allowed;
}

/* Inside a string that every reading takes as free text, how much each
 * kind of reading still allows: `any` characters with any escape (an
 * any-value part, a string schema without enum/const; UINT32_MAX: no
 * bound), and whether some reading is an additional key beside declared
 * properties (no bound, canonical escapes only). */
typedef struct text_room {
    bool has_any, has_canon;
    uint32_t any;
} text_room;

static bool free_text(const smp_schemac *c, text_room *r) {
    const smp_sstate *st = &c->state;
    if (!smp_json_in_text(&st->lex)) return false;
    *r = (text_room){false, false, 0};
    const sch_frame *f = st->frames;
    for (uint32_t t = 0; t < st->n_threads; f += st->depth[t], t++) {
        if (st->depth[t] == 0) return false;
        const sch_frame *top = &f[st->depth[t] - 1];
        const sch_node *n = &c->s->nodes[top->node];
        uint32_t room = UINT32_MAX;
        if (top->kind == SCH_FR_STRING && n->str_trie == SCH_NONE) {
            if (n->max_len != SCH_NONE) room = n->max_len - top->count;
        } else if (top->kind == SCH_FR_OBJECT && (top->flags & SCH_OF_KEY) &&
                   top->pos == SCH_NONE && top->esc == 0 && n->n_props) {
            r->has_canon = true;
            continue;
        } else if (top->kind != SCH_FR_ANY &&
                   !(top->kind == SCH_FR_OBJECT && (top->flags & SCH_OF_KEY) &&
                     top->pos == SCH_NONE)) {
            return false;
        }
        r->has_any = true;
        if (room > r->any) r->any = room;
    }
    return true;
}

/* mask |= set over the whole mask. */
static void or_words(uint32_t *mask, const uint32_t *set, uint32_t n_words) {
    for (uint32_t w = 0; w < n_words; w++) mask[w] |= set[w];
}

/* The text tokens some reading takes (vocab_bytes.h): the counts decide
 * for all but the slow ones (255 or more characters, or an escape where
 * escapes must be canonical), which are fed through the recognizer. The
 * text tokens of at most k characters are one stored mask for small k, the
 * whole set minus the few longer ones for large k. */
static int32_t text_block(smp_schemac *c, const text_room *r, uint32_t *mask) {
    const smp_vocab *v = c->v;
    if (r->has_any && r->any == UINT32_MAX) {
        or_words(mask, v->text, v->n_words);
        return v->n_text;
    }
    if (r->has_any) {
        const uint32_t k = r->any < 254 ? r->any : 254;
        if (k < v->n_upto) {
            or_words(mask, v->upto + (size_t)k * v->n_words, v->n_words);
        } else {
            or_words(mask, v->text, v->n_words);
            for (int32_t i = v->chars_from[k + 1]; i < v->n_text; i++) {
                const int32_t id = v->by_chars[i];
                mask[id / 32] &= ~(1u << (id % 32));
            }
        }
    }
    if (r->has_canon) or_words(mask, v->text_canon, v->n_words);
    for (int32_t i = 0; i < v->n_slow; i++) {
        const int32_t id = v->text_slow[i];
        if (smp_bit(mask, id)) continue;
        const bool long_fits = r->has_any && v->text_chars[id] == 255 && r->any >= 255;
        if (!long_fits && !r->has_canon) continue;
        smp_sstate_copy(&c->prefix[0], &c->state);
        if (smp_sstate_feed(c->s, &c->prefix[0], v->bytes + v->off[id],
                            v->off[id + 1] - v->off[id]))
            mask[id / 32] |= 1u << (id % 32);
    }
    int32_t n = 0; /* the mask held no text token before */
    for (uint32_t w = 0; w < v->n_words; w++) n += __builtin_popcount(mask[w] & v->text[w]);
    return n;
}

/* The mask of the current state, not cached. */
static int32_t compute_mask(smp_schemac *c, uint32_t *mask) {
    const smp_vocab *v = c->v;
    const size_t bytes = v->n_words * sizeof *mask;
    if (smp_sstate_done(&c->state)) {
        memcpy(mask, v->eog, bytes);
        return v->n_eog;
    }
    int32_t n = 0;
    if (smp_sstate_can_end(c->s, &c->state)) {
        memcpy(mask, v->eog, bytes);
        n = v->n_eog;
    } else {
        memset(mask, 0, bytes);
    }
    text_room room;
    if (free_text(c, &room)) return n + text_block(c, &room, mask) + walk(c, &v->closing, mask);
    return n + walk(c, &v->all, mask);
}

const uint32_t *smp_schemac_mask(smp_schemac *c, int32_t *n_allowed) {
    c->clock++;
    const size_t size = smp_sstate_size(&c->state);
    sc_entry *e = NULL, *oldest = &c->cache[0];
    for (int i = 0; i < SC_CACHE; i++) {
        sc_entry *x = &c->cache[i];
        if (x->valid && smp_sstate_size(x->key) == size && !memcmp(x->key, &c->state, size)) {
            e = x;
            break;
        }
        if (!x->valid || (oldest->valid && x->used < oldest->used)) oldest = x;
    }
    if (!e) {
        e = oldest;
        smp_sstate_copy(e->key, &c->state);
        e->valid = true;
        e->n_allowed = compute_mask(c, e->mask);
    }
    e->used = c->clock;
    *n_allowed = e->n_allowed;
    return e->mask;
}

bool smp_schemac_advance(smp_schemac *c, int32_t id) {
    const smp_vocab *v = c->v;
    if (id < 0 || id >= v->n_vocab) return false;
    if (smp_bit(v->eog, id)) return smp_sstate_can_end(c->s, &c->state);
    const uint32_t len = v->off[id + 1] - v->off[id];
    if (smp_sstate_done(&c->state) || len == 0 || len > SMP_VOCAB_PIECE_MAX) return false;
    return smp_sstate_feed(c->s, &c->state, v->bytes + v->off[id], len);
}
