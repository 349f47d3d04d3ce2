/*
 * test_server_remote_embed.c - remote embeddings and rerank through `hearth
 * serve` (curl, the test model, the fake cloud's /embeddings and /rerank as
 * two tiers: "oa", OpenAI's and Jina's paths, and "co", Cohere's
 * /v2/rerank): OpenAI's /v1/embeddings (list and string input, base64,
 * dimensions; token ids refused), ollama's /api/embed and /api/embeddings,
 * /v1/rerank in Jina's/Cohere's shape (top_n, return_documents with the
 * client's own documents) and TEI's; model = the name asked for, the
 * x-hearth-route / x-hearth-reason headers; the tier received placeholders,
 * never the e-mail addresses; a local model of the same name wins, unknown
 * names stay local; an API key that may not use the tier is refused; a tier
 * answering garbage is a 502 (ollama's error shape too); the ledger's
 * per-endpoint totals in /v1/hearth/stats and `hearth ledger report`, the
 * audit rows; /v1/models lists the remote names a key may use; --air-gapped
 * refuses with a 403 naming air-gapped mode and lists nothing remote.
 */
#include "test.h"

#include "gateway/fake_embed.h"
#include "gateway/ledger_query.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

#include <libgen.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_remote_embed_srv_XXXXXX";
static fake_cloud fc;

typedef test_json_reply reply;

/* POST body to path with API key key ("ka": the admin). */
static reply call(test_server *sv, const char *path, const char *body, const char *key) {
    char auth[64];
    snprintf(auth, sizeof auth, "-H 'Authorization: Bearer %s'", key);
    return test_http_json(sv, "POST", path, body, auth);
}

static const char *last_body(void) { return fc.n_bodies ? fc.bodies[fc.n_bodies - 1] : ""; }

/* Little-endian float32s from base64 (n of them at most); how many. */
static int unbase64(const char *s, float *out, int n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char bytes[256];
    size_t nb = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *s && *s != '=' && nb < sizeof bytes; s++) {
        const char *d = strchr(digits, *s);
        if (!d) return -1;
        acc = acc << 6 | (unsigned)(d - digits);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes[nb++] = (unsigned char)(acc >> bits);
        }
    }
    int k = 0;
    for (; k < n && 4 * (size_t)k + 4 <= nb; k++) {
        const uint32_t u = (uint32_t)bytes[4 * k] | (uint32_t)bytes[4 * k + 1] << 8 |
                           (uint32_t)bytes[4 * k + 2] << 16 | (uint32_t)bytes[4 * k + 3] << 24;
        memcpy(&out[k], &u, sizeof u);
    }
    return k;
}

