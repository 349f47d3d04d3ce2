/*
 * api_gateway.c - the cascade gateway inside `hearth serve` (src/gateway/):
 * start-up (tiers from --config or --cloud-*, the ledger, the learned
 * router), POST /v1/chat/completions through the gateway, the
 * x-hearth-route / x-hearth-reason headers, GET /v1/hearth/stats, and one
 * ledger row per chat request.
 *
 * Three paths, chosen by the gateway's decision (gw_call_new):
 *   refused  an OpenAI error (403 privacy / air gap, 400 unknown tier);
 *   direct   the answer is the local model's alone (model "local", no remote
 *            tier, or a policy without the confidence check): srv_generate,
 *            exactly as without a gateway (logprobs, streaming, usage);
 *   cascade  gw_call_run with this file's local function (a srv_job in the
 *            scheduler): remote tiers, the confidence check, failover.
 *            Non-streaming, it runs in the connection's thread. Streaming,
 *            it runs in a worker thread; the handler waits until the gateway
 *            knows which tier answers (on_start) and then streams either the
 *            local job itself (its events carry logprobs) or a "bridge" job
 *            that the remote tier's restored text is appended to, through
 *            the same SSE writer (sse.c).
 *
 * Lifetime: a srv_gwreq is shared by the exchange (until libmicrohttpd
 * reports the request complete) and the worker (until gw_call_run returns).
 * Whoever lets go last writes the ledger row, so a row is written exactly
 * once, after the answer's fate is known, even when the client left early.
 */
#include "server.h"

#include "core/core.h"
#include "gateway/gateway.h"
#include "gateway/router.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct srv_gwreq {
    srv_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;        /* guarded by mu */
    srv_request req; /* the request, owned */
    int32_t *ids;    /* the prompt's tokens, owned */
    int n_ids;
    gw_message *msgs; /* point into req */
    gw_chat chat;
    gw_request greq;
    gw_call *call;
    bool direct;            /* answered by srv_generate: head + the exchange's counts */
    gw_response head;       /* the decision's head; for the cascade, from on_start */
    gw_response out;        /* the cascade's outcome */
    bool started, finished; /* streaming: on_start ran / gw_call_run returned */
    srv_job *bridge;        /* remote text for the SSE writer; its cancel flag is the request's */
    srv_job *local_job;     /* the local answer's job */
    int client_fd;
    int http_status; /* what the client got, from on_completed */
    int prompt_tokens, completion_tokens;
    srv_gwreq *next; /* the server's list of requests in flight */
};

/* ---- start-up and shut-down ------------------------------------------------- */

static bool router_score(void *ctx, const char *text, size_t len, double *score) {
    return rtr_score(ctx, text, len, score) == HEARTH_OK && isfinite(*score);
}

hearth_err srv_gateway_start(srv_server *s) {
    const srv_config *c = &s->cfg;
    gw_config gc;
    gw_config_init(&gc);
    hearth_err err = HEARTH_OK;
    if (c->gateway_config) err = gw_config_load(&gc, c->gateway_config);
    if (!err && c->cloud_url)
        err = gw_config_add_cloud(&gc, c->cloud_url, c->cloud_model, c->cloud_key_env,
                                  c->cloud_price);
    if (!err && !c->cloud_url && (c->cloud_model || c->cloud_key_env || c->cloud_price))
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "--cloud-model, --cloud-key-env and --cloud-price "
                                              "need --cloud-url");
    gc.air_gapped |= c->air_gapped;
    gc.ledger_prompts |= c->ledger_prompts;
    if (!err) err = gw_config_finish(&gc);
    if (!err) err = gw_ledger_open(c->ledger_path ? c->ledger_path : ":memory:", &s->ledger);
    if (!err && c->router_path) err = rtr_load(c->router_path, &s->router);
    if (!err) err = gw_gateway_new(&gc, s->ledger, &s->gw);
    gw_config_fini(&gc);
    if (err) {
        srv_gateway_stop(s);
        return hr_wrap(err, "gateway: ");
    }
    if (s->router) gw_gateway_set_router(s->gw, router_score, s->router, rtr_threshold(s->router));
    pthread_mutex_init(&s->gw_mu, NULL);
    s->gw_mu_ready = true;
    return HEARTH_OK;
}

