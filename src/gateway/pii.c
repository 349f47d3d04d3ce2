/*
 * pii.c - the privacy guard's detectors. Each kind of entity is a PCRE2
 * pattern that proposes candidates (byte mode: the patterns are ASCII, bytes
 * >= 0x80 count as letters only inside e-mail addresses) and a validator in
 * C that accepts, trims or refuses each one:
 *
 *   e-mail       local@domain: no leading/trailing/double dot in the local
 *                part, labels without edge hyphens, a TLD of >= 2 letters
 *   IBAN         known country, that country's length (spaces between groups
 *                allowed), ISO 13616 mod-97 == 1
 *   credit card  12-19 digits (spaces or hyphens between them allowed),
 *                Luhn, an issuer prefix (2-6, JCB 1800/2131, Maestro 0604);
 *                12 digits only for Maestro-like 5/6 prefixes
 *   US SSN       AAA-GG-SSSS with '-', ' ' or '.': area not 000/666/9xx,
 *                group not 00, serial not 0000, and not the two numbers
 *                published in advertising (078-05-1120, 219-09-9999)
 *   IP           IPv4 dotted quads (octets <= 255); IPv6 as inet_pton reads it
 *   date of birth  numeric (m/d/y, d.m.y, ISO y-m-d) and month-name dates;
 *                with GW_DOB_CONTEXT only those within 48 bytes after "born",
 *                "birth", "DOB" or "D.O.B."; with GW_DOB_ALL every date
 *   phone        digit groups with one-character separators, an optional
 *                +country code, (area) and extension: 7-15 digits; a bare
 *                run of digits only after a phone word ("call", "fax", ...);
 *                dates, year ranges, ZIP+4 and dotted thousands are refused
 *
 * Candidates of all kinds are resolved by priority (the order of gw_entity's
 * "specific first": e-mail, IBAN, card, SSN, IP, date, phone): a span is
 * kept only when none of its bytes is already taken by a higher kind.
 */
#include "gateway.h"

#include "core/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const entity_names[GW_N_ENT] = {"EMAIL", "PHONE", "CREDIT_CARD", "IBAN",
                                                   "SSN",   "IP",    "DOB"};
static const char *const presidio_names[GW_N_ENT] = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD",
                                                     "IBAN_CODE",     "US_SSN",       "IP_ADDRESS",
                                                     "DATE_OF_BIRTH"};

const char *gw_entity_name(gw_entity e) {
    return (unsigned)e < GW_N_ENT ? entity_names[e] : "UNKNOWN";
}

bool gw_entity_parse(const char *name, gw_entity *out) {
    for (int i = 0; i < GW_N_ENT; i++)
        if (!strcasecmp(name, entity_names[i]) || !strcasecmp(name, presidio_names[i])) {
            *out = (gw_entity)i;
            return true;
        }
    return false;
}

static const char *const action_names[] = {"redact", "block", "allow"};

const char *gw_pii_action_name(gw_pii_action a) {
    return (unsigned)a < 3 ? action_names[a] : "unknown";
}

bool gw_pii_action_parse(const char *name, gw_pii_action *out) {
    for (int i = 0; i < 3; i++)
        if (!strcasecmp(name, action_names[i])) {
            *out = (gw_pii_action)i;
            return true;
        }
    return false;
}

enum { MAX_DETECTORS = 16 };

struct gw_pii {
    gw_dob_mode dob_mode;
    pcre2_code *re[MAX_DETECTORS];
};

/* ---- validators ----------------------------------------------------------- */

