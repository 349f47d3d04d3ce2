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
    /* Gemma 3's is still Gemma 3's */
    static const char g3[] = "{{ '<start_of_turn>' + role + '\\n' + first_user_prefix }}";
    REQUIRE(tok_chat_detect(g3, sizeof g3 - 1, &t) == HEARTH_OK);
    CHECK(t.family == TOK_CHAT_GEMMA && !strcmp(t.name, "gemma3"));
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

int main(void) {
    test_detect();
    test_render_plain();
    test_render_tools();
    return test_done("test_chat_gemma4");
}
