/*
 * api_gateway.c - the cascade gateway inside `hearth serve` (src/gateway/):
 * start-up (tiers from --config or --cloud-*, the ledger, the learned
 * router), POST /v1/chat/completions and /v1/completions through the
 * gateway, the x-hearth-route / x-hearth-reason headers, GET
 * /v1/hearth/stats, and one ledger row per generation request.
 *
 * Both routes take the same path: a completion is, to the gateway, a chat of
 * one user message holding its prompt (what the privacy guard scans, the
 * policy reads and a remote tier receives on its chat endpoint); its answer
 * keeps the text_completion shape (api_gen.c and sse.c write both kinds).
 *
 * Three paths, chosen by the gateway's decision (gw_call_new):
 *   refused  an OpenAI error (403 privacy / air gap / a tier the API key may
 *            not use, 429 the key's budget is spent, 400 unknown tier);
 *   direct   the answer is the local model's alone (model "local", no remote
 *            tier, or a policy without the confidence check): srv_generate,
 *            exactly as without a gateway (logprobs, streaming, usage, n
 *            choices);
 *   cascade  gw_call_run with this file's local function (a srv_job in the
 *            scheduler): remote tiers, the confidence check, failover.
 *            Non-streaming, it runs in the connection's thread. Streaming,
 *            it runs in a worker thread; the handler waits until the gateway
 *            knows which tier answers (on_start) and then streams either the
 *            local job itself (its events carry logprobs) or a "bridge" job
 *            that the remote tier's restored text is appended to, its
 *            reasoning as the job's reasoning (so every API writes it as it
 *            writes a local model's <think> block; inline in <think> tags
 *            where a local reply keeps the block in its text: completions,
 *            reasoning_format none), and its tool calls as data
 *            (srv_job.remote_calls, with the tier's ids), through the same
 *            SSE writer (sse.c). A request with n > 1 is refused
 *            here (400 naming n): the cascade follows one local answer and
 *            a remote tier's client reads one choice, and fewer choices than
 *            asked must not come back silently; so is a completion with
 *            several prompts (400 naming prompt), whose text the gateway
 *            reads joined. So is a GBNF grammar (400
 *            naming grammar): no remote tier can be held to one.
 *
 * logit_bias holds token ids of the local model's vocabulary: it biases the
 * local generation only and is never sent to a remote tier (gw_chat has no
 * such field), whose answer does not follow it.
 *
 * Lifetime: a srv_gwreq is shared by the exchange (until libmicrohttpd
 * reports the request complete) and the worker (until gw_call_run returns).
 * Whoever lets go last writes the ledger row, so a row is written exactly
 * once, after the answer's fate is known, even when the client left early.
 */
#include "server.h"
#include "tools.h"

#include "core/core.h"
#include "gateway/gateway.h"
#include "gateway/router.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct srv_gwreq {
    srv_server *srv;
    srv_model *model; /* the local model, a reference of the request's own */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;        /* guarded by mu */
    srv_request req; /* the request, owned */
    int32_t *ids;    /* the prompt's tokens, owned */
    int n_ids;
    srv_gen gen;                   /* kind, req, ids and echo for api_gen.c / sse.c */
    gw_message *msgs;              /* point into req (or prompt_text) */
    gw_chat_tools tools;           /* chat.tools when the chat has any */
    gw_msg_tools *msg_tools;       /* per message; tool_call_id points into req */
    gw_msg_thinking *msg_thinking; /* per message: its replayed thinking blocks (in req) */
    char **calls_json; /* [n_calls_json]: each message's tool_calls as OpenAI's JSON, owned */
    int n_calls_json;
    char *prompt_text; /* a token-id completion's prompt as text, owned */
    gw_chat chat;
    gw_request greq;
    gw_call *call;
    bool direct;            /* answered by srv_generate: head + the exchange's counts */
    gw_response head;       /* the decision's head; for the cascade, from on_start */
    gw_response out;        /* the cascade's outcome */
    bool started, finished; /* streaming: on_start ran / gw_call_run returned */
    srv_job *bridge;        /* remote text for the SSE writer; its cancel flag is the request's */
    bool inline_think;      /* a remote tier's reasoning goes into the text in <think> tags ... */
    bool think_open;        /* ... and such a block is open (bridge's mu) */
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
    const char *why;
    const int skipped = gw_keys_skipped(gw_gateway_keys(s->gw), &why);
    if (skipped) srv_say(s, "warning: %d API key(s) in the ledger left out (%s)", skipped, why);
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
    srv_model_release(q->model, SRV_KEEP_ALIVE_NONE);
    free(q->ids);
    free(q->msgs);
    for (int i = 0; i < q->n_calls_json; i++) cJSON_free(q->calls_json[i]);
    free(q->calls_json);
    free(q->msg_tools);
    free(q->msg_thinking);
    free(q->prompt_text);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static const char *role_name(tok_chat_role r) {
    return r == TOK_CHAT_SYSTEM      ? "system"
           : r == TOK_CHAT_ASSISTANT ? "assistant"
           : r == TOK_CHAT_TOOL      ? "tool"
                                     : "user";
}