bool gw_luhn_ok(const char *s, size_t len) {
    int sum = 0, n = 0;
    for (size_t i = len; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9') continue;
        int d = s[i] - '0';
        if (n++ & 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return n > 0 && sum % 10 == 0;
}

/* IBAN lengths by country (the SWIFT IBAN registry). */
static const struct {
    char cc[3];
    int len;
} iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27},
    {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24}, {"PL", 28},
    {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28},
    {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

static int iban_length(char a, char b) {
    const char cc[2] = {(char)toupper((unsigned char)a), (char)toupper((unsigned char)b)};
    for (size_t i = 0; i < sizeof iban_lengths / sizeof iban_lengths[0]; i++)
        if (iban_lengths[i].cc[0] == cc[0] && iban_lengths[i].cc[1] == cc[1])
            return iban_lengths[i].len;
    return 0;
}

bool gw_iban_ok(const char *s, size_t len) {
    if (len < 5 || (int)len != iban_length(s[0], s[1])) return false;
    if (!isdigit((unsigned char)s[2]) || !isdigit((unsigned char)s[3])) return false;
    /* Move the first four characters to the end, letters become 10..35, and
     * take the number mod 97 digit by digit. */
    unsigned rem = 0;
    for (size_t k = 0; k < len; k++) {
        const unsigned char c = (unsigned char)s[(k + 4) % len];
        if (isdigit(c))
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else if (isalpha(c))
            rem = (rem * 100 + (unsigned)(toupper(c) - 'A' + 10)) % 97;
        else
            return false;
    }
    return rem == 1;
}

bool gw_ssn_ok(int area, int group, int serial) {
    if (area <= 0 || area == 666 || area >= 900 || area > 999) return false;
    if (group <= 0 || group > 99 || serial <= 0 || serial > 9999) return false;
    if ((area == 78 && group == 5 && serial == 1120) ||
        (area == 219 && group == 9 && serial == 9999))
        return false;
    return true;
}

/* ---- detectors ------------------------------------------------------------ */

typedef struct cand {
    size_t start, end;
} cand;

/* Everything a validator sees: the text, the match and its capture groups. */
typedef struct match_ctx {
    const gw_pii *p;
    const char *text;
    size_t len;
    const PCRE2_SIZE *ov; /* ov[2k], ov[2k+1]: group k (PCRE2_UNSET when unset) */
    int n_groups;
} match_ctx;

/* Accepts the match (possibly narrowed in *c) or refuses it. */
typedef bool (*validator)(const match_ctx *m, cand *c);

typedef struct detector {
    gw_entity type;
    const char *pattern;
    validator check;
} detector;

static bool is_alnum(char c) { return isalnum((unsigned char)c) != 0; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int group_int(const match_ctx *m, int k) {
    if (k >= m->n_groups || m->ov[2 * k] == PCRE2_UNSET) return -1;
    int v = 0;
    for (size_t i = m->ov[2 * k]; i < m->ov[2 * k + 1] && v < 100000; i++)
        v = v * 10 + (m->text[i] - '0');
    return v;
}

static size_t group_len(const match_ctx *m, int k) {
    if (k >= m->n_groups || m->ov[2 * k] == PCRE2_UNSET) return 0;
    return m->ov[2 * k + 1] - m->ov[2 * k];
}

/* Whether a word starting with one of `words` (case-insensitively; "tel"
 * finds "telephone", not "hotel") occurs in s[from..to). */
static bool has_word(const char *s, size_t from, size_t to, const char *const *words) {
    for (const char *const *w = words; *w; w++) {
        const size_t n = strlen(*w);
        for (size_t i = from; i + n <= to; i++)
            if ((i == 0 || !isalpha((unsigned char)s[i - 1])) && !strncasecmp(s + i, *w, n))
                return true;
    }
    return false;
}

/* e-mail: trims what the domain may not end with, then checks the parts. */
static bool check_email(const match_ctx *m, cand *c) {
    const char *t = m->text;
    const char *at = memchr(t + c->start, '@', c->end - c->start);
    if (!at) return false;
    const size_t a = (size_t)(at - t);
    while (c->end > a + 1 && (t[c->end - 1] == '.' || t[c->end - 1] == '-')) c->end--;
    while (c->start < a && t[c->start] == '.') c->start++; /* ".bob@x.com": bob@x.com */
    if (c->start == a || t[a - 1] == '.') return false;
    for (size_t i = c->start; i + 1 < a; i++)
        if (t[i] == '.' && t[i + 1] == '.') return false;
    /* labels: non-empty, no hyphen at either edge; the last one >= 2 letters */
    size_t label = a + 1, n_labels = 0;
    for (size_t i = a + 1; i <= c->end; i++) {
        if (i < c->end && t[i] != '.') continue;
        if (i == label || t[label] == '-' || t[i - 1] == '-') return false;
        n_labels++;
        if (i == c->end) {
            if (i - label < 2) return false;
            for (size_t k = label; k < i; k++)
                if (is_digit(t[k]) || t[k] == '-') return false;
        }
        label = i + 1;
    }
    return n_labels >= 2;
}

/* IBAN: takes exactly the country's length of characters from the start,
 * single spaces between them allowed, then mod-97. */
static bool check_iban(const match_ctx *m, cand *c) {
    const char *t = m->text;
    const int want = iban_length(t[c->start], t[c->start + 1]);
    if (!want) return false;
    char compact[40];
    int n = 0;
    size_t i = c->start;
    while (i < m->len && n < want) {
        if (is_alnum(t[i]))
            compact[n++] = t[i++];
        else if (t[i] == ' ' && n > 0 && i + 1 < m->len && is_alnum(t[i + 1]))
            i++;
        else
            break;
    }
    if (n != want || (i < m->len && is_alnum(t[i]))) return false;
    c->end = i;
    return gw_iban_ok(compact, (size_t)n);
}

static bool card_prefix_ok(const char *d, size_t n) {
    if (n < 12 || n > 19) return false;
    if (!strncmp(d, "1800", 4) || !strncmp(d, "2131", 4)) return n == 15 || n == 16;
    if (!strncmp(d, "0604", 4)) return true;
    if (d[0] < '2' || d[0] > '6') return false;
    if (n == 12) return d[0] == '5' || d[0] == '6';
    return true;
}

/* credit card: one separator kind; tries the whole run, then shorter runs
 * ending at a group boundary (a card followed by other digit groups). */
static bool check_card(const match_ctx *m, cand *c) {
    const char *t = m->text;
    bool sep = false;
    for (size_t i = c->start; i < c->end; i++) sep |= !is_digit(t[i]);
    for (size_t end = c->end; end > c->start;) {
        char d[24];
        size_t n = 0;
        for (size_t i = c->start; i < end && n < sizeof d; i++)
            if (is_digit(t[i])) d[n++] = t[i];
        if (n < 12) return false;
        if (card_prefix_ok(d, n) && gw_luhn_ok(d, n)) {
            c->end = end;
            return true;
        }
        if (!sep) return false;
        while (end > c->start && is_digit(t[end - 1])) end--; /* drop the last group */
        if (end > c->start) end--;
    }
    return false;
}

static bool check_ssn(const match_ctx *m, cand *c) {
    (void)c;
    return gw_ssn_ok(group_int(m, 1), group_int(m, 3), group_int(m, 4));
}

static bool check_ipv4(const match_ctx *m, cand *c) {
    (void)c;
    for (int k = 1; k <= 4; k++)
        if (group_int(m, k) > 255) return false;
    return true;
}

static bool check_ipv6(const match_ctx *m, cand *c) {
    char buf[64];
    while (c->end > c->start && m->text[c->end - 1] == '.') c->end--;
    const size_t n = c->end - c->start;
    if (n < 3 || n >= sizeof buf) return false;
    memcpy(buf, m->text + c->start, n);
    buf[n] = '\0';
    int hex = 0;
    for (size_t i = 0; i < n; i++) hex += isxdigit((unsigned char)buf[i]) != 0;
    unsigned char addr[16];
    return hex >= 1 && inet_pton(AF_INET6, buf, addr) == 1;
}

/* ---- dates ---- */

static bool dob_context(const match_ctx *m, const cand *c) {
    static const char *const words[] = {"born", "birth", "dob", "d.o.b", NULL};
    const size_t from = c->start > 48 ? c->start - 48 : 0;
    return has_word(m->text, from, c->start, words);
}

static bool ymd_ok(int y, int mo, int d, bool two_digit_year) {
    if (two_digit_year ? (y < 0 || y > 99) : (y < 1880 || y > 2099)) return false;
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31;
}

/* m/d/y or d/m/y (either reading valid), 2- or 4-digit year */
static bool check_date_numeric(const match_ctx *m, cand *c) {
    const int a = group_int(m, 1), b = group_int(m, 3), y = group_int(m, 4);
    const bool yy = group_len(m, 4) == 2;
    if (!ymd_ok(y, a, b, yy) && !ymd_ok(y, b, a, yy)) return false;
    return m->p->dob_mode == GW_DOB_ALL || dob_context(m, c);
}

static bool check_date_iso(const match_ctx *m, cand *c) {
    if (!ymd_ok(group_int(m, 1), group_int(m, 2), group_int(m, 3), false)) return false;
    return m->p->dob_mode == GW_DOB_ALL || dob_context(m, c);
}

/* month names: day before or after the month, then a 4-digit year */
static bool check_date_text(const match_ctx *m, cand *c) {
    int d = group_int(m, 1);
    if (d < 0) d = group_int(m, 3);
    if (d == 0 || d > 31 || !ymd_ok(group_int(m, 4), 1, d < 0 ? 1 : d, false)) return false;
    return m->p->dob_mode == GW_DOB_ALL || dob_context(m, c);
}

/* ---- phones ---- */

static bool check_phone(const match_ctx *m, cand *c) {
    const char *t = m->text;
    /* the extension is not counted */
    size_t body_end = c->end;
    for (size_t i = c->start; i < c->end; i++)
        if (t[i] == 'x' || t[i] == 'X' || t[i] == 'e' || t[i] == 'E') {
            body_end = i;
            break;
        }
    int digits = 0, n_groups = 0, glen[16];
    char sep = 0;
    bool mixed_sep = false, plus = false, paren = false;
    for (size_t i = c->start; i < body_end;) {
        if (is_digit(t[i])) {
            size_t j = i;
            while (j < body_end && is_digit(t[j])) j++;
            if (n_groups < 16) glen[n_groups] = (int)(j - i);
            n_groups++;
            digits += (int)(j - i);
            i = j;
            continue;
        }
        if (t[i] == '+') plus = true;
        if (t[i] == '(' || t[i] == ')') paren = true;
        if (t[i] == ' ' || t[i] == '-' || t[i] == '.') {
            if (sep && sep != t[i]) mixed_sep = true;
            sep = t[i];
        }
        i++;
    }
    if (digits < 7 || digits > 15 || n_groups > 16) return false;
    static const char *const phone_words[] = {"phone",   "call",    "tel",   "fax",
                                              "mobile",  "cell",    "sms",   "text",
                                              "message", "contact", "reach", NULL};
    static const char *const other_words[] = {"zip",     "postal",  "post code", "postcode",
                                              "license", "licence", "passport",  NULL};
    const size_t near = c->start > 40 ? c->start - 40 : 0;
    if (has_word(t, c->start > 30 ? c->start - 30 : 0, c->start, other_words)) return false;
    if (!plus && !paren && n_groups <= 2) {
        /* a bare run of digits, or two groups (as in "17 2450 Crown St"), is a
         * phone number only where one is expected */
        if (!has_word(t, near, c->start, phone_words)) return false;
        if (n_groups == 1) return digits >= 9;
    }
    if (!plus && !paren && glen[0] < 2) return false; /* "1 000 000" */
    if (!plus && !paren && !mixed_sep && (sep == '-' || sep == '.' || sep == '/')) {
        if (n_groups == 3 && ((glen[0] == 4 && glen[1] <= 2 && glen[2] <= 2) ||
                              (glen[0] <= 2 && glen[1] <= 2 && glen[2] == 4)))
            return false;                                                              /* a date */
        if (n_groups == 2 && glen[0] == 5 && glen[1] == 4 && sep == '-') return false; /* ZIP+4 */
        if (sep == '.' && glen[0] <= 3) {
            bool thousands = true;
            for (int k = 1; k < n_groups && k < 16; k++) thousands &= glen[k] == 3;
            if (thousands) return false; /* 12.345.678 */
        }
    }
    return true;
}

/* In priority order: where spans overlap, the earlier detector wins. */
static const detector detectors[] = {
    {GW_ENT_EMAIL,
     "(?<![A-Za-z0-9._%+\\x80-\\xff-])[A-Za-z0-9._%+\\x80-\\xff-]{1,64}@"
     "[A-Za-z0-9.\\x80-\\xff-]{1,253}",
     check_email},
    {GW_ENT_IBAN, "(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2} ?[A-Za-z0-9]", check_iban},
    {GW_ENT_CREDIT_CARD, "(?<![A-Za-z0-9.+-])[0-9](?:[ -]?[0-9]){11,18}(?![A-Za-z0-9]|[.-][0-9])",
     check_card},
    {GW_ENT_SSN,
     "(?<![A-Za-z0-9.+-])([0-9]{3})([- .])([0-9]{2})\\2([0-9]{4})(?![A-Za-z0-9]|[-.][0-9])",
     check_ssn},
    {GW_ENT_IP,
     "(?<![A-Za-z0-9:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\\.[0-9]{1,3}){0,3}"
     "(?![A-Za-z0-9:])",
     check_ipv6},
    {GW_ENT_IP,
     "(?<![A-Za-z0-9.])([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})(?![0-9]|\\.[0-9])",
     check_ipv4},
    {GW_ENT_DOB,
     "(?<![0-9/.-])([0-9]{1,2})([/.-])([0-9]{1,2})\\2([0-9]{4}|[0-9]{2})(?![0-9]|[/.-][0-9])",
     check_date_numeric},
    {GW_ENT_DOB, "(?<![0-9])([0-9]{4})-([0-9]{2})-([0-9]{2})(?![0-9])", check_date_iso},
    {GW_ENT_DOB,
     "(?i)\\b(?:([0-9]{1,2})(?:st|nd|rd|th)?\\s+(?:of\\s+)?)?"
     "(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
     "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\\.?"
     "(?:\\s+([0-9]{1,2})(?:st|nd|rd|th)?)?,?\\s+([0-9]{4})\\b",
     check_date_text},
    {GW_ENT_PHONE,
     "(?<![A-Za-z0-9+./-])(?:\\+[0-9]{1,3}[ .-]?)?(?:\\([0-9]{1,4}\\)[ .-]?)?[0-9]{1,10}"
     "(?:[ .-]?\\([0-9]{1,4}\\)|[ .-][0-9]{1,10}){0,7}"
     "(?:[ ]?(?:x|ext\\.?|extension)[ ]?[0-9]{1,5})?(?![A-Za-z0-9]|[./-][0-9]|:[0-9])",
     check_phone},
};

enum { N_DETECTORS = sizeof detectors / sizeof detectors[0] };
_Static_assert((int)N_DETECTORS <= (int)MAX_DETECTORS, "raise MAX_DETECTORS");

hearth_err gw_pii_new(gw_dob_mode dob_mode, gw_pii **out) {
    gw_pii *p = calloc(1, sizeof *p);
    if (!p) return hr_fail(HEARTH_ERR_NOMEM, "pii: out of memory");
    p->dob_mode = dob_mode;
    for (int i = 0; i < N_DETECTORS; i++) {
        int code;
        PCRE2_SIZE at;
        p->re[i] = pcre2_compile((PCRE2_SPTR)detectors[i].pattern, PCRE2_ZERO_TERMINATED, 0, &code,
                                 &at, NULL);
        if (!p->re[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            gw_pii_free(p);
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "pii: pattern %d at %zu: %s", i, (size_t)at,
                           (const char *)msg);
        }
        (void)pcre2_jit_compile(p->re[i], PCRE2_JIT_COMPLETE); /* interpreted without JIT */
    }
    *out = p;
    return HEARTH_OK;
}

void gw_pii_free(gw_pii *p) {
    if (!p) return;
    for (int i = 0; i < N_DETECTORS; i++) pcre2_code_free(p->re[i]);
    free(p);
}

typedef struct span_list {
    gw_span *v;
    size_t n, cap;
} span_list;

static bool push_span(span_list *l, gw_entity type, size_t start, size_t end) {
    if (l->n == l->cap) {
        const size_t cap = l->cap ? l->cap * 2 : 16;
        gw_span *v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (gw_span){type, start, end};
    return true;
}

static int by_start(const void *a, const void *b) {
    const gw_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Runs one detector over the text, keeping candidates on untaken bytes. */
static hearth_err run_detector(const gw_pii *p, int k, const char *text, size_t len, uint8_t *taken,
                               pcre2_match_data *md, span_list *out) {
    size_t off = 0;
    while (off < len) {
        const int rc = pcre2_match(p->re[k], (PCRE2_SPTR)text, len, off, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return hr_fail(HEARTH_ERR_UNSUPPORTED, "pii: match error %d", rc);
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        cand c = {ov[0], ov[1]};
        const match_ctx m = {p, text, len, ov, rc};
        bool ok = c.end > c.start && detectors[k].check(&m, &c);
        for (size_t i = c.start; ok && i < c.end; i++) ok = !taken[i];
        if (ok) {
            memset(taken + c.start, 1, c.end - c.start);
            if (!push_span(out, detectors[k].type, c.start, c.end))
                return hr_fail(HEARTH_ERR_NOMEM, "pii: out of memory");
            off = c.end;
        } else {
            off = ov[0] + 1;
        }
    }
    return HEARTH_OK;
}

hearth_err gw_pii_scan(const gw_pii *p, const char *text, size_t len, gw_span **spans,
                       size_t *n_spans) {
    span_list out = {0};
    hearth_err err = HEARTH_OK;
    uint8_t *taken = calloc(len ? len : 1, 1);
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    if (!taken || !md) err = hr_fail(HEARTH_ERR_NOMEM, "pii: out of memory");
    for (int k = 0; !err && k < N_DETECTORS; k++)
        err = run_detector(p, k, text, len, taken, md, &out);
    pcre2_match_data_free(md);
    free(taken);
    if (err) {
        free(out.v);
        return err;
    }
    if (out.n) qsort(out.v, out.n, sizeof *out.v, by_start);
    *spans = out.v;
    *n_spans = out.n;
    return HEARTH_OK;
}
