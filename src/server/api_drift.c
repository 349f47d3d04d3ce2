/*
 * api_drift.c - the drift layer over HTTP, on the server's own ledger:
 *
 *   GET /v1/hearth/drift?window=24h&reference=7d&until=WHEN&bins=10&min_samples=30&alpha=0.01
 *       the report `hearth drift report --json` prints
 *   GET /v1/hearth/series?since=24h&until=WHEN&bucket=1h
 *       the buckets `hearth drift series --json` prints (the dashboard's charts)
 *
 * Every parameter is optional; a bad one is a 400 naming it. Both read the
 * ledger in chunks (gw_ledger_scan), so requests keep being recorded while a
 * report over weeks of traffic is computed.
 */
#include "server.h"

#include "drift/drift.h"

#include <stdlib.h>
#include <string.h>

static bool no_ledger(srv_exchange *x) {
    if (x->srv->ledger) return false;
    srv_error e;
    srv_fail(&e, 500, NULL, NULL, "the server has no ledger");
    srv_respond_error(x, &e);
    return true;
}

/* Reads ?key as a duration (when != NULL) or a time (WHEN); false after a 400. */
static bool query_time(srv_exchange *x, const char *key, bool duration, int64_t now, int64_t *out) {
    const char *v = srv_query(x, key);
    if (!v) return true;
    const hearth_err err = duration ? gw_parse_duration(v, out) : gw_parse_since(v, now, out);
    if (!err) return true;
    srv_error e;
    srv_fail(&e, 400, key, "invalid_value", "%s: %s", key, hearth_last_error());
    srv_respond_error(x, &e);
    return false;
}

/* Reads ?key as a number in [lo, hi]; false after a 400. */
static bool query_number(srv_exchange *x, const char *key, double lo, double hi, double *out) {
    const char *v = srv_query(x, key);
    if (!v) return true;
    char *end;
    const double d = strtod(v, &end);
    if (end != v && !*end && d >= lo && d <= hi) {
        *out = d;
        return true;
    }
    srv_error e;
    srv_fail(&e, 400, key, "invalid_value", "%s must be a number in [%g, %g]", key, lo, hi);
    srv_respond_error(x, &e);
    return false;
}

static void respond_failure(srv_exchange *x, hearth_err err) {
    srv_error e;
    srv_fail(&e, err == HEARTH_ERR_INVALID_ARG ? 400 : 500, NULL, NULL, "%s", hearth_last_error());
    srv_respond_error(x, &e);
}

void srv_handle_drift(srv_exchange *x) {
    if (no_ledger(x)) return;
    drift_params p = drift_default_params();
    const int64_t now = gw_now_ms();
    double bins = p.bins, min_samples = (double)p.min_samples, alpha = p.alpha;
    if (!query_time(x, "window", true, now, &p.window_ms) ||
        !query_time(x, "reference", true, now, &p.reference_ms) ||
        !query_time(x, "until", false, now, &p.until_ms) ||
        !query_number(x, "bins", 2, 100, &bins) ||
        !query_number(x, "min_samples", 1, 1e9, &min_samples) ||
        !query_number(x, "alpha", 1e-12, 0.5, &alpha))
        return;
    p.bins = (int)bins;
    p.min_samples = (size_t)min_samples;
    p.alpha = alpha;
    drift_report r;
    const hearth_err err = drift_report_build(x->srv->ledger, &p, &r);
    if (err) {
        respond_failure(x, err);
        return;
    }
    srv_respond_json(x, 200, drift_report_json(&r));
}

void srv_handle_series(srv_exchange *x) {
    if (no_ledger(x)) return;
    const int64_t now = gw_now_ms();
    int64_t since = now - 24LL * 3600 * 1000, until = now, bucket = 3600LL * 1000;
    if (!query_time(x, "since", false, now, &since) ||
        !query_time(x, "until", false, now, &until) || !query_time(x, "bucket", true, now, &bucket))
        return;
    drift_bucket *b = NULL;
    size_t n = 0;
    const hearth_err err = drift_series(x->srv->ledger, since, until, bucket, &b, &n);
    if (err) {
        respond_failure(x, err);
        return;
    }
    srv_respond_json(x, 200, drift_series_json(b, n, bucket));
    free(b);
}
