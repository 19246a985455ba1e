/* quantann._kernel's file functions: the one GGUF reader and the .qann reader over a
 * Python buffer (a memory map, bytes, a numpy array). Errors come back as ValueError with
 * the kernel's message; quantann/fileformat.py names the file. */
#define PY_SSIZE_T_CLEAN
#include "file_glue.h"

#include "gguf/crc32.h"
#include "gguf/gguf.h"
#include "index/qann.h"

static PyObject *fail(int rc, const char *err) {
    PyErr_SetString(rc == QA_ERR_SPACE ? PyExc_MemoryError : PyExc_ValueError, err);
    return NULL;
}

static PyObject *info_dict(const qa_qann_info *in) {
    return Py_BuildValue("{sIsIsKsKsKsKsKsKsKsK}", "gguf_version", in->gguf_version, "format_version",
                         in->format_version, "file_len", (unsigned long long)in->file_len, "header_bytes",
                         (unsigned long long)in->header_bytes, "part_bytes", (unsigned long long)in->part_bytes,
                         "codes", (unsigned long long)in->mem_codes, "graph", (unsigned long long)in->mem_graph,
                         "ids", (unsigned long long)in->mem_ids, "other", (unsigned long long)in->mem_other,
                         "next_id", (unsigned long long)in->next_id);
}

PyObject *qa_py_qann_info(PyObject *self, PyObject *args) {
    Py_buffer b;
    unsigned long long flen;
    if (!PyArg_ParseTuple(args, "y*K", &b, &flen)) return NULL;
    qa_qann_info info;
    char err[512] = "";
    int rc = qa_qann_info_read((const uint8_t *)b.buf, (uint64_t)b.len, flen, &info, err, sizeof err);
    PyBuffer_Release(&b);
    if (rc == QA_ERR_NEED_MORE) return PyLong_FromUnsignedLongLong(info.header_bytes);
    if (rc) return fail(rc, err);
    return info_dict(&info);
}

/* Offset of p in the buffer and its element count, or None. */
static PyObject *span(const void *p, const void *base, int64_t count) {
    if (!p) Py_RETURN_NONE;
    return Py_BuildValue("(LL)", (long long)((const char *)p - (const char *)base), (long long)count);
}

PyObject *qa_py_qann_read(PyObject *self, PyObject *args) {
    Py_buffer b;
    unsigned long long flen;
    if (!PyArg_ParseTuple(args, "y*K", &b, &flen)) return NULL;
    qa_index_arrays a;
    qa_qann_info info;
    char err[512] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = qa_qann_read_info((const uint8_t *)b.buf, (uint64_t)b.len, flen, &a, &info, err, sizeof err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (rc) return fail(rc, err);
    const void *o = b.buf;
    int64_t dpad = (a.d + 63) & ~63;
    PyObject *arrays = Py_BuildValue(
        "{sNsNsNsNsNsNsNsNsNsNsN}", "quant.vmin", span(a.vmin, o, dpad), "quant.scale", span(a.scale, o, dpad),
        "codes", span(a.codes, o, a.n), "norms", span(a.norms, o, a.n), "residuals", span(a.resid, o, a.n),
        "graph.level", span(a.level, o, a.n),
        "graph.links0", span(a.links0 ? (const void *)a.links0 : (const void *)a.links0_packed, o, a.n), "graph.up_nodes", span(a.up_nodes, o, a.n_up), "graph.up_off",
        span(a.up_off, o, a.n_up), "graph.upper", span(a.upper, o, a.n_upper), "ids", span(a.ids, o, a.n));
    if (!arrays) return NULL;
    return Py_BuildValue("{sisOsisisLsisisisisisKsIsisNsN}", "metric", a.metric, "cosine", a.cosine ? Py_True : Py_False,
                         "codec", a.codec, "d", a.d, "n", (long long)a.n, "M", a.M, "M0", a.M0, "entry", (int)a.entry,
                         "max_level", a.max_level, "ef_construction", a.ef_construction, "vectors_offset",
                         (unsigned long long)a.vectors_offset, "vectors_crc32", a.vectors_crc32, "link_bits", a.link_bits ? a.link_bits : 32, "arrays", arrays,
                         "info", info_dict(&info));
}

PyObject *qa_py_qann_header_crc(PyObject *self, PyObject *args) {
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) return NULL;
    uint32_t crc = 0;
    uint64_t at = 0;
    char err[512] = "";
    int rc = qa_qann_header_crc((const uint8_t *)b.buf, (uint64_t)b.len, &crc, &at, err, sizeof err);
    PyBuffer_Release(&b);
    if (rc) return fail(rc, err);
    return Py_BuildValue("(IK)", crc, (unsigned long long)at);
}

