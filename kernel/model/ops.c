/* Model ops (ops.h). The matmul (encoder and decoder share it) is the hot loop: weight rows
 * stream from the file while a block of TB tokens' quantized activations stays in L1; types
 * with a panel (AVX-512; SIMD128 Q8_0, Q4_1) take a prompt's tokens QA_PANEL_TOKENS (16; 8 in wasm) at
 * a time from activations packed for it (types/panel.h), types with a 2 x 4 tile decode each weight block once for 4 tokens. */
#include "ops.h"

#include <math.h>
#include <string.h>

#include "../simd.h"

/* ---------------------------------------------------------------- dispatch */

typedef void (*attn_row_fn)(const float *, const float *, const float *, float *, float *, int, int, int, float);
static void attn_row_ref(const float *qi, const float *kt, const float *v, float *sc, float *o, int L, int hd,
                         int D, float scale);
static attn_row_fn attn_row = attn_row_ref;

/* ---------------------------------------------------------------- matmul */

#define TB 32 /* tokens per block: their quantized rows stay in L1 while weight rows stream */
#define PREFETCH_ROWS 4 /* single rows: weight rows fetched ahead of the dot product */

typedef struct {
    int nw, n, gelu;
    const qa_mat *const *w;
    const float *const *b;
    float *const *y;
    const float *x, *res;
    const uint8_t *xq;   /* activations quantized to the act_type of the matrices, or NULL for F32 */
    uint64_t qrow;       /* bytes per quantized activation row */
    uint8_t *xp;         /* tokens [0, np) packed in panels (types/panel.h), or NULL */
    int np;
    uint64_t pbytes;     /* bytes per panel */
    float *rowbuf;       /* per thread: a weight row as floats (NULL: dot F32 activations directly) */
    const qa_type_traits *f32;
} mm_ctx;

/* Bytes per token of activations of act type a packed in panels (0: a does not pack). */
static uint64_t panel_row_bytes(const qa_type_traits *a, int64_t k) {
    return a && a->panel_block ? (uint64_t)(k / a->blck) * (uint64_t)a->panel_block / QA_PANEL_TOKENS : 0;
}

/* xq holds the panels first (64-byte aligned when xq is), then every token's row. */
static uint64_t act_row_bytes(uint32_t act_type, int64_t k) {
    return qa_ggml_row_bytes(act_type, k) + panel_row_bytes(qa_type_get(act_type), k);
}

uint64_t qa_matmul_rowbuf_floats(int64_t k) { return 2 * (uint64_t)k; }

uint64_t qa_act_row_bytes(const qa_mat *w) {
    if (w->tt->act_type == QA_T_F32) return (uint64_t)w->n_in * sizeof(float);
    return act_row_bytes(w->tt->act_type, w->n_in);
}

void qa_mat_row(const qa_mat *m, int64_t row, float *out) {
    m->tt->to_float(m->data + (uint64_t)row * m->row_bytes, out, m->n_in);
}

static void quantize_task(void *c_, int i, int k, int th) {
    (void)th;
    mm_ctx *c = (mm_ctx *)c_;
    int lo, hi;
    int64_t K = c->w[0]->n_in;
    const qa_type_traits *tt = c->w[0]->tt;
    qa_share(c->n, i, k, 1, &lo, &hi);
    for (int t = lo; t < hi; t++) {
        uint8_t *row = (uint8_t *)c->xq + t * c->qrow;
        tt->quantize_act(c->x + (uint64_t)t * K, row, K);
        if (t < c->np) tt->pack_act(row, t % QA_PANEL_TOKENS, c->xp + (uint64_t)(t / QA_PANEL_TOKENS) * c->pbytes, K);
    }
}

/* Where one matrix's outputs go: the context's fields copied once into locals (stores to y
 * could alias them, so read through the context they would be read again per output). */
typedef struct {
    float *y;
    const float *b, *res;
    uint64_t n_out;
} mm_out;

/* y = dot (+ bias) (+ res): res is read before y is written, so it may be y itself */
static inline void put(const mm_out *d, int t, int o, float v) {
    uint64_t at = (uint64_t)t * d->n_out + o;
    if (d->b) v = d->b[o] + v;
    if (d->res) v = v + d->res[at];
    d->y[at] = v;
}

