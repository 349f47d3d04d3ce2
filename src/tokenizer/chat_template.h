/*
 * chat_template.h - turning a chat (role, content messages) into the prompt
 * text a model was trained on, as its GGUF's tokenizer.chat_template would.
 *
 * Hearth does not interpret Jinja. It recognizes the template families that
 * small models ship (Llama 3.x, ChatML as in Qwen 2.5 / Qwen 3 / SmolLM2,
 * Gemma 2/3/4, Phi-3/3.5/4-mini, Phi-4, the DeepSeek-R1 distills, Mistral's
 * and Llama 2's [INST] formats, Zephyr) by distinctive substrings of the
 * template text and renders each in C. The renderers reproduce what the
 * Jinja templates print for system/user/assistant messages (tools: below),
 * with add_generation_prompt; a template no rule recognizes is reported as
 * unsupported, naming the overrides (tok_chat_named) that exist.
 *
 * Where a template cannot place a system message (Gemma 2, Phi-3-mini) the
 * first system message is merged into the next message as "system\n" +
 * content, as llama.cpp does, rather than dropped or refused.
 *
 * Tools (function calling): a template whose Jinja source renders tools gets
 * them rendered its way (Qwen 2.5/3: a "# Tools" system block with <tools>,
 * <tool_call> and <tool_response>; Llama 3.1/3.2: "Environment: ipython",
 * the functions as indented JSON in the first user message, calls as
 * {"name", "parameters"} and results in ipython turns; Qwen3.5: XML calls;
 * Gemma 4: <|tool> declarations in its own syntax, <|tool_call>call:NAME{...}
 * calls and <|tool_response> results inside the model's turn). Every other template
 * gets the generic rendering (chat_tools.c): the same Hermes-style block in
 * the system message, calls as <tool_call> text in the assistant turn and
 * results as <tool_response> user turns, so a model without tool training
 * still sees one consistent format that the server can parse back.
 */
#ifndef HEARTH_CHAT_TEMPLATE_H
#define HEARTH_CHAT_TEMPLATE_H

#include "hearth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a template renders tools and how its model writes calls. */
typedef enum tok_chat_tools {
    TOK_TOOLS_GENERIC = 0, /* the template has no tools: chat_tools.c's Hermes-style rendering */
    TOK_TOOLS_HERMES, /* Qwen 2.5/3: <tools> in the system turn, <tool_call>{json}</tool_call> */
    TOK_TOOLS_LLAMA3, /* Llama 3.1/3.2: JSON {"name","parameters"} replies, ipython results */
    TOK_TOOLS_XML,    /* Qwen3.5: <tool_call>\n<function=NAME>\n<parameter=P>\nV\n</parameter>... */
    TOK_TOOLS_GEMMA4, /* Gemma 4: <|tool> declarations,
                         <|tool_call>call:NAME{k:<|"|>v<|"|>}<tool_call|> */
    TOK_TOOLS_MISTRAL,   /* Mistral v3 / v3-tekken: [AVAILABLE_TOOLS] before the last user turn,
                            [TOOL_CALLS] [{name, arguments, id}], [TOOL_RESULTS] (9-character ids) */
    TOK_TOOLS_LFM2,      /* LFM2: "List of tools: <|tool_list_start|>[...]<|tool_list_end|>" in the
                            system turn, <|tool_call_start|>[NAME(k=v)]<|tool_call_end|> calls,
                            results in <|tool_response_start|>...<|tool_response_end|> */
    TOK_TOOLS_MINISTRAL, /* Ministral 3: [AVAILABLE_TOOLS][...] after the system prompt,
                            [TOOL_CALLS]NAME[ARGS]{...} calls, [TOOL_RESULTS]...[/TOOL_RESULTS] */
    TOK_TOOLS_SMOLLM3    /* SmolLM3: its xml_tools section (tools as Python's str) in the system
                            turn, Hermes <tool_call> replies, results as user turns */
} tok_chat_tools;

