/*
 * fake_cloud.h - a small cloud LLM for the gateway's tests, on
 * libmicrohttpd and a loopback port: POST /v1/chat/completions answers in
 * OpenAI's format, POST /v1/messages in Anthropic's (JSON or SSE, as the
 * request asks). The answer echoes the last user message ("echo: <text>"),
 * streamed in 3-byte pieces (whole UTF-8 characters) so that placeholders
 * are cut across events. Every request body is recorded for inspection.
 *
 * Faults are chosen by the request's "model":
 *   ok            answer normally
 *   e429-N        the first N requests get 429 (with Retry-After when
 *                 fc->retry_after is set), then ok; e500-N likewise with 500
 *   slow-MS       wait MS before answering
 *   stall-MS      (streaming) send the first pieces, then wait MS
 *   drop          (streaming) send the first pieces, then cut the connection
 *   drop0-N       the first N requests: close the connection without a word
 *   bad           400 with an OpenAI-style error body
 *   garbage       200 with a body that is not JSON
 *   tools         a tool call of the request's first tool (else get_weather)
 *                 with arguments {"city":"Paris"}: OpenAI tool_calls (streamed
 *                 as delta.tool_calls, arguments in two pieces) or an
 *                 Anthropic tool_use block after the text "Checking."
 *                 (streamed as input_json_delta pieces)
 *   tools-echo    the same, its arguments those of the last call in the
 *                 request's history (OpenAI's arguments string, Anthropic's
 *                 tool_use input), as the tier received them
 *   think         a reasoning model: before the answer, the reasoning
 *                 "thinking about: <text>" (streamed in 3-byte pieces too):
 *                 OpenAI's message / delta reasoning_content unless the
 *                 request's reasoning_effort is "none"; Anthropic's thinking
 *                 block (thinking_delta, signature_delta "c2ln"), and a
 *                 redacted_thinking block (data "b3BhcXVl"), whole and
 *                 streamed, only when the request has
 *                 thinking {type enabled, budget_tokens >= 1024 and below
 *                 max_tokens} and no temperature (else 400, as Anthropic);
 *                 the usage counts the reasoning's pieces as output
 *                 (OpenAI's: also as completion_tokens_details.reasoning_tokens)
 *   think-or      the same in OpenRouter's and vLLM's field, "reasoning"
 *   think-raw     the same as a <think> block at the start of the content
 *
 * Other paths are answered by fc->other when set (fake_embed.h: a tier's
 * /embeddings and /rerank), else 404.
 */
#ifndef HEARTH_TEST_FAKE_CLOUD_H
#define HEARTH_TEST_FAKE_CLOUD_H

#include "gateway/gateway.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { FC_MAX_BODIES = 512 };

typedef struct fake_cloud fake_cloud;

/* Answers a POST to a path the fake does not serve itself (fake_embed.h's
 * /embeddings and /rerank); MHD_NO when none is set. */
typedef enum MHD_Result (*fc_route_fn)(fake_cloud *fc, struct MHD_Connection *c, const char *url,
                                       const char *body);

struct fake_cloud {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t mu;
    int n_requests;
    int n_failed; /* faults served since the last reset */
    char *bodies[FC_MAX_BODIES];
    int n_bodies;
    const char *expect_key; /* when set: requests without it get 401 */
    int retry_after;        /* seconds sent with 429 (0: no header) */
    fc_route_fn other;      /* other paths (NULL: 404) */
};

typedef struct fc_conn {
    char *body;
    size_t len, cap;
} fc_conn;

typedef struct fc_stream {
    char **events;
    int n, next;
    size_t off;
    int stall_ms, stall_at; /* sleep before event stall_at */
    int drop_at;            /* -1: never */
} fc_stream;

