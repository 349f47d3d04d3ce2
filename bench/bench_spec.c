/*
 * bench_spec.c - what speculative decoding costs and gains:
 * `bench_spec TARGET [DRAFT|-] [tokens 200] [reps 5] [threads 2] [position 256]`.
 *
 * 1. Verification: the time of one forward pass over 1 + k tokens (the
 *    sampled token and k proposals, with the logits of each) at the given
 *    position, against one token: what a step with k proposals costs.
 *    With acceptance rate a per proposal, a step yields
 *    (1 - a^(k+1)) / (1 - a) tokens, so the ceiling on the speed-up is that
 *    divided by the cost ratio (plus the draft's own time).
 * 2. Generation: greedy generation of `tokens` tokens (end-of-generation
 *    banned so every run has the same length) after a fixed story prompt,
 *    plain, with prompt lookup (n-gram 2 and 3), and with DRAFT, with
 *    tokens/s, proposals and acceptance. The outputs are compared with the
 *    plain run's (same or the first difference).
 */
#include "bench.h"
#include "hearth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char prompt_text[] =
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with "
    "her dog, Max. One day, Lily and Max went to the park. Lily said, \"Max, let's play with the "
    "ball!\" Max wagged his tail and ran after the ball.";

typedef struct out_ids {
    int32_t ids[4096];
    int n;
} out_ids;

static bool keep(const hearth_token_event *ev, void *user) {
    out_ids *o = user;
    if (ev->id >= 0 && o->n < 4096) o->ids[o->n++] = ev->id;
    return true;
}

static int fail(const char *what) {
    fprintf(stderr, "bench_spec: %s: %s\n", what, hearth_last_error());
    return 1;
}

static int verification(hearth_model *m, int pos, int reps, int n_threads) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = pos + 64;
    hearth_session *s = NULL;
    if (hearth_session_new(m, &sp, &s)) return fail("session");
    const int nv = hearth_model_n_vocab(m);
    int32_t *ids = malloc((size_t)(pos + 17) * sizeof *ids);
    float *logits = malloc((size_t)17 * (size_t)nv * sizeof *logits);
    if (!ids || !logits) return 1;
    srand(1);
    for (int i = 0; i < pos + 17; i++) ids[i] = 3 + rand() % (nv - 3);
    if (hearth_decode(s, ids, pos, NULL, false)) return fail("decode");
    printf("verification at position %d, %d threads (median of %d):\n", pos, n_threads, reps);
    printf("  %-12s %10s %8s\n", "tokens", "ms", "x one");
    const int ks[] = {0, 1, 2, 3, 4, 8, 16};
    double one = 0;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        double t[100];
        for (int r = 0; r < reps; r++) {
            const double t0 = bench_now_s();
            if (hearth_decode(s, ids + pos, 1 + ks[ki], logits, true)) return fail("decode");
            t[r] = bench_now_s() - t0;
            hearth_session_truncate(s, pos);
        }
        bench_sort(t, reps);
        if (ki == 0) one = t[reps / 2];
        char label[32];
        snprintf(label, sizeof label, "1 + %d", ks[ki]);
        printf("  %-12s %10.2f %8.2f\n", label, t[reps / 2] * 1e3, t[reps / 2] / one);
    }
    free(ids);
    free(logits);
    hearth_session_free(s);
    return 0;
}

typedef struct gen_case {
    const char *name;
    int n_max, ngram;
    hearth_session *draft;
} gen_case;

