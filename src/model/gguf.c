/*
 * gguf.c - the GGUF reader: parses the header, metadata and tensor table of a
 * GGUF v2/v3 file (little-endian) in place, over a read-only mapping or a
 * caller-owned buffer. Spec: ggml's docs/gguf.md.
 *
 * Invariants, established once by gguf_parse and relied on by every getter:
 * - every string, array and tensor range lies inside [0, size) of the buffer;
 * - every count read from the file was checked against the bytes that remain
 *   BEFORE anything sized by it was allocated, so a hostile file can make the
 *   reader allocate at most a small multiple of its own size;
 * - string arrays and arrays of arrays have an element index (elem_index) so
 *   that element i is found in O(1); each element occupies >= 8 bytes of the
 *   file, which bounds the index;
 * - keys and tensor names are unique (hash tables over them back gguf_find and
 *   gguf_find_tensor), tensors do not overlap and are aligned.
 */
#include "model/gguf.h"

#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull; /* for printf */

/* Arrays of arrays deeper than this are rejected: the parser recurses per level. */
enum { GGUF_MAX_ARRAY_DEPTH = 16 };
/* Longest name quoted in an error message. */
enum { NAME_QUOTE_MAX = 96 };

/* Open-addressing hash table of indices into kv[] or tensors[]; -1 = empty. */
typedef struct name_table {
    int64_t *slots;
    uint64_t mask; /* capacity - 1, capacity a power of two */
} name_table;

struct gguf_file {
    hr_map map; /* owned when gguf_open mapped the file */
    const uint8_t *base;
    uint64_t size;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;

    int64_t n_kv;
    gguf_kv *kv;
    int64_t n_tensors;
    gguf_tensor *tensors;

    /* Element index of string arrays (1 slot per element: file offset of the
     * string) and arrays of arrays (2 slots per element: file offset of the
     * element's header, start of the element's own index). */
    uint64_t *elem_index;
    uint64_t n_index, cap_index;

    name_table keys, names;
};

/* ---- little-endian decoding (the buffer may be unaligned) ---- */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

uint64_t gguf_vtype_size(uint32_t t) {
    switch (t) {
    case GGUF_U8:
    case GGUF_I8:
    case GGUF_BOOL: return 1;
    case GGUF_U16:
    case GGUF_I16: return 2;
    case GGUF_U32:
    case GGUF_I32:
    case GGUF_F32: return 4;
    case GGUF_U64:
    case GGUF_I64:
    case GGUF_F64: return 8;
    default: return 0;
    }
}

/* Fewest bytes one element of type t occupies in the file. */
static uint64_t vtype_min_size(uint32_t t) {
    if (t == GGUF_STRING) return 8; /* u64 length */
    if (t == GGUF_ARRAY) return 12; /* u32 type + u64 count */
    return gguf_vtype_size(t);
}

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *const names[GGUF_VTYPE_COUNT] = {
        "u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
        "bool", "string", "array", "u64", "i64", "f64",
    };
    return (unsigned)t < GGUF_VTYPE_COUNT ? names[t] : "?";
}

static bool vtype_is_signed(uint32_t t) {
    return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
}
static bool vtype_is_float(uint32_t t) { return t == GGUF_F32 || t == GGUF_F64; }

/* Decodes one scalar of type t at p into a value, widened. */
static void decode_scalar(uint32_t t, const uint8_t *p, gguf_value *v) {
    v->type = (gguf_vtype)t;
    switch (t) {
    case GGUF_U8:
    case GGUF_BOOL: v->v.u64 = p[0]; break;
    case GGUF_I8: v->v.i64 = (int8_t)p[0]; break;
    case GGUF_U16: v->v.u64 = le16(p); break;
    case GGUF_I16: v->v.i64 = (int16_t)le16(p); break;
    case GGUF_U32: v->v.u64 = le32(p); break;
    case GGUF_I32: v->v.i64 = (int32_t)le32(p); break;
    case GGUF_U64: v->v.u64 = le64(p); break;
    case GGUF_I64: v->v.i64 = (int64_t)le64(p); break;
    case GGUF_F32: {
        uint32_t bits = le32(p);
        float x;
        memcpy(&x, &bits, sizeof x);
        v->v.f64 = x;
        break;
    }
    case GGUF_F64: {
        uint64_t bits = le64(p);
        memcpy(&v->v.f64, &bits, sizeof v->v.f64);
        break;
    }
    default: v->v.u64 = 0; break;
    }
}

