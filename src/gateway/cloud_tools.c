/*
 * cloud_tools.c - tools on the remote tiers (see cloud_tools.h): OpenAI's
 * fields passed through, Anthropic's Messages API translated (tools ->
 * {name, description, input_schema}; tool_choice auto/required/named/none ->
 * {"type":"auto"|"any"|"tool"|"none"} with disable_parallel_tool_use for
 * parallel_tool_calls false; assistant tool_calls -> tool_use blocks with
 * the arguments parsed into "input"; role tool -> tool_result blocks in a
 * user turn; an assistant's thinking blocks, as the client sent them back,
 * first in its turn), and the tiers' calls assembled as data (gw_tool_call).
 */
#include "cloud_tools.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* ---- OpenAI ------------------------------------------------------------------ */

bool gw_tools_openai_body(cJSON *o, const gw_chat_tools *t) {
    if (!t) return true;
    if (t->tools) {
        cJSON *tools = cJSON_Parse(t->tools);
        if (!cJSON_IsArray(tools)) {
            cJSON_Delete(tools);
            return false;
        }
        cJSON_AddItemToObject(o, "tools", tools);
    }
    if (t->tool_choice) {
        if (t->named_choice) {
            cJSON *c = cJSON_AddObjectToObject(o, "tool_choice");
            cJSON_AddStringToObject(c, "type", "function");
            cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "function"), "name", t->tool_choice);
        } else {
            cJSON_AddStringToObject(o, "tool_choice", t->tool_choice);
        }
    }
    if (t->parallel_tool_calls >= 0 && t->tools)
        cJSON_AddBoolToObject(o, "parallel_tool_calls", t->parallel_tool_calls != 0);
    return true;
}

bool gw_tools_openai_message(cJSON *m, const gw_chat_tools *t, int i) {
    if (!t || !t->msgs) return true;
    const gw_msg_tools *mt = &t->msgs[i];
    if (mt->tool_call_id) cJSON_AddStringToObject(m, "tool_call_id", mt->tool_call_id);
    if (mt->tool_calls) {
        cJSON *calls = cJSON_Parse(mt->tool_calls);
        if (!cJSON_IsArray(calls)) {
            cJSON_Delete(calls);
            return false;
        }
        cJSON_AddItemToObject(m, "tool_calls", calls);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(c) && !c->valuestring[0])
            cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateNull());
    }
    return true;
}

/* ---- Anthropic ------------------------------------------------------------------ */

static cJSON *anthropic_tools(const char *json) {
    cJSON *in = cJSON_Parse(json), *out = cJSON_CreateArray(), *t;
    bool ok = cJSON_IsArray(in);
    cJSON_ArrayForEach(t, in) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (!cJSON_IsString(name)) {
            ok = false;
            break;
        }
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "name", name->valuestring);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(f, "description");
        if (cJSON_IsString(d)) cJSON_AddStringToObject(a, "description", d->valuestring);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "parameters");
        cJSON *schema = cJSON_IsObject(p) ? cJSON_Duplicate(p, true) : NULL;
        if (!schema) { /* input_schema is required: an object without properties */
            schema = cJSON_CreateObject();
            cJSON_AddStringToObject(schema, "type", "object");
            cJSON_AddObjectToObject(schema, "properties");
        }
        cJSON_AddItemToObject(a, "input_schema", schema);
        cJSON_AddItemToArray(out, a);
    }
    cJSON_Delete(in);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static void anthropic_choice(cJSON *o, const gw_chat_tools *t) {
    if (!t->tool_choice && t->parallel_tool_calls != 0) return;
    cJSON *c = cJSON_AddObjectToObject(o, "tool_choice");
    const char *type = "auto";
    if (t->tool_choice && t->named_choice)
        type = "tool";
    else if (t->tool_choice && !strcmp(t->tool_choice, "required"))
        type = "any";
    else if (t->tool_choice && !strcmp(t->tool_choice, "none"))
        type = "none";
    cJSON_AddStringToObject(c, "type", type);
    if (!strcmp(type, "tool")) cJSON_AddStringToObject(c, "name", t->tool_choice);
    if (t->parallel_tool_calls == 0 && strcmp(type, "none") != 0)
        cJSON_AddBoolToObject(c, "disable_parallel_tool_use", true);
}

static void add_text_block(cJSON *blocks, const char *text) {
    if (!text || !text[0]) return; /* Anthropic refuses empty text blocks */
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "text");
    cJSON_AddStringToObject(b, "text", text);
    cJSON_AddItemToArray(blocks, b);
}

