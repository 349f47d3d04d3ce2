/*
 * test_cloud.c - the remote-tier client against a real HTTP server on
 * loopback (tests/gateway/fake_cloud.h, libmicrohttpd) that speaks OpenAI's
 * and Anthropic's formats: answers whole and streamed (SSE pieces of 3
 * bytes, CRLF lines for Anthropic), usage passed through, the request bodies
 * each format wants; faults: 429 and 500 (retried with backoff, Retry-After
 * honoured), a server slower than the timeout, a stream that stalls or is
 * cut after some text (not retried: the text was handed over), a connection
 * closed before any answer (retried), 400, a wrong or missing key, a 200
 * that is not JSON; the circuit breaker's open / probe / close cycle; a
 * cancelled call; concurrent calls; and the privacy round trip: values the
 * guard mapped never appear in what the server received, and the streamed
 * answer comes back with them restored. Tools: passed through to OpenAI,
 * translated for Anthropic, and the tier's calls (whole or streamed) handed
 * back as data (gw_tool_call: the tier's id, name, arguments), never in the
 * text.
 */
#include "test.h"

#include "gateway/cloud_tools.h"
#include "gateway/fake_cloud.h"
#include "gateway/gateway.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <pthread.h>

static fake_cloud fc;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static gw_tier make_tier(gw_tier_kind kind, const char *model) {
    gw_tier t;
    REQUIRE(fc_tier(&fc, kind, model, &t));
    t.timeout_ms = 2000;
    t.retries = 2;
    t.backoff_ms = 20;
    t.backoff_max_ms = 100;
    return t;
}

typedef struct sink {
    gw_buf text;
    int calls;
    int stop_after;   /* 0: never */
    int n_tool_calls; /* handed to gw_chat.on_call */
} sink;

static bool collect(const char *text, size_t len, void *user) {
    sink *s = user;
    s->calls++;
    REQUIRE(gw_buf_put(&s->text, text, len) == HEARTH_OK);
    return !s->stop_after || s->calls < s->stop_after;
}

static bool count_call(const gw_tool_call *c, void *user) {
    sink *s = user;
    s->n_tool_calls++;
    return c->name && c->arguments && c->id;
}

static gw_chat chat_of(const gw_message *m, int n, bool stream) {
    gw_chat q = {.messages = m, .n_messages = n, .temperature = NAN, .top_p = NAN};
    q.stream = stream;
    return q;
}

/* One call on a fresh remote for the tier; *s collects the text. */
static gw_cloud_result call(const gw_tier *t, const gw_chat *q, sink *s) {
    gw_remote *r = NULL;
    REQUIRE(gw_remote_new(t, &r) == HEARTH_OK);
    gw_cloud_result res;
    REQUIRE(gw_cloud_chat(r, q, collect, s, &res) == HEARTH_OK);
    gw_remote_free(r);
    return res;
}

static const gw_message hello[] = {{"system", "be brief"}, {"user", "hello there"}};

static void test_endpoints(void) {
    char u[256];
    CHECK(gw_endpoint_url(GW_TIER_OPENAI, "http://h:1", u, sizeof u) == HEARTH_OK &&
          !strcmp(u, "http://h:1/v1/chat/completions"));
    CHECK(gw_endpoint_url(GW_TIER_OPENAI, "https://api.openai.com/v1/", u, sizeof u) == HEARTH_OK &&
          !strcmp(u, "https://api.openai.com/v1/chat/completions"));
    CHECK(gw_endpoint_url(GW_TIER_OPENAI, "http://h/x/chat/completions", u, sizeof u) ==
              HEARTH_OK &&
          !strcmp(u, "http://h/x/chat/completions"));
    CHECK(gw_endpoint_url(GW_TIER_ANTHROPIC, "https://api.anthropic.com", u, sizeof u) ==
              HEARTH_OK &&
          !strcmp(u, "https://api.anthropic.com/v1/messages"));
    CHECK(gw_endpoint_url(GW_TIER_OPENAI, "ftp://h", u, sizeof u) == HEARTH_ERR_INVALID_ARG);
}

