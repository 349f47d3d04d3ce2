/*
 * api_anthropic.c - Anthropic's Messages API on the same port: POST
 * /v1/messages and POST /v1/messages/count_tokens, so that code written
 * against the Anthropic SDKs (and tools built on them) can use the local
 * model, and the cascade behind it, by changing the base URL.
 *
 * A request is translated into the OpenAI chat body it means and parsed by
 * srv_parse_request, as ollama's are (api_ollama.c): system (a string or
 * text blocks) becomes the first message; a user's text blocks its content
 * and its tool_result blocks role "tool" messages before it; an assistant's
 * tool_use blocks its tool_calls (input as the arguments' JSON);
 * max_tokens (required), stop_sequences, temperature, top_p, top_k, stream,
 * tools (input_schema as the function's parameters) and tool_choice (auto,
 * any -> required, tool -> a named function, none; disable_parallel_tool_use)
 * map one to one. The request then goes the way /v1/chat/completions goes
 * (srv_chat_route: template, gateway, ledger) with the Anthropic dialect,
 * which api_gen.c and sse.c write with this file's objects:
 *
 *   {"id":"msg_..","type":"message","role":"assistant","model",
 *    "content":[{"type":"text","text"},{"type":"tool_use","id","name","input"}],
 *    "stop_reason":"end_turn"|"max_tokens"|"stop_sequence"|"tool_use",
 *    "stop_sequence", "usage":{"input_tokens","output_tokens"}}
 *
 * and, streaming, Anthropic's typed events (message_start,
 * content_block_start / _delta / _stop per block, message_delta with the
 * stop reason and output tokens, message_stop). Errors are Anthropic's
 * {"type":"error","error":{"type","message"}}.
 *
 * A reasoning model's <think> block comes back as a thinking block before
 * the text (streamed as thinking_delta events), with an empty signature as
 * llama-server gives it: nothing local can sign it. An Anthropic tier's
 * thinking blocks come back as it sent them (signed: the text with its
 * placeholders, thinking_delta and signature_delta once the block is
 * complete; redacted_thinking with its data), and an assistant turn's
 * thinking and redacted_thinking blocks in a request go to the gateway as
 * the message's thinking_blocks (replayed to an Anthropic tier, first in
 * that turn; an unsigned one, a local model's, is left out). The request's thinking
 * {"type":"enabled","budget_tokens"} turns thinking on with that budget,
 * {"type":"disabled"} off; without it the template's default holds.
 *
 * A user's image blocks with base64 sources become image_url parts (a model
 * with a vision projector; docs/vision.md). Refused with a 400 naming the
 * block: image blocks with URL sources, document blocks, server tools (a
 * "type" other than custom). Accepted and
 * ignored: metadata, service_tier, cache_control on blocks.
 */
#include "request_impl.h"
#include "server.h"
#include "tools.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* ---- the request -------------------------------------------------------------- */

/* The text of a string or of an array of text blocks (joined), into *out
 * (malloc'd); false with e filled naming `name`. */
static bool text_of(const cJSON *v, const char *name, char **out, srv_error *e) {
    if (cJSON_IsString(v))
        return (*out = strdup(v->valuestring)) || srv_fail(e, 500, NULL, NULL, "out of memory");
    if (!cJSON_IsArray(v))
        return srv_fail(e, 400, name, NULL, "'%s' must be a string or an array of text blocks",
                        name);
    gw_buf b = {0};
    int k = 0;
    for (const cJSON *blk = v->child; blk; blk = blk->next, k++) {
        const cJSON *type = srv_req_field(blk, "type"), *text = srv_req_field(blk, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
            gw_buf_free(&b);
            return srv_fail(e, 400, name, NULL, "%s[%d] must be a text block", name, k);
        }
        if (b.len) gw_buf_puts(&b, "\n");
        gw_buf_puts(&b, text->valuestring);
    }
    if (!(*out = gw_buf_take(&b, NULL)) && !(*out = strdup("")))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    return true;
}

/* A user's image block, {"type":"image","source":{"type":"base64",
 * "media_type":"image/png","data":...}}, as an OpenAI image_url part in
 * parts (docs/vision.md); URL sources are refused (the server fetches
 * nothing). */
