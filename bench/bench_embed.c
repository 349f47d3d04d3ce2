/*
 * bench_embed.c - texts per second embedded one at a time (hearth_embed per
 * text) and batched (hearth_embed_batch: whole texts share forward passes):
 * `bench_embed [MODEL|-] [texts 256] [tokens per text 16] [reps 5]
 * [threads 2] [n_batch 512]`. Without a model (or "-") it writes a random
 * llama (Q8_0, 512 wide, 4 layers; synth_write) to /tmp and uses that. The
 * token ids are random; the batched vectors are compared with the
 * one-at-a-time ones (printed: bit-identical or the largest difference).
 */
#include "bench.h"
#include "hearth.h"
#include "model/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void print(const char *what, double *t, int reps, int n_texts, int n_tok) {
    bench_sort(t, reps);
    const double med = t[reps / 2];
    printf("%-14s median %8.1f ms  min %8.1f  max %8.1f  %9.1f texts/s  %9.0f tokens/s\n", what,
           med * 1e3, t[0] * 1e3, t[reps - 1] * 1e3, n_texts / med, (double)n_texts * n_tok / med);
}

int main(int argc, char **argv) {
    const char *model_path = argc > 1 && strcmp(argv[1], "-") ? argv[1] : NULL;
    const int n_texts = argc > 2 ? atoi(argv[2]) : 256, n_tok = argc > 3 ? atoi(argv[3]) : 16;
    const int reps = argc > 4 ? atoi(argv[4]) : 5, n_threads = argc > 5 ? atoi(argv[5]) : 2;
    const int n_batch = argc > 6 ? atoi(argv[6]) : 512;
    if (n_texts < 1 || n_tok < 1 || reps < 1 || reps > 100 || n_threads < 1 || n_batch < 1) {
        fprintf(stderr, "usage: bench_embed [MODEL|-] [texts] [tokens per text] [reps 1..100] "
                        "[threads] [n_batch]\n");
        return 2;
    }
    char synth_path[64] = "";
    if (!model_path) {
        snprintf(synth_path, sizeof synth_path, "/tmp/hearth-bench-embed-%d.gguf", (int)getpid());
        synth_params p = synth_default_params();
        p.type = KERN_Q8_0;
        p.n_embd = 512;
        p.n_layer = 4;
        p.n_head = 8;
        p.n_head_kv = 4;
        p.n_ff = 1536;
        p.n_ctx = 2048;
        if (synth_write(synth_path, &p)) {
            fprintf(stderr, "bench_embed: %s\n", hearth_last_error());
            return 1;
        }
        model_path = synth_path;
    }
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = n_threads;
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_tok > 2048 ? n_tok : 2048;
    sp.n_batch = n_batch;
    if (hearth_model_load(model_path, &mp, &m) || hearth_session_new(m, &sp, &s)) {
        fprintf(stderr, "bench_embed: %s\n", hearth_last_error());
        return 1;
    }
    const int d = hearth_model_n_embd(m), nv = hearth_model_n_vocab(m);
    int32_t *ids = malloc((size_t)n_texts * (size_t)n_tok * sizeof *ids);
    int *lens = malloc((size_t)n_texts * sizeof *lens);
    float *one = malloc((size_t)n_texts * (size_t)d * sizeof *one);
    float *batch = malloc((size_t)n_texts * (size_t)d * sizeof *batch);
    if (!ids || !lens || !one || !batch) return 1;
    unsigned long long r = 12345;
    for (int i = 0; i < n_texts * n_tok; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)(3 + (r >> 33) % (unsigned long long)(nv - 3));
    }
    for (int i = 0; i < n_texts; i++) lens[i] = n_tok;
    printf("model %s: n_embd %d, %d texts of %d tokens, %d threads, n_batch %d\n", model_path, d,
           n_texts, n_tok, n_threads, n_batch);
    double t_one[100], t_batch[100];
    for (int rep = -1; rep < reps; rep++) { /* rep -1: warm-up */
        double t0 = bench_now_s();
        for (int i = 0; i < n_texts; i++)
            if (hearth_embed(s, ids + (size_t)i * n_tok, n_tok, HEARTH_POOL_MEAN, true,
                             one + (size_t)i * d))
                return 1;
        const double t1 = bench_now_s();
        if (hearth_embed_batch(s, ids, lens, n_texts, HEARTH_POOL_MEAN, true, batch)) return 1;
        const double t2 = bench_now_s();
        if (rep >= 0) {
            t_one[rep] = t1 - t0;
            t_batch[rep] = t2 - t1;
        }
    }
    print("one at a time", t_one, reps, n_texts, n_tok);
    print("batched", t_batch, reps, n_texts, n_tok);
    double worst = 0;
    for (size_t i = 0; i < (size_t)n_texts * (size_t)d; i++) {
        const double diff = fabs((double)one[i] - (double)batch[i]);
        if (!(diff <= worst)) worst = diff;
    }
    if (!memcmp(one, batch, (size_t)n_texts * (size_t)d * sizeof *one))
        printf("vectors: batched = one at a time, bit for bit\n");
    else
        printf("vectors: largest difference %g\n", worst);
    printf("speed-up: %.2fx\n", t_one[reps / 2] / t_batch[reps / 2]);
    free(ids);
    free(lens);
    free(one);
    free(batch);
    hearth_session_free(s);
    hearth_model_free(m);
    if (synth_path[0]) unlink(synth_path);
    return 0;
}
