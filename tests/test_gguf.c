/*
 * test_gguf.c - the GGUF reader and writer:
 *   1. a hand-built file holding every value type (nested arrays included)
 *      parses to the values it was built from, and survives a copy through
 *      the writer (gguf_writer_copy_kv + add_tensor);
 *   2. files written through the writer's setters round-trip: values, string
 *      arrays, tensor data, offsets and alignment padding;
 *   3. a catalogue of broken files (each cut, bad count, bad offset, bad shape
 *      ...) fails with HEARTH_ERR_FORMAT and a message naming the problem, and
 *      random corruptions never crash;
 *   4. every GGUF of the shared conformance set parses with the facts the
 *      manifest lists (skipped when the set is absent).
 *
 * `test_gguf --write-corpus DIR` writes the fuzz seed corpus (valid and broken
 * files, each < 4 KB) instead of testing.
 */
#include "golden.h"
#include "kernels/kernels.h"
#include "model/gguf.h"
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *corpus_dir; /* set by --write-corpus */
static char tmp_dir[64];

/* ---- a byte builder for hand-made files ---- */

typedef struct bb {
    uint8_t *p;
    size_t len, cap;
} bb;

static void bb_put(bb *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        REQUIRE(b->p);
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void bb_le(bb *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        bb_put(b, &c, 1);
    }
}
static void bb_u32(bb *b, uint32_t v) { bb_le(b, v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_le(b, v, 8); }
static void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void bb_f32(bb *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    bb_u32(b, u);
}
static void bb_f64(bb *b, double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    bb_u64(b, u);
}
/* The key and type of a key-value pair; the caller appends the payload. */
static void bb_kv(bb *b, const char *key, gguf_vtype t) {
    bb_str(b, key);
    bb_u32(b, t);
}
static void bb_arr(bb *b, gguf_vtype et, uint64_t n) {
    bb_u32(b, et);
    bb_u64(b, n);
}
static void bb_patch64(bb *b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}
static void bb_patch32(bb *b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}

typedef struct tspec {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[6];
    uint32_t type;
    uint64_t offset;
} tspec;

/* A whole v3 file: header, the pre-built pairs `kvs` (n_kv of them), the
 * tensor infos, padding to `align` and data_bytes of patterned data. */
static void build_file(bb *b, const bb *kvs, uint64_t n_kv, const tspec *ts, int nt, uint64_t align,
                       uint64_t data_bytes) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, 3);
    bb_u64(b, (uint64_t)nt);
    bb_u64(b, n_kv);
    if (kvs) bb_put(b, kvs->p, kvs->len);
    for (int i = 0; i < nt; i++) {
        bb_str(b, ts[i].name);
        bb_u32(b, ts[i].n_dims);
        for (uint32_t d = 0; d < ts[i].n_dims; d++) bb_u64(b, ts[i].ne[d]);
        bb_u32(b, ts[i].type);
        bb_u64(b, ts[i].offset);
    }
    while (b->len % align) bb_le(b, 0, 1);
    for (uint64_t i = 0; i < data_bytes; i++) bb_le(b, (i * 7 + 3) & 0xff, 1);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    REQUIRE(fwrite(p, 1, n, fp) == n);
    REQUIRE(fclose(fp) == 0);
}

static void save_seed(const char *name, const void *p, size_t n) {
    if (!corpus_dir || n >= 4096) return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", corpus_dir, name);
    write_bytes(path, p, n);
}

/* Reads every value reachable from f, as a consumer would (ASan checks the
 * bounds); returns a checksum so nothing is optimized away. */
static uint64_t walk_arr(const gguf_arr *a, int depth) {
    uint64_t sum = a->n;
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->type == GGUF_STRING) {
            gguf_str s = gguf_arr_str(a, i);
            if (s.len) sum += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
        } else if (a->type == GGUF_ARRAY) {
            gguf_arr sub = gguf_arr_sub(a, i);
            sum += walk_arr(&sub, depth + 1);
        } else {
            sum += (uint64_t)gguf_arr_int(a, i) + (uint64_t)(gguf_arr_float(a, i) != 0);
        }
    }
    return sum;
}

static uint64_t walk(const gguf_file *f) {
    uint64_t sum = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->key.len) sum += (uint8_t)kv->key.ptr[kv->key.len - 1];
        if (kv->value.type == GGUF_ARRAY) sum += walk_arr(&kv->value.v.arr, 0);
        if (kv->value.type == GGUF_STRING && kv->value.v.str.len)
            sum += (uint8_t)kv->value.v.str.ptr[kv->value.v.str.len - 1];
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        sum += d[0] + d[t->n_bytes - 1];
    }
    return sum;
}

/* ---- 1. every value type, by hand ---- */

static const char *const arr_strs[] = {"a", "", "xyz"};

/* The pairs of the all-types file (returns how many). */
static uint64_t all_types_kvs(bb *k) {
    bb_kv(k, "t.u8", GGUF_U8), bb_le(k, 200, 1);
    bb_kv(k, "t.i8", GGUF_I8), bb_le(k, (uint8_t)-100, 1);
    bb_kv(k, "t.u16", GGUF_U16), bb_le(k, 60000, 2);
    bb_kv(k, "t.i16", GGUF_I16), bb_le(k, (uint16_t)-30000, 2);
    bb_kv(k, "t.u32", GGUF_U32), bb_u32(k, 4000000000u);
    bb_kv(k, "t.i32", GGUF_I32), bb_u32(k, (uint32_t)-2000000000);
    bb_kv(k, "t.f32", GGUF_F32), bb_f32(k, 1.5f);
    bb_kv(k, "t.bool", GGUF_BOOL), bb_le(k, 1, 1);
    bb_kv(k, "t.str", GGUF_STRING), bb_str(k, "h\xc3\xa9llo");
    bb_kv(k, "t.u64", GGUF_U64), bb_u64(k, (1ULL << 63) + 5);
    bb_kv(k, "t.i64", GGUF_I64), bb_u64(k, (uint64_t) - (1LL << 62));
    bb_kv(k, "t.f64", GGUF_F64), bb_f64(k, -2.25e300);
    bb_kv(k, "t.arr.u8", GGUF_ARRAY), bb_arr(k, GGUF_U8, 3), bb_put(k, "\x01\x02\x03", 3);
    bb_kv(k, "t.arr.str", GGUF_ARRAY), bb_arr(k, GGUF_STRING, 3);
    for (int i = 0; i < 3; i++) bb_str(k, arr_strs[i]);
    /* [[1, 2, 3] (u16), ["p", "qq"], [[-7] (i32), []] (strings)] */
    bb_kv(k, "t.nested", GGUF_ARRAY), bb_arr(k, GGUF_ARRAY, 3);
    bb_arr(k, GGUF_U16, 3), bb_le(k, 1, 2), bb_le(k, 2, 2), bb_le(k, 3, 2);
    bb_arr(k, GGUF_STRING, 2), bb_str(k, "p"), bb_str(k, "qq");
    bb_arr(k, GGUF_ARRAY, 2);
    bb_arr(k, GGUF_I32, 1), bb_u32(k, (uint32_t)-7);
    bb_arr(k, GGUF_STRING, 0);
    bb_kv(k, "t.empty", GGUF_ARRAY), bb_arr(k, GGUF_F32, 0);
    bb_kv(k, "t.arr.f64", GGUF_ARRAY), bb_arr(k, GGUF_F64, 2), bb_f64(k, 0.25), bb_f64(k, -3.0);
    return 17;
}

