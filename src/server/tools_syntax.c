/*
 * tools_syntax.c - what is inside a tool-call block, for tools_parse.c
 * (which finds the blocks and assembles the reply): JSON call objects and
 * arrays of them, Qwen3.5's XML form, Gemma 4's call:NAME{...} and LFM2's
 * Python list with their literal values, Ministral 3's NAME[ARGS]{...}.
 * Each reader takes calls of declared functions with object arguments, or
 * nothing; every read is bounded by the text, the literal readers' recursion by
 * a depth of 64.
 */
#include "tools_syntax.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

static bool declared(const srv_tool_set *t, const char *name) {
    for (int k = 0; k < t->n_names; k++)
        if (!strcmp(t->names[k], name)) return true;
    return false;
}

/* Function fn's "parameters"."properties" in the parsed tools (NULL: none). */
static const cJSON *fn_properties(const cJSON *tools, const char *fn) {
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, fn))
            return cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(f, "parameters"), "properties");
    }
    return NULL;
}

/* Whether the properties declare parameter key a string ("type": "string",
 * or a list of types holding it). */
static bool string_param(const cJSON *props, const char *key) {
    const cJSON *type =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(props, key), "type");
    if (cJSON_IsString(type)) return !strcmp(type->valuestring, "string");
    if (!cJSON_IsArray(type)) return false;
    const cJSON *ty;
    cJSON_ArrayForEach(ty, type) {
        if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "string")) return true;
    }
    return false;
}

/* c's name and compact arguments; false (nothing kept) when out of memory. */
static bool fill_call(srv_call_out *c, const char *name, const cJSON *args) {
    c->name = strdup(name);
    c->arguments = cJSON_PrintUnformatted(args);
    if (c->name && c->arguments) return true;
    free(c->name);
    free(c->arguments);
    return false;
}

/* A name between `open` and '>' at p[i..n) (no line break, 1 to 255 bytes),
 * copied into out; the index past the '>', or 0 when there is none. */
static size_t tag_name(const char *p, size_t n, size_t i, const char *open, char *out) {
    const size_t k = strlen(open);
    if (n - i < k || memcmp(p + i, open, k) != 0) return 0;
    size_t e = i + k;
    while (e < n && p[e] != '>' && p[e] != '\n' && e - i - k < 255) e++;
    if (e == n || p[e] != '>' || e == i + k) return 0;
    memcpy(out, p + i + k, e - i - k);
    out[e - i - k] = '\0';
    return e + 1;
}

/* Qwen3.5's call (its template's format): <function=NAME>, then
 * <parameter=KEY>\nVALUE\n</parameter> for each argument, </function>.
 * A value is a JSON string when the function's schema declares it one or
 * it is no JSON text, else the JSON it is (a number, an object, ...). */
static bool read_xml_call(const srv_tool_set *r, const char *p, size_t n, size_t i, size_t *used,
                          srv_call_out *c) {
    char fn[256], key[256];
    if (!(i = tag_name(p, n, i, "<function=", fn)) || !declared(r, fn)) return false;
    cJSON *args = cJSON_CreateObject(), *tools = r->tools ? cJSON_Parse(r->tools) : NULL;
    const cJSON *props = fn_properties(tools, fn);
    bool ok = args != NULL;
    for (;;) {
        while (i < n && tp_is_ws(p[i])) i++;
        if (n - i >= 11 && !memcmp(p + i, "</function>", 11)) {
            i += 11;
            break;
        }
        size_t v = ok ? tag_name(p, n, i, "<parameter=", key) : 0;
        const char *end = v ? tp_find(p + v, n - v, "</parameter>", 12) : NULL;
        if (!end) {
            ok = false;
            break;
        }
        size_t e = (size_t)(end - p);
        if (v < e && p[v] == '\n') v++; /* the template's newlines around the value */
        if (e > v && p[e - 1] == '\n') e--;
        cJSON *val = string_param(props, key) ? NULL : cJSON_ParseWithLength(p + v, e - v);
        if (!val) {
            char *s = strndup(p + v, e - v);
            val = s ? cJSON_CreateString(s) : NULL;
            free(s);
        }
        if (!val || cJSON_GetObjectItemCaseSensitive(args, key) ||
            !cJSON_AddItemToObject(args, key, val)) {
            cJSON_Delete(val);
            ok = false;
            break;
        }
        i = (size_t)(end - p) + 12;
    }
    if (ok) {
        ok = fill_call(c, fn, args);
        *used = i;
    }
    cJSON_Delete(args);
    cJSON_Delete(tools);
    return ok;
}

