/* CPython glue for the decoder-LLM tokenizers (kernel/model/tokenizer/): quantann._model.Tokenizer.
 *
 * Tokenizer(buffer) reads the vocabulary of a GGUF held by any object with the buffer
 * protocol (a memory map: token strings are used in place, so the buffer is kept). The host
 * owns all memory: kv/tensor tables, the vocabulary arena and each encode's scratch. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "model/tokenizer/tokenizer.h"
#include "py/buffers.h"
#include "py/glue.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int has_view;
    qa_gguf g;
    qa_gguf_kv *kv;
    qa_gguf_tensor *tensors;
    void *arena;
    qa_tok t;
    int ready;
    /* encode buffers, kept between calls (grown as needed; the GIL serialises calls):
     * a fresh scratch of a few hundred KB per call would be a new mapping each time */
    void *scratch;
    uint64_t scratch_cap;
    int32_t *ids;
    uint64_t ids_cap;
} TokObject;

typedef struct {
    PyObject_HEAD
    TokObject *tok;
    qa_tok_stream s;
    int special;
} StreamObject;

static PyObject *TokError; /* quantann._model.TokenizerError (a ValueError) */
static PyTypeObject StreamType;

static void Tok_dealloc(TokObject *self) {
    PyMem_RawFree(self->scratch);
    PyMem_RawFree(self->ids);
    PyMem_RawFree(self->kv);
    PyMem_RawFree(self->tensors);
    PyMem_RawFree(self->arena);
    if (self->has_view) PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Tok_init(TokObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"buffer", NULL};
    PyObject *buf;
    char err[512] = "";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", kwlist, &buf)) return -1;
    if (self->has_view) {
        PyErr_SetString(PyExc_RuntimeError, "Tokenizer already initialised");
        return -1;
    }
    int rc = qa_py_gguf_open(buf, &self->view, &self->has_view, &self->g, &self->kv, &self->tensors,
                             err, sizeof err);
    if (rc > 0) return -1;
    if (rc) goto fail;
    uint64_t asz = qa_tok_arena_size(&self->g, err, sizeof err);
    if (!asz) goto fail;
    self->arena = PyMem_RawMalloc(asz);
    if (!self->arena) {
        PyErr_NoMemory();
        return -1;
    }
    rc = qa_tok_init(&self->t, &self->g, self->arena, asz, err, sizeof err);
    if (rc) goto fail;
    self->ready = 1;
    return 0;
fail:
    PyErr_SetString(TokError, err[0] ? err : "invalid GGUF file");
    return -1;
}

#define CHECK_READY(self)                                                       \
    if (!(self)->ready) {                                                       \
        PyErr_SetString(PyExc_RuntimeError, "Tokenizer is not initialised");    \
        return NULL;                                                            \
    }

static PyObject *Tok_encode(TokObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"text", "add_special", "parse_special", NULL};
    PyObject *o;
    int add_special = 1, parse_special = 0;
    CHECK_READY(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pp", kwlist, &o, &add_special, &parse_special)) return NULL;
    PyObject *b = qa_py_text_bytes(o, "surrogatepass"); /* surrogates kept as their bytes */
    if (!b) return NULL;
    uint64_t len = (uint64_t)PyBytes_GET_SIZE(b);
    if (len > (1u << 30)) {
        Py_DECREF(b);
        PyErr_SetString(PyExc_ValueError, "text longer than 1 GiB");
        return NULL;
    }
    uint64_t cap = qa_tok_max_ids(len), ssz = qa_tok_scratch_size(&self->t, len);
    if (cap > self->ids_cap) {
        PyMem_RawFree(self->ids);
        self->ids_cap = cap < 4096 ? 4096 : cap;
        self->ids = PyMem_RawMalloc(self->ids_cap * sizeof(int32_t));
    }
    if (ssz > self->scratch_cap) {
        PyMem_RawFree(self->scratch);
        self->scratch_cap = ssz < (1u << 20) ? (1u << 20) : ssz;
        self->scratch = PyMem_RawMalloc(self->scratch_cap);
    }
    if (!self->ids || !self->scratch) {
        self->ids_cap = self->scratch_cap = 0;
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    int64_t n = qa_tok_encode(&self->t, (const uint8_t *)PyBytes_AS_STRING(b), len, add_special, parse_special,
                              self->ids, self->ids_cap, self->scratch, self->scratch_cap);
    Py_DECREF(b);
    if (n < 0) {
        PyErr_Format(PyExc_RuntimeError, "encode failed (%d)", (int)n);
        return NULL;
    }
    PyObject *lst = PyList_New((Py_ssize_t)n);
    for (int64_t i = 0; lst && i < n; i++) PyList_SET_ITEM(lst, i, PyLong_FromLong(self->ids[i]));
    return lst;
}

static int check_id(TokObject *self, long id) {
    if (id < 0 || id >= self->t.n_vocab) {
        PyErr_Format(PyExc_ValueError, "token id %ld out of range (vocabulary of %d)", id, (int)self->t.n_vocab);
        return 0;
    }
    return 1;
}

/* ids (any iterable of ints) -> bytes through a fresh stream */
static PyObject *decode_bytes(TokObject *self, PyObject *seq, int special, int strip) {
    PyObject *fast = PySequence_Fast(seq, "ids must be a sequence of ints");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    uint64_t cap = 8;
    for (Py_ssize_t i = 0; i < n; i++) {
        long id = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if ((id == -1 && PyErr_Occurred()) || !check_id(self, id)) {
            Py_DECREF(fast);
            return NULL;
        }
        cap += qa_tok_decode_max(&self->t, (int32_t)id);
    }
    uint8_t *out = PyMem_RawMalloc(cap);
    if (!out) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    qa_tok_stream s;
    qa_tok_stream_init(&s, strip);
    uint64_t o = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        o += qa_tok_decode(&self->t, &s, (int32_t)PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i)), special, out + o);
    o += qa_tok_flush(&s, out + o);
    Py_DECREF(fast);
    PyObject *r = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)o);
    PyMem_RawFree(out);
    return r;
}

