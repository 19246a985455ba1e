/* CPython glue for the decoder (kernel/model/arch/llama.c): quantann._model.Decoder
 * (added to the one model module by model_module.c).
 *
 * Decoder(buffer, n_threads) reads a GGUF from any object with the buffer protocol (a
 * memory map: the weights are used in place) and checks it; sizes(n_ctx, n_batch) says
 * what the KV cache and the scratch would take, so the host can check its budget before
 * start(n_ctx, n_batch) allocates them. eval / sample run without the GIL. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "model/arch/llama.h"
#include "model/sample.h"
#include "py/buffers.h"
#include "py/decoder_glue.h"
#include "py/glue.h"


static PyObject *FormatError, *UnsupportedError; /* the module's GGUFError, UnsupportedError */

static void Decoder_dealloc(DecoderObject *self) {
    if (self->pool_started) qa_pool_stop(&self->pool);
    if (self->lock) PyThread_free_lock(self->lock);
    PyMem_RawFree(self->kv_recs);
    PyMem_RawFree(self->tensors);
    PyMem_RawFree(self->m);
    PyMem_RawFree(self->kv);
    PyMem_RawFree(self->scratch);
    PyMem_RawFree(self->sample_work);
    PyMem_RawFree(self->f32);
    PyMem_RawFree(self->orig);
    Py_XDECREF(self->held);
    if (self->has_view) PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Decoder_init(DecoderObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"buffer", "n_threads", NULL};
    PyObject *buf;
    int n_threads = 1, rc;
    char err[512] = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i", kwlist, &buf, &n_threads)) return -1;
    if (self->has_view) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder already initialised");
        return -1;
    }
    if (n_threads < 1 || n_threads > QA_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "threads must be in 1..%d, got %d", QA_MAX_THREADS, n_threads);
        return -1;
    }
    rc = qa_py_gguf_open(buf, &self->view, &self->has_view, &self->g, &self->kv_recs, &self->tensors,
                         err, sizeof err);
    if (rc > 0) return -1;
    if (rc) goto fail;
    self->m = PyMem_RawCalloc(1, sizeof(qa_llama));
    self->lock = PyThread_allocate_lock();
    if (!self->m || !self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    if ((rc = qa_llama_load(self->m, &self->g, err, sizeof err))) goto fail;
    qa_pool_start(&self->pool, n_threads);
    self->pool_started = 1;
    self->rng = 0x853c49e6748fea9bull;
    return 0;
fail:
    PyErr_SetString(rc == QA_ERR_UNSUPPORTED ? UnsupportedError : FormatError, err[0] ? err : "invalid GGUF file");
    return -1;
}

#define CHECK_STARTED(self)                                                                   \
    if (!(self)->started) {                                                                   \
        PyErr_SetString(PyExc_RuntimeError, "Decoder.start(n_ctx, n_batch) was not called"); \
        return NULL;                                                                          \
    }

static int check_sizes(DecoderObject *self, int n_ctx, int n_batch) {
    if (!self->pool_started) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is not initialised");
        return -1;
    }
    if (n_ctx < 1 || n_ctx > (1 << 20) || n_batch < 1 || n_batch > 4096) {
        PyErr_Format(PyExc_ValueError, "n_ctx must be in 1..%d and n_batch in 1..4096 (got %d, %d)", 1 << 20, n_ctx, n_batch);
        return -1;
    }
    return 0;
}

static PyObject *Decoder_sizes(DecoderObject *self, PyObject *args) {
    int n_ctx, n_batch;
    if (!PyArg_ParseTuple(args, "ii", &n_ctx, &n_batch) || check_sizes(self, n_ctx, n_batch)) return NULL;
    return Py_BuildValue("KK", (unsigned long long)qa_llama_kv_bytes(self->m, n_ctx),
                         (unsigned long long)(qa_llama_scratch_bytes(self->m, n_batch, n_ctx, self->pool.n_threads) +
                                              (uint64_t)self->m->n_vocab * 8));
}

static PyObject *Decoder_start(DecoderObject *self, PyObject *args) {
    int n_ctx, n_batch;
    char err[256] = "";
    if (!PyArg_ParseTuple(args, "ii", &n_ctx, &n_batch) || check_sizes(self, n_ctx, n_batch)) return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder already started");
        return NULL;
    }
    uint64_t kvb = qa_llama_kv_bytes(self->m, n_ctx), sb = qa_llama_scratch_bytes(self->m, n_batch, n_ctx, self->pool.n_threads);
    self->kv = PyMem_RawMalloc(kvb);
    self->scratch = PyMem_RawMalloc(sb);
    self->sample_work = PyMem_RawMalloc((size_t)self->m->n_vocab * 8);
    if (!self->kv || !self->scratch || !self->sample_work) return PyErr_NoMemory();
    if (qa_llama_ctx_init(&self->ctx, self->m, &self->pool, n_ctx, n_batch, self->kv, kvb, self->scratch, sb, err, sizeof err)) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    self->scratch_bytes = sb;
    self->started = 1;
    Py_RETURN_NONE;
}

