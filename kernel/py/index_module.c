/* CPython glue for the index kernel: buffers in, buffers out. One call per query or per
 * batch; the GIL is released around kernel work. Host I/O for the local-file store
 * (pread of coalesced row ranges) lives here, not in the portable kernel. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hnsw.h"
#include "py/file_glue.h"
#include "quant.h"
#include "rerank.h"

/* ---- buffers ------------------------------------------------------------------------ */

typedef struct {
    Py_buffer b;
    int held;
} buf_t;

static int get_buf(PyObject *o, buf_t *out, int writable, Py_ssize_t itemsize, Py_ssize_t min_items,
                   const char *what) {
    out->held = 0;
    if (o == Py_None) {
        if (min_items > 0) {
            PyErr_Format(PyExc_ValueError, "%s is required", what);
            return -1;
        }
        memset(&out->b, 0, sizeof(out->b));
        return 0;
    }
    if (PyObject_GetBuffer(o, &out->b, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    out->held = 1;
    if (out->b.len < itemsize * min_items) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, need %zd", what, out->b.len, itemsize * min_items);
        PyBuffer_Release(&out->b);
        out->held = 0;
        return -1;
    }
    return 0;
}

static void rel(buf_t *b) {
    if (b->held) PyBuffer_Release(&b->b);
    b->held = 0;
}

/* ---- graph + space from Python tuples --------------------------------------------------
 * graph = (links0, level, up_nodes, up_off, upper, entry, max_level, M, M0, deleted|None, n)
 * space = (metric, kind, d, vmin, scale, codes, norms|None, vectors|None)
 * `vectors` set -> float space (build); otherwise code space. */

enum { B_LINKS, B_LEVEL, B_UPN, B_UPO, B_UPPER, B_DEL, B_VMIN, B_SCALE, B_CODES, B_NORMS, B_VECS, B_COUNT };

typedef struct {
    qa_graph g;
    qa_space sp;
    qa_quantizer qz;
    buf_t bufs[B_COUNT];
} gs_t;

static void gs_release(gs_t *gs) {
    for (int i = 0; i < B_COUNT; i++) rel(&gs->bufs[i]);
}

static int gs_parse(PyObject *graph, PyObject *space, gs_t *gs, int writable_graph) {
    memset(gs, 0, sizeof(*gs));
    PyObject *links0, *level, *upn, *upo, *upper, *del, *vmin, *scale, *codes, *norms, *vecs;
    int entry, max_level, M, M0, metric, kind, d;
    long long n;
    if (!PyArg_ParseTuple(graph, "OOOOOiiiiOL;graph tuple", &links0, &level, &upn, &upo, &upper,
                          &entry, &max_level, &M, &M0, &del, &n))
        return -1;
    if (!PyArg_ParseTuple(space, "iiiOOOOO;space tuple", &metric, &kind, &d, &vmin, &scale, &codes,
                          &norms, &vecs))
        return -1;
    if (d <= 0 || M <= 0 || M0 <= 0 || M > 255 || M0 > 255 || n < 0 || n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "bad graph/space parameters");
        return -1;
    }
    int dpad = qa_pad_dims(d);
    gs->qz.kind = kind;
    gs->qz.d = d;
    gs->qz.dpad = dpad;
    gs->qz.code_size = qa_code_size(kind, d);
    buf_t *B = gs->bufs;
    int w = writable_graph;
    if (get_buf(links0, &B[B_LINKS], w, 4, n * M0, "links0") ||
        get_buf(level, &B[B_LEVEL], w, 1, n, "level") ||
        get_buf(upn, &B[B_UPN], 0, 4, 0, "up_nodes") ||
        get_buf(upo, &B[B_UPO], 0, 8, 0, "up_off") ||
        get_buf(upper, &B[B_UPPER], w, 4, 0, "upper") ||
        get_buf(del, &B[B_DEL], 0, 1, 0, "deleted") ||
        get_buf(vmin, &B[B_VMIN], 0, 4, kind ? dpad : 0, "vmin") ||
        get_buf(scale, &B[B_SCALE], 0, 4, kind ? dpad : 0, "scale") ||
        get_buf(codes, &B[B_CODES], 0, 1, vecs == Py_None ? n * gs->qz.code_size : 0, "codes") ||
        get_buf(norms, &B[B_NORMS], 0, 4, 0, "norms") ||
        get_buf(vecs, &B[B_VECS], 0, 4, 0, "vectors")) {
        gs_release(gs);
        return -1;
    }
    if (B[B_UPN].b.len / 4 != B[B_UPO].b.len / 8) {
        gs_release(gs);
        PyErr_SetString(PyExc_ValueError, "up_nodes and up_off differ in length");
        return -1;
    }
    if (B[B_DEL].held && B[B_DEL].b.len < (n + 7) / 8) {
        gs_release(gs);
        PyErr_SetString(PyExc_ValueError, "deleted bitset too short");
        return -1;
    }
    if (norms != Py_None && B[B_NORMS].b.len < 4 * n) {
        gs_release(gs);
        PyErr_SetString(PyExc_ValueError, "norms too short");
        return -1;
    }
    gs->g.n = n;
    gs->g.M = M;
    gs->g.M0 = M0;
    gs->g.links0 = (int32_t *)B[B_LINKS].b.buf;
    gs->g.level = (uint8_t *)B[B_LEVEL].b.buf;
    gs->g.up_nodes = (const int32_t *)B[B_UPN].b.buf;
    gs->g.up_off = (const int64_t *)B[B_UPO].b.buf;
    gs->g.n_up = B[B_UPN].b.len / 4;
    gs->g.upper = (int32_t *)B[B_UPPER].b.buf;
    gs->g.entry = entry;
    gs->g.max_level = max_level;
    gs->g.deleted = B[B_DEL].held ? (const uint8_t *)B[B_DEL].b.buf : NULL;
    gs->qz.vmin = (const float *)B[B_VMIN].b.buf;
    gs->qz.scale = (const float *)B[B_SCALE].b.buf;
    gs->sp.metric = metric;
    gs->sp.d = d;
    gs->sp.qz = &gs->qz;
    gs->sp.codes = (const uint8_t *)B[B_CODES].b.buf;
    gs->sp.norms = norms != Py_None ? (const float *)B[B_NORMS].b.buf : NULL;
    gs->sp.vectors = vecs != Py_None ? (const float *)B[B_VECS].b.buf : NULL;
    if (gs->sp.vectors && B[B_VECS].b.len < 4 * n * (Py_ssize_t)d) {
        gs_release(gs);
        PyErr_SetString(PyExc_ValueError, "vectors too short");
        return -1;
    }
    return 0;
}

