/* BERT encoder (llama.cpp's `bert` GGUF layout): embeddings (token + position + token type
 * 0, layer norm), N post-norm layers (self-attention, GELU feed-forward), mean or CLS
 * pooling, L2 normalisation. Sequences of different lengths are packed back to back (no
 * padding): matmuls run over all tokens of the batch, attention within each sequence. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../arch.h"

#define MAX_LAYERS 48

typedef struct {
    qa_mat q, k, v, o, up, down;
    const float *q_b, *k_b, *v_b, *o_b, *up_b, *down_b;
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* attn_output_norm, layer_output_norm */
} bert_layer;

typedef struct {
    qa_mat tok_embd;
    const float *pos_embd, *type_embd, *embd_norm_w, *embd_norm_b;
    bert_layer layers[MAX_LAYERS];
} bert_weights;

static uint64_t weights_size(const qa_gguf *g) {
    (void)g;
    return sizeof(bert_weights);
}

static int init(qa_model *m, const qa_gguf *g, char *err, size_t err_len) {
    qa_hparams *hp = &m->hp;
    bert_weights *w = (bert_weights *)m->weights;
    QA_TRY(qa_bind_u32(g, "bert.embedding_length", 32, 1 << 16, &hp->n_embd, err, err_len));
    QA_TRY(qa_bind_u32(g, "bert.feed_forward_length", 32, 1 << 18, &hp->n_ff, err, err_len));
    QA_TRY(qa_bind_u32(g, "bert.block_count", 1, MAX_LAYERS, &hp->n_layer, err, err_len));
    QA_TRY(qa_bind_u32(g, "bert.attention.head_count", 1, 1024, &hp->n_head, err, err_len));
    QA_TRY(qa_bind_u32(g, "bert.context_length", 2, 1 << 16, &hp->n_ctx, err, err_len));
    hp->n_head_kv = hp->n_head;
    if (hp->n_embd % hp->n_head || hp->n_embd % 32 || hp->n_ff % 32) {
        qa_set_err(err, err_len, "unsupported shape: embedding %d, heads %d, feed-forward %d", hp->n_embd,
                   hp->n_head, hp->n_ff);
        return QA_ERR_UNSUPPORTED;
    }
    if (qa_gguf_get_f32(g, "bert.attention.layer_norm_epsilon", &hp->eps) != QA_OK || !(hp->eps > 0) ||
        !(hp->eps < 1)) {
        qa_set_err(err, err_len, "missing or bad bert.attention.layer_norm_epsilon (0 < eps < 1)");
        return QA_ERR_FORMAT;
    }
    uint32_t pool = 1;
    qa_gguf_get_u32(g, "bert.pooling_type", &pool);
    if (pool != 1 && pool != 2) {
        qa_set_err(err, err_len, "unsupported bert.pooling_type %u (1 mean or 2 cls)", pool);
        return QA_ERR_UNSUPPORTED;
    }
    hp->pooling = (int)pool;
    hp->normalize = 1;
    qa_gguf_get_bool(g, "quantann.normalize", &hp->normalize);

    int64_t D = hp->n_embd, F = hp->n_ff, npos, ntypes;
    QA_TRY(qa_bind_mat(g, "token_embd.weight", D, hp->n_vocab, &w->tok_embd, err, err_len));
    QA_TRY(qa_bind_f32(g, "position_embd.weight", D, 1, &npos, &w->pos_embd, err, err_len));
    if (npos < hp->n_ctx) hp->n_ctx = (int)npos; /* positions beyond the table cannot be embedded */
    if (hp->n_ctx < 2) {
        qa_set_err(err, err_len, "position_embd.weight has %lld rows: no room for [CLS] and [SEP]", (long long)npos);
        return QA_ERR_FORMAT;
    }
    QA_TRY(qa_bind_f32(g, "token_types.weight", D, 1, &ntypes, &w->type_embd, err, err_len));
    QA_TRY(qa_bind_f32(g, "token_embd_norm.weight", D, 1, NULL, &w->embd_norm_w, err, err_len));
    QA_TRY(qa_bind_f32(g, "token_embd_norm.bias", D, 1, NULL, &w->embd_norm_b, err, err_len));
    char name[96];
    for (int l = 0; l < hp->n_layer; l++) {
        bert_layer *L = &w->layers[l];
#define MAT(field, nm, ni, no)                                  \
    qa_format(name, sizeof name, "blk.%d." nm ".weight", l);     \
    QA_TRY(qa_bind_mat(g, name, ni, no, &L->field, err, err_len));
#define VEC(field, nm, suffix, n)                               \
    qa_format(name, sizeof name, "blk.%d." nm "." suffix, l);    \
    QA_TRY(qa_bind_f32(g, name, n, 1, NULL, &L->field, err, err_len));
        MAT(q, "attn_q", D, D) VEC(q_b, "attn_q", "bias", D)
        MAT(k, "attn_k", D, D) VEC(k_b, "attn_k", "bias", D)
        MAT(v, "attn_v", D, D) VEC(v_b, "attn_v", "bias", D)
        MAT(o, "attn_output", D, D) VEC(o_b, "attn_output", "bias", D)
        VEC(ln1_w, "attn_output_norm", "weight", D) VEC(ln1_b, "attn_output_norm", "bias", D)
        MAT(up, "ffn_up", D, F) VEC(up_b, "ffn_up", "bias", F)
        MAT(down, "ffn_down", F, D) VEC(down_b, "ffn_down", "bias", D)
        VEC(ln2_w, "layer_output_norm", "weight", D) VEC(ln2_b, "layer_output_norm", "bias", D)
#undef MAT
#undef VEC
    }
    return QA_OK;
}

