/*
 * attn.c - attention of a tile of query rows over the tiled KV cache layout
 * of kernels.h (K stored transposed in tiles of KERN_KV_TILE positions, V as
 * rows): picks the kernel of this CPU (kern_fns.attn of the cache type) or
 * falls back to the portable ggml-order functions of ops.c, one row at a
 * time, after gathering the keys back into rows. Either way the result has
 * llama.cpp's bits; the per-ISA kernels are only faster.
 *
 * Also the Q8_0 cache (kernels.h): storing a position (kern_kv_store, for
 * every cache type), the query quantizer, the scalar reference of its
 * attention (the specification the per-ISA kernels of attn_q8.h match bit
 * for bit) and the choice among them.
 */
#include "kernels.h"
#include "kernels/attn_q8.h"
#include "kernels/kern_ref.h"

#include <math.h>
#include <pthread.h>
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
        if (a->softcap > 0.0f) kern_softcap(sc, n, a->softcap);
        kern_attn_softmax(sc, row->lo, n, KERN_ATTN_ROW_PADDED, a->scale);
        kern_attn_values(row->out, sc, (const uint8_t *)a->v + (size_t)row->lo * (size_t)a->hd * es,
                         (size_t)a->hd, row->lo, n, KERN_ATTN_ROW_PADDED, a->hd, f16, a->batch);
    }
}

void kern_attn_tile(const kern_attn_args *a, bool f16) {
    const kern_fns *fns = kern_get(f16 ? KERN_F16 : KERN_F32);
    if (fns->attn && a->hd % 16 == 0 && a->hd <= KERN_ATTN_MAX_HD)
        fns->attn(a);
    else
        attn_tile_portable(a, f16);
}

/* ---- storing a position ---- */

enum { T = KERN_KV_TILE, QB = KERN_KV_Q8_BLOCK_BYTES };

size_t kern_kv_row_bytes(kern_type cache, int hd) {
    switch (cache) {
    case KERN_F32: return (size_t)hd * sizeof(float);
    case KERN_F16: return (size_t)hd * 2;
    case KERN_Q8_0: return (size_t)((hd + QK8_0 - 1) / QK8_0) * QB;
    default: return 0;
    }
}

/* Block b of x[hd] as Q8_0, the padding past hd zero. */
static void quantize_block(const kern_fns *q8, const float *x, int hd, int b, block_q8_0 *out) {
    const int n = hd - b * QK8_0 < QK8_0 ? hd - b * QK8_0 : QK8_0;
    if (n == QK8_0) {
        q8->from_float(x + (size_t)b * QK8_0, out, QK8_0);
        return;
    }
    float pad[QK8_0] = {0};
    memcpy(pad, x + (size_t)b * QK8_0, (size_t)n * sizeof *pad);
    q8->from_float(pad, out, QK8_0);
}

/* The Q8_0 key of position pos into its tile (kernels.h's layout). */
static void store_k_q8_0(uint8_t *k, int hd, int pos, const float *kx) {
    const kern_fns *q8 = kern_get(KERN_Q8_0);
    const int nb = (hd + QK8_0 - 1) / QK8_0, j = pos % T;
    uint8_t *tile = k + (size_t)(pos / T) * (size_t)nb * QB * T;
    for (int b = 0; b < nb; b++) {
        block_q8_0 blk;
        quantize_block(q8, kx, hd, b, &blk);
        uint8_t *g = tile + (size_t)b * QB * T;
        memcpy(g + 2 * j, &blk.d, sizeof blk.d);
        for (int i = 0; i < QK8_0; i += 4) memcpy(g + 2 * T + i * T + 4 * j, &blk.qs[i], 4);
    }
}

void kern_kv_store_k(kern_type cache, void *k, int hd, int pos, const float *kx) {
    if (cache == KERN_Q8_0) {
        store_k_q8_0(k, hd, pos, kx);
        return;
    }
    const size_t es = cache == KERN_F16 ? 2 : sizeof(float);
    uint8_t *kt = (uint8_t *)k + ((size_t)(pos / T) * T * (size_t)hd + (size_t)(pos % T)) * es;
    if (cache == KERN_F16) {
        const kern_fns *f16 = kern_get(KERN_F16);
        uint16_t h[64];
        for (int d0 = 0; d0 < hd; d0 += 64) {
            const int nd = hd - d0 < 64 ? hd - d0 : 64;
            f16->from_float(kx + d0, h, nd);
            for (int d = 0; d < nd; d++) memcpy(kt + (size_t)(d0 + d) * T * es, &h[d], es);
        }
    } else {
        for (int d = 0; d < hd; d++) memcpy(kt + (size_t)d * T * es, &kx[d], es);
    }
}

void kern_kv_load_k(kern_type cache, const void *k, int hd, int pos, float *kx) {
    const int j = pos % T;
    if (cache == KERN_Q8_0) {
        const int nb = (hd + QK8_0 - 1) / QK8_0;
        const uint8_t *tile = (const uint8_t *)k + (size_t)(pos / T) * (size_t)nb * QB * T;
        for (int b = 0; b < nb; b++) {
            const uint8_t *g = tile + (size_t)b * QB * T;
            uint16_t d16;
            memcpy(&d16, g + 2 * j, sizeof d16);
            const float d = kern_f16_to_f32(d16);
            for (int i = 0; i < QK8_0 && b * QK8_0 + i < hd; i++)
                kx[b * QK8_0 + i] = (float)(int8_t)g[2 * T + (i / 4) * 4 * T + 4 * j + i % 4] * d;
        }
        return;
    }
    const size_t es = cache == KERN_F16 ? 2 : sizeof(float);
    const uint8_t *kt = (const uint8_t *)k + ((size_t)(pos / T) * T * (size_t)hd + (size_t)j) * es;
    for (int d = 0; d < hd; d++) {
        if (cache == KERN_F16) {
            uint16_t h;
            memcpy(&h, kt + (size_t)d * T * es, es);
            kx[d] = kern_f16_to_f32(h);
        } else {
            memcpy(&kx[d], kt + (size_t)d * T * es, es);
        }
    }
}

