/*
 * sse.c - streaming responses: Server-Sent Events fed from a running job.
 *
 * libmicrohttpd pulls the body through sse_read on the connection's own
 * thread. Each call hands out what is pending; when nothing is, it waits for
 * the job's next events (100 ms at a time, looking for a client that went
 * away) and formats them as OpenAI's chunks:
 *
 *   data: {"object":"chat.completion.chunk", "choices":[{"delta":{"role":..}}]}   (chat only)
 *   data: {... "delta":{"content":"..."} ...}          one per token with text (or logprobs)
 *   data: {... "delta":{}, "finish_reason":"stop"}     when the job is done
 *   data: {... "choices":[], "usage":{...}}            with stream_options.include_usage
 *   data: [DONE]
 *
 * With tools (tools.h), content streams until a call starts (a possible
 * opening tag or trailing white space is held back; a reply that starts
 * with "{" is held whole, as it may be nothing but a call); then each call
 * goes out as soon as its closing tag arrives, in OpenAI's two steps:
 *
 *   data: {... "delta":{"tool_calls":[{"index":0,"id":"call_..","type":"function",
 *                                      "function":{"name":"f","arguments":""}}]}}
 *   data: {... "delta":{"tool_calls":[{"index":0,"function":{"arguments":"{..}"}}]}}
 *
 * and when the reply ends, the rest (calls still open, content after them or
 * blocks that were no calls) before finish_reason "tool_calls". Chunks carry
 * no logprobs then. A remote tier's answer (the gateway's bridge job) is not
 * parsed: its text streams as content, and its calls, data with the tier's
 * ids (srv_job.remote_calls), go out in the same two steps as they arrive.
 * Its thinking blocks (an Anthropic tier's, signed) go out whole as each
 * completes, as delta.thinking_blocks beside the reasoning_content pieces.
 *
 * A failure after the headers went out is an event {"error": {...}} before
 * [DONE].
 *
 * n > 1 or several prompts (api_gen.c): one job per choice, a group whose
 * first job's cv tells of news in any of them; the stream carries each
 * choice's chunks with its "index" (role chunks, or a completion's echo of
 * its own prompt, first, then the choices' tokens interleaved as they come,
 * each choice's finish chunk when it ends), then the usage (each prompt
 * once, completions summed) and one [DONE]. Every choice has its own text,
 * tool-call cursor and counters (sse_choice).
 *
 * ollama's dialects (api_ollama.c) stream NDJSON instead: one object a line,
 * {"model","created_at","message":{"role":"assistant","content":piece},
 * "done":false} (generate: "response":piece), then the final object with
 * done true and the counts and durations; no role chunk, no usage chunk, no
 * [DONE]; a failure is a line {"error":"message"}.
 *
 * Anthropic's dialect and the Responses API's send typed events, "event:
 * TYPE" before each "data:" line, which their files make (srv_typed_ops:
 * api_anthropic.c, api_responses.c) from the same calls: the head, each
 * piece of text, each call, the end, a failure. llama-server's /completion
 * (api_llama.c) is one of them, except that each generated token goes out
 * as an event of its own, with its id and probabilities, text or not
 * (srv_llama_stream_token).
 *
 * When the response is destroyed (finished, or the client left) sse_free
 * cancels the job, which frees its slot at once.
 */
#include "server.h"
#include "tools.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum sse_phase { SSE_HEAD, SSE_BODY, SSE_USAGE, SSE_DONE, SSE_END } sse_phase;

/* One choice's job and what the stream has sent of it. */
typedef struct sse_choice {
    srv_job *job; /* a reference, owned */
    int index;
    char *echo; /* completion with echo: its prompt's text, sent first (owned) */
    bool echo_sent;
    void *typed_state; /* the typed-event dialects' state for this choice, owned */
    int next_event;
    bool ended; /* its finish chunk is out */
    /* with tools: the job's text so far, copied under the job's lock so that
     * the parser runs without it; the parser's cursor; content bytes sent */
    gw_buf text;
    srv_tools_stream cur;
    size_t sent;
    int calls_sent;
} sse_choice;

