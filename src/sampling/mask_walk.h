/*
 * mask_walk.h - private to src/sampling: what the token-mask constraints
 * (gbnf_mask.c: GBNF grammars; json_schema_mask.c: JSON Schema and JSON
 * mode) share, whatever their recognizer's state is: the walk over the
 * tokens sorted by bytes (vocab_bytes.h), which keeps the state after each
 * prefix of the token read last so that a token reads only the bytes after
 * the prefix it shares with it and every token with a refused prefix is
 * skipped; the states it keeps; and a 16-entry LRU cache of masks keyed by
 * the state's canonical bytes (generation comes back to the same states).
 *
 * The recognizer enters through a callback that reads the rest of a token.
 * The walk is static inline so that each constraint's copy calls it
 * directly (an indirect call per token read cost the JSON Schema masks
 * 5-10%). The grammar's shortcut for tokens whose characters all loop is
 * data (a class set per token); the JSON Schema text block stays there.
 */
#ifndef HEARTH_MASK_WALK_H
#define HEARTH_MASK_WALK_H

#include "vocab_bytes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SMP_MASK_CACHE = 16, SMP_WALK_ABORT = UINT32_MAX };

/* Reads token bytes p[d, len) from prefix state d (the state after p[0, d))
 * and stores the state after each accepted byte i as prefix state i + 1.
 * Returns the index of the first refused byte, len, or SMP_WALK_ABORT to
 * end the walk. */
typedef uint32_t (*smp_walk_feed)(void *ctx, uint32_t d, const uint8_t *p, uint32_t len);
/* Computes the current state's mask: its count, < 0 on failure (recorded). */
typedef int32_t (*smp_mask_fn)(void *ctx, uint32_t *mask);

typedef struct smp_mask_entry {
    void *key; /* [key_cap] bytes, key_size of them used */
    size_t key_size;
    bool valid;
    uint64_t used;
    int32_t n_allowed;
    uint32_t *mask; /* [n_words] */
} smp_mask_entry;

/* Embedded in a constraint (init/fini). */
typedef struct smp_mask_core {
    const smp_vocab *v; /* borrowed */
    void *prefix;       /* [v->max_len + 1] states of state_size bytes, for the feed */
    smp_mask_entry cache[SMP_MASK_CACHE];
    uint64_t clock;
} smp_mask_core;

/* Allocates the prefix states and the cache for keys of up to key_cap bytes;
 * fails recording "<who>: out of memory ...". fini is safe either way on a
 * zeroed core. */
hearth_err smp_mask_core_init(smp_mask_core *mc, const smp_vocab *v, size_t state_size,
                              size_t key_cap, const char *who);
void smp_mask_core_fini(smp_mask_core *mc);
/* Forgets every cached mask (when state keys change meaning). */
void smp_mask_core_forget(smp_mask_core *mc);

/* The mask of the state keyed key[0, size) and its count: the cached one,
 * or compute's, filed under the key as it is after compute (which may
 * renumber the state). NULL when compute fails. */
const uint32_t *smp_mask_get(smp_mask_core *mc, const void *key, size_t size, smp_mask_fn compute,
                             void *ctx, int32_t *n_allowed);

/* Starts a mask: the end-of-generation tokens when eog, else none; returns
 * their count. */
int32_t smp_mask_start(const smp_vocab *v, uint32_t *mask, bool eog);

/* Adds to mask the tokens of o that feed accepts whole from prefix state 0
 * (set by the caller); returns their count, -1 when the feed aborted. With
 * loops != 0, a token whose classes cls[k] all lie in loops is allowed
 * unread. A token shares at least `lcp` bytes with the last one read: the
 * smallest `shared` since (`unread`: that of the tokens allowed unread).
 * When the last token read was refused at byte cut - 1, the tokens sharing
 * cut bytes with it are skipped (one allowed unread shares fewer, which ends
 * that). Correct in any order; the sorted one shares the most, so a walk
 * costs about the distinct prefixes the state lets through. */
static inline int32_t smp_mask_walk(const smp_vocab *v, const walk_order *o, smp_walk_feed feed,
                                    void *ctx, const uint64_t *cls, uint64_t loops,
                                    uint32_t *mask) {
    uint32_t cut = UINT32_MAX, unread = UINT32_MAX; /* o->shared[0] == 0 */
    int32_t n_allowed = 0;
    for (int32_t k = 0; k < o->n; k++) {
        while (o->shared[k] >= cut) /* most tokens of a walk: a loop of its own */
            if (++k == o->n) return n_allowed;
        const uint32_t lcp = o->shared[k] < unread ? o->shared[k] : unread;
        const int32_t id = o->id[k];
        if (loops && !(cls[k] & ~loops)) {
            unread = lcp;
            cut = UINT32_MAX;
        } else {
            const uint32_t len = v->off[id + 1] - v->off[id];
            const uint32_t d = feed(ctx, lcp, v->bytes + v->off[id], len);
            unread = UINT32_MAX;
            if (d != len) {
                if (d == SMP_WALK_ABORT) return -1;
                cut = d + 1;
                continue;
            }
            cut = UINT32_MAX;
        }
        mask[id / 32] |= 1u << (id % 32);
        n_allowed++;
    }
    return n_allowed;
}

#endif
