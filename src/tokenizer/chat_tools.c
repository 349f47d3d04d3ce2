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

bool ct_tools_hermes_block(tok_buf *b, const char *tools_json) {
    buf_puts(b, hermes_head);
    /* {%- for tool in tools %}{{- "\n" }}{{- tool | tojson }}{%- endfor %} */
    if (!ct_json_dump_items(b, tools_json, strlen(tools_json), -1, "\n", "")) return false;
    buf_puts(b, hermes_tail);
    return true;
}

bool ct_tools_hermes_call(tok_buf *b, const tok_chat_tool_call *c, bool raw) {
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

bool ct_tools_xml_block(tok_buf *b, const char *tools_json) {
    buf_puts(b, xml_head);
    if (!ct_json_dump_items(b, tools_json, strlen(tools_json), -1, "\n", "")) return false;
    buf_puts(b, xml_tail);
    return true;
}

bool ct_tools_xml_call(tok_buf *b, const tok_chat_tool_call *c) {
    buf_puts(b, "<tool_call>\n<function=");
    buf_puts(b, c->name);
    buf_puts(b, ">\n");
    const char *a = c->arguments ? c->arguments : "{}";
    if (!ct_json_xml_params(b, a, strlen(a))) return false;
    buf_puts(b, "</function>\n</tool_call>");
    return true;
}

static char *keep(ct_scratch *s, tok_buf *t) {
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
        tok_buf t = {0};
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
        s->msgs[k++] = (ct_msg){TOK_CHAT_SYSTEM, {p, p ? strlen(p) : 0}, NULL, 0, NULL};
    }
    for (; !err && i < n; i++) {
        tok_buf t = {0};
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
        s->msgs[k++] = (ct_msg){role, {p, strlen(p)}, NULL, 0, NULL};
    }
    if (err) {
        ct_generic_free(s);
        return err == HEARTH_ERR_NOMEM ? hr_fail(err, "chat template: out of memory") : err;
    }
    *out = s->msgs;
    *n_out = k;
    return HEARTH_OK;
}

/* ---- Gemma 4 --------------------------------------------------------------- */

static const char gq[] = "<|\"|>"; /* Gemma 4's string quote */

/* key + <|"|> + {{ v }} (|upper) + <|"|> */
static void gemma_quoted(tok_buf *b, const char *key, ct_span v, bool upper) {
    buf_puts(b, key);
    buf_puts(b, gq);
    ct_jv_print(b, v, upper);
    buf_puts(b, gq);
}

/* <|"|>ITEM<|"|>,... of a list (required:[...]; |upper for type lists) */
static void gemma_quoted_list(tok_buf *b, ct_span list, bool upper) {
    ct_span k, x;
    for (size_t at = 0, i = 0; ct_jv_next(list, &at, &k, &x); i++) {
        if (i) buf_puts(b, ",");
        gemma_quoted(b, "", x, upper);
    }
}

/* {%- if add_comma %},{%- else -%}{%- set add_comma = true -%}{% endif -%} */
static void comma(tok_buf *b, bool *add) {
    if (*add) buf_puts(b, ",");
    *add = true;
}

static bool gemma_params(tok_buf *b, ct_span props);

/* items:{...} of an array parameter: each non-null member of items. */
// NOLINTNEXTLINE(misc-no-recursion): as deep as the tool's JSON (<= 64)
static bool gemma_items(tok_buf *b, ct_span items) {
    ct_jmember *m;
    size_t n;
    if (!ct_jv_sorted(items, &m, &n)) return false;
    buf_puts(b, "items:{");
    bool ok = true, first = true;
    for (size_t i = 0; ok && i < n; i++) {
        const ct_span k = m[i].key, v = m[i].val;
        if (ct_jv_kind(v) == 'z') continue; /* item_value is not none */
        if (!first) buf_puts(b, ",");
        first = false;
        if (ct_jv_is(k, "properties")) {
            buf_puts(b, "properties:{");
            if (ct_jv_kind(v) == '{') ok = gemma_params(b, v);
            buf_puts(b, "}");
        } else if (ct_jv_is(k, "required")) {
            buf_puts(b, "required:[");
            gemma_quoted_list(b, v, false);
            buf_puts(b, "]");
        } else if (ct_jv_is(k, "type") && ct_jv_kind(v) == '"') {
            gemma_quoted(b, "type:", v, true);
        } else if (ct_jv_is(k, "type")) { /* a list: type:[<|"|>A<|"|>,...] */
            buf_puts(b, "type:[");
            gemma_quoted_list(b, v, true);
            buf_puts(b, "]");
        } else {
            ct_jv_print(b, k, false);
            buf_puts(b, ":");
            ok = ct_gemma_value(b, v, true);
        }
    }
    buf_puts(b, "}");
    free(m);
    return ok;
}

/* The template's format_parameters: each property but the schema's own
 * keywords as KEY:{description,enum|items,nullable,properties,required,type}. */
