#include "quant.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

/* ---------------------------------------------------------------- fp16 */

float qm_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | man << 13;
    } else {
        u = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t qm_fp32_to_fp16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = 1u << (shift - 1), rest = man & ((1u << shift) - 1);
        uint32_t r = man >> shift;
        if (rest > half || (rest == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (uint32_t)exp << 10 | man >> 13, rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

/* ---------------------------------------------------------------- scalar references */

void qm_quantize_q8_0_ref(const float *x, qm_block_q8_0 *y, int k) {
    for (int b = 0; b < k / QM_QK; b++, x += QM_QK) {
        float amax = 0.0f;
        for (int j = 0; j < QM_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = qm_fp32_to_fp16(d);
        for (int j = 0; j < QM_QK; j++) y[b].qs[j] = (int8_t)rintf(x[j] * id);
    }
}

void qm_quantize_q4_0_ref(const float *x, qm_block_q4_0 *y, int k) {
    for (int b = 0; b < k / QM_QK; b++, x += QM_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QM_QK; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = qm_fp32_to_fp16(d);
        for (int j = 0; j < QM_QK / 2; j++) {
            int a = (int)(x[j] * id + 8.5f), c = (int)(x[j + 16] * id + 8.5f);
            a = a > 15 ? 15 : a; c = c > 15 ? 15 : c;
            y[b].qs[j] = (uint8_t)(a | c << 4);
        }
    }
}

void qm_dequantize_q8_0(const qm_block_q8_0 *x, float *y, int k) {
    for (int b = 0; b < k / QM_QK; b++) {
        float d = qm_fp16_to_fp32(x[b].d);
        for (int j = 0; j < QM_QK; j++) y[b * QM_QK + j] = d * x[b].qs[j];
    }
}

void qm_dequantize_q4_0(const qm_block_q4_0 *x, float *y, int k) {
    for (int b = 0; b < k / QM_QK; b++) {
        float d = qm_fp16_to_fp32(x[b].d);
        for (int j = 0; j < QM_QK / 2; j++) {
            y[b * QM_QK + j] = d * ((x[b].qs[j] & 15) - 8);
            y[b * QM_QK + j + 16] = d * ((x[b].qs[j] >> 4) - 8);
        }
    }
}

float qm_dot_q8_0_q8_0_ref(const qm_block_q8_0 *w, const qm_block_q8_0 *x, int nb) {
    float s = 0.0f;
    for (int b = 0; b < nb; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QM_QK; j++) acc += (int32_t)w[b].qs[j] * x[b].qs[j];
        s += (float)acc * (qm_fp16_to_fp32(w[b].d) * qm_fp16_to_fp32(x[b].d));
    }
    return s;
}

float qm_dot_q4_0_q8_0_ref(const qm_block_q4_0 *w, const qm_block_q8_0 *x, int nb) {
    float s = 0.0f;
    for (int b = 0; b < nb; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QM_QK / 2; j++) {
            acc += ((w[b].qs[j] & 15) - 8) * x[b].qs[j];
            acc += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        }
        s += (float)acc * (qm_fp16_to_fp32(w[b].d) * qm_fp16_to_fp32(x[b].d));
    }
    return s;
}

float qm_dot_f32_ref(const float *a, const float *b, int n) {
    /* Four partial sums: the order SIMD variants also use, and fewer dependent adds. */
    float s[4] = {0, 0, 0, 0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

void qm_tile_q8_0_ref(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out) {
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 4; j++)
            out[r * 4 + j] = qm_k.dot_q8_0_q8_0((const qm_block_q8_0 *)(w + r * ws),
                                                (const qm_block_q8_0 *)(x + j * xs), nb);
}

void qm_tile_q4_0_ref(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out) {
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 4; j++)
            out[r * 4 + j] = qm_k.dot_q4_0_q8_0((const qm_block_q4_0 *)(w + r * ws),
                                                (const qm_block_q8_0 *)(x + j * xs), nb);
}

static void f16_to_f32_ref(const uint16_t *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = qm_fp16_to_fp32(x[i]);
}

void qm_gelu_ref(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void qm_exp_sub_ref(float *x, int n, float m) {
    for (int i = 0; i < n; i++) x[i] = expf(x[i] - m);
}

/* ---------------------------------------------------------------- AVX2 + FMA + F16C */
#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

AVX2 static void quantize_q8_0_avx2(const float *x, qm_block_q8_0 *y, int k) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < k / QM_QK; b++, x += QM_QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = qm_fp32_to_fp16(d);
        __m256 mul = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        /* packs interleave 128-bit lanes; restore element order */
        i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, i0);
    }
}

