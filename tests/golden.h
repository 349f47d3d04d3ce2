/*
 * golden.h - reading ../shared/conformance's golden files in tests: whole
 * files, and the numeric arrays of its small JSON documents (a scanner for
 * `"key": [numbers]`, enough for these files; the project's JSON library is
 * for the server).
 */
#ifndef HEARTH_GOLDEN_H
#define HEARTH_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whole file as a NUL-terminated buffer (caller frees), or NULL. */
static inline char *golden_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    }
    return buf;
}

/* Numbers of the array `"key": [...]` in json, up to cap; returns the count or -1. */
static inline int golden_array(const char *json, const char *key, double *out, int cap) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p) return -1;
    p = strchr(p + strlen(pat), '[');
    if (!p) return -1;
    p++;
    int n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == ',' || *p == '\t' || *p == '\r') p++;
        if (*p == ']') return n;
        char *end;
        double v = strtod(p, &end);
        if (end == p) return -1;
        if (n < cap) out[n] = v;
        n++;
        p = end;
    }
}

/* The string value of `"key": "..."` (no escapes), copied into out. */
static inline int golden_string(const char *json, const char *key, char *out, size_t cap) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(json, pat);
    if (!p) return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap) return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return (int)(e - p);
}

#endif
