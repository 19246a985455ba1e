/* phi3 (Phi-3-mini and its relatives): the llama forward of llama.c over fused matrices.
 * attn_qkv holds the q, k and v rows one after the other, ffn_up the gate rows then the
 * up rows; a weight row is contiguous in every type, so each part is a view of its rows
 * and the shared forward runs unchanged (q/k/v and gate/up are still one matmul group,
 * one pass over the same input). RoPE is neox, with LongRoPE's long or short frequency
 * factors when the file has them (bound in llama.c); attention is global (llama.cpp
 * ignores the sliding window some phi3 files declare). */
#include "phi3.h"

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
