/*
 * ugm.c - SentencePiece's unigram model (tokenizer.ggml.model = "t5": T5,
 * XLM-RoBERTa and its embedders and rerankers such as bge-m3), as llama.cpp's
 * llm_tokenizer_ugm applies it.
 *
 * Normalization first. SentencePiece files carry their normalizer compiled
 * into a "precompiled charsmap": a 32-bit byte count, a XOR-compressed compact
 * double array (XCDA, Kanda 2018) over input bytes, then NUL-terminated
 * replacement strings. At each place the longest input prefix the array knows
 * is replaced by its string (NFKC-style rules: full-width forms, ligatures,
 * odd spaces); a user-defined token's text is kept as it is; anything else is
 * one UTF-8 character as given, or U+FFFD for a byte that starts none. Spaces
 * then become U+2581: one before the text when the vocabulary adds a space
 * prefix, and with remove_extra_whitespaces runs of spaces collapse to one
 * U+2581 before each word (none trail).
 *
 * Then Viterbi over the normalized bytes: best[i] is the highest sum of token
 * scores (log probabilities; user-defined tokens 0) of a segmentation of the
 * first i bytes. From each character boundary every vocabulary token that is
 * a prefix of the rest is tried; a character no single-character token covers
 * may also be the unknown token, scored the lowest normal score minus 10.
 * Consecutive unknown tokens of the best path come out as one.
 *
 * Tokens are found by walking the vocabulary's texts in sorted order
 * (tok_vocab.ugm_sorted): the tokens sharing a prefix are a contiguous range,
 * narrowed by binary search one byte at a time, so no trie is built.
 */
#include "tokenizer/tok_impl.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define ESCAPED_SPACE "\xe2\x96\x81"

/* ---- the sorted token list ---- */

typedef struct text_key {
    const char *s;
    uint32_t len;
    int32_t id;
} text_key;

static int cmp_text(const void *a, const void *b) {
    const text_key *x = a, *y = b;
    const int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id; /* equal texts: the later id last (it wins) */
}

/* The ids of the tokens with one of the attributes `kinds`, sorted by text. */
static hearth_err sorted_ids(const tok_vocab *v, uint32_t kinds, int32_t **ids, int32_t *n) {
    int32_t k = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) k += (v->tokens[i].attr & kinds) != 0;
    *ids = NULL, *n = k;
    if (k == 0) return HEARTH_OK;
    text_key *keys = hr_calloc((size_t)k, sizeof *keys);
    if (!keys || !(*ids = hr_calloc((size_t)k, sizeof **ids))) {
        free(keys);
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %d tokens", (int)k);
    }
    k = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->tokens[i].attr & kinds) keys[k++] = (text_key){tok_str(v, i), v->tokens[i].len, i};
    qsort(keys, (size_t)k, sizeof *keys, cmp_text);
    for (int32_t i = 0; i < k; i++) (*ids)[i] = keys[i].id;
    free(keys);
    return HEARTH_OK;
}

/* A range [lo, hi) of a sorted list whose texts all start with the same d
 * bytes. */
typedef struct span {
    size_t lo, hi, d;
} span;

/* The byte at depth d of token id, or -1 when its text is d bytes long (such
 * a token sorts first among those with its prefix). */
static int byte_at(const tok_vocab *v, int32_t id, size_t d) {
    return v->tokens[id].len > d ? (uint8_t)tok_str(v, id)[d] : -1;
}

