/*
 * test_server_toolcalls.c - tool calls end to end through `hearth serve`: a
 * synthetic model never writes a call, so the calls come from a cloud tier
 * (tests/gateway/fake_cloud.h's "tools" model, OpenAI and Anthropic formats)
 * that the client asks for by name. The server must turn the tier's calls
 * into choices[0].message.tool_calls (content null, finish_reason
 * tool_calls, the tier's own call id) and, streamed, into delta.tool_calls chunks that assemble to
 * the same call, with nothing of the call in the content; tool_choice none
 * turns parsing off. The local model answers a request with tools, tool
 * messages and calls in its history (a prompt rendered with them). When
 * node and the openai package are present, tests/server/openai_tools.mjs
 * checks the official client receives the calls, streamed and not.
 *
 * tool_choice "required" and a named function are enforced on the local
 * model by constrained decoding (tools_constrain.c): the synthetic model
 * writes random text, so only the constraint can make every reply, greedy
 * and sampled, streamed and not, under the Hermes (qwen3), Llama 3.1, LFM2
 * and Mistral v3 renderings, a call to an allowed function whose arguments validate
 * against its parameters (tests/json_schema_validate.h). The servers get a
 * larger --ctx than the model's 256 so the tools fit in the prompt.
 */
#include "test.h"

#include "json_schema_validate.h"

#include "gateway/fake_cloud.h"
#include "server/http_client.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_tools_XXXXXX";

static const char tools[] =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\"}}}}}]";

static char *body(const char *model, bool stream, const char *extra) {
    char *b = malloc(4096);
    REQUIRE(b);
    snprintf(b, 4096,
             "{\"model\":\"%s\",\"max_tokens\":8,\"temperature\":0,\"stream\":%s,\"messages\":["
             "{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],%s%s}",
             model, stream ? "true" : "false", tools, extra ? extra : "");
    return b;
}

/* The ids the fake cloud's tiers give their calls, which the server keeps. */
static const char *tier_call_id(const char *tier) {
    return !strcmp(tier, "an") ? "toolu_fake" : "call_fake";
}

/* The calls of a non-streamed reply: "name:arguments" of call 0. */
static void check_whole(const char *what, const char *tier, const test_reply *r) {
    CHECKF(r->status == 200, "%s: %d %.300s", what, r->status, r->body);
    cJSON *j = cJSON_Parse(r->body);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItem(c0, "message");
    const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0);
    const cJSON *f = cJSON_GetObjectItem(tc, "function");
    CHECKF(cJSON_GetArraySize(cJSON_GetObjectItem(msg, "tool_calls")) == 1, "%s: %.300s", what,
           r->body);
    CHECKF(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "tool_calls"),
           "%s: finish", what);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(tc, "id"));
    CHECKF(id && !strcmp(id, tier_call_id(tier)), "%s: id %s", what, id ? id : "(none)");
    CHECKF(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(tc, "type")), "function"), "%s", what);
    CHECKF(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f, "name")), "get_weather"), "%s",
           what);
    const char *args = cJSON_GetStringValue(cJSON_GetObjectItem(f, "arguments"));
    cJSON *a = args ? cJSON_Parse(args) : NULL;
    CHECKF(a && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(a, "city")), "Paris"),
           "%s: arguments %s", what, args ? args : "(none)");
    cJSON_Delete(a);
    const cJSON *content = cJSON_GetObjectItem(msg, "content");
    /* OpenAI's call has no text; Anthropic's comes after "Checking." */
    CHECKF(cJSON_IsNull(content) ||
               (cJSON_IsString(content) && !strcmp(content->valuestring, "Checking.")),
           "%s: content %.200s", what, r->body);
    cJSON_Delete(j);
}

/* A stream: its content and the call assembled from delta.tool_calls as the
 * SDKs do (by index; id, type and name once, arguments appended). */
