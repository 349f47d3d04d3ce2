/*
 * test_chat_inst.c - the [INST] chat formats (Llama 2, Mistral's v1, v3,
 * v3-tekken, v7, the first Mixtral template) and Zephyr's: each real
 * template text recognized as its variant (tokenizer/chat_inst.c,
 * chat_template.c), and rendered byte for byte as the template prints.
 *
 * The expected prompts were not worked out by hand: they are what each
 * template printed under Python's jinja2 with Hugging Face's settings
 * (trim_blocks, lstrip_blocks, bos "<s>", eos "</s>") for the same messages,
 * errors included (the template's raise_exception message). One departure,
 * on purpose: the first Mixtral template has no system role and raises on
 * one; Hearth merges it into the first user turn with "\n" (as llama.cpp
 * does), and the expected prompt is the template's for the merged messages.
 */
#include "test.h"

#include <ctype.h>
#include "tokenizer/chat_template.h"

#include <stdlib.h>
#include <string.h>

#define MSG(r, s)                                                                                  \
    { TOK_CHAT_##r, s, sizeof(s) - 1 }
#define N(a) (sizeof(a) / sizeof(a)[0])

/* HuggingFaceH4/zephyr-7b-beta's, also TinyLlama-1.1B-Chat's. */
static const char TMPL_ZEPHYR[] = "{% for message in messages %}\n"
                                  "{% if message['role'] == 'user' %}\n"
                                  "{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
                                  "{% elif message['role'] == 'system' %}\n"
                                  "{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
                                  "{% elif message['role'] == 'assistant' %}\n"
                                  "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
                                  "{% endif %}\n"
                                  "{% if loop.last and add_generation_prompt %}\n"
                                  "{{ '<|assistant|>' }}\n"
                                  "{% endif %}\n"
                                  "{% endfor %}";

/* Mixtral-8x7B-Instruct-v0.1's (Mistral 7B v0.1/v0.2's first): no system role. */
static const char TMPL_MIXTRAL[] =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.in"
    "dex0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/use"
    "r/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['"
    "content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] +"
    " eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') "
    "}}{% endif %}{% endfor %}";

/* meta-llama/Llama-2-*-chat-hf's. */
static const char TMPL_LLAMA2[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set syst"
    "em_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['rol"
    "e'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must al"
    "ternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and syste"
    "m_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n'"
    " + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% "
    "elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% en"
    "dif %}{% endfor %}";

/* Mistral's 'v1' (Mistral-7B-Instruct-v0.2's later one). */
static const char TMPL_MISTRAL_V1[] =
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must a"
    "lternate user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' "
    "}}\n"
    "        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token}}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the except"
    "ion of an initial optional system message!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n";

/* Mistral's 'v3' (Mistral-7B-Instruct-v0.3's, Mistral-Large-2407's). */
static const char TMPL_MISTRAL_V3[] =
    "{%- if messages[0][\"role\"] == \"system\" %}\n"
    "    {%- set system_message = messages[0][\"content\"] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{%- if not tools is defined %}\n"
    "    {%- set tools = none %}\n"
    "{%- endif %}\n"
    "{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | lis"
    "t %}\n"
    "\n"
    "{#- This block checks for alternating user/assistant messages, skipping tool calling mess"
    "ages #}\n"
    "{%- set ns = namespace() %}\n"
    "{%- set ns.index = 0 %}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message."
    "tool_calls is defined and message.tool_calls is not none)) %}\n"
    "        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n"
    "            {{- raise_exception(\"After the optional system message, conversation roles m"
    "ust alternate user/assistant/user/assistant/...\") }}\n"
    "        {%- endif %}\n"
    "        {%- set ns.index = ns.index + 1 %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if message[\"role\"] == \"user\" %}\n"
    "        {%- if tools is not none and (message == user_messages[-1]) %}\n"
    "            {{- \"[AVAILABLE_TOOLS] [\" }}\n"
    "            {%- for tool in tools %}\n"
    "                {%- set tool = tool.function %}\n"
    "                {{- '{\"type\": \"function\", \"function\": {' }}\n"
    "                {%- for key, val in tool.items() if key != \"return\" %}\n"
    "                    {%- if val is string %}\n"
    "                        {{- '\"' + key + '\": \"' + val + '\"' }}\n"
    "                    {%- else %}\n"
    "                        {{- '\"' + key + '\": ' + val|tojson }}\n"
    "                    {%- endif %}\n"
    "                    {%- if not loop.last %}\n"
    "                        {{- \", \" }}\n"
    "                    {%- endif %}\n"
    "                {%- endfor %}\n"
    "                {{- \"}}\" }}\n"
    "                {%- if not loop.last %}\n"
    "                    {{- \", \" }}\n"
    "                {%- else %}\n"
    "                    {{- \"]\" }}\n"
    "                {%- endif %}\n"
    "            {%- endfor %}\n"
    "            {{- \"[/AVAILABLE_TOOLS]\" }}\n"
    "            {%- endif %}\n"
    "        {%- if loop.last and system_message is defined %}\n"
    "            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/IN"
    "ST]\" }}\n"
    "        {%- else %}\n"
    "            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n"
    "        {%- endif %}\n"
    "    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n"
    "        {{- \"[TOOL_CALLS] [\" }}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- set out = tool_call.function|tojson %}\n"
    "            {{- out[:-1] }}\n"
    "            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n"
    "                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with l"
    "ength 9!\") }}\n"
    "            {%- endif %}\n"
    "            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n"
    "            {%- if not loop.last %}\n"
    "                {{- \", \" }}\n"
    "            {%- else %}\n"
    "                {{- \"]\" + eos_token }}\n"
    "            {%- endif %}\n"
    "        {%- endfor %}\n"
    "    {%- elif message[\"role\"] == \"assistant\" %}\n"
    "        {{- \" \" + message[\"content\"]|trim + eos_token}}\n"
    "    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n"
    "        {%- if message.content is defined and message.content.content is defined %}\n"
    "            {%- set content = message.content.content %}\n"
    "        {%- else %}\n"
    "            {%- set content = message.content %}\n"
    "        {%- endif %}\n"
    "        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + \", \" }}\n"
    "        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}"
    "\n"
    "            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with lengt"
    "h 9!\") }}\n"
    "        {%- endif %}\n"
    "        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n"
    "    {%- else %}\n"
    "        {{- raise_exception(\"Only user and assistant roles are supported, with the excep"
    "tion of an initial optional system message!\") }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n";

/* Mistral-Nemo-Instruct-2407's ('v3-tekken'; Ministral-8B-2410's is the same). */
static const char TMPL_MISTRAL_V3_TEKKEN[] =
    "{%- if messages[0][\"role\"] == \"system\" %}\n"
    "    {%- set system_message = messages[0][\"content\"] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{%- if not tools is defined %}\n"
    "    {%- set tools = none %}\n"
    "{%- endif %}\n"
    "{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | lis"
    "t %}\n"
    "\n"
    "{#- This block checks for alternating user/assistant messages, skipping tool calling mess"
    "ages #}\n"
    "{%- set ns = namespace() %}\n"
    "{%- set ns.index = 0 %}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message."
    "tool_calls is defined and message.tool_calls is not none)) %}\n"
    "        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n"
    "            {{- raise_exception(\"After the optional system message, conversation roles m"
    "ust alternate user/assistant/user/assistant/...\") }}\n"
    "        {%- endif %}\n"
    "        {%- set ns.index = ns.index + 1 %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if message[\"role\"] == \"user\" %}\n"
    "        {%- if tools is not none and (message == user_messages[-1]) %}\n"
    "            {{- \"[AVAILABLE_TOOLS][\" }}\n"
    "            {%- for tool in tools %}\n"
    "                {%- set tool = tool.function %}\n"
    "                {{- '{\"type\": \"function\", \"function\": {' }}\n"
    "                {%- for key, val in tool.items() if key != \"return\" %}\n"
    "                    {%- if val is string %}\n"
    "                        {{- '\"' + key + '\": \"' + val + '\"' }}\n"
    "                    {%- else %}\n"
    "                        {{- '\"' + key + '\": ' + val|tojson }}\n"
    "                    {%- endif %}\n"
    "                    {%- if not loop.last %}\n"
    "                        {{- \", \" }}\n"
    "                    {%- endif %}\n"
    "                {%- endfor %}\n"
    "                {{- \"}}\" }}\n"
    "                {%- if not loop.last %}\n"
    "                    {{- \", \" }}\n"
    "                {%- else %}\n"
    "                    {{- \"]\" }}\n"
    "                {%- endif %}\n"
    "            {%- endfor %}\n"
    "            {{- \"[/AVAILABLE_TOOLS]\" }}\n"
    "            {%- endif %}\n"
    "        {%- if loop.last and system_message is defined %}\n"
    "            {{- \"[INST]\" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INS"
    "T]\" }}\n"
    "        {%- else %}\n"
    "            {{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}\n"
    "        {%- endif %}\n"
    "    {%- elif (message.tool_calls is defined and message.tool_calls is not none) %}\n"
    "        {{- \"[TOOL_CALLS][\" }}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- set out = tool_call.function|tojson %}\n"
    "            {{- out[:-1] }}\n"
    "            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n"
    "                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with l"
    "ength 9!\") }}\n"
    "            {%- endif %}\n"
    "            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n"
    "            {%- if not loop.last %}\n"
    "                {{- \", \" }}\n"
    "            {%- else %}\n"
    "                {{- \"]\" + eos_token }}\n"
    "            {%- endif %}\n"
    "        {%- endfor %}\n"
    "    {%- elif message[\"role\"] == \"assistant\" %}\n"
    "        {{- message[\"content\"] + eos_token}}\n"
    "    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n"
    "        {%- if message.content is defined and message.content.content is defined %}\n"
    "            {%- set content = message.content.content %}\n"
    "        {%- else %}\n"
    "            {%- set content = message.content %}\n"
    "        {%- endif %}\n"
    "        {{- '[TOOL_RESULTS]{\"content\": ' + content|string + \", \" }}\n"
    "        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}"
    "\n"
    "            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with lengt"
    "h 9!\") }}\n"
    "        {%- endif %}\n"
    "        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n"
    "    {%- else %}\n"
    "        {{- raise_exception(\"Only user and assistant roles are supported, with the excep"
    "tion of an initial optional system message!\") }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n";

/* Mistral-Large-Instruct-2411's ('v7'). */
static const char TMPL_MISTRAL_V7[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] "
    "' + message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PR"
    "OMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant"
    "' %}{{ ' ' + message['content'] + eos_token }}{% else %}{{ raise_exception('Only user, sy"
    "stem and assistant roles are supported!') }}{% endif %}{% endfor %}";

/* Not the real text: the lines of Mistral-Small-3.2-24B-Instruct-2506's
 * template (v7-tekken) that recognition reads. */
static const char TMPL_MISTRAL_SMALL3[] =
    "{%- set default_system_message = 'You are Mistral Small 3, ...' %}\n"
    "{{- bos_token }}\n"
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}\n"
    "{{- '[INST]' + message['content'] + '[/INST]' }}\n";

/* llama.cpp's template test conversation: a system message, turns, and an
 * answer padded with spaces (to see who trims). */
static const tok_chat_msg conv_a[] = {
    MSG(SYSTEM, "You are a helpful assistant"),
    MSG(USER, "Hello"),
    MSG(ASSISTANT, "Hi there"),
    MSG(USER, "Who are you"),
    MSG(ASSISTANT, "   I am an assistant   "),
    MSG(USER, "Another question"),
};
/* Unicode white space (U+3000, U+2003) at the ends: Python's strip() cuts it */
static const tok_chat_msg conv_ws[] = {
    MSG(SYSTEM, " Be brief.\n"),
    MSG(USER, "\343\200\200 Hi\n "),
    MSG(ASSISTANT, "\n Hello \342\200\203"),
    MSG(USER, "Bye "),
};
static const tok_chat_msg conv_two_users[] = {MSG(USER, "a"), MSG(USER, "b")};
static const tok_chat_msg conv_mid_system[] = {MSG(USER, "a"), MSG(SYSTEM, "s"), MSG(USER, "b")};

typedef struct render_case {
    const char *tmpl;
    const char *what;
    const tok_chat_msg *m;
    size_t n;
    const char *expected; /* "ERROR: " + the template's message when it raises */
} render_case;

static const render_case CASES[] = {
    {TMPL_ZEPHYR, "conv_a", conv_a, N(conv_a),
     "<|system|>\n"
     "You are a helpful assistant</s>\n"
     "<|user|>\n"
     "Hello</s>\n"
     "<|assistant|>\n"
     "Hi there</s>\n"
     "<|user|>\n"
     "Who are you</s>\n"
     "<|assistant|>\n"
     "   I am an assistant   </s>\n"
     "<|user|>\n"
     "Another question</s>\n"
     "<|assistant|>\n"},
    {TMPL_ZEPHYR, "conv_a + 1", conv_a + 1, N(conv_a) - 1,
     "<|user|>\n"
     "Hello</s>\n"
     "<|assistant|>\n"
     "Hi there</s>\n"
     "<|user|>\n"
     "Who are you</s>\n"
     "<|assistant|>\n"
     "   I am an assistant   </s>\n"
     "<|user|>\n"
     "Another question</s>\n"
     "<|assistant|>\n"},
    {TMPL_ZEPHYR, "conv_a, 3", conv_a, 3,
     "<|system|>\n"
     "You are a helpful assistant</s>\n"
     "<|user|>\n"
     "Hello</s>\n"
     "<|assistant|>\n"
     "Hi there</s>\n"
     "<|assistant|>\n"},
    {TMPL_ZEPHYR, "conv_ws", conv_ws, N(conv_ws),
     "<|system|>\n"
     " Be brief.\n"
     "</s>\n"
     "<|user|>\n"
     "\343\200\200 Hi\n"
     " </s>\n"
     "<|assistant|>\n"
     "\n"
     " Hello \342\200\203</s>\n"
     "<|user|>\n"
     "Bye </s>\n"
     "<|assistant|>\n"},
    {TMPL_ZEPHYR, "conv_two_users", conv_two_users, N(conv_two_users),
     "<|user|>\n"
     "a</s>\n"
     "<|user|>\n"
     "b</s>\n"
     "<|assistant|>\n"},
    {TMPL_ZEPHYR, "conv_mid_system", conv_mid_system, N(conv_mid_system),
     "<|user|>\n"
     "a</s>\n"
     "<|system|>\n"
     "s</s>\n"
     "<|user|>\n"
     "b</s>\n"
     "<|assistant|>\n"},
    {TMPL_MIXTRAL, "conv_a", conv_a, N(conv_a),
     "<s>[INST] You are a helpful assistant\n"
     "Hello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Anot"
     "her question [/INST]"},
    {TMPL_MIXTRAL, "conv_a + 1", conv_a + 1, N(conv_a) - 1,
     "<s>[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>["
     "INST] Another question [/INST]"},
    {TMPL_MIXTRAL, "conv_a, 3", conv_a, 3,
     "<s>[INST] You are a helpful assistant\n"
     "Hello [/INST]Hi there</s>"},
    {TMPL_MIXTRAL, "conv_ws", conv_ws, N(conv_ws),
     "<s>[INST]  Be brief.\n"
     "\n"
     "\343\200\200 Hi\n"
     "  [/INST]\n"
     " Hello \342\200\203</s>[INST] Bye  [/INST]"},
    {TMPL_MIXTRAL, "conv_two_users", conv_two_users, N(conv_two_users),
     "ERROR: Conversation roles must alternate user/assistant/user/assistant/..."},
    {TMPL_MIXTRAL, "conv_mid_system", conv_mid_system, N(conv_mid_system),
     "ERROR: Only user and assistant roles are supported!"},
    {TMPL_LLAMA2, "conv_a", conv_a, N(conv_a),
     "<s>[INST] <<SYS>>\n"
     "You are a helpful assistant\n"
     "<</SYS>>\n"
     "\n"
     "Hello [/INST] Hi there </s><s>[INST] Who are you [/INST] I am an assistant </s><s>[INST] "
     "Another question [/INST]"},
    {TMPL_LLAMA2, "conv_a + 1", conv_a + 1, N(conv_a) - 1,
     "<s>[INST] Hello [/INST] Hi there </s><s>[INST] Who are you [/INST] I am an assistant </s>"
     "<s>[INST] Another question [/INST]"},
    {TMPL_LLAMA2, "conv_a, 3", conv_a, 3,
     "<s>[INST] <<SYS>>\n"
     "You are a helpful assistant\n"
     "<</SYS>>\n"
     "\n"
     "Hello [/INST] Hi there </s>"},
    {TMPL_LLAMA2, "conv_ws", conv_ws, N(conv_ws),
     "<s>[INST] <<SYS>>\n"
     " Be brief.\n"
     "\n"
     "<</SYS>>\n"
     "\n"
     "\343\200\200 Hi [/INST] Hello </s><s>[INST] Bye [/INST]"},
    {TMPL_LLAMA2, "conv_two_users", conv_two_users, N(conv_two_users),
     "ERROR: Conversation roles must alternate user/assistant/user/assistant/..."},
    {TMPL_LLAMA2, "conv_mid_system", conv_mid_system, N(conv_mid_system),
     "<s>[INST] a [/INST]<s>[INST] b [/INST]"},
    {TMPL_MISTRAL_V1, "conv_a", conv_a, N(conv_a),
     "<s> [INST] You are a helpful assistant\n"
     "\n"
     "Hello [/INST] Hi there</s> [INST] Who are you [/INST]    I am an assistant   </s> [INST] "
     "Another question [/INST]"},
    {TMPL_MISTRAL_V1, "conv_a + 1", conv_a + 1, N(conv_a) - 1,
     "<s> [INST] Hello [/INST] Hi there</s> [INST] Who are you [/INST]    I am an assistant   <"
     "/s> [INST] Another question [/INST]"},
    {TMPL_MISTRAL_V1, "conv_a, 3", conv_a, 3,
     "<s> [INST] You are a helpful assistant\n"
     "\n"
     "Hello [/INST] Hi there</s>"},
    {TMPL_MISTRAL_V1, "conv_ws", conv_ws, N(conv_ws),
     "<s> [INST]  Be brief.\n"
     "\n"
     "\n"
     "\343\200\200 Hi\n"
     "  [/INST] \n"
     " Hello \342\200\203</s> [INST] Bye  [/INST]"},
    {TMPL_MISTRAL_V1, "conv_two_users", conv_two_users, N(conv_two_users),
     "ERROR: After the optional system message, conversation roles must alternate user/assistan"
     "t/user/assistant/..."},
    {TMPL_MISTRAL_V1, "conv_mid_system", conv_mid_system, N(conv_mid_system),
     "ERROR: Only user and assistant roles are supported, with the exception of an initial opti"
     "onal system message!"},
    {TMPL_MISTRAL_V3, "conv_a", conv_a, N(conv_a),
     "<s>[INST] Hello[/INST] Hi there</s>[INST] Who are you[/INST] I am an assistant</s>[INST] "
     "You are a helpful assistant\n"
     "\n"
     "Another question[/INST]"},
    {TMPL_MISTRAL_V3, "conv_a + 1", conv_a + 1, N(conv_a) - 1,
     "<s>[INST] Hello[/INST] Hi there</s>[INST] Who are you[/INST] I am an assistant</s>[INST] "
     "Another question[/INST]"},
    {TMPL_MISTRAL_V3, "conv_a, 3", conv_a, 3, "<s>[INST] Hello[/INST] Hi there</s>"},
    {TMPL_MISTRAL_V3, "conv_ws", conv_ws, N(conv_ws),
     "<s>[INST] \343\200\200 Hi\n"
     " [/INST] Hello</s>[INST]  Be brief.\n"
     "\n"
     "\n"
     "Bye [/INST]"},
    {TMPL_MISTRAL_V3, "conv_two_users", conv_two_users, N(conv_two_users),
     "ERROR: After the optional system message, conversation roles must alternate user/assistan"
     "t/user/assistant/..."},
    {TMPL_MISTRAL_V3, "conv_mid_system", conv_mid_system, N(conv_mid_system),
     "ERROR: Only user and assistant roles are supported, with the exception of an initial opti"
     "onal system message!"},
    {TMPL_MISTRAL_V3_TEKKEN, "conv_a", conv_a, N(conv_a),
     "<s>[INST]Hello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an assistant   </s>[INST"
     "]You are a helpful assistant\n"
     "\n"
     "Another question[/INST]"},
    {TMPL_MISTRAL_V3_TEKKEN, "conv_a + 1", conv_a + 1, N(conv_a) - 1,
     "<s>[INST]Hello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an assistant   </s>[INST"
     "]Another question[/INST]"},
    {TMPL_MISTRAL_V3_TEKKEN, "conv_a, 3", conv_a, 3, "<s>[INST]Hello[/INST]Hi there</s>"},
    {TMPL_MISTRAL_V3_TEKKEN, "conv_ws", conv_ws, N(conv_ws),
     "<s>[INST]\343\200\200 Hi\n"
     " [/INST]\n"
     " Hello \342\200\203</s>[INST] Be brief.\n"
     "\n"
     "\n"
     "Bye [/INST]"},
    {TMPL_MISTRAL_V3_TEKKEN, "conv_two_users", conv_two_users, N(conv_two_users),
     "ERROR: After the optional system message, conversation roles must alternate user/assistan"
     "t/user/assistant/..."},
    {TMPL_MISTRAL_V3_TEKKEN, "conv_mid_system", conv_mid_system, N(conv_mid_system),
     "ERROR: Only user and assistant roles are supported, with the exception of an initial opti"
     "onal system message!"},
    {TMPL_MISTRAL_V7, "conv_a", conv_a, N(conv_a),
     "<s>[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi ther"
     "e</s>[INST] Who are you[/INST]    I am an assistant   </s>[INST] Another question[/INST]"},
    {TMPL_MISTRAL_V7, "conv_a + 1", conv_a + 1, N(conv_a) - 1,
     "<s>[INST] Hello[/INST] Hi there</s>[INST] Who are you[/INST]    I am an assistant   </s>["
     "INST] Another question[/INST]"},
    {TMPL_MISTRAL_V7, "conv_a, 3", conv_a, 3,
     "<s>[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi ther"
     "e</s>"},
    {TMPL_MISTRAL_V7, "conv_ws", conv_ws, N(conv_ws),
     "<s>[SYSTEM_PROMPT]  Be brief.\n"
     "[/SYSTEM_PROMPT][INST] \343\200\200 Hi\n"
     " [/INST] \n"
     " Hello \342\200\203</s>[INST] Bye [/INST]"},
    {TMPL_MISTRAL_V7, "conv_two_users", conv_two_users, N(conv_two_users),
     "<s>[INST] a[/INST][INST] b[/INST]"},
    {TMPL_MISTRAL_V7, "conv_mid_system", conv_mid_system, N(conv_mid_system),
     "<s>[INST] a[/INST][SYSTEM_PROMPT] s[/SYSTEM_PROMPT][INST] b[/INST]"},
};

static void test_detect(void) {
    static const struct {
        const char *tmpl, *name;
        bool bos;
    } want[] = {
        {TMPL_ZEPHYR, "zephyr", false},        {TMPL_MIXTRAL, "llama2", true},
        {TMPL_LLAMA2, "llama2-sys", true},     {TMPL_MISTRAL_V1, "mistral-v1", true},
        {TMPL_MISTRAL_V3, "mistral-v3", true}, {TMPL_MISTRAL_V3_TEKKEN, "mistral-v3-tekken", true},
        {TMPL_MISTRAL_V7, "mistral-v7", true},
    };
    for (size_t i = 0; i < N(want); i++) {
        tok_chat_template t = {0};
        const hearth_err err = tok_chat_detect(want[i].tmpl, strlen(want[i].tmpl), &t);
        CHECKF(err == HEARTH_OK, "%s: %s", want[i].name, hearth_last_error());
        CHECKF(err == HEARTH_OK && t.name && !strcmp(t.name, want[i].name), "%s: detected as %s",
               want[i].name, t.name ? t.name : "(none)");
        CHECKF(t.bos == want[i].bos, "%s: bos", want[i].name);
        /* the name gives the same template, bos aside */
        tok_chat_template named;
        CHECKF(tok_chat_named(want[i].name, &named) == HEARTH_OK && named.family == t.family &&
                   named.inst == t.inst && named.eos_turns == t.eos_turns,
               "%s: by name", want[i].name);
    }
    /* Mistral Small 3's v7-tekken template is refused, naming the overrides */
    tok_chat_template t;
    CHECK(tok_chat_detect(TMPL_MISTRAL_SMALL3, strlen(TMPL_MISTRAL_SMALL3), &t) ==
          HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "v7-tekken") && strstr(hearth_last_error(), "mistral-v3"));
}

