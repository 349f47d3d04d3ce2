/*
 * gguf_write.c - the GGUF v3 writer: collects metadata and tensors in memory
 * and writes them as one file laid out as ggml's gguf_write does:
 *   header, key-value pairs, tensor infos, zero padding to the alignment,
 *   then each tensor's data followed by zero padding to the alignment.
 *
 * Each metadata value is serialized (type id + payload, little-endian) when it
 * is set, so copying pairs from a parsed file (nested arrays included) and
 * writing are both plain byte copies. Tensor data is borrowed until
 * gguf_writer_write returns.
 */
#include "model/gguf.h"

#include "kernels/kernels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull; /* for printf */

/* A growable byte buffer; `failed` latches an allocation failure. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} wbuf;

typedef struct wkv {
    char *key;
    wbuf val; /* u32 type + payload */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    uint64_t n_bytes;
    uint64_t offset; /* assigned by gguf_writer_write */
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
};

/* ---- byte buffer ---- */

static void put(wbuf *b, const void *p, size_t n) {
    if (b->failed || n == 0) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_le(wbuf *b, uint64_t v, size_t n) {
    uint8_t bytes[8];
    for (size_t i = 0; i < n; i++) bytes[i] = (uint8_t)(v >> (8 * i));
    put(b, bytes, n);
}

static void put_u32(wbuf *b, uint32_t v) { put_le(b, v, 4); }
static void put_u64(wbuf *b, uint64_t v) { put_le(b, v, 8); }
static void put_str(wbuf *b, const char *p, uint64_t len) {
    put_u64(b, len);
    put(b, p, (size_t)len);
}

/* ---- lifecycle ---- */

hearth_err gguf_writer_new(gguf_writer **out) {
    gguf_writer *w = hr_calloc(1, sizeof *w);
    if (!w) return HEARTH_ERR_NOMEM;
    *out = w;
    return HEARTH_OK;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kv);
    free(w->tensors);
    free(w);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Makes room for one more element in a growable array of `size`-byte items. */
static bool grow(void **arr, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / size) return false;
    void *p = realloc(*arr, ncap * size);
    if (!p) return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* Stores the serialized value `val` under `key`, taking ownership of val.p
 * (freed on failure too), replacing any earlier value of that key. */
static hearth_err set_value(gguf_writer *w, const char *key, wbuf val) {
    if (val.failed) {
        free(val.p);
        return hr_fail(HEARTH_ERR_NOMEM, "gguf writer: out of memory for the value of '%s'", key);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val.p);
            w->kv[i].val = val;
            return HEARTH_OK;
        }
    }
    char *k = dup_str(key);
    if (!k || !grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        free(k);
        free(val.p);
        return hr_fail(HEARTH_ERR_NOMEM, "gguf writer: out of memory adding key '%s'", key);
    }
    w->kv[w->n_kv++] = (wkv){k, val};
    return HEARTH_OK;
}

static hearth_err check_key(const char *key) {
    if (!key) return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: NULL key");
    return HEARTH_OK;
}

static hearth_err set_scalar(gguf_writer *w, const char *key, gguf_vtype t, uint64_t bits) {
    hearth_err err = check_key(key);
    if (err) return err;
    wbuf b = {0};
    put_u32(&b, t);
    put_le(&b, bits, (size_t)gguf_vtype_size(t));
    return set_value(w, key, b);
}

hearth_err gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return set_scalar(w, key, GGUF_U32, v);
}
hearth_err gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return set_scalar(w, key, GGUF_I32, (uint32_t)v);
}
hearth_err gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    return set_scalar(w, key, GGUF_U64, v);
}
hearth_err gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return set_scalar(w, key, GGUF_F32, bits);
}
hearth_err gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    return set_scalar(w, key, GGUF_BOOL, v ? 1 : 0);
}

hearth_err gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    hearth_err err = check_key(key);
    if (err) return err;
    if (!v) return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: NULL string for '%s'", key);
    wbuf b = {0};
    put_u32(&b, GGUF_STRING);
    put_str(&b, v, strlen(v));
    return set_value(w, key, b);
}

