/*
 * test_chat_ministral3.c - Ministral 3's chat templates (Instruct and
 * Reasoning): each real template recognized (tokenizer/chat_inst.c) with
 * the default system message read from its text, and rendered byte for
 * byte as it prints: tools, calls (arguments as sent, "" as {}), results,
 * the default system prompt and the template's errors.
 *
 * The expected prompts are what the templates printed under Python's jinja2
 * with Hugging Face's settings (trim_blocks, lstrip_blocks, tojson without
 * sorting or ASCII escapes, bos "<s>", eos "</s>") for the same messages.
 */
#include "test.h"

#include "tokenizer/chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG(r, s)                                                                                  \
    { TOK_CHAT_##r, s, sizeof(s) - 1 }
#define N(a) (sizeof(a) / sizeof(a)[0])

/* mistralai/Ministral-3-14B-Instruct-2512's (the 3B and 8B differ in the name only). */
static const char TMPL_INSTRUCT[] =
    "{#- Default system message if no system prompt is passed. #}\n"
    "{%- set default_system_message = 'You are Ministral-3-14B-Instruct-2512, a Large Languag"
    "e Model (LLM) created by Mistral AI, a French startup headquartered in Paris.\\nYou powe"
    "r an AI assistant called Le Chat.\\nYour knowledge base was last updated on 2023-10-01."
    "\\nThe current date is {today}.\\n\\nWhen you\\'re not sure about some information or wh"
    "en the user\\'s request requires up-to-date or specific data, you must use the available"
    " tools to fetch the information. Do not hesitate to use tools whenever they can provide "
    "a more accurate or complete response. If no relevant tools are available, then clearly s"
    "tate that you don\\'t have the information and avoid making up anything.\\nIf the user\\"
    "'s question is not clear, ambiguous, or does not provide enough context for you to accur"
    "ately answer the question, you do not try to answer it right away and you rather ask the"
    " user to clarify their request (e.g. \"What are some good restaurants around me?\" => \""
    "Where are you?\" or \"When is the next flight to Tokyo\" => \"Where do you travel from?"
    "\").\\nYou are always very attentive to dates, in particular you try to resolve dates (e"
    ".g. \"yesterday\" is {yesterday}) and when asked about information at specific dates, yo"
    "u discard information that is at another date.\\nYou follow these instructions in all la"
    "nguages, and always respond to the user in the language they use or request.\\nNext sect"
    "ions describe the capabilities that you have.\\n\\n# WEB BROWSING INSTRUCTIONS\\n\\nYou "
    "cannot perform any web search or access internet to open URLs, links etc. If it seems li"
    "ke the user is expecting you to do so, you clarify the situation and ask the user to cop"
    "y paste the text directly in the chat.\\n\\n# MULTI-MODAL INSTRUCTIONS\\n\\nYou have the"
    " ability to read images, but you cannot generate images. You also cannot transcribe audi"
    "o files or videos.\\nYou cannot read nor transcribe audio files or videos.\\n\\n# TOOL C"
    "ALLING INSTRUCTIONS\\n\\nYou may have access to tools that you can use to fetch informat"
    "ion or perform actions. You must use these tools in the following situations:\\n\\n1. Wh"
    "en the request requires up-to-date information.\\n2. When the request requires specific "
    "data that you do not have in your knowledge base.\\n3. When the request involves actions"
    " that you cannot perform without tools.\\n\\nAlways prioritize using tools to provide th"
    "e most accurate and helpful response. If tools are not available, inform the user that y"
    "ou cannot perform the requested action at the moment.' %}\n"
    "{#- Begin of sequence token. #}\n{{- bos_token }}\n"
    "{#- Handle system prompt if it exists. #}\n"
    "{#- System prompt supports text content or text chunks. #}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '[SYSTEM_PROMPT]' -}}\n    {%- if messages[0]['content'] is string %}\n"
    "        {{- messages[0]['content'] -}}\n    {%- else %}        \n"
    "        {%- for block in messages[0]['content'] %}\n"
    "            {%- if block['type'] == 'text' %}\n"
    "                {{- block['text'] }}\n            {%- else %}\n"
    "                {{- raise_exception('Only text chunks are supported in system message co"
    "ntents.') }}\n            {%- endif %}\n        {%- endfor %}\n"
    "    {%- endif %}\n    {{- '[/SYSTEM_PROMPT]' -}}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n    {%- set loop_messages = messages %}\n"
    "    {%- if default_system_message != '' %}\n"
    "        {{- '[SYSTEM_PROMPT]' + default_system_message + '[/SYSTEM_PROMPT]' }}\n"
    "    {%- endif %}\n{%- endif %}\n{#- Tools definition #}\n"
    "{%- set tools_definition = '' %}\n{%- set has_tools = false %}\n"
    "{%- if tools is defined and tools is not none and tools|length > 0 %}\n"
    "    {%- set has_tools = true %}\n    {%- set tools_definition = '[AVAILABLE_TOOLS]' + (t"
    "ools| tojson) + '[/AVAILABLE_TOOLS]' %}\n"
    "    {{- tools_definition }}\n{%- endif %}\n"
    "{#- Checks for alternating user/assistant messages. #}\n"
    "{%- set ns = namespace(index=0) %}\n{%- for message in loop_messages %}\n"
    "    {%- if message.role == 'user' or (message.role == 'assistant' and (message.tool_call"
    "s is not defined or message.tool_calls is none or message.tool_calls | length == 0)) %}"
    "\n        {%- if (message['role'] == 'user') != (ns.index % 2 == 0) %}\n"
    "            {{- raise_exception('After the optional system message, conversation roles m"
    "ust alternate user and assistant roles except for tool calls and results.') }}\n"
    "        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n"
    "    {%- endif %}\n{%- endfor %}\n{#- Handle conversation messages. #}\n"
    "{%- for message in loop_messages %}\n    {#- User messages supports text content or text"
    " and image chunks. #}\n    {%- if message['role'] == 'user' %}\n"
    "        {%- if message['content'] is string %}\n"
    "            {{- '[INST]' + message['content'] + '[/INST]' }}\n"
    "        {%- elif message['content'] | length > 0 %}\n"
    "            {{- '[INST]' }}\n            {%- if message['content'] | length == 2 %}\n"
    "                {%- set blocks = message['content'] | sort(attribute='type') %}\n"
    "            {%- else %}\n                {%- set blocks = message['content'] %}\n"
    "            {%- endif %}\n            {%- for block in blocks %}\n"
    "                {%- if block['type'] == 'text' %}\n"
    "                    {{- block['text'] }}\n"
    "                {%- elif block['type'] in ['image', 'image_url'] %}\n"
    "                    {{- '[IMG]' }}\n                {%- else %}\n"
    "                    {{- raise_exception('Only text, image and image_url chunks are suppo"
    "rted in user message content.') }}\n                {%- endif %}\n"
    "            {%- endfor %}\n            {{- '[/INST]' }}\n"
    "        {%- else %}\n            {{- raise_exception('User message must have a string or"
    " a list of chunks in content') }}\n        {%- endif %}\n"
    "    {#- Assistant messages supports text content or text and image chunks. #}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {%- if (message['content'] is none or message['content'] == '' or message['conte"
    "nt']|length == 0) and (message['tool_calls'] is not defined or message['tool_calls'] is "
    "none or message['tool_calls']|length == 0) %}\n"
    "            {{- raise_exception('Assistant message must have a string or a list of chunk"
    "s in content or a list of tool calls.') }}\n"
    "        {%- endif %}\n        {%- if message['content'] is string %}\n"
    "            {{- message['content'] }}\n        {%- elif message['content'] | length > 0 "
    "%}\n            {%- for block in message['content'] %}\n"
    "                {%- if block['type'] == 'text' %}\n"
    "                    {{- block['text'] }}\n"
    "                {%- else %}\n                    {{- raise_exception('Only text chunks a"
    "re supported in assistant message contents.') }}\n"
    "                {%- endif %}\n            {%- endfor %}\n"
    "        {%- endif %}\n        \n        {%- if message['tool_calls'] is defined and mess"
    "age['tool_calls'] is not none and message['tool_calls']|length > 0 %}\n"
    "            {%- for tool in message['tool_calls'] %}\n"
    "                {%- set arguments = tool['function']['arguments'] %}\n"
    "                {%- if arguments is not string %}\n"
    "                    {%- set arguments = arguments|tojson|safe %}\n"
    "                {%- elif arguments == '' %}\n"
    "                    {%- set arguments = '{}' %}\n"
    "                {%- endif %}\n                {{- '[TOOL_CALLS]' + tool['function']['nam"
    "e'] + '[ARGS]' + arguments }}\n            {%- endfor %}\n"
    "        {%- endif %}\n        {#- End of sequence token for each assistant messages. #}"
    "\n        {{- eos_token }}\n    {#- Tool messages only supports text content. #}\n"
    "    {%- elif message['role'] == 'tool' %}\n"
    "        {{- '[TOOL_RESULTS]' + message['content']|string + '[/TOOL_RESULTS]' }}\n"
    "    {#- Raise exception for unsupported roles. #}\n"
    "    {%- else %}\n        {{- raise_exception('Only user, assistant and tool roles are su"
    "pported, got ' + message['role'] + '.') }}\n"
    "    {%- endif %}\n{%- endfor %}\n";

#define DEFAULT_INSTRUCT                                                                           \
    "You are Ministral-3-14B-Instruct-2512, a Large Language Model (LLM) created by Mistral A"     \
    "I, a French startup headquartered in Paris.\n"                                                \
    "You power an AI assistant called Le Chat.\n"                                                  \
    "Your knowledge base was last updated on 2023-10-01.\n"                                        \
    "The current date is {today}.\n\nWhen you're not sure about some information or when the "     \
    "user's request requires up-to-date or specific data, you must use the available tools to"     \
    " fetch the information. Do not hesitate to use tools whenever they can provide a more ac"     \
    "curate or complete response. If no relevant tools are available, then clearly state that"     \
    " you don't have the information and avoid making up anything.\n"                              \
    "If the user's question is not clear, ambiguous, or does not provide enough context for y"     \
    "ou to accurately answer the question, you do not try to answer it right away and you rat"     \
    "her ask the user to clarify their request (e.g. \"What are some good restaurants around "     \
    "me?\" => \"Where are you?\" or \"When is the next flight to Tokyo\" => \"Where do you tr"     \
    "avel from?\").\nYou are always very attentive to dates, in particular you try to resolve"     \
    " dates (e.g. \"yesterday\" is {yesterday}) and when asked about information at specific "     \
    "dates, you discard information that is at another date.\n"                                    \
    "You follow these instructions in all languages, and always respond to the user in the la"     \
    "nguage they use or request.\nNext sections describe the capabilities that you have.\n"        \
    "\n# WEB BROWSING INSTRUCTIONS\n\nYou cannot perform any web search or access internet to"     \
    " open URLs, links etc. If it seems like the user is expecting you to do so, you clarify "     \
    "the situation and ask the user to copy paste the text directly in the chat.\n"                \
    "\n# MULTI-MODAL INSTRUCTIONS\n\nYou have the ability to read images, but you cannot gene"     \
    "rate images. You also cannot transcribe audio files or videos.\n"                             \
    "You cannot read nor transcribe audio files or videos.\n"                                      \
    "\n# TOOL CALLING INSTRUCTIONS\n\nYou may have access to tools that you can use to fetch "     \
    "information or perform actions. You must use these tools in the following situations:\n"      \
    "\n1. When the request requires up-to-date information.\n"                                     \
    "2. When the request requires specific data that you do not have in your knowledge base."      \
    "\n3. When the request involves actions that you cannot perform without tools.\n"              \
    "\nAlways prioritize using tools to provide the most accurate and helpful response. If to"     \
    "ols are not available, inform the user that you cannot perform the requested action at t"     \
    "he moment."

/* mistralai/Ministral-3-14B-Reasoning-2512's. */
static const char TMPL_REASONING[] =
    "{#- Default system message if no system prompt is passed. #}\n"
    "{%- set default_system_message = '# HOW YOU SHOULD THINK AND ANSWER\\n\\nFirst draft you"
    "r thinking process (inner monologue) until you arrive at a response. Format your respons"
    "e using Markdown, and use LaTeX for any mathematical equations. Write both your thoughts"
    " and the response in the same language as the input.\\n\\nYour thinking process must fol"
    "low the template below:[THINK]Your thoughts or/and draft, like working through an exerci"
    "se on scratch paper. Be as casual and as long as you want until you are confident to gen"
    "erate the response to the user.[/THINK]Here, provide a self-contained response.' %}\n"
    "\n{#- Begin of sequence token. #}\n{{- bos_token }}\n"
    "\n{#- Handle system prompt if it exists. #}\n"
    "{#- System prompt supports text content or text and thinking chunks. #}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '[SYSTEM_PROMPT]' -}}\n    {%- if messages[0]['content'] is string %}\n"
    "        {{- messages[0]['content'] -}}\n    {%- else %}        \n"
    "        {%- for block in messages[0]['content'] %}\n"
    "            {%- if block['type'] == 'text' %}\n"
    "                {{- block['text'] }}\n            {%- elif block['type'] == 'thinking' %"
    "}\n                {{- '[THINK]' + block['thinking'] + '[/THINK]' }}\n"
    "            {%- else %}\n                {{- raise_exception('Only text and thinking chu"
    "nks are supported in system message contents.') }}\n"
    "            {%- endif %}\n        {%- endfor %}\n"
    "    {%- endif %}\n    {{- '[/SYSTEM_PROMPT]' -}}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n    {%- set loop_messages = messages %}\n"
    "    {%- if default_system_message != '' %}\n"
    "        {{- '[SYSTEM_PROMPT]' + default_system_message + '[/SYSTEM_PROMPT]' }}\n"
    "    {%- endif %}\n{%- endif %}\n\n\n{#- Tools definition #}\n"
    "{%- set tools_definition = '' %}\n{%- set has_tools = false %}\n"
    "{%- if tools is defined and tools is not none and tools|length > 0 %}\n"
    "    {%- set has_tools = true %}\n    {%- set tools_definition = '[AVAILABLE_TOOLS]' + (t"
    "ools| tojson) + '[/AVAILABLE_TOOLS]' %}\n"
    "    {{- tools_definition }}\n{%- endif %}\n"
    "\n{#- Checks for alternating user/assistant messages. #}\n"
    "{%- set ns = namespace(index=0) %}\n{%- for message in loop_messages %}\n"
    "    {%- if message.role == 'user' or (message.role == 'assistant' and (message.tool_call"
    "s is not defined or message.tool_calls is none or message.tool_calls | length == 0)) %}"
    "\n        {%- if (message['role'] == 'user') != (ns.index % 2 == 0) %}\n"
    "            {{- raise_exception('After the optional system message, conversation roles m"
    "ust alternate user and assistant roles except for tool calls and results.') }}\n"
    "        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n"
    "    {%- endif %}\n{%- endfor %}\n\n{#- Handle conversation messages. #}\n"
    "{%- for message in loop_messages %}\n\n    {#- User messages supports text content or te"
    "xt and image chunks. #}\n    {%- if message['role'] == 'user' %}\n"
    "        {%- if message['content'] is string %}\n"
    "            {{- '[INST]' + message['content'] + '[/INST]' }}\n"
    "        {%- elif message['content'] | length > 0 %}\n"
    "            {{- '[INST]' }}\n            {%- if message['content'] | length == 2 %}\n"
    "                {%- set blocks = message['content'] | sort(attribute='type') %}\n"
    "            {%- else %}\n                {%- set blocks = message['content'] %}\n"
    "            {%- endif %}\n            {%- for block in blocks %}\n"
    "                {%- if block['type'] == 'text' %}\n"
    "                    {{- block['text'] }}\n"
    "                {%- elif block['type'] in ['image', 'image_url'] %}\n"
    "                    {{- '[IMG]' }}\n                {%- else %}\n"
    "                    {{- raise_exception('Only text, image and image_url chunks are suppo"
    "rted in user message content.') }}\n                {%- endif %}\n"
    "            {%- endfor %}\n            {{- '[/INST]' }}\n"
    "        {%- else %}\n            {{- raise_exception('User message must have a string or"
    " a list of chunks in content') }}\n        {%- endif %}\n"
    "\n    {#- Assistant messages supports text content or text, image and thinking chunks. #"
    "}\n    {%- elif message['role'] == 'assistant' %}\n"
    "        {%- if (message['content'] is none or message['content'] == '' or message['conte"
    "nt']|length == 0) and (message['tool_calls'] is not defined or message['tool_calls'] is "
    "none or message['tool_calls']|length == 0) %}\n"
    "            {{- raise_exception('Assistant message must have a string or a list of chunk"
    "s in content or a list of tool calls.') }}\n"
    "        {%- endif %}\n\n        {%- if message['content'] is string and message['content"
    "'] != '' %}\n            {{- message['content'] }}\n"
    "        {%- elif message['content'] | length > 0 %}\n"
    "            {%- for block in message['content'] %}\n"
    "                {%- if block['type'] == 'text' %}\n"
    "                    {{- block['text'] }}\n"
    "                {%- elif block['type'] == 'thinking' %}\n"
    "                    {{- '[THINK]' + block['thinking'] + '[/THINK]' }}\n"
    "                {%- else %}\n                    {{- raise_exception('Only text and thin"
    "king chunks are supported in assistant message contents.') }}\n"
    "                {%- endif %}\n            {%- endfor %}\n"
    "        {%- endif %}\n        \n        {%- if message['tool_calls'] is defined and mess"
    "age['tool_calls'] is not none and message['tool_calls']|length > 0 %}\n"
    "            {%- for tool in message['tool_calls'] %}\n"
    "                {{- '[TOOL_CALLS]' }}\n                {%- set name = tool['function']['"
    "name'] %}\n                {%- set arguments = tool['function']['arguments'] %}\n"
    "                {%- if arguments is not string %}\n"
    "                    {%- set arguments = arguments|tojson|safe %}\n"
    "                {%- elif arguments == '' %}\n"
    "                    {%- set arguments = '{}' %}\n"
    "                {%- endif %}\n                {{- name + '[ARGS]' + arguments }}\n"
    "            {%- endfor %}\n        {%- endif %}\n"
    "\n        {{- eos_token }}\n\n    {#- Tool messages only supports text content. #}\n"
    "    {%- elif message['role'] == 'tool' %}\n"
    "        {{- '[TOOL_RESULTS]' + message['content']|string + '[/TOOL_RESULTS]' }}\n"
    "\n    {#- Raise exception for unsupported roles. #}\n"
    "    {%- else %}\n        {{- raise_exception('Only user, assistant and tool roles are su"
    "pported, got ' + message['role'] + '.') }}\n"
    "    {%- endif %}\n{%- endfor %}\n";

#define DEFAULT_REASONING                                                                          \
    "# HOW YOU SHOULD THINK AND ANSWER\n\nFirst draft your thinking process (inner monologue)"     \
    " until you arrive at a response. Format your response using Markdown, and use LaTeX for "     \
    "any mathematical equations. Write both your thoughts and the response in the same langua"     \
    "ge as the input.\n\nYour thinking process must follow the template below:[THINK]Your tho"     \
    "ughts or/and draft, like working through an exercise on scratch paper. Be as casual and "     \
    "as long as you want until you are confident to generate the response to the user.[/THINK"     \
    "]Here, provide a self-contained response."

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in "
    "a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7.5}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"now\",\"description\":\"The time \303\240 "
    "Paris\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";

/* The second tool alone. */
static const char TOOL_NOW[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"now\",\"description\":\"The time \303\240 "
    "Paris\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";

typedef struct render_case {
    const char *what;
    const tok_chat_msg *m;
    size_t n;
    const tok_chat_msg_tools *mt; /* NULL: no calls or results */
    const char *tools;            /* NULL: none */
    const char *expected; /* "%s": the template's default system message; "ERROR: ": raised */
} render_case;

static const tok_chat_msg conv_tools[] = {
    MSG(SYSTEM, "Be brief."),        MSG(USER, "Weather in Paris?"),
    MSG(ASSISTANT, "Let me check."), MSG(TOOL, "18 C"),
    MSG(TOOL, "{\"t\": \"12:00\"}"), MSG(ASSISTANT, "It is 18 C at noon."),
    MSG(USER, "And Oslo?")};
static const tok_chat_tool_call calls[] = {{"call_1", "get_weather", "{\"city\":\"Paris\"}"},
                                           {"call_1", "now", ""}};
static const tok_chat_msg_tools mt_tools[] = {
    {0}, {0}, {calls, 2, NULL}, {0, 0, "call_1"}, {0, 0, "call_1"}, {0}, {0}};

static const tok_chat_msg conv_hi[] = {MSG(USER, "Hi")};
static const tok_chat_msg conv_call_only[] = {MSG(USER, "Hi"), MSG(ASSISTANT, ""),
                                              MSG(TOOL, "noon")};
static const tok_chat_tool_call call_now = {"call_1", "now", "{}"};
static const tok_chat_msg_tools mt_call_only[] = {{0}, {&call_now, 1, NULL}, {0}};
static const tok_chat_msg conv_alternate[] = {MSG(USER, "a"), MSG(USER, "b")};
static const tok_chat_msg conv_empty[] = {MSG(USER, "a"), MSG(ASSISTANT, "")};
static const tok_chat_msg conv_mid_system[] = {MSG(USER, "a"), MSG(ASSISTANT, "b"),
                                               MSG(SYSTEM, "s"), MSG(USER, "c")};

static const render_case CASES[] = {
    {"tools", conv_tools, N(conv_tools), mt_tools, TOOLS,
     "<s>[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][AVAILABLE_TOOLS][{\"type\": \"function\", \""
     "function\": {\"name\": \"get_weather\", \"description\": \"Weather in a city\", \"parame"
     "ters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"days"
     "\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 7.5}}, \"required\": [\"city\"]"
     "}}}, {\"type\": \"function\", \"function\": {\"name\": \"now\", \"description\": \"The t"
     "ime \303\240 Paris\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}][/AVA"
     "ILABLE_TOOLS][INST]Weather in Paris?[/INST]Let me check.[TOOL_CALLS]get_weather[ARGS]{\""
     "city\":\"Paris\"}[TOOL_CALLS]now[ARGS]{}</s>[TOOL_RESULTS]18 C[/TOOL_RESULTS][TOOL_RESUL"
     "TS]{\"t\": \"12:00\"}[/TOOL_RESULTS]It is 18 C at noon.</s>[INST]And Oslo?[/INST]"},
    {"default", conv_hi, N(conv_hi), NULL, NULL,
     "<s>[SYSTEM_PROMPT]%s[/SYSTEM_PROMPT][INST]Hi[/INST]"},
    {"call_only", conv_call_only, N(conv_call_only), mt_call_only, TOOL_NOW,
     "<s>[SYSTEM_PROMPT]%s[/SYSTEM_PROMPT][AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": "
     "{\"name\": \"no"
     "w\", \"description\": \"The time \303\240 Paris\", \"parameters\": {\"type\": \"object\""
     ", \"properties\": {}}}}][/AVAILABLE_TOOLS][INST]Hi[/INST][TOOL_CALLS]now[ARGS]{}</s>[TOO"
     "L_RESULTS]noon[/TOOL_RESULTS]"},
    {"alternate", conv_alternate, N(conv_alternate), NULL, NULL,
     "ERROR: After the optional system message, conversation roles must alternate user and "
     "assistant roles except for tool calls and results."},
    {"empty_assistant", conv_empty, N(conv_empty), NULL, NULL,
     "ERROR: Assistant message must have a string or a list of chunks in content or a list of "
     "tool calls."},
    {"mid_system", conv_mid_system, N(conv_mid_system), NULL, NULL,
     "ERROR: Only user, assistant and tool roles are supported, got system."},
};

static void test_template(const char *tmpl, const char *name, const char *default_system) {
    tok_chat_template t = {0};
    const hearth_err err = tok_chat_detect(tmpl, strlen(tmpl), &t);
    CHECKF(err == HEARTH_OK && !strcmp(t.name, name), "%s: detected as %s (%s)", name,
           err ? "nothing" : t.name, err ? hearth_last_error() : "");
    if (err) return;
    CHECK(t.bos && t.tools == TOK_TOOLS_MINISTRAL && !strcmp(t.default_system, default_system));
    CHECK(t.think == !strcmp(name, "ministral3-reasoning")); /* [THINK] split off */
    for (size_t i = 0; i < N(CASES); i++) {
        const render_case *c = &CASES[i];
        tok_chat_opts o = {.bos = "<s>", .eos = "</s>", .tools = c->tools, .msg_tools = c->mt};
        char *out = NULL, expected[8192];
        size_t len = 0;
        const char *slot = strstr(c->expected, "%s");
        if (slot)
            snprintf(expected, sizeof expected, "%.*s%s%s", (int)(slot - c->expected), c->expected,
                     default_system, slot + 2);
        else
            snprintf(expected, sizeof expected, "%s", c->expected);
        const hearth_err e = tok_chat_render(&t, c->m, c->n, &o, &out, &len);
        if (!strncmp(expected, "ERROR: ", 7)) {
            CHECKF(e == HEARTH_ERR_INVALID_ARG && !strcmp(hearth_last_error(), expected + 7),
                   "%s %s: want the error '%s', got %d '%s'", name, c->what, expected + 7, e,
                   e ? hearth_last_error() : out);
        } else {
            CHECKF(!e && len == strlen(expected) && !memcmp(out, expected, len),
                   "%s %s:\n--- got ---\n%s\n--- expected ---\n%s", name, c->what,
                   e ? hearth_last_error() : out, expected);
        }
        free(out);
    }
}

/* By name: the same rendering without a default system message (it lives in
 * the file's template); a template whose default is no plain string is
 * refused, naming the overrides. */
static void test_named(void) {
    tok_chat_template t;
    REQUIRE(tok_chat_named("ministral3", &t) == HEARTH_OK);
    CHECK(t.tools == TOK_TOOLS_MINISTRAL && !t.think && !t.default_system[0]);
    tok_chat_opts o = {.bos = "<s>", .eos = "</s>"};
    char *out = NULL;
    size_t len = 0;
    REQUIRE(tok_chat_render(&t, conv_hi, N(conv_hi), &o, &out, &len) == HEARTH_OK);
    CHECK(!strcmp(out, "<s>[INST]Hi[/INST]"));
    free(out);
    REQUIRE(tok_chat_named("ministral3-reasoning", &t) == HEARTH_OK);
    CHECK(t.think && t.tools == TOK_TOOLS_MINISTRAL);

    char bad[sizeof TMPL_INSTRUCT + 16];
    snprintf(bad, sizeof bad, "%s", TMPL_INSTRUCT);
    char *q = strstr(bad, "Paris.\\n"); /* an escape Hearth does not read */
    REQUIRE(q);
    q[7] = 'x';
    CHECK(tok_chat_detect(bad, strlen(bad), &t) == HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "default system message") &&
          strstr(hearth_last_error(), "ministral3"));
}

int main(void) {
    test_template(TMPL_INSTRUCT, "ministral3", DEFAULT_INSTRUCT);
    test_template(TMPL_REASONING, "ministral3-reasoning", DEFAULT_REASONING);
    test_named();
    return test_done("test_chat_ministral3");
}