AVX2 static inline __m256 mul_sum_i8(__m256i a, __m256i b) {
    const __m256i ax = _mm256_sign_epi8(a, a), sy = _mm256_sign_epi8(b, a);
    const __m256i dot = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, _mm256_set1_epi16(1)));
}

AVX2 static float dot_q8_0_q8_0_avx2(const qm_block_q8_0 *w, const qm_block_q8_0 *x, int nb) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256 d0 = _mm256_set1_ps(h2f(w[b].d) * h2f(x[b].d));
        __m256 d1 = _mm256_set1_ps(h2f(w[b + 1].d) * h2f(x[b + 1].d));
        __m256 p0 = mul_sum_i8(_mm256_loadu_si256((const __m256i *)w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        __m256 p1 = mul_sum_i8(_mm256_loadu_si256((const __m256i *)w[b + 1].qs), _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
        acc1 = _mm256_fmadd_ps(d1, p1, acc1);
    }
    for (; b < nb; b++) {
        __m256 d0 = _mm256_set1_ps(h2f(w[b].d) * h2f(x[b].d));
        __m256 p0 = mul_sum_i8(_mm256_loadu_si256((const __m256i *)w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

AVX2 static inline __m256i nibbles_q4(const uint8_t *qs) {
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    v = _mm256_and_si256(v, _mm256_set1_epi8(15));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

AVX2 static float dot_q4_0_q8_0_avx2(const qm_block_q4_0 *w, const qm_block_q8_0 *x, int nb) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256 d0 = _mm256_set1_ps(h2f(w[b].d) * h2f(x[b].d));
        __m256 d1 = _mm256_set1_ps(h2f(w[b + 1].d) * h2f(x[b + 1].d));
        __m256 p0 = mul_sum_i8(nibbles_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        __m256 p1 = mul_sum_i8(nibbles_q4(w[b + 1].qs), _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
        acc1 = _mm256_fmadd_ps(d1, p1, acc1);
    }
    for (; b < nb; b++) {
        __m256 d0 = _mm256_set1_ps(h2f(w[b].d) * h2f(x[b].d));
        __m256 p0 = mul_sum_i8(nibbles_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

/* 2 x 4 tile: each weight block is loaded (and for Q4_0 decoded) once for 4 activation
 * rows; sign trick on the activation side: maddubs(|x|, sign(w, x)) = sum w*x. */
#define TILE_BODY(...)                                                                           \
    __m256 acc[2][4];                                                                            \
    for (int r = 0; r < 2; r++)                                                                  \
        for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();                             \
    for (int b = 0; b < nb; b++) {                                                               \
        __m256i a0, a1;                                                                          \
        __m256 dw0, dw1;                                                                         \
        __VA_ARGS__                                                                              \
        for (int j = 0; j < 4; j++) {                                                            \
            const qm_block_q8_0 *xb = (const qm_block_q8_0 *)(x + j * xs) + b;                   \
            const __m256i y = _mm256_loadu_si256((const __m256i *)xb->qs);                       \
            const __m256i ay = _mm256_sign_epi8(y, y);                                           \
            const __m256 dx = _mm256_set1_ps(h2f(xb->d));                                        \
            __m256 s0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ay, _mm256_sign_epi8(a0, y)), _mm256_set1_epi16(1))); \
            __m256 s1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ay, _mm256_sign_epi8(a1, y)), _mm256_set1_epi16(1))); \
            acc[0][j] = _mm256_fmadd_ps(_mm256_mul_ps(s0, dx), dw0, acc[0][j]);                  \
            acc[1][j] = _mm256_fmadd_ps(_mm256_mul_ps(s1, dx), dw1, acc[1][j]);                  \
        }                                                                                        \
    }                                                                                            \
    for (int r = 0; r < 2; r++)                                                                  \
        for (int j = 0; j < 4; j++) out[r * 4 + j] = hsum256(acc[r][j]);

AVX2 static void tile_q8_0_avx2(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out) {
    TILE_BODY({
        const qm_block_q8_0 *w0 = (const qm_block_q8_0 *)w + b, *w1 = (const qm_block_q8_0 *)(w + ws) + b;
        a0 = _mm256_loadu_si256((const __m256i *)w0->qs);
        a1 = _mm256_loadu_si256((const __m256i *)w1->qs);
        dw0 = _mm256_set1_ps(h2f(w0->d));
        dw1 = _mm256_set1_ps(h2f(w1->d));
    })
}

AVX2 static void tile_q4_0_avx2(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out) {
    TILE_BODY({
        const qm_block_q4_0 *w0 = (const qm_block_q4_0 *)w + b, *w1 = (const qm_block_q4_0 *)(w + ws) + b;
        a0 = nibbles_q4(w0->qs);
        a1 = nibbles_q4(w1->qs);
        dw0 = _mm256_set1_ps(h2f(w0->d));
        dw1 = _mm256_set1_ps(h2f(w1->d));
    })
}

/* The same tiles with AVX-512 VNNI on 256-bit vectors: vpdpbusd replaces maddubs + madd. */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define TILE_BODY_VNNI(...)                                                                      \
    __m256 acc[2][4];                                                                            \
    for (int r = 0; r < 2; r++)                                                                  \
        for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();                             \
    for (int b = 0; b < nb; b++) {                                                               \
        __m256i a0, a1;                                                                          \
        __m256 dw0, dw1;                                                                         \
        __VA_ARGS__                                                                              \
        for (int j = 0; j < 4; j++) {                                                            \
            const qm_block_q8_0 *xb = (const qm_block_q8_0 *)(x + j * xs) + b;                   \
            const __m256i y = _mm256_loadu_si256((const __m256i *)xb->qs);                       \
            const __m256i ay = _mm256_sign_epi8(y, y);                                           \
            const __m256 dx = _mm256_set1_ps(_cvtsh_ss(xb->d));                                  \
            __m256 s0 = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ay, _mm256_sign_epi8(a0, y))); \
            __m256 s1 = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ay, _mm256_sign_epi8(a1, y))); \
            acc[0][j] = _mm256_fmadd_ps(_mm256_mul_ps(s0, dx), dw0, acc[0][j]);                  \
            acc[1][j] = _mm256_fmadd_ps(_mm256_mul_ps(s1, dx), dw1, acc[1][j]);                  \
        }                                                                                        \
    }                                                                                            \
    for (int r = 0; r < 2; r++)                                                                  \
        for (int j = 0; j < 4; j++) out[r * 4 + j] = hsum256(acc[r][j]);

