/* CPython glue for the index ABI (kernel/index/index.h): buffers in, buffers out.
 *
 *   Index(**arrays)       a qa_index over numpy arrays named as in kernel/index/arrays.h
 *   Searcher(index)       a qa_searcher: search() runs begin -> read -> finish for a batch
 *                         in one call without the GIL when the index has a native source
 *                         (a file descriptor read with pread, or a buffer); begin() and
 *                         finish() let Python stores read in between.
 * Host I/O (pread of the ranges begin returns) lives here, not in the portable kernel. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "distance.h"
#include "index/index.h"
#include "links.h"
#include "py/buffers.h"
#include "py/file_glue.h"
#include "py/lexical_glue.h"

static PyObject *kernel_error(int rc, const char *msg) {
    PyErr_SetString(rc == QA_ENOMEM ? PyExc_MemoryError : PyExc_ValueError, msg);
    return NULL;
}

static inline int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- Index -------------------------------------------------------------------------- */

enum { A_VMIN, A_SCALE, A_CODES, A_NORMS, A_LEVEL, A_LINKS0, A_UPN, A_UPO, A_UPPER, A_DEL, A_RESID, A_COUNT };
static const char *array_names[A_COUNT] = {"vmin", "scale", "codes", "norms", "level",
                                           "links0", "up_nodes", "up_off", "upper", "deleted", "residuals"};

typedef struct {
    PyObject_HEAD
    qa_index *ix;
    qa_index_arrays a;
    PyObject *objs[A_COUNT];
    qa_py_buf bufs[A_COUNT];
    /* where full vectors come from for the one-call search: a file or a buffer */
    int src_fd;
    int64_t src_base;
    int64_t src_max_gap;
    qa_py_buf src_buf;
} IndexObject;

static void index_release(IndexObject *self) {
    if (self->ix) qa_index_close(self->ix);
    self->ix = NULL;
    for (int i = 0; i < A_COUNT; i++) {
        qa_py_rel(&self->bufs[i]);
        Py_CLEAR(self->objs[i]);
    }
    qa_py_rel(&self->src_buf);
    self->src_fd = -1;
}

/* Index(metric, cosine, codec, d, M, M0, entry, max_level, ef_construction, vmin=, scale=,
 *       codes=, norms=, level=, links0=, up_nodes=, up_off=, upper=, deleted=, link_bits=32,
 *       residuals=)
 * link_bits < 32: links0 holds the packed level-0 lists (kernel/links.h). */
static int Index_init(IndexObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"metric", "cosine", "codec", "d", "M", "M0", "entry", "max_level",
                             "ef_construction", "vmin", "scale", "codes", "norms", "level", "links0",
                             "up_nodes", "up_off", "upper", "deleted", "link_bits", "residuals", NULL};
    PyObject *o[A_COUNT] = {0};
    long long d, M, M0, entry, max_level, efc, link_bits = QA_LINK_BITS_INT32;
    int metric, cosine, codec;
    if (self->ix) { /* searchers point into it: an Index is made once */
        PyErr_SetString(PyExc_RuntimeError, "this Index is already initialised");
        return -1;
    }
    index_release(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiiLLLLLL|OOOOOOOOOOLO", kwlist, &metric, &cosine, &codec, &d, &M,
                                     &M0, &entry, &max_level, &efc, &o[A_VMIN], &o[A_SCALE], &o[A_CODES],
                                     &o[A_NORMS], &o[A_LEVEL], &o[A_LINKS0], &o[A_UPN], &o[A_UPO], &o[A_UPPER],
                                     &o[A_DEL], &link_bits, &o[A_RESID]))
        return -1;
    if (link_bits < 1 || link_bits > QA_LINK_BITS_INT32) {
        PyErr_Format(PyExc_ValueError, "link_bits=%lld out of range (1..32)", link_bits);
        return -1;
    }
    const int packed = link_bits != QA_LINK_BITS_INT32;
    if (d < 1 || d > QA_MAX_DIM || M < 1 || M > QA_MAX_M || M0 < 1 || M0 > 2 * QA_MAX_M) {
        PyErr_Format(PyExc_ValueError, "dim=%lld, M=%lld or M0=%lld out of range", d, M, M0);
        return -1;
    }
    for (int i = 0; i < A_COUNT; i++)
        if (qa_py_get_buf(o[i], &self->bufs[i], 0, 1, 0, array_names[i])) {
            index_release(self);
            return -1;
        }
    qa_py_buf *B = self->bufs;
    int64_t n = B[A_LEVEL].b.len;
    int cs = qa_code_size(codec, (int)d);
    int64_t n_up = B[A_UPN].b.len / 4;
    const char *bad = NULL;
    if (cs < 0) bad = "unknown codec";
    else if (B[A_CODES].b.len < n * cs) bad = "codes shorter than count x code size";
    else if (!packed && B[A_LINKS0].b.len < n * M0 * 4) bad = "links0 shorter than count x M0";
    else if (packed && B[A_LINKS0].b.len < n * qa_link_row_bytes((int)M0, (int)link_bits))
        bad = "packed links0 shorter than count x row bytes";
    else if (B[A_UPO].b.len / 8 != n_up) bad = "up_nodes and up_off differ in length";
    else if (B[A_NORMS].held && B[A_NORMS].b.len < n * 4) bad = "norms shorter than count";
    else if (B[A_RESID].held && B[A_RESID].b.len < n * 4) bad = "residuals shorter than count";
    else if (B[A_DEL].held && B[A_DEL].b.len < (n + 7) / 8) bad = "deleted bitset shorter than count";
    else if (codec != QA_CODEC_NONE && (B[A_VMIN].b.len < qa_pad_dims((int)d) * 4 || B[A_SCALE].b.len < qa_pad_dims((int)d) * 4))
        bad = "quantizer parameters shorter than the padded dimensions";
    if (bad) {
        PyErr_SetString(PyExc_ValueError, bad);
        index_release(self);
        return -1;
    }
    for (int i = 0; i < A_COUNT; i++) {
        self->objs[i] = o[i];
        Py_XINCREF(o[i]);
    }
    qa_index_arrays *a = &self->a;
    memset(a, 0, sizeof *a);
    a->metric = metric;
    a->cosine = cosine;
    a->codec = codec;
    a->d = (int)d;
    a->n = n;
    a->M = (int)M;
    a->M0 = (int)M0;
    a->entry = (int32_t)(entry < -1 ? -2 : entry > INT32_MAX ? INT32_MAX : entry);
    a->max_level = (int)(max_level < 0 ? -1 : max_level > 255 ? 255 : max_level);
    a->ef_construction = (int)(efc < 0 ? 0 : efc > INT32_MAX ? INT32_MAX : efc);
    a->vmin = B[A_VMIN].b.buf;
    a->scale = B[A_SCALE].b.buf;
    a->codes = B[A_CODES].b.buf;
    a->norms = B[A_NORMS].held ? B[A_NORMS].b.buf : NULL;
    a->resid = B[A_RESID].held ? B[A_RESID].b.buf : NULL;
    a->level = B[A_LEVEL].b.buf;
    a->link_bits = (int)link_bits;
    if (packed) a->links0_packed = B[A_LINKS0].b.buf;
    else a->links0 = B[A_LINKS0].b.buf;
    a->up_nodes = B[A_UPN].b.buf;
    a->up_off = B[A_UPO].b.buf;
    a->n_up = n_up;
    a->upper = B[A_UPPER].b.buf;
    a->n_upper = B[A_UPPER].b.len / 4;
    a->deleted = B[A_DEL].held ? B[A_DEL].b.buf : NULL;
    char err[256];
    int rc = qa_index_open(a, &self->ix, err, sizeof err);
    if (rc) {
        index_release(self);
        kernel_error(rc, err);
        return -1;
    }
    return 0;
}

