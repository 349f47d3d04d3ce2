/*
 * tools_parse.c - a model's reply as OpenAI's tool calls (the formats are
 * in tools.h). Pure functions of the text and the request, so the whole
 * reply (api_gen.c) and a stream (sse.c, again on the text so far) agree:
 * a call found before the reply ends is found, at the same place, in the
 * whole reply.
 *
 * Decisions: a call must name a declared function and carry an object
 * (arguments or parameters; a string holding an object's JSON is accepted,
 * as some models write it); anything else stays content, so nothing the
 * model wrote is lost and "arguments" is always valid JSON (it is printed
 * here from the parsed object). A reply that merely starts with "{" is only
 * taken as calls when it is nothing but call objects. At most
 * SRV_MAX_TOOL_CALLS calls are taken from a reply; a well-formed block past
 * them stays content, as a block that is no call does.
 *
 * A remote tier's calls are not parsed here: they come as data on the
 * gateway's bridge job (srv_tools_job_call, srv_tools_remote), with the
 * tier's ids.
 *
 * Gemma 4 writes <|tool_call>call:NAME{key:<|"|>text<|"|>,n:1}<tool_call|>:
 * such a block is read into the same calls (its values typed by their own
 * syntax), whichever template rendered the prompt. LFM2 writes a Python
 * list of calls with keyword arguments, <|tool_call_start|>[f(a="x", n=1),
 * g()]<|tool_call_end|>: every call of the list is taken, or (one that is
 * no call of a declared function) none, and the block stays content.
 *
 * Mistral's models write [TOOL_CALLS] and then the calls, to the end of the
 * reply: a JSON array of {"name", "arguments"} (v3) or, Ministral 3's,
 * NAME[ARGS]{...} with [TOOL_CALLS] again before each further call; the
 * calls are taken all or none, as LFM2's.
 *
 * A stream (srv_tools_stream_*) keeps a cursor instead of parsing the text
 * so far again on every piece: where the search for an opening tag goes on
 * (backed off by the tag's length - 1, as a tag may be cut at the end) and
 * how many calls were taken, so each byte is scanned about once and each
 * block parsed once, when its closing tag arrives.
 */
#include "tools.h"

#include <cjson/cJSON.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the call blocks: <tool_call>...</tool_call> (Hermes, Qwen3.5, the generic
 * rendering), Gemma 4's <|tool_call>...<tool_call|>, LFM2's
 * <|tool_call_start|>[...]<|tool_call_end|> and Mistral's [TOOL_CALLS]...,
 * which has no closing tag (close_len 0): its block ends with the reply */
#define TAG_PAIR(open, close)                                                                      \
    { (open), (close), sizeof(open) - 1, sizeof(close) - 1 }
static const struct {
    const char *open, *close;
    size_t open_len, close_len;
} tags[] = {TAG_PAIR("<tool_call>", "</tool_call>"), TAG_PAIR("<|tool_call>", "<tool_call|>"),
            TAG_PAIR("<|tool_call_start|>", "<|tool_call_end|>"), TAG_PAIR("[TOOL_CALLS]", "")};
#undef TAG_PAIR
enum { N_TAGS = sizeof tags / sizeof *tags, TAG_LFM2 = 2, TAG_MISTRAL = 3 };
static const char python_tag[] = "<|python_tag|>";
enum { OPEN_MAX = sizeof "<|tool_call_start|>" - 1 /* the longest opening tag */ };

void srv_tool_call_id(char *out, size_t cap) {
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull);
    /* splitmix64 twice: ids that do not look sequential */
    uint64_t h[2];
    for (int k = 0; k < 2; k++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        h[k] = z ^ (z >> 31);
    }
    snprintf(out, cap, "call_%016llx%08llx", (unsigned long long)h[0],
             (unsigned long long)(h[1] & 0xffffffffu));
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Whether text[i..len) starts with p[0..m). */
static bool has_prefix(const char *text, size_t len, size_t i, const char *p, size_t m) {
    return len - i >= m && !memcmp(text + i, p, m);
}

srv_tool_set srv_tool_set_of(const srv_request *r) {
    return (srv_tool_set){.names = r->tool_names,
                          .n_names = r->n_tools,
                          .parallel = r->parallel_tool_calls != 0,
                          .tools = r->tools};
}

