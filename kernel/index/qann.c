#include "qann.h"

#include <stdlib.h>
#include <string.h>

#include "../constants.h"
#include "../gguf/crc32.h"
#include "../links.h"

/* A .qann has ~18 keys and ~11 tensors; anything far beyond is not one of ours. */
#define MAX_KV 64
#define MAX_TENSORS 16

/* The tensors of a .qann, in file order (FORMAT.md). */
enum { T_VMIN = QA_QANN_VMIN, T_SCALE, T_CODES, T_NORMS, T_RESID, T_LEVEL, T_LINKS0, T_UP_NODES, T_UP_OFF,
       T_UPPER, T_IDS, T_VECTORS, T_COUNT };
static const char *const tensor_name[T_COUNT] = {
    QA_TENSOR_VMIN,  QA_TENSOR_SCALE,  QA_TENSOR_CODES, QA_TENSOR_NORMS, QA_TENSOR_RESIDUALS, QA_TENSOR_LEVEL,
    QA_TENSOR_LINKS0, QA_TENSOR_UP_NODES, QA_TENSOR_UP_OFF, QA_TENSOR_UPPER, QA_TENSOR_IDS, QA_TENSOR_VECTORS};

typedef struct {
    qa_gguf g;
    qa_gguf_kv kv[MAX_KV];
    qa_gguf_tensor tensors[MAX_TENSORS];
    const qa_gguf_tensor *t[T_COUNT]; /* by role, NULL when absent */
    qa_index_arrays a;
    qa_qann_info info;
} hdr_t;

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p + 4) << 32 | le32(p); }

static const char *vtype_name(uint32_t t) {
    static const char *const names[QA_GV_COUNT] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                   "bool", "string", "array", "u64", "i64", "f64"};
    return t < QA_GV_COUNT ? names[t] : "?";
}

static const char *ttype_name(uint32_t t) {
    switch (t) {
    case QA_T_F32: return "F32";
    case QA_T_I8: return "I8";
    case QA_T_I32: return "I32";
    case QA_T_I64: return "I64";
    case QA_T_F16: return "F16";
    case QA_T_I16: return "I16";
    case QA_T_F64: return "F64";
    default: return "another type";
    }
}

/* The key, present and of exactly this GGUF type (and item type for arrays). */
static const qa_gguf_kv *req(const hdr_t *h, const char *key, uint32_t type, uint32_t item, char *err,
                             size_t el) {
    const qa_gguf_kv *e = qa_gguf_find_kv(&h->g, key);
    if (!e) {
        qa_set_err(err, el, "missing key %s", key);
        return NULL;
    }
    if (e->type != type || (type == QA_GV_ARRAY && e->arr_type != item)) {
        qa_set_err(err, el, "key %s is %s%s%s, expected %s%s%s", key, vtype_name(e->type),
                   e->type == QA_GV_ARRAY ? " of " : "", e->type == QA_GV_ARRAY ? vtype_name(e->arr_type) : "",
                   vtype_name(type), type == QA_GV_ARRAY ? " of " : "", type == QA_GV_ARRAY ? vtype_name(item) : "");
        return NULL;
    }
    return e;
}

static int str_is(const qa_gguf_kv *e, const char *s) {
    uint64_t n = le64(e->val);
    return n == strlen(s) && !memcmp(e->val + 8, s, n);
}

/* "[a, b]" in numpy order (slowest dimension first), as FORMAT.md writes shapes. */
static void shape_str(char *out, size_t cap, int nd, const int64_t *ne) {
    size_t o = 1;
    qa_format(out, cap, "[");
    for (int i = nd - 1; i >= 0 && o < cap; i--) {
        qa_format(out + o, cap - o, "%lld%s", (long long)ne[i], i ? ", " : "]");
        o += strlen(out + o);
    }
}

static int expect_tensor(hdr_t *h, int role, uint32_t type, int nd, int64_t slow, int64_t fast, char *err,
                         size_t el) {
    const qa_gguf_tensor *t = h->t[role];
    if (!t) {
        qa_set_err(err, el, "missing tensor %s", tensor_name[role]);
        return -1;
    }
    int64_t want[2] = {nd == 2 ? fast : slow, slow};
    int ok = t->type == type && (int)t->n_dims == nd && t->ne[0] == want[0] && (nd == 1 || t->ne[1] == want[1]);
    if (!ok) {
        char got[96], exp[64];
        shape_str(got, sizeof got, (int)t->n_dims, t->ne);
        shape_str(exp, sizeof exp, nd, want);
        qa_set_err(err, el, "tensor %s is %s%s, expected %s%s", tensor_name[role], ttype_name(t->type), got,
                   ttype_name(type), exp);
        return -1;
    }
    return 0;
}