typedef enum tok_chat_family {
    TOK_CHAT_CHATML = 1, /* <|im_start|>role\n...<|im_end|>\n (Qwen 2.5/3, SmolLM2, ...) */
    TOK_CHAT_LLAMA3,     /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    TOK_CHAT_GEMMA,      /* <start_of_turn>role\n...<end_of_turn>\n */
    TOK_CHAT_PHI3,       /* <|role|>\n...<|end|>\n (Phi-3, 3.5, 4-mini) */
    TOK_CHAT_PHI4,       /* <|im_start|>role<|im_sep|>...<|im_end|> */
    TOK_CHAT_DEEPSEEK, /* system, then <｜User｜>...<｜Assistant｜>...<｜end▁of▁sentence｜> */
    TOK_CHAT_GRANITE, /* <|start_of_role|>role<|end_of_role|>...<|end_of_text|>\n */
    TOK_CHAT_TULU,    /* <|role|>\n...\n, assistant turns ending in EOS (OLMo 2, Tulu 3) */
    TOK_CHAT_EXAONE4, /* [|role|]...[|endofturn|]\n, user turns ending in \n (EXAONE 4.0) */
    TOK_CHAT_GEMMA4,  /* <|turn>role\n...<turn|>\n, roles system/user/model (Gemma 4) */
    TOK_CHAT_INST,    /* [INST] ... [/INST] answer</s> (Mistral, Llama 2: see tok_chat_inst) */
    TOK_CHAT_SMOLLM3  /* ChatML with SmolLM3's metadata system turn and reasoning modes */
} tok_chat_family;

/* The [INST] variants (chat_inst.c), by what their templates print. */
typedef enum tok_chat_inst {
    TOK_INST_LLAMA2 = 1, /* Mixtral, Mistral 7B v0.1/v0.2 first templates: '[INST] ' + content +
                            ' [/INST]', answers content + eos; no system role */
    TOK_INST_LLAMA2_SYS, /* Llama 2 chat: bos + '[INST] ' per turn, <<SYS>> in the first, stripped,
                            answers ' ' + content + ' ' + eos */
    TOK_INST_V1,         /* Mistral 'v1': ' [INST] ' ... ' [/INST]', system in the first turn */
    TOK_INST_V3,         /* Mistral 'v3' (7B v0.3): '[INST] ' ... '[/INST]', system in the last
                            turn, answers ' ' + content|trim + eos */
    TOK_INST_V3_TEKKEN,  /* Mistral 'v3-tekken' (Nemo, Ministral 8B): v3 without the spaces */
    TOK_INST_V7,         /* Mistral 'v7': [SYSTEM_PROMPT] turns where they are */
    TOK_INST_MINISTRAL3  /* Ministral 3 (Instruct, Reasoning): one [SYSTEM_PROMPT] first (the
                            template's default_system_message without one), '[INST]' ... '[/INST]',
                            answers content + calls + eos */
} tok_chat_inst;

#define TOK_CHAT_SYSTEM_MAX 4096 /* longest default system prompt taken from a template */

/* A recognized template: the family and the variant's switches. Plain data
 * (no allocation): copy it freely. */
typedef struct tok_chat_template {
    tok_chat_family family;
    const char *name;       /* variant: "chatml", "qwen3", "llama3", "llama3.1", "gemma3", ... */
    bool bos;               /* the template prints bos_token first */
    bool merge_system;      /* no system role: merge the first system message into the next */
    bool legacy_turns;      /* a user turn ends with the assistant header; no generation prompt */
    bool think;             /* Qwen 3: <think> blocks are cut from earlier assistant turns */
    bool think_toggle;      /* Qwen 3: enable_thinking false prints an empty <think> block */
    bool think_open;        /* Qwen 3 Thinking-2507, QwQ, DeepSeek-R1, Qwen3.5: the generation
                               prompt opens <think> */
    bool trim;              /* Qwen3.5: contents trimmed, and every assistant turn after the
                               last query keeps a <think> block, empty or not */
    bool dated;             /* Llama 3.1+: a system header with the knowledge and today's date */
    bool date_now;          /* ... today's date is the real one (strftime_now), else 26 Jul 2024;
                               Granite 3.3: a dated default system message */
    bool gemma_prefix;      /* Gemma 3: the system text opens the first user turn, then "\n\n" */
    bool skip_empty_system; /* Phi-3.5: a system message with empty content prints nothing */
    bool role_newline;      /* Phi: a newline after <|role|> (Phi-3/3.5: yes; Phi-4-mini: no) */
    bool eos_turns;         /* Zephyr (TOK_CHAT_TULU): every turn ends in eos + '\n' */
    bool lfm25;             /* TOK_TOOLS_LFM2: LFM2.5's variant (chat_lfm2.c) */
    tok_chat_inst inst;     /* TOK_CHAT_INST: the variant */
    tok_chat_tools tools;   /* how tools, calls and results are rendered */
    bool tool_args_raw;     /* Qwen 3: a call's arguments string is printed as is (else tojson) */
    char default_system[TOK_CHAT_SYSTEM_MAX]; /* ChatML, Ministral 3: printed when messages[0]
                                                 is not system */
} tok_chat_template;

