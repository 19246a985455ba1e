#include "ops_decoder.h"

#include <math.h>
#include <string.h>

#include "threads.h"
#include "../simd.h"
#include "types/decoder_types.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- elementwise */

void qa_rmsnorm(const float *x, const float *g, float *out, int n, int n_embd, float eps) {
    for (int t = 0; t < n; t++, x += n_embd, out += n_embd) {
        double ss = 0.0; /* as ggml: the sum of squares in double */
        for (int i = 0; i < n_embd; i++) ss += (double)(x[i] * x[i]);
        float scale = 1.0f / sqrtf((float)(ss / n_embd) + eps);
        for (int i = 0; i < n_embd; i++) out[i] = x[i] * scale * g[i];
    }
}

void qa_rope(float *x, int n, int row_stride, int n_heads, int head_dim, int n_rot, int pos0,
             float freq_base, float freq_scale, int neox, const float *freq_factors, float mscale) {
    /* cos, sin and pow through double and rounded once: the float libm functions differ in
     * the last bit between glibc and wasi-libc, the correctly rounded result does not (and
     * it is what glibc's float functions return, so llama.cpp's bits are kept) */
    const float theta_scale = (float)pow((double)freq_base, (double)(-2.0f / (float)n_rot));
    for (int t = 0; t < n; t++) {
        float *row = x + (uint64_t)t * row_stride;
        float theta = (float)(pos0 + t) * freq_scale;
        for (int i = 0; i < n_rot; i += 2, theta *= theta_scale) {
            float th = freq_factors ? theta / freq_factors[i / 2] : theta;
            float c = (float)cos((double)th) * mscale, s = (float)sin((double)th) * mscale;
            int i0 = neox ? i / 2 : i, i1 = neox ? i / 2 + n_rot / 2 : i + 1;
            for (int h = 0; h < n_heads; h++) {
                float *p = row + h * head_dim, a = p[i0], b = p[i1];
                /* as ggml's C, which the compiler contracts: the first product fused */
                p[i0] = fmaf(a, c, -(b * s));
                p[i1] = fmaf(a, s, b * c);
            }
        }
    }
}

void qa_gelu_mul(float *g, const float *u, int64_t n) {
    /* As ggml computes it on CPUs: the input rounded to fp16, GELU (tanh form) rounded to
     * fp16 (its lookup table), identity beyond +-10. */
    const float k = 0.79788456080286535588f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float x = g[i], y;
        if (x <= -10.0f) {
            y = 0.0f;
        } else if (x >= 10.0f) {
            y = x;
        } else {
            x = qa_fp16_to_fp32(qa_fp32_to_fp16(x));
            /* 1 + c x^2 fused as ggml's compiled table has it (one fp16 entry differs otherwise) */
            y = qa_fp16_to_fp32(qa_fp32_to_fp16(0.5f * x * (1.0f + tanhf(k * x * fmaf(0.044715f * x, x, 1.0f)))));
        }
        g[i] = y * u[i];
    }
}

int qa_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* ---------------------------------------------------------------- attention */

/* one call of qa_attention */
typedef struct {
    const qa_kv_layer *kv;
    const float *q;
    int row_stride, n, pos0, n_head, n_swa;
    float scale;
    float *out, *work;
} att_ctx;

/* Summation orders as llama.cpp's CPU backend (ggml) takes them, so that the same weights
 * give the same bits: this model family amplifies a last-bit difference anywhere into
 * logit differences of ~0.5 after 30 layers. ggml multiplies the fp16 KV cache in blocks of
 * 16 lanes (its AVX-512 tinyBLAS): item i of a dot goes to lane i % 16, each lane sums its
 * items in order, and the 16 lanes are added as a tree (i, i+8), (i, i+4), (0,2)+(1,3).
 * Products of two fp16 values are exact in fp32, so plain mul + add equals its FMA. */