typedef struct srv_stream {
    srv_model *model; /* a reference of the stream's own */
    srv_exchange *x;  /* valid while libmicrohttpd calls sse_read */
    srv_job *job;     /* the first choice's: the group's (its cv tells of all) */
    sse_choice *ch;   /* [n_ch] */
    srv_job **jobs;   /* [n_ch] the choices' jobs (ch[i].job), for the usage */
    int n_ch;
    uint64_t seen_seq; /* n_ch > 1: the group's news counted so far */
    srv_kind kind;
    srv_dialect dialect;
    srv_request *req;           /* ollama's dialects: model and t0 for its objects, owned */
    const srv_typed_ops *typed; /* the typed-event dialects' events (NULL: none) */
    char id[64];
    int64_t created;
    bool include_usage, logprobs;
    /* with tools: what the parser needs (names, parallel), owned */
    bool has_tools;
    srv_tool_set tools;
    sse_phase phase;
    char *out;
    size_t out_len, out_off, out_cap;
} srv_stream;

static void out_put(srv_stream *st, const char *s, size_t n) {
    if (st->out_len + n + 1 > st->out_cap) {
        size_t cap = st->out_cap ? st->out_cap : 4096;
        while (cap < st->out_len + n + 1) cap *= 2;
        char *np = realloc(st->out, cap);
        if (!np) return; /* the chunk is lost; the stream goes on */
        st->out = np;
        st->out_cap = cap;
    }
    memcpy(st->out + st->out_len, s, n);
    st->out_len += n;
}

/* Sends one event: "data: <json>\n\n", one NDJSON line "<json>\n" in
 * ollama's dialects, "event: <its type>\ndata: <json>\n\n" in Anthropic's
 * (takes obj). */
static void send_json(srv_stream *st, cJSON *obj) {
    const cJSON *type = st->typed ? cJSON_GetObjectItemCaseSensitive(obj, "type") : NULL;
    if (cJSON_IsString(type)) {
        out_put(st, "event: ", 7);
        out_put(st, type->valuestring, strlen(type->valuestring));
        out_put(st, "\n", 1);
    }
    char *s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!s) return;
    const bool ndjson = srv_dialect_ollama(st->dialect);
    if (!ndjson) out_put(st, "data: ", 6);
    out_put(st, s, strlen(s));
    out_put(st, ndjson ? "\n" : "\n\n", ndjson ? 1 : 2);
    free(s);
}

/* srv_typed_ops' emit: sends the event. */
static void emit_event(void *user, cJSON *event) { send_json(user, event); }

static cJSON *chunk(srv_stream *st) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", st->id);
    cJSON_AddStringToObject(c, "object",
                            st->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(c, "created", (double)st->created);
    cJSON_AddStringToObject(c, "model", st->model->id);
    cJSON_AddNullToObject(c, "system_fingerprint");
    return c;
}

/* A chunk with one choice, of index `index`; *choice receives it. */
static cJSON *choice_chunk(srv_stream *st, int index, cJSON **choice) {
    cJSON *c = chunk(st), *choices = cJSON_AddArrayToObject(c, "choices");
    *choice = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, *choice);
    cJSON_AddNumberToObject(*choice, "index", index);
    return c;
}

/* A completion's echo not sent yet goes out with the choice's first text,
 * as vLLM streams it, so that the prompt's logprobs (echo with logprobs)
 * come with the text they are for. */
static void send_completion(srv_stream *st, sse_choice *ch, const char *text, size_t len, int ev) {
    const bool echo = ch->echo && !ch->echo_sent;
    const size_t base = ch->echo ? strlen(ch->echo) : 0;
    char *both = echo ? malloc(base + len + 1) : NULL;
    if (echo && !both) return; /* the chunk is lost, as out_put loses one */
    if (echo) {
        memcpy(both, ch->echo, base);
        memcpy(both + base, text, len);
        both[base + len] = '\0';
        text = both;
        len += base;
        ch->echo_sent = true;
    }
    cJSON *choice, *c = choice_chunk(st, ch->index, &choice);
    cJSON_AddItemToObject(choice, "text", srv_json_string(text, len));
    free(both);
    const bool tokens = ev >= 0 && ch->job->events[ev].id >= 0;
    if (st->logprobs && (tokens || (echo && ch->job->prompt_events)))
        cJSON_AddItemToObject(
            choice, "logprobs",
            srv_logprobs_json(st->model, st->kind, ch->job, ev, tokens ? ev + 1 : ev, echo, base));
    else
        cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddNullToObject(choice, "finish_reason");
    if (st->include_usage) cJSON_AddNullToObject(c, "usage");
    send_json(st, c);
}

