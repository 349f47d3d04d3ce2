/*
 * drift.h - the drift layer: statistics of the gateway's traffic over time
 * windows, read from its ledger (gw_ledger_scan). Two questions:
 *
 *   - Has the traffic changed? drift_report compares a recent window with the
 *     window before it, signal by signal (prompt and answer lengths, local
 *     latency, the router's score, the local answers' confidence, the routes,
 *     the outcomes, the tiers), with an effect size (PSI) and a significance
 *     test (two-sample Kolmogorov-Smirnov, chi-square), and says which
 *     signals moved and what that usually means for the cascade.
 *   - What did it look like over time? drift_series: per-bucket counts, cost,
 *     latency percentiles and mean scores, for the dashboard and the CLI.
 *
 * Nothing here reads prompts or answers: the ledger's numbers are enough,
 * and a deployment that records no texts can be monitored the same way.
 *
 * drift_stats.c   the statistics (PSI, KS, chi-square, incomplete gamma)
 * drift_report.c  windows, signals, verdicts, the report as JSON and text
 * drift_series.c  buckets over time
 */
#ifndef HEARTH_DRIFT_H
#define HEARTH_DRIFT_H

#include "gateway/gateway.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- statistics (drift_stats.c); arrays sorted ascending ------------------ */

/* Population stability index of cur against ref over `bins` bins cut at the
 * reference's quantiles (ties merged), proportions smoothed by +0.5 a bin. */
double drift_psi_numeric(const double *ref, size_t n, const double *cur, size_t m, int bins);
/* The same over k categories' counts. */
double drift_psi_counts(const double *ref, const double *cur, size_t k);
/* Two-sample Kolmogorov-Smirnov statistic D = sup |F_ref - F_cur|. */
double drift_ks(const double *ref, size_t n, const double *cur, size_t m);
/* Its asymptotic p-value (Kolmogorov's distribution, Stephens' small-sample
 * correction). */
double drift_ks_pvalue(double d, size_t n, size_t m);
/* Chi-square test that two count vectors come from one distribution: returns
 * the statistic, *df its degrees of freedom (categories seen - 1). */
double drift_chi2(const double *ref, const double *cur, size_t k, int *df);
/* P(X >= x) for X ~ chi-square(df). */
double drift_chi2_pvalue(double x, int df);
/* Regularized upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a). */
double drift_gamma_q(double a, double x);

/* ---- the report (drift_report.c) ----------------------------------------- */

typedef enum drift_status {
    DRIFT_INSUFFICIENT = 0, /* too few samples in a window to say */
    DRIFT_STABLE,
    DRIFT_WARN,  /* PSI >= 0.1 and p < alpha */
    DRIFT_DRIFT, /* PSI >= 0.25 and p < alpha */
} drift_status;
const char *drift_status_name(drift_status s); /* "insufficient", "stable", "warn", "drift" */

typedef struct drift_params {
    int64_t until_ms;     /* end of the current window; 0: now */
    int64_t window_ms;    /* the current window's length (default 24 h) */
    int64_t reference_ms; /* the reference window's, which ends where the current one
                             begins (default 7 d) */
    int bins;             /* PSI bins for numbers (10) */
    size_t min_samples;   /* fewer in either window: insufficient (30) */
    double alpha;         /* significance level of the tests (0.01) */
    size_t max_samples;   /* a window's values per signal beyond this are sampled
                             uniformly (reservoir; 50,000) */
} drift_params;
drift_params drift_default_params(void);

enum { DRIFT_SIGNALS = 9, DRIFT_CATS = 16, DRIFT_HINT = 320 };

/* One window of one signal. */
typedef struct drift_side {
    size_t n;                  /* values seen (before sampling) */
    double mean, p50, p95;     /* numbers; NAN when n is 0 */
    double counts[DRIFT_CATS]; /* categories, in the signal's cats order */
} drift_side;

typedef struct drift_signal {
    const char *name, *what; /* static: "conf_mean", a one-line description */
    bool categorical;
    drift_status status;
    double psi;
    double statistic, p_value; /* KS D or chi-square; NAN when insufficient */
    int df;                    /* chi-square only */
    int n_cats;
    char cats[DRIFT_CATS][64]; /* category names (the last may be "other") */
    drift_side ref, cur;
    char hint[DRIFT_HINT]; /* what moved and what it usually means; "" when stable */
} drift_signal;

typedef struct drift_report {
    int64_t ref_since_ms, ref_until_ms, cur_since_ms, cur_until_ms;
    int64_t ref_requests, cur_requests;
    bool sampled;        /* some window held more than max_samples values of a signal */
    drift_status status; /* the worst signal's; insufficient only when all are */
    drift_params params;
    int n_signals;
    drift_signal signals[DRIFT_SIGNALS];
} drift_report;

/* Compares the current window with the reference window over the ledger. */
hearth_err drift_report_build(gw_ledger *l, const drift_params *p, drift_report *out);
char *drift_report_json(const drift_report *r); /* malloc'd; NULL: out of memory */
char *drift_report_text(const drift_report *r); /* malloc'd */

/* ---- buckets over time (drift_series.c) ----------------------------------- */

enum { DRIFT_MAX_BUCKETS = 2000 };

typedef struct drift_bucket {
    int64_t start_ms;
    int64_t requests, local, escalated, errors, degraded; /* as gw_stats counts them */
    int64_t prompt_tokens, completion_tokens;
    int64_t cost_usd_micro, cloud_only_cost_usd_micro;
    double local_p50_ms, local_p95_ms; /* the local tier's answers; NAN when none */
    double conf_mean, router_score;    /* means over the rows that have one; NAN when none */
    int64_t n_conf, n_router;
} drift_bucket;

/* Buckets of bucket_ms from since_ms (rounded down to a multiple of bucket_ms)
 * to until_ms; at most DRIFT_MAX_BUCKETS. *out (malloc'd, *n entries) is the
 * caller's. Latency percentiles come from a histogram with bins 1/16 of a
 * power of two wide: within 4.5 % of the exact nearest-rank value. */
hearth_err drift_series(gw_ledger *l, int64_t since_ms, int64_t until_ms, int64_t bucket_ms,
                        drift_bucket **out, size_t *n);
char *drift_series_json(const drift_bucket *b, size_t n, int64_t bucket_ms);
char *drift_series_text(const drift_bucket *b, size_t n);

#endif
