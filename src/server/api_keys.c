/*
 * api_keys.c - GET /v1/hearth/key (the caller's own API key: its limits,
 * what is left of them, its budget and spending, as LiteLLM's /key/info)
 * and GET /v1/hearth/keys (every key, for an admin). The keys themselves
 * are the gateway's (src/gateway/keys.c); only their names ever appear.
 */
#include "server.h"

#include <cjson/cJSON.h>

#include <stdlib.h>

/* A key's info as a cJSON item (NULL when out of memory). */
static cJSON *key_item(gw_key *k, int64_t now_ms) {
    char *json = gw_key_info_json(k, now_ms);
    cJSON *item = json ? cJSON_Parse(json) : NULL;
    free(json);
    return item;
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
    cJSON *o = cJSON_CreateObject(), *data = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "object", "list") &&
              (data = cJSON_AddArrayToObject(o, "data"));
    for (int i = 0; ok && i < gw_keys_count(keys); i++) {
        cJSON *item = key_item(gw_keys_at(keys, i), now);
        ok = item && cJSON_AddItemToArray(data, item);
        if (!ok) cJSON_Delete(item);
    }
    char *json = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    srv_respond_json(x, 200, json);
}
