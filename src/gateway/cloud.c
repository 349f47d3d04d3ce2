/*
 * cloud.c - the remote tiers: OpenAI-compatible POST /v1/chat/completions and
 * Anthropic's Messages API (POST /v1/messages), over libcurl.
 *
 * One call = up to 1 + retries attempts. An attempt is retried when it failed
 * before any answer text was handed to the caller and the failure is one a
 * later attempt may not meet: a network error, a timeout, HTTP 408, 429 or
 * 5xx. The wait before attempt k (k >= 1) is uniform in [0, min(backoff_max,
 * backoff * 2^(k-1))] ("full jitter", so clients that failed together do not
 * retry together), or the server's Retry-After when it gives one (capped the
 * same way). Other 4xx (a bad request, a wrong key) are not retried.
 *
 * Timeouts: the transfer runs on a curl multi handle polled every 20 ms, so
 * the limit is kept to the millisecond: a non-streaming call may take
 * timeout_ms in all; a streaming call may stay silent (before its first byte
 * or between two chunks) at most timeout_ms.
 *
 * Streaming: Server-Sent Events are parsed as the WHATWG spec says (lines end
 * in LF, CRLF or CR; "data:" lines joined by LF; a blank line dispatches).
 * OpenAI sends chat.completion.chunk objects and "[DONE]"; Anthropic sends
 * message_start, content_block_delta (text_delta), message_delta (stop
 * reason, output tokens) and message_stop. Text is handed over as it comes;
 * a stream that breaks after that cannot be retried (the caller has shown
 * the text) and ends as GW_CLOUD_BROKEN.
 *
 * Reasoning: a tier's thinking is handed over apart from the text, to
 * gw_chat.on_reasoning, and kept in the result: an OpenAI-compatible
 * tier's message / delta reasoning_content (DeepSeek) or reasoning
 * (OpenRouter, vLLM, llama-server), or a <think> block at the start of its
 * content (some servers send it raw: engine/think.c splits it off); an
 * Anthropic tier's thinking blocks (thinking_delta when streamed). Those
 * blocks are also kept whole, as the tier sent them (text, signature;
 * redacted_thinking's data), handed to gw_chat.on_thinking as each completes
 * and kept in the result: a client sends them back in a tool loop, and
 * gw_anthropic_messages puts a message's blocks first in its turn (never in
 * an OpenAI-compatible tier's body). The client's switches go out as the
 * tier names them: reasoning_effort as sent to an OpenAI-compatible tier,
 * and to Anthropic thinking {type enabled, budget_tokens} when thinking was
 * asked for (anthropic_thinking).
 *
 * Tools (cloud_tools.c): passed through to OpenAI-compatible tiers,
 * translated for Anthropic; calls in the answer (tool_calls, tool_use
 * blocks, streamed deltas) are data: each handed to gw_chat.on_call once
 * complete and kept in the result, with the tier's id, never written into
 * the text.
 *
 * gw_cloud_post: the same transport (key, retries, timeouts, breaker, the
 * tier's rpm and tpm) for another endpoint of the tier, a JSON body POSTed
 * and the whole answer handed to the caller's reader (embeddings and rerank,
 * cloud_embed.c): an answer the reader refuses is a bad response.
 *
 * Circuit breaker (per tier): closed; open after breaker_failures calls in a
 * row failed (REJECTED calls do not count: they say nothing about the tier's
 * health); after breaker_cooldown_ms one probe call is let through; its
 * success closes the circuit, its failure opens it again.
 */
#include "cloud_tools.h"
#include "gateway.h"

#include "core/core.h"
#include "engine/think.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum {
    BODY_MAX = 16 << 20,     /* a non-streaming answer */
    RAW_BODY_MAX = 64 << 20, /* gw_cloud_post's (vectors take room) */
    ERROR_BODY_MAX = 64 << 10,
    SSE_EVENT_MAX = 4 << 20,
    POLL_MS = 20
};

struct gw_remote {
    gw_tier tier;
    pthread_mutex_t mu;
    int failures;       /* calls failed in a row */
    bool open;          /* the circuit */
    int64_t open_until; /* monotonic ms */
    bool probing;       /* the one call let through after the cooldown */
    uint64_t rng;       /* jitter */
    gw_bucket req, tok; /* the tier's rpm and tpm (monotonic ms) */
};

const char *gw_cloud_status_name(gw_cloud_status s) {
    static const char *const names[] = {"ok",        "breaker_open", "unreachable",
                                        "rejected",  "bad_response", "broken",
                                        "cancelled", "rate_limited"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
    if (ms <= 0) return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void init_curl(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

hearth_err gw_remote_new(const gw_tier *tier, gw_remote **out) {
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK)
        return hr_fail(HEARTH_ERR_IO, "cloud: libcurl failed to initialize: %s",
                       curl_easy_strerror(curl_init_rc));
    if (tier->kind == GW_TIER_LOCAL)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "cloud: tier '%s' is local", tier->name);
    gw_remote *r = calloc(1, sizeof *r);
    if (!r) return hr_fail(HEARTH_ERR_NOMEM, "cloud: out of memory");
    r->tier = *tier;
    pthread_mutex_init(&r->mu, NULL);
    r->rng = (uint64_t)mono_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)r;
    gw_bucket_init(&r->req, tier->rpm, mono_ms());
    gw_bucket_init(&r->tok, tier->tpm, mono_ms());
    *out = r;
    return HEARTH_OK;
}

