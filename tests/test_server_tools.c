/*
 * test_server_tools.c - a model's reply as tool calls (src/server/tools_parse.c)
 * without a server or a model: the formats (Qwen/Hermes blocks, Llama's bare
 * objects, <|python_tag|>), what stays content (undeclared functions,
 * arguments that are no object, text around), parallel_tool_calls, and a
 * stream replayed byte by byte as sse.c drives the parser: the content sent
 * plus what is sent at the end equals the whole reply's content, the calls
 * are the same, and no piece of a call leaks into the content. Random
 * replies from call-like fragments check that "arguments" is always a JSON
 * object. The schema of a forced call (tools_constrain.c): it compiles for
 * ordinary tools, admits calls to the allowed functions with valid
 * arguments and nothing else (tests/json_schema_validate.h, an independent
 * validator), and falls back to any object for parameters it cannot
 * enforce; tool_choice required with response_format is a 400.
 */
#include "test.h"

#include "json_schema_validate.h"
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

/* The reply to r has the calls named (name:args|name:args...) and the content. */
static void check_req(const char *what, const srv_request *r, const char *text, const char *calls,
                      const char *content) {
    srv_tool_reply t = parse(r, text);
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

static void check(const char *what, bool parallel, const char *text, const char *calls,
                  const char *content) {
    const srv_request r = request(parallel);
    check_req(what, &r, text, calls, content);
}

/* Qwen3.5's XML calls: values typed by the functions' schemas (a declared
 * string stays one, else JSON when it reads as JSON), the template's
 * newlines around a value dropped. */
static void test_xml(void) {
    srv_request r = request(true);
    char tools[] = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
                   "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"zip\":"
                   "{\"type\":[\"string\",\"null\"]},\"days\":{\"type\":\"integer\"}}}}}]";
    r.tools = tools;
    check_req("xml", &r,
              "Checking.\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n"
              "</parameter>\n<parameter=zip>\n10001\n</parameter>\n<parameter=days>\n3\n"
              "</parameter>\n</function>\n</tool_call>",
              "get_weather:{\"city\":\"New York\",\"zip\":\"10001\",\"days\":3}", "Checking.");
    check_req("xml values: json, text, lines", &r,
              "<tool_call>\n<function=lookup>\n<parameter=q>\n{\"a\": [1, true]}\n</parameter>\n"
              "<parameter=note>\ntwo\nlines\n</parameter>\n<parameter=n>\n2.5\n</parameter>\n"
              "</function>\n</tool_call>",
              "lookup:{\"q\":{\"a\":[1,true]},\"note\":\"two\\nlines\",\"n\":2.5}", NULL);
    check_req("xml no parameters, two calls", &r,
              "<tool_call>\n<function=lookup>\n</function>\n</tool_call>\n<tool_call>\n"
              "<function=get_weather>\n<parameter=city>\n7\n</parameter>\n</function>\n"
              "</tool_call>",
              "lookup:{}|get_weather:{\"city\":\"7\"}", NULL);
    static const char twice[] = /* a key twice */
        "<tool_call>\n<function=lookup>\n<parameter=q>\n1\n</parameter>\n<parameter=q>\n2\n"
        "</parameter>\n</function>\n</tool_call>";
    const char *kept[] = {
        "<tool_call>\n<function=rm_rf>\n</function>\n</tool_call>", /* undeclared */
        "<tool_call>\n<function=lookup>\n<parameter=q>\n1\n</function>\n</tool_call>", twice,
        "<tool_call>\n<function=lookup>\n</function> x\n</tool_call>",
        "<tool_call>\n<function=lookup\n>\n</function>\n</tool_call>"};
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++)
        check_req("xml not a call", &r, kept[k], "", kept[k]);
}

/* LFM2's Python-style list of calls: keyword arguments, Python and JSON
 * literals, several calls in one block; a list holding anything that is no
 * call of a declared function stays content whole. */
