/* libFuzzer target: the whole index path a host drives over a .qann file.
 *
 *   bytes -> checksums repaired -> qa_qann_info_read / qa_qann_read (every check)
 *         -> qa_index_open -> searches (fuzzed k, ef, rerank, max_gap, query; the rows'
 *            vectors read from the file as the pread store does) -> grown arrays -> insert
 *         -> a search of the grown index
 *
 * Random mutations of a file almost always break a CRC-32, which would stop every input at
 * the checksum checks; so, unless the input's last byte says otherwise, the target rewrites
 * the tensors' CRCs and the header CRC after the mutation (as a writer would), and the graph,
 * quantizer, id and search code see the mutated values. The search parameters come from the
 * input's last 16 bytes (the tail of the vectors tensor in a real file, which no check reads),
 * so the conformance files seed it as they are. Build and run: fuzz/run.sh (make fuzz).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "fuzz_input.h"
#include "constants.h"
#include "gguf/crc32.h"
#include "index/index.h"
#include "index/qann.h"
#include "links.h"

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Rewrites quantann.checksums.crc32 from the tensors' bytes, then quantann.checksums.header. */
static void repair_checksums(uint8_t *buf, uint64_t size) {
    char err[256];
    qa_fuzz_gguf f;
    if (qa_fuzz_parse(&f, buf, size) == QA_OK) {
        const qa_gguf_tensor *t = f.t;
        const qa_gguf_kv *names = qa_gguf_find_kv(&f.g, QA_KEY_CHECKSUM_TENSORS);
        const qa_gguf_kv *crcs = qa_gguf_find_kv(&f.g, QA_KEY_CHECKSUM_CRC32);
        if (names && crcs && names->type == QA_GV_ARRAY && names->arr_type == QA_GV_STRING &&
            crcs->type == QA_GV_ARRAY && crcs->arr_type == QA_GV_U32) {
            const uint8_t *p = names->val; /* strings checked by the parse: inside the header */
            for (uint64_t i = 0; i < names->arr_n && i < crcs->arr_n; i++) {
                uint64_t n = rd64(p);
                for (uint64_t j = 0; j < f.g.n_tensors; j++)
                    if (t[j].name_len == n && memcmp(t[j].name, p + 8, n) == 0 && t[j].data)
                        wr32(buf + (crcs->val - buf) + 4 * i, qa_crc32(0, t[j].data, t[j].nbytes));
                p += 8 + n;
            }
        }
    }
    qa_fuzz_gguf_free(&f);
    uint32_t crc;
    uint64_t at;
    if (qa_qann_header_crc(buf, size, &crc, &at, err, sizeof err) == QA_OK && at + 4 <= size) wr32(buf + at, crc);
}



/* A parameter from one byte: small values mostly, and the edges a client could send. */
static int64_t param(uint8_t b, int64_t small) {
    switch (b >> 4) {
    case 0: return -(int64_t)(b & 15);
    case 1: return INT32_MAX - (b & 3);
    case 2: return (int64_t)1 << (31 + (b & 15)); /* 2^31 .. 2^46 */
    case 3: return QA_MAX_EF + (b & 3) - 1;
    case 4: return INT64_MAX - (b & 3);
    case 5: return INT64_MIN + (b & 3);
    default: return b % (small + 1);
    }
}

typedef struct {
    const uint8_t *file;
    uint64_t size;
} src_t;

