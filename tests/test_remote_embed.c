/*
 * test_remote_embed.c - remote embeddings and rerank in the gateway
 * (src/gateway/cloud_embed.c, embed.c), without the server: the
 * configuration (embedding_models, rerank_models, their paths and errors),
 * the endpoints' URLs, the reader of a tier's answers on good and
 * malformed JSON, and gw_embed against the fake cloud (tests/gateway/
 * fake_embed.h): vectors and rerank results, the privacy guard (what the
 * tier received holds placeholders; a blocked entity is refused without a
 * call), air-gapped and API key refusals, a tier that is down (connection
 * refused), slow (timeout), failing once (retried), rejecting, answering
 * garbage or a wrong count of vectors, the circuit breaker; the ledger rows
 * (endpoint, tokens, cost, status) and audit rows; the ledger migration that
 * adds the endpoint column; the stats' per-endpoint totals.
 */
#include "test.h"

#include "gateway/fake_embed.h"
#include "gateway/gateway.h"
#include "gateway/ledger_query.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

static fake_cloud fc;

/* ---- configuration and URLs ------------------------------------------------ */

static hearth_err parse_cfg(gw_config *c, const char *json) {
    gw_config_init(c);
    hearth_err err = gw_config_parse(c, json, strlen(json), "t.json");
    if (!err) err = gw_config_finish(c);
    return err;
}

/* The configuration's error for one tier object (NULL: accepted). */
static const char *tier_error(const char *tier) {
    static char msg[512];
    char json[1024];
    snprintf(json, sizeof json, "{\"tiers\": [%s]}", tier);
    gw_config c;
    const hearth_err err = parse_cfg(&c, json);
    snprintf(msg, sizeof msg, "%s", err ? hearth_last_error() : "");
    gw_config_fini(&c);
    return err ? msg : NULL;
}

static void test_urls(void) {
    char u[512];
    CHECK(!gw_service_url("http://h:1", NULL, "/embeddings", u, sizeof u) &&
          !strcmp(u, "http://h:1/v1/embeddings"));
    CHECK(!gw_service_url("https://api.x.com/v1/", NULL, "/rerank", u, sizeof u) &&
          !strcmp(u, "https://api.x.com/v1/rerank"));
    CHECK(!gw_service_url("https://api.x.com/v1/chat/completions", NULL, "/embeddings", u,
                          sizeof u) &&
          !strcmp(u, "https://api.x.com/v1/embeddings"));
    CHECK(!gw_service_url("https://api.cohere.com/v2", NULL, "/rerank", u, sizeof u) &&
          !strcmp(u, "https://api.cohere.com/v2/rerank"));
    CHECK(!gw_service_url("https://api.cohere.com/v1", "/v2/rerank", "/rerank", u, sizeof u) &&
          !strcmp(u, "https://api.cohere.com/v2/rerank"));
    CHECK(!gw_service_url("http://h:1/gw/v1", "https://other/rr", "/rerank", u, sizeof u) &&
          !strcmp(u, "https://other/rr"));
    CHECK(gw_service_url("http://h:1", "v2/rerank", "/rerank", u, sizeof u) ==
          HEARTH_ERR_INVALID_ARG);
    CHECK(gw_service_url("ftp://h", NULL, "/rerank", u, sizeof u) == HEARTH_ERR_INVALID_ARG);
}

