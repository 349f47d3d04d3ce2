/*
 * models.c - the models `hearth serve` answers with, as ollama and
 * llama-server's router mode serve them: every -m file and every *.gguf of
 * --models-dir is registered at start-up under its file name (only its
 * header is read); the default model (the first -m) is loaded by the loader
 * thread, the others when a request names them. At most --models-max are
 * loaded at once: loading one more unloads the least recently used model
 * that no request holds, and waits while every loaded model is in use. A
 * model idle for --keep-alive (or a request's ollama keep_alive) is
 * unloaded by the reaper thread.
 *
 * Every request that uses a model holds a reference on it (srv_model_use,
 * released when libmicrohttpd reports the request complete; streams and
 * the gateway's workers take their own), so a model is never unloaded under
 * a request. Loading happens outside models_mu in the thread that needs the
 * model; others that need it wait on models_cv.
 */
#include "api_ollama_models.h"

#include "core/core.h"
#include "engine/chat.h"
#include "rag/rag.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- loading ---------------------------------------------------------------- */

/* The chat template (engine/chat.c). An override that does not work stops
 * the load; a model template Hearth cannot render only disables chat
 * requests, since completions and embeddings still work. */
static hearth_err choose_template(srv_server *s, srv_model *m) {
    eng_chat_source src = 0;
    hearth_err err = eng_chat_choose(m->model, m->chat_template, &m->tmpl, &src);
    if (err && (m->chat_template || err != HEARTH_ERR_UNSUPPORTED))
        return hr_wrap(err, "chat template %s: ", m->chat_template);
    if (err) {
        snprintf(m->template_error, sizeof m->template_error,
                 "the chat template of %s is not supported: %s", m->id, hearth_last_error());
        srv_say(s,
                "warning: %s; its chat requests will fail until the server is started with "
                "--chat-template",
                m->template_error);
        return HEARTH_OK;
    }
    m->have_template = true;
    if (src == ENG_CHAT_FALLBACK)
        srv_say(s,
                "warning: %s has no tokenizer.chat_template; chat requests use ChatML "
                "(choose another with --chat-template %s)",
                m->id, tok_chat_names());
    else if (src == ENG_CHAT_MODEL)
        srv_say(s, "chat template: %s (recognized in %s's tokenizer.chat_template)%s", m->tmpl.name,
                m->id, m->tmpl.default_system[0] ? ", with its default system prompt" : "");
    else
        srv_say(s, "chat template: %s for %s (chosen: %s)", m->tmpl.name, m->id, m->chat_template);
    return HEARTH_OK;
}

/* The table of the tokens' bytes that JSON mode and schemas read is built
 * by the model's first constrained sampler (tens of ms on a large
 * vocabulary) and kept with the model: build it here, so that the first
 * JSON request does not stall every slot of the scheduler meanwhile. */
static void prepare_constraints(srv_server *s, srv_model *m) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
    hearth_sampler *smp = NULL;
    if (hearth_sampler_new(m->model, &sp, &smp) != HEARTH_OK)
        srv_say(s, "warning: %s: JSON mode is unavailable with this vocabulary: %s", m->id,
                hearth_last_error());
    hearth_sampler_free(smp);
}

/* Says what the index holds, and whether its vectors are this model's (the
 * only ones a query can be compared with). */
static hearth_err open_rag(srv_server *s, srv_model *m) {
    rag_info in;
    hearth_err err = rag_model_id(m->path, hearth_model_n_embd(m->model),
                                  hearth_pooling_name(m->pooling), m->rag_model_id);
    if (!err) err = rag_info_get(s->rag, &in);
    if (err) return err;
    srv_say(s, "rag: %s: %lld documents, %lld chunks; %s: %s", s->cfg.rag_path,
            (long long)in.n_docs, (long long)in.n_chunks, m->id,
            !in.n_vectors                        ? "no vectors: BM25 search"
            : !strcmp(in.model, m->rag_model_id) ? "vectors of this model: hybrid search"
                                                 : "vectors of another model: BM25 search only");
    return HEARTH_OK;
}