void gw_remote_free(gw_remote *r) {
    if (!r) return;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

const gw_tier *gw_remote_tier(const gw_remote *r) { return &r->tier; }

/* Whether the tier's rpm or tpm is used up (r->mu held). */
static bool limited_locked(gw_remote *r) {
    const int64_t now = mono_ms();
    return (r->tier.rpm && gw_bucket_level(&r->req, now) < 1.0) ||
           (r->tier.tpm && gw_bucket_level(&r->tok, now) <= 0.0);
}

bool gw_remote_limited(gw_remote *r) {
    pthread_mutex_lock(&r->mu);
    const bool limited = limited_locked(r);
    pthread_mutex_unlock(&r->mu);
    return limited;
}

bool gw_remote_available(gw_remote *r) {
    pthread_mutex_lock(&r->mu);
    const bool ok = (!r->open || (mono_ms() >= r->open_until && !r->probing)) && !limited_locked(r);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Takes one request of the tier's rpm; false when none is left (or its
 * tokens are). The tokens are counted after the call (limit_used). */
static bool limit_take(gw_remote *r) {
    pthread_mutex_lock(&r->mu);
    const bool ok = !limited_locked(r);
    if (ok && r->tier.rpm) r->req.level -= 1.0;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void limit_used(gw_remote *r, int tokens) {
    if (!r->tier.tpm || tokens <= 0) return;
    pthread_mutex_lock(&r->mu);
    gw_bucket_level(&r->tok, mono_ms());
    r->tok.level -= tokens;
    pthread_mutex_unlock(&r->mu);
}

/* Whether a call may go out now; *probe says it is the half-open probe. */
static bool breaker_acquire(gw_remote *r, bool *probe) {
    pthread_mutex_lock(&r->mu);
    bool ok = !r->open;
    *probe = false;
    if (r->open && mono_ms() >= r->open_until && !r->probing) {
        ok = *probe = r->probing = true;
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void breaker_report(gw_remote *r, bool probe, bool success, bool counts) {
    pthread_mutex_lock(&r->mu);
    if (probe) r->probing = false;
    if (success) {
        r->failures = 0;
        r->open = false;
    } else if (counts) {
        r->failures++;
        if (probe || r->failures >= r->tier.breaker_failures) {
            r->open = true;
            r->open_until = mono_ms() + r->tier.breaker_cooldown_ms;
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static uint64_t next_rand(gw_remote *r) {
    pthread_mutex_lock(&r->mu);
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    const uint64_t v = r->rng * 2685821657736338717ULL;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* ---- request bodies ----------------------------------------------------------- */

/* Sampling and stop strings, named as the tier's API names them (no
 * temperature or top_p with Anthropic's thinking, which refuses them). */
static void add_sampling(cJSON *o, const gw_chat *q, const char *stop_key, bool temps) {
    if (temps && !isnan(q->temperature)) cJSON_AddNumberToObject(o, "temperature", q->temperature);
    if (temps && !isnan(q->top_p)) cJSON_AddNumberToObject(o, "top_p", q->top_p);
    if (q->n_stop > 0) {
        cJSON *stop = cJSON_AddArrayToObject(o, stop_key);
        for (int i = 0; i < q->n_stop; i++)
            cJSON_AddItemToArray(stop, cJSON_CreateString(q->stop[i]));
    }
}

static char *openai_body(const gw_tier *t, const gw_chat *q, const gw_chat_tools *tools) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", t->model);
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    bool ok = true;
    for (int i = 0; i < q->n_messages; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", q->messages[i].role);
        cJSON_AddStringToObject(m, "content", q->messages[i].content);
        ok &= gw_tools_openai_message(m, tools, i);
        cJSON_AddItemToArray(msgs, m);
    }
    ok &= gw_tools_openai_body(o, tools);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    if (q->max_tokens > 0) cJSON_AddNumberToObject(o, "max_tokens", q->max_tokens);
    add_sampling(o, q, "stop", true);
    if (q->reasoning_effort) cJSON_AddStringToObject(o, "reasoning_effort", q->reasoning_effort);
    cJSON *rf = q->response_format ? cJSON_Parse(q->response_format) : NULL;
    if (rf)
        cJSON_AddItemToObject(o, "response_format", rf);
    else if (q->json_object)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "response_format"), "type",
                                "json_object");
    if (q->stream) {
        cJSON_AddBoolToObject(o, "stream", true);
        cJSON_AddBoolToObject(cJSON_AddObjectToObject(o, "stream_options"), "include_usage", true);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The thinking budget an Anthropic tier gets (0: no thinking sent): when
 * the client asked for thinking (think on, or an effort other than "none"),
 * the request's budget or the effort's (LiteLLM's: low 1024, medium 2048,
 * high 4096; 2048 when only switched on), at least Anthropic's 1024. Not
 * with a forced tool call, nor in a turn that goes on after tool results
 * unless the assistant turn that called the tools carries its thinking
 * blocks (the client sent them back): Anthropic refuses the first with
 * thinking, and the second without that turn's signed thinking block. */
static int anthropic_thinking(const gw_chat *q) {
    const char *e = q->reasoning_effort;
    if (!q->thinking && (!e || !strcmp(e, "none"))) return 0;
    const gw_chat_tools *t = q->tools;
    if (t && (t->named_choice || (t->tool_choice && !strcmp(t->tool_choice, "required")))) return 0;
    int last = q->n_messages - 1;
    if (last >= 0 && !strcmp(q->messages[last].role, "tool")) {
        while (last >= 0 && strcmp(q->messages[last].role, "assistant") != 0) last--;
        if (last < 0 || !gw_anthropic_signed(q, last)) return 0;
    }
    int budget = q->thinking_budget;
    if (budget <= 0)
        budget = !e || !strcmp(e, "medium")                   ? 2048
                 : !strcmp(e, "low") || !strcmp(e, "minimal") ? 1024
                                                              : 4096;
    return budget < 1024 ? 1024 : budget;
}

/* Anthropic: max_tokens always (the API requires it, and it must exceed a
 * thinking budget: the answer then keeps its own max_tokens after the
 * budget); the messages with or without tools (gw_anthropic_messages). */
static char *anthropic_body(const gw_tier *t, const gw_chat *q, const gw_chat_tools *tools) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", t->model);
    const int budget = anthropic_thinking(q);
    const int max_tokens = q->max_tokens > 0 ? q->max_tokens : t->max_tokens;
    cJSON_AddNumberToObject(o, "max_tokens", max_tokens + (max_tokens <= budget ? budget : 0));
    if (budget) {
        cJSON *th = cJSON_AddObjectToObject(o, "thinking");
        cJSON_AddStringToObject(th, "type", "enabled");
        cJSON_AddNumberToObject(th, "budget_tokens", budget);
    }
    const bool ok = gw_anthropic_messages(o, q, tools);
    add_sampling(o, q, "stop_sequences", !budget);
    if (q->stream) cJSON_AddBoolToObject(o, "stream", true);
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---- one attempt ---------------------------------------------------------------- */

typedef struct xfer {
    const gw_tier *tier;
    const char *url; /* POSTed to: the tier's chat endpoint, or gw_cloud_post's */
    gw_body_fn read; /* gw_cloud_post: reads a 2xx answer's body (NULL: a chat) */
    void *read_ctx;
    int read_tokens; /* what read says the call cost */
    bool timed_out;  /* the last attempt ran out of time */
    CURL *easy;
    const atomic_bool *cancel;
    bool stream;
    gw_text_cb cb;
    gw_call_cb on_call;
    gw_text_cb on_reasoning;
    gw_thinking_cb on_thinking;
    void *user;
    long status;      /* HTTP status, read at the first body byte */
    gw_buf body;      /* non-streaming answer, or an error body */
    gw_buf line;      /* SSE: the line being read */
    gw_buf data;      /* SSE: the event's data */
    bool cr;          /* SSE: the last byte was CR (a following LF belongs to it) */
    gw_buf text;      /* the answer */
    gw_buf reasoning; /* the tier's reasoning */
    eng_think split;  /* an OpenAI-compatible tier's content: a raw <think> block */
    bool delivered, cancelled, done, bad, overflow;
    bool stream_error; /* an SSE "error" event */
    char err[256];
    bool have_usage, have_reasoning_tokens;
    int prompt_tokens, completion_tokens, reasoning_tokens;
    char finish[16];
    int64_t last_activity;
    double retry_after_s;
    gw_tool_acc acc;     /* tool calls being assembled */
    gw_tool_call *calls; /* the answer's calls, complete */
    int n_calls;
    gw_thinking_block *blocks; /* Anthropic's thinking blocks, complete */
    int n_blocks;
    int th_index;            /* the streamed thinking block being read (-1: none) */
    gw_buf th_text, th_sign; /* ... its text and signature so far */
} xfer;

static void set_err(xfer *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(xfer *x, const char *fmt, ...) {
    if (x->err[0]) return; /* the first cause is the one to report */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
}

/* Answer text or reasoning, kept in b and handed to cb: either is the
 * answer's, which a retry cannot take back. */
static void hand_over(xfer *x, gw_buf *b, gw_text_cb cb, const char *s, size_t n) {
    if (!n || x->cancelled) return;
    if (gw_buf_put(b, s, n)) {
        x->overflow = true;
        return;
    }
    x->delivered = true;
    if (cb && !cb(s, n, x->user)) x->cancelled = true;
}

static void deliver(xfer *x, const char *s, size_t n) { hand_over(x, &x->text, x->cb, s, n); }

static void deliver_reasoning(xfer *x, const char *s, size_t n) {
    hand_over(x, &x->reasoning, x->on_reasoning, s, n);
}

/* A complete thinking block of an Anthropic answer: kept and handed over
 * (a block, like text, cannot be taken back by a retry). */
static void keep_block(xfer *x, const gw_thinking_block *b) {
    if (x->cancelled || x->bad) return;
    if (x->n_blocks >= GW_THINKING_MAX) {
        set_err(x, "more than %d thinking blocks", GW_THINKING_MAX);
        x->bad = true;
        return;
    }
    if (gw_thinking_push(&x->blocks, &x->n_blocks, b)) {
        set_err(x, "out of memory");
        x->bad = true;
        return;
    }
    x->delivered = true;
    if (x->on_thinking && !x->on_thinking(b, x->user)) x->cancelled = true;
}

/* A streamed thinking block's stop: the text and signature gathered. */
static void end_block(xfer *x) {
    gw_buf_put(&x->th_text, "", 0);
    gw_buf_put(&x->th_sign, "", 0);
    const gw_thinking_block b = {.thinking = x->th_text.data, .opaque = x->th_sign.data};
    if (b.thinking && b.opaque) keep_block(x, &b);
    x->th_index = -1;
}

/* A streamed piece of the open thinking block's text or signature. */
static void block_piece(xfer *x, int index, gw_buf *b, const char *s) {
    if (index != x->th_index || !s) return;
    if (gw_buf_puts(b, s)) x->overflow = true;
}

/* An OpenAI-compatible tier's content, through the <think> splitter. */
static void deliver_content(xfer *x, const char *s, size_t n) {
    enum { PIECE = 512 };
    char reason[PIECE + ENG_THINK_HOLD], content[PIECE + ENG_THINK_HOLD];
    for (size_t at = 0; at < n; at += PIECE) {
        eng_think_out o = {.reason = reason, .content = content};
        eng_think_feed(&x->split, s + at, n - at < PIECE ? n - at : PIECE, &o);
        deliver_reasoning(x, reason, o.n_reason);
        deliver(x, content, o.n_content);
    }
}

/* The content ended: what the splitter held back (a tag's possible start). */
static void content_end(xfer *x) {
    char reason[ENG_THINK_HOLD], content[ENG_THINK_HOLD];
    eng_think_out o = {.reason = reason, .content = content};
    eng_think_finish(&x->split, &o);
    deliver_reasoning(x, reason, o.n_reason);
    deliver(x, content, o.n_content);
}

/* An OpenAI-compatible tier's reasoning in a message or a delta: DeepSeek's
 * reasoning_content, else OpenRouter's, vLLM's and llama-server's
 * reasoning (servers that send both send the same text). */
static const char *openai_reasoning(const cJSON *m) {
    const char *r = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "reasoning_content"));
    return r && *r ? r : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "reasoning"));
}

/* The assembled tool calls join the answer's and are handed over, each
 * once (a call handed over, like text, cannot be taken back by a retry). */
static void flush_calls(xfer *x) {
    if (!x->acc.n) return;
    const int from = x->n_calls;
    if (gw_tool_acc_flush(&x->acc, &x->calls, &x->n_calls)) { /* more calls than kept */
        x->bad = true;
        set_err(x, "%s", hearth_last_error());
    }
    for (int k = from; k < x->n_calls && !x->cancelled; k++) {
        x->delivered = true;
        if (x->on_call && !x->on_call(&x->calls[k], x->user)) x->cancelled = true;
    }
}

static void set_finish(xfer *x, const char *reason) {
    const bool length = !strcmp(reason, "length") || !strcmp(reason, "max_tokens");
    snprintf(x->finish, sizeof x->finish, "%s", length ? "length" : "stop");
}

static int json_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9 ? (int)v->valuedouble
                                                                            : -1;
}

static void error_message(xfer *x, const cJSON *o) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
    if (!msg) msg = cJSON_GetStringValue(e);
    set_err(x, "%s", msg ? msg : "an error without a message");
}

static void openai_usage(xfer *x, const cJSON *o) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
    if (!cJSON_IsObject(u)) return;
    const int p = json_int(u, "prompt_tokens"), c = json_int(u, "completion_tokens");
    if (p >= 0 && c >= 0) {
        x->prompt_tokens = p;
        x->completion_tokens = c;
        x->have_usage = true;
    }
    /* OpenAI's (and DeepSeek's, vLLM's) count of the reasoning's tokens */
    const int r = json_int(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details"),
                           "reasoning_tokens");
    if (r >= 0) {
        x->reasoning_tokens = r;
        x->have_reasoning_tokens = true;
    }
}

/* An OpenAI call (whole, or a stream's piece of it) into the assembly. */
static void openai_call(xfer *x, int index, const cJSON *tc) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
    gw_tool_acc_id(&x->acc, index,
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tc, "id")));
    gw_tool_acc_name(&x->acc, index,
                     cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name")));
    gw_tool_acc_args(&x->acc, index,
                     cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "arguments")));
}

