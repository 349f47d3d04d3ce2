/*
 * chat_smollm3.c - SmolLM3's chat template (HuggingFaceTB/SmolLM3-3B), as its
 * Jinja prints it, and the shorter one Unsloth's GGUFs carry (llama.cpp's
 * models/templates copy: no date, no /system_override, no tools).
 *
 * One system turn first, whatever the messages: "## Metadata" with the
 * knowledge cutoff, today's date (strftime_now("%d %B %Y"); not in the
 * short one) and the reasoning mode, then "## Custom Instructions": the
 * first message's text when it is a system one (its "/think" and
 * "/no_think" flags taken out, trailing white space cut), else a default
 * that depends on the mode. The mode is "/think" unless enable_thinking is
 * false (tok_chat_opts.no_thinking) or the system text says "/no_think"
 * ("/think" there sets it back). The turn is closed only after tools: the
 * template prints <|im_end|> inside its tools branch, so without tools the
 * first user turn follows the instructions directly (Unsloth's closes it
 * always). A system text with "/system_override" replaces the whole turn.
 *
 * Tools: the template lists `xml_tools` (each through Python's str), which
 * SmolLM3's card says to pass the tools as; the request's tools are listed
 * so. Its replies are Hermes-style <tool_call>{...}</tool_call> blocks
 * (tools_parse.c). The template prints an assistant turn's content only:
 * a client's structured calls are written back in the format the tools
 * section teaches, after the content (a departure: the template would drop
 * them, and the model would see results of calls it never made).
 *
 * Assistant turns: "/think": the content, leading newlines cut; "/no_think":
 * an empty <think> block first. Tool results are user turns. Other system
 * messages print nothing. The generation prompt is "<|im_start|>assistant\n",
 * plus the empty block in "/no_think".
 */
#include "chat_impl.h"

#include <stdio.h>

static const char DEFAULT_THINK[] =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an "
    "assistant involves thoroughly exploring questions through a systematic thinking process "
    "before providing the final precise and accurate solutions. This requires engaging in a "
    "comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, "
    "backtracking, and iteration to develop well-considered thinking process. Please structure "
    "your response into two main sections: Thought and Solution using the specified format: "
    "<think> Thought section </think> Solution section. In the Thought section, detail your "
    "reasoning process in steps. Each step should include detailed considerations such as "
    "analysing questions, summarizing relevant findings, brainstorming new ideas, verifying the "
    "accuracy of the current steps, refining any errors, and revisiting previous steps. In the "
    "Solution section, based on various attempts, explorations, and reflections from the Thought "
    "section, systematically present the final solution that you deem correct. The Solution "
    "section should be logical, accurate, and concise and detail necessary steps needed to reach "
    "the conclusion.\n\n";
static const char DEFAULT_NO_THINK[] =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face.\n\n";
static const char EMPTY_THINK[] = "<think>\n\n</think>\n";

bool ct_smollm3_named(const char *name, tok_chat_template *out) {
    const bool full = !strcmp(name, "smollm3");
    if (!full && strcmp(name, "smollm3-short") != 0) return false;
    *out = (tok_chat_template){.family = TOK_CHAT_SMOLLM3,
                               .name = full ? "smollm3" : "smollm3-short",
                               .think = true,
                               .think_toggle = true,
                               .date_now = full,
                               .tools = full ? TOK_TOOLS_SMOLLM3 : TOK_TOOLS_GENERIC};
    return true;
}

bool ct_smollm3_detect(const char *s, tok_chat_template *out) {
    /* {{- "Reasoning Mode: " + reasoning_mode + "\n\n" -}} ... "## Custom Instructions\n\n";
     * the full one: {%- set today = strftime_now("%d %B %Y") -%} ... xml_tools */
    if (!ct_has(s, "Reasoning Mode: ") || !ct_has(s, "## Custom Instructions")) return false;
    return ct_smollm3_named(ct_has(s, "strftime_now") ? "smollm3" : "smollm3-short", out);
}

/* s with every occurrence of `cut` taken out (Python's str.replace(cut, "")). */
static void put_without(tok_buf *b, ct_span s, const char *cut) {
    const size_t m = strlen(cut);
    if (!s.n) return; /* (an empty buffer's text may be NULL) */
    for (const char *hit; (hit = ct_span_find(s, cut, false)) != NULL;) {
        buf_put(b, s.p, (size_t)(hit - s.p));
        s.n -= (size_t)(hit - s.p) + m;
        s.p = hit + m;
    }
    buf_span(b, s);
}

/* Python's str.rstrip(): white space cut from the end (ASCII's, which is
 * what these texts end in). */
static ct_span rstrip(ct_span s) {
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\n' || s.p[s.n - 1] == '\t' ||
                   s.p[s.n - 1] == '\r' || s.p[s.n - 1] == '\v' || s.p[s.n - 1] == '\f'))
        s.n--;
    return s;
}

