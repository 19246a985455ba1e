/* Float32 distances: used to build the graph from full vectors and to rerank exactly. */
#ifndef QA_DISTANCE_H
#define QA_DISTANCE_H
#include "simd.h"

#include "constants.h" /* QA_METRIC_L2, QA_METRIC_IP; cosine = IP over unit vectors */

/* Sum of a[i]*b[i] over 8 interleaved lanes, reduced in a fixed order. */
float qa_dot_f32(const float *a, const float *b, size_t d);
/* Sum of (a[i]-b[i])^2, same lane order. */
float qa_l2sq_f32(const float *a, const float *b, size_t d);
float qa_dot_f32_ref(const float *a, const float *b, size_t d);
float qa_l2sq_f32_ref(const float *a, const float *b, size_t d);

/* Scales v to unit length (cosine metric) with the norm from qa_dot_f32, so native and
 * wasm normalise queries to the same bits. Returns -1 for a zero vector. */
int qa_normalize(float *v, size_t d);

/* Distance as reported to users: squared L2, or 1 - inner product. */
static inline float qa_dist_f32(int metric, const float *a, const float *b, size_t d) {
    return metric == QA_METRIC_L2 ? qa_l2sq_f32(a, b, d) : 1.0f - qa_dot_f32(a, b, d);
}
#endif