/* ---- Gemma 4's calls: call:NAME{key:value,...} ---------------------------- */

static const char gemma_quote[] = "<|\"|>"; /* Gemma 4's string quote */
enum { GEMMA_QUOTE_LEN = sizeof gemma_quote - 1, GEMMA_DEPTH_MAX = 64 };

static bool at_quote(const char *p, size_t n, size_t i) {
    return tp_has_prefix(p, n, i, gemma_quote, GEMMA_QUOTE_LEN);
}

/* A <|"|>...<|"|> string at p[*i] (the text between, as it is). */
static cJSON *gemma_string(const char *p, size_t n, size_t *i) {
    const size_t from = *i + GEMMA_QUOTE_LEN;
    const char *end = tp_find(p + from, n - from, gemma_quote, GEMMA_QUOTE_LEN);
    if (!end) return NULL;
    char *t = strndup(p + from, (size_t)(end - p) - from);
    cJSON *v = t ? cJSON_CreateString(t) : NULL;
    free(t);
    *i = (size_t)(end - p) + GEMMA_QUOTE_LEN;
    return v;
}

/* A JSON number at p[*i], kept as written (cJSON would round big integers). */
static cJSON *gemma_number(const char *p, size_t n, size_t *i) {
    size_t k = *i, d;
    if (k < n && p[k] == '-') k++;
    for (d = k; k < n && p[k] >= '0' && p[k] <= '9';) k++;
    if (k == d || (p[d] == '0' && k > d + 1)) return NULL;
    if (k < n && p[k] == '.') {
        for (d = ++k; k < n && p[k] >= '0' && p[k] <= '9';) k++;
        if (k == d) return NULL;
    }
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        if (++k < n && (p[k] == '+' || p[k] == '-')) k++;
        for (d = k; k < n && p[k] >= '0' && p[k] <= '9';) k++;
        if (k == d) return NULL;
    }
    char *t = strndup(p + *i, k - *i);
    cJSON *v = t ? cJSON_CreateRaw(t) : NULL;
    free(t);
    *i = k;
    return v;
}

static cJSON *gemma_value(const char *p, size_t n, size_t *i, int depth);
static char *gemma_key(const char *p, size_t n, size_t *i, int depth);
static cJSON *py_value(const char *p, size_t n, size_t *i, int depth);
static char *py_key(const char *p, size_t n, size_t *i, int depth);

/* How a call's values are written: Gemma 4's (keys bare or in <|"|>,
 * strings in <|"|>) or Python's (LFM2: keys and strings quoted, tuples, a
 * trailing comma). */
typedef struct lit_syntax {
    cJSON *(*value)(const char *p, size_t n, size_t *i, int depth);
    char *(*key)(const char *p, size_t n, size_t *i, int depth); /* malloc'd; NULL: none */
    bool trailing_comma;
} lit_syntax;
static const lit_syntax gemma_syntax = {gemma_value, gemma_key, false},
                        py_syntax = {py_value, py_key, true};

/* {key: value, ...}, [value, ...] or (value, ...) (a list in JSON) at p[*i]. */
// NOLINTNEXTLINE(misc-no-recursion): through the values, depth <= GEMMA_DEPTH_MAX
static cJSON *lit_container(const lit_syntax *s, const char *p, size_t n, size_t *i, int depth) {
    const char open = p[(*i)++], close = open == '[' ? ']' : open == '(' ? ')' : '}';
    cJSON *c = open == '{' ? cJSON_CreateObject() : cJSON_CreateArray();
    for (bool first = true; c; first = false) {
        tp_skip_ws(p, n, i);
        if (*i < n && p[*i] == close && (first || s->trailing_comma)) {
            (*i)++;
            return c;
        }
        char *key = NULL;
        if (open == '{') {
            key = s->key(p, n, i, depth);
            tp_skip_ws(p, n, i);
            if (!key || *i >= n || p[*i] != ':' || cJSON_GetObjectItemCaseSensitive(c, key)) {
                free(key);
                break;
            }
            (*i)++;
        }
        cJSON *v = s->value(p, n, i, depth + 1);
        const bool added =
            v && (key ? cJSON_AddItemToObject(c, key, v) : cJSON_AddItemToArray(c, v));
        free(key);
        if (!added) {
            cJSON_Delete(v);
            break;
        }
        tp_skip_ws(p, n, i);
        if (*i < n && p[*i] == ',') {
            (*i)++;
            continue;
        }
        if (*i < n && p[*i] == close) {
            (*i)++;
            return c;
        }
        break;
    }
    cJSON_Delete(c);
    return NULL;
}

