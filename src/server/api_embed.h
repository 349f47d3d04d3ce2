/*
 * api_embed.h - the embedding pipeline that /v1/embeddings and ollama's
 * /api/embed and /api/embeddings share (private to src/server; defined in
 * api_embeddings.c): texts checked and tokenized into one buffer, then one
 * scheduler job embeds them all. Each route parses its own body shape and
 * writes its own response shape around these.
 */
#ifndef HEARTH_SERVER_API_EMBED_H
#define HEARTH_SERVER_API_EMBED_H

#include "server.h"

enum { SRV_EMBED_MAX_INPUTS = 2048 }; /* texts per request (OpenAI's limit) */

/* The texts of one request, tokenized. Zero-initialise; free with
 * srv_embed_input_fini (srv_embed_run does it too). */
typedef struct srv_embed_input {
    int32_t *ids; /* all texts' tokens back to back */
    int n_ids, cap_ids;
    int *len; /* [n] text i's tokens */
    int n, cap;
} srv_embed_input;

/* Appends one text: refused (400 naming `field`) when empty or not UTF-8,
 * tokenized, then cut to a slot's context when `truncate`, else refused
 * (400 context_length_exceeded) when longer. */
bool srv_embed_add_text(const srv_model *m, srv_embed_input *in, const char *text, size_t len,
                        bool truncate, const char *field, srv_error *e);
/* Appends one text given as token ids (already checked against the
 * vocabulary), with the same context rule. */
bool srv_embed_add_ids(const srv_model *m, srv_embed_input *in, const int32_t *ids, int n,
                       bool truncate, const char *field, srv_error *e);
void srv_embed_input_fini(srv_embed_input *in);

/* Embeds in's texts (in->n > 0) with the model's (x->model) pooling, L2-normalised when
 * `normalize`, through the scheduler. Empties *in. Returns the finished job
 * (its embd holds [n][n_embd]; release it with srv_job_release), or NULL
 * when x has been answered already (an error: out of memory, a full queue,
 * the client gone, a failed or timed-out embedding). */
srv_job *srv_embed_run(srv_exchange *x, srv_embed_input *in, bool normalize);
/* The same for a reranker's pairs (hearth_tokenize_rerank): the job's embd
 * holds one score a pair ([n]). */
srv_job *srv_rank_run(srv_exchange *x, srv_embed_input *in);

#endif
