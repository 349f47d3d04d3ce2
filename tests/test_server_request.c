/*
 * test_server_request.c - the server's request parser and UTF-8 check
 * without a server: what a valid body becomes (defaults included), and that
 * each kind of bad body is a 400 naming the field at fault.
 */
#include "core/core.h"
#include "test.h"

#include "server/server.h"

#include <cjson/cJSON.h>

static bool parse(srv_kind kind, const char *body, srv_request *r, srv_error *e) {
    return srv_parse_request(kind, body, strlen(body), r, e);
}

/* A body that must fail with 400 and `param` named. */
static void refused(srv_kind kind, const char *body, const char *param, const char *needle) {
    srv_request r;
    srv_error e = {0};
    const bool ok = parse(kind, body, &r, &e);
    CHECKF(!ok, "accepted: %s", body);
    if (ok) {
        srv_request_free(&r);
        return;
    }
    CHECKF(e.status == 400, "%s: status %d", body, e.status);
    CHECKF(!strcmp(e.param, param ? param : ""), "%s: param '%s', expected '%s'", body, e.param,
           param ? param : "");
    if (needle) CHECKF(strstr(e.message, needle), "%s: message '%s'", body, e.message);
    /* the error body is JSON of OpenAI's shape */
    char *json = srv_error_json(&e);
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    CHECK(j && cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")));
    CHECK(j && !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")->valuestring,
                       "invalid_request_error"));
    cJSON_Delete(j);
    free(json);
}

static void test_utf8(void) {
    size_t bad = 99;
    CHECK(hr_utf8_valid("", 0, &bad));
    CHECK(hr_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, &bad)); /* a é € 😀 */
    CHECK(!hr_utf8_valid("ab\xff", 3, &bad) && bad == 2);
    CHECK(!hr_utf8_valid("\xc0\xaf", 2, &bad) && bad == 0);         /* overlong '/' */
    CHECK(!hr_utf8_valid("\xe0\x80\xaf", 3, &bad) && bad == 0);     /* overlong, 3 bytes */
    CHECK(!hr_utf8_valid("x\xed\xa0\x80", 4, &bad) && bad == 1);    /* a surrogate */
    CHECK(!hr_utf8_valid("\xf4\x90\x80\x80", 4, &bad) && bad == 0); /* above U+10FFFF */
    CHECK(!hr_utf8_valid("\xe2\x82", 2, &bad) && bad == 0);         /* cut short */
    CHECK(!hr_utf8_valid("\xe2\x82x", 3, &bad) && bad == 0);        /* bad continuation */
    CHECK(hr_utf8_valid("\xf4\x8f\xbf\xbf", 4, &bad));              /* U+10FFFF */
    CHECK(hr_utf8_valid("\xed\x9f\xbf", 3, &bad));                  /* U+D7FF */
}

