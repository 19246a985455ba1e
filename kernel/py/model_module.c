/* CPython glue for the model kernel (kernel/model/): quantann._model.
 *
 * Model(buffer, n_threads) reads a GGUF from any object with the buffer protocol (a
 * memory map natively: the weights are used in place). The host side owns all memory:
 * tensor/kv tables, the vocabulary arena and forward scratch are allocated here. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "model/model.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int has_view;
    qa_gguf g;
    qa_gguf_kv *kv;
    qa_gguf_tensor *tensors;
    void *arena;
    qm_model m;
    qm_pool pool;
    int pool_started;
    PyThread_type_lock lock;
} ModelObject;

static PyObject *FormatError; /* quantann._model.GGUFError (a ValueError) */

static void Model_dealloc(ModelObject *self) {
    if (self->pool_started) qm_pool_stop(&self->pool);
    if (self->lock) PyThread_free_lock(self->lock);
    PyMem_RawFree(self->kv);
    PyMem_RawFree(self->tensors);
    PyMem_RawFree(self->arena);
    if (self->has_view) PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"buffer", "n_threads", NULL};
    PyObject *buf;
    int n_threads = 1;
    char err[512] = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i", kwlist, &buf, &n_threads)) return -1;
    if (self->has_view) {
        PyErr_SetString(PyExc_RuntimeError, "Model already initialised");
        return -1;
    }
    if (PyObject_GetBuffer(buf, &self->view, PyBUF_SIMPLE) < 0) return -1;
    self->has_view = 1;
    const uint8_t *p = (const uint8_t *)self->view.buf;
    uint64_t len = (uint64_t)self->view.len, n_kv, n_t;
    int rc = qa_gguf_counts(p, len, &n_kv, &n_t, err, sizeof err);
    if (rc) goto fail;
    self->kv = PyMem_RawCalloc(n_kv ? n_kv : 1, sizeof(qa_gguf_kv));
    self->tensors = PyMem_RawCalloc(n_t ? n_t : 1, sizeof(qa_gguf_tensor));
    if (!self->kv || !self->tensors) {
        PyErr_NoMemory();
        return -1;
    }
    rc = qa_gguf_parse(&self->g, p, len, self->kv, n_kv, self->tensors, n_t, err, sizeof err);
    if (rc) goto fail;
    uint64_t asz = qm_model_arena_size(&self->g);
    if (!asz) {
        snprintf(err, sizeof err, "missing or bad tokenizer.ggml.tokens");
        goto fail;
    }
    self->arena = PyMem_RawMalloc(asz);
    if (!self->arena) {
        PyErr_NoMemory();
        return -1;
    }
    rc = qm_model_init(&self->m, &self->g, self->arena, asz, err, sizeof err);
    if (rc) goto fail;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    qm_pool_start(&self->pool, n_threads);
    self->pool_started = 1;
    return 0;
fail:
    PyErr_SetString(FormatError, err[0] ? err : "invalid GGUF file");
    return -1;
}

