#include "ops_decoder.h"

#include <math.h>
#include <string.h>

#include "threads.h"
#include "types/decoder_types.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- matmul */

#define PREFETCH_ROWS 4 /* decode: weight rows fetched ahead of the dot product */
#define TB 16 /* tokens per block: their quantized rows stay in L1 while weight rows stream */

uint64_t qa_act_row_bytes(const qa_dmat *w) {
    const qa_type_traits *a = qa_type_get(w->tt->act_type);
    return (uint64_t)(w->n_in / a->blck) * (uint64_t)a->size;
}

typedef struct {
    int nw, n, add;
    const qa_dmat *const *w;
    float *const *y;
    const float *const *bias;
    const float *x;
    const uint8_t *xq;
    uint64_t qrow;
} mm_ctx;

static void quantize_task(void *c_, int i, int k) {
    mm_ctx *c = (mm_ctx *)c_;
    const qa_type_traits *a = qa_type_get(c->w[0]->tt->act_type);
    int lo, hi, K = (int)c->w[0]->n_in;
    qa_share(c->n, i, k, 1, &lo, &hi);
    for (int t = lo; t < hi; t++) a->quantize_act(c->x + (uint64_t)t * K, (uint8_t *)c->xq + t * c->qrow, K);
}

static inline void put(const mm_ctx *c, int kw, int t, int o, float v) {
    float *y = c->y[kw] + (uint64_t)t * c->w[kw]->n_out + o;
    if (c->bias[kw]) v += c->bias[kw][o];
    *y = c->add ? *y + v : v;
}

static void mm_task(void *c_, int i, int k) {
    mm_ctx *c = (mm_ctx *)c_;
    for (int kw = 0; kw < c->nw; kw++) {
        const qa_dmat *w = c->w[kw];
        int64_t K = w->n_in;
        int o0, o1;
        qa_share((int)w->n_out, i, k, 2, &o0, &o1);
        void (*tile)(int64_t, const void *, size_t, const void *, size_t, float *) = c->n >= 4 ? w->tt->tile : NULL;
        float (*dot)(int64_t, const void *, const void *) = w->tt->vec_dot;
        for (int t0 = 0; t0 < c->n; t0 += TB) {
            int t1 = t0 + TB < c->n ? t0 + TB : c->n, o = o0;
            if (tile) {
                for (; o + 2 <= o1; o += 2) {
                    const uint8_t *wr = w->data + (uint64_t)o * w->row_bytes;
                    float r[8];
                    int t = t0;
                    for (; t + 4 <= t1; t += 4) {
                        tile(K, wr, w->row_bytes, c->xq + t * c->qrow, c->qrow, r);
                        for (int j = 0; j < 4; j++) {
                            put(c, kw, t + j, o, r[j]);
                            put(c, kw, t + j, o + 1, r[4 + j]);
                        }
                    }
                    for (; t < t1; t++) {
                        put(c, kw, t, o, dot(K, wr, c->xq + t * c->qrow));
                        put(c, kw, t, o + 1, dot(K, wr + w->row_bytes, c->xq + t * c->qrow));
                    }
                }
            }
            for (; o < o1; o++) {
                const uint8_t *wr = w->data + (uint64_t)o * w->row_bytes;
                if (o + PREFETCH_ROWS < o1) /* weights stream from memory once per token */
                    for (uint64_t b = 0; b < w->row_bytes; b += 64) __builtin_prefetch(wr + PREFETCH_ROWS * w->row_bytes + b);
                for (int t = t0; t < t1; t++) put(c, kw, t, o, dot(K, wr, c->xq + t * c->qrow));
            }
        }
    }
}

void qa_matmul_group(qa_pool *pool, int nw, const qa_dmat *const *w, float *const *y, const float *const *bias,
               const float *x, int n, void *xq, int add) {
    static const float *const nobias[8] = {0};
    mm_ctx c = {nw, n, add, w, y, bias ? bias : nobias, x, (const uint8_t *)xq, qa_act_row_bytes(w[0])};
    if (w[0]->tt->act_type == QA_T_F32) {
        c.xq = (const uint8_t *)x;
    } else if (n == 1) {
        quantize_task(&c, 0, 1);
    } else {
        qa_pool_run(pool, quantize_task, &c);
    }
    qa_pool_run(pool, mm_task, &c);
}