static void Index_dealloc(IndexObject *self) {
    index_release(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Index_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    IndexObject *self = (IndexObject *)type->tp_alloc(type, 0);
    if (self) self->src_fd = -1;
    return (PyObject *)self;
}

/* insert(start, end, vectors, space|None, threads) -> (entry, max_level) */
static PyObject *Index_insert(IndexObject *self, PyObject *args) {
    long long start, end, threads;
    PyObject *v_o, *sp_o;
    if (!PyArg_ParseTuple(args, "LLOOL", &start, &end, &v_o, &sp_o, &threads)) return NULL;
    if (!self->ix) { PyErr_SetString(PyExc_RuntimeError, "index not initialised"); return NULL; }
    const int d = self->a.d;
    if (start < 0 || end < start || end > self->a.n) {
        PyErr_Format(PyExc_ValueError, "insert range %lld..%lld outside the %lld rows", start, end, (long long)self->a.n);
        return NULL;
    }
    qa_py_buf v, sp, links, upper;
    if (qa_py_get_buf(v_o, &v, 0, 4 * (Py_ssize_t)d, end - start, "vectors")) return NULL;
    if (qa_py_get_buf(sp_o, &sp, 0, 4 * (Py_ssize_t)d, sp_o == Py_None ? 0 : end, "float space")) { qa_py_rel(&v); return NULL; }
    /* writable views of the same link arrays the index reads */
    if (qa_py_get_buf(self->objs[A_LINKS0], &links, 1, 1, 0, "links0")) { qa_py_rel(&v); qa_py_rel(&sp); return NULL; }
    if (qa_py_get_buf(self->objs[A_UPPER], &upper, 1, 1, 0, "upper")) { qa_py_rel(&v); qa_py_rel(&sp); qa_py_rel(&links); return NULL; }
    qa_insert_params p = {.start = start, .end = end, .vectors = v.b.buf,
                          .space = sp.held ? sp.b.buf : NULL, .links0 = links.b.buf,
                          .upper = upper.held ? upper.b.buf : NULL, .threads = threads};
    if (!self->a.n_upper) p.upper = (int32_t *)self->a.upper;
    char err[256];
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qa_index_insert(self->ix, &p, err, sizeof err);
    Py_END_ALLOW_THREADS
    qa_py_rel(&v); qa_py_rel(&sp); qa_py_rel(&links); qa_py_rel(&upper);
    if (rc) return kernel_error(rc, err);
    qa_index_info info;
    qa_index_info_get(self->ix, &info);
    return Py_BuildValue("ii", info.entry, info.max_level);
}

/* set_source(("fd", fd, base, max_gap) | ("buffer", array) | None) */
static PyObject *Index_set_source(IndexObject *self, PyObject *args) {
    PyObject *src;
    if (!PyArg_ParseTuple(args, "O", &src)) return NULL;
    qa_py_rel(&self->src_buf);
    self->src_fd = -1;
    if (src == Py_None) Py_RETURN_NONE;
    const char *kind;
    PyObject *a1 = NULL;
    long long base = 0, max_gap = 0;
    if (!PyArg_ParseTuple(src, "s|OLL", &kind, &a1, &base, &max_gap)) return NULL;
    if (strcmp(kind, "fd") == 0) {
        int fd = (int)PyLong_AsLong(a1);
        if (PyErr_Occurred()) return NULL;
        if (base < 0 || max_gap < 0) { PyErr_SetString(PyExc_ValueError, "negative offset or gap"); return NULL; }
        self->src_fd = fd;
        self->src_base = base;
        self->src_max_gap = max_gap;
    } else if (strcmp(kind, "buffer") == 0) {
        if (qa_py_get_buf(a1, &self->src_buf, 0, 4 * (Py_ssize_t)self->a.d, self->a.n, "vectors buffer")) return NULL;
    } else {
        PyErr_Format(PyExc_ValueError, "unknown source %s", kind);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* calibrate_bound(vectors, nq, k, ef, miss_lo, miss_hi) -> eps (kernel/index/index.h); defaults: the build's */
static PyObject *Index_calibrate_bound(IndexObject *self, PyObject *args) {
    PyObject *v_o;
    int nq = QA_CALIBRATE_QUERIES, k = QA_CALIBRATE_K, ef = QA_CALIBRATE_EF;
    double miss_lo = QA_CALIBRATE_MISS_LO, miss_hi = QA_CALIBRATE_MISS_HI;
    if (!PyArg_ParseTuple(args, "O|iiidd", &v_o, &nq, &k, &ef, &miss_lo, &miss_hi)) return NULL;
    if (!self->ix) { PyErr_SetString(PyExc_RuntimeError, "index not initialised"); return NULL; }
    qa_py_buf v;
    if (qa_py_get_buf(v_o, &v, 0, 4 * (Py_ssize_t)self->a.d, self->a.n, "vectors")) return NULL;
    char err[256];
    float eps;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qa_index_calibrate_bound(self->ix, v.b.buf, nq, k, ef, miss_lo, miss_hi, &eps, err, sizeof err);
    Py_END_ALLOW_THREADS
    qa_py_rel(&v);
    if (rc) return kernel_error(rc, err);
    return PyFloat_FromDouble(eps);
}

/* link_level0(on) (kernel/index/index.h: an experiment of the level-0 layout) */
static PyObject *Index_link_level0(IndexObject *self, PyObject *args) {
    int on;
    if (!PyArg_ParseTuple(args, "p", &on)) return NULL;
    if (!self->ix) { PyErr_SetString(PyExc_RuntimeError, "index not initialised"); return NULL; }
    char err[256];
    int rc = qa_index_link_level0(self->ix, on, err, sizeof err);
    if (rc) return kernel_error(rc, err);
    Py_RETURN_NONE;
}

static PyMethodDef Index_methods[] = {
    {"link_level0", (PyCFunction)Index_link_level0, METH_VARARGS, "link_level0(on): level-0 lists and codes in one record (experiment)"},
    {"calibrate_bound", (PyCFunction)Index_calibrate_bound, METH_VARARGS,
     "calibrate_bound(vectors[, nq, k, ef, miss_lo, miss_hi]) -> rerank auto's bound multiplier for this index"},
    {"insert", (PyCFunction)Index_insert, METH_VARARGS, "insert(start, end, vectors, space|None, threads) -> (entry, max_level)"},
    {"set_source", (PyCFunction)Index_set_source, METH_VARARGS, "set_source(('fd', fd, base, max_gap) | ('buffer', vectors) | None)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._kernel.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Index_new,
    .tp_init = (initproc)Index_init,
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_methods = Index_methods,
    .tp_doc = "The index ABI over numpy arrays (kernel/index/index.h).",
};

/* ---- reading rows -------------------------------------------------------------------- */

/* Reads `rows` (ascending) grouped in `nr` ranges from fd at base + row * row_bytes into
 * dst: one pread per range; gap rows go to a bounce buffer and are dropped. Returns 0, an
 * errno, or -1 at end of file. No Python calls: runs without the GIL. */
static int read_ranges_fd(int fd, int64_t base, int64_t row_bytes, const int32_t *rows, const int32_t *ranges,
                          int64_t nr, char *dst, char **bounce, size_t *bounce_cap) {
    int64_t i = 0;
    for (int64_t r = 0; r < nr; r++) {
        int32_t first = ranges[2 * r], last = ranges[2 * r + 1];
        int64_t j = i;
        while (rows[j] != last) j++;
        int64_t nrows = (int64_t)last - first + 1;
        size_t len = (size_t)(nrows * row_bytes);
        off_t off = (off_t)(base + (int64_t)first * row_bytes);
        char *target = dst + i * row_bytes;
        int dense = nrows == j - i + 1;
        if (!dense) {
            if (*bounce_cap < len) {
                char *b = realloc(*bounce, len);
                if (!b) return ENOMEM;
                *bounce = b;
                *bounce_cap = len;
            }
            target = *bounce;
        }
        size_t got = 0;
        while (got < len) {
            ssize_t k = pread(fd, target + got, len - got, off + (off_t)got);
            if (k < 0) {
                if (errno == EINTR) continue;
                return errno;
            }
            if (k == 0) return -1;
            got += (size_t)k;
        }
        if (!dense)
            for (int64_t t = i; t <= j; t++)
                memcpy(dst + t * row_bytes, *bounce + (size_t)(rows[t] - first) * row_bytes, (size_t)row_bytes);
        i = j + 1;
    }
    return 0;
}

static PyObject *read_error(int err) {
    if (err == -1) {
        PyErr_SetString(PyExc_EOFError, "vector file is shorter than the index says: truncated");
        return NULL;
    }
    errno = err;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* ---- Searcher ----------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    IndexObject *index;
    qa_searcher *s;
    int busy;         /* one thread at a time: the Python pool hands each its own */
    int64_t k;        /* of the last begin */
    char *bounce;
    size_t bounce_cap;
} SearcherObject;

static int Searcher_init(SearcherObject *self, PyObject *args, PyObject *kw) {
    IndexObject *index;
    if (!PyArg_ParseTuple(args, "O!", &IndexType, &index)) return -1;
    if (!index->ix) { PyErr_SetString(PyExc_ValueError, "index not initialised"); return -1; }
    if (self->s) { qa_searcher_free(self->s); self->s = NULL; }
    Py_XDECREF(self->index);
    Py_INCREF(index);
    self->index = index;
    self->s = qa_searcher_new(index->ix);
    if (!self->s) { PyErr_NoMemory(); return -1; }
    return 0;
}

static void Searcher_dealloc(SearcherObject *self) {
    qa_searcher_free(self->s);
    free(self->bounce);
    Py_XDECREF(self->index);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int claim(SearcherObject *self) {
    if (!self->s) { PyErr_SetString(PyExc_RuntimeError, "searcher not initialised"); return -1; }
    if (self->busy) { PyErr_SetString(PyExc_RuntimeError, "this searcher is in use by another thread"); return -1; }
    self->busy = 1;
    return 0;
}

enum { ST_CAND, ST_DIST, ST_FETCH, ST_RANGES, ST_BYTES, ST_GRAPH_NS, ST_READ_NS, ST_RERANK_NS, ST_FOUND, ST_COLS };

/* search(queries (nq, d), k, ef, rerank, rows_out int32 (nq, k), dist_out float32 (nq, k),
 *        stats_out int64 (nq, 9)) -> None
 * The whole pipeline per query, the batch in one call without the GIL: begin, the rows
 * read from the index's source (one pread per range begin returns, or copies from a
 * buffer), finish. rerank = 0 needs no source. A failing query raises. */
static PyObject *Searcher_search(SearcherObject *self, PyObject *args) {
    PyObject *q_o, *r_o, *d_o, *st_o;
    long long k, ef, rerank;
    if (!PyArg_ParseTuple(args, "OLLLOOO", &q_o, &k, &ef, &rerank, &r_o, &d_o, &st_o)) return NULL;
    if (claim(self)) return NULL;
    IndexObject *ix = self->index;
    const int d = ix->a.d;
    const int native_fd = ix->src_fd >= 0, native_buf = ix->src_buf.held;
    if (rerank && !native_fd && !native_buf) {
        self->busy = 0;
        PyErr_SetString(PyExc_RuntimeError, "the index has no native vector source: use begin/finish");
        return NULL;
    }
    qa_py_buf q, r, dd, st;
    if (qa_py_get_buf(q_o, &q, 0, 4 * (Py_ssize_t)d, 0, "queries")) { self->busy = 0; return NULL; }
    Py_ssize_t nq = q.b.len / (4 * (Py_ssize_t)d);
    qa_index_info info;
    qa_index_info_get(ix->ix, &info);
    /* outputs need room only for a k the kernel accepts: begin names a bad one */
    Py_ssize_t kk = k > 0 && k <= QA_MAX_K && k <= info.live ? (Py_ssize_t)k : 0;
    if (qa_py_get_buf(r_o, &r, 1, 4 * kk, nq, "rows_out")) { qa_py_rel(&q); self->busy = 0; return NULL; }
    if (qa_py_get_buf(d_o, &dd, 1, 4 * kk, nq, "dist_out")) { qa_py_rel(&q); qa_py_rel(&r); self->busy = 0; return NULL; }
    if (qa_py_get_buf(st_o, &st, 1, 8 * ST_COLS, nq, "stats_out")) { qa_py_rel(&q); qa_py_rel(&r); qa_py_rel(&dd); self->busy = 0; return NULL; }
    qa_search_params p = {.k = k, .ef = ef, .rerank = rerank, .max_gap = native_fd ? ix->src_max_gap : 0};
    int64_t rc = 0;
    int io = 0;
    Py_ssize_t i_fail = 0;
    Py_BEGIN_ALLOW_THREADS
    const float *src = native_buf ? (const float *)ix->src_buf.b.buf : NULL;
    for (Py_ssize_t i = 0; i < nq; i++) {
        int64_t *S = (int64_t *)st.b.buf + i * ST_COLS;
        int64_t t0 = now_ns();
        i_fail = i;
        rc = qa_search_begin(self->s, (const float *)q.b.buf + i * d, &p);
        int64_t t1 = now_ns();
        if (rc < 0) break;
        qa_search_stats s;
        qa_searcher_stats(self->s, &s);
        int64_t bytes = 0;
        if (rc > 0) {
            float *v = qa_searcher_vectors(self->s);
            const int32_t *rows = qa_searcher_rows(self->s);
            if (native_fd) {
                io = read_ranges_fd(ix->src_fd, ix->src_base, (int64_t)d * 4, rows, qa_searcher_ranges(self->s),
                                    s.ranges, (char *)v, &self->bounce, &self->bounce_cap);
                if (io) break;
                bytes = s.span * d * 4;
            } else {
                for (int64_t j = 0; j < rc; j++)
                    memcpy(v + j * d, src + (int64_t)rows[j] * d, (size_t)d * 4);
                bytes = rc * d * 4;
            }
        }
        int64_t t2 = now_ns();
        rc = qa_search_finish(self->s, NULL, (int32_t *)r.b.buf + i * k, (float *)dd.b.buf + i * k, &s);
        int64_t t3 = now_ns();
        if (rc < 0) break;
        S[ST_CAND] = s.candidates;
        S[ST_DIST] = s.distances;
        S[ST_FETCH] = s.fetch;
        S[ST_RANGES] = s.ranges;
        S[ST_BYTES] = bytes;
        S[ST_GRAPH_NS] = t1 - t0;
        S[ST_READ_NS] = t2 - t1;
        S[ST_RERANK_NS] = t3 - t2;
        S[ST_FOUND] = s.found;
    }
    Py_END_ALLOW_THREADS
    qa_py_rel(&q); qa_py_rel(&r); qa_py_rel(&dd); qa_py_rel(&st);
    self->busy = 0;
    if (io) return read_error(io);
    if (rc < 0) {
        if (nq == 1) return kernel_error((int)rc, qa_searcher_error(self->s));
        return PyErr_Format(rc == QA_ENOMEM ? PyExc_MemoryError : PyExc_ValueError, "query %zd: %s", i_fail,
                            qa_searcher_error(self->s));
    }
    Py_RETURN_NONE;
}

/* begin(query float32[d], k, ef, rerank, max_gap) -> (rows, ranges): bytes of the int32
 * rows to fetch (ascending) and of their coalesced (first, last) row ranges, the one
 * coalescing (qa_coalesce_rows). The caller's store reads those ranges, then finish. */
static PyObject *Searcher_begin(SearcherObject *self, PyObject *args) {
    PyObject *q_o;
    long long k, ef, rerank, max_gap;
    if (!PyArg_ParseTuple(args, "OLLLL", &q_o, &k, &ef, &rerank, &max_gap)) return NULL;
    if (claim(self)) return NULL;
    qa_py_buf q;
    if (qa_py_get_buf(q_o, &q, 0, 4, self->index->a.d, "query")) { self->busy = 0; return NULL; }
    qa_search_params p = {.k = k, .ef = ef, .rerank = rerank, .max_gap = max_gap};
    int64_t rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qa_search_begin(self->s, q.b.buf, &p);
    Py_END_ALLOW_THREADS
    qa_py_rel(&q);
    self->busy = 0;
    if (rc < 0) return kernel_error((int)rc, qa_searcher_error(self->s));
    self->k = k;
    qa_search_stats st;
    qa_searcher_stats(self->s, &st);
    return Py_BuildValue("y#y#", (const char *)qa_searcher_rows(self->s), (Py_ssize_t)(rc * 4),
                         (const char *)qa_searcher_ranges(self->s), (Py_ssize_t)(st.ranges * 8));
}

/* finish(vectors float32 (fetch, d) | None, rows_out int32[k], dist_out float32[k]) ->
 *   (found, candidates, distances, ranges) */
static PyObject *Searcher_finish(SearcherObject *self, PyObject *args) {
    PyObject *v_o, *r_o, *d_o;
    if (!PyArg_ParseTuple(args, "OOO", &v_o, &r_o, &d_o)) return NULL;
    if (claim(self)) return NULL;
    qa_search_stats s;
    qa_searcher_stats(self->s, &s);
    qa_py_buf v, r, dd;
    if (qa_py_get_buf(v_o, &v, 0, 4 * (Py_ssize_t)self->index->a.d, s.fetch, "vectors")) { self->busy = 0; return NULL; }
    if (qa_py_get_buf(r_o, &r, 1, 4, self->k, "rows_out")) { qa_py_rel(&v); self->busy = 0; return NULL; }
    if (qa_py_get_buf(d_o, &dd, 1, 4, self->k, "dist_out")) { qa_py_rel(&v); qa_py_rel(&r); self->busy = 0; return NULL; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qa_search_finish(self->s, v.held ? v.b.buf : NULL, r.b.buf, dd.b.buf, &s);
    Py_END_ALLOW_THREADS
    qa_py_rel(&v); qa_py_rel(&r); qa_py_rel(&dd);
    self->busy = 0;
    if (rc) return kernel_error(rc, qa_searcher_error(self->s));
    return Py_BuildValue("LLLL", (long long)s.found, (long long)s.candidates, (long long)s.distances, (long long)s.ranges);
}

static PyMethodDef Searcher_methods[] = {
    {"search", (PyCFunction)Searcher_search, METH_VARARGS,
     "search(queries, k, ef, rerank, rows_out, dist_out, stats_out): begin -> read -> finish per query"},
    {"begin", (PyCFunction)Searcher_begin, METH_VARARGS, "begin(query, k, ef, rerank, max_gap) -> (rows, ranges) to fetch (int32 bytes)"},
    {"finish", (PyCFunction)Searcher_finish, METH_VARARGS, "finish(vectors|None, rows_out, dist_out) -> (found, candidates, distances, ranges)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject SearcherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._kernel.Searcher",
    .tp_basicsize = sizeof(SearcherObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Searcher_init,
    .tp_dealloc = (destructor)Searcher_dealloc,
    .tp_methods = Searcher_methods,
    .tp_doc = "A searcher of one Index: its own scratch; one thread at a time.",
};

/* ---- module functions --------------------------------------------------------------- */

static int quantizer_from(int kind, int d, PyObject *vmin_o, PyObject *scale_o, qa_quantizer *qz, qa_py_buf *vmin,
                          qa_py_buf *scale) {
    if (d < 1 || d > QA_MAX_DIM || qa_quantizer_init(qz, kind, d, NULL, NULL)) {
        PyErr_Format(PyExc_ValueError, "unknown codec %d or bad dimension %d", kind, d);
        return -1;
    }
    int need = kind != QA_CODEC_NONE ? qz->dpad : 0;
    if (qa_py_get_buf(vmin_o, vmin, 0, 4, need, "vmin")) return -1;
    if (qa_py_get_buf(scale_o, scale, 0, 4, need, "scale")) { qa_py_rel(vmin); return -1; }
    qz->vmin = vmin->b.buf;
    qz->scale = scale->b.buf;
    return 0;
}

/* encode(kind, d, vmin, scale, x, out[, residuals float32[n]]): codes, and each row's
 * residual when the codec has them (codec.h) */
static PyObject *py_encode(PyObject *self, PyObject *args) {
    int kind, d;
    PyObject *vmin_o, *scale_o, *x_o, *out_o, *res_o = NULL;
    if (!PyArg_ParseTuple(args, "iiOOOO|O", &kind, &d, &vmin_o, &scale_o, &x_o, &out_o, &res_o)) return NULL;
    qa_quantizer qz;
    qa_py_buf vmin, scale, x, out, res = {0};
    if (quantizer_from(kind, d, vmin_o, scale_o, &qz, &vmin, &scale)) return NULL;
    if (qa_py_get_buf(x_o, &x, 0, 4, 0, "x")) { qa_py_rel(&vmin); qa_py_rel(&scale); return NULL; }
    int64_t n = x.b.len / (4 * (int64_t)d);
    if (qa_py_get_buf(out_o, &out, 1, qz.code_size, n, "out")) { qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&x); return NULL; }
    if (qa_py_get_buf(res_o, &res, 1, 4, res_o && res_o != Py_None ? n : 0, "residuals")) { qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&x); qa_py_rel(&out); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    qa_encode(&qz, x.b.buf, n, out.b.buf, res.held ? res.b.buf : NULL);
    Py_END_ALLOW_THREADS
    qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&x); qa_py_rel(&out); qa_py_rel(&res);
    Py_RETURN_NONE;
}

static PyObject *py_decode(PyObject *self, PyObject *args) {
    int kind, d;
    PyObject *vmin_o, *scale_o, *c_o, *out_o;
    if (!PyArg_ParseTuple(args, "iiOOOO", &kind, &d, &vmin_o, &scale_o, &c_o, &out_o)) return NULL;
    qa_quantizer qz;
    qa_py_buf vmin, scale, c, out;
    if (quantizer_from(kind, d, vmin_o, scale_o, &qz, &vmin, &scale)) return NULL;
    if (qa_py_get_buf(c_o, &c, 0, 1, 0, "codes")) { qa_py_rel(&vmin); qa_py_rel(&scale); return NULL; }
    int64_t n = c.b.len / qz.code_size;
    if (qa_py_get_buf(out_o, &out, 1, 4 * (Py_ssize_t)d, n, "out")) { qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&c); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    for (int64_t r = 0; r < n; r++)
        qa_decode(&qz, (const uint8_t *)c.b.buf + r * qz.code_size, (float *)out.b.buf + r * d);
    Py_END_ALLOW_THREADS
    qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&c); qa_py_rel(&out);
    Py_RETURN_NONE;
}

/* code_norms(kind, d, vmin, scale, codes, out float32[n]): |decoded code|^2 per code */
static PyObject *py_code_norms(PyObject *self, PyObject *args) {
    int kind, d;
    PyObject *vmin_o, *scale_o, *c_o, *out_o;
    if (!PyArg_ParseTuple(args, "iiOOOO", &kind, &d, &vmin_o, &scale_o, &c_o, &out_o)) return NULL;
    qa_quantizer qz;
    qa_py_buf vmin, scale, c, out;
    if (quantizer_from(kind, d, vmin_o, scale_o, &qz, &vmin, &scale)) return NULL;
    if (qa_py_get_buf(c_o, &c, 0, 1, 0, "codes")) { qa_py_rel(&vmin); qa_py_rel(&scale); return NULL; }
    int64_t n = c.b.len / qz.code_size;
    if (qa_py_get_buf(out_o, &out, 1, 4, n, "out")) { qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&c); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    qa_code_norms(&qz, c.b.buf, n, out.b.buf);
    Py_END_ALLOW_THREADS
    qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&c); qa_py_rel(&out);
    Py_RETURN_NONE;
}

static PyObject *py_code_size(PyObject *self, PyObject *args) {
    int kind, d;
    if (!PyArg_ParseTuple(args, "ii", &kind, &d)) return NULL;
    int cs = qa_code_size(kind, d);
    if (cs < 0) return PyErr_Format(PyExc_ValueError, "unknown codec %d or bad dimension %d", kind, d);
    return PyLong_FromLong(cs);
}

/* codecs() -> [{"id", "name", "variants": [names available here], "error_bound": bool, "residual": bool}] */
static PyObject *py_codecs(PyObject *self, PyObject *noargs) {
    PyObject *out = PyList_New(0);
    for (int id = 0; id < QA_CODEC_COUNT; id++) {
        const qa_codec *c = qa_codec_get(id);
        PyObject *vs = PyList_New(0);
        for (int j = 0; j < c->n_variants; j++)
            if (!c->variants[j].available || c->variants[j].available()) {
                PyObject *nm = PyUnicode_FromString(c->variants[j].name);
                PyList_Append(vs, nm);
                Py_DECREF(nm);
            }
        PyObject *row = Py_BuildValue("{s:i,s:s,s:N,s:O,s:O}", "id", c->id, "name", c->name, "variants", vs,
                                      "error_bound", c->error_bound ? Py_True : Py_False,
                                      "residual", c->residual ? Py_True : Py_False);
        PyList_Append(out, row);
        Py_DECREF(row);
    }
    return out;
}

/* codec_distances(kind, variant, metric, d, vmin, scale, q, codes, norms|None, batch) ->
 *   float32 bytes, one distance per code: the named variant's dist (batch=False) or
 *   dist_batch over every code (batch=True). Tests hold every variant to "ref". */
static PyObject *py_codec_distances(PyObject *self, PyObject *args) {
    int kind, metric, d, batch;
    const char *variant;
    PyObject *vmin_o, *scale_o, *q_o, *c_o, *n_o;
    if (!PyArg_ParseTuple(args, "isiiOOOOOp", &kind, &variant, &metric, &d, &vmin_o, &scale_o, &q_o, &c_o, &n_o,
                          &batch))
        return NULL;
    qa_quantizer qz;
    qa_py_buf vmin, scale, q, c, nrm;
    if (quantizer_from(kind, d, vmin_o, scale_o, &qz, &vmin, &scale)) return NULL;
    const qa_codec *row = qa_codec_get(kind);
    const qa_codec_variant *v = NULL;
    for (int j = 0; j < row->n_variants; j++)
        if (!strcmp(row->variants[j].name, variant) && (!row->variants[j].available || row->variants[j].available()))
            v = &row->variants[j];
    if (!v) {
        qa_py_rel(&vmin); qa_py_rel(&scale);
        PyErr_Format(PyExc_ValueError, "codec %s has no variant %s here", row->name, variant);
        return NULL;
    }
    if (qa_py_get_buf(q_o, &q, 0, 4, d, "q")) { qa_py_rel(&vmin); qa_py_rel(&scale); return NULL; }
    if (qa_py_get_buf(c_o, &c, 0, 1, 0, "codes")) { qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&q); return NULL; }
    int64_t n = c.b.len / qz.code_size;
    if (qa_py_get_buf(n_o, &nrm, 0, 4, n_o == Py_None ? 0 : n, "norms")) { qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&q); qa_py_rel(&c); return NULL; }
    int16_t *w = calloc((size_t)qz.dpad, sizeof(int16_t));
    int32_t *nodes = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * n));
    if (w && nodes && out) {
        float *o = (float *)PyBytes_AS_STRING(out);
        qa_query qq = {.w = w};
        row->prepare(&qz, q.b.buf, &qq);
        const float *norms = nrm.held ? nrm.b.buf : NULL;
        for (int64_t i = 0; i < n; i++) nodes[i] = (int32_t)i;
        if (batch)
            v->dist_batch(&qz, metric, &qq, c.b.buf, norms, nodes, (int)n, o);
        else
            for (int64_t i = 0; i < n; i++)
                o[i] = v->dist(&qz, metric, &qq, (const uint8_t *)c.b.buf + i * qz.code_size, norms ? norms[i] : 0.0f);
    } else {
        Py_CLEAR(out);
        PyErr_NoMemory();
    }
    free(w); free(nodes);
    qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&q); qa_py_rel(&c); qa_py_rel(&nrm);
    return out;
}

