/*
 * chat_lfm2.c - Liquid AI's LFM2 and LFM2.5 templates: ChatML turns (the
 * BOS is the tokenizer's), the request's tools listed at the end of the
 * system turn, and the model's calls in its own syntax,
 * <|tool_call_start|>[NAME(key=VALUE, ...), ...]<|tool_call_end|>
 * (tools_parse.c reads them back).
 *
 *   LFM2 (LFM2-350M ... 2.6B, LFM2-8B-A1B): "List of tools:
 *     <|tool_list_start|>[...]<|tool_list_end|>", each result in a tool turn
 *     of <|tool_response_start|>...<|tool_response_end|>;
 *   LFM2.5 (its Instruct template): "List of tools: [...]", results as
 *     they are, and an assistant turn other than the last keeps only what
 *     follows its last </think>, trimmed (keep_past_thinking false).
 *
 * Their templates print an assistant turn's content only: the model keeps
 * its calls in the content as it wrote them, so a client's structured
 * tool_calls are written back in that form, before the content.
 */
#include "chat_impl.h"

bool ct_lfm2_named(const char *name, tok_chat_template *out) {
    const bool v25 = !strcmp(name, "lfm2.5");
    if (!v25 && strcmp(name, "lfm2") != 0) return false;
    *out = (tok_chat_template){.family = TOK_CHAT_CHATML,
                               .name = v25 ? "lfm2.5" : "lfm2",
                               .tools = TOK_TOOLS_LFM2,
                               .lfm25 = v25,
                               .think = v25};
    return true;
}

bool ct_lfm2_detect(const char *s, tok_chat_template *out) {
    /* LFM2: {%- set ns.system_prompt = ... + "List of tools: <|tool_list_start|>[" -%}
     * LFM2.5: ... "List of tools: [" ... keep_past_thinking ... "</think>" */
    if (ct_has(s, "<|tool_list_start|>") && ct_has(s, "<|tool_list_end|>"))
        return ct_lfm2_named("lfm2", out);
    if (ct_has(s, "List of tools: [") && ct_has(s, "keep_past_thinking"))
        return ct_lfm2_named("lfm2.5", out);
    return false;
}

/* The system turn's tools: each through tojson, ", " between. */
static bool tool_list(tok_buf *b, bool markers, const char *tools_json) {
    buf_puts(b, markers ? "List of tools: <|tool_list_start|>[" : "List of tools: [");
    const size_t start = b->n;
    if (!ct_json_dump_items(b, tools_json, strlen(tools_json), -1, "", ", ")) return false;
    if (b->n > start) b->n -= 2; /* ", " goes between the tools only */
    buf_puts(b, markers ? "]<|tool_list_end|>" : "]");
    return !b->oom;
}

/* The calls as LFM2 writes them, the values through tojson (JSON's literals,
 * which LFM2 reads too). */
static bool calls(tok_buf *b, const tok_chat_tool_call *c, int n) {
    buf_puts(b, "<|tool_call_start|>[");
    for (int k = 0; k < n; k++) {
        const char *a = c[k].arguments ? c[k].arguments : "{}";
        const ct_span args = {a, strlen(a)};
        if (ct_jv_kind(args) != '{' || !ct_json_valid(args)) return false;
        if (k) buf_puts(b, ", ");
        buf_puts(b, c[k].name);
        buf_puts(b, "(");
        ct_span key, val;
        for (size_t at = 0, i = 0; ct_jv_next(args, &at, &key, &val); i++) {
            if (i) buf_puts(b, ", ");
            ct_jv_print(b, key, false);
            buf_puts(b, "=");
            if (!ct_json_dump(b, val.p, val.n, -1)) return false;
        }
        buf_puts(b, ")");
    }
    buf_puts(b, "]<|tool_call_end|>");
    return !b->oom;
}

hearth_err ct_lfm2_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                          const tok_chat_opts *o, tok_buf *b) {
    const bool sys = n && m[0].role == TOK_CHAT_SYSTEM;
    const bool tools = ct_json_nonempty_array(o->tools);
    if (sys || tools) { /* system content + ("\n" if it is not empty) + the tool list */
        buf_puts(b, "<|im_start|>system\n");
        if (sys) buf_span(b, m[0].content);
        if (sys && m[0].content.n && tools) buf_puts(b, "\n");
        if (tools && !tool_list(b, !t->lfm25, o->tools))
            return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
        buf_puts(b, "<|im_end|>\n");
    }
    size_t last_assistant = n;
    for (size_t i = 0; i < n; i++)
        if (m[i].role == TOK_CHAT_ASSISTANT) last_assistant = i;
    for (size_t i = sys ? 1 : 0; i < n; i++) {
        ct_span content = m[i].content;
        buf_puts(b, "<|im_start|>");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "\n");
        if (m[i].role == TOK_CHAT_TOOL && !t->lfm25) {
            buf_puts(b, "<|tool_response_start|>");
            buf_span(b, content);
            buf_puts(b, "<|tool_response_end|>");
        } else if (m[i].role == TOK_CHAT_ASSISTANT) {
            const char *end =
                t->lfm25 && i != last_assistant ? ct_span_find(content, "</think>", true) : NULL;
            if (end) { /* content.split("</think>")[-1] | trim */
                const char *after = end + strlen("</think>");
                content = ct_trim((ct_span){after, (size_t)(content.p + content.n - after)});
            }
            if (m[i].n_calls && !calls(b, m[i].calls, m[i].n_calls))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "chat template: the arguments of a tool call are not a JSON object");
            buf_span(b, content);
        } else {
            buf_span(b, content);
        }
        buf_puts(b, "<|im_end|>\n");
    }
    return HEARTH_OK;
}