VNNI static void tile_q8_0_vnni(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out) {
    TILE_BODY_VNNI({
        const qm_block_q8_0 *w0 = (const qm_block_q8_0 *)w + b, *w1 = (const qm_block_q8_0 *)(w + ws) + b;
        a0 = _mm256_loadu_si256((const __m256i *)w0->qs);
        a1 = _mm256_loadu_si256((const __m256i *)w1->qs);
        dw0 = _mm256_set1_ps(_cvtsh_ss(w0->d));
        dw1 = _mm256_set1_ps(_cvtsh_ss(w1->d));
    })
}

VNNI static void tile_q4_0_vnni(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out) {
    TILE_BODY_VNNI({
        const qm_block_q4_0 *w0 = (const qm_block_q4_0 *)w + b, *w1 = (const qm_block_q4_0 *)(w + ws) + b;
        a0 = nibbles_q4(w0->qs);
        a1 = nibbles_q4(w1->qs);
        dw0 = _mm256_set1_ps(_cvtsh_ss(w0->d));
        dw1 = _mm256_set1_ps(_cvtsh_ss(w1->d));
    })
}

AVX2 static float dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

AVX2 static void f16_to_f32_avx2(const uint16_t *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

/* exp(x) for 8 floats (Cephes polynomial, ~1 ulp on [-87, 88]). */
AVX2 static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* GELU, erf form, erf by Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7). */
AVX2 static void gelu_avx2(float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
        __m256 s = _mm256_and_ps(z, sign), a = _mm256_andnot_ps(sign, z);
        __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, _mm256_set1_ps(0.3275911f), one));
        __m256 p = _mm256_set1_ps(1.061405429f);
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
        p = _mm256_mul_ps(p, t);
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
        __m256 erf = _mm256_or_ps(_mm256_fnmadd_ps(p, e, one), s);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(one, erf)));
    }
    qm_gelu_ref(x + i, n - i);
}

AVX2 static void exp_sub_avx2(float *x, int n, float m) {
    __m256 mv = _mm256_set1_ps(m);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)));
    qm_exp_sub_ref(x + i, n - i, m);
}
#endif /* __x86_64__ */

/* ---------------------------------------------------------------- wasm SIMD128 */
#if defined(__wasm_simd128__)
static inline v128_t dot_i8x16(v128_t a, v128_t b) {
    v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b));
    v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b));
    return wasm_i32x4_add(lo, hi);
}