static void test_formats(void) {
    for (int k = 0; k < 2; k++) {
        const gw_tier_kind kind = k ? GW_TIER_ANTHROPIC : GW_TIER_OPENAI;
        for (int stream = 0; stream < 2; stream++) {
            fake_cloud_reset(&fc);
            gw_tier t = make_tier(kind, "ok");
            gw_chat q = chat_of(hello, 2, stream);
            /* JSON mode and schemas go to OpenAI tiers only */
            q.json_object = stream;
            q.response_format = stream ? NULL
                                       : "{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
                                         "\"cat\",\"schema\":{\"type\":\"object\"}}}";
            sink s = {0};
            gw_cloud_result res = call(&t, &q, &s);
            CHECKF(res.status == GW_CLOUD_OK, "%s stream=%d: %s %s", gw_tier_kind_name(kind),
                   stream, gw_cloud_status_name(res.status), res.error);
            CHECK(res.attempts == 1 && res.http_status == 200);
            CHECK(!strcmp(res.text, "echo: hello there"));
            CHECK(s.text.data && !strcmp(s.text.data, res.text));
            CHECK(stream ? s.calls > 3 : s.calls == 1);
            CHECK(!res.usage_estimated &&
                  res.prompt_tokens == (kind == GW_TIER_ANTHROPIC ? 11 : 21));
            CHECK(res.completion_tokens == 6);
            CHECK(!strcmp(res.finish_reason, "stop"));
            REQUIRE(fc.n_bodies == 1);
            char hex[65];
            gw_sha256_hex(fc.bodies[0], strlen(fc.bodies[0]), hex);
            CHECK(!strcmp(hex, res.sent_sha256)); /* the digest is of exactly what was sent */
            cJSON *b = cJSON_Parse(fc.bodies[0]);
            REQUIRE(b);
            CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "model")), "ok"));
            const cJSON *rf = cJSON_GetObjectItem(b, "response_format");
            const char *rf_type = cJSON_GetStringValue(cJSON_GetObjectItem(rf, "type"));
            if (kind == GW_TIER_ANTHROPIC)
                CHECK(rf == NULL);
            else if (stream)
                CHECK(rf_type && !strcmp(rf_type, "json_object"));
            else
                CHECK(rf_type && !strcmp(rf_type, "json_schema") &&
                      !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
                                  cJSON_GetObjectItem(rf, "json_schema"), "name")),
                              "cat"));
            if (kind == GW_TIER_ANTHROPIC) {
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "system")), "be brief"));
                CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(b, "messages")) == 1);
                CHECK(cJSON_GetObjectItem(b, "max_tokens")->valuedouble == 1024);
            } else {
                CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(b, "messages")) == 2);
                CHECK(!cJSON_GetObjectItem(b, "max_tokens"));
                CHECK(!stream || cJSON_IsTrue(cJSON_GetObjectItem(
                                     cJSON_GetObjectItem(b, "stream_options"), "include_usage")));
            }
            cJSON_Delete(b);
            gw_cloud_result_free(&res);
            gw_buf_free(&s.text);
        }
    }
    /* Anthropic: consecutive turns of one role are joined; stop and sampling pass */
    fake_cloud_reset(&fc);
    const gw_message turns[] = {{"user", "a"}, {"user", "b"}, {"assistant", "c"}, {"user", "d"}};
    const char *stops[] = {"END"};
    gw_chat q = chat_of(turns, 4, false);
    q.stop = stops;
    q.n_stop = 1;
    q.temperature = 0.5;
    q.max_tokens = 7;
    gw_tier t = make_tier(GW_TIER_ANTHROPIC, "ok");
    sink s = {0};
    gw_cloud_result res = call(&t, &q, &s);
    CHECK(res.status == GW_CLOUD_OK && !strcmp(res.text, "echo: d"));
    cJSON *b = cJSON_Parse(fc.bodies[0]);
    const cJSON *m = cJSON_GetObjectItem(b, "messages");
    CHECK(cJSON_GetArraySize(m) == 3);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "content")),
                  "a\n\nb"));
    CHECK(!strcmp(
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "stop_sequences"), 0)),
        "END"));
    CHECK(cJSON_GetObjectItem(b, "max_tokens")->valuedouble == 7);
    CHECK(cJSON_GetObjectItem(b, "temperature")->valuedouble == 0.5);
    cJSON_Delete(b);
    gw_cloud_result_free(&res);
    gw_buf_free(&s.text);
}

