/* The types table: one row per ggml type the model kernel computes with (types.h).
 * A type file types/<name>.c defines its row `qa_type_<name>` and `qa_type_<name>_select`
 * (which picks its variants from the CPU flags); adding a type = its file + one X(...) here.
 * Rows are selected in this order, so a type may borrow the quantizer of a type before it. */
#include "types.h"

#define QA_TYPE_ROWS(X) X(f32) X(f16) X(q8_0) X(q4_0)

#define DECLARE(n) extern qa_type_traits qa_type_##n; void qa_type_##n##_select(void);
QA_TYPE_ROWS(DECLARE)
#undef DECLARE

#define ROW(n) &qa_type_##n,
qa_type_traits *const qa_types[] = {QA_TYPE_ROWS(ROW)};
#undef ROW
const int qa_n_types = (int)(sizeof qa_types / sizeof qa_types[0]);

#include "../simd.h"

static int level = QA_SIMD_SCALAR;

void qa_types_init(void) {
#define SELECT(n) qa_type_##n##_select();
    QA_TYPE_ROWS(SELECT)
#undef SELECT
    level = QA_SIMD_SCALAR;
#if defined(QA_X86)
    if (qa_have_avx2 && qa_have_fma_f16c) level = qa_have_avx512vnni ? QA_SIMD_AVX512VNNI : QA_SIMD_AVX2;
#elif defined(QA_WASM_SIMD)
    level = QA_SIMD_WASM;
#endif
}

int qa_types_level(void) { return level; }

const qa_type_traits *qa_type_get(uint32_t type) {
    for (int i = 0; i < qa_n_types; i++)
        if (qa_types[i]->type == type) return qa_types[i];
    return 0;
}