static void test_lfm2(void) {
    check("lfm2", true,
          "<|tool_call_start|>[get_weather(city=\"Paris\", days=3)]<|tool_call_end|>Checking "
          "Paris.",
          "get_weather:{\"city\":\"Paris\",\"days\":3}", "Checking Paris.");
    check("lfm2 two calls, literals", true,
          "<|tool_call_start|>[lookup(q='it\\'s \\u00e9', n=-2.5e1, ok=True, no=None, "
          "l=[1, (2, 3)], d={'a': false, \"b\": {}}), get_weather()]<|tool_call_end|>",
          "lookup:{\"q\":\"it's \xc3\xa9\",\"n\":-2.5e1,\"ok\":true,\"no\":null,\"l\":[1,[2,3]],"
          "\"d\":{\"a\":false,\"b\":{}}}|get_weather:{}",
          NULL);
    check("lfm2 parallel false", false,
          "<|tool_call_start|>[lookup(), get_weather(city=\"Oslo\")]<|tool_call_end|>", "lookup:{}",
          NULL);
    check("lfm2 forced: the JSON object", true,
          "<|tool_call_start|>{\"name\": \"lookup\", \"arguments\": {\"q\": 1}}"
          "<|tool_call_end|>",
          "lookup:{\"q\":1}", NULL);
    const char *kept[] = {
        "<|tool_call_start|>[lookup(), rm_rf()]<|tool_call_end|>", /* one undeclared */
        "<|tool_call_start|>[lookup(q=1, q=2)]<|tool_call_end|>",  /* a key twice */
        "<|tool_call_start|>[lookup(1)]<|tool_call_end|>",         /* positional */
        "<|tool_call_start|>[lookup(q=x)]<|tool_call_end|>",       /* a bare word */
        "<|tool_call_start|>[lookup(q='open)]<|tool_call_end|>",   /* unclosed string */
        "<|tool_call_start|>[lookup()] and more<|tool_call_end|>", /* text after the list */
        "<|tool_call_start|>[]<|tool_call_end|>",                  /* no call */
        "<|tool_call_start|>[lookup(d={1: 2})]<|tool_call_end|>"}; /* a key that is no string */
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++)
        check("lfm2 not a call", true, kept[k], "", kept[k]);
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
    check("python dict (Falcon-H1-7B's schema)", true,
          "<tool_call>\n{'arguments': {'city': 'Paris', 'days': 2, 'metric': True}, 'name': "
          "'get_weather'}\n</tool_call>",
          "get_weather:{\"city\":\"Paris\",\"days\":2,\"metric\":true}", NULL);
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
    /* Mistral: [TOOL_CALLS] then a JSON array of calls (or the array alone) */
    check("mistral", true,
          "[TOOL_CALLS] [{\"name\": \"lookup\", \"arguments\": {\"q\": 1}}, {\"name\": "
          "\"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
          "lookup:{\"q\":1}|get_weather:{\"city\":\"Paris\"}", NULL);
    check("mistral tekken", true, "[TOOL_CALLS][{\"name\":\"lookup\",\"arguments\":{}}]\n",
          "lookup:{}", NULL);
    check("mistral array alone", true, " [{\"name\": \"lookup\", \"arguments\": {}}]", "lookup:{}",
          NULL);
    check("mistral parallel false", false,
          "[TOOL_CALLS][{\"name\":\"lookup\",\"arguments\":{}},{\"name\":\"get_weather\","
          "\"arguments\":{}}]",
          "lookup:{}", NULL);
    /* not Mistral calls: an open array, text after it, an element that is no call */
    check("mistral open", true, "[TOOL_CALLS][{\"name\":\"lookup\",\"arguments\":{}}", "",
          "[TOOL_CALLS][{\"name\":\"lookup\",\"arguments\":{}}");
    check("mistral then text", true, "[{\"name\":\"lookup\",\"arguments\":{}}] done", "",
          "[{\"name\":\"lookup\",\"arguments\":{}}] done");
    check("mistral not a call", true, "[{\"name\":\"lookup\",\"arguments\":{}}, 3]", "",
          "[{\"name\":\"lookup\",\"arguments\":{}}, 3]");
    /* Ministral 3: [TOOL_CALLS]NAME[ARGS]{...} to the end of the reply, [TOOL_CALLS] before
       each further call, text before them allowed; all or none */
    check("ministral3", true, "Let me check.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
          "get_weather:{\"city\":\"Paris\"}", "Let me check.");
    check("ministral3 two", true,
          "[TOOL_CALLS]lookup[ARGS]{}\n[TOOL_CALLS] get_weather[ARGS]{\"city\":\"[ARGS]\",\"n\":"
          "[1,2]}\n",
          "lookup:{}|get_weather:{\"city\":\"[ARGS]\",\"n\":[1,2]}", NULL);
    check("ministral3 parallel false", false,
          "[TOOL_CALLS]lookup[ARGS]{}[TOOL_CALLS]get_weather[ARGS]{}", "lookup:{}", NULL);
    check("ministral3 forced: the JSON object", true,
          "[TOOL_CALLS]{\"name\": \"lookup\", \"arguments\": {\"q\": 1}}", "lookup:{\"q\":1}",
          NULL);
    const char *m3_kept[] = {
        "[TOOL_CALLS]lookup[ARGS]{}[TOOL_CALLS]rm_rf[ARGS]{}", /* one undeclared */
        "So: [TOOL_CALLS]lookup[ARGS]{} and more",             /* text after the calls */
        "[TOOL_CALLS]lookup[ARGS]3",                           /* arguments no object */
        "[TOOL_CALLS]lookup {}",                               /* no [ARGS] */
        "[TOOL_CALLS]lookup[ARGS]{\"q\":",                     /* cut off */
        "[TOOL_CALLS]",                                        /* nothing */
        "[TOOL_CALLS]lookup[ARGS]{}[TOOL_CALLS]"};             /* a tag without a call */
    for (size_t k = 0; k < sizeof m3_kept / sizeof m3_kept[0]; k++)
        check("ministral3 not a call", true, m3_kept[k], "", m3_kept[k]);
    check("empty array", true, "[]", "", "[]");
    check("semicolons in an array", true,
          "[{\"name\":\"lookup\",\"arguments\":{}}; {\"name\":\"lookup\",\"arguments\":{}}]", "",
          "[{\"name\":\"lookup\",\"arguments\":{}}; {\"name\":\"lookup\",\"arguments\":{}}]");
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

