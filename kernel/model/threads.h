/* A fixed pool of worker threads for data-parallel loops (split rows of a matmul, heads of
 * attention). Natively pthreads; in wasm (or with one thread) the loop runs inline.
 * The host allocates the qa_pool struct and calls qa_pool_start / qa_pool_stop.
 *
 * A decoder dispatches ~150 loops per token of a few tens of microseconds each, so a
 * dispatch must cost about a microsecond, not a futex wakeup: a loop is cut into n_threads
 * fixed shares that every thread, the caller too, claims from one atomic word; workers spin
 * on that word for QA_POOL_SPIN_NS after their last share (then sleep on a condition
 * variable, so an idle process burns no CPU). A worker that the OS has descheduled does
 * not hold the caller up: the caller runs the shares nobody claimed. Which thread runs a
 * share never changes what it computes, so results do not depend on the timing. */
#ifndef QA_THREADS_H
#define QA_THREADS_H

#define QA_MAX_THREADS 16
#define QA_POOL_SPIN_NS 50000 /* 50 us: covers the gaps between the loops of one token (a few us);
                                * longer spins measured worse on a loaded machine */

#ifndef __wasm__
#include <pthread.h>
#include <stdatomic.h>
#endif

/* fn(ctx, i, n, t): share i of n, run by thread t < the pool's threads (per-thread scratch
 * is indexed by t). QA_POOL_SHARES per thread: a descheduled worker holds up little. */
#define QA_POOL_SHARES 4
typedef void (*qa_task_fn)(void *ctx, int i, int n, int t);

typedef struct qa_pool qa_pool;
typedef struct {
    qa_pool *pool;
    int index;
} qa_worker_arg;

struct qa_pool {
    int n_threads;
#ifndef __wasm__
    int started, n_shares;
    unsigned gen;  /* the caller's count of loops */
    qa_task_fn fn; /* written before work is published, read after a share is claimed */
    void *ctx;
    long long spin_ns;
    /* the counters on their own cache lines */
    char pad0[64];
    atomic_ullong work;   /* generation << 32 | next unclaimed share */
    atomic_int sleepers;  /* workers inside the condition-variable wait */
    atomic_int stop;
    char pad1[64];
    atomic_int done;      /* shares finished in this generation */
    atomic_int waiting;   /* the caller sleeps until done reaches n_shares */
    char pad2[64];
    pthread_mutex_t mu;
    pthread_cond_t cv, cv_done;
    pthread_t th[QA_MAX_THREADS];
    qa_worker_arg args[QA_MAX_THREADS];
#endif
};

int qa_pool_start(qa_pool *p, int n_threads); /* returns threads in use (1 in wasm) */
void qa_pool_stop(qa_pool *p);
/* Runs fn(ctx, i, n, t) for every share i < n and returns when all are done. Not reentrant:
 * one caller thread per pool. */
void qa_pool_run(qa_pool *p, qa_task_fn fn, void *ctx);

/* Contiguous share [lo, hi) of n items for worker i of k, items grouped in multiples of g. */
static inline void qa_share(int n, int i, int k, int g, int *lo, int *hi) {
    int units = (n + g - 1) / g;
    int a = (int)((long long)units * i / k), b = (int)((long long)units * (i + 1) / k);
    *lo = a * g < n ? a * g : n;
    *hi = b * g < n ? b * g : n;
}

#endif
