/*
 * test_chat_tools.c - tools in chat templates: what Qwen 2.5, Qwen 3 and
 * Llama 3.1/3.2's Jinja templates (tests/server/chat_templates.h) print for a
 * request with tools, an assistant turn with a call and tool results, and
 * the generic rendering of templates without tools. The expected strings
 * were worked out by hand from the template sources and Python's
 * json.dumps (the tojson filter of Hugging Face templates), not by running
 * the renderer.
 */
#include "test.h"
#include "tokenizer/chat_template.h"

#include "server/chat_templates.h"

#include <stdlib.h>

#define MSG(r, s)                                                                                  \
    { TOK_CHAT_##r, s, sizeof(s) - 1 }
#define N(a) (sizeof(a) / sizeof(a)[0])

static const char tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
    "{\"type\":\"string\"},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7.5}},"
    "\"required\":[\"city\"]}}}]";

/* tojson: ", " and ": " */
static const char tool_line[] =
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
    "\"Weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": "
    "{\"type\": \"string\"}, \"days\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": "
    "7.5}}, \"required\": [\"city\"]}}}";

/* tojson(indent=4) */
static const char tool_indented[] = "{\n"
                                    "    \"type\": \"function\",\n"
                                    "    \"function\": {\n"
                                    "        \"name\": \"get_weather\",\n"
                                    "        \"description\": \"Weather in a city\",\n"
                                    "        \"parameters\": {\n"
                                    "            \"type\": \"object\",\n"
                                    "            \"properties\": {\n"
                                    "                \"city\": {\n"
                                    "                    \"type\": \"string\"\n"
                                    "                },\n"
                                    "                \"days\": {\n"
                                    "                    \"type\": \"integer\",\n"
                                    "                    \"minimum\": 1,\n"
                                    "                    \"maximum\": 7.5\n"
                                    "                }\n"
                                    "            },\n"
                                    "            \"required\": [\n"
                                    "                \"city\"\n"
                                    "            ]\n"
                                    "        }\n"
                                    "    }\n"
                                    "}";

static const char hermes_head[] =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n";
static const char hermes_tail[] =
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
    "<function-name>, \"arguments\": <args-json-object>}\n</tool_call>";

/* The conversation: a question, a call, two results. */
static const tok_chat_msg conv[] = {
    MSG(SYSTEM, "S"),  MSG(USER, "Weather in Paris?"), MSG(ASSISTANT, ""), MSG(TOOL, "18 C"),
    MSG(TOOL, "rain"),
};
static const tok_chat_tool_call call = {"call_1", "get_weather",
                                        "{\"city\":\"Paris\",\"units\":\"\\u00b0C\"}"};
static const tok_chat_msg_tools conv_tools[] = {
    {0}, {0}, {&call, 1, NULL}, {0, 0, "call_1"}, {0, 0, "call_1"}};

static char *render(const tok_chat_template *t, const tok_chat_msg *m, size_t n,
                    const char *tools_json, const tok_chat_msg_tools *mt, hearth_err *err) {
    tok_chat_opts o = {.bos = "<|begin_of_text|>",
                       .eos = "",
                       .add_generation_prompt = true,
                       .now = 1699963200,
                       .tools = tools_json,
                       .msg_tools = mt};
    char *out = NULL;
    size_t len = 0;
    *err = tok_chat_render(t, m, n, &o, &out, &len);
    if (!*err) CHECK(len == strlen(out));
    return *err ? NULL : out;
}

static void check(const char *what, const tok_chat_template *t, const tok_chat_msg *m, size_t n,
                  const char *tools_json, const tok_chat_msg_tools *mt, const char *expected) {
    hearth_err err;
    char *out = render(t, m, n, tools_json, mt, &err);
    CHECKF(out != NULL, "%s: %s", what, hearth_last_error());
    if (!out) return;
    CHECKF(!strcmp(out, expected), "%s:\n--- got ---\n%s\n--- expected ---\n%s", what, out,
           expected);
    free(out);
}

static tok_chat_template detect(const char *tmpl) {
    tok_chat_template t = {0};
    CHECK(tok_chat_detect(tmpl, strlen(tmpl), &t) == HEARTH_OK);
    return t;
}

static void test_detect(void) {
    tok_chat_template t = detect(TMPL_QWEN25);
    CHECK(t.tools == TOK_TOOLS_HERMES && !t.tool_args_raw);
    t = detect(TMPL_QWEN3);
    CHECK(t.tools == TOK_TOOLS_HERMES && t.tool_args_raw);
    CHECK(detect(TMPL_LLAMA31).tools == TOK_TOOLS_LLAMA3);
    CHECK(detect(TMPL_LLAMA32).tools == TOK_TOOLS_LLAMA3);
    const char *none[] = {TMPL_LLAMA30, TMPL_SMOLLM2,  TMPL_GEMMA2,   TMPL_GEMMA3,
                          TMPL_PHI35,   TMPL_PHI3MINI, TMPL_PHI4MINI, TMPL_PHI4};
    for (size_t i = 0; i < N(none); i++)
        CHECKF(detect(none[i]).tools == TOK_TOOLS_GENERIC, "%zu", i);
    CHECK(tok_chat_named("qwen2.5", &t) == HEARTH_OK && t.tools == TOK_TOOLS_HERMES);
    CHECK(tok_chat_named("llama3.1", &t) == HEARTH_OK && t.tools == TOK_TOOLS_LLAMA3);
    CHECK(tok_chat_named("chatml", &t) == HEARTH_OK && t.tools == TOK_TOOLS_GENERIC);
}

static void test_qwen(void) {
    char expected[8192];
    /* Qwen 2.5: the system text, "\n\n# Tools"; arguments through tojson;
     * both results in one user turn */
    snprintf(expected, sizeof expected,
             "<|im_start|>system\nS\n\n%s%s%s<|im_end|>\n"
             "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
             "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
             "{\"city\": \"Paris\", \"units\": \"\xc2\xb0"
             "C\"}}\n</tool_call><|im_end|>\n"
             "<|im_start|>user\n<tool_response>\n18 C\n</tool_response>\n<tool_response>\nrain\n"
             "</tool_response><|im_end|>\n<|im_start|>assistant\n",
             hermes_head, tool_line, hermes_tail);
    tok_chat_template t = detect(TMPL_QWEN25);
    check("qwen2.5 tools", &t, conv, N(conv), tools, conv_tools, expected);
    /* without a system message, Qwen 2.5's default one */
    snprintf(expected, sizeof expected,
             "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
             "assistant.\n\n%s%s%s<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
             "<|im_start|>assistant\n",
             hermes_head, tool_line, hermes_tail);
    check("qwen2.5 default system", &t, conv + 1, 1, tools, NULL, expected);
    /* the history without tools: no block, the calls and results as before */
    snprintf(expected, sizeof expected,
             "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
             "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
             "{\"city\": \"Paris\", \"units\": \"\xc2\xb0"
             "C\"}}\n</tool_call><|im_end|>\n"
             "<|im_start|>user\n<tool_response>\n18 C\n</tool_response>\n<tool_response>\nrain\n"
             "</tool_response><|im_end|>\n<|im_start|>assistant\n");
    check("qwen2.5 no tools", &t, conv, N(conv), NULL, conv_tools, expected);

    /* Qwen 3: arguments printed as the client's string; no default system;
     * the call turn is after the last query but not last and has no
     * reasoning, so no <think> block */
    t = detect(TMPL_QWEN3);
    snprintf(expected, sizeof expected,
             "<|im_start|>system\n%s%s%s<|im_end|>\n"
             "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
             "<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", "
             "\"arguments\": {\"city\":\"Paris\",\"units\":\"\\u00b0C\"}}\n</tool_call>\n"
             "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
             "{\"city\":\"Paris\",\"units\":\"\\u00b0C\"}}\n</tool_call><|im_end|>\n"
             "<|im_start|>user\n<tool_response>\n18 C\n</tool_response><|im_end|>\n"
             "<|im_start|>assistant\n",
             hermes_head, tool_line, hermes_tail);
    static const tok_chat_msg q3[] = {MSG(USER, "Weather in Paris?"),
                                      MSG(ASSISTANT, "Let me check."), MSG(TOOL, "18 C")};
    static const tok_chat_tool_call two[] = {
        {"a", "get_weather", "{\"city\":\"Paris\",\"units\":\"\\u00b0C\"}"},
        {"b", "get_weather", "{\"city\":\"Paris\",\"units\":\"\\u00b0C\"}"}};
    static const tok_chat_msg_tools q3t[] = {{0}, {two, 2, NULL}, {0, 0, "a"}};
    check("qwen3 tools", &t, q3, N(q3), tools, q3t, expected);
}

static void test_llama(void) {
    char expected[8192];
    snprintf(expected, sizeof expected,
             "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
             "Environment: ipython\nCutting Knowledge Date: December 2023\n"
             "Today Date: 26 Jul 2024\n\nS<|eot_id|>"
             "<|start_header_id|>user<|end_header_id|>\n\n"
             "Given the following functions, please respond with a JSON for a function call with "
             "its proper arguments that best answers the given prompt.\n\n"
             "Respond in the format {\"name\": function name, \"parameters\": dictionary of "
             "argument name and its value}.Do not use variables.\n\n%s\n\nWeather in Paris?"
             "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
             "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"units\": "
             "\"\xc2\xb0"
             "C\"}}<|eot_id|>"
             "<|start_header_id|>ipython<|end_header_id|>\n\n\"18 C\"<|eot_id|>"
             "<|start_header_id|>ipython<|end_header_id|>\n\n\"rain\"<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\n",
             tool_indented);
    tok_chat_template t = detect(TMPL_LLAMA31);
    check("llama3.1 tools", &t, conv, N(conv), tools, conv_tools, expected);
    /* 3.2: the same but today's date (2023-11-14 in every zone +-11 h) */
    t = detect(TMPL_LLAMA32);
    char *p = strstr(expected, "26 Jul 2024");
    REQUIRE(p);
    memcpy(p, "14 Nov 2023", 11);
    check("llama3.2 tools", &t, conv, N(conv), tools, conv_tools, expected);
    /* the template's refusals */
    hearth_err err;
    static const tok_chat_tool_call two[] = {{"a", "f", "{}"}, {"b", "f", "{}"}};
    static const tok_chat_msg_tools mt2[] = {{0}, {0}, {two, 2, NULL}, {0}, {0}};
    CHECK(!render(&t, conv, N(conv), tools, mt2, &err) && err == HEARTH_ERR_INVALID_ARG &&
          strstr(hearth_last_error(), "single tool-calls"));
    CHECK(!render(&t, conv, 1, tools, NULL, &err) && err == HEARTH_ERR_INVALID_ARG &&
          strstr(hearth_last_error(), "first user message"));
    /* a result's quotes and newlines escaped as json.dumps does */
    static const tok_chat_msg r[] = {MSG(USER, "q"), MSG(TOOL, "a \"b\"\n\\c\x01")};
    check("llama3.1 result escapes", &t, r, N(r), NULL, NULL,
          "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
          "Cutting Knowledge Date: December 2023\nToday Date: 14 Nov 2023\n\n<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
          "<|start_header_id|>ipython<|end_header_id|>\n\n\"a \\\"b\\\"\\n\\\\c\\u0001\"<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Templates without tools: the Hermes block in the system message, calls as
 * <tool_call> text, results as user turns, in the family's own turns. */
static void test_generic(void) {
    char expected[8192];
    snprintf(expected, sizeof expected,
             "<|begin_of_text|><start_of_turn>user\nS\n\n%s%s%s\n\nWeather in Paris?<end_of_turn>\n"
             "<start_of_turn>model\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
             "{\"city\": \"Paris\", \"units\": \"\xc2\xb0"
             "C\"}}\n</tool_call><end_of_turn>\n"
             "<start_of_turn>user\n<tool_response>\n18 C\n</tool_response>\n<tool_response>\n"
             "rain\n</tool_response><end_of_turn>\n<start_of_turn>model\n",
             hermes_head, tool_line, hermes_tail);
    tok_chat_template t = detect(TMPL_GEMMA3);
    check("gemma3 generic", &t, conv, N(conv), tools, conv_tools, expected);
    /* SmolLM2 (ChatML without tools): no system message, so the block is one */
    t = detect(TMPL_SMOLLM2);
    snprintf(expected, sizeof expected,
             "<|im_start|>system\n%s%s%s<|im_end|>\n<|im_start|>user\nWeather in Paris?"
             "<|im_end|>\n<|im_start|>assistant\nOn it.\n<tool_call>\n{\"name\": \"get_weather\", "
             "\"arguments\": {\"city\": \"Paris\", \"units\": \"\xc2\xb0"
             "C\"}}\n</tool_call>"
             "<|im_end|>\n<|im_start|>assistant\n",
             hermes_head, tool_line, hermes_tail);
    static const tok_chat_msg s[] = {MSG(USER, "Weather in Paris?"), MSG(ASSISTANT, "On it.")};
    static const tok_chat_msg_tools st[] = {{0}, {&call, 1, NULL}};
    check("smollm2 generic", &t, s, N(s), tools, st, expected);
    /* Phi-4-mini: <|system|> ... <|end|> */
    t = detect(TMPL_PHI4MINI);
    snprintf(expected, sizeof expected,
             "<|system|>%s%s%s<|end|><|user|>Weather in Paris?<|end|><|assistant|>", hermes_head,
             tool_line, hermes_tail);
    check("phi4-mini generic", &t, s, 1, tools, NULL, expected);
}

/* tojson prints numbers and strings as Python does. */
static void test_json_printing(void) {
    static const char odd[] =
        "[{\"a\":[1.0,1E2,1e-5,-0,12345678901234567890,0.1,1e16,123.456e1,-2.5e-7,0.0001],"
        "\"b\":\"\\u00e9\\n\\\"\\\\\\/\\u0001\\ud83d\\ude00\",\"c\":{},\"d\":[ ],\"e\":[true,"
        "false,null]}]";
    char expected[4096];
    snprintf(expected, sizeof expected,
             "<|im_start|>system\n%s{\"a\": [1.0, 100.0, 1e-05, 0, 12345678901234567890, 0.1, "
             "1e+16, 1234.56, -2.5e-07, 0.0001], \"b\": \"\xc3\xa9\\n\\\"\\\\/\\u0001"
             "\xf0\x9f\x98\x80\", \"c\": {}, \"d\": [], \"e\": [true, false, null]}%s<|im_end|>\n"
             "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n",
             hermes_head, hermes_tail);
    tok_chat_template t = detect(TMPL_QWEN3);
    static const tok_chat_msg q[] = {MSG(USER, "q")};
    check("python json", &t, q, 1, odd, NULL, expected);
    /* malformed JSON is refused, not printed */
    const char *bad[] = {"[{\"a\":}]", "[1,]", "[\"\\ud800\"]", "[01]", "{\"a\":1}", "[1] x"};
    for (size_t i = 0; i < N(bad); i++) {
        hearth_err err;
        char *out = render(&t, q, 1, bad[i], NULL, &err);
        CHECKF(!out && err == HEARTH_ERR_INVALID_ARG, "bad tools %s", bad[i]);
        free(out);
    }
    /* an empty array is no tools (Jinja: `if tools` is false) */
    check("empty tools", &t, q, 1, "[]", NULL,
          "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n");
}

static const char xml_tail[] =
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO "
    "suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>"
    "\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second "
    "parameter\nthat can span\nmultiple "
    "lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls "
    "MUST follow the specified format: an inner <function=...></function> block must be nested "
    "within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may "
    "provide optional reasoning for your function call in natural language BEFORE the function "
    "call, but NOT after\n- If there is no function call available, answer the question like "
    "normal with your current knowledge and do not tell the user about function "
    "calls\n</IMPORTANT>";

/* Qwen3.5 (what its Jinja template printed under Python's jinja2 with Hugging
 * Face's settings, for these messages): the tools block first, then the
 * system text; contents trimmed; a <think> block on every assistant turn
 * after the last query; XML calls with Python's str of non-string values;
 * the generation prompt opens <think> unless enable_thinking is false. */
static void test_qwen35(void) {
    /* the parts of the template the recognition reads */
    static const char tmpl[] =
        "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}"
        "{%- set content = render_content(message.content, true)|trim %}{{ '</think>' }}"
        "{{- \"# Tools\\n\\nYou have access to the following functions:\\n\\n<tools>\" }}"
        "{{- '<tool_call>\\n<function=' + tool_call.name + '>\\n' }}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
        "{%- if enable_thinking is defined and enable_thinking is false %}"
        "{{- '<think>\\n\\n</think>\\n\\n' }}{%- else %}{{- '<think>\\n' }}{%- endif %}{%- endif "
        "%}";
    tok_chat_template t = detect(tmpl);
    CHECK(t.tools == TOK_TOOLS_XML && t.think_open && t.think_toggle && t.trim &&
          !strcmp(t.name, "qwen3.5"));
    tok_chat_template named;
    REQUIRE(tok_chat_named("qwen3.5", &named) == HEARTH_OK);
    CHECK(named.tools == TOK_TOOLS_XML && named.think_open && named.think_toggle && named.trim);
    static const tok_chat_tool_call xcall = {
        "call_1", "get_weather",
        "{\"city\":\"Paris\",\"units\":\"\\u00b0C\",\"days\":3,\"exact\":true,\"extra\":null,"
        "\"opts\":{\"a\":[1,2]}}"};
    static const tok_chat_msg_tools xconv_tools[] = {
        {0}, {0}, {&xcall, 1, NULL}, {0, 0, "call_1"}, {0, 0, "call_1"}};
    char expected[8192];
    snprintf(expected, sizeof expected,
             "<|im_start|>system\n# Tools\n\nYou have access to the following functions:\n\n"
             "<tools>\n%s%s\n\nS<|im_end|>\n"
             "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
             "<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>\n<function=get_weather>\n"
             "<parameter=city>\nParis\n</parameter>\n<parameter=units>\n\xc2\xb0"
             "C\n</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=exact>\nTrue\n"
             "</parameter>\n<parameter=extra>\nNone\n</parameter>\n<parameter=opts>\n"
             "{\"a\": [1, 2]}\n</parameter>\n</function>\n</tool_call><|im_end|>\n"
             "<|im_start|>user\n<tool_response>\n18 C\n</tool_response>\n<tool_response>\nrain\n"
             "</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n",
             tool_line, xml_tail);
    check("qwen3.5 with tools", &t, conv, N(conv), tools, xconv_tools, expected);
    static const tok_chat_msg plain[] = {MSG(SYSTEM, "  Be brief. "), MSG(USER, "Hi ")};
    check("qwen3.5 trims", &t, plain, N(plain), NULL, NULL,
          "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
          "<|im_start|>assistant\n<think>\n");
    tok_chat_opts o = {.add_generation_prompt = true, .no_thinking = true};
    char *out = NULL;
    size_t len = 0;
    REQUIRE(tok_chat_render(&t, plain + 1, 1, &o, &out, &len) == HEARTH_OK);
    CHECK(!strcmp(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                       "<think>\n\n</think>\n\n"));
    free(out);
    static const tok_chat_msg turns[] = {
        MSG(USER, "A"), MSG(ASSISTANT, "<think>\nold\n</think>\n\nX"), MSG(USER, "B"),
        MSG(ASSISTANT, "Y with no think"), MSG(ASSISTANT, "<think>r2</think>Z")};
    o = (tok_chat_opts){0};
    REQUIRE(tok_chat_render(&t, turns, N(turns), &o, &out, &len) == HEARTH_OK);
    CHECK(!strcmp(out, "<|im_start|>user\nA<|im_end|>\n<|im_start|>assistant\nX<|im_end|>\n"
                       "<|im_start|>user\nB<|im_end|>\n<|im_start|>assistant\n<think>\n\n"
                       "</think>\n\nY with no think<|im_end|>\n<|im_start|>assistant\n<think>\n"
                       "r2\n</think>\n\nZ<|im_end|>\n"));
    free(out);
}

/* LFM2-8B-A1B's template: the tool list in the system turn, each result in
 * a tool turn of its own; the expected text is Python's jinja2 rendering of
 * its source (json.dumps as tojson), the assistant's call as its content. */
static void test_lfm2(void) {
    tok_chat_template t = detect(TMPL_LFM2);
    CHECK(t.tools == TOK_TOOLS_LFM2 && !strcmp(t.name, "lfm2"));
    char two[2 * sizeof tools + 4];
    snprintf(two, sizeof two, "[%.*s,%.*s]", (int)strlen(tools) - 2, tools + 1,
             (int)strlen(tools) - 2, tools + 1);
    char list[4 * sizeof tool_line];
    snprintf(list, sizeof list, "List of tools: <|tool_list_start|>[%s, %s]<|tool_list_end|>",
             tool_line, tool_line);
    char expected[8 * sizeof tool_line];
    snprintf(expected, sizeof expected,
             "<|im_start|>system\nS\n%s<|im_end|>\n<|im_start|>user\nWeather in "
             "Paris?<|im_end|>\n<|im_start|>assistant\n<|tool_call_start|>[get_weather("
             "city=\"Paris\", units=\"\xc2\xb0"
             "C\")]<|tool_call_end|><|im_end|>\n<|im_start|>"
             "tool\n<|tool_response_start|>18 C<|tool_response_end|><|im_end|>\n<|im_start|>"
             "tool\n<|tool_response_start|>rain<|tool_response_end|><|im_end|>\n<|im_start|>"
             "assistant\n",
             list);
    check("lfm2", &t, conv, N(conv), two, conv_tools, expected);
    snprintf(list, sizeof list, "List of tools: <|tool_list_start|>[%s]<|tool_list_end|>",
             tool_line);
    snprintf(expected, sizeof expected,
             "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\nWeather in "
             "Paris?<|im_end|>\n<|im_start|>assistant\n",
             list);
    check("lfm2 no system", &t, conv + 1, 1, tools, conv_tools + 1, expected);
    /* no tools: plain ChatML */
    check("lfm2 no tools", &t, conv, 2, NULL, NULL,
          "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nWeather in "
          "Paris?<|im_end|>\n<|im_start|>assistant\n");
    /* a call whose arguments are no object cannot be written as keywords */
    static const tok_chat_tool_call bad = {"call_2", "get_weather", "[1]"};
    const tok_chat_msg_tools bad_tools[] = {{0}, {0}, {&bad, 1, NULL}};
    hearth_err err;
    CHECK(render(&t, conv, 3, tools, bad_tools, &err) == NULL && err == HEARTH_ERR_INVALID_ARG);
    CHECK(tok_chat_named("lfm2", &t) == HEARTH_OK && t.tools == TOK_TOOLS_LFM2 && !t.lfm25);
}

/* LFM2.5-Instruct's template: the tool list without markers, results as
 * they are, and an assistant turn before the last keeping only what follows
 * its </think> (jinja2's rendering of its source, the call as content). */
static void test_lfm25(void) {
    tok_chat_template t = detect(TMPL_LFM25);
    CHECK(t.tools == TOK_TOOLS_LFM2 && t.lfm25 && t.think && !strcmp(t.name, "lfm2.5"));
    static const tok_chat_msg c25[] = {MSG(SYSTEM, "S"),
                                       MSG(USER, "Weather in Paris?"),
                                       MSG(ASSISTANT, "<think>r1</think>\n A1 \n"),
                                       MSG(USER, "Q2"),
                                       MSG(ASSISTANT, ""),
                                       MSG(TOOL, "18 C"),
                                       MSG(ASSISTANT, "<think>r2</think>A2")};
    static const tok_chat_msg_tools c25_tools[] = {{0}, {0}, {0}, {0}, {&call, 1, NULL}, {0}, {0}};
    char expected[8 * sizeof tool_line];
    snprintf(
        expected, sizeof expected,
        "<|im_start|>system\nS\nList of tools: [%s]<|im_end|>\n<|im_start|>user\nWeather in "
        "Paris?<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>"
        "\n<|im_start|>assistant\n<|tool_call_start|>[get_weather(city=\"Paris\", units=\"\xc2\xb0"
        "C\")]<|tool_call_end|><|im_end|>\n<|im_start|>tool\n18 C<|im_end|>\n<|im_start|>"
        "assistant\n<think>r2</think>A2<|im_end|>\n<|im_start|>assistant\n",
        tool_line);
    check("lfm2.5", &t, c25, N(c25), tools, c25_tools, expected);
    check("lfm2.5 the last assistant turn whole", &t, c25 + 1, 2, NULL, NULL,
          "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<think>r1</think>"
          "\n A1 \n<|im_end|>\n<|im_start|>assistant\n");
    CHECK(tok_chat_named("lfm2.5", &t) == HEARTH_OK && t.lfm25);
}

/* Falcon-H1-0.5B-Instruct's template copies Qwen 2.5's tools section word for word (checked
 * against jinja2's rendering of it); without a system message it has no default one. */
static void test_falcon_h1(void) {
    char expected[8192];
    tok_chat_template t = detect(TMPL_FALCON_H1);
    CHECK(t.tools == TOK_TOOLS_HERMES);
    snprintf(expected, sizeof expected,
             "<|im_start|>system\nS\n\n%s%s%s<|im_end|>\n"
             "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n",
             hermes_head, tool_line, hermes_tail);
    check("falcon-h1 tools", &t, conv, 2, tools, NULL, expected);
    snprintf(expected, sizeof expected,
             "<|im_start|>system\n%s%s%s<|im_end|>\n"
             "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n",
             hermes_head, tool_line, hermes_tail);
    check("falcon-h1 tools without system", &t, conv + 1, 1, tools, NULL, expected);
}

int main(void) {
    test_detect();
    test_falcon_h1();
    test_lfm2();
    test_lfm25();
    test_qwen();
    test_qwen35();
    test_llama();
    test_generic();
    test_json_printing();
    return test_done("test_chat_tools");
}
