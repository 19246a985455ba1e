#include "gguf.h"

#include <stdarg.h>
#include <string.h>

/* A small formatter for error messages (%s %.*s %d %u %lld %llu %x, zero padding and
 * width), so that the kernel needs no stdio: the wasm build then imports nothing. */
void qa_vformat(char *out, size_t cap, const char *fmt, va_list ap) {
    size_t o = 0;
#define PUT(ch) do { if (o + 1 < cap) out[o++] = (ch); } while (0)
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') { PUT(*f); continue; }
        f++;
        char pad = ' ';
        int width = 0, prec = -1, ll = 0;
        if (*f == '0') pad = '0', f++;
        while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
        if (*f == '.' && f[1] == '*') prec = va_arg(ap, int), f += 2;
        while (*f == 'l') ll++, f++;
        if (*f == 'z') ll = 2, f++;
        char num[24];
        int nl = 0, neg = 0;
        unsigned long long u = 0;
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            for (int i = 0; s[i] && (prec < 0 || i < prec); i++) PUT(s[i]);
            continue;
        }
        case 'd': {
            long long v = ll >= 2 ? va_arg(ap, long long) : ll ? va_arg(ap, long) : va_arg(ap, int);
            neg = v < 0;
            u = neg ? 0ull - (unsigned long long)v : (unsigned long long)v;
            break;
        }
        case 'u': case 'x':
            u = ll >= 2 ? va_arg(ap, unsigned long long) : ll ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            break;
        case '%': PUT('%'); continue;
        case '\0': f--; continue;
        default: PUT('%'); PUT(*f); continue;
        }
        unsigned base = *f == 'x' ? 16 : 10;
        do { num[nl++] = "0123456789abcdef"[u % base]; u /= base; } while (u);
        if (neg) num[nl++] = '-';
        for (int i = nl; i < width; i++) PUT(pad);
        while (nl) PUT(num[--nl]);
    }
    if (cap) out[o < cap ? o : cap - 1] = 0;
#undef PUT
}

void qa_format(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    qa_vformat(out, cap, fmt, ap);
    va_end(ap);
}

void qa_set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    qa_vformat(err, err_len, fmt, ap);
    va_end(ap);
}

/* A cursor over the first `len` bytes of a file of `flen` bytes. A read past `len` fails;
 * `want` then holds the prefix length the read needed (UINT64_MAX: past the file's end),
 * so a caller holding only a prefix knows how much more to fetch. */
typedef struct {
    const uint8_t *buf;
    uint64_t len, flen, pos, want;
} cur_t;