static void test_chat_valid(void) {
    srv_request r;
    srv_error e;
    REQUIRE(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", &r, &e));
    CHECK(r.kind == SRV_CHAT && r.n_messages == 1 && r.messages[0].role == TOK_CHAT_USER);
    CHECK(!strcmp(r.messages[0].content, "Hi") && r.messages[0].content_len == 2);
    /* OpenAI's defaults */
    CHECK(r.max_tokens == -1 && !r.stream && !r.include_usage && !r.logprobs && r.n_stop == 0);
    CHECK(r.sampling.temperature == 1.0f && r.sampling.top_p == 1.0f && r.sampling.top_k == 0 &&
          r.sampling.min_p == 0.0f && r.sampling.seed == HEARTH_SEED_RANDOM);
    srv_request_free(&r);

    REQUIRE(parse(
        SRV_CHAT,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"S\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"text\",\"text\":\"b\\u00e9\"}]},{\"role\":\"assistant\",\"content\":null}],"
        "\"max_tokens\":5,\"max_completion_tokens\":7,\"temperature\":0,\"top_p\":0.5,"
        "\"seed\":42,\"stop\":[\"x\",\"\",\"yz\"],\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"logprobs\":true,\"top_logprobs\":4,"
        "\"response_format\":{\"type\":\"text\"},\"tools\":[],\"user\":\"u\","
        "\"metadata\":{\"anything\":1},\"top_k\":3,\"min_p\":0.1,"
        "\"presence_penalty\":0.5,\"n\":1}",
        &r, &e));
    CHECK(!strcmp(r.model, "m") && r.n_messages == 3);
    CHECK(r.messages[0].role == TOK_CHAT_SYSTEM);          /* developer is the system role */
    CHECK(!strcmp(r.messages[1].content, "a\nb\xc3\xa9")); /* parts joined with \n */
    CHECK(r.messages[2].role == TOK_CHAT_ASSISTANT && r.messages[2].content_len == 0);
    CHECK(r.max_tokens == 7); /* max_completion_tokens wins */
    CHECK(r.sampling.temperature == 0.0f && r.sampling.top_p == 0.5f && r.sampling.seed == 42);
    CHECK(r.sampling.top_k == 3 && fabsf(r.sampling.min_p - 0.1f) < 1e-6f);
    CHECK(r.sampling.presence_penalty == 0.5f);
    CHECK(r.n_stop == 2 && !strcmp(r.stop[0], "x") && !strcmp(r.stop[1], "yz")); /* "" dropped */
    CHECK(r.stream && r.include_usage && r.logprobs && r.top_logprobs == 4);
    CHECK(r.sampling.constraint == HEARTH_CONSTRAINT_NONE);
    srv_request_free(&r);

    /* JSON mode, on chat and completions alike */
    REQUIRE(parse(SRV_CHAT,
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                  "\"response_format\":{\"type\":\"json_object\"}}",
                  &r, &e));
    CHECK(r.sampling.constraint == HEARTH_CONSTRAINT_JSON_OBJECT);
    srv_request_free(&r);
    REQUIRE(parse(SRV_COMPLETION,
                  "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_object\"}}", &r, &e));
    CHECK(r.sampling.constraint == HEARTH_CONSTRAINT_JSON_OBJECT);
    srv_request_free(&r);

    /* json_schema: the schema kept as compact text for the sampler, the
     * whole response_format for the remote tiers; no schema: any value */
    REQUIRE(parse(SRV_CHAT,
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{"
                  "\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\",\"strict\":true,"
                  "\"schema\":{\"type\": \"object\", \"properties\":{\"a\":{\"enum\":[1,2]}}}}}}",
                  &r, &e));
    CHECK(r.sampling.constraint == HEARTH_CONSTRAINT_JSON_SCHEMA);
    CHECK(r.sampling.json_schema == r.json_schema &&
          !strcmp(r.json_schema, "{\"type\":\"object\",\"properties\":{\"a\":{\"enum\":[1,2]}}}"));
    CHECK(r.response_format && strstr(r.response_format, "\"name\":\"n\"") &&
          strstr(r.response_format, "\"strict\":true"));
    srv_request_free(&r);
    REQUIRE(parse(SRV_COMPLETION,
                  "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_schema\","
                  "\"json_schema\":{\"name\":\"any\"}}}",
                  &r, &e));
    CHECK(r.sampling.constraint == HEARTH_CONSTRAINT_JSON_SCHEMA && !strcmp(r.json_schema, "{}"));
    srv_request_free(&r);

    REQUIRE(parse(SRV_CHAT,
                  " {\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"END\"} \n", &r,
                  &e));
    CHECK(r.n_stop == 1 && !strcmp(r.stop[0], "END"));
    srv_request_free(&r);
}

static void test_completion_valid(void) {
    srv_request r;
    srv_error e;
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":\"Once\",\"echo\":true,\"logprobs\":3}", &r, &e));
    CHECK(r.prompt && !strcmp(r.prompt, "Once") && r.prompt_len == 4 && r.echo);
    CHECK(r.logprobs && r.top_logprobs == 3);
    srv_request_free(&r);
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":[\"one\"]}", &r, &e));
    CHECK(r.prompt && !strcmp(r.prompt, "one") && !r.logprobs);
    srv_request_free(&r);
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":[1,2,30000],\"logprobs\":0}", &r, &e));
    CHECK(!r.prompt && r.n_prompt_ids == 3 && r.prompt_ids[2] == 30000);
    CHECK(r.logprobs && r.top_logprobs == 0);
    srv_request_free(&r);
    /* [[ids]] is one prompt, and token ids may be echoed (lm-evaluation-harness) */
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":[[1,2]],\"echo\":true,\"logprobs\":1}", &r, &e));
    CHECK(!r.prompt && r.n_prompt_ids == 2 && r.prompt_ids[1] == 2 && r.echo && r.logprobs);
    srv_request_free(&r);
    /* fill in the middle: the suffix kept; an empty prefix allowed with one;
     * "" is no suffix */
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":\"def f(\",\"suffix\":\")\\n\"}", &r, &e));
    CHECK(r.suffix && !strcmp(r.suffix, ")\n") && r.suffix_len == 2);
    srv_request_free(&r);
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":\"\",\"suffix\":\"x\"}", &r, &e));
    CHECK(r.prompt && r.prompt_len == 0 && r.suffix);
    srv_request_free(&r);
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":\"a\",\"suffix\":\"\"}", &r, &e));
    CHECK(!r.suffix);
    srv_request_free(&r);
    /* max_tokens 0: the prompt scored, nothing generated (not a chat's) */
    REQUIRE(parse(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":0,\"echo\":true}", &r, &e));
    CHECK(r.max_tokens == 0 && srv_prompt_only(&r) && (r.given & SRV_GIVEN(SRV_P_MAX_TOKENS)));
    srv_request_free(&r);
    refused(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":-1}", "max_tokens", "between 0");
}

