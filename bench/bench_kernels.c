/*
 * bench_kernels.c - speed of every vec_dot and activation quantizer, scalar
 * versus each instruction set this CPU runs. A measurement, not a test.
 *
 * For each type: a matrix of rows of n_cols elements is multiplied by one
 * activation row, one vec_dot per row, single-threaded:
 *   hot:  a matrix of ~256 KiB (stays in L2): kernel speed, ns per row and
 *         weight GB/s;
 *   cold: a matrix of ~256 MiB (streams from memory): GB/s of weights.
 * from_float is timed on a row of n_cols floats (ns per row).
 *
 * usage: bench_kernels [n_cols (4096), a multiple of 32] [seconds per measurement (0.2)]
 * [cold: 0 to skip the streaming measurement (1)]
 *
 * bench_kernels matrix [ROWSxCOLS,... (896x4864,4864x896)] [types (q4_0,q4_K,iq4_nl,iq4_xs)]
 * [repetitions (3)]: each ISA table's gemm (the path kern_matmul takes per
 * thread) on one weight matrix against 1 token and against 128 tokens,
 * single-threaded, weights warm in cache (one copy); the best of the
 * repetitions, each at least 0.3 s of back-to-back products.
 */
#include "bench.h"
#include "kernels/isa.h"
#include "kernels/kern_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name;
    bool (*usable)(void);
    void (*install)(kern_fns *table);
} isa_row;

static const isa_row k_isas[] = {{"scalar", NULL, NULL}, KERN_ISA_ROWS};
#define N_ISAS ((int)(sizeof k_isas / sizeof k_isas[0]))

static volatile float g_sink;

/* Seconds per pass over n_rows rows (best of several passes). */
static double time_rows(kern_vec_dot_fn fn, int64_t n_cols, const uint8_t *w, size_t row_bytes,
                        int64_t n_rows, const void *x, double budget_s) {
    double best = 1e30, spent = 0.0;
    int passes = 0;
    while (passes < 3 || (spent < budget_s && passes < 100000)) {
        float acc = 0.0f;
        const double t0 = bench_now_s();
        for (int64_t r = 0; r < n_rows; r++) {
            float s;
            fn(n_cols, &s, w + (size_t)r * row_bytes, x);
            acc += s;
        }
        const double dt = bench_now_s() - t0;
        g_sink = acc;
        if (dt < best) best = dt;
        spent += dt;
        passes++;
    }
    return best;
}

static double time_quant(kern_from_float_fn fn, const float *x, void *y, int64_t n,
                         double budget_s) {
    double best = 1e30, spent = 0.0;
    int passes = 0;
    while (passes < 3 || (spent < budget_s && passes < 1000000)) {
        const double t0 = bench_now_s();
        for (int k = 0; k < 16; k++) fn(x, y, n);
        const double dt = (bench_now_s() - t0) / 16;
        if (dt < best) best = dt;
        spent += dt * 16;
        passes++;
    }
    return best;
}

/* Best seconds per product of gemm over `reps` repetitions. */
static double time_gemm(kern_gemm_fn gemm, int64_t n_cols, const uint8_t *w, size_t rb,
                        int64_t n_rows, const uint8_t *x, size_t xb, int64_t nt, float *y,
                        int reps) {
    double best = 1e30;
    for (int k = 0; k < reps; k++) {
        int iters = 0;
        const double t0 = bench_now_s();
        double dt;
        do {
            gemm(n_cols, w, rb, n_rows, x, xb, nt, y, n_rows);
            iters++;
        } while ((dt = bench_now_s() - t0) < 0.3);
        if (dt / iters < best) best = dt / iters;
    }
    g_sink = y[0];
    return best;
}

