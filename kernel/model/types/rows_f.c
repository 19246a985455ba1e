/* TEMPORARY (helper F, until helper B's types.c lands): the types table the decoder
 * computes with. F32 / F16 / Q8_0 rows wrap the encoder's kernels in quant.c; Q4_1, Q8_1,
 * Q5_0, Q8_K, Q4_K, Q6_K are the decoder's own rows (types/<type>.c). At merge: delete this
 * file, add the rows qa_type_<type> (and their init calls) to types.c, and give
 * qa_type_tile a home next to qa_type_get. */
#include <string.h>

#include "../quant.h"
#include "decoder_types.h"

static void f32_to_float(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }
static float f32_dot(int64_t n, const void *w, const void *a) { return qm_k.dot_f32(w, a, (int)n); }
static float f32_dot_ref(int64_t n, const void *w, const void *a) { return qm_dot_f32_ref(w, a, (int)n); }
static void f16_to_float(const void *x, float *y, int64_t n) { qm_k.f16_to_f32(x, y, (int)n); }
static void q8_0_to_float(const void *x, float *y, int64_t n) { qm_dequantize_q8_0(x, y, (int)n); }
static void q8_0_quantize(const float *x, void *y, int64_t n) { qm_k.quantize_q8_0(x, y, (int)n); }
static float q8_0_dot_ref(int64_t n, const void *w, const void *a) { return qm_dot_q8_0_q8_0_ref(w, a, (int)(n / 32)); }
static float q8_0_dot(int64_t n, const void *w, const void *a) { return qm_k.dot_q8_0_q8_0(w, a, (int)(n / 32)); }
static void q8_0_tile(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *out) {
    qm_k.tile_q8_0(w, ws, x, xs, (int)(n / 32), out);
}

static qa_type_traits row_f32 = {QA_T_F32, "F32", 1, 4, QA_T_F32, f32_to_float, NULL, f32_dot_ref, f32_dot};
static qa_type_traits row_f16 = {QA_T_F16, "F16", 1, 2, QA_T_F32, f16_to_float, NULL, NULL, NULL};
static qa_type_traits row_q8_0 = {QA_T_Q8_0, "Q8_0", 32, 34, QA_T_Q8_0, q8_0_to_float, q8_0_quantize, q8_0_dot_ref, q8_0_dot};

qa_type_traits *const qa_types[] = {&row_f32, &row_f16, &row_q8_0, &qa_type_q4_1, &qa_type_q8_1, &qa_type_q5_0,
                                    &qa_type_q8_k, &qa_type_q4_k, &qa_type_q6_k};
const int qa_n_types = sizeof qa_types / sizeof qa_types[0];

extern qa_tile_fn qa_q4_1_tile;

/* The variants for a level: AVX2 (and VNNI tiles where the CPU has them) or scalar. */
void qa_types_select(int avx2) {
    row_q8_0.quantize_act = q8_0_quantize;
    qa_type_q8_1_init(avx2);
    qa_type_q4_1_init(avx2);
    qa_type_q5_0_init(avx2);
    qa_type_q8_k_init(avx2);
    qa_type_q4_k_init(avx2);
    qa_type_q6_k_init(avx2);
}

void qa_types_init(void) {
    int level = qm_simd_init();
    qa_types_select(level == QM_SIMD_AVX2 || level == QM_SIMD_AVX512VNNI);
}

const qa_type_traits *qa_type_get(uint32_t type) {
    for (int i = 0; i < qa_n_types; i++)
        if (qa_types[i]->type == type) return qa_types[i];
    return NULL;
}

qa_tile_fn qa_type_tile(uint32_t type) {
    if (type == QA_T_Q4_1) return qa_q4_1_tile;
    if (type == QA_T_Q8_0) return q8_0_tile;
    return NULL;
}
