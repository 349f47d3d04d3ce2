/*
 * json_schema_mask.c - JSON Schema constrained output over a vocabulary:
 * which tokens may come next so that the output can still become one value
 * the schema accepts (the recognizer is json_schema_run.c).
 *
 * A mask is one walk over the tokens sorted by bytes, cached by state
 * (mask_walk.h, shared with gbnf_mask.c); a state is the JSON recognizer's
 * plus one stack of frames per reading, compared by its used bytes. A step
 * copies the state, so one more shortcut matters: inside a string that
 * every reading takes as free text (an any-value part, a string schema
 * without enum/const, an additional key), a token that stays in the string
 * (vocab_bytes.h's text tokens) is allowed or not by the characters it adds
 * alone, so those go as a block: all of them without maxLength, a stored
 * mask per count (or the set minus the few longer ones) with it; escapes
 * where they must be canonical are fed through the recognizer. The walk
 * then visits only the tokens that close the string.
 *
 * End-of-generation tokens are allowed exactly when the output is a
 * complete value as it stands; once the value is complete, only they are.
 */
#include "json_schema.h"
#include "mask_walk.h"

#include <stdlib.h>

struct smp_schemac {
    smp_mask_core mc; /* prefix states: smp_sstate */
    smp_schema *s;
    smp_sstate state;
};

/* The walk's feed (mask_walk.h). */
static uint32_t feed(void *ctx, uint32_t d, const uint8_t *p, uint32_t len) {
    const smp_schemac *c = ctx;
    smp_sstate *prefix = c->mc.prefix;
    for (; d < len; d++)
        if (!smp_sstate_step(c->s, &prefix[d + 1], &prefix[d], p[d])) break;
    return d;
}

hearth_err smp_schemac_new(const smp_vocab *v, smp_schema *schema, smp_schemac **out) {
    smp_schemac *c = hr_calloc(1, sizeof *c);
    if (!c) {
        smp_schema_free(schema);
        return HEARTH_ERR_NOMEM;
    }
    c->s = schema;
    const hearth_err err =
        smp_mask_core_init(&c->mc, v, sizeof(smp_sstate), sizeof(smp_sstate), "json_schema");
    if (err) {
        smp_schemac_free(c);
        return err;
    }
    smp_schemac_reset(c);
    *out = c;
    return HEARTH_OK;
}

void smp_schemac_free(smp_schemac *c) {
    if (!c) return;
    smp_mask_core_fini(&c->mc);
    smp_schema_free(c->s);
    free(c);
}

/* The cache stays: its masks depend on the state only. */
void smp_schemac_reset(smp_schemac *c) { smp_sstate_init(&c->state); }

bool smp_schemac_done(const smp_schemac *c) { return smp_sstate_done(&c->state); }

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
    const smp_vocab *v = c->mc.v;
    smp_sstate *scratch = c->mc.prefix;
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
        smp_sstate_copy(scratch, &c->state);
        if (smp_sstate_feed(c->s, scratch, v->bytes + v->off[id], v->off[id + 1] - v->off[id]))
            mask[id / 32] |= 1u << (id % 32);
    }
    int32_t n = 0; /* the mask held no text token before */
    for (uint32_t w = 0; w < v->n_words; w++) n += __builtin_popcount(mask[w] & v->text[w]);
    return n;
}

/* The walk over order o from the current state (two calls: not inlined,
 * which keeps compute_mask's registers out of the walk's loop). */
static int32_t walk(smp_schemac *c, const walk_order *o, uint32_t *mask) {
    smp_sstate_copy(c->mc.prefix, &c->state);
    return smp_mask_walk(c->mc.v, o, feed, c, NULL, 0, mask);
}

/* The mask of the current state (smp_mask_fn). */
static int32_t compute_mask(void *ctx, uint32_t *mask) {
    smp_schemac *c = ctx;
    const smp_vocab *v = c->mc.v;
    if (smp_sstate_done(&c->state)) return smp_mask_start(v, mask, true);
    const int32_t n = smp_mask_start(v, mask, smp_sstate_can_end(c->s, &c->state));
    text_room room;
    if (free_text(c, &room)) return n + text_block(c, &room, mask) + walk(c, &v->closing, mask);
    return n + walk(c, &v->all, mask);
}

const uint32_t *smp_schemac_mask(smp_schemac *c, int32_t *n_allowed) {
    return smp_mask_get(&c->mc, &c->state, smp_sstate_size(&c->state), compute_mask, c, n_allowed);
}

bool smp_schemac_advance(smp_schemac *c, int32_t id) {
    const smp_vocab *v = c->mc.v;
    if (id < 0 || id >= v->n_vocab) return false;
    if (smp_bit(v->eog, id)) return smp_sstate_can_end(c->s, &c->state);
    const uint32_t len = v->off[id + 1] - v->off[id];
    if (smp_sstate_done(&c->state) || len == 0 || len > SMP_VOCAB_PIECE_MAX) return false;
    return smp_sstate_feed(c->s, &c->state, v->bytes + v->off[id], len);
}
