/* Helpers shared by the block types' SIMD variants (static inline; included by the type files).
 *
 * x86: AVX2 + FMA + F16C variants are compiled with QA_TARGET_MODEL_AVX2 and chosen at run
 * time (qa_have_avx2 && qa_have_fma_f16c); AVX-512 VNNI tiles with QA_TARGET_MODEL_VNNI.
 * wasm32: SIMD128 variants are compiled in directly (-msimd128). */
#ifndef QA_MODEL_SIMD_BLOCKS_H
#define QA_MODEL_SIMD_BLOCKS_H

#include <math.h>

#include "../../simd.h"
#include "../types.h"

/* ggml's x86 float order for the 32-value block dots (llama.cpp's AVX2 Q4_1 and Q8_0 dots,
 * and this kernel's AVX2 / VNNI dots, tiles and panels): 8 float lanes, lane k taking the
 * integer sum of values 4k..4k+3 of each block as  lane_k = fma(scale, sum_k, lane_k)  block
 * by block (one rounding), then qa_hsum256's tree. The scalar references and the SIMD128
 * variants keep it, so every variant (and wasm) gives the bits of the native default. */
static inline void qa_lanes8_fma_ref(float l[8], float scale, const int32_t p[8]) {
    for (int k = 0; k < 8; k++) l[k] = fmaf(scale, (float)p[k], l[k]);
}
static inline float qa_lanes8_sum(const float l[8]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

#if defined(QA_X86)
#define QA_TARGET_MODEL_AVX2 __attribute__((target("avx2,fma,f16c")))
#define QA_TARGET_MODEL_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

QA_TARGET_MODEL_AVX2 static inline float qa_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* max |x| over the 32 floats of v0..v3 (the Q8_0 / Q8_1 activation block scale) */
QA_TARGET_MODEL_AVX2 static inline float qa_amax32(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    return _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
}

/* sum over 32 int8 products a*b as 8 float lanes; sign trick: maddubs(|a|, sign(b, a)). */
QA_TARGET_MODEL_AVX2 static inline __m256 qa_mul_sum_i8(__m256i a, __m256i b) {
    const __m256i ax = _mm256_sign_epi8(a, a), sy = _mm256_sign_epi8(b, a);
    const __m256i dot = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, _mm256_set1_epi16(1)));
}

/* 2 x 4 tile over Q8_0 activations, in the order of the single-row dots (and of ggml):
 * one 8-lane accumulator per output, acc += (dw * dx) * s block by block. The statement
 * block passed in loads weight block b of
 * rows 0 and 1 into a0, a1 (32 int8 each) and their scales into dw0, dw1. Each weight
 * block is loaded (and decoded) once for 4 activation rows, its |w| taken once with it: the
 * sign trick maddubs(|w|, sign(x, w)) = sum w*x, as in the single-row dot, so a weight of
 * -128 reads as unsigned 128 (exact) and the sign moves onto x (-127..127 from the
 * quantizers, so it cannot wrap). DOT4(aw, sx) sums 4 adjacent u8*s8 products into int32
 * lanes (maddubs + madd on AVX2, vpdpbusd on VNNI). */
#define QA_TILE_Q8_BODY(DOT4, ...)                                                               \
    __m256 acc[2][4];                                                                            \
    for (int r = 0; r < 2; r++)                                                                  \
        for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();                             \
    for (int b = 0; b < nb; b++) {                                                               \
        __m256i a0, a1;                                                                          \
        __m256 dw0, dw1;                                                                         \
        __VA_ARGS__                                                                              \
        const __m256i aw0 = _mm256_sign_epi8(a0, a0), aw1 = _mm256_sign_epi8(a1, a1);            \
        for (int j = 0; j < 4; j++) {                                                            \
            const qa_block_q8_0 *xb = (const qa_block_q8_0 *)((const uint8_t *)x + j * xs) + b;  \
            const __m256i y = _mm256_loadu_si256((const __m256i *)xb->qs);                       \
            const __m256 dx = _mm256_set1_ps(_cvtsh_ss(xb->d));                                  \
            __m256 s0 = _mm256_cvtepi32_ps(DOT4(aw0, _mm256_sign_epi8(y, a0)));                  \
            __m256 s1 = _mm256_cvtepi32_ps(DOT4(aw1, _mm256_sign_epi8(y, a1)));                  \
            acc[0][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw0, dx), s0, acc[0][j]);                  \
            acc[1][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw1, dx), s1, acc[1][j]);                  \
        }                                                                                        \
    }                                                                                            \
    for (int r = 0; r < 2; r++)                                                                  \
        for (int j = 0; j < 4; j++) out[r * 4 + j] = qa_hsum256(acc[r][j]);