static const tspec all_types_tensors[] = {
    {"w", 2, {4, 2}, KERN_F32, 0}, /* 32 bytes */
    {"b", 1, {32}, KERN_Q8_0, 32}, /* 34 bytes */
};

static void build_all_types(bb *b) {
    bb k = {0};
    uint64_t n = all_types_kvs(&k);
    build_file(b, &k, n, all_types_tensors, 2, GGUF_DEFAULT_ALIGNMENT, 32 + 34);
    free(k.p);
}

static void check_all_types(const gguf_file *f) {
    CHECK(gguf_version(f) == 3);
    CHECK(gguf_n_kv(f) == 17);
    const gguf_kv *kv;
    REQUIRE((kv = gguf_find(f, "t.u8")) && kv->value.type == GGUF_U8 && kv->value.v.u64 == 200);
    REQUIRE((kv = gguf_find(f, "t.i8")) && kv->value.type == GGUF_I8 && kv->value.v.i64 == -100);
    REQUIRE((kv = gguf_find(f, "t.u16")) && kv->value.type == GGUF_U16 && kv->value.v.u64 == 60000);
    REQUIRE((kv = gguf_find(f, "t.i16")) && kv->value.v.i64 == -30000);
    REQUIRE((kv = gguf_find(f, "t.u32")) && kv->value.v.u64 == 4000000000u);
    REQUIRE((kv = gguf_find(f, "t.i32")) && kv->value.v.i64 == -2000000000);
    REQUIRE((kv = gguf_find(f, "t.f32")) && kv->value.type == GGUF_F32 && kv->value.v.f64 == 1.5);
    REQUIRE((kv = gguf_find(f, "t.u64")) && kv->value.v.u64 == (1ULL << 63) + 5);
    REQUIRE((kv = gguf_find(f, "t.i64")) && kv->value.v.i64 == -(1LL << 62));
    REQUIRE((kv = gguf_find(f, "t.f64")) && kv->value.v.f64 == -2.25e300);
    CHECK(gguf_find(f, "t.nope") == NULL);
    CHECK(gguf_find(f, "t.u") == NULL); /* a prefix of keys is not a key */

    /* Typed getters: any integer that fits, nothing else. */
    uint32_t u32 = 77;
    int32_t i32 = 77;
    uint64_t u64 = 77;
    float f32 = 0;
    bool b = false;
    gguf_str s;
    CHECK(gguf_get_u32(f, "t.u32", &u32) && u32 == 4000000000u);
    CHECK(gguf_get_u32(f, "t.u8", &u32) && u32 == 200);
    u32 = 77;
    CHECK(!gguf_get_u32(f, "t.i8", &u32) && u32 == 77);  /* negative */
    CHECK(!gguf_get_u32(f, "t.u64", &u32) && u32 == 77); /* too large */
    CHECK(!gguf_get_u32(f, "t.f32", &u32) && u32 == 77); /* float */
    CHECK(!gguf_get_u32(f, "t.str", &u32) && u32 == 77);
    CHECK(!gguf_get_u32(f, "absent", &u32) && u32 == 77);
    CHECK(gguf_get_i32(f, "t.i32", &i32) && i32 == -2000000000);
    CHECK(gguf_get_i32(f, "t.u16", &i32) && i32 == 60000);
    i32 = 77;
    CHECK(!gguf_get_i32(f, "t.u32", &i32) && i32 == 77); /* 4e9 > INT32_MAX */
    CHECK(!gguf_get_i32(f, "t.i64", &i32) && i32 == 77);
    CHECK(gguf_get_u64(f, "t.u64", &u64) && u64 == (1ULL << 63) + 5);
    CHECK(gguf_get_u64(f, "t.u16", &u64) && u64 == 60000);
    u64 = 77;
    CHECK(!gguf_get_u64(f, "t.i64", &u64) && u64 == 77);
    CHECK(gguf_get_f32(f, "t.f32", &f32) && f32 == 1.5f);
    CHECK(gguf_get_f32(f, "t.f64", &f32) && isinf(f32));
    f32 = 0;
    CHECK(!gguf_get_f32(f, "t.u32", &f32) && f32 == 0);
    CHECK(gguf_get_bool(f, "t.bool", &b) && b);
    CHECK(!gguf_get_bool(f, "t.u8", &b));
    CHECK(gguf_get_str(f, "t.str", &s) && gguf_str_eq(s, "h\xc3\xa9llo"));
    CHECK(!gguf_str_eq(s, "h\xc3\xa9ll") && !gguf_str_eq(s, "h\xc3\xa9lloo"));
    CHECK(!gguf_get_str(f, "t.arr.str", &s));

    gguf_arr a, sub, sub2;
    CHECK(!gguf_get_arr(f, "t.str", &a));
    REQUIRE(gguf_get_arr(f, "t.arr.u8", &a) && a.type == GGUF_U8 && a.n == 3);
    CHECK(gguf_arr_int(&a, 0) == 1 && gguf_arr_int(&a, 2) == 3 && gguf_arr_float(&a, 1) == 2.0);
    REQUIRE(gguf_get_arr(f, "t.arr.str", &a) && a.type == GGUF_STRING && a.n == 3);
    for (uint64_t i = 0; i < 3; i++) CHECK(gguf_str_eq(gguf_arr_str(&a, i), arr_strs[i]));
    REQUIRE(gguf_get_arr(f, "t.nested", &a) && a.type == GGUF_ARRAY && a.n == 3);
    sub = gguf_arr_sub(&a, 0);
    REQUIRE(sub.type == GGUF_U16 && sub.n == 3);
    CHECK(gguf_arr_int(&sub, 0) == 1 && gguf_arr_int(&sub, 1) == 2 && gguf_arr_int(&sub, 2) == 3);
    sub = gguf_arr_sub(&a, 1);
    REQUIRE(sub.type == GGUF_STRING && sub.n == 2);
    CHECK(gguf_str_eq(gguf_arr_str(&sub, 0), "p") && gguf_str_eq(gguf_arr_str(&sub, 1), "qq"));
    sub = gguf_arr_sub(&a, 2);
    REQUIRE(sub.type == GGUF_ARRAY && sub.n == 2);
    sub2 = gguf_arr_sub(&sub, 0);
    REQUIRE(sub2.type == GGUF_I32 && sub2.n == 1);
    CHECK(gguf_arr_int(&sub2, 0) == -7 && gguf_arr_float(&sub2, 0) == -7.0);
    sub2 = gguf_arr_sub(&sub, 1);
    CHECK(sub2.type == GGUF_STRING && sub2.n == 0);
    REQUIRE(gguf_get_arr(f, "t.empty", &a) && a.type == GGUF_F32 && a.n == 0);
    REQUIRE(gguf_get_arr(f, "t.arr.f64", &a) && a.type == GGUF_F64 && a.n == 2);
    CHECK(gguf_arr_float(&a, 0) == 0.25 && gguf_arr_float(&a, 1) == -3.0 &&
          gguf_arr_int(&a, 1) == -3);

    /* Tensors. */
    REQUIRE(gguf_n_tensors(f) == 2);
    const gguf_tensor *w = gguf_find_tensor(f, "w"), *bt = gguf_find_tensor(f, "b");
    REQUIRE(w && bt && gguf_find_tensor(f, "x") == NULL);
    CHECK(w == gguf_tensor_at(f, 0) && bt == gguf_tensor_at(f, 1) && !gguf_tensor_at(f, 2));
    CHECK(w->type == KERN_F32 && w->n_dims == 2 && w->ne[0] == 4 && w->ne[1] == 2 &&
          w->ne[2] == 1 && w->ne[3] == 1 && w->n_elements == 8 && w->n_bytes == 32);
    CHECK(bt->type == KERN_Q8_0 && bt->n_dims == 1 && bt->ne[0] == 32 && bt->n_bytes == 34);
    CHECK(gguf_data_offset(f) % GGUF_DEFAULT_ALIGNMENT == 0 && gguf_alignment(f) == 32);
    CHECK((const uint8_t *)w->data + 32 == (const uint8_t *)bt->data);
    const uint8_t *d = w->data;
    for (int i = 0; i < 32 + 34; i++) CHECK(d[i] == ((i * 7 + 3) & 0xff));
}

