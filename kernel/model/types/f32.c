/* F32: plain floats. Activations stay F32; the dot product sums in four partial sums (the
 * reference) or eight-lane vectors (SIMD), so variants differ only in summation order. */
#include <string.h>

#include "simd_blocks.h"
#include "variants.h"

static void to_float(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

static float dot_ref(int64_t n, const void *w_, const void *a_) {
    const float *a = (const float *)w_, *b = (const float *)a_;
    /* Four partial sums: fewer dependent adds, and an order SIMD variants can share. */
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

#if defined(QA_X86)
QA_TARGET_MODEL_AVX2 static float dot_avx2(int64_t n, const void *w_, const void *a_) {
    const float *a = (const float *)w_, *b = (const float *)a_;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = qa_hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
#endif

#if defined(QA_WASM_SIMD)
static float dot_wasm(int64_t n, const void *w_, const void *a_) {
    const float *a = (const float *)w_, *b = (const float *)a_;
    v128_t s = wasm_f32x4_splat(0.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    float s0 = wasm_f32x4_extract_lane(s, 0); /* the reference's lanes and tail order: its bits */
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + wasm_f32x4_extract_lane(s, 1)) + (wasm_f32x4_extract_lane(s, 2) + wasm_f32x4_extract_lane(s, 3));
}
#endif

qa_type_traits qa_type_f32 = {
    .type = QA_T_F32, .name = "F32", .blck = 1, .size = 4, .act_type = QA_T_F32,
    .to_float = to_float, .quantize_act = NULL, .vec_dot_ref = dot_ref, .vec_dot = dot_ref,
};

const qa_type_variants qa_type_f32_variants = {
    &qa_type_f32, .dot = {dot_ref, QA_X86_FN(dot_avx2), QA_WASM_FN(dot_wasm), NULL}};
