/*
 * test_gateway_serve.c - the cascade gateway in real processes on loopback.
 * The "cloud" tier is a second `hearth serve` with a different model (a real
 * OpenAI-compatible server); the gateway is `hearth serve --cloud-url ...
 * --config ... --ledger ...`, driven with curl. Checked:
 *   - routes and their headers (x-hearth-route, x-hearth-reason): explicit
 *     local and cloud, a rule, confidence escalation, kept local; the cloud's
 *     answer relayed exactly (same tokens as asking the cloud directly),
 *     streaming and not;
 *   - privacy: what the cloud server logged of its prompts (--log-prompts)
 *     holds placeholders, never the values; the answer has them restored;
 *   - faults: the cloud killed (degraded local answers); a fake cloud in this
 *     process (tests/gateway/fake_cloud.h) that is slower than the timeout,
 *     answers 429 and 500, cuts a stream, and speaks Anthropic's format;
 *     every request gets an answer or a clear error;
 *   - GET /v1/hearth/stats, `hearth ledger report`, air gap, and exactly one
 *     ledger row per chat request;
 *   - POST /v1/completions on the same path: a ledger row each, the route
 *     headers, rules and confidence escalation to the cloud, the privacy
 *     guard (placeholders out, values restored in the answer, audit rows),
 *     air-gapped refusal, and the text_completion shape, streaming and not.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "gateway/gateway.h"
#include "gateway/ledger_query.h"
#include "server/http_client.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include <pthread.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_gws_XXXXXX";
static fake_cloud fc;

/* ---- helpers ------------------------------------------------------------------ */

typedef struct reply {
    int status;
    char *body;
    char route[64], reason[512];
} reply;

/* POSTs body to path; extra: more curl arguments. Headers are read back from
 * a dump file (-D). Takes body. */
static reply post(test_server *sv, const char *path, char *body, const char *extra) {
    char hdr[600], args[1200];
    snprintf(hdr, sizeof hdr, "%s/hdr%d", sv->scratch, sv->seq);
    snprintf(args, sizeof args, "-D '%s' %s", hdr, extra ? extra : "");
    test_reply t = test_http(sv, "POST", path, body, args);
    free(body);
    reply r = {.status = t.status, .body = t.body};
    char *h = test_read_file(hdr, NULL);
    for (char *line = h ? strtok(h, "\r\n") : NULL; line; line = strtok(NULL, "\r\n")) {
        if (!strncasecmp(line, "x-hearth-route: ", 16))
            snprintf(r.route, sizeof r.route, "%s", line + 16);
        if (!strncasecmp(line, "x-hearth-reason: ", 17))
            snprintf(r.reason, sizeof r.reason, "%s", line + 17);
    }
    free(h);
    return r;
}

/* The body's common fields (takes b). */
static char *finish_body(cJSON *b, const char *model, bool stream, int max_tokens) {
    cJSON_AddStringToObject(b, "model", model);
    cJSON_AddNumberToObject(b, "max_tokens", max_tokens);
    cJSON_AddNumberToObject(b, "temperature", 0);
    if (stream) cJSON_AddBoolToObject(b, "stream", true);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return body;
}

/* A chat request of one user message. */
static reply chat(test_server *sv, const char *model, const char *user, bool stream, int max_tokens,
                  const char *extra) {
    cJSON *b = cJSON_CreateObject();
    cJSON *m = cJSON_AddArrayToObject(b, "messages"), *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "user");
    cJSON_AddStringToObject(msg, "content", user);
    cJSON_AddItemToArray(m, msg);
    return post(sv, "/v1/chat/completions", finish_body(b, model, stream, max_tokens), extra);
}

/* A completion request (/v1/completions) of a text prompt. */
static reply complete(test_server *sv, const char *model, const char *prompt, bool stream,
                      int max_tokens, const char *extra) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "prompt", prompt);
    return post(sv, "/v1/completions", finish_body(b, model, stream, max_tokens), extra);
}

/* The answer's text of a choice: a chat message's content or delta's
 * content, or a completion's text. */
static const char *choice_text(const cJSON *choice) {
    const cJSON *m = cJSON_GetObjectItem(choice, "message");
    if (!m) m = cJSON_GetObjectItem(choice, "delta");
    return cJSON_GetStringValue(cJSON_GetObjectItem(m ? m : choice, m ? "content" : "text"));
}

