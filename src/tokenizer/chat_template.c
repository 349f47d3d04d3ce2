/*
 * chat_template.c - recognition of the chat template families small models
 * ship and a C renderer for each (see chat_template.h for the contract).
 *
 * Recognition looks for substrings that only one family's template text
 * contains, after turning the two-character escape \n into a newline (some
 * GGUF files store templates with real newlines inside Jinja strings, others
 * with the escape). Each renderer follows its Jinja source line by line; the
 * comments quote the lines where the output is not obvious (trim, defaults,
 * prefixes). Jinja's trim is Python's str.strip(): it removes Unicode
 * whitespace, not only ASCII.
 */
#include "chat_impl.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- text helpers -------------------------------------------------------- */

/* Length of the Python-whitespace character at s[0..n), or 0 if none. */
static size_t py_space_len(const unsigned char *s, size_t n) {
    if (s[0] == ' ' || (s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x1f)) return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n < 3) return 0;
    const unsigned cp3 =
        ((unsigned)(s[0] & 0x0f) << 12) | ((unsigned)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    if ((s[0] & 0xf0) != 0xe0 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
    if (cp3 == 0x1680 || (cp3 >= 0x2000 && cp3 <= 0x200a) || cp3 == 0x2028 || cp3 == 0x2029 ||
        cp3 == 0x202f || cp3 == 0x205f || cp3 == 0x3000)
        return 3;
    return 0;
}

/* Whether a Python-whitespace character ends at s[n). */
static size_t py_space_len_back(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (py_space_len(s + n - k, k) == k) return k;
    return 0;
}

ct_span ct_trim(ct_span s) {
    if (!s.n) return s; /* an empty buffer's p may be NULL: no arithmetic on it */
    const unsigned char *u = (const unsigned char *)s.p;
    size_t a = 0, b = s.n, k;
    while (a < b && (k = py_space_len(u + a, b - a)) > 0) a += k;
    while (b > a && (k = py_space_len_back(u + a, b - a)) > 0) b -= k;
    return (ct_span){s.p + a, b - a};
}

static ct_span span_lstrip_nl(ct_span s) { /* str.lstrip('\n') */
    while (s.n && s.p[0] == '\n') s.p++, s.n--;
    return s;
}

static ct_span span_rstrip_nl(ct_span s) { /* str.rstrip('\n') */
    while (s.n && s.p[s.n - 1] == '\n') s.n--;
    return s;
}

/* First (last when `last`) occurrence of needle in s, or NULL. */
const char *ct_span_find(ct_span s, const char *needle, bool last) {
    const size_t m = strlen(needle);
    const char *hit = NULL;
    for (size_t i = 0; m <= s.n && i + m <= s.n; i++) {
        if (memcmp(s.p + i, needle, m) == 0) {
            hit = s.p + i;
            if (!last) break;
        }
    }
    return hit;
}

/* ---- recognition --------------------------------------------------------- */

static const char ct_names[] =
    "chatml|qwen2.5|qwen3|qwen3-thinking|qwen3.5|llama3|llama3.1|"
    "llama3.2|gemma|"
    "gemma3|gemma4|phi3|phi3-mini|phi4-mini|phi4|deepseek-r1|granite|"
    "granite3.3|olmo2|zephyr|exaone4|llama2|llama2-sys|mistral-v1|"
    "mistral-v3|mistral-v3-tekken|mistral-v7|ministral3|ministral3-reasoning|"
    "lfm2|lfm2.5|smollm3|smollm3-short";

const char *tok_chat_names(void) { return ct_names; }

hearth_err tok_chat_named(const char *name, tok_chat_template *out) {
    tok_chat_template t;
    if (!strcmp(name, "chatml")) {
        t = (tok_chat_template){.family = TOK_CHAT_CHATML, .name = "chatml"};
    } else if (!strcmp(name, "qwen2.5")) {
        t = (tok_chat_template){
            .family = TOK_CHAT_CHATML, .name = "qwen2.5", .tools = TOK_TOOLS_HERMES};
        snprintf(t.default_system, sizeof t.default_system, "%s",
                 "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
    } else if (!strcmp(name, "qwen3") || !strcmp(name, "qwen3-thinking")) {
        const bool open = !strcmp(name, "qwen3-thinking");
        t = (tok_chat_template){.family = TOK_CHAT_CHATML,
                                .name = open ? "qwen3-thinking" : "qwen3",
                                .think = true,
                                .think_toggle = !open,
                                .think_open = open,
                                .tools = TOK_TOOLS_HERMES,
                                .tool_args_raw = true};
    } else if (!strcmp(name, "qwen3.5")) {
        t = (tok_chat_template){.family = TOK_CHAT_CHATML,
                                .name = "qwen3.5",
                                .think = true,
                                .think_toggle = true,
                                .think_open = true,
                                .trim = true,
                                .tools = TOK_TOOLS_XML};
    } else if (!strcmp(name, "llama3")) {
        t = (tok_chat_template){.family = TOK_CHAT_LLAMA3, .name = "llama3", .bos = true};
    } else if (!strcmp(name, "llama3.1")) {
        t = (tok_chat_template){.family = TOK_CHAT_LLAMA3,
                                .name = "llama3.1",
                                .bos = true,
                                .dated = true,
                                .tools = TOK_TOOLS_LLAMA3};
    } else if (!strcmp(name, "llama3.2")) {
        t = (tok_chat_template){.family = TOK_CHAT_LLAMA3,
                                .name = "llama3.2",
                                .bos = true,
                                .dated = true,
                                .date_now = true,
                                .tools = TOK_TOOLS_LLAMA3};
    } else if (!strcmp(name, "gemma")) {
        t = (tok_chat_template){
            .family = TOK_CHAT_GEMMA, .name = "gemma", .bos = true, .merge_system = true};
    } else if (!strcmp(name, "gemma3")) {
        t = (tok_chat_template){
            .family = TOK_CHAT_GEMMA, .name = "gemma3", .bos = true, .gemma_prefix = true};
    } else if (!strcmp(name, "gemma4")) {
        t = (tok_chat_template){.family = TOK_CHAT_GEMMA4,
                                .name = "gemma4",
                                .bos = true,
                                .think = true,
                                .think_toggle = true,
                                .tools = TOK_TOOLS_GEMMA4};
    } else if (!strcmp(name, "phi3")) {
        t = (tok_chat_template){.family = TOK_CHAT_PHI3,
                                .name = "phi3",
                                .role_newline = true,
                                .skip_empty_system = true};
    } else if (!strcmp(name, "phi3-mini")) {
        t = (tok_chat_template){.family = TOK_CHAT_PHI3,
                                .name = "phi3-mini",
                                .bos = true,
                                .legacy_turns = true,
                                .merge_system = true,
                                .role_newline = true};
    } else if (!strcmp(name, "phi4-mini")) {
        t = (tok_chat_template){.family = TOK_CHAT_PHI3, .name = "phi4-mini"};
    } else if (!strcmp(name, "granite") || !strcmp(name, "granite3.3")) {
        const bool dated = !strcmp(name, "granite3.3");
        t = (tok_chat_template){.family = TOK_CHAT_GRANITE,
                                .name = dated ? "granite3.3" : "granite",
                                .date_now = dated};
    } else if (!strcmp(name, "exaone4")) {
        t = (tok_chat_template){.family = TOK_CHAT_EXAONE4, .name = "exaone4"};
    } else if (!strcmp(name, "olmo2")) {
        t = (tok_chat_template){.family = TOK_CHAT_TULU, .name = "olmo2", .bos = true};
    } else if (!strcmp(name, "zephyr")) {
        t = (tok_chat_template){.family = TOK_CHAT_TULU, .name = "zephyr", .eos_turns = true};
    } else if (ct_inst_named(name, &t) || ct_lfm2_named(name, &t) || ct_smollm3_named(name, &t)) {
        /* the [INST] formats (chat_inst.c), LFM2's (chat_lfm2.c), SmolLM3's (chat_smollm3.c) */
    } else if (!strcmp(name, "phi4")) {
        t = (tok_chat_template){.family = TOK_CHAT_PHI4, .name = "phi4", .legacy_turns = true};
    } else if (!strcmp(name, "deepseek-r1")) {
        t = (tok_chat_template){.family = TOK_CHAT_DEEPSEEK,
                                .name = "deepseek-r1",
                                .bos = true,
                                .think = true,
                                .think_open = true};
    } else {
        return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: unknown name '%s' (known: %s)", name,
                       ct_names);
    }
    *out = t;
    return HEARTH_OK;
}

/* The template text with every backslash-n escape turned into a newline, so
 * one pattern matches both spellings. */
static char *normalize(const char *tmpl, size_t len) {
    char *s = malloc(len + 1);
    if (!s) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (tmpl[i] == '\\' && i + 1 < len && tmpl[i + 1] == 'n') {
            s[n++] = '\n';
            i++;
        } else {
            s[n++] = tmpl[i];
        }
    }
    s[n] = '\0';
    return s;
}

