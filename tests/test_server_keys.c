/*
 * test_server_keys.c - API keys through `hearth serve` (curl against the real
 * program, the test model, the fake cloud as a priced remote tier): a
 * request without a key or with an unknown one is a 401, an expired key too;
 * the operator's --api-key and an admin key reach the operator's routes,
 * other keys get 403; a key's requests per minute are enforced with OpenAI's
 * x-ratelimit-* headers and a 429 with Retry-After (in Anthropic's shape on
 * /v1/messages); a key limited to the local tier is refused the remote one
 * by name and kept local otherwise; a budget, once spent on the remote tier,
 * keeps a key's requests local ("local") or refuses them ("refuse"); a key
 * limited to some models cannot name another; GET /v1/hearth/key(s) and
 * the ledger's per-key totals say what was spent; keys made and revoked at
 * run time (POST / DELETE /v1/hearth/keys) work at once; and a restarted
 * server reads the spending and the keys made at run time back from the
 * ledger; an open server makes no key.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_keys_srv_XXXXXX";

static const char chat_fmt[] = "{\"model\":\"%s\",\"max_tokens\":2,\"temperature\":0,"
                               "\"messages\":[{\"role\":\"user\",\"content\":\"Say something\"}]}";

typedef struct reply {
    test_reply r;
    cJSON *json;
    char headers[4096];
} reply;

/* One request with `key` (NULL: none) as a bearer token; the response's
 * headers are kept. */
static reply call(test_server *sv, const char *key, const char *method, const char *path,
                  const char *body) {
    reply out;
    char extra[700], hpath[600];
    snprintf(hpath, sizeof hpath, "%s/headers%d", sv->scratch, sv->seq);
    snprintf(extra, sizeof extra, "-D '%s' %s%s%s", hpath, key ? "-H 'Authorization: Bearer " : "",
             key ? key : "", key ? "'" : "");
    out.r = test_http(sv, method, path, body, extra);
    out.json = parse_reply(&out.r);
    char *h = test_read_file(hpath, NULL);
    snprintf(out.headers, sizeof out.headers, "%s", h ? h : "");
    free(h);
    return out;
}

static reply chat(test_server *sv, const char *key, const char *model) {
    char body[512];
    snprintf(body, sizeof body, chat_fmt, model);
    return call(sv, key, "POST", "/v1/chat/completions", body);
}

static void done(reply *r) {
    cJSON_Delete(r->json);
    free(r->r.body);
}

/* A response header's value (case-insensitive name), "" when absent. */
static const char *header(const reply *r, const char *name, char *out, size_t cap) {
    out[0] = '\0';
    for (const char *p = r->headers; *p;) {
        const char *eol = strchr(p, '\n');
        const size_t n = strlen(name);
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') v++;
            size_t len = (size_t)((eol ? eol : v + strlen(v)) - v);
            while (len && (v[len - 1] == '\r' || v[len - 1] == ' ')) len--;
            snprintf(out, cap, "%.*s", (int)len, v);
            break;
        }
        if (!eol) break;
        p = eol + 1;
    }
    return out;
}

static bool code_is(const reply *r, const char *code) {
    const char *c = jstr(r->json, "error.code");
    return c && !strcmp(c, code);
}

