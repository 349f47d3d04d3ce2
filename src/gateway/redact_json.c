/*
 * redact_json.c - the privacy guard over JSON (tool calls: a history's
 * tool_calls, a tier's call arguments). The guard works on the parsed
 * value, never on the JSON text: each string - object keys and string
 * values - is scanned, redacted or restored on its own, and the value is
 * printed back. So a match can never span an escape ("\n" before a name,
 * "\"" inside a value) or two strings, and what leaves is always valid
 * JSON whose strings hold the placeholders (and, restored, the values,
 * escaped as JSON wants).
 *
 * OpenAI's tool_calls carry each call's arguments as a string holding JSON:
 * the string of an "arguments" member that parses as an object or array is
 * walked as JSON in turn and printed back into the string.
 *
 * A value nothing was replaced in comes back as it was, byte for byte; one
 * that changed is printed compact (cJSON keeps numbers as doubles, so an
 * integer beyond 2^53 there comes back as the nearest double).
 */
#include "gateway.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

typedef struct walk {
    gw_json_str_fn fn;
    void *ctx;
    gw_buf tmp; /* one string's new text */
    hearth_err err;
} walk;

static bool map_value(walk *w, cJSON *v);

/* s through fn; a new copy in *s (cJSON's allocator) when it changed. */
static bool map_string(walk *w, char **s) {
    bool changed = false;
    w->tmp.len = 0;
    if (!w->err) w->err = w->fn(w->ctx, *s, strlen(*s), &w->tmp, &changed);
    if (w->err || !changed) return false;
    char *n = cJSON_malloc(w->tmp.len + 1);
    if (!n) {
        w->err = hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
        return false;
    }
    memcpy(n, w->tmp.data ? w->tmp.data : "", w->tmp.len);
    n[w->tmp.len] = '\0';
    cJSON_free(*s);
    *s = n;
    return true;
}

/* An "arguments" string holding JSON: walked as JSON, printed back into the
 * string when something changed. False when it holds no object or array
 * (then it is a plain string). */
// NOLINTNEXTLINE(misc-no-recursion): cJSON caps nesting (1000); embedding doubles escapes
static bool map_embedded(walk *w, cJSON *v, bool *changed) {
    cJSON *inner = cJSON_Parse(v->valuestring);
    if (!cJSON_IsObject(inner) && !cJSON_IsArray(inner)) {
        cJSON_Delete(inner);
        return false;
    }
    *changed = map_value(w, inner);
    char *text = *changed && !w->err ? cJSON_PrintUnformatted(inner) : NULL;
    cJSON_Delete(inner);
    if (*changed && !w->err && !text) w->err = hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
    if (text) {
        cJSON_free(v->valuestring);
        v->valuestring = text;
    }
    return true;
}

/* Every string under v; true when one changed. */
// NOLINTNEXTLINE(misc-no-recursion): as map_embedded
static bool map_value(walk *w, cJSON *v) {
    bool changed = false;
    if (cJSON_IsString(v) && v->valuestring) {
        if (!(v->string && !strcmp(v->string, "arguments") && map_embedded(w, v, &changed)))
            changed = map_string(w, &v->valuestring);
    } else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        for (cJSON *c = v->child; c && !w->err; c = c->next) {
            /* keys too: a map from e-mail addresses to anything is user data */
            if (cJSON_IsObject(v) && c->string && !(c->type & cJSON_StringIsConst))
                changed |= map_string(w, &c->string);
            changed |= map_value(w, c);
        }
    }
    return changed;
}

hearth_err gw_json_map_strings(const char *json, gw_json_str_fn fn, void *ctx, char **out) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return hr_fail(HEARTH_ERR_INVALID_ARG, "gateway: the tool-call JSON is malformed");
    walk w = {.fn = fn, .ctx = ctx};
    const bool changed = map_value(&w, root);
    hearth_err err = w.err;
    char *text = NULL;
    if (!err) {
        text = changed ? cJSON_PrintUnformatted(root) : strdup(json);
        if (!text) err = hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
    }
    cJSON_Delete(root);
    gw_buf_free(&w.tmp);
    if (!err) *out = text;
    return err;
}

static hearth_err restore_str(void *ctx, const char *s, size_t len, gw_buf *out, bool *changed) {
    const hearth_err err = gw_restore(ctx, s, len, out);
    *changed = !err && (out->len != len || (len && memcmp(out->data, s, len) != 0));
    return err;
}

hearth_err gw_restore_json(const gw_redaction *r, const char *json, char **out) {
    const hearth_err err = gw_json_map_strings(json, restore_str, (void *)r, out);
    if (err != HEARTH_ERR_INVALID_ARG) return err;
    gw_buf b = {0}; /* not JSON (a tier may send malformed arguments): restored as text */
    const hearth_err e2 = gw_restore(r, json, strlen(json), &b);
    if (e2) {
        gw_buf_free(&b);
        return e2;
    }
    *out = gw_buf_take(&b, NULL);
    return *out ? HEARTH_OK : hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
}
