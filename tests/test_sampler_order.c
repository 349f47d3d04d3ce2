/*
 * test_sampler_order.c - llama.cpp's min_keep, dynamic temperature and the
 * chain's order ("samplers") in the sampling layer and the public API:
 *
 *   - random chains (1 to 12 stages, any order, repeats) with random knobs,
 *     min_keep and dynamic temperature on random logits, the sampler's
 *     candidates against a plain reference written here from each stage's
 *     definition (full sort, probabilities and the entropy in double);
 *   - the default chain given as its list draws the same tokens as the
 *     default (n_stages 0), which takes the greedy shortcut and fused passes;
 *   - hand-made values: min_keep in each stage that takes it and not in
 *     top-k or top-n-sigma, the dynamic temperature at uniform, two-token and
 *     one-hot distributions (temperature 0 with a range samples, or is greedy
 *     at zero entropy), a chain without temperature never greedy, left-out
 *     penalties and DRY do nothing, no stage at all, Mirostat ignoring the
 *     order;
 *   - the names and letters of llama.cpp's samplers, and the validation of
 *     every new setting (smp_new and hearth_sampler_new, naming the field).
 */
#include "sampler_fixture.h"
#include "sampling/sampling.h"
#include "synth_model.h"
#include "test.h"

enum { N = 500 };

static int cmp_id(const void *a, const void *b) {
    const smp_cand *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* ---- the reference: each stage on c[0..m), plainly ----------------------------------- */

typedef struct ref_ctx {
    const smp_params *p;
    const int32_t *counts; /* [N] occurrences in the penalty window */
    int dry_token;         /* DRY's one penalized token (the history makes it so), -1: none */
    bool greedy;
} ref_ctx;

static void ref_probs(const smp_cand *c, int m, double *q) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < m; i++) max = c[i].logit > max ? c[i].logit : max;
    for (int i = 0; i < m; i++) sum += q[i] = exp((double)c[i].logit - max);
    for (int i = 0; i < m; i++) q[i] /= sum;
}

static int ref_penalties(ref_ctx *x, smp_cand *c, int m) {
    const smp_params *p = x->p;
    for (int i = 0; i < m; i++) {
        const int32_t n = x->counts[c[i].id];
        if (n == 0 || p->penalty_last_n == 0) continue;
        float l = c[i].logit;
        l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
        c[i].logit = l - ((float)n * p->frequency_penalty + p->presence_penalty);
    }
    return m;
}

/* The history 1 2 3 1 2 with dry_allowed_length 2: only token 3 would
 * extend a repetition (of length 2), by dry_multiplier * base^0. */
static int ref_dry(ref_ctx *x, smp_cand *c, int m) {
    for (int i = 0; i < m && x->p->dry_multiplier > 0; i++)
        if (c[i].id == x->dry_token) c[i].logit -= x->p->dry_multiplier;
    return m;
}

static int ref_top_n_sigma(ref_ctx *x, smp_cand *c, int m) {
    const float n = x->p->top_n_sigma;
    if (n <= 0 || m <= 1) return m;
    double max = -INFINITY, sum = 0, acc = 0;
    for (int i = 0; i < m; i++) {
        max = c[i].logit > max ? c[i].logit : max;
        sum += c[i].logit;
    }
    const double mean = sum / m;
    for (int i = 0; i < m; i++) acc += (c[i].logit - mean) * (c[i].logit - mean);
    const float thr = (float)(max - n * sqrt(acc / m));
    int w = 0;
    for (int i = 0; i < m; i++)
        if (c[i].logit >= thr) c[w++] = c[i];
    return w;
}

static int ref_top_k(ref_ctx *x, smp_cand *c, int m) {
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    return x->p->top_k > 0 && x->p->top_k < m ? x->p->top_k : m;
}

static double g_score[N];
static int cmp_score(const void *a, const void *b) {
    const int i = *(const int *)a, j = *(const int *)b;
    if (g_score[i] != g_score[j]) return g_score[i] < g_score[j] ? -1 : 1;
    return (i > j) - (i < j); /* c[] is sorted best first */
}

