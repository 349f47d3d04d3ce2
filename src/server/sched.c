/*
 * sched.c - slots, the bounded queue and the scheduler thread (continuous
 * batching).
 *
 * A slot is a hearth_session (its own KV cache). One scheduler thread owns
 * every engine call: it loops in steps, and in each step
 *   1. admits queued jobs into free slots (a new job goes to the free slot
 *      whose last tokens share the longest prefix with its prompt, ties to
 *      the least recently used, so a conversation's next turn usually finds
 *      its KV cache and only the new suffix is evaluated),
 *   2. lets every running job whose prompt is in sample its next token
 *      (hearth_gen_next_token: the text goes to the job's events, which the
 *      HTTP side streams), and ends the jobs that finished, were cancelled
 *      or ran out of time, freeing their slots at once,
 *   3. feeds the tokens of all jobs that go on, and up to
 *      SCHED_PREFILL_CHUNK tokens of the prompts still being evaluated,
 *      through ONE forward pass (hearth_gen_step: hearth_decode_multi over
 *      their sessions).
 * A request thus joins or leaves between steps, its prompt rides in the
 * others' batch, and N busy slots cost one pass over the weights per token
 * instead of N. A job that scores its prompt (echo with logprobs) evaluates
 * it in chunks with every row's logits before its generation starts: in
 * step 2 the chunks of all scoring slots go through one forward pass of
 * their own (hearth_decode_multi with every row; step 3's keeps only each
 * session's last row). A job with max_tokens 0 (prompt_only) ends in step 2
 * once its prompt is in, before anything is sampled. An embedding job takes a slot but no part in
 * the batch: in step 2 it embeds its next texts, as many whole texts as SCHED_EMBED_CHUNK tokens
 * hold (at least one), sharing forward passes (hearth_embed_batch), and ends after the last.
 *
 * Jobs wait in a FIFO while every slot is busy: queue_max entries beyond the
 * free slots (a submitted job that a free slot will take in the next step
 * does not count against the queue).
 *
 * The choices of one request (n of each of its prompts) are jobs submitted
 * together, all or none (srv_sched_submit_n), so they batch like concurrent
 * requests; as a group (srv_job.group) each of their events and ends also
 * bumps the first job's counter and wakes its waiters, so one streaming
 * thread follows them all. The n choices of one prompt (srv_job.same_prompt)
 * evaluate it once: its first choice's slot evaluates it while the others,
 * admitted beside it, wait; then each copies that
 * session's KV cache and last logits (hearth_session_copy) and they all
 * sample from the same step on. A choice that gets a slot only later (more
 * choices than free slots) starts like any job, from its slot's cache.
 *
 * A slot action (POST /slots/{id}: save, restore, erase) waits in a list
 * until its slot is idle; each step first runs the waiting actions whose
 * slots are idle, before admission can give those slots a job (a busy
 * slot's action thus runs when its job ends, as llama-server defers it).
 *
 * Locks: sched.mu guards the queue, the slots' job pointers, n_busy, the
 * actions' list and states, and stop; job.mu guards a job's output.
 * Everything else in a slot (session, generation, token mirror) belongs to
 * the scheduler thread. A thread never takes sched.mu while holding job.mu.
 */
#include "server.h"
#include "tools.h"

#include "core/core.h"
#include "model/model.h" /* model_session_n_batch: a scoring pass's room */

#include <cjson/cJSON.h>

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double srv_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void srv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the clock pthread_cond_timedwait uses by default */
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- jobs ------------------------------------------------------------------ */

srv_job *srv_job_new(const int32_t *prompt, int n) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->prompt = malloc((size_t)(n > 0 ? n : 1) * sizeof *j->prompt);
    if (!j->prompt) {
        free(j);
        return NULL;
    }
    if (n > 0) memcpy(j->prompt, prompt, (size_t)n * sizeof *prompt);
    j->n_prompt = n;
    j->slot = -1;
    j->spec_n_max = -1; /* the server's speculative settings */
    j->spec_p_min = NAN;
    j->reasoning_tokens = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancel, false);
    j->refs = 1;
    return j;
}

// NOLINTNEXTLINE(misc-no-recursion): at most a choice, its prompt's first, the group's first
void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    if (j->group && j->group != j) srv_job_release(j->group);
    if (j->same_prompt && j->same_prompt != j) srv_job_release(j->same_prompt);
    free(j->logit_bias);
    free(j->dry_breakers);
    free(j->prompt);
    free(j->image_rows);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->text);
    free(j->reasoning);
    free(j->events);
    free(j->prompt_events);
    free(j->input_len);
    free(j->embd);
    if (j->remote_calls) srv_tool_reply_free(j->remote_calls);
    free(j->remote_calls);
    gw_thinking_free(j->thinking, j->n_thinking);
    free(j);
}