/* A key of {key:value}: bare (up to ':', white space cut) or <|"|>-quoted. */
static char *gemma_key(const char *p, size_t n, size_t *i, int depth) {
    (void)depth;
    if (at_quote(p, n, *i)) {
        const size_t from = *i + GEMMA_QUOTE_LEN;
        const char *end = tp_find(p + from, n - from, gemma_quote, GEMMA_QUOTE_LEN);
        if (!end) return NULL;
        *i = (size_t)(end - p) + GEMMA_QUOTE_LEN;
        return strndup(p + from, (size_t)(end - p) - from);
    }
    size_t k = *i;
    while (k < n && p[k] != ':' && p[k] != '}' && p[k] != ',' && p[k] != '{') k++;
    size_t e = k;
    while (e > *i && tp_is_ws(p[e - 1])) e--;
    if (e == *i) return NULL;
    char *key = strndup(p + *i, e - *i);
    *i = k;
    return key;
}

/* A value: <|"|>string<|"|>, {..}, [..], a number, true / false / null
 * (Python's True / False / None too, as the template prints None). */
// NOLINTNEXTLINE(misc-no-recursion): depth <= GEMMA_DEPTH_MAX
static cJSON *gemma_value(const char *p, size_t n, size_t *i, int depth) {
    static const struct {
        const char *word;
        int type; /* 1 true, 0 false, -1 null */
    } words[] = {{"true", 1}, {"false", 0}, {"null", -1}, {"True", 1}, {"False", 0}, {"None", -1}};
    tp_skip_ws(p, n, i);
    if (*i >= n || depth > GEMMA_DEPTH_MAX) return NULL;
    if (at_quote(p, n, *i)) return gemma_string(p, n, i);
    if (p[*i] == '{' || p[*i] == '[') return lit_container(&gemma_syntax, p, n, i, depth);
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        const size_t k = strlen(words[w].word);
        if (n - *i >= k && !memcmp(p + *i, words[w].word, k)) {
            *i += k;
            return words[w].type < 0 ? cJSON_CreateNull() : cJSON_CreateBool(words[w].type);
        }
    }
    return gemma_number(p, n, i);
}

/* Gemma 4's call (its template's format): call:NAME{key:value,...}, the
 * arguments as JSON (strings in <|"|>, keys bare). */
static bool read_gemma_call(const srv_tool_set *r, const char *p, size_t n, size_t i, size_t *used,
                            srv_call_out *c) {
    size_t e = i + 5; /* "call:" */
    while (e < n && p[e] != '{' && !tp_is_ws(p[e]) && e - i - 5 < 255) e++;
    if (e == n || p[e] != '{' || e == i + 5) return false;
    char fn[256];
    memcpy(fn, p + i + 5, e - i - 5);
    fn[e - i - 5] = '\0';
    if (!declared(r, fn)) return false;
    cJSON *args = lit_container(&gemma_syntax, p, n, &e, 0);
    bool ok = args != NULL;
    if (ok) {
        ok = fill_call(c, fn, args);
        *used = e;
    }
    cJSON_Delete(args);
    return ok;
}

/* ---- LFM2's calls: a Python list of name(key=value, ...) ------------------- */

/* The value of `digits` hex digits at p[i] (-1 when they are not). */
static long hex_at(const char *p, size_t n, size_t i, int digits) {
    long v = 0;
    for (int d = 0; d < digits; d++) {
        if (i + (size_t)d >= n) return -1;
        const char c = p[i + (size_t)d];
        const int x = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
        if (x < 0) return -1;
        v = v * 16 + x;
    }
    return v;
}

