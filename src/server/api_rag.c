/*
 * api_rag.c - retrieval in `hearth serve --rag DB` (docs/rag.md):
 *
 *   POST /v1/hearth/rag/search {"query", "k", "mode"}: the best chunks;
 *   "rag": true | {"k", "mode"} in a /v1/chat/completions body: once the
 *   chat request is parsed (request.c keeps the member, api_chat.c calls
 *   srv_rag_augment), its last user message gets the best chunks for its
 *   text as numbered context before it, then the request goes on as any
 *   chat request; the body is parsed once.
 *
 * The index is opened read-only at start and shared under rag_mu (a handle
 * serves one thread at a time); it reloads the vectors when `hearth rag
 * index` has written since. Query vectors come from the server's model
 * through the scheduler's embedding jobs, and only when the index's vectors
 * are that model's. Retrieved text is the deployment's own documents: unless
 * --rag-allow-cloud, a request that used it is answered by the local tier.
 *
 * With --rag-rerank MODEL_ID a second stage follows (the CLI's --rerank):
 * the first stage's rag_rerank_depth best candidates are scored against the
 * question by that served reranker, as one job on its own slots (the job
 * path of /v1/rerank, so its requests and these share the batching), and
 * the k best are kept in its order. "rerank": false|true in the search body
 * or the "rag" object turns it off or (when configured) on per request.
 * The reranker is the operator's part of retrieval: an API key's model list
 * does not apply to it.
 */
#include "api_embed.h"
#include "core/core.h"
#include "model/gguf.h"
#include "rag/rag.h"
#include "server.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

enum { RAG_K_DEFAULT = 5 };

/* What a request asks of retrieval. */
typedef struct rag_knobs {
    int k;
    rag_mode mode;
    bool rerank;
} rag_knobs;

/* What the second stage did, for the response. */
typedef struct rerank_note {
    bool done;
    int candidates, truncated; /* pairs scored, and of those cut to fit the reranker */
} rerank_note;

/* The reranker of --rag-rerank (srv_rag_start checked it), or NULL. */
static srv_model *reranker(srv_server *s) {
    return s->cfg.rag_rerank ? srv_model_find(s, s->cfg.rag_rerank) : NULL;
}

/* Whether the GGUF file at path is a reranker, from its header (its
 * <arch>.pooling_type is 4, rank): a model that is not loaded yet can be
 * checked at start-up. */
static hearth_err file_ranks(const char *path, bool *ranks) {
    gguf_file *f = NULL;
    const hearth_err err = gguf_open(path, &f);
    if (err) return err;
    gguf_str arch;
    uint32_t pooling = 0;
    if (gguf_get_str(f, "general.architecture", &arch) && arch.len < 128) {
        char key[160];
        snprintf(key, sizeof key, "%.*s.pooling_type", (int)arch.len, arch.ptr);
        (void)gguf_get_u32(f, key, &pooling); /* absent: none */
    }
    gguf_close(f);
    *ranks = pooling == 4;
    return HEARTH_OK;
}

hearth_err srv_rag_start(srv_server *s) {
    const srv_config *c = &s->cfg;
    if (!c->rag_rerank)
        return c->rag_rerank_depth > 0
                   ? hr_fail(HEARTH_ERR_INVALID_ARG, "--rag-rerank-depth needs --rag-rerank")
                   : HEARTH_OK;
    if (!s->rag)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "--rag-rerank needs --rag DB (an index from hearth rag index)");
    srv_model *m = reranker(s);
    if (!m) {
        char names[512] = "";
        size_t n = 0;
        for (int i = 0; i < s->n_models && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                                  s->models[i]->id);
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "--rag-rerank %s: no served model has that name (served: %s); serve the "
                       "reranker too (-m FILE, --models-file) and name it",
                       c->rag_rerank, names);
    }
    bool ranks;
    const hearth_err err = file_ranks(m->path, &ranks);
    if (err) return hr_wrap(err, "--rag-rerank %s: ", c->rag_rerank);
    if (!ranks)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "--rag-rerank %s: %s is not a reranker (its file has no pooling_type "
                       "rank); name a served reranker such as bge-reranker or Qwen3-Reranker",
                       c->rag_rerank, m->path);
    m->load_on_startup = true; /* every retrieval needs it */
    char depth[32] = "max(4k, 20) (at most 100)";
    if (c->rag_rerank_depth > 0) snprintf(depth, sizeof depth, "%d", c->rag_rerank_depth);
    srv_say(s, "rag: reranking with %s: the best k of the first %s candidates", m->id, depth);
    return HEARTH_OK;
}

