/* The encoder's elementwise activations (ops.h): GELU (erf form) and exp(x - m) for the
 * attention softmax. The scalar references are the kernel's own polynomials, not libm's
 * erff / expf (glibc and wasi-libc round those differently): each step is one IEEE
 * operation, so the SIMD128 variants, which take the same steps lane by lane, give the
 * references' bits and wasm embeddings equal native scalar ones. The AVX2 variants take
 * the same steps with fused multiply-adds: close, not equal (tests/test_model_embed.py).
 *
 *   exp(x): Cephes' single-precision polynomial after a Cody-Waite split (~1 ulp on
 *           [-87, 88]; x clamped there, so no infinity or subnormal result).
 *   GELU:   x * (1 + erf(x / sqrt 2)) / 2 with erf by Abramowitz-Stegun 7.1.26 (|error| <
 *           1.5e-7): h = (1 - erf|z|) / 2 = p(t) exp(-z^2) / 2, GELU = x h for z < 0, else
 *           x (1 - h), so the negative side keeps h's relative precision. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../simd.h"
#include "ops.h"

#define EXP_LO (-87.3f)
#define EXP_HI 88.3f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f     /* few bits: fx * LN2_HI is exact */
#define LN2_LO (-2.12194440e-4f)
#define EP0 1.9875691500e-4f    /* Cephes expf, highest degree first */
#define EP1 1.3981999507e-3f
#define EP2 8.3334519073e-3f
#define EP3 4.1665795894e-2f
#define EP4 1.6666665459e-1f
#define EP5 5.0000001201e-1f
#define SQRT1_2 0.70710678118654752f
#define AS_P 0.3275911f         /* Abramowitz-Stegun 7.1.26 */
#define AS1 0.254829592f
#define AS2 (-0.284496736f)
#define AS3 1.421413741f
#define AS4 (-1.453152027f)
#define AS5 1.061405429f

static void (*gelu_fn)(float *, int) = qa_gelu_ref;
static void (*exp_sub_fn)(float *, int, float) = qa_exp_sub_ref;

void qa_gelu(float *x, int n) { gelu_fn(x, n); }
void qa_exp_sub(float *x, int n, float m) { exp_sub_fn(x, n, m); }

/* ---------------------------------------------------------------- scalar references */

static inline float exp1(float x) {
    x = x < EXP_LO ? EXP_LO : x; /* comparisons, not fminf / fmaxf: NaN stays NaN */
    x = x > EXP_HI ? EXP_HI : x;
    const float fx = rintf(x * LOG2E);
    x = x - fx * LN2_HI;
    x = x - fx * LN2_LO;
    float y = EP0;
    y = y * x + EP1;
    y = y * x + EP2;
    y = y * x + EP3;
    y = y * x + EP4;
    y = y * x + EP5;
    y = y * (x * x) + (x + 1.0f);
    const int32_t k = fx == fx ? (int32_t)fx : 0; /* as SIMD128's saturating conversion */
    const uint32_t bits = (uint32_t)(k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

void qa_exp_sub_ref(float *x, int n, float m) {
    for (int i = 0; i < n; i++) x[i] = exp1(x[i] - m);
}

void qa_gelu_ref(float *x, int n) {
    for (int i = 0; i < n; i++) {
        const float v = x[i], z = v * SQRT1_2, a = fabsf(z);
        const float t = 1.0f / (a * AS_P + 1.0f);
        float p = AS5;
        p = p * t + AS4;
        p = p * t + AS3;
        p = p * t + AS2;
        p = p * t + AS1;
        p = p * t;
        const float h = p * exp1(-(a * a)) * 0.5f;
        x[i] = v * (z < 0.0f ? h : 1.0f - h);
    }
}

/* ---------------------------------------------------------------- SIMD128: the same steps */

#if defined(QA_WASM_SIMD)
static inline v128_t exp4(v128_t x) {
    x = wasm_f32x4_pmax(x, wasm_f32x4_splat(EXP_LO)); /* pmax(x, lo) = x < lo ? lo : x */
    x = wasm_f32x4_pmin(x, wasm_f32x4_splat(EXP_HI)); /* pmin(x, hi) = hi < x ? hi : x */
    const v128_t fx = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(LOG2E)));
    x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(LN2_HI)));
    x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(LN2_LO)));
    v128_t y = wasm_f32x4_splat(EP0);
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(EP1));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(EP2));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(EP3));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(EP4));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, x), wasm_f32x4_splat(EP5));
    y = wasm_f32x4_add(wasm_f32x4_mul(y, wasm_f32x4_mul(x, x)), wasm_f32x4_add(x, wasm_f32x4_splat(1.0f)));
    const v128_t k = wasm_i32x4_trunc_sat_f32x4(fx);
    return wasm_f32x4_mul(y, wasm_i32x4_shl(wasm_i32x4_add(k, wasm_i32x4_splat(127)), 23));
}

