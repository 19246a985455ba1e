#include "llama.h"
#include "phi3.h"
#include "../arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- loading */

static int get_str(const qa_gguf *g, const char *key, char *out, size_t cap) {
    const qa_gguf_kv *e = qa_gguf_find_kv(g, key);
    if (!e || e->type != QA_GV_STRING) return QA_ERR_FORMAT;
    uint64_t len;
    memcpy(&len, e->val, 8); /* little endian hosts (x86-64, wasm32) */
    if (len >= cap) return QA_ERR_FORMAT;
    memcpy(out, e->val + 8, (size_t)len);
    out[len] = 0;
    return QA_OK;
}

static int key_u32(const qa_gguf *g, const char *arch, const char *name, int *out, int dflt, char *err, size_t el) {
    char key[128];
    uint32_t v;
    qa_format(key, sizeof key, "%s.%s", arch, name);
    if (qa_gguf_get_u32(g, key, &v) != QA_OK) {
        if (dflt < 0) {
            qa_set_err(err, el, "missing or bad %s", key);
            return QA_ERR_FORMAT;
        }
        v = (uint32_t)dflt;
    }
    if (v > (1u << 24)) {
        qa_set_err(err, el, "%s = %u is out of range", key, v);
        return QA_ERR_FORMAT;
    }
    *out = (int)v;
    return QA_OK;
}

static float key_f32(const qa_gguf *g, const char *arch, const char *name, float dflt) {
    char key[128];
    float v;
    qa_format(key, sizeof key, "%s.%s", arch, name);
    return qa_gguf_get_f32(g, key, &v) == QA_OK ? v : dflt;
}

static const char *type_name(uint32_t t) {
    const qa_type_traits *tt = qa_type_get(t);
    static const char *names[QA_T_COUNT] = {[QA_T_Q4_K] = "Q4_K", [QA_T_Q5_K] = "Q5_K", [QA_T_Q6_K] = "Q6_K",
        [QA_T_Q2_K] = "Q2_K", [QA_T_Q3_K] = "Q3_K", [QA_T_Q5_0] = "Q5_0", [QA_T_Q5_1] = "Q5_1", [QA_T_BF16] = "BF16",
        [QA_T_Q4_0] = "Q4_0", [QA_T_F16] = "F16"};
    if (tt) return tt->name;
    return t < QA_T_COUNT && names[t] ? names[t] : "unknown";
}

/* A matrix tensor of n_out rows of n_in values whose type the matmul computes with. */
static int get_mat(const qa_gguf *g, const char *name, int64_t n_in, int64_t n_out, qa_dmat *w, int optional,
                   char *err, size_t el) {
    const qa_gguf_tensor *t = qa_gguf_find_tensor(g, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (optional) return QA_OK;
        qa_set_err(err, el, "missing tensor %s", name);
        return QA_ERR_FORMAT;
    }
    if (t->n_dims > 2 || t->ne[0] != n_in || (t->n_dims == 2 ? t->ne[1] : 1) != n_out) {
        qa_set_err(err, el, "tensor %s has shape [%lld, %lld], expected [%lld, %lld]", name, (long long)t->ne[0],
                   (long long)(t->n_dims == 2 ? t->ne[1] : 1), (long long)n_in, (long long)n_out);
        return QA_ERR_FORMAT;
    }
    const qa_type_traits *tt = qa_type_get(t->type);
    if (!tt || !tt->vec_dot || (tt->act_type != QA_T_F32 && !qa_type_get(tt->act_type))) {
        qa_set_err(err, el, "tensor %s has type %s (ggml type %u), which the decoder does not support", name,
                   type_name(t->type), t->type);
        return QA_ERR_UNSUPPORTED;
    }
    if (n_in % tt->blck || (tt->act_type != QA_T_F32 && n_in % qa_type_get(tt->act_type)->blck)) {
        qa_set_err(err, el, "tensor %s: rows of %lld values are not whole %s blocks", name, (long long)n_in, tt->name);
        return QA_ERR_FORMAT;
    }
    w->data = t->data;
    w->tt = tt;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = qa_ggml_row_bytes(t->type, n_in);
    return QA_OK;
}

