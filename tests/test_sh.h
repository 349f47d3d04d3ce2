/*
 * test_sh.h - running the `hearth` program (or any command line) from a
 * test: test_sh formats a shell command line and returns its exit status
 * (128 when it did not exit normally).
 */
#ifndef HEARTH_TEST_SH_H
#define HEARTH_TEST_SH_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

__attribute__((format(printf, 1, 2))) static inline int test_sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) return 128; /* never run a cut command line */
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

#endif
