/* libFuzzer target: the one GGUF reader (kernel/gguf/gguf.c) over arbitrary bytes.
 *
 * Every input is parsed whole, then in prefix mode the way a streaming or HTTP host does
 * it (qa_gguf_header_size, follow `need`, qa_gguf_parse_prefix), from an empty prefix and
 * from half the input. Each prefix is copied into a buffer of exactly its length, so ASan
 * catches any read past the bytes given. The prefix answers must agree with the full
 * parse: the same verdict, the same data start, the same keys and tensors. Build and run:
 * fuzz/run.sh (make fuzz).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

typedef struct {
    qa_gguf g;
    qa_gguf_kv *kv;
    qa_gguf_tensor *t;
} parsed;

/* Caps from the counts of the whole file (bounded by its length, or 0 on a bad header). */
static uint64_t kv_cap, t_cap;

static int parse(parsed *p, const uint8_t *buf, uint64_t len, uint64_t file_len, char *err) {
    p->kv = calloc(kv_cap ? kv_cap : 1, sizeof *p->kv);
    p->t = calloc(t_cap ? t_cap : 1, sizeof *p->t);
    return qa_gguf_parse_prefix(&p->g, buf, len, file_len, p->kv, kv_cap, p->t, t_cap, err, 256);
}

static void release(parsed *p) { free(p->kv); free(p->t); }

/* Follows the reader's `need` from a first prefix of `start` bytes, as a streaming host does;
 * returns the verdict and, on QA_OK, the header size in *hdr. */
static int stream_header(const uint8_t *data, uint64_t size, uint64_t start, uint64_t *hdr) {
    char err[256];
    uint64_t len = start;
    for (int rounds = 0; rounds < 32; rounds++) {
        uint8_t *pre = malloc(len ? len : 1);
        memcpy(pre, data, len);
        uint64_t need = 0;
        int rc = qa_gguf_header_size(pre, len, size, &need, err, sizeof err);
        free(pre);
        if (rc != QA_ERR_NEED_MORE) {
            *hdr = need;
            return rc;
        }
        CHECK(need > len && need <= size); /* asks for more, never past the file */
        len = need;
    }
    return QA_ERR_NEED_MORE; /* a header of more than 32 steps: not an error, stop */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    uint8_t *buf = malloc(size ? size : 1); /* 8-byte aligned, as a map or a malloc is */
    memcpy(buf, data, size);
    uint64_t nkv = 0, nt = 0;
    kv_cap = t_cap = 0;
    if (qa_gguf_counts(buf, size, &nkv, &nt, err, sizeof err) == QA_OK) {
        CHECK(nkv <= size && nt <= size); /* counts are bounded by what the file can hold */
        kv_cap = nkv;
        t_cap = nt;
    }
    parsed full;
    int rc = parse(&full, buf, size, size, err);
    CHECK(rc == QA_OK || rc == QA_ERR_FORMAT || rc == QA_ERR_UNSUPPORTED || rc == QA_ERR_SPACE);
    if (rc == QA_OK) {
        /* what the kernels read: the getters and each tensor's extent */
        uint32_t u;
        float f;
        int b;
        (void)qa_gguf_get_u32(&full.g, "general.alignment", &u);
        (void)qa_gguf_get_f32(&full.g, "quantann.sq.clip", &f);
        (void)qa_gguf_get_bool(&full.g, "tokenizer.ggml.add_bos_token", &b);
        (void)qa_gguf_find_kv(&full.g, "general.architecture");
        volatile uint8_t sink = 0;
        for (uint64_t i = 0; i < full.g.n_kv; i++) sink ^= full.kv[i].key_len ? full.kv[i].key[0] : 0;
        for (uint64_t i = 0; i < full.g.n_tensors; i++) {
            const qa_gguf_tensor *t = &full.t[i];
            CHECK(t->data && t->data >= buf && t->data + t->nbytes <= buf + size);
            if (t->nbytes) sink ^= t->data[0] ^ t->data[t->nbytes - 1];
            (void)qa_ggml_row_bytes(t->type, t->ne[0]);
        }
    }
    /* prefix mode from a few starting lengths */
    const uint64_t starts[] = {0, size / 2};
    for (int s = 0; s < 2; s++) {
        uint64_t hdr = 0;
        int prc = stream_header(data, size, starts[s] < size ? starts[s] : size, &hdr);
        if (prc == QA_ERR_NEED_MORE) continue;
        if (rc == QA_OK || rc == QA_ERR_FORMAT || rc == QA_ERR_UNSUPPORTED) {
            /* the header alone can be sound while the tensors' data is not: only the
             * verdict on the header must agree, and a sound file has a sound header */
            if (rc == QA_OK) CHECK(prc == QA_OK && hdr == full.g.data_start);
        }
        if (prc != QA_OK) continue;
        CHECK(hdr <= size);
        uint8_t *pre = malloc(hdr ? hdr : 1);
        memcpy(pre, data, hdr);
        parsed part;
        int qrc = parse(&part, pre, hdr, size, err);
        CHECK(qrc == rc); /* the header prefix gives the whole file's verdict */
        if (qrc == QA_OK) {
            CHECK(part.g.n_kv == full.g.n_kv && part.g.n_tensors == full.g.n_tensors);
            CHECK(part.g.data_start == full.g.data_start && part.g.alignment == full.g.alignment);
            for (uint64_t i = 0; i < part.g.n_tensors; i++) {
                CHECK(part.t[i].offset == full.t[i].offset && part.t[i].nbytes == full.t[i].nbytes);
                CHECK(part.t[i].type == full.t[i].type);
                /* data only for tensors inside the prefix */
                CHECK(part.t[i].data == NULL || part.t[i].data + part.t[i].nbytes <= pre + hdr);
            }
            for (uint64_t i = 0; i < part.g.n_kv; i++)
                CHECK(part.kv[i].key_len == full.kv[i].key_len && part.kv[i].type == full.kv[i].type);
        }
        release(&part);
        free(pre);
    }
    release(&full);
    free(buf);
    return 0;
}
