/* Helpers shared by the CPython glue (kernel/py/): holding a caller's buffer with a
 * size check and a named error, text as UTF-8 bytes, and reading a GGUF's tables from a held buffer. */
#ifndef QA_PY_BUFFERS_H
#define QA_PY_BUFFERS_H

#include <Python.h>
#include <string.h>

#include "gguf/gguf.h"

/* A buffer that may be held (None gives an empty, unheld one). */
typedef struct {
    Py_buffer b;
    int held;
} qa_py_buf;

/* Hold o C-contiguous (writable if asked) with at least itemsize * min_items bytes; the
 * errors name the argument `what`. None or NULL is allowed when min_items is 0. */
static inline int qa_py_get_buf(PyObject *o, qa_py_buf *out, int writable, Py_ssize_t itemsize,
                                Py_ssize_t min_items, const char *what) {
    out->held = 0;
    if (o == NULL || o == Py_None) {
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

static inline void qa_py_rel(qa_py_buf *b) {
    if (b->held) PyBuffer_Release(&b->b);
    b->held = 0;
}

/* str -> UTF-8 (unencodable code points handled as `errors` says); bytes as they are. */
static inline PyObject *qa_py_text_bytes(PyObject *o, const char *errors) {
    if (PyUnicode_Check(o)) return PyUnicode_AsEncodedString(o, "utf-8", errors);
    if (PyBytes_Check(o)) {
        Py_INCREF(o);
        return o;
    }
    PyErr_SetString(PyExc_TypeError, "text must be str or bytes");
    return NULL;
}

/* Hold obj's bytes in *view (kept for the object's life: a memory map is used in place,
 * *has_view says to release it) and parse its GGUF tables into *kv and *tensors, allocated
 * with PyMem_RawCalloc and owned by the caller even on failure. Returns 0; 1 with a Python
 * error set; or the kernel's error code (< 0) with its message in err. */
static inline int qa_py_gguf_open(PyObject *obj, Py_buffer *view, int *has_view, qa_gguf *g, qa_gguf_kv **kv,
                                  qa_gguf_tensor **tensors, char *err, size_t err_size) {
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) return 1;
    *has_view = 1;
    const uint8_t *p = (const uint8_t *)view->buf;
    uint64_t len = (uint64_t)view->len, n_kv, n_t;
    int rc = qa_gguf_counts(p, len, &n_kv, &n_t, err, err_size);
    if (rc) return rc;
    *kv = PyMem_RawCalloc(n_kv ? n_kv : 1, sizeof(qa_gguf_kv));
    *tensors = PyMem_RawCalloc(n_t ? n_t : 1, sizeof(qa_gguf_tensor));
    if (!*kv || !*tensors) {
        PyErr_NoMemory();
        return 1;
    }
    return qa_gguf_parse(g, p, len, *kv, n_kv, *tensors, n_t, err, err_size);
}

#endif
