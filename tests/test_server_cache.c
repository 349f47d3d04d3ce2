/*
 * test_server_cache.c - the gateway's response cache through `hearth serve`
 * (curl, the test model, the fake cloud as a priced tier): an identical
 * temperature-0 request is answered from the cache (the tier is not called
 * again, x-hearth-cache: hit, the same text, streamed too, the ledger row
 * costs nothing while its cloud-only cost stays); another prompt, a request
 * without temperature 0, Cache-Control no-cache / no-store, and another
 * API key miss; the same prompt with another e-mail address is a hit
 * restored with the new address (the cache holds what the tier saw:
 * placeholders); entries expire after the ttl and survive a restart.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_cache_XXXXXX";

typedef test_json_reply reply;

/* A chat to the cloud tier with `content` and API key ka (extra: more curl
 * arguments; one naming kb uses that key instead). */
static reply chat(test_server *sv, const char *content, double temp, bool stream,
                  const char *extra) {
    const bool kb = extra && strstr(extra, "Bearer kb");
    char body[1024], args[1024];
    char t[48];
    snprintf(t, sizeof t, "\"temperature\":%g,", temp);
    snprintf(body, sizeof body,
             "{\"model\":\"cloud\",%s\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"%s\"}]}",
             t, stream ? "true" : "false", content);
    snprintf(args, sizeof args, "%s %s", kb ? "" : "-H 'Authorization: Bearer ka'",
             extra ? extra : "");
    return test_http_json(sv, "POST", "/v1/chat/completions", body, args);
}

static const char *text_of(const reply *r) {
    const char *t = jstr(r->json, "choices.0.message.content");
    return t ? t : "";
}

static bool hit(const reply *r) { return strstr(r->headers, "x-hearth-cache: hit") != NULL; }

/* The content of an OpenAI chat stream, concatenated. */
static void stream_text(const char *body, char *out, size_t cap) {
    out[0] = '\0';
    for (const char *p = body; (p = strstr(p, "data: ")); p += 6) {
        cJSON *ev = cJSON_Parse(p + 6);
        const char *c = jstr(ev, "choices.0.delta.content");
        if (c) strncat(out, c, cap - strlen(out) - 1);
        cJSON_Delete(ev);
    }
}

static void hits_and_misses(test_server *sv, fake_cloud *fc) {
    fake_cloud_reset(fc);
    reply a = chat(sv, "What is a cache?", 0, false, NULL);
    CHECKF(a.status == 200 && !hit(&a) && strstr(text_of(&a), "What is a cache?"), "%d %s",
           a.status, a.body);
    reply b = chat(sv, "What is a cache?", 0, false, NULL);
    CHECKF(b.status == 200 && hit(&b) && !strcmp(text_of(&a), text_of(&b)) &&
               strstr(b.headers, "x-hearth-route: cloud") && strstr(b.headers, "from the cache"),
           "%d %s %s", b.status, b.body, b.headers);
    CHECK(jnum(b.json, "usage.completion_tokens") == jnum(a.json, "usage.completion_tokens"));
    CHECKF(fake_cloud_requests(fc) == 1, "the tier was called %d times", fake_cloud_requests(fc));
    reply s = chat(sv, "What is a cache?", 0, true, NULL);
    char text[512];
    stream_text(s.body, text, sizeof text);
    CHECKF(s.status == 200 && hit(&s) && !strcmp(text, text_of(&a)), "stream: '%s'", text);
    CHECK(fake_cloud_requests(fc) == 1);
    test_json_done(&a);
    test_json_done(&b);
    test_json_done(&s);

    /* misses: another prompt, no temperature 0, no-cache, no-store */
    reply c = chat(sv, "Something else", 0, false, NULL);
    CHECK(c.status == 200 && !hit(&c) && fake_cloud_requests(fc) == 2);
    test_json_done(&c);
    for (int i = 0; i < 2; i++) {
        reply d = chat(sv, "Sampled", 0.7, false, NULL);
        CHECK(d.status == 200 && !hit(&d));
        test_json_done(&d);
    }
    CHECK(fake_cloud_requests(fc) == 4);
    reply e = chat(sv, "What is a cache?", 0, false, "-H 'Cache-Control: no-cache'");
    CHECK(e.status == 200 && !hit(&e) && fake_cloud_requests(fc) == 5);
    test_json_done(&e);
    for (int i = 0; i < 2; i++) {
        reply f = chat(sv, "Not kept", 0, false, "-H 'Cache-Control: no-store'");
        CHECK(f.status == 200 && !hit(&f));
        test_json_done(&f);
    }
    CHECK(fake_cloud_requests(fc) == 7);
    /* another API key has a cache of its own */
    reply g = chat(sv, "What is a cache?", 0, false, "-H 'Authorization: Bearer kb'");
    CHECK(g.status == 200 && !hit(&g) && fake_cloud_requests(fc) == 8);
    test_json_done(&g);
}

