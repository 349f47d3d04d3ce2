/*
 * sched.c - slots, the bounded queue and the engine turn.
 *
 * A slot is a hearth_session (its own KV cache) with a thread that runs one
 * job at a time through hearth_generate. hearth_generate is blocking and a
 * model's sessions may be used from one thread at a time, so the slot
 * threads take turns: a fair ticket lock (the "engine turn") is held while a
 * thread is inside the engine, and the token callback hands the turn to the
 * next waiting slot after every token. With N busy slots the engine thus
 * advances them round-robin, one token each; a prompt's prefill runs in one
 * turn. (Decoding the slots' tokens together in one batch needs a step-wise,
 * multi-sequence API in the engine; this is the place that would call it.)
 *
 * Jobs wait in a FIFO of queue_max entries while every slot is busy. A free
 * slot takes the queue's head; a new job goes to the idle slot whose last
 * tokens share the longest prefix with its prompt (ties: least recently
 * used), so a conversation's next turn usually finds its KV cache and
 * hearth_generate re-evaluates only the new suffix.
 *
 * Locks: sched.mu guards the queue and the slots' job pointers; job.mu guards
 * a job's output; turn.mu the turn. A thread never takes sched.mu while
 * holding job.mu.
 */
#include "server.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double srv_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the engine turn: a fair ticket lock with hand-over ------------------- */

typedef struct srv_turn {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next, serving;
} srv_turn;

static void turn_acquire(srv_turn *t) {
    pthread_mutex_lock(&t->mu);
    const uint64_t me = t->next++;
    while (t->serving != me) pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

static void turn_release(srv_turn *t) {
    pthread_mutex_lock(&t->mu);
    t->serving++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Lets every thread already waiting go first; returns at once when none is. */
static void turn_yield(srv_turn *t) {
    pthread_mutex_lock(&t->mu);
    if (t->next != t->serving + 1) {
        const uint64_t me = t->next++;
        t->serving++;
        pthread_cond_broadcast(&t->cv);
        while (t->serving != me) pthread_cond_wait(&t->cv, &t->mu);
    }
    pthread_mutex_unlock(&t->mu);
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
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancel, false);
    j->refs = 1;
    return j;
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->text);
    free(j->events);
    free(j);
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
}

/* Appends one event; false when out of memory. Called with j->mu held. */
static bool job_append(srv_job *j, const hearth_token_event *ev) {
    if (j->n_events == j->cap_events) {
        const int cap = j->cap_events ? j->cap_events * 2 : 64;
        srv_event *ne = realloc(j->events, (size_t)cap * sizeof *ne);
        if (!ne) return false;
        j->events = ne;
        j->cap_events = cap;
    }
    if (j->text_len + ev->len + 1 > j->text_cap) {
        size_t cap = j->text_cap ? j->text_cap : 1024;
        while (cap < j->text_len + ev->len + 1) cap *= 2;
        char *nt = realloc(j->text, cap);
        if (!nt) return false;
        j->text = nt;
        j->text_cap = cap;
    }
    srv_event *e = &j->events[j->n_events++];
    e->id = ev->id;
    e->logprob = ev->logprob;
    e->n_top = ev->n_top < j->n_top ? ev->n_top : j->n_top;
    for (int i = 0; i < e->n_top; i++) e->top[i] = ev->top[i];
    e->text_off = j->text_len;
    e->text_len = ev->len;
    memcpy(j->text + j->text_len, ev->text, ev->len);
    j->text_len += ev->len;
    j->text[j->text_len] = '\0';
    return true;
}

/* ---- slots ----------------------------------------------------------------- */

typedef struct srv_slot {
    srv_sched *sched;
    int index;
    hearth_session *session;
    pthread_t thread;
    bool started;
    pthread_cond_t cv; /* with sched.mu: a job was assigned, or stop */
    srv_job *job;      /* guarded by sched.mu */
    int32_t *cache;    /* the tokens the session holds (written by the slot's thread) */
    int n_cache;
    uint64_t last_used;
} srv_slot;

