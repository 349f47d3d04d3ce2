/*
 * fuzz_router.c - the router's readers of untrusted input on arbitrary bytes.
 * The first byte picks the target: 0 a router file, as it is and with its
 * checksum rewritten (rtr_load_mem must reject it with a message or give a
 * model that scores any text to a finite number),
 * 1 the CSV reader (every record's fields stay inside its buffer), 2 the
 * feature extractor and training on the bytes as prompt text (two groups:
 * with the subject and neighbours parts), 3 the answer comparison of
 * --from-ledger on the two halves. Seeds: fuzz/corpus/router/ (written by
 * `test_router --write-corpus DIR`).
 */
#include "gateway/router.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

/* The file's trailing FNV-1a 32 checksum, rewritten so that mutated bytes
 * reach the reader's field checks instead of stopping at the checksum. */
static void reseal(uint8_t *b, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i + 4 < n; i++) h = (h ^ b[i]) * 16777619u;
    for (int i = 0; i < 4; i++) b[n - 4 + (size_t)i] = (uint8_t)(h >> (8 * i));
}

static void fuzz_file(const uint8_t *p, size_t n) {
    static const char *const texts[] = {"", "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:",
                                        "Scenario 1 | I did it. NOT EXCEPT 3.14 $5"};
    rtr_model *m = NULL, *m2 = NULL;
    if (rtr_load_mem(p, n, &m)) return;
    char desc[512];
    rtr_describe(m, desc, sizeof desc);
    sink += (uint64_t)strlen(desc);
    /* what was read writes back to a file that reads and scores the same */
    uint8_t *out = NULL;
    size_t out_n = 0;
    if (!rtr_save_mem(m, &out, &out_n) && rtr_load_mem(out, out_n, &m2)) abort();
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        double s = 0, s2 = 0;
        if (!rtr_score(m, texts[i], strlen(texts[i]), &s) && !isfinite(s)) abort();
        if (m2 && !rtr_score(m2, texts[i], strlen(texts[i]), &s2) && s2 != s) abort();
    }
    free(out);
    rtr_free(m2);
    rtr_free(m);
}

static void fuzz_csv(const uint8_t *p, size_t n) {
    rtr_csv c;
    bool got;
    rtr_csv_init(&c, (const char *)p, n);
    for (int rec = 0; rec < 100000 && !rtr_csv_next(&c, &got) && got; rec++)
        for (size_t i = 0; i < c.n_fields; i++) {
            size_t len;
            const char *f = rtr_csv_field(&c, i, &len);
            if (f[len] != '\0') abort();
            sink += len ? (uint8_t)f[0] + (uint8_t)f[len - 1] : 0;
        }
    rtr_csv_fini(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: {
        fuzz_file(p, n);
        uint8_t *b = n >= 12 ? malloc(n) : NULL;
        if (b) {
            memcpy(b, p, n);
            reseal(b, n);
            fuzz_file(b, n);
            free(b);
        }
        break;
    }
    case 1: fuzz_csv(p, n); break;
    case 2: {
        /* any text scores through a tiny model built from the text's own bytes
         * (two groups: with the subject part and the neighbours part, whose other
         * two rows share words; file format version 3) */
        rtr_dataset d;
        rtr_dataset_init(&d);
        if (!rtr_dataset_add(&d, (const char *)p, n, false, true, NULL, "fz_a") &&
            !rtr_dataset_add(&d, "plain words", 11, true, true, NULL, "fz_b") &&
            !rtr_dataset_add(&d, "plain words here", 16, false, true, NULL, "fz_a")) {
            rtr_train_params tp = rtr_train_default_params();
            tp.hash_bits = 12;
            tp.max_iter = 5;
            tp.subject_bits = 12;
            tp.subject_iter = 5;
            tp.knn_k = 1;
            tp.n_threads = 1;
            rtr_model *m = NULL;
            double s = 0;
            if (!rtr_train(&d, NULL, 0, &tp, &m) &&
                (rtr_score(m, (const char *)p, n, &s) || !isfinite(s)))
                abort();
            /* the same from the model written and read back */
            uint8_t *out = NULL;
            size_t out_n = 0;
            rtr_model *m2 = NULL;
            double s2 = 0;
            if (m && (rtr_save_mem(m, &out, &out_n) || rtr_load_mem(out, out_n, &m2) ||
                      rtr_score(m2, (const char *)p, n, &s2) || s2 != s))
                abort();
            free(out);
            rtr_free(m2);
            rtr_free(m);
        }
        rtr_dataset_fini(&d);
        break;
    }
    case 3: sink += rtr_answers_agree((const char *)p, n / 2, (const char *)p + n / 2, n - n / 2);
    }
    return 0;
}
