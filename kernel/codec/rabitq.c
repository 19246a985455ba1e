/* RABITQ1..4: RaBitQ-style codes, B = 1..4 bits per dimension (one row per B).
 *
 * Parameters: vmin[dpad] holds the centroid c; scale[0] the bound's multiplier eps0 as
 * calibrated at build (0: not calibrated, EPS0 stands), the rest of scale is zero. A vector x becomes
 * its residual r = x - c rotated, r' = P r (rotation.h), and the B-bit grid code u[i] in
 * 0..L (L = 2^B - 1) of r' at the scale t that maximises the cosine between r' and
 * y = u - L/2 (B = 1: the signs). After the B bit planes (dpad/8 bytes each, dimension i
 * at byte i/8, bit i%8) come four float32 factors per vector:
 *     f0 = |r|^2          f1 = |r|^2 / <y, r'>   (so <v, r> ~ f1 <P v, y>, unbiased)
 *     f2 = <c, r>         f3 = |r| sqrt(1 - ip^2) / ip / sqrt(dpad - 1),  ip = <y, r'>/(|y||r'|)
 * The estimate of <q - c, r> is f1 * <P(q - c), y>; its error is below
 * eps0 * |q - c| * f3 with high probability over the rotation (the RaBitQ bound, whose
 * error term for a unit query is sqrt(1 - ip^2)/ip times a ~N(0, 1/(D-1)) variable). How
 * high depends on eps0; the build picks the smallest eps0 that keeps the true neighbours
 * of sample queries (qa_index_calibrate_bound), the paper's 1.9 otherwise.
 *
 * Query side in integers as the SQ rows: w = round(P(q - c) / wscale) in int16, and
 * <P(q - c), y> ~ wscale * (sum w[i] u[i] - L/2 sum w[i]); the int32 dot is exact in every
 * variant and the float expression after it is one function, so all variants agree. */
#include "codec.h"
#include "rotation.h"
#include <string.h>

#define NFAC 4
#define EPS0 1.9f   /* the bound's multiplier when the file has none: the paper's choice */
#define NGRID 48    /* scales tried per vector when B > 1 */

static inline int bits_of(const qa_quantizer *qz) { return qz->kind - QA_CODEC_RABITQ1 + 1; }
static inline int size_b(int b, int d) { return b * qa_pad_dims(d) / 8 + 4 * NFAC; }
static int cs1(int d) { return size_b(1, d); }
static int cs2(int d) { return size_b(2, d); }
static int cs3(int d) { return size_b(3, d); }
static int cs4(int d) { return size_b(4, d); }

static inline void factors(const qa_quantizer *qz, const uint8_t *code, float f[NFAC]) {
    memcpy(f, code + qz->code_size - 4 * NFAC, 4 * NFAC);
}

static void unpack(const uint8_t *code, int B, int dpad, uint8_t *u) {
    for (int i = 0; i < dpad; i++) {
        int v = 0;
        for (int b = 0; b < B; b++) v |= (code[b * (dpad / 8) + i / 8] >> (i & 7) & 1) << b;
        u[i] = (uint8_t)v;
    }
}

/* Grid code of r' at scale t; returns <y, r'> and writes |y|^2. */
static float grid(const float *rp, int dpad, int L, float t, uint8_t *u, float *yy) {
    const float half = 0.5f * (float)L;
    float dot = 0.0f, n2 = 0.0f;
    for (int i = 0; i < dpad; i++) {
        long c = lrintf(rp[i] / t + half);
        c = c < 0 ? 0 : c > L ? L : c;
        u[i] = (uint8_t)c;
        float y = (float)c - half;
        dot += y * rp[i];
        n2 += y * y;
    }
    *yy = n2;
    return dot;
}

static void encode(const qa_quantizer *qz, const float *x, uint8_t *code) {
    const int B = bits_of(qz), L = (1 << B) - 1, dpad = qz->dpad, d = qz->d;
    float r[dpad], rp[dpad];
    uint8_t u[dpad], best[dpad];
    float norm2 = 0.0f, cr = 0.0f;
    for (int i = 0; i < dpad; i++) {
        r[i] = i < d ? x[i] - qz->vmin[i] : 0.0f;
        norm2 += r[i] * r[i];
        cr += qz->vmin[i] * r[i];
    }
    memset(code, 0, (size_t)qz->code_size);
    float f[NFAC] = {norm2, 0.0f, cr, 0.0f};
    if (norm2 > 0.0f) {
        qa_rotate(r, rp, dpad);
        float amax = 0.0f;
        for (int i = 0; i < dpad; i++) amax = fabsf(rp[i]) > amax ? fabsf(rp[i]) : amax;
        float yr = 0.0f, yy = 1.0f, bestcos = -1.0f;
        /* B = 1 has one grid (the signs); else try scales from amax/(L/2) down */
        int tries = B == 1 ? 1 : NGRID;
        for (int s = 0; s < tries; s++) {
            float t = amax / (0.5f * (float)L) * (1.0f - 0.7f * (float)s / (float)NGRID);
            float n2, dot = grid(rp, dpad, L, t, u, &n2);
            float cs = n2 > 0.0f ? dot / sqrtf(n2) : -1.0f;
            if (cs > bestcos) {
                bestcos = cs;
                yr = dot;
                yy = n2;
                memcpy(best, u, (size_t)dpad);
            }
        }
        float ip = yr / (sqrtf(yy) * sqrtf(norm2));
        if (ip > 1.0f) ip = 1.0f;
        f[1] = norm2 / yr;
        f[3] = sqrtf(norm2) * sqrtf(1.0f - ip * ip) / ip / sqrtf((float)(dpad - 1));
        for (int i = 0; i < dpad; i++)
            for (int b = 0; b < B; b++) code[b * (dpad / 8) + i / 8] |= (uint8_t)((best[i] >> b & 1) << (i & 7));
    }
    memcpy(code + qz->code_size - 4 * NFAC, f, sizeof f);
}

