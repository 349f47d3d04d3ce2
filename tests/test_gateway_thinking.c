/*
 * test_gateway_thinking.c - Anthropic's signed thinking blocks kept across
 * turns (docs/gateway.md, "Reasoning"; LiteLLM's thinking_blocks), against
 * the fake cloud's "think" model (a thinking block signed "c2ln" and a
 * redacted_thinking block of data "b3BhcXVl"):
 *
 *   cloud.c alone: the blocks of an Anthropic answer, whole and streamed,
 *   kept as the tier sent them and handed to on_thinking as each completes;
 *   replayed blocks first in the assistant turn of an Anthropic body, byte
 *   for byte (with and without tools; an unsigned one left out), which lets
 *   thinking go on after tool results; never in an OpenAI-compatible body.
 *
 *   `hearth serve`: OpenAI chat's message.thinking_blocks and streamed
 *   delta.thinking_blocks (the text with the tier's placeholder, the
 *   signature as sent; reasoning_content restored), replayed on the
 *   assistant message of the next request and reaching the Anthropic tier
 *   first in that turn, byte for byte; a replayed text holding an e-mail
 *   address leaves redacted, its signature untouched; an OpenAI tier gets
 *   no block; Anthropic's Messages API with the blocks whole and streamed
 *   (thinking_delta, signature_delta, redacted_thinking) and replayed;
 *   malformed thinking_blocks are a 400 naming the block.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/typed_sse.h"

#include <cjson/cJSON.h>

#include <math.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_gw_thinking_XXXXXX";

/* The fake's blocks as Anthropic writes them, for a user text. */
#define SIGNED(text)                                                                               \
    "{\"type\":\"thinking\",\"thinking\":\"thinking about: " text "\",\"signature\":\"c2ln\"}"
#define REDACTED "{\"type\":\"redacted_thinking\",\"data\":\"b3BhcXVl\"}"

/* The body the fake cloud received last ("" when none); borrowed. */
static const char *last_body(fake_cloud *fc) {
    return fc->n_bodies ? fc->bodies[fc->n_bodies - 1] : "";
}

/* ---- cloud.c on its own ------------------------------------------------------- */

typedef struct got {
    gw_thinking_block *b;
    int n;
} got;

static bool on_text(const char *t, size_t n, void *user) {
    (void)t;
    (void)n;
    (void)user;
    return true;
}

static bool on_block(const gw_thinking_block *b, void *user) {
    got *g = user;
    return gw_thinking_push(&g->b, &g->n, b) == HEARTH_OK;
}

/* Whether blocks b[0..n) are the fake's two for the text "hi". */
static bool fakes_blocks(const gw_thinking_block *b, int n) {
    return n == 2 && !b[0].redacted && !strcmp(b[0].thinking, "thinking about: hi") &&
           !strcmp(b[0].opaque, "c2ln") && b[1].redacted && !b[1].thinking &&
           !strcmp(b[1].opaque, "b3BhcXVl");
}

/* One call of tier kind/model with q (messages, tools and blocks its own);
 * the result's status OK. */
static void call(fake_cloud *fc, gw_tier_kind kind, gw_chat *q, gw_cloud_result *res, got *g) {
    gw_tier t;
    gw_remote *r = NULL;
    REQUIRE(fc_tier(fc, kind, "think", &t) && gw_remote_new(&t, &r) == HEARTH_OK);
    fake_cloud_reset(fc);
    q->on_thinking = on_block;
    REQUIRE(gw_cloud_chat(r, q, on_text, g, res) == HEARTH_OK);
    CHECKF(res->status == GW_CLOUD_OK, "%s", res->error);
    gw_remote_free(r);
}

static void answers(fake_cloud *fc) {
    const gw_message msg = {"user", "hi"};
    for (int stream = 0; stream < 2; stream++) {
        gw_chat q = {.messages = &msg,
                     .n_messages = 1,
                     .temperature = NAN,
                     .top_p = NAN,
                     .stream = stream,
                     .thinking = true};
        got g = {0};
        gw_cloud_result res;
        call(fc, GW_TIER_ANTHROPIC, &q, &res, &g);
        CHECKF(fakes_blocks(res.thinking, res.n_thinking) && fakes_blocks(g.b, g.n),
               "stream=%d: %d blocks kept, %d handed over", stream, res.n_thinking, g.n);
        CHECKF(!strcmp(res.reasoning, "thinking about: hi"), "stream=%d: reasoning '%s'", stream,
               res.reasoning);
        gw_cloud_result_free(&res);
        gw_thinking_free(g.b, g.n);
    }
}