/* codec_bounds(kind, metric, d, vmin, scale, q, codes[, residuals]) -> float32 bytes: the
 * row's error bound per code (tests check how often it holds); without residuals the
 * bound of a file that has none. */
static PyObject *py_codec_bounds(PyObject *self, PyObject *args) {
    int kind, metric, d;
    PyObject *vmin_o, *scale_o, *q_o, *c_o, *res_o = NULL;
    if (!PyArg_ParseTuple(args, "iiiOOOO|O", &kind, &metric, &d, &vmin_o, &scale_o, &q_o, &c_o, &res_o)) return NULL;
    qa_quantizer qz;
    qa_py_buf vmin, scale, q, c, res = {0};
    if (quantizer_from(kind, d, vmin_o, scale_o, &qz, &vmin, &scale)) return NULL;
    const qa_codec *row = qa_codec_get(kind);
    if (!row->error_bound) {
        qa_py_rel(&vmin); qa_py_rel(&scale);
        return PyErr_Format(PyExc_ValueError, "codec %s has no error bound", row->name);
    }
    if (qa_py_get_buf(q_o, &q, 0, 4, d, "q")) { qa_py_rel(&vmin); qa_py_rel(&scale); return NULL; }
    if (qa_py_get_buf(c_o, &c, 0, 1, 0, "codes")) { qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&q); return NULL; }
    int64_t n = c.b.len / qz.code_size;
    if (qa_py_get_buf(res_o, &res, 0, 4, res_o && res_o != Py_None ? n : 0, "residuals")) {
        qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&q); qa_py_rel(&c);
        return NULL;
    }
    const float *resid = res.held ? res.b.buf : NULL;
    int16_t *w = calloc((size_t)qz.dpad, sizeof(int16_t));
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * n));
    if (w && out) {
        float *o = (float *)PyBytes_AS_STRING(out);
        qa_query qq = {.w = w};
        row->prepare(&qz, q.b.buf, &qq);
        for (int64_t i = 0; i < n; i++)
            o[i] = row->error_bound(&qz, metric, &qq, (const uint8_t *)c.b.buf + i * qz.code_size,
                                    resid ? resid[i] : -1.0f);
    } else {
        Py_CLEAR(out);
        PyErr_NoMemory();
    }
    free(w);
    qa_py_rel(&vmin); qa_py_rel(&scale); qa_py_rel(&q); qa_py_rel(&c); qa_py_rel(&res);
    return out;
}

