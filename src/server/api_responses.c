/*
 * api_responses.c - OpenAI's Responses API on the same port: POST
 * /v1/responses and POST /v1/responses/input_tokens, for clients written
 * against it (the OpenAI SDKs' client.responses, agent frameworks).
 *
 * Stateless, as llama-server's: a request is translated into the chat
 * request it means and goes the way /v1/chat/completions goes
 * (srv_chat_route); previous_response_id is refused with a 400 (nothing is
 * stored: send the conversation as input). instructions becomes the system
 * message; input is a string or a list of items: messages (user, system,
 * developer with input_text parts; assistant with output_text parts),
 * function_call items (the assistant's tool_calls), function_call_output
 * items (tool messages); reasoning items are dropped. max_output_tokens,
 * temperature, top_p, stream, tools (type function), tool_choice,
 * parallel_tool_calls and text.format (json_object, json_schema) map one to
 * one.
 *
 * The answer is a response object whose output holds a message item (one
 * output_text part) and a function_call item per call; status "incomplete"
 * with incomplete_details.reason "max_output_tokens" when the limit cut it.
 * Streamed, it is OpenAI's typed events ("event: TYPE" before each data
 * line, every event with its sequence_number): response.created,
 * response.in_progress, then per output item response.output_item.added,
 * for the message response.content_part.added, response.output_text.delta
 * per piece, response.output_text.done and response.content_part.done, for
 * a call response.function_call_arguments.delta and .done, then
 * response.output_item.done; last response.completed (or
 * response.incomplete) holding the whole response. A failure is
 * response.failed (srv_responses_stream, for sse.c). The non-streamed
 * answer is built by the same code.
 *
 * A reasoning model's <think> block is a reasoning item before the message
 * ({"type":"reasoning","summary":[],"content":[{"type":"reasoning_text"}]},
 * as OpenAI's open-weight models give it), streamed as
 * response.reasoning_text.delta / .done; usage counts its tokens in
 * output_tokens_details.reasoning_tokens. The request's reasoning.effort
 * "none" turns thinking off.
 */
#include "request_impl.h"
#include "server.h"
#include "tools.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the request -------------------------------------------------------------- */

/* A part into `parts` as Chat Completions has it: text, or an input_image
 * ({"image_url": URL}) as an image_url part (docs/vision.md). */
static void add_part(cJSON *parts, const char *type, const char *key, const char *value) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", type);
    if (!strcmp(type, "text"))
        cJSON_AddStringToObject(p, key, value);
    else
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "image_url"), key, value);
    cJSON_AddItemToArray(parts, p);
}

/* The text of a content: a string, or parts of the allowed type (joined);
 * with `parts` (a user's message), also every part into it, images
 * included (*images set when there is one). */
static bool parts_text(const cJSON *content, const char *allowed, const char *name, gw_buf *out,
                       cJSON *parts, bool *images, srv_error *e) {
    if (cJSON_IsString(content)) return gw_buf_puts(out, content->valuestring) == HEARTH_OK;
    if (!cJSON_IsArray(content))
        return srv_fail(e, 400, "input", NULL, "'%s.content' must be a string or an array", name);
    int k = 0;
    for (const cJSON *p = content->child; p; p = p->next, k++) {
        const cJSON *type = srv_req_field(p, "type"), *text = srv_req_field(p, "text");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        const cJSON *url = srv_req_field(p, "image_url");
        if (parts && !strcmp(t, "input_image") && cJSON_IsString(url)) {
            add_part(parts, "image_url", "url", url->valuestring);
            *images = true;
            continue;
        }
        const bool ok_type = !strcmp(t, allowed) || !strcmp(t, "input_text");
        if (!ok_type || !cJSON_IsString(text))
            return srv_fail(e, 400, "input", NULL,
                            "'%s.content[%d]' of type '%.40s' is not supported%s", name, k, t,
                            !strcmp(t, "input_image") ? ": images come as image_url strings" : "");
        gw_buf_puts(out, text->valuestring);
        if (parts) add_part(parts, "text", "text", text->valuestring);
    }
    return true;
}