/* A stream's pieces at the prefixes step, 2 step, ... of text as a log
 * ("c[content]" and "k[name:arguments]" in order): with the cursor
 * (srv_tools_stream_*, as sse.c drives it) or from scratch on the whole
 * prefix every time (srv_tools_stream_safe and a parse that is not final,
 * as sse.c did before it had the cursor). Both must send the same. */
static void stream_log(const srv_request *r, const char *text, size_t step, bool cursor, char *log,
                       size_t cap) {
    const size_t len = strlen(text);
    const srv_tool_set set = srv_tool_set_of(r);
    srv_tools_stream cur = {0};
    size_t sent = 0;
    bool started = false;
    int calls_sent = 0;
    log[0] = '\0';
    /* every step-th prefix, and the whole reply last */
    for (size_t n = step < len ? step : len; n <= len; n = n == len         ? len + 1
                                                           : n + step < len ? n + step
                                                                            : len) {
        if (!started) {
            const size_t safe = cursor ? srv_tools_stream_content(&cur, text, n, sent)
                                       : srv_tools_stream_safe(text, n, &started);
            if (cursor) started = cur.call_started;
            if (safe > sent) {
                const size_t l = strlen(log);
                snprintf(log + l, cap - l, "c[%.*s]", (int)(safe - sent), text + sent);
                sent = safe;
            }
        }
        if (!started) continue;
        srv_tool_reply t;
        if (cursor)
            REQUIRE(srv_tools_stream_calls(&cur, &set, text, n, &t));
        else
            REQUIRE(srv_tools_parse(r, text, n, false, &t));
        CHECK(!t.content);
        for (int k = cursor ? 0 : calls_sent; k < t.n_calls; k++, calls_sent++) {
            const size_t l = strlen(log);
            snprintf(log + l, cap - l, "k[%s:%s]", t.calls[k].name, t.calls[k].arguments);
        }
        srv_tool_reply_free(&t);
    }
}