/* 1 when (first, last) ranges are ascending and cover ascending `rows` exactly, each range
 * starting and ending on a row (what read_ranges_fd walks; ranges from Python are checked) */
static int ranges_cover(const int32_t *rows, int64_t m, const int32_t *rg, int64_t nr) {
    int64_t i = 0;
    for (int64_t r = 0; r < nr; r++) {
        if (i >= m || rows[i] != rg[2 * r] || rg[2 * r + 1] < rg[2 * r]) return 0;
        for (i++; i < m && rows[i] <= rg[2 * r + 1]; i++)
            if (rows[i] <= rows[i - 1]) return 0;
        if (rows[i - 1] != rg[2 * r + 1]) return 0;
    }
    return i == m;
}

/* pread_rows(fd, base, row_bytes, rows int32 ascending, ranges int32 (first, last) pairs,
 * out) -> None: one pread per range (a PreadStore's read of what begin returned) */
static PyObject *py_pread_rows(PyObject *self, PyObject *args) {
    int fd;
    long long base, row_bytes;
    PyObject *rows_o, *ranges_o, *out_o;
    if (!PyArg_ParseTuple(args, "iLLOOO", &fd, &base, &row_bytes, &rows_o, &ranges_o, &out_o)) return NULL;
    qa_py_buf rows, rg, out;
    if (qa_py_get_buf(rows_o, &rows, 0, 4, 0, "rows")) return NULL;
    Py_ssize_t m = rows.b.len / 4;
    if (qa_py_get_buf(ranges_o, &rg, 0, 8, 0, "ranges")) { qa_py_rel(&rows); return NULL; }
    if (qa_py_get_buf(out_o, &out, 1, (Py_ssize_t)row_bytes, m, "out")) { qa_py_rel(&rows); qa_py_rel(&rg); return NULL; }
    if (!ranges_cover(rows.b.buf, m, rg.b.buf, rg.b.len / 8)) {
        qa_py_rel(&rows); qa_py_rel(&rg); qa_py_rel(&out);
        PyErr_SetString(PyExc_ValueError, "ranges do not cover the rows (ascending (first, last) pairs on rows)");
        return NULL;
    }
    int err;
    char *bounce = NULL;
    size_t bounce_cap = 0;
    Py_BEGIN_ALLOW_THREADS
    err = read_ranges_fd(fd, base, row_bytes, rows.b.buf, rg.b.buf, rg.b.len / 8, out.b.buf, &bounce, &bounce_cap);
    Py_END_ALLOW_THREADS
    free(bounce);
    qa_py_rel(&rows); qa_py_rel(&rg); qa_py_rel(&out);
    if (err) return read_error(err);
    Py_RETURN_NONE;
}

