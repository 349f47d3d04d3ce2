/*
 * test_sampler_extra.c - llama.cpp's other samplers in the sampling layer and
 * the public API: top-n-sigma, typical, XTC and Mirostat (1 and 2), each
 * against a plain reference written here from the algorithm's definition
 * (full sort, probabilities in double) on random logits, in the chain's
 * order with the other stages; the draws' frequencies against the kept set's
 * renormalized probabilities (chi-square bounds, fixed seeds); greedy with
 * stages that may drop the argmax; Mirostat's mu carried across draws and
 * reset; the validation of every setting; and ignore_eos on a small model.
 * DRY is test_sampler_dry.c's.
 */
#include "engine/engine.h"
#include "sampler_fixture.h"
#include "sampling/sampling.h"
#include "synth_model.h"
#include "test.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* ---- the reference -------------------------------------------------------------- */

static int cmp_id(const void *a, const void *b) {
    const smp_cand *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Softmax of c[0..m) (any order) into p[], in double. */
static void ref_softmax(const smp_cand *c, int m, double *p) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < m; i++) max = c[i].logit > max ? c[i].logit : max;
    for (int i = 0; i < m; i++) sum += p[i] = exp((double)c[i].logit - max);
    for (int i = 0; i < m; i++) p[i] /= sum;
}

/* top-n-sigma: keep logit >= max - n * sigma over the finite logits. */
static int ref_top_n_sigma(smp_cand *c, int m, float n) {
    if (n <= 0 || m <= 1) return m;
    double max = -INFINITY, sum = 0, acc = 0;
    int valid = 0;
    for (int i = 0; i < m; i++)
        if (c[i].logit != -INFINITY) {
            max = c[i].logit > max ? c[i].logit : max;
            sum += c[i].logit;
            valid++;
        }
    if (!valid) return m;
    const double mean = sum / valid;
    for (int i = 0; i < m; i++)
        if (c[i].logit != -INFINITY) acc += (c[i].logit - mean) * (c[i].logit - mean);
    const float thr = (float)(max - n * sqrt(acc / valid));
    int w = 0;
    for (int i = 0; i < m; i++)
        if (c[i].logit >= thr) c[w++] = c[i];
    return w;
}

/* typical: by |-ln p - H| (then logit, then id), the shortest prefix whose
 * probability exceeds p. */
static double g_score[4096];
static int cmp_score(const void *a, const void *b) {
    const int x = *(const int *)a, y = *(const int *)b;
    if (g_score[x] != g_score[y]) return g_score[x] < g_score[y] ? -1 : 1;
    return x < y ? -1 : (x > y); /* the candidates are sorted best first already */
}
static int ref_typical(smp_cand *c, int m, float tp) {
    if (tp >= 1.0f) return m;
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    static double p[4096];
    static int idx[4096];
    static smp_cand tmp[4096];
    ref_softmax(c, m, p);
    double h = 0;
    for (int i = 0; i < m; i++)
        if (p[i] > 0) h -= p[i] * log(p[i]);
    for (int i = 0; i < m; i++) {
        g_score[i] = p[i] > 0 ? fabs(-log(p[i]) - h) : INFINITY;
        idx[i] = i;
    }
    qsort(idx, (size_t)m, sizeof *idx, cmp_score);
    double cum = 0;
    int k = 0;
    while (k < m) {
        cum += p[idx[k++]];
        if (cum > tp) break;
    }
    for (int i = 0; i < k; i++) tmp[i] = c[idx[i]];
    memcpy(c, tmp, (size_t)k * sizeof *c);
    return k;
}

/* XTC applied: of the best candidates with p >= t, all but the last go. */
static int ref_xtc(smp_cand *c, int m, float t) {
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    static double p[4096];
    ref_softmax(c, m, p);
    int above = 0;
    while (above < m && p[above] >= t) above++;
    if (above < 2) return m;
    memmove(c, c + above - 1, (size_t)(m - above + 1) * sizeof *c);
    return m - above + 1;
}

/* The whole chain but Mirostat and DRY, in llama.cpp's order; xtc: whether
 * XTC's chance came up. Returns the kept count, c[] by id. */