/* A 1-D tensor of this type, any length (0 when absent). */
static int expect_list(hdr_t *h, int role, uint32_t type, int64_t *len, char *err, size_t el) {
    const qa_gguf_tensor *t = h->t[role];
    *len = 0;
    if (!t) return 0;
    if (t->type != type || t->n_dims != 1) {
        char got[96];
        shape_str(got, sizeof got, (int)t->n_dims, t->ne);
        qa_set_err(err, el, "tensor %s is %s%s, expected a 1-D %s", tensor_name[role], ttype_name(t->type), got,
                   ttype_name(type));
        return -1;
    }
    *len = t->ne[0];
    return 0;
}

static int code_size(int codec, int d) {
    int dpad = (d + 63) & ~63;
    if (codec >= QA_CODEC_RABITQ1 && codec <= QA_CODEC_RABITQ4) /* B bit planes + 4 float factors */
        return (codec - QA_CODEC_RABITQ1 + 1) * dpad / 8 + 16;
    return codec == QA_CODEC_SQ8 ? dpad : codec == QA_CODEC_SQ4 ? dpad / 2 : 4 * d;
}

/* The header checksum of format 2: CRC-32 of [0, info_end) with the value zeroed. */
static uint32_t header_crc(const qa_gguf *g, const qa_gguf_kv *e) {
    static const uint8_t zero[4];
    uint64_t at = (uint64_t)(e->val - g->buf);
    uint32_t crc = qa_crc32(0, g->buf, (size_t)at);
    crc = qa_crc32(crc, zero, 4);
    return qa_crc32(crc, g->buf + at + 4, (size_t)(g->info_end - at - 4));
}

#define FAIL(...) do { qa_set_err(err, el, __VA_ARGS__); return QA_ERR_FORMAT; } while (0)

