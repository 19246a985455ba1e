/* BERT encoder forward pass: embeddings, N x (self-attention, feed-forward) post-norm
 * layers, pooling, L2 normalisation. Sequences of different lengths are packed back to
 * back (no padding): matmuls run over all tokens of the batch, attention within each
 * sequence. Matmuls are split by output rows over the thread pool. */
#include <math.h>
#include <string.h>

#include "model.h"

/* ---------------------------------------------------------------- matmul */

#define TB 32 /* tokens per block: their quantized rows stay in L1 while weight rows stream */

typedef struct {
    const qm_mat *w;
    const float *b, *x, *res;
    int n, gelu;
    float *y;
    const uint8_t *xq;   /* quantized x rows (Q8_0), or NULL for float weights */
    float *rowbuf;       /* per-thread F16 row conversion buffer, n_in floats each */
} mm_ctx;

static void quantize_task(void *c_, int i, int k) {
    mm_ctx *c = (mm_ctx *)c_;
    int lo, hi, K = (int)c->w->n_in;
    uint64_t qrow = (uint64_t)(K / QM_QK) * sizeof(qm_block_q8_0);
    qm_share(c->n, i, k, 1, &lo, &hi);
    for (int t = lo; t < hi; t++)
        qm_k.quantize_q8_0(c->x + (uint64_t)t * K, (qm_block_q8_0 *)(c->xq + t * qrow), K);
}

static void mm_task(void *c_, int i, int k) {
    mm_ctx *c = (mm_ctx *)c_;
    const qm_mat *w = c->w;
    int K = (int)w->n_in, N = (int)w->n_out, nb = K / QM_QK, o0, o1;
    uint64_t qrow = (uint64_t)nb * sizeof(qm_block_q8_0);
    qm_share(N, i, k, 8, &o0, &o1);
    if (o0 >= o1) return;
    float *rb = c->rowbuf ? c->rowbuf + (uint64_t)i * 2 * K : NULL;
    uint8_t *pad = (uint8_t *)rb; /* quantized weights need no F16 row buffer: reuse it */
    for (int t0 = 0; t0 < c->n; t0 += TB) {
        int t1 = t0 + TB < c->n ? t0 + TB : c->n;
        int o = o0;
        if (w->type == QA_T_Q8_0 || w->type == QA_T_Q4_0) { /* 2 x 4 tiles */
            void (*tile)(const uint8_t *, size_t, const uint8_t *, size_t, int, float *) =
                w->type == QA_T_Q8_0 ? qm_k.tile_q8_0 : qm_k.tile_q4_0;
            for (; o + 2 <= o1; o += 2) {
                const uint8_t *wr = w->data + (uint64_t)o * w->row_bytes;
                float b0 = c->b ? c->b[o] : 0.0f, b1 = c->b ? c->b[o + 1] : 0.0f, r[8];
                int t = t0;
                for (; t + 4 <= t1; t += 4) {
                    tile(wr, w->row_bytes, c->xq + t * qrow, qrow, nb, r);
                    for (int j = 0; j < 4; j++) {
                        c->y[(uint64_t)(t + j) * N + o] = b0 + r[j];
                        c->y[(uint64_t)(t + j) * N + o + 1] = b1 + r[4 + j];
                    }
                }
                if (t < t1) { /* 1..3 remainder rows: one tile over a padded copy. Each
                               * output depends only on its own row, so results never
                               * depend on how rows are grouped into tiles. */
                    int nr = t1 - t;
                    for (int j = 0; j < 4; j++)
                        memcpy(pad + j * qrow, c->xq + (t + (j < nr ? j : nr - 1)) * qrow, qrow);
                    tile(wr, w->row_bytes, pad, qrow, nb, r);
                    for (int j = 0; j < nr; j++) {
                        c->y[(uint64_t)(t + j) * N + o] = b0 + r[j];
                        c->y[(uint64_t)(t + j) * N + o + 1] = b1 + r[4 + j];
                    }
                }
            }
        }
        for (; o < o1; o++) {
            const uint8_t *wr = w->data + (uint64_t)o * w->row_bytes;
            float bias = c->b ? c->b[o] : 0.0f;
            switch (w->type) {
            case QA_T_Q8_0:
                for (int t = t0; t < t1; t++)
                    c->y[(uint64_t)t * N + o] = bias + qm_k.dot_q8_0_q8_0((const qm_block_q8_0 *)wr,
                        (const qm_block_q8_0 *)(c->xq + t * qrow), nb);
                break;
            case QA_T_Q4_0:
                for (int t = t0; t < t1; t++)
                    c->y[(uint64_t)t * N + o] = bias + qm_k.dot_q4_0_q8_0((const qm_block_q4_0 *)wr,
                        (const qm_block_q8_0 *)(c->xq + t * qrow), nb);
                break;
            case QA_T_F16:
                qm_k.f16_to_f32((const uint16_t *)wr, rb, K);
                for (int t = t0; t < t1; t++)
                    c->y[(uint64_t)t * N + o] = bias + qm_k.dot_f32(rb, c->x + (uint64_t)t * K, K);
                break;
            default:
                for (int t = t0; t < t1; t++)
                    c->y[(uint64_t)t * N + o] = bias + qm_k.dot_f32((const float *)wr, c->x + (uint64_t)t * K, K);
            }
        }
        for (int t = t0; t < t1; t++) {
            float *yr = c->y + (uint64_t)t * N;
            if (c->res) {
                const float *rr = c->res + (uint64_t)t * N;
                for (int o = o0; o < o1; o++) yr[o] += rr[o];
            }
            if (c->gelu) qm_k.gelu(yr + o0, o1 - o0);
        }
    }
}

