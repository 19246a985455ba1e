#include "hnsw.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef __wasm__
#include <pthread.h>
#include <stdatomic.h>
#define QA_THREADS 1
#endif

/* ---- scratch ------------------------------------------------------------------------ */

int qa_scratch_init(qa_scratch *s, int64_t cap, int ef, int M0, int dpad) {
    memset(s, 0, sizeof(*s));
    int qcap = ef + M0 + 2;
    if (qa_visited_init(&s->vis, cap)) return -1;
    /* the candidate queue can hold every node pushed in a search: bounded by visits */
    s->cand.cap = qcap * (M0 + 1);
    s->cand.a = (qa_pair *)malloc(sizeof(qa_pair) * (size_t)s->cand.cap);
    s->res.cap = qcap;
    s->res.a = (qa_pair *)malloc(sizeof(qa_pair) * (size_t)qcap);
    s->tmp = (qa_pair *)malloc(sizeof(qa_pair) * (size_t)(qcap + M0 + 1));
    s->nbr = (int32_t *)malloc(sizeof(int32_t) * (size_t)(2 * M0 + 2));
    s->dbuf = (float *)malloc(sizeof(float) * (size_t)(2 * M0 + 2));
    s->fbuf = (float *)malloc(sizeof(float) * (size_t)dpad + 64);
    s->wbuf[0] = (int16_t *)malloc(sizeof(int16_t) * (size_t)dpad + 64);
    s->wbuf[1] = (int16_t *)malloc(sizeof(int16_t) * (size_t)dpad + 64);
    if (!s->cand.a || !s->res.a || !s->tmp || !s->nbr || !s->dbuf || !s->fbuf || !s->wbuf[0] || !s->wbuf[1]) {
        qa_scratch_free(s);
        return -1;
    }
    return 0;
}

/* Heaps above this many bytes are given back after the search that grew them. */
#define QA_SCRATCH_KEEP_BYTES (1 << 20)

static void shrink_heap(qa_heap *h, int keep) {
    if ((size_t)h->cap * sizeof(qa_pair) <= QA_SCRATCH_KEEP_BYTES || h->cap <= keep || h->n > keep) return;
    qa_pair *a = (qa_pair *)realloc(h->a, sizeof(qa_pair) * (size_t)keep);
    if (!a) return; /* keeping the larger block is harmless */
    h->a = a;
    h->cap = keep;
}

void qa_scratch_trim(qa_scratch *s, int ef, int M0) {
    int qcap = ef + M0 + 2;
    shrink_heap(&s->res, qcap);
    shrink_heap(&s->cand, qcap * (M0 + 1));
}

void qa_scratch_free(qa_scratch *s) {
    qa_visited_free(&s->vis);
    free(s->cand.a); free(s->res.a); free(s->tmp); free(s->nbr); free(s->dbuf); free(s->fbuf);
    free(s->wbuf[0]); free(s->wbuf[1]);
    memset(s, 0, sizeof(*s));
}

/* ---- distances in a space ----------------------------------------------------------- */

static inline float qdist(const qa_space *sp, const qa_query *qq, int32_t node) {
    return sp->codec->dist(sp->qz, sp->metric, qq, sp->codes + (int64_t)node * sp->qz->stride,
                           sp->norms ? sp->norms[node] : 0.0f);
}

static inline void prep_vec(const qa_space *sp, const float *v, qa_query *qq, int16_t *w) {
    qq->w = w;
    sp->codec->prepare(sp->qz, v, qq);
}

/* A stored node as a query (for neighbour selection). Float codes are the vector itself. */
static inline void prep_node(const qa_space *sp, int32_t node, qa_query *qq, qa_scratch *s) {
    const uint8_t *code = sp->codes + (int64_t)node * sp->qz->stride;
    if (sp->qz->kind == QA_CODEC_NONE) {
        prep_vec(sp, (const float *)code, qq, s->wbuf[1]);
        return;
    }
    sp->codec->decode(sp->qz, code, s->fbuf);
    prep_vec(sp, s->fbuf, qq, s->wbuf[1]);
}

/* ---- adjacency ---------------------------------------------------------------------- */

int32_t *qa_hnsw_links(const qa_graph *g, int32_t node, int lev, int *cap) {
    if (lev == 0) {
        *cap = g->links0 ? g->M0 : 0;
        return g->links0 ? g->links0 + (int64_t)node * g->M0 : NULL;
    }
    int64_t lo = 0, hi = g->n_up - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) >> 1;
        if (g->up_nodes[mid] < node) lo = mid + 1;
        else if (g->up_nodes[mid] > node) hi = mid - 1;
        else {
            *cap = g->M;
            return g->upper + g->up_off[mid] + (int64_t)(lev - 1) * g->M;
        }
    }
    *cap = 0;
    return NULL;
}

