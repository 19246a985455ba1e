/* The Decoder object of quantann._model (decoder_glue.c), shared with its report methods
 * (decoder_mix_glue.c). */
#ifndef QA_PY_DECODER_GLUE_H
#define QA_PY_DECODER_GLUE_H

#include <Python.h>
#include <pythread.h>

#include "model/arch/llama.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int has_view;
    qa_gguf g;
    qa_gguf_kv *kv_recs;
    qa_gguf_tensor *tensors;
    qa_llama *m;
    qa_pool pool;
    int pool_started, started;
    qa_llama_ctx ctx;
    void *kv, *scratch, *sample_work;
    uint64_t scratch_bytes;
    uint64_t rng;
    PyThread_type_lock lock;
    /* reports (decoder_mix_glue.c): F32 copies of the weights, the model as loaded or
     * converted (to restore a group), the Decoders whose weights m borrows */
    float *f32;
    qa_llama *orig;
    PyObject *held;
} DecoderObject;

/* decoder_mix_glue.c: the methods to_f32, take_weights, hidden_states */
int qa_py_decoder_mix_init(PyTypeObject *decoder_type);
PyObject *qa_py_decoder_to_f32(DecoderObject *self, PyObject *unused);
PyObject *qa_py_decoder_take(DecoderObject *self, PyObject *args);
PyObject *qa_py_decoder_hidden(DecoderObject *self, PyObject *tokens);

#endif