static bool image_block(const cJSON *blk, const char *name, cJSON *parts, srv_error *e) {
    const cJSON *src = srv_req_field(blk, "source");
    const cJSON *type = src ? srv_req_field(src, "type") : NULL;
    const cJSON *mt = src ? srv_req_field(src, "media_type") : NULL;
    const cJSON *data = src ? srv_req_field(src, "data") : NULL;
    if (cJSON_IsString(type) && strcmp(type->valuestring, "base64") != 0)
        return srv_fail(e, 400, name, NULL,
                        "'%s': only base64 image sources are taken (the server fetches no URLs)",
                        name);
    if (!cJSON_IsString(mt) || strncmp(mt->valuestring, "image/", 6) || !cJSON_IsString(data))
        return srv_fail(e, 400, name, NULL,
                        "'%s' needs a source with type \"base64\", an image media_type and data",
                        name);
    gw_buf url = {0};
    gw_buf_puts(&url, "data:");
    gw_buf_puts(&url, mt->valuestring);
    gw_buf_puts(&url, ";base64,");
    gw_buf_puts(&url, data->valuestring);
    char *u = gw_buf_take(&url, NULL);
    if (!u) return srv_fail(e, 500, NULL, NULL, "out of memory");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "image_url");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "image_url"), "url", u);
    cJSON_AddItemToArray(parts, p);
    free(u);
    return true;
}

/* One message's content blocks into OpenAI messages appended to `msgs`:
 * tool results first (role tool), then the text and calls; a user's
 * message with images becomes text and image_url parts in order. */
static bool translate_blocks(const cJSON *content, bool assistant, int i, cJSON *msgs,
                             srv_error *e) {
    char name[64];
    gw_buf text = {0};
    cJSON *calls = cJSON_CreateArray(), *thinking = cJSON_CreateArray(),
          *parts = cJSON_CreateArray();
    bool ok = true, images = false;
    int k = 0;
    for (const cJSON *blk = content->child; ok && blk; blk = blk->next, k++) {
        snprintf(name, sizeof name, "messages[%d].content[%d]", i, k);
        const cJSON *type = srv_req_field(blk, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        if (!strcmp(t, "text") && cJSON_IsString(srv_req_field(blk, "text"))) {
            gw_buf_puts(&text, srv_req_field(blk, "text")->valuestring);
            cJSON *part = cJSON_CreateObject();
            cJSON_AddStringToObject(part, "type", "text");
            cJSON_AddStringToObject(part, "text", srv_req_field(blk, "text")->valuestring);
            cJSON_AddItemToArray(parts, part);
        } else if (!strcmp(t, "image") && !assistant) {
            ok = image_block(blk, name, parts, e);
            images = true;
        } else if (!strcmp(t, "tool_use") && assistant) {
            const cJSON *id = srv_req_field(blk, "id"), *fn = srv_req_field(blk, "name"),
                        *in = srv_req_field(blk, "input");
            if (!cJSON_IsString(id) || !cJSON_IsString(fn) || (in && !cJSON_IsObject(in))) {
                ok = srv_fail(e, 400, name, NULL,
                              "'%s' must have a string id and name and an object input", name);
                break;
            }
            char *args = in ? cJSON_PrintUnformatted(in) : strdup("{}");
            cJSON *c = cJSON_CreateObject(), *f = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "id", id->valuestring);
            cJSON_AddStringToObject(c, "type", "function");
            cJSON_AddStringToObject(f, "name", fn->valuestring);
            cJSON_AddStringToObject(f, "arguments", args ? args : "{}");
            cJSON_AddItemToObject(c, "function", f);
            cJSON_AddItemToArray(calls, c);
            free(args);
        } else if (!strcmp(t, "tool_result") && !assistant) {
            const cJSON *id = srv_req_field(blk, "tool_use_id"),
                        *body = srv_req_field(blk, "content");
            char *result = NULL;
            if (!cJSON_IsString(id)) {
                ok = srv_fail(e, 400, name, NULL, "'%s' needs a string tool_use_id", name);
                break;
            }
            if (!(ok = body ? text_of(body, name, &result, e) : (result = strdup("")) != NULL))
                break;
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "tool");
            cJSON_AddStringToObject(m, "tool_call_id", id->valuestring);
            cJSON_AddStringToObject(m, "content", result);
            cJSON_AddItemToArray(msgs, m);
            free(result);
        } else if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking")) {
            /* an earlier reply's reasoning: not shown to a local model again,
             * sent back to an Anthropic tier */
            gw_thinking_block b;
            char why[96];
            if (assistant && !gw_thinking_parse(blk, &b, why, sizeof why)) {
                ok = srv_fail(e, 400, name, NULL, "'%s' %s", name, why);
                break;
            }
            if (assistant) {
                free(b.thinking);
                free(b.opaque);
                cJSON_AddItemToArray(thinking, cJSON_Duplicate(blk, true));
            }
        } else {
            ok = srv_fail(e, 400, name, NULL, "'%s' of type '%.40s' is not supported", name, t);
        }
    }
    if (ok && (text.len || images || cJSON_GetArraySize(calls) || cJSON_GetArraySize(thinking) ||
               (!assistant && k == 0))) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", assistant ? "assistant" : "user");
        gw_buf_put(&text, "", 0);
        if (images) {
            cJSON_AddItemToObject(m, "content", parts);
            parts = NULL;
        } else {
            cJSON_AddStringToObject(m, "content", text.data ? text.data : "");
        }
        if (cJSON_GetArraySize(calls)) {
            cJSON_AddItemToObject(m, "tool_calls", calls);
            calls = NULL;
        }
        if (cJSON_GetArraySize(thinking)) { /* LiteLLM's field: signed_thinking.c */
            cJSON_AddItemToObject(m, "thinking_blocks", thinking);
            thinking = NULL;
        }
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON_Delete(calls);
    cJSON_Delete(thinking);
    cJSON_Delete(parts);
    gw_buf_free(&text);
    return ok;
}

