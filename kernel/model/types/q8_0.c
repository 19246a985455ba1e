/* Q8_0: blocks of 32 int8 with an fp16 scale (34 bytes, ggml's layout; the struct is in
 * types.h because Q8_0 is also the activation type of every 32-value block type).
 *   x[i] = d * qs[i],   d = max|x| / 127
 * Weights Q8_0 x activations Q8_0: an integer dot per block, scaled by both d. */
#include <math.h>

#include "panel.h"
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

/* llama.cpp's x86 order (qa_lanes8 of simd_blocks.h): lane k = fma(dw * dx, integer sum of
 * values 4k..4k+3, lane k) block by block, then the tree of the 8 lanes. */
static float dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q8_0 *w = (const qa_block_q8_0 *)w_, *x = (const qa_block_q8_0 *)a_;
    float lanes[8] = {0};
    for (int64_t b = 0; b < n / QK; b++) {
        int32_t p[8] = {0};
        for (int j = 0; j < QK; j++) p[j >> 2] += (int32_t)w[b].qs[j] * x[b].qs[j];
        qa_lanes8_fma_ref(lanes, qa_fp16_to_fp32(w[b].d) * qa_fp16_to_fp32(x[b].d), p);
    }
    return qa_lanes8_sum(lanes);
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

/* An activation block made ready for q8_0_lanes, once for every weight row it meets: its
 * two halves as they are (relaxed SIMD) or as even / odd int16 lanes. */
static inline void q8_0_ready(const int8_t *qs, v128_t y[4]) {
    const v128_t y0 = wasm_v128_load(qs), y1 = wasm_v128_load(qs + 16);
#if defined(QA_WASM_RELAXED)
    y[0] = y0, y[1] = y1;
#else
    y[0] = qa_i8_even(y0);
    y[1] = qa_i8_odd(y0);
    y[2] = qa_i8_even(y1);
    y[3] = qa_i8_odd(y1);
#endif
}

#if defined(QA_WASM_RELAXED)
/* w * x summed 4 by 4 as |w| * (x with w's sign), ggml's sign trick (x is -127..127 from
 * the quantizers, so the sign flip cannot wrap). |w| is 0..127 except for a weight of -128
 * (which ggml's quantizers never write): its 128 is read unsigned by x86 engines (pmaddubsw)
 * and exact there, as in native's AVX2 dot. */
static inline v128_t q8_0_dot4(v128_t w, v128_t x) {
    const v128_t m = wasm_i8x16_shr(w, 7);
    return qa_dot4_i8_i7(wasm_i8x16_sub(wasm_v128_xor(x, m), m), wasm_i8x16_abs(w));
}
#endif

/* The 8 integer lane sums of qa_lanes8 (lane k: values 4k..4k+3) of weight block qs and a
 * ready activation block: lanes 0..3 in *lo, 4..7 in *hi. */
static inline void q8_0_lanes(const int8_t *qs, const v128_t y[4], v128_t *lo, v128_t *hi) {
    const v128_t w0 = wasm_v128_load(qs), w1 = wasm_v128_load(qs + 16);
#if defined(QA_WASM_RELAXED)
    *lo = q8_0_dot4(w0, y[0]);
    *hi = q8_0_dot4(w1, y[1]);
#else /* int32 lane k: values 4k, 4k+2 by the even dot, 4k+1, 4k+3 by the odd */
    *lo = wasm_i32x4_add(wasm_i32x4_dot_i16x8(qa_i8_even(w0), y[0]), wasm_i32x4_dot_i16x8(qa_i8_odd(w0), y[1]));
    *hi = wasm_i32x4_add(wasm_i32x4_dot_i16x8(qa_i8_even(w1), y[2]), wasm_i32x4_dot_i16x8(qa_i8_odd(w1), y[3]));
#endif
}

#define Q8_0_PMAX (4.0 * 128 * 128) /* the largest |integer lane sum| (qa_exact4) */

/* The single-row dot, checked (qa_lanes8_wasm): exact for any row; the 4-row and tiled
 * dots below run unchecked inside their bound and come here for a row outside it. */
static float dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q8_0 *w = (const qa_block_q8_0 *)w_, *x = (const qa_block_q8_0 *)a_;
    qa_lanes8_wasm acc;
    qa_lanes8_zero_wasm(&acc);
    for (int64_t b = 0; b < n / QK; b++) {
        v128_t y[4], lo, hi;
        q8_0_ready(x[b].qs, y);
        q8_0_lanes(w[b].qs, y, &lo, &hi);
        qa_lanes8_fma_wasm(&acc, qa_fp16_to_fp32_wasm(w[b].d) * qa_fp16_to_fp32_wasm(x[b].d), lo, hi, 1);
    }
    return qa_lanes8_sum_wasm(&acc);
}

