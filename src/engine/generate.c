/*
 * generate.c - generation, prompt in, streamed text out, as steps a
 * scheduler can interleave across many sequences (hearth_gen) and as the
 * blocking hearth_generate built on the same steps:
 *
 *   new      finds the longest prefix of the prompt the session already
 *            holds (keeping at least one token to evaluate, unless it holds
 *            the whole prompt with its last logits) and truncates the
 *            session to it;
 *   prefill  evaluates the rest of the prompt, in chunks if asked;
 *   next     samples a token from the session's last logits, passes it
 *            through the UTF-8 stream (whole characters only) and the
 *            stop-string matcher (nothing of a stop string ever leaks),
 *            hands the text to the callback and decides whether to go on;
 *   step     feeds the token of every generation that goes on, and chunks
 *            of the prompts still being evaluated, through one
 *            hearth_decode_multi call (continuous batching: a new request's
 *            prompt rides in the same forward pass as the others' tokens).
 *
 * Speculative decoding: next also asks spec.c for tokens likely to follow
 * the one it sampled (the proposals), and step feeds them with it, keeping
 * the logits after each. The next call to next then samples from those
 * rows in turn, as the plain loop would from logits computed one token at
 * a time, and goes on while each draw equals the proposal that was fed
 * after it (that token and its logits are already in the session); at the
 * first draw that differs, the proposals after it are cut from the session
 * and the draw becomes the token to feed.
 *
 * Phases: PREFILL -> SAMPLE <-> PENDING, and DONE from SAMPLE.
 */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Most proposals a step may feed (hearth_gen_params.spec_n_max). */
enum { SPEC_MAX = 256 };

typedef enum gen_phase { GEN_PREFILL, GEN_SAMPLE, GEN_PENDING, GEN_DONE } gen_phase;

struct hearth_gen {
    hearth_session *session;
    const hearth_model *model;
    const tok_vocab *vocab;
    smp_sampler *smp;
    tok_stream *stream;
    smp_stop *stop;
    hearth_token_cb cb;
    void *user;
    int n_top, max_tokens;
    smp_cand *kept;      /* post_sampling_probs: [n_vocab], the chain's candidates each draw */
    int32_t *prompt;     /* [n_prompt], owned */
    int n_prompt, n_fed; /* prompt tokens in the session so far */
    int32_t *feed;       /* [1 + spec_max]: GEN_PENDING's token to feed, then its proposals */
    int n_prop;          /* proposals fed (or to feed) after feed[0] */
    int row;             /* the session's row of logits to sample from next; -1: its last */
    hearth_session *draft;
    int spec_max, spec_ngram;
    float spec_p_min;
    int step_n;     /* tokens it brings to the hearth_gen_step batch being built */
    bool ctx_shift; /* a full context is shifted (gen_shift), not the end */
    int n_keep;
    int n_discard; /* per shift; <= 0: half */
    gen_phase phase;
    hearth_gen_result r;
    double t0, t1; /* start, end of the prompt */
};

/* Reuses the longest cached prefix of the prompt, keeping at least one
 * token to evaluate, whose logits start the generation, unless the session
 * holds exactly the prompt and still has its last token's logits (copied by
 * hearth_session_copy from a session that evaluated it): then nothing is
 * left to evaluate. Primes the sampler's penalty window with the whole
 * prompt. */
static hearth_err gen_reuse_prefix(hearth_gen *g) {
    int n_cached = 0, n_exact; /* what a context shift moved is never reused */
    const int32_t *cached = hearth_session_tokens(g->session, &n_exact);
    while (n_cached < n_exact && n_cached < g->n_prompt - 1 &&
           cached[n_cached] == g->prompt[n_cached])
        n_cached++;
    if (n_cached == g->n_prompt - 1 && hearth_session_pos(g->session) == g->n_prompt &&
        n_exact == g->n_prompt && cached[n_cached] == g->prompt[n_cached] &&
        model_session_has_logits(g->session))
        n_cached = g->n_prompt;
    /* a sliding-window cache may have dropped what a shorter prefix needs */
    n_cached = hearth_session_keepable(g->session, n_cached);
    hearth_err err = hearth_session_truncate(g->session, n_cached);
    g->n_fed = n_cached;
    g->r.n_cached = n_cached;
    g->r.n_prompt = g->n_prompt - n_cached;
    g->r.stop_index = -1;
    smp_reset(g->smp);
    for (int i = 0; i < g->n_prompt && !err; i++) /* an image's rows are no tokens */
        if (g->prompt[i] >= 0) err = smp_accept(g->smp, g->prompt[i]);
    return err;
}

