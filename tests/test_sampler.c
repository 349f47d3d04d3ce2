/*
 * test_sampler.c - the sampling layer on hand-made logits: the RNG against
 * its published reference outputs, every stage of the chain against a plain
 * full-sort reference written here, the penalties' exact values, seeds,
 * the empirical distribution, logprobs, and the stop-string matcher.
 * Everything is deterministic (fixed seeds).
 */
#include "sampling/sampling.h"
#include "sampler_fixture.h"
#include "test.h"

#include <float.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* ---- reference chain: full sort, then each stage literally --------------- */

/* Returns the kept count; out[] best first with logits / temperature. */
static int ref_chain(const float *logits, int n, const smp_params *p, smp_cand *out) {
    for (int i = 0; i < n; i++) out[i] = (smp_cand){i, logits[i]};
    return ref_truncate(out, n, p);
}

/* ---- RNG ------------------------------------------------------------------- */

static void test_rng(void) {
    /* xoshiro256** from state {1, 2, 3, 4}: the reference implementation's
     * first outputs. */
    hr_rng r = {{1, 2, 3, 4}};
    CHECK(hr_rng_next(&r) == 11520ULL);
    CHECK(hr_rng_next(&r) == 0ULL);
    CHECK(hr_rng_next(&r) == 1509978240ULL);
    CHECK(hr_rng_next(&r) == 1215971899390074240ULL);
    /* splitmix64 from 0: first output 0xe220a8397b1dcdaf (Vigna's splitmix64.c). */
    hr_rng_seed(&r, 0);
    CHECK(r.s[0] == 0xe220a8397b1dcdafULL);

    hr_rng_seed(&r, 42);
    double sum = 0, lo = 1, hi = 0;
    for (int i = 0; i < 100000; i++) {
        double u = hr_rng_uniform(&r);
        float f = hr_rng_uniform_f(&r);
        CHECK(u >= 0.0 && u < 1.0);
        CHECK(f >= 0.0f && f < 1.0f);
        sum += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    CHECKF(fabs(sum / 100000 - 0.5) < 0.01, "mean %f", sum / 100000);
    CHECK(lo < 0.001 && hi > 0.999);
    CHECK(hr_seed_from_entropy() != hr_seed_from_entropy());
}

/* ---- greedy ----------------------------------------------------------------- */

static void test_greedy(void) {
    const float logits[] = {0.5f, 2.0f, -1.0f, 3.5f, 3.5f, 1.0f, 3.5f};
    const int n = (int)(sizeof logits / sizeof logits[0]);
    smp_params p = smp_default_params(); /* truncations on: must not matter */
    p.temperature = 0.0f;
    p.seed = 1;
    smp_sampler *s = make(n, &p);
    for (int i = 0; i < 10; i++) CHECK(smp_sample(s, logits) == 3); /* tie 3/4/6 -> 3 */
    smp_cand c[8];
    CHECK(smp_candidates(s, logits, c, 8) == 1 && c[0].id == 3 && c[0].logit == 3.5f);
    smp_free(s);

    p.temperature = -1.0f; /* any t <= 0 is greedy */
    s = make(4, &p);
    const float single_max[] = {0.0f, 1.0f, 9.0f, 1.0f};
    CHECK(smp_sample(s, single_max) == 2);
    /* NaN and +inf from a broken model do not break the order: +inf wins. */
    const float odd[] = {NAN, 1.0f, INFINITY, NAN};
    CHECK(smp_sample(s, odd) == 2);
    smp_free(s);
}

/* ---- truncation stages ------------------------------------------------------ */

static void test_top_k(void) {
    enum { N = 50, K = 5 };
    float logits[N];
    unsigned long long rs = 7;
    for (int i = 0; i < N; i++) logits[i] = test_rand_f(&rs) * 2.0f;
    smp_params p = plain_params(123);
    p.top_k = K;
    smp_sampler *s = make(N, &p);

    smp_cand ref[N], got[N];
    CHECK(ref_chain(logits, N, &p, ref) == K);
    REQUIRE(smp_candidates(s, logits, got, N) == K);
    for (int i = 0; i < K; i++) CHECK(got[i].id == ref[i].id && got[i].logit == ref[i].logit);

    int seen[N] = {0};
    for (int t = 0; t < 5000; t++) seen[smp_sample(s, logits)]++;
    int n_seen = 0;
    for (int i = 0; i < N; i++) {
        bool allowed = false;
        for (int j = 0; j < K; j++) allowed |= ref[j].id == i;
        CHECKF(allowed || seen[i] == 0, "token %d outside the top %d drawn %d times", i, K,
               seen[i]);
        n_seen += seen[i] > 0;
    }
    CHECK(n_seen == K); /* the k best have comparable probability: all appear */
    smp_free(s);

    /* k = 1 is greedy; k >= n_vocab keeps everything. */
    p.top_k = 1;
    s = make(N, &p);
    CHECK(smp_candidates(s, logits, got, N) == 1 && got[0].id == ref[0].id);
    smp_free(s);
    p.top_k = N + 3;
    s = make(N, &p);
    CHECK(smp_candidates(s, logits, got, N) == N);
    smp_free(s);
}

/* Logits whose softmax is exactly `probs` (up to float rounding). */
static void logits_from_probs(const double *probs, int n, float *logits) {
    for (int i = 0; i < n; i++) logits[i] = (float)log(probs[i]);
}

static void test_top_p(void) {
    /* Ids deliberately not in probability order. */
    const double probs[] = {0.2, 0.1, 0.4, 0.3};
    float logits[4];
    logits_from_probs(probs, 4, logits);
    const struct {
        float p;
        int kept;
    } cases[] = {{0.35f, 1}, {0.65f, 2}, {0.75f, 3}, {0.95f, 4}, {0.0f, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        smp_params p = plain_params(5);
        p.top_p = cases[c].p;
        smp_sampler *s = make(4, &p);
        smp_cand got[4];
        int n = smp_candidates(s, logits, got, 4);
        CHECKF(n == cases[c].kept, "top_p %.2f kept %d, want %d", (double)cases[c].p, n,
               cases[c].kept);
        /* best first: 2 (0.4), 3 (0.3), 0 (0.2), 1 (0.1) */
        const int order[] = {2, 3, 0, 1};
        for (int i = 0; i < n && i < 4; i++) CHECK(got[i].id == order[i]);
        for (int t = 0; t < 2000; t++) {
            int id = smp_sample(s, logits);
            bool kept = false;
            for (int i = 0; i < n; i++) kept |= got[i].id == id;
            CHECK(kept);
        }
        smp_free(s);
    }

    /* Exactly on the boundary: four equal logits, each p = 1/4 exactly;
     * "reaches p" includes equality, and ties keep the lowest ids. */
    const float flat[] = {0.0f, 0.0f, 0.0f, 0.0f};
    const float flat_p[] = {0.25f, 0.5f, 0.75f, 1.0f};
    for (int c = 0; c < 4; c++) {
        smp_params p = plain_params(5);
        p.top_p = flat_p[c];
        smp_sampler *s = make(4, &p);
        smp_cand got[4];
        CHECK(smp_candidates(s, flat, got, 4) == c + 1);
        for (int i = 0; i <= c; i++) CHECK(got[i].id == i);
        smp_free(s);
    }

    /* Random logits: the kept set is the smallest prefix reaching p. */
    enum { N = 300 };
    float lg[N];
    unsigned long long rs = 99;
    for (int i = 0; i < N; i++) lg[i] = test_rand_f(&rs) * 4.0f;
    const float ps[] = {0.1f, 0.5f, 0.9f, 0.99f};
    for (size_t c = 0; c < sizeof ps / sizeof ps[0]; c++) {
        smp_params p = plain_params(5);
        p.top_p = ps[c];
        smp_sampler *s = make(N, &p);
        smp_cand got[N], ref[N];
        int n = smp_candidates(s, lg, got, N);
        int nr = ref_chain(lg, N, &p, ref);
        CHECKF(n == nr, "top_p %.2f: %d kept, reference %d", (double)ps[c], n, nr);
        double sum = 0, cum_before = 0, cum = 0;
        for (int i = 0; i < N; i++) sum += exp((double)ref[i].logit - ref[0].logit);
        for (int i = 0; i < n; i++) {
            CHECK(got[i].id == ref[i].id);
            cum_before = cum;
            cum += exp((double)got[i].logit - got[0].logit);
        }
        CHECK(cum / sum >= ps[c] - 1e-6); /* reaches p ... */
        CHECK(cum_before / sum < ps[c]);  /* ... and one fewer would not */
        smp_free(s);
    }
}

static void test_min_p(void) {
    enum { N = 200 };
    float lg[N];
    unsigned long long rs = 3;
    for (int i = 0; i < N; i++) lg[i] = test_rand_f(&rs) * 3.0f;
    const float mps[] = {0.01f, 0.05f, 0.3f, 0.9f, 1.0f};
    for (size_t c = 0; c < sizeof mps / sizeof mps[0]; c++) {
        smp_params p = plain_params(8);
        p.min_p = mps[c];
        smp_sampler *s = make(N, &p);
        smp_cand got[N];
        int n = smp_candidates(s, lg, got, N);
        /* Directly from the definition: p_i >= min_p * p_max. */
        double pmax = 0, sum = 0;
        for (int i = 0; i < N; i++) sum += exp((double)lg[i]);
        for (int i = 0; i < N; i++) pmax = fmax(pmax, exp((double)lg[i]) / sum);
        int want = 0;
        for (int i = 0; i < N; i++) {
            const bool keep = exp((double)lg[i]) / sum >= mps[c] * pmax;
            bool kept = false;
            for (int j = 0; j < n; j++) kept |= got[j].id == i;
            CHECKF(kept == keep, "min_p %.2f token %d", (double)mps[c], i);
            want += keep;
        }
        CHECK(n == want && n >= 1);
        smp_free(s);
    }
}

/* ---- temperature -------------------------------------------------------------- */

static void test_temperature(void) {
    const float logits[] = {1.0f, 0.9f, 0.8f, 1.0f - 0.05f, 0.2f};
    smp_params p = plain_params(11);
    p.temperature = 0.001f;
    smp_sampler *s = make(5, &p);
    for (int t = 0; t < 1000; t++) CHECK(smp_sample(s, logits) == 0);
    smp_free(s);

    /* Very high temperature: close to uniform. */
    enum { DRAWS = 40000 };
    const float spread[] = {0.0f, 2.0f, -1.0f, 1.5f};
    p.temperature = 1000.0f;
    s = make(4, &p);
    int count[4] = {0};
    for (int t = 0; t < DRAWS; t++) count[smp_sample(s, spread)]++;
    for (int i = 0; i < 4; i++)
        CHECKF(abs(count[i] - DRAWS / 4) < DRAWS / 40, "token %d: %d of %d", i, count[i], DRAWS);
    smp_cand got[4];
    CHECK(smp_candidates(s, spread, got, 4) == 4);
    CHECK(got[0].id == 1 && got[0].logit == 2.0f / 1000.0f); /* divided by t */
    smp_free(s);

    /* Temperature comes after min-p: min-p sees the unscaled distribution.
     * probs .4 .3 .2 .1, min_p .3 -> threshold .12 keeps 3; had t = 2 come
     * first, every ratio would be >= .5 and all 4 would stay. */
    const double probs[] = {0.4, 0.3, 0.2, 0.1};
    float lg[4];
    logits_from_probs(probs, 4, lg);
    p = plain_params(1);
    p.min_p = 0.3f;
    p.temperature = 2.0f;
    s = make(4, &p);
    CHECK(smp_candidates(s, lg, got, 4) == 3);
    CHECK(got[2].id == 2 && fabsf(got[2].logit - lg[2] / 2.0f) < 1e-6f);
    smp_free(s);
}

/* ---- chain order -------------------------------------------------------------- */

static void test_order(void) {
    smp_cand got[5];
    /* top-k before top-p: probs .5 .2 .15 .15, top_k 2 renormalizes to
     * .714 .286, so top_p .6 keeps 1 (over all four it would keep 2). */
    const double pr1[] = {0.5, 0.2, 0.15, 0.15};
    float l1[4];
    logits_from_probs(pr1, 4, l1);
    smp_params p = plain_params(1);
    p.top_k = 2;
    p.top_p = 0.6f;
    smp_sampler *s = make(4, &p);
    CHECK(smp_candidates(s, l1, got, 4) == 1);
    smp_free(s);
    p.top_k = 0;
    s = make(4, &p);
    CHECK(smp_candidates(s, l1, got, 4) == 2);
    smp_free(s);

    /* top-p before min-p: probs .4 .3 .2 .1, top_p .75 keeps 3 (.9), then
     * min_p .4 (threshold .16) keeps those 3. The other order would keep 2. */
    const double pr2[] = {0.4, 0.3, 0.2, 0.1};
    float l2[4];
    logits_from_probs(pr2, 4, l2);
    p = plain_params(1);
    p.top_p = 0.75f;
    p.min_p = 0.4f;
    s = make(4, &p);
    CHECK(smp_candidates(s, l2, got, 4) == 3);
    smp_free(s);

    /* penalties before top-k: token 0 penalized below tokens 1 and 2. */
    const float l3[] = {5.0f, 4.0f, 3.0f, 2.0f, 1.0f};
    p = plain_params(1);
    p.top_k = 2;
    p.penalty_last_n = 4;
    p.repeat_penalty = 10.0f;
    s = make(5, &p);
    CHECK(smp_accept(s, 0) == HEARTH_OK);
    CHECK(smp_candidates(s, l3, got, 5) == 2);
    CHECK(got[0].id == 1 && got[1].id == 2);
    smp_free(s);
}

/* ---- penalties -------------------------------------------------------------------- */

static float expect_pen(float l, int count, float rep, float freq, float pres) {
    if (count == 0) return l;
    float x = l <= 0.0f ? l * rep : l / rep;
    return x - ((float)count * freq + pres);
}

static void test_penalties(void) {
    const float logits[] = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f, -2.5f};
    enum { N = 6 };
    smp_params p = plain_params(1);
    p.penalty_last_n = 4;
    p.repeat_penalty = 1.3f;
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 0.75f;
    smp_sampler *s = make(N, &p);
    /* accepted: 0 1 1 3 4 1 -> window (last 4): 1 3 4 1 */
    const int32_t acc[] = {0, 1, 1, 3, 4, 1};
    for (int i = 0; i < 6; i++) CHECK(smp_accept(s, acc[i]) == HEARTH_OK);
    const int counts[N] = {0, 2, 0, 1, 1, 0};
    smp_cand got[N];
    REQUIRE(smp_candidates(s, logits, got, N) == N);
    for (int j = 0; j < N; j++) {
        const int id = got[j].id;
        const float want = expect_pen(logits[id], counts[id], p.repeat_penalty, p.frequency_penalty,
                                      p.presence_penalty);
        CHECKF(fabsf(got[j].logit - want) <= 1e-6f * fmaxf(1.0f, fabsf(want)),
               "token %d: %g, want %g", id, (double)got[j].logit, (double)want);
    }
    /* spot values worked by hand: token 1: -1 * 1.3 - (2 * .25 + .75) = -2.55;
     * token 3: 3 / 1.3 - 1.0; token 4: 0 * 1.3 - 1.0 = -1.0 */
    for (int j = 0; j < N; j++) {
        if (got[j].id == 1) CHECK(fabsf(got[j].logit - -2.55f) < 1e-5f);
        if (got[j].id == 3) CHECK(fabsf(got[j].logit - (3.0f / 1.3f - 1.0f)) < 1e-5f);
        if (got[j].id == 4) CHECK(fabsf(got[j].logit - -1.0f) < 1e-6f);
        if (got[j].id == 0) CHECK(got[j].logit == 2.0f); /* left the window */
    }

    /* Reset forgets the window. */
    smp_reset(s);
    REQUIRE(smp_candidates(s, logits, got, N) == N);
    for (int j = 0; j < N; j++) CHECK(got[j].logit == logits[got[j].id]);
    CHECK(smp_accept(s, N) == HEARTH_ERR_INVALID_ARG);
    CHECK(smp_accept(s, -1) == HEARTH_ERR_INVALID_ARG);
    smp_free(s);

    /* Greedy sees the penalties too. */
    p.temperature = 0.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    p.repeat_penalty = 2.0f;
    s = make(N, &p);
    CHECK(smp_sample(s, logits) == 3);
    smp_accept(s, 3); /* 3 -> 1.5 < 2 */
    CHECK(smp_sample(s, logits) == 0);
    smp_free(s);
}

/* ---- seeds and the distribution --------------------------------------------------- */

static void draw_seq(uint64_t seed, const float *logits, int n, int32_t *out, int len) {
    smp_params p = plain_params(seed);
    smp_sampler *s = make(n, &p);
    for (int i = 0; i < len; i++) out[i] = smp_sample(s, logits);
    smp_free(s);
}

static void test_seeds(void) {
    enum { N = 8, LEN = 64 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = 0.1f * (float)i;
    int32_t a[LEN], b[LEN], c[LEN];
    draw_seq(1234, logits, N, a, LEN);
    draw_seq(1234, logits, N, b, LEN);
    draw_seq(1235, logits, N, c, LEN);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);

    /* reset restarts the stream */
    smp_params p = plain_params(1234);
    smp_sampler *s = make(N, &p);
    for (int i = 0; i < 10; i++) smp_sample(s, logits);
    smp_reset(s);
    for (int i = 0; i < LEN; i++) b[i] = smp_sample(s, logits);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(smp_seed(s) == 1234);
    smp_free(s);

    /* a random seed is drawn and reported */
    p.seed = SMP_SEED_RANDOM;
    s = make(N, &p);
    CHECK(smp_seed(s) != SMP_SEED_RANDOM);
    smp_free(s);
}

static void test_distribution(void) {
    /* Chi-square with 4 degrees of freedom: the 0.999 quantile is 18.47; a
     * correct sampler stays far below 40, a biased one (e.g. an off-by-one
     * in the walk) lands in the hundreds. */
    enum { N = 5, DRAWS = 100000 };
    const double probs[N] = {0.05, 0.4, 0.1, 0.25, 0.2};
    float logits[N];
    logits_from_probs(probs, N, logits);
    smp_params p = plain_params(2024);
    smp_sampler *s = make(N, &p);
    int count[N] = {0};
    for (int t = 0; t < DRAWS; t++) count[smp_sample(s, logits)]++;
    double chi2 = 0;
    for (int i = 0; i < N; i++) {
        const double e = probs[i] * DRAWS;
        chi2 += (count[i] - e) * (count[i] - e) / e;
    }
    CHECKF(chi2 < 40.0, "chi-square %.2f", chi2);
    smp_free(s);

    /* -inf logits are never drawn. */
    const float masked[] = {-INFINITY, 0.0f, -INFINITY, 0.0f};
    s = make(4, &p);
    for (int t = 0; t < 2000; t++) {
        int id = smp_sample(s, masked);
        CHECK(id == 1 || id == 3);
    }
    smp_free(s);
}

/* ---- against the reference on a large random vocabulary ---------------------------- */

static void test_vs_reference(void) {
    enum { N = 5000 };
    static float lg[N];
    static smp_cand got[N], ref[N];
    unsigned long long rs = 2718;
    /* Quantized logits: many exact ties exercise the id order. */
    for (int i = 0; i < N; i++) lg[i] = roundf(test_rand_f(&rs) * 24.0f) / 4.0f;
    const int ks[] = {0, 1, 7, 40, N};
    const float ps[] = {1.0f, 0.9f, 0.3f};
    const float mps[] = {0.0f, 0.05f, 0.5f};
    const float ts[] = {1.0f, 0.7f};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < 3; c++)
                for (size_t d = 0; d < 2; d++) {
                    smp_params p = plain_params(1);
                    p.top_k = ks[a];
                    p.top_p = ps[b];
                    p.min_p = mps[c];
                    p.temperature = ts[d];
                    smp_sampler *s = make(N, &p);
                    int n = smp_candidates(s, lg, got, N);
                    int nr = ref_chain(lg, N, &p, ref);
                    bool same = n == nr;
                    for (int i = 0; same && i < n; i++)
                        same = got[i].id == ref[i].id && got[i].logit == ref[i].logit;
                    CHECKF(same, "k %d p %.2f min_p %.2f t %.1f: %d vs %d kept", ks[a],
                           (double)ps[b], (double)mps[c], (double)ts[d], n, nr);
                    smp_free(s);
                }
}

