/* The index ABI: the one C interface every host (CPython, wasm for JS) drives.
 *
 *   qa_index     an opaque index over the arrays of kernel/index/arrays.h (from a .qann
 *                file or a build in memory; borrowed, the host keeps them alive)
 *   qa_searcher  one per thread: its own scratch (visited tags, heaps, candidate rows,
 *                the query and the candidates' vectors). An index may have any number.
 *
 * A query has two phases, so a synchronous file store and an async browser store run the
 * same pipeline:
 *
 *   begin(searcher, query, params)   graph search over the codes; returns how many rows
 *                                    to fetch (ascending, with their coalesced ranges)
 *   host reads those rows' float vectors (into qa_searcher_vectors, or its own buffer)
 *   finish(searcher, vectors, ...)   exact rerank; the top k rows, distances and stats
 *
 * rerank = 0 fetches nothing: begin returns 0 and finish gives the graph's order.
 *
 * Errors: functions return QA_OK or a negative QA_E*; the message is in the searcher
 * (qa_searcher_error) or in the caller's `err` buffer. No host callbacks, no OS calls.
 */
#ifndef QA_INDEX_H
#define QA_INDEX_H
#include <stddef.h>
#include <stdint.h>

#include "arrays.h"

#include "../errors.h" /* QA_OK, QA_EINVAL, QA_ENOMEM */

typedef struct qa_index qa_index;
typedef struct qa_searcher qa_searcher;

/* Values the host passes through as given (int64): the kernel checks them against the
 * limits of kernel/constants.h and names the value and the limit when it refuses. */
typedef struct {
    int64_t k;        /* results wanted, 1..min(QA_MAX_K, live rows) */
    int64_t ef;       /* beam width, 1..QA_MAX_EF (raised to the candidate count) */
    int64_t rerank;   /* 0: the graph's order; r: k*r candidates (<= QA_MAX_CANDIDATES) */
    int64_t max_gap;  /* rows: runs of candidates this close are merged into one range */
} qa_search_params;

typedef struct {
    int64_t candidates; /* rows the graph search returned */
    int64_t distances;  /* code distances computed */
    int64_t fetch;      /* rows to fetch (0 with rerank = 0) */
    int64_t ranges;     /* coalesced ranges covering them */
    int64_t span;       /* rows those ranges cover, gaps included */
    int64_t found;      /* results written by finish */
} qa_search_stats;

typedef struct {
    int64_t start, end;      /* rows to link; their codes and levels are in the arrays */
    const float *vectors;    /* (end - start) x d float32: the rows being inserted */
    const float *space;      /* NULL: distances over the codes (add after load); else the
                              * float vectors of rows 0..end (a build from empty) */
    int32_t *links0, *upper; /* writable views of the arrays' links0 and upper (the same
                              * buffers: the index reads them) */
    int64_t threads;         /* 1..QA_MAX_THREADS (1 in wasm) */
} qa_insert_params;

typedef struct {
    int32_t entry;
    int max_level;
    int64_t n, live;         /* rows, and rows not deleted */
    int d, code_size;
} qa_index_info;

/* An index over `a` (checked: header values, sizes, pointers; links are the file reader's
 * to check). Returns QA_OK and *out, or an error with a message in err. */
int qa_index_open(const qa_index_arrays *a, qa_index **out, char *err, size_t err_len);
void qa_index_close(qa_index *ix);
void qa_index_info_get(const qa_index *ix, qa_index_info *info);

/* Links rows [start, end) into the graph, with threads natively. */
int qa_index_insert(qa_index *ix, const qa_insert_params *p, char *err, size_t err_len);

/* rerank auto's bound multiplier for this index (rabitq codes): nq sample rows of
 * `vectors` (n x d float32, the index's rows as searched: unit under cosine) are searched
 * with a beam of ef, and *eps is the smallest multiplier whose rule keeps all but the
 * fraction of each beam's exact top k that a fixed rerank of 2k would miss, held within
 * [miss_lo, miss_hi] (rerank.h: qa_rerank_calibrate). The host stores it in
 * quant.scale[0]. *eps = 0 (the default stands) when the index is too small. */
/* What a build calibrates on: sample queries, k, beam, and the bounds of the fraction of
 * true neighbours the rule may drop (small against the graph's own misses at 0.99). */
#define QA_CALIBRATE_QUERIES 200
#define QA_CALIBRATE_K 10
#define QA_CALIBRATE_EF 128
#define QA_CALIBRATE_MISS_LO 0.001
#define QA_CALIBRATE_MISS_HI 0.002
int qa_index_calibrate_bound(const qa_index *ix, const float *vectors, int nq, int k, int ef, double miss_lo,
                             double miss_hi,
                             float *eps, char *err, size_t err_len);

/* Experiment (bench/rabitq.py --graph-layout): on = 1 copies each node's packed level-0
 * list and its code into one record, so a hop reads one stream; 0 goes back to the two
 * arrays. Not in the file format: it is kept only if it measures faster. Call it before
 * creating searchers. */
int qa_index_link_level0(qa_index *ix, int on, char *err, size_t err_len);

qa_searcher *qa_searcher_new(const qa_index *ix);
void qa_searcher_free(qa_searcher *s);
const char *qa_searcher_error(const qa_searcher *s);

/* Checks the parameters, copies the query (unless it is already qa_searcher_query),
 * normalises it under cosine and searches the graph. Returns the number of rows to fetch
 * (>= 0) or a QA_E* error. */
int64_t qa_search_begin(qa_searcher *s, const float *q, const qa_search_params *p);
/* The query buffer (d floats): a host may write the query here and pass it to begin. */
float *qa_searcher_query(qa_searcher *s);
/* After begin: the rows to fetch (ascending), their ranges as (first, last) pairs, and a
 * buffer for their vectors (fetch x d float32) that finish reads when given NULL. */
const int32_t *qa_searcher_rows(const qa_searcher *s);
const int32_t *qa_searcher_ranges(const qa_searcher *s);
float *qa_searcher_vectors(qa_searcher *s);
/* Groups ascending rows into runs whose neighbours are at most max_gap rows apart: writes
 * (first, last) pairs to ranges[2 * runs], returns the number of runs and the rows they
 * cover (gaps included) in *span. The one definition of the coalescing of a batched read. */
int64_t qa_coalesce_rows(const int32_t *rows, int64_t m, int64_t max_gap, int32_t *ranges, int64_t *span);

/* The stats so far (after begin: candidates, distances, fetch, ranges, span). */
void qa_searcher_stats(const qa_searcher *s, qa_search_stats *st);
/* Reranks `vectors` (fetch x d, in the order of qa_searcher_rows; NULL = the searcher's
 * buffer) and writes k rows and distances (row -1, distance +inf past the results). */
int qa_search_finish(qa_searcher *s, const float *vectors, int32_t *out_rows, float *out_d,
                     qa_search_stats *st);
#endif