/* ---------------------------------------------------------------- forward */

typedef struct {
    float *x, *q, *k, *v, *a, *h, *attn, *rowbuf;
    int32_t *seq_start;
    uint8_t *xq;
} scratch_t;

/* xq bytes per token: the largest quantized activation row of the model's matrices (with the
 * panels of its types where they pack; none: F32 activations are not quantized) */
static uint64_t act_row_most(const qa_model *m) {
    const bert_weights *w = (const bert_weights *)m->weights;
    uint64_t most = 0;
    for (int l = 0; l < m->hp.n_layer; l++) {
        const qa_mat *ms[] = {&w->layers[l].q, &w->layers[l].k, &w->layers[l].v,
                              &w->layers[l].o, &w->layers[l].up, &w->layers[l].down};
        for (int j = 0; j < 6; j++)
            if (ms[j]->tt && ms[j]->tt->act_type != QA_T_F32 && qa_act_row_bytes(ms[j]) > most) most = qa_act_row_bytes(ms[j]);
    }
    return most;
}

static uint64_t carve(const qa_model *m, int T, int max_seq, int nt, uint8_t *base, scratch_t *s) {
    uint64_t D = (uint64_t)m->hp.n_embd, F = (uint64_t)m->hp.n_ff, off = 0;
    uint64_t kmax = F > D ? F : D;
#define TAKE(field, type, count)                                    \
    do {                                                            \
        if (s) s->field = (type *)(base + off);                     \
        off += ((uint64_t)(count) * sizeof(type) + 63) / 64 * 64;   \
    } while (0)
    TAKE(x, float, T * D);
    TAKE(q, float, T * D);
    TAKE(k, float, T * D);
    TAKE(v, float, T * D);
    TAKE(a, float, T * D);
    TAKE(h, float, T * F);
    TAKE(attn, float, (uint64_t)nt * qa_attention_scratch_floats((int)D, m->hp.n_head, max_seq));
    TAKE(rowbuf, float, (uint64_t)nt * qa_matmul_rowbuf_floats((int64_t)kmax));
    TAKE(seq_start, int32_t, T + 1);
    TAKE(xq, uint8_t, (uint64_t)T * act_row_most(m));
#undef TAKE
    return off + 64;
}

static uint64_t scratch_size(const qa_model *m, int n_tokens, int max_seq, int n_threads) {
    if (n_threads < 1) n_threads = 1;
    return carve(m, n_tokens, max_seq, n_threads, NULL, NULL);
}

