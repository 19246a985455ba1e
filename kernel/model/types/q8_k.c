/* Q8_K: the activation type of the K-quants (ggml layout): one float scale per 256
 * values and the sums of each 16, which carry a K-quant's minimums / offsets.
 * As ggml's quantize_row_q8_K (which llama.cpp runs on x86; its 4-row variant for the
 * repacked Q4_K matmul gives the same dot products): the scale comes from the signed
 * extreme (the first value of the largest magnitude), which maps to -127 exactly. */
#include <math.h>

#include "simd_blocks.h"
#include "variants.h"
#include "decoder_types.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* The extreme of the block once its largest magnitude amax is known; 0 when amax is 0. */
static inline float signed_extreme(const float *x, float amax) {
    for (int j = 0; j < QA_QK_K; j++)
        if (fabsf(x[j]) == amax) return x[j];
    return 0.0f;
}

static void zero_block(qa_block_q8_k *y) {
    y->d = 0.0f;
    for (int j = 0; j < QA_QK_K; j++) y->qs[j] = 0;
    for (int j = 0; j < QA_QK_K / 16; j++) y->bsums[j] = 0;
}

static void bsums(qa_block_q8_k *y) {
    for (int g = 0; g < QA_QK_K / 16; g++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += y->qs[16 * g + j];
        y->bsums[g] = (int16_t)s;
    }
}

static void q8_k_quantize_ref(const float *x, void *y_, int64_t n) {
    qa_block_q8_k *y = (qa_block_q8_k *)y_;
    for (int64_t b = 0; b < n / QA_QK_K; b++, x += QA_QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QA_QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0.0f) {
            zero_block(&y[b]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QA_QK_K; j++) {
            int v = (int)rintf(iscale * x[j]);
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        bsums(&y[b]);
        y[b].d = 1.0f / iscale;
    }
}

#if defined(__x86_64__)
#define AVX2 QA_TARGET_MODEL_AVX2

AVX2 static void q8_k_quantize_avx2(const float *x, void *y_, int64_t n) {
    qa_block_q8_k *y = (qa_block_q8_k *)y_;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / QA_QK_K; b++, x += QA_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QA_QK_K; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            zero_block(&y[b]);
            continue;
        }
        const float iscale = -127.0f / signed_extreme(x, amax);
        const __m256 mul = _mm256_set1_ps(iscale);
        for (int j = 0; j < QA_QK_K; j += 32) {
            __m256i i[4];
            for (int k = 0; k < 4; k++)
                i[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), mul),
                                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[b].qs + j), p);
            /* sums of each 16: widen to 16 bits and add neighbours down to 2 per 32 */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), p), _mm256_set1_epi16(1));
            __m128i t = _mm_hadd_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            t = _mm_hadd_epi32(t, t);
            y[b].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(t);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(t, 1);
        }
        y[b].d = 1.0f / iscale;
    }
}
#endif

#if defined(QA_WASM_SIMD)
static void q8_k_quantize_wasm(const float *x, void *y_, int64_t n) {
    qa_block_q8_k *y = (qa_block_q8_k *)y_;
    for (int64_t b = 0; b < n / QA_QK_K; b++, x += QA_QK_K) {
        v128_t m = wasm_f32x4_splat(0.0f);
        for (int j = 0; j < QA_QK_K; j += 4) m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(x + j)));
        const float amax = fmaxf(fmaxf(wasm_f32x4_extract_lane(m, 0), wasm_f32x4_extract_lane(m, 1)),
                                 fmaxf(wasm_f32x4_extract_lane(m, 2), wasm_f32x4_extract_lane(m, 3)));
        if (amax == 0.0f) {
            zero_block(&y[b]);
            continue;
        }
        const float iscale = -127.0f / signed_extreme(x, amax);
        const v128_t mul = wasm_f32x4_splat(iscale);
        for (int j = 0; j < QA_QK_K; j += 16) {
            v128_t i[4];
            for (int k = 0; k < 4; k++)
                i[k] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + j + 4 * k), mul)));
            const v128_t p = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(i[0], i[1]), wasm_i16x8_narrow_i32x4(i[2], i[3]));
            wasm_v128_store(y[b].qs + j, p);
            const v128_t s = wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extadd_pairwise_i8x16(p));
            y[b].bsums[j / 16] = (int16_t)qa_hsum_i32x4(s);
        }
        y[b].d = 1.0f / iscale;
    }
}
#endif

static void q8_k_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q8_k *x = (const qa_block_q8_k *)x_;
    for (int64_t b = 0; b < n / QA_QK_K; b++)
        for (int j = 0; j < QA_QK_K; j++) y[b * QA_QK_K + j] = x[b].d * x[b].qs[j];
}

qa_type_traits qa_type_q8_k = {QA_T_Q8_K, "Q8_K", QA_QK_K, sizeof(qa_block_q8_k), QA_T_Q8_K,
                               q8_k_to_float, q8_k_quantize_ref, NULL, NULL, q8_k_quantize_ref, NULL};

const qa_type_variants qa_type_q8_k_variants = {
    &qa_type_q8_k, .quantize = {q8_k_quantize_ref, QA_X86_FN(q8_k_quantize_avx2), QA_WASM_FN(q8_k_quantize_wasm), NULL}};