static int ref_chain_extra(const float *lg, int n, const smp_params *p, bool xtc, smp_cand *c) {
    for (int i = 0; i < n; i++) c[i] = (smp_cand){i, lg[i]};
    int m = ref_top_n_sigma(c, n, p->top_n_sigma);
    qsort(c, (size_t)m, sizeof *c, cmp_ref);
    if (p->top_k > 0 && p->top_k < m) m = p->top_k;
    m = ref_typical(c, m, p->typical_p);
    smp_params rest = *p;
    rest.top_k = 0;
    rest.temperature = 1.0f;
    m = ref_truncate(c, m, &rest); /* top-p, min-p */
    if (xtc && m >= 2) m = ref_xtc(c, m, p->xtc_threshold);
    if (p->temperature > 0)
        for (int i = 0; i < m; i++) c[i].logit /= p->temperature;
    qsort(c, (size_t)m, sizeof *c, cmp_id);
    return m;
}

static bool same_set(smp_cand *got, int n, const smp_cand *ref, int nr) {
    if (n != nr) return false;
    qsort(got, (size_t)n, sizeof *got, cmp_id);
    for (int i = 0; i < n; i++)
        if (got[i].id != ref[i].id || got[i].logit != ref[i].logit) return false;
    return true;
}

static void random_logits(float *lg, int n, unsigned long long seed, float scale) {
    for (int i = 0; i < n; i++) lg[i] = test_rand_f(&seed) * scale;
}

/* Chi-square of counts[0..n) against probabilities q (those with q = 0 must
 * have no draws: returned as +inf otherwise). */