bool srv_tool_set_copy(const srv_request *r, srv_tool_set *out) {
    *out = (srv_tool_set){.parallel = r->parallel_tool_calls != 0};
    if (!(out->names = calloc((size_t)r->n_tools + 1, sizeof *out->names)) ||
        (r->tools && !(out->tools = strdup(r->tools)))) {
        srv_tool_set_free(out);
        return false;
    }
    for (; out->n_names < r->n_tools; out->n_names++) {
        if (!(out->names[out->n_names] = strdup(r->tool_names[out->n_names]))) {
            srv_tool_set_free(out);
            return false;
        }
    }
    return true;
}

void srv_tool_set_free(srv_tool_set *t) {
    for (int k = 0; t->names && k < t->n_names; k++) free(t->names[k]);
    free(t->names);
    free(t->tools);
    *t = (srv_tool_set){0};
}

static bool declared(const srv_tool_set *t, const char *name) {
    for (int k = 0; k < t->n_names; k++)
        if (!strcmp(t->names[k], name)) return true;
    return false;
}

static const char *find(const char *s, size_t n, const char *needle, size_t m);

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
        while (i < n && is_ws(p[i])) i++;
        if (n - i >= 11 && !memcmp(p + i, "</function>", 11)) {
            i += 11;
            break;
        }
        size_t v = ok ? tag_name(p, n, i, "<parameter=", key) : 0;
        const char *end = v ? find(p + v, n - v, "</parameter>", 12) : NULL;
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

static void skip_ws(const char *p, size_t n, size_t *i) {
    while (*i < n && is_ws(p[*i])) (*i)++;
}

static bool at_quote(const char *p, size_t n, size_t i) {
    return has_prefix(p, n, i, gemma_quote, GEMMA_QUOTE_LEN);
}

/* A <|"|>...<|"|> string at p[*i] (the text between, as it is). */
static cJSON *gemma_string(const char *p, size_t n, size_t *i) {
    const size_t from = *i + GEMMA_QUOTE_LEN;
    const char *end = find(p + from, n - from, gemma_quote, GEMMA_QUOTE_LEN);
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
        skip_ws(p, n, i);
        if (*i < n && p[*i] == close && (first || s->trailing_comma)) {
            (*i)++;
            return c;
        }
        char *key = NULL;
        if (open == '{') {
            key = s->key(p, n, i, depth);
            skip_ws(p, n, i);
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
        skip_ws(p, n, i);
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
        const char *end = find(p + from, n - from, gemma_quote, GEMMA_QUOTE_LEN);
        if (!end) return NULL;
        *i = (size_t)(end - p) + GEMMA_QUOTE_LEN;
        return strndup(p + from, (size_t)(end - p) - from);
    }
    size_t k = *i;
    while (k < n && p[k] != ':' && p[k] != '}' && p[k] != ',' && p[k] != '{') k++;
    size_t e = k;
    while (e > *i && is_ws(p[e - 1])) e--;
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
    skip_ws(p, n, i);
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
    while (e < n && p[e] != '{' && !is_ws(p[e]) && e - i - 5 < 255) e++;
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
    skip_ws(p, n, i);
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
    skip_ws(p, n, i);
    if (!py_ident(p, n, i, fn) || !declared(r, fn)) return false;
    skip_ws(p, n, i);
    if (*i >= n || p[*i] != '(') return false;
    (*i)++;
    cJSON *args = cJSON_CreateObject();
    bool ok = args != NULL;
    while (ok) {
        skip_ws(p, n, i);
        if (*i < n && p[*i] == ')') {
            (*i)++;
            break;
        }
        ok = py_ident(p, n, i, key);
        skip_ws(p, n, i);
        ok = ok && *i < n && p[*i] == '=' && !cJSON_GetObjectItemCaseSensitive(args, key);
        if (ok) (*i)++;
        cJSON *v = ok ? py_value(p, n, i, 1) : NULL;
        ok = v && cJSON_AddItemToObject(args, key, v);
        if (!ok) cJSON_Delete(v);
        skip_ws(p, n, i);
        if (ok && *i < n && p[*i] == ',')
            (*i)++;
        else if (ok && (*i >= n || p[*i] != ')'))
            ok = false;
    }
    ok = ok && fill_call(c, fn, args);
    cJSON_Delete(args);
    return ok;
}

static void free_calls(srv_call_out *c, int n) {
    for (int k = 0; k < n; k++) {
        free(c[k].name);
        free(c[k].arguments);
    }
}

