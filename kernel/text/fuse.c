/* Reciprocal rank fusion of the vector and the lexical ranking (lexical.h). */
#include <stdlib.h>

#include "errors.h"
#include "text/lexical.h"

typedef struct {
    uint64_t id;
    double score;
    int64_t ra, rb; /* ranks from 0; INT64_MAX when absent */
} fused;

static int by_id(const void *x, const void *y) {
    uint64_t a = ((const fused *)x)->id, b = ((const fused *)y)->id;
    return (a > b) - (a < b);
}

static int by_score(const void *x, const void *y) {
    const fused *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->ra != b->ra) return a->ra < b->ra ? -1 : 1;
    return (a->rb > b->rb) - (a->rb < b->rb);
}

int64_t qa_rrf_fuse(const uint64_t *a, int64_t na, const uint64_t *b, int64_t nb, double wa, double wb,
                    double rrf_k, int64_t k, uint64_t *out_id, double *out_score) {
    if (na < 0) na = 0;
    if (nb < 0) nb = 0;
    fused *f = malloc(sizeof *f * (size_t)(na + nb + 1));
    if (!f) return QA_ERR_NOMEM;
    for (int64_t i = 0; i < na; i++) f[i] = (fused){a[i], 0, i, INT64_MAX};
    qsort(f, (size_t)na, sizeof *f, by_id);
    int64_t m = na;
    for (int64_t j = 0; j < nb; j++) {
        fused key = {b[j], 0, 0, 0};
        fused *hit = na ? bsearch(&key, f, (size_t)na, sizeof *f, by_id) : NULL;
        if (hit) hit->rb = j;
        else f[m++] = (fused){b[j], 0, INT64_MAX, j};
    }
    for (int64_t i = 0; i < m; i++) /* summed in one order (a, then b): the same bits everywhere */
        f[i].score = (f[i].ra < INT64_MAX ? wa / (rrf_k + (double)(f[i].ra + 1)) : 0.0) +
                     (f[i].rb < INT64_MAX ? wb / (rrf_k + (double)(f[i].rb + 1)) : 0.0);
    qsort(f, (size_t)m, sizeof *f, by_score);
    if (k > m) k = m;
    for (int64_t i = 0; i < k; i++) {
        out_id[i] = f[i].id;
        out_score[i] = f[i].score;
    }
    free(f);
    return k < 0 ? 0 : k;
}