/* A literal default system prompt: "<|im_start|>system\n" followed by plain
 * text up to "<|im_end|>" inside one Jinja string (Qwen 2.5, SmolLM2). Text
 * with quotes, braces or '+' is an expression, not a default. */
static void chatml_default_system(const char *s, tok_chat_template *t) {
    static const char open[] = "<|im_start|>system\n";
    for (const char *p = strstr(s, open); p; p = strstr(p + 1, open)) {
        const char *text = p + sizeof open - 1;
        const char *end = strstr(text, "<|im_end|>");
        if (!end || end == text || (size_t)(end - text) >= sizeof t->default_system) continue;
        if (memchr(text, '\'', (size_t)(end - text)) || memchr(text, '"', (size_t)(end - text)) ||
            memchr(text, '{', (size_t)(end - text)) || memchr(text, '}', (size_t)(end - text)) ||
            memchr(text, '+', (size_t)(end - text)))
            continue;
        memcpy(t->default_system, text, (size_t)(end - text));
        t->default_system[end - text] = '\0';
        return;
    }
}

static hearth_err detect_chatml(const char *s, tok_chat_template *t) {
    if (ct_lfm2_detect(s, t)) return HEARTH_OK;    /* LFM2, LFM2.5: chat_lfm2.c */
    if (ct_smollm3_detect(s, t)) return HEARTH_OK; /* SmolLM3: chat_smollm3.c */
    if (ct_has(s, "<end_of_utterance>"))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "chat template: SmolVLM's template is not supported");
    t->family = TOK_CHAT_CHATML;
    t->name = "chatml";
    if (ct_has(s, "<think>") || ct_has(s, "</think>")) {
        /* Qwen 3 keeps the reasoning of turns after the last user query only;
         * other reasoning templates (QwQ, R1 distills) differ. */
        if (!ct_has(s, "last_query_index"))
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "chat template: a ChatML template with <think> handling other than "
                           "Qwen 3's is not supported");
        t->think = true;
        /* Qwen 3: {%- if enable_thinking is defined and enable_thinking is false %};
         * Thinking-2507 and QwQ: {{- '<|im_start|>assistant\n<think>\n' }} */
        t->think_toggle = ct_has(s, "enable_thinking");
        t->think_open = ct_has(s, "assistant\n<think>\n'");
        t->name = t->think_open ? "qwen3-thinking" : "qwen3";
        /* Qwen3.5: {%- else %}{{- '<think>\n' }} after the assistant header,
         * render_content(...)|trim, <function=...> calls */
        if (t->think_toggle && ct_has(s, "{{- '<think>\n' }}")) {
            t->think_open = t->trim = true;
            t->name = "qwen3.5";
        }
    }
    /* Qwen 2.5/3: {%- if tools %} ... <tools> ... <tool_call> ... */
    if (ct_has(s, "<tools>") && ct_has(s, "<tool_call>")) /* Qwen3.5: XML calls, tojson'd tools */
        t->tools =
            ct_has(s, "<function=") && ct_has(s, "You have access to the following functions:")
                ? TOK_TOOLS_XML
                : TOK_TOOLS_HERMES;
    /* Qwen 3: {%- if tool_call.arguments is string %}{{- tool_call.arguments }} */
    t->tool_args_raw = ct_has(s, "arguments is string");
    chatml_default_system(s, t);
    return HEARTH_OK;
}

