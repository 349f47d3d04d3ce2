/*
 * err.c - the per-thread detail message behind hearth_last_error().
 *
 * The library never prints: the failure site records what went wrong and the
 * CLI or server decides what to show.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#undef hr_fail /* core.h's versions for the static analyzer; defined here */
#undef hr_wrap

enum { ERR_MSG_MAX = 1024 };

static _Thread_local char err_msg[ERR_MSG_MAX];

hearth_err hr_fail(hearth_err code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return code;
}

hearth_err hr_wrap(hearth_err code, const char *fmt, ...) {
    char prefix[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = n < 0 ? 0 : (size_t)n >= sizeof prefix ? sizeof prefix - 1 : (size_t)n;
    size_t olen = strlen(err_msg);
    if (plen + olen >= sizeof err_msg) olen = sizeof err_msg - 1 - plen;
    memmove(err_msg + plen, err_msg, olen);
    memcpy(err_msg, prefix, plen);
    err_msg[plen + olen] = '\0';
    return code;
}

const char *hearth_last_error(void) { return err_msg; }

const char *hr_strerror(int errnum) {
    static _Thread_local char text[128];
    if (strerror_r(errnum, text, sizeof text) != 0) /* the XSI version: an unknown errnum */
        snprintf(text, sizeof text, "error %d", errnum);
    return text;
}

const char *hearth_err_name(hearth_err err) {
    switch (err) {
    case HEARTH_OK: return "ok";
    case HEARTH_ERR_IO: return "io";
    case HEARTH_ERR_FORMAT: return "format";
    case HEARTH_ERR_UNSUPPORTED: return "unsupported";
    case HEARTH_ERR_NOMEM: return "nomem";
    case HEARTH_ERR_INVALID_ARG: return "invalid-argument";
    case HEARTH_ERR_CONTEXT_FULL: return "context-full";
    }
    return "unknown";
}

void *hr_aligned_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        hr_fail(HEARTH_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}
