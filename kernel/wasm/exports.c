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

enum { INFO_FIXED = 22, INFO_DOUBLES = INFO_FIXED + 2 * QA_QANN_TENSORS };

/* out[INFO_DOUBLES]: header_bytes, part_bytes, memory codes, graph, ids, other,
 * gguf_version, format_version, metric, cosine, codec, d, n, M, M0, entry, max_level,
 * ef_construction, vectors_offset, vectors_crc32, link_bits, next_id (0: none; exact below 2^53),
 * then (offset, bytes) of each tensor in
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
                            h->vectors_crc32, h->link_bits ? h->link_bits : QA_LINK_BITS_INT32,
                            (double)in.next_id};
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
FIELD(resid, 132)
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

/* ---- a text store (INDEX.texts, quantann/text.py TextStore): the one GGUF reader -------
 * Parses the whole file in buf and checks it the way native does (its architecture; ids
 * strictly increasing; offsets from 0, non-decreasing, ending inside the blob; fields
 * likewise when present). out[TEXTS_DOUBLES]: n, then (file offset, bytes) of ids,
 * offsets, bytes, fields offsets, fields bytes (0, 0 when absent), then (file offset,
 * bytes) of the model string (0, 0 when absent), then (file offset, bytes) of the six
 * lexical index tensors (kernel/text/lexical.h; all 0 when the store has none), their types
 * and lengths checked here and their content by qa_wasm_lex_open. Returns 0 or an error
 * (qa_wasm_error). */
#include "../constants.h"
#include "../gguf/gguf.h"

enum { TEXTS_DOUBLES = 25, LEX_PARTS = 6 };
static const char *const lex_names[LEX_PARTS] = {QA_TEXT_STORE_LEX_TERMS, QA_TEXT_STORE_LEX_TERM_OFFSETS,
                                                 QA_TEXT_STORE_LEX_DF, QA_TEXT_STORE_LEX_POST_OFFSETS,
                                                 QA_TEXT_STORE_LEX_POSTINGS, QA_TEXT_STORE_LEX_DOC_LEN};
static const uint32_t lex_types[LEX_PARTS] = {QA_T_I8, QA_T_I32, QA_T_I32, QA_T_I64, QA_T_I8, QA_T_I16};

static const qa_gguf_tensor *texts_tensor(const qa_gguf *g, const char *name, uint32_t type, uint64_t count) {
    const qa_gguf_tensor *t = qa_gguf_find_tensor(g, name);
    if (!t) return NULL;
    if (t->type != type || t->n_dims != 1 || (count != UINT64_MAX && (uint64_t)t->ne[0] != count)) {
        qa_format(last_error, sizeof last_error, "corrupt text store (tensor %s has the wrong type or length)", name);
        return (const qa_gguf_tensor *)-1;
    }
    return t;
}

static int texts_offsets_ok(const uint8_t *p, uint64_t n, uint64_t blob) {
    uint64_t prev = 0;
    for (uint64_t i = 0; i <= n; i++) {
        uint64_t v;
        memcpy(&v, p + 8 * i, 8);
        if ((i == 0 && v != 0) || v < prev || v > blob) return 0;
        prev = v;
    }
    return prev < blob; /* the writer adds one trailing byte so that no tensor is empty */
}

