/* Q4_1 weights (32 values: fp16 scale d, fp16 minimum m, 4-bit q), byte-compatible with ggml:
 *   x[i] = d * q[i] + m
 * Dot with Q8_1 activations (a = da * qa, sa = da * sum(qa)):
 *   sum_i x[i] a[i] = d * da * sum_i q[i] qa[i] + m * sa
 * so the integer products stay unsigned x signed bytes (maddubs / dpbusd, no sign trick). */
#include "simd_blocks.h"
#include "variants.h"
#include "decoder_types.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void q4_1_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q4_1 *x = (const qa_block_q4_1 *)x_;
    for (int64_t b = 0; b < n / 32; b++, y += 32) {
        float d = qa_fp16_to_fp32(x[b].d), m = qa_fp16_to_fp32(x[b].m);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (x[b].qs[j] & 15) + m;
            y[j + 16] = d * (x[b].qs[j] >> 4) + m;
        }
    }
}

static float q4_1_dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int32_t acc = 0;
        for (int j = 0; j < 16; j++)
            acc += (w[b].qs[j] & 15) * a[b].qs[j] + (w[b].qs[j] >> 4) * a[b].qs[j + 16];
        s += qa_fp16_to_fp32(w[b].d) * qa_fp16_to_fp32(a[b].d) * (float)acc
           + qa_fp16_to_fp32(w[b].m) * qa_fp16_to_fp32(a[b].s);
    }
    return s;
}

#if defined(__x86_64__)
#define AVX2 QA_TARGET_MODEL_AVX2
#define VNNI QA_TARGET_MODEL_VNNI

AVX2 static inline __m256i nibbles(const uint8_t *qs) { /* 32 unsigned 4-bit values, in order */
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

AVX2 static float q4_1_dot_avx2(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) { /* one accumulator, blocks in order: ggml's order */
        __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(nibbles(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs)), ones));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d)), p, acc);
        mins += _cvtsh_ss(w[b].m) * _cvtsh_ss(a[b].s);
    }
    return qa_hsum256(acc) + mins;
}

/* The single-row dot with vpdpbusd (AVX-512 VNNI on 256-bit vectors), for decoding. */
VNNI static float q4_1_dot_vnni(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) { /* one accumulator, blocks in order: ggml's order */
        __m256 p = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d)), p, acc);
        mins += _cvtsh_ss(w[b].m) * _cvtsh_ss(a[b].s);
    }
    return qa_hsum256(acc) + mins;
}

/* 2 x 4 tile: each weight block is decoded once for 4 activation rows. */
#define Q4_1_TILE(DOT)                                                                              \
    __m256 acc[2][4];                                                                               \
    float mins[2][4] = {{0}};                                                                       \
    for (int r = 0; r < 2; r++)                                                                     \
        for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();                                \
    const __m256i ones = _mm256_set1_epi16(1);                                                      \
    (void)ones;                                                                                     \
    for (int64_t b = 0; b < n / 32; b++) {                                                          \
        const qa_block_q4_1 *w0 = (const qa_block_q4_1 *)w + b, *w1 = (const qa_block_q4_1 *)(w + ws) + b; \
        const __m256i q0 = nibbles(w0->qs), q1 = nibbles(w1->qs);                                   \
        const float d0 = _cvtsh_ss(w0->d), d1 = _cvtsh_ss(w1->d), m0 = _cvtsh_ss(w0->m), m1 = _cvtsh_ss(w1->m); \
        for (int j = 0; j < 4; j++) {                                                               \
            const qa_block_q8_1 *ab = (const qa_block_q8_1 *)(x + j * xs) + b;                     \
            const __m256i y = _mm256_loadu_si256((const __m256i *)ab->qs);                          \
            const float da = _cvtsh_ss(ab->d), sa = _cvtsh_ss(ab->s);                               \
            acc[0][j] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * da), _mm256_cvtepi32_ps(DOT(q0, y)), acc[0][j]); \
            acc[1][j] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * da), _mm256_cvtepi32_ps(DOT(q1, y)), acc[1][j]); \
            mins[0][j] += m0 * sa;                                                                  \
            mins[1][j] += m1 * sa;                                                                  \
        }                                                                                           \
    }                                                                                               \
    for (int r = 0; r < 2; r++)                                                                     \
        for (int j = 0; j < 4; j++) out[r * 4 + j] = qa_hsum256(acc[r][j]) + mins[r][j];

