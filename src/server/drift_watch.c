/*
 * drift_watch.c - `hearth serve --drift-every DUR`: the drift report on the
 * server's own ledger, computed by a background thread every DUR, so drift
 * can be alerted on where the operator already looks: /metrics gauges for
 * Prometheus (hearth_drift_status, per-signal PSI, status and p-value) and
 * one log line whenever the overall status changes, naming the signals that
 * moved. The report reads the ledger in chunks (gw_ledger_scan), so requests
 * are recorded while it runs; it never holds the watch's lock while reading.
 */
#include "server.h"

#include "drift/drift.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct srv_drift_watch {
    srv_server *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stop;
    bool have;         /* a report exists */
    int64_t at_ms;     /* when it was built */
    drift_report last; /* under mu */
};

/* "conf_mean drift (PSI 0.31, p 2e-09), route warn (...)" into buf. */
static void moved_signals(const drift_report *r, char *buf, size_t size) {
    size_t off = 0;
    buf[0] = '\0';
    for (int k = 0; k < r->n_signals && off < size; k++) {
        const drift_signal *g = &r->signals[k];
        if (g->status < DRIFT_WARN) continue;
        const int w = snprintf(buf + off, size - off, "%s%s %s (PSI %.3f, p %.2g)", off ? ", " : "",
                               g->name, drift_status_name(g->status), g->psi, g->p_value);
        if (w < 0) break;
        off += (size_t)w;
    }
}

static void check_once(struct srv_drift_watch *w, drift_status *prev) {
    srv_server *s = w->s;
    drift_params p = drift_default_params();
    if (s->cfg.drift_window_ms > 0) p.window_ms = s->cfg.drift_window_ms;
    if (s->cfg.drift_reference_ms > 0) p.reference_ms = s->cfg.drift_reference_ms;
    drift_report *r = malloc(sizeof *r);
    if (!r) return;
    if (drift_report_build(s->ledger, &p, r)) {
        srv_say(s, "drift: the report failed: %s", hearth_last_error());
        free(r);
        return;
    }
    if (r->status != *prev && (r->status >= DRIFT_WARN || *prev >= DRIFT_WARN)) {
        char moved[1024];
        moved_signals(r, moved, sizeof moved);
        srv_say(s, "drift: %s -> %s%s%s", drift_status_name(*prev), drift_status_name(r->status),
                moved[0] ? ": " : "", moved);
    }
    *prev = r->status;
    pthread_mutex_lock(&w->mu);
    w->last = *r;
    w->have = true;
    w->at_ms = gw_now_ms();
    pthread_mutex_unlock(&w->mu);
    free(r);
}

static void *watch_main(void *arg) {
    struct srv_drift_watch *w = arg;
    drift_status prev = DRIFT_STABLE; /* a first report that is not stable is said */
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        check_once(w, &prev);
        pthread_mutex_lock(&w->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        const int64_t every = w->s->cfg.drift_every_ms;
        until.tv_sec += (time_t)(every / 1000);
        until.tv_nsec += (long)(every % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        while (!w->stop && pthread_cond_timedwait(&w->wake, &w->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

hearth_err srv_drift_watch_start(srv_server *s) {
    if (s->cfg.drift_every_ms <= 0) return HEARTH_OK;
    if (!s->ledger) return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --drift-every needs a ledger");
    struct srv_drift_watch *w = calloc(1, sizeof *w);
    if (!w) return hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    w->s = s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return hr_fail(HEARTH_ERR_NOMEM, "server: cannot start the drift watch");
    }
    s->drift = w;
    return HEARTH_OK;
}

void srv_drift_watch_stop(srv_server *s) {
    struct srv_drift_watch *w = s->drift;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
    s->drift = NULL;
}

static void gauge(gw_buf *out, const char *name, const char *help) {
    gw_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void value(gw_buf *out, double v) {
    if (isnan(v))
        gw_buf_puts(out, " NaN\n");
    else
        gw_buf_printf(out, " %.17g\n", v);
}

void srv_drift_watch_metrics(srv_server *s, gw_buf *out) {
    struct srv_drift_watch *w = s->drift;
    if (!w) return;
    drift_report *r = malloc(sizeof *r);
    if (!r) return;
    pthread_mutex_lock(&w->mu);
    const bool have = w->have;
    const int64_t at = w->at_ms;
    if (have) *r = w->last;
    pthread_mutex_unlock(&w->mu);
    if (have) {
        gauge(out, "hearth_drift_status",
              "worst signal of the last drift report: 0 insufficient, 1 stable, 2 warn, 3 drift");
        gw_buf_printf(out, "hearth_drift_status %d\n", (int)r->status);
        gauge(out, "hearth_drift_report_timestamp_seconds", "when the last drift report was built");
        gw_buf_printf(out, "hearth_drift_report_timestamp_seconds %.3f\n", (double)at / 1e3);
        gauge(out, "hearth_drift_signal_status",
              "a signal's drift status (as hearth_drift_status)");
        for (int k = 0; k < r->n_signals; k++)
            gw_buf_printf(out, "hearth_drift_signal_status{signal=\"%s\"} %d\n", r->signals[k].name,
                          (int)r->signals[k].status);
        gauge(out, "hearth_drift_psi",
              "a signal's population stability index, window vs reference");
        for (int k = 0; k < r->n_signals; k++) {
            gw_buf_printf(out, "hearth_drift_psi{signal=\"%s\"}", r->signals[k].name);
            value(out, r->signals[k].psi);
        }
        gauge(out, "hearth_drift_p_value", "a signal's KS or chi-square p-value");
        for (int k = 0; k < r->n_signals; k++) {
            gw_buf_printf(out, "hearth_drift_p_value{signal=\"%s\"}", r->signals[k].name);
            value(out, r->signals[k].p_value);
        }
    }
    free(r);
}
