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
    uint8_t *plain_chars; /* [n_vocab] characters a plain token adds to a string (255: 255 or more),
                             counted as JSON Schema's minLength/maxLength count them */
    uint32_t *plain_esc;  /* [n_words] plain tokens with an escape (a backslash) */
    walk_order all;       /* every non-empty, non-EOG token up to SMP_VOCAB_PIECE_MAX bytes */
    walk_order other;     /* those of them that are not plain */
    uint32_t max_len;     /* longest piece in the walk orders (<= SMP_VOCAB_PIECE_MAX) */
};

static inline bool smp_bit(const uint32_t *set, int32_t id) {
    return set[id / 32] >> (id % 32) & 1;
}

#endif
