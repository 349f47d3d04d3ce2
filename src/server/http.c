/*
 * http.c - the libmicrohttpd side: the daemon (one thread per connection),
 * routing, the checks made before a body is read (unknown path 404, wrong
 * method 405, missing or wrong API key 401, declared body too large 413),
 * body collection under the size limit, and one log line per request when
 * libmicrohttpd reports it complete:
 *
 *   <time> <method> <path> <status> prompt=<n> cached=<n> completion=<n> <ms>ms
 *
 * Prompt text appears in the log only with --log-prompts. Paths under /api/
 * are ollama's API (api_ollama*.c): their errors are {"error": "message"}.
 */
#include "server.h"

#include "core/core.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* Bytes past --max-body that a request declaring them is still read for,
 * to be dropped before its 413 (early_checks). */
enum { SRV_DRAIN_BYTES = 16 << 20 };

typedef enum route_id {
    ROUTE_NONE,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ROUTE_MODELS,
    ROUTE_MODEL,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_STATS,
    ROUTE_OLLAMA_CHAT,
    ROUTE_OLLAMA_GENERATE,
    ROUTE_OLLAMA_EMBED,
    ROUTE_OLLAMA_EMBEDDINGS,
    ROUTE_OLLAMA_VERSION,
    ROUTE_OLLAMA_TAGS,
    ROUTE_OLLAMA_PS,
    ROUTE_OLLAMA_SHOW,
    ROUTE_RAG_SEARCH,
    ROUTE_DRIFT,
    ROUTE_SERIES,
    ROUTE_DASHBOARD,
    ROUTE_TOKENIZE,
    ROUTE_DETOKENIZE,
    ROUTE_APPLY_TEMPLATE,
    ROUTE_PROPS,
    ROUTE_ROUTER_MODELS,
    ROUTE_MODEL_LOAD,
    ROUTE_MODEL_UNLOAD,
    ROUTE_ANTHROPIC_MESSAGES,
    ROUTE_ANTHROPIC_COUNT,
    ROUTE_RESPONSES,
    ROUTE_RESPONSES_TOKENS,
    ROUTE_SLOTS,
    ROUTE_CHAT_TOKENS,
    ROUTE_KEY,
    ROUTE_KEYS,
    ROUTE_LLAMA_COMPLETION,
    ROUTE_INFILL,
    ROUTE_RERANK,
    ROUTE_TOKENIZER_INFO,
    ROUTE_SLOT_ACTION
} route_id;

/* Who may use a route: anyone; any valid key; any valid key, counted
 * against its limits (the routes that run a model); an admin key. */
typedef enum route_access { OPEN, KEY, METERED, ADMIN } route_access;

typedef struct route {
    const char *path;
    bool prefix;
    const char *method;
    route_id id;
    route_access access;
} route;