/* Everything that can be checked from the header alone. */
static int read_header(hdr_t *h, const uint8_t *buf, uint64_t len, uint64_t flen, char *err, size_t el) {
    uint64_t need = 0;
    memset(&h->info, 0, sizeof h->info);
    h->info.file_len = flen;
    int rc = qa_gguf_header_size(buf, len, flen, &need, err, el);
    if (rc == QA_ERR_NEED_MORE) h->info.header_bytes = need;
    if (rc) return rc;
    if (((uintptr_t)buf & 7)) {
        qa_set_err(err, el, "the buffer must be 8-byte aligned");
        return QA_ERR_ARG;
    }
    rc = qa_gguf_parse_prefix(&h->g, buf, len, flen, h->kv, MAX_KV, h->tensors, MAX_TENSORS, err, el);
    if (rc == QA_ERR_SPACE) {
        uint64_t nkv = le64(buf + 16), nt = le64(buf + 8);
        FAIL("not a quantann index: %llu keys and %llu tensors (an index has at most %d and %d)",
             (unsigned long long)nkv, (unsigned long long)nt, MAX_KV, MAX_TENSORS);
    }
    if (rc) return rc;
    const qa_gguf *g = &h->g;
    h->info.gguf_version = g->version;
    h->info.header_bytes = g->data_start;

    const qa_gguf_kv *arch = qa_gguf_find_kv(g, "general.architecture");
    if (!arch || arch->type != QA_GV_STRING) FAIL("not a quantann index (no general.architecture string)");
    if (!str_is(arch, QA_FORMAT_ARCH)) {
        uint64_t n = le64(arch->val);
        FAIL("not a quantann index (GGUF architecture '%.*s')", (int)(n > 64 ? 64 : n), (const char *)arch->val + 8);
    }
    const qa_gguf_kv *e;
    if (!(e = req(h, QA_KEY_FORMAT_VERSION, QA_GV_U32, 0, err, el))) return QA_ERR_FORMAT;
    uint32_t version = le32(e->val);
    h->info.format_version = version;
    if (version > QA_FORMAT_VERSION)
        FAIL("written by a newer quantann (format %u); this version reads formats %d to %d: upgrade quantann",
             version, QA_FORMAT_MIN_VERSION, QA_FORMAT_VERSION);
    if (version < QA_FORMAT_MIN_VERSION) FAIL("unknown format version %u", version);

    /* every key, of its exact type */
    const qa_gguf_kv *k_dim, *k_metric, *k_quant, *k_count, *k_M, *k_M0, *k_entry, *k_maxl, *k_efc, *k_dtype,
        *k_vcrc, *k_names, *k_crcs;
    if (!(k_dim = req(h, QA_KEY_DIM, QA_GV_U32, 0, err, el)) ||
        !(k_metric = req(h, QA_KEY_METRIC, QA_GV_STRING, 0, err, el)) ||
        !(k_quant = req(h, QA_KEY_QUANT, QA_GV_STRING, 0, err, el)) ||
        !(k_count = req(h, QA_KEY_COUNT, QA_GV_U64, 0, err, el)) ||
        !(k_M = req(h, QA_KEY_HNSW_M, QA_GV_U32, 0, err, el)) ||
        !(k_M0 = req(h, QA_KEY_HNSW_M0, QA_GV_U32, 0, err, el)) ||
        !(k_entry = req(h, QA_KEY_HNSW_ENTRY, QA_GV_I32, 0, err, el)) ||
        !(k_maxl = req(h, QA_KEY_HNSW_MAX_LEVEL, QA_GV_U32, 0, err, el)) ||
        !(k_efc = req(h, QA_KEY_HNSW_EF_CONSTRUCTION, QA_GV_U32, 0, err, el)) ||
        !(k_dtype = req(h, QA_KEY_VECTORS_DTYPE, QA_GV_STRING, 0, err, el)) ||
        !(k_vcrc = req(h, QA_KEY_VECTORS_CRC32, QA_GV_U32, 0, err, el)) ||
        !(k_names = req(h, QA_KEY_CHECKSUM_TENSORS, QA_GV_ARRAY, QA_GV_STRING, err, el)) ||
        !(k_crcs = req(h, QA_KEY_CHECKSUM_CRC32, QA_GV_ARRAY, QA_GV_U32, err, el)))
        return QA_ERR_FORMAT;

    /* format 3: the level-0 lists' width (32: int32, else packed, kernel/links.h) */
    const qa_gguf_kv *k_bits = NULL;
    if (version >= 3 && !(k_bits = req(h, QA_KEY_HNSW_LINK_BITS, QA_GV_U32, 0, err, el))) return QA_ERR_FORMAT;

    /* format 4: ids numbered by the index, in a permuted row order (checked against the ids below) */
    const qa_gguf_kv *k_next = qa_gguf_find_kv(g, QA_KEY_IDS_NEXT);
    if (k_next && version < 4) FAIL("key %s in a format %u file (it came with format 4)", QA_KEY_IDS_NEXT, version);
    if (k_next && !(k_next = req(h, QA_KEY_IDS_NEXT, QA_GV_U64, 0, err, el))) return QA_ERR_FORMAT;

    /* format 2: one CRC over the whole header (every key, every tensor record) */
    const qa_gguf_kv *k_hcrc = qa_gguf_find_kv(g, QA_KEY_CHECKSUM_HEADER);
    if (version >= 2 || k_hcrc) {
        if (!(k_hcrc = req(h, QA_KEY_CHECKSUM_HEADER, QA_GV_U32, 0, err, el))) return QA_ERR_FORMAT;
        uint32_t want = le32(k_hcrc->val), got = header_crc(g, k_hcrc);
        if (want != got) FAIL("header checksum mismatch (stored %08x, computed %08x): the header is corrupt", want, got);
    }

    /* An unknown quantann.* key is refused: a writer that gives the file new meaning writes a
       new format version (as format 4 did for ids.next), so within the versions read here such a
       key is misspelt or crafted, and skipping it could change what the file means. Keys of
       other namespaces (general.name, ...) say nothing about the index and are skipped. */
    static const char *const known[] = QA_KEY_LIST;
    const size_t pre = strlen(QA_FORMAT_ARCH);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const qa_gguf_kv *k = &g->kv[i];
        if (k->key_len <= pre || memcmp(k->key, QA_FORMAT_ARCH, pre) || k->key[pre] != '.') continue;
        int found = 0;
        for (size_t j = 0; j < sizeof known / sizeof *known && !found; j++)
            found = k->key_len == strlen(known[j]) && !memcmp(k->key, known[j], k->key_len);
        if (!found)
            FAIL("unknown key '%.*s' in a format %u file (a newer quantann writes a newer format version)",
                 (int)(k->key_len > 64 ? 64 : k->key_len), (const char *)k->key, version);
    }

    qa_index_arrays *a = &h->a;
    memset(a, 0, sizeof *a);
    uint32_t d = le32(k_dim->val), M = le32(k_M->val), M0 = le32(k_M0->val), maxl = le32(k_maxl->val);
    uint32_t efc = le32(k_efc->val);
    uint64_t n = le64(k_count->val);
    int32_t entry = (int32_t)le32(k_entry->val);
    if (str_is(k_metric, "l2")) a->metric = QA_METRIC_L2;
    else if (str_is(k_metric, "ip")) a->metric = QA_METRIC_IP;
    else if (str_is(k_metric, "cosine")) a->metric = QA_METRIC_IP, a->cosine = 1;
    else FAIL("unknown metric (l2, ip or cosine expected)");
    if (str_is(k_quant, "none")) a->codec = QA_CODEC_NONE;
    else if (str_is(k_quant, "sq8")) a->codec = QA_CODEC_SQ8;
    else if (str_is(k_quant, "sq4")) a->codec = QA_CODEC_SQ4;
    else if (str_is(k_quant, "rabitq1")) a->codec = QA_CODEC_RABITQ1;
    else if (str_is(k_quant, "rabitq2")) a->codec = QA_CODEC_RABITQ2;
    else if (str_is(k_quant, "rabitq3")) a->codec = QA_CODEC_RABITQ3;
    else if (str_is(k_quant, "rabitq4")) a->codec = QA_CODEC_RABITQ4;
    else FAIL("unknown quantizer (none, sq8, sq4 or rabitq1..rabitq4 expected)");
    if (!str_is(k_dtype, "f32")) FAIL("vectors stored as another dtype than f32");
    if (d < 1 || d > QA_MAX_DIM) FAIL("header value out of range: dim=%u (1..%lld)", d, QA_MAX_DIM);
    if (n < 1 || n > (uint64_t)QA_MAX_ROWS) FAIL("header value out of range: count=%llu (1..%lld)", (unsigned long long)n, QA_MAX_ROWS);
    if (M < 2 || M > QA_MAX_M || M0 != 2 * M) FAIL("header value out of range: M=%u, M0=%u (2 <= M <= %lld, M0 = 2M)", M, M0, QA_MAX_M);
    if (entry < 0 || (uint64_t)entry >= n) FAIL("header value out of range: entry=%d (count=%llu)", entry, (unsigned long long)n);
    if (maxl > QA_MAX_LEVEL) FAIL("header value out of range: max_level=%u (0..%lld)", maxl, QA_MAX_LEVEL);
    if (efc < 1 || efc > QA_MAX_EF_CONSTRUCTION)
        FAIL("header value out of range: ef_construction=%u (1..%lld)", efc, QA_MAX_EF_CONSTRUCTION);
    uint32_t bits = k_bits ? le32(k_bits->val) : QA_LINK_BITS_INT32;
    if (bits != QA_LINK_BITS_INT32 && bits != (uint32_t)qa_link_bits((int64_t)n))
        FAIL("header value out of range: link_bits=%u (32, or %d for count=%llu)", bits, qa_link_bits((int64_t)n),
             (unsigned long long)n);
    if (k_names->arr_n != k_crcs->arr_n) FAIL("checksums: %llu tensor names but %llu CRCs",
                                             (unsigned long long)k_names->arr_n, (unsigned long long)k_crcs->arr_n);
    a->d = (int)d;
    a->n = (int64_t)n;
    a->M = (int)M;
    a->M0 = (int)M0;
    a->entry = entry;
    a->max_level = (int)maxl;
    a->ef_construction = (int)efc;
    a->vectors_crc32 = le32(k_vcrc->val);
    a->link_bits = (int)bits;

    /* tensors: known names only, each of its type and shape */
    memset(h->t, 0, sizeof h->t);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const qa_gguf_tensor *t = &g->tensors[i];
        int role = -1;
        for (int r = 0; r < T_COUNT; r++)
            if (t->name_len == strlen(tensor_name[r]) && !memcmp(t->name, tensor_name[r], t->name_len)) role = r;
        if (role < 0) FAIL("unexpected tensor '%.*s'", (int)(t->name_len > 64 ? 64 : t->name_len), (const char *)t->name);
        h->t[role] = t;
    }
    int dpad = (int)((d + 63) & ~63u);
    int cs = code_size(a->codec, a->d);
    int want_norms = a->metric == QA_METRIC_L2 && !a->cosine && a->codec != QA_CODEC_NONE;
    if (expect_tensor(h, T_VMIN, QA_T_F32, 1, dpad, 0, err, el) ||
        expect_tensor(h, T_SCALE, QA_T_F32, 1, dpad, 0, err, el) ||
        expect_tensor(h, T_CODES, QA_T_I8, 2, a->n, cs, err, el) ||
        expect_tensor(h, T_LEVEL, QA_T_I8, 1, a->n, 0, err, el) ||
        (bits == QA_LINK_BITS_INT32 ? expect_tensor(h, T_LINKS0, QA_T_I32, 2, a->n, M0, err, el)
                                    : expect_tensor(h, T_LINKS0, QA_T_I8, 2, a->n, qa_link_row_bytes((int)M0, (int)bits), err, el)) ||
        expect_tensor(h, T_VECTORS, QA_T_F32, 2, a->n, d, err, el))
        return QA_ERR_FORMAT;
    if (want_norms && expect_tensor(h, T_NORMS, QA_T_F32, 1, a->n, 0, err, el)) return QA_ERR_FORMAT;
    if (!want_norms && h->t[T_NORMS]) FAIL("unexpected tensor norms (only l2 over sq8/sq4 has norms)");
    if (h->t[T_RESID]) { /* format 5, optional: without it rerank auto keeps the per-coordinate bound */
        if (version < 5) FAIL("tensor %s in a format %u file (it came with format 5)", QA_TENSOR_RESIDUALS, version);
        if (a->codec != QA_CODEC_SQ8) FAIL("unexpected tensor %s (only sq8 codes have residuals)", QA_TENSOR_RESIDUALS);
        if (expect_tensor(h, T_RESID, QA_T_F32, 1, a->n, 0, err, el)) return QA_ERR_FORMAT;
    }
    int64_t n_up, n_off, n_upper, n_ids;
    if (expect_list(h, T_UP_NODES, QA_T_I32, &n_up, err, el) || expect_list(h, T_UP_OFF, QA_T_I64, &n_off, err, el) ||
        expect_list(h, T_UPPER, QA_T_I32, &n_upper, err, el) || expect_list(h, T_IDS, QA_T_I64, &n_ids, err, el))
        return QA_ERR_FORMAT;
    if (n_off != n_up) FAIL("tensor graph.up_off has %lld entries, graph.up_nodes %lld", (long long)n_off, (long long)n_up);
    if (h->t[T_IDS] && n_ids != a->n) FAIL("tensor ids has %lld entries, expected %lld", (long long)n_ids, (long long)a->n);
    if (k_next) {
        h->info.next_id = le64(k_next->val);
        if (!h->t[T_IDS]) FAIL("key %s without an ids tensor", QA_KEY_IDS_NEXT);
        if (h->info.next_id < n || h->info.next_id == UINT64_MAX)
            FAIL("header value out of range: ids.next=%llu (count=%llu .. 2^64-2)", (unsigned long long)h->info.next_id,
                 (unsigned long long)n);
    }
    a->n_up = n_up;
    a->n_upper = n_upper;

    /* the in-memory part is everything before the vectors */
    uint64_t part = g->data_start + h->t[T_VECTORS]->offset;
    for (int r = 0; r < T_VECTORS; r++)
        if (h->t[r] && g->data_start + h->t[r]->offset + h->t[r]->nbytes > part)
            FAIL("tensor %s lies after the vectors", tensor_name[r]);
    a->vectors_offset = part;
    h->info.part_bytes = part;
