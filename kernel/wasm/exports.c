/* wasm32 entry points of the index kernel: the same hnsw.c / quant.c / distance.c /
 * rerank.c as the native build, behind a handle the JavaScript host drives with explicit
 * memory (web/src/kernel.js).
 *
 * The host allocates every array in linear memory (qa_wasm_alloc), copies the in-memory
 * tensors of the .qann file there and calls qa_wasm_open, which checks every value the
 * search will follow (the same checks as quantann/fileformat.py: _check_graph) before
 * handing out a handle. Per query the host makes one qa_wasm_search call (graph search
 * over the codes), one batched store read of the candidates' float vectors, and one
 * qa_wasm_rerank call. No stdio, no threads, no WASI imports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../distance.h"
#include "../hnsw.h"
#include "../quant.h"
#include "../rerank.h"

#define EXPORT(name) __attribute__((export_name(#name)))

typedef struct {
    qa_graph g;
    qa_space sp;
    qa_quantizer qz;
    qa_scratch s;
    int64_t last_ndist; /* code distances computed by the last search */
} qa_wasm_index;

static const char *last_error = "";

/* The message of the last failed call (a NUL-terminated string in linear memory). */
EXPORT(qa_wasm_error) const char *qa_wasm_error(void) { return last_error; }

EXPORT(qa_wasm_alloc) void *qa_wasm_alloc(size_t n) { return malloc(n ? n : 1); }
EXPORT(qa_wasm_free) void qa_wasm_free(void *p) { free(p); }

/* CRC-32 (zlib's polynomial), as the file's checksums are written by Python's zlib.crc32. */
EXPORT(qa_wasm_crc32) uint32_t qa_wasm_crc32(const uint8_t *p, size_t n, uint32_t crc) {
    static uint32_t table[256];
    if (!table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 255] ^ (crc >> 8);
    return ~crc;
}

static int fail(const char *msg) {
    last_error = msg;
    return -1;
}

/* Every link and offset the search can follow, checked against the index's size. */
static int check_graph(const qa_graph *g) {
    const int64_t n = g->n;
    for (int64_t i = 0; i < n; i++)
        if (g->level[i] > 16) return fail("corrupt graph: level above the maximum");
    if (g->entry < 0 || g->entry >= n) return fail("corrupt graph: entry point outside the index");
    if (g->level[g->entry] != g->max_level) return fail("corrupt graph: entry point is not on the top level");
    for (int64_t i = 0; i < n * g->M0; i++)
        if (g->links0[i] < -1 || g->links0[i] >= n) return fail("corrupt graph: level-0 link outside the index");
    int64_t k = 0, off = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!g->level[i]) continue;
        if (k >= g->n_up || g->up_nodes[k] != i)
            return fail("corrupt graph: upper-level node list does not match the levels");
        if (g->up_off[k] != off) return fail("corrupt graph: upper-level offsets");
        off += (int64_t)g->level[i] * g->M;
        k++;
    }
    if (k != g->n_up) return fail("corrupt graph: upper-level node list does not match the levels");
    for (int64_t i = 0; i < off; i++)
        if (g->upper[i] < -1 || g->upper[i] >= n) return fail("corrupt graph: upper-level link outside the index");
    return 0;
}

/* Opens an index over host-filled arrays (which must outlive the handle). n_upper is the
 * length of `upper` in int32s; it must equal the sum of level * M over the upper nodes.
 * Returns NULL (see qa_wasm_error) when a value is out of range or memory ran out. */
