/*
 * chat_json.c - JSON printed the way Hugging Face chat templates print it:
 * their tojson filter is Python's json.dumps(value, ensure_ascii=False,
 * indent=indent) of what json.loads made of the client's JSON. So a tool's
 * schema in a prompt reads {"type": "object", "properties": {...}} (", " and
 * ": " without indent; "," and ": " with one), strings keep their non-ASCII
 * characters, escape only '"', '\\' and control characters (\n, \t, ...
 * and \u00XX in lowercase hex), and numbers print as Python's int (as
 * written) or float (repr: the shortest digits that read back the same
 * double, "1.0", "1e-05", "1e+16").
 *
 * The input is parsed here (strict RFC 8259, nesting depth <= 64) rather
 * than through a JSON library so that key order and exact integer digits
 * survive.
 */
#include "chat_impl.h"

#include <math.h>
#include <stdio.h>

enum { JSON_DEPTH_MAX = 64 };

typedef struct jp {
    const char *s;
    size_t n, i;
    tok_buf *b;
    int indent;
    bool raw; /* the next string prints as its text, unquoted (Jinja's `string`) */
} jp;

static void skip_ws(jp *p) {
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static void put_utf8(tok_buf *b, unsigned cp) {
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    buf_put(b, u, k);
}

/* One character of a decoded string, escaped as json.dumps escapes it. */
static void quote_char(tok_buf *b, unsigned cp) {
    char esc[8];
    switch (cp) {
    case '"': buf_puts(b, "\\\""); return;
    case '\\': buf_puts(b, "\\\\"); return;
    case '\n': buf_puts(b, "\\n"); return;
    case '\r': buf_puts(b, "\\r"); return;
    case '\t': buf_puts(b, "\\t"); return;
    case '\b': buf_puts(b, "\\b"); return;
    case '\f': buf_puts(b, "\\f"); return;
    default:
        if (cp < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", cp);
            buf_puts(b, esc);
        } else {
            put_utf8(b, cp);
        }
    }
}

void ct_json_quote(tok_buf *b, const char *s, size_t n) {
    buf_puts(b, "\"");
    size_t i = 0;
    while (i < n) {
        const unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            quote_char(b, c);
            i++;
        } else { /* UTF-8 passes through (ensure_ascii=False) */
            size_t k = 1;
            while (i + k < n && ((unsigned char)s[i + k] & 0xc0) == 0x80) k++;
            buf_put(b, s + i, k);
            i += k;
        }
    }
    buf_puts(b, "\"");
}

static int hex4(const char *s) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        const char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* A string: decoded, then re-escaped into p->b. */
static bool parse_string(jp *p) {
    if (p->i >= p->n || p->s[p->i] != '"') return false;
    const bool raw = p->raw;
    p->raw = false;
    p->i++;
    if (!raw) buf_puts(p->b, "\"");
    while (p->i < p->n) {
        const unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            if (!raw) buf_puts(p->b, "\"");
            return true;
        }
        if (c < 0x20) return false;
        if (c != '\\') {
            size_t k = 1;
            if (c >= 0x80)
                while (p->i + k < p->n && ((unsigned char)p->s[p->i + k] & 0xc0) == 0x80) k++;
            if (c < 0x80 && !raw)
                quote_char(p->b, c);
            else
                buf_put(p->b, p->s + p->i, k);
            p->i += k;
            continue;
        }
        if (p->i + 1 >= p->n) return false;
        const char e = p->s[p->i + 1];
        p->i += 2;
        unsigned cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            if (p->i + 4 > p->n) return false;
            const int h = hex4(p->s + p->i);
            if (h < 0) return false;
            p->i += 4;
            cp = (unsigned)h;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* a pair's high half */
                if (p->i + 6 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') return false;
                const int lo = hex4(p->s + p->i + 2);
                if (lo < 0xdc00 || lo > 0xdfff) return false;
                p->i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return false; /* a lone low half cannot be printed as UTF-8 */
            }
            break;
        }
        default: return false;
        }
        if (raw)
            put_utf8(p->b, cp);
        else
            quote_char(p->b, cp);
    }
    return false;
}

/* Python's repr of a float: the shortest digits that read back as d;
 * exponent form when the decimal point is 4+ places left or 16+ right. */
