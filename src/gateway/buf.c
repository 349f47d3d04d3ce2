/*
 * buf.c - gw_buf, the growable byte buffer the gateway builds request bodies,
 * restored text and reports in. Invariant: data is NULL or NUL-terminated at
 * len; growth doubles and never passes cap_max, so text from a remote tier
 * cannot grow a buffer without bound.
 */
#include "gateway.h"

#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DEFAULT_MAX = 1 << 30 };

hearth_err gw_buf_put(gw_buf *b, const void *data, size_t n) {
    const size_t limit = b->cap_max ? b->cap_max : (size_t)DEFAULT_MAX;
    uint64_t need;
    if (!hr_add_ok(b->len, n, &need) || !hr_add_ok(need, 1, &need) || need > limit)
        return hr_fail(HEARTH_ERR_NOMEM, "gateway: a buffer would pass its limit of %zu bytes",
                       limit);
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap = cap > limit / 2 ? limit : cap * 2;
        char *p = realloc(b->data, cap);
        if (!p) return hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
        b->data = p;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return HEARTH_OK;
}

hearth_err gw_buf_puts(gw_buf *b, const char *s) { return gw_buf_put(b, s, strlen(s)); }

hearth_err gw_buf_printf(gw_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "gateway: bad format");
    if ((size_t)n < sizeof small) return gw_buf_put(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    const hearth_err err = gw_buf_put(b, big, (size_t)n);
    free(big);
    return err;
}

char *gw_buf_take(gw_buf *b, size_t *len) {
    char *d = b->data;
    if (len) *len = b->len;
    if (!d) d = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void gw_buf_free(gw_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
