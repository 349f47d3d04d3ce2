/*
 * test_quant_imatrix.c - the quantizers with importance weights
 * (kern_ref_quantize_row_imatrix, src/kernels/ref_imatrix.c), without
 * llama.cpp: byte equality with ggml through hashes of its output, and
 * properties that hold whatever ggml does.
 *
 * k_golden holds, per type, the 64-bit FNV-1a hash of the bytes ggml wrote
 * for the rows golden_row generates (8 kinds of row: gaussian, outliers,
 * zero blocks or super-blocks, all equal, ~1e-20, some importance weights
 * exactly 0, all positive, large; each in several lengths). They were made
 * by a throwaway harness (not in the repository) that took the block between
 * the "inputs" markers below verbatim, generated the same rows and called
 * ggml_quantize_chunk(type, x, y, 0, 1, n, qw) per row against
 * libggml-base of llama.cpp commit 34af94cd (built -O3 without -march: no
 * FMA), hashing as hash_rows does; it also compared ggml's bytes with
 * kern_ref_quantize_row_imatrix's row by row, and both paths (with and
 * without weights) over thousands more random rows. To remake them, do the
 * same and paste the hashes; the generator uses integer arithmetic and exact
 * float scalings only, so the rows are the same on every IEEE machine.
 */
#include "kernels/kern_ref.h"
#include "test.h"

#include <stdint.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- inputs (shared verbatim with the harness that made k_golden) ---------- */

typedef void (*row_quantizer)(kern_type type, const float *x, void *y, int64_t n, const float *qw);

enum { MAX_N = 512 };

typedef struct gen {
    uint64_t s;
} gen;

static uint64_t gen_u64(gen *g) { /* splitmix64 */
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), a multiple of 2^-24: exact. */
static float gen_unif(gen *g) { return (float)(gen_u64(g) >> 40) * 0x1p-24f; }

/* Roughly gaussian (mean 0, sd 1): 12 uniforms less 6, summed as integers. */
static float gen_gauss(gen *g) {
    int64_t sum = 0;
    for (int i = 0; i < 12; i++) sum += (int64_t)(gen_u64(g) >> 40);
    return (float)(sum - 6 * ((int64_t)1 << 24)) * 0x1p-24f;
}

/* Importance weights over 2^-12 .. 2^13 (as an imatrix's spread), exact. */
static float gen_weight(gen *g) {
    const int e = (int)(gen_u64(g) % 25) - 12;
    return ldexpf(1.0f + gen_unif(g), e);
}

enum {
    ROW_GAUSS,
    ROW_OUTLIERS,   /* 1 in 16 values 12x */
    ROW_ZERO_BLOCK, /* the last max(32, n/2) values 0: a whole block, or super-block */
    ROW_EQUAL,      /* all 0.37 */
    ROW_TINY,       /* ~1e-20: below ggml's GROUP_MAX_EPS, squares subnormal */
    ROW_QW_ZEROS,   /* the first 16 and 1 in 4 of the other weights exactly 0 */
    ROW_POSITIVE,   /* [0.5, 1.5): the fitted minimum clamps at 0 */
    ROW_LARGE,      /* sd 1000 */
    ROW_KINDS
};

static void make_row(int kind, int n, float *x, float *qw) {
    gen g = {0x5eed000000000000ULL + (uint64_t)kind * 1000003u + (uint64_t)n};
    for (int j = 0; j < n; j++) x[j] = gen_gauss(&g);
    for (int j = 0; j < n; j++) qw[j] = gen_weight(&g);
    switch (kind) {
    case ROW_OUTLIERS:
        for (int j = 0; j < n; j++)
            if (gen_u64(&g) % 16 == 0) x[j] *= 12.0f;
        break;
    case ROW_ZERO_BLOCK:
        for (int j = n - (n / 2 > 32 ? n / 2 : 32); j < n; j++) x[j] = 0.0f;
        break;
    case ROW_EQUAL:
        for (int j = 0; j < n; j++) x[j] = 0.37f;
        break;
    case ROW_TINY:
        for (int j = 0; j < n; j++) x[j] *= 1e-20f;
        break;
    case ROW_QW_ZEROS:
        for (int j = 0; j < n; j++)
            if (j < 16 || gen_u64(&g) % 4 == 0) qw[j] = 0.0f;
        break;
    case ROW_POSITIVE:
        for (int j = 0; j < n; j++) x[j] = gen_unif(&g) + 0.5f;
        break;
    case ROW_LARGE:
        for (int j = 0; j < n; j++) x[j] *= 1000.0f;
        break;
    default: break;
    }
}

/* The golden rows of a type with blocks of bs: every kind in each length. */
static const int k_len32[] = {32, 64, 96, 256};
static const int k_len256[] = {256, 512};

static int golden_rows(int bs) { return ROW_KINDS * (bs == QK_K ? 2 : 4); }

static int golden_row(int bs, int r, float *x, float *qw) {
    const int n = bs == QK_K ? k_len256[r % 2] : k_len32[r % 4];
    make_row(r / (bs == QK_K ? 2 : 4), n, x, qw);
    return n;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* The hash of every golden row of `type` as q quantizes them. */
static uint64_t hash_rows(kern_type type, row_quantizer q) {
    static float x[MAX_N], qw[MAX_N];
    static uint8_t y[MAX_N * 2];
    const int bs = (int)kern_type_get((uint32_t)type)->block_size;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int r = 0; r < golden_rows(bs); r++) {
        const int n = golden_row(bs, r, x, qw);
        q(type, x, y, n, qw);
        h = fnv1a(h, y, kern_row_bytes(type, n));
    }
    return h;
}