/* k, mode and rerank from an object (the search body, or the chat body's "rag"). */
static bool parse_knobs(const srv_server *s, const cJSON *o, const char *prefix, rag_knobs *kn,
                        srv_error *e) {
    char field[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "k");
    *kn =
        (rag_knobs){.k = RAG_K_DEFAULT, .mode = RAG_MODE_AUTO, .rerank = s->cfg.rag_rerank != NULL};
    if (v) {
        snprintf(field, sizeof field, "%sk", prefix);
        if (!cJSON_IsNumber(v) || v->valuedouble != (int)v->valuedouble || v->valuedouble < 1 ||
            v->valuedouble > 100)
            return srv_fail(e, 400, field, NULL, "'%s' must be an integer in 1..100", field);
        kn->k = (int)v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "mode"))) {
        snprintf(field, sizeof field, "%smode", prefix);
        if (!cJSON_IsString(v) || !rag_mode_parse(v->valuestring, &kn->mode))
            return srv_fail(e, 400, field, NULL, "'%s' must be one of auto, bm25, vector, hybrid",
                            field);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "rerank"))) {
        snprintf(field, sizeof field, "%srerank", prefix);
        if (!cJSON_IsBool(v)) return srv_fail(e, 400, field, NULL, "'%s' must be a boolean", field);
        if (cJSON_IsTrue(v) && !s->cfg.rag_rerank)
            return srv_fail(e, 400, field, "rerank_disabled",
                            "reranking is off: start the server with --rag-rerank MODEL_ID (a "
                            "served reranker)");
        kn->rerank = cJSON_IsTrue(v);
    }
    return true;
}

/* The query's embedding by the request's model (x->model) when the index's
 * vectors are that model's; NULL otherwise, or when x was answered (an
 * error: *failed). */
static float *query_vector(srv_exchange *x, const char *text, size_t len, bool *failed) {
    srv_server *s = x->srv;
    const srv_model *m = x->model;
    *failed = false;
    rag_info in;
    pthread_mutex_lock(&s->rag_mu);
    const hearth_err err = rag_info_get(s->rag, &in);
    pthread_mutex_unlock(&s->rag_mu);
    if (err || !in.n_vectors || strcmp(in.model, m->rag_model_id)) return NULL;
    srv_embed_input input = {0};
    srv_error e;
    if (!srv_embed_add_text(m, &input, text, len, true, "query", &e)) {
        srv_embed_input_fini(&input);
        srv_respond_error(x, &e);
        *failed = true;
        return NULL;
    }
    srv_job *j = srv_embed_run(x, &input, true);
    if (!j) {
        *failed = true;
        return NULL;
    }
    const int d = hearth_model_n_embd(m->model);
    float *v = malloc((size_t)d * sizeof *v);
    if (v) memcpy(v, j->embd, (size_t)d * sizeof *v);
    srv_job_release(j);
    return v;
}

/* The pairs (text, candidate) for the reranker rr into in, each cut to fit
 * its slots' context as the CLI cuts them (rag_rerank_pair); *n_cut counts
 * the cut ones. `field` names the question in errors. */
static bool add_pairs(const srv_model *rr, const char *text, size_t len, const rag_hits *h,
                      const char *field, srv_embed_input *in, int *n_cut, srv_error *e) {
    const size_t cap = (size_t)srv_sched_n_ctx(rr->sched);
    int32_t *ids = malloc(cap * sizeof *ids);
    bool ok = ids || srv_fail(e, 500, NULL, "out_of_memory", "out of memory");
    for (size_t i = 0; ok && i < h->n; i++) {
        size_t n = 0;
        bool cut;
        const hearth_err err =
            rag_rerank_pair(rr->model, text, len, h->hit[i].text, ids, cap, &n, &cut);
        if (err == HEARTH_ERR_INVALID_ARG)
            ok = srv_fail(e, 400, field, "context_length_exceeded",
                          "%s (%s's slots); shorten the question, or ask without reranking (%s)",
                          hearth_last_error(), rr->id,
                          strcmp(field, "query") ? "\"rag\": {\"rerank\": false}"
                                                 : "\"rerank\": false");
        else if (err)
            ok = srv_fail(e, 500, NULL, NULL, "reranking: %s", hearth_last_error());
        else
            ok = srv_embed_add_ids(rr, in, ids, (int)n, false, field, e);
        *n_cut += cut;
    }
    free(ids);
    return ok;
}