/* The assistant message at the end of msgs, made when the last one is not. */
static cJSON *assistant_tail(cJSON *msgs) {
    /* cJSON keeps the last element as the first one's prev: O(1), where
     * counting would make a long input quadratic */
    cJSON *last = msgs->child ? msgs->child->prev : NULL;
    const cJSON *role = last ? cJSON_GetObjectItemCaseSensitive(last, "role") : NULL;
    if (cJSON_IsString(role) && !strcmp(role->valuestring, "assistant")) return last;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "content", "");
    cJSON_AddItemToArray(msgs, m);
    return m;
}

/* One input item into msgs. */
static bool translate_item(const cJSON *item, int i, cJSON *msgs, srv_error *e) {
    char name[32];
    snprintf(name, sizeof name, "input[%d]", i);
    const cJSON *type = srv_req_field(item, "type"), *role = srv_req_field(item, "role");
    const char *t = cJSON_IsString(type) ? type->valuestring : "message";
    if (!strcmp(t, "message") && cJSON_IsString(role)) {
        const char *r = role->valuestring;
        const bool assistant = !strcmp(r, "assistant");
        if (!assistant && strcmp(r, "user") && strcmp(r, "system") && strcmp(r, "developer"))
            return srv_fail(e, 400, "input", NULL,
                            "'%s.role' must be user, system, developer or assistant", name);
        gw_buf text = {0};
        cJSON *parts = strcmp(r, "user") ? NULL : cJSON_CreateArray();
        bool images = false;
        const bool ok =
            parts_text(srv_req_field(item, "content"), assistant ? "output_text" : "input_text",
                       name, &text, parts, &images, e);
        gw_buf_put(&text, "", 0);
        if (ok) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", r);
            if (images) {
                cJSON_AddItemToObject(m, "content", parts);
                parts = NULL;
            } else {
                cJSON_AddStringToObject(m, "content", text.data);
            }
            cJSON_AddItemToArray(msgs, m);
        }
        cJSON_Delete(parts);
        gw_buf_free(&text);
        return ok;
    }
    if (!strcmp(t, "function_call")) {
        const cJSON *id = srv_req_field(item, "call_id"), *fn = srv_req_field(item, "name");
        const cJSON *args = srv_req_field(item, "arguments");
        if (!cJSON_IsString(id) || !cJSON_IsString(fn) || !cJSON_IsString(args))
            return srv_fail(e, 400, "input", NULL,
                            "'%s' (function_call) needs string call_id, name and arguments", name);
        cJSON *m = assistant_tail(msgs), *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (!calls) calls = cJSON_AddArrayToObject(m, "tool_calls");
        cJSON *c = cJSON_CreateObject(), *f = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", id->valuestring);
        cJSON_AddStringToObject(c, "type", "function");
        cJSON_AddStringToObject(f, "name", fn->valuestring);
        cJSON_AddStringToObject(f, "arguments", args->valuestring);
        cJSON_AddItemToObject(c, "function", f);
        cJSON_AddItemToArray(calls, c);
        return true;
    }
    if (!strcmp(t, "function_call_output")) {
        const cJSON *id = srv_req_field(item, "call_id");
        gw_buf text = {0};
        if (!cJSON_IsString(id))
            return srv_fail(e, 400, "input", NULL, "'%s' (function_call_output) needs a call_id",
                            name);
        const bool ok =
            parts_text(srv_req_field(item, "output"), "output_text", name, &text, NULL, NULL, e);
        gw_buf_put(&text, "", 0);
        if (ok) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "tool");
            cJSON_AddStringToObject(m, "tool_call_id", id->valuestring);
            cJSON_AddStringToObject(m, "content", text.data);
            cJSON_AddItemToArray(msgs, m);
        }
        gw_buf_free(&text);
        return ok;
    }
    if (!strcmp(t, "reasoning")) return true; /* an earlier reply's reasoning: dropped */
    return srv_fail(e, 400, "input", NULL, "'%s' of type '%.40s' is not supported", name, t);
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
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "function"))
                return srv_fail(e, 400, "tools", NULL,
                                "tools[%d]: only function tools are supported (not '%.40s')", k,
                                cJSON_IsString(type) ? type->valuestring : "?");
            if (!cJSON_IsString(name))
                return srv_fail(e, 400, "tools", NULL, "tools[%d] needs a name", k);
            cJSON *f = cJSON_CreateObject(), *w = cJSON_CreateObject();
            static const char *const keep[] = {"name", "description", "parameters", "strict"};
            for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
                if (srv_req_field(t, keep[i]))
                    cJSON_AddItemToObject(f, keep[i],
                                          cJSON_Duplicate(srv_req_field(t, keep[i]), true));
            cJSON_AddStringToObject(w, "type", "function");
            cJSON_AddItemToObject(w, "function", f);
            cJSON_AddItemToArray(a, w);
        }
    }
    if (cJSON_IsString(choice)) {
        cJSON_AddStringToObject(out, "tool_choice", choice->valuestring);
    } else if (choice) {
        const cJSON *type = srv_req_field(choice, "type"), *name = srv_req_field(choice, "name");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") || !cJSON_IsString(name))
            return srv_fail(e, 400, "tool_choice", NULL,
                            "'tool_choice' must be auto, none, required or {\"type\": "
                            "\"function\", \"name\": ...}");
        cJSON *c = cJSON_AddObjectToObject(out, "tool_choice");
        cJSON_AddStringToObject(c, "type", "function");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "function"), "name", name->valuestring);
    }
    return true;
}