static inline float hsum_f32x4(v128_t v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

static float dot_q8_0_q8_0_wasm(const qm_block_q8_0 *w, const qm_block_q8_0 *x, int nb) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < nb; b++) {
        v128_t s = wasm_i32x4_add(dot_i8x16(wasm_v128_load(w[b].qs), wasm_v128_load(x[b].qs)),
                                  dot_i8x16(wasm_v128_load(w[b].qs + 16), wasm_v128_load(x[b].qs + 16)));
        float d = qm_fp16_to_fp32(w[b].d) * qm_fp16_to_fp32(x[b].d);
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(d)));
    }
    return hsum_f32x4(acc);
}

static float dot_q4_0_q8_0_wasm(const qm_block_q4_0 *w, const qm_block_q8_0 *x, int nb) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    const v128_t m4 = wasm_i8x16_splat(15), e8 = wasm_i8x16_splat(8);
    for (int b = 0; b < nb; b++) {
        v128_t q = wasm_v128_load(w[b].qs);
        v128_t lo = wasm_i8x16_sub(wasm_v128_and(q, m4), e8);
        v128_t hi = wasm_i8x16_sub(wasm_u8x16_shr(q, 4), e8);
        v128_t s = wasm_i32x4_add(dot_i8x16(lo, wasm_v128_load(x[b].qs)),
                                  dot_i8x16(hi, wasm_v128_load(x[b].qs + 16)));
        float d = qm_fp16_to_fp32(w[b].d) * qm_fp16_to_fp32(x[b].d);
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(d)));
    }
    return hsum_f32x4(acc);
}

static float dot_f32_wasm(const float *a, const float *b, int n) {
    v128_t s = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    float r = hsum_f32x4(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}
#endif /* __wasm_simd128__ */

/* ---------------------------------------------------------------- dispatch */

static const qm_kernels k_scalar = {
    qm_quantize_q8_0_ref, qm_dot_q8_0_q8_0_ref, qm_dot_q4_0_q8_0_ref, qm_dot_f32_ref,
    f16_to_f32_ref,       qm_tile_q8_0_ref,     qm_tile_q4_0_ref,     qm_gelu_ref, qm_exp_sub_ref,
};

qm_kernels qm_k = {
    qm_quantize_q8_0_ref, qm_dot_q8_0_q8_0_ref, qm_dot_q4_0_q8_0_ref, qm_dot_f32_ref,
    f16_to_f32_ref,       qm_tile_q8_0_ref,     qm_tile_q4_0_ref,     qm_gelu_ref, qm_exp_sub_ref,
};
static int simd_level = QM_SIMD_SCALAR;

int qm_simd_set(int level) {
    qm_k = k_scalar;
    simd_level = QM_SIMD_SCALAR;
#if defined(__x86_64__)
    if ((level == QM_SIMD_AVX2 || level == QM_SIMD_AVX512VNNI) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c")) {
        qm_k.quantize_q8_0 = quantize_q8_0_avx2;
        qm_k.dot_q8_0_q8_0 = dot_q8_0_q8_0_avx2;
        qm_k.dot_q4_0_q8_0 = dot_q4_0_q8_0_avx2;
        qm_k.dot_f32 = dot_f32_avx2;
        qm_k.f16_to_f32 = f16_to_f32_avx2;
        qm_k.tile_q8_0 = tile_q8_0_avx2;
        qm_k.tile_q4_0 = tile_q4_0_avx2;
        qm_k.gelu = gelu_avx2;
        qm_k.exp_sub = exp_sub_avx2;
        simd_level = QM_SIMD_AVX2;
        if (level == QM_SIMD_AVX512VNNI && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512vnni")) {
            qm_k.tile_q8_0 = tile_q8_0_vnni;
            qm_k.tile_q4_0 = tile_q4_0_vnni;
            simd_level = QM_SIMD_AVX512VNNI;
        }
    }
#endif
#if defined(__wasm_simd128__)
    if (level == QM_SIMD_WASM) {
        qm_k.dot_q8_0_q8_0 = dot_q8_0_q8_0_wasm;
        qm_k.dot_q4_0_q8_0 = dot_q4_0_q8_0_wasm;
        qm_k.dot_f32 = dot_f32_wasm;
        simd_level = QM_SIMD_WASM;
    }
#endif
    return simd_level;
}

int qm_simd_init(void) {
#if defined(__x86_64__)
    return qm_simd_set(QM_SIMD_AVX512VNNI);
#elif defined(__wasm_simd128__)
    return qm_simd_set(QM_SIMD_WASM);
#else
    return qm_simd_set(QM_SIMD_SCALAR);
#endif
}

int qm_simd_level(void) { return simd_level; }
