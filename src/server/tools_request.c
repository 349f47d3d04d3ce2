/*
 * tools_request.c - the request side of tool calling: "tools" (functions
 * with a name, a description and a JSON-schema "parameters" object),
 * "tool_choice" ("none", "auto", "required" or {"type":"function",
 * "function":{"name":...}}), "parallel_tool_calls", messages of role "tool"
 * (tool_call_id, content) and assistant messages carrying "tool_calls"
 * (content may then be null). Every malformed field is a 400 naming it, in
 * request.c's style. The legacy "functions"/"function_call" fields and role
 * "function" are refused with a pointer to their replacements.
 */
#include "request_impl.h"
#include "tools.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* OpenAI's rule for function names: a-z, A-Z, 0-9, '_' and '-', 1 to 64. */
static bool name_ok(const char *s) {
    const size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool parse_tool(const cJSON *t, int i, srv_request *r, srv_error *e) {
    char name[96];
    snprintf(name, sizeof name, "tools[%d]", i);
    if (!cJSON_IsObject(t)) return srv_req_bad_type(e, name, "an object");
    const cJSON *type = srv_req_field(t, "type");
    snprintf(name, sizeof name, "tools[%d].type", i);
    if (!type || !cJSON_IsString(type)) return srv_req_bad_type(e, name, "a string");
    if (strcmp(type->valuestring, "function") != 0)
        return srv_fail(e, 400, name, NULL, "'%s' must be 'function' (got '%.32s')", name,
                        type->valuestring);
    const cJSON *f = srv_req_field(t, "function");
    snprintf(name, sizeof name, "tools[%d].function", i);
    if (!f || !cJSON_IsObject(f)) return srv_req_bad_type(e, name, "an object");
    const cJSON *fn = srv_req_field(f, "name");
    snprintf(name, sizeof name, "tools[%d].function.name", i);
    if (!fn || !cJSON_IsString(fn)) return srv_req_bad_type(e, name, "a string");
    if (!name_ok(fn->valuestring))
        return srv_fail(e, 400, name, NULL,
                        "'%s' must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'", name);
    for (int k = 0; k < r->n_tools; k++)
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): tool_names[0..n_tools) are set
        if (!strcmp(r->tool_names[k], fn->valuestring))
            return srv_fail(e, 400, name, NULL, "'%s': the function '%s' is declared twice", name,
                            fn->valuestring);
    const cJSON *v = srv_req_field(f, "description");
    snprintf(name, sizeof name, "tools[%d].function.description", i);
    if (v && !cJSON_IsString(v)) return srv_req_bad_type(e, name, "a string");
    v = srv_req_field(f, "parameters");
    snprintf(name, sizeof name, "tools[%d].function.parameters", i);
    if (v && !cJSON_IsObject(v)) return srv_req_bad_type(e, name, "an object (a JSON schema)");
    v = srv_req_field(f, "strict");
    snprintf(name, sizeof name, "tools[%d].function.strict", i);
    if (v && !cJSON_IsBool(v)) return srv_req_bad_type(e, name, "a boolean");
    snprintf(name, sizeof name, "tools[%d].function.name", i);
    if (!srv_req_dup_string(e, fn, name, &r->tool_names[r->n_tools], NULL)) return false;
    r->n_tools++;
    return true;
}

