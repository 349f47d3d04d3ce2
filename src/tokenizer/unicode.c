/*
 * unicode.c - look-ups in the generated Unicode tables (unicode_data.c):
 * character class, whitespace, simple lowercase and the NFD base character.
 * All are binary searches over sorted tables; nothing is built at run time.
 */
#include "tokenizer/tok_impl.h"

int tok_uc_class(uint32_t cp) {
    if (cp > 0x10FFFF) return TOK_UC_UNDEFINED;
    size_t lo = 0, hi = tok_uc_ranges_n; /* last range with start <= cp */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok_uc_ranges[mid].start <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return tok_uc_ranges[lo].cls;
}

bool tok_uc_is_space(uint32_t cp) {
    /* Unicode's White_Space property, the set llama.cpp's \s stands for */
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

uint32_t tok_uc_tolower(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    size_t lo = 0, hi = tok_uc_lower_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok_uc_lower[mid].from < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < tok_uc_lower_n && tok_uc_lower[lo].from == cp) ? tok_uc_lower[lo].to : cp;
}

uint32_t tok_uc_nfd_first(uint32_t cp) {
    size_t lo = 0, hi = tok_uc_nfd_n; /* first range with last >= cp */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok_uc_nfd[mid].last < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < tok_uc_nfd_n && tok_uc_nfd[lo].first <= cp) ? tok_uc_nfd[lo].to : cp;
}