/* ---- the parser's cursor ---- */

typedef struct parser {
    gguf_file *f;
    uint64_t pos;
} parser;

static uint64_t remaining(const parser *ps) { return ps->f->size - ps->pos; }

/* Fails unless n more bytes are available at the cursor. Messages from the
 * parse functions carry no "gguf: " prefix: the loops that call them add it
 * together with what was being read. */
static hearth_err need(const parser *ps, uint64_t n, const char *what) {
    if (n <= remaining(ps)) return HEARTH_OK;
    return hr_fail(HEARTH_ERR_FORMAT,
                   "truncated: %s needs %llu bytes at offset %llu but the file has %llu bytes",
                   what, (ull)n, (ull)ps->pos, (ull)ps->f->size);
}

static hearth_err read_u32(parser *ps, uint32_t *out, const char *what) {
    hearth_err err = need(ps, 4, what);
    if (err) return err;
    *out = le32(ps->f->base + ps->pos);
    ps->pos += 4;
    return HEARTH_OK;
}

static hearth_err read_u64(parser *ps, uint64_t *out, const char *what) {
    hearth_err err = need(ps, 8, what);
    if (err) return err;
    *out = le64(ps->f->base + ps->pos);
    ps->pos += 8;
    return HEARTH_OK;
}

static hearth_err read_str(parser *ps, gguf_str *out, const char *what) {
    uint64_t len;
    hearth_err err = read_u64(ps, &len, what);
    if (err) return err;
    if (len > remaining(ps))
        return hr_fail(
            HEARTH_ERR_FORMAT,
            "%s: string length %llu at offset %llu exceeds the %llu bytes left in the file", what,
            (ull)len, (ull)(ps->pos - 8), (ull)remaining(ps));
    out->ptr = (const char *)ps->f->base + ps->pos;
    out->len = len;
    ps->pos += len;
    return HEARTH_OK;
}

/* ---- the element index ---- */

/* Reserves n slots (n already checked against the file size) and returns the
 * first through *start. */
static hearth_err index_reserve(gguf_file *f, uint64_t n, uint64_t *start) {
    uint64_t want;
    if (!hr_add_ok(f->n_index, n, &want) || want > SIZE_MAX / sizeof(uint64_t))
        return hr_fail(HEARTH_ERR_NOMEM, "array element index of %llu entries is too large",
                       (ull)n);
    if (want > f->cap_index) {
        uint64_t cap = f->cap_index ? f->cap_index : 64;
        while (cap < want) cap = cap > UINT64_MAX / 2 ? want : cap * 2;
        if (cap > SIZE_MAX / sizeof(uint64_t)) cap = want;
        uint64_t *p = realloc(f->elem_index, (size_t)cap * sizeof(uint64_t));
        if (!p)
            return hr_fail(HEARTH_ERR_NOMEM, "out of memory for an array index of %llu entries",
                           (ull)cap);
        f->elem_index = p;
        f->cap_index = cap;
    }
    *start = f->n_index;
    f->n_index = want;
    return HEARTH_OK;
}

/* ---- metadata values ---- */

static hearth_err parse_arr(parser *ps, gguf_arr *arr, int depth);

static hearth_err parse_value(parser *ps, uint32_t type, gguf_value *out, int depth) {
    if (type >= GGUF_VTYPE_COUNT)
        return hr_fail(HEARTH_ERR_FORMAT, "unknown value type %u at offset %llu", type,
                       (ull)(ps->pos - 4));
    out->type = (gguf_vtype)type;
    if (type == GGUF_STRING) return read_str(ps, &out->v.str, "string value");
    if (type == GGUF_ARRAY) return parse_arr(ps, &out->v.arr, depth);
    uint64_t sz = gguf_vtype_size(type);
    hearth_err err = need(ps, sz, gguf_vtype_name((gguf_vtype)type));
    if (err) return err;
    decode_scalar(type, ps->f->base + ps->pos, out);
    ps->pos += sz;
    return HEARTH_OK;
}