static inline void fc_sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline ssize_t fc_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    fc_stream *st = cls;
    if (st->next == st->drop_at) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (st->next >= st->n) return MHD_CONTENT_READER_END_OF_STREAM;
    if (st->next == st->stall_at && st->off == 0 && st->stall_ms) {
        fc_sleep_ms(st->stall_ms);
        st->stall_ms = 0;
    }
    const char *e = st->events[st->next];
    size_t n = strlen(e) - st->off;
    if (n > max) n = max;
    memcpy(buf, e + st->off, n); // NOLINT(bugprone-not-null-terminated-result): a byte stream
    st->off += n;
    if (st->off == strlen(e)) {
        st->next++;
        st->off = 0;
    }
    return (ssize_t)n;
}

static inline void fc_stream_free(void *cls) {
    fc_stream *st = cls;
    for (int i = 0; i < st->n; i++) free(st->events[i]);
    free(st->events);
    free(st);
}

static inline void fc_add_event(fc_stream *st, bool anthropic, const char *type, cJSON *data) {
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    const size_t n = strlen(json) + 64;
    char *e = malloc(n);
    if (anthropic) /* CRLF line ends, as SSE allows */
        snprintf(e, n, "event: %s\r\ndata: %s\r\n\r\n", type, json);
    else
        snprintf(e, n, "data: %s\n\n", json);
    free(json);
    st->events = realloc(st->events, (size_t)(st->n + 1) * sizeof *st->events);
    st->events[st->n++] = e;
}

static inline void fc_add_raw(fc_stream *st, const char *text) {
    st->events = realloc(st->events, (size_t)(st->n + 1) * sizeof *st->events);
    st->events[st->n++] = strdup(text);
}

/* The pieces of the answer: 3 bytes, extended to whole UTF-8 characters. */
static inline int fc_piece(const char *s, size_t at, size_t len) {
    size_t e = at + 3 < len ? at + 3 : len;
    while (e < len && ((unsigned char)s[e] & 0xc0) == 0x80) e++;
    return (int)(e - at);
}

static inline cJSON *fc_openai_chunk(const char *content, size_t n, const char *finish) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", "chatcmpl-fake");
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *d = cJSON_AddObjectToObject(c, "delta");
    if (content) {
        char *t = strndup(content, n);
        cJSON_AddStringToObject(d, "content", t);
        free(t);
    }
    if (finish)
        cJSON_AddStringToObject(c, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), c);
    return o;
}

/* A "think" model's reasoning, streamed before the answer: OpenAI's delta
 * field rkey, or an Anthropic thinking block (index 0) with its signature.
 * Returns the pieces sent. */
static inline int fc_stream_reasoning(fc_stream *st, bool anthropic, const char *reasoning,
                                      const char *rkey) {
    const size_t len = strlen(reasoning);
    int pieces = 0;
    if (anthropic)
        fc_add_raw(st, "event: content_block_start\r\ndata: {\"type\":\"content_block_start\","
                       "\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}"
                       "\r\n\r\n");
    for (size_t at = 0; at < len; pieces++) {
        const int n = fc_piece(reasoning, at, len);
        char *t = strndup(reasoning + at, (size_t)n);
        if (anthropic) {
            cJSON *o = cJSON_CreateObject(), *d;
            cJSON_AddStringToObject(o, "type", "content_block_delta");
            cJSON_AddNumberToObject(o, "index", 0);
            d = cJSON_AddObjectToObject(o, "delta");
            cJSON_AddStringToObject(d, "type", "thinking_delta");
            cJSON_AddStringToObject(d, "thinking", t);
            fc_add_event(st, true, "content_block_delta", o);
        } else {
            cJSON *ch = fc_openai_chunk(NULL, 0, NULL);
            cJSON_AddStringToObject(
                cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "choices"), 0),
                                    "delta"),
                rkey, t);
            fc_add_event(st, false, "", ch);
        }
        free(t);
        at += (size_t)n;
    }
    if (anthropic) {
        fc_add_raw(st, "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\","
                       "\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":"
                       "\"c2ln\"}}\r\n\r\n");
        fc_add_raw(st, "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\","
                       "\"index\":0}\r\n\r\n");
        fc_add_raw(st, "event: content_block_start\r\ndata: {\"type\":\"content_block_start\","
                       "\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\","
                       "\"data\":\"b3BhcXVl\"}}\r\n\r\n");
        fc_add_raw(st, "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\","
                       "\"index\":1}\r\n\r\n");
    }
    return pieces;
}

