/* Block structs and table rows of the types the decoder added (Q4_1 with its Q8_1
 * activations, Q5_0, and the K-quants Q4_K / Q6_K with their Q8_K activations). Each row is defined in its own file (types/<type>.c) and
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

/* Q5_0: 32 values, x = d * (q - 16), q = 4 low bits in qs (as Q4_0) | bit i of qh << 4 */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
} qa_block_q5_0;

/* The K-quants: super-blocks of 256 values. */
#define QA_QK_K 256

/* Q8_K: activations of the K-quants. d is a float; bsums[g] = sum of qs[16g .. 16g+15]. */
typedef struct {
    float d;
    int8_t qs[QA_QK_K];
    int16_t bsums[QA_QK_K / 16];
} qa_block_q8_k;

/* Q4_K: 8 sub-blocks of 32 with 6-bit scale and min packed in scales[12]:
 * x = d * sc_j * q - dmin * m_j, q 4 bits (each 64 values: 32 low nibbles, then 32 high). */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[QA_QK_K / 2];
} qa_block_q4_k;

/* Q6_K: 16 sub-blocks of 16 with int8 scales: x = d * sc_g * (q - 32), q = 4 bits of ql |
 * 2 bits of qh << 4. */
typedef struct {
    uint8_t ql[QA_QK_K / 2];
    uint8_t qh[QA_QK_K / 4];
    int8_t scales[QA_QK_K / 16];
    uint16_t d;
} qa_block_q6_k;

_Static_assert(sizeof(qa_block_q5_0) == 22, "Q5_0 block is 22 bytes");
_Static_assert(sizeof(qa_block_q8_k) == 292, "Q8_K block is 292 bytes");
_Static_assert(sizeof(qa_block_q4_k) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(qa_block_q6_k) == 210, "Q6_K block is 210 bytes");
_Static_assert(sizeof(qa_block_q8_1) == 36, "Q8_1 block is 36 bytes");
_Static_assert(sizeof(qa_block_q4_1) == 20, "Q4_1 block is 20 bytes");

extern qa_type_traits qa_type_q8_1, qa_type_q4_1, qa_type_q5_0, qa_type_q8_k, qa_type_q4_k, qa_type_q6_k;
void qa_q8_1_quantize_ref(const float *x, void *y, int64_t n);

#endif