void kern_kv_store(kern_type cache, void *k, void *v, int hd, int pos, const float *kx,
                   const float *vx) {
    kern_kv_store_k(cache, k, hd, pos, kx);
    void *vr = (uint8_t *)v + (size_t)pos * kern_kv_row_bytes(cache, hd);
    if (cache == KERN_Q8_0) {
        const kern_fns *q8 = kern_get(KERN_Q8_0);
        for (int b = 0; b < (hd + QK8_0 - 1) / QK8_0; b++) {
            block_q8_0 blk;
            quantize_block(q8, vx, hd, b, &blk);
            memcpy((uint8_t *)vr + (size_t)b * QB, &blk, sizeof blk);
        }
    } else if (cache == KERN_F16) {
        kern_get(KERN_F16)->from_float(vx, vr, hd);
    } else {
        memcpy(vr, vx, (size_t)hd * sizeof(float));
    }
}

/* ---- attention over a Q8_0 cache ---- */

void kern_attn_q8_query(const float *q, int hd, kern_q8_query *out) {
    const kern_fns *q8 = kern_get(KERN_Q8_0);
    for (int b = 0; b < (hd + QK8_0 - 1) / QK8_0; b++) {
        quantize_block(q8, q, hd, b, &out->blk[b]);
        out->d[b] = kern_f16_to_f32(out->blk[b].d);
        int32_t sum = 0;
        for (int i = 0; i < QK8_0; i++) sum += out->blk[b].qs[i];
        out->sum[b] = sum;
    }
}

/* s_p of kernels.h for the key at position p (tiles at k). */
static float ref_score(const uint8_t *k, int nb, int p, const block_q8_0 *qq) {
    const int j = p % T;
    float s = 0.0f;
    for (int b = 0; b < nb; b++) {
        const uint8_t *g = k + ((size_t)(p / T) * (size_t)nb + (size_t)b) * QB * T;
        uint16_t dk;
        memcpy(&dk, g + 2 * j, sizeof dk);
        int32_t isum = 0;
        for (int i = 0; i < QK8_0; i++)
            isum += (int32_t)(int8_t)g[2 * T + (i / 4) * 4 * T + 4 * j + i % 4] * qq[b].qs[i];
        s = fmaf((float)isum, kern_f16_to_f32(dk) * kern_f16_to_f32(qq[b].d), s);
    }
    return s;
}

/* work: [KERN_ATTN_ROWS][n_pos] scores (only [n_pos] used), then the
 * quantized query, nb blocks (within the accumulators' part). */
void kern_attn_tile_q8_0_ref(const kern_attn_args *a) {
    const int hd = a->hd, nb = (hd + QK8_0 - 1) / QK8_0;
    const kern_fns *q8 = kern_get(KERN_Q8_0);
    float *sc = a->work;
    block_q8_0 *qq = (block_q8_0 *)(a->work + (size_t)KERN_ATTN_ROWS * (size_t)a->n_pos);
    const uint8_t *k = a->k, *v = a->v;
    for (int r = 0; r < a->n_rows; r++) {
        const kern_attn_row *row = &a->rows[r];
        const int n = row->hi - row->lo + 1;
        for (int b = 0; b < nb; b++) quantize_block(q8, row->q, hd, b, &qq[b]);
        for (int p = row->lo; p <= row->hi; p++) sc[p - row->lo] = ref_score(k, nb, p, qq);
        if (a->softcap > 0.0f) kern_softcap(sc, n, a->softcap);
        kern_attn_softmax(sc, row->lo, n, KERN_ATTN_ROW_PADDED, a->scale);
        for (int d = 0; d < hd; d++) row->out[d] = 0.0f;
        for (int p = row->lo; p <= row->hi; p++) {
            const block_q8_0 *vr = (const block_q8_0 *)(v + (size_t)p * (size_t)nb * QB);
            for (int b = 0; b < nb; b++) {
                block_q8_0 blk;
                memcpy(&blk, &vr[b], sizeof blk);
                const float c = sc[p - row->lo] * kern_f16_to_f32(blk.d);
                const int nd = hd - b * QK8_0 < QK8_0 ? hd - b * QK8_0 : QK8_0;
                float *o = row->out + (size_t)b * QK8_0;
                for (int i = 0; i < nd; i++) o[i] = fmaf((float)blk.qs[i], c, o[i]);
            }
        }
    }
}

kern_attn_fn kern_attn_q8_0_kernel(const char *isa) {
#if defined(__x86_64__) || defined(_M_X64)
    if (!strcmp(isa, "avx2")) return kern_avx2_attn_q8_0;
    if (!strcmp(isa, "avx512")) return kern_avx512_attn_q8_0;
    if (!strcmp(isa, "avx512-vnni")) return kern_avx512_vnni_attn_q8_0;
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon")) return kern_neon_attn_q8_0;
#endif
    (void)isa;
    return NULL;
}

static kern_attn_fn q8_kernel;
static pthread_once_t q8_once = PTHREAD_ONCE_INIT;
static void q8_pick(void) { q8_kernel = kern_attn_q8_0_kernel(kern_isa_name()); }

void kern_attn_tile_q8_0(const kern_attn_args *a) {
    pthread_once(&q8_once, q8_pick);
    if (q8_kernel && a->hd % QK8_0 == 0 && a->hd <= KERN_ATTN_MAX_HD)
        q8_kernel(a);
    else
        kern_attn_tile_q8_0_ref(a);
}
