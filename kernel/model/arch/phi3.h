/* phi3: fused matrices split into row views for the llama forward (phi3.c). */
#ifndef QA_ARCH_PHI3_H
#define QA_ARCH_PHI3_H

#include "llama.h"

/* Rows [first, first + n) of w, in place. */
qa_dmat qa_dmat_rows(const qa_dmat *w, int64_t first, int64_t n);
/* q, k, v from attn_qkv [d, dq + 2 dkv]; gate, up from ffn_up [d, 2 n_ff]. */
void qa_phi3_split(qa_llama_layer *L, const qa_dmat *qkv, const qa_dmat *gate_up, int64_t dq, int64_t dkv,
                   int64_t n_ff);

#endif
