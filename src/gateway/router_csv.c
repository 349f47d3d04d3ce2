/*
 * router_csv.c - a strict RFC 4180 reader for the router's labeled CSV files
 * (RouteLLM's responses files hold multi-line quoted prompts with commas and
 * doubled quotes). It walks a caller-owned buffer and unquotes each record's
 * fields into its own growing buffer; nothing points into the input after
 * rtr_csv_next returns. Errors carry the line number where the record starts.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

enum { CSV_MAX_FIELD_BYTES = 16 << 20, CSV_MAX_FIELDS = 4096 };

void rtr_csv_init(rtr_csv *c, const char *data, size_t len) {
    memset(c, 0, sizeof *c);
    c->p = data;
    c->end = data + len;
    c->line = 1;
    /* a UTF-8 byte-order mark is not part of the first field's name */
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) c->p += 3;
}

void rtr_csv_fini(rtr_csv *c) {
    free(c->buf);
    free(c->offs);
    free(c->lens);
    memset(c, 0, sizeof *c);
}

static hearth_err csv_putc(rtr_csv *c, char ch) {
    if (c->buf_len + 1 >= c->buf_cap) {
        if (c->buf_cap >= CSV_MAX_FIELD_BYTES)
            return hr_fail(HEARTH_ERR_FORMAT, "csv: line %zu: record longer than %d bytes", c->line,
                           CSV_MAX_FIELD_BYTES);
        size_t cap = c->buf_cap ? c->buf_cap * 2 : 256;
        char *nb = realloc(c->buf, cap);
        if (!nb) return hr_fail(HEARTH_ERR_NOMEM, "csv: out of memory");
        c->buf = nb;
        c->buf_cap = cap;
    }
    c->buf[c->buf_len++] = ch;
    return HEARTH_OK;
}

static hearth_err csv_begin_field(rtr_csv *c) {
    if (c->n_fields == c->fields_cap) {
        if (c->fields_cap >= CSV_MAX_FIELDS)
            return hr_fail(HEARTH_ERR_FORMAT, "csv: line %zu: more than %d fields", c->line,
                           CSV_MAX_FIELDS);
        size_t cap = c->fields_cap ? c->fields_cap * 2 : 8;
        size_t *no = realloc(c->offs, cap * sizeof *no);
        if (!no) return hr_fail(HEARTH_ERR_NOMEM, "csv: out of memory");
        c->offs = no;
        size_t *nl = realloc(c->lens, cap * sizeof *nl);
        if (!nl) return hr_fail(HEARTH_ERR_NOMEM, "csv: out of memory");
        c->lens = nl;
        c->fields_cap = cap;
    }
    c->offs[c->n_fields] = c->buf_len;
    c->lens[c->n_fields] = 0;
    c->n_fields++;
    return HEARTH_OK;
}

/* Ends the current field with a NUL so callers may use it as a C string. */
static hearth_err csv_end_field(rtr_csv *c) {
    size_t i = c->n_fields - 1;
    c->lens[i] = c->buf_len - c->offs[i];
    return csv_putc(c, '\0');
}

/* Reads a quoted field; c->p is just past the opening quote. Leaves c->p on
 * the byte after the closing quote. */
static hearth_err csv_quoted(rtr_csv *c, size_t *line) {
    hearth_err e;
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') {
            if (c->p < c->end && *c->p == '"') {
                c->p++;
                if ((e = csv_putc(c, '"'))) return e;
                continue;
            }
            return HEARTH_OK;
        }
        if (ch == '\n') (*line)++;
        if ((e = csv_putc(c, ch))) return e;
    }
    return hr_fail(HEARTH_ERR_FORMAT, "csv: line %zu: quoted field not closed before end of file",
                   c->line);
}

hearth_err rtr_csv_next(rtr_csv *c, bool *got) {
    hearth_err e;
    c->buf_len = 0;
    c->n_fields = 0;
    *got = false;
    if (c->p >= c->end) return HEARTH_OK;
    size_t line = c->line;
    for (;;) { /* one field per turn */
        if ((e = csv_begin_field(c))) return e;
        if (c->p < c->end && *c->p == '"') {
            c->p++;
            if ((e = csv_quoted(c, &line))) return e;
            if (c->p < c->end && *c->p != ',' && *c->p != '\n' &&
                !(*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n') &&
                !(*c->p == '\r' && c->p + 1 == c->end))
                return hr_fail(HEARTH_ERR_FORMAT,
                               "csv: line %zu: text after a closing quote (field %zu)", line,
                               c->n_fields);
        } else {
            while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
                if (*c->p == '"')
                    return hr_fail(HEARTH_ERR_FORMAT,
                                   "csv: line %zu: quote inside an unquoted field (field %zu)",
                                   line, c->n_fields);
                if ((e = csv_putc(c, *c->p++))) return e;
            }
            if (c->p < c->end && *c->p == '\r' && !(c->p + 1 == c->end || c->p[1] == '\n'))
                return hr_fail(HEARTH_ERR_FORMAT, "csv: line %zu: bare carriage return", line);
        }
        if ((e = csv_end_field(c))) return e;
        if (c->p >= c->end) break;
        char ch = *c->p++;
        if (ch == ',') continue;
        if (ch == '\r' && c->p < c->end)
            c->p++; /* checked above: CR ends the input or precedes LF */
        line++;
        break;
    }
    c->line = line;
    *got = true;
    return HEARTH_OK;
}

const char *rtr_csv_field(const rtr_csv *c, size_t i, size_t *len) {
    if (i >= c->n_fields) return NULL;
    if (len) *len = c->lens[i];
    return c->buf + c->offs[i];
}