static void test_all_types(void) {
    bb b = {0};
    build_all_types(&b);
    save_seed("valid_all_types", b.p, b.len);
    gguf_file *f;
    hearth_err err = gguf_open_memory(b.p, b.len, &f);
    CHECKF(err == HEARTH_OK, "%s", hearth_last_error());
    if (err) return;
    CHECK(gguf_file_size(f) == b.len);
    check_all_types(f);

    /* A copy through the writer keeps every value and tensor. */
    gguf_writer *w;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    CHECK(gguf_writer_copy_kv(w, f) == HEARTH_OK);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes) ==
              HEARTH_OK);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/copy.gguf", tmp_dir);
    CHECKF(gguf_writer_write(w, path) == HEARTH_OK, "%s", hearth_last_error());
    gguf_writer_free(w);
    gguf_close(f);
    err = gguf_open(path, &f);
    CHECKF(err == HEARTH_OK, "%s", hearth_last_error());
    if (err) return;
    check_all_types(f);
    gguf_close(f);
    free(b.p);
}

/* ---- 2. the writer's own setters ---- */

static void test_writer(void) {
    gguf_writer *w;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    uint8_t u8s[] = {0, 255};
    int8_t i8s[] = {-128, 127};
    uint16_t u16s[] = {65535};
    int16_t i16s[] = {-32768, 5};
    uint32_t u32s[] = {1, 2, 4000000000u};
    int32_t i32s[] = {-5};
    float f32s[] = {0.5f, -1e30f};
    uint8_t bools[] = {1, 0, 1};
    uint64_t u64s[] = {UINT64_MAX};
    int64_t i64s[] = {INT64_MIN, 3};
    double f64s[] = {1e-300};
    const char *toks[] = {"<s>", "", "\xe2\x96\x81the", "</s>"};
    REQUIRE(gguf_writer_set_str(w, "general.architecture", "first") == HEARTH_OK);
    REQUIRE(gguf_writer_set_u32(w, "general.alignment", 64) == HEARTH_OK);
    REQUIRE(gguf_writer_set_u32(w, "a.u32", 123456) == HEARTH_OK);
    REQUIRE(gguf_writer_set_i32(w, "a.i32", -123456) == HEARTH_OK);
    REQUIRE(gguf_writer_set_u64(w, "a.u64", 1ULL << 40) == HEARTH_OK);
    REQUIRE(gguf_writer_set_f32(w, "a.f32", 1e-6f) == HEARTH_OK);
    REQUIRE(gguf_writer_set_bool(w, "a.bool", true) == HEARTH_OK);
    REQUIRE(gguf_writer_set_bool(w, "a.false", false) == HEARTH_OK);
    REQUIRE(gguf_writer_set_str(w, "general.architecture", "llama") == HEARTH_OK); /* replaces */
    REQUIRE(gguf_writer_set_arr(w, "a.u8s", GGUF_U8, u8s, 2) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.i8s", GGUF_I8, i8s, 2) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.u16s", GGUF_U16, u16s, 1) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.i16s", GGUF_I16, i16s, 2) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.u32s", GGUF_U32, u32s, 3) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.i32s", GGUF_I32, i32s, 1) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.f32s", GGUF_F32, f32s, 2) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.bools", GGUF_BOOL, bools, 3) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.u64s", GGUF_U64, u64s, 1) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.i64s", GGUF_I64, i64s, 2) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.f64s", GGUF_F64, f64s, 1) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr(w, "a.none", GGUF_I32, NULL, 0) == HEARTH_OK);
    REQUIRE(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4) == HEARTH_OK);
    CHECK(gguf_writer_set_arr(w, "a.bad", GGUF_STRING, toks, 1) == HEARTH_ERR_INVALID_ARG);
    CHECK(gguf_writer_set_arr(w, "a.bad", GGUF_ARRAY, u8s, 1) == HEARTH_ERR_INVALID_ARG);

    /* Tensors of odd sizes, so that padding is needed after each. */
    unsigned long long seed = 42;
    float t0[15];
    uint16_t t1[7];
    uint8_t t2[3 * 2 * 34];
    for (int i = 0; i < 15; i++) t0[i] = test_rand_f(&seed);
    for (int i = 0; i < 7; i++) t1[i] = (uint16_t)test_rand_u64(&seed);
    for (size_t i = 0; i < sizeof t2; i++) t2[i] = (uint8_t)test_rand_u64(&seed);
    int64_t ne0[] = {3, 5}, ne1[] = {7}, ne2[] = {64, 3};
    REQUIRE(gguf_writer_add_tensor(w, "t0", KERN_F32, 2, ne0, t0, sizeof t0) == HEARTH_OK);
    REQUIRE(gguf_writer_add_tensor(w, "t1", KERN_F16, 1, ne1, t1, sizeof t1) == HEARTH_OK);
    REQUIRE(gguf_writer_add_tensor(w, "t2", KERN_Q8_0, 2, ne2, t2, sizeof t2) == HEARTH_OK);
    /* Rejected tensors. */
    int64_t ne_odd[] = {33}, ne_zero[] = {4, 0};
    CHECK(gguf_writer_add_tensor(w, "t0", KERN_F32, 2, ne0, t0, sizeof t0) ==
          HEARTH_ERR_INVALID_ARG); /* duplicate */
    CHECK(gguf_writer_add_tensor(w, "x", KERN_F32, 2, ne0, t0, sizeof t0 - 4) ==
          HEARTH_ERR_INVALID_ARG); /* wrong size */
    CHECK(strstr(hearth_last_error(), "bytes") != NULL);
    CHECK(gguf_writer_add_tensor(w, "x", 99, 1, ne1, t1, sizeof t1) == HEARTH_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "x", KERN_Q8_0, 1, ne_odd, t2, 34) == HEARTH_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "x", KERN_F32, 2, ne_zero, t0, 0) == HEARTH_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "x", KERN_F32, 5, ne0, t0, 4) == HEARTH_ERR_INVALID_ARG);

    char path[128];
    snprintf(path, sizeof path, "%s/written.gguf", tmp_dir);
    REQUIRE(gguf_writer_write(w, path) == HEARTH_OK);
    char bad_path[160];
    snprintf(bad_path, sizeof bad_path, "%s/no/such/dir.gguf", tmp_dir);
    CHECK(gguf_writer_write(w, bad_path) == HEARTH_ERR_IO && *hearth_last_error());
    gguf_writer_free(w);

    gguf_file *f;
    hearth_err err = gguf_open(path, &f);
    CHECKF(err == HEARTH_OK, "%s", hearth_last_error());
    if (err) return;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f32;
    bool b;
    gguf_str s;
    gguf_arr a;
    CHECK(gguf_n_kv(f) == 21);
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "llama"));
    CHECK(gguf_kv_at(f, 0) == gguf_find(f, "general.architecture")); /* replaced in place */
    CHECK(gguf_get_u32(f, "a.u32", &u32) && u32 == 123456);
    CHECK(gguf_get_i32(f, "a.i32", &i32) && i32 == -123456);
    CHECK(gguf_get_u64(f, "a.u64", &u64) && u64 == 1ULL << 40);
    CHECK(gguf_get_f32(f, "a.f32", &f32) && f32 == 1e-6f);
    CHECK(gguf_get_bool(f, "a.bool", &b) && b);
    CHECK(gguf_get_bool(f, "a.false", &b) && !b);
    CHECK(gguf_get_arr(f, "a.u8s", &a) && a.type == GGUF_U8 && a.n == 2 &&
          gguf_arr_int(&a, 1) == 255);
    CHECK(gguf_get_arr(f, "a.i8s", &a) && a.type == GGUF_I8 && gguf_arr_int(&a, 0) == -128);
    CHECK(gguf_get_arr(f, "a.u16s", &a) && a.type == GGUF_U16 && gguf_arr_int(&a, 0) == 65535);
    CHECK(gguf_get_arr(f, "a.i16s", &a) && a.type == GGUF_I16 && gguf_arr_int(&a, 0) == -32768 &&
          gguf_arr_int(&a, 1) == 5);
    CHECK(gguf_get_arr(f, "a.u32s", &a) && a.type == GGUF_U32 && a.n == 3 &&
          gguf_arr_int(&a, 2) == 4000000000LL);
    CHECK(gguf_get_arr(f, "a.i32s", &a) && a.type == GGUF_I32 && gguf_arr_int(&a, 0) == -5);
    CHECK(gguf_get_arr(f, "a.f32s", &a) && a.type == GGUF_F32 && gguf_arr_float(&a, 0) == 0.5 &&
          gguf_arr_float(&a, 1) == (double)-1e30f);
    CHECK(gguf_get_arr(f, "a.bools", &a) && a.type == GGUF_BOOL && a.n == 3 &&
          gguf_arr_int(&a, 0) == 1 && gguf_arr_int(&a, 1) == 0);
    CHECK(gguf_get_arr(f, "a.u64s", &a) && a.type == GGUF_U64 &&
          gguf_arr_float(&a, 0) == (double)UINT64_MAX);
    CHECK(gguf_get_arr(f, "a.i64s", &a) && a.type == GGUF_I64 && gguf_arr_int(&a, 0) == INT64_MIN);
    CHECK(gguf_get_arr(f, "a.f64s", &a) && a.type == GGUF_F64 && gguf_arr_float(&a, 0) == 1e-300);
    CHECK(gguf_get_arr(f, "a.none", &a) && a.type == GGUF_I32 && a.n == 0);
    REQUIRE(gguf_get_arr(f, "tokenizer.ggml.tokens", &a) && a.type == GGUF_STRING && a.n == 4);
    for (uint64_t i = 0; i < 4; i++) CHECK(gguf_str_eq(gguf_arr_str(&a, i), toks[i]));

    /* Layout: 64-byte alignment, each tensor padded, data byte for byte. */
    CHECK(gguf_alignment(f) == 64 && gguf_data_offset(f) % 64 == 0);
    REQUIRE(gguf_n_tensors(f) == 3);
    const void *src[] = {t0, t1, t2};
    uint64_t sizes[] = {sizeof t0, sizeof t1, sizeof t2}, off = 0;
    for (int64_t i = 0; i < 3; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        CHECK(t->offset == off && t->offset % 64 == 0 && t->n_bytes == sizes[i]);
        CHECK(memcmp(t->data, src[i], sizes[i]) == 0);
        const uint8_t *pad = (const uint8_t *)t->data + t->n_bytes;
        for (uint64_t p = t->n_bytes; p % 64; p++) CHECK(*pad++ == 0);
        off += (sizes[i] + 63) / 64 * 64;
    }
    CHECK(gguf_file_size(f) == gguf_data_offset(f) + off);
    CHECK(gguf_tensor_at(f, 2)->ne[0] == 64 && gguf_tensor_at(f, 2)->ne[1] == 3);
    CHECK(gguf_tensor_at(f, 1)->type == KERN_F16);
    gguf_close(f);

    /* Bad alignments are refused at write time. */
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    REQUIRE(gguf_writer_set_u32(w, "general.alignment", 3) == HEARTH_OK);
    CHECK(gguf_writer_write(w, path) == HEARTH_ERR_INVALID_ARG);
    REQUIRE(gguf_writer_set_str(w, "general.alignment", "32") == HEARTH_OK);
    CHECK(gguf_writer_write(w, path) == HEARTH_ERR_INVALID_ARG);
    /* An empty file is valid. */
    gguf_writer_free(w);
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    REQUIRE(gguf_writer_write(w, path) == HEARTH_OK);
    gguf_writer_free(w);
    err = gguf_open(path, &f);
    CHECKF(err == HEARTH_OK, "%s", hearth_last_error());
    if (!err) {
        CHECK(gguf_n_kv(f) == 0 && gguf_n_tensors(f) == 0);
        gguf_close(f);
    }
    CHECK(gguf_open("/nonexistent/file.gguf", &f) == HEARTH_ERR_IO && *hearth_last_error());
}