/* coalesce_rows(rows int32 ascending, max_gap) -> bytes of the int32 (first, last) ranges:
 * qa_coalesce_rows for a read that did not come from begin (a store's read(rows)) */
static PyObject *py_coalesce_rows(PyObject *self, PyObject *args) {
    PyObject *rows_o;
    long long max_gap;
    if (!PyArg_ParseTuple(args, "OL", &rows_o, &max_gap)) return NULL;
    if (max_gap < 0) { PyErr_SetString(PyExc_ValueError, "negative max_gap"); return NULL; }
    qa_py_buf rows;
    if (qa_py_get_buf(rows_o, &rows, 0, 4, 0, "rows")) return NULL;
    Py_ssize_t m = rows.b.len / 4;
    int32_t *ranges = malloc(2 * sizeof(int32_t) * (size_t)(m ? m : 1));
    if (!ranges) { qa_py_rel(&rows); return PyErr_NoMemory(); }
    int64_t nr = qa_coalesce_rows(rows.b.buf, m, max_gap, ranges, NULL);
    qa_py_rel(&rows);
    PyObject *o = PyBytes_FromStringAndSize((const char *)ranges, (Py_ssize_t)(nr * 8));
    free(ranges);
    return o;
}

/* float_dists(metric, q, X, d, ref) -> list: distance.c's float kernels against their reference */
static PyObject *py_float_dists(PyObject *self, PyObject *args) {
    int metric, d, ref;
    PyObject *q_o, *x_o;
    if (!PyArg_ParseTuple(args, "iOOip", &metric, &q_o, &x_o, &d, &ref)) return NULL;
    if (d <= 0) { PyErr_SetString(PyExc_ValueError, "d must be positive"); return NULL; }
    qa_py_buf q, x;
    if (qa_py_get_buf(q_o, &q, 0, 4, d, "q")) return NULL;
    if (qa_py_get_buf(x_o, &x, 0, 4, 0, "x")) { qa_py_rel(&q); return NULL; }
    Py_ssize_t n = x.b.len / (4 * d);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        const float *xi = (const float *)x.b.buf + i * d;
        float v = metric == QA_METRIC_L2 ? (ref ? qa_l2sq_f32_ref(q.b.buf, xi, d) : qa_l2sq_f32(q.b.buf, xi, d))
                                         : (ref ? qa_dot_f32_ref(q.b.buf, xi, d) : qa_dot_f32(q.b.buf, xi, d));
        PyList_SET_ITEM(out, i, PyFloat_FromDouble(v));
    }
    qa_py_rel(&q); qa_py_rel(&x);
    return out;
}