/* reasoning.effort: "none" turns a reasoning model's thinking off (as the
 * chat API's reasoning_effort); the other efforts change nothing here. */
static bool translate_reasoning(const cJSON *root, cJSON *out, srv_error *e) {
    const cJSON *r = srv_req_field(root, "reasoning"), *effort = srv_req_field(r, "effort");
    if (r && !cJSON_IsObject(r))
        return srv_fail(e, 400, "reasoning", NULL, "'reasoning' must be an object");
    if (effort && !cJSON_IsString(effort))
        return srv_fail(e, 400, "reasoning.effort", NULL, "'reasoning.effort' must be a string");
    if (effort) cJSON_AddStringToObject(out, "reasoning_effort", effort->valuestring);
    return true;
}

/* text.format -> response_format. */
static bool translate_format(const cJSON *root, cJSON *out, srv_error *e) {
    const cJSON *fmt = srv_req_field(srv_req_field(root, "text"), "format");
    const cJSON *type = srv_req_field(fmt, "type");
    if (!fmt) return true;
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    if (!strcmp(t, "text")) return true;
    cJSON *rf = cJSON_AddObjectToObject(out, "response_format");
    if (!strcmp(t, "json_object")) {
        cJSON_AddStringToObject(rf, "type", "json_object");
        return true;
    }
    if (strcmp(t, "json_schema"))
        return srv_fail(e, 400, "text.format", NULL,
                        "'text.format.type' must be text, json_object or json_schema");
    cJSON_AddStringToObject(rf, "type", "json_schema");
    cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
    static const char *const keep[] = {"name", "schema", "strict"};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        if (srv_req_field(fmt, keep[i]))
            cJSON_AddItemToObject(js, keep[i], cJSON_Duplicate(srv_req_field(fmt, keep[i]), true));
    return true;
}