static void detect_phi3(const char *s, tok_chat_template *t) {
    t->family = TOK_CHAT_PHI3;
    t->bos = ct_has(s, "bos_token");
    /* Phi-3-mini/medium: {{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' +
     * '<|assistant|>' + '\n'}}, assistant turns print only their content, and
     * system messages are ignored. */
    t->legacy_turns = ct_has(s, "'<|end|>' + '\n' + '<|assistant|>'");
    t->merge_system = t->legacy_turns;
    /* Phi-4-mini: '<|' + message['role'] + '|>' + message['content'] + '<|end|>' */
    t->role_newline = !ct_has(s, "'|>' + message['content']");
    /* Phi-3.5: {% if message['role'] == 'system' and message['content'] %} */
    t->skip_empty_system = ct_has(s, "message['role'] == 'system' and message['content']");
    t->name = t->legacy_turns ? "phi3-mini" : t->role_newline ? "phi3" : "phi4-mini";
}

hearth_err tok_chat_detect(const char *tmpl, size_t len, tok_chat_template *out) {
    char *s = normalize(tmpl, len);
    if (!s) return hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory");
    tok_chat_template t = {0};
    hearth_err err = HEARTH_OK;
    if (ct_has(s, "<|im_start|>") && ct_has(s, "<|im_sep|>")) {
        t.family = TOK_CHAT_PHI4;
        t.name = "phi4";
        t.legacy_turns = ct_has(s, "<|im_end|><|im_start|>assistant<|im_sep|>");
    } else if (ct_has(s, "<｜User｜>") && ct_has(s, "<｜Assistant｜>")) {
        /* DeepSeek-R1 distills; since their update the generation prompt
         * opens the block: {{'<｜Assistant｜><think>\n'}} */
        t.family = TOK_CHAT_DEEPSEEK;
        t.name = "deepseek-r1";
        t.bos = ct_has(s, "bos_token");
        t.think = true;
        t.think_open = ct_has(s, "<｜Assistant｜><think>\n'");
    } else if (ct_has(s, "<|im_start|>")) {
        err = detect_chatml(s, &t);
    } else if (ct_has(s, "<|start_header_id|>") && ct_has(s, "<|end_header_id|>")) {
        t.family = TOK_CHAT_LLAMA3;
        t.bos = ct_has(s, "bos_token");
        t.dated = ct_has(s, "Cutting Knowledge Date");
        t.date_now = t.dated && ct_has(s, "strftime_now");
        t.name = !t.dated ? "llama3" : t.date_now ? "llama3.2" : "llama3.1";
        /* 3.1/3.2: "Environment: ipython", tools in the first user message */
        if (t.dated && ct_has(s, "ipython") && ct_has(s, "tools_in_user_message"))
            t.tools = TOK_TOOLS_LLAMA3;
    } else if (ct_has(s, "[INST]")) {
        err = ct_inst_detect(s, &t);
    } else if (ct_has(s, "<|turn>") && ct_has(s, "<turn|>") && ct_has(s, "'<|tool_call>call:'")) {
        /* Gemma 4: {{- '<|turn>' + role + '\n' }}, its calls as
         * {{- '<|tool_call>call:' + function['name'] + '{' -}} */
        err = tok_chat_named("gemma4", &t);
    } else if (ct_has(s, "<start_of_turn>")) {
        t.family = TOK_CHAT_GEMMA;
        t.bos = ct_has(s, "bos_token");
        t.gemma_prefix = ct_has(s, "first_user_prefix");
        t.merge_system = !t.gemma_prefix;
        t.name = t.gemma_prefix ? "gemma3" : "gemma";
    } else if (ct_has(s, "<|assistant|>") && ct_has(s, "<|end|>")) {
        detect_phi3(s, &t);
    } else if (ct_has(s, "<|start_of_role|>")) {
        /* Granite 3.x; 3.3's prints a dated system message when there is none (3.1's and
           3.2's differ in wording, and render as llama.cpp's built-in Granite template: none) */
        t.family = TOK_CHAT_GRANITE;
        t.date_now = ct_has(s, "Knowledge Cutoff Date: April 2024. Today's Date: ") &&
                     ct_has(s, "You are a helpful AI assistant.");
        t.name = t.date_now ? "granite3.3" : "granite";
    } else if (ct_has(s, "[|system|]") && ct_has(s, "[|assistant|]") &&
               ct_has(s, "[|endofturn|]") && ct_has(s, "[|tool|]")) {
        t.family = TOK_CHAT_EXAONE4; /* EXAONE 4.0 (EXAONE 3's, without [|tool|], is not) */
        t.name = "exaone4";
    } else if (ct_has(s, "<|user|>\n' + message['content'] + eos_token")) {
        /* Zephyr, TinyLlama: '<|user|>\n' + content + eos_token, every turn */
        t.family = TOK_CHAT_TULU;
        t.name = "zephyr";
        t.eos_turns = true;
        t.bos = ct_has(s, "bos_token");
    } else if (ct_has(s, "<|user|>") && ct_has(s, "<|assistant|>") && ct_has(s, "<|system|>") &&
               ct_has(s, "eos_token")) {
        /* OLMo 2 Instruct, Tulu 3: '<|user|>\n' + content + '\n', assistant turns end in EOS */
        t.family = TOK_CHAT_TULU;
        t.name = "olmo2";
        t.bos = ct_has(s, "bos_token");
    } else {
        err = hr_fail(HEARTH_ERR_UNSUPPORTED,
                      "chat template: not one Hearth recognizes (it renders Llama 3.x, ChatML as "
                      "in Qwen 2.5/3 and SmolLM2/3, Gemma 2/3/4, Phi-3/3.5/4-mini, Phi-4, Granite "
                      "3.x, OLMo 2, Zephyr, EXAONE 4.0, the DeepSeek-R1 distills, Llama 2 and "
                      "Mistral's [INST] formats); choose "
                      "one with --chat-template %s",
                      ct_names);
    }
    free(s);
    if (!err) *out = t;
    return err;
}

/* ---- rendering ----------------------------------------------------------- */

const char *ct_role_name(tok_chat_role r) {
    return r == TOK_CHAT_SYSTEM      ? "system"
           : r == TOK_CHAT_USER      ? "user"
           : r == TOK_CHAT_ASSISTANT ? "assistant"
                                     : "tool";
}

/* Qwen 3's assistant turn. The template cuts a reasoning block out of the
 * content ("content.split('</think>')[-1].lstrip('\n')", reasoning =
 * "split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')") and
 * prints it back only for turns after the last user query (Qwen 3: the last
 * turn, or one with reasoning; Qwen3.5, t->trim: every such turn, the
 * content and the reasoning trimmed). */
