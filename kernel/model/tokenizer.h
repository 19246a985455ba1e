/* Tokenizer kinds, by the GGUF key tokenizer.ggml.model: one row per kind (tokenizer.c).
 * Each kind keeps its state in an arena the host sizes and passes (no allocation), the
 * state first. WordPiece ("bert", tokenizer/wordpiece.c) today; a kind = its file(s) under
 * tokenizer/ + one row. */
#ifndef QA_MODEL_TOKENIZER_H
#define QA_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../gguf/gguf.h"

typedef struct {
    const char *name;       /* tokenizer.ggml.model */
    /* arena bytes for this file's vocabulary (0: missing or bad vocabulary) */
    uint64_t (*arena_size)(const qa_gguf *g);
    /* builds the state at the start of the arena */
    int (*init)(void *arena, const qa_gguf *g, uint64_t arena_size, char *err, size_t err_len);
    /* ids of a text with the kind's own special tokens, at most max_ids; returns the count */
    int (*encode)(const void *state, const uint8_t *text, uint64_t len, int32_t *ids, int max_ids);
    int32_t (*n_vocab)(const void *state);
} qa_tokenizer_kind;

typedef struct {
    const qa_tokenizer_kind *kind;
    void *state;            /* the kind's struct, at the (16-aligned) start of its arena */
} qa_tokenizer;

/* The row named by the file's tokenizer.ggml.model, or NULL with err naming the model. */
const qa_tokenizer_kind *qa_tokenizer_kind_of(const qa_gguf *g, char *err, size_t err_len);

#endif
