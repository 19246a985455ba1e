/* CPython glue for the model kernel (kernel/model/): quantann._model, the one extension
 * of the model kernel. This file holds the encoder (Model), the kernel checks and the
 * module; decoder_glue.c and tokenizer_glue.c add the decoder and the LLM tokenizers.
 *
 * Model(buffer, n_threads) reads a GGUF from any object with the buffer protocol (a
 * memory map natively: the weights are used in place). The host side owns all memory:
 * tensor/kv tables, the vocabulary arena and forward scratch are allocated here. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "model/arch.h"
#include "py/buffers.h"
#include "py/glue.h"
#include "model/ops_decoder.h"
#include "model/tokenizer/wordpiece.h"
#include "simd.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int has_view;
    qa_gguf g;
    qa_gguf_kv *kv;
    qa_gguf_tensor *tensors;
    void *arena;
    qa_model m;
    qa_pool pool;
    int pool_started;
    PyThread_type_lock lock;
} ModelObject;

static PyObject *FormatError; /* quantann._model.GGUFError (a ValueError) */
static PyObject *UnsupportedError; /* quantann._model.UnsupportedError: architecture or tensor type (a ValueError) */

/* Kernel messages may quote bytes from the file (names, keys): invalid UTF-8 is shown as
 * U+FFFD rather than raising UnicodeDecodeError. */
static void set_error(PyObject *type, const char *msg) {
    PyObject *s = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    if (!s) return;
    PyErr_SetObject(type, s);
    Py_DECREF(s);
}

/* Truncation in tokens: 0 or less = the model's own (hp.max_tokens), at most n_ctx. */
static int clamp_tokens(const qa_model *m, int max_tokens) {
    if (max_tokens <= 0) max_tokens = m->hp.max_tokens;
    if (max_tokens > m->hp.n_ctx) max_tokens = m->hp.n_ctx;
    return max_tokens < 2 ? 2 : max_tokens;
}

static void Model_dealloc(ModelObject *self) {
    if (self->pool_started) qa_pool_stop(&self->pool);
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
    int rc = qa_py_gguf_open(buf, &self->view, &self->has_view, &self->g, &self->kv, &self->tensors,
                             err, sizeof err);
    if (rc > 0) return -1;
    if (rc) goto fail;
    uint64_t asz = qa_model_arena_size(&self->g, err, sizeof err);
    if (!asz) goto fail;
    self->arena = PyMem_RawMalloc(asz);
    if (!self->arena) {
        PyErr_NoMemory();
        return -1;
    }
    rc = qa_model_init(&self->m, &self->g, self->arena, asz, err, sizeof err);
    if (rc) goto fail;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    qa_pool_start(&self->pool, n_threads);
    self->pool_started = 1;
    return 0;
fail:
    set_error(FormatError, err[0] ? err : "invalid GGUF file");
    return -1;
}

#define CHECK_INIT(self)                                                      \
    if (!(self)->pool_started) {                                              \
        PyErr_SetString(PyExc_RuntimeError, "Model is not initialised");      \
        return NULL;                                                          \
    }

