#include "lazy.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- LRU cache ------------------------------------------------------------------------ */

static size_t al16(size_t x) { return (x + 15) & ~(size_t)15; }

size_t qa_lru_bytes(int64_t n, int32_t cap, int d) {
    return al16((size_t)cap * (size_t)d * sizeof(float)) + 3 * al16((size_t)cap * sizeof(int32_t)) +
           al16((size_t)n * sizeof(int32_t));
}

int qa_lru_init(qa_lru *c, void *mem, size_t len, int64_t n, int32_t cap, int d) {
    if (cap < 1 || d < 1 || n < 0 || len < qa_lru_bytes(n, cap, d)) return -1;
    memset(c, 0, sizeof(*c));
    uint8_t *p = (uint8_t *)mem;
    c->d = d;
    c->n = n;
    c->cap = cap;
    c->vec = (float *)p;
    p += al16((size_t)cap * (size_t)d * sizeof(float));
    c->slot_row = (int32_t *)p;
    p += al16((size_t)cap * sizeof(int32_t));
    c->prev = (int32_t *)p;
    p += al16((size_t)cap * sizeof(int32_t));
    c->next = (int32_t *)p;
    p += al16((size_t)cap * sizeof(int32_t));
    c->row_slot = (int32_t *)p;
    qa_lru_clear(c);
    return 0;
}

void qa_lru_clear(qa_lru *c) {
    memset(c->row_slot, 0xff, (size_t)c->n * sizeof(int32_t));
    c->used = 0;
    c->head = c->tail = -1;
    c->hits = c->misses = c->evictions = 0;
}

static void unlink_slot(qa_lru *c, int32_t s) {
    int32_t p = c->prev[s], nx = c->next[s];
    if (p >= 0) c->next[p] = nx; else c->head = nx;
    if (nx >= 0) c->prev[nx] = p; else c->tail = p;
}

static void push_front(qa_lru *c, int32_t s) {
    c->prev[s] = -1;
    c->next[s] = c->head;
    if (c->head >= 0) c->prev[c->head] = s;
    c->head = s;
    if (c->tail < 0) c->tail = s;
}

const float *qa_lru_get(qa_lru *c, int32_t row) {
    int32_t s = c->row_slot[row];
    if (s < 0) return NULL;
    if (c->head != s) {
        unlink_slot(c, s);
        push_front(c, s);
    }
    return c->vec + (int64_t)s * c->d;
}

void qa_lru_put(qa_lru *c, int32_t row, const float *v) {
    int32_t s = c->row_slot[row];
    if (s >= 0) {
        unlink_slot(c, s);
    } else if (c->used < c->cap) {
        s = c->used++;
    } else {
        s = c->tail;
        unlink_slot(c, s);
        c->row_slot[c->slot_row[s]] = -1;
        c->evictions++;
    }
    c->slot_row[s] = row;
    c->row_slot[row] = s;
    memcpy(c->vec + (int64_t)s * c->d, v, (size_t)c->d * sizeof(float));
    push_front(c, s);
}

/* ---- graph access (same layout as hnsw.c) ---------------------------------------------- */

static int lazy_links(const qa_graph *g, int32_t node, int lev, int32_t *out) {
    int cap, n = 0;
    const int32_t *l = qa_hnsw_links(g, node, lev, &cap);
    while (n < cap && l[n] >= 0) { out[n] = l[n]; n++; }
    return n;
}

/* ---- the resumable search --------------------------------------------------------------- */

static inline float vdist(const qa_lazy *ls, const float *v) {
    return qa_dist_f32(ls->metric, ls->q, v, (size_t)ls->d);
}

/* Parks the step when any of rows[0..cnt) is not cached: records the missing rows
 * (ascending) and marks the cached ones most recently used, so that putting the missing
 * ones cannot evict them. Returns the number missing. */
static int park(qa_lazy *ls, const int32_t *rows, int cnt) {
    int m = 0;
    for (int i = 0; i < cnt; i++) {
        if (ls->cache->row_slot[rows[i]] < 0) {
            int32_t r = rows[i];
            int j = m++;
            while (j > 0 && ls->missing[j - 1] > r) { ls->missing[j] = ls->missing[j - 1]; j--; }
            ls->missing[j] = r;
        }
    }
    if (m) {
        for (int i = 0; i < cnt; i++) qa_lru_get(ls->cache, rows[i]);
        ls->cache->misses += m;
        ls->cache->hits += cnt - m;
        ls->rounds++;
        ls->fetched += m;
    } else {
        ls->cache->hits += cnt;
    }
    ls->n_missing = m;
    return m;
}