/* "### Tools\n\n" and the xml_tools section: each tool as Python's str of it. */
static bool tools_section(tok_buf *b, const char *tools_json) {
    const ct_span all = {tools_json, strlen(tools_json)};
    if (ct_jv_kind(all) != '[' || !ct_json_valid(all)) return false;
    buf_puts(b, "### Tools\n\nYou may call one or more functions to assist with the user query.\n"
                "You are provided with function signatures within <tools></tools> XML tags:\n\n"
                "<tools>\n");
    ct_span k, tool;
    for (size_t at = 0; ct_jv_next(all, &at, &k, &tool);) {
        ct_py_repr(b, tool);
        buf_puts(b, "\n");
    }
    buf_puts(b, "</tools>\n\nFor each function call, return a json object with function name and "
                "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
                "<function-name>, \"arguments\": <args-json-object>}\n</tool_call>\n\n");
    return true;
}

/* The system turn (see the top); *think: the reasoning mode it settles. */
static hearth_err system_turn(const tok_chat_template *t, const ct_msg *m, size_t n,
                              const tok_chat_opts *o, tok_buf *b, bool *think) {
    const ct_msg *sys = n && m[0].role == TOK_CHAT_SYSTEM ? &m[0] : NULL;
    const bool full = t->date_now; /* SmolLM3's own; Unsloth's has no date, override or tools */
    *think = !o->no_thinking;
    tok_buf custom = {0}, step = {0};
    if (sys) {
        if (ct_span_find(sys->content, "/no_think", false))
            *think = false;
        else if (ct_span_find(sys->content, "/think", false))
            *think = true;
        put_without(&step, sys->content, "/no_think");
        put_without(&custom, (ct_span){step.p, step.n}, "/think");
    }
    const ct_span instructions = rstrip((ct_span){custom.p, custom.n});
    buf_puts(b, "<|im_start|>system\n");
    hearth_err err = HEARTH_OK;
    if (full && sys && ct_span_find(sys->content, "/system_override", false)) {
        tok_buf over = {0};
        put_without(&over, instructions, "/system_override");
        buf_span(b, rstrip((ct_span){over.p, over.n}));
        buf_puts(b, "<|im_end|>\n");
        if (over.oom) b->oom = true;
        free(over.p);
    } else {
        buf_puts(b, "## Metadata\n\nKnowledge Cutoff Date: June 2025\n");
        if (full) {
            char date[64];
            if (!ct_strftime_now(o->now, CT_DATE_D_MONTH_Y, date, sizeof date))
                snprintf(date, sizeof date, "(unknown)");
            buf_puts(b, "Today Date: ");
            buf_puts(b, date);
            buf_puts(b, "\n");
        }
        buf_puts(b, *think ? "Reasoning Mode: /think\n\n" : "Reasoning Mode: /no_think\n\n");
        buf_puts(b, "## Custom Instructions\n\n");
        if (instructions.n) {
            buf_span(b, instructions);
            buf_puts(b, "\n\n");
        } else {
            buf_puts(b, *think ? DEFAULT_THINK : DEFAULT_NO_THINK);
        }
        if (t->tools == TOK_TOOLS_SMOLLM3 && ct_json_nonempty_array(o->tools)) {
            if (!tools_section(b, o->tools))
                err = hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
            buf_puts(b, "<|im_end|>\n");
        } else if (!full) { /* Unsloth's closes the turn in any case */
            buf_puts(b, "<|im_end|>\n");
        }
    }
    if (custom.oom || step.oom) b->oom = true;
    free(custom.p);
    free(step.p);
    return err;
}

/* A client's calls as the tools section asks for them. */
static bool calls(tok_buf *b, const ct_msg *msg, bool after_content) {
    for (int c = 0; c < msg->n_calls; c++) {
        const char *a =
            msg->calls[c].arguments && *msg->calls[c].arguments ? msg->calls[c].arguments : "{}";
        buf_puts(b, c || after_content ? "\n<tool_call>\n{\"name\": " : "<tool_call>\n{\"name\": ");
        ct_json_quote(b, msg->calls[c].name, strlen(msg->calls[c].name));
        buf_puts(b, ", \"arguments\": ");
        if (!ct_json_dump(b, a, strlen(a), -1)) return false;
        buf_puts(b, "}\n</tool_call>");
    }
    return true;
}

hearth_err ct_smollm3_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                             const tok_chat_opts *o, tok_buf *b) {
    bool think;
    hearth_err err = system_turn(t, m, n, o, b, &think);
    if (err) return err;
    for (size_t i = 0; i < n; i++) {
        const ct_msg *msg = &m[i];
        if (msg->role == TOK_CHAT_ASSISTANT) {
            ct_span c = msg->content; /* content.lstrip("\n") */
            while (c.n && *c.p == '\n') c.p++, c.n--;
            buf_puts(b, "<|im_start|>assistant\n");
            if (!think) buf_puts(b, EMPTY_THINK);
            buf_span(b, c);
            if (!calls(b, msg, c.n > 0))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "chat template: the arguments of a tool call are not JSON");
            buf_puts(b, "<|im_end|>\n");
        } else if (msg->role == TOK_CHAT_USER || msg->role == TOK_CHAT_TOOL) {
            buf_puts(b, "<|im_start|>user\n");
            buf_span(b, msg->content);
            buf_puts(b, "<|im_end|>\n");
        }
    }
    if (o->add_generation_prompt) {
        buf_puts(b, "<|im_start|>assistant\n");
        if (!think) buf_puts(b, EMPTY_THINK);
    }
    return HEARTH_OK;
}