/* An F32 vector of n values (norm weights, biases). */
static int get_vec(const qa_gguf *g, const char *name, int64_t n, const float **out, int optional, char *err,
                   size_t el) {
    const qa_gguf_tensor *t = qa_gguf_find_tensor(g, name);
    *out = NULL;
    if (!t) {
        if (optional) return QA_OK;
        qa_set_err(err, el, "missing tensor %s", name);
        return QA_ERR_FORMAT;
    }
    if (t->type != QA_T_F32 || t->n_dims != 1 || t->ne[0] != n) {
        qa_set_err(err, el, "tensor %s must be F32 of %lld values", name, (long long)n);
        return QA_ERR_FORMAT;
    }
    if (((uintptr_t)t->data & 3) != 0) {
        qa_set_err(err, el, "tensor %s is not 4-byte aligned", name);
        return QA_ERR_FORMAT;
    }
    *out = (const float *)t->data;
    return QA_OK;
}

#define TRY(x)                   \
    do {                         \
        int rc_ = (x);           \
        if (rc_) return rc_;     \
    } while (0)

int qa_llama_load(qa_llama *m, const qa_gguf *g, char *err, size_t el) {
    memset(m, 0, sizeof *m);
    unsigned flags; /* the architecture's row (arch.c) */
    TRY(qa_decoder_arch_of(g, m->arch, sizeof m->arch, &flags, err, el));
    const int qwen2 = (flags & QA_DEC_QKV_BIAS) != 0, gemma3 = (flags & QA_DEC_GEMMA) != 0,
              phi3 = (flags & QA_DEC_FUSED) != 0;
    const char *a = m->arch;
    TRY(key_u32(g, a, "embedding_length", &m->n_embd, -1, err, el));
    TRY(key_u32(g, a, "block_count", &m->n_layer, -1, err, el));
    TRY(key_u32(g, a, "feed_forward_length", &m->n_ff, -1, err, el));
    TRY(key_u32(g, a, "attention.head_count", &m->n_head, -1, err, el));
    TRY(key_u32(g, a, "attention.head_count_kv", &m->n_head_kv, m->n_head, err, el));
    TRY(key_u32(g, a, "context_length", &m->n_ctx_train, 2048, err, el));
    if (m->n_head <= 0 || m->n_head_kv <= 0 || m->n_head % m->n_head_kv || m->n_embd % m->n_head ||
        m->n_layer <= 0 || m->n_layer > QA_LLAMA_MAX_LAYERS || m->n_ff <= 0) {
        qa_set_err(err, el, "bad hyper-parameters: %d layers, width %d, %d heads, %d kv heads, ffn %d", m->n_layer,
                   m->n_embd, m->n_head, m->n_head_kv, m->n_ff);
        return QA_ERR_FORMAT;
    }
    TRY(key_u32(g, a, "attention.key_length", &m->head_dim, m->n_embd / m->n_head, err, el));
    int vlen;
    TRY(key_u32(g, a, "attention.value_length", &vlen, m->head_dim, err, el));
    if (vlen != m->head_dim) {
        qa_set_err(err, el, "key length %d != value length %d is not supported", m->head_dim, vlen);
        return QA_ERR_UNSUPPORTED;
    }
    TRY(key_u32(g, a, "rope.dimension_count", &m->n_rot, m->head_dim, err, el));
    if (m->head_dim <= 0 || m->head_dim % 2 || m->n_rot > m->head_dim || m->n_rot % 2) {
        qa_set_err(err, el, "bad head size %d / rotary dims %d", m->head_dim, m->n_rot);
        return QA_ERR_FORMAT;
    }
    m->eps = key_f32(g, a, "attention.layer_norm_rms_epsilon", 1e-5f);
    m->freq_base = key_f32(g, a, "rope.freq_base", 10000.0f);
    m->freq_scale = 1.0f;
    float factor = key_f32(g, a, "rope.scaling.factor", 0.0f);
    char stype[32] = "", key[96];
    qa_format(key, sizeof key, "%s.rope.scaling.type", a);
    if (qa_gguf_find_kv(g, key) && get_str(g, key, stype, sizeof stype)) {
        qa_set_err(err, el, "bad %s (a short string expected)", key);
        return QA_ERR_FORMAT;
    }
    /* none / linear (a frequency scale), and phi3's longrope (its factor tensors, below);
     * yarn and any other scaling would be computed wrong, so such files are refused */
    if (stype[0] && strcmp(stype, "none") && strcmp(stype, "linear") && !(phi3 && !strcmp(stype, "longrope"))) {
        qa_set_err(err, el, "RoPE scaling type '%s' is not supported (supported: none, linear%s)", stype,
                   phi3 ? ", longrope" : "");
        return QA_ERR_UNSUPPORTED;
    }
    if (factor > 0.0f && strcmp(stype, "none")) m->freq_scale = 1.0f / factor;
    m->rope_mscale = key_f32(g, a, "rope.scaling.attn_factor", 1.0f);
    TRY(key_u32(g, a, "rope.scaling.original_context_length", &m->n_ctx_orig, m->n_ctx_train, err, el));
    m->neox = (flags & QA_DEC_NEOX) != 0;
    m->gelu = gemma3;
    m->embd_scale = gemma3 ? sqrtf((float)m->n_embd) : 1.0f;
    m->attn_scale = 1.0f / sqrtf((float)m->head_dim);
    m->freq_base_swa = m->freq_base;
    if (gemma3) { /* as llama.cpp: every 6th layer global, the others a window with base 10000 */
        TRY(key_u32(g, a, "attention.sliding_window", &m->n_swa, 0, err, el));
        m->swa_pattern = 6;
        m->freq_base_swa = 10000.0f;
    }

    const qa_gguf_tensor *te = qa_gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->n_dims != 2 || te->ne[0] != m->n_embd || te->ne[1] <= 0 || te->ne[1] > (1 << 24)) {
        qa_set_err(err, el, "missing or bad tensor token_embd.weight");
        return QA_ERR_FORMAT;
    }
    m->n_vocab = (int)te->ne[1];
    int64_t d = m->n_embd, dq = (int64_t)m->n_head * m->head_dim, dkv = (int64_t)m->n_head_kv * m->head_dim;
    TRY(get_mat(g, "token_embd.weight", d, m->n_vocab, &m->tok_embd, 0, err, el));
    TRY(get_mat(g, "output.weight", d, m->n_vocab, &m->output, 1, err, el));
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied = 1;
    }
    TRY(get_vec(g, "output_norm.weight", d, &m->output_norm, 0, err, el));
    TRY(get_vec(g, "rope_freqs.weight", m->n_rot / 2, &m->rope_freqs, 1, err, el));
    if (phi3) { /* LongRoPE (the 128k variants, Phi-3.5) */
        TRY(get_vec(g, "rope_factors_long.weight", m->n_rot / 2, &m->rope_long, 1, err, el));
        TRY(get_vec(g, "rope_factors_short.weight", m->n_rot / 2, &m->rope_short, 1, err, el));
    }
    for (int i = 0; i < m->n_layer; i++) {
        qa_llama_layer *L = &m->layers[i];
        char n[96];
#define NAME(s) (qa_format(n, sizeof n, "blk.%d." s, i), n)
        TRY(get_vec(g, NAME("attn_norm.weight"), d, &L->attn_norm, 0, err, el));
        TRY(get_vec(g, NAME("ffn_norm.weight"), d, &L->ffn_norm, 0, err, el));
        if (phi3) { /* fused q/k/v and gate/up: row views (phi3.c) */
            qa_dmat qkv, gate_up;
            TRY(get_mat(g, NAME("attn_qkv.weight"), d, dq + 2 * dkv, &qkv, 0, err, el));
            TRY(get_mat(g, NAME("ffn_up.weight"), d, 2 * (int64_t)m->n_ff, &gate_up, 0, err, el));
            qa_phi3_split(L, &qkv, &gate_up, dq, dkv, m->n_ff);
        } else {
            TRY(get_mat(g, NAME("attn_q.weight"), d, dq, &L->q, 0, err, el));
            TRY(get_mat(g, NAME("attn_k.weight"), d, dkv, &L->k, 0, err, el));
            TRY(get_mat(g, NAME("attn_v.weight"), d, dkv, &L->v, 0, err, el));
            TRY(get_mat(g, NAME("ffn_gate.weight"), d, m->n_ff, &L->gate, 0, err, el));
            TRY(get_mat(g, NAME("ffn_up.weight"), d, m->n_ff, &L->up, 0, err, el));
        }
        TRY(get_mat(g, NAME("attn_output.weight"), dq, d, &L->o, 0, err, el));
        TRY(get_mat(g, NAME("ffn_down.weight"), m->n_ff, d, &L->down, 0, err, el));
        TRY(get_vec(g, NAME("attn_q.bias"), dq, &L->bq, !qwen2, err, el));
        TRY(get_vec(g, NAME("attn_k.bias"), dkv, &L->bk, !qwen2, err, el));
        TRY(get_vec(g, NAME("attn_v.bias"), dkv, &L->bv, !qwen2, err, el));
        TRY(get_vec(g, NAME("attn_q_norm.weight"), m->head_dim, &L->q_norm, !gemma3, err, el));
        TRY(get_vec(g, NAME("attn_k_norm.weight"), m->head_dim, &L->k_norm, !gemma3, err, el));
        TRY(get_vec(g, NAME("post_attention_norm.weight"), d, &L->post_attn_norm, !gemma3, err, el));
        TRY(get_vec(g, NAME("post_ffw_norm.weight"), d, &L->post_ffn_norm, !gemma3, err, el));
#undef NAME
    }
    return QA_OK;
}