typedef struct build_ctx build_ctx;
static void node_lock(build_ctx *bc, int32_t node);
static void node_unlock(build_ctx *bc, int32_t node);

/* Copies node's list at `lev` into out; returns its length. */
static inline int read_links(const qa_graph *g, int32_t node, int lev, int32_t *out, build_ctx *bc) {
    if (lev == 0 && g->packed0) /* packed lists are never written: no lock */
        return qa_links_unpack_row(g->packed0 + (int64_t)node * g->row_bytes, g->M0, g->link_bits,
                                   (g->n - node) * g->row_bytes, out);
    int cap, n = 0;
    int32_t *l = qa_hnsw_links(g, node, lev, &cap);
    if (!l) return 0;
    if (bc) node_lock(bc, node);
    while (n < cap && l[n] >= 0) { out[n] = l[n]; n++; }
    if (bc) node_unlock(bc, node);
    return n;
}

/* ---- search ------------------------------------------------------------------------- */

static int32_t greedy(const qa_graph *g, const qa_space *sp, const qa_query *qq, int32_t cur,
                      float *curd, int from_lev, int to_lev, qa_scratch *s, build_ctx *bc,
                      int64_t *ndist) {
    for (int lev = from_lev; lev > to_lev; lev--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            int cnt = read_links(g, cur, lev, s->nbr, bc);
            sp->codec->dist_batch(sp->qz, sp->metric, qq, sp->codes, sp->norms, s->nbr, cnt, s->dbuf);
            if (ndist) *ndist += cnt;
            for (int i = 0; i < cnt; i++)
                if (s->dbuf[i] < *curd) { *curd = s->dbuf[i]; cur = s->nbr[i]; changed = 1; }
        }
    }
    return cur;
}

/* Beam search on one level from `ep`; leaves the best `ef` in s->res (max-heap).
 * Deleted nodes are walked through but never returned when skip_deleted is set. */
static int search_layer(const qa_graph *g, const qa_space *sp, const qa_query *qq, int32_t ep,
                        float epd, int ef, int lev, qa_scratch *s, build_ctx *bc, int skip_deleted,
                        int64_t *ndist) {
    qa_visited_next(&s->vis);
    s->cand.n = 0;
    s->res.n = 0;
    qa_visited_test_set(&s->vis, ep);
    qa_heap_push(&s->cand, -epd, ep);
    if (!(skip_deleted && qa_is_deleted(g, ep))) qa_heap_push(&s->res, epd, ep);
    float lower = s->res.n ? epd : INFINITY;
    const int64_t cs = sp->qz->stride, cb = sp->qz->code_size;
    const uint8_t *base = sp->codes;
    while (s->cand.n) {
        qa_pair c = qa_heap_top(&s->cand);
        if (-c.d > lower && s->res.n >= ef) break;
        qa_heap_pop(&s->cand);
        int cnt = read_links(g, c.id, lev, s->nbr, bc);
        if (qa_heap_reserve(&s->cand, cnt)) return -1;
        /* keep the unvisited neighbours, then fetch all their cache lines before the
         * first distance: the walk is bound by memory latency, not arithmetic */
        int fresh = 0;
        for (int i = 0; i < cnt; i++)
            if (!qa_visited_test_set(&s->vis, s->nbr[i])) s->nbr[fresh++] = s->nbr[i];
        for (int i = 0; i < fresh; i++) {
            const uint8_t *p = base + (int64_t)s->nbr[i] * cs;
            for (int off = 0; off < cb; off += 64) QA_PREFETCH(p + off);
        }
        sp->codec->dist_batch(sp->qz, sp->metric, qq, sp->codes, sp->norms, s->nbr, fresh, s->dbuf);
        if (ndist) *ndist += fresh;
        for (int i = 0; i < fresh; i++) {
            int32_t nb = s->nbr[i];
            float d = s->dbuf[i];
            if (s->res.n < ef || d < lower) {
                qa_heap_push(&s->cand, -d, nb);
                if (!(skip_deleted && qa_is_deleted(g, nb))) {
                    qa_heap_push(&s->res, d, nb);
                    if (s->res.n > ef) qa_heap_pop(&s->res);
                    lower = qa_heap_top(&s->res).d;
                }
            }
        }
    }
    return 0;
}