/* put() for a panel's outputs: rows o, o + 1 of tokens t .. t + QA_PANEL_TOKENS - 1 (r as the
 * panel writes it) */
static void put_panel(const mm_out *d, int t, int o, const float *r) {
    float *y = d->y;
    const float *b = d->b, *res = d->res;
    const uint64_t N = d->n_out;
    const float b0 = b ? b[o] : 0.0f, b1 = b ? b[o + 1] : 0.0f;
    for (int j = 0; j < QA_PANEL_TOKENS; j++) {
        uint64_t at = (uint64_t)(t + j) * N + o;
        float v0 = r[j], v1 = r[QA_PANEL_TOKENS + j];
        if (b) {
            v0 = b0 + v0;
            v1 = b1 + v1;
        }
        if (res) {
            v0 = v0 + res[at];
            v1 = v1 + res[at + 1];
        }
        y[at] = v0;
        y[at + 1] = v1;
    }
}

static void mm_task(void *c_, int i, int k, int th) {
    mm_ctx *c = (mm_ctx *)c_;
    for (int kw = 0; kw < c->nw; kw++) {
        const qa_mat *w = c->w[kw];
        const qa_type_traits *tt = w->tt;
        int64_t K = w->n_in;
        int N = (int)w->n_out, o0, o1;
        uint64_t qrow = c->qrow;
        qa_share(N, i, k, 8, &o0, &o1);
        if (o0 >= o1) continue;
        const mm_out d = {c->y[kw], c->b[kw], c->res, (uint64_t)N};
        const uint8_t *xq = c->xq;
        float *rb = c->rowbuf ? c->rowbuf + (uint64_t)th * qa_matmul_rowbuf_floats(K) : NULL;
        /* tokens [0, tp) in panels of 2 rows x QA_PANEL_TOKENS; the rest below */
        int tp = tt->panel ? c->np : 0;
        for (int t0 = 0; t0 < tp; t0 += TB) {
            int t1 = t0 + TB < tp ? t0 + TB : tp, o = o0;
            for (; o + 2 <= o1; o += 2) {
                const uint8_t *wr = w->data + (uint64_t)o * w->row_bytes;
                float r[2 * QA_PANEL_TOKENS];
                for (int t = t0; t < t1; t += QA_PANEL_TOKENS) {
                    tt->panel(K, wr, w->row_bytes, c->xp + (uint64_t)(t / QA_PANEL_TOKENS) * c->pbytes, r);
                    put_panel(&d, t, o, r);
                }
            }
            for (; o < o1; o++) /* an odd last row */
                for (int t = t0; t < t1; t++)
                    put(&d, t, o, tt->vec_dot(K, w->data + (uint64_t)o * w->row_bytes, xq + t * qrow));
            if (c->gelu)
                for (int t = t0; t < t1; t++) qa_gelu(c->y[kw] + (uint64_t)t * N + o0, o1 - o0);
        }
        /* 2 x 4 tiles from 4 tokens on; each type's panel and tile sum in its single-row dot's
         * order, so results depend neither on n nor on the threads */
        int tiles = c->xq && tt->tile && c->n - tp >= 4, r4 = c->xq && tt->rows4 != NULL;
        for (int t0 = tp; t0 < c->n; t0 += TB) {
            int t1 = t0 + TB < c->n ? t0 + TB : c->n, tt1 = tiles ? t0 + (t1 - t0) / 4 * 4 : t0;
            int o = o0;
            if (tt1 > t0)
                for (; o + 2 <= o1; o += 2) {
                    const uint8_t *wr = w->data + (uint64_t)o * w->row_bytes;
                    float r[8];
                    for (int t = t0; t < tt1; t += 4) {
                        tt->tile(K, wr, w->row_bytes, xq + t * qrow, qrow, r);
                        for (int j = 0; j < 4; j++) {
                            put(&d, t + j, o, r[j]);
                            put(&d, t + j, o + 1, r[4 + j]);
                        }
                    }
                    for (int t = tt1; t < t1 && !r4; t++) {
                        put(&d, t, o, tt->vec_dot(K, wr, xq + t * qrow));
                        put(&d, t, o + 1, tt->vec_dot(K, wr + w->row_bytes, xq + t * qrow));
                    }
                }
            if (r4 && tt1 < t1) { /* the tokens no tile took (all when decoding): 4 rows per pass */
                int oe = tt1 > t0 ? o : o1, q = o0; /* rows [o0, oe) lack tokens [tt1, t1) */
                for (; q + 4 <= oe; q += 4) {
                    const uint8_t *wr = w->data + (uint64_t)q * w->row_bytes;
                    float r[4];
                    for (int t = tt1; t < t1; t++) {
                        tt->rows4(K, wr, w->row_bytes, xq + t * qrow, r);
                        for (int j = 0; j < 4; j++) put(&d, t, q + j, r[j]);
                    }
                }
                if (tt1 == t0) o = q; /* the rest (all tokens) below */
                else
                    for (; q < oe; q++)
                        for (int t = tt1; t < t1; t++) put(&d, t, q, tt->vec_dot(K, w->data + (uint64_t)q * w->row_bytes, xq + t * qrow));
            }
            for (; o < o1; o++) {
                const uint8_t *wr = w->data + (uint64_t)o * w->row_bytes;
                if (o + PREFETCH_ROWS < o1) /* weights stream from memory once per token */
                    for (uint64_t bb = 0; bb < w->row_bytes; bb += 64) __builtin_prefetch(wr + PREFETCH_ROWS * w->row_bytes + bb);
                if (c->xq) { /* quantized activations */
                    for (int t = t0; t < t1; t++) put(&d, t, o, tt->vec_dot(K, wr, xq + t * qrow));
                } else if (tt->type != QA_T_F32 && rb) { /* float activations, other weights: one row as F32 */
                    tt->to_float(wr, rb, K);
                    for (int t = t0; t < t1; t++) put(&d, t, o, c->f32->vec_dot(K, rb, c->x + (uint64_t)t * K));
                } else {
                    for (int t = t0; t < t1; t++) put(&d, t, o, tt->vec_dot(K, wr, c->x + (uint64_t)t * K));
                }
            }
            if (c->gelu)
                for (int t = t0; t < t1; t++) qa_gelu(c->y[kw] + (uint64_t)t * N + o0, o1 - o0);
        }
    }
}

