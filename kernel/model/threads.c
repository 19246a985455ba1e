#include "threads.h"

#include <string.h>

#ifndef __wasm__
static void *worker(void *arg) {
    qa_pool *p = ((qa_worker_arg *)arg)->pool;
    int i = ((qa_worker_arg *)arg)->index;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->stop) pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        qa_task_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, i, p->n_threads);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->cv_done);
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
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv_work, NULL);
        pthread_cond_init(&p->cv_done, NULL);
        p->started = 1;
        for (int i = 1; i < n_threads; i++) {
            p->args[i].pool = p;
            p->args[i].index = i;
            if (pthread_create(&p->th[i], NULL, worker, &p->args[i]) != 0) break;
            p->n_threads = i + 1;
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
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    p->started = 0;
#endif
    p->n_threads = 1;
}

void qa_pool_run(qa_pool *p, qa_task_fn fn, void *ctx) {
    if (!p || p->n_threads <= 1) {
        fn(ctx, 0, 1);
        return;
    }
#ifndef __wasm__
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->pending = p->n_threads - 1;
    p->gen++;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n_threads);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
#endif
}