static void put_py_float(tok_buf *b, double d) {
    char out[64];
    if (isinf(d)) {
        buf_puts(b, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    /* e = [-]D[.DDD]e[+-]XX */
    const bool neg = e[0] == '-';
    const char *m = e + neg;
    char digits[32];
    size_t nd = 0;
    const char *x = m;
    for (; *x && *x != 'e'; x++)
        if (*x >= '0' && *x <= '9' && nd + 1 < sizeof digits) digits[nd++] = *x;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    const int exp10 = (int)strtol(x + 1, NULL, 10); /* snprintf's exponent */
    const int decpt = exp10 + 1;                    /* value = 0.DIGITS x 10^decpt */
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (digits[0] == '0') { /* zero */
        snprintf(out + o, sizeof out - o, "0.0");
    } else if (decpt <= -4 || decpt > 16) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int k = 0; k < -decpt; k++) out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
        out[o] = '\0';
    } else {
        for (int k = 0; k < decpt; k++) out[o++] = (size_t)k < nd ? digits[k] : '0';
        out[o++] = '.';
        if ((size_t)decpt < nd) {
            memcpy(out + o, digits + decpt, nd - (size_t)decpt);
            o += nd - (size_t)decpt;
        } else {
            out[o++] = '0';
        }
        out[o] = '\0';
    }
    buf_puts(b, out);
}

static bool parse_number(jp *p) {
    const size_t start = p->i;
    bool is_float = false;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n) return false;
    if (p->s[p->i] == '0') {
        p->i++;
    } else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    } else {
        return false;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        is_float = true;
        p->i++;
        const size_t d = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
        if (p->i == d) return false;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        is_float = true;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        const size_t d = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
        if (p->i == d) return false;
    }
    const size_t len = p->i - start;
    if (!is_float) { /* Python's int: the digits as written, but -0 is 0 */
        if (len == 2 && p->s[start] == '-' && p->s[start + 1] == '0')
            buf_puts(p->b, "0");
        else
            buf_put(p->b, p->s + start, len);
        return true;
    }
    char tmp[512];
    if (len >= sizeof tmp) return false;
    memcpy(tmp, p->s + start, len);
    tmp[len] = '\0';
    put_py_float(p->b, strtod(tmp, NULL));
    return true;
}

static bool literal(jp *p, const char *word) {
    const size_t k = strlen(word);
    if (p->n - p->i < k || memcmp(p->s + p->i, word, k) != 0) return false;
    buf_put(p->b, word, k);
    p->i += k;
    return true;
}

static void newline(jp *p, int level) {
    buf_puts(p->b, "\n");
    for (int k = 0; k < level * p->indent; k++) buf_puts(p->b, " ");
}

static bool parse_value(jp *p, int level);

/* An object or an array (open '{' or '['). */
// NOLINTNEXTLINE(misc-no-recursion): through parse_value, level <= JSON_DEPTH_MAX
static bool parse_container(jp *p, int level, bool object) {
    const char close = object ? '}' : ']';
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        buf_puts(p->b, object ? "{}" : "[]");
        return true;
    }
    buf_puts(p->b, object ? "{" : "[");
    for (bool first = true;; first = false) {
        if (!first) buf_puts(p->b, p->indent >= 0 ? "," : ", ");
        if (p->indent >= 0) newline(p, level + 1);
        skip_ws(p);
        if (object) {
            if (!parse_string(p)) return false;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return false;
            p->i++;
            buf_puts(p->b, ": ");
        }
        if (!parse_value(p, level + 1)) return false;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            break;
        }
        return false;
    }
    if (p->indent >= 0) newline(p, level);
    buf_put(p->b, &close, 1);
    return true;
}

// NOLINTNEXTLINE(misc-no-recursion): level <= JSON_DEPTH_MAX (64)
static bool parse_value(jp *p, int level) {
    if (level > JSON_DEPTH_MAX) return false;
    skip_ws(p);
    if (p->i >= p->n) return false;
    switch (p->s[p->i]) {
    case '{': return parse_container(p, level, true);
    case '[': return parse_container(p, level, false);
    case '"': return parse_string(p);
    case 't': return literal(p, "true");
    case 'f': return literal(p, "false");
    case 'n': return literal(p, "null");
    default: return parse_number(p);
    }
}

bool ct_json_dump(tok_buf *b, const char *text, size_t len, int indent) {
    jp p = {.s = text, .n = len, .b = b, .indent = indent};
    if (!parse_value(&p, 0)) return false;
    skip_ws(&p);
    return p.i == p.n;
}

