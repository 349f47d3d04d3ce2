/*
 * test_drift.c - the drift layer.
 *
 * Statistics: the chi-square and incomplete-gamma tails against published
 * critical values and a numerical integral; Kolmogorov's distribution at its
 * critical values; the KS statistic against a brute-force count on random
 * data with ties; PSI against bins worked out by hand; and the tests'
 * calibration: under the null hypothesis p < 0.05 must come out about 5 % of
 * the time.
 *
 * Over a real ledger file: the scan visits every row of its window once, in
 * the order they were written, across chunk boundaries and rows written out
 * of time order; a window against an
 * unchanged reference is stable, a shifted confidence and escalation share
 * are flagged with hints while the untouched signals stay stable, a quiet
 * window is insufficient, sampling keeps exact counts and means; the series'
 * buckets against sums computed here; and `hearth drift` (the program).
 */
#include "test.h"

#include "drift_fixture.h"

#include <cjson/cJSON.h>

#include <sys/wait.h>
#include <unistd.h>

/* ---- statistics ------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Q(a, x) by Simpson's rule over [x, x + 60 + 10 a] of t^(a-1) e^-t / Gamma(a). */
static double gamma_q_integral(double a, double x) {
    const int n = 200000;
    const double hi = x + 60 + 10 * a, h = (hi - x) / n;
    double s = 0;
    for (int i = 0; i <= n; i++) {
        const double t = x + i * h;
        const double f = exp((a - 1) * log(t) - t - lgamma(a));
        s += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
    }
    return s * h / 3;
}

static void test_tails(void) {
    /* chi-square 0.05 and 0.01 critical values (any statistics table) */
    const struct {
        double x;
        int df;
        double p;
    } crit[] = {{3.841459, 1, 0.05}, {5.991465, 2, 0.05},  {18.307038, 10, 0.05},
                {6.634897, 1, 0.01}, {13.276704, 4, 0.01}, {43.772972, 30, 0.05}};
    for (size_t i = 0; i < sizeof crit / sizeof crit[0]; i++) {
        const double p = drift_chi2_pvalue(crit[i].x, crit[i].df);
        CHECKF(fabs(p - crit[i].p) < 2e-6, "chi2(%g, %d) = %.8f, want %g", crit[i].x, crit[i].df, p,
               crit[i].p);
    }
    CHECK(drift_chi2_pvalue(0, 3) == 1);
    CHECK(drift_chi2_pvalue(5, 0) == 1);
    /* Q(1, x) = e^-x on both sides of a + 1, and a numerical integral */
    // NOLINTNEXTLINE(cert-flp30-c,clang-analyzer-security.FloatLoopCounter): a geometric series
    for (double x = 0.25; x < 12; x *= 1.7)
        CHECKF(fabs(drift_gamma_q(1, x) - exp(-x)) < 1e-12, "Q(1, %g)", x);
    const double pts[][2] = {{0.5, 0.3}, {2.5, 1.0}, {2.5, 6.0}, {7, 3}, {7, 12}, {15, 14}};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        const double a = pts[i][0], x = pts[i][1];
        if (a < 1)
            continue; /* the integrand's pole at 0 does not matter for x > 0, but keep Simpson
                         honest */
        const double want = gamma_q_integral(a, x), got = drift_gamma_q(a, x);
        CHECKF(fabs(got - want) < 1e-7, "Q(%g, %g) = %.10f, integral %.10f", a, x, got, want);
    }
    CHECKF(fabs(drift_gamma_q(0.5, 0.3) - erfc(sqrt(0.3))) < 1e-12, "Q(1/2, x) = erfc(sqrt x)");
    /* Kolmogorov's critical values: P(K > 1.3581) = 0.05, P(K > 1.6276) = 0.01,
     * P(K > 1.2238) = 0.10; with n = m = 10^8 the correction is negligible */
    const double ne = 5e7, sq = sqrt(ne);
    const double lam[][2] = {{1.3581, 0.05}, {1.6276, 0.01}, {1.2238, 0.10}, {0.8276, 0.50}};
    for (size_t i = 0; i < sizeof lam / sizeof lam[0]; i++) {
        const double p = drift_ks_pvalue(lam[i][0] / (sq + 0.12 + 0.11 / sq), 100000000, 100000000);
        CHECKF(fabs(p - lam[i][1]) < 2e-4, "Q_KS(%g) = %.5f, want %g", lam[i][0], p, lam[i][1]);
    }
    CHECK(drift_ks_pvalue(0, 50, 50) == 1);
    CHECK(drift_ks_pvalue(1, 50, 50) < 1e-15);
}

