/*
 * pretokenize.c - the pre-tokenizers of byte-level BPE vocabularies: the text
 * is cut into words by a sequence of regular expressions (PCRE2, UTF mode)
 * before any merge is applied, and merges never cross a word boundary.
 *
 * Semantics follow llama.cpp (src/llama-vocab.cpp picks the expressions by
 * tokenizer.ggml.pre; src/unicode.cpp applies them):
 * - the expressions apply one after another; each one splits every piece the
 *   previous ones produced, and a piece's text between matches is a piece too;
 *   an expression sees only the piece it splits (look-ahead stops at its end);
 * - matching runs on code points decoded leniently (invalid bytes -> U+FFFD);
 *   every whitespace code point above U+007F is matched as U+000B, and \s means
 *   ASCII whitespace, which together give llama.cpp's "Unicode White_Space"
 *   meaning of \s; this is also why the expressions below spell \s as an
 *   explicit class instead of relying on PCRE2's own (wider) \s;
 * - llama.cpp evaluates the common expressions (GPT-2, Llama 3, Qwen2) with
 *   hand-written code rather than a regex engine; that code gives the same
 *   words as the expressions do (contractions, \p{N}{1,3} digit groups,
 *   " ?\p{L}+", "\s+(?!\S)"), which the conformance tests check.
 */
#include "tokenizer/tok_impl.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdlib.h>
#include <string.h>

/* \s (ASCII whitespace, see above) as class contents, and \s / \S */
#define WS "\\t\\n\\x0B\\f\\r "
#define S  "[" WS "]"
#define NS "[^" WS "]"

#define RE_GPT2                                                                                    \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" S "+(?!" NS ")"
#define RE_CONTRACTIONS_CI "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3_TAIL     "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" S "*[\\r\\n]+|" S "+(?!" NS ")|" S "+"
#define RE_LLAMA3          RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}" RE_LLAMA3_TAIL
#define RE_QWEN2           RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" RE_LLAMA3_TAIL
/* Qwen3.5: letter runs and the punctuation run also take combining marks */
#define RE_QWEN35                                                                                  \
    RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^" WS                     \
                       "\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|" S "*[\\r\\n]+|" S "+(?!" NS ")|" S "+"
/* Tekken (Mistral Nemo, Ministral 8B) as llama.cpp rewrites tokenizer.json's
 * expression: "upper" letter runs are letters that are not a-z, "lower" ones
 * letters that are not A-Z (so any other letter is both), then single digits */
#define RE_TEKKEN_UPPER "(?:(?=\\p{L})[^a-z])"
#define RE_TEKKEN_LOWER "(?:(?=\\p{L})[^A-Z])"
#define RE_TEKKEN                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_TEKKEN_UPPER "*" RE_TEKKEN_LOWER                                   \
    "+|[^\\r\\n\\p{L}\\p{N}]?" RE_TEKKEN_UPPER "+" RE_TEKKEN_LOWER "*|\\p{N}| ?[^" WS              \
    "\\p{L}\\p{N}]+[\\r\\n/]*|" S "*[\\r\\n]+|" S "+(?!" NS ")|" S "+"
/* CJK ideographs, U+0800..U+4E00 and Hangul, as DeepSeek's tokenizer.json has it */
#define RE_DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
/* DeepSeek LLM's explicit letter class (tokenizer.json), cased letters only */
#define RE_DEEPSEEK_LETTERS                                                                        \
    S "?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-"    \
      "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}"        \
      "\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"       \
      "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-"         \
      "\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"      \
      "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-"     \
      "\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-"       \
      "\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-"      \
      "\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}"      \
      "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}"        \
      "\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-"      \
      "\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-"       \
      "\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"       \
      "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-"     \
      "\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-"            \
      "\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-"       \
      "\\x{118DF}\\x{1E900}-\\x{1E943}]+"
#define RE_DEEPSEEK_PUNCT                                                                          \
    S "?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"

enum { MAX_EXPRS = 6 };

typedef struct pre_kind {
    const char *exprs[MAX_EXPRS]; /* NULL-terminated */
} pre_kind;