static PyObject *Model_tokenize(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"text", "max_tokens", NULL};
    PyObject *t;
    int max_tokens = 0;
    CHECK_INIT(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i", kwlist, &t, &max_tokens)) return NULL;
    max_tokens = clamp_tokens(&self->m, max_tokens);
    PyObject *b = qa_py_text_bytes(t, "replace");
    if (!b) return NULL;
    int32_t *ids = PyMem_Malloc(sizeof(int32_t) * (size_t)max_tokens);
    if (!ids) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    int n = qa_model_tokenize(&self->m, (const uint8_t *)PyBytes_AS_STRING(b), (uint64_t)PyBytes_GET_SIZE(b), ids,
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
    uint64_t total = 0;
    for (int s = 0; s < n_seq; s++) {
        if (lens[s] > max_len) max_len = lens[s];
        total += (uint64_t)lens[s];
    }
    /* scratch for the largest batch that can occur: never more tokens than there are */
    if ((uint64_t)batch_tokens > total) batch_tokens = total > INT32_MAX ? INT32_MAX : (int)total;
    if (batch_tokens < max_len) batch_tokens = max_len;
    uint64_t ssz = qa_model_scratch_size(&self->m, batch_tokens, max_len, self->pool.n_threads);
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
        rc = qa_model_encode(&self->m, &self->pool, ids + tok, lens + s0, s1 - s0,
                        out + (uint64_t)s0 * self->m.hp.n_embd, hidden, scratch, ssz, err, err_len);
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
    max_tokens = clamp_tokens(&self->m, max_tokens);
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    npy_intp dims[2] = {n, self->m.hp.n_embd};
    PyObject *out = PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    int32_t *lens = PyMem_RawMalloc(sizeof(int32_t) * (n ? n : 1));
    uint64_t cap = 4096, used = 0;
    int32_t *ids = PyMem_RawMalloc(sizeof(int32_t) * cap);
    if (!out || !lens || !ids) goto nomem;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = qa_py_text_bytes(PySequence_Fast_GET_ITEM(seq, i), "replace");
        if (!b) goto fail;
        if (used + (uint64_t)max_tokens > cap) {
            while (used + (uint64_t)max_tokens > cap) cap *= 2;
            int32_t *nid = PyMem_RawRealloc(ids, sizeof(int32_t) * cap);
            if (!nid) { Py_DECREF(b); goto nomem; }
            ids = nid;
        }
        lens[i] = qa_model_tokenize(&self->m, (const uint8_t *)PyBytes_AS_STRING(b),
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
        set_error(rc == QA_ERR_FORMAT ? FormatError : PyExc_RuntimeError, err);
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
        if (lp[i] < 1 || lp[i] > self->m.hp.n_ctx) {
            PyErr_Format(PyExc_ValueError, "sequence %zd has %d tokens (1..%d allowed)", (Py_ssize_t)i, lp[i],
                         self->m.hp.n_ctx);
            goto done;
        }
        T += lp[i];
    }
    if (T != PyArray_DIM(ids, 0)) {
        PyErr_SetString(PyExc_ValueError, "sum(lengths) != len(ids)");
        goto done;
    }
    npy_intp dims[2] = {n, self->m.hp.n_embd};
    out = PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    if (!out) goto done;
    float *hp = NULL;
    if (want_hidden) {
        npy_intp hd[3] = {self->m.hp.n_layer + 1, T, self->m.hp.n_embd};
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
        set_error(rc == QA_ERR_ARG ? PyExc_ValueError : rc == QA_ERR_FORMAT ? FormatError : PyExc_RuntimeError, err);
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

static PyObject *type_name(uint32_t t) {
    const qa_type_traits *tt = qa_type_get(t);
    return tt ? PyUnicode_FromString(tt->name) : PyUnicode_FromFormat("type %u", (unsigned)t);
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
    CHECK_INIT(self);
    const qa_model *m = &self->m;
    const qa_hparams *hp = &m->hp;
    PyObject *tensors = PyList_New(0);
    if (!tensors) return NULL;
    for (uint64_t i = 0; i < self->g.n_tensors; i++) {
        const qa_gguf_tensor *t = &self->g.tensors[i];
        PyObject *nm = PyUnicode_DecodeUTF8((const char *)t->name, (Py_ssize_t)t->name_len, "replace");
        PyObject *e = nm ? Py_BuildValue("{s:N,s:N,s:(LL),s:K}", "name", nm, "type", type_name(t->type), "shape",
                                         (long long)t->ne[0], (long long)t->ne[1], "nbytes",
                                         (unsigned long long)t->nbytes) : NULL;
        if (!e || PyList_Append(tensors, e) < 0) {
            Py_XDECREF(e);
            Py_DECREF(tensors);
            return NULL;
        }
        Py_DECREF(e);
    }
    /* the weight type most of the model uses: the first layer's feed-forward matrix */
    const qa_gguf_tensor *up = qa_gguf_find_tensor(&self->g, "blk.0.ffn_up.weight");
    PyObject *wt = up ? type_name(up->type) : PyUnicode_FromString("?");
    PyObject *d = Py_BuildValue(
        "{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:N,s:i,s:N,s:K}", "architecture", m->arch->name,
        "tokenizer", m->tok.kind->name, "n_vocab", hp->n_vocab, "n_ctx", hp->n_ctx, "max_tokens", hp->max_tokens,
        "n_embd", hp->n_embd, "n_ff", hp->n_ff, "n_layer", hp->n_layer, "n_head", hp->n_head, "pooling",
        hp->pooling, "normalize", hp->normalize, "eps", (double)hp->eps, "weight_type", wt, "n_threads",
        self->pool.n_threads, "tensors", tensors, "gguf_version", (unsigned long long)self->g.version);
    if (d && !strcmp(m->tok.kind->name, "bert")) { /* WordPiece's special ids */
        const qa_wordpiece *w = (const qa_wordpiece *)m->tok.state;
        const char *keys[4] = {"cls_id", "sep_id", "unk_id", "pad_id"};
        int vals[4] = {w->cls_id, w->sep_id, w->unk_id, w->pad_id};
        for (int i = 0; i < 4; i++) {
            PyObject *v = PyLong_FromLong(vals[i]);
            if (!v || PyDict_SetItemString(d, keys[i], v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(d);
                return NULL;
            }
            Py_DECREF(v);
        }
    }
    return d;
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
    .tp_doc = "Model(buffer, n_threads=1): a GGUF model read in place from a buffer (mmap).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
};

/* ---- kernel checks: the types table and the ops, each variant against its reference */

/* Every SIMD choice of the model kernel, from the CPU flags of kernel/simd.h. */
static void select_simd(void) {
    qa_model_select_simd();
    qa_ops_decoder_init(qa_have_avx2 && qa_have_fma_f16c);
}

/* Sets the CPU flags for a level (off the detected ones, never above them) and reselects. */
static PyObject *mod_set_simd(PyObject *m, PyObject *args) {
    int level;
    if (!PyArg_ParseTuple(args, "i", &level)) return NULL;
    qa_cpu_init();
    if (level == QA_SIMD_SCALAR) qa_have_avx2 = qa_have_fma_f16c = qa_have_avx512vnni = 0;
    if (level == QA_SIMD_AVX2) qa_have_avx512vnni = 0;
    select_simd();
    return PyLong_FromLong(qa_types_level());
}

static PyObject *mod_simd_level(PyObject *m, PyObject *unused) { return PyLong_FromLong(qa_types_level()); }

static PyObject *mod_types(PyObject *m, PyObject *unused) {
    PyObject *l = PyList_New(0);
    for (int i = 0; l && i < qa_n_types; i++) {
        const qa_type_traits *t = qa_types[i];
        PyObject *e = Py_BuildValue("{s:I,s:s,s:i,s:i,s:I,s:O,s:O,s:O}", "type", t->type, "name", t->name, "blck",
                                    t->blck, "size", t->size, "act_type", t->act_type, "has_quantize_act",
                                    t->quantize_act ? Py_True : Py_False, "has_tile", t->tile ? Py_True : Py_False,
                                    "has_dot", t->vec_dot_ref ? Py_True : Py_False);
        if (!e || PyList_Append(l, e) < 0) {
            Py_XDECREF(e);
            Py_CLEAR(l);
        }
        Py_XDECREF(e);
    }
    return l;
}

static const qa_type_traits *type_arg(unsigned type) {
    const qa_type_traits *t = qa_type_get(type);
    if (!t) PyErr_Format(PyExc_ValueError, "type %u is not in the types table", type);
    return t;
}

/* bytes of n values of type t, or -1 with an error if len does not match */
static int64_t check_values(const qa_type_traits *t, Py_ssize_t len, int64_t n) {
    if (n < 1 || n % t->blck || (uint64_t)len != qa_ggml_row_bytes(t->type, n)) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are not %lld values of %s", len, (long long)n, t->name);
        return -1;
    }
    return n;
}

/* type_to_float(type, data, n) -> float32 array of n values */
static PyObject *mod_type_to_float(PyObject *m, PyObject *args) {
    unsigned type;
    Py_buffer b;
    long long n;
    if (!PyArg_ParseTuple(args, "Iy*L", &type, &b, &n)) return NULL;
    const qa_type_traits *t = type_arg(type);
    PyObject *out = NULL;
    if (t && check_values(t, b.len, n) > 0) {
        npy_intp dims[1] = {(npy_intp)n};
        out = PyArray_ZEROS(1, dims, NPY_FLOAT32, 0);
        if (out) t->to_float(b.buf, (float *)PyArray_DATA((PyArrayObject *)out), n);
    }
    PyBuffer_Release(&b);
    return out;
}

static PyArrayObject *f32_arg(PyObject *o) {
    return (PyArrayObject *)PyArray_FROMANY(o, NPY_FLOAT32, 1, 1, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ENSURECOPY);
}

/* type_quantize_act(type, x float32, ref=False) -> bytes of the row's activation type */
static PyObject *mod_type_quantize_act(PyObject *m, PyObject *args) {
    unsigned type;
    PyObject *xo;
    int ref = 0;
    if (!PyArg_ParseTuple(args, "IO|p", &type, &xo, &ref)) return NULL;
    const qa_type_traits *t = type_arg(type);
    if (!t) return NULL;
    void (*q)(const float *, void *, int64_t) = ref ? t->quantize_act_ref : t->quantize_act;
    if (!q) {
        PyErr_Format(PyExc_ValueError, "%s has no activation quantizer", t->name);
        return NULL;
    }
    PyArrayObject *x = f32_arg(xo);
    if (!x) return NULL;
    int64_t n = PyArray_DIM(x, 0);
    uint64_t nb = qa_ggml_row_bytes(t->act_type, n);
    PyObject *r = NULL;
    if (!nb) PyErr_Format(PyExc_ValueError, "%lld values are not whole activation blocks", (long long)n);
    else if ((r = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)nb))) q(PyArray_DATA(x), PyBytes_AS_STRING(r), n);
    Py_DECREF(x);
    return r;
}

/* type_dot(type, w bytes, a bytes, n, ref=False) -> float: n values of weights x activations */
static PyObject *mod_type_dot(PyObject *m, PyObject *args) {
    unsigned type;
    Py_buffer w, a;
    long long n;
    int ref = 0;
    if (!PyArg_ParseTuple(args, "Iy*y*L|p", &type, &w, &a, &n, &ref)) return NULL;
    const qa_type_traits *t = type_arg(type);
    PyObject *r = NULL;
    if (t && !t->vec_dot_ref) {
        PyErr_Format(PyExc_ValueError, "%s is an activation type (no dot product)", t->name);
    } else if (t && check_values(t, w.len, n) > 0) {
        if ((uint64_t)a.len != qa_ggml_row_bytes(t->act_type, n))
            PyErr_Format(PyExc_ValueError, "activations: %zd bytes are not %lld values", a.len, n);
        else
            r = PyFloat_FromDouble((ref ? t->vec_dot_ref : t->vec_dot)(n, w.buf, a.buf));
    }
    PyBuffer_Release(&w);
    PyBuffer_Release(&a);
    return r;
}

/* The arguments of type_tile and type_panel, (type, w bytes, a bytes, n), checked: n whole
 * blocks, w two weight rows and a `act_rows` activation rows of n values. 0 with the buffers
 * held (release them with rows_release), or -1 with the error set and nothing held. */
typedef struct {
    const qa_type_traits *t;
    Py_buffer w, a;
    long long n;
    uint64_t ws, as; /* bytes of one weight row, one activation row */
} rows_args;

static void rows_release(rows_args *r) {
    PyBuffer_Release(&r->w);
    PyBuffer_Release(&r->a);
}

static int rows_arg(PyObject *args, const char *what, int act_rows, rows_args *r) {
    unsigned type;
    if (!PyArg_ParseTuple(args, "Iy*y*L", &type, &r->w, &r->a, &r->n)) return -1;
    if (!(r->t = type_arg(type))) {
        rows_release(r);
        return -1;
    }
    if (r->n <= 0 || r->n % r->t->blck) {
        PyErr_SetString(PyExc_ValueError, "n must be a positive multiple of the block");
        rows_release(r);
        return -1;
    }
    r->ws = qa_ggml_row_bytes(r->t->type, r->n);
    r->as = qa_ggml_row_bytes(r->t->act_type, r->n);
    if ((uint64_t)r->w.len != 2 * r->ws || (uint64_t)r->a.len != (uint64_t)act_rows * r->as) {
        PyErr_Format(PyExc_ValueError, "%s expects 2 weight rows and %d activation rows of n values", what, act_rows);
        rows_release(r);
        return -1;
    }
    return 0;
}

/* type_tile(type, w bytes (2 rows), a bytes (4 rows), n) -> 8 floats, or None without a tile */
static PyObject *mod_type_tile(PyObject *m, PyObject *args) {
    rows_args x;
    if (rows_arg(args, "tile", 4, &x)) return NULL;
    PyObject *r;
    if (!x.t->tile) {
        r = Py_NewRef(Py_None);
    } else {
        float o[8];
        x.t->tile(x.n, x.w.buf, x.ws, x.a.buf, x.as, o);
        r = Py_BuildValue("[ffffffff]", o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]);
    }
    rows_release(&x);
    return r;
}

