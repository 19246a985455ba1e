/* A fixed pool of worker threads for data-parallel loops (split rows of a matmul, heads of
 * attention). Natively pthreads; in wasm (or with one thread) the loop runs inline.
 * The host allocates the qa_pool struct and calls qa_pool_start / qa_pool_stop. */
#ifndef QA_THREADS_H
#define QA_THREADS_H

#define QA_MAX_THREADS 16

#ifndef __wasm__
#include <pthread.h>
#endif

/* fn(ctx, i, n): the i-th of n workers; it handles its own share of the work. */
typedef void (*qa_task_fn)(void *ctx, int i, int n);

typedef struct qa_pool qa_pool;
typedef struct {
    qa_pool *pool;
    int index;
} qa_worker_arg;

struct qa_pool {
    int n_threads;
#ifndef __wasm__
    pthread_t th[QA_MAX_THREADS];
    qa_worker_arg args[QA_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    unsigned long gen;
    int pending, stop, started;
    qa_task_fn fn;
    void *ctx;
#endif
};

int qa_pool_start(qa_pool *p, int n_threads); /* returns threads in use (1 in wasm) */
void qa_pool_stop(qa_pool *p);
void qa_pool_run(qa_pool *p, qa_task_fn fn, void *ctx);

/* Contiguous share [lo, hi) of n items for worker i of k, items grouped in multiples of g. */
static inline void qa_share(int n, int i, int k, int g, int *lo, int *hi) {
    int units = (n + g - 1) / g;
    int a = (int)((long long)units * i / k), b = (int)((long long)units * (i + 1) / k);
    *lo = a * g < n ? a * g : n;
    *hi = b * g < n ? b * g : n;
}

#endif