/* Text of choice ch; ev >= 0: the event it came from (for its logprobs). */
static void send_text(srv_stream *st, sse_choice *ch, const char *text, size_t len, int ev) {
    if (st->typed && st->dialect == SRV_DIALECT_LLAMA && ev >= 0 && ch->job->events[ev].id >= 0) {
        srv_llama_stream_token(ch->typed_state, st->model, ch->job, ev, emit_event, st);
        return;
    }
    if (st->typed) {
        st->typed->text(ch->typed_state, text, len, emit_event, st);
        return;
    }
    if (srv_dialect_ollama(st->dialect)) {
        cJSON *o = srv_ollama_head(st->model, st->req, NULL);
        srv_ollama_piece(o, st->dialect, text, len);
        cJSON_AddFalseToObject(o, "done");
        send_json(st, o);
        return;
    }
    if (st->kind != SRV_CHAT) {
        send_completion(st, ch, text, len, ev);
        return;
    }
    cJSON *choice, *c = choice_chunk(st, ch->index, &choice);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(choice, "delta"), "content",
                          srv_json_string(text, len));
    if (ev >= 0 && st->logprobs && ch->job->events[ev].id >= 0)
        cJSON_AddItemToObject(
            choice, "logprobs",
            srv_logprobs_json(st->model, st->kind, ch->job, ev, ev + 1, false, 0));
    else
        cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddNullToObject(choice, "finish_reason");
    if (st->include_usage) cJSON_AddNullToObject(c, "usage");
    send_json(st, c);
}

/* A piece of choice ch's reasoning (its <think> block): OpenAI's chunks as
 * llama-server sends them (delta.reasoning_content), ollama's "thinking",
 * the typed dialects' own events (none: not sent). */
static void send_reasoning(srv_stream *st, const sse_choice *ch, const char *text, size_t len) {
    if (st->typed) {
        if (st->typed->reasoning) st->typed->reasoning(ch->typed_state, text, len, emit_event, st);
        return;
    }
    if (srv_dialect_ollama(st->dialect)) {
        cJSON *o = srv_ollama_head(st->model, st->req, NULL);
        srv_ollama_piece(o, st->dialect, "", 0);
        srv_ollama_thinking(o, st->dialect, text, len);
        cJSON_AddFalseToObject(o, "done");
        send_json(st, o);
        return;
    }
    cJSON *choice, *c = choice_chunk(st, ch->index, &choice);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(choice, "delta"), "reasoning_content",
                          srv_json_string(text, len));
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddNullToObject(choice, "finish_reason");
    if (st->include_usage) cJSON_AddNullToObject(c, "usage");
    send_json(st, c);
}

/* A remote tier's thinking block, complete: LiteLLM's delta.thinking_blocks
 * (one block a chunk, whole: its text as the tier sent it and its
 * signature, or a redacted block's data), the typed dialects' own events
 * (none: not sent; nor on completions and ollama's dialects). */
static void send_thinking(srv_stream *st, const sse_choice *ch, const gw_thinking_block *b) {
    if (st->typed) {
        if (st->typed->thinking) st->typed->thinking(ch->typed_state, b, emit_event, st);
        return;
    }
    if (st->kind != SRV_CHAT || srv_dialect_ollama(st->dialect)) return;
    cJSON *choice, *c = choice_chunk(st, ch->index, &choice);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(choice, "delta"), "thinking_blocks",
                          srv_thinking_json(b, 1));
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddNullToObject(choice, "finish_reason");
    if (st->include_usage) cJSON_AddNullToObject(c, "usage");
    send_json(st, c);
}

/* Calls of t from index `from` on, each as two chunks (name, arguments);
 * the choice's call indices go on from ch->calls_sent. */