void qa_matmul_group(qa_pool *pool, int nw, const qa_mat *const *w, const float *const *b, const float *x, int n,
                     float *const *y, void *xq, int reuse_xq, const float *res, int gelu, float *rowbuf) {
    static const float *const nobias[QA_MATMUL_MAX_GROUP] = {0};
    mm_ctx c = {nw, n, gelu, w, b ? b : nobias, y, x, res, NULL, 0, NULL, 0, 0, rowbuf, qa_type_get(QA_T_F32)};
    if (w[0]->tt->act_type != QA_T_F32) {
        const qa_type_traits *tt = w[0]->tt;
        int panels = 0;
        for (int i = 0; i < nw; i++) panels |= w[i]->tt->panel != NULL;
        if (panels && tt->pack_act && n >= QA_PANEL_TOKENS) { /* the panels first, then the rows */
            c.np = n / QA_PANEL_TOKENS * QA_PANEL_TOKENS;
            c.xp = (uint8_t *)xq;
            c.pbytes = panel_row_bytes(qa_type_get(tt->act_type), w[0]->n_in) * QA_PANEL_TOKENS;
        }
        c.xq = (const uint8_t *)xq + (uint64_t)c.np / QA_PANEL_TOKENS * c.pbytes;
        c.qrow = qa_ggml_row_bytes(w[0]->tt->act_type, w[0]->n_in);
        if (!reuse_xq) {
            if (n == 1)
                quantize_task(&c, 0, 1, 0); /* one row: not worth a pool round */
            else
                qa_pool_run(pool, quantize_task, &c);
        }
    }
    qa_pool_run(pool, mm_task, &c);
}

void qa_matmul(qa_pool *pool, const qa_mat *w, const float *b, const float *x, int n, float *y,
               void *xq, int reuse_xq, const float *res, int gelu, float *rowbuf) {
    qa_matmul_group(pool, 1, &w, &b, x, n, &y, xq, reuse_xq, res, gelu, rowbuf);
}