static int bench_matrix(int argc, char **argv, kern_fns (*tables)[KERN_ISA_NTYPES],
                        const bool *usable) {
    char shapes[256], names[256];
    snprintf(shapes, sizeof shapes, "%s", argc > 2 ? argv[2] : "896x4864,4864x896");
    snprintf(names, sizeof names, "%s", argc > 3 ? argv[3] : "q4_0,q4_K,iq4_nl,iq4_xs");
    const int reps = argc > 4 ? atoi(argv[4]) : 3;
    enum { NT = 128 };
    printf("gemm per ISA table, 1 thread, weights in cache, best of %d repetitions\n", reps);
    printf("%-11s %-7s %-12s %12s %12s %14s\n", "matrix", "type", "isa", "1 tok us", "128 tok us",
           "128: ns/tok-row");
    char *save1 = NULL;
    for (char *sh = strtok_r(shapes, ",", &save1); sh; sh = strtok_r(NULL, ",", &save1)) {
        long long nr = 0, nc = 0;
        if (sscanf(sh, "%lldx%lld", &nr, &nc) != 2 || nr <= 0 || nc <= 0) return 2;
        char list[256];
        snprintf(list, sizeof list, "%s", names);
        char *save2 = NULL;
        for (char *nm = strtok_r(list, ",", &save2); nm; nm = strtok_r(NULL, ",", &save2)) {
            kern_type t = KERN_TYPE_COUNT;
            for (uint32_t i = 0; i < KERN_ISA_NTYPES; i++)
                if (kern_type_get(i) && !strcmp(kern_type_get(i)->name, nm)) t = (kern_type)i;
            const size_t rb = t < KERN_TYPE_COUNT ? kern_row_bytes(t, nc) : 0;
            if (rb == 0) {
                printf("%-11s %-7s (no blocks of this type fit rows of %lld)\n", sh, nm, nc);
                continue;
            }
            const kern_type vt = kern_type_get((uint32_t)t)->vec_dot_type;
            const size_t xb = kern_row_bytes(vt, nc);
            uint8_t *w = malloc(rb * (size_t)nr), *x = malloc(xb * NT);
            float *f = malloc(sizeof(float) * (size_t)nc), *y = malloc(sizeof(float) * NT * nr);
            unsigned long long seed = 99;
            for (long long r = 0; r < nr; r++) {
                for (long long c = 0; c < nc; c++) {
                    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                    f[c] = (float)((double)(seed >> 11) / 9007199254740992.0 - 0.5);
                }
                kern_ref_quantize_row(t, f, w + (size_t)r * rb, nc);
            }
            for (int k = 0; k < NT; k++) {
                for (long long c = 0; c < nc; c++) f[c] = (float)((c * 31 + k * 17) % 255) - 127.f;
                tables[0][vt].from_float(f, x + (size_t)k * xb, nc);
            }
            for (int i = 1; i < N_ISAS && i < 8; i++) { /* not the scalar table: too slow */
                if (!usable[i]) continue;
                kern_gemm_fn g = tables[i][t].gemm;
                if (!g) continue; /* no gemm: kern_matmul calls vec_dot per pair */
                const double t1 = time_gemm(g, nc, w, rb, nr, x, xb, 1, y, reps);
                const double t128 = time_gemm(g, nc, w, rb, nr, x, xb, NT, y, reps);
                printf("%-11s %-7s %-12s %12.1f %12.1f %14.2f\n", sh, nm, k_isas[i].name, t1 * 1e6,
                       t128 * 1e6, t128 / (double)(NT * nr) * 1e9);
                fflush(stdout);
            }
            free(w), free(x), free(f), free(y);
        }
    }
    return 0;
}

/* tables[0]: the scalar table (what dispatch.c installs under
 * HEARTH_ISA=scalar); tables[i]: it with row i of k_isas installed, where
 * usable[i] (usable[0] is true). */
static void build_tables(kern_fns (*tables)[KERN_ISA_NTYPES], bool *usable) {
    setenv("HEARTH_ISA", "scalar", 1);
    for (int t = 0; t < KERN_ISA_NTYPES; t++) {
        const kern_fns *f = kern_get((kern_type)t);
        if (f) tables[0][t] = *f;
    }
    usable[0] = true;
    for (int i = 1; i < N_ISAS && i < 8; i++) {
        memcpy(tables[i], tables[0], sizeof tables[0]);
        usable[i] = k_isas[i].usable();
        if (usable[i]) k_isas[i].install(tables[i]);
    }
}