static const route routes[] = {
    {"/v1/chat/completions", false, "POST", ROUTE_CHAT, METERED},
    {"/v1/completions", false, "POST", ROUTE_COMPLETIONS, METERED},
    {"/v1/embeddings", false, "POST", ROUTE_EMBEDDINGS, METERED},
    {"/v1/rerank", false, "POST", ROUTE_RERANK, METERED},
    {"/v1/reranking", false, "POST", ROUTE_RERANK, METERED},
    {"/rerank", false, "POST", ROUTE_RERANK, METERED},
    {"/reranking", false, "POST", ROUTE_RERANK, METERED},
    {"/v1/models", false, "GET", ROUTE_MODELS, KEY},
    {"/v1/models/", true, "GET", ROUTE_MODEL, KEY},
    {"/health", false, "GET", ROUTE_HEALTH, OPEN},
    {"/metrics", false, "GET", ROUTE_METRICS, OPEN},
    {"/v1/hearth/stats", false, "GET", ROUTE_STATS, ADMIN},
    {"/v1/hearth/rag/search", false, "POST", ROUTE_RAG_SEARCH, METERED},
    {"/v1/hearth/drift", false, "GET", ROUTE_DRIFT, ADMIN},
    {"/v1/hearth/series", false, "GET", ROUTE_SERIES, ADMIN},
    /* the page and its files (dashboard.c): no data in them, so no key */
    {"/dashboard", false, "GET", ROUTE_DASHBOARD, OPEN},
    {"/dashboard/", false, "GET", ROUTE_DASHBOARD, OPEN},
    {"/dashboard/", true, "GET", ROUTE_DASHBOARD, OPEN},
    /* ollama's API (api_ollama*.c) */
    {"/api/chat", false, "POST", ROUTE_OLLAMA_CHAT, METERED},
    {"/api/generate", false, "POST", ROUTE_OLLAMA_GENERATE, METERED},
    {"/api/embed", false, "POST", ROUTE_OLLAMA_EMBED, METERED},
    {"/api/embeddings", false, "POST", ROUTE_OLLAMA_EMBEDDINGS, METERED},
    {"/api/version", false, "GET", ROUTE_OLLAMA_VERSION, KEY},
    {"/api/tags", false, "GET", ROUTE_OLLAMA_TAGS, KEY},
    {"/api/ps", false, "GET", ROUTE_OLLAMA_PS, KEY},
    {"/api/show", false, "POST", ROUTE_OLLAMA_SHOW, KEY},
    /* llama.cpp server's utility endpoints (api_util.c) */
    {"/tokenize", false, "POST", ROUTE_TOKENIZE, KEY},
    {"/detokenize", false, "POST", ROUTE_DETOKENIZE, KEY},
    {"/tokenizer_info", false, "GET", ROUTE_TOKENIZER_INFO, KEY},
    {"/apply-template", false, "POST", ROUTE_APPLY_TEMPLATE, KEY},
    {"/props", false, "GET", ROUTE_PROPS, KEY},
    /* llama-server's router mode */
    {"/models", false, "GET", ROUTE_ROUTER_MODELS, KEY},
    {"/models/load", false, "POST", ROUTE_MODEL_LOAD, ADMIN},
    {"/models/unload", false, "POST", ROUTE_MODEL_UNLOAD, ADMIN},
    /* Anthropic's Messages API */
    {"/v1/messages", false, "POST", ROUTE_ANTHROPIC_MESSAGES, METERED},
    {"/v1/messages/count_tokens", false, "POST", ROUTE_ANTHROPIC_COUNT, KEY},
    /* OpenAI's Responses API */
    {"/v1/responses", false, "POST", ROUTE_RESPONSES, METERED},
    {"/v1/responses/input_tokens", false, "POST", ROUTE_RESPONSES_TOKENS, KEY},
    {"/slots", false, "GET", ROUTE_SLOTS, ADMIN},
    {"/slots/", true, "POST", ROUTE_SLOT_ACTION, ADMIN}, /* ?action=save|restore|erase */
    {"/v1/chat/completions/input_tokens", false, "POST", ROUTE_CHAT_TOKENS, KEY},
    /* API keys (api_keys.c) */
    {"/v1/hearth/key", false, "GET", ROUTE_KEY, KEY},
    {"/v1/hearth/keys", false, "GET", ROUTE_KEYS, ADMIN},
    {"/v1/hearth/keys", false, "POST", ROUTE_KEYS, ADMIN},
    {"/v1/hearth/keys/", true, "GET", ROUTE_KEYS, ADMIN},
    {"/v1/hearth/keys/", true, "DELETE", ROUTE_KEYS, ADMIN},
    /* llama-server's own completion API (api_llama.c) */
    {"/completion", false, "POST", ROUTE_LLAMA_COMPLETION, METERED},
    {"/completions", false, "POST", ROUTE_LLAMA_COMPLETION, METERED},
    {"/infill", false, "POST", ROUTE_INFILL, METERED},
};

/* Per-request state (libmicrohttpd's con_cls), freed when it completes. */
typedef struct srv_conn {
    srv_exchange x;
    char method[16];
    char path[512];
    const route *route;
    gw_buf body; /* capped at --max-body (and its NUL) */
    bool too_large;
    bool answered; /* a response was queued before the body */
    double t0;
} srv_conn;

