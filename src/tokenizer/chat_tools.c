/*
 * chat_tools.c - the pieces of tool rendering the template families share:
 * Qwen's "# Tools" system block and <tool_call> lines (Qwen 2.5/3 print
 * these; the generic rendering reuses them), and the generic rendering
 * itself for templates whose Jinja source knows nothing of tools (Llama 3.0,
 * SmolLM2's ChatML, Gemma, Phi-3/3.5/4-mini, Phi-4).
 *
 * Why generic and not a 400 for those: the server parses <tool_call> blocks
 * from every model, a request with tools may be answered by a cloud tier
 * whichever model runs locally, and instruction-tuned models follow the
 * Hermes format often enough to be useful; the prompt stays inside the
 * family's own turn markers. docs/server.md says what to expect.
 */
#include "chat_impl.h"

static const char hermes_head[] =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
static const char hermes_tail[] =
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
    "<function-name>, \"arguments\": <args-json-object>}\n</tool_call>";

bool ct_tools_hermes_block(ct_buf *b, const char *tools_json) {
    buf_puts(b, hermes_head);
    /* {%- for tool in tools %}{{- "\n" }}{{- tool | tojson }}{%- endfor %} */
    if (!ct_json_dump_items(b, tools_json, strlen(tools_json), -1, "\n", "")) return false;
    buf_puts(b, hermes_tail);
    return true;
}

bool ct_tools_hermes_call(ct_buf *b, const tok_chat_tool_call *c, bool raw) {
    /* '<tool_call>\n{"name": "' + name + '", "arguments": ' + args + '}\n</tool_call>' */
    buf_puts(b, "<tool_call>\n{\"name\": \"");
    buf_puts(b, c->name);
    buf_puts(b, "\", \"arguments\": ");
    const char *a = c->arguments ? c->arguments : "{}";
    if (raw)
        buf_puts(b, a);
    else if (!ct_json_dump(b, a, strlen(a), -1))
        return false;
    buf_puts(b, "}\n</tool_call>");
    return true;
}

static const char xml_head[] = "# Tools\n\nYou have access to the following functions:\n\n<tools>";
static const char xml_tail[] =
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO "
    "suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>"
    "\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second "
    "parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n"
    "<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner "
    "<function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- "
    "Required parameters MUST be specified\n- You may provide optional reasoning for your "
    "function call in natural language BEFORE the function call, but NOT after\n- If there is "
    "no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>";

bool ct_tools_xml_block(ct_buf *b, const char *tools_json) {
    buf_puts(b, xml_head);
    if (!ct_json_dump_items(b, tools_json, strlen(tools_json), -1, "\n", "")) return false;
    buf_puts(b, xml_tail);
    return true;
}

bool ct_tools_xml_call(ct_buf *b, const tok_chat_tool_call *c) {
    buf_puts(b, "<tool_call>\n<function=");
    buf_puts(b, c->name);
    buf_puts(b, ">\n");
    const char *a = c->arguments ? c->arguments : "{}";
    if (!ct_json_xml_params(b, a, strlen(a))) return false;
    buf_puts(b, "</function>\n</tool_call>");
    return true;
}

static char *keep(ct_scratch *s, ct_buf *t) {
    if (t->oom) {
        free(t->p);
        return NULL;
    }
    if (!t->p && !(t->p = calloc(1, 1))) return NULL;
    s->texts[s->n_texts++] = t->p;
    return t->p;
}

void ct_generic_free(ct_scratch *s) {
    if (s->texts) /* NULL only after a failed start, with n_texts 0 */
        for (size_t i = 0; i < s->n_texts; i++) free(s->texts[i]);
    free(s->texts);
    free(s->msgs);
    *s = (ct_scratch){0};
}

hearth_err ct_tools_generic(const ct_msg *m, size_t n, const char *tools_json, ct_scratch *s,
                            ct_msg **out, size_t *n_out) {
    *s = (ct_scratch){0};
    s->texts = calloc(n + 2, sizeof *s->texts);
    s->msgs = calloc(n + 2, sizeof *s->msgs);
    if (!s->texts || !s->msgs) {
        ct_generic_free(s);
        return hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory");
    }
    size_t k = 0, i = 0;
    hearth_err err = HEARTH_OK;
    if (ct_json_nonempty_array(tools_json)) {
        /* the tools join the system message, or make one */
        ct_buf t = {0};
        if (n && m[0].role == TOK_CHAT_SYSTEM) {
            buf_span(&t, m[0].content);
            if (m[0].content.n) buf_puts(&t, "\n\n");
            i = 1;
        }
        if (!ct_tools_hermes_block(&t, tools_json)) {
            free(t.p);
            ct_generic_free(s);
            return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
        }
        const char *p = keep(s, &t);
        if (!p) err = HEARTH_ERR_NOMEM;
        s->msgs[k++] = (ct_msg){TOK_CHAT_SYSTEM, {p, p ? strlen(p) : 0}, NULL, 0};
    }
    for (; !err && i < n; i++) {
        ct_buf t = {0};
        tok_chat_role role = m[i].role;
        if (role == TOK_CHAT_TOOL) { /* a run of results: one user turn */
            role = TOK_CHAT_USER;
            for (size_t j = i; j < n && m[j].role == TOK_CHAT_TOOL; j++) {
                if (j > i) buf_puts(&t, "\n");
                buf_puts(&t, "<tool_response>\n");
                buf_span(&t, m[j].content);
                buf_puts(&t, "\n</tool_response>");
                i = j;
            }
        } else {
            buf_span(&t, m[i].content);
            for (int c = 0; c < m[i].n_calls; c++) {
                if (t.n) buf_puts(&t, "\n");
                if (!ct_tools_hermes_call(&t, &m[i].calls[c], false)) {
                    free(t.p);
                    err = hr_fail(HEARTH_ERR_INVALID_ARG,
                                  "chat template: the arguments of tool call '%s' are not JSON",
                                  m[i].calls[c].name);
                    break;
                }
            }
            if (err) break;
        }
        const char *p = keep(s, &t);
        if (!p) {
            err = hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory");
            break;
        }
        s->msgs[k++] = (ct_msg){role, {p, strlen(p)}, NULL, 0};
    }
    if (err) {
        ct_generic_free(s);
        return err == HEARTH_ERR_NOMEM ? hr_fail(err, "chat template: out of memory") : err;
    }
    *out = s->msgs;
    *n_out = k;
    return HEARTH_OK;
}