/* By |-ln p - H| ascending, the shortest prefix with probability > p that
 * holds min_keep. */
static int ref_typical(ref_ctx *x, smp_cand *c, int m) {
    if (x->p->typical_p >= 1.0f) return m;
    static double q[N];
    static int idx[N];
    static smp_cand tmp[N];
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    ref_probs(c, m, q);
    double h = 0, cum = 0;
    for (int i = 0; i < m; i++)
        if (q[i] > 0) h -= q[i] * log(q[i]);
    for (int i = 0; i < m; i++) {
        g_score[i] = q[i] > 0 ? fabs(-log(q[i]) - h) : INFINITY;
        idx[i] = i;
    }
    qsort(idx, (size_t)m, sizeof *idx, cmp_score);
    int k = 0;
    while (k < m) {
        cum += q[idx[k++]];
        if (cum > x->p->typical_p && k >= x->p->min_keep) break;
    }
    for (int i = 0; i < k; i++) tmp[i] = c[idx[i]];
    memcpy(c, tmp, (size_t)k * sizeof *c);
    return k;
}

static int ref_top_p(ref_ctx *x, smp_cand *c, int m) {
    if (x->p->top_p >= 1.0f) return m;
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    double sum = 0, cum = 0;
    for (int i = 0; i < m; i++) sum += exp((double)c[i].logit - c[0].logit);
    int i = 0;
    while (i < m) {
        cum += exp((double)c[i].logit - c[0].logit);
        i++;
        if (cum >= x->p->top_p * sum && i >= x->p->min_keep) break;
    }
    return i;
}

static int ref_min_p(ref_ctx *x, smp_cand *c, int m) {
    if (x->p->min_p <= 0.0f) return m;
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    int i = 1;
    while (i < m && (i < x->p->min_keep || exp((double)c[i].logit - c[0].logit) >= x->p->min_p))
        i++;
    return i;
}

/* XTC with chance 1: of the best candidates with p >= threshold, all but the
 * last go, unless fewer than min_keep would be left. */
static int ref_xtc(ref_ctx *x, smp_cand *c, int m) {
    if (x->p->xtc_probability <= 0 || x->p->xtc_threshold > 0.5f || m < 2) return m;
    static double q[N];
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    ref_probs(c, m, q);
    int above = 0;
    while (above < m && q[above] >= x->p->xtc_threshold) above++;
    if (above < 2 || m - (above - 1) < x->p->min_keep) return m;
    memmove(c, c + above - 1, (size_t)(m - above + 1) * sizeof *c);
    return m - above + 1;
}

/* The temperature, or the dynamic one: lo + (hi - lo) * (H / ln m)^e. */
static int ref_temperature(ref_ctx *x, smp_cand *c, int m) {
    const smp_params *p = x->p;
    double t = p->temperature;
    if (p->dynatemp_range > 0) {
        if (m <= 1) return m;
        static double q[N];
        ref_probs(c, m, q);
        double h = 0;
        for (int i = 0; i < m; i++)
            if (q[i] > 0) h -= q[i] * log(q[i]);
        const double lo = fmax(0.0, t - p->dynatemp_range), hi = t + p->dynatemp_range;
        t = lo + (hi - lo) * pow(h / log((double)m), p->dynatemp_exponent);
    }
    if (t <= 0) {
        qsort(c, (size_t)m, sizeof *c, cmp_ref);
        x->greedy = true;
        return 1;
    }
    for (int i = 0; i < m; i++) c[i].logit /= (float)t;
    return m;
}