struct srv_sched {
    hearth_model *model;
    srv_metrics *metrics;
    int n_slots, n_ctx, queue_max;
    srv_slot *slots;
    pthread_mutex_t mu;
    srv_job **queue; /* ring of max(queue_max, 1) */
    int q_head, q_len, q_cap;
    int n_busy;
    bool stop;
    uint64_t clock;
    srv_turn turn;
};

typedef struct gen_ctx {
    srv_sched *sched;
    srv_slot *slot;
    srv_job *job;
    int n_gen_ids;
    bool oom;
} gen_ctx;

static bool on_token(const hearth_token_event *ev, void *user) {
    gen_ctx *g = user;
    srv_job *j = g->job;
    pthread_mutex_lock(&j->mu);
    if (!job_append(j, ev)) g->oom = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    /* The cache mirror: prompt, then the generated ids (room for n_ctx). */
    if (ev->id >= 0 && j->n_prompt + g->n_gen_ids < g->sched->n_ctx)
        g->slot->cache[j->n_prompt + g->n_gen_ids++] = ev->id;
    if (g->oom || atomic_load(&j->cancel)) return false;
    if (j->deadline_ms > 0 && srv_now_ms() > j->deadline_ms) {
        pthread_mutex_lock(&j->mu);
        j->timed_out = true;
        pthread_mutex_unlock(&j->mu);
        return false;
    }
    turn_yield(&g->sched->turn);
    return true;
}

static void run_job(srv_slot *slot, srv_job *j) {
    srv_sched *s = slot->sched;
    pthread_mutex_lock(&j->mu);
    const bool cancelled = atomic_load(&j->cancel);
    j->state = cancelled ? SRV_JOB_DONE : SRV_JOB_RUNNING;
    if (cancelled) {
        j->result.finish = HEARTH_FINISH_CALLBACK;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    if (cancelled) return;

    hearth_gen_params gp = {.max_tokens = j->max_tokens,
                            .stop = (const char *const *)j->stop,
                            .n_stop = j->n_stop,
                            .n_top_logprobs = j->n_top};
    hearth_gen_result r = {0};
    gen_ctx g = {.sched = s, .slot = slot, .job = j};
    hearth_sampler *smp = NULL;
    /* The mirror is stale while the engine works; it is rebuilt below. */
    const int n_keep = j->n_prompt < s->n_ctx ? j->n_prompt : s->n_ctx;
    memcpy(slot->cache, j->prompt, (size_t)n_keep * sizeof *slot->cache);
    hearth_err err = hearth_sampler_new(s->model, &j->sampling, &smp);
    char msg[256] = "";
    if (!err) {
        turn_acquire(&s->turn);
        err = hearth_generate(slot->session, smp, j->prompt, j->n_prompt, &gp, on_token, &g, &r);
        if (err) snprintf(msg, sizeof msg, "%s", hearth_last_error());
        const int pos = hearth_session_pos(slot->session);
        if (err) hearth_session_truncate(slot->session, 0);
        turn_release(&s->turn);
        slot->n_cache = err ? 0 : pos < n_keep + g.n_gen_ids ? pos : n_keep + g.n_gen_ids;
    } else {
        snprintf(msg, sizeof msg, "%s", hearth_last_error());
    }
    hearth_sampler_free(smp);
    if (!err && g.oom) {
        err = HEARTH_ERR_NOMEM;
        snprintf(msg, sizeof msg, "out of memory while collecting the output");
    }
    pthread_mutex_lock(&j->mu);
    j->result = r;
    j->err = err;
    snprintf(j->err_msg, sizeof j->err_msg, "%s", msg);
    j->state = SRV_JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (!err) srv_metrics_tokens(s->metrics, r.n_prompt + r.n_cached, r.n_cached, r.n_gen);
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* Starts queued jobs on idle slots. Called with s->mu held. */
static void dispatch_locked(srv_sched *s) {
    while (s->q_len > 0 && s->n_busy < s->n_slots) {
        srv_job *j = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_len--;
        srv_slot *best = NULL;
        int best_len = -1;
        for (int i = 0; i < s->n_slots; i++) {
            srv_slot *sl = &s->slots[i];
            if (sl->job) continue;
            const int k = common_prefix(sl->cache, sl->n_cache, j->prompt, j->n_prompt);
            if (k > best_len || (k == best_len && sl->last_used < best->last_used)) {
                best = sl;
                best_len = k;
            }
        }
        best->job = j;
        s->n_busy++;
        pthread_cond_signal(&best->cv);
    }
}

static void *slot_main(void *arg) {
    srv_slot *slot = arg;
    srv_sched *s = slot->sched;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!slot->job && !s->stop) pthread_cond_wait(&slot->cv, &s->mu);
        srv_job *j = slot->job;
        pthread_mutex_unlock(&s->mu);
        if (!j) break; /* stopping */
        run_job(slot, j);
        pthread_mutex_lock(&s->mu);
        slot->job = NULL;
        slot->last_used = ++s->clock;
        s->n_busy--;
        if (!s->stop) dispatch_locked(s);
        pthread_mutex_unlock(&s->mu);
        srv_job_release(j); /* the scheduler's reference */
    }
    return NULL;
}