/* An Anthropic tool_use block's id and name (its input comes whole or in
 * pieces). */
static void anthropic_use(xfer *x, int index, const cJSON *b) {
    gw_tool_acc_id(&x->acc, index, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id")));
    gw_tool_acc_name(&x->acc, index,
                     cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name")));
}

/* One chat.completion.chunk (or "[DONE]"). */
static void openai_event(xfer *x, const char *data, size_t len) {
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        content_end(x);
        flush_calls(x);
        x->done = true;
        return;
    }
    cJSON *o = cJSON_ParseWithLength(data, len);
    if (!o) {
        x->bad = true;
        set_err(x, "a stream event is not JSON");
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "error")) {
        x->stream_error = true;
        error_message(x, o);
    }
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    const char *reasoning = openai_reasoning(delta);
    if (reasoning) deliver_reasoning(x, reasoning, strlen(reasoning));
    const char *content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(delta, "content"));
    if (content) deliver_content(x, content, strlen(content));
    const cJSON *tc;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) {
        const int index = json_int(tc, "index");
        openai_call(x, index, tc);
    }
    const char *fin = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
    if (fin) {
        content_end(x);
        flush_calls(x);
        set_finish(x, fin);
    }
    openai_usage(x, o);
    cJSON_Delete(o);
}