/* ---- 3. broken files ---- */

static int n_bad;

static void expect_bad_(const char *name, const bb *b, const char *word, int line) {
    gguf_file *f = NULL;
    hearth_err err = gguf_open_memory(b->p, b->len, &f);
    const char *msg = hearth_last_error();
    n_bad++;
    CHECKF(err == HEARTH_ERR_FORMAT, "line %d: %s: got %s (%s)", line, name, hearth_err_name(err),
           msg);
    if (err == HEARTH_OK) {
        gguf_close(f);
        return;
    }
    CHECKF(strncmp(msg, "gguf", 4) == 0, "line %d: %s: message '%s'", line, name, msg);
    CHECKF(!word || strstr(msg, word), "line %d: %s: message '%s' lacks '%s'", line, name, msg,
           word);
    char seed[96];
    snprintf(seed, sizeof seed, "bad_%s", name);
    save_seed(seed, b->p, b->len);
}
#define expect_bad(name, b, word) expect_bad_(name, b, word, __LINE__)

/* A small valid file with one pair and the given tensors (data sized to fit). */
static void tensors_file(bb *b, const tspec *ts, int nt, uint64_t data_bytes) {
    bb k = {0};
    bb_kv(&k, "general.architecture", GGUF_STRING), bb_str(&k, "llama");
    build_file(b, &k, 1, ts, nt, 32, data_bytes);
    free(k.p);
}