/* sup |F_a - F_b| by counting, at every value either side has. */
static double ks_brute(const double *a, size_t n, const double *b, size_t m) {
    double d = 0;
    for (size_t k = 0; k < n + m; k++) {
        const double x = k < n ? a[k] : b[k - n];
        size_t ca = 0, cb = 0;
        for (size_t i = 0; i < n; i++) ca += a[i] <= x;
        for (size_t i = 0; i < m; i++) cb += b[i] <= x;
        d = fmax(d, fabs((double)ca / (double)n - (double)cb / (double)m));
    }
    return d;
}

static void test_ks_statistic(void) {
    unsigned long long s = 42;
    double a[300], b[300];
    for (int trial = 0; trial < 60; trial++) {
        const size_t n = 1 + test_rand_u64(&s) % 300, m = 1 + test_rand_u64(&s) % 300;
        const bool ties = trial % 2;
        for (size_t i = 0; i < n; i++) a[i] = ties ? (double)(test_rand_u64(&s) % 8) : normal(&s);
        for (size_t i = 0; i < m; i++)
            b[i] = ties ? (double)(test_rand_u64(&s) % 9) : normal(&s) + 0.3;
        qsort(a, n, sizeof *a, cmp_double);
        qsort(b, m, sizeof *b, cmp_double);
        const double want = ks_brute(a, n, b, m), got = drift_ks(a, n, b, m);
        CHECKF(fabs(got - want) < 1e-12, "trial %d: D %g, brute force %g", trial, got, want);
    }
}

static void test_psi(void) {
    /* reference 0..999: the deciles cut at 99, 199, ..., 899 (nearest rank) */
    double ref[1000], cur[500];
    for (int i = 0; i < 1000; i++) ref[i] = i;
    for (int i = 0; i < 500; i++) cur[i] = i % 100; /* all in the first decile */
    double want = 0;
    for (int k = 0; k < 10; k++) {
        const double pr = (100 + 0.5) / (1000 + 5.0), pc = ((k ? 0 : 500) + 0.5) / (500 + 5.0);
        want += (pc - pr) * log(pc / pr);
    }
    const double got = drift_psi_numeric(ref, 1000, cur, 500, 10);
    CHECKF(fabs(got - want) < 1e-12, "psi %.12f want %.12f", got, want);
    CHECK(drift_psi_numeric(ref, 1000, ref, 1000, 10) < 1e-12);
    /* a value beyond the reference's maximum is its own bin */
    double hi[500];
    for (int i = 0; i < 500; i++) hi[i] = 5000;
    CHECK(drift_psi_numeric(ref, 1000, hi, 500, 10) > 2);
    /* few distinct values: bins merge, identical distributions still give 0 */
    double few[600];
    for (int i = 0; i < 600; i++) few[i] = i < 500 ? 1 : 2;
    CHECK(drift_psi_numeric(few, 600, few, 600, 10) < 1e-12);
    /* counts */
    const double rc[3] = {80, 15, 5}, cc[3] = {50, 30, 20};
    double w = 0;
    for (int k = 0; k < 3; k++) {
        const double pr = (rc[k] + 0.5) / 101.5, pc = (cc[k] + 0.5) / 101.5;
        w += (pc - pr) * log(pc / pr);
    }
    CHECK(fabs(drift_psi_counts(rc, cc, 3) - w) < 1e-12);
    int df;
    /* the 2x3 table by hand: expected = row total * column total / 200 */
    const double cols[3] = {130, 45, 25};
    double x = 0;
    for (int k = 0; k < 3; k++) {
        const double e = cols[k] * 100 / 200;
        x += (rc[k] - e) * (rc[k] - e) / e + (cc[k] - e) * (cc[k] - e) / e;
    }
    CHECK(fabs(drift_chi2(rc, cc, 3, &df) - x) < 1e-9 && df == 2);
    const double gap[4] = {10, 0, 5, 0}, gap2[4] = {10, 0, 5, 0};
    drift_chi2(gap, gap2, 4, &df);
    CHECK(df == 1); /* categories seen by neither side do not count */
}

