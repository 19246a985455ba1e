/* Q8_K: the activation type of the K-quants (ggml layout): one float scale per 256
 * values and the sums of each 16, which carry a K-quant's minimums / offsets. */
#include <math.h>

#include "simd_blocks.h"
#include "decoder_types.h"

static void q8_k_quantize_ref(const float *x, void *y_, int64_t n) {
    qa_block_q8_k *y = (qa_block_q8_k *)y_;
    for (int64_t b = 0; b < n / QA_QK_K; b++, x += QA_QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QA_QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0.0f) {
            y[b].d = 0.0f;
            for (int j = 0; j < QA_QK_K; j++) y[b].qs[j] = 0;
            for (int j = 0; j < QA_QK_K / 16; j++) y[b].bsums[j] = 0;
            continue;
        }
        /* as ggml: scaled by the signed extreme so it maps to -127 exactly */
        const float iscale = -127.0f / max;
        for (int j = 0; j < QA_QK_K; j++) {
            int v = (int)rintf(iscale * x[j]);
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int g = 0; g < QA_QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += y[b].qs[16 * g + j];
            y[b].bsums[g] = (int16_t)s;
        }
        y[b].d = 1.0f / iscale;
    }
}

static void q8_k_to_float(const void *x_, float *y, int64_t n) {
    const qa_block_q8_k *x = (const qa_block_q8_k *)x_;
    for (int64_t b = 0; b < n / QA_QK_K; b++)
        for (int j = 0; j < QA_QK_K; j++) y[b * QA_QK_K + j] = x[b].d * x[b].qs[j];
}

qa_type_traits qa_type_q8_k = {QA_T_Q8_K, "Q8_K", QA_QK_K, sizeof(qa_block_q8_k), QA_T_Q8_K,
                               q8_k_to_float, q8_k_quantize_ref, NULL, NULL};

/* Activations are a small share of a matmul's work: the scalar quantizer serves every level. */
void qa_type_q8_k_select(void) {}