/* ---- module functions --------------------------------------------------------------- */

static PyObject *py_encode(PyObject *self, PyObject *args) {
    int kind, d;
    PyObject *vmin_o, *scale_o, *x_o, *out_o;
    if (!PyArg_ParseTuple(args, "iiOOOO", &kind, &d, &vmin_o, &scale_o, &x_o, &out_o)) return NULL;
    qa_quantizer qz = {kind, d, qa_pad_dims(d), qa_code_size(kind, d), NULL, NULL};
    buf_t vmin, scale, x, out;
    if (get_buf(vmin_o, &vmin, 0, 4, kind ? qz.dpad : 0, "vmin")) return NULL;
    if (get_buf(scale_o, &scale, 0, 4, kind ? qz.dpad : 0, "scale")) { rel(&vmin); return NULL; }
    if (get_buf(x_o, &x, 0, 4, 0, "x")) { rel(&vmin); rel(&scale); return NULL; }
    int64_t n = x.b.len / (4 * (int64_t)d);
    if (get_buf(out_o, &out, 1, qz.code_size, n, "out")) { rel(&vmin); rel(&scale); rel(&x); return NULL; }
    qz.vmin = vmin.b.buf;
    qz.scale = scale.b.buf;
    Py_BEGIN_ALLOW_THREADS
    qa_encode(&qz, x.b.buf, n, out.b.buf);
    Py_END_ALLOW_THREADS
    rel(&vmin); rel(&scale); rel(&x); rel(&out);
    Py_RETURN_NONE;
}