/* Indexes the n strings of an array starting at the cursor. */
static hearth_err parse_str_elems(parser *ps, gguf_arr *arr) {
    uint64_t start;
    hearth_err err = index_reserve(ps->f, arr->n, &start);
    if (err) return err;
    arr->index = start;
    for (uint64_t i = 0; i < arr->n; i++) {
        gguf_str s;
        ps->f->elem_index[start + i] = ps->pos;
        err = read_str(ps, &s, "string array element");
        if (err) return hr_wrap(err, "element %llu of %llu: ", (ull)i, (ull)arr->n);
    }
    return HEARTH_OK;
}

/* Indexes the n arrays of an array of arrays starting at the cursor. */
// NOLINTNEXTLINE(misc-no-recursion): through parse_arr, depth < GGUF_MAX_ARRAY_DEPTH
static hearth_err parse_arr_elems(parser *ps, gguf_arr *arr, int depth) {
    uint64_t start;
    hearth_err err = index_reserve(ps->f, 2 * arr->n, &start); /* n <= size / 12: no overflow */
    if (err) return err;
    arr->index = start;
    for (uint64_t i = 0; i < arr->n; i++) {
        gguf_arr sub;
        uint64_t at = ps->pos;
        err = parse_arr(ps, &sub, depth + 1);
        if (err) return hr_wrap(err, "element %llu of %llu: ", (ull)i, (ull)arr->n);
        ps->f->elem_index[start + 2 * i] = at;
        ps->f->elem_index[start + 2 * i + 1] = sub.index;
    }
    return HEARTH_OK;
}

// NOLINTNEXTLINE(misc-no-recursion): depth < GGUF_MAX_ARRAY_DEPTH (16)
static hearth_err parse_arr(parser *ps, gguf_arr *arr, int depth) {
    uint32_t etype;
    uint64_t n;
    hearth_err err = read_u32(ps, &etype, "array element type");
    if (!err) err = read_u64(ps, &n, "array length");
    if (err) return err;
    if (etype >= GGUF_VTYPE_COUNT)
        return hr_fail(HEARTH_ERR_FORMAT, "unknown array element type %u at offset %llu", etype,
                       (ull)(ps->pos - 12));
    if (etype == GGUF_ARRAY && depth + 1 >= GGUF_MAX_ARRAY_DEPTH)
        return hr_fail(HEARTH_ERR_FORMAT, "arrays nested deeper than %d levels",
                       GGUF_MAX_ARRAY_DEPTH);
    uint64_t min = vtype_min_size(etype);
    if (n > remaining(ps) / min)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "array of %llu %s elements at offset %llu needs at least %llu bytes per "
                       "element but only %llu bytes are left in the file",
                       (ull)n, gguf_vtype_name((gguf_vtype)etype), (ull)(ps->pos - 12), (ull)min,
                       (ull)remaining(ps));
    arr->type = (gguf_vtype)etype;
    arr->n = n;
    arr->data = ps->f->base + ps->pos;
    arr->file = ps->f;
    arr->index = 0;
    if (etype == GGUF_STRING) return parse_str_elems(ps, arr);
    if (etype == GGUF_ARRAY) return parse_arr_elems(ps, arr, depth);
    ps->pos += n * min; /* checked above */
    return HEARTH_OK;
}

/* ---- name tables (keys, tensor names) ---- */

