/* Q4_1 weights (32 values: fp16 scale d, fp16 minimum m, 4-bit q), byte-compatible with ggml:
 *   x[i] = d * q[i] + m
 * Dot with Q8_1 activations (a = da * qa, sa = da * sum(qa)):
 *   sum_i x[i] a[i] = d * da * sum_i q[i] qa[i] + m * sa
 * so the integer products stay unsigned x signed bytes (maddubs / dpbusd, no sign trick). */
#include "simd_blocks.h"
#include "variants.h"
#include "decoder_types.h"
#include "panel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void q4_1_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q4_1 *x = (const qa_block_q4_1 *)x_;
    for (int64_t b = 0; b < n / 32; b++, y += 32) {
        float d = qa_fp16_to_fp32(x[b].d), m = qa_fp16_to_fp32(x[b].m);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (x[b].qs[j] & 15) + m;
            y[j + 16] = d * (x[b].qs[j] >> 4) + m;
        }
    }
}

/* llama.cpp's x86 order (qa_lanes8 of simd_blocks.h): lane k = fma(d * da, integer sum of
 * values 4k..4k+3, lane k), the tree of the 8 lanes, plus m * sa summed apart in block order. */
static float q4_1_dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    float lanes[8] = {0}, mins = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int32_t p[8] = {0};
        for (int j = 0; j < 16; j++) {
            p[j >> 2] += (w[b].qs[j] & 15) * a[b].qs[j];
            p[4 + (j >> 2)] += (w[b].qs[j] >> 4) * a[b].qs[j + 16];
        }
        qa_lanes8_fma_ref(lanes, qa_fp16_to_fp32(w[b].d) * qa_fp16_to_fp32(a[b].d), p);
        mins += qa_fp16_to_fp32(w[b].m) * qa_fp16_to_fp32(a[b].s);
    }
    return qa_lanes8_sum(lanes) + mins;
}

#if defined(__x86_64__)
#define AVX2 QA_TARGET_MODEL_AVX2
#define VNNI QA_TARGET_MODEL_VNNI

AVX2 static inline __m256i nibbles(const uint8_t *qs) { /* 32 unsigned 4-bit values, in order */
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

AVX2 static float q4_1_dot_avx2(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) { /* one accumulator, blocks in order: ggml's order */
        __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(nibbles(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs)), ones));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d)), p, acc);
        mins += _cvtsh_ss(w[b].m) * _cvtsh_ss(a[b].s);
    }
    return qa_hsum256(acc) + mins;
}

/* The single-row dot with vpdpbusd (AVX-512 VNNI on 256-bit vectors), for decoding. */
VNNI static float q4_1_dot_vnni(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) { /* one accumulator, blocks in order: ggml's order */
        __m256 p = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d)), p, acc);
        mins += _cvtsh_ss(w[b].m) * _cvtsh_ss(a[b].s);
    }
    return qa_hsum256(acc) + mins;
}

/* 2 x 4 tile: each weight block is decoded once for 4 activation rows. */
#define Q4_1_TILE(DOT)                                                                              \
    __m256 acc[2][4];                                                                               \
    float mins[2][4] = {{0}};                                                                       \
    for (int r = 0; r < 2; r++)                                                                     \
        for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();                                \
    const __m256i ones = _mm256_set1_epi16(1);                                                      \
    (void)ones;                                                                                     \
    for (int64_t b = 0; b < n / 32; b++) {                                                          \
        const qa_block_q4_1 *w0 = (const qa_block_q4_1 *)w + b, *w1 = (const qa_block_q4_1 *)(w + ws) + b; \
        const __m256i q0 = nibbles(w0->qs), q1 = nibbles(w1->qs);                                   \
        const float d0 = _cvtsh_ss(w0->d), d1 = _cvtsh_ss(w1->d), m0 = _cvtsh_ss(w0->m), m1 = _cvtsh_ss(w1->m); \
        for (int j = 0; j < 4; j++) {                                                               \
            const qa_block_q8_1 *ab = (const qa_block_q8_1 *)(x + j * xs) + b;                     \
            const __m256i y = _mm256_loadu_si256((const __m256i *)ab->qs);                          \
            const float da = _cvtsh_ss(ab->d), sa = _cvtsh_ss(ab->s);                               \
            acc[0][j] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * da), _mm256_cvtepi32_ps(DOT(q0, y)), acc[0][j]); \
            acc[1][j] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * da), _mm256_cvtepi32_ps(DOT(q1, y)), acc[1][j]); \
            mins[0][j] += m0 * sa;                                                                  \
            mins[1][j] += m1 * sa;                                                                  \
        }                                                                                           \
    }                                                                                               \
    for (int r = 0; r < 2; r++)                                                                     \
        for (int j = 0; j < 4; j++) out[r * 4 + j] = qa_hsum256(acc[r][j]) + mins[r][j];