bool ct_json_dump_items(tok_buf *b, const char *text, size_t len, int indent, const char *before,
                        const char *after) {
    tok_buf scratch = {0}; /* the array as a whole, to find where elements end */
    jp p = {.s = text, .n = len, .b = &scratch, .indent = -1};
    skip_ws(&p);
    if (p.i >= p.n || p.s[p.i] != '[') return false;
    p.i++;
    skip_ws(&p);
    bool ok = true;
    if (p.i < p.n && p.s[p.i] == ']') {
        p.i++;
    } else {
        for (;;) {
            skip_ws(&p);
            const size_t start = p.i;
            scratch.n = 0;
            if (!parse_value(&p, 1)) {
                ok = false;
                break;
            }
            buf_puts(b, before);
            if (!ct_json_dump(b, text + start, p.i - start, indent)) {
                ok = false;
                break;
            }
            buf_puts(b, after);
            skip_ws(&p);
            if (p.i < p.n && p.s[p.i] == ',') {
                p.i++;
                continue;
            }
            if (p.i < p.n && p.s[p.i] == ']') {
                p.i++;
                break;
            }
            ok = false;
            break;
        }
    }
    free(scratch.p);
    if (!ok || scratch.oom) return false;
    skip_ws(&p);
    return p.i == p.n;
}

bool ct_json_xml_params(tok_buf *b, const char *text, size_t len) {
    jp p = {.s = text, .n = len, .b = b, .indent = -1};
    skip_ws(&p);
    if (p.i >= p.n || p.s[p.i] != '{') return false;
    p.i++;
    skip_ws(&p);
    if (p.i < p.n && p.s[p.i] == '}') {
        p.i++;
    } else {
        for (;;) {
            skip_ws(&p);
            buf_puts(b, "<parameter=");
            p.raw = true;
            if (!parse_string(&p)) return false;
            buf_puts(b, ">\n");
            skip_ws(&p);
            if (p.i >= p.n || p.s[p.i] != ':') return false;
            p.i++;
            skip_ws(&p);
            /* args_value | string: Python's str of what json.loads made */
            static const char *const words[3][2] = {
                {"true", "True"}, {"false", "False"}, {"null", "None"}};
            bool word = false;
            for (int k = 0; k < 3 && !word; k++) {
                const size_t wl = strlen(words[k][0]);
                if (p.n - p.i >= wl && !memcmp(p.s + p.i, words[k][0], wl)) {
                    buf_puts(b, words[k][1]);
                    p.i += wl;
                    word = true;
                }
            }
            /* a string as its text; containers and numbers through tojson */
            p.raw = !word && p.i < p.n && p.s[p.i] == '"';
            if (!word && !parse_value(&p, 1)) return false;
            buf_puts(b, "\n</parameter>\n");
            skip_ws(&p);
            if (p.i < p.n && p.s[p.i] == ',') {
                p.i++;
                continue;
            }
            if (p.i < p.n && p.s[p.i] == '}') {
                p.i++;
                break;
            }
            return false;
        }
    }
    skip_ws(&p);
    return p.i == p.n;
}

bool ct_json_nonempty_array(const char *text) {
    if (!text) return false;
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r') text++;
    if (*text != '[') return false;
    text++;
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r') text++;
    return *text && *text != ']';
}

/* ---- reading values in place (Gemma 4) ------------------------------------- */

/* A value at p->i skipped (nothing printed: the buffer refuses appends). */
static bool skip_value(jp *p) {
    tok_buf none = {.oom = true};
    tok_buf *keep = p->b;
    p->b = &none;
    const bool ok = parse_value(p, 1);
    p->b = keep;
    return ok;
}

bool ct_json_valid(ct_span v) {
    jp p = {.s = v.p, .n = v.n};
    if (!v.p || !skip_value(&p)) return false;
    skip_ws(&p);
    return p.i == p.n;
}

char ct_jv_kind(ct_span v) {
    if (!v.p || !v.n) return 0;
    switch (v.p[0]) {
    case '{':
    case '[':
    case '"':
    case 't':
    case 'f': return v.p[0];
    case 'n': return 'z';
    default: return 'n';
    }
}

bool ct_jv_next(ct_span v, size_t *at, ct_span *key, ct_span *val) {
    const char k = ct_jv_kind(v);
    if (k != '{' && k != '[') return false;
    jp p = {.s = v.p, .n = v.n, .i = *at ? *at : 1};
    skip_ws(&p);
    if (p.i >= p.n || p.s[p.i] == '}' || p.s[p.i] == ']') return false;
    if (p.s[p.i] == ',') p.i++;
    skip_ws(&p);
    if (k == '{') {
        const size_t k0 = p.i;
        if (!skip_value(&p)) return false;
        *key = (ct_span){p.s + k0, p.i - k0};
        skip_ws(&p);
        p.i++; /* ':' */
        skip_ws(&p);
    }
    const size_t v0 = p.i;
    if (!skip_value(&p)) return false;
    *val = (ct_span){p.s + v0, p.i - v0};
    *at = p.i;
    return true;
}

