/*
 * test_gateway_reasoning.c - a remote tier's reasoning passed on, not
 * dropped (docs/gateway.md, "Reasoning"), against the fake cloud's "think"
 * models (tests/gateway/fake_cloud.h):
 *
 *   cloud.c alone: OpenAI-compatible reasoning_content, reasoning and a raw
 *   <think> block in the content, Anthropic thinking blocks, whole and
 *   streamed: the reasoning comes apart from the text (to on_reasoning and
 *   in the result), the usage counts it; the switches as each tier kind
 *   receives them (reasoning_effort; thinking and its budget, max_tokens
 *   above it, no temperature, none with a forced call).
 *
 *   `hearth serve`: OpenAI chat (message.reasoning_content, streamed
 *   delta.reasoning_content before the content), Anthropic's Messages API
 *   (a thinking block before the text, thinking_delta events), for both
 *   tier kinds, ollama's message.thinking and a Responses reasoning item, the user's e-mail address
 *   restored in the reasoning (not in an Anthropic tier's signed block on
 *   Anthropic's API: test_gateway_thinking); the audit row's digest covering the
 *   reasoning; the ledger's completion tokens as the tier reported them,
 *   and (--ledger-prompts) the restored reasoning beside the answer, a
 *   cache hit's too;
 *   thinking switched off (reasoning_effort none, Anthropic's disabled) and
 *   reasoning_format none (the reasoning inline in <think> tags).
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "gateway/ledger_query.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/typed_sse.h"

#include <cjson/cJSON.h>

#include <math.h>

/* The fake tier's count of a text's tokens: its 3-byte pieces, rounded up. */
static size_t pieces3(const char *s) { return (strlen(s) + 2) / 3; }
static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_gw_reasoning_XXXXXX";

/* ---- cloud.c on its own ------------------------------------------------------- */

typedef struct pieces {
    gw_buf text, reasoning;
    int n_reasoning;
} pieces;

static bool on_text(const char *t, size_t n, void *user) {
    pieces *p = user;
    return gw_buf_put(&p->text, t, n) == HEARTH_OK;
}

static bool on_reasoning(const char *t, size_t n, void *user) {
    pieces *p = user;
    p->n_reasoning++;
    return gw_buf_put(&p->reasoning, t, n) == HEARTH_OK;
}

static const char *str(const gw_buf *b) { return b->data ? b->data : ""; }

/* The body the fake cloud received last ("" when none); borrowed. */
static const char *last_body(fake_cloud *fc) {
    return fc->n_bodies ? fc->bodies[fc->n_bodies - 1] : "";
}

/* One call of tier kind/model with q; the answer must be "echo: hi" (the
 * fake echoes no content blocks: "echo: " with tools to Anthropic) with
 * reasoning want ("": none), handed over apart as it came. */
static void call(fake_cloud *fc, gw_tier_kind kind, const char *model, gw_chat q, const char *want,
                 const char *what) {
    const char *echo = q.tools && kind == GW_TIER_ANTHROPIC ? "echo: " : "echo: hi";
    gw_tier t;
    gw_remote *r = NULL;
    REQUIRE(fc_tier(fc, kind, model, &t) && gw_remote_new(&t, &r) == HEARTH_OK);
    const gw_message msg = {"user", "hi"};
    q.messages = &msg;
    q.n_messages = 1;
    q.on_reasoning = on_reasoning;
    pieces p = {0};
    gw_cloud_result res;
    REQUIRE(gw_cloud_chat(r, &q, on_text, &p, &res) == HEARTH_OK);
    CHECKF(res.status == GW_CLOUD_OK, "%s: %s", what, res.error);
    CHECKF(!strcmp(res.text, echo) && !strcmp(str(&p.text), echo), "%s: text '%s' / '%s'", what,
           res.text, str(&p.text));
    CHECKF(!strcmp(res.reasoning, want) && !strcmp(str(&p.reasoning), want),
           "%s: reasoning '%s' / '%s', want '%s'", what, res.reasoning, str(&p.reasoning), want);
    if (q.stream && want[0])
        CHECKF(p.n_reasoning > 1, "%s: reasoning in %d pieces", what, p.n_reasoning);
    /* the fake counts 3-byte pieces of both (of the raw block and answer
     * when it sends them as one): the usage is the tier's */
    char raw[128];
    snprintf(raw, sizeof raw, "<think>\n%s\n</think>\n\n%s", want, echo);
    const int want_tokens = !strcmp(model, "think-raw")
                                ? (int)(strlen(raw) + 2) / 3
                                : (int)(strlen(echo) + 2) / 3 + (int)(strlen(want) + 2) / 3;
    CHECKF(!res.usage_estimated && res.completion_tokens == want_tokens,
           "%s: completion tokens %d, want %d", what, res.completion_tokens, want_tokens);
    /* the reasoning's share: OpenAI's completion_tokens_details as reported,
     * else (Anthropic, a raw block) its bytes / 4 */
    const int want_r = kind == GW_TIER_OPENAI && strcmp(model, "think-raw")
                           ? (int)(strlen(want) + 2) / 3
                           : (int)(strlen(want) + 3) / 4;
    CHECKF(res.reasoning_tokens == want_r, "%s: reasoning tokens %d, want %d", what,
           res.reasoning_tokens, want_r);
    gw_cloud_result_free(&res);
    gw_buf_free(&p.text);
    gw_buf_free(&p.reasoning);
    gw_remote_free(r);
}

