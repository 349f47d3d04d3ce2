/*
 * bench_kv.c - the KV cache types (f32, f16, q8_0) side by side:
 *
 *   bench_kv attn [hd 64] [rows 4] [depths 512,2048,4096] [reps 200]
 *     one call of the attention kernel (kern_attn_tile / _q8_0) for `rows`
 *     query rows of one kv head over `depth` keys (a generation step of one
 *     GQA group), on one thread: median and range in microseconds, and the
 *     cache bytes it reads per microsecond.
 *
 *   bench_kv gen MODEL [depths 512,2048,4096] [tokens 32] [reps 3] [threads 2]
 *     per depth: a session per type holding `depth` random tokens (their
 *     prefill timed: prompt tokens/s), then `tokens` tokens decoded one at a
 *     time after them, `reps` times (truncated back in between), the types
 *     taking turns so that a change in the machine's load spreads over all
 *     of them: generation tokens/s median and range, by the wall clock and
 *     by the process's CPU time (which a busy machine disturbs less; with
 *     one thread it is the compute alone); and the KV cache memory of one
 *     session (slot) of depth + tokens positions and of 4096.
 *
 * Measurements, not tests: the machine may be shared; compare runs taken
 * together and look at the ranges.
 */
#include "bench.h"
#include "hearth.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_LIST = 8, N_TYPES = 3 };
static const char *const type_names[N_TYPES] = {"f32", "f16", "q8_0"};
static const kern_type cache_types[N_TYPES] = {KERN_F32, KERN_F16, KERN_Q8_0};