/* The decoded text of a JSON string (raw JSON text) into b. */
static void put_string(tok_buf *b, ct_span s) {
    jp p = {.s = s.p, .n = s.n, .b = b, .raw = true};
    (void)parse_string(&p);
}

bool ct_jv_is(ct_span v, const char *s) {
    if (ct_jv_kind(v) != '"') return false;
    tok_buf t = {0};
    put_string(&t, v);
    const bool eq = !t.oom && strlen(s) == t.n && (t.n == 0 || !memcmp(t.p, s, t.n));
    free(t.p);
    return eq;
}

ct_span ct_jv_get(ct_span obj, const char *key) {
    ct_span k, v, hit = {0};
    if (ct_jv_kind(obj) != '{') return hit;
    for (size_t at = 0; ct_jv_next(obj, &at, &k, &v);)
        if (ct_jv_is(k, key)) hit = v;
    return hit;
}

bool ct_jv_truthy(ct_span v) {
    switch (ct_jv_kind(v)) {
    case '"': return v.n > 2;
    case '{':
    case '[': {
        size_t at = 0;
        ct_span k, x;
        return ct_jv_next(v, &at, &k, &x);
    }
    case 't': return true;
    case 'n': return strtod(v.p, NULL) != 0; /* the span ends at a non-number byte */
    default: return false;
    }
}

static void upper_tail(tok_buf *b, size_t from) {
    for (size_t i = from; i < b->n; i++)
        if (b->p[i] >= 'a' && b->p[i] <= 'z') b->p[i] = (char)(b->p[i] - 'a' + 'A');
}

// NOLINTNEXTLINE(misc-no-recursion): a list's elements, as deep as the JSON (<= 64)
void ct_jv_print(tok_buf *b, ct_span v, bool upper) {
    const size_t from = b->n;
    switch (ct_jv_kind(v)) {
    case '"': put_string(b, v); break;
    case 't': buf_puts(b, "True"); break;
    case 'f': buf_puts(b, "False"); break;
    case 'z': buf_puts(b, "None"); break;
    case 'n': {
        jp p = {.s = v.p, .n = v.n, .b = b};
        (void)parse_number(&p);
        break;
    }
    case '[': { /* Python's str of a list of strings: ['a', 'b'] */
        buf_puts(b, "[");
        ct_span k, x;
        bool first = true;
        for (size_t at = 0; ct_jv_next(v, &at, &k, &x); first = false) {
            buf_puts(b, first ? "'" : ", '");
            ct_jv_print(b, x, false);
            buf_puts(b, "'");
        }
        buf_puts(b, "]");
        break;
    }
    default: break;
    }
    if (upper && !b->oom) upper_tail(b, from);
}

/* Whether Python's str.isprintable() is false for cp (it then has an escape
 * in repr): the control characters, the separators but space, the format
 * characters a tool's text may hold (unassigned code points are not known
 * here and print as they are). */