/* The first index of s whose byte at depth s->d is >= c (c may be 256). */
static size_t lower(const tok_vocab *v, const int32_t *ids, const span *s, int c) {
    size_t lo = s->lo, hi = s->hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (byte_at(v, ids[mid], s->d) < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Narrows s to the texts continuing with byte c; false when none does. When
 * the narrowed prefix is itself a token, *id is it (else -1). */
static bool step(const tok_vocab *v, const int32_t *ids, span *s, uint8_t c, int32_t *id) {
    const size_t lo = lower(v, ids, s, c), hi = lower(v, ids, s, c + 1);
    s->lo = lo, s->hi = hi, s->d++;
    *id = -1;
    for (size_t i = lo; i < hi && v->tokens[ids[i]].len == s->d; i++) *id = ids[i];
    return lo < hi;
}

/* ---- loading ---- */

hearth_err tok_ugm_charsmap(tok_vocab *v, const uint8_t *charsmap, size_t n) {
    uint32_t blob = 0;
    if (n && (n < 4 || (memcpy(&blob, charsmap, 4), (uint64_t)blob + 4 >= n) || blob % 4))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "tokenizer: tokenizer.ggml.precompiled_charsmap is malformed (%zu bytes)",
                       n);
    free(v->xcda);
    free(v->repl);
    v->xcda = NULL, v->repl = NULL, v->n_xcda = v->n_repl = 0;
    if (!n) return HEARTH_OK;
    v->xcda = malloc(blob ? blob : 1);
    v->repl = malloc(n - 4 - blob);
    if (!v->xcda || !v->repl)
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for the charsmap");
    v->n_xcda = blob / 4;
    v->n_repl = n - 4 - blob;
    memcpy(v->xcda, charsmap + 4, blob); /* GGUF is little-endian, as are we */
    memcpy(v->repl, charsmap + 4 + blob, v->n_repl);
    return HEARTH_OK;
}

hearth_err tok_ugm_init(tok_vocab *v, const uint8_t *charsmap, size_t n) {
    if (v->unk < 0)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "tokenizer: a unigram vocabulary needs an unknown token, and "
                       "tokenizer.ggml.unknown_token_id names none in range");
    hearth_err err = tok_ugm_charsmap(v, charsmap, n);
    if (err) return err;
    float min_score = FLT_MAX;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if ((v->tokens[i].attr & TOK_ATTR_NORMAL) && v->tokens[i].score < min_score)
            min_score = v->tokens[i].score;
    v->unk_score = (double)min_score - 10.0;
    err = sorted_ids(v, TOK_ATTR_NORMAL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNUSED, &v->ugm_sorted,
                     &v->n_ugm_sorted);
    if (!err) err = sorted_ids(v, TOK_ATTR_USER_DEFINED, &v->ugm_user, &v->n_ugm_user);
    return err;
}

/* ---- normalization ---- */

static hearth_err corrupt(const char *what) {
    return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: the precompiled charsmap is corrupt (%s)", what);
}

/* XCDA node i: BASE in bits 10-30 (shifted left by 8 when bit 9 is set),
 * LCHECK (the byte that leads here) in bits 0-7 and 31, LEAF in bit 8; a
 * leaf's BASE points at a node whose low 31 bits are a replacement offset. */
static hearth_err node(const tok_vocab *v, uint32_t i, uint32_t *out) {
    if (i >= v->n_xcda) return corrupt("a node index is out of range");
    *out = v->xcda[i];
    return HEARTH_OK;
}

static uint32_t node_base(uint32_t p) { return (p >> 10) << ((p & (1u << 9)) >> 6); }

/* The longest prefix of s[0..n) (n >= 1) the charsmap replaces: *len its
 * bytes (0: none) and *repl, *repl_len its replacement. */
static hearth_err charsmap_match(const tok_vocab *v, const char *s, size_t n, size_t *len,
                                 const char **repl, size_t *repl_len) {
    *len = 0;
    if (!v->n_xcda) return HEARTH_OK;
    uint32_t p, at, offset = 0;
    hearth_err err = node(v, 0, &p);
    at = node_base(p);
    for (size_t i = 0; i < n && s[i] && !err; i++) {
        const uint8_t c = (uint8_t)s[i];
        at ^= c;
        if ((err = node(v, at, &p))) break;
        if ((p & ((1u << 31) | 0xFFu)) != c) break; /* not a child */
        const bool leaf = (p >> 8) & 1;
        at ^= node_base(p);
        if (leaf) {
            if ((err = node(v, at, &p))) break;
            *len = i + 1;
            offset = p & ((1u << 31) - 1);
        }
    }
    if (err || !*len) return err;
    if (offset >= v->n_repl) return corrupt("a replacement offset is out of range");
    const char *r = v->repl + offset, *end = memchr(r, '\0', v->n_repl - offset);
    if (!end) return corrupt("a replacement string is not terminated");
    *repl = r, *repl_len = (size_t)(end - r);
    return HEARTH_OK;
}

/* Bytes of the longest user-defined token text s[0..n) starts with, or 0. */
static size_t user_match(const tok_vocab *v, const char *s, size_t n) {
    span sp = {0, (size_t)v->n_ugm_user, 0};
    size_t best = 0;
    int32_t id;
    for (size_t i = 0; i < n && step(v, v->ugm_user, &sp, (uint8_t)s[i], &id); i++)
        if (id >= 0) best = i + 1;
    return best;
}

/* Real charsmaps expand a character about 11x at most (U+FDFA's 3 bytes
 * into 33): a file whose replacements blow text up further than this is
 * refused rather than followed into any amount of memory. */
enum { MAX_EXPANSION = 64 };