/* normalize_rows(x float32 (n, d), d) -> index of the first zero row, or -1. In place. */
static PyObject *py_normalize_rows(PyObject *self, PyObject *args) {
    PyObject *x_o;
    int d;
    if (!PyArg_ParseTuple(args, "Oi", &x_o, &d)) return NULL;
    if (d <= 0) { PyErr_SetString(PyExc_ValueError, "d must be positive"); return NULL; }
    qa_py_buf x;
    if (qa_py_get_buf(x_o, &x, 1, 4, 0, "x")) return NULL;
    Py_ssize_t n = x.b.len / (4 * (Py_ssize_t)d), bad = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        if (qa_normalize((float *)x.b.buf + i * d, (size_t)d) && bad < 0) bad = i;
    Py_END_ALLOW_THREADS
    qa_py_rel(&x);
    return PyLong_FromSsize_t(bad);
}

static PyObject *py_cpu(PyObject *self, PyObject *noargs) {
    return Py_BuildValue("{s:i}", "avx2", qa_have_avx2);
}

static PyObject *py_set_simd(PyObject *self, PyObject *args) {
    int on;
    if (!PyArg_ParseTuple(args, "p", &on)) return NULL;
    qa_cpu_init();
    if (!on) qa_have_avx2 = 0;
    qa_codec_select(on);
    Py_RETURN_NONE;
}