/* An assistant's OpenAI tool_calls as tool_use blocks. */
static bool add_tool_uses(cJSON *blocks, const char *json) {
    cJSON *calls = cJSON_Parse(json), *c;
    bool ok = cJSON_IsArray(calls);
    cJSON_ArrayForEach(c, calls) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        cJSON *input = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
        if (!cJSON_IsString(id) || !cJSON_IsString(name) || !cJSON_IsObject(input)) {
            cJSON_Delete(input);
            ok = false;
            break;
        }
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", id->valuestring);
        cJSON_AddStringToObject(b, "name", name->valuestring);
        cJSON_AddItemToObject(b, "input", input);
        cJSON_AddItemToArray(blocks, b);
    }
    cJSON_Delete(calls);
    return ok;
}

/* Whether a block can go back to Anthropic: redacted, or signed (one
 * without a signature is a local model's, which nothing can verify). */
static bool verifiable(const gw_thinking_block *b) {
    return b->redacted || (b->opaque && b->opaque[0]);
}

bool gw_anthropic_signed(const gw_chat *q, int i) {
    const gw_msg_thinking *m = q->thinking_blocks ? &q->thinking_blocks[i] : NULL;
    for (int k = 0; m && k < m->n; k++)
        if (verifiable(&m->blocks[k])) return true;
    return false;
}

/* Message i's thinking blocks into its turn's content, after the turn's
 * earlier ones (*at of them) and before its text and calls, as Anthropic
 * wants them. False when out of memory. */
static bool add_thinking(cJSON *content, const gw_chat *q, int i, int *at) {
    const gw_msg_thinking *m = q->thinking_blocks ? &q->thinking_blocks[i] : NULL;
    for (int k = 0; m && k < m->n; k++) {
        if (!verifiable(&m->blocks[k])) continue;
        cJSON *b = gw_thinking_json(&m->blocks[k]);
        if (!b || !cJSON_InsertItemInArray(content, (*at)++, b)) {
            cJSON_Delete(b);
            return false;
        }
    }
    return true;
}

/* Whether the turn that starts at message i (the messages of its role
 * that follow) replays thinking blocks: its content is then blocks. */
static bool turn_thinks(const gw_chat *q, int i) {
    const bool assistant = !strcmp(q->messages[i].role, "assistant");
    for (int k = i; assistant && k < q->n_messages && !strcmp(q->messages[k].role, "assistant");
         k++)
        if (gw_anthropic_signed(q, k)) return true;
    return false;
}

/* s after what b holds, "\n\n" between: system messages, and the turns of
 * one role in a body without tools. */
static void join(gw_buf *b, const char *s) {
    if (b->len) gw_buf_puts(b, "\n\n");
    gw_buf_puts(b, s);
}

/* A turn ends: without tools its joined text becomes its content. */
static void end_turn(cJSON *jm, gw_buf *text, bool blocks) {
    if (jm && !blocks) cJSON_AddStringToObject(jm, "content", text->len ? text->data : "");
    text->len = 0;
}

bool gw_anthropic_messages(cJSON *o, const gw_chat *q, const gw_chat_tools *t) {
    bool blocks = t != NULL; /* this turn's content is blocks */
    gw_buf sys = {0}, text = {0};
    cJSON *msgs = cJSON_CreateArray(), *jm = NULL, *content = NULL;
    const char *cur_role = NULL;
    bool ok = true;
    int n_thought = 0; /* thinking blocks at the start of the turn's content */
    for (int i = 0; ok && i < q->n_messages; i++) {
        const gw_message *m = &q->messages[i];
        const gw_msg_tools *mt = t && t->msgs ? &t->msgs[i] : NULL;
        if (!strcmp(m->role, "system")) {
            join(&sys, m->content);
            continue;
        }
        const char *role = !strcmp(m->role, "assistant") ? "assistant" : "user";
        if (!cur_role || strcmp(role, cur_role) != 0) { /* a new turn; same roles join */
            end_turn(jm, &text, blocks);
            blocks = t != NULL || turn_thinks(q, i);
            n_thought = 0;
            jm = cJSON_CreateObject();
            cJSON_AddStringToObject(jm, "role", role);
            if (blocks) content = cJSON_AddArrayToObject(jm, "content");
            cJSON_AddItemToArray(msgs, jm);
            cur_role = role;
        }
        if (blocks) ok = add_thinking(content, q, i, &n_thought);
        if (!ok) break;
        if (!blocks) {
            join(&text, m->content);
        } else if (!strcmp(m->role, "tool")) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "type", "tool_result");
            cJSON_AddStringToObject(b, "tool_use_id",
                                    mt && mt->tool_call_id ? mt->tool_call_id : "");
            cJSON_AddStringToObject(b, "content", m->content);
            cJSON_AddItemToArray(content, b);
        } else {
            add_text_block(content, m->content);
            if (mt && mt->tool_calls) ok = add_tool_uses(content, mt->tool_calls);
        }
    }
    end_turn(jm, &text, blocks);
    if (ok && sys.len) cJSON_AddStringToObject(o, "system", sys.data);
    gw_buf_free(&sys);
    gw_buf_free(&text);
    cJSON_AddItemToObject(o, "messages", msgs);
    if (ok && t && t->tools) {
        cJSON *tools = anthropic_tools(t->tools);
        if (!tools) return false;
        cJSON_AddItemToObject(o, "tools", tools);
        anthropic_choice(o, t);
    }
    return ok;
}