/* A fault: model name, streaming, tier tweaks; the expected outcome. */
static gw_cloud_result fault(const char *model, gw_tier_kind kind, bool stream, int retries,
                             int timeout_ms, sink *s) {
    fake_cloud_reset(&fc);
    gw_tier t = make_tier(kind, model);
    t.retries = retries;
    t.timeout_ms = timeout_ms;
    const gw_chat q = chat_of(hello, 2, stream);
    return call(&t, &q, s);
}

static void test_faults(void) {
    for (int k = 0; k < 2; k++) {
        const gw_tier_kind kind = k ? GW_TIER_ANTHROPIC : GW_TIER_OPENAI;
        sink s = {0};
        /* 429 twice, then an answer: the third attempt succeeds */
        gw_cloud_result r = fault("e429-2", kind, true, 2, 2000, &s);
        CHECKF(r.status == GW_CLOUD_OK && r.attempts == 3 && fake_cloud_requests(&fc) == 3, "%s %d",
               gw_cloud_status_name(r.status), r.attempts);
        CHECK(!strcmp(s.text.data, "echo: hello there")); /* failed attempts handed nothing over */
        gw_cloud_result_free(&r);
        gw_buf_free(&s.text);
        /* one retry is not enough */
        memset(&s, 0, sizeof s);
        r = fault("e429-2", kind, false, 1, 2000, &s);
        CHECK(r.status == GW_CLOUD_UNREACHABLE && r.attempts == 2 && r.http_status == 429);
        CHECK(s.calls == 0);
        gw_cloud_result_free(&r);
        /* 500 on every attempt */
        r = fault("e500-99", kind, false, 2, 2000, &s);
        CHECK(r.status == GW_CLOUD_UNREACHABLE && r.attempts == 3 && r.http_status == 500);
        CHECK(fake_cloud_requests(&fc) == 3 && strstr(r.error, "500"));
        gw_cloud_result_free(&r);
        /* slower than the timeout: each attempt gives up at the limit */
        double t0 = now_ms();
        r = fault("slow-1500", kind, false, 1, 250, &s);
        double ms = now_ms() - t0;
        CHECKF(r.status == GW_CLOUD_UNREACHABLE && r.attempts == 2 && ms < 1200, "%s after %.0f ms",
               gw_cloud_status_name(r.status), ms);
        CHECK(strstr(r.error, "no answer within 250 ms") != NULL);
        gw_cloud_result_free(&r);
        /* a stream that stalls after some text: broken, not retried */
        memset(&s, 0, sizeof s);
        t0 = now_ms();
        r = fault("stall-1500", kind, true, 2, 300, &s);
        ms = now_ms() - t0;
        CHECKF(r.status == GW_CLOUD_BROKEN && r.attempts == 1 && ms < 1200, "%s %d %.0f ms",
               gw_cloud_status_name(r.status), r.attempts, ms);
        CHECK(s.calls > 0 && r.text_len == s.text.len);
        gw_cloud_result_free(&r);
        gw_buf_free(&s.text);
        /* a stream cut after some text */
        memset(&s, 0, sizeof s);
        r = fault("drop", kind, true, 2, 2000, &s);
        CHECKF(r.status == GW_CLOUD_BROKEN && r.attempts == 1, "%s %d: %s",
               gw_cloud_status_name(r.status), r.attempts, r.error);
        CHECK(fake_cloud_requests(&fc) == 1 && s.calls > 0);
        gw_cloud_result_free(&r);
        gw_buf_free(&s.text);
        /* the connection closed before a word: retried */
        memset(&s, 0, sizeof s);
        r = fault("drop0-1", kind, true, 2, 2000, &s);
        CHECKF(r.status == GW_CLOUD_OK && r.attempts == 2, "%s %d: %s",
               gw_cloud_status_name(r.status), r.attempts, r.error);
        gw_cloud_result_free(&r);
        gw_buf_free(&s.text);
        /* 400: the client's fault, not retried, the server's message kept */
        memset(&s, 0, sizeof s);
        r = fault("bad", kind, false, 2, 2000, &s);
        CHECK(r.status == GW_CLOUD_REJECTED && r.attempts == 1 && r.http_status == 400);
        CHECK(strstr(r.error, "does not exist") != NULL);
        gw_cloud_result_free(&r);
        /* 200 that is not JSON */
        r = fault("garbage", kind, false, 2, 2000, &s);
        CHECK(r.status == GW_CLOUD_BAD_RESPONSE && r.attempts == 1);
        gw_cloud_result_free(&r);
    }
    /* Retry-After is honoured */
    fc.retry_after = 1;
    sink s = {0};
    const double t0 = now_ms();
    gw_tier t = make_tier(GW_TIER_OPENAI, "e429-1");
    t.backoff_max_ms = 5000;
    const gw_chat q = chat_of(hello, 2, false);
    fake_cloud_reset(&fc);
    gw_cloud_result r = call(&t, &q, &s);
    CHECK(r.status == GW_CLOUD_OK && r.attempts == 2 && now_ms() - t0 >= 950);
    gw_cloud_result_free(&r);
    gw_buf_free(&s.text);
    fc.retry_after = 0;
}

