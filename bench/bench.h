/*
 * bench.h - what the benchmarks share: a monotonic clock and sorting the
 * repetitions' times (median at [reps / 2], range at both ends).
 */
#ifndef HEARTH_BENCH_H
#define HEARTH_BENCH_H

#include <stdlib.h>
#include <time.h>

static inline double bench_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline void bench_sort(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, bench_cmp_double);
}

#endif