/* A file with no tensors and the single pair `k`. */
static void kv_file(bb *b, const bb *k) { build_file(b, k, 1, NULL, 0, 32, 0); }

static void test_bad_headers(void) {
    bb b = {0};
    bb_put(&b, "", 0);
    expect_bad("empty", &b, "truncated");
    bb_put(&b, "GGU", 3);
    expect_bad("short_magic", &b, "truncated");
    b.len = 0;
    build_all_types(&b);
    b.p[0] = 'X';
    expect_bad("magic", &b, "magic");
    b.p[0] = 'G';
    bb_patch32(&b, 4, 1);
    expect_bad("version1", &b, "version 1");
    bb_patch32(&b, 4, 4);
    expect_bad("version4", &b, "version 4");
    bb_patch32(&b, 4, 0x03000000);
    expect_bad("big_endian", &b, "big-endian");
    bb_patch32(&b, 4, 3);
    bb_patch64(&b, 8, 1ULL << 63);
    expect_bad("n_tensors_huge", &b, "cannot fit");
    bb_patch64(&b, 8, 1000);
    expect_bad("n_tensors_large", &b, "cannot fit");
    bb_patch64(&b, 8, 2);
    bb_patch64(&b, 16, 1ULL << 63);
    expect_bad("n_kv_huge", &b, "cannot fit");
    bb_patch64(&b, 16, UINT64_MAX);
    expect_bad("n_kv_max", &b, "cannot fit");
    bb_patch64(&b, 16, 18); /* one pair more than there are: tensor infos read as a pair */
    expect_bad("n_kv_plus_one", &b, NULL);
    bb_patch64(&b, 16, 17);
    gguf_file *f;
    CHECK(gguf_open_memory(b.p, b.len, &f) == HEARTH_OK); /* restored */
    gguf_close(f);
    free(b.p);
}