EXPORT(qa_wasm_open)
qa_wasm_index *qa_wasm_open(int metric, int kind, int d, int32_t n, int M, int M0, int32_t entry,
                            int max_level, const float *vmin, const float *scale, const uint8_t *codes,
                            const float *norms, uint8_t *level, int32_t *links0, const int32_t *up_nodes,
                            const int64_t *up_off, int32_t n_up, int32_t *upper, int32_t n_upper) {
    if ((metric != QA_METRIC_L2 && metric != QA_METRIC_IP) ||
        (kind != QA_QUANT_NONE && kind != QA_QUANT_SQ8 && kind != QA_QUANT_SQ4))
        return fail("unknown metric or quantizer"), NULL;
    if (d < 1 || d > 65536 || n < 1 || M < 2 || M > 127 || M0 != 2 * M || n_up < 0 || n_upper < 0)
        return fail("header values out of range"), NULL;
    if (metric == QA_METRIC_L2 && kind != QA_QUANT_NONE && !norms)
        return fail("an L2 index over codes needs its norms tensor"), NULL;
    qa_wasm_index *h = (qa_wasm_index *)calloc(1, sizeof *h);
    if (!h) return fail("out of memory"), NULL;
    h->qz.kind = kind;
    h->qz.d = d;
    h->qz.dpad = qa_pad_dims(d);
    h->qz.code_size = qa_code_size(kind, d);
    h->qz.vmin = vmin;
    h->qz.scale = scale;
    h->g.n = n;
    h->g.M = M;
    h->g.M0 = M0;
    h->g.links0 = links0;
    h->g.level = level;
    h->g.up_nodes = up_nodes;
    h->g.up_off = up_off;
    h->g.n_up = n_up;
    h->g.upper = upper;
    h->g.entry = entry;
    h->g.max_level = max_level;
    h->sp.metric = metric;
    h->sp.d = d;
    h->sp.qz = &h->qz;
    h->sp.codes = codes;
    h->sp.norms = metric == QA_METRIC_L2 ? norms : NULL;
    int64_t pool = 0;
    for (int64_t i = 0; i < n; i++) pool += (int64_t)level[i] * M;
    if (pool != n_upper) {
        free(h);
        return fail("corrupt graph: upper-level pool size"), NULL;
    }
    if (check_graph(&h->g)) {
        free(h);
        return NULL;
    }
    if (qa_scratch_init(&h->s, n, 64, M0, h->qz.dpad)) {
        free(h);
        return fail("out of memory"), NULL;
    }
    return h;
}

EXPORT(qa_wasm_close) void qa_wasm_close(qa_wasm_index *h) {
    if (!h) return;
    qa_scratch_free(&h->s);
    free(h);
}

/* Graph search over the codes: the nres best rows in ascending approximate distance.
 * Returns how many were found, or -1 when memory ran out. */
EXPORT(qa_wasm_search)
int qa_wasm_search(qa_wasm_index *h, const float *q, int ef, int nres, int32_t *out_rows, float *out_d) {
    h->last_ndist = 0;
    int found = qa_hnsw_search(&h->g, &h->sp, q, ef, nres, &h->s, out_rows, out_d, &h->last_ndist);
    if (found < 0) fail("out of memory in search");
    return found;
}

EXPORT(qa_wasm_last_distances) double qa_wasm_last_distances(qa_wasm_index *h) {
    return (double)h->last_ndist;
}

/* Exact rerank of m candidates whose float vectors are rows[m * d]: the best k in
 * ascending distance (ties by row). */
EXPORT(qa_wasm_rerank)
int qa_wasm_rerank(qa_wasm_index *h, const float *q, const float *rows, const int32_t *row_ids, int m,
                   int k, int32_t *out_rows, float *out_d) {
    int found = qa_rerank(h->sp.metric, q, rows, row_ids, m, h->sp.d, k, out_rows, out_d);
    if (found < 0) fail("out of memory in rerank");
    return found;
}

/* Unit length in place, as native Python's normalisation (the same qa_normalize, the same
 * lane order under SIMD128 as under AVX2): rows of v[n * d]. Returns the first all-zero
 * row (left as is), or -1. */
EXPORT(qa_wasm_normalize) int qa_wasm_normalize(float *v, int n, int d) {
    int bad = -1;
    for (int i = 0; i < n; i++)
        if (qa_normalize(v + (int64_t)i * d, (size_t)d) && bad < 0) bad = i;
    return bad;
}

/* Float distances from q to each of m vectors (tests hold wasm to native with this). */
EXPORT(qa_wasm_float_dists)
void qa_wasm_float_dists(int metric, const float *q, const float *x, int m, int d, float *out) {
    for (int i = 0; i < m; i++) out[i] = qa_dist_f32(metric, q, x + (int64_t)i * d, (size_t)d);
}
