/*
 * vocab_bytes.h - private to src/sampling: the layout of smp_vocab, the
 * table of every token's bytes that the constraint (json_schema_mask.c)
 * walks. Built once per model by vocab_bytes.c and
 * immutable afterwards.
 */
#ifndef HEARTH_VOCAB_BYTES_H
#define HEARTH_VOCAB_BYTES_H

#include "sampling.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Tokens in walk order: ids sorted by their bytes, and for each the bytes
 * it shares with the one before (0 for the first). */
typedef struct walk_order {
    int32_t *id;
    uint32_t *shared;
    int32_t n;
} walk_order;

/* Inside a string's content (between characters), a token either stays in
 * the string ("text" tokens: plain text and complete escapes, which come
 * back to the same state, and those that end inside a character or an
 * escape), closes it and goes on ("closing" tokens), or is refused in every
 * such state (a control byte, broken UTF-8, a bad escape). Whether a text
 * token is accepted depends only on the characters it adds (maxLength) and,
 * in keys that must be canonical, on its escapes (json_schema_mask.c). */
struct smp_vocab {
    atomic_int refs;
    int32_t n_vocab;
    uint32_t n_words; /* of a mask */
    uint8_t *bytes;   /* every piece, back to back */
    uint32_t *off;    /* [n_vocab + 1]: token i is bytes[off[i], off[i + 1]) */
    uint32_t *eog;    /* [n_words] end-of-generation tokens */
    int32_t n_eog;
    uint32_t *text; /* [n_words] text tokens */
    int32_t n_text;
    uint8_t *text_chars;     /* [n_vocab] characters a text token starts in a string (255: 255 or
                                more), counted as JSON Schema's minLength/maxLength count them */
    int32_t *by_chars;       /* [n_text] the text tokens by text_chars, ascending */
    int32_t chars_from[257]; /* by_chars[chars_from[k] ..]: those with k or more characters */
    uint32_t *upto;  /* [n_upto][n_words]: mask k holds the text tokens of at most k characters */
    uint32_t n_upto; /* chosen so that fewer than 1/32 of the text tokens have n_upto or more */
    uint32_t *text_canon; /* [n_words] text tokens without a backslash, under 255 characters */
    int32_t *text_slow;   /* [n_slow] the others: fed through the recognizer when needed */
    int32_t n_slow;
    walk_order all;     /* every non-empty, non-EOG token up to SMP_VOCAB_PIECE_MAX bytes */
    walk_order closing; /* those that close a string from its content */
    uint32_t max_len;   /* longest piece in the walk orders (<= SMP_VOCAB_PIECE_MAX) */
};

static inline bool smp_bit(const uint32_t *set, int32_t id) {
    return set[id / 32] >> (id % 32) & 1;
}

#endif