static void test_bad_values(void) {
    bb b = {0}, k = {0};
    /* Lengths of 2^63. */
    bb_u64(&k, 1ULL << 63), bb_put(&k, "key", 3), bb_u32(&k, GGUF_U8), bb_le(&k, 0, 1);
    kv_file(&b, &k);
    expect_bad("key_len_huge", &b, "string length");
    k.len = b.len = 0;
    bb_kv(&k, "s", GGUF_STRING), bb_u64(&k, 1ULL << 63), bb_put(&k, "abc", 3);
    kv_file(&b, &k);
    expect_bad("str_len_huge", &b, "string length");
    k.len = b.len = 0;
    bb_kv(&k, "s", GGUF_STRING), bb_u64(&k, 100), bb_put(&k, "abc", 3);
    kv_file(&b, &k);
    expect_bad("str_len_past_end", &b, "string length");
    static const gguf_vtype arr_types[] = {GGUF_U8, GGUF_U64, GGUF_STRING, GGUF_ARRAY};
    for (int i = 0; i < 4; i++) {
        k.len = b.len = 0;
        bb_kv(&k, "a", GGUF_ARRAY), bb_arr(&k, arr_types[i], 1ULL << 63), bb_u64(&k, 0);
        kv_file(&b, &k);
        char name[64];
        snprintf(name, sizeof name, "arr_len_huge_%s", gguf_vtype_name(arr_types[i]));
        expect_bad(name, &b, "array of");
    }
    k.len = b.len = 0;
    bb_kv(&k, "a", GGUF_ARRAY), bb_arr(&k, GGUF_U32, 3), bb_u32(&k, 1), bb_u32(&k, 2);
    kv_file(&b, &k);
    b.len = 24 + k.len; /* cut the padding: 8 of the array's 12 bytes are there */
    expect_bad("arr_truncated", &b, "array of 3 u32");
    k.len = b.len = 0;
    bb_kv(&k, "a", GGUF_ARRAY), bb_arr(&k, GGUF_STRING, 2), bb_str(&k, "ok"), bb_u64(&k, 1000);
    kv_file(&b, &k);
    expect_bad("arr_str_elem_past_end", &b, "element 1");
    /* Unknown types. */
    k.len = b.len = 0;
    bb_kv(&k, "v", (gguf_vtype)13), bb_u64(&k, 0);
    kv_file(&b, &k);
    expect_bad("vtype_13", &b, "unknown value type");
    k.len = b.len = 0;
    bb_kv(&k, "v", (gguf_vtype)0xffffffffu), bb_u64(&k, 0);
    kv_file(&b, &k);
    expect_bad("vtype_max", &b, "unknown value type");
    k.len = b.len = 0;
    bb_kv(&k, "a", GGUF_ARRAY), bb_arr(&k, (gguf_vtype)99, 1), bb_u64(&k, 0);
    kv_file(&b, &k);
    expect_bad("arr_vtype_99", &b, "unknown array element type");
    k.len = b.len = 0;
    bb_kv(&k, "a", GGUF_ARRAY), bb_arr(&k, GGUF_ARRAY, 1), bb_arr(&k, (gguf_vtype)13, 0);
    kv_file(&b, &k);
    expect_bad("nested_vtype_13", &b, "unknown array element type");
    /* Nesting deeper than the reader follows. */
    k.len = b.len = 0;
    bb_kv(&k, "deep", GGUF_ARRAY);
    for (int i = 0; i < 40; i++) bb_arr(&k, GGUF_ARRAY, 1);
    bb_arr(&k, GGUF_U8, 0);
    kv_file(&b, &k);
    expect_bad("nested_deep", &b, "nested");
    /* Duplicate keys. */
    k.len = b.len = 0;
    bb_kv(&k, "dup", GGUF_U8), bb_le(&k, 1, 1);
    bb_kv(&k, "other", GGUF_U8), bb_le(&k, 1, 1);
    bb_kv(&k, "dup", GGUF_STRING), bb_str(&k, "x");
    build_file(&b, &k, 3, NULL, 0, 32, 0);
    expect_bad("dup_key", &b, "duplicate metadata key 'dup'");
    /* Alignment: zero, not a power of two, wrong type, too large. */
    k.len = b.len = 0;
    bb_kv(&k, "general.alignment", GGUF_U32), bb_u32(&k, 0);
    kv_file(&b, &k);
    expect_bad("align_0", &b, "power of two");
    k.len = b.len = 0;
    bb_kv(&k, "general.alignment", GGUF_U32), bb_u32(&k, 3);
    kv_file(&b, &k);
    expect_bad("align_3", &b, "power of two");
    k.len = b.len = 0;
    bb_kv(&k, "general.alignment", GGUF_I32), bb_u32(&k, (uint32_t)-32);
    kv_file(&b, &k);
    expect_bad("align_negative", &b, "power of two");
    k.len = b.len = 0;
    bb_kv(&k, "general.alignment", GGUF_U64), bb_u64(&k, 1ULL << 40);
    kv_file(&b, &k);
    expect_bad("align_2_40", &b, "power of two");
    k.len = b.len = 0;
    bb_kv(&k, "general.alignment", GGUF_STRING), bb_str(&k, "32");
    kv_file(&b, &k);
    expect_bad("align_string", &b, "general.alignment has type string");
    free(k.p);
    free(b.p);
}