static void job_retain(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void srv_job_group(srv_job *const *jobs, int n) {
    for (int i = 0; i < n; i++) {
        jobs[i]->group = jobs[0];
        jobs[i]->choice = i;
        if (i > 0) job_retain(jobs[0]);
    }
}

void srv_job_share_prompt(srv_job *const *jobs, int n) {
    for (int i = 0; i < n; i++) {
        jobs[i]->same_prompt = jobs[0];
        if (i > 0) job_retain(jobs[0]);
    }
}

/* Tells the group's waiter that j has news (after j->mu was let go: a
 * thread never holds two jobs' locks). */
static void job_notify_group(srv_job *j) {
    srv_job *g = j->group;
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->group_seq++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Marks a job that never ran as finished (cancelled or refused). */
static void job_finish_unrun(srv_job *j, hearth_err err, const char *msg) {
    pthread_mutex_lock(&j->mu);
    j->state = SRV_JOB_DONE;
    j->err = err;
    if (msg) snprintf(j->err_msg, sizeof j->err_msg, "%s", msg);
    j->result.finish = HEARTH_FINISH_CALLBACK;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_notify_group(j);
}

/* Room for `more` bytes and a NUL in a growing text; false when out of memory. */
static bool text_room(char **text, size_t len, size_t *cap, size_t more) {
    if (len + more + 1 <= *cap) return true;
    size_t c = *cap ? *cap : 1024;
    while (c < len + more + 1) c *= 2;
    char *nt = realloc(*text, c);
    if (!nt) return false;
    *text = nt;
    *cap = c;
    return true;
}

bool srv_job_append(srv_job *j, const hearth_token_event *ev, const char *text, size_t len,
                    bool end) {
    if (j->n_events == j->cap_events) {
        const int cap = j->cap_events ? j->cap_events * 2 : 64;
        srv_event *ne = realloc(j->events, (size_t)cap * sizeof *ne);
        if (!ne) return false;
        j->events = ne;
        j->cap_events = cap;
    }
    const size_t room = len + (j->think ? ENG_THINK_HOLD : 0);
    if (!text_room(&j->text, j->text_len, &j->text_cap, room) ||
        (j->think && !text_room(&j->reasoning, j->reasoning_len, &j->reasoning_cap, room)))
        return false;
    srv_event *e = &j->events[j->n_events++];
    *e = (srv_event){
        .id = ev ? ev->id : -1, .text_off = j->text_len, .reason_off = j->reasoning_len};
    if (ev) {
        e->logprob = ev->logprob;
        e->n_top = ev->n_top < j->n_top ? ev->n_top : j->n_top;
        e->post_logprob = ev->post_logprob;
        for (int i = 0; i < e->n_top; i++) e->top[i] = ev->top[i];
    }
    if (j->think) {
        const eng_think_state before = j->split.state;
        eng_think_out o = {.reason = j->reasoning + j->reasoning_len,
                           .content = j->text + j->text_len};
        eng_think_feed(&j->split, text, len, &o);
        if (end) eng_think_finish(&j->split, &o);
        const eng_think_state after = j->split.state;
        e->thought = before == ENG_THINK_LEAD || before == ENG_THINK_IN ||
                     after == ENG_THINK_LEAD || after == ENG_THINK_IN ||
                     (before != ENG_THINK_AFTER && after == ENG_THINK_AFTER);
        e->text_len = o.n_content;
        e->reason_len = o.n_reason;
        j->reasoning_len += o.n_reason;
        j->reasoning[j->reasoning_len] = '\0';
    } else {
        memcpy(j->text + j->text_len, text, len);
        e->text_len = len;
    }
    j->text_len += e->text_len;
    j->text[j->text_len] = '\0';
    return true;
}

bool srv_job_append_reasoning(srv_job *j, const char *text, size_t len) {
    if (!text_room(&j->reasoning, j->reasoning_len, &j->reasoning_cap, len) ||
        !srv_job_append(j, NULL, "", 0, false))
        return false;
    srv_event *e = &j->events[j->n_events - 1];
    *e = (srv_event){.id = -1,
                     .text_off = j->text_len,
                     .reason_off = j->reasoning_len,
                     .reason_len = len,
                     .thought = true};
    memcpy(j->reasoning + j->reasoning_len, text, len);
    j->reasoning_len += len;
    j->reasoning[j->reasoning_len] = '\0';
    return true;
}

/* ---- slots and the scheduler thread ---------------------------------------- */

/* Prompt tokens a step evaluates besides the slots' next tokens: bounds the
 * pause a long prompt imposes on the other slots' tokens. */
enum { SCHED_PREFILL_CHUNK = 256 };
/* Tokens of whole texts an embedding job embeds in a step (a longer text
 * goes alone): a slot session's default batch, one forward pass of short
 * texts; like the prefill chunk, it bounds the other slots' pause. */
enum { SCHED_EMBED_CHUNK = 512 };
/* Prompt tokens a scoring job (echo with logprobs) evaluates in a step at
 * least: a step's scoring pass has room for this many per slot (every row's
 * logits are kept, n_vocab floats each: 19 MiB at 152k), which the slots
 * scoring in that step share out (one alone takes them all). */
enum { SCHED_SCORE_CHUNK = 32 };

typedef struct srv_slot {
    srv_sched *sched;
    int index;
    hearth_session *session;
    hearth_session *draft; /* speculative decoding's draft session (NULL: none) */
    srv_job *job;          /* guarded by sched.mu; set by admission, cleared when done */
    bool started;          /* job's generation exists (scheduler thread) */
    hearth_gen *gen;
    hearth_sampler *smp;
    int32_t *cache; /* the tokens the session holds: prompt, then generated ids */
    int n_cache, n_keep, n_gen_ids;
    int n_scored;          /* srv_job.score_prompt: prompt tokens evaluated so far; */
    int score_at, score_n; /* this step's chunk: its first entry in the pass, its tokens */
    bool oom;
    uint64_t last_used;
    double admitted_ms; /* srv_now_ms() when its job was admitted */
} srv_slot;

struct srv_sched {
    hearth_model *model;
    srv_metrics *metrics;
    srv_spec spec;
    int n_slots, n_ctx, queue_max;
    srv_slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* with mu: a job arrived, or stop */
    pthread_cond_t action_cv; /* with mu: an action is done */
    srv_slot_action *actions; /* waiting and running slot actions */
    srv_job **queue;          /* ring of q_cap = queue_max + n_slots */
    int q_head, q_len, q_cap;
    int n_busy;
    bool stop;
    uint64_t clock;
    pthread_t thread;
    bool thread_started;
    hearth_gen **step_gens; /* [n_slots] the scheduler thread's step */
    srv_slot **step_slots;  /* [n_slots] */
    srv_slot **score_slots; /* [n_slots] the step's scoring slots */
    /* One scoring pass: its entries ([n_slots * SCHED_SCORE_CHUNK]) and,
     * made at the first and kept, their logits ([score_cap][n_vocab]). */
    hearth_session **score_sessions;
    int32_t *score_ids;
    float *score_logits;
    int score_cap; /* rows the logits hold: a pass's most entries */
};

static bool on_token(const hearth_token_event *ev, void *user) {
    srv_slot *slot = user;
    srv_job *j = slot->job;
    pthread_mutex_lock(&j->mu);
    if (!srv_job_append(j, ev, ev->text, ev->len, false)) slot->oom = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_notify_group(j);
    /* The cache mirror: prompt, then the generated ids (room for n_ctx). */
    if (ev->id >= 0 && slot->n_keep + slot->n_gen_ids < slot->sched->n_ctx)
        slot->cache[slot->n_keep + slot->n_gen_ids++] = ev->id;
    if (slot->oom || atomic_load(&j->cancel)) return false;
    if (j->deadline_ms > 0 && srv_now_ms() > j->deadline_ms) {
        pthread_mutex_lock(&j->mu);
        j->timed_out = true;
        pthread_mutex_unlock(&j->mu);
        return false;
    }
    return true;
}

/* Publishes the job's outcome, frees the slot and drops the scheduler's
 * reference. r may be NULL (the job never started generating). */
static void slot_finish(srv_sched *s, srv_slot *slot, hearth_err err, const char *msg,
                        const hearth_gen_result *r) {
    srv_job *j = slot->job;
    if (!err && slot->oom) {
        err = HEARTH_ERR_NOMEM;
        msg = "out of memory while collecting the output";
    }
    /* What the session holds: nothing trusted after an error; as before for
     * a job cancelled in the queue (its session was never touched). */
    const int pos = hearth_session_pos(slot->session);
    if (err) {
        hearth_session_truncate(slot->session, 0);
        slot->n_cache = 0;
    } else if (slot->started) {
        const int n = slot->n_keep + slot->n_gen_ids;
        slot->n_cache = pos < n ? pos : n;
    }
    if (!err && r && r->n_discarded > 0) { /* a context shift: only its kept start is reusable */
        const int32_t *held = hearth_session_tokens(slot->session, &slot->n_cache);
        memcpy(slot->cache, held, (size_t)slot->n_cache * sizeof *slot->cache);
    }
    hearth_gen_free(slot->gen);
    hearth_sampler_free(slot->smp);
    slot->gen = NULL;
    slot->smp = NULL;
    slot->started = false;
    slot->n_scored = 0;
    pthread_mutex_lock(&j->mu);
    /* the text a reasoning splitter held back (a tag's possible start) */
    if (j->think && j->split.n_held && !srv_job_append(j, NULL, "", 0, true) && !err) {
        err = HEARTH_ERR_NOMEM;
        msg = "out of memory while collecting the output";
    }
    if (r)
        j->result = *r;
    else
        j->result.finish = HEARTH_FINISH_CALLBACK;
    if (j->score_prompt) { /* the generation reused what scoring evaluated in this request */
        j->result.n_prompt += j->result.n_cached;
        j->result.n_cached = 0;
    }
    /* ... and what the images' prefill evaluated */
    j->result.n_prompt += j->n_prefilled;
    j->result.n_cached -= j->n_prefilled;
    j->err = err;
    snprintf(j->err_msg, sizeof j->err_msg, "%s", msg ? msg : "");
    j->state = SRV_JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_notify_group(j);
    if (!err && r) {
        srv_metrics_tokens(s->metrics, j->result.n_prompt + j->result.n_cached, j->result.n_cached,
                           r->n_gen);
        srv_metrics_spec(s->metrics, r->n_drafted, r->n_accepted);
    }
    pthread_mutex_lock(&s->mu);
    slot->job = NULL;
    slot->last_used = ++s->clock;
    s->n_busy--;
    pthread_mutex_unlock(&s->mu);
    srv_job_release(j);
}

/* Ends a running job with the engine's last error. */
static void slot_fail(srv_sched *s, srv_slot *slot, hearth_err err) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", hearth_last_error());
    hearth_gen_result r = {0};
    if (slot->gen) hearth_gen_get_result(slot->gen, &r);
    slot_finish(s, slot, err, msg, slot->gen ? &r : NULL);
}

/* Marks a newly admitted job running; false (and the job ended) when it was
 * cancelled while queued. */
static bool slot_begin(srv_sched *s, srv_slot *slot) {
    srv_job *j = slot->job;
    pthread_mutex_lock(&j->mu);
    const bool cancelled = atomic_load(&j->cancel);
    if (!cancelled) j->state = SRV_JOB_RUNNING;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (cancelled) slot_finish(s, slot, HEARTH_OK, NULL, NULL);
    return !cancelled;
}

/* n > 1: where a choice after the first finds its prompt already
 * evaluated, the slot of that prompt's first choice (the leader,
 * srv_job.same_prompt: never another prompt's), as long as its session
 * holds exactly the prompt: from the step in which the leader's prompt is
 * complete until the leader's first token is fed (all of a step's choices
 * sample before its decode), or after the leader ended right there. *wait:
 * the leader's prompt is still being evaluated (or its generation is not
 * started yet), so the choice should wait a step rather than evaluate the
 * prompt a second time. NULL without *wait: evaluate as usual. */
static srv_slot *prompt_donor(srv_sched *s, const srv_slot *slot, bool *wait) {
    const srv_job *j = slot->job, *lead = j->same_prompt;
    *wait = false;
    if (!lead || lead == j || lead->slot < 0 || lead->slot == slot->index) return NULL;
    srv_slot *d = &s->slots[lead->slot];
    const bool running = d->job == lead;
    if (running && (!d->started || hearth_gen_prompt_left(d->gen) > 0)) {
        *wait = true;
        return NULL;
    }
    if ((!running && d->job) || hearth_session_pos(d->session) != j->n_prompt) return NULL;
    /* a running leader's session holds a prefix of its prompt (which is
     * j's); an idle slot's, what its mirror says */
    if (!running && (d->n_cache < j->n_prompt ||
                     memcmp(d->cache, j->prompt, (size_t)j->n_prompt * sizeof *j->prompt)))
        return NULL;
    return d;
}

/* A prompt with images: the session brought to hold it through its last
 * image (what it holds already reused), in one pass per stretch of text or
 * image, while the other slots wait (hearth_gen_new evaluates the rest in
 * steps). */
static hearth_err prefill_images(srv_slot *slot, srv_job *j) {
    const size_t per =
        (size_t)hearth_vision_n_tokens(j->vision) * hearth_model_n_embd(slot->sched->model);
    const float *images[SRV_MAX_IMAGES];
    for (int i = 0; i < j->n_images; i++) images[i] = j->image_rows + (size_t)i * per;
    return hearth_prefill_media(slot->session, j->vision, j->prompt, j->n_prompt, images,
                                j->n_images, &j->n_prefilled);
}

/* A newly admitted job: its sampler and generation (prefix reuse happens
 * here), or its end when it was cancelled while queued. A choice whose
 * prompt's first choice is evaluating that prompt waits for it (its job
 * stays queued) and then starts from a copy of that session. */
static void slot_start(srv_sched *s, srv_slot *slot) {
    srv_job *j = slot->job;
    bool wait;
    srv_slot *donor = prompt_donor(s, slot, &wait);
    if (wait && !atomic_load(&j->cancel)) return;
    if (!slot_begin(s, slot)) return;
    hearth_gen_params gp = {.max_tokens = j->max_tokens,
                            .stop = (const char *const *)j->stop,
                            .n_stop = j->n_stop,
                            .n_top_logprobs = j->n_top,
                            .post_sampling_probs = j->post_sampling,
                            .spec_n_max = !slot->draft && s->spec.ngram_n <= 0 ? 0
                                          : j->spec_n_max >= 0                 ? j->spec_n_max
                                                                               : s->spec.n_max,
                            .draft = slot->draft,
                            .spec_p_min =
                                isnan(j->spec_p_min) ? s->spec.p_min : (float)j->spec_p_min,
                            .spec_ngram_n = s->spec.ngram_n,
                            .ctx_shift = j->ctx_shift,
                            .n_keep = j->n_keep,
                            .n_discard = j->n_discard};
    /* The mirror is stale while the engine works; it is rebuilt at the end. */
    slot->n_keep = j->n_prompt < s->n_ctx ? j->n_prompt : s->n_ctx;
    slot->n_gen_ids = 0;
    slot->oom = false;
    memcpy(slot->cache, j->prompt, (size_t)slot->n_keep * sizeof *slot->cache);
    hearth_err err = hearth_sampler_new(s->model, &j->sampling, &slot->smp);
    /* the prompt's KV cache and last logits: the generation samples at once */
    if (!err && donor) err = hearth_session_copy(slot->session, donor->session, j->n_prompt);
    if (!err && !donor && j->n_images) err = prefill_images(slot, j);
    if (!err)
        err = hearth_gen_new(slot->session, slot->smp, j->prompt, j->n_prompt, &gp, on_token, slot,
                             &slot->gen);
    if (err) {
        slot_fail(s, slot, err);
        return;
    }
    slot->started = true;
}

/* Whether a running job must stop before its next token: cancelled (the
 * client left) or out of time. */
static bool slot_should_stop(srv_slot *slot) {
    srv_job *j = slot->job;
    if (atomic_load(&j->cancel)) return true;
    if (j->deadline_ms > 0 && srv_now_ms() > j->deadline_ms) {
        pthread_mutex_lock(&j->mu);
        j->timed_out = true;
        pthread_mutex_unlock(&j->mu);
        return true;
    }
    return false;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* Moves queued jobs into free slots. Called with s->mu held. */
static void admit_locked(srv_sched *s) {
    while (s->q_len > 0 && s->n_busy < s->n_slots) {
        srv_job *j = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_len--;
        srv_slot *best = NULL;
        int best_len = -1, best_i = -1;
        for (int i = 0; i < s->n_slots; i++) {
            srv_slot *sl = &s->slots[i];
            if (sl->job) continue;
            const int k = common_prefix(sl->cache, sl->n_cache, j->prompt, j->n_prompt);
            if (!best || k > best_len || (k == best_len && sl->last_used < best->last_used)) {
                best = sl;
                best_len = k;
                best_i = i;
            }
        }
        assert(best); /* n_busy < n_slots: some slot is free */
        best->job = j;
        best->admitted_ms = srv_now_ms();
        j->slot = best_i;
        s->n_busy++;
    }
}

/* An embedding job's step: its next texts, as many whole ones as
 * SCHED_EMBED_CHUNK tokens hold (at least one), so that a long list pauses
 * the other slots for one batch at a time. The session ends up empty (an
 * embedding computes no logits), and so does the slot's prefix mirror. */
static void embed_advance(srv_sched *s, srv_slot *slot) {
    srv_job *j = slot->job;
    if (!slot->started) {
        if (!slot_begin(s, slot)) return;
        slot->started = true;
        slot->n_keep = slot->n_gen_ids = 0;
    }
    if (slot_should_stop(slot)) {
        slot_finish(s, slot, HEARTH_OK, NULL, NULL);
        return;
    }
    const int i = j->n_done;
    int from = 0, k = 0, n = 0;
    for (int t = 0; t < i; t++) from += j->input_len[t];
    while (i + k < j->n_inputs && (k == 0 || n + j->input_len[i + k] <= SCHED_EMBED_CHUNK))
        n += j->input_len[i + k++];
    const size_t d = j->rank ? 1 : (size_t)hearth_model_n_embd(s->model);
    const int32_t *ids = j->prompt + from;
    const hearth_err err =
        j->rank ? hearth_rank_batch(slot->session, ids, j->input_len + i, k, j->embd + i)
                : hearth_embed_batch(slot->session, ids, j->input_len + i, k, j->pooling,
                                     j->normalize, j->embd + (size_t)i * d);
    if (err) {
        slot_fail(s, slot, err);
        return;
    }
    srv_metrics_tokens(s->metrics, n, 0, 0);
    if ((j->n_done += k) == j->n_inputs) slot_finish(s, slot, HEARTH_OK, NULL, NULL);
}

/* A job that scores its prompt (echo with logprobs), before its generation
 * starts: the prompt is evaluated afresh, a chunk a step (SCHED_SCORE_CHUNK
 * tokens or more) with every row's logits (the chunks of all the step's
 * scoring slots in one forward pass, score_step), and each token's logprob
 * after the ones before it goes to prompt_events. The session then holds
 * the whole prompt, which the generation reuses; the mirror follows it, in
 * case the job ends here. */
static bool slot_scoring(const srv_slot *slot) {
    return !slot->started && slot->job->score_prompt && slot->n_scored < slot->job->n_prompt;
}

/* A scoring slot's checks before the step's scoring pass: its start (the
 * first time: prompt_events not made yet), cancellation and time. Returns
 * whether it has a chunk to evaluate; false when it ended. */
static bool score_begin(srv_sched *s, srv_slot *slot) {
    srv_job *j = slot->job;
    if (!j->prompt_events) {
        if (!slot_begin(s, slot)) return false;
        hearth_session_truncate(slot->session, 0);
        slot->n_cache = 0;
        j->prompt_events = calloc((size_t)j->n_prompt, sizeof *j->prompt_events);
        if (!j->prompt_events) {
            slot_finish(s, slot, HEARTH_ERR_NOMEM, "out of memory while scoring the prompt", NULL);
            return false;
        }
        j->prompt_events[0].id = j->prompt[0];
    }
    if (slot_should_stop(slot)) {
        slot_finish(s, slot, HEARTH_OK, NULL, NULL);
        return false;
    }
    return true;
}

/* The scoring pass's logits, made at the first scoring step and kept: room
 * for every slot's chunk within one forward pass of a session's batch
 * (n_vocab floats a row, what the slots held apart before). False when out
 * of memory. */
static bool score_buffers(srv_sched *s) {
    if (s->score_logits) return true;
    const int nb = model_session_n_batch(s->slots[0].session);
    const int want = s->n_slots * SCHED_SCORE_CHUNK;
    const int rows = want < nb ? want : nb;
    const size_t n_vocab = (size_t)hearth_model_n_vocab(s->model);
    s->score_logits = malloc((size_t)rows * n_vocab * sizeof *s->score_logits);
    s->score_cap = s->score_logits ? rows : 0;
    return s->score_logits != NULL;
}

/* A slot's rows of a scoring pass (its chunk of score_n tokens, whose rows
 * start at `rows`): each next prompt token's logprob; then the mirror. */
static void score_rows(srv_sched *s, srv_slot *slot, const float *rows) {
    srv_job *j = slot->job;
    const size_t n_vocab = (size_t)hearth_model_n_vocab(s->model);
    const int from = slot->n_scored, n = slot->score_n;
    hearth_err err = HEARTH_OK;
    for (int r = 0; !err && r < n && from + r + 1 < j->n_prompt; r++) {
        srv_event *e = &j->prompt_events[from + r + 1];
        e->id = j->prompt[from + r + 1];
        err = hearth_logprobs(s->model, rows + (size_t)r * n_vocab, e->id, j->n_top, &e->logprob,
                              e->top, &e->n_top);
    }
    if (err) {
        slot_fail(s, slot, err);
        return;
    }
    memcpy(slot->cache + from, j->prompt + from, (size_t)n * sizeof *slot->cache);
    slot->n_cache = slot->n_scored = from + n; /* (the metrics count them at the end) */
}

/* One forward pass over the chunks of slots[0..k), whose entries fill
 * score_sessions/score_ids from slots[0]->score_at on. A failed pass
 * changes nothing (hearth_decode_multi checks every entry first), so with
 * several slots each chunk is then evaluated alone: the error ends only the
 * slot it belongs to (a prompt past the context, an id outside the
 * vocabulary), and the others go on. */
// NOLINTNEXTLINE(misc-no-recursion): one level: a failed pass retries each slot alone (k = 1)
static void score_pass(srv_sched *s, srv_slot *const *slots, int k) {
    const int at = slots[0]->score_at;
    const int n = slots[k - 1]->score_at + slots[k - 1]->score_n - at;
    hearth_err err =
        hearth_decode_multi(s->score_sessions + at, s->score_ids + at, n, s->score_logits);
    if (err && k > 1) {
        for (int i = 0; i < k; i++) score_pass(s, slots + i, 1);
        return;
    }
    if (err) {
        slot_fail(s, slots[0], err);
        return;
    }
    const size_t n_vocab = (size_t)hearth_model_n_vocab(s->model);
    for (int i = 0; i < k; i++)
        score_rows(s, slots[i], s->score_logits + (size_t)(slots[i]->score_at - at) * n_vocab);
}

/* The step's scoring: the next chunk of every scoring slot (slots[0..k),
 * their checks passed) through as few forward passes as a session's batch
 * allows, one in the usual case, instead of one pass per slot. */
static void score_step(srv_sched *s, srv_slot *const *slots, int k) {
    if (!score_buffers(s)) {
        for (int i = 0; i < k; i++)
            slot_finish(s, slots[i], HEARTH_ERR_NOMEM, "out of memory while scoring the prompt",
                        NULL);
        return;
    }
    /* the pass's room shared out: fewer scoring slots take longer chunks */
    const int share = s->score_cap / k > SCHED_SCORE_CHUNK ? s->score_cap / k : SCHED_SCORE_CHUNK;
    const int chunk = share < s->score_cap ? share : s->score_cap;
    for (int first = 0; first < k;) {
        int e = 0, i = first;
        for (; i < k; i++) {
            srv_slot *sl = slots[i];
            const int left = sl->job->n_prompt - sl->n_scored;
            const int n = left < chunk ? left : chunk;
            if (e + n > s->score_cap) break;
            sl->score_at = e;
            sl->score_n = n;
            for (int t = 0; t < n; t++) {
                s->score_sessions[e + t] = sl->session;
                s->score_ids[e + t] = sl->job->prompt[sl->n_scored + t];
            }
            e += n;
        }
        score_pass(s, slots + first, i - first);
        first = i;
    }
}

/* max_tokens 0 (srv_job.prompt_only): the prompt is in the session, with
 * its last logits, for a later request that starts with it; the job ends
 * there, nothing sampled or fed. Its prompt time runs from admission (a
 * scored prompt was evaluated before its generation existed). */
static void slot_end_prompt(srv_sched *s, srv_slot *slot) {
    hearth_gen_result r;
    hearth_gen_get_result(slot->gen, &r);
    r.finish = HEARTH_FINISH_LENGTH;
    r.prompt_ms = srv_now_ms() - slot->admitted_ms;
    slot_finish(s, slot, HEARTH_OK, NULL, &r);
}

/* One step for one slot before the batched decode: start, stop checks and
 * sampling. Returns whether its generation has something to feed (a token,
 * or prompt left to evaluate). */
static bool slot_advance(srv_sched *s, srv_slot *slot) {
    if (slot->job->n_inputs > 0) {
        embed_advance(s, slot);
        return false;
    }
    if (!slot->started) {
        slot_start(s, slot);
        if (!slot->started) return false;
    }
    if (slot_should_stop(slot)) {
        hearth_gen_result r;
        hearth_gen_get_result(slot->gen, &r);
        r.finish = HEARTH_FINISH_CALLBACK;
        slot_finish(s, slot, HEARTH_OK, NULL, &r);
        return false;
    }
    if (hearth_gen_prompt_left(slot->gen) > 0) return true;
    if (slot->job->prompt_only) {
        slot_end_prompt(s, slot);
        return false;
    }
    int32_t token;
    hearth_err err = hearth_gen_next_token(slot->gen, &token);
    if (err) {
        slot_fail(s, slot, err);
        return false;
    }
    if (token >= 0) return true;
    hearth_gen_result r;
    hearth_gen_get_result(slot->gen, &r);
    slot_finish(s, slot, HEARTH_OK, NULL, &r);
    return false;
}

/* ---- slot actions ------------------------------------------------------------ */

/* One action on its idle slot (the scheduler thread, which admits no job
 * meanwhile): the session and the prefix mirror change together. */
static void action_run(srv_sched *s, srv_slot_action *a) {
    srv_slot *slot = &s->slots[a->slot];
    const double t0 = srv_now_ms();
    a->n_tokens = hearth_session_pos(slot->session);
    if (a->verb == SRV_SLOT_SAVE) {
        a->err = hearth_session_save(slot->session, a->path, &a->n_bytes);
    } else if (a->verb == SRV_SLOT_RESTORE) {
        a->err = hearth_session_load(slot->session, a->path, &a->n_bytes);
        if (!a->err) {
            a->n_tokens = hearth_session_pos(slot->session);
            /* what a prompt may reuse: up to a context shift's moved part */
            const int32_t *held = hearth_session_tokens(slot->session, &slot->n_cache);
            memcpy(slot->cache, held, (size_t)slot->n_cache * sizeof *slot->cache);
        }
    } else {
        a->err = hearth_session_truncate(slot->session, 0);
        slot->n_cache = 0;
    }
    if (a->err) snprintf(a->err_msg, sizeof a->err_msg, "%s", hearth_last_error());
    a->ms = srv_now_ms() - t0;
}

/* The waiting actions whose slots are idle, taken off the list (mu held)
 * and marked running; their own list, NULL when none. */
static srv_slot_action *actions_take(srv_sched *s) {
    srv_slot_action *taken = NULL;
    for (srv_slot_action **p = &s->actions; *p;) {
        srv_slot_action *a = *p;
        if (s->slots[a->slot].job) {
            p = &a->next;
            continue;
        }
        *p = a->next;
        a->state = SRV_ACTION_RUNNING;
        a->next = taken;
        taken = a;
    }
    return taken;
}

/* Runs the taken actions (without mu: a save or restore is a file's I/O),
 * then marks them done; their waiters may free them from then on. */
static void actions_run(srv_sched *s, srv_slot_action *acts) {
    for (srv_slot_action *a = acts; a; a = a->next) action_run(s, a);
    pthread_mutex_lock(&s->mu);
    for (srv_slot_action *a = acts, *next; a; a = next) {
        next = a->next;
        a->state = SRV_ACTION_DONE;
    }
    pthread_cond_broadcast(&s->action_cv);
    pthread_mutex_unlock(&s->mu);
}

bool srv_sched_slot_action(srv_sched *s, srv_slot_action *a, bool (*give_up)(void *user),
                           void *user) {
    pthread_mutex_lock(&s->mu);
    a->state = SRV_ACTION_WAITING;
    a->next = s->actions;
    s->actions = a;
    pthread_cond_signal(&s->cv);
    bool ran = true;
    while (a->state != SRV_ACTION_DONE) {
        if (a->state == SRV_ACTION_WAITING &&
            (s->stop || give_up(user))) { /* not started: withdrawn */
            for (srv_slot_action **p = &s->actions; *p; p = &(*p)->next)
                if (*p == a) {
                    *p = a->next;
                    break;
                }
            ran = false;
            break;
        }
        srv_wait_ms(&s->action_cv, &s->mu, 100);
    }
    pthread_mutex_unlock(&s->mu);
    return ran;
}

int srv_sched_n_slots(const srv_sched *s) { return s->n_slots; }

static void *sched_main(void *arg) {
    srv_sched *s = arg;
    hearth_gen **gens = s->step_gens;
    srv_slot **fed = s->step_slots, **scoring = s->score_slots;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stop && s->q_len == 0 && s->n_busy == 0 && !s->actions)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop && s->n_busy == 0) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        /* an idle slot's actions run before admission can give it a job;
         * the next round admits */
        srv_slot_action *acts = s->stop ? NULL : actions_take(s);
        if (!s->stop && !acts) admit_locked(s);
        pthread_mutex_unlock(&s->mu);
        if (acts) {
            actions_run(s, acts);
            continue;
        }
        /* Slots with a job are touched only by this thread from here on
         * (admission, the only other writer of slot->job, runs here too). */
        int n = 0, n_tokens = 0, n_scoring = 0;
        for (int i = 0; i < s->n_slots; i++) {
            srv_slot *sl = &s->slots[i];
            if (!sl->job) continue;
            if (slot_scoring(sl)) {
                if (score_begin(s, sl)) scoring[n_scoring++] = sl;
            } else if (slot_advance(s, sl)) {
                n_tokens += hearth_gen_prompt_left(sl->gen) == 0;
                gens[n] = sl->gen;
                fed[n++] = sl;
            }
        }
        if (n_scoring > 0) score_step(s, scoring, n_scoring);
        if (n == 0) continue;
        hearth_err err = hearth_gen_step(gens, n, SCHED_PREFILL_CHUNK);
        if (err)
            for (int i = 0; i < n; i++) slot_fail(s, fed[i], err);
        else if (n_tokens > 0)
            srv_metrics_step(s->metrics, n_tokens);
    }
    return NULL;
}