static ct_span qwen3_assistant(const tok_chat_template *t, tok_buf *b, ct_span c, bool after_query,
                               bool last) {
    if (t->trim) c = ct_trim(c);
    ct_span content = c, reasoning = {c.p, 0};
    const char *first_end = ct_span_find(c, "</think>", false);
    if (first_end) {
        const char *last_end = ct_span_find(c, "</think>", true);
        assert(last_end); /* found from the start, so from the end */
        const char *after = last_end + strlen("</think>");
        content = span_lstrip_nl((ct_span){after, (size_t)(c.p + c.n - after)});
        ct_span before = span_rstrip_nl((ct_span){c.p, (size_t)(first_end - c.p)});
        const char *open = ct_span_find(before, "<think>", true);
        if (open) {
            const char *r = open + strlen("<think>");
            before = (ct_span){r, (size_t)(before.p + before.n - r)};
        }
        reasoning = span_lstrip_nl(before);
    }
    buf_puts(b, "<|im_start|>assistant\n");
    if (after_query && (t->trim || last || reasoning.n)) {
        ct_span r = t->trim ? ct_trim(reasoning) : span_rstrip_nl(span_lstrip_nl(reasoning));
        buf_puts(b, "<think>\n");
        buf_span(b, r);
        buf_puts(b, "\n</think>\n\n");
        buf_span(b, span_lstrip_nl(content));
    } else {
        buf_span(b, content);
    }
    return content; /* the template's `content`, which decides the calls' separator */
}

static bool is_tool_response(ct_span c) {
    static const char open[] = "<tool_response>", close[] = "</tool_response>";
    return c.n >= sizeof open - 1 + sizeof close - 1 && !memcmp(c.p, open, sizeof open - 1) &&
           !memcmp(c.p + c.n - (sizeof close - 1), close, sizeof close - 1);
}

/* An assistant turn with tool calls (Qwen 2.5: '<|im_start|>assistant' + ('\n'
 * + content if content) + '\n<tool_call>...' per call; Qwen 3: the turn's
 * head and content as without calls, then ('\n' unless it is the first call
 * and content is empty) + '<tool_call>...' per call. Both print the same
 * bytes; they differ in how arguments are printed and in <think>.) */
static bool chatml_calls(const tok_chat_template *t, const ct_msg *m, tok_buf *b, bool after_query,
                         bool last) {
    ct_span content = m->content;
    if (t->think) {
        content = qwen3_assistant(t, b, m->content, after_query, last);
    } else {
        buf_puts(b, "<|im_start|>assistant\n");
        buf_span(b, content);
    }
    for (int c = 0; c < m->n_calls; c++) {
        if (t->tools == TOK_TOOLS_XML) { /* '\n\n' before the first after content */
            buf_puts(b, c > 0 ? "\n" : ct_trim(content).n ? "\n\n" : "");
            if (!ct_tools_xml_call(b, &m->calls[c])) return false;
            continue;
        }
        if (c > 0 || content.n) buf_puts(b, "\n");
        if (!ct_tools_hermes_call(b, &m->calls[c], t->tool_args_raw)) return false;
    }
    buf_puts(b, "<|im_end|>\n");
    return true;
}

static hearth_err render_chatml(const tok_chat_template *t, const ct_msg *m, size_t n,
                                const tok_chat_opts *o, tok_buf *b) {
    size_t i0 = 0;
    const bool sys = n && m[0].role == TOK_CHAT_SYSTEM;
    /* Qwen3.5 trims every message's content */
#define CONTENT(msg) (t->trim ? ct_trim((msg).content) : (msg).content)
    if (t->tools == TOK_TOOLS_XML && ct_json_nonempty_array(o->tools)) {
        /* '<|im_start|>system\n' + the tools block + ('\n\n' + system content if any) */
        buf_puts(b, "<|im_start|>system\n");
        if (!ct_tools_xml_block(b, o->tools))
            return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
        if (sys && CONTENT(m[0]).n) {
            buf_puts(b, "\n\n");
            buf_span(b, CONTENT(m[0]));
        }
        buf_puts(b, "<|im_end|>\n");
        i0 = sys ? 1 : 0;
    } else if (t->tools == TOK_TOOLS_HERMES && ct_json_nonempty_array(o->tools)) {
        /* '<|im_start|>system\n' + (system content or Qwen 2.5's default) +
         * '\n\n# Tools ...' (Qwen 3 without a system message: '# Tools ...') */
        buf_puts(b, "<|im_start|>system\n");
        if (sys) {
            buf_span(b, m[0].content);
            buf_puts(b, "\n\n");
        } else if (t->default_system[0]) {
            buf_puts(b, t->default_system);
            buf_puts(b, "\n\n");
        }
        if (!ct_tools_hermes_block(b, o->tools))
            return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
        buf_puts(b, "<|im_end|>\n");
        i0 = sys ? 1 : 0;
    } else if (sys) {
        buf_puts(b, "<|im_start|>system\n");
        buf_span(b, CONTENT(m[0]));
        buf_puts(b, "<|im_end|>\n");
        i0 = 1;
    } else if (t->default_system[0]) {
        buf_puts(b, "<|im_start|>system\n");
        buf_puts(b, t->default_system);
        buf_puts(b, "<|im_end|>\n");
    }
    /* Qwen 3: ns.last_query_index = the last user message that is not a
     * wrapped tool response (n - 1 when there is none). */
    size_t last_query = n ? n - 1 : 0;
    for (size_t i = n; i-- > 0;) {
        if (m[i].role == TOK_CHAT_USER && !is_tool_response(CONTENT(m[i]))) {
            last_query = i;
            break;
        }
    }
    for (size_t i = i0; i < n; i++) {
        if (m[i].role == TOK_CHAT_TOOL) {
            /* consecutive results share one user turn */
            if (i == 0 || m[i - 1].role != TOK_CHAT_TOOL) buf_puts(b, "<|im_start|>user");
            buf_puts(b, "\n<tool_response>\n");
            buf_span(b, CONTENT(m[i]));
            buf_puts(b, "\n</tool_response>");
            if (i + 1 == n || m[i + 1].role != TOK_CHAT_TOOL) buf_puts(b, "<|im_end|>\n");
            continue;
        }
        if (m[i].role == TOK_CHAT_ASSISTANT && m[i].n_calls) {
            if (!chatml_calls(t, &m[i], b, i > last_query, i + 1 == n))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "chat template: the arguments of a tool call are not JSON");
            continue;
        }
        if (t->think && m[i].role == TOK_CHAT_ASSISTANT) {
            qwen3_assistant(t, b, m[i].content, i > last_query, i + 1 == n);
            buf_puts(b, "<|im_end|>\n");
            continue;
        }
        buf_puts(b, "<|im_start|>");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "\n");
        buf_span(b, CONTENT(m[i]));
        buf_puts(b, "<|im_end|>\n");
    }