/* LFM2's block body p[0..n): [call, ...] and nothing else, into found
 * (at most cap); the count, or -1 when it is not such a list. */
static int py_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found, int cap) {
    size_t i = 0;
    int k = 0;
    skip_ws(p, n, &i);
    bool ok = i < n && p[i] == '[';
    for (i++; ok;) {
        skip_ws(p, n, &i);
        if (k > 0 && i < n && p[i] == ']') {
            i++;
            break;
        }
        ok = k < cap && py_call(r, p, n, &i, &found[k]);
        if (ok) k++;
        skip_ws(p, n, &i);
        if (ok && i < n && p[i] == ',')
            i++;
        else if (ok && (i >= n || p[i] != ']'))
            ok = false;
    }
    skip_ws(p, n, &i);
    if (ok && i == n) return k;
    free_calls(found, k);
    return -1;
}

/* One call from p[0..n) (leading white space allowed): a JSON object,
 * Qwen3.5's XML form or Gemma 4's call:NAME{...}; *used: the bytes it took.
 * False when it is no call. */
static bool read_call(const srv_tool_set *r, const char *p, size_t n, size_t *used,
                      srv_call_out *c) {
    size_t i = 0;
    while (i < n && is_ws(p[i])) i++;
    if (i < n && p[i] == '<') return read_xml_call(r, p, n, i, used, c);
    if (has_prefix(p, n, i, "call:", 5)) return read_gemma_call(r, p, n, i, used, c);
    if (i == n || p[i] != '{') return false;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(p + i, n - i, &end, false);
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

static const char *find(const char *s, size_t n, const char *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, m)) return s + i;
    return NULL;
}

typedef struct acc {
    srv_tool_reply *out;
    int cap;
    int taken;     /* calls taken before out's (a stream's earlier pieces) */
    char *content; /* NULL: content is not collected */
    size_t n_content;
    bool oom;
} acc;

static void add_content(acc *a, const char *p, size_t n) {
    if (!n || a->oom || !a->content) return;
    memcpy(a->content + a->n_content, p, n); /* content holds the whole text at most */
    a->n_content += n;
}

/* Takes the call c (or frees it). False when it does not count as a call:
 * SRV_MAX_TOOL_CALLS were taken already, so its text stays content. */
static bool add_call(acc *a, const srv_tool_set *r, srv_call_out *c) {
    const int taken = a->taken + a->out->n_calls;
    if ((!r->parallel && taken >= 1) || taken >= SRV_MAX_TOOL_CALLS) {
        free(c->name);
        free(c->arguments);
        /* parallel_tool_calls false: only the first call, the others dropped */
        return !r->parallel;
    }
    if (a->out->n_calls == a->cap) {
        const int cap = a->cap ? 2 * a->cap : 4;
        srv_call_out *nc = realloc(a->out->calls, (size_t)cap * sizeof *nc);
        if (!nc) {
            free(c->name);
            free(c->arguments);
            a->oom = true;
            return true;
        }
        a->out->calls = nc;
        a->cap = cap;
    }
    srv_tool_call_id(c->id, sizeof c->id);
    a->out->calls[a->out->n_calls++] = *c;
    return true;
}

/* Call objects from p[0..n) (leading white space allowed), separated by
 * white space or ';', or one JSON array of them, and nothing else, into
 * found; the count, or -1 when that is not what p holds. */
static int json_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found) {
    size_t i = 0;
    skip_ws(p, n, &i);
    const bool array = i < n && p[i] == '[';
    bool open = array; /* the array's ']' not seen yet */
    i += array;
    int k = 0;
    bool ok = true;
    while (ok && i < n) {
        while (i < n && (is_ws(p[i]) || (k > 0 && p[i] == (array ? ',' : ';')))) i++;
        if (i == n) break;
        if (open && k > 0 && p[i] == ']') {
            open = false;
            i++;
            skip_ws(p, n, &i);
            ok = i == n; /* nothing after the array */
            break;
        }
        size_t used;
        ok = k < SRV_MAX_TOOL_CALLS && read_call(r, p + i, n - i, &used, &found[k]);
        if (ok) {
            k++;
            i += used;
        }
    }
    if (ok && !open) return k;
    free_calls(found, k);
    return -1;
}

/* Ministral 3's calls in p[0..n): NAME[ARGS]{...}, then [TOOL_CALLS] before
 * each further one, and nothing else, into found; the count, or -1. */