static PyObject *py_decode(PyObject *self, PyObject *args) {
    int kind, d;
    PyObject *vmin_o, *scale_o, *c_o, *out_o;
    if (!PyArg_ParseTuple(args, "iiOOOO", &kind, &d, &vmin_o, &scale_o, &c_o, &out_o)) return NULL;
    qa_quantizer qz = {kind, d, qa_pad_dims(d), qa_code_size(kind, d), NULL, NULL};
    buf_t vmin, scale, c, out;
    if (get_buf(vmin_o, &vmin, 0, 4, kind ? qz.dpad : 0, "vmin")) return NULL;
    if (get_buf(scale_o, &scale, 0, 4, kind ? qz.dpad : 0, "scale")) { rel(&vmin); return NULL; }
    if (get_buf(c_o, &c, 0, 1, 0, "codes")) { rel(&vmin); rel(&scale); return NULL; }
    int64_t n = c.b.len / qz.code_size;
    if (get_buf(out_o, &out, 1, 4 * (Py_ssize_t)d, n, "out")) { rel(&vmin); rel(&scale); rel(&c); return NULL; }
    qz.vmin = vmin.b.buf;
    qz.scale = scale.b.buf;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t r = 0; r < n; r++)
        qa_decode(&qz, (const uint8_t *)c.b.buf + r * qz.code_size, (float *)out.b.buf + r * d);
    Py_END_ALLOW_THREADS
    rel(&vmin); rel(&scale); rel(&c); rel(&out);
    Py_RETURN_NONE;
}

