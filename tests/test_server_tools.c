/*
 * test_server_tools.c - a model's reply as tool calls (src/server/tools_parse.c)
 * without a server or a model: the formats (Qwen/Hermes blocks, Llama's bare
 * objects, <|python_tag|>), what stays content (undeclared functions,
 * arguments that are no object, text around), parallel_tool_calls, and a
 * stream replayed byte by byte as sse.c drives the parser: the content sent
 * plus what is sent at the end equals the whole reply's content, the calls
 * are the same, and no piece of a call leaks into the content. Random
 * replies from call-like fragments check that "arguments" is always a JSON
 * object.
 */
#include "test.h"

#include "server/tools.h"

#include <cjson/cJSON.h>

static srv_request request(bool parallel) {
    static char f[] = "get_weather", g[] = "lookup";
    static char *names[] = {f, g};
    static char tools[] = "[]";
    return (srv_request){.kind = SRV_CHAT,
                         .tools = tools,
                         .tool_names = names,
                         .n_tools = 2,
                         .parallel_tool_calls = parallel ? -1 : 0};
}

static srv_tool_reply parse(const srv_request *r, const char *text) {
    srv_tool_reply t;
    REQUIRE(srv_tools_parse(r, text, strlen(text), true, &t));
    return t;
}

/* The reply has the calls named (name:args|name:args...) and the content. */
static void check(const char *what, bool parallel, const char *text, const char *calls,
                  const char *content) {
    srv_request r = request(parallel);
    srv_tool_reply t = parse(&r, text);
    char got[4096] = "";
    for (int k = 0; k < t.n_calls; k++) {
        const size_t n = strlen(got);
        snprintf(got + n, sizeof got - n, "%s%s:%s", k ? "|" : "", t.calls[k].name,
                 t.calls[k].arguments);
        CHECKF(!strncmp(t.calls[k].id, "call_", 5) && strlen(t.calls[k].id) == 29, "%s: id %s",
               what, t.calls[k].id);
    }
    CHECKF(!strcmp(got, calls), "%s: calls '%s', expected '%s'", what, got, calls);
    CHECKF(content ? t.content && !strcmp(t.content, content) : !t.content,
           "%s: content '%s', expected '%s'", what, t.content ? t.content : "(null)",
           content ? content : "(null)");
    if (t.content) CHECK(t.content_len == strlen(t.content));
    srv_tool_reply_free(&t);
}

static void test_formats(void) {
    check("hermes", true,
          "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
          "</tool_call>",
          "get_weather:{\"city\":\"Paris\"}", NULL);
    check("hermes two, text before", true,
          "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
          "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"lookup\", \"arguments\": {}}\n"
          "</tool_call>\n",
          "get_weather:{\"city\":\"Paris\"}|lookup:{}", "Let me look.");
    check("qwen3 think", true,
          "<think>\nhmm\n</think>\n\n<tool_call>\n{\"name\":\"lookup\",\"arguments\":{\"q\":[1,"
          "2.5,\"\\u00e9\"]}}\n</tool_call>",
          "lookup:{\"q\":[1,2.5,\"\xc3\xa9\"]}", "<think>\nhmm\n</think>");
    check("arguments as a string", true,
          "<tool_call>{\"name\": \"lookup\", \"arguments\": \"{\\\"q\\\": 1}\"}</tool_call>",
          "lookup:{\"q\":1}", NULL);
    check("unclosed at the end", true,
          "<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"q\": 1}}", "lookup:{\"q\":1}",
          NULL);
    check("parallel false", false,
          "<tool_call>{\"name\":\"lookup\",\"arguments\":{}}</tool_call><tool_call>{\"name\":"
          "\"get_weather\",\"arguments\":{}}</tool_call>",
          "lookup:{}", NULL);
    /* Llama 3.x: the reply is nothing but call objects */
    check("llama", true, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
          "get_weather:{\"city\":\"Oslo\"}", NULL);
    check("llama python_tag", true,
          " <|python_tag|>{\"name\": \"lookup\", \"parameters\": {}}; {\"name\": \"lookup\", "
          "\"parameters\": {\"q\": 2}}\n",
          "lookup:{}|lookup:{\"q\":2}", NULL);
    /* not calls: the text as it is */
    check("plain", true, "Paris is sunny.  ", "", "Paris is sunny.  ");
    check("json answer", true, "{\"name\": \"Ada\", \"age\": 36}", "",
          "{\"name\": \"Ada\", \"age\": 36}");
    check("llama then text", true, "{\"name\": \"lookup\", \"parameters\": {}} and more", "",
          "{\"name\": \"lookup\", \"parameters\": {}} and more");
    check("undeclared", true, "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>", "",
          "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>");
    check("bad json kept, good one taken", true,
          "<tool_call>{\"name\": \"lookup\", \"arguments\": {</tool_call> <tool_call>{\"name\": "
          "\"lookup\", \"arguments\": {}}</tool_call>",
          "lookup:{}", "<tool_call>{\"name\": \"lookup\", \"arguments\": {</tool_call>");
    check("arguments not an object", true,
          "<tool_call>{\"name\": \"lookup\", \"arguments\": [1]}</tool_call>", "",
          "<tool_call>{\"name\": \"lookup\", \"arguments\": [1]}</tool_call>");
    check("trailing garbage in the block", true,
          "<tool_call>{\"name\": \"lookup\", \"arguments\": {}} x</tool_call>", "",
          "<tool_call>{\"name\": \"lookup\", \"arguments\": {}} x</tool_call>");
    check("empty", true, "", "", "");
    /* not final: only closed blocks count */
    srv_request r = request(true);
    srv_tool_reply t;
    const char *open = "<tool_call>{\"name\": \"lookup\", \"arguments\": {}}";
    REQUIRE(srv_tools_parse(&r, open, strlen(open), false, &t));
    CHECK(t.n_calls == 0 && !t.content);
    srv_tool_reply_free(&t);
    const char *bare = "{\"name\": \"lookup\", \"parameters\": {}}";
    REQUIRE(srv_tools_parse(&r, bare, strlen(bare), false, &t));
    CHECK(t.n_calls == 0);
    srv_tool_reply_free(&t);
}

