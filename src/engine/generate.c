/*
 * generate.c - hearth_generate: prompt in, streamed text out. Reuses the
 * session's cached prefix, evaluates the rest of the prompt in batches, then
 * samples one token at a time; the text handed to the callback has passed the
 * UTF-8 stream (whole characters only) and the stop-string matcher (nothing
 * of a stop string ever leaks).
 */
#include "engine.h"

#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct gen_state {
    hearth_session *session;
    const hearth_model *model;
    const tok_vocab *vocab;
    smp_sampler *smp;
    tok_stream *stream;
    smp_stop *stop;
    hearth_token_cb cb;
    void *user;
    int n_top;
} gen_state;

/* Reuses the longest cached prefix of prompt (keeping at least one token to
 * evaluate, whose logits start the generation) and evaluates the rest. */
static hearth_err gen_prompt(gen_state *g, const int32_t *prompt, int n_prompt,
                             hearth_gen_result *r) {
    const int32_t *cached = model_session_tokens(g->session);
    int n_cached = 0, pos = hearth_session_pos(g->session);
    while (n_cached < pos && n_cached < n_prompt - 1 && cached[n_cached] == prompt[n_cached])
        n_cached++;
    hearth_err err = hearth_session_truncate(g->session, n_cached);
    if (!err) err = hearth_decode(g->session, prompt + n_cached, n_prompt - n_cached, NULL, false);
    r->n_cached = n_cached;
    r->n_prompt = n_prompt - n_cached;
    smp_reset(g->smp);
    for (int i = 0; i < n_prompt && !err; i++) err = smp_accept(g->smp, prompt[i]);
    return err;
}

/* Hands text that became safe to the callback; false when it asks to stop. */
static bool gen_emit(gen_state *g, int32_t id, const smp_info *info, const char *text, size_t len) {
    hearth_token_event ev = {.id = id, .text = text, .len = len};
    if (info) {
        ev.logprob = info->logprob;
        ev.n_top = info->n_top;
        for (int i = 0; i < info->n_top; i++)
            ev.top[i] =
                (hearth_token_logprob){.id = info->top[i].id, .logprob = info->top[i].logprob};
    }
    return g->cb ? g->cb(&ev, g->user) : true;
}

static hearth_err gen_loop(gen_state *g, const hearth_gen_params *p, hearth_gen_result *r) {
    const int n_ctx = hearth_session_n_ctx(g->session);
    for (;;) {
        if (p->max_tokens > 0 && r->n_gen >= p->max_tokens) {
            r->finish = HEARTH_FINISH_LENGTH;
            return HEARTH_OK;
        }
        smp_info info;
        const int32_t id = smp_sample_ex(g->smp, model_session_logits(g->session), g->n_top, &info);
        if (r->n_gen == 0) r->first_token_ms = now_ms();
        if (tok_is_eog(g->vocab, id)) {
            r->finish = HEARTH_FINISH_STOP;
            return HEARTH_OK;
        }
        r->n_gen++;
        const char *text;
        size_t len;
        smp_stop_out out;
        hearth_err err = smp_accept(g->smp, id);
        if (!err) err = tok_stream_push(g->stream, id, &text, &len);
        if (!err) err = smp_stop_feed(g->stop, text, len, &out);
        if (err) return err;
        if (!gen_emit(g, id, &info, out.text, out.len)) {
            r->finish = HEARTH_FINISH_CALLBACK;
            return HEARTH_OK;
        }
        if (out.stopped) {
            r->finish = HEARTH_FINISH_STOP;
            return HEARTH_OK;
        }
        if (hearth_session_pos(g->session) >= n_ctx) {
            r->finish = HEARTH_FINISH_LENGTH;
            return HEARTH_OK;
        }
        if ((err = hearth_decode(g->session, &id, 1, NULL, false))) return err;
    }
}

/* Releases text held back for an incomplete character (as U+FFFD) or for a
 * possible stop string that can no longer complete. */
static hearth_err gen_flush(gen_state *g, hearth_gen_result *r) {
    const char *text;
    size_t len;
    smp_stop_out out;
    tok_stream_flush(g->stream, &text, &len);
    hearth_err err = smp_stop_feed(g->stop, text, len, &out);
    if (err) return err;
    if (out.len) gen_emit(g, -1, NULL, out.text, out.len);
    if (!out.stopped) {
        smp_stop_flush(g->stop, &out);
        if (out.len) gen_emit(g, -1, NULL, out.text, out.len);
    }
    if (out.stopped) r->finish = HEARTH_FINISH_STOP;
    return HEARTH_OK;
}

hearth_err hearth_generate(hearth_session *session, hearth_sampler *sampler, const int32_t *prompt,
                           int n_prompt, const hearth_gen_params *params, hearth_token_cb cb,
                           void *user, hearth_gen_result *result) {
    hearth_gen_params p = params ? *params : (hearth_gen_params){0};
    if (n_prompt <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "generate: the prompt is empty");
    if (p.n_top_logprobs < 0 || p.n_top_logprobs > HEARTH_TOP_LOGPROBS_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "generate: top logprobs must be in 0..%d",
                       HEARTH_TOP_LOGPROBS_MAX);
    gen_state g = {.session = session,
                   .model = model_session_model(session),
                   .smp = sampler->smp,
                   .cb = cb,
                   .user = user,
                   .n_top = p.n_top_logprobs};
    if (!(g.vocab = engine_vocab(g.model))) return HEARTH_ERR_UNSUPPORTED;
    if (n_prompt > hearth_session_n_ctx(session))
        return hr_fail(HEARTH_ERR_CONTEXT_FULL,
                       "generate: the prompt has %d tokens but the context holds %d", n_prompt,
                       hearth_session_n_ctx(session));
    hearth_gen_result r = {0};
    hearth_err err = tok_stream_new(g.vocab, false, &g.stream);
    if (!err) err = smp_stop_new(p.stop, p.n_stop, &g.stop);
    const double t0 = now_ms();
    if (!err) err = gen_prompt(&g, prompt, n_prompt, &r);
    const double t1 = now_ms();
    if (!err) err = gen_loop(&g, &p, &r);
    if (!err && r.finish != HEARTH_FINISH_CALLBACK) err = gen_flush(&g, &r);
    const double t2 = now_ms();
    r.prompt_ms = t1 - t0;
    r.gen_ms = t2 - t1;
    r.first_token_ms = r.first_token_ms > 0 ? r.first_token_ms - t0 : 0;
    tok_stream_free(g.stream);
    smp_stop_free(g.stop);
    if (!err && result) *result = r;
    return err;
}