static void test_keys(void) {
    fc.expect_key = "sk-test-123";
    setenv("HEARTH_TEST_CLOUD_KEY", "sk-test-123", 1);
    for (int k = 0; k < 2; k++) {
        const gw_tier_kind kind = k ? GW_TIER_ANTHROPIC : GW_TIER_OPENAI;
        gw_tier t = make_tier(kind, "ok");
        const gw_chat q = chat_of(hello, 2, false);
        sink s = {0};
        gw_cloud_result r = call(&t, &q, &s); /* no key sent */
        CHECK(r.status == GW_CLOUD_REJECTED && r.http_status == 401 && r.attempts == 1);
        gw_cloud_result_free(&r);
        snprintf(t.api_key_env, sizeof t.api_key_env, "HEARTH_TEST_CLOUD_KEY");
        r = call(&t, &q, &s);
        CHECKF(r.status == GW_CLOUD_OK, "%s", r.error);
        gw_cloud_result_free(&r);
        snprintf(t.api_key_env, sizeof t.api_key_env, "HEARTH_TEST_NO_SUCH_VARIABLE");
        fake_cloud_reset(&fc);
        r = call(&t, &q, &s);
        CHECK(r.status == GW_CLOUD_REJECTED && r.attempts == 0 && fake_cloud_requests(&fc) == 0);
        CHECK(strstr(r.error, "HEARTH_TEST_NO_SUCH_VARIABLE") != NULL);
        gw_cloud_result_free(&r);
        gw_buf_free(&s.text);
    }
    fc.expect_key = NULL;
}

