/*
 * test_cloud_tools_data.c - the remote tiers' tools as data, against the
 * fake cloud (tests/gateway/fake_cloud.h):
 *
 *   - Anthropic bodies pinned byte for byte: one builder writes both, a
 *     request without tools (string contents, same-role turns joined, the
 *     sampling fields) and one with tools (content blocks, tool_use,
 *     tool_result, the translated tools and tool_choice);
 *   - redaction over the parsed JSON: an e-mail address inside a history
 *     call's argument string next to escapes ("a\"b alice@..." and
 *     "x\nbob@...", where a scan of the JSON text would have read "nbob@..."
 *     and broken the escape) leaves as placeholders in valid JSON, through
 *     gw_handle to both tier kinds, streamed and not; the audit row counts
 *     them; the tier's call (tools-echo: it sends those arguments back)
 *     reaches the caller restored, valid JSON, with the tier's id, in the
 *     response and through gw_request.on_call.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "gateway/gateway.h"
#include "gateway/ledger_query.h"

#include <cjson/cJSON.h>

#include <math.h>

static fake_cloud fc;

static gw_tier make_tier(gw_tier_kind kind, const char *model) {
    gw_tier t;
    REQUIRE(fc_tier(&fc, kind, model, &t));
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

/* The local tier: never reached in these tests (explicit remote tiers). */
static void no_local(void *ctx, const gw_chat *req, gw_text_cb cb, void *user,
                     gw_local_result *out) {
    (void)req, (void)cb, (void)user;
    (*(int *)ctx)++;
    memset(out, 0, sizeof *out);
    out->status = 500;
}

typedef struct client {
    gw_buf text;
    int n_calls;
    char *args, *id; /* the last call handed over */
} client;

static bool client_text(const char *text, size_t len, void *user) {
    return gw_buf_put(&((client *)user)->text, text, len) == HEARTH_OK;
}

static bool client_call(const gw_tool_call *c, void *user) {
    client *cl = user;
    cl->n_calls++;
    free(cl->args);
    free(cl->id);
    cl->args = strdup(c->arguments);
    cl->id = strdup(c->id);
    return true;
}

/* The history call's arguments as the tier received them (parsed). */
static cJSON *sent_args(const cJSON *body, bool anthropic) {
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(body, "messages"), 1);
    if (anthropic)
        return cJSON_Duplicate(
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "content"), 0), "input"),
            true);
    const cJSON *f = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(m, "tool_calls"), 0), "function");
    const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(f, "arguments"));
    return a ? cJSON_Parse(a) : NULL;
}

static bool str_is(const cJSON *o, const char *key, const char *want) {
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return v && !strcmp(v, want);
}

