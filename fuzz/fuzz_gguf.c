/*
 * fuzz_gguf.c - the GGUF reader on arbitrary bytes: gguf_open_memory must
 * either reject the input with a message or produce a file whose every value,
 * array element (strings and nested arrays included) and tensor byte range can
 * be read without leaving the buffer. Seeds: fuzz/corpus/gguf/ (written by
 * `test_gguf --write-corpus`).
 */
#include "model/gguf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink; /* keeps the reads */

static uint64_t touch(const void *p, uint64_t n) {
    const uint8_t *b = p;
    return n ? (uint64_t)b[0] + b[n - 1] : 0;
}

static uint64_t walk_arr(const gguf_arr *a) {
    uint64_t sum = a->n + (uint64_t)a->type;
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->type == GGUF_STRING) {
            gguf_str s = gguf_arr_str(a, i);
            sum += touch(s.ptr, s.len);
        } else if (a->type == GGUF_ARRAY) {
            gguf_arr sub = gguf_arr_sub(a, i);
            sum += walk_arr(&sub);
        } else {
            sum += (uint64_t)gguf_arr_int(a, i);
            sum += gguf_arr_float(a, i) > 0;
        }
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy, so that any read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    gguf_file *f = NULL;
    hearth_err err = gguf_open_memory(copy, size, &f);
    if (err != HEARTH_OK) {
        if (err != HEARTH_ERR_FORMAT && err != HEARTH_ERR_NOMEM) abort();
        if (!*hearth_last_error()) abort(); /* every failure says why */
        free(copy);
        return 0;
    }
    uint64_t sum = gguf_version(f) + gguf_alignment(f) + gguf_data_offset(f);
    if (gguf_data_offset(f) % gguf_alignment(f) != 0) abort();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        sum += touch(kv->key.ptr, kv->key.len);
        if (kv->value.type == GGUF_STRING) sum += touch(kv->value.v.str.ptr, kv->value.v.str.len);
        if (kv->value.type == GGUF_ARRAY) sum += walk_arr(&kv->value.v.arr);
        /* Look-ups by name find this pair (keys are unique), unless the key
         * holds a NUL, which a C-string look-up cannot express. */
        if (kv->key.len < 256 && !memchr(kv->key.ptr, 0, kv->key.len)) {
            char key[256];
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = '\0';
            if (gguf_find(f, key) != kv) abort();
            uint32_t u32;
            int32_t i32;
            uint64_t u64;
            float f32;
            bool b;
            gguf_str s;
            gguf_arr a;
            sum += gguf_get_u32(f, key, &u32) + gguf_get_i32(f, key, &i32) +
                   gguf_get_u64(f, key, &u64) + gguf_get_f32(f, key, &f32) +
                   gguf_get_bool(f, key, &b) + gguf_get_str(f, key, &s) + gguf_get_arr(f, key, &a);
        }
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        if (d < copy || t->n_bytes > size || (size_t)(d - copy) > size - t->n_bytes) abort();
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS || t->offset % gguf_alignment(f)) abort();
        sum += touch(d, t->n_bytes) + touch(t->name.ptr, t->name.len);
        if (t->name.len < 256 && !memchr(t->name.ptr, 0, t->name.len)) {
            char name[256];
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = '\0';
            if (gguf_find_tensor(f, name) != t) abort();
        }
    }
    sink = sum;
    gguf_close(f);
    free(copy);
    return 0;
}
