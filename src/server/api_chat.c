/*
 * api_chat.c - POST /v1/chat/completions: the messages rendered by the chat
 * template (the model's, recognized at start-up, or --chat-template), the
 * text tokenized with the model's special tokens, then api_gen.c.
 *
 * Tools go to the template with the messages (their calls and results);
 * tool_choice "none" leaves the tools out of the prompt (the history's
 * calls and results stay), so the model is not offered them. tool_choice
 * "required" or a named function (tools_constrain.c): the assistant turn
 * opens with the family's call prefix and the output is constrained to one
 * call; x-hearth-tool-constraint says whether every allowed function's
 * arguments were constrained by its schema ("full") or some only to an
 * object ("partial").
 *
 * A request with "rag" gets its retrieved context (api_rag.c) once parsed,
 * before the prompt is rendered.
 *
 * The template prints bos_token where the model's Jinja template does; the
 * tokenizer adds BOS itself when the vocabulary asks, so a rendered prompt
 * that starts with the BOS text loses it here (one BOS, as llama.cpp does).
 */
#include "server.h"
#include "tools.h"

#include "engine/chat.h"

#include <microhttpd.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Tokenizes text with special tokens parsed; *ids is malloc'd. */
bool srv_tokenize(const srv_model *m, const char *text, size_t len, int32_t **ids, int *n,
                  srv_error *e) {
    size_t count = 0;
    hearth_err err = hearth_tokenize(m->model, text, len, true, true, NULL, 0, &count);
    if (err && err != HEARTH_ERR_INVALID_ARG)
        return srv_fail(e, 500, NULL, NULL, "tokenizing the prompt: %s", hearth_last_error());
    if (count > (size_t)INT32_MAX / 2)
        return srv_fail(e, 400, NULL, "context_length_exceeded", "the prompt is too long");
    int32_t *buf = malloc((count ? count : 1) * sizeof *buf);
    if (!buf) return srv_fail(e, 500, NULL, NULL, "out of memory");
    if (hearth_tokenize(m->model, text, len, true, true, buf, count, &count)) {
        free(buf);
        return srv_fail(e, 500, NULL, NULL, "tokenizing the prompt: %s", hearth_last_error());
    }
    *ids = buf;
    *n = (int)count;
    return true;
}

bool srv_pin_local(srv_exchange *x, const srv_request *r, const char *param, const char *what,
                   srv_error *e) {
    const gw_config *c = x->srv->gw ? gw_gateway_config(x->srv->gw) : NULL;
    if ((x->tier_header[0] && strcmp(x->tier_header, "local")) ||
        (c && r->model && gw_config_tier(c, r->model) > 0))
        return srv_fail(e, 400, param, NULL,
                        "'%s' (%s) is answered by the local model only; ask for model "
                        "\"local\" or leave the tier to the server",
                        param, what);
    snprintf(x->tier_header, sizeof x->tier_header, "local");
    return true;
}

bool srv_tokenize_infill(srv_exchange *x, const srv_model *m, const srv_request *r,
                         const hearth_infill *in, const char *param, int32_t **ids, int *n,
                         srv_error *e) {
    if (!srv_pin_local(x, r, param, "fill in the middle", e)) return false;
    /* one pass with room for a token a byte (plus the FIM and repository
     * tokens); a second only when the tokenizer says it needs more */
    size_t cap = in->prefix_len + in->suffix_len + in->prompt_len + 64, count = 0;
    for (int i = 0; i < in->n_extra; i++)
        cap += strlen(in->extra[i].text) +
               (in->extra[i].filename ? strlen(in->extra[i].filename) : 3) + 24;
    int32_t *buf = NULL;
    hearth_err err;
    for (;;) { /* the tokenizer is deterministic: a second pass fits */
        int32_t *nb = cap <= (size_t)INT32_MAX / 2 ? realloc(buf, cap * sizeof *buf) : NULL;
        if (!nb) {
            free(buf);
            return cap > (size_t)INT32_MAX / 2
                       ? srv_fail(e, 400, NULL, "context_length_exceeded", "the prompt is too long")
                       : srv_fail(e, 500, NULL, NULL, "out of memory");
        }
        buf = nb;
        err = hearth_tokenize_infill(m->model, in, buf, cap, &count);
        if (err != HEARTH_ERR_INVALID_ARG || count <= cap) break;
        cap = count; /* it did not fit: the count it needs */
    }
    if (err) {
        free(buf);
        if (err == HEARTH_ERR_UNSUPPORTED)
            return srv_fail(e, 400, param, NULL, "'%s': %s", param, hearth_last_error());
        return srv_fail(e, 500, NULL, NULL, "tokenizing the prompt: %s", hearth_last_error());
    }
    *ids = buf;
    *n = (int)count;
    return true;
}

