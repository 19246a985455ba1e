/* A fixed pool of worker threads for data-parallel loops (split rows of a matmul, heads of
 * attention). Natively pthreads; in wasm (or with one thread) the loop runs inline.
 * The host allocates the qm_pool struct and calls qm_pool_start / qm_pool_stop. */
#ifndef QM_THREADS_H
#define QM_THREADS_H

#define QM_MAX_THREADS 16

#ifndef __wasm__
#include <pthread.h>
#endif

/* fn(ctx, i, n): the i-th of n workers; it handles its own share of the work. */
typedef void (*qm_task_fn)(void *ctx, int i, int n);

typedef struct qm_pool qm_pool;
typedef struct {
    qm_pool *pool;
    int index;
} qm_worker_arg;

struct qm_pool {
    int n_threads;
#ifndef __wasm__
    pthread_t th[QM_MAX_THREADS];
    qm_worker_arg args[QM_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    unsigned long gen;
    int pending, stop, started;
    qm_task_fn fn;
    void *ctx;
#endif
};

int qm_pool_start(qm_pool *p, int n_threads); /* returns threads in use (1 in wasm) */
void qm_pool_stop(qm_pool *p);
void qm_pool_run(qm_pool *p, qm_task_fn fn, void *ctx);

/* Contiguous share [lo, hi) of n items for worker i of k, items grouped in multiples of g. */
static inline void qm_share(int n, int i, int k, int g, int *lo, int *hi) {
    int units = (n + g - 1) / g;
    int a = (int)((long long)units * i / k), b = (int)((long long)units * (i + 1) / k);
    *lo = a * g < n ? a * g : n;
    *hi = b * g < n ? b * g : n;
}

#endif
