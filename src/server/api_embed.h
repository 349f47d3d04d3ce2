/*
 * api_embed.h - the embedding pipeline that /v1/embeddings and ollama's
 * /api/embed and /api/embeddings share (private to src/server; defined in
 * api_embeddings.c): texts checked and tokenized into one buffer, then one
 * scheduler job embeds them all. Each route parses its own body shape and
 * writes its own response shape around these. A model a remote tier
 * declares goes to that tier instead (api_remote_embed.c).
 */
#ifndef HEARTH_SERVER_API_EMBED_H
#define HEARTH_SERVER_API_EMBED_H

#include "server.h"

#include <cjson/cJSON.h>

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

/* ---- remote tiers (api_remote_embed.c; the gateway's embed.c) ---------------- */

/* The remote tier that serves model for kind (it declares the name and no
 * local model has it: a local model of that name wins), or -1. */
int srv_remote_tier(srv_exchange *x, gw_embed_kind kind, const char *model);
/* A text for a remote tier: a non-empty string of valid UTF-8 (400 naming
 * field otherwise); *text points into item. */
bool srv_remote_text(const cJSON *item, const char *field, const char **text, srv_error *e);
/* Runs r (its key: the client's) through the gateway. True with *out
 * holding the answer for the route to write (then srv_remote_respond);
 * false when x has been answered: a refusal or a failure as the client's
 * API writes errors, with the x-hearth-* headers. */
bool srv_remote_run(srv_exchange *x, const gw_embed_request *r, gw_embed_response *out);
/* Sends json (the route's answer; NULL: a 500) with the x-hearth-route and
 * x-hearth-reason headers, and frees out. */
void srv_remote_respond(srv_exchange *x, char *json, gw_embed_response *out);

#endif