/* type_panel(type, w bytes (2 rows), a bytes (QA_PANEL_TOKENS rows), n) -> 2 x QA_PANEL_TOKENS
 * floats (row-major), or None where the level has no panel: the rows packed, one panel call */
static PyObject *mod_type_panel(PyObject *m, PyObject *args) {
    rows_args x;
    if (rows_arg(args, "panel", QA_PANEL_TOKENS, &x)) return NULL;
    const qa_type_traits *t = x.t;
    PyObject *r = NULL;
    if (!t->panel || !t->pack_act) {
        r = Py_NewRef(Py_None);
    } else {
        uint64_t pb = (uint64_t)(x.n / qa_type_get(t->act_type)->blck) * t->panel_block;
        void *p = PyMem_Malloc(pb ? pb : 1);
        if (!p) {
            r = PyErr_NoMemory();
        } else {
            float o[2 * QA_PANEL_TOKENS];
            for (int j = 0; j < QA_PANEL_TOKENS; j++) t->pack_act((const uint8_t *)x.a.buf + j * x.as, j, p, x.n);
            t->panel(x.n, x.w.buf, x.ws, p, o);
            PyMem_Free(p);
            r = PyList_New(2 * QA_PANEL_TOKENS);
            for (int k = 0; r && k < 2 * QA_PANEL_TOKENS; k++) PyList_SET_ITEM(r, k, PyFloat_FromDouble(o[k]));
        }
    }
    rows_release(&x);
    return r;
}

