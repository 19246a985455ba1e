/* Exact rerank: float distances from the query to the candidates' full vectors. */
#ifndef QA_RERANK_H
#define QA_RERANK_H
#include "distance.h"

/* rows: m x d float32 vectors of candidates row_ids. Writes the best min(k, m) in
 * ascending distance (ties by row) and returns that count. */
int qa_rerank(int metric, const float *q, const float *rows, const int32_t *row_ids, int m,
              int d, int k, int32_t *out_rows, float *out_d);
#endif
