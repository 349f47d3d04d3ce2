/*
 * test_cloud_tools_data.c - the remote tiers' tools as data, against the
 * fake cloud (tests/gateway/fake_cloud.h):
 *
 *   - Anthropic bodies pinned byte for byte: one builder writes both, a
 *     request without tools (string contents, same-role turns joined, the
 *     sampling fields) and one with tools (content blocks, tool_use,
 *     tool_result, the translated tools and tool_choice);
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "gateway/gateway.h"

#include <cjson/cJSON.h>

#include <math.h>

static fake_cloud fc;

static gw_tier make_tier(gw_tier_kind kind, const char *model) {
    gw_tier t = gw_tier_default();
    snprintf(t.name, sizeof t.name, "%s", kind == GW_TIER_ANTHROPIC ? "an" : "oa");
    t.kind = kind;
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", fc.port);
    REQUIRE(gw_endpoint_url(kind, base, t.url, sizeof t.url) == HEARTH_OK);
    snprintf(t.model, sizeof t.model, "%s", model);
    t.timeout_ms = 5000;
    t.retries = 0;
    return t;
}

/* One call; the body the fake cloud received (malloc'd). */
static char *sent_body(const gw_tier *t, const gw_chat *q, gw_cloud_result *res) {
    fake_cloud_reset(&fc);
    gw_remote *r = NULL;
    REQUIRE(gw_remote_new(t, &r) == HEARTH_OK);
    REQUIRE(gw_cloud_chat(r, q, NULL, NULL, res) == HEARTH_OK);
    gw_remote_free(r);
    CHECKF(res->status == GW_CLOUD_OK, "%s", res->error);
    REQUIRE(fc.n_bodies == 1);
    return strdup(fc.bodies[0]);
}

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";

/* The two Anthropic bodies, exactly. */
static void test_anthropic_bodies(void) {
    static const gw_message plain[] = {{"system", "s1"}, {"user", "a"},      {"system", "s2"},
                                       {"user", "b"},    {"assistant", "c"}, {"assistant", ""},
                                       {"user", "d"}};
    const char *stops[] = {"END"};
    gw_chat q = {.messages = plain,
                 .n_messages = 7,
                 .max_tokens = 7,
                 .temperature = 0.5,
                 .top_p = 0.25,
                 .stop = stops,
                 .n_stop = 1,
                 .stream = true};
    gw_tier t = make_tier(GW_TIER_ANTHROPIC, "ok");
    gw_cloud_result res;
    char *body = sent_body(&t, &q, &res);
    static const char want_plain[] =
        "{\"model\":\"ok\",\"max_tokens\":7,\"system\":\"s1\\n\\ns2\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"a\\n\\nb\"},{\"role\":\"assistant\",\"content\":\"c\\n\\n\"},{"
        "\"role\":\"user\",\"content\":\"d\"}],\"temperature\":0.5,\"top_p\":0.25,"
        "\"stop_sequences\":[\"END\"],\"stream\":true}";
    CHECKF(!strcmp(body, want_plain), "plain body:\n%s\nwant\n%s", body, want_plain);
    free(body);
    gw_cloud_result_free(&res);

    static const gw_message with_tools[] = {{"system", "be brief"},
                                            {"user", "weather?"},
                                            {"assistant", ""},
                                            {"tool", "18 C"},
                                            {"user", "thanks"}};
    static const gw_msg_tools mt[] = {
        {0},
        {0},
        {"[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
         "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]",
         NULL},
        {NULL, "call_1"},
        {0}};
    const gw_chat_tools tt = {.tools = tools_json, .parallel_tool_calls = 0, .msgs = mt};
    q = (gw_chat){
        .messages = with_tools, .n_messages = 5, .temperature = NAN, .top_p = NAN, .tools = &tt};
    body = sent_body(&t, &q, &res);
    static const char want_tools[] =
        "{\"model\":\"ok\",\"max_tokens\":1024,\"system\":\"be brief\",\"messages\":[{\"role\":"
        "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"}]},{\"role\":"
        "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":"
        "\"get_weather\",\"input\":{\"city\":\"Oslo\"}}]},{\"role\":\"user\",\"content\":[{"
        "\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"18 C\"},{\"type\":"
        "\"text\",\"text\":\"thanks\"}]}],\"tools\":[{\"name\":\"get_weather\",\"description\":"
        "\"d\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
        "\"string\"}}}}],\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true}}";
    CHECKF(!strcmp(body, want_tools), "tools body:\n%s\nwant\n%s", body, want_tools);
    free(body);
    gw_cloud_result_free(&res);
}

int main(void) {
    REQUIRE(fake_cloud_start(&fc));
    test_anthropic_bodies();
    fake_cloud_stop(&fc);
    return test_done("test_cloud_tools_data");
}