static void test_redacted_arguments(void) {
    char dir[] = "/tmp/hearth_tools_data_XXXXXX", ledger[128], json[512];
    REQUIRE(mkdtemp(dir));
    snprintf(ledger, sizeof ledger, "%s/ledger.db", dir);
    snprintf(json, sizeof json,
             "{\"tiers\":[{\"name\":\"oa\",\"kind\":\"openai\",\"base_url\":"
             "\"http://127.0.0.1:%d\",\"model\":\"tools-echo\",\"retries\":0},{\"name\":"
             "\"an\",\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d\",\"model\":"
             "\"tools-echo\",\"retries\":0}]}",
             fc.port, fc.port);
    gw_config cfg;
    gw_config_init(&cfg);
    REQUIRE(gw_config_parse(&cfg, json, strlen(json), "test") == HEARTH_OK);
    REQUIRE(gw_config_finish(&cfg) == HEARTH_OK);
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(ledger, &l) == HEARTH_OK);
    gw_gateway *g = NULL;
    REQUIRE(gw_gateway_new(&cfg, l, &g) == HEARTH_OK);
    gw_config_fini(&cfg);

    /* arguments {"note":"a\"b alice@example.com","more":"x\nbob@example.org"} */
    static const char calls[] =
        "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"save\","
        "\"arguments\":\"{\\\"note\\\":\\\"a\\\\\\\"b alice@example.com\\\",\\\"more\\\":"
        "\\\"x\\\\nbob@example.org\\\"}\"}}]";
    static const gw_message msgs[] = {
        {"user", "save my note"}, {"assistant", ""}, {"tool", "saved"}, {"user", "again"}};
    const gw_msg_tools mt[] = {{0}, {calls, NULL}, {NULL, "call_1"}, {0}};
    const gw_chat_tools tt = {.tools = tools_json, .parallel_tool_calls = -1, .msgs = mt};
    int local_calls = 0, requests = 0;
    for (int k = 0; k < 2; k++) {
        const bool anthropic = k == 1;
        for (int stream = 0; stream < 2; stream++) {
            char what[32];
            snprintf(what, sizeof what, "%s stream=%d", anthropic ? "an" : "oa", stream);
            fake_cloud_reset(&fc);
            const gw_chat q = {.messages = msgs,
                               .n_messages = 4,
                               .temperature = NAN,
                               .top_p = NAN,
                               .stream = stream,
                               .tools = &tt};
            client cl = {0};
            const gw_request rq = {.chat = &q,
                                   .model = anthropic ? "an" : "oa",
                                   .cb = stream ? client_text : NULL,
                                   .on_call = stream ? client_call : NULL,
                                   .user = &cl};
            gw_response out;
            REQUIRE(gw_handle(g, &rq, no_local, &local_calls, &out) == HEARTH_OK);
            requests++;
            CHECKF(out.status == 200 && !strcmp(out.tier, anthropic ? "an" : "oa"), "%s: %d %s %s",
                   what, out.status, out.tier, out.error);
            /* what the tier received: valid JSON, the values as placeholders */
            REQUIRE(fc.n_bodies == 1);
            cJSON *body = cJSON_Parse(fc.bodies[0]);
            CHECKF(body != NULL, "%s: the body is not JSON: %s", what, fc.bodies[0]);
            CHECKF(!strstr(fc.bodies[0], "alice") && !strstr(fc.bodies[0], "bob@"), "%s: %s", what,
                   fc.bodies[0]);
            cJSON *a = sent_args(body, anthropic);
            CHECKF(str_is(a, "note", "a\"b <EMAIL_1>") && str_is(a, "more", "x\n<EMAIL_2>"),
                   "%s: sent %s", what, fc.bodies[0]);
            cJSON_Delete(a);
            cJSON_Delete(body);
            /* the tier's call comes back restored, valid JSON, with its id */
            const char *id = anthropic ? "toolu_fake" : "call_fake";
            CHECKF(out.n_calls == 1, "%s: %d calls", what, out.n_calls);
            for (int c = 0; c < out.n_calls; c++) {
                a = cJSON_Parse(out.calls[c].arguments);
                CHECKF(str_is(a, "note", "a\"b alice@example.com") &&
                           str_is(a, "more", "x\nbob@example.org") &&
                           !strcmp(out.calls[c].id, id) &&
                           !strcmp(out.calls[c].name, "get_weather"),
                       "%s: answer %s %s", what, out.calls[c].id, out.calls[c].arguments);
                cJSON_Delete(a);
            }
            if (stream)
                CHECKF(cl.n_calls == 1 && cl.args && out.n_calls == 1 &&
                           !strcmp(cl.args, out.calls[0].arguments) && !strcmp(cl.id, id),
                       "%s: streamed %d calls", what, cl.n_calls);
            gw_response_free(&out);
            gw_buf_free(&cl.text);
            free(cl.args);
            free(cl.id);
        }
    }
    CHECK(local_calls == 0);
    /* every call audited with both e-mail addresses replaced */
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE action = 'sent' AND entities = 'EMAIL:2'");
    CHECKF(db_int(ledger, sql) == requests, "audit rows: %lld of %d",
           (long long)db_int(ledger, sql), requests);
    gw_gateway_free(g);
    gw_ledger_close(l);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void) {
    REQUIRE(fake_cloud_start(&fc));
    test_anthropic_bodies();
    test_redacted_arguments();
    fake_cloud_stop(&fc);
    return test_done("test_cloud_tools_data");
}