/* A Python string literal at p[*i], '...' or "...", with its escapes. */
static cJSON *py_string(const char *p, size_t n, size_t *i) {
    const char q = p[*i];
    char *t = malloc(n - *i + 1); /* the text can only shrink */
    if (!t) return NULL;
    size_t k = 0, j = *i + 1;
    for (; j < n && p[j] != q; j++) {
        if (p[j] != '\\') {
            t[k++] = p[j];
            continue;
        }
        if (++j == n) break;
        static const char from[] = "nrtbf0", to[] = "\n\r\t\b\f";
        const char *e = strchr(from, p[j]);
        const int width = p[j] == 'x' ? 2 : p[j] == 'u' ? 4 : p[j] == 'U' ? 8 : 0;
        if (e && *e) {
            t[k++] = to[e - from]; /* \0: NUL (the sixth, to[]'s terminator) */
        } else if (width) {
            const long cp = hex_at(p, n, j + 1, width);
            if (cp < 0 || cp > 0x10ffff) break;
            /* a lone surrogate as U+FFFD: arguments stay valid UTF-8 */
            k += hr_utf8_put(cp >= 0xd800 && cp < 0xe000 ? 0xfffd : (uint32_t)cp, t + k);
            j += (size_t)width;
        } else {
            t[k++] = p[j]; /* \\, \', \" and any other: the character */
        }
    }
    cJSON *v = NULL;
    if (j < n && p[j] == q) {
        t[k] = '\0';
        v = memchr(t, '\0', k) ? NULL : cJSON_CreateString(t); /* no NUL in JSON text here */
        *i = j + 1;
    }
    free(t);
    return v;
}

/* A Python literal (or JSON's true / false / null, which LFM2 writes too). */
// NOLINTNEXTLINE(misc-no-recursion): depth <= GEMMA_DEPTH_MAX
static cJSON *py_value(const char *p, size_t n, size_t *i, int depth) {
    tp_skip_ws(p, n, i);
    if (*i >= n || depth > GEMMA_DEPTH_MAX) return NULL;
    if (p[*i] == '"' || p[*i] == '\'') return py_string(p, n, i);
    if (p[*i] == '[' || p[*i] == '(' || p[*i] == '{')
        return lit_container(&py_syntax, p, n, i, depth);
    if (p[*i] == '-' || (p[*i] >= '0' && p[*i] <= '9')) return gemma_number(p, n, i);
    return gemma_value(p, n, i, depth); /* the words; anything else fails there */
}

/* A dict's key: a string literal. */
// NOLINTNEXTLINE(misc-no-recursion): through py_value, depth <= GEMMA_DEPTH_MAX
static char *py_key(const char *p, size_t n, size_t *i, int depth) {
    cJSON *k = py_value(p, n, i, depth + 1);
    char *key = cJSON_IsString(k) ? strdup(k->valuestring) : NULL;
    cJSON_Delete(k);
    return key;
}

static bool py_ident_char(char c, bool first) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

/* An identifier at p[*i] into out (1 to 255 bytes); false when there is none. */
static bool py_ident(const char *p, size_t n, size_t *i, char *out) {
    size_t k = *i;
    while (k < n && k - *i < 255 && py_ident_char(p[k], k == *i)) k++;
    if (k == *i) return false;
    memcpy(out, p + *i, k - *i);
    out[k - *i] = '\0';
    *i = k;
    return true;
}

/* One call NAME(key=value, ...) at p[*i] of a declared function. */
static bool py_call(const srv_tool_set *r, const char *p, size_t n, size_t *i, srv_call_out *c) {
    char fn[256], key[256];
    tp_skip_ws(p, n, i);
    if (!py_ident(p, n, i, fn) || !declared(r, fn)) return false;
    tp_skip_ws(p, n, i);
    if (*i >= n || p[*i] != '(') return false;
    (*i)++;
    cJSON *args = cJSON_CreateObject();
    bool ok = args != NULL;
    while (ok) {
        tp_skip_ws(p, n, i);
        if (*i < n && p[*i] == ')') {
            (*i)++;
            break;
        }
        ok = py_ident(p, n, i, key);
        tp_skip_ws(p, n, i);
        ok = ok && *i < n && p[*i] == '=' && !cJSON_GetObjectItemCaseSensitive(args, key);
        if (ok) (*i)++;
        cJSON *v = ok ? py_value(p, n, i, 1) : NULL;
        ok = v && cJSON_AddItemToObject(args, key, v);
        if (!ok) cJSON_Delete(v);
        tp_skip_ws(p, n, i);
        if (ok && *i < n && p[*i] == ',')
            (*i)++;
        else if (ok && (*i >= n || p[*i] != ')'))
            ok = false;
    }
    ok = ok && fill_call(c, fn, args);
    cJSON_Delete(args);
    return ok;
}

void tp_free_calls(srv_call_out *c, int n) {
    for (int k = 0; k < n; k++) {
        free(c[k].name);
        free(c[k].arguments);
    }
}

/* LFM2's block body p[0..n): [call, ...] and nothing else, into found
 * (at most cap); the count, or -1 when it is not such a list. */