/* An answer of more thinking blocks than GW_THINKING_MAX fails, as one of
 * more tool calls than kept does: n_redacted blocks and a text, from a path
 * the fake answers through fc->other. */
static int n_redacted;

static enum MHD_Result many_blocks(fake_cloud *fc, struct MHD_Connection *c, const char *url,
                                   const char *body) {
    (void)fc, (void)url, (void)body;
    gw_buf b = {0};
    gw_buf_puts(&b, "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[");
    for (int i = 0; i < n_redacted; i++) gw_buf_puts(&b, REDACTED ",");
    gw_buf_puts(&b, "{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":\"end_turn\","
                    "\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}");
    const enum MHD_Result rc = fc_send(c, 200, b.data ? b.data : "");
    gw_buf_free(&b);
    return rc;
}

static void block_cap(fake_cloud *fc) {
    const gw_message msg = {"user", "hi"};
    fc->other = many_blocks;
    for (n_redacted = GW_THINKING_MAX; n_redacted <= GW_THINKING_MAX + 1; n_redacted++) {
        gw_tier t;
        gw_remote *r = NULL;
        REQUIRE(fc_tier(fc, GW_TIER_ANTHROPIC, "think", &t));
        snprintf(t.url, sizeof t.url, "http://127.0.0.1:%d/many/v1/messages", fc->port);
        REQUIRE(gw_remote_new(&t, &r) == HEARTH_OK);
        gw_chat q = {.messages = &msg, .n_messages = 1, .temperature = NAN, .top_p = NAN};
        gw_cloud_result res;
        REQUIRE(gw_cloud_chat(r, &q, on_text, NULL, &res) == HEARTH_OK);
        if (n_redacted <= GW_THINKING_MAX)
            CHECKF(res.status == GW_CLOUD_OK && res.n_thinking == n_redacted, "%d blocks: %s",
                   n_redacted, res.error);
        else
            CHECKF(res.status != GW_CLOUD_OK, "%d blocks were taken", n_redacted);
        gw_cloud_result_free(&res);
        gw_remote_free(r);
    }
    fc->other = NULL;
}

static void bodies(fake_cloud *fc) {
    const gw_thinking_block blocks[] = {{false, "thinking about: <EMAIL_1>", "c2ln"},
                                        {true, NULL, "b3BhcXVl"},
                                        {false, "a local model's", ""}};
    const gw_msg_thinking replay[] = {{0}, {blocks, 3}, {0}};
    static const char calls[] = "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                                "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]";
    const gw_msg_tools mt[] = {{0}, {calls, NULL}, {NULL, "call_1"}};
    const gw_chat_tools tools = {
        .tools = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}]",
        .parallel_tool_calls = -1,
        .msgs = mt};
    const gw_message loop[] = {{"user", "hi"}, {"assistant", ""}, {"tool", "sunny"}};
    gw_chat q = {.messages = loop,
                 .n_messages = 3,
                 .temperature = NAN,
                 .top_p = NAN,
                 .tools = &tools,
                 .thinking = true,
                 .thinking_blocks = replay};
    got g = {0};
    gw_cloud_result res;
    call(fc, GW_TIER_ANTHROPIC, &q, &res, &g);
    /* first in the turn, as sent; the unsigned one left out; thinking on
     * after the tool results, the calling turn's block being there */
    const char *b = last_body(fc);
    CHECKF(strstr(b, "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":"
                     "\"thinking about: <EMAIL_1>\",\"signature\":\"c2ln\"}," REDACTED
                     ",{\"type\":\"tool_use\"") &&
               !strstr(b, "a local model's") && strstr(b, "\"thinking\":{\"type\":\"enabled\""),
           "tool loop: %s", b);
    gw_cloud_result_free(&res);
    gw_thinking_free(g.b, g.n);
    g = (got){0};
    /* without the blocks, no thinking after tool results (Anthropic would
     * refuse the turn) */
    q.thinking_blocks = NULL;
    call(fc, GW_TIER_ANTHROPIC, &q, &res, &g);
    CHECKF(!strstr(last_body(fc), "budget_tokens"), "no blocks: %s", last_body(fc));
    gw_cloud_result_free(&res);
    gw_thinking_free(g.b, g.n);
    g = (got){0};
    /* an OpenAI-compatible tier never gets them */
    q.thinking_blocks = replay;
    call(fc, GW_TIER_OPENAI, &q, &res, &g);
    b = last_body(fc);
    CHECKF(!strstr(b, "c2ln") && !strstr(b, "b3BhcXVl") && !strstr(b, "thinking"), "openai: %s", b);
    gw_cloud_result_free(&res);
    /* without tools: that turn's content is blocks, the others' stay text */
    const gw_message chat[] = {{"user", "hi"}, {"assistant", "echo: hi"}, {"user", "more"}};
    q = (gw_chat){.messages = chat,
                  .n_messages = 3,
                  .temperature = NAN,
                  .top_p = NAN,
                  .thinking = true,
                  .thinking_blocks = replay};
    call(fc, GW_TIER_ANTHROPIC, &q, &res, &g);
    b = last_body(fc);
    CHECKF(strstr(b, "{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
                     "[{\"type\":\"thinking\",\"thinking\":\"thinking about: <EMAIL_1>\","
                     "\"signature\":\"c2ln\"}," REDACTED
                     ",{\"type\":\"text\",\"text\":\"echo: hi\"}]},{\"role\":\"user\","
                     "\"content\":\"more\"}"),
           "no tools: %s", b);
    gw_cloud_result_free(&res);
    gw_thinking_free(g.b, g.n);
}