static uint64_t hash_bytes(const char *p, uint64_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (uint64_t i = 0; i < len; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static gguf_str table_name(const gguf_file *f, const name_table *t, int64_t i) {
    return t == &f->keys ? f->kv[i].key : f->tensors[i].name;
}

static hearth_err table_init(name_table *t, int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap *= 2; /* n is bounded by the file size */
    t->slots = hr_calloc((size_t)cap, sizeof *t->slots);
    if (!t->slots) return HEARTH_ERR_NOMEM;
    for (uint64_t i = 0; i < cap; i++) t->slots[i] = -1;
    t->mask = cap - 1;
    return HEARTH_OK;
}

/* Index of the entry named (p, len), or -1. */
static int64_t table_find(const gguf_file *f, const name_table *t, const char *p, uint64_t len) {
    if (!t->slots) return -1;
    for (uint64_t h = hash_bytes(p, len) & t->mask;; h = (h + 1) & t->mask) {
        int64_t i = t->slots[h];
        if (i < 0) return -1;
        gguf_str s = table_name(f, t, i);
        if (s.len == len && memcmp(s.ptr, p, len) == 0) return i;
    }
}

/* Inserts entry i; returns the index of an entry with the same name, or -1. */
static int64_t table_insert(const gguf_file *f, name_table *t, int64_t i) {
    gguf_str s = table_name(f, t, i);
    uint64_t h = hash_bytes(s.ptr, s.len) & t->mask;
    for (; t->slots[h] >= 0; h = (h + 1) & t->mask) {
        gguf_str o = table_name(f, t, t->slots[h]);
        if (o.len == s.len && memcmp(o.ptr, s.ptr, s.len) == 0) return t->slots[h];
    }
    t->slots[h] = i;
    return -1;
}

static int quote_len(gguf_str s) { return (int)(s.len < NAME_QUOTE_MAX ? s.len : NAME_QUOTE_MAX); }

/* ---- sections ---- */

static hearth_err parse_header(parser *ps, uint64_t *n_tensors, uint64_t *n_kv) {
    gguf_file *f = ps->f;
    hearth_err err = need(ps, 4, "magic");
    if (err) return err;
    if (memcmp(f->base, "GGUF", 4) != 0)
        return hr_fail(HEARTH_ERR_FORMAT, "bad magic %02x %02x %02x %02x (expected \"GGUF\")",
                       f->base[0], f->base[1], f->base[2], f->base[3]);
    ps->pos = 4;
    err = read_u32(ps, &f->version, "version");
    if (err) return err;
    if (f->version == 1)
        return hr_fail(HEARTH_ERR_FORMAT, "version 1 files are not supported (v2 or v3 expected)");
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0 && f->version >> 16)
            return hr_fail(HEARTH_ERR_FORMAT,
                           "version 0x%08x: big-endian GGUF files are not supported", f->version);
        return hr_fail(HEARTH_ERR_FORMAT, "unsupported version %u (v2 or v3 expected)", f->version);
    }
    err = read_u64(ps, n_tensors, "tensor count");
    if (!err) err = read_u64(ps, n_kv, "metadata count");
    if (err) return err;
    /* The smallest key-value pair is 13 bytes (empty key, type, u8); the
     * smallest tensor info 32 (empty name, n_dims, one dim, type, offset). */
    uint64_t kv_min, ti_min, total;
    if (!hr_mul_ok(*n_kv, 13, &kv_min) || !hr_mul_ok(*n_tensors, 32, &ti_min) ||
        !hr_add_ok(kv_min, ti_min, &total) || total > remaining(ps))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "%llu metadata pairs and %llu tensors cannot fit in the %llu bytes left "
                       "in the file",
                       (ull)*n_kv, (ull)*n_tensors, (ull)remaining(ps));
    return HEARTH_OK;
}

static hearth_err parse_kvs(parser *ps) {
    gguf_file *f = ps->f;
    hearth_err err = table_init(&f->keys, f->n_kv);
    if (err) return err;
    for (int64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        uint32_t type;
        err = read_str(ps, &kv->key, "key");
        if (!err) err = read_u32(ps, &type, "value type");
        if (err) return hr_wrap(err, "gguf: metadata pair #%lld: ", (long long)i);
        err = parse_value(ps, type, &kv->value, 0);
        if (err)
            return hr_wrap(err, "gguf: metadata key '%.*s': ", quote_len(kv->key), kv->key.ptr);
        if (table_insert(f, &f->keys, i) >= 0)
            return hr_fail(HEARTH_ERR_FORMAT, "gguf: duplicate metadata key '%.*s'",
                           quote_len(kv->key), kv->key.ptr);
    }
    return HEARTH_OK;
}

static hearth_err parse_alignment(gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(f, "general.alignment");
    if (!kv) return HEARTH_OK;
    gguf_vtype t = kv->value.type;
    if (t == GGUF_ARRAY || t == GGUF_STRING || t == GGUF_BOOL || vtype_is_float(t))
        return hr_fail(HEARTH_ERR_FORMAT, "gguf: general.alignment has type %s (expected u32)",
                       gguf_vtype_name(t));
    uint64_t a = kv->value.v.u64;
    if (vtype_is_signed(t) && kv->value.v.i64 < 0) a = 0;
    if (a == 0 || (a & (a - 1)) != 0 || a > UINT32_MAX)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "gguf: general.alignment %lld is not a power of two in 1..2^31",
                       vtype_is_signed(t) ? (long long)kv->value.v.i64 : (long long)a);
    f->alignment = a;
    return HEARTH_OK;
}