typedef int (*ref_stage)(ref_ctx *, smp_cand *, int);
static const ref_stage ref_stages[SMP_STAGE_LAST + 1] = {
    [SMP_STAGE_PENALTIES] = ref_penalties,
    [SMP_STAGE_DRY] = ref_dry,
    [SMP_STAGE_TOP_N_SIGMA] = ref_top_n_sigma,
    [SMP_STAGE_TOP_K] = ref_top_k,
    [SMP_STAGE_TYPICAL_P] = ref_typical,
    [SMP_STAGE_TOP_P] = ref_top_p,
    [SMP_STAGE_MIN_P] = ref_min_p,
    [SMP_STAGE_XTC] = ref_xtc,
    [SMP_STAGE_TEMPERATURE] = ref_temperature,
};

/* The chain p says on lg; c[] by id, the kept count returned. */
static int ref_chain(const float *lg, ref_ctx *x, smp_cand *c) {
    for (int i = 0; i < N; i++) c[i] = (smp_cand){i, lg[i]};
    const uint8_t *st = x->p->stages;
    size_t n = x->p->n_stages > 0 ? (size_t)x->p->n_stages : 0;
    if (x->p->n_stages == 0) n = smp_default_stages(&st);
    int m = N;
    for (size_t i = 0; i < n; i++) m = ref_stages[st[i]](x, c, m);
    qsort(c, (size_t)m, sizeof *c, cmp_id);
    return m;
}

/* ---- the sampler against it ------------------------------------------------------------ */

static const int32_t history[] = {1, 2, 3, 1, 2};

/* A sampler for p that has accepted the history; counts[] its window. */
static smp_sampler *make_with_history(const smp_params *p, int32_t counts[N]) {
    smp_sampler *s = make(N, p);
    memset(counts, 0, N * sizeof *counts);
    for (size_t i = 0; i < sizeof history / sizeof *history; i++) {
        REQUIRE(smp_accept(s, history[i]) == HEARTH_OK);
        counts[history[i]]++;
    }
    return s;
}

/* Same ids; logits equal up to float rounding of the temperature. */
static bool same_kept(smp_cand *got, int n, const smp_cand *ref, int nr) {
    if (n != nr) return false;
    qsort(got, (size_t)n, sizeof *got, cmp_id);
    for (int i = 0; i < n; i++) {
        if (got[i].id != ref[i].id) return false;
        const double a = got[i].logit, b = ref[i].logit;
        if (!(fabs(a - b) <= 1e-5 * fmax(1.0, fabs(b)))) return false;
    }
    return true;
}

static void random_logits(float *lg, unsigned long long seed, float scale) {
    for (int i = 0; i < N; i++) lg[i] = test_rand_f(&seed) * scale;
}

static void describe(const smp_params *p, char *buf, size_t cap) {
    int at = snprintf(buf, cap, "[");
    for (int i = 0; i < p->n_stages && at < (int)cap; i++)
        at += snprintf(buf + at, cap - (size_t)at, "%s%s", i ? "," : "",
                       smp_stage_name(p->stages[i]));
    if (at < (int)cap)
        snprintf(buf + at, cap - (size_t)at,
                 "] t %.2f dyn %.2f^%.1f keep %d k %d p %.2f min_p %.2f typ %.2f sigma %.1f xtc "
                 "%.2f",
                 (double)p->temperature, (double)p->dynatemp_range, (double)p->dynatemp_exponent,
                 p->min_keep, p->top_k, (double)p->top_p, (double)p->min_p, (double)p->typical_p,
                 (double)p->top_n_sigma, (double)p->xtc_threshold);
}

static bool check_one(const float *lg, const smp_params *p) {
    static smp_cand got[N], ref[N];
    static int32_t counts[N];
    smp_sampler *s = make_with_history(p, counts);
    const int n = smp_candidates(s, lg, got, N);
    ref_ctx x = {.p = p, .counts = counts, .dry_token = 3};
    const int nr = ref_chain(lg, &x, ref);
    const bool ok = same_kept(got, n, ref, nr);
    char what[512];
    describe(p, what, sizeof what);
    CHECKF(ok, "%s: %d kept, reference %d", what, n, nr);
    smp_free(s);
    return ok;
}

