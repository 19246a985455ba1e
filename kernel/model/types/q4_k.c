/* Q4_K weights (ggml layout): 256 values in 8 sub-blocks of 32; each sub-block j has a
 * 6-bit scale sc_j and 6-bit minimum m_j:  x = d * sc_j * q - dmin * m_j,  q in 0..15.
 * Dot with Q8_K activations (a = da * qa, bsums = sums of 16 qa), per super-block b:
 *   isum_b = sum_j sc_j * sum q qa            imin_b = sum_j m_j * (bsum_2j + bsum_2j+1)
 * both exact integers. The floats are summed as llama.cpp does on AVX2 CPUs, where it
 * repacks Q4_K matrices 8 rows at a time (ggml's q4_K_8x8 gemv/gemm): two fused
 * multiply-add chains over the super-blocks, subtracted at the end,
 *   acc = fma(isum_b, d_b * da_b, acc)    accm = fma(imin_b, dmin_b * da_b, accm)
 *   dot = acc - accm
 * so every variant here computes the integers its own way and then runs that chain. */
#include <math.h>
#include <string.h>

#include "simd_blocks.h"
#include "variants.h"
#include "decoder_types.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* The 6-bit scale and minimum of sub-block j from the 12 packed bytes. */
static inline void scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* imin of one super-block (the minimums against the activation sums) */
static inline int32_t block_mins(const qa_block_q4_k *w, const qa_block_q8_k *a) {
    int32_t summ = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        scale_min(j, w->scales, &sc, &m);
        summ += m * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
    return summ;
}

static void q4_k_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q4_k *x = (const qa_block_q4_k *)x_;
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        float d = qa_fp16_to_fp32(x[b].d), dmin = qa_fp16_to_fp32(x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            int sc0, m0, sc1, m1;
            scale_min(j, x[b].scales, &sc0, &m0);
            scale_min(j + 1, x[b].scales, &sc1, &m1);
            for (int l = 0; l < 32; l++) *y++ = d * sc0 * (q[l] & 0xF) - dmin * m0;
            for (int l = 0; l < 32; l++) *y++ = d * sc1 * (q[l] >> 4) - dmin * m1;
        }
    }
}

static float q4_k_dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_k *w = (const qa_block_q4_k *)w_;
    const qa_block_q8_k *a = (const qa_block_q8_k *)a_;
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        int32_t isum = 0;
        const uint8_t *q = w[b].qs;
        const int8_t *qa = a[b].qs;
        for (int j = 0; j < 8; j += 2, q += 32, qa += 64) {
            int sc0, m0, sc1, m1, s0 = 0, s1 = 0;
            scale_min(j, w[b].scales, &sc0, &m0);
            scale_min(j + 1, w[b].scales, &sc1, &m1);
            for (int l = 0; l < 32; l++) {
                s0 += (q[l] & 0xF) * qa[l];
                s1 += (q[l] >> 4) * qa[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
        }
        acc = fmaf((float)isum, qa_fp16_to_fp32(w[b].d) * a[b].d, acc);
        accm = fmaf((float)block_mins(&w[b], &a[b]), qa_fp16_to_fp32(w[b].dmin) * a[b].d, accm);
    }
    return acc - accm;
}

#if defined(__x86_64__)
#define AVX2 QA_TARGET_MODEL_AVX2

AVX2 static float q4_k_dot_avx2(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_k *w = (const qa_block_q4_k *)w_;
    const qa_block_q8_k *a = (const qa_block_q8_k *)a_;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        int sc[8], m[8];
        for (int j = 0; j < 8; j++) scale_min(j, w[b].scales, &sc[j], &m[j]);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i q4 = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * j));
            const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            const __m256i al = _mm256_loadu_si256((const __m256i *)(a[b].qs + 64 * j));
            const __m256i ah = _mm256_loadu_si256((const __m256i *)(a[b].qs + 64 * j + 32));
            __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, al), _mm256_set1_epi16((short)sc[2 * j]));
            __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ah), _mm256_set1_epi16((short)sc[2 * j + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sumi), _mm256_extracti128_si256(sumi, 1));
        s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
        acc = fmaf((float)_mm_cvtsi128_si32(s), _cvtsh_ss(w[b].d) * a[b].d, acc);
        accm = fmaf((float)block_mins(&w[b], &a[b]), _cvtsh_ss(w[b].dmin) * a[b].d, accm);
    }
    return acc - accm;
}
#endif

#if defined(QA_WASM_SIMD)
/* SIMD128: the nibbles (0..15) are valid int8 lanes for the signed 8-bit dot of
 * simd_blocks.h; the float chain is the reference's (fmaf: the same bits). */
static float q4_k_dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_k *w = (const qa_block_q4_k *)w_;
    const qa_block_q8_k *a = (const qa_block_q8_k *)a_;
    const v128_t m4 = wasm_i8x16_splat(15);
    float acc = 0.0f, accm = 0.0f;
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        int32_t isum = 0;
        for (int j = 0; j < 4; j++) {
            const uint8_t *q = w[b].qs + 32 * j;
            const int8_t *qa = a[b].qs + 64 * j;
            const v128_t q0 = wasm_v128_load(q), q1 = wasm_v128_load(q + 16);
            v128_t lo = wasm_i32x4_add(qa_dot_i8x16(wasm_v128_and(q0, m4), wasm_v128_load(qa)),
                                       qa_dot_i8x16(wasm_v128_and(q1, m4), wasm_v128_load(qa + 16)));
            v128_t hi = wasm_i32x4_add(qa_dot_i8x16(wasm_u8x16_shr(q0, 4), wasm_v128_load(qa + 32)),
                                       qa_dot_i8x16(wasm_u8x16_shr(q1, 4), wasm_v128_load(qa + 48)));
            int sc0, m0, sc1, m1;
            scale_min(2 * j, w[b].scales, &sc0, &m0);
            scale_min(2 * j + 1, w[b].scales, &sc1, &m1);
            isum += sc0 * qa_hsum_i32x4(lo) + sc1 * qa_hsum_i32x4(hi);
        }
        acc = fmaf((float)isum, qa_fp16_to_fp32_wasm(w[b].d) * a[b].d, acc);
        accm = fmaf((float)block_mins(&w[b], &a[b]), qa_fp16_to_fp32_wasm(w[b].dmin) * a[b].d, accm);
    }
    return acc - accm;
}
#endif

qa_type_traits qa_type_q4_k = {QA_T_Q4_K, "Q4_K", QA_QK_K, sizeof(qa_block_q4_k), QA_T_Q8_K,
                               q4_k_to_float, NULL, q4_k_dot_ref, q4_k_dot_ref};

const qa_type_variants qa_type_q4_k_variants = {
    &qa_type_q4_k, .dot = {q4_k_dot_ref, QA_X86_FN(q4_k_dot_avx2), QA_WASM_FN(q4_k_dot_wasm), NULL}};
