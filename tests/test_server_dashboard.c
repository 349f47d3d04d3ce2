/*
 * test_server_dashboard.c - GET /dashboard on a real `hearth serve` with an
 * API key and a ledger holding known traffic, driven with curl: the page and
 * its files are the source files byte for byte, with their content types,
 * a Content-Security-Policy that allows this origin only, no-cache and
 * nosniff, served without the key while the JSON routes need it; every URL
 * the page names (scanned from its sources) answers 200; the scripts use no
 * markup sinks and name no other origin; node checks the scripts' syntax,
 * runs format.js over the server's real answers and app.js in a small fake
 * DOM against the server (tests/server/dashboard_check.js; skipped with a
 * message without node); --no-dashboard turns the routes into 404s.
 */
#include "drift_fixture.h"

#include "server/http_client.h"
#include "server/model_fixture.h"

#include <ctype.h>
#include <strings.h>

static const char *key = "-H 'Authorization: Bearer sekrit'";
static const char *const files[] = {"index.html", "format.js", "app.js", "app.css"};

static char *source_file(const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/src/server/dashboard/%s", HEARTH_SOURCE_DIR, name);
    return test_read_file(path, len);
}

/* GET path with extra curl arguments; the response headers in *headers
 * (malloc'd). */
static test_reply get_with_headers(test_server *sv, const char *path, const char *extra,
                                   char **headers) {
    char hfile[700], args[1000];
    snprintf(hfile, sizeof hfile, "%s/headers%d", sv->scratch, sv->seq);
    snprintf(args, sizeof args, "%s -D '%s'", extra ? extra : "", hfile);
    test_reply r = test_http(sv, "GET", path, NULL, args);
    *headers = test_read_file(hfile, NULL);
    if (!*headers) *headers = calloc(1, 1);
    return r;
}

/* The value of header `name` (copied into out, "" when absent). */
static void header(const char *headers, const char *name, char *out, size_t cap) {
    out[0] = '\0';
    const size_t n = strlen(name);
    for (const char *p = headers; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, n) != 0 || p[n] != ':') continue;
        p += n + 1;
        while (*p == ' ') p++;
        size_t k = strcspn(p, "\r\n");
        if (k >= cap) k = cap - 1;
        memcpy(out, p, k);
        out[k] = '\0';
        return;
    }
}

/* Every directive allows 'self' or 'none' only: no other origin, scheme,
 * wildcard, 'unsafe-inline' or 'unsafe-eval'; default-src is 'none'. */
static bool csp_strict(const char *csp) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", csp);
    bool default_none = false;
    int n_directives = 0;
    char *save1 = NULL;
    for (char *d = strtok_r(buf, ";", &save1); d; d = strtok_r(NULL, ";", &save1)) {
        char *save2 = NULL;
        const char *name = strtok_r(d, " ", &save2);
        if (!name) continue;
        n_directives++;
        for (const char *v = strtok_r(NULL, " ", &save2); v; v = strtok_r(NULL, " ", &save2)) {
            if (strcmp(v, "'self'") != 0 && strcmp(v, "'none'") != 0) return false;
            if (!strcmp(name, "default-src") && !strcmp(v, "'none'")) default_none = true;
        }
    }
    return default_none && n_directives >= 3;
}

static void check_file_served(test_server *sv, const char *path, const char *name,
                              const char *type) {
    char *h;
    test_reply r = get_with_headers(sv, path, NULL, &h); /* no key */
    size_t len = 0;
    char *want = source_file(name, &len);
    REQUIRE(want);
    CHECKF(r.status == 200, "%s: %d", path, r.status);
    CHECKF(r.len == len && !memcmp(r.body, want, len), "%s: %zu bytes, the source has %zu", path,
           r.len, len);
    char v[1024];
    header(h, "Content-Type", v, sizeof v);
    CHECKF(!strcmp(v, type), "%s: Content-Type %s", path, v);
    header(h, "Cache-Control", v, sizeof v);
    CHECKF(!strcmp(v, "no-cache"), "%s: Cache-Control %s", path, v);
    header(h, "X-Content-Type-Options", v, sizeof v);
    CHECKF(!strcmp(v, "nosniff"), "%s: X-Content-Type-Options %s", path, v);
    header(h, "Content-Security-Policy", v, sizeof v);
    CHECKF(csp_strict(v), "%s: Content-Security-Policy '%s'", path, v);
    free(want);
    free(h);
    free(r.body);
}