#undef CONTENT
    return HEARTH_OK;
}

bool ct_strftime_now(int64_t now, ct_date_fmt fmt, char *out, size_t cap) {
    time_t tt = now ? (time_t)now : time(NULL);
    struct tm tm;
    if (!localtime_r(&tt, &tm)) return false;
    switch (fmt) { /* literal formats, so that the compiler checks them */
    case CT_DATE_D_B_Y: return strftime(out, cap, "%d %b %Y", &tm) > 0;
    case CT_DATE_D_MONTH_Y: return strftime(out, cap, "%d %B %Y", &tm) > 0;
    case CT_DATE_MONTH_D_Y: return strftime(out, cap, "%B %d, %Y", &tm) > 0;
    }
    return false;
}

static void llama3_date(int64_t now, bool real, char *out, size_t cap) {
    if (!real || !ct_strftime_now(now, CT_DATE_D_B_Y, out, cap))
        snprintf(out, cap, "26 Jul 2024"); /* {%- set date_string = "26 Jul 2024" %} */
}

/* Llama 3.1/3.2 with tools (tools_in_user_message, the default): the
 * functions open the first message after the system one, which must exist
 * ("Cannot put tools in the first user message when there's no first user
 * message!"). */
static hearth_err llama3_tools_turn(const ct_msg *first, const tok_chat_opts *o, tok_buf *b) {
    buf_puts(b, "<|start_header_id|>user<|end_header_id|>\n\n"
                "Given the following functions, please respond with a JSON for a function call "
                "with its proper arguments that best answers the given prompt.\n\n"
                "Respond in the format {\"name\": function name, \"parameters\": dictionary of "
                "argument name and its value}.Do not use variables.\n\n");
    /* {%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\n\n" }}{%- endfor %} */
    if (!ct_json_dump_items(b, o->tools, strlen(o->tools), 4, "", "\n\n"))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
    buf_span(b, ct_trim(first->content));
    buf_puts(b, "<|eot_id|>");
    return HEARTH_OK;
}

/* A message of the 3.1/3.2 loop that carries tool calls or is a result. */
static hearth_err llama3_tool_msg(const ct_msg *m, tok_buf *b) {
    if (m->role == TOK_CHAT_TOOL) {
        /* ipython turn; a string content "is iterable" in Jinja, so it goes
         * through tojson: the result prints as a quoted JSON string */
        buf_puts(b, "<|start_header_id|>ipython<|end_header_id|>\n\n");
        ct_json_quote(b, m->content.p, m->content.n);
        buf_puts(b, "<|eot_id|>");
        return HEARTH_OK;
    }
    if (m->n_calls != 1)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "This model only supports single tool-calls at once!");
    /* '{"name": "' + name + '", ' + '"parameters": ' + arguments|tojson + '}' */
    const tok_chat_tool_call *c = &m->calls[0];
    const char *a = c->arguments ? c->arguments : "{}";
    buf_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"");
    buf_puts(b, c->name);
    buf_puts(b, "\", \"parameters\": ");
    if (!ct_json_dump(b, a, strlen(a), -1))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "chat template: the arguments of tool call '%s' are not JSON", c->name);
    buf_puts(b, "}<|eot_id|>");
    return HEARTH_OK;
}

static hearth_err render_llama3(const tok_chat_template *t, const ct_msg *m, size_t n,
                                const tok_chat_opts *o, tok_buf *b) {
    size_t i0 = 0;
    const bool tools = t->tools == TOK_TOOLS_LLAMA3 && ct_json_nonempty_array(o->tools);
    if (t->bos && n) buf_puts(b, o->bos);
    if (t->dated) {
        /* Llama 3.1+: the system header is always printed, holding
         * messages[0]['content']|trim when messages[0] is a system message. */
        ct_span sys = {"", 0};
        if (n && m[0].role == TOK_CHAT_SYSTEM) {
            sys = ct_trim(m[0].content);
            i0 = 1;
        }
        char date[64];
        llama3_date(o->now, t->date_now, date, sizeof date);
        buf_puts(b, "<|start_header_id|>system<|end_header_id|>\n\n");
        if (tools) buf_puts(b, "Environment: ipython\n");
        buf_puts(b, "Cutting Knowledge Date: December 2023\nToday Date: ");
        buf_puts(b, date);
        buf_puts(b, "\n\n");
        buf_span(b, sys);
        buf_puts(b, "<|eot_id|>");
    }
    if (tools) {
        if (i0 >= n)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "Cannot put tools in the first user message "
                                                   "when there's no first user message!");
        hearth_err err = llama3_tools_turn(&m[i0], o, b);
        if (err) return err;
        i0++;
    }
    for (size_t i = i0; i < n; i++) {
        if (t->tools == TOK_TOOLS_LLAMA3 && (m[i].role == TOK_CHAT_TOOL || m[i].n_calls)) {
            hearth_err err = llama3_tool_msg(&m[i], b);
            if (err) return err;
            continue;
        }
        buf_puts(b, "<|start_header_id|>");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "<|end_header_id|>\n\n");
        buf_span(b, ct_trim(m[i].content));
        buf_puts(b, "<|eot_id|>");
    }
    return HEARTH_OK;
}

static hearth_err render_gemma(const tok_chat_template *t, const ct_msg *m, size_t n,
                               const tok_chat_opts *o, tok_buf *b) {
    size_t i0 = 0;
    ct_span prefix = {"", 0};
    if (t->bos) buf_puts(b, o->bos);
    if (t->gemma_prefix && n && m[0].role == TOK_CHAT_SYSTEM) {
        prefix = m[0].content; /* first_user_prefix = messages[0]['content'] + '\n\n' */
        i0 = 1;
    }
    for (size_t i = i0; i < n; i++) {
        const size_t k = i - i0; /* loop.index0 over loop_messages */
        if ((m[i].role == TOK_CHAT_USER) != (k % 2 == 0))
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "Conversation roles must alternate user/assistant/user/assistant/...");
        buf_puts(b, "<start_of_turn>");
        buf_puts(b, m[i].role == TOK_CHAT_ASSISTANT ? "model" : ct_role_name(m[i].role));
        buf_puts(b, "\n");
        if (k == 0 && i0 == 1) {
            buf_span(b, prefix);
            buf_puts(b, "\n\n");
        }
        buf_span(b, ct_trim(m[i].content));
        buf_puts(b, "<end_of_turn>\n");
    }
    return HEARTH_OK;
}