/* ---- logprobs ---------------------------------------------------------------------- */

static void test_logprobs(void) {
    enum { N = 30 };
    float lg[N];
    unsigned long long rs = 5;
    for (int i = 0; i < N; i++) lg[i] = test_rand_f(&rs) * 3.0f;
    lg[17] = lg[4]; /* a tie in the top list */
    double m = -1e30, sum = 0;
    for (int i = 0; i < N; i++) m = fmax(m, lg[i]);
    for (int i = 0; i < N; i++) sum += exp(lg[i] - m);
    const double lse = m + log(sum);

    smp_params p = plain_params(77);
    p.temperature = 1.7f; /* logprobs ignore temperature and penalties */
    p.penalty_last_n = 8;
    p.repeat_penalty = 1.5f;
    p.top_k = 3;
    smp_sampler *s = make(N, &p);
    smp_accept(s, 2);
    for (int t = 0; t < 50; t++) {
        smp_info info;
        memset(&info, 0xff, sizeof info);
        const int32_t id = smp_sample_ex(s, lg, 25, &info);
        CHECK(info.id == id);
        CHECK(fabs(info.logprob - (lg[id] - lse)) < 1e-5);
        CHECK(info.n_top == SMP_TOP_LOGPROBS_MAX);
        for (int j = 0; j < info.n_top; j++) {
            const int32_t k = info.top[j].id;
            CHECK(fabs(info.top[j].logprob - (lg[k] - lse)) < 1e-5);
            if (j > 0) {
                const smp_logprob a = info.top[j - 1], b = info.top[j];
                CHECK(a.logprob > b.logprob || (a.logprob == b.logprob && a.id < b.id));
            }
        }
        /* nothing outside the list beats its last entry */
        const smp_logprob last = info.top[info.n_top - 1];
        for (int i = 0; i < N; i++) {
            bool in = false;
            for (int j = 0; j < info.n_top; j++) in |= info.top[j].id == i;
            if (!in) CHECK(lg[i] - lse <= last.logprob + 1e-6);
        }
    }
    smp_info info;
    smp_sample_ex(s, lg, 0, &info);
    CHECK(info.n_top == 0);
    smp_free(s);

    /* n_top is clamped to the vocabulary */
    const float tiny[] = {0.0f, 1.0f, 0.0f};
    s = make(3, &p);
    smp_sample_ex(s, tiny, 20, &info);
    CHECK(info.n_top == 3 && info.top[0].id == 1 && info.top[1].id == 0 && info.top[2].id == 2);
    smp_free(s);
}