static const pre_kind PRE_DEFAULT = {
    {"[\\p{P}$+<=>^~|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL}};
static const pre_kind PRE_GPT2 = {{RE_GPT2, NULL}};
static const pre_kind PRE_LLAMA3 = {{RE_LLAMA3, NULL}};
static const pre_kind PRE_QWEN2 = {{RE_QWEN2, NULL}};
static const pre_kind PRE_QWEN35 = {{RE_QWEN35, NULL}};
static const pre_kind PRE_TEKKEN = {{RE_TEKKEN, NULL}};
static const pre_kind PRE_STARCODER = {{"\\p{N}", RE_GPT2, NULL}};
static const pre_kind PRE_FALCON = {{"[\\p{P}$+<=>^~|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL}};
static const pre_kind PRE_DEEPSEEK_LLM = {
    {"[\\r\\n]", RE_DEEPSEEK_LETTERS, RE_DEEPSEEK_PUNCT, S "+$", RE_DEEPSEEK_CJK, "\\p{N}+"}};
static const pre_kind PRE_DEEPSEEK_CODER = {
    {"[\\r\\n]", S "?\\p{L}+", S "?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}", NULL}};
/* Gemma 4 merges over whole lines (spaces are U+2581 by then); only newline
 * runs are cut off. Naming it also selects spm_bpe (see tok_pretok_new). */
static const pre_kind PRE_GEMMA4 = {{"[^\\n]+|[\\n]+", NULL}};

/* tokenizer.ggml.pre -> expressions and the flags llama.cpp sets with them */
typedef struct pre_entry {
    const char *name;
    const pre_kind *kind;
    bool clean_spaces;  /* GPT-2 style clean-up when detokenizing */
    bool ignore_merges; /* a word that is a token is taken whole */
    bool add_bos;       /* default for add_bos_token */
    bool add_sep;       /* default for add_sep_token: a pair's separator (RoBERTa's </s></s>) */
} pre_entry;

static const pre_entry PRE_TABLE[] = {
    {"default", &PRE_DEFAULT, true, false, false, false},
    {"llama3", &PRE_LLAMA3, true, true, true, false},
    {"llama-v3", &PRE_LLAMA3, true, true, true, false},
    {"llama-bpe", &PRE_LLAMA3, true, true, true, false},
    {"falcon3", &PRE_LLAMA3, true, true, true, false},
    {"falcon-h1", &PRE_LLAMA3, true, true, true, false},
    {"pixtral", &PRE_LLAMA3, true, true, true, false},
    {"midm-2.0", &PRE_LLAMA3, true, true, true, false},
    {"lfm2", &PRE_LLAMA3, true, true, true, false},
    {"jina-v5-nano", &PRE_LLAMA3, true, true, true, false},
    {"dbrx", &PRE_LLAMA3, true, false, false, false},
    {"smaug-bpe", &PRE_LLAMA3, true, false, false, false},
    {"deepseek-llm", &PRE_DEEPSEEK_LLM, false, false, false, false},
    {"deepseek-coder", &PRE_DEEPSEEK_CODER, false, false, false, false},
    {"falcon", &PRE_FALCON, true, false, false, false},
    {"gpt-2", &PRE_GPT2, true, false, false, false},
    {"phi-2", &PRE_GPT2, true, false, false, false},
    {"jina-es", &PRE_GPT2, true, false, false, false},
    {"jina-de", &PRE_GPT2, true, false, false, false},
    {"jina-v2-es", &PRE_GPT2, true, false, false, false},
    {"jina-v2-de", &PRE_GPT2, true, false, false, false},
    {"gigachat", &PRE_GPT2, true, false, false, false},
    {"a.x-4.0", &PRE_GPT2, true, false, false, false},
    {"mellum", &PRE_GPT2, true, false, false, false},
    {"modern-bert", &PRE_GPT2, true, false, false, false},
    {"roberta-bpe", &PRE_GPT2, true, false, false, true},
    {"jina-v1-en", &PRE_GPT2, true, false, false, true},
    {"jina-v2-code", &PRE_GPT2, true, false, false, true},
    {"exaone4", &PRE_GPT2, true, false, false, false},
    {"mpt", &PRE_GPT2, true, false, false, false},
    {"olmo", &PRE_GPT2, true, false, false, false},
    {"jais", &PRE_GPT2, true, false, false, false},
    {"trillion", &PRE_GPT2, false, false, false, false},
    {"granite-docling", &PRE_GPT2, false, false, false, false},
    {"tekken", &PRE_TEKKEN, false, true, true, false},
    {"qwen2", &PRE_QWEN2, false, false, false, false},
    {"qwen35", &PRE_QWEN35, false, false, false, false},
    {"deepseek-r1-qwen", &PRE_QWEN2, false, false, false, false},
    {"kormo", &PRE_QWEN2, false, false, false, false},
    {"f2llmv2", &PRE_QWEN2, false, false, false, false},
    {"megrez", &PRE_QWEN2, true, false, false, false},
    {"stablelm2", &PRE_QWEN2, true, false, false, false},
    {"hunyuan", &PRE_QWEN2, false, false, false, false},
    {"solar-open", &PRE_QWEN2, false, false, false, false},
    {"starcoder", &PRE_STARCODER, true, false, false, false},
    {"refact", &PRE_STARCODER, true, false, false, false},
    {"smollm", &PRE_STARCODER, false, false, false, false},
    {"command-r", &PRE_STARCODER, false, false, false, false},
    {"codeshell", &PRE_STARCODER, true, false, false, false},
    {"exaone", &PRE_STARCODER, true, false, false, false},
    {"minerva-7b", &PRE_STARCODER, true, false, false, false},
    {"mellum2", &PRE_STARCODER, true, false, false, false},
    {"gemma4", &PRE_GEMMA4, true, false, false, false}, /* add_bos: forced in vocab.c */
    {"granite-embed-multi-311m", &PRE_GEMMA4, true, false, false, false},
};

struct tok_pretok {
    int n;
    pcre2_code *re[MAX_EXPRS];
};

void tok_pretok_free(tok_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->re[i]);
    free(p);
}

hearth_err tok_pretok_new(const char *name, tok_vocab *v, tok_pretok **out) {
    const pre_entry *e = NULL;
    for (size_t i = 0; i < sizeof PRE_TABLE / sizeof PRE_TABLE[0]; i++)
        if (!strcmp(PRE_TABLE[i].name, name)) e = &PRE_TABLE[i];
    if (!e)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "tokenizer: unknown pre-tokenizer tokenizer.ggml.pre = '%s'", name);
    tok_pretok *p = hr_calloc(1, sizeof *p);
    if (!p) return HEARTH_ERR_NOMEM;
    for (int i = 0; i < MAX_EXPRS && e->kind->exprs[i]; i++) {
        int code;
        PCRE2_SIZE at;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)e->kind->exprs[i], PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &at, NULL);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof msg);
            tok_pretok_free(p);
            /* a bug in the table above, not in the file */
            return hr_fail(
                HEARTH_ERR_UNSUPPORTED,
                "tokenizer: pre-tokenizer '%s' expression %d does not compile at %zu: %s", name, i,
                (size_t)at, (const char *)msg);
        }
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* interpreted when JIT is unavailable */
        p->re[p->n++] = re;
    }
    v->clean_spaces = e->clean_spaces;
    v->ignore_merges = e->ignore_merges;
    v->add_bos = e->add_bos;
    v->add_sep = e->add_sep;
    /* llama.cpp ties escaped spaces and raw UTF-8 symbols to this pre-tokenizer */
    v->spm_bpe = e->kind == &PRE_GEMMA4;
    *out = p;
    return HEARTH_OK;
}

