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
 */
#include "chat_impl.h"

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
};

bool ct_inst_named(const char *name, tok_chat_template *out) {
    for (size_t i = 0; i < sizeof VARIANTS / sizeof VARIANTS[0]; i++) {
        if (strcmp(name, VARIANTS[i].name) != 0) continue;
        *out = (tok_chat_template){.family = TOK_CHAT_INST,
                                   .name = VARIANTS[i].name,
                                   .inst = VARIANTS[i].v,
                                   .bos = true,
                                   .merge_system = VARIANTS[i].v == TOK_INST_LLAMA2};
        return true;
    }
    return false;
}

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

hearth_err ct_inst_detect(const char *s, tok_chat_template *out) {
    const char *name;
    if (has(s, "[SYSTEM_PROMPT]")) {
        /* v7: '[SYSTEM_PROMPT] ' + message['content']; the v7-tekken templates
         * (Mistral Small 3, Ministral 3) print default system prompts, dates
         * and thinking chunks of their own */
        if (!has(s, "'[SYSTEM_PROMPT] ' + "))
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "chat template: Mistral's v7-tekken templates (Mistral Small 3, "
                           "Ministral 3) are not supported; choose one with --chat-template %s",
                           tok_chat_names());
        name = "mistral-v7";
    } else if (has(s, "[AVAILABLE_TOOLS]")) {
        /* v3-tekken: "[INST]" + message["content"]; v3: "[INST] " + ... */
        name = has(s, "\"[INST]\"") ? "mistral-v3-tekken" : "mistral-v3";
    } else if (has(s, "' [INST] ' + system_message")) {
        name = "mistral-v1";
    } else if (has(s, "<<SYS>>")) {
        name = "llama2-sys";
    } else {
        name = "llama2";
    }
    ct_inst_named(name, out);
    out->bos = has(s, "bos_token");
    return HEARTH_OK;
}

/* Llama 2's user turn: bos + '[INST] ' + (the <<SYS>> block of the first
 * turn + content).strip() + ' [/INST]'. */
static void llama2_sys_user(const tok_chat_template *t, ct_buf *b, const ct_msg *sys, ct_span c,
                            const tok_chat_opts *o) {
    if (t->bos) buf_puts(b, o->bos);
    buf_puts(b, "[INST] ");
    if (!sys) {
        buf_span(b, ct_trim(c));
    } else {
        ct_buf text = {0};
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

static void user_turn(const tok_chat_template *t, ct_buf *b, const ct_msg *sys, ct_span c,
                      const tok_chat_opts *o) {
    switch (t->inst) {
    case TOK_INST_LLAMA2_SYS: llama2_sys_user(t, b, sys, c, o); return;
    case TOK_INST_LLAMA2: buf_puts(b, "[INST] "); break;
    case TOK_INST_V1: buf_puts(b, " [INST] "); break;
    case TOK_INST_V3_TEKKEN: buf_puts(b, "[INST]"); break;
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

static void assistant_turn(const tok_chat_template *t, ct_buf *b, ct_span c,
                           const tok_chat_opts *o) {
    switch (t->inst) {
    case TOK_INST_LLAMA2:
    case TOK_INST_V3_TEKKEN: buf_span(b, c); break;
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

hearth_err ct_inst_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                          const tok_chat_opts *o, ct_buf *b) {
    const bool v7 = t->inst == TOK_INST_V7;
    /* n is 0 when a merged system message was the only one */
    const ct_msg *sys = !v7 && n && m[0].role == TOK_CHAT_SYSTEM ? &m[0] : NULL;
    const size_t i0 = sys ? 1 : 0;
    const bool mistral = t->inst != TOK_INST_LLAMA2 && t->inst != TOK_INST_LLAMA2_SYS;
    if (!v7) {
        for (size_t i = i0; i < n; i++)
            if ((m[i].role == TOK_CHAT_USER) != ((i - i0) % 2 == 0))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               mistral ? "After the optional system message, conversation roles "
                                         "must alternate user/assistant/user/assistant/..."
                                       : "Conversation roles must alternate "
                                         "user/assistant/user/assistant/...");
    }
    if (t->bos && t->inst != TOK_INST_LLAMA2_SYS) buf_puts(b, o->bos);
    for (size_t i = i0; i < n; i++) {
        switch (m[i].role) {
        case TOK_CHAT_USER: {
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
