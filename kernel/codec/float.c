/* NONE: the code is the float32 vector (d * 4 bytes), distances are the exact float
 * kernels of distance.c (8-lane order, no FMA: the same bits natively and in wasm). A
 * build's "float space" is this row over the full vectors. */
#include "codec.h"
#include "../distance.h"
#include <string.h>

static int code_size(int d) { return d * 4; }

static void encode(const qa_quantizer *qz, const float *x, uint8_t *code) {
    memcpy(code, x, (size_t)qz->d * 4);
}

static void decode(const qa_quantizer *qz, const uint8_t *code, float *out) {
    memcpy(out, code, (size_t)qz->d * 4);
}

/* Exact distances need only the query itself. */
static void prepare(const qa_quantizer *qz, const float *q, qa_query *out) {
    (void)qz;
    out->q = q;
    out->wscale = out->bias = out->qnorm2 = 0.0f;
}

#define FLOAT_VARIANT(suffix, dot, l2)                                                          \
    static float dist_##suffix(const qa_quantizer *qz, int metric, const qa_query *qq,          \
                               const uint8_t *code, float xnorm2) {                             \
        (void)xnorm2;                                                                           \
        const float *x = (const float *)code;                                                   \
        if (metric == QA_METRIC_L2) return l2(qq->q, x, (size_t)qz->d);                         \
        return 1.0f - dot(qq->q, x, (size_t)qz->d);                                             \
    }                                                                                           \
    static void batch_##suffix(const qa_quantizer *qz, int metric, const qa_query *qq,          \
                               const uint8_t *codes, const float *norms, const int32_t *nodes,  \
                               int n, float *out) {                                             \
        (void)norms;                                                                            \
        const float *base = (const float *)codes;                                               \
        const size_t d = (size_t)qz->d;                                                         \
        if (metric == QA_METRIC_L2)                                                             \
            for (int i = 0; i < n; i++) out[i] = l2(qq->q, base + nodes[i] * (int64_t)d, d);    \
        else                                                                                    \
            for (int i = 0; i < n; i++) out[i] = 1.0f - dot(qq->q, base + nodes[i] * (int64_t)d, d); \
    }

FLOAT_VARIANT(ref, qa_dot_f32_ref, qa_l2sq_f32_ref)
/* distance.c's dispatched kernels: AVX2 when present, SIMD128 in wasm */
FLOAT_VARIANT(simd, qa_dot_f32, qa_l2sq_f32)

static const qa_codec_variant variants[] = {
    {"ref", NULL, dist_ref, batch_ref},
#if defined(QA_X86)
    {"avx2", qa_codec_avx2, dist_simd, batch_simd},
#elif defined(QA_WASM_SIMD)
    {"simd128", NULL, dist_simd, batch_simd},
#endif
};

const qa_codec qa_codec_none_row = {
    .id = QA_CODEC_NONE, .name = "none", .code_size = code_size, .encode = encode,
    .decode = decode, .prepare = prepare, .error_bound = NULL,
    .variants = variants, .n_variants = sizeof variants / sizeof variants[0],
};
