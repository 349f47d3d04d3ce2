/*
 * test_keys.c - the gateway's API keys (src/gateway/keys.c, the "keys" of
 * the configuration): parsing and the errors that name the field, finding a
 * key by its secret, the rate limits as token buckets on a clock the test
 * sets (requests and tokens per minute, requests in flight), budgets per
 * UTC day / week / month with their spending summed from the ledger, the
 * "refuse" and "local" answers to a spent budget, expiry, the tiers and
 * models a key may use, the policy's decisions for a restricted key, the
 * ledger's per-key totals, and the info JSON.
 */
#include "test.h"

#include "gateway/gateway.h"

#include <cjson/cJSON.h>
#include <unistd.h>

static char ledger_path[] = "/tmp/hearth_keys_XXXXXX";

/* SHA-256 of "s1" .. "s4", as `hearth key hash` prints them. */
static char hex[4][65];

static int64_t at(const char *iso) {
    int64_t ms = 0;
    REQUIRE(gw_parse_since(iso, 0, &ms) == HEARTH_OK);
    return ms;
}

static hearth_err parse(gw_config *c, const char *keys_json) {
    char json[8192];
    snprintf(json, sizeof json,
             "{\"tiers\": [{\"name\": \"a\", \"base_url\": \"http://127.0.0.1:1\", \"model\": "
             "\"m\", \"price_per_mtok\": {\"input\": 1, \"output\": 2}},"
             "{\"name\": \"b\", \"base_url\": \"http://127.0.0.1:1\", \"model\": \"m\"}],"
             " \"keys\": %s}",
             keys_json);
    gw_config_init(c);
    hearth_err err = gw_config_parse(c, json, strlen(json), "k.json");
    if (!err) err = gw_config_finish(c);
    return err;
}

static void config_errors(void) {
    static const struct {
        const char *keys, *want;
    } bad[] = {
        {"{}", "must be an array"},
        {"[{\"name\": \"x\"}]", "keys[0].key_sha256: give it or key_env"},
        {"[{\"name\": \"x\", \"key_sha256\": \"abc\"}]", "64 hex digits"},
        {"[{\"name\": \"x\", \"key_env\": \"HEARTH_TEST_UNSET_VAR\"}]", "unset or empty"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"rpn\": 3}]", "keys[0].rpn: unknown key"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"rpm\": -1}]", "keys[0].rpm: must be"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"budget_usd\": \"1.0000001\"}]",
         "budget_usd"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"budget_period\": \"year\"}]",
         "budget_period"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"on_budget\": \"ignore\"}]", "on_budget"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"expires\": \"7d\"}]", "expires"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"tiers\": [\"c\"]}]", "no tier 'c'"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\", \"models\": [1]}]", "keys[0].models"},
        {"[{\"name\": \"x y\", \"key_sha256\": \"HEX\"}]", "name 'x y'"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\"}, {\"name\": \"x\", \"key_sha256\": \"HEX\"}]",
         "two keys are named 'x'"},
        {"[{\"name\": \"x\", \"key_sha256\": \"HEX\"}, {\"name\": \"y\", \"key_env\": "
         "\"HEARTH_TEST_KEY\"}]",
         "have the same secret"},
    };
    setenv("HEARTH_TEST_KEY", "s1", 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char keys[1024];
        size_t k = 0;
        for (const char *p = bad[i].keys; *p && k + 65 < sizeof keys;) { /* HEX: s1's digest */
            if (!strncmp(p, "HEX", 3)) {
                memcpy(keys + k, hex[0], 64);
                k += 64;
                p += 3;
            } else {
                keys[k++] = *p++;
            }
        }
        keys[k] = '\0';
        gw_config c;
        const hearth_err err = parse(&c, keys);
        CHECKF(err && strstr(hearth_last_error(), bad[i].want), "%s -> %s", keys,
               err ? hearth_last_error() : "accepted");
        gw_config_fini(&c);
    }
}