/* reasoning: a "think" model's (NULL: none), in OpenAI's delta field rkey. */
static inline struct MHD_Response *fc_stream_response(bool anthropic, const char *answer,
                                                      const char *reasoning, const char *rkey,
                                                      int prompt_tokens, int stall_ms, bool drop) {
    fc_stream *st = calloc(1, sizeof *st);
    st->drop_at = -1;
    const size_t len = strlen(answer);
    int pieces = 0;
    if (anthropic) {
        cJSON *m = cJSON_CreateObject(), *msg = cJSON_AddObjectToObject(m, "message");
        cJSON_AddStringToObject(m, "type", "message_start");
        cJSON_AddStringToObject(msg, "id", "msg_fake");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(msg, "usage"), "input_tokens",
                                prompt_tokens);
        fc_add_event(st, true, "message_start", m);
        fc_add_raw(st, "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n");
    } else {
        fc_add_event(st, false, "", fc_openai_chunk("", 0, NULL));
    }
    const int thought = reasoning ? fc_stream_reasoning(st, anthropic, reasoning, rkey) : 0;
    pieces += thought;
    for (size_t at = 0; at < len; pieces++) {
        const int n = fc_piece(answer, at, len);
        if (anthropic) {
            cJSON *o = cJSON_CreateObject(), *d;
            cJSON_AddStringToObject(o, "type", "content_block_delta");
            cJSON_AddNumberToObject(o, "index", reasoning ? 2 : 0);
            d = cJSON_AddObjectToObject(o, "delta");
            cJSON_AddStringToObject(d, "type", "text_delta");
            char *t = strndup(answer + at, (size_t)n);
            cJSON_AddStringToObject(d, "text", t);
            free(t);
            fc_add_event(st, true, "content_block_delta", o);
        } else {
            fc_add_event(st, false, "", fc_openai_chunk(answer + at, (size_t)n, NULL));
        }
        at += (size_t)n;
    }
    if (anthropic) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "message_delta");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "delta"), "stop_reason", "end_turn");
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "usage"), "output_tokens", pieces);
        fc_add_event(st, true, "message_delta", o);
        fc_add_raw(st, "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n");
    } else {
        fc_add_event(st, false, "", fc_openai_chunk(NULL, 0, "stop"));
        cJSON *u = cJSON_CreateObject(), *us = cJSON_AddObjectToObject(u, "usage");
        cJSON_AddArrayToObject(u, "choices");
        cJSON_AddNumberToObject(us, "prompt_tokens", prompt_tokens);
        cJSON_AddNumberToObject(us, "completion_tokens", pieces);
        if (reasoning)
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(us, "completion_tokens_details"),
                                    "reasoning_tokens", thought);
        fc_add_event(st, false, "", u);
        fc_add_raw(st, "data: [DONE]\n\n");
    }
    if (stall_ms) {
        st->stall_ms = stall_ms;
        st->stall_at = 3;
    }
    if (drop) st->drop_at = 3;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, fc_read, st, fc_stream_free);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    return r;
}