/* ---- through `hearth serve` ----------------------------------------------------- */

static const char user_text[] = "Write to jane.doe@example.com now";

static cJSON *post_json(test_server *sv, const char *path, const char *body, int *status) {
    test_reply r = test_http(sv, "POST", path, body, "-H 'anthropic-version: 2023-06-01'");
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    *status = r.status;
    free(r.body);
    return j;
}

/* OpenAI chat, whole: the blocks as the tier sent them (its placeholder),
 * beside the restored reasoning; returns the thinking_blocks array printed
 * (malloc'd) for the next turn. */
static char *chat_whole(test_server *sv) {
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"an\",\"max_tokens\":50,\"reasoning_effort\":\"low\",\"messages\":[{"
             "\"role\":\"user\",\"content\":\"%s\"}]}",
             user_text);
    int status;
    cJSON *j = post_json(sv, "/v1/chat/completions", body, &status);
    const cJSON *tb = jget(j, "choices.0.message.thinking_blocks");
    char *printed = tb ? cJSON_PrintUnformatted(tb) : NULL;
    const char *rc = jstr(j, "choices.0.message.reasoning_content");
    CHECKF(status == 200 && printed &&
               !strcmp(printed, "[" SIGNED("Write to <EMAIL_1> now") "," REDACTED "]") && rc &&
               !strcmp(rc, "thinking about: Write to jane.doe@example.com now"),
           "chat: %d, thinking_blocks %s, reasoning_content %s", status,
           printed ? printed : "(none)", rc ? rc : "(none)");
    cJSON_Delete(j);
    return printed;
}

/* OpenAI chat, streamed: each block in a chunk of its own once complete,
 * after its reasoning pieces and before the content. */
static void chat_stream(test_server *sv) {
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"an\",\"stream\":true,\"max_tokens\":50,\"reasoning_effort\":\"low\","
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             user_text);
    test_reply r = test_http(sv, "POST", "/v1/chat/completions", body, NULL);
    const char *p = r.body;
    bool done = false, order = true, reasoning_after = false;
    cJSON *ev, *blocks = cJSON_CreateArray();
    char reasoning[256] = "", content[256] = "";
    while (test_sse_next(&p, &done, &ev) == 1) {
        const cJSON *tb = jget(ev, "choices.0.delta.thinking_blocks");
        const char *rc = jstr(ev, "choices.0.delta.reasoning_content");
        const char *c = jstr(ev, "choices.0.delta.content");
        if (tb) {
            order &= cJSON_GetArraySize(tb) == 1 && !content[0];
            cJSON_AddItemToArray(blocks, cJSON_Duplicate(tb->child, true));
        }
        if (rc) {
            reasoning_after |= cJSON_GetArraySize(blocks) > 0;
            strncat(reasoning, rc, sizeof reasoning - strlen(reasoning) - 1);
        }
        if (c) strncat(content, c, sizeof content - strlen(content) - 1);
        cJSON_Delete(ev);
    }
    char *printed = cJSON_PrintUnformatted(blocks);
    CHECKF(r.status == 200 && done && order && !reasoning_after && printed &&
               !strcmp(printed, "[" SIGNED("Write to <EMAIL_1> now") "," REDACTED "]") &&
               !strcmp(reasoning, "thinking about: Write to jane.doe@example.com now") &&
               !strcmp(content, "echo: Write to jane.doe@example.com now"),
           "chat stream: %d, done %d, order %d, reasoning after a block %d, blocks %s, "
           "reasoning '%s', content '%s'",
           r.status, done, order, reasoning_after, printed ? printed : "", reasoning, content);
    free(printed);
    cJSON_Delete(blocks);
    free(r.body);
}