hearth_err srv_sched_new(hearth_model *m, int n_slots, const hearth_session_params *slot,
                         int queue_max, const srv_spec *spec, srv_metrics *metrics,
                         srv_sched **out) {
    if (n_slots < 1 || n_slots > 256 || queue_max < 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: %d slots and a queue of %d", n_slots,
                       queue_max);
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) return hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    s->model = m;
    s->metrics = metrics;
    if (spec) s->spec = *spec;
    s->n_slots = n_slots;
    s->queue_max = queue_max;
    s->q_cap = queue_max + n_slots;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->action_cv, NULL);
    s->slots = calloc((size_t)n_slots, sizeof *s->slots);
    s->queue = calloc((size_t)s->q_cap, sizeof *s->queue);
    s->step_gens = calloc((size_t)n_slots, sizeof *s->step_gens);
    s->step_slots = calloc((size_t)n_slots, sizeof *s->step_slots);
    s->score_slots = calloc((size_t)n_slots, sizeof *s->score_slots);
    /* a scoring pass's entries: at most a chunk a slot */
    s->score_sessions = calloc((size_t)n_slots * SCHED_SCORE_CHUNK, sizeof *s->score_sessions);
    s->score_ids = calloc((size_t)n_slots * SCHED_SCORE_CHUNK, sizeof *s->score_ids);
    hearth_err err = s->slots && s->queue && s->step_gens && s->step_slots && s->score_slots &&
                             s->score_sessions && s->score_ids
                         ? HEARTH_OK
                         : hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    hearth_session_params sp = *slot;
    sp.n_seq_max = n_slots; /* a step's logits in one output product */
    for (int i = 0; !err && i < n_slots; i++) {
        srv_slot *sl = &s->slots[i];
        sl->sched = s;
        sl->index = i;
        err = hearth_session_new(m, &sp, &sl->session);
        if (!err && s->spec.draft && s->spec.n_max > 0) {
            hearth_session_params dp = sp;
            dp.n_seq_max = 1;
            err = hearth_session_new(s->spec.draft, &dp, &sl->draft);
        }
        if (err) break;
        s->n_ctx = hearth_session_n_ctx(sl->session);
        sl->cache = malloc((size_t)s->n_ctx * sizeof *sl->cache);
        if (!sl->cache) err = hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    }
    if (!err) {
        if (pthread_create(&s->thread, NULL, sched_main, s) != 0)
            err = hr_fail(HEARTH_ERR_NOMEM, "server: cannot start the scheduler thread");
        else
            s->thread_started = true;
    }
    if (err) {
        srv_sched_free(s);
        return err;
    }
    *out = s;
    return HEARTH_OK;
}