/* Requests and tokens per minute, requests in flight, and the headers. */
static void rate_limits(gw_keys *ks, int64_t t0) {
    gw_key *k = gw_keys_find(ks, "s1", 2); /* rpm 3, tpm 100 */
    REQUIRE(k);
    gw_key_verdict v;
    for (int i = 0; i < 3; i++) {
        CHECK(gw_key_admit(k, t0, true, &v));
        CHECK(v.limit_requests == 3 && v.remaining_requests == 2 - i);
        gw_key_done(k, t0, 10);
    }
    CHECK(v.limit_tokens == 100 && v.remaining_tokens == 80); /* before the third's tokens */
    CHECK(!gw_key_admit(k, t0, true, &v));
    CHECKF(v.status == 429 && !strcmp(v.code, "rate_limit_exceeded") && v.retry_after_s == 20,
           "%d %s %d", v.status, v.code, v.retry_after_s);
    CHECK(strstr(v.message, "3 requests per minute") != NULL);
    CHECK(gw_key_admit(k, t0, false, &v)); /* not metered: only the expiry counts */
    CHECK(!gw_key_admit(k, t0 + 19000, true, &v));
    CHECK(gw_key_admit(k, t0 + 20000, true, &v)); /* one request refilled */
    /* tokens: full again (100) by now; a request of 150 leaves the bucket at -50 */
    gw_key_done(k, t0 + 20000, 150);
    CHECK(!gw_key_admit(k, t0 + 40000, true, &v)); /* a request refilled; tokens -16.7 */
    CHECKF(v.status == 429 && strstr(v.message, "100 tokens per minute") && v.retry_after_s == 11 &&
               v.remaining_tokens == 0,
           "%d %s %d", v.status, v.message, v.retry_after_s);
    CHECK(!gw_key_admit(k, t0 + 49000, true, &v));
    CHECK(gw_key_admit(k, t0 + 51000, true, &v));
    gw_key_done(k, t0 + 51000, 0);

    gw_key *p = gw_keys_find(ks, "s2", 2); /* max_parallel 1 */
    REQUIRE(p);
    CHECK(gw_key_admit(p, t0, true, &v));
    CHECK(v.limit_requests == 0 && v.limit_tokens == 0);
    CHECK(!gw_key_admit(p, t0, true, &v) && v.status == 429 && v.retry_after_s == 1);
    gw_key_done(p, t0, 5);
    CHECK(gw_key_admit(p, t0, true, &v));
    gw_key_done(p, t0, 5);
}

static void budgets(gw_keys *ks, int64_t now) {
    gw_key_verdict v;
    bool denied[GW_MAX_TIERS], spent;
    /* s2: $1 a month, refuse; the ledger had $0.70 this month and $5 last month */
    gw_key *r = gw_keys_find(ks, "s2", 2);
    gw_key_grant(r, now, denied, &spent);
    CHECK(!spent && !denied[1] && !denied[2]);
    CHECK(gw_key_admit(r, now, true, &v));
    gw_key_done(r, now, 1);
    gw_key_spend(r, now, 300000); /* exactly $1 */
    gw_key_grant(r, now, denied, &spent);
    CHECK(spent);
    CHECK(!gw_key_admit(r, now, true, &v));
    const int64_t dec1 = at("2026-12-01");
    CHECKF(v.status == 429 && !strcmp(v.code, "insufficient_quota") &&
               v.retry_after_s == (int)((dec1 - now) / 1000),
           "%d %s %d", v.status, v.code, v.retry_after_s);
    CHECK(gw_key_admit(r, dec1, true, &v)); /* a new month */
    gw_key_done(r, dec1, 1);
    gw_key_grant(r, dec1, denied, &spent);
    CHECK(!spent);

    /* s3: $0.50 a day, answered locally once spent; only tier a */
    gw_key *l = gw_keys_find(ks, "s3", 2);
    gw_key_grant(l, now, denied, &spent);
    CHECK(!spent && !denied[1] && denied[2] && !denied[0]);
    gw_key_spend(l, now, 500000);
    gw_key_grant(l, now, denied, &spent);
    CHECK(spent);
    CHECK(gw_key_admit(l, now, true, &v)); /* still admitted: the policy keeps it local */
    gw_key_done(l, now, 1);
    CHECK(gw_key_allows_model(l, "qwen") && !gw_key_allows_model(l, "llama"));
    CHECK(gw_key_allows_model(r, "anything"));

    /* s4: expired yesterday */
    gw_key *e = gw_keys_find(ks, "s4", 2);
    CHECK(!gw_key_admit(e, now, false, &v) && v.status == 401 && !strcmp(v.code, "key_expired"));
    CHECK(gw_key_admit(e, at("2026-11-20"), true, &v));
    gw_key_done(e, now, 0);
}

