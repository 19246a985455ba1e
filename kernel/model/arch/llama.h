/* Decoder-only transformers of the llama family, read from a GGUF in place:
 * llama (SmolLM2, TinyLlama, Llama 3.x): pre-norm RMSNorm, RoPE (normal mode),
 * grouped-query attention over an fp16 KV cache, SwiGLU feed-forward, tied or separate
 * output matrix. Variants are flags of the same forward:
 *   qwen2   q/k/v biases, RoPE in neox mode
 *   phi3    fused attn_qkv and gate+up ffn_up, split into row views (phi3.c), neox RoPE
 *   gemma3  embeddings scaled by sqrt(width), RMSNorm of q and k per head, norms after
 *           attention and feed-forward too, GELU gate, neox RoPE, sliding-window
 *           attention on 5 of every 6 layers (with their own RoPE base)
 *
 * The host owns every buffer: the KV cache (qa_llama_kv_bytes for n_ctx positions) and
 * the scratch (qa_llama_scratch_bytes for batches of n_batch tokens); eval never
 * allocates. Prompts are evaluated n_batch tokens at a time (matmuls over all tokens of a
 * batch), generation one token at a time. */
#ifndef QA_ARCH_LLAMA_H
#define QA_ARCH_LLAMA_H

#include "../../gguf/gguf.h"
#include "../ops_decoder.h"

#define QA_LLAMA_MAX_LAYERS 256

typedef struct {
    const float *attn_norm, *ffn_norm;
    const float *bq, *bk, *bv; /* NULL unless the architecture has them */
    const float *q_norm, *k_norm, *post_attn_norm, *post_ffn_norm; /* gemma3 */
    qa_dmat q, k, v, o, gate, up, down;
} qa_llama_layer;

typedef struct {
    char arch[32];
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_rot, n_ctx_train;
    float eps, freq_base, freq_scale;
    /* RoPE frequency factors (n_rot / 2 each, NULL when absent): rope_freqs (Llama 3.x), or
     * phi3's LongRoPE pair, long beyond n_ctx_orig positions of context, short within it */
    const float *rope_freqs, *rope_long, *rope_short;
    int n_ctx_orig;
    float rope_mscale; /* rope.scaling.attn_factor: scales each rotation's cos and sin */
    int tied; /* output matrix is the token embedding */
    int neox, gelu;      /* RoPE mode; GELU instead of SiLU gate */
    float embd_scale;    /* token embeddings are multiplied by it (1 = none) */
    float attn_scale;    /* of q.k */
    int n_swa, swa_pattern; /* sliding window on layers with l % swa_pattern < swa_pattern - 1 */
    float freq_base_swa;
    qa_dmat tok_embd, output;
    const float *output_norm;
    qa_llama_layer layers[QA_LLAMA_MAX_LAYERS];
} qa_llama;

/* Reads hyper-parameters and tensors; checks every shape and type. */
int qa_llama_load(qa_llama *m, const qa_gguf *g, char *err, size_t err_len);

typedef struct {
    const qa_llama *m;
    qa_pool *pool;
    int n_ctx, n_batch, n_threads, n_past;
    uint16_t *kv; /* n_layer x {k, v} x n_head_kv x n_ctx x head_dim fp16 */
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *work;
    void *xq;
    float *hidden; /* NULL, or n_layer x n_ctx x n_embd: the residual after each layer, by position (reports) */
    const float *rope_factors; /* the frequency factors this context's size selects (NULL = none) */
} qa_llama_ctx;

uint64_t qa_llama_kv_bytes(const qa_llama *m, int n_ctx);
uint64_t qa_llama_scratch_bytes(const qa_llama *m, int n_batch, int n_ctx, int n_threads);
int qa_llama_ctx_init(qa_llama_ctx *c, const qa_llama *m, qa_pool *pool, int n_ctx, int n_batch,
                      void *kv, uint64_t kv_len, void *scratch, uint64_t scratch_len, char *err, size_t err_len);

/* Appends n tokens at position c->n_past (in batches of n_batch, none of one row when
 * n >= 2: a position's values are then the same however the tokens were split, as long as
 * each call has >= 2 of them) and advances n_past.
 * logits: n_vocab floats for the last token, or n x n_vocab when all is set. Errors:
 * a token id out of range, the context full. */
int qa_llama_eval(qa_llama_ctx *c, const int32_t *tokens, int n, float *logits, int all, char *err, size_t err_len);

/* Keeps the first n cached positions and forgets the rest (a prompt prefix shared with
 * the next prompt is not evaluated again: the next qa_llama_eval appends at n). The KV of
 * a position depends only on the tokens up to it, so what follows is computed as from a
 * cold start. Error: n outside 0..n_past. */
int qa_llama_keep(qa_llama_ctx *c, int n, char *err, size_t err_len);

#endif