static int run(qa_lazy *ls) {
    const qa_graph *g = ls->g;
    qa_scratch *s = ls->s;
    int32_t *nbr = s->nbr;
    if (ls->phase == QA_LAZY_START) {
        int32_t e = g->entry;
        if (park(ls, &e, 1)) return ls->n_missing;
        ls->cur = e;
        ls->curd = vdist(ls, qa_lru_get(ls->cache, e));
        ls->ndist++;
        ls->lev = g->max_level;
        ls->phase = QA_LAZY_GREEDY;
    }
    if (ls->phase == QA_LAZY_GREEDY) {
        while (ls->lev > 0) {
            int cnt = lazy_links(g, ls->cur, ls->lev, nbr);
            if (park(ls, nbr, cnt)) return ls->n_missing;
            int changed = 0;
            for (int i = 0; i < cnt; i++) {
                float d = vdist(ls, qa_lru_get(ls->cache, nbr[i]));
                ls->ndist++;
                if (d < ls->curd) { ls->curd = d; ls->cur = nbr[i]; changed = 1; }
            }
            if (!changed) ls->lev--;
        }
        qa_visited_next(&s->vis);
        s->cand.n = 0;
        s->res.n = 0;
        qa_visited_test_set(&s->vis, ls->cur);
        qa_heap_push(&s->cand, -ls->curd, ls->cur);
        if (!qa_is_deleted(g, ls->cur)) qa_heap_push(&s->res, ls->curd, ls->cur);
        ls->lower = s->res.n ? ls->curd : INFINITY;
        ls->pending = 0;
        ls->phase = QA_LAZY_LAYER0;
    }
    if (ls->phase == QA_LAZY_LAYER0) {
        int32_t fresh[256];
        for (;;) {
            if (!ls->pending) {
                if (!s->cand.n) break;
                qa_pair c = qa_heap_top(&s->cand);
                if (-c.d > ls->lower && s->res.n >= ls->ef) break;
                qa_heap_pop(&s->cand);
                ls->pend = c;
                ls->pending = 1;
            }
            int cnt = lazy_links(g, ls->pend.id, 0, nbr);
            int nf = 0;
            for (int i = 0; i < cnt; i++)
                if (s->vis.tag[nbr[i]] != s->vis.epoch) fresh[nf++] = nbr[i];
            if (park(ls, fresh, nf)) return ls->n_missing;
            if (qa_heap_reserve(&s->cand, nf)) return -1;
            for (int i = 0; i < nf; i++) {
                int32_t nb = fresh[i];
                qa_visited_test_set(&s->vis, nb);
                float d = vdist(ls, qa_lru_get(ls->cache, nb));
                ls->ndist++;
                if (s->res.n < ls->ef || d < ls->lower) {
                    qa_heap_push(&s->cand, -d, nb);
                    if (!qa_is_deleted(g, nb)) {
                        qa_heap_push(&s->res, d, nb);
                        if (s->res.n > ls->ef) qa_heap_pop(&s->res);
                        ls->lower = qa_heap_top(&s->res).d;
                    }
                }
            }
            ls->pending = 0;
        }
        ls->phase = QA_LAZY_DONE;
    }
    return 0;
}

int qa_lazy_begin(qa_lazy *ls, const qa_graph *g, qa_lru *cache, qa_scratch *s, int metric,
                  const float *q, int ef, int nres, int32_t *missing) {
    memset(ls, 0, sizeof(*ls));
    ls->g = g;
    ls->cache = cache;
    ls->s = s;
    ls->metric = metric;
    ls->d = cache->d;
    ls->q = q;
    ls->nres = nres;
    ls->ef = ef < nres ? nres : ef;
    ls->missing = missing;
    ls->phase = QA_LAZY_START;
    if (g->M0 > 255 || cache->cap < g->M0 + 1) return -2;
    if (g->entry < 0 || nres <= 0) {
        ls->phase = QA_LAZY_DONE;
        return 0;
    }
    if (s->res.cap < ls->ef + 2) {
        qa_pair *a = (qa_pair *)realloc(s->res.a, sizeof(qa_pair) * (size_t)(ls->ef + 2));
        if (!a) return -1;
        s->res.a = a;
        s->res.cap = ls->ef + 2;
    }
    return run(ls);
}

int qa_lazy_resume(qa_lazy *ls) {
    if (ls->phase == QA_LAZY_DONE) return 0;
    return run(ls);
}

int qa_lazy_result(qa_lazy *ls, int32_t *out_rows, float *out_d) {
    qa_scratch *s = ls->s;
    if (ls->phase != QA_LAZY_DONE) return 0;
    return qa_heap_drain_sorted(&s->res, ls->nres, out_rows, out_d);
}