/* Shape, type and size of one tensor; name already read. */
static hearth_err parse_tensor_shape(parser *ps, gguf_tensor *t) {
    hearth_err err = read_u32(ps, &t->n_dims, "n_dims");
    if (err) return err;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return hr_fail(HEARTH_ERR_FORMAT, "n_dims %u is not in 1..%d", t->n_dims, GGUF_MAX_DIMS);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && (err = read_u64(ps, &ne, "dimension"))) return err;
        if (ne == 0 || ne > INT64_MAX)
            return hr_fail(HEARTH_ERR_FORMAT, "dimension %u is %llu (must be 1..2^63-1)", d,
                           (ull)ne);
        if (!hr_mul_ok(n_el, ne, &n_el) || n_el > INT64_MAX)
            return hr_fail(HEARTH_ERR_FORMAT, "shape's element count overflows at dimension %u", d);
        t->ne[d] = (int64_t)ne;
    }
    t->n_elements = (int64_t)n_el;
    if ((err = read_u32(ps, &t->type, "tensor type")) || (err = read_u64(ps, &t->offset, "offset")))
        return err;
    const kern_type_info *ti = kern_type_get(t->type);
    if (!ti || ti->block_size == 0 || ti->block_bytes == 0)
        return hr_fail(HEARTH_ERR_FORMAT, "unknown tensor type %u", t->type);
    if (t->ne[0] % ti->block_size != 0)
        return hr_fail(HEARTH_ERR_FORMAT, "row length %lld is not a multiple of %s's block size %u",
                       (long long)t->ne[0], ti->name, ti->block_size);
    uint64_t rows = (uint64_t)(t->n_elements / t->ne[0]);
    uint64_t row_bytes;
    if (!hr_mul_ok((uint64_t)(t->ne[0] / ti->block_size), ti->block_bytes, &row_bytes) ||
        !hr_mul_ok(row_bytes, rows, &t->n_bytes))
        return hr_fail(HEARTH_ERR_FORMAT, "size in bytes overflows");
    if (t->offset % ps->f->alignment != 0)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "data offset %llu is not a multiple of the alignment %llu", (ull)t->offset,
                       (ull)ps->f->alignment);
    return HEARTH_OK;
}

static hearth_err parse_tensor_infos(parser *ps) {
    gguf_file *f = ps->f;
    hearth_err err = table_init(&f->names, f->n_tensors);
    if (err) return err;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        err = read_str(ps, &t->name, "tensor name");
        if (err) return hr_wrap(err, "gguf: tensor #%lld: ", (long long)i);
        err = parse_tensor_shape(ps, t);
        if (err)
            return hr_wrap(err, "gguf: tensor #%lld '%.*s': ", (long long)i, quote_len(t->name),
                           t->name.ptr);
        if (table_insert(f, &f->names, i) >= 0)
            return hr_fail(HEARTH_ERR_FORMAT, "gguf: duplicate tensor name '%.*s'",
                           quote_len(t->name), t->name.ptr);
    }
    return HEARTH_OK;
}

typedef struct span {
    uint64_t offset;
    int64_t i;
} span;

static int cmp_span(const void *a, const void *b) {
    uint64_t x = ((const span *)a)->offset, y = ((const span *)b)->offset;
    return x < y ? -1 : x > y;
}