/* The same-origin paths a source names: quoted strings that start with '/'
 * and a letter ('/v1/...', "/dashboard/app.js"). */
static int scan_urls(const char *src, char urls[][256], int n, int cap) {
    for (const char *p = src; *p && n < cap; p++) {
        if ((*p != '\'' && *p != '"') || p[1] != '/' || !isalpha((unsigned char)p[2])) continue;
        const char *end = strchr(p + 1, *p);
        if (!end || end - p - 1 >= 256) continue;
        snprintf(urls[n++], 256, "%.*s", (int)(end - p - 1), p + 1);
        p = end;
    }
    return n;
}

/* Ledger rows before the server starts: a week of traffic, plus rows the
 * fixture does not write (costs, an error, a degraded answer, a tier whose
 * name is markup). Returns how many. */
static int write_ledger(const char *path) {
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    unsigned long long s = 5;
    const int64_t now = gw_now_ms();
    traffic t = {.n = 300,
                 .conf_mu = -0.6,
                 .escalate = 0.25,
                 .router_mu = 0.4,
                 .prompt_lo = 10,
                 .prompt_hi = 200,
                 .latency_lo = 50,
                 .latency_hi = 900};
    write_traffic(l, now - 6 * DAY, 6 * DAY - HOUR, &t, &s, NULL, NULL);
    const char *tiers[] = {"cloud", "<img src=x onerror=alert(1)>", "local"};
    for (int i = 0; i < 3; i++) {
        gw_ledger_row r = gw_ledger_row_init();
        r.time_ms = now - (i + 1) * 20 * 60 * 1000;
        r.route = i == 2 ? GW_ROUTE_LOCAL : GW_ROUTE_ESCALATED;
        r.tier = tiers[i];
        r.status = i == 0 ? 502 : 200;
        r.degraded = i == 2;
        r.prompt_tokens = 100;
        r.completion_tokens = 40;
        r.latency_ms = 300;
        r.cost_usd_micro = i == 1 ? 1234 : 0;
        r.cloud_only_cost_usd_micro = 1234;
        REQUIRE(gw_ledger_add(l, &r, NULL) == HEARTH_OK);
    }
    gw_ledger_close(l);
    return t.n + 3;
}

static bool have_node(void) { return system("node --version > /dev/null 2>&1") == 0; }