static void test_config(void) {
    gw_config c;
    REQUIRE(parse_cfg(&c, "{\"tiers\": [{\"name\": \"a\", \"base_url\": \"http://h:1\","
                          " \"model\": \"m\", \"embedding_models\": [\"e1\", \"e2\"],"
                          " \"rerank_models\": [\"r1\"], \"rerank_path\": \"/v2/rerank\"},"
                          " {\"name\": \"b\", \"base_url\": \"http://g:2/v1\", \"model\": \"m\","
                          " \"embedding_models\": [\"e3\"]}]}") == HEARTH_OK);
    CHECK(gw_config_embed_tier(&c, GW_EMBED_VECTORS, "e2") == 1);
    CHECK(gw_config_embed_tier(&c, GW_EMBED_VECTORS, "e3") == 2);
    CHECK(gw_config_embed_tier(&c, GW_EMBED_VECTORS, "r1") == -1); /* a rerank model */
    CHECK(gw_config_embed_tier(&c, GW_EMBED_RERANK, "r1") == 1);
    CHECK(gw_config_embed_tier(&c, GW_EMBED_RERANK, "m") == -1); /* the chat model */
    CHECKF(!strcmp(c.tiers[1].embed_url, "http://h:1/v1/embeddings"), "%s", c.tiers[1].embed_url);
    CHECKF(!strcmp(c.tiers[1].rerank_url, "http://h:1/v2/rerank"), "%s", c.tiers[1].rerank_url);
    CHECK(!strcmp(c.tiers[2].embed_url, "http://g:2/v1/embeddings") && !c.tiers[2].rerank_url[0]);
    gw_config_fini(&c);

    /* the rest of a tier "c" (an OpenAI one unless it says), and what its
     * error must say */
    static const struct {
        const char *tier, *want;
    } bad[] = {
        {"\"kind\": \"anthropic\", \"embedding_models\": [\"e\"]",
         "tiers[0].embedding_models: an anthropic tier"},
        {"\"kind\": \"anthropic\", \"rerank_path\": \"/x\"", "tiers[0].rerank_path: an anthropic"},
        {"\"embedding_model\": [\"e\"]", "embedding_model: unknown key"},
        {"\"embedding_path\": \"/e\"", "embedding_path: is given, but no model"},
        {"\"rerank_models\": [\"r\"], \"rerank_path\": \"v2/rerank\"", "rerank_path: 'v2/rerank'"},
        {"\"embedding_models\": [\"a b\"]", "printable ASCII"},
        {"\"embedding_models\": \"e\"", "embedding_models: must be an array"},
        {"\"embedding_models\": [\"e\"]}, {\"name\": \"d\", \"base_url\": \"http://h\", "
         "\"model\": \"m\", \"embedding_models\": [\"e\"]",
         "declared by tiers 'c' and 'd'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char tier[512];
        snprintf(tier, sizeof tier,
                 "{\"name\": \"c\", \"base_url\": \"http://h\", \"model\": \"m\", %s}",
                 bad[i].tier);
        const char *e = tier_error(tier);
        CHECKF(e && strstr(e, bad[i].want), "%s: %s", bad[i].tier, e ? e : "accepted");
    }
    /* a reason from below is copied, not printed over itself */
    const char *e = tier_error("{\"name\": \"c\", \"base_url\": \"ftp://h\", \"model\": \"m\"}");
    CHECKF(e &&
               !strcmp(e, "t.json: tiers[0].base_url: 'ftp://h' is not an http:// or https:// URL"),
           "%s", e);
}

/* ---- the reader ------------------------------------------------------------ */

/* gw_embed_read on json; why receives the refusal ("" when read). */
static bool read_as(gw_embed_kind kind, const char *json, int n, int want_dim, int top_n,
                    gw_embed_answer *a, char *why) {
    memset(a, 0, sizeof *a);
    a->n = n;
    a->want_dim = want_dim;
    a->top_n = top_n;
    why[0] = '\0';
    return gw_embed_read(kind, json, strlen(json), a, why, 200);
}

static void refused(gw_embed_kind kind, const char *json, int n, int want_dim, int top_n,
                    const char *expect) {
    gw_embed_answer a;
    char why[200];
    const bool ok = read_as(kind, json, n, want_dim, top_n, &a, why);
    CHECKF(!ok && strstr(why, expect) && !a.vectors && !a.order, "%s: '%s'", json, why);
    gw_embed_answer_free(&a);
}

static void test_reader(void) {
    gw_embed_answer a;
    char why[200];
    CHECKF(read_as(GW_EMBED_VECTORS,
                   "{\"data\": [{\"index\": 1, \"embedding\": [3, 4]}, {\"index\": 0, "
                   "\"embedding\": [1, 2.5]}], \"usage\": {\"prompt_tokens\": 7}}",
                   2, 0, 0, &a, why),
           "%s", why);
    CHECK(a.dim == 2 && a.vectors[0] == 1 && a.vectors[1] == 2.5f && a.vectors[2] == 3 &&
          a.tokens == 7 && strlen(a.received_sha256) == 64);
    gw_embed_answer_free(&a);
    /* the tokens, wherever the tier puts them (-1: it does not say) */
    static const struct {
        const char *rest;
        int tokens;
    } counts[] = {{", \"usage\": {\"total_tokens\": 3}", 3},
                  {", \"meta\": {\"billed_units\": {\"input_tokens\": 9}}", 9},
                  {", \"meta\": {\"tokens\": {\"input_tokens\": 4}}", 4},
                  {", \"usage\": {\"prompt_tokens\": -1}", -1},
                  {"", -1}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"data\": [{\"embedding\": [1]}]%s}", counts[i].rest);
        CHECKF(read_as(GW_EMBED_VECTORS, json, 1, 1, 0, &a, why) && a.tokens == counts[i].tokens,
               "%s: %d %s", json, a.tokens, why);
        gw_embed_answer_free(&a);
    }

    refused(GW_EMBED_VECTORS, "not json", 1, 0, 0, "not JSON");
    refused(GW_EMBED_VECTORS, "[1]", 1, 0, 0, "not a JSON object");
    refused(GW_EMBED_VECTORS, "{\"object\": \"list\"}", 1, 0, 0, "no \"data\"");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"embedding\": [1]}]}", 2, 0, 0, "1 vectors for 2");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"embedding\": [1, 2]}, {\"embedding\": [1]}]}", 2, 0,
            0, "data[1] has 1 dimensions");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"embedding\": [1, \"2\"]}]}", 1, 0, 0,
            "embedding[1] is not a finite number");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"embedding\": [1e999]}]}", 1, 0, 0,
            "not a finite number");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"embedding\": []}]}", 1, 0, 0, "non-empty array");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"embedding\": \"AACAPw==\"}]}", 1, 0, 0,
            "non-empty array");
    refused(GW_EMBED_VECTORS,
            "{\"data\": [{\"index\": 0, \"embedding\": [1]}, {\"index\": 0, \"embedding\": [2]}]}",
            2, 0, 0, "a second vector for input 0");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"index\": 5, \"embedding\": [1]}]}", 1, 0, 0,
            "index is not an index below 1");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"index\": 0.5, \"embedding\": [1]}]}", 1, 0, 0,
            "not an index");
    refused(GW_EMBED_VECTORS, "{\"data\": [{\"embedding\": [1, 2]}]}", 1, 3, 0,
            "not the 3 asked for");

    CHECKF(read_as(GW_EMBED_RERANK,
                   "{\"results\": [{\"index\": 2, \"relevance_score\": 0.1}, {\"index\": 0, "
                   "\"relevance_score\": 0.9}, {\"index\": 1, \"relevance_score\": 0.9}]}",
                   3, 0, 0, &a, why),
           "%s", why);
    CHECK(a.n_results == 3 && a.order[0] == 0 && a.order[1] == 1 && a.order[2] == 2 &&
          a.scores[0] == 0.9f && a.scores[2] == 0.1f && a.tokens == -1);
    gw_embed_answer_free(&a);
    CHECK(read_as(GW_EMBED_RERANK, "{\"data\": [{\"index\": 1, \"relevance_score\": -2}]}", 3, 0, 1,
                  &a, why) &&
          a.n_results == 1 && a.order[0] == 1); /* Voyage's "data", fewer than top_n */
    gw_embed_answer_free(&a);
    refused(GW_EMBED_RERANK, "{\"results\": []}", 2, 0, 0, "0 results");
    refused(GW_EMBED_RERANK,
            "{\"results\": [{\"index\": 0, \"relevance_score\": 1}, {\"index\": 1, "
            "\"relevance_score\": 1}]}",
            2, 0, 1, "at most 1");
    refused(GW_EMBED_RERANK, "{\"results\": [{\"index\": 2, \"relevance_score\": 1}]}", 2, 0, 0,
            "index is not an index below 2");
    refused(GW_EMBED_RERANK,
            "{\"results\": [{\"index\": 1, \"relevance_score\": 1}, {\"index\": 1, "
            "\"relevance_score\": 0}]}",
            2, 0, 0, "document 1 twice");
    refused(GW_EMBED_RERANK, "{\"results\": [{\"index\": 0, \"relevance_score\": \"hi\"}]}", 2, 0,
            0, "relevance_score is not a finite number");
    refused(GW_EMBED_RERANK, "{\"results\": [{\"index\": 0}]}", 2, 0, 0, "relevance_score");
    refused(GW_EMBED_RERANK, "{\"results\": {}}", 2, 0, 0, "no \"results\"");
}