/* sse.c's use of the parser, replayed on every prefix of text. */
static void check_stream(const char *what, bool parallel, const char *text) {
    srv_request r = request(parallel);
    const size_t len = strlen(text);
    char content[4096] = "";
    size_t sent = 0;
    bool started = false;
    int calls_sent = 0;
    char names[16][64];
    for (size_t n = 1; n <= len; n++) {
        if (!started) {
            bool st;
            const size_t safe = srv_tools_stream_safe(text, n, &st);
            CHECKF(safe >= sent || safe == 0, "%s: safe went back at %zu", what, n);
            if (safe > sent) {
                memcpy(content + sent, text + sent, safe - sent);
                sent = safe;
                content[sent] = '\0';
            }
            started = st;
        }
        if (started) {
            srv_tool_reply t;
            REQUIRE(srv_tools_parse(&r, text, n, false, &t));
            CHECKF(t.n_calls >= calls_sent, "%s: calls went back at %zu", what, n);
            for (; calls_sent < t.n_calls && calls_sent < 16; calls_sent++)
                snprintf(names[calls_sent], sizeof names[0], "%s", t.calls[calls_sent].name);
            srv_tool_reply_free(&t);
        }
    }
    CHECKF(!strstr(content, "<tool_call"), "%s: streamed '%s'", what, content);
    srv_tool_reply whole = parse(&r, text);
    const char *wc = whole.content ? whole.content : "";
    CHECKF(!strncmp(wc, content, sent), "%s: streamed '%s' is not a prefix of '%s'", what, content,
           wc);
    CHECKF(calls_sent <= whole.n_calls, "%s: %d calls streamed, %d in all", what, calls_sent,
           whole.n_calls);
    for (int k = 0; k < calls_sent; k++)
        CHECKF(!strcmp(names[k], whole.calls[k].name), "%s: call %d", what, k);
    srv_tool_reply_free(&whole);
}

static void test_stream(void) {
    check_stream("text only", true, "Hello there, no tools today.\n");
    check_stream("text then calls", true,
                 "Checking < both <b>.\n<tool_call>\n{\"name\": \"lookup\", \"arguments\": {}}\n"
                 "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                 "{\"city\": \"Rome\"}}\n</tool_call>");
    check_stream("llama", true, "{\"name\": \"lookup\", \"parameters\": {\"q\": 3}}");
    check_stream("python tag", true, "<|python_tag|>{\"name\": \"lookup\", \"parameters\": {}}");
    check_stream("almost a tag", true, "a <tool_cal b <tool_call>{\"name\": \"x\"}</tool_call> c");
    check_stream("parallel false", false,
                 "<tool_call>{\"name\":\"lookup\",\"arguments\":{}}</tool_call><tool_call>{"
                 "\"name\":\"lookup\",\"arguments\":{}}</tool_call>");
    /* held back: a cut tag and trailing white space */
    bool st;
    CHECK(srv_tools_stream_safe("ab <tool_", 9, &st) == 2 && !st);
    CHECK(srv_tools_stream_safe("ab  \n", 5, &st) == 2 && !st);
    CHECK(srv_tools_stream_safe("  {\"na", 6, &st) == 0 && st);
    CHECK(srv_tools_stream_safe("<|pyth", 6, &st) == 0 && !st);
    CHECK(srv_tools_stream_safe("x<tool_call>", 12, &st) == 1 && st);
}

/* Replies built from call-like fragments: never a crash, arguments always
 * an object, content + calls account for the reply. */
static void test_random(void) {
    static const char *frag[] = {"<tool_call>",
                                 "</tool_call>",
                                 "{\"name\": \"lookup\"",
                                 ", \"arguments\": ",
                                 "{\"q\": 1}",
                                 "}",
                                 "\n",
                                 "text ",
                                 "<|python_tag|>",
                                 "\"{}\"",
                                 "[",
                                 "{",
                                 "\"",
                                 "; ",
                                 "parameters",
                                 "{\"name\": \"get_weather\", \"parameters\": {}}"};
    unsigned long long rng = 7;
    srv_request r = request(true);
    for (int it = 0; it < 3000; it++) {
        char text[1024] = "";
        const int n = 1 + (int)(test_rand_u64(&rng) % 12);
        for (int k = 0; k < n; k++) {
            const char *f = frag[test_rand_u64(&rng) % (sizeof frag / sizeof frag[0])];
            if (strlen(text) + strlen(f) < sizeof text) strcat(text, f);
        }
        srv_tool_reply t = parse(&r, text);
        for (int k = 0; k < t.n_calls; k++) {
            cJSON *a = cJSON_Parse(t.calls[k].arguments);
            CHECKF(cJSON_IsObject(a), "arguments '%s' of '%s'", t.calls[k].arguments, text);
            cJSON_Delete(a);
        }
        if (!t.n_calls) CHECKF(t.content && !strcmp(t.content, text), "content of '%s'", text);
        srv_tool_reply_free(&t);
        bool st;
        (void)srv_tools_stream_safe(text, strlen(text), &st);
    }
}

int main(void) {
    test_formats();
    test_stream();
    test_random();
    return test_done("test_server_tools");
}