static void authentication(test_server *sv) {
    reply r = chat(sv, NULL, "auto");
    CHECKF(r.r.status == 401 && code_is(&r, "invalid_api_key"), "%d %s", r.r.status, r.r.body);
    done(&r);
    r = chat(sv, "nope", "auto");
    CHECK(r.r.status == 401);
    done(&r);
    r = call(sv, NULL, "GET", "/health", NULL);
    CHECK(r.r.status == 200);
    done(&r);
    r = call(sv, "old", "GET", "/v1/models", NULL);
    CHECKF(r.r.status == 401 && code_is(&r, "key_expired") && strstr(r.r.body, "expired at"),
           "%d %s", r.r.status, r.r.body);
    done(&r);
    /* the operator's routes */
    const char *who[] = {"master", "adm", "lim"};
    for (int i = 0; i < 3; i++) {
        r = call(sv, who[i], "GET", "/v1/hearth/stats", NULL);
        CHECKF(r.r.status == (i < 2 ? 200 : 403), "%s: %d", who[i], r.r.status);
        if (i == 2) CHECK(code_is(&r, "admin_required"));
        done(&r);
    }
    r = call(sv, "lim", "GET", "/v1/hearth/keys", NULL);
    CHECK(r.r.status == 403);
    done(&r);
    r = call(sv, "lim", "POST", "/models/unload", "{\"model\":\"x\"}");
    CHECK(r.r.status == 403);
    done(&r);
}

static void rate_limit(test_server *sv) {
    char v[64];
    for (int i = 0; i < 2; i++) {
        reply r = chat(sv, "lim", "auto");
        CHECKF(r.r.status == 200, "%d %s", r.r.status, r.r.body);
        CHECK(!strcmp(header(&r, "x-ratelimit-limit-requests", v, sizeof v), "2"));
        CHECKF(atoi(header(&r, "x-ratelimit-remaining-requests", v, sizeof v)) == 1 - i, "%s", v);
        CHECK(header(&r, "x-ratelimit-reset-requests", v, sizeof v)[0] != '\0');
        done(&r);
    }
    reply r = chat(sv, "lim", "auto");
    CHECKF(r.r.status == 429 && code_is(&r, "rate_limit_exceeded") &&
               strstr(jstr(r.json, "error.message"), "2 requests per minute"),
           "%d %s", r.r.status, r.r.body);
    const int retry = atoi(header(&r, "Retry-After", v, sizeof v));
    CHECKF(retry >= 20 && retry <= 30, "Retry-After %d", retry);
    done(&r);
    /* Anthropic's shape */
    r = call(sv, "lim", "POST", "/v1/messages",
             "{\"model\":\"local\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"Hi\"}]}");
    CHECKF(r.r.status == 429 && jstr(r.json, "error.type") &&
               !strcmp(jstr(r.json, "error.type"), "rate_limit_error"),
           "%d %s", r.r.status, r.r.body);
    done(&r);
    /* what runs no model is not counted */
    r = call(sv, "lim", "GET", "/v1/models", NULL);
    CHECK(r.r.status == 200);
    done(&r);
    r = call(sv, "lim", "GET", "/v1/hearth/key", NULL);
    CHECKF(r.r.status == 200 && jnum(r.json, "rpm") == 2 && jnum(r.json, "remaining_requests") == 0,
           "%s", r.r.body);
    done(&r);
}

static void tiers_and_models(test_server *sv) {
    char v[256];
    reply r = chat(sv, "loc", "cloud");
    CHECKF(r.r.status == 403 && code_is(&r, "tier_not_allowed") &&
               strstr(header(&r, "x-hearth-reason", v, sizeof v), "may not use tier cloud"),
           "%d %s %s", r.r.status, r.r.body, v);
    done(&r);
    r = chat(sv, "loc", "auto");
    CHECKF(r.r.status == 200 && !strcmp(header(&r, "x-hearth-route", v, sizeof v), "local"), "%d",
           r.r.status);
    done(&r);
    r = chat(sv, "mod", "auto");
    CHECKF(r.r.status == 403 && code_is(&r, "model_not_allowed"), "%d %s", r.r.status, r.r.body);
    done(&r);
    /* and it sees none of the server's models; another key sees the one */
    r = call(sv, "mod", "GET", "/v1/models", NULL);
    CHECKF(r.r.status == 200 && cJSON_GetArraySize(jget(r.json, "data")) == 0, "%s", r.r.body);
    done(&r);
    r = call(sv, "loc", "GET", "/v1/models", NULL);
    CHECK(r.r.status == 200 && cJSON_GetArraySize(jget(r.json, "data")) == 1);
    done(&r);
}