static void exp_sub_wasm(float *x, int n, float m) {
    const v128_t mv = wasm_f32x4_splat(m);
    int i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(x + i, exp4(wasm_f32x4_sub(wasm_v128_load(x + i), mv)));
    qa_exp_sub_ref(x + i, n - i, m);
}

static void gelu_wasm(float *x, int n) {
    const v128_t one = wasm_f32x4_splat(1.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const v128_t v = wasm_v128_load(x + i), z = wasm_f32x4_mul(v, wasm_f32x4_splat(SQRT1_2));
        const v128_t a = wasm_f32x4_abs(z);
        const v128_t t = wasm_f32x4_div(one, wasm_f32x4_add(wasm_f32x4_mul(a, wasm_f32x4_splat(AS_P)), one));
        v128_t p = wasm_f32x4_splat(AS5);
        p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(AS4));
        p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(AS3));
        p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(AS2));
        p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(AS1));
        p = wasm_f32x4_mul(p, t);
        const v128_t h = wasm_f32x4_mul(wasm_f32x4_mul(p, exp4(wasm_f32x4_neg(wasm_f32x4_mul(a, a)))),
                                        wasm_f32x4_splat(0.5f));
        const v128_t neg = wasm_f32x4_lt(z, wasm_f32x4_splat(0.0f));
        wasm_v128_store(x + i, wasm_f32x4_mul(v, wasm_v128_bitselect(h, wasm_f32x4_sub(one, h), neg)));
    }
    qa_gelu_ref(x + i, n - i);
}
#endif /* QA_WASM_SIMD */

/* ---------------------------------------------------------------- AVX2: the same steps, fused */

#if defined(QA_X86)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(LN2_HI), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(LN2_LO), x);
    __m256 y = _mm256_set1_ps(EP0);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EP1));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EP2));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EP3));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EP4));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EP5));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

AVX2 static void gelu_avx2(float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), z = _mm256_mul_ps(v, _mm256_set1_ps(SQRT1_2));
        __m256 a = _mm256_andnot_ps(sign, z);
        __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, _mm256_set1_ps(AS_P), one));
        __m256 p = _mm256_set1_ps(AS5);
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(AS4));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(AS3));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(AS2));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(AS1));
        p = _mm256_mul_ps(p, t);
        __m256 h = _mm256_mul_ps(_mm256_mul_ps(p, exp8(_mm256_xor_ps(sign, _mm256_mul_ps(a, a)))), _mm256_set1_ps(0.5f));
        __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(v, _mm256_blendv_ps(_mm256_sub_ps(one, h), h, neg)));
    }
    qa_gelu_ref(x + i, n - i);
}

AVX2 static void exp_sub_avx2(float *x, int n, float m) {
    __m256 mv = _mm256_set1_ps(m);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)));
    qa_exp_sub_ref(x + i, n - i, m);
}
#endif /* QA_X86 */

void qa_ops_act_init(void) {
    gelu_fn = qa_gelu_ref;
    exp_sub_fn = qa_exp_sub_ref;
#if defined(QA_WASM_SIMD)
    gelu_fn = gelu_wasm;
    exp_sub_fn = exp_sub_wasm;
#elif defined(QA_X86)
    if (qa_have_avx2 && qa_have_fma_f16c) {
        gelu_fn = gelu_avx2;
        exp_sub_fn = exp_sub_avx2;
    }
#endif
}
