/*
 * pack.c - model_pack (model.h): the products' weights repacked once at
 * load into the layout this CPU's kernels read fastest (kern_pack), where
 * they have one: on AVX-512 VNNI, panels of 16 interleaved rows that the
 * products read with no horizontal sums, in one stream (llama3.2-1b Q4_K_M
 * generated 30-31 tokens/s on one core instead of 21.7; docs in
 * bench/README.md).
 */
#include "model.h"

/* The weights of products, in one list: the output's (usually the largest:
 * packed first, while little else is, it adds least to the peak of packed
 * copies plus the file's pages of the weight being packed), then the
 * layers'. */
static int product_weights(hearth_model *m, model_weight **out, int cap) {
    int n = 0;
    if (m->output_norm && m->output.data && n < cap) out[n++] = &m->output;
    for (int il = 0; il < m->hp.n_layer; il++) {
        model_layer *l = &m->layers[il];
        model_weight *ws[] = {&l->wq,   &l->wk, &l->wv,      &l->wqkv, &l->wo,
                              &l->gate, &l->up, &l->gate_up, &l->down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->data && n < cap) out[n++] = ws[i];
    }
    return n;
}

hearth_err model_pack(hearth_model *m) {
    if (kern_exact()) return HEARTH_OK;
    const int cap = 9 * m->hp.n_layer + 1;
    model_weight **ws = hr_calloc((size_t)cap, sizeof *ws);
    if (!ws) return HEARTH_ERR_NOMEM;
    const int n = product_weights(m, ws, cap);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (kern_packed_bytes(ws[i]->type, ws[i]->n_rows, ws[i]->n_cols) + 63) / 64 * 64;
    if (total == 0) {
        free(ws);
        return HEARTH_OK;
    }
    /* a speed-up only: without the memory for it the weights stay as they are */
    uint8_t *block = hr_pages_alloc(total);
    if (!block) {
        free(ws);
        return HEARTH_OK;
    }
    hr_pages_hint_huge(block, total);
    size_t at = 0, from = 0;
    for (int i = 0; i < n; i++) {
        model_weight *w = ws[i];
        const size_t bytes = kern_packed_bytes(w->type, w->n_rows, w->n_cols);
        if (!bytes) continue;
        kern_pack(m->pool, w->type, w->data, w->n_rows, w->n_cols, block + at);
        w->packed = block + at;
        at += (bytes + 63) / 64 * 64;
        const size_t file_bytes = kern_row_bytes(w->type, w->n_cols) * (size_t)w->n_rows;
        gguf_release(m->gguf, w->data, file_bytes);
        from += file_bytes;
    }
    m->packed = block;
    m->packed_bytes = total;
    m->packed_file_bytes = from;
    free(ws);
    return HEARTH_OK;
}