static void bounds(void) {
    int64_t s, e;
    gw_budget_bounds(GW_BUDGET_WEEK, at("2026-11-22T23:59:59Z"), &s, &e); /* a Sunday */
    CHECK(s == at("2026-11-16") && e == at("2026-11-23"));
    gw_budget_bounds(GW_BUDGET_WEEK, at("2026-11-23"), &s, &e); /* Monday */
    CHECK(s == at("2026-11-23") && e == at("2026-11-30"));
    gw_budget_bounds(GW_BUDGET_MONTH, at("2026-12-31T12:00:00Z"), &s, &e);
    CHECK(s == at("2026-12-01") && e == at("2027-01-01"));
    gw_budget_bounds(GW_BUDGET_MONTH, at("2028-02-29T00:00:00Z"), &s, &e);
    CHECK(s == at("2028-02-01") && e == at("2028-03-01"));
    gw_budget_bounds(GW_BUDGET_DAY, at("2026-11-22T12:00:00Z"), &s, &e);
    CHECK(s == at("2026-11-22") && e == at("2026-11-23"));
    gw_budget_bounds(GW_BUDGET_TOTAL, at("2026-11-22"), &s, &e);
    CHECK(s == 0 && e == INT64_MAX);
}

/* A restricted key in the routing policy. */
static void policy(const gw_config *c) {
    gw_signals s = {.text = "hello", .text_len = 5, .router_score = NAN, .router_threshold = NAN};
    for (int i = 0; i < GW_MAX_TIERS; i++) s.available[i] = true;
    s.key = "k";
    s.key_denied[2] = true;
    gw_decision d;
    s.model = "b"; /* explicitly a tier the key may not use */
    gw_policy_decide(c, &s, &d);
    CHECKF(d.refuse && d.refuse_status == 403 && strstr(d.reason, "key k: may not use tier b"),
           "%s", d.reason);
    s.model = "a";
    gw_policy_decide(c, &s, &d);
    CHECK(!d.refuse && d.tier == 1);
    s.key_budget_spent = true;
    gw_policy_decide(c, &s, &d);
    CHECKF(d.refuse && d.refuse_status == 429 && strstr(d.reason, "budget is spent"), "%s",
           d.reason);
    s.model = NULL; /* auto: local, and no escalation the budget cannot pay for */
    gw_policy_decide(c, &s, &d);
    CHECKF(!d.refuse && d.tier == 0 && !d.check_confidence &&
               !strcmp(d.reason, "local: key k: its budget is spent"),
           "%s", d.reason);
    s.key_budget_spent = false;
    gw_policy_decide(c, &s, &d);
    CHECKF(d.tier == 0 && d.check_confidence, "%s", d.reason); /* escalation to a is allowed */
    s.key = NULL;                                              /* no key: nothing denied */
    s.model = "b";
    gw_policy_decide(c, &s, &d);
    CHECK(!d.refuse && d.tier == 2);
}

static void info(gw_keys *ks, int64_t now) {
    char *json = gw_key_info_json(gw_keys_find(ks, "s3", 2), now);
    cJSON *o = cJSON_Parse(json);
    REQUIRE(o);
    const cJSON *b = cJSON_GetObjectItem(o, "budget");
    CHECK(!strcmp(cJSON_GetObjectItem(o, "name")->valuestring, "daily"));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "rpm")));
    CHECK(b && cJSON_GetObjectItem(b, "usd")->valuedouble == 0.5 &&
          cJSON_GetObjectItem(b, "spent_usd")->valuedouble == 0.5 &&
          cJSON_GetObjectItem(b, "remaining_usd")->valuedouble == 0 &&
          !strcmp(cJSON_GetObjectItem(b, "period")->valuestring, "day") &&
          !strcmp(cJSON_GetObjectItem(b, "resets_at")->valuestring, "2026-11-23T00:00:00Z") &&
          !strcmp(cJSON_GetObjectItem(b, "on_budget")->valuestring, "local"));
    const cJSON *tiers = cJSON_GetObjectItem(o, "tiers");
    CHECK(cJSON_GetArraySize(tiers) == 2 &&
          !strcmp(cJSON_GetArrayItem(tiers, 1)->valuestring, "a"));
    cJSON_Delete(o);
    free(json);
    json = gw_key_info_json(gw_keys_find(ks, "s1", 2), now);
    o = cJSON_Parse(json);
    CHECK(cJSON_GetObjectItem(o, "rpm")->valueint == 3 &&
          cJSON_IsNull(cJSON_GetObjectItem(o, "budget")) &&
          cJSON_IsNull(cJSON_GetObjectItem(o, "tiers")) &&
          cJSON_IsTrue(cJSON_GetObjectItem(o, "admin")));
    cJSON_Delete(o);
    free(json);
}