#define QA_DOT4_AVX2(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
#define QA_DOT4_VNNI(a, b) _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b)
#endif /* QA_X86 */

#if defined(QA_WASM_SIMD)
/* int32x4 of the 16 products a*b, summed pairwise */
static inline v128_t qa_dot_i8x16(v128_t a, v128_t b) {
    v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b));
    v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b));
    return wasm_i32x4_add(lo, hi);
}

/* fp16 -> fp32 by the table types/f16.c fills (qa_fp16_to_fp32 of every half): the block
 * scales of the wasm dots. */
extern float qa_f16_wasm_table[65536];
static inline float qa_fp16_to_fp32_wasm(uint16_t h) { return qa_f16_wasm_table[h]; }

/* The sum of the 4 int32 lanes: the wasm dots sum each block's integer products in SIMD
 * and then add the blocks in float in the scalar reference's order, so that they give
 * the reference's bits (and wasm embeddings and logits equal native scalar ones). */
static inline int32_t qa_hsum_i32x4(v128_t v) {
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_i32x4_extract_lane(v, 0);
}

/* 4 fp16 (the low halves of 32-bit lanes; the high halves may hold anything) -> fp32,
 * exactly as qa_fp16_to_fp32: exponent and mantissa moved into place and scaled by 2^112
 * (subnormals become normal floats exactly), inf / NaN given the all-ones exponent, the
 * sign or-ed in. */
static inline v128_t qa_f16x4_to_f32(v128_t h) {
    v128_t f = wasm_f32x4_mul(wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13), wasm_f32x4_splat(0x1p112f));
    v128_t special = wasm_i32x4_eq(wasm_v128_and(h, wasm_i32x4_splat(0x7c00)), wasm_i32x4_splat(0x7c00));
    f = wasm_v128_or(f, wasm_v128_and(special, wasm_i32x4_splat(0x7f800000)));
    return wasm_v128_or(f, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}

/* The 4 bytes at byte offset `at` of 4 rows ws bytes apart, one row per lane (a block's
 * fp16 scales: the low and high halves) */
static inline v128_t qa_load32_rows4(const uint8_t *w, size_t ws, size_t at) {
    v128_t v = wasm_v128_load32_zero(w + at);
    v = wasm_v128_load32_lane(w + ws + at, v, 1);
    v = wasm_v128_load32_lane(w + 2 * ws + at, v, 2);
    return wasm_v128_load32_lane(w + 3 * ws + at, v, 3);
}

/* [sum a, sum b, sum c, sum d]: the integer block sums of 4 weight rows in one vector */
static inline v128_t qa_hsum4_i32x4(v128_t a, v128_t b, v128_t c, v128_t d) {
    v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
    v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

/* The even / odd int8 lanes of v sign-extended to int16 (lane k: byte 2k / 2k+1): two
 * shifts instead of the extend_low/high shuffles; a dot pairs even with even. */
static inline v128_t qa_i8_even(v128_t v) { return wasm_i16x8_shr(wasm_i16x8_shl(v, 8), 8); }
static inline v128_t qa_i8_odd(v128_t v) { return wasm_i16x8_shr(v, 8); }

/* An activation block's 32 int8 widened to int16 for a panel (types/panel.h): the even then
 * odd values of bytes 0-15, the same of bytes 16-31 (the order the even / odd dots read) */
static inline void qa_widen32_wasm(const int8_t *qs, int16_t *q) {
    const v128_t y0 = wasm_v128_load(qs), y1 = wasm_v128_load(qs + 16);
    wasm_v128_store(q, qa_i8_even(y0));
    wasm_v128_store(q + 8, qa_i8_odd(y0));
    wasm_v128_store(q + 16, qa_i8_even(y1));
    wasm_v128_store(q + 24, qa_i8_odd(y1));
}

/* max |x| over 32 floats as the references' fmaxf loop (pmax keeps the left operand when
 * the right is NaN, as fmaxf ignores a NaN), and whether all 32 are finite */
static inline float qa_amax32_wasm(const float *x, int *finite) {
    v128_t m = wasm_f32x4_splat(0.0f), fin = wasm_i32x4_splat(-1);
    const v128_t inf = wasm_f32x4_splat(__builtin_inff());
    for (int i = 0; i < 32; i += 4) {
        v128_t a = wasm_f32x4_abs(wasm_v128_load(x + i));
        m = wasm_f32x4_pmax(m, a);
        fin = wasm_v128_and(fin, wasm_f32x4_lt(a, inf));
    }
    m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
    m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
    *finite = wasm_i32x4_all_true(fin);
    return wasm_f32x4_extract_lane(m, 0);
}

/* qs[j] = rint(x[j] * id) for 32 floats (round to nearest even, as rintf); returns their sum */
static inline int32_t qa_round32_wasm(const float *x, float id, int8_t *qs) {
    const v128_t mul = wasm_f32x4_splat(id);
    v128_t q[8], sum = wasm_i32x4_splat(0);
    for (int i = 0; i < 8; i++) {
        q[i] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 4 * i), mul)));
        sum = wasm_i32x4_add(sum, q[i]);
    }
    for (int i = 0; i < 2; i++)
        wasm_v128_store(qs + 16 * i, wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q[4 * i], q[4 * i + 1]),
                                                             wasm_i16x8_narrow_i32x4(q[4 * i + 2], q[4 * i + 3])));
    return qa_hsum_i32x4(sum);
}