static gw_chat chat_of(bool stream) {
    return (gw_chat){.temperature = NAN, .top_p = NAN, .stream = stream};
}

static void cloud_formats(fake_cloud *fc) {
    static const char want[] = "thinking about: hi";
    static const char *const openai_models[] = {"think", "think-or", "think-raw"};
    for (int stream = 0; stream < 2; stream++) {
        char what[96];
        for (int m = 0; m < 3; m++) {
            snprintf(what, sizeof what, "openai %s stream=%d", openai_models[m], stream);
            call(fc, GW_TIER_OPENAI, openai_models[m], chat_of(stream), want, what);
        }
        /* switched off: reasoning_effort "none" reaches the tier */
        gw_chat q = chat_of(stream);
        q.reasoning_effort = "none";
        fake_cloud_reset(fc);
        snprintf(what, sizeof what, "openai effort none stream=%d", stream);
        call(fc, GW_TIER_OPENAI, "think", q, "", what);
        CHECKF(strstr(last_body(fc), "\"reasoning_effort\":\"none\""), "%s: %s", what,
               last_body(fc));
        /* Anthropic: thinking only when asked for */
        fake_cloud_reset(fc);
        snprintf(what, sizeof what, "anthropic not asked stream=%d", stream);
        call(fc, GW_TIER_ANTHROPIC, "think", chat_of(stream), "", what);
        CHECKF(!strstr(last_body(fc), "thinking"), "%s: %s", what, last_body(fc));
        q = chat_of(stream);
        q.thinking = true;
        q.max_tokens = 16;
        q.temperature = 0.5;
        fake_cloud_reset(fc);
        snprintf(what, sizeof what, "anthropic thinking stream=%d", stream);
        call(fc, GW_TIER_ANTHROPIC, "think", q, want, what);
        /* the default budget, max_tokens above it, no temperature (the fake
         * refuses what Anthropic refuses) */
        CHECKF(strstr(last_body(fc), "\"max_tokens\":2064") &&
                   strstr(last_body(fc),
                          "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}") &&
                   !strstr(last_body(fc), "temperature"),
               "%s: %s", what, last_body(fc));
    }
    /* the budget: the request's (at least 1024), else the effort's */
    static const struct {
        const char *effort;
        bool thinking;
        int budget, want;
    } budgets[] = {{"high", false, 0, 4096},
                   {"low", false, 0, 1024},
                   {NULL, true, 1500, 1500},
                   {NULL, true, 1, 1024},
                   {"medium", false, 0, 2048}};
    for (size_t i = 0; i < sizeof budgets / sizeof *budgets; i++) {
        gw_chat q = chat_of(false);
        q.reasoning_effort = budgets[i].effort;
        q.thinking = budgets[i].thinking;
        q.thinking_budget = budgets[i].budget;
        fake_cloud_reset(fc);
        char what[64], field[64];
        snprintf(what, sizeof what, "budget %zu", i);
        call(fc, GW_TIER_ANTHROPIC, "think", q, want, what);
        snprintf(field, sizeof field, "\"budget_tokens\":%d}", budgets[i].want);
        CHECKF(strstr(last_body(fc), field), "%s: %s", what, last_body(fc));
    }
    /* an effort goes to an OpenAI-compatible tier as it came */
    gw_chat q = chat_of(false);
    q.reasoning_effort = "high";
    fake_cloud_reset(fc);
    call(fc, GW_TIER_OPENAI, "think", q, want, "openai effort high");
    CHECKF(strstr(last_body(fc), "\"reasoning_effort\":\"high\""), "effort high: %s",
           last_body(fc));
    /* a forced call: Anthropic refuses thinking with it, so none is sent */
    const gw_chat_tools tools = {.tools = "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]",
                                 .tool_choice = "required",
                                 .parallel_tool_calls = -1};
    q = chat_of(false);
    q.thinking = true;
    q.tools = &tools;
    fake_cloud_reset(fc);
    call(fc, GW_TIER_ANTHROPIC, "think", q, "", "forced call");
    CHECKF(!strstr(last_body(fc), "\"thinking\""), "forced call: %s", last_body(fc));
}