static void test_breaker(void) {
    gw_tier t = make_tier(GW_TIER_OPENAI, "e500-2");
    t.retries = 0;
    t.breaker_failures = 2;
    t.breaker_cooldown_ms = 300;
    gw_remote *r = NULL;
    REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
    fake_cloud_reset(&fc);
    const gw_chat q = chat_of(hello, 2, false);
    gw_cloud_result res;
    for (int i = 0; i < 2; i++) {
        REQUIRE(gw_cloud_chat(r, &q, NULL, NULL, &res) == HEARTH_OK);
        CHECK(res.status == GW_CLOUD_UNREACHABLE);
        gw_cloud_result_free(&res);
    }
    CHECK(!gw_remote_available(r));
    REQUIRE(gw_cloud_chat(r, &q, NULL, NULL, &res) == HEARTH_OK);
    CHECK(res.status == GW_CLOUD_BREAKER_OPEN && res.attempts == 0);
    CHECK(fake_cloud_requests(&fc) == 2); /* the open circuit sent nothing */
    gw_cloud_result_free(&res);
    fc_sleep_ms(350);
    CHECK(gw_remote_available(r));
    REQUIRE(gw_cloud_chat(r, &q, NULL, NULL, &res) == HEARTH_OK); /* the probe: now healthy */
    CHECK(res.status == GW_CLOUD_OK);
    gw_cloud_result_free(&res);
    CHECK(gw_remote_available(r));
    gw_remote_free(r);
    /* a failing probe opens the circuit again at once */
    t.breaker_failures = 1;
    snprintf(t.model, sizeof t.model, "e500-99");
    REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
    REQUIRE(gw_cloud_chat(r, &q, NULL, NULL, &res) == HEARTH_OK);
    gw_cloud_result_free(&res);
    CHECK(!gw_remote_available(r));
    fc_sleep_ms(350);
    REQUIRE(gw_cloud_chat(r, &q, NULL, NULL, &res) == HEARTH_OK);
    CHECK(res.status == GW_CLOUD_UNREACHABLE && res.attempts == 1);
    gw_cloud_result_free(&res);
    CHECK(!gw_remote_available(r));
    gw_remote_free(r);
    /* a rejected call (400) does not count against the tier */
    snprintf(t.model, sizeof t.model, "bad");
    REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
    for (int i = 0; i < 3; i++) {
        REQUIRE(gw_cloud_chat(r, &q, NULL, NULL, &res) == HEARTH_OK);
        CHECK(res.status == GW_CLOUD_REJECTED);
        gw_cloud_result_free(&res);
    }
    CHECK(gw_remote_available(r));
    gw_remote_free(r);
}

static void test_cancel(void) {
    fake_cloud_reset(&fc);
    gw_tier t = make_tier(GW_TIER_OPENAI, "ok");
    const gw_chat q = chat_of(hello, 2, true);
    sink s = {.stop_after = 2};
    gw_cloud_result r = call(&t, &q, &s);
    CHECK(r.status == GW_CLOUD_CANCELLED && s.calls == 2 && r.attempts == 1);
    gw_cloud_result_free(&r);
    gw_buf_free(&s.text);
}

static void *raise_flag(void *arg) {
    fc_sleep_ms(150);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

/* A cancel flag stops a call that is waiting on a silent server. */
static void test_cancel_flag(void) {
    fake_cloud_reset(&fc);
    gw_tier t = make_tier(GW_TIER_OPENAI, "slow-1000");
    atomic_bool stop;
    atomic_init(&stop, false);
    gw_chat q = chat_of(hello, 2, true);
    q.cancel = &stop;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, raise_flag, &stop) == 0);
    const double t0 = now_ms();
    sink s = {0};
    gw_cloud_result r = call(&t, &q, &s);
    const double ms = now_ms() - t0;
    pthread_join(th, NULL);
    CHECKF(r.status == GW_CLOUD_CANCELLED && ms < 600, "%s after %.0f ms",
           gw_cloud_status_name(r.status), ms);
    gw_cloud_result_free(&r);
}

typedef struct worker {
    gw_remote *r;
    int ok;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 10; i++) {
        char text[64];
        snprintf(text, sizeof text, "request %d", i);
        const gw_message m[] = {{"user", text}};
        const gw_chat q = chat_of(m, 1, i % 2);
        gw_cloud_result res;
        if (gw_cloud_chat(w->r, &q, NULL, NULL, &res) != HEARTH_OK) continue;
        char want[80];
        snprintf(want, sizeof want, "echo: %s", text);
        w->ok += res.status == GW_CLOUD_OK && !strcmp(res.text, want);
        gw_cloud_result_free(&res);
    }
    return NULL;
}