/* Gemma 4's strip_thinking: every <|channel>...<channel|> cut from a model
 * turn's text (a part of text.split('<channel|>') keeps what comes before
 * its first '<|channel>'), then |trim. */
static void gemma4_strip_thinking(tok_buf *b, ct_span c) {
    static const char open[] = "<|channel>", close[] = "<channel|>";
    tok_buf t = {0};
    for (;;) {
        const char *end = ct_span_find(c, close, false);
        ct_span part = {c.p, end ? (size_t)(end - c.p) : c.n};
        const char *o = ct_span_find(part, open, false);
        if (o) part.n = (size_t)(o - part.p);
        buf_span(&t, part);
        if (!end) break;
        c = (ct_span){end + strlen(close), (size_t)(c.p + c.n - end - strlen(close))};
    }
    buf_span(b, ct_trim((ct_span){t.p, t.n}));
    if (t.oom) b->oom = true;
    free(t.p);
}

/* Whether a result answers call c: the template compares tc.get('id') with
 * follow.get('tool_call_id'), None == None included. */
static bool gemma4_answers(const tok_chat_tool_call *c, const char *call_id) {
    return (!c->id && !call_id) || (c->id && call_id && !strcmp(c->id, call_id));
}

/* The results that follow a message with calls, inside its model turn:
 * '<|tool_response>response:' + the call's name (by tool_call_id, else
 * 'unknown') + '{value:' + format_argument(content) + '}<tool_response|>'. */
static size_t gemma4_results(const ct_msg *m, size_t i, size_t n, tok_buf *b) {
    size_t k = i + 1;
    for (; k < n && m[k].role == TOK_CHAT_TOOL; k++) {
        const char *name = "unknown";
        for (int c = 0; c < m[i].n_calls; c++)
            if (gemma4_answers(&m[i].calls[c], m[k].call_id)) name = m[i].calls[c].name;
        buf_puts(b, "<|tool_response>response:");
        buf_puts(b, name);
        buf_puts(b, "{value:<|\"|>");
        buf_span(b, m[k].content);
        buf_puts(b, "<|\"|>}<tool_response|>");
    }
    return k - i - 1;
}

/* Gemma 4 (google/gemma-4-*-it): bos_token; a system turn when thinking is
 * on (<|think|>), there are tools (<|tool> declarations) or messages[0] is
 * a system message (its text trimmed); '<|turn>' + role + '\n' + content
 * (trimmed; a model turn's thinking cut) + '<turn|>\n' per message. A model
 * turn prints its calls and then the results that follow it, and stays
 * open after them when it has no content (the model goes on in the same
 * turn; a later assistant message continues it without a new header); a
 * call without results ends the turn in '<|tool_response>'. The generation
 * prompt '<|turn>model\n' (+ an empty thought channel when thinking is off)
 * is printed unless the last turn ended in calls or results; where it ended
 * in results and content ('<turn|>\n'), Hearth opens the model's turn
 * anyway, as llama.cpp does, where the template would print nothing. Role
 * "tool" messages after anything but calls print nothing, as there. */
static hearth_err render_gemma4(const tok_chat_template *t, const ct_msg *m, size_t n,
                                const tok_chat_opts *o, tok_buf *b) {
    enum { PREV_NONE, PREV_CALL, PREV_RESULT } prev = PREV_NONE;
    const bool think = !o->no_thinking, tools = ct_json_nonempty_array(o->tools);
    size_t i0 = 0;
    if (t->bos) buf_puts(b, o->bos);
    if (think || tools || m[0].role == TOK_CHAT_SYSTEM) {
        buf_puts(b, "<|turn>system\n");
        if (think) buf_puts(b, "<|think|>\n");
        if (m[0].role == TOK_CHAT_SYSTEM) {
            buf_span(b, ct_trim(m[0].content));
            i0 = 1;
        }
        if (tools && !ct_tools_gemma_block(b, o->tools))
            return b->oom ? hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory")
                          : hr_fail(HEARTH_ERR_INVALID_ARG,
                                    "chat template: 'tools' is not an array of functions");
        buf_puts(b, "<turn|>\n");
    }
    for (size_t i = i0; i < n; i++) {
        if (m[i].role == TOK_CHAT_TOOL) continue;
        prev = PREV_NONE;
        const bool model = m[i].role == TOK_CHAT_ASSISTANT;
        size_t j = i; /* the previous message that is not a result */
        while (j > i0 && m[j - 1].role == TOK_CHAT_TOOL) j--;
        if (!(model && j > i0 && m[j - 1].role == TOK_CHAT_ASSISTANT)) {
            buf_puts(b, "<|turn>");
            buf_puts(b, model ? "model" : ct_role_name(m[i].role));
            buf_puts(b, "\n");
        }
        size_t results = 0;
        if (m[i].n_calls) {
            for (int c = 0; c < m[i].n_calls; c++)
                if (!ct_tools_gemma_call(b, &m[i].calls[c]))
                    return b->oom ? hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory")
                                  : hr_fail(HEARTH_ERR_INVALID_ARG,
                                            "chat template: the arguments of tool call '%s' "
                                            "are not a JSON object",
                                            m[i].calls[c].name);
            prev = PREV_CALL;
            results = gemma4_results(m, i, n, b);
            if (results) prev = PREV_RESULT;
        }
        if (model)
            gemma4_strip_thinking(b, m[i].content);
        else
            buf_span(b, ct_trim(m[i].content));
        if (prev == PREV_CALL)
            buf_puts(b, "<|tool_response>");
        else if (!(results && m[i].content.n == 0))
            buf_puts(b, "<turn|>\n");
    }
    if (!o->add_generation_prompt) return HEARTH_OK;
    const bool ended = b->n >= 8 && !memcmp(b->p + b->n - 8, "<turn|>\n", 8);
    if (prev == PREV_NONE || (prev == PREV_RESULT && ended)) {
        buf_puts(b, "<|turn>model\n");
        if (!think) buf_puts(b, "<|channel>thought\n<channel|>");
    }
    return HEARTH_OK;
}

