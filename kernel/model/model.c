/* A model over a GGUF file (model.h): the architecture and tokenizer rows chosen by the
 * file's metadata, the arena split between them, and the checks every forward pass gets. */
#include "model.h"

#include <math.h>
#include <string.h>

#include "../simd.h"
#include "arch.h"

#define ALIGN16(n) (((n) + 15) / 16 * 16)

uint64_t qa_model_arena_size(const qa_gguf *g, char *err, size_t err_len) {
    const qa_arch *a = qa_arch_of(g, err, err_len);
    if (!a) return 0;
    const qa_tokenizer_kind *k = qa_tokenizer_kind_of(g, err, err_len);
    if (!k) return 0;
    uint64_t tok = k->arena_size(g);
    if (!tok) {
        qa_set_err(err, err_len, "missing or bad tokenizer.ggml.tokens");
        return 0;
    }
    return 16 + ALIGN16(a->weights_size(g)) + 16 + tok;
}

int qa_model_init(qa_model *m, const qa_gguf *g, void *arena, uint64_t arena_size, char *err,
                  size_t err_len) {
    memset(m, 0, sizeof *m);
    m->g = g;
    if (!(m->arch = qa_arch_of(g, err, err_len))) return QA_ERR_UNSUPPORTED;
    if (!(m->tok.kind = qa_tokenizer_kind_of(g, err, err_len))) return QA_ERR_UNSUPPORTED;
    uint64_t need = qa_model_arena_size(g, err, err_len);
    if (!need) return QA_ERR_FORMAT;
    if (arena_size < need) {
        qa_set_err(err, err_len, "model arena too small");
        return QA_ERR_SPACE;
    }
    uint8_t *a = (uint8_t *)(((uintptr_t)arena + 15) & ~(uintptr_t)15);
    uint64_t wsz = ALIGN16(m->arch->weights_size(g));
    m->weights = a;
    memset(m->weights, 0, wsz);
    m->tok.state = a + wsz;
    QA_TRY(m->tok.kind->init(m->tok.state, g, need - 16 - wsz, err, err_len));
    m->hp.n_vocab = m->tok.kind->n_vocab(m->tok.state);
    QA_TRY(m->arch->init(m, g, err, err_len));
    /* the truncation the model was trained for (sentence-transformers' max_seq_length) */
    uint32_t mt;
    m->hp.max_tokens = m->hp.n_ctx;
    if (qa_gguf_get_u32(g, "quantann.max_seq_length", &mt) == QA_OK && mt >= 2 && mt < (uint32_t)m->hp.n_ctx)
        m->hp.max_tokens = (int)mt;
    return QA_OK;
}

int qa_model_tokenize(const qa_model *m, const uint8_t *text, uint64_t len, int32_t *ids, int max_tokens) {
    return m->tok.kind->encode(m->tok.state, text, len, ids, max_tokens);
}

uint64_t qa_model_scratch_size(const qa_model *m, int n_tokens, int max_seq, int n_threads) {
    return m->arch->scratch_size ? m->arch->scratch_size(m, n_tokens, max_seq, n_threads) : 0;
}

/* 1 if all n floats are finite */
static int all_finite(const float *x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int qa_model_encode(const qa_model *m, qa_pool *pool, const int32_t *ids, const int32_t *seq_len, int n_seq,
                    float *out, float *hidden, void *scratch, uint64_t scratch_size, char *err, size_t err_len) {
    if (!m->arch->encode) {
        qa_set_err(err, err_len, "architecture '%s' is not an encoder", m->arch->name);
        return QA_ERR_UNSUPPORTED;
    }
    uint64_t T = 0;
    for (int s = 0; s < n_seq; s++) {
        if (seq_len[s] < 1 || seq_len[s] > m->hp.n_ctx) {
            qa_set_err(err, err_len, "sequence %d has %d tokens (1..%d allowed)", s, seq_len[s], m->hp.n_ctx);
            return QA_ERR_ARG;
        }
        T += (uint64_t)seq_len[s];
    }
    if (T > INT32_MAX) {
        qa_set_err(err, err_len, "batch of %llu tokens is too large", (unsigned long long)T);
        return QA_ERR_ARG;
    }
    for (uint64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= m->hp.n_vocab) {
            qa_set_err(err, err_len, "token id %d out of range", ids[t]);
            return QA_ERR_ARG;
        }
    int rc = m->arch->encode(m, pool, ids, seq_len, n_seq, out, hidden, scratch, scratch_size, err, err_len);
    if (rc != QA_OK) return rc;
    if (!all_finite(out, (uint64_t)n_seq * (uint64_t)m->hp.n_embd)) {
        qa_set_err(err, err_len, "the model computed a non-finite embedding (NaN or infinity): its weights are "
                                 "corrupt or out of range");
        return QA_ERR_FORMAT;
    }
    return QA_OK;
}

void qa_model_select_simd(void) {
    qa_types_init();
    qa_ops_init();
}