static void test_random_chains(void) {
    static float lg[N];
    unsigned long long r = 99;
    const int keeps[] = {0, 1, 3, 40};
    const float temps[] = {0.0f, 0.6f, 1.0f, 1.7f};
    const float ranges[] = {0.0f, 0.0f, 0.3f, 1.5f};
    const float exps[] = {0.5f, 1.0f, 2.0f, 0.0f};
    int cases = 0, bad = 0, greedy = 0;
    for (int round = 0; round < 1500; round++) {
        if (round % 50 == 0) random_logits(lg, 7000 + (unsigned)round, round % 100 ? 3.0f : 9.0f);
        smp_params p = plain_params(5);
        p.penalty_last_n = 16;
        p.repeat_penalty = 1.3f;
        p.frequency_penalty = 0.2f;
        p.presence_penalty = 0.1f;
        p.dry_multiplier = 2.5f;
        p.dry_allowed_length = 2;
        p.min_keep = keeps[test_rand_u64(&r) % 4];
        p.temperature = temps[test_rand_u64(&r) % 4];
        p.dynatemp_range = ranges[test_rand_u64(&r) % 4];
        p.dynatemp_exponent = exps[test_rand_u64(&r) % 4];
        p.top_k = test_rand_u64(&r) % 2 ? 30 : 0;
        p.top_p = test_rand_u64(&r) % 2 ? 0.8f : 1.0f;
        p.min_p = test_rand_u64(&r) % 2 ? 0.1f : 0.0f;
        p.typical_p = test_rand_u64(&r) % 2 ? 0.7f : 1.0f;
        p.top_n_sigma = test_rand_u64(&r) % 2 ? 1.5f : -1.0f;
        p.xtc_probability = test_rand_u64(&r) % 2 ? 1.0f : 0.0f;
        p.xtc_threshold = test_rand_u64(&r) % 2 ? 0.02f : 0.1f;
        p.n_stages = 1 + (int32_t)(test_rand_u64(&r) % 12);
        for (int i = 0; i < p.n_stages; i++)
            p.stages[i] = (uint8_t)(SMP_STAGE_PENALTIES + test_rand_u64(&r) % SMP_STAGE_LAST);
        greedy += p.temperature == 0.0f && p.dynatemp_range == 0.0f;
        bad += !check_one(lg, &p);
        cases++;
    }
    printf("random chains vs reference: %d cases (%d at temperature 0), %d mismatches\n", cases,
           greedy, bad);
}

/* The default chain as n_stages 0 (shortcuts) and as its list (each stage
 * in turn): the same tokens for the same seed. */
static void test_default_as_list(void) {
    static float lg[N];
    random_logits(lg, 31, 4.0f);
    const float temps[] = {0.0f, 0.8f};
    int same = 0, total = 0;
    for (int c = 0; c < 32; c++) {
        smp_params a = smp_default_params();
        a.seed = 11;
        a.temperature = temps[c & 1];
        a.repeat_penalty = c & 2 ? 1.2f : 1.0f;
        a.typical_p = c & 4 ? 0.8f : 1.0f;
        a.dry_multiplier = c & 8 ? 1.0f : 0.0f;
        a.min_keep = c & 16 ? 5 : 0;
        a.xtc_probability = c & 4 ? 0.5f : 0.0f;
        smp_params b = a;
        const uint8_t *st;
        b.n_stages = (int32_t)smp_default_stages(&st);
        memcpy(b.stages, st, (size_t)b.n_stages);
        int32_t ca[N], cb[N];
        smp_sampler *sa = make_with_history(&a, ca), *sb = make_with_history(&b, cb);
        bool ok = true;
        for (int t = 0; t < 60; t++) {
            const int32_t x = smp_sample(sa, lg), y = smp_sample(sb, lg);
            ok = ok && x == y && x >= 0;
            smp_accept(sa, x);
            smp_accept(sb, y);
        }
        CHECKF(ok, "case %d: the default chain's list draws other tokens", c);
        same += ok;
        total++;
        smp_free(sa);
        smp_free(sb);
    }
    printf("default chain as a list: %d of %d configurations draw the same 60 tokens\n", same,
           total);
}