#if !defined(QA_WASM_RELAXED)
/* One weight row x 2 activation rows (x, x + xs) into out[0], out[1]: each keeps dot_ref's
 * lanes, order and bits (2 rows: the lane accumulators stay in registers). */
static void rows1x2_wasm(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, float *out) {
    qa_lanes8_wasm acc[2];
    qa_exact4 ex;
    qa_lanes8_zero_wasm(&acc[0]);
    qa_lanes8_zero_wasm(&acc[1]);
    qa_exact4_init(&ex);
    for (int64_t b = 0; b < n / QK; b++) {
        const qa_block_q8_0 *wb = (const qa_block_q8_0 *)w + b;
        const qa_block_q8_0 *a0 = (const qa_block_q8_0 *)x + b, *a1 = (const qa_block_q8_0 *)(x + xs) + b;
        v128_t y[4], lo, hi;
        const v128_t d = wasm_f32x4_mul(wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->d)),
                                        wasm_f32x4_make(qa_fp16_to_fp32_wasm(a0->d), qa_fp16_to_fp32_wasm(a1->d), 0.0f, 0.0f));
        qa_exact4_add(&ex, d);
        q8_0_ready(a0->qs, y);
        q8_0_lanes(wb->qs, y, &lo, &hi);
        qa_lanes8_fma_wasm(&acc[0], wasm_f32x4_extract_lane(d, 0), lo, hi, 0);
        q8_0_ready(a1->qs, y);
        q8_0_lanes(wb->qs, y, &lo, &hi);
        qa_lanes8_fma_wasm(&acc[1], wasm_f32x4_extract_lane(d, 1), lo, hi, 0);
    }
    out[0] = qa_exact4_ok(&ex, 0, Q8_0_PMAX) ? qa_lanes8_sum_wasm(&acc[0]) : dot_wasm(n, w, x);
    out[1] = qa_exact4_ok(&ex, 1, Q8_0_PMAX) ? qa_lanes8_sum_wasm(&acc[1]) : dot_wasm(n, w, x + xs);
}
#endif

#if defined(QA_WASM_RELAXED)
/* One weight row x 4 activation rows (xs bytes apart) into out[0..3], relaxed SIMD (every
 * row exact: no bound): the weight block's |w| and signs once for the 4 rows, the 4 scale
 * products in one vector. */
static void rows1x4_wasm(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, float *out) {
    qa_lanes8_wasm acc[4];
    for (int j = 0; j < 4; j++) qa_lanes8_zero_wasm(&acc[j]);
    for (int64_t b = 0; b < n / QK; b++) {
        const qa_block_q8_0 *wb = (const qa_block_q8_0 *)w + b;
        const v128_t w0 = wasm_v128_load(wb->qs), w1 = wasm_v128_load(wb->qs + 16);
        const v128_t m0 = wasm_i8x16_shr(w0, 7), m1 = wasm_i8x16_shr(w1, 7), a0 = wasm_i8x16_abs(w0), a1 = wasm_i8x16_abs(w1);
        float d[4];
        wasm_v128_store(d, wasm_f32x4_mul(wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->d)),
                                          qa_f16x4_to_f32(qa_load32_rows4(x, xs, (size_t)b * sizeof(qa_block_q8_0)))));
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j++) {
            const int8_t *qs = ((const qa_block_q8_0 *)(x + j * xs) + b)->qs;
            const v128_t y0 = wasm_v128_load(qs), y1 = wasm_v128_load(qs + 16);
            qa_lanes8_fmav_wasm(&acc[j], wasm_f32x4_splat(d[j]), qa_dot4_i8_i7(wasm_i8x16_sub(wasm_v128_xor(y0, m0), m0), a0),
                                qa_dot4_i8_i7(wasm_i8x16_sub(wasm_v128_xor(y1, m1), m1), a1));
        }
    }
    for (int j = 0; j < 4; j++) out[j] = qa_lanes8_sum_wasm(&acc[j]);
}
#endif

QA_TILE_WASM(tile_wasm, rows1x4_wasm, rows1x2_wasm) /* 2 x 4 tile (encoder batches, prompts) */

