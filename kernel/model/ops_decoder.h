/* Decoder operations: matmul over the types table, RMSNorm, RoPE, SwiGLU, causal
 * grouped-query attention over an fp16 KV cache, argmax. Generic: no architecture knows
 * about them and they know no architecture. Nothing here allocates; per-thread buffers
 * come from the caller's scratch. */
#ifndef QA_OPS_DECODER_H
#define QA_OPS_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"
#include "types.h"

/* A weight matrix used in place: n_out rows of n_in values of one type. */
typedef struct {
    const uint8_t *data;
    const qa_type_traits *tt;
    int64_t n_in, n_out;
    uint64_t row_bytes;
} qa_dmat;

/* Bytes of one row of n activations quantized to the act type of w (n floats for F32). */
uint64_t qa_act_row_bytes(const qa_dmat *w);

/* y[t][o] (+)= sum_i w[o][i] x[t][i] for t < n, for each of the nw matrices sharing x
 * (same n_in): one quantization of x into xq, one pass over the pool. add: accumulate
 * into y (a residual) instead of overwriting. bias[k] (may be NULL) is added per output. */
void qa_matmul_group(qa_pool *pool, int nw, const qa_dmat *const *w, float *const *y, const float *const *bias,
               const float *x, int n, void *xq, int add);

/* out[t] = x[t] / rms(x[t]) * g, rows of n_embd; out may be x. */
void qa_rmsnorm(const float *x, const float *g, float *out, int n, int n_embd, float eps);
/* Rotates the first n_rot dims of each head of each of the n rows (row t at position
 * pos0 + t): in adjacent pairs (ggml's normal mode) or, with neox, dims i and i + n_rot/2. */
void qa_rope(float *x, int n, int row_stride, int n_heads, int head_dim, int n_rot, int pos0,
             float freq_base, float freq_scale, int neox);
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
