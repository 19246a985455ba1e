/* A model over a GGUF file: its architecture (arch.h), hyper-parameters, tensors bound in
 * place from the file buffer, and its tokenizer (tokenizer.h).
 *
 * No allocation, no OS calls: the host maps the file and passes the arena for the tensor
 * binding and the vocabulary (qa_model_arena_size) and the scratch of a forward pass
 * (qa_model_scratch_size). */
#ifndef QA_MODEL_H
#define QA_MODEL_H

#include "../gguf/gguf.h"
#include "ops.h"
#include "threads.h"
#include "tokenizer.h"
#include "types.h"

typedef struct qa_arch qa_arch;

typedef struct {
    int n_vocab, n_ctx, n_embd, n_ff, n_layer, n_head, n_head_kv;
    float eps;
    int pooling;          /* encoders: 1 mean, 2 cls */
    int normalize;        /* encoders: L2-normalise the pooled embedding */
    int max_tokens;       /* default truncation: quantann.max_seq_length if the file says, else n_ctx */
} qa_hparams;

typedef struct {
    const qa_arch *arch;
    qa_hparams hp;
    void *weights;        /* the architecture's tensor binding (in the arena) */
    qa_tokenizer tok;     /* the vocabulary (in the arena) */
    const qa_gguf *g;
} qa_model;

/* Arena bytes qa_model_init needs for this file (0 with err set if the architecture or the
 * tokenizer is unsupported or the vocabulary is bad). */
uint64_t qa_model_arena_size(const qa_gguf *g, char *err, size_t err_len);
int qa_model_init(qa_model *m, const qa_gguf *g, void *arena, uint64_t arena_size, char *err,
                  size_t err_len);

/* Token ids of a text (the tokenizer's own special tokens included), at most max_tokens. */
int qa_model_tokenize(const qa_model *m, const uint8_t *text, uint64_t len, int32_t *ids, int max_tokens);

/* Encoders: forward pass for a batch of sequences packed back to back (seq_len[s] tokens of
 * sequence s start at ids + sum(seq_len[:s])); writes n_seq pooled embeddings (n_embd each).
 * If hidden is not NULL it receives the hidden states after the embeddings and after each
 * layer: (n_layer + 1) x n_tokens x n_embd floats. Token ids and lengths are checked, and a
 * non-finite output is an error (QA_ERR_FORMAT: the weights are corrupt), never returned. */
uint64_t qa_model_scratch_size(const qa_model *m, int n_tokens, int max_seq, int n_threads);
int qa_model_encode(const qa_model *m, qa_pool *pool, const int32_t *ids, const int32_t *seq_len, int n_seq,
                    float *out, float *hidden, void *scratch, uint64_t scratch_size, char *err, size_t err_len);

/* Picks the SIMD variants of the types and ops from the CPU flags (kernel/simd.h). */
void qa_model_select_simd(void);

#endif
