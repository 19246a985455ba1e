/* phi3 (Phi-3-mini and its relatives): the llama forward of llama.c over fused matrices.
 * attn_qkv holds the q, k and v rows one after the other, ffn_up the gate rows then the
 * up rows; a weight row is contiguous in every type, so each part is a view of its rows
 * and the shared forward runs unchanged (q/k/v and gate/up are still one matmul group,
 * one pass over the same input). RoPE is neox; attention is global (llama.cpp ignores the
 * sliding window some phi3 files declare). */
#include "phi3.h"

#include <string.h>

qa_dmat qa_dmat_rows(const qa_dmat *w, int64_t first, int64_t n) {
    qa_dmat v = *w;
    v.data = w->data + (uint64_t)first * w->row_bytes;
    v.n_out = n;
    return v;
}

void qa_phi3_split(qa_llama_layer *L, const qa_dmat *qkv, const qa_dmat *gate_up, int64_t dq, int64_t dkv,
                   int64_t n_ff) {
    L->q = qa_dmat_rows(qkv, 0, dq);
    L->k = qa_dmat_rows(qkv, dq, dkv);
    L->v = qa_dmat_rows(qkv, dq + dkv, dkv);
    L->gate = qa_dmat_rows(gate_up, 0, n_ff);
    L->up = qa_dmat_rows(gate_up, n_ff, n_ff);
}

int qa_phi3_check(const qa_gguf *g, char *err, size_t el) {
    /* LongRoPE (Phi-3-*-128k, Phi-3.5): per-dimension frequency factors the RoPE op does not take */
    static const char *const factors[] = {"rope_factors_long.weight", "rope_factors_short.weight", "rope_freqs.weight"};
    for (size_t i = 0; i < sizeof factors / sizeof factors[0]; i++)
        if (qa_gguf_find_tensor(g, factors[i])) {
            qa_set_err(err, el, "phi3 with LongRoPE frequency factors (tensor %s) is not supported", factors[i]);
            return QA_ERR_UNSUPPORTED;
        }
    return QA_OK;
}