#define DOT_AVX2(q, y) _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), ones)
#define DOT_VNNI(q, y) _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y)

AVX2 static void q4_1_tile_avx2(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) {
    const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;
    Q4_1_TILE(DOT_AVX2)
}
VNNI static void q4_1_tile_vnni(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) {
    const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;
    Q4_1_TILE(DOT_VNNI)
}

/* 2 weight rows x the 16 tokens of a packed panel (panel.h), 512-bit: lanes 0-7 of a vector
 * are token 2p's 8 int32 / float lanes, 8-15 token 2p+1's. Per output the same steps as
 * q4_1_dot_avx2: acc = fmadd(d * da, lane sums, acc) block by block, mins += m * sa, then
 * the 8-lane sum + mins; only the vectors are wider. */
VNNI static void q4_1_panel_vnni(int64_t n, const void *w_, size_t ws, const void *p_, float *out) {
    const uint8_t *w = (const uint8_t *)w_;
    const qa_panel_q8_1 *p = (const qa_panel_q8_1 *)p_;
    enum { P = QA_PANEL_TOKENS / 2 };
    __m512 acc[2][P], mins[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < P; j++) acc[r][j] = _mm512_setzero_ps();
    /* the 16 bytes of nibbles in all four 128-bit lanes, lanes 1 and 3 shifted to the high
     * nibbles: values 0-31 in order, twice */
    const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0), m4 = _mm512_set1_epi8(15);
    for (int64_t b = 0; b < n / 32; b++) {
        const qa_block_q4_1 *w0 = (const qa_block_q4_1 *)w + b, *w1 = (const qa_block_q4_1 *)(w + ws) + b;
        const qa_panel_q8_1 *pb = p + b;
        const __m512i q0 = _mm512_and_si512(_mm512_srlv_epi64(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)w0->qs)), shift), m4);
        const __m512i q1 = _mm512_and_si512(_mm512_srlv_epi64(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)w1->qs)), shift), m4);
        const __m512 d0 = _mm512_set1_ps(_cvtsh_ss(w0->d)), d1 = _mm512_set1_ps(_cvtsh_ss(w1->d));
        for (int j = 0; j < P; j++) {
            const __m512i y = _mm512_loadu_si512((const void *)pb->qs[j]);
            const __m512 da = _mm512_loadu_ps(pb->d[j]);
            acc[0][j] = _mm512_fmadd_ps(_mm512_mul_ps(d0, da), _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, y)), acc[0][j]);
            acc[1][j] = _mm512_fmadd_ps(_mm512_mul_ps(d1, da), _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q1, y)), acc[1][j]);
        }
        const __m512 sa = _mm512_loadu_ps(pb->s);
        mins[0] = _mm512_add_ps(mins[0], _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(w0->m)), sa));
        mins[1] = _mm512_add_ps(mins[1], _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(w1->m)), sa));
    }
    for (int r = 0; r < 2; r++) {
        float m[QA_PANEL_TOKENS];
        _mm512_storeu_ps(m, mins[r]);
        for (int j = 0; j < P; j++) {
            const __m256 lo = _mm512_castps512_ps256(acc[r][j]);
            const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r][j]), 1));
            out[r * QA_PANEL_TOKENS + 2 * j] = qa_hsum256(lo) + m[2 * j];
            out[r * QA_PANEL_TOKENS + 2 * j + 1] = qa_hsum256(hi) + m[2 * j + 1];
        }
    }
}
#endif

#if defined(QA_WASM_SIMD)
/* An activation block made ready for q4_1_lanes, once for every weight row it meets: its
 * two halves as they are (relaxed SIMD) or as even / odd int16 lanes. */
static inline void q8_1_ready(const qa_block_q8_1 *a, v128_t y[4]) {
    const v128_t y0 = wasm_v128_load(a->qs), y1 = wasm_v128_load(a->qs + 16);
#if defined(QA_WASM_RELAXED)
    y[0] = y0, y[1] = y1;
#else
    y[0] = qa_i8_even(y0);
    y[1] = qa_i8_odd(y0);
    y[2] = qa_i8_even(y1);
    y[3] = qa_i8_odd(y1);
#endif
}