/* The model's draft (-md for the default model, its entry's "draft"),
 * checked against it (threads as the model's, none of its adapters). */
static hearth_err open_draft(srv_server *s, srv_model *m, const hearth_model_params *mp) {
    if (m->spec_n_max <= 0) return HEARTH_OK;
    if (!m->draft_path) {
        if (m->spec_ngram_n > 0)
            srv_say(s, "speculative decoding: prompt lookup of %d tokens, up to %d tokens a step",
                    m->spec_ngram_n, m->spec_n_max);
        return HEARTH_OK;
    }
    hearth_model_params dp = *mp;
    dp.loras = NULL;
    dp.n_loras = 0;
    hearth_err err = hearth_model_load(m->draft_path, &dp, &m->draft);
    if (!err) err = hearth_draft_check(m->model, m->draft);
    if (err)
        return hr_wrap(err, "%s %s: ", m->own_draft_path ? "draft" : "--model-draft",
                       m->draft_path);
    srv_say(s, "speculative decoding: draft %s for %s, up to %d tokens a step", m->draft_path,
            m->id, m->spec_n_max);
    return HEARTH_OK;
}

/* The model's vision projector (--mmproj, its entry's "mmproj"). */
static hearth_err open_vision(srv_server *s, srv_model *m, const hearth_model_params *mp) {
    if (!m->mmproj_path) return HEARTH_OK;
    const hearth_err err = hearth_vision_load(m->mmproj_path, m->model, mp->n_threads, &m->vision);
    if (err) return err; /* the message names the file */
    srv_say(s, "vision: %s for %s, %s projector, %d rows an image", m->mmproj_path, m->id,
            hearth_vision_projector(m->vision), hearth_vision_n_tokens(m->vision));
    return HEARTH_OK;
}

/* What a loaded model holds, freed (its scheduler first: it runs on it). */
static void close_model(srv_model *m) {
    srv_sched_free(m->sched);
    hearth_model_free(m->model);
    hearth_model_free(m->draft);
    hearth_vision_free(m->vision);
    m->vision = NULL;
    free(m->bos_text);
    free(m->eos_text);
    m->sched = NULL;
    m->model = m->draft = NULL;
    m->bos_text = m->eos_text = NULL;
    m->have_template = false;
    memset(&m->tmpl, 0, sizeof m->tmpl);
    m->template_error[0] = '\0';
    m->rag_model_id[0] = '\0';
}

/* Maps the file and opens the slots; on failure nothing is left open. */
static hearth_err open_model(srv_server *s, srv_model *m) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = s->cfg.n_threads;
    mp.loras = m->loras;
    mp.n_loras = m->n_loras;
    if (m->cli_rope) {
        mp.rope_scaling = s->cfg.rope_scaling;
        mp.rope_scale = s->cfg.rope_scale;
        mp.rope_freq_base = s->cfg.rope_freq_base;
        mp.yarn_orig_ctx = s->cfg.yarn_orig_ctx;
    }
    const double t0 = srv_now_ms();
    hearth_err err = hearth_model_load(m->path, &mp, &m->model);
    size_t n_probe = 0;
    if (!err && hearth_tokenize(m->model, "a", 1, false, false, NULL, 0, &n_probe) ==
                    HEARTH_ERR_UNSUPPORTED)
        err = hr_fail(HEARTH_ERR_UNSUPPORTED, "%s has no vocabulary: the server cannot take text",
                      m->id);
    if (!err) err = choose_template(s, m);
    if (!err && (!m->pooling_name || !hearth_pooling_parse(m->pooling_name, &m->pooling)))
        m->pooling = hearth_model_pooling(m->model);
    if (!err) prepare_constraints(s, m);
    if (!err) {
        m->bos_text = eng_token_text(m->model, hearth_token_bos(m->model));
        m->eos_text = eng_token_text(m->model, hearth_token_eos(m->model));
        if (!m->bos_text || !m->eos_text) err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    }
    if (!err && s->rag) err = open_rag(s, m);
    if (!err) err = open_draft(s, m, &mp);
    if (!err) err = open_vision(s, m, &mp);
    const srv_spec spec = {.draft = m->draft,
                           .n_max = m->spec_n_max,
                           .ngram_n = m->draft ? 0 : m->spec_ngram_n,
                           .p_min = m->spec_p_min};
    const int queue_max = s->cfg.queue_max >= 0 ? s->cfg.queue_max : 4 * m->n_parallel;
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = m->n_ctx;
    sp.kv_type = m->kv_type;
    sp.swa_full = m->swa_full;
    if (!err)
        err = srv_sched_new(m->model, m->n_parallel, &sp, queue_max, &spec, &s->metrics, &m->sched);
    if (err) {
        close_model(m);
        return err;
    }
    srv_say(s,
            "model %s (%s) loaded in %.0f ms: %d slot%s of %d tokens (%s KV cache, %.1f MiB%s), "
            "queue of %d",
            m->id, hearth_model_arch(m->model), srv_now_ms() - t0, m->n_parallel,
            m->n_parallel == 1 ? "" : "s", srv_sched_n_ctx(m->sched),
            m->kv_type == HEARTH_KV_Q8_0  ? "q8_0"
            : m->kv_type == HEARTH_KV_F16 ? "f16"
                                          : "f32",
            (double)srv_sched_kv_bytes(m->sched) / 1048576.0, m->swa_full ? ", --swa-full" : "",
            queue_max);
    return HEARTH_OK;
}