static void test_concurrent(void) {
    gw_tier t = make_tier(GW_TIER_OPENAI, "ok");
    gw_remote *r = NULL;
    REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
    pthread_t th[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){r, 0};
        REQUIRE(pthread_create(&th[i], NULL, work, &w[i]) == 0);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
    }
    CHECK(ok == 80);
    gw_remote_free(r);
}

/* ---- the privacy round trip ---------------------------------------------------- */

typedef struct restore_sink {
    gw_restorer rs;
    gw_buf out;
} restore_sink;

static bool restore_piece(const char *text, size_t len, void *user) {
    restore_sink *s = user;
    return gw_restorer_feed(&s->rs, text, len, &s->out) == HEARTH_OK;
}

static void test_privacy(void) {
    gw_pii *pii = NULL;
    REQUIRE(gw_pii_new(GW_DOB_CONTEXT, &pii) == HEARTH_OK);
    const char *user = "I am jane.doe@example.com, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 "
                       "5698 7654 32, SSN 123-45-6788, from 10.1.2.3, call +1-984-182-0190; "
                       "born on 8/5/1989. Again: jane.doe@example.com.";
    const char *system = "Customer record: phone +1-984-182-0190, backup mail ops@example.org";
    for (int k = 0; k < 2; k++) {
        fake_cloud_reset(&fc);
        gw_redaction *red = gw_redaction_new();
        const char *orig[2] = {system, user};
        char *sent[2];
        for (int i = 0; i < 2; i++) {
            gw_span *sp = NULL;
            size_t n = 0, len = 0;
            REQUIRE(gw_pii_scan(pii, orig[i], strlen(orig[i]), &sp, &n) == HEARTH_OK);
            REQUIRE(gw_redact(red, orig[i], strlen(orig[i]), sp, n, NULL, &sent[i], &len) ==
                    HEARTH_OK);
            free(sp);
        }
        CHECK(gw_redaction_size(red) == 8);
        const gw_message m[] = {{"system", sent[0]}, {"user", sent[1]}};
        gw_tier t = make_tier(k ? GW_TIER_ANTHROPIC : GW_TIER_OPENAI, "ok");
        const gw_chat q = chat_of(m, 2, true);
        restore_sink s = {0};
        gw_restorer_init(&s.rs, red);
        gw_remote *r = NULL;
        REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
        gw_cloud_result res;
        REQUIRE(gw_cloud_chat(r, &q, restore_piece, &s, &res) == HEARTH_OK);
        REQUIRE(gw_restorer_flush(&s.rs, &s.out) == HEARTH_OK);
        CHECK(res.status == GW_CLOUD_OK);
        /* what the server received holds no mapped value */
        REQUIRE(fc.n_bodies == 1);
        int leaks = 0;
        for (size_t i = 0; i < gw_redaction_size(red); i++) {
            const char *v, *ph;
            size_t vl;
            gw_redaction_entry(red, i, &v, &vl, &ph);
            leaks += strstr(fc.bodies[0], v) != NULL;
            CHECK(strstr(fc.bodies[0], ph) != NULL);
        }
        CHECKF(leaks == 0, "%d values reached the server: %s", leaks, fc.bodies[0]);
        /* the answer (placeholders cut across SSE pieces) comes back restored */
        char want[1024];
        snprintf(want, sizeof want, "echo: %s", user);
        CHECKF(s.out.data && !strcmp(s.out.data, want), "%s", s.out.data);
        CHECK(strstr(res.text, "<EMAIL_2>") != NULL); /* the raw answer held placeholders */
        gw_cloud_result_free(&res);
        gw_remote_free(r);
        gw_buf_free(&s.out);
        free(sent[0]);
        free(sent[1]);
        gw_redaction_free(red);
    }
    gw_pii_free(pii);
}