hearth_err srv_sched_new(hearth_model *m, int n_slots, int n_ctx, int queue_max,
                         srv_metrics *metrics, srv_sched **out) {
    if (n_slots < 1 || n_slots > 256 || queue_max < 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: %d slots and a queue of %d", n_slots,
                       queue_max);
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) return hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    s->model = m;
    s->metrics = metrics;
    s->n_slots = n_slots;
    s->queue_max = queue_max;
    s->q_cap = queue_max > 0 ? queue_max : 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->turn.mu, NULL);
    pthread_cond_init(&s->turn.cv, NULL);
    s->slots = calloc((size_t)n_slots, sizeof *s->slots);
    s->queue = calloc((size_t)s->q_cap, sizeof *s->queue);
    hearth_err err =
        s->slots && s->queue ? HEARTH_OK : hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    for (int i = 0; !err && i < n_slots; i++) {
        srv_slot *sl = &s->slots[i];
        sl->sched = s;
        sl->index = i;
        pthread_cond_init(&sl->cv, NULL);
        err = hearth_session_new(m, &sp, &sl->session);
        if (err) break;
        s->n_ctx = hearth_session_n_ctx(sl->session);
        sl->cache = malloc((size_t)s->n_ctx * sizeof *sl->cache);
        if (!sl->cache) err = hr_fail(HEARTH_ERR_NOMEM, "server: out of memory");
    }
    for (int i = 0; !err && i < n_slots; i++) {
        if (pthread_create(&s->slots[i].thread, NULL, slot_main, &s->slots[i]) != 0)
            err = hr_fail(HEARTH_ERR_NOMEM, "server: cannot start slot thread %d", i);
        else
            s->slots[i].started = true;
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
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        if (s->slots[i].job) atomic_store(&s->slots[i].job->cancel, true);
        pthread_cond_signal(&s->slots[i].cv);
    }
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_free(srv_sched *s) {
    if (!s) return;
    srv_sched_shutdown(s);
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        srv_slot *sl = &s->slots[i];
        if (sl->started) pthread_join(sl->thread, NULL);
        hearth_session_free(sl->session);
        free(sl->cache);
        pthread_cond_destroy(&sl->cv);
    }
    free(s->slots);
    free(s->queue);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->turn.mu);
    pthread_cond_destroy(&s->turn.cv);
    free(s);
}

int srv_sched_n_ctx(const srv_sched *s) { return s->n_ctx; }

void srv_sched_stats(srv_sched *s, int *queued, int *busy, int *slots) {
    pthread_mutex_lock(&s->mu);
    *queued = s->q_len;
    *busy = s->n_busy;
    *slots = s->n_slots;
    pthread_mutex_unlock(&s->mu);
}

bool srv_sched_submit(srv_sched *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    const bool full = s->stop || (s->n_busy == s->n_slots && s->q_len >= s->queue_max);
    if (!full) {
        pthread_mutex_lock(&j->mu);
        j->refs++;
        j->state = SRV_JOB_QUEUED;
        pthread_mutex_unlock(&j->mu);
        s->queue[(s->q_head + s->q_len) % s->q_cap] = j;
        s->q_len++;
        dispatch_locked(s);
    }
    pthread_mutex_unlock(&s->mu);
    return !full;
}

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
