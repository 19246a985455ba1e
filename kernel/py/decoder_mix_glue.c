/* CPython glue of the decoder's report methods (kernel/model/arch/llama_mix.h): an F32
 * reference of the same weights, one weight group taken from another file of the model,
 * and the residual after each layer. quantann/model/report_decoder.py drives them. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <limits.h>
#include <string.h>

#include "model/arch/llama_mix.h"
#include "py/decoder_glue.h"

static PyTypeObject *DecoderType;

int qa_py_decoder_mix_init(PyTypeObject *decoder_type) {
    DecoderType = decoder_type;
    return _import_array();
}

static int ready(DecoderObject *self) {
    if (self->pool_started) return 1;
    PyErr_SetString(PyExc_RuntimeError, "Decoder is not initialised");
    return 0;
}

PyObject *qa_py_decoder_to_f32(DecoderObject *self, PyObject *unused) {
    if (!ready(self)) return NULL;
    if (self->started || self->f32 || self->orig) {
        PyErr_SetString(PyExc_RuntimeError, "to_f32() comes before start() and take_weights(), once");
        return NULL;
    }
    uint64_t b = qa_llama_f32_bytes(self->m);
    if (b > (uint64_t)PY_SSIZE_T_MAX || !(self->f32 = PyMem_RawMalloc((size_t)b))) return PyErr_NoMemory();
    Py_BEGIN_ALLOW_THREADS
    qa_llama_to_f32(self->m, self->f32);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(b);
}

static int group_arg(DecoderObject *self, PyObject *g) {
    if (PyUnicode_Check(g)) {
        if (!PyUnicode_CompareWithASCIIString(g, "token_embd")) return QA_LLAMA_GROUP_TOKEN_EMBD;
        if (!PyUnicode_CompareWithASCIIString(g, "output")) return QA_LLAMA_GROUP_OUTPUT;
    } else if (PyLong_Check(g)) {
        long l = PyLong_AsLong(g);
        if (l >= 0 && l < self->m->n_layer) return (int)l;
    }
    PyErr_Format(PyExc_ValueError, "weight group must be a layer in 0..%d, 'token_embd' or 'output', got %R",
                 self->m->n_layer - 1, g);
    return INT_MIN;
}

PyObject *qa_py_decoder_take(DecoderObject *self, PyObject *args) {
    PyObject *other, *g;
    char err[256] = "";
    if (!PyArg_ParseTuple(args, "OO", &other, &g) || !ready(self)) return NULL;
    if (other != Py_None && (!PyObject_TypeCheck(other, DecoderType) || !ready((DecoderObject *)other))) {
        PyErr_SetString(PyExc_TypeError, "take_weights: other must be an initialised Decoder or None");
        return NULL;
    }
    int group = group_arg(self, g);
    if (group == INT_MIN) return NULL;
    if (!self->orig) { /* the weights of this file (or their F32 copies), to restore */
        if (!(self->orig = PyMem_RawMalloc(sizeof(qa_llama)))) return PyErr_NoMemory();
        memcpy(self->orig, self->m, sizeof(qa_llama));
    }
    if (!self->held && !(self->held = PyList_New(0))) return NULL;
    const qa_llama *src = other == Py_None ? self->orig : ((DecoderObject *)other)->m;
    qa_llama keep;
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    memcpy(&keep, self->m, sizeof keep);
    int rc = qa_llama_take(self->m, src, group, err, sizeof err);
    /* the scratch was sized at start() for the weights then: a group whose activation rows
     * are wider (F32 into a quantized model) would not fit */
    if (!rc && self->started &&
        qa_llama_scratch_bytes(self->m, self->ctx.n_batch, self->ctx.n_ctx, self->ctx.n_threads) > self->scratch_bytes) {
        snprintf(err, sizeof err, "the scratch allocated at start() is too small for these weights: take them before start()");
        rc = QA_ERR_SPACE;
    }
    if (rc) memcpy(self->m, &keep, sizeof keep);
    PyThread_release_lock(self->lock);
    if (rc) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    if (other != Py_None && PyList_Append(self->held, other) < 0) return NULL; /* its buffer stays mapped */
    Py_RETURN_NONE;
}

PyObject *qa_py_decoder_hidden(DecoderObject *self, PyObject *tokens) {
    char err[256] = "";
    if (!ready(self)) return NULL;
    if (!self->started) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder.start(n_ctx, n_batch) was not called");
        return NULL;
    }
    PyArrayObject *t = (PyArrayObject *)PyArray_FROMANY(tokens, NPY_INT32, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (!t) return NULL;
    const qa_llama *m = self->m;
    int n = (int)PyArray_DIM(t, 0);
    if (n < 1 || n > self->ctx.n_ctx) {
        Py_DECREF(t);
        PyErr_Format(PyExc_ValueError, "hidden_states takes 1..%d tokens (n_ctx), got %d", self->ctx.n_ctx, n);
        return NULL;
    }
    npy_intp ld[2] = {n, m->n_vocab}, hd[3] = {m->n_layer, self->ctx.n_ctx, m->n_embd};
    PyObject *lo = PyArray_SimpleNew(2, ld, NPY_FLOAT32), *hid = PyArray_ZEROS(3, hd, NPY_FLOAT32, 0);
    int rc = -1;
    if (lo && hid) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        self->ctx.n_past = 0;
        self->ctx.hidden = (float *)PyArray_DATA((PyArrayObject *)hid);
        rc = qa_llama_eval(&self->ctx, (const int32_t *)PyArray_DATA(t), n, (float *)PyArray_DATA((PyArrayObject *)lo), 1,
                           err, sizeof err);
        self->ctx.hidden = NULL;
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(t);
    PyObject *res = NULL;
    if (!rc) { /* (logits, hidden[:, :n]) */
        PyObject *stop = PyLong_FromLong(n), *all = PySlice_New(NULL, NULL, NULL);
        PyObject *first = stop ? PySlice_New(NULL, stop, NULL) : NULL;
        PyObject *key = all && first ? PyTuple_Pack(2, all, first) : NULL;
        PyObject *view = key ? PyObject_GetItem(hid, key) : NULL;
        if (view) {
            res = Py_BuildValue("(NN)", lo, view);
            lo = NULL;
        }
        Py_XDECREF(stop);
        Py_XDECREF(all);
        Py_XDECREF(first);
        Py_XDECREF(key);
    } else if (lo && hid) {
        PyErr_SetString(PyExc_ValueError, err);
    }
    Py_XDECREF(lo);
    Py_XDECREF(hid);
    return res;
}