/* The 8 integer lane sums of qa_lanes8 (lane k: values 4k..4k+3) of weight block qs and a
 * ready activation block: lanes 0..3 in *lo (the low nibbles), 4..7 in *hi. */
static inline void q4_1_lanes(const uint8_t *qs, const v128_t y[4], v128_t *lo, v128_t *hi) {
#if defined(QA_WASM_RELAXED)
    const v128_t v = wasm_v128_load(qs); /* the nibbles are in 0..127: the i8 x i7 dot is exact */
    *lo = qa_dot4_i8_i7(y[0], wasm_v128_and(v, wasm_i8x16_splat(15)));
    *hi = qa_dot4_i8_i7(y[1], wasm_u8x16_shr(v, 4));
#else
    /* int16 lane k of the 16 bytes holds values 2k, 2k+1 (low nibbles) and 2k+16, 2k+17
     * (high), taken by masks and 16-bit shifts and paired with the even / odd activation
     * lanes: int32 lane k gets values 4k, 4k+2 by the even dot, 4k+1, 4k+3 by the odd */
    const v128_t m4 = wasm_i16x8_splat(15), v = wasm_v128_load(qs);
    *lo = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(v, m4), y[0]),
                         wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 8), m4), y[1]));
    *hi = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 4), m4), y[2]),
                         wasm_i32x4_dot_i16x8(wasm_u16x8_shr(v, 12), y[3]));
#endif
}

#define Q4_1_PMAX (4.0 * 15 * 128) /* the largest |integer lane sum| (qa_exact4) */

/* The single-row dot, checked (qa_lanes8_wasm): exact for any row; the 4-row and tiled
 * dots below run unchecked inside their bound and come here for a row outside it. */
static float q4_1_dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    qa_lanes8_wasm acc;
    qa_lanes8_zero_wasm(&acc);
    float mins = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        v128_t y[4], lo, hi;
        q8_1_ready(a + b, y);
        q4_1_lanes(w[b].qs, y, &lo, &hi);
        qa_lanes8_fma_wasm(&acc, qa_fp16_to_fp32_wasm(w[b].d) * qa_fp16_to_fp32_wasm(a[b].d), lo, hi, 1);
        mins += qa_fp16_to_fp32_wasm(w[b].m) * qa_fp16_to_fp32_wasm(a[b].s);
    }
    return qa_lanes8_sum_wasm(&acc) + mins;
}

#if !defined(QA_WASM_RELAXED)
/* One weight row x 2 activation rows (x, x + xs) into out[0], out[1]: each keeps
 * q4_1_dot_ref's lanes, order and bits (2 rows: the lane accumulators stay in registers). */
static void q4_1_rows1x2_wasm(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, float *out) {
    qa_lanes8_wasm acc[2];
    qa_exact4 ex;
    qa_lanes8_zero_wasm(&acc[0]);
    qa_lanes8_zero_wasm(&acc[1]);
    qa_exact4_init(&ex);
    v128_t mins = wasm_f32x4_splat(0.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        const qa_block_q4_1 *wb = (const qa_block_q4_1 *)w + b;
        const qa_block_q8_1 *a0 = (const qa_block_q8_1 *)x + b, *a1 = (const qa_block_q8_1 *)(x + xs) + b;
        v128_t y[4], lo, hi;
        const v128_t d = wasm_f32x4_mul(wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->d)),
                                        wasm_f32x4_make(qa_fp16_to_fp32_wasm(a0->d), qa_fp16_to_fp32_wasm(a1->d), 0.0f, 0.0f));
        qa_exact4_add(&ex, d);
        q8_1_ready(a0, y);
        q4_1_lanes(wb->qs, y, &lo, &hi);
        qa_lanes8_fma_wasm(&acc[0], wasm_f32x4_extract_lane(d, 0), lo, hi, 0);
        q8_1_ready(a1, y);
        q4_1_lanes(wb->qs, y, &lo, &hi);
        qa_lanes8_fma_wasm(&acc[1], wasm_f32x4_extract_lane(d, 1), lo, hi, 0);
        mins = wasm_f32x4_add(mins, wasm_f32x4_mul(wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->m)),
                                                   wasm_f32x4_make(qa_fp16_to_fp32_wasm(a0->s), qa_fp16_to_fp32_wasm(a1->s), 0.0f, 0.0f)));
    }
    out[0] = qa_exact4_ok(&ex, 0, Q4_1_PMAX) ? qa_lanes8_sum_wasm(&acc[0]) + wasm_f32x4_extract_lane(mins, 0) : q4_1_dot_wasm(n, w, x);
    out[1] = qa_exact4_ok(&ex, 1, Q4_1_PMAX) ? qa_lanes8_sum_wasm(&acc[1]) + wasm_f32x4_extract_lane(mins, 1) : q4_1_dot_wasm(n, w, x + xs);
}
#endif