void srv_sched_shutdown(srv_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    while (s->q_len > 0) {
        srv_job *j = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_len--;
        job_finish_unrun(j, HEARTH_ERR_INVALID_ARG, "the server is shutting down");
        srv_job_release(j);
    }
    for (int i = 0; s->slots && i < s->n_slots; i++)
        if (s->slots[i].job) atomic_store(&s->slots[i].job->cancel, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_free(srv_sched *s) {
    if (!s) return;
    srv_sched_shutdown(s);
    if (s->thread_started) pthread_join(s->thread, NULL);
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        srv_slot *sl = &s->slots[i];
        hearth_gen_free(sl->gen);
        hearth_sampler_free(sl->smp);
        hearth_session_free(sl->session);
        hearth_session_free(sl->draft);
        free(sl->cache);
    }
    free(s->score_slots);
    free(s->score_sessions);
    free(s->score_ids);
    free(s->score_logits);
    free(s->slots);
    free(s->queue);
    free(s->step_gens);
    free(s->step_slots);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->action_cv);
    free(s);
}

int srv_sched_n_ctx(const srv_sched *s) { return s->n_ctx; }

uint64_t srv_sched_kv_bytes(const srv_sched *s) {
    return (uint64_t)s->n_slots * hearth_session_memory(s->slots[0].session).kv_bytes;
}