#define NB(r) (h->t[r] ? h->t[r]->nbytes : 0)
    h->info.mem_codes = NB(T_CODES);
    h->info.mem_graph = NB(T_LEVEL) + NB(T_LINKS0) + NB(T_UP_NODES) + NB(T_UP_OFF) + NB(T_UPPER);
    h->info.mem_ids = NB(T_IDS);
    h->info.mem_other = NB(T_VMIN) + NB(T_SCALE) + NB(T_NORMS) + NB(T_RESID) + 2 * n;
#undef NB
    for (int r = 0; r < T_COUNT; r++)
        if (h->t[r]) {
            h->info.offset[r] = g->data_start + h->t[r]->offset;
            h->info.nbytes[r] = h->t[r]->nbytes;
        }
    h->info.header = *a;
    return QA_OK;
}

int qa_qann_info_read(const uint8_t *buf, uint64_t len, uint64_t file_len, qa_qann_info *info, char *err,
                      size_t err_len) {
    hdr_t *h = (hdr_t *)malloc(sizeof *h);
    if (!h) {
        qa_set_err(err, err_len, "out of memory");
        return QA_ERR_SPACE;
    }
    int rc = read_header(h, buf, len, file_len, err, err_len);
    *info = h->info;
    free(h);
    return rc;
}