/* ---------------------------------------------------------------- norms, activations */

void qa_layer_norm(float *x, int D, const float *w, const float *b, float eps) {
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < D; i++) s += x[i];
    float mean = (float)(s / D);
    for (int i = 0; i < D; i++) { float d = x[i] - mean; ss += (double)d * d; }
    float inv = 1.0f / sqrtf((float)(ss / D) + eps);
    for (int i = 0; i < D; i++) x[i] = (x[i] - mean) * inv * w[i] + b[i];
}

void qa_softmax(float *x, int n) {
    float mx = x[0], sum = 0.0f;
    for (int j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    qa_exp_sub(x, n, mx);
    for (int j = 0; j < n; j++) sum += x[j];
    const float inv = 1.0f / sum;
    for (int j = 0; j < n; j++) x[j] *= inv;
}


/* ---------------------------------------------------------------- attention */

typedef struct {
    const float *q, *k, *v;
    float *out;
    const int32_t *seq_len, *seq_start;
    int n_seq, max_seq, D, H;
    float *scratch;
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
    qa_exp_sub(sc, L, mx);                                                        \
    float sum = 0.0f;                                                             \
    for (int j = 0; j < L; j++) sum += sc[j];                                     \
    const float inv = 1.0f / sum;                                                 \
    for (int d = 0; d < hd; d++) o[d] = 0.0f;                                     \
    for (int j = 0; j < L; j++) {                                                 \
        const float pj = sc[j] * inv, *vj = v + (uint64_t)j * D;                  \
        for (int d = 0; d < hd; d++) o[d] += pj * vj[d];                          \
    }

static void attn_row_ref(const float *qi, const float *kt, const float *v, float *sc, float *o, int L, int hd,
                         int D, float scale) {
    ATTN_ROW_BODY
}

#if defined(QA_X86)
__attribute__((target("avx2,fma"))) static void attn_row_avx2(const float *qi, const float *kt, const float *v,
                                                             float *sc, float *o, int L, int hd, int D,
                                                             float scale) {
    ATTN_ROW_BODY
}
#endif

uint64_t qa_attention_scratch_floats(int d, int n_head, int max_seq) {
    return (uint64_t)max_seq + (uint64_t)max_seq * (uint64_t)(d / n_head);
}

static void attn_task(void *c_, int wi, int wk, int th) {
    attn_ctx *c = (attn_ctx *)c_;
    int D = c->D, H = c->H, hd = D / H;
    float scale = 1.0f / sqrtf((float)hd);
    float *sc = c->scratch + (uint64_t)th * qa_attention_scratch_floats(D, H, c->max_seq);
    float *kt = sc + c->max_seq; /* K of one head, transposed: hd x L */
    int n_pairs = c->n_seq * H;
    for (int p = wi; p < n_pairs; p += wk) { /* interleaved: sequences differ in cost */
        int s = p / H, h = p % H, L = c->seq_len[s];
        uint64_t base = (uint64_t)c->seq_start[s] * D + (uint64_t)h * hd;
        for (int j = 0; j < L; j++)
            for (int d = 0; d < hd; d++) kt[(uint64_t)d * L + j] = c->k[base + (uint64_t)j * D + d];
        for (int i = 0; i < L; i++)
            attn_row(c->q + base + (uint64_t)i * D, kt, c->v + base, sc, c->out + base + (uint64_t)i * D, L, hd, D,
                     scale);
    }
}

void qa_attention_encoder(qa_pool *pool, const float *q, const float *k, const float *v, float *out,
                          int d, int n_head, const int32_t *seq_len, const int32_t *seq_start,
                          int n_seq, int max_seq, float *scratch) {
    attn_ctx c = {q, k, v, out, seq_len, seq_start, n_seq, max_seq, d, n_head, scratch};
    qa_pool_run(pool, attn_task, &c);
}

void qa_ops_init(void) {
    qa_ops_act_init();
    attn_row = attn_row_ref;
#if defined(QA_X86)
    if (qa_have_avx2 && qa_have_fma_f16c) {
        attn_row = attn_row_avx2;
    }
#endif
}
