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

static float q4_1_dot_ref(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int32_t acc = 0;
        for (int j = 0; j < 16; j++)
            acc += (w[b].qs[j] & 15) * a[b].qs[j] + (w[b].qs[j] >> 4) * a[b].qs[j + 16];
        s += qa_fp16_to_fp32(w[b].d) * qa_fp16_to_fp32(a[b].d) * (float)acc
           + qa_fp16_to_fp32(w[b].m) * qa_fp16_to_fp32(a[b].s);
    }
    return s;
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
/* SIMD128: the nibbles (0..15) are valid int8 lanes, so the signed 8-bit dot of
 * simd_blocks.h serves; each block's integer sum then enters the float sum in the
 * reference's order (the same bits as q4_1_dot_ref). */
static inline int32_t q4_1_block_dot(v128_t lo, v128_t hi, const qa_block_q8_1 *a) {
    return qa_hsum_i32x4(wasm_i32x4_add(qa_dot_i8x16(lo, wasm_v128_load(a->qs)),
                                        qa_dot_i8x16(hi, wasm_v128_load(a->qs + 16))));
}

static float q4_1_dot_wasm(int64_t n, const void *w_, const void *a_) {
    const qa_block_q4_1 *w = (const qa_block_q4_1 *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    const v128_t m4 = wasm_i8x16_splat(15);
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        const v128_t q = wasm_v128_load(w[b].qs);
        int32_t acc = q4_1_block_dot(wasm_v128_and(q, m4), wasm_u8x16_shr(q, 4), a + b);
        s += qa_fp16_to_fp32_wasm(w[b].d) * qa_fp16_to_fp32_wasm(a[b].d) * (float)acc
           + qa_fp16_to_fp32_wasm(w[b].m) * qa_fp16_to_fp32_wasm(a[b].s);
    }
    return s;
}

/* The nibbles of a Q4_1 block as 4 int16 vectors: lane k of the 16 bytes holds values
 * 2k, 2k+1 (low nibbles) and 2k+16, 2k+17 (high nibbles), taken by masks and 16-bit shifts;
 * they pair with the even / odd int8 lanes of the activation halves (qa_i8_even / odd). */
static inline void q4_1_nibbles16(const uint8_t *qs, v128_t q[4]) {
    const v128_t m4 = wasm_i16x8_splat(15), v = wasm_v128_load(qs);
    q[0] = wasm_v128_and(v, m4);
    q[1] = wasm_v128_and(wasm_u16x8_shr(v, 8), m4);
    q[2] = wasm_v128_and(wasm_u16x8_shr(v, 4), m4);
    q[3] = wasm_u16x8_shr(v, 12);
}

static inline v128_t q4_1_dot16(const v128_t q[4], v128_t e0, v128_t o0, v128_t e1, v128_t o1) {
    return wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(q[0], e0), wasm_i32x4_dot_i16x8(q[1], o0)),
                          wasm_i32x4_add(wasm_i32x4_dot_i16x8(q[2], e1), wasm_i32x4_dot_i16x8(q[3], o1)));
}

/* 2 x 4 tile (prompt batches): each weight block's nibbles are decoded once for 4
 * activation rows; a weight row's 4 block sums are reduced together and its 4 float sums
 * run in the lanes of one vector, each in q4_1_dot_ref's order and bits. */
