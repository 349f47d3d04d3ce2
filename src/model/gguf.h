/*
 * gguf.h - GGUF v3 files: a zero-copy reader over a read-only mapping and a
 * writer. Spec: ggml's docs/gguf.md. Every offset, size, count and string
 * length read from a file is validated against the file size before use, so a
 * malformed file yields HEARTH_ERR_FORMAT with a message naming the problem.
 *
 * Everything a gguf_file hands out (strings, arrays, tensor data) points into
 * the mapping or the file's own tables and lives until gguf_close.
 */
#ifndef HEARTH_GGUF_H
#define HEARTH_GGUF_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum gguf_vtype {
    GGUF_U8 = 0,
    GGUF_I8 = 1,
    GGUF_U16 = 2,
    GGUF_I16 = 3,
    GGUF_U32 = 4,
    GGUF_I32 = 5,
    GGUF_F32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_U64 = 10,
    GGUF_I64 = 11,
    GGUF_F64 = 12,
    GGUF_VTYPE_COUNT
} gguf_vtype;

#define GGUF_MAX_DIMS          4
#define GGUF_DEFAULT_ALIGNMENT 32

/* A string inside the file: NOT NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

/* An array value. For scalar element types `data` points at n packed
 * little-endian elements; for strings and nested arrays use gguf_arr_str /
 * gguf_arr_sub (O(1): the reader indexes their elements once). */
typedef struct gguf_arr {
    gguf_vtype type;
    uint64_t n;
    const uint8_t *data;
    const struct gguf_file *file; /* owner, for the element index */
    uint64_t index;               /* private: where this array's element index starts */
} gguf_arr;

typedef struct gguf_value {
    gguf_vtype type;
    union {
        uint64_t u64; /* every unsigned integer type and bool, widened */
        int64_t i64;  /* every signed integer type, widened */
        double f64;   /* F32 and F64, widened */
        gguf_str str;
        gguf_arr arr;
    } v;
} gguf_value;

typedef struct gguf_kv {
    gguf_str key;
    gguf_value value;
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t type;             /* kern_type id, validated as known to GGML */
    uint32_t n_dims;           /* 1..GGUF_MAX_DIMS */
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length (contiguous); unused dims are 1 */
    int64_t n_elements;
    uint64_t offset; /* relative to the start of the data section */
    uint64_t n_bytes;
    const void *data; /* into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Maps and parses `path`. On success *out owns the mapping. */
hearth_err gguf_open(const char *path, gguf_file **out);
/* Parses a buffer the caller keeps alive and unchanged until gguf_close. */
hearth_err gguf_open_memory(const void *data, uint64_t size, gguf_file **out);
/* hr_map_release of [p, p + n) when the file is mapped (nothing for a
 * buffer of gguf_open_memory). */
void gguf_release(gguf_file *f, const void *p, size_t n);
/* hr_map_read of [p, p + n) into dst; false for a buffer of gguf_open_memory. */
bool gguf_read(const gguf_file *f, const void *p, size_t n, void *dst);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* file offset of the data section */
uint64_t gguf_file_size(const gguf_file *f);

int64_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i);
/* The key-value pair named `key` (NUL-terminated), or NULL. */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);

/* Typed look-ups: return true and write *out when `key` exists with a
 * compatible type (any integer type that fits for the integer getters, F32 or
 * F64 for get_f32); false, leaving *out untouched, when absent or mistyped. */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
bool gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out);

/* Element i (< arr->n) of an array of strings / of arrays. */
gguf_str gguf_arr_str(const gguf_arr *arr, uint64_t i);
gguf_arr gguf_arr_sub(const gguf_arr *arr, uint64_t i);
/* Element i of a numeric array, widened (arr->type must be numeric or bool). */
int64_t gguf_arr_int(const gguf_arr *arr, uint64_t i);
double gguf_arr_float(const gguf_arr *arr, uint64_t i);

/* True when s equals the NUL-terminated c string. */
bool gguf_str_eq(gguf_str s, const char *c);

int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* The file's quantization as llama-bench and ollama label it ("Q4_K_M"; for
 * a file without a known general.file_type, the type most weights have;
 * ftype.c). Static storage. */
const char *gguf_quant_label(const gguf_file *f);
/* llama.cpp's name of a general.file_type value ("Q4_K_M"), NULL when Hearth
 * does not know it. */
const char *gguf_ftype_name(uint32_t ft);

/* Name of a value type ("u32", "string", ...). */
const char *gguf_vtype_name(gguf_vtype t);
/* Bytes of one scalar of type t in the file; 0 for string, array and any
 * value outside gguf_vtype (t may come straight from a file). */
uint64_t gguf_vtype_size(uint32_t t);

/* --- writer (gguf_write.c) ---
 * Collects metadata and tensors in memory, then writes a GGUF v3 file.
 * Tensor data is borrowed: it must stay valid until gguf_writer_write returns.
 * Setting a key twice replaces its value. */
typedef struct gguf_writer gguf_writer;

hearth_err gguf_writer_new(gguf_writer **out);
void gguf_writer_free(gguf_writer *w);
hearth_err gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
hearth_err gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
hearth_err gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
hearth_err gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
hearth_err gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
hearth_err gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Array of n scalars of `type` packed little-endian at `data` (copied). */
hearth_err gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype type, const void *data,
                               uint64_t n);
hearth_err gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v,
                                   uint64_t n);
/* Copies every key-value pair of `src` (used by quantize and fine-tuning). */
hearth_err gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src);
/* ne[0] is the row length; n_bytes must equal the size implied by type and shape. */
hearth_err gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                  const int64_t *ne, const void *data, uint64_t n_bytes);
hearth_err gguf_writer_write(gguf_writer *w, const char *path);

#endif