/* ---- hand-made values --------------------------------------------------------------------- */

static smp_params only(smp_stage stage, float temperature) {
    smp_params p = plain_params(3);
    p.temperature = temperature;
    p.n_stages = 1;
    p.stages[0] = (uint8_t)stage;
    return p;
}

static int kept(const smp_params *p, const float *lg, int n, smp_cand *out) {
    smp_sampler *s = make(n, p);
    const int k = smp_candidates(s, lg, out, n);
    smp_free(s);
    return k;
}

static void test_min_keep(void) {
    /* probabilities 0.6 0.2 0.1 0.05 0.05 */
    const double q[] = {0.6, 0.2, 0.1, 0.05, 0.05};
    float lg[5];
    for (int i = 0; i < 5; i++) lg[i] = (float)log(q[i]);
    smp_cand out[5];
    smp_params p = only(SMP_STAGE_TOP_P, 1.0f);
    p.top_p = 0.5f;
    CHECK(kept(&p, lg, 5, out) == 1);
    p.min_keep = 3;
    CHECK(kept(&p, lg, 5, out) == 3 && out[0].id == 0 && out[2].id == 2);
    p = only(SMP_STAGE_MIN_P, 1.0f);
    p.min_p = 0.5f; /* p >= 0.3: only the first */
    CHECK(kept(&p, lg, 5, out) == 1);
    p.min_keep = 4;
    CHECK(kept(&p, lg, 5, out) == 4 && out[3].id == 3); /* ties: the lower id */
    p.min_keep = 9;
    CHECK(kept(&p, lg, 5, out) == 5);
    p = only(SMP_STAGE_TYPICAL_P, 1.0f);
    p.typical_p = 0.1f; /* the most typical one alone exceeds 0.1 */
    CHECK(kept(&p, lg, 5, out) == 1);
    p.min_keep = 2;
    CHECK(kept(&p, lg, 5, out) == 2);
    p = only(SMP_STAGE_XTC, 1.0f);
    p.xtc_probability = 1.0f;
    p.xtc_threshold = 0.09f; /* 0.6, 0.2, 0.1 are above: the first two go, 3 left */
    CHECK(kept(&p, lg, 5, out) == 3 && out[0].id == 2);
    p.min_keep = 3;
    CHECK(kept(&p, lg, 5, out) == 3);
    p.min_keep = 4; /* fewer than 4 would be left: nothing goes */
    CHECK(kept(&p, lg, 5, out) == 5);
    /* top-k and top-n-sigma do not take it */
    p = only(SMP_STAGE_TOP_K, 1.0f);
    p.top_k = 2;
    p.min_keep = 4;
    CHECK(kept(&p, lg, 5, out) == 2);
    p = only(SMP_STAGE_TOP_N_SIGMA, 1.0f);
    p.top_n_sigma = 0.1f;
    p.min_keep = 4;
    CHECK(kept(&p, lg, 5, out) == 1);
}