/* ---- gw_embed against the fake cloud ----------------------------------------- */

static char ledger_path[] = "/tmp/hearth_remote_embed_XXXXXX";

typedef struct gateway_fixture {
    gw_ledger *ledger;
    gw_gateway *g;
} gateway_fixture;

static int dead_port; /* a loopback port nobody listens on */

/* A loopback port bound and closed again: connections to it are refused. */
static int closed_port(void) {
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    REQUIRE(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(s, (struct sockaddr *)&a, &n) == 0);
    close(s);
    return ntohs(a.sin_port);
}

/* A gateway over the configuration tmpl, whose "@P" is the fake cloud's
 * port and "@D" a port nobody listens on. */
static void fixture_open(gateway_fixture *f, const char *tmpl) {
    char json[4096];
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 8 < sizeof json; p++) {
        if (p[0] == '@' && (p[1] == 'P' || p[1] == 'D')) {
            n += (size_t)snprintf(json + n, sizeof json - n, "%d",
                                  p[1] == 'P' ? fc.port : dead_port);
            p++;
        } else {
            json[n++] = *p;
        }
    }
    json[n] = '\0';
    gw_config c;
    const hearth_err err = parse_cfg(&c, json);
    CHECKF(!err, "%s", hearth_last_error());
    REQUIRE(!err);
    REQUIRE(gw_ledger_open(ledger_path, &f->ledger) == HEARTH_OK);
    REQUIRE(gw_gateway_new(&c, f->ledger, &f->g) == HEARTH_OK);
    gw_config_fini(&c);
}