static void send_calls(srv_stream *st, sse_choice *ch, const srv_tool_reply *t, int from) {
    for (int i = from; i < t->n_calls; i++, ch->calls_sent++) {
        const srv_call_out *k = &t->calls[i];
        if (st->typed) {
            st->typed->call(ch->typed_state, k, emit_event, st);
            continue;
        }
        for (int part = 0; part < 2; part++) {
            cJSON *choice, *c = choice_chunk(st, ch->index, &choice);
            cJSON *calls =
                cJSON_AddArrayToObject(cJSON_AddObjectToObject(choice, "delta"), "tool_calls");
            cJSON *call = cJSON_CreateObject();
            cJSON_AddItemToArray(calls, call);
            cJSON_AddNumberToObject(call, "index", ch->calls_sent);
            if (part == 0) {
                cJSON_AddStringToObject(call, "id", k->id);
                cJSON_AddStringToObject(call, "type", "function");
            }
            cJSON *f = cJSON_AddObjectToObject(call, "function");
            if (part == 0) cJSON_AddStringToObject(f, "name", k->name);
            cJSON_AddStringToObject(f, "arguments", part == 0 ? "" : k->arguments);
            cJSON_AddNullToObject(choice, "logprobs");
            cJSON_AddNullToObject(choice, "finish_reason");
            if (st->include_usage) cJSON_AddNullToObject(c, "usage");
            send_json(st, c);
        }
    }
}

/* With tools: the job's new text onto ch->text. Called with the job's mu
 * held; false when out of memory. */
static bool tools_copy_text(sse_choice *ch) {
    const srv_job *j = ch->job;
    const size_t have = ch->text.len, n = j->text_len - have;
    /* even with nothing new: the parser then gets "" rather than NULL */
    return gw_buf_put(&ch->text, n ? j->text + have : "", n) == HEARTH_OK;
}

/* With tools: the content that is safe to send, or the calls that closed
 * since the last time (the parser's cursor looks only at the new bytes).
 * Runs on ch->text, without the job's lock. False when out of memory. */
static bool tools_progress(srv_stream *st, sse_choice *ch) {
    if (!ch->cur.call_started) {
        const size_t safe =
            srv_tools_stream_content(&ch->cur, ch->text.data, ch->text.len, ch->sent);
        if (safe > ch->sent) {
            send_text(st, ch, ch->text.data + ch->sent, safe - ch->sent, -1);
            ch->sent = safe;
        }
    }
    if (!ch->cur.call_started) return true;
    srv_tool_reply t;
    if (!srv_tools_stream_calls(&ch->cur, &st->tools, ch->text.data, ch->text.len, &t))
        return false;
    send_calls(st, ch, &t, 0);
    srv_tool_reply_free(&t);
    return true;
}

/* With tools, at the end: what is left of the content, the remaining calls
 * (the whole reply parsed once more: the content around the calls, and a
 * reply of bare call objects, are only known now). True when the reply had
 * calls. */
static bool tools_end(srv_stream *st, sse_choice *ch) {
    srv_tool_reply t;
    if (!srv_tools_parse_set(&st->tools, ch->text.data ? ch->text.data : "", ch->text.len, true,
                             &t))
        return false;
    if (t.content_len > ch->sent)
        send_text(st, ch, t.content + ch->sent, t.content_len - ch->sent, -1);
    send_calls(st, ch, &t, ch->calls_sent);
    const bool calls = t.n_calls > 0;
    srv_tool_reply_free(&t);
    return calls;
}

/* Whether the choice's text is parsed for calls: with tools, unless it is a
 * remote tier's answer, whose calls come as data (srv_job.remote_calls). */
static bool parses_calls(const srv_stream *st, const sse_choice *ch) {
    return st->has_tools && !ch->job->remote_calls;
}

/* Whether a remote tier's calls arrived that the choice has not sent (mu
 * held): they are news as events are. */
static bool remote_pending(const srv_stream *st, const sse_choice *ch) {
    const srv_tool_reply *rc = ch->job->remote_calls;
    if (!rc || !st->has_tools) return false;
    const int n = st->tools.parallel || rc->n_calls < 1 ? rc->n_calls : 1;
    return ch->calls_sent < n;
}

/* A remote tier's calls that arrived since the last time (mu held). False
 * when out of memory. */
static bool remote_calls(srv_stream *st, sse_choice *ch) {
    srv_tool_reply t;
    if (!srv_tools_remote(&st->tools, ch->job, false, &t)) return false;
    send_calls(st, ch, &t, ch->calls_sent);
    srv_tool_reply_free(&t);
    return true;
}

/* Formats what the choice's job produced since the last call (when its text
 * is parsed for calls: copies the new text for tools_progress instead).
 * Called with the job's mu held. False when out of memory. */
