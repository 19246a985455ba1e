/* Q6_K weights (ggml layout): 256 values in 16 sub-blocks of 16 with int8 scales:
 *   x = d * sc_g * (q - 32),  q = 4 bits from ql | 2 bits from qh << 4  (0..63).
 * Each 128 values: y[l], y[l+32], y[l+64], y[l+96] (l < 32) take ql[l] low, ql[l+32] low,
 * ql[l] high, ql[l+32] high nibbles and bits 0-1, 2-3, 4-5, 6-7 of qh[l].
 * Dot with Q8_K: the -32 offset is taken out once per 16 with the activation sums. */
#include "simd_blocks.h"
#include "decoder_types.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline void unpack128(const uint8_t *ql, const uint8_t *qh, int8_t *q) { /* 128 values, 0..63 */
    for (int l = 0; l < 32; l++) {
        q[l] = (int8_t)((ql[l] & 0xF) | ((qh[l] & 3) << 4));
        q[l + 32] = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        q[l + 64] = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        q[l + 96] = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
}

static void q6_k_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q6_k *x = (const qa_block_q6_k *)x_;
    int8_t q[128];
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        float d = qa_fp16_to_fp32(x[b].d);
        for (int h = 0; h < 2; h++) {
            unpack128(x[b].ql + 64 * h, x[b].qh + 32 * h, q);
            for (int i = 0; i < 128; i++) *y++ = d * x[b].scales[8 * h + i / 16] * (q[i] - 32);
        }
    }
}

static float q6_k_dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q6_k *w = (const qa_block_q6_k *)w_;
    const qa_block_q8_k *a = (const qa_block_q8_k *)a_;
    int8_t q[128];
    float s = 0.0f;
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        int32_t sumi = 0;
        for (int h = 0; h < 2; h++) {
            unpack128(w[b].ql + 64 * h, w[b].qh + 32 * h, q);
            for (int g = 0; g < 8; g++) {
                int32_t t = 0;
                for (int i = 0; i < 16; i++) t += (q[16 * g + i] - 32) * a[b].qs[128 * h + 16 * g + i];
                sumi += w[b].scales[8 * h + g] * t;
            }
        }
        s += qa_fp16_to_fp32(w[b].d) * a[b].d * (float)sumi;
    }
    return s;
}

#if defined(__x86_64__)
#define AVX2 QA_TARGET_MODEL_AVX2

AVX2 static float q6_k_dot_avx2(int64_t n, const void *w_, const void *a_) {
    const qa_block_q6_k *w = (const qa_block_q6_k *)w_;
    const qa_block_q8_k *a = (const qa_block_q8_k *)a_;
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        const int8_t *sc = w[b].scales;
        int32_t off = 0; /* 32 * sum_g sc_g * bsum_g: the -32 of every q */
        for (int g = 0; g < 16; g++) off += sc[g] * a[b].bsums[g];
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[b].ql + 64 * h, *qh = w[b].qh + 32 * h;
            const int8_t *qa = a[b].qs + 128 * h;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
            for (int k = 0; k < 4; k++) {
                /* bytes 0..15 of q[k] belong to sub-block 8h + 2k, bytes 16..31 to the next */
                const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * k + 1]), _mm_set1_epi16(sc[8 * h + 2 * k]));
                const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(qa + 32 * k)));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * a[b].d),
                              _mm256_sub_ps(_mm256_cvtepi32_ps(sumi), _mm256_setr_ps((float)(32 * off), 0, 0, 0, 0, 0, 0, 0)), acc);
    }
    return qa_hsum256(acc);
}
#endif

qa_type_traits qa_type_q6_k = {QA_T_Q6_K, "Q6_K", QA_QK_K, sizeof(qa_block_q6_k), QA_T_Q8_K,
                               q6_k_to_float, NULL, q6_k_dot_ref, q6_k_dot_ref};

void qa_type_q6_k_select(void) {
    int avx2 = qa_model_avx2();
    qa_type_q6_k.quantize_act = qa_type_q8_k.quantize_act;
    qa_type_q6_k.quantize_act_ref = qa_type_q8_k.quantize_act;
    qa_type_q6_k.vec_dot = q6_k_dot_ref;
#if defined(__x86_64__)
    if (avx2) qa_type_q6_k.vec_dot = q6_k_dot_avx2;
#else
    (void)avx2;
#endif
}
