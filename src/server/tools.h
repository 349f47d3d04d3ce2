/*
 * tools.h - tool calling (OpenAI's function calling) inside the server,
 * private to src/server/:
 *
 *   tools_request.c  the request side: "tools", "tool_choice",
 *                    "parallel_tool_calls", role "tool" messages and
 *                    assistant "tool_calls", validated as request.c does
 *   tools_parse.c    the reply side: a model's text -> content + calls, whole
 *                    (api_gen.c) or as it streams (sse.c); tools_syntax.c
 *                    reads what a call block holds
 *   tools_constrain.c  tool_choice "required" / named enforced locally: the
 *                    call prefix and the JSON Schema of one call
 *
 * What a reply's call looks like: <tool_call>{"name": N, "arguments": {..}}
 * </tool_call> blocks anywhere (Qwen 2.5/3, the generic rendering; Qwen3.5's
 * <function=N> XML inside them), Gemma 4's <|tool_call>call:N{k:v,...}
 * <tool_call|> blocks, LFM2's <|tool_call_start|>[NAME(k=v), ...]
 * <|tool_call_end|> blocks, or a
 * reply that is nothing but
 * {"name": N, "parameters"|"arguments": {..}} objects (Llama 3.1/3.2, and
 * small models that drop the tags), after an optional <|python_tag|>, or
 * one JSON array of them, or [TOOL_CALLS] and the calls to the end of the
 * reply (Mistral v3: such an array; Ministral 3: NAME[ARGS]{..}). A
 * call to a function the request did not declare, or whose arguments are
 * not a JSON object, is not a call: its text stays in the content. That is
 * the local model's text; a remote tier's calls come as data (the
 * gateway's gw_tool_call, kept on the bridge job: srv_tools_remote).
 */
#ifndef HEARTH_SERVER_TOOLS_H
#define HEARTH_SERVER_TOOLS_H

#include "server.h"

struct cJSON;

/* ---- tools_request.c -------------------------------------------------------- */

/* tools, tool_choice, parallel_tool_calls (and the legacy functions /
 * function_call, refused) of a chat request's root object into r. */
bool srv_tools_parse_request(const struct cJSON *root, srv_request *r, srv_error *e);
/* A role "tool" message (tool_call_id, content) or an assistant message's
 * tool_calls; `index` names it in errors. */
bool srv_tools_parse_message(const struct cJSON *msg, int index, srv_message *m, srv_error *e);
void srv_tools_message_free(srv_message *m);
void srv_tools_request_free(srv_request *r);

/* Whether replies to r are parsed for calls: a chat with tools whose
 * tool_choice is not "none". */
bool srv_tools_active(const srv_request *r);

/* ---- tools_parse.c ------------------------------------------------------------ */

typedef struct srv_call_out {
    char id[128];    /* "call_" + 24 hex digits, or a remote tier's own id */
    char *name;      /* a declared function */
    char *arguments; /* compact JSON of an object (always valid JSON) */
} srv_call_out;

typedef struct srv_tool_reply {
    char *content; /* text outside the calls, trailing white space cut; NULL when none */
    size_t content_len;
    srv_call_out *calls;
    int n_calls;
} srv_tool_reply;

/* What the parser needs of a request: the functions it declared and
 * whether more than one call is kept (parallel_tool_calls not false). */
typedef struct srv_tool_set {
    char **names;
    int n_names;
    bool parallel;
    char *tools; /* the request's tools as JSON (NULL: none): the parameters' declared types */
} srv_tool_set;

/* r's set, borrowed (valid while r is). */
srv_tool_set srv_tool_set_of(const srv_request *r);
/* r's set, owned (a stream outlives its request); free with
 * srv_tool_set_free. False when out of memory (out is then empty). */
bool srv_tool_set_copy(const srv_request *r, srv_tool_set *out);
void srv_tool_set_free(srv_tool_set *t);

/* Parses text[0..len). final: the reply is complete; otherwise only calls
 * whose closing tag has arrived count and content is not filled. Without
 * calls the content is the text unchanged. With parallel_tool_calls false
 * only the first call is kept (later ones are dropped); at most
 * SRV_MAX_TOOL_CALLS are taken, a call block past them stays content.
 * False only when out of memory. */
bool srv_tools_parse(const srv_request *r, const char *text, size_t len, bool final,
                     srv_tool_reply *out);
bool srv_tools_parse_set(const srv_tool_set *t, const char *text, size_t len, bool final,
                         srv_tool_reply *out);