hearth_err hearth_gen_new(hearth_session *session, hearth_sampler *sampler, const int32_t *prompt,
                          int n_prompt, const hearth_gen_params *params, hearth_token_cb cb,
                          void *user, hearth_gen **out) {
    hearth_gen_params p = params ? *params : (hearth_gen_params){0};
    if (n_prompt <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "generate: the prompt is empty");
    if (p.n_top_logprobs < 0 || p.n_top_logprobs > HEARTH_TOP_LOGPROBS_MAX)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "generate: top logprobs must be in 0..%d",
                       HEARTH_TOP_LOGPROBS_MAX);
    const hearth_model *model = model_session_model(session);
    const tok_vocab *vocab = engine_vocab(model);
    if (!vocab) return HEARTH_ERR_UNSUPPORTED;
    if (p.spec_n_max < 0 || p.spec_n_max > SPEC_MAX ||
        (p.spec_n_max > 0 && !p.draft && p.spec_ngram_n <= 0) || p.spec_ngram_n < 0 ||
        p.draft == session || !(p.spec_p_min >= 0 && p.spec_p_min <= 1))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "generate: speculative decoding wants 0..%d proposals, from a draft "
                       "session other than the target's or an n-gram size > 0, and a "
                       "probability floor in [0, 1]",
                       SPEC_MAX);
    if (n_prompt > hearth_session_n_ctx(session))
        return hr_fail(HEARTH_ERR_CONTEXT_FULL,
                       "generate: the prompt has %d tokens but the context holds %d", n_prompt,
                       hearth_session_n_ctx(session));
    hearth_gen *g = hr_calloc(1, sizeof *g);
    if (!g) return HEARTH_ERR_NOMEM;
    *g = (hearth_gen){.session = session,
                      .model = model,
                      .vocab = vocab,
                      .smp = sampler->smp,
                      .cb = cb,
                      .user = user,
                      .n_top = p.n_top_logprobs,
                      .max_tokens = p.max_tokens,
                      .n_prompt = n_prompt,
                      .row = -1,
                      .draft = p.spec_n_max > 0 ? p.draft : NULL,
                      .spec_max = p.spec_n_max,
                      .spec_ngram = p.spec_ngram_n,
                      .spec_p_min = p.spec_p_min,
                      .ctx_shift = p.ctx_shift,
                      .n_keep = p.n_keep,
                      .n_discard = p.n_discard,
                      .phase = GEN_PREFILL};
    hearth_err err = HEARTH_OK;
    if (!(g->prompt = malloc((size_t)n_prompt * sizeof *prompt)))
        err = HEARTH_ERR_NOMEM;
    else
        memcpy(g->prompt, prompt, (size_t)n_prompt * sizeof *prompt);
    if (!err && !(g->feed = malloc((size_t)(1 + g->spec_max) * sizeof *g->feed)))
        err = HEARTH_ERR_NOMEM;
    if (!err && p.post_sampling_probs &&
        !(g->kept = malloc((size_t)hearth_model_n_vocab(model) * sizeof *g->kept)))
        err = HEARTH_ERR_NOMEM;
    if (!err) err = tok_stream_new(vocab, false, &g->stream);
    if (!err) err = smp_stop_new(p.stop, p.n_stop, &g->stop);
    g->t0 = now_ms();
    if (!err) err = gen_reuse_prefix(g);
    if (!err && g->n_fed == n_prompt) { /* the whole prompt was there */
        g->phase = GEN_SAMPLE;
        g->t1 = g->t0;
    }
    if (err) {
        hearth_gen_free(g);
        return err;
    }
    *out = g;
    return HEARTH_OK;
}

void hearth_gen_free(hearth_gen *g) {
    if (!g) return;
    tok_stream_free(g->stream);
    smp_stop_free(g->stop);
    free(g->prompt);
    free(g->feed);
    free(g->kept);
    free(g);
}

