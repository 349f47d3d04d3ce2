/*
 * reasoning.c - a reasoning model's reply split into its thinking and its
 * answer as the reply is generated (llama-server's reasoning_format
 * "deepseek"): "<think>\nthoughts\n</think>\n\nanswer" becomes reasoning
 * "thoughts" and content "answer".
 *
 * Qwen 3, QwQ, the DeepSeek-R1 distills and SmolLM3 all write their
 * reasoning between <think> and </think> tags at the start of the reply; a
 * template whose generation prompt already opened the block (Qwen 3
 * Thinking-2507) makes the model start inside it. The splitter sees the
 * reply a token's text at a time, so a tag may arrive in pieces: bytes that
 * may still turn out to be part of a tag (or white space that a tag would
 * make trailing) are held back until the next bytes decide, and released by
 * srv_think_finish when the reply ends. White space around the tags is not
 * part of either text, as the templates print it there.
 */
#include "server.h"

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

#include <string.h>

static const char open_tag[] = "<think>", close_tag[] = "</think>";

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

void srv_think_init(srv_think *t, bool open) {
    *t = (srv_think){.state = open ? SRV_THINK_LEAD : SRV_THINK_START};
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

/* START: white space, then perhaps "<think>". */
static void start_byte(srv_think *t, char c, srv_think_out *o) {
    t->held[t->n_held++] = c;
    size_t lead = 0;
    while (lead < t->n_held && is_space(t->held[lead])) lead++;
    const char *h = t->held + lead;
    const size_t n = t->n_held - lead, m = sizeof open_tag - 1;
    if (n == 0 && t->n_held + m < SRV_THINK_HOLD) return; /* only white space so far */
    if (n > 0 && n < m && !memcmp(h, open_tag, n)) return;
    if (n == m && !memcmp(h, open_tag, m)) {
        t->state = SRV_THINK_LEAD;
        t->n_held = 0;
        return;
    }
    put(o->content, &o->n_content, t->held, t->n_held); /* no reasoning block */
    t->n_held = 0;
    t->state = SRV_THINK_CONTENT;
}

/* IN: reasoning, held back while it may end in white space and the tag. */
static void in_byte(srv_think *t, char c, srv_think_out *o) {
    t->held[t->n_held++] = c;
    const size_t m = sizeof close_tag - 1;
    size_t k = tag_suffix(t->held, t->n_held, close_tag);
    if (k == m) { /* the block ends; the white space before the tag goes with it */
        t->n_held = 0;
        t->state = SRV_THINK_AFTER;
        return;
    }
    /* keep the white space run before the tag's possible start, release the
     * rest; when too much is held, release all but the tag's prefix */
    size_t keep = t->n_held - k;
    while (keep > 0 && is_space(t->held[keep - 1])) keep--;
    if (t->n_held >= SRV_THINK_HOLD) keep = t->n_held - k;
    put(o->reason, &o->n_reason, t->held, keep);
    memmove(t->held, t->held + keep, t->n_held - keep);
    t->n_held -= keep;
}

void srv_think_feed(srv_think *t, const char *text, size_t n, srv_think_out *o) {
    for (size_t i = 0; i < n; i++) {
        const char c = text[i];
        switch (t->state) {
        case SRV_THINK_START: start_byte(t, c, o); break;
        case SRV_THINK_LEAD:
            if (is_space(c)) break;
            t->state = SRV_THINK_IN;
            in_byte(t, c, o);
            break;
        case SRV_THINK_IN: in_byte(t, c, o); break;
        case SRV_THINK_AFTER:
            if (is_space(c)) break;
            t->state = SRV_THINK_CONTENT;
            put(o->content, &o->n_content, &c, 1);
            break;
        case SRV_THINK_CONTENT: put(o->content, &o->n_content, &c, 1); break;
        }
    }
}

void srv_think_finish(srv_think *t, srv_think_out *o) {
    if (t->state == SRV_THINK_START) put(o->content, &o->n_content, t->held, t->n_held);
    if (t->state == SRV_THINK_IN) put(o->reason, &o->n_reason, t->held, t->n_held);
    t->n_held = 0;
}

bool srv_think_answering(const srv_think *t) {
    return t->state == SRV_THINK_AFTER || t->state == SRV_THINK_CONTENT;
}

/* ---- the server's and the request's say ------------------------------------ */

bool srv_reasoning_format_parse(const char *name, srv_reasoning_format *out) {
    static const char *const names[] = {"auto", "none", "deepseek"};
    for (int i = 0; i < 3; i++) {
        if (!strcmp(name, names[i])) {
            *out = (srv_reasoning_format)i;
            return true;
        }
    }
    return false;
}

bool srv_thinking_off(const srv_model *m, const srv_request *r) {
    return r->think >= 0 ? r->think == 0 : m->srv->cfg.reasoning == 0;
}

bool srv_think_split(const srv_model *m, const srv_request *r, bool *open) {
    const srv_reasoning_format f =
        r->reasoning_format ? r->reasoning_format : m->srv->cfg.reasoning_format;
    const bool split = r->kind == SRV_CHAT && f != SRV_REASONING_NONE &&
                       (f == SRV_REASONING_DEEPSEEK || (m->have_template && m->tmpl.think));
    /* a constrained reply (JSON, a forced call) is the answer from its first
     * byte even where the prompt opened the block */
    *open = split && m->have_template && m->tmpl.think_open &&
            r->sampling.constraint == HEARTH_CONSTRAINT_NONE &&
            !(m->tmpl.think_toggle && srv_thinking_off(m, r));
    return split;
}

bool srv_think_budget(const srv_model *m, const srv_request *r, int *budget, srv_error *e) {
    *budget = r->reasoning_budget >= 0 ? r->reasoning_budget : m->srv->cfg.reasoning_budget;
    bool open;
    if (*budget < 0 || !srv_think_split(m, r, &open) ||
        r->sampling.constraint != HEARTH_CONSTRAINT_NONE) {
        *budget = -1;
        return true;
    }
    const tok_vocab *v = engine_vocab(m->model);
    if (v && tok_find(v, "<think>", 7) >= 0 && tok_find(v, "</think>", 8) >= 0) return true;
    *budget = -1;
    return r->reasoning_budget < 0 ||
           srv_fail(e, 400, "thinking_budget_tokens", NULL,
                    "a thinking budget needs a model whose vocabulary has <think> and </think> "
                    "tokens");
}