static void test_dynatemp(void) {
    smp_cand out[8];
    /* uniform: normalized entropy 1, the temperature is t + range */
    const float flat[] = {2.0f, 2.0f, 2.0f, 2.0f};
    smp_params p = only(SMP_STAGE_TEMPERATURE, 0.5f);
    p.dynatemp_range = 0.25f;
    CHECK(kept(&p, flat, 4, out) == 4 && fabsf(out[0].logit - 2.0f / 0.75f) < 1e-6f);
    /* temperature 0 with a range samples at a uniform distribution ... */
    p.temperature = 0.0f;
    CHECK(kept(&p, flat, 4, out) == 4 && fabsf(out[0].logit - 2.0f / 0.25f) < 1e-6f);
    /* ... and is greedy at zero entropy (the others impossible), where lo = 0 */
    const float hot[] = {-INFINITY, 1.0f, -INFINITY};
    CHECK(kept(&p, hot, 3, out) == 1 && out[0].id == 1);
    p.temperature = 0.8f; /* lo = 0.55: divided by it, nothing dropped */
    CHECK(kept(&p, hot, 3, out) == 3 && fabsf(out[0].logit - 1.0f / 0.55f) < 1e-6f);
    /* two tokens at 0.9 / 0.1: H / ln 2 = 0.469; exponent 2 */
    const float two[] = {(float)log(0.9), (float)log(0.1)};
    p.temperature = 1.0f;
    p.dynatemp_range = 0.5f;
    p.dynatemp_exponent = 2.0f;
    const double h = -(0.9 * log(0.9) + 0.1 * log(0.1)) / log(2.0);
    const double t = 0.5 + 1.0 * pow(h, 2.0);
    CHECK(kept(&p, two, 2, out) == 2);
    CHECKF(fabs(out[0].logit - log(0.9) / t) < 1e-5, "%g vs %g", (double)out[0].logit,
           log(0.9) / t);
    /* off at range <= 0: the plain temperature (0: greedy) */
    p.dynatemp_range = -1.0f;
    p.temperature = 0.0f;
    CHECK(kept(&p, flat, 4, out) == 1 && out[0].id == 0);
    /* one candidate: left alone */
    p = only(SMP_STAGE_TEMPERATURE, 0.5f);
    p.dynatemp_range = 0.2f;
    CHECK(kept(&p, two, 1, out) == 1 && out[0].logit == two[0]);
}

static void test_chains_by_hand(void) {
    static float lg[N];
    static smp_cand out[N];
    random_logits(lg, 5, 2.0f);
    int32_t counts[N];
    /* no temperature stage: temperature 0 is not greedy, nothing divided */
    smp_params p = only(SMP_STAGE_TOP_K, 0.0f);
    p.top_k = 10;
    smp_sampler *s = make(N, &p);
    CHECK(smp_candidates(s, lg, out, N) == 10);
    int seen[N] = {0}, distinct = 0;
    for (int t = 0; t < 200; t++) {
        const int32_t id = smp_sample(s, lg);
        distinct += id >= 0 && !seen[id]++;
    }
    CHECKF(distinct > 3, "%d distinct tokens in 200 draws", distinct);
    smp_free(s);
    /* no stage at all: every token, its raw logit, sampled */
    p = plain_params(4);
    p.temperature = 0.0f;
    p.n_stages = SMP_STAGES_NONE;
    s = make(N, &p);
    CHECK(smp_candidates(s, lg, out, N) == N && out[0].logit == lg[out[0].id]);
    smp_free(s);
    /* penalties and DRY set but not in the chain: no effect */
    p = only(SMP_STAGE_TEMPERATURE, 1.0f);
    p.penalty_last_n = 8;
    p.repeat_penalty = 3.0f;
    p.dry_multiplier = 5.0f;
    s = make_with_history(&p, counts);
    CHECK(smp_candidates(s, lg, out, N) == N);
    qsort(out, N, sizeof *out, cmp_id);
    CHECK(out[1].logit == lg[1] && out[3].logit == lg[3]);
    smp_free(s);
    /* penalties after top-k (the default: before): another set survives */
    p = plain_params(4);
    p.top_k = 3;
    p.penalty_last_n = 8;
    p.repeat_penalty = 50.0f;
    float row[N];
    for (int i = 0; i < N; i++) row[i] = i < 4 ? 10.0f - (float)i : 0.5f;
    p.n_stages = 2;
    p.stages[0] = SMP_STAGE_TOP_K;
    p.stages[1] = SMP_STAGE_PENALTIES;
    s = make_with_history(&p, counts); /* 1, 2, 3 penalized: 9 -> 0.18 ... */
    CHECK(smp_candidates(s, row, out, N) == 3 && out[0].id == 0 && out[1].id == 1);
    smp_free(s);
    p.stages[0] = SMP_STAGE_PENALTIES;
    p.stages[1] = SMP_STAGE_TOP_K;
    s = make_with_history(&p, counts);
    CHECK(smp_candidates(s, row, out, N) == 3 && out[0].id == 0 && out[1].id == 4);
    smp_free(s);
    /* the classic chain top-k -> top-p -> min-p -> temperature as a list: the
     * fixture's reference of it */
    p = plain_params(4);
    p.top_k = 50;
    p.top_p = 0.9f;
    p.min_p = 0.02f;
    p.temperature = 0.7f;
    p.n_stages = 4;
    p.stages[0] = SMP_STAGE_TOP_K;
    p.stages[1] = SMP_STAGE_TOP_P;
    p.stages[2] = SMP_STAGE_MIN_P;
    p.stages[3] = SMP_STAGE_TEMPERATURE;
    static smp_cand ref[N];
    for (int i = 0; i < N; i++) ref[i] = (smp_cand){i, lg[i]};
    const int nr = ref_truncate(ref, N, &p);
    qsort(ref, (size_t)nr, sizeof *ref, cmp_id);
    s = make(N, &p);
    const int n = smp_candidates(s, lg, out, N);
    CHECK(nr > 1 && same_kept(out, n, ref, nr));
    smp_free(s);
    /* Mirostat replaces any chain: the same draws with or without one */
    for (int v = 1; v <= 2; v++) {
        smp_params a = plain_params(21);
        a.mirostat = v;
        smp_params b = a;
        b.n_stages = 1;
        b.stages[0] = SMP_STAGE_TOP_K;
        b.top_k = 1;
        smp_sampler *sa = make(N, &a), *sb = make(N, &b);
        bool same = true;
        for (int t = 0; t < 50; t++) same = same && smp_sample(sa, lg) == smp_sample(sb, lg);
        CHECK(same);
        smp_free(sa);
        smp_free(sb);
    }
}