/* reasoning: a "think" model's (NULL: none), in OpenAI's message field rkey. */
static inline char *fc_whole_json(bool anthropic, const char *answer, const char *reasoning,
                                  const char *rkey, int prompt_tokens) {
    cJSON *o = cJSON_CreateObject();
    const int completion =
        (int)(strlen(answer) + 2) / 3 + (reasoning ? (int)(strlen(reasoning) + 2) / 3 : 0);
    if (anthropic) {
        cJSON_AddStringToObject(o, "id", "msg_fake");
        cJSON_AddStringToObject(o, "type", "message");
        cJSON *blocks = cJSON_AddArrayToObject(o, "content"), *b;
        if (reasoning) {
            b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "type", "thinking");
            cJSON_AddStringToObject(b, "thinking", reasoning);
            cJSON_AddStringToObject(b, "signature", "c2ln");
            cJSON_AddItemToArray(blocks, b);
            b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "type", "redacted_thinking");
            cJSON_AddStringToObject(b, "data", "b3BhcXVl");
            cJSON_AddItemToArray(blocks, b);
        }
        b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddStringToObject(b, "text", answer);
        cJSON_AddItemToArray(blocks, b);
        cJSON_AddStringToObject(o, "stop_reason", "end_turn");
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", prompt_tokens);
        cJSON_AddNumberToObject(u, "output_tokens", completion);
    } else {
        cJSON_AddStringToObject(o, "id", "chatcmpl-fake");
        cJSON_AddStringToObject(o, "object", "chat.completion");
        cJSON *c = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON_AddStringToObject(m, "role", "assistant");
        if (reasoning) cJSON_AddStringToObject(m, rkey, reasoning);
        cJSON_AddStringToObject(m, "content", answer);
        cJSON_AddStringToObject(c, "finish_reason", "stop");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), c);
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", prompt_tokens);
        cJSON_AddNumberToObject(u, "completion_tokens", completion);
        if (reasoning) {
            const int n_reasoning = (int)(strlen(reasoning) + 2) / 3; /* a token a 3 bytes */
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "completion_tokens_details"),
                                    "reasoning_tokens", n_reasoning);
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static inline enum MHD_Result fc_send(struct MHD_Connection *c, int status, const char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    const enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

/* The arguments of the last call in a request's history (malloc'd), or
 * {"city":"Paris"}. */
static inline char *fc_history_args(const cJSON *req) {
    const cJSON *m, *b;
    char *last = NULL;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(req, "messages")) {
        const cJSON *f = cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(m, "tool_calls"), 0), "function");
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(f, "arguments"));
        if (a) {
            free(last);
            last = strdup(a);
        }
        cJSON_ArrayForEach(b, cJSON_GetObjectItem(m, "content")) {
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(b, "type"));
            if (t && !strcmp(t, "tool_use")) {
                free(last);
                last = cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "input"));
            }
        }
    }
    return last ? last : strdup("{\"city\":\"Paris\"}");
}

/* The "tools" model: one call of `name` with args_json (streamed in two
 * pieces, cut in the middle on a character boundary). */