#if defined(QA_WASM_RELAXED)
/* One weight row x 4 activation rows (xs bytes apart) into out[0..3], relaxed SIMD (every
 * row exact: no bound): the weight block's nibbles once for the 4 rows, their scale products
 * and m * sa in the lanes of one vector each. */
static void q4_1_rows1x4_wasm(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, float *out) {
    qa_lanes8_wasm acc[4];
    for (int j = 0; j < 4; j++) qa_lanes8_zero_wasm(&acc[j]);
    v128_t mins = wasm_f32x4_splat(0.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        const qa_block_q4_1 *wb = (const qa_block_q4_1 *)w + b;
        const v128_t v = wasm_v128_load(wb->qs), lo = wasm_v128_and(v, wasm_i8x16_splat(15)), hi = wasm_u8x16_shr(v, 4);
        const v128_t ds = qa_load32_rows4(x, xs, (size_t)b * sizeof(qa_block_q8_1)); /* d | s << 16 per row */
        float d[4];
        wasm_v128_store(d, wasm_f32x4_mul(wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->d)), qa_f16x4_to_f32(ds)));
        _Pragma("clang loop unroll(full)") for (int j = 0; j < 4; j++) {
            const int8_t *qs = ((const qa_block_q8_1 *)(x + j * xs) + b)->qs;
            qa_lanes8_fmav_wasm(&acc[j], wasm_f32x4_splat(d[j]), qa_dot4_i8_i7(wasm_v128_load(qs), lo),
                                qa_dot4_i8_i7(wasm_v128_load(qs + 16), hi));
        }
        mins = wasm_f32x4_add(mins, wasm_f32x4_mul(wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->m)), qa_f16x4_to_f32(wasm_u32x4_shr(ds, 16))));
    }
    float m[4];
    wasm_v128_store(m, mins);
    for (int j = 0; j < 4; j++) out[j] = qa_lanes8_sum_wasm(&acc[j]) + m[j];
}
#endif

QA_TILE_WASM(q4_1_tile_wasm, q4_1_rows1x4_wasm, q4_1_rows1x2_wasm) /* 2 x 4 tile (prompt batches) */

/* 4 weight rows x 1 activation row (decoding): the activation block is made ready once for
 * 4 rows; each row keeps q4_1_dot_ref's lanes, order and bits, the 4 rows' m * sa sums in
 * the lanes of one vector. */
static void q4_1_rows4_wasm(int64_t n, const void *w_, size_t ws, const void *a_, float *out) {
    const uint8_t *w = (const uint8_t *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    qa_lanes8_wasm acc[4];
    qa_exact4 ex;
    for (int r = 0; r < 4; r++) qa_lanes8_zero_wasm(&acc[r]);
    qa_exact4_init(&ex);
    v128_t mins = wasm_f32x4_splat(0.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        v128_t y[4];
        q8_1_ready(a + b, y);
        const v128_t dm = qa_load32_rows4(w, ws, (size_t)b * sizeof(qa_block_q4_1)); /* d | m << 16 per row */
        const v128_t da = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(a[b].d)), sa = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(a[b].s));
        const v128_t dv = wasm_f32x4_mul(qa_f16x4_to_f32(dm), da); /* exact: fp16 x fp16 */
        float d[4];
        qa_exact4_add(&ex, dv);
        wasm_v128_store(d, dv);
        _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {
            v128_t lo, hi;
            q4_1_lanes(((const qa_block_q4_1 *)(w + r * ws) + b)->qs, y, &lo, &hi);
            qa_lanes8_fma_wasm(&acc[r], d[r], lo, hi, 0);
        }
        mins = wasm_f32x4_add(mins, wasm_f32x4_mul(qa_f16x4_to_f32(wasm_u32x4_shr(dm, 16)), sa));
    }
    float m[4];
    wasm_v128_store(m, mins);
    for (int r = 0; r < 4; r++)
        out[r] = qa_exact4_ok(&ex, r, Q4_1_PMAX) ? qa_lanes8_sum_wasm(&acc[r]) + m[r] : q4_1_dot_wasm(n, w + r * ws, a_);
}

