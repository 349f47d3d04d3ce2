/*
 * test_chat_smollm3.c - SmolLM3's chat templates: HuggingFaceTB/SmolLM3-3B's
 * own (dated, /system_override, xml_tools) and the shorter one Unsloth's
 * GGUFs carry (llama.cpp's models/templates copy), each recognized
 * (tokenizer/chat_smollm3.c) and rendered byte for byte as it prints: the
 * reasoning modes (enable_thinking, /think and /no_think in the system text),
 * the defaults, the override, tools as Python's str of each, tool results as
 * user turns, the system turn left open without tools.
 *
 * The expected prompts are what the templates printed under Python's jinja2
 * with Hugging Face's settings (trim_blocks, lstrip_blocks, a no-op
 * {% generation %} tag, strftime_now giving "05 March 2026", the request's
 * tools passed as xml_tools) for the same messages. One departure is tested
 * by hand: an assistant's calls, which the template drops, written back in
 * the format its tools section teaches.
 */
#include "test.h"

#include "tokenizer/chat_template.h"

#include <stdlib.h>
#include <string.h>

#define MSG(r, s)                                                                                  \
    { TOK_CHAT_##r, s, sizeof(s) - 1 }
#define N(a) (sizeof(a) / sizeof(a)[0])

/* 2026-03-05 12:00 UTC: the same date in every time zone within 12 hours. */
enum { NOON_MARCH_5_2026 = 1772712000 };

/* HuggingFaceTB/SmolLM3-3B's. */
static const char TMPL_FULL[] =
    "{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 defaults \342\224\200"
    "\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{%- if enable_thinking is not defined -%}\n"
    "{%- set enable_thinking = true -%}\n"
    "{%- endif -%}\n\n{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 reaso"
    "ning mode \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{%- if enable_thinking -%}\n{%- set reasoning_mode = \"/think\" -%}\n"
    "{%- else -%}\n{%- set reasoning_mode = \"/no_think\" -%}\n"
    "{%- endif -%}\n\n{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 heade"
    "r (system message) \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{{- \"<|im_start|>system\\n\" -}}\n"
    "\n{%- if messages[0].role == \"system\" -%}\n"
    "{%- set system_message = messages[0].content -%}\n"
    "{%- if \"/no_think\" in system_message -%}\n"
    "{%- set reasoning_mode = \"/no_think\" -%}\n"
    "{%- elif \"/think\" in system_message -%}\n"
    "{%- set reasoning_mode = \"/think\" -%}\n"
    "{%- endif -%}\n{%- set custom_instructions = system_message.replace(\"/no_think\", \""
    "\").replace(\"/think\", \"\").rstrip() -%}\n"
    "{%- endif -%}\n\n{%- if \"/system_override\" in system_message -%}\n"
    "{{- custom_instructions.replace(\"/system_override\", \"\").rstrip() -}}\n"
    "{{- \"<|im_end|>\\n\" -}}\n{%- else -%}\n"
    "{{- \"## Metadata\\n\\n\" -}}\n"
    "{{- \"Knowledge Cutoff Date: June 2025\\n\" -}}\n"
    "{%- set today = strftime_now(\"%d %B %Y\") -%}\n"
    "{{- \"Today Date: \" ~ today ~ \"\\n\" -}}\n"
    "{{- \"Reasoning Mode: \" + reasoning_mode + \"\\n\\n\" -}}\n"
    "\n{{- \"## Custom Instructions\\n\\n\" -}}\n"
    "{%- if custom_instructions -%}\n"
    "{{- custom_instructions + \"\\n\\n\" -}}\n"
    "{%- elif reasoning_mode == \"/think\" -%}\n"
    "{{- \"You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role "
    "as an assistant involves thoroughly exploring questions through a systematic thinking "
    "process before providing the final precise and accurate solutions. This requires engag"
    "ing in a comprehensive cycle of analysis, summarizing, exploration, reassessment, refl"
    "ection, backtracking, and iteration to develop well-considered thinking process. Pleas"
    "e structure your response into two main sections: Thought and Solution using the speci"
    "fied format: <think> Thought section </think> Solution section. In the Thought section"
    ", detail your reasoning process in steps. Each step should include detailed considerat"
    "ions such as analysing questions, summarizing relevant findings, brainstorming new ide"
    "as, verifying the accuracy of the current steps, refining any errors, and revisiting p"
    "revious steps. In the Solution section, based on various attempts, explorations, and r"
    "eflections from the Thought section, systematically present the final solution that yo"
    "u deem correct. The Solution section should be logical, accurate, and concise and deta"
    "il necessary steps needed to reach the conclusion.\\n\\n\" -}}\n"
    "{%- else -%}\n{{- \"You are a helpful AI assistant named SmolLM, trained by Hugging Fa"
    "ce.\\n\\n\" -}}\n{%- endif -%}\n"
    "\n{%- if xml_tools or python_tools -%}\n"
    "{{- \"### Tools\\n\\n\" -}}\n{%- if xml_tools -%}\n"
    "  {%- set ns = namespace(xml_tool_string=\"You may call one or more functions to assis"
    "t with the user query.\\nYou are provided with function signatures within <tools></too"
    "ls> XML tags:\\n\\n<tools>\\n\") -%}\n"
    "  {%- for tool in xml_tools[:] -%} {# The slicing makes sure that xml_tools is a list "
    "#}\n    {%- set ns.xml_tool_string = ns.xml_tool_string ~ (tool | string) ~ \"\\n\" -%"
    "}\n  {%- endfor -%}\n  {%- set xml_tool_string = ns.xml_tool_string + \"</tools>\\n\\n"
    "For each function call, return a json object with function name and arguments within <"
    "tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"a"
    "rguments\\\": <args-json-object>}\\n</tool_call>\" -%}\n"
    "  {{- xml_tool_string -}}\n{%- endif -%}\n"
    "{%- if python_tools -%}\n  {%- set ns = namespace(python_tool_string=\"When you send a"
    " message containing Python code between '<code>' and '</code>' tags, it will be execut"
    "ed in a stateful Jupyter notebook environment, and you will then be given the output t"
    "o continued reasoning in an agentic loop.\\n\\nYou can use the following tools in your"
    " python code like regular functions:\\n<tools>\\n\") -%}\n"
    "  {%- for tool in python_tools[:] -%} {# The slicing makes sure that python_tools is a"
    " list #}\n    {%- set ns.python_tool_string = ns.python_tool_string ~ (tool | string) "
    "~ \"\\n\" -%}\n  {%- endfor -%}\n"
    "  {%- set python_tool_string = ns.python_tool_string + \"</tools>\\n\\nThe state persi"
    "sts between code executions: so variables that you define in one step are still availa"
    "ble thereafter.\" -%}\n  {{- python_tool_string -}}\n"
    "{%- endif -%}\n{{- \"\\n\\n\" -}}\n"
    "{{- \"<|im_end|>\\n\" -}}\n{%- endif -%}\n"
    "{%- endif -%}\n{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 main lo"
    "op \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{%- for message in messages -%}\n"
    "{%- set content = message.content if message.content is string else \"\" -%}\n"
    "{%- if message.role == \"user\" -%}\n"
    "    {{ \"<|im_start|>\" + message.role + \"\\n\"  + content + \"<|im_end|>\\n\" }}\n"
    "{%- elif message.role == \"assistant\" -%}\n"
    "    {% generation %}\n    {%- if reasoning_mode == \"/think\" -%}\n"
    "        {{ \"<|im_start|>assistant\\n\" + content.lstrip(\"\\n\") + \"<|im_end|>\\n\" "
    "}}\n    {%- else -%}\n        {{ \"<|im_start|>assistant\\n\" + \"<think>\\n\\n</think"
    ">\\n\" + content.lstrip(\"\\n\") + \"<|im_end|>\\n\" }}\n"
    "    {%- endif -%}\n    {% endgeneration %}\n"
    "{%- elif message.role == \"tool\" -%}\n"
    "{{ \"<|im_start|>\" + \"user\\n\"  + content + \"<|im_end|>\\n\" }}\n"
    "{%- endif -%}\n{%- endfor -%}\n"
    "{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 generation prompt "
    "\342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{%- if add_generation_prompt -%}\n"
    "{%- if reasoning_mode == \"/think\" -%}\n"
    "    {{ \"<|im_start|>assistant\\n\" }}\n"
    "{%- else -%}\n    {{ \"<|im_start|>assistant\\n\" + \"<think>\\n\\n</think>\\n\"  }}\n"
    "{%- endif -%}\n{%- endif -%}\n";

/* Unsloth's (llama.cpp's models/templates/HuggingFaceTB-SmolLM3-3B.jinja). */
static const char TMPL_SHORT[] =
    "{#- Copyright 2025-present the Unsloth team. All rights reserved. #}\n"
    "{#- Licensed under the Apache License, Version 2.0 (the \"License\") #}\n"
    "{#- Edits made by Unsloth to make it work for most inference engines #}\n"
    "{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 defaults \342\224\200"
    "\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{%- if enable_thinking is not defined -%}\n"
    "    {%- set enable_thinking = true -%}\n"
    "{%- endif -%}\n{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 reasoni"
    "ng mode \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{%- if enable_thinking -%}\n    {%- set reasoning_mode = \"/think\" -%}\n"
    "{%- else -%}\n    {%- set reasoning_mode = \"/no_think\" -%}\n"
    "{%- endif -%}\n{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 header "
    "(system message) \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{{- \"<|im_start|>system\\n\" -}}\n"
    "{%- if messages[0].role == \"system\" -%}\n"
    "    {%- set system_message = messages[0].content -%}\n"
    "    {%- if \"/no_think\" in system_message -%}\n"
    "        {%- set reasoning_mode = \"/no_think\" -%}\n"
    "    {%- elif \"/think\" in system_message -%}\n"
    "        {%- set reasoning_mode = \"/think\" -%}\n"
    "    {%- endif -%}\n    {%- set custom_instructions = system_message.replace(\"/no_thin"
    "k\", \"\") -%}\n    {%- set custom_instructions = custom_instructions.replace(\"/think"
    "\", \"\") -%}\n    {%- set custom_instructions = custom_instructions.rstrip() -%}\n"
    "{%- endif -%}\n{{- \"## Metadata\\n\\n\" -}}\n"
    "{{- \"Knowledge Cutoff Date: June 2025\\n\" -}}\n"
    "{{- \"Reasoning Mode: \" + reasoning_mode + \"\\n\\n\" -}}\n"
    "{{- \"## Custom Instructions\\n\\n\" -}}\n"
    "{%- if custom_instructions -%}\n"
    "    {{- custom_instructions + \"\\n\\n\" -}}\n"
    "{%- elif reasoning_mode == \"/think\" -%}\n"
    "    {{- \"You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your r"
    "ole as an assistant involves thoroughly exploring questions through a systematic think"
    "ing process before providing the final precise and accurate solutions. This requires e"
    "ngaging in a comprehensive cycle of analysis, summarizing, exploration, reassessment, "
    "reflection, backtracking, and iteration to develop well-considered thinking process. P"
    "lease structure your response into two main sections: Thought and Solution using the s"
    "pecified format: <think> Thought section </think> Solution section. In the Thought sec"
    "tion, detail your reasoning process in steps. Each step should include detailed consid"
    "erations such as analysing questions, summarizing relevant findings, brainstorming new"
    " ideas, verifying the accuracy of the current steps, refining any errors, and revisiti"
    "ng previous steps. In the Solution section, based on various attempts, explorations, a"
    "nd reflections from the Thought section, systematically present the final solution tha"
    "t you deem correct. The Solution section should be logical, accurate, and concise and "
    "detail necessary steps needed to reach the conclusion.\\n\\n\" -}}\n"
    "{%- else -%}\n    {{- \"You are a helpful AI assistant named SmolLM, trained by Huggin"
    "g Face.\\n\\n\" -}}\n{%- endif -%}\n"
    "{{- \"<|im_end|>\\n\" -}}\n{# \342\224\200\342\224\200\342\224\200\342\224\200"
    "\342\224\200 main loop \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}"
    "\n{%- for message in messages -%}\n"
    "    {%- set content = message.content if message.content is string else \"\" -%}\n"
    "    {%- if message.role == \"user\" -%}\n"
    "        {{ \"<|im_start|>\" + message.role + \"\\n\" + content + \"<|im_end|>\\n\" }}"
    "\n    {%- elif message.role == \"assistant\" -%}\n"
    "        {%- if reasoning_mode == \"/think\" -%}\n"
    "            {{ \"<|im_start|>assistant\\n\" + content.lstrip(\"\\n\") + \"<|im_end|>\\"
    "n\" }}\n        {%- else -%}\n            {{ \"<|im_start|>assistant\\n\" + \"<think>"
    "\\n\\n</think>\\n\" + content.lstrip(\"\\n\") + \"<|im_end|>\\n\" }}\n"
    "        {%- endif -%}\n    {%- elif message.role == \"tool\" -%}\n"
    "        {{ \"<|im_start|>\" + \"user\\n\" + content + \"<|im_end|>\\n\" }}\n"
    "    {%- endif -%}\n{%- endfor -%}\n"
    "{# \342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 generation prompt "
    "\342\224\200\342\224\200\342\224\200\342\224\200\342\224\200 #}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {%- if reasoning_mode == \"/think\" -%}\n"
    "        {{ \"<|im_start|>assistant\\n\" }}\n"
    "    {%- else -%}\n        {{ \"<|im_start|>assistant\\n\" + \"<think>\\n\\n</think>\\n"
    "\" }}\n    {%- endif -%}\n{%- endif -%}\n";

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"It's "
    "the weather \\\"now\\\" in a city \\u00e0 l'heure,\\nwith a \\\\ backslash\",\"paramet"
    "ers\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\""
    "type\":\"integer\",\"minimum\":1,\"maximum\":7.5,\"default\":null},\"metric\":{\"type"
    "\":\"boolean\",\"default\":true}},\"required\":[\"city\"]}}},{\"type\":\"function\",\""
    "function\":{\"name\":\"now\",\"description\":\"The time\",\"parameters\":{\"type\":\"o"
    "bject\",\"properties\":{}}}}]";

#define THINK_PERSONA                                                                              \
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an "       \
    "assistant involves thoroughly exploring questions through a systematic thinking proces"       \
    "s before providing the final precise and accurate solutions. This requires engaging in"       \
    " a comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection"       \
    ", backtracking, and iteration to develop well-considered thinking process. Please stru"       \
    "cture your response into two main sections: Thought and Solution using the specified f"       \
    "ormat: <think> Thought section </think> Solution section. In the Thought section, deta"       \
    "il your reasoning process in steps. Each step should include detailed considerations s"       \
    "uch as analysing questions, summarizing relevant findings, brainstorming new ideas, ve"       \
    "rifying the accuracy of the current steps, refining any errors, and revisiting previou"       \
    "s steps. In the Solution section, based on various attempts, explorations, and reflect"       \
    "ions from the Thought section, systematically present the final solution that you deem"       \
    " correct. The Solution section should be logical, accurate, and concise and detail nec"       \
    "essary steps needed to reach the conclusion.\n"                                               \
    "\n"

static const tok_chat_msg conv_hi[] = {MSG(USER, "Hi")};
static const tok_chat_msg conv_weather[] = {MSG(USER, "Weather?")};
static const tok_chat_msg conv_no_think[] = {MSG(SYSTEM, "Be brief. /no_think  "), MSG(USER, "a"),
                                             MSG(ASSISTANT, "\n\nHi there"), MSG(USER, "b")};
static const tok_chat_msg conv_think_flag[] = {MSG(SYSTEM, "/think You are X.\n"), MSG(USER, "a"),
                                               MSG(ASSISTANT, "x")};
static const tok_chat_msg conv_mid_system[] = {
    MSG(USER, "a"), MSG(ASSISTANT, "b"), MSG(SYSTEM, "ignored"), MSG(USER, "c"), MSG(TOOL, "r")};
static const tok_chat_msg conv_override[] = {MSG(SYSTEM, "Only this. /system_override /no_think"),
                                             MSG(USER, "a"), MSG(ASSISTANT, "b")};
static const tok_chat_msg conv_tools[] = {MSG(SYSTEM, "S"), MSG(USER, "Weather?"),
                                          MSG(TOOL, "18 C"), MSG(USER, "Oslo?")};

typedef struct render_case {
    const char *what;
    const tok_chat_msg *m;
    size_t n;
    bool no_thinking;   /* enable_thinking false */
    const char *tools;  /* NULL: none */
    const char *full;   /* what SmolLM3's template prints */
    const char *short_; /* what Unsloth's prints (NULL: not compared: it has no tools) */
} render_case;

/* The tools section both tool cases print (from "\n### Tools" to the system turn's end). */
#define TOOLS_SECTION                                                                              \
    "\n### Tools\n\nYou may call one or more functions to assist with the user query.\n"           \
    "You are provided with function signatures within <tools></tools> XML tags:\n"                 \
    "\n<tools>\n{'type': 'function', 'function': {'name': 'get_weather', 'description': 'It"       \
    "\\'s the weather \"now\" in a city \303\240 l\\'heure,\\nwith a \\\\ backslash', 'para"       \
    "meters': {'type': 'object', 'properties': {'city': {'type': 'string'}, 'days': {'type'"       \
    ": 'integer', 'minimum': 1, 'maximum': 7.5, 'default': None}, 'metric': {'type': 'boole"       \
    "an', 'default': True}}, 'required': ['city']}}}\n"                                            \
    "{'type': 'function', 'function': {'name': 'now', 'description': 'The time', 'parameter"       \
    "s': {'type': 'object', 'properties': {}}}}\n"                                                 \
    "</tools>\n\nFor each function call, return a json object with function name and argume"       \
    "nts within <tool_call></tool_call> XML tags:\n"                                               \
    "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"                \
    "</tool_call>\n\n<|im_end|>\n"

static const render_case CASES[] = {
    {"default_think", conv_hi, N(conv_hi), false, NULL,
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Today Date: 05 March 2026\nReasoning Mode: /think\n"
     "\n## Custom Instructions\n\n" THINK_PERSONA "<|im_start|>user\nHi<|im_end|>\n"
     "<|im_start|>assistant\n",
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Reasoning Mode: /think\n\n## Custom Instructions\n"
     "\n" THINK_PERSONA "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
     "<|im_start|>assistant\n"},
    {"default_no_think", conv_hi, N(conv_hi), true, NULL,
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Today Date: 05 March 2026\nReasoning Mode: /no_think\n"
     "\n## Custom Instructions\n\nYou are a helpful AI assistant named SmolLM, trained by Hu"
     "gging Face.\n\n<|im_start|>user\n"
     "Hi<|im_end|>\n<|im_start|>assistant\n"
     "<think>\n\n</think>\n",
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Reasoning Mode: /no_think\n\n## Custom Instructions\n"
     "\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face.\n"
     "\n<|im_end|>\n<|im_start|>user\n"
     "Hi<|im_end|>\n<|im_start|>assistant\n"
     "<think>\n\n</think>\n"},
    {"system_no_think", conv_no_think, N(conv_no_think), false, NULL,
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Today Date: 05 March 2026\nReasoning Mode: /no_think\n"
     "\n## Custom Instructions\n\nBe brief.\n"
     "\n<|im_start|>user\na<|im_end|>\n"
     "<|im_start|>assistant\n<think>\n"
     "\n</think>\nHi there<|im_end|>\n"
     "<|im_start|>user\nb<|im_end|>\n"
     "<|im_start|>assistant\n<think>\n"
     "\n</think>\n",
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Reasoning Mode: /no_think\n\n## Custom Instructions\n"
     "\nBe brief.\n\n<|im_end|>\n<|im_start|>user\n"
     "a<|im_end|>\n<|im_start|>assistant\n"
     "<think>\n\n</think>\nHi there<|im_end|>\n"
     "<|im_start|>user\nb<|im_end|>\n"
     "<|im_start|>assistant\n<think>\n"
     "\n</think>\n"},
    {"system_think_flag", conv_think_flag, N(conv_think_flag), true, NULL,
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Today Date: 05 March 2026\nReasoning Mode: /think\n"
     "\n## Custom Instructions\n\n You are X.\n"
     "\n<|im_start|>user\na<|im_end|>\n"
     "<|im_start|>assistant\nx<|im_end|>\n"
     "<|im_start|>assistant\n",
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Reasoning Mode: /think\n\n## Custom Instructions\n"
     "\n You are X.\n\n<|im_end|>\n<|im_start|>user\n"
     "a<|im_end|>\n<|im_start|>assistant\n"
     "x<|im_end|>\n<|im_start|>assistant\n"},
    {"mid_system", conv_mid_system, N(conv_mid_system), false, NULL,
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Today Date: 05 March 2026\nReasoning Mode: /think\n"
     "\n## Custom Instructions\n\n" THINK_PERSONA "<|im_start|>user\na<|im_end|>\n"
     "<|im_start|>assistant\nb<|im_end|>\n"
     "<|im_start|>user\nc<|im_end|>\n"
     "<|im_start|>user\nr<|im_end|>\n"
     "<|im_start|>assistant\n",
     NULL}, /* its tool result: the generic rendering (Unsloth's has no tools) */
    {"override", conv_override, N(conv_override), false, NULL,
     "<|im_start|>system\nOnly this.<|im_end|>\n"
     "<|im_start|>user\na<|im_end|>\n"
     "<|im_start|>assistant\n<think>\n"
     "\n</think>\nb<|im_end|>\n<|im_start|>assistant\n"
     "<think>\n\n</think>\n",
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Reasoning Mode: /no_think\n\n## Custom Instructions\n"
     "\nOnly this. /system_override\n"
     "\n<|im_end|>\n<|im_start|>user\n"
     "a<|im_end|>\n<|im_start|>assistant\n"
     "<think>\n\n</think>\nb<|im_end|>\n"
     "<|im_start|>assistant\n<think>\n"
     "\n</think>\n"},
    {"tools", conv_tools, N(conv_tools), false, TOOLS,
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Today Date: 05 March 2026\nReasoning Mode: /think\n"
     "\n## Custom Instructions\n\nS\n" TOOLS_SECTION "<|im_start|>user\n"
     "Weather?<|im_end|>\n<|im_start|>user\n"
     "18 C<|im_end|>\n<|im_start|>user\n"
     "Oslo?<|im_end|>\n<|im_start|>assistant\n",
     NULL},
    {"tools_no_system", conv_weather, N(conv_weather), true, TOOLS,
     "<|im_start|>system\n## Metadata\n"
     "\nKnowledge Cutoff Date: June 2025\n"
     "Today Date: 05 March 2026\nReasoning Mode: /no_think\n"
     "\n## Custom Instructions\n\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
     "Face.\n" TOOLS_SECTION "<|im_start|>user\n"
     "Weather?<|im_end|>\n<|im_start|>assistant\n"
     "<think>\n\n</think>\n",
     NULL},
};

static void check_render(const tok_chat_template *t, const render_case *c, const char *want) {
    tok_chat_opts o = {.bos = "",
                       .eos = "<|im_end|>",
                       .add_generation_prompt = true,
                       .now = NOON_MARCH_5_2026,
                       .tools = c->tools,
                       .no_thinking = c->no_thinking};
    char *out = NULL;
    size_t len = 0;
    const hearth_err err = tok_chat_render(t, c->m, c->n, &o, &out, &len);
    CHECKF(!err && len == strlen(want) && !memcmp(out, want, len),
           "%s %s:\n--- got ---\n%s\n--- expected ---\n%s", t->name, c->what,
           err ? hearth_last_error() : out, want);
    free(out);
}

static void test_templates(void) {
    tok_chat_template full, brief;
    REQUIRE(tok_chat_detect(TMPL_FULL, strlen(TMPL_FULL), &full) == HEARTH_OK);
    REQUIRE(tok_chat_detect(TMPL_SHORT, strlen(TMPL_SHORT), &brief) == HEARTH_OK);
    CHECK(!strcmp(full.name, "smollm3") && full.think && full.tools == TOK_TOOLS_SMOLLM3);
    CHECK(!strcmp(brief.name, "smollm3-short") && brief.think && brief.tools == TOK_TOOLS_GENERIC);
    for (size_t i = 0; i < N(CASES); i++) {
        check_render(&full, &CASES[i], CASES[i].full);
        if (CASES[i].short_) check_render(&brief, &CASES[i], CASES[i].short_);
    }
    tok_chat_template named;
    CHECK(tok_chat_named("smollm3", &named) == HEARTH_OK && named.family == full.family &&
          named.tools == full.tools && named.date_now);
    CHECK(tok_chat_named("smollm3-short", &named) == HEARTH_OK && !named.date_now);
}

/* The departure: an assistant's calls (the template prints its content only)
 * in the Hermes form its tools section asks for, after the content. */
static void test_calls(void) {
    tok_chat_template t;
    REQUIRE(tok_chat_named("smollm3", &t) == HEARTH_OK);
    static const tok_chat_msg conv[] = {MSG(SYSTEM, "/no_think"), MSG(USER, "Weather?"),
                                        MSG(ASSISTANT, "Checking."), MSG(TOOL, "18 C")};
    static const tok_chat_tool_call calls[] = {{"call_1", "get_weather", "{\"city\":\"Paris\"}"},
                                               {"call_2", "now", ""}};
    const tok_chat_msg_tools mt[] = {{0}, {0}, {calls, 2, NULL}, {0, 0, "call_1"}};
    tok_chat_opts o = {.now = NOON_MARCH_5_2026, .msg_tools = mt};
    char *out = NULL;
    size_t len = 0;
    REQUIRE(tok_chat_render(&t, conv, N(conv), &o, &out, &len) == HEARTH_OK);
    CHECKF(strstr(out, "<|im_start|>assistant\n<think>\n\n</think>\nChecking.\n<tool_call>\n"
                       "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                       "</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n"
                       "</tool_call><|im_end|>\n<|im_start|>user\n18 C<|im_end|>\n") != NULL,
           "%s", out);
    free(out);
}

int main(void) {
    test_templates();
    test_calls();
    return test_done("test_chat_smollm3");
}