char *srv_responses_translate(const char *body, size_t len, srv_error *e) {
    size_t bad;
    if (!hr_utf8_valid(body, len, &bad)) {
        srv_fail(e, 400, NULL, NULL, "the body is not valid UTF-8 (byte %zu)", bad);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(body, len), *out = cJSON_CreateObject();
    const cJSON *input = srv_req_field(root, "input"),
                *prev = srv_req_field(root, "previous_response_id");
    const cJSON *instr = srv_req_field(root, "instructions");
    bool ok = out != NULL;
    if (!cJSON_IsObject(root))
        ok = srv_fail(e, 400, NULL, NULL, "the body must be a JSON object");
    else if (cJSON_IsString(prev) && prev->valuestring[0])
        ok = srv_fail(e, 400, "previous_response_id", NULL,
                      "'previous_response_id' is not supported: Hearth stores no responses, so "
                      "send the whole conversation as input");
    else if (!input)
        ok = srv_fail(e, 400, "input", NULL, "'input' is required");
    else if (instr && !cJSON_IsString(instr))
        ok = srv_fail(e, 400, "instructions", NULL, "'instructions' must be a string");
    if (ok) {
        if (srv_req_field(root, "model"))
            cJSON_AddItemToObject(out, "model",
                                  cJSON_Duplicate(srv_req_field(root, "model"), false));
        if (srv_req_field(root, "max_output_tokens"))
            cJSON_AddItemToObject(out, "max_tokens",
                                  cJSON_Duplicate(srv_req_field(root, "max_output_tokens"), false));
        static const char *const same[] = {"temperature", "top_p", "stream", "parallel_tool_calls"};
        for (size_t i = 0; i < sizeof same / sizeof *same; i++)
            if (srv_req_field(root, same[i]))
                cJSON_AddItemToObject(out, same[i],
                                      cJSON_Duplicate(srv_req_field(root, same[i]), false));
        cJSON *msgs = cJSON_AddArrayToObject(out, "messages");
        if (instr) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "system");
            cJSON_AddStringToObject(m, "content", instr->valuestring);
            cJSON_AddItemToArray(msgs, m);
        }
        if (cJSON_IsString(input)) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "user");
            cJSON_AddStringToObject(m, "content", input->valuestring);
            cJSON_AddItemToArray(msgs, m);
        } else if (!cJSON_IsArray(input)) {
            ok = srv_fail(e, 400, "input", NULL, "'input' must be a string or an array of items");
        } else {
            int i = 0;
            for (const cJSON *it = input->child; ok && it; it = it->next, i++)
                ok = cJSON_IsObject(it)
                         ? translate_item(it, i, msgs, e)
                         : srv_fail(e, 400, "input", NULL, "input[%d] must be an object", i);
        }
        ok = ok && translate_tools(root, out, e) && translate_format(root, out, e) &&
             translate_reasoning(root, out, e);
    }
    char *json = ok ? cJSON_PrintUnformatted(out) : NULL;
    if (ok && !json) srv_fail(e, 500, NULL, NULL, "out of memory");
    cJSON_Delete(out);
    cJSON_Delete(root);
    return json;
}

/* Parses x's body as a Responses request into *r; false when x was answered. */
static bool parse(srv_exchange *x, srv_request *r) {
    srv_error e;
    char *body = srv_responses_translate(x->body, x->body_len, &e);
    return srv_parse_translated(x, body, &e, SRV_DIALECT_RESPONSES, r);
}

void srv_handle_responses(srv_exchange *x) {
    srv_request r;
    if (parse(x, &r)) srv_chat_route(x, &r);
}

void srv_handle_responses_tokens(srv_exchange *x) {
    srv_request r;
    int n = 0;
    if (parse(x, &r) && srv_chat_count(x, &r, &n)) srv_respond_input_tokens(x, n);
}

/* ---- the answer: a response object, whole or as events ------------------------- */

typedef struct resp_stream {
    char id[64], msg_id[64];
    char *model;
    int64_t created;
    /* from the request, echoed in the response object */
    int max_tokens;
    double temperature, top_p;
    bool parallel;
    cJSON *tools, *tool_choice; /* in the Responses API's shapes */
    /* the output so far */
    cJSON *items;     /* the finished output items */
    gw_buf text;      /* the message's text */
    bool msg_open;    /* its item was announced */
    char rs_id[64];   /* the reasoning item's id */
    gw_buf reasoning; /* its text */
    bool rs_open;     /* its item was announced */
    int seq;          /* the next sequence_number */
} resp_stream;

static void resp_close(void *p);

/* The request's tools as the Responses API shows them: each function flat,
 * {"type": "function", "name", "description", "parameters", "strict"}
 * (the request holds them in the chat API's nested shape). */