/* 4 weight rows x 1 activation row (decoding, the tied LM head): the activation block is
 * made ready once for 4 rows; each row keeps dot_ref's lanes, order
 * and bits. */
static void rows4_wasm(int64_t n, const void *w_, size_t ws, const void *a_, float *out) {
    const uint8_t *w = (const uint8_t *)w_;
    const qa_block_q8_0 *x = (const qa_block_q8_0 *)a_;
    qa_lanes8_wasm acc[4];
    qa_exact4 ex;
    for (int r = 0; r < 4; r++) qa_lanes8_zero_wasm(&acc[r]);
    qa_exact4_init(&ex);
    for (int64_t b = 0; b < n / QK; b++) {
        v128_t y[4];
        float d[4]; /* dw * dx: exact (fp16 x fp16) */
        q8_0_ready(x[b].qs, y);
        const v128_t dv = wasm_f32x4_mul(qa_f16x4_to_f32(qa_load32_rows4(w, ws, (size_t)b * sizeof(qa_block_q8_0))),
                                         wasm_f32x4_splat(qa_fp16_to_fp32_wasm(x[b].d)));
        qa_exact4_add(&ex, dv);
        wasm_v128_store(d, dv);
        _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {
            v128_t lo, hi;
            q8_0_lanes(((const qa_block_q8_0 *)(w + r * ws) + b)->qs, y, &lo, &hi);
            qa_lanes8_fma_wasm(&acc[r], d[r], lo, hi, 0);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = qa_exact4_ok(&ex, r, Q8_0_PMAX) ? qa_lanes8_sum_wasm(&acc[r]) : dot_wasm(n, w + r * ws, a_);
}
/* ---- the panel (panel.h): 2 weight rows x QA_PANEL_TOKENS tokens, both builds */

/* Token j of a panel: each block widened as q8_0_ready's plain form, its scale as a float */
static void pack_wasm(const void *a_, int j, void *panel_, int64_t n) {
    const qa_block_q8_0 *a = (const qa_block_q8_0 *)a_;
    qa_panel_q8_0 *p = (qa_panel_q8_0 *)panel_;
    for (int64_t b = 0; b < n / QK; b++) {
        qa_widen32_wasm(a[b].qs, p[b].q[j]);
        p[b].d[j] = qa_fp16_to_fp32_wasm(a[b].d);
    }
}

/* A weight block widened as a panel slot is (even / odd int16 of each half) */
static inline void q8_0_widen(const int8_t *qs, v128_t wv[4]) {
    const v128_t q0 = wasm_v128_load(qs), q1 = wasm_v128_load(qs + 16);
    wv[0] = qa_i8_even(q0);
    wv[1] = qa_i8_odd(q0);
    wv[2] = qa_i8_even(q1);
    wv[3] = qa_i8_odd(q1);
}

/* q8_0_lanes for widened weights and a panel slot: int32 lane k sums values 4k..4k+3 */
static inline void q8_0_lanes16(const v128_t wv[4], const int16_t *q, v128_t *lo, v128_t *hi) {
    *lo = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wv[0], wasm_v128_load(q)), wasm_i32x4_dot_i16x8(wv[1], wasm_v128_load(q + 8)));
    *hi = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wv[2], wasm_v128_load(q + 16)), wasm_i32x4_dot_i16x8(wv[3], wasm_v128_load(q + 24)));
}

/* One weight row x token j of a panel, checked (dot_wasm's steps): a row the unchecked
 * panel's bound does not cover (plain build only) */
static float panel_one_wasm(int64_t n, const uint8_t *w, const qa_panel_q8_0 *p, int j) {
    qa_lanes8_wasm acc;
    qa_lanes8_zero_wasm(&acc);
    for (int64_t b = 0; b < n / QK; b++) {
        const qa_block_q8_0 *wb = (const qa_block_q8_0 *)w + b;
        v128_t wv[4], lo, hi;
        q8_0_widen(wb->qs, wv);
        q8_0_lanes16(wv, p[b].q[j], &lo, &hi);
        qa_lanes8_fma_wasm(&acc, qa_fp16_to_fp32_wasm(wb->d) * p[b].d[j], lo, hi, 1);
    }
    return qa_lanes8_sum_wasm(&acc);
}

#define PANEL_CHUNK 32 /* weight blocks widened at a time: 4 KB on the stack */

