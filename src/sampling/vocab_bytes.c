/*
 * vocab_bytes.c - smp_vocab: every token's bytes (the detokenizer's pieces)
 * read once (those over SMP_VOCAB_PIECE_MAX bytes are kept out of the
 * constraint's sets: a crafted file's 64 KiB token would cost every
 * constrained sampler 64 Ki walk states), the end-of-generation set, how
 * a string's content takes each token (vocab_bytes.h): the text tokens
 * with the characters each adds, sorted by that count and gathered into
 * one mask per small count, and the tokens sorted by their bytes with the
 * prefix each shares with the one before, the order the constraint's walks
 * take (all tokens, and those that close a string).
 */
#include "json_prefix.h"
#include "vocab_bytes.h"

#include <stdlib.h>
#include <string.h>

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

/* Fills o with the entries e[0..n) in `keep` (NULL: all), in their order,
 * with the prefixes they share. */
static hearth_err make_order(const smp_vocab *v, const sort_entry *e, int32_t n,
                             const uint32_t *keep, walk_order *o) {
    o->id = malloc((size_t)(n ? n : 1) * sizeof *o->id);
    o->shared = malloc((size_t)(n ? n : 1) * sizeof *o->shared);
    if (!o->id || !o->shared) return HEARTH_ERR_NOMEM;
    o->n = 0;
    for (int32_t k = 0; k < n; k++) {
        if (keep && !smp_bit(keep, e[k].id)) continue;
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
        if (len > v->max_len && len <= SMP_VOCAB_PIECE_MAX) v->max_len = (uint32_t)len;
        if (eog) {
            v->eog[id / 32] |= 1u << (id % 32);
            v->n_eog++;
        }
    }
    v->off[v->n_vocab] = (uint32_t)n;
    return HEARTH_OK;
}

/* Sorts every token by how a string's content takes it (vocab_bytes.h):
 * text tokens are marked with the characters each starts (a character
 * starts at every byte read between characters, except the second escape
 * of a surrogate pair, which the recognizer reads in another mode), closing
 * ones in `closing`. The recognizer's string modes depend on nothing outside
 * the string (not the container stack, not the white-space limit), so one
 * string's content stands for every string's and every key's. */
static void classify_text(smp_vocab *v, uint32_t *closing) {
    smp_json in_string;
    smp_json_init(&in_string, false);
    smp_json_feed(&in_string, '"');
    for (int32_t id = 0; id < v->n_vocab; id++) {
        const uint32_t len = v->off[id + 1] - v->off[id];
        if (len == 0 || len > SMP_VOCAB_PIECE_MAX || smp_bit(v->eog, id)) continue;
        const uint8_t *p = v->bytes + v->off[id];
        smp_json j = in_string;
        uint32_t chars = 0, i = 0;
        bool closes = false;
        for (; i < len && !closes; i++) {
            const bool between = smp_json_in_text(&j);
            closes = between && p[i] == '"';
            chars += between;
            if (!closes && !smp_json_step(&j, p[i])) break;
        }
        if (closes) closing[id / 32] |= 1u << (id % 32);
        if (i < len || closes) continue;
        v->text[id / 32] |= 1u << (id % 32);
        v->text_chars[id] = (uint8_t)(chars < 255 ? chars : 255);
        v->n_text++;
    }
}

/* The text tokens by their characters, the masks of the first n_upto counts,
 * the canonical set and the slow list. */
static hearth_err text_tables(smp_vocab *v) {
    const size_t n_text = (size_t)v->n_text;
    int32_t count[256] = {0};
    for (int32_t id = 0; id < v->n_vocab; id++)
        if (smp_bit(v->text, id)) count[v->text_chars[id]]++;
    v->chars_from[0] = 0;
    for (int k = 0; k < 256; k++) v->chars_from[k + 1] = v->chars_from[k] + count[k];
    const int32_t rest = v->n_text / 32 > 64 ? v->n_text / 32 : 64;
    v->n_upto = 0;
    while (v->n_upto < 255 && v->n_text - v->chars_from[v->n_upto] > rest) v->n_upto++;
    v->by_chars = malloc((n_text ? n_text : 1) * sizeof *v->by_chars);
    v->text_slow = malloc((n_text ? n_text : 1) * sizeof *v->text_slow);
    v->text_canon = hr_calloc(v->n_words, sizeof *v->text_canon);
    v->upto = hr_calloc((size_t)(v->n_upto ? v->n_upto : 1) * v->n_words, sizeof *v->upto);
    if (!v->by_chars || !v->text_slow || !v->text_canon || !v->upto) return HEARTH_ERR_NOMEM;
    int32_t next[256];
    memcpy(next, v->chars_from, sizeof next);
    for (int32_t id = 0; id < v->n_vocab; id++) {
        if (!smp_bit(v->text, id)) continue;
        const uint8_t chars = v->text_chars[id];
        v->by_chars[next[chars]++] = id;
        for (uint32_t k = chars; k < v->n_upto; k++)
            v->upto[k * v->n_words + id / 32] |= 1u << (id % 32);
        const uint32_t len = v->off[id + 1] - v->off[id];
        if (chars == 255 || memchr(v->bytes + v->off[id], '\\', len))
            v->text_slow[v->n_slow++] = id;
        else
            v->text_canon[id / 32] |= 1u << (id % 32);
    }
    return HEARTH_OK;
}

/* Sorts the tokens a JSON text can use into the two walk orders. */
static hearth_err sort_tokens(smp_vocab *v, const uint32_t *closing) {
    sort_entry *e = malloc((size_t)v->n_vocab * sizeof *e);
    sort_entry *tmp = malloc((size_t)v->n_vocab * sizeof *tmp);
    hearth_err err = e && tmp ? HEARTH_OK : HEARTH_ERR_NOMEM;
    int32_t n = 0;
    for (int32_t id = 0; id < v->n_vocab && !err; id++) {
        const uint32_t len = v->off[id + 1] - v->off[id];
        if (len == 0 || len > SMP_VOCAB_PIECE_MAX || smp_bit(v->eog, id)) continue;
        e[n++] = (sort_entry){prefix_key(v->bytes + v->off[id], len), id};
    }
    if (!err && n > 0) sort_by_bytes(v, e, tmp, n);
    if (!err) err = make_order(v, e, n, NULL, &v->all);
    if (!err) err = make_order(v, e, n, closing, &v->closing);
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
    v->text = hr_calloc(v->n_words, sizeof *v->text);
    v->text_chars = hr_calloc((size_t)n_vocab, 1);
    uint32_t *closing = hr_calloc(v->n_words, sizeof *closing);
    hearth_err err = v->off && v->eog && v->text && v->text_chars && closing
                         ? read_pieces(v, piece, ctx)
                         : HEARTH_ERR_NOMEM;
    if (!err) classify_text(v, closing);
    if (!err) err = text_tables(v);
    if (!err) err = sort_tokens(v, closing);
    free(closing);
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
    free(v->text);
    free(v->text_chars);
    free(v->by_chars);
    free(v->upto);
    free(v->text_canon);
    free(v->text_slow);
    free(v->all.id);
    free(v->all.shared);
    free(v->closing.id);
    free(v->closing.shared);
    free(v);
}
