/*
 * json_prefix.c - the JSON recognizer of json_prefix.h: a pushdown automaton
 * over bytes for RFC 8259's grammar (section 2 ff.):
 *
 *   JSON-text = ws value ws
 *   value     = false / null / true / object / array / number / string
 *   object    = { ws [ string ws : ws value *( ws , ws string ws : ws value ) ] ws }
 *   array     = [ ws [ value *( ws , ws value ) ] ws ]
 *
 * The stack holds one bit per open container; the mode says what may come
 * next at the innermost level. Every byte either moves the automaton or is
 * refused, so a refused byte is exactly where the text stops being a prefix
 * of valid JSON. Numbers have no closing byte: the first byte that cannot
 * continue a number ends it and is then read as what follows the value.
 */
#include "json_prefix.h"

#include <string.h>

enum {
    F_OBJECT_ONLY = 1, /* the top-level value must be an object */
    F_KEY = 2,         /* the string being read is a key */
    F_WS_LIMIT = 4     /* at most SMP_JSON_WS_MAX white-space bytes in a row */
};

enum {
    H_LOW = 1, /* this escape must be the low half of a pair: \uDC00..\uDFFF */
    H_D = 2,   /* the first digit was D */
    H_HIGH = 4 /* a high surrogate \uD800..\uDBFF: a low one must follow */
};

static const char *const literals[3] = {"true", "false", "null"};

static bool step(smp_json *j, uint8_t c);

void smp_json_init(smp_json *j, bool object_only) {
    memset(j, 0, sizeof *j);
    j->mode = SMP_J_TOP;
    j->flags = object_only ? F_OBJECT_ONLY : 0;
}

void smp_json_limit_ws(smp_json *j) { j->flags |= F_WS_LIMIT; }

static inline bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline void set_mode(smp_json *j, smp_jmode m) {
    j->mode = (uint8_t)m;
    j->a = j->b = j->need = 0;
}

/* A value just ended: the container's separator or end comes next, or the
 * text is complete. */
static inline void value_done(smp_json *j) {
    j->flags &= (uint8_t)~F_KEY;
    set_mode(j, j->depth ? SMP_J_AFTER : SMP_J_DONE);
}

static bool open_container(smp_json *j, bool object) {
    if (j->depth >= SMP_JSON_MAX_DEPTH) return false;
    if (object) j->stack |= (uint64_t)1 << j->depth;
    j->depth++;
    set_mode(j, object ? SMP_J_OBJ_FIRST : SMP_J_ARR_FIRST);
    return true;
}

static bool close_container(smp_json *j, bool object) {
    if (j->depth == 0) return false;
    const uint64_t bit = (uint64_t)1 << (j->depth - 1);
    if (((j->stack & bit) != 0) != object) return false;
    j->stack &= ~bit;
    j->depth--;
    value_done(j);
    return true;
}

/* The first byte of a value. */
static bool value_start(smp_json *j, uint8_t c) {
    switch (c) {
    case '{': return open_container(j, true);
    case '[': return open_container(j, false);
    case '"': set_mode(j, SMP_J_STR); return true;
    case '-': set_mode(j, SMP_J_NUM_MINUS); return true;
    case '0': set_mode(j, SMP_J_NUM_ZERO); return true;
    case 't':
    case 'f':
    case 'n':
        set_mode(j, SMP_J_LIT);
        j->a = c == 't' ? 0 : c == 'f' ? 1 : 2;
        j->b = 1;
        return true;
    default:
        if (c >= '1' && c <= '9') {
            set_mode(j, SMP_J_NUM_INT);
            return true;
        }
        return false;
    }
}

