#include "llama_mix.h"

#include <string.h>

/* Every matrix of m, in a fixed order (the output only when it is not the embeddings). */
static int matrices(qa_llama *m, qa_dmat **out) {
    int n = 0;
    out[n++] = &m->tok_embd;
    if (!m->tied) out[n++] = &m->output;
    for (int l = 0; l < m->n_layer; l++) {
        qa_llama_layer *L = &m->layers[l];
        qa_dmat *w[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (int i = 0; i < 7; i++) out[n++] = w[i];
    }
    return n;
}

#define MAX_MATS (2 + 7 * QA_LLAMA_MAX_LAYERS)

uint64_t qa_llama_f32_bytes(const qa_llama *m) {
    qa_dmat *w[MAX_MATS];
    int n = matrices((qa_llama *)m, w);
    uint64_t b = 0;
    for (int i = 0; i < n; i++) b += (uint64_t)w[i]->n_in * w[i]->n_out * sizeof(float);
    return b;
}

void qa_llama_to_f32(qa_llama *m, float *buf) {
    const qa_type_traits *f32 = qa_type_get(QA_T_F32);
    qa_dmat *w[MAX_MATS];
    int n = matrices(m, w);
    for (int i = 0; i < n; i++) {
        qa_dmat *d = w[i];
        for (int64_t r = 0; r < d->n_out; r++) d->tt->to_float(d->data + (uint64_t)r * d->row_bytes, buf + r * d->n_in, d->n_in);
        d->data = (const uint8_t *)buf;
        d->tt = f32;
        d->row_bytes = (uint64_t)d->n_in * sizeof(float);
        buf += (uint64_t)d->n_in * d->n_out;
    }
    if (m->tied) m->output = m->tok_embd;
}

int qa_llama_take(qa_llama *dst, const qa_llama *src, int group, char *err, size_t el) {
    if (strcmp(dst->arch, src->arch) || dst->n_layer != src->n_layer || dst->n_embd != src->n_embd ||
        dst->n_head != src->n_head || dst->n_head_kv != src->n_head_kv || dst->head_dim != src->head_dim ||
        dst->n_ff != src->n_ff || dst->n_vocab != src->n_vocab || dst->tied != src->tied) {
        qa_set_err(err, el, "the two files are not the same model (architecture, shapes or tied output differ)");
        return QA_ERR_ARG;
    }
    if (group >= 0 && group < dst->n_layer) {
        dst->layers[group] = src->layers[group];
    } else if (group == QA_LLAMA_GROUP_TOKEN_EMBD) {
        dst->tok_embd = src->tok_embd;
        if (dst->tied) dst->output = src->output;
    } else if (group == QA_LLAMA_GROUP_OUTPUT && !dst->tied) {
        dst->output = src->output;
        dst->output_norm = src->output_norm;
    } else if (group == QA_LLAMA_GROUP_OUTPUT) {
        qa_set_err(err, el, "the output matrix is the token embeddings (tied): take token_embd");
        return QA_ERR_ARG;
    } else {
        qa_set_err(err, el, "no weight group %d (layers 0..%d)", group, dst->n_layer - 1);
        return QA_ERR_ARG;
    }
    return QA_OK;
}
