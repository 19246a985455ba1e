/* BERT text encoder over a GGUF file (llama.cpp `bert` layout): tokenizer + forward pass.
 *
 * No allocation, no OS calls: the host maps the file, and passes in the arena for the
 * vocabulary index (qm_model_arena_size) and the scratch for a forward pass
 * (qm_scratch_size). Weights are read in place from the file buffer.
 */
#ifndef QM_MODEL_H
#define QM_MODEL_H

#include "../gguf/gguf.h"
#include "quant.h"
#include "threads.h"

#define QM_MAX_LAYERS 48

typedef struct {
    uint32_t type;        /* qa_ggml_type */
    int64_t n_in, n_out;  /* row length (ne[0]) and row count (ne[1]) */
    uint64_t row_bytes;
    const uint8_t *data;
} qm_mat;

typedef struct {
    qm_mat q, k, v, o, up, down;
    const float *q_b, *k_b, *v_b, *o_b, *up_b, *down_b;
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* attn_output_norm, layer_output_norm */
} qm_layer;

typedef struct {
    int n_vocab, n_ctx, n_embd, n_ff, n_layer, n_head, n_types;
    int pooling;          /* 1 mean, 2 cls */
    int normalize;        /* L2-normalise the pooled embedding */
    float eps;
    int cls_id, sep_id, unk_id, pad_id;
    qm_mat tok_embd;
    const float *pos_embd, *type_embd, *embd_norm_w, *embd_norm_b;
    qm_layer layers[QM_MAX_LAYERS];
    /* vocabulary: strings point into the file; open-addressing hash of ids */
    const uint8_t **tok_str;
    uint32_t *tok_len;
    uint32_t *hash;       /* id + 1, 0 = empty */
    uint32_t hash_mask;
    int n_control;        /* control tokens ([CLS], ...) matched literally in input text */
    uint32_t control_ids[16];
    int max_word_chars;   /* longer words become [UNK] (100, as BERT) */
} qm_model;

/* Arena bytes qm_model_init needs for this file's vocabulary (0 on error). */
uint64_t qm_model_arena_size(const qa_gguf *g);
int qm_model_init(qm_model *m, const qa_gguf *g, void *arena, uint64_t arena_size, char *err,
                  size_t err_len);

/* Token id of a piece (bytes), or -1. */
int qm_vocab_find(const qm_model *m, const uint8_t *s, uint32_t n);

/* WordPiece tokenization of UTF-8 text: [CLS] pieces [SEP], at most max_tokens ids in all
 * (pieces are truncated, [SEP] kept). Returns the number of ids written. Invalid UTF-8
 * bytes are read as U+FFFD (and so removed, as BERT's clean-up does). */
int qm_tokenize(const qm_model *m, const uint8_t *text, uint64_t len, int32_t *ids, int max_tokens);

/* Forward pass for a batch of sequences packed back to back: seq_len[s] tokens of
 * sequence s start at ids + sum(seq_len[:s]). Writes n_seq pooled embeddings (n_embd each).
 * If hidden is not NULL it receives the hidden states after the embeddings and after each
 * layer: (n_layer + 1) x n_tokens x n_embd floats. */
uint64_t qm_scratch_size(const qm_model *m, int n_tokens, int max_seq, int n_threads);
int qm_forward(const qm_model *m, qm_pool *pool, const int32_t *ids, const int32_t *seq_len,
               int n_seq, float *out, float *hidden, void *scratch, uint64_t scratch_size,
               char *err, size_t err_len);

#endif