hearth_err hearth_gen_prefill(hearth_gen *g, int max_tokens, bool *done) {
    hearth_err err = HEARTH_OK;
    if (g->phase == GEN_PREFILL) {
        int n = g->n_prompt - g->n_fed;
        if (max_tokens > 0 && n > max_tokens) n = max_tokens;
        err = hearth_decode(g->session, g->prompt + g->n_fed, n, NULL, false);
        if (!err) g->n_fed += n;
        if (!err && g->n_fed == g->n_prompt) {
            g->phase = GEN_SAMPLE;
            g->t1 = now_ms();
        }
    }
    if (done) *done = g->phase != GEN_PREFILL;
    return err;
}

/* post_sampling_probs: the chain's n kept candidates (as the draw sees
 * their logits; the first n_top of them best first) become ev's post_logprob for ev->id and top[],
 * as smp_draw weighs them (exp in float, summed in double; all -inf:
 * equally likely). */
static void gen_post_probs(const hearth_gen *g, int32_t n, hearth_token_event *ev) {
    const float max = n > 0 ? g->kept[0].logit : -INFINITY;
    double sum = 0.0;
    for (int32_t i = 0; i < n && max != -INFINITY; i++) sum += expf(g->kept[i].logit - max);
    const double lse = max == -INFINITY ? log((double)(n > 0 ? n : 1)) : log(sum);
    ev->n_top = 0;
    for (int32_t i = 0; i < n; i++) {
        const float w = max == -INFINITY ? 1.0f : expf(g->kept[i].logit - max);
        const float lp = w > 0.0f ? (float)(log((double)w) - lse) : -INFINITY;
        if (g->kept[i].id == ev->id) ev->post_logprob = lp;
        if (ev->n_top < g->n_top && w > 0.0f)
            ev->top[ev->n_top++] = (hearth_token_logprob){.id = g->kept[i].id, .logprob = lp};
    }
}

/* Hands text that became safe to the callback; false when it asks to stop.
 * n_kept >= 0: the chain's candidates for post_sampling_probs are in kept. */
static bool gen_emit(hearth_gen *g, int32_t id, const smp_info *info, int32_t n_kept,
                     const char *text, size_t len) {
    hearth_token_event ev = {.id = id, .text = text, .len = len};
    if (info) {
        ev.logprob = info->logprob;
        ev.n_top = info->n_top;
        for (int i = 0; i < info->n_top; i++)
            ev.top[i] =
                (hearth_token_logprob){.id = info->top[i].id, .logprob = info->top[i].logprob};
    }
    if (info && n_kept >= 0) gen_post_probs(g, n_kept, &ev);
    return g->cb ? g->cb(&ev, g->user) : true;
}

/* Releases text held back for an incomplete character (as U+FFFD) or for a
 * possible stop string that can no longer complete. */
static hearth_err gen_flush(hearth_gen *g) {
    const char *text;
    size_t len;
    smp_stop_out out;
    tok_stream_flush(g->stream, &text, &len);
    hearth_err err = smp_stop_feed(g->stop, text, len, &out);
    if (err) return err;
    if (out.len) gen_emit(g, -1, NULL, -1, out.text, out.len);
    if (!out.stopped) {
        smp_stop_flush(g->stop, &out);
        if (out.len) gen_emit(g, -1, NULL, -1, out.text, out.len);
    }
    if (out.stopped) {
        g->r.finish = HEARTH_FINISH_STOP;
        g->r.stop_index = out.stop_index;
    }
    return HEARTH_OK;
}

/* Where the next token goes: the session's position less the proposals
 * fed but not drawn yet. */
static int gen_live_pos(const hearth_gen *g) {
    const int unverified = g->row >= 0 ? g->n_prop - g->row : 0;
    return hearth_session_pos(g->session) - unverified;
}

/* Cuts the proposals not drawn from the session: it then holds exactly the
 * text so far. */
static hearth_err gen_drop_unverified(hearth_gen *g) {
    const hearth_err err = hearth_session_truncate(g->session, gen_live_pos(g));
    g->row = -1;
    g->n_prop = 0;
    return err;
}

/* Ends the generation: held-back text goes out unless the callback asked
 * to stop, and the timings are taken. */