static cJSON *tools_echo(const srv_request *r) {
    cJSON *chat = r->tools ? cJSON_Parse(r->tools) : NULL, *out = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, chat) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        cJSON *flat = cJSON_CreateObject();
        cJSON_AddStringToObject(flat, "type", "function");
        static const char *const keys[] = {"name", "description", "parameters", "strict"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, keys[k]);
            if (v) cJSON_AddItemToObject(flat, keys[k], cJSON_Duplicate(v, true));
        }
        cJSON_AddItemToArray(out, flat);
    }
    cJSON_Delete(chat);
    return out;
}

static resp_stream *resp_new(const srv_request *r, const char *model) {
    resp_stream *rs = calloc(1, sizeof *rs);
    if (!rs) return NULL;
    char hex[64];
    srv_tool_call_id(hex, sizeof hex); /* "call_" + 24 random hex digits */
    snprintf(rs->id, sizeof rs->id, "resp_%s", hex + 5);
    srv_tool_call_id(hex, sizeof hex);
    snprintf(rs->msg_id, sizeof rs->msg_id, "msg_%s", hex + 5);
    srv_tool_call_id(hex, sizeof hex);
    snprintf(rs->rs_id, sizeof rs->rs_id, "rs_%s", hex + 5);
    rs->model = strdup(model ? model : "");
    rs->items = cJSON_CreateArray();
    rs->created = (int64_t)time(NULL);
    rs->max_tokens = r->max_tokens;
    rs->temperature = isnan(r->given_temperature) ? 1.0 : r->given_temperature;
    rs->top_p = isnan(r->given_top_p) ? 1.0 : r->given_top_p;
    rs->parallel = r->parallel_tool_calls != 0;
    rs->tools = tools_echo(r);
    rs->tool_choice = r->tool_choice == SRV_TOOL_NAMED
                          ? cJSON_CreateObject()
                          : cJSON_CreateString(r->tool_choice == SRV_TOOL_NONE       ? "none"
                                               : r->tool_choice == SRV_TOOL_REQUIRED ? "required"
                                                                                     : "auto");
    if (r->tool_choice == SRV_TOOL_NAMED && rs->tool_choice) {
        cJSON_AddStringToObject(rs->tool_choice, "type", "function");
        cJSON_AddStringToObject(rs->tool_choice, "name", r->tool_choice_name);
    }
    if (!rs->model || !rs->items || !rs->tools || !rs->tool_choice) {
        resp_close(rs);
        return NULL;
    }
    return rs;
}

static void *resp_open(const srv_request *r, const char *model, const srv_job *j) {
    (void)j;
    return resp_new(r, model);
}

static void resp_close(void *p) {
    resp_stream *rs = p;
    if (!rs) return;
    free(rs->model);
    cJSON_Delete(rs->items);
    cJSON_Delete(rs->tools);
    cJSON_Delete(rs->tool_choice);
    gw_buf_free(&rs->text);
    gw_buf_free(&rs->reasoning);
    free(rs);
}

/* An event {"type", "sequence_number"}. */
static cJSON *event(resp_stream *rs, const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "sequence_number", rs->seq++);
    return o;
}

/* The response object with the output so far and status. */
static cJSON *response(const resp_stream *rs, const char *status, const char *incomplete,
                       const srv_job *j) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", rs->id);
    cJSON_AddStringToObject(o, "object", "response");
    cJSON_AddNumberToObject(o, "created_at", (double)rs->created);
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddNullToObject(o, "error");
    if (incomplete)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "incomplete_details"), "reason",
                                incomplete);
    else
        cJSON_AddNullToObject(o, "incomplete_details");
    cJSON_AddNullToObject(o, "instructions");
    if (rs->max_tokens > 0)
        cJSON_AddNumberToObject(o, "max_output_tokens", rs->max_tokens);
    else
        cJSON_AddNullToObject(o, "max_output_tokens");
    cJSON_AddStringToObject(o, "model", rs->model);
    cJSON_AddItemToObject(o, "output", cJSON_Duplicate(rs->items, true));
    cJSON_AddBoolToObject(o, "parallel_tool_calls", rs->parallel);
    cJSON_AddNumberToObject(o, "temperature", rs->temperature);
    cJSON_AddNumberToObject(o, "top_p", rs->top_p);
    cJSON_AddItemToObject(o, "tool_choice", cJSON_Duplicate(rs->tool_choice, true));
    cJSON_AddItemToObject(o, "tools", cJSON_Duplicate(rs->tools, true));
    cJSON_AddBoolToObject(o, "store", false);
    cJSON_AddObjectToObject(o, "metadata");
    if (j) {
        const int in = j->result.n_prompt + j->result.n_cached, out = j->result.n_gen;
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", in);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens",
                                j->result.n_cached);
        cJSON_AddNumberToObject(u, "output_tokens", out);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"),
                                "reasoning_tokens", srv_job_reasoning_tokens(j));
        cJSON_AddNumberToObject(u, "total_tokens", in + out);
    } else {
        cJSON_AddNullToObject(o, "usage");
    }
    return o;
}

