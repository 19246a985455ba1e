/* CPython glue for the lazy-loading baseline (bench/lazy/lazy.c): bench._lazy,
 * built by bench/setup_lazy.py (never part of the quantann package).
 *
 *   s = LazySearcher(graph_tuple, metric, d, cache_cap, cache_mem, missing)
 *   r = s.begin(q, ef, nres)        # r > 0: rows missing[0..r) are needed
 *   while r > 0:
 *       s.put(rows, vectors)        # the host's one batched read
 *       r = s.resume()
 *   found, ndist, rounds, fetched = s.result(rows_out, dist_out)
 *
 * graph_tuple is Graph.as_tuple(): (links0, level, up_nodes, up_off, upper, entry,
 * max_level, M, M0, deleted|None, n). cache_mem is a writable buffer of at least
 * lru_bytes(n, cache_cap, d) bytes; missing a writable int32 buffer of M0 + 1. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "lazy.h"

enum { L_LINKS, L_LEVEL, L_UPN, L_UPO, L_UPPER, L_DEL, L_MEM, L_MISS, L_COUNT };

typedef struct {
    PyObject_HEAD
    Py_buffer b[L_COUNT];
    int held[L_COUNT];
    qa_graph g;
    qa_lru cache;
    qa_scratch s;
    qa_lazy ls;
    float *q;
    int metric, d, ready;
} LazySearcher;

static void release_all(LazySearcher *self) {
    for (int i = 0; i < L_COUNT; i++)
        if (self->held[i]) { PyBuffer_Release(&self->b[i]); self->held[i] = 0; }
    if (self->ready) qa_scratch_free(&self->s);
    free(self->q);
    self->q = NULL;
    self->ready = 0;
}

static int take(LazySearcher *self, int i, PyObject *o, int writable, Py_ssize_t min_bytes, const char *what) {
    if (o == Py_None) {
        if (min_bytes > 0) { PyErr_Format(PyExc_ValueError, "%s is required", what); return -1; }
        return 0;
    }
    if (PyObject_GetBuffer(o, &self->b[i], PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    self->held[i] = 1;
    if (self->b[i].len < min_bytes) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, need %zd", what, self->b[i].len, min_bytes);
        return -1;
    }
    return 0;
}

static int Lazy_init(LazySearcher *self, PyObject *args, PyObject *kw) {
    PyObject *graph, *mem, *miss;
    int metric, d, cap;
    if (!PyArg_ParseTuple(args, "OiiiOO", &graph, &metric, &d, &cap, &mem, &miss)) return -1;
    release_all(self);
    PyObject *links0, *level, *upn, *upo, *upper, *del;
    int entry, max_level, M, M0;
    long long n;
    if (!PyArg_ParseTuple(graph, "OOOOOiiiiOL;graph tuple", &links0, &level, &upn, &upo, &upper,
                          &entry, &max_level, &M, &M0, &del, &n))
        return -1;
    if (d <= 0 || M <= 0 || M0 <= 0 || M > 255 || M0 > 255 || n < 0 || n > INT32_MAX || cap < M0 + 1) {
        PyErr_Format(PyExc_ValueError, "bad parameters (the cache must hold at least M0 + 1 = %d vectors)", M0 + 1);
        return -1;
    }
    if (take(self, L_LINKS, links0, 0, (Py_ssize_t)(4 * n * M0), "links0") ||
        take(self, L_LEVEL, level, 0, (Py_ssize_t)n, "level") ||
        take(self, L_UPN, upn, 0, 0, "up_nodes") || take(self, L_UPO, upo, 0, 0, "up_off") ||
        take(self, L_UPPER, upper, 0, 0, "upper") || take(self, L_DEL, del, 0, (Py_ssize_t)((n + 7) / 8) * (del != Py_None), "deleted") ||
        take(self, L_MEM, mem, 1, (Py_ssize_t)qa_lru_bytes(n, cap, d), "cache memory") ||
        take(self, L_MISS, miss, 1, 4 * (Py_ssize_t)(M0 + 1), "missing")) {
        release_all(self);
        return -1;
    }
    if (self->b[L_UPN].len / 4 != self->b[L_UPO].len / 8) {
        release_all(self);
        PyErr_SetString(PyExc_ValueError, "up_nodes and up_off differ in length");
        return -1;
    }
    qa_graph *g = &self->g;
    memset(g, 0, sizeof(*g));
    g->n = n; g->M = M; g->M0 = M0;
    g->links0 = (int32_t *)self->b[L_LINKS].buf;
    g->level = (uint8_t *)self->b[L_LEVEL].buf;
    g->up_nodes = (const int32_t *)self->b[L_UPN].buf;
    g->up_off = (const int64_t *)self->b[L_UPO].buf;
    g->n_up = self->b[L_UPN].len / 4;
    g->upper = (int32_t *)self->b[L_UPPER].buf;
    g->entry = entry;
    g->max_level = max_level;
    g->deleted = self->held[L_DEL] ? (const uint8_t *)self->b[L_DEL].buf : NULL;
    if (qa_lru_init(&self->cache, self->b[L_MEM].buf, (size_t)self->b[L_MEM].len, n, cap, d)) {
        release_all(self);
        PyErr_SetString(PyExc_ValueError, "cache memory too small");
        return -1;
    }
    self->q = (float *)malloc(sizeof(float) * (size_t)d);
    if (!self->q || qa_scratch_init(&self->s, n, 64, M0, qa_pad_dims(d))) {
        release_all(self);
        PyErr_NoMemory();
        return -1;
    }
    self->metric = metric;
    self->d = d;
    self->ready = 1;
    return 0;
}

static void Lazy_dealloc(LazySearcher *self) {
    release_all(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *status(int r) {
    if (r == -1) return PyErr_NoMemory();
    if (r == -2) { PyErr_SetString(PyExc_ValueError, "cache smaller than one search step"); return NULL; }
    return PyLong_FromLong(r);
}

static PyObject *Lazy_begin(LazySearcher *self, PyObject *args) {
    PyObject *q_o;
    int ef, nres;
    if (!PyArg_ParseTuple(args, "Oii", &q_o, &ef, &nres)) return NULL;
    if (!self->ready) { PyErr_SetString(PyExc_RuntimeError, "not initialised"); return NULL; }
    Py_buffer q;
    if (PyObject_GetBuffer(q_o, &q, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (q.len < 4 * self->d) { PyBuffer_Release(&q); PyErr_SetString(PyExc_ValueError, "query too short"); return NULL; }
    memcpy(self->q, q.buf, sizeof(float) * (size_t)self->d);
    PyBuffer_Release(&q);
    int r = qa_lazy_begin(&self->ls, &self->g, &self->cache, &self->s, self->metric, self->q, ef, nres,
                          (int32_t *)self->b[L_MISS].buf);
    return status(r);
}

static PyObject *Lazy_resume(LazySearcher *self, PyObject *noargs) {
    if (!self->ready) { PyErr_SetString(PyExc_RuntimeError, "not initialised"); return NULL; }
    return status(qa_lazy_resume(&self->ls));
}

/* put(rows int32[m], vectors float32[m, d]) */
static PyObject *Lazy_put(LazySearcher *self, PyObject *args) {
    PyObject *r_o, *v_o;
    if (!PyArg_ParseTuple(args, "OO", &r_o, &v_o)) return NULL;
    if (!self->ready) { PyErr_SetString(PyExc_RuntimeError, "not initialised"); return NULL; }
    Py_buffer r, v;
    if (PyObject_GetBuffer(r_o, &r, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(v_o, &v, PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&r); return NULL; }
    Py_ssize_t m = r.len / 4;
    const int32_t *rows = (const int32_t *)r.buf;
    int bad = v.len < m * 4 * (Py_ssize_t)self->d;
    for (Py_ssize_t i = 0; i < m && !bad; i++) bad = rows[i] < 0 || rows[i] >= self->g.n;
    if (!bad)
        for (Py_ssize_t i = 0; i < m; i++)
            qa_lru_put(&self->cache, rows[i], (const float *)v.buf + i * self->d);
    PyBuffer_Release(&r);
    PyBuffer_Release(&v);
    if (bad) { PyErr_SetString(PyExc_ValueError, "put: bad rows or too few vectors"); return NULL; }
    Py_RETURN_NONE;
}

static PyObject *Lazy_result(LazySearcher *self, PyObject *args) {
    PyObject *r_o, *d_o;
    if (!PyArg_ParseTuple(args, "OO", &r_o, &d_o)) return NULL;
    if (!self->ready) { PyErr_SetString(PyExc_RuntimeError, "not initialised"); return NULL; }
    Py_buffer r, d;
    if (PyObject_GetBuffer(r_o, &r, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) return NULL;
    if (PyObject_GetBuffer(d_o, &d, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) { PyBuffer_Release(&r); return NULL; }
    int found = -1;
    if (r.len >= 4 * self->ls.nres && d.len >= 4 * self->ls.nres)
        found = qa_lazy_result(&self->ls, (int32_t *)r.buf, (float *)d.buf);
    PyBuffer_Release(&r);
    PyBuffer_Release(&d);
    if (found < 0) { PyErr_SetString(PyExc_ValueError, "result buffers shorter than nres"); return NULL; }
    return Py_BuildValue("iLLL", found, (long long)self->ls.ndist, (long long)self->ls.rounds,
                         (long long)self->ls.fetched);
}

static PyObject *Lazy_stats(LazySearcher *self, PyObject *noargs) {
    qa_lru *c = &self->cache;
    return Py_BuildValue("{s:L,s:L,s:L,s:i,s:i}", "hits", (long long)c->hits, "misses", (long long)c->misses,
                         "evictions", (long long)c->evictions, "used", c->used, "cap", c->cap);
}

static PyObject *Lazy_clear(LazySearcher *self, PyObject *noargs) {
    if (self->ready) qa_lru_clear(&self->cache);
    Py_RETURN_NONE;
}

static PyMethodDef Lazy_methods[] = {
    {"begin", (PyCFunction)Lazy_begin, METH_VARARGS, "begin(q, ef, nres) -> missing count (0: done)"},
    {"resume", (PyCFunction)Lazy_resume, METH_NOARGS, "resume() -> missing count (0: done)"},
    {"put", (PyCFunction)Lazy_put, METH_VARARGS, "put(rows, vectors): into the LRU cache"},
    {"result", (PyCFunction)Lazy_result, METH_VARARGS, "result(rows_out, dist_out) -> (found, ndist, rounds, fetched)"},
    {"stats", (PyCFunction)Lazy_stats, METH_NOARGS, "cache counters"},
    {"clear", (PyCFunction)Lazy_clear, METH_NOARGS, "empty the cache"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject LazyType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bench._lazy.LazySearcher",
    .tp_basicsize = sizeof(LazySearcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lazy_init,
    .tp_dealloc = (destructor)Lazy_dealloc,
    .tp_methods = Lazy_methods,
    .tp_doc = "Resumable float HNSW search over an LRU vector cache (not thread-safe).",
};

static PyObject *py_lru_bytes(PyObject *self, PyObject *args) {
    long long n;
    int cap, d;
    if (!PyArg_ParseTuple(args, "Lii", &n, &cap, &d)) return NULL;
    return PyLong_FromSize_t(qa_lru_bytes(n, cap, d));
}

static PyMethodDef methods[] = {
    {"lru_bytes", py_lru_bytes, METH_VARARGS, "lru_bytes(n, cap, d) -> bytes of the cache block"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_lazy", "quantann benchmarks: the lazy-loading baseline", -1, methods};

PyMODINIT_FUNC PyInit__lazy(void) {
    qa_cpu_init();
    if (PyType_Ready(&LazyType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&LazyType);
    PyModule_AddObject(m, "LazySearcher", (PyObject *)&LazyType);
    return m;
}