/* Appends s[0..n) to out within `limit` bytes. */
static hearth_err put(tok_buf *out, size_t limit, const char *s, size_t n) {
    if (n > limit - out->n)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "tokenizer: the precompiled charsmap expands the text past %d times its "
                       "length",
                       (int)MAX_EXPANSION);
    buf_put(out, s, n);
    return out->oom ? hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory normalizing text")
                    : HEARTH_OK;
}

/* s[0..n) normalized into out, at most `limit` bytes. */
static hearth_err normalize(const tok_vocab *v, const char *s, size_t n, size_t limit,
                            tok_buf *out) {
    const bool merge = v->remove_extra_ws;
    bool prefixed = false, in_word = false;
    hearth_err err = HEARTH_OK;
    for (size_t i = 0; i < n && !err;) {
        const char *r = s + i;
        size_t took = user_match(v, s + i, n - i), rn = took;
        if (!took) err = charsmap_match(v, s + i, n - i, &took, &r, &rn);
        if (!err && !took) {
            uint32_t cp;
            took = rn = tok_utf8_next(s + i, n - i, &cp);
            if (took == 1 && (uint8_t)s[i] >= 0x80) r = "\xef\xbf\xbd", rn = 3; /* not UTF-8 */
        }
        for (size_t k = 0; k < rn && !err;) {
            if (r[k] == ' ') {
                in_word = false;
                if (!merge) err = put(out, limit, ESCAPED_SPACE, 3);
                k++;
                continue;
            }
            size_t e = k; /* a run without spaces */
            while (e < rn && r[e] != ' ') e++;
            if (!in_word && ((v->add_space_prefix && !prefixed) || merge)) {
                err = put(out, limit, ESCAPED_SPACE, 3);
                prefixed = true;
            }
            in_word = true;
            if (!err) err = put(out, limit, r + k, e - k);
            k = e;
        }
        i += took;
    }
    return err;
}

/* ---- Viterbi ---- */

typedef struct best {
    double score; /* of the best segmentation of the bytes before this place */
    uint32_t from;
    int32_t id;
} best;

static void offer(best *b, double score, uint32_t from, int32_t id) {
    if (score > b->score) *b = (best){score, from, id};
}

static hearth_err viterbi(const tok_vocab *v, const char *s, size_t n, tok_ids *out) {
    best *b = malloc((n + 1) * sizeof *b);
    if (!b) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", n);
    for (size_t i = 0; i <= n; i++) b[i] = (best){-DBL_MAX, 0, v->unk};
    b[0].score = 0;
    for (size_t i = 0; i < n;) {
        size_t ch = tok_utf8_len((uint8_t)s[i]);
        if (ch > n - i) ch = n - i;
        bool covered = false; /* by a token of exactly this character */
        span sp = {0, (size_t)v->n_ugm_sorted, 0};
        int32_t id;
        for (size_t j = i; j < n && step(v, v->ugm_sorted, &sp, (uint8_t)s[j], &id); j++) {
            if (id < 0) continue;
            covered |= j + 1 - i == ch;
            const double sc =
                (v->tokens[id].attr & TOK_ATTR_USER_DEFINED) ? 0.0 : v->tokens[id].score;
            offer(&b[j + 1], b[i].score + sc, (uint32_t)i, id);
        }
        if (!covered) offer(&b[i + ch], b[i].score + v->unk_score, (uint32_t)i, v->unk);
        i += ch;
    }
    /* back from the end; a run of unknown tokens is one */
    const size_t first = out->n;
    hearth_err err = HEARTH_OK;
    bool prev_unk = false;
    for (size_t at = n; !err;) {
        const bool unk = b[at].id == v->unk;
        if (!(prev_unk && unk)) err = tok_ids_push(out, b[at].id);
        if (b[at].from == 0) break;
        prev_unk = unk;
        at = b[at].from;
    }
    for (size_t i = first, j = out->n; !err && i + 1 < j; i++, j--) {
        const int32_t t = out->p[i];
        out->p[i] = out->p[j - 1];
        out->p[j - 1] = t;
    }
    free(b);
    return err;
}

hearth_err tok_ugm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out) {
    /* tok_encode caps len at 512 MiB: the limit fits size_t, Viterbi's
       offsets may not */
    tok_buf t = {0};
    hearth_err err = normalize(v, text, len, MAX_EXPANSION * len + 16, &t);
    if (!err && t.n > UINT32_MAX / 2)
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "tokenize: text too long");
    if (!err && t.n) err = viterbi(v, t.p, t.n, out);
    free(t.p);
    return err;
}
