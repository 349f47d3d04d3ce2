/*
 * test_server_responses.c - OpenAI's Responses API through `hearth serve`
 * (curl against the real program, the test model, a fake cloud for tool
 * calls): a local answer's output_text is what the same conversation gets
 * on /v1/chat/completions (greedy), whole and streamed (typed events in
 * order, sequence numbers counting up, the deltas adding up to the done
 * text and to the final response's); a cut answer is "incomplete" with
 * reason max_output_tokens; a tier's tool call is a function_call item
 * (streamed with its arguments events); function_call and
 * function_call_output items in the input reach the tier as OpenAI's
 * tool_calls and tool message; input_tokens counts what the chat
 * evaluates; previous_response_id and unsupported items are 400s. When
 * node and the openai package are present, tests/server/openai_responses.mjs
 * checks the official client's client.responses gets all of this.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/typed_sse.h"

#include <cjson/cJSON.h>
#include <stdarg.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_responses_XXXXXX";

static const char tool[] = "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\","
                           "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\","
                           "\"properties\":{\"city\":{\"type\":\"string\"}}}}]";

__attribute__((format(printf, 2, 3))) static test_reply responses(test_server *sv, const char *fmt,
                                                                  ...) {
    char body[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return test_http(sv, "POST", "/v1/responses", body, NULL);
}

/* The output_text of a response object: its message items' text, joined. */
static void output_text(const cJSON *resp, char *out, size_t cap) {
    out[0] = '\0';
    const cJSON *it;
    cJSON_ArrayForEach(it, jget(resp, "output")) {
        if (!jstr(it, "type") || strcmp(jstr(it, "type"), "message")) continue;
        const cJSON *part;
        cJSON_ArrayForEach(part, jget(it, "content")) {
            if (jstr(part, "text")) strncat(out, jstr(part, "text"), cap - strlen(out) - 1);
        }
    }
}

static const cJSON *call_of(const cJSON *resp) {
    const cJSON *it;
    cJSON_ArrayForEach(it, jget(resp, "output")) {
        if (jstr(it, "type") && !strcmp(jstr(it, "type"), "function_call")) return it;
    }
    return NULL;
}

/* A streamed response: events in order, their text and arguments, and the
 * final response object. */
typedef struct stream_seen {
    char deltas[4096], done_text[4096], args[1024], status[32];
    cJSON *final; /* the response of response.completed / .incomplete */
    bool order_ok;
} stream_seen;

static stream_seen read_stream(const char *body) {
    stream_seen s = {.order_ok = true};
    const char *p = body;
    char type[96];
    cJSON *j;
    bool agrees;
    int seq = 0, n = 0;
    while (typed_sse_next(&p, type, sizeof type, &j, &agrees)) {
        s.order_ok &= agrees && (int)jnum(j, "sequence_number") == seq++;
        if (n++ == 0) s.order_ok &= !strcmp(type, "response.created");
        if (!strcmp(type, "response.output_text.delta"))
            strncat(s.deltas, jstr(j, "delta"), sizeof s.deltas - strlen(s.deltas) - 1);
        else if (!strcmp(type, "response.output_text.done"))
            snprintf(s.done_text, sizeof s.done_text, "%s", jstr(j, "text"));
        else if (!strcmp(type, "response.function_call_arguments.done"))
            snprintf(s.args, sizeof s.args, "%s", jstr(j, "arguments"));
        if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete")) {
            s.final = cJSON_DetachItemFromObject(j, "response");
            snprintf(s.status, sizeof s.status, "%s", jstr(s.final, "status"));
        } else if (s.final) {
            s.order_ok = false; /* nothing after the last event */
        }
        cJSON_Delete(j);
    }
    s.order_ok &= s.final != NULL;
    return s;
}

static char *chat_text(test_server *sv, int max_tokens, int *prompt_tokens) {
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"local\",\"max_tokens\":%d,\"temperature\":0,\"messages\":["
             "{\"role\":\"system\",\"content\":\"Be brief.\"},"
             "{\"role\":\"user\",\"content\":\"Tell me a story\"}]}",
             max_tokens);
    test_reply r = test_http(sv, "POST", "/v1/chat/completions", body, NULL);
    cJSON *j = parse_reply(&r);
    const char *t = jstr(j, "choices.0.message.content");
    char *text = strdup(t ? t : "");
    *prompt_tokens = (int)jnum(j, "usage.prompt_tokens");
    cJSON_Delete(j);
    free(r.body);
    return text;
}