/* bud and ref: one remote answer spends each's budget. */
static void budgets(test_server *sv, fake_cloud *fc) {
    char v[256];
    fake_cloud_reset(fc);
    reply r = chat(sv, "bud", "cloud");
    CHECKF(r.r.status == 200 && !strcmp(header(&r, "x-hearth-route", v, sizeof v), "cloud"),
           "%d %s", r.r.status, r.r.body);
    done(&r);
    CHECK(fake_cloud_requests(fc) == 1);
    r = chat(sv, "bud", "cloud");
    CHECKF(r.r.status == 429 && code_is(&r, "insufficient_quota") &&
               strstr(header(&r, "x-hearth-reason", v, sizeof v), "budget is spent"),
           "%d %s", r.r.status, r.r.body);
    done(&r);
    r = chat(sv, "bud", "auto");
    CHECKF(r.r.status == 200 && !strcmp(header(&r, "x-hearth-route", v, sizeof v), "local") &&
               strstr(header(&r, "x-hearth-reason", v, sizeof v), "key bud: its budget is spent"),
           "%d %s", r.r.status, v);
    done(&r);
    CHECK(fake_cloud_requests(fc) == 1); /* nothing more left */
    r = call(sv, "bud", "GET", "/v1/hearth/key", NULL);
    CHECKF(r.r.status == 200 && jnum(r.json, "budget.spent_usd") >= 0.001 &&
               jnum(r.json, "budget.remaining_usd") == 0 && jstr(r.json, "budget.resets_at"),
           "%s", r.r.body);
    done(&r);

    r = chat(sv, "ref", "cloud");
    CHECK(r.r.status == 200);
    done(&r);
    r = chat(sv, "ref", "local");
    CHECKF(r.r.status == 429 && code_is(&r, "insufficient_quota") &&
               atoi(header(&r, "Retry-After", v, sizeof v)) > 0,
           "%d %s", r.r.status, r.r.body);
    done(&r);
}

static void ledger(test_server *sv) {
    reply r = call(sv, "adm", "GET", "/v1/hearth/stats", NULL);
    CHECKF(jnum(r.json, "keys.lim.requests") == 2 && jnum(r.json, "keys.lim.local") == 2 &&
               jnum(r.json, "keys.bud.requests") == 3 && jnum(r.json, "keys.bud.escalated") == 1 &&
               jnum(r.json, "keys.bud.errors") == 1 && jnum(r.json, "keys.bud.cost_usd") >= 0.001,
           "%s", r.r.body);
    done(&r);
    r = call(sv, "adm", "GET", "/v1/hearth/keys", NULL);
    const cJSON *data = jget(r.json, "data");
    CHECKF(r.r.status == 200 && cJSON_GetArraySize(data) == 7, "%s", r.r.body);
    CHECK(!strstr(r.r.body, "key_sha256") && !strstr(r.r.body, "\"lim\":")); /* names, no secrets */
    done(&r);
    /* Prometheus: per key */
    CHECK(test_metric(sv, "hearth_key_requests_total{key=\"lim\"}") == 2);
    CHECK(test_metric(sv, "hearth_key_refused_total{key=\"lim\"}") == 2);
    CHECK(test_metric(sv, "hearth_key_refused_total{key=\"ref\"}") == 1);
    CHECK(test_metric(sv, "hearth_key_in_flight{key=\"bud\"}") == 0);
    test_reply m = test_http(sv, "GET", "/metrics", NULL, NULL);
    const char *spend = strstr(m.body, "hearth_key_spend_usd{key=\"bud\"} ");
    CHECKF(spend && atof(spend + strlen("hearth_key_spend_usd{key=\"bud\"} ")) >= 0.001, "%s",
           spend ? spend : "no spend line");
    free(m.body);
    r = call(sv, "master", "GET", "/v1/hearth/key", NULL);
    CHECK(r.r.status == 200 && cJSON_IsNull(jget(r.json, "name")) &&
          cJSON_IsTrue(jget(r.json, "admin")));
    done(&r);
}