static void test_refused(void) {
    refused(SRV_CHAT, "", NULL, "JSON");
    refused(SRV_CHAT, "{\"messages\":", NULL, "JSON");
    refused(SRV_CHAT, "{} {}", NULL, "after the JSON");
    refused(SRV_CHAT, "[]", NULL, "object");
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\"}]}", NULL, "UTF-8");
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}", NULL, "JSON");
    refused(SRV_CHAT, "{}", "messages", "required");
    refused(SRV_CHAT, "{\"messages\":{}}", "messages", "array");
    refused(SRV_CHAT, "{\"messages\":[]}", "messages", "empty");
    refused(SRV_CHAT, "{\"messages\":[1]}", "messages[0]", "object");
    refused(SRV_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", NULL);
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
            "messages[0].tool_call_id", "required");
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
            "messages[0].role", "use 'tool'");
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "required");
    refused(SRV_CHAT,
            "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":"
            "[{\"type\":\"image_url\"}]}]}",
            "messages[1].content[0].image_url.url", "a string");
    refused(SRV_CHAT,
            "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
            "messages[0].content[0]", "input_audio");
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
            "messages[0].content[0].text", NULL);
    refused(SRV_CHAT,
            "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":[{}]}]}",
            "messages[0].tool_calls[0].id", NULL);
#define M "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
    refused(SRV_CHAT, M "\"max_tokens\":0}", "max_tokens", "/v1/completions");
    refused(SRV_CHAT, M "\"max_completion_tokens\":0}", "max_completion_tokens", "at least 1");
    refused(SRV_CHAT, M "\"max_tokens\":1.5}", "max_tokens", "integer");
    refused(SRV_CHAT, M "\"max_completion_tokens\":\"9\"}", "max_completion_tokens", NULL);
    refused(SRV_CHAT, M "\"temperature\":2.5}", "temperature", "between");
    refused(SRV_CHAT, M "\"temperature\":\"hot\"}", "temperature", "number");
    refused(SRV_CHAT, M "\"top_p\":-0.1}", "top_p", NULL);
    refused(SRV_CHAT, M "\"seed\":\"1\"}", "seed", NULL);
    refused(SRV_CHAT, M "\"n\":17}", "n", "between 1 and 16");
    refused(SRV_CHAT, M "\"stream\":1}", "stream", "boolean");
    refused(SRV_CHAT, M "\"stream_options\":{\"include_usage\":\"yes\"}}",
            "stream_options.include_usage", NULL);
    refused(SRV_CHAT, M "\"stop\":5}", "stop", NULL);
    refused(SRV_CHAT, M "\"stop\":[\"a\",7]}", "stop[1]", NULL);
    refused(SRV_CHAT,
            M
            "\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\","
            "\"13\",\"14\",\"15\",\"16\",\"17\"]}",
            "stop", "at most");
    refused(SRV_CHAT, M "\"logprobs\":\"yes\"}", "logprobs", NULL);
    refused(SRV_CHAT, M "\"top_logprobs\":3}", "top_logprobs", "logprobs");
    refused(SRV_CHAT, M "\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs", NULL);
    refused(SRV_CHAT,
            M "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{"
              "\"type\":\"number\",\"minimum\":0}}}}",
            "response_format.json_schema.schema", "'minimum'");
    refused(SRV_CHAT,
            M "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":3}}}",
            "response_format.json_schema.schema", "JSON Schema");
    refused(SRV_CHAT,
            M "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"strict\":1}}}",
            "response_format.json_schema.strict", "boolean");
    refused(SRV_COMPLETION, "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_schema\"}}",
            "response_format.json_schema", "object");
    refused(SRV_CHAT, M "\"response_format\":{\"type\":\"yaml\"}}", "response_format.type", NULL);
    refused(SRV_CHAT, M "\"response_format\":\"text\"}", "response_format", NULL);
    refused(SRV_CHAT, M "\"tools\":[{\"type\":\"function\"}]}", "tools[0].function", "object");
    refused(SRV_CHAT, M "\"logit_bias\":{\"x\":-100}}", "logit_bias", "token ids");
    refused(SRV_CHAT, M "\"model\":7}", "model", NULL);