static inline enum MHD_Result fc_tools_answer(struct MHD_Connection *c, bool anthropic, bool stream,
                                              const char *name, const char *args_json) {
    size_t cut = strlen(args_json) / 2;
    while (cut > 0 && ((unsigned char)args_json[cut] & 0xC0) == 0x80) cut--;
    char *args[2] = {strndup(args_json, cut), strdup(args_json + cut)};
    cJSON *o = cJSON_CreateObject();
    if (!stream) {
        if (anthropic) {
            cJSON *blocks = cJSON_AddArrayToObject(o, "content"), *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "type", "text");
            cJSON_AddStringToObject(b, "text", "Checking.");
            cJSON_AddItemToArray(blocks, b);
            b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "type", "tool_use");
            cJSON_AddStringToObject(b, "id", "toolu_fake");
            cJSON_AddStringToObject(b, "name", name);
            cJSON *input = cJSON_Parse(args_json);
            cJSON_AddItemToObject(b, "input", input ? input : cJSON_CreateObject());
            cJSON_AddItemToArray(blocks, b);
            cJSON_AddStringToObject(o, "stop_reason", "tool_use");
            cJSON *u = cJSON_AddObjectToObject(o, "usage");
            cJSON_AddNumberToObject(u, "input_tokens", 20);
            cJSON_AddNumberToObject(u, "output_tokens", 9);
        } else {
            cJSON *ch = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddNullToObject(m, "content");
            cJSON *tc = cJSON_CreateObject(), *f;
            cJSON_AddStringToObject(tc, "id", "call_fake");
            cJSON_AddStringToObject(tc, "type", "function");
            f = cJSON_AddObjectToObject(tc, "function");
            cJSON_AddStringToObject(f, "name", name);
            cJSON_AddStringToObject(f, "arguments", args_json);
            cJSON_AddItemToArray(cJSON_AddArrayToObject(m, "tool_calls"), tc);
            cJSON_AddStringToObject(ch, "finish_reason", "tool_calls");
            cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
            cJSON *u = cJSON_AddObjectToObject(o, "usage");
            cJSON_AddNumberToObject(u, "prompt_tokens", 20);
            cJSON_AddNumberToObject(u, "completion_tokens", 9);
        }
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        const enum MHD_Result rc = fc_send(c, 200, s);
        free(s);
        free(args[0]);
        free(args[1]);
        return rc;
    }
    cJSON_Delete(o);
    fc_stream *st = calloc(1, sizeof *st);
    st->drop_at = -1;
    if (anthropic) {
        fc_add_raw(st, "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":"
                       "{\"usage\":{\"input_tokens\":20}}}\r\n\r\n");
        cJSON *b = cJSON_CreateObject(), *cb;
        cJSON_AddStringToObject(b, "type", "content_block_start");
        cJSON_AddNumberToObject(b, "index", 0);
        cb = cJSON_AddObjectToObject(b, "content_block");
        cJSON_AddStringToObject(cb, "type", "tool_use");
        cJSON_AddStringToObject(cb, "id", "toolu_fake");
        cJSON_AddStringToObject(cb, "name", name);
        cJSON_AddObjectToObject(cb, "input");
        fc_add_event(st, true, "content_block_start", b);
        for (int k = 0; k < 2; k++) {
            cJSON *d = cJSON_CreateObject(), *dd;
            cJSON_AddStringToObject(d, "type", "content_block_delta");
            cJSON_AddNumberToObject(d, "index", 0);
            dd = cJSON_AddObjectToObject(d, "delta");
            cJSON_AddStringToObject(dd, "type", "input_json_delta");
            cJSON_AddStringToObject(dd, "partial_json", args[k]);
            fc_add_event(st, true, "content_block_delta", d);
        }
        fc_add_raw(st, "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\","
                       "\"index\":0}\r\n\r\n");
        fc_add_raw(st, "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":"
                       "{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\r\n\r\n");
        fc_add_raw(st, "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n");
    } else {
        for (int k = -1; k < 2; k++) {
            cJSON *ch = fc_openai_chunk(NULL, 0, NULL);
            cJSON *d = cJSON_GetObjectItem(
                cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "choices"), 0), "delta");
            cJSON *tc = cJSON_CreateObject(), *f;
            cJSON_AddNumberToObject(tc, "index", 0);
            if (k < 0) {
                cJSON_AddStringToObject(tc, "id", "call_fake");
                cJSON_AddStringToObject(tc, "type", "function");
            }
            f = cJSON_AddObjectToObject(tc, "function");
            if (k < 0) cJSON_AddStringToObject(f, "name", name);
            cJSON_AddStringToObject(f, "arguments", k < 0 ? "" : args[k]);
            cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "tool_calls"), tc);
            fc_add_event(st, false, "", ch);
        }
        fc_add_event(st, false, "", fc_openai_chunk(NULL, 0, "tool_calls"));
        fc_add_raw(st, "data: [DONE]\n\n");
    }
    free(args[0]);
    free(args[1]);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, fc_read, st, fc_stream_free);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    const enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* A "think" model's reasoning about text (malloc'd), or NULL where the
 * request switched it off; *refuse: an Anthropic request whose thinking
 * Anthropic would refuse (a 400 with that message). */
