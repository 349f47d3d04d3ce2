/*
 * json_path.h - reading the server tests' JSON replies: an item by a dotted
 * path ("choices.0.message.content"; numbers index arrays), as a string or
 * a number, and a reply parsed (or POSTed and parsed) with a check that it
 * is JSON. Shared by test_server.c and test_server_ollama.c.
 */
#ifndef HEARTH_TEST_JSON_PATH_H
#define HEARTH_TEST_JSON_PATH_H

#include "test.h"

#include "server/http_client.h"

#include <cjson/cJSON.h>

/* The item at path "a.b.0.c" (numbers index arrays), or NULL. */
static inline const cJSON *jget(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && cur;
         k = strtok_r(NULL, ".", &save))
        cur = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(cur, atoi(k))
                                       : cJSON_GetObjectItemCaseSensitive(cur, k);
    return cur;
}

/* The string at path, or NULL when absent or not a string. */
static inline const char *jstr(const cJSON *o, const char *path) {
    const cJSON *cur = jget(o, path);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

/* The number at path, or -1e300 when absent or not a number. */
static inline double jnum(const cJSON *o, const char *path) {
    const cJSON *cur = jget(o, path);
    return cJSON_IsNumber(cur) ? cur->valuedouble : -1e300;
}

/* A reply's body parsed; a failed check (and NULL) when it is not JSON. */
static inline cJSON *parse_reply(const test_reply *r) {
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    CHECKF(j != NULL, "reply is not JSON: %.300s", r->body);
    return j;
}

/* POST body to path; the reply parsed (NULL when it is not JSON, a failed
 * check when its status is 200). */
static inline cJSON *post(test_server *sv, const char *path, const char *body, int *status) {
    test_reply r = test_http(sv, "POST", path, body, NULL);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    if (status) *status = r.status;
    CHECKF(j != NULL || r.status != 200, "%s: not JSON: %.300s", path, r.body);
    free(r.body);
    return j;
}

/* POST body to path and the string at `field` of the reply (a malloc'd
 * copy; "(none)" when it is absent), checking a 200 (what: the check's
 * label). */
static inline char *post_text(test_server *sv, const char *path, const char *body,
                              const char *field, const char *what) {
    int status;
    cJSON *j = post(sv, path, body, &status);
    CHECKF(status == 200 && j, "%s: %d", what, status);
    const char *t = j ? jstr(j, field) : NULL;
    char *text = strdup(t ? t : "(none)");
    cJSON_Delete(j);
    return text;
}

#endif
