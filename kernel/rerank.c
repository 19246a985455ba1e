#include "rerank.h"
#include "codec/codec.h"
#include "heap.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int qa_rerank(int metric, const float *q, const float *rows, const int32_t *row_ids, int m,
              int d, int k, int32_t *out_rows, float *out_d) {
    if (k > m) k = m;
    if (k <= 0) return 0;
    qa_pair *buf = (qa_pair *)malloc(sizeof(qa_pair) * (size_t)(k + 1));
    if (!buf) return -1;
    qa_heap h = {buf, 0, k + 1};
    /* exact distances are the float row of the codec table */
    const qa_codec *c = qa_codec_get(QA_CODEC_NONE);
    qa_quantizer qz;
    qa_quantizer_init(&qz, QA_CODEC_NONE, d, NULL, NULL);
    qa_query qq;
    c->prepare(&qz, q, &qq);
    for (int i = 0; i < m; i++) {
        float dist = c->dist(&qz, metric, &qq, (const uint8_t *)(rows + (int64_t)i * d), 0.0f);
        int32_t id = row_ids[i];
        if (h.n < k) {
            qa_heap_push(&h, dist, id);
        } else {
            qa_pair t = qa_heap_top(&h);
            if (dist < t.d || (dist == t.d && id < t.id)) {
                qa_heap_pop(&h);
                qa_heap_push(&h, dist, id);
            }
        }
    }
    int n = qa_heap_drain_sorted(&h, k, out_rows, out_d);
    /* equal distances leave the heap in arbitrary order: settle ties by row */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out_d[j] == out_d[j - 1] && out_rows[j] < out_rows[j - 1]; j--) {
            int32_t r = out_rows[j]; out_rows[j] = out_rows[j - 1]; out_rows[j - 1] = r;
        }
    free(buf);
    return n;
}

static int cmp_f32(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

float qa_bound_cut(const float *hi, int64_t n, int64_t k, float *scratch) {
    if (n <= k) return INFINITY;
    memcpy(scratch, hi, sizeof(float) * (size_t)n);
    qsort(scratch, (size_t)n, sizeof(float), cmp_f32);
    return scratch[k - 1];
}

static int cmp_by_key(const void *a, const void *b) {
    const qa_pair *x = (const qa_pair *)a, *y = (const qa_pair *)b;
    return (x->d > y->d) - (x->d < y->d);
}

/* Exact top-k entries of every beam missed by the rule at this eps. */
static int64_t misses(const float *est, const float *a, const float *r, const int64_t *off, int nq,
                      const int32_t *top, int k, float eps, float *hi, float *scratch) {
    int64_t miss = 0;
    for (int j = 0; j < nq; j++) {
        const int64_t o = off[j], m = off[j + 1] - off[j];
        for (int64_t i = 0; i < m; i++) hi[i] = est[o + i] + a[o + i] * eps + r[o + i];
        const float cut = qa_bound_cut(hi, m, k, scratch);
        for (int t = 0; t < k && t < m; t++) {
            const int64_t i = o + top[(int64_t)j * k + t];
            if (est[i] - (a[i] * eps + r[i]) > cut) miss++;
        }
    }
    return miss;
}

float qa_rerank_calibrate(const float *est, const float *a, const float *r, const float *ex,
                          const int64_t *off, int nq, int k, double miss_lo, double miss_hi) {
    int64_t mmax = 0, want = 0;
    for (int j = 0; j < nq; j++) {
        const int64_t m = off[j + 1] - off[j];
        mmax = m > mmax ? m : mmax;
        want += m < k ? m : k;
    }
    int32_t *top = (int32_t *)malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * (size_t)k);
    float *hi = (float *)malloc(sizeof(float) * (size_t)(mmax + 1));
    float *scratch = (float *)malloc(sizeof(float) * (size_t)(mmax + 1));
    qa_pair *p = (qa_pair *)malloc(sizeof(qa_pair) * (size_t)(mmax + 1));
    float eps = -1.0f;
    if (top && hi && scratch && p) {
        /* each beam's exact top k, by position in the beam, and how many of them the
         * fixed 2k misses */
        int64_t miss2k = 0;
        for (int j = 0; j < nq; j++) {
            const int64_t o = off[j], m = off[j + 1] - off[j];
            for (int64_t i = 0; i < m; i++) p[i] = (qa_pair){ex[o + i], (int32_t)i};
            qsort(p, (size_t)m, sizeof(qa_pair), cmp_by_key);
            for (int t = 0; t < k && t < m; t++) top[(int64_t)j * k + t] = p[t].id;
            if (m <= 2 * (int64_t)k) continue;
            const float cut2k = qa_bound_cut(est + o, m, 2 * (int64_t)k, hi);
            for (int t = 0; t < k; t++) miss2k += est[o + top[(int64_t)j * k + t]] > cut2k;
        }
        double miss = want ? (double)miss2k / (double)want : 0.0;
        miss = miss < miss_lo ? miss_lo : miss > miss_hi ? miss_hi : miss;
        /* misses fall as eps grows: bisect for the smallest eps within the allowance */
        const int64_t allow = (int64_t)(miss * (double)want);
        float lo = 0.0f, up = (float)QA_MAX_BOUND_EPS;
        if (misses(est, a, r, off, nq, top, k, lo, hi, scratch) <= allow) up = lo;
        for (int it = 0; it < 24 && up - lo > 1e-3f; it++) {
            const float mid = 0.5f * (lo + up);
            if (misses(est, a, r, off, nq, top, k, mid, hi, scratch) <= allow) up = mid;
            else lo = mid;
        }
        eps = up;
    }
    free(top); free(hi); free(scratch); free(p);
    return eps;
}