static void test_bad_tensors(void) {
    bb b = {0};
    const uint64_t big = 1ULL << 32;
    struct {
        const char *name;
        tspec t[2];
        int nt;
        uint64_t data;
        const char *word;
    } cases[] = {
        {"n_dims_0", {{"t", 0, {0}, KERN_F32, 0}}, 1, 32, "n_dims 0"},
        {"n_dims_5", {{"t", 5, {1, 1, 1, 1, 1}, KERN_F32, 0}}, 1, 32, "n_dims 5"},
        {"dim_zero", {{"t", 2, {8, 0}, KERN_F32, 0}}, 1, 32, "dimension 1 is 0"},
        {"dim_2_63", {{"t", 1, {1ULL << 63}, KERN_F32, 0}}, 1, 32, "dimension 0"},
        {"shape_overflow", {{"t", 2, {big, big}, KERN_F32, 0}}, 1, 32, "overflows"},
        {"shape_overflow_4d",
         {{"t", 4, {1 << 16, 1 << 16, 1 << 16, 1 << 16}, KERN_F32, 0}},
         1,
         32,
         "overflows"},
        {"bytes_overflow", {{"t", 2, {1ULL << 31, 1ULL << 31}, KERN_F32, 0}}, 1, 32, "overflows"},
        {"type_99", {{"t", 1, {8}, 99, 0}}, 1, 32, "unknown tensor type 99"},
        {"type_removed_4", {{"t", 1, {32}, 4, 0}}, 1, 32, "unknown tensor type 4"},
        {"type_1000", {{"t", 1, {8}, 1000, 0}}, 1, 32, "unknown tensor type 1000"},
        {"type_max", {{"t", 1, {8}, UINT32_MAX, 0}}, 1, 32, "unknown tensor type"},
        {"block_size", {{"t", 1, {33}, KERN_Q8_0, 0}}, 1, 64, "block size"},
        /* the IQ4 types: rows of whole 256- and 32-element blocks only */
        {"block_size_iq4_xs",
         {{"t", 2, {384, 2}, KERN_IQ4_XS, 0}},
         1,
         2 * 136 * 2,
         "row length 384 is not a multiple of iq4_xs's block size 256"},
        {"block_size_iq4_nl",
         {{"t", 1, {48}, KERN_IQ4_NL, 0}},
         1,
         64,
         "row length 48 is not a multiple of iq4_nl's block size 32"},
        {"misaligned", {{"t", 1, {8}, KERN_F32, 4}}, 1, 64, "alignment"},
        {"offset_past_end",
         {{"blk.0.attn_q.weight", 1, {8}, KERN_F32, 4096}},
         1,
         32,
         "tensor 'blk.0.attn_q.weight' data ["},
        {"offset_overflow", {{"t", 1, {8}, KERN_F32, UINT64_MAX - 31}}, 1, 32, "past the end"},
        {"data_truncated", {{"t", 1, {16}, KERN_F32, 0}}, 1, 60, "extends past the end"},
        {"overlap_same",
         {{"a", 1, {8}, KERN_F32, 0}, {"b", 1, {8}, KERN_F32, 0}},
         2,
         64,
         "overlap"},
        {"overlap_partial",
         {{"a", 1, {16}, KERN_F32, 0}, {"b", 1, {8}, KERN_F32, 32}},
         2,
         96,
         "'a' [0, 64) and 'b' [32, 64) overlap"},
        {"overlap_reversed",
         {{"b", 1, {8}, KERN_F32, 32}, {"a", 1, {16}, KERN_F32, 0}},
         2,
         96,
         "overlap"},
        {"dup_name",
         {{"a", 1, {8}, KERN_F32, 0}, {"a", 1, {8}, KERN_F32, 32}},
         2,
         64,
         "duplicate tensor name 'a'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b.len = 0;
        tensors_file(&b, cases[i].t, cases[i].nt, cases[i].data);
        expect_bad(cases[i].name, &b, cases[i].word);
    }
    /* The same layouts, fixed, are accepted (so the cases above fail for the
     * reason they name). */
    tspec ok[] = {{"a", 1, {16}, KERN_F32, 0}, {"b", 1, {8}, KERN_F32, 64}};
    b.len = 0;
    tensors_file(&b, ok, 2, 96);
    gguf_file *f;
    CHECKF(gguf_open_memory(b.p, b.len, &f) == HEARTH_OK, "%s", hearth_last_error());
    gguf_close(f);
    /* and IQ4 rows of whole blocks: 2 rows of 256 IQ4_XS (2 x 136 bytes),
     * one row of 64 IQ4_NL (2 x 18 bytes) at the next 32-byte boundary */
    tspec iq4_ok[] = {{"xs", 2, {256, 2}, KERN_IQ4_XS, 0}, {"nl", 1, {64}, KERN_IQ4_NL, 288}};
    b.len = 0;
    tensors_file(&b, iq4_ok, 2, 288 + 36);
    f = NULL;
    CHECKF(gguf_open_memory(b.p, b.len, &f) == HEARTH_OK, "%s", hearth_last_error());
    if (f) {
        const gguf_tensor *t = gguf_find_tensor(f, "xs");
        CHECK(t && t->n_bytes == 272);
        gguf_close(f);
    }
    /* Tensor infos end exactly at the end of the file: no room for data. */
    b.len = 0;
    build_file(&b, NULL, 0, ok, 2, 1, 0);
    expect_bad("no_data_section", &b, "past the end");
    free(b.p);
}

/* Every prefix of a valid file that cuts into its contents fails cleanly. */
static void test_cuts(void) {
    bb b = {0};
    build_all_types(&b);
    gguf_file *f;
    REQUIRE(gguf_open_memory(b.p, b.len, &f) == HEARTH_OK);
    const gguf_tensor *last = gguf_tensor_at(f, 1);
    size_t end = (size_t)((const uint8_t *)last->data - b.p + last->n_bytes);
    gguf_close(f);
    int bad = 0;
    for (size_t n = 0; n < end; n++) {
        /* A copy of exactly n bytes, so that ASan sees any read past it. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.p, n);
        hearth_err err = gguf_open_memory(cut, n, &f);
        if (err != HEARTH_ERR_FORMAT || !*hearth_last_error()) {
            bad++;
            fprintf(stderr, "cut at %zu: %s (%s)\n", n, hearth_err_name(err), hearth_last_error());
            if (!err) gguf_close(f);
        }
        if (corpus_dir && (n == 24 || n == end / 2 || n == end - 1)) {
            char name[64];
            snprintf(name, sizeof name, "bad_cut_%zu", n);
            save_seed(name, cut, n);
        }
        free(cut);
    }
    CHECKF(bad == 0, "%d of %zu cuts were not rejected", bad, end);
    test_checks += (int)end;
    free(b.p);
}

/* Random corruptions: either rejected with a message or fully readable. */
static void test_mutations(void) {
    bb b = {0};
    build_all_types(&b);
    unsigned long long seed = 7;
    uint8_t *m = malloc(b.len);
    int ok = 0, bad = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(m, b.p, b.len);
        int flips = 1 + (int)(test_rand_u64(&seed) % 4);
        for (int j = 0; j < flips; j++) {
            size_t at = test_rand_u64(&seed) % b.len;
            uint64_t r = test_rand_u64(&seed);
            m[at] = (uint8_t)((r & 1) ? (r >> 8) : (m[at] ^ (1u << ((r >> 8) & 7))));
        }
        gguf_file *f;
        hearth_err err = gguf_open_memory(m, b.len, &f);
        if (err == HEARTH_OK) {
            (void)walk(f);
            gguf_close(f);
            ok++;
        } else {
            CHECK(err == HEARTH_ERR_FORMAT && *hearth_last_error());
            bad++;
        }
    }
    CHECK(ok > 0 && bad > 0); /* both outcomes are exercised */
    free(m);
    free(b.p);
}

/* ---- 4. the shared conformance files ---- */

/* The JSON object that is the value of "name" in the manifest, as [*beg, *end). */
static bool manifest_object(const char *json, const char *name, const char **beg,
                            const char **end) {
    char needle[300];
    snprintf(needle, sizeof needle, "\"%s\"", name);
    for (const char *p = strstr(json, needle); p; p = strstr(p + 1, needle)) {
        const char *q = p + strlen(needle);
        while (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r') q++;
        if (*q++ != ':') continue;
        while (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r') q++;
        if (*q != '{') continue;
        int depth = 0;
        for (const char *r = q; *r; r++) {
            if (*r == '{') depth++;
            if (*r == '}' && --depth == 0) {
                *beg = q;
                *end = r + 1;
                return true;
            }
        }
    }
    return false;
}

/* The integer after "key": inside [beg, end), or -1. */
static long long manifest_int(const char *beg, const char *end, const char *key) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\"", key);
    const char *p = strstr(beg, needle);
    if (!p || p >= end) return -1;
    p += strlen(needle);
    while (*p == ' ' || *p == ':' || *p == '\n') p++;
    return strtoll(p, NULL, 10);
}

static void check_model_file(const char *path, const char *fname, const char *manifest) {
    gguf_file *f;
    hearth_err err = gguf_open(path, &f);
    CHECKF(err == HEARTH_OK, "%s", hearth_last_error());
    if (err) return;
    gguf_str arch;
    CHECKF(gguf_n_tensors(f) > 0, "%s has no tensors", path);
    CHECKF(gguf_get_str(f, "general.architecture", &arch) && arch.len > 0, "%s", path);
    gguf_arr toks;
    CHECKF(gguf_get_arr(f, "tokenizer.ggml.tokens", &toks) && toks.n > 0, "%s", path);
    const char *beg, *end;
    if (manifest && manifest_object(manifest, fname, &beg, &end)) {
        const char *tt = strstr(beg, "\"tensor_types\"");
        CHECKF(tt && tt < end, "%s: no tensor_types in the manifest", fname);
        if (tt && tt < end) {
            /* Each "TYPE": count of the manifest matches the tensors' types. */
            long long total = 0;
            const char *p = strchr(tt + 14, '{') + 1;
            while (p && *p != '}') {
                const char *q1 = strchr(p, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
                if (!q1 || !q2 || q1 > strchr(p, '}')) break;
                char tname[16];
                snprintf(tname, sizeof tname, "%.*s", (int)(q2 - q1 - 1), q1 + 1);
                long long want = strtoll(strchr(q2, ':') + 1, (char **)&p, 10);
                long long have = 0;
                for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                    const kern_type_info *ti = kern_type_get(gguf_tensor_at(f, i)->type);
                    if (ti && !strcasecmp(ti->name, tname)) have++;
                }
                CHECKF(have == want, "%s: %lld %s tensors, manifest says %lld", fname, have, tname,
                       want);
                total += want;
                while (*p == ',' || *p == ' ' || *p == '\n') p++;
            }
            CHECKF(total == gguf_n_tensors(f), "%s: %lld tensors, manifest says %lld", fname,
                   (long long)gguf_n_tensors(f), total);
        }
        long long bytes = manifest_int(beg, end, "bytes");
        CHECK(bytes < 0 || (uint64_t)bytes == gguf_file_size(f));
    }
    (void)walk(f);
    gguf_close(f);
}

static void check_vocab_file(const char *path, const char *fname, const char *manifest) {
    gguf_file *f;
    hearth_err err = gguf_open(path, &f);
    CHECKF(err == HEARTH_OK, "%s", hearth_last_error());
    if (err) return;
    CHECK(gguf_n_tensors(f) == 0);
    gguf_arr toks;
    bool has = gguf_get_arr(f, "tokenizer.ggml.tokens", &toks) && toks.type == GGUF_STRING;
    CHECKF(has && toks.n > 0, "%s: no tokenizer.ggml.tokens", path);
    const char *beg, *end;
    if (has && manifest && manifest_object(manifest, fname, &beg, &end)) {
        long long n = manifest_int(beg, end, "n_tokens");
        CHECKF(n < 0 || (uint64_t)n == toks.n, "%s: %llu tokens, manifest says %lld", fname,
               (unsigned long long)toks.n, n);
    }
    (void)walk(f);
    gguf_close(f);
}

static int scan_dir(const char *dir, const char *manifest, bool vocab) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (vocab)
            check_vocab_file(path, e->d_name, manifest);
        else
            check_model_file(path, e->d_name, manifest);
        n++;
    }
    closedir(d);
    return n;
}

