/* Architectures, by the GGUF key general.architecture: one row per architecture (arch.c),
 * each in its own file arch/<name>.c (hyper-parameters, tensor binding, forward pass).
 * A new architecture = its file + one row. Nothing is allocated, so there is no free. */
#ifndef QA_MODEL_ARCH_H
#define QA_MODEL_ARCH_H

#include "model.h"

struct qa_arch {
    const char *name;   /* general.architecture */
    /* arena bytes of the tensor binding (m->weights) */
    uint64_t (*weights_size)(const qa_gguf *g);
    /* reads m->hp from the file (m->hp.n_vocab is the tokenizer's) and binds the tensors
     * into m->weights, checking every shape against the hyper-parameters */
    int (*init)(qa_model *m, const qa_gguf *g, char *err, size_t err_len);
    /* encoders (NULL otherwise): scratch bytes and the pooled forward pass of model.h */
    uint64_t (*scratch_size)(const qa_model *m, int n_tokens, int max_seq, int n_threads);
    int (*encode)(const qa_model *m, qa_pool *pool, const int32_t *ids, const int32_t *seq_len, int n_seq,
                  float *out, float *hidden, void *scratch, uint64_t scratch_size, char *err, size_t err_len);
};

/* The row named by the file's general.architecture, or NULL with err naming it. */
const qa_arch *qa_arch_of(const qa_gguf *g, char *err, size_t err_len);

/* Decoders: one forward (arch/llama.c) whose variants are these flags, one row per
 * architecture in arch.c's table next to the encoders. */
enum {
    QA_DEC_QKV_BIAS = 1,  /* attn_q/k/v.bias (qwen2) */
    QA_DEC_FUSED = 2,     /* attn_qkv and gate+up ffn_up, LongRoPE factor tensors (phi3) */
    QA_DEC_NEOX = 4,      /* RoPE in neox mode (pairs i, i + n_rot/2) */
    QA_DEC_GEMMA = 8,     /* sqrt(width) embedding scale, q/k norms, post-attention / post-ffn
                             norms, GELU gate, sliding window on 5 of 6 layers (gemma3) */
};
/* The decoder row of the file's general.architecture: its name (copied to name, cap bytes)
 * and flags; QA_ERR_UNSUPPORTED with err naming it and listing the decoders otherwise. */
int qa_decoder_arch_of(const qa_gguf *g, char *name, size_t cap, unsigned *flags, char *err, size_t err_len);

/* ---- binding helpers for the architecture files */

/* An integer key in [lo, hi]. */
int qa_bind_u32(const qa_gguf *g, const char *key, uint32_t lo, uint32_t hi, int *out, char *err,
                size_t err_len);
/* A 2-D weight [n_in, n_out] of a type in the types table. */
int qa_bind_mat(const qa_gguf *g, const char *name, int64_t n_in, int64_t n_out, qa_mat *m, char *err,
                size_t err_len);
/* An F32 vector or small matrix [n0, n1]: n1 == n1_min, or >= n1_min when n1 is given (and
 * then set). */
int qa_bind_f32(const qa_gguf *g, const char *name, int64_t n0, int64_t n1_min, int64_t *n1, const float **out,
                char *err, size_t err_len);

#define QA_TRY(x)                     \
    do {                              \
        int rc_ = (x);                \
        if (rc_ != QA_OK) return rc_; \
    } while (0)

#endif