static bool translate_messages(const cJSON *root, cJSON *out, srv_error *e) {
    cJSON *msgs = cJSON_AddArrayToObject(out, "messages");
    const cJSON *sys = srv_req_field(root, "system"), *in = srv_req_field(root, "messages");
    if (sys) {
        char *text = NULL;
        if (!text_of(sys, "system", &text, e)) return false;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddItemToArray(msgs, m);
        free(text);
    }
    if (!cJSON_IsArray(in))
        return srv_fail(e, 400, "messages", NULL, "'messages' must be an array");
    int i = 0;
    for (const cJSON *m = in->child; m; m = m->next, i++) {
        char name[48];
        snprintf(name, sizeof name, "messages[%d]", i);
        const cJSON *role = srv_req_field(m, "role"), *content = srv_req_field(m, "content");
        const bool user = cJSON_IsString(role) && !strcmp(role->valuestring, "user");
        if (!user && !(cJSON_IsString(role) && !strcmp(role->valuestring, "assistant")))
            return srv_fail(e, 400, name, NULL, "'%s.role' must be \"user\" or \"assistant\"",
                            name);
        if (cJSON_IsString(content)) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "role", role->valuestring);
            cJSON_AddStringToObject(c, "content", content->valuestring);
            cJSON_AddItemToArray(msgs, c);
        } else if (!cJSON_IsArray(content)) {
            return srv_fail(e, 400, name, NULL,
                            "'%s.content' must be a string or an array of blocks", name);
        } else if (!translate_blocks(content, !user, i, msgs, e)) {
            return false;
        }
    }
    return true;
}

