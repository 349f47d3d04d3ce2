/*
 * thinking.c - Anthropic's thinking blocks as data (gw_thinking_block):
 * what an Anthropic tier signs and wants back byte for byte in a tool loop
 * with extended thinking. The same JSON object is Anthropic's content block
 * and LiteLLM's thinking_blocks entry (an OpenAI-shaped message's), so one
 * reader and one writer serve the tier's answers, the request bodies sent
 * to it and the server's clients:
 *
 *   {"type": "thinking", "thinking": "<text>", "signature": "<opaque>"}
 *   {"type": "redacted_thinking", "data": "<opaque>"}
 *
 * The opaque strings are copied, never looked into.
 */
#include "gateway.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_thinking_free(gw_thinking_block *b, int n) {
    for (int i = 0; b && i < n; i++) {
        free(b[i].thinking);
        free(b[i].opaque);
    }
    free(b);
}

hearth_err gw_thinking_push(gw_thinking_block **arr, int *n, const gw_thinking_block *b) {
    gw_thinking_block *na = realloc(*arr, (size_t)(*n + 1) * sizeof *na);
    if (!na) return hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
    *arr = na;
    gw_thinking_block c = {.redacted = b->redacted,
                           .thinking = b->thinking ? strdup(b->thinking) : NULL,
                           .opaque = strdup(b->opaque ? b->opaque : "")};
    if (!c.opaque || (b->thinking && !c.thinking)) {
        free(c.thinking);
        free(c.opaque);
        return hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
    }
    na[(*n)++] = c;
    return HEARTH_OK;
}

cJSON *gw_thinking_json(const gw_thinking_block *b) {
    cJSON *o = cJSON_CreateObject();
    const char *opaque = b->opaque ? b->opaque : "";
    bool ok =
        o && cJSON_AddStringToObject(o, "type", b->redacted ? "redacted_thinking" : "thinking");
    if (ok && b->redacted)
        ok = cJSON_AddStringToObject(o, "data", opaque) != NULL;
    else if (ok)
        ok = cJSON_AddStringToObject(o, "thinking", b->thinking ? b->thinking : "") &&
             cJSON_AddStringToObject(o, "signature", opaque);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The string member `name` of o, or NULL (why says what it must be). */
static const char *member(const cJSON *o, const char *name, const char *type, char *why,
                          size_t cap) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    if (!s) snprintf(why, cap, "a %s block's '%s' must be a string", type, name);
    return s;
}

bool gw_thinking_parse(const cJSON *o, gw_thinking_block *out, char *why, size_t cap) {
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
    *out = (gw_thinking_block){0};
    if (!cJSON_IsObject(o) || !type ||
        (strcmp(type, "thinking") != 0 && strcmp(type, "redacted_thinking") != 0)) {
        snprintf(why, cap, "must be an object of type \"thinking\" or \"redacted_thinking\"");
        return false;
    }
    out->redacted = type[0] == 'r';
    const char *text = out->redacted ? "" : member(o, "thinking", type, why, cap);
    const char *opaque =
        text ? member(o, out->redacted ? "data" : "signature", type, why, cap) : NULL;
    if (!text || !opaque) return false;
    out->thinking = out->redacted ? NULL : strdup(text);
    out->opaque = strdup(opaque);
    if (!out->opaque || (!out->redacted && !out->thinking)) {
        free(out->thinking);
        free(out->opaque);
        *out = (gw_thinking_block){0};
        snprintf(why, cap, "out of memory");
        return false;
    }
    return true;
}