/* An assistant message's calls as OpenAI's tool_calls array (arguments a
 * JSON string), for a remote tier; NULL when out of memory. */
static char *calls_json(const srv_message *m) {
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (int c = 0; ok && c < m->n_tool_calls; c++) {
        cJSON *call = cJSON_CreateObject();
        ok = call && cJSON_AddItemToArray(a, call);
        cJSON *fn = ok ? cJSON_AddObjectToObject(call, "function") : NULL;
        ok = fn && cJSON_AddStringToObject(call, "id", m->tool_calls[c].id) &&
             cJSON_AddStringToObject(call, "type", "function") &&
             cJSON_AddStringToObject(fn, "name", m->tool_calls[c].name) &&
             cJSON_AddStringToObject(fn, "arguments", m->tool_calls[c].arguments);
    }
    char *text = ok ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return text;
}

/* The chat's tools, calls and results for the remote tiers (chat.tools). */
static bool gateway_tools_init(srv_gwreq *q) {
    const srv_request *r = &q->req;
    bool any = r->tools != NULL;
    for (int i = 0; i < r->n_messages; i++)
        any |= r->messages[i].n_tool_calls > 0 || r->messages[i].tool_call_id;
    if (!any) return true;
    q->msg_tools = calloc((size_t)r->n_messages, sizeof *q->msg_tools);
    q->calls_json = calloc((size_t)r->n_messages, sizeof *q->calls_json);
    if (!q->msg_tools || !q->calls_json) return false;
    q->n_calls_json = r->n_messages;
    for (int i = 0; i < r->n_messages; i++) {
        const srv_message *m = &r->messages[i];
        if (m->n_tool_calls && !(q->calls_json[i] = calls_json(m))) return false;
        q->msg_tools[i] = (gw_msg_tools){q->calls_json[i], m->tool_call_id};
    }
    static const char *const choice[] = {[SRV_TOOL_AUTO] = NULL,
                                         [SRV_TOOL_NONE] = "none",
                                         [SRV_TOOL_REQUIRED] = "required",
                                         [SRV_TOOL_NAMED] = NULL};
    q->tools =
        (gw_chat_tools){.tools = r->tools,
                        .tool_choice = r->tool_choice == SRV_TOOL_NAMED ? r->tool_choice_name
                                                                        : choice[r->tool_choice],
                        .named_choice = r->tool_choice == SRV_TOOL_NAMED,
                        .parallel_tool_calls = r->parallel_tool_calls,
                        .msgs = q->msg_tools};
    q->chat.tools = &q->tools;
    return true;
}

/* ---- the local tier for the cascade -------------------------------------------- */

/* Ends an inline <think> block before the answer's text, as a reasoning
 * model writes it (bridge's mu held). */
static bool close_think(srv_gwreq *q) {
    static const char close[] = "\n</think>\n\n";
    if (!q->think_open) return true;
    q->think_open = false;
    return srv_job_append(q->bridge, NULL, close, sizeof close - 1, false);
}

/* Appends text to the bridge job as one event (id -1: text without a token). */
static bool bridge_append(srv_gwreq *q, const char *text, size_t len) {
    srv_job *j = q->bridge;
    pthread_mutex_lock(&j->mu);
    const bool ok = close_think(q) && srv_job_append(j, NULL, text, len, false);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return ok && !atomic_load(&j->cancel);
}

/* Appends a remote tier's reasoning to the bridge job: as its reasoning, or
 * inline, after "<think>\n" when no block is open. */