static bool py_unprintable(unsigned cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || cp == 0x61c || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
           (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff;
}

/* Python's repr of the string whose JSON text is s: single quotes unless it
 * holds one and no double quote, backslash escapes for the quote, the
 * backslash, \n, \r, \t and the unprintable code points. */
static void py_repr_string(tok_buf *b, ct_span s) {
    tok_buf t = {0};
    put_string(&t, s);
    if (t.oom) {
        b->oom = true;
        free(t.p);
        return;
    }
    const bool sq = t.n && memchr(t.p, '\'', t.n), dq = t.n && memchr(t.p, '"', t.n);
    const char q = sq && !dq ? '"' : '\'';
    buf_put(b, &q, 1);
    for (size_t i = 0; i < t.n;) {
        uint32_t cp;
        size_t k = hr_utf8_next(t.p + i, t.n - i, &cp);
        if (!k) cp = (unsigned char)t.p[i], k = 1; /* (decoded JSON is UTF-8) */
        char esc[12];
        if (cp == (unsigned char)q || cp == '\\') {
            esc[0] = '\\', esc[1] = (char)cp, esc[2] = '\0';
        } else if (cp == '\n' || cp == '\r' || cp == '\t') {
            snprintf(esc, sizeof esc, "\\%c", cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
        } else if (py_unprintable(cp)) {
            snprintf(esc, sizeof esc, cp < 0x100 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
        } else {
            buf_put(b, t.p + i, k);
            i += k;
            continue;
        }
        buf_puts(b, esc);
        i += k;
    }
    buf_put(b, &q, 1);
    free(t.p);
}

// NOLINTNEXTLINE(misc-no-recursion): containers, as deep as the JSON (<= 64)
void ct_py_repr(tok_buf *b, ct_span v) {
    const char kind = ct_jv_kind(v);
    ct_span k, x;
    switch (kind) {
    case '"': py_repr_string(b, v); return;
    case 't': buf_puts(b, "True"); return;
    case 'f': buf_puts(b, "False"); return;
    case 'z': buf_puts(b, "None"); return;
    case 'n': ct_jv_print(b, v, false); return;
    case '{':
    case '[':
        buf_puts(b, kind == '{' ? "{" : "[");
        for (size_t at = 0, i = 0; ct_jv_next(v, &at, &k, &x); i++) {
            if (i) buf_puts(b, ", ");
            if (kind == '{') {
                py_repr_string(b, k);
                buf_puts(b, ": ");
            }
            ct_py_repr(b, x);
        }
        buf_puts(b, kind == '{' ? "}" : "]");
        return;
    default: return;
    }
}

typedef struct sort_key {
    ct_jmember m;
    char *lower; /* the decoded key, ASCII lower-cased */
    size_t order;
} sort_key;

static int cmp_keys(const void *a, const void *b) {
    const sort_key *x = a, *y = b;
    const int c = strcmp(x->lower, y->lower);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

bool ct_jv_sorted(ct_span obj, ct_jmember **out, size_t *n) {
    *out = NULL;
    *n = 0;
    size_t count = 0, at = 0;
    ct_span k, v;
    while (ct_jv_next(obj, &at, &k, &v)) count++;
    if (!count) return true;
    sort_key *s = calloc(count, sizeof *s);
    ct_jmember *m = malloc(count * sizeof *m);
    bool ok = s && m;
    at = 0;
    for (size_t i = 0; ok && i < count && ct_jv_next(obj, &at, &k, &v); i++) {
        tok_buf t = {0};
        put_string(&t, k);
        if (!t.p && !t.oom) t.p = calloc(1, 1);
        ok = !t.oom && t.p;
        for (size_t j = 0; ok && j < t.n; j++)
            if (t.p[j] >= 'A' && t.p[j] <= 'Z') t.p[j] = (char)(t.p[j] - 'A' + 'a');
        s[i] = (sort_key){{k, v}, t.p, i};
        if (!ok) free(t.p);
    }
    if (ok) {
        qsort(s, count, sizeof *s, cmp_keys);
        for (size_t i = 0; i < count; i++) m[i] = s[i].m;
    }
    for (size_t i = 0; s && i < count; i++) free(s[i].lower);
    free(s);
    if (!ok) {
        free(m);
        return false;
    }
    *out = m;
    *n = count;
    return true;
}

// NOLINTNEXTLINE(misc-no-recursion): the value passed ct_json_valid (depth <= 64)
bool ct_gemma_value(tok_buf *b, ct_span v, bool escape_keys) {
    static const char q[] = "<|\"|>";
    ct_span k, x;
    switch (ct_jv_kind(v)) {
    case '"':
        buf_puts(b, q);
        put_string(b, v);
        buf_puts(b, q);
        return true;
    case 't': buf_puts(b, "true"); return true;
    case 'f': buf_puts(b, "false"); return true;
    case '[':
        buf_puts(b, "[");
        for (size_t at = 0, i = 0; ct_jv_next(v, &at, &k, &x); i++) {
            if (i) buf_puts(b, ",");
            if (!ct_gemma_value(b, x, escape_keys)) return false;
        }
        buf_puts(b, "]");
        return true;
    case '{': {
        ct_jmember *m;
        size_t n;
        if (!ct_jv_sorted(v, &m, &n)) return false;
        buf_puts(b, "{");
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++) {
            if (i) buf_puts(b, ",");
            if (escape_keys) buf_puts(b, q);
            put_string(b, m[i].key);
            if (escape_keys) buf_puts(b, q);
            buf_puts(b, ":");
            ok = ct_gemma_value(b, m[i].val, escape_keys);
        }
        free(m);
        buf_puts(b, "}");
        return ok;
    }
    default: ct_jv_print(b, v, false); return true;
    }
}
