/*
 * core.h - the base layer: error reporting, overflow-checked sizes, file
 * mapping, the thread pool and pseudo-random numbers. Everything above may use it; it uses only
 * libc and pthreads.
 */
#ifndef HEARTH_CORE_H
#define HEARTH_CORE_H

#include "hearth.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define HR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HR_PRINTF(a, b)
#endif

/* Records `code` with a formatted detail message for hearth_last_error() and
 * returns `code`, so failure sites read: return hr_fail(HEARTH_ERR_FORMAT, ...). */
hearth_err hr_fail(hearth_err code, const char *fmt, ...) HR_PRINTF(2, 3);
/* Prefixes the current detail message with a formatted context ("loading x: ")
 * and returns `code`. */
hearth_err hr_wrap(hearth_err code, const char *fmt, ...) HR_PRINTF(2, 3);
/* strerror(errnum) in a buffer of the calling thread's (POSIX lets strerror
 * share one between threads; the library runs on the server's). */
const char *hr_strerror(int errnum);
#ifdef __clang_analyzer__
/* The static analyzer does not follow calls into variadic functions, so it
 * would take hr_fail's result for unknown (maybe HEARTH_OK) and walk failure
 * paths as successes: spell out that both return their code (err.c). */
#define hr_fail(code, ...) ((void)hr_fail(code, __VA_ARGS__), (code))
#define hr_wrap(code, ...) ((void)hr_wrap(code, __VA_ARGS__), (code))
#endif

/* Overflow-checked arithmetic on sizes: false when the result would not fit
 * (*out then holds it wrapped, as with __builtin_*_overflow). Plain C rather
 * than those builtins, which the static analyzer does not model (it lost
 * every size computed here). */
static inline bool hr_mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    *out = a * b;
    return b == 0 || a <= UINT64_MAX / b;
}
static inline bool hr_add_ok(uint64_t a, uint64_t b, uint64_t *out) {
    *out = a + b;
    return *out >= a;
}

/* Allocation that reports failure through hr_fail. Free with free(). Inline
 * so that callers (and the static analyzer) see calloc's zeroed memory. */
static inline void *hr_calloc(size_t n, size_t size) {
    void *p = (n && size) ? calloc(n, size) : NULL;
    if (!p && n && size)
        hr_fail(HEARTH_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}
void *hr_aligned_alloc(size_t bytes); /* 64-byte aligned, zeroed; free() it */
/* Zeroed, page-aligned memory mapped from the kernel, for large buffers that
 * fill gradually (the KV cache): a page costs resident memory only once it is
 * written. Free with hr_pages_free and the same size. */
void *hr_pages_alloc(size_t bytes);
void hr_pages_free(void *p, size_t bytes);
/* Asks for huge pages under [p, p + bytes) (before its pages are written):
 * a buffer streamed whole, over and over, then misses the TLB 512 times
 * less. Only a hint; nothing changes where the kernel does not do it. */
void hr_pages_hint_huge(void *p, size_t bytes);

/* A read-only mapping of a whole file (and the file, for hr_map_read). */
typedef struct hr_map {
    const uint8_t *data;
    uint64_t size;
    int fd;
} hr_map;

hearth_err hr_map_open(hr_map *map, const char *path);
void hr_map_close(hr_map *map);
/* Hands this process's pages of [p, p + n) (the whole pages inside it) back
 * to the page cache: a later read faults them in again from the file. For
 * data that was copied elsewhere and is rarely read here any more. */
void hr_map_release(const hr_map *map, const void *p, size_t n);
/* Copies [p, p + n) of the mapping into dst by reading the file, without
 * mapping its pages into this process (a mapped read maps the page cache's
 * whole large folio around it); false when p is not in the mapping or the
 * read fails. */
bool hr_map_read(const hr_map *map, const void *p, size_t n, void *dst);

/* Physical cores of this machine (at least 1). */
int hr_cpu_cores(void);

/* A fixed set of worker threads that run one job at a time: job(ctx, ith, nth)
 * is called once for every ith in [0, nth) with the caller taking ith = 0.
 * hr_pool_run returns when every part has finished. */
typedef struct hr_pool hr_pool;
typedef void (*hr_pool_job)(void *ctx, int ith, int nth);

hearth_err hr_pool_new(int n_threads, hr_pool **out);
void hr_pool_free(hr_pool *pool);
int hr_pool_size(const hr_pool *pool);
void hr_pool_run(hr_pool *pool, hr_pool_job job, void *ctx);
/* The part [*lo, *hi) of [0, n) that part ith of nth takes (even shares). */
static inline void hr_pool_part(int n, int ith, int nth, int *lo, int *hi) {
    *lo = (int)((int64_t)n * ith / nth);
    *hi = (int)((int64_t)n * (ith + 1) / nth);
}

/* Pseudo-random numbers (rng.c): xoshiro256** (Blackman & Vigna, 2018),
 * seeded through splitmix64 so that every 64-bit seed, 0 included, gives a
 * well-mixed non-zero state. Not cryptographic. */
typedef struct hr_rng {
    uint64_t s[4];
} hr_rng;

void hr_rng_seed(hr_rng *rng, uint64_t seed);
uint64_t hr_rng_next(hr_rng *rng);
/* Uniform in [0, 1): the top 53 bits of the next output times 2^-53, so every
 * value is a multiple of 2^-53 and 1.0 is never returned. */
double hr_rng_uniform(hr_rng *rng);
/* Uniform in [0, 1) as a float: the top 24 bits times 2^-24. */
float hr_rng_uniform_f(hr_rng *rng);
/* A seed from the clocks, the address space and a process-wide counter, for
 * callers that want a different run each time (any 64-bit value). */
uint64_t hr_seed_from_entropy(void);

/* UTF-8 (utf8.c): whether byte b starts a character, and if so how many
 * continuation bytes follow and the range [*lo, *hi] of the first one (the
 * others are 0x80..0xBF): no overlong forms, surrogates or code points above
 * U+10FFFF. ASCII is not a lead byte here (callers take it first). */
bool hr_utf8_lead(uint8_t b, uint8_t *need, uint8_t *lo, uint8_t *hi);
/* Whether s[0..len) is well-formed UTF-8 by that table; if not, *bad (when
 * not NULL) is the offset of the first byte of the first bad sequence. */
bool hr_utf8_valid(const void *s, size_t len, size_t *bad);
/* The well-formed character at s[0..len) (len >= 1) by that table: its code
 * point in *cp and its length, or 0 when it is not one. */
size_t hr_utf8_next(const void *s, size_t len, uint32_t *cp);
/* Encodes one code point (<= 0x10FFFF, surrogates allowed) into out[4];
 * returns its length. */
size_t hr_utf8_put(uint32_t cp, char *out);

#endif
