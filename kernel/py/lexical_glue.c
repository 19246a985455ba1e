/* CPython glue of the lexical index (kernel/text/lexical.h): buffers in, bytes out. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "errors.h"
#include "py/buffers.h"
#include "py/lexical_glue.h"
#include "text/lexical.h"

/* lex_build(text_bytes, offsets u64 (n + 1)) */
PyObject *qa_py_lex_build(PyObject *self, PyObject *args) {
    PyObject *bytes_o, *off_o;
    if (!PyArg_ParseTuple(args, "OO", &bytes_o, &off_o)) return NULL;
    qa_py_buf text, off;
    if (qa_py_get_buf(bytes_o, &text, 0, 1, 0, "text bytes")) return NULL;
    if (qa_py_get_buf(off_o, &off, 0, 8, 2, "offsets")) { qa_py_rel(&text); return NULL; }
    uint64_t n = (uint64_t)off.b.len / 8 - 1;
    const uint64_t *o = off.b.buf;
    if (o[n] > (uint64_t)text.b.len) {
        qa_py_rel(&text); qa_py_rel(&off);
        PyErr_SetString(PyExc_ValueError, "text offsets run past the text bytes");
        return NULL;
    }
    qa_lex_built b;
    char err[256] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qa_lex_build(text.b.buf, o, n, &b, err, sizeof err);
    Py_END_ALLOW_THREADS
    qa_py_rel(&text); qa_py_rel(&off);
    if (rc) {
        PyErr_SetString(rc == QA_ERR_NOMEM ? PyExc_MemoryError : PyExc_ValueError, err);
        return NULL;
    }
    const qa_lex *l = &b.lex;
    PyObject *r = Py_BuildValue("y#y#y#y#y#y#", (const char *)b.terms, (Py_ssize_t)l->terms_len,
                                (const char *)b.term_off, (Py_ssize_t)(4 * (l->n_terms + 1)),
                                (const char *)b.df, (Py_ssize_t)(4 * (l->n_terms ? l->n_terms : 1)),
                                (const char *)b.post_off, (Py_ssize_t)(8 * (l->n_terms + 1)),
                                (const char *)b.postings, (Py_ssize_t)l->postings_len,
                                (const char *)b.doc_len, (Py_ssize_t)(2 * n));
    qa_lex_built_free(&b);
    return r;
}

/* rrf_fuse(a u64, b u64, wa, wb, rrf_k, k) */
PyObject *qa_py_rrf_fuse(PyObject *self, PyObject *args) {
    PyObject *a_o, *b_o;
    double wa, wb, rk;
    long long k;
    if (!PyArg_ParseTuple(args, "OOdddL", &a_o, &b_o, &wa, &wb, &rk, &k)) return NULL;
    if (k < 0) { PyErr_SetString(PyExc_ValueError, "k must be >= 0"); return NULL; }
    qa_py_buf a, b;
    if (qa_py_get_buf(a_o, &a, 0, 8, 0, "a")) return NULL;
    if (qa_py_get_buf(b_o, &b, 0, 8, 0, "b")) { qa_py_rel(&a); return NULL; }
    int64_t na = a.b.len / 8, nb = b.b.len / 8, cap = k < na + nb ? k : na + nb;
    uint64_t *ids = PyMem_Malloc(8 * (size_t)(cap + 1));
    double *sc = PyMem_Malloc(8 * (size_t)(cap + 1));
    int64_t m = ids && sc ? qa_rrf_fuse(a.b.buf, na, b.b.buf, nb, wa, wb, rk, cap, ids, sc) : QA_ERR_NOMEM;
    qa_py_rel(&a); qa_py_rel(&b);
    PyObject *r = m < 0 ? PyErr_NoMemory() : Py_BuildValue("y#y#", (const char *)ids, (Py_ssize_t)(8 * m),
                                                             (const char *)sc, (Py_ssize_t)(8 * m));
    PyMem_Free(ids);
    PyMem_Free(sc);
    return r;
}

/* ---- Lexical(n_docs, terms, term_offsets, df, post_offsets, postings, doc_len) --------- */

enum { L_TERMS, L_TERM_OFF, L_DF, L_POST_OFF, L_POSTINGS, L_DOC_LEN, L_COUNT };

typedef struct {
    PyObject_HEAD
    qa_lex lx;
    qa_py_buf bufs[L_COUNT];
    int ready;
} LexicalObject;

