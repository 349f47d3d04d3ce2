/*
 * utf8.c - the one table of well-formed UTF-8 (Unicode's table 3-7) that the
 * tokenizer's streaming decoder, the JSON recognizer and the server's
 * request check all read, so they agree on what is valid, and the one
 * validator over it.
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

bool hr_utf8_valid(const void *s, size_t len, size_t *bad) {
    const uint8_t *u = s;
    size_t i = 0;
    while (i < len) {
        uint8_t need, lo, hi;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        bool ok = hr_utf8_lead(u[i], &need, &lo, &hi) && len - i > need && u[i + 1] >= lo &&
                  u[i + 1] <= hi;
        for (uint8_t k = 2; ok && k <= need; k++) ok = u[i + k] >= 0x80 && u[i + k] <= 0xBF;
        if (!ok) {
            if (bad) *bad = i;
            return false;
        }
        i += 1u + need;
    }
    return true;
}