/* Keys made at run time: kept in the ledger, read back, revoked; one whose
 * tier is gone from the configuration is left out, saying why. */
static void runtime(gw_ledger *l, const gw_config *c, int64_t now) {
    gw_keys *ks = NULL;
    REQUIRE(gw_keys_new(c, l, now, &ks) == HEARTH_OK);
    const int before = gw_keys_count(ks);
    char secret[GW_KEY_SECRET_LEN + 1], other[GW_KEY_SECRET_LEN + 1];
    gw_key *k = NULL;
    int status = 0;
    const char *json = "{\"name\": \"made\", \"tiers\": [\"b\"], \"rpm\": 5}";
    REQUIRE(gw_keys_create(ks, json, strlen(json), now, secret, &k, &status) == HEARTH_OK);
    CHECK(strlen(secret) == 35 && !strncmp(secret, "hk-", 3));
    CHECK(gw_keys_find(ks, secret, strlen(secret)) == k && gw_keys_count(ks) == before + 1);
    CHECK(gw_keys_create(ks, json, strlen(json), now, other, &k, &status) != HEARTH_OK &&
          status == 409);
    const char *bad = "{\"name\": \"x\", \"key_sha256\": \"ab\"}";
    CHECK(gw_keys_create(ks, bad, strlen(bad), now, other, &k, &status) != HEARTH_OK &&
          status == 400);
    const char *json2 = "{\"name\": \"gone\"}";
    REQUIRE(gw_keys_create(ks, json2, strlen(json2), now, other, &k, &status) == HEARTH_OK);
    CHECK(gw_keys_revoke(ks, "gone", now, &status) == HEARTH_OK);
    CHECK(gw_keys_find(ks, other, strlen(other)) == NULL);
    CHECK(gw_keys_revoke(ks, "gone", now, &status) != HEARTH_OK && status == 404);
    CHECK(gw_keys_revoke(ks, "fast", now, &status) != HEARTH_OK && status == 409);
    gw_keys_free(ks);

    /* read back: "made" works, "gone" stays revoked */
    REQUIRE(gw_keys_new(c, l, now, &ks) == HEARTH_OK);
    k = gw_keys_find(ks, secret, strlen(secret));
    CHECK(k && gw_key_spec_of(k)->rpm == 5 && gw_keys_find(ks, other, strlen(other)) == NULL);
    const char *why;
    CHECK(gw_keys_skipped(ks, &why) == 0);
    gw_keys_free(ks);

    /* a configuration without tier b: "made" is left out */
    gw_config c1;
    gw_config_init(&c1);
    const char *one = "{\"tiers\": [{\"name\": \"a\", \"base_url\": \"http://127.0.0.1:1\","
                      " \"model\": \"m\"}]}";
    REQUIRE(gw_config_parse(&c1, one, strlen(one), "c1") == HEARTH_OK);
    REQUIRE(gw_config_finish(&c1) == HEARTH_OK);
    REQUIRE(gw_keys_new(&c1, l, now, &ks) == HEARTH_OK);
    CHECKF(gw_keys_skipped(ks, &why) == 1 && strstr(why, "made") && strstr(why, "no tier 'b'"),
           "%s", why);
    CHECK(gw_keys_find(ks, secret, strlen(secret)) == NULL);
    gw_keys_free(ks);
    gw_config_fini(&c1);
}

