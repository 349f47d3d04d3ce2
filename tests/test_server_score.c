/*
 * test_server_score.c - the scheduler's prompt scoring (echo with logprobs,
 * what lm-evaluation-harness's loglikelihood asks) with several slots
 * scoring at once, their chunks in one forward pass (sched.c score_step),
 * driven through srv_sched directly (tiny-llama from ../shared/conformance,
 * else a synthetic model):
 *  - six prompts of different lengths (longer than a scoring chunk, so the
 *    slots' chunks are misaligned, and more prompts than slots, so some
 *    join while others score) on 4 slots: every prompt token's logprob and
 *    best alternative equal the library's (the prompt alone through
 *    hearth_decode with every row), within the float tolerance of a
 *    batched pass (rows of hearth_decode_multi may differ from a lone
 *    decode's in the last bits; 1e-3 as test_server_echo);
 *  - one bad prompt among good ones (an id outside the vocabulary: the
 *    batched pass refuses it before changing anything) ends with its own
 *    error; the others score as alone;
 *  - a job whose time ran out before it scored ends (timed out, no error)
 *    without disturbing the others.
 */
#include "test.h"

#include "server/model_fixture.h"
#include "server/server.h"

#include <math.h>
#include <unistd.h>

enum { SLOTS = 4, N_CTX = 256, N_TOP = 2, MAX_JOBS = 8 };

static char scratch[] = "/tmp/hearth_srv_score_XXXXXX";
static hearth_model *model;
static int n_vocab;

/* A prompt of n ids (BOS, then a pattern that differs by seed). */
static void make_prompt(int32_t *ids, int n, int seed) {
    ids[0] = hearth_token_bos(model);
    for (int t = 1; t < n; t++) ids[t] = (int32_t)((200 + 31 * t + 97 * seed + t * t) % n_vocab);
}

static srv_job *score_job(const int32_t *ids, int n) {
    srv_job *j = srv_job_new(ids, n);
    REQUIRE(j);
    j->sampling = hearth_sampling_default_params();
    j->sampling.temperature = 0.0f;
    j->max_tokens = 1;
    j->n_top = N_TOP;
    j->score_prompt = true;
    return j;
}