static void test_render(void) {
    for (size_t i = 0; i < N(CASES); i++) {
        const render_case *c = &CASES[i];
        tok_chat_template t = {0};
        REQUIRE(tok_chat_detect(c->tmpl, strlen(c->tmpl), &t) == HEARTH_OK);
        tok_chat_opts o = {.bos = "<s>", .eos = "</s>", .add_generation_prompt = true};
        char *out = NULL;
        size_t len = 0;
        const hearth_err err = tok_chat_render(&t, c->m, c->n, &o, &out, &len);
        if (!strncmp(c->expected, "ERROR: ", 7)) {
            CHECKF(err == HEARTH_ERR_INVALID_ARG && !strcmp(hearth_last_error(), c->expected + 7),
                   "%s %s: want the error '%s', got %d '%s'", t.name, c->what, c->expected + 7, err,
                   err ? hearth_last_error() : out);
        } else {
            CHECKF(err == HEARTH_OK, "%s %s: %s", t.name, c->what, hearth_last_error());
            CHECKF(!err && len == strlen(c->expected) && !memcmp(out, c->expected, len),
                   "%s %s:\n--- got ---\n%s\n--- expected ---\n%s", t.name, c->what, err ? "" : out,
                   c->expected);
        }
        free(out);
    }
}

/* A system message alone: merged away (llama2), printed alone, or raised on
 * by no template; the render reads nothing past it. */
