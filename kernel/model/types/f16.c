/* F16: IEEE half floats, converted exactly to F32 (so every conversion variant gives the
 * same floats); activations stay F32. Also the fp16 <-> fp32 helpers all block types use
 * for their scales (round to nearest even, as ggml). */
#include <string.h>

#include "simd_blocks.h"
#include "variants.h"

float qa_fp16_to_fp32(uint16_t h) {
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

uint16_t qa_fp32_to_fp16(float f) {
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

static void to_float_ref(const void *x_, float *y, int64_t n) {
    const uint16_t *x = (const uint16_t *)x_;
    for (int64_t i = 0; i < n; i++) y[i] = qa_fp16_to_fp32(x[i]);
}

/* weights F16, activations F32; the order of the F32 reference (four partial sums) */
static float dot_ref(int64_t n, const void *w_, const void *a_) {
    const uint16_t *w = (const uint16_t *)w_;
    const float *b = (const float *)a_;
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += qa_fp16_to_fp32(w[i + j]) * b[i + j];
    for (; i < n; i++) s[0] += qa_fp16_to_fp32(w[i]) * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

#if defined(QA_X86)
QA_TARGET_MODEL_AVX2 static void to_float_avx2(const void *x_, float *y, int64_t n) {
    const uint16_t *x = (const uint16_t *)x_;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

QA_TARGET_MODEL_AVX2 static float dot_avx2(int64_t n, const void *w_, const void *a_) {
    const uint16_t *w = (const uint16_t *)w_;
    const float *b = (const float *)a_;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(b + i), s0);
    float s = qa_hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += _cvtsh_ss(w[i]) * b[i];
    return s;
}
#endif

qa_type_traits qa_type_f16 = {
    .type = QA_T_F16, .name = "F16", .blck = 1, .size = 2, .act_type = QA_T_F32,
    .to_float = to_float_ref, .quantize_act = NULL, .vec_dot_ref = dot_ref, .vec_dot = dot_ref,
};

#if defined(QA_WASM_SIMD)
/* Every half's float (qa_fp16_to_fp32): one load per block scale in the wasm dots, where
 * the conversion would cost more than the block's integer products. 256 KiB of zeroed
 * memory, filled once. */
float qa_f16_wasm_table[65536];
#endif

#if defined(QA_WASM_SIMD)
static void fill_wasm_table(void) {
    if (qa_f16_wasm_table[0x3c00] != 1.0f)
        for (uint32_t h = 0; h < 65536; h++) qa_f16_wasm_table[h] = qa_fp16_to_fp32((uint16_t)h);
}
#endif

/* AVX2's conversion is exact: both to_float variants give the same floats */
const qa_type_variants qa_type_f16_variants = {
    &qa_type_f16, .dot = {dot_ref, QA_X86_FN(dot_avx2), NULL, NULL},
    .to_float = {to_float_ref, QA_X86_FN(to_float_avx2), NULL, NULL}, .init = QA_WASM_FN(fill_wasm_table)};