/* ---- names, letters, validation ----------------------------------------------------------- */

static int by_name(const char *s) { return smp_stage_by_name(s, strlen(s)); }

static void test_names(void) {
    for (int st = SMP_STAGE_PENALTIES; st <= SMP_STAGE_LAST; st++)
        CHECK(by_name(smp_stage_name(st)) == st);
    CHECK(!strcmp(smp_stage_name(SMP_STAGE_TYPICAL_P), "typ_p"));
    CHECK(!strcmp(smp_stage_name(0), "?") && !strcmp(smp_stage_name(10), "?"));
    CHECK(by_name("top-k") == SMP_STAGE_TOP_K && by_name("topk") == SMP_STAGE_TOP_K &&
          by_name("TOP_K") == SMP_STAGE_TOP_K && by_name("Top-N-Sigma") == SMP_STAGE_TOP_N_SIGMA &&
          by_name("topnsigma") == SMP_STAGE_TOP_N_SIGMA);
    CHECK(by_name("nucleus") == SMP_STAGE_TOP_P && by_name("temp") == SMP_STAGE_TEMPERATURE &&
          by_name("typ") == SMP_STAGE_TYPICAL_P && by_name("typ-p") == SMP_STAGE_TYPICAL_P &&
          by_name("typical") == SMP_STAGE_TYPICAL_P &&
          by_name("typical_p") == SMP_STAGE_TYPICAL_P && by_name("minp") == SMP_STAGE_MIN_P);
    CHECK(by_name("infill") == SMP_STAGE_NOT_HERE && by_name("adaptive_p") == SMP_STAGE_NOT_HERE &&
          by_name("Adaptive-P") == SMP_STAGE_NOT_HERE);
    CHECK(by_name("") == SMP_STAGE_UNKNOWN && by_name("top__k") == SMP_STAGE_UNKNOWN &&
          by_name("top_k ") == SMP_STAGE_UNKNOWN && by_name("penalty") == SMP_STAGE_UNKNOWN &&
          by_name("temperaturetemperature") == SMP_STAGE_UNKNOWN &&
          smp_stage_by_name("top_k\0", 6) == SMP_STAGE_UNKNOWN);
    const char *letters = "edskypmxt";
    for (int i = 0; letters[i]; i++) CHECK(smp_stage_by_letter(letters[i]) == i + 1);
    CHECK(smp_stage_by_letter('i') == SMP_STAGE_NOT_HERE &&
          smp_stage_by_letter('a') == SMP_STAGE_NOT_HERE);
    CHECK(smp_stage_by_letter('K') == SMP_STAGE_UNKNOWN &&
          smp_stage_by_letter('z') == SMP_STAGE_UNKNOWN &&
          smp_stage_by_letter('\0') == SMP_STAGE_UNKNOWN);
}