/* ---- the in-memory part ------------------------------------------------------------- */

static int check_checksums(const hdr_t *h, char *err, size_t el) {
    const qa_gguf *g = &h->g;
    const qa_gguf_kv *names = qa_gguf_find_kv(g, QA_KEY_CHECKSUM_TENSORS);
    const qa_gguf_kv *crcs = qa_gguf_find_kv(g, QA_KEY_CHECKSUM_CRC32);
    int listed[T_COUNT] = {0};
    const uint8_t *p = names->val; /* strings, each checked by the GGUF walk to lie in the header */
    for (uint64_t i = 0; i < names->arr_n; i++) {
        uint64_t n = le64(p);
        const uint8_t *s = p + 8;
        p += 8 + n;
        int role = -1;
        for (int r = 0; r < T_VECTORS; r++)
            if (n == strlen(tensor_name[r]) && !memcmp(s, tensor_name[r], n)) role = r;
        if (role < 0 || !h->t[role]) FAIL("checksum for a missing tensor '%.*s'", (int)(n > 64 ? 64 : n), (const char *)s);
        if (listed[role]++) FAIL("two checksums for tensor %s", tensor_name[role]);
        const qa_gguf_tensor *t = h->t[role];
        uint32_t want = le32(crcs->val + 4 * i);
        if (qa_crc32(0, t->data, (size_t)t->nbytes) != want) FAIL("checksum mismatch in tensor %s: the file is corrupt", tensor_name[role]);
    }
    for (int r = 0; r < T_VECTORS; r++)
        if (h->t[r] && !listed[r]) FAIL("tensor %s has no checksum", tensor_name[r]);
    return QA_OK;
}