static double chi_square(const int *counts, const double *q, int n, int draws) {
    double chi2 = 0;
    for (int i = 0; i < n; i++) {
        if (q[i] <= 0) {
            if (counts[i]) return INFINITY;
            continue;
        }
        const double e = q[i] * draws;
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi2;
}

/* The draws of s on lg against the kept set's renormalized probabilities
 * (ref, by id, logits after temperature): chi-square below bound. */
static void check_draws(smp_sampler *s, const float *lg, int n, const smp_cand *ref, int nr,
                        int draws, double bound, const char *what) {
    static double q[4096];
    static int counts[4096];
    memset(q, 0, sizeof q);
    memset(counts, 0, sizeof counts);
    smp_cand tmp[4096];
    memcpy(tmp, ref, (size_t)nr * sizeof *ref);
    double pr[4096];
    ref_softmax(tmp, nr, pr);
    for (int i = 0; i < nr; i++) q[tmp[i].id] = pr[i];
    for (int t = 0; t < draws; t++) counts[smp_sample(s, lg)]++;
    const double chi2 = chi_square(counts, q, n, draws);
    CHECKF(chi2 < bound, "%s: chi-square %.1f over %d kept (bound %.0f)", what, chi2, nr, bound);
}

/* ---- top-n-sigma, typical, in the chain ------------------------------------------ */

enum { CHAIN_N = 600 };

/* One configuration: the sampler's candidates against the reference's;
 * counts the cases and mismatches. */
static void check_chain(const float *lg, const smp_params *p, bool xtc, int *cases,
                        int *mismatches) {
    static smp_cand got[CHAIN_N], ref[CHAIN_N];
    smp_sampler *s = make(CHAIN_N, p);
    const int n = smp_candidates(s, lg, got, CHAIN_N);
    const int nr = ref_chain_extra(lg, CHAIN_N, p, xtc, ref);
    const bool ok = same_set(got, n, ref, nr);
    *mismatches += !ok;
    ++*cases;
    CHECKF(ok,
           "sigma %.1f typical %.2f k %d top_p %.1f min_p %.2f xtc %.2f/%.2f: %d kept, "
           "reference %d",
           (double)p->top_n_sigma, (double)p->typical_p, p->top_k, (double)p->top_p,
           (double)p->min_p, (double)p->xtc_probability, (double)p->xtc_threshold, n, nr);
    smp_free(s);
}

static void test_chain_vs_reference(void) {
    static float lg[CHAIN_N];
    const float sigmas[] = {-1.0f, 0.5f, 1.0f, 2.5f};
    const float typs[] = {1.0f, 0.2f, 0.5f, 0.95f};
    const float temps[] = {1.0f, 0.7f};
    int cases = 0, mismatches = 0;
    for (int r = 0; r < 3; r++) {
        random_logits(lg, CHAIN_N, 1000 + (unsigned)r, r == 2 ? 12.0f : 4.0f);
        if (r == 1) /* some impossible tokens: top-n-sigma skips them, typical's p is 0 */
            for (int i = 0; i < CHAIN_N; i += 7) lg[i] = -INFINITY;
        for (int c = 0; c < 4 * 4 * 8; c++) {
            smp_params p = plain_params(7);
            p.top_n_sigma = sigmas[c % 4];
            p.typical_p = typs[c / 4 % 4];
            p.top_k = c & 16 ? 40 : 0;
            p.top_p = c & 32 ? 0.9f : 1.0f;
            p.min_p = c & 64 ? 0.05f : 0.0f;
            p.temperature = temps[(c + c / 4) % 2];
            check_chain(lg, &p, false, &cases, &mismatches);
        }
    }
    /* XTC always on (its chance is 1), after the rest of the chain */
    const float xts[] = {0.0f, 0.01f, 0.05f, 0.2f, 0.5f};
    for (int r = 0; r < 2; r++) {
        random_logits(lg, CHAIN_N, 2000 + (unsigned)r, r ? 8.0f : 3.0f);
        for (int c = 0; c < 5 * 4; c++) {
            smp_params p = plain_params(8);
            p.xtc_probability = 1.0f;
            p.xtc_threshold = xts[c % 5];
            p.top_k = c / 5 & 1 ? 40 : 0;
            p.min_p = c / 5 & 2 ? 0.02f : 0.0f;
            p.typical_p = c / 5 == 3 ? 0.9f : 1.0f;
            check_chain(lg, &p, true, &cases, &mismatches);
        }
    }
    printf("chain vs reference: %d cases, %d mismatches\n", cases, mismatches);
}

/* XTC's hand-made row: probabilities {0.5, 0.3, 0.1, 0.1}. */
static void xtc_row(float x[4]) {
    const double p[] = {0.5, 0.3, 0.1, 0.1};
    for (int i = 0; i < 4; i++) x[i] = (float)log(p[i]);
}

static smp_params xtc_params(uint64_t seed, float probability, float threshold) {
    smp_params p = plain_params(seed);
    p.xtc_probability = probability;
    p.xtc_threshold = threshold;
    return p;
}

/* Hand-made cases whose answers are known without the reference. */
static void test_known_values(void) {
    /* top-n-sigma: logits 0, 1, 2, 3, 10: mean 3.2, sigma 3.54; n = 1 keeps
     * >= 10 - 3.54 = 6.46: only token 4; n = 3 keeps >= -0.62: all. */
    const float five[] = {0.0f, 1.0f, 2.0f, 3.0f, 10.0f};
    smp_params p = plain_params(1);
    p.top_n_sigma = 1.0f;
    smp_sampler *s = make(5, &p);
    smp_cand c[5];
    CHECK(smp_candidates(s, five, c, 5) == 1 && c[0].id == 4);
    smp_free(s);
    p.top_n_sigma = 3.0f;
    s = make(5, &p);
    CHECK(smp_candidates(s, five, c, 5) == 5);
    smp_free(s);
    p.top_n_sigma = 2.5f; /* >= 1.15 with the population's sigma (the sample's: 0.1) */
    s = make(5, &p);
    CHECK(smp_candidates(s, five, c, 5) == 3 && c[2].id == 2);
    smp_free(s);

    /* typical: p = {0.5, 0.25, 0.125, 0.125}: H = 1.75 bits = 1.213 nats;
     * |-ln p - H|: 0.52, 0.17, 0.87, 0.87: the most typical is token 1
     * (p 0.25), then 0 (0.75 in all), then 2 and 3 (a tie: the lower id). */
    const float q[] = {logf(0.5f), logf(0.25f), logf(0.125f), logf(0.125f)};
    const struct {
        float tp;
        int kept;
        int ids[4];
    } cases[] = {{0.2f, 1, {1}}, {0.3f, 2, {0, 1}}, {0.74f, 2, {0, 1}}, {0.8f, 3, {0, 1, 2}}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        p = plain_params(1);
        p.typical_p = cases[i].tp;
        s = make(4, &p);
        const int n = smp_candidates(s, q, c, 4);
        qsort(c, (size_t)n, sizeof *c, cmp_id);
        bool ok = n == cases[i].kept;
        for (int j = 0; ok && j < n; j++) ok = c[j].id == cases[i].ids[j];
        CHECKF(ok, "typical %.2f kept %d", (double)cases[i].tp, n);
        /* greedy: the best the chain keeps, which is not the argmax at 0.2 */
        smp_free(s);
        p.temperature = 0.0f;
        s = make(4, &p);
        CHECK(smp_sample(s, q) == (cases[i].tp == 0.2f ? 1 : 0));
        smp_free(s);
    }

    /* XTC always on, threshold 0.2 over {0.5, 0.3, 0.1, 0.1}: 0 goes. */
    float x[4];
    xtc_row(x);
    p = xtc_params(1, 1.0f, 0.2f);
    s = make(4, &p);
    CHECK(smp_candidates(s, x, c, 4) == 3 && c[0].id == 1);
    smp_free(s);
    p.xtc_threshold = 0.35f; /* only one above: nothing goes */
    s = make(4, &p);
    CHECK(smp_candidates(s, x, c, 4) == 4);
    smp_free(s);
    p.xtc_threshold = 0.51f; /* > 0.5: off */
    p.temperature = 0.0f;
    s = make(4, &p);
    CHECK(smp_sample(s, x) == 0);
    smp_free(s);
    p.xtc_threshold = 0.2f; /* greedy after XTC: the best left */
    s = make(4, &p);
    CHECK(smp_sample(s, x) == 1);
    smp_free(s);
}

/* ---- draws ------------------------------------------------------------------------- */

static void test_draws(void) {
    enum { N = 64, DRAWS = 40000 };
    float lg[N];
    random_logits(lg, N, 77, 3.0f);
    smp_cand ref[N];
    /* typical and top-n-sigma: the draws follow the kept set's softmax */
    smp_params p = plain_params(11);
    p.typical_p = 0.6f;
    p.top_n_sigma = 1.5f;
    p.temperature = 0.8f;
    smp_sampler *s = make(N, &p);
    int nr = ref_chain_extra(lg, N, &p, false, ref);
    /* chi-square with nr - 1 degrees of freedom: far below 2 * nr + 40 */
    check_draws(s, lg, N, ref, nr, DRAWS, 2.0 * nr + 40, "typical + top-n-sigma");
    smp_free(s);

    /* XTC with chance 0.3 over {0.5, 0.3, 0.1, 0.1}, threshold 0.2: the
     * mixture 0.7 * p + 0.3 * p(without token 0) = {0.35, 0.39, 0.13, 0.13}. */
    float x[4];
    xtc_row(x);
    p = xtc_params(12, 0.3f, 0.2f);
    s = make(4, &p);
    const double want[] = {0.35, 0.39, 0.13, 0.13};
    int counts[4] = {0};
    for (int t = 0; t < DRAWS; t++) counts[smp_sample(s, x)]++;
    const double chi2 = chi_square(counts, want, 4, DRAWS);
    CHECKF(chi2 < 25.0, "XTC mixture: chi-square %.1f (%d %d %d %d)", chi2, counts[0], counts[1],
           counts[2], counts[3]);
    /* the candidates peek at XTC's chance without consuming it: twice the
     * same, and the next draw agrees with it */
    smp_cand c1[4], c2[4];
    for (int t = 0; t < 200; t++) {
        const int n1 = smp_candidates(s, x, c1, 4), n2 = smp_candidates(s, x, c2, 4);
        CHECK(n1 == n2 && c1[0].id == c2[0].id);
        const int id = smp_sample(s, x);
        CHECK(n1 == 4 || id != 0);
    }
    smp_free(s);

    /* XTC on does not move the draws of a row where it never applies */
    p = plain_params(13);
    smp_sampler *plain = make(N, &p);
    p.xtc_probability = 0.5f;
    p.xtc_threshold = 0.5f; /* two tokens at p >= 0.5 cannot both exist here */
    s = make(N, &p);
    bool same = true;
    for (int t = 0; t < 500; t++) same &= smp_sample(s, lg) == smp_sample(plain, lg);
    CHECK(same);
    smp_free(s);
    smp_free(plain);
}

/* ---- Mirostat -------------------------------------------------------------------------- */

/* The kept set for mu (c[] best first, logits after temperature). */
static int ref_mirostat(const float *lg, int n, int version, double mu, float temp, smp_cand *c) {
    for (int i = 0; i < n; i++) c[i] = (smp_cand){i, lg[i] / temp};
    qsort(c, (size_t)n, sizeof *c, cmp_ref);
    static double p[4096];
    ref_softmax(c, n, p);
    int k;
    if (version == 1) {
        double num = 0, den = 0;
        for (int i = 0; i < 99 && i < n - 1; i++) {
            const double t = log((i + 2.0) / (i + 1.0)), b = log(p[i] / p[i + 1]);
            num += t * b;
            den += t * t;
        }
        const double sh = num / den, e = sh - 1;
        const double kk = pow(e * pow(2, mu) / (1 - pow(n, -e)), 1 / sh);
        k = kk < 1 ? 1 : kk > n ? n : (int)kk;
    } else {
        k = 0;
        while (k < n && -log2(p[k]) <= mu) k++;
        if (k == 0) k = 1;
    }
    return k;
}

static double kept_p(const smp_cand *c, int k, int id) {
    double pr[4096];
    smp_cand tmp[4096];
    memcpy(tmp, c, (size_t)k * sizeof *c);
    ref_softmax(tmp, k, pr);
    for (int i = 0; i < k; i++)
        if (tmp[i].id == id) return pr[i];
    return 0;
}

static void test_mirostat(void) {
    enum { N = 300, STEPS = 3000 };
    static float lg[N];
    static smp_cand got[N], ref[N];
    for (int version = 1; version <= 2; version++) {
        smp_params p = plain_params(21);
        p.mirostat = version;
        p.mirostat_tau = 3.0f;
        p.mirostat_eta = 0.1f;
        p.temperature = 0.9f;
        p.top_k = 5; /* ignored under Mirostat, as the penalties are */
        p.repeat_penalty = 1.5f;
        p.penalty_last_n = 64;
        smp_sampler *s = make(N, &p);
        double mu = 2.0 * p.mirostat_tau, surprise = 0;
        int mismatches = 0, first_kept = 0;
        for (int t = 0; t < STEPS; t++) {
            random_logits(lg, N, 5000 + (unsigned)t, 5.0f);
            const int n = smp_candidates(s, lg, got, N);
            const int k = ref_mirostat(lg, N, version, mu, p.temperature, ref);
            if (t == 0) first_kept = k;
            qsort(ref, (size_t)k, sizeof *ref, cmp_id);
            mismatches += !same_set(got, n, ref, k);
            const int id = smp_sample(s, lg);
            REQUIRE(id >= 0);
            smp_accept(s, id); /* would be penalized without Mirostat */
            const double pid = kept_p(ref, k, id);
            CHECK(pid > 0); /* drawn from the kept set */
            surprise += -log2(pid);
            mu -= p.mirostat_eta * (-log2(pid) - p.mirostat_tau);
        }
        CHECKF(mismatches == 0, "mirostat %d: %d of %d steps kept another set", version, mismatches,
               STEPS);
        /* its purpose: the mean surprise is the target */
        CHECKF(fabs(surprise / STEPS - p.mirostat_tau) < 0.25, "mirostat %d: mean surprise %.3f",
               version, surprise / STEPS);
        /* reset: mu back to 2 tau */
        smp_reset(s);
        random_logits(lg, N, 5000, 5.0f);
        CHECK(smp_candidates(s, lg, got, N) == first_kept);
        smp_free(s);

        /* eta 0: mu stays 2 tau, the draws follow the kept set */
        p.mirostat_eta = 0.0f;
        p.mirostat_tau = 4.0f;
        s = make(N, &p);
        const int k = ref_mirostat(lg, N, version, 8.0, p.temperature, ref);
        qsort(ref, (size_t)k, sizeof *ref, cmp_id);
        check_draws(s, lg, N, ref, k, 40000, 2.0 * k + 40,
                    version == 1 ? "mirostat 1" : "mirostat 2");
        smp_free(s);
    }
}

/* ---- settings ------------------------------------------------------------------------- */

static void test_invalid(void) {
    static const char *const fields[] = {
        "typical_p", "top_n_sigma",        "xtc_probability",    "xtc_threshold",
        "mirostat ", "mirostat_tau",       "mirostat_eta",       "dry_multiplier",
        "dry_base",  "dry_allowed_length", "dry_penalty_last_n",
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        smp_params p = plain_params(1);
        switch (i) {
        case 0: p.typical_p = 1.5f; break;
        case 1: p.top_n_sigma = NAN; break;
        case 2: p.xtc_probability = -0.1f; break;
        case 3: p.xtc_threshold = 2.0f; break;
        case 4: p.mirostat = 3; break;
        case 5: p.mirostat_tau = -1.0f; break;
        case 6: p.mirostat_eta = INFINITY; break;
        case 7: p.dry_multiplier = -1.0f; break;
        case 8: p.dry_base = 0.5f; break;
        case 9: p.dry_allowed_length = -1; break;
        default: p.dry_penalty_last_n = -1; break;
        }
        smp_sampler *s = NULL;
        CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
        CHECKF(strstr(hearth_last_error(), fields[i]) != NULL, "%s: %s", fields[i],
               hearth_last_error());
    }
    smp_params d = smp_default_params(); /* off by default, llama.cpp's knobs */
    CHECK(d.typical_p == 1.0f && d.top_n_sigma == -1.0f && d.xtc_probability == 0.0f &&
          d.xtc_threshold == 0.1f && d.mirostat == 0 && d.mirostat_tau == 5.0f &&
          d.mirostat_eta == 0.1f && d.dry_multiplier == 0.0f && d.dry_base == 1.75f &&
          d.dry_allowed_length == 2 && d.dry_penalty_last_n == 64);
}

/* ---- the public API: ignore_eos, defaults, validation ------------------------------------ */

typedef struct gen_ids {
    int32_t ids[64];
    int n;
    bool eog_seen;
    const hearth_model *m;
} gen_ids;

static bool collect(const hearth_token_event *ev, void *user) {
    gen_ids *g = user;
    if (ev->id >= 0 && g->n < 64) g->ids[g->n++] = ev->id;
    if (ev->id >= 0 && hearth_token_is_eog(g->m, ev->id)) g->eog_seen = true;
    return true;
}

static hearth_gen_result generate(hearth_model *m, const hearth_sampling *sp, gen_ids *out) {
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(m, sp, &smp) == HEARTH_OK);
    const int32_t prompt[] = {1, 5, 9, 12};
    hearth_gen_params gp = {.max_tokens = 12};
    hearth_gen_result r;
    memset(out, 0, sizeof *out);
    out->m = m;
    REQUIRE(hearth_generate(s, smp, prompt, 4, &gp, collect, out, &r) == HEARTH_OK);
    hearth_sampler_free(smp);
    hearth_session_free(s);
    return r;
}