static void fixture_close(gateway_fixture *f) {
    gw_gateway_free(f->g);
    gw_ledger_close(f->ledger);
}

static gw_embed_response embed(gateway_fixture *f, const char *model, const char *const *texts,
                               int n, int dims) {
    const gw_embed_request r = {
        .kind = GW_EMBED_VECTORS, .model = model, .texts = texts, .n_texts = n, .dimensions = dims};
    gw_embed_response out;
    REQUIRE(gw_embed(f->g, &r, &out) == HEARTH_OK);
    return out;
}

static gw_embed_response rerank(gateway_fixture *f, const char *model, const char *query,
                                const char *const *docs, int n, int top_n) {
    const gw_embed_request r = {.kind = GW_EMBED_RERANK,
                                .model = model,
                                .texts = docs,
                                .n_texts = n,
                                .query = query,
                                .top_n = top_n};
    gw_embed_response out;
    REQUIRE(gw_embed(f->g, &r, &out) == HEARTH_OK);
    return out;
}

static int64_t q(const char *sql) { return db_int(ledger_path, sql); }

/* The last body the fake cloud received ("" when none). */
static const char *last_body(void) { return fc.n_bodies ? fc.bodies[fc.n_bodies - 1] : ""; }

static const char tiers_json[] =
    "{\"tiers\": [{\"name\": \"emb\", \"base_url\": \"http://127.0.0.1:@P\", \"model\": \"chat\","
    " \"retries\": 2, \"backoff_ms\": 5, \"backoff_max_ms\": 20, \"timeout_ms\": 400,"
    " \"breaker_failures\": 100, \"price_per_mtok\": {\"input\": 1000, \"output\": 5000},"
    " \"embedding_models\": [\"ok\", \"e500-1\", \"e429-9\", \"slow-1500\", \"short\","
    " \"ragged\", \"nonnum\", \"garbage\", \"bad\", \"nousage\", \"nodata\"],"
    " \"rerank_models\": [\"ok\", \"unsorted\", \"oob\", \"dup\", \"nonnum\"]},"
    " {\"name\": \"co\", \"base_url\": \"http://127.0.0.1:@P/v1\", \"model\": \"chat\","
    " \"retries\": 0, \"rerank_models\": [\"cohere\"], \"rerank_path\": \"/v2/rerank\"},"
    " {\"name\": \"down\", \"base_url\": \"http://127.0.0.1:@D\", \"model\": \"chat\","
    " \"retries\": 1, \"backoff_ms\": 1, \"breaker_failures\": 3, \"breaker_cooldown_ms\": 60000,"
    " \"embedding_models\": [\"gone\"]}],"
    " \"privacy\": {\"actions\": {\"SSN\": \"block\"}}}";