/* ---------------------------------------------------------------- context */

#define ALIGN(x) (((x) + 63) & ~(uint64_t)63)

uint64_t qa_llama_kv_bytes(const qa_llama *m, int n_ctx) {
    return (uint64_t)m->n_layer * 2 * m->n_head_kv * (uint64_t)n_ctx * m->head_dim * sizeof(uint16_t);
}

static uint64_t max_act_row(const qa_llama *m) {
    uint64_t r = qa_act_row_bytes(&m->output);
    for (int i = 0; i < m->n_layer; i++) {
        const qa_dmat *ws[] = {&m->layers[i].q, &m->layers[i].k, &m->layers[i].v, &m->layers[i].o,
                               &m->layers[i].gate, &m->layers[i].up, &m->layers[i].down};
        for (int j = 0; j < 7; j++)
            if (qa_act_row_bytes(ws[j]) > r) r = qa_act_row_bytes(ws[j]);
    }
    return r;
}

/* Scratch layout: x, xn (n_embd), q, att (n_head * head_dim), k, v (n_head_kv * head_dim),
 * gate, up (n_ff) floats per token; quantized activations per token; attention work per thread. */
static uint64_t layout(const qa_llama *m, int nb, int n_ctx, int nt, uint64_t off[11]) {
    uint64_t dq = (uint64_t)m->n_head * m->head_dim, dkv = (uint64_t)m->n_head_kv * m->head_dim;
    uint64_t sz[11] = {m->n_embd, m->n_embd, dq, dkv, dkv, dq, m->n_ff, m->n_ff, 0, 0, 0};
    uint64_t o = 0;
    for (int i = 0; i < 8; i++) {
        off[i] = o;
        o += ALIGN(sz[i] * nb * sizeof(float));
    }
    off[8] = o;
    o += ALIGN(max_act_row(m) * nb);
    off[9] = o;
    o += ALIGN(qa_attention_work_floats(n_ctx, m->head_dim) * nt * sizeof(float));
    return o;
}