/* By the bits (exponent all ones: infinity or NaN), a loop the compiler vectorises. */
static int all_finite(const float *x, uint64_t n) {
    const uint32_t *u = (const uint32_t *)(const void *)x;
    uint32_t bad = 0;
    for (uint64_t i = 0; i < n; i++) bad |= (u[i] & 0x7f800000u) == 0x7f800000u;
    return !bad;
}

/* Every link and offset the search can follow, against the index's size and levels. */
int qa_qann_check_graph(const qa_index_arrays *a, char *err, size_t el) {
    const int64_t n = a->n;
    const int packed = a->link_bits != 0 && a->link_bits != QA_LINK_BITS_INT32;
    if (n < 1 || n > QA_MAX_ROWS || a->M < 2 || a->M > QA_MAX_M || a->M0 != 2 * a->M || a->entry < 0 ||
        a->entry >= n || a->max_level < 0 || a->max_level > QA_MAX_LEVEL || a->n_up < 0 || a->n_upper < 0 ||
        !a->level || !(packed ? (const void *)a->links0_packed : (const void *)a->links0) ||
        (packed && (a->link_bits < qa_link_bits(n) || a->link_bits > 31)))
        FAIL("header values out of range (count=%lld, M=%d, M0=%d, entry=%d, max_level=%d)", (long long)n, a->M,
             a->M0, a->entry, a->max_level);
    const uint8_t *level = a->level;
    for (int64_t i = 0; i < n; i++)
        if (level[i] > a->max_level) FAIL("corrupt graph: row %lld has level %d, above the top level %d", (long long)i, level[i], a->max_level);
    if (level[a->entry] != a->max_level) FAIL("corrupt graph: entry point is not on the top level");
    if (packed) {
        int32_t lst[2 * QA_MAX_M];
        const int64_t rb = qa_link_row_bytes(a->M0, a->link_bits);
        for (int64_t i = 0; i < n; i++)
            for (int j = 0, c = qa_links_unpack_row(a->links0_packed + i * rb, a->M0, a->link_bits, (n - i) * rb, lst); j < c; j++)
                if (lst[j] >= n) FAIL("corrupt graph: level-0 link outside the index (row %lld)", (long long)i);
    } else {
        for (int64_t i = 0; i < n * a->M0; i++)
            if (a->links0[i] < -1 || a->links0[i] >= n) FAIL("corrupt graph: level-0 link outside the index (row %lld)", (long long)(i / a->M0));
    }
    int64_t k = 0, off = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!level[i]) continue;
        if (k >= a->n_up || a->up_nodes[k] != i) FAIL("corrupt graph: upper-level node list does not match the levels");
        if (a->up_off[k] != off) FAIL("corrupt graph: upper-level offsets");
        off += (int64_t)level[i] * a->M;
        k++;
    }
    if (k != a->n_up) FAIL("corrupt graph: upper-level node list does not match the levels");
    if (off != a->n_upper) FAIL("corrupt graph: upper-level pool size %lld, the levels need %lld", (long long)a->n_upper, (long long)off);
    for (int64_t j = 0; j < a->n_up; j++) {
        int32_t node = a->up_nodes[j];
        for (int l = 1; l <= level[node]; l++) {
            const int32_t *lst = a->upper + a->up_off[j] + (int64_t)(l - 1) * a->M;
            for (int s = 0; s < a->M; s++) {
                int32_t v = lst[s];
                if (v < -1 || v >= n) FAIL("corrupt graph: upper-level link outside the index (row %d)", node);
                if (v >= 0 && level[v] < l)
                    FAIL("corrupt graph: row %d links at level %d to row %d, which has no level %d", node, l, v, l);
            }
        }
    }
    return QA_OK;
}