static bool translate_tools(const cJSON *root, cJSON *out, srv_error *e) {
    const cJSON *tools = srv_req_field(root, "tools"), *choice = srv_req_field(root, "tool_choice");
    if (tools) {
        if (!cJSON_IsArray(tools))
            return srv_fail(e, 400, "tools", NULL, "'tools' must be an array");
        cJSON *a = cJSON_AddArrayToObject(out, "tools");
        int k = 0;
        for (const cJSON *t = tools->child; t; t = t->next, k++) {
            const cJSON *type = srv_req_field(t, "type"), *name = srv_req_field(t, "name");
            const cJSON *desc = srv_req_field(t, "description"),
                        *schema = srv_req_field(t, "input_schema");
            if (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "custom")))
                return srv_fail(e, 400, "tools", NULL,
                                "tools[%d]: server tools ('%.40s') are not supported", k,
                                cJSON_IsString(type) ? type->valuestring : "?");
            if (!cJSON_IsString(name) || (schema && !cJSON_IsObject(schema)))
                return srv_fail(e, 400, "tools", NULL,
                                "tools[%d] needs a string name and an object input_schema", k);
            cJSON *f = cJSON_CreateObject(), *w = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "name", name->valuestring);
            if (cJSON_IsString(desc)) cJSON_AddStringToObject(f, "description", desc->valuestring);
            if (schema) cJSON_AddItemToObject(f, "parameters", cJSON_Duplicate(schema, true));
            cJSON_AddStringToObject(w, "type", "function");
            cJSON_AddItemToObject(w, "function", f);
            cJSON_AddItemToArray(a, w);
        }
    }
    if (!choice) return true;
    const cJSON *type = srv_req_field(choice, "type"), *name = srv_req_field(choice, "name");
    const cJSON *serial = srv_req_field(choice, "disable_parallel_tool_use");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    if (!strcmp(t, "auto") || !strcmp(t, "none") || !strcmp(t, "any")) {
        cJSON_AddStringToObject(out, "tool_choice", !strcmp(t, "any") ? "required" : t);
    } else if (!strcmp(t, "tool") && cJSON_IsString(name)) {
        cJSON *c = cJSON_AddObjectToObject(out, "tool_choice");
        cJSON_AddStringToObject(c, "type", "function");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "function"), "name", name->valuestring);
    } else {
        return srv_fail(e, 400, "tool_choice", NULL,
                        "'tool_choice' must be {\"type\": \"auto\" | \"any\" | \"none\"} or "
                        "{\"type\": \"tool\", \"name\": ...}");
    }
    if (cJSON_IsTrue(serial)) cJSON_AddFalseToObject(out, "parallel_tool_calls");
    return true;
}

/* thinking: {"type":"enabled","budget_tokens":N} or {"type":"disabled"}. */
static bool translate_thinking(const cJSON *v, cJSON *out, srv_error *e) {
    if (!v) return true;
    const cJSON *type = cJSON_IsObject(v) ? srv_req_field(v, "type") : NULL;
    const bool on = cJSON_IsString(type) && !strcmp(type->valuestring, "enabled");
    if (!on && !(cJSON_IsString(type) && !strcmp(type->valuestring, "disabled")))
        return srv_fail(e, 400, "thinking", NULL,
                        "'thinking' must be {\"type\": \"enabled\", \"budget_tokens\": N} or "
                        "{\"type\": \"disabled\"}");
    cJSON_AddBoolToObject(cJSON_AddObjectToObject(out, "chat_template_kwargs"), "enable_thinking",
                          on);
    const cJSON *budget = srv_req_field(v, "budget_tokens");
    if (on && budget)
        cJSON_AddItemToObject(out, "thinking_budget_tokens", cJSON_Duplicate(budget, false));
    return true;
}