static PyObject *py_hnsw_insert(PyObject *self, PyObject *args) {
    PyObject *graph, *space, *vecs_o;
    long long start, end;
    int ef, nthreads;
    if (!PyArg_ParseTuple(args, "OOLLOii", &graph, &space, &start, &end, &vecs_o, &ef, &nthreads)) return NULL;
    gs_t gs;
    if (gs_parse(graph, space, &gs, 1)) return NULL;
    buf_t vecs;
    if (start < 0 || end > gs.g.n || start > end) {
        gs_release(&gs);
        PyErr_SetString(PyExc_ValueError, "insert range outside the graph");
        return NULL;
    }
    if (get_buf(vecs_o, &vecs, 0, 4 * (Py_ssize_t)gs.sp.d, end - start, "vecs")) { gs_release(&gs); return NULL; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qa_hnsw_insert(&gs.g, &gs.sp, start, end, vecs.b.buf, ef, nthreads);
    Py_END_ALLOW_THREADS
    int entry = gs.g.entry, maxl = gs.g.max_level;
    rel(&vecs);
    gs_release(&gs);
    if (rc) return PyErr_NoMemory();
    return Py_BuildValue("ii", entry, maxl);
}

/* Reads rows (ascending) of row_bytes each at base + row * row_bytes into dst, one
 * pread per run of neighbouring rows (gap <= max_gap rows; the gap rows go to a bounce
 * buffer and are dropped). Returns 0, an errno, or -1 at end of file. Counts runs and
 * bytes fetched. No Python calls: runs without the GIL. */
static int read_rows_fd(int fd, int64_t base, int64_t row_bytes, const int32_t *r, Py_ssize_t m,
                        char *dst, int max_gap, char **bounce, size_t *bounce_cap, int *ranges,
                        int64_t *bytes) {
    Py_ssize_t i = 0;
    while (i < m) {
        Py_ssize_t j = i;
        while (j + 1 < m && r[j + 1] > r[j] && r[j + 1] - r[j] <= max_gap + 1) j++;
        int64_t nrows = (int64_t)r[j] - r[i] + 1;
        size_t len = (size_t)(nrows * row_bytes);
        off_t off = (off_t)(base + (int64_t)r[i] * row_bytes);
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
            for (Py_ssize_t t = i; t <= j; t++)
                memcpy(dst + t * row_bytes, *bounce + (size_t)(r[t] - r[i]) * row_bytes, (size_t)row_bytes);
        (*ranges)++;
        *bytes += (int64_t)len;
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

/* ---- Searcher: holds the index arrays and one scratch; one call per query ------------- */

typedef struct {
    PyObject_HEAD
    gs_t gs;
    qa_scratch s;
    int ready;
    /* where full vectors come from for the one-call query: a file or a buffer */
    int src_fd;
    int64_t src_base;
    int src_max_gap;
    buf_t src_buf;
    /* per-query working memory */
    int32_t *cand;
    float *cand_d, *vecs;
    int cap;
    char *bounce;
    size_t bounce_cap;
} Searcher;

static int Searcher_init(Searcher *self, PyObject *args, PyObject *kw) {
    PyObject *graph, *space;
    if (!PyArg_ParseTuple(args, "OO", &graph, &space)) return -1;
    if (self->ready) { qa_scratch_free(&self->s); gs_release(&self->gs); self->ready = 0; }
    self->src_fd = -1;
    if (gs_parse(graph, space, &self->gs, 0)) return -1;
    if (qa_scratch_init(&self->s, self->gs.g.n, 64, self->gs.g.M0, self->gs.qz.dpad)) {
        gs_release(&self->gs);
        PyErr_NoMemory();
        return -1;
    }
    self->ready = 1;
    return 0;
}

static void Searcher_dealloc(Searcher *self) {
    if (self->ready) { qa_scratch_free(&self->s); gs_release(&self->gs); }
    rel(&self->src_buf);
    free(self->cand); free(self->cand_d); free(self->vecs); free(self->bounce);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* search(q float32[d], nres, ef, rows_out int32[nres], dist_out float32[nres]) -> (found, ndist) */
static PyObject *Searcher_search(Searcher *self, PyObject *args) {
    PyObject *q_o, *r_o, *d_o;
    int nres, ef;
    if (!PyArg_ParseTuple(args, "OiiOO", &q_o, &nres, &ef, &r_o, &d_o)) return NULL;
    if (!self->ready) { PyErr_SetString(PyExc_RuntimeError, "searcher not initialised"); return NULL; }
    buf_t q, r, d;
    if (get_buf(q_o, &q, 0, 4, self->gs.sp.d, "query")) return NULL;
    if (get_buf(r_o, &r, 1, 4, nres, "rows_out")) { rel(&q); return NULL; }
    if (get_buf(d_o, &d, 1, 4, nres, "dist_out")) { rel(&q); rel(&r); return NULL; }
    int found;
    int64_t ndist = 0;
    Py_BEGIN_ALLOW_THREADS
    found = qa_hnsw_search(&self->gs.g, &self->gs.sp, q.b.buf, ef, nres, &self->s, r.b.buf, d.b.buf, &ndist);
    Py_END_ALLOW_THREADS
    rel(&q); rel(&r); rel(&d);
    if (found < 0) return PyErr_NoMemory();
    return Py_BuildValue("iL", found, (long long)ndist);
}

/* set_source(("fd", fd, base, max_gap) | ("buffer", array) | None) */
static PyObject *Searcher_set_source(Searcher *self, PyObject *args) {
    PyObject *src;
    if (!PyArg_ParseTuple(args, "O", &src)) return NULL;
    rel(&self->src_buf);
    self->src_fd = -1;
    if (src == Py_None) Py_RETURN_NONE;
    const char *kind;
    PyObject *a1 = NULL;
    long long base = 0;
    int max_gap = 0;
    if (!PyArg_ParseTuple(src, "s|OLi", &kind, &a1, &base, &max_gap)) return NULL;
    if (strcmp(kind, "fd") == 0) {
        self->src_fd = (int)PyLong_AsLong(a1);
        if (PyErr_Occurred()) return NULL;
        self->src_base = base;
        self->src_max_gap = max_gap;
    } else if (strcmp(kind, "buffer") == 0) {
        if (get_buf(a1, &self->src_buf, 0, 4 * (Py_ssize_t)self->gs.sp.d, self->gs.g.n, "vectors buffer")) return NULL;
    } else {
        PyErr_Format(PyExc_ValueError, "unknown source %s", kind);
        return NULL;
    }
    Py_RETURN_NONE;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static inline int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* query(q, k, nres, ef, rows_out int32[k], dist_out float32[k]) ->
 *   (found, candidates, ndist, ranges, bytes, graph_ns, read_ns, rerank_ns)
 * The whole pipeline in one call: graph search for nres candidates, their rows sorted,
 * read from the source in one batch, exact rerank to k. Needs a source. */
static PyObject *Searcher_query(Searcher *self, PyObject *args) {
    PyObject *q_o, *r_o, *d_o;
    int k, nres, ef;
    if (!PyArg_ParseTuple(args, "OiiiOO", &q_o, &k, &nres, &ef, &r_o, &d_o)) return NULL;
    if (!self->ready || (self->src_fd < 0 && !self->src_buf.held)) {
        PyErr_SetString(PyExc_RuntimeError, "searcher has no vector source");
        return NULL;
    }
    if (k <= 0 || nres < k) { PyErr_SetString(PyExc_ValueError, "need 0 < k <= nres"); return NULL; }
    const int d = self->gs.sp.d;
    if (nres > self->cap) {
        free(self->cand); free(self->cand_d); free(self->vecs);
        self->cand = malloc(sizeof(int32_t) * (size_t)nres);
        self->cand_d = malloc(sizeof(float) * (size_t)nres);
        self->vecs = malloc(sizeof(float) * (size_t)nres * (size_t)d);
        self->cap = (self->cand && self->cand_d && self->vecs) ? nres : 0;
        if (!self->cap) return PyErr_NoMemory();
    }
    buf_t q, r, dd;
    if (get_buf(q_o, &q, 0, 4, d, "query")) return NULL;
    if (get_buf(r_o, &r, 1, 4, k, "rows_out")) { rel(&q); return NULL; }
    if (get_buf(d_o, &dd, 1, 4, k, "dist_out")) { rel(&q); rel(&r); return NULL; }
    int found, kept = 0, ranges = 0, err = 0;
    int64_t ndist = 0, bytes = 0, t0, t1, t2, t3;
    Py_BEGIN_ALLOW_THREADS
    t0 = now_ns();
    found = qa_hnsw_search(&self->gs.g, &self->gs.sp, q.b.buf, ef, nres, &self->s, self->cand, self->cand_d, &ndist);
    t1 = now_ns();
    if (found > 0) {
        qsort(self->cand, (size_t)found, sizeof(int32_t), cmp_i32);
        if (self->src_fd >= 0) {
            err = read_rows_fd(self->src_fd, self->src_base, (int64_t)d * 4, self->cand, found, (char *)self->vecs,
                               self->src_max_gap, &self->bounce, &self->bounce_cap, &ranges, &bytes);
        } else {
            const float *base = self->src_buf.b.buf;
            for (int i = 0; i < found; i++) {
                memcpy(self->vecs + (size_t)i * d, base + (int64_t)self->cand[i] * d, (size_t)d * 4);
                if (i == 0 || self->cand[i] != self->cand[i - 1] + 1) ranges++;
            }
            bytes = (int64_t)found * d * 4;
        }
    }
    t2 = now_ns();
    if (found > 0 && !err)
        kept = qa_rerank(self->gs.sp.metric, q.b.buf, self->vecs, self->cand, found, d, k, r.b.buf, dd.b.buf);
    t3 = now_ns();
    Py_END_ALLOW_THREADS
    rel(&q); rel(&r); rel(&dd);
    if (found < 0 || kept < 0) return PyErr_NoMemory();
    if (err) return read_error(err);
    return Py_BuildValue("iiLiLLLL", kept, found, (long long)ndist, ranges, (long long)bytes,
                         (long long)(t1 - t0), (long long)(t2 - t1), (long long)(t3 - t2));
}

static PyMethodDef Searcher_methods[] = {
    {"search", (PyCFunction)Searcher_search, METH_VARARGS, "search(q, nres, ef, rows_out, dist_out) -> (found, ndist)"},
    {"set_source", (PyCFunction)Searcher_set_source, METH_VARARGS, "set_source(('fd', fd, base, max_gap) | ('buffer', vectors) | None)"},
    {"query", (PyCFunction)Searcher_query, METH_VARARGS,
     "query(q, k, nres, ef, rows_out, dist_out) -> (found, candidates, ndist, ranges, bytes, graph_ns, read_ns, rerank_ns)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject SearcherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._kernel.Searcher",
    .tp_basicsize = sizeof(Searcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Searcher_init,
    .tp_dealloc = (destructor)Searcher_dealloc,
    .tp_methods = Searcher_methods,
    .tp_doc = "Graph search over codes with its own scratch memory (not thread-safe).",
};

/* rerank(metric, q, rows_vectors (m x d), row_ids int32[m], k, rows_out, dist_out) -> found */
static PyObject *py_rerank(PyObject *self, PyObject *args) {
    int metric, k, d;
    PyObject *q_o, *v_o, *id_o, *r_o, *dist_o;
    if (!PyArg_ParseTuple(args, "iOiOOiOO", &metric, &q_o, &d, &v_o, &id_o, &k, &r_o, &dist_o)) return NULL;
    buf_t q, v, ids, r, dd;
    if (get_buf(q_o, &q, 0, 4, d, "query")) return NULL;
    if (get_buf(id_o, &ids, 0, 4, 0, "row_ids")) { rel(&q); return NULL; }
    int m = (int)(ids.b.len / 4);
    if (get_buf(v_o, &v, 0, 4 * (Py_ssize_t)d, m, "rows")) { rel(&q); rel(&ids); return NULL; }
    int kk = k < m ? k : m;
    if (get_buf(r_o, &r, 1, 4, kk, "rows_out")) { rel(&q); rel(&ids); rel(&v); return NULL; }
    if (get_buf(dist_o, &dd, 1, 4, kk, "dist_out")) { rel(&q); rel(&ids); rel(&v); rel(&r); return NULL; }
    int found;
    Py_BEGIN_ALLOW_THREADS
    found = qa_rerank(metric, q.b.buf, v.b.buf, ids.b.buf, m, d, k, r.b.buf, dd.b.buf);
    Py_END_ALLOW_THREADS
    rel(&q); rel(&ids); rel(&v); rel(&r); rel(&dd);
    if (found < 0) return PyErr_NoMemory();
    return PyLong_FromLong(found);
}

/* pread_rows(fd, base, row_bytes, rows int32 ascending, out, max_gap_rows) -> ranges */
static PyObject *py_pread_rows(PyObject *self, PyObject *args) {
    int fd, max_gap;
    long long base, row_bytes;
    PyObject *rows_o, *out_o;
    if (!PyArg_ParseTuple(args, "iLLOOi", &fd, &base, &row_bytes, &rows_o, &out_o, &max_gap)) return NULL;
    buf_t rows, out;
    if (get_buf(rows_o, &rows, 0, 4, 0, "rows")) return NULL;
    Py_ssize_t m = rows.b.len / 4;
    if (get_buf(out_o, &out, 1, (Py_ssize_t)row_bytes, m, "out")) { rel(&rows); return NULL; }
    int ranges = 0, err;
    int64_t bytes = 0;
    char *bounce = NULL;
    size_t bounce_cap = 0;
    Py_BEGIN_ALLOW_THREADS
    err = read_rows_fd(fd, base, row_bytes, rows.b.buf, m, out.b.buf, max_gap, &bounce, &bounce_cap, &ranges, &bytes);
    Py_END_ALLOW_THREADS
    free(bounce);
    rel(&rows); rel(&out);
    if (err) return read_error(err);
    return PyLong_FromLong(ranges);
}

/* dots(kind, w int16[dpad], codes, n, dpad, ref: bool) -> list of int: held to the
 * reference by the tests */
static PyObject *py_int_dots(PyObject *self, PyObject *args) {
    int kind, dpad, ref;
    PyObject *w_o, *c_o;
    if (!PyArg_ParseTuple(args, "iOOip", &kind, &w_o, &c_o, &dpad, &ref)) return NULL;
    if (dpad <= 0 || dpad % 64) { PyErr_SetString(PyExc_ValueError, "dpad must be a positive multiple of 64"); return NULL; }
    buf_t w, c;
    if (get_buf(w_o, &w, 0, 2, dpad, "w")) return NULL;
    int cs = kind == QA_QUANT_SQ8 ? dpad : dpad / 2;
    if (get_buf(c_o, &c, 0, 1, 0, "codes")) { rel(&w); return NULL; }
    Py_ssize_t n = c.b.len / cs;
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *ci = (const uint8_t *)c.b.buf + i * cs;
        int32_t s = kind == QA_QUANT_SQ8 ? (ref ? qa_dot_sq8_ref(w.b.buf, ci, dpad) : qa_dot_sq8(w.b.buf, ci, dpad))
                                         : (ref ? qa_dot_sq4_ref(w.b.buf, ci, dpad) : qa_dot_sq4(w.b.buf, ci, dpad));
        PyList_SET_ITEM(out, i, PyLong_FromLong(s));
    }
    rel(&w); rel(&c);
    return out;
}

/* float_dists(metric, q, X, ref) -> list: float kernels against their reference */
static PyObject *py_float_dists(PyObject *self, PyObject *args) {
    int metric, d, ref;
    PyObject *q_o, *x_o;
    if (!PyArg_ParseTuple(args, "iOOip", &metric, &q_o, &x_o, &d, &ref)) return NULL;
    buf_t q, x;
    if (get_buf(q_o, &q, 0, 4, d, "q")) return NULL;
    if (get_buf(x_o, &x, 0, 4, 0, "x")) { rel(&q); return NULL; }
    Py_ssize_t n = x.b.len / (4 * d);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        const float *xi = (const float *)x.b.buf + i * d;
        float v = metric == QA_METRIC_L2 ? (ref ? qa_l2sq_f32_ref(q.b.buf, xi, d) : qa_l2sq_f32(q.b.buf, xi, d))
                                         : (ref ? qa_dot_f32_ref(q.b.buf, xi, d) : qa_dot_f32(q.b.buf, xi, d));
        PyList_SET_ITEM(out, i, PyFloat_FromDouble(v));
    }
    rel(&q); rel(&x);
    return out;
}

/* normalize_rows(x float32 (n, d), d) -> index of the first zero row, or -1. In place. */
static PyObject *py_normalize_rows(PyObject *self, PyObject *args) {
    PyObject *x_o;
    int d;
    if (!PyArg_ParseTuple(args, "Oi", &x_o, &d)) return NULL;
    if (d <= 0) { PyErr_SetString(PyExc_ValueError, "d must be positive"); return NULL; }
    buf_t x;
    if (get_buf(x_o, &x, 1, 4, 0, "x")) return NULL;
    Py_ssize_t n = x.b.len / (4 * (Py_ssize_t)d), bad = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        if (qa_normalize((float *)x.b.buf + i * d, (size_t)d) && bad < 0) bad = i;
    Py_END_ALLOW_THREADS
    rel(&x);
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
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS, "encode(kind, d, vmin, scale, x, out)"},
    {"decode", py_decode, METH_VARARGS, "decode(kind, d, vmin, scale, codes, out)"},
    {"hnsw_insert", py_hnsw_insert, METH_VARARGS, "hnsw_insert(graph, space, start, end, vecs, ef, nthreads) -> (entry, max_level)"},
    {"rerank", py_rerank, METH_VARARGS, "rerank(metric, q, d, rows, row_ids, k, rows_out, dist_out) -> found"},
    {"pread_rows", py_pread_rows, METH_VARARGS, "pread_rows(fd, base, row_bytes, rows, out, max_gap) -> ranges"},
    {"int_dots", py_int_dots, METH_VARARGS, "int_dots(kind, w, codes, dpad, ref) -> [int]"},
    {"float_dists", py_float_dists, METH_VARARGS, "float_dists(metric, q, x, d, ref) -> [float]"},
    {"normalize_rows", py_normalize_rows, METH_VARARGS, "normalize_rows(x, d) -> first zero row or -1 (in place)"},
    {"cpu", py_cpu, METH_NOARGS, "SIMD features in use"},
    QA_FILE_METHODS
    {"set_simd", py_set_simd, METH_VARARGS, "set_simd(on): use SIMD variants (True) or the scalar references"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_kernel", "quantann index kernel", -1, methods};

PyMODINIT_FUNC PyInit__kernel(void) {
    qa_cpu_init();
    if (PyType_Ready(&SearcherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&SearcherType);
    PyModule_AddObject(m, "Searcher", (PyObject *)&SearcherType);
    return m;
}