/* ---- parameters and memory ----------------------------------------------------------- */

static void test_params(void) {
    smp_sampler *s = NULL;
    smp_params p = plain_params(1);
    CHECK(smp_new(0, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    p.temperature = NAN;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    p = plain_params(1);
    p.top_p = 1.5f;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG);
    p = plain_params(1);
    p.min_p = -0.1f;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG);
    p = plain_params(1);
    p.penalty_last_n = -1;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "penalty_last_n") != NULL);
    p = plain_params(1);
    p.repeat_penalty = 0.0f;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    CHECK(smp_new(10, NULL, &s) == HEARTH_OK && s); /* defaults */
    smp_free(s);
    smp_free(NULL);

    smp_params d = smp_default_params();
    CHECK(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f);
    CHECK(d.penalty_last_n == 64 && d.repeat_penalty == 1.0f && d.seed == SMP_SEED_RANDOM);
}

static void test_no_alloc(void) {
#if defined(__GLIBC__) && defined(__GLIBC_MINOR__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    enum { N = 32000 };
    static float lg[N];
    unsigned long long rs = 1;
    for (int i = 0; i < N; i++) lg[i] = test_rand_f(&rs) * 5.0f;
    smp_params p = smp_default_params();
    p.seed = 3;
    p.repeat_penalty = 1.1f;
    smp_sampler *s = make(N, &p);
    smp_info info;
    smp_sample_ex(s, lg, 5, &info); /* warm-up */
    struct mallinfo2 before = mallinfo2();
    for (int t = 0; t < 50; t++) {
        smp_accept(s, smp_sample_ex(s, lg, 20, &info));
        smp_accept(s, smp_sample(s, lg));
    }
    struct mallinfo2 after = mallinfo2();
    CHECK(before.uordblks == after.uordblks && before.hblkhd == after.hblkhd);
    smp_free(s);
#endif
}