char *srv_anthropic_translate(const char *body, size_t len, bool count_only, srv_error *e) {
    size_t bad;
    if (!hr_utf8_valid(body, len, &bad)) {
        srv_fail(e, 400, NULL, NULL, "the body is not valid UTF-8 (byte %zu)", bad);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(body, len), *out = cJSON_CreateObject();
    const cJSON *model = srv_req_field(root, "model"), *max = srv_req_field(root, "max_tokens");
    bool ok = out != NULL;
    if (!cJSON_IsObject(root))
        ok = srv_fail(e, 400, NULL, NULL, "the body must be a JSON object");
    else if (!cJSON_IsString(model) || !model->valuestring[0])
        ok = srv_fail(e, 400, "model", NULL, "'model' is required");
    else if (!count_only && !(cJSON_IsNumber(max) && max->valuedouble >= 1))
        ok = srv_fail(e, 400, "max_tokens", NULL, "'max_tokens' is required (a positive integer)");
    if (ok) {
        cJSON_AddStringToObject(out, "model", model->valuestring);
        if (max) cJSON_AddItemToObject(out, "max_tokens", cJSON_Duplicate(max, false));
        static const char *const same[] = {"temperature", "top_p", "top_k", "stream"};
        for (size_t i = 0; i < sizeof same / sizeof *same; i++)
            if (srv_req_field(root, same[i]))
                cJSON_AddItemToObject(out, same[i],
                                      cJSON_Duplicate(srv_req_field(root, same[i]), false));
        const cJSON *stop = srv_req_field(root, "stop_sequences");
        if (stop) cJSON_AddItemToObject(out, "stop", cJSON_Duplicate(stop, true));
        ok = translate_thinking(srv_req_field(root, "thinking"), out, e) &&
             translate_messages(root, out, e) && translate_tools(root, out, e);
    }
    char *json = ok ? cJSON_PrintUnformatted(out) : NULL;
    if (ok && !json) srv_fail(e, 500, NULL, NULL, "out of memory");
    cJSON_Delete(out);
    cJSON_Delete(root);
    return json;
}

/* Parses x's body as an Anthropic request into *r; false when x was answered. */
static bool parse(srv_exchange *x, bool count_only, srv_request *r) {
    srv_error e;
    char *body = srv_anthropic_translate(x->body, x->body_len, count_only, &e);
    return srv_parse_translated(x, body, &e, SRV_DIALECT_ANTHROPIC, r);
}

void srv_handle_anthropic_messages(srv_exchange *x) {
    srv_request r;
    if (parse(x, false, &r)) srv_chat_route(x, &r);
}

void srv_handle_anthropic_count(srv_exchange *x) {
    srv_request r;
    int n = 0;
    if (!parse(x, true, &r) || !srv_chat_count(x, &r, &n)) return;
    char *json = malloc(48);
    if (json) snprintf(json, 48, "{\"input_tokens\":%d}", n);
    srv_respond_json(x, 200, json);
}

/* ---- the answer ---------------------------------------------------------------- */

char *srv_anthropic_error_json(const srv_error *e) {
    cJSON *o = cJSON_CreateObject(), *err = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "error");
    cJSON_AddStringToObject(err, "type",
                            e->status == 503 ? "overloaded_error" : srv_error_type(e->status));
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_AddItemToObject(o, "error", err);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

/* The stop reason of a finished job and, for stop_sequence, the one of
 * stop[0..n_stop) that matched. */
static const char *stop_reason(char *const *stop, int n_stop, const srv_job *j, bool calls,
                               const char **stop_sequence) {
    *stop_sequence = NULL;
    if (calls) return "tool_use";
    if (strcmp(srv_finish_reason(j), "stop")) return "max_tokens";
    const int k = j->result.stop_index;
    if (k >= 0 && k < n_stop) {
        *stop_sequence = stop[k];
        return "stop_sequence";
    }
    return "end_turn";
}

/* A tool_use block; input from the call's arguments, or {}. */
static cJSON *tool_use(const srv_call_out *c, bool with_input) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "tool_use");
    cJSON_AddStringToObject(b, "id", c->id);
    cJSON_AddStringToObject(b, "name", c->name);
    cJSON *in = with_input ? cJSON_Parse(c->arguments) : NULL;
    cJSON_AddItemToObject(b, "input", in ? in : cJSON_CreateObject());
    return b;
}

/* The message object without its stop reason and usage. */
static cJSON *message(const char *id, const char *model) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "type", "message");
    cJSON_AddStringToObject(o, "role", "assistant");
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddArrayToObject(o, "content");
    return o;
}

static void usage(cJSON *o, int input_tokens, int output_tokens) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "input_tokens", input_tokens);
    cJSON_AddNumberToObject(u, "output_tokens", output_tokens);
}

static void message_id(char *out, size_t cap) {
    char call[64];
    srv_tool_call_id(call, sizeof call); /* "call_" + 24 random hex digits */
    snprintf(out, cap, "msg_%s", call + 5);
}

