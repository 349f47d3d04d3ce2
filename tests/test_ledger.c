/*
 * test_ledger.c - the ledger and audit log on a real SQLite file: WAL mode
 * and the schema version; rows written by several threads at once all
 * arrive; the aggregates (counts, costs, savings, nearest-rank p50/p95 per
 * tier) against the same numbers computed here from the rows the test
 * wrote; --since parsing; a database from a newer Hearth is refused; the
 * audit log holds digests, never text; and `hearth ledger report` (the real
 * program) reads the file.
 */
#include "test.h"

#include "gateway/gateway.h"
#include "gateway/ledger_query.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/hearth_ledger_XXXXXX";
static char db_path[256];

/* ---- rows and aggregates ------------------------------------------------- */

enum { N_ROWS = 300 };

typedef struct ref_row {
    const char *tier;
    int status;
    int64_t latency, cost, cloud;
    bool degraded;
    int64_t time_ms;
} ref_row;

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank, computed independently of the ledger's code. */
static double ref_percentile(const ref_row *rows, int n, const char *tier, int64_t since,
                             double p) {
    int64_t v[N_ROWS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].tier, tier) && rows[i].time_ms >= since) v[k++] = rows[i].latency;
    if (!k) return 0;
    qsort(v, (size_t)k, sizeof *v, cmp_i64);
    int rank = (int)((p * k + 99) / 100); /* ceil(p/100 * k) for integer p */
    if (rank < 1) rank = 1;
    return (double)v[rank - 1];
}

static void check_stats(gw_ledger *l, const ref_row *rows, int n, int64_t since) {
    gw_stats s;
    REQUIRE(gw_ledger_stats(l, since, &s) == HEARTH_OK);
    int64_t req = 0, local = 0, esc = 0, err = 0, deg = 0, cost = 0, cloud = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].time_ms < since) continue;
        req++;
        if (rows[i].status >= 400)
            err++;
        else if (!strcmp(rows[i].tier, "local"))
            local++;
        else
            esc++;
        deg += rows[i].degraded;
        cost += rows[i].cost;
        cloud += rows[i].cloud;
    }
    CHECK(s.requests == req);
    CHECK(s.local == local);
    CHECK(s.escalated == esc);
    CHECK(s.errors == err);
    CHECK(s.degraded == deg);
    CHECK(s.cost_usd_micro == cost);
    CHECK(s.cloud_only_cost_usd_micro == cloud);
    CHECK(fabs(s.savings_pct - 100.0 * (1.0 - (double)cost / (double)cloud)) < 1e-9);
    CHECK(s.n_tiers == 3);
    int64_t tier_total = 0;
    for (int t = 0; t < s.n_tiers; t++) {
        tier_total += s.tiers[t].requests;
        CHECKF(s.tiers[t].p50_ms == ref_percentile(rows, n, s.tiers[t].tier, since, 50),
               "%s p50 %.0f", s.tiers[t].tier, s.tiers[t].p50_ms);
        CHECKF(s.tiers[t].p95_ms == ref_percentile(rows, n, s.tiers[t].tier, since, 95),
               "%s p95 %.0f", s.tiers[t].tier, s.tiers[t].p95_ms);
        if (t) CHECK(s.tiers[t].requests <= s.tiers[t - 1].requests);
    }
    CHECK(tier_total == req);
}