static void anthropic_event(xfer *x, const char *data, size_t len) {
    cJSON *o = cJSON_ParseWithLength(data, len);
    if (!o) {
        x->bad = true;
        set_err(x, "a stream event is not JSON");
        return;
    }
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
    type = type ? type : "";
    if (!strcmp(type, "message_start")) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "message"), "usage");
        const int p = json_int(u, "input_tokens");
        if (p >= 0) x->prompt_tokens = p;
    } else if (!strcmp(type, "content_block_start")) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "content_block");
        const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
        bt = bt ? bt : "";
        const int index = json_int(o, "index");
        gw_thinking_block tb;
        char why[96];
        if (!strcmp(bt, "tool_use")) {
            anthropic_use(x, index, b);
        } else if (!strcmp(bt, "thinking")) {
            x->th_index = index;
            x->th_text.len = x->th_sign.len = 0;
        } else if (!strcmp(bt, "redacted_thinking") && gw_thinking_parse(b, &tb, why, sizeof why)) {
            keep_block(x, &tb); /* whole in its start */
            free(tb.opaque);
        }
    } else if (!strcmp(type, "content_block_delta")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "delta");
        const int index = json_int(o, "index");
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "text"));
        if (t) deliver(x, t, strlen(t));
        const char *th = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "thinking"));
        if (th) deliver_reasoning(x, th, strlen(th));
        block_piece(x, index, &x->th_text, th);
        block_piece(x, index, &x->th_sign,
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "signature")));
        const char *pj = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "partial_json"));
        if (pj) gw_tool_acc_args(&x->acc, index, pj);
    } else if (!strcmp(type, "content_block_stop")) {
        if (x->th_index >= 0 && json_int(o, "index") == x->th_index) end_block(x);
        flush_calls(x);
    } else if (!strcmp(type, "message_delta")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "delta");
        const char *stop = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "stop_reason"));
        if (stop) set_finish(x, stop);
        const int c = json_int(cJSON_GetObjectItemCaseSensitive(o, "usage"), "output_tokens");
        if (c >= 0) {
            x->completion_tokens = c;
            x->have_usage = true;
        }
    } else if (!strcmp(type, "message_stop")) {
        x->done = true;
    } else if (!strcmp(type, "error")) {
        x->stream_error = true;
        error_message(x, o);
    }
    cJSON_Delete(o);
}