static inline char *fc_reasoning(const cJSON *req, bool anthropic, const char *text,
                                 const char **refuse) {
    *refuse = NULL;
    if (anthropic) {
        const cJSON *th = cJSON_GetObjectItem(req, "thinking");
        if (!th) return NULL;
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(th, "type"));
        const double budget = cJSON_GetNumberValue(cJSON_GetObjectItem(th, "budget_tokens"));
        if (!type || strcmp(type, "enabled") || !(budget >= 1024))
            *refuse = "thinking.budget_tokens: must be at least 1024";
        else if (!(cJSON_GetNumberValue(cJSON_GetObjectItem(req, "max_tokens")) > budget))
            *refuse = "max_tokens must be greater than thinking.budget_tokens";
        else if (cJSON_GetObjectItem(req, "temperature"))
            *refuse = "temperature may only be set to 1 when thinking is enabled";
        if (*refuse) return NULL;
    } else {
        const char *effort = cJSON_GetStringValue(cJSON_GetObjectItem(req, "reasoning_effort"));
        if (effort && !strcmp(effort, "none")) return NULL;
    }
    char *r = malloc(strlen(text) + 32);
    sprintf(r, "thinking about: %s", text);
    return r;
}

/* Whether this request is one of the first n faulty ones since the reset. */
static inline bool fc_take_fault(fake_cloud *fc, int n) {
    pthread_mutex_lock(&fc->mu);
    const bool fault = fc->n_failed < n;
    if (fault) fc->n_failed++;
    pthread_mutex_unlock(&fc->mu);
    return fault;
}

/* The faults every endpoint serves alike, chosen by the model: e429-N,
 * e500-N, drop0-N (see the top), bad, garbage. True when one was sent
 * (*rc: its result). */
static inline bool fc_fault(fake_cloud *fc, struct MHD_Connection *c, const char *model,
                            enum MHD_Result *rc) {
    int n = 0;
    if (sscanf(model, "e429-%d", &n) == 1 && fc_take_fault(fc, n)) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
        char ra[16];
        snprintf(ra, sizeof ra, "%d", fc->retry_after);
        if (fc->retry_after) MHD_add_response_header(r, "Retry-After", ra);
        *rc = MHD_queue_response(c, 429, r);
        MHD_destroy_response(r);
    } else if (sscanf(model, "e500-%d", &n) == 1 && fc_take_fault(fc, n)) {
        *rc = fc_send(c, 500, "{\"error\":{\"message\":\"internal\"}}");
    } else if (sscanf(model, "drop0-%d", &n) == 1 && fc_take_fault(fc, n)) {
        *rc = MHD_NO;
    } else if (!strcmp(model, "bad")) {
        *rc = fc_send(c, 400, "{\"error\":{\"message\":\"the model 'bad' does not exist\"}}");
    } else if (!strcmp(model, "garbage")) {
        *rc = fc_send(c, 200, "<html>not json</html>");
    } else {
        return false;
    }
    return true;
}

