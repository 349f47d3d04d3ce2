/*
 * api_models.c - the endpoints about the models and the server: GET
 * /v1/models (every model the server can answer with, OpenAI's list shape,
 * each with llama-server's router-mode "status"; GET /models is the same),
 * GET /v1/models/{id}, and after the local models the gateway's remote
 * names ("auto", each remote tier, the tiers' embedding and rerank models),
 * POST /models/load and /models/unload ({"model": id}, llama-server's
 * router mode), GET /slots (every loaded model's slots, as llama-server's),
 * GET /health ({"status":"ok"}; 503
 * {"status":"loading"} until the default model is ready) and GET /metrics
 * (Prometheus text).
 */
#include "server.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <stdlib.h>
#include <string.h>

static const char *state_name(srv_model_state st) {
    switch (st) {
    case SRV_MODEL_LOADING: return "loading";
    case SRV_MODEL_LOADED: return "loaded";
    default: return "unloaded";
    }
}

static cJSON *model_json(srv_model *m) {
    srv_server *s = m->srv;
    pthread_mutex_lock(&s->models_mu);
    const srv_model_state st = m->state;
    pthread_mutex_unlock(&s->models_mu);
    cJSON *o = cJSON_CreateObject(), *status = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddStringToObject(o, "owned_by", "hearth");
    cJSON_AddStringToObject(status, "value", state_name(st));
    if (st == SRV_MODEL_FAILED) cJSON_AddBoolToObject(status, "failed", true);
    cJSON_AddItemToObject(o, "status", status);
    if (m == s->default_model) cJSON_AddBoolToObject(o, "default", true);
    return o;
}

/* Adds the remote name id to `into` unless `only` names another or a local
 * model answers to it (the local model wins). */
static void offer(srv_server *s, const char *only, const char *id, const char *owner, cJSON *into) {
    if ((only && strcmp(only, id)) || srv_model_find(s, id)) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", s->default_model ? (double)s->default_model->created : 0);
    cJSON_AddStringToObject(o, "owned_by", owner);
    cJSON_AddItemToArray(into, o);
}

/* Adds to `into` the names a client may give as `model` that the gateway
 * answers remotely (all of them, or only the one named `only`): "auto" and
 * each remote tier, owned by the tier's kind, and the tiers' embedding and
 * rerank models, owned by their tier. None when air-gapped; only the tiers
 * x's key allows ("auto" with at least one), and "auto" and the tiers only
 * when the key may use the default model. */
static void add_remote(srv_exchange *x, const char *only, cJSON *into) {
    srv_server *s = x->srv;
    const gw_config *c = s->gw ? gw_gateway_config(s->gw) : NULL;
    if (!c || c->air_gapped || c->n_tiers < 2) return;
    const bool *tier_ok = x->key ? gw_key_spec_of(x->key)->tier_ok : NULL;
    /* a chat naming "auto" or a tier runs as the default model's request */
    const srv_model *d = s->default_model;
    const bool chats = d && (!x->key || gw_key_allows_model(x->key, d->id));
    bool any = false;
    for (int t = 1; t < c->n_tiers; t++) {
        const gw_tier *tier = &c->tiers[t];
        if (tier_ok && !tier_ok[t]) continue;
        if (chats && !any) offer(s, only, "auto", "hearth", into); /* before the first tier */
        if (chats) offer(s, only, tier->name, gw_tier_kind_name(tier->kind), into);
        any = true;
        for (int i = 0; i < tier->n_embedding_models; i++)
            offer(s, only, tier->embedding_models[i], tier->name, into);
        for (int i = 0; i < tier->n_rerank_models; i++)
            offer(s, only, tier->rerank_models[i], tier->name, into);
    }
}

static void respond(srv_exchange *x, cJSON *root) {
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    srv_respond_json(x, 200, json);
}