static void test_invalid(void) {
    const char *fields[] = {"min_keep",           "dynatemp_range",     "dynatemp_exponent",
                            "number of samplers", "number of samplers", "samplers[1]",
                            "samplers[0]"};
    for (int i = 0; i < 7; i++) {
        smp_params p = plain_params(1);
        if (i == 0) p.min_keep = -1;
        if (i == 1) p.dynatemp_range = NAN;
        if (i == 2) p.dynatemp_exponent = INFINITY;
        if (i == 3) p.n_stages = SMP_STAGES_MAX + 1;
        if (i == 4) p.n_stages = -2;
        if (i == 5) p.n_stages = 2, p.stages[0] = SMP_STAGE_TOP_K, p.stages[1] = 10;
        if (i == 6) p.n_stages = 1, p.stages[0] = 0;
        smp_sampler *s = NULL;
        CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
        CHECKF(strstr(hearth_last_error(), fields[i]) != NULL, "%s: %s", fields[i],
               hearth_last_error());
    }
}

static void test_public_api(void) {
    hearth_sampling d = hearth_sampling_default_params();
    CHECK(d.min_keep == 0 && d.dynatemp_range == 0.0f && d.dynatemp_exponent == 1.0f &&
          d.n_samplers == 0);
    synth_model sm;
    hearth_model *m = synth_model_open(&sm);
    const char *fields[] = {"n_samplers", "n_samplers", "samplers[2]", "min_keep",
                            "dynatemp_exponent"};
    for (int i = 0; i < 5; i++) {
        hearth_sampling e = hearth_sampling_default_params();
        if (i == 0) e.n_samplers = HEARTH_SAMPLERS_MAX + 1;
        if (i == 1) e.n_samplers = -2;
        if (i == 2) {
            e.n_samplers = 3;
            e.samplers[0] = HEARTH_SAMPLER_STAGE_TOP_K;
            e.samplers[1] = HEARTH_SAMPLER_STAGE_TEMPERATURE;
            e.samplers[2] = (hearth_sampler_stage)42;
        }
        if (i == 3) e.min_keep = -3;
        if (i == 4) e.dynatemp_exponent = NAN;
        hearth_sampler *smp = NULL;
        CHECK(hearth_sampler_new(m, &e, &smp) == HEARTH_ERR_INVALID_ARG && !smp);
        CHECKF(strstr(hearth_last_error(), fields[i]) != NULL, "%s: %s", fields[i],
               hearth_last_error());
    }
    /* an order through the public API: no temperature stage, so no greedy */
    hearth_sampling o = hearth_sampling_default_params();
    o.temperature = 0.0f;
    o.n_samplers = 1;
    o.samplers[0] = HEARTH_SAMPLER_STAGE_TOP_K;
    o.top_k = 0;
    o.seed = 5;
    hearth_sampler *smp = NULL;
    CHECK(hearth_sampler_new(m, &o, &smp) == HEARTH_OK);
    hearth_sampler_free(smp);
    synth_model_close(&sm);
}

int main(void) {
    test_names();
    test_invalid();
    test_min_keep();
    test_dynatemp();
    test_chains_by_hand();
    test_random_chains();
    test_default_as_list();
    test_public_api();
    return test_done("test_sampler_order");
}