/* ---- registration ------------------------------------------------------------ */

hearth_err srv_model_register(srv_server *s, const char *path, const char *name, bool is_default,
                              srv_model **out) {
    const char *base = strrchr(path, '/');
    base = name ? name : base ? base + 1 : path;
    char stem[256]; /* "x" is a name of "x.gguf" too */
    const size_t n = strlen(base);
    snprintf(stem, sizeof stem, "%.*s", (int)(n > 5 && !strcmp(base + n - 5, ".gguf") ? n - 5 : n),
             base);
    const srv_model *same = srv_model_find(s, base);
    if (!same) same = srv_model_find(s, stem);
    if (same)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "two models are named %s (%s and %s): names and aliases must differ", base,
                       same->path, path);
    srv_model **grown = realloc(s->models, (size_t)(s->n_models + 1) * sizeof *grown);
    if (!grown) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    s->models = grown;
    srv_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    }
    m->srv = s;
    snprintf(m->id, sizeof m->id, "%s", base);
    m->is_default = is_default;
    m->created = (int64_t)time(NULL);
    m->pooling = HEARTH_POOL_MEAN;
    m->n_ctx = s->cfg.n_ctx;
    m->n_parallel = s->cfg.n_parallel;
    m->kv_type = s->cfg.kv_type;
    m->swa_full = s->cfg.swa_full;
    m->chat_template = s->cfg.chat_template;
    m->pooling_name = s->cfg.pooling;
    m->keep_alive_default = s->cfg.keep_alive_ms;
    if (is_default) { /* the command line's draft and adapters are the default model's */
        m->draft_path = s->cfg.model_draft;
        m->mmproj_path = s->cfg.mmproj;
        m->spec_n_max = s->cfg.spec_n_max;
        m->spec_ngram_n = s->cfg.spec_ngram_n;
        m->spec_p_min = s->cfg.spec_p_min;
        m->loras = s->cfg.loras;
        m->n_loras = s->cfg.n_loras;
        m->cli_rope = true;
    }
    s->models[s->n_models++] = m;
    if (out) *out = m;
    hearth_err err = srv_model_info_new(path, &m->ollama_info);
    if (err) return hr_wrap(err, "%s: ", path);
    return HEARTH_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory's *.gguf files (not hidden, regular), sorted by name; a
 * file that is not a model is skipped with a warning. */