static float tree16(const float *l) {
    float a[8], b[4];
    for (int i = 0; i < 8; i++) a[i] = l[i] + l[i + 8];
    for (int i = 0; i < 4; i++) b[i] = a[i] + a[i + 4];
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* q (fp32 values that are fp16-exact) . k (fp16), in 16 lanes */
static float dot16_f16_ref(const float *q, const uint16_t *k, int d) {
    float lane[16] = {0};
    for (int i = 0; i < d; i++) lane[i & 15] += q[i] * qa_fp16_to_fp32(k[i]);
    return tree16(lane);
}
/* The same dot in ggml's single-row order (ggml_vec_dot_f16, used when a batch has one
 * token): 4 x 16 lanes, item i in slot (i / 16) % 4, lane i % 16; slots added (0+2), (1+3),
 * then together, then the lane tree; items past the last multiple of 64 added in double. */
static float dot64_f16_ref(const float *q, const uint16_t *k, int d) {
    float lane[64] = {0};
    int np = d & ~63;
    for (int i = 0; i < np; i++) lane[i & 63] += q[i] * qa_fp16_to_fp32(k[i]);
    for (int l = 0; l < 16; l++) lane[l] = (lane[l] + lane[32 + l]) + (lane[16 + l] + lane[48 + l]);
    double sum = tree16(lane);
    for (int i = np; i < d; i++) sum += (double)(q[i] * qa_fp16_to_fp32(k[i]));
    return (float)sum;
}
/* lanes[p % 16][0..d) += w * v[0..d) */
static void lane_axpy_f16_ref(float *lane, float w, const uint16_t *v, int d) {
    for (int i = 0; i < d; i++) lane[i] += w * qa_fp16_to_fp32(v[i]);
}
static void store_f16_ref(uint16_t *y, const float *x, int d) {
    for (int i = 0; i < d; i++) y[i] = qa_fp32_to_fp16(x[i]);
}

/* exp as ggml's vectorized expf (ggml_v_expf, AVX-512 form): a degree-5 polynomial of the
 * reduced argument times 2^n. Its softmax and SiLU use it; its last bits differ from libm. */
static float v_expf_ref(float x) {
    const float r = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p+0f, r), n = z - r;
    if (n > 127.0f) return INFINITY;
    if (n < -126.0f) return 0.0f; /* below 2^-126: nothing the callers can see */
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x)), u = b * b;
    float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                   fmaf(0x1.ffffecp-1f, b, 1.0f));
    union { uint32_t u; float f; } e = {(uint32_t)((int32_t)n + 127) << 23};
    return j * e.f;
}

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))
AVX2 static float dot16_f16_avx2(const float *q, const uint16_t *k, int d) {
    if (d & 15) return dot16_f16_ref(q, k, d);
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps(); /* lanes 0-7, 8-15 */
    for (int i = 0; i < d; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8))), hi);
    }
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
AVX2 static float dot64_f16_avx2(const float *q, const uint16_t *k, int d) {
    if (d & 63) return dot64_f16_ref(q, k, d);
    __m256 a[8]; /* slot j, half h: a[2j + h] */
    for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 64)
        for (int j = 0; j < 8; j++)
            a[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8 * j), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8 * j))), a[j]);
    __m256 lo = _mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6]));
    __m256 hi = _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7]));
    __m256 t = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
AVX2 static void lane_axpy_f16_avx2(float *lane, float w, const uint16_t *v, int d) {
    __m256 wv = _mm256_set1_ps(w);
    int i = 0;
    for (; i + 8 <= d; i += 8)
        _mm256_storeu_ps(lane + i, _mm256_fmadd_ps(wv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), _mm256_loadu_ps(lane + i)));
    for (; i < d; i++) lane[i] += w * _cvtsh_ss(v[i]);
}
AVX2 static void store_f16_avx2(uint16_t *y, const float *x, int d) {
    int i = 0;
    for (; i + 8 <= d; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < d; i++) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}
/* v_expf_ref for 8 values (x <= 88) */
AVX2 static __m256 v_expf_avx2(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r), n = _mm256_sub_ps(z, r);
    __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    __m256 u = _mm256_mul_ps(b, b);
    __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    __m256 nc = _mm256_max_ps(n, _mm256_set1_ps(-126.0f));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nc), _mm256_set1_epi32(127)), 23));
    __m256 res = _mm256_mul_ps(j, scale);
    res = _mm256_and_ps(res, _mm256_cmp_ps(n, _mm256_set1_ps(-126.0f), _CMP_GE_OQ)); /* underflow: 0 */
    return _mm256_blendv_ps(res, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(n, _mm256_set1_ps(127.0f), _CMP_GT_OQ));
}
/* g = silu(g) * u, 16 at a time as ggml (x / (1 + v_expf(-x))), the tail with libm expf */
AVX2 static void silu_mul_row_avx2(float *g, const float *u, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int h = 0; h < 16; h += 8) {
            __m256 x = _mm256_loadu_ps(g + i + h);
            __m256 e = v_expf_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x));
            _mm256_storeu_ps(g + i + h, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), _mm256_loadu_ps(u + i + h)));
        }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
/* e[0..16) = v_expf(s - mx) where valid (mask bit set), else 0; returns their tree sum */
AVX2 static float exp_block16_avx2(float *e, const float *s, float mx, unsigned mask) {
    float t[16];
    for (int h = 0; h < 16; h += 8) {
        __m256 x = _mm256_sub_ps(_mm256_loadu_ps(s + h), _mm256_set1_ps(mx));
        _mm256_storeu_ps(t + h, v_expf_avx2(x));
    }
    for (int i = 0; i < 16; i++) e[i] = (mask >> i & 1) ? t[i] : 0.0f;
    return tree16(e);
}
#endif