/* ---- stop strings ---------------------------------------------------------------------- */

typedef struct {
    char text[256];
    size_t len;
    bool stopped;
    int stop_index;
} stream_result;

/* Feeds the pieces (flushing at the end unless stopped), collecting the
 * released text; checks after each piece that no released prefix of the
 * stream ends inside a stop string. */
static stream_result run_stops(const char *const *stops, int n_stops, const char *const *pieces,
                               int n_pieces) {
    stream_result r = {{0}, 0, false, -1};
    smp_stop *st = NULL;
    REQUIRE(smp_stop_new(stops, n_stops, &st) == HEARTH_OK);
    for (int i = 0; i < n_pieces && !r.stopped; i++) {
        smp_stop_out o;
        REQUIRE(smp_stop_feed(st, pieces[i], strlen(pieces[i]), &o) == HEARTH_OK);
        REQUIRE(r.len + o.len < sizeof r.text);
        memcpy(r.text + r.len, o.text, o.len);
        r.len += o.len;
        r.stopped = o.stopped;
        r.stop_index = o.stop_index;
    }
    if (!r.stopped) {
        smp_stop_out o;
        smp_stop_flush(st, &o);
        REQUIRE(r.len + o.len < sizeof r.text);
        memcpy(r.text + r.len, o.text, o.len);
        r.len += o.len;
        r.stopped = o.stopped;
        r.stop_index = o.stop_index;
    }
    r.text[r.len] = 0;
    smp_stop_free(st);
    return r;
}

