/*
 * api_errors.c - the one table from an HTTP status to OpenAI's error "type",
 * and the error body every failing endpoint returns:
 * {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}.
 */
#include "server.h"

#include <cjson/cJSON.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#undef srv_fail /* server.h's version for the static analyzer; defined here */
bool srv_fail(srv_error *e, int status, const char *param, const char *code, const char *fmt, ...) {
    e->status = status;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    /* A message cut at its buffer's end may end inside a character. */
    size_t bad;
    if (!hr_utf8_valid(e->message, strlen(e->message), &bad)) e->message[bad] = '\0';
    return false;
}

const char *srv_error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 501: return "not_supported_error"; /* llama-server's */
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

char *srv_error_json(const srv_error *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    char *out = NULL;
    if (err && cJSON_AddStringToObject(err, "message", e->message) &&
        cJSON_AddStringToObject(err, "type", srv_error_type(e->status)) &&
        (e->param[0] ? cJSON_AddStringToObject(err, "param", e->param)
                     : cJSON_AddNullToObject(err, "param")) &&
        (e->code ? cJSON_AddStringToObject(err, "code", e->code)
                 : cJSON_AddNullToObject(err, "code")))
        out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}