/* The tier saw placeholders; so does the cache: another address is a hit,
 * restored with that address. */
static void privacy(test_server *sv, fake_cloud *fc) {
    fake_cloud_reset(fc);
    reply a = chat(sv, "Write to ann@example.com today", 0, false, NULL);
    CHECKF(a.status == 200 && strstr(text_of(&a), "ann@example.com"), "%s", a.body);
    CHECK(fc->n_bodies >= 1 && !strstr(fc->bodies[0], "ann@example.com"));
    reply b = chat(sv, "Write to bob@example.org today", 0, false, NULL);
    CHECKF(b.status == 200 && hit(&b) && strstr(text_of(&b), "bob@example.org") &&
               !strstr(text_of(&b), "ann@"),
           "%s", b.body);
    CHECK(fake_cloud_requests(fc) == 1);
    test_json_done(&a);
    test_json_done(&b);
}

/* The ledger: a hit costs nothing, what it would have cost stays. */
static void ledger(test_server *sv) {
    test_reply r = test_http(sv, "GET", "/v1/hearth/stats", NULL, "-H 'Authorization: Bearer ka'");
    cJSON *j = cJSON_Parse(r.body);
    const double cost = jnum(j, "tiers.cloud.cost_usd"),
                 cloud_only = jnum(j, "cloud_only_cost_usd");
    CHECKF(cost > 0 && cloud_only > cost * 1.2, "cost %g, cloud-only %g", cost, cloud_only);
    cJSON_Delete(j);
    free(r.body);
}

/* The fake cloud as tier "cloud" (fake_cloud_priced_config), the cache,
 * and two keys. */
static bool write_config(const fake_cloud *fc, const char *path, const char *ttl) {
    char ka[65], kb[65], more[512];
    gw_sha256_hex("ka", 2, ka);
    gw_sha256_hex("kb", 2, kb);
    snprintf(more, sizeof more,
             "\"cache\":{\"ttl\":\"%s\"},\"keys\":[{\"name\":\"a\",\"key_sha256\":\"%s\","
             "\"admin\":true},{\"name\":\"b\",\"key_sha256\":\"%s\"}]",
             ttl, ka, kb);
    return fake_cloud_priced_config(fc, path, more);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_cache", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    fake_cloud fc = {0};
    REQUIRE(fake_cloud_start(&fc));
    char cfg[700], args[2048];
    snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
    REQUIRE(write_config(&fc, cfg, "1h"));
    snprintf(args, sizeof args, "-t 1 -c 512 --config '%s' --ledger '%s/l.db'", cfg, scratch);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    hits_and_misses(&sv, &fc);
    privacy(&sv, &fc);
    ledger(&sv);
    CHECK(test_server_stop(&sv) == 0);

    /* kept across a restart; gone after the ttl */
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    fake_cloud_reset(&fc);
    reply r = chat(&sv, "What is a cache?", 0, false, NULL);
    CHECK(r.status == 200 && hit(&r) && fake_cloud_requests(&fc) == 0);
    test_json_done(&r);
    CHECK(test_server_stop(&sv) == 0);
    REQUIRE(write_config(&fc, cfg, "1s"));
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    r = chat(&sv, "A short life", 0, false, NULL);
    test_json_done(&r);
    test_sleep_ms(1200);
    r = chat(&sv, "A short life", 0, false, NULL);
    CHECK(r.status == 200 && !hit(&r) && fake_cloud_requests(&fc) == 2);
    test_json_done(&r);
    CHECK(test_server_stop(&sv) == 0);

    fake_cloud_stop(&fc);
    fixture_server_cleanup("test_server_cache", scratch, test_failures > 0);
    return test_done("test_server_cache");
}