int main(void) {
    char scratch[] = "/tmp/hearth_srvdash_XXXXXX";
    bool skip;
    const char *model = fixture_server_model("test_server_dashboard", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model);
    char ledger[600], args[1200];
    snprintf(ledger, sizeof ledger, "%s/ledger.db", scratch);
    const int n_rows = write_ledger(ledger);
    snprintf(args, sizeof args, "-t 1 --parallel 2 --api-key sekrit --ledger '%s'", ledger);
    test_server sv;
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, model, scratch, args));

    /* one request of the server's own, so the page shows live traffic too */
    test_reply r = test_http(&sv, "POST", "/v1/completions",
                             "{\"prompt\": \"Once upon a time\", \"max_tokens\": 3}", key);
    CHECKF(r.status == 200, "%d %s", r.status, r.body);
    free(r.body);

    /* the page and its files: the sources' bytes, without a key */
    const char *html = "text/html; charset=utf-8", *js = "text/javascript; charset=utf-8";
    check_file_served(&sv, "/dashboard", "index.html", html);
    check_file_served(&sv, "/dashboard/", "index.html", html);
    check_file_served(&sv, "/dashboard/format.js", "format.js", js);
    check_file_served(&sv, "/dashboard/app.js", "app.js", js);
    check_file_served(&sv, "/dashboard/app.css", "app.css", "text/css; charset=utf-8");
    r = test_http(&sv, "GET", "/v1/hearth/stats", NULL, NULL);
    CHECKF(r.status == 401, "stats without the key: %d", r.status);
    free(r.body);
    const char *refused[][2] = {{"POST", "/dashboard"},
                                {"POST", "/dashboard/app.js"},
                                {"GET", "/dashboard/nothing.js"},
                                {"GET", "/dashboard/../v1/hearth/stats"},
                                {"GET", "/dashboardx"}};
    const int refused_status[] = {405, 405, 404, 404, 404};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        r = test_http(&sv, refused[i][0], refused[i][1], refused[i][0][0] == 'P' ? "{}" : NULL,
                      "--path-as-is"); /* .. reaches the server as it is */
        CHECKF(r.status == refused_status[i], "%s %s: %d", refused[i][0], refused[i][1], r.status);
        free(r.body);
    }

    /* every URL the sources name answers 200 (with the key); only the page
     * loads them, so a failure here is a dead link on the page */
    char urls[64][256];
    int n_urls = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = source_file(files[i], NULL);
        REQUIRE(src);
        n_urls = scan_urls(src, urls, n_urls, 64);
        /* no markup sinks for the server's text, no other origin */
        const char *sinks[] = {"innerHTML",        "outerHTML", "insertAdjacentHTML",
                               "document.write",   "eval(",     "new Function",
                               "setAttribute('on", "https://",  "//cdn"};
        for (size_t k = 0; k < sizeof sinks / sizeof sinks[0]; k++)
            CHECKF(!strstr(src, sinks[k]), "%s uses %s", files[i], sinks[k]);
        const char *http = strstr(src, "http://");
        CHECKF(!http || !strncmp(http, "http://www.w3.org/2000/svg", 26), "%s names %.40s",
               files[i], http);
        free(src);
    }
    CHECKF(n_urls >= 12, "the scan found only %d URLs", n_urls); /* 5 JSON, 4 series, 3 files */
    for (int i = 0; i < n_urls; i++) {
        r = test_http(&sv, "GET", urls[i], NULL, key);
        CHECKF(r.status == 200, "%s: %d %s", urls[i], r.status, r.body);
        free(r.body);
    }

    /* the scripts under node: syntax, then format.js over the real JSON */
    if (have_node()) {
        for (size_t i = 1; i < 3; i++) {
            char cmd[4200];
            snprintf(cmd, sizeof cmd, "node --check '%s/src/server/dashboard/%s'",
                     HEARTH_SOURCE_DIR, files[i]);
            CHECKF(system(cmd) == 0, "node --check %s", files[i]);
        }
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "node '%s/tests/server/dashboard_check.js' '%s' %d sekrit %d 2",
                 HEARTH_SOURCE_DIR, HEARTH_SOURCE_DIR, sv.port, n_rows + 1);
        const int st = system(cmd);
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dashboard_check.js: status %d", st);
    } else {
        printf("test_server_dashboard: node is not installed; skipping node --check and "
               "dashboard_check.js\n");
    }
    CHECK(test_server_stop(&sv) == 0);

    /* --no-dashboard: the routes are gone, the API stays */
    snprintf(args, sizeof args, "-t 1 --api-key sekrit --no-dashboard --ledger '%s'", ledger);
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, model, scratch, args));
    const char *gone[] = {"/dashboard", "/dashboard/", "/dashboard/app.js"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        r = test_http(&sv, "GET", gone[i], NULL, key);
        CHECKF(r.status == 404, "--no-dashboard %s: %d", gone[i], r.status);
        free(r.body);
    }
    r = test_http(&sv, "GET", "/v1/hearth/stats", NULL, key);
    CHECKF(r.status == 200, "--no-dashboard stats: %d", r.status);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);

    fixture_server_cleanup("test_server_dashboard", scratch, test_failures > 0);
    return test_done("test_server_dashboard");
}