static bool format_events(srv_stream *st, sse_choice *ch) {
    srv_job *j = ch->job;
    const bool parse = parses_calls(st, ch);
    for (; ch->next_event < j->n_events; ch->next_event++) {
        const srv_event *e = &j->events[ch->next_event];
        if (e->id >= 0 && st->x) st->x->completion_tokens++; /* for the log, even if cut short */
        if (e->reason_len) send_reasoning(st, ch, j->reasoning + e->reason_off, e->reason_len);
        if (e->block) send_thinking(st, ch, &j->thinking[e->block - 1]);
        if (parse) continue; /* tools_progress looks at the text */
        /* a token without text yet still goes out with logprobs, and in
         * llama-server's stream (each token an event) */
        const bool every = st->logprobs || st->dialect == SRV_DIALECT_LLAMA;
        if (e->text_len == 0 && !(every && e->id >= 0)) continue;
        send_text(st, ch, j->text + e->text_off, e->text_len, ch->next_event);
    }
    if (!parse) return !st->has_tools || remote_calls(st, ch);
    return tools_copy_text(ch);
}

/* The exchange's counts (the log, the ledger) once every choice is done. */
static void count_usage(srv_stream *st) {
    srv_exchange *x = st->x;
    if (!x) return;
    srv_usage_counts(st->jobs, st->n_ch, &x->prompt_tokens, &x->cached_tokens,
                     &x->completion_tokens);
}

/* A choice's job is done: its finish chunk (or the stream's error). Called
 * with the job's mu held. */
static void format_end(srv_stream *st, sse_choice *ch) {
    srv_job *j = ch->job;
    const bool ndjson = srv_dialect_ollama(st->dialect);
    ch->ended = true;
    if (j->err) {
        srv_error e;
        srv_fail(&e, 500, NULL, NULL, "generation failed: %s", j->err_msg);
        if (st->typed) {
            st->typed->fail(ch->typed_state, &e, emit_event, st);
            st->phase = SSE_END;
            return;
        }
        char *s = ndjson ? srv_ollama_error_json(&e) : srv_error_json(&e);
        cJSON *o = s ? cJSON_Parse(s) : NULL;
        if (o) send_json(st, o);
        free(s);
        st->phase = ndjson ? SSE_END : SSE_DONE;
        return;
    }
    bool all = true;
    for (int i = 0; i < st->n_ch; i++) all &= st->ch[i].ended;
    if (all) count_usage(st); /* every choice's job is done */
    if (ndjson) {
        cJSON *o = srv_ollama_head(st->model, st->req, NULL);
        srv_ollama_piece(o, st->dialect, "", 0);
        srv_ollama_done(o, st->req, j);
        send_json(st, o);
        st->phase = SSE_END;
        return;
    }
    const bool calls =
        !parses_calls(st, ch) ? st->has_tools && ch->calls_sent > 0 : tools_end(st, ch);
    if (st->typed) {
        st->typed->end(ch->typed_state, j, calls, emit_event, st);
        if (all) st->phase = SSE_END;
        return;
    }
    if (ch->echo && !ch->echo_sent) send_completion(st, ch, "", 0, -1); /* nothing generated */
    cJSON *choice, *c = choice_chunk(st, ch->index, &choice);
    if (st->kind == SRV_CHAT)
        cJSON_AddObjectToObject(choice, "delta");
    else
        cJSON_AddStringToObject(choice, "text", "");
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", calls ? "tool_calls" : srv_finish_reason(j));
    if (st->include_usage) cJSON_AddNullToObject(c, "usage");
    send_json(st, c);
    if (all) st->phase = st->include_usage ? SSE_USAGE : SSE_DONE;
}

/* One choice's news: its new events, and its end when its job is done.
 * *fresh: something was there. False when out of memory. */
static bool choice_progress(srv_stream *st, sse_choice *ch, bool *fresh) {
    srv_job *j = ch->job;
    pthread_mutex_lock(&j->mu);
    const bool news = ch->next_event < j->n_events || remote_pending(st, ch);
    bool ok = format_events(st, ch);
    const bool done = ch->next_event == j->n_events && j->state == SRV_JOB_DONE;
    *fresh = news || done;
    if (!parses_calls(st, ch)) {
        if (done) format_end(st, ch);
        pthread_mutex_unlock(&j->mu);
        return true;
    }
    /* with tools the parser works on ch->text, without the lock, which
     * the scheduler takes for every token */
    pthread_mutex_unlock(&j->mu);
    if (ok && news) ok = tools_progress(st, ch);
    if (ok && done) {
        pthread_mutex_lock(&j->mu); /* the job is done: nothing changes now */
        format_end(st, ch);
        pthread_mutex_unlock(&j->mu);
    }
    return ok;
}

