#include "rerank.h"
#include "codec/codec.h"
#include "heap.h"
#include <stdlib.h>

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