static void test_conformance(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/conformance", HEARTH_SHARED_DIR);
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("test_gguf: %s absent: conformance files not checked\n", dir);
        return;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *manifest = golden_read(path, NULL);
    int n = 0;
    snprintf(path, sizeof path, "%s/models", dir);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char sub[1400];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            n += scan_dir(sub, manifest, false);
        }
        closedir(d);
    }
    snprintf(path, sizeof path, "%s/stories260K", dir);
    n += scan_dir(path, manifest, false);
    snprintf(path, sizeof path, "%s/tokenizer", dir);
    n += scan_dir(path, manifest, true);
    CHECKF(n > 0, "no .gguf files under %s", dir);
    printf("test_gguf: %d conformance files checked\n", n);
    free(manifest);
}

/* ---- the seed corpus ---- */

static void write_corpus_extras(void) {
    /* Files from the writer: tensors + tokens, an empty file, 64-byte alignment. */
    char path[600];
    gguf_writer *w;
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81hi", "a", "b"};
    float data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t q[34] = {0};
    int64_t ne[] = {4, 2}, neq[] = {32};
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.context_length", 256);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 6);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_F32, data, 6);
    gguf_writer_add_tensor(w, "token_embd.weight", KERN_F32, 2, ne, data, sizeof data);
    gguf_writer_add_tensor(w, "output.weight", KERN_Q8_0, 1, neq, q, sizeof q);
    snprintf(path, sizeof path, "%s/valid_model.gguf", corpus_dir);
    REQUIRE(gguf_writer_write(w, path) == HEARTH_OK);
    gguf_writer_set_u32(w, "general.alignment", 64);
    snprintf(path, sizeof path, "%s/valid_align64.gguf", corpus_dir);
    REQUIRE(gguf_writer_write(w, path) == HEARTH_OK);
    gguf_writer_free(w);
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    snprintf(path, sizeof path, "%s/valid_empty.gguf", corpus_dir);
    REQUIRE(gguf_writer_write(w, path) == HEARTH_OK);
    gguf_writer_free(w);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-corpus")) corpus_dir = argv[2];
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_gguf.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    test_all_types();
    test_writer();
    test_bad_headers();
    test_bad_values();
    test_bad_tensors();
    test_cuts();
    if (corpus_dir) {
        write_corpus_extras();
        printf("test_gguf: seed corpus written to %s\n", corpus_dir);
    } else {
        test_mutations();
        test_conformance();
    }
    printf("test_gguf: %d broken files rejected\n", n_bad);
    char path[128];
    const char *names[] = {"copy.gguf", "written.gguf"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, names[i]);
        remove(path);
    }
    rmdir(tmp_dir);
    return test_done("test_gguf");
}