hearth_err gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype type, const void *data,
                               uint64_t n) {
    hearth_err err = check_key(key);
    if (err) return err;
    uint64_t sz = gguf_vtype_size(type), bytes;
    if (sz == 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "gguf writer: '%s': gguf_writer_set_arr takes scalar element types, not %s",
                       key, gguf_vtype_name(type));
    if (!hr_mul_ok(n, sz, &bytes) || bytes > SIZE_MAX / 2)
        return hr_fail(HEARTH_ERR_NOMEM, "gguf writer: '%s': array of %llu elements is too large",
                       key, (ull)n);
    if (n && !data) return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: '%s': NULL data", key);
    wbuf b = {0};
    put_u32(&b, GGUF_ARRAY);
    put_u32(&b, type);
    put_u64(&b, n);
    put(&b, data, (size_t)bytes);
    return set_value(w, key, b);
}

hearth_err gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v,
                                   uint64_t n) {
    hearth_err err = check_key(key);
    if (err) return err;
    if (n && !v) return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: '%s': NULL strings", key);
    wbuf b = {0};
    put_u32(&b, GGUF_ARRAY);
    put_u32(&b, GGUF_STRING);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n && !b.failed; i++) {
        if (!v[i]) {
            free(b.p);
            return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: '%s': string %llu is NULL", key,
                           (ull)i);
        }
        put_str(&b, v[i], strlen(v[i]));
    }
    return set_value(w, key, b);
}

/* ---- copying parsed values ---- */

static void put_arr(wbuf *b, const gguf_arr *a);

static void put_value(wbuf *b, const gguf_value *v) {
    put_u32(b, v->type);
    switch (v->type) {
    case GGUF_STRING: put_str(b, v->v.str.ptr, v->v.str.len); break;
    case GGUF_ARRAY: put_arr(b, &v->v.arr); break;
    case GGUF_F32: {
        float x = (float)v->v.f64; /* exact: it was an f32 */
        uint32_t bits;
        memcpy(&bits, &x, sizeof bits);
        put_u32(b, bits);
        break;
    }
    case GGUF_F64: {
        uint64_t bits;
        memcpy(&bits, &v->v.f64, sizeof bits);
        put_u64(b, bits);
        break;
    }
    default:
        put_le(b, v->v.u64, (size_t)gguf_vtype_size(v->type));
        break; /* low bytes of i64 too */
    }
}

// NOLINTNEXTLINE(misc-no-recursion): arrays as parsed (gguf.c caps their depth at 16)
static void put_arr(wbuf *b, const gguf_arr *a) {
    put_u32(b, a->type);
    put_u64(b, a->n);
    if (a->type == GGUF_STRING) {
        for (uint64_t i = 0; i < a->n && !b->failed; i++) {
            gguf_str s = gguf_arr_str(a, i);
            put_str(b, s.ptr, s.len);
        }
    } else if (a->type == GGUF_ARRAY) {
        for (uint64_t i = 0; i < a->n && !b->failed; i++) {
            gguf_arr sub = gguf_arr_sub(a, i);
            put_arr(b, &sub);
        }
    } else {
        put(b, a->data, (size_t)(a->n * gguf_vtype_size(a->type))); /* inside the source file */
    }
}

hearth_err gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src) {
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        const gguf_kv *kv = gguf_kv_at(src, i);
        /* Keys are NUL-terminated here; a key with an embedded NUL is cut at it. */
        char *key = malloc((size_t)kv->key.len + 1);
        if (!key) return hr_fail(HEARTH_ERR_NOMEM, "gguf writer: out of memory copying keys");
        if (kv->key.len) memcpy(key, kv->key.ptr, (size_t)kv->key.len);
        key[kv->key.len] = '\0';
        wbuf b = {0};
        put_value(&b, &kv->value);
        hearth_err err = set_value(w, key, b);
        free(key);
        if (err) return err;
    }
    return HEARTH_OK;
}

/* ---- tensors ---- */