int qa_hnsw_search(const qa_graph *g, const qa_space *sp, const float *q, int ef, int nres,
                   qa_scratch *s, int32_t *out_rows, float *out_d, int64_t *ndist) {
    if (g->entry < 0 || nres <= 0) return 0;
    if (ef < nres) ef = nres;
    /* callers bound ef (QA_MAX_EF); the int64 sum cannot wrap as ef + 2 once did */
    if (ef > INT32_MAX - 2) return -1;
    if (s->res.cap < (int64_t)ef + 2) {
        qa_pair *a = (qa_pair *)realloc(s->res.a, sizeof(qa_pair) * ((size_t)ef + 2));
        if (!a) return -1;
        s->res.a = a;
        s->res.cap = ef + 2;
    }
    qa_query qq;
    prep_vec(sp, q, &qq, s->wbuf[0]);
    float d = qdist(sp, &qq, g->entry);
    if (ndist) (*ndist)++;
    int32_t ep = greedy(g, sp, &qq, g->entry, &d, g->max_level, 0, s, NULL, ndist);
    if (search_layer(g, sp, &qq, ep, d, ef, 0, s, NULL, 1, ndist)) return -1;
    return qa_heap_drain_sorted(&s->res, nres, out_rows, out_d);
}

/* ---- construction ------------------------------------------------------------------- */

#define QA_NLOCKS 4096

struct build_ctx {
    qa_graph *g;
    const qa_space *sp;
    const float *vecs;
    int64_t start, end;
    int ef;
    int failed;
#ifdef QA_THREADS
    pthread_mutex_t locks[QA_NLOCKS];
    pthread_mutex_t global;
    atomic_llong next;
#else
    int64_t next;
#endif
};

static void node_lock(build_ctx *bc, int32_t node) {
#ifdef QA_THREADS
    pthread_mutex_lock(&bc->locks[node & (QA_NLOCKS - 1)]);
#else
    (void)bc; (void)node;
#endif
}
static void node_unlock(build_ctx *bc, int32_t node) {
#ifdef QA_THREADS
    pthread_mutex_unlock(&bc->locks[node & (QA_NLOCKS - 1)]);
#else
    (void)bc; (void)node;
#endif
}

static int cmp_pair(const void *a, const void *b) {
    float x = ((const qa_pair *)a)->d, y = ((const qa_pair *)b)->d;
    if (x < y) return -1;
    if (x > y) return 1;
    int32_t i = ((const qa_pair *)a)->id, j = ((const qa_pair *)b)->id;
    return (i > j) - (i < j);
}

/* HNSW's neighbour heuristic: keep a candidate only if it is closer to the base than to
 * every neighbour already kept, so the list spreads over directions. Sorts p[0..n) and
 * compacts the kept ones to the front; returns how many (at most m). */
static int select_neighbours(const qa_space *sp, qa_pair *p, int n, int m, qa_scratch *s) {
    qsort(p, (size_t)n, sizeof(qa_pair), cmp_pair);
    int kept = 0;
    qa_query qe;
    for (int i = 0; i < n && kept < m; i++) {
        int good = 1;
        if (kept) {
            prep_node(sp, p[i].id, &qe, s);
            for (int j = 0; j < kept; j++)
                if (qdist(sp, &qe, p[j].id) < p[i].d) { good = 0; break; }
        }
        if (good) p[kept++] = p[i];
    }
    return kept;
}

/* Adds `q` to the list of `e` at `lev`, pruning with the heuristic when it is full. */
static void add_backlink(build_ctx *bc, int32_t e, int32_t q, float dq, int lev, qa_scratch *s) {
    const qa_graph *g = bc->g;
    int cap;
    node_lock(bc, e);
    int32_t *l = qa_hnsw_links(g, e, lev, &cap);
    int n = 0;
    while (n < cap && l[n] >= 0) {
        if (l[n] == q) { node_unlock(bc, e); return; }
        n++;
    }
    if (n < cap) {
        l[n] = q;
    } else {
        qa_query qe;
        prep_node(bc->sp, e, &qe, s);
        qa_pair *p = s->tmp;
        for (int i = 0; i < n; i++) { p[i].id = l[i]; p[i].d = qdist(bc->sp, &qe, l[i]); }
        p[n].id = q;
        p[n].d = dq;
        int kept = select_neighbours(bc->sp, p, n + 1, cap, s);
        for (int i = 0; i < cap; i++) l[i] = i < kept ? p[i].id : -1;
    }
    node_unlock(bc, e);
}