/* qa_lanes8 in SIMD128: lanes 0..3 and 4..7 step by the int32 lane sums lo and hi as
 * qa_lanes8_fma_ref does. Two builds of the same C (web/build-wasm.sh), picked by the JS
 * loader (web/src/model.js):
 * - relaxed SIMD (clang -mrelaxed-simd): f32x4.relaxed_madd, which the loader's probe has
 *   seen fused (one rounding: fmaf's bits);
 * - plain SIMD128 (no fused multiply-add): fma emulated in f64x2, below. */
#if defined(__wasm_relaxed_simd__)
#define QA_WASM_RELAXED 1

typedef struct {
    v128_t lo, hi;
} qa_lanes8_wasm;

static inline void qa_lanes8_zero_wasm(qa_lanes8_wasm *l) { l->lo = l->hi = wasm_f32x4_splat(0.0f); }

static inline void qa_lanes8_fma_wasm(qa_lanes8_wasm *l, float scale, v128_t lo, v128_t hi, int checked) {
    (void)checked;
    const v128_t s = wasm_f32x4_splat(scale);
    l->lo = wasm_f32x4_relaxed_madd(s, wasm_f32x4_convert_i32x4(lo), l->lo);
    l->hi = wasm_f32x4_relaxed_madd(s, wasm_f32x4_convert_i32x4(hi), l->hi);
}

/* the same step with the scale already in every lane of s */
static inline void qa_lanes8_fmav_wasm(qa_lanes8_wasm *l, v128_t s, v128_t lo, v128_t hi) {
    l->lo = wasm_f32x4_relaxed_madd(s, wasm_f32x4_convert_i32x4(lo), l->lo);
    l->hi = wasm_f32x4_relaxed_madd(s, wasm_f32x4_convert_i32x4(hi), l->hi);
}

static inline float qa_lanes8_sum_wasm(const qa_lanes8_wasm *l) {
    const v128_t u = wasm_f32x4_add(l->lo, l->hi); /* l0 + l4, l1 + l5, l2 + l6, l3 + l7 */
    return (wasm_f32x4_extract_lane(u, 0) + wasm_f32x4_extract_lane(u, 2)) +
           (wasm_f32x4_extract_lane(u, 1) + wasm_f32x4_extract_lane(u, 3));
}

/* int32 lane k = the sum of a[i] * b[i] over bytes i = 4k..4k+3, exact when every b is in
 * 0..127 (relaxed SIMD's i8 x i7 dot: pmaddubsw's pair sums cannot saturate then). The i16
 * form and a pairwise add, not i32x4.relaxed_dot_i8x16_i7x16_add: Node 20's V8 returns twice
 * the sum for that one when its addend is a constant zero. */
static inline v128_t qa_dot4_i8_i7(v128_t a, v128_t b) {
    return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_relaxed_dot_i8x16_i7x16(a, b));
}

/* every row is exact with a fused madd: the bound of the f64x2 build holds trivially */
typedef struct {
    char unused;
} qa_exact4;
static inline void qa_exact4_init(qa_exact4 *e) { (void)e; }
static inline void qa_exact4_add(qa_exact4 *e, v128_t scale) { (void)e, (void)scale; }
static inline int qa_exact4_ok(const qa_exact4 *e, int lane, double pmax) { return (void)e, (void)lane, (void)pmax, 1; }

