/*
 * pack.c - model_pack (model.h): the products' weights repacked once at
 * load into the layout this CPU's kernels read fastest (kern_pack), where
 * they have one: on AVX-512 VNNI, panels of 16 interleaved rows that the
 * products read with no horizontal sums, in one stream (llama3.2-1b Q4_K_M
 * generated 30-31 tokens/s on one core instead of 21.7; docs in
 * bench/README.md). And model_embd_rows, which reads a packed tied output's
 * rows without mapping its pages again.
 */
#include "model.h"

/* The weights of products, in one list: the output's (usually the largest:
 * packed first, while little else is, it adds least to the peak of packed
 * copies plus the file's pages of the weight being packed), then the
 * layers'. */
static int product_weights(hearth_model *m, model_weight **out) {
    int n = 0;
    if (m->output_norm && m->output.data) out[n++] = &m->output;
    if (m->pl_model_proj.data) out[n++] = &m->pl_model_proj;
    for (int k = 0; m->alt_proj[0].data && k < MODEL_ALTUP - 1; k++) {
        out[n++] = &m->alt_proj[k];
        out[n++] = &m->alt_unembd[k];
    }
    for (int il = 0; il < m->hp.n_layer; il++)
        n += model_layer_products(&m->layers[il], m->hp.n_expert, out + n);
    return n;
}

/* w's packed bytes, rounded up to 64 so that the next starts aligned (0: none). */
static size_t packed_size(const model_weight *w) {
    return (kern_packed_bytes(w->type, w->n_rows, w->n_cols) + 63) / 64 * 64;
}

hearth_err model_pack(hearth_model *m) {
    if (kern_exact()) return HEARTH_OK;
    const size_t cap = (MODEL_LAYER_PRODUCTS + 3 * (size_t)m->hp.n_expert) * (size_t)m->hp.n_layer +
                       2 + 2 * (MODEL_ALTUP - 1);
    model_weight **ws = hr_calloc(cap, sizeof *ws);
    if (!ws) return HEARTH_ERR_NOMEM;
    const int n = product_weights(m, ws);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += packed_size(ws[i]);
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
        const size_t bytes = packed_size(w);
        if (!bytes) continue;
        kern_pack(m->pool, w->type, w->data, w->n_rows, w->n_cols, block + at);
        w->packed = block + at;
        at += bytes;
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

/* A tied output that was packed has its rows read from the file rather than
 * the mapping: its pages there were handed back, and a mapped read maps the
 * page cache's large folio around the row (about 1 MiB, measured), so the
 * rows of a long conversation would map the whole matrix again beside its
 * packed copy. At most this many bytes a row (a packed type's rows of 8192
 * elements take under 9 KiB). */
enum { EMBD_READ_MAX = 16384 };

void model_embd_rows(const hearth_model *m, const int32_t *ids, int n, float *x) {
    const int64_t n_embd = m->tok_embd.n_cols;
    const size_t row_bytes = kern_row_bytes(m->tok_embd.type, n_embd);
    const kern_fns *fns = kern_get(m->tok_embd.type);
    const bool read =
        m->output.packed && m->output.data == m->tok_embd.data && row_bytes <= EMBD_READ_MAX;
    uint8_t buf[EMBD_READ_MAX];
    for (int t = 0; t < n; t++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)ids[t] * row_bytes;
        if (read && gguf_read(m->gguf, row, row_bytes, buf)) row = buf;
        fns->to_float(row, x + (size_t)t * (size_t)n_embd, n_embd);
    }
}
