/*
 * cmd_bench.c - `hearth bench`: prompt-processing and generation speed, with
 * llama-bench's tests, defaults and output fields so the two can be compared
 * side by side:
 *  - ppN: N random token ids decoded as one batch into an empty context;
 *  - tgN: N tokens decoded one at a time after an empty context;
 * each for every model and thread count (threads are a model parameter, so
 * the model is loaded once per count), one warm-up run (pp: the whole test,
 * tg: one token, as llama-bench does) and then -r timed repetitions; tokens/s
 * are the mean and sample standard deviation over the repetitions.
 * --latency adds time to first token for a short prompt and the percentiles
 * of the per-token latency of generation.
 */
#include "cli.h"
#include "model/gguf.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char bench_usage[] =
    "usage: hearth bench -m FILE [-m FILE ...] [options]\n"
    "  -p N[,N...]       prompt sizes, one batch each (default 512; 0: none)\n"
    "  -n N[,N...]       generation lengths, one token at a time (default 128; 0: none)\n"
    "  -t N[,N...]       thread counts (default: physical cores)\n"
    "  -d N[,N...]       depths: each test runs after N tokens already in the context\n"
    "                    (llama-bench's -d/--n-depth; default 0), evaluated untimed\n"
    "  -r N              repetitions of each test (default 5), after one warm-up run\n"
    "  -o md|jsonl       a markdown table (default) or one JSON object per test with\n"
    "                    llama-bench's field names (model_filename, n_prompt, n_gen, n_threads,\n"
    "                    avg_ts, stddev_ts, samples_ts, avg_ns, ...)\n"
    "  --latency         also: time to first token for a prompt of --latency-prompt tokens\n"
    "                    (default 32) and p50/p90/p99 of the per-token generation latency\n"
    "                    (over the largest -n, or 64 tokens)\n"
    "  --kv-type f16|f32|q8_0  KV cache type (default f16, llama-bench's default); also\n"
    "                    llama-bench's -ctk/-ctv, one type (K and V must agree)\n"
    "  --no-warmup       skip the warm-up runs\n"
    "  --no-repack       keep the weights as the file stores them (default: packed for\n"
    "                    this CPU's kernels where they have a layout; HEARTH_NO_REPACK=1)\n"
    "  --swa-full        sliding-window layers keep every position (llama.cpp's --swa-full)\n"
    "  --seed S          seed of the random token ids (default 1)\n" CLI_MODEL_USAGE
    "  Benchmarks are measurements, not tests: run them on a quiet machine and compare\n"
    "  engines side by side in the same time window.\n";

enum { BENCH_MAX_LIST = 16, BENCH_MAX_REPS = 1000, BENCH_MAX_TOKENS = 1 << 16 };

typedef struct bench_opts {
    const char *models[BENCH_MAX_LIST];
    int n_models;
    int p[BENCH_MAX_LIST], n_p;
    int n[BENCH_MAX_LIST], n_n;
    int t[BENCH_MAX_LIST], n_t;
    int d[BENCH_MAX_LIST], n_d; /* depths: tokens in the context before each test */
    int reps, lat_prompt;
    bool jsonl, latency, warmup, no_repack, swa_full;
    hearth_kv_type kv;
    unsigned kv_given; /* cli_kv_type_opt's record */
    uint64_t seed;
    cli_model_opts lora; /* applied to every model */
} bench_opts;

/* What llama-bench reports about a model file. */
typedef struct bench_model {
    const char *path;
    char name[128]; /* file name without directory and .gguf */
    char desc[160]; /* "llama 135M Q4_K_M" (llama-bench's model_type) */
    uint64_t size_bytes, n_params;
} bench_model;

/* One test's samples. */
typedef struct bench_result {
    int n_prompt, n_gen, n_depth, n_threads;
    int64_t *ns; /* [reps] */
    int reps;
} bench_result;

/* ---- arguments ---- */

/* A comma-separated list of one or more whole numbers ("" is no list). */
static int parse_list(const char *opt, const char *s, int *out, int *n_out) {
    int n = 0;
    if (!*s) return fprintf(stderr, "hearth bench: empty list for %s\n", opt), 2;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > BENCH_MAX_TOKENS || n == BENCH_MAX_LIST ||
            (*end && *end != ',')) {
            fprintf(stderr, "hearth bench: bad list '%s' for %s\n", s, opt);
            return 2;
        }
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    *n_out = n;
    return 0;
}

