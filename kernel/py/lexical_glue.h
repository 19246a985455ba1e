/* CPython glue of the lexical index (kernel/text/lexical.h), registered in quantann._kernel
 * (index_module.c): lex_build, rrf_fuse and the Lexical type. */
#ifndef QA_PY_LEXICAL_GLUE_H
#define QA_PY_LEXICAL_GLUE_H

#include <Python.h>

PyObject *qa_py_lex_build(PyObject *self, PyObject *args);
PyObject *qa_py_rrf_fuse(PyObject *self, PyObject *args);
int qa_py_lexical_add_type(PyObject *module);

#define QA_LEXICAL_METHODS                                                                              \
    {"lex_build", qa_py_lex_build, METH_VARARGS,                                                        \
     "lex_build(text_bytes, offsets u64) -> (terms, term_offsets, df, post_offsets, postings, doc_len) as bytes"}, \
    {"rrf_fuse", qa_py_rrf_fuse, METH_VARARGS,                                                          \
     "rrf_fuse(a u64, b u64, wa, wb, rrf_k, k) -> (ids u64 bytes, scores f64 bytes)"},

#endif