/* A chat with tools, a call and its result, to both formats. */
static void test_tools(void) {
    static const char tools[] =
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"noop\"}}]";
    static const gw_message msgs[] = {
        {"system", "be brief"}, {"user", "weather?"}, {"assistant", ""}, {"tool", "18 C"}};
    static const gw_msg_tools mt[] = {
        {0},
        {0},
        {"[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
         "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]",
         NULL},
        {NULL, "call_1"}};
    for (int k = 0; k < 2; k++) {
        const bool anthropic = k == 1;
        for (int stream = 0; stream < 2; stream++) {
            fake_cloud_reset(&fc);
            gw_tier t = make_tier(anthropic ? GW_TIER_ANTHROPIC : GW_TIER_OPENAI, "tools");
            gw_chat q = chat_of(msgs, 4, stream);
            gw_chat_tools tt = {.tools = tools,
                                .tool_choice = stream ? "get_weather" : "required",
                                .named_choice = stream,
                                .parallel_tool_calls = 0,
                                .msgs = mt};
            gw_remote *r = NULL;
            REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
            sink sk = {0};
            gw_cloud_result res;
            q.tools = &tt;
            q.on_call = count_call;
            REQUIRE(gw_cloud_chat(r, &q, collect, &sk, &res) == HEARTH_OK);
            gw_remote_free(r);
            CHECKF(res.status == GW_CLOUD_OK, "tools %d/%d: %s", k, stream, res.error);
            /* the text is the tier's text alone; the call is data, with the tier's id */
            const char *want = anthropic && !stream ? "Checking." : "";
            CHECKF(res.text && !strcmp(res.text, want), "tools %d/%d: '%s'", k, stream,
                   res.text ? res.text : "(null)");
            CHECK(!strcmp(sk.text.data ? sk.text.data : "", want));
            CHECKF(res.n_calls == 1 && sk.n_tool_calls == 1, "tools %d/%d: %d calls", k, stream,
                   res.n_calls);
            if (res.n_calls == 1) {
                CHECK(!strcmp(res.calls[0].id, anthropic ? "toolu_fake" : "call_fake"));
                CHECK(!strcmp(res.calls[0].name, "get_weather"));
                cJSON *a = cJSON_Parse(res.calls[0].arguments);
                CHECKF(cJSON_GetArraySize(a) == 1 &&
                           !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(a, "city")), "Paris"),
                       "arguments %s", res.calls[0].arguments);
                cJSON_Delete(a);
            }
            CHECK(!strcmp(res.finish_reason, "stop"));
            REQUIRE(fc.n_bodies == 1);
            cJSON *b = cJSON_Parse(fc.bodies[0]);
            REQUIRE(b);
            const cJSON *m = cJSON_GetObjectItem(b, "messages");
            const cJSON *tc = cJSON_GetObjectItem(b, "tool_choice");
            if (!anthropic) { /* passed through */
                cJSON *in = cJSON_Parse(tools);
                CHECK(cJSON_Compare(in, cJSON_GetObjectItem(b, "tools"), true));
                cJSON_Delete(in);
                CHECK(stream ? !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
                                           cJSON_GetObjectItem(tc, "function"), "name")),
                                       "get_weather")
                             : !strcmp(cJSON_GetStringValue(tc), "required"));
                CHECK(cJSON_IsFalse(cJSON_GetObjectItem(b, "parallel_tool_calls")));
                const cJSON *a = cJSON_GetArrayItem(m, 2);
                CHECK(cJSON_IsNull(cJSON_GetObjectItem(a, "content")));
                CHECK(
                    !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
                                cJSON_GetArrayItem(cJSON_GetObjectItem(a, "tool_calls"), 0), "id")),
                            "call_1"));
                CHECK(!strcmp(cJSON_GetStringValue(
                                  cJSON_GetObjectItem(cJSON_GetArrayItem(m, 3), "tool_call_id")),
                              "call_1"));
            } else { /* translated */
                const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "tools"), 0);
                const cJSON *t1 = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "tools"), 1);
                CHECK(
                    !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t0, "name")), "get_weather"));
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t0, "description")), "d"));
                CHECK(cJSON_IsObject(cJSON_GetObjectItem(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(t0, "input_schema"), "properties"),
                    "city")));
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(
                                  cJSON_GetObjectItem(t1, "input_schema"), "type")),
                              "object"));
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(tc, "type")),
                              stream ? "tool" : "any"));
                CHECK(cJSON_IsTrue(cJSON_GetObjectItem(tc, "disable_parallel_tool_use")));
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "system")), "be brief"));
                CHECK(cJSON_GetArraySize(m) == 3);
                const cJSON *use =
                    cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "content"), 0);
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(use, "type")), "tool_use"));
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(use, "id")), "call_1"));
                CHECK(!strcmp(cJSON_GetStringValue(
                                  cJSON_GetObjectItem(cJSON_GetObjectItem(use, "input"), "city")),
                              "Oslo"));
                const cJSON *res_b =
                    cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 2), "content"), 0);
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(res_b, "type")),
                              "tool_result"));
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(res_b, "tool_use_id")),
                              "call_1"));
                CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(res_b, "content")), "18 C"));
            }
            cJSON_Delete(b);
            gw_cloud_result_free(&res);
            gw_buf_free(&sk.text);
        }
    }
    /* malformed tool_calls JSON: no body is built */
    static const gw_msg_tools bad[] = {{0}, {0}, {"{", NULL}, {0}};
    gw_chat_tools tt = {.tools = tools, .parallel_tool_calls = -1, .msgs = bad};
    gw_tier t = make_tier(GW_TIER_ANTHROPIC, "tools");
    gw_remote *r = NULL;
    REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
    gw_chat q = chat_of(msgs, 4, false);
    gw_cloud_result res;
    q.tools = &tt;
    CHECK(gw_cloud_chat(r, &q, NULL, NULL, &res) == HEARTH_ERR_INVALID_ARG);
    gw_remote_free(r);
}

