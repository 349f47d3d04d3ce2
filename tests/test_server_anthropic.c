/*
 * test_server_anthropic.c - Anthropic's Messages API through `hearth serve`
 * (curl against the real program, the test model, a fake cloud from
 * tests/gateway/fake_cloud.h for tool calls): a local answer's text is the
 * one the same conversation gets on /v1/chat/completions (greedy), JSON and
 * streamed (typed events in Anthropic's order, each "event:" naming its
 * data's type); stop_sequences end it with stop_reason "stop_sequence" and
 * the sequence that matched; a tier's tool call comes back as a tool_use
 * block (stop_reason "tool_use"; streamed as a block with one
 * input_json_delta); an assistant tool_use and a user tool_result in the
 * history reach the tier as OpenAI's tool_calls and tool message;
 * count_tokens counts what /v1/chat/completions evaluates; errors have
 * Anthropic's shape; x-api-key authenticates. When node and the
 * @anthropic-ai/sdk package are present, tests/server/anthropic_client.mjs
 * checks the official SDK gets all of this (scripts/test.sh installs it).
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
static char scratch[] = "/tmp/hearth_anthropic_XXXXXX";
static const char key_a[] = "-H 'x-api-key: sekrit' -H 'anthropic-version: 2023-06-01'";
static const char key_o[] = "-H 'Authorization: Bearer sekrit'";

static const char convo[] = "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story\"}]";
static const char tool[] = "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\","
                           "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{"
                           "\"type\":\"string\"}}}}]";

/* Request bodies: printf formats of the request's variable parts. */
#define LOCAL_FMT                                                                                  \
    "{\"model\":\"local\",\"max_tokens\":12,\"temperature\":0,%s"                                  \
    "\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\"}],%s}"
#define TOOL_FMT                                                                                   \
    "{\"model\":\"%s\",\"max_tokens\":50,%s,"                                                      \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}]}"
#define TOOL_STREAM_FMT                                                                            \
    "{\"model\":\"%s\",\"max_tokens\":50,\"stream\":true,%s,"                                      \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}]}"
#define HIST_FMT                                                                                   \
    "{\"model\":\"%s\",\"max_tokens\":50,%s,\"messages\":["                                        \
    "{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},"                                        \
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"             \
    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\","                          \
    "\"input\":{\"city\":\"Oslo\"}}]},"                                                            \
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","       \
    "\"content\":[{\"type\":\"text\",\"text\":\"rain\"}]},{\"type\":\"text\",\"text\":"            \
    "\"And now?\"}]}]}"

__attribute__((format(printf, 2, 3))) static test_reply messages(test_server *sv, const char *fmt,
                                                                 ...) {
    char body[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return test_http(sv, "POST", "/v1/messages", body, key_a);
}

/* The local greedy answer to convo on /v1/chat/completions. */
static char *openai_text(test_server *sv, int *prompt_tokens) {
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"local\",\"max_tokens\":12,\"temperature\":0,"
             "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
             "{\"role\":\"user\",\"content\":\"Tell me a story\"}]}");
    test_reply r = test_http(sv, "POST", "/v1/chat/completions", body, key_o);
    cJSON *j = parse_reply(&r);
    CHECKF(r.status == 200, "openai: %d %s", r.status, r.body);
    const char *t = jstr(j, "choices.0.message.content");
    char *text = strdup(t ? t : "");
    *prompt_tokens = (int)jnum(j, "usage.prompt_tokens");
    cJSON_Delete(j);
    free(r.body);
    return text;
}

/* The text blocks of a message, joined. */
static void message_text(const cJSON *j, char *out, size_t cap) {
    out[0] = '\0';
    const cJSON *b;
    cJSON_ArrayForEach(b, jget(j, "content")) {
        if (jstr(b, "type") && !strcmp(jstr(b, "type"), "text") && jstr(b, "text"))
            strncat(out, jstr(b, "text"), cap - strlen(out) - 1);
    }
}

/* A streamed message: its events checked for shape and order; the text
 * deltas joined into text, the tool_use blocks' input JSON into input, the
 * message_delta's stop reason and sequence. */
typedef struct stream_seen {
    char text[4096], input[1024], tool_name[64], stop_reason[32], stop_sequence[64];
    int n_events;
    bool order_ok;
} stream_seen;

