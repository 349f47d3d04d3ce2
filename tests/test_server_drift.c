/*
 * test_server_drift.c - GET /v1/hearth/drift and /v1/hearth/series on a real
 * `hearth serve --ledger FILE`, driven with curl: a ledger written with a
 * known shift is reported as such, with the same numbers the library gives;
 * the series counts the server's own requests as they arrive; every bad
 * parameter is a 400 naming it; the key guards both routes. With
 * --drift-every, /metrics carries the watch's gauges and the log says when
 * the status changed.
 */
#include "drift_fixture.h"

#include "server/http_client.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

static const char *key = "-H 'Authorization: Bearer sekrit'";

static const cJSON *field(const cJSON *o, const char *k) { return cJSON_GetObjectItem(o, k); }

static const cJSON *signal_json(const cJSON *report, const char *name) {
    const cJSON *s;
    cJSON_ArrayForEach(s, field(report, "signals")) {
        if (!strcmp(field(s, "name")->valuestring, name)) return s;
    }
    return NULL;
}

/* Reference week and current day end an hour before now, so the server's
 * own requests (made now) land after the current window. */
static void write_ledger(const char *path, int64_t until, drift_report *expect) {
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    unsigned long long s = 11;
    traffic t = {.n = 1000,
                 .conf_mu = -0.5,
                 .escalate = 0.2,
                 .router_mu = 0.3,
                 .prompt_lo = 10,
                 .prompt_hi = 300,
                 .latency_lo = 80,
                 .latency_hi = 600};
    write_traffic(l, until - 8 * DAY, 7 * DAY, &t, &s, NULL, NULL);
    t.n = 300;
    t.conf_mu = -0.9;
    write_traffic(l, until - DAY, DAY, &t, &s, NULL, NULL);
    drift_params p = drift_default_params();
    p.until_ms = until;
    REQUIRE(drift_report_build(l, &p, expect) == HEARTH_OK);
    gw_ledger_close(l);
}