static void test_stop(void) {
    {
        const char *stops[] = {"\nUser:"};
        const char *pieces[] = {"Hel", "lo\nUs", "er:", " more"};
        stream_result r = run_stops(stops, 1, pieces, 4);
        CHECK(r.stopped && r.stop_index == 0 && strcmp(r.text, "Hello") == 0);
    }
    { /* step by step: the held part is not released early */
        const char *stops[] = {"\nUser:"};
        smp_stop *st = NULL;
        REQUIRE(smp_stop_new(stops, 1, &st) == HEARTH_OK);
        CHECK(smp_stop_max_len(st) == 6);
        smp_stop_out o;
        smp_stop_feed(st, "Hel", 3, &o);
        CHECK(o.len == 3 && memcmp(o.text, "Hel", 3) == 0 && !o.stopped);
        smp_stop_feed(st, "lo\nUs", 5, &o);
        CHECK(o.len == 2 && memcmp(o.text, "lo", 2) == 0 && !o.stopped);
        smp_stop_feed(st, "er:", 3, &o);
        CHECK(o.len == 0 && o.stopped && o.stop_index == 0);
        smp_stop_feed(st, "after", 5, &o);
        CHECK(o.len == 0 && o.stopped);
        smp_stop_flush(st, &o);
        CHECK(o.len == 0 && o.stopped);
        /* reset: a new generation */
        smp_stop_reset(st);
        smp_stop_feed(st, "ok\nU", 4, &o);
        CHECK(o.len == 2 && !o.stopped);
        smp_stop_flush(st, &o);
        CHECK(o.len == 2 && memcmp(o.text, "\nU", 2) == 0 && !o.stopped);
        smp_stop_free(st);
    }
    { /* a partial match that fails is released */
        const char *stops[] = {"\nUser:"};
        const char *pieces[] = {"a\nUs", "ed to", " it"};
        stream_result r = run_stops(stops, 1, pieces, 3);
        CHECK(!r.stopped && strcmp(r.text, "a\nUsed to it") == 0);
    }
    { /* partial match at the very end is flushed */
        const char *stops[] = {"</s>"};
        const char *pieces[] = {"x </", "s"};
        stream_result r = run_stops(stops, 1, pieces, 2);
        CHECK(!r.stopped && strcmp(r.text, "x </s") == 0);
    }
    { /* several stop strings: the earliest in the text wins */
        const char *stops[] = {"STOP", "###", "\n\n"};
        const char *p1[] = {"one two #", "## STOP"};
        stream_result r = run_stops(stops, 3, p1, 2);
        CHECK(r.stopped && r.stop_index == 1 && strcmp(r.text, "one two ") == 0);
        const char *p2[] = {"a", "b\n", "\nc"};
        r = run_stops(stops, 3, p2, 3);
        CHECK(r.stopped && r.stop_index == 2 && strcmp(r.text, "ab") == 0);
    }
    { /* equal starts: the shortest, whatever the list order or the cut */
        const char *stops[] = {"abc", "ab"};
        const char *whole[] = {"xabc"};
        stream_result r = run_stops(stops, 2, whole, 1);
        CHECK(r.stopped && r.stop_index == 1 && strcmp(r.text, "x") == 0);
        const char *cut[] = {"xa", "b", "c"};
        r = run_stops(stops, 2, cut, 3);
        CHECK(r.stopped && r.stop_index == 1 && strcmp(r.text, "x") == 0);
    }
    { /* a later complete stop waits for an earlier partial one */
        const char *stops[] = {"\nUser:", "Us"};
        smp_stop *st = NULL;
        REQUIRE(smp_stop_new(stops, 2, &st) == HEARTH_OK);
        smp_stop_out o;
        smp_stop_feed(st, "Hi\nUs", 5, &o); /* "Us" is complete, "\nUs" undecided */
        CHECK(o.len == 2 && memcmp(o.text, "Hi", 2) == 0 && !o.stopped);
        smp_stop_feed(st, "er: x", 5, &o);
        CHECK(o.len == 0 && o.stopped && o.stop_index == 0);
        smp_stop_reset(st);
        smp_stop_feed(st, "Hi\nUs", 5, &o);
        smp_stop_feed(st, "ed", 2, &o); /* "\nUse" fails: "Us" decides */
        CHECK(o.len == 1 && o.text[0] == '\n' && o.stopped && o.stop_index == 1);
        smp_stop_reset(st);
        smp_stop_feed(st, "Hi\nUs", 5, &o);
        smp_stop_flush(st, &o); /* the end decides too */
        CHECK(o.len == 1 && o.text[0] == '\n' && o.stopped && o.stop_index == 1);
        smp_stop_free(st);
    }
    { /* a stop string spanning three pieces */
        const char *stops[] = {"<|im_end|>"};
        const char *pieces[] = {"Sure.<|", "im_", "end|>tail"};
        stream_result r = run_stops(stops, 1, pieces, 3);
        CHECK(r.stopped && strcmp(r.text, "Sure.") == 0);
    }
    { /* overlapping prefixes: "aab" inside "aaab" */
        const char *stops[] = {"aab"};
        const char *pieces[] = {"a", "a", "a", "b!"};
        stream_result r = run_stops(stops, 1, pieces, 4);
        CHECK(r.stopped && strcmp(r.text, "a") == 0);
    }
    { /* no stop strings: everything passes straight through */
        const char *pieces[] = {"abc", "", "def"};
        stream_result r = run_stops(NULL, 0, pieces, 3);
        CHECK(!r.stopped && strcmp(r.text, "abcdef") == 0);
    }
    { /* a piece longer than the initial buffer */
        static char big[1000];
        memset(big, 'z', sizeof big - 1);
        const char *stops[] = {"END"};
        smp_stop *st = NULL;
        REQUIRE(smp_stop_new(stops, 1, &st) == HEARTH_OK);
        smp_stop_out o;
        CHECK(smp_stop_feed(st, "E", 1, &o) == HEARTH_OK && o.len == 0);
        CHECK(smp_stop_feed(st, big, sizeof big - 1, &o) == HEARTH_OK);
        CHECK(o.len == sizeof big && o.text[0] == 'E' && o.text[1] == 'z' && !o.stopped);
        CHECK(smp_stop_feed(st, "EN", 2, &o) == HEARTH_OK && o.len == 0);
        CHECK(smp_stop_feed(st, "D", 1, &o) == HEARTH_OK && o.len == 0 && o.stopped);
        smp_stop_free(st);
    }
    { /* empty stop strings are refused */
        const char *stops[] = {"ok", ""};
        smp_stop *st = NULL;
        CHECK(smp_stop_new(stops, 2, &st) == HEARTH_ERR_INVALID_ARG && !st);
    }
}

