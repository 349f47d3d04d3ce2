/*
 * tools_constrain.c - tool_choice "required" and a named function made a
 * guarantee for the local model, as llama.cpp's server does with grammars:
 * the assistant turn is opened with the family's call prefix (Hermes:
 * "<tool_call>\n"; Gemma 4: "<|tool_call>", LFM2: "<|tool_call_start|>" and
 * Mistral: "[TOOL_CALLS]", the call then written as the JSON object, not in
 * their own syntax; Llama 3.1/3.2: nothing,
 * the reply is the bare object) and
 * the output is constrained (HEARTH_CONSTRAINT_JSON_SCHEMA) to one call
 * object built from the tools:
 *
 *   anyOf over the allowed functions of {"type":"object","properties":
 *     {"name":{"const":NAME},"arguments":PARAMS},"required":["name",
 *     "arguments"],"additionalProperties":false}
 *
 * ("parameters" instead of "arguments" for Llama 3.x, as its template
 * asks). tools_parse.c reads the result as a reply of one bare call object.
 *
 * Where a function's parameters cannot be enforced (keywords outside the
 * supported subset such as format or minimum, $ref, not an object schema)
 * its arguments are constrained to any JSON object instead; with more than
 * 32 allowed functions (the readings the recognizer follows at once) or a
 * combined schema that does not compile, the name is an enum of the allowed
 * names and the arguments any object. Either way the call names an allowed
 * function and its arguments are an object; `partial` tells the caller.
 */
#include "tools.h"

#include "sampling/json_schema.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* anyOf alternatives the recognizer follows at once */
enum { MAX_ALTERNATIVES = SMP_SCHEMA_MAX_THREADS };

bool srv_tools_forced(const srv_request *r) {
    return r->kind == SRV_CHAT && r->tools &&
           (r->tool_choice == SRV_TOOL_REQUIRED || r->tool_choice == SRV_TOOL_NAMED);
}

const char *srv_tools_call_prefix(tok_chat_tools family) {
    return family == TOK_TOOLS_LLAMA3                                     ? ""
           : family == TOK_TOOLS_GEMMA4                                   ? "<|tool_call>"
           : family == TOK_TOOLS_LFM2                                     ? "<|tool_call_start|>"
           : family == TOK_TOOLS_MISTRAL || family == TOK_TOOLS_MINISTRAL ? "[TOOL_CALLS]"
                                                                          : "<tool_call>\n";
}

/* Whether params is a schema the constraint enforces as it stands, for an
 * object: type "object", no $ref (a reference would point into the
 * combined schema, not the function's own), and it compiles. */
static bool params_enforceable(const cJSON *params) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(params, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "object") != 0) return false;
    char *text = cJSON_PrintUnformatted(params);
    const bool ok =
        text && !strstr(text, "\"$ref\"") && hearth_json_schema_check(text) == HEARTH_OK;
    free(text);
    return ok;
}

/* {"type":"object","properties":{"name":NAME_SCHEMA,key:args},"required":
 * ["name",key],"additionalProperties":false}; takes name_schema and args. */
static cJSON *call_schema(cJSON *name_schema, const char *key, cJSON *args) {
    cJSON *o = cJSON_CreateObject(), *props = cJSON_CreateObject(), *req = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "type", "object");
    cJSON_AddItemToObject(props, "name", name_schema);
    cJSON_AddItemToObject(props, key, args);
    cJSON_AddItemToObject(o, "properties", props);
    cJSON_AddItemToArray(req, cJSON_CreateString("name"));
    cJSON_AddItemToArray(req, cJSON_CreateString(key));
    cJSON_AddItemToObject(o, "required", req);
    cJSON_AddFalseToObject(o, "additionalProperties");
    return o;
}

static cJSON *any_object(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "object");
    return o;
}

/* The arguments' schema of function f: its parameters, {} with none (a
 * function without parameters takes none), else any object (*partial). */
static cJSON *args_schema(const cJSON *f, bool *partial) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(f, "parameters");
    if (!params || cJSON_IsNull(params)) {
        cJSON *o = any_object();
        cJSON_AddFalseToObject(o, "additionalProperties");
        return o;
    }
    if (params_enforceable(params)) return cJSON_Duplicate(params, true);
    *partial = true;
    return any_object();
}

/* The fallback: any allowed name, any object. */
static char *loose_schema(const cJSON *names, const char *key) {
    cJSON *name = cJSON_CreateObject();
    cJSON_AddItemToObject(name, "enum", cJSON_Duplicate(names, true));
    cJSON *s = call_schema(name, key, any_object());
    char *text = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return text;
}

char *srv_tools_schema(const char *tools_json, const char *only, const char *args_key,
                       bool *partial) {
    *partial = false;
    cJSON *tools = cJSON_Parse(tools_json);
    cJSON *alts = cJSON_CreateArray(), *names = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (!cJSON_IsString(n) || (only && strcmp(only, n->valuestring) != 0)) continue;
        cJSON *name = cJSON_CreateObject();
        cJSON_AddStringToObject(name, "const", n->valuestring);
        cJSON_AddItemToArray(alts, call_schema(name, args_key, args_schema(f, partial)));
        cJSON_AddItemToArray(names, cJSON_CreateString(n->valuestring));
    }
    const int n_alts = cJSON_GetArraySize(alts);
    char *text = NULL;
    if (n_alts == 1) {
        text = cJSON_PrintUnformatted(cJSON_GetArrayItem(alts, 0));
    } else if (n_alts > 1 && n_alts <= MAX_ALTERNATIVES) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddItemToObject(s, "anyOf", alts);
        text = cJSON_PrintUnformatted(s);
        cJSON_DetachItemViaPointer(s, alts);
        cJSON_Delete(s);
    }
    if (n_alts > 0 && (!text || hearth_json_schema_check(text) != HEARTH_OK)) {
        free(text);
        *partial = true;
        text = loose_schema(names, args_key);
    }
    cJSON_Delete(alts);
    cJSON_Delete(names);
    cJSON_Delete(tools);
    return text;
}

bool srv_tools_constrain(srv_request *r, tok_chat_tools family, srv_error *e) {
    if (!srv_tools_forced(r)) return true;
    const char *key = family == TOK_TOOLS_LLAMA3 ? "parameters" : "arguments";
    r->tool_schema =
        srv_tools_schema(r->tools, r->tool_choice == SRV_TOOL_NAMED ? r->tool_choice_name : NULL,
                         key, &r->tool_schema_partial);
    if (!r->tool_schema) return srv_fail(e, 500, NULL, NULL, "out of memory");
    r->sampling.constraint = HEARTH_CONSTRAINT_JSON_SCHEMA;
    r->sampling.json_schema = r->tool_schema;
    return true;
}