/* out[r * QA_PANEL_TOKENS + j] = dot(weight row r, token j), each in dot_ref's lanes, order
 * and bits. Every weight block is widened once for the panel's tokens (into a stack chunk)
 * and every activation block was widened once per matmul (pack_wasm), so the inner loop is
 * the integer dots and each output's lane steps; a token runs its 2 rows over the chunk with
 * its accumulators in registers. */
static void panel_wasm(int64_t n, const void *w_, size_t ws, const void *panel_, float *out) {
    enum { T = QA_PANEL_TOKENS };
    const uint8_t *w = (const uint8_t *)w_;
    const qa_panel_q8_0 *P = (const qa_panel_q8_0 *)panel_;
    const int64_t nb = n / QK;
    qa_lanes8_wasm acc[2][T];
    qa_exact4 ex[2][T / 4];
    v128_t wv[PANEL_CHUNK][2][4];
    float dw[PANEL_CHUNK][2];
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < T; j++) qa_lanes8_zero_wasm(&acc[r][j]);
        for (int g = 0; g < T / 4; g++) qa_exact4_init(&ex[r][g]);
    }
    for (int64_t c0 = 0; c0 < nb; c0 += PANEL_CHUNK) {
        const int nc = nb - c0 < PANEL_CHUNK ? (int)(nb - c0) : PANEL_CHUNK;
        for (int i = 0; i < nc; i++)
            for (int r = 0; r < 2; r++) {
                const qa_block_q8_0 *wb = (const qa_block_q8_0 *)(w + r * ws) + c0 + i;
                q8_0_widen(wb->qs, wv[i][r]);
                dw[i][r] = qa_fp16_to_fp32_wasm(wb->d);
#if !defined(QA_WASM_RELAXED) /* the f64x2 build's bound (the relaxed one needs none) */
                for (int g = 0; g < T / 4; g++)
                    qa_exact4_add(&ex[r][g], wasm_f32x4_mul(wasm_f32x4_splat(dw[i][r]), wasm_v128_load(P[c0 + i].d + 4 * g)));
#endif
            }
        for (int j = 0; j < T; j++) {
            qa_lanes8_wasm a0 = acc[0][j], a1 = acc[1][j];
            for (int i = 0; i < nc; i++) {
                const qa_panel_q8_0 *pb = P + c0 + i;
                const float dx = pb->d[j];
                v128_t lo, hi;
                q8_0_lanes16(wv[i][0], pb->q[j], &lo, &hi);
                qa_lanes8_fma_wasm(&a0, dw[i][0] * dx, lo, hi, 0);
                q8_0_lanes16(wv[i][1], pb->q[j], &lo, &hi);
                qa_lanes8_fma_wasm(&a1, dw[i][1] * dx, lo, hi, 0);
            }
            acc[0][j] = a0;
            acc[1][j] = a1;
        }
    }
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < T; j++)
            out[r * T + j] = qa_exact4_ok(&ex[r][j / 4], j % 4, Q8_0_PMAX) ? qa_lanes8_sum_wasm(&acc[r][j])
                                                                         : panel_one_wasm(n, w + r * ws, P, j);
}
#endif


/* Q8_0 activations for the other 32-value block types (q4_0.c, ...): the dispatched
 * quantizer of this row. */
qa_type_traits qa_type_q8_0 = {
    .type = QA_T_Q8_0, .name = "Q8_0", .blck = QK, .size = sizeof(qa_block_q8_0), .act_type = QA_T_Q8_0,
    .to_float = to_float, .quantize_act = quantize_ref, .vec_dot_ref = dot_ref, .vec_dot = dot_ref,
    .quantize_act_ref = quantize_ref, .tile = NULL, .panel_block = QA_PANEL_BLOCK_WASM(sizeof(qa_panel_q8_0)),
};

const qa_type_variants qa_type_q8_0_variants = {
    &qa_type_q8_0, .dot = {dot_ref, QA_X86_FN(dot_avx2), QA_WASM_FN(dot_wasm), NULL},
    .tile = {NULL, QA_X86_FN(tile_avx2), QA_WASM_FN(tile_wasm), QA_X86_FN(tile_vnni)},
    .rows4 = {NULL, NULL, QA_WASM_FN(rows4_wasm), NULL},
    .pack = {NULL, NULL, QA_WASM_FN(pack_wasm), NULL}, .panel = {NULL, NULL, QA_WASM_FN(panel_wasm), NULL},
    .quantize = {quantize_ref, QA_X86_FN(quantize_avx2), QA_WASM_FN(quantize_wasm), NULL}};