static void test_system_only(void) {
    static const struct {
        const char *name, *expected;
    } want[] = {{"llama2", "<s>"},
                {"llama2-sys", ""},
                {"mistral-v1", "<s>"},
                {"mistral-v3", "<s>"},
                {"mistral-v7", "<s>[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT]"},
                {"zephyr", "<|system|>\nYou are a helpful assistant</s>\n<|assistant|>\n"}};
    for (size_t i = 0; i < N(want); i++) {
        tok_chat_template t;
        REQUIRE(tok_chat_named(want[i].name, &t) == HEARTH_OK);
        tok_chat_opts o = {.bos = "<s>", .eos = "</s>", .add_generation_prompt = true};
        char *out = NULL;
        size_t len = 0;
        const hearth_err err = tok_chat_render(&t, conv_a, 1, &o, &out, &len);
        CHECKF(!err && !strcmp(out, want[i].expected), "%s system only: %s", want[i].name,
               err ? hearth_last_error() : out);
        free(out);
    }
}

/* OLMo 2's template (the Tulu format) shares Zephyr's role markers and is
 * still told apart: its user turns end in '\n', not EOS. */
static void test_not_zephyr(void) {
    static const char olmo2[] =
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ "
        "'<|system|>\\n' + message['content'] + '\\n' }}{% elif message['role'] == 'user' %}{{ "
        "'<|user|>\\n' + message['content'] + '\\n' }}{% elif message['role'] == 'assistant' "
        "%}{{ '<|assistant|>\\n'  + message['content'] + eos_token }}{% endif %}{% endfor %}";
    tok_chat_template t;
    CHECK(tok_chat_detect(olmo2, strlen(olmo2), &t) == HEARTH_OK && !strcmp(t.name, "olmo2"));
}