/* Unique ids, none equal to the empty-slot id 2^64-1 (numbered ids: each below next_id, so
 * that `add` cannot repeat one): an open-addressing set of 2n..4n slots (the file holds 8n
 * bytes of ids, so the file justifies it). */
static int check_ids(const uint64_t *ids, int64_t n, uint64_t next_id, char *err, size_t el) {
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n) cap <<= 1;
    uint64_t *set = (uint64_t *)malloc(cap * sizeof *set);
    if (!set) {
        qa_set_err(err, el, "out of memory checking %lld ids", (long long)n);
        return QA_ERR_SPACE;
    }
    memset(set, 0xff, cap * sizeof *set);
    int rc = QA_OK;
    for (int64_t i = 0; i < n && rc == QA_OK; i++) {
        uint64_t v = ids[i];
        if (v == UINT64_MAX) {
            qa_set_err(err, el, "id %llu (row %lld) is reserved for empty result slots", (unsigned long long)v, (long long)i);
            rc = QA_ERR_FORMAT;
            break;
        }
        if (next_id && v >= next_id) {
            qa_set_err(err, el, "id %llu (row %lld) is not below ids.next=%llu", (unsigned long long)v, (long long)i,
                       (unsigned long long)next_id);
            rc = QA_ERR_FORMAT;
            break;
        }
        uint64_t hsh = v * 0x9E3779B97F4A7C15ull;
        for (uint64_t s = hsh >> 20 & (cap - 1);; s = (s + 1) & (cap - 1)) {
            if (set[s] == UINT64_MAX) {
                set[s] = v;
                break;
            }
            if (set[s] == v) {
                qa_set_err(err, el, "duplicate id %llu (row %lld)", (unsigned long long)v, (long long)i);
                rc = QA_ERR_FORMAT;
                break;
            }
        }
    }
    free(set);
    return rc;
}

