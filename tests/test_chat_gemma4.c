/*
 * test_chat_gemma4.c - Gemma 4 (google/gemma-4-*-it): its chat template
 * recognized and rendered (tokenizer/chat_template.c, chat_tools.c), its
 * reply's thinking channel split off (engine/think.c) and its tool calls
 * parsed (server/tools_parse.c).
 *
 * The expected prompts were not worked out by hand: they are what the real
 * template (llama.cpp's models/templates/google-gemma-4-31B-it.jinja, the
 * updated official one) printed under Python's jinja2 with Hugging Face's
 * settings (trim_blocks, lstrip_blocks, bos_token "<bos>"), byte for byte,
 * for the same messages; a call's arguments were given as a mapping, as
 * llama.cpp passes them to this template. enable_thinking absent there is
 * no_thinking here. Where Hearth departs from the template on purpose, the
 * case says so.
 */
#include "test.h"
#include "tokenizer/chat_template.h"

#include "engine/think.h"
#include "server/tools.h"

#include <stdlib.h>
#include <string.h>

#define MSG(r, s)                                                                                  \
    { TOK_CHAT_##r, s, sizeof(s) - 1 }
#define N(a) (sizeof(a) / sizeof(a)[0])

/* get_weather: every parameter kind the template prints differently */
#define TOOL_WEATHER                                                                               \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in "  \
    "a "                                                                                           \
    "city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","    \
    "\"description\":\"The city\"},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7.5}," \
    "\"units\":{\"type\":\"string\",\"enum\":[\"C\",\"F\"]},\"exact\":{\"type\":\"boolean\","      \
    "\"nullable\":true},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"             \
    "\"description\":\"Labels\"},\"Zone\":{\"type\":\"number\"},\"where\":{\"type\":\"object\","   \
    "\"properties\":{\"lat\":{\"type\":\"number\",\"description\":\"Latitude\"},\"lon\":{"         \
    "\"type\":"                                                                                    \
    "\"number\"}},\"required\":[\"lat\"]},\"pts\":{\"type\":\"array\",\"items\":{\"type\":"        \
    "\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}},\"required\":[\"x\"]}}},"            \
    "\"required\":[\"city\",\"days\"]}}}"
#define TOOL_NOW                                                                                   \
    "{\"type\":\"function\",\"function\":{\"name\":\"now\",\"description\":\"The time\","          \
    "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}"
static const char tools_weather[] = "[" TOOL_WEATHER "]";
static const char tools_two[] = "[" TOOL_WEATHER "," TOOL_NOW "]";
/* tools without parameters, with type lists, integer enums, a bare object */
static const char tools_all[] =
    "[" TOOL_WEATHER "," TOOL_NOW
    ",{\"type\":\"function\",\"function\":{\"name\":\"noargs\",\"description\":\"Nothing\"}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"anyobj\",\"description\":\"Any\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"o\":{\"type\":\"object\"},\"m\":"
    "{\"type\":[\"string\",\"null\"]},\"e\":{\"type\":\"integer\",\"enum\":[1,2]},\"l\":{\"type\":"
    "\"array\",\"items\":{\"type\":[\"string\",\"integer\"],\"enum\":[\"a\",1]}}}}}}]";

static const tok_chat_tool_call call_weather = {
    "call_1", "get_weather",
    "{\"city\":\"Paris\",\"units\":\"\\u00b0C\",\"days\":3,\"exact\":true,\"extra\":null,"
    "\"opts\":{\"b\":[1,2.5,\"x\"],\"A\":{\"k\":\"v\"}},\"Zone\":1e-05,\"big\":123456789012}"};
static const tok_chat_tool_call calls_two[] = {
    {"call_1", "get_weather",
     "{\"city\":\"Paris\",\"units\":\"\\u00b0C\",\"days\":3,\"exact\":true,\"extra\":null,"
     "\"opts\":{\"b\":[1,2.5,\"x\"],\"A\":{\"k\":\"v\"}},\"Zone\":1e-05,\"big\":123456789012}"},
    {"call_2", "now", "{}"}};

/* the declaration and the call the template prints for them */
#define DECL_WEATHER                                                                               \
    "<|tool>declaration:get_weather{description:<|\"|>Weather in a "                               \
    "city<|\"|>,parameters:{properties:{city:{description:<|\"|>"                                  \
    "The "                                                                                         \
    "city<|\"|>,type:<|\"|>STRING<|\"|>},days:{type:<|\"|>INTEGER<|\"|>},exact:{nullable:true,"    \
    "type:<|\"|>BOOLEAN<|\"|>},pts:{items:{properties:{x:{type:<|\"|>INTEGER<|\"|>}},required:[<|" \
    "\"|>"                                                                                         \
    "x<|\"|>],type:<|\"|>OBJECT<|\"|>},type:<|\"|>ARRAY<|\"|>},tags:{description:<|\"|>Labels<|"   \
    "\"|>"                                                                                         \
    ",items:{type:<|\"|>STRING<|\"|>},type:<|\"|>ARRAY<|\"|>},units:{enum:[<|\"|>C<|\"|>,<|\"|>"   \
    "F<|\"|>],type:<|\"|>STRING<|\"|>},where:{properties:{lat:{description:<|\"|>Latitude<|\"|>"   \
    ",type:<|\"|>NUMBER<|\"|>},lon:{type:<|\"|>NUMBER<|\"|>}},required:[<|\"|>lat<|\"|>],type:<|"  \
    "\"|>"                                                                                         \
    "OBJECT<|\"|>},Zone:{type:<|\"|>NUMBER<|\"|>}},required:[<|\"|>city<|\"|>,<|\"|>days<|\"|>"    \
    "],type:<|\"|>OBJECT<|\"|>}}<tool|>"
#define CALL_WEATHER                                                                               \
    "<|tool_call>call:get_weather{big:123456789012,city:<|\"|>Paris<|\"|>,days:3,exact:true,"      \
    "extra:None,opts:{A:{k:<|\"|>v<|\"|>},b:[1,2.5,<|\"|>x<|\"|>]},units:<|\"|>\xc2"               \
    "\xb0"                                                                                         \
    "C<|\"|>"                                                                                      \
    ",Zone:1e-05}<tool_call|>"

static tok_chat_template gemma4(void) {
    tok_chat_template t;
    REQUIRE(tok_chat_named("gemma4", &t) == HEARTH_OK);
    return t;
}

static void check(const char *what, const tok_chat_msg *m, size_t n, const char *tools,
                  const tok_chat_msg_tools *mt, bool thinking, bool gen, const char *expected) {
    const tok_chat_template t = gemma4();
    tok_chat_opts o = {.bos = "<bos>",
                       .eos = "<eos>",
                       .add_generation_prompt = gen,
                       .tools = tools,
                       .msg_tools = mt,
                       .no_thinking = !thinking};
    char *out = NULL;
    size_t len = 0;
    const hearth_err err = tok_chat_render(&t, m, n, &o, &out, &len);
    CHECK(err == HEARTH_OK);
    if (err == HEARTH_OK) {
        const bool same = len == strlen(expected) && !memcmp(out, expected, len);
        if (!same)
            fprintf(stderr, "%s:\n--- got ---\n%s\n--- expected ---\n%s\n", what, out, expected);
        CHECK(same);
    }
    free(out);
}

static void test_detect(void) {
    /* the lines of the template the recognition reads */
    static const char tmpl[] =
        "{{- bos_token -}}{%- if (enable_thinking is defined and enable_thinking) or tools or "
        "messages[0]['role'] in ['system', 'developer'] -%}{{- '<|turn>system\\n' -}}"
        "{{- '<|turn>' + role + '\\n' }}{{- '<|tool_call>call:' + function['name'] + '{' -}}"
        "{{- '<turn|>\\n' -}}{{- '<|channel>thought\\n<channel|>' -}}";
    tok_chat_template t;
    REQUIRE(tok_chat_detect(tmpl, sizeof tmpl - 1, &t) == HEARTH_OK);
    CHECK(t.family == TOK_CHAT_GEMMA4 && t.tools == TOK_TOOLS_GEMMA4 && !strcmp(t.name, "gemma4"));
    CHECK(t.bos && t.think && t.think_toggle && !t.think_open);
    CHECK(!tok_chat_opens_think(&t, false) && !tok_chat_opens_think(&t, true));
    /* Gemma 3's is still Gemma 3's, and Gemma 3n's (Gemma 3's with an audio item) too */
    static const char g3[] = "{{ '<start_of_turn>' + role + '\\n' + first_user_prefix }}";
    REQUIRE(tok_chat_detect(g3, sizeof g3 - 1, &t) == HEARTH_OK);
    CHECK(t.family == TOK_CHAT_GEMMA && !strcmp(t.name, "gemma3"));
    static const char g3n[] =
        "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}"
        "{%- if item['type'] == 'audio' -%}{{ '<audio_soft_token>' }}"
        "{%- elif item['type'] == 'image' -%}{{ '<image_soft_token>' }}{%- endif -%}";
    REQUIRE(tok_chat_detect(g3n, sizeof g3n - 1, &t) == HEARTH_OK);
    CHECK(t.family == TOK_CHAT_GEMMA && !strcmp(t.name, "gemma3") && t.gemma_prefix);
    CHECK(strstr(tok_chat_names(), "|gemma4|") != NULL);
}

static void test_render_plain(void) {
    /* system + user, thinking off: the system text trimmed, the empty
     * thought channel after the model's header */
    static const tok_chat_msg plain[] = {MSG(SYSTEM, "  Be brief. "), MSG(USER, "Hi ")};
    check("plain", plain, N(plain), NULL, NULL, false, true,
          "<bos><|turn>system\n"
          "Be brief.<turn|>\n"
          "<|turn>user\n"
          "Hi<turn|>\n"
          "<|turn>model\n"
          "<|channel>thought\n"
          "<channel|>");
    /* enable_thinking true: <|think|> opens the system turn; no channel */
    static const tok_chat_msg think[] = {MSG(SYSTEM, "S"), MSG(USER, "Hi")};
    check("thinking", think, N(think), NULL, NULL, true, true,
          "<bos><|turn>system\n"
          "<|think|>\n"
          "S<turn|>\n"
          "<|turn>user\n"
          "Hi<turn|>\n"
          "<|turn>model\n");
    /* a user message alone, thinking on: a system turn for <|think|> only */
    static const tok_chat_msg user[] = {MSG(USER, "Hi")};
    check("thinking without system", user, 1, NULL, NULL, true, true,
          "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
    check("no system turn", user, 1, NULL, NULL, false, false, "<bos><|turn>user\nHi<turn|>\n");
    /* earlier model turns: every <|channel>...<channel|> cut (strip_thinking), trimmed */
    static const tok_chat_msg turns[] = {
        MSG(USER, "A"), MSG(ASSISTANT, "<|channel>thought\nold thinking<channel|>  X  "),
        MSG(USER, "B"), MSG(ASSISTANT, "Y <|channel>t2<channel|>Z<channel|>W"), MSG(USER, "C")};
    check("multi-turn", turns, N(turns), NULL, NULL, false, true,
          "<bos><|turn>user\n"
          "A<turn|>\n"
          "<|turn>model\n"
          "X<turn|>\n"
          "<|turn>user\n"
          "B<turn|>\n"
          "<|turn>model\n"
          "Y ZW<turn|>\n"
          "<|turn>user\n"
          "C<turn|>\n"
          "<|turn>model\n"
          "<|channel>thought\n"
          "<channel|>");
    /* a later system message is a system turn of its own */
    static const tok_chat_msg later[] = {MSG(USER, "A"), MSG(SYSTEM, " S2 "), MSG(USER, "B")};
    check("later system", later, N(later), NULL, NULL, false, true,
          "<bos><|turn>user\n"
          "A<turn|>\n"
          "<|turn>system\n"
          "S2<turn|>\n"
          "<|turn>user\n"
          "B<turn|>\n"
          "<|turn>model\n"
          "<|channel>thought\n"
          "<channel|>");
}

static void test_render_tools(void) {
    /* declarations: sorted keys, upper-case types, enum / items / nullable /
     * nested properties / required, a type list as Python prints it */
    static const tok_chat_msg ask[] = {MSG(USER, "Weather in Paris?")};
    check(
        "declarations", ask, 1, tools_all, NULL, false, true,
        "<bos><|turn>system\n" DECL_WEATHER "<|tool>declaration:now{description:<|\"|>The "
        "time<|\"|>,parameters:{type:<|\"|>OBJECT<|\"|>"
        "}}<tool|><|tool>declaration:noargs{description:<|\"|>Nothing<|\"|>}<tool|><|tool>"
        "declaration:anyobj{description:<|\"|>"
        "Any<|\"|>,parameters:{properties:{e:{type:<|\"|>INTEGER<|\"|>},l:{items:{enum:[<|\"|>a<|"
        "\"|>"
        ",1],type:[<|\"|>STRING<|\"|>,<|\"|>INTEGER<|\"|>]},type:<|\"|>ARRAY<|\"|>},m:{type:<|\"|>"
        "['STRING', "
        "'NULL']<|\"|>},o:{properties:{},type:<|\"|>OBJECT<|\"|>}},type:<|\"|>OBJECT<|\"|>"
        "}}<tool|><turn|>\n"
        "<|turn>user\n"
        "Weather in Paris?<turn|>\n"
        "<|turn>model\n"
        "<|channel>thought\n"
        "<channel|>");
    /* a call and its result: the model turn stays open, no generation prompt */
    static const tok_chat_msg loop[] = {MSG(SYSTEM, "S"), MSG(USER, "Weather in Paris?"),
                                        MSG(ASSISTANT, ""), MSG(TOOL, "18 C")};
    static const tok_chat_msg_tools loop_tools[] = {
        {0}, {0}, {&call_weather, 1, NULL}, {0, 0, "call_1"}};
    check("call and result", loop, N(loop), tools_weather, loop_tools, false, true,
          "<bos><|turn>system\n"
          "S" DECL_WEATHER "<turn|>\n"
          "<|turn>user\n"
          "Weather in Paris?<turn|>\n"
          "<|turn>model\n" CALL_WEATHER
          "<|tool_response>response:get_weather{value:<|\"|>18 C<|\"|>}<tool_response|>");
    /* two calls, results named by tool_call_id (in any order, not trimmed),
     * the answer continuing the same model turn, thinking on */
    static const tok_chat_msg two[] = {MSG(USER, "Weather?"),       MSG(ASSISTANT, ""),
                                       MSG(TOOL, "noon"),           MSG(TOOL, " rain\n"),
                                       MSG(ASSISTANT, "It rains."), MSG(USER, "Thanks")};
    static const tok_chat_msg_tools two_tools[] = {
        {0}, {calls_two, 2, NULL}, {0, 0, "call_2"}, {0, 0, "call_1"}, {0}, {0}};
    check("two calls", two, N(two), tools_two, two_tools, true, true,
          "<bos><|turn>system\n"
          "<|think|>\n" DECL_WEATHER "<|tool>declaration:now{description:<|\"|>The "
          "time<|\"|>,parameters:{type:<|\"|>OBJECT<|\"|>"
          "}}<tool|><turn|>\n"
          "<|turn>user\n"
          "Weather?<turn|>\n"
          "<|turn>model\n" CALL_WEATHER "<|tool_call>call:now{}<tool_call|><|tool_response>"
          "response:now{value:<|\"|>noon<|\"|>}<tool_response|>"
          "<|tool_response>response:get_weather{value:<|\"|> rain\n"
          "<|\"|>}<tool_response|>It rains.<turn|>\n"
          "<|turn>user\n"
          "Thanks<turn|>\n"
          "<|turn>model\n");
    /* a call without results ends in <|tool_response> */
    static const tok_chat_msg nores[] = {MSG(USER, "W?"), MSG(ASSISTANT, "")};
    static const tok_chat_msg_tools nores_tools[] = {{0}, {&call_weather, 1, NULL}};
    check("call without result", nores, N(nores), tools_weather, nores_tools, false, true,
          "<bos><|turn>system\n" DECL_WEATHER "<turn|>\n"
          "<|turn>user\n"
          "W?<turn|>\n"
          "<|turn>model\n" CALL_WEATHER "<|tool_response>");
    /* content beside the call: the template ends the turn after the results
     * and prints no generation prompt; Hearth opens the model's turn (as
     * llama.cpp does), so this one is the template's text + that prompt */
    static const tok_chat_msg content[] = {MSG(USER, "W?"), MSG(ASSISTANT, "Checking."),
                                           MSG(TOOL, "18")};
    static const tok_chat_msg_tools content_tools[] = {
        {0}, {&call_weather, 1, NULL}, {0, 0, "call_1"}};
    check(
        "call with content", content, N(content), tools_weather, content_tools, false, true,
        "<bos><|turn>system\n" DECL_WEATHER "<turn|>\n"
        "<|turn>user\n"
        "W?<turn|>\n"
        "<|turn>model\n" CALL_WEATHER
        "<|tool_response>response:get_weather{value:<|\"|>18<|\"|>}<tool_response|>Checking.<turn|>"
        "\n"
        "<|turn>model\n<|channel>thought\n<channel|>");
    /* a result that answers no call is named 'unknown' (the template's
     * default; jinja2 itself fails on the None it gets there) */
    static const tok_chat_msg_tools unknown_tools[] = {
        {0}, {&call_weather, 1, NULL}, {0, 0, "zzz"}};
    const tok_chat_template t = gemma4();
    tok_chat_opts o = {.tools = tools_weather, .msg_tools = unknown_tools, .no_thinking = true};
    char *out = NULL;
    size_t len = 0;
    REQUIRE(tok_chat_render(&t, content, N(content), &o, &out, &len) == HEARTH_OK);
    CHECK(strstr(out, "<|tool_response>response:unknown{value:<|\"|>18<|\"|>}<tool_response|>"
                      "Checking.<turn|>\n") != NULL);
    free(out);
    /* arguments that are no JSON object are refused */
    static const tok_chat_tool_call bad = {"c", "get_weather", "[1]"};
    static const tok_chat_msg_tools bad_tools[] = {{0}, {&bad, 1, NULL}, {0, 0, "c"}};
    o.msg_tools = bad_tools;
    CHECK(tok_chat_render(&t, content, N(content), &o, &out, &len) == HEARTH_ERR_INVALID_ARG);
    o = (tok_chat_opts){.tools = "[{\"type\":\"function\"}]"};
    CHECK(tok_chat_render(&t, content, 1, &o, &out, &len) == HEARTH_ERR_INVALID_ARG);
}

/* ---- the reply: Gemma 4's calls parsed (server/tools_parse.c) ------------- */

static char *names[] = {"get_weather", "now"};
static const srv_tool_set set = {names, 2, true, NULL};

/* text parsed whole: n calls, the first named name0 with arguments args0,
 * content as given (NULL: none) */
static void parsed(const char *text, int n, const char *name0, const char *args0,
                   const char *content) {
    srv_tool_reply out;
    REQUIRE(srv_tools_parse_set(&set, text, strlen(text), true, &out));
    CHECKF(out.n_calls == n, "%s: %d calls", text, out.n_calls);
    if (n && out.n_calls) {
        CHECKF(!strcmp(out.calls[0].name, name0), "%s: name %s", text, out.calls[0].name);
        CHECKF(!strcmp(out.calls[0].arguments, args0), "%s: arguments %s", text,
               out.calls[0].arguments);
    }
    CHECKF(content ? out.content && !strcmp(out.content, content) : !out.content,
           "%s: content '%s'", text, out.content ? out.content : "(none)");
    srv_tool_reply_free(&out);
}

/* The same calls found when text streams in, a byte at a time. */
static void streamed(const char *text, int n) {
    srv_tools_stream st = {0};
    int got = 0;
    const size_t len = strlen(text);
    for (size_t k = 1; k <= len; k++) {
        if (!st.call_started) (void)srv_tools_stream_content(&st, text, k, 0);
        if (!st.call_started) continue;
        srv_tool_reply out;
        REQUIRE(srv_tools_stream_calls(&st, &set, text, k, &out));
        got += out.n_calls;
        srv_tool_reply_free(&out);
    }
    CHECKF(got == n, "%s streamed: %d calls", text, got);
}

static void test_parse(void) {
    /* what the template prints for the history's call reads back as it was
     * sent (None -> null, the keys in their sorted order) */
    parsed(CALL_WEATHER, 1, "get_weather",
           "{\"big\":123456789012,\"city\":\"Paris\",\"days\":3,\"exact\":true,\"extra\":null,"
           "\"opts\":{\"A\":{\"k\":\"v\"},\"b\":[1,2.5,\"x\"]},\"units\":\"\xc2\xb0"
           "C\",\"Zone\":1e-05}",
           NULL);
    /* strings hold anything but the quote; numbers keep their digits; white
     * space between tokens; quoted keys */
    parsed("<|tool_call>call:get_weather{ city : <|\"|>a \"q\", {b}\n\\<|\"|>, n:-0.5e3,"
           "big:12345678901234567890,l:[ ],o:{},<|\"|>k k<|\"|>:True}<tool_call|>",
           1, "get_weather",
           "{\"city\":\"a \\\"q\\\", {b}\\n\\\\\",\"n\":-0.5e3,\"big\":12345678901234567890,"
           "\"l\":[],\"o\":{},\"k k\":true}",
           NULL);
    /* content before the calls, two calls */
    static const char two[] = "Let me check.\n<|tool_call>call:now{}<tool_call|>"
                              "<|tool_call>call:get_weather{city:<|\"|>Oslo<|\"|>}<tool_call|>";
    parsed(two, 2, "now", "{}", "Let me check.");
    streamed(two, 2);
    streamed(CALL_WEATHER, 1);
    /* not calls: an undeclared function, broken bodies, a duplicate key,
     * text after the arguments; their text stays the content */
    static const char *const not_calls[] = {
        "<|tool_call>call:rm{path:<|\"|>/<|\"|>}<tool_call|>",
        "<|tool_call>call:now{a:}<tool_call|>",
        "<|tool_call>call:now{a:<|\"|>x}<tool_call|>",
        "<|tool_call>call:now{a:1,a:2}<tool_call|>",
        "<|tool_call>call:now{} trailing<tool_call|>",
        "<|tool_call>call:now{a:01}<tool_call|>",
    };
    for (size_t k = 0; k < N(not_calls); k++) parsed(not_calls[k], 0, NULL, NULL, not_calls[k]);
    /* a reply that ends before the closing tag (the model stopped at
     * <|tool_response>) still has its call, as Hermes blocks do */
    parsed("<|tool_call>call:now{}", 1, "now", "{}", NULL);
    /* Hermes blocks still parse beside them */
    parsed("<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>", 1, "now", "{}",
           NULL);
    /* a forced call opens the turn with Gemma's tag, then the JSON object */
    CHECK(!strcmp(srv_tools_call_prefix(TOK_TOOLS_GEMMA4), "<|tool_call>"));
}

int main(void) {
    test_detect();
    test_render_plain();
    test_render_tools();
    test_parse();
    return test_done("test_chat_gemma4");
}
