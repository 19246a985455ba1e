/* The codec table: how a float vector becomes a code, and how far a query is from a code.
 *
 * One row per format (QA_CODEC_* from quantann/constants.json), one file per row:
 *   float.c  NONE: the code is the float32 vector itself (also the "float space" of a build)
 *   sq8.c    SQ8:  one byte per dimension, x[i] ~ vmin[i] + scale[i] * c[i], c in 0..255
 *   sq4.c    SQ4:  four bits per dimension, ggml's Q4 nibble layout per block of 64 dims
 *   rabitq.c RABITQ1..4: B bits per rotated dimension of the residual to a centroid, with
 *            per-vector factors for an unbiased estimate and an error bound (rotation.h)
 * Dimensions are padded to a multiple of 64 with vmin = scale = 0.
 *
 * Graph search and rerank call through a row: the distance functions are picked once per
 * query (a pointer in qa_space), and the graph hands a node's fresh neighbours to
 * dist_batch in one call, so the indirect call is paid per expanded node, not per code.
 *
 * Each row lists its variants: [0] is the scalar reference, the others SIMD (AVX2 natively,
 * SIMD128 in wasm). They give the same bits (integer dots are exact; float sums keep one
 * lane order); tests/test_kernel.py holds every variant of every row to [0].
 */
#ifndef QA_CODEC_H
#define QA_CODEC_H
#include "../constants.h"
#include "../simd.h"
#include <math.h>

/* The trained parameters of one codec over d dimensions. */
typedef struct {
    int kind;           /* QA_CODEC_* */
    int d;              /* real dimensions */
    int dpad;           /* padded to a multiple of 64 */
    int code_size;      /* bytes per vector */
    int64_t stride;     /* bytes from one code to the next: code_size, or a linked level-0
                         * record's size when codes sit after their node's links (index.c) */
    const float *vmin;  /* [dpad] (SQ kinds) */
    const float *scale; /* [dpad] */
} qa_quantizer;

/* A query prepared for one quantizer.
 * SQ kinds fold the per-dimension scale into the query:
 *     q . x^ = sum_i q[i] vmin[i] + sum_i (q[i] scale[i]) c[i] = bias + wscale * sum_i w[i] c[i]
 * with w = round((q*scale) / wscale) in int16, |w| bounded so the int32 sum cannot overflow. */
typedef struct {
    const float *q;     /* float query, d values */
    int16_t *w;         /* [dpad] integer weights (SQ kinds), caller-owned */
    float wscale;       /* real weight = wscale * w */
    float bias;         /* sum q[i] * vmin[i] */
    float qnorm2;       /* |q|^2 */
    float qerr;         /* SQ kinds: sum |q[i]| scale[i] / 2, what a code's rounding can move q . x^ */
    /* RaBitQ kinds (rabitq.c): the query's residual to the centroid, rotated, is w */
    int32_t wsum;       /* sum w[i] */
    float qc_norm;      /* |q - c| */
    float qc_dot;       /* q . c */
} qa_query;

/* Distances from a prepared query to codes, in the user's units (squared L2 or 1 - ip).
 * `norms` holds |x^|^2 per code (L2 over SQ codes), else NULL. */
typedef float (*qa_dist_fn)(const qa_quantizer *qz, int metric, const qa_query *qq,
                            const uint8_t *code, float xnorm2);
typedef void (*qa_dist_batch_fn)(const qa_quantizer *qz, int metric, const qa_query *qq,
                                 const uint8_t *codes, const float *norms,
                                 const int32_t *nodes, int n, float *out);

typedef struct {
    const char *name;          /* "ref", "avx2", "simd128", ... */
    int (*available)(void);    /* NULL: always */
    qa_dist_fn dist;
    qa_dist_batch_fn dist_batch;
} qa_codec_variant;

typedef struct {
    int id;                    /* QA_CODEC_* */
    const char *name;          /* as in quantann/constants.json */
    int (*code_size)(int d);
    void (*encode)(const qa_quantizer *qz, const float *x, uint8_t *code);  /* one vector */
    void (*decode)(const qa_quantizer *qz, const uint8_t *code, float *out); /* d floats */
    void (*prepare)(const qa_quantizer *qz, const float *q, qa_query *out);
    /* The variant in use (qa_codec_select). */
    qa_dist_fn dist;
    qa_dist_batch_fn dist_batch;
    /* Bound on |estimated - exact| distance for a code, in the distance's units, that holds
     * with high probability over the rotation (rabitq), or for every row (sq8, given the
     * row's `residual`; resid < 0, a file without them: for every coordinate inside the
     * trained range) (lets rerank read only the candidates that may still be in the top k).
     * NULL: the row gives no bound (none, sq4). */
    float (*error_bound)(const qa_quantizer *qz, int metric, const qa_query *qq, const uint8_t *code,
                         float resid);
    /* What error_bound needs of a row that only its float vector tells, computed when it is
     * encoded (qa_encode) and stored beside the codes (the `residuals` tensor); NULL: none.
     * sq8: |x - x^|_2, rounded up. */
    float (*residual)(const qa_quantizer *qz, const float *x, const uint8_t *code);
    /* rerank=auto's least candidate pool, in multiples of k (0: the beam alone); a bound
     * without a confidence (sq8) takes at least the default rerank's pool, so auto gives its
     * answers at any k from fewer reads */
    int auto_pool;
    const qa_codec_variant *variants; /* [0] = scalar reference */
    int n_variants;
} qa_codec;

