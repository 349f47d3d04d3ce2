/*
 * cloud_tools.h - private to cloud.c and cloud_tools.c: tools on the remote
 * tiers. A request's tools pass through to an OpenAI-compatible tier as
 * they came and are translated for Anthropic (tools with input_schema,
 * tool_choice auto/any/tool/none, assistant calls as tool_use blocks,
 * results as tool_result blocks; replayed thinking blocks first in an
 * assistant turn). A tier's calls come back as data
 * (gw_tool_call: the tier's id, the name, the arguments' JSON text), whole
 * or assembled from a stream's pieces, and travel so through the cascade
 * (restored, streamed through gw_chat.on_call) to the server, which never
 * parses them out of text.
 *
 * The tools ride in gw_chat.tools (gateway.h).
 */
#ifndef HEARTH_CLOUD_TOOLS_H
#define HEARTH_CLOUD_TOOLS_H

#include "gateway.h"

struct cJSON;

/* ---- request bodies (cloud_tools.c) ---------------------------------------- */

/* OpenAI: tools, tool_choice, parallel_tool_calls onto the body o. */
bool gw_tools_openai_body(struct cJSON *o, const gw_chat_tools *t);
/* OpenAI: message i's tool_calls / tool_call_id onto m (content null when a
 * call carries no text). False when its tool_calls JSON is not an array. */
bool gw_tools_openai_message(struct cJSON *m, const gw_chat_tools *t, int i);
/* Anthropic: "system" (the system messages joined) and "messages" onto o,
 * the turns alternating (consecutive messages of one role join one turn).
 * Without tools (t NULL) a turn's content is its messages' text joined by
 * blank lines; with tools it is content blocks (text, tool_use for an
 * assistant's calls, tool_result for role tool), and the tools and
 * tool_choice are translated onto o. False on a malformed tools or
 * tool_calls JSON. */
bool gw_anthropic_messages(struct cJSON *o, const gw_chat *q, const gw_chat_tools *t);
/* Whether message i replays a thinking block Anthropic can
 * verify (signed, or redacted): only those are sent (a local model's,
 * unsigned, are left out), first in the message's turn, which is then
 * content blocks even without tools. */
bool gw_anthropic_signed(const gw_chat *q, int i);

/* ---- answers ---------------------------------------------------------------- */

/* At most this many calls of one answer are kept (the server takes no more
 * from a reply either: SRV_MAX_TOOL_CALLS); calls past it are dropped and
 * gw_tool_acc_flush fails. */
enum { GW_TOOL_CALLS_MAX = 64 };

/* Calls being assembled (from a stream's pieces, or a whole answer's
 * fields), by the tier's index. */
typedef struct gw_tool_acc {
    int n;
    bool dropped; /* a call past GW_TOOL_CALLS_MAX came */
    struct {
        int index;
        char *id, *name;
        gw_buf args;
    } calls[GW_TOOL_CALLS_MAX];
} gw_tool_acc;

/* Pieces: a call at `index` got its id / name (the first one given is
 * kept) or more of its arguments. */
void gw_tool_acc_id(gw_tool_acc *a, int index, const char *id);
void gw_tool_acc_name(gw_tool_acc *a, int index, const char *name);
void gw_tool_acc_args(gw_tool_acc *a, int index, const char *piece);
/* Appends every assembled call that has a name (in order of arrival) to
 * (*calls)[*n..] (realloc'd), at most GW_TOOL_CALLS_MAX in all, and empties
 * a. HEARTH_ERR_UNSUPPORTED (hr_fail) when calls past the cap were dropped
 * (those before it are appended all the same, for a caller that goes on
 * with them), or NOMEM. */
hearth_err gw_tool_acc_flush(gw_tool_acc *a, gw_tool_call **calls, int *n);
void gw_tool_acc_free(gw_tool_acc *a);

#endif