static bool bridge_reason(srv_gwreq *q, const char *text, size_t len) {
    static const char open[] = "<think>\n";
    srv_job *j = q->bridge;
    if (!len) return !atomic_load(&j->cancel);
    pthread_mutex_lock(&j->mu);
    bool ok;
    if (!q->inline_think) {
        ok = srv_job_append_reasoning(j, text, len);
    } else {
        ok = q->think_open || srv_job_append(j, NULL, open, sizeof open - 1, false);
        q->think_open = true;
        ok = ok && srv_job_append(j, NULL, text, len, false);
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return ok && !atomic_load(&j->cancel);
}

/* The cascade's outcome (usage, finish reason, error) onto the bridge job,
 * which is then done. */
static void bridge_finish(srv_gwreq *q) {
    srv_job *b = q->bridge;
    pthread_mutex_lock(&b->mu);
    close_think(q); /* an answer cut inside its reasoning */
    b->result.n_prompt = q->out.prompt_tokens;
    b->result.n_gen = q->out.completion_tokens;
    b->reasoning_tokens = q->out.reasoning_tokens;
    b->result.finish =
        !strcmp(q->out.finish_reason, "length") ? HEARTH_FINISH_LENGTH : HEARTH_FINISH_STOP;
    if (q->out.status != 200) {
        b->err = HEARTH_ERR_IO;
        snprintf(b->err_msg, sizeof b->err_msg, "%s", q->out.error);
    }
    b->state = SRV_JOB_DONE;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
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
        if (stop && !done) srv_sched_cancel(q->model->sched, j);
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
    srv_sched *sched = q->model->sched;
    const int n_ctx = srv_sched_n_ctx(sched);
    if (q->n_ids >= n_ctx) {
        fail_local(out, 400,
                   "the prompt has %d tokens but a slot's context holds %d (at least one must be "
                   "left to generate); shorten the prompt or start the server with a larger --ctx",
                   q->n_ids, n_ctx);
        return;
    }
    srv_job *j = srv_job_for(q->srv, &q->gen);
    if (!j) {
        fail_local(out, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&q->mu);
    srv_job_release(q->local_job);
    q->local_job = j; /* the request's reference */
    pthread_mutex_unlock(&q->mu);
    if (!srv_sched_submit(sched, j)) {
        int queued, busy, slots;
        srv_sched_stats(sched, &queued, &busy, &slots);
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
            /* the confidence is the answer's: a <think> block's tokens explore */
            for (int i = 0; i < j->n_events; i++)
                if (j->events[i].id >= 0 && !j->events[i].thought)
                    out->logprobs[out->n_logprobs++] = j->events[i].logprob;
            out->prompt_tokens = j->result.n_prompt + j->result.n_cached;
            out->completion_tokens = j->result.n_gen;
            snprintf(out->finish_reason, sizeof out->finish_reason, "%s", srv_finish_reason(j));
        }
    }
    pthread_mutex_unlock(&j->mu);
}

/* Whether the request's header name holds the directive word (any case). */
static bool header_says(const srv_exchange *x, const char *name, const char *word) {
    const char *h = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, name);
    const size_t n = strlen(word);
    for (; h && *h; h++)
        if (!strncasecmp(h, word, n)) return true;
    return false;
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
    if (h->cached) MHD_add_response_header(x->response, "x-hearth-cache", "hit");
}

static void respond_refusal(srv_exchange *x, const gw_response *h) {
    srv_error e;
    const char *code = h->status == 429   ? "insufficient_quota" /* the key's budget */
                       : h->status == 400 ? "unknown_tier"
                       : strstr(h->reason, "air-gapped") ? "air_gapped"
                       : !strncmp(h->reason, "key ", 4)  ? "tier_not_allowed"
                                                         : "privacy_blocked";
    srv_fail(&e, h->status, h->status == 400 ? "model" : NULL, code, "%s", h->error);
    srv_respond_error(x, &e);
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
        body = srv_response_json(&q->gen, q->local_job);
    } else { /* the remote text, through the bridge as a stream would have it */
        srv_gen g = q->gen;
        const gw_config *c = gw_gateway_config(q->srv->gw);
        const int t = gw_config_tier(c, o->tier);
        g.model = t > 0 ? c->tiers[t].model : o->tier;
        if (!q->req.stream && o->reasoning) bridge_reason(q, o->reasoning, o->reasoning_len);
        for (int k = 0; !q->req.stream && k < o->n_thinking; k++)
            srv_job_thinking(q->bridge, &o->thinking[k]);
        if (!q->req.stream && o->text) bridge_append(q, o->text, o->text_len);
        for (int k = 0; !q->req.stream && k < o->n_calls; k++)
            srv_tools_job_call(q->bridge, o->calls[k].id, o->calls[k].name, o->calls[k].arguments);
        bridge_finish(q);
        body = srv_response_json(&g, q->bridge);
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
    return bridge_append(user, text, len);
}