static void test_vectors(gateway_fixture *f) {
    fake_cloud_reset(&fc);
    const char *texts[] = {"hello", "write to ann@example.com", "ann@example.com again"};
    gw_embed_response r = embed(f, "ok", texts, 3, 0);
    CHECKF(r.status == 200 && !strcmp(r.tier, "emb"), "%d %s", r.status, r.error);
    REQUIRE(r.answer.vectors);
    CHECK(r.answer.dim == 4 && r.prompt_tokens == 5 * 3 + 2 && !r.usage_estimated);
    /* each vector is of the text the tier saw: the redacted one */
    CHECK(r.answer.vectors[0] == 5 && r.answer.vectors[4 + 1] == 1);
    CHECKF(r.answer.vectors[4] == (float)strlen("write to <EMAIL_1>"), "%g", r.answer.vectors[4]);
    CHECK(r.answer.vectors[8] == (float)strlen("<EMAIL_1> again")); /* one map: the same value */
    CHECK(strstr(r.reason, "explicit") && strstr(r.reason, "tier emb"));
    CHECK(fc.n_bodies == 1 && strstr(last_body(), "<EMAIL_1>") &&
          !strstr(last_body(), "ann@example.com") && strstr(last_body(), "\"input\":["));
    CHECK(!strstr(last_body(), "dimensions"));
    const int64_t id = r.ledger_id;
    gw_embed_response_free(&r);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM requests WHERE id = %lld AND endpoint = 'embeddings' AND "
             "tier = 'emb' AND route = 'explicit' AND status = 200 AND prompt_tokens = 17 AND "
             "completion_tokens = 0 AND cost_usd_micro = 17000 AND "
             "cloud_only_cost_usd_micro = 17000 AND model = 'ok' AND prompt IS NULL",
             (long long)id);
    CHECKF(q(sql) == 1, "ledger row %lld", (long long)id);
    CHECK(q("SELECT count(*) FROM audit WHERE tier = 'emb' AND action = 'sent' AND "
            "entities = 'EMAIL:2' AND length(sent_sha256) = 64 AND length(received_sha256) = 64") ==
          1);

    /* dimensions passed on and checked; no usage: estimated */
    r = embed(f, "ok", texts, 1, 8);
    CHECK(r.status == 200 && r.answer.dim == 8 && strstr(last_body(), "\"dimensions\":8"));
    gw_embed_response_free(&r);
    r = embed(f, "nousage", texts, 2, 0);
    CHECKF(r.status == 200 && r.usage_estimated && r.prompt_tokens == (5 + 24) / 4 + 1 &&
               strstr(r.reason, "usage estimated"),
           "%d %d %s", r.status, r.prompt_tokens, r.reason);
    gw_embed_response_free(&r);
}

static void test_rerank(gateway_fixture *f) {
    fake_cloud_reset(&fc);
    const char *docs[] = {"nothing here", "mail bob@example.org about cats", "cats"};
    gw_embed_response r = rerank(f, "unsorted", "bob@example.org cats", docs, 3, 2);
    CHECKF(r.status == 200, "%d %s", r.status, r.error);
    /* the tier saw placeholders in the query and documents alike, and
     * matched them; its results (in document order) come back best first */
    CHECK(r.answer.n_results == 2 && r.answer.order[0] == 1 && r.answer.scores[0] == 2 &&
          r.answer.order[1] == 0 && r.answer.scores[1] == 0);
    CHECK(strstr(last_body(), "\"query\":\"<EMAIL_1> cats\"") &&
          strstr(last_body(), "mail <EMAIL_1> about") && strstr(last_body(), "\"top_n\":2") &&
          !strstr(last_body(), "bob@") && !strstr(last_body(), "return_documents"));
    CHECK(r.prompt_tokens == 3 * 3 + 1);
    gw_embed_response_free(&r);
    r = rerank(f, "ok", "cats", docs, 3, 0);
    CHECK(r.status == 200 && r.answer.n_results == 3 && r.answer.order[0] == 1 &&
          r.answer.order[1] == 2 && r.answer.order[2] == 0 && !strstr(last_body(), "top_n"));
    gw_embed_response_free(&r);
    /* Cohere's path and billing: search units, tokens estimated */
    r = rerank(f, "cohere", "cats", docs, 3, 0);
    CHECKF(r.status == 200 && r.usage_estimated && !strcmp(r.tier, "co") &&
               r.prompt_tokens == (4 * 3 + 12 + 31 + 4) / 4 + 1,
           "%d %d %s", r.status, r.prompt_tokens, r.error);
    gw_embed_response_free(&r);
    CHECK(q("SELECT count(*) FROM requests WHERE endpoint = 'rerank' AND status = 200") == 3);
}

