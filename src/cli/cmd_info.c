/*
 * cmd_info.c - `hearth info FILE [--no-tensors]`: prints a GGUF file's header
 * facts, every metadata pair (type and value; long strings and arrays are
 * abbreviated) and the tensor table (name, type, shape, offset, bytes); for
 * a LoRA adapter (general.type "adapter"), first what it adapts.
 */
#include "cli.h"

#include "kernels/kernels.h"
#include "model/model.h"

#include <stdio.h>
#include <string.h>

enum {
    INFO_STR_MAX = 80,  /* characters of a string shown before "..." */
    INFO_ARR_FIRST = 8, /* elements of an array shown */
};

static void usage(FILE *out) {
    fprintf(out, "usage: hearth info FILE [--no-tensors]\n"
                 "  prints the GGUF header, every metadata key with its type and value,\n"
                 "  and the tensor table (name, type, shape, offset, bytes)\n"
                 "  --no-tensors   leave out the tensor table\n");
}

/* A string with control characters, quotes and backslashes escaped; cut
 * after `max` bytes. */
static bool print_escaped(gguf_str s, uint64_t max) {
    uint64_t n = s.len < max ? s.len : max;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    return n < s.len;
}

static void print_str(gguf_str s, uint64_t max) {
    putchar('"');
    bool cut = print_escaped(s, max);
    putchar('"');
    if (cut) printf("... (%llu bytes)", (unsigned long long)s.len);
}

static void print_arr(const gguf_arr *a, int depth);

// NOLINTNEXTLINE(misc-no-recursion): print_arr stops at depth 3
static void print_elem(const gguf_arr *a, uint64_t i, int depth) {
    switch (a->type) {
    case GGUF_STRING: print_str(gguf_arr_str(a, i), INFO_STR_MAX / 2); break;
    case GGUF_ARRAY: {
        gguf_arr sub = gguf_arr_sub(a, i);
        print_arr(&sub, depth + 1);
        break;
    }
    case GGUF_F32:
    case GGUF_F64: printf("%.9g", gguf_arr_float(a, i)); break;
    case GGUF_BOOL: fputs(gguf_arr_int(a, i) ? "true" : "false", stdout); break;
    case GGUF_U64: printf("%.0f", gguf_arr_float(a, i)); break; /* exact below 2^53 */
    default: printf("%lld", (long long)gguf_arr_int(a, i)); break;
    }
}

/* "array[TYPE, N] [e0, e1, ...]" with at most INFO_ARR_FIRST elements. */
static void print_arr(const gguf_arr *a, int depth) { // NOLINT(misc-no-recursion): depth < 3
    printf("array[%s, %llu]", gguf_vtype_name(a->type), (unsigned long long)a->n);
    if (a->n == 0) return;
    if (depth >= 3) {
        fputs(" [...]", stdout);
        return;
    }
    fputs(" [", stdout);
    uint64_t shown = a->n < INFO_ARR_FIRST ? a->n : INFO_ARR_FIRST;
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", stdout);
        print_elem(a, i, depth);
    }
    if (shown < a->n) fputs(", ...", stdout);
    putchar(']');
}

static void print_value(const gguf_value *v) {
    switch (v->type) {
    case GGUF_STRING:
        printf("string ");
        print_str(v->v.str, INFO_STR_MAX);
        break;
    case GGUF_ARRAY: print_arr(&v->v.arr, 0); break;
    case GGUF_F32:
    case GGUF_F64: printf("%s %.9g", gguf_vtype_name(v->type), v->v.f64); break;
    case GGUF_BOOL: printf("bool %s", v->v.u64 ? "true" : "false"); break;
    case GGUF_I8:
    case GGUF_I16:
    case GGUF_I32:
    case GGUF_I64: printf("%s %lld", gguf_vtype_name(v->type), (long long)v->v.i64); break;
    default: printf("%s %llu", gguf_vtype_name(v->type), (unsigned long long)v->v.u64); break;
    }
}

static void print_tensors(const gguf_file *f) {
    printf("\ntensors: %lld\n", (long long)gguf_n_tensors(f));
    printf("  %-40s %-6s %-26s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const kern_type_info *ti = kern_type_get(t->type); /* the reader checked it */
        char shape[128];
        int len = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims && len < (int)sizeof shape; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%lld", d ? ", " : "",
                            (long long)t->ne[d]);
        if (len < (int)sizeof shape) snprintf(shape + len, sizeof shape - (size_t)len, "]");
        printf("  %-40.*s %-6s %-26s %12llu %12llu\n", (int)(t->name.len < 200 ? t->name.len : 200),
               t->name.ptr, ti ? ti->name : "?", shape, (unsigned long long)t->offset,
               (unsigned long long)t->n_bytes);
    }
}

/* What an adapter file is for, checked as model_lora_scan checks it (the
 * base model's side is checked when it is applied). */
static void print_adapter(const gguf_file *f) {
    gguf_str type;
    if (!gguf_get_str(f, "general.type", &type) || !gguf_str_eq(type, "adapter")) return;
    model_lora_info li;
    if (model_lora_scan(f, &li)) {
        printf("adapter: NOT USABLE: %s\n", hearth_last_error());
        return;
    }
    printf("adapter: LoRA for architecture '%.*s', %d weight%s, rank %lld", (int)li.arch.len,
           li.arch.ptr, li.n_pairs, li.n_pairs == 1 ? "" : "s", (long long)li.rank_min);
    if (li.rank_max != li.rank_min) printf("..%lld", (long long)li.rank_max);
    if (li.alpha != 0.0f) {
        printf(", alpha %g", (double)li.alpha);
        if (li.rank_max == li.rank_min)
            printf(" (alpha/rank = %g at --lora)", (double)li.alpha / (double)li.rank_max);
    } else
        fputs(", no alpha (scale 1 at --lora)", stdout);
    if (li.n_ignored)
        printf(", %d norm tensor%s ignored", li.n_ignored, li.n_ignored == 1 ? "" : "s");
    putchar('\n');
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool tensors = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--no-tensors")) {
            tensors = false;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "hearth info: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    gguf_file *f;
    if (gguf_open(path, &f) != HEARTH_OK) return cli_fail("info", "cannot read GGUF file");
    printf("file: %s\n", path);
    printf("version: %u\n", gguf_version(f));
    printf("file size: %llu\n", (unsigned long long)gguf_file_size(f));
    printf("alignment: %llu\n", (unsigned long long)gguf_alignment(f));
    printf("data offset: %llu\n", (unsigned long long)gguf_data_offset(f));
    print_adapter(f);
    printf("\nmetadata: %lld\n", (long long)gguf_n_kv(f));
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        fputs("  ", stdout);
        if (print_escaped(kv->key, INFO_STR_MAX)) fputs("...", stdout);
        fputs(": ", stdout);
        print_value(&kv->value);
        putchar('\n');
    }
    if (tensors) print_tensors(f);
    gguf_close(f);
    return 0;
}
