/*
 * api_completions.c - POST /v1/completions: a text prompt (tokenized with the
 * vocabulary's BOS and special tokens, as llama.cpp's server does) or token
 * ids (checked against the vocabulary, as are logit_bias's), then the gateway (api_gateway.c),
 * which routes, guards and accounts it as it does a chat request. echo puts
 * the prompt text (a token-id prompt's detokenized) before the completion;
 * with logprobs too, the prompt's tokens are scored and lead the logprobs. With a suffix the prompt
 * is the code before the cursor and the model fills in the middle (answered locally:
 * srv_tokenize_fim). max_tokens 0 (vLLM's prompt scoring, llama-server's
 * n_predict 0) evaluates the prompt and generates nothing: the echo (and
 * with logprobs the prompt's) or an empty text, finish_reason "length";
 * answered locally too (srv_pin_local).
 *
 * Several prompts (an array of strings or of token-id arrays, as
 * lm-evaluation-harness sends a batch) are each tokenized and checked as
 * one; prompt 0's tokens go to the gateway as a single prompt's do, the
 * others' stay in the request (srv_request.more_prompts), where api_gen.c
 * finds them.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* Prompt i's tokens (*ids, malloc'd): its text tokenized, or its ids in[0..n_in)
 * checked against the vocabulary (an error names prompt[j], in a list of
 * several prompt[i][j]) and, with echo, their text into *echo. */
static bool prompt_tokens(const srv_model *m, const srv_request *r, int i, const char *text,
                          size_t len, const int32_t *in, int n_in, int32_t **ids, int *n,
                          char **echo, size_t *echo_len, srv_error *e) {
    if (text) return srv_tokenize(m, text, len, ids, n, e);
    const int n_vocab = hearth_model_n_vocab(m->model);
    for (int j = 0; j < n_in; j++) {
        if (in[j] < n_vocab) continue;
        char name[48];
        if (srv_n_prompts(r) > 1)
            snprintf(name, sizeof name, "prompt[%d][%d]", i, j);
        else
            snprintf(name, sizeof name, "prompt[%d]", j);
        return srv_fail(e, 400, name, NULL,
                        "%d is not a token id of this model (its vocabulary has %d)", in[j],
                        n_vocab);
    }
    /* the gateway takes the ids over: a copy of the request's own */
    if (!(*ids = malloc((size_t)(n_in ? n_in : 1) * sizeof **ids)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    memcpy(*ids, in, (size_t)n_in * sizeof **ids);
    *n = n_in;
    if (r->echo) { /* the echo: the ids' text */
        if (!(*echo = srv_ids_text(m, *ids, n_in)))
            return srv_fail(e, 500, NULL, NULL, "out of memory");
        *echo_len = strlen(*echo);
    }
    return true;
}

/* Every prompt's tokens: prompt 0's into *ids, the others' in place of
 * their parsed form. */
static bool all_tokens(const srv_model *m, srv_request *r, int32_t **ids, int *n, srv_error *e) {
    if (!prompt_tokens(m, r, 0, r->prompt, r->prompt_len, r->prompt_ids, r->n_prompt_ids, ids, n,
                       &r->echo_text, &r->echo_len, e))
        return false;
    for (int i = 1; i < srv_n_prompts(r); i++) {
        srv_prompt *p = &r->more_prompts[i - 1];
        int32_t *t = NULL;
        int nt = 0;
        if (!prompt_tokens(m, r, i, p->text, p->text_len, p->ids, p->n_ids, &t, &nt, &p->echo,
                           &p->echo_len, e)) {
            free(t);
            return false;
        }
        free(p->ids);
        p->ids = t;
        p->n_ids = nt;
    }
    return true;
}

char *srv_completion_text(const srv_model *m, const srv_request *r, const int32_t *ids, int n) {
    char *out = NULL;
    size_t len = 0;
    for (int i = 0; i < srv_n_prompts(r); i++) {
        const srv_prompt *p = i ? &r->more_prompts[i - 1] : NULL;
        const char *text = p ? p->text : r->prompt;
        size_t add = p ? p->text_len : r->prompt_len;
        char *own = NULL;
        if (!text) { /* token ids: their text */
            own = p ? srv_ids_text(m, p->ids, p->n_ids) : srv_ids_text(m, ids, n);
            text = own;
            add = own ? strlen(own) : 0;
        }
        char *grown = text ? realloc(out, len + 2 + add + 1) : NULL;
        if (!grown) {
            free(own);
            free(out);
            return NULL;
        }
        out = grown;
        if (i) {
            memcpy(out + len, "\n\n", 2);
            len += 2;
        }
        memcpy(out + len, text, add);
        len += add;
        out[len] = '\0';
        free(own);
    }
    return out;
}

void srv_complete(srv_exchange *x, srv_request *r) {
    srv_server *s = x->srv;
    srv_error e;
    const srv_model *m = srv_model_use(x, r->model);
    if (!m) return;
    int32_t *ids = NULL;
    int n = 0;
    bool ok = srv_request_check_model(r, m->model, m->id, &e);
    /* /v1/completions and llama-server's /completion (a list of its objects) */
    if (ok && srv_n_prompts(r) > 1 && r->dialect != SRV_DIALECT_OPENAI &&
        r->dialect != SRV_DIALECT_LLAMA)
        ok = srv_fail(&e, 400, "prompt", NULL,
                      "several prompts in one request are answered on /v1/completions and "
                      "/completion only");
    /* scoring without generating: only the local model has the prompt's
     * logprobs, and a remote tier would generate */
    if (ok && srv_prompt_only(r))
        ok = srv_pin_local(x, r, "max_tokens", "0: the prompt scored without generating", &e);
    if (ok && r->suffix) {
        ok = srv_tokenize_fim(x, m, r, &ids, &n, &e);
        if (ok && s->cfg.log_prompts) x->log_prompt = strdup(r->prompt);
    } else if (ok) {
        ok = all_tokens(m, r, &ids, &n, &e);
        if (ok && s->cfg.log_prompts && (r->prompt || srv_n_prompts(r) > 1))
            x->log_prompt = srv_completion_text(m, r, ids, n);
    }
    if (ok) {
        srv_gateway_route(x, r, &ids, n);
    } else {
        srv_respond_error(x, &e);
    }
    free(ids);
}

void srv_handle_completions(srv_exchange *x) {
    srv_request r;
    srv_error e;
    if (!srv_parse_request(SRV_COMPLETION, x->body, x->body_len, &r, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    srv_complete(x, &r);
    srv_request_free(&r);
}