void srv_handle_models(srv_exchange *x, const char *id) {
    srv_server *s = x->srv;
    if (id) {
        srv_model *m = srv_model_find(s, id);
        if (!m) { /* a remote name? */
            cJSON *remote = cJSON_CreateArray();
            add_remote(x, id, remote);
            cJSON *o = cJSON_DetachItemFromArray(remote, 0);
            cJSON_Delete(remote);
            if (o) {
                respond(x, o);
                return;
            }
        }
        if (!m || (x->key && !gw_key_allows_model(x->key, m->id))) {
            srv_error e;
            srv_fail(&e, 404, "model", "model_not_found", "the model '%s' does not exist", id);
            srv_respond_error(x, &e);
            return;
        }
        respond(x, model_json(m));
        return;
    }
    cJSON *root = cJSON_CreateObject(), *data = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "object", "list");
    for (int i = 0; i < s->n_models; i++) /* a key limited to some models sees those */
        if (!x->key || gw_key_allows_model(x->key, s->models[i]->id))
            cJSON_AddItemToArray(data, model_json(s->models[i]));
    add_remote(x, NULL, data);
    cJSON_AddItemToObject(root, "data", data);
    respond(x, root);
}

/* The registered model a {"model": id} body names; NULL when x was answered. */
static srv_model *body_model(srv_exchange *x) {
    srv_error e;
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    const cJSON *name =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    srv_model *m = NULL;
    if (!root)
        srv_fail(&e, 400, NULL, "invalid_json", "the body is not valid JSON");
    else if (!cJSON_IsString(name) || !name->valuestring[0])
        srv_fail(&e, 400, "model", NULL, "'model' must be a model's name (GET /v1/models)");
    else if (!(m = srv_model_find(x->srv, name->valuestring)))
        srv_fail(&e, 404, "model", "model_not_found", "the model '%.200s' does not exist",
                 name->valuestring);
    cJSON_Delete(root);
    if (!m) srv_respond_error(x, &e);
    return m;
}

static void respond_success(srv_exchange *x) {
    char *json = strdup("{\"success\":true}");
    srv_respond_json(x, 200, json);
}

void srv_handle_model_load(srv_exchange *x) {
    srv_model *m = body_model(x);
    srv_error e;
    if (!m) return;
    if (!srv_model_acquire(m, true, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    srv_model_release(m, SRV_KEEP_ALIVE_DEFAULT);
    respond_success(x);
}

void srv_handle_model_unload(srv_exchange *x) {
    srv_model *m = body_model(x);
    srv_error e;
    if (!m) return;
    if (!srv_model_unload(m, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    respond_success(x);
}

void srv_handle_slots(srv_exchange *x) {
    srv_server *s = x->srv;
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&s->models_mu); /* no model is unloaded meanwhile */
    for (int i = 0; i < s->n_models; i++)
        if (s->models[i]->state == SRV_MODEL_LOADED)
            srv_sched_slots_json(s->models[i]->sched, arr, s->models[i]->id);
    pthread_mutex_unlock(&s->models_mu);
    char *json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    srv_respond_json(x, 200, json);
}

void srv_handle_health(srv_exchange *x) {
    const int state = atomic_load(&x->srv->state);
    const char *status = state == SRV_READY ? "ok" : state == SRV_LOADING ? "loading" : "error";
    char *json = malloc(64);
    if (!json) return;
    snprintf(json, 64, "{\"status\":\"%s\"}", status);
    srv_respond_json(x, state == SRV_READY ? 200 : 503, json);
}

void srv_handle_metrics(srv_exchange *x) {
    srv_server *s = x->srv;
    int queued = 0, busy = 0, slots = 0, loaded = 0;
    srv_models_stats(s, &queued, &busy, &slots, &loaded);
    char *base = srv_metrics_text(&s->metrics, queued, busy, slots);
    if (!base) return;
    gw_buf all = {0};
    gw_buf_puts(&all, base);
    free(base);
    gw_buf_printf(&all,
                  "# HELP hearth_models_loaded Models loaded (of hearth_models_total).\n"
                  "# TYPE hearth_models_loaded gauge\nhearth_models_loaded %d\n"
                  "# HELP hearth_models_total Models the server can answer with.\n"
                  "# TYPE hearth_models_total gauge\nhearth_models_total %d\n",
                  loaded, s->n_models);
    srv_drift_watch_metrics(s, &all);
    if (s->gw) gw_keys_metrics(gw_gateway_keys(s->gw), gw_now_ms(), &all);
    char *text = gw_buf_take(&all, NULL);
    if (!text) return;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    x->status = 200;
    x->response = r;
}