static hearth_err gen_finish(hearth_gen *g, hearth_finish why) {
    hearth_err err = gen_drop_unverified(g);
    if (err) return err;
    g->r.finish = why;
    g->phase = GEN_DONE;
    err = why != HEARTH_FINISH_CALLBACK ? gen_flush(g) : HEARTH_OK;
    const double t2 = now_ms();
    g->r.prompt_ms = g->t1 - g->t0;
    g->r.gen_ms = t2 - g->t1;
    g->r.first_token_ms = g->r.first_token_ms > 0 ? g->r.first_token_ms - g->t0 : 0;
    return err;
}

/* The context is full: forget n_discard (default half) of what follows the
 * first n_keep tokens (llama-server's rule: n_keep the whole prompt when
 * negative or longer, at most n_ctx - 4; n_discard at most all the rest
 * but one) and go on. A draft
 * session follows the same shift when it holds the moved text (spec_draft
 * re-evaluates whatever it lacks). *shifted: false when nothing could be
 * discarded (the generation then ends as without shifting). */
static hearth_err gen_shift(hearth_gen *g, bool *shifted) {
    hearth_err err = gen_drop_unverified(g);
    const int n_ctx = hearth_session_n_ctx(g->session), pos = hearth_session_pos(g->session);
    int n_keep = g->n_keep < 0 || g->n_keep > g->n_prompt ? g->n_prompt : g->n_keep;
    if (n_keep > n_ctx - 4) n_keep = n_ctx - 4 > 0 ? n_ctx - 4 : 0;
    const int n_left = pos - n_keep;
    int n_discard = g->n_discard > 0 ? g->n_discard : n_left / 2;
    if (n_discard > n_left - 1) n_discard = n_left - 1;
    *shifted = !err && n_discard > 0;
    if (!*shifted) return err;
    err = hearth_session_shift(g->session, n_keep, n_discard);
    if (!err && g->draft) {
        const int dpos = hearth_session_pos(g->draft);
        int keep = -1; /* what the draft keeps when it cannot follow the shift */
        if (dpos > n_keep + n_discard && hearth_session_shift(g->draft, n_keep, n_discard))
            keep = n_keep;
        else if (dpos <= n_keep + n_discard)
            keep = dpos < n_keep ? dpos : n_keep;
        if (keep >= 0)
            err = hearth_session_truncate(g->draft, hearth_session_keepable(g->draft, keep));
    }
    if (!err) g->r.n_discarded += n_discard;
    return err;
}

/* One token: sample, stop on end of generation, stream, stop strings, the
 * callback, a satisfied constraint, max_tokens and the context; the token to
 * feed or -1. A constraint that is satisfied (JSON mode's object is
 * complete) ends the generation at once, as its end-of-generation token
 * would, without feeding the last token. */
static hearth_err gen_take(hearth_gen *g, int32_t *token) {
    hearth_gen_result *r = &g->r;
    *token = -1;
    if (g->max_tokens > 0 && r->n_gen >= g->max_tokens) return gen_finish(g, HEARTH_FINISH_LENGTH);
    smp_info info;
    const float *logits =
        g->row >= 0 ? model_session_row(g->session, g->row) : model_session_logits(g->session);
    /* the chain's candidates first: the draw after it sees the same (it
     * consumes no random number, XTC's chance included) */
    const int32_t n_kept =
        g->kept ? smp_candidates_ranked(g->smp, logits, g->kept, hearth_model_n_vocab(g->model),
                                        g->n_top > 1 ? g->n_top : 1)
                : -1;
    const int32_t id = smp_sample_ex(g->smp, logits, g->kept ? 0 : g->n_top, &info);
    if (id < 0) { /* the constraint allows no token (recorded) */
        g->phase = GEN_DONE;
        return HEARTH_ERR_UNSUPPORTED;
    }
    if (r->n_gen == 0) r->first_token_ms = now_ms();
    if (tok_is_eog(g->vocab, id)) return gen_finish(g, HEARTH_FINISH_STOP);
    r->n_gen++;
    const char *text;
    size_t len;
    smp_stop_out out;
    hearth_err err = smp_accept(g->smp, id);
    if (!err) err = smp_advance(g->smp, id);
    if (!err) err = tok_stream_push(g->stream, id, &text, &len);
    if (!err) err = smp_stop_feed(g->stop, text, len, &out);
    if (err) {
        g->phase = GEN_DONE;
        return err;
    }
    if (!gen_emit(g, id, &info, n_kept, out.text, out.len))
        return gen_finish(g, HEARTH_FINISH_CALLBACK);
    if (out.stopped) g->r.stop_index = out.stop_index;
    if (out.stopped || smp_constraint_done(g->smp)) return gen_finish(g, HEARTH_FINISH_STOP);
    if (gen_live_pos(g) >= hearth_session_n_ctx(g->session)) {
        bool shifted = false;
        if (g->ctx_shift && (err = gen_shift(g, &shifted))) {
            g->phase = GEN_DONE;
            return err;
        }
        if (!shifted) return gen_finish(g, HEARTH_FINISH_LENGTH);
    }
    *token = id;
    return HEARTH_OK;
}