#define LOCAL_FMT                                                                                  \
    "{\"model\":\"local\",\"instructions\":\"Be brief.\",\"max_output_tokens\":12,"                \
    "\"temperature\":0,%s\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\","     \
    "\"text\":\"Tell me a story\"}]}]}"

static void local_text(test_server *sv) {
    int prompt_tokens = 0;
    char *want = chat_text(sv, 12, &prompt_tokens);
    printf("local text: '%s' (%d prompt tokens)\n", want, prompt_tokens);
    test_reply r = responses(sv, LOCAL_FMT, "");
    cJSON *j = parse_reply(&r);
    char got[4096];
    output_text(j, got, sizeof got);
    CHECKF(r.status == 200 && !strcmp(got, want), "responses: %d '%s', chat '%s'", r.status, got,
           want);
    CHECK(jstr(j, "object") && !strcmp(jstr(j, "object"), "response") &&
          !strncmp(jstr(j, "id"), "resp_", 5));
    CHECK((int)jnum(j, "usage.input_tokens") == prompt_tokens);
    const bool cut = jnum(j, "usage.output_tokens") == 12;
    CHECKF(!strcmp(jstr(j, "status"), cut ? "incomplete" : "completed") &&
               (!cut || !strcmp(jstr(j, "incomplete_details.reason"), "max_output_tokens")),
           "status %s with %g tokens", jstr(j, "status"), jnum(j, "usage.output_tokens"));
    cJSON_Delete(j);
    free(r.body);

    r = responses(sv, LOCAL_FMT, "\"stream\":true,");
    stream_seen s = read_stream(r.body);
    char final[4096];
    output_text(s.final, final, sizeof final);
    CHECKF(r.status == 200 && s.order_ok && !strcmp(s.deltas, want) && !strcmp(s.done_text, want) &&
               !strcmp(final, want),
           "stream: order %d '%s' '%s' '%s' %.300s", s.order_ok, s.deltas, s.done_text, final,
           r.body);
    cJSON_Delete(s.final);
    free(r.body);

    /* input as a plain string, instructions as the system message */
    r = test_http(sv, "POST", "/v1/responses/input_tokens",
                  "{\"model\":\"local\",\"instructions\":\"Be brief.\",\"input\":\"Tell me a "
                  "story\"}",
                  NULL);
    j = parse_reply(&r);
    CHECKF(r.status == 200 && (int)jnum(j, "input_tokens") == prompt_tokens &&
               !strcmp(jstr(j, "object"), "response.input_tokens"),
           "input_tokens: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    /* and llama-server's count for a chat body */
    r = test_http(sv, "POST", "/v1/chat/completions/input_tokens",
                  "{\"model\":\"local\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
                  "brief.\"},{\"role\":\"user\",\"content\":\"Tell me a story\"}]}",
                  NULL);
    j = parse_reply(&r);
    CHECKF(r.status == 200 && (int)jnum(j, "input_tokens") == prompt_tokens, "chat count: %s",
           r.body);
    cJSON_Delete(j);
    free(r.body);
    free(want);
}

static void tools(test_server *sv, fake_cloud *fc) {
    test_reply r = responses(sv, "{\"model\":\"oa\",\"input\":\"Weather?\",%s}", tool);
    cJSON *j = parse_reply(&r);
    const cJSON *c = call_of(j);
    cJSON *args = c ? cJSON_Parse(jstr(c, "arguments")) : NULL;
    CHECKF(r.status == 200 && c && !strcmp(jstr(c, "name"), "get_weather") &&
               !strcmp(jstr(c, "call_id"), "call_fake") && jstr(args, "city") &&
               !strcmp(jstr(args, "city"), "Paris") && !strcmp(jstr(j, "status"), "completed"),
           "call: %s", r.body);
    /* the response echoes the request's tools (flat, as sent) and tool_choice */
    CHECKF(jstr(j, "tools.0.name") && !strcmp(jstr(j, "tools.0.name"), "get_weather") &&
               !strcmp(jstr(j, "tools.0.type"), "function") &&
               jstr(j, "tools.0.parameters.properties.city.type") &&
               cJSON_GetArraySize(jget(j, "tools")) == 1 && jstr(j, "tool_choice") &&
               !strcmp(jstr(j, "tool_choice"), "auto"),
           "echo: %s", r.body);
    cJSON_Delete(args);
    cJSON_Delete(j);
    free(r.body);
    r = responses(sv,
                  "{\"model\":\"oa\",\"input\":\"Weather?\",\"tool_choice\":{\"type\":\"function\","
                  "\"name\":\"get_weather\"},%s}",
                  tool);
    j = parse_reply(&r);
    CHECKF(r.status == 200 && jstr(j, "tool_choice.name") &&
               !strcmp(jstr(j, "tool_choice.name"), "get_weather"),
           "named choice: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    r = responses(sv, "{\"model\":\"oa\",\"input\":\"Weather?\",\"stream\":true,%s}", tool);
    stream_seen s = read_stream(r.body);
    args = cJSON_Parse(s.args);
    CHECKF(s.order_ok && jstr(args, "city") && !strcmp(jstr(args, "city"), "Paris") &&
               call_of(s.final),
           "call streamed: %.400s", r.body);
    cJSON_Delete(args);
    cJSON_Delete(s.final);
    free(r.body);

    /* the input's call and output reach the tier as OpenAI's */
    fake_cloud_reset(fc);
    r = responses(sv,
                  "{\"model\":\"echo\",%s,\"input\":[{\"role\":\"user\",\"content\":\"Weather in "
                  "Oslo?\"},{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":"
                  "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"},{\"type\":"
                  "\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"rain\"},"
                  "{\"type\":\"reasoning\",\"summary\":[]},{\"role\":\"user\",\"content\":\"And "
                  "now?\"}]}",
                  tool);
    j = parse_reply(&r);
    c = call_of(j);
    args = c ? cJSON_Parse(jstr(c, "arguments")) : NULL;
    CHECKF(r.status == 200 && jstr(args, "city") && !strcmp(jstr(args, "city"), "Oslo"),
           "echoed: %s", r.body);
    cJSON_Delete(args);
    cJSON_Delete(j);
    free(r.body);
    pthread_mutex_lock(&fc->mu);
    const char *sent = fc->n_bodies ? fc->bodies[fc->n_bodies - 1] : "";
    CHECKF(strstr(sent, "\"tool_call_id\":\"call_1\"") && strstr(sent, "rain") &&
               strstr(sent, "\"tool_calls\""),
           "the tier got: %.600s", sent);
    pthread_mutex_unlock(&fc->mu);
}

static void errors(test_server *sv) {
    static const char *const bad[][2] = {
        {"{\"model\":\"local\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
         "previous_response_id"},
        {"{\"model\":\"local\"}", "input"},
        {"{\"model\":\"local\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
         "\"input_file\",\"file_id\":\"x\"}]}]}",
         "input"},
        {"{\"model\":\"local\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
         "\"input_image\",\"file_id\":\"x\"}]}]}",
         "input"},
        {"{\"model\":\"local\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "tools"},
        {"{\"model\":\"local\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}",
         "text.format"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        test_reply r = test_http(sv, "POST", "/v1/responses", bad[i][0], NULL);
        cJSON *j = cJSON_Parse(r.body);
        CHECKF(r.status == 400 && jstr(j, "error.param") &&
                   !strcmp(jstr(j, "error.param"), bad[i][1]),
               "%s: %d %s", bad[i][0], r.status, r.body);
        cJSON_Delete(j);
        free(r.body);
    }
    /* JSON mode through text.format: the output is one JSON object */
    test_reply r = responses(sv, "%s",
                             "{\"model\":\"local\",\"input\":\"x\",\"max_output_tokens\":200,"
                             "\"text\":{\"format\":{\"type\":\"json_object\"}}}");
    cJSON *j = parse_reply(&r);
    char got[4096];
    output_text(j, got, sizeof got);
    cJSON *obj = cJSON_Parse(got);
    const char *first = got + strspn(got, " \t\r\n");
    CHECKF(r.status == 200 && *first == '{' &&
               (cJSON_IsObject(obj) || !strcmp(jstr(j, "status"), "incomplete")),
           "json_object: %s", r.body);
    cJSON_Delete(obj);
    cJSON_Delete(j);
    free(r.body);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_responses", scratch, &skip);
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
    local_text(&sv);
    tools(&sv, &fc);
    errors(&sv);
    char node_args[128];
    snprintf(node_args, sizeof node_args, "'http://127.0.0.1:%d/v1'", sv.port);
    const int rc = test_node_script(HEARTH_SOURCE_DIR, "openai", "openai_responses.mjs", node_args);
    CHECKF(rc <= 0, "openai_responses.mjs failed (%d)", rc);
    CHECK(test_server_stop(&sv) == 0);
    fake_cloud_stop(&fc);
    fixture_server_cleanup("test_server_responses", scratch, test_failures > 0);
    return test_done("test_server_responses");
}