/* ---- through `hearth serve` ----------------------------------------------------- */

static const char user_text[] = "Write to jane.doe@example.com now";
static const char sent_text[] = "Write to <EMAIL_1> now"; /* what the tier sees */

/* The reasoning and answer the client must get (restored) or the tier sent. */
static void expected(const char *text, char *reasoning, char *answer) {
    sprintf(reasoning, "thinking about: %s", text);
    sprintf(answer, "echo: %s", text);
}

static test_reply post_to(test_server *sv, const char *path, const char *tier, bool stream,
                          const char *extra) {
    char body[2048];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"max_tokens\":50,\"stream\":%s,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"%s\"}]%s}",
             tier, stream ? "true" : "false", user_text, extra ? extra : "");
    return test_http(sv, "POST", path, body, "-H 'anthropic-version: 2023-06-01'");
}

/* An OpenAI chat reply, whole or streamed: its reasoning and content; the
 * stream's reasoning chunks all before its content's. */
static void openai_reply(const test_reply *r, bool stream, char *reasoning, char *content,
                         const char *what) {
    reasoning[0] = content[0] = '\0';
    CHECKF(r->status == 200, "%s: %d %.300s", what, r->status, r->body);
    if (!stream) {
        cJSON *j = parse_reply(r);
        const char *rc = jstr(j, "choices.0.message.reasoning_content");
        const char *c = jstr(j, "choices.0.message.content");
        snprintf(reasoning, 512, "%s", rc ? rc : "");
        snprintf(content, 512, "%s", c ? c : "");
        cJSON_Delete(j);
        return;
    }
    bool done = false, order = true;
    for (const char *p = r->body; p && !strncmp(p, "data: ", 6);) {
        const char *end = strstr(p, "\n\n");
        if (!end) break;
        if (!strncmp(p + 6, "[DONE]", 6)) {
            done = true;
            break;
        }
        cJSON *j = cJSON_ParseWithLength(p + 6, (size_t)(end - p - 6));
        const char *rc = jstr(j, "choices.0.delta.reasoning_content");
        const char *c = jstr(j, "choices.0.delta.content");
        if (rc) {
            order &= !content[0];
            strncat(reasoning, rc, 511 - strlen(reasoning));
        }
        if (c) strncat(content, c, 511 - strlen(content));
        cJSON_Delete(j);
        p = end + 2;
    }
    CHECKF(done && order, "%s: done %d, reasoning before content %d", what, done, order);
}

/* An Anthropic message, whole or streamed: its thinking and text, the
 * thinking block first. */
static void anthropic_reply(const test_reply *r, bool stream, char *thinking, char *text,
                            const char *what) {
    thinking[0] = text[0] = '\0';
    CHECKF(r->status == 200, "%s: %d %.300s", what, r->status, r->body);
    bool order = true;
    if (!stream) {
        cJSON *j = parse_reply(r);
        const cJSON *b;
        int i = 0;
        cJSON_ArrayForEach(b, jget(j, "content")) {
            const char *t = jstr(b, "type");
            if (t && !strcmp(t, "thinking")) {
                order &= i == 0;
                snprintf(thinking, 512, "%s", jstr(b, "thinking") ? jstr(b, "thinking") : "");
            } else if (t && !strcmp(t, "text")) {
                strncat(text, jstr(b, "text") ? jstr(b, "text") : "", 511 - strlen(text));
            }
            i++;
        }
        cJSON_Delete(j);
    } else {
        const char *p = r->body;
        char type[64];
        cJSON *j;
        bool agrees;
        while (typed_sse_next(&p, type, sizeof type, &j, &agrees)) {
            const char *dt = jstr(j, "delta.type");
            if (dt && !strcmp(dt, "thinking_delta")) {
                order &= !text[0];
                const char *t = jstr(j, "delta.thinking");
                strncat(thinking, t ? t : "", 511 - strlen(thinking));
            } else if (dt && !strcmp(dt, "text_delta")) {
                const char *t = jstr(j, "delta.text");
                strncat(text, t ? t : "", 511 - strlen(text));
            }
            cJSON_Delete(j);
        }
    }
    CHECKF(order, "%s: thinking first", what);
}