static void silu_mul_row_ref(float *g, const float *u, int n) {
    int i = 0, nb = n & ~15;
    for (; i < nb; i++) g[i] = g[i] / (1.0f + v_expf_ref(0.0f - g[i])) * u[i];
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
static float exp_block16_ref(float *e, const float *s, float mx, unsigned mask) {
    for (int i = 0; i < 16; i++) e[i] = (mask >> i & 1) ? v_expf_ref(s[i] - mx) : 0.0f;
    return tree16(e);
}

/* the softmax's sum as ggml takes it: e = exp(s - mx) by blocks of 16 cells b0..b1 (0 outside
 * the row's cells p0..npos), the blocks' sums added in double */
static inline double exp_sum(float (*block)(float *, const float *, float, unsigned), float *e, const float *s,
                             float mx, int b0, int b1, int p0, int npos) {
    double sum = 0.0;
    for (int b = b0; b < b1; b += 16) {
        unsigned mask = 0;
        for (int i = 0; i < 16; i++) mask |= (unsigned)(b + i >= p0 && b + i < npos) << i;
        sum += (double)block(e + b, s + b, mx, mask);
    }
    return sum;
}

#if defined(__wasm_simd128__)
/* SIMD128 variants with the references' bits. wasm has no FMA instruction: fmaf is
 * wasi-libc's (musl's), which rounds a*b + c computed in double to float unless that
 * double sits exactly on a float rounding midpoint; fma4 does the same in f64x2 lanes and
 * reports the midpoint case, where the caller takes the scalar reference instead. */
#include "types/simd_blocks.h" /* qa_f16x4_to_f32 */

static inline v128_t fma2_f64(v128_t a, v128_t b, v128_t c, v128_t *mid) {
    v128_t r = wasm_f64x2_add(wasm_f64x2_mul(a, b), c);
    *mid = wasm_v128_or(*mid, wasm_i64x2_eq(wasm_v128_and(r, wasm_i64x2_splat(0x1fffffff)), wasm_i64x2_splat(0x10000000)));
    return r;
}
static inline v128_t fma4(v128_t a, v128_t b, v128_t c, v128_t *mid) {
    v128_t lo = fma2_f64(wasm_f64x2_promote_low_f32x4(a), wasm_f64x2_promote_low_f32x4(b), wasm_f64x2_promote_low_f32x4(c), mid);
    v128_t hi = fma2_f64(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(a, a, 2, 3, 0, 1)),
                         wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(b, b, 2, 3, 0, 1)),
                         wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(c, c, 2, 3, 0, 1)), mid);
    lo = wasm_f32x4_demote_f64x2_zero(lo);
    hi = wasm_f32x4_demote_f64x2_zero(hi);
    return wasm_i32x4_shuffle(lo, hi, 0, 1, 4, 5);
}
#define F4(x) wasm_f32x4_splat(x)

/* v_expf_ref for 4 values; *mid set when an fmaf needs the scalar reference */
static inline v128_t v_expf_wasm(v128_t x, v128_t *mid) {
    const v128_t r = F4(0x1.8p23f);
    v128_t z = fma4(x, F4(0x1.715476p+0f), r, mid), n = wasm_f32x4_sub(z, r), mn = wasm_f32x4_neg(n);
    v128_t b = fma4(mn, F4(0x1.7f7d1cp-20f), fma4(mn, F4(0x1.62e4p-1f), x, mid), mid), u = wasm_f32x4_mul(b, b);
    v128_t j = fma4(fma4(fma4(F4(0x1.0e4020p-7f), b, F4(0x1.573e2ep-5f), mid), u, fma4(F4(0x1.555e66p-3f), b, F4(0x1.fffdb6p-2f), mid), mid), u,
                    fma4(F4(0x1.ffffecp-1f), b, F4(1.0f), mid), mid);
    /* 2^n for -126 <= n <= 127 (n is integral), then the reference's two range exits */
    v128_t nc = wasm_f32x4_pmax(n, F4(-126.0f));
    v128_t e = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_pmin(nc, F4(127.0f))), wasm_i32x4_splat(127)), 23);
    v128_t res = wasm_f32x4_mul(j, e);
    res = wasm_v128_andnot(res, wasm_f32x4_lt(n, F4(-126.0f)));
    return wasm_v128_bitselect(F4(INFINITY), res, wasm_f32x4_gt(n, F4(127.0f)));
}