/* Keys made at run time: a secret that works at once, the name checks, a
 * revocation; *kept receives the secret of one that stays. */
static void runtime_keys(test_server *sv, char *kept, size_t cap) {
    reply r = call(sv, "adm", "POST", "/v1/hearth/keys", "{\"name\":\"made\",\"rpm\":1}");
    const char *secret = jstr(r.json, "key");
    CHECKF(r.r.status == 200 && secret && !strncmp(secret, "hk-", 3) && strlen(secret) == 35 &&
               !strcmp(jstr(r.json, "source"), "api") && jnum(r.json, "rpm") == 1,
           "%d %s", r.r.status, r.r.body);
    char made[64];
    snprintf(made, sizeof made, "%s", secret ? secret : "");
    done(&r);
    r = chat(sv, made, "auto");
    CHECKF(r.r.status == 200, "the new key: %d %s", r.r.status, r.r.body);
    done(&r);
    r = chat(sv, made, "auto");
    CHECK(r.r.status == 429); /* its rpm of 1 */
    done(&r);
    static const struct {
        const char *who, *body;
        int status;
        const char *code;
    } bad[] = {
        {"adm", "{\"name\":\"made\"}", 409, "key_exists"},
        {"adm", "{\"name\":\"lim\"}", 409, "key_exists"},
        {"adm", "{\"name\":\"x\",\"key_sha256\":\"00\"}", 400, "invalid_key"},
        {"adm", "{\"name\":\"x\",\"tiers\":[\"nowhere\"]}", 400, "invalid_key"},
        {"adm", "{\"name\":\"x\",\"rpm\":\"many\"}", 400, "invalid_key"},
        {"adm", "not json", 400, "invalid_key"},
        {"lim", "{\"name\":\"x\"}", 403, "admin_required"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = call(sv, bad[i].who, "POST", "/v1/hearth/keys", bad[i].body);
        CHECKF(r.r.status == bad[i].status && code_is(&r, bad[i].code), "%s: %d %s", bad[i].body,
               r.r.status, r.r.body);
        done(&r);
    }
    r = call(sv, "adm", "GET", "/v1/hearth/keys/made", NULL);
    CHECK(r.r.status == 200 && !strcmp(jstr(r.json, "name"), "made") && jstr(r.json, "created_at"));
    CHECK(!strstr(r.r.body, made)); /* the secret is shown once */
    done(&r);
    r = call(sv, "adm", "DELETE", "/v1/hearth/keys/made", NULL);
    CHECK(r.r.status == 200 && cJSON_IsTrue(jget(r.json, "revoked")));
    done(&r);
    r = chat(sv, made, "auto");
    CHECKF(r.r.status == 401, "a revoked key: %d", r.r.status);
    done(&r);
    r = call(sv, "adm", "DELETE", "/v1/hearth/keys/made", NULL);
    CHECK(r.r.status == 404 && code_is(&r, "key_not_found"));
    done(&r);
    r = call(sv, "adm", "DELETE", "/v1/hearth/keys/lim", NULL);
    CHECK(r.r.status == 409 && code_is(&r, "key_in_config"));
    done(&r);
    r = call(sv, "adm", "PUT", "/v1/hearth/keys", "{}");
    char v[64];
    CHECKF(r.r.status == 405 && !strcmp(header(&r, "Allow", v, sizeof v), "GET, POST"), "%d %s",
           r.r.status, v);
    done(&r);
    /* one that stays, and a new key of the revoked one's name */
    r = call(sv, "adm", "POST", "/v1/hearth/keys", "{\"name\":\"made\",\"tiers\":[\"local\"]}");
    CHECK(r.r.status == 200 && jstr(r.json, "key"));
    snprintf(kept, cap, "%s", jstr(r.json, "key") ? jstr(r.json, "key") : "");
    done(&r);
    r = chat(sv, kept, "cloud");
    CHECK(r.r.status == 403 && code_is(&r, "tier_not_allowed"));
    done(&r);
}

/* The configuration: the fake cloud as tier "cloud" (fake_cloud_priced_config)
 * and the keys. */
static bool write_config(const fake_cloud *fc, const char *path) {
    char hex[7][65], more[2048];
    const char *secrets[] = {"adm", "lim", "loc", "bud", "ref", "old", "mod"};
    for (int i = 0; i < 7; i++) gw_sha256_hex(secrets[i], 3, hex[i]);
    snprintf(
        more, sizeof more,
        "\"routing\":{\"confidence_check\":false},\"keys\":["
        "{\"name\":\"adm\",\"key_sha256\":\"%s\",\"admin\":true},"
        "{\"name\":\"lim\",\"key_sha256\":\"%s\",\"rpm\":2},"
        "{\"name\":\"loc\",\"key_sha256\":\"%s\",\"tiers\":[\"local\"]},"
        "{\"name\":\"bud\",\"key_sha256\":\"%s\",\"budget_usd\":0.001},"
        "{\"name\":\"ref\",\"key_sha256\":\"%s\",\"budget_usd\":0.001,\"on_budget\":\"refuse\","
        "\"budget_period\":\"day\"},"
        "{\"name\":\"old\",\"key_sha256\":\"%s\",\"expires\":\"2020-01-01\"},"
        "{\"name\":\"mod\",\"key_sha256\":\"%s\",\"models\":[\"no-such-model\"]}]",
        hex[0], hex[1], hex[2], hex[3], hex[4], hex[5], hex[6]);
    return fake_cloud_priced_config(fc, path, more);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_keys", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    fake_cloud fc = {0};
    REQUIRE(fake_cloud_start(&fc));
    char cfg[700], args[2048];
    snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
    REQUIRE(write_config(&fc, cfg));
    snprintf(args, sizeof args, "-t 1 -c 512 --api-key master --config '%s' --ledger '%s/l.db'",
             cfg, scratch);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    authentication(&sv);
    rate_limit(&sv);
    tiers_and_models(&sv);
    budgets(&sv, &fc);
    ledger(&sv);
    char kept[64];
    runtime_keys(&sv, kept, sizeof kept);
    CHECK(test_server_stop(&sv) == 0);

    /* the spending survives a restart: it is read back from the ledger */
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    reply r = chat(&sv, "bud", "cloud");
    CHECKF(r.r.status == 429 && code_is(&r, "insufficient_quota"), "%d %s", r.r.status, r.r.body);
    done(&r);
    r = chat(&sv, "lim", "auto"); /* the rate limits start afresh */
    CHECK(r.r.status == 200);
    done(&r);
    r = chat(&sv, kept, "auto"); /* the key made at run time is still there */
    CHECKF(r.r.status == 200, "a kept key after the restart: %d %s", r.r.status, r.r.body);
    done(&r);
    r = call(&sv, "adm", "GET", "/v1/hearth/keys", NULL);
    CHECKF(cJSON_GetArraySize(jget(r.json, "data")) == 8, "%s", r.r.body); /* 7 + made */
    done(&r);
    CHECK(test_server_stop(&sv) == 0);

    /* an open server (no --api-key, no keys): nobody may make the first key and
     * lock the others out */
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, "-t 1 -c 512"));
    r = call(&sv, NULL, "POST", "/v1/hearth/keys", "{\"name\":\"mine\"}");
    CHECKF(r.r.status == 403 && code_is(&r, "admin_required"), "%d %s", r.r.status, r.r.body);
    done(&r);
    r = chat(&sv, NULL, "auto");
    CHECK(r.r.status == 200);
    done(&r);
    CHECK(test_server_stop(&sv) == 0);

    fake_cloud_stop(&fc);
    fixture_server_cleanup("test_server_keys", scratch, test_failures > 0);
    return test_done("test_server_keys");
}
