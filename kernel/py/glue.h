/* The parts of quantann._model, the one CPython extension of the model kernel: each glue
 * file adds its types to the module that model_module.c creates (encoders), so the SIMD
 * selection, the types table and the errors exist once. */
#ifndef QA_PY_GLUE_H
#define QA_PY_GLUE_H

#include <Python.h>

/* decoder_glue.c: Decoder (llama-family decoders), raising the module's errors */
int qa_py_decoder_add(PyObject *mod, PyObject *gguf_error, PyObject *unsupported_error);
/* tokenizer_glue.c: Tokenizer, Stream, TokenizerError (BPE / SentencePiece of a GGUF vocabulary) */
int qa_py_tokenizer_add(PyObject *mod);

#endif