/* One request that must fail: its status, code and a word of its error. */
static void fails(gateway_fixture *f, gw_embed_kind kind, const char *model, int status,
                  const char *code, const char *word) {
    const char *texts[] = {"one", "two"};
    gw_embed_response r =
        kind == GW_EMBED_RERANK ? rerank(f, model, "q", texts, 2, 0) : embed(f, model, texts, 2, 0);
    CHECKF(r.status == status && r.code && !strcmp(r.code, code) && strstr(r.error, word) &&
               !r.answer.vectors && !r.answer.order,
           "%s: %d %s '%s'", model, r.status, r.code ? r.code : "-", r.error);
    gw_embed_response_free(&r);
}

static void test_tier_failures(gateway_fixture *f) {
    fake_cloud_reset(&fc);
    /* 500 once, then an answer: retried */
    const char *texts[] = {"x"};
    gw_embed_response r = embed(f, "e500-1", texts, 1, 0);
    CHECKF(r.status == 200 && fake_cloud_requests(&fc) == 2, "%d %d", r.status,
           fake_cloud_requests(&fc));
    gw_embed_response_free(&r);
    fake_cloud_reset(&fc);
    fails(f, GW_EMBED_VECTORS, "e429-9", 502, "bad_gateway", "HTTP 429");
    CHECK(fake_cloud_requests(&fc) == 3); /* 1 + 2 retries */
    fake_cloud_reset(&fc);
    fails(f, GW_EMBED_VECTORS, "bad", 502, "bad_gateway", "does not exist");
    CHECK(fake_cloud_requests(&fc) == 1); /* a 400 is not retried */
    fake_cloud_reset(&fc);
    fails(f, GW_EMBED_VECTORS, "slow-1500", 504, "timeout", "no answer within 400 ms");
    fails(f, GW_EMBED_VECTORS, "garbage", 502, "bad_gateway", "not JSON");
    fails(f, GW_EMBED_VECTORS, "short", 502, "bad_gateway", "1 vectors for 2 inputs");
    fails(f, GW_EMBED_VECTORS, "ragged", 502, "bad_gateway", "dimensions");
    fails(f, GW_EMBED_VECTORS, "nonnum", 502, "bad_gateway", "not a finite number");
    fails(f, GW_EMBED_VECTORS, "nodata", 502, "bad_gateway", "no \"data\"");
    fails(f, GW_EMBED_RERANK, "oob", 502, "bad_gateway", "not an index below 2");
    fails(f, GW_EMBED_RERANK, "dup", 502, "bad_gateway", "twice");
    fails(f, GW_EMBED_RERANK, "nonnum", 502, "bad_gateway", "relevance_score");
    /* a bad answer is not retried */
    CHECK(fake_cloud_requests(&fc) == 3 + 8); /* the timeout's 3 attempts, then 1 each */
    /* connection refused, until the circuit opens: then not even tried */
    fails(f, GW_EMBED_VECTORS, "gone", 502, "bad_gateway", "unreachable");
    fails(f, GW_EMBED_VECTORS, "gone", 502, "bad_gateway", "unreachable");
    fails(f, GW_EMBED_VECTORS, "gone", 502, "bad_gateway", "unreachable");
    fails(f, GW_EMBED_VECTORS, "gone", 503, "tier_unavailable", "circuit open");
    /* every failure is a ledger row with its status, and an audit row when
     * something was sent */
    CHECK(q("SELECT count(*) FROM requests WHERE status = 502 AND cost_usd_micro = 0") == 13);
    CHECK(q("SELECT count(*) FROM requests WHERE status = 504 AND tier = 'emb'") == 1);
    CHECK(q("SELECT count(*) FROM requests WHERE status = 503 AND tier = 'down'") == 1);
    CHECK(q("SELECT count(*) FROM audit WHERE action = 'failed'") == 14);
}