static bool parse_tool_choice(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *v = srv_req_field(root, "tool_choice");
    if (!v) return true;
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!strcmp(s, "none"))
            r->tool_choice = SRV_TOOL_NONE;
        else if (!strcmp(s, "auto"))
            r->tool_choice = SRV_TOOL_AUTO;
        else if (!strcmp(s, "required"))
            r->tool_choice = SRV_TOOL_REQUIRED;
        else
            return srv_fail(e, 400, "tool_choice", NULL,
                            "'tool_choice' must be none, auto, required or an object naming a "
                            "function");
    } else if (cJSON_IsObject(v)) {
        const cJSON *type = srv_req_field(v, "type");
        if (!type || !cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)
            return srv_req_bad_type(e, "tool_choice.type", "'function'");
        const cJSON *f = srv_req_field(v, "function");
        const cJSON *n = f && cJSON_IsObject(f) ? srv_req_field(f, "name") : NULL;
        if (!n || !cJSON_IsString(n))
            return srv_req_bad_type(e, "tool_choice.function.name", "a string");
        int k = 0;
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): as in the loop above
        while (k < r->n_tools && strcmp(r->tool_names[k], n->valuestring) != 0) k++;
        if (k == r->n_tools)
            return srv_fail(e, 400, "tool_choice.function.name", NULL,
                            "'tool_choice.function.name': no function '%.64s' in 'tools'",
                            n->valuestring);
        r->tool_choice = SRV_TOOL_NAMED;
        if (!srv_req_dup_string(e, n, "tool_choice.function.name", &r->tool_choice_name, NULL))
            return false;
    } else {
        return srv_req_bad_type(e, "tool_choice", "a string or an object");
    }
    if (!r->tools && r->tool_choice == SRV_TOOL_REQUIRED)
        return srv_fail(e, 400, "tool_choice", NULL,
                        "'tool_choice' 'required' needs a non-empty 'tools'");
    return true;
}

bool srv_tools_parse_request(const cJSON *root, srv_request *r, srv_error *e) {
    r->parallel_tool_calls = -1;
    const cJSON *v = srv_req_field(root, "tools");
    if (v) {
        if (!cJSON_IsArray(v)) return srv_req_bad_type(e, "tools", "an array");
        const int n = cJSON_GetArraySize(v);
        if (n > SRV_MAX_TOOLS)
            return srv_fail(e, 400, "tools", NULL, "'tools' may hold at most %d functions",
                            SRV_MAX_TOOLS);
        if (n > 0) {
            if (!(r->tool_names = calloc((size_t)n, sizeof *r->tool_names)))
                return srv_fail(e, 500, NULL, NULL, "out of memory");
            int i = 0;
            for (const cJSON *t = v->child; t; t = t->next, i++)
                if (!parse_tool(t, i, r, e)) return false;
            if (!(r->tools = cJSON_PrintUnformatted(v)))
                return srv_fail(e, 500, NULL, NULL, "out of memory");
        }
    }
    if (!parse_tool_choice(root, r, e)) return false;
    if ((v = srv_req_field(root, "parallel_tool_calls"))) {
        if (!cJSON_IsBool(v)) return srv_req_bad_type(e, "parallel_tool_calls", "a boolean");
        r->parallel_tool_calls = cJSON_IsTrue(v);
    }
    if ((v = srv_req_field(root, "functions")) && (!cJSON_IsArray(v) || v->child))
        return srv_fail(e, 400, "functions", NULL,
                        "'functions' (deprecated by OpenAI) is not supported: use 'tools'");
    if (srv_req_field(root, "function_call"))
        return srv_fail(e, 400, "function_call", NULL,
                        "'function_call' (deprecated by OpenAI) is not supported: use "
                        "'tool_choice'");
    /* A forced call is enforced by a constraint on the output (tools_constrain.c):
     * there is no second one to give a response format. */
    if (srv_tools_forced(r) && r->sampling.constraint != HEARTH_CONSTRAINT_NONE)
        return srv_fail(e, 400, "response_format", NULL,
                        "'response_format' json_object or json_schema cannot be combined with "
                        "'tool_choice' required or a named function (the reply is a call)");
    return true;
}

