/*
 * bench_tune.c - the speed of LoRA training (src/tune):
 * `bench_tune MODEL [len 128] [steps 5] [threads 0] [rank 8]` times one
 * training step (forward keeping activations, backward, AdamW) on random
 * sequences of `len` tokens, the first half prompt, with an adapter on
 * every matrix; and the forward alone (what validation costs). Prints the
 * set-up time (the weights' F32 transposes), the graph's memory, the median
 * and range of each, and tokens per second (every token of the sequence
 * goes through the whole graph).
 */
#include "bench.h"
#include "hearth.h"
#include "model/model.h"
#include "tune/tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void print(const char *what, double *t, int reps, int len) {
    bench_sort(t, reps);
    printf("%-22s median %8.1f ms  min %8.1f  max %8.1f  (%.1f tokens/s)\n", what,
           t[reps / 2] * 1e3, t[0] * 1e3, t[reps - 1] * 1e3, len / t[reps / 2]);
}

static int fail(const char *what) {
    fprintf(stderr, "bench_tune: %s: %s\n", what, hearth_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_tune MODEL [len 128] [steps 5] [threads 0] [rank 8]\n");
        return 2;
    }
    const int len = argc > 2 ? atoi(argv[2]) : 128, steps = argc > 3 ? atoi(argv[3]) : 5;
    const int threads = argc > 4 ? atoi(argv[4]) : 0, rank = argc > 5 ? atoi(argv[5]) : 8;
    if (len < 2 || steps < 1 || steps > 1000 || rank < 1) {
        fprintf(stderr, "bench_tune: len >= 2, steps 1..1000, rank >= 1\n");
        return 2;
    }
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = threads;
    hearth_model *m = NULL;
    if (hearth_model_load(argv[1], &mp, &m)) return fail(argv[1]);
    const tune_adapter_params ap = {
        .rank = rank, .alpha = 2.0f * (float)rank, .targets = TUNE_ALL, .seed = 1};
    tune_adapter *a = NULL;
    tune_graph *g = NULL;
    if (tune_adapter_new(m, &ap, &a)) return fail("adapter");
    double t0 = bench_now_s();
    if (tune_graph_new(m, a, len, &g)) return fail("graph");
    printf("model %s, %d tokens, rank %d on %d matrices (%zu parameters), set-up %.2f s, "
           "graph %.0f MiB\n",
           argv[1], len, rank, a->n_pairs, tune_adapter_n_params(a), bench_now_s() - t0,
           (double)tune_graph_bytes(g) / (1 << 20));
    int32_t *ids = malloc((size_t)len * sizeof *ids);
    double *step_s = malloc((size_t)steps * sizeof *step_s),
           *fwd_s = malloc((size_t)steps * sizeof *fwd_s);
    if (!ids || !step_s || !fwd_s) return 1;
    srand(1);
    const tune_adamw opt = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .clip = 1};
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < len; i++) ids[i] = rand() % hearth_model_n_vocab(m);
        double nll;
        int n_pred;
        t0 = bench_now_s();
        tune_adapter_zero_grad(a);
        if (tune_graph_step(g, ids, len, len / 2, true, &nll, &n_pred)) return fail("step");
        tune_adamw_step(a, &opt, s + 1, 1.0f / (float)n_pred);
        step_s[s] = bench_now_s() - t0;
        t0 = bench_now_s();
        if (tune_graph_step(g, ids, len, len / 2, false, &nll, &n_pred)) return fail("forward");
        fwd_s[s] = bench_now_s() - t0;
    }
    print("train step", step_s, steps, len);
    print("forward only", fwd_s, steps, len);
    free(ids);
    free(step_s);
    free(fwd_s);
    tune_graph_free(g);
    tune_adapter_free(a);
    hearth_model_free(m);
    return 0;
}
