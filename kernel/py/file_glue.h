/* CPython glue of the file readers (kernel/index/qann.c, kernel/gguf/gguf.c), registered in
 * quantann._kernel's method table (index_module.c). */
#ifndef QA_PY_FILE_GLUE_H
#define QA_PY_FILE_GLUE_H

#include <Python.h>

PyObject *qa_py_qann_info(PyObject *self, PyObject *args);
PyObject *qa_py_qann_read(PyObject *self, PyObject *args);
PyObject *qa_py_qann_header_crc(PyObject *self, PyObject *args);
PyObject *qa_py_gguf_header(PyObject *self, PyObject *args);
PyObject *qa_py_crc32(PyObject *self, PyObject *args);

#define QA_FILE_METHODS                                                                                  \
    {"qann_info", qa_py_qann_info, METH_VARARGS,                                                         \
     "qann_info(prefix, file_len) -> dict of header sizes, or int: the prefix length needed"},          \
    {"qann_read", qa_py_qann_read, METH_VARARGS,                                                         \
     "qann_read(part, file_len) -> dict: header values and each array's (offset, count) in part"},      \
    {"qann_header_crc", qa_py_qann_header_crc, METH_VARARGS, "qann_header_crc(header) -> (crc, value_at)"}, \
    {"crc32", qa_py_crc32, METH_VARARGS, "crc32(data, crc=0) -> the kernel's CRC-32 (as zlib.crc32)"},  \
    {"gguf_header", qa_py_gguf_header, METH_VARARGS,                                                     \
     "gguf_header(prefix, file_len) -> (metadata {key: scalar or str}, tensors {name: (type, shape, offset, nbytes)})"},

#endif