static void wait_done(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    while (j->state != SRV_JOB_DONE) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

/* The job's prompt logprobs against the library's rows for its prompt
 * alone; returns the number of tokens that differ. */
static int check_scores(const srv_job *j, const char *what) {
    hearth_session *s = NULL;
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = N_CTX;
    REQUIRE(hearth_session_new(model, &sp, &s) == HEARTH_OK);
    float *rows = malloc((size_t)j->n_prompt * (size_t)n_vocab * sizeof *rows);
    REQUIRE(rows);
    REQUIRE(hearth_decode(s, j->prompt, j->n_prompt, rows, true) == HEARTH_OK);
    int bad = 0;
    CHECKF(j->prompt_events && j->prompt_events[0].id == j->prompt[0] &&
               j->prompt_events[0].n_top == 0,
           "%s: the first token has no logprob", what);
    for (int t = 1; j->prompt_events && t < j->n_prompt; t++) {
        const srv_event *e = &j->prompt_events[t];
        float want;
        hearth_token_logprob top[N_TOP];
        int n_top = 0;
        REQUIRE(hearth_logprobs(model, rows + (size_t)(t - 1) * (size_t)n_vocab, j->prompt[t],
                                N_TOP, &want, top, &n_top) == HEARTH_OK);
        const bool ok = e->id == j->prompt[t] && fabsf(e->logprob - want) <= 1e-3f &&
                        e->n_top == n_top && fabsf(e->top[0].logprob - top[0].logprob) <= 1e-3f;
        if (!ok && bad++ < 3)
            printf("%s: token %d (id %d): logprob %g, library %g; best %g, library %g\n", what, t,
                   e->id, e->logprob, want, e->n_top ? e->top[0].logprob : NAN, top[0].logprob);
    }
    CHECKF(bad == 0, "%s: %d of %d tokens' logprobs differ from the library's", what, bad,
           j->n_prompt - 1);
    free(rows);
    hearth_session_free(s);
    return bad;
}

/* Submits jobs[0..n) together (as one request's prompts) and waits for
 * them all. */
static void run_all(srv_sched *s, srv_job *const *jobs, int n) {
    REQUIRE(srv_sched_submit_n(s, jobs, n));
    for (int i = 0; i < n; i++) wait_done(jobs[i]);
}

static void test_batch(srv_sched *s) {
    static const int lens[] = {70, 5, 100, 33, 64, 41};
    enum { N = sizeof lens / sizeof *lens };
    srv_job *jobs[N];
    int32_t ids[128];
    for (int i = 0; i < N; i++) {
        make_prompt(ids, lens[i], i);
        jobs[i] = score_job(ids, lens[i]);
    }
    run_all(s, jobs, N);
    for (int i = 0; i < N; i++) {
        char what[64];
        snprintf(what, sizeof what, "batch prompt %d (%d tokens)", i, lens[i]);
        CHECKF(jobs[i]->err == HEARTH_OK, "%s: %s", what, jobs[i]->err_msg);
        CHECKF(jobs[i]->n_events >= 1, "%s: %d generated events", what, jobs[i]->n_events);
        check_scores(jobs[i], what);
        srv_job_release(jobs[i]);
    }
}

/* A bad prompt (its last id outside the vocabulary) and a job out of time
 * among good ones: each ends alone. */
static void test_failures_apart(srv_sched *s) {
    enum { N = 4 };
    srv_job *jobs[N];
    int32_t ids[64];
    for (int i = 0; i < N; i++) {
        make_prompt(ids, 40 + i, 10 + i);
        if (i == 1) ids[39] = n_vocab;
        jobs[i] = score_job(ids, 40 + i);
    }
    jobs[3]->deadline_ms = srv_now_ms() - 1.0;
    run_all(s, jobs, N);
    CHECKF(jobs[1]->err == HEARTH_ERR_INVALID_ARG && strstr(jobs[1]->err_msg, "vocabulary"),
           "bad prompt: error %d '%s'", jobs[1]->err, jobs[1]->err_msg);
    CHECKF(jobs[3]->err == HEARTH_OK && jobs[3]->timed_out, "out of time: error %d, timed out %d",
           jobs[3]->err, jobs[3]->timed_out);
    for (int i = 0; i < N; i++) {
        if (i == 0 || i == 2) {
            char what[64];
            snprintf(what, sizeof what, "beside a failure, prompt %d", i);
            CHECKF(jobs[i]->err == HEARTH_OK, "%s: %s", what, jobs[i]->err_msg);
            check_scores(jobs[i], what);
        }
        srv_job_release(jobs[i]);
    }
}

int main(void) {
    const int fd = mkstemp(scratch);
    REQUIRE(fd >= 0);
    close(fd);
    const char *path = fixture_model(scratch);
    REQUIRE(path);
    if (!strstr(path, "conformance"))
        printf("test_server_score: no ../shared/conformance (HEARTH_SHARED_DIR); a synthetic model "
               "with random weights instead\n");
    REQUIRE(hearth_model_load(path, NULL, &model) == HEARTH_OK);
    n_vocab = hearth_model_n_vocab(model);
    srv_metrics metrics;
    srv_metrics_init(&metrics);
    srv_sched *s = NULL;
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = N_CTX;
    REQUIRE(srv_sched_new(model, SLOTS, &sp, MAX_JOBS, NULL, &metrics, &s) == HEARTH_OK);
    test_batch(s);
    test_failures_apart(s);
    test_batch(s); /* again, on slots that hold other prompts */
    srv_sched_free(s);
    srv_metrics_fini(&metrics);
    hearth_model_free(model);
    unlink(scratch);
    return test_done("test_server_score");
}