int main(void) {
    const char *secrets[] = {"s1", "s2", "s3", "s4"};
    for (int i = 0; i < 4; i++) gw_sha256_hex(secrets[i], 2, hex[i]);
    config_errors();
    bounds();

    /* the ledger: s2 ("monthly") spent $0.70 this month and $5 last month */
    const int fd = mkstemp(ledger_path);
    REQUIRE(fd >= 0);
    close(fd);
    unlink(ledger_path);
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(ledger_path, &l) == HEARTH_OK);
    const int64_t now = at("2026-11-22T12:00:00Z");
    const struct {
        const char *key, *when;
        int64_t cost;
    } rows[] = {{"monthly", "2026-11-01", 400000},
                {"monthly", "2026-11-22T11:00:00Z", 300000},
                {"monthly", "2026-10-31T23:59:59Z", 5000000},
                {NULL, "2026-11-22", 9000000}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        gw_ledger_row row = gw_ledger_row_init();
        row.time_ms = at(rows[i].when);
        row.tier = "a";
        row.status = 200;
        row.prompt_tokens = 10;
        row.cost_usd_micro = rows[i].cost;
        row.api_key = rows[i].key;
        REQUIRE(gw_ledger_add(l, &row, NULL) == HEARTH_OK);
    }
    gw_stats st;
    REQUIRE(gw_ledger_stats(l, 0, &st) == HEARTH_OK);
    CHECK(st.n_keys == 1 && !strcmp(st.keys[0].name, "monthly") && st.keys[0].requests == 3 &&
          st.keys[0].escalated == 3 && st.keys[0].cost_usd_micro == 5700000);
    /* one key's rows alone, since a time too; and the CLI's report of them */
    REQUIRE(gw_ledger_stats_key(l, 0, "monthly", &st) == HEARTH_OK);
    CHECK(st.requests == 3 && st.cost_usd_micro == 5700000 && st.n_tiers == 1 &&
          st.tiers[0].requests == 3);
    REQUIRE(gw_ledger_stats_key(l, at("2026-11-01"), "monthly", &st) == HEARTH_OK);
    CHECK(st.requests == 2 && st.cost_usd_micro == 700000);
    REQUIRE(gw_ledger_stats_key(l, 0, "nobody", &st) == HEARTH_OK);
    CHECK(st.requests == 0 && st.n_tiers == 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' ledger report --db '%s' --key monthly --json", HEARTH_BINARY,
             ledger_path);
    FILE *p = popen(cmd, "r");
    char out[4096] = "";
    const size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[got] = '\0';
    if (p) pclose(p);
    cJSON *rep = cJSON_Parse(out);
    CHECKF(cJSON_GetObjectItem(rep, "requests") &&
               cJSON_GetObjectItem(rep, "requests")->valueint == 3 &&
               !strcmp(cJSON_GetObjectItem(rep, "key")->valuestring, "monthly"),
           "%s", out);
    cJSON_Delete(rep);

    char keys[2048];
    snprintf(keys, sizeof keys,
             "[{\"name\": \"fast\", \"key_sha256\": \"%s\", \"rpm\": 3, \"tpm\": 100, "
             "\"admin\": true},"
             "{\"name\": \"monthly\", \"key_env\": \"HEARTH_TEST_KEY2\", \"max_parallel\": 1, "
             "\"budget_usd\": 1, \"on_budget\": \"refuse\"},"
             "{\"name\": \"daily\", \"key_sha256\": \"%s\", \"budget_usd\": \"0.5\", "
             "\"budget_period\": \"day\", \"tiers\": [\"local\", \"a\"], \"models\": [\"qwen\"]},"
             "{\"name\": \"old\", \"key_sha256\": \"%s\", \"expires\": \"2026-11-21\"}]",
             hex[0], hex[2], hex[3]);
    setenv("HEARTH_TEST_KEY2", "s2", 1);
    gw_config c;
    REQUIRE(parse(&c, keys) == HEARTH_OK);
    REQUIRE(c.n_keys == 4);
    gw_keys *ks = NULL;
    REQUIRE(gw_keys_new(&c, l, now, &ks) == HEARTH_OK);
    CHECK(gw_keys_count(ks) == 4);
    CHECK(gw_keys_find(ks, "s5", 2) == NULL && gw_keys_find(ks, "s1", 1) == NULL);
    CHECK(!strcmp(gw_key_spec_of(gw_keys_find(ks, "s2", 2))->name, "monthly"));

    rate_limits(ks, now);
    budgets(ks, now);
    info(ks, now);
    /* the next day, the daily key's budget is whole again */
    bool denied[GW_MAX_TIERS], spent;
    gw_key_grant(gw_keys_find(ks, "s3", 2), at("2026-11-23"), denied, &spent);
    CHECK(!spent);
    policy(&c);
    gw_keys_free(ks);
    runtime(l, &c, now);

    gw_config_fini(&c);
    gw_ledger_close(l);
    unlink(ledger_path);
    return test_done("test_keys");
}
