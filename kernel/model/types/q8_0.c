/* Q8_0: blocks of 32 int8 with an fp16 scale (34 bytes, ggml's layout; the struct is in
 * types.h because Q8_0 is also the activation type of every 32-value block type).
 *   x[i] = d * qs[i],   d = max|x| / 127
 * Weights Q8_0 x activations Q8_0: an integer dot per block, scaled by both d. */
#include <math.h>

#include "simd_blocks.h"
#include "variants.h"

#define QK QA_QK8_0

static void quantize_ref(const float *x, void *y_, int64_t n) {
    qa_block_q8_0 *y = (qa_block_q8_0 *)y_;
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f;
        int finite = 1;
        for (int j = 0; j < QK; j++) {
            amax = fmaxf(amax, fabsf(x[j]));
            finite &= isfinite(x[j]) != 0;
        }
        if (!finite) { /* no int8 holds NaN or inf (converting it is undefined): a NaN scale
                          carries it on to the output, which the encoder refuses as non-finite */
            y[b].d = qa_fp32_to_fp16(NAN);
            for (int j = 0; j < QK; j++) y[b].qs[j] = 0;
            continue;
        }
        float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f; /* as ggml: 127 / amax */
        if (!isfinite(id)) id = 0.0f; /* d below fp16's range: its fp16 scale is 0 anyway */
        y[b].d = qa_fp32_to_fp16(d);
        for (int j = 0; j < QK; j++) y[b].qs[j] = (int8_t)rintf(x[j] * id);
    }
}

static void to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q8_0 *x = (const qa_block_q8_0 *)x_;
    for (int64_t b = 0; b < n / QK; b++) {
        float d = qa_fp16_to_fp32(x[b].d);
        for (int j = 0; j < QK; j++) y[b * QK + j] = d * x[b].qs[j];
    }
}

static float dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q8_0 *w = (const qa_block_q8_0 *)w_, *x = (const qa_block_q8_0 *)a_;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK; j++) acc += (int32_t)w[b].qs[j] * x[b].qs[j];
        s += (float)acc * (qa_fp16_to_fp32(w[b].d) * qa_fp16_to_fp32(x[b].d));
    }
    return s;
}

#if defined(QA_X86)
/* Same blocks as the reference, bit for bit: the same amax, scale and round-to-nearest-even. */
QA_TARGET_MODEL_AVX2 static void quantize_avx2(const float *x, void *y_, int64_t n) {
    qa_block_q8_0 *y = (qa_block_q8_0 *)y_;
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        float amax = qa_amax32(v0, v1, v2, v3);
        float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = qa_fp32_to_fp16(d);
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

QA_TARGET_MODEL_AVX2 static float dot_avx2(int64_t n, const void *w_, const void *a_) {
    const qa_block_q8_0 *w = (const qa_block_q8_0 *)w_, *x = (const qa_block_q8_0 *)a_;
    __m256 acc0 = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++) { /* one accumulator, blocks in order (ggml's order) */
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256 p0 = qa_mul_sum_i8(_mm256_loadu_si256((const __m256i *)w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
    }
    return qa_hsum256(acc0);
}

#define LOAD_Q8_0_PAIR                                                                           \
    const qa_block_q8_0 *w0 = (const qa_block_q8_0 *)w + b;                                      \
    const qa_block_q8_0 *w1 = (const qa_block_q8_0 *)((const uint8_t *)w + ws) + b;              \
    a0 = _mm256_loadu_si256((const __m256i *)w0->qs);                                            \
    a1 = _mm256_loadu_si256((const __m256i *)w1->qs);                                            \
    dw0 = _mm256_set1_ps(_cvtsh_ss(w0->d));                                                      \
    dw1 = _mm256_set1_ps(_cvtsh_ss(w1->d));

QA_TARGET_MODEL_AVX2 static void tile_avx2(int64_t n, const void *w, size_t ws, const void *x, size_t xs, float *out) {
    int64_t nb = n / QK;
    QA_TILE_Q8_BODY(QA_DOT4_AVX2, LOAD_Q8_0_PAIR)
}

QA_TARGET_MODEL_VNNI static void tile_vnni(int64_t n, const void *w, size_t ws, const void *x, size_t xs, float *out) {
    int64_t nb = n / QK;
    QA_TILE_Q8_BODY(QA_DOT4_VNNI, LOAD_Q8_0_PAIR)
}
#endif /* QA_X86 */

#if defined(QA_WASM_SIMD)
/* quantize_ref's bytes: non-finite blocks go to the reference itself */
static void quantize_wasm(const float *x, void *y_, int64_t n) {
    qa_block_q8_0 *y = (qa_block_q8_0 *)y_;
    for (int64_t b = 0; b < n / QK; b++, x += QK) {
        int finite;
        float amax = qa_amax32_wasm(x, &finite);
        if (!finite) {
            quantize_ref(x, y + b, QK);
            continue;
        }
        float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        y[b].d = qa_fp32_to_fp16(d);
        qa_round32_wasm(x, id, y[b].qs);
    }
}

static float dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q8_0 *w = (const qa_block_q8_0 *)w_, *x = (const qa_block_q8_0 *)a_;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK; b++) {
        v128_t acc = wasm_i32x4_add(qa_dot_i8x16(wasm_v128_load(w[b].qs), wasm_v128_load(x[b].qs)),
                                    qa_dot_i8x16(wasm_v128_load(w[b].qs + 16), wasm_v128_load(x[b].qs + 16)));
        s += (float)qa_hsum_i32x4(acc) * (qa_fp16_to_fp32_wasm(w[b].d) * qa_fp16_to_fp32_wasm(x[b].d));
    }
    return s;
}