/* ---- splitting ---- */

typedef struct span {
    size_t start, count; /* code points */
} span;

typedef struct span_list {
    span *p;
    size_t n, cap;
} span_list;

static hearth_err span_push(span_list *l, size_t start, size_t count) {
    if (count == 0) return HEARTH_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        span *np = realloc(l->p, cap * sizeof *np);
        if (!np) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory splitting text");
        l->p = np, l->cap = cap;
    }
    l->p[l->n++] = (span){start, count};
    return HEARTH_OK;
}

/* The subject every expression runs on: valid UTF-8 (surrogates, which PCRE2
 * rejects, become U+E000: like them a code point of class "other" that no
 * expression names) with non-ASCII whitespace as U+000B; byte_of[i] is where
 * code point i starts. */
typedef struct subject {
    char *s;
    size_t *byte_of; /* [n + 1] */
    uint32_t *cp_at; /* byte offset -> code point index (valid at starts) */
} subject;

static hearth_err subject_build(subject *sb, const uint32_t *cps, size_t n) {
    uint64_t bytes;
    if (!hr_mul_ok(n, 4, &bytes) || bytes + 1 > SIZE_MAX / sizeof(size_t))
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: text too long");
    sb->s = malloc(bytes + 1);
    sb->byte_of = malloc((n + 1) * sizeof *sb->byte_of);
    sb->cp_at = malloc((bytes + 1) * sizeof *sb->cp_at);
    if (!sb->s || !sb->byte_of || !sb->cp_at)
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory splitting text");
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cps[i];
        if (cp > 0x7F && tok_uc_is_space(cp))
            cp = 0x0B;
        else if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 0xE000;
        sb->byte_of[i] = w;
        sb->cp_at[w] = (uint32_t)i;
        w += hr_utf8_put(cp, sb->s + w);
    }
    sb->byte_of[n] = w;
    sb->cp_at[w] = (uint32_t)n;
    sb->s[w] = '\0';
    return HEARTH_OK;
}

