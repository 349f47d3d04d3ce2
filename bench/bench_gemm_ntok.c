/*
 * bench_gemm_ntok.c - speed of kern_matmul against the number of tokens, to
 * find cliffs in the gemm kernels' choice of path (a product of n tokens
 * should never cost more than one of n + 1). A measurement, not a test.
 *
 * For each type and n_tok = 1..max: one weight of n_rows x n_cols (default
 * 896 x 4864, qwen2.5-0.5b's FFN down projection: a few MiB, past L2) times
 * n_tok random activation rows, on a pool of one thread, with the kernels
 * dispatch.c chose (HEARTH_ISA caps them). Prints the median over the
 * repetitions of ns per token-row (time / (n_tok * n_rows)) and per
 * product, and the ratio of ns per token-row to that of n_tok - 1: above
 * 1.15 (a token costs more in a larger batch) it is flagged as a cliff.
 *
 * With `cold` MiB (default 0: one copy, which stays in cache once warm),
 * enough copies of the weight to fill that many MiB are used in turn, so
 * that each product reads its weight from memory, as a model larger than
 * the caches does.
 *
 * With `packed` 1, the weights are first packed (kern_pack) where the
 * kernels have a layout of their own, and the products read that, as a
 * loaded model's do; 0 (default) reads them as the file stores them.
 *
 * usage: bench_gemm_ntok [n_rows (896)] [n_cols (4864), a multiple of 256]
 *        [max n_tok (16)] [seconds per measurement (0.3)] [types (q8_0,q4_0,q4_K,q6_K)]
 *        [cold MiB (0)] [packed (0)]
 */
#include "bench.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Uniform in [-1, 1), from a 64-bit LCG (fixed seed: the same data each run). */
static float rand_unit(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(*state >> 40) / (float)(1u << 23) - 1.0f;
}

enum { MAX_REPS = 401 };

/* One product of weight w (packed or not) with n_tok tokens. */
static void product(hr_pool *pool, kern_type t, const uint8_t *w, bool packed, int64_t n_rows,
                    int64_t n_cols, const float *x, int64_t n_tok, float *y, void *scratch) {
    const kern_matmul_op op = {
        .type = t, .w = w, .packed = packed, .n_rows = n_rows, .y = y, .ldy = n_rows};
    kern_matmul_multi(pool, &op, 1, n_cols, x, n_tok, scratch);
}

/* Median seconds of one kern_matmul of n_tok tokens, on copy (repetition %
 * n_copies) of the weight (copies of w_bytes each). */
static double time_matmul(hr_pool *pool, kern_type t, const uint8_t *w, size_t w_bytes, bool packed,
                          int n_copies, int64_t n_rows, int64_t n_cols, const float *x,
                          int64_t n_tok, float *y, void *scratch, double budget_s) {
    double dts[MAX_REPS];
    int reps = 0;
    double spent = 0.0;
    product(pool, t, w, packed, n_rows, n_cols, x, n_tok, y, scratch); /* warm-up */
    while (reps < 5 || (spent < budget_s && reps < MAX_REPS)) {
        const uint8_t *wc = w + (size_t)((reps + 1) % n_copies) * w_bytes;
        const double t0 = bench_now_s();
        product(pool, t, wc, packed, n_rows, n_cols, x, n_tok, y, scratch);
        const double dt = bench_now_s() - t0;
        dts[reps++] = dt;
        spent += dt;
    }
    bench_sort(dts, reps);
    return dts[reps / 2];
}

