/*
 * attn.c - attention of a tile of query rows over the tiled KV cache layout
 * of kernels.h (K stored transposed in tiles of KERN_KV_TILE positions, V as
 * rows): picks the kernel of this CPU (kern_fns.attn of the cache type) or
 * falls back to the portable ggml-order functions of ops.c, one row at a
 * time, after gathering the keys back into rows. Either way the result has
 * llama.cpp's bits; the per-ISA kernels are only faster.
 */
#include "kernels.h"

#include <string.h>

/* work: [KERN_ATTN_ROWS][n_pos] scores, [KERN_ATTN_ROWS][4][16][hd] value
 * accumulators (per-ISA kernels), then [n_pos][hd] gathered keys (fallback). */
size_t kern_attn_work_floats(int hd, int n_pos) {
    return (size_t)KERN_ATTN_ROWS * (size_t)n_pos + (size_t)KERN_ATTN_ROWS * 64 * (size_t)hd +
           (size_t)n_pos * (size_t)hd;
}

/* Keys lo..hi of the tiles at k as rows of hd elements of es bytes. */
static void gather_keys(const uint8_t *k, int hd, size_t es, int lo, int hi, uint8_t *dst) {
    for (int p = lo; p <= hi; p++) {
        const uint8_t *col = k + ((size_t)(p / KERN_KV_TILE) * KERN_KV_TILE * (size_t)hd +
                                  (size_t)(p % KERN_KV_TILE)) *
                                     es;
        uint8_t *row = dst + (size_t)(p - lo) * (size_t)hd * es;
        for (int d = 0; d < hd; d++)
            memcpy(row + (size_t)d * es, col + (size_t)d * KERN_KV_TILE * es, es);
    }
}

static void attn_tile_portable(const kern_attn_args *a, bool f16) {
    const size_t es = f16 ? 2 : sizeof(float);
    float *sc = a->work;
    uint8_t *krows = (uint8_t *)(a->work + (size_t)KERN_ATTN_ROWS * (size_t)a->n_pos +
                                 (size_t)KERN_ATTN_ROWS * 64 * (size_t)a->hd);
    for (int r = 0; r < a->n_rows; r++) {
        const kern_attn_row *row = &a->rows[r];
        const int n = row->hi - row->lo + 1;
        gather_keys(a->k, a->hd, es, row->lo, row->hi, krows);
        kern_attn_scores(sc, row->q, krows, (size_t)a->hd, n, a->hd, f16, a->batch);
        kern_attn_softmax(sc, row->lo, n, a->scale);
        kern_attn_values(row->out, sc, (const uint8_t *)a->v + (size_t)row->lo * (size_t)a->hd * es,
                         (size_t)a->hd, row->lo, n, a->hd, f16, a->batch);
    }
}

void kern_attn_tile(const kern_attn_args *a, bool f16) {
    const kern_fns *fns = kern_get(f16 ? KERN_F16 : KERN_F32);
    if (fns->attn && a->hd % 16 == 0 && a->hd <= KERN_ATTN_MAX_HD)
        fns->attn(a);
    else
        attn_tile_portable(a, f16);
}