/* Proposals to feed after feed[0]: as many as could still be drawn (the
 * last draw of a step comes from the row after the last proposal, so it
 * needs none), fit in the context and in one batch. */
static hearth_err gen_propose(hearth_gen *g) {
    g->n_prop = 0;
    if (g->spec_max <= 0) return HEARTH_OK;
    const int pos = hearth_session_pos(g->session);
    int max = g->spec_max;
    const int room = hearth_session_n_ctx(g->session) - pos - 1,
              batch = model_session_n_batch(g->session) - 1;
    if (max > room) max = room;
    if (max > batch) max = batch;
    if (g->max_tokens > 0 && max > g->max_tokens - g->r.n_gen - 1)
        max = g->max_tokens - g->r.n_gen - 1;
    if (max <= 0) return HEARTH_OK;
    const int32_t *hist = model_session_tokens(g->session);
    hearth_err err = HEARTH_OK;
    if (g->draft)
        err = spec_draft(g->draft, hist, pos, g->feed[0], max, g->spec_p_min,
                         hearth_model_n_vocab(g->model), g->feed + 1, &g->n_prop);
    else
        g->n_prop = spec_ngram(hist, pos, g->feed[0], g->spec_ngram, max, g->feed + 1);
    return err;
}

/* Draws tokens until one must be fed (*token) or the generation ends (-1):
 * one, or with proposals in the session, each that equals the proposal fed
 * after its row and then the one that does not (or the last row's). */
static hearth_err gen_next(hearth_gen *g, int32_t *token) {
    for (;;) {
        hearth_err err = gen_take(g, token);
        if (err || *token < 0) return err;
        if (g->row >= 0 && g->row < g->n_prop && *token == g->feed[1 + g->row]) {
            g->row++; /* drawn as proposed: already in the session */
            g->r.n_accepted++;
            continue;
        }
        err = gen_drop_unverified(g);
        g->feed[0] = *token;
        if (!err) err = gen_propose(g);
        if (err) {
            g->phase = GEN_DONE;
            return err;
        }
        g->r.n_drafted += g->n_prop;
        g->phase = GEN_PENDING;
        return HEARTH_OK;
    }
}

hearth_err hearth_gen_next_token(hearth_gen *g, int32_t *token) {
    switch (g->phase) {
    case GEN_SAMPLE: return gen_next(g, token);
    case GEN_DONE: *token = -1; return HEARTH_OK;
    case GEN_PREFILL:
        return hr_fail(HEARTH_ERR_INVALID_ARG, "generate: the prompt is not evaluated yet");
    case GEN_PENDING:
        return hr_fail(HEARTH_ERR_INVALID_ARG, "generate: token %d is still to be fed",
                       (int)g->feed[0]);
    }
    return HEARTH_ERR_INVALID_ARG;
}

/* Most tokens one hearth_decode_multi call of hearth_gen_step takes. */
enum { GEN_STEP_MAX = 512 };

/* One hearth_decode_multi call being built: entries, and the generations
 * that bring them (each with step_n consecutive entries). */
typedef struct step_batch {
    hearth_session *sessions[GEN_STEP_MAX];
    int32_t ids[GEN_STEP_MAX];
    hearth_gen *members[GEN_STEP_MAX];
    int k, n_members, cap;
} step_batch;