#define CHECK_INIT(self)                                                      \
    if (!(self)->pool_started) {                                              \
        PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");      \
        return NULL;                                                          \
    }

static PyObject *text_bytes(PyObject *o) {
    if (PyUnicode_Check(o)) return PyUnicode_AsEncodedString(o, "utf-8", "replace");
    if (PyBytes_Check(o)) {
        Py_INCREF(o);
        return o;
    }
    PyErr_SetString(PyExc_TypeError, "text must be str or bytes");
    return NULL;
}

static PyObject *Model_tokenize(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"text", "max_tokens", NULL};
    PyObject *t;
    int max_tokens = 0;
    CHECK_INIT(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i", kwlist, &t, &max_tokens)) return NULL;
    if (max_tokens <= 0 || max_tokens > self->m.n_ctx) max_tokens = self->m.n_ctx;
    if (max_tokens < 2) max_tokens = 2;
    PyObject *b = text_bytes(t);
    if (!b) return NULL;
    int32_t *ids = PyMem_Malloc(sizeof(int32_t) * (size_t)max_tokens);
    if (!ids) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    int n = qm_tokenize(&self->m, (const uint8_t *)PyBytes_AS_STRING(b), (uint64_t)PyBytes_GET_SIZE(b), ids,
                        max_tokens);
    Py_DECREF(b);
    PyObject *lst = PyList_New(n);
    for (int i = 0; lst && i < n; i++) PyList_SET_ITEM(lst, i, PyLong_FromLong(ids[i]));
    PyMem_Free(ids);
    return lst;
}

/* Runs forward over packed sequences, in groups of at most batch_tokens tokens. */
static int run_batches(ModelObject *self, const int32_t *ids, const int32_t *lens, int n_seq,
                       int batch_tokens, float *out, float *hidden, char *err, size_t err_len) {
    int max_len = 0;
    for (int s = 0; s < n_seq; s++) if (lens[s] > max_len) max_len = lens[s];
    if (batch_tokens < max_len) batch_tokens = max_len;
    uint64_t ssz = qm_scratch_size(&self->m, batch_tokens, max_len, self->pool.n_threads);
    void *scratch = PyMem_RawMalloc(ssz);
    if (!scratch) {
        snprintf(err, err_len, "out of memory for %llu bytes of scratch", (unsigned long long)ssz);
        return QA_ERR_SPACE;
    }
    int rc = QA_OK;
    uint64_t tok = 0;
    for (int s0 = 0; s0 < n_seq && rc == QA_OK;) {
        int s1 = s0, T = 0;
        while (s1 < n_seq && (s1 == s0 || T + lens[s1] <= batch_tokens)) T += lens[s1++];
        rc = qm_forward(&self->m, &self->pool, ids + tok, lens + s0, s1 - s0,
                        out + (uint64_t)s0 * self->m.n_embd, hidden, scratch, ssz, err, err_len);
        tok += (uint64_t)T;
        s0 = s1;
    }
    PyMem_RawFree(scratch);
    return rc;
}

static PyObject *Model_embed(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"texts", "max_tokens", "batch_tokens", NULL};
    PyObject *texts;
    int max_tokens = 0, batch_tokens = 1024;
    char err[256] = "";
    CHECK_INIT(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|ii", kwlist, &texts, &max_tokens, &batch_tokens))
        return NULL;
    if (max_tokens <= 0 || max_tokens > self->m.n_ctx) max_tokens = self->m.n_ctx;
    if (max_tokens < 2) max_tokens = 2;
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    npy_intp dims[2] = {n, self->m.n_embd};
    PyObject *out = PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    int32_t *lens = PyMem_RawMalloc(sizeof(int32_t) * (n ? n : 1));
    uint64_t cap = 4096, used = 0;
    int32_t *ids = PyMem_RawMalloc(sizeof(int32_t) * cap);
    if (!out || !lens || !ids) goto nomem;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = text_bytes(PySequence_Fast_GET_ITEM(seq, i));
        if (!b) goto fail;
        if (used + (uint64_t)max_tokens > cap) {
            while (used + (uint64_t)max_tokens > cap) cap *= 2;
            int32_t *nid = PyMem_RawRealloc(ids, sizeof(int32_t) * cap);
            if (!nid) { Py_DECREF(b); goto nomem; }
            ids = nid;
        }
        lens[i] = qm_tokenize(&self->m, (const uint8_t *)PyBytes_AS_STRING(b),
                              (uint64_t)PyBytes_GET_SIZE(b), ids + used, max_tokens);
        used += (uint64_t)lens[i];
        Py_DECREF(b);
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, 1);
    rc = run_batches(self, ids, lens, (int)n, batch_tokens, (float *)PyArray_DATA((PyArrayObject *)out),
                     NULL, err, sizeof err);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    if (rc) {
        PyErr_SetString(PyExc_RuntimeError, err);
        goto fail;
    }
    PyMem_RawFree(ids);
    PyMem_RawFree(lens);
    Py_DECREF(seq);
    return out;
nomem:
    PyErr_NoMemory();
fail:
    PyMem_RawFree(ids);
    PyMem_RawFree(lens);
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

/* forward(ids int32[T], lengths int32[n], hidden=False) -> emb (n, D) [, hidden (L+1, T, D)] */
static PyObject *Model_forward(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ids", "lengths", "hidden", NULL};
    PyObject *ids_o, *len_o;
    int want_hidden = 0;
    char err[256] = "";
    CHECK_INIT(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|p", kwlist, &ids_o, &len_o, &want_hidden)) return NULL;
    PyArrayObject *ids = (PyArrayObject *)PyArray_FROMANY(ids_o, NPY_INT32, 1, 1, NPY_ARRAY_C_CONTIGUOUS);
    PyArrayObject *lens = (PyArrayObject *)PyArray_FROMANY(len_o, NPY_INT32, 1, 1, NPY_ARRAY_C_CONTIGUOUS);
    PyObject *out = NULL, *hid = NULL;
    if (!ids || !lens) goto done;
    npy_intp n = PyArray_DIM(lens, 0), T = 0;
    const int32_t *lp = (const int32_t *)PyArray_DATA(lens);
    for (npy_intp i = 0; i < n; i++) {
        if (lp[i] < 1 || lp[i] > self->m.n_ctx) {
            PyErr_Format(PyExc_ValueError, "sequence %zd has %d tokens (1..%d allowed)", (Py_ssize_t)i, lp[i],
                         self->m.n_ctx);
            goto done;
        }
        T += lp[i];
    }
    if (T != PyArray_DIM(ids, 0)) {
        PyErr_SetString(PyExc_ValueError, "sum(lengths) != len(ids)");
        goto done;
    }
    npy_intp dims[2] = {n, self->m.n_embd};
    out = PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!out) goto done;
    float *hp = NULL;
    if (want_hidden) {
        npy_intp hd[3] = {self->m.n_layer + 1, T, self->m.n_embd};
        hid = PyArray_ZEROS(3, hd, NPY_FLOAT32, 0);
        if (!hid) goto done;
        hp = (float *)PyArray_DATA((PyArrayObject *)hid);
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, 1);
    /* one batch: hidden states are laid out over all T tokens */
    rc = run_batches(self, (const int32_t *)PyArray_DATA(ids), lp, (int)n, want_hidden ? (int)T : 1024,
                     (float *)PyArray_DATA((PyArrayObject *)out), hp, err, sizeof err);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS
    if (rc) {
        PyErr_SetString(rc == QA_ERR_ARG ? PyExc_ValueError : PyExc_RuntimeError, err);
        Py_CLEAR(out);
        Py_CLEAR(hid);
    }
done:
    Py_XDECREF(ids);
    Py_XDECREF(lens);
    if (!out) {
        Py_XDECREF(hid);
        return NULL;
    }
    if (want_hidden) return Py_BuildValue("(NN)", out, hid);
    return out;
}

static const char *type_name(uint32_t t) {
    switch (t) {
    case QA_T_F32: return "F32";
    case QA_T_F16: return "F16";
    case QA_T_Q8_0: return "Q8_0";
    case QA_T_Q4_0: return "Q4_0";
    default: return "?";
    }
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
    CHECK_INIT(self);
    const qm_model *m = &self->m;
    PyObject *tensors = PyList_New(0);
    if (!tensors) return NULL;
    for (uint64_t i = 0; i < self->g.n_tensors; i++) {
        const qa_gguf_tensor *t = &self->g.tensors[i];
        PyObject *e = Py_BuildValue("{s:s#,s:s,s:(LL),s:K}", "name", (const char *)t->name,
                                    (Py_ssize_t)t->name_len, "type", type_name(t->type), "shape",
                                    (long long)t->ne[0], (long long)t->ne[1], "nbytes",
                                    (unsigned long long)t->nbytes);
        if (!e || PyList_Append(tensors, e) < 0) {
            Py_XDECREF(e);
            Py_DECREF(tensors);
            return NULL;
        }
        Py_DECREF(e);
    }
    return Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:i,s:i,s:i,s:s,s:i,s:N,s:K}", "n_vocab", m->n_vocab,
        "n_ctx", m->n_ctx, "n_embd", m->n_embd, "n_ff", m->n_ff, "n_layer", m->n_layer, "n_head",
        m->n_head, "pooling", m->pooling, "normalize", m->normalize, "eps", (double)m->eps, "cls_id",
        m->cls_id, "sep_id", m->sep_id, "unk_id", m->unk_id, "pad_id", m->pad_id, "weight_type",
        type_name(m->layers[0].up.type), "n_threads", self->pool.n_threads, "tensors", tensors,
        "gguf_version", (unsigned long long)self->g.version);
}

