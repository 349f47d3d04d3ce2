/*
 * merge_heap.c - the queue of candidate merges that SentencePiece (spm.c)
 * and BPE (bpe.c) pop from: a binary min-heap on (key, left), so the best
 * candidate comes first and ties go to the leftmost pair, as both
 * algorithms require. Candidates go stale when a side is merged; the callers
 * detect that on pop (lengths), so nothing is ever removed from the middle.
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>

static bool cand_before(const tok_cand *a, const tok_cand *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

hearth_err tok_heap_push(tok_heap *h, tok_cand m) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        tok_cand *a = realloc(h->a, cap * sizeof *a);
        if (!a) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory merging");
        h->a = a, h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!cand_before(&m, &h->a[up])) break;
        h->a[i] = h->a[up];
        i = up;
    }
    h->a[i] = m;
    return HEARTH_OK;
}

tok_cand tok_heap_pop(tok_heap *h) {
    tok_cand top = h->a[0], last = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const tok_cand *bp = &last;
        if (l < n && cand_before(&h->a[l], bp)) best = l, bp = &h->a[l];
        if (r < n && cand_before(&h->a[r], bp)) best = r;
        if (best == i) break;
        h->a[i] = h->a[best];
        i = best;
    }
    if (n) h->a[i] = last;
    return top;
}