static void check_cursor(const char *what, bool parallel, const char *text) {
    const srv_request r = request(parallel);
    static const size_t steps[] = {1, 2, 3, 5, 11, 64, 100000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char want[8192], got[8192];
        stream_log(&r, text, steps[i], false, want, sizeof want);
        stream_log(&r, text, steps[i], true, got, sizeof got);
        CHECKF(!strcmp(want, got), "%s, step %zu: cursor sent '%s', from scratch '%s'", what,
               steps[i], got, want);
    }
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
    check_stream("mistral", true,
                 "[TOOL_CALLS] [{\"name\": \"lookup\", \"arguments\": {}}, {\"name\": "
                 "\"lookup\", \"arguments\": {\"q\": 2}}]");
    check_stream("ministral3", true,
                 "Sure.[TOOL_CALLS]lookup[ARGS]{\"q\": \"[TOOL_CALLS]\"}[TOOL_CALLS]get_weather"
                 "[ARGS]{}");
    check_stream("bracket text", true, "[Note] a [link](x) and [{ more");
    check_stream("lfm2", true,
                 "Sure. <|tool_call_start|>[lookup(q=\"a]b)\"), get_weather(city='x')]"
                 "<|tool_call_end|> done");
    check_stream("almost a tag", true, "a <tool_cal b <tool_call>{\"name\": \"x\"}</tool_call> c");
    check_stream("parallel false", false,
                 "<tool_call>{\"name\":\"lookup\",\"arguments\":{}}</tool_call><tool_call>{"
                 "\"name\":\"lookup\",\"arguments\":{}}</tool_call>");
    /* the cursor sends what a parse of every prefix from scratch sends */
    check_cursor("text only", true, "Hello there, no tools today.\n  ");
    check_cursor("text then calls", true,
                 "Checking < both <b>.\n<tool_call>\n{\"name\": \"lookup\", \"arguments\": {}}\n"
                 "</tool_call> mid <tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                 "{\"city\": \"</tool\"}}\n</tool_call><tool_call>{\"name\": \"x\"}</tool_call>"
                 "<tool_call>{\"name\": \"lookup\", \"arguments\": {\"q\": 1}}</tool_call> end");
    check_cursor("llama", true, "  {\"name\": \"lookup\", \"parameters\": {\"q\": 3}}");
    check_cursor("python tag", true, "<|python_tag|>{\"name\": \"lookup\", \"parameters\": {}}");
    check_cursor("mistral", true, "[TOOL_CALLS][{\"name\": \"lookup\", \"arguments\": {}}]");
    check_cursor("ministral3", true,
                 "a [TOOL_C b [TOOL_CALLS]lookup[ARGS]{\"q\": 1}[TOOL_CALLS]lookup[ARGS]{}");
    check_cursor("bracket text", true, "[Note] a [{ not a call");
    check_cursor("lfm2", true,
                 "a <|tool_call_st b <|tool_call_start|>[lookup(q=1)]<|tool_call_end|> c "
                 "<|tool_call_start|>[nope()]<|tool_call_end|>");
    check_cursor("python tag, no", true,
                 "<|pythonic <tool_call>{\"name\": \"lookup\", "
                 "\"arguments\": {}}</tool_call>");
    check_cursor("bare then tagged", true,
                 "{\"a\": 1} <tool_call>{\"name\": \"lookup\", "
                 "\"arguments\": {}}</tool_call>");
    check_cursor("almost a tag", true, "a <tool_cal b <tool_call>{\"name\": \"x\"}</tool_call> c");
    check_cursor("parallel false", false,
                 "<tool_call>{\"name\":\"lookup\",\"arguments\":{}}</tool_call><tool_call>{"
                 "\"name\":\"lookup\",\"arguments\":{}}</tool_call>");
    /* held back: a cut tag and trailing white space */
    bool st;
    CHECK(srv_tools_stream_safe("ab <tool_", 9, &st) == 2 && !st);
    CHECK(srv_tools_stream_safe("ab  \n", 5, &st) == 2 && !st);
    CHECK(srv_tools_stream_safe("  {\"na", 6, &st) == 0 && st);
    CHECK(srv_tools_stream_safe("<|pyth", 6, &st) == 0 && !st);
    CHECK(srv_tools_stream_safe("[TOOL_C", 7, &st) == 0 && !st);
    CHECK(srv_tools_stream_safe("[TOOL_CALLS]", 12, &st) == 0 && st);
    CHECK(srv_tools_stream_safe("[", 1, &st) == 0 && !st);
    CHECK(srv_tools_stream_safe(" [{", 3, &st) == 0 && st);
    CHECK(srv_tools_stream_safe("[No", 3, &st) == 3 && !st);
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
                                 "{\"name\": \"get_weather\", \"parameters\": {}}",
                                 "<|tool_call_start|>",
                                 "<|tool_call_end|>",
                                 "lookup(",
                                 "q='a'",
                                 ")",
                                 "]",
                                 ", ",
                                 "[TOOL_CALLS]",
                                 "[ARGS]",
                                 "lookup"};
    unsigned long long rng = 7;
    srv_request r = request(true);
    for (int it = 0; it < 6000; it++) {
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
        if (it % 10 == 0) check_cursor("random", it % 20 == 0, text);
    }
}