char *srv_anthropic_response_json(const srv_gen *g, const srv_job *j) {
    const srv_request *r = g->req;
    srv_tool_reply t;
    if (!srv_job_reply(r, j, &t)) return NULL;
    const char *text = t.content ? t.content : "";
    const size_t len = t.content ? t.content_len : 0;
    char id[64];
    message_id(id, sizeof id);
    cJSON *o = message(id, srv_asked_model(g));
    cJSON *content = cJSON_GetObjectItemCaseSensitive(o, "content");
    for (int k = 0; k < j->n_thinking; k++) /* an Anthropic tier's, as it sent them */
        cJSON_AddItemToArray(content, gw_thinking_json(&j->thinking[k]));
    if (j->reasoning_len && !j->n_thinking) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "thinking");
        cJSON_AddItemToObject(b, "thinking", srv_json_string(j->reasoning, j->reasoning_len));
        cJSON_AddStringToObject(b, "signature", "");
        cJSON_AddItemToArray(content, b);
    }
    if (len || !t.n_calls) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddItemToObject(b, "text", srv_json_string(text, len));
        cJSON_AddItemToArray(content, b);
    }
    for (int i = 0; i < t.n_calls; i++) cJSON_AddItemToArray(content, tool_use(&t.calls[i], true));
    const char *seq;
    cJSON_AddStringToObject(o, "stop_reason",
                            stop_reason(r->stop, r->n_stop, j, t.n_calls > 0, &seq));
    if (seq)
        cJSON_AddStringToObject(o, "stop_sequence", seq);
    else
        cJSON_AddNullToObject(o, "stop_sequence");
    usage(o, j->result.n_prompt + j->result.n_cached, j->result.n_gen);
    srv_tool_reply_free(&t);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

/* ---- the answer streamed: typed events (srv_anthropic_stream) ------------------- */

typedef struct anth_stream {
    char id[64];
    char *model;
    char *stop[SRV_MAX_STOP]; /* the request's stop strings, for stop_sequence */
    int n_stop;
    int input_tokens;
    int block;        /* the index of the next content block */
    bool block_open;  /* a text or thinking block is open (its start went out) */
    bool thinking;    /* ... and it is the thinking block */
    bool signed_only; /* the reasoning comes in signed blocks only (srv_job.signed_thinking) */
} anth_stream;

static void anth_close(void *p) {
    anth_stream *st = p;
    if (!st) return;
    for (int i = 0; i < st->n_stop; i++) free(st->stop[i]);
    free(st->model);
    free(st);
}

static void *anth_open(const srv_request *r, const char *model, const srv_job *j) {
    anth_stream *st = calloc(1, sizeof *st);
    bool ok = st && (st->model = strdup(model));
    for (int i = 0; ok && i < r->n_stop; i++) {
        ok = (st->stop[i] = strdup(r->stop[i])) != NULL;
        st->n_stop = i + 1;
    }
    if (!ok) {
        anth_close(st);
        return NULL;
    }
    message_id(st->id, sizeof st->id);
    st->input_tokens = j->n_prompt;
    st->signed_only = j->signed_thinking;
    return st;
}

/* An event {"type": type, "index": the current block}. */
static cJSON *block_event(const anth_stream *st, const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "index", st->block);
    return o;
}

/* A delta event of the current block: {"type": type, key: text}. */
static cJSON *delta_event(const anth_stream *st, const char *type, const char *key,
                          const char *text, size_t len) {
    cJSON *o = block_event(st, "content_block_delta"), *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "type", type);
    cJSON_AddItemToObject(d, key, srv_json_string(text, len));
    cJSON_AddItemToObject(o, "delta", d);
    return o;
}

/* Closes the open block (a thinking block after its signature, as the API
 * requires one). */
static void close_block(anth_stream *st, srv_emit_fn emit, void *user) {
    if (!st->block_open) return;
    if (st->thinking) emit(user, delta_event(st, "signature_delta", "signature", "", 0));
    emit(user, block_event(st, "content_block_stop"));
    st->block_open = false;
    st->block++;
}

static void anth_head(void *p, srv_emit_fn emit, void *user) {
    const anth_stream *st = p;
    cJSON *o = cJSON_CreateObject(), *m = message(st->id, st->model);
    cJSON_AddNullToObject(m, "stop_reason");
    cJSON_AddNullToObject(m, "stop_sequence");
    usage(m, st->input_tokens, 0);
    cJSON_AddStringToObject(o, "type", "message_start");
    cJSON_AddItemToObject(o, "message", m);
    emit(user, o);
}