static PyObject *scalar(const qa_gguf_kv *e) {
    const uint8_t *p = e->val;
    static const int size[QA_GV_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 0, 8, 8, 8};
    uint64_t u = 0; /* the value's bytes, little endian (a string's: its length) */
    for (int i = size[e->type] - 1; i >= 0; i--) u = u << 8 | p[i];
    switch (e->type) {
    case QA_GV_U8: return PyLong_FromLong(p[0]);
    case QA_GV_I8: return PyLong_FromLong((int8_t)p[0]);
    case QA_GV_U16: return PyLong_FromLong((uint16_t)(p[0] | p[1] << 8));
    case QA_GV_I16: return PyLong_FromLong((int16_t)(p[0] | p[1] << 8));
    case QA_GV_U32: return PyLong_FromUnsignedLong((uint32_t)u);
    case QA_GV_I32: return PyLong_FromLong((int32_t)(uint32_t)u);
    case QA_GV_F32: { uint32_t v = (uint32_t)u; float f; memcpy(&f, &v, 4); return PyFloat_FromDouble(f); }
    case QA_GV_BOOL: return PyBool_FromLong(p[0] != 0);
    case QA_GV_U64: return PyLong_FromUnsignedLongLong(u);
    case QA_GV_I64: return PyLong_FromLongLong((int64_t)u);
    case QA_GV_F64: { double f; memcpy(&f, &u, 8); return PyFloat_FromDouble(f); }
    case QA_GV_STRING: return PyUnicode_DecodeUTF8((const char *)p + 8, (Py_ssize_t)u, "replace");
    default: Py_RETURN_NONE; /* arrays: not needed by any Python reader */
    }
}

PyObject *qa_py_gguf_header(PyObject *self, PyObject *args) {
    Py_buffer b;
    unsigned long long flen;
    if (!PyArg_ParseTuple(args, "y*K", &b, &flen)) return NULL;
    char err[512] = "";
    uint64_t nkv = 0, nt = 0, need = 0;
    const uint8_t *buf = (const uint8_t *)b.buf;
    int rc = qa_gguf_header_size(buf, (uint64_t)b.len, flen, &need, err, sizeof err);
    if (rc == QA_OK) rc = qa_gguf_counts(buf, (uint64_t)b.len, &nkv, &nt, err, sizeof err);
    qa_gguf_kv *kv = rc ? NULL : (qa_gguf_kv *)PyMem_Malloc((nkv + 1) * sizeof *kv);
    qa_gguf_tensor *ts = rc ? NULL : (qa_gguf_tensor *)PyMem_Malloc((nt + 1) * sizeof *ts);
    qa_gguf g;
    if (!rc && (!kv || !ts)) rc = QA_ERR_SPACE, snprintf(err, sizeof err, "out of memory");
    if (!rc) rc = qa_gguf_parse_prefix(&g, buf, (uint64_t)b.len, flen, kv, nkv, ts, nt, err, sizeof err);
    PyObject *md = NULL, *tensors = NULL, *out = NULL;
    if (rc) {
        fail(rc, err);
        goto done;
    }
    md = PyDict_New();
    tensors = PyDict_New();
    if (!md || !tensors) goto done;
    for (uint64_t i = 0; i < g.n_kv; i++) {
        PyObject *k = PyUnicode_DecodeUTF8((const char *)kv[i].key, (Py_ssize_t)kv[i].key_len, "replace");
        PyObject *v = k ? scalar(&kv[i]) : NULL;
        int bad = !v || PyDict_SetItem(md, k, v);
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (bad) goto done;
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const qa_gguf_tensor *t = &ts[i];
        PyObject *shape = PyTuple_New(t->n_dims);
        if (!shape) goto done;
        for (uint32_t d = 0; d < t->n_dims; d++) /* numpy order: slowest first */
            PyTuple_SET_ITEM(shape, d, PyLong_FromLongLong(t->ne[t->n_dims - 1 - d]));
        PyObject *v = Py_BuildValue("(INKK)", t->type, shape, (unsigned long long)(g.data_start + t->offset),
                                    (unsigned long long)t->nbytes);
        PyObject *k = PyUnicode_DecodeUTF8((const char *)t->name, (Py_ssize_t)t->name_len, "replace");
        int bad = !v || !k || PyDict_SetItem(tensors, k, v);
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (bad) goto done;
    }
    out = Py_BuildValue("(OO)", md, tensors);
done:
    Py_XDECREF(md);
    Py_XDECREF(tensors);
    PyMem_Free(kv);
    PyMem_Free(ts);
    PyBuffer_Release(&b);
    return out;
}

PyObject *qa_py_crc32(PyObject *self, PyObject *args) {
    Py_buffer b;
    unsigned int crc = 0;
    if (!PyArg_ParseTuple(args, "y*|I", &b, &crc)) return NULL;
    uint32_t out;
    Py_BEGIN_ALLOW_THREADS
    out = qa_crc32(crc, (const uint8_t *)b.buf, (size_t)b.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(out);
}