static int parse_value(bench_opts *o, const char *a, const char *v) {
    const int kv = cli_kv_type_opt("bench", a, v, &o->kv, &o->kv_given);
    if (kv) return kv < 0 ? 2 : 0;
    if (!strcmp(a, "-m")) {
        if (o->n_models == BENCH_MAX_LIST) return fprintf(stderr, "hearth bench: too many -m\n"), 2;
        o->models[o->n_models++] = v;
    } else if (!strcmp(a, "-p"))
        return parse_list(a, v, o->p, &o->n_p);
    else if (!strcmp(a, "-n"))
        return parse_list(a, v, o->n, &o->n_n);
    else if (!strcmp(a, "-t"))
        return parse_list(a, v, o->t, &o->n_t);
    else if (!strcmp(a, "-d") || !strcmp(a, "--n-depth"))
        return parse_list(a, v, o->d, &o->n_d);
    else if (!strcmp(a, "-r")) {
        if (!cli_parse_int(v, 1, BENCH_MAX_REPS, &o->reps))
            return fprintf(stderr, "hearth bench: -r must be 1..%d\n", BENCH_MAX_REPS), 2;
    } else if (!strcmp(a, "--latency-prompt")) {
        if (!cli_parse_int(v, 1, BENCH_MAX_TOKENS, &o->lat_prompt))
            return fprintf(stderr, "hearth bench: --latency-prompt must be 1..%d\n",
                           BENCH_MAX_TOKENS),
                   2;
    } else if (!strcmp(a, "--seed")) {
        if (!cli_parse_seed(v, &o->seed))
            return fprintf(stderr, "hearth bench: --seed wants a non-negative integer, not '%s'\n",
                           v),
                   2;
    } else if (!strcmp(a, "-o")) {
        if (strcmp(v, "md") && strcmp(v, "jsonl"))
            return fprintf(stderr, "hearth bench: -o takes md or jsonl\n"), 2;
        o->jsonl = !strcmp(v, "jsonl");
    } else {
        fprintf(stderr, "hearth bench: unknown option '%s'\n%s", a, bench_usage);
        return 2;
    }
    return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_bench(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.p = {512},
                      .n_p = 1,
                      .n = {128},
                      .n_n = 1,
                      .t = {0},
                      .n_t = 1,
                      .d = {0},
                      .n_d = 1,
                      .reps = 5,
                      .lat_prompt = 32,
                      .warmup = true,
                      .kv = HEARTH_KV_F16,
                      .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(bench_usage, stdout), 0;
        const int lr = cli_model_opt("bench", argc, argv, &i, &o->lora);
        if (lr < 0) return 2;
        if (lr) continue;
        if (!strcmp(a, "--latency"))
            o->latency = true;
        else if (!strcmp(a, "--no-warmup"))
            o->warmup = false;
        else if (!strcmp(a, "--no-repack"))
            o->no_repack = true;
        else if (!strcmp(a, "--swa-full"))
            o->swa_full = true;
        else if (i + 1 >= argc)
            return fprintf(stderr, "hearth bench: '%s' needs a value\n", a), 2;
        else if (parse_value(o, a, argv[++i]))
            return 2;
    }
    if (!o->n_models) return fputs(bench_usage, stderr), 2;
    for (int i = 0; i < o->n_t; i++)
        if (o->t[i] == 0) o->t[i] = hr_cpu_cores();
    return -1;
}

/* ---- model description ---- */

static hearth_err describe(const char *path, bench_model *bm) {
    gguf_file *f = NULL;
    hearth_err err = gguf_open(path, &f);
    if (err) return err;
    *bm = (bench_model){.path = path, .size_bytes = gguf_file_size(f)};
    for (int64_t i = 0; i < gguf_n_tensors(f); i++)
        bm->n_params += gguf_tensor_at(f, i)->n_elements;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".gguf")) len -= 5;
    snprintf(bm->name, sizeof bm->name, "%.*s", (int)len, base);
    gguf_str arch = {"?", 1};
    gguf_get_str(f, "general.architecture", &arch);
    const char *ft_name = gguf_quant_label(f);
    const double np = (double)bm->n_params;
    char size[32];
    if (np >= 1e9)
        snprintf(size, sizeof size, "%.1fB", np / 1e9);
    else
        snprintf(size, sizeof size, "%.0fM", np / 1e6);
    snprintf(bm->desc, sizeof bm->desc, "%.*s %s %s", (int)(arch.len < 64 ? arch.len : 64),
             arch.ptr, size, ft_name);
    gguf_close(f);
    return HEARTH_OK;
}

