#include "gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void qa_set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* A cursor that refuses to move past the end. */
typedef struct {
    const uint8_t *buf;
    uint64_t len, pos;
} cur_t;

static int need(const cur_t *c, uint64_t n) { return n <= c->len - c->pos; }

static int rd_u32(cur_t *c, uint32_t *v) {
    if (!need(c, 4)) return 0;
    const uint8_t *p = c->buf + c->pos;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    c->pos += 4;
    return 1;
}

static int rd_u64(cur_t *c, uint64_t *v) {
    uint32_t lo = 0, hi = 0;
    if (!need(c, 8)) return 0;
    rd_u32(c, &lo);
    rd_u32(c, &hi);
    *v = (uint64_t)hi << 32 | lo;
    return 1;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int rd_str(cur_t *c, const uint8_t **s, uint64_t *n) {
    if (!rd_u64(c, n) || !need(c, *n)) return 0;
    *s = c->buf + c->pos;
    c->pos += *n;
    return 1;
}

static const uint64_t vsize[QA_GV_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* Skips one value of a scalar or string type. */
static int skip_value(cur_t *c, uint32_t t) {
    if (t >= QA_GV_COUNT || t == QA_GV_ARRAY) return 0;
    if (t == QA_GV_STRING) {
        const uint8_t *s;
        uint64_t n;
        return rd_str(c, &s, &n);
    }
    if (!need(c, vsize[t])) return 0;
    c->pos += vsize[t];
    return 1;
}

int qa_gguf_counts(const uint8_t *buf, uint64_t len, uint64_t *n_kv, uint64_t *n_tensors,
                   char *err, size_t err_len) {
    cur_t c = {buf, len, 0};
    uint32_t magic, version;
    if (!buf || len < 24) {
        qa_set_err(err, err_len, "not a GGUF file: %llu bytes is shorter than the 24-byte header",
                   (unsigned long long)len);
        return QA_ERR_FORMAT;
    }
    rd_u32(&c, &magic);
    if (magic != 0x46554747u) { /* "GGUF" */
        qa_set_err(err, err_len, "not a GGUF file: bad magic %02x %02x %02x %02x", buf[0], buf[1],
                   buf[2], buf[3]);
        return QA_ERR_FORMAT;
    }
    rd_u32(&c, &version);
    if (version < 2 || version > 3) {
        qa_set_err(err, err_len, "unsupported GGUF version %u (2 or 3 expected)", version);
        return QA_ERR_UNSUPPORTED;
    }
    rd_u64(&c, n_tensors);
    rd_u64(&c, n_kv);
    /* Each tensor record takes at least 8+4+8+4+8 bytes, each kv at least 8+4+1. */
    if (*n_tensors > (len - 24) / 32 || *n_kv > (len - 24) / 13) {
        qa_set_err(err, err_len, "corrupt GGUF header: %llu tensors / %llu keys cannot fit in %llu bytes",
                   (unsigned long long)*n_tensors, (unsigned long long)*n_kv,
                   (unsigned long long)len);
        return QA_ERR_FORMAT;
    }
    return QA_OK;
}

/* Elements per block and bytes per block of each ggml type (0: unknown here). */
static const struct { uint16_t blck, size; } type_size[QA_T_COUNT] = {
    [QA_T_F32] = {1, 4},     [QA_T_F16] = {1, 2},     [QA_T_Q4_0] = {32, 18},
    [QA_T_Q4_1] = {32, 20},  [QA_T_Q5_0] = {32, 22},  [QA_T_Q5_1] = {32, 24},
    [QA_T_Q8_0] = {32, 34},  [QA_T_Q8_1] = {32, 36},  [QA_T_Q2_K] = {256, 84},
    [QA_T_Q3_K] = {256, 110}, [QA_T_Q4_K] = {256, 144}, [QA_T_Q5_K] = {256, 176},
    [QA_T_Q6_K] = {256, 210}, [QA_T_Q8_K] = {256, 292}, [QA_T_I8] = {1, 1},
    [QA_T_I16] = {1, 2},     [QA_T_I32] = {1, 4},     [QA_T_I64] = {1, 8},
    [QA_T_F64] = {1, 8},     [QA_T_BF16] = {1, 2},
};

uint64_t qa_ggml_row_bytes(uint32_t type, int64_t n) {
    if (n < 0 || type >= QA_T_COUNT || !type_size[type].blck) return 0;
    uint64_t b = type_size[type].blck;
    return (uint64_t)n % b ? 0 : (uint64_t)n / b * type_size[type].size;
}

static int key_eq(const uint8_t *k, uint64_t n, const char *s) {
    size_t m = strlen(s);
    return n == m && memcmp(k, s, m) == 0;
}

int qa_gguf_parse(qa_gguf *g, const uint8_t *buf, uint64_t len, qa_gguf_kv *kv, uint64_t kv_cap,
                  qa_gguf_tensor *tensors, uint64_t tensor_cap, char *err, size_t err_len) {
    uint64_t n_kv, n_t;
    int rc = qa_gguf_counts(buf, len, &n_kv, &n_t, err, err_len);
    if (rc) return rc;
    if (n_kv > kv_cap || n_t > tensor_cap) {
        qa_set_err(err, err_len, "host arrays too small for %llu keys / %llu tensors",
                   (unsigned long long)n_kv, (unsigned long long)n_t);
        return QA_ERR_SPACE;
    }
    memset(g, 0, sizeof *g);
    g->buf = buf;
    g->len = len;
    g->version = le32(buf + 4);
    g->n_kv = n_kv;
    g->n_tensors = n_t;
    g->kv = kv;
    g->tensors = tensors;
    g->alignment = 32;
    cur_t c = {buf, len, 24};

    for (uint64_t i = 0; i < n_kv; i++) {
        qa_gguf_kv *e = &kv[i];
        memset(e, 0, sizeof *e);
        if (!rd_str(&c, &e->key, &e->key_len) || !rd_u32(&c, &e->type)) {
            qa_set_err(err, err_len, "truncated GGUF: key %llu runs past the end of the file",
                       (unsigned long long)i);
            return QA_ERR_FORMAT;
        }
        if (e->type >= QA_GV_COUNT) {
            qa_set_err(err, err_len, "bad GGUF value type %u for key '%.*s'", e->type,
                       (int)(e->key_len > 200 ? 200 : e->key_len), e->key);
            return QA_ERR_FORMAT;
        }
        if (e->type == QA_GV_ARRAY) {
            if (!rd_u32(&c, &e->arr_type) || !rd_u64(&c, &e->arr_n)) goto trunc_kv;
            if (e->arr_type >= QA_GV_COUNT || e->arr_type == QA_GV_ARRAY) {
                qa_set_err(err, err_len, "unsupported array item type %u for key '%.*s'", e->arr_type,
                           (int)(e->key_len > 200 ? 200 : e->key_len), e->key);
                return QA_ERR_FORMAT;
            }
            e->val = buf + c.pos;
            if (e->arr_type == QA_GV_STRING) {
                if (e->arr_n > (len - c.pos) / 8) goto trunc_kv;
                for (uint64_t j = 0; j < e->arr_n; j++)
                    if (!skip_value(&c, QA_GV_STRING)) goto trunc_kv;
            } else {
                uint64_t sz = vsize[e->arr_type];
                if (e->arr_n > (len - c.pos) / sz) goto trunc_kv;
                c.pos += e->arr_n * sz;
            }
        } else {
            e->val = buf + c.pos;
            if (!skip_value(&c, e->type)) goto trunc_kv;
        }
        if (key_eq(e->key, e->key_len, "general.alignment")) {
            if (e->type != QA_GV_U32) {
                qa_set_err(err, err_len, "general.alignment must be a u32");
                return QA_ERR_FORMAT;
            }
            uint32_t a = le32(e->val);
            if (a == 0 || (a & (a - 1)) || a > 1u << 20) {
                qa_set_err(err, err_len, "bad general.alignment %u (a power of two expected)", a);
                return QA_ERR_FORMAT;
            }
            g->alignment = a;
        }
        continue;
    trunc_kv:
        qa_set_err(err, err_len, "truncated GGUF: value of key '%.*s' runs past the end of the file",
                   (int)(e->key_len > 200 ? 200 : e->key_len), e->key);
        return QA_ERR_FORMAT;
    }

    for (uint64_t i = 0; i < n_t; i++) {
        qa_gguf_tensor *t = &tensors[i];
        memset(t, 0, sizeof *t);
        if (!rd_str(&c, &t->name, &t->name_len) || !rd_u32(&c, &t->n_dims)) goto trunc_t;
        if (t->n_dims < 1 || t->n_dims > 4) {
            qa_set_err(err, err_len, "tensor '%.*s': %u dimensions (1..4 expected)",
                       (int)(t->name_len > 200 ? 200 : t->name_len), t->name, t->n_dims);
            return QA_ERR_FORMAT;
        }
        uint64_t nel = 1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v;
            if (!rd_u64(&c, &v)) goto trunc_t;
            if (v == 0 || v > ((uint64_t)1 << 40) || nel > ((uint64_t)1 << 40) / v) {
                qa_set_err(err, err_len, "tensor '%.*s': bad dimension %llu",
                           (int)(t->name_len > 200 ? 200 : t->name_len), t->name,
                           (unsigned long long)v);
                return QA_ERR_FORMAT;
            }
            t->ne[d] = (int64_t)v;
            nel *= v;
        }
        if (!rd_u32(&c, &t->type) || !rd_u64(&c, &t->offset)) goto trunc_t;
        uint64_t rb = qa_ggml_row_bytes(t->type, t->ne[0]);
        if (rb == 0) {
            qa_set_err(err, err_len, "tensor '%.*s': unsupported or inconsistent type %u for row length %lld",
                       (int)(t->name_len > 200 ? 200 : t->name_len), t->name, t->type,
                       (long long)t->ne[0]);
            return QA_ERR_UNSUPPORTED;
        }
        t->nbytes = rb * (nel / (uint64_t)t->ne[0]);
        continue;
    trunc_t:
        qa_set_err(err, err_len, "truncated GGUF: tensor record %llu runs past the end of the file",
                   (unsigned long long)i);
        return QA_ERR_FORMAT;
    }

    uint64_t a = g->alignment;
    uint64_t ds = (c.pos + a - 1) / a * a;
    if (n_t && ds > len) {
        qa_set_err(err, err_len, "truncated GGUF: tensor data would start at %llu, past the end (%llu)",
                   (unsigned long long)ds, (unsigned long long)len);
        return QA_ERR_FORMAT;
    }
    g->data_start = ds;
    for (uint64_t i = 0; i < n_t; i++) {
        qa_gguf_tensor *t = &tensors[i];
        int nl = (int)(t->name_len > 200 ? 200 : t->name_len);
        if (t->offset % a) {
            qa_set_err(err, err_len, "tensor '%.*s': offset %llu is not aligned to %llu", nl, t->name,
                       (unsigned long long)t->offset, (unsigned long long)a);
            return QA_ERR_FORMAT;
        }
        if (t->offset > len - ds || t->nbytes > len - ds - t->offset) {
            qa_set_err(err, err_len,
                       "tensor '%.*s': data [%llu, +%llu) lies past the end of the file (%llu bytes)",
                       nl, t->name, (unsigned long long)(ds + t->offset),
                       (unsigned long long)t->nbytes, (unsigned long long)len);
            return QA_ERR_FORMAT;
        }
        t->data = buf + ds + t->offset;
        for (uint64_t j = 0; j < i; j++)
            if (tensors[j].name_len == t->name_len && !memcmp(tensors[j].name, t->name, t->name_len)) {
                qa_set_err(err, err_len, "duplicate tensor name '%.*s'", nl, t->name);
                return QA_ERR_FORMAT;
            }
    }
    return QA_OK;
}

const qa_gguf_kv *qa_gguf_find_kv(const qa_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (key_eq(g->kv[i].key, g->kv[i].key_len, key)) return &g->kv[i];
    return NULL;
}

const qa_gguf_tensor *qa_gguf_find_tensor(const qa_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (key_eq(g->tensors[i].name, g->tensors[i].name_len, name)) return &g->tensors[i];
    return NULL;
}

int qa_gguf_get_u32(const qa_gguf *g, const char *key, uint32_t *out) {
    const qa_gguf_kv *e = qa_gguf_find_kv(g, key);
    if (!e) return QA_ERR_FORMAT;
    const uint8_t *p = e->val;
    uint64_t v;
    switch (e->type) {
    case QA_GV_U8: v = p[0]; break;
    case QA_GV_U16: v = (uint64_t)p[0] | (uint64_t)p[1] << 8; break;
    case QA_GV_U32: v = le32(p); break;
    case QA_GV_I32: if ((int32_t)le32(p) < 0) return QA_ERR_FORMAT; v = le32(p); break;
    case QA_GV_U64: case QA_GV_I64: v = (uint64_t)le32(p + 4) << 32 | le32(p); break;
    default: return QA_ERR_FORMAT;
    }
    if (v > 0xffffffffu) return QA_ERR_FORMAT;
    *out = (uint32_t)v;
    return QA_OK;
}

int qa_gguf_get_f32(const qa_gguf *g, const char *key, float *out) {
    const qa_gguf_kv *e = qa_gguf_find_kv(g, key);
    if (!e || e->type != QA_GV_F32) return QA_ERR_FORMAT;
    uint32_t u = le32(e->val);
    memcpy(out, &u, 4);
    return QA_OK;
}

int qa_gguf_get_bool(const qa_gguf *g, const char *key, int *out) {
    const qa_gguf_kv *e = qa_gguf_find_kv(g, key);
    if (!e || e->type != QA_GV_BOOL) return QA_ERR_FORMAT;
    *out = e->val[0] != 0;
    return QA_OK;
}
