/* The architectures table (arch.h) and the binding helpers the architecture files share. */
#include "arch.h"

#include <string.h>

#define QA_ARCH_ROWS(X) X(bert)

#define DECLARE(n) extern const qa_arch qa_arch_##n;
QA_ARCH_ROWS(DECLARE)
#undef DECLARE

/* The architectures table: one row per general.architecture. Encoders point at their
 * forward (arch/<name>.c); decoders share the llama-family forward and differ by flags. */
typedef struct {
    const char *name;
    const qa_arch *encoder; /* NULL for a decoder */
    unsigned decoder_flags;
} arch_row;

static const arch_row rows[] = {
    {"bert", &qa_arch_bert, 0},
    {"llama", NULL, 0},
    {"qwen2", NULL, QA_DEC_QKV_BIAS | QA_DEC_NEOX},
    {"phi3", NULL, QA_DEC_FUSED | QA_DEC_NEOX},
    {"gemma3", NULL, QA_DEC_GEMMA | QA_DEC_NEOX},
};
#define N_ROWS (sizeof rows / sizeof rows[0])

/* "a, b, c": the names of the encoder (or decoder) rows */
static void names(int decoders, char *out, size_t cap) {
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < N_ROWS; i++)
        if ((rows[i].encoder == NULL) == decoders) {
            qa_format(out + o, cap - o, "%s%s", o ? ", " : "", rows[i].name);
            o += strlen(out + o);
        }
}

/* The row of the file's general.architecture (NULL when no row has it); its name into
 * shown (printable, cut at 63 bytes) for errors. */
static const arch_row *lookup(const qa_gguf *g, char *shown, size_t cap, char *err, size_t err_len, int *missing) {
    const qa_gguf_kv *kv = qa_gguf_find_kv(g, "general.architecture");
    *missing = !kv || kv->type != QA_GV_STRING;
    if (*missing) {
        qa_set_err(err, err_len, "missing general.architecture");
        return NULL;
    }
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--) n = n << 8 | kv->val[b];
    const char *s = (const char *)kv->val + 8;
    size_t k = n < cap - 1 ? (size_t)n : cap - 1;
    memcpy(shown, s, k);
    shown[k] = 0;
    for (size_t i = 0; i < N_ROWS; i++)
        if (n == strlen(rows[i].name) && !memcmp(s, rows[i].name, n)) return &rows[i];
    return NULL;
}

const qa_arch *qa_arch_of(const qa_gguf *g, char *err, size_t err_len) {
    char shown[64], list[256];
    int missing;
    const arch_row *r = lookup(g, shown, sizeof shown, err, err_len, &missing);
    if (missing) return NULL;
    if (r && r->encoder) return r->encoder;
    names(0, list, sizeof list);
    qa_set_err(err, err_len, "unsupported general.architecture '%s' for embeddings (supported: %s%s)", shown, list,
               r ? "; it is a decoder: use it for generation" : "");
    return NULL;
}

int qa_decoder_arch_of(const qa_gguf *g, char *name, size_t cap, unsigned *flags, char *err, size_t err_len) {
    char shown[64], list[256];
    int missing;
    const arch_row *r = lookup(g, shown, sizeof shown, err, err_len, &missing);
    if (missing) return QA_ERR_FORMAT;
    if (r && !r->encoder && strlen(r->name) < cap) {
        strcpy(name, r->name);
        *flags = r->decoder_flags;
        return QA_OK;
    }
    names(1, list, sizeof list);
    qa_set_err(err, err_len, "unsupported architecture '%s' (supported: %s%s)", shown, list,
               r ? "; it is an embedding encoder" : "");
    return QA_ERR_UNSUPPORTED;
}

int qa_bind_u32(const qa_gguf *g, const char *key, uint32_t lo, uint32_t hi, int *out, char *err,
                size_t err_len) {
    uint32_t v;
    if (qa_gguf_get_u32(g, key, &v) != QA_OK) {
        qa_set_err(err, err_len, "missing or non-integer metadata key '%s'", key);
        return QA_ERR_FORMAT;
    }
    if (v < lo || v > hi) {
        qa_set_err(err, err_len, "metadata '%s' = %u out of range [%u, %u]", key, v, lo, hi);
        return QA_ERR_FORMAT;
    }
    *out = (int)v;
    return QA_OK;
}

/* Weights are read as float, fp16 and block structs in place: their data must be aligned
 * for them (4 bytes covers every type; a file's general.alignment of 1 or 2 can break it). */
static int misaligned(const qa_gguf_tensor *t, const char *name, char *err, size_t err_len) {
    if (((uintptr_t)t->data & 3) == 0) return 0;
    qa_set_err(err, err_len, "tensor '%s' is not aligned to 4 bytes (general.alignment too small)", name);
    return 1;
}

int qa_bind_mat(const qa_gguf *g, const char *name, int64_t n_in, int64_t n_out, qa_mat *m, char *err,
                size_t err_len) {
    const qa_gguf_tensor *t = qa_gguf_find_tensor(g, name);
    if (!t) {
        qa_set_err(err, err_len, "missing tensor '%s'", name);
        return QA_ERR_FORMAT;
    }
    if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1) {
        qa_set_err(err, err_len, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                   (long long)t->ne[0], (long long)t->ne[1], (long long)n_in, (long long)n_out);
        return QA_ERR_FORMAT;
    }
    const qa_type_traits *tt = qa_type_get(t->type);
    if (!tt) {
        qa_set_err(err, err_len, "tensor '%s': unsupported type %u", name, t->type);
        return QA_ERR_UNSUPPORTED;
    }
    m->tt = tt;
    m->n_in = n_in;
    m->n_out = n_out;
    m->row_bytes = qa_ggml_row_bytes(t->type, n_in);
    m->data = t->data;
    if (misaligned(t, name, err, err_len)) return QA_ERR_FORMAT;
    if (!m->row_bytes || m->row_bytes * (uint64_t)n_out > t->nbytes) {
        qa_set_err(err, err_len, "tensor '%s': rows of %lld do not fit %s blocks of %d", name, (long long)n_in,
                   tt->name, tt->blck);
        return QA_ERR_FORMAT;
    }
    return QA_OK;
}

int qa_bind_f32(const qa_gguf *g, const char *name, int64_t n0, int64_t n1_min, int64_t *n1, const float **out,
                char *err, size_t err_len) {
    const qa_gguf_tensor *t = qa_gguf_find_tensor(g, name);
    if (!t) {
        qa_set_err(err, err_len, "missing tensor '%s'", name);
        return QA_ERR_FORMAT;
    }
    if (t->type != QA_T_F32) {
        qa_set_err(err, err_len, "tensor '%s': type %u, F32 expected", name, t->type);
        return QA_ERR_UNSUPPORTED;
    }
    if (t->ne[0] != n0 || t->ne[1] < n1_min || t->ne[2] != 1 || t->ne[3] != 1 ||
        (!n1 && t->ne[1] != n1_min)) {
        qa_set_err(err, err_len, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                   (long long)t->ne[0], (long long)t->ne[1], (long long)n0, (long long)n1_min);
        return QA_ERR_FORMAT;
    }
    if (misaligned(t, name, err, err_len)) return QA_ERR_FORMAT;
    if (n1) *n1 = t->ne[1];
    *out = (const float *)t->data;
    return QA_OK;
}