/* Splits piece `in` with one expression, appending the parts to `out`. */
/* A match that outgrew PCRE2's default 32 KiB JIT stack (Tekken's cased
 * letter runs backtrack over the run: some 7 bytes of stack a character, so
 * a few thousand capitals), again with a stack sized for the piece. */
static int match_big(const pcre2_code *re, PCRE2_SPTR subj, size_t len, size_t pos,
                     pcre2_match_data *md) {
    const size_t max = len > (SIZE_MAX >> 7) ? SIZE_MAX : ((size_t)1 << 20) + 64 * len;
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, max, NULL);
    pcre2_match_context *mc = js ? pcre2_match_context_create(NULL) : NULL;
    int rc = PCRE2_ERROR_NOMEMORY;
    if (mc) {
        pcre2_jit_stack_assign(mc, NULL, js);
        rc = pcre2_match(re, subj, len, pos, PCRE2_NO_UTF_CHECK, md, mc);
    }
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(js);
    return rc;
}

static hearth_err split_one(const pcre2_code *re, pcre2_match_data *md, const subject *sb, span in,
                            span_list *out) {
    size_t b0 = sb->byte_of[in.start], b1 = sb->byte_of[in.start + in.count];
    const PCRE2_SPTR subj = (PCRE2_SPTR)sb->s + b0;
    size_t len = b1 - b0, pos = 0, prev = 0; /* bytes from b0 */
    hearth_err err = HEARTH_OK;
    while (pos <= len && !err) {
        int rc = pcre2_match(re, subj, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = match_big(re, subj, len, pos, md);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer match failed: %s",
                           (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* an empty match: move on one character */
            if (ms >= len) break;
            pos = ms + tok_utf8_len((uint8_t)sb->s[b0 + ms]);
            continue;
        }
        size_t c_prev = sb->cp_at[b0 + prev], c_ms = sb->cp_at[b0 + ms], c_me = sb->cp_at[b0 + me];
        err = span_push(out, c_prev, c_ms - c_prev); /* text between matches */
        if (!err) err = span_push(out, c_ms, c_me - c_ms);
        prev = pos = me;
    }
    if (!err && prev < len) {
        size_t c_prev = sb->cp_at[b0 + prev];
        err = span_push(out, c_prev, in.start + in.count - c_prev);
    }
    return err;
}

hearth_err tok_pretok_split(const tok_pretok *p, const uint32_t *cps, size_t n, tok_word_fn emit,
                            void *ctx) {
    if (n == 0) return HEARTH_OK;
    subject sb = {0};
    span_list a = {0}, b = {0};
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    hearth_err err = md ? subject_build(&sb, cps, n)
                        : hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory splitting text");
    if (!err) err = span_push(&a, 0, n);
    for (int r = 0; r < p->n && !err; r++) {
        b.n = 0;
        for (size_t i = 0; i < a.n && !err; i++) err = split_one(p->re[r], md, &sb, a.p[i], &b);
        span_list t = a;
        a = b, b = t;
    }
    for (size_t i = 0; i < a.n && !err; i++) err = emit(ctx, a.p[i].start, a.p[i].count);
    pcre2_match_data_free(md);
    free(a.p);
    free(b.p);
    free(sb.s);
    free(sb.byte_of);
    free(sb.cp_at);
    return err;
}
