/*
 * json_prefix.h - private to src/sampling: an incremental recognizer of JSON
 * text (RFC 8259) byte by byte, which the schema recognizer
 * (json_schema_run.c) reads; JSON mode is the schema {"type":"object"}.
 *
 * The recognizer is a pushdown automaton whose stack is one bit per open
 * container (object or array) in a 64-bit word, so its whole state is 16
 * bytes, copied freely. It accepts a byte iff the bytes so far can still be
 * extended to one valid JSON text; it is exact, not a heuristic:
 *   - strings: every escape (\" \\ \/ \b \f \n \r \t \uXXXX), no unescaped
 *     byte below 0x20, well-formed UTF-8 (no overlongs, surrogates or code
 *     points above U+10FFFF), and \u escapes that name a surrogate must form
 *     a high-low pair (RFC 8259 section 8.2 leaves lone ones "unpredictable";
 *     cJSON and most parsers refuse them, so they are refused here too);
 *   - numbers: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?;
 *   - true, false, null; white space is space, tab, LF and CR only.
 * Nesting deeper than SMP_JSON_MAX_DEPTH containers is refused. On request
 * (smp_json_limit_ws) white space outside strings is limited to
 * SMP_JSON_WS_MAX bytes in a row, which valid JSON need not respect but a
 * generator should: otherwise a model may spend its whole budget on it. A number's
 * end is only known from the byte after it, so a top-level number is
 * complete (smp_json_done) once white space follows; smp_json_can_end tells
 * whether the text would be valid if it ended here.
 */
#ifndef HEARTH_JSON_PREFIX_H
#define HEARTH_JSON_PREFIX_H

#include "sampling.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SMP_JSON_MAX_DEPTH = 64, SMP_JSON_WS_MAX = 32 };

/* What the next byte may be: the recognizer's mode (smp_json.mode), read by
 * the schema layer (json_schema_run.c) to tell the events of the text. */
typedef enum smp_jmode {
    SMP_J_TOP,       /* before the top-level value */
    SMP_J_VALUE,     /* a value must come (after ':' or an array's ',') */
    SMP_J_ARR_FIRST, /* after '[': a value or ']' */
    SMP_J_OBJ_FIRST, /* after '{': a key or '}' */
    SMP_J_KEY,       /* after an object's ',': a key */
    SMP_J_COLON,     /* after a key: ':' */
    SMP_J_AFTER,     /* after a value in a container: ',' or the closing bracket */
    SMP_J_DONE,      /* the top-level value is complete: white space only */
    SMP_J_STR,       /* in a string; a, b: the range of the next continuation byte */
    SMP_J_ESC,       /* after a backslash */
    SMP_J_HEX,       /* in \uXXXX: a digits read, b the surrogate flags below */
    SMP_J_LOW_BSL,   /* after a high surrogate's escape: '\' of the low one */
    SMP_J_LOW_U,     /* then its 'u' */
    SMP_J_NUM_MINUS, /* '-': a digit must follow */
    SMP_J_NUM_ZERO,  /* a leading 0: no more integer digits */
    SMP_J_NUM_INT,   /* integer digits after [1-9] */
    SMP_J_NUM_DOT,   /* '.': a digit must follow */
    SMP_J_NUM_FRAC,  /* fraction digits */
    SMP_J_NUM_E,     /* 'e' / 'E': a sign or a digit */
    SMP_J_NUM_ESIGN, /* the exponent's sign: a digit must follow */
    SMP_J_NUM_EXP,   /* exponent digits */
    SMP_J_LIT        /* in true/false/null: a which one, b bytes read */
} smp_jmode;

/* The whole state. Fields not used by the current mode are zero, so equal
 * states compare equal with memcmp (the mask cache relies on it). */
typedef struct smp_json {
    uint64_t stack; /* bit d: the container at depth d + 1 is an object (else an array) */
    uint8_t depth;  /* containers open */
    uint8_t mode;   /* what the next byte may be (json_prefix.c) */
    uint8_t a, b;   /* the mode's detail (UTF-8 range, literal position, hex digits) */
    uint8_t need;   /* continuation bytes still due in a string's character */
    uint8_t flags;  /* object only at the top; reading a key; white space limited */
    uint8_t ws;     /* white-space bytes in a row outside strings, when limited */
    uint8_t pad;
} smp_json;

/* A fresh state: before the top-level value. object_only: that value must be
 * an object (OpenAI's json_object mode); otherwise any value. */
void smp_json_init(smp_json *j, bool object_only);
/* From now on, more than SMP_JSON_WS_MAX white-space bytes in a row outside
 * strings are refused. */
void smp_json_limit_ws(smp_json *j);
/* Feeds one byte. False when no valid JSON text starts with the bytes so far
 * plus this one; *j is then unchanged. */
bool smp_json_feed(smp_json *j, uint8_t c);
/* Feeds s[0..n) as a whole: true with *j advanced, or false with *j unchanged. */
bool smp_json_feed_bytes(smp_json *j, const void *s, size_t n);
/* smp_json_feed without the copy: on false *j is left in an unspecified state
 * (callers that explore keep their own copy). */
bool smp_json_step(smp_json *j, uint8_t c);
/* One complete value has been read; only white space may follow. */
bool smp_json_done(const smp_json *j);
/* The bytes so far are a complete JSON text if nothing follows (done, or a
 * top-level number that could end here). */
bool smp_json_can_end(const smp_json *j);
int smp_json_depth(const smp_json *j);
/* Inside a string's content between characters and escapes (the state a
 * plain token maps to itself, vocab_bytes.c). */
bool smp_json_in_text(const smp_json *j);

#endif