static void test_privacy_block(gateway_fixture *f) {
    fake_cloud_reset(&fc);
    const char *texts[] = {"fine", "my SSN is 123-45-6789"};
    gw_embed_response r = embed(f, "ok", texts, 2, 0);
    CHECKF(r.status == 403 && !strcmp(r.code, "privacy_blocked") && strstr(r.error, "SSN") &&
               !strcmp(r.tier, "none"),
           "%d %s", r.status, r.error);
    gw_embed_response_free(&r);
    r = rerank(f, "ok", "SSN 123-45-6789", texts, 1, 0); /* in the query */
    CHECK(r.status == 403 && !strcmp(r.code, "privacy_blocked"));
    gw_embed_response_free(&r);
    CHECK(fake_cloud_requests(&fc) == 0);
    CHECK(q("SELECT count(*) FROM audit WHERE action = 'refused' AND entities = 'SSN'") == 2);
    CHECK(q("SELECT count(*) FROM requests WHERE status = 403 AND tier = 'none'") == 2);
}

static void test_air_gap_and_keys(void) {
    gateway_fixture f;
    fixture_open(&f, "{\"tiers\": [{\"name\": \"emb\", \"base_url\": \"http://127.0.0.1:@P\","
                     " \"model\": \"c\", \"embedding_models\": [\"ok\"]}], \"air_gapped\": true}");
    fake_cloud_reset(&fc);
    const char *texts[] = {"x"};
    gw_embed_response r = embed(&f, "ok", texts, 1, 0);
    CHECKF(r.status == 403 && !strcmp(r.code, "air_gapped") && strstr(r.error, "air-gapped"),
           "%d %s", r.status, r.error);
    gw_embed_response_free(&r);
    CHECK(fake_cloud_requests(&fc) == 0);
    fixture_close(&f);

    char ka[65], kb[65], json[1024];
    gw_sha256_hex("ka", 2, ka);
    gw_sha256_hex("kb", 2, kb);
    snprintf(json, sizeof json,
             "{\"tiers\": [{\"name\": \"emb\", \"base_url\": \"http://127.0.0.1:@P\","
             " \"model\": \"c\", \"embedding_models\": [\"ok\"], \"price_per_mtok\":"
             " {\"input\": 100}}], \"keys\": [{\"name\": \"a\", \"key_sha256\": \"%s\","
             " \"tiers\": [\"local\"]}, {\"name\": \"b\", \"key_sha256\": \"%s\","
             " \"budget_usd\": 0.0005}]}",
             ka, kb);
    fixture_open(&f, json);
    gw_key *a = gw_keys_find(gw_gateway_keys(f.g), "ka", 2);
    gw_key *b = gw_keys_find(gw_gateway_keys(f.g), "kb", 2);
    REQUIRE(a && b);
    gw_embed_request rq = {.kind = GW_EMBED_VECTORS, .model = "ok", .texts = texts, .n_texts = 1};
    rq.key = a;
    REQUIRE(gw_embed(f.g, &rq, &r) == HEARTH_OK);
    CHECKF(r.status == 403 && !strcmp(r.code, "tier_not_allowed"), "%d %s", r.status, r.error);
    gw_embed_response_free(&r);
    /* key b: the first request spends its budget ($100 per million tokens,
     * 7 tokens: $0.0007 of $0.0005), the next is refused */
    rq.key = b;
    REQUIRE(gw_embed(f.g, &rq, &r) == HEARTH_OK);
    CHECK(r.status == 200);
    gw_embed_response_free(&r);
    REQUIRE(gw_embed(f.g, &rq, &r) == HEARTH_OK);
    CHECKF(r.status == 429 && !strcmp(r.code, "insufficient_quota"), "%d %s", r.status, r.error);
    gw_embed_response_free(&r);
    CHECK(fake_cloud_requests(&fc) == 1);
    CHECK(q("SELECT count(*) FROM requests WHERE api_key = 'b' AND cost_usd_micro = 700") == 1);
    fixture_close(&f);
}