EXPORT(qa_wasm_texts_read) int qa_wasm_texts_read(const uint8_t *buf, size_t len, double *out) {
    uint64_t n_kv, n_t;
    memset(out, 0, sizeof(double) * TEXTS_DOUBLES);
    if (qa_gguf_counts(buf, len, &n_kv, &n_t, last_error, sizeof last_error)) return QA_ERR_FORMAT;
    qa_gguf_kv *kv = (qa_gguf_kv *)malloc(sizeof *kv * (n_kv ? n_kv : 1));
    qa_gguf_tensor *ts = (qa_gguf_tensor *)malloc(sizeof *ts * (n_t ? n_t : 1));
    int rc = QA_ERR_FORMAT;
    qa_gguf g;
    if (!kv || !ts) {
        fail("out of memory");
        goto done;
    }
    if (qa_gguf_parse(&g, buf, len, kv, n_kv, ts, n_t, last_error, sizeof last_error)) goto done;
    const qa_gguf_kv *arch = qa_gguf_find_kv(&g, "general.architecture");
    const size_t alen = sizeof QA_TEXT_STORE_ARCH - 1;
    uint64_t arch_len = 0;
    if (arch && arch->type == QA_GV_STRING) memcpy(&arch_len, arch->val, 8);
    if (!arch || arch->type != QA_GV_STRING || arch_len != alen || memcmp(arch->val + 8, QA_TEXT_STORE_ARCH, alen) != 0) {
        fail("not a quantann text store");
        goto done;
    }
    const qa_gguf_tensor *ids = texts_tensor(&g, QA_TEXT_STORE_IDS, QA_T_I64, UINT64_MAX);
    if (!ids || ids == (void *)-1) {
        if (!ids) fail("not a quantann text store (no " QA_TEXT_STORE_IDS ")");
        goto done;
    }
    uint64_t n = (uint64_t)ids->ne[0];
    const qa_gguf_tensor *t[5] = {ids, texts_tensor(&g, QA_TEXT_STORE_OFFSETS, QA_T_I64, n + 1),
                                  texts_tensor(&g, QA_TEXT_STORE_BYTES, QA_T_I8, UINT64_MAX),
                                  texts_tensor(&g, QA_TEXT_STORE_FIELDS_OFFSETS, QA_T_I64, n + 1),
                                  texts_tensor(&g, QA_TEXT_STORE_FIELDS_BYTES, QA_T_I8, UINT64_MAX)};
    for (int i = 1; i < 5; i++)
        if (t[i] == (void *)-1) goto done;
    if (!t[1] || !t[2]) {
        fail("not a quantann text store (no offsets or bytes)");
        goto done;
    }
    if (!t[3] != !t[4]) {
        fail("corrupt text store (field offsets without field bytes, or the reverse)");
        goto done;
    }
    for (uint64_t i = 1; i < n; i++) {
        uint64_t a, b;
        memcpy(&a, ids->data + 8 * (i - 1), 8);
        memcpy(&b, ids->data + 8 * i, 8);
        if (b <= a) {
            fail("corrupt text store (offsets or ids out of order)");
            goto done;
        }
    }
    if (!texts_offsets_ok(t[1]->data, n, t[2]->nbytes)) {
        fail("corrupt text store (offsets or ids out of order)");
        goto done;
    }
    if (t[3] && !texts_offsets_ok(t[3]->data, n, t[4]->nbytes)) {
        fail("corrupt text store (field offsets out of order)");
        goto done;
    }
    out[0] = (double)n;
    for (int i = 0; i < 5; i++)
        if (t[i]) {
            out[1 + 2 * i] = (double)(t[i]->data - buf);
            out[2 + 2 * i] = (double)t[i]->nbytes;
        }
    const qa_gguf_tensor *lx[LEX_PARTS];
    int n_lex = 0;
    for (int i = 0; i < LEX_PARTS; i++) {
        lx[i] = texts_tensor(&g, lex_names[i], lex_types[i], UINT64_MAX);
        if (lx[i] == (void *)-1) goto done;
        n_lex += lx[i] != NULL;
    }
    if (n_lex && (n_lex < LEX_PARTS || lx[1]->ne[0] < 1 || lx[3]->ne[0] != lx[1]->ne[0] ||
                  lx[2]->ne[0] < lx[1]->ne[0] - 1 || (uint64_t)lx[5]->ne[0] != n)) {
        fail(n_lex < LEX_PARTS ? "corrupt text store (part of the lexical index is missing)"
                               : "corrupt text store (lexical index arrays disagree on their lengths)");
        goto done;
    }
    for (int i = 0; i < LEX_PARTS && n_lex; i++) {
        out[13 + 2 * i] = (double)(lx[i]->data - buf);
        out[14 + 2 * i] = (double)lx[i]->nbytes;
    }
    const qa_gguf_kv *model = qa_gguf_find_kv(&g, QA_TEXT_STORE_MODEL_KEY);
    if (model && model->type == QA_GV_STRING) {
        uint64_t mlen;
        memcpy(&mlen, model->val, 8);
        out[11] = (double)(model->val + 8 - buf);
        out[12] = (double)mlen;
    }
    rc = QA_OK;
done:
    free(kv);
    free(ts);
    return rc;
}

/* ---- the lexical index of a text store (kernel/text/lexical.h) ---------------------------
 * qa_wasm_lex_open over the six tensors as qa_wasm_texts_read found them, copied by the host
 * into one block at base: parts[2i] = tensor i's offset from base, parts[2i+1] its bytes.
 * Checks everything (qa_lex_check); returns a handle (the block stays the host's) or 0. */
#include "../text/lexical.h"

EXPORT(qa_wasm_lex_open) qa_lex *qa_wasm_lex_open(const uint8_t *base, const double *parts, double n_docs) {
    qa_lex *l = (qa_lex *)calloc(1, sizeof *l);
    if (!l) {
        fail("out of memory");
        return NULL;
    }
#define PART(i) (base + (size_t)parts[2 * (i)])
    l->n_docs = (uint64_t)n_docs;
    l->n_terms = (uint64_t)parts[3] / 4 - 1;
    l->terms = PART(0);
    l->terms_len = (uint64_t)parts[1];
    l->term_off = (const uint32_t *)PART(1);
    l->df = (const uint32_t *)PART(2);
    l->post_off = (const uint64_t *)PART(3);
    l->postings = PART(4);
    l->postings_len = (uint64_t)parts[9];
    l->doc_len = (const uint16_t *)PART(5);
#undef PART
    char err[256];
    if (qa_lex_check(l, err, sizeof err)) {
        qa_format(last_error, sizeof last_error, "corrupt text store (%s)", err);
        free(l);
        return NULL;
    }
    return l;
}

EXPORT(qa_wasm_lex_close) void qa_wasm_lex_close(qa_lex *l) { free(l); }

/* The BM25 top-k of the UTF-8 query (len bytes): positions and scores, best first; their
 * count, or < 0 (out of memory). */
EXPORT(qa_wasm_lex_search)
int qa_wasm_lex_search(const qa_lex *l, const uint8_t *query, int len, int k, uint32_t *out_doc, float *out_score) {
    if (k > (int64_t)l->n_docs) k = (int)l->n_docs;
    int64_t m = qa_lex_search(l, query, (size_t)len, k, out_doc, out_score);
    if (m < 0) fail("out of memory");
    return (int)m;
}

/* Reciprocal rank fusion (qa_rrf_fuse): the count written to out_id, out_score. */
EXPORT(qa_wasm_rrf_fuse)
int qa_wasm_rrf_fuse(const uint64_t *a, int na, const uint64_t *b, int nb, double wa, double wb, double rrf_k, int k,
                     uint64_t *out_id, double *out_score) {
    int64_t m = qa_rrf_fuse(a, na, b, nb, wa, wb, rrf_k, k, out_id, out_score);
    if (m < 0) fail("out of memory");
    return (int)m;
}