static void check_stream(const char *what, const char *tier, const test_reply *r) {
    CHECKF(r->status == 200, "%s: %d", what, r->status);
    char name[64] = "", args[256] = "", id[64] = "", content[1024] = "", finish[32] = "";
    int max_index = -1;
    bool done = false;
    for (const char *p = r->body; p && *p;) {
        const char *end = strstr(p, "\n\n");
        CHECKF(end && !strncmp(p, "data: ", 6), "%s: framing", what);
        if (!end) break;
        if (!strncmp(p + 6, "[DONE]", 6)) {
            done = true;
            break;
        }
        cJSON *j = cJSON_ParseWithLength(p + 6, (size_t)(end - p - 6));
        CHECKF(j, "%s: chunk is not JSON", what);
        const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        const cJSON *d = cJSON_GetObjectItem(c0, "delta");
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(d, "content"));
        if (t) strncat(content, t, sizeof content - strlen(content) - 1);
        const cJSON *tc;
        cJSON_ArrayForEach(tc, cJSON_GetObjectItem(d, "tool_calls")) {
            const int index = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(tc, "index"));
            if (index > max_index) max_index = index;
            const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(tc, "id"));
            if (s) snprintf(id, sizeof id, "%s", s);
            const cJSON *f = cJSON_GetObjectItem(tc, "function");
            if ((s = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"))))
                snprintf(name, sizeof name, "%s", s);
            if ((s = cJSON_GetStringValue(cJSON_GetObjectItem(f, "arguments"))))
                strncat(args, s, sizeof args - strlen(args) - 1);
        }
        const char *fin = cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason"));
        if (fin) snprintf(finish, sizeof finish, "%s", fin);
        cJSON_Delete(j);
        p = end + 2;
    }
    CHECKF(done && max_index == 0, "%s: done %d, index %d", what, done, max_index);
    CHECKF(!strcmp(name, "get_weather") && !strcmp(id, tier_call_id(tier)), "%s: %s %s", what, name,
           id);
    cJSON *a = cJSON_Parse(args);
    CHECKF(a && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(a, "city")), "Paris"),
           "%s: arguments '%s'", what, args);
    cJSON_Delete(a);
    CHECKF(!strcmp(finish, "tool_calls"), "%s: finish '%s'", what, finish);
    CHECKF(!strstr(content, "tool_call"), "%s: content '%s'", what, content);
}

/* Two small tools whose values are all bounded (enum, maxLength, boolean),
 * so a random model's call ends well within max_tokens. */
static const char *const forced_params[2] = {
    "{\"type\":\"object\",\"properties\":{\"unit\":{\"enum\":[\"c\",\"f\"]},\"city\":{"
    "\"type\":\"string\",\"maxLength\":6},\"detailed\":{\"type\":\"boolean\"}},"
    "\"required\":[\"unit\",\"city\"]}",
    "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\",\"maxLength\":5}},"
    "\"required\":[\"q\"]}"};
static const char *const forced_names[2] = {"get_weather", "lookup"};

/* A reply's calls as the SDKs see them: whole, or assembled from the
 * stream's delta.tool_calls; content is what is left. */
typedef struct call_seen {
    int n_calls;
    char name[64], args[4096], finish[32], content[4096];
} call_seen;