static void openai_shapes(test_server *sv) {
    fake_cloud_reset(&fc);
    reply r = call(sv, "/v1/embeddings",
                   "{\"model\": \"text-embedding-3-small\", \"input\": [\"hello\", \"mail "
                   "ann@example.com\"]}",
                   "ka");
    CHECKF(r.status == 200, "%d %s", r.status, r.body);
    CHECK(jstr(r.json, "object") && !strcmp(jstr(r.json, "object"), "list"));
    CHECK(jstr(r.json, "model") && !strcmp(jstr(r.json, "model"), "text-embedding-3-small"));
    CHECK(!strcmp(jstr(r.json, "data.1.object"), "embedding") && jnum(r.json, "data.1.index") == 1);
    CHECK(cJSON_GetArraySize(jget(r.json, "data.0.embedding")) == 4 &&
          jnum(r.json, "data.0.embedding.0") == 5);
    /* the vector is of the redacted text: the tier saw "mail <EMAIL_1>" */
    CHECK(jnum(r.json, "data.1.embedding.0") == (double)strlen("mail <EMAIL_1>"));
    CHECK(jnum(r.json, "usage.prompt_tokens") == 12 && jnum(r.json, "usage.total_tokens") == 12);
    CHECKF(strstr(r.headers, "x-hearth-route: oa") &&
               strstr(r.headers, "x-hearth-reason: explicit: embeddings model"),
           "%s", r.headers);
    CHECK(fc.n_bodies == 1 && strstr(last_body(), "mail <EMAIL_1>") &&
          !strstr(last_body(), "ann@example.com"));
    test_json_done(&r);

    r = call(sv, "/v1/embeddings",
             "{\"model\": \"text-embedding-3-small\", \"input\": \"hi\", \"encoding_format\": "
             "\"base64\"}",
             "ka");
    float v[8];
    const char *b64 = jstr(r.json, "data.0.embedding");
    CHECKF(r.status == 200 && b64 && unbase64(b64, v, 8) == 4 && v[0] == 2 && v[3] == 0.5f, "%d %s",
           r.status, r.body);
    test_json_done(&r);
    r = call(sv, "/v1/embeddings",
             "{\"model\": \"text-embedding-3-small\", \"input\": \"hi\", \"dimensions\": 8}", "ka");
    CHECK(r.status == 200 && cJSON_GetArraySize(jget(r.json, "data.0.embedding")) == 8 &&
          strstr(last_body(), "\"dimensions\":8"));
    test_json_done(&r);
    const int sent = fake_cloud_requests(&fc);
    r = call(sv, "/v1/embeddings", "{\"model\": \"text-embedding-3-small\", \"input\": [[1, 2]]}",
             "ka");
    CHECKF(r.status == 400 && strstr(r.body, "token ids"), "%d %s", r.status, r.body);
    test_json_done(&r);
    r = call(sv, "/v1/embeddings", "{\"model\": \"text-embedding-3-small\", \"input\": [\"\"]}",
             "ka");
    CHECKF(r.status == 400 && strstr(r.body, "input[0]"), "%d %s", r.status, r.body);
    test_json_done(&r);
    CHECK(fake_cloud_requests(&fc) == sent);
}

static void ollama_shapes(test_server *sv) {
    fake_cloud_reset(&fc);
    reply r = call(sv, "/api/embed",
                   "{\"model\": \"text-embedding-3-small\", \"input\": [\"abc\", \"de\"]}", "ka");
    CHECKF(r.status == 200 && cJSON_GetArraySize(jget(r.json, "embeddings")) == 2 &&
               jnum(r.json, "embeddings.0.0") == 3 && jnum(r.json, "embeddings.1.0") == 2 &&
               jnum(r.json, "prompt_eval_count") == 12 &&
               !strcmp(jstr(r.json, "model"), "text-embedding-3-small") &&
               jnum(r.json, "total_duration") > 0,
           "%d %s", r.status, r.body);
    CHECK(strstr(r.headers, "x-hearth-route: oa"));
    test_json_done(&r);
    r = call(sv, "/api/embeddings",
             "{\"model\": \"text-embedding-3-small\", \"prompt\": \"hello\"}", "ka");
    CHECKF(r.status == 200 && cJSON_GetArraySize(jget(r.json, "embedding")) == 4 &&
               jnum(r.json, "embedding.0") == 5,
           "%d %s", r.status, r.body);
    test_json_done(&r);
    CHECK(fake_cloud_requests(&fc) == 2);
    /* ollama's "load" request: nothing to embed, the tier is not called */
    r = call(sv, "/api/embed", "{\"model\": \"text-embedding-3-small\", \"input\": \"\"}", "ka");
    CHECK(r.status == 200 && cJSON_GetArraySize(jget(r.json, "embeddings")) == 0);
    test_json_done(&r);
    CHECK(fake_cloud_requests(&fc) == 2);
    /* a tier answering garbage: a 502 in ollama's error shape */
    r = call(sv, "/api/embed", "{\"model\": \"garbage\", \"input\": \"x\"}", "ka");
    CHECKF(r.status == 502 && jstr(r.json, "error") && strstr(jstr(r.json, "error"), "not JSON") &&
               strstr(r.headers, "x-hearth-route: oa"),
           "%d %s", r.status, r.body);
    test_json_done(&r);
    r = call(sv, "/v1/embeddings", "{\"model\": \"garbage\", \"input\": \"x\"}", "ka");
    CHECKF(r.status == 502 && jstr(r.json, "error.message") &&
               !strcmp(jstr(r.json, "error.code"), "bad_gateway"),
           "%d %s", r.status, r.body);
    test_json_done(&r);
}

