/*
 * router_metrics.c - RouteLLM's measures of a router (Ong et al., "RouteLLM:
 * Learning to Route LLMs with Preference Data", 2024, section 5.1, and
 * routellm/evals/evaluate.py): the cost curve of quality against the share of
 * strong calls, PGR, APGR, CPT(x %), and the threshold calibration.
 *
 * The curve: sort queries by score, highest first; sending the top share x to
 * the strong tier gives quality(x) = mean(strong_ok over the top, weak_ok over
 * the rest). Queries with equal scores cannot be told apart by a threshold, so
 * the curve has a point only where the score changes and is linear between
 * points (the expected quality when ties are broken at random).
 */
#include "router_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct scored {
    double s;
    int gain; /* strong_ok - weak_ok */
} scored;

static int cmp_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

/* The PGR curve at x: linear interpolation on points (xs, ps). */
static double interp(const double *xs, const double *ps, size_t n, double x) {
    if (x <= xs[0]) return ps[0];
    for (size_t j = 1; j < n; j++)
        if (x <= xs[j])
            return xs[j] > xs[j - 1]
                       ? ps[j - 1] + (ps[j] - ps[j - 1]) * (x - xs[j - 1]) / (xs[j] - xs[j - 1])
                       : ps[j];
    return ps[n - 1];
}

/* The smallest x where the curve reaches `target` (NaN if it never does). */
static double first_cross(const double *xs, const double *ps, size_t n, double target) {
    if (ps[0] >= target) return xs[0];
    for (size_t j = 1; j < n; j++)
        if (ps[j] >= target)
            return xs[j - 1] + (xs[j] - xs[j - 1]) * (target - ps[j - 1]) / (ps[j] - ps[j - 1]);
    return NAN;
}

/* numpy.quantile's default (linear) on sorted ascending values. */
static double quantile(const double *asc, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return asc[n - 1];
    return asc[i] + (asc[i + 1] - asc[i]) * (pos - (double)i);
}

/* RouteLLM's own APGR: 11 thresholds at the score deciles (score >= t, the
 * last > t), trapezoid over the strong shares they give. */
static double apgr_routellm(const scored *q, size_t n, double qw, double qs) {
    double *asc = malloc(n * sizeof *asc);
    if (!asc) return NAN;
    for (size_t i = 0; i < n; i++) asc[n - 1 - i] = q[i].s;
    double xs[11], ys[11];
    for (int t = 0; t <= 10; t++) {
        double th = quantile(asc, n, t / 10.0);
        size_t k = 0;
        long gain = 0;
        for (size_t i = 0; i < n; i++)
            if (t < 10 ? q[i].s >= th : q[i].s > th) k++, gain += q[i].gain;
        xs[t] = (double)k / (double)n;
        ys[t] = qw + (double)gain / (double)n;
    }
    free(asc);
    /* thresholds rise with t, so the shares fall: integrate from the end */
    double auc = 0, lo = xs[10], hi = xs[0];
    for (int t = 10; t > 0; t--) auc += (xs[t - 1] - xs[t]) * (ys[t - 1] + ys[t]) / 2;
    double width = hi - lo;
    return width > 0 ? (auc - qw * width) / ((qs - qw) * width) : NAN;
}

hearth_err rtr_metrics_compute(const double *scores, const bool *weak_ok, const bool *strong_ok,
                               size_t n, rtr_metrics *out) {
    if (n == 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "router metrics: no queries");
    size_t nw = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(scores[i]))
            return hr_fail(HEARTH_ERR_INVALID_ARG, "router metrics: score %zu is not finite", i);
        nw += weak_ok[i];
        ns += strong_ok[i];
    }
    if (ns <= nw)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "router metrics: the strong tier (%zu right) is not better than the weak "
                       "one (%zu right) on these %zu queries; PGR is undefined",
                       ns, nw, n);
    scored *q = malloc(n * sizeof *q);
    double *xs = malloc((n + 1) * sizeof *xs), *ps = malloc((n + 1) * sizeof *ps);
    if (!q || !xs || !ps) {
        free(q), free(xs), free(ps);
        return hr_fail(HEARTH_ERR_NOMEM, "router metrics: out of memory");
    }
    for (size_t i = 0; i < n; i++) q[i] = (scored){scores[i], (int)strong_ok[i] - weak_ok[i]};
    qsort(q, n, sizeof *q, cmp_desc);
    double qw = (double)nw / (double)n, qs = (double)ns / (double)n, gap = qs - qw;
    size_t m = 0;
    long gain = 0;
    xs[m] = 0, ps[m++] = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && q[j].s == q[i].s) gain += q[j++].gain;
        xs[m] = (double)j / (double)n;
        ps[m++] = (double)gain / (double)n / gap;
        i = j;
    }
    rtr_metrics r = {.n = n, .weak_quality = qw, .strong_quality = qs};
    for (size_t j = 1; j < m; j++) r.apgr += (xs[j] - xs[j - 1]) * (ps[j] + ps[j - 1]) / 2;
    for (int t = 0; t <= 10; t++) r.pgr_at[t] = interp(xs, ps, m, t / 10.0);
    r.cpt50 = first_cross(xs, ps, m, 0.5);
    r.cpt80 = first_cross(xs, ps, m, 0.8);
    double x95 = first_cross(xs, ps, m, (0.95 * qs - qw) / gap);
    r.local_at_95 = isnan(x95) ? NAN : 1 - x95;
    r.apgr_routellm = apgr_routellm(q, n, qw, qs);
    free(q), free(xs), free(ps);
    *out = r;
    return HEARTH_OK;
}