static hearth_err scan_dir(srv_server *s, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return hr_fail(HEARTH_ERR_IO, "--models-dir %s: %s", dir, hr_strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    hearth_err err = HEARTH_OK;
    for (struct dirent *e; !err && (e = readdir(d));) {
        const size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".gguf")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, cap * sizeof *grown);
            if (!grown) {
                err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
                break;
            }
            names = grown;
        }
        const size_t size = strlen(dir) + len + 2;
        if (!(names[n] = malloc(size)))
            err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
        else
            snprintf(names[n++], size, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (!err && stat(names[i], &st) == 0 && S_ISREG(st.st_mode) &&
            !srv_model_find(s, strrchr(names[i], '/') + 1)) {
            const hearth_err e = srv_model_register(s, names[i], NULL, false, NULL);
            if (e == HEARTH_ERR_NOMEM) err = e;
            if (e && !err) { /* not a model: leave it out */
                srv_say(s, "warning: --models-dir: skipping %s", hearth_last_error());
                srv_model *bad = s->models[--s->n_models];
                srv_model_info_free(bad->ollama_info);
                free(bad->path);
                free(bad);
            }
        }
        free(names[i]);
    }
    free(names);
    return err;
}

static void *reaper_main(void *arg);

hearth_err srv_models_init(srv_server *s) {
    pthread_mutex_init(&s->models_mu, NULL);
    pthread_cond_init(&s->models_cv, NULL);
    hearth_err err = HEARTH_OK;
    if (s->cfg.model_path) err = srv_model_register(s, s->cfg.model_path, NULL, true, NULL);
    for (int i = 0; !err && i < s->cfg.n_more_models; i++)
        err = srv_model_register(s, s->cfg.more_models[i], NULL, false, NULL);
    if (!err && s->cfg.models_file) err = srv_models_file(s, s->cfg.models_file);
    if (!err && s->cfg.models_dir) err = scan_dir(s, s->cfg.models_dir);
    if (!err && s->n_models == 0)
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "server: no model given (-m FILE or --models-dir)");
    if (err) return err;
    for (int i = 0; i < s->n_models; i++)
        if (s->models[i]->is_default) s->default_model = s->models[i];
    if (!s->default_model && (s->cfg.model_draft || s->cfg.n_loras))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "server: --model-draft and --lora apply to the default model: give it with "
                       "-m (or \"default\": true in --models-file)");
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        return hr_fail(HEARTH_ERR_NOMEM, "server: cannot start a thread");
    s->reaper_started = true;
    if (s->n_models > 1)
        srv_say(s, "%d models; at most %d loaded at once%s", s->n_models, s->cfg.models_max,
                s->cfg.models_max ? "" : " (no limit)");
    return HEARTH_OK;
}

void srv_models_shutdown(srv_server *s) {
    pthread_mutex_lock(&s->models_mu);
    s->models_closing = true;
    for (int i = 0; i < s->n_models; i++)
        if (s->models[i]->state == SRV_MODEL_LOADED) srv_sched_shutdown(s->models[i]->sched);
    pthread_cond_broadcast(&s->models_cv);
    pthread_mutex_unlock(&s->models_mu);
}

void srv_models_free(srv_server *s) {
    srv_models_shutdown(s);
    if (s->reaper_started) pthread_join(s->reaper, NULL);
    for (int i = 0; i < s->n_models; i++) {
        srv_model *m = s->models[i];
        close_model(m);
        srv_model_info_free(m->ollama_info);
        for (int k = 0; k < m->n_own_loras; k++) free((char *)m->own_loras[k].path);
        free(m->own_loras);
        free(m->own_draft_path);
        free(m->own_mmproj_path);
        free(m->path);
        free(m);
    }
    free(s->models);
    cJSON_Delete(s->models_doc);
    pthread_cond_destroy(&s->models_cv);
    pthread_mutex_destroy(&s->models_mu);
}

/* ---- finding ----------------------------------------------------------------- */

/* name is id, or id without ".gguf", or either with ollama's ":latest". */
static bool is_name(const char *id, const char *name) {
    size_t n = strlen(name);
    if (n > 7 && !strcmp(name + n - 7, ":latest")) n -= 7;
    const size_t k = strlen(id);
    if (n == k && !strncmp(name, id, n)) return true;
    return k > 5 && n == k - 5 && !strcmp(id + n, ".gguf") && !strncmp(name, id, n);
}