/* At most SRV_MAX_TOOL_CALLS calls from a reply: a block past them stays
 * content, whole and streamed. */
static void test_cap(void) {
    static const char call[] = "<tool_call>{\"name\":\"lookup\",\"arguments\":{}}</tool_call>";
    const size_t n = SRV_MAX_TOOL_CALLS + 2, cl = sizeof call - 1;
    char *text = malloc(n * cl + 1);
    REQUIRE(text);
    for (size_t k = 0; k < n; k++) memcpy(text + k * cl, call, cl);
    text[n * cl] = '\0';
    srv_request r = request(true);
    srv_tool_reply t = parse(&r, text);
    CHECKF(t.n_calls == SRV_MAX_TOOL_CALLS, "%d calls", t.n_calls);
    CHECKF(t.content && t.content_len == 2 * cl && !memcmp(t.content, call, cl) &&
               !memcmp(t.content + cl, call, cl),
           "content '%s'", t.content ? t.content : "(null)");
    srv_tool_reply_free(&t);
    /* streamed: the cursor takes as many, the rest comes at the end as content */
    const srv_tool_set set = srv_tool_set_of(&r);
    srv_tools_stream cur = {0};
    int streamed = 0;
    for (size_t k = 1; k <= n; k++) {
        (void)srv_tools_stream_content(&cur, text, k * cl, 0);
        REQUIRE(cur.call_started);
        REQUIRE(srv_tools_stream_calls(&cur, &set, text, k * cl, &t));
        streamed += t.n_calls;
        srv_tool_reply_free(&t);
    }
    CHECK(streamed == SRV_MAX_TOOL_CALLS);
    free(text);
    /* LFM2's lists of two: the last whole list that fits is taken, one past the cap stays */
    static const char pair[] = "<|tool_call_start|>[lookup(), lookup(q=1)]<|tool_call_end|>";
    const size_t np = SRV_MAX_TOOL_CALLS / 2 + 1, pl = sizeof pair - 1;
    REQUIRE((text = malloc(np * pl + 1)));
    for (size_t k = 0; k < np; k++) memcpy(text + k * pl, pair, pl);
    text[np * pl] = '\0';
    t = parse(&r, text);
    CHECKF(t.n_calls == 2 * (int)(np - 1) && t.content && t.content_len == pl &&
               !memcmp(t.content, pair, pl),
           "lfm2: %d calls, content '%s'", t.n_calls, t.content ? t.content : "(null)");
    srv_tool_reply_free(&t);
    free(text);
}

static const char schema_tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"W\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
    "\"description\":\"a city\"},\"unit\":{\"enum\":[\"c\",\"f\"]},\"days\":{\"type\":"
    "\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
    "\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"parameters\":{\"type\":"
    "\"object\",\"properties\":{\"q\":{\"type\":\"string\"},\"opts\":{\"type\":\"object\","
    "\"properties\":{\"n\":{\"type\":[\"integer\",\"null\"]}},\"additionalProperties\":"
    "false}},\"required\":[\"q\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]";

