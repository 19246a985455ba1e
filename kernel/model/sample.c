#include "sample.h"

#include <math.h>
#include <stdlib.h>

float qa_rand_uniform(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

/* min-heap of candidate ids on their logits: keeps the k largest */
static void sift_down(int32_t *h, int k, int i, const float *l) {
    for (;;) {
        int a = 2 * i + 1, b = a + 1, m = i;
        if (a < k && l[h[a]] < l[h[m]]) m = a;
        if (b < k && l[h[b]] < l[h[m]]) m = b;
        if (m == i) return;
        int32_t t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static const float *sort_logits;
static int by_logit_desc(const void *a, const void *b) {
    float x = sort_logits[*(const int32_t *)a], y = sort_logits[*(const int32_t *)b];
    return x < y ? 1 : x > y ? -1 : (*(const int32_t *)a - *(const int32_t *)b);
}

int qa_sample(float *logits, int n, const qa_sample_params *p, const int32_t *recent, int n_recent,
              uint64_t *rng, void *work) {
    float *prob = (float *)work;
    int32_t *ids = (int32_t *)(prob + n);
    if (p->repeat_penalty != 1.0f && n_recent > 0) {
        /* each distinct recent token once: mark with the id list as a scratch set */
        for (int i = 0; i < n_recent; i++) ids[i] = -1;
        for (int i = 0; i < n_recent; i++) {
            int32_t t = recent[i], seen = 0;
            if (t < 0 || t >= n) continue;
            for (int j = 0; j < i && !seen; j++) seen = ids[j] == t;
            ids[i] = t;
            if (seen) continue;
            logits[t] = logits[t] > 0 ? logits[t] / p->repeat_penalty : logits[t] * p->repeat_penalty;
        }
    }
    if (p->temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    if (k < n) { /* heap of the k largest, then sorted */
        for (int i = 0; i < k; i++) ids[i] = i;
        for (int i = k / 2 - 1; i >= 0; i--) sift_down(ids, k, i, logits);
        for (int i = k; i < n; i++)
            if (logits[i] > logits[ids[0]]) {
                ids[0] = i;
                sift_down(ids, k, 0, logits);
            }
    } else {
        for (int i = 0; i < n; i++) ids[i] = i;
    }
    sort_logits = logits; /* single-threaded per call; the glue holds the model lock */
    qsort(ids, (size_t)k, sizeof *ids, by_logit_desc);
    /* top-p and min-p on the untempered softmax */
    float mx = logits[ids[0]], sum = 0.0f;
    for (int i = 0; i < k; i++) sum += (prob[i] = expf(logits[ids[i]] - mx));
    if (p->top_p < 1.0f) {
        float c = 0.0f;
        for (int i = 0; i < k; i++) {
            c += prob[i] / sum;
            if (c >= p->top_p) {
                k = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) { /* prob[0] is the largest (= 1 before normalising) */
        int j = 1;
        while (j < k && prob[j] >= p->min_p * prob[0]) j++;
        k = j;
    }
    sum = 0.0f;
    for (int i = 0; i < k; i++) sum += (prob[i] = expf((logits[ids[i]] - mx) / p->temperature));
    float r = qa_rand_uniform(rng) * sum, c = 0.0f;
    for (int i = 0; i < k; i++) {
        c += prob[i];
        if (r < c) return ids[i];
    }
    return ids[k - 1];
}
