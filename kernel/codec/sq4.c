/* SQ4: four bits per dimension, c in 0..15, packed per block of 64 dimensions into 32
 * bytes: byte j holds dimension j in its low nibble and dimension 32+j in its high nibble
 * (ggml's Q4 layout), so SIMD unpacks a block with one mask and one shift. */
#include "codec.h"
#include <string.h>

static int code_size(int d) { return qa_pad_dims(d) / 2; }

static void encode(const qa_quantizer *qz, const float *v, uint8_t *c) {
    memset(c, 0, (size_t)qz->code_size);
    for (int i = 0; i < qz->d; i++) {
        int q = qa_quantize_level(v[i], qz->vmin[i], qz->scale[i], 15);
        int blk = i >> 6, j = i & 63;
        uint8_t *b = c + blk * 32 + (j & 31);
        *b |= (uint8_t)(j < 32 ? q : q << 4);
    }
}

static inline int nibble(const uint8_t *c, int i) {
    int blk = i >> 6, j = i & 63;
    uint8_t b = c[blk * 32 + (j & 31)];
    return j < 32 ? (b & 15) : (b >> 4);
}

static void decode(const qa_quantizer *qz, const uint8_t *c, float *out) {
    for (int i = 0; i < qz->d; i++) out[i] = qz->vmin[i] + qz->scale[i] * (float)nibble(c, i);
}

static void prepare(const qa_quantizer *qz, const float *q, qa_query *out) { qa_sq_prepare(qz, q, out, 15); }

/* ---- sum w[i] * c[i] ------------------------------------------------------------------ */

static inline int32_t dot_ref(const int16_t *w, const uint8_t *c, int dpad) {
    int32_t s = 0;
    for (int b = 0; b < dpad / 64; b++) {
        const uint8_t *cb = c + b * 32;
        const int16_t *wb = w + b * 64;
        for (int j = 0; j < 32; j++) {
            s += (int32_t)wb[j] * (int32_t)(cb[j] & 15);
            s += (int32_t)wb[32 + j] * (int32_t)(cb[j] >> 4);
        }
    }
    return s;
}
QA_SQ_VARIANT(ref, , dot_ref)

#ifdef QA_X86
QA_TARGET_AVX2 static inline int32_t hsum_epi32_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

QA_TARGET_AVX2 static inline int32_t dot_avx2(const int16_t *w, const uint8_t *c, int dpad) {
    const __m128i mask = _mm_set1_epi8(15);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (int b = 0; b < dpad / 64; b++) {
        const int16_t *wb = w + b * 64;
        __m128i x0 = _mm_loadu_si128((const __m128i *)(c + b * 32));
        __m128i x1 = _mm_loadu_si128((const __m128i *)(c + b * 32 + 16));
        __m256i l0 = _mm256_cvtepu8_epi16(_mm_and_si128(x0, mask));
        __m256i l1 = _mm256_cvtepu8_epi16(_mm_and_si128(x1, mask));
        __m256i h0 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(x0, 4), mask));
        __m256i h1 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(x1, 4), mask));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(l0, _mm256_loadu_si256((const __m256i *)(wb))));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(l1, _mm256_loadu_si256((const __m256i *)(wb + 16))));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(h0, _mm256_loadu_si256((const __m256i *)(wb + 32))));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(h1, _mm256_loadu_si256((const __m256i *)(wb + 48))));
    }
    return hsum_epi32_avx2(_mm256_add_epi32(acc0, acc1));
}
QA_SQ_VARIANT(avx2, QA_TARGET_AVX2, dot_avx2)
#endif

#ifdef QA_WASM_SIMD
static inline int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
           wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

static inline v128_t dot16_u8(v128_t c, const int16_t *w) {
    v128_t lo = wasm_u16x8_extend_low_u8x16(c), hi = wasm_u16x8_extend_high_u8x16(c);
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(lo, wasm_v128_load(w)),
                          wasm_i32x4_dot_i16x8(hi, wasm_v128_load(w + 8)));
}

static inline int32_t dot_simd128(const int16_t *w, const uint8_t *c, int dpad) {
    const v128_t mask = wasm_i8x16_splat(15);
    v128_t acc = wasm_i32x4_splat(0);
    for (int b = 0; b < dpad / 64; b++) {
        const int16_t *wb = w + b * 64;
        v128_t x0 = wasm_v128_load(c + b * 32), x1 = wasm_v128_load(c + b * 32 + 16);
        acc = wasm_i32x4_add(acc, dot16_u8(wasm_v128_and(x0, mask), wb));
        acc = wasm_i32x4_add(acc, dot16_u8(wasm_v128_and(x1, mask), wb + 16));
        acc = wasm_i32x4_add(acc, dot16_u8(wasm_u8x16_shr(x0, 4), wb + 32));
        acc = wasm_i32x4_add(acc, dot16_u8(wasm_u8x16_shr(x1, 4), wb + 48));
    }
    return hsum_i32x4(acc);
}
QA_SQ_VARIANT(simd128, , dot_simd128)
#endif

static const qa_codec_variant variants[] = {
    {"ref", NULL, dist_ref, batch_ref},
#ifdef QA_X86
    {"avx2", qa_codec_avx2, dist_avx2, batch_avx2},
#endif
#ifdef QA_WASM_SIMD
    {"simd128", NULL, dist_simd128, batch_simd128},
#endif
};

const qa_codec qa_codec_sq4_row = {
    .id = QA_CODEC_SQ4, .name = "sq4", .code_size = code_size, .encode = encode,
    .decode = decode, .prepare = prepare, .error_bound = NULL,
    .variants = variants, .n_variants = sizeof variants / sizeof variants[0],
};