static PyObject *Tok_decode_bytes(TokObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ids", "special", "strip_space", NULL};
    PyObject *seq;
    int special = 0, strip = -1;
    CHECK_READY(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pi", kwlist, &seq, &special, &strip)) return NULL;
    return decode_bytes(self, seq, special, strip < 0 ? self->t.add_space_prefix : strip);
}

static PyObject *Tok_decode(TokObject *self, PyObject *args, PyObject *kw) {
    PyObject *b = Tok_decode_bytes(self, args, kw);
    if (!b) return NULL;
    PyObject *s = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), "replace");
    Py_DECREF(b);
    return s;
}

static PyObject *Tok_piece(TokObject *self, PyObject *arg) {
    CHECK_READY(self);
    long id = PyLong_AsLong(arg);
    if ((id == -1 && PyErr_Occurred()) || !check_id(self, id)) return NULL;
    uint32_t n;
    const uint8_t *p = qa_tok_piece(&self->t, (int32_t)id, &n);
    return PyBytes_FromStringAndSize((const char *)p, n);
}

static PyObject *Tok_token_type(TokObject *self, PyObject *arg) {
    CHECK_READY(self);
    long id = PyLong_AsLong(arg);
    if ((id == -1 && PyErr_Occurred()) || !check_id(self, id)) return NULL;
    return PyLong_FromLong(self->t.type[id]);
}

static PyObject *Tok_is_eog(TokObject *self, PyObject *arg) {
    CHECK_READY(self);
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    return PyBool_FromLong(qa_tok_is_eog(&self->t, (int32_t)id));
}

static PyObject *Tok_stream(TokObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"special", "strip_space", NULL};
    int special = 0, strip = 0;
    CHECK_READY(self);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp", kwlist, &special, &strip)) return NULL;
    StreamObject *s = PyObject_New(StreamObject, &StreamType);
    if (!s) return NULL;
    Py_INCREF(self);
    s->tok = self;
    s->special = special;
    qa_tok_stream_init(&s->s, strip);
    return (PyObject *)s;
}

static PyObject *opt_id(int32_t id) {
    if (id < 0) Py_RETURN_NONE;
    return PyLong_FromLong(id);
}

static PyObject *Tok_info(TokObject *self, PyObject *Py_UNUSED(ignored)) {
    CHECK_READY(self);
    static const char *pre_names[] = {"", "gpt2", "smollm", "llama3", "qwen2"};
    const qa_tok *t = &self->t;
    PyObject *tmpl = t->chat_template
                         ? PyUnicode_DecodeUTF8((const char *)t->chat_template, (Py_ssize_t)t->chat_template_len, "replace")
                         : (Py_INCREF(Py_None), Py_None);
    return Py_BuildValue("{s:s,s:s,s:i,s:N,s:N,s:N,s:N,s:N,s:N,s:O,s:O,s:O,s:i,s:N}",
                         "model", t->kind == QA_TOK_BPE ? "bpe" : "spm", "pre",
                         t->kind == QA_TOK_BPE ? pre_names[t->pre] : "", "n_vocab", (int)t->n_vocab,
                         "bos", opt_id(t->bos), "eos", opt_id(t->eos), "eot", opt_id(t->eot), "eom",
                         opt_id(t->eom), "unk", opt_id(t->unk), "pad", opt_id(t->pad), "add_bos",
                         t->add_bos ? Py_True : Py_False, "add_eos", t->add_eos ? Py_True : Py_False,
                         "add_space_prefix", t->add_space_prefix ? Py_True : Py_False, "n_special",
                         (int)t->n_special, "chat_template", tmpl);
}

