/*
 * chat_inst.c - the [INST] chat formats: Llama 2 chat and Mistral's
 * templates (the first Mixtral / Mistral 7B one, 'v1', 'v3', 'v3-tekken',
 * 'v7'), recognized by what their Jinja text contains and rendered as that
 * text prints (Hugging Face's settings; tests/test_chat_inst.c compares with
 * jinja2's output). None of them has a generation prompt: the prompt ends
 * in [/INST].
 *
 * Where a template raises, so does the renderer, with the template's own
 * message: roles must alternate user/assistant after the optional system
 * message (v7 excepted), and only the first message may be a system one
 * (v7 prints [SYSTEM_PROMPT] wherever one is). The first Mixtral template
 * has no system role at all; its system message is merged into the first
 * user turn, as llama.cpp does (tok_chat_render's merge_system).
 *
 * v3 and v3-tekken have Mistral's tools: [AVAILABLE_TOOLS] [...] before the
 * last user turn, an assistant's calls as [TOOL_CALLS] [{"name": ...,
 * "arguments": {...}, "id": ...}] (the call's function through tojson, its
 * arguments as the object they hold, the content not printed) and each
 * result as [TOOL_RESULTS] {"content": ..., "call_id": ...}[/TOOL_RESULTS];
 * calls and results are left out of the alternation check. Their ids must
 * be 9 alphanumeric characters: any other id (OpenAI's are call_ + 24) is
 * mapped to 9 from its hash, the same for a call and its result.
 *
 * Ministral 3's templates (Instruct and Reasoning, December 2025) print one
 * [SYSTEM_PROMPT] first - the first message's, else the template's own
 * default_system_message, read from its text - then [AVAILABLE_TOOLS] with
 * the tools through tojson, [INST]...[/INST] turns, answers as their content,
 * each call as [TOOL_CALLS]NAME[ARGS]ARGUMENTS, then EOS, and each result as
 * [TOOL_RESULTS]...[/TOOL_RESULTS].
 */
#include "chat_impl.h"

#include <ctype.h>
#include <string.h>

typedef struct inst_variant {
    tok_chat_inst v;
    const char *name;
} inst_variant;

static const inst_variant VARIANTS[] = {
    {TOK_INST_LLAMA2, "llama2"},
    {TOK_INST_LLAMA2_SYS, "llama2-sys"},
    {TOK_INST_V1, "mistral-v1"},
    {TOK_INST_V3, "mistral-v3"},
    {TOK_INST_V3_TEKKEN, "mistral-v3-tekken"},
    {TOK_INST_V7, "mistral-v7"},
    {TOK_INST_MINISTRAL3, "ministral3"},
    {TOK_INST_MINISTRAL3, "ministral3-reasoning"},
};

bool ct_inst_named(const char *name, tok_chat_template *out) {
    for (size_t i = 0; i < sizeof VARIANTS / sizeof VARIANTS[0]; i++) {
        if (strcmp(name, VARIANTS[i].name) != 0) continue;
        const tok_chat_inst v = VARIANTS[i].v;
        *out = (tok_chat_template){
            .family = TOK_CHAT_INST,
            .name = VARIANTS[i].name,
            .inst = v,
            .bos = true,
            .merge_system = v == TOK_INST_LLAMA2,
            .think = !strcmp(name, "ministral3-reasoning"), /* [THINK] replies split off */
            .tools = v == TOK_INST_V3 || v == TOK_INST_V3_TEKKEN ? TOK_TOOLS_MISTRAL
                     : v == TOK_INST_MINISTRAL3                  ? TOK_TOOLS_MINISTRAL
                                                                 : TOK_TOOLS_GENERIC};
        return true;
    }
    return false;
}

/* The Jinja string literal at s (a quote, text, the same quote) into
 * out[cap], Python's escapes read (the template text is normalized: its \n
 * are newlines already); false for another escape or a text too long. */
