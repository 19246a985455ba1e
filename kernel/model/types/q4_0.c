/* Q4_0: blocks of 32 values as 4-bit codes with an fp16 scale (18 bytes, ggml's layout).
 *   x[i] = d * ((qs[i] & 15) - 8),  x[i + 16] = d * ((qs[i] >> 4) - 8),  i < 16
 * Activations are Q8_0: each block's dot is an integer sum of nibble x int8 products. */
#include <math.h>

#include "simd_blocks.h"
#include "variants.h"

#define QK 32

typedef struct {
    uint16_t d;            /* fp16 scale */
    uint8_t qs[QK / 2];    /* value i in the low nibble of byte i, value i + 16 in the high */
} qa_block_q4_0;
_Static_assert(sizeof(qa_block_q4_0) == 18, "Q4_0 block is 18 bytes");

static void to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q4_0 *x = (const qa_block_q4_0 *)x_;
    for (int64_t b = 0; b < n / QK; b++) {
        float d = qa_fp16_to_fp32(x[b].d);
        for (int j = 0; j < QK / 2; j++) {
            y[b * QK + j] = d * ((x[b].qs[j] & 15) - 8);
            y[b * QK + j + 16] = d * ((x[b].qs[j] >> 4) - 8);
        }
    }
}

static float dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_0 *w = (const qa_block_q4_0 *)w_;
    const qa_block_q8_0 *x = (const qa_block_q8_0 *)a_;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK / 2; j++) {
            acc += ((w[b].qs[j] & 15) - 8) * x[b].qs[j];
            acc += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        }
        s += (float)acc * (qa_fp16_to_fp32(w[b].d) * qa_fp16_to_fp32(x[b].d));
    }
    return s;
}

#if defined(QA_X86)
/* 32 signed values (-8..7) of one block, in element order */
QA_TARGET_MODEL_AVX2 static inline __m256i nibbles(const uint8_t *qs) {
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    v = _mm256_and_si256(v, _mm256_set1_epi8(15));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

QA_TARGET_MODEL_AVX2 static float dot_avx2(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_0 *w = (const qa_block_q4_0 *)w_;
    const qa_block_q8_0 *x = (const qa_block_q8_0 *)a_;
    __m256 acc0 = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++) { /* one accumulator, blocks in order (ggml's order) */
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256 p0 = qa_mul_sum_i8(nibbles(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
    }
    return qa_hsum256(acc0);
}

#define LOAD_Q4_0_PAIR                                                                           \
    const qa_block_q4_0 *w0 = (const qa_block_q4_0 *)w + b;                                      \
    const qa_block_q4_0 *w1 = (const qa_block_q4_0 *)((const uint8_t *)w + ws) + b;              \
    a0 = nibbles(w0->qs);                                                                        \
    a1 = nibbles(w1->qs);                                                                        \
    dw0 = _mm256_set1_ps(_cvtsh_ss(w0->d));                                                      \
    dw1 = _mm256_set1_ps(_cvtsh_ss(w1->d));

QA_TARGET_MODEL_AVX2 static void tile_avx2(int64_t n, const void *w, size_t ws, const void *x, size_t xs, float *out) {
    int64_t nb = n / QK;
    QA_TILE_Q8_BODY(QA_DOT4_AVX2, LOAD_Q4_0_PAIR)
}

QA_TARGET_MODEL_VNNI static void tile_vnni(int64_t n, const void *w, size_t ws, const void *x, size_t xs, float *out) {
    int64_t nb = n / QK;
    QA_TILE_Q8_BODY(QA_DOT4_VNNI, LOAD_Q4_0_PAIR)
}
#endif /* QA_X86 */

#if defined(QA_WASM_SIMD)
static float dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_0 *w = (const qa_block_q4_0 *)w_;
    const qa_block_q8_0 *x = (const qa_block_q8_0 *)a_;
    const v128_t m4 = wasm_i8x16_splat(15), e8 = wasm_i8x16_splat(8);
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        v128_t q = wasm_v128_load(w[b].qs);
        v128_t lo = wasm_i8x16_sub(wasm_v128_and(q, m4), e8);
        v128_t hi = wasm_i8x16_sub(wasm_u8x16_shr(q, 4), e8);
        v128_t acc = wasm_i32x4_add(qa_dot_i8x16(lo, wasm_v128_load(x[b].qs)),
                                    qa_dot_i8x16(hi, wasm_v128_load(x[b].qs + 16)));
        s += (float)qa_hsum_i32x4(acc) * (qa_fp16_to_fp32_wasm(w[b].d) * qa_fp16_to_fp32_wasm(x[b].d));
    }
    return s;
}
#endif

extern qa_type_traits qa_type_q8_0; /* the activation quantizer */

qa_type_traits qa_type_q4_0 = {
    .type = QA_T_Q4_0, .name = "Q4_0", .blck = QK, .size = sizeof(qa_block_q4_0), .act_type = QA_T_Q8_0,
    .to_float = to_float, .quantize_act = NULL, .vec_dot_ref = dot_ref, .vec_dot = dot_ref,
    .quantize_act_ref = NULL, .tile = NULL,
};

const qa_type_variants qa_type_q4_0_variants = {
    &qa_type_q4_0, .dot = {dot_ref, QA_X86_FN(dot_avx2), QA_WASM_FN(dot_wasm), NULL},
    .tile = {NULL, QA_X86_FN(tile_avx2), NULL, QA_X86_FN(tile_vnni)}};