int main(int argc, char **argv) {
    static kern_fns tables[8][KERN_ISA_NTYPES];
    bool usable[8] = {false};
    build_tables(tables, usable);
    if (argc > 1 && !strcmp(argv[1], "matrix")) return bench_matrix(argc, argv, tables, usable);
    const kern_fns *scalar = tables[0];
    const int64_t n_cols = argc > 1 ? atoll(argv[1]) : 4096;
    const double budget = argc > 2 ? atof(argv[2]) : 0.2;
    const bool do_cold = argc > 3 ? atoi(argv[3]) != 0 : true;
    if (n_cols <= 0 || n_cols % 32 != 0) {
        fprintf(stderr, "n_cols must be a positive multiple of 32\n");
        return 2;
    }

    const kern_type types[] = {KERN_F32,  KERN_F16,    KERN_BF16,  KERN_Q8_0, KERN_Q4_0,
                               KERN_Q5_0, KERN_Q4_1,   KERN_Q5_1,  KERN_Q4_K, KERN_Q5_K,
                               KERN_Q6_K, KERN_IQ4_NL, KERN_IQ4_XS};
    float *xf = malloc((size_t)n_cols * sizeof(float));
    unsigned long long seed = 12345;
    for (int64_t i = 0; i < n_cols; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        xf[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    printf("n_cols %lld, single thread, best of passes within %.2f s\n", (long long)n_cols, budget);
    printf("%-6s %-12s %10s %10s %10s\n", "type", "isa", "ns/row hot", "GB/s hot", "GB/s cold");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const kern_type t = types[ti];
        const kern_type_info *info = kern_type_get((uint32_t)t);
        const size_t rb = kern_row_bytes(t, n_cols);
        if (rb == 0) continue; /* n_cols is no multiple of the block size */
        const int64_t hot_rows = (int64_t)(256 * 1024 / rb) + 1;
        const int64_t cold_rows = (int64_t)(256ull * 1024 * 1024 / rb) + 1;
        uint8_t *w = malloc((size_t)cold_rows * rb);
        /* realistic weights: quantize a random row, repeat it with varied bytes */
        float *wf = malloc((size_t)n_cols * sizeof(float));
        for (int64_t i = 0; i < n_cols; i++) wf[i] = xf[(i * 7 + 3) % n_cols] * 0.5f;
        kern_ref_quantize_row(t, wf, w, n_cols);
        for (int64_t r = 1; r < cold_rows; r++) memcpy(w + (size_t)r * rb, w, rb);
        void *x = malloc(kern_row_bytes(info->vec_dot_type, n_cols));
        scalar[info->vec_dot_type].from_float(xf, x, n_cols);
        for (int i = 0; i < N_ISAS && i < 8; i++) {
            if (!usable[i] || (i > 0 && tables[i][t].vec_dot == scalar[t].vec_dot)) continue;
            const kern_vec_dot_fn fn = tables[i][t].vec_dot;
            const double hot = time_rows(fn, n_cols, w, rb, hot_rows, x, budget);
            const double cold =
                do_cold ? time_rows(fn, n_cols, w, rb, cold_rows, x, i == 0 ? 0 : budget) : 1e30;
            printf("%-6s %-12s %10.1f %10.2f %10.2f\n", info->name, k_isas[i].name,
                   hot / (double)hot_rows * 1e9, (double)hot_rows * (double)rb / hot / 1e9,
                   (double)cold_rows * (double)rb / cold / 1e9);
            fflush(stdout);
        }
        free(x);
        free(wf);
        free(w);
    }
    printf("\n%-6s %-12s %10s\n", "act", "isa", "ns/row");
    const kern_type acts[] = {KERN_Q8_0, KERN_Q8_1, KERN_Q8_K, KERN_F16, KERN_BF16};
    for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
        const kern_type t = acts[ai];
        if (kern_row_bytes(t, n_cols) == 0) continue;
        void *y = malloc(kern_row_bytes(t, n_cols));
        for (int i = 0; i < N_ISAS && i < 8; i++) {
            if (!usable[i] || (i > 0 && tables[i][t].from_float == scalar[t].from_float)) continue;
            const double dt = time_quant(tables[i][t].from_float, xf, y, n_cols, budget);
            printf("%-6s %-12s %10.1f\n", kern_type_get((uint32_t)t)->name, k_isas[i].name,
                   dt * 1e9);
        }
        free(y);
    }
    free(xf);
    return 0;
}