static bool jinja_string(const char *s, char *out, size_t cap) {
    const char q = *s++;
    if (q != '\'' && q != '"') return false;
    size_t n = 0;
    for (; *s && *s != q; s++) {
        char c = *s;
        if (c == '\\') {
            switch (*++s) {
            case '\\': c = '\\'; break;
            case '\'': c = '\''; break;
            case '"': c = '"'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default: return false; /* \x, \u, octal...: not in these templates */
            }
        }
        if (n + 1 >= cap) return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return *s == q;
}

/* Ministral 3: '[TOOL_CALLS]' + name + '[ARGS]' calls without ids, and its
 * default system message (the Reasoning one with [THINK] in it). */
static hearth_err detect_ministral3(const char *s, tok_chat_template *out) {
    static const char key[] = "default_system_message = ";
    const char *d = strstr(s, key);
    const bool think = ct_has(s, "[THINK]");
    ct_inst_named(think ? "ministral3-reasoning" : "ministral3", out);
    if (!d || !jinja_string(d + sizeof key - 1, out->default_system, sizeof out->default_system))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "chat template: a Ministral 3 template whose default system message is not "
                       "one plain string is not supported; choose one with --chat-template %s",
                       tok_chat_names());
    return HEARTH_OK;
}

hearth_err ct_inst_detect(const char *s, tok_chat_template *out) {
    const char *name;
    if (ct_has(s, "[SYSTEM_PROMPT]")) {
        /* v7: '[SYSTEM_PROMPT] ' + message['content']; Ministral 3: '[TOOL_CALLS]' + name +
         * '[ARGS]'; Mistral Small 3's and Magistral's templates print dated default system
         * prompts and [CALL_ID]s of their own */
        if (ct_has(s, "[ARGS]") && !ct_has(s, "[CALL_ID]") && ct_has(s, "default_system_message"))
            return detect_ministral3(s, out);
        if (!ct_has(s, "'[SYSTEM_PROMPT] ' + "))
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "chat template: Mistral's v7-tekken templates (Mistral Small 3, "
                           "Magistral) are not supported; choose one with --chat-template %s",
                           tok_chat_names());
        name = "mistral-v7";
    } else if (ct_has(s, "[AVAILABLE_TOOLS]")) {
        /* v3-tekken: "[INST]" + message["content"]; v3: "[INST] " + ... */
        name = ct_has(s, "\"[INST]\"") ? "mistral-v3-tekken" : "mistral-v3";
    } else if (ct_has(s, "' [INST] ' + system_message")) {
        name = "mistral-v1";
    } else if (ct_has(s, "<<SYS>>")) {
        name = "llama2-sys";
    } else {
        name = "llama2";
    }
    ct_inst_named(name, out);
    out->bos = ct_has(s, "bos_token");
    return HEARTH_OK;
}

/* Llama 2's user turn: bos + '[INST] ' + (the <<SYS>> block of the first
 * turn + content).strip() + ' [/INST]'. */
static void llama2_sys_user(const tok_chat_template *t, tok_buf *b, const ct_msg *sys, ct_span c,
                            const tok_chat_opts *o) {
    if (t->bos) buf_puts(b, o->bos);
    buf_puts(b, "[INST] ");
    if (!sys) {
        buf_span(b, ct_trim(c));
    } else {
        tok_buf text = {0};
        buf_puts(&text, "<<SYS>>\n");
        buf_span(&text, sys->content);
        buf_puts(&text, "\n<</SYS>>\n\n");
        buf_span(&text, c);
        buf_span(b, ct_trim((ct_span){text.p, text.n}));
        if (text.oom) b->oom = true;
        free(text.p);
    }
    buf_puts(b, " [/INST]");
}