#undef M
    refused(SRV_COMPLETION, "{}", "prompt", "required");
    refused(SRV_COMPLETION, "{\"prompt\":\"\"}", "prompt", "empty");
    refused(SRV_COMPLETION, "{\"prompt\":[]}", "prompt", "empty");
    refused(SRV_COMPLETION, "{\"prompt\":[\"a\",[1]]}", "prompt[1]", "not both");
    refused(SRV_COMPLETION, "{\"prompt\":[1,-2]}", "prompt[1]", NULL);
    refused(SRV_COMPLETION, "{\"prompt\":[1,\"a\"]}", "prompt[1]", NULL);
    refused(SRV_COMPLETION, "{\"prompt\":{}}", "prompt", NULL);
    refused(SRV_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":true}", "logprobs", NULL);
    refused(SRV_COMPLETION, "{\"prompt\":[[1],[]]}", "prompt[1]", "empty");
    refused(SRV_COMPLETION, "{\"prompt\":[[\"a\"]]}", "prompt[0][0]", NULL);
    refused(SRV_COMPLETION, "{\"prompt\":\"x\",\"best_of\":2}", "best_of", NULL);
    refused(SRV_COMPLETION, "{\"prompt\":\"x\",\"speculative.n_max\":65}", "speculative.n_max",
            NULL);
    refused(SRV_COMPLETION, "{\"prompt\":\"x\",\"speculative.p_min\":2}", "speculative.p_min",
            NULL);
    refused(SRV_COMPLETION, "{\"prompt\":\"x\",\"suffix\":\"y\",\"echo\":true}", "suffix", "echo");
    refused(SRV_COMPLETION, "{\"prompt\":[1],\"suffix\":\"y\"}", "suffix", "text prompt");
    refused(SRV_COMPLETION, "{\"prompt\":\"x\",\"suffix\":[]}", "suffix", NULL);
    refused(SRV_COMPLETION, "{\"prompt\":\"\",\"suffix\":\"\"}", "prompt", "empty");
}

/* tools, tool_choice, tool messages and calls in the history */
#define T(name) "{\"type\":\"function\",\"function\":{\"name\":\"" name "\"}}"
static void test_tools(void) {
    srv_request r;
    srv_error e;
    REQUIRE(parse(SRV_CHAT,
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
                  "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                  "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                  "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\","
                  "\"text\":\"ok\"}]}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                  "\"f\",\"description\":\"d\",\"parameters\":{\"type\":\"object\"},\"strict\":"
                  "true}}," T("g-2") "],\"tool_choice\":{\"type\":\"function\",\"function\":{"
                                     "\"name\":\"g-2\"}},\"parallel_tool_calls\":false}",
                  &r, &e));
    CHECK(r.n_tools == 2 && !strcmp(r.tool_names[1], "g-2") && r.tools && r.tools[0] == '[');
    CHECK(r.tool_choice == SRV_TOOL_NAMED && !strcmp(r.tool_choice_name, "g-2"));
    CHECK(r.parallel_tool_calls == 0);
    CHECK(r.messages[1].n_tool_calls == 1 && !strcmp(r.messages[1].tool_calls[0].id, "c1") &&
          !strcmp(r.messages[1].tool_calls[0].arguments, "{\"a\":1}") &&
          r.messages[1].content_len == 0);
    CHECK(r.messages[2].role == TOK_CHAT_TOOL && !strcmp(r.messages[2].tool_call_id, "c1") &&
          !strcmp(r.messages[2].content, "ok"));
    srv_request_free(&r);
    /* defaults; an empty tools array is no tools */
    REQUIRE(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}",
                  &r, &e));
    CHECK(!r.tools && r.n_tools == 0 && r.tool_choice == SRV_TOOL_AUTO &&
          r.parallel_tool_calls == -1);
    srv_request_free(&r);
