/*
 * request_impl.h - the request parser's field helpers (request.c), private
 * to the files that parse parts of a request (request.c, tools_request.c,
 * api_util.c, and the translations of other APIs' requests: api_anthropic.c,
 * api_responses.c), so that every field is read, refused and copied the same
 * way.
 */
#ifndef HEARTH_SERVER_REQUEST_IMPL_H
#define HEARTH_SERVER_REQUEST_IMPL_H

#include "server.h"

struct cJSON;

/* obj's member `name`, NULL when absent or null (null means "not given", as
 * OpenAI treats it). */
const struct cJSON *srv_req_field(const struct cJSON *obj, const char *name);
/* A 400 "'name' must be <want>"; returns false (inline, so that callers and
 * the static analyzer see it). */
static inline bool srv_req_bad_type(srv_error *e, const char *name, const char *want) {
    return srv_fail(e, 400, name, NULL, "'%s' must be %s", name, want);
}
/* v, which must be a string of valid UTF-8 (else a 400 naming `name`), as a
 * malloc'd copy in *out (its length in *len when len is not NULL). */
bool srv_req_dup_string(srv_error *e, const struct cJSON *v, const char *name, char **out,
                        size_t *len);

#endif