/* An older ledger (schema 7: no endpoint column) gains it, rows kept. */
static void test_migration(void) {
    char path[] = "/tmp/hearth_remote_embed_mig_XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    unlink(path);
    gw_ledger *l;
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    gw_ledger_row row = gw_ledger_row_init();
    row.tier = "local";
    row.status = 200;
    REQUIRE(gw_ledger_add(l, &row, NULL) == HEARTH_OK);
    gw_ledger_close(l);
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "ALTER TABLE requests DROP COLUMN endpoint; PRAGMA user_version = 7",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(db_int(path, "SELECT count(*) FROM pragma_table_info('requests') WHERE name = "
                       "'endpoint'") == 0);
    REQUIRE(gw_ledger_open(path, &l) == HEARTH_OK);
    row.endpoint = "rerank";
    row.tier = "cloud";
    REQUIRE(gw_ledger_add(l, &row, NULL) == HEARTH_OK);
    gw_stats st;
    REQUIRE(gw_ledger_stats(l, 0, &st) == HEARTH_OK);
    CHECK(st.requests == 2 && st.n_endpoints == 2);
    gw_ledger_close(l);
    CHECK(db_int(path, "PRAGMA user_version") == 8);
    CHECK(db_int(path, "SELECT count(*) FROM requests WHERE endpoint IS NULL") == 1);
    CHECK(db_int(path, "SELECT count(*) FROM requests WHERE endpoint = 'rerank'") == 1);
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
}

/* The totals per endpoint, in the stats and the report. */
static void test_stats(gateway_fixture *f) {
    gw_stats st;
    REQUIRE(gw_ledger_stats(f->ledger, 0, &st) == HEARTH_OK);
    const gw_group_stats *e = NULL, *rr = NULL;
    for (int i = 0; i < st.n_endpoints; i++) {
        if (!strcmp(st.endpoints[i].name, "embeddings")) e = &st.endpoints[i];
        if (!strcmp(st.endpoints[i].name, "rerank")) rr = &st.endpoints[i];
    }
    REQUIRE(e && rr);
    CHECK(e->requests == q("SELECT count(*) FROM requests WHERE endpoint = 'embeddings'"));
    CHECK(e->errors == q("SELECT count(*) FROM requests WHERE endpoint = 'embeddings' AND "
                         "status >= 400"));
    CHECK(rr->prompt_tokens ==
          q("SELECT sum(prompt_tokens) FROM requests WHERE endpoint = 'rerank'"));
    CHECK(e->cost_usd_micro > 0);
    char *text = gw_stats_text(&st), *json = gw_stats_json(&st);
    CHECKF(strstr(text, "\nendpoint ") && strstr(text, "\nembeddings ") &&
               strstr(text, "\nrerank "),
           "%s", text);
    CHECK(strstr(json, "\"endpoints\":{") && strstr(json, "\"embeddings\":{\"requests\":"));
    free(text);
    free(json);
}

int main(void) {
    test_urls();
    test_config();
    test_reader();
    REQUIRE(fake_cloud_start(&fc));
    fake_embed_serve(&fc);
    const int fd = mkstemp(ledger_path);
    REQUIRE(fd >= 0);
    close(fd);
    unlink(ledger_path);
    dead_port = closed_port();
    gateway_fixture f;
    fixture_open(&f, tiers_json);
    test_vectors(&f);
    test_rerank(&f);
    test_tier_failures(&f);
    test_privacy_block(&f);
    test_stats(&f);
    fixture_close(&f);
    test_air_gap_and_keys();
    test_migration();
    fake_cloud_stop(&fc);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s-wal' '%s-shm'", ledger_path, ledger_path, ledger_path);
    if (test_failures == 0 && system(rm) != 0) printf("could not remove %s\n", ledger_path);
    return test_done("test_remote_embed");
}
