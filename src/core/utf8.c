/*
 * utf8.c - the one table of well-formed UTF-8 (Unicode's table 3-7) that the
 * tokenizer's streaming decoder, the JSON recognizer and the server's
 * request check all read, so they agree on what is valid, the one
 * strict decoder and validator over it, and the encoder.
 */
#include "core.h"

bool hr_utf8_lead(uint8_t b, uint8_t *need, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        *need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        *need = 2;
        if (b == 0xE0) *lo = 0xA0; /* overlong */
        if (b == 0xED) *hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        *need = 3;
        if (b == 0xF0) *lo = 0x90; /* overlong */
        if (b == 0xF4) *hi = 0x8F; /* above U+10FFFF */
    } else
        return false; /* a continuation byte, C0, C1 or F5..FF */
    return true;
}

size_t hr_utf8_next(const void *s, size_t len, uint32_t *cp) {
    const uint8_t *u = s;
    if (u[0] < 0x80) return *cp = u[0], 1;
    uint8_t need, lo, hi;
    if (!hr_utf8_lead(u[0], &need, &lo, &hi) || len <= need || u[1] < lo || u[1] > hi) return 0;
    uint32_t c = u[0] & (0x3Fu >> need);
    for (uint8_t k = 1; k <= need; k++) {
        if (k > 1 && (u[k] < 0x80 || u[k] > 0xBF)) return 0;
        c = c << 6 | (u[k] & 0x3Fu);
    }
    *cp = c;
    return 1u + need;
}

bool hr_utf8_valid(const void *s, size_t len, size_t *bad) {
    const uint8_t *u = s;
    for (size_t i = 0, k; i < len; i += k) {
        uint32_t cp;
        if (!(k = hr_utf8_next(u + i, len - i, &cp))) {
            if (bad) *bad = i;
            return false;
        }
    }
    return true;
}

size_t hr_utf8_put(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | ((cp >> 18) & 0x07));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}
