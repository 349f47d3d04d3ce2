/*
 * server.c - start-up and shut-down of `hearth serve`. The HTTP daemon
 * starts first so /health can say "loading"; a loader thread then maps the
 * model, chooses the chat template (--chat-template, else the GGUF's
 * tokenizer.chat_template, else ChatML with a warning), works out what
 * ollama's model routes describe (once: clients poll them), opens the slots
 * and flips the state to ready. A template Hearth does not recognize is a
 * warning at start-up and a clear 500 on /v1/chat/completions; completions
 * still work.
 */
#include "api_ollama_models.h"

#include "core/core.h"
#include "engine/chat.h"
#include "rag/rag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

srv_config srv_default_config(void) {
    return (srv_config){.host = "127.0.0.1",
                        .port = 8080,
                        .n_parallel = 1,
                        .n_ctx = 0,
                        .n_threads = 0,
                        .queue_max = -1,
                        .timeout_s = 600,
                        .max_body_bytes = 8u << 20,
                        .log = stderr};
}

void srv_say(srv_server *s, const char *fmt, ...) {
    if (!s->cfg.log) return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&s->log_mu);
    fputs("hearth serve: ", s->cfg.log);
    vfprintf(s->cfg.log, fmt, ap);
    fputc('\n', s->cfg.log);
    fflush(s->cfg.log);
    pthread_mutex_unlock(&s->log_mu);
    va_end(ap);
}

/* The chat template (engine/chat.c). An override that does not work stops
 * the start-up; a model template Hearth cannot render only disables
 * /v1/chat/completions, since completions and embeddings still work. */
static hearth_err choose_template(srv_server *s) {
    eng_chat_source src = 0;
    hearth_err err = eng_chat_choose(s->model, s->cfg.chat_template, &s->tmpl, &src);
    if (err && (s->cfg.chat_template || err != HEARTH_ERR_UNSUPPORTED))
        return hr_wrap(err, "--chat-template: ");
    if (err) {
        snprintf(s->template_error, sizeof s->template_error,
                 "this model's chat template is not supported: %s", hearth_last_error());
        srv_say(s,
                "warning: %s; /v1/chat/completions will fail until the server is started with "
                "--chat-template",
                s->template_error);
        return HEARTH_OK;
    }
    s->have_template = true;
    if (src == ENG_CHAT_FALLBACK)
        srv_say(s,
                "warning: the model has no tokenizer.chat_template; chat requests use ChatML "
                "(choose another with --chat-template %s)",
                tok_chat_names());
    else if (src == ENG_CHAT_MODEL)
        srv_say(s, "chat template: %s (recognized in the model's tokenizer.chat_template)%s",
                s->tmpl.name, s->tmpl.default_system[0] ? ", with its default system prompt" : "");
    else
        srv_say(s, "chat template: %s (--chat-template %s)", s->tmpl.name, s->cfg.chat_template);
    return HEARTH_OK;
}

/* The table of the tokens' bytes that JSON mode and schemas read is built
 * by the model's first constrained sampler (tens of ms on a large
 * vocabulary) and kept with the model: build it here, so that the first
 * JSON request does not stall every slot of the scheduler meanwhile. */
static void prepare_constraints(srv_server *s) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
    hearth_sampler *smp = NULL;
    if (hearth_sampler_new(s->model, &sp, &smp) != HEARTH_OK)
        srv_say(s, "warning: JSON mode is unavailable with this vocabulary: %s",
                hearth_last_error());
    hearth_sampler_free(smp);
}

/* Says what the index holds, and whether its vectors are this model's (the
 * only ones a query can be compared with). */
static hearth_err open_rag(srv_server *s) {
    rag_info in;
    hearth_err err = rag_model_id(s->cfg.model_path, hearth_model_n_embd(s->model),
                                  hearth_pooling_name(s->pooling), s->rag_model_id);
    if (!err) err = rag_info_get(s->rag, &in);
    if (err) return err;
    srv_say(s, "rag: %s: %lld documents, %lld chunks; %s", s->cfg.rag_path, (long long)in.n_docs,
            (long long)in.n_chunks,
            !in.n_vectors                        ? "no vectors: BM25 search"
            : !strcmp(in.model, s->rag_model_id) ? "vectors of this model: hybrid search"
                                                 : "vectors of another model: BM25 search only");
    return HEARTH_OK;
}

/* --model-draft: the draft model, checked against the model (threads as
 * the model's, none of its adapters). */
static hearth_err open_draft(srv_server *s, const hearth_model_params *mp) {
    if (s->cfg.spec_n_max <= 0) return HEARTH_OK;
    if (!s->cfg.model_draft) {
        if (s->cfg.spec_ngram_n > 0)
            srv_say(s, "speculative decoding: prompt lookup of %d tokens, up to %d tokens a step",
                    s->cfg.spec_ngram_n, s->cfg.spec_n_max);
        return HEARTH_OK;
    }
    hearth_model_params dp = *mp;
    dp.loras = NULL;
    dp.n_loras = 0;
    hearth_err err = hearth_model_load(s->cfg.model_draft, &dp, &s->draft);
    if (!err) err = hearth_draft_check(s->model, s->draft);
    if (err) return hr_wrap(err, "--model-draft %s: ", s->cfg.model_draft);
    srv_say(s, "speculative decoding: draft %s, up to %d tokens a step", s->cfg.model_draft,
            s->cfg.spec_n_max);
    return HEARTH_OK;
}