/* ---- the panel (panel.h qa_panel_q8_1_wasm): 2 weight rows x QA_PANEL_TOKENS tokens */

/* A weight block's nibbles as a panel slot pairs with them: the low and high nibbles as
 * bytes (relaxed), or q4_1_lanes' four masked int16 forms (plain) */
#if defined(QA_WASM_RELAXED)
enum { Q4_1_NV = 2 };
#else
enum { Q4_1_NV = 4 };
#endif
static inline void q4_1_widen(const uint8_t *qs, v128_t wv[Q4_1_NV]) {
    const v128_t v = wasm_v128_load(qs);
#if defined(QA_WASM_RELAXED)
    wv[0] = wasm_v128_and(v, wasm_i8x16_splat(15));
    wv[1] = wasm_u8x16_shr(v, 4);
#else
    const v128_t m4 = wasm_i16x8_splat(15);
    wv[0] = wasm_v128_and(v, m4);
    wv[1] = wasm_v128_and(wasm_u16x8_shr(v, 8), m4);
    wv[2] = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
    wv[3] = wasm_u16x8_shr(v, 12);
#endif
}

/* q4_1_lanes for a widened weight block and a panel slot (token j of a block) */
#if defined(QA_WASM_RELAXED)
static inline void q4_1_lanes_panel(const v128_t wv[Q4_1_NV], const int8_t *q, v128_t *lo, v128_t *hi) {
    *lo = qa_dot4_i8_i7(wasm_v128_load(q), wv[0]);
    *hi = qa_dot4_i8_i7(wasm_v128_load(q + 16), wv[1]);
}
#else
static inline void q4_1_lanes_panel(const v128_t wv[Q4_1_NV], const int16_t *q, v128_t *lo, v128_t *hi) {
    *lo = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wv[0], wasm_v128_load(q)), wasm_i32x4_dot_i16x8(wv[1], wasm_v128_load(q + 8)));
    *hi = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wv[2], wasm_v128_load(q + 16)), wasm_i32x4_dot_i16x8(wv[3], wasm_v128_load(q + 24)));
}

/* One weight row x token j of a panel, checked (q4_1_dot_wasm's steps): a row outside the
 * unchecked panel's bound */
static float q4_1_panel_one_wasm(int64_t n, const uint8_t *w, const qa_panel_q8_1_wasm *p, int j) {
    qa_lanes8_wasm acc;
    qa_lanes8_zero_wasm(&acc);
    float mins = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        const qa_block_q4_1 *wb = (const qa_block_q4_1 *)w + b;
        v128_t wv[Q4_1_NV], lo, hi;
        q4_1_widen(wb->qs, wv);
        q4_1_lanes_panel(wv, p[b].q[j], &lo, &hi);
        qa_lanes8_fma_wasm(&acc, qa_fp16_to_fp32_wasm(wb->d) * p[b].d[j], lo, hi, 1);
        mins += qa_fp16_to_fp32_wasm(wb->m) * p[b].s[j];
    }
    return qa_lanes8_sum_wasm(&acc) + mins;
}
#endif

#define Q4_1_CHUNK 32 /* weight blocks widened at a time (the stack: 2-4 KB of nibbles, 2 KB of scales) */

/* out[r * QA_PANEL_TOKENS + j] = dot(weight row r, token j), each in q4_1_dot_ref's lanes,
 * order and bits. As q8_0.c's panel: the 2 rows' blocks widened once into a stack chunk, each
 * token's 2 outputs run over it with their lane accumulators in registers; and the scale
 * products d * da (exact: fp16 x fp16) and the m * sa terms taken 4 tokens to a vector once
 * per weight block, so that a token's step per block is its 2 integer dots and 2 lane
 * steps per row. */