static PyMethodDef Model_methods[] = {
    {"tokenize", (PyCFunction)(void (*)(void))Model_tokenize, METH_VARARGS | METH_KEYWORDS,
     "tokenize(text, max_tokens=n_ctx) -> list of ids: [CLS] WordPiece pieces [SEP]"},
    {"embed", (PyCFunction)(void (*)(void))Model_embed, METH_VARARGS | METH_KEYWORDS,
     "embed(texts, max_tokens=n_ctx, batch_tokens=1024) -> float32 (n, n_embd)"},
    {"forward", (PyCFunction)(void (*)(void))Model_forward, METH_VARARGS | METH_KEYWORDS,
     "forward(ids, lengths, hidden=False) -> embeddings [, hidden states (n_layer+1, T, n_embd)]"},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "hyper-parameters, special ids and tensors"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._model.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Model(buffer, n_threads=1): a BERT GGUF read in place from a buffer (mmap).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
};

/* ---- kernel checks: each SIMD routine against its scalar reference */

static PyObject *mod_set_simd(PyObject *m, PyObject *args) {
    int level;
    if (!PyArg_ParseTuple(args, "i", &level)) return NULL;
    return PyLong_FromLong(qm_simd_set(level));
}

static PyObject *mod_simd_level(PyObject *m, PyObject *unused) { return PyLong_FromLong(qm_simd_level()); }

