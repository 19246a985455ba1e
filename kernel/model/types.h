/* ggml tensor types the model kernel computes with: one row per type.
 *
 * Each type lives in its own file under kernel/model/types/ (the packed block struct with
 * its size asserted at compile time, a scalar reference for to-float and the dot product,
 * and SIMD variants held to the reference by the tests) and contributes one row here.
 * A matmul multiplies weight rows of type T by activations quantized once per row to
 * T's `act_type` (Q8_0 for the 32-blocks, Q8_K for the K-quants, F32 for float weights),
 * so a dot product never converts a weight to float.
 *
 * Adding a type = its file + its row in types.c (qa_types[]); tests loop over the table.
 */
#ifndef QA_MODEL_TYPES_H
#define QA_MODEL_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "../gguf/gguf.h" /* enum qa_ggml_type: the ggml type ids */

typedef struct {
    uint32_t type;      /* qa_ggml_type */
    const char *name;   /* "Q4_1", as ggml names it */
    int blck;           /* values per block */
    int size;           /* bytes per block */
    uint32_t act_type;  /* the activation type vec_dot takes */
    /* n values (a multiple of blck) of blocks x -> floats y */
    void (*to_float)(const void *x, float *y, int64_t n);
    /* activations: n floats -> blocks of act_type (NULL when act_type is F32) */
    void (*quantize_act)(const float *x, void *y, int64_t n);
    /* sum over n values of weight blocks w times activation blocks a (scalar reference) */
    float (*vec_dot_ref)(int64_t n, const void *w, const void *a);
    /* the dispatched variant (AVX2 / AVX-512 VNNI / SIMD128), same result as the reference
     * up to float summation order; set by qa_types_init from the CPU's features */
    float (*vec_dot)(int64_t n, const void *w, const void *a);
    /* Optional members (NULL when a type has none). quantize_act_ref: the scalar reference
     * of quantize_act, which the tests hold it to bit for bit. tile: 2 weight rows x 4
     * activation rows in one pass (each weight block decoded once for 4 rows); rows are ws
     * / as bytes apart, out[r * 4 + j] = dot(weight row r, activation row j), equal to
     * vec_dot up to float summation order. The matmul uses vec_dot where tile is NULL. */
    void (*quantize_act_ref)(const float *x, void *y, int64_t n);
    void (*tile)(int64_t n, const void *w, size_t ws, const void *a, size_t as, float *out);
    /* rows4: 4 weight rows (ws bytes apart) x 1 activation row, out[r] = vec_dot(row r), the
     * same bits (the single-token matmul: each activation block decoded once for 4 rows). */
    void (*rows4)(int64_t n, const void *w, size_t ws, const void *a, float *out);
    /* The prompt matmul's panels (x86 AVX-512, SIMD128 Q8_0 / Q4_1; types/panel.h): an
     * activation row type that can be packed sets panel_block (bytes of one block of QA_PANEL_TOKENS tokens, fixed
     * at build time so scratch sizes do not depend on the SIMD level picked at run time);
     * pack_act copies token j of a panel (one act_type row of n values) into it; panel
     * computes 2 weight rows (ws bytes apart) x the QA_PANEL_TOKENS tokens of a packed panel,
     * out[r * QA_PANEL_TOKENS + j], the same bits as vec_dot. NULL / 0 where a type or the
     * CPU has none; a weight row borrows its activation row's pack_act and panel_block. */
    int panel_block;
    void (*pack_act)(const void *a, int j, void *panel, int64_t n);
    void (*panel)(int64_t n, const void *w, size_t ws, const void *panel, float *out);
} qa_type_traits;

/* AVX-512's panels pair tokens in 512-bit vectors; SIMD128's Q8_0 and Q4_1 panels take 8 so
 * that a short query (8-15 tokens) reaches them too. */
#if defined(__wasm_simd128__)
#define QA_PANEL_TOKENS 8
#else
#define QA_PANEL_TOKENS 16
#endif

/* Shared by the type files: fp16 <-> fp32 as ggml rounds (types/f16.c), and the Q8_0 block,
 * which is also the activation type of every 32-value block type. */
float qa_fp16_to_fp32(uint16_t h);
uint16_t qa_fp32_to_fp16(float f);

#define QA_QK8_0 32
typedef struct {
    uint16_t d;              /* fp16 scale */
    int8_t qs[QA_QK8_0];     /* x[i] = d * qs[i] */
} qa_block_q8_0;
_Static_assert(sizeof(qa_block_q8_0) == 34, "Q8_0 block is 34 bytes");

/* Dispatch level the rows use (derived from the flags of kernel/simd.h; for reports). */
enum { QA_SIMD_SCALAR = 0, QA_SIMD_AVX2 = 1, QA_SIMD_WASM = 2, QA_SIMD_AVX512VNNI = 3 };
int qa_types_level(void);

/* The row of a type, or NULL when the model kernel cannot compute with it. */
const qa_type_traits *qa_type_get(uint32_t type);
/* Every row, for tests and reports. */
extern qa_type_traits *const qa_types[]; /* rows are filled in by qa_types_init */
extern const int qa_n_types;
/* Picks each row's variants from the CPU flags of kernel/simd.h (qa_cpu_init first); call
 * again after changing the flags (tests force the scalar references that way). */
void qa_types_init(void);

#endif
