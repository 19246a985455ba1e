/* Q6_K weights (ggml layout): 256 values in 16 sub-blocks of 16 with int8 scales:
 *   x = d * sc_g * (q - 32),  q = 4 bits from ql | 2 bits from qh << 4  (0..63).
 * Each 128 values: y[l], y[l+32], y[l+64], y[l+96] (l < 32) take ql[l] low, ql[l+32] low,
 * ql[l] high, ql[l+32] high nibbles and bits 0-1, 2-3, 4-5, 6-7 of qh[l].
 *
 * Dot with Q8_K, summed as ggml's AVX2 dot (llama.cpp's Q6_K matmul on x86): 8 integer
 * lanes per super-block; lane k holds, over the 8 runs of 32 values, sc * q * qa of values
 * 4k..4k+3 of each run, minus 32 * (sc_2k * bsum_2k + sc_2k+1 * bsum_2k+1) (the -32 offset
 * taken out with the activation sums). Each lane is an exact integer; lane k's float is
 *   acc_k = fma(d * da, lane_k, acc_k)
 * over the super-blocks, and the dot is ggml's tree ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). */
#include <math.h>

#include "simd_blocks.h"
#include "variants.h"
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

/* ggml's hsum_float_8 order */
static inline float hsum8(const float *a) {
    float r0 = a[4] + a[0], r1 = a[5] + a[1], r2 = a[6] + a[2], r3 = a[7] + a[3];
    return (r0 + r2) + (r1 + r3);
}

static float q6_k_dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q6_k *w = (const qa_block_q6_k *)w_;
    const qa_block_q8_k *a = (const qa_block_q8_k *)a_;
    int8_t q[256];
    float acc[8] = {0};
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        const int8_t *sc = w[b].scales, *qa = a[b].qs;
        unpack128(w[b].ql, w[b].qh, q);
        unpack128(w[b].ql + 64, w[b].qh + 32, q + 128);
        int32_t lane[8];
        for (int k = 0; k < 8; k++)
            lane[k] = -32 * (sc[2 * k] * a[b].bsums[2 * k] + sc[2 * k + 1] * a[b].bsums[2 * k + 1]);
        for (int i = 0; i < 256; i++) lane[(i % 32) / 4] += sc[i / 16] * q[i] * qa[i];
        const float d = a[b].d * qa_fp16_to_fp32(w[b].d);
        for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
    }
    return hsum8(acc);
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
        /* lane k: 32 * (sc_2k bsum_2k + sc_2k+1 bsum_2k+1) */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[b].bsums), sc16), 5);
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
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[b].d * _cvtsh_ss(w[b].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, off)), acc);
    }
    return qa_hsum256(acc);
}
#endif

#if defined(QA_WASM_SIMD)
/* SIMD128: lanes 0..3 from the first 16 values of each run of 32, lanes 4..7 from the
 * rest; products are 16-bit (63 * 127 fits), times the scale summed in pairs to 32 bits,
 * then neighbouring pairs added: the reference's lanes, and its float chain. */
static inline v128_t q6_lanes16(v128_t q, v128_t qa, int16_t sc) {
    const v128_t s = wasm_i16x8_splat(sc);
    v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_mul(wasm_u16x8_extend_low_u8x16(q), wasm_i16x8_extend_low_i8x16(qa)), s);
    v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_mul(wasm_u16x8_extend_high_u8x16(q), wasm_i16x8_extend_high_i8x16(qa)), s);
    return wasm_i32x4_add(wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6), wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7));
}

static float q6_k_dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q6_k *w = (const qa_block_q6_k *)w_;
    const qa_block_q8_k *a = (const qa_block_q8_k *)a_;
    const v128_t m4 = wasm_i8x16_splat(15), m2 = wasm_i8x16_splat(3);
    float acc[8] = {0};
    for (int64_t b = 0; b < n / QA_QK_K; b++) {
        const int8_t *sc = w[b].scales;
        int32_t off[8];
        for (int k = 0; k < 8; k++) off[k] = 32 * (sc[2 * k] * a[b].bsums[2 * k] + sc[2 * k + 1] * a[b].bsums[2 * k + 1]);
        v128_t s0 = wasm_i32x4_neg(wasm_v128_load(off)), s1 = wasm_i32x4_neg(wasm_v128_load(off + 4));
        for (int h = 0; h < 2; h++) {
            for (int half = 0; half < 2; half++) { /* values 0..15 / 16..31 of each run */
                const uint8_t *ql = w[b].ql + 64 * h + 16 * half, *qh = w[b].qh + 32 * h + 16 * half;
                const int8_t *qa = a[b].qs + 128 * h + 16 * half;
                const v128_t l0 = wasm_v128_load(ql), l1 = wasm_v128_load(ql + 32), hb = wasm_v128_load(qh);
                v128_t q[4];
                q[0] = wasm_v128_or(wasm_v128_and(l0, m4), wasm_i8x16_shl(wasm_v128_and(hb, m2), 4));
                q[1] = wasm_v128_or(wasm_v128_and(l1, m4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 2), m2), 4));
                q[2] = wasm_v128_or(wasm_u8x16_shr(l0, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 4), m2), 4));
                q[3] = wasm_v128_or(wasm_u8x16_shr(l1, 4), wasm_i8x16_shl(wasm_u8x16_shr(hb, 6), 4));
                v128_t s = wasm_i32x4_const(0, 0, 0, 0);
                for (int k = 0; k < 4; k++)
                    s = wasm_i32x4_add(s, q6_lanes16(q[k], wasm_v128_load(qa + 32 * k), sc[8 * h + 2 * k + half]));
                if (half) s1 = wasm_i32x4_add(s1, s);
                else s0 = wasm_i32x4_add(s0, s);
            }
        }
        int32_t lane[8];
        wasm_v128_store(lane, s0);
        wasm_v128_store(lane + 4, s1);
        const float d = a[b].d * qa_fp16_to_fp32_wasm(w[b].d);
        for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lane[k], acc[k]);
    }
    return hsum8(acc);
}
#endif

qa_type_traits qa_type_q6_k = {QA_T_Q6_K, "Q6_K", QA_QK_K, sizeof(qa_block_q6_k), QA_T_Q8_K,
                               q6_k_to_float, NULL, q6_k_dot_ref, q6_k_dot_ref};

const qa_type_variants qa_type_q6_k_variants = {
    &qa_type_q6_k, .dot = {q6_k_dot_ref, QA_X86_FN(q6_k_dot_avx2), QA_WASM_FN(q6_k_dot_wasm), NULL}};