static bool stream_reasoning(const char *text, size_t len, void *user) {
    return bridge_reason(user, text, len);
}

/* A remote tier's thinking block, as it sent it, onto the bridge job. */
static bool stream_thinking(const gw_thinking_block *b, void *user) {
    srv_gwreq *q = user;
    return srv_job_thinking(q->bridge, b) && !atomic_load(&q->bridge->cancel);
}

/* A remote tier's tool call, as data onto the bridge job. */
static bool stream_call(const gw_tool_call *c, void *user) {
    srv_gwreq *q = user;
    return srv_tools_job_call(q->bridge, c->id, c->name, c->arguments) &&
           !atomic_load(&q->bridge->cancel);
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
    bridge_finish(q);
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
    q->greq.on_call = stream_call;
    q->greq.on_reasoning = stream_reasoning;
    q->greq.on_thinking = stream_thinking;
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
    if (j == q->bridge) { /* an Anthropic tier's reasoning is all in its signed blocks */
        const gw_config *c = gw_gateway_config(s->gw);
        const int t = gw_config_tier(c, q->head.tier);
        pthread_mutex_lock(&j->mu);
        j->signed_thinking = t > 0 && c->tiers[t].kind == GW_TIER_ANTHROPIC && !q->head.cached;
        pthread_mutex_unlock(&j->mu);
    }
    job_retain(j); /* srv_stream_start takes this reference over */
    char id[64];
    srv_make_id(q->req.kind, id, sizeof id);
    srv_stream_start(x, q->req.kind, &q->req, j, id, (int64_t)time(NULL));
    add_headers(x, &q->head);
}

/* ---- POST /v1/chat/completions and /v1/completions ------------------------------ */

char *srv_ids_text(const srv_model *m, const int32_t *ids, int n) {
    size_t need = 0;
    const hearth_err err = hearth_detokenize(m->model, ids, (size_t)n, false, NULL, 0, &need);
    if ((err && err != HEARTH_ERR_INVALID_ARG) || need > SIZE_MAX / 4) need = 0;
    char *raw = malloc(need + 1), *text = malloc(3 * need + 1);
    if (raw && text && need && hearth_detokenize(m->model, ids, (size_t)n, false, raw, need, &need))
        need = 0;
    if (raw && text) srv_utf8_clean(raw, need, text);
    free(raw);
    if (!raw) {
        free(text);
        return NULL;
    }
    return text;
}

/* The request as the gateway sees it: a chat's messages, or a completion's
 * prompt as one user message. False when out of memory. */
