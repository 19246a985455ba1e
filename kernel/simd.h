/* Portable SIMD selection.
 *
 * Every kernel has a plain scalar reference. Native x86-64 builds add AVX2 variants
 * compiled with __attribute__((target)) and picked once at start-up (qa_cpu_init), so one
 * binary runs everywhere. wasm32 builds with -msimd128 compile the SIMD128 variants
 * directly. All variants accumulate in the same order, so integer kernels give identical
 * results and float kernels the same bits (no FMA: wasm has none, and we want parity).
 */
#ifndef QA_SIMD_H
#define QA_SIMD_H

#include <stdint.h>
#include <stddef.h>

#if defined(__x86_64__) || defined(_M_X64)
#define QA_X86 1
#include <immintrin.h>
#define QA_TARGET_AVX2 __attribute__((target("avx2")))
#endif

#if defined(__wasm_simd128__)
#define QA_WASM_SIMD 1
#include <wasm_simd128.h>
#endif

/* QA_PREFETCH(p): p will be read soon. wasm has no prefetch instruction (clang drops
 * __builtin_prefetch there), so a plain load of the line stands in: a hop's loads of its
 * fresh codes then go out together and their cache misses overlap, rather than one code's
 * misses at a time inside the distance loop (the wasm graph search ran 2x faster). */
#if defined(__wasm__)
#define QA_RESTRICT __restrict__
#define QA_PREFETCH(p) ((void)*(const volatile uint8_t *)(p))
#elif defined(__GNUC__)
#define QA_RESTRICT __restrict__
#define QA_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#else
#define QA_RESTRICT
#define QA_PREFETCH(p) ((void)0)
#endif

/* CPU features, detected once by qa_cpu_init (kernel/simd.c); every kernel (index and
 * model) selects its variants from these flags, and tests clear them to run the scalar
 * references. */
extern int qa_have_avx2;       /* AVX2 */
extern int qa_have_fma_f16c;   /* FMA3 + F16C (the model kernel's AVX2 variants need them) */
extern int qa_have_avx512vnni; /* AVX-512 F/BW/VL + VNNI (the model's matmul tiles) */
void qa_cpu_init(void);

#endif