static void Lexical_dealloc(LexicalObject *self) {
    for (int i = 0; i < L_COUNT; i++) qa_py_rel(&self->bufs[i]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Lexical_init(LexicalObject *self, PyObject *args, PyObject *kw) {
    long long n;
    PyObject *o[L_COUNT];
    if (!PyArg_ParseTuple(args, "LOOOOOO", &n, &o[0], &o[1], &o[2], &o[3], &o[4], &o[5])) return -1;
    static const char *names[L_COUNT] = {"terms", "term_offsets", "df", "post_offsets", "postings", "doc_len"};
    static const Py_ssize_t item[L_COUNT] = {1, 4, 4, 8, 1, 2};
    if (self->ready) { PyErr_SetString(PyExc_RuntimeError, "Lexical already initialised"); return -1; }
    for (int i = 0; i < L_COUNT; i++)
        if (qa_py_get_buf(o[i], &self->bufs[i], 0, item[i], 1, names[i])) {
            for (int j = 0; j < i; j++) qa_py_rel(&self->bufs[j]);
            return -1;
        }
    qa_lex *l = &self->lx;
    l->n_docs = n < 0 ? 0 : (uint64_t)n;
    l->n_terms = (uint64_t)self->bufs[L_TERM_OFF].b.len / 4 - 1;
    l->terms = self->bufs[L_TERMS].b.buf;
    l->terms_len = (uint64_t)self->bufs[L_TERMS].b.len;
    l->term_off = self->bufs[L_TERM_OFF].b.buf;
    l->df = self->bufs[L_DF].b.buf;
    l->post_off = self->bufs[L_POST_OFF].b.buf;
    l->postings = self->bufs[L_POSTINGS].b.buf;
    l->postings_len = (uint64_t)self->bufs[L_POSTINGS].b.len;
    l->doc_len = self->bufs[L_DOC_LEN].b.buf;
    char err[256] = "";
    int rc = QA_OK;
    if ((uint64_t)self->bufs[L_DF].b.len / 4 < l->n_terms || (uint64_t)self->bufs[L_POST_OFF].b.len / 8 != l->n_terms + 1 ||
        (uint64_t)self->bufs[L_DOC_LEN].b.len / 2 != l->n_docs) {
        snprintf(err, sizeof err, "lexical index arrays disagree on their lengths (%llu terms, %llu documents)",
                 (unsigned long long)l->n_terms, (unsigned long long)l->n_docs);
        rc = QA_ERR_FORMAT;
    }
    if (!rc) {
        Py_BEGIN_ALLOW_THREADS
        rc = qa_lex_check(l, err, sizeof err);
        Py_END_ALLOW_THREADS
    }
    if (rc) {
        for (int i = 0; i < L_COUNT; i++) qa_py_rel(&self->bufs[i]);
        PyErr_SetString(PyExc_ValueError, err);
        return -1;
    }
    self->ready = 1;
    return 0;
}

/* search(query str, k) -> (positions u32 bytes, scores f32 bytes) */
static PyObject *Lexical_search(LexicalObject *self, PyObject *args) {
    PyObject *q_o;
    long long k;
    if (!PyArg_ParseTuple(args, "OL", &q_o, &k)) return NULL;
    if (!self->ready) { PyErr_SetString(PyExc_RuntimeError, "Lexical not initialised"); return NULL; }
    if (k < 1 || k > (long long)self->lx.n_docs) k = k < 1 ? 0 : (long long)self->lx.n_docs;
    PyObject *qb = qa_py_text_bytes(q_o, "replace");
    if (!qb) return NULL;
    uint32_t *docs = PyMem_RawMalloc(4 * (size_t)(k + 1));
    float *sc = PyMem_RawMalloc(4 * (size_t)(k + 1));
    int64_t m = QA_ERR_NOMEM;
    if (docs && sc) {
        const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(qb);
        size_t len = (size_t)PyBytes_GET_SIZE(qb);
        Py_BEGIN_ALLOW_THREADS
        m = qa_lex_search(&self->lx, p, len, k, docs, sc);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(qb);
    PyObject *r = m < 0 ? PyErr_NoMemory() : Py_BuildValue("y#y#", (const char *)docs, (Py_ssize_t)(4 * m),
                                                             (const char *)sc, (Py_ssize_t)(4 * m));
    PyMem_RawFree(docs);
    PyMem_RawFree(sc);
    return r;
}

/* terms(text) -> [bytes]: the terms of text, as the index sees them */
static PyObject *Lexical_terms_of(PyObject *cls, PyObject *args);

static void collect(const uint8_t *t, size_t n, void *ctx) {
    PyObject *b = PyBytes_FromStringAndSize((const char *)t, (Py_ssize_t)n);
    if (b) { PyList_Append((PyObject *)ctx, b); Py_DECREF(b); }
}

static PyObject *Lexical_terms_of(PyObject *cls, PyObject *args) {
    PyObject *q_o;
    if (!PyArg_ParseTuple(args, "O", &q_o)) return NULL;
    PyObject *qb = qa_py_text_bytes(q_o, "replace");
    if (!qb) return NULL;
    PyObject *out = PyList_New(0);
    if (out) qa_lex_terms((const uint8_t *)PyBytes_AS_STRING(qb), (size_t)PyBytes_GET_SIZE(qb), collect, out);
    Py_DECREF(qb);
    if (out && PyErr_Occurred()) Py_CLEAR(out);
    return out;
}

static PyObject *Lexical_info(LexicalObject *self, void *closure) {
    return Py_BuildValue("{s:K,s:K,s:d}", "documents", (unsigned long long)self->lx.n_docs, "terms",
                         (unsigned long long)self->lx.n_terms, "avg_len", self->lx.avg_len);
}

static PyMethodDef Lexical_methods[] = {
    {"search", (PyCFunction)Lexical_search, METH_VARARGS, "search(query, k) -> (positions u32 bytes, BM25 scores f32 bytes)"},
    {"terms", (PyCFunction)Lexical_terms_of, METH_VARARGS | METH_STATIC, "terms(text) -> [bytes]: its terms"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Lexical_getset[] = {{"info", (getter)Lexical_info, NULL, "documents, terms, avg_len", NULL},
                                       {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject LexicalType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._kernel.Lexical",
    .tp_basicsize = sizeof(LexicalObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Lexical(n_docs, terms, term_offsets, df, post_offsets, postings, doc_len): BM25 over held buffers",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lexical_init,
    .tp_dealloc = (destructor)Lexical_dealloc,
    .tp_methods = Lexical_methods,
    .tp_getset = Lexical_getset,
};

int qa_py_lexical_add_type(PyObject *m) {
    if (PyType_Ready(&LexicalType) < 0) return -1;
    Py_INCREF(&LexicalType);
    return PyModule_AddObject(m, "Lexical", (PyObject *)&LexicalType);
}
