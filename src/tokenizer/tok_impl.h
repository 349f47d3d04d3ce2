/*
 * tok_impl.h - private to src/tokenizer/: the vocabulary's layout and the
 * pieces the tokenizer files share (hash look-ups, the id buffer, Unicode
 * classes, the pre-tokenizer). Nothing outside this folder includes it.
 */
#ifndef HEARTH_TOK_IMPL_H
#define HEARTH_TOK_IMPL_H

#include "core/core.h"
#include "tokenizer/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Token attributes (llama.cpp's llama_token_attr, by meaning). The GGUF token
 * types 1..6 map to NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE; any
 * other type is "undefined" (0): never produced by text, rendered as "". */
enum {
    TOK_ATTR_NORMAL = 1u << 0,
    TOK_ATTR_UNKNOWN = 1u << 1,
    TOK_ATTR_CONTROL = 1u << 2,
    TOK_ATTR_USER_DEFINED = 1u << 3,
    TOK_ATTR_UNUSED = 1u << 4,
    TOK_ATTR_BYTE = 1u << 5,
    TOK_ATTR_LSTRIP = 1u << 6, /* swallows whitespace to its left when matched in text */
    TOK_ATTR_RSTRIP = 1u << 7, /* ... and to its right */
    TOK_ATTR_EOG = 1u << 8,    /* ends generation */
};

typedef struct tok_token {
    uint32_t off; /* of its text in tok_vocab.text */
    uint32_t len;
    float score;
    uint32_t attr;
} tok_token;

/* A slot of the text -> id table. It repeats the text's place so that a
 * look-up touches the slot and the text only (loading a 150k-token vocabulary
 * does ~10^6 look-ups, bound by cache misses). id -1: empty. */
typedef struct tok_slot {
    uint32_t tag; /* high half of the text's hash */
    int32_t id;
    uint32_t off, len;
} tok_slot;

typedef struct tok_merge {
    uint64_t key; /* (left << 32 | right) + 1; 0: empty */
    int32_t rank, result;
} tok_merge;

/* Which pre-tokenizer split a byte-level BPE vocabulary uses (pretokenize.c). */
typedef struct tok_pretok tok_pretok;

struct tok_vocab {
    tok_type type;
    char model[32]; /* tokenizer.ggml.model */
    char pre[64];   /* tokenizer.ggml.pre, "default" if absent */

    int32_t n_tokens;
    tok_token *tokens; /* [n_tokens] */
    char *text;        /* every token's text, back to back */
    size_t max_token_len;
    size_t max_piece_len;

    /* text -> id: open addressing, linear probing; capacity mask + 1 */
    tok_slot *slots;
    uint32_t mask;

    /* BPE merges: (left id, right id) -> rank and merged id */
    tok_merge *merges;
    uint32_t merge_mask;
    int64_t n_merges;

    /* SPM: byte b's fallback token (<0xNN>, else the 1-byte token); BPE: the
     * token of b's byte-alphabet character, or with spm_bpe its <0xNN>. -1
     * when absent. */
    int32_t byte_token[256];

    int32_t bos, eos, eot, eom, unk, sep, pad, mask_id;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;

    bool add_bos, add_eos, add_sep;
    bool add_space_prefix; /* SPM: a space before text at the start / after a special token */
    bool clean_spaces;     /* detokenize: GPT-2's clean_up_tokenization_spaces */
    bool ignore_merges;    /* BPE: a pre-token that is itself a token is taken whole */
    /* BPE with SentencePiece's conventions (Gemma 4): spaces become U+2581,
     * merges start from UTF-8 characters instead of the byte alphabet, and a
     * symbol that is no token falls back to <0xNN> tokens. */
    bool spm_bpe;
    bool lowercase, strip_accents; /* WordPiece normalizer */

    /* Tokens looked for in raw text (control, unknown, user-defined), longest
     * text first. */
    int32_t *special;
    int32_t n_special;

    tok_pretok *pretok; /* BPE only */

    /* UGM (ugm.c): the precompiled normalizer split into its double array and
     * its replacement strings (none when the file has no charsmap), the
     * matchable tokens (normal, user-defined, unused) and the user-defined
     * ones sorted by text, and the unknown token's score. */
    uint32_t *xcda;
    size_t n_xcda;
    char *repl;
    size_t n_repl;
    bool remove_extra_ws;
    int32_t *ugm_sorted, n_ugm_sorted;
    int32_t *ugm_user, n_ugm_user;
    double unk_score;
};

/* ---- a growing text buffer (chat templates, the unigram normalizer) ----
 * NUL-terminated; after a failed allocation `oom` is set and further
 * appends do nothing. */
typedef struct tok_buf {
    char *p;
    size_t n, cap;
    bool oom;
} tok_buf;

