/* Q8_1: the activation type of Q4_1 (and Q5_1) weights, byte-compatible with ggml.
 *   d (fp16) | s (fp16) | qs[32] int8        x[i] = d * qs[i],  s = d * sum(qs)
 * Carrying s lets a Q4_1 dot add its offset m once per block (m * s) instead of per value. */
#include <math.h>
#include <string.h>

#include "simd_blocks.h"
#include "variants.h"
#include "decoder_types.h"
#include "panel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

void qa_q8_1_quantize_ref(const float *x, void *y_, int64_t n) {
    qa_block_q8_1 *y = (qa_block_q8_1 *)y_;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f; /* as ggml: 127 / amax, not 1 / d */
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[b].qs[j] = (int8_t)rintf(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].d = qa_fp32_to_fp16(d);
        y[b].s = qa_fp32_to_fp16((float)sum * d);
    }
}

static void q8_1_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q8_1 *x = (const qa_block_q8_1 *)x_;
    for (int64_t b = 0; b < n / 32; b++) {
        float d = qa_fp16_to_fp32(x[b].d);
        for (int j = 0; j < 32; j++) y[b * 32 + j] = d * x[b].qs[j];
    }
}

#if defined(__x86_64__)
#define R (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
__attribute__((target("avx2,fma,f16c"))) static void q8_1_quantize_avx2(const float *x, void *y_, int64_t n) {
    qa_block_q8_1 *y = (qa_block_q8_1 *)y_;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        float amax = qa_amax32(v0, v1, v2, v3), d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m256 mul = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), R));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), R));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), R));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), R));
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        int sum = _mm_cvtsi128_si32(s4);
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, i0);
        y[b].d = qa_fp32_to_fp16(d);
        y[b].s = qa_fp32_to_fp16((float)sum * d);
    }
}

/* Token j of a panel (panel.h): its blocks' values into the pair slots, its scales as floats
 * (fp16 -> fp32 is exact: the panel kernel multiplies the values the single-row dot does). */
static void q8_1_pack(const void *a_, int j, void *panel_, int64_t n) {
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    qa_panel_q8_1 *p = (qa_panel_q8_1 *)panel_;
    for (int64_t b = 0; b < n / 32; b++) {
        const float d = qa_fp16_to_fp32(a[b].d);
        memcpy(p[b].qs[j / 2] + (j & 1) * 32, a[b].qs, 32);
        for (int i = 0; i < 8; i++) p[b].d[j / 2][(j & 1) * 8 + i] = d;
        p[b].s[j] = qa_fp16_to_fp32(a[b].s);
    }
}
#endif

#if defined(QA_WASM_SIMD)
/* qa_q8_1_quantize_ref's bytes: blocks with a non-finite value or scale (whose int8
 * conversions only the reference's own code answers) go to the reference */
static void q8_1_quantize_wasm(const float *x, void *y_, int64_t n) {
    qa_block_q8_1 *y = (qa_block_q8_1 *)y_;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        int finite;
        float amax = qa_amax32_wasm(x, &finite);
        float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        if (!finite || !isfinite(id)) {
            qa_q8_1_quantize_ref(x, y + b, 32);
            continue;
        }
        int sum = qa_round32_wasm(x, id, y[b].qs);
        y[b].d = qa_fp32_to_fp16(d);
        y[b].s = qa_fp32_to_fp16((float)sum * d);
    }
}

/* Token j of a SIMD128 panel (panel.h, read by q4_1.c's panel): its values (widened as
 * q8_1_ready's plain form in that build), its d and s as floats */
static void q8_1_pack_wasm(const void *a_, int j, void *panel_, int64_t n) {
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    qa_panel_q8_1_wasm *p = (qa_panel_q8_1_wasm *)panel_;
    for (int64_t b = 0; b < n / 32; b++) {
#if defined(QA_WASM_RELAXED)
        memcpy(p[b].q[j], a[b].qs, 32);
#else
        qa_widen32_wasm(a[b].qs, p[b].q[j]);
#endif
        p[b].d[j] = qa_fp16_to_fp32_wasm(a[b].d);
        p[b].s[j] = qa_fp16_to_fp32_wasm(a[b].s);
    }
}
#endif

qa_type_traits qa_type_q8_1 = {QA_T_Q8_1, "Q8_1", 32, sizeof(qa_block_q8_1), QA_T_Q8_1,
                               q8_1_to_float, qa_q8_1_quantize_ref, NULL, NULL,
                               qa_q8_1_quantize_ref, NULL,
                               /* one of the two, by target (the other is 0) */
                               .panel_block = QA_PANEL_BLOCK(sizeof(qa_panel_q8_1)) + QA_PANEL_BLOCK_WASM(sizeof(qa_panel_q8_1_wasm))};
const qa_type_variants qa_type_q8_1_variants = {
    &qa_type_q8_1, .quantize = {qa_q8_1_quantize_ref, QA_X86_FN(q8_1_quantize_avx2), QA_WASM_FN(q8_1_quantize_wasm), NULL},
    .pack = {NULL, NULL, QA_WASM_FN(q8_1_pack_wasm), QA_X86_FN(q8_1_pack)}};