uint64_t qa_llama_scratch_bytes(const qa_llama *m, int n_batch, int n_ctx, int n_threads) {
    uint64_t off[11];
    return layout(m, n_batch, n_ctx, n_threads, off) + 64; /* + alignment slack */
}

int qa_llama_ctx_init(qa_llama_ctx *c, const qa_llama *m, qa_pool *pool, int n_ctx, int n_batch, void *kv,
                      uint64_t kv_len, void *scratch, uint64_t scratch_len, char *err, size_t el) {
    int nt = pool->n_threads > 0 ? pool->n_threads : 1;
    if (n_ctx <= 0 || n_batch <= 0) {
        qa_set_err(err, el, "n_ctx and n_batch must be positive");
        return QA_ERR_ARG;
    }
    if (kv_len < qa_llama_kv_bytes(m, n_ctx) || scratch_len < qa_llama_scratch_bytes(m, n_batch, n_ctx, nt)) {
        qa_set_err(err, el, "KV cache or scratch buffer too small");
        return QA_ERR_SPACE;
    }
    memset(c, 0, sizeof *c);
    c->m = m;
    c->pool = pool;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->n_threads = nt;
    c->kv = (uint16_t *)kv;
    c->rope_factors = m->rope_freqs ? m->rope_freqs : n_ctx > m->n_ctx_orig ? m->rope_long : m->rope_short;
    uint64_t off[11];
    layout(m, n_batch, n_ctx, nt, off);
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float **f[8] = {&c->x, &c->xn, &c->q, &c->k, &c->v, &c->att, &c->gate, &c->up};
    for (int i = 0; i < 8; i++) *f[i] = (float *)(base + off[i]);
    c->xq = base + off[8];
    c->work = (float *)(base + off[9]);
    return QA_OK;
}