static int args_calls(const srv_tool_set *r, const char *p, size_t n, srv_call_out *found) {
    static const char args_tag[] = "[ARGS]";
    const size_t at = sizeof args_tag - 1, ct = strlen(tags[TAG_MISTRAL].open);
    size_t i = 0;
    int k = 0;
    for (;;) {
        char fn[256];
        skip_ws(p, n, &i);
        if (k == SRV_MAX_TOOL_CALLS || !py_ident(p, n, &i, fn) || !declared(r, fn) ||
            !has_prefix(p, n, i, args_tag, at))
            break;
        i += at;
        const char *end = NULL;
        cJSON *args = cJSON_ParseWithLengthOpts(p + i, n - i, &end, false);
        const bool ok = cJSON_IsObject(args) && fill_call(&found[k], fn, args);
        cJSON_Delete(args);
        if (!ok) break;
        k++;
        i = (size_t)(end - p);
        skip_ws(p, n, &i);
        if (i == n) return k;
        if (!has_prefix(p, n, i, tags[TAG_MISTRAL].open, ct)) break;
        i += ct;
    }
    free_calls(found, k);
    return -1;
}

/* The reply is nothing but call objects (after <|python_tag|>), separated
 * by white space or ';', or one JSON array of them. */
static bool bare_calls(const srv_tool_set *r, const char *text, size_t len, acc *a) {
    size_t i = 0;
    skip_ws(text, len, &i);
    if (has_prefix(text, len, i, python_tag, sizeof python_tag - 1)) i += sizeof python_tag - 1;
    srv_call_out found[SRV_MAX_TOOL_CALLS];
    const int n = json_calls(r, text + i, len - i, found);
    for (int k = 0; k < n; k++) add_call(a, r, &found[k]);
    return n > 0;
}

/* Takes the n calls of one list (LFM2's, Mistral's; n < 0: none) all or
 * none: none when they would pass the cap. */
static bool take_list(acc *a, const srv_tool_set *r, srv_call_out *found, int n) {
    const bool fits = a->taken + a->out->n_calls + n <= SRV_MAX_TOOL_CALLS || !r->parallel;
    if (!fits) {
        free_calls(found, n);
        return false;
    }
    for (int k = 0; k < n; k++) (void)add_call(a, r, &found[k]); /* or dropped: parallel false */
    return n > 0;
}

/* The block text[body..body_end) (between the tags of pair `kind`) as
 * calls taken into a; false when it stays content: no call (or more than
 * the object in the block), or past the cap. LFM2's block is a list of
 * calls, Mistral's a JSON array or Ministral 3's calls, or either (a forced
 * call) the JSON object. */
static bool take_block(acc *a, const srv_tool_set *r, int kind, const char *text, size_t body,
                       size_t body_end) {
    size_t at = body;
    while (at < body_end && is_ws(text[at])) at++;
    const char first = at < body_end ? text[at] : '\0';
    srv_call_out found[SRV_MAX_TOOL_CALLS];
    if (kind == TAG_LFM2 && first == '[')
        return take_list(a, r, found,
                         py_calls(r, text + body, body_end - body, found, SRV_MAX_TOOL_CALLS));
    if (kind == TAG_MISTRAL)
        return take_list(a, r, found,
                         first == '[' || first == '{'
                             ? json_calls(r, text + body, body_end - body, found)
                             : args_calls(r, text + body, body_end - body, found));
    size_t used = 0;
    srv_call_out c = {0};
    if (!read_call(r, text + body, body_end - body, &used, &c)) return false;
    for (size_t k = body + used; k < body_end; k++) {
        if (!is_ws(text[k])) { /* the block holds the object and nothing else */
            free(c.name);
            free(c.arguments);
            return false;
        }
    }
    return add_call(a, r, &c);
}

/* The first opening tag of either pair in s[0..n), *kind its pair; NULL
 * when there is none. */
static const char *find_open(const char *s, size_t n, int *kind) {
    const char *first = NULL;
    for (int k = 0; k < N_TAGS; k++) {
        const char *o = find(s, n, tags[k].open, tags[k].open_len);
        if (o && (!first || o < first)) {
            first = o;
            *kind = k;
        }
    }
    return first;
}