static int need(cur_t *c, uint64_t n) {
    if (n <= c->len - c->pos) return 1;
    c->want = n > c->flen - c->pos ? UINT64_MAX : c->pos + n;
    return 0;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int rd_u32(cur_t *c, uint32_t *v) {
    if (!need(c, 4)) return 0;
    *v = le32(c->buf + c->pos);
    c->pos += 4;
    return 1;
}

static int rd_u64(cur_t *c, uint64_t *v) {
    if (!need(c, 8)) return 0;
    const uint8_t *p = c->buf + c->pos;
    *v = (uint64_t)le32(p + 4) << 32 | le32(p);
    c->pos += 8;
    return 1;
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
    if (t == QA_GV_STRING) {
        const uint8_t *s;
        uint64_t n;
        return rd_str(c, &s, &n);
    }
    if (!need(c, vsize[t])) return 0;
    c->pos += vsize[t];
    return 1;
}

/* Magic, version and counts; the counts are checked against the file's length. */
static int read_counts(cur_t *c, uint32_t *version, uint64_t *n_kv, uint64_t *n_tensors, char *err,
                       size_t err_len) {
    uint32_t magic = 0;
    if (c->flen < 24) {
        qa_set_err(err, err_len, "not a GGUF file: too short (%llu bytes, the header alone is 24)",
                   (unsigned long long)c->flen);
        return QA_ERR_FORMAT;
    }
    if (c->len < 24) {
        c->want = 24;
        return QA_ERR_NEED_MORE;
    }
    rd_u32(c, &magic);
    if (magic != 0x46554747u) { /* "GGUF" */
        qa_set_err(err, err_len, "not a GGUF file: bad magic %02x %02x %02x %02x", c->buf[0], c->buf[1],
                   c->buf[2], c->buf[3]);
        return QA_ERR_FORMAT;
    }
    rd_u32(c, version);
    if (*version < 2 || *version > 3) {
        qa_set_err(err, err_len, "unsupported GGUF version %u (2 or 3 expected)", *version);
        return QA_ERR_UNSUPPORTED;
    }
    rd_u64(c, n_tensors);
    rd_u64(c, n_kv);
    /* Each tensor record takes at least 8+4+8+4+8 bytes, each kv at least 8+4+1. */
    if (*n_tensors > (c->flen - 24) / 32 || *n_kv > (c->flen - 24) / 13) {
        qa_set_err(err, err_len, "truncated or corrupt GGUF header: %llu tensors / %llu keys cannot fit in %llu bytes",
                   (unsigned long long)*n_tensors, (unsigned long long)*n_kv,
                   (unsigned long long)c->flen);
        return QA_ERR_FORMAT;
    }
    return QA_OK;
}

int qa_gguf_counts(const uint8_t *buf, uint64_t len, uint64_t *n_kv, uint64_t *n_tensors,
                   char *err, size_t err_len) {
    cur_t c = {buf, buf ? len : 0, buf ? len : 0, 0, 0};
    uint32_t version = 0;
    return read_counts(&c, &version, n_kv, n_tensors, err, err_len);
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

#define NAMEARG(p, n) (int)((n) > 200 ? 200 : (n)), (const char *)(p)

/* The one walk over a header, for both entry points. With kv/tensors NULL it only
 * measures (prefix mode); otherwise it fills them and checks every tensor's extent
 * against the file's length. A read past the prefix returns QA_ERR_NEED_MORE with
 * c->want set; a read past the file's end is a truncation (QA_ERR_FORMAT). */
static int walk(cur_t *c, qa_gguf *g, qa_gguf_kv *kv, uint64_t kv_cap, qa_gguf_tensor *tensors,
                uint64_t tensor_cap, char *err, size_t err_len) {
    uint64_t n_kv, n_t;
    uint32_t version = 0;
    int rc = read_counts(c, &version, &n_kv, &n_t, err, err_len);
    if (rc) return rc;
    if (kv && (n_kv > kv_cap || n_t > tensor_cap)) {
        qa_set_err(err, err_len, "host arrays too small for %llu keys / %llu tensors",
                   (unsigned long long)n_kv, (unsigned long long)n_t);
        return QA_ERR_SPACE;
    }
    const uint8_t *buf = c->buf;
    memset(g, 0, sizeof *g);
    g->buf = buf;
    g->len = c->len;
    g->file_len = c->flen;
    g->version = version;
    g->n_kv = n_kv;
    g->n_tensors = n_t;
    g->kv = kv;
    g->tensors = tensors;
    g->alignment = 32;
    qa_gguf_kv e0;
    qa_gguf_tensor t0;

    for (uint64_t i = 0; i < n_kv; i++) {
        qa_gguf_kv *e = kv ? &kv[i] : &e0;
        memset(e, 0, sizeof *e);
        if (!rd_str(c, &e->key, &e->key_len) || !rd_u32(c, &e->type)) {
            if (c->want != UINT64_MAX) return QA_ERR_NEED_MORE;
            qa_set_err(err, err_len, "truncated GGUF: key %llu runs past the end of the file",
                       (unsigned long long)i);
            return QA_ERR_FORMAT;
        }
        if (e->type >= QA_GV_COUNT) {
            qa_set_err(err, err_len, "bad GGUF value type %u for key '%.*s'", e->type,
                       NAMEARG(e->key, e->key_len));
            return QA_ERR_FORMAT;
        }
        if (e->type == QA_GV_ARRAY) {
            if (!rd_u32(c, &e->arr_type) || !rd_u64(c, &e->arr_n)) goto trunc_kv;
            if (e->arr_type >= QA_GV_COUNT || e->arr_type == QA_GV_ARRAY) {
                qa_set_err(err, err_len, "unsupported array item type %u for key '%.*s'", e->arr_type,
                           NAMEARG(e->key, e->key_len));
                return QA_ERR_FORMAT;
            }
            e->val = buf + c->pos;
            /* every item takes at least its size (8 for a string's length) in the file */
            uint64_t sz = e->arr_type == QA_GV_STRING ? 8 : vsize[e->arr_type];
            if (e->arr_n > (c->flen - c->pos) / sz) {
                c->want = UINT64_MAX;
                goto trunc_kv;
            }
            if (e->arr_type == QA_GV_STRING) {
                for (uint64_t j = 0; j < e->arr_n; j++)
                    if (!skip_value(c, QA_GV_STRING)) goto trunc_kv;
            } else {
                if (!need(c, e->arr_n * sz)) goto trunc_kv;
                c->pos += e->arr_n * sz;
            }
        } else {
            e->val = buf + c->pos;
            if (!skip_value(c, e->type)) goto trunc_kv;
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
        if (kv)
            for (uint64_t j = 0; j < i; j++)
                if (kv[j].key_len == e->key_len && !memcmp(kv[j].key, e->key, e->key_len)) {
                    qa_set_err(err, err_len, "duplicate key '%.*s'", NAMEARG(e->key, e->key_len));
                    return QA_ERR_FORMAT;
                }
        continue;
    trunc_kv:
        if (c->want != UINT64_MAX) return QA_ERR_NEED_MORE;
        qa_set_err(err, err_len, "truncated GGUF: value of key '%.*s' runs past the end of the file",
                   NAMEARG(e->key, e->key_len));
        return QA_ERR_FORMAT;
    }

    for (uint64_t i = 0; i < n_t; i++) {
        qa_gguf_tensor *t = tensors ? &tensors[i] : &t0;
        memset(t, 0, sizeof *t);
        if (!rd_str(c, &t->name, &t->name_len) || !rd_u32(c, &t->n_dims)) goto trunc_t;
        if (t->n_dims < 1 || t->n_dims > 4) {
            qa_set_err(err, err_len, "tensor '%.*s': %u dimensions (1..4 expected)",
                       NAMEARG(t->name, t->name_len), t->n_dims);
            return QA_ERR_FORMAT;
        }
        uint64_t nel = 1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v;
            if (!rd_u64(c, &v)) goto trunc_t;
            if (v == 0 || v > ((uint64_t)1 << 40) || nel > ((uint64_t)1 << 40) / v) {
                qa_set_err(err, err_len, "tensor '%.*s': bad dimension %llu", NAMEARG(t->name, t->name_len),
                           (unsigned long long)v);
                return QA_ERR_FORMAT;
            }
            t->ne[d] = (int64_t)v;
            nel *= v;
        }
        if (!rd_u32(c, &t->type) || !rd_u64(c, &t->offset)) goto trunc_t;
        uint64_t rb = qa_ggml_row_bytes(t->type, t->ne[0]);
        if (rb == 0) {
            qa_set_err(err, err_len, "tensor '%.*s': unsupported or inconsistent type %u for row length %lld",
                       NAMEARG(t->name, t->name_len), t->type, (long long)t->ne[0]);
            return QA_ERR_UNSUPPORTED;
        }
        t->nbytes = rb * (nel / (uint64_t)t->ne[0]);
        continue;
    trunc_t:
        if (c->want != UINT64_MAX) return QA_ERR_NEED_MORE;
        qa_set_err(err, err_len, "truncated GGUF: tensor record %llu runs past the end of the file",
                   (unsigned long long)i);
        return QA_ERR_FORMAT;
    }

    uint64_t a = g->alignment, flen = c->flen;
    uint64_t ds = (c->pos + a - 1) / a * a;
    g->info_end = c->pos;
    if (n_t && ds > flen) {
        qa_set_err(err, err_len, "truncated GGUF: tensor data would start at %llu, past the end (%llu)",
                   (unsigned long long)ds, (unsigned long long)flen);
        return QA_ERR_FORMAT;
    }
    /* no tensor data follows: the padding may be cut short by the end of the file, and
     * the header never claims bytes past it (a host reads data_start bytes) */
    g->data_start = ds > flen ? flen : ds;
    if (!tensors) return QA_OK;
    for (uint64_t i = 0; i < n_t; i++) {
        qa_gguf_tensor *t = &tensors[i];
        if (t->offset % a) {
            qa_set_err(err, err_len, "tensor '%.*s': offset %llu is not aligned to %llu",
                       NAMEARG(t->name, t->name_len), (unsigned long long)t->offset, (unsigned long long)a);
            return QA_ERR_FORMAT;
        }
        if (t->offset > flen - ds || t->nbytes > flen - ds - t->offset) {
            qa_set_err(err, err_len,
                       "truncated: tensor %.*s needs bytes [%llu, +%llu), past the end of the file (%llu bytes)",
                       NAMEARG(t->name, t->name_len), (unsigned long long)(ds + t->offset),
                       (unsigned long long)t->nbytes, (unsigned long long)flen);
            return QA_ERR_FORMAT;
        }
        /* data only for tensors wholly inside the bytes held */
        t->data = ds + t->offset + t->nbytes <= c->len ? buf + ds + t->offset : NULL;
        for (uint64_t j = 0; j < i; j++) {
            const qa_gguf_tensor *u = &tensors[j];
            if (u->name_len == t->name_len && !memcmp(u->name, t->name, t->name_len)) {
                qa_set_err(err, err_len, "duplicate tensor name '%.*s'", NAMEARG(t->name, t->name_len));
                return QA_ERR_FORMAT;
            }
            if (t->nbytes && u->nbytes && t->offset < u->offset + u->nbytes && u->offset < t->offset + t->nbytes) {
                qa_set_err(err, err_len, "tensors '%.*s' and '%.*s' overlap", NAMEARG(u->name, u->name_len),
                           NAMEARG(t->name, t->name_len));
                return QA_ERR_FORMAT;
            }
        }
    }
    return QA_OK;
}

int qa_gguf_header_size(const uint8_t *buf, uint64_t len, uint64_t file_len, uint64_t *need_out,
                        char *err, size_t err_len) {
    qa_gguf g;
    if (!buf) len = 0;
    if (len > file_len) len = file_len;
    cur_t c = {buf, len, file_len, 0, 0};
    int rc = walk(&c, &g, NULL, 0, NULL, 0, err, err_len);
    if (rc == QA_ERR_NEED_MORE) {
        *need_out = c.want;
        qa_set_err(err, err_len, "the header needs the first %llu bytes, %llu given",
                   (unsigned long long)c.want, (unsigned long long)len);
    } else if (rc == QA_OK) {
        *need_out = g.data_start;
    }
    return rc;
}

int qa_gguf_parse_prefix(qa_gguf *g, const uint8_t *buf, uint64_t len, uint64_t file_len, qa_gguf_kv *kv,
                         uint64_t kv_cap, qa_gguf_tensor *tensors, uint64_t tensor_cap, char *err,
                         size_t err_len) {
    if (!buf) len = 0;
    if (len > file_len) len = file_len;
    cur_t c = {buf, len, file_len, 0, 0};
    int rc = walk(&c, g, kv, kv_cap, tensors, tensor_cap, err, err_len);
    if (rc == QA_ERR_NEED_MORE) {
        qa_set_err(err, err_len, "the header needs the first %llu bytes, %llu given",
                   (unsigned long long)c.want, (unsigned long long)len);
    }
    return rc;
}

int qa_gguf_parse(qa_gguf *g, const uint8_t *buf, uint64_t len, qa_gguf_kv *kv, uint64_t kv_cap,
                  qa_gguf_tensor *tensors, uint64_t tensor_cap, char *err, size_t err_len) {
    return qa_gguf_parse_prefix(g, buf, len, len, kv, kv_cap, tensors, tensor_cap, err, err_len);
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
