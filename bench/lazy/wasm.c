/* wasm32 entry points of the lazy-loading baseline (bench/lazy/lazy.c), for the browser
 * benchmark: its own module, bench/web/dist/lazy.wasm (bench/lazy/build-wasm.sh), so that
 * the product's web/dist/quantann.wasm carries none of it.
 *
 * A float HNSW search whose vectors live in the store behind an LRU cache of `cap`
 * vectors: begin, then while it returns r > 0, the host reads rows missing[0..r) in one
 * batch, puts them, and resumes. The memory helpers have the names web/src/kernel.js
 * expects, so the same loader drives this module. */
#include <stdint.h>
#include <stdlib.h>

#include "lazy.h"
#include "index/index.h"
#include "index/qann.h"

#define EXPORT(name) __attribute__((export_name(#name)))

static const char *last_error = "";

EXPORT(qa_wasm_error) const char *qa_wasm_error(void) { return last_error; }
EXPORT(qa_wasm_alloc) void *qa_wasm_alloc(size_t n) { return malloc(n ? n : 1); }
EXPORT(qa_wasm_free) void qa_wasm_free(void *p) { free(p); }
/* A packed level 0 (format 3, kernel/links.h) as the int32 lists this baseline walks. */
EXPORT(qa_wasm_lazy_unpack_links) void qa_wasm_lazy_unpack_links(const uint8_t *packed, int32_t n, int M0, int bits,
                                                                   int32_t *out) {
    qa_links_unpack(packed, n, M0, bits, out);
}

static int fail(const char *msg) {
    last_error = msg;
    return -1;
}

typedef struct {
    qa_graph g;
    qa_lru cache;
    qa_scratch s;
    qa_lazy ls;
    int metric;
    void *mem;        /* the cache block */
    size_t mem_bytes;
    float *q;         /* [d] the query, written by the host */
    int32_t *missing; /* [M0 + 1] */
} qa_wasm_lazy;

EXPORT(qa_wasm_lazy_open)
qa_wasm_lazy *qa_wasm_lazy_open(int metric, int d, int32_t n, int M, int M0, int32_t entry, int max_level,
                                uint8_t *level, int32_t *links0, const int32_t *up_nodes, const int64_t *up_off,
                                int32_t n_up, int32_t *upper, int32_t n_upper, int32_t cap) {
    if (d < 1 || d > 65536 || n < 1 || M < 2 || M > 127 || M0 != 2 * M || n_up < 0 || n_upper < 0 || cap < M0 + 1)
        return fail("bad parameters (the cache must hold at least M0 + 1 vectors)"), NULL;
    qa_wasm_lazy *h = (qa_wasm_lazy *)calloc(1, sizeof *h);
    if (!h) return fail("out of memory"), NULL;
    h->g = (qa_graph){.n = n, .M = M, .M0 = M0, .links0 = links0, .level = level, .up_nodes = up_nodes,
                      .up_off = up_off, .n_up = n_up, .upper = upper, .entry = entry, .max_level = max_level};
    /* every link the search follows, checked by the product's one graph check */
    static char err[256];
    qa_index_arrays a = {.n = n, .M = M, .M0 = M0, .entry = entry, .max_level = max_level, .level = level,
                         .links0 = links0, .up_nodes = up_nodes, .up_off = up_off, .n_up = n_up, .upper = upper,
                         .n_upper = n_upper};
    if (qa_qann_check_graph(&a, err, sizeof err)) {
        free(h);
        return fail(err), NULL;
    }
    h->metric = metric;
    h->mem_bytes = qa_lru_bytes(n, cap, d);
    h->mem = aligned_alloc(16, (h->mem_bytes + 15) & ~(size_t)15);
    h->q = (float *)malloc(sizeof(float) * (size_t)d);
    h->missing = (int32_t *)malloc(sizeof(int32_t) * (size_t)(M0 + 1));
    if (!h->mem || !h->q || !h->missing || qa_lru_init(&h->cache, h->mem, h->mem_bytes, n, cap, d) ||
        qa_scratch_init(&h->s, n, 64, M0, qa_pad_dims(d))) {
        free(h->mem); free(h->q); free(h->missing); free(h);
        return fail("out of memory"), NULL;
    }
    return h;
}

EXPORT(qa_wasm_lazy_query) float *qa_wasm_lazy_query(qa_wasm_lazy *h) { return h->q; }
EXPORT(qa_wasm_lazy_missing) int32_t *qa_wasm_lazy_missing(qa_wasm_lazy *h) { return h->missing; }
EXPORT(qa_wasm_lazy_cache_bytes) double qa_wasm_lazy_cache_bytes(qa_wasm_lazy *h) { return (double)h->mem_bytes; }

EXPORT(qa_wasm_lazy_begin) int qa_wasm_lazy_begin(qa_wasm_lazy *h, int ef, int nres) {
    return qa_lazy_begin(&h->ls, &h->g, &h->cache, &h->s, h->metric, h->q, ef, nres, h->missing);
}
/* The (first, last) ranges of m ascending rows within max_gap (the kernel's one coalescing),
 * for the store read; returns how many. */
EXPORT(qa_wasm_lazy_ranges) int qa_wasm_lazy_ranges(const int32_t *rows, int m, int max_gap, int32_t *ranges) {
    return (int)qa_coalesce_rows(rows, m, max_gap, ranges, NULL);
}
EXPORT(qa_wasm_lazy_put) void qa_wasm_lazy_put(qa_wasm_lazy *h, const int32_t *rows, const float *vecs, int m) {
    for (int i = 0; i < m; i++) qa_lru_put(&h->cache, rows[i], vecs + (int64_t)i * h->cache.d);
}
EXPORT(qa_wasm_lazy_resume) int qa_wasm_lazy_resume(qa_wasm_lazy *h) { return qa_lazy_resume(&h->ls); }
EXPORT(qa_wasm_lazy_result) int qa_wasm_lazy_result(qa_wasm_lazy *h, int32_t *out_rows, float *out_d) {
    return qa_lazy_result(&h->ls, out_rows, out_d);
}
EXPORT(qa_wasm_lazy_rounds) double qa_wasm_lazy_rounds(qa_wasm_lazy *h) { return (double)h->ls.rounds; }
EXPORT(qa_wasm_lazy_close) void qa_wasm_lazy_close(qa_wasm_lazy *h) {
    if (!h) return;
    qa_scratch_free(&h->s);
    free(h->mem); free(h->q); free(h->missing); free(h);
}
