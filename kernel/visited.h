/* Visited marks by epoch: a node is visited when tag[node] == epoch, so starting a new
 * search only bumps the epoch; the array is cleared once every 65535 searches. */
#ifndef QA_VISITED_H
#define QA_VISITED_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint16_t *tag;
    int64_t cap;
    uint16_t epoch;
} qa_visited;

static inline int qa_visited_init(qa_visited *v, int64_t cap) {
    v->tag = (uint16_t *)calloc((size_t)(cap > 0 ? cap : 1), sizeof(uint16_t));
    v->cap = cap;
    v->epoch = 0;
    return v->tag ? 0 : -1;
}
static inline void qa_visited_free(qa_visited *v) { free(v->tag); v->tag = NULL; }
static inline void qa_visited_next(qa_visited *v) {
    if (++v->epoch == 0) {
        memset(v->tag, 0, (size_t)v->cap * sizeof(uint16_t));
        v->epoch = 1;
    }
}
/* Marks node; returns 1 if it was already marked in this search. */
static inline int qa_visited_test_set(qa_visited *v, int32_t node) {
    if (v->tag[node] == v->epoch) return 1;
    v->tag[node] = v->epoch;
    return 0;
}
#endif
