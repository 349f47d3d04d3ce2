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

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Tokens in walk order: ids sorted by their bytes, and for each the bytes
 * it shares with the one before (0 for the first). */
typedef struct walk_order {
    int32_t *id;
    uint32_t *shared;
    int32_t n;
} walk_order;

struct smp_vocab {
    atomic_int refs;
    int32_t n_vocab;
    uint32_t n_words; /* of a mask */
    uint8_t *bytes;   /* every piece, back to back */
    uint32_t *off;    /* [n_vocab + 1]: token i is bytes[off[i], off[i + 1]) */
    uint32_t *eog;    /* [n_words] end-of-generation tokens */
    int32_t n_eog;
    uint32_t *plain; /* [n_words] tokens that leave a string's content state as it is */
    int32_t n_plain;
    walk_order all;   /* every non-empty, non-EOG token */
    walk_order other; /* those of them that are not plain */
    uint32_t max_len; /* longest piece */
};

static inline bool bit(const uint32_t *set, int32_t id) { return set[id / 32] >> (id % 32) & 1; }

/* ---- building the table ----------------------------------------------------- */

/* A token's first 8 bytes as a big-endian number (zero-padded): sorting by
 * it is sorting by those bytes. */
static uint64_t prefix_key(const uint8_t *p, uint32_t len) {
    uint64_t k = 0;
    for (uint32_t i = 0; i < 8; i++) k = k << 8 | (i < len ? p[i] : 0);
    return k;
}

typedef struct sort_entry {
    uint64_t key;
    int32_t id;
} sort_entry;

/* Whether token a's bytes sort before b's (a proper prefix first). */
static bool bytes_less(const smp_vocab *v, int32_t a, int32_t b) {
    const uint32_t la = v->off[a + 1] - v->off[a], lb = v->off[b + 1] - v->off[b];
    const int c = memcmp(v->bytes + v->off[a], v->bytes + v->off[b], la < lb ? la : lb);
    return c < 0 || (c == 0 && la < lb);
}

/* Sorts e[0..n) by bytes: an LSD radix sort on the 8-byte keys (stable, so
 * equal keys keep id order), then insertion sort inside the runs of equal
 * keys, where longer tokens differ after their 8th byte. Runs longer than
 * SORT_RUN_MAX keep id order: the walk is correct in any order, and a
 * vocabulary read from a file must not make this quadratic. tmp holds n. */
enum { SORT_RUN_MAX = 64 };
static void sort_by_bytes(const smp_vocab *v, sort_entry *e, sort_entry *tmp, int32_t n) {
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (int32_t i = 0; i < n; i++) count[(e[i].key >> shift & 0xff) + 1]++;
        if (count[(e[0].key >> shift & 0xff) + 1] == (size_t)n) continue; /* one bucket */
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (int32_t i = 0; i < n; i++) tmp[count[e[i].key >> shift & 0xff]++] = e[i];
        memcpy(e, tmp, (size_t)n * sizeof *e);
    }
    for (int32_t lo = 0; lo < n;) {
        int32_t hi = lo + 1;
        while (hi < n && e[hi].key == e[lo].key) hi++;
        for (int32_t i = lo + 1; i < hi && hi - lo <= SORT_RUN_MAX; i++) {
            const sort_entry x = e[i];
            int32_t j = i;
            for (; j > lo && bytes_less(v, x.id, e[j - 1].id); j--) e[j] = e[j - 1];
            e[j] = x;
        }
        lo = hi;
    }
}

static uint32_t common_prefix(const smp_vocab *v, int32_t a, int32_t b) {
    const uint32_t la = v->off[a + 1] - v->off[a], lb = v->off[b + 1] - v->off[b];
    const uint8_t *pa = v->bytes + v->off[a], *pb = v->bytes + v->off[b];
    uint32_t l = 0;
    while (l < la && l < lb && pa[l] == pb[l]) l++;
    return l;
}

/* Fills o with the entries e[0..n) not in `skip` (NULL: none), in their
 * order, with the prefixes they share. */
static hearth_err make_order(const smp_vocab *v, const sort_entry *e, int32_t n,
                             const uint32_t *skip, walk_order *o) {
    o->id = malloc((size_t)(n ? n : 1) * sizeof *o->id);
    o->shared = malloc((size_t)(n ? n : 1) * sizeof *o->shared);
    if (!o->id || !o->shared) return HEARTH_ERR_NOMEM;
    o->n = 0;
    for (int32_t k = 0; k < n; k++) {
        if (skip && bit(skip, e[k].id)) continue;
        o->shared[o->n] = o->n ? common_prefix(v, o->id[o->n - 1], e[k].id) : 0;
        o->id[o->n++] = e[k].id;
    }
    return HEARTH_OK;
}