static void user_turn(const tok_chat_template *t, tok_buf *b, const ct_msg *sys, ct_span c,
                      const tok_chat_opts *o) {
    switch (t->inst) {
    case TOK_INST_LLAMA2_SYS: llama2_sys_user(t, b, sys, c, o); return;
    case TOK_INST_LLAMA2: buf_puts(b, "[INST] "); break;
    case TOK_INST_V1: buf_puts(b, " [INST] "); break;
    case TOK_INST_V3_TEKKEN:
    case TOK_INST_MINISTRAL3: buf_puts(b, "[INST]"); break;
    case TOK_INST_V3:
    case TOK_INST_V7: buf_puts(b, "[INST] "); break;
    }
    if (sys) {
        buf_span(b, sys->content);
        buf_puts(b, "\n\n");
    }
    buf_span(b, c);
    buf_puts(b, t->inst == TOK_INST_LLAMA2 || t->inst == TOK_INST_V1 ? " [/INST]" : "[/INST]");
}

static void assistant_turn(const tok_chat_template *t, tok_buf *b, ct_span c,
                           const tok_chat_opts *o) {
    switch (t->inst) {
    case TOK_INST_LLAMA2:
    case TOK_INST_V3_TEKKEN:
    case TOK_INST_MINISTRAL3: /* (ministral3_render prints its answers, calls and all) */
        buf_span(b, c);
        break;
    case TOK_INST_LLAMA2_SYS:
        buf_puts(b, " ");
        buf_span(b, ct_trim(c));
        buf_puts(b, " ");
        break;
    case TOK_INST_V3:
        buf_puts(b, " ");
        buf_span(b, ct_trim(c));
        break;
    case TOK_INST_V1:
    case TOK_INST_V7:
        buf_puts(b, " ");
        buf_span(b, c);
        break;
    }
    buf_puts(b, o->eos);
}

/* A call's or result's id as the template accepts it: itself when it is 9
 * alphanumeric characters, else 9 from FNV-1a 64 of it. */
static void mistral_id(const char *id, char out[10]) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if (!id) id = "";
    size_t n = 0;
    while (n < 10 && isalnum((unsigned char)id[n])) n++;
    if (n == 9 && !id[9]) {
        memcpy(out, id, 10);
        return;
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = id; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    for (int k = 0; k < 9; k++, h /= 62) out[k] = digits[h % 62];
    out[9] = '\0';
}

/* [AVAILABLE_TOOLS] [...][/AVAILABLE_TOOLS]: each tool's function as
 * {"type": "function", "function": {...}}, its keys but "return" in order,
 * a string value printed raw in quotes (the template does not escape it),
 * any other through tojson. */
static bool mistral_tools(tok_buf *b, bool tekken, const char *tools_json) {
    const ct_span all = {tools_json, strlen(tools_json)};
    if (ct_jv_kind(all) != '[' || !ct_json_valid(all)) return false;
    buf_puts(b, tekken ? "[AVAILABLE_TOOLS][" : "[AVAILABLE_TOOLS] [");
    ct_span k, tool, key, val;
    size_t at = 0;
    for (int i = 0; ct_jv_next(all, &at, &k, &tool); i++) {
        if (i) buf_puts(b, ", ");
        buf_puts(b, "{\"type\": \"function\", \"function\": {");
        const ct_span fn = ct_jv_get(tool, "function");
        size_t fat = 0;
        for (int j = 0; ct_jv_kind(fn) == '{' && ct_jv_next(fn, &fat, &key, &val);) {
            if (ct_jv_is(key, "return")) continue;
            if (j++) buf_puts(b, ", ");
            buf_puts(b, "\"");
            ct_jv_print(b, key, false);
            buf_puts(b, "\": ");
            if (ct_jv_kind(val) == '"') {
                buf_puts(b, "\"");
                ct_jv_print(b, val, false);
                buf_puts(b, "\"");
            } else if (!ct_json_dump(b, val.p, val.n, -1)) {
                return false;
            }
        }
        buf_puts(b, "}}");
    }
    buf_puts(b, "][/AVAILABLE_TOOLS]");
    return true;
}