/* Under the null hypothesis, how often p < 0.05. */
static void test_calibration(void) {
    unsigned long long s = 7;
    int ks_reject = 0, chi_reject = 0;
    const int trials = 400;
    double a[200], b[200];
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < 200; i++) a[i] = normal(&s), b[i] = normal(&s);
        qsort(a, 200, sizeof *a, cmp_double);
        qsort(b, 200, sizeof *b, cmp_double);
        ks_reject += drift_ks_pvalue(drift_ks(a, 200, b, 200), 200, 200) < 0.05;
        double ra[4] = {0}, rb[4] = {0};
        const double probs[4] = {0.5, 0.25, 0.15, 0.10};
        for (int i = 0; i < 300; i++) {
            for (int side = 0; side < 2; side++) {
                double u = (double)(test_rand_u64(&s) >> 11) / 9007199254740992.0;
                int k = 0;
                while (k < 3 && u >= probs[k]) u -= probs[k], k++;
                (side ? rb : ra)[k]++;
            }
        }
        int df;
        chi_reject += drift_chi2_pvalue(drift_chi2(ra, rb, 4, &df), df) < 0.05;
    }
    /* binomial(400, 0.05): mean 20, sd 4.4; the KS asymptotics are a little
     * conservative at n = 200 */
    CHECKF(ks_reject >= 6 && ks_reject <= 34, "KS rejected %d of %d", ks_reject, trials);
    CHECKF(chi_reject >= 8 && chi_reject <= 34, "chi2 rejected %d of %d", chi_reject, trials);
    /* and a real shift is found */
    for (int i = 0; i < 200; i++) a[i] = normal(&s), b[i] = normal(&s) + 0.5;
    qsort(a, 200, sizeof *a, cmp_double);
    qsort(b, 200, sizeof *b, cmp_double);
    CHECK(drift_ks_pvalue(drift_ks(a, 200, b, 200), 200, 200) < 1e-4);
}

/* ---- over a ledger ------------------------------------------------------------ */

static char dir[] = "/tmp/hearth_drift_XXXXXX";

static gw_ledger *fresh_ledger(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    return l;
}

typedef struct scan_check {
    int64_t n, last_id, sum_ids;
    bool ordered;
} scan_check;

static hearth_err scan_visit(void *user, const gw_ledger_point *rows, size_t n) {
    scan_check *c = user;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].id <= c->last_id || rows[i].time_ms < 1000000 || rows[i].time_ms >= 1999000)
            c->ordered = false;
        c->last_id = rows[i].id;
        c->sum_ids += rows[i].id;
        c->n++;
    }
    return HEARTH_OK;
}