/* name is m's id or one of its aliases. */
static bool names(const srv_model *m, const char *name) {
    bool match = is_name(m->id, name);
    for (int i = 0; !match && i < m->n_aliases; i++) match = is_name(m->aliases[i], name);
    return match;
}

srv_model *srv_model_find(srv_server *s, const char *name) {
    for (int i = 0; name && i < s->n_models; i++)
        if (names(s->models[i], name)) return s->models[i];
    return NULL;
}

/* ---- residency --------------------------------------------------------------- */

static int n_resident(const srv_server *s) {
    int n = 0;
    for (int i = 0; i < s->n_models; i++)
        n += s->models[i]->state == SRV_MODEL_LOADED || s->models[i]->state == SRV_MODEL_LOADING;
    return n;
}

/* The least recently used loaded model no request holds (NULL: none). */
static srv_model *idle_lru(const srv_server *s) {
    srv_model *best = NULL;
    for (int i = 0; i < s->n_models; i++) {
        srv_model *m = s->models[i];
        if (m->state == SRV_MODEL_LOADED && m->refs == 0 &&
            (!best || m->last_used_ms < best->last_used_ms))
            best = m;
    }
    return best;
}

/* Unloads m (loaded, no references); called and returns with models_mu
 * held, which it lets go of while the scheduler's thread is joined. */
static void unload_locked(srv_server *s, srv_model *m, const char *why) {
    m->state = SRV_MODEL_LOADING; /* nobody takes it meanwhile; it counts as resident */
    pthread_mutex_unlock(&s->models_mu);
    close_model(m);
    srv_say(s, "model %s unloaded (%s)", m->id, why);
    pthread_mutex_lock(&s->models_mu);
    m->state = SRV_MODEL_UNLOADED;
    pthread_cond_broadcast(&s->models_cv);
}

/* Waits on models_cv until `deadline` (srv_now_ms clock; 0: a while). */
static void wait_models(srv_server *s, double deadline) {
    const double left = deadline > 0 ? deadline - srv_now_ms() : 1000;
    srv_wait_ms(&s->models_cv, &s->models_mu, left < 1 ? 1 : left > 1000 ? 1000 : (int)left);
}

bool srv_model_acquire(srv_model *m, bool autoload, srv_error *e) {
    srv_server *s = m->srv;
    const double deadline = s->cfg.timeout_s > 0 ? srv_now_ms() + 1e3 * s->cfg.timeout_s : 0;
    pthread_mutex_lock(&s->models_mu);
    for (;;) {
        if (s->models_closing) {
            pthread_mutex_unlock(&s->models_mu);
            return srv_fail(e, 503, NULL, "shutting_down", "the server is stopping");
        }
        if (m->state == SRV_MODEL_LOADED) {
            m->refs++;
            pthread_mutex_unlock(&s->models_mu);
            return true;
        }
        if (deadline > 0 && srv_now_ms() >= deadline) break;
        if (m->state == SRV_MODEL_LOADING) {
            wait_models(s, deadline);
            continue;
        }
        if (!autoload) {
            pthread_mutex_unlock(&s->models_mu);
            return srv_fail(e, 503, "model", "model_not_loaded",
                            "the model '%s' is not loaded (POST /models/load loads it; the server "
                            "runs with --no-models-autoload)",
                            m->id);
        }
        if (s->cfg.models_max > 0 && n_resident(s) >= s->cfg.models_max) {
            srv_model *victim = idle_lru(s);
            if (victim)
                unload_locked(s, victim, "least recently used: --models-max reached");
            else
                wait_models(s, deadline); /* every loaded model is in use */
            continue;
        }
        m->state = SRV_MODEL_LOADING;
        pthread_mutex_unlock(&s->models_mu);
        const hearth_err err = open_model(s, m);
        pthread_mutex_lock(&s->models_mu);
        if (err) {
            m->state = SRV_MODEL_FAILED;
            snprintf(m->error, sizeof m->error, "%s", hearth_last_error());
            srv_say(s, "error: model %s: %s", m->id, m->error);
            pthread_cond_broadcast(&s->models_cv);
            pthread_mutex_unlock(&s->models_mu);
            return srv_fail(e, 500, "model", "model_failed", "the model '%s' failed to load: %s",
                            m->id, m->error);
        }
        m->state = SRV_MODEL_LOADED;
        m->error[0] = '\0';
        m->expires_ms = 0;
        m->keep_alive_ms = m->keep_alive_default;
        pthread_cond_broadcast(&s->models_cv);
    }
    pthread_mutex_unlock(&s->models_mu);
    return srv_fail(e, 503, "model", "model_busy",
                    "the model '%s' could not be loaded in time: the %d loaded models "
                    "(--models-max) are all in use",
                    m->id, s->cfg.models_max);
}