int qa_qann_read_info(const uint8_t *buf, uint64_t len, uint64_t file_len, qa_index_arrays *out,
                      qa_qann_info *info, char *err, size_t el) {
    hdr_t *h = (hdr_t *)malloc(sizeof *h);
    if (!h) {
        qa_set_err(err, el, "out of memory");
        return QA_ERR_SPACE;
    }
    int rc = read_header(h, buf, len, file_len, err, el);
    if (rc == QA_OK && h->info.part_bytes > len) {
        qa_set_err(err, el, "the in-memory part needs the first %llu bytes, %llu given",
                   (unsigned long long)h->info.part_bytes, (unsigned long long)len);
        rc = QA_ERR_NEED_MORE;
    }
    if (info) *info = h->info;
    if (rc) goto done;
    if ((rc = check_checksums(h, err, el))) goto done;
    qa_index_arrays *a = &h->a;
#define DATA(r, T) (h->t[r] ? (T)h->t[r]->data : NULL)
    a->vmin = DATA(T_VMIN, const float *);
    a->scale = DATA(T_SCALE, const float *);
    a->codes = DATA(T_CODES, const uint8_t *);
    a->norms = DATA(T_NORMS, const float *);
    a->resid = DATA(T_RESID, const float *);
    a->level = DATA(T_LEVEL, const uint8_t *);
    if (a->link_bits == QA_LINK_BITS_INT32) a->links0 = DATA(T_LINKS0, const int32_t *);
    else a->links0_packed = DATA(T_LINKS0, const uint8_t *);
    a->up_nodes = DATA(T_UP_NODES, const int32_t *);
    a->up_off = DATA(T_UP_OFF, const int64_t *);
    a->upper = DATA(T_UPPER, const int32_t *);
    a->ids = DATA(T_IDS, const uint64_t *);
#undef DATA
    a->deleted = NULL;
    uint64_t dpad = (uint64_t)h->t[T_VMIN]->ne[0];
    rc = QA_ERR_FORMAT;
    if (!all_finite(a->vmin, dpad) || !all_finite(a->scale, dpad)) {
        qa_set_err(err, el, "quantizer parameters are not finite");
        goto done;
    }
    if (a->codec == QA_CODEC_NONE && !all_finite((const float *)a->codes, (uint64_t)a->n * (uint64_t)a->d)) {
        qa_set_err(err, el, "float codes are not finite");
        goto done;
    }
    if (a->codec >= QA_CODEC_RABITQ1 && a->codec <= QA_CODEC_RABITQ4) {
        /* each code ends in four float factors (|r|^2, scale, <c,r>, bound): finite, and
         * |r|^2, scale and bound not negative, or an estimate could be NaN or unbounded */
        /* scale[0]: rerank auto's bound multiplier (0: not calibrated) */
        if (a->scale[0] < 0.0f || a->scale[0] > (float)QA_MAX_BOUND_EPS) {
            qa_set_err(err, el, "rabitq bound multiplier (quant.scale[0]) is out of range");
            goto done;
        }
        int cs = code_size(a->codec, a->d);
        for (int64_t r = 0; r < a->n; r++) {
            float f[4];
            memcpy(f, a->codes + r * cs + cs - 16, 16);
            if (!all_finite(f, 4) || f[0] < 0.0f || f[1] < 0.0f || f[3] < 0.0f) {
                qa_set_err(err, el, "rabitq code %lld has bad factors", (long long)r);
                goto done;
            }
        }
    }
    if (a->norms && !all_finite(a->norms, (uint64_t)a->n)) {
        qa_set_err(err, el, "norms are not finite");
        goto done;
    }
    if (a->resid) { /* a NaN would drop its row from every bound, a negative one read as absent */
        for (int64_t r = 0; r < a->n; r++)
            if (!(a->resid[r] >= 0.0f) || !all_finite(&a->resid[r], 1)) {
                qa_set_err(err, el, "residual of row %lld is not a finite non-negative number", (long long)r);
                goto done;
            }
    }
    if ((rc = qa_qann_check_graph(a, err, el))) goto done;
    if (a->ids && (rc = check_ids(a->ids, a->n, h->info.next_id, err, el))) goto done;
    *out = *a;
done:
    free(h);
    return rc;
}

int qa_qann_read(const uint8_t *buf, uint64_t len, uint64_t file_len, qa_index_arrays *out, char *err,
                 size_t err_len) {
    return qa_qann_read_info(buf, len, file_len, out, NULL, err, err_len);
}

int qa_qann_header_crc(const uint8_t *buf, uint64_t len, uint32_t *crc, uint64_t *value_at, char *err,
                       size_t el) {
    qa_gguf g;
    qa_gguf_kv kv[MAX_KV];
    qa_gguf_tensor tensors[MAX_TENSORS];
    int rc = qa_gguf_parse_prefix(&g, buf, len, UINT64_MAX, kv, MAX_KV, tensors, MAX_TENSORS, err, el);
    if (rc) return rc;
    const qa_gguf_kv *e = qa_gguf_find_kv(&g, QA_KEY_CHECKSUM_HEADER);
    if (!e || e->type != QA_GV_U32) FAIL("no u32 key %s in the header", QA_KEY_CHECKSUM_HEADER);
    *crc = header_crc(&g, e);
    *value_at = (uint64_t)(e->val - buf);
    return QA_OK;
}