static void test_scan(void) {
    gw_ledger *l = fresh_ledger("scan.db");
    int64_t want_n = 0, want_sum = 0;
    /* a row after the window, 5000 at one instant (chunk boundaries between
     * equal times), then 1000 more written out of time order, in and out of
     * the window, and one before it */
    for (int i = 0; i < 6002; i++) {
        gw_ledger_row r = gw_ledger_row_init();
        r.time_ms = i == 0      ? 9000000
                    : i <= 5000 ? 1000000
                    : i < 6001  ? 2000000 - (i % 7) * 1000
                                : 999999;
        r.tier = "local";
        r.status = 200;
        int64_t id;
        REQUIRE(gw_ledger_add(l, &r, &id) == HEARTH_OK);
        if (r.time_ms >= 1000000 && r.time_ms < 1999000) want_n++, want_sum += id;
    }
    scan_check c = {.last_id = INT64_MIN, .ordered = true};
    REQUIRE(gw_ledger_scan(l, 1000000, 1999000, scan_visit, &c) == HEARTH_OK);
    CHECKF(c.n == want_n && c.sum_ids == want_sum, "scan saw %lld rows, want %lld", (long long)c.n,
           (long long)want_n);
    CHECK(c.ordered);
    gw_ledger_close(l);
}

static const drift_signal *find_signal(const drift_report *r, const char *name) {
    for (int k = 0; k < r->n_signals; k++)
        if (!strcmp(r->signals[k].name, name)) return &r->signals[k];
    REQUIRE(!"no such signal");
    return NULL;
}

static void test_report(void) {
    const int64_t now = 1700000000000LL;
    const traffic base = traffic_default(1400);
    unsigned long long s = 99;
    drift_params p = drift_default_params();
    p.until_ms = now;

    /* the same traffic in both windows: stable */
    gw_ledger *l = fresh_ledger("same.db");
    write_traffic(l, now - 8 * DAY, 7 * DAY, &base, &s, NULL, NULL);
    traffic day = base;
    day.n = 400;
    double conf_sum = 0;
    int64_t n_conf = 0;
    write_traffic(l, now - DAY, DAY, &day, &s, &conf_sum, &n_conf);
    drift_report r;
    REQUIRE(drift_report_build(l, &p, &r) == HEARTH_OK);
    CHECK(r.ref_requests == 1400 && r.cur_requests == 400);
    CHECK(r.cur_since_ms == now - DAY && r.ref_since_ms == now - 8 * DAY);
    for (int k = 0; k < r.n_signals; k++)
        CHECKF(r.signals[k].status == DRIFT_STABLE, "%s: %s (psi %.3f p %.3g)", r.signals[k].name,
               drift_status_name(r.signals[k].status), r.signals[k].psi, r.signals[k].p_value);
    CHECK(r.status == DRIFT_STABLE && !r.sampled);
    const drift_signal *cm = find_signal(&r, "conf_mean");
    CHECK(cm->cur.n == (size_t)n_conf && fabs(cm->cur.mean - conf_sum / (double)n_conf) < 1e-9);
    CHECK(find_signal(&r, "route")->cur.n == 400);
    gw_ledger_close(l);

    /* confidence falls and twice as many are escalated; nothing else moves */
    l = fresh_ledger("moved.db");
    write_traffic(l, now - 8 * DAY, 7 * DAY, &base, &s, NULL, NULL);
    day.conf_mu = -0.9;
    day.escalate = 0.4;
    write_traffic(l, now - DAY, DAY, &day, &s, NULL, NULL);
    REQUIRE(drift_report_build(l, &p, &r) == HEARTH_OK);
    cm = find_signal(&r, "conf_mean");
    CHECKF(cm->status == DRIFT_DRIFT, "conf_mean %s psi %.3f", drift_status_name(cm->status),
           cm->psi);
    CHECK(strstr(cm->hint, "calibrate --confidence") != NULL);
    CHECK(find_signal(&r, "conf_min")->status == DRIFT_DRIFT);
    const drift_signal *route = find_signal(&r, "route");
    CHECKF(route->status >= DRIFT_WARN, "route %s psi %.3f", drift_status_name(route->status),
           route->psi);
    CHECK(strstr(route->hint, "escalated 2") != NULL); /* "escalated 20.x% -> 4x.x%" */
    CHECK(find_signal(&r, "tier")->status >= DRIFT_WARN);
    const char *untouched[] = {"prompt_tokens", "completion_tokens", "local_latency_ms",
                               "router_score", "outcome"};
    for (size_t i = 0; i < sizeof untouched / sizeof *untouched; i++)
        CHECKF(find_signal(&r, untouched[i])->status == DRIFT_STABLE, "%s moved", untouched[i]);
    CHECK(r.status == DRIFT_DRIFT);

    /* the JSON */
    char *js = drift_report_json(&r);
    cJSON *o = cJSON_Parse(js);
    REQUIRE(o);
    CHECK(!strcmp(cJSON_GetObjectItem(o, "status")->valuestring, "drift"));
    const cJSON *sigs = cJSON_GetObjectItem(o, "signals");
    CHECK(cJSON_GetArraySize(sigs) == DRIFT_SIGNALS);
    const cJSON *first = cJSON_GetArrayItem(sigs, 0);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(first, "p_value")));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(first, "window"), "p95")));
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "window"), "requests")->valuedouble == 400);
    cJSON_Delete(o);
    free(js);
    char *txt = drift_report_text(&r);
    CHECK(strstr(txt, "status     drift") && strstr(txt, "conf_mean: mean"));
    free(txt);

    /* sampling keeps the counts and means exact and still sees the move */
    p.max_samples = 100;
    REQUIRE(drift_report_build(l, &p, &r) == HEARTH_OK);
    CHECK(r.sampled && find_signal(&r, "prompt_tokens")->ref.n == 1400);
    CHECK(find_signal(&r, "conf_mean")->status >= DRIFT_WARN);
    p.max_samples = 50000;

    /* a quiet window says nothing */
    p.until_ms = now - DAY + HOUR / 60; /* one minute of the moved day */
    p.window_ms = HOUR / 60;
    REQUIRE(drift_report_build(l, &p, &r) == HEARTH_OK);
    CHECK(r.status == DRIFT_INSUFFICIENT);
    CHECK(isnan(find_signal(&r, "conf_mean")->p_value));

    p.window_ms = 0;
    CHECK(drift_report_build(l, &p, &r) == HEARTH_ERR_INVALID_ARG);
    gw_ledger_close(l);
}