/* The answer's text: the whole body's, or the streamed pieces joined. */
static char *answer_text(const reply *r) {
    gw_buf out = {0};
    gw_buf_put(&out, "", 0);
    const bool sse = !strncmp(r->body, "data: ", 6);
    const char *p = sse ? strstr(r->body, "data: ") : r->body;
    while (p) {
        cJSON *o = cJSON_Parse(sse ? p + 6 : p); /* parses up to the event's end */
        const char *c = choice_text(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0));
        if (c) gw_buf_puts(&out, c);
        cJSON_Delete(o);
        p = sse ? strstr(p + 6, "data: ") : NULL;
    }
    return gw_buf_take(&out, NULL);
}

/* Whether a /v1/completions answer has OpenAI's shape: a text_completion
 * whose choice has "text" (no "message"), or SSE events that are all
 * text_completion chunks (choices with "text", or none in the usage chunk)
 * up to [DONE]. */
static bool completion_shape(const reply *r) {
    if (strncmp(r->body, "data: ", 6)) {
        cJSON *o = cJSON_Parse(r->body);
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
        const bool ok = cJSON_IsString(cJSON_GetObjectItem(o, "object")) &&
                        !strcmp(cJSON_GetObjectItem(o, "object")->valuestring, "text_completion") &&
                        cJSON_IsString(cJSON_GetObjectItem(c, "text")) &&
                        !cJSON_GetObjectItem(c, "message") &&
                        cJSON_IsObject(cJSON_GetObjectItem(o, "usage"));
        cJSON_Delete(o);
        return ok;
    }
    int n_events = 0;
    for (const char *p = r->body; (p = strstr(p, "data: ")); p += 6) {
        if (!strncmp(p, "data: [DONE]", 12)) return n_events > 0;
        cJSON *o = cJSON_Parse(p + 6);
        const char *obj = cJSON_GetStringValue(cJSON_GetObjectItem(o, "object"));
        const cJSON *ch = cJSON_GetObjectItem(o, "choices"), *c = cJSON_GetArrayItem(ch, 0);
        const bool ok = obj && !strcmp(obj, "text_completion") && cJSON_IsArray(ch) &&
                        (!c || (cJSON_IsString(cJSON_GetObjectItem(c, "text")) &&
                                !cJSON_GetObjectItem(c, "delta")));
        cJSON_Delete(o);
        if (!ok) return false;
        n_events++;
    }
    return false; /* no [DONE] */
}

static bool stream_done(const reply *r) { return strstr(r->body, "data: [DONE]") != NULL; }

#define CHECK_REPLY(r, st, rt)                                                                     \
    CHECKF((r).status == (st) && !strcmp((r).route, rt),                                           \
           "status %d route '%s' reason '%s': %.300s", (r).status, (r).route, (r).reason,          \
           (r).body)

/* ---- the gateway in front of a real cloud -------------------------------------------- */

static int n_chat; /* chat requests sent to the gateway under test */

static reply counted(test_server *gw, const char *model, const char *user, bool stream, int max,
                     const char *extra) {
    n_chat++;
    return chat(gw, model, user, stream, max, extra);
}

/* A completion request, counted with the chat requests (a ledger row each). */
static reply counted_completion(test_server *gw, const char *model, const char *prompt, bool stream,
                                int max, const char *extra) {
    n_chat++;
    return complete(gw, model, prompt, stream, max, extra);
}

/* /v1/completions through the gateway in front of the real cloud: explicit,
 * a rule, confidence escalation, kept local, PII to the cloud. The requests
 * routed by the policy name the model "compl-auto" (for the ledger queries). */
