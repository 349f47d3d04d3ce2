/*
 * think.c - a reasoning model's reply split into its thinking and its
 * answer as the reply is generated (llama-server's reasoning_format
 * "deepseek"): "<think>\nthoughts\n</think>\n\nanswer" becomes reasoning
 * "thoughts" and content "answer".
 *
 * Qwen 3, QwQ, the DeepSeek-R1 distills and SmolLM3 all write their
 * reasoning between <think> and </think> tags at the start of the reply
 * (Gemma 4 between <|channel>thought and <channel|>, Ministral 3 and
 * Magistral between [THINK] and [/THINK]: the same split); a
 * template whose generation prompt already opened the block (Qwen 3
 * Thinking-2507) makes the model start inside it. The splitter sees the
 * reply a token's text at a time, so a tag may arrive in pieces: bytes that
 * may still turn out to be part of a tag (or white space that a tag would
 * make trailing) are held back until the next bytes decide, and released by
 * eng_think_finish when the reply ends. White space around the tags is not
 * part of either text, as the templates print it there.
 */
#include "think.h"

#include <string.h>

/* the tag pairs: <think>...</think>, Gemma 4's <|channel>thought...<channel|>,
 * Mistral's [THINK]...[/THINK] */
static const char *const open_tags[] = {"<think>", "<|channel>thought", "[THINK]"};
static const char *const close_tags[] = {"</think>", "<channel|>", "[/THINK]"};
enum { N_PAIRS = sizeof open_tags / sizeof *open_tags };

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

void eng_think_init(eng_think *t, bool open) {
    *t = (eng_think){.state = open ? ENG_THINK_LEAD : ENG_THINK_START};
}

static void put(char *dst, size_t *n, const char *src, size_t len) {
    memcpy(dst + *n, src, len);
    *n += len;
}

/* The longest suffix of s[0..n) that is a proper or whole prefix of tag. */
static size_t tag_suffix(const char *s, size_t n, const char *tag) {
    const size_t m = strlen(tag);
    for (size_t k = n < m ? n : m; k > 0; k--)
        if (!memcmp(s + n - k, tag, k)) return k;
    return 0;
}

/* START: white space, then perhaps an opening tag. */
static void start_byte(eng_think *t, char c, eng_think_out *o) {
    t->held[t->n_held++] = c;
    size_t lead = 0;
    while (lead < t->n_held && is_space(t->held[lead])) lead++;
    const char *h = t->held + lead;
    const size_t n = t->n_held - lead;
    if (n == 0 && t->n_held + strlen(open_tags[0]) < ENG_THINK_HOLD)
        return; /* only white space so far */
    for (int k = 0; k < N_PAIRS; k++) {
        /* a tag's start is held while it fits (the longer one may not, after
         * a long lead: then it is content) */
        const size_t m = strlen(open_tags[k]);
        if (n > 0 && n < m && !memcmp(h, open_tags[k], n) && t->n_held < ENG_THINK_HOLD) return;
        if (n == m && !memcmp(h, open_tags[k], m)) {
            t->state = ENG_THINK_LEAD;
            t->n_held = 0;
            t->pair = k;
            return;
        }
    }
    put(o->content, &o->n_content, t->held, t->n_held); /* no reasoning block */
    t->n_held = 0;
    t->state = ENG_THINK_CONTENT;
}

/* IN: reasoning, held back while it may end in white space and the tag. */
static void in_byte(eng_think *t, char c, eng_think_out *o) {
    t->held[t->n_held++] = c;
    const char *close_tag = close_tags[t->pair];
    const size_t m = strlen(close_tag);
    size_t k = tag_suffix(t->held, t->n_held, close_tag);
    if (k == m) { /* the block ends; the white space before the tag goes with it */
        t->n_held = 0;
        t->state = ENG_THINK_AFTER;
        return;
    }
    /* keep the white space run before the tag's possible start, release the
     * rest; when too much is held, release all but the tag's prefix */
    size_t keep = t->n_held - k;
    while (keep > 0 && is_space(t->held[keep - 1])) keep--;
    if (t->n_held >= ENG_THINK_HOLD) keep = t->n_held - k;
    put(o->reason, &o->n_reason, t->held, keep);
    memmove(t->held, t->held + keep, t->n_held - keep);
    t->n_held -= keep;
}

void eng_think_feed(eng_think *t, const char *text, size_t n, eng_think_out *o) {
    for (size_t i = 0; i < n; i++) {
        const char c = text[i];
        switch (t->state) {
        case ENG_THINK_START: start_byte(t, c, o); break;
        case ENG_THINK_LEAD:
            if (is_space(c)) break;
            t->state = ENG_THINK_IN;
            in_byte(t, c, o);
            break;
        case ENG_THINK_IN: in_byte(t, c, o); break;
        case ENG_THINK_AFTER:
            if (is_space(c)) break;
            t->state = ENG_THINK_CONTENT;
            put(o->content, &o->n_content, &c, 1);
            break;
        case ENG_THINK_CONTENT: put(o->content, &o->n_content, &c, 1); break;
        }
    }
}

void eng_think_finish(eng_think *t, eng_think_out *o) {
    if (t->state == ENG_THINK_START) put(o->content, &o->n_content, t->held, t->n_held);
    if (t->state == ENG_THINK_IN) put(o->reason, &o->n_reason, t->held, t->n_held);
    t->n_held = 0;
}

bool eng_think_answering(const eng_think *t) {
    return t->state == ENG_THINK_AFTER || t->state == ENG_THINK_CONTENT;
}