static inline enum MHD_Result fc_answer(fake_cloud *fc, struct MHD_Connection *c, const char *url,
                                        const char *body) {
    const bool anthropic = strstr(url, "/messages") != NULL;
    if (fc->expect_key) {
        const char *got = anthropic
                              ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key")
                              : MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char want[256];
        snprintf(want, sizeof want, "%s%s", anthropic ? "" : "Bearer ", fc->expect_key);
        if (!got || strcmp(got, want))
            return fc_send(c, 401,
                           "{\"error\":{\"message\":\"invalid api key\",\"type\":\"auth\"}}");
    }
    if (anthropic && !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "anthropic-version"))
        return fc_send(c, 400, "{\"error\":{\"message\":\"anthropic-version missing\"}}");
    cJSON *req = cJSON_Parse(body);
    if (!req) return fc_send(c, 400, "{\"error\":{\"message\":\"not JSON\"}}");
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(req, "model"));
    model = model ? model : "ok";
    const bool stream = cJSON_IsTrue(cJSON_GetObjectItem(req, "stream"));
    const cJSON *msgs = cJSON_GetObjectItem(req, "messages"), *m;
    const char *last_user = "";
    int n_msgs = 0;
    cJSON_ArrayForEach(m, msgs) {
        n_msgs++;
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(m, "content"));
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "role")), "user") && text)
            last_user = text; /* content blocks (tools) are not echoed */
    }
    char *answer = malloc(strlen(last_user) + 16);
    sprintf(answer, "echo: %s", last_user);
    const int prompt_tokens = 10 * n_msgs + 1;
    int ms = 0;
    enum MHD_Result rc;
    if (fc_fault(fc, c, model, &rc)) {
        /* sent */
    } else if (!strcmp(model, "tools") || !strcmp(model, "tools-echo")) {
        const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(req, "tools"), 0);
        const char *name = cJSON_GetStringValue(
            cJSON_GetObjectItem(anthropic ? t0 : cJSON_GetObjectItem(t0, "function"), "name"));
        char *args =
            !strcmp(model, "tools") ? strdup("{\"city\":\"Paris\"}") : fc_history_args(req);
        rc = fc_tools_answer(c, anthropic, stream, name ? name : "get_weather", args);
        free(args);
    } else {
        if (sscanf(model, "slow-%d", &ms) == 1) fc_sleep_ms(ms);
        const bool stall = sscanf(model, "stall-%d", &ms) == 1;
        const char *refuse = NULL,
                   *rkey = !strcmp(model, "think-or") ? "reasoning" : "reasoning_content";
        char *reasoning =
            !strncmp(model, "think", 5) ? fc_reasoning(req, anthropic, last_user, &refuse) : NULL;
        if (reasoning && !strcmp(model, "think-raw")) { /* the block in the content */
            char *raw = malloc(strlen(reasoning) + strlen(answer) + 32);
            sprintf(raw, "<think>\n%s\n</think>\n\n%s", reasoning, answer);
            free(answer);
            free(reasoning);
            answer = raw;
            reasoning = NULL;
        }
        if (refuse) {
            char err[256];
            snprintf(err, sizeof err, "{\"error\":{\"message\":\"%s\"}}", refuse);
            rc = fc_send(c, 400, err);
        } else if (stream) {
            struct MHD_Response *r =
                fc_stream_response(anthropic, answer, reasoning, rkey, prompt_tokens,
                                   stall ? ms : 0, !strcmp(model, "drop"));
            rc = MHD_queue_response(c, 200, r);
            MHD_destroy_response(r);
        } else {
            char *json = fc_whole_json(anthropic, answer, reasoning, rkey, prompt_tokens);
            rc = fc_send(c, 200, json);
            free(json);
        }
        free(reasoning);
    }
    free(answer);
    cJSON_Delete(req);
    return rc;
}

static inline enum MHD_Result fc_handler(void *cls, struct MHD_Connection *c, const char *url,
                                         const char *method, const char *version,
                                         const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    fake_cloud *fc = cls;
    fc_conn *cn = *con_cls;
    if (!cn) {
        *con_cls = calloc(1, sizeof(fc_conn));
        return MHD_YES;
    }
    if (*upload_size) {
        if (cn->len + *upload_size + 1 > cn->cap) {
            cn->cap = (cn->len + *upload_size + 1) * 2;
            cn->body = realloc(cn->body, cn->cap);
        }
        memcpy(cn->body + cn->len, upload, *upload_size);
        cn->len += *upload_size;
        cn->body[cn->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&fc->mu);
    fc->n_requests++;
    if (fc->n_bodies < FC_MAX_BODIES) fc->bodies[fc->n_bodies++] = strdup(cn->body ? cn->body : "");
    pthread_mutex_unlock(&fc->mu);
    const bool chat = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/messages");
    if (!strcmp(method, "POST") && !chat && fc->other)
        return fc->other(fc, c, url, cn->body ? cn->body : "");
    if (strcmp(method, "POST") || !chat)
        return fc_send(c, 404, "{\"error\":{\"message\":\"no such endpoint\"}}");
    return fc_answer(fc, c, url, cn->body ? cn->body : "");
}

static inline void fc_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                                enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    fc_conn *cn = *con_cls;
    if (cn) free(cn->body);
    free(cn);
    *con_cls = NULL;
}