/* The point of the code's direction nearest x: c + P^-1 (y <y, r'>/|y|^2). */
static void decode(const qa_quantizer *qz, const uint8_t *code, float *out) {
    const int B = bits_of(qz), L = (1 << B) - 1, dpad = qz->dpad;
    float f[NFAC], yp[dpad], r[dpad];
    uint8_t u[dpad];
    factors(qz, code, f);
    unpack(code, B, dpad, u);
    float yy = 0.0f;
    for (int i = 0; i < dpad; i++) {
        yp[i] = (float)u[i] - 0.5f * (float)L;
        yy += yp[i] * yp[i];
    }
    float a = f[1] > 0.0f && yy > 0.0f ? f[0] / (f[1] * yy) : 0.0f;
    for (int i = 0; i < dpad; i++) yp[i] *= a;
    qa_rotate_inverse(yp, r, dpad);
    for (int i = 0; i < qz->d; i++) out[i] = qz->vmin[i] + r[i];
}

static void prepare(const qa_quantizer *qz, const float *q, qa_query *out) {
    const int dpad = qz->dpad, d = qz->d, L = (1 << bits_of(qz)) - 1;
    float qc[dpad], qp[dpad];
    float n2 = 0.0f, qcd = 0.0f;
    for (int i = 0; i < dpad; i++) {
        qc[i] = i < d ? q[i] - qz->vmin[i] : 0.0f;
        n2 += qc[i] * qc[i];
        qcd += (i < d ? q[i] : 0.0f) * qz->vmin[i];
    }
    qa_rotate(qc, qp, dpad);
    int64_t wmax = 2147483647LL / ((int64_t)dpad * L);
    if (wmax > 32767) wmax = 32767;
    float amax = 0.0f;
    for (int i = 0; i < dpad; i++) amax = fabsf(qp[i]) > amax ? fabsf(qp[i]) : amax;
    out->q = q;
    out->qnorm2 = n2; /* |q - c|^2 */
    out->qc_norm = sqrtf(n2);
    out->qc_dot = qcd;
    out->bias = 0.0f;
    out->wscale = amax > 0.0f ? amax / (float)wmax : 1.0f;
    const float inv = 1.0f / out->wscale;
    int32_t ws = 0;
    for (int i = 0; i < dpad; i++) {
        out->w[i] = qa_weight_i16(qp[i] * inv); /* as qa_sq_prepare */
        ws += out->w[i];
    }
    out->wsum = ws;
}

/* From the exact integer sum w.u to the distance (the one expression of every variant). */
static inline float rq_dist(const qa_quantizer *qz, int metric, const qa_query *qq, const uint8_t *code,
                            int32_t s) {
    const int L = (1 << bits_of(qz)) - 1;
    float f[NFAC];
    factors(qz, code, f);
    float est = f[1] * (0.5f * qq->wscale * (float)(2 * (int64_t)s - (int64_t)L * qq->wsum));
    if (metric == QA_METRIC_L2) return qq->qnorm2 + f[0] - 2.0f * est;
    return 1.0f - (qq->qc_dot + f[2] + est);
}

static float error_bound(const qa_quantizer *qz, int metric, const qa_query *qq, const uint8_t *code,
                         float resid) {
    (void)resid;
    const int L = (1 << bits_of(qz)) - 1;
    float f[NFAC];
    factors(qz, code, f);
    /* the rotation's term, plus the int16 rounding of the query: |sum (w wscale - q') y| */
    const float eps0 = qz->scale && qz->scale[0] > 0.0f ? qz->scale[0] : EPS0;
    float b = eps0 * qq->qc_norm * f[3] + f[1] * 0.5f * qq->wscale * 0.5f * (float)L * (float)qz->dpad;
    return metric == QA_METRIC_L2 ? 2.0f * b : b;
}