/* The second stage: h's candidates scored against text by the reranker, as
 * one job on its slots, and the k best kept in its order. False when x was
 * answered (an error; h is then freed). */
static bool rerank(srv_exchange *x, const char *text, size_t len, int k, const char *field,
                   rag_hits *h, rerank_note *note) {
    note->done = true;
    note->candidates = (int)h->n;
    if (h->n == 0) return true;
    srv_server *s = x->srv;
    srv_model *rr = reranker(s);
    srv_error e;
    srv_embed_input in = {0};
    srv_job *j = NULL;
    bool ok = false;
    /* Without room for the reranker beside the request's model (--models-max),
     * the request lets its model go for the reranking and takes it back after:
     * holding it, it would wait on itself. */
    srv_model *own = x->model;
    const bool lent = own && own != rr && srv_model_needs_room(rr);
    if (lent) srv_model_release(own, SRV_KEEP_ALIVE_NONE);
    const bool held = srv_model_acquire(rr, !s->cfg.no_autoload, &e);
    if (held && add_pairs(rr, text, len, h, field, &in, &note->truncated, &e)) {
        const int prompt_tokens = x->prompt_tokens;
        x->model = rr; /* the job runs on the reranker's scheduler */
        j = srv_rank_run(x, &in);
        x->model = own;
        x->prompt_tokens = prompt_tokens + (j ? j->n_prompt : 0);
        ok = j && rag_rerank(h, j->embd, (size_t)k) == HEARTH_OK;
        if (j && !ok) {
            srv_fail(&e, 500, NULL, "out_of_memory", "out of memory");
            srv_respond_error(x, &e);
        }
    } else {
        srv_embed_input_fini(&in);
        srv_respond_error(x, &e);
    }
    srv_job_release(j);
    if (held) srv_model_release(rr, SRV_KEEP_ALIVE_NONE);
    if (lent && !srv_model_acquire(own, !s->cfg.no_autoload, &e)) {
        x->model = NULL; /* not held: the request's end must not release it */
        if (ok) srv_respond_error(x, &e);
        ok = false;
    }
    if (!ok) rag_hits_free(h);
    return ok;
}

/* The hits for text (the second stage included when kn asks); false when x
 * was answered (an error). */
static bool retrieve(srv_exchange *x, const char *text, size_t len, const rag_knobs *kn,
                     const char *field, rag_hits *h, rerank_note *note) {
    srv_server *s = x->srv;
    *note = (rerank_note){0};
    bool failed;
    float *v = kn->mode == RAG_MODE_BM25 ? NULL : query_vector(x, text, len, &failed);
    if (kn->mode != RAG_MODE_BM25 && failed) return false;
    const rag_query q = {.text = text,
                         .len = len,
                         .vector = v,
                         .model = v ? x->model->rag_model_id : NULL,
                         .k = kn->rerank ? rag_rerank_depth(kn->k, s->cfg.rag_rerank_depth) : kn->k,
                         .mode = kn->mode};
    pthread_mutex_lock(&s->rag_mu);
    const hearth_err err = rag_search(s->rag, &q, h);
    pthread_mutex_unlock(&s->rag_mu);
    free(v);
    if (err) {
        srv_error e;
        srv_fail(&e, err == HEARTH_ERR_INVALID_ARG ? 400 : 500, "query",
                 err == HEARTH_ERR_INVALID_ARG ? NULL : "rag_error", "%s", hearth_last_error());
        srv_respond_error(x, &e);
        return false;
    }
    return !kn->rerank || rerank(x, text, len, kn->k, field, h, note);
}

static bool no_index(srv_exchange *x) {
    if (x->srv->rag) return false;
    srv_error e;
    srv_fail(&e, 400, "rag", "rag_disabled",
             "retrieval is off: start the server with --rag DB (an index from hearth rag index)");
    srv_respond_error(x, &e);
    return true;
}

/* The search response; NULL when out of memory. */
static char *hits_json(srv_server *s, const rag_hits *h, const rerank_note *note) {
    cJSON *out = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(out, "data");
    cJSON_AddStringToObject(out, "object", "list");
    cJSON_AddStringToObject(out, "mode", rag_mode_name(h->mode));
    cJSON_AddBoolToObject(out, "reranked", note->done);
    if (note->done) {
        cJSON_AddStringToObject(out, "reranker", reranker(s)->id);
        cJSON_AddNumberToObject(out, "candidates", note->candidates);
        cJSON_AddNumberToObject(out, "truncated", note->truncated);
    }
    for (size_t i = 0; i < h->n; i++)
        cJSON_AddItemToArray(data, rag_hit_json(&h->hit[i], (int)i + 1));
    char *json = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return json;
}