/* A JSON text that parses as an object (what a call's arguments must be). */
static bool json_object_text(const char *s) {
    cJSON *j = cJSON_Parse(s);
    const bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

static bool parse_call(const cJSON *c, int i, int k, srv_tool_call *out, srv_error *e) {
    char name[128];
    snprintf(name, sizeof name, "messages[%d].tool_calls[%d]", i, k);
    if (!cJSON_IsObject(c)) return srv_req_bad_type(e, name, "an object");
    const cJSON *id = srv_req_field(c, "id"), *type = srv_req_field(c, "type"),
                *f = srv_req_field(c, "function");
    snprintf(name, sizeof name, "messages[%d].tool_calls[%d].id", i, k);
    if (!id || !cJSON_IsString(id)) return srv_req_bad_type(e, name, "a string");
    snprintf(name, sizeof name, "messages[%d].tool_calls[%d].type", i, k);
    if (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0))
        return srv_req_bad_type(e, name, "'function'");
    snprintf(name, sizeof name, "messages[%d].tool_calls[%d].function", i, k);
    if (!f || !cJSON_IsObject(f)) return srv_req_bad_type(e, name, "an object");
    const cJSON *fn = srv_req_field(f, "name"), *args = srv_req_field(f, "arguments");
    snprintf(name, sizeof name, "messages[%d].tool_calls[%d].function.name", i, k);
    if (!fn || !cJSON_IsString(fn)) return srv_req_bad_type(e, name, "a string");
    if (!name_ok(fn->valuestring))
        return srv_fail(e, 400, name, NULL,
                        "'%s' must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'", name);
    snprintf(name, sizeof name, "messages[%d].tool_calls[%d].function.arguments", i, k);
    if (!args || !cJSON_IsString(args)) return srv_req_bad_type(e, name, "a string (JSON text)");
    if (!json_object_text(args->valuestring))
        return srv_req_bad_type(e, name, "the JSON text of an object");
    char id_name[128], fn_name[128];
    snprintf(id_name, sizeof id_name, "messages[%d].tool_calls[%d].id", i, k);
    snprintf(fn_name, sizeof fn_name, "messages[%d].tool_calls[%d].function.name", i, k);
    return srv_req_dup_string(e, id, id_name, &out->id, NULL) &&
           srv_req_dup_string(e, fn, fn_name, &out->name, NULL) &&
           srv_req_dup_string(e, args, name, &out->arguments, NULL);
}

bool srv_tools_parse_message(const cJSON *msg, int i, srv_message *m, srv_error *e) {
    char name[96];
    if (m->role == TOK_CHAT_TOOL) {
        const cJSON *id = srv_req_field(msg, "tool_call_id");
        snprintf(name, sizeof name, "messages[%d].tool_call_id", i);
        if (!id) return srv_fail(e, 400, name, NULL, "'%s' is required", name);
        if (!cJSON_IsString(id)) return srv_req_bad_type(e, name, "a string");
        return srv_req_dup_string(e, id, name, &m->tool_call_id, NULL);
    }
    const cJSON *calls = srv_req_field(msg, "tool_calls");
    snprintf(name, sizeof name, "messages[%d].tool_calls", i);
    if (!calls) return true;
    if (m->role != TOK_CHAT_ASSISTANT)
        return srv_fail(e, 400, name, NULL, "'%s' is allowed on assistant messages only", name);
    if (!cJSON_IsArray(calls) || !calls->child)
        return srv_req_bad_type(e, name, "a non-empty array");
    const int n = cJSON_GetArraySize(calls);
    if (n > SRV_MAX_TOOL_CALLS)
        return srv_fail(e, 400, name, NULL, "'%s' may hold at most %d calls", name,
                        SRV_MAX_TOOL_CALLS);
    if (!(m->tool_calls = calloc((size_t)n, sizeof *m->tool_calls)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    int k = 0;
    for (const cJSON *c = calls->child; c; c = c->next, k++) {
        m->n_tool_calls = k + 1; /* so that the free sees what was filled */
        if (!parse_call(c, i, k, &m->tool_calls[k], e)) return false;
    }
    return true;
}

void srv_tools_message_free(srv_message *m) {
    for (int k = 0; k < m->n_tool_calls; k++) {
        free(m->tool_calls[k].id);
        free(m->tool_calls[k].name);
        free(m->tool_calls[k].arguments);
    }
    free(m->tool_calls);
    free(m->tool_call_id);
    m->tool_calls = NULL;
    m->n_tool_calls = 0;
    m->tool_call_id = NULL;
}

void srv_tools_request_free(srv_request *r) {
    free(r->tools);
    for (int k = 0; k < r->n_tools; k++) free(r->tool_names[k]);
    free(r->tool_names);
    free(r->tool_choice_name);
    free(r->tool_schema);
}

bool srv_tools_active(const srv_request *r) {
    return r->kind == SRV_CHAT && r->tools && r->tool_choice != SRV_TOOL_NONE;
}