static void q4_1_tile_wasm(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) {
    const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;
    v128_t s[2] = {wasm_f32x4_splat(0.0f), wasm_f32x4_splat(0.0f)};
    for (int64_t b = 0; b < n / 32; b++) {
        v128_t q[2][4], acc[2][4];
        q4_1_nibbles16(((const qa_block_q4_1 *)w + b)->qs, q[0]);
        q4_1_nibbles16(((const qa_block_q4_1 *)(w + ws) + b)->qs, q[1]);
        for (int j = 0; j < 4; j++) {
            const qa_block_q8_1 *ab = (const qa_block_q8_1 *)(x + j * xs) + b;
            const v128_t y0 = wasm_v128_load(ab->qs), y1 = wasm_v128_load(ab->qs + 16);
            const v128_t e0 = qa_i8_even(y0), o0 = qa_i8_odd(y0), e1 = qa_i8_even(y1), o1 = qa_i8_odd(y1);
            acc[0][j] = q4_1_dot16(q[0], e0, o0, e1, o1);
            acc[1][j] = q4_1_dot16(q[1], e0, o0, e1, o1);
        }
        const v128_t ds = qa_load32_rows4(x, xs, (size_t)b * sizeof(qa_block_q8_1)); /* d | s << 16 per row */
        const v128_t da = qa_f16x4_to_f32(ds), sa = qa_f16x4_to_f32(wasm_u32x4_shr(ds, 16));
        for (int r = 0; r < 2; r++) {
            const qa_block_q4_1 *wb = (const qa_block_q4_1 *)(w + r * ws) + b;
            const v128_t p = wasm_f32x4_convert_i32x4(qa_hsum4_i32x4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
            const v128_t d = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->d)), m = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(wb->m));
            s[r] = wasm_f32x4_add(s[r], wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(d, da), p), wasm_f32x4_mul(m, sa)));
        }
    }
    wasm_v128_store(out, s[0]);
    wasm_v128_store(out + 4, s[1]);
}

/* 4 weight rows x 1 activation row (decoding): the activation block is split into even /
 * odd int16 lanes once for 4 rows, and the 4 rows' float sums run in the lanes of one
 * vector, each in q4_1_dot_ref's order and bits. */
static void q4_1_rows4_wasm(int64_t n, const void *w_, size_t ws, const void *a_, float *out) {
    const uint8_t *w = (const uint8_t *)w_;
    const qa_block_q8_1 *a = (const qa_block_q8_1 *)a_;
    v128_t s = wasm_f32x4_splat(0.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        const v128_t y0 = wasm_v128_load(a[b].qs), y1 = wasm_v128_load(a[b].qs + 16);
        const v128_t e0 = qa_i8_even(y0), o0 = qa_i8_odd(y0), e1 = qa_i8_even(y1), o1 = qa_i8_odd(y1);
        v128_t acc[4];
        for (int r = 0; r < 4; r++) {
            v128_t q[4];
            q4_1_nibbles16(((const qa_block_q4_1 *)(w + r * ws) + b)->qs, q);
            acc[r] = q4_1_dot16(q, e0, o0, e1, o1);
        }
        const v128_t p = wasm_f32x4_convert_i32x4(qa_hsum4_i32x4(acc[0], acc[1], acc[2], acc[3]));
        const v128_t dm = qa_load32_rows4(w, ws, (size_t)b * sizeof(qa_block_q4_1)); /* d | m << 16 per row */
        const v128_t d = qa_f16x4_to_f32(dm), m = qa_f16x4_to_f32(wasm_u32x4_shr(dm, 16));
        const v128_t da = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(a[b].d)), sa = wasm_f32x4_splat(qa_fp16_to_fp32_wasm(a[b].s));
        s = wasm_f32x4_add(s, wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(d, da), p), wasm_f32x4_mul(m, sa)));
    }
    wasm_v128_store(out, s);
}
#endif

qa_type_traits qa_type_q4_1 = {QA_T_Q4_1, "Q4_1", 32, sizeof(qa_block_q4_1), QA_T_Q8_1,
                               q4_1_to_float, qa_q8_1_quantize_ref, q4_1_dot_ref, q4_1_dot_ref,
                               qa_q8_1_quantize_ref, NULL};

const qa_type_variants qa_type_q4_1_variants = {
    &qa_type_q4_1, .dot = {q4_1_dot_ref, QA_X86_FN(q4_1_dot_avx2), QA_WASM_FN(q4_1_dot_wasm), QA_X86_FN(q4_1_dot_vnni)},
    .tile = {NULL, QA_X86_FN(q4_1_tile_avx2), QA_WASM_FN(q4_1_tile_wasm), QA_X86_FN(q4_1_tile_vnni)},
    .rows4 = {NULL, NULL, QA_WASM_FN(q4_1_rows4_wasm), NULL},
    .panel = {NULL, NULL, NULL, QA_X86_FN(q4_1_panel_vnni)}};