/* ---------------------------------------------------------------- forward */
#ifdef QA_DEBUG_DUMP
static void dump(const char *name, int l, const float *x, uint64_t n) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/pdp/ours/%s-%d.f32", name, l);
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(x, sizeof(float), n, f); fclose(f); }
}
#define DUMP(name, l, x, n) dump(name, l, x, n)
#else
#define DUMP(name, l, x, n) ((void)0)
#endif

/* Matmuls that read the same input: one pass when their activation types agree. */
static void mm_group(qa_pool *pool, int nw, const qa_dmat *const *w, float *const *y, const float *const *b,
                     const float *x, int n, void *xq) {
    int same = 1;
    for (int i = 1; i < nw; i++) same &= w[i]->tt->act_type == w[0]->tt->act_type;
    if (same) {
        qa_matmul_group(pool, nw, w, b, x, n, y, xq, 0, NULL, 0, NULL);
        return;
    }
    for (int i = 0; i < nw; i++) qa_matmul_group(pool, 1, w + i, b ? b + i : NULL, x, n, y + i, xq, 0, NULL, 0, NULL);
}

/* ---- per-token work of a batch (norms, RoPE, the KV store, the gate): each token's
 * result depends on that token alone, so the tokens are split over the pool (inline for
 * one token: decoding). */
typedef struct {
    const qa_llama_layer *L;
    const float *g; /* the norm's weights */
    qa_kv_layer kv;
    float base;     /* RoPE frequency base of the layer */
} tok_args;
typedef void (*tok_fn)(qa_llama_ctx *c, const tok_args *a, int t0, int t1);
typedef struct {
    qa_llama_ctx *c;
    const tok_args *a;
    tok_fn fn;
    int n;
} tok_ctx;

static void tok_task(void *p, int i, int k, int th) {
    const tok_ctx *r = (const tok_ctx *)p;
    int t0, t1;
    (void)th;
    qa_share(r->n, i, k, 1, &t0, &t1);
    if (t0 < t1) r->fn(r->c, r->a, t0, t1);
}

static void per_token(qa_llama_ctx *c, tok_fn fn, const tok_args *a, int n) {
    tok_ctx r = {c, a, fn, n};
    if (n == 1)
        fn(c, a, 0, 1);
    else
        qa_pool_run(c->pool, tok_task, &r);
}

/* xn = norm(x) with weights a->g */
static void tok_norm(qa_llama_ctx *c, const tok_args *a, int t0, int t1) {
    uint64_t d = c->m->n_embd;
    qa_rmsnorm(c->x + t0 * d, a->g, c->xn + t0 * d, t1 - t0, (int)d, c->m->eps);
}