/* Waits (up to 5 s) until the ledger has n rows. */
static void wait_rows(const char *ledger, int64_t n) {
    for (int i = 0; i < 100 && db_int(ledger, "SELECT count(*) FROM requests") < n; i++)
        test_sleep_ms(50);
}

/* Of the last n ledger rows, those that keep (--ledger-prompts) this
 * remote reasoning and answer. */
static int64_t remote_rows(const char *ledger, int n, const char *reasoning, const char *answer) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT * FROM requests ORDER BY id DESC LIMIT %d) WHERE "
             "remote_reasoning = '%s' AND remote_answer = '%s'",
             n, reasoning, answer);
    return db_int(ledger, sql);
}

/* Both tier kinds on OpenAI chat and Anthropic's API, whole and streamed. */
static void shapes(test_server *sv, fake_cloud *fc, const char *ledger) {
    char want_r[256], want_a[256], got_r[512], got_a[512];
    expected(user_text, want_r, want_a);
    static const char *const tiers[] = {"oa", "or", "raw", "an"};
    /* thinking asked for: what the Anthropic tier needs to think */
    static const char ask[] = ",\"reasoning_effort\":\"low\"";
    static const char ask_a[] = ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1500}";
    for (int t = 0; t < 4; t++) {
        for (int stream = 0; stream < 2; stream++) {
            char what[96];
            snprintf(what, sizeof what, "chat %s stream=%d", tiers[t], stream);
            fake_cloud_reset(fc);
            test_reply r = post_to(sv, "/v1/chat/completions", tiers[t], stream, ask);
            openai_reply(&r, stream, got_r, got_a, what);
            CHECKF(!strcmp(got_r, want_r), "%s: reasoning '%s'", what, got_r);
            CHECKF(!strcmp(got_a, want_a), "%s: content '%s'", what, got_a);
            CHECKF(strstr(last_body(fc), sent_text) && !strstr(last_body(fc), "jane.doe"),
                   "%s: sent %.300s", what, last_body(fc));
            free(r.body);
            snprintf(what, sizeof what, "messages %s stream=%d", tiers[t], stream);
            fake_cloud_reset(fc);
            r = post_to(sv, "/v1/messages", tiers[t], stream, ask_a);
            anthropic_reply(&r, stream, got_r, got_a, what);
            /* an Anthropic tier's block is signed: its text as the tier wrote
             * it, placeholders kept (test_gateway_thinking) */
            char signed_r[256], signed_a[256];
            expected(sent_text, signed_r, signed_a);
            CHECKF(!strcmp(got_r, t == 3 ? signed_r : want_r), "%s: thinking '%s'", what, got_r);
            CHECKF(!strcmp(got_a, want_a), "%s: text '%s'", what, got_a);
            free(r.body);
        }
    }
    /* the Anthropic tier got thinking with the client's budget */
    CHECKF(strstr(last_body(fc), "\"budget_tokens\":1500") &&
               strstr(last_body(fc), "\"max_tokens\":1550"),
           "anthropic budget: %s", last_body(fc));
    /* ollama's chat: message.thinking */
    fake_cloud_reset(fc);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"oa\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"%s\"}]}",
             user_text);
    test_reply r = test_http(sv, "POST", "/api/chat", body, NULL);
    cJSON *j = parse_reply(&r);
    const char *th = jstr(j, "message.thinking"), *c = jstr(j, "message.content");
    CHECKF(r.status == 200 && th && !strcmp(th, want_r) && c && !strcmp(c, want_a),
           "ollama: %.400s", r.body);
    cJSON_Delete(j);
    free(r.body);
    /* the Responses API: a reasoning item before the message; its effort
     * reaches the tier */
    fake_cloud_reset(fc);
    snprintf(body, sizeof body,
             "{\"model\":\"oa\",\"input\":\"%s\",\"reasoning\":{\"effort\":\"low\"}}", user_text);
    r = test_http(sv, "POST", "/v1/responses", body, NULL);
    j = parse_reply(&r);
    th = jstr(j, "output.0.content.0.text");
    c = jstr(j, "output.1.content.0.text");
    const char *type = jstr(j, "output.0.type");
    CHECKF(r.status == 200 && type && !strcmp(type, "reasoning") && th && !strcmp(th, want_r) &&
               c && !strcmp(c, want_a),
           "responses: %.400s", r.body);
    /* its usage: the reasoning's tokens as the tier reported them (the fake
     * counts 3-byte pieces of what it wrote, about the placeholder) */
    char tier_r[256], tier_a[256];
    expected(sent_text, tier_r, tier_a);
    CHECKF(jnum(j, "usage.output_tokens_details.reasoning_tokens") == (double)pieces3(tier_r),
           "responses reasoning tokens %g, the tier's %zu",
           jnum(j, "usage.output_tokens_details.reasoning_tokens"), (strlen(tier_r) + 2) / 3);
    CHECKF(strstr(last_body(fc), "\"reasoning_effort\":\"low\""), "responses sent: %.300s",
           last_body(fc));
    cJSON_Delete(j);
    free(r.body);
    /* the audit digest: the text, then "\n#reasoning " and the reasoning, as
     * the tier sent them (placeholders) */
    char sent_r[256], sent_a[256], digested[600], hex[65], sql[256];
    expected(sent_text, sent_r, sent_a);
    snprintf(digested, sizeof digested, "%s\n#reasoning %s", sent_a, sent_r);
    gw_sha256_hex(digested, strlen(digested), hex);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE received_sha256 = '%s'", hex);
    wait_rows(ledger, 18);
    CHECKF(db_int(ledger, sql) == 18, "audit rows with the reasoning's digest: %lld",
           (long long)db_int(ledger, sql));
    /* completion tokens as the tier counted them: both parts' pieces */
    const int64_t tokens = (int64_t)(strlen(sent_a) + 2) / 3 + (int64_t)(strlen(sent_r) + 2) / 3;
    const int64_t got =
        db_int(ledger, "SELECT completion_tokens FROM requests ORDER BY id DESC LIMIT 1");
    CHECKF(got == tokens, "ledger completion tokens %lld, want %lld", (long long)got,
           (long long)tokens);
    /* --ledger-prompts: each answer and its reasoning, restored */
    CHECKF(remote_rows(ledger, 18, want_r, want_a) == 18, "ledger rows with the reasoning: %lld",
           (long long)remote_rows(ledger, 18, want_r, want_a));
}

