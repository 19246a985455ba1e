/* Weights of a llama-family decoder swapped for precision reports (quantann model-report):
 * an F32 copy of every matrix (the reference of the same weights), and one group of
 * weights (a layer, the token embeddings, the output matrix) taken from another file of
 * the same model, so each group's quantization is measured alone. Both only repoint the
 * qa_dmat views of qa_llama; the forward is llama.c's. */
#ifndef QA_ARCH_LLAMA_MIX_H
#define QA_ARCH_LLAMA_MIX_H

#include "llama.h"

enum { QA_LLAMA_GROUP_TOKEN_EMBD = -1, QA_LLAMA_GROUP_OUTPUT = -2 };

/* Bytes of the F32 copies qa_llama_to_f32 writes. */
uint64_t qa_llama_f32_bytes(const qa_llama *m);
/* Converts every matrix to F32 into buf (qa_llama_f32_bytes, 4-byte aligned) and points
 * m at the copies. */
void qa_llama_to_f32(qa_llama *m, float *buf);
/* dst's weights of group (a layer index or QA_LLAMA_GROUP_*) become src's. The models
 * must have the same hyper-parameters; with a tied output, the token embeddings are the
 * output too. */
int qa_llama_take(qa_llama *dst, const qa_llama *src, int group, char *err, size_t el);

#endif