/* The tool loop's next turn, the blocks sent back on the assistant message,
 * to `tier`; the body the fake cloud received. */
static const char *chat_replay(test_server *sv, fake_cloud *fc, const char *tier,
                               const char *blocks) {
    char body[4096];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"max_tokens\":50,\"reasoning_effort\":\"low\",\"tools\":[{"
             "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{"
             "\"type\":\"object\"}}}],\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},{"
             "\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
             "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
             "\"{}\"}}],\"thinking_blocks\":%s},{\"role\":\"tool\",\"tool_call_id\":\"call_1\","
             "\"content\":\"sunny\"}]}",
             tier, user_text, blocks);
    fake_cloud_reset(fc);
    int status;
    cJSON *j = post_json(sv, "/v1/chat/completions", body, &status);
    CHECKF(status == 200, "replay to %s: %d", tier, status);
    cJSON_Delete(j);
    return last_body(fc);
}

static void chat_replays(test_server *sv, fake_cloud *fc, const char *blocks) {
    const char *b = chat_replay(sv, fc, "an", blocks);
    CHECKF(strstr(b, "{\"role\":\"assistant\",\"content\":[" SIGNED(
                         "Write to <EMAIL_1> now") "," REDACTED ",{\"type\":\"tool_use\"") &&
               strstr(b, "\"thinking\":{\"type\":\"enabled\"") && !strstr(b, "jane.doe"),
           "replayed: %s", b);
    /* a value in a replayed text is redacted; the signature goes as it came */
    b = chat_replay(sv, fc, "an",
                    "[{\"type\":\"thinking\",\"thinking\":\"mail jane.doe@example.com\","
                    "\"signature\":\"c2ln\"}]");
    CHECKF(strstr(b, "{\"type\":\"thinking\",\"thinking\":\"mail <EMAIL_1>\",\"signature\":"
                     "\"c2ln\"}") &&
               !strstr(b, "jane.doe"),
           "redacted text: %s", b);
    b = chat_replay(sv, fc, "oa", blocks);
    CHECKF(!strstr(b, "c2ln") && !strstr(b, "b3BhcXVl") && !strstr(b, "thinking_blocks"),
           "openai tier: %s", b);
}

/* A Messages API request with thinking on, to the Anthropic tier. */
static void messages_body(char *out, size_t cap, bool stream) {
    snprintf(out, cap,
             "{\"model\":\"an\",\"max_tokens\":50,\"stream\":%s,\"thinking\":{\"type\":"
             "\"enabled\",\"budget_tokens\":1500},\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}",
             stream ? "true" : "false", user_text);
}

/* Anthropic's Messages API: the blocks as the tier sent them, whole and
 * streamed, and sent back. */
