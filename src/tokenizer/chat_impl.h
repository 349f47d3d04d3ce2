/*
 * chat_impl.h - private to the chat template files of src/tokenizer/:
 * the text spans chat_template.c renders with (into tok_impl.h's tok_buf),
 * the Python-style JSON printer (chat_json.c) and the tool rendering pieces
 * (chat_tools.c).
 */
#ifndef HEARTH_CHAT_IMPL_H
#define HEARTH_CHAT_IMPL_H

#include "chat_template.h"
#include "tokenizer/tok_impl.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>

/* Whether the template text s contains needle (recognition reads these). */
static inline bool ct_has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

typedef struct ct_span {
    const char *p;
    size_t n;
} ct_span;

static inline void buf_span(tok_buf *b, ct_span s) { buf_put(b, s.p, s.n); }

/* A message as the renderers see it (content may point into scratch text). */
typedef struct ct_msg {
    tok_chat_role role;
    ct_span content;
    const tok_chat_tool_call *calls;
    int n_calls;
    const char *call_id; /* role tool: tool_call_id (may be NULL) */
} ct_msg;

/* Jinja's |trim, Python's str.strip(): Unicode white space cut from both
 * ends (chat_template.c). */
ct_span ct_trim(ct_span s);

/* ---- chat_inst.c ------------------------------------------------------------ */

/* The [INST] variant called name (llama2, llama2-sys, mistral-v1, ...) into
 * *out; false when name is none of them. */
bool ct_inst_named(const char *name, tok_chat_template *out);
/* Which [INST] variant the normalized template text s (it contains
 * "[INST]") is; HEARTH_ERR_UNSUPPORTED for one Hearth does not render. */
hearth_err ct_inst_detect(const char *s, tok_chat_template *out);
/* m[0..n) as the variant's template prints it, appended to b. */
hearth_err ct_inst_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                          const tok_chat_opts *o, tok_buf *b);

/* ---- chat_lfm2.c ------------------------------------------------------------ */

/* LFM2's and LFM2.5's templates (name "lfm2", "lfm2.5") into *out; false
 * when name (or the normalized template text s) is neither. */
bool ct_lfm2_named(const char *name, tok_chat_template *out);
bool ct_lfm2_detect(const char *s, tok_chat_template *out);
/* m[0..n) and the tools as the template prints them, appended to b. */
hearth_err ct_lfm2_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                          const tok_chat_opts *o, tok_buf *b);

/* ---- chat_smollm3.c --------------------------------------------------------- */
/* SmolLM3's template ("smollm3") and Unsloth's shorter copy ("smollm3-short")
 * into *out; false when name (or the normalized template text s) is
 * neither. */
bool ct_smollm3_named(const char *name, tok_chat_template *out);
bool ct_smollm3_detect(const char *s, tok_chat_template *out);
/* m[0..n), the tools and the generation prompt as the template prints them. */
hearth_err ct_smollm3_render(const tok_chat_template *t, const ct_msg *m, size_t n,
                             const tok_chat_opts *o, tok_buf *b);
/* ---- chat_template.c --------------------------------------------------------- */

/* A role's name in ChatML turns ("system", "user", "assistant", "tool"). */
const char *ct_role_name(tok_chat_role r);
/* The first (or last) occurrence of needle in s, or NULL. */
const char *ct_span_find(ct_span s, const char *needle, bool last);
/* Jinja's strftime_now(fmt) for the formats templates use: `now` (0: the
 * clock) in local time, months as the C locale names them; false when it
 * cannot be had. */
typedef enum ct_date_fmt {
    CT_DATE_D_B_Y,     /* "%d %b %Y": 14 Nov 2023 (Llama 3.2) */
    CT_DATE_D_MONTH_Y, /* "%d %B %Y": 14 November 2023 (SmolLM3) */
    CT_DATE_MONTH_D_Y  /* "%B %d, %Y": November 14, 2023 (Granite 3.3) */
} ct_date_fmt;
bool ct_strftime_now(int64_t now, ct_date_fmt fmt, char *out, size_t cap);

/* ---- chat_json.c ------------------------------------------------------------ */

/* Appends what Python's json.dumps(json.loads(text), ensure_ascii=False,
 * indent=indent) prints (indent < 0: None, so ", " and ": " separate) -
 * Jinja's tojson in Hugging Face's chat templates. Key order is kept;
 * numbers print as Python prints the int or float json.loads makes of them.
 * False (nothing sensible appended) when text[0..len) is not one JSON value. */
bool ct_json_dump(tok_buf *b, const char *text, size_t len, int indent);
/* json.dumps(s) of a string s[0..n) (UTF-8). */
void ct_json_quote(tok_buf *b, const char *s, size_t n);
/* Appends each element of the JSON array text[0..len) dumped as above,
 * `before` and `after` around each. False when it is not an array of valid
 * JSON. */