static void rerank_shapes(test_server *sv) {
    fake_cloud_reset(&fc);
    reply r = call(sv, "/v1/rerank",
                   "{\"model\": \"jina-reranker\", \"query\": \"bob@example.org cats\", "
                   "\"documents\": [\"nothing\", \"mail bob@example.org about cats\", {\"text\": "
                   "\"cats\"}], \"top_n\": 2, \"return_documents\": true}",
                   "ka");
    CHECKF(r.status == 200 && cJSON_GetArraySize(jget(r.json, "results")) == 2, "%d %s", r.status,
           r.body);
    CHECK(jnum(r.json, "results.0.index") == 1 && jnum(r.json, "results.0.relevance_score") == 2);
    /* the client's own document, never the placeholders the tier saw */
    CHECK(jstr(r.json, "results.0.document.text") &&
          !strcmp(jstr(r.json, "results.0.document.text"), "mail bob@example.org about cats"));
    CHECK(jnum(r.json, "results.1.index") == 2 &&
          !strcmp(jstr(r.json, "results.1.document.text"), "cats"));
    CHECK(!strcmp(jstr(r.json, "model"), "jina-reranker") &&
          !strcmp(jstr(r.json, "object"), "list") && jnum(r.json, "usage.prompt_tokens") == 10);
    CHECK(strstr(r.headers, "x-hearth-route: oa"));
    CHECK(strstr(last_body(), "\"query\":\"<EMAIL_1> cats\"") && !strstr(last_body(), "bob@") &&
          strstr(last_body(), "\"top_n\":2"));
    test_json_done(&r);
    /* TEI's shape, to Cohere's path (no tokens reported: estimated) */
    r = call(sv, "/rerank",
             "{\"model\": \"rerank-v3.5\", \"query\": \"cats\", \"texts\": [\"b\", \"a cats\"], "
             "\"return_text\": true}",
             "ka");
    CHECKF(r.status == 200 && cJSON_IsArray(r.json) && jnum(r.json, "0.index") == 1 &&
               jnum(r.json, "0.score") == 1 && !strcmp(jstr(r.json, "0.text"), "a cats") &&
               jnum(r.json, "1.index") == 0,
           "%d %s", r.status, r.body);
    CHECKF(strstr(r.headers, "x-hearth-route: co") && strstr(r.headers, "usage estimated"), "%s",
           r.headers);
    test_json_done(&r);
    CHECK(fake_cloud_requests(&fc) == 2);
}

/* A local model of a declared name answers; so does any unknown name. */
static void routing(test_server *sv, const char *local) {
    fake_cloud_reset(&fc);
    char body[512];
    snprintf(body, sizeof body, "{\"model\": \"%s\", \"input\": \"hello\"}", local);
    reply r = call(sv, "/v1/embeddings", body, "ka");
    CHECKF(r.status == 200 && strstr(jstr(r.json, "model"), local) &&
               !strstr(r.headers, "x-hearth-route"),
           "%d %s", r.status, r.body);
    test_json_done(&r);
    r = call(sv, "/v1/embeddings", "{\"model\": \"no-such-model\", \"input\": \"hello\"}", "ka");
    CHECKF(r.status == 200, "%d %s", r.status, r.body);
    test_json_done(&r);
    CHECK(fake_cloud_requests(&fc) == 0);
    /* key b may use no remote tier */
    r = call(sv, "/v1/embeddings", "{\"model\": \"text-embedding-3-small\", \"input\": \"hi\"}",
             "kb");
    CHECKF(r.status == 403 && !strcmp(jstr(r.json, "error.code"), "tier_not_allowed") &&
               strstr(r.headers, "x-hearth-route: none"),
           "%d %s", r.status, r.body);
    test_json_done(&r);
    CHECK(fake_cloud_requests(&fc) == 0);
}