static bool gateway_chat_init(srv_gwreq *q, const srv_exchange *x) {
    const srv_request *r = &q->req;
    const int n = r->kind == SRV_CHAT ? r->n_messages : 1;
    if (!(q->msgs = calloc((size_t)n + 1, sizeof *q->msgs))) return false;
    if (r->kind == SRV_CHAT) {
        bool thinking = false;
        for (int i = 0; i < n; i++) {
            q->msgs[i] = (gw_message){role_name(r->messages[i].role), r->messages[i].content};
            thinking |= r->messages[i].n_thinking > 0;
        }
        /* thinking_blocks sent back: for an Anthropic tier (cloud_tools.c) */
        if (thinking && !(q->msg_thinking = calloc((size_t)n, sizeof *q->msg_thinking)))
            return false;
        for (int i = 0; thinking && i < n; i++)
            q->msg_thinking[i] =
                (gw_msg_thinking){r->messages[i].thinking, r->messages[i].n_thinking};
    } else { /* token ids, or several prompts: the text of them all */
        if ((!r->prompt || srv_n_prompts(r) > 1) &&
            !(q->prompt_text = srv_completion_text(q->model, r, q->ids, q->n_ids)))
            return false;
        q->msgs[0] = (gw_message){"user", q->prompt_text ? q->prompt_text : r->prompt};
    }
    const int max_tokens = srv_max_tokens(r);
    const srv_config *cfg = &q->srv->cfg;
    const int think = r->think >= 0 ? r->think : cfg->reasoning;
    const int budget = r->reasoning_budget >= 0 ? r->reasoning_budget : cfg->reasoning_budget;
    const srv_reasoning_format f =
        r->reasoning_format ? r->reasoning_format : cfg->reasoning_format;
    q->inline_think = r->kind != SRV_CHAT || f == SRV_REASONING_NONE;
    q->chat = (gw_chat){.messages = q->msgs,
                        .n_messages = n,
                        .max_tokens = max_tokens > 0 ? max_tokens : 0,
                        .temperature = r->given_temperature,
                        .top_p = r->given_top_p,
                        .stop = (const char *const *)r->stop,
                        .n_stop = r->n_stop,
                        .json_object = r->sampling.constraint == HEARTH_CONSTRAINT_JSON_OBJECT,
                        .response_format = r->response_format,
                        .stream = r->stream,
                        .reasoning_effort = r->reasoning_effort[0] ? r->reasoning_effort : NULL,
                        .thinking = r->kind == SRV_CHAT && think == 1,
                        /* a budget of 0 asks for the least a tier allows */
                        .thinking_budget = budget < 0   ? 0
                                           : budget > 0 ? budget
                                                        : 1,
                        .cancel = &q->bridge->cancel};
    q->chat.thinking_blocks = q->msg_thinking;
    if (r->kind == SRV_CHAT && !gateway_tools_init(q)) return false;
    q->greq = (gw_request){.chat = &q->chat,
                           .model = r->model,
                           .tier_header = x->tier_header[0] ? x->tier_header : NULL,
                           .task_header = x->task_header[0] ? x->task_header : NULL,
                           .key = x->key,
                           .no_cache = header_says(x, "Cache-Control", "no-cache"),
                           .no_store = header_says(x, "Cache-Control", "no-store")};
    size_t echo_len;
    const char *echo = srv_request_echo(r, &echo_len);
    q->gen = (srv_gen){.kind = r->kind,
                       .req = r,
                       .ids = q->ids,
                       .n_ids = q->n_ids,
                       .echo_text = echo,
                       .echo_len = echo_len,
                       .local = q->model};
    return true;
}

void srv_gateway_route(srv_exchange *x, srv_request *r, int32_t **ids, int n_ids) {
    srv_server *s = x->srv;
    srv_error e;
    srv_gwreq *q = calloc(1, sizeof *q);
    srv_job *bridge = srv_job_new(NULL, 0);
    /* a remote answer's tool calls come as data (tools.h) */
    if (bridge) bridge->remote_calls = calloc(1, sizeof *bridge->remote_calls);
    if (!q || !bridge || !bridge->remote_calls) {
        free(q);
        srv_job_release(bridge);
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return;
    }
    q->srv = s;
    q->model = x->model;
    srv_model_retain(q->model);
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
    if (!gateway_chat_init(q, x)) {
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        release(q);
        return;
    }
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
        srv_generate(x, &q->gen);
        add_headers(x, &q->head);
    } else if (srv_n_choices(&q->req) > 1 || srv_n_prompts(&q->req) > 1) {
        q->direct = true; /* the ledger row: the head and this answer's status */
        const bool n = srv_n_choices(&q->req) > 1; /* else several prompts */
        srv_fail(&e, 400, n ? "n" : "prompt", NULL,
                 "%s answered by the local model only, but the gateway may escalate this "
                 "request to a remote tier (%s); ask for model \"local\" (or the header "
                 "x-hearth-tier: local), or %s",
                 n ? "'n' > 1 is" : "several prompts are", q->head.reason,
                 n ? "for n = 1" : "send one prompt per request");
        srv_respond_error(x, &e);
        add_headers(x, &q->head);
    } else if (q->req.grammar && q->req.grammar[0]) {
        q->direct = true; /* a remote tier cannot be held to a GBNF grammar */
        srv_fail(&e, 400, "grammar", NULL,
                 "'grammar' binds the local model only, but the gateway may escalate this "
                 "request to a remote tier (%s); ask for model \"local\" (or the header "
                 "x-hearth-tier: local)",
                 q->head.reason);
        srv_respond_error(x, &e);
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
    if (!s->ledger || gw_ledger_stats_key(s->ledger, 0, srv_query(x, "key"), &st) != HEARTH_OK) {
        srv_fail(&e, 500, NULL, NULL, "ledger: %s", hearth_last_error());
        srv_respond_error(x, &e);
        return;
    }
    srv_respond_json(x, 200, gw_stats_json(&st));
}