static cJSON *message_item(const resp_stream *rs, const char *status, const char *text,
                           size_t len) {
    cJSON *it = cJSON_CreateObject(), *content = cJSON_CreateArray();
    cJSON_AddStringToObject(it, "type", "message");
    cJSON_AddStringToObject(it, "id", rs->msg_id);
    cJSON_AddStringToObject(it, "status", status);
    cJSON_AddStringToObject(it, "role", "assistant");
    if (text) {
        cJSON *part = cJSON_CreateObject();
        cJSON_AddStringToObject(part, "type", "output_text");
        cJSON_AddItemToObject(part, "text", srv_json_string(text, len));
        cJSON_AddArrayToObject(part, "annotations");
        cJSON_AddItemToArray(content, part);
    }
    cJSON_AddItemToObject(it, "content", content);
    return it;
}

static cJSON *call_item(const srv_call_out *c, const char *status, bool with_arguments) {
    cJSON *it = cJSON_CreateObject();
    char id[160];
    snprintf(id, sizeof id, "fc_%s", !strncmp(c->id, "call_", 5) ? c->id + 5 : c->id);
    cJSON_AddStringToObject(it, "type", "function_call");
    cJSON_AddStringToObject(it, "id", id);
    cJSON_AddStringToObject(it, "call_id", c->id);
    cJSON_AddStringToObject(it, "name", c->name);
    cJSON_AddStringToObject(it, "arguments", with_arguments ? c->arguments : "");
    cJSON_AddStringToObject(it, "status", status);
    return it;
}

static void resp_head(void *p, srv_emit_fn emit, void *user) {
    resp_stream *rs = p;
    cJSON *o = event(rs, "response.created");
    cJSON_AddItemToObject(o, "response", response(rs, "in_progress", NULL, NULL));
    emit(user, o);
    o = event(rs, "response.in_progress");
    cJSON_AddItemToObject(o, "response", response(rs, "in_progress", NULL, NULL));
    emit(user, o);
}

/* An item's place in the output: the events' output_index. */
static int output_index(const resp_stream *rs) { return cJSON_GetArraySize(rs->items); }

static cJSON *reasoning_item(const resp_stream *rs, const char *status, const char *text,
                             size_t len) {
    cJSON *it = cJSON_CreateObject(), *content = cJSON_CreateArray();
    cJSON_AddStringToObject(it, "type", "reasoning");
    cJSON_AddStringToObject(it, "id", rs->rs_id);
    cJSON_AddStringToObject(it, "status", status);
    cJSON_AddArrayToObject(it, "summary");
    if (text) {
        cJSON *part = cJSON_CreateObject();
        cJSON_AddStringToObject(part, "type", "reasoning_text");
        cJSON_AddItemToObject(part, "text", srv_json_string(text, len));
        cJSON_AddItemToArray(content, part);
    }
    cJSON_AddItemToObject(it, "content", content);
    return it;
}

/* A reasoning_text event of the reasoning item: key (delta or text) = text. */
static cJSON *reasoning_event(resp_stream *rs, const char *type, const char *key, const char *text,
                              size_t len) {
    cJSON *o = event(rs, type);
    cJSON_AddStringToObject(o, "item_id", rs->rs_id);
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddNumberToObject(o, "content_index", 0);
    cJSON_AddItemToObject(o, key, srv_json_string(text, len));
    return o;
}