/* [TOOL_CALLS] [{"name": ..., "arguments": {...}, "id": ...}, ...] + eos. */
static bool mistral_calls(tok_buf *b, bool tekken, const ct_msg *msg, const tok_chat_opts *o) {
    buf_puts(b, tekken ? "[TOOL_CALLS][" : "[TOOL_CALLS] [");
    for (int c = 0; c < msg->n_calls; c++) {
        const tok_chat_tool_call *call = &msg->calls[c];
        const char *a = call->arguments ? call->arguments : "{}";
        char id[10];
        mistral_id(call->id, id);
        if (c) buf_puts(b, ", ");
        buf_puts(b, "{\"name\": ");
        ct_json_quote(b, call->name, strlen(call->name));
        buf_puts(b, ", \"arguments\": ");
        if (!ct_json_dump(b, a, strlen(a), -1)) return false;
        buf_puts(b, ", \"id\": \"");
        buf_puts(b, id);
        buf_puts(b, "\"}");
    }
    buf_puts(b, "]");
    buf_puts(b, o->eos);
    return true;
}

/* [TOOL_RESULTS] {"content": CONTENT, "call_id": ID}[/TOOL_RESULTS], the
 * content as it is (content|string). */
static void mistral_result(tok_buf *b, bool tekken, const ct_msg *msg) {
    char id[10];
    mistral_id(msg->call_id, id);
    buf_puts(b, tekken ? "[TOOL_RESULTS]{\"content\": " : "[TOOL_RESULTS] {\"content\": ");
    buf_span(b, msg->content);
    buf_puts(b, ", \"call_id\": \"");
    buf_puts(b, id);
    buf_puts(b, "\"}[/TOOL_RESULTS]");
}

static bool is_call_or_result(const tok_chat_template *t, const ct_msg *msg) {
    return t->tools == TOK_TOOLS_MISTRAL && (msg->role == TOK_CHAT_TOOL || msg->n_calls > 0);
}

/* Ministral 3's template: see the top of the file. An assistant's call
 * arguments are printed as the client sent them (OpenAI's are a string,
 * which the template prints as it is), none as {}. */
static hearth_err ministral3_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                                    const tok_chat_opts *o, tok_buf *b) {
    const size_t i0 = n && m[0].role == TOK_CHAT_SYSTEM ? 1 : 0;
    if (t->bos) buf_puts(b, o->bos);
    if (i0 || t->default_system[0]) {
        buf_puts(b, "[SYSTEM_PROMPT]");
        if (i0)
            buf_span(b, m[0].content);
        else
            buf_puts(b, t->default_system);
        buf_puts(b, "[/SYSTEM_PROMPT]");
    }
    if (ct_json_nonempty_array(o->tools)) {
        buf_puts(b, "[AVAILABLE_TOOLS]");
        if (!ct_json_dump(b, o->tools, strlen(o->tools), -1))
            return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
        buf_puts(b, "[/AVAILABLE_TOOLS]");
    }
    for (size_t i = i0, turn = 0; i < n; i++) {
        if (m[i].role != TOK_CHAT_USER && (m[i].role != TOK_CHAT_ASSISTANT || m[i].n_calls))
            continue;
        if ((m[i].role == TOK_CHAT_USER) != (turn++ % 2 == 0))
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "After the optional system message, conversation roles must alternate "
                           "user and assistant roles except for tool calls and results.");
    }
    for (size_t i = i0; i < n; i++) {
        const ct_msg *msg = &m[i];
        switch (msg->role) {
        case TOK_CHAT_USER: user_turn(t, b, NULL, msg->content, o); break;
        case TOK_CHAT_ASSISTANT:
            if (!msg->content.n && !msg->n_calls)
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "Assistant message must have a string or a list of chunks in "
                               "content or a list of tool calls.");
            buf_span(b, msg->content);
            for (int c = 0; c < msg->n_calls; c++) {
                const char *a = msg->calls[c].arguments;
                buf_puts(b, "[TOOL_CALLS]");
                buf_puts(b, msg->calls[c].name);
                buf_puts(b, "[ARGS]");
                buf_puts(b, a && *a ? a : "{}");
            }
            buf_puts(b, o->eos);
            break;
        case TOK_CHAT_TOOL:
            buf_puts(b, "[TOOL_RESULTS]");
            buf_span(b, msg->content);
            buf_puts(b, "[/TOOL_RESULTS]");
            break;
        case TOK_CHAT_SYSTEM:
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "Only user, assistant and tool roles are supported, got system.");
        }
    }
    return HEARTH_OK;
}

