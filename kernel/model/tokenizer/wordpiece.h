/* BERT WordPiece from a GGUF vocabulary (tokenizer.ggml.model = "bert", llama.cpp's layout:
 * word-initial pieces carry U+2581, continuations are bare). Uncased BERT normalisation:
 * clean-up, CJK split, NFD accent strip, lower-case, whitespace/punctuation split, then
 * greedy longest-match pieces. */
#ifndef QA_WORDPIECE_H
#define QA_WORDPIECE_H

#include <stdint.h>

#include "../../gguf/gguf.h"

typedef struct {
    int32_t n_vocab;
    /* vocabulary: strings point into the file; open-addressing hash of ids */
    const uint8_t **tok_str;
    uint32_t *tok_len;
    uint32_t *hash;       /* id + 1, 0 = empty */
    uint32_t hash_mask;
    int n_control;        /* control tokens ([CLS], ...) matched literally in input text */
    uint32_t control_ids[16];
    int max_word_chars;   /* longer words become [UNK] (100, as BERT) */
    int cls_id, sep_id, unk_id, pad_id;
} qa_wordpiece;

/* Arena bytes for this file's vocabulary, the qa_wordpiece itself included (0 if the
 * vocabulary is missing or bad). */
uint64_t qa_wordpiece_arena_size(const qa_gguf *g);
/* The qa_wordpiece is placed at the start of the arena. */
int qa_wordpiece_init(void *arena, const qa_gguf *g, uint64_t arena_size, char *err, size_t err_len);

/* Token id of a piece (bytes), or -1. */
int qa_wordpiece_find(const qa_wordpiece *w, const uint8_t *s, uint32_t n);

/* [CLS] pieces [SEP] of UTF-8 text, at most max_tokens ids in all (pieces are truncated,
 * [SEP] kept). Returns the number of ids written. Invalid UTF-8 bytes are read as U+FFFD
 * (and so removed, as BERT's clean-up does). */
int qa_wordpiece_encode(const void *w, const uint8_t *text, uint64_t len, int32_t *ids, int max_tokens);

#endif
