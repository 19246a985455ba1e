/* Decoder operations: RMSNorm, RoPE, SwiGLU, causal
 * grouped-query attention over an fp16 KV cache, argmax. Generic: no architecture knows
 * about them and they know no architecture. Nothing here allocates; per-thread buffers
 * come from the caller's scratch. */
#ifndef QA_OPS_DECODER_H
#define QA_OPS_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"
#include "ops.h"
#include "types.h"

/* The decoder's matrices and matmul are the model kernel's (ops.h: qa_mat, qa_matmul_group). */
typedef qa_mat qa_dmat;

/* out[t] = x[t] / rms(x[t]) * g, rows of n_embd; out may be x. */
void qa_rmsnorm(const float *x, const float *g, float *out, int n, int n_embd, float eps);
/* Rotates the first n_rot dims of each head of each of the n rows (row t at position
 * pos0 + t): in adjacent pairs (ggml's normal mode) or, with neox, dims i and i + n_rot/2.
 * freq_factors (NULL = none; n_rot / 2 values: LongRoPE, Llama 3 rope_freqs) divide each
 * pair's angle; mscale multiplies its cos and sin (the file's rope.scaling.attn_factor). */
void qa_rope(float *x, int n, int row_stride, int n_heads, int head_dim, int n_rot, int pos0,
             float freq_base, float freq_scale, int neox, const float *freq_factors, float mscale);
/* g = silu(g) * u over rows of n values (exp as ggml's, blocks of 16 from each row start). */
void qa_silu_mul(float *g, const float *u, int rows, int n);
/* g = gelu(g) * u over n values (tanh approximation, as ggml's GELU). */
void qa_gelu_mul(float *g, const float *u, int64_t n);

/* The KV cache of one layer: kv heads x n_ctx positions x head_dim, fp16. */
typedef struct {
    uint16_t *k, *v;
    int n_ctx, n_head_kv, head_dim;
} qa_kv_layer;

/* Stores n rows of k and v (n_head_kv * head_dim floats each) at positions pos0.. */
void qa_kv_store(const qa_kv_layer *kv, const float *k, const float *v, int row_stride, int n, int pos0);
/* Causal attention of n query rows (positions pos0..pos0+n-1; n_head heads of head_dim;
 * q head h reads kv head h / (n_head / n_head_kv)) over cache positions 0..pos, or only
 * the last n_swa of them (a sliding window; 0 = all). out has the query layout. work: per
 * thread qa_attention_work_floats floats. */
void qa_attention(qa_pool *pool, const qa_kv_layer *kv, const float *q, int row_stride, int n, int pos0,
                  int n_head, float scale, int n_swa, float *out, float *work);
uint64_t qa_attention_work_floats(int n_ctx, int head_dim);

int qa_argmax(const float *x, int n);
/* Picks the SIMD variants (after qa_types_init). */
void qa_ops_decoder_init(int avx2);

#endif