/* ---- timing ---- */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int32_t rand_id(unsigned long long *s, int n_vocab) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (int32_t)(*s % (unsigned long long)n_vocab);
}

typedef struct bench_ctx {
    hearth_model *model;
    hearth_session *session;
    int32_t *ids; /* [n_batch] */
    int n_vocab, n_batch;
    unsigned long long rng;
} bench_ctx;

/* n random ids; the text's first token is BOS where the model has one, as
 * in llama-bench. */
static void fill_ids(bench_ctx *b, int n) {
    for (int i = 0; i < n; i++) b->ids[i] = rand_id(&b->rng, b->n_vocab);
    const int32_t bos = hearth_token_bos(b->model);
    if (n > 0 && hearth_session_pos(b->session) == 0 && bos >= 0 && bos < b->n_vocab)
        b->ids[0] = bos;
}

/* The context holding `depth` tokens before a test (llama-bench's -d): what
 * an earlier repetition left when the session can go back to it (a
 * sliding-window cache may not: hearth_session_keepable), else random
 * ones evaluated again, untimed, n_batch at a time. */
static hearth_err at_depth(bench_ctx *b, int depth) {
    hearth_session *s = b->session;
    if (hearth_session_pos(s) >= depth && hearth_session_keepable(s, depth) == depth)
        return hearth_session_truncate(s, depth);
    hearth_err err = hearth_session_truncate(s, 0);
    while (!err && hearth_session_pos(s) < depth) {
        const int left = depth - hearth_session_pos(s), k = left < b->n_batch ? left : b->n_batch;
        fill_ids(b, k);
        err = hearth_decode(s, b->ids, k, NULL, false);
    }
    return err;
}

/* Decodes a prompt of n tokens as one batch after `depth` tokens. */
static hearth_err run_pp(bench_ctx *b, int n, int depth, int64_t *ns) {
    hearth_err err = at_depth(b, depth);
    fill_ids(b, n);
    const int64_t t0 = now_ns();
    if (!err) err = hearth_decode(b->session, b->ids, n, NULL, false);
    *ns = now_ns() - t0;
    return err;
}

/* Generates n tokens one at a time after `depth` tokens; lat (may be NULL)
 * receives each token's time. */
static hearth_err run_tg(bench_ctx *b, int n, int depth, int64_t *ns, int64_t *lat) {
    hearth_err err = at_depth(b, depth);
    fill_ids(b, 1);
    int32_t tok = b->ids[0];
    const int64_t t0 = now_ns();
    for (int i = 0; i < n && !err; i++) {
        const int64_t ti = lat ? now_ns() : 0;
        err = hearth_decode(b->session, &tok, 1, NULL, false);
        if (lat) lat[i] = now_ns() - ti;
        tok = rand_id(&b->rng, b->n_vocab);
    }
    *ns = now_ns() - t0;
    return err;
}

static hearth_err run_test(bench_ctx *b, const bench_opts *o, bench_result *r) {
    int64_t ns;
    hearth_err err = HEARTH_OK;
    const int d = r->n_depth;
    if (o->warmup) err = r->n_prompt ? run_pp(b, r->n_prompt, d, &ns) : run_tg(b, 1, d, &ns, NULL);
    for (int i = 0; i < r->reps && !err; i++)
        err = r->n_prompt ? run_pp(b, r->n_prompt, d, &r->ns[i])
                          : run_tg(b, r->n_gen, d, &r->ns[i], NULL);
    return err;
}

/* ---- statistics and output ---- */

typedef struct stats {
    double avg, sd;
} stats;