static void test_public_api(void) {
    synth_model sm;
    hearth_model *m = synth_model_open(&sm);
    const int32_t n_vocab = hearth_model_n_vocab(m);

    hearth_sampling d = hearth_sampling_default_params();
    CHECK(!d.ignore_eos && d.typical_p == 1.0f && d.top_n_sigma < 0 && d.xtc_probability == 0 &&
          d.xtc_threshold == 0.1f && d.mirostat == 0 && d.mirostat_tau == 5.0f &&
          d.mirostat_eta == 0.1f && d.dry_multiplier == 0 && d.dry_base == 1.75f &&
          d.dry_allowed_length == 2 && d.dry_penalty_last_n == 64 && !d.dry_sequence_breakers);

    /* an end-of-generation token forced by a bias ends at once ... */
    d.temperature = 0.0f;
    const int32_t eos = hearth_token_eos(m);
    REQUIRE(eos >= 0);
    hearth_logit_bias force = {eos, 100.0f};
    d.logit_bias = &force;
    d.n_logit_bias = 1;
    gen_ids g;
    hearth_gen_result r = generate(m, &d, &g);
    CHECK(r.finish == HEARTH_FINISH_STOP && r.n_gen <= 1);
    /* ... and with ignore_eos never comes: the generation runs to max_tokens */
    d.ignore_eos = true;
    r = generate(m, &d, &g);
    CHECKF(r.finish == HEARTH_FINISH_LENGTH && r.n_gen == 12 && !g.eog_seen, "finish %d n_gen %d",
           (int)r.finish, r.n_gen);
    /* the same text as banning every end-of-generation token by hand */
    static hearth_logit_bias bans[1 << 16];
    size_t nb = 0;
    for (int32_t i = 0; i < n_vocab && nb < sizeof bans / sizeof *bans; i++)
        if (hearth_token_is_eog(m, i)) bans[nb++] = (hearth_logit_bias){i, -INFINITY};
    hearth_sampling b = hearth_sampling_default_params();
    b.temperature = 0.0f;
    b.logit_bias = bans;
    b.n_logit_bias = nb;
    gen_ids g2;
    generate(m, &b, &g2);
    CHECK(g.n == g2.n && !memcmp(g.ids, g2.ids, (size_t)g.n * sizeof *g.ids));

    /* every setting refused by name through the public API too */
    hearth_sampler *smp = NULL;
    const char *fields[] = {"typical_p",
                            "xtc_threshold",
                            "mirostat",
                            "dry_base",
                            "dry_penalty_last_n",
                            "dry_sequence_breakers[1]",
                            "dry_sequence_breakers"};
    const char *empty_one[] = {"\n", ""};
    static const char *many[65];
    for (int i = 0; i < 65; i++) many[i] = ":";
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        hearth_sampling e = hearth_sampling_default_params();
        e.dry_multiplier = i >= 5 ? 0.8f : 0.0f;
        if (i == 0) e.typical_p = -0.5f;
        if (i == 1) e.xtc_threshold = 1.5f;
        if (i == 2) e.mirostat = -1;
        if (i == 3) e.dry_base = 0.9f, e.dry_multiplier = 1.0f;
        if (i == 4) e.dry_penalty_last_n = -2;
        if (i == 5) e.dry_sequence_breakers = empty_one, e.n_dry_sequence_breakers = 2;
        if (i == 6) e.dry_sequence_breakers = many, e.n_dry_sequence_breakers = 65;
        CHECK(hearth_sampler_new(m, &e, &smp) == HEARTH_ERR_INVALID_ARG && !smp);
        CHECKF(strstr(hearth_last_error(), fields[i]) != NULL, "%s: %s", fields[i],
               hearth_last_error());
    }
    synth_model_close(&sm);
}