bool srv_tools_parse_set(const srv_tool_set *r, const char *text, size_t len, bool final,
                         srv_tool_reply *out) {
    *out = (srv_tool_reply){0};
    acc a = {.out = out};
    /* content only for a final parse: a stream sends none once a call started */
    if (final && !(a.content = malloc(len + 1))) return false;
    int kind = 0;
    if (!find_open(text, len, &kind) && final && bare_calls(r, text, len, &a)) {
        /* the whole reply was calls: no content */
    } else {
        size_t i = 0;
        for (const char *o; (o = find_open(text + i, len - i, &kind)) != NULL;) {
            const size_t at = (size_t)(o - text), body = at + tags[kind].open_len;
            const char *cl = tags[kind].close_len ? find(text + body, len - body, tags[kind].close,
                                                         tags[kind].close_len)
                                                  : NULL; /* Mistral's: to the end */
            if (!cl && !final) {
                i = len; /* an open call: undecided until the reply ends */
                break;
            }
            const size_t body_end = cl ? (size_t)(cl - text) : len;
            const size_t next = cl ? body_end + tags[kind].close_len : len;
            add_content(&a, text + i, at - i);
            if (!take_block(&a, r, kind, text, body, body_end))
                add_content(&a, text + at, next - at); /* not a call: the model's text stays */
            i = next;
        }
        add_content(&a, text + i, len - i);
    }
    if (a.oom) {
        free(a.content);
        srv_tool_reply_free(out);
        return false;
    }
    if (!final || out->n_calls == 0) {
        free(a.content);
        if (final) { /* no calls: the text as it is */
            if (!(out->content = malloc(len + 1))) return false;
            memcpy(out->content, text, len);
            out->content[len] = '\0';
            out->content_len = len;
        }
        return true;
    }
    while (a.n_content && is_ws(a.content[a.n_content - 1])) a.n_content--;
    a.content[a.n_content] = '\0';
    if (a.n_content) {
        out->content = a.content;
        out->content_len = a.n_content;
    } else {
        free(a.content);
    }
    return true;
}

bool srv_tools_parse(const srv_request *r, const char *text, size_t len, bool final,
                     srv_tool_reply *out) {
    const srv_tool_set t = srv_tool_set_of(r);
    return srv_tools_parse_set(&t, text, len, final, out);
}

void srv_tool_reply_free(srv_tool_reply *t) {
    for (int k = 0; k < t->n_calls; k++) {
        free(t->calls[k].name);
        free(t->calls[k].arguments);
    }
    free(t->calls);
    free(t->content);
    *t = (srv_tool_reply){0};
}

cJSON *srv_tool_calls_json(const srv_tool_reply *t) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < t->n_calls; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", t->calls[k].id);
        cJSON_AddStringToObject(c, "type", "function");
        cJSON *f = cJSON_AddObjectToObject(c, "function");
        cJSON_AddStringToObject(f, "name", t->calls[k].name);
        cJSON_AddStringToObject(f, "arguments", t->calls[k].arguments);
        cJSON_AddItemToArray(a, c);
    }
    return a;
}

/* A copy of c into out (the id too); false when out of memory. */
static bool copy_call(const srv_call_out *c, srv_call_out *out) {
    *out = *c;
    out->name = strdup(c->name);
    out->arguments = strdup(c->arguments);
    if (out->name && out->arguments) return true;
    free(out->name);
    free(out->arguments);
    return false;
}

bool srv_tools_remote(const srv_tool_set *t, const srv_job *j, bool content, srv_tool_reply *out) {
    *out = (srv_tool_reply){0};
    const srv_tool_reply *rc = j->remote_calls;
    const int n = !rc ? 0 : t->parallel || rc->n_calls < 1 ? rc->n_calls : 1;
    if (n && !(out->calls = calloc((size_t)n, sizeof *out->calls))) return false;
    for (; out->n_calls < n; out->n_calls++) {
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): n > 0 only with rc
        if (!copy_call(&rc->calls[out->n_calls], &out->calls[out->n_calls])) {
            srv_tool_reply_free(out);
            return false;
        }
    }
    if (content && (j->text_len || !n)) {
        if (!(out->content = malloc(j->text_len + 1))) {
            srv_tool_reply_free(out);
            return false;
        }
        if (j->text_len) memcpy(out->content, j->text, j->text_len);
        out->content[j->text_len] = '\0';
        out->content_len = j->text_len;
    }
    return true;
}