/* Whether some choice has news now (called with st->job->mu held): for one
 * choice, its events and state; for a group, its news counter. */
static bool have_news(srv_stream *st) {
    if (st->n_ch > 1) return st->job->group_seq != st->seen_seq;
    const srv_job *j = st->job;
    return st->ch[0].next_event < j->n_events || j->state == SRV_JOB_DONE ||
           remote_pending(st, &st->ch[0]);
}

/* Waits until some choice may have news (100 ms at a time, looking for a
 * client that went away); false when it did go away. */
static bool wait_news(srv_stream *st) {
    srv_job *g = st->job;
    pthread_mutex_lock(&g->mu);
    while (!have_news(st)) {
        srv_wait_ms(&g->cv, &g->mu, 100);
        if (have_news(st)) break;
        pthread_mutex_unlock(&g->mu);
        const bool gone = srv_client_gone(st->x ? st->x->client_fd : -1);
        pthread_mutex_lock(&g->mu);
        if (gone) {
            pthread_mutex_unlock(&g->mu);
            return false;
        }
    }
    st->seen_seq = g->group_seq;
    pthread_mutex_unlock(&g->mu);
    return true;
}

/* Fills st->out with the next events; false when the client went away. */
static bool refill(srv_stream *st) {
    switch (st->phase) {
    case SSE_HEAD: {
        if (st->typed) {
            st->typed->head(st->ch[0].typed_state, emit_event, st);
        } else if (srv_dialect_ollama(st->dialect)) {
            /* ollama sends no role chunk */
        } else {
            for (int i = 0; i < st->n_ch; i++) {
                if (st->kind == SRV_CHAT) {
                    cJSON *choice, *c = choice_chunk(st, i, &choice);
                    cJSON *d = cJSON_AddObjectToObject(choice, "delta");
                    cJSON_AddStringToObject(d, "role", "assistant");
                    cJSON_AddStringToObject(d, "content", "");
                    cJSON_AddNullToObject(choice, "logprobs");
                    cJSON_AddNullToObject(choice, "finish_reason");
                    if (st->include_usage) cJSON_AddNullToObject(c, "usage");
                    send_json(st, c);
                } else if (st->ch[i].echo && !st->ch[i].job->score_prompt) {
                    send_completion(st, &st->ch[i], "", 0, -1); /* else with its logprobs */
                }
            }
        }
        st->phase = SSE_BODY;
        return true;
    }
    case SSE_BODY: {
        bool fresh = false, ok = true;
        while (ok && !fresh) {
            if (!wait_news(st)) return false;
            /* every choice looked at: a group's counter says only that one
             * of them has news */
            for (int i = 0; ok && i < st->n_ch && st->phase == SSE_BODY; i++) {
                bool f = false;
                if (!st->ch[i].ended) ok = choice_progress(st, &st->ch[i], &f);
                fresh |= f;
            }
            if (st->phase != SSE_BODY) break;
        }
        return ok;
    }
    case SSE_USAGE: {
        cJSON *c = chunk(st);
        cJSON_AddArrayToObject(c, "choices");
        srv_usage_json_n(c, st->jobs, st->n_ch);
        send_json(st, c);
        st->phase = SSE_DONE;
        return true;
    }
    case SSE_DONE:
        out_put(st, "data: [DONE]\n\n", 14);
        st->phase = SSE_END;
        return true;
    case SSE_END: return true;
    }
    return true;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_stream *st = cls;
    while (st->out_off == st->out_len) {
        st->out_off = st->out_len = 0;
        if (st->phase == SSE_END) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!refill(st)) {
            for (int i = 0; i < st->n_ch; i++) srv_sched_cancel(st->model->sched, st->ch[i].job);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t n = st->out_len - st->out_off;
    if (n > max) n = max;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    return (ssize_t)n;
}

/* What the stream owns beside the jobs, and the stream. */
static void stream_free(srv_stream *st) {
    free(st->out);
    for (int i = 0; st->ch && i < st->n_ch; i++) {
        gw_buf_free(&st->ch[i].text);
        free(st->ch[i].echo);
        if (st->typed) st->typed->close(st->ch[i].typed_state);
    }
    free(st->ch);
    free(st->jobs);
    srv_tool_set_free(&st->tools);
    if (st->req) srv_request_free(st->req);
    free(st->req);
    free(st);
}

static void sse_free(void *cls) {
    srv_stream *st = cls;
    for (int i = 0; i < st->n_ch; i++) {
        srv_job *j = st->ch[i].job;
        pthread_mutex_lock(&j->mu);
        const bool done = j->state == SRV_JOB_DONE;
        pthread_mutex_unlock(&j->mu);
        if (!done) srv_sched_cancel(st->model->sched, j); /* the client left: free the slot */
        srv_job_release(j);
    }
    srv_model_release(st->model, SRV_KEEP_ALIVE_NONE);
    stream_free(st);
}

/* What ollama's objects need of req (model, dialect, arrival), owned. NULL
 * when out of memory. */
static srv_request *ollama_copy(const srv_request *req) {
    srv_request *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = req->kind;
    t->dialect = req->dialect;
    t->t0_ms = req->t0_ms;
    if (req->model && !(t->model = strdup(req->model))) {
        free(t);
        return NULL;
    }
    return t;
}

/* The typed-event dialects' events (NULL: the dialect is not one). */
static const srv_typed_ops *typed_ops(srv_dialect d) {
    return d == SRV_DIALECT_ANTHROPIC   ? &srv_anthropic_stream
           : d == SRV_DIALECT_RESPONSES ? &srv_responses_stream
           : d == SRV_DIALECT_LLAMA     ? &srv_llama_stream
                                        : NULL;
}

void srv_stream_start(srv_exchange *x, srv_kind kind, const srv_request *req, srv_job *j,
                      const char *id, int64_t created) {
    srv_stream_start_n(x, kind, req, &j, 1, id, created);
}

/* The choices: jobs[i] (the caller's references) at index i, with echo
 * the text of its prompt (i / the request's n), copied, and in a typed
 * dialect (st->typed) the state of its events. False when out of memory. */
static bool stream_choices(srv_stream *st, const srv_request *req, const char *model,
                           srv_job *const *jobs, int n) {
    if (!(st->ch = calloc((size_t)n, sizeof *st->ch)) ||
        !(st->jobs = malloc((size_t)n * sizeof *st->jobs)))
        return false;
    st->n_ch = n;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *echo = srv_request_echo_i(req, i / srv_n_choices(req), &len);
        st->ch[i] = (sse_choice){.job = jobs[i], .index = i};
        st->jobs[i] = jobs[i];
        if (echo && !(st->ch[i].echo = strdup(echo))) return false;
        if (st->typed && !(st->ch[i].typed_state = st->typed->open(req, model, jobs[i])))
            return false;
    }
    return true;
}