static void resp_reasoning(void *p, const char *text, size_t len, srv_emit_fn emit, void *user) {
    resp_stream *rs = p;
    if (!rs->rs_open) {
        cJSON *o = event(rs, "response.output_item.added");
        cJSON_AddNumberToObject(o, "output_index", output_index(rs));
        cJSON_AddItemToObject(o, "item", reasoning_item(rs, "in_progress", NULL, 0));
        emit(user, o);
        rs->rs_open = true;
    }
    gw_buf_put(&rs->reasoning, text, len);
    emit(user, reasoning_event(rs, "response.reasoning_text.delta", "delta", text, len));
}

/* Closes the reasoning item when it was announced. */
static void close_reasoning(resp_stream *rs, srv_emit_fn emit, void *user) {
    if (!rs->rs_open) return;
    gw_buf_put(&rs->reasoning, "", 0);
    const char *text = rs->reasoning.data;
    const size_t len = rs->reasoning.len;
    emit(user, reasoning_event(rs, "response.reasoning_text.done", "text", text, len));
    cJSON *item = reasoning_item(rs, "completed", text, len);
    cJSON *o = event(rs, "response.output_item.done");
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddItemToObject(o, "item", cJSON_Duplicate(item, true));
    emit(user, o);
    cJSON_AddItemToArray(rs->items, item);
    rs->rs_open = false;
}

static void resp_text(void *p, const char *text, size_t len, srv_emit_fn emit, void *user) {
    resp_stream *rs = p;
    close_reasoning(rs, emit, user);
    cJSON *o;
    if (!rs->msg_open) {
        o = event(rs, "response.output_item.added");
        cJSON_AddNumberToObject(o, "output_index", output_index(rs));
        cJSON_AddItemToObject(o, "item", message_item(rs, "in_progress", NULL, 0));
        emit(user, o);
        o = event(rs, "response.content_part.added");
        cJSON_AddStringToObject(o, "item_id", rs->msg_id);
        cJSON_AddNumberToObject(o, "output_index", output_index(rs));
        cJSON_AddNumberToObject(o, "content_index", 0);
        cJSON *part = cJSON_AddObjectToObject(o, "part");
        cJSON_AddStringToObject(part, "type", "output_text");
        cJSON_AddStringToObject(part, "text", "");
        cJSON_AddArrayToObject(part, "annotations");
        emit(user, o);
        rs->msg_open = true;
    }
    gw_buf_put(&rs->text, text, len);
    o = event(rs, "response.output_text.delta");
    cJSON_AddStringToObject(o, "item_id", rs->msg_id);
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddNumberToObject(o, "content_index", 0);
    cJSON_AddItemToObject(o, "delta", srv_json_string(text, len));
    emit(user, o);
}

/* Closes the message item (its done events when it was announced); status:
 * the item's ("incomplete" when the reply was cut). */
static void close_message(resp_stream *rs, const char *status, srv_emit_fn emit, void *user) {
    if (!rs->msg_open) return;
    gw_buf_put(&rs->text, "", 0);
    const char *text = rs->text.data ? rs->text.data : "";
    const size_t len = rs->text.len;
    cJSON *o = event(rs, "response.output_text.done");
    cJSON_AddStringToObject(o, "item_id", rs->msg_id);
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddNumberToObject(o, "content_index", 0);
    cJSON_AddItemToObject(o, "text", srv_json_string(text, len));
    emit(user, o);
    cJSON *item = message_item(rs, status, text, len);
    o = event(rs, "response.content_part.done");
    cJSON_AddStringToObject(o, "item_id", rs->msg_id);
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddNumberToObject(o, "content_index", 0);
    cJSON_AddItemToObject(
        o, "part",
        cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItem(item, "content"), 0), true));
    emit(user, o);
    o = event(rs, "response.output_item.done");
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddItemToObject(o, "item", cJSON_Duplicate(item, true));
    emit(user, o);
    cJSON_AddItemToArray(rs->items, item);
    rs->msg_open = false;
}