bool ct_json_dump_items(tok_buf *b, const char *text, size_t len, int indent, const char *before,
                        const char *after);
/* Qwen3.5's "<parameter=KEY>\nVALUE\n</parameter>\n" for each member of the
 * JSON object text[0..len), in order: a string value as its text, true,
 * false and null as Python prints them, anything else through tojson. False
 * when it is not an object of valid JSON. */
bool ct_json_xml_params(tok_buf *b, const char *text, size_t len);
/* Whether text is a non-empty JSON array (NULL: no). */
bool ct_json_nonempty_array(const char *text);

/* Reading JSON values in place (Gemma 4's renderer looks members up and
 * sorts them): a value is the span of its text, white space cut; {0} when
 * absent. The text must have passed ct_json_valid. */
bool ct_json_valid(ct_span v);
/* '{', '[', '"', 'n' (number), 't', 'f', 'z' (null); 0 when absent. */
char ct_jv_kind(ct_span v);
/* Member key of an object (the last one of that name, as json.loads keeps). */
ct_span ct_jv_get(ct_span obj, const char *key);
/* Elements of an array or members of an object in order: *at starts at 0;
 * false after the last. key: the member's key as raw JSON text (quoted). */
bool ct_jv_next(ct_span v, size_t *at, ct_span *key, ct_span *val);
/* Jinja's truth of the value json.loads makes ("", 0, [], {}, null: false). */
bool ct_jv_truthy(ct_span v);
/* What Jinja's {{ x }} prints of a scalar: a string's text, a number as
 * Python prints it, True / False / None. Upper-cased with `upper` (|upper),
 * and a list of strings then as Python's str of the list. */
void ct_jv_print(tok_buf *b, ct_span v, bool upper);
/* Whether the string value v's text equals s. */
bool ct_jv_is(ct_span v, const char *s);
/* An object's members sorted as Jinja's dictsort (keys compared lower-cased,
 * ties in order); *out malloc'd (free it), NULL when it is empty. False
 * when out of memory. */
typedef struct ct_jmember {
    ct_span key, val; /* key: raw JSON text (quoted) */
} ct_jmember;
bool ct_jv_sorted(ct_span obj, ct_jmember **out, size_t *n);
/* Python's str() of the value json.loads makes of v (Jinja's `string` of a
 * dict or list): {'k': 'v', 'n': 1, 'b': True, 'x': None}. */
void ct_py_repr(tok_buf *b, ct_span v);
/* Gemma 4's format_argument: strings in <|"|>, mappings as {k:v,...} in
 * dictsort order (keys in <|"|> with escape_keys), lists [a,b], numbers as
 * Python prints them, None for null. False when out of memory. */
bool ct_gemma_value(tok_buf *b, ct_span v, bool escape_keys);

/* ---- chat_tools.c ------------------------------------------------------------ */

/* The "# Tools ... </tool_call>" instructions of Qwen's templates with each
 * tool of tools_json (a JSON array) as one tojson line. */
bool ct_tools_hermes_block(tok_buf *b, const char *tools_json);
/* <tool_call>\n{"name": "NAME", "arguments": ARGS}\n</tool_call>, the
 * arguments as sent (raw) or through tojson. */
bool ct_tools_hermes_call(tok_buf *b, const tok_chat_tool_call *c, bool raw);
/* Qwen3.5's tools block (its "# Tools" instructions, each tool of
 * tools_json as one tojson line, the XML call format) and one call as
 * <tool_call>\n<function=NAME>\n<parameter=...>...</function>\n</tool_call>. */
bool ct_tools_xml_block(tok_buf *b, const char *tools_json);
bool ct_tools_xml_call(tok_buf *b, const tok_chat_tool_call *c);
/* Gemma 4's <|tool>declaration:NAME{...}<tool|> for each tool of tools_json
 * (its format_function_declaration), and one call as
 * <|tool_call>call:NAME{key:value,...}<tool_call|>. False when the JSON is
 * not what they need or memory ran out. */
bool ct_tools_gemma_block(tok_buf *b, const char *tools_json);
bool ct_tools_gemma_call(tok_buf *b, const tok_chat_tool_call *c);
/* The generic rendering for templates without tools: m[0..n) rewritten as
 * plain system/user/assistant messages (the tools block joined to the
 * system message, calls as <tool_call> text, consecutive results as one
 * user message of <tool_response> blocks). *out (n_out messages) and the
 * text they point to live in *scratch (free with ct_generic_free). */
typedef struct ct_scratch {
    char **texts;
    size_t n_texts;
    ct_msg *msgs;
} ct_scratch;
hearth_err ct_tools_generic(const ct_msg *m, size_t n, const char *tools_json, ct_scratch *scratch,
                            ct_msg **out, size_t *n_out);
void ct_generic_free(ct_scratch *s);

#endif