static stream_seen read_stream(const char *body) {
    stream_seen s = {.order_ok = true};
    const char *p = body;
    char type[64];
    cJSON *j;
    bool agrees;
    int stage = 0; /* 0 start, 1 blocks, 2 delta, 3 stop */
    while (typed_sse_next(&p, type, sizeof type, &j, &agrees)) {
        s.n_events++;
        s.order_ok &= agrees;
        if (!strcmp(type, "message_start")) {
            s.order_ok &= stage == 0 && jstr(j, "message.role") != NULL;
            stage = 1;
        } else if (!strncmp(type, "content_block_", 14)) {
            s.order_ok &= stage == 1;
            const char *bt = jstr(j, "content_block.type");
            if (bt && !strcmp(bt, "tool_use"))
                snprintf(s.tool_name, sizeof s.tool_name, "%s", jstr(j, "content_block.name"));
            const char *dt = jstr(j, "delta.type");
            if (dt && !strcmp(dt, "text_delta"))
                strncat(s.text, jstr(j, "delta.text"), sizeof s.text - strlen(s.text) - 1);
            if (dt && !strcmp(dt, "input_json_delta"))
                strncat(s.input, jstr(j, "delta.partial_json"),
                        sizeof s.input - strlen(s.input) - 1);
        } else if (!strcmp(type, "message_delta")) {
            s.order_ok &= stage == 1;
            snprintf(s.stop_reason, sizeof s.stop_reason, "%s",
                     jstr(j, "delta.stop_reason") ? jstr(j, "delta.stop_reason") : "");
            snprintf(s.stop_sequence, sizeof s.stop_sequence, "%s",
                     jstr(j, "delta.stop_sequence") ? jstr(j, "delta.stop_sequence") : "");
            stage = 2;
        } else if (!strcmp(type, "message_stop")) {
            s.order_ok &= stage == 2;
            stage = 3;
        }
        cJSON_Delete(j);
    }
    s.order_ok &= stage == 3;
    return s;
}