static PyMethodDef Tok_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))Tok_encode, METH_VARARGS | METH_KEYWORDS,
     "encode(text, add_special=True, parse_special=False) -> list of ids"},
    {"decode", (PyCFunction)(void (*)(void))Tok_decode, METH_VARARGS | METH_KEYWORDS,
     "decode(ids, special=False, strip_space=-1) -> str (invalid UTF-8 replaced)"},
    {"decode_bytes", (PyCFunction)(void (*)(void))Tok_decode_bytes, METH_VARARGS | METH_KEYWORDS,
     "decode_bytes(ids, special=False, strip_space=-1) -> bytes"},
    {"piece", (PyCFunction)Tok_piece, METH_O, "piece(id) -> bytes the token stands for"},
    {"token_type", (PyCFunction)Tok_token_type, METH_O, "token_type(id) -> tokenizer.ggml.token_type value"},
    {"is_eog", (PyCFunction)Tok_is_eog, METH_O, "is_eog(id) -> True for end-of-generation tokens"},
    {"stream", (PyCFunction)(void (*)(void))Tok_stream, METH_VARARGS | METH_KEYWORDS,
     "stream(special=False, strip_space=False) -> Stream: feed(id) -> str, flush() -> str"},
    {"info", (PyCFunction)Tok_info, METH_NOARGS, "info() -> dict of model kind, special ids, flags, chat_template"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject TokType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._model.Tokenizer",
    .tp_basicsize = sizeof(TokObject),
    .tp_dealloc = (destructor)Tok_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tokenizer(buffer): the BPE or SentencePiece vocabulary of a GGUF file",
    .tp_methods = Tok_methods,
    .tp_init = (initproc)Tok_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------ Stream */

static void Stream_dealloc(StreamObject *self) {
    Py_XDECREF(self->tok);
    PyObject_Free(self);
}

static PyObject *Stream_feed(StreamObject *self, PyObject *arg) {
    long id = PyLong_AsLong(arg);
    if ((id == -1 && PyErr_Occurred()) || !check_id(self->tok, id)) return NULL;
    uint8_t buf[256];
    uint64_t cap = qa_tok_decode_max(&self->tok->t, (int32_t)id);
    uint8_t *out = cap <= sizeof buf ? buf : PyMem_RawMalloc(cap);
    if (!out) return PyErr_NoMemory();
    uint64_t n = qa_tok_decode(&self->tok->t, &self->s, (int32_t)id, self->special, out);
    PyObject *r = PyUnicode_DecodeUTF8((const char *)out, (Py_ssize_t)n, "replace");
    if (out != buf) PyMem_RawFree(out);
    return r;
}

static PyObject *Stream_flush(StreamObject *self, PyObject *Py_UNUSED(ignored)) {
    uint8_t out[4];
    uint64_t n = qa_tok_flush(&self->s, out);
    return PyUnicode_DecodeUTF8((const char *)out, (Py_ssize_t)n, "replace");
}

static PyMethodDef Stream_methods[] = {
    {"feed", (PyCFunction)Stream_feed, METH_O, "feed(id) -> the text completed by this token"},
    {"flush", (PyCFunction)Stream_flush, METH_NOARGS, "flush() -> held bytes of an unfinished character"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quantann._model.Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Streaming decoder: emits only complete UTF-8 characters",
    .tp_methods = Stream_methods,
};

int qa_py_tokenizer_add(PyObject *mod) {
    if (PyType_Ready(&TokType) < 0 || PyType_Ready(&StreamType) < 0) return -1;
    TokError = PyErr_NewException("quantann._model.TokenizerError", PyExc_ValueError, NULL);
    if (PyModule_AddObjectRef(mod, "Tokenizer", (PyObject *)&TokType) < 0) return -1;
    return PyModule_AddObject(mod, "TokenizerError", TokError);
}