/* Places every tensor's data inside the file and checks that none overlap. */
static hearth_err place_tensors(gguf_file *f) {
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t start, end;
        if (!hr_add_ok(f->data_offset, t->offset, &start) || !hr_add_ok(start, t->n_bytes, &end) ||
            end > f->size)
            return hr_fail(HEARTH_ERR_FORMAT,
                           "gguf: tensor '%.*s' data [%llu, %llu) extends past the end of the "
                           "file (%llu bytes)",
                           quote_len(t->name), t->name.ptr, (ull)(f->data_offset + t->offset),
                           (ull)(f->data_offset + t->offset + t->n_bytes), (ull)f->size);
        t->data = f->base + start;
    }
    if (f->n_tensors < 2) return HEARTH_OK;
    span *order = hr_calloc((size_t)f->n_tensors, sizeof *order);
    if (!order) return HEARTH_ERR_NOMEM;
    for (int64_t i = 0; i < f->n_tensors; i++) order[i] = (span){f->tensors[i].offset, i};
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_span);
    hearth_err err = HEARTH_OK;
    for (int64_t i = 1; i < f->n_tensors && !err; i++) {
        const gguf_tensor *a = &f->tensors[order[i - 1].i], *b = &f->tensors[order[i].i];
        if (a->offset + a->n_bytes > b->offset)
            err = hr_fail(HEARTH_ERR_FORMAT,
                          "gguf: tensors '%.*s' [%llu, %llu) and '%.*s' [%llu, %llu) overlap in "
                          "the data section",
                          quote_len(a->name), a->name.ptr, (ull)a->offset,
                          (ull)(a->offset + a->n_bytes), quote_len(b->name), b->name.ptr,
                          (ull)b->offset, (ull)(b->offset + b->n_bytes));
    }
    free(order);
    return err;
}

static hearth_err gguf_parse(gguf_file *f) {
    parser ps = {f, 0};
    uint64_t n_tensors, n_kv;
    hearth_err err = parse_header(&ps, &n_tensors, &n_kv);
    if (err) return hr_wrap(err, "gguf: header: ");
    /* Both counts are now bounded by the file size (see parse_header). */
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    if (n_kv && !(f->kv = hr_calloc((size_t)n_kv, sizeof *f->kv))) return HEARTH_ERR_NOMEM;
    if (n_tensors && !(f->tensors = hr_calloc((size_t)n_tensors, sizeof *f->tensors)))
        return HEARTH_ERR_NOMEM;
    if ((err = parse_kvs(&ps)) || (err = parse_alignment(f)) || (err = parse_tensor_infos(&ps)))
        return err;
    /* ps.pos <= size and alignment <= 2^32: no overflow. */
    f->data_offset = (ps.pos + f->alignment - 1) / f->alignment * f->alignment;
    if (f->n_tensors > 0 && f->data_offset > f->size)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "gguf: data section starts at %llu, past the end of the file (%llu bytes)",
                       (ull)f->data_offset, (ull)f->size);
    return place_tensors(f);
}

/* ---- open / close ---- */

static hearth_err open_buffer(const uint8_t *data, uint64_t size, const hr_map *map,
                              gguf_file **out) {
    gguf_file *f = hr_calloc(1, sizeof *f);
    if (!f) return HEARTH_ERR_NOMEM;
    if (map) f->map = *map;
    f->base = data;
    f->size = size;
    hearth_err err = gguf_parse(f);
    if (err) {
        f->map.data = NULL; /* the caller still owns the mapping on failure */
        gguf_close(f);
        return err;
    }
    *out = f;
    return HEARTH_OK;
}

hearth_err gguf_open(const char *path, gguf_file **out) {
    hr_map map;
    hearth_err err = hr_map_open(&map, path);
    if (err) return err;
    err = open_buffer(map.data, map.size, &map, out);
    if (err) {
        hr_map_close(&map);
        return hr_wrap(err, "%s: ", path);
    }
    return HEARTH_OK;
}

void gguf_release(gguf_file *f, const void *p, size_t n) { hr_map_release(&f->map, p, n); }
bool gguf_read(const gguf_file *f, const void *p, size_t n, void *dst) {
    return hr_map_read(&f->map, p, n, dst);
}

hearth_err gguf_open_memory(const void *data, uint64_t size, gguf_file **out) {
    if (!data && size) return hr_fail(HEARTH_ERR_INVALID_ARG, "gguf: NULL buffer");
    return open_buffer(data ? data : (const uint8_t *)"", size, NULL, out);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    free(f->kv);
    free(f->tensors);
    free(f->elem_index);
    free(f->keys.slots);
    free(f->names.slots);
    hr_map_close(&f->map);
    free(f);
}

/* ---- accessors ---- */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }

