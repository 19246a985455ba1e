/* The lazy-loading baseline (in the style of WebANNS): a float HNSW search whose vectors
 * live in external storage behind an LRU cache that holds only some of them.
 *
 * The search is resumable. When the next step (a greedy hop on an upper level, or the
 * expansion of one beam candidate on level 0) needs vectors that are not cached, it parks
 * the step and returns the missing rows; the host reads them in one batch, puts them into
 * the cache with qa_lru_put, and calls qa_lazy_resume, which redoes the parked step.
 * No I/O happens here, so the same code serves a local file, HTTP or IndexedDB.
 *
 * The cache lives in one block of memory the host allocates (qa_lru_bytes), so its size
 * is explicit and counted. It must hold at least M0 + 1 vectors (one step's worth).
 */
#ifndef QA_LAZY_H
#define QA_LAZY_H
#include "hnsw.h"

typedef struct {
    int d;
    int64_t n;          /* rows in the store */
    int32_t cap;        /* vectors the cache can hold */
    int32_t used;
    float *vec;         /* [cap * d] */
    int32_t *slot_row;  /* [cap] row held by each slot */
    int32_t *prev, *next; /* LRU list over slots: head = most recently used, -1 ends */
    int32_t head, tail;
    int32_t *row_slot;  /* [n] slot of each row, -1 when not cached */
    int64_t hits, misses, evictions;
} qa_lru;

/* Bytes of the block qa_lru_init needs for n rows, cap cached vectors of d floats. */
size_t qa_lru_bytes(int64_t n, int32_t cap, int d);
/* Lays the cache out in mem (len >= qa_lru_bytes, 16-byte aligned). Returns 0 or -1. */
int qa_lru_init(qa_lru *c, void *mem, size_t len, int64_t n, int32_t cap, int d);
/* Empties the cache (keeps its memory). */
void qa_lru_clear(qa_lru *c);
/* Stores row's vector as the most recently used entry, evicting the least recently used
 * one when full. A row already cached is refreshed. */
void qa_lru_put(qa_lru *c, int32_t row, const float *v);
/* The cached vector of row (and marks it most recently used), or NULL. */
const float *qa_lru_get(qa_lru *c, int32_t row);

enum { QA_LAZY_START = 0, QA_LAZY_GREEDY, QA_LAZY_LAYER0, QA_LAZY_DONE };

/* One query's search state, between calls. */
typedef struct {
    const qa_graph *g;
    qa_lru *cache;
    qa_scratch *s;      /* visited marks, candidate and result heaps, neighbour copy */
    int metric, d, ef, nres;
    const float *q;     /* the query, d floats (must stay valid until done) */
    int phase;
    int lev;            /* greedy phase: current level */
    int32_t cur;        /* greedy phase: current node and its distance */
    float curd;
    int pending;        /* layer 0: a popped candidate waits for its neighbours */
    qa_pair pend;
    float lower;        /* layer 0: worst distance among the results */
    int32_t *missing;   /* [M0 + 1] rows the parked step needs, ascending */
    int n_missing;
    int64_t ndist;      /* distances computed */
    int64_t rounds;     /* times the search parked for a fetch */
    int64_t fetched;    /* rows requested over all rounds */
} qa_lazy;

/* Starts a search for the nres nearest rows (ef >= nres). Returns the number of missing
 * rows (> 0: fetch ls->missing[0..r), put them, call qa_lazy_resume), 0 when finished, -1
 * when memory ran out, -2 when the cache is smaller than one step. `missing` has room
 * for M0 + 1 rows. */
int qa_lazy_begin(qa_lazy *ls, const qa_graph *g, qa_lru *cache, qa_scratch *s, int metric,
                  const float *q, int ef, int nres, int32_t *missing);
int qa_lazy_resume(qa_lazy *ls);
/* Writes the results (ascending distance) and returns how many. */
int qa_lazy_result(qa_lazy *ls, int32_t *out_rows, float *out_d);
#endif
