/* A binary min-heap of merge candidates, shared by the BPE and SentencePiece merges: each
 * includes this after defining its `pair` type and the order `before(a, b)` (a pops first). */
#ifndef QA_MERGE_HEAP_H
#define QA_MERGE_HEAP_H
#include <stdint.h>

#define QA_DEFINE_MERGE_HEAP(pair, before)                                   \
    static void heap_push(pair *h, uint32_t *n, pair p) {                    \
        uint32_t i = (*n)++;                                                 \
        while (i) {                                                          \
            uint32_t up = (i - 1) / 2;                                       \
            if (!before(&p, &h[up])) break;                                  \
            h[i] = h[up];                                                    \
            i = up;                                                          \
        }                                                                    \
        h[i] = p;                                                            \
    }                                                                        \
    static pair heap_pop(pair *h, uint32_t *n) {                             \
        pair top = h[0], last = h[--*n];                                     \
        uint32_t i = 0, m = *n;                                              \
        for (;;) {                                                           \
            uint32_t c = 2 * i + 1;                                          \
            if (c >= m) break;                                               \
            if (c + 1 < m && before(&h[c + 1], &h[c])) c++;                  \
            if (!before(&h[c], &last)) break;                                \
            h[i] = h[c];                                                     \
            i = c;                                                           \
        }                                                                    \
        if (m) h[i] = last;                                                  \
        return top;                                                          \
    }
#endif