static int parse_list(const char *s, int *out) {
    int n = 0;
    for (const char *p = s; *p && n < MAX_LIST;) {
        char *end;
        const long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > (1 << 20)) return 0;
        out[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static double cpu_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned long long g_rng = 0x9E3779B97F4A7C15ULL;
static float rnd(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_kv: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- attn ---- */

static int bench_attn(int argc, char **argv) {
    const int hd = argc > 2 ? atoi(argv[2]) : 64, nr = argc > 3 ? atoi(argv[3]) : 4;
    int depths[MAX_LIST] = {512, 2048, 4096}, n_depths = 3;
    if (argc > 4 && !(n_depths = parse_list(argv[4], depths))) return 2;
    const int reps = argc > 5 ? atoi(argv[5]) : 200;
    if (hd < 32 || hd % 32 || hd > KERN_ATTN_MAX_HD || nr < 1 || nr > KERN_ATTN_ROWS || reps < 1)
        return fprintf(stderr, "bench_kv attn: hd a multiple of 32 up to %d, rows 1..%d\n",
                       KERN_ATTN_MAX_HD, KERN_ATTN_ROWS),
               2;
    printf("attention of %d rows over one kv head, hd %d, isa %s, 1 thread, %d reps\n", nr, hd,
           kern_isa_name(), reps);
    printf("| depth | cache | KV bytes read | median us | min | max | bytes/us |\n"
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (int di = 0; di < n_depths; di++) {
        const int depth = depths[di], n_pos = (depth + KERN_KV_TILE - 1) / KERN_KV_TILE * 16;
        float *q = xmalloc((size_t)nr * hd * sizeof(float));
        float *out = xmalloc((size_t)nr * hd * sizeof(float));
        float *kx = xmalloc((size_t)hd * sizeof(float)), *vx = xmalloc((size_t)hd * sizeof(float));
        float *work = xmalloc(kern_attn_work_floats(hd, n_pos) * sizeof(float));
        for (int i = 0; i < nr * hd; i++) q[i] = rnd();
        kern_attn_row rows[KERN_ATTN_ROWS];
        for (int r = 0; r < nr; r++)
            rows[r] = (kern_attn_row){
                .q = q + (size_t)r * hd, .out = out + (size_t)r * hd, .lo = 0, .hi = depth - 1};
        for (int t = 0; t < N_TYPES; t++) {
            const size_t row = kern_kv_row_bytes(cache_types[t], hd);
            uint8_t *k = xmalloc((size_t)n_pos * row), *v = xmalloc((size_t)n_pos * row);
            for (int p = 0; p < n_pos; p++) {
                for (int d = 0; d < hd; d++) kx[d] = rnd(), vx[d] = rnd();
                kern_kv_store(cache_types[t], k, v, hd, p, kx, vx);
            }
            const kern_attn_args a = {.rows = rows,
                                      .n_rows = nr,
                                      .hd = hd,
                                      .n_pos = n_pos,
                                      .k = k,
                                      .v = v,
                                      .batch = true,
                                      .scale = 0.125f,
                                      .work = work};
            double *ts = xmalloc((size_t)reps * sizeof(double));
            for (int i = -reps / 10 - 1; i < reps; i++) { /* a few warm-up calls first */
                const double t0 = bench_now_s();
                if (cache_types[t] == KERN_Q8_0)
                    kern_attn_tile_q8_0(&a);
                else
                    kern_attn_tile(&a, cache_types[t] == KERN_F16);
                if (i >= 0) ts[i] = bench_now_s() - t0;
            }
            bench_sort(ts, reps);
            const double bytes = 2.0 * depth * (double)row;
            printf("| %d | %s | %.0f | %.2f | %.2f | %.2f | %.0f |\n", depth, type_names[t], bytes,
                   ts[reps / 2] * 1e6, ts[0] * 1e6, ts[reps - 1] * 1e6,
                   bytes / (ts[reps / 2] * 1e6));
            free(ts), free(k), free(v);
        }
        free(q), free(out), free(kx), free(vx), free(work);
    }
    return 0;
}

/* ---- gen ---- */

static hearth_session *session_of(hearth_model *m, int t, int n_ctx) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    sp.n_batch = 512;
    sp.kv_type = (hearth_kv_type)t; /* HEARTH_KV_F32, _F16, _Q8_0 in type_names' order */
    hearth_session *s = NULL;
    if (hearth_session_new(m, &sp, &s)) {
        fprintf(stderr, "bench_kv: %s\n", hearth_last_error());
        exit(1);
    }
    return s;
}

static int bench_gen(int argc, char **argv) {
    if (argc < 3) return 2;
    int depths[MAX_LIST] = {512, 2048, 4096}, n_depths = 3;
    if (argc > 3 && !(n_depths = parse_list(argv[3], depths))) return 2;
    const int n_gen = argc > 4 ? atoi(argv[4]) : 32, reps = argc > 5 ? atoi(argv[5]) : 3;
    const int n_threads = argc > 6 ? atoi(argv[6]) : 2;
    if (n_gen < 1 || reps < 1 || reps > 100 || n_threads < 1) return 2;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = n_threads;
    hearth_model *m = NULL;
    if (hearth_model_load(argv[2], &mp, &m)) {
        fprintf(stderr, "bench_kv: %s: %s\n", argv[2], hearth_last_error());
        return 1;
    }
    const int nv = hearth_model_n_vocab(m);
    printf("%s: isa %s, %d threads, %d tokens generated after each depth, %d reps\n", argv[2],
           kern_isa_name(), n_threads, n_gen, reps);
    for (int t = 0; t < N_TYPES; t++) {
        hearth_session *s = session_of(m, t, 4096);
        printf("KV cache of a 4096-position session (slot), %s: %.1f MiB\n", type_names[t],
               (double)hearth_session_memory(s).kv_bytes / 1048576.0);
        hearth_session_free(s);
    }
    printf("| depth | cache | KV MiB | prefill t/s | tg t/s median | min | max | tg t/s of CPU "
           "time (per thread) | min | max |\n"
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int di = 0; di < n_depths; di++) {
        const int depth = depths[di];
        int32_t *ids = xmalloc((size_t)(depth + n_gen) * sizeof *ids);
        for (int i = 0; i < depth + n_gen; i++)
            ids[i] = (int32_t)((rnd() + 1.0f) * 0.5f * (float)(nv - 1));
        hearth_session *s[N_TYPES];
        double pp[N_TYPES], tg[N_TYPES][100], tc[N_TYPES][100];
        for (int t = 0; t < N_TYPES; t++) {
            s[t] = session_of(m, t, depth + n_gen);
            const double t0 = bench_now_s();
            if (hearth_decode(s[t], ids, depth, NULL, false)) return 1;
            pp[t] = depth / (bench_now_s() - t0);
        }
        for (int r = 0; r < reps; r++)
            for (int t = 0; t < N_TYPES; t++) {
                if (hearth_session_truncate(s[t], depth)) return 1;
                const double t0 = bench_now_s(), c0 = cpu_now_s();
                for (int i = 0; i < n_gen; i++)
                    if (hearth_decode(s[t], &ids[depth + i], 1, NULL, false)) return 1;
                tg[t][r] = n_gen / (bench_now_s() - t0);
                tc[t][r] = n_gen / ((cpu_now_s() - c0) / n_threads);
            }
        for (int t = 0; t < N_TYPES; t++) {
            bench_sort(tg[t], reps);
            bench_sort(tc[t], reps);
            printf("| %d | %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", depth,
                   type_names[t], (double)hearth_session_memory(s[t]).kv_bytes / 1048576.0, pp[t],
                   tg[t][reps / 2], tg[t][0], tg[t][reps - 1], tc[t][reps / 2], tc[t][0],
                   tc[t][reps - 1]);
            hearth_session_free(s[t]);
        }
        fflush(stdout);
        free(ids);
    }
    hearth_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc > 1 && !strcmp(argv[1], "attn")) rc = bench_attn(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "gen")) rc = bench_gen(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: bench_kv attn [hd 64] [rows 4] [depths 512,2048,4096] [reps 200]\n"
                        "       bench_kv gen MODEL [depths 512,2048,4096] [tokens 32] [reps 3] "
                        "[threads 2]\n");
    return rc;
}