static void test_series(void) {
    gw_ledger *l = fresh_ledger("series.db");
    const int64_t t0 = 1700000000000LL - 1700000000000LL % HOUR;
    unsigned long long s = 5;
    enum { B = 6, PER = 200 };
    int64_t req[B] = {0}, local[B] = {0}, err[B] = {0}, cost[B] = {0};
    int64_t lat[B][PER];
    int nlat[B] = {0};
    double conf[B] = {0};
    int nconf[B] = {0};
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < PER; i++) {
            gw_ledger_row r = gw_ledger_row_init();
            r.time_ms = t0 + b * HOUR + (int64_t)(test_rand_u64(&s) % HOUR);
            const int kind = (int)(test_rand_u64(&s) % 10);
            r.tier = kind < 7 ? "local" : "cloud";
            r.status = kind == 9 ? 502 : 200;
            r.latency_ms = 50 + (int64_t)(test_rand_u64(&s) % (unsigned)(100 * (b + 1)));
            r.cost_usd_micro = kind >= 7 ? 300 : 0;
            if (kind < 7) r.conf_mean = -0.1 * (double)(test_rand_u64(&s) % 20);
            REQUIRE(gw_ledger_add(l, &r, NULL) == HEARTH_OK);
            req[b]++;
            err[b] += r.status >= 400;
            cost[b] += r.cost_usd_micro;
            if (kind < 7) {
                local[b]++;
                lat[b][nlat[b]++] = r.latency_ms;
                conf[b] += r.conf_mean, nconf[b]++;
            }
        }
    }
    drift_bucket *out = NULL;
    size_t n = 0;
    /* a since inside the first hour is rounded down to it */
    REQUIRE(drift_series(l, t0 + 17 * 60000, t0 + B * HOUR, HOUR, &out, &n) == HEARTH_OK);
    REQUIRE(n == B);
    for (int b = 0; b < B; b++) {
        const drift_bucket *k = &out[b];
        CHECK(k->start_ms == t0 + b * HOUR);
        CHECKF(k->requests == req[b] && k->local == local[b] && k->errors == err[b] &&
                   k->escalated == req[b] - local[b] - err[b] && k->cost_usd_micro == cost[b],
               "bucket %d counts", b);
        CHECK(k->n_conf == nconf[b] && fabs(k->conf_mean - conf[b] / nconf[b]) < 1e-9);
        qsort(lat[b], (size_t)nlat[b], sizeof lat[b][0], cmp_i64);
        const int i50 = (nlat[b] + 1) / 2 - 1, i95 = (95 * nlat[b] + 99) / 100 - 1;
        const double p50 = (double)lat[b][i50], p95 = (double)lat[b][i95];
        CHECKF(fabs(k->local_p50_ms - p50) <= 0.045 * (1 + p50), "p50 %g, exact %g",
               k->local_p50_ms, p50);
        CHECKF(fabs(k->local_p95_ms - p95) <= 0.045 * (1 + p95), "p95 %g, exact %g",
               k->local_p95_ms, p95);
    }
    free(out);
    /* too many buckets */
    CHECK(drift_series(l, t0, t0 + 3000LL * HOUR, HOUR, &out, &n) == HEARTH_ERR_INVALID_ARG);
    gw_ledger_close(l);
}