static int bench_type(hr_pool *pool, kern_type t, int64_t n_rows, int64_t n_cols, int max_tok,
                      double budget_s, double cold_mib, bool pack) {
    const kern_type_info *ti = kern_type_get((uint32_t)t);
    const size_t rb = kern_row_bytes(t, n_cols);
    const size_t pb = pack ? kern_packed_bytes(t, n_rows, n_cols) : 0;
    if (!ti || !ti->supported || rb == 0) {
        fprintf(stderr, "type %d: unsupported or n_cols %lld not a multiple of its block\n", (int)t,
                (long long)n_cols);
        return 1;
    }
    const size_t w_bytes = pb ? (pb + 63) / 64 * 64 : (size_t)n_rows * rb;
    const double copies = cold_mib * 1024.0 * 1024.0 / (double)w_bytes;
    const int n_copies = copies < 1.0 ? 1 : copies > 4096.0 ? 4096 : (int)copies + 1;
    uint8_t *w = aligned_alloc(64, w_bytes * (size_t)n_copies);
    uint8_t *plain = pb ? malloc((size_t)n_rows * rb) : w;
    float *wf = malloc((size_t)n_cols * sizeof(float));
    float *x = malloc((size_t)max_tok * (size_t)n_cols * sizeof(float));
    float *y = malloc((size_t)max_tok * (size_t)n_rows * sizeof(float));
    void *scratch = malloc(kern_matmul_scratch_bytes(t, n_cols, max_tok) + 1);
    if (!w || !plain || !wf || !x || !y || !scratch) {
        fprintf(stderr, "out of memory\n");
        if (plain != w) free(plain);
        free(w), free(wf), free(x), free(y), free(scratch);
        return 1;
    }
    uint64_t rng = 42;
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t i = 0; i < n_cols; i++) wf[i] = rand_unit(&rng);
        kern_ref_quantize_row(t, wf, plain + (size_t)r * rb, n_cols);
    }
    if (pb) {
        kern_pack(pool, t, plain, n_rows, n_cols, w);
        free(plain);
    }
    for (int c = 1; c < n_copies; c++) memcpy(w + (size_t)c * w_bytes, w, w_bytes);
    for (int64_t i = 0; i < (int64_t)max_tok * n_cols; i++) x[i] = rand_unit(&rng);

    printf("\n%s%s, %lld x %lld (%.2f MiB, %d %s), 1 thread\n", ti->name, pb ? " packed" : "",
           (long long)n_rows, (long long)n_cols, (double)w_bytes / (1024.0 * 1024.0), n_copies,
           n_copies > 1 ? "copies used in turn: from memory" : "copy: from cache");
    printf("%5s %16s %14s %10s\n", "n_tok", "ns/token-row", "us/product", "vs n-1");
    double prev = 0.0; /* ns per token-row of n_tok - 1 */
    for (int nt = 1; nt <= max_tok; nt++) {
        const double dt = time_matmul(pool, t, w, w_bytes, pb > 0, n_copies, n_rows, n_cols, x, nt,
                                      y, scratch, budget_s);
        const double per = dt * 1e9 / ((double)nt * (double)n_rows);
        const double vs = nt > 1 ? per / prev : 1.0;
        printf("%5d %16.2f %14.1f %9.2fx%s\n", nt, per, dt * 1e6, vs,
               vs > 1.15 ? "  <- cliff" : "");
        fflush(stdout);
        prev = per;
    }
    free(w), free(wf), free(x), free(y), free(scratch);
    return 0;
}

static int type_by_name(const char *name, kern_type *out) {
    for (uint32_t t = 0; t < KERN_TYPE_COUNT; t++) {
        const kern_type_info *ti = kern_type_get(t);
        if (ti && ti->supported && strcmp(ti->name, name) == 0) {
            *out = (kern_type)t;
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv) {
    const int64_t n_rows = argc > 1 ? atoll(argv[1]) : 896;
    const int64_t n_cols = argc > 2 ? atoll(argv[2]) : 4864;
    const int max_tok = argc > 3 ? atoi(argv[3]) : 16;
    const double budget_s = argc > 4 ? atof(argv[4]) : 0.3;
    const char *types = argc > 5 ? argv[5] : "q8_0,q4_0,q4_K,q6_K";
    const double cold_mib = argc > 6 ? atof(argv[6]) : 0.0;
    const bool pack = argc > 7 && atoi(argv[7]) != 0;
    if (n_rows < 1 || n_cols < 1 || max_tok < 1 || max_tok > 4096) {
        fprintf(stderr, "usage: %s [n_rows] [n_cols] [max n_tok] [seconds] [types] [cold MiB]\n",
                argv[0]);
        return 2;
    }
    hr_pool *pool = NULL;
    if (hr_pool_new(1, &pool) != HEARTH_OK) {
        fprintf(stderr, "cannot make a pool\n");
        return 1;
    }
    printf("isa %s\n", kern_isa_name());
    char buf[256];
    snprintf(buf, sizeof buf, "%s", types);
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        kern_type t;
        if (type_by_name(tok, &t)) {
            fprintf(stderr, "unknown type '%s'\n", tok);
            rc = 1;
            continue;
        }
        rc |= bench_type(pool, t, n_rows, n_cols, max_tok, budget_s, cold_mib, pack);
    }
    hr_pool_free(pool);
    return rc;
}