static void matmul_ex(qm_pool *pool, const qm_mat *w, const float *b, const float *x, int n,
                      float *y, void *xq, const float *res, int gelu, float *rowbuf, int reuse_xq) {
    mm_ctx c = {w, b, x, res, n, gelu, y, NULL, rowbuf};
    if (w->type == QA_T_Q8_0 || w->type == QA_T_Q4_0) {
        c.xq = (const uint8_t *)xq;
        if (!reuse_xq) {
            mm_ctx qc = c;
            qc.xq = (const uint8_t *)xq;
            qm_pool_run(pool, quantize_task, &qc);
        }
    }
    qm_pool_run(pool, mm_task, &c);
}

/* ---------------------------------------------------------------- small ops */

static void layer_norm(float *x, int D, const float *w, const float *b, float eps) {
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < D; i++) s += x[i];
    float mean = (float)(s / D);
    for (int i = 0; i < D; i++) { float d = x[i] - mean; ss += (double)d * d; }
    float inv = 1.0f / sqrtf((float)(ss / D) + eps);
    for (int i = 0; i < D; i++) x[i] = (x[i] - mean) * inv * w[i] + b[i];
}

static void embed_row(const qm_mat *e, int id, float *out) {
    const uint8_t *r = e->data + (uint64_t)id * e->row_bytes;
    int D = (int)e->n_in;
    switch (e->type) {
    case QA_T_F32: memcpy(out, r, (size_t)D * 4); break;
    case QA_T_F16: qm_k.f16_to_f32((const uint16_t *)r, out, D); break;
    case QA_T_Q8_0: qm_dequantize_q8_0((const qm_block_q8_0 *)r, out, D); break;
    case QA_T_Q4_0: qm_dequantize_q4_0((const qm_block_q4_0 *)r, out, D); break;
    }
}

/* ---------------------------------------------------------------- attention */

typedef struct {
    const qm_model *m;
    const float *q, *k, *v;
    float *out;
    const int32_t *seq_len, *seq_start;
    int n_seq, max_seq;
    float *scores;        /* max_seq floats per thread */
    float *kt;            /* head_dim x max_seq floats per thread: K of one head, transposed */
} attn_ctx;

/* One attention row: s = softmax(q K^T * scale), o = s V. Written as plain loops over
 * contiguous j (scores) and d (output) that the compiler vectorizes; the AVX2 clone runs
 * the same operations in the same order per element, so both give identical results. */