#define DOT_AVX2(q, y) _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), ones)
#define DOT_VNNI(q, y) _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y)

AVX2 static void q4_1_tile_avx2(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) {
    const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;
    Q4_1_TILE(DOT_AVX2)
}
VNNI static void q4_1_tile_vnni(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) {
    const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;
    Q4_1_TILE(DOT_VNNI)
}
#endif

#if defined(QA_WASM_SIMD)
/* SIMD128: the nibbles (0..15) are valid int8 lanes, so the signed 8-bit dot of
 * simd_blocks.h serves; each block's integer sum then enters the float sum in the
 * reference's order (the same bits as q4_1_dot_ref). */
static inline int32_t q4_1_block_dot(v128_t lo, v128_t hi, const qa_block_q8_1 *a) {
    return qa_hsum_i32x4(wasm_i32x4_add(qa_dot_i8x16(lo, wasm_v128_load(a->qs)),
                                        qa_dot_i8x16(hi, wasm_v128_load(a->qs + 16))));
}

static float q4_1_dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    const v128_t m4 = wasm_i8x16_splat(15);
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        const v128_t q = wasm_v128_load(w[b].qs);
        int32_t acc = q4_1_block_dot(wasm_v128_and(q, m4), wasm_u8x16_shr(q, 4), a + b);
        s += qa_fp16_to_fp32_wasm(w[b].d) * qa_fp16_to_fp32_wasm(a[b].d) * (float)acc
           + qa_fp16_to_fp32_wasm(w[b].m) * qa_fp16_to_fp32_wasm(a[b].s);
    }
    return s;
}

/* 2 x 4 tile (prompt batches): each weight block's nibbles and scales are decoded once
 * for 4 activation rows; every output has q4_1_dot_ref's bits. */
static void q4_1_tile_wasm(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) {
    const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;
    float s[2][4] = {{0}};
    const v128_t m4 = wasm_i8x16_splat(15);
    for (int64_t b = 0; b < n / 32; b++) {
        const qa_block_q4_1 *w0 = (const qa_block_q4_1 *)w + b, *w1 = (const qa_block_q4_1 *)(w + ws) + b;
        const v128_t q0 = wasm_v128_load(w0->qs), q1 = wasm_v128_load(w1->qs);
        const v128_t l0 = wasm_v128_and(q0, m4), h0 = wasm_u8x16_shr(q0, 4);
        const v128_t l1 = wasm_v128_and(q1, m4), h1 = wasm_u8x16_shr(q1, 4);
        const float d0 = qa_fp16_to_fp32_wasm(w0->d), d1 = qa_fp16_to_fp32_wasm(w1->d);
        const float m0 = qa_fp16_to_fp32_wasm(w0->m), m1 = qa_fp16_to_fp32_wasm(w1->m);
        for (int j = 0; j < 4; j++) {
            const qa_block_q8_1 *ab = (const qa_block_q8_1 *)(x + j * xs) + b;
            const float da = qa_fp16_to_fp32_wasm(ab->d), sa = qa_fp16_to_fp32_wasm(ab->s);
            s[0][j] += d0 * da * (float)q4_1_block_dot(l0, h0, ab) + m0 * sa;
            s[1][j] += d1 * da * (float)q4_1_block_dot(l1, h1, ab) + m1 * sa;
        }
    }
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 4; j++) out[r * 4 + j] = s[r][j];
}
#endif

qa_type_traits qa_type_q4_1 = {QA_T_Q4_1, "Q4_1", 32, sizeof(qa_block_q4_1), QA_T_Q8_1,
                               q4_1_to_float, qa_q8_1_quantize_ref, q4_1_dot_ref, q4_1_dot_ref,
                               qa_q8_1_quantize_ref, NULL};

const qa_type_variants qa_type_q4_1_variants = {
    &qa_type_q4_1, .dot = {q4_1_dot_ref, QA_X86_FN(q4_1_dot_avx2), QA_WASM_FN(q4_1_dot_wasm), QA_X86_FN(q4_1_dot_vnni)},
    .tile = {NULL, QA_X86_FN(q4_1_tile_avx2), QA_WASM_FN(q4_1_tile_wasm), QA_X86_FN(q4_1_tile_vnni)}};