/* eval(tokens, all=False) -> float32 logits [n_vocab] (or [n, n_vocab]) */
static PyObject *Decoder_eval(DecoderObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tokens", "all", NULL};
    PyObject *tok;
    int all = 0, rc;
    char err[256] = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p", kwlist, &tok, &all)) return NULL;
    CHECK_STARTED(self);
    PyArrayObject *t = (PyArrayObject *)PyArray_FROMANY(tok, NPY_INT32, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (!t) return NULL;
    int n = (int)PyArray_DIM(t, 0);
    if (n == 0) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_ValueError, "no tokens to evaluate");
        return NULL;
    }
    npy_intp dims[2] = {all ? n : 1, self->m->n_vocab};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(all ? 2 : 1, all ? dims : dims + 1, NPY_FLOAT32);
    if (!out) {
        Py_DECREF(t);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    rc = qa_llama_eval(&self->ctx, (const int32_t *)PyArray_DATA(t), n, (float *)PyArray_DATA(out), all, err, sizeof err);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    Py_DECREF(t);
    if (rc) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    return (PyObject *)out;
}

/* sample(logits, temperature, top_k, top_p, min_p, repeat_penalty, recent) -> token id.
 * logits (float32, n_vocab, C-contiguous) is modified in place by the penalty. */
static PyObject *Decoder_sample(DecoderObject *self, PyObject *args) {
    PyObject *lo, *rec;
    qa_sample_params p;
    if (!PyArg_ParseTuple(args, "OfifffO", &lo, &p.temperature, &p.top_k, &p.top_p, &p.min_p, &p.repeat_penalty, &rec))
        return NULL;
    CHECK_STARTED(self);
    if (!PyArray_Check(lo) || PyArray_TYPE((PyArrayObject *)lo) != NPY_FLOAT32 || PyArray_NDIM((PyArrayObject *)lo) != 1 ||
        PyArray_DIM((PyArrayObject *)lo, 0) != self->m->n_vocab || !PyArray_ISCARRAY((PyArrayObject *)lo)) {
        PyErr_SetString(PyExc_ValueError, "logits must be a writable contiguous float32 array of n_vocab values");
        return NULL;
    }
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f) || !(p.min_p >= 0.0f && p.min_p <= 1.0f) || !(p.repeat_penalty > 0.0f) ||
        !(p.temperature >= 0.0f) || !isfinite(p.temperature)) {
        PyErr_SetString(PyExc_ValueError, "bad sampling parameters");
        return NULL;
    }
    PyArrayObject *r = (PyArrayObject *)PyArray_FROMANY(rec, NPY_INT32, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (!r) return NULL;
    int tok;
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    tok = qa_sample((float *)PyArray_DATA((PyArrayObject *)lo), self->m->n_vocab, &p, (const int32_t *)PyArray_DATA(r),
                    (int)PyArray_DIM(r, 0), &self->rng, self->sample_work);
    PyThread_release_lock(self->lock);
    Py_DECREF(r);
    return PyLong_FromLong(tok);
}

static PyObject *Decoder_seed(DecoderObject *self, PyObject *args) {
    unsigned long long s;
    if (!PyArg_ParseTuple(args, "K", &s)) return NULL;
    self->rng = s;
    Py_RETURN_NONE;
}

/* rewind(n): forget the cache after position n (a shared prompt prefix stays). */
static PyObject *Decoder_rewind(DecoderObject *self, PyObject *args) {
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) return NULL;
    CHECK_STARTED(self);
    char err[128];
    if (qa_llama_keep(&self->ctx, n, err, sizeof err)) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Decoder_n_past(DecoderObject *self, void *unused) {
    return PyLong_FromLong(self->started ? self->ctx.n_past : 0);
}

static PyObject *Decoder_info(DecoderObject *self, PyObject *unused) {
    if (!self->pool_started) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is not initialised");
        return NULL;
    }
    const qa_llama *m = self->m;
    return Py_BuildValue("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:O,s:i,s:s,s:s}", "arch", m->arch,
                         "n_layer", m->n_layer, "n_embd", m->n_embd, "n_head", m->n_head, "n_head_kv", m->n_head_kv,
                         "head_dim", m->head_dim, "n_ff", m->n_ff, "n_vocab", m->n_vocab, "n_ctx_train",
                         m->n_ctx_train, "n_rot", m->n_rot, "freq_base", m->freq_base, "eps", m->eps, "tied",
                         m->tied ? Py_True : Py_False, "threads", self->pool.n_threads, "embd_type",
                         m->tok_embd.tt->name, "ffn_type", m->layers[0].down.tt->name);
}

/* metadata(key) -> the value of a GGUF key (None if absent): numbers, str for a string,
 * a list of bytes for an array of strings (token texts), a numpy array for numbers. */