#else
/* The f64x2 emulation: the 8 float lanes are doubles holding float values (4 f64x2); a
 * step computes scale * sum exactly in double (scale = fp16 * fp16 has <= 22 bits,
 * |sum| < 2^17), adds the lane (one rounding to double) and rounds to float. When the
 * double addition is exact, the one rounding to float is fmaf's. When it is not, the double
 * still rounds to fmaf's float unless it lies exactly on a midpoint between two floats
 * (bits 0..28 of its mantissa = 1 << 28): midpoints are doubles and rounding is monotonic,
 * so the exact sum and its double lie between the same two midpoints; below float's normal
 * range both addends are multiples of 2^-149 and the sum is exact.
 *
 * Two ways to use it:
 * - checked (any row): a step with a lane on a midpoint tests the sums for exactness
 *   (r - x == l and r - l == x: one of the differences is exact by Sterbenz's lemma) and
 *   redoes an inexact one with fmaf (wasi-libc's, correctly rounded: the reference's call);
 * - unchecked, for a row inside the bound tracked by qa_exact4, where every double sum is
 *   exact:  P * sum_b |scale_b| <= 2^(G + 52)  with P the largest |sum| and 2^G the
 *   coarsest power of two dividing every nonzero scale (a scale of float exponent e is an
 *   11-bit * 11-bit integer times 2^g with g >= e - 21, so every product, lane and rounded
 *   lane is a multiple of 2^G, and each partial sum is below 2^(G + 53) in magnitude; the
 *   factor 2 covers the float sum of |scale|). A row outside it is redone checked. */
typedef struct {
    v128_t v[4]; /* lanes (0,1) (2,3) (4,5) (6,7) */
} qa_lanes8_wasm;

static inline void qa_lanes8_zero_wasm(qa_lanes8_wasm *l) {
    for (int k = 0; k < 4; k++) l->v[k] = wasm_f64x2_splat(0.0);
}

/* the double rounded to float and back (the empty asm keeps clang from folding the pair
 * into scalar code) */
static inline v128_t qa_round_f64x2_to_f32(v128_t r) {
    v128_t f = wasm_f32x4_demote_f64x2_zero(r);
    __asm__("" : "+r"(f));
    return wasm_f64x2_promote_low_f32x4(f);
}

static inline v128_t qa_midpoint_f64x2(v128_t r) {
    return wasm_i64x2_eq(wasm_v128_and(r, wasm_i64x2_splat(0x1fffffff)), wasm_i64x2_splat(0x10000000));
}

/* the rare inexact step on a midpoint: the reference's fmaf on all 8 lanes */
static inline __attribute__((noinline)) void qa_lanes8_fix_wasm(qa_lanes8_wasm *l, float scale, v128_t lo, v128_t hi) {
    int32_t p[8];
    float f[8];
    wasm_v128_store(p, lo);
    wasm_v128_store(p + 4, hi);
    for (int k = 0; k < 8; k++) f[k] = (float)(k & 1 ? wasm_f64x2_extract_lane(l->v[k >> 1], 1) : wasm_f64x2_extract_lane(l->v[k >> 1], 0));
    qa_lanes8_fma_ref(f, scale, p);
    for (int k = 0; k < 4; k++) l->v[k] = wasm_f64x2_make(f[2 * k], f[2 * k + 1]);
}

/* `checked` a constant: see above */
static inline void qa_lanes8_fma_wasm(qa_lanes8_wasm *l, float scale, v128_t lo, v128_t hi, int checked) {
    const v128_t s2 = wasm_f64x2_splat(scale);
    v128_t x[4], r[4];
    x[0] = wasm_f64x2_mul(s2, wasm_f64x2_convert_low_i32x4(lo));
    x[1] = wasm_f64x2_mul(s2, wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(lo, lo, 2, 3, 2, 3)));
    x[2] = wasm_f64x2_mul(s2, wasm_f64x2_convert_low_i32x4(hi));
    x[3] = wasm_f64x2_mul(s2, wasm_f64x2_convert_low_i32x4(wasm_i32x4_shuffle(hi, hi, 2, 3, 2, 3)));
    for (int k = 0; k < 4; k++) r[k] = wasm_f64x2_add(x[k], l->v[k]);
    if (checked) {
        const v128_t mid = wasm_v128_or(wasm_v128_or(qa_midpoint_f64x2(r[0]), qa_midpoint_f64x2(r[1])),
                                        wasm_v128_or(qa_midpoint_f64x2(r[2]), qa_midpoint_f64x2(r[3])));
        if (__builtin_expect(wasm_v128_any_true(mid), 0)) {
            v128_t inexact = wasm_i64x2_splat(0);
            for (int k = 0; k < 4; k++)
                inexact = wasm_v128_or(inexact, wasm_v128_andnot(qa_midpoint_f64x2(r[k]),
                                                                 wasm_v128_and(wasm_f64x2_eq(wasm_f64x2_sub(r[k], x[k]), l->v[k]),
                                                                               wasm_f64x2_eq(wasm_f64x2_sub(r[k], l->v[k]), x[k]))));
            if (wasm_v128_any_true(inexact)) {
                qa_lanes8_fix_wasm(l, scale, lo, hi);
                return;
            }
        }
    }
    for (int k = 0; k < 4; k++) l->v[k] = qa_round_f64x2_to_f32(r[k]);
}