/* Every way of cutting a text into up to three pieces gives the same result
 * as feeding it whole. */
static void test_stop_splits(void) {
    const char *stops[] = {"\nUser:", "Us", "<end>"};
    const char *texts[] = {"Hello\nUser: hi", "a\nUsed<en", "<en<end> x", "no stop here \n"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        const char *whole[] = {texts[t]};
        stream_result ref = run_stops(stops, 3, whole, 1);
        const size_t n = strlen(texts[t]);
        for (size_t i = 0; i <= n; i++) {
            for (size_t j = i; j <= n; j++) {
                char a[64], b[64], c[64];
                memcpy(a, texts[t], i);
                a[i] = 0;
                memcpy(b, texts[t] + i, j - i);
                b[j - i] = 0;
                memcpy(c, texts[t] + j, n - j);
                c[n - j] = 0;
                const char *pieces[] = {a, b, c};
                stream_result r = run_stops(stops, 3, pieces, 3);
                CHECKF(r.stopped == ref.stopped && r.stop_index == ref.stop_index &&
                           strcmp(r.text, ref.text) == 0,
                       "text %zu split %zu/%zu: '%s' vs '%s'", t, i, j, r.text, ref.text);
            }
        }
    }
    /* and the whole-text answers themselves */
    const char *w0[] = {texts[0]};
    stream_result r = run_stops(stops, 3, w0, 1);
    CHECK(r.stopped && r.stop_index == 0 && strcmp(r.text, "Hello") == 0);
    const char *w1[] = {texts[1]};
    r = run_stops(stops, 3, w1, 1);
    CHECK(r.stopped && r.stop_index == 1 && strcmp(r.text, "a\n") == 0);
    const char *w3[] = {texts[3]};
    r = run_stops(stops, 3, w3, 1);
    CHECK(!r.stopped && strcmp(r.text, texts[3]) == 0);
}