static void silu_mul_row_wasm(float *g, const float *u, int n) {
    int i = 0, nb = n & ~15;
    for (; i < nb; i += 4) {
        v128_t mid = wasm_i32x4_splat(0), x = wasm_v128_load(g + i);
        v128_t e = v_expf_wasm(wasm_f32x4_sub(F4(0.0f), x), &mid);
        if (wasm_v128_any_true(mid)) {
            for (int k = i; k < i + 4; k++) g[k] = g[k] / (1.0f + v_expf_ref(0.0f - g[k])) * u[k];
            continue;
        }
        wasm_v128_store(g + i, wasm_f32x4_mul(wasm_f32x4_div(x, wasm_f32x4_add(F4(1.0f), e)), wasm_v128_load(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static float exp_block16_wasm(float *e, const float *s, float mx, unsigned mask) {
    v128_t mid = wasm_i32x4_splat(0);
    for (int i = 0; i < 16; i += 4) {
        v128_t m = wasm_i32x4_make(-(int)(mask >> i & 1), -(int)(mask >> (i + 1) & 1), -(int)(mask >> (i + 2) & 1), -(int)(mask >> (i + 3) & 1));
        wasm_v128_store(e + i, wasm_v128_and(v_expf_wasm(wasm_f32x4_sub(wasm_v128_load(s + i), F4(mx)), &mid), m));
    }
    if (wasm_v128_any_true(mid)) return exp_block16_ref(e, s, mx, mask);
    return tree16(e);
}

/* 8 fp16 at k -> two f32x4 */
static inline void f16x8_to_f32(const uint16_t *k, v128_t *lo, v128_t *hi) {
    v128_t h = wasm_v128_load(k);
    *lo = qa_f16x4_to_f32(wasm_u32x4_extend_low_u16x8(h));
    *hi = qa_f16x4_to_f32(wasm_u32x4_extend_high_u16x8(h));
}

static float dot16_f16_wasm(const float *q, const uint16_t *k, int d) {
    if (d & 15) return dot16_f16_ref(q, k, d);
    v128_t a[4] = {F4(0.0f), F4(0.0f), F4(0.0f), F4(0.0f)}; /* lanes 4j..4j+3 */
    for (int i = 0; i < d; i += 16)
        for (int j = 0; j < 4; j += 2) {
            v128_t lo, hi;
            f16x8_to_f32(k + i + 4 * j, &lo, &hi);
            a[j] = wasm_f32x4_add(a[j], wasm_f32x4_mul(wasm_v128_load(q + i + 4 * j), lo));
            a[j + 1] = wasm_f32x4_add(a[j + 1], wasm_f32x4_mul(wasm_v128_load(q + i + 4 * j + 4), hi));
        }
    float l[16];
    for (int j = 0; j < 4; j++) wasm_v128_store(l + 4 * j, a[j]);
    return tree16(l);
}

static float dot64_f16_wasm(const float *q, const uint16_t *k, int d) {
    if (d & 63) return dot64_f16_ref(q, k, d);
    v128_t a[16];
    for (int j = 0; j < 16; j++) a[j] = F4(0.0f);
    for (int i = 0; i < d; i += 64)
        for (int j = 0; j < 16; j += 2) {
            v128_t lo, hi;
            f16x8_to_f32(k + i + 4 * j, &lo, &hi);
            a[j] = wasm_f32x4_add(a[j], wasm_f32x4_mul(wasm_v128_load(q + i + 4 * j), lo));
            a[j + 1] = wasm_f32x4_add(a[j + 1], wasm_f32x4_mul(wasm_v128_load(q + i + 4 * j + 4), hi));
        }
    float l[16];
    for (int j = 0; j < 4; j++) /* slots (0+2) + (1+3) */
        wasm_v128_store(l + 4 * j, wasm_f32x4_add(wasm_f32x4_add(a[j], a[8 + j]), wasm_f32x4_add(a[4 + j], a[12 + j])));
    return tree16(l);
}

static void lane_axpy_f16_wasm(float *lane, float w, const uint16_t *v, int d) {
    const v128_t wv = F4(w);
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        v128_t lo, hi;
        f16x8_to_f32(v + i, &lo, &hi);
        wasm_v128_store(lane + i, wasm_f32x4_add(wasm_v128_load(lane + i), wasm_f32x4_mul(wv, lo)));
        wasm_v128_store(lane + i + 4, wasm_f32x4_add(wasm_v128_load(lane + i + 4), wasm_f32x4_mul(wv, hi)));
    }
    for (; i < d; i++) lane[i] += w * qa_fp16_to_fp32(v[i]);
}

/* qa_fp16_to_fp32(qa_fp32_to_fp16(x)) for 4 values: the fp16 normal range drops 13 mantissa
 * bits to nearest even (a carry may reach the exponent; 2^16 and up is infinity); below 2^-14
 * the fp16 subnormals are the multiples of 2^-24, which adding and taking 0.5 rounds to */
static inline v128_t round_f16x4(v128_t x) {
    v128_t sign = wasm_v128_and(x, wasm_i32x4_splat((int32_t)0x80000000)), a = wasm_v128_xor(x, sign);
    v128_t n = wasm_i32x4_add(wasm_i32x4_add(a, wasm_i32x4_splat(0xfff)), wasm_v128_and(wasm_u32x4_shr(a, 13), wasm_i32x4_splat(1)));
    n = wasm_v128_and(n, wasm_i32x4_splat(~0x1fff));
    n = wasm_v128_bitselect(wasm_i32x4_splat(0x7f800000), n, wasm_u32x4_ge(n, wasm_i32x4_splat(0x47800000)));
    v128_t sub = wasm_f32x4_sub(wasm_f32x4_add(a, F4(0.5f)), F4(0.5f));
    n = wasm_v128_bitselect(sub, n, wasm_u32x4_lt(a, wasm_i32x4_splat(0x38800000)));
    n = wasm_v128_bitselect(wasm_i32x4_splat(0x7fc00000), n, wasm_u32x4_gt(a, wasm_i32x4_splat(0x7f800000))); /* NaN */
    return wasm_v128_or(n, sign);
}

/* dst[0..n) = the fp16 src as f32 (exact), n a multiple of 4 */
static void f16_to_f32_wasm(float *dst, const uint16_t *src, uint64_t n) {
    for (uint64_t i = 0; i < n; i += 4)
        wasm_v128_store(dst + i, qa_f16x4_to_f32(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(src + i))));
}

/* attend_row for a batch of >= 2 tokens (the 16-lane orders), head_dim a multiple of 4, over
 * its KV head's keys and values converted to f32 once per batch (kf, vf: position p at p *
 * head_dim; the conversion is exact). The query and the weights are rounded to fp16 in
 * vectors; a dot's 16 lanes are 4 vectors, added as the tree; the value sums run 4 outputs at
 * a time with the lanes (cells p % 16) in registers, 8 at a time, each lane over its cells in
 * order. The same operations per value as attend_row, the same bits. */
static void attend_row_wasm(const att_ctx *c, float *w, const float *kf, const float *vf, int t, int h) {
    const qa_kv_layer *kv = c->kv;
    int hd = kv->head_dim, npos = c->pos0 + t + 1;
    int p0 = c->n_swa > 0 && npos > c->n_swa ? npos - c->n_swa : 0;
    int b0 = p0 & ~15, b1 = (npos + 15) & ~15;
    float *s = w, *e = s + kv->n_ctx + 16, *qh = e + kv->n_ctx + 16;
    const float *q = c->q + (uint64_t)t * c->row_stride + h * hd;
    for (int i = 0; i < hd; i += 4) wasm_v128_store(qh + i, round_f16x4(wasm_v128_load(q + i)));
    float mx = -INFINITY;
    for (int p = b0; p < b1; p++) s[p] = 0.0f;
    for (int p = p0; p < npos; p++) {
        const float *kp = kf + (uint64_t)p * hd;
        v128_t a0 = F4(0.0f), a1 = a0, a2 = a0, a3 = a0; /* lanes 4j..4j+3: item i in a[(i / 4) % 4] */
#define MAC(a, i) a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(qh + (i)), wasm_v128_load(kp + (i))))
        int i = 0;
        for (; i + 16 <= hd; i += 16) {
            MAC(a0, i);
            MAC(a1, i + 4);
            MAC(a2, i + 8);
            MAC(a3, i + 12);
        }
        if (i + 4 <= hd) MAC(a0, i);
        if (i + 8 <= hd) MAC(a1, i + 4);
        if (i + 12 <= hd) MAC(a2, i + 8);
#undef MAC
        v128_t r = wasm_f32x4_add(wasm_f32x4_add(a0, a2), wasm_f32x4_add(a1, a3)); /* (i, i+8), (i, i+4) */
        r = wasm_f32x4_add(r, wasm_i32x4_shuffle(r, r, 2, 3, 2, 3));                      /* (0,2), (1,3) */
        s[p] = (wasm_f32x4_extract_lane(r, 0) + wasm_f32x4_extract_lane(r, 1)) * c->scale;
        if (s[p] > mx) mx = s[p];
    }
    double sum = exp_sum(exp_block16_wasm, e, s, mx, b0, b1, p0, npos);
    const v128_t inv = F4((float)(1.0 / sum));
    for (int b = b0; b < b1; b += 4) /* the weights over the scores (0 outside the row) */
        wasm_v128_store(s + b, round_f16x4(wasm_f32x4_mul(wasm_v128_load(e + b), inv)));
    float *o = c->out + (uint64_t)t * c->row_stride + h * hd;
    for (int d = 0; d < hd; d += 4) {
        v128_t lo[8], l[8];
        for (int half = 0; half < 16; half += 8) { /* lanes 0-7, then 8-15 */
            for (int j = 0; j < 8; j++) l[j] = F4(0.0f);
            for (int b = b0 + half; b < b1; b += 16) {
                const float *vb = vf + (uint64_t)b * hd + d;
#define LANE(j) l[j] = wasm_f32x4_add(l[j], wasm_f32x4_mul(wasm_v128_load32_splat(s + b + (j)), wasm_v128_load(vb + (uint64_t)(j) * hd)))
                if (b >= p0 && b + 8 <= npos) {
                    for (int j = 0; j < 8; j++) LANE(j);
                } else { /* cells outside the row were not converted: skipped, as the reference does */
                    for (int j = 0; j < 8; j++)
                        if (b + j >= p0 && b + j < npos) LANE(j);
                }
#undef LANE
            }
            if (!half) memcpy(lo, l, sizeof l);
        }
        for (int i = 0; i < 8; i++) l[i] = wasm_f32x4_add(lo[i], l[i]);
        for (int i = 0; i < 4; i++) l[i] = wasm_f32x4_add(l[i], l[i + 4]);
        wasm_v128_store(o + d, wasm_f32x4_add(wasm_f32x4_add(l[0], l[2]), wasm_f32x4_add(l[1], l[3])));
    }
}
#undef F4
#endif

static float (*dot16_f16)(const float *, const uint16_t *, int) = dot16_f16_ref;
static float (*dot64_f16)(const float *, const uint16_t *, int) = dot64_f16_ref;
static void (*lane_axpy_f16)(float *, float, const uint16_t *, int) = lane_axpy_f16_ref;
static void (*store_f16)(uint16_t *, const float *, int) = store_f16_ref;
static void (*silu_mul_row)(float *, const float *, int) = silu_mul_row_ref;
static float (*exp_block16)(float *, const float *, float, unsigned) = exp_block16_ref;

void qa_silu_mul(float *g, const float *u, int rows, int n) {
    for (int r = 0; r < rows; r++) silu_mul_row(g + (uint64_t)r * n, u + (uint64_t)r * n, n);
}

static void attention_init(int avx2);

void qa_ops_decoder_init(int avx2) {
    attention_init(avx2);
    dot16_f16 = dot16_f16_ref;
    dot64_f16 = dot64_f16_ref;
    lane_axpy_f16 = lane_axpy_f16_ref;
    store_f16 = store_f16_ref;
    silu_mul_row = silu_mul_row_ref;
    exp_block16 = exp_block16_ref;
#if defined(__x86_64__)
    if (avx2) {
        dot16_f16 = dot16_f16_avx2;
        dot64_f16 = dot64_f16_avx2;
        lane_axpy_f16 = lane_axpy_f16_avx2;
        store_f16 = store_f16_avx2;
        silu_mul_row = silu_mul_row_avx2;
        exp_block16 = exp_block16_avx2;
    }
#elif defined(__wasm_simd128__)
    if (avx2) { /* here: SIMD128 on */
        dot16_f16 = dot16_f16_wasm;
        dot64_f16 = dot64_f16_wasm;
        lane_axpy_f16 = lane_axpy_f16_wasm;
        silu_mul_row = silu_mul_row_wasm;
        exp_block16 = exp_block16_wasm;
    }
#else
    (void)avx2;
#endif
}

void qa_kv_store(const qa_kv_layer *kv, const float *k, const float *v, int row_stride, int n, int pos0) {
    for (int t = 0; t < n; t++)
        for (int h = 0; h < kv->n_head_kv; h++) {
            uint64_t at = ((uint64_t)h * kv->n_ctx + pos0 + t) * kv->head_dim;
            store_f16(kv->k + at, k + (uint64_t)t * row_stride + h * kv->head_dim, kv->head_dim);
            store_f16(kv->v + at, v + (uint64_t)t * row_stride + h * kv->head_dim, kv->head_dim);
        }
}

/* per thread: scores of n_ctx positions (rounded up to 16) and their exp values, the query
 * as fp16-exact floats, up to 64 lanes of head_dim output sums, the fp16 query */
static uint64_t row_work_floats(int n_ctx, int head_dim) {
    return (uint64_t)(n_ctx + 16) * 2 + 65 * (uint64_t)head_dim + head_dim / 2 + 1;
}
/* wasm: + one KV head's keys and values as f32 (attend_row_wasm) */
uint64_t qa_attention_work_floats(int n_ctx, int head_dim) {
#if defined(__wasm_simd128__)
    return row_work_floats(n_ctx, head_dim) + 2 * (uint64_t)n_ctx * head_dim;
#else
    return row_work_floats(n_ctx, head_dim);
#endif
}

/* One query row of one head as ggml computes it (see the summation orders above): the
 * scores q.k with q rounded to fp16, scaled; softmax with its exp in blocks of 16 cache
 * cells, block sums added in double; weights rounded to fp16; the value sums in 16 lanes
 * by cell, or in its single-row order (64 lanes) when the batch is one token (llama.cpp
 * pads its cache view to 256 cells: no tail). Cells are positions (one sequence from 0). */
static void attend_row(const att_ctx *c, float *w, int t, int h) {
    const qa_kv_layer *kv = c->kv;
    int hd = kv->head_dim, group = c->n_head / kv->n_head_kv, npos = c->pos0 + t + 1;
    int p0 = c->n_swa > 0 && npos > c->n_swa ? npos - c->n_swa : 0;
    int b0 = p0 & ~15, b1 = (npos + 15) & ~15;
    int gemv = c->n == 1, nl = gemv ? 64 : 16;
    float *s = w, *e = s + kv->n_ctx + 16, *qh = e + kv->n_ctx + 16, *lane = qh + hd;
    uint16_t *q16 = (uint16_t *)(lane + 64 * hd);
    const uint16_t *K = kv->k + (uint64_t)(h / group) * kv->n_ctx * hd;
    const uint16_t *V = kv->v + (uint64_t)(h / group) * kv->n_ctx * hd;
    store_f16(q16, c->q + (uint64_t)t * c->row_stride + h * hd, hd);
    for (int i = 0; i < hd; i++) qh[i] = qa_fp16_to_fp32(q16[i]);
    float mx = -INFINITY;
    for (int p = b0; p < b1; p++) s[p] = 0.0f;
    for (int p = p0; p < npos; p++) {
        s[p] = (gemv ? dot64_f16 : dot16_f16)(qh, K + (uint64_t)p * hd, hd) * c->scale;
        if (s[p] > mx) mx = s[p];
    }
    double sum = exp_sum(exp_block16, e, s, mx, b0, b1, p0, npos);
    float inv = (float)(1.0 / sum);
    memset(lane, 0, (size_t)nl * hd * sizeof(float));
    for (int p = p0; p < npos; p++)
        lane_axpy_f16(lane + (p & (nl - 1)) * hd, qa_fp16_to_fp32(qa_fp32_to_fp16(e[p] * inv)), V + (uint64_t)p * hd, hd);
    if (gemv) /* the 4 slots of 16 lanes into one: (0+2) + (1+3) */
        for (int l = 0; l < 16; l++)
            for (int d = 0; d < hd; d++)
                lane[l * hd + d] = (lane[l * hd + d] + lane[(32 + l) * hd + d]) + (lane[(16 + l) * hd + d] + lane[(48 + l) * hd + d]);
    /* the 16-lane tree, for all head_dim outputs at once */
    for (int i = 0; i < 8; i++)
        for (int d = 0; d < hd; d++) lane[i * hd + d] += lane[(i + 8) * hd + d];
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < hd; d++) lane[i * hd + d] += lane[(i + 4) * hd + d];
    float *o = c->out + (uint64_t)t * c->row_stride + h * hd;
    for (int d = 0; d < hd; d++) o[d] = (lane[d] + lane[2 * hd + d]) + (lane[hd + d] + lane[3 * hd + d]);
}

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
/* attend_row for a batch of >= 2 tokens (the 16-lane orders), head_dim a multiple of 16, with
 * 512-bit vectors: a query . key dot is one vector of its 16 lanes; the value sums run 16
 * outputs at a time with the 16 lanes (cells p % 16) in registers, each lane over its cells
 * in order, and the lane tree is added there. The same operations per value, the same bits. */
AVX512 static void attend_row_avx512(const att_ctx *c, float *w, int t, int h) {
    const qa_kv_layer *kv = c->kv;
    int hd = kv->head_dim, group = c->n_head / kv->n_head_kv, npos = c->pos0 + t + 1;
    int p0 = c->n_swa > 0 && npos > c->n_swa ? npos - c->n_swa : 0;
    int b0 = p0 & ~15, b1 = (npos + 15) & ~15;
    float *s = w, *e = s + kv->n_ctx + 16, *qh = e + kv->n_ctx + 16;
    const uint16_t *K = kv->k + (uint64_t)(h / group) * kv->n_ctx * hd;
    const uint16_t *V = kv->v + (uint64_t)(h / group) * kv->n_ctx * hd;
    const float *q = c->q + (uint64_t)t * c->row_stride + h * hd;
    for (int i = 0; i < hd; i += 16) /* q rounded to fp16 */
        _mm512_storeu_ps(qh + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(q + i), _MM_FROUND_TO_NEAREST_INT)));
    float mx = -INFINITY;
    for (int p = b0; p < b1; p++) s[p] = 0.0f;
    for (int p = p0; p < npos; p++) {
        const uint16_t *kp = K + (uint64_t)p * hd;
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += 16)
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(qh + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kp + i))), acc);
        __m256 a = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
        __m128 r = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        s[p] = _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r))) * c->scale;
        if (s[p] > mx) mx = s[p];
    }
    double sum = exp_sum(exp_block16_avx2, e, s, mx, b0, b1, p0, npos);
    const __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (int b = b0; b < b1; b += 16) /* the weights, rounded to fp16, over the scores (0 outside the row) */
        _mm512_storeu_ps(s + b, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(e + b), inv), _MM_FROUND_TO_NEAREST_INT)));
    float *o = c->out + (uint64_t)t * c->row_stride + h * hd;
    for (int d = 0; d < hd; d += 16) {
        __m512 l[16];
        for (int j = 0; j < 16; j++) l[j] = _mm512_setzero_ps();
        for (int b = b0; b < b1; b += 16) {
            const uint16_t *vb = V + (uint64_t)b * hd + d;
#define LANE(j) l[j] = _mm512_fmadd_ps(_mm512_set1_ps(s[b + (j)]), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vb + (uint64_t)(j) * hd))), l[j])
            if (b >= p0 && b + 16 <= npos) {
                for (int j = 0; j < 16; j++) LANE(j);
            } else { /* cells outside the row may hold anything: skipped, as the reference does */
                for (int j = 0; j < 16; j++)
                    if (b + j >= p0 && b + j < npos) LANE(j);
            }
#undef LANE
        }
        for (int i = 0; i < 8; i++) l[i] = _mm512_add_ps(l[i], l[i + 8]);
        for (int i = 0; i < 4; i++) l[i] = _mm512_add_ps(l[i], l[i + 4]);
        _mm512_storeu_ps(o + d, _mm512_add_ps(_mm512_add_ps(l[0], l[2]), _mm512_add_ps(l[1], l[3])));
    }
}
#endif