void rtr_metrics_random(const bool *weak_ok, const bool *strong_ok, size_t n, rtr_metrics *out) {
    size_t nw = 0, ns = 0;
    for (size_t i = 0; i < n; i++) nw += weak_ok[i], ns += strong_ok[i];
    double qw = n ? (double)nw / (double)n : 0, qs = n ? (double)ns / (double)n : 0;
    rtr_metrics r = {.n = n, .weak_quality = qw, .strong_quality = qs};
    r.apgr = r.apgr_routellm = 0.5;
    r.cpt50 = 0.5;
    r.cpt80 = 0.8;
    for (int t = 0; t <= 10; t++) r.pgr_at[t] = t / 10.0;
    double x95 = qs > qw ? (0.95 * qs - qw) / (qs - qw) : NAN;
    r.local_at_95 = isnan(x95) ? NAN : 1 - fmin(fmax(x95, 0), 1);
    *out = r;
}

hearth_err rtr_metrics_oracle(const bool *weak_ok, const bool *strong_ok, size_t n,
                              rtr_metrics *out) {
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return hr_fail(HEARTH_ERR_NOMEM, "router metrics: out of memory");
    for (size_t i = 0; i < n; i++) s[i] = (double)((int)strong_ok[i] - (int)weak_ok[i]);
    hearth_err e = rtr_metrics_compute(s, weak_ok, strong_ok, n, out);
    free(s);
    return e;
}

static int cmp_dbl_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

hearth_err rtr_calibrate(const double *scores, size_t n, double local_share, double *threshold,
                         double *achieved) {
    if (n == 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "router calibrate: no queries");
    if (!(local_share >= 0 && local_share <= 1))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router calibrate: local share %g outside [0, 1]",
                       local_share);
    double *d = malloc(n * sizeof *d);
    if (!d) return hr_fail(HEARTH_ERR_NOMEM, "router calibrate: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(scores[i])) {
            free(d);
            return hr_fail(HEARTH_ERR_INVALID_ARG, "router calibrate: score %zu not finite", i);
        }
        d[i] = scores[i];
    }
    qsort(d, n, sizeof *d, cmp_dbl_desc);
    size_t k = (size_t)floor((1 - local_share) * (double)n + 0.5); /* strong calls wanted */
    double t;
    if (k == 0)
        t = nextafter(d[0], INFINITY);
    else if (k >= n)
        t = d[n - 1];
    else if (d[k - 1] > d[k]) {
        t = d[k] + (d[k - 1] - d[k]) / 2; /* strictly between the two, if they allow */
        if (!(t > d[k])) t = d[k - 1];
    } else {
        /* a tie straddles the cut: send the whole tie group strong or none of
         * it, whichever lands nearer the wanted share */
        size_t a = k, b = k;
        while (a > 0 && d[a - 1] == d[k]) a--;
        while (b < n && d[b] == d[k]) b++;
        bool all = (b - k) <= (k - a);
        t = all ? d[k] : (a > 0 ? d[k] + (d[a - 1] - d[k]) / 2 : nextafter(d[k], INFINITY));
        if (!all && a > 0 && !(t > d[k])) t = d[a - 1];
    }
    size_t local = 0;
    for (size_t i = 0; i < n; i++) local += d[i] < t;
    free(d);
    *threshold = t;
    if (achieved) *achieved = (double)local / (double)n;
    return HEARTH_OK;
}
