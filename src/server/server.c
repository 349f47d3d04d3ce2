/*
 * server.c - start-up and shut-down of `hearth serve`. The models are
 * registered (models.c), the HTTP daemon starts so /health can say
 * "loading", and a loader thread loads the default model (models.c: the
 * chat template, the slots) and flips the state to ready; without a
 * default model the server is ready at once.
 */
#include "server.h"

#include "core/core.h"
#include "rag/rag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

srv_config srv_default_config(void) {
    return (srv_config){.host = "127.0.0.1",
                        .port = 8080,
                        .n_parallel = 1,
                        .n_ctx = 0,
                        .n_threads = 0,
                        .queue_max = -1,
                        .timeout_s = 600,
                        .models_max = 4,
                        .keep_alive_ms = SRV_KEEP_ALIVE_FOREVER,
                        .max_body_bytes = 8u << 20,
                        .reasoning = -1,
                        .reasoning_budget = -1,
                        .log = stderr};
}

void srv_say(srv_server *s, const char *fmt, ...) {
    if (!s->cfg.log) return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&s->log_mu);
    fputs("hearth serve: ", s->cfg.log);
    vfprintf(s->cfg.log, fmt, ap);
    fputc('\n', s->cfg.log);
    fflush(s->cfg.log);
    pthread_mutex_unlock(&s->log_mu);
    va_end(ap);
}

static void *loader_main(void *arg) {
    srv_server *s = arg;
    const hearth_err err = srv_models_load_default(s);
    if (err) {
        s->load_err = err;
        srv_say(s, "error: %s", hearth_last_error());
        atomic_store(&s->state, SRV_FAILED);
        return NULL;
    }
    atomic_store(&s->state, SRV_READY);
    return NULL;
}

hearth_err srv_start(const srv_config *cfg, srv_server **out) {
    hearth_pooling pooling = HEARTH_POOL_MEAN;
    if (cfg->pooling && !hearth_pooling_parse(cfg->pooling, &pooling))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --pooling must be mean, cls or last");
    if (cfg->n_parallel < 1 || cfg->n_parallel > 256)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --parallel must be in 1..256");
    if (cfg->port < 0 || cfg->port > 65535)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --port must be in 0..65535");
    if (cfg->models_max < 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --models-max must be 0 (no limit) or more");
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    s->cfg = *cfg;
    if (!s->cfg.host) s->cfg.host = "127.0.0.1";
    pthread_mutex_init(&s->log_mu, NULL);
    srv_metrics_init(&s->metrics);
    atomic_init(&s->state, SRV_LOADING);
    atomic_init(&s->gw_workers, 0);
    pthread_mutex_init(&s->rag_mu, NULL);
    hearth_err err = srv_models_init(s);
    if (!err) err = srv_slots_start(s);
    if (!err) err = srv_gateway_start(s);
    if (!err && cfg->rag_path) err = rag_open(cfg->rag_path, false, &s->rag);
    if (!err) err = srv_rag_start(s);
    if (!err) err = srv_drift_watch_start(s);
    if (!err) err = srv_http_start(s);
    if (!err && pthread_create(&s->loader, NULL, loader_main, s) != 0)
        err = hr_fail(HEARTH_ERR_NOMEM, "server: cannot start the loader thread");
    if (err) {
        srv_http_stop(s);
        srv_drift_watch_stop(s);
        srv_gateway_stop(s);
        srv_models_free(s);
        rag_close(s->rag);
        pthread_mutex_destroy(&s->rag_mu);
        srv_metrics_fini(&s->metrics);
        pthread_mutex_destroy(&s->log_mu);
        free(s);
        return err;
    }
    s->loader_started = true;
    *out = s;
    return HEARTH_OK;
}

int srv_port(const srv_server *s) { return s->port; }

int srv_state_get(const srv_server *s) { return atomic_load(&s->state); }

void srv_stop(srv_server *s) {
    if (!s) return;
    if (s->loader_started) pthread_join(s->loader, NULL);
    /* Wake every waiting handler first, so the connection threads the
     * daemon joins can finish; free the slots only after. */
    srv_models_shutdown(s);
    srv_gateway_quiesce(s); /* cascade streams end too */
    srv_http_stop(s);
    srv_drift_watch_stop(s);
    srv_gateway_stop(s); /* after the daemon: its last requests write ledger rows */
    srv_models_free(s);
    rag_close(s->rag);
    pthread_mutex_destroy(&s->rag_mu);
    srv_metrics_fini(&s->metrics);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}
