/*
 * reasoning.c - how `hearth serve` treats a reasoning model's thinking: is
 * it switched off (the request's enable_thinking, think, reasoning_effort, or
 * --reasoning), is the reply's <think> block split off (reasoning_format, the
 * template; the splitter is engine/think.c), and the thinking budget a reply
 * gets (docs/server.md, "Reasoning models").
 */
#include "server.h"

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

#include <string.h>

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
    *open = split && m->have_template && r->sampling.constraint == HEARTH_CONSTRAINT_NONE &&
            tok_chat_opens_think(&m->tmpl, srv_thinking_off(m, r));
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
    int32_t start, end;
    if (v && tok_think_pair(v, &start, &end)) return true;
    *budget = -1;
    return r->reasoning_budget < 0 ||
           srv_fail(e, 400, "thinking_budget_tokens", NULL,
                    "a thinking budget needs a model whose vocabulary has <think> and </think> "
                    "(or Gemma 4's <|channel> and <channel|>, or Mistral's [THINK] and [/THINK]) "
                    "tokens");
}