static void render_phi3(const tok_chat_template *t, const ct_msg *m, size_t n, tok_buf *b) {
    const char *nl = t->role_newline ? "\n" : "";
    for (size_t i = 0; i < n; i++) {
        if (t->legacy_turns) {
            if (m[i].role == TOK_CHAT_USER) {
                buf_puts(b, "<|user|>\n");
                buf_span(b, m[i].content);
                buf_puts(b, "<|end|>\n<|assistant|>\n");
            } else if (m[i].role == TOK_CHAT_ASSISTANT) {
                buf_span(b, m[i].content);
                buf_puts(b, "<|end|>\n");
            }
            continue;
        }
        if (m[i].role == TOK_CHAT_SYSTEM && t->skip_empty_system && m[i].content.n == 0) continue;
        buf_puts(b, "<|");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "|>");
        buf_puts(b, nl);
        buf_span(b, m[i].content);
        buf_puts(b, "<|end|>");
        buf_puts(b, nl);
    }
}

/* DeepSeek-R1 distills: bos_token, the system text (several: joined by a
 * blank line, as the later versions do), then '<｜User｜>' + content and
 * '<｜Assistant｜>' + the content after its last </think> (the template's
 * content.split('</think>')[-1]) + '<｜end▁of▁sentence｜>'. */
static void render_deepseek(const tok_chat_template *t, const ct_msg *m, size_t n,
                            const tok_chat_opts *o, tok_buf *b) {
    if (t->bos) buf_puts(b, o->bos);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (m[i].role != TOK_CHAT_SYSTEM) continue;
        if (!first) buf_puts(b, "\n\n");
        buf_span(b, m[i].content);
        first = false;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].role == TOK_CHAT_USER) {
            buf_puts(b, "<｜User｜>");
            buf_span(b, m[i].content);
        } else if (m[i].role == TOK_CHAT_ASSISTANT) {
            ct_span c = m[i].content;
            const char *end = ct_span_find(c, "</think>", true);
            if (end) {
                const char *after = end + strlen("</think>");
                c = (ct_span){after, (size_t)(c.p + c.n - after)};
            }
            buf_puts(b, "<｜Assistant｜>");
            buf_span(b, c);
            buf_puts(b, "<｜end▁of▁sentence｜>");
        }
    }
}

static void render_phi4(const tok_chat_template *t, const ct_msg *m, size_t n, tok_buf *b) {
    for (size_t i = 0; i < n; i++) {
        if (t->legacy_turns && m[i].role == TOK_CHAT_ASSISTANT) {
            buf_span(b, m[i].content);
            buf_puts(b, "<|im_end|>");
            continue;
        }
        buf_puts(b, "<|im_start|>");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "<|im_sep|>");
        buf_span(b, m[i].content);
        buf_puts(b, "<|im_end|>");
        if (t->legacy_turns && m[i].role == TOK_CHAT_USER)
            buf_puts(b, "<|im_start|>assistant<|im_sep|>");
    }
}

/* Granite 3.x: every message as <|start_of_role|>role<|end_of_role|>content
 * <|end_of_text|>\n; 3.3 (date_now) first prints its default system message
 * when messages[0] is not a system one (the template's text without tools,
 * documents or thinking). */
static void render_granite(const tok_chat_template *t, const ct_msg *m, size_t n,
                           const tok_chat_opts *o, tok_buf *b) {
    if (t->date_now && (n == 0 || m[0].role != TOK_CHAT_SYSTEM)) {
        char date[64];
        if (!ct_strftime_now(o->now, CT_DATE_MONTH_D_Y, date, sizeof date))
            snprintf(date, sizeof date, "(unknown)");
        buf_puts(b, "<|start_of_role|>system<|end_of_role|>Knowledge Cutoff Date: April 2024. "
                    "Today's Date: ");
        buf_puts(b, date);
        buf_puts(b, ". You are Granite, developed by IBM. You are a helpful AI "
                    "assistant.<|end_of_text|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, "<|start_of_role|>");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "<|end_of_role|>");
        buf_span(b, m[i].content);
        buf_puts(b, "<|end_of_text|>\n");
    }
}

/* OLMo 2 / Tulu 3: '<|role|>\n' + content + '\n' for system and user
 * turns; an assistant turn ends with EOS, then '\n' unless it is the last
 * message. Zephyr (eos_turns): every turn ends in EOS + '\n'. */
static void render_tulu(const tok_chat_template *t, const ct_msg *m, size_t n,
                        const tok_chat_opts *o, tok_buf *b) {
    if (t->bos) buf_puts(b, o->bos);
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, "<|");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "|>\n");
        buf_span(b, m[i].content);
        if (t->eos_turns || m[i].role == TOK_CHAT_ASSISTANT) buf_puts(b, o->eos);
        if (t->eos_turns || m[i].role != TOK_CHAT_ASSISTANT || i + 1 < n) buf_puts(b, "\n");
    }
}

/* EXAONE 4.0 as llama.cpp's built-in template prints it: '[|role|]' + the
 * trimmed content + '[|endofturn|]\n', a user turn ending in '\n' alone. */
static void render_exaone4(const ct_msg *m, size_t n, tok_buf *b) {
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, "[|");
        buf_puts(b, ct_role_name(m[i].role));
        buf_puts(b, "|]");
        buf_span(b, ct_trim(m[i].content));
        buf_puts(b, m[i].role == TOK_CHAT_USER ? "\n" : "[|endofturn|]\n");
    }
}

bool tok_chat_opens_think(const tok_chat_template *t, bool no_thinking) {
    return t->think_open && !(t->think_toggle && no_thinking);
}

