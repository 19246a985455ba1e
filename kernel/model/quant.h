/* ggml block quantization: Q8_0 and Q4_0 weights, Q8_0 activations, fp16.
 *
 * Each format is a packed block of 32 values with an fp16 scale, byte-compatible with ggml:
 *   Q8_0: d (fp16) | qs[32] int8              x[i] = d * qs[i]
 *   Q4_0: d (fp16) | qs[16] nibbles           x[i] = d * ((qs[i] & 15) - 8),  i < 16
 *                                             x[i] = d * ((qs[i-16] >> 4) - 8), i >= 16
 * Every SIMD routine has a scalar reference (the *_ref functions); tests hold the
 * dispatched variant to the reference. Dispatch is chosen once (qm_simd_init).
 */
#ifndef QM_QUANT_H
#define QM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define QM_QK 32

typedef struct {
    uint16_t d;
    int8_t qs[QM_QK];
} qm_block_q8_0;

typedef struct {
    uint16_t d;
    uint8_t qs[QM_QK / 2];
} qm_block_q4_0;

_Static_assert(sizeof(qm_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(qm_block_q4_0) == 18, "Q4_0 block is 18 bytes");

/* Dispatch levels. AVX512VNNI = the AVX2 kernels with VNNI matmul tiles. */
enum { QM_SIMD_SCALAR = 0, QM_SIMD_AVX2 = 1, QM_SIMD_WASM = 2, QM_SIMD_AVX512VNNI = 3 };

float qm_fp16_to_fp32(uint16_t h);
uint16_t qm_fp32_to_fp16(float f);

/* Row operations; k is a multiple of 32 for the quantized ones. */
typedef struct {
    void (*quantize_q8_0)(const float *x, qm_block_q8_0 *y, int k);
    float (*dot_q8_0_q8_0)(const qm_block_q8_0 *w, const qm_block_q8_0 *x, int nb);
    float (*dot_q4_0_q8_0)(const qm_block_q4_0 *w, const qm_block_q8_0 *x, int nb);
    float (*dot_f32)(const float *a, const float *b, int n);
    void (*f16_to_f32)(const uint16_t *x, float *y, int n);
    /* 2 weight rows x 4 activation rows: out[r*4 + j] = dot(w row r, x row j). Rows are
     * ws / xs bytes apart; nb blocks each. */
    void (*tile_q8_0)(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out);
    void (*tile_q4_0)(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out);
    void (*gelu)(float *x, int n);            /* in place, erf form */
    void (*exp_sub)(float *x, int n, float m); /* x = exp(x - m) in place */
} qm_kernels;

/* The kernels in use; set by qm_simd_init (the best the CPU has) or qm_simd_set. */
extern qm_kernels qm_k;
int qm_simd_init(void);       /* returns the level chosen */
int qm_simd_set(int level);   /* returns the level set (falls back to scalar if unsupported) */
int qm_simd_level(void);

/* Scalar references. */
void qm_quantize_q8_0_ref(const float *x, qm_block_q8_0 *y, int k);
void qm_quantize_q4_0_ref(const float *x, qm_block_q4_0 *y, int k);
void qm_dequantize_q8_0(const qm_block_q8_0 *x, float *y, int k);
void qm_dequantize_q4_0(const qm_block_q4_0 *x, float *y, int k);
float qm_dot_q8_0_q8_0_ref(const qm_block_q8_0 *w, const qm_block_q8_0 *x, int nb);
float qm_dot_q4_0_q8_0_ref(const qm_block_q4_0 *w, const qm_block_q8_0 *x, int nb);
float qm_dot_f32_ref(const float *a, const float *b, int n);
void qm_tile_q8_0_ref(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out);
void qm_tile_q4_0_ref(const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int nb, float *out);
void qm_gelu_ref(float *x, int n);
void qm_exp_sub_ref(float *x, int n, float m);

#endif