static inline float qa_lanes8_sum_wasm(const qa_lanes8_wasm *l) {
    const v128_t a = wasm_f32x4_demote_f64x2_zero(l->v[0]), b = wasm_f32x4_demote_f64x2_zero(l->v[1]);
    const v128_t c = wasm_f32x4_demote_f64x2_zero(l->v[2]), d = wasm_f32x4_demote_f64x2_zero(l->v[3]);
    const v128_t u = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 1, 4, 5), wasm_i32x4_shuffle(c, d, 0, 1, 4, 5));
    return (wasm_f32x4_extract_lane(u, 0) + wasm_f32x4_extract_lane(u, 2)) +
           (wasm_f32x4_extract_lane(u, 1) + wasm_f32x4_extract_lane(u, 3));
}

/* The bound of the emulation for 4 rows (one per lane): the float sum of |scale| and the
 * smallest float exponent field of a nonzero scale, less one (0 -> UINT32_MAX: skipped). */
typedef struct {
    v128_t sum, emin;
} qa_exact4;

static inline void qa_exact4_init(qa_exact4 *e) {
    e->sum = wasm_f32x4_splat(0.0f);
    e->emin = wasm_i32x4_splat(-1);
}

static inline void qa_exact4_add(qa_exact4 *e, v128_t scale) {
    e->sum = wasm_f32x4_add(e->sum, wasm_f32x4_abs(scale));
    e->emin = wasm_u32x4_min(e->emin, wasm_i32x4_sub(wasm_u32x4_shr(wasm_i32x4_shl(scale, 1), 24), wasm_i32x4_splat(1)));
}

/* whether row `lane` kept the bound, |sum| <= pmax for each integer lane sum */
static inline int qa_exact4_ok(const qa_exact4 *e, int lane, double pmax) {
    float sum[4];
    uint32_t emin[4];
    wasm_v128_store(sum, e->sum);
    wasm_v128_store(emin, e->emin);
    if (emin[lane] == UINT32_MAX) return 1; /* every scale zero: the lanes stay 0 */
    const int g = (int)emin[lane] + 1 - 127 - 21;
    return pmax * sum[lane] <= ldexp(1.0, g + 52); /* false for NaN and infinity */
}
#endif /* __wasm_relaxed_simd__ */

static inline float qa_hsum_f32x4(v128_t v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/* The 2 x 4 tile of a type's wasm dots (prompt batches): out[r * 4 + j] = dot(weight row r,
 * activation row j), by 1 x 4 rows (relaxed SIMD) or 1 x 2 rows (the plain build). */
#if defined(QA_WASM_RELAXED)
#define QA_TILE_WASM(NAME, ROWS1X4, ROWS1X2)                                                        \
    static void NAME(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) { \
        const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;                           \
        for (int r = 0; r < 2; r++) ROWS1X4(n, w + r * ws, x, xs, out + r * 4);                    \
    }
#else
#define QA_TILE_WASM(NAME, ROWS1X4, ROWS1X2)                                                        \
    static void NAME(int64_t n, const void *w_, size_t ws, const void *x_, size_t xs, float *out) { \
        const uint8_t *w = (const uint8_t *)w_, *x = (const uint8_t *)x_;                           \
        for (int r = 0; r < 2; r++)                                                                 \
            for (int j = 0; j < 4; j += 2) ROWS1X2(n, w + r * ws, x + j * xs, xs, out + r * 4 + j); \
    }
#endif
#endif /* QA_WASM_SIMD */

/* Whether the x86 AVX2 (+FMA, F16C) variants may run; set from the CPU flags. */
static inline int qa_model_avx2(void) {
#if defined(QA_X86)
    return qa_have_avx2 && qa_have_fma_f16c;
#else
    return 0;
#endif
}

#endif