static void *loader_main(void *arg) {
    srv_server *s = arg;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = s->cfg.n_threads;
    mp.loras = s->cfg.loras;
    mp.n_loras = s->cfg.n_loras;
    hearth_err err = hearth_model_load(s->cfg.model_path, &mp, &s->model);
    size_t n_probe = 0;
    if (!err && hearth_tokenize(s->model, "a", 1, false, false, NULL, 0, &n_probe) ==
                    HEARTH_ERR_UNSUPPORTED)
        err = HEARTH_ERR_UNSUPPORTED; /* no vocabulary: the server cannot take text */
    if (!err) err = choose_template(s);
    if (!err && !s->cfg.pooling) s->pooling = hearth_model_pooling(s->model);
    if (!err) prepare_constraints(s);
    if (!err) {
        s->bos_text = eng_token_text(s->model, hearth_token_bos(s->model));
        s->eos_text = eng_token_text(s->model, hearth_token_eos(s->model));
        if (!s->bos_text || !s->eos_text) err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    }
    if (!err) err = srv_model_info_new(s->cfg.model_path, s->model, &s->ollama_info);
    if (!err && s->rag) err = open_rag(s);
    if (!err) err = open_draft(s, &mp);
    const srv_spec spec = {.draft = s->draft,
                           .n_max = s->cfg.spec_n_max,
                           .ngram_n = s->draft ? 0 : s->cfg.spec_ngram_n,
                           .p_min = s->cfg.spec_p_min};
    const int queue_max = s->cfg.queue_max >= 0 ? s->cfg.queue_max : 4 * s->cfg.n_parallel;
    if (!err)
        err = srv_sched_new(s->model, s->cfg.n_parallel, s->cfg.n_ctx, queue_max, &spec,
                            &s->metrics, &s->sched);
    if (err) {
        s->load_err = err;
        srv_say(s, "error: %s", hearth_last_error());
        atomic_store(&s->state, SRV_FAILED);
        return NULL;
    }
    s->created = (int64_t)time(NULL);
    srv_say(s, "model %s (%s) ready: %d slot%s of %d tokens, queue of %d", s->model_id,
            hearth_model_arch(s->model), s->cfg.n_parallel, s->cfg.n_parallel == 1 ? "" : "s",
            srv_sched_n_ctx(s->sched), queue_max);
    atomic_store(&s->state, SRV_READY);
    return NULL;
}

hearth_err srv_start(const srv_config *cfg, srv_server **out) {
    if (!cfg->model_path) return hr_fail(HEARTH_ERR_INVALID_ARG, "server: no model given");
    hearth_pooling pooling = HEARTH_POOL_MEAN;
    if (cfg->pooling && !hearth_pooling_parse(cfg->pooling, &pooling))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --pooling must be mean, cls or last");
    if (cfg->n_parallel < 1 || cfg->n_parallel > 256)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --parallel must be in 1..256");
    if (cfg->port < 0 || cfg->port > 65535)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --port must be in 0..65535");
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    s->cfg = *cfg;
    s->pooling = pooling; /* the model's own once it is loaded, unless given */
    if (!s->cfg.host) s->cfg.host = "127.0.0.1";
    pthread_mutex_init(&s->log_mu, NULL);
    srv_metrics_init(&s->metrics);
    atomic_init(&s->state, SRV_LOADING);
    const char *base = strrchr(cfg->model_path, '/');
    snprintf(s->model_id, sizeof s->model_id, "%s", base ? base + 1 : cfg->model_path);
    s->created = (int64_t)time(NULL);
    atomic_init(&s->gw_workers, 0);
    pthread_mutex_init(&s->rag_mu, NULL);
    hearth_err err = srv_gateway_start(s);
    if (!err && cfg->rag_path) err = rag_open(cfg->rag_path, false, &s->rag);
    if (!err) err = srv_drift_watch_start(s);
    if (!err) err = srv_http_start(s);
    if (!err && pthread_create(&s->loader, NULL, loader_main, s) != 0)
        err = hr_fail(HEARTH_ERR_NOMEM, "server: cannot start the loader thread");
    if (err) {
        srv_http_stop(s);
        srv_drift_watch_stop(s);
        srv_gateway_stop(s);
        rag_close(s->rag);
        pthread_mutex_destroy(&s->rag_mu);
        srv_metrics_fini(&s->metrics);
        pthread_mutex_destroy(&s->log_mu);
        free(s);
        return err;
    }
    s->loader_started = true;
    *out = s;
    return HEARTH_OK;
}

int srv_port(const srv_server *s) { return s->port; }

int srv_state_get(const srv_server *s) { return atomic_load(&s->state); }

void srv_stop(srv_server *s) {
    if (!s) return;
    if (s->loader_started) pthread_join(s->loader, NULL);
    /* Wake every waiting handler first, so the connection threads the
     * daemon joins can finish; free the slots only after. */
    srv_sched_shutdown(s->sched);
    srv_gateway_quiesce(s); /* cascade streams end too */
    srv_http_stop(s);
    srv_drift_watch_stop(s);
    srv_gateway_stop(s); /* after the daemon: its last requests write ledger rows */
    srv_sched_free(s->sched);
    srv_model_info_free(s->ollama_info);
    rag_close(s->rag);
    pthread_mutex_destroy(&s->rag_mu);
    hearth_model_free(s->model);
    hearth_model_free(s->draft);
    free(s->bos_text);
    free(s->eos_text);
    srv_metrics_fini(&s->metrics);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}