static void sse_dispatch(xfer *x) {
    if (!x->data.len) return;
    if (x->tier->kind == GW_TIER_ANTHROPIC)
        anthropic_event(x, x->data.data, x->data.len);
    else
        openai_event(x, x->data.data, x->data.len);
    x->data.len = 0;
}

static void sse_line(xfer *x) {
    const char *l = x->line.data ? x->line.data : "";
    const size_t n = x->line.len;
    if (n == 0) {
        sse_dispatch(x);
    } else if (n >= 5 && !memcmp(l, "data:", 5)) {
        const size_t skip = n > 5 && l[5] == ' ' ? 6 : 5;
        if (x->data.len && gw_buf_put(&x->data, "\n", 1)) x->overflow = true;
        if (gw_buf_put(&x->data, l + skip, n - skip)) x->overflow = true;
    } /* event:, id:, retry: and comments carry nothing the gateway needs */
    x->line.len = 0;
}

static void sse_feed(xfer *x, const char *p, size_t n) {
    for (size_t i = 0; i < n && !x->overflow; i++) {
        const char c = p[i];
        if (c == '\n' && x->cr) {
            x->cr = false;
            continue;
        }
        x->cr = c == '\r';
        if (c == '\n' || c == '\r')
            sse_line(x);
        else if (gw_buf_put(&x->line, &c, 1))
            x->overflow = true;
    }
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    const size_t n = size * nmemb;
    x->last_activity = mono_ms();
    if (!x->status) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    const bool ok_status = x->status >= 200 && x->status < 300;
    if (ok_status && x->stream)
        sse_feed(x, p, n);
    else if (gw_buf_put(&x->body, p, n))
        x->overflow = true;
    if (x->cancelled || x->overflow) return 0; /* aborts the transfer */
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    const size_t n = size * nmemb;
    x->last_activity = mono_ms();
    if (n > 12 && !strncasecmp(p, "retry-after:", 12)) {
        char v[32];
        snprintf(v, sizeof v, "%.*s", (int)(n - 12 < 31 ? n - 12 : 31), p + 12);
        char *end;
        const double s = strtod(v, &end);
        if (end != v && s >= 0) x->retry_after_s = s;
    }
    return n;
}