/* ---- end of inputs ------------------------------------------------------------ */

static const struct {
    kern_type type;
    uint64_t hash;
} k_golden[] = {
    {KERN_Q4_0, 0xe5ceb11eabc30a67ULL},   {KERN_Q4_1, 0x57af5f223d39d933ULL},
    {KERN_Q5_0, 0xd20bec16530046b3ULL},   {KERN_Q5_1, 0x5bfbdd2f49c65c5eULL},
    {KERN_Q2_K, 0x587f569383c13467ULL},   {KERN_Q3_K, 0x8e182a46c83300eeULL},
    {KERN_Q4_K, 0xcebadd9ab5458e64ULL},   {KERN_Q5_K, 0xdd16fd73b05159c2ULL},
    {KERN_Q6_K, 0x116c491e252d1fa0ULL},   {KERN_IQ4_NL, 0xf5a1fb6f39298080ULL},
    {KERN_IQ4_XS, 0x75c28843aad83edcULL},
};
#define N_GOLDEN (sizeof k_golden / sizeof k_golden[0])

static void test_golden(void) {
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const uint64_t h = hash_rows(k_golden[i].type, kern_ref_quantize_row_imatrix);
        CHECKF(h == k_golden[i].hash, "%s: hash 0x%016llx, ggml's 0x%016llx",
               kern_type_get((uint32_t)k_golden[i].type)->name, (unsigned long long)h,
               (unsigned long long)k_golden[i].hash);
    }
}

/* qw == NULL, and the types without a weighted form, are the plain path. */
static void test_fallbacks(void) {
    static float x[MAX_N], qw[MAX_N];
    static uint8_t a[MAX_N * 4], b[MAX_N * 4];
    static const kern_type plain_only[] = {KERN_F32, KERN_F16, KERN_BF16, KERN_Q8_0};
    for (int kind = 0; kind < ROW_KINDS; kind++) {
        make_row(kind, 256, x, qw);
        for (size_t i = 0; i < N_GOLDEN; i++) {
            const kern_type t = k_golden[i].type;
            const size_t bytes = kern_row_bytes(t, 256);
            kern_ref_quantize_row(t, x, a, 256);
            kern_ref_quantize_row_imatrix(t, x, b, 256, NULL);
            CHECKF(memcmp(a, b, bytes) == 0, "%s kind %d: qw NULL is not the plain path",
                   kern_type_get((uint32_t)t)->name, kind);
            /* and the weights change something (all-equal rows aside) */
            kern_ref_quantize_row_imatrix(t, x, b, 256, qw);
            if (kind == ROW_GAUSS || kind == ROW_OUTLIERS || kind == ROW_LARGE)
                CHECKF(memcmp(a, b, bytes) != 0, "%s kind %d: weights ignored",
                       kern_type_get((uint32_t)t)->name, kind);
        }
        for (size_t i = 0; i < sizeof plain_only / sizeof plain_only[0]; i++) {
            const kern_type t = plain_only[i];
            const size_t bytes = kern_row_bytes(t, 256);
            kern_ref_quantize_row(t, x, a, 256);
            memset(b, 0xAA, sizeof b);
            kern_ref_quantize_row_imatrix(t, x, b, 256, qw);
            CHECKF(memcmp(a, b, bytes) == 0, "%s kind %d: the imatrix was not ignored",
                   kern_type_get((uint32_t)t)->name, kind);
        }
    }
}

/* sum qw * (x - dequant(q))^2 */
static double weighted_error(kern_type t, const float *x, const float *qw, const void *q, int n) {
    float y[MAX_N];
    kern_ref_dequantize_row(t, q, y, n);
    double e = 0;
    for (int j = 0; j < n; j++) {
        const double d = (double)x[j] - (double)y[j];
        e += (double)qw[j] * d * d;
    }
    return e;
}

/* What the weights are for: over many rows with strongly uneven weights the
 * weighted squared error of the imatrix path is below the plain path's. */
static void test_weighted_error(void) {
    enum { ROWS = 64, N = 512 };
    static float x[N], qw[N];
    static uint8_t q[N * 2];
    for (size_t i = 0; i < N_GOLDEN; i++) {
        const kern_type t = k_golden[i].type;
        gen g = {0xE7707ULL + i};
        double e_plain = 0, e_imatrix = 0;
        for (int r = 0; r < ROWS; r++) {
            for (int j = 0; j < N; j++) {
                x[j] = gen_gauss(&g);
                if (gen_u64(&g) % 32 == 0) x[j] *= 6.0f;
                /* 1 in 8 columns 2^8..2^10 times the others' weight */
                qw[j] = ldexpf(1.0f + gen_unif(&g), gen_u64(&g) % 8 == 0 ? 8 : 0);
            }
            kern_ref_quantize_row(t, x, q, N);
            e_plain += weighted_error(t, x, qw, q, N);
            kern_ref_quantize_row_imatrix(t, x, q, N, qw);
            e_imatrix += weighted_error(t, x, qw, q, N);
        }
        printf("test_quant_imatrix: %-7s weighted error with imatrix %.4f of without\n",
               kern_type_get((uint32_t)t)->name, e_imatrix / e_plain);
        CHECKF(e_imatrix < e_plain, "%s: weighted error %g with imatrix, %g without",
               kern_type_get((uint32_t)t)->name, e_imatrix, e_plain);
    }
}

int main(void) {
    test_golden();
    test_fallbacks();
    test_weighted_error();
    return test_done("test_quant_imatrix");
}
