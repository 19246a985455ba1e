/* Exact rerank: float distances from the query to the candidates' full vectors; and rerank
 * auto's rule (which candidates to read) with the calibration of its bound. */
#ifndef QA_RERANK_H
#define QA_RERANK_H
#include "distance.h"

/* rows: m x d float32 vectors of candidates row_ids. Writes the best min(k, m) in
 * ascending distance (ties by row) and returns that count. */
int qa_rerank(int metric, const float *q, const float *rows, const int32_t *row_ids, int m,
              int d, int k, int32_t *out_rows, float *out_d);

/* rerank auto reads candidate i when its lower bound is not above this cut: the k-th
 * smallest of the n upper bounds hi (+inf when n <= k). scratch: n floats. */
float qa_bound_cut(const float *hi, int64_t n, int64_t k, float *scratch);

/* Calibrates the multiplier eps of the codes' error bound (bound = a*eps + r) on sample
 * queries: query j's beam is entries off[j] .. off[j+1]-1 of est (estimated distance),
 * a, r and ex (exact distance). The allowance is the fraction of the beams' exact top k
 * that the fixed rerank of 2k (the 2k best estimates) misses, held within
 * [miss_lo, miss_hi]: auto is to lose no more than the fixed 2k, nor more than miss_hi.
 * Returns the smallest eps in [0, QA_MAX_BOUND_EPS] for which the rule above keeps all but
 * that fraction, or -1 when out of memory. */
float qa_rerank_calibrate(const float *est, const float *a, const float *r, const float *ex,
                          const int64_t *off, int nq, int k, double miss_lo, double miss_hi);
#endif