static void real_cloud_completions(test_server *gw, test_server *cloud) {
    reply r = counted_completion(gw, "local", "Tell me a story.", false, 12, NULL);
    CHECK_REPLY(r, 200, "local");
    CHECKF(strstr(r.reason, "explicit: local") && completion_shape(&r), "%s", r.body);
    free(r.body);
    /* a rule sends it to the cloud: the cloud's answer to the prompt as one
     * user message, token for token */
    reply direct = chat(cloud, "whatever", "A hard question: who?", false, 16, NULL);
    REQUIRE(direct.status == 200);
    char *want = answer_text(&direct);
    for (int stream = 0; stream < 2; stream++) {
        r = counted_completion(gw, "compl-auto", "A hard question: who?", stream, 16, NULL);
        CHECK_REPLY(r, 200, "cloud");
        CHECKF(strstr(r.reason, "rule hard") && completion_shape(&r), "%s", r.body);
        char *got = answer_text(&r);
        CHECKF(!strcmp(got, want), "stream=%d: '%s' vs the cloud's '%s'", stream, got, want);
        free(got);
        free(r.body);
    }
    free(want);
    free(direct.body);
    /* confidence escalation, and an answer kept local */
    for (int stream = 0; stream < 2; stream++) {
        r = counted_completion(gw, "compl-auto", "I am unsure about this", stream, 8, NULL);
        CHECK_REPLY(r, 200, "cloud");
        CHECKF(strstr(r.reason, "confidence: mean logprob") && completion_shape(&r), "%s: %s",
               r.reason, r.body);
        free(r.body);
    }
    r = counted_completion(gw, "compl-auto", "I am sure about this", true, 8, NULL);
    CHECK_REPLY(r, 200, "local");
    CHECKF(strstr(r.reason, "rule sure") && completion_shape(&r), "%s: %s", r.reason, r.body);
    free(r.body);
    /* the cloud sees placeholders (checked in its prompt log at the end) */
    r = counted_completion(gw, "cloud", "Mail bob.smith@example.org or call 555-234-5678", false, 8,
                           NULL);
    CHECK_REPLY(r, 200, "cloud");
    free(r.body);
}