/* schema admits text (valid JSON Schema instance) or not. */
static void admits(const char *what, const char *schema, const char *text, bool want) {
    CHECKF(jv_check(schema, text, strlen(text)) == want, "%s: '%s' %s", what, text,
           want ? "refused" : "admitted");
}

static void test_schema(void) {
    bool partial = true;
    char *s = srv_tools_schema(schema_tools, NULL, "arguments", &partial);
    REQUIRE(s);
    CHECKF(hearth_json_schema_check(s) == HEARTH_OK, "all: %s: %s", hearth_last_error(), s);
    CHECK(!partial);
    admits("all", s, "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\",\"unit\":\"c\"}}",
           true);
    admits("all", s, "{\"name\":\"lookup\",\"arguments\":{\"q\":\"x\",\"opts\":{\"n\":null}}}",
           true);
    admits("all", s, "{\"name\":\"now\",\"arguments\":{}}", true);
    admits("all: undeclared", s, "{\"name\":\"rm\",\"arguments\":{}}", false);
    admits("all: no arguments", s, "{\"name\":\"now\"}", false);
    admits("all: missing required", s, "{\"name\":\"lookup\",\"arguments\":{}}", false);
    admits("all: bad enum", s,
           "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"a\",\"unit\":\"k\"}}", false);
    admits("all: arguments of another", s, "{\"name\":\"get_weather\",\"arguments\":{\"q\":\"x\"}}",
           false);
    admits("all: none takes none", s, "{\"name\":\"now\",\"arguments\":{\"a\":1}}", false);
    admits("all: extra key", s, "{\"name\":\"now\",\"arguments\":{},\"x\":1}", false);
    admits("all: llama key", s, "{\"name\":\"now\",\"parameters\":{}}", false);
    free(s);
    /* named: that function only; Llama's key */
    s = srv_tools_schema(schema_tools, "lookup", "parameters", &partial);
    REQUIRE(s);
    CHECKF(hearth_json_schema_check(s) == HEARTH_OK, "named: %s", hearth_last_error());
    CHECK(!partial && !strstr(s, "anyOf"));
    admits("named", s, "{\"name\":\"lookup\",\"parameters\":{\"q\":\"x\"}}", true);
    admits("named: other", s, "{\"name\":\"now\",\"parameters\":{}}", false);
    admits("named: key", s, "{\"name\":\"lookup\",\"arguments\":{\"q\":\"x\"}}", false);
    free(s);
    /* parameters the constraint cannot enforce: that function's arguments
     * are any object, the others keep their schema */
    static const char loose[] =
        "[{\"type\":\"function\",\"function\":{\"name\":\"when\",\"parameters\":{\"type\":"
        "\"object\",\"properties\":{\"d\":{\"type\":\"string\",\"format\":\"date\"},\"n\":{"
        "\"type\":\"integer\",\"minimum\":1}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"ref\",\"parameters\":{\"type\":"
        "\"object\",\"properties\":{\"p\":{\"$ref\":\"#/$defs/P\"}},\"$defs\":{\"P\":{"
        "\"type\":\"string\"}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"arr\",\"parameters\":{\"type\":"
        "\"array\"}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"ok\",\"parameters\":{\"type\":"
        "\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"}},\"required\":[\"a\"]}}}]";
    s = srv_tools_schema(loose, NULL, "arguments", &partial);
    REQUIRE(s);
    CHECKF(hearth_json_schema_check(s) == HEARTH_OK, "loose: %s", hearth_last_error());
    CHECK(partial);
    admits("loose", s, "{\"name\":\"when\",\"arguments\":{\"d\":\"x\",\"n\":0,\"z\":[]}}", true);
    admits("loose", s, "{\"name\":\"ref\",\"arguments\":{\"p\":1}}", true);
    admits("loose", s, "{\"name\":\"arr\",\"arguments\":{}}", true);
    admits("loose: still an object", s, "{\"name\":\"arr\",\"arguments\":[]}", false);
    admits("loose: enforced one", s, "{\"name\":\"ok\",\"arguments\":{\"a\":true}}", true);
    admits("loose: enforced one", s, "{\"name\":\"ok\",\"arguments\":{\"a\":1}}", false);
    admits("loose: undeclared", s, "{\"name\":\"nope\",\"arguments\":{}}", false);
    free(s);
    s = srv_tools_schema(loose, "ok", "arguments", &partial);
    CHECK(s && !partial);
    free(s);
    /* more functions than the recognizer follows at once: names only */
    char many[8192] = "[";
    for (int k = 0; k < 40; k++) {
        const size_t n = strlen(many);
        snprintf(many + n, sizeof many - n,
                 "%s{\"type\":\"function\",\"function\":{\"name\":\"f%d\",\"parameters\":{"
                 "\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}}}}",
                 k ? "," : "", k);
    }
    strcat(many, "]");
    s = srv_tools_schema(many, NULL, "arguments", &partial);
    REQUIRE(s);
    CHECKF(hearth_json_schema_check(s) == HEARTH_OK, "many: %s", hearth_last_error());
    CHECK(partial);
    admits("many", s, "{\"name\":\"f39\",\"arguments\":{\"y\":\"z\"}}", true);
    admits("many", s, "{\"name\":\"f40\",\"arguments\":{}}", false);
    free(s);
    s = srv_tools_schema(many, "f33", "arguments", &partial);
    CHECK(s && !partial);
    if (s) admits("many named", s, "{\"name\":\"f33\",\"arguments\":{\"x\":\"z\"}}", false);
    free(s);
    CHECK(!strcmp(srv_tools_call_prefix(TOK_TOOLS_HERMES), "<tool_call>\n") &&
          !strcmp(srv_tools_call_prefix(TOK_TOOLS_GENERIC), "<tool_call>\n") &&
          !strcmp(srv_tools_call_prefix(TOK_TOOLS_LLAMA3), ""));
    /* what the constrained reply looks like is read as one call */
    srv_request r = request(false);
    const char *reply = " {\"name\": \"lookup\", \"arguments\": {\"q\": \"x\"}}";
    srv_tool_reply t = parse(&r, reply);
    CHECK(t.n_calls == 1 && !t.content && !strcmp(t.calls[0].arguments, "{\"q\":\"x\"}"));
    srv_tool_reply_free(&t);
}