static call_seen read_reply(const test_reply *r, bool stream) {
    call_seen c = {0};
    if (!stream) {
        cJSON *j = cJSON_Parse(r->body);
        const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        const cJSON *msg = cJSON_GetObjectItem(c0, "message");
        const cJSON *calls = cJSON_GetObjectItem(msg, "tool_calls");
        c.n_calls = cJSON_GetArraySize(calls);
        const cJSON *f = cJSON_GetObjectItem(cJSON_GetArrayItem(calls, 0), "function");
        const char *v;
        if ((v = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"))))
            snprintf(c.name, sizeof c.name, "%s", v);
        if ((v = cJSON_GetStringValue(cJSON_GetObjectItem(f, "arguments"))))
            snprintf(c.args, sizeof c.args, "%s", v);
        if ((v = cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason"))))
            snprintf(c.finish, sizeof c.finish, "%s", v);
        if ((v = cJSON_GetStringValue(cJSON_GetObjectItem(msg, "content"))))
            snprintf(c.content, sizeof c.content, "%s", v);
        cJSON_Delete(j);
        return c;
    }
    for (const char *p = r->body; p && !strncmp(p, "data: {", 7);) {
        const char *end = strstr(p, "\n\n");
        if (!end) break;
        cJSON *j = cJSON_ParseWithLength(p + 6, (size_t)(end - p - 6));
        const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        const cJSON *d = cJSON_GetObjectItem(c0, "delta"), *tc;
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(d, "content"));
        if (v) strncat(c.content, v, sizeof c.content - strlen(c.content) - 1);
        cJSON_ArrayForEach(tc, cJSON_GetObjectItem(d, "tool_calls")) {
            const int index = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(tc, "index"));
            if (index + 1 > c.n_calls) c.n_calls = index + 1;
            const cJSON *f = cJSON_GetObjectItem(tc, "function");
            if ((v = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"))))
                snprintf(c.name, sizeof c.name, "%s", v);
            if ((v = cJSON_GetStringValue(cJSON_GetObjectItem(f, "arguments"))))
                strncat(c.args, v, sizeof c.args - strlen(c.args) - 1);
        }
        if ((v = cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason"))))
            snprintf(c.finish, sizeof c.finish, "%s", v);
        cJSON_Delete(j);
        p = end + 2;
    }
    return c;
}

/* tool_choice required (named < 0) or naming forced_names[named], greedy and
 * sampled, streamed and not: always one call to an allowed function with
 * valid arguments. */
static void check_forced(test_server *sv, const char *tmpl, int named) {
    char tools_json[2048];
    snprintf(tools_json, sizeof tools_json,
             "[{\"type\":\"function\",\"function\":{\"name\":\"%s\",\"parameters\":%s}},"
             "{\"type\":\"function\",\"function\":{\"name\":\"%s\",\"parameters\":%s}}]",
             forced_names[0], forced_params[0], forced_names[1], forced_params[1]);
    char choice[256];
    if (named < 0)
        snprintf(choice, sizeof choice, "\"required\"");
    else
        snprintf(choice, sizeof choice, "{\"type\":\"function\",\"function\":{\"name\":\"%s\"}}",
                 forced_names[named]);
    for (int sampled = 0; sampled < 2; sampled++) {
        for (int stream = 0; stream < 2; stream++) {
            char what[128], b[4096];
            snprintf(what, sizeof what, "forced %s %s %s stream=%d", tmpl,
                     named < 0 ? "required" : forced_names[named], sampled ? "sampled" : "greedy",
                     stream);
            snprintf(
                b, sizeof b,
                "{\"model\":\"local\",\"max_tokens\":1500,\"temperature\":%s,\"seed\":%d,"
                "\"stream\":%s,\"stop\":[\"\\\"\"],\"messages\":[{\"role\":\"user\",\"content\":"
                "\"Weather in Paris?\"}],\"tools\":%s,\"tool_choice\":%s}",
                sampled ? "1.0" : "0", 11 + named, stream ? "true" : "false", tools_json, choice);
            char hfile[700], extra[720];
            snprintf(hfile, sizeof hfile, "%s/forced_headers", scratch);
            snprintf(extra, sizeof extra, "-D '%s'", hfile);
            test_reply r = test_http(sv, "POST", "/v1/chat/completions", b, extra);
            CHECKF(r.status == 200, "%s: %d %.300s", what, r.status, r.body);
            char *headers = test_read_file(hfile, NULL);
            CHECKF(headers && strstr(headers, "x-hearth-tool-constraint: full"), "%s: header",
                   what);
            free(headers);
            const call_seen c = read_reply(&r, stream);
            CHECKF(c.n_calls == 1 && !strcmp(c.finish, "tool_calls") && !c.content[0],
                   "%s: %d calls, finish '%s', content '%.200s'", what, c.n_calls, c.finish,
                   c.content);
            int k = 0;
            while (k < 2 && strcmp(c.name, forced_names[k]) != 0) k++;
            CHECKF(k < 2 && (named < 0 || k == named), "%s: called '%s'", what, c.name);
            if (k < 2)
                CHECKF(jv_check(forced_params[k], c.args, strlen(c.args)),
                       "%s: arguments '%s' are not valid for %s", what, c.args, c.name);
            free(r.body);
        }
    }
}

static void run_node(int port) {
    char args[64];
    snprintf(args, sizeof args, "'http://127.0.0.1:%d/v1'", port);
    const int rc = test_node_script(HEARTH_SOURCE_DIR, "openai", "openai_tools.mjs", args);
    CHECKF(rc <= 0, "openai_tools.mjs failed (%d)", rc);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_toolcalls", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    fake_cloud fc = {0};
    REQUIRE(fake_cloud_start(&fc));
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
    REQUIRE(fake_cloud_tools_config(&fc, cfg));
    char args[1024];
    snprintf(args, sizeof args, "-t 1 --chat-template qwen3 -c 3072 --config '%s'", cfg);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    const char *tiers[] = {"oa", "an"};
    for (int k = 0; k < 2; k++) {
        char what[64];
        for (int stream = 0; stream < 2; stream++) {
            snprintf(what, sizeof what, "%s stream=%d", tiers[k], stream);
            char *b = body(tiers[k], stream, NULL);
            test_reply r = test_http(&sv, "POST", "/v1/chat/completions", b, NULL);
            if (stream)
                check_stream(what, tiers[k], &r);
            else
                check_whole(what, tiers[k], &r);
            free(r.body);
            free(b);
        }
    }
    /* tool_choice none: no calls parsed, the tier's text is the content */
    char *b = body("oa", false, ",\"tool_choice\":\"none\"");
    test_reply r = test_http(&sv, "POST", "/v1/chat/completions", b, NULL);
    CHECKF(r.status == 200 && strstr(r.body, "\"finish_reason\":\"stop\"") &&
               !strstr(r.body, "\"tool_calls\""),
           "none: %.300s", r.body);
    free(r.body);
    free(b);
    /* tool_choice required answered by a remote tier: the local constraint
     * did not apply, so no x-hearth-tool-constraint header */
    for (int stream = 0; stream < 2; stream++) {
        char hfile[700], extra[720];
        snprintf(hfile, sizeof hfile, "%s/remote_forced_headers", scratch);
        snprintf(extra, sizeof extra, "-D '%s'", hfile);
        b = body("oa", stream, ",\"tool_choice\":\"required\"");
        r = test_http(&sv, "POST", "/v1/chat/completions", b, extra);
        char *headers = test_read_file(hfile, NULL);
        CHECKF(r.status == 200 && headers && strstr(headers, "x-hearth-route: oa") &&
                   !strstr(headers, "x-hearth-tool-constraint"),
               "remote forced stream=%d: %d %s", stream, r.status, headers ? headers : "");
        free(headers);
        free(r.body);
        free(b);
    }
    /* what reaches the tiers: the tools, the history's call (its arguments
     * redacted like any text) and the result, in each tier's own shape */
    static const char history[] =
        ",\"messages\":[{\"role\":\"user\",\"content\":\"Weather for me?\"},{\"role\":"
        "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_7\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\",\\\"mail\\\":\\\"jane.doe@example.com\\\"}\"}}]},{\"role\":\"tool\","
        "\"tool_call_id\":\"call_7\",\"content\":\"18 C\"}]}";
    for (int k = 0; k < 2; k++) {
        fake_cloud_reset(&fc);
        char hb[4096];
        snprintf(hb, sizeof hb, "{\"model\":\"%s\",\"stream\":false,\"max_tokens\":16,%s%s%s",
                 tiers[k], k == 0 ? "\"temperature\":0.25," : "", tools, history);
        r = test_http(&sv, "POST", "/v1/chat/completions", hb, NULL);
        CHECKF(r.status == 200, "history %s: %d %.300s", tiers[k], r.status, r.body);
        free(r.body);
        const char *sent = fc.n_bodies == 1 ? fc.bodies[0] : "";
        CHECKF(strstr(sent, "get_weather") && strstr(sent, "Paris") && strstr(sent, "<EMAIL_1>") &&
                   !strstr(sent, "jane.doe"),
               "history %s sent: %.600s", tiers[k], sent);
        /* a remote tier gets the sampling the client chose, and only that */
        CHECKF(k == 0 ? strstr(sent, "\"temperature\":0.25") != NULL
                      : strstr(sent, "\"temperature\"") == NULL,
               "history %s temperature: %.300s", tiers[k], sent);
        if (k == 0)
            CHECKF(strstr(sent, "\"tools\":[") && strstr(sent, "\"tool_call_id\":\"call_7\"") &&
                       strstr(sent, "\"role\":\"tool\"") && strstr(sent, "\"tool_calls\":["),
                   "openai body: %.600s", sent);
        else
            CHECKF(strstr(sent, "\"input_schema\"") && strstr(sent, "\"tool_use\"") &&
                       strstr(sent, "\"tool_result\"") && strstr(sent, "call_7"),
                   "anthropic body: %.600s", sent);
    }
    /* the local model: a history with a call and its result (tools not
     * offered: the "# Tools" block alone outgrows the synthetic model's
     * 256-token context) */
    static const char local[] =
        "{\"model\":\"local\",\"max_tokens\":4,\"temperature\":0,\"messages\":[{\"role\":\"user\","
        "\"content\":\"Weather?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"
        "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
        "\"call_1\",\"content\":\"18 C\"}],\"tools\":[{\"type\":\"function\",\"function\":{"
        "\"name\":\"get_weather\"}}],\"tool_choice\":\"none\"}";
    for (int stream = 0; stream < 2; stream++) {
        char lb[2048];
        snprintf(lb, sizeof lb, "{\"stream\":%s,%s", stream ? "true" : "false", local + 1);
        r = test_http(&sv, "POST", "/v1/chat/completions", lb, NULL);
        CHECKF(r.status == 200 && strstr(r.body, stream ? "[DONE]" : "\"content\":"),
               "local stream=%d: %d %.300s", stream, r.status, r.body);
        free(r.body);
    }
    check_forced(&sv, "qwen3", -1);
    check_forced(&sv, "qwen3", 1);
    run_node(sv.port);
    CHECK(test_server_stop(&sv) == 0);
    /* the Llama 3.1 rendering: bare {"name", "parameters"} calls, no prefix */
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "-t 1 --chat-template llama3.1 -c 3072"));
    check_forced(&sv, "llama3.1", -1);
    check_forced(&sv, "llama3.1", 0);
    CHECK(test_server_stop(&sv) == 0);
    /* LFM2's rendering: the call opened with <|tool_call_start|>, written as the JSON object */
    REQUIRE(
        test_server_start(&sv, binary, model_path, scratch, "-t 1 --chat-template lfm2 -c 3072"));
    check_forced(&sv, "lfm2", -1);
    CHECK(test_server_stop(&sv) == 0);
    /* Mistral's: [TOOL_CALLS], then the JSON object */
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "-t 1 --chat-template mistral-v3 -c 3072"));
    check_forced(&sv, "mistral-v3", 0);
    CHECK(test_server_stop(&sv) == 0);
    /* Ministral 3's: [TOOL_CALLS] too (its own calls are NAME[ARGS]{...}), then the object */
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "-t 1 --chat-template ministral3 -c 3072"));
    check_forced(&sv, "ministral3", 1);
    CHECK(test_server_stop(&sv) == 0);
    fake_cloud_stop(&fc);
    fixture_server_cleanup("test_server_toolcalls", scratch, test_failures > 0);
    return test_done("test_server_toolcalls");
}