static void test_real_cloud(const char *local_model, const char *cloud_model) {
    test_server cloud, gw;
    REQUIRE(test_server_start(&cloud, binary, cloud_model, scratch,
                              "-t 1 --chat-template chatml --log-prompts"));
    char cfg[600], ledger[600], args[2048];
    snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
    snprintf(ledger, sizeof ledger, "%s/ledger.db", scratch);
    const char *json =
        "{\"routing\": {\"confidence_check\": false, \"rules\": [\n"
        "  {\"name\": \"hard\", \"pattern\": \"(?i)hard question\", \"route\": \"cloud\"},\n"
        "  {\"name\": \"unsure\", \"pattern\": \"(?i)unsure\", \"route\": \"local\",\n"
        "   \"confidence\": {\"mean_logprob\": 0.5, \"min_tokens\": 1}},\n"
        "  {\"name\": \"sure\", \"pattern\": \"(?i)\\\\bsure\\\\b\", \"route\": \"local\",\n"
        "   \"confidence\": {\"mean_logprob\": null, \"min_logprob\": null}}]},\n"
        " \"privacy\": {\"actions\": {\"SSN\": \"block\"}}}\n";
    REQUIRE(test_write_file(cfg, json, strlen(json)));
    snprintf(args, sizeof args,
             "-t 1 --chat-template chatml --config '%s' --cloud-url http://127.0.0.1:%d "
             "--cloud-model cloudy --cloud-price 1,2 --ledger '%s'",
             cfg, cloud.port, ledger);
    REQUIRE(test_server_start(&gw, binary, local_model, scratch, args));

    /* explicit local */
    reply r = counted(&gw, "local", "Tell me a story.", false, 12, NULL);
    CHECK_REPLY(r, 200, "local");
    CHECK(strstr(r.reason, "explicit: local") != NULL);
    free(r.body);
    r = counted(&gw, "local", "Tell me a story.", true, 12, NULL);
    CHECK_REPLY(r, 200, "local");
    CHECK(stream_done(&r));
    free(r.body);

    /* explicit cloud: the cloud's own answer, token for token */
    reply direct = chat(&cloud, "whatever", "Once upon a time", false, 16, NULL);
    REQUIRE(direct.status == 200);
    char *want = answer_text(&direct);
    for (int stream = 0; stream < 2; stream++) {
        r = counted(&gw, "cloud", "Once upon a time", stream, 16, NULL);
        CHECK_REPLY(r, 200, "cloud");
        char *got = answer_text(&r);
        CHECKF(!strcmp(got, want), "stream=%d: '%s' vs the cloud's '%s'", stream, got, want);
        CHECK(!stream || stream_done(&r));
        free(got);
        free(r.body);
    }
    free(want);
    free(direct.body);
    /* the header names the tier too */
    r = counted(&gw, "auto", "hello", false, 8, "-H 'x-hearth-tier: cloud'");
    CHECK_REPLY(r, 200, "cloud");
    free(r.body);
    r = counted(&gw, "auto", "hello", false, 8, "-H 'x-hearth-tier: nowhere'");
    CHECK(r.status == 400 && strstr(r.body, "no tier named"));
    free(r.body);

    /* rules and confidence */
    r = counted(&gw, "auto", "A hard question: why?", false, 8, NULL);
    CHECK_REPLY(r, 200, "cloud");
    CHECK(strstr(r.reason, "rule hard: pattern matched") != NULL);
    free(r.body);
    for (int stream = 0; stream < 2; stream++) {
        r = counted(&gw, "auto", "I am unsure about this", stream, 8, NULL);
        CHECK_REPLY(r, 200, "cloud");
        CHECKF(strstr(r.reason, "confidence: mean logprob") && strstr(r.reason, "< 0.500"), "%s",
               r.reason);
        free(r.body);
    }
    r = counted(&gw, "auto", "I am sure about this", true, 8, NULL);
    CHECK_REPLY(r, 200, "local");
    CHECK(strstr(r.reason, "rule sure") && strstr(r.reason, "confidence: mean") && stream_done(&r));
    free(r.body);
    r = counted(&gw, "auto", "plain request", false, 8, NULL);
    CHECK_REPLY(r, 200, "local");
    free(r.body);

    /* privacy: the cloud sees placeholders */
    const char *secret = "Write to jane.doe@example.com or call 555-867-5309 about 10.20.30.40";
    r = counted(&gw, "cloud", secret, true, 8, NULL);
    CHECK_REPLY(r, 200, "cloud");
    free(r.body);
    r = counted(&gw, "cloud", "My SSN is 123-45-6788", false, 8, NULL);
    CHECK_REPLY(r, 200, "local");
    CHECK(strstr(r.reason, "SSN may not leave") != NULL);
    free(r.body);
    real_cloud_completions(&gw, &cloud);

    /* the stats (a row is written once the answer went out: poll a little) */
    test_reply st = {0};
    cJSON *o = NULL;
    for (int i = 0; i < 50; i++) {
        free(st.body);
        cJSON_Delete(o);
        st = test_http(&gw, "GET", "/v1/hearth/stats", NULL, NULL);
        o = cJSON_Parse(st.body);
        if (cJSON_GetNumberValue(cJSON_GetObjectItem(o, "requests")) == n_chat) break;
        test_sleep_ms(50);
    }
    CHECKF(st.status == 200 && o, "%s", st.body);
    const double req = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "requests"));
    const double loc = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "local"));
    const double esc = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "escalated"));
    CHECKF(req == n_chat && loc + esc + 1 == req,
           "requests %.0f local %.0f escalated %.0f (sent %d)", req, loc, esc, n_chat);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "cloud_only_cost_usd")) > 0);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "savings_pct")));
    cJSON_Delete(o);
    free(st.body);

    /* several clients at once, every path */
    {
        enum { N = 8 };
        char all[N * 1400 + 64] = "(", one[1400];
        int seq[N];
        for (int i = 0; i < N; i++) {
            static const char *const models[4] = {"local", "cloud", "auto", "cloud"};
            char body[256];
            snprintf(body, sizeof body,
                     "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"%s %d\"}],\"max_tokens\":8,\"temperature\":0%s}",
                     models[i % 4], i % 4 == 2 ? "unsure" : "hello", i,
                     i % 2 ? "" : ",\"stream\":true");
            seq[i] = gw.seq++;
            test_curl_cmd(&gw, one, sizeof one, "POST", "/v1/chat/completions", body, strlen(body),
                          NULL, seq[i]);
            strcat(all, one);
            strcat(all, " & ");
        }
        strcat(all, "wait)");
        CHECK(system(all) == 0);
        for (int i = 0; i < N; i++) {
            test_reply t = test_collect(&gw, seq[i]);
            CHECKF(t.status == 200 && (i % 2 || strstr(t.body, "[DONE]")), "%d: %d %.200s", i,
                   t.status, t.body);
            free(t.body);
            n_chat++;
        }
    }

    /* the cloud dies: answers are local and degraded, never lost */
    REQUIRE(cloud.pid > 0);
    kill(cloud.pid, SIGKILL);
    int status;
    waitpid(cloud.pid, &status, 0);
    cloud.pid = 0;
    for (int stream = 0; stream < 2; stream++) {
        r = counted(&gw, "cloud", "Are you there?", stream, 8, NULL);
        CHECK_REPLY(r, 200, "local");
        CHECKF(strstr(r.reason, "degraded") != NULL, "%s", r.reason);
        CHECK(!stream || stream_done(&r));
        free(r.body);
    }
    r = counted(&gw, "auto", "I am unsure about this", false, 8, NULL);
    CHECK_REPLY(r, 200, "local");
    CHECK(strstr(r.reason, "degraded") != NULL);
    free(r.body);

    CHECK(test_server_stop(&gw) == 0);
    /* what the cloud server logged of its prompts */
    char *clog = test_read_file(cloud.log, NULL);
    REQUIRE(clog);
    CHECK(strstr(clog, "<EMAIL_1>") && strstr(clog, "<PHONE_1>") && strstr(clog, "<IP_1>"));
    CHECK(!strstr(clog, "jane.doe@example.com") && !strstr(clog, "555-867-5309") &&
          !strstr(clog, "10.20.30.40") && !strstr(clog, "123-45-6788"));
    /* a completion reaches the cloud as a user message, redacted */
    CHECK(strstr(clog, "Mail <EMAIL_1> or call <PHONE_1>") && !strstr(clog, "bob.smith@example") &&
          !strstr(clog, "555-234-5678"));
    free(clog);
    /* one ledger row per chat request */
    CHECKF(db_int(ledger, "SELECT count(*) FROM requests") == n_chat, "%lld rows, %d requests",
           (long long)db_int(ledger, "SELECT count(*) FROM requests"), n_chat);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE degraded = 1") == 3);
    /* completions: the policy's routes, with tokens (and the explicit ones) */
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE model = 'compl-auto' AND "
                         "route = 'escalated' AND tier = 'cloud' AND status = 200") == 4);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE model = 'compl-auto' AND "
                         "route = 'local' AND tier = 'local' AND status = 200") == 1);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE model = 'compl-auto' AND "
                         "prompt_tokens > 0 AND completion_tokens > 0 AND latency_ms >= 0") == 5);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE model = 'compl-auto' AND "
                         "conf_mean IS NOT NULL") == 3);
    CHECK(db_int(ledger, "SELECT count(*) FROM audit WHERE action = 'sent' AND entities = "
                         "'EMAIL:1,PHONE:1'") == 1);
    CHECK(db_int(ledger, "SELECT count(*) FROM audit WHERE action = 'sent' AND entities = "
                         "'EMAIL:1,PHONE:1,IP:1'") == 1);
    CHECK(db_int(ledger, "SELECT count(*) FROM audit WHERE action = 'blocked'") == 1);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE tier = 'cloud' AND "
                         "cost_usd_micro = prompt_tokens + 2 * completion_tokens") ==
          db_int(ledger, "SELECT count(*) FROM requests WHERE tier = 'cloud'"));
    char cmd[1400], out[700];
    snprintf(out, sizeof out, "%s/report.txt", scratch);
    snprintf(cmd, sizeof cmd, "'%s' ledger report --db '%s' --since 1h > '%s'", binary, ledger,
             out);
    CHECK(system(cmd) == 0);
    char *rep = test_read_file(out, NULL);
    char want_line[64];
    snprintf(want_line, sizeof want_line, ": %d\n", n_chat);
    CHECKF(rep && strstr(rep, want_line) && strstr(rep, "cloud"), "%s", rep ? rep : "");
    if (rep) printf("%s", rep);
    free(rep);
}