/* The request side: which choices are forced, and response_format beside them. */
static void test_forced_request(void) {
    static const char *const cases[][2] = {
        {"\"tool_choice\":\"required\"", "1"},
        {"\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "1"},
        {"\"tool_choice\":\"auto\"", "0"},
        {"\"tool_choice\":\"none\"", "0"},
        {"\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_object\"}", "400"},
        {"\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_schema\","
         "\"json_schema\":{\"schema\":{\"type\":\"object\"}}}",
         "400"},
        {"\"tool_choice\":\"auto\",\"response_format\":{\"type\":\"json_object\"}", "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                 "\"function\",\"function\":{\"name\":\"f\"}}],%s}",
                 cases[i][0]);
        srv_request r;
        srv_error e;
        const bool ok = srv_parse_request(SRV_CHAT, body, strlen(body), &r, &e);
        if (!strcmp(cases[i][1], "400")) {
            CHECKF(!ok && e.status == 400 && !strcmp(e.param, "response_format"), "%s",
                   cases[i][0]);
            continue;
        }
        REQUIRE(ok);
        CHECKF(srv_tools_forced(&r) == (cases[i][1][0] == '1'), "%s", cases[i][0]);
        REQUIRE(srv_tools_constrain(&r, TOK_TOOLS_GENERIC, &e));
        CHECKF((r.tool_schema != NULL) == srv_tools_forced(&r), "%s", cases[i][0]);
        if (r.tool_schema)
            CHECK(r.sampling.constraint == HEARTH_CONSTRAINT_JSON_SCHEMA &&
                  r.sampling.json_schema == r.tool_schema);
        srv_request_free(&r);
    }
}

int main(void) {
    test_schema();
    test_forced_request();
    test_formats();
    test_xml();
    test_lfm2();
    test_stream();
    test_random();
    test_cap();
    return test_done("test_server_tools");
}