int main(void) {
    char scratch[] = "/tmp/hearth_srvdrift_XXXXXX";
    bool skip;
    const char *model = fixture_server_model("test_server_drift", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model);
    char ledger[600], args[1200], path[600];
    snprintf(ledger, sizeof ledger, "%s/ledger.db", scratch);
    const int64_t until = (gw_now_ms() - HOUR) / 1000 * 1000; /* whole seconds, as ISO has */
    drift_report expect;
    write_ledger(ledger, until, &expect);
    REQUIRE(expect.status == DRIFT_DRIFT);

    snprintf(args, sizeof args, "-t 1 --api-key sekrit --ledger '%s'", ledger);
    test_server sv;
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, model, scratch, args));

    /* the report, as the library computed it */
    char until_iso[32];
    gw_format_time(until, until_iso, sizeof until_iso);
    snprintf(path, sizeof path, "/v1/hearth/drift?until=%s&window=24h&reference=7d", until_iso);
    test_reply r = test_http(&sv, "GET", path, NULL, key);
    CHECKF(r.status == 200, "%d %s", r.status, r.body);
    cJSON *o = cJSON_Parse(r.body);
    REQUIRE(o);
    CHECK(!strcmp(field(o, "status")->valuestring, "drift"));
    CHECK(field(field(o, "window"), "requests")->valuedouble == 300);
    CHECK(field(field(o, "reference"), "requests")->valuedouble == 1000);
    const cJSON *cm = signal_json(o, "conf_mean");
    REQUIRE(cm);
    CHECK(!strcmp(field(cm, "status")->valuestring, "drift"));
    CHECK(strstr(field(cm, "hint")->valuestring, "recalibrate") != NULL);
    const cJSON *pt = signal_json(o, "prompt_tokens");
    REQUIRE(pt);
    CHECK(!strcmp(field(pt, "status")->valuestring, "stable"));
    cJSON_Delete(o);
    free(r.body);

    /* parameters are read: a 1 ms window holds nothing */
    snprintf(path, sizeof path, "/v1/hearth/drift?until=%s&window=0.001s", until_iso);
    r = test_http(&sv, "GET", path, NULL, key);
    o = cJSON_Parse(r.body);
    CHECKF(r.status == 200 && o && !strcmp(field(o, "status")->valuestring, "insufficient"), "%s",
           r.body);
    cJSON_Delete(o);
    free(r.body);

    /* the series counts the server's own traffic */
    r = test_http(&sv, "POST", "/v1/completions",
                  "{\"prompt\": \"Once upon a time\", \"max_tokens\": 3, \"temperature\": 0}", key);
    CHECKF(r.status == 200, "%d %s", r.status, r.body);
    free(r.body);
    r = test_http(&sv, "GET", "/v1/hearth/series?since=30m&bucket=1m", NULL, key);
    CHECKF(r.status == 200, "%d %s", r.status, r.body);
    o = cJSON_Parse(r.body);
    REQUIRE(o);
    double live = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, field(o, "buckets")) live += field(b, "requests")->valuedouble;
    CHECKF(live == 1, "the last 30 minutes hold %g requests", live);
    CHECK(field(o, "bucket_ms")->valuedouble == 60000);
    cJSON_Delete(o);
    free(r.body);
    r = test_http(&sv, "GET", "/v1/hearth/series?since=9d&bucket=1d", NULL, key);
    o = cJSON_Parse(r.body);
    REQUIRE(o);
    double all = 0;
    cJSON_ArrayForEach(b, field(o, "buckets")) all += field(b, "requests")->valuedouble;
    CHECKF(all == 1301, "9 days hold %g requests", all);
    cJSON_Delete(o);
    free(r.body);

    /* bad parameters: 400 naming them; the key guards both */
    const char *bad[][2] = {{"/v1/hearth/drift?window=5x", "window"},
                            {"/v1/hearth/drift?reference=-1d", "reference"},
                            {"/v1/hearth/drift?until=yesterday", "until"},
                            {"/v1/hearth/drift?bins=1", "bins"},
                            {"/v1/hearth/drift?alpha=0.9", "alpha"},
                            {"/v1/hearth/drift?min_samples=x", "min_samples"},
                            {"/v1/hearth/series?bucket=0s", NULL},
                            {"/v1/hearth/series?since=400d&bucket=1m", NULL},
                            {"/v1/hearth/series?bucket=soon", "bucket"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = test_http(&sv, "GET", bad[i][0], NULL, key);
        o = cJSON_Parse(r.body);
        const cJSON *err = o ? field(o, "error") : NULL;
        const cJSON *param = err ? field(err, "param") : NULL;
        CHECKF(
            r.status == 400 && err &&
                (!bad[i][1] || (cJSON_IsString(param) && !strcmp(param->valuestring, bad[i][1]))),
            "%s: %d %s", bad[i][0], r.status, r.body);
        cJSON_Delete(o);
        free(r.body);
    }
    r = test_http(&sv, "GET", "/v1/hearth/drift", NULL, NULL);
    CHECK(r.status == 401);
    free(r.body);
    r = test_http(&sv, "POST", "/v1/hearth/series", "{}", key);
    CHECK(r.status == 405);
    free(r.body);

    CHECK(test_server_stop(&sv) == 0);

    /* --drift-every: the watch's gauges in /metrics and its log line */
    snprintf(args, sizeof args, "-t 1 --ledger '%s' --drift-every 1s", ledger);
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, model, scratch, args));
    char *metrics = NULL;
    for (int i = 0; i < 100 && !metrics; i++) {
        r = test_http(&sv, "GET", "/metrics", NULL, NULL);
        if (r.status == 200 && strstr(r.body, "hearth_drift_status "))
            metrics = r.body;
        else
            free(r.body), test_sleep_ms(100);
    }
    REQUIRE(metrics);
    /* the watch's window ends now: an hour of the shifted day is in its
     * reference, which still leaves the shift plain */
    CHECKF(strstr(metrics, "hearth_drift_status 3\n") &&
               strstr(metrics, "hearth_drift_signal_status{signal=\"conf_mean\"} 3\n") &&
               strstr(metrics, "hearth_drift_psi{signal=\"prompt_tokens\"} 0.") &&
               strstr(metrics, "# TYPE hearth_drift_p_value gauge"),
           "%s", metrics);
    free(metrics);
    CHECK(test_server_stop(&sv) == 0);
    char *log = test_read_file(sv.log, NULL);
    CHECKF(log && strstr(log, "drift: stable -> drift: ") && strstr(log, "conf_mean drift (PSI"),
           "%s", log ? log : "(no log)");
    free(log);
    snprintf(args, sizeof args, "'%s' serve -m '%s' --drift-every 10ms 2>&1 | grep -q 'bad value'",
             HEARTH_BINARY, model);
    CHECK(system(args) == 0);
    fixture_server_cleanup("test_server_drift", scratch, test_failures > 0);
    return test_done("test_server_drift");
}
