/*
 * stage_names.c - the names and letters llama.cpp gives its samplers
 * (common/sampling.cpp: common_sampler_types_from_names / _from_chars), for
 * llama-server's "samplers" field and llama-cli's --samplers and
 * --sampler-seq. A name is matched case-insensitively against the canonical
 * names, their kebab-case and their form without '_' (llama.cpp derives
 * those two from each canonical name holding a '_'), and a few others.
 * llama.cpp skips a name it does not know with a warning; here the caller
 * decides (the server and the CLI refuse it), and the samplers llama.cpp has
 * but Hearth does not (infill, adaptive-p) are told apart from typos.
 */
#include "sampling.h"

#include <stdio.h>
#include <string.h>

/* Canonical names by stage; index = smp_stage. */
static const char *const canonical[SMP_STAGE_LAST + 1] = {
    [SMP_STAGE_PENALTIES] = "penalties",
    [SMP_STAGE_DRY] = "dry",
    [SMP_STAGE_TOP_N_SIGMA] = "top_n_sigma",
    [SMP_STAGE_TOP_K] = "top_k",
    [SMP_STAGE_TYPICAL_P] = "typ_p",
    [SMP_STAGE_TOP_P] = "top_p",
    [SMP_STAGE_MIN_P] = "min_p",
    [SMP_STAGE_XTC] = "xtc",
    [SMP_STAGE_TEMPERATURE] = "temperature",
};

/* The names matched as they are (after lower-casing): the canonical ones come
 * from the table above with their derived forms; these are the others. */
static const struct {
    const char *name;
    int stage;
} others[] = {
    {"nucleus", SMP_STAGE_TOP_P},
    {"temp", SMP_STAGE_TEMPERATURE},
    {"typ", SMP_STAGE_TYPICAL_P},
    /* llama.cpp before June 2026, and Hearth's field name */
    {"typical", SMP_STAGE_TYPICAL_P},
    {"typical-p", SMP_STAGE_TYPICAL_P},
    {"typical_p", SMP_STAGE_TYPICAL_P},
    /* llama.cpp's, not Hearth's */
    {"infill", SMP_STAGE_NOT_HERE},
    {"adaptive_p", SMP_STAGE_NOT_HERE},
    {"adaptive-p", SMP_STAGE_NOT_HERE},
    {"adaptivep", SMP_STAGE_NOT_HERE},
};

static const uint8_t default_chain[] = {
    SMP_STAGE_PENALTIES, SMP_STAGE_DRY,       SMP_STAGE_TOP_N_SIGMA,
    SMP_STAGE_TOP_K,     SMP_STAGE_TYPICAL_P, SMP_STAGE_TOP_P,
    SMP_STAGE_MIN_P,     SMP_STAGE_XTC,       SMP_STAGE_TEMPERATURE,
};

size_t smp_default_stages(const uint8_t **out) {
    *out = default_chain;
    return sizeof default_chain;
}

const char *smp_stage_name(int stage) {
    return stage >= SMP_STAGE_PENALTIES && stage <= SMP_STAGE_LAST ? canonical[stage] : "?";
}

/* Whether key (lower case, NUL-terminated) is `canon`, with '_' read as
 * `sep` ('_', '-', or 0: dropped). */
static bool same_with(const char *key, const char *canon, char sep) {
    for (; *canon; canon++) {
        if (*canon == '_' && sep == 0) continue;
        if (*key++ != (*canon == '_' ? sep : *canon)) return false;
    }
    return *key == '\0';
}

int smp_stage_by_name(const char *name, size_t len) {
    char key[24];
    if (len == 0 || len >= sizeof key) return SMP_STAGE_UNKNOWN;
    for (size_t i = 0; i < len; i++) {
        const char c = name[i];
        if (c == '\0') return SMP_STAGE_UNKNOWN;
        key[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    key[len] = '\0';
    for (int st = SMP_STAGE_PENALTIES; st <= SMP_STAGE_LAST; st++) {
        const char *c = canonical[st];
        if (same_with(key, c, '_')) return st;
        if (strchr(c, '_') && (same_with(key, c, '-') || same_with(key, c, 0))) return st;
    }
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        if (!strcmp(key, others[i].name)) return others[i].stage;
    return SMP_STAGE_UNKNOWN;
}

int smp_stage_by_letter(char c) {
    static const char letters[] = "edskypmxt"; /* [stage - 1] */
    if (c == 'i' || c == 'a') return SMP_STAGE_NOT_HERE;
    const char *at = c ? strchr(letters, c) : NULL;
    return at ? (int)(at - letters) + SMP_STAGE_PENALTIES : SMP_STAGE_UNKNOWN;
}

int smp_stage_parse(const char *text, size_t len, bool letter, char *msg, size_t cap) {
    const int st = letter ? (len == 1 ? smp_stage_by_letter(text[0]) : SMP_STAGE_UNKNOWN)
                          : smp_stage_by_name(text, len);
    const int shown = len > 32 ? 32 : (int)len; /* a name is short; the text may not be */
    if (st == SMP_STAGE_NOT_HERE)
        snprintf(msg, cap, "'%.*s' is a sampler of llama.cpp's that Hearth does not have", shown,
                 text);
    else if (st == SMP_STAGE_UNKNOWN)
        snprintf(msg, cap,
                 letter ? "'%.*s' is not a sampler's letter (e d s k y p m x t)"
                        : "'%.*s' is not a sampler (penalties, dry, top_n_sigma, top_k, typ_p, "
                          "top_p, min_p, xtc, temperature)",
                 shown, text);
    return st > 0 ? st : 0;
}