/* After the q, k, v matmuls: per-head norms (gemma3), RoPE, and k, v into the cache. */
static void tok_qkv(qa_llama_ctx *c, const tok_args *a, int t0, int t1) {
    const qa_llama *m = c->m;
    int hd = m->head_dim, dq = m->n_head * hd, dkv = m->n_head_kv * hd, n = t1 - t0, pos = c->n_past + t0;
    float *q = c->q + (uint64_t)t0 * dq, *k = c->k + (uint64_t)t0 * dkv;
    if (a->L->q_norm) { /* per head: rows of head_dim */
        qa_rmsnorm(q, a->L->q_norm, q, n * m->n_head, hd, m->eps);
        qa_rmsnorm(k, a->L->k_norm, k, n * m->n_head_kv, hd, m->eps);
    }
    qa_rope(q, n, dq, m->n_head, hd, m->n_rot, pos, a->base, m->freq_scale, m->neox, c->rope_factors, m->rope_mscale);
    qa_rope(k, n, dkv, m->n_head_kv, hd, m->n_rot, pos, a->base, m->freq_scale, m->neox, c->rope_factors,
            m->rope_mscale);
    qa_kv_store(&a->kv, k, c->v + (uint64_t)t0 * dkv, dkv, n, pos);
}

/* gate = act(gate) * up */
static void tok_glu(qa_llama_ctx *c, const tok_args *a, int t0, int t1) {
    uint64_t f = c->m->n_ff;
    (void)a;
    if (c->m->gelu)
        qa_gelu_mul(c->gate + t0 * f, c->up + t0 * f, (int64_t)(t1 - t0) * (int64_t)f);
    else
        qa_silu_mul(c->gate + t0 * f, c->up + t0 * f, t1 - t0, (int)f);
}

/* x += norm(xn) with weights a->g (a norm after the block) */
static void tok_post(qa_llama_ctx *c, const tok_args *a, int t0, int t1) {
    uint64_t d = c->m->n_embd;
    qa_rmsnorm(c->xn + t0 * d, a->g, c->xn + t0 * d, t1 - t0, (int)d, c->m->eps);
    for (uint64_t i = t0 * d; i < t1 * d; i++) c->x[i] += c->xn[i];
}

/* out = W x; then, when the layer has a norm after the block, out = norm(out); x += out. */
static void block_out(qa_llama_ctx *c, const qa_dmat *w, const float *in, int n, const float *post_norm) {
    const qa_dmat *ws[1] = {w};
    if (!post_norm) {
        float *y[1] = {c->x};
        qa_matmul_group(c->pool, 1, ws, NULL, in, n, y, c->xq, 0, c->x, 0, NULL); /* x += W in */
        return;
    }
    float *y[1] = {c->xn};
    qa_matmul_group(c->pool, 1, ws, NULL, in, n, y, c->xq, 0, NULL, 0, NULL);
    tok_args a = {.g = post_norm};
    per_token(c, tok_post, &a, n);
}

