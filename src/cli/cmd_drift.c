/*
 * cmd_drift.c - `hearth drift report|series`: the drift layer on a ledger
 * file. `report` compares the last window of traffic with the one before it
 * and can fail a cron job or a CI step when something moved (--fail-on);
 * `series` prints the traffic bucket by bucket.
 */
#include "cli.h"

#include "drift/drift.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char drift_usage[] =
    "usage: hearth drift report [--db FILE] [--window DUR] [--reference DUR] [--until WHEN]\n"
    "                           [--bins N] [--min-samples N] [--alpha A] [--max-samples N]\n"
    "                           [--json] [--fail-on warn|drift]\n"
    "       hearth drift series [--db FILE] [--since WHEN] [--until WHEN] [--bucket DUR] [--json]\n"
    "  report: the last --window of traffic (default 24h) against the --reference span just\n"
    "    before it (default 7d), signal by signal: prompt and answer tokens, local latency,\n"
    "    router score, confidence, route, outcome, tier. A signal is 'warn' when its PSI is\n"
    "    >= 0.1 and its test (KS, chi-square) has p < --alpha (0.01), 'drift' at PSI >= 0.25;\n"
    "    'insufficient' below --min-samples (30) in a window. --fail-on: exit 3 when the\n"
    "    worst signal is at least that.\n"
    "  series: counts, cost, local p50/p95 latency, mean confidence and router score per\n"
    "    --bucket (default 1h) from --since (default 24h) to --until (default now).\n"
    "  --db FILE   the ledger (default hearth-ledger.db)\n"
    "  DUR: 90s, 30m, 24h, 7d, 2w; WHEN: 2024-05-01, 2024-05-01T12:00:00Z (UTC) or a\n"
    "  duration back from now\n";

static int usage_error(const char *sub, const char *a) {
    fprintf(stderr, "hearth drift %s: bad option '%s'\n%s", sub, a, drift_usage);
    return 2;
}

static int bad_value(const char *sub, const char *opt) {
    fprintf(stderr, "hearth drift %s: %s: %s\n", sub, opt, hearth_last_error());
    return 2;
}

static gw_ledger *open_ledger(const char *sub, const char *db) {
    if (access(db, R_OK) != 0) {
        fprintf(stderr, "hearth drift %s: no ledger at '%s' (give one with --db)\n", sub, db);
        return NULL;
    }
    gw_ledger *l = NULL;
    if (gw_ledger_open(db, &l)) {
        cli_fail("drift", db);
        return NULL;
    }
    return l;
}

static int print_owned(char *s, bool newline) {
    if (!s) {
        fprintf(stderr, "hearth drift: out of memory\n");
        return 1;
    }
    fputs(s, stdout);
    if (newline) fputc('\n', stdout);
    free(s);
    return 0;
}

static int report(int argc, char **argv) {
    const char *db = "hearth-ledger.db";
    drift_params p = drift_default_params();
    bool json = false;
    int fail_on = 0; /* a drift_status, 0: never */
    const int64_t now = gw_now_ms();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int n;
        char *end;
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!v) return usage_error("report", a);
        i++;
        if (!strcmp(a, "--db")) {
            db = v;
        } else if (!strcmp(a, "--window")) {
            if (gw_parse_duration(v, &p.window_ms)) return bad_value("report", a);
        } else if (!strcmp(a, "--reference")) {
            if (gw_parse_duration(v, &p.reference_ms)) return bad_value("report", a);
        } else if (!strcmp(a, "--until")) {
            if (gw_parse_since(v, now, &p.until_ms)) return bad_value("report", a);
        } else if (!strcmp(a, "--bins") && cli_parse_int(v, 2, 100, &n)) {
            p.bins = n;
        } else if (!strcmp(a, "--min-samples") && cli_parse_int(v, 1, 1 << 30, &n)) {
            p.min_samples = (size_t)n;
        } else if (!strcmp(a, "--max-samples") && cli_parse_int(v, 2, 1 << 30, &n)) {
            p.max_samples = (size_t)n;
        } else if (!strcmp(a, "--alpha") && (p.alpha = strtod(v, &end), !*end && end != v) &&
                   p.alpha > 0 && p.alpha < 1) {
        } else if (!strcmp(a, "--fail-on") && (!strcmp(v, "warn") || !strcmp(v, "drift"))) {
            fail_on = !strcmp(v, "warn") ? DRIFT_WARN : DRIFT_DRIFT;
        } else {
            fprintf(stderr, "hearth drift report: bad value '%s' for %s\n%s", v, a, drift_usage);
            return 2;
        }
    }
    gw_ledger *l = open_ledger("report", db);
    if (!l) return 1;
    drift_report r;
    const hearth_err err = drift_report_build(l, &p, &r);
    gw_ledger_close(l);
    if (err) return cli_fail("drift report", db);
    const int rc = print_owned(json ? drift_report_json(&r) : drift_report_text(&r), json);
    if (rc) return rc;
    return fail_on && (int)r.status >= fail_on ? 3 : 0;
}

static int series(int argc, char **argv) {
    const char *db = "hearth-ledger.db";
    const int64_t now = gw_now_ms();
    int64_t since = now - 24LL * 3600 * 1000, until = now, bucket = 3600LL * 1000;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!v) return usage_error("series", a);
        i++;
        hearth_err err = HEARTH_OK;
        if (!strcmp(a, "--db"))
            db = v;
        else if (!strcmp(a, "--since"))
            err = gw_parse_since(v, now, &since);
        else if (!strcmp(a, "--until"))
            err = gw_parse_since(v, now, &until);
        else if (!strcmp(a, "--bucket"))
            err = gw_parse_duration(v, &bucket);
        else
            return usage_error("series", a);
        if (err) return bad_value("series", a);
    }
    gw_ledger *l = open_ledger("series", db);
    if (!l) return 1;
    drift_bucket *b = NULL;
    size_t n = 0;
    const hearth_err err = drift_series(l, since, until, bucket, &b, &n);
    gw_ledger_close(l);
    if (err) return cli_fail("drift series", db);
    const int rc =
        print_owned(json ? drift_series_json(b, n, bucket) : drift_series_text(b, n), json);
    free(b);
    return rc;
}

int cmd_drift(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* -h anywhere: the usage, for both subcommands */
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(drift_usage, stdout);
            return 0;
        }
    if (argc >= 2 && !strcmp(argv[1], "report")) return report(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "series")) return series(argc - 1, argv + 1);
    fputs(drift_usage, stderr);
    return 2;
}