static void wait_workers(srv_server *s) {
    while (atomic_load(&s->gw_workers) > 0) {
        const struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void srv_gateway_quiesce(srv_server *s) {
    if (!s->gw_mu_ready) return;
    /* refuse new requests, ask every one in flight to stop, wait for the
     * cascade threads (remote calls notice within 20 ms) */
    pthread_mutex_lock(&s->gw_mu);
    s->gw_closing = true;
    for (srv_gwreq *q = s->gw_active; q; q = q->next) atomic_store(&q->bridge->cancel, true);
    pthread_mutex_unlock(&s->gw_mu);
    wait_workers(s);
}

void srv_gateway_stop(srv_server *s) {
    if (s->gw_mu_ready)
        wait_workers(s); /* one may have started during the daemon's last requests */
    gw_gateway_free(s->gw);
    gw_ledger_close(s->ledger);
    rtr_free(s->router);
    s->gw = NULL;
    s->ledger = NULL;
    s->router = NULL;
    if (s->gw_mu_ready) pthread_mutex_destroy(&s->gw_mu);
    s->gw_mu_ready = false;
}

/* ---- the request state ---------------------------------------------------------- */

static void job_retain(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

static void unlink_req(srv_gwreq *q) {
    srv_server *s = q->srv;
    pthread_mutex_lock(&s->gw_mu);
    for (srv_gwreq **p = &s->gw_active; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            break;
        }
    pthread_mutex_unlock(&s->gw_mu);
}

/* The last reference writes the ledger row and frees. */
static void release(srv_gwreq *q) {
    pthread_mutex_lock(&q->mu);
    const int left = --q->refs;
    pthread_mutex_unlock(&q->mu);
    if (left > 0) return;
    unlink_req(q);
    if (q->call) {
        gw_response *r = q->direct ? &q->head : &q->out;
        if (q->direct && !q->head.error[0]) {
            r->status = q->http_status;
            r->prompt_tokens = q->prompt_tokens;
            r->completion_tokens = q->completion_tokens;
        }
        if (r->status == 200 && q->http_status == 499) r->status = 499;
        gw_call_finish(q->call, r);
        gw_call_free(q->call);
    }
    gw_response_free(&q->out);
    srv_job_release(q->bridge);
    srv_job_release(q->local_job);
    srv_request_free(&q->req);
    free(q->ids);
    free(q->msgs);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static const char *role_name(tok_chat_role r) {
    return r == TOK_CHAT_SYSTEM ? "system" : r == TOK_CHAT_ASSISTANT ? "assistant" : "user";
}

/* What the client set explicitly (the parsed request holds defaults). */
static double body_number(const srv_exchange *x, const char *key) {
    cJSON *o = cJSON_ParseWithLength(x->body, x->body_len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(o);
    return d;
}

/* ---- the local tier for the cascade -------------------------------------------- */

/* Appends text to the bridge job as one event (id -1: text without a token). */
static bool bridge_append(srv_job *j, const char *text, size_t len) {
    pthread_mutex_lock(&j->mu);
    bool ok = true;
    if (j->n_events == j->cap_events) {
        const int cap = j->cap_events ? j->cap_events * 2 : 64;
        srv_event *ne = realloc(j->events, (size_t)cap * sizeof *ne);
        if (ne) {
            j->events = ne;
            j->cap_events = cap;
        }
        ok = ne != NULL;
    }
    if (ok && j->text_len + len + 1 > j->text_cap) {
        size_t cap = j->text_cap ? j->text_cap : 1024;
        while (cap < j->text_len + len + 1) cap *= 2;
        char *nt = realloc(j->text, cap);
        if (nt) {
            j->text = nt;
            j->text_cap = cap;
        }
        ok = nt != NULL;
    }
    if (ok) {
        srv_event *e = &j->events[j->n_events++];
        memset(e, 0, sizeof *e);
        e->id = -1;
        e->text_off = j->text_len;
        e->text_len = len;
        memcpy(j->text + j->text_len, text, len);
        j->text_len += len;
        j->text[j->text_len] = '\0';
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return ok && !atomic_load(&j->cancel);
}

static void fail_local(gw_local_result *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_local(gw_local_result *out, int status, const char *fmt, ...) {
    out->ok = false;
    out->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
}

static srv_job *local_job_new(srv_gwreq *q) {
    const srv_request *r = &q->req;
    srv_job *j = srv_job_new(q->ids, q->n_ids);
    if (!j) return NULL;
    j->sampling = r->sampling;
    j->max_tokens = r->max_tokens > 0 ? r->max_tokens : 0;
    for (int i = 0; i < r->n_stop; i++) {
        if (!(j->stop[i] = strdup(r->stop[i]))) {
            srv_job_release(j);
            return NULL;
        }
        j->n_stop = i + 1;
    }
    j->n_top = r->logprobs ? r->top_logprobs : 0;
    if (q->srv->cfg.timeout_s > 0) j->deadline_ms = srv_now_ms() + 1e3 * q->srv->cfg.timeout_s;
    return j;
}

/* Waits for the job, handing new text to cb; cancels it when the request
 * should stop. */
static void follow(srv_gwreq *q, srv_job *j, gw_text_cb cb, void *user) {
    int next = 0;
    gw_buf pending = {0};
    pthread_mutex_lock(&j->mu);
    for (;;) {
        pending.len = 0;
        for (; next < j->n_events; next++)
            if (j->events[next].text_len)
                gw_buf_put(&pending, j->text + j->events[next].text_off, j->events[next].text_len);
        const bool done = j->state == SRV_JOB_DONE;
        pthread_mutex_unlock(&j->mu);
        bool stop = atomic_load(&q->bridge->cancel) || srv_client_gone(q->client_fd);
        if (cb && pending.len && !cb(pending.data, pending.len, user)) stop = true;
        if (stop && !done) srv_sched_cancel(q->srv->sched, j);
        pthread_mutex_lock(&j->mu);
        if (done) break;
        if (next == j->n_events && j->state != SRV_JOB_DONE) srv_wait_ms(&j->cv, &j->mu, 100);
    }
    pthread_mutex_unlock(&j->mu);
    gw_buf_free(&pending);
}

/* gw_local_fn: the request's prompt through the scheduler. */
static void local_fn(void *ctx, const gw_chat *req, gw_text_cb cb, void *user,
                     gw_local_result *out) {
    (void)req; /* the prompt was rendered and tokenized from the same messages */
    srv_gwreq *q = ctx;
    srv_server *s = q->srv;
    const int n_ctx = srv_sched_n_ctx(s->sched);
    if (q->n_ids >= n_ctx) {
        fail_local(out, 400,
                   "the prompt has %d tokens but a slot's context holds %d (at least one must be "
                   "left to generate); shorten the prompt or start the server with a larger --ctx",
                   q->n_ids, n_ctx);
        return;
    }
    srv_job *j = local_job_new(q);
    if (!j) {
        fail_local(out, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&q->mu);
    srv_job_release(q->local_job);
    q->local_job = j; /* the request's reference */
    pthread_mutex_unlock(&q->mu);
    if (!srv_sched_submit(s->sched, j)) {
        int queued, busy, slots;
        srv_sched_stats(s->sched, &queued, &busy, &slots);
        fail_local(out, 503, "all %d slots are busy and %d requests are waiting; retry later",
                   slots, queued);
        return;
    }
    follow(q, j, cb, user);
    pthread_mutex_lock(&j->mu);
    if (j->err) {
        fail_local(out, j->err == HEARTH_ERR_CONTEXT_FULL ? 400 : 500, "generation failed: %s",
                   j->err_msg);
    } else if (atomic_load(&j->cancel) && j->result.finish == HEARTH_FINISH_CALLBACK) {
        fail_local(out, 499, "the request was cancelled");
    } else {
        out->ok = true;
        out->text = malloc(j->text_len + 1);
        out->logprobs = malloc((size_t)(j->n_events + 1) * sizeof *out->logprobs);
        if (!out->text || !out->logprobs) {
            fail_local(out, 500, "out of memory");
        } else {
            memcpy(out->text, j->text ? j->text : "", j->text_len);
            out->text[j->text_len] = '\0';
            out->text_len = j->text_len;
            for (int i = 0; i < j->n_events; i++)
                if (j->events[i].id >= 0) out->logprobs[out->n_logprobs++] = j->events[i].logprob;
            out->prompt_tokens = j->result.n_prompt + j->result.n_cached;
            out->completion_tokens = j->result.n_gen;
            snprintf(out->finish_reason, sizeof out->finish_reason, "%s", srv_finish_reason(j));
        }
    }
    pthread_mutex_unlock(&j->mu);
}

/* ---- responses ------------------------------------------------------------------ */

/* A header value: printable ASCII only (a remote error may hold anything). */
static void add_headers(srv_exchange *x, const gw_response *h) {
    if (!x->response) return;
    char reason[sizeof h->reason];
    size_t n = 0;
    for (const char *p = h->reason; *p && n + 1 < sizeof reason; p++)
        reason[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    reason[n] = '\0';
    MHD_add_response_header(x->response, "x-hearth-route", h->tier[0] ? h->tier : "none");
    MHD_add_response_header(x->response, "x-hearth-reason", reason);
}

static void respond_refusal(srv_exchange *x, const gw_response *h) {
    srv_error e;
    const char *code = h->status == 403
                           ? (strstr(h->reason, "air-gapped") ? "air_gapped" : "privacy_blocked")
                           : "unknown_tier";
    srv_fail(&e, h->status, h->status == 400 ? "model" : NULL, code, "%s", h->error);
    srv_respond_error(x, &e);
}

/* chat.completion for an answer from a remote tier. */
static char *remote_json(srv_gwreq *q, const gw_response *o) {
    const gw_config *c = gw_gateway_config(q->srv->gw);
    const int t = gw_config_tier(c, o->tier);
    char id[64];
    srv_make_id(SRV_CHAT, id, sizeof id);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", id);
    cJSON_AddStringToObject(root, "object", "chat.completion");
    cJSON_AddNumberToObject(root, "created", (double)time(NULL));
    cJSON_AddStringToObject(root, "model", t > 0 ? c->tiers[t].model : o->tier);
    cJSON_AddNullToObject(root, "system_fingerprint");
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", o->text ? o->text : "");
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason",
                            o->finish_reason[0] ? o->finish_reason : "stop");
    cJSON *u = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", o->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", o->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", o->prompt_tokens + o->completion_tokens);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static void respond_outcome(srv_exchange *x, srv_gwreq *q) {
    const gw_response *o = &q->out;
    srv_error e;
    if (o->status != 200) {
        srv_fail(&e, o->status, NULL, o->status == 503 ? "server_busy" : NULL, "%s", o->error);
        srv_respond_error(x, &e);
        add_headers(x, o);
        return;
    }
    char *body = NULL;
    if (!strcmp(o->tier, "local") && q->local_job) {
        const srv_gen g = {.kind = SRV_CHAT, .req = &q->req, .ids = q->ids, .n_ids = q->n_ids};
        body = srv_response_json(q->srv, &g, q->local_job);
    } else {
        body = remote_json(q, o);
    }
    if (!body) {
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return;
    }
    x->prompt_tokens = o->prompt_tokens;
    x->completion_tokens = o->completion_tokens;
    srv_respond_json(x, 200, body);
    add_headers(x, o);
}

/* ---- streaming: the worker and the bridge ----------------------------------------- */

static bool stream_text(const char *text, size_t len, void *user) {
    srv_gwreq *q = user;
    return bridge_append(q->bridge, text, len);
}

static void stream_start(const gw_response *head, void *user) {
    srv_gwreq *q = user;
    pthread_mutex_lock(&q->mu);
    q->head = *head;
    q->head.text = NULL;
    q->started = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void *worker_main(void *arg) {
    srv_gwreq *q = arg;
    gw_call_run(q->call, local_fn, q, &q->out);
    srv_job *b = q->bridge;
    pthread_mutex_lock(&b->mu);
    b->result.n_prompt = q->out.prompt_tokens;
    b->result.n_gen = q->out.completion_tokens;
    b->result.finish =
        !strcmp(q->out.finish_reason, "length") ? HEARTH_FINISH_LENGTH : HEARTH_FINISH_STOP;
    if (q->out.status != 200) {
        b->err = HEARTH_ERR_IO;
        snprintf(b->err_msg, sizeof b->err_msg, "%s", q->out.error);
    }
    b->state = SRV_JOB_DONE;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_lock(&q->mu);
    q->finished = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    srv_server *s = q->srv;
    release(q);
    atomic_fetch_sub(&s->gw_workers, 1);
    return NULL;
}

/* Starts the worker and waits until the answer's tier is known. */
static void cascade_stream(srv_exchange *x, srv_gwreq *q) {
    srv_server *s = x->srv;
    q->greq.cb = stream_text;
    q->greq.user = q;
    q->greq.on_start = stream_start;
    /* once the handler returns, the connection's descriptor may be closed and
     * reused: the worker learns of a departed client from the bridge's
     * cancel flag (set by the SSE writer) instead */
    q->client_fd = -1;
    q->refs++; /* the worker's */
    atomic_fetch_add(&s->gw_workers, 1);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, worker_main, q) != 0) {
        pthread_attr_destroy(&attr);
        atomic_fetch_sub(&s->gw_workers, 1);
        q->refs--;
        q->out.status = 500;
        snprintf(q->out.error, sizeof q->out.error, "cannot start a thread");
        respond_outcome(x, q);
        return;
    }
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&q->mu);
    while (!q->started && !q->finished) {
        srv_wait_ms(&q->cv, &q->mu, 100);
        if (!q->started && !q->finished && srv_client_gone(x->client_fd))
            atomic_store(&q->bridge->cancel, true);
    }
    const bool started = q->started;
    pthread_mutex_unlock(&q->mu);
    if (!started) { /* finished without an answer: an error, as JSON */
        respond_outcome(x, q);
        return;
    }
    srv_job *j = !strcmp(q->head.tier, "local") && q->local_job ? q->local_job : q->bridge;
    job_retain(j); /* srv_stream_start takes this reference over */
    char id[64];
    srv_make_id(SRV_CHAT, id, sizeof id);
    srv_stream_start(x, SRV_CHAT, &q->req, j, id, (int64_t)time(NULL));
    add_headers(x, &q->head);
}

/* ---- POST /v1/chat/completions ----------------------------------------------------- */

void srv_gateway_chat(srv_exchange *x, srv_request *r, int32_t **ids, int n_ids) {
    srv_server *s = x->srv;
    srv_error e;
    srv_gwreq *q = calloc(1, sizeof *q);
    gw_message *msgs = calloc((size_t)r->n_messages + 1, sizeof *msgs);
    srv_job *bridge = srv_job_new(NULL, 0);
    if (!q || !msgs || !bridge) {
        free(q);
        free(msgs);
        srv_job_release(bridge);
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return;
    }
    q->srv = s;
    q->refs = 1; /* the exchange's */
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->bridge = bridge;
    q->client_fd = x->client_fd;
    q->req = *r; /* taken over: the caller's copy is emptied */
    *r = (srv_request){0};
    q->ids = *ids;
    *ids = NULL;
    q->n_ids = n_ids;
    q->msgs = msgs;
    for (int i = 0; i < q->req.n_messages; i++)
        msgs[i] = (gw_message){role_name(q->req.messages[i].role), q->req.messages[i].content};
    q->chat = (gw_chat){.messages = msgs,
                        .n_messages = q->req.n_messages,
                        .max_tokens = q->req.max_tokens > 0 ? q->req.max_tokens : 0,
                        .temperature = body_number(x, "temperature"),
                        .top_p = body_number(x, "top_p"),
                        .stop = (const char *const *)q->req.stop,
                        .n_stop = q->req.n_stop,
                        .stream = q->req.stream,
                        .cancel = &bridge->cancel};
    q->greq = (gw_request){.chat = &q->chat,
                           .model = q->req.model,
                           .tier_header = x->tier_header[0] ? x->tier_header : NULL,
                           .task_header = x->task_header[0] ? x->task_header : NULL};
    if (gw_call_new(s->gw, &q->greq, &q->call) != HEARTH_OK) {
        srv_fail(&e, 500, NULL, NULL, "gateway: %s", hearth_last_error());
        srv_respond_error(x, &e);
        release(q);
        return;
    }
    pthread_mutex_lock(&s->gw_mu);
    const bool closing = s->gw_closing;
    if (!closing) {
        q->next = s->gw_active;
        s->gw_active = q;
    }
    pthread_mutex_unlock(&s->gw_mu);
    if (closing) {
        gw_call_free(q->call);
        q->call = NULL;
        release(q);
        srv_fail(&e, 503, NULL, "shutting_down", "the server is shutting down");
        srv_respond_error(x, &e);
        return;
    }
    x->gw = q;
    gw_call_head(q->call, &q->head);
    if (q->head.status) { /* refused */
        q->direct = true;
        respond_refusal(x, &q->head);
        add_headers(x, &q->head);
    } else if (gw_call_direct_local(q->call)) {
        q->direct = true;
        const srv_gen g = {.kind = SRV_CHAT, .req = &q->req, .ids = q->ids, .n_ids = q->n_ids};
        srv_generate(x, &g);
        add_headers(x, &q->head);
    } else if (q->req.stream) {
        cascade_stream(x, q);
    } else {
        gw_call_run(q->call, local_fn, q, &q->out);
        respond_outcome(x, q);
    }
}

void srv_gateway_completed(srv_exchange *x) {
    srv_gwreq *q = x->gw;
    if (!q) return;
    x->gw = NULL;
    q->http_status = x->status;
    q->prompt_tokens = x->prompt_tokens;
    q->completion_tokens = x->completion_tokens;
    release(q);
}

/* ---- GET /v1/hearth/stats ---------------------------------------------------------- */

void srv_handle_stats(srv_exchange *x) {
    srv_server *s = x->srv;
    gw_stats st;
    srv_error e;
    if (!s->ledger || gw_ledger_stats(s->ledger, 0, &st) != HEARTH_OK) {
        srv_fail(&e, 500, NULL, NULL, "ledger: %s", hearth_last_error());
        srv_respond_error(x, &e);
        return;
    }
    char *json = gw_stats_json(&st);
    if (!json) {
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return;
    }
    srv_respond_json(x, 200, json);
}