/* pack_links(links0 int32 n x M0, n, M0, bits, out n x row_bytes) and
 * unpack_links(packed, n, M0, bits, out int32 n x M0): kernel/links.h over whole arrays */
static PyObject *links_convert(PyObject *args, int pack) {
    PyObject *src_o, *dst_o;
    long long n, M0, bits;
    if (!PyArg_ParseTuple(args, "OLLLO", &src_o, &n, &M0, &bits, &dst_o)) return NULL;
    if (n < 0 || n > QA_MAX_ROWS || M0 < 1 || M0 > 2 * QA_MAX_M || bits < qa_link_bits(n) || bits > 31) {
        PyErr_Format(PyExc_ValueError, "n=%lld, M0=%lld or link_bits=%lld out of range", n, M0, bits);
        return NULL;
    }
    const int64_t packed_bytes = n * qa_link_row_bytes((int)M0, (int)bits), plain_bytes = n * M0 * 4;
    qa_py_buf src, dst;
    if (qa_py_get_buf(src_o, &src, 0, 1, pack ? plain_bytes : packed_bytes, "links")) return NULL;
    if (qa_py_get_buf(dst_o, &dst, 1, 1, pack ? packed_bytes : plain_bytes, "out")) { qa_py_rel(&src); return NULL; }
    if (pack) {
        const int32_t *l = (const int32_t *)src.b.buf;
        for (int64_t i = 0; i < n * M0; i++)
            if (l[i] < -1 || l[i] >= n) {
                qa_py_rel(&src); qa_py_rel(&dst);
                PyErr_Format(PyExc_ValueError, "link %d of row %lld is outside the %lld rows", (int)l[i], (long long)(i / M0), n);
                return NULL;
            }
        qa_links_pack(l, n, (int)M0, (int)bits, (uint8_t *)dst.b.buf);
    } else {
        qa_links_unpack((const uint8_t *)src.b.buf, n, (int)M0, (int)bits, (int32_t *)dst.b.buf);
    }
    qa_py_rel(&src); qa_py_rel(&dst);
    Py_RETURN_NONE;
}
static PyObject *py_pack_links(PyObject *self, PyObject *args) { return links_convert(args, 1); }
static PyObject *py_unpack_links(PyObject *self, PyObject *args) { return links_convert(args, 0); }
static PyObject *py_link_bits(PyObject *self, PyObject *args) {
    long long n, M0;
    if (!PyArg_ParseTuple(args, "LL", &n, &M0)) return NULL;
    int b = qa_link_bits(n);
    return Py_BuildValue("iL", b, (long long)qa_link_row_bytes((int)M0, b));
}