/* smp_candidates_ranked gives the same candidates as smp_candidates, the
 * first n_best in the same order, the rest in any order; the draw after it
 * is unchanged. */
static void test_candidates_ranked(void) {
    enum { N = 3000 };
    static float lg[N];
    static smp_cand all[N], part[N];
    unsigned long long rs = 11;
    for (int i = 0; i < N; i++) lg[i] = test_rand_f(&rs) * 8.0f;
    lg[17] = lg[23]; /* a tie: the lower id ranks first */
    const int n_best_cases[] = {1, 5, 20, N + 1};
    for (size_t c = 0; c < sizeof n_best_cases / sizeof *n_best_cases; c++) {
        const int nb = n_best_cases[c];
        smp_params p = plain_params(9);
        p.min_p = c == 1 ? 0.0001f : 0.0f; /* one case truncates */
        smp_sampler *a = make(N, &p), *b = make(N, &p);
        const int na = smp_candidates(a, lg, all, N);
        const int n = smp_candidates_ranked(b, lg, part, N, nb);
        REQUIRE(n == na && n > 0);
        const int r = nb < n ? nb : n;
        for (int i = 0; i < r; i++)
            CHECKF(part[i].id == all[i].id && part[i].logit == all[i].logit,
                   "n_best %d: rank %d is token %d, not %d", nb, i, part[i].id, all[i].id);
        static unsigned char seen[N];
        memset(seen, 0, sizeof seen);
        bool same_set = true;
        for (int i = 0; i < n; i++) seen[part[i].id]++;
        for (int i = 0; i < n; i++)
            same_set &= seen[all[i].id] == 1 && lg[all[i].id] == all[i].logit;
        CHECKF(same_set, "n_best %d: not the same %d candidates", nb, n);
        CHECK(smp_sample(a, lg) == smp_sample(b, lg));
        smp_free(a);
        smp_free(b);
    }
}

int main(void) {
    test_rng();
    test_greedy();
    test_top_k();
    test_top_p();
    test_min_p();
    test_temperature();
    test_order();
    test_penalties();
    test_seeds();
    test_distribution();
    test_vs_reference();
    test_logprobs();
    test_params();
    test_no_alloc();
    test_stop();
    test_stop_splits();
    test_candidates_ranked();
    return test_done("test_sampler");
}