/* Mistral's tools (v3, v3-tekken): the expected text is jinja2's rendering of
 * the templates above with the same conversation (9-character ids); an
 * OpenAI id becomes the same 9 characters in the call and its result. */
static void test_tools(void) {
    static const char tool[] =
        "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
        "\"Weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
        "{\"type\":\"string\"},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7.5}},"
        "\"required\":[\"city\"]}}}";
    static const char listed[] =
        "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
        "\"Weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": "
        "{\"type\": \"string\"}, \"days\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": "
        "7.5}}, \"required\": [\"city\"]}}}";
    static const tok_chat_msg conv[] = {{TOK_CHAT_SYSTEM, "S", 1},
                                        {TOK_CHAT_USER, "Weather in Paris?", 17},
                                        {TOK_CHAT_ASSISTANT, "", 0},
                                        {TOK_CHAT_TOOL, "18 C", 4},
                                        {TOK_CHAT_ASSISTANT, "It is 18 C.", 11},
                                        {TOK_CHAT_USER, "And Oslo?", 9}};
    static const tok_chat_tool_call call = {"abcDEF123", "get_weather",
                                            "{\"city\":\"Paris\",\"units\":\"\u00b0C\"}"};
    const tok_chat_msg_tools mt[] = {{0}, {0}, {&call, 1, NULL}, {0, 0, "abcDEF123"}, {0}, {0}};
    char tools[2 * sizeof tool + 4];
    snprintf(tools, sizeof tools, "[%s,%s]", tool, tool);
    static const struct {
        const char *tmpl, *sp; /* "" or " ": v3 puts a space after the tags, tekken none */
    } v[] = {{TMPL_MISTRAL_V3, " "}, {TMPL_MISTRAL_V3_TEKKEN, ""}};
    for (size_t k = 0; k < N(v); k++) {
        tok_chat_template t = {0};
        REQUIRE(tok_chat_detect(v[k].tmpl, strlen(v[k].tmpl), &t) == HEARTH_OK);
        CHECK(t.tools == TOK_TOOLS_MISTRAL);
        const char *sp = v[k].sp;
        char expected[4096];
        snprintf(
            expected, sizeof expected,
            "<s>[INST]%sWeather in Paris?[/INST][TOOL_CALLS]%s[{\"name\": \"get_weather\", "
            "\"arguments\": {\"city\": \"Paris\", \"units\": \"\xc2\xb0"
            "C\"}, \"id\": \"abcDEF123\"}]</s>[TOOL_RESULTS]%s{\"content\": 18 C, \"call_id\": "
            "\"abcDEF123\"}[/TOOL_RESULTS]%sIt is 18 C.</s>[AVAILABLE_TOOLS]%s[%s, "
            "%s][/AVAILABLE_TOOLS][INST]%sS\n\nAnd Oslo?[/INST]",
            sp, sp, sp, sp, sp, listed, listed, sp);
        tok_chat_opts o = {.bos = "<s>", .eos = "</s>", .tools = tools, .msg_tools = mt};
        char *out = NULL;
        size_t len = 0;
        const hearth_err err = tok_chat_render(&t, conv, N(conv), &o, &out, &len);
        CHECKF(!err && !strcmp(out, expected), "%s tools:\n--- got ---\n%s\n--- expected ---\n%s",
               t.name, err ? hearth_last_error() : out, expected);
        free(out);
        /* OpenAI's ids: 9 characters, the same in the call and its result */
        static const tok_chat_tool_call oa = {"call_0123456789abcdef01234567", "get_weather", "{}"};
        const tok_chat_msg_tools mt2[] = {
            {0}, {0}, {&oa, 1, NULL}, {0, 0, "call_0123456789abcdef01234567"}, {0}, {0}};
        o.msg_tools = mt2;
        REQUIRE(tok_chat_render(&t, conv, N(conv), &o, &out, &len) == HEARTH_OK);
        const char *id = strstr(out, "\"id\": \""), *cid = strstr(out, "\"call_id\": \"");
        REQUIRE(id && cid);
        id += 7, cid += 12;
        CHECKF(id[9] == '"' && cid[9] == '"' && !memcmp(id, cid, 9), "%s ids: %.12s / %.12s",
               t.name, id, cid);
        for (int i = 0; i < 9; i++) CHECK(isalnum((unsigned char)id[i]));
        free(out);
    }
    /* Jinja's message == user_messages[-1] compares dicts: an earlier user turn equal to the last
       gets the tools too (jinja2's output) */
    static const tok_chat_msg same[] = {
        {TOK_CHAT_USER, "hi", 2}, {TOK_CHAT_ASSISTANT, "A", 1}, {TOK_CHAT_USER, "hi", 2}};
    static const char f_tools[] = "[{\"type\":\"function\",\"function\":{\"name\":\"f\","
                                  "\"description\":\"d\"}}]";
    static const char block[] = "[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": "
                                "{\"name\": \"f\", \"description\": \"d\"}}][/AVAILABLE_TOOLS]";
    char expected[1024];
    snprintf(expected, sizeof expected, "<s>%s[INST] hi[/INST] A</s>%s[INST] hi[/INST]", block,
             block);
    tok_chat_template t;
    REQUIRE(tok_chat_named("mistral-v3", &t) == HEARTH_OK);
    tok_chat_opts o = {.bos = "<s>", .eos = "</s>", .tools = f_tools};
    char *out = NULL;
    size_t len = 0;
    CHECK(tok_chat_render(&t, same, N(same), &o, &out, &len) == HEARTH_OK &&
          !strcmp(out, expected));
    free(out);
}

int main(void) {
    test_tools();
    test_detect();
    test_render();
    test_system_only();
    test_not_zephyr();
    return test_done("test_chat_inst");
}