/* ---- faults from the fake cloud ----------------------------------------------------- */

/* A fake cloud in a process of its own, to be killed mid-stream. */
static pid_t spawn_fake(int *port) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        fake_cloud child;
        if (!fake_cloud_start(&child)) _exit(1);
        if (write(fds[1], &child.port, sizeof child.port) != (ssize_t)sizeof child.port) _exit(1);
        for (;;) pause();
    }
    close(fds[1]);
    REQUIRE(read(fds[0], port, sizeof *port) == (ssize_t)sizeof *port);
    close(fds[0]);
    return pid;
}

static void *kill_later(void *arg) {
    test_sleep_ms(700);
    kill(*(pid_t *)arg, SIGKILL);
    return NULL;
}

/* Completions escalated (by the x-hearth-tier header) to an OpenAI-compatible
 * and an Anthropic tier of the fake cloud, which echoes the last user
 * message: the prompt leaves as one user message with placeholders, and the
 * answer comes back with the values restored, streaming (placeholders cut
 * across 3-byte events) and not; echo puts the prompt first. */
/* A token-id prompt leaves as its text (the local model's tokenizer): the
 * tier gets it redacted, the answer comes back restored. */
static void fake_completion_ids(test_server *gw, const char *local_model) {
    hearth_model *m = NULL;
    const hearth_model_params mp = hearth_model_default_params();
    REQUIRE(hearth_model_load(local_model, &mp, &m) == HEARTH_OK);
    const char *words = "Mail jane.roe@example.net today";
    int32_t ids[128];
    size_t n = 0, len = 0;
    char text[512], want[600];
    REQUIRE(hearth_tokenize(m, words, strlen(words), false, false, ids, 128, &n) == HEARTH_OK);
    REQUIRE(hearth_detokenize(m, ids, n, false, text, sizeof text - 1, &len) == HEARTH_OK);
    text[len] = '\0';
    hearth_model_free(m);
    snprintf(want, sizeof want, "echo: %s", text);
    cJSON *b = cJSON_CreateObject(), *prompt = cJSON_AddArrayToObject(b, "prompt");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(prompt, cJSON_CreateNumber(ids[i]));
    fake_cloud_reset(&fc);
    n_chat++;
    reply r =
        post(gw, "/v1/completions", finish_body(b, "compl", true, 8), "-H 'x-hearth-tier: plain'");
    CHECK_REPLY(r, 200, "plain");
    char *t = answer_text(&r);
    CHECKF(!strcmp(t, want) && completion_shape(&r), "'%s' vs '%s'", t, want);
    free(t);
    free(r.body);
    pthread_mutex_lock(&fc.mu);
    CHECKF(fc.n_bodies == 1 && strstr(fc.bodies[0], "<EMAIL_1>") && !strstr(fc.bodies[0], "jane"),
           "%d bodies: %s", fc.n_bodies, fc.n_bodies ? fc.bodies[0] : "");
    pthread_mutex_unlock(&fc.mu);
}