void srv_tool_reply_free(srv_tool_reply *t);

/* [{"id","type":"function","function":{"name","arguments"}}...] */
struct cJSON *srv_tool_calls_json(const srv_tool_reply *t);

/* Streaming (sse.c): a cursor over a reply's text as it grows, so that each
 * piece costs what is new in it. Zero-initialized; the text passed to it
 * must be the same text each time, only longer. */
typedef struct srv_tools_stream {
    size_t lead;       /* the first byte that is not white space (or the end) */
    size_t scan;       /* no opening tag starts before this */
    size_t body;       /* in_call: where the open block's body starts */
    size_t close_scan; /* in_call: no closing tag starts before this */
    int n_taken;       /* calls taken so far */
    int kind;          /* in_call: which tag pair opened it (tools_parse.c's tags) */
    bool call_started; /* a call's opening (or a reply of bare objects) was seen */
    bool in_call;      /* an opening tag whose closing tag has not come */
} srv_tools_stream;

/* Before a call started: how many bytes of text[0..len) are content that
 * can be sent now - everything before the first call (or a possible start
 * of one at the end), trailing white space held back (down to `sent`, the
 * bytes already sent: a result <= sent means nothing new). Sets
 * s->call_started once a call's opening has been seen: then no more content
 * goes out until the reply is complete. */
size_t srv_tools_stream_content(srv_tools_stream *s, const char *text, size_t len, size_t sent);
/* After a call started: the calls whose closing tag arrived since the last
 * call, in out (fresh; no content). The same calls, in the same order, as
 * srv_tools_parse_set finds in the whole reply. False only when out of
 * memory. */
bool srv_tools_stream_calls(srv_tools_stream *s, const srv_tool_set *t, const char *text,
                            size_t len, srv_tool_reply *out);
/* srv_tools_stream_content on a fresh cursor, from scratch. */
size_t srv_tools_stream_safe(const char *text, size_t len, bool *call_started);

/* The reply of a finished job as content and calls: with tools, parsed
 * for calls (a remote tier's calls as they came); else all text as
 * content. Free with srv_tool_reply_free; false when out of memory. */
bool srv_job_reply(const srv_request *r, const srv_job *j, srv_tool_reply *out);
/* A remote tier's answer (a job with srv_job.remote_calls, the gateway's
 * bridge): its calls are data, never parsed from its text. Copies the calls
 * (their ids the tier's; with parallel_tool_calls false only the first)
 * into out, and with `content` the job's text as the content (NULL when it
 * is empty beside calls). Call with the job's mu held, or on a job that is
 * done. False only when out of memory. */
bool srv_tools_remote(const srv_tool_set *t, const srv_job *j, bool content, srv_tool_reply *out);
/* Appends a remote tier's call to j->remote_calls under j's mu and wakes
 * its waiters; the id is kept when it is given and fits (else a fresh
 * one). False when out of memory. */
bool srv_tools_job_call(srv_job *j, const char *id, const char *name, const char *arguments);

/* A fresh "call_..." id. */
void srv_tool_call_id(char *out, size_t cap);

/* ---- tools_constrain.c -------------------------------------------------------- */

/* Whether r must be answered with a call: a chat with tools whose
 * tool_choice is "required" or names a function. */
bool srv_tools_forced(const srv_request *r);
/* What opens the assistant turn of a forced call, after the generation
 * prompt: "<tool_call>\n" (Hermes and the generic rendering), "<|tool_call>"
 * (Gemma 4), "<|tool_call_start|>" (LFM2), "[TOOL_CALLS]" (Mistral) or ""
 * (Llama 3.x, whose calls are bare objects). The call itself is the JSON object either way. */
const char *srv_tools_call_prefix(tok_chat_tools family);
/* The JSON Schema of one call (compact text, malloc'd; NULL when out of
 * memory or no function is allowed) to the functions of tools_json (the
 * request's "tools" array) named `only` (NULL: all), their arguments under
 * args_key ("arguments" or "parameters"). *partial: some function's
 * arguments are only constrained to be an object (its parameters use what
 * the constraint cannot enforce, or too many functions are allowed). */
char *srv_tools_schema(const char *tools_json, const char *only, const char *args_key,
                       bool *partial);
/* For a forced request (else nothing): r->tool_schema and r->sampling's
 * constraint from it. False (e filled) when out of memory. */
bool srv_tools_constrain(srv_request *r, tok_chat_tools family, srv_error *e);

#endif
