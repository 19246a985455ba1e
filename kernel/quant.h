/* Scalar quantizers and the asymmetric (float query vs code) distance.
 *
 * SQ8: one byte per dimension, x[i] ~ vmin[i] + scale[i] * c[i], c in 0..255.
 * SQ4: four bits per dimension, c in 0..15, packed per block of 64 dimensions into 32
 *      bytes: byte j holds dimension j in its low nibble and dimension 32+j in its high
 *      nibble (ggml's Q4 layout), so SIMD unpacks a block with one mask and one shift.
 * NONE: the code is the float32 vector itself (the reference).
 *
 * Dimensions are padded to a multiple of 64 with vmin = scale = 0.
 *
 * Query side: the per-dimension scale is folded into the query, so
 *     q . x^ = sum_i q[i] vmin[i] + sum_i (q[i] scale[i]) c[i] = bias + wscale * sum_i w[i] c[i]
 * with w = round((q*scale) / wscale) in int16. The sum is an exact int32 (|w| is bounded so
 * it cannot overflow), identical in the scalar, AVX2 and SIMD128 variants.
 */
#ifndef QA_QUANT_H
#define QA_QUANT_H
#include "simd.h"

#include "constants.h"
enum { QA_QUANT_NONE = QA_CODEC_NONE, QA_QUANT_SQ8 = QA_CODEC_SQ8, QA_QUANT_SQ4 = QA_CODEC_SQ4 };

typedef struct {
    int kind;
    int d;          /* real dimensions */
    int dpad;       /* padded to a multiple of 64 */
    int code_size;  /* bytes per vector */
    const float *vmin;  /* [dpad] */
    const float *scale; /* [dpad] */
} qa_quantizer;

/* Bytes of a code for `kind` and `d` dimensions. */
int qa_code_size(int kind, int d);
static inline int qa_pad_dims(int d) { return (d + 63) & ~63; }

/* Encode n vectors (row-major n x d float32) into n codes. */
void qa_encode(const qa_quantizer *qz, const float *x, int64_t n, uint8_t *codes);
/* Decode one code to d floats. */
void qa_decode(const qa_quantizer *qz, const uint8_t *code, float *out);

/* A query prepared for one quantizer and metric. */
typedef struct {
    const float *q;     /* float query, d values (QA_QUANT_NONE, and exact work) */
    int16_t *w;         /* [dpad] integer weights (SQ kinds), caller-owned */
    float wscale;       /* real weight = wscale * w */
    float bias;         /* sum q[i] * vmin[i] */
    float qnorm2;       /* |q|^2 */
} qa_query;

void qa_query_prepare(const qa_quantizer *qz, const float *q, qa_query *out);

/* Integer dot products sum w[i] * c[i] (reference and dispatched). */
int32_t qa_dot_sq8_ref(const int16_t *w, const uint8_t *c, int dpad);
int32_t qa_dot_sq4_ref(const int16_t *w, const uint8_t *c, int dpad);
int32_t qa_dot_sq8(const int16_t *w, const uint8_t *c, int dpad);
int32_t qa_dot_sq4(const int16_t *w, const uint8_t *c, int dpad);

/* Approximate distance from the prepared query to a code, in the user's units
 * (squared L2 or 1 - ip). `xnorm2` is |x^|^2 of the decoded code (L2 only). */
static inline float qa_code_dist(const qa_quantizer *qz, int metric, const qa_query *qq,
                                 const uint8_t *code, float xnorm2);

/* |x^|^2 for each of n codes (for L2 search over codes). */
void qa_code_norms(const qa_quantizer *qz, const uint8_t *codes, int64_t n, float *out);

#include "distance.h"
static inline float qa_code_dist(const qa_quantizer *qz, int metric, const qa_query *qq,
                                 const uint8_t *code, float xnorm2) {
    float ip;
    if (qz->kind == QA_QUANT_NONE) {
        const float *x = (const float *)code;
        if (metric == QA_METRIC_L2) return qa_l2sq_f32(qq->q, x, (size_t)qz->d);
        return 1.0f - qa_dot_f32(qq->q, x, (size_t)qz->d);
    }
    int32_t s = qz->kind == QA_QUANT_SQ8 ? qa_dot_sq8(qq->w, code, qz->dpad)
                                         : qa_dot_sq4(qq->w, code, qz->dpad);
    ip = qq->bias + qq->wscale * (float)s;
    if (metric == QA_METRIC_L2) return qq->qnorm2 + xnorm2 - 2.0f * ip;
    return 1.0f - ip;
}
#endif
