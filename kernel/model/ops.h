/* Model ops: matmul over the types table, layer norm, softmax, GELU, encoder attention.
 * No architecture knowledge here: an architecture (arch/<name>.c) strings these together.
 *
 * Every op with a SIMD variant has a scalar reference (the *_ref functions); qa_ops_init
 * picks the variants from the CPU flags of kernel/simd.h, as qa_types_init does for the
 * types. No allocation: callers pass their scratch. */
#ifndef QA_MODEL_OPS_H
#define QA_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"
#include "types.h"

/* A weight matrix read in place: n_out rows of n_in values of one table type. */
typedef struct {
    const qa_type_traits *tt;
    int64_t n_in, n_out;     /* row length (ne[0]) and row count (ne[1]) */
    uint64_t row_bytes;
    const uint8_t *data;
} qa_mat;

/* Row `row` of m as floats (n_in of them), e.g. an embedding lookup. */
void qa_mat_row(const qa_mat *m, int64_t row, float *out);

/* Scratch of qa_matmul for n activation rows: the quantized activations (xq, shared by all
 * threads: n x the largest qa_act_row_bytes of the matrices), and per thread a row buffer of
 * qa_matmul_rowbuf_floats(k) for rows of k values. */
uint64_t qa_matmul_rowbuf_floats(int64_t k);

/* Bytes of xq per token for w: n_in values quantized to its act_type, + their share of a panel
 * where the act type packs (floats for F32). */
uint64_t qa_act_row_bytes(const qa_mat *w);

/* y[t] = W x[t] + b (+ res[t]) for t < n, then GELU if gelu; x and y are n x n_in and
 * n x n_out floats. Rows of W are split over the pool's threads; activations are quantized
 * once per row to W's activation type into xq, or taken as they are in xq when reuse_xq
 * (the previous call quantized the same x to the same activation type). b, res may be NULL;
 * res may be y itself (a residual added in place). rowbuf (per thread
 * qa_matmul_rowbuf_floats(n_in), may be NULL) holds a weight row as floats for F32
 * activations. Each output depends only on its own row: results depend neither on n nor on
 * the threads (the panel, the tile and the single-row dot of a type sum in the same order). */
void qa_matmul(qa_pool *pool, const qa_mat *w, const float *b, const float *x, int n, float *y,
               void *xq, int reuse_xq, const float *res, int gelu, float *rowbuf);
/* The same for nw <= QA_MATMUL_MAX_GROUP matrices of one act_type and n_in reading the same
 * x (q, k, v; gate, up): one quantization of x, one pass over the pool. b[k] may be NULL
 * (b too); res, when given, is added to every output (use it with nw = 1). */
#define QA_MATMUL_MAX_GROUP 8
void qa_matmul_group(qa_pool *pool, int nw, const qa_mat *const *w, const float *const *b, const float *x, int n,
                     float *const *y, void *xq, int reuse_xq, const float *res, int gelu, float *rowbuf);

/* x = (x - mean) / sqrt(var + eps) * w + b over d values */
void qa_layer_norm(float *x, int d, const float *w, const float *b, float eps);
/* x = softmax(x) over n values */
void qa_softmax(float *x, int n);
/* The activations (ops_act.c): the kernel's own polynomials, SIMD variants picked by
 * qa_ops_act_init (from qa_ops_init). */
/* GELU, erf form, in place (dispatched) */
void qa_gelu(float *x, int n);
/* x = exp(x - m) in place (dispatched) */
void qa_exp_sub(float *x, int n, float m);
void qa_gelu_ref(float *x, int n);
void qa_exp_sub_ref(float *x, int n, float m);
void qa_ops_act_init(void);

/* Bidirectional multi-head attention within each of n_seq packed sequences (an encoder):
 * q, k, v, out are T x d floats (T = the sum of seq_len), seq_start[s] the first token of
 * sequence s, heads of d / n_head values. Scratch per thread: qa_attention_scratch_floats. */
uint64_t qa_attention_scratch_floats(int d, int n_head, int max_seq);
void qa_attention_encoder(qa_pool *pool, const float *q, const float *k, const float *v, float *out,
                          int d, int n_head, const int32_t *seq_len, const int32_t *seq_start,
                          int n_seq, int max_seq, float *scratch);

/* Picks the ops' variants from the CPU flags (after qa_cpu_init; again after changing them). */
void qa_ops_init(void);

#endif