/* The response cache keeps the reasoning with the answer: a hit, whole and
 * streamed, has it (restored with the request's own mapping). */
static void cached(test_server *sv, const char *ledger) {
    const int64_t n_rows = db_int(ledger, "SELECT count(*) FROM requests");
    char want_r[256], want_a[256], got_r[512], got_a[512], body[1024], hfile[700], extra[800];
    expected(user_text, want_r, want_a);
    snprintf(hfile, sizeof hfile, "%s/cache_headers", scratch);
    snprintf(extra, sizeof extra, "-D '%s'", hfile);
    for (int k = 0; k < 3; k++) {
        const bool stream = k == 2;
        snprintf(body, sizeof body,
                 "{\"model\":\"oa\",\"temperature\":0,\"stream\":%s,\"messages\":[{\"role\":"
                 "\"user\",\"content\":\"%s\"}]}",
                 stream ? "true" : "false", user_text);
        test_reply r = test_http(sv, "POST", "/v1/chat/completions", body, extra);
        char what[32];
        snprintf(what, sizeof what, "cache %d", k);
        openai_reply(&r, stream, got_r, got_a, what);
        char *headers = test_read_file(hfile, NULL);
        CHECKF(headers && (k == 0) == !strstr(headers, "x-hearth-cache: hit"), "%s: %s", what,
               headers ? headers : "(none)");
        CHECKF(!strcmp(got_r, want_r) && !strcmp(got_a, want_a), "%s: '%s' '%s'", what, got_r,
               got_a);
        /* the tier's count of the reasoning's tokens, kept with the answer */
        if (!stream) {
            char tier_r[256], tier_a[256];
            expected(sent_text, tier_r, tier_a);
            cJSON *j = parse_reply(&r);
            CHECKF(jnum(j, "usage.completion_tokens_details.reasoning_tokens") ==
                       (double)pieces3(tier_r),
                   "%s: reasoning tokens %g", what,
                   jnum(j, "usage.completion_tokens_details.reasoning_tokens"));
            cJSON_Delete(j);
        }
        free(headers);
        free(r.body);
    }
    /* a hit keeps the reasoning in the ledger too (--ledger-prompts) */
    wait_rows(ledger, n_rows + 3);
    CHECK(remote_rows(ledger, 3, want_r, want_a) == 3);
}