static void messages(test_server *sv, fake_cloud *fc) {
    char body[2048];

    messages_body(body, sizeof body, false);
    int status;
    cJSON *j = post_json(sv, "/v1/messages", body, &status);
    cJSON *c = cJSON_Duplicate(jget(j, "content"), true);
    cJSON_DeleteItemFromArray(c, 2); /* the text */
    char *printed = c ? cJSON_PrintUnformatted(c) : NULL;
    CHECKF(status == 200 && printed &&
               !strcmp(printed, "[" SIGNED("Write to <EMAIL_1> now") "," REDACTED "]"),
           "messages: %d %s", status, printed ? printed : "(none)");
    free(printed);
    cJSON_Delete(c);
    cJSON_Delete(j);

    messages_body(body, sizeof body, true);
    test_reply r =
        test_http(sv, "POST", "/v1/messages", body, "-H 'anthropic-version: 2023-06-01'");
    const char *p = r.body;
    char type[64], thinking[256] = "", sig[64] = "", data[64] = "";
    bool agrees;
    int starts = 0;
    while (typed_sse_next(&p, type, sizeof type, &j, &agrees)) {
        const char *dt = jstr(j, "delta.type"), *bt = jstr(j, "content_block.type");
        if (!strcmp(type, "content_block_start") && bt) {
            starts++;
            if (!strcmp(bt, "redacted_thinking"))
                snprintf(data, sizeof data, "%s", jstr(j, "content_block.data"));
        }
        if (dt && !strcmp(dt, "thinking_delta"))
            strncat(thinking, jstr(j, "delta.thinking"), sizeof thinking - strlen(thinking) - 1);
        if (dt && !strcmp(dt, "signature_delta"))
            strncat(sig, jstr(j, "delta.signature"), sizeof sig - strlen(sig) - 1);
        cJSON_Delete(j);
    }
    CHECKF(r.status == 200 && starts == 3 &&
               !strcmp(thinking, "thinking about: Write to <EMAIL_1> now") &&
               !strcmp(sig, "c2ln") && !strcmp(data, "b3BhcXVl"),
           "messages stream: %d, %d blocks, thinking '%s', signature '%s', data '%s'", r.status,
           starts, thinking, sig, data);
    free(r.body);

    /* sent back in a tool loop: first in the assistant turn, byte for byte */
    snprintf(body, sizeof body,
             "{\"model\":\"an\",\"max_tokens\":50,\"thinking\":{\"type\":\"enabled\","
             "\"budget_tokens\":1500},\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{"
             "\"type\":\"object\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},{"
             "\"role\":\"assistant\",\"content\":[" SIGNED(
                 "Write to <EMAIL_1> now") "," REDACTED ",{\"type\":\"tool_use\",\"id\":\"toolu_"
                                           "1\",\"name\":\"get_weather\","
                                           "\"input\":{}}]},{\"role\":\"user\",\"content\":[{"
                                           "\"type\":\"tool_result\","
                                           "\"tool_use_id\":\"toolu_1\",\"content\":\"sunny\"}]}]}",
             user_text);
    fake_cloud_reset(fc);
    j = post_json(sv, "/v1/messages", body, &status);
    CHECKF(status == 200 &&
               strstr(last_body(fc),
                      "{\"role\":\"assistant\",\"content\":[" SIGNED(
                          "Write to <EMAIL_1> now") "," REDACTED ",{\"type\":\"tool_use\""),
           "messages replay: %d %s", status, last_body(fc));
    cJSON_Delete(j);
}

static void refused(test_server *sv) {
    static const struct {
        const char *messages, *param;
    } bad[] = {
        {"[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\","
         "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"x\"}]}]",
         "messages[1].thinking_blocks[0]"},
        {"[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\","
         "\"thinking_blocks\":{}}]",
         "messages[1].thinking_blocks"},
        {"[{\"role\":\"user\",\"content\":\"a\",\"thinking_blocks\":[]}]",
         "messages[0].thinking_blocks"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char body[1024];
        snprintf(body, sizeof body, "{\"model\":\"an\",\"messages\":%s}", bad[i].messages);
        int status;
        cJSON *j = post_json(sv, "/v1/chat/completions", body, &status);
        const char *param = jstr(j, "error.param");
        CHECKF(status == 400 && param && !strcmp(param, bad[i].param), "bad %zu: %d %s", i, status,
               param ? param : "(none)");
        cJSON_Delete(j);
    }
}

int main(void) {
    fake_cloud fc = {0};
    REQUIRE(fake_cloud_start(&fc));
    answers(&fc);
    block_cap(&fc);
    bodies(&fc);
    bool skip;
    const char *model_path = fixture_server_model("test_gateway_thinking", scratch, &skip);
    if (!skip) {
        REQUIRE(model_path);
        char cfg[700], args[1024];
        snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
        FILE *f = fopen(cfg, "w");
        REQUIRE(f);
        fprintf(f,
                "{\"tiers\":[{\"name\":\"an\",\"kind\":\"anthropic\",\"base_url\":"
                "\"http://127.0.0.1:%d\",\"model\":\"think\",\"retries\":0},{\"name\":\"oa\","
                "\"base_url\":\"http://127.0.0.1:%d\",\"model\":\"think\",\"retries\":0}]}",
                fc.port, fc.port);
        REQUIRE(fclose(f) == 0);
        snprintf(args, sizeof args, "-t 1 --config '%s'", cfg);
        test_server sv;
        REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
        char *blocks = chat_whole(&sv);
        chat_stream(&sv);
        if (blocks) chat_replays(&sv, &fc, blocks);
        free(blocks);
        messages(&sv, &fc);
        refused(&sv);
        CHECK(test_server_stop(&sv) == 0);
        fixture_server_cleanup("test_gateway_thinking", scratch, test_failures > 0);
    }
    fake_cloud_stop(&fc);
    return test_done("test_gateway_thinking");
}