static void forward(qa_llama_ctx *c, const int32_t *tok, int n, float *logits, int all) {
    const qa_llama *m = c->m;
    int d = m->n_embd, hd = m->head_dim, dq = m->n_head * hd, dkv = m->n_head_kv * hd;
    for (int t = 0; t < n; t++) {
        float *xr = c->x + (uint64_t)t * d;
        m->tok_embd.tt->to_float(m->tok_embd.data + (uint64_t)tok[t] * m->tok_embd.row_bytes, xr, d);
        if (m->embd_scale != 1.0f)
            for (int i = 0; i < d; i++) xr[i] *= m->embd_scale;
    }
    (void)dkv; /* in the debug dumps only */
    uint64_t kv_layer = (uint64_t)m->n_head_kv * c->n_ctx * hd;
    for (int l = 0; l < m->n_layer; l++) {
        const qa_llama_layer *L = &m->layers[l];
        int swa = m->swa_pattern && l % m->swa_pattern < m->swa_pattern - 1;
        tok_args a = {L, L->attn_norm, {c->kv + 2 * l * kv_layer, c->kv + (2 * l + 1) * kv_layer, c->n_ctx, m->n_head_kv, hd},
                      swa ? m->freq_base_swa : m->freq_base};
        per_token(c, tok_norm, &a, n);
        {
            const qa_dmat *w[3] = {&L->q, &L->k, &L->v};
            float *y[3] = {c->q, c->k, c->v};
            const float *b[3] = {L->bq, L->bk, L->bv};
            mm_group(c->pool, 3, w, y, b, c->xn, n, c->xq);
        }
        DUMP("attn_norm", l, c->xn, (uint64_t)n * d);
        DUMP("Vcur", l, c->v, (uint64_t)n * dkv);
        per_token(c, tok_qkv, &a, n);
        DUMP("Qcur", l, c->q, (uint64_t)n * dq);
        DUMP("Kcur", l, c->k, (uint64_t)n * dkv);
        qa_attention(c->pool, &a.kv, c->q, dq, n, c->n_past, m->n_head, m->attn_scale, swa ? m->n_swa : 0, c->att,
                     c->work);
        DUMP("kqv_out", l, c->att, (uint64_t)n * dq);
        block_out(c, &L->o, c->att, n, L->post_attn_norm);
        DUMP("ffn_inp", l, c->x, (uint64_t)n * d);
        a.g = L->ffn_norm;
        per_token(c, tok_norm, &a, n);
        {
            const qa_dmat *w[2] = {&L->gate, &L->up};
            float *y[2] = {c->gate, c->up};
            mm_group(c->pool, 2, w, y, NULL, c->xn, n, c->xq);
        }
        per_token(c, tok_glu, &a, n);
        DUMP("ffn_swiglu", l, c->gate, (uint64_t)n * m->n_ff);
        block_out(c, &L->down, c->gate, n, L->post_ffn_norm);
        if (c->hidden)
            memcpy(c->hidden + ((uint64_t)l * c->n_ctx + c->n_past) * d, c->x, (uint64_t)n * d * sizeof(float));
        DUMP("l_out", l, c->x, (uint64_t)n * d);
    }
    if (logits) {
        int first = all ? 0 : n - 1, rows = n - first;
        qa_rmsnorm(c->x + (uint64_t)first * d, m->output_norm, c->xn, rows, d, m->eps);
        const qa_dmat *w[1] = {&m->output};
        float *y[1] = {logits};
        qa_matmul_group(c->pool, 1, w, NULL, c->xn, rows, y, c->xq, 0, NULL, 0, NULL);
    }
    c->n_past += n;
}

int qa_llama_eval(qa_llama_ctx *c, const int32_t *tokens, int n, float *logits, int all, char *err, size_t el) {
    if (n <= 0) {
        qa_set_err(err, el, "no tokens to evaluate");
        return QA_ERR_ARG;
    }
    if (n > c->n_ctx - c->n_past) {
        qa_set_err(err, el, "context full: %d tokens + %d new exceed n_ctx %d", c->n_past, n, c->n_ctx);
        return QA_ERR_SPACE;
    }
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->m->n_vocab) {
            qa_set_err(err, el, "token id %d out of range [0, %d)", tokens[i], c->m->n_vocab);
            return QA_ERR_ARG;
        }
    for (int i = 0, k; i < n; i += k) {
        k = n - i < c->n_batch ? n - i : c->n_batch;
        /* No lone last row: a 1-row batch takes the single-row attention order, which
         * differs in the last bits, so a prompt's values would depend on where it was
         * cut (a cached prefix, n mod n_batch). Rows of batches of >= 2 are identical. */
        if (n - i - k == 1 && k > 2) k--;
        int last = i + k == n;
        float *out = all ? logits + (uint64_t)i * c->m->n_vocab : (last ? logits : NULL);
        forward(c, tokens + i, k, logits ? out : NULL, all);
    }
    return QA_OK;
}

int qa_llama_keep(qa_llama_ctx *c, int n, char *err, size_t el) {
    if (n < 0 || n > c->n_past) {
        qa_set_err(err, el, "cannot keep %d positions: the cache holds %d", n, c->n_past);
        return QA_ERR_ARG;
    }
    c->n_past = n;
    return QA_OK;
}