/* A byte of a string's content (not an escape). */
static bool string_byte(smp_json *j, uint8_t c) {
    if (j->need) { /* a continuation byte */
        if (c < j->a || c > j->b) return false;
        j->a = 0x80, j->b = 0xbf;
        if (--j->need == 0) j->a = j->b = 0;
        return true;
    }
    if (c == '"') {
        if (j->flags & F_KEY) {
            j->flags &= (uint8_t)~F_KEY;
            set_mode(j, SMP_J_COLON);
        } else {
            value_done(j);
        }
        return true;
    }
    if (c == '\\') {
        j->mode = SMP_J_ESC;
        return true;
    }
    if (c < 0x20) return false; /* control characters must be escaped */
    if (c < 0x80) return true;
    /* a lead byte: how many continuation bytes, and the range of the first */
    uint8_t need, lo, hi;
    if (!hr_utf8_lead(c, &need, &lo, &hi)) return false;
    j->need = need, j->a = lo, j->b = hi;
    return true;
}

static bool escape_byte(smp_json *j, uint8_t c) {
    switch (c) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't': j->mode = SMP_J_STR; return true;
    case 'u': j->mode = SMP_J_HEX; return true; /* a = b = 0 in SMP_J_STR between characters */
    default: return false;
    }
}

/* One of the four hex digits of \uXXXX; the first two decide whether it is
 * a surrogate: D8..DB high (a low one must follow), DC..DF low (only as the
 * second half of a pair). */
static bool hex_digit(smp_json *j, uint8_t c) {
    const int v = hex_value(c);
    if (v < 0) return false;
    if (j->a == 0) {
        if (v == 0xd)
            j->b |= H_D;
        else if (j->b & H_LOW)
            return false;
    } else if (j->a == 1 && (j->b & H_D)) {
        if (j->b & H_LOW) {
            if (v < 0xc) return false;
        } else if (v >= 0xc) {
            return false; /* a low surrogate with no high one before it */
        } else if (v >= 0x8) {
            j->b |= H_HIGH;
        }
    }
    if (++j->a < 4) return true;
    const bool high = (j->b & H_HIGH) != 0;
    j->a = j->b = 0;
    j->mode = high ? SMP_J_LOW_BSL : SMP_J_STR;
    return true;
}

/* The number ended before c (it was in an accepting mode): c is the first
 * byte after the value. */
// NOLINTNEXTLINE(misc-no-recursion): one level: step after a number is not in a number mode
static bool end_number(smp_json *j, uint8_t c) {
    value_done(j);
    return step(j, c);
}

/* A byte in a number, or the byte after it. */
// NOLINTNEXTLINE(misc-no-recursion): as end_number
static bool number_byte(smp_json *j, uint8_t c) {
    const bool digit = c >= '0' && c <= '9';
    smp_jmode next;
    switch ((smp_jmode)j->mode) {
    case SMP_J_NUM_MINUS:
        if (!digit) return false;
        next = c == '0' ? SMP_J_NUM_ZERO : SMP_J_NUM_INT;
        break;
    case SMP_J_NUM_ZERO:
    case SMP_J_NUM_INT:
    case SMP_J_NUM_FRAC:
        if (digit && j->mode != SMP_J_NUM_ZERO) return true;
        if (c == '.' && j->mode != SMP_J_NUM_FRAC)
            next = SMP_J_NUM_DOT;
        else if (c == 'e' || c == 'E')
            next = SMP_J_NUM_E;
        else
            return end_number(j, c);
        break;
    case SMP_J_NUM_DOT:
    case SMP_J_NUM_ESIGN:
        if (!digit) return false;
        next = j->mode == SMP_J_NUM_DOT ? SMP_J_NUM_FRAC : SMP_J_NUM_EXP;
        break;
    case SMP_J_NUM_E:
        if (c == '+' || c == '-')
            next = SMP_J_NUM_ESIGN;
        else if (digit)
            next = SMP_J_NUM_EXP;
        else
            return false;
        break;
    case SMP_J_NUM_EXP:
        if (digit) return true;
        return end_number(j, c);
    default: return false;
    }
    j->mode = (uint8_t)next;
    return true;
}