/* ---------------------------------------------------------------- elementwise */

void qa_rmsnorm(const float *x, const float *g, float *out, int n, int n_embd, float eps) {
    for (int t = 0; t < n; t++, x += n_embd, out += n_embd) {
        double ss = 0.0; /* as ggml: the sum of squares in double */
        for (int i = 0; i < n_embd; i++) ss += (double)(x[i] * x[i]);
        float scale = 1.0f / sqrtf((float)(ss / n_embd) + eps);
        for (int i = 0; i < n_embd; i++) out[i] = x[i] * scale * g[i];
    }
}

void qa_rope(float *x, int n, int row_stride, int n_heads, int head_dim, int n_rot, int pos0,
             float freq_base, float freq_scale, int neox, const float *freq_factors, float mscale) {
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    for (int t = 0; t < n; t++) {
        float *row = x + (uint64_t)t * row_stride;
        float theta = (float)(pos0 + t) * freq_scale;
        for (int i = 0; i < n_rot; i += 2, theta *= theta_scale) {
            float th = freq_factors ? theta / freq_factors[i / 2] : theta;
            float c = cosf(th) * mscale, s = sinf(th) * mscale;
            int i0 = neox ? i / 2 : i, i1 = neox ? i / 2 + n_rot / 2 : i + 1;
            for (int h = 0; h < n_heads; h++) {
                float *p = row + h * head_dim, a = p[i0], b = p[i1];
                p[i0] = a * c - b * s;
                p[i1] = a * s + b * c;
            }
        }
    }
}

void qa_silu_mul(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void qa_gelu_mul(float *g, const float *u, int64_t n) {
    /* As ggml computes it on CPUs: the input rounded to fp16, GELU (tanh form) rounded to
     * fp16 (its lookup table), identity beyond +-10. */
    const float k = 0.79788456080286535588f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float x = g[i], y;
        if (x <= -10.0f) {
            y = 0.0f;
        } else if (x >= 10.0f) {
            y = x;
        } else {
            x = qa_fp16_to_fp32(qa_fp32_to_fp16(x));
            y = qa_fp16_to_fp32(qa_fp32_to_fp16(0.5f * x * (1.0f + tanhf(k * x * (1.0f + 0.044715f * x * x)))));
        }
        g[i] = y * u[i];
    }
}

int qa_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* ---------------------------------------------------------------- attention */

/* fp16 row helpers: dot of an fp32 query with an fp16 key row; y += a * fp16 row. */
static float dot_f16_ref(const float *q, const uint16_t *k, int d) {
    float s = 0.0f;
    for (int i = 0; i < d; i++) s += q[i] * qa_fp16_to_fp32(k[i]);
    return s;
}
static void axpy_f16_ref(float *y, float a, const uint16_t *v, int d) {
    for (int i = 0; i < d; i++) y[i] += a * qa_fp16_to_fp32(v[i]);
}
static void store_f16_ref(uint16_t *y, const float *x, int d) {
    for (int i = 0; i < d; i++) y[i] = qa_fp32_to_fp16(x[i]);
}

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))
AVX2 static float dot_f16_avx2(const float *q, const uint16_t *k, int d) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= d; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), acc);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (; i < d; i++) r += q[i] * _cvtsh_ss(k[i]);
    return r;
}
AVX2 static void axpy_f16_avx2(float *y, float a, const uint16_t *v, int d) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= d; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), _mm256_loadu_ps(y + i)));
    for (; i < d; i++) y[i] += a * _cvtsh_ss(v[i]);
}
AVX2 static void store_f16_avx2(uint16_t *y, const float *x, int d) {
    int i = 0;
    for (; i + 8 <= d; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < d; i++) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}
#endif

