/*
 * api_keys.c - GET /v1/hearth/key (the caller's own API key: its limits,
 * what is left of them, its budget and spending, as LiteLLM's /key/info)
 * and the admin's routes: GET /v1/hearth/keys (every key), POST (a new key,
 * as LiteLLM's /key/generate: its secret is in this answer and nowhere
 * else), GET and DELETE /v1/hearth/keys/NAME (one key; revoking it). The
 * keys are the gateway's (src/gateway/keys.c); secrets and digests never
 * appear in a listing.
 */
#include "server.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* An error with the status the keys' call gave and hearth_last_error(). */
static void fail(srv_exchange *x, int status, const char *code) {
    srv_error e;
    srv_fail(&e, status, NULL, code, "%s", hearth_last_error());
    srv_respond_error(x, &e);
}

/* POST /v1/hearth/keys: a new key; the answer holds its secret, once. */
static void create(srv_exchange *x, gw_keys *keys, int64_t now) {
    char secret[GW_KEY_SECRET_LEN + 1];
    if (!x->key && !x->srv->cfg.api_key) { /* an open server: anyone could lock the rest out */
        srv_error e;
        srv_fail(&e, 403, NULL, "admin_required",
                 "keys are made at run time by an admin: start the server with --api-key (or "
                 "an admin key in the configuration's \"keys\")");
        srv_respond_error(x, &e);
        return;
    }
    gw_key *k;
    int status;
    if (gw_keys_create(keys, x->body, x->body_len, now, secret, &k, &status)) {
        fail(x, status, status == 409 ? "key_exists" : status == 400 ? "invalid_key" : NULL);
        return;
    }
    char *info = gw_key_info_json(k, now);
    cJSON *o = info ? cJSON_Parse(info) : NULL;
    free(info);
    char *json = o && cJSON_AddStringToObject(o, "key", secret) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    srv_respond_json(x, 200, json);
}

/* /v1/hearth/keys/NAME: GET shows it, DELETE revokes it. */
static void one(srv_exchange *x, gw_keys *keys, const char *name, int64_t now) {
    int status;
    if (!strcmp(x->method, "DELETE")) {
        if (gw_keys_revoke(keys, name, now, &status)) {
            fail(x, status,
                 status == 404   ? "key_not_found"
                 : status == 409 ? "key_in_config"
                                 : NULL);
            return;
        }
        cJSON *o = cJSON_CreateObject();
        char *json =
            o && cJSON_AddStringToObject(o, "name", name) && cJSON_AddTrueToObject(o, "revoked")
                ? cJSON_PrintUnformatted(o)
                : NULL;
        cJSON_Delete(o);
        srv_respond_json(x, 200, json);
        return;
    }
    gw_key *k = gw_keys_by_name(keys, name);
    if (!k) {
        srv_error e;
        srv_fail(&e, 404, NULL, "key_not_found", "no key named '%.200s'", name);
        srv_respond_error(x, &e);
        return;
    }
    srv_respond_json(x, 200, gw_key_info_json(k, now));
}

void srv_handle_key(srv_exchange *x, bool all) {
    const int64_t now = gw_now_ms();
    if (!all) {
        if (x->key) {
            srv_respond_json(x, 200, gw_key_info_json(x->key, now));
            return;
        }
        /* the operator's --api-key, or a server without keys */
        cJSON *o = cJSON_CreateObject();
        char *json =
            o && cJSON_AddNullToObject(o, "name") && cJSON_AddBoolToObject(o, "admin", x->admin)
                ? cJSON_PrintUnformatted(o)
                : NULL;
        cJSON_Delete(o);
        srv_respond_json(x, 200, json);
        return;
    }
    gw_keys *keys = x->srv->gw ? gw_gateway_keys(x->srv->gw) : NULL;
    if (!keys) {
        srv_error e;
        srv_fail(&e, 503, NULL, NULL, "the gateway is not running");
        srv_respond_error(x, &e);
        return;
    }
    static const char base[] = "/v1/hearth/keys";
    if (!strncmp(x->path, base, sizeof base - 1) && x->path[sizeof base - 1] == '/') {
        one(x, keys, x->path + sizeof base, now);
        return;
    }
    if (!strcmp(x->method, "POST")) {
        create(x, keys, now);
        return;
    }
    char *list = gw_keys_list_json(keys, now);
    cJSON *data = list ? cJSON_Parse(list) : NULL, *o = cJSON_CreateObject();
    free(list);
    char *json = NULL;
    if (data && o && cJSON_AddStringToObject(o, "object", "list") &&
        cJSON_AddItemToObject(o, "data", data)) {
        data = NULL;
        json = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(data);
    cJSON_Delete(o);
    srv_respond_json(x, 200, json);
}