// NOLINTNEXTLINE(misc-no-recursion): one level: srv_respond_error passes a non-NULL body
void srv_respond_json(srv_exchange *x, int status, char *json) {
    if (!json) { /* the printer ran out of memory */
        srv_error e;
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    x->status = status;
    x->response = r;
}

char *srv_ollama_error_json(const srv_error *e) {
    cJSON *o = cJSON_CreateObject();
    char *json =
        o && cJSON_AddStringToObject(o, "error", e->message) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return json;
}

// NOLINTNEXTLINE(misc-no-recursion): as srv_respond_json
void srv_respond_error(srv_exchange *x, const srv_error *e) {
    char *json = x->ollama      ? srv_ollama_error_json(e)
                 : x->anthropic ? srv_anthropic_error_json(e)
                                : srv_error_json(e);
    if (!json) return;
    srv_respond_json(x, e->status, json);
    if (x->response && e->status == 503) MHD_add_response_header(x->response, "Retry-After", "1");
}

static void log_line(srv_server *s, srv_conn *c, const char *note) {
    if (!s->cfg.log) return;
    char when[32];
    const time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const double ms = srv_now_ms() - c->t0;
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->cfg.log, "%s %s %s %d prompt=%d cached=%d completion=%d %.1fms%s%s", when, c->method,
            c->path, c->x.status, c->x.prompt_tokens, c->x.cached_tokens, c->x.completion_tokens,
            ms, note ? " " : "", note ? note : "");
    if (s->n_models > 1 && c->x.model) fprintf(s->cfg.log, " model=%s", c->x.model->id);
    if (c->x.log_prompt) {
        /* the prompt as a JSON string, so one request stays one line */
        fputs(" prompt=\"", s->cfg.log);
        for (const unsigned char *p = (const unsigned char *)c->x.log_prompt; *p; p++) {
            if (*p == '"' || *p == '\\')
                fprintf(s->cfg.log, "\\%c", *p);
            else if (*p < 0x20)
                fprintf(s->cfg.log, "\\u%04x", *p);
            else
                fputc(*p, s->cfg.log);
        }
        fputc('"', s->cfg.log);
    }
    fputc('\n', s->cfg.log);
    fflush(s->cfg.log);
    pthread_mutex_unlock(&s->log_mu);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)connection;
    srv_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c) return;
    const char *note = NULL;
    if (toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT)
        note = "(client closed the connection)";
    else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        note = "(connection timed out)";
    else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        note = "(connection failed)";
    if (c->x.status == 0) c->x.status = 499; /* nothing was answered */
    log_line(s, c, note);
    srv_gateway_completed(&c->x); /* the ledger row */
    const bool gen =
        c->route && (c->route->id == ROUTE_CHAT || c->route->id == ROUTE_COMPLETIONS ||
                     c->route->id == ROUTE_OLLAMA_CHAT || c->route->id == ROUTE_OLLAMA_GENERATE ||
                     c->route->id == ROUTE_ANTHROPIC_MESSAGES || c->route->id == ROUTE_RESPONSES ||
                     c->route->id == ROUTE_LLAMA_COMPLETION || c->route->id == ROUTE_INFILL);
    srv_metrics_request(&s->metrics, srv_metrics_route(c->path), c->x.status,
                        (srv_now_ms() - c->t0) / 1e3, gen && c->x.status == 200);
    srv_model_release(c->x.model, c->x.keep_alive_ms);
    if (c->x.metered)
        gw_key_done(c->x.key, gw_now_ms(), c->x.prompt_tokens + c->x.completion_tokens);
    free(c->x.log_prompt);
    gw_buf_free(&c->body);
    free(c);
    *con_cls = NULL;
}

/* The secret the client presented: the bearer token, or Anthropic's
 * x-api-key header; NULL when neither. */