static const int vt_size[QA_GV_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const int vt_npy[QA_GV_COUNT] = {NPY_UINT8, NPY_INT8, NPY_UINT16, NPY_INT16, NPY_UINT32, NPY_INT32,
                                        NPY_FLOAT32, NPY_BOOL, 0, 0, NPY_UINT64, NPY_INT64, NPY_FLOAT64};

static PyObject *scalar(uint32_t t, const uint8_t *p) {
    npy_intp one = 1;
    PyObject *a = PyArray_SimpleNew(1, &one, vt_npy[t]);
    if (!a) return NULL;
    memcpy(PyArray_DATA((PyArrayObject *)a), p, (size_t)vt_size[t]);
    PyObject *v = PyArray_GETITEM((PyArrayObject *)a, PyArray_DATA((PyArrayObject *)a));
    Py_DECREF(a);
    return v;
}

static PyObject *Decoder_metadata(DecoderObject *self, PyObject *args) {
    const char *key;
    if (!PyArg_ParseTuple(args, "s", &key)) return NULL;
    if (!self->pool_started) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is not initialised");
        return NULL;
    }
    const qa_gguf_kv *e = qa_gguf_find_kv(&self->g, key);
    if (!e) Py_RETURN_NONE;
    uint64_t len;
    if (e->type == QA_GV_STRING) { /* the reader checked every length against the buffer */
        memcpy(&len, e->val, 8);
        return PyUnicode_DecodeUTF8((const char *)e->val + 8, (Py_ssize_t)len, "replace");
    }
    if (e->type != QA_GV_ARRAY) return scalar(e->type, e->val);
    if (e->arr_type == QA_GV_STRING) {
        PyObject *l = PyList_New((Py_ssize_t)e->arr_n);
        const uint8_t *p = e->val;
        for (uint64_t i = 0; l && i < e->arr_n; i++) {
            memcpy(&len, p, 8);
            PyObject *b = PyBytes_FromStringAndSize((const char *)p + 8, (Py_ssize_t)len);
            if (!b) {
                Py_CLEAR(l);
                break;
            }
            PyList_SET_ITEM(l, (Py_ssize_t)i, b);
            p += 8 + len;
        }
        return l;
    }
    if (e->arr_type >= QA_GV_COUNT || !vt_size[e->arr_type]) {
        PyErr_Format(PyExc_ValueError, "metadata %s: nested arrays are not supported", key);
        return NULL;
    }
    npy_intp n = (npy_intp)e->arr_n;
    PyObject *a = PyArray_SimpleNew(1, &n, vt_npy[e->arr_type]);
    if (a) memcpy(PyArray_DATA((PyArrayObject *)a), e->val, (size_t)n * vt_size[e->arr_type]);
    return a;
}

static PyMethodDef Decoder_methods[] = {
    {"metadata", (PyCFunction)Decoder_metadata, METH_VARARGS, "metadata(key) -> value or None"},
    {"sizes", (PyCFunction)Decoder_sizes, METH_VARARGS, "sizes(n_ctx, n_batch) -> (kv_bytes, scratch_bytes)"},
    {"start", (PyCFunction)Decoder_start, METH_VARARGS, "start(n_ctx, n_batch): allocate the KV cache and scratch"},
    {"eval", (PyCFunction)(void (*)(void))Decoder_eval, METH_VARARGS | METH_KEYWORDS,
     "eval(tokens, all=False) -> logits of the last token (or of every token)"},
    {"sample", (PyCFunction)Decoder_sample, METH_VARARGS,
     "sample(logits, temperature, top_k, top_p, min_p, repeat_penalty, recent) -> token id"},
    {"seed", (PyCFunction)Decoder_seed, METH_VARARGS, "seed(s): reset the sampling random state"},
    {"rewind", (PyCFunction)Decoder_rewind, METH_VARARGS, "rewind(n): keep the first n cached positions"},
    {"info", (PyCFunction)Decoder_info, METH_NOARGS, "hyper-parameters"},
    {"to_f32", (PyCFunction)qa_py_decoder_to_f32, METH_NOARGS,
     "to_f32(): every matrix converted to F32 in memory (before start): the reference of the same weights"},
    {"take_weights", (PyCFunction)qa_py_decoder_take, METH_VARARGS,
     "take_weights(other, group): group (layer index, 'token_embd', 'output') of another Decoder of the same "
     "model; other None restores this file's own"},
    {"hidden_states", (PyCFunction)qa_py_decoder_hidden, METH_O,
     "hidden_states(tokens) -> (logits [n, n_vocab], residual after each layer [n_layer, n, n_embd]), from position 0"},
    {NULL}};

static PyGetSetDef Decoder_getset[] = {{"n_past", (getter)Decoder_n_past, NULL, "positions in the KV cache", NULL},
                                       {NULL}};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._model.Decoder",
    .tp_basicsize = sizeof(DecoderObject),
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A llama-family decoder over a GGUF buffer",
    .tp_methods = Decoder_methods,
    .tp_getset = Decoder_getset,
    .tp_init = (initproc)Decoder_init,
    .tp_new = PyType_GenericNew,
};

int qa_py_decoder_add(PyObject *mod, PyObject *gguf_error, PyObject *unsupported_error) {
    if (_import_array() < 0 || qa_py_decoder_mix_init(&DecoderType) < 0 || PyType_Ready(&DecoderType) < 0) return -1;
    FormatError = gguf_error;
    UnsupportedError = unsupported_error;
    return PyModule_AddObjectRef(mod, "Decoder", (PyObject *)&DecoderType);
}
