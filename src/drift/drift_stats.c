/*
 * drift_stats.c - the statistics behind the drift report. Two kinds of
 * evidence are kept apart on purpose: the population stability index says
 * how much a distribution moved (an effect size, comparable across signals),
 * the tests say whether the move could be chance (a window of 40 requests
 * moves a lot by luck alone). The report asks for both.
 *
 * The p-values are the classical asymptotic ones: Kolmogorov's limiting
 * distribution with Stephens' correction for the KS test (Numerical Recipes'
 * form, good from about 4 samples a side), the chi-square tail through the
 * regularized incomplete gamma function (series below a + 1, Lentz's
 * continued fraction above).
 */
#include "drift.h"

#include <math.h>
#include <stdlib.h>

/* Index of the first edge >= x (so x <= edges[0] is bin 0, x > the last is
 * bin n). */
static size_t bin_of(const double *edges, size_t n, double x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (edges[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static double psi_term(double ref, double nr, double cur, double nc, size_t k) {
    const double pr = (ref + 0.5) / (nr + 0.5 * (double)k);
    const double pc = (cur + 0.5) / (nc + 0.5 * (double)k);
    return (pc - pr) * log(pc / pr);
}

double drift_psi_counts(const double *ref, const double *cur, size_t k) {
    double nr = 0, nc = 0;
    for (size_t i = 0; i < k; i++) nr += ref[i], nc += cur[i];
    if (nr <= 0 || nc <= 0) return 0;
    double psi = 0;
    for (size_t i = 0; i < k; i++) psi += psi_term(ref[i], nr, cur[i], nc, k);
    return psi;
}

enum { PSI_MAX_BINS = 100 };

double drift_psi_numeric(const double *ref, size_t n, const double *cur, size_t m, int bins) {
    if (!n || !m) return 0;
    if (bins < 2) bins = 2;
    if (bins > PSI_MAX_BINS) bins = PSI_MAX_BINS;
    /* edges at the reference's quantiles i/bins, equal ones merged: a signal
     * with few distinct values (token counts of short prompts) gets fewer bins */
    double edges[PSI_MAX_BINS];
    size_t ne = 0;
    for (int i = 1; i < bins; i++) {
        size_t r = (size_t)ceil((double)i * (double)n / bins);
        const double e = ref[r ? r - 1 : 0];
        if (!ne || e > edges[ne - 1]) edges[ne++] = e;
    }
    double rc[PSI_MAX_BINS] = {0}, cc[PSI_MAX_BINS] = {0};
    for (size_t i = 0; i < n; i++) rc[bin_of(edges, ne, ref[i])]++;
    for (size_t i = 0; i < m; i++) cc[bin_of(edges, ne, cur[i])]++;
    return drift_psi_counts(rc, cc, ne + 1);
}

double drift_ks(const double *ref, size_t n, const double *cur, size_t m) {
    size_t i = 0, j = 0;
    double d = 0;
    while (i < n && j < m) {
        /* step past every value equal to the smaller one on both sides: the
         * empirical distribution functions are compared between values */
        const double x = ref[i] <= cur[j] ? ref[i] : cur[j];
        while (i < n && ref[i] <= x) i++;
        while (j < m && cur[j] <= x) j++;
        const double diff = fabs((double)i / (double)n - (double)j / (double)m);
        if (diff > d) d = diff;
    }
    return d;
}

/* Kolmogorov's Q(lambda) = P(K > lambda). */
static double kolmogorov_q(double lambda) {
    if (lambda <= 0) return 1;
    if (lambda < 1.18) {
        /* the series below converges slowly here; use its Jacobi-theta twin */
        const double pi = 3.14159265358979323846;
        const double y = exp(-pi * pi / (8 * lambda * lambda));
        double s = 0;
        for (int k = 1; k <= 7; k += 2) s += pow(y, (double)(k * k));
        const double p = sqrt(2 * pi) / lambda * s;
        return p >= 1 ? 0 : 1 - p;
    }
    double s = 0, sign = 1;
    for (int k = 1; k <= 100; k++) {
        const double t = exp(-2.0 * k * k * lambda * lambda);
        s += sign * t;
        if (t < 1e-16) break;
        sign = -sign;
    }
    const double q = 2 * s;
    return q < 0 ? 0 : q > 1 ? 1 : q;
}

double drift_ks_pvalue(double d, size_t n, size_t m) {
    if (!n || !m) return 1;
    const double ne = (double)n * (double)m / ((double)n + (double)m);
    const double sq = sqrt(ne);
    return kolmogorov_q((sq + 0.12 + 0.11 / sq) * d);
}

double drift_chi2(const double *ref, const double *cur, size_t k, int *df) {
    double nr = 0, nc = 0;
    for (size_t i = 0; i < k; i++) nr += ref[i], nc += cur[i];
    double x = 0;
    int seen = 0;
    const double total = nr + nc;
    for (size_t i = 0; i < k && nr > 0 && nc > 0; i++) {
        const double col = ref[i] + cur[i];
        if (col <= 0) continue;
        seen++;
        const double er = nr * col / total, ec = nc * col / total;
        x += (ref[i] - er) * (ref[i] - er) / er + (cur[i] - ec) * (cur[i] - ec) / ec;
    }
    *df = seen > 1 ? seen - 1 : 0;
    return x;
}

double drift_gamma_q(double a, double x) {
    if (x <= 0 || a <= 0) return 1;
    const double lg = a * log(x) - x - lgamma(a);
    if (x < a + 1) {
        /* P(a, x) by its series */
        double term = 1 / a, sum = term;
        for (int k = 1; k < 1000; k++) {
            term *= x / (a + k);
            sum += term;
            if (term < sum * 1e-15) break;
        }
        const double p = sum * exp(lg);
        return p >= 1 ? 0 : 1 - p;
    }
    /* Q(a, x) by its continued fraction, modified Lentz */
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 1000; i++) {
        const double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < tiny) d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        const double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15) break;
    }
    const double q = exp(lg) * h;
    return q > 1 ? 1 : q;
}

double drift_chi2_pvalue(double x, int df) {
    if (df <= 0) return 1;
    return drift_gamma_q(0.5 * df, 0.5 * x);
}
