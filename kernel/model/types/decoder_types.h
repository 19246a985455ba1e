/* Block structs and table rows of the types the decoder added (Q4_1 with its Q8_1
 * activations; K-quants next). Each row is defined in its own file (types/<type>.c) and
 * listed in the types table. */
#ifndef QA_DECODER_TYPES_H
#define QA_DECODER_TYPES_H

#include "../types.h"

typedef struct {
    uint16_t d, s; /* fp16 scale; fp16 d * sum(qs) */
    int8_t qs[32];
} qa_block_q8_1;

typedef struct {
    uint16_t d, m; /* fp16 scale and minimum: x = d * q + m */
    uint8_t qs[16]; /* q[i] = qs[i] & 15 (i < 16), qs[i-16] >> 4 (i >= 16) */
} qa_block_q4_1;

_Static_assert(sizeof(qa_block_q8_1) == 36, "Q8_1 block is 36 bytes");
_Static_assert(sizeof(qa_block_q4_1) == 20, "Q4_1 block is 20 bytes");

extern qa_type_traits qa_type_q8_1, qa_type_q4_1;
void qa_type_q8_1_init(int avx2);
void qa_type_q4_1_init(int avx2);
void qa_q8_1_quantize_ref(const float *x, void *y, int64_t n);

/* 2 weight rows x 4 activation rows (rows ws / xs bytes apart, n values each):
 * out[r*4 + j] = vec_dot(n, w row r, x row j). The prefill matmul's inner tile. */
typedef void (*qa_tile_fn)(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *out);
/* The tile of a weight type, or NULL (the matmul then calls vec_dot per pair). */
qa_tile_fn qa_type_tile(uint32_t type);

#endif
