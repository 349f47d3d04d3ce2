/*
 * utf8.c - the two ways the tokenizer reads UTF-8.
 *
 * Tokenizing reads text the way llama.cpp does (so that ids match): a lead
 * byte followed by the continuation bytes it announces is one code point, with
 * no check for overlong forms or surrogates; any other byte is U+FFFD.
 *
 * Text handed to people is checked strictly (Unicode 15, section 3.9, table
 * 3-7): tok_utf8_feed passes well-formed characters through, holds back an
 * incomplete one until its last byte arrives, and replaces each maximal
 * ill-formed subsequence with one U+FFFD, so splitting the input anywhere
 * gives the same output as feeding it whole.
 */
#include "core/core.h"
#include "tokenizer/tok_impl.h"

#include <string.h>

size_t tok_utf8_len(uint8_t lead) {
    static const uint8_t len_by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len_by_high_nibble[lead >> 4];
}

static bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

size_t tok_utf8_next(const char *s, size_t n, uint32_t *cp) {
    const uint8_t *p = (const uint8_t *)s;
    uint8_t b = p[0];
    *cp = 0xFFFD;
    if (b < 0x80) {
        *cp = b;
    } else if ((b & 0xE0) == 0xC0) {
        if (n > 1 && is_cont(p[1])) {
            *cp = ((uint32_t)(b & 0x1F) << 6) | (p[1] & 0x3F);
            return 2;
        }
    } else if ((b & 0xF0) == 0xE0) {
        if (n > 2 && is_cont(p[1]) && is_cont(p[2])) {
            *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
            return 3;
        }
    } else if ((b & 0xF8) == 0xF0) {
        if (n > 3 && is_cont(p[1]) && is_cont(p[2]) && is_cont(p[3])) {
            uint32_t v = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
                         ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
            /* llama.cpp cannot re-encode these (it throws); one U+FFFD per
             * byte is the closest well-defined behaviour */
            if (v <= 0x10FFFF) {
                *cp = v;
                return 4;
            }
        }
    }
    return 1;
}

size_t tok_utf8_decode(const char *s, size_t n, uint32_t *cps) {
    size_t i = 0, k = 0;
    while (i < n) i += tok_utf8_next(s + i, n - i, &cps[k++]);
    return k;
}

/* ---- strict, incremental ---- */

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

size_t tok_utf8_feed(tok_utf8_state *st, const void *in, size_t n, char *out) {
    const uint8_t *p = (const uint8_t *)in;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (st->need) {
            if (b >= st->lo && b <= st->hi) {
                st->buf[st->n++] = b;
                st->lo = 0x80, st->hi = 0xBF;
                if (--st->need == 0) {
                    memcpy(out + w, st->buf, st->n);
                    w += st->n;
                    st->n = 0;
                }
                continue;
            }
            /* the held-back bytes are a maximal ill-formed subsequence; b
             * starts afresh */
            memcpy(out + w, replacement, 3);
            w += 3;
            st->n = 0, st->need = 0;
        }
        if (b < 0x80) {
            out[w++] = (char)b;
        } else if (hr_utf8_lead(b, &st->need, &st->lo, &st->hi)) {
            st->buf[0] = b;
            st->n = 1;
        } else {
            memcpy(out + w, replacement, 3);
            w += 3;
        }
    }
    return w;
}

size_t tok_utf8_finish(tok_utf8_state *st, char *out) {
    bool pending = st->need != 0;
    memset(st, 0, sizeof *st);
    if (!pending) return 0;
    memcpy(out, replacement, 3);
    return 3;
}