#define RQ_VARIANT(suffix, attr, dot)                                                            \
    attr static float dist_##suffix(const qa_quantizer *qz, int metric, const qa_query *qq,     \
                                    const uint8_t *code, float xnorm2) {                        \
        (void)xnorm2;                                                                           \
        return rq_dist(qz, metric, qq, code, dot(qq->w, code, qz->dpad, bits_of(qz)));          \
    }                                                                                           \
    attr static void batch_##suffix(const qa_quantizer *qz, int metric, const qa_query *qq,     \
                                    const uint8_t *codes, const float *norms,                   \
                                    const int32_t *nodes, int n, float *out) {                  \
        (void)norms;                                                                            \
        const int64_t cs = qz->stride;                                                          \
        const int dpad = qz->dpad, B = bits_of(qz);                                             \
        for (int i = 0; i < n; i++) {                                                           \
            const uint8_t *c = codes + nodes[i] * cs;                                           \
            out[i] = rq_dist(qz, metric, qq, c, dot(qq->w, c, dpad, B));                        \
        }                                                                                       \
    }

/* ---- sum w[i] u[i] over the bit planes ------------------------------------------------ */

static inline int32_t dot_ref(const int16_t *w, const uint8_t *code, int dpad, int B) {
    int32_t s = 0;
    for (int b = 0; b < B; b++) {
        const uint8_t *p = code + b * (dpad / 8);
        int32_t sb = 0;
        for (int i = 0; i < dpad; i++)
            if (p[i >> 3] >> (i & 7) & 1) sb += w[i];
        s += sb * (1 << b);
    }
    return s;
}
RQ_VARIANT(ref, , dot_ref)

#ifdef QA_X86
/* 32 dimensions at a time: each plane's 4 bytes are spread to 32 byte lanes (byte j/8 in
 * lane j), tested against the lane's bit and OR-ed into u (bytes 0..15), then widened to
 * int16 and madd-ed with the weights. */
QA_TARGET_AVX2 static inline int32_t dot_avx2(const int16_t *w, const uint8_t *code, int dpad, int B) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 1, 2, 4, 8, 16, 32, 64, (char)128,
                                         1, 2, 4, 8, 16, 32, 64, (char)128, 1, 2, 4, 8, 16, 32, 64, (char)128);
    const int pb = dpad / 8;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < dpad / 32; g++) {
        __m256i u = _mm256_setzero_si256();
        for (int b = 0; b < B; b++) {
            int32_t bits;
            memcpy(&bits, code + b * pb + 4 * g, 4);
            __m256i m = _mm256_shuffle_epi8(_mm256_set1_epi32(bits), spread);
            m = _mm256_cmpeq_epi8(_mm256_and_si256(m, sel), sel);
            u = _mm256_or_si256(u, _mm256_and_si256(m, _mm256_set1_epi8((char)(1 << b))));
        }
        __m256i lo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(u));
        __m256i hi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(u, 1));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)(w + 32 * g))));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(w + 32 * g + 16))));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}
RQ_VARIANT(avx2, QA_TARGET_AVX2, dot_avx2)
#endif

#ifdef QA_WASM_SIMD
/* 8 dimensions (one byte of each plane) at a time. */
static inline int32_t dot_simd128(const int16_t *w, const uint8_t *code, int dpad, int B) {
    const v128_t sel = wasm_i16x8_make(1, 2, 4, 8, 16, 32, 64, 128);
    const int pb = dpad / 8;
    v128_t acc = wasm_i32x4_splat(0);
    for (int g = 0; g < pb; g++) {
        v128_t u = wasm_i16x8_splat(0);
        for (int b = 0; b < B; b++) {
            v128_t m = wasm_i16x8_splat((short)code[b * pb + g]);
            m = wasm_i16x8_eq(wasm_v128_and(m, sel), sel);
            u = wasm_v128_or(u, wasm_v128_and(m, wasm_i16x8_splat((short)(1 << b))));
        }
        acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(u, wasm_v128_load(w + 8 * g)));
    }
    return wasm_i32x4_extract_lane(acc, 0) + wasm_i32x4_extract_lane(acc, 1) + wasm_i32x4_extract_lane(acc, 2) +
           wasm_i32x4_extract_lane(acc, 3);
}
RQ_VARIANT(simd128, , dot_simd128)
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

#define RQ_ROW(B)                                                                                \
    const qa_codec qa_codec_rabitq##B##_row = {                                                  \
        .id = QA_CODEC_RABITQ##B, .name = "rabitq" #B, .code_size = cs##B, .encode = encode,     \
        .decode = decode, .prepare = prepare, .error_bound = error_bound,                        \
        .variants = variants, .n_variants = sizeof variants / sizeof variants[0],                \
    };
RQ_ROW(1)
RQ_ROW(2)
RQ_ROW(3)
RQ_ROW(4)