#define ATTN_ROW_BODY                                                             \
    for (int j = 0; j < L; j++) sc[j] = 0.0f;                                     \
    for (int d = 0; d < hd; d++) {                                                \
        const float qd = qi[d] * scale, *kr = kt + (uint64_t)d * L;               \
        for (int j = 0; j < L; j++) sc[j] += qd * kr[j];                          \
    }                                                                             \
    float mx = sc[0];                                                             \
    for (int j = 1; j < L; j++) mx = sc[j] > mx ? sc[j] : mx;                     \
    qm_k.exp_sub(sc, L, mx);                                                      \
    float sum = 0.0f;                                                             \
    for (int j = 0; j < L; j++) sum += sc[j];                                     \
    const float inv = 1.0f / sum;                                                 \
    for (int d = 0; d < hd; d++) o[d] = 0.0f;                                     \
    for (int j = 0; j < L; j++) {                                                 \
        const float pj = sc[j] * inv, *vj = v + (uint64_t)j * D;                  \
        for (int d = 0; d < hd; d++) o[d] += pj * vj[d];                          \
    }

static void attn_row_ref(const float *qi, const float *kt, const float *v, float *sc, float *o,
                         int L, int hd, int D, float scale) {
    ATTN_ROW_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void attn_row_avx2(const float *qi, const float *kt,
        const float *v, float *sc, float *o, int L, int hd, int D, float scale) {
    ATTN_ROW_BODY
}
#endif

static void attn_task(void *c_, int wi, int wk) {
    attn_ctx *c = (attn_ctx *)c_;
    int D = c->m->n_embd, H = c->m->n_head, hd = D / H;
    float scale = 1.0f / sqrtf((float)hd);
    float *sc = c->scores + (uint64_t)wi * c->max_seq;
    float *kt = c->kt + (uint64_t)wi * c->max_seq * hd;
    void (*row)(const float *, const float *, const float *, float *, float *, int, int, int, float) =
        attn_row_ref;
#if defined(__x86_64__)
    if (qm_simd_level() == QM_SIMD_AVX2 || qm_simd_level() == QM_SIMD_AVX512VNNI) row = attn_row_avx2;
#endif
    int n_pairs = c->n_seq * H;
    for (int p = wi; p < n_pairs; p += wk) { /* interleaved: sequences differ in cost */
        int s = p / H, h = p % H, L = c->seq_len[s];
        uint64_t base = (uint64_t)c->seq_start[s] * D + (uint64_t)h * hd;
        for (int j = 0; j < L; j++)
            for (int d = 0; d < hd; d++) kt[(uint64_t)d * L + j] = c->k[base + (uint64_t)j * D + d];
        for (int i = 0; i < L; i++)
            row(c->q + base + (uint64_t)i * D, kt, c->v + base, sc, c->out + base + (uint64_t)i * D, L, hd,
                D, scale);
    }
}

/* ---------------------------------------------------------------- forward */

typedef struct {
    float *x, *q, *k, *v, *a, *h, *scores, *kt, *rowbuf;
    int32_t *seq_start;
    uint8_t *xq;
} scratch_t;

static uint64_t carve(const qm_model *m, int T, int max_seq, int nt, uint8_t *base, scratch_t *s) {
    uint64_t D = (uint64_t)m->n_embd, F = (uint64_t)m->n_ff, off = 0;
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
    TAKE(scores, float, (uint64_t)nt * max_seq);
    TAKE(kt, float, (uint64_t)nt * max_seq * (D / (uint64_t)m->n_head));
    TAKE(rowbuf, float, (uint64_t)nt * 2 * kmax); /* per thread: an F16 row, or 4 padded Q8_0 rows */
    TAKE(seq_start, int32_t, T + 1);
    TAKE(xq, uint8_t, (uint64_t)T * (kmax / QM_QK) * sizeof(qm_block_q8_0));
#undef TAKE
    return off + 64;
}

uint64_t qm_scratch_size(const qm_model *m, int n_tokens, int max_seq, int n_threads) {
    if (n_threads < 1) n_threads = 1;
    return carve(m, n_tokens, max_seq, n_threads, NULL, NULL);
}

int qm_forward(const qm_model *m, qm_pool *pool, const int32_t *ids, const int32_t *seq_len,
               int n_seq, float *out, float *hidden, void *scratch, uint64_t scratch_size,
               char *err, size_t err_len) {
    int D = m->n_embd, F = m->n_ff, T = 0, max_seq = 0;
    int nt = pool ? pool->n_threads : 1;
    for (int s = 0; s < n_seq; s++) {
        if (seq_len[s] < 1 || seq_len[s] > m->n_ctx) {
            qa_set_err(err, err_len, "sequence %d has %d tokens (1..%d allowed)", s, seq_len[s], m->n_ctx);
            return QA_ERR_ARG;
        }
        T += seq_len[s];
        if (seq_len[s] > max_seq) max_seq = seq_len[s];
    }
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= m->n_vocab) {
            qa_set_err(err, err_len, "token id %d out of range", ids[t]);
            return QA_ERR_ARG;
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
            embed_row(&m->tok_embd, ids[t], xr);
            const float *pe = m->pos_embd + (uint64_t)p * D;
            for (int d = 0; d < D; d++) xr[d] += pe[d] + m->type_embd[d];
            layer_norm(xr, D, m->embd_norm_w, m->embd_norm_b, m->eps);
        }
    if (hidden) memcpy(hidden, S.x, (size_t)T * D * 4);

    for (int l = 0; l < m->n_layer; l++) {
        const qm_layer *L = &m->layers[l];
        /* q, k, v share one quantization of x when their types agree */
        matmul_ex(pool, &L->q, L->q_b, S.x, T, S.q, S.xq, NULL, 0, S.rowbuf, 0);
        matmul_ex(pool, &L->k, L->k_b, S.x, T, S.k, S.xq, NULL, 0, S.rowbuf, L->k.type == L->q.type);
        matmul_ex(pool, &L->v, L->v_b, S.x, T, S.v, S.xq, NULL, 0, S.rowbuf,
                  L->v.type == L->k.type && L->k.type == L->q.type);
        attn_ctx ac = {m, S.q, S.k, S.v, S.a, seq_len, S.seq_start, n_seq, max_seq, S.scores, S.kt};
        qm_pool_run(pool, attn_task, &ac);
        /* x = LN(x + attn W_o + b_o) */
        matmul_ex(pool, &L->o, L->o_b, S.a, T, S.q, S.xq, S.x, 0, S.rowbuf, 0);
        for (int t = 0; t < T; t++) layer_norm(S.q + (uint64_t)t * D, D, L->ln1_w, L->ln1_b, m->eps);
        /* x = LN(x + W_down gelu(W_up x + b_up) + b_down) */
        matmul_ex(pool, &L->up, L->up_b, S.q, T, S.h, S.xq, NULL, 1, S.rowbuf, 0);
        matmul_ex(pool, &L->down, L->down_b, S.h, T, S.x, S.xq, S.q, 0, S.rowbuf, 0);
        for (int t = 0; t < T; t++) layer_norm(S.x + (uint64_t)t * D, D, L->ln2_w, L->ln2_b, m->eps);
        if (hidden) memcpy(hidden + (uint64_t)(l + 1) * T * D, S.x, (size_t)T * D * 4);
    }
    (void)F;

    for (int s = 0; s < n_seq; s++) {
        float *o = out + (uint64_t)s * D;
        const float *xs = S.x + (uint64_t)S.seq_start[s] * D;
        if (m->pooling == 2) {
            memcpy(o, xs, (size_t)D * 4);
        } else {
            for (int d = 0; d < D; d++) o[d] = 0.0f;
            for (int p = 0; p < seq_len[s]; p++)
                for (int d = 0; d < D; d++) o[d] += xs[(uint64_t)p * D + d];
            for (int d = 0; d < D; d++) o[d] /= (float)seq_len[s];
        }
        if (m->normalize) {
            double ss = 0.0;
            for (int d = 0; d < D; d++) ss += (double)o[d] * o[d];
            float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (int d = 0; d < D; d++) o[d] *= inv;
        }
    }
    return QA_OK;
}
