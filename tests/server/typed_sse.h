/*
 * typed_sse.h - reading a stream of typed Server-Sent Events (Anthropic's
 * Messages API and OpenAI's Responses API): "event: TYPE\ndata: JSON\n\n",
 * where the data's own "type" must be the event's.
 */
#ifndef HEARTH_TEST_TYPED_SSE_H
#define HEARTH_TEST_TYPED_SSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The next event after *p: its type into type[cap], its data parsed into
 * *data (the caller frees it; NULL when not JSON); *p moves past it. False
 * at the end. *agrees: the data's "type" is the event's. */
static inline bool typed_sse_next(const char **p, char *type, size_t cap, cJSON **data,
                                  bool *agrees) {
    const char *at = strstr(*p, "event: ");
    if (!at) return false;
    const char *eol = strchr(at, '\n');
    const char *d = eol && !strncmp(eol, "\ndata: ", 7) ? eol + 7 : NULL;
    const char *end = d ? strstr(d, "\n\n") : NULL;
    if (!end) return false;
    const size_t n = (size_t)(eol - at - 7);
    snprintf(type, cap, "%.*s", (int)(n < cap ? n : cap - 1), at + 7);
    *data = cJSON_ParseWithLength(d, (size_t)(end - d));
    const cJSON *t = *data ? cJSON_GetObjectItemCaseSensitive(*data, "type") : NULL;
    *agrees = cJSON_IsString(t) && !strcmp(t->valuestring, type);
    *p = end + 2;
    return true;
}

#endif