/* One query through begin -> the host reads the rows' vectors from the file -> finish. */
static void search(qa_index *ix, const qa_index_arrays *a, const src_t *src, const float *q, const uint8_t *pb) {
    qa_searcher *s = qa_searcher_new(ix);
    if (!s) return;
    qa_search_params p = {.k = param(pb[0], 20), .ef = param(pb[1], 64), .rerank = param(pb[2], 4),
                          .max_gap = param(pb[3], 8)};
    int64_t fetch = qa_search_begin(s, q, &p);
    if (fetch >= 0) {
        qa_search_stats st;
        qa_searcher_stats(s, &st);
        CHECK(st.fetch == fetch && fetch <= a->n);
        const int32_t *rows = qa_searcher_rows(s);
        float *vec = qa_searcher_vectors(s);
        for (int64_t i = 0; i < fetch; i++) {
            CHECK(rows[i] >= 0 && rows[i] < a->n && (i == 0 || rows[i] > rows[i - 1]));
            uint64_t at = a->vectors_offset + (uint64_t)rows[i] * 4 * a->d;
            if (rows[i] < a->n && at + 4ull * a->d <= src->size) memcpy(vec + i * a->d, src->file + at, 4ull * a->d);
            else memset(vec + i * a->d, 0, 4ull * a->d); /* a row added in memory */
        }
        int32_t *out = malloc(sizeof(int32_t) * p.k);
        float *dist = malloc(sizeof(float) * p.k);
        if (qa_search_finish(s, NULL, out, dist, &st) == QA_OK) {
            CHECK(st.found <= p.k);
            for (int64_t i = 0; i < p.k; i++) CHECK(out[i] >= -1 && out[i] < a->n);
        }
        free(out);
        free(dist);
    }
    qa_searcher_free(s);
}

/* Grows the arrays by m rows (codes, norms, residuals, levels, empty links) into fresh buffers, as the
 * Python host's add does, opens an index over them and links the new rows. */