/* Recognizes template text tmpl[0..len). HEARTH_ERR_UNSUPPORTED, with a
 * message naming the overrides, when no family matches. */
hearth_err tok_chat_detect(const char *tmpl, size_t len, tok_chat_template *out);

/* A template by name: chatml, qwen3, qwen3-thinking (the generation prompt
 * opens <think>, as Qwen 3 Thinking-2507's), qwen3.5 (opens <think> unless
 * enable_thinking is false; XML tool calls), llama3 (3.0: no system header), llama3.1
 * (dated system header, 26 Jul 2024), llama3.2 (dated with today's date),
 * gemma (Gemma 1/2), gemma3, gemma4 (thinking unless enable_thinking is false,
 * as llama-server passes it; Gemma 4's tool syntax), phi3 (Phi-3.5 style), phi3-mini, phi4-mini,
 * phi4, deepseek-r1 (the R1 distills, opening <think>), granite (Granite 3.x
 * as llama.cpp prints it), granite3.3 (and its dated default system
 * message), olmo2 (OLMo 2 Instruct's Tulu format), exaone4 (as llama.cpp
 * prints EXAONE 4.0's). HEARTH_ERR_INVALID_ARG
 * for any other name. */
hearth_err tok_chat_named(const char *name, tok_chat_template *out);
/* The names tok_chat_named accepts, separated by '|'. */
const char *tok_chat_names(void);

typedef enum tok_chat_role {
    TOK_CHAT_SYSTEM,
    TOK_CHAT_USER,
    TOK_CHAT_ASSISTANT,
    TOK_CHAT_TOOL /* a tool's result (OpenAI's role "tool") */
} tok_chat_role;

/* One call an assistant message made (OpenAI's tool_calls[i].function). */
typedef struct tok_chat_tool_call {
    const char *id;        /* NUL-terminated; may be NULL */
    const char *name;      /* NUL-terminated */
    const char *arguments; /* NUL-terminated JSON text of an object (OpenAI's arguments string) */
} tok_chat_tool_call;

typedef struct tok_chat_msg {
    tok_chat_role role;
    const char *content; /* UTF-8, content_len bytes (need not be NUL-terminated) */
    size_t content_len;
} tok_chat_msg;

/* The tool side of one message (kept apart from tok_chat_msg so that plain
 * chats stay three fields): an assistant's calls, a result's call id. */
typedef struct tok_chat_msg_tools {
    const tok_chat_tool_call *calls;
    int n_calls;
    const char *tool_call_id; /* role tool: the call answered (may be NULL) */
} tok_chat_msg_tools;

typedef struct tok_chat_opts {
    const char *bos, *eos;      /* the texts of bos_token / eos_token ("" when none) */
    bool add_generation_prompt; /* end with the assistant's header */
    int64_t now;                /* Unix time for templates that print today's date; 0: now */
    /* The request's tools: a JSON array of {"type":"function","function":{...}}
     * objects as text (NULL or an empty array: no tools). Printed as the
     * template's tojson would print them (Python's json.dumps spacing). */
    const char *tools;
    /* NULL, or one entry per message (tool calls, tool_call_id). */
    const tok_chat_msg_tools *msg_tools;
    /* Qwen 3's enable_thinking=false (a template with think_toggle): the
     * generation prompt closes an empty reasoning block, so the model answers
     * at once. Gemma 4 renders enable_thinking as !no_thinking (true unless
     * switched off, as llama-server passes it). Other templates print what
     * they print either way. */
    bool no_thinking;
} tok_chat_opts;

/* Whether the generation prompt t renders ends inside an opened <think>
 * block, so the reply starts in it (no_thinking: tok_chat_opts'). */
bool tok_chat_opens_think(const tok_chat_template *t, bool no_thinking);

/* Renders msgs[0..n) (n >= 1). On success *out (NUL-terminated, *out_len
 * bytes) is owned by the caller: free() it. A chat the template itself would
 * refuse (Gemma: roles not alternating user/assistant; Llama 3.1: more than
 * one call in a message, tools without a user message) fails with
 * HEARTH_ERR_INVALID_ARG and the template's message; malformed JSON in
 * opts->tools or a call's arguments also fails with HEARTH_ERR_INVALID_ARG. */
hearth_err tok_chat_render(const tok_chat_template *t, const tok_chat_msg *msgs, size_t n,
                           const tok_chat_opts *opts, char **out, size_t *out_len);

#endif