/* The ids and owners of GET /v1/models as "id:owner,..." (key: "ka" or "kb"). */
static void model_list(test_server *sv, const char *key, char *out, size_t cap) {
    char auth[64];
    snprintf(auth, sizeof auth, "-H 'Authorization: Bearer %s'", key);
    reply r = test_http_json(sv, "GET", "/v1/models", NULL, auth);
    CHECKF(r.status == 200 && r.json, "%d %s", r.status, r.body);
    size_t n = 0;
    out[0] = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, jget(r.json, "data")) {
        if (n >= cap) break;
        n += (size_t)snprintf(out + n, cap - n, "%s:%s,", jstr(m, "id"), jstr(m, "owned_by"));
    }
    test_json_done(&r);
}

/* /v1/models lists the remote names a client may give: "auto", the tiers
 * (owned by their kind), their embedding and rerank models (owned by the
 * tier), not the one the local model answers to; only what the key may use. */
static void models(test_server *sv, const char *local) {
    char got[1024], want[1024];
    model_list(sv, "ka", got, sizeof got);
    snprintf(want, sizeof want,
             "%s:hearth,auto:hearth,oa:openai,text-embedding-3-small:oa,garbage:oa,jina-reranker:"
             "oa,co:openai,rerank-v3.5:co,",
             local);
    CHECKF(!strcmp(got, want), "%s", got);
    model_list(sv, "kb", got, sizeof got);
    snprintf(want, sizeof want, "%s:hearth,", local);
    CHECKF(!strcmp(got, want), "%s", got);
    reply r =
        test_http_json(sv, "GET", "/v1/models/rerank-v3.5", NULL, "-H 'Authorization: Bearer ka'");
    CHECKF(r.status == 200 && !strcmp(jstr(r.json, "id"), "rerank-v3.5") &&
               !strcmp(jstr(r.json, "owned_by"), "co"),
           "%d %s", r.status, r.body);
    test_json_done(&r);
    r = test_http_json(sv, "GET", "/v1/models/rerank-v3.5", NULL, "-H 'Authorization: Bearer kb'");
    CHECKF(r.status == 404, "%d %s", r.status, r.body);
    test_json_done(&r);
}

static void ledger(test_server *sv, const char *db) {
    test_reply t = test_http(sv, "GET", "/v1/hearth/stats", NULL, "-H 'Authorization: Bearer ka'");
    cJSON *j = cJSON_Parse(t.body);
    const double embeddings = jnum(j, "endpoints.embeddings.requests");
    CHECKF(embeddings == (double)db_int(db, "SELECT count(*) FROM requests WHERE endpoint = "
                                            "'embeddings'") &&
               embeddings == 8 && jnum(j, "endpoints.rerank.requests") == 2 &&
               jnum(j, "endpoints.embeddings.errors") == 3 && jnum(j, "tiers.oa.cost_usd") > 0,
           "%s", t.body);
    cJSON_Delete(j);
    free(t.body);
    /* rows: 5 answered, 2 garbage, 1 refused (requests refused before the
     * gateway - 400s, a local model's - have none); one audit row per call */
    CHECK(db_int(db, "SELECT count(*) FROM audit WHERE action = 'sent'") == 7);
    CHECK(db_int(db, "SELECT count(*) FROM audit WHERE action = 'failed'") == 2);
    /* the e-mail address of the first request, and the query's and a
     * document's of the rerank: occurrences counted */
    CHECK(db_int(db, "SELECT count(*) FROM audit WHERE entities = 'EMAIL:1'") == 1);
    CHECK(db_int(db, "SELECT count(*) FROM audit WHERE tier = 'oa' AND entities = 'EMAIL:2'") == 1);
}

static void report(const char *db) {
    char cmd[2048], out[700];
    snprintf(out, sizeof out, "%s/report.txt", scratch);
    snprintf(cmd, sizeof cmd, "'%s' ledger report --db '%s' > '%s' 2>&1", binary, db, out);
    CHECK(system(cmd) == 0);
    char *text = test_read_file(out, NULL);
    CHECKF(text && strstr(text, "\nendpoint ") && strstr(text, "\nembeddings ") &&
               strstr(text, "\nrerank "),
           "%s", text ? text : "(none)");
    free(text);
}