hearth_err ct_inst_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                          const tok_chat_opts *o, tok_buf *b) {
    if (t->inst == TOK_INST_MINISTRAL3) return ministral3_render(t, m, n, o, b);
    const bool v7 = t->inst == TOK_INST_V7;
    /* n is 0 when a merged system message was the only one */
    const ct_msg *sys = !v7 && n && m[0].role == TOK_CHAT_SYSTEM ? &m[0] : NULL;
    const size_t i0 = sys ? 1 : 0;
    const bool mistral = t->inst != TOK_INST_LLAMA2 && t->inst != TOK_INST_LLAMA2_SYS;
    const bool tekken = t->inst == TOK_INST_V3_TEKKEN;
    const bool tools = t->tools == TOK_TOOLS_MISTRAL && ct_json_nonempty_array(o->tools);
    size_t last_user = n;
    for (size_t i = i0; i < n; i++)
        if (m[i].role == TOK_CHAT_USER) last_user = i;
    if (!v7) {
        for (size_t i = i0, turn = 0; i < n; i++) {
            if (is_call_or_result(t, &m[i])) continue;
            if ((m[i].role == TOK_CHAT_USER) != (turn++ % 2 == 0))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               mistral ? "After the optional system message, conversation roles "
                                         "must alternate user/assistant/user/assistant/..."
                                       : "Conversation roles must alternate "
                                         "user/assistant/user/assistant/...");
        }
    }
    if (t->bos && t->inst != TOK_INST_LLAMA2_SYS) buf_puts(b, o->bos);
    for (size_t i = i0; i < n; i++) {
        if (is_call_or_result(t, &m[i]) && m[i].role == TOK_CHAT_TOOL) {
            mistral_result(b, tekken, &m[i]);
            continue;
        }
        if (is_call_or_result(t, &m[i])) {
            if (!mistral_calls(b, tekken, &m[i], o))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "chat template: the arguments of a tool call are not JSON");
            continue;
        }
        switch (m[i].role) {
        case TOK_CHAT_USER: {
            /* message == user_messages[-1]: Jinja compares the dicts, so an
               earlier user turn equal to the last one gets the tools too */
            const bool equal_last =
                last_user < n && m[i].content.n == m[last_user].content.n &&
                (!m[i].content.n ||
                 !memcmp(m[i].content.p, m[last_user].content.p, m[i].content.n));
            if (tools && equal_last && !mistral_tools(b, tekken, o->tools))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "chat template: 'tools' is not a JSON array");
            /* v1 and Llama 2: the system message opens the first turn; v3: the
             * last message, when it is a user turn (else it is not printed) */
            const bool here =
                t->inst == TOK_INST_V3 || t->inst == TOK_INST_V3_TEKKEN ? i + 1 == n : i == i0;
            user_turn(t, b, here ? sys : NULL, m[i].content, o);
            break;
        }
        case TOK_CHAT_ASSISTANT: assistant_turn(t, b, m[i].content, o); break;
        case TOK_CHAT_SYSTEM:
            if (v7) {
                buf_puts(b, "[SYSTEM_PROMPT] ");
                buf_span(b, m[i].content);
                buf_puts(b, "[/SYSTEM_PROMPT]");
                break;
            }
            if (t->inst == TOK_INST_LLAMA2_SYS) break; /* no branch for it: nothing printed */
            /* fall through */
        case TOK_CHAT_TOOL:
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           v7        ? "Only user, system and assistant roles are supported!"
                           : mistral ? "Only user and assistant roles are supported, with the "
                                       "exception of an initial optional system message!"
                                     : "Only user and assistant roles are supported!");
        }
    }
    return HEARTH_OK;
}
