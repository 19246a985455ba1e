/* CPU feature detection, once for the whole kernel (see simd.h). */
#include "simd.h"

int qa_have_avx2 = 0;
int qa_have_fma_f16c = 0;
int qa_have_avx512vnni = 0;

void qa_cpu_init(void) {
#if defined(QA_X86) && defined(__GNUC__)
    __builtin_cpu_init();
    qa_have_avx2 = __builtin_cpu_supports("avx2");
    qa_have_fma_f16c = __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    qa_have_avx512vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
}