static stats stats_of(const double *v, int n) {
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    const double avg = sum / n;
    for (int i = 0; i < n; i++) sq += (v[i] - avg) * (v[i] - avg);
    return (stats){avg, n > 1 ? sqrt(sq / (n - 1)) : 0.0};
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_common_json(const bench_model *bm, const bench_opts *o, int n_threads,
                              int n_batch) {
    printf("{\"model_filename\": ");
    json_str(bm->path);
    printf(", \"model_type\": ");
    json_str(bm->desc);
    const char *kv = cli_kv_type_name(o->kv);
    printf(
        ", \"model_size\": %llu, \"model_n_params\": %llu, \"backends\": \"CPU\", \"isa\": \"%s\""
        ", \"n_batch\": %d, \"n_ubatch\": %d, \"n_threads\": %d, \"type_k\": \"%s\", "
        "\"type_v\": \"%s\", \"flash_attn\": false, \"repack\": %s",
        (unsigned long long)bm->size_bytes, (unsigned long long)bm->n_params, kern_isa_name(),
        n_batch, n_batch, n_threads, kv, kv, o->no_repack ? "false" : "true");
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    printf(", \"test_time\": \"%s\"", when);
}

static void print_result(const bench_model *bm, const bench_opts *o, const bench_result *r,
                         int n_batch) {
    const int n_tok = r->n_prompt ? r->n_prompt : r->n_gen;
    double ts[BENCH_MAX_REPS], ns[BENCH_MAX_REPS];
    for (int i = 0; i < r->reps; i++) {
        ns[i] = (double)r->ns[i];
        ts[i] = 1e9 * n_tok / (ns[i] > 0 ? ns[i] : 1);
    }
    const stats s_ts = stats_of(ts, r->reps), s_ns = stats_of(ns, r->reps);
    char test[48];
    snprintf(test, sizeof test, "%s%d", r->n_prompt ? "pp" : "tg", n_tok);
    if (r->n_depth && !o->jsonl) /* llama-bench's name for a test at a depth */
        snprintf(test + strlen(test), sizeof test - strlen(test), " @ d%d", r->n_depth);
    if (!o->jsonl) {
        const double np = (double)bm->n_params;
        printf("| %s | %.2f | %.2f %s | %s | %d | %s | %.2f ± %.2f |\n", bm->name,
               (double)bm->size_bytes / 1048576.0, np >= 1e9 ? np / 1e9 : np / 1e6,
               np >= 1e9 ? "B" : "M", kern_isa_name(), r->n_threads, test, s_ts.avg, s_ts.sd);
    } else {
        print_common_json(bm, o, r->n_threads, n_batch);
        printf(", \"test\": \"%s\", \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, "
               "\"avg_ns\": %.0f, \"stddev_ns\": %.0f, \"avg_ts\": %.6f, \"stddev_ts\": %.6f, "
               "\"samples_ns\": [",
               test, r->n_prompt, r->n_gen, r->n_depth, s_ns.avg, s_ns.sd, s_ts.avg, s_ts.sd);
        for (int i = 0; i < r->reps; i++) printf("%s%lld", i ? ", " : "", (long long)r->ns[i]);
        printf("], \"samples_ts\": [");
        for (int i = 0; i < r->reps; i++) printf("%s%.6f", i ? ", " : "", ts[i]);
        printf("]}\n");
    }
    fflush(stdout);
}

/* ---- latency ---- */

typedef struct lat_result {
    const bench_model *bm;
    int n_threads, n_prompt, n_gen, reps;
    int64_t ttft_ns[BENCH_MAX_REPS];
    double ttft_avg_ms, ttft_sd_ms, p50_ms, p90_ms, p99_ms;
} lat_result;

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static double pct_ms(const int64_t *v, size_t n, double pct) {
    size_t rank = (size_t)ceil(pct / 100.0 * (double)n);
    return (double)v[rank > 0 ? rank - 1 : 0] / 1e6;
}

/* Per repetition: a prompt of n_prompt tokens as one batch into an empty
 * context (its time is the time to the first token's logits), then n_gen
 * tokens one at a time, each timed. */
static hearth_err run_latency(bench_ctx *b, const bench_opts *o, lat_result *lr) {
    const size_t n_lat = (size_t)lr->reps * (size_t)lr->n_gen;
    int64_t *lat = malloc((n_lat ? n_lat : 1) * sizeof *lat), ns;
    if (!lat) return hr_fail(HEARTH_ERR_NOMEM, "bench: out of memory");
    hearth_err err = o->warmup ? run_pp(b, lr->n_prompt, 0, &ns) : HEARTH_OK;
    for (int r = 0; r < lr->reps && !err; r++) {
        err = run_pp(b, lr->n_prompt, 0, &lr->ttft_ns[r]);
        int32_t tok = rand_id(&b->rng, b->n_vocab);
        for (int i = 0; i < lr->n_gen && !err; i++) {
            const int64_t t0 = now_ns();
            err = hearth_decode(b->session, &tok, 1, NULL, false);
            lat[(size_t)r * (size_t)lr->n_gen + (size_t)i] = now_ns() - t0;
            tok = rand_id(&b->rng, b->n_vocab);
        }
    }
    if (!err) {
        double ms[BENCH_MAX_REPS];
        for (int r = 0; r < lr->reps; r++) ms[r] = (double)lr->ttft_ns[r] / 1e6;
        const stats s = stats_of(ms, lr->reps);
        lr->ttft_avg_ms = s.avg;
        lr->ttft_sd_ms = s.sd;
        qsort(lat, n_lat, sizeof *lat, cmp_i64);
        lr->p50_ms = n_lat ? pct_ms(lat, n_lat, 50) : 0;
        lr->p90_ms = n_lat ? pct_ms(lat, n_lat, 90) : 0;
        lr->p99_ms = n_lat ? pct_ms(lat, n_lat, 99) : 0;
    }
    free(lat);
    return err;
}

static void print_latency_json(const lat_result *lr, const bench_opts *o, int n_batch) {
    print_common_json(lr->bm, o, lr->n_threads, n_batch);
    printf(", \"test\": \"latency\", \"n_prompt\": %d, \"n_gen\": %d, \"ttft_avg_ms\": %.4f, "
           "\"ttft_stddev_ms\": %.4f, \"samples_ttft_ns\": [",
           lr->n_prompt, lr->n_gen, lr->ttft_avg_ms, lr->ttft_sd_ms);
    for (int i = 0; i < lr->reps; i++) printf("%s%lld", i ? ", " : "", (long long)lr->ttft_ns[i]);
    printf("], \"tg_p50_ms\": %.4f, \"tg_p90_ms\": %.4f, \"tg_p99_ms\": %.4f}\n", lr->p50_ms,
           lr->p90_ms, lr->p99_ms);
    fflush(stdout);
}

static void print_latency_md(const lat_result *lr, int n) {
    if (n == 0) return;
    printf("\n| model | threads | time to first token (pp%d) ms | tg%d latency p50 ms | p90 ms | "
           "p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
           lr[0].n_prompt, lr[0].n_gen);
    for (int i = 0; i < n; i++)
        printf("| %s | %d | %.2f ± %.2f | %.2f | %.2f | %.2f |\n", lr[i].bm->name, lr[i].n_threads,
               lr[i].ttft_avg_ms, lr[i].ttft_sd_ms, lr[i].p50_ms, lr[i].p90_ms, lr[i].p99_ms);
}

/* ---- driver ---- */

typedef struct bench_plan {
    int n_batch, n_ctx, lat_gen;
} bench_plan;

static int max_of(const int *v, int n) {
    int m = 0;
    for (int i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static bench_plan plan_of(const bench_opts *o) {
    const int max_p = max_of(o->p, o->n_p), max_n = max_of(o->n, o->n_n);
    bench_plan bp = {.lat_gen = max_n > 0 ? max_n : 64};
    const int lat_p = o->latency ? o->lat_prompt : 0;
    bp.n_batch = max_p > lat_p ? max_p : lat_p;
    /* the depth is evaluated n_batch at a time: at least 512 (llama-bench's ubatch) */
    const int max_d = max_of(o->d, o->n_d), d_batch = max_d < 512 ? max_d : 512;
    if (bp.n_batch < d_batch) bp.n_batch = d_batch;
    if (bp.n_batch < 1) bp.n_batch = 1;
    bp.n_ctx = (max_p > max_n ? max_p : max_n) + max_d;
    if (o->latency && lat_p + bp.lat_gen > bp.n_ctx) bp.n_ctx = lat_p + bp.lat_gen;
    if (bp.n_ctx < bp.n_batch) bp.n_ctx = bp.n_batch;
    return bp;
}

/* Every test of one model at one thread count; lr (may be NULL) receives the
 * latency result. */
static int bench_one(const bench_model *bm, const bench_opts *o, const bench_plan *bp,
                     int n_threads, lat_result *lr) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = n_threads;
    mp.no_repack = o->no_repack;
    cli_model_params(&o->lora, &mp);
    bench_ctx b = {.rng = o->seed ? o->seed : 1};
    if (hearth_model_load(bm->path, &mp, &b.model)) return cli_fail("bench", bm->path);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = bp->n_ctx;
    sp.n_batch = bp->n_batch;
    sp.kv_type = o->kv;
    sp.swa_full = o->swa_full;
    int64_t ns[BENCH_MAX_REPS];
    int rc = 0;
    b.n_vocab = hearth_model_n_vocab(b.model);
    b.n_batch = bp->n_batch;
    b.ids = malloc((size_t)bp->n_batch * sizeof *b.ids);
    if (!b.ids || hearth_session_new(b.model, &sp, &b.session)) rc = cli_fail("bench", bm->path);
    const int n_tests = (o->n_p + o->n_n) * o->n_d;
    for (int k = 0; !rc && k < n_tests; k++) {
        const int test = k / o->n_d;
        bench_result r = {
            .n_threads = n_threads, .n_depth = o->d[k % o->n_d], .ns = ns, .reps = o->reps};
        if (test < o->n_p)
            r.n_prompt = o->p[test];
        else
            r.n_gen = o->n[test - o->n_p];
        if (!r.n_prompt && !r.n_gen) continue;
        if (run_test(&b, o, &r))
            rc = cli_fail("bench", bm->path);
        else
            print_result(bm, o, &r, bp->n_batch);
    }
    if (!rc && lr) {
        *lr = (lat_result){.bm = bm,
                           .n_threads = n_threads,
                           .n_prompt = o->lat_prompt,
                           .n_gen = bp->lat_gen,
                           .reps = o->reps};
        if (run_latency(&b, o, lr))
            rc = cli_fail("bench", bm->path);
        else if (o->jsonl)
            print_latency_json(lr, o, bp->n_batch);
    }
    free(b.ids);
    hearth_session_free(b.session);
    hearth_model_free(b.model);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse_bench(argc, argv, &o);
    if (rc >= 0) return rc;
    rc = 0;
    bench_model models[BENCH_MAX_LIST];
    for (int i = 0; i < o.n_models; i++)
        if (describe(o.models[i], &models[i])) return cli_fail("bench", o.models[i]);
    const bench_plan bp = plan_of(&o);
    FILE *hdr = o.jsonl ? stderr : stdout;
    fprintf(hdr, "hearth bench: isa %s, kv cache %s, n_batch %d, n_ctx %d, %d repetitions%s%s",
            kern_isa_name(), cli_kv_type_name(o.kv), bp.n_batch, bp.n_ctx, o.reps,
            o.warmup ? " after 1 warm-up" : ", no warm-up", o.no_repack ? ", no repack" : "");
    for (int i = 0; i < o.lora.n; i++)
        fprintf(hdr, ", lora %s (scale %g)", o.lora.items[i].path, (double)o.lora.items[i].scale);
    fputc('\n', hdr);
    if (!o.jsonl)
        printf("\n| model | size MiB | params | isa | threads | test | t/s |\n"
               "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    fflush(hdr);
    lat_result *lat = o.latency ? calloc((size_t)o.n_models * (size_t)o.n_t, sizeof *lat) : NULL;
    if (o.latency && !lat) return fprintf(stderr, "hearth bench: out of memory\n"), 1;
    int n_lat = 0;
    for (int m = 0; !rc && m < o.n_models; m++)
        for (int t = 0; !rc && t < o.n_t; t++)
            rc = bench_one(&models[m], &o, &bp, o.t[t], lat ? &lat[n_lat++] : NULL);
    if (!rc && !o.jsonl) print_latency_md(lat, n_lat);
    free(lat);
    return rc;
}