static void air_gapped(test_server *sv) {
    fake_cloud_reset(&fc);
    reply r = call(sv, "/v1/embeddings",
                   "{\"model\": \"text-embedding-3-small\", \"input\": \"hi\"}", "ka");
    CHECKF(r.status == 403 && !strcmp(jstr(r.json, "error.code"), "air_gapped") &&
               strstr(jstr(r.json, "error.message"), "air-gapped"),
           "%d %s", r.status, r.body);
    test_json_done(&r);
    r = call(sv, "/v1/rerank",
             "{\"model\": \"rerank-v3.5\", \"query\": \"q\", \"documents\": [\"d\"]}", "ka");
    CHECK(r.status == 403 && strstr(r.body, "air-gapped"));
    test_json_done(&r);
    r = call(sv, "/api/embed", "{\"model\": \"text-embedding-3-small\", \"input\": \"hi\"}", "ka");
    CHECK(r.status == 403 && jstr(r.json, "error") && strstr(jstr(r.json, "error"), "air-gapped"));
    test_json_done(&r);
    CHECK(fake_cloud_requests(&fc) == 0);
    char got[1024];
    model_list(sv, "ka", got, sizeof got); /* nothing remote is offered */
    CHECKF(!strchr(got, ',') || strchr(got, ',')[1] == 0, "%s", got);
}

/* The two tiers on the fake cloud, the local model's own name declared too,
 * and two keys: a (admin) and b (local only). */
static bool write_config(const char *path, const char *local) {
    char ka[65], kb[65];
    gw_sha256_hex("ka", 2, ka);
    gw_sha256_hex("kb", 2, kb);
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f,
            "{\"tiers\": [{\"name\": \"oa\", \"base_url\": \"http://127.0.0.1:%d\", \"model\": "
            "\"ok\", \"retries\": 0, \"price_per_mtok\": {\"input\": 1000, \"output\": 1000}, "
            "\"embedding_models\": [\"text-embedding-3-small\", \"garbage\", \"%s\"], "
            "\"rerank_models\": [\"jina-reranker\"]}, {\"name\": \"co\", \"base_url\": "
            "\"http://127.0.0.1:%d\", \"model\": \"ok\", \"retries\": 0, \"rerank_models\": "
            "[\"rerank-v3.5\"], \"rerank_path\": \"/v2/rerank\"}], \"keys\": [{\"name\": \"a\", "
            "\"key_sha256\": \"%s\", \"admin\": true}, {\"name\": \"b\", \"key_sha256\": \"%s\", "
            "\"tiers\": [\"local\"]}]}",
            fc.port, local, fc.port, ka, kb);
    return fclose(f) == 0;
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_remote_embed", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    REQUIRE(fake_cloud_start(&fc));
    fake_embed_serve(&fc);
    char base[4096], local[256];
    snprintf(base, sizeof base, "%s", model_path);
    snprintf(local, sizeof local, "%s", basename(base)); /* the local model's id */
    char cfg[700], db[700], args[2048];
    snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
    snprintf(db, sizeof db, "%s/ledger.db", scratch);
    REQUIRE(write_config(cfg, local));
    snprintf(args, sizeof args, "-t 1 -c 256 --config '%s' --ledger '%s'", cfg, db);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    openai_shapes(&sv);
    ollama_shapes(&sv);
    rerank_shapes(&sv);
    routing(&sv, local);
    models(&sv, local);
    ledger(&sv, db);
    CHECK(test_server_stop(&sv) == 0);
    report(db);

    snprintf(args, sizeof args, "-t 1 -c 256 --config '%s' --air-gapped", cfg);
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    air_gapped(&sv);
    CHECK(test_server_stop(&sv) == 0);

    fake_cloud_stop(&fc);
    fixture_server_cleanup("test_server_remote_embed", scratch, test_failures > 0);
    return test_done("test_server_remote_embed");
}