/* Opens a block of the kind ("text" or "thinking") unless one is open. */
static void open_block(anth_stream *st, bool thinking, srv_emit_fn emit, void *user) {
    if (st->block_open && st->thinking == thinking) return;
    close_block(st, emit, user);
    const char *kind = thinking ? "thinking" : "text";
    cJSON *o = block_event(st, "content_block_start"), *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", kind);
    cJSON_AddStringToObject(b, kind, "");
    cJSON_AddItemToObject(o, "content_block", b);
    emit(user, o);
    st->block_open = true;
    st->thinking = thinking;
}

static void anth_text(void *p, const char *text, size_t len, srv_emit_fn emit, void *user) {
    anth_stream *st = p;
    open_block(st, false, emit, user);
    emit(user, delta_event(st, "text_delta", "text", text, len));
}

static void anth_reasoning(void *p, const char *text, size_t len, srv_emit_fn emit, void *user) {
    anth_stream *st = p;
    if (st->signed_only) return; /* its blocks, whole, say it (anth_thinking) */
    open_block(st, true, emit, user);
    emit(user, delta_event(st, "thinking_delta", "thinking", text, len));
}

/* An Anthropic tier's thinking block, whole, as it sent it: a thinking
 * block's text as one thinking_delta and its signature_delta, or a
 * redacted block in its start. */
static void anth_thinking(void *p, const gw_thinking_block *b, srv_emit_fn emit, void *user) {
    anth_stream *st = p;
    close_block(st, emit, user);
    cJSON *o = block_event(st, "content_block_start"), *start = gw_thinking_json(b);
    if (start && !b->redacted) { /* the text and signature come as deltas */
        cJSON_ReplaceItemInObjectCaseSensitive(start, "thinking", cJSON_CreateString(""));
        cJSON_ReplaceItemInObjectCaseSensitive(start, "signature", cJSON_CreateString(""));
    }
    cJSON_AddItemToObject(o, "content_block", start);
    emit(user, o);
    if (!b->redacted) {
        const char *t = b->thinking ? b->thinking : "", *sig = b->opaque ? b->opaque : "";
        emit(user, delta_event(st, "thinking_delta", "thinking", t, strlen(t)));
        emit(user, delta_event(st, "signature_delta", "signature", sig, strlen(sig)));
    }
    emit(user, block_event(st, "content_block_stop"));
    st->block++;
}

/* One call as a tool_use block of its own, its input as one delta. */
static void anth_call(void *p, const srv_call_out *c, srv_emit_fn emit, void *user) {
    anth_stream *st = p;
    close_block(st, emit, user);
    cJSON *o = block_event(st, "content_block_start");
    cJSON_AddItemToObject(o, "content_block", tool_use(c, false));
    emit(user, o);
    o = block_event(st, "content_block_delta");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "type", "input_json_delta");
    cJSON_AddStringToObject(d, "partial_json", c->arguments);
    cJSON_AddItemToObject(o, "delta", d);
    emit(user, o);
    emit(user, block_event(st, "content_block_stop"));
    st->block++;
}

static void anth_end(void *p, const srv_job *j, bool calls, srv_emit_fn emit, void *user) {
    anth_stream *st = p;
    close_block(st, emit, user);
    const char *seq;
    const char *reason = stop_reason(st->stop, st->n_stop, j, calls, &seq);
    cJSON *o = cJSON_CreateObject(), *d = cJSON_CreateObject(), *u = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "message_delta");
    cJSON_AddStringToObject(d, "stop_reason", reason);
    if (seq)
        cJSON_AddStringToObject(d, "stop_sequence", seq);
    else
        cJSON_AddNullToObject(d, "stop_sequence");
    cJSON_AddItemToObject(o, "delta", d);
    cJSON_AddNumberToObject(u, "output_tokens", j->result.n_gen);
    cJSON_AddItemToObject(o, "usage", u);
    emit(user, o);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "message_stop");
    emit(user, o);
}

static void anth_fail(void *p, const srv_error *e, srv_emit_fn emit, void *user) {
    (void)p;
    char *json = srv_anthropic_error_json(e);
    cJSON *o = json ? cJSON_Parse(json) : NULL; /* {"type":"error",...}: an "error" event */
    free(json);
    if (o) emit(user, o);
}

const srv_typed_ops srv_anthropic_stream = {anth_open,      anth_head,  anth_text,
                                            anth_reasoning, anth_call,  anth_end,
                                            anth_fail,      anth_close, anth_thinking};