/* a batch's rows where a wider variant exists (NULL: attend_row) */
static void (*attend_batch_row)(const att_ctx *, float *, int, int) = NULL;

static int wasm_batch_rows; /* attend_row_wasm for batches */

static void attention_init(int avx2) {
    attend_batch_row = NULL;
    wasm_batch_rows = 0;
#if defined(__x86_64__)
    if (avx2 && qa_have_avx512vnni) attend_batch_row = attend_row_avx512; /* AVX-512 F/BW/VL with it */
#elif defined(__wasm_simd128__)
    wasm_batch_rows = avx2; /* here: SIMD128 on */
#else
    (void)avx2;
#endif
}

#if defined(__wasm_simd128__)
/* A batch's rows by KV head (then token, then the heads of its group), interleaved over the
 * shares: each share converts a KV head's cells of the batch to f32 once, for all its rows. */
static void att_task_wasm(const att_ctx *c, float *w, int wi, int wk) {
    const qa_kv_layer *kv = c->kv;
    int hd = kv->head_dim, group = c->n_head / kv->n_head_kv, per = c->n * group, cur = -1;
    int npos = c->pos0 + c->n, lo = c->n_swa > 0 && c->pos0 + 1 > c->n_swa ? c->pos0 + 1 - c->n_swa : 0;
    float *kf = w + row_work_floats(kv->n_ctx, hd), *vf = kf + (uint64_t)kv->n_ctx * hd;
    for (int job = wi; job < c->n * c->n_head; job += wk) {
        int g = job / per, r = job % per;
        if (g != cur) { /* the cells rows of this batch read: lo (the first row's window) .. npos */
            uint64_t at = ((uint64_t)g * kv->n_ctx + lo) * hd, n = (uint64_t)(npos - lo) * hd;
            f16_to_f32_wasm(kf + (uint64_t)lo * hd, kv->k + at, n);
            f16_to_f32_wasm(vf + (uint64_t)lo * hd, kv->v + at, n);
            cur = g;
        }
        attend_row_wasm(c, w, kf, vf, r / group, g * group + r % group);
    }
}
#endif

static void att_task(void *c_, int wi, int wk, int th) {
    att_ctx *c = (att_ctx *)c_;
    float *w = c->work + (uint64_t)th * qa_attention_work_floats(c->kv->n_ctx, c->kv->head_dim);
#if defined(__wasm_simd128__)
    if (c->n > 1 && wasm_batch_rows && c->kv->head_dim % 4 == 0) {
        att_task_wasm(c, w, wi, wk);
        return;
    }
#endif
    void (*row)(const att_ctx *, float *, int, int) =
        c->n > 1 && attend_batch_row && c->kv->head_dim % 16 == 0 ? attend_batch_row : attend_row;
    /* rows interleaved over the shares: a causal row costs its position */
    for (int job = wi; job < c->n * c->n_head; job += wk) row(c, w, job / c->n_head, job % c->n_head);
}

void qa_attention(qa_pool *pool, const qa_kv_layer *kv, const float *q, int row_stride, int n, int pos0,
                  int n_head, float scale, int n_swa, float *out, float *work) {
    att_ctx c = {kv, q, row_stride, n, pos0, n_head, n_swa, scale, out, work};
    qa_pool_run(pool, att_task, &c);
}