int tp_py_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found, int cap) {
    size_t i = 0;
    int k = 0;
    tp_skip_ws(p, n, &i);
    bool ok = i < n && p[i] == '[';
    for (i++; ok;) {
        tp_skip_ws(p, n, &i);
        if (k > 0 && i < n && p[i] == ']') {
            i++;
            break;
        }
        ok = k < cap && py_call(r, p, n, &i, &found[k]);
        if (ok) k++;
        tp_skip_ws(p, n, &i);
        if (ok && i < n && p[i] == ',')
            i++;
        else if (ok && (i >= n || p[i] != ']'))
            ok = false;
    }
    tp_skip_ws(p, n, &i);
    if (ok && i == n) return k;
    tp_free_calls(found, k);
    return -1;
}

/* One call from p[0..n) (leading white space allowed): a JSON object (or
 * a Python dict, as Falcon-H1-7B's template asks for: {'arguments': {...},
 * 'name': ...}), Qwen3.5's XML form or Gemma 4's call:NAME{...}; *used:
 * the bytes it took. False when it is no call. */
bool tp_read_call(const srv_tool_set *r, const char *p, size_t n, size_t *used, srv_call_out *c) {
    size_t i = 0;
    while (i < n && tp_is_ws(p[i])) i++;
    if (i < n && p[i] == '<') return read_xml_call(r, p, n, i, used, c);
    if (tp_has_prefix(p, n, i, "call:", 5)) return read_gemma_call(r, p, n, i, used, c);
    if (i == n || p[i] != '{') return false;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(p + i, n - i, &end, false);
    if (!j) {
        size_t k = i;
        j = lit_container(&py_syntax, p, n, &k, 0);
        end = p + k;
    }
    bool ok = false;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "arguments");
    if (!args) args = cJSON_GetObjectItemCaseSensitive(j, "parameters");
    cJSON *parsed = NULL;
    if (cJSON_IsString(args)) args = parsed = cJSON_Parse(args->valuestring);
    if (cJSON_IsObject(j) && cJSON_IsString(name) && declared(r, name->valuestring) &&
        cJSON_IsObject(args)) {
        ok = fill_call(c, name->valuestring, args);
        *used = (size_t)(end - p);
    }
    cJSON_Delete(parsed);
    cJSON_Delete(j);
    return ok;
}

/* Call objects from p[0..n) (leading white space allowed), separated by
 * white space or ';', or one JSON array of them, and nothing else, into
 * found; the count, or -1 when that is not what p holds. */
int tp_json_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found) {
    size_t i = 0;
    tp_skip_ws(p, n, &i);
    const bool array = i < n && p[i] == '[';
    bool open = array; /* the array's ']' not seen yet */
    i += array;
    int k = 0;
    bool ok = true;
    while (ok && i < n) {
        while (i < n && (tp_is_ws(p[i]) || (k > 0 && p[i] == (array ? ',' : ';')))) i++;
        if (i == n) break;
        if (open && k > 0 && p[i] == ']') {
            open = false;
            i++;
            tp_skip_ws(p, n, &i);
            ok = i == n; /* nothing after the array */
            break;
        }
        size_t used;
        ok = k < SRV_MAX_TOOL_CALLS && tp_read_call(r, p + i, n - i, &used, &found[k]);
        if (ok) {
            k++;
            i += used;
        }
    }
    if (ok && !open) return k;
    tp_free_calls(found, k);
    return -1;
}

/* Ministral 3's calls in p[0..n): NAME[ARGS]{...}, then [TOOL_CALLS] before
 * each further one, and nothing else, into found; the count, or -1. */
int tp_args_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found) {
    static const char args_tag[] = "[ARGS]";
    const size_t at = sizeof args_tag - 1, ct = sizeof TP_MISTRAL_TAG - 1;
    size_t i = 0;
    int k = 0;
    for (;;) {
        char fn[256];
        tp_skip_ws(p, n, &i);
        if (k == SRV_MAX_TOOL_CALLS || !py_ident(p, n, &i, fn) || !declared(r, fn) ||
            !tp_has_prefix(p, n, i, args_tag, at))
            break;
        i += at;
        const char *end = NULL;
        cJSON *args = cJSON_ParseWithLengthOpts(p + i, n - i, &end, false);
        const bool ok = cJSON_IsObject(args) && fill_call(&found[k], fn, args);
        cJSON_Delete(args);
        if (!ok) break;
        k++;
        i = (size_t)(end - p);
        tp_skip_ws(p, n, &i);
        if (i == n) return k;
        if (!tp_has_prefix(p, n, i, TP_MISTRAL_TAG, ct)) break;
        i += ct;
    }
    tp_free_calls(found, k);
    return -1;
}
