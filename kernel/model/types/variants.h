/* The variants a type file offers, by SIMD level, for the one table-driven select of
 * types.c: a type file defines `qa_type_<name>_variants` next to its row.
 *
 * Each array is indexed by level (QA_SIMD_SCALAR, _AVX2, _WASM, _AVX512VNNI of types.h);
 * [QA_SIMD_SCALAR] is the scalar reference, NULL elsewhere means "the level below"
 * (AVX-512 VNNI -> AVX2 -> scalar, SIMD128 -> scalar). A row whose act_type is another
 * row borrows that row's activation quantizers; quantize[] is for the activation rows. */
#ifndef QA_MODEL_TYPES_VARIANTS_H
#define QA_MODEL_TYPES_VARIANTS_H

#include "../../simd.h"
#include "../types.h"

typedef struct {
    qa_type_traits *row;
    float (*dot[4])(int64_t n, const void *w, const void *a);
    void (*tile[4])(int64_t n, const void *w, size_t ws, const void *a, size_t as, float *out);
    void (*rows4[4])(int64_t n, const void *w, size_t ws, const void *a, float *out);
    void (*quantize[4])(const float *x, void *y, int64_t n);
    void (*to_float[4])(const void *x, float *y, int64_t n);
    void (*init)(void); /* run before the pick (NULL: none) */
    void (*pack[4])(const void *a, int j, void *panel, int64_t n);
    void (*panel[4])(int64_t n, const void *w, size_t ws, const void *panel, float *out);
} qa_type_variants;

/* A variant compiled only for x86 (AVX2, VNNI) or wasm (SIMD128): NULL elsewhere. */
#if defined(QA_X86)
#define QA_X86_FN(f) f
#else
#define QA_X86_FN(f) NULL
#endif
#if defined(QA_WASM_SIMD)
#define QA_WASM_FN(f) f
#else
#define QA_WASM_FN(f) NULL
#endif

#endif
