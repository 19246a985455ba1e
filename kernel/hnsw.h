/* HNSW graph over a "space" (how distances are computed), built and searched in place on
 * arrays the host allocates.
 *
 * Layout (see FORMAT.md):
 *   links0[n * M0]   level-0 neighbours of each node, -1 terminated when not full; or,
 *                    searched only, packed0: the same lists in link_bits bits per id
 *                    (kernel/links.h), row_bytes per node
 *   level[n]         top level of each node
 *   up_nodes[n_up]   ascending rows whose level > 0, and up_off[n_up] where their lists
 *                    start in `upper`: level l (1..level) at upper[up_off + (l-1) * M]
 * Only ~1/M of the nodes have upper levels, so a binary search over up_nodes costs less
 * memory than an offset per node and is only done on the few upper-level hops.
 */
#ifndef QA_HNSW_H
#define QA_HNSW_H
#include "heap.h"
#include "links.h"
#include "codec/codec.h"
#include "distance.h"
#include "visited.h"

typedef struct {
    int64_t n;          /* nodes (rows) */
    int M, M0;          /* max links on upper levels / level 0 */
    int32_t *links0;        /* NULL when the level-0 lists are packed */
    const uint8_t *packed0; /* packed level-0 lists (search only), or NULL */
    int link_bits;
    int64_t row_bytes;
    uint8_t *level;
    const int32_t *up_nodes;
    const int64_t *up_off;
    int64_t n_up;
    int32_t *upper;
    int32_t entry;      /* -1 when empty */
    int max_level;
    const uint8_t *deleted; /* bitset over rows, NULL when nothing is deleted */
} qa_graph;

/* Where distances come from: a codec row over `n` codes. A build's float space is the NONE
 * row over the full vectors; a search (or an insert after load) uses the index's codes. */
typedef struct {
    int metric;
    const qa_codec *codec;    /* resolved once: its dist / dist_batch are the variant in use */
    const qa_quantizer *qz;
    const uint8_t *codes;     /* n x qz->code_size */
    const float *norms;       /* |x^|^2 per code, L2 over SQ codes only, else NULL */
} qa_space;

/* Per-thread working memory. */
typedef struct {
    qa_visited vis;
    qa_heap cand, res;
    qa_pair *tmp;          /* neighbour selection */
    int32_t *nbr;          /* copy of a neighbour list */
    float *dbuf;           /* distances to that list */
    float *fbuf;           /* decoded vector */
    int16_t *wbuf[2];      /* query weights */
} qa_scratch;

int qa_scratch_init(qa_scratch *s, int64_t cap, int ef, int M0, int dpad);
void qa_scratch_free(qa_scratch *s);

/* Insert rows [start, end) whose float vectors are vecs[(r - start) * d], using nthreads
 * threads (1 in wasm). Returns 0, or -1 when memory ran out or the lists are packed (an
 * insert writes the int32 lists: the host unpacks first). */
int qa_hnsw_insert(qa_graph *g, const qa_space *sp, int64_t start, int64_t end,
                   const float *vecs, int ef_construction, int nthreads);

/* Gives back scratch memory above what a search of `ef` needs (after a rare huge query). */
void qa_scratch_trim(qa_scratch *s, int ef, int M0);

/* Search for the `nres` nearest non-deleted rows; writes rows and distances in ascending
 * distance order and returns how many were found. The query is a float vector, prepared
 * for the space inside. Counts distance computations into *ndist if not NULL. */
int qa_hnsw_search(const qa_graph *g, const qa_space *sp, const float *q, int ef, int nres,
                   qa_scratch *s, int32_t *out_rows, float *out_d, int64_t *ndist);

/* The list of `node` at level `lev` (level 0, or an upper level the node has) and its
 * capacity in *cap; NULL (cap 0) when the node has no such level or level 0 is packed.
 * -1 ends a short list. */
int32_t *qa_hnsw_links(const qa_graph *g, int32_t node, int lev, int *cap);

/* Deleted-row test. */
static inline int qa_is_deleted(const qa_graph *g, int32_t r) {
    return g->deleted && (g->deleted[r >> 3] >> (r & 7) & 1);
}
#endif