void srv_model_retain(srv_model *m) {
    pthread_mutex_lock(&m->srv->models_mu);
    m->refs++;
    pthread_mutex_unlock(&m->srv->models_mu);
}

void srv_model_release(srv_model *m, int64_t keep_alive_ms) {
    if (!m) return;
    srv_server *s = m->srv;
    pthread_mutex_lock(&s->models_mu);
    const double now = srv_now_ms();
    m->last_used_ms = now;
    if (keep_alive_ms != SRV_KEEP_ALIVE_NONE) /* the latest request's setting holds */
        m->keep_alive_ms =
            keep_alive_ms == SRV_KEEP_ALIVE_DEFAULT ? m->keep_alive_default : keep_alive_ms;
    if (--m->refs == 0) {
        m->expires_ms = m->keep_alive_ms < 0 ? 0 : now + (double)m->keep_alive_ms;
        pthread_cond_broadcast(&s->models_cv);
    }
    pthread_mutex_unlock(&s->models_mu);
}

bool srv_model_unload(srv_model *m, srv_error *e) {
    srv_server *s = m->srv;
    pthread_mutex_lock(&s->models_mu);
    bool ok = false;
    if (m->state != SRV_MODEL_LOADED)
        srv_fail(e, 400, "model", "model_not_loaded", "the model '%s' is not loaded", m->id);
    else if (m->refs > 0)
        srv_fail(e, 409, "model", "model_busy",
                 "the model '%s' is answering %d request%s; unload it when they are done", m->id,
                 m->refs, m->refs == 1 ? "" : "s");
    else {
        unload_locked(s, m, "POST /models/unload");
        ok = true;
    }
    pthread_mutex_unlock(&s->models_mu);
    return ok;
}

/* Unloads the idle models whose keep-alive ran out, then sleeps until the
 * next one would (or something changes). */
static void *reaper_main(void *arg) {
    srv_server *s = arg;
    pthread_mutex_lock(&s->models_mu);
    while (!s->models_closing) {
        const double now = srv_now_ms();
        double next = 0;
        for (int i = 0; i < s->n_models; i++) {
            srv_model *m = s->models[i];
            if (m->state != SRV_MODEL_LOADED || m->refs > 0 || m->expires_ms <= 0) continue;
            if (m->expires_ms <= now) {
                unload_locked(s, m, "idle for its keep-alive");
                next = now; /* the list may have changed meanwhile: look again */
                break;
            }
            if (next <= 0 || m->expires_ms < next) next = m->expires_ms;
        }
        if (next == now) continue;
        const double wait = next > 0 ? next - now : 60e3;
        srv_wait_ms(&s->models_cv, &s->models_mu, wait > 60e3 ? 60000 : (int)wait + 1);
    }
    pthread_mutex_unlock(&s->models_mu);
    return NULL;
}