static PyMethodDef methods[] = {
    {"pack_links", py_pack_links, METH_VARARGS, "pack_links(links0, n, M0, bits, out): int32 lists -> packed rows"},
    {"unpack_links", py_unpack_links, METH_VARARGS, "unpack_links(packed, n, M0, bits, out): packed rows -> int32 lists"},
    {"link_bits", py_link_bits, METH_VARARGS, "link_bits(n, M0) -> (bits per id, bytes per packed row)"},
    {"encode", py_encode, METH_VARARGS, "encode(kind, d, vmin, scale, x, out[, residuals])"},
    {"decode", py_decode, METH_VARARGS, "decode(kind, d, vmin, scale, codes, out)"},
    {"code_norms", py_code_norms, METH_VARARGS, "code_norms(kind, d, vmin, scale, codes, out)"},
    {"code_size", py_code_size, METH_VARARGS, "code_size(kind, d) -> bytes per code"},
    {"codecs", py_codecs, METH_NOARGS, "codecs() -> the codec table's rows and their variants"},
    {"codec_bounds", py_codec_bounds, METH_VARARGS,
     "codec_bounds(kind, metric, d, vmin, scale, q, codes[, residuals]) -> float32 bytes: the error bound per code"},
    {"codec_distances", py_codec_distances, METH_VARARGS,
     "codec_distances(kind, variant, metric, d, vmin, scale, q, codes, norms, batch) -> float32 bytes"},
    {"pread_rows", py_pread_rows, METH_VARARGS, "pread_rows(fd, base, row_bytes, rows, ranges, out)"},
    {"coalesce_rows", py_coalesce_rows, METH_VARARGS, "coalesce_rows(rows, max_gap) -> (first, last) ranges (int32 bytes)"},
    {"float_dists", py_float_dists, METH_VARARGS, "float_dists(metric, q, x, d, ref) -> [float]"},
    {"normalize_rows", py_normalize_rows, METH_VARARGS, "normalize_rows(x, d) -> first zero row or -1 (in place)"},
    {"cpu", py_cpu, METH_NOARGS, "SIMD features in use"},
    QA_FILE_METHODS
    QA_LEXICAL_METHODS
    {"set_simd", py_set_simd, METH_VARARGS, "set_simd(on): use SIMD variants (True) or the scalar references"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_kernel", "quantann index kernel", -1, methods};

static PyObject *limits(void) {
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L,s:L,s:L}", "max_k", (long long)QA_MAX_K, "max_ef", (long long)QA_MAX_EF,
                         "max_candidates", (long long)QA_MAX_CANDIDATES, "max_M", (long long)QA_MAX_M,
                         "max_ef_construction", (long long)QA_MAX_EF_CONSTRUCTION, "max_threads",
                         (long long)QA_MAX_THREADS, "max_rows", (long long)QA_MAX_ROWS);
}

PyMODINIT_FUNC PyInit__kernel(void) {
    qa_cpu_init();
    qa_codec_select(1);
    if (PyType_Ready(&IndexType) < 0 || PyType_Ready(&SearcherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&IndexType);
    PyModule_AddObject(m, "Index", (PyObject *)&IndexType);
    Py_INCREF(&SearcherType);
    PyModule_AddObject(m, "Searcher", (PyObject *)&SearcherType);
    PyModule_AddObject(m, "LIMITS", limits());
    if (qa_py_lexical_add_type(m) < 0) return NULL;
    return m;
}