static int generation(hearth_model *m, hearth_model *draft_m, int n_tokens, int reps) {
    int32_t prompt[512];
    size_t n = 0;
    if (hearth_tokenize(m, prompt_text, strlen(prompt_text), true, false, prompt, 512, &n))
        return fail("tokenize");
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = (int)n + n_tokens + 32;
    hearth_session *s = NULL, *ds = NULL;
    if (hearth_session_new(m, &sp, &s)) return fail("session");
    if (draft_m && hearth_session_new(draft_m, &sp, &ds)) return fail("draft session");
    const gen_case cases[] = {
        {"plain", 0, 0, NULL},          {"lookup n=3 k=3", 3, 3, NULL},
        {"lookup n=3 k=8", 8, 3, NULL}, {"lookup n=2 k=3", 3, 2, NULL},
        {"draft k=3", 3, 0, ds},        {"draft k=8", 8, 0, ds},
    };
    hearth_logit_bias ban[4];
    size_t n_ban = 0;
    for (int32_t id = 0; id < hearth_model_n_vocab(m) && n_ban < 4; id++)
        if (hearth_token_is_eog(m, id)) ban[n_ban++] = (hearth_logit_bias){id, -INFINITY};
    printf("\ngeneration: %zu prompt tokens, %d generated, greedy (median of %d):\n", n, n_tokens,
           reps);
    printf("  %-16s %10s %9s %9s %9s %8s  %s\n", "case", "tokens/s", "speed-up", "proposed",
           "accepted", "rate", "output");
    static out_ids plain, o;
    double plain_tps = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (cases[c].n_max && !cases[c].ngram && !cases[c].draft) continue;
        double t[100];
        hearth_gen_result r = {0};
        for (int rep = 0; rep < reps; rep++) {
            hearth_sampling smp = hearth_sampling_default_params();
            smp.temperature = 0;
            smp.logit_bias = ban;
            smp.n_logit_bias = n_ban;
            hearth_sampler *sm = NULL;
            if (hearth_sampler_new(m, &smp, &sm)) return fail("sampler");
            hearth_gen_params gp = {.max_tokens = n_tokens,
                                    .spec_n_max = cases[c].n_max,
                                    .spec_ngram_n = cases[c].ngram,
                                    .draft = cases[c].draft};
            hearth_session_truncate(s, 0);
            if (ds) hearth_session_truncate(ds, 0);
            out_ids *dst = c ? &o : &plain;
            dst->n = 0;
            if (hearth_generate(s, sm, prompt, (int)n, &gp, keep, dst, &r)) return fail("generate");
            t[rep] = r.gen_ms / 1e3; /* the generation, the prompt's evaluation left out */
            hearth_sampler_free(sm);
        }
        bench_sort(t, reps);
        const double tps = r.n_gen / t[reps / 2];
        if (c == 0) plain_tps = tps;
        int same = 0;
        while (c && same < plain.n && same < o.n && plain.ids[same] == o.ids[same]) same++;
        char cmp[48];
        if (!c)
            snprintf(cmp, sizeof cmp, "-");
        else if (same == plain.n && same == o.n)
            snprintf(cmp, sizeof cmp, "same");
        else
            snprintf(cmp, sizeof cmp, "differs at %d", same);
        printf("  %-16s %10.1f %9.2f %9d %9d %7.0f%%  %s\n", cases[c].name, tps, tps / plain_tps,
               r.n_drafted, r.n_accepted, r.n_drafted ? 100.0 * r.n_accepted / r.n_drafted : 0.0,
               cmp);
    }
    hearth_session_free(s);
    hearth_session_free(ds);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_spec TARGET [DRAFT|-] [tokens 200] [reps 5] [threads 2] "
                        "[position 256]\n");
        return 2;
    }
    const char *draft_path = argc > 2 && strcmp(argv[2], "-") ? argv[2] : NULL;
    const int n_tokens = argc > 3 ? atoi(argv[3]) : 200, reps = argc > 4 ? atoi(argv[4]) : 5;
    const int n_threads = argc > 5 ? atoi(argv[5]) : 2, pos = argc > 6 ? atoi(argv[6]) : 256;
    if (n_tokens < 1 || n_tokens > 4000 || reps < 1 || reps > 100 || n_threads < 1 || pos < 1)
        return fprintf(stderr, "bench_spec: bad arguments\n"), 2;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = n_threads;
    hearth_model *m = NULL, *d = NULL;
    if (hearth_model_load(argv[1], &mp, &m)) return fail(argv[1]);
    if (draft_path && hearth_model_load(draft_path, &mp, &d)) return fail(draft_path);
    if (d && hearth_draft_check(m, d)) return fail("draft");
    int rc = verification(m, pos, reps, n_threads);
    if (!rc) rc = generation(m, d, n_tokens, reps);
    hearth_model_free(d);
    hearth_model_free(m);
    return rc;
}
