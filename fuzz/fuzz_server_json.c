/*
 * fuzz_server_json.c - the server's request parser on arbitrary bytes: the
 * first byte chooses the endpoint ('c' chat; 'a' Anthropic's messages and
 * 'r' OpenAI's responses, translated into a chat body and then parsed as
 * one; 'l' llama-server's /completion and 'i' its /infill, translated into a
 * completions body; anything else completions), the rest is the body. A body that parses is then
 * rendered by every chat template with its tools and tool calls (the renderers see the same
 * untrusted strings), and each message's content is parsed as a reply that may hold tool calls
 * (every call's arguments must be a JSON object); one that does not must yield an error whose JSON
 * is well-formed UTF-8 with a 400/500 status. Built with -DHEARTH_FUZZ=ON as a libFuzzer target,
 * otherwise replays fuzz/corpus/server_json/.
 */
#include "server/server.h"
#include "server/tools.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The content as a reasoning model's reply, split whole and in pieces of
 * 1 and 3 bytes, opened by the prompt or not: the same parts each way, and
 * never more bytes than went in. */
static void think_split(const char *s, size_t n, bool open, size_t piece, char *r, char *c,
                        size_t *nr, size_t *nc) {
    eng_think t;
    eng_think_init(&t, open);
    eng_think_out o = {.reason = r, .content = c};
    for (size_t i = 0; i < n; i += piece)
        eng_think_feed(&t, s + i, n - i < piece ? n - i : piece, &o);
    eng_think_finish(&t, &o);
    if (o.n_reason + o.n_content > n) abort();
    *nr = o.n_reason;
    *nc = o.n_content;
}

static void think_check(const char *s, size_t n) {
    char *buf = malloc(6 * (n + ENG_THINK_HOLD));
    if (!buf) return;
    for (int open = 0; open < 2; open++) {
        size_t nr[3], nc[3];
        static const size_t pieces[3] = {0, 1, 3}; /* 0: all at once */
        for (int k = 0; k < 3; k++) {
            char *r = buf + (size_t)k * 2 * (n + ENG_THINK_HOLD), *c = r + n + ENG_THINK_HOLD;
            const size_t piece = pieces[k] ? pieces[k] : n ? n : 1;
            think_split(s, n, open, piece, r, c, &nr[k], &nc[k]);
            if (k && (nr[k] != nr[0] || nc[k] != nc[0] || memcmp(r, buf, nr[0]) ||
                      memcmp(c, buf + n + ENG_THINK_HOLD, nc[0])))
                abort();
        }
    }
    free(buf);
}

static void render_all(const srv_request *r) {
    if (r->n_messages <= 0) return;
    tok_chat_msg *m = calloc((size_t)r->n_messages, sizeof *m);
    tok_chat_msg_tools *mt = calloc((size_t)r->n_messages, sizeof *mt);
    tok_chat_tool_call *calls =
        calloc((size_t)r->n_messages * SRV_MAX_TOOL_CALLS + 1, sizeof *calls);
    if (!m || !mt || !calls) {
        free(m);
        free(mt);
        free(calls);
        return;
    }
    size_t k = 0;
    for (int i = 0; i < r->n_messages; i++) {
        m[i] =
            (tok_chat_msg){r->messages[i].role, r->messages[i].content, r->messages[i].content_len};
        mt[i] = (tok_chat_msg_tools){calls + k, r->messages[i].n_tool_calls,
                                     r->messages[i].tool_call_id};
        for (int c = 0; c < r->messages[i].n_tool_calls; c++, k++)
            calls[k] = (tok_chat_tool_call){r->messages[i].tool_calls[c].id,
                                            r->messages[i].tool_calls[c].name,
                                            r->messages[i].tool_calls[c].arguments};
        think_check(r->messages[i].content, r->messages[i].content_len);
        srv_tool_reply t; /* the content as a model's reply */
        if (r->kind == SRV_CHAT &&
            srv_tools_parse(r, r->messages[i].content, r->messages[i].content_len, true, &t)) {
            for (int c = 0; c < t.n_calls; c++) {
                cJSON *a = cJSON_Parse(t.calls[c].arguments);
                if (!cJSON_IsObject(a)) abort();
                cJSON_Delete(a);
            }
            srv_tool_reply_free(&t);
        }
    }
    char names[512];
    snprintf(names, sizeof names, "%s", tok_chat_names());
    for (char *save = NULL, *n = strtok_r(names, "|", &save); n; n = strtok_r(NULL, "|", &save)) {
        tok_chat_template t;
        if (tok_chat_named(n, &t)) abort();
        tok_chat_opts o = {.bos = "<s>",
                           .eos = "</s>",
                           .add_generation_prompt = true,
                           .now = 1,
                           .tools = r->tools,
                           .msg_tools = mt,
                           .no_thinking = r->think == 0};
        char *out = NULL;
        size_t len = 0;
        if (tok_chat_render(&t, m, (size_t)r->n_messages, &o, &out, &len) == HEARTH_OK) {
            if (strlen(out) > len) abort();
            free(out);
        }
    }
    free(m);
    free(mt);
    free(calls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const srv_kind kind = strchr("car", data[0]) && data[0] ? SRV_CHAT : SRV_COMPLETION;
    srv_request r;
    srv_error e;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *translated = NULL;
    if (data[0] == 'a' || data[0] == 'r') {
        translated = data[0] == 'a' ? srv_anthropic_translate(body, len, false, &e)
                                    : srv_responses_translate(body, len, &e);
        body = translated;
        len = translated ? strlen(translated) : 0;
    }
    int repeat_last_n = 0;
    const bool parsed =
        data[0] == 'l' || data[0] == 'i'
            ? srv_llama_parse(body, len, data[0] == 'i', &r, &repeat_last_n, NULL, &e)
            : body && srv_parse_request(kind, body, len, &r, &e);
    if (parsed && r.dialect == SRV_DIALECT_LLAMA && repeat_last_n < -1) abort();
    free(translated);
    if (parsed) {
        for (int i = 0; i < r.n_messages; i++)
            if (!hr_utf8_valid(r.messages[i].content, r.messages[i].content_len, NULL)) abort();
        if (r.n_stop > SRV_MAX_STOP || r.top_logprobs < 0 || r.top_logprobs > SRV_MAX_LOGPROBS)
            abort();
        render_all(&r);
        srv_request_free(&r);
        return 0;
    }
    if (e.status != 400 && e.status != 500) abort();
    char *json = srv_error_json(&e);
    if (json) {
        if (!hr_utf8_valid(json, strlen(json), NULL)) abort();
        cJSON *back = cJSON_Parse(json);
        if (!back) abort();
        cJSON_Delete(back);
        free(json);
    }
    return 0;
}
