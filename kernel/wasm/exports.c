/* wasm32 entry points of the index kernel: the index ABI (kernel/index/index.h) over the
 * same hnsw.c / codec / distance.c / rerank.c as the native build, driven by the
 * JavaScript host with explicit memory (web/src/kernel.js, web/src/index.js).
 *
 * The host copies the in-memory part of the .qann file into linear memory once; the one
 * .qann reader (kernel/index/qann.c, the same C as the native build) checks every value
 * and points a qa_index_arrays into it, and the index ABI opens a handle over those
 * arrays. No stdio, no threads, no WASI imports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../distance.h"
#include "../hnsw.h"
#include "../index/qann.h"
#include "../rerank.h"

#define EXPORT(name) __attribute__((export_name(#name)))


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
 * 3. qa_wasm_index_open over those arrays (below). */

enum { INFO_FIXED = 21, INFO_DOUBLES = INFO_FIXED + 2 * QA_QANN_TENSORS };

/* out[INFO_DOUBLES]: header_bytes, part_bytes, memory codes, graph, ids, other,
 * gguf_version, format_version, metric, cosine, codec, d, n, M, M0, entry, max_level,
 * ef_construction, vectors_offset, vectors_crc32, link_bits, then (offset, bytes) of each tensor in
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
                            h->vectors_crc32, h->link_bits ? h->link_bits : QA_LINK_BITS_INT32};
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

/* ---- the index ABI (kernel/index/index.h) ---------------------------------------------
 * The host lays a qa_index_arrays out in linear memory (offsets: web/src/kernel.js, held
 * to the struct below), opens an index over it, and per query: writes the query into the
 * searcher's buffer, begin, reads the rows it names into the searcher's vectors buffer,
 * finish. Parameters and stats are structs in linear memory, not positional arguments. */
#include <stddef.h>
#include "../index/index.h"

#define FIELD(f, off) _Static_assert(offsetof(qa_index_arrays, f) == off, "web/src/kernel.js ARRAYS." #f);
FIELD(metric, 0) FIELD(cosine, 4) FIELD(codec, 8) FIELD(d, 12) FIELD(n, 16) FIELD(M, 24) FIELD(M0, 28)
FIELD(entry, 32) FIELD(max_level, 36) FIELD(ef_construction, 40) FIELD(vmin, 44) FIELD(scale, 48)
FIELD(codes, 52) FIELD(norms, 56) FIELD(level, 60) FIELD(links0, 64) FIELD(up_nodes, 68) FIELD(up_off, 72)
FIELD(n_up, 80) FIELD(upper, 88) FIELD(n_upper, 96) FIELD(ids, 104) FIELD(deleted, 108)
FIELD(vectors_offset, 112) FIELD(vectors_crc32, 120) FIELD(link_bits, 124) FIELD(links0_packed, 128)
_Static_assert(sizeof(qa_index_arrays) == 136, "web/src/kernel.js ARRAYS_BYTES");
_Static_assert(offsetof(qa_search_params, max_gap) == 24 && sizeof(qa_search_stats) == 48, "web/src/kernel.js");

static char open_error[256];

/* An index over arrays checked by qa_wasm_qann_read (their buffer must outlive it).
 * Returns NULL (see qa_wasm_error) when a value is out of range or memory ran out. */
EXPORT(qa_wasm_index_open) qa_index *qa_wasm_index_open(const qa_index_arrays *a) {
    qa_index *ix;
    if (qa_index_open(a, &ix, open_error, sizeof open_error)) return fail(open_error), NULL;
    return ix;
}
EXPORT(qa_wasm_index_close) void qa_wasm_index_close(qa_index *ix) { qa_index_close(ix); }

EXPORT(qa_wasm_searcher_new) qa_searcher *qa_wasm_searcher_new(qa_index *ix) {
    qa_searcher *s = qa_searcher_new(ix);
    if (!s) fail("out of memory");
    return s;
}
EXPORT(qa_wasm_searcher_free) void qa_wasm_searcher_free(qa_searcher *s) { qa_searcher_free(s); }
EXPORT(qa_wasm_searcher_error) const char *qa_wasm_searcher_error(qa_searcher *s) { return qa_searcher_error(s); }
EXPORT(qa_wasm_searcher_query) float *qa_wasm_searcher_query(qa_searcher *s) { return qa_searcher_query(s); }
EXPORT(qa_wasm_searcher_rows) const int32_t *qa_wasm_searcher_rows(qa_searcher *s) { return qa_searcher_rows(s); }
EXPORT(qa_wasm_searcher_vectors) float *qa_wasm_searcher_vectors(qa_searcher *s) { return qa_searcher_vectors(s); }
/* After begin: the (first, last) row ranges the rows were coalesced into, and how many */
EXPORT(qa_wasm_searcher_ranges) const int32_t *qa_wasm_searcher_ranges(qa_searcher *s) { return qa_searcher_ranges(s); }
EXPORT(qa_wasm_searcher_nranges) int qa_wasm_searcher_nranges(qa_searcher *s) {
    qa_search_stats st;
    qa_searcher_stats(s, &st);
    return (int)st.ranges;
}

/* begin over the query in the searcher's buffer: rows to fetch (>= 0), or < 0 on error */
EXPORT(qa_wasm_search_begin) int qa_wasm_search_begin(qa_searcher *s, const qa_search_params *p) {
    return (int)qa_search_begin(s, qa_searcher_query(s), p);
}
/* finish over the searcher's vectors buffer: k rows, distances and the stats */
EXPORT(qa_wasm_search_finish)
int qa_wasm_search_finish(qa_searcher *s, int32_t *out_rows, float *out_d, qa_search_stats *st) {
    return qa_search_finish(s, NULL, out_rows, out_d, st);
}

/* The codec table for the tests (web/test/codecs.test.js): the number of variants of a
 * row, and the distances from q to n codes by variant v (0 = the scalar reference), one
 * code at a time (batch = 0) or in one dist_batch call. Returns -1 for a bad row/variant. */
EXPORT(qa_wasm_codec_variants) int qa_wasm_codec_variants(int kind) {
    const qa_codec *c = qa_codec_get(kind);
    return c ? c->n_variants : -1;
}
EXPORT(qa_wasm_codec_distances)
int qa_wasm_codec_distances(int kind, int v, int metric, int d, const float *vmin, const float *scale, const float *q,
                            const uint8_t *codes, const float *norms, int n, int batch, float *out) {
    const qa_codec *c = qa_codec_get(kind);
    qa_quantizer qz;
    if (!c || v < 0 || v >= c->n_variants || n < 0 || qa_quantizer_init(&qz, kind, d, vmin, scale)) return -1;
    int16_t *w = (int16_t *)calloc((size_t)qz.dpad, sizeof(int16_t));
    int32_t *nodes = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!w || !nodes) { free(w); free(nodes); return -1; }
    qa_query qq = {.w = w};
    c->prepare(&qz, q, &qq);
    for (int i = 0; i < n; i++) nodes[i] = i;
    if (batch) c->variants[v].dist_batch(&qz, metric, &qq, codes, norms, nodes, n, out);
    else
        for (int i = 0; i < n; i++)
            out[i] = c->variants[v].dist(&qz, metric, &qq, codes + (int64_t)i * qz.code_size, norms ? norms[i] : 0.0f);
    free(w);
    free(nodes);
    return 0;
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