/* Thinking switched off, and reasoning_format none. */
static void switches(test_server *sv, fake_cloud *fc) {
    char want_r[256], want_a[256], got_r[512], got_a[512];
    expected(user_text, want_r, want_a);
    for (int stream = 0; stream < 2; stream++) {
        char what[96];
        snprintf(what, sizeof what, "effort none stream=%d", stream);
        fake_cloud_reset(fc);
        test_reply r =
            post_to(sv, "/v1/chat/completions", "oa", stream, ",\"reasoning_effort\":\"none\"");
        openai_reply(&r, stream, got_r, got_a, what);
        CHECKF(!got_r[0] && !strcmp(got_a, want_a) && !strstr(r.body, "reasoning_content"),
               "%s: %.300s", what, r.body);
        CHECKF(strstr(last_body(fc), "\"reasoning_effort\":\"none\""), "%s: sent %.300s", what,
               last_body(fc));
        free(r.body);
        static const char *const off[] = {"", ",\"thinking\":{\"type\":\"disabled\"}"};
        for (int k = 0; k < 2; k++) {
            snprintf(what, sizeof what, "anthropic off %d stream=%d", k, stream);
            fake_cloud_reset(fc);
            r = post_to(sv, "/v1/messages", "an", stream, off[k]);
            anthropic_reply(&r, stream, got_r, got_a, what);
            CHECKF(!got_r[0] && !strcmp(got_a, want_a), "%s: %.300s", what, r.body);
            CHECKF(!strstr(last_body(fc), "thinking"), "%s: sent %.300s", what, last_body(fc));
            free(r.body);
        }
        /* reasoning_format none: inline, as a local reply keeps its block */
        char inline_text[600];
        snprintf(inline_text, sizeof inline_text, "<think>\n%s\n</think>\n\n%s", want_r, want_a);
        static const char *const tiers[] = {"oa", "raw"};
        for (int t = 0; t < 2; t++) {
            snprintf(what, sizeof what, "format none %s stream=%d", tiers[t], stream);
            r = post_to(sv, "/v1/chat/completions", tiers[t], stream,
                        ",\"reasoning_format\":\"none\"");
            openai_reply(&r, stream, got_r, got_a, what);
            CHECKF(!got_r[0] && !strcmp(got_a, inline_text), "%s: reasoning '%s', content '%s'",
                   what, got_r, got_a);
            free(r.body);
        }
    }
}

int main(void) {
    fake_cloud fc = {0};
    REQUIRE(fake_cloud_start(&fc));
    cloud_formats(&fc);
    bool skip;
    const char *model_path = fixture_server_model("test_gateway_reasoning", scratch, &skip);
    if (!skip) {
        REQUIRE(model_path);
        char cfg[700], ledger[700], args[2048];
        snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
        snprintf(ledger, sizeof ledger, "%s/ledger.db", scratch);
        FILE *f = fopen(cfg, "w");
        REQUIRE(f);
        const int p = fc.port;
        fprintf(f,
                "{\"tiers\":[{\"name\":\"oa\",\"base_url\":\"http://127.0.0.1:%d\",\"model\":"
                "\"think\",\"retries\":0},{\"name\":\"or\",\"base_url\":\"http://127.0.0.1:%d\","
                "\"model\":\"think-or\",\"retries\":0},{\"name\":\"raw\",\"base_url\":"
                "\"http://127.0.0.1:%d\",\"model\":\"think-raw\",\"retries\":0},{\"name\":\"an\","
                "\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d\",\"model\":\"think\","
                "\"retries\":0}],\"cache\":{}}",
                p, p, p, p);
        REQUIRE(fclose(f) == 0);
        snprintf(args, sizeof args, "-t 1 --config '%s' --ledger '%s' --ledger-prompts", cfg,
                 ledger);
        test_server sv;
        REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
        shapes(&sv, &fc, ledger);
        switches(&sv, &fc);
        cached(&sv, ledger);
        CHECK(test_server_stop(&sv) == 0);
        fixture_server_cleanup("test_gateway_reasoning", scratch, test_failures > 0);
    }
    fake_cloud_stop(&fc);
    return test_done("test_gateway_reasoning");
}
