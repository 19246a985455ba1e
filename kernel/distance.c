#include "distance.h"
#include <math.h>

/* Lane j accumulates elements i with i % 8 == j; the tail (d % 8) goes to lanes 0..; the
 * eight lanes are then summed as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), the order the
 * SIMD reductions below use. */
static inline float reduce8(const float l[8]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

float qa_dot_f32_ref(const float *a, const float *b, size_t d) {
    float l[8] = {0};
    for (size_t i = 0; i < d; i++) l[i & 7] += a[i] * b[i];
    return reduce8(l);
}

float qa_l2sq_f32_ref(const float *a, const float *b, size_t d) {
    float l[8] = {0};
    for (size_t i = 0; i < d; i++) {
        float t = a[i] - b[i];
        l[i & 7] += t * t;
    }
    return reduce8(l);
}

#ifdef QA_X86
QA_TARGET_AVX2 static inline float hsum8_avx(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return reduce8(l);
}

QA_TARGET_AVX2 static float dot_avx2(const float *a, const float *b, size_t d) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    float l[8];
    _mm256_storeu_ps(l, acc);
    for (size_t j = 0; i < d; i++, j++) l[j] += a[i] * b[i];
    return reduce8(l);
}

QA_TARGET_AVX2 static float l2sq_avx2(const float *a, const float *b, size_t d) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(t, t));
    }
    float l[8];
    _mm256_storeu_ps(l, acc);
    for (size_t j = 0; i < d; i++, j++) {
        float t = a[i] - b[i];
        l[j] += t * t;
    }
    return reduce8(l);
}
#endif

#ifdef QA_WASM_SIMD
/* Two f32x4 accumulators hold lanes 0-3 and 4-7 of the 8-lane order. */
static float dot_simd128(const float *a, const float *b, size_t d) {
    v128_t lo = wasm_f32x4_splat(0), hi = wasm_f32x4_splat(0);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        lo = wasm_f32x4_add(lo, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
        hi = wasm_f32x4_add(hi, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
    }
    float l[8];
    wasm_v128_store(l, lo);
    wasm_v128_store(l + 4, hi);
    for (size_t j = 0; i < d; i++, j++) l[j] += a[i] * b[i];
    return reduce8(l);
}

static float l2sq_simd128(const float *a, const float *b, size_t d) {
    v128_t lo = wasm_f32x4_splat(0), hi = wasm_f32x4_splat(0);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        v128_t t0 = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
        v128_t t1 = wasm_f32x4_sub(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
        lo = wasm_f32x4_add(lo, wasm_f32x4_mul(t0, t0));
        hi = wasm_f32x4_add(hi, wasm_f32x4_mul(t1, t1));
    }
    float l[8];
    wasm_v128_store(l, lo);
    wasm_v128_store(l + 4, hi);
    for (size_t j = 0; i < d; i++, j++) {
        float t = a[i] - b[i];
        l[j] += t * t;
    }
    return reduce8(l);
}
#endif

float qa_dot_f32(const float *a, const float *b, size_t d) {
#ifdef QA_X86
    if (qa_have_avx2) return dot_avx2(a, b, d);
#endif
#ifdef QA_WASM_SIMD
    return dot_simd128(a, b, d);
#endif
    return qa_dot_f32_ref(a, b, d);
}

float qa_l2sq_f32(const float *a, const float *b, size_t d) {
#ifdef QA_X86
    if (qa_have_avx2) return l2sq_avx2(a, b, d);
#endif
#ifdef QA_WASM_SIMD
    return l2sq_simd128(a, b, d);
#endif
    return qa_l2sq_f32_ref(a, b, d);
}

int qa_normalize(float *v, size_t d) {
    float n2 = qa_dot_f32(v, v, d);
    if (!(n2 > 0.0f)) return -1;
    float inv = 1.0f / sqrtf(n2);
    for (size_t i = 0; i < d; i++) v[i] *= inv;
    return 0;
}