void srv_handle_rag_search(srv_exchange *x) {
    if (no_index(x)) return;
    srv_error e;
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(root, "query");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model"); /* whose vectors */
    rag_knobs kn;
    rag_hits h;
    rerank_note note;
    bool answered = false;
    if (!cJSON_IsObject(root))
        srv_fail(&e, 400, NULL, NULL, "the body must be a JSON object");
    else if (model && !cJSON_IsString(model) && !cJSON_IsNull(model))
        srv_fail(&e, 400, "model", NULL, "'model' must be a string");
    else if (!srv_model_take(x, cJSON_IsString(model) ? model->valuestring : NULL, &e))
        ; /* e says why */
    else if (!cJSON_IsString(query) || !*query->valuestring)
        srv_fail(&e, 400, "query", NULL, "'query' must be a non-empty string");
    else if (parse_knobs(x->srv, root, "", &kn, &e)) {
        answered =
            !retrieve(x, query->valuestring, strlen(query->valuestring), &kn, "query", &h, &note);
        if (!answered) {
            char *json = hits_json(x->srv, &h, &note);
            rag_hits_free(&h);
            answered = json != NULL;
            if (json)
                srv_respond_json(x, 200, json);
            else
                srv_fail(&e, 500, NULL, "out_of_memory", "out of memory");
        }
    }
    cJSON_Delete(root);
    if (!answered) srv_respond_error(x, &e);
}

/* The last user message of a chat request (NULL: none). */
static srv_message *last_user(srv_request *r) {
    srv_message *last = NULL;
    for (int i = 0; i < r->n_messages; i++)
        if (r->messages[i].role == TOK_CHAT_USER) last = &r->messages[i];
    return last;
}

/* The checks before retrieval; false with e filled. */
static bool rag_request_ok(const srv_exchange *x, const cJSON *opt, const srv_message *user,
                           rag_knobs *kn, srv_error *e) {
    if (!cJSON_IsTrue(opt) && !cJSON_IsObject(opt))
        return srv_fail(e, 400, "rag", NULL,
                        "'rag' must be a boolean or an object {\"k\", \"mode\", \"rerank\"}");
    if (!parse_knobs(x->srv, cJSON_IsObject(opt) ? opt : NULL, "rag.", kn, e)) return false;
    if (!user || !user->content_len)
        return srv_fail(e, 400, "messages", NULL,
                        "'rag' needs a last user message whose content is a non-empty string");
    if (!x->srv->cfg.rag_allow_cloud && x->tier_header[0] && strcmp(x->tier_header, "local"))
        return srv_fail(e, 403, "rag", "rag_local_only",
                        "retrieved documents stay on this server: a 'rag' request is answered "
                        "locally (the operator can allow escalation with --rag-allow-cloud)");
    return true;
}

bool srv_rag_augment(srv_exchange *x, srv_request *r) {
    const cJSON *opt = r->rag;
    if (!opt) return true; /* not asked ("rag": false is not kept by the parser) */
    if (no_index(x)) return false;
    srv_error e;
    rag_knobs kn;
    srv_message *user = last_user(r);
    if (!rag_request_ok(x, opt, user, &kn, &e)) {
        srv_respond_error(x, &e);
        return false;
    }
    rag_hits h;
    rerank_note note;
    if (!retrieve(x, user->content, user->content_len, &kn, "messages", &h, &note)) return false;
    char *text = rag_user_message(&h, user->content);
    /* documents are the deployment's files: ill-formed UTF-8 in them is
     * replaced, as every message the server takes is valid UTF-8 */
    const size_t n = text ? strlen(text) : 0;
    char *clean = text && n < SIZE_MAX / 3 ? malloc(3 * n + 1) : NULL;
    if (clean) {
        free(user->content);
        user->content_len = srv_utf8_clean(text, n, clean);
        user->content = clean;
    }
    snprintf(x->rag_note, sizeof x->rag_note, "%zu passage%s, %s%s", h.n, h.n == 1 ? "" : "s",
             rag_mode_name(h.mode), note.done ? ", reranked" : "");
    if (!x->srv->cfg.rag_allow_cloud) snprintf(x->tier_header, sizeof x->tier_header, "local");
    free(text);
    rag_hits_free(&h);
    if (!clean) {
        srv_fail(&e, 500, NULL, "out_of_memory", "out of memory building the context");
        srv_respond_error(x, &e);
        return false;
    }
    return true;
}