static float (*dot_f16)(const float *, const uint16_t *, int) = dot_f16_ref;
static void (*axpy_f16)(float *, float, const uint16_t *, int) = axpy_f16_ref;
static void (*store_f16)(uint16_t *, const float *, int) = store_f16_ref;

void qa_ops_decoder_init(int avx2) {
    dot_f16 = dot_f16_ref;
    axpy_f16 = axpy_f16_ref;
    store_f16 = store_f16_ref;
#if defined(__x86_64__)
    if (avx2) {
        dot_f16 = dot_f16_avx2;
        axpy_f16 = axpy_f16_avx2;
        store_f16 = store_f16_avx2;
    }
#else
    (void)avx2;
#endif
}

void qa_kv_store(const qa_kv_layer *kv, const float *k, const float *v, int row_stride, int n, int pos0) {
    for (int t = 0; t < n; t++)
        for (int h = 0; h < kv->n_head_kv; h++) {
            uint64_t at = ((uint64_t)h * kv->n_ctx + pos0 + t) * kv->head_dim;
            store_f16(kv->k + at, k + (uint64_t)t * row_stride + h * kv->head_dim, kv->head_dim);
            store_f16(kv->v + at, v + (uint64_t)t * row_stride + h * kv->head_dim, kv->head_dim);
        }
}

uint64_t qa_attention_work_floats(int n_ctx, int head_dim) { return (uint64_t)n_ctx + 2 * (uint64_t)head_dim; }

typedef struct {
    const qa_kv_layer *kv;
    const float *q;
    int row_stride, n, pos0, n_head, n_swa;
    float scale;
    float *out, *work;
} att_ctx;

static void att_task(void *c_, int wi, int wk) {
    att_ctx *c = (att_ctx *)c_;
    const qa_kv_layer *kv = c->kv;
    int hd = kv->head_dim, group = c->n_head / kv->n_head_kv, lo, hi;
    float *s = c->work + (uint64_t)wi * qa_attention_work_floats(kv->n_ctx, hd), *qh = s + kv->n_ctx;
    uint16_t *q16 = (uint16_t *)(qh + hd);
    qa_share(c->n * c->n_head, wi, wk, 1, &lo, &hi);
    for (int job = lo; job < hi; job++) {
        int t = job / c->n_head, h = job % c->n_head, npos = c->pos0 + t + 1;
        int p0 = c->n_swa > 0 && npos > c->n_swa ? npos - c->n_swa : 0;
        const uint16_t *K = kv->k + (uint64_t)(h / group) * kv->n_ctx * hd;
        const uint16_t *V = kv->v + (uint64_t)(h / group) * kv->n_ctx * hd;
        /* the query rounded to fp16 like the keys (as ggml does before its f16 dot) */
        store_f16(q16, c->q + (uint64_t)t * c->row_stride + h * hd, hd);
        for (int i = 0; i < hd; i++) qh[i] = qa_fp16_to_fp32(q16[i]);
        float mx = -INFINITY;
        for (int p = p0; p < npos; p++) {
            s[p] = dot_f16(qh, K + (uint64_t)p * hd, hd) * c->scale;
            if (s[p] > mx) mx = s[p];
        }
        float sum = 0.0f;
        for (int p = p0; p < npos; p++) sum += (s[p] = expf(s[p] - mx));
        float *o = c->out + (uint64_t)t * c->row_stride + h * hd, inv = 1.0f / sum;
        memset(o, 0, (size_t)hd * sizeof(float));
        /* the weights rounded to fp16 like the values (as ggml multiplies them) */
        for (int p = p0; p < npos; p++) axpy_f16(o, qa_fp16_to_fp32(qa_fp32_to_fp16(s[p] * inv)), V + (uint64_t)p * hd, hd);
    }
}

void qa_attention(qa_pool *pool, const qa_kv_layer *kv, const float *q, int row_stride, int n, int pos0,
                  int n_head, float scale, int n_swa, float *out, float *work) {
    att_ctx c = {kv, q, row_stride, n, pos0, n_head, n_swa, scale, out, work};
    qa_pool_run(pool, att_task, &c);
}