static void parse_whole(xfer *x) {
    cJSON *o = cJSON_ParseWithLength(x->body.data ? x->body.data : "", x->body.len);
    if (!o) {
        x->bad = true;
        set_err(x, "the answer is not JSON");
        return;
    }
    if (x->tier->kind == GW_TIER_ANTHROPIC) {
        const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(o, "content"), *b;
        if (!cJSON_IsArray(blocks)) x->bad = true;
        cJSON_ArrayForEach(b, blocks) {
            const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
            const char *th = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "thinking"));
            if (th && bt && !strcmp(bt, "thinking")) deliver_reasoning(x, th, strlen(th));
            gw_thinking_block tb;
            char why[96];
            if (bt && strstr(bt, "thinking") && gw_thinking_parse(b, &tb, why, sizeof why)) {
                keep_block(x, &tb);
                free(tb.thinking);
                free(tb.opaque);
            }
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "text"));
            if (t) deliver(x, t, strlen(t));
            if (bt && !strcmp(bt, "tool_use")) {
                char *input = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
                anthropic_use(x, 0, b);
                gw_tool_acc_args(&x->acc, 0, input);
                free(input);
                flush_calls(x);
            }
        }
        const char *stop = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "stop_reason"));
        set_finish(x, stop ? stop : "end_turn");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
        const int p = json_int(u, "input_tokens"), c = json_int(u, "output_tokens");
        if (p >= 0 && c >= 0) {
            x->prompt_tokens = p;
            x->completion_tokens = c;
            x->have_usage = true;
        }
    } else {
        const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
        const char *reasoning = openai_reasoning(msg);
        if (reasoning) deliver_reasoning(x, reasoning, strlen(reasoning));
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (cJSON_IsString(content))
            deliver_content(x, content->valuestring, strlen(content->valuestring));
        else if (content && !cJSON_IsNull(content))
            x->bad = true;
        content_end(x);
        const cJSON *tc;
        int k = 0;
        cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")) {
            openai_call(x, k++, tc);
        }
        flush_calls(x);
        const char *fin =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c0, "finish_reason"));
        set_finish(x, fin ? fin : "stop");
        openai_usage(x, o);
    }
    if (x->bad) set_err(x, "the answer lacks the expected fields");
    x->done = !x->bad;
    cJSON_Delete(o);
}

/* gw_cloud_post's answer, read by its caller. */
static void read_raw(xfer *x) {
    char why[200] = "";
    x->bad = !x->read(x->read_ctx, x->body.data ? x->body.data : "", x->body.len, &x->read_tokens,
                      why, sizeof why);
    if (x->bad) set_err(x, "%s", why[0] ? why : "the answer is malformed");
    x->done = !x->bad;
}

typedef enum outcome {
    OUT_OK,
    OUT_RETRY,
    OUT_REJECTED,
    OUT_BAD,
    OUT_BROKEN,
    OUT_CANCELLED
} outcome;

static struct curl_slist *headers_for(const gw_tier *t, const char *key, bool stream) {
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char line[1024];
    if (stream) h = curl_slist_append(h, "Accept: text/event-stream");
    if (t->kind == GW_TIER_ANTHROPIC) {
        h = curl_slist_append(h, "anthropic-version: 2023-06-01");
        if (key) {
            snprintf(line, sizeof line, "x-api-key: %s", key);
            h = curl_slist_append(h, line);
        }
    } else if (key) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, line);
    }
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    return h;
}

/* Runs the transfer on a multi handle, keeping the time limit (see the top). */
static CURLcode run_transfer(CURL *e, xfer *x, bool *timed_out) {
    CURLM *m = curl_multi_init();
    if (!m) return CURLE_OUT_OF_MEMORY;
    curl_multi_add_handle(m, e);
    const int64_t start = mono_ms(), limit = x->tier->timeout_ms;
    x->last_activity = start;
    int running = 1;
    CURLcode rc = CURLE_OK;
    *timed_out = false;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = CURLE_FAILED_INIT;
            break;
        }
        if (!running) break;
        if (x->cancel && atomic_load(x->cancel)) {
            x->cancelled = true;
            rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        const int64_t now = mono_ms();
        if (x->stream ? now - x->last_activity > limit : now - start > limit) {
            *timed_out = true;
            rc = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        curl_multi_poll(m, NULL, 0, POLL_MS, NULL);
    }
    if (!*timed_out) {
        int left;
        for (CURLMsg *msg; (msg = curl_multi_info_read(m, &left));)
            if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
    }
    curl_multi_remove_handle(m, e);
    curl_multi_cleanup(m);
    return rc;
}

static outcome attempt(const gw_tier *t, const char *body, const char *key, xfer *x) {
    CURL *e = curl_easy_init();
    if (!e) {
        set_err(x, "libcurl: cannot create a handle");
        return OUT_RETRY;
    }
    struct curl_slist *h = headers_for(t, key, x->stream);
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "hearth-gateway/0.1");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    x->easy = e;
    x->status = 0; /* on_body reads it at the first body byte */
    bool timed_out = false;
    const CURLcode rc = run_transfer(e, x, &timed_out);
    x->timed_out = timed_out && rc != CURLE_OK;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    x->status = status;
    if (x->stream && x->line.len) sse_line(x); /* a last line without its newline */
    if (x->stream) sse_dispatch(x);
    if (x->stream && x->finish[0]) flush_calls(x); /* calls the tier never closed */
    if (x->cancelled) return OUT_CANCELLED;
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && x->overflow)) {
        if (timed_out)
            set_err(x, "no answer within %d ms", t->timeout_ms);
        else
            set_err(x, "%s", curl_easy_strerror(rc));
        return x->delivered ? OUT_BROKEN : OUT_RETRY;
    }
    if (x->overflow) {
        set_err(x, "the answer is larger than the gateway accepts");
        return x->delivered ? OUT_BROKEN : OUT_BAD;
    }
    if (status == 408 || status == 429 || status >= 500 || status < 200) {
        set_err(x, "HTTP %ld from %s", status, x->url);
        return OUT_RETRY;
    }
    if (status >= 300) {
        cJSON *o = cJSON_ParseWithLength(x->body.data ? x->body.data : "", x->body.len);
        if (o) error_message(x, o);
        cJSON_Delete(o);
        char why[200];
        snprintf(why, sizeof why, "%s", x->err);
        x->err[0] = '\0';
        set_err(x, "HTTP %ld: %s", status, why[0] ? why : "(no message)");
        return OUT_REJECTED;
    }
    if (x->read)
        read_raw(x);
    else if (!x->stream)
        parse_whole(x);
    if (x->stream_error) return x->delivered ? OUT_BROKEN : OUT_RETRY;
    if (x->bad) return x->delivered ? OUT_BROKEN : OUT_BAD;
    if (x->stream && !x->done && !x->finish[0]) {
        set_err(x, "the stream ended before its end marker");
        return x->delivered ? OUT_BROKEN : OUT_RETRY;
    }
    return OUT_OK;
}