static void test_rows_and_stats(void) {
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(db_path, &l) == HEARTH_OK);
    CHECK(db_int(db_path, "PRAGMA user_version") == 8);
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(db_path, &db) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(!strcmp((const char *)sqlite3_column_text(st, 0), "wal"));
    sqlite3_finalize(st);
    sqlite3_close(db);

    static ref_row rows[N_ROWS];
    static const char *const tiers[3] = {"local", "cloud", "claude"};
    unsigned long long seed = 7;
    const int64_t t0 = 1700000000000LL;
    for (int i = 0; i < N_ROWS; i++) {
        ref_row *r = &rows[i];
        const unsigned long long x = test_rand_u64(&seed);
        r->tier = tiers[x % 10 < 7 ? 0 : x % 10 < 9 ? 1 : 2];
        r->status = x % 23 == 0 ? 502 : 200;
        r->latency = (int64_t)(test_rand_u64(&seed) % 5000);
        r->cloud = (int64_t)(test_rand_u64(&seed) % 100000) + 1;
        r->cost = strcmp(r->tier, "local") ? r->cloud : 0;
        r->degraded = !strcmp(r->tier, "local") && x % 17 == 0;
        r->time_ms = t0 + i * 1000;
        gw_ledger_row row = gw_ledger_row_init();
        row.time_ms = r->time_ms;
        row.route = r->cost ? GW_ROUTE_ESCALATED : GW_ROUTE_LOCAL;
        row.tier = r->tier;
        row.reason = r->degraded ? "degraded: all remote tiers down" : "policy";
        row.status = r->status;
        row.prompt_tokens = 10 + i;
        row.completion_tokens = 5;
        row.latency_ms = r->latency;
        row.cost_usd_micro = r->cost;
        row.cloud_only_cost_usd_micro = r->cloud;
        row.degraded = r->degraded;
        row.conf_mean = -0.5;
        int64_t id = 0;
        REQUIRE(gw_ledger_add(l, &row, &id) == HEARTH_OK);
        CHECK(id == i + 1);
    }
    check_stats(l, rows, N_ROWS, 0);
    check_stats(l, rows, N_ROWS, t0 + 200 * 1000); /* the last 100 rows */

    /* NULL scores and opt-in text stay NULL */
    CHECK(db_int(db_path, "SELECT count(*) FROM requests WHERE router_score IS NULL AND "
                          "conf_min IS NULL AND conf_mean = -0.5 AND prompt IS NULL") == N_ROWS);

    /* the JSON GET /v1/hearth/stats serves */
    gw_stats s;
    REQUIRE(gw_ledger_stats(l, 0, &s) == HEARTH_OK);
    char *json = gw_stats_json(&s);
    cJSON *o = cJSON_Parse(json);
    REQUIRE(o);
    static const char *const keys[] = {
        "requests", "local", "escalated", "cost_usd", "cloud_only_cost_usd", "savings_pct"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CHECKF(cJSON_IsNumber(cJSON_GetObjectItem(o, keys[i])), "%s", keys[i]);
    CHECK(cJSON_GetObjectItem(o, "requests")->valuedouble == N_ROWS);
    CHECK(fabs(cJSON_GetObjectItem(o, "cost_usd")->valuedouble - (double)s.cost_usd_micro / 1e6) <
          1e-9);
    const cJSON *lt = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "tiers"), "local");
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(lt, "p95_ms")));
    cJSON_Delete(o);
    free(json);
    char *text = gw_stats_text(&s);
    CHECK(strstr(text, "savings") && strstr(text, "claude"));
    free(text);
    gw_ledger_close(l);
}

/* ---- several writers ------------------------------------------------------- */

typedef struct writer {
    gw_ledger *l;
    int n;
    int failures;
} writer;

static void *write_rows(void *arg) {
    writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        gw_ledger_row row = gw_ledger_row_init();
        row.tier = "local";
        row.reason = "thread";
        row.status = 200;
        row.prompt = "opted in";
        w->failures += gw_ledger_add(w->l, &row, NULL) != HEARTH_OK;
    }
    return NULL;
}

