#include "threads.h"

#include <string.h>

#ifndef __wasm__
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RELAX() _mm_pause()
#else
#define RELAX() ((void)0)
#endif

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spins until cond(p) holds or spin_ns passed; returns whether it holds. */
#define SPIN_UNTIL(p, cond)                                                   \
    ({                                                                        \
        long long t0_ = 0;                                                    \
        int ok_ = 0;                                                          \
        for (unsigned s_ = 1;; s_++) {                                        \
            if (cond) { ok_ = 1; break; }                                     \
            RELAX();                                                          \
            if (s_ % 256) continue;                                           \
            if (!t0_) t0_ = now_ns();                                         \
            else if (now_ns() - t0_ > (p)->spin_ns) break;                    \
        }                                                                     \
        ok_;                                                                  \
    })

/* Claims and runs shares of generation g until none is left. */
static void run_shares(qa_pool *p, unsigned long long g, int t) {
    int n = p->n_shares;
    unsigned long long w = atomic_load_explicit(&p->work, memory_order_acquire);
    while (w >> 32 == g && (int)(w & 0xffffffffu) < n) {
        if (!atomic_compare_exchange_weak(&p->work, &w, w + 1)) continue; /* w reloaded */
        p->fn(p->ctx, (int)(w & 0xffffffffu), n, t); /* fn, ctx stay until every share is done */
        /* the last share wakes a sleeping caller: done and waiting are seq_cst on both
         * sides, so either the caller sees done == n or this sees it waiting */
        if (atomic_fetch_add(&p->done, 1) == n - 1 && atomic_load(&p->waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
        w = atomic_load_explicit(&p->work, memory_order_acquire);
    }
}

static void *worker(void *arg) {
    qa_pool *p = ((qa_worker_arg *)arg)->pool;
    int t = ((qa_worker_arg *)arg)->index;
    unsigned long long seen = 0, g;
    for (;;) {
        if (!SPIN_UNTIL(p, (g = atomic_load_explicit(&p->work, memory_order_acquire) >> 32) != seen)) {
            /* sleep; sleepers and work are seq_cst on both sides (Dekker): either this sees
             * the new generation, or the caller sees a sleeper and broadcasts under mu */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->work) >> 32) == seen) pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load(&p->stop)) return NULL;
        run_shares(p, g, t);
    }
}

/* Publishes generation gen with shares from `next` on, and wakes sleeping workers. */
static void publish(qa_pool *p, int next) {
    atomic_store(&p->work, (unsigned long long)p->gen << 32 | (unsigned)next);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}
#endif

int qa_pool_start(qa_pool *p, int n_threads) {
    memset(p, 0, sizeof *p);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > QA_MAX_THREADS) n_threads = QA_MAX_THREADS;
    p->n_threads = 1;
#ifndef __wasm__
    if (n_threads > 1) {
        atomic_init(&p->work, 0);
        atomic_init(&p->sleepers, 0);
        atomic_init(&p->stop, 0);
        atomic_init(&p->done, 0);
        atomic_init(&p->waiting, 0);
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
        pthread_cond_init(&p->cv_done, NULL);
        p->spin_ns = QA_POOL_SPIN_NS;
        p->started = 1;
        for (int i = 1; i < n_threads; i++) {
            p->args[i].pool = p;
            p->args[i].index = i;
            if (pthread_create(&p->th[i], NULL, worker, &p->args[i]) != 0) break;
            p->n_threads = i + 1; /* shares only for workers that exist (none run yet) */
            p->n_shares = QA_POOL_SHARES * p->n_threads;
        }
    }
#else
    (void)n_threads;
#endif
    return p->n_threads;
}

void qa_pool_stop(qa_pool *p) {
#ifndef __wasm__
    if (!p->started) return;
    atomic_store(&p->stop, 1);
    p->gen++;
    publish(p, p->n_shares); /* a generation with nothing to claim */
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->cv_done);
    p->started = 0;
#endif
    p->n_threads = 1;
}

void qa_pool_run(qa_pool *p, qa_task_fn fn, void *ctx) {
    if (!p || p->n_threads <= 1) {
        fn(ctx, 0, 1, 0);
        return;
    }
#ifndef __wasm__
    int n = p->n_shares;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    p->gen++;
    publish(p, 0); /* seq_cst store: workers that claim a share see fn, ctx and done */
    run_shares(p, p->gen, 0);
    if (!SPIN_UNTIL(p, atomic_load_explicit(&p->done, memory_order_acquire) == n)) {
        /* a worker was descheduled inside its share: sleep until it is done */
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->waiting, 1);
        while (atomic_load(&p->done) < n) pthread_cond_wait(&p->cv_done, &p->mu);
        atomic_store(&p->waiting, 0);
        pthread_mutex_unlock(&p->mu);
    }
#endif
}