// NOLINTNEXTLINE(misc-no-recursion): as deep as the tool's JSON (<= 64)
static bool gemma_params(tok_buf *b, ct_span props) {
    static const char *const standard[] = {"description", "type", "properties", "required",
                                           "nullable"};
    ct_jmember *m;
    size_t n;
    if (!ct_jv_sorted(props, &m, &n)) return false;
    bool ok = true, first = true;
    for (size_t i = 0; ok && i < n; i++) {
        bool skip = false;
        for (size_t s = 0; s < sizeof standard / sizeof *standard; s++)
            skip |= ct_jv_is(m[i].key, standard[s]);
        if (skip) continue;
        if (!first) buf_puts(b, ",");
        first = false;
        const ct_span v = m[i].val;
        ct_jv_print(b, m[i].key, false);
        buf_puts(b, ":{");
        bool add = false;
        const ct_span desc = ct_jv_get(v, "description");
        if (ct_jv_truthy(desc)) {
            gemma_quoted(b, "description:", desc, false);
            add = true;
        }
        tok_buf type = {0}; /* value['type'] | upper */
        ct_jv_print(&type, ct_jv_get(v, "type"), true);
        if (type.oom) ok = false;
        const char *ty = type.p ? type.p : "";
        const ct_span en = ct_jv_get(v, "enum"), items = ct_jv_get(v, "items");
        if (!strcmp(ty, "STRING") && ct_jv_truthy(en)) {
            comma(b, &add);
            buf_puts(b, "enum:");
            ok = ok && ct_gemma_value(b, en, true);
        } else if (!strcmp(ty, "ARRAY") && ct_jv_kind(items) == '{' && ct_jv_truthy(items)) {
            comma(b, &add);
            ok = ok && gemma_items(b, items);
        }
        if (ct_jv_truthy(ct_jv_get(v, "nullable"))) {
            comma(b, &add);
            buf_puts(b, "nullable:true");
        }
        if (!strcmp(ty, "OBJECT")) {
            const ct_span p = ct_jv_get(v, "properties"), req = ct_jv_get(v, "required");
            if (ct_jv_kind(p) == '{' || ct_jv_kind(v) == '{') {
                comma(b, &add);
                buf_puts(b, "properties:{");
                ok = ok && gemma_params(b, ct_jv_kind(p) == '{' ? p : v);
                buf_puts(b, "}");
            }
            if (ct_jv_truthy(req)) {
                comma(b, &add);
                buf_puts(b, "required:[");
                gemma_quoted_list(b, req, false);
                buf_puts(b, "]");
            }
        }
        comma(b, &add);
        buf_puts(b, "type:<|\"|>");
        buf_puts(b, ty);
        buf_puts(b, "<|\"|>}");
        free(type.p);
    }
    free(m);
    return ok;
}

/* format_function_declaration(tool) */
static bool gemma_declaration(tok_buf *b, ct_span tool) {
    const ct_span f = ct_jv_get(tool, "function");
    const ct_span name = ct_jv_get(f, "name");
    if (ct_jv_kind(f) != '{' || ct_jv_kind(name) != '"') return false;
    buf_puts(b, "declaration:");
    ct_jv_print(b, name, false);
    gemma_quoted(b, "{description:", ct_jv_get(f, "description"), false);
    const ct_span params = ct_jv_get(f, "parameters");
    if (ct_jv_truthy(params)) {
        const ct_span props = ct_jv_get(params, "properties"), req = ct_jv_get(params, "required"),
                      type = ct_jv_get(params, "type");
        buf_puts(b, ",parameters:{");
        if (ct_jv_truthy(props)) {
            buf_puts(b, "properties:{");
            if (!gemma_params(b, props)) return false;
            buf_puts(b, "},");
        }
        if (ct_jv_truthy(req)) {
            buf_puts(b, "required:[");
            gemma_quoted_list(b, req, false);
            buf_puts(b, "],");
        }
        if (ct_jv_truthy(type)) { /* the parameters' closing brace comes with their type */
            gemma_quoted(b, "type:", type, true);
            buf_puts(b, "}");
        }
    }
    const ct_span resp = ct_jv_get(f, "response");
    if (resp.p) {
        const ct_span desc = ct_jv_get(resp, "description");
        tok_buf type = {0};
        ct_jv_print(&type, ct_jv_get(resp, "type"), true);
        buf_puts(b, ",response:{");
        if (ct_jv_truthy(desc)) {
            gemma_quoted(b, "description:", desc, false);
            buf_puts(b, ",");
        }
        if (type.p && !strcmp(type.p, "OBJECT")) buf_puts(b, "type:<|\"|>OBJECT<|\"|>}");
        free(type.p);
    }
    buf_puts(b, "}");
    return true;
}

bool ct_tools_gemma_block(tok_buf *b, const char *tools_json) {
    const ct_span tools = {tools_json, strlen(tools_json)};
    if (!ct_json_valid(tools) || ct_jv_kind(tools) != '[') return false;
    ct_span k, tool;
    for (size_t at = 0; ct_jv_next(tools, &at, &k, &tool);) {
        buf_puts(b, "<|tool>");
        if (!gemma_declaration(b, tool)) return false;
        buf_puts(b, "<tool|>");
    }
    return !b->oom;
}

bool ct_tools_gemma_call(tok_buf *b, const tok_chat_tool_call *c) {
    /* '<|tool_call>call:' + name + '{' + key:format_argument(value) for the
     * arguments' members in dictsort order + '}<tool_call|>' */
    const char *a = c->arguments ? c->arguments : "{}";
    const ct_span args = {a, strlen(a)};
    if (!ct_json_valid(args) || ct_jv_kind(args) != '{') return false;
    buf_puts(b, "<|tool_call>call:");
    buf_puts(b, c->name);
    if (!ct_gemma_value(b, args, false)) return false; /* {k:v,...}, as format_argument */
    buf_puts(b, "<tool_call|>");
    return true;
}
