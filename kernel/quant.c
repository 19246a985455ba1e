#include "quant.h"
#include <math.h>
#include <string.h>

int qa_code_size(int kind, int d) {
    int dpad = qa_pad_dims(d);
    switch (kind) {
    case QA_QUANT_SQ8: return dpad;
    case QA_QUANT_SQ4: return dpad / 2;
    default: return d * 4;
    }
}

static inline int quantize_one(float x, float vmin, float scale, int levels) {
    if (scale <= 0.0f) return 0;
    float t = (x - vmin) / scale;
    int c = (int)lrintf(t);
    return c < 0 ? 0 : c > levels ? levels : c;
}

void qa_encode(const qa_quantizer *qz, const float *x, int64_t n, uint8_t *codes) {
    const int d = qz->d, cs = qz->code_size;
    for (int64_t r = 0; r < n; r++) {
        const float *v = x + r * d;
        uint8_t *c = codes + r * cs;
        if (qz->kind == QA_QUANT_NONE) {
            memcpy(c, v, (size_t)d * 4);
        } else if (qz->kind == QA_QUANT_SQ8) {
            memset(c, 0, (size_t)cs);
            for (int i = 0; i < d; i++) c[i] = (uint8_t)quantize_one(v[i], qz->vmin[i], qz->scale[i], 255);
        } else {
            memset(c, 0, (size_t)cs);
            for (int i = 0; i < d; i++) {
                int q = quantize_one(v[i], qz->vmin[i], qz->scale[i], 15);
                int blk = i >> 6, j = i & 63;
                uint8_t *b = c + blk * 32 + (j & 31);
                *b |= (uint8_t)(j < 32 ? q : q << 4);
            }
        }
    }
}

static inline int sq4_get(const uint8_t *c, int i) {
    int blk = i >> 6, j = i & 63;
    uint8_t b = c[blk * 32 + (j & 31)];
    return j < 32 ? (b & 15) : (b >> 4);
}

void qa_decode(const qa_quantizer *qz, const uint8_t *code, float *out) {
    const int d = qz->d;
    if (qz->kind == QA_QUANT_NONE) {
        memcpy(out, code, (size_t)d * 4);
    } else if (qz->kind == QA_QUANT_SQ8) {
        for (int i = 0; i < d; i++) out[i] = qz->vmin[i] + qz->scale[i] * (float)code[i];
    } else {
        for (int i = 0; i < d; i++) out[i] = qz->vmin[i] + qz->scale[i] * (float)sq4_get(code, i);
    }
}

void qa_code_norms(const qa_quantizer *qz, const uint8_t *codes, int64_t n, float *out) {
    float buf[qz->d > 0 ? qz->d : 1];
    for (int64_t r = 0; r < n; r++) {
        qa_decode(qz, codes + r * qz->code_size, buf);
        out[r] = qa_dot_f32_ref(buf, buf, (size_t)qz->d);
    }
}

void qa_query_prepare(const qa_quantizer *qz, const float *q, qa_query *out) {
    const int d = qz->d;
    out->q = q;
    out->qnorm2 = qa_dot_f32_ref(q, q, (size_t)d);
    out->wscale = 0.0f;
    out->bias = 0.0f;
    if (qz->kind == QA_QUANT_NONE) return;
    const int cmax = qz->kind == QA_QUANT_SQ8 ? 255 : 15;
    /* Largest |w| for which dpad * cmax * |w| stays inside int32. */
    int64_t wmax = 2147483647LL / ((int64_t)qz->dpad * cmax);
    if (wmax > 32767) wmax = 32767;
    float amax = 0.0f, bias = 0.0f;
    for (int i = 0; i < d; i++) {
        float a = fabsf(q[i] * qz->scale[i]);
        if (a > amax) amax = a;
        bias += q[i] * qz->vmin[i];
    }
    out->bias = bias;
    out->wscale = amax > 0.0f ? amax / (float)wmax : 1.0f;
    const float inv = 1.0f / out->wscale;
    for (int i = 0; i < qz->dpad; i++)
        out->w[i] = i < d ? (int16_t)lrintf(q[i] * qz->scale[i] * inv) : 0;
}

int32_t qa_dot_sq8_ref(const int16_t *w, const uint8_t *c, int dpad) {
    int32_t s = 0;
    for (int i = 0; i < dpad; i++) s += (int32_t)w[i] * (int32_t)c[i];
    return s;
}

int32_t qa_dot_sq4_ref(const int16_t *w, const uint8_t *c, int dpad) {
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

#ifdef QA_X86
QA_TARGET_AVX2 static inline int32_t hsum_epi32_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

QA_TARGET_AVX2 static int32_t dot_sq8_avx2(const int16_t *w, const uint8_t *c, int dpad) {
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (int i = 0; i < dpad; i += 32) {
        __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        __m256i c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i + 16)));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, _mm256_loadu_si256((const __m256i *)(w + i))));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c1, _mm256_loadu_si256((const __m256i *)(w + i + 16))));
    }
    return hsum_epi32_avx2(_mm256_add_epi32(acc0, acc1));
}

QA_TARGET_AVX2 static int32_t dot_sq4_avx2(const int16_t *w, const uint8_t *c, int dpad) {
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
#endif

#ifdef QA_WASM_SIMD
static inline int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
           wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

/* dot of 16 unsigned bytes (as i16) with 16 int16 weights */
static inline v128_t dot16_u8(v128_t c, const int16_t *w) {
    v128_t lo = wasm_u16x8_extend_low_u8x16(c), hi = wasm_u16x8_extend_high_u8x16(c);
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(lo, wasm_v128_load(w)),
                          wasm_i32x4_dot_i16x8(hi, wasm_v128_load(w + 8)));
}

static int32_t dot_sq8_simd128(const int16_t *w, const uint8_t *c, int dpad) {
    v128_t acc = wasm_i32x4_splat(0);
    for (int i = 0; i < dpad; i += 16) acc = wasm_i32x4_add(acc, dot16_u8(wasm_v128_load(c + i), w + i));
    return hsum_i32x4(acc);
}

static int32_t dot_sq4_simd128(const int16_t *w, const uint8_t *c, int dpad) {
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
#endif

int32_t qa_dot_sq8(const int16_t *w, const uint8_t *c, int dpad) {
#ifdef QA_X86
    if (qa_have_avx2) return dot_sq8_avx2(w, c, dpad);
#endif
#ifdef QA_WASM_SIMD
    return dot_sq8_simd128(w, c, dpad);
#endif
    return qa_dot_sq8_ref(w, c, dpad);
}

int32_t qa_dot_sq4(const int16_t *w, const uint8_t *c, int dpad) {
#ifdef QA_X86
    if (qa_have_avx2) return dot_sq4_avx2(w, c, dpad);
#endif
#ifdef QA_WASM_SIMD
    return dot_sq4_simd128(w, c, dpad);
#endif
    return qa_dot_sq4_ref(w, c, dpad);
}