static void q4_1_panel_wasm(int64_t n, const void *w_, size_t ws, const void *panel_, float *out) {
    enum { T = QA_PANEL_TOKENS, G = QA_PANEL_TOKENS / 4 };
    const uint8_t *w = (const uint8_t *)w_;
    const qa_panel_q8_1_wasm *P = (const qa_panel_q8_1_wasm *)panel_;
    const int64_t nb = n / 32;
    qa_lanes8_wasm acc[2][T];
    qa_exact4 ex[2][G];
    v128_t mins[2][G], wv[Q4_1_CHUNK][2][Q4_1_NV];
    float ds[Q4_1_CHUNK][2][T];
    for (int r = 0; r < 2; r++) { /* acc starts in the first chunk (zeroing it here is a memset call) */
        for (int g = 0; g < G; g++) qa_exact4_init(&ex[r][g]), mins[r][g] = wasm_f32x4_splat(0.0f);
        for (int j = 0; j < T && nb == 0; j++) qa_lanes8_zero_wasm(&acc[r][j]);
    }
    for (int64_t c0 = 0; c0 < nb; c0 += Q4_1_CHUNK) {
        const int nc = nb - c0 < Q4_1_CHUNK ? (int)(nb - c0) : Q4_1_CHUNK;
        for (int i = 0; i < nc; i++) {
            const qa_panel_q8_1_wasm *pb = P + c0 + i;
            for (int r = 0; r < 2; r++) {
                const qa_block_q4_1 *wb = (const qa_block_q4_1 *)(w + r * ws) + c0 + i;
                const v128_t d = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->d)), m = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->m));
                q4_1_widen(wb->qs, wv[i][r]);
                for (int g = 0; g < G; g++) {
                    const v128_t dv = wasm_f32x4_mul(d, wasm_v128_load(pb->d + 4 * g));
                    wasm_v128_store(ds[i][r] + 4 * g, dv);
                    qa_exact4_add(&ex[r][g], dv);
                    mins[r][g] = wasm_f32x4_add(mins[r][g], wasm_f32x4_mul(m, wasm_v128_load(pb->s + 4 * g)));
                }
            }
        }
        for (int j = 0; j < T; j++) {
            qa_lanes8_wasm a0, a1;
            if (c0) a0 = acc[0][j], a1 = acc[1][j];
            else qa_lanes8_zero_wasm(&a0), qa_lanes8_zero_wasm(&a1);
            for (int i = 0; i < nc; i++) {
                v128_t lo, hi;
                q4_1_lanes_panel(wv[i][0], P[c0 + i].q[j], &lo, &hi);
                qa_lanes8_fma_wasm(&a0, ds[i][0][j], lo, hi, 0);
                q4_1_lanes_panel(wv[i][1], P[c0 + i].q[j], &lo, &hi);
                qa_lanes8_fma_wasm(&a1, ds[i][1][j], lo, hi, 0);
            }
            acc[0][j] = a0;
            acc[1][j] = a1;
        }
    }
    for (int r = 0; r < 2; r++) {
        float m[T];
        for (int g = 0; g < G; g++) wasm_v128_store(m + 4 * g, mins[r][g]);
        for (int j = 0; j < T; j++)
#if defined(QA_WASM_RELAXED) /* every row exact: no bound */
            out[r * T + j] = qa_lanes8_sum_wasm(&acc[r][j]) + m[j];
#else
            out[r * T + j] = qa_exact4_ok(&ex[r][j / 4], j % 4, Q4_1_PMAX) ? qa_lanes8_sum_wasm(&acc[r][j]) + m[j]
                                                                           : q4_1_panel_one_wasm(n, w + r * ws, P, j);
#endif
    }
}
#endif

qa_type_traits qa_type_q4_1 = {QA_T_Q4_1, "Q4_1", 32, sizeof(qa_block_q4_1), QA_T_Q8_1,
                               q4_1_to_float, qa_q8_1_quantize_ref, q4_1_dot_ref, q4_1_dot_ref,
                               qa_q8_1_quantize_ref, NULL};

const qa_type_variants qa_type_q4_1_variants = {
    &qa_type_q4_1, .dot = {q4_1_dot_ref, QA_X86_FN(q4_1_dot_avx2), QA_WASM_FN(q4_1_dot_wasm), QA_X86_FN(q4_1_dot_vnni)},
    .tile = {NULL, QA_X86_FN(q4_1_tile_avx2), QA_WASM_FN(q4_1_tile_wasm), QA_X86_FN(q4_1_tile_vnni)},
    .rows4 = {NULL, NULL, QA_WASM_FN(q4_1_rows4_wasm), NULL},
    .panel = {NULL, NULL, QA_WASM_FN(q4_1_panel_wasm), QA_X86_FN(q4_1_panel_vnni)}};
