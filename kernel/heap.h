/* A binary max-heap of (distance, node). Candidate queues that need the minimum store
 * negated distances. */
#ifndef QA_HEAP_H
#define QA_HEAP_H
#include <stdint.h>
#include <stdlib.h>

typedef struct { float d; int32_t id; } qa_pair;

typedef struct {
    qa_pair *a;
    int n, cap;
} qa_heap;

static inline void qa_heap_push(qa_heap *h, float d, int32_t id) {
    int i = h->n++;
    while (i > 0) {
        int p = (i - 1) >> 1;
        if (h->a[p].d >= d) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i].d = d;
    h->a[i].id = id;
}

static inline void qa_heap_pop(qa_heap *h) {
    qa_pair last = h->a[--h->n];
    int i = 0, n = h->n;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->a[c + 1].d > h->a[c].d) c++;
        if (h->a[c].d <= last.d) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n > 0) h->a[i] = last;
}

static inline qa_pair qa_heap_top(const qa_heap *h) { return h->a[0]; }

/* Keeps the `keep` smallest, writes them in ascending order to ids/dists and empties the
 * heap; returns how many were written. */
static inline int qa_heap_drain_sorted(qa_heap *h, int keep, int32_t *ids, float *dists) {
    while (h->n > keep) qa_heap_pop(h);
    int m = h->n;
    for (int i = m - 1; i >= 0; i--) {
        ids[i] = h->a[0].id;
        dists[i] = h->a[0].d;
        qa_heap_pop(h);
    }
    return m;
}

/* Room for `extra` more pushes (candidate queues grow when a search visits more than
 * foreseen). Returns -1 when memory ran out. */
static inline int qa_heap_reserve(qa_heap *h, int extra) {
    if ((int64_t)h->n + extra <= h->cap) return 0;
    int64_t want = ((int64_t)h->n + extra) * 2;
    if ((int64_t)h->n + extra > INT32_MAX) return -1;
    int cap = want > INT32_MAX ? INT32_MAX : (int)want;
    qa_pair *a = (qa_pair *)realloc(h->a, sizeof(qa_pair) * (size_t)cap);
    if (!a) return -1;
    h->a = a;
    h->cap = cap;
    return 0;
}
#endif