static int encode(const qa_model *m, qa_pool *pool, const int32_t *ids, const int32_t *seq_len, int n_seq,
                  float *out, float *hidden, void *scratch, uint64_t scratch_size, char *err, size_t err_len) {
    const bert_weights *w = (const bert_weights *)m->weights;
    const qa_hparams *hp = &m->hp;
    int D = hp->n_embd, T = 0, max_seq = 0;
    int nt = pool ? pool->n_threads : 1;
    for (int s = 0; s < n_seq; s++) {
        T += seq_len[s];
        if (seq_len[s] > max_seq) max_seq = seq_len[s];
    }
    scratch_t S;
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    if (carve(m, T, max_seq, nt, base, &S) > scratch_size) {
        qa_set_err(err, err_len, "forward scratch too small");
        return QA_ERR_SPACE;
    }
    for (int s = 0, t = 0; s <= n_seq; s++) {
        S.seq_start[s] = t;
        if (s < n_seq) t += seq_len[s];
    }

    /* embeddings: token + position + token type 0, then layer norm */
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < seq_len[s]; p++) {
            int t = S.seq_start[s] + p;
            float *xr = S.x + (uint64_t)t * D;
            qa_mat_row(&w->tok_embd, ids[t], xr);
            const float *pe = w->pos_embd + (uint64_t)p * D;
            for (int d = 0; d < D; d++) xr[d] += pe[d] + w->type_embd[d];
            qa_layer_norm(xr, D, w->embd_norm_w, w->embd_norm_b, hp->eps);
        }
    if (hidden) memcpy(hidden, S.x, (size_t)T * D * 4);

    for (int l = 0; l < hp->n_layer; l++) {
        const bert_layer *L = &w->layers[l];
        /* q, k, v share one quantization of x when their activation types agree */
        int same_k = L->k.tt->act_type == L->q.tt->act_type;
        int same_v = same_k && L->v.tt->act_type == L->k.tt->act_type;
        qa_matmul(pool, &L->q, L->q_b, S.x, T, S.q, S.xq, 0, NULL, 0, S.rowbuf);
        qa_matmul(pool, &L->k, L->k_b, S.x, T, S.k, S.xq, same_k, NULL, 0, S.rowbuf);
        qa_matmul(pool, &L->v, L->v_b, S.x, T, S.v, S.xq, same_v, NULL, 0, S.rowbuf);
        qa_attention_encoder(pool, S.q, S.k, S.v, S.a, D, hp->n_head, seq_len, S.seq_start, n_seq, max_seq,
                             S.attn);
        /* x = LN(x + attn W_o + b_o) */
        qa_matmul(pool, &L->o, L->o_b, S.a, T, S.q, S.xq, 0, S.x, 0, S.rowbuf);
        for (int t = 0; t < T; t++) qa_layer_norm(S.q + (uint64_t)t * D, D, L->ln1_w, L->ln1_b, hp->eps);
        /* x = LN(x + W_down gelu(W_up x + b_up) + b_down) */
        qa_matmul(pool, &L->up, L->up_b, S.q, T, S.h, S.xq, 0, NULL, 1, S.rowbuf);
        qa_matmul(pool, &L->down, L->down_b, S.h, T, S.x, S.xq, 0, S.q, 0, S.rowbuf);
        for (int t = 0; t < T; t++) qa_layer_norm(S.x + (uint64_t)t * D, D, L->ln2_w, L->ln2_b, hp->eps);
        if (hidden) memcpy(hidden + (uint64_t)(l + 1) * T * D, S.x, (size_t)T * D * 4);
    }

    for (int s = 0; s < n_seq; s++) {
        float *o = out + (uint64_t)s * D;
        const float *xs = S.x + (uint64_t)S.seq_start[s] * D;
        if (hp->pooling == 2) {
            memcpy(o, xs, (size_t)D * 4);
        } else {
            for (int d = 0; d < D; d++) o[d] = 0.0f;
            for (int p = 0; p < seq_len[s]; p++)
                for (int d = 0; d < D; d++) o[d] += xs[(uint64_t)p * D + d];
            for (int d = 0; d < D; d++) o[d] /= (float)seq_len[s];
        }
        if (hp->normalize) {
            double ss = 0.0;
            for (int d = 0; d < D; d++) ss += (double)o[d] * o[d];
            float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (int d = 0; d < D; d++) o[d] *= inv;
        }
    }
    return QA_OK;
}

const qa_arch qa_arch_bert = {"bert", weights_size, init, scratch_size, encode};