bool srv_tokenize_fim(srv_exchange *x, const srv_model *m, const srv_request *r, int32_t **ids,
                      int *n, srv_error *e) {
    const hearth_infill in = {.prefix = r->prompt,
                              .prefix_len = r->prompt_len,
                              .suffix = r->suffix,
                              .suffix_len = r->suffix_len};
    return srv_tokenize_infill(x, m, r, &in, "suffix", ids, n, e);
}

/* The history's tool calls as the template takes them: one array for all
 * messages (*calls, malloc'd), each message's slice in mt[i]. */
static bool chat_tool_calls(const srv_request *r, tok_chat_msg_tools *mt,
                            tok_chat_tool_call **calls, srv_error *e) {
    size_t total = 0;
    for (int i = 0; i < r->n_messages; i++) total += (size_t)r->messages[i].n_tool_calls;
    if (total && !(*calls = calloc(total, sizeof **calls)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    size_t k = 0;
    for (int i = 0; i < r->n_messages; i++) {
        const srv_message *m = &r->messages[i];
        mt[i] = (tok_chat_msg_tools){.calls = m->n_tool_calls ? *calls + k : NULL,
                                     .n_calls = m->n_tool_calls,
                                     .tool_call_id = m->tool_call_id};
        for (int c = 0; c < m->n_tool_calls; c++, k++) {
            assert(*calls); /* counted in total */
            (*calls)[k] = (tok_chat_tool_call){m->tool_calls[c].id, m->tool_calls[c].name,
                                               m->tool_calls[c].arguments};
        }
    }
    return true;
}

/* A forced call: the assistant turn opens with the family's call prefix, so
 * the output (constrained to one call object) starts inside the call. */
static bool open_call(char **text, size_t *len, tok_chat_tools family, srv_error *e) {
    const char *prefix = srv_tools_call_prefix(family);
    const size_t n = strlen(prefix);
    char *t = realloc(*text, *len + n + 1);
    if (!t) return srv_fail(e, 500, NULL, NULL, "out of memory");
    memcpy(t + *len, prefix, n + 1);
    *text = t;
    *len += n;
    return true;
}

/* A chat with images: its text tokenized around their markers, each image
 * a run of ids from its bytes' hash (hearth_tokenize_media). */
static bool tokenize_media(const srv_model *m, const srv_request *r, const char *text, size_t len,
                           int32_t **ids, int *n, srv_error *e) {
    if (!m->vision)
        return srv_fail(e, 400, "messages", NULL,
                        "model '%s' takes no images: start the server with --mmproj (or give its "
                        "entry an \"mmproj\")",
                        m->id);
    uint64_t hashes[SRV_MAX_IMAGES];
    for (int i = 0; i < r->n_images; i++)
        hashes[i] = hearth_media_hash(r->images[i].data, r->images[i].len);
    size_t count = 0;
    hearth_err err = hearth_tokenize_media(m->model, m->vision, text, len, true, true, hashes,
                                           r->n_images, NULL, 0, &count);
    if (err && count == 0) return srv_fail(e, 400, "messages", NULL, "%s", hearth_last_error());
    if (count > (size_t)INT32_MAX / 2)
        return srv_fail(e, 400, NULL, "context_length_exceeded", "the prompt is too long");
    int32_t *buf = malloc((count ? count : 1) * sizeof *buf);
    if (!buf) return srv_fail(e, 500, NULL, NULL, "out of memory");
    if (hearth_tokenize_media(m->model, m->vision, text, len, true, true, hashes, r->n_images, buf,
                              count, &count)) {
        free(buf);
        return srv_fail(e, 400, "messages", NULL, "%s", hearth_last_error());
    }
    *ids = buf;
    *n = (int)count;
    return true;
}

bool srv_chat_prompt(const srv_model *m, srv_request *r, int32_t **ids, int *n, char **text_out,
                     srv_error *e) {
    char *text = NULL;
    size_t len = 0;
    /* the model's own system message (--models-file) when the chat has none */
    const bool sys = m->system && (r->n_messages == 0 || r->messages[0].role != TOK_CHAT_SYSTEM);
    const int n_msgs = r->n_messages + sys;
    tok_chat_msg *msgs = calloc((size_t)n_msgs, sizeof *msgs);
    tok_chat_msg_tools *mt = calloc((size_t)n_msgs, sizeof *mt);
    tok_chat_tool_call *calls = NULL;
    bool ok = (msgs && mt) || srv_fail(e, 500, NULL, NULL, "out of memory");
    if (ok) ok = chat_tool_calls(r, mt + sys, &calls, e);
    if (ok && !m->have_template)
        ok = srv_fail(e, 500, NULL, "chat_template_unsupported", "%s", m->template_error);
    if (ok) ok = srv_tools_constrain(r, m->tmpl.tools, e);
    if (ok) {
        if (sys) msgs[0] = (tok_chat_msg){TOK_CHAT_SYSTEM, m->system, strlen(m->system)};
        for (int i = 0; i < r->n_messages; i++)
            msgs[sys + i] = (tok_chat_msg){r->messages[i].role, r->messages[i].content,
                                           r->messages[i].content_len};
        tok_chat_opts o = {.bos = m->bos_text,
                           .eos = m->eos_text,
                           .add_generation_prompt = true,
                           .tools = r->tool_choice == SRV_TOOL_NONE ? NULL : r->tools,
                           .msg_tools = mt,
                           .no_thinking = srv_thinking_off(m, r)};
        hearth_err err = tok_chat_render(&m->tmpl, msgs, (size_t)n_msgs, &o, &text, &len);
        if (err == HEARTH_ERR_INVALID_ARG)
            ok = srv_fail(e, 400, "messages", NULL, "the chat template refused the messages: %s",
                          hearth_last_error());
        else if (err)
            ok = srv_fail(e, 500, NULL, NULL, "rendering the chat template: %s",
                          hearth_last_error());
        if (ok && r->tool_schema) ok = open_call(&text, &len, m->tmpl.tools, e);
    }
    int budget;
    if (ok) ok = srv_think_budget(m, r, &budget, e);
    if (ok) {
        const size_t skip = eng_chat_bos_skip(text, len, m->bos_text);
        ok = r->n_images ? tokenize_media(m, r, text + skip, len - skip, ids, n, e)
                         : srv_tokenize(m, text + skip, len - skip, ids, n, e);
    }
    if (ok && text_out) {
        *text_out = text;
        text = NULL;
    }
    free(text);
    free(msgs);
    free(mt);
    free(calls);
    return ok;
}

bool srv_chat_images(srv_exchange *x, const srv_model *m, srv_request *r, srv_error *e) {
    return !r->n_images ||
           (srv_pin_local(x, r, "messages", "images", e) && srv_images_encode(m, r, e));
}

void srv_chat_route(srv_exchange *x, srv_request *r) {
    srv_server *s = x->srv;
    srv_error e;
    const srv_model *m = srv_model_use(x, r->model);
    if (!m || !srv_rag_augment(x, r)) { /* retrieval, when the request asks */
        srv_request_free(r);
        return;
    }
    int32_t *ids = NULL;
    int n = 0;
    if (srv_request_check_model(r, m->model, m->id, &e) &&
        srv_chat_prompt(m, r, &ids, &n, s->cfg.log_prompts ? &x->log_prompt : NULL, &e) &&
        srv_chat_images(x, m, r, &e)) {
        const bool forced = r->tool_schema != NULL, partial = r->tool_schema_partial;
        srv_gateway_route(x, r, &ids, n); /* the cascade decides who answers */
        /* the constraint binds the local model only: no header when a remote
         * tier answered (x-hearth-route names the tier that did) */
        const char *route =
            x->response ? MHD_get_response_header(x->response, "x-hearth-route") : NULL;
        if (forced && x->status == 200 && route && !strcmp(route, "local"))
            MHD_add_response_header(x->response, "x-hearth-tool-constraint",
                                    partial ? "partial" : "full");
    } else {
        srv_respond_error(x, &e);
    }
    free(ids);
    srv_request_free(r);
}

bool srv_parse_translated(srv_exchange *x, char *body, srv_error *e, srv_dialect d,
                          srv_request *r) {
    const bool ok = body && srv_parse_request(SRV_CHAT, body, strlen(body), r, e);
    free(body);
    if (!ok) {
        srv_respond_error(x, e);
        return false;
    }
    r->dialect = d;
    r->t0_ms = x->t0_ms;
    return true;
}

bool srv_chat_count(srv_exchange *x, srv_request *r, int *n) {
    srv_error e;
    int32_t *ids = NULL;
    const srv_model *m = srv_model_use(x, r->model);
    const bool ok = m && srv_chat_prompt(m, r, &ids, n, NULL, &e);
    if (m && !ok) srv_respond_error(x, &e);
    free(ids);
    srv_request_free(r);
    return ok;
}

void srv_handle_chat_tokens(srv_exchange *x) {
    srv_request r;
    srv_error e;
    int n = 0;
    if (!srv_parse_request(SRV_CHAT, x->body, x->body_len, &r, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    if (srv_chat_count(x, &r, &n)) srv_respond_input_tokens(x, n);
}

void srv_respond_input_tokens(srv_exchange *x, int n) {
    char *json = malloc(80);
    if (json) snprintf(json, 80, "{\"object\":\"response.input_tokens\",\"input_tokens\":%d}", n);
    srv_respond_json(x, 200, json);
}

void srv_handle_chat(srv_exchange *x) {
    srv_request r;
    srv_error e;
    if (!srv_parse_request(SRV_CHAT, x->body, x->body_len, &r, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    srv_chat_route(x, &r);
}
