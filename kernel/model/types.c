/* The types table: one row per ggml type the model kernel computes with (types.h).
 * A type file types/<name>.c defines its row `qa_type_<name>` and the variants it offers by
 * SIMD level, `qa_type_<name>_variants` (types/variants.h); one select below picks them
 * all from the CPU flags. Adding a type = its file + one X(...) here. */
#include "types.h"
#include "types/variants.h"

#define QA_TYPE_ROWS(X) X(f32) X(f16) X(q8_0) X(q4_0) \
    X(q8_1) X(q4_1) X(q5_0) X(q8_k) X(q4_k) X(q6_k)

#define DECLARE(n) extern qa_type_traits qa_type_##n; extern const qa_type_variants qa_type_##n##_variants;
QA_TYPE_ROWS(DECLARE)
#undef DECLARE

#define ROW(n) &qa_type_##n,
qa_type_traits *const qa_types[] = {QA_TYPE_ROWS(ROW)};
#undef ROW
#define VARIANTS(n) &qa_type_##n##_variants,
static const qa_type_variants *const variants[] = {QA_TYPE_ROWS(VARIANTS)};
#undef VARIANTS
const int qa_n_types = (int)(sizeof qa_types / sizeof qa_types[0]);

static int level = QA_SIMD_SCALAR;

/* The variant of a level, else of the level below (VNNI -> AVX2 -> scalar; SIMD128 -> scalar). */
#define PICK(arr) ((arr)[level] ? (arr)[level] \
                   : level == QA_SIMD_AVX512VNNI && (arr)[QA_SIMD_AVX2] ? (arr)[QA_SIMD_AVX2] : (arr)[QA_SIMD_SCALAR])

void qa_types_init(void) {
    level = QA_SIMD_SCALAR;
#if defined(QA_X86)
    if (qa_have_avx2 && qa_have_fma_f16c) level = qa_have_avx512vnni ? QA_SIMD_AVX512VNNI : QA_SIMD_AVX2;
#elif defined(QA_WASM_SIMD)
    level = QA_SIMD_WASM;
#endif
    for (int i = 0; i < qa_n_types; i++) {
        const qa_type_variants *v = variants[i];
        qa_type_traits *r = v->row;
        if (v->init) v->init();
        if (v->dot[QA_SIMD_SCALAR]) {
            r->vec_dot_ref = v->dot[QA_SIMD_SCALAR];
            r->vec_dot = PICK(v->dot);
        }
        r->tile = PICK(v->tile);
        r->rows4 = PICK(v->rows4);
        r->panel = PICK(v->panel);
        r->pack_act = PICK(v->pack);
        if (v->to_float[QA_SIMD_SCALAR]) r->to_float = PICK(v->to_float);
        if (v->quantize[QA_SIMD_SCALAR]) { /* an activation row */
            r->quantize_act_ref = v->quantize[QA_SIMD_SCALAR];
            r->quantize_act = PICK(v->quantize);
        }
    }
    /* weight rows take the quantizers of their activation row (picked above) */
    for (int i = 0; i < qa_n_types; i++) {
        qa_type_traits *r = qa_types[i];
        const qa_type_traits *a = r->act_type != r->type ? qa_type_get(r->act_type) : NULL;
        if (a) {
            r->quantize_act = a->quantize_act;
            r->quantize_act_ref = a->quantize_act_ref;
            r->pack_act = a->pack_act;
            r->panel_block = a->panel_block;
        }
    }
}

int qa_types_level(void) { return level; }

const qa_type_traits *qa_type_get(uint32_t type) {
    for (int i = 0; i < qa_n_types; i++)
        if (qa_types[i]->type == type) return qa_types[i];
    return 0;
}