/* Adds up to n tokens of g (as many as fit); returns how many. */
static int batch_add(step_batch *b, hearth_gen *g, const int32_t *ids, int n) {
    if (b->k == 0) {
        const int nb = model_session_n_batch(g->session);
        b->cap = nb < GEN_STEP_MAX ? nb : GEN_STEP_MAX;
    }
    if (n > b->cap - b->k) n = b->cap - b->k;
    for (int e = 0; e < n; e++) {
        b->sessions[b->k + e] = g->session;
        b->ids[b->k + e] = ids[e];
    }
    if (n > 0) {
        b->k += n;
        g->step_n = n;
        b->members[b->n_members++] = g;
    }
    return n;
}

/* Runs the batch and moves each member on: a fed token lets it sample
 * again; a prompt chunk advances its prefill. */
static hearth_err batch_run(step_batch *b) {
    hearth_err err = hearth_decode_multi(b->sessions, b->ids, b->k, NULL);
    if (err) return err;
    for (int e = 0; e < b->n_members; e++) {
        hearth_gen *g = b->members[e];
        if (g->phase == GEN_PENDING) {
            g->phase = GEN_SAMPLE;
            g->row = g->step_n > 1 ? 0 : -1;
        } else if ((g->n_fed += g->step_n) == g->n_prompt) {
            g->phase = GEN_SAMPLE;
            g->t1 = now_ms();
        }
    }
    return HEARTH_OK;
}

hearth_err hearth_gen_step(hearth_gen *const *gens, int n, int max_prompt) {
    /* Distinct sessions, checked before anything is fed. */
    for (int a = 0; a < n; a++)
        for (int c = 0; c < a; c++)
            if (gens[a]->session == gens[c]->session &&
                (gens[a]->phase == GEN_PENDING || gens[a]->phase == GEN_PREFILL) &&
                (gens[c]->phase == GEN_PENDING || gens[c]->phase == GEN_PREFILL))
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "generate: two generations in one step share a session");
    int budget = max_prompt > 0 ? max_prompt : 0, i = 0, p = 0;
    for (;;) {
        step_batch b;
        b.k = b.n_members = b.cap = 0;
        for (; i < n; i++) {
            hearth_gen *g = gens[i];
            if (g->phase != GEN_PENDING) continue;
            const int got = batch_add(&b, g, g->feed, 1 + g->n_prop);
            if (!got) break;
            g->r.n_drafted -= g->n_prop - (got - 1); /* those that did not fit */
            g->n_prop = got - 1;
            if (got > 1) {
                hearth_err err = model_session_keep_rows(g->session, got);
                if (err) return err;
            }
        }
        for (; p < n && budget > 0; p++) {
            hearth_gen *g = gens[p];
            if (g->phase != GEN_PREFILL) continue;
            const int left = g->n_prompt - g->n_fed, want = left < budget ? left : budget;
            const int got = batch_add(&b, g, g->prompt + g->n_fed, want);
            budget -= got;
            if (got < left) break; /* the rest in the next batch or step */
        }
        if (b.k == 0) return HEARTH_OK;
        hearth_err err = batch_run(&b);
        if (err) return err;
        if (i >= n && (p >= n || budget == 0)) return HEARTH_OK;
    }
}

int hearth_gen_prompt_left(const hearth_gen *g) { return g->n_prompt - g->n_fed; }

bool hearth_gen_done(const hearth_gen *g) { return g->phase == GEN_DONE; }

void hearth_gen_get_result(const hearth_gen *g, hearth_gen_result *result) { *result = g->r; }

hearth_err hearth_generate(hearth_session *session, hearth_sampler *sampler, const int32_t *prompt,
                           int n_prompt, const hearth_gen_params *params, hearth_token_cb cb,
                           void *user, hearth_gen_result *result) {
    hearth_gen *g = NULL;
    hearth_err err = hearth_gen_new(session, sampler, prompt, n_prompt, params, cb, user, &g);
    if (err) return err;
    err = hearth_gen_prefill(g, 0, NULL);
    int32_t id = -1;
    while (!err && !(err = gen_next(g, &id)) && id >= 0) err = hearth_gen_step(&g, 1, 0);
    if (!err && result) *result = g->r;
    hearth_gen_free(g);
    return err;
}
