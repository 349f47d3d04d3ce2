/*
 * api_completions.c - POST /v1/completions: a text prompt (tokenized with the
 * vocabulary's BOS and special tokens, as llama.cpp's server does) or token
 * ids (checked against the vocabulary), then api_gen.c. echo puts the prompt
 * text before the completion.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

void srv_handle_completions(srv_exchange *x) {
    srv_server *s = x->srv;
    srv_request r;
    srv_error e;
    if (!srv_parse_request(SRV_COMPLETION, x->body, x->body_len, &r, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    int32_t *ids = NULL;
    int n = 0;
    bool ok = true;
    if (r.prompt) {
        ok = srv_tokenize(s, r.prompt, r.prompt_len, &ids, &n, &e);
        if (ok && s->cfg.log_prompts) x->log_prompt = strdup(r.prompt);
    } else {
        const int n_vocab = hearth_model_n_vocab(s->model);
        for (int i = 0; ok && i < r.n_prompt_ids; i++) {
            if (r.prompt_ids[i] >= n_vocab) {
                char name[32];
                snprintf(name, sizeof name, "prompt[%d]", i);
                ok = srv_fail(&e, 400, name, NULL,
                              "%d is not a token id of this model (its vocabulary has %d)",
                              r.prompt_ids[i], n_vocab);
            }
        }
        ids = r.prompt_ids;
        n = r.n_prompt_ids;
    }
    if (ok) {
        srv_gen g = {.kind = SRV_COMPLETION,
                     .req = &r,
                     .ids = ids,
                     .n_ids = n,
                     .echo_text = r.echo ? r.prompt : NULL,
                     .echo_len = r.echo ? r.prompt_len : 0};
        srv_generate(x, &g);
    } else {
        srv_respond_error(x, &e);
    }
    if (ids != r.prompt_ids) free(ids);
    srv_request_free(&r);
}