/* Reads every piece into v->bytes / v->off and the EOG set. */
static hearth_err read_pieces(smp_vocab *v, smp_piece_fn piece, const void *ctx) {
    size_t cap = 1 << 16, n = 0;
    if (!(v->bytes = malloc(cap))) return HEARTH_ERR_NOMEM;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        bool eog = false;
        size_t len = piece(ctx, id, (char *)v->bytes + n, cap - n, &eog);
        if (len > cap - n) { /* grow and ask again */
            size_t want = cap;
            while (want - n < len) {
                if (want > SIZE_MAX / 2) return HEARTH_ERR_NOMEM;
                want *= 2;
            }
            uint8_t *nb = realloc(v->bytes, want);
            if (!nb) return HEARTH_ERR_NOMEM;
            v->bytes = nb, cap = want;
            len = piece(ctx, id, (char *)v->bytes + n, cap - n, &eog);
            if (len > cap - n)
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "json mode: token %d's piece "
                               "changed length",
                               (int)id);
        }
        if (len > UINT32_MAX - n)
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "json mode: the vocabulary's pieces exceed 4 GiB in all");
        v->off[id] = (uint32_t)n;
        n += len;
        if (len > v->max_len) v->max_len = (uint32_t)len;
        if (eog) {
            v->eog[id / 32] |= 1u << (id % 32);
            v->n_eog++;
        }
    }
    v->off[v->n_vocab] = (uint32_t)n;
    return HEARTH_OK;
}

/* Marks the plain tokens: from inside a string's content they are accepted
 * and lead back to the same state (which depends on nothing outside the
 * string, the white-space limit included, so this holds in every such
 * state). */
static void mark_plain(smp_vocab *v) {
    smp_json in_string;
    smp_json_init(&in_string, false);
    smp_json_feed(&in_string, '"');
    for (int32_t id = 0; id < v->n_vocab; id++) {
        const uint32_t len = v->off[id + 1] - v->off[id];
        if (len == 0 || bit(v->eog, id)) continue;
        smp_json j = in_string;
        if (!smp_json_feed_bytes(&j, v->bytes + v->off[id], len)) continue;
        if (memcmp(&j, &in_string, sizeof j)) continue;
        v->plain[id / 32] |= 1u << (id % 32);
        v->n_plain++;
    }
}

/* Sorts the tokens a JSON text can use into the two walk orders. */
static hearth_err sort_tokens(smp_vocab *v) {
    sort_entry *e = malloc((size_t)v->n_vocab * sizeof *e);
    sort_entry *tmp = malloc((size_t)v->n_vocab * sizeof *tmp);
    hearth_err err = e && tmp ? HEARTH_OK : HEARTH_ERR_NOMEM;
    int32_t n = 0;
    for (int32_t id = 0; id < v->n_vocab && !err; id++) {
        const uint32_t len = v->off[id + 1] - v->off[id];
        if (len == 0 || bit(v->eog, id)) continue;
        e[n++] = (sort_entry){prefix_key(v->bytes + v->off[id], len), id};
    }
    if (!err && n > 0) sort_by_bytes(v, e, tmp, n);
    if (!err) err = make_order(v, e, n, NULL, &v->all);
    if (!err) err = make_order(v, e, n, v->plain, &v->other);
    free(e);
    free(tmp);
    return err;
}

hearth_err smp_vocab_new(int32_t n_vocab, smp_piece_fn piece, const void *ctx, smp_vocab **out) {
    if (n_vocab <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "json mode: n_vocab %d", (int)n_vocab);
    smp_vocab *v = hr_calloc(1, sizeof *v);
    if (!v) return HEARTH_ERR_NOMEM;
    atomic_init(&v->refs, 1);
    v->n_vocab = n_vocab;
    v->n_words = (uint32_t)(((int64_t)n_vocab + 31) / 32);
    v->off = malloc(((size_t)n_vocab + 1) * sizeof *v->off);
    v->eog = hr_calloc(v->n_words, sizeof *v->eog);
    v->plain = hr_calloc(v->n_words, sizeof *v->plain);
    hearth_err err = v->off && v->eog && v->plain ? read_pieces(v, piece, ctx) : HEARTH_ERR_NOMEM;
    if (!err) mark_plain(v);
    if (!err) err = sort_tokens(v);
    if (err) {
        smp_vocab_free(v);
        return err == HEARTH_ERR_NOMEM
                   ? hr_fail(err, "json mode: out of memory indexing %d tokens", (int)n_vocab)
                   : err;
    }
    *out = v;
    return HEARTH_OK;
}

int32_t smp_vocab_n(const smp_vocab *v) { return v->n_vocab; }

smp_vocab *smp_vocab_ref(smp_vocab *v) {
    atomic_fetch_add(&v->refs, 1);
    return v;
}

void smp_vocab_free(smp_vocab *v) {
    if (!v || atomic_fetch_sub(&v->refs, 1) > 1) return;
    free(v->bytes);
    free(v->off);
    free(v->eog);
    free(v->plain);
    free(v->all.id);
    free(v->all.shared);
    free(v->other.id);
    free(v->other.shared);
    free(v);
}

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
    const bool eog = bit(v->eog, id);
    if (smp_json_done(&c->state)) return eog;
    const uint32_t len = v->off[id + 1] - v->off[id];
    if (eog || len == 0) return false;
    return smp_json_feed_bytes(&c->state, v->bytes + v->off[id], len);
}