static void generation_prompt(const tok_chat_template *t, const tok_chat_opts *o, tok_buf *b) {
    switch (t->family) {
    case TOK_CHAT_CHATML:
        if (!o->add_generation_prompt) break;
        buf_puts(b, "<|im_start|>assistant\n");
        if (t->think_toggle && o->no_thinking)
            buf_puts(b, "<think>\n\n</think>\n\n");
        else if (tok_chat_opens_think(t, o->no_thinking))
            buf_puts(b, "<think>\n");
        break;
    case TOK_CHAT_LLAMA3:
        if (o->add_generation_prompt)
            buf_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case TOK_CHAT_GEMMA:
        if (o->add_generation_prompt) buf_puts(b, "<start_of_turn>model\n");
        break;
    case TOK_CHAT_PHI3:
        if (t->legacy_turns) break; /* the user turn already opened the assistant's */
        if (o->add_generation_prompt)
            buf_puts(b, t->role_newline ? "<|assistant|>\n" : "<|assistant|>");
        else
            buf_puts(b, o->eos); /* {% else %}{{ eos_token }}{% endif %} */
        break;
    case TOK_CHAT_PHI4:
        if (!t->legacy_turns && o->add_generation_prompt)
            buf_puts(b, "<|im_start|>assistant<|im_sep|>");
        break;
    case TOK_CHAT_GRANITE:
        if (o->add_generation_prompt) buf_puts(b, "<|start_of_role|>assistant<|end_of_role|>");
        break;
    case TOK_CHAT_TULU:
        if (o->add_generation_prompt) buf_puts(b, "<|assistant|>\n");
        break;
    case TOK_CHAT_EXAONE4:
        if (o->add_generation_prompt) buf_puts(b, "[|assistant|]");
        break;
    case TOK_CHAT_DEEPSEEK:
        if (o->add_generation_prompt)
            buf_puts(b, tok_chat_opens_think(t, o->no_thinking) ? "<｜Assistant｜><think>\n"
                                                                : "<｜Assistant｜>");
        break;
    case TOK_CHAT_GEMMA4:         /* render_gemma4 knows where the last turn ended */
    case TOK_CHAT_INST:           /* the prompt ends in [/INST] */
    case TOK_CHAT_SMOLLM3: break; /* its renderer prints the prompt its reasoning mode wants */
    }
}

hearth_err tok_chat_render(const tok_chat_template *t, const tok_chat_msg *msgs, size_t n,
                           const tok_chat_opts *opts, char **out, size_t *out_len) {
    if (n == 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: no messages");
    tok_chat_opts o = *opts;
    if (!o.bos) o.bos = "";
    if (!o.eos) o.eos = "";
    if (o.tools && !ct_json_nonempty_array(o.tools) &&
        strspn(o.tools, " \t\r\n[]") != strlen(o.tools))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: 'tools' is not a JSON array");
    ct_msg *m = hr_calloc(n, sizeof *m);
    if (!m) return HEARTH_ERR_NOMEM;
    bool tool_msgs = false;
    for (size_t i = 0; i < n; i++) {
        const tok_chat_msg_tools *mt = o.msg_tools ? &o.msg_tools[i] : NULL;
        m[i] = (ct_msg){msgs[i].role,
                        {msgs[i].content, msgs[i].content_len},
                        mt ? mt->calls : NULL,
                        mt && mt->n_calls > 0 ? mt->n_calls : 0,
                        mt ? mt->tool_call_id : NULL};
        tool_msgs |= m[i].role == TOK_CHAT_TOOL || m[i].n_calls > 0;
    }
    ct_scratch gen = {0};
    if (t->tools == TOK_TOOLS_GENERIC && (tool_msgs || ct_json_nonempty_array(o.tools))) {
        /* no tools in this template: plain messages in the Hermes format */
        ct_msg *gm;
        size_t gn;
        hearth_err gerr = ct_tools_generic(m, n, o.tools, &gen, &gm, &gn);
        free(m);
        if (gerr) return gerr;
        m = gm;
        n = gn;
    }
    ct_msg *owned = gen.msgs ? NULL : m; /* what to free besides gen */
    char *merged = NULL;
    size_t nm = n;
    ct_msg *mm = m;
    if (t->merge_system && m[0].role == TOK_CHAT_SYSTEM) {
        /* The template has no place for a system message: like llama.cpp,
         * prepend it to the next message with "\n" (or drop it when alone). */
        if (n > 1) {
            tok_buf mb = {0};
            buf_span(&mb, m[0].content);
            buf_puts(&mb, "\n");
            buf_span(&mb, m[1].content);
            if (mb.oom || !mb.p) {
                free(mb.p);
                free(owned);
                ct_generic_free(&gen);
                return hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory");
            }
            merged = mb.p;
            m[1].content = (ct_span){merged, mb.n};
        }
        mm = m + 1;
        nm = n - 1;
    }
    tok_buf b = {0};
    hearth_err err = HEARTH_OK;
    switch (t->family) {
    case TOK_CHAT_CHATML:
        err = t->tools == TOK_TOOLS_LFM2 ? ct_lfm2_render(t, mm, nm, &o, &b)
                                         : render_chatml(t, mm, nm, &o, &b);
        break;
    case TOK_CHAT_LLAMA3: err = render_llama3(t, mm, nm, &o, &b); break;
    case TOK_CHAT_GEMMA: err = render_gemma(t, mm, nm, &o, &b); break;
    case TOK_CHAT_PHI3:
        if (t->bos) buf_puts(&b, o.bos);
        render_phi3(t, mm, nm, &b);
        break;
    case TOK_CHAT_PHI4: render_phi4(t, mm, nm, &b); break;
    case TOK_CHAT_DEEPSEEK: render_deepseek(t, mm, nm, &o, &b); break;
    case TOK_CHAT_GRANITE: render_granite(t, mm, nm, &o, &b); break;
    case TOK_CHAT_TULU: render_tulu(t, mm, nm, &o, &b); break;
    case TOK_CHAT_EXAONE4: render_exaone4(mm, nm, &b); break;
    case TOK_CHAT_GEMMA4: err = render_gemma4(t, mm, nm, &o, &b); break;
    case TOK_CHAT_INST: err = ct_inst_render(t, mm, nm, &o, &b); break;
    case TOK_CHAT_SMOLLM3: err = ct_smollm3_render(t, mm, nm, &o, &b); break;
    default: err = hr_fail(HEARTH_ERR_INVALID_ARG, "chat template: no template chosen"); break;
    }
    if (!err) generation_prompt(t, &o, &b);
    if (!err && b.oom) err = hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory");
    if (!err && !b.p) {
        b.p = malloc(1);
        if (!b.p)
            err = hr_fail(HEARTH_ERR_NOMEM, "chat template: out of memory");
        else
            b.p[0] = '\0';
    }
    free(merged);
    free(owned);
    ct_generic_free(&gen);
    if (err) {
        free(b.p);
        return err;
    }
    *out = b.p;
    *out_len = b.n;
    return HEARTH_OK;
}