static void resp_call(void *p, const srv_call_out *c, srv_emit_fn emit, void *user) {
    resp_stream *rs = p;
    close_reasoning(rs, emit, user);
    close_message(rs, "completed", emit, user);
    cJSON *item = call_item(c, "completed", true);
    const char *item_id = cJSON_GetObjectItem(item, "id")->valuestring;
    cJSON *o = event(rs, "response.output_item.added");
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddItemToObject(o, "item", call_item(c, "in_progress", false));
    emit(user, o);
    o = event(rs, "response.function_call_arguments.delta");
    cJSON_AddStringToObject(o, "item_id", item_id);
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddStringToObject(o, "delta", c->arguments);
    emit(user, o);
    o = event(rs, "response.function_call_arguments.done");
    cJSON_AddStringToObject(o, "item_id", item_id);
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddStringToObject(o, "arguments", c->arguments);
    emit(user, o);
    o = event(rs, "response.output_item.done");
    cJSON_AddNumberToObject(o, "output_index", output_index(rs));
    cJSON_AddItemToObject(o, "item", cJSON_Duplicate(item, true));
    emit(user, o);
    cJSON_AddItemToArray(rs->items, item);
}

/* The response's status for a finished job: incomplete when cut. */
static const char *incomplete_reason(const srv_job *j, bool calls) {
    return !calls && strcmp(srv_finish_reason(j), "stop") ? "max_output_tokens" : NULL;
}

static void resp_end(void *p, const srv_job *j, bool calls, srv_emit_fn emit, void *user) {
    resp_stream *rs = p;
    const char *why = incomplete_reason(j, calls);
    close_reasoning(rs, emit, user);
    close_message(rs, why ? "incomplete" : "completed", emit, user);
    cJSON *o = event(rs, why ? "response.incomplete" : "response.completed");
    cJSON_AddItemToObject(o, "response", response(rs, why ? "incomplete" : "completed", why, j));
    emit(user, o);
}

static void resp_fail(void *p, const srv_error *e, srv_emit_fn emit, void *user) {
    resp_stream *rs = p;
    cJSON *o = event(rs, "response.failed"), *r = response(rs, "failed", NULL, NULL);
    cJSON *err = cJSON_CreateObject();
    cJSON_AddStringToObject(err, "code", e->code ? e->code : "server_error");
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_ReplaceItemInObjectCaseSensitive(r, "error", err);
    cJSON_AddItemToObject(o, "response", r);
    emit(user, o);
}

/* Collects events into nothing: the whole answer is built by the same steps. */
static void drop(void *user, cJSON *event) {
    (void)user;
    cJSON_Delete(event);
}

char *srv_responses_response_json(const srv_gen *g, const srv_job *j) {
    const srv_request *r = g->req;
    srv_tool_reply t;
    if (!srv_job_reply(r, j, &t)) return NULL;
    const char *text = t.content ? t.content : "";
    const size_t len = t.content ? t.content_len : 0;
    resp_stream *rs = resp_new(r, srv_asked_model(g));
    char *json = NULL;
    if (rs) {
        if (j->reasoning_len) resp_reasoning(rs, j->reasoning, j->reasoning_len, drop, NULL);
        close_reasoning(rs, drop, NULL);
        if (len || !t.n_calls) resp_text(rs, text, len, drop, NULL);
        for (int i = 0; i < t.n_calls; i++) resp_call(rs, &t.calls[i], drop, NULL);
        const char *why = incomplete_reason(j, t.n_calls > 0);
        close_message(rs, why ? "incomplete" : "completed", drop, NULL);
        cJSON *o = response(rs, why ? "incomplete" : "completed", why, j);
        json = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    resp_close(rs);
    srv_tool_reply_free(&t);
    return json;
}

const srv_typed_ops srv_responses_stream = {resp_open,      resp_head,  resp_text,
                                            resp_reasoning, resp_call,  resp_end,
                                            resp_fail,      resp_close, NULL};
