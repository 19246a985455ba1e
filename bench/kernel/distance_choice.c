/* Why query-vs-code distances run in the integer domain: times the kernel's SQ8/SQ4
 * integer dot products (the codec table, kernel/codec/, fastest variant) against the alternative, decoding each code to
 * floats in registers and taking a float dot product (AVX2, fused, no memory round trip).
 * Codes are visited in a random order over an array larger than the cache, as in a graph
 * search.
 *   gcc -O3 -std=gnu11 -ffp-contract=off -I../../kernel distance_choice.c \
 *       ../../kernel/codec/*.c ../../kernel/simd.c ../../kernel/distance.c -lm \
 *       -o /tmp/distance_choice && /tmp/distance_choice
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "codec/codec.h"

#define N 200000
#define D 384

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* The alternative: x[i] = vmin[i] + scale[i] * c[i] decoded in registers, dot with q. */
__attribute__((target("avx2,fma"))) static float dot_decode_sq8(const float *q, const float *vmin,
                                                                const float *scale, const uint8_t *c) {
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < D; i += 8) {
        __m256 cf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + i))));
        __m256 x = _mm256_fmadd_ps(cf, _mm256_loadu_ps(scale + i), _mm256_loadu_ps(vmin + i));
        acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(q + i), acc);
    }
    float l[8];
    _mm256_storeu_ps(l, acc);
    return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}

__attribute__((target("avx2,fma"))) static float dot_decode_sq4(const float *q, const float *vmin,
                                                                const float *scale, const uint8_t *c) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < D / 64; b++) {
        const uint8_t *cb = c + b * 32;
        for (int j = 0; j < 32; j += 8) {
            __m128i raw = _mm_loadl_epi64((const __m128i *)(cb + j));
            __m256i lo = _mm256_cvtepu8_epi32(_mm_and_si128(raw, _mm_set1_epi8(15)));
            __m256i hi = _mm256_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(15)));
            int i0 = b * 64 + j, i1 = b * 64 + 32 + j;
            __m256 x0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_loadu_ps(scale + i0), _mm256_loadu_ps(vmin + i0));
            __m256 x1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_loadu_ps(scale + i1), _mm256_loadu_ps(vmin + i1));
            acc = _mm256_fmadd_ps(x0, _mm256_loadu_ps(q + i0), acc);
            acc = _mm256_fmadd_ps(x1, _mm256_loadu_ps(q + i1), acc);
        }
    }
    float l[8];
    _mm256_storeu_ps(l, acc);
    return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}

int main(void) {
    qa_cpu_init();
    qa_codec_select(1);
    float *vmin = aligned_alloc(64, D * 4), *scale = aligned_alloc(64, D * 4), *q = aligned_alloc(64, D * 4);
    int16_t *w = aligned_alloc(64, D * 2);
    uint8_t *codes = aligned_alloc(64, (size_t)N * D);
    int32_t *order = malloc(N * sizeof(int32_t));
    srand(1);
    for (int i = 0; i < D; i++) {
        vmin[i] = -0.2f;
        scale[i] = 0.4f / 255;
        q[i] = (float)rand() / RAND_MAX - 0.5f;
    }
    for (size_t i = 0; i < (size_t)N * D; i++) codes[i] = (uint8_t)rand();
    for (int i = 0; i < N; i++) order[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    const int kinds[] = {QA_CODEC_SQ8, QA_CODEC_SQ4};
    for (int k = 0; k < 2; k++) {
        const int kind = kinds[k];
        const qa_codec *codec = qa_codec_get(kind);
        qa_quantizer qz;
        if (!codec || qa_quantizer_init(&qz, kind, D, vmin, scale) != 0) return 1;
        qa_query qq;
        qq.w = w;
        const int cs = qz.code_size;
        double best_i = 1e9, best_f = 1e9;
        volatile float sink = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            codec->prepare(&qz, q, &qq); /* per query, included */
            float s = 0;
            for (int r = 0; r < N; r++) s += codec->dist(&qz, QA_METRIC_IP, &qq, codes + (size_t)order[r] * cs, 0);
            double t1 = now();
            float s2 = 0;
            for (int r = 0; r < N; r++)
                s2 += kind == QA_CODEC_SQ8 ? dot_decode_sq8(q, vmin, scale, codes + (size_t)order[r] * cs)
                                           : dot_decode_sq4(q, vmin, scale, codes + (size_t)order[r] * cs);
            double t2 = now();
            sink += s + s2;
            if (t1 - t0 < best_i) best_i = t1 - t0;
            if (t2 - t1 < best_f) best_f = t2 - t1;
        }
        printf("%s d=%d, %d codes in random order (best of 5): integer domain %.1f ns/distance, "
               "decode-then-float %.1f ns/distance, ratio %.2fx\n",
               codec->name, D, N, best_i / N * 1e9, best_f / N * 1e9, best_f / best_i);
    }
    return 0;
}