void srv_stream_start_n(srv_exchange *x, srv_kind kind, const srv_request *req,
                        srv_job *const *jobs, int n, const char *id, int64_t created) {
    srv_stream *st = calloc(1, sizeof *st);
    struct MHD_Response *resp = NULL;
    /* the request may be freed before the stream ends: what it needs is copied */
    if (st) st->typed = typed_ops(req->dialect);
    if (st && (!stream_choices(st, req, req->model && req->model[0] ? req->model : x->model->id,
                               jobs, n) ||
               (srv_tools_active(req) && !(st->has_tools = srv_tool_set_copy(req, &st->tools))) ||
               (srv_dialect_ollama(req->dialect) && !(st->req = ollama_copy(req))))) {
        stream_free(st);
        st = NULL;
    }
    if (st) {
        st->model = x->model;
        st->x = x;
        st->job = jobs[0];
        st->kind = kind;
        snprintf(st->id, sizeof st->id, "%s", id);
        st->created = created;
        st->dialect = req->dialect;
        st->include_usage = req->include_usage && req->dialect == SRV_DIALECT_OPENAI;
        st->logprobs = req->logprobs && req->dialect == SRV_DIALECT_OPENAI;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, st, sse_free);
        if (resp) srv_model_retain(st->model);
    }
    if (!resp) {
        if (st) stream_free(st);
        for (int i = 0; i < n; i++) {
            srv_sched_cancel(x->model->sched, jobs[i]);
            srv_job_release(jobs[i]);
        }
        srv_error e;
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return;
    }
    MHD_add_response_header(resp, "Content-Type",
                            srv_dialect_ollama(req->dialect) ? "application/x-ndjson"
                                                             : "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    x->status = 200;
    x->response = resp;
    x->stream = st;
}