static int insert_one(build_ctx *bc, int32_t q, qa_scratch *s) {
    qa_graph *g = bc->g;
    const qa_space *sp = bc->sp;
    const int L = g->level[q];
    qa_query qq;
    prep_vec(sp, bc->vecs + (q - bc->start) * (int64_t)sp->qz->d, &qq, s->wbuf[0]);

#ifdef QA_THREADS
    pthread_mutex_lock(&bc->global);
#endif
    if (g->entry < 0) {
        g->entry = q;
        g->max_level = L;
#ifdef QA_THREADS
        pthread_mutex_unlock(&bc->global);
#endif
        return 0;
    }
    int32_t ep = g->entry;
    int maxl = g->max_level;
    int hold = L > maxl; /* a new top node keeps the global lock until it is linked */
#ifdef QA_THREADS
    if (!hold) pthread_mutex_unlock(&bc->global);
#endif

    float d = qdist(sp, &qq, ep);
    ep = greedy(g, sp, &qq, ep, &d, maxl, L, s, bc, NULL);
    for (int lev = (L < maxl ? L : maxl); lev >= 0; lev--) {
        if (search_layer(g, sp, &qq, ep, d, bc->ef, lev, s, bc, 0, NULL)) return -1;
        int n = 0;
        for (int i = 0; i < s->res.n; i++)
            if (s->res.a[i].id != q) s->tmp[n++] = s->res.a[i];
        int kept = select_neighbours(sp, s->tmp, n, g->M, s);
        if (kept == 0) continue;
        /* closest candidate is the entry of the next level down */
        ep = s->tmp[0].id;
        d = s->tmp[0].d;
        int32_t sel[256];
        float seld[256];
        for (int i = 0; i < kept; i++) { sel[i] = s->tmp[i].id; seld[i] = s->tmp[i].d; }
        int cap;
        node_lock(bc, q);
        int32_t *l = qa_hnsw_links(g, q, lev, &cap);
        for (int i = 0; i < cap; i++) l[i] = i < kept ? sel[i] : -1;
        node_unlock(bc, q);
        for (int i = 0; i < kept; i++) add_backlink(bc, sel[i], q, seld[i], lev, s);
    }
    if (hold) {
        g->entry = q;
        g->max_level = L;
#ifdef QA_THREADS
        pthread_mutex_unlock(&bc->global);
#endif
    }
    return 0;
}

static void *worker(void *arg) {
    build_ctx *bc = (build_ctx *)arg;
    qa_scratch s;
    int dpad = bc->sp->qz->dpad;
    if (qa_scratch_init(&s, bc->g->n, bc->ef, bc->g->M0, dpad)) { bc->failed = 1; return NULL; }
    for (;;) {
#ifdef QA_THREADS
        int64_t r = atomic_fetch_add(&bc->next, 1);
#else
        int64_t r = bc->next++;
#endif
        if (r >= bc->end || bc->failed) break;
        if (insert_one(bc, (int32_t)r, &s)) { bc->failed = 1; break; }
    }
    qa_scratch_free(&s);
    return NULL;
}

int qa_hnsw_insert(qa_graph *g, const qa_space *sp, int64_t start, int64_t end,
                   const float *vecs, int ef_construction, int nthreads) {
    if (g->M > 255 || g->M0 > 255 || !g->links0) return -1;
    build_ctx *bc = (build_ctx *)calloc(1, sizeof(build_ctx));
    if (!bc) return -1;
    bc->g = g; bc->sp = sp; bc->vecs = vecs; bc->start = start; bc->end = end;
    bc->ef = ef_construction;
    bc->next = start;
#ifdef QA_THREADS
    for (int i = 0; i < QA_NLOCKS; i++) pthread_mutex_init(&bc->locks[i], NULL);
    pthread_mutex_init(&bc->global, NULL);
    /* the first node of an empty graph is inserted alone: it becomes the entry point */
    if (g->entry < 0 && start < end) {
        int64_t save = bc->end;
        bc->end = start + 1;
        worker(bc);
        bc->end = save;
        bc->next = start + 1; /* the worker's last fetch overshot */
    }
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    pthread_t th[64];
    int started = 0;
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, worker, bc) == 0) started++; else break;
    worker(bc);
    for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < QA_NLOCKS; i++) pthread_mutex_destroy(&bc->locks[i]);
    pthread_mutex_destroy(&bc->global);
#else
    (void)nthreads;
    worker(bc);
#endif
    int failed = bc->failed;
    free(bc);
    return failed ? -1 : 0;
}