int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? &f->kv[i] : NULL;
}
const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    int64_t i = table_find(f, &f->keys, key, strlen(key));
    return i >= 0 ? &f->kv[i] : NULL;
}

int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = table_find(f, &f->names, name, strlen(name));
    return i >= 0 ? &f->tensors[i] : NULL;
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/* ---- typed getters ---- */

/* The integer value of kv as a signed 128-bit-free pair: *neg set when < 0. */
static bool kv_int(const gguf_kv *kv, uint64_t *mag, bool *neg) {
    if (!kv) return false;
    gguf_vtype t = kv->value.type;
    if (gguf_vtype_size(t) == 0 || t == GGUF_BOOL || vtype_is_float(t)) return false;
    if (vtype_is_signed(t) && kv->value.v.i64 < 0) {
        *neg = true;
        *mag = 0 - (uint64_t)kv->value.v.i64;
    } else {
        *neg = false;
        *mag = kv->value.v.u64; /* i64 >= 0 has the same bits */
    }
    return true;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    uint64_t m;
    bool neg;
    if (!kv_int(gguf_find(f, key), &m, &neg) || neg || m > UINT32_MAX) return false;
    *out = (uint32_t)m;
    return true;
}

bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out) {
    uint64_t m;
    bool neg;
    if (!kv_int(gguf_find(f, key), &m, &neg)) return false;
    if (neg ? m > (uint64_t)INT32_MAX + 1 : m > INT32_MAX) return false;
    *out = neg ? (int32_t)(0 - (int64_t)m) : (int32_t)m;
    return true;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    uint64_t m;
    bool neg;
    if (!kv_int(gguf_find(f, key), &m, &neg) || neg) return false;
    *out = m;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || !vtype_is_float(kv->value.type)) return false;
    *out = (float)kv->value.v.f64;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->value.type != GGUF_BOOL) return false;
    *out = kv->value.v.u64 != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->value.type != GGUF_STRING) return false;
    *out = kv->value.v.str;
    return true;
}

bool gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->value.type != GGUF_ARRAY) return false;
    *out = kv->value.v.arr;
    return true;
}

/* ---- array elements ---- */

gguf_str gguf_arr_str(const gguf_arr *arr, uint64_t i) {
    gguf_str s = {"", 0};
    if (arr->type != GGUF_STRING || i >= arr->n) return s; /* caller error */
    const gguf_file *f = arr->file;
    uint64_t at = f->elem_index[arr->index + i];
    s.len = le64(f->base + at);
    s.ptr = (const char *)f->base + at + 8;
    return s;
}

gguf_arr gguf_arr_sub(const gguf_arr *arr, uint64_t i) {
    gguf_arr sub = {GGUF_U8, 0, NULL, arr->file, 0};
    if (arr->type != GGUF_ARRAY || i >= arr->n) return sub; /* caller error */
    const gguf_file *f = arr->file;
    uint64_t at = f->elem_index[arr->index + 2 * i];
    sub.type = (gguf_vtype)le32(f->base + at);
    sub.n = le64(f->base + at + 4);
    sub.data = f->base + at + 12;
    sub.index = f->elem_index[arr->index + 2 * i + 1];
    return sub;
}

int64_t gguf_arr_int(const gguf_arr *arr, uint64_t i) {
    uint64_t sz = gguf_vtype_size(arr->type);
    if (sz == 0 || i >= arr->n) return 0; /* caller error */
    gguf_value v;
    decode_scalar(arr->type, arr->data + i * sz, &v);
    if (vtype_is_float(arr->type)) {
        double x = v.v.f64;
        if (!(x == x)) return 0;
        if (x >= 9223372036854775807.0) return INT64_MAX;
        if (x <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)x;
    }
    return v.v.i64; /* u64 above INT64_MAX wraps, as documented for casts */
}

double gguf_arr_float(const gguf_arr *arr, uint64_t i) {
    uint64_t sz = gguf_vtype_size(arr->type);
    if (sz == 0 || i >= arr->n) return 0.0; /* caller error */
    gguf_value v;
    decode_scalar(arr->type, arr->data + i * sz, &v);
    if (vtype_is_float(arr->type)) return v.v.f64;
    if (vtype_is_signed(arr->type)) return (double)v.v.i64;
    return (double)v.v.u64;
}
