/*
 * api_chat.c - POST /v1/chat/completions: the messages rendered by the chat
 * template (the model's, recognized at start-up, or --chat-template), the
 * text tokenized with the model's special tokens, then api_gen.c.
 *
 * The template prints bos_token where the model's Jinja template does; the
 * tokenizer adds BOS itself when the vocabulary asks, so a rendered prompt
 * that starts with the BOS text loses it here (one BOS, as llama.cpp does).
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* Tokenizes text with special tokens parsed; *ids is malloc'd. */
bool srv_tokenize(srv_server *s, const char *text, size_t len, int32_t **ids, int *n,
                  srv_error *e) {
    size_t count = 0;
    hearth_err err = hearth_tokenize(s->model, text, len, true, true, NULL, 0, &count);
    if (err && err != HEARTH_ERR_INVALID_ARG)
        return srv_fail(e, 500, NULL, NULL, "tokenizing the prompt: %s", hearth_last_error());
    if (count > (size_t)INT32_MAX / 2)
        return srv_fail(e, 400, NULL, "context_length_exceeded", "the prompt is too long");
    int32_t *buf = malloc((count ? count : 1) * sizeof *buf);
    if (!buf) return srv_fail(e, 500, NULL, NULL, "out of memory");
    if (hearth_tokenize(s->model, text, len, true, true, buf, count, &count)) {
        free(buf);
        return srv_fail(e, 500, NULL, NULL, "tokenizing the prompt: %s", hearth_last_error());
    }
    *ids = buf;
    *n = (int)count;
    return true;
}

void srv_handle_chat(srv_exchange *x) {
    srv_server *s = x->srv;
    srv_request r;
    srv_error e;
    if (!srv_parse_request(SRV_CHAT, x->body, x->body_len, &r, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int n = 0;
    tok_chat_msg *msgs = calloc((size_t)r.n_messages, sizeof *msgs);
    bool ok = msgs != NULL || srv_fail(&e, 500, NULL, NULL, "out of memory");
    if (ok && !s->have_template)
        ok = srv_fail(&e, 500, NULL, "chat_template_unsupported", "%s", s->template_error);
    if (ok) {
        for (int i = 0; i < r.n_messages; i++)
            msgs[i] = (tok_chat_msg){r.messages[i].role, r.messages[i].content,
                                     r.messages[i].content_len};
        tok_chat_opts o = {.bos = s->bos_text, .eos = s->eos_text, .add_generation_prompt = true};
        hearth_err err = tok_chat_render(&s->tmpl, msgs, (size_t)r.n_messages, &o, &text, &len);
        if (err == HEARTH_ERR_INVALID_ARG)
            ok = srv_fail(&e, 400, "messages", NULL, "the chat template refused the messages: %s",
                          hearth_last_error());
        else if (err)
            ok = srv_fail(&e, 500, NULL, NULL, "rendering the chat template: %s",
                          hearth_last_error());
    }
    if (ok) {
        const size_t bl = strlen(s->bos_text);
        const size_t skip = bl && len >= bl && !memcmp(text, s->bos_text, bl) ? bl : 0;
        ok = srv_tokenize(s, text + skip, len - skip, &ids, &n, &e);
        if (ok && s->cfg.log_prompts) x->log_prompt = strdup(text);
    }
    if (ok) {
        srv_gateway_route(x, &r, &ids, n); /* the cascade decides who answers */
    } else {
        srv_respond_error(x, &e);
    }
    free(ids);
    free(text);
    free(msgs);
    srv_request_free(&r);
}