/* ---- the call ------------------------------------------------------------------ */

void gw_cloud_result_free(gw_cloud_result *r) {
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
    free(r->reasoning);
    r->reasoning = NULL;
    r->reasoning_len = 0;
    gw_tool_calls_free(r->calls, r->n_calls);
    r->calls = NULL;
    r->n_calls = 0;
    gw_thinking_free(r->thinking, r->n_thinking);
    r->thinking = NULL;
    r->n_thinking = 0;
}

int gw_reasoning_tokens_estimate(size_t len, int completion) {
    const size_t n = (len + 3) / 4;
    return n < (size_t)completion ? (int)n : completion;
}

static void reset_xfer(xfer *x) {
    gw_buf_free(&x->body);
    gw_buf_free(&x->line);
    gw_buf_free(&x->data);
    gw_buf_free(&x->text);
    gw_buf_free(&x->reasoning);
    gw_tool_acc_free(&x->acc);
    gw_tool_calls_free(x->calls, x->n_calls);
    x->calls = NULL;
    x->n_calls = 0;
    gw_thinking_free(x->blocks, x->n_blocks);
    x->blocks = NULL;
    x->n_blocks = 0;
    gw_buf_free(&x->th_text);
    gw_buf_free(&x->th_sign);
}

/* The wait before attempt k >= 1 (see the top of the file). */
static int64_t backoff_ms(gw_remote *r, int k, double retry_after_s) {
    const gw_tier *t = &r->tier;
    if (retry_after_s > 0) {
        const double ms = retry_after_s * 1000.0;
        return ms > t->backoff_max_ms ? t->backoff_max_ms : (int64_t)ms;
    }
    int64_t cap = t->backoff_ms;
    for (int i = 1; i < k && cap < t->backoff_max_ms; i++) cap *= 2;
    if (cap > t->backoff_max_ms) cap = t->backoff_max_ms;
    return cap > 0 ? (int64_t)(next_rand(r) % (uint64_t)(cap + 1)) : 0;
}

static size_t prompt_bytes(const gw_chat *q) {
    size_t n = 0;
    for (int i = 0; i < q->n_messages; i++) n += strlen(q->messages[i].content);
    return n;
}

/* The answer's size for an estimate of its tokens: text, reasoning, names,
 * arguments. */
static size_t answer_bytes(const gw_cloud_result *r) {
    size_t n = r->text_len + r->reasoning_len;
    for (int k = 0; k < r->n_calls; k++)
        n += strlen(r->calls[k].name) + strlen(r->calls[k].arguments);
    return n;
}

/* Whether a call may go out now: the tier's key is set, its own rate limit
 * and its circuit let it; false with res's status and error filled. */
static bool call_gate(gw_remote *r, const char **key, bool *probe, gw_cloud_result *res) {
    const gw_tier *t = &r->tier;
    *key = NULL;
    *probe = false;
    if (t->api_key_env[0] && !(*key = getenv(t->api_key_env))) {
        res->status = GW_CLOUD_REJECTED;
        snprintf(res->error, sizeof res->error,
                 "the environment variable %s (tier %s's key) is not set", t->api_key_env, t->name);
        return false;
    }
    if (!limit_take(r)) {
        res->status = GW_CLOUD_RATE_LIMITED;
        snprintf(res->error, sizeof res->error, "tier %s is at its own rate limit (rpm %d, tpm %d)",
                 t->name, t->rpm, t->tpm);
        return false;
    }
    if (!breaker_acquire(r, probe)) {
        res->status = GW_CLOUD_BREAKER_OPEN;
        snprintf(res->error, sizeof res->error, "tier %s is down (circuit open)", t->name);
        return false;
    }
    return true;
}

/* Up to 1 + retries attempts, each a fresh copy of proto (see the top of the
 * file); x is left holding the last one, res its status, HTTP status,
 * attempts and error. */
static outcome run_attempts(gw_remote *r, const char *body, const char *key, const xfer *proto,
                            xfer *x, gw_cloud_result *res) {
    const gw_tier *t = &r->tier;
    outcome oc;
    double retry_after = 0;
    for (int k = 0;; k++) { /* at least one attempt */
        if (k > 0) {
            /* the wait, in steps that notice a cancellation */
            for (int64_t left = backoff_ms(r, k, retry_after); left > 0; left -= POLL_MS) {
                if (proto->cancel && atomic_load(proto->cancel)) break;
                sleep_ms(left < POLL_MS ? left : POLL_MS);
            }
        }
        *x = *proto;
        oc = attempt(t, body, key, x);
        res->attempts = k + 1;
        res->http_status = (int)x->status;
        retry_after = x->retry_after_s;
        if (oc != OUT_RETRY || k >= t->retries) break;
        reset_xfer(x);
    }
    static const gw_cloud_status map[] = {GW_CLOUD_OK,       GW_CLOUD_UNREACHABLE,
                                          GW_CLOUD_REJECTED, GW_CLOUD_BAD_RESPONSE,
                                          GW_CLOUD_BROKEN,   GW_CLOUD_CANCELLED};
    res->status = map[oc];
    res->timed_out = oc == OUT_RETRY && x->timed_out;
    snprintf(res->error, sizeof res->error, "%s", x->err);
    return oc;
}