static inline void buf_put(tok_buf *b, const char *s, size_t len) {
    if (b->oom || len == 0) return;
    uint64_t need;
    if (!hr_add_ok(b->n, len, &need) || !hr_add_ok(need, 1, &need)) {
        b->oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? (size_t)need : cap * 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static inline void buf_puts(tok_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/* ---- vocab.c ---- */
int32_t tok_lookup(const tok_vocab *v, const char *s, size_t len);
static inline const char *tok_str(const tok_vocab *v, int32_t id) {
    return v->text + v->tokens[id].off;
}
/* Merge rank of the pair (left, right) and its result, or -1. */
int32_t tok_merge_rank(const tok_vocab *v, int32_t left, int32_t right, int32_t *result);

/* ---- a growable id buffer (tokenize.c) ---- */
typedef struct tok_ids {
    int32_t *p;
    size_t n, cap;
} tok_ids;
hearth_err tok_ids_push(tok_ids *ids, int32_t id);

/* ---- the candidate merges of spm.c and bpe.c (merge_heap.c) ---- */
/* Adjacent symbols left and right that could merge; lower key first (BPE:
 * the merge rank; SentencePiece: minus the result's score), ties by left. */
typedef struct tok_cand {
    double key;
    int32_t left, right;
    int32_t result; /* BPE: the merged token */
    uint32_t len;   /* bytes of left + right when the candidate was made */
} tok_cand;
typedef struct tok_heap {
    tok_cand *a; /* free() it */
    size_t n, cap;
} tok_heap;
hearth_err tok_heap_push(tok_heap *h, tok_cand m);
tok_cand tok_heap_pop(tok_heap *h); /* h->n > 0 */

/* ---- the three algorithms: append the ids of one raw-text fragment ---- */
/* spm.c: text is the fragment with spaces already escaped to U+2581. */
hearth_err tok_spm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out);
/* bpe.c: pre-tokenizes, byte-encodes (unless spm_bpe) and merges; with
 * spm_bpe text is the fragment with spaces already escaped to U+2581. */
hearth_err tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out);
/* The UTF-8 of byte b's character in the GPT-2 byte alphabet (1 or 2 bytes
 * written to out; returns the count), and the inverse: the byte a code point
 * of the alphabet stands for, or -1. (bpe.c) */
size_t tok_bpe_byte_char(uint8_t b, char *out);
int tok_bpe_char_byte(uint32_t cp);
/* ugm.c: builds the unigram model's tables once the tokens, their types and
 * the special ids are loaded; charsmap[0..n) is the file's precompiled
 * normalizer (n 0: none). */
hearth_err tok_ugm_init(tok_vocab *v, const uint8_t *charsmap, size_t n);
/* Replaces the normalizer with charsmap[0..n) (n 0: none); HEARTH_ERR_FORMAT
 * when its header does not fit it. */
hearth_err tok_ugm_charsmap(tok_vocab *v, const uint8_t *charsmap, size_t n);
hearth_err tok_ugm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out);
/* wordpiece.c */
hearth_err tok_wpm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out);

/* ---- detok.c ---- */
/* Writes token id's piece to buf (at most cap bytes; buf may be NULL when cap
 * is 0) and returns its full length. id must be in range. */
size_t tok_piece_write(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap);
/* The longest piece of the vocabulary (special text included). */
size_t tok_piece_max(const tok_vocab *v);

/* ---- pretokenize.c ---- */
/* Compiles the split regexes of pre-tokenizer `name`; HEARTH_ERR_UNSUPPORTED
 * naming it when unknown. Sets the vocabulary flags that go with the name. */
hearth_err tok_pretok_new(const char *name, tok_vocab *v, tok_pretok **out);
void tok_pretok_free(tok_pretok *p);
/* Splits cps[0..n) into words: calls emit(ctx, start, count) for consecutive
 * code point ranges covering the input. */
typedef hearth_err (*tok_word_fn)(void *ctx, size_t start, size_t count);
hearth_err tok_pretok_split(const tok_pretok *p, const uint32_t *cps, size_t n, tok_word_fn emit,
                            void *ctx);

/* ---- utf8.c ---- */
/* Length of the UTF-8 sequence a lead byte announces (1 for continuation
 * bytes), as llama.cpp's unicode_len_utf8. */
size_t tok_utf8_len(uint8_t lead);
/* Decodes s[0..n) the way llama.cpp's unicode_cpts_from_utf8 does: a lead byte
 * with the right number of continuation bytes gives its code point (overlongs
 * and surrogates included), anything else gives U+FFFD for one byte; values
 * above U+10FFFF also become U+FFFD. cps must hold n entries; returns the count. */
size_t tok_utf8_decode(const char *s, size_t n, uint32_t *cps);
/* One code point of s[0..n) (n >= 1) as tok_utf8_decode reads it; returns the
 * bytes it took. */
size_t tok_utf8_next(const char *s, size_t n, uint32_t *cp);

/* ---- unicode_data.c / ucd.c ---- */
enum {
    TOK_UC_UNDEFINED = 0,
    TOK_UC_CONTROL = 1,
    TOK_UC_LETTER = 2,
    TOK_UC_MARK = 3,
    TOK_UC_NUMBER = 4,
    TOK_UC_PUNCT = 5,
    TOK_UC_SYMBOL = 6,
    TOK_UC_SEPARATOR = 7,
};
typedef struct tok_uc_range {
    uint32_t start;
    uint8_t cls;
} tok_uc_range;
typedef struct tok_uc_pair {
    uint32_t from, to;
} tok_uc_pair;
typedef struct tok_uc_nfd_range {
    uint32_t first, last, to;
} tok_uc_nfd_range;
extern const char tok_unicode_version[];
extern const tok_uc_range tok_uc_ranges[];
extern const size_t tok_uc_ranges_n;
extern const tok_uc_pair tok_uc_lower[];
extern const size_t tok_uc_lower_n;
extern const tok_uc_nfd_range tok_uc_nfd[];
extern const size_t tok_uc_nfd_n;

int tok_uc_class(uint32_t cp);
/* llama.cpp's whitespace set (Unicode White_Space). */
bool tok_uc_is_space(uint32_t cp);
uint32_t tok_uc_tolower(uint32_t cp);
uint32_t tok_uc_nfd_first(uint32_t cp);

#endif