/* op(name, x, m=0, ref=False) runs one op on a copy of x: gelu, exp_sub (x - m), softmax */
static PyObject *mod_op(PyObject *m, PyObject *args) {
    const char *name;
    PyObject *xo;
    double mv = 0.0;
    int ref = 0;
    if (!PyArg_ParseTuple(args, "sO|dp", &name, &xo, &mv, &ref)) return NULL;
    PyArrayObject *x = f32_arg(xo);
    if (!x) return NULL;
    float *xp = (float *)PyArray_DATA(x);
    int n = (int)PyArray_DIM(x, 0);
    if (!strcmp(name, "gelu")) (ref ? qa_gelu_ref : qa_gelu)(xp, n);
    else if (!strcmp(name, "exp_sub")) (ref ? qa_exp_sub_ref : qa_exp_sub)(xp, n, (float)mv);
    else if (!strcmp(name, "softmax") && n > 0) qa_softmax(xp, n);
    else {
        Py_DECREF(x);
        PyErr_Format(PyExc_ValueError, "unknown op %s", name);
        return NULL;
    }
    return (PyObject *)x;
}

static PyMethodDef module_methods[] = {
    {"set_simd", mod_set_simd, METH_VARARGS,
     "set_simd(level) -> level in use (0 scalar, 1 AVX2, 3 AVX2 + AVX-512 VNNI tiles; never above the CPU's)"},
    {"simd_level", mod_simd_level, METH_NOARGS, "SIMD level in use"},
    {"types", mod_types, METH_NOARGS, "the types table: one dict per row"},
    {"type_to_float", mod_type_to_float, METH_VARARGS, "type_to_float(type, data, n) -> float32[n]"},
    {"type_quantize_act", mod_type_quantize_act, METH_VARARGS,
     "type_quantize_act(type, x, ref=False) -> activation blocks (dispatched or reference)"},
    {"type_dot", mod_type_dot, METH_VARARGS, "type_dot(type, w, a, n, ref=False) -> float"},
    {"type_tile", mod_type_tile, METH_VARARGS, "type_tile(type, w2, a4, n) -> 8 dots, or None"},
    {"type_panel", mod_type_panel, METH_VARARGS, "type_panel(type, w2, a16, n) -> 32 dots, or None"},
    {"op", mod_op, METH_VARARGS, "op(name, x, m=0, ref=False): gelu, exp_sub, softmax on a copy"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "quantann._model",
                                       "GGUF model kernel: encoders, decoders, tokenizers", -1, module_methods};

PyMODINIT_FUNC PyInit__model(void) {
    import_array();
    qa_cpu_init();
    select_simd();
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&moduledef);
    if (!mod) return NULL;
    FormatError = PyErr_NewException("quantann._model.GGUFError", PyExc_ValueError, NULL);
    UnsupportedError = PyErr_NewException("quantann._model.UnsupportedError", PyExc_ValueError, NULL);
    Py_INCREF(&ModelType);
    PyModule_AddObject(mod, "Model", (PyObject *)&ModelType);
    if (PyModule_AddObjectRef(mod, "GGUFError", FormatError) < 0 ||
        PyModule_AddObjectRef(mod, "UnsupportedError", UnsupportedError) < 0 ||
        qa_py_decoder_add(mod, FormatError, UnsupportedError) < 0 || qa_py_tokenizer_add(mod) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    PyModule_AddIntConstant(mod, "SIMD_SCALAR", QA_SIMD_SCALAR);
    PyModule_AddIntConstant(mod, "SIMD_AVX2", QA_SIMD_AVX2);
    PyModule_AddIntConstant(mod, "SIMD_AVX512VNNI", QA_SIMD_AVX512VNNI);
    PyModule_AddIntConstant(mod, "PANEL_TOKENS", QA_PANEL_TOKENS);
    return mod;
}
