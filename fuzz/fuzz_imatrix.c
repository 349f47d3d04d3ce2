/*
 * fuzz_imatrix.c - the importance-matrix reader (imatrix.c) on arbitrary
 * bytes, GGUF or legacy .dat: imatrix_parse must either refuse with a
 * message or give entries whose every sum, count and weight can be read
 * and found by name; combining the matrix twice (imatrix_merge, as
 * --in-file does) and its statistics must work on whatever it holds. Seeds: fuzz/corpus/imatrix/,
 * made with
 *   hearth synth -o m.gguf --embd 32 --layers 1 --heads 2 --kv-heads 1 \
 *       --head-dim 16 --ff 64 --ctx 64 --seed 1
 *   hearth imatrix -m m.gguf -f TEXT -c 16 [--output-format dat] -o SEED
 * plus a few cut copies.
 */
#include "hearth.h"
#include "model/imatrix.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy, so that any read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    imatrix *im = NULL;
    const hearth_err err = imatrix_parse(copy, size, &im);
    free(copy);
    if (err) {
        if (err != HEARTH_ERR_FORMAT && err != HEARTH_ERR_NOMEM) abort();
        if (!*hearth_last_error()) abort(); /* every failure says why */
        return 0;
    }
    for (int64_t i = 0; i < im->n_entries; i++) {
        const imatrix_entry *e = &im->entries[i];
        if (e->n_cols < 1 || e->n_mat < 1 || imatrix_find(im, e->name) != e) abort();
        float *w = malloc((size_t)(e->n_cols * e->n_mat) * sizeof *w);
        if (!w) break;
        imatrix_weights(e, im->legacy, w);
        sink = w[0] + w[e->n_cols * e->n_mat - 1];
        free(w);
    }
    for (int i = 0; i < im->n_datasets; i++) sink = (float)strlen(im->datasets[i]);
    imatrix *sum = calloc(1, sizeof *sum);
    if (sum && !imatrix_merge(sum, im, 512) && !imatrix_merge(sum, im, 512)) {
        if (sum->n_entries != im->n_entries || sum->legacy) abort();
        imatrix_stat *st = NULL;
        int64_t n = 0;
        if (!imatrix_stats(sum, &st, &n)) {
            for (int64_t i = 0; i < n; i++) sink = st[i].total + st[i].cossim;
            free(st);
        }
    }
    imatrix_free(sum);
    imatrix_free(im);
    return 0;
}
