/* Packed activation panels for the prompt matmul (x86 AVX-512, SIMD128 Q8_0 and Q4_1; types.h:
 * panel_block, pack_act, panel).
 *
 * A prompt's activations are quantized once per matmul and then read by every weight row,
 * so they are worth laying out for the kernel: QA_PANEL_TOKENS tokens block by block, two
 * tokens' 32 int8 values side by side, so one 512-bit integer dot gives the 8 int32 lanes of
 * both tokens' block dots, and each token's scale already spread over its 8 lanes, so the
 * float steps (convert, scale, fmadd) also serve two outputs at once. Every output still
 * sums its lanes block by block as the single-row dot does: the same bits, fewer
 * instructions (a 2 x 4 tile spends most of them on per-output scalar scale products). */
#ifndef QA_MODEL_TYPES_PANEL_H
#define QA_MODEL_TYPES_PANEL_H

#include "../../simd.h"
#include "../types.h"

#if defined(QA_X86)
/* One Q8_1 block (32 values) of a panel of QA_PANEL_TOKENS tokens; a panel of n values is
 * n / 32 of these in block order. */
typedef struct {
    int8_t qs[QA_PANEL_TOKENS / 2][64];  /* pair p: token 2p's 32 values, then token 2p+1's */
    float d[QA_PANEL_TOKENS / 2][16];    /* pair p: token 2p's scale in 8 lanes, then 2p+1's */
    float s[QA_PANEL_TOKENS];            /* token j's d * sum(qs), as the block's fp16 s */
} qa_panel_q8_1;
_Static_assert(sizeof(qa_panel_q8_1) == 1088, "a Q8_1 panel block is 1088 bytes");
_Static_assert(sizeof(qa_panel_q8_1) % 64 == 0, "panel blocks keep 64-byte alignment");
#endif

/* One Q8_0 block of a SIMD128 panel (types/q8_0.c): each token's 32 values widened to int16
 * once per matmul (not once per pair of weight rows), in the order its dot reads them: the
 * even then odd values of bytes 0-15, the same of bytes 16-31; and its scale as a float. */
typedef struct {
    int16_t q[QA_PANEL_TOKENS][32];
    float d[QA_PANEL_TOKENS];
} qa_panel_q8_0;

/* One Q8_1 block of a SIMD128 panel (types/q4_1.c): each token's 32 values as relaxed
 * SIMD's i8 x i7 dot reads them (bytes as they are) or, in the plain build, widened to int16
 * as qa_panel_q8_0's; its scale d and d * sum(qs) as floats (exact from fp16), the tokens
 * side by side so that 4 tokens' scale products and m * s terms take one vector step. */
#if defined(QA_WASM_SIMD)
typedef struct {
#if defined(__wasm_relaxed_simd__)
    int8_t q[QA_PANEL_TOKENS][32];
#else
    int16_t q[QA_PANEL_TOKENS][32];
#endif
    float d[QA_PANEL_TOKENS], s[QA_PANEL_TOKENS];
} qa_panel_q8_1_wasm;
#endif

/* panel_block of a row that packs only where a panel kernel can be compiled: x86 (AVX-512)
 * or wasm (SIMD128) */
#if defined(QA_X86)
#define QA_PANEL_BLOCK(bytes) (bytes)
#else
#define QA_PANEL_BLOCK(bytes) 0
#endif
#if defined(QA_WASM_SIMD)
#define QA_PANEL_BLOCK_WASM(bytes) (bytes)
#else
#define QA_PANEL_BLOCK_WASM(bytes) 0
#endif

#endif
