/* Q5_0 weights (ggml layout), the fallback of Q4_K_M files for rows that are not a
 * multiple of 256: x = d * (q - 16), q = low 4 bits as in Q4_0 | bit i of qh << 4.
 * Dot with Q8_0 activations. */
#include <math.h>
#include <string.h>

#include "simd_blocks.h"
#include "variants.h"
#include "decoder_types.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline int q5(const qa_block_q5_0 *x, int i) {
    uint32_t qh;
    memcpy(&qh, x->qh, 4);
    int lo = i < 16 ? (x->qs[i] & 0xF) : (x->qs[i - 16] >> 4);
    return (lo | (int)(((qh >> i) & 1) << 4)) - 16;
}

static void q5_0_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q5_0 *x = (const qa_block_q5_0 *)x_;
    for (int64_t b = 0; b < n / 32; b++) {
        float d = qa_fp16_to_fp32(x[b].d);
        for (int i = 0; i < 32; i++) *y++ = d * q5(&x[b], i);
    }
}

/* ggml's AVX2 order (llama.cpp's Q5_0 matmul on x86): 8 integer lanes per block (lane k:
 * values 4k..4k+3), each lane's float acc_k = fma(d * da, lane_k, acc_k) over the blocks,
 * then the tree ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). */
static float q5_0_dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q5_0 *w = (const qa_block_q5_0 *)w_;
    const qa_block_q8_0 *a = (const qa_block_q8_0 *)a_;
    float acc[8] = {0};
    for (int64_t b = 0; b < n / 32; b++) {
        const float d = qa_fp16_to_fp32(w[b].d) * qa_fp16_to_fp32(a[b].d);
        for (int k = 0; k < 8; k++) {
            int32_t lane = 0;
            for (int i = 4 * k; i < 4 * k + 4; i++) lane += q5(&w[b], i) * a[b].qs[i];
            acc[k] = fmaf(d, (float)lane, acc[k]);
        }
    }
    float r0 = acc[4] + acc[0], r1 = acc[5] + acc[1], r2 = acc[6] + acc[2], r3 = acc[7] + acc[3];
    return (r0 + r2) + (r1 + r3);
}

#if defined(__x86_64__)
#define AVX2 QA_TARGET_MODEL_AVX2

/* byte i = 0xFF where bit i of x is set: byte i gets byte i/8 of x, all its bits but bit
 * i%8 are forced to 1, and it compares equal to 0xFF iff that bit was set */
AVX2 static inline __m256i bytes_from_bits(uint32_t x) {
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

AVX2 static float q5_0_dot_avx2(int64_t n, const void *w_, const void *a_) {
    const qa_block_q5_0 *w = (const qa_block_q5_0 *)w_;
    const qa_block_q8_0 *a = (const qa_block_q8_0 *)a_;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; b++) {
        uint32_t qh;
        memcpy(&qh, w[b].qh, 4);
        __m128i t = _mm_loadu_si128((const __m128i *)w[b].qs);
        __m256i q = _mm256_and_si256(_mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1),
                                     _mm256_set1_epi8(15));
        /* q - 16 as int8: set the top nibble where the fifth bit is clear */
        q = _mm256_or_si256(q, _mm256_andnot_si256(bytes_from_bits(qh), _mm256_set1_epi8((char)0xF0)));
        const __m256i y = _mm256_loadu_si256((const __m256i *)a[b].qs);
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d)),
                              _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc);
    }
    return qa_hsum256(acc);
}
#endif

qa_type_traits qa_type_q5_0 = {QA_T_Q5_0, "Q5_0", 32, sizeof(qa_block_q5_0), QA_T_Q8_0,
                               q5_0_to_float, NULL, q5_0_dot_ref, q5_0_dot_ref};

const qa_type_variants qa_type_q5_0_variants = {
    &qa_type_q5_0, .dot = {q5_0_dot_ref, QA_X86_FN(q5_0_dot_avx2), NULL, NULL}};