hearth_err srv_models_load_default(srv_server *s) {
    for (int i = 0; i < s->n_models; i++) {
        srv_model *m = s->models[i];
        if (m != s->default_model && !m->load_on_startup) continue;
        srv_error e;
        if (srv_model_acquire(m, true, &e))
            srv_model_release(m, SRV_KEEP_ALIVE_NONE);
        else if (m == s->default_model) /* the others' failures are logged; they retry on use */
            return hr_fail(HEARTH_ERR_IO, "%s", m->error[0] ? m->error : e.message);
    }
    return HEARTH_OK;
}

/* ---- what requests see --------------------------------------------------------- */

bool srv_parse_keep_alive(const char *text, int64_t *ms) {
    char *end;
    const double v = strtod(text, &end);
    if (end != text && !*end) { /* a number: seconds, as ollama reads it */
        if (v < 0)
            *ms = SRV_KEEP_ALIVE_FOREVER;
        else if (v * 1e3 < 1e15)
            *ms = (int64_t)(v * 1e3);
        else
            return false;
        return true;
    }
    if (text[0] == '-' && end != text) { /* "-1m": ollama's "forever" too */
        *ms = SRV_KEEP_ALIVE_FOREVER;
        return true;
    }
    return gw_parse_duration(text, ms) == HEARTH_OK;
}

bool srv_model_loaded(srv_model *m) {
    pthread_mutex_lock(&m->srv->models_mu);
    const bool loaded = m->state == SRV_MODEL_LOADED;
    pthread_mutex_unlock(&m->srv->models_mu);
    return loaded;
}

bool srv_model_needs_room(srv_model *m) {
    srv_server *s = m->srv;
    pthread_mutex_lock(&s->models_mu);
    const bool needs =
        m->state != SRV_MODEL_LOADED && s->cfg.models_max > 0 && n_resident(s) >= s->cfg.models_max;
    pthread_mutex_unlock(&s->models_mu);
    return needs;
}

srv_model *srv_model_take(srv_exchange *x, const char *name, srv_error *e) {
    srv_server *s = x->srv;
    srv_model *m = name && name[0] ? srv_model_find(s, name) : s->default_model;
    if (!m && name && name[0] &&
        (!strcmp(name, "auto") || (s->gw && gw_config_tier(gw_gateway_config(s->gw), name) >= 0)))
        m = s->default_model; /* the gateway's names ("local" too) are the default model's */
    if (!m && s->n_models == 1) m = s->models[0]; /* one model answers any name, as before */
    if (!m) {
        if (!name || !name[0])
            srv_fail(e, 400, "model", "model_required",
                     "'model' is required: this server has %d models and no default (GET "
                     "/v1/models lists them)",
                     s->n_models);
        else
            srv_fail(e, 404, "model", "model_not_found",
                     "the model '%.200s' does not exist (GET /v1/models lists the models)", name);
        return NULL;
    }
    if (x->key && !gw_key_allows_model(x->key, m->id)) {
        srv_fail(e, 403, "model", "model_not_allowed",
                 "the API key '%s' may not use the model '%.200s'", gw_key_spec_of(x->key)->name,
                 m->id);
        return NULL;
    }
    if (x->model == m) return m; /* already held (resolved earlier for this request) */
    if (!srv_model_acquire(m, !s->cfg.no_autoload, e)) return NULL;
    srv_model_release(x->model, SRV_KEEP_ALIVE_NONE);
    x->model = m;
    return m;
}

srv_model *srv_model_use(srv_exchange *x, const char *name) {
    srv_error e;
    srv_model *m = srv_model_take(x, name, &e);
    if (!m) srv_respond_error(x, &e);
    return m;
}

void srv_models_stats(srv_server *s, int *queued, int *busy, int *slots, int *loaded) {
    *queued = *busy = *slots = *loaded = 0;
    pthread_mutex_lock(&s->models_mu);
    for (int i = 0; i < s->n_models; i++) {
        const srv_model *m = s->models[i];
        if (m->state != SRV_MODEL_LOADED) continue;
        int q, b, n;
        srv_sched_stats(m->sched, &q, &b, &n);
        *queued += q;
        *busy += b;
        *slots += n;
        (*loaded)++;
    }
    pthread_mutex_unlock(&s->models_mu);
}