static const char *presented_key(struct MHD_Connection *conn) {
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        h += 7;
    else if (!(h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key")))
        return NULL;
    while (*h == ' ') h++;
    return h;
}

/* Constant-time comparison with the operator's --api-key. */
static bool is_master_key(const char *h, const char *key) {
    const size_t n = strlen(h), k = strlen(key);
    unsigned diff = n != k;
    for (size_t i = 0; i < k; i++)
        diff |= (unsigned char)(i < n ? h[i] : 0) ^ (unsigned char)key[i];
    return diff == 0;
}

/* Who is calling: nobody needs to say without --api-key and "keys"; the
 * master key is an admin; a key of the gateway's "keys" is what its
 * settings say. False (e filled) for a missing or unknown key. */
static bool authenticate(srv_server *s, srv_exchange *x, struct MHD_Connection *conn,
                         srv_error *e) {
    gw_keys *keys = s->gw ? gw_gateway_keys(s->gw) : NULL;
    if (!s->cfg.api_key && !gw_keys_count(keys)) {
        x->admin = true;
        return true;
    }
    const char *h = presented_key(conn);
    if (h && s->cfg.api_key && is_master_key(h, s->cfg.api_key)) {
        x->admin = true;
        return true;
    }
    if (h && (x->key = gw_keys_find(keys, h, strlen(h)))) {
        x->admin = gw_key_spec_of(x->key)->admin;
        return true;
    }
    return srv_fail(e, 401, NULL, "invalid_api_key",
                    "a valid API key is required: send 'Authorization: Bearer <key>'");
}

/* The key's expiry and limits; a metered request that passes is counted. */
static bool admit(srv_exchange *x, bool metered, srv_error *e) {
    if (!x->key) return true;
    if (!gw_key_admit(x->key, gw_now_ms(), metered, &x->limits))
        return srv_fail(e, x->limits.status, NULL, x->limits.code, "%s", x->limits.message);
    x->metered = metered;
    return true;
}

/* x-ratelimit-{limit,remaining,reset}-<what> (limit 0: that limit is off). */
static void add_limit(struct MHD_Response *r, const char *what, int limit, int remaining,
                      double reset_s) {
    if (!limit) return;
    char name[48], buf[32];
    snprintf(name, sizeof name, "x-ratelimit-limit-%s", what);
    snprintf(buf, sizeof buf, "%d", limit);
    MHD_add_response_header(r, name, buf);
    snprintf(name, sizeof name, "x-ratelimit-remaining-%s", what);
    snprintf(buf, sizeof buf, "%d", remaining);
    MHD_add_response_header(r, name, buf);
    snprintf(name, sizeof name, "x-ratelimit-reset-%s", what);
    snprintf(buf, sizeof buf, "%.3gs", reset_s);
    MHD_add_response_header(r, name, buf);
}

/* OpenAI's x-ratelimit-* headers for a key with limits, Retry-After on a
 * refusal that will pass later. */
static void limit_headers(const srv_exchange *x) {
    if (!x->key) return;
    const gw_key_verdict *v = &x->limits;
    add_limit(x->response, "requests", v->limit_requests, v->remaining_requests,
              v->reset_requests_s);
    add_limit(x->response, "tokens", v->limit_tokens, v->remaining_tokens, v->reset_tokens_s);
    if (v->status == 429 && v->retry_after_s > 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", v->retry_after_s);
        MHD_add_response_header(x->response, "Retry-After", buf);
    }
}

/* The route for the path and method; a path served under other methods
 * only: c->route is one of them and *allow lists them ("GET, POST"). */
static void find_route(srv_conn *c, bool *method_ok, char *allow, size_t cap) {
    *method_ok = false;
    allow[0] = '\0';
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !*method_ok; i++) {
        const route *r = &routes[i];
        const size_t n = strlen(r->path);
        const bool match =
            r->prefix ? !strncmp(c->path, r->path, n) && c->path[n] : !strcmp(c->path, r->path);
        if (!match) continue;
        if (!c->route || !strcmp(c->method, r->method)) c->route = r;
        *method_ok = !strcmp(c->method, r->method);
        const size_t len = strlen(allow);
        if (!strstr(allow, r->method))
            snprintf(allow + len, cap - len, "%s%s", len ? ", " : "", r->method);
    }
}

/* The checks that need no body; true when one answered. */
static bool early_checks(srv_server *s, srv_conn *c, struct MHD_Connection *conn) {
    srv_error e;
    bool method_ok;
    char allow[64];
    find_route(c, &method_ok, allow, sizeof allow);
    if (c->route && c->route->id == ROUTE_DASHBOARD && s->cfg.no_dashboard) c->route = NULL;
    if (!c->route) {
        srv_fail(&e, 404, NULL, "not_found", "no such endpoint: %s %s", c->method, c->path);
    } else if (!method_ok) {
        srv_fail(&e, 405, NULL, "method_not_allowed", "%s does not accept %s (use %s)", c->path,
                 c->method, allow);
        // NOLINTNEXTLINE(bugprone-branch-clone): authenticate and admit fill e themselves
    } else if (c->route->access != OPEN && !authenticate(s, &c->x, conn, &e)) {
    } else if (c->route->access == ADMIN && !c->x.admin) {
        srv_fail(&e, 403, NULL, "admin_required", "%s needs an admin key", c->path);
    } else if (c->route->access != OPEN && !admit(&c->x, c->route->access == METERED, &e)) {
    } else {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        const unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
        if (len <= s->cfg.max_body_bytes) return false;
        /* A 413 sent while the client is still sending is often lost: the
         * connection closes on unread bytes and the reset destroys the
         * answer. A body within SRV_DRAIN_BYTES of the limit is read and
         * dropped, then answered (as a chunked one is); a larger one at once. */
        if (len - s->cfg.max_body_bytes <= SRV_DRAIN_BYTES) {
            c->too_large = true;
            return false;
        }
        srv_fail(&e, 413, NULL, "request_too_large",
                 "the request body has %s bytes; the limit is %zu (--max-body)", cl,
                 s->cfg.max_body_bytes);
    }
    srv_respond_error(&c->x, &e);
    if (c->x.response && e.status == 405) MHD_add_response_header(c->x.response, "Allow", allow);
    return true;
}

static void dispatch(srv_server *s, srv_conn *c) {
    srv_exchange *x = &c->x;
    x->body = c->body.data ? c->body.data : "";
    x->body_len = c->body.len;
    const route_id id = c->route->id;
    const int state = atomic_load(&s->state);
    if (id == ROUTE_HEALTH) {
        srv_handle_health(x);
    } else if (id == ROUTE_METRICS) {
        srv_handle_metrics(x);
    } else if (id == ROUTE_STATS) {
        srv_handle_stats(x);
    } else if (id == ROUTE_DRIFT) {
        srv_handle_drift(x);
    } else if (id == ROUTE_SERIES) {
        srv_handle_series(x);
    } else if (id == ROUTE_KEY || id == ROUTE_KEYS) {
        srv_handle_key(x, id == ROUTE_KEYS);
    } else if (id == ROUTE_DASHBOARD) {
        srv_handle_dashboard(x); /* also while the model loads: the page says so */
    } else if (state != SRV_READY) {
        srv_error e;
        srv_fail(&e, 503, NULL, state == SRV_LOADING ? "model_loading" : "model_failed",
                 state == SRV_LOADING ? "the model is still loading" : "the model failed to load");
        srv_respond_error(x, &e);
    } else if (id == ROUTE_CHAT) {
        srv_handle_chat(x); /* with "rag": retrieval after the body is parsed */
    } else if (id == ROUTE_RAG_SEARCH)
        srv_handle_rag_search(x);
    else if (id == ROUTE_COMPLETIONS)
        srv_handle_completions(x);
    else if (id == ROUTE_EMBEDDINGS)
        srv_handle_embeddings(x);
    else if (id == ROUTE_RERANK)
        srv_handle_rerank(x);
    else if (id == ROUTE_MODELS || id == ROUTE_ROUTER_MODELS)
        srv_handle_models(x, NULL);
    else if (id == ROUTE_OLLAMA_CHAT)
        srv_handle_ollama_chat(x);
    else if (id == ROUTE_OLLAMA_GENERATE)
        srv_handle_ollama_generate(x);
    else if (id == ROUTE_OLLAMA_EMBED || id == ROUTE_OLLAMA_EMBEDDINGS)
        srv_handle_ollama_embed(x, id == ROUTE_OLLAMA_EMBEDDINGS);
    else if (id == ROUTE_OLLAMA_VERSION)
        srv_handle_ollama_version(x);
    else if (id == ROUTE_OLLAMA_TAGS || id == ROUTE_OLLAMA_PS)
        srv_handle_ollama_tags(x, id == ROUTE_OLLAMA_PS);
    else if (id == ROUTE_OLLAMA_SHOW)
        srv_handle_ollama_show(x);
    else if (id == ROUTE_TOKENIZE)
        srv_handle_tokenize(x);
    else if (id == ROUTE_DETOKENIZE)
        srv_handle_detokenize(x);
    else if (id == ROUTE_APPLY_TEMPLATE)
        srv_handle_apply_template(x);
    else if (id == ROUTE_PROPS)
        srv_handle_props(x);
    else if (id == ROUTE_TOKENIZER_INFO)
        srv_handle_tokenizer_info(x);
    else if (id == ROUTE_MODEL_LOAD)
        srv_handle_model_load(x);
    else if (id == ROUTE_MODEL_UNLOAD)
        srv_handle_model_unload(x);
    else if (id == ROUTE_ANTHROPIC_MESSAGES)
        srv_handle_anthropic_messages(x);
    else if (id == ROUTE_ANTHROPIC_COUNT)
        srv_handle_anthropic_count(x);
    else if (id == ROUTE_RESPONSES)
        srv_handle_responses(x);
    else if (id == ROUTE_RESPONSES_TOKENS)
        srv_handle_responses_tokens(x);
    else if (id == ROUTE_SLOTS)
        srv_handle_slots(x);
    else if (id == ROUTE_SLOT_ACTION)
        srv_handle_slot_action(x, c->path + strlen("/slots/"));
    else if (id == ROUTE_CHAT_TOKENS)
        srv_handle_chat_tokens(x);
    else if (id == ROUTE_LLAMA_COMPLETION)
        srv_handle_llama_completion(x);
    else if (id == ROUTE_INFILL)
        srv_handle_infill(x);
    else
        srv_handle_models(x, c->path + strlen("/v1/models/"));
}

const char *srv_query(const srv_exchange *x, const char *key) {
    return MHD_lookup_connection_value(x->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result queue(struct MHD_Connection *conn, srv_exchange *x) {
    if (!x->response) return MHD_NO; /* nothing to say (client gone, out of memory): close */
    if (x->rag_note[0]) MHD_add_response_header(x->response, "x-hearth-rag", x->rag_note);
    limit_headers(x);
    const enum MHD_Result r = MHD_queue_response(conn, (unsigned)x->status, x->response);
    MHD_destroy_response(x->response);
    x->response = NULL;
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    srv_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        *con_cls = c;
        c->t0 = srv_now_ms();
        c->x.srv = s;
        c->body.cap_max = s->cfg.max_body_bytes + 1;
        snprintf(c->method, sizeof c->method, "%s", method);
        snprintf(c->path, sizeof c->path, "%s", url);
        c->x.method = c->method;
        c->x.path = c->path;
        c->x.t0_ms = c->t0;
        c->x.conn = conn;
        c->x.keep_alive_ms = SRV_KEEP_ALIVE_DEFAULT;
        c->x.ollama = !strncmp(c->path, "/api/", 5); /* even a 404 in ollama's shape */
        c->x.anthropic = !strncmp(c->path, "/v1/messages", 12);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->x.client_fd = ci ? ci->connect_fd : -1;
        const char *tier = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-hearth-tier");
        const char *task = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-hearth-task");
        snprintf(c->x.tier_header, sizeof c->x.tier_header, "%s", tier ? tier : "");
        snprintf(c->x.task_header, sizeof c->x.task_header, "%s", task ? task : "");
        if (early_checks(s, c, conn)) {
            c->answered = true;
            return queue(conn, &c->x);
        }
        return MHD_YES;
    }
    if (c->answered) { /* the body of a refused request: drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        const size_t n = *upload_size;
        *upload_size = 0;
        if (c->too_large || c->body.len + n > s->cfg.max_body_bytes) {
            c->too_large = true; /* read and dropped, answered 413 at the end */
            return MHD_YES;
        }
        /* under the limit checked above, only memory can fail */
        return gw_buf_put(&c->body, upload, n) ? MHD_NO : MHD_YES;
    }
    if (c->too_large) {
        srv_error e;
        srv_fail(&e, 413, NULL, "request_too_large",
                 "the request body is over the limit of %zu bytes (--max-body)",
                 s->cfg.max_body_bytes);
        srv_respond_error(&c->x, &e);
    } else {
        dispatch(s, c);
    }
    return queue(conn, &c->x);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    srv_server *s = cls;
    if (!s->cfg.log) return;
    pthread_mutex_lock(&s->log_mu);
    fputs("hearth serve: http: ", s->cfg.log);
    vfprintf(s->cfg.log, fmt, ap);
    fflush(s->cfg.log);
    pthread_mutex_unlock(&s->log_mu);
}

hearth_err srv_http_start(srv_server *s) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    if (getaddrinfo(s->cfg.host, port, &hints, &ai) != 0 || !ai)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: '%s' is not an IPv4 or IPv6 address",
                       s->cfg.host);
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* Idle keep-alive connections hold a thread: close them after a while,
     * but never while a request may still be generating. */
    const unsigned idle_s = s->cfg.timeout_s > 0 ? (unsigned)s->cfg.timeout_s + 30 : 0;
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                                 MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon)
        return hr_fail(HEARTH_ERR_IO, "server: cannot listen on %s port %d (in use?)", s->cfg.host,
                       s->cfg.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    return HEARTH_OK;
}

void srv_http_stop(srv_server *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