static PyArrayObject *f32_arg(PyObject *o) {
    return (PyArrayObject *)PyArray_FROMANY(o, NPY_FLOAT32, 1, 1, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ENSURECOPY);
}

/* kernel(name, *arrays) runs one dispatched kernel: quantize_q8_0(x) -> bytes,
 * dot_q8_0(wbytes, xbytes), dot_q4_0(wbytes, xbytes), dot_f32(a, b), gelu(x), exp_sub(x, m). */
static PyObject *mod_kernel(PyObject *m, PyObject *args) {
    const char *name;
    PyObject *a = NULL, *b = NULL;
    if (!PyArg_ParseTuple(args, "s|OO", &name, &a, &b)) return NULL;
    if (!strcmp(name, "quantize_q8_0") || !strcmp(name, "gelu") || !strcmp(name, "exp_sub")) {
        PyArrayObject *x = f32_arg(a);
        if (!x) return NULL;
        int n = (int)PyArray_DIM(x, 0);
        float *xp = (float *)PyArray_DATA(x);
        if (name[0] == 'q') {
            if (n % QM_QK) { Py_DECREF(x); PyErr_SetString(PyExc_ValueError, "length % 32"); return NULL; }
            PyObject *r = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n / QM_QK * sizeof(qm_block_q8_0)));
            if (r) qm_k.quantize_q8_0(xp, (qm_block_q8_0 *)PyBytes_AS_STRING(r), n);
            Py_DECREF(x);
            return r;
        }
        if (name[0] == 'g') qm_k.gelu(xp, n);
        else qm_k.exp_sub(xp, n, b ? (float)PyFloat_AsDouble(b) : 0.0f);
        return (PyObject *)x;
    }
    if (!strcmp(name, "dot_f32")) {
        PyArrayObject *x = f32_arg(a), *y = f32_arg(b);
        if (!x || !y || PyArray_DIM(x, 0) != PyArray_DIM(y, 0)) {
            Py_XDECREF(x); Py_XDECREF(y);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "length mismatch");
            return NULL;
        }
        float r = qm_k.dot_f32(PyArray_DATA(x), PyArray_DATA(y), (int)PyArray_DIM(x, 0));
        Py_DECREF(x); Py_DECREF(y);
        return PyFloat_FromDouble(r);
    }
    if (!strcmp(name, "dot_q8_0") || !strcmp(name, "dot_q4_0")) {
        Py_buffer w, x;
        if (!a || !b || PyObject_GetBuffer(a, &w, PyBUF_SIMPLE) < 0) return NULL;
        if (PyObject_GetBuffer(b, &x, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&w); return NULL; }
        int nb = (int)(x.len / (Py_ssize_t)sizeof(qm_block_q8_0));
        size_t wb = name[5] == '8' ? sizeof(qm_block_q8_0) : sizeof(qm_block_q4_0);
        PyObject *r = NULL;
        if (x.len % sizeof(qm_block_q8_0) || (size_t)w.len != nb * wb) {
            PyErr_SetString(PyExc_ValueError, "block counts differ");
        } else {
            float v = name[5] == '8' ? qm_k.dot_q8_0_q8_0(w.buf, x.buf, nb) : qm_k.dot_q4_0_q8_0(w.buf, x.buf, nb);
            r = PyFloat_FromDouble(v);
        }
        PyBuffer_Release(&w);
        PyBuffer_Release(&x);
        return r;
    }
    if (!strcmp(name, "tile_q8_0") || !strcmp(name, "tile_q4_0")) { /* 2 weight rows x 4 rows */
        Py_buffer w, x;
        if (!a || !b || PyObject_GetBuffer(a, &w, PyBUF_SIMPLE) < 0) return NULL;
        if (PyObject_GetBuffer(b, &x, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&w); return NULL; }
        size_t wb = name[6] == '8' ? sizeof(qm_block_q8_0) : sizeof(qm_block_q4_0);
        int nb = (int)(x.len / 4 / (Py_ssize_t)sizeof(qm_block_q8_0));
        PyObject *r = NULL;
        if (nb < 1 || (size_t)x.len != 4 * nb * sizeof(qm_block_q8_0) || (size_t)w.len != 2 * nb * wb) {
            PyErr_SetString(PyExc_ValueError, "tile expects 2 weight rows and 4 activation rows of equal blocks");
        } else {
            float o[8];
            (name[6] == '8' ? qm_k.tile_q8_0 : qm_k.tile_q4_0)(w.buf, nb * wb, x.buf, nb * sizeof(qm_block_q8_0), nb, o);
            r = Py_BuildValue("[ffffffff]", o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]);
        }
        PyBuffer_Release(&w);
        PyBuffer_Release(&x);
        return r;
    }
    PyErr_Format(PyExc_ValueError, "unknown kernel %s", name);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"set_simd", mod_set_simd, METH_VARARGS, "set_simd(level) -> level in use (0 scalar, 1 AVX2, 3 AVX2 + AVX-512 VNNI tiles)"},
    {"simd_level", mod_simd_level, METH_NOARGS, "SIMD level in use"},
    {"kernel", mod_kernel, METH_VARARGS, "run one dispatched kernel (for tests)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "quantann._model",
                                       "BERT GGUF encoder kernel", -1, module_methods};

PyMODINIT_FUNC PyInit__model(void) {
    import_array();
    qm_simd_init();
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&moduledef);
    if (!mod) return NULL;
    FormatError = PyErr_NewException("quantann._model.GGUFError", PyExc_ValueError, NULL);
    Py_INCREF(&ModelType);
    PyModule_AddObject(mod, "Model", (PyObject *)&ModelType);
    PyModule_AddObject(mod, "GGUFError", FormatError);
    PyModule_AddIntConstant(mod, "SIMD_SCALAR", QM_SIMD_SCALAR);
    PyModule_AddIntConstant(mod, "SIMD_AVX2", QM_SIMD_AVX2);
    PyModule_AddIntConstant(mod, "SIMD_AVX512VNNI", QM_SIMD_AVX512VNNI);
    return mod;
}