/* 2 x 4 tile (encoder batches, prompts): each weight block is widened to 16 bits once for
 * 4 activation rows and each activation block once for 2 weight rows; a row's 4 integer
 * block sums are reduced together and its 4 float sums run in the lanes of one vector,
 * each in dot_ref's order and bits. */
static void tile_wasm(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) {
    const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;
    v128_t s[2] = {wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f)};
    for (int64_t b = 0; b < n / QK; b++) {
        v128_t wl[2][4], acc[2][4];
        for (int r = 0; r < 2; r++) {
            const qa_block_q8_0 *wb = (const qa_block_q8_0 *)(w + r * ws) + b;
            const v128_t q0 = wasm_v128_load(wb->qs), q1 = wasm_v128_load(wb->qs + 16);
            wl[r][0] = qa_i8_even(q0);
            wl[r][1] = qa_i8_odd(q0);
            wl[r][2] = qa_i8_even(q1);
            wl[r][3] = qa_i8_odd(q1);
        }
        for (int j = 0; j < 4; j++) {
            const qa_block_q8_0 *xb = (const qa_block_q8_0 *)(x + j * xs) + b;
            const v128_t y0 = wasm_v128_load(xb->qs), y1 = wasm_v128_load(xb->qs + 16);
            const v128_t a0 = qa_i8_even(y0), a1 = qa_i8_odd(y0), a2 = qa_i8_even(y1), a3 = qa_i8_odd(y1);
            for (int r = 0; r < 2; r++)
                acc[r][j] = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(wl[r][0], a0), wasm_i32x4_dot_i16x8(wl[r][1], a1)),
                                           wasm_i32x4_add(wasm_i32x4_dot_i16x8(wl[r][2], a2), wasm_i32x4_dot_i16x8(wl[r][3], a3)));
        }
        const v128_t dx = qa_f16x4_to_f32(qa_load32_rows4(x, xs, (size_t)b * sizeof(qa_block_q8_0)));
        for (int r = 0; r < 2; r++) {
            const v128_t p = wasm_f32x4_convert_i32x4(qa_hsum4_i32x4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
            const float dw = qa_fp16_to_fp32_wasm(((const qa_block_q8_0 *)(w + r * ws) + b)->d);
            s[r] = wasm_f32x4_add(s[r], wasm_f32x4_mul(p, wasm_f32x4_mul(wasm_f32x4_splat(dw), dx)));
        }
    }
    wasm_v128_store(out, s[0]);
    wasm_v128_store(out + 4, s[1]);
}

/* 4 weight rows x 1 activation row (decoding, the tied LM head): the activation block is
 * split into even / odd int16 lanes once for 4 rows; the 4 rows' float sums run in the
 * lanes of one vector, each in dot_ref's order and bits. */
static void rows4_wasm(int64_t n, const void *w_, size_t ws, const void *a_, float *out) {
    const uint8_t *w = (const uint8_t *)w_;
    const qa_block_q8_0 *x = (const qa_block_q8_0 *)a_;
    v128_t s = wasm_f32x4_splat(0.0f);
    for (int64_t b = 0; b < n / QK; b++) {
        const v128_t y0 = wasm_v128_load(x[b].qs), y1 = wasm_v128_load(x[b].qs + 16);
        const v128_t e0 = qa_i8_even(y0), o0 = qa_i8_odd(y0), e1 = qa_i8_even(y1), o1 = qa_i8_odd(y1);
        v128_t acc[4];
        for (int r = 0; r < 4; r++) {
            const qa_block_q8_0 *wb = (const qa_block_q8_0 *)(w + r * ws) + b;
            const v128_t q0 = wasm_v128_load(wb->qs), q1 = wasm_v128_load(wb->qs + 16);
            acc[r] = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(qa_i8_even(q0), e0), wasm_i32x4_dot_i16x8(qa_i8_odd(q0), o0)),
                                    wasm_i32x4_add(wasm_i32x4_dot_i16x8(qa_i8_even(q1), e1), wasm_i32x4_dot_i16x8(qa_i8_odd(q1), o1)));
        }
        const v128_t p = wasm_f32x4_convert_i32x4(qa_hsum4_i32x4(acc[0], acc[1], acc[2], acc[3]));
        const v128_t d = qa_f16x4_to_f32(qa_load32_rows4(w, ws, (size_t)b * sizeof(qa_block_q8_0)));
        s = wasm_f32x4_add(s, wasm_f32x4_mul(p, wasm_f32x4_mul(d, wasm_f32x4_splat(qa_fp16_to_fp32_wasm(x[b].d)))));
    }
    wasm_v128_store(out, s);
}
#endif

/* Q8_0 activations for the other 32-value block types (q4_0.c, ...): the dispatched
 * quantizer of this row. */
qa_type_traits qa_type_q8_0 = {
    .type = QA_T_Q8_0, .name = "Q8_0", .blck = QK, .size = sizeof(qa_block_q8_0), .act_type = QA_T_Q8_0,
    .to_float = to_float, .quantize_act = quantize_ref, .vec_dot_ref = dot_ref, .vec_dot = dot_ref,
    .quantize_act_ref = quantize_ref, .tile = NULL,
};

const qa_type_variants qa_type_q8_0_variants = {
    &qa_type_q8_0, .dot = {dot_ref, QA_X86_FN(dot_avx2), QA_WASM_FN(dot_wasm), NULL},
    .tile = {NULL, QA_X86_FN(tile_avx2), QA_WASM_FN(tile_wasm), QA_X86_FN(tile_vnni)},
    .rows4 = {NULL, NULL, QA_WASM_FN(rows4_wasm), NULL},
    .quantize = {quantize_ref, QA_X86_FN(quantize_avx2), QA_WASM_FN(quantize_wasm), NULL}};