/* ---- answers ---------------------------------------------------------------------- */

void gw_tool_calls_free(gw_tool_call *calls, int n) {
    for (int k = 0; k < n; k++) {
        free(calls[k].id);
        free(calls[k].name);
        free(calls[k].arguments);
    }
    free(calls);
}

static int slot(gw_tool_acc *a, int index) {
    for (int k = 0; k < a->n; k++)
        if (a->calls[k].index == index) return k;
    if (a->n == GW_TOOL_CALLS_MAX) { /* the cap: the call is dropped, flush says so */
        a->dropped = true;
        return -1;
    }
    a->calls[a->n].index = index;
    a->calls[a->n].id = a->calls[a->n].name = NULL;
    a->calls[a->n].args = (gw_buf){.cap_max = 1 << 20};
    return a->n++;
}

/* OpenAI sends the id and the name once, with the first piece: the first is kept. */
static void keep_first(char **field, const char *value) {
    if (!*field && value) *field = strdup(value);
}

void gw_tool_acc_id(gw_tool_acc *a, int index, const char *id) {
    const int k = slot(a, index);
    if (k >= 0) keep_first(&a->calls[k].id, id);
}

void gw_tool_acc_name(gw_tool_acc *a, int index, const char *name) {
    const int k = slot(a, index);
    if (k >= 0) keep_first(&a->calls[k].name, name);
}

void gw_tool_acc_args(gw_tool_acc *a, int index, const char *piece) {
    const int k = slot(a, index);
    if (k >= 0 && piece) gw_buf_puts(&a->calls[k].args, piece);
}

hearth_err gw_tool_acc_flush(gw_tool_acc *a, gw_tool_call **calls, int *n) {
    hearth_err err = HEARTH_OK;
    bool dropped = a->dropped;
    for (int k = 0; !err && k < a->n; k++) {
        if (!a->calls[k].name) continue;
        if (*n >= GW_TOOL_CALLS_MAX) {
            dropped = true;
            break;
        }
        gw_tool_call *nc = realloc(*calls, (size_t)(*n + 1) * sizeof *nc);
        if (!nc) {
            err = hr_fail(HEARTH_ERR_NOMEM, "cloud: out of memory");
            break;
        }
        *calls = nc;
        const gw_buf *args = &a->calls[k].args;
        gw_tool_call c = {strdup(a->calls[k].id ? a->calls[k].id : ""), a->calls[k].name,
                          strdup(args->len ? args->data : "{}")};
        a->calls[k].name = NULL; /* moved */
        if (!c.id || !c.arguments) {
            free(c.id);
            free(c.name);
            free(c.arguments);
            err = hr_fail(HEARTH_ERR_NOMEM, "cloud: out of memory");
            break;
        }
        nc[(*n)++] = c;
    }
    if (!err && dropped)
        err = hr_fail(HEARTH_ERR_UNSUPPORTED,
                      "cloud: the tier sent more than %d tool calls; the rest were dropped",
                      GW_TOOL_CALLS_MAX);
    gw_tool_acc_free(a);
    return err;
}

void gw_tool_acc_free(gw_tool_acc *a) {
    for (int k = 0; k < a->n; k++) {
        free(a->calls[k].id);
        free(a->calls[k].name);
        gw_buf_free(&a->calls[k].args);
    }
    a->n = 0;
    a->dropped = false;
}
