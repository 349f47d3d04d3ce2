/*
 * bench_drift.c - how long the drift layer takes on a large ledger:
 * `bench_drift [rows 300000] [reps 5]` writes rows spread over 8 days into a
 * scratch ledger (the last day shifted, as test_drift's traffic), then times
 * drift_report_build (24 h against 7 d: every row read once) and
 * drift_series (the last 24 h in hourly buckets), and prints the median,
 * min and max of each and the rows read per second.
 */
#include "bench.h"
#include "../tests/drift_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void print(const char *what, double *t, int reps, double rows) {
    bench_sort(t, reps);
    printf("%-26s median %8.1f ms  min %8.1f  max %8.1f  (%.2f M rows/s)\n", what,
           t[reps / 2] * 1e3, t[0] * 1e3, t[reps - 1] * 1e3, rows / t[reps / 2] / 1e6);
}

int main(int argc, char **argv) {
    const int rows = argc > 1 ? atoi(argv[1]) : 300000;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (rows < 100 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: bench_drift [rows >= 100] [reps 1..100]\n");
        return 2;
    }
    char dir[] = "/tmp/hearth_bench_drift_XXXXXX", path[600];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    gw_ledger *l = NULL;
    if (gw_ledger_open(path, &l)) {
        fprintf(stderr, "bench_drift: %s\n", hearth_last_error());
        return 1;
    }
    const int64_t until = gw_now_ms();
    unsigned long long s = 1;
    traffic t = traffic_default(rows * 7 / 8);
    double t0 = bench_now_s();
    write_traffic(l, until - 8 * DAY, 7 * DAY, &t, &s, NULL, NULL);
    t.n = rows - t.n;
    t.conf_mu = -0.8;
    write_traffic(l, until - DAY, DAY, &t, &s, NULL, NULL);
    printf("ledger: %d rows written in %.1f s\n", rows, bench_now_s() - t0);
    double tr[100], ts[100];
    drift_params p = drift_default_params();
    p.until_ms = until;
    drift_report r;
    for (int i = 0; i < reps; i++) {
        t0 = bench_now_s();
        if (drift_report_build(l, &p, &r)) return 1;
        tr[i] = bench_now_s() - t0;
        drift_bucket *b = NULL;
        size_t n = 0;
        t0 = bench_now_s();
        if (drift_series(l, until - DAY, until, HOUR, &b, &n)) return 1;
        ts[i] = bench_now_s() - t0;
        free(b);
    }
    printf("report status %s, sampled %s\n", drift_status_name(r.status), r.sampled ? "yes" : "no");
    print("drift_report_build 24h/7d", tr, reps, rows);
    print("drift_series 24h by 1h", ts, reps, rows / 8.0);
    gw_ledger_close(l);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
