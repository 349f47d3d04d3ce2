/*
 * api_remote_embed.c - the server's side of remote embeddings and rerank
 * (the gateway's side is src/gateway/embed.c): which requests go to a
 * remote tier, running one through the gateway, and its refusals and
 * failures as the client's API writes errors. The routes themselves
 * (api_embeddings.c, api_ollama_embed.c, api_rerank.c) read their own
 * bodies and write their own answers around these.
 *
 * Routing: a request whose model is one a tier declares (embedding_models,
 * rerank_models) goes to that tier, unless a local model has that name: the
 * local model wins. Any other name keeps the local routes' rules.
 */
#include "api_embed.h"

#include <microhttpd.h>

#include <stdlib.h>
#include <string.h>

int srv_remote_tier(srv_exchange *x, gw_embed_kind kind, const char *model) {
    srv_server *s = x->srv;
    if (!s->gw || !model || !model[0] || srv_model_find(s, model)) return -1;
    return gw_config_embed_tier(gw_gateway_config(s->gw), kind, model);
}

bool srv_remote_text(const cJSON *item, const char *field, const char **text, srv_error *e) {
    size_t bad;
    if (!cJSON_IsString(item)) return srv_fail(e, 400, field, NULL, "'%s' must be a string", field);
    if (!item->valuestring[0])
        return srv_fail(e, 400, field, NULL, "'%s' must not be empty", field);
    if (!hr_utf8_valid(item->valuestring, strlen(item->valuestring), &bad))
        return srv_fail(e, 400, field, NULL, "'%s': invalid UTF-8 at byte %zu", field, bad);
    *text = item->valuestring;
    return true;
}

/* x-hearth-route (the tier, "none" when refused before any) and
 * x-hearth-reason, as chats carry them; both are the gateway's own text
 * (tier and model names checked by the configuration). */
static void add_headers(srv_exchange *x, const gw_embed_response *r) {
    if (!x->response) return;
    MHD_add_response_header(x->response, "x-hearth-route", r->tier);
    MHD_add_response_header(x->response, "x-hearth-reason", r->reason);
}

bool srv_remote_run(srv_exchange *x, const gw_embed_request *r, gw_embed_response *out) {
    srv_error e;
    gw_embed_request q = *r;
    q.key = x->key;
    if (gw_embed(x->srv->gw, &q, out) != HEARTH_OK) {
        srv_fail(&e, 500, NULL, NULL, "gateway: %s", hearth_last_error());
        srv_respond_error(x, &e);
        return false;
    }
    x->prompt_tokens = out->prompt_tokens;
    if (out->status == 200) return true;
    srv_fail(&e, out->status, NULL, out->code, "%s", out->error);
    srv_respond_error(x, &e);
    add_headers(x, out);
    gw_embed_response_free(out);
    return false;
}

void srv_remote_respond(srv_exchange *x, char *json, gw_embed_response *out) {
    srv_respond_json(x, 200, json); /* NULL: a 500 "out of memory" */
    add_headers(x, out);
    gw_embed_response_free(out);
}
