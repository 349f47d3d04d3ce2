/*
 * json_mask.c - JSON mode: which tokens of a vocabulary may come next so that
 * the output stays a prefix of one JSON object (the recognizer is
 * json_prefix.c), as llama.cpp's server does with its JSON grammar.
 *
 * smp_vocab holds every token's bytes once, with the ids of the tokens a
 * JSON text may use sorted by those bytes and, for each, the length of the
 * prefix it shares with the one before. A mask is one walk over that order
 * that keeps the recognizer's state after every prefix of the current token:
 * a token only feeds the bytes after the prefix it shares with the previous
 * one, and once a prefix is refused every following token that shares it is
 * skipped without feeding anything. The walk costs the number of distinct
 * prefixes the state lets through, at worst the vocabulary's trie.
 *
 * Inside a string most of a vocabulary is allowed, and the walk would feed
 * nearly all of it. Tokens that take a string's content back to the same
 * state (text without quotes, backslashes or control bytes, in whole UTF-8
 * characters, and complete escapes) are "plain": in that state they are
 * allowed as a block, and the walk visits only the others.
 *
 * Masks are cached by state: inside a string, or between the values of one
 * container, most steps see a state seen before and cost a lookup.
 */
#include "json_prefix.h"
#include "vocab_bytes.h"

#include <stdlib.h>
#include <string.h>

/* ---- the constraint ------------------------------------------------------------ */

/* Masks kept, by state: one key/value field of an object cycles through
 * about 6 structural states (plus a state per white-space byte), so a few
 * cycles' worth must fit or every structural token walks the vocabulary. */
enum { JC_CACHE = 16 };

typedef struct mask_entry {
    smp_json key;
    bool valid;
    uint64_t used; /* the constraint's clock at the last hit */
    int32_t n_allowed;
    uint32_t *mask; /* [n_words] */
} mask_entry;

struct smp_jsonc {
    const smp_vocab *v;
    smp_json state;
    smp_json *prefix; /* [max_len + 1] the walk's state after each prefix */
    mask_entry cache[JC_CACHE];
    uint64_t clock;
};

hearth_err smp_jsonc_new(const smp_vocab *v, smp_jsonc **out) {
    smp_jsonc *c = hr_calloc(1, sizeof *c);
    if (!c) return HEARTH_ERR_NOMEM;
    c->v = v;
    c->prefix = malloc(((size_t)v->max_len + 1) * sizeof *c->prefix);
    bool ok = c->prefix != NULL;
    for (int i = 0; i < JC_CACHE && ok; i++)
        ok = (c->cache[i].mask = malloc(v->n_words * sizeof(uint32_t))) != NULL;
    if (!ok) {
        smp_jsonc_free(c);
        return hr_fail(HEARTH_ERR_NOMEM, "json mode: out of memory for the token masks");
    }
    smp_jsonc_reset(c);
    *out = c;
    return HEARTH_OK;
}

void smp_jsonc_free(smp_jsonc *c) {
    if (!c) return;
    for (int i = 0; i < JC_CACHE; i++) free(c->cache[i].mask);
    free(c->prefix);
    free(c);
}

/* The cache stays: its masks depend on the state only. */
void smp_jsonc_reset(smp_jsonc *c) {
    smp_json_init(&c->state, true);
    smp_json_limit_ws(&c->state);
}

bool smp_jsonc_done(const smp_jsonc *c) { return smp_json_done(&c->state); }

/* The walk over the sorted tokens (see the file's comment). prefix[d] is the
 * state after the first d bytes of the current token, valid for d <= the
 * bytes of the token before that were fed; `bad` (0: none) is the length of
 * the shortest refused prefix of the token before, which every token sharing
 * that many bytes with it also has. Correct for any order; the sorted one
 * shares the most. */
static int32_t walk(smp_jsonc *c, const walk_order *o, uint32_t *mask) {
    const smp_vocab *v = c->v;
    smp_json *prefix = c->prefix;
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
            prefix[d + 1] = prefix[d];
            if (!smp_json_step(&prefix[d + 1], p[d])) break;
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

/* The mask of the current state, not cached. */
static int32_t compute_mask(smp_jsonc *c, uint32_t *mask) {
    const smp_vocab *v = c->v;
    const size_t bytes = v->n_words * sizeof *mask;
    if (smp_json_done(&c->state)) {
        memcpy(mask, v->eog, bytes);
        return v->n_eog;
    }
    if (smp_json_in_text(&c->state)) {
        memcpy(mask, v->plain, bytes);
        return v->n_plain + walk(c, &v->other, mask);
    }
    memset(mask, 0, bytes);
    return walk(c, &v->all, mask);
}

const uint32_t *smp_jsonc_mask(smp_jsonc *c, int32_t *n_allowed) {
    c->clock++;
    mask_entry *e = NULL, *oldest = &c->cache[0];
    for (int i = 0; i < JC_CACHE; i++) {
        mask_entry *x = &c->cache[i];
        if (x->valid && !memcmp(&x->key, &c->state, sizeof x->key)) {
            e = x;
            break;
        }
        if (!x->valid || (oldest->valid && x->used < oldest->used)) oldest = x;
    }
    if (!e) {
        e = oldest;
        e->key = c->state;
        e->valid = true;
        e->n_allowed = compute_mask(c, e->mask);
    }
    e->used = c->clock;
    *n_allowed = e->n_allowed;
    return e->mask;
}

bool smp_jsonc_advance(smp_jsonc *c, int32_t id) {
    const smp_vocab *v = c->v;
    if (id < 0 || id >= v->n_vocab) return false;
    const bool eog = smp_bit(v->eog, id);
    if (smp_json_done(&c->state)) return eog;
    const uint32_t len = v->off[id + 1] - v->off[id];
    if (eog || len == 0 || len > SMP_VOCAB_PIECE_MAX) return false;
    return smp_json_feed_bytes(&c->state, v->bytes + v->off[id], len);
}