/* The row of a codec id, or NULL for an unknown id. */
const qa_codec *qa_codec_get(int id);
/* Points every row at its fastest available variant (simd = 1) or its reference (0). */
void qa_codec_select(int simd);

static inline int qa_pad_dims(int d) { return (d + 63) & ~63; }
/* Bytes of a code; -1 for an unknown kind. */
int qa_code_size(int kind, int d);
/* A quantizer from its parameters; returns -1 for an unknown kind or bad d. */
int qa_quantizer_init(qa_quantizer *qz, int kind, int d, const float *vmin, const float *scale);

/* Encode n row-major vectors (and, when resid is not NULL and the row has them, each
 * row's residual); decode one code; |x^|^2 of n codes. */
void qa_encode(const qa_quantizer *qz, const float *x, int64_t n, uint8_t *codes, float *resid);
void qa_decode(const qa_quantizer *qz, const uint8_t *code, float *out);
void qa_code_norms(const qa_quantizer *qz, const uint8_t *codes, int64_t n, float *out);

/* Rows' own pieces, shared by sq8.c and sq4.c: the int16 query weights. */
void qa_sq_prepare(const qa_quantizer *qz, const float *q, qa_query *out, int cmax);
/* From an exact integer dot to the user's distance (the same expression in every variant). */
static inline float qa_sq_dist(int metric, const qa_query *qq, int32_t s, float xnorm2) {
    float ip = qq->bias + qq->wscale * (float)s;
    if (metric == QA_METRIC_L2) return qq->qnorm2 + xnorm2 - 2.0f * ip;
    return 1.0f - ip;
}
static inline int qa_quantize_level(float x, float vmin, float scale, int levels);

/* A query weight as int16: rounded to nearest even (rintf: one instruction in wasm, where
 * lrintf is a libc call), clamped, NaN as 0 (a float -> int conversion out of range is
 * undefined behaviour; in-range weights, all a finite query gives, are unchanged). */
static inline int16_t qa_weight_i16(float t) {
    if (!(t > -32767.0f)) return t != t ? 0 : -32767;
    return t < 32767.0f ? (int16_t)rintf(t) : 32767;
}

/* The single-code distance of a variant whose integer dot is `dot` (SQ rows), and with
 * QA_SQ_VARIANT its batch. `attr` carries the target attribute so the dot inlines into the
 * batch loop. */
#define QA_SQ_DIST(suffix, attr, dot)                                                           \
    attr static float dist_##suffix(const qa_quantizer *qz, int metric, const qa_query *qq,     \
                                    const uint8_t *code, float xnorm2) {                        \
        return qa_sq_dist(metric, qq, dot(qq->w, code, qz->dpad), xnorm2);                      \
    }

#define QA_SQ_VARIANT(suffix, attr, dot)                                                        \
    QA_SQ_DIST(suffix, attr, dot)                                                               \
    attr static void batch_##suffix(const qa_quantizer *qz, int metric, const qa_query *qq,     \
                                    const uint8_t *codes, const float *norms,                   \
                                    const int32_t *nodes, int n, float *out) {                  \
        const int64_t cs = qz->stride;                                                          \
        const int dpad = qz->dpad;                                                              \
        for (int i = 0; i < n; i++) {                                                           \
            const int32_t r = nodes[i];                                                         \
            out[i] = qa_sq_dist(metric, qq, dot(qq->w, codes + r * cs, dpad),                   \
                                norms ? norms[r] : 0.0f);                                       \
        }                                                                                       \
    }

/* As QA_SQ_VARIANT, with a batch that takes the codes two at a time through dot2 (one pass
 * over the weights for both: fewer loads), and the last odd one through dot. */
#define QA_SQ_VARIANT2(suffix, attr, dot, dot2)                                                 \
    QA_SQ_DIST(suffix, attr, dot)                                                               \
    attr static void batch_##suffix(const qa_quantizer *qz, int metric, const qa_query *qq,     \
                                    const uint8_t *codes, const float *norms,                   \
                                    const int32_t *nodes, int n, float *out) {                  \
        const int64_t cs = qz->stride;                                                          \
        const int dpad = qz->dpad;                                                              \
        int i = 0;                                                                              \
        for (; i + 1 < n; i += 2) {                                                             \
            const int32_t r = nodes[i], t = nodes[i + 1];                                       \
            int32_t s[2];                                                                       \
            dot2(qq->w, codes + r * cs, codes + t * cs, dpad, s);                               \
            out[i] = qa_sq_dist(metric, qq, s[0], norms ? norms[r] : 0.0f);                     \
            out[i + 1] = qa_sq_dist(metric, qq, s[1], norms ? norms[t] : 0.0f);                 \
        }                                                                                       \
        if (i < n)                                                                              \
            out[i] = qa_sq_dist(metric, qq, dot(qq->w, codes + nodes[i] * cs, dpad),            \
                                norms ? norms[nodes[i]] : 0.0f);                                \
    }

/* 1 when the AVX2 variants may run (native x86-64 with AVX2, and SIMD not switched off). */
int qa_codec_avx2(void);

extern const qa_codec qa_codec_none_row, qa_codec_sq8_row, qa_codec_sq4_row;
extern const qa_codec qa_codec_rabitq1_row, qa_codec_rabitq2_row, qa_codec_rabitq3_row, qa_codec_rabitq4_row;

static inline int qa_quantize_level(float x, float vmin, float scale, int levels) {
    if (scale <= 0.0f) return 0;
    float t = (x - vmin) / scale;
    int c = (int)lrintf(t);
    return c < 0 ? 0 : c > levels ? levels : c;
}
#endif