/* Calls past GW_TOOL_CALLS_MAX make the flush fail, the first ones kept. */
static void test_cap(void) {
    gw_tool_acc *acc = calloc(1, sizeof *acc);
    REQUIRE(acc);
    for (int k = 0; k < GW_TOOL_CALLS_MAX + 1; k++) {
        gw_tool_acc_name(acc, k, "f");
        gw_tool_acc_args(acc, k, "{}");
    }
    CHECK(acc->n == GW_TOOL_CALLS_MAX && acc->dropped);
    gw_tool_call *calls = NULL;
    int n = 0;
    CHECK(gw_tool_acc_flush(acc, &calls, &n) == HEARTH_ERR_UNSUPPORTED);
    CHECKF(n == GW_TOOL_CALLS_MAX, "%d calls", n);
    CHECK(acc->n == 0 && !acc->dropped);
    gw_tool_acc_name(acc, 0, "f"); /* past the cap of one answer */
    CHECK(gw_tool_acc_flush(acc, &calls, &n) == HEARTH_ERR_UNSUPPORTED && n == GW_TOOL_CALLS_MAX);
    gw_tool_calls_free(calls, n);
    calls = NULL;
    n = 0;
    gw_tool_acc_name(acc, 3, "g"); /* no arguments: "{}", no id: "" */
    CHECK(gw_tool_acc_flush(acc, &calls, &n) == HEARTH_OK && n == 1);
    CHECK(n == 1 && !strcmp(calls[0].name, "g") && !strcmp(calls[0].arguments, "{}") &&
          !strcmp(calls[0].id, ""));
    gw_tool_calls_free(calls, n);
    free(acc);
}

int main(void) {
    test_cap();
    REQUIRE(fake_cloud_start(&fc));
    test_endpoints();
    test_formats();
    test_tools();
    test_faults();
    test_keys();
    test_breaker();
    test_cancel();
    test_cancel_flag();
    test_concurrent();
    test_privacy();
    fake_cloud_stop(&fc);
    return test_done("test_cloud");
}
