/* SQ8: one byte per dimension, x[i] ~ vmin[i] + scale[i] * c[i], c in 0..255; codes are
 * dpad bytes (zero past d). Distance: the exact int32 dot of the int16 query weights with
 * the codes (codec.h), the same integer in every variant. */
#include "codec.h"
#include <math.h>
#include <string.h>

static int code_size(int d) { return qa_pad_dims(d); }

static void encode(const qa_quantizer *qz, const float *v, uint8_t *c) {
    memset(c, 0, (size_t)qz->code_size);
    for (int i = 0; i < qz->d; i++) c[i] = (uint8_t)qa_quantize_level(v[i], qz->vmin[i], qz->scale[i], 255);
}

static void decode(const qa_quantizer *qz, const uint8_t *c, float *out) {
    for (int i = 0; i < qz->d; i++) out[i] = qz->vmin[i] + qz->scale[i] * (float)c[i];
}

static void prepare(const qa_quantizer *qz, const float *q, qa_query *out) { qa_sq_prepare(qz, q, out, 255); }

/* |x - x^|_2 of a row, x^ in exact arithmetic (each term is exact in double), rounded up:
 * float(r (1 + 1e-6)) >= r. Every coordinate counts, clipped ones included. */
static float residual(const qa_quantizer *qz, const float *x, const uint8_t *code) {
    double s = 0.0;
    for (int i = 0; i < qz->d; i++) {
        const double e = (double)x[i] - ((double)qz->vmin[i] + (double)qz->scale[i] * (double)code[i]);
        s += e * e;
    }
    return (float)(sqrt(s) * (1.0 + 1e-6));
}

/* |estimated - exact| distance. With e = x - x^ and the row's residual R = |e| (resid):
 *   q . x - (bias + wscale s) = q . e + sum c (q scale - wscale w)
 * <= |q| R (Cauchy-Schwarz: every row, clipped coordinates included)
 *    + wscale / 2 * sum c (each weight is rounded to the nearest integer).
 * Under L2 the code's norm |x^|^2 stands for |x|^2 too (`norms`):
 *   ||x|^2 - |x^|^2| = |e . (2 x^ + e)| <= R (2|x^| + R).
 * resid < 0 (a file written before residuals): the per-coordinate form, sound only for
 * coordinates inside the trained range (|e_i| <= scale_i / 2): qerr in place of |q| R and
 * sum scale/2 (2|x^_i| + scale/2) for the norm; a coordinate clipped at training
 * (quantize.py DEFAULT_CLIP) may be further off. Plus a float slack of 1e-5 of the terms'
 * magnitude, for the sums' rounding here and in the exact rerank. */
static float error_bound(const qa_quantizer *qz, int metric, const qa_query *qq, const uint8_t *code,
                         float resid) {
    const int l2 = metric == QA_METRIC_L2, known = resid >= 0.0f;
    int64_t csum = 0, wsum = 0; /* sum c, sum |w| c */
    float nerr = 0.0f, xn2 = 0.0f;
    for (int i = 0; i < qz->d; i++) {
        csum += code[i];
        wsum += (int64_t)(qq->w[i] < 0 ? -qq->w[i] : qq->w[i]) * code[i];
        if (l2) {
            const float h = 0.5f * qz->scale[i], x = qz->vmin[i] + qz->scale[i] * (float)code[i];
            if (!known) nerr += h * (2.0f * fabsf(x) + h);
            xn2 += x * x;
        }
    }
    if (l2 && known) nerr = resid * (2.0f * sqrtf(xn2) + resid);
    const float ip = (known ? sqrtf(qq->qnorm2) * resid : qq->qerr) + 0.5f * qq->wscale * (float)csum;
    const float size = 1.0f + fabsf(qq->bias) + qq->wscale * (float)wsum; /* >= |q . x^| */
    if (l2) return 2.0f * ip + nerr + 1e-5f * (2.0f * size + qq->qnorm2 + xn2);
    return ip + 1e-5f * size;
}

/* ---- sum w[i] * c[i] ------------------------------------------------------------------ */

static inline int32_t dot_ref(const int16_t *w, const uint8_t *c, int dpad) {
    int32_t s = 0;
    for (int i = 0; i < dpad; i++) s += (int32_t)w[i] * (int32_t)c[i];
    return s;
}
QA_SQ_VARIANT(ref, , dot_ref)