#define M "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
    refused(SRV_CHAT, M "\"tools\":{}}", "tools", "array");
    refused(SRV_CHAT, M "\"tools\":[7]}", "tools[0]", "object");
    refused(SRV_CHAT, M "\"tools\":[{\"type\":\"code\"}]}", "tools[0].type", "function");
    refused(SRV_CHAT, M "\"tools\":[{\"type\":\"function\",\"function\":{}}]}",
            "tools[0].function.name", NULL);
    refused(SRV_CHAT, M "\"tools\":[" T("a b") "]}", "tools[0].function.name", "a-z");
    refused(SRV_CHAT, M "\"tools\":[" T("f") "," T("f") "]}", "tools[1].function.name", "twice");
    refused(SRV_CHAT,
            M "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
              "[]}}]}",
            "tools[0].function.parameters", "object");
    refused(SRV_CHAT,
            M "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":"
              "1}}]}",
            "tools[0].function.description", NULL);
    refused(SRV_CHAT, M "\"tools\":[" T("f") "],\"tool_choice\":\"any\"}", "tool_choice", NULL);
    refused(SRV_CHAT, M "\"tools\":[" T("f") "],\"tool_choice\":7}", "tool_choice", NULL);
    refused(SRV_CHAT,
            M "\"tools\":[" T("f") "],\"tool_choice\":{\"type\":\"function\",\"function\":{"
                                   "\"name\":\"g\"}}}",
            "tool_choice.function.name", "no function");
    refused(SRV_CHAT, M "\"tools\":[" T("f") "],\"tool_choice\":{\"type\":\"x\"}}",
            "tool_choice.type", NULL);
    refused(SRV_CHAT, M "\"tool_choice\":\"required\"}", "tool_choice", "tools");
    refused(SRV_CHAT, M "\"tools\":[" T("f") "],\"parallel_tool_calls\":1}", "parallel_tool_calls",
            "boolean");
    refused(SRV_CHAT, M "\"functions\":[{\"name\":\"f\"}]}", "functions", "use 'tools'");
    refused(SRV_CHAT, M "\"function_call\":\"auto\"}", "function_call", NULL);
#undef M
#define A(calls)                                                                                   \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"tool_"         \
    "calls\":" calls "}]}"
    refused(SRV_CHAT, A("[]"), "messages[1].tool_calls", "non-empty");
    refused(SRV_CHAT, A("{}"), "messages[1].tool_calls", NULL);
    refused(SRV_CHAT, A("[{\"id\":1}]"), "messages[1].tool_calls[0].id", NULL);
    refused(SRV_CHAT, A("[{\"id\":\"c\"}]"), "messages[1].tool_calls[0].function", NULL);
    refused(SRV_CHAT, A("[{\"id\":\"c\",\"type\":\"x\",\"function\":{}}]"),
            "messages[1].tool_calls[0].type", NULL);
    refused(SRV_CHAT, A("[{\"id\":\"c\",\"function\":{\"arguments\":\"{}\"}}]"),
            "messages[1].tool_calls[0].function.name", NULL);
    refused(SRV_CHAT, A("[{\"id\":\"c\",\"function\":{\"name\":\"f\"}}]"),
            "messages[1].tool_calls[0].function.arguments", NULL);
    refused(SRV_CHAT, A("[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":{}}}]"),
            "messages[1].tool_calls[0].function.arguments", "string");
    refused(SRV_CHAT, A("[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]"),
            "messages[1].tool_calls[0].function.arguments", "object");
    refused(SRV_CHAT, A("[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]"),
            "messages[1].tool_calls[0].function.arguments", "object");
#undef A
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}",
            "messages[0].tool_calls", "assistant");
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":5}]}",
            "messages[0].tool_call_id", "string");
    refused(SRV_CHAT, "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\"}]}",
            "messages[0].content", "required");
}
#undef T

int main(void) {
    test_utf8();
    test_tools();
    test_chat_valid();
    test_completion_valid();
    test_refused();
    return test_done("test_server_request");
}
