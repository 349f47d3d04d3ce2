/*
 * pool.c - a fixed pool of worker threads for data-parallel kernels.
 *
 * Generation runs hundreds of small matrix products per token, so handing a
 * job to the workers must cost far less than a mutex round trip: the caller
 * publishes the job by bumping an atomic generation counter and workers that
 * are spinning see it at once. A worker that has seen no job for a while goes
 * to sleep on a condition variable; the caller only takes the mutex to wake
 * sleepers when there are some (the seq_cst pair gen/n_sleeping guarantees a
 * worker about to sleep either sees the new generation or is counted).
 *
 * The parts of a job are claimed, not assigned: the caller runs part 0, then
 * every thread takes the next unclaimed part from an atomic counter until
 * none is left. When a worker is not running (the machine has more runnable
 * threads than cores, as when other builds share it), the caller takes its
 * part instead of waiting a scheduler time slice for it; the caller only
 * waits for parts that were claimed and are still running. A worker that
 * claims late may find a newer job's counter: it then runs a part of that
 * job, which is as good (job and ctx are published before the counter).
 */
#include "core.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define POOL_PAUSE() __asm__ __volatile__("yield")
#else
#define POOL_PAUSE() ((void)0)
#endif

/* Spin this long for the next job before sleeping; when the machine has
 * more runnable threads than cores, a waiter yields after POOL_YIELD_AFTER
 * spins so that the thread it waits for can run. */
enum { POOL_SPIN_ITERS = 1 << 16, POOL_YIELD_AFTER = 1 << 10 };

static void pool_backoff(int *spins) {
    if (++*spins < POOL_YIELD_AFTER)
        POOL_PAUSE();
    else
        sched_yield();
}

typedef struct pool_worker {
    hr_pool *pool;
    int ith;
    pthread_t thread;
} pool_worker;

struct hr_pool {
    int n_threads;
    pool_worker *workers; /* n_threads - 1 of them; the caller is thread 0 */
    hr_pool_job job;
    void *ctx;
    atomic_uint_fast64_t gen; /* bumped once per job */
    atomic_int next_part;     /* the next part of the current job to claim */
    atomic_int done;          /* parts 1.. of the current job that have finished */
    atomic_int n_sleeping;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* Runs unclaimed parts of the current job until there are none. */
static void pool_claim_parts(hr_pool *p) {
    for (;;) {
        const int i = atomic_fetch_add_explicit(&p->next_part, 1, memory_order_acq_rel);
        if (i >= p->n_threads) return;
        p->job(p->ctx, i, p->n_threads);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

static void *pool_main(void *arg) {
    pool_worker *w = arg;
    hr_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load(&p->gen);
        for (int i = 0, spins = 0; g == seen && i < POOL_SPIN_ITERS; i++) {
            pool_backoff(&spins);
            g = atomic_load(&p->gen);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = g;
        pool_claim_parts(p);
    }
    return NULL;
}

hearth_err hr_pool_new(int n_threads, hr_pool **out) {
    if (n_threads < 1) n_threads = hr_cpu_cores();
    if (n_threads > 256)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "thread count %d is over 256", n_threads);
    hr_pool *p = hr_calloc(1, sizeof *p);
    if (!p) return HEARTH_ERR_NOMEM;
    p->n_threads = n_threads;
    atomic_init(&p->next_part, n_threads); /* nothing to claim before the first job */
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = hr_calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            hr_pool_free(p);
            return HEARTH_ERR_NOMEM;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        pool_worker *w = &p->workers[i - 1];
        w->pool = p;
        w->ith = i;
        if (pthread_create(&w->thread, NULL, pool_main, w) != 0) {
            p->n_threads = i; /* only the started ones get joined */
            hr_pool_free(p);
            return hr_fail(HEARTH_ERR_NOMEM, "cannot start worker thread %d", i);
        }
    }
    *out = p;
    return HEARTH_OK;
}

void hr_pool_free(hr_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1].thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int hr_pool_size(const hr_pool *p) { return p ? p->n_threads : 1; }

void hr_pool_run(hr_pool *p, hr_pool_job job, void *ctx) {
    if (!p || p->n_threads == 1) {
        job(ctx, 0, 1);
        return;
    }
    /* The previous job's parts have all finished (done was n - 1), so no
     * thread touches job, ctx or done until next_part opens the new one. */
    p->job = job;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->next_part, 1, memory_order_release);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    job(ctx, 0, p->n_threads);
    pool_claim_parts(p);
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n_threads - 1)
        pool_backoff(&spins);
}