static void fake_completions(test_server *gw) {
    const char *secret = "Mail jane.roe@example.net, phone 555-321-7654";
    char want[256], hdr[64];
    snprintf(want, sizeof want, "echo: %s", secret);
    fake_cloud_reset(&fc);
    static const char *const tiers[] = {"plain", "claude"};
    for (int i = 0; i < 4; i++) {
        snprintf(hdr, sizeof hdr, "-H 'x-hearth-tier: %s'", tiers[i / 2]);
        reply r = counted_completion(gw, "compl", secret, i % 2, 8, hdr);
        CHECK_REPLY(r, 200, tiers[i / 2]);
        char *t = answer_text(&r);
        CHECKF(!strcmp(t, want) && completion_shape(&r), "%s: '%s' %s", tiers[i / 2], t, r.body);
        free(t);
        free(r.body);
    }
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "prompt", secret);
    cJSON_AddBoolToObject(b, "echo", true);
    n_chat++;
    reply r =
        post(gw, "/v1/completions", finish_body(b, "compl", false, 8), "-H 'x-hearth-tier: plain'");
    CHECK_REPLY(r, 200, "plain");
    char *t = answer_text(&r), both[512];
    snprintf(both, sizeof both, "%s%s", secret, want);
    CHECKF(!strcmp(t, both) && completion_shape(&r), "echo: '%s'", t);
    free(t);
    free(r.body);
    /* what the tiers received: chat bodies with the prompt as a user message */
    pthread_mutex_lock(&fc.mu);
    CHECKF(fc.n_bodies == 5, "%d bodies", fc.n_bodies);
    for (int i = 0; i < fc.n_bodies; i++) {
        cJSON *o = cJSON_Parse(fc.bodies[i]);
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "messages"), 0);
        const char *role = cJSON_GetStringValue(cJSON_GetObjectItem(m, "role"));
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(m, "content"));
        CHECKF(role && !strcmp(role, "user") && content &&
                   !strcmp(content, "Mail <EMAIL_1>, phone <PHONE_1>") &&
                   !strstr(fc.bodies[i], "jane.roe") && !strstr(fc.bodies[i], "555-321"),
               "%s", fc.bodies[i]);
        cJSON_Delete(o);
    }
    pthread_mutex_unlock(&fc.mu);
}