void srv_sched_stats(srv_sched *s, int *queued, int *busy, int *slots) {
    pthread_mutex_lock(&s->mu);
    *queued = s->q_len;
    *busy = s->n_busy;
    *slots = s->n_slots;
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_slots_json(srv_sched *s, struct cJSON *arr, const char *model) {
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_slots; i++) {
        const srv_job *j = s->slots[i].job;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddNumberToObject(o, "n_ctx", s->n_ctx);
        cJSON_AddBoolToObject(o, "is_processing", j != NULL);
        if (j) {
            srv_job *jm = (srv_job *)j; /* its mu guards the counts */
            pthread_mutex_lock(&jm->mu);
            int decoded = 0;
            for (int k = 0; k < j->n_events; k++) decoded += j->events[k].id >= 0;
            pthread_mutex_unlock(&jm->mu);
            cJSON_AddNumberToObject(o, "n_prompt_tokens", j->n_prompt);
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "next_token"), "n_decoded", decoded);
            cJSON_AddBoolToObject(o, "embedding", j->n_inputs > 0);
        }
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&s->mu);
}

int srv_sched_capacity(const srv_sched *s) { return s->n_slots + s->queue_max; }

bool srv_sched_submit_n(srv_sched *s, srv_job *const *jobs, int n) {
    pthread_mutex_lock(&s->mu);
    /* Free slots take queued jobs at the next step: they are extra room. */
    const bool full = s->stop || s->q_len + n > s->queue_max + (s->n_slots - s->n_busy);
    for (int i = 0; !full && i < n; i++) {
        srv_job *j = jobs[i];
        pthread_mutex_lock(&j->mu);
        j->refs++;
        j->state = SRV_JOB_QUEUED;
        pthread_mutex_unlock(&j->mu);
        s->queue[(s->q_head + s->q_len) % s->q_cap] = j;
        s->q_len++;
    }
    if (!full) pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return !full;
}

bool srv_sched_submit(srv_sched *s, srv_job *j) { return srv_sched_submit_n(s, &j, 1); }

void srv_sched_cancel(srv_sched *s, srv_job *j) {
    atomic_store(&j->cancel, true);
    bool was_queued = false;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->q_len; i++) {
        const int at = (s->q_head + i) % s->q_cap;
        if (s->queue[at] != j) continue;
        for (int k = i; k + 1 < s->q_len; k++)
            s->queue[(s->q_head + k) % s->q_cap] = s->queue[(s->q_head + k + 1) % s->q_cap];
        s->q_len--;
        was_queued = true;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    if (was_queued) {
        job_finish_unrun(j, HEARTH_OK, NULL);
        srv_job_release(j);
    }
}