/* Every stage on: a draw allocates nothing. */
static void test_no_alloc(void) {
#if defined(__GLIBC__) && defined(__GLIBC_MINOR__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    enum { N = 20000 };
    static float lg[N];
    random_logits(lg, N, 4, 5.0f);
    const smp_dry_breaker brk = {.head = 3, .n_tail = 1, .tail = {4}};
    for (int mirostat = 0; mirostat <= 2; mirostat++) {
        smp_params p = smp_default_params();
        p.seed = 3;
        p.top_k = 0;
        p.typical_p = 0.9f;
        p.top_n_sigma = 2.0f;
        p.xtc_probability = 0.5f;
        p.dry_multiplier = 0.8f;
        p.dry_breakers = &brk;
        p.n_dry_breakers = 1;
        p.mirostat = mirostat;
        smp_sampler *s = make(N, &p);
        for (int t = 0; t < 5; t++) smp_accept(s, smp_sample(s, lg)); /* warm-up */
        struct mallinfo2 before = mallinfo2();
        for (int t = 0; t < 40; t++) smp_accept(s, t % 3 ? smp_sample(s, lg) : t % 7);
        struct mallinfo2 after = mallinfo2();
        CHECK(before.uordblks == after.uordblks && before.hblkhd == after.hblkhd);
        smp_free(s);
    }
#endif
}

int main(void) {
    test_known_values();
    test_chain_vs_reference();
    test_draws();
    test_mirostat();
    test_invalid();
    test_public_api();
    test_no_alloc();
    return test_done("test_sampler_extra");
}