static void test_faults(const char *local_model) {
    int doomed_port = 0;
    pid_t doomed = spawn_fake(&doomed_port);
    REQUIRE(fake_cloud_start(&fc));
    char cfg[600], ledger[600], args[2048], json[4096];
    snprintf(cfg, sizeof cfg, "%s/faults.json", scratch);
    snprintf(ledger, sizeof ledger, "%s/faults.db", scratch);
    const char *key = "\"api_key_env\": \"HEARTH_TEST_KEY\"";
    snprintf(
        json, sizeof json,
        "{\"tiers\": [\n"
        " {\"name\": \"slow\", \"base_url\": \"http://127.0.0.1:%d\", \"model\": \"slow-2000\","
        "  \"timeout_ms\": 300, \"retries\": 1, \"backoff_ms\": 20, %s},\n"
        " {\"name\": \"busy\", \"base_url\": \"http://127.0.0.1:%d\", \"model\": \"e429-1000\","
        "  \"retries\": 2, \"backoff_ms\": 20, %s},\n"
        " {\"name\": \"broken\", \"base_url\": \"http://127.0.0.1:%d\", \"model\": "
        "\"e500-1000\", \"retries\": 1, \"backoff_ms\": 20, \"breaker_failures\": 2, %s},\n"
        " {\"name\": \"cut\", \"base_url\": \"http://127.0.0.1:%d\", \"model\": \"drop\", %s},\n"
        " {\"name\": \"doomed\", \"base_url\": \"http://127.0.0.1:%d\", \"model\": "
        "\"stall-5000\", \"timeout_ms\": 10000, \"retries\": 0, %s},\n"
        " {\"name\": \"claude\", \"kind\": \"anthropic\", \"base_url\": "
        "\"http://127.0.0.1:%d\", \"model\": \"ok\", %s},\n"
        " {\"name\": \"plain\", \"base_url\": \"http://127.0.0.1:%d\", \"model\": \"ok\", %s}],\n"
        " \"routing\": {\"confidence_check\": false}}\n",
        fc.port, key, fc.port, key, fc.port, key, fc.port, key, doomed_port, key, fc.port, key,
        fc.port, key);
    REQUIRE(test_write_file(cfg, json, strlen(json)));
    fc.expect_key = "sk-fake";
    snprintf(args, sizeof args, "-t 1 --chat-template chatml --config '%s' --ledger '%s'", cfg,
             ledger);
    REQUIRE(setenv("HEARTH_TEST_KEY", "sk-fake", 1) == 0);
    test_server gw;
    REQUIRE(test_server_start(&gw, binary, local_model, scratch, args));
    n_chat = 0;
    /* Anthropic's format, with the key from the environment */
    for (int stream = 0; stream < 2; stream++) {
        reply r = counted(&gw, "claude", "hi there", stream, 8, NULL);
        CHECK_REPLY(r, 200, "claude");
        char *t = answer_text(&r);
        CHECK(!strcmp(t, "echo: hi there"));
        free(t);
        free(r.body);
    }
    /* slower than the timeout, 429s, 500s: a degraded local answer each time */
    static const char *const down[] = {"slow", "busy", "broken", "broken", "broken"};
    for (size_t i = 0; i < sizeof down / sizeof *down; i++) {
        const double t0 = (double)time(NULL);
        reply r = counted(&gw, down[i], "hello", i % 2, 8, NULL);
        CHECK_REPLY(r, 200, "local");
        CHECKF(strstr(r.reason, "degraded"), "%s: %s", down[i], r.reason);
        CHECK((double)time(NULL) - t0 < 5);
        if (i == 4) CHECKF(strstr(r.reason, "is down"), "%s", r.reason); /* the breaker opened */
        free(r.body);
    }
    /* a stream cut after some text: the text, then an error event */
    reply r = counted(&gw, "cut", "tell me more", true, 8, NULL);
    CHECK_REPLY(r, 200, "cut");
    char *t = answer_text(&r);
    CHECKF(strstr(r.body, "\"error\"") && strstr(r.body, "mid-answer") && !strncmp(t, "ech", 3),
           "%s", r.body);
    free(t);
    free(r.body);
    /* the remote tier's process is killed mid-stream */
    pthread_t killer;
    REQUIRE(pthread_create(&killer, NULL, kill_later, &doomed) == 0);
    r = counted(&gw, "doomed", "tell me more", true, 8, NULL);
    pthread_join(killer, NULL);
    waitpid(doomed, NULL, 0);
    CHECK_REPLY(r, 200, "doomed");
    t = answer_text(&r);
    CHECKF(strstr(r.body, "mid-answer") && !strncmp(t, "ech", 3) && stream_done(&r), "%s", r.body);
    free(t);
    free(r.body);
    fake_completions(&gw);
    fake_completion_ids(&gw, local_model);
    CHECK(test_server_stop(&gw) == 0);
    CHECKF(db_int(ledger, "SELECT count(*) FROM requests") == n_chat, "%lld rows, %d requests",
           (long long)db_int(ledger, "SELECT count(*) FROM requests"), n_chat);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE route = 'explicit' AND status = 200 "
                         "AND tier IN ('plain', 'claude') AND model = 'compl'") == 6);
    CHECK(db_int(ledger, "SELECT count(*) FROM audit WHERE action = 'sent' AND tier IN ('plain', "
                         "'claude') AND entities = 'EMAIL:1,PHONE:1'") == 5);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE status = 502 AND tier = 'cut'") == 1);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE status = 502 AND tier = 'doomed'") ==
          1);
    CHECK(db_int(ledger, "SELECT count(*) FROM requests WHERE degraded = 1") == 5);
    fake_cloud_stop(&fc);
}