static void add_rows(const qa_index_arrays *a, const src_t *src, const float *x, int m, const uint8_t *pb) {
    qa_quantizer qz;
    const qa_codec *c = qa_codec_get(a->codec);
    if (!c || qa_quantizer_init(&qz, a->codec, a->d, a->vmin, a->scale)) return;
    int64_t n = a->n + m;
    qa_index_arrays g = *a;
    g.n = n;
    uint8_t *codes = calloc(n, qz.code_size);
    memcpy(codes, a->codes, (size_t)a->n * qz.code_size);
    float *dec = calloc(qz.dpad, sizeof(float));
    float *norms = NULL;
    if (a->norms) {
        norms = malloc(sizeof(float) * n);
        memcpy(norms, a->norms, sizeof(float) * a->n);
    }
    float *resid = NULL;
    if (a->resid) {
        resid = malloc(sizeof(float) * n);
        memcpy(resid, a->resid, sizeof(float) * a->n);
    }
    uint8_t *level = malloc(n);
    memcpy(level, a->level, a->n);
    int32_t *links0 = malloc(sizeof(int32_t) * n * a->M0);
    if (a->links0_packed) /* the host unpacks a packed level 0 before an insert */
        qa_links_unpack(a->links0_packed, a->n, a->M0, a->link_bits, links0);
    else
        memcpy(links0, a->links0, sizeof(int32_t) * a->n * a->M0);
    for (int64_t i = a->n * a->M0; i < n * a->M0; i++) links0[i] = -1;
    int64_t n_up = a->n_up, n_upper = a->n_upper;
    for (int i = 0; i < m; i++) {
        qa_encode(&qz, x + (size_t)i * a->d, 1, codes + (a->n + i) * qz.code_size, resid ? resid + a->n + i : NULL);
        if (norms) {
            c->decode(&qz, codes + (a->n + i) * qz.code_size, dec);
            float s = 0;
            for (int j = 0; j < a->d; j++) s += dec[j] * dec[j];
            norms[a->n + i] = s;
        }
        level[a->n + i] = pb[i] % 3;
        if (level[a->n + i]) n_up++, n_upper += level[a->n + i] * a->M;
    }
    int32_t *up_nodes = malloc(sizeof(int32_t) * (n_up + 1));
    int64_t *up_off = malloc(sizeof(int64_t) * (n_up + 1));
    int32_t *upper = malloc(sizeof(int32_t) * (n_upper + 1));
    memcpy(up_nodes, a->up_nodes, sizeof(int32_t) * a->n_up);
    memcpy(up_off, a->up_off, sizeof(int64_t) * a->n_up);
    memcpy(upper, a->upper, sizeof(int32_t) * a->n_upper);
    for (int64_t i = a->n_upper; i < n_upper; i++) upper[i] = -1;
    int64_t k = a->n_up, off = a->n_upper;
    for (int i = 0; i < m; i++)
        if (level[a->n + i]) {
            up_nodes[k] = (int32_t)(a->n + i);
            up_off[k++] = off;
            off += level[a->n + i] * a->M;
        }
    g.codes = codes, g.norms = norms, g.resid = resid, g.level = level, g.links0 = links0;
    g.link_bits = 32, g.links0_packed = NULL;
    g.up_nodes = up_nodes, g.up_off = up_off, g.n_up = n_up, g.upper = upper, g.n_upper = n_upper;
    g.ids = NULL, g.deleted = NULL;
    qa_index *ix;
    char err[256];
    if (qa_index_open(&g, &ix, err, sizeof err) == QA_OK) {
        qa_insert_params ip = {.start = a->n, .end = n, .vectors = x, .space = NULL, .links0 = links0,
                               .upper = upper, .threads = 1};
        if (qa_index_insert(ix, &ip, err, sizeof err) == QA_OK) {
            /* the new rows are linked only to rows of the grown index */
            for (int64_t i = 0; i < n * a->M0; i++) CHECK(links0[i] >= -1 && links0[i] < n);
            qa_index_info info;
            qa_index_info_get(ix, &info);
            qa_index_close(ix);
            g.entry = info.entry;
            g.max_level = info.max_level;
            if (qa_index_open(&g, &ix, err, sizeof err) == QA_OK) {
                search(ix, &g, src, x, pb + 2); /* pb[2..5]: the last 4 parameter bytes */
                qa_index_close(ix);
            }
        } else {
            qa_index_close(ix);
        }
    }
    free(codes), free(dec), free(norms), free(resid), free(level), free(links0);
    free(up_nodes), free(up_off), free(upper);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 16) return 0;
    const uint8_t *pb = data + size - 16; /* parameters: see the comment at the top */
    uint8_t *buf = malloc(size); /* 8-byte aligned, as a map or a malloc is */
    memcpy(buf, data, size);
    if (!(pb[15] & 0x80)) repair_checksums(buf, size);
    char err[256];
    qa_qann_info info;
    int rc = qa_qann_info_read(buf, size, size, &info, err, sizeof err);
    qa_index_arrays a;
    if (rc == QA_OK) rc = qa_qann_read(buf, size, size, &a, err, sizeof err);
    qa_index *ix;
    if (rc == QA_OK && qa_index_open(&a, &ix, err, sizeof err) == QA_OK) {
        src_t src = {buf, size};
        /* queries: a row of the file's vectors, then fuzzed floats (NaN and inf included) */
        float *q = calloc(a.d, sizeof(float));
        uint64_t row = pb[4] % (a.n ? a.n : 1);
        uint64_t at = a.vectors_offset + row * 4 * a.d;
        if (at + 4ull * a.d <= size) memcpy(q, buf + at, 4ull * a.d);
        search(ix, &a, &src, q, pb + 5);
        for (int i = 0; i < a.d; i++) memcpy(&q[i], pb + (i % 3) * 4, 4);
        search(ix, &a, &src, q, pb + 9);
        qa_index_close(ix);
        /* add 1..3 rows: the file's query row, perturbed */
        int m = 1 + pb[13] % 3;
        float *x = malloc(sizeof(float) * m * a.d);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < a.d; j++) x[i * a.d + j] = isfinite(q[j]) ? q[j] + 0.01f * i : 0.5f * i;
        if (a.n + m <= QA_MAX_ROWS) add_rows(&a, &src, x, m, pb + 10);
        free(x);
        free(q);
    }
    free(buf);
    return 0;
}
