/* What the libFuzzer targets share: the input layout of the model targets and a whole-file
 * GGUF parse with tables sized from the file's own counts. Static inline: each target is
 * one translation unit.
 */
#ifndef QA_FUZZ_INPUT_H
#define QA_FUZZ_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* u16 text length (little endian) | u8 flags | text | file. Text and file are copied into
 * buffers of exactly their size (malloc: 8-byte aligned, as a map is), so ASan sees any
 * read past either. */
typedef struct {
    uint8_t *text, *file, flags;
    uint64_t tlen, flen;
} qa_fuzz_input;

static inline int qa_fuzz_split(qa_fuzz_input *in, const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    in->tlen = data[0] | data[1] << 8;
    in->flags = data[2];
    if (in->tlen > size - 3) in->tlen = size - 3;
    in->flen = size - 3 - in->tlen;
    in->text = malloc(in->tlen ? in->tlen : 1);
    in->file = malloc(in->flen ? in->flen : 1);
    memcpy(in->text, data + 3, in->tlen);
    memcpy(in->file, data + 3 + in->tlen, in->flen);
    return 1;
}

static inline void qa_fuzz_input_free(qa_fuzz_input *in) {
    free(in->text);
    free(in->file);
}

/* A whole-file parse; kv and tensor tables sized by qa_gguf_counts (bounded by the length). */
typedef struct {
    qa_gguf g;
    qa_gguf_kv *kv;
    qa_gguf_tensor *t;
} qa_fuzz_gguf;

static inline int qa_fuzz_parse(qa_fuzz_gguf *p, const uint8_t *buf, uint64_t size) {
    char err[256];
    uint64_t nkv, nt;
    p->kv = NULL;
    p->t = NULL;
    if (qa_gguf_counts(buf, size, &nkv, &nt, err, sizeof err) != QA_OK) return QA_ERR_FORMAT;
    p->kv = calloc(nkv ? nkv : 1, sizeof *p->kv);
    p->t = calloc(nt ? nt : 1, sizeof *p->t);
    return qa_gguf_parse(&p->g, buf, size, p->kv, nkv, p->t, nt, err, sizeof err);
}

static inline void qa_fuzz_gguf_free(qa_fuzz_gguf *p) {
    free(p->kv);
    free(p->t);
}

#endif
