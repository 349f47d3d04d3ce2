/*
 * api_completions.c - POST /v1/completions: a text prompt (tokenized with the
 * vocabulary's BOS and special tokens, as llama.cpp's server does) or token
 * ids (checked against the vocabulary, as are logit_bias's), then the gateway (api_gateway.c),
 * which routes, guards and accounts it as it does a chat request. echo puts
 * the prompt text (a token-id prompt's detokenized) before the completion;
 * with logprobs too, the prompt's tokens are scored and lead the logprobs. With a suffix the prompt
 * is the code before the cursor and the model fills in the middle (answered locally:
 * srv_tokenize_fim).
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

void srv_complete(srv_exchange *x, srv_request *r) {
    srv_server *s = x->srv;
    srv_error e;
    const srv_model *m = srv_model_use(x, r->model);
    if (!m) return;
    int32_t *ids = NULL;
    int n = 0;
    bool ok = srv_request_check_model(r, m->model, m->id, &e);
    if (ok && r->suffix) {
        ok = srv_tokenize_fim(x, m, r, &ids, &n, &e);
        if (ok && s->cfg.log_prompts) x->log_prompt = strdup(r->prompt);
    } else if (ok && r->prompt) {
        ok = srv_tokenize(m, r->prompt, r->prompt_len, &ids, &n, &e);
        if (ok && s->cfg.log_prompts) x->log_prompt = strdup(r->prompt);
    } else if (ok) {
        const int n_vocab = hearth_model_n_vocab(m->model);
        for (int i = 0; ok && i < r->n_prompt_ids; i++) {
            if (r->prompt_ids[i] >= n_vocab) {
                char name[32];
                snprintf(name, sizeof name, "prompt[%d]", i);
                ok = srv_fail(&e, 400, name, NULL,
                              "%d is not a token id of this model (its vocabulary has %d)",
                              r->prompt_ids[i], n_vocab);
            }
        }
        /* the gateway takes the ids over: a copy of the request's own */
        if (ok && !(ids = malloc((size_t)(r->n_prompt_ids ? r->n_prompt_ids : 1) * sizeof *ids)))
            ok = srv_fail(&e, 500, NULL, NULL, "out of memory");
        if (ok) memcpy(ids, r->prompt_ids, (size_t)r->n_prompt_ids * sizeof *ids);
        n = r->n_prompt_ids;
        if (ok && r->echo) { /* the echo: the ids' text */
            r->echo_text = srv_ids_text(m, ids, n);
            ok = r->echo_text || srv_fail(&e, 500, NULL, NULL, "out of memory");
            r->echo_len = ok ? strlen(r->echo_text) : 0;
        }
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