static inline bool fake_cloud_start(fake_cloud *fc) {
    memset(fc, 0, sizeof *fc);
    pthread_mutex_init(&fc->mu, NULL);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    fc->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                  0, NULL, NULL, fc_handler, fc, MHD_OPTION_NOTIFY_COMPLETED,
                                  fc_completed, fc, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
    if (!fc->daemon) return false;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(fc->daemon, MHD_DAEMON_INFO_BIND_PORT);
    fc->port = di ? di->port : 0;
    return fc->port > 0;
}

/* Forgets the recorded bodies and the faults served. */
static inline void fake_cloud_reset(fake_cloud *fc) {
    pthread_mutex_lock(&fc->mu);
    for (int i = 0; i < fc->n_bodies; i++) free(fc->bodies[i]);
    fc->n_bodies = 0;
    fc->n_requests = 0;
    fc->n_failed = 0;
    pthread_mutex_unlock(&fc->mu);
}

static inline int fake_cloud_requests(fake_cloud *fc) {
    pthread_mutex_lock(&fc->mu);
    const int n = fc->n_requests;
    pthread_mutex_unlock(&fc->mu);
    return n;
}

static inline void fake_cloud_stop(fake_cloud *fc) {
    if (fc->daemon) MHD_stop_daemon(fc->daemon);
    fc->daemon = NULL;
    fake_cloud_reset(fc);
    pthread_mutex_destroy(&fc->mu);
}

/* Writes a gateway configuration (`hearth serve --config`) to path with
 * three tiers on the fake cloud: "oa" (OpenAI's format) and "an"
 * (Anthropic's), whose model "tools" answers with a get_weather call, and
 * "echo" (OpenAI's), whose "tools-echo" calls with the history's last
 * arguments. No retries. False when it cannot be written. */
static inline bool fake_cloud_tools_config(const fake_cloud *fc, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    const int p = fc->port;
    fprintf(f,
            "{\"tiers\":[{\"name\":\"oa\",\"kind\":\"openai\",\"base_url\":"
            "\"http://127.0.0.1:%d\",\"model\":\"tools\",\"retries\":0},{\"name\":\"an\","
            "\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d\",\"model\":\"tools\","
            "\"retries\":0},{\"name\":\"echo\",\"kind\":\"openai\",\"base_url\":"
            "\"http://127.0.0.1:%d\",\"model\":\"tools-echo\",\"retries\":0}]}",
            p, p, p);
    return fclose(f) == 0;
}

/* Writes a gateway configuration to path with one OpenAI-format tier
 * "cloud" on the fake cloud (model "ok", no retries) at $1000 per million
 * tokens (one answer costs more than a tenth of a cent), and `more`: the
 * rest of the top-level object (`"keys": [...]`, ...; "" for none). */
static inline bool fake_cloud_priced_config(const fake_cloud *fc, const char *path,
                                            const char *more) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f,
            "{\"tiers\":[{\"name\":\"cloud\",\"base_url\":\"http://127.0.0.1:%d\",\"model\":\"ok\","
            "\"retries\":0,\"price_per_mtok\":{\"input\":1000,\"output\":1000}}]%s%s}",
            fc->port, more[0] ? "," : "", more);
    return fclose(f) == 0;
}

/* A remote tier of `kind` on the fake cloud asking for `model`, named
 * "t-<model>", gw_tier_default's settings otherwise; false when the URL is
 * refused. */
static inline bool fc_tier(const fake_cloud *fc, gw_tier_kind kind, const char *model,
                           gw_tier *out) {
    gw_tier t = gw_tier_default();
    snprintf(t.name, sizeof t.name, "t-%s", model);
    t.kind = kind;
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", fc->port);
    snprintf(t.model, sizeof t.model, "%s", model);
    *out = t;
    return gw_endpoint_url(kind, base, out->url, sizeof out->url) == HEARTH_OK;
}

#endif