/* ---- air gap --------------------------------------------------------------------------- */

static void test_air_gap(const char *local_model) {
    test_server gw;
    REQUIRE(test_server_start(&gw, binary, local_model, scratch,
                              "-t 1 --chat-template chatml --air-gapped --cloud-url "
                              "http://127.0.0.1:9 --cloud-model m"));
    for (int compl = 0; compl < 2; compl ++) {
        reply r = (compl ? complete : chat)(&gw, "cloud", "x", false, 4, NULL);
        CHECKF(r.status == 403 && strstr(r.body, "air_gapped"), "%s", r.body);
        free(r.body);
        r = (compl ? complete : chat)(&gw, "auto", "x", compl, 4, NULL);
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): r.body is freed below
        CHECK_REPLY(r, 200, "local");
        CHECK(strstr(r.reason, "air-gapped") != NULL);
        CHECK(!compl || completion_shape(&r));
        free(r.body);
    }
    /* every request has its ledger row (the in-memory ledger's stats) */
    test_reply st = test_http(&gw, "GET", "/v1/hearth/stats", NULL, NULL);
    cJSON *o = cJSON_Parse(st.body);
    for (int i = 0; i < 50 && cJSON_GetNumberValue(cJSON_GetObjectItem(o, "requests")) != 4; i++) {
        test_sleep_ms(50);
        free(st.body);
        cJSON_Delete(o);
        st = test_http(&gw, "GET", "/v1/hearth/stats", NULL, NULL);
        o = cJSON_Parse(st.body);
    }
    CHECKF(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "requests")) == 4 &&
               cJSON_GetNumberValue(cJSON_GetObjectItem(o, "errors")) == 2,
           "%s", st.body);
    cJSON_Delete(o);
    free(st.body);
    CHECK(test_server_stop(&gw) == 0);
    /* a bad configuration stops the start with a clear message */
    char cmd[1200], log[700];
    snprintf(log, sizeof log, "%s/badcfg.log", scratch);
    snprintf(cmd, sizeof cmd, "'%s' serve -m '%s' --port 0 --cloud-model m > '%s' 2>&1", binary,
             local_model, log);
    CHECK(WEXITSTATUS(system(cmd)) == 1);
    char *text = test_read_file(log, NULL);
    CHECKF(text && strstr(text, "need --cloud-url"), "%s", text ? text : "");
    free(text);
}

int main(void) {
    if (system("curl --version > /dev/null 2>&1") != 0) {
        printf("test_gateway_serve: curl is not installed; skipping\n");
        return TEST_SKIP;
    }
    REQUIRE(mkdtemp(scratch));
    char synth_local[600], synth_cloud[600];
    snprintf(synth_local, sizeof synth_local, "%s/local.gguf", scratch);
    snprintf(synth_cloud, sizeof synth_cloud, "%s/cloud.gguf", scratch);
    const char *local_model = fixture_model(synth_local);
    REQUIRE(local_model);
    synth_params p = synth_default_params(); /* the cloud: another model */
    p.arch = "llama";
    p.n_ctx = 256;
    p.seed = 12345;
    REQUIRE(synth_write(synth_cloud, &p) == HEARTH_OK);
    test_real_cloud(local_model, synth_cloud);
    test_faults(local_model);
    test_air_gap(local_model);
    fixture_server_cleanup("test_gateway_serve", scratch, test_failures > 0);
    return test_done("test_gateway_serve");
}