/* `hearth drift` on the moved ledger of test_report, through the program. */
static int run(const char *args, char *out, size_t cap) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' drift %s 2>&1", HEARTH_BINARY, args);
    FILE *f = popen(cmd, "r");
    REQUIRE(f);
    const size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    const int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void) {
    char args[700], out[16384];
    /* the moved ledger's windows end at 1700000000000 ms: 2023-11-14T22:13:20Z */
    snprintf(args, sizeof args, "report --db '%s/moved.db' --until 2023-11-14T22:13:20Z --json",
             dir);
    CHECK(run(args, out, sizeof out) == 0);
    cJSON *o = cJSON_Parse(out);
    CHECKF(o && !strcmp(cJSON_GetObjectItem(o, "status")->valuestring, "drift"), "%s", out);
    cJSON_Delete(o);
    snprintf(args, sizeof args,
             "report --db '%s/moved.db' --until 2023-11-14T22:13:20Z --fail-on warn", dir);
    CHECK(run(args, out, sizeof out) == 3);
    CHECK(strstr(out, "conf_mean") && strstr(out, "recalibrate"));
    snprintf(args, sizeof args,
             "report --db '%s/same.db' --until 2023-11-14T22:13:20Z --fail-on warn", dir);
    CHECK(run(args, out, sizeof out) == 0);
    snprintf(args, sizeof args,
             "series --db '%s/series.db' --since 2023-11-14T22:00:00Z --until 2023-11-15T04:00:00Z "
             "--bucket 1h --json",
             dir);
    CHECK(run(args, out, sizeof out) == 0);
    o = cJSON_Parse(out);
    CHECKF(o && cJSON_GetArraySize(cJSON_GetObjectItem(o, "buckets")) == 6, "%s", out);
    cJSON_Delete(o);
    snprintf(args, sizeof args, "report --db '%s/none.db'", dir);
    CHECK(run(args, out, sizeof out) == 1 && strstr(out, "no ledger"));
    CHECK(run("report --window 5x", out, sizeof out) == 2 && strstr(out, "not a duration"));
    CHECK(run("report --alpha 2", out, sizeof out) == 2);
    CHECK(run("series --bucket", out, sizeof out) == 2);
}

int main(void) {
    test_tails();
    test_ks_statistic();
    test_psi();
    test_calibration();
    REQUIRE(mkdtemp(dir));
    test_scan();
    test_report();
    test_series();
    test_cli();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_done("test_drift");
}
