/*
 * tools_syntax.h - the call syntaxes of a model's reply (tools_syntax.c),
 * private to tools_parse.c and tools_syntax.c: the readers of a block's
 * text and the small scanning helpers both use.
 */
#ifndef HEARTH_SERVER_TOOLS_SYNTAX_H
#define HEARTH_SERVER_TOOLS_SYNTAX_H

#include "tools.h"

#include <string.h>

/* Mistral's calls start with it (v3: a JSON array after it; Ministral 3: NAME[ARGS]{...}). */
#define TP_MISTRAL_TAG "[TOOL_CALLS]"

static inline bool tp_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline void tp_skip_ws(const char *p, size_t n, size_t *i) {
    while (*i < n && tp_is_ws(p[*i])) (*i)++;
}

/* Whether text[i..len) starts with p[0..m). */
static inline bool tp_has_prefix(const char *text, size_t len, size_t i, const char *p, size_t m) {
    return len - i >= m && !memcmp(text + i, p, m);
}

/* The first needle[0..m) in s[0..n), or NULL. */
static inline const char *tp_find(const char *s, size_t n, const char *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, m)) return s + i;
    return NULL;
}

/* One call from p[0..n) (leading white space allowed): a JSON object
 * ({"name", "arguments"|"parameters"}), Qwen3.5's XML form or Gemma 4's
 * call:NAME{...}; *used: the bytes it took. False when it is no call. */
bool tp_read_call(const srv_tool_set *r, const char *p, size_t n, size_t *used, srv_call_out *c);

/* The readers of a whole block p[0..n): its calls into found (at most
 * SRV_MAX_TOOL_CALLS; LFM2's at most cap) and their count, or -1 (nothing
 * kept) when the block is not such calls and nothing else.
 *   json_calls  call objects separated by white space or ';', or one JSON
 *               array of them
 *   py_calls    LFM2's Python list [f(k=v), ...]
 *   args_calls  Ministral 3's NAME[ARGS]{...}, [TOOL_CALLS] before each
 *               further call */
int tp_json_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found);
int tp_py_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found, int cap);
int tp_args_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found);
/* Frees the names and arguments of c[0..n). */
void tp_free_calls(srv_call_out *c, int n);

#endif