#ifdef QA_X86
QA_TARGET_AVX2 static inline int32_t hsum_epi32_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

QA_TARGET_AVX2 static inline int32_t dot_avx2(const int16_t *w, const uint8_t *c, int dpad) {
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (int i = 0; i < dpad; i += 32) {
        __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        __m256i c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i + 16)));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, _mm256_loadu_si256((const __m256i *)(w + i))));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c1, _mm256_loadu_si256((const __m256i *)(w + i + 16))));
    }
    return hsum_epi32_avx2(_mm256_add_epi32(acc0, acc1));
}
QA_SQ_VARIANT(avx2, QA_TARGET_AVX2, dot_avx2)
#endif

#ifdef QA_WASM_SIMD
static inline int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
           wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

/* 16 code bytes, widened to i16, against the 16 weights w0 | w1: four i32 lanes */
static inline v128_t dot16_u8(v128_t c, v128_t w0, v128_t w1) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(c), w0),
                          wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(c), w1));
}

/* 64 bytes a step (dpad is a multiple of 64), two accumulators. */
static inline int32_t dot_simd128(const int16_t *w, const uint8_t *c, int dpad) {
    v128_t a0 = wasm_i32x4_splat(0), a1 = a0;
    for (const uint8_t *end = c + dpad; c < end; c += 64, w += 64) {
        a0 = wasm_i32x4_add(a0, dot16_u8(wasm_v128_load(c), wasm_v128_load(w), wasm_v128_load(w + 8)));
        a1 = wasm_i32x4_add(a1, dot16_u8(wasm_v128_load(c + 16), wasm_v128_load(w + 16), wasm_v128_load(w + 24)));
        a0 = wasm_i32x4_add(a0, dot16_u8(wasm_v128_load(c + 32), wasm_v128_load(w + 32), wasm_v128_load(w + 40)));
        a1 = wasm_i32x4_add(a1, dot16_u8(wasm_v128_load(c + 48), wasm_v128_load(w + 48), wasm_v128_load(w + 56)));
    }
    return hsum_i32x4(wasm_i32x4_add(a0, a1));
}

/* Two codes in one pass: each weight vector is loaded once for both. */
static inline void dot2_simd128(const int16_t *w, const uint8_t *x, const uint8_t *y, int dpad, int32_t *out) {
    v128_t ax = wasm_i32x4_splat(0), ay = ax;
    for (const uint8_t *end = x + dpad; x < end; x += 32, y += 32, w += 32) {
        v128_t w0 = wasm_v128_load(w), w1 = wasm_v128_load(w + 8);
        v128_t w2 = wasm_v128_load(w + 16), w3 = wasm_v128_load(w + 24);
        ax = wasm_i32x4_add(ax, dot16_u8(wasm_v128_load(x), w0, w1));
        ay = wasm_i32x4_add(ay, dot16_u8(wasm_v128_load(y), w0, w1));
        ax = wasm_i32x4_add(ax, dot16_u8(wasm_v128_load(x + 16), w2, w3));
        ay = wasm_i32x4_add(ay, dot16_u8(wasm_v128_load(y + 16), w2, w3));
    }
    out[0] = hsum_i32x4(ax);
    out[1] = hsum_i32x4(ay);
}
QA_SQ_VARIANT2(simd128, , dot_simd128, dot2_simd128)
#endif

static const qa_codec_variant variants[] = {
    {"ref", NULL, dist_ref, batch_ref},
#ifdef QA_X86
    {"avx2", qa_codec_avx2, dist_avx2, batch_avx2},
#endif
#ifdef QA_WASM_SIMD
    {"simd128", NULL, dist_simd128, batch_simd128},
#endif
};

const qa_codec qa_codec_sq8_row = {
    .id = QA_CODEC_SQ8, .name = "sq8", .code_size = code_size, .encode = encode,
    .decode = decode, .prepare = prepare, .error_bound = error_bound, .residual = residual,
    .auto_pool = QA_RERANK_DEFAULT, /* auto's pool: at least rerank 4's, so its answers at any k */
    .variants = variants, .n_variants = sizeof variants / sizeof variants[0],
};
