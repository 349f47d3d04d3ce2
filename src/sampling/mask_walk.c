/*
 * mask_walk.c - what the token-mask constraints share (mask_walk.h) but the
 * walk, which the header defines: the prefix states and the cache of masks.
 */
#include "mask_walk.h"

#include <stdlib.h>
#include <string.h>

hearth_err smp_mask_core_init(smp_mask_core *mc, const smp_vocab *v, size_t state_size,
                              size_t key_cap, const char *who) {
    mc->v = v;
    mc->prefix = malloc(((size_t)v->max_len + 1) * state_size);
    bool ok = mc->prefix != NULL;
    for (int i = 0; i < SMP_MASK_CACHE && ok; i++) {
        ok = (mc->cache[i].mask = malloc(v->n_words * sizeof(uint32_t))) != NULL &&
             (mc->cache[i].key = malloc(key_cap)) != NULL;
    }
    if (!ok) return hr_fail(HEARTH_ERR_NOMEM, "%s: out of memory for the token masks", who);
    return HEARTH_OK;
}

void smp_mask_core_fini(smp_mask_core *mc) {
    for (int i = 0; i < SMP_MASK_CACHE; i++) {
        free(mc->cache[i].mask);
        free(mc->cache[i].key);
    }
    free(mc->prefix);
}

void smp_mask_core_forget(smp_mask_core *mc) {
    for (int i = 0; i < SMP_MASK_CACHE; i++) mc->cache[i].valid = false;
}

const uint32_t *smp_mask_get(smp_mask_core *mc, const void *key, size_t size, smp_mask_fn compute,
                             void *ctx, int32_t *n_allowed) {
    mc->clock++;
    smp_mask_entry *e = NULL, *oldest = &mc->cache[0];
    for (int i = 0; i < SMP_MASK_CACHE && !e; i++) {
        smp_mask_entry *x = &mc->cache[i];
        if (x->valid && x->key_size == size && !memcmp(x->key, key, size))
            e = x;
        else if (!x->valid || (oldest->valid && x->used < oldest->used))
            oldest = x;
    }
    if (!e) {
        e = oldest;
        e->valid = false;
        const int32_t n = compute(ctx, e->mask);
        if (n < 0) return NULL;
        memcpy(e->key, key, size);
        e->key_size = size;
        e->n_allowed = n;
        e->valid = true;
    }
    e->used = mc->clock;
    *n_allowed = e->n_allowed;
    return e->mask;
}

int32_t smp_mask_start(const smp_vocab *v, uint32_t *mask, bool eog) {
    if (!eog) {
        memset(mask, 0, v->n_words * sizeof *mask);
        return 0;
    }
    memcpy(mask, v->eog, v->n_words * sizeof *mask);
    return v->n_eog;
}