bool srv_tools_job_call(srv_job *j, const char *id, const char *name, const char *arguments) {
    srv_call_out c = {.name = strdup(name), .arguments = strdup(arguments)};
    if (id && id[0] && strlen(id) < sizeof c.id)
        memcpy(c.id, id, strlen(id) + 1);
    else /* none, or too long to keep whole: the server's own */
        srv_tool_call_id(c.id, sizeof c.id);
    pthread_mutex_lock(&j->mu);
    srv_tool_reply *rc = j->remote_calls;
    srv_call_out *nc = rc && c.name && c.arguments
                           ? realloc(rc->calls, (size_t)(rc->n_calls + 1) * sizeof *nc)
                           : NULL;
    if (nc) {
        rc->calls = nc;
        nc[rc->n_calls++] = c;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (!nc) {
        free(c.name);
        free(c.arguments);
    }
    return nc != NULL;
}

/* Where a search for a tag of length m goes on once text[0..len) was
 * searched: a tag may start in the last m - 1 bytes and end in bytes to
 * come. Never before `from`. */
static size_t resume_at(size_t from, size_t len, size_t m) {
    return len >= m - 1 && len - (m - 1) > from ? len - (m - 1) : from;
}

size_t srv_tools_stream_content(srv_tools_stream *s, const char *text, size_t len, size_t sent) {
    size_t end = len;
    int kind = 0;
    const char *o = find_open(text + s->scan, len - s->scan, &kind);
    while (s->lead < len && is_ws(text[s->lead])) s->lead++;
    const size_t i = s->lead, rest = len - i;
    const size_t pt = sizeof python_tag - 1;
    if (o) {
        s->call_started = s->in_call = true;
        s->kind = kind;
        s->body = s->close_scan = (size_t)(o - text) + tags[kind].open_len;
        end = (size_t)(o - text);
    } else {
        s->scan = resume_at(s->scan, len, OPEN_MAX);
        /* a reply that starts as bare calls may be nothing but calls: held until it
           is complete; the start is sure once a '{', "[{" or a whole tag is there */
        const bool obj = rest && text[i] == '{',
                   arr = rest && text[i] == '[' && (rest == 1 || text[i + 1] == '{'),
                   py = rest && !memcmp(text + i, python_tag, rest < pt ? rest : pt);
        if (obj || arr || py) {
            s->call_started = obj || (arr && rest > 1) || (py && rest >= pt);
            return 0;
        }
        /* a possible opening tag (of either pair) cut at the end */
        for (int t = 0; t < N_TAGS; t++) {
            for (size_t k = tags[t].open_len - 1; k >= 1; k--) {
                if (k <= len && !memcmp(text + len - k, tags[t].open, k)) {
                    if (len - k < end) end = len - k;
                    break;
                }
            }
        }
    }
    while (end > sent && is_ws(text[end - 1])) end--;
    return end;
}

bool srv_tools_stream_calls(srv_tools_stream *s, const srv_tool_set *r, const char *text,
                            size_t len, srv_tool_reply *out) {
    *out = (srv_tool_reply){0};
    acc a = {.out = out, .taken = s->n_taken};
    for (;;) {
        if (!s->in_call) {
            int kind = 0;
            const char *o = find_open(text + s->scan, len - s->scan, &kind);
            if (!o) {
                s->scan = resume_at(s->scan, len, OPEN_MAX);
                break;
            }
            s->in_call = true;
            s->kind = kind;
            s->body = s->close_scan = (size_t)(o - text) + tags[kind].open_len;
        }
        const size_t close_len = tags[s->kind].close_len;
        if (!close_len) break; /* Mistral's block: decided when the reply ends */
        const char *cl =
            find(text + s->close_scan, len - s->close_scan, tags[s->kind].close, close_len);
        if (!cl) { /* an open call: undecided until its closing tag comes */
            s->close_scan = resume_at(s->close_scan, len, close_len);
            break;
        }
        const size_t body_end = (size_t)(cl - text);
        /* no call: content, sent at the end */
        (void)take_block(&a, r, s->kind, text, s->body, body_end);
        s->in_call = false;
        s->scan = body_end + close_len;
    }
    if (a.oom) {
        srv_tool_reply_free(out);
        return false;
    }
    s->n_taken += out->n_calls;
    return true;
}

size_t srv_tools_stream_safe(const char *text, size_t len, bool *call_started) {
    srv_tools_stream s = {0};
    const size_t safe = srv_tools_stream_content(&s, text, len, 0);
    *call_started = s.call_started;
    return safe;
}