static void local_text(test_server *sv) {
    int prompt_tokens = 0;
    char *want = openai_text(sv, &prompt_tokens);
    printf("local text: '%s' (%d prompt tokens)\n", want, prompt_tokens);
    test_reply r = messages(sv, LOCAL_FMT, "", convo);
    cJSON *j = parse_reply(&r);
    char got[4096];
    message_text(j, got, sizeof got);
    CHECKF(r.status == 200 && !strcmp(got, want), "anthropic: %d '%s', openai '%s'", r.status, got,
           want);
    CHECK(jstr(j, "type") && !strcmp(jstr(j, "type"), "message") && jstr(j, "id") &&
          !strncmp(jstr(j, "id"), "msg_", 4));
    CHECKF(jstr(j, "stop_reason") && (!strcmp(jstr(j, "stop_reason"), "max_tokens") ||
                                      !strcmp(jstr(j, "stop_reason"), "end_turn")),
           "stop_reason %s", jstr(j, "stop_reason"));
    CHECK((int)jnum(j, "usage.input_tokens") == prompt_tokens &&
          jnum(j, "usage.output_tokens") > 0);
    cJSON_Delete(j);
    free(r.body);

    /* streamed: the same text, in Anthropic's events */
    r = messages(sv, LOCAL_FMT, "\"stream\":true,", convo);
    stream_seen s = read_stream(r.body);
    CHECKF(r.status == 200 && s.order_ok && !strcmp(s.text, want), "stream: order %d '%s' %.300s",
           s.order_ok, s.text, r.body);
    free(r.body);

    /* a stop sequence from the middle of the text */
    if (strlen(want) > 6) {
        char stop[8];
        memcpy(stop, want + strlen(want) / 2, 2);
        stop[2] = '\0';
        const size_t at = (size_t)(strstr(want, stop) - want);
        char extra[128];
        snprintf(extra, sizeof extra, "\"stop_sequences\":[\"zzzz\",\"%s\"],", stop);
        r = messages(sv, LOCAL_FMT, extra, convo);
        j = parse_reply(&r);
        message_text(j, got, sizeof got);
        CHECKF(strlen(got) == at && !strncmp(got, want, at), "stop: '%s'", got);
        CHECK(jstr(j, "stop_reason") && !strcmp(jstr(j, "stop_reason"), "stop_sequence"));
        CHECK(jstr(j, "stop_sequence") && !strcmp(jstr(j, "stop_sequence"), stop));
        cJSON_Delete(j);
        free(r.body);
        snprintf(extra, sizeof extra, "\"stream\":true,\"stop_sequences\":[\"%s\"],", stop);
        r = messages(sv, LOCAL_FMT, extra, convo);
        s = read_stream(r.body);
        CHECK(s.order_ok && !strcmp(s.stop_reason, "stop_sequence") &&
              !strcmp(s.stop_sequence, stop));
        free(r.body);
    }

    /* count_tokens: what the chat evaluates */
    char body[1024];
    snprintf(body, sizeof body, "{\"model\":\"local\",\"system\":\"Be brief.\",%s}", convo);
    r = test_http(sv, "POST", "/v1/messages/count_tokens", body, key_a);
    j = parse_reply(&r);
    CHECKF(r.status == 200 && (int)jnum(j, "input_tokens") == prompt_tokens, "count: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    free(want);
}

/* A message's (first) tool_use block; NULL when none. */
static const cJSON *tool_use_of(const cJSON *j) {
    const cJSON *b;
    cJSON_ArrayForEach(b, jget(j, "content")) {
        if (jstr(b, "type") && !strcmp(jstr(b, "type"), "tool_use")) return b;
    }
    return NULL;
}

/* Tool calls from the fake cloud's "tools" tiers (OpenAI and Anthropic
 * formats), and a history with a call and its result. */
static void tools(test_server *sv, fake_cloud *fc) {
    const char *tiers[] = {"oa", "an"};
    for (int k = 0; k < 2; k++) {
        test_reply r = messages(sv, TOOL_FMT, tiers[k], tool);
        cJSON *j = parse_reply(&r);
        const cJSON *use = tool_use_of(j);
        CHECKF(r.status == 200 && use && !strcmp(jstr(use, "name"), "get_weather") &&
                   jstr(use, "input.city") && !strcmp(jstr(use, "input.city"), "Paris"),
               "%s: %s", tiers[k], r.body);
        CHECK(jstr(j, "stop_reason") && !strcmp(jstr(j, "stop_reason"), "tool_use"));
        cJSON_Delete(j);
        free(r.body);
        r = messages(sv, TOOL_STREAM_FMT, tiers[k], tool);
        stream_seen s = read_stream(r.body);
        cJSON *in = cJSON_Parse(s.input);
        CHECKF(s.order_ok && !strcmp(s.tool_name, "get_weather") && jstr(in, "city") &&
                   !strcmp(jstr(in, "city"), "Paris") && !strcmp(s.stop_reason, "tool_use"),
               "%s stream: %.400s", tiers[k], r.body);
        cJSON_Delete(in);
        free(r.body);
    }
    /* the history's call and result reach the tier as OpenAI's */
    fake_cloud_reset(fc);
    test_reply r = messages(sv, HIST_FMT, "echo", tool);
    cJSON *j = parse_reply(&r);
    const cJSON *use = tool_use_of(j);
    CHECKF(r.status == 200 && jstr(use, "input.city") && !strcmp(jstr(use, "input.city"), "Oslo"),
           "echoed call: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    pthread_mutex_lock(&fc->mu);
    const char *sent = fc->n_bodies ? fc->bodies[fc->n_bodies - 1] : "";
    CHECKF(strstr(sent, "\"tool_call_id\":\"toolu_1\"") && strstr(sent, "rain") &&
               strstr(sent, "\"tool_calls\""),
           "the tier got: %.600s", sent);
    pthread_mutex_unlock(&fc->mu);
}

static void errors(test_server *sv) {
    static const char *const bad[][2] = {
        {"{\"model\":\"local\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "max_tokens"},
        {"{\"model\":\"local\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\","
         "\"content\":\"x\"}]}",
         "role"},
        {"{\"model\":\"local\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
         "{\"type\":\"image\",\"source\":{}}]}]}",
         "media_type"},
        {"{\"model\":\"local\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
         "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x/y.png\"}}]}]}",
         "no URLs"},
        {"{\"model\":\"local\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
         "{\"type\":\"document\",\"source\":{}}]}]}",
         "not supported"},
        {"{\"model\":\"local\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\","
         "\"name\":\"s\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "server tools"},
        {"{\"model\":\"local\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"bogus\"},"
         "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "tool_choice"},
        {"not json", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        test_reply r = test_http(sv, "POST", "/v1/messages", bad[i][0], key_a);
        cJSON *j = cJSON_Parse(r.body);
        CHECKF(r.status == 400 && jstr(j, "type") && !strcmp(jstr(j, "type"), "error") &&
                   jstr(j, "error.type") &&
                   !strcmp(jstr(j, "error.type"), "invalid_request_error") &&
                   strstr(jstr(j, "error.message"), bad[i][1]),
               "%s: %d %s", bad[i][0], r.status, r.body);
        cJSON_Delete(j);
        free(r.body);
    }
    test_reply r = test_http(sv, "POST", "/v1/messages", "{}", "-H 'x-api-key: wrong'");
    CHECKF(r.status == 401 && strstr(r.body, "\"authentication_error\""), "wrong key: %d %s",
           r.status, r.body);
    free(r.body);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_anthropic", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    fake_cloud fc = {0};
    REQUIRE(fake_cloud_start(&fc));
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/gateway.json", scratch);
    REQUIRE(fake_cloud_tools_config(&fc, cfg));
    char args[1024];
    snprintf(args, sizeof args, "-t 1 --chat-template qwen3 -c 3072 --api-key sekrit --config '%s'",
             cfg);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    local_text(&sv);
    tools(&sv, &fc);
    errors(&sv);
    char node_args[128];
    snprintf(node_args, sizeof node_args, "'http://127.0.0.1:%d' sekrit", sv.port);
    const int rc =
        test_node_script(HEARTH_SOURCE_DIR, "@anthropic-ai/sdk", "anthropic_client.mjs", node_args);
    CHECKF(rc <= 0, "anthropic_client.mjs failed (%d)", rc);
    CHECK(test_server_stop(&sv) == 0);
    fake_cloud_stop(&fc);
    fixture_server_cleanup("test_server_anthropic", scratch, test_failures > 0);
    return test_done("test_server_anthropic");
}