hearth_err gw_cloud_chat(gw_remote *r, const gw_chat *req, gw_text_cb cb, void *user,
                         gw_cloud_result *out) {
    const gw_tier *t = &r->tier;
    const gw_chat_tools *tools = req->tools;
    gw_cloud_result res;
    memset(&res, 0, sizeof res);
    const int64_t t0 = mono_ms();
    char *body =
        t->kind == GW_TIER_ANTHROPIC ? anthropic_body(t, req, tools) : openai_body(t, req, tools);
    if (!body)
        return hr_fail(tools ? HEARTH_ERR_INVALID_ARG : HEARTH_ERR_NOMEM,
                       "cloud: cannot build the request body (out of memory, or malformed tools)");
    gw_sha256_hex(body, strlen(body), res.sent_sha256);
    const char *key;
    bool probe;
    if (!call_gate(r, &key, &probe, &res)) {
        free(body);
        *out = res;
        return HEARTH_OK;
    }
    xfer proto = {.tier = t,
                  .url = t->url,
                  .stream = req->stream,
                  .cb = cb,
                  .on_call = req->on_call,
                  .on_reasoning = req->on_reasoning,
                  .on_thinking = req->on_thinking,
                  .user = user,
                  .cancel = req->cancel,
                  .th_index = -1};
    eng_think_init(&proto.split, false);
    proto.text.cap_max = BODY_MAX;
    proto.reasoning.cap_max = BODY_MAX;
    proto.th_text.cap_max = BODY_MAX;
    proto.th_sign.cap_max = SSE_EVENT_MAX;
    proto.body.cap_max = BODY_MAX;
    proto.data.cap_max = SSE_EVENT_MAX;
    proto.line.cap_max = SSE_EVENT_MAX;
    xfer x;
    const outcome oc = run_attempts(r, body, key, &proto, &x, &res);
    free(body);
    res.text = gw_buf_take(&x.text, &res.text_len);
    res.reasoning = gw_buf_take(&x.reasoning, &res.reasoning_len);
    res.calls = x.calls;
    res.n_calls = x.n_calls;
    x.calls = NULL;
    x.n_calls = 0;
    res.thinking = x.blocks;
    res.n_thinking = x.n_blocks;
    x.blocks = NULL;
    x.n_blocks = 0;
    snprintf(res.finish_reason, sizeof res.finish_reason, "%s", x.finish[0] ? x.finish : "stop");
    if (x.have_usage) {
        res.prompt_tokens = x.prompt_tokens;
        res.completion_tokens = x.completion_tokens;
    } else {
        res.usage_estimated = true;
        res.prompt_tokens = (int)(prompt_bytes(req) / 4 + 1);
        res.completion_tokens = (int)((answer_bytes(&res) + 3) / 4);
    }
    /* what the tier did not count (Anthropic never does) is estimated */
    res.reasoning_tokens =
        x.have_reasoning_tokens
            ? x.reasoning_tokens
            : gw_reasoning_tokens_estimate(res.reasoning_len, res.completion_tokens);
    reset_xfer(&x);
    if (res.attempts) limit_used(r, res.prompt_tokens + res.completion_tokens);
    /* a rejected or cancelled call says nothing about the tier's health */
    breaker_report(r, probe, oc == OUT_OK, oc != OUT_REJECTED && oc != OUT_CANCELLED);
    res.latency_ms = mono_ms() - t0;
    if (!res.text || !res.reasoning) {
        gw_cloud_result_free(&res);
        return hr_fail(HEARTH_ERR_NOMEM, "cloud: out of memory");
    }
    *out = res;
    return HEARTH_OK;
}

hearth_err gw_cloud_post(gw_remote *r, const char *url, const char *body, gw_body_fn reader,
                         void *ctx, gw_cloud_result *out) {
    gw_cloud_result res;
    memset(&res, 0, sizeof res);
    const int64_t t0 = mono_ms();
    gw_sha256_hex(body, strlen(body), res.sent_sha256);
    const char *key;
    bool probe;
    if (call_gate(r, &key, &probe, &res)) {
        xfer proto = {.tier = &r->tier, .url = url, .read = reader, .read_ctx = ctx};
        proto.body.cap_max = RAW_BODY_MAX;
        xfer x;
        const outcome oc = run_attempts(r, body, key, &proto, &x, &res);
        res.prompt_tokens = x.read_tokens;
        reset_xfer(&x);
        limit_used(r, res.prompt_tokens);
        breaker_report(r, probe, oc == OUT_OK, oc != OUT_REJECTED && oc != OUT_CANCELLED);
    }
    res.latency_ms = mono_ms() - t0;
    *out = res;
    return HEARTH_OK;
}
