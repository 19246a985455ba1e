/* wasm32 entry points of the index kernel: the same hnsw.c / quant.c / distance.c /
 * rerank.c as the native build, behind a handle the JavaScript host drives with explicit
 * memory (web/src/kernel.js).
 *
 * The host copies the in-memory part of the .qann file into linear memory once; the one
 * .qann reader (kernel/index/qann.c, the same C as the native build) checks it and points
 * the arrays into it, and qa_wasm_open makes a search handle over them. Per query the host makes one qa_wasm_search call (graph search
 * over the codes), one batched store read of the candidates' float vectors, and one
 * qa_wasm_rerank call. No stdio, no threads, no WASI imports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../distance.h"
#include "../hnsw.h"
#include "../index/qann.h"
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

static char last_error[512];

/* The message of the last failed call (a NUL-terminated string in linear memory). */
EXPORT(qa_wasm_error) const char *qa_wasm_error(void) { return last_error; }

EXPORT(qa_wasm_alloc) void *qa_wasm_alloc(size_t n) { return malloc(n ? n : 1); }
EXPORT(qa_wasm_free) void qa_wasm_free(void *p) { free(p); }

static int fail(const char *msg) {
    qa_format(last_error, sizeof last_error, "%s", msg);
    return -1;
}

/* ---- opening a .qann: the one reader (kernel/index/qann.c) ----------------------------
 * 1. qa_wasm_qann_info over a prefix of the file: the header checked, its sizes (for the
 *    memory budget) and where the in-memory part ends; -5 (QA_ERR_NEED_MORE) with out[0]
 *    = the prefix length to fetch next.
 * 2. qa_wasm_qann_read over the in-memory part, in wasm memory: everything checked, the
 *    arrays point into that buffer (which the host keeps until close).
 * 3. qa_wasm_open over those arrays. */

enum { INFO_FIXED = 20, INFO_DOUBLES = INFO_FIXED + 2 * QA_QANN_TENSORS };

/* out[INFO_DOUBLES]: header_bytes, part_bytes, memory codes, graph, ids, other,
 * gguf_version, format_version, metric, cosine, codec, d, n, M, M0, entry, max_level,
 * ef_construction, vectors_offset, vectors_crc32, then (offset, bytes) of each tensor in
 * QA_QANN_* order (0, 0 when absent). Returns 0, QA_ERR_NEED_MORE or an error. */
EXPORT(qa_wasm_qann_info) int qa_wasm_qann_info(const uint8_t *buf, size_t len, double file_len, double *out) {
    qa_qann_info in;
    if (!(file_len >= 0 && file_len < 9007199254740992.0)) return fail("bad file length"), QA_ERR_ARG;
    int rc = qa_qann_info_read(buf, len, (uint64_t)file_len, &in, last_error, sizeof last_error);
    memset(out, 0, sizeof(double) * INFO_DOUBLES);
    out[0] = (double)in.header_bytes;
    if (rc) return rc;
    const qa_index_arrays *h = &in.header;
    double v[INFO_FIXED] = {(double)in.header_bytes, (double)in.part_bytes, (double)in.mem_codes,
                            (double)in.mem_graph, (double)in.mem_ids, (double)in.mem_other, in.gguf_version,
                            in.format_version, h->metric, h->cosine, h->codec, h->d, (double)h->n, h->M, h->M0,
                            h->entry, h->max_level, h->ef_construction, (double)h->vectors_offset,
                            h->vectors_crc32};
    memcpy(out, v, sizeof v);
    for (int t = 0; t < QA_QANN_TENSORS; t++) {
        out[INFO_FIXED + 2 * t] = (double)in.offset[t];
        out[INFO_FIXED + 2 * t + 1] = (double)in.nbytes[t];
    }
    return QA_OK;
}

/* The arrays of the in-memory part buf[0, len) (the host frees the result with
 * qa_wasm_free after qa_wasm_open), or NULL (see qa_wasm_error). */
EXPORT(qa_wasm_qann_read) qa_index_arrays *qa_wasm_qann_read(const uint8_t *buf, size_t len, double file_len) {
    if (!(file_len >= 0 && file_len < 9007199254740992.0)) return fail("bad file length"), NULL;
    qa_index_arrays *a = (qa_index_arrays *)malloc(sizeof *a);
    if (!a) return fail("out of memory"), NULL;
    if (qa_qann_read(buf, len, (uint64_t)file_len, a, last_error, sizeof last_error)) {
        free(a);
        return NULL;
    }
    return a;
}

/* Opens an index over arrays checked by qa_wasm_qann_read (their buffer must outlive the
 * handle). Returns NULL (see qa_wasm_error) when memory ran out. */
EXPORT(qa_wasm_open) qa_wasm_index *qa_wasm_open(const qa_index_arrays *a) {
    qa_wasm_index *h = (qa_wasm_index *)calloc(1, sizeof *h);
    if (!h) return fail("out of memory"), NULL;
    h->qz.kind = a->codec;
    h->qz.d = a->d;
    h->qz.dpad = qa_pad_dims(a->d);
    h->qz.code_size = qa_code_size(a->codec, a->d);
    h->qz.vmin = a->vmin;
    h->qz.scale = a->scale;
    /* the graph is only read by search; qa_graph's pointers are not const for the build */
    h->g.n = (int32_t)a->n;
    h->g.M = a->M;
    h->g.M0 = a->M0;
    h->g.links0 = (int32_t *)a->links0;
    h->g.level = (uint8_t *)a->level;
    h->g.up_nodes = a->up_nodes;
    h->g.up_off = a->up_off;
    h->g.n_up = (int32_t)a->n_up;
    h->g.upper = (int32_t *)a->upper;
    h->g.entry = a->entry;
    h->g.max_level = a->max_level;
    h->sp.metric = a->metric;
    h->sp.d = a->d;
    h->sp.qz = &h->qz;
    h->sp.codes = a->codes;
    h->sp.norms = a->metric == QA_METRIC_L2 ? a->norms : NULL;
    if (qa_scratch_init(&h->s, a->n, 64, a->M0, h->qz.dpad)) {
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
