/*
 * api_models.c - the endpoints that do not generate: GET /v1/models (the one
 * loaded model, OpenAI's list shape), GET /v1/models/{id}, GET /health
 * ({"status":"ok"}; 503 {"status":"loading"} until the model is ready) and
 * GET /metrics (Prometheus text).
 */
#include "server.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <stdlib.h>
#include <string.h>

static cJSON *model_json(srv_server *s) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "hearth");
    return m;
}

static void respond(srv_exchange *x, cJSON *root) {
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    srv_respond_json(x, 200, json);
}

void srv_handle_models(srv_exchange *x, const char *id) {
    srv_server *s = x->srv;
    if (id) {
        if (strcmp(id, s->model_id) != 0) {
            srv_error e;
            srv_fail(&e, 404, "model", "model_not_found", "the model '%s' does not exist", id);
            srv_respond_error(x, &e);
            return;
        }
        respond(x, model_json(s));
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "data"), model_json(s));
    respond(x, root);
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
    int queued = 0, busy = 0, slots = 0;
    if (atomic_load(&s->state) == SRV_READY) srv_sched_stats(s->sched, &queued, &busy, &slots);
    char *base = srv_metrics_text(&s->metrics, queued, busy, slots);
    if (!base) return;
    gw_buf all = {0};
    gw_buf_puts(&all, base);
    free(base);
    srv_drift_watch_metrics(s, &all);
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