static void test_threads(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/threads.db", dir);
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    /* a second connection (as a second process would have) writes too */
    gw_ledger *l2 = NULL;
    REQUIRE(gw_ledger_open(path, &l2) == HEARTH_OK);
    pthread_t th[6];
    writer w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (writer){i % 2 ? l2 : l, 150, 0};
        REQUIRE(pthread_create(&th[i], NULL, write_rows, &w[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    CHECK(failures == 0);
    int64_t n = 0;
    REQUIRE(gw_ledger_count(l, &n) == HEARTH_OK);
    CHECK(n == 900);
    gw_ledger_close(l2);
    gw_ledger_close(l);
    CHECK(db_int(path, "SELECT count(*) FROM requests WHERE prompt = 'opted in'") == 900);
}

/* ---- the audit log ---------------------------------------------------------- */

static void test_audit(void) {
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(db_path, &l) == HEARTH_OK);
    const char *sent = "{\"messages\":[{\"role\":\"user\",\"content\":\"mail <EMAIL_1>\"}]}";
    char h1[65], h2[65];
    gw_sha256_hex(sent, strlen(sent), h1);
    gw_sha256_hex("ok", 2, h2);
    gw_audit_row a = {.tier = "cloud",
                      .action = "sent",
                      .entities = "EMAIL:1",
                      .sent_sha256 = h1,
                      .received_sha256 = h2};
    REQUIRE(gw_audit_add(l, &a) == HEARTH_OK);
    a.action = "blocked";
    a.entities = "SSN:1";
    a.sent_sha256 = a.received_sha256 = "";
    REQUIRE(gw_audit_add(l, &a) == HEARTH_OK);
    int64_t n = 0;
    REQUIRE(gw_audit_count(l, &n) == HEARTH_OK);
    CHECK(n == 2);
    gw_ledger_close(l);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE sent_sha256 = '%s' AND entities = 'EMAIL:1'", h1);
    CHECK(db_int(db_path, sql) == 1);
}

/* ---- schema versions ----------------------------------------------------------- */

static void test_versions(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/future.db", dir);
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    gw_ledger *l = NULL;
    CHECK(gw_ledger_open(path, &l) == HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "version 99") != NULL);
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", dir);
    CHECK(gw_ledger_open(path, &l) == HEARTH_ERR_IO);
    REQUIRE(gw_ledger_open(":memory:", &l) == HEARTH_OK);
    gw_ledger_close(l);

    /* a ledger of version 1 (before API keys) gains the api_key column and
     * the api_keys table */
    snprintf(path, sizeof path, "%s/v1.db", dir);
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    gw_ledger_close(l);
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "DROP INDEX requests_key; ALTER TABLE requests DROP COLUMN api_key;"
                         "ALTER TABLE requests DROP COLUMN remote_reasoning;"
                         "ALTER TABLE requests DROP COLUMN endpoint;"
                         "DROP TABLE api_keys; DROP TABLE response_cache;"
                         "PRAGMA user_version = 1",
                         NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(db_int(path, "PRAGMA user_version") == 1);
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    gw_ledger_row row = gw_ledger_row_init();
    row.tier = "local";
    row.status = 200;
    row.api_key = "team";
    CHECK(gw_ledger_add(l, &row, NULL) == HEARTH_OK);
    gw_ledger_close(l);
    CHECK(db_int(path, "PRAGMA user_version") == 8);
    CHECK(db_int(path, "SELECT count(*) FROM requests WHERE api_key = 'team'") == 1);
    CHECK(db_int(path, "SELECT count(*) FROM api_keys") == 0);
}

/* ---- --since ---------------------------------------------------------------- */

static void test_since(void) {
    const int64_t now = 1714564800000LL; /* 2024-05-01T12:00:00Z */
    int64_t v = 0;
    CHECK(gw_parse_since("90s", now, &v) == HEARTH_OK && v == now - 90000);
    CHECK(gw_parse_since("30m", now, &v) == HEARTH_OK && v == now - 1800000);
    CHECK(gw_parse_since("24h", now, &v) == HEARTH_OK && v == now - 86400000);
    CHECK(gw_parse_since("7d", now, &v) == HEARTH_OK && v == now - 7 * 86400000LL);
    CHECK(gw_parse_since("1.5h", now, &v) == HEARTH_OK && v == now - 5400000);
    CHECK(gw_parse_since("1970-01-02", now, &v) == HEARTH_OK && v == 86400000);
    CHECK(gw_parse_since("2024-05-01T12:00:00Z", now, &v) == HEARTH_OK && v == now);
    CHECK(gw_parse_since("2024-05-01 12:00", now, &v) == HEARTH_OK && v == now);
    CHECK(gw_parse_since("2000-03-01", now, &v) == HEARTH_OK && v == 951868800000LL);
    CHECK(gw_parse_since("2024-13-01", now, &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_since("yesterday", now, &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_since("5y", now, &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_since("2024-05-01Tnoon", now, &v) == HEARTH_ERR_INVALID_ARG);
    /* sscanf's %2d takes a sign: negative fields are no time */
    CHECK(gw_parse_since("2024-05-01T-1:00:00Z", now, &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_since("2024-05-01 12:-5", now, &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_since("2024-05-01T12:00:-1", now, &v) == HEARTH_ERR_INVALID_ARG);
}

/* ---- the CLI -------------------------------------------------------------------- */

static void test_cli(void) {
    char cmd[1024], out[300];
    snprintf(out, sizeof out, "%s/report.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' ledger report --db '%s' > '%s' 2>&1", HEARTH_BINARY, db_path,
             out);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(out, "r");
    REQUIRE(f);
    char text[8192];
    const size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECKF(strstr(text, "requests since the beginning: 300") && strstr(text, "savings"), "%s",
           text);
    snprintf(cmd, sizeof cmd,
             "'%s' ledger report --db '%s' --since 2023-11-14T22:16:40Z --json > '%s'",
             HEARTH_BINARY, db_path, out);
    CHECK(system(cmd) == 0);
    f = fopen(out, "r");
    REQUIRE(f);
    const size_t m = fread(text, 1, sizeof text - 1, f);
    text[m] = '\0';
    fclose(f);
    cJSON *o = cJSON_Parse(text);
    const cJSON *req = cJSON_GetObjectItem(o, "requests");
    CHECKF(cJSON_IsNumber(req) && req->valuedouble == 100, "%s", text);
    cJSON_Delete(o);
    snprintf(cmd, sizeof cmd, "'%s' ledger report --db '%s' --since tomorrow >/dev/null 2>&1",
             HEARTH_BINARY, db_path);
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "'%s' ledger report --db '%s/missing/x.db' >/dev/null 2>&1",
             HEARTH_BINARY, dir);
    CHECK(WEXITSTATUS(system(cmd)) == 1);
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/ledger.db", dir);
    test_rows_and_stats();
    test_threads();
    test_audit();
    test_versions();
    test_since();
    test_cli();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_done("test_ledger");
}