// NOLINTNEXTLINE(misc-no-recursion): as end_number
static bool step(smp_json *j, uint8_t c) {
    switch ((smp_jmode)j->mode) {
    case SMP_J_TOP:
        if (is_ws(c)) return true;
        if (j->flags & F_OBJECT_ONLY) return c == '{' && open_container(j, true);
        return value_start(j, c);
    case SMP_J_VALUE: return is_ws(c) || value_start(j, c);
    case SMP_J_ARR_FIRST:
        if (is_ws(c)) return true;
        if (c == ']') return close_container(j, false);
        return value_start(j, c);
    case SMP_J_OBJ_FIRST:
        if (is_ws(c)) return true;
        if (c == '}') return close_container(j, true);
        /* fall through */
    case SMP_J_KEY:
        if (is_ws(c)) return true;
        if (c != '"') return false;
        set_mode(j, SMP_J_STR);
        j->flags |= F_KEY;
        return true;
    case SMP_J_COLON:
        if (is_ws(c)) return true;
        if (c != ':') return false;
        set_mode(j, SMP_J_VALUE);
        return true;
    case SMP_J_AFTER: {
        if (is_ws(c)) return true;
        const bool object = (j->stack >> (j->depth - 1)) & 1;
        if (c == ',') {
            set_mode(j, object ? SMP_J_KEY : SMP_J_VALUE);
            return true;
        }
        if (c != '}' && c != ']') return false;
        return close_container(j, c == '}');
    }
    case SMP_J_DONE: return is_ws(c);
    case SMP_J_STR: return string_byte(j, c);
    case SMP_J_ESC: return escape_byte(j, c);
    case SMP_J_HEX: return hex_digit(j, c);
    case SMP_J_LOW_BSL:
        if (c != '\\') return false;
        j->mode = SMP_J_LOW_U;
        return true;
    case SMP_J_LOW_U:
        if (c != 'u') return false;
        j->mode = SMP_J_HEX;
        j->b = H_LOW;
        return true;
    case SMP_J_LIT: {
        const char *lit = literals[j->a];
        if (c != (uint8_t)lit[j->b]) return false;
        if (lit[++j->b] == '\0') value_done(j);
        return true;
    }
    case SMP_J_NUM_MINUS:
    case SMP_J_NUM_ZERO:
    case SMP_J_NUM_INT:
    case SMP_J_NUM_DOT:
    case SMP_J_NUM_FRAC:
    case SMP_J_NUM_E:
    case SMP_J_NUM_ESIGN:
    case SMP_J_NUM_EXP: return number_byte(j, c);
    }
    return false;
}

/* The white-space limit on top of the grammar: white space that did not
 * land in a string's content is counted, anything else restarts the count
 * (so the count is zero whenever it does not matter, and equal states
 * compare equal). */
bool smp_json_step(smp_json *j, uint8_t c) {
    if (!step(j, c)) return false;
    if (!(j->flags & F_WS_LIMIT)) return true;
    if (!is_ws(c) || j->mode == SMP_J_STR) {
        j->ws = 0;
        return true;
    }
    return ++j->ws <= SMP_JSON_WS_MAX;
}

bool smp_json_feed(smp_json *j, uint8_t c) {
    smp_json t = *j;
    if (!smp_json_step(&t, c)) return false;
    *j = t;
    return true;
}

bool smp_json_feed_bytes(smp_json *j, const void *s, size_t n) {
    smp_json t = *j;
    const uint8_t *p = s;
    for (size_t i = 0; i < n; i++)
        if (!smp_json_step(&t, p[i])) return false;
    *j = t;
    return true;
}

bool smp_json_done(const smp_json *j) { return j->mode == SMP_J_DONE; }

bool smp_json_can_end(const smp_json *j) {
    if (j->mode == SMP_J_DONE) return true;
    if (j->depth != 0) return false;
    return j->mode == SMP_J_NUM_ZERO || j->mode == SMP_J_NUM_INT || j->mode == SMP_J_NUM_FRAC ||
           j->mode == SMP_J_NUM_EXP;
}

int smp_json_depth(const smp_json *j) { return j->depth; }

bool smp_json_in_text(const smp_json *j) { return j->mode == SMP_J_STR && j->need == 0; }