hearth_err gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                  const int64_t *ne, const void *data, uint64_t n_bytes) {
    if (!name) return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: NULL tensor name");
    const kern_type_info *ti = kern_type_get(type);
    if (!ti || ti->block_size == 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: tensor '%s': unknown type %u", name,
                       type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %u not in 1..%d",
                       name, n_dims, GGUF_MAX_DIMS);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .n_bytes = n_bytes};
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1 || !hr_mul_ok(n_el, (uint64_t)t.ne[d], &n_el) || n_el > INT64_MAX)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: tensor '%s': bad shape", name);
    }
    uint64_t want = 0; /* in the message below even when the product overflowed */
    if (t.ne[0] % ti->block_size != 0 ||
        !hr_mul_ok(n_el / ti->block_size, ti->block_bytes, &want) || want != n_bytes)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "gguf writer: tensor '%s': %llu bytes given, but a %s tensor of %llu "
                       "elements with rows of %lld needs %llu",
                       name, (ull)n_bytes, ti->name, (ull)n_el, (long long)t.ne[0],
                       (ull)(t.ne[0] % ti->block_size ? 0 : want));
    if (!data) return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: tensor '%s': NULL data", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: duplicate tensor name '%s'", name);
    t.name = dup_str(name);
    if (!t.name || !grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors)) {
        free(t.name);
        return hr_fail(HEARTH_ERR_NOMEM, "gguf writer: out of memory adding tensor '%s'", name);
    }
    w->tensors[w->n_tensors++] = t;
    return HEARTH_OK;
}

/* ---- writing ---- */

/* The alignment the file will declare: general.alignment if set, else the default. */
static hearth_err writer_alignment(const gguf_writer *w, uint64_t *out) {
    *out = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        const uint8_t *p = w->kv[i].val.p;
        uint32_t a = 0;
        bool is_u32 = w->kv[i].val.len == 8 && p[0] == GGUF_U32 && !p[1] && !p[2] && !p[3];
        if (is_u32)
            a = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        if (!is_u32 || a == 0 || (a & (a - 1)) != 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "gguf writer: general.alignment must be a u32 power of two");
        *out = a;
    }
    return HEARTH_OK;
}

static uint64_t pad_to(uint64_t n, uint64_t align) { return (align - n % align) % align; }

/* Header, metadata and tensor infos, padded to the alignment. */
static hearth_err build_header(gguf_writer *w, uint64_t align, wbuf *b) {
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, w->n_tensors);
    put_u64(b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(b, w->kv[i].key, strlen(w->kv[i].key));
        put(b, w->kv[i].val.p, w->kv[i].val.len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        t->offset = off;
        if (!hr_add_ok(off, t->n_bytes, &off) || !hr_add_ok(off, pad_to(off, align), &off))
            return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf writer: tensor data too large");
        put_str(b, t->name, strlen(t->name));
        put_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(b, (uint64_t)t->ne[d]);
        put_u32(b, t->type);
        put_u64(b, t->offset);
    }
    static const uint8_t zeros[64];
    for (uint64_t n = pad_to(b->len, align); n > 0;) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        put(b, zeros, k);
        n -= k;
    }
    if (b->failed) return hr_fail(HEARTH_ERR_NOMEM, "gguf writer: out of memory for the header");
    return HEARTH_OK;
}

static bool write_zeros(FILE *fp, uint64_t n) {
    static const uint8_t zeros[256];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, fp) != k) return false;
        n -= k;
    }
    return true;
}

hearth_err gguf_writer_write(gguf_writer *w, const char *path) {
    uint64_t align;
    hearth_err err = writer_alignment(w, &align);
    if (err) return err;
    wbuf hdr = {0};
    err = build_header(w, align, &hdr);
    if (err) {
        free(hdr.p);
        return err;
    }
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(hdr.p);
        return hr_fail(HEARTH_ERR_IO, "gguf writer: cannot create '%s': %s", path,
                       hr_strerror(errno));
    }
    bool ok = fwrite(hdr.p, 1, hdr.len, fp) == hdr.len;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        ok = fwrite(t->data, 1, (size_t)t->n_bytes, fp) == t->n_bytes &&
             write_zeros(fp, pad_to(t->n_bytes, align));
    }
    free(hdr.p);
    int saved = errno;
    if (fclose(fp) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        remove(path);
        return hr_fail(HEARTH_ERR_IO, "gguf writer: cannot write '%s': %s", path,
                       hr_strerror(saved));
    }
    return HEARTH_OK;
}
