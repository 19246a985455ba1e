/* The tokenizer kinds table (tokenizer.h). */
#include "tokenizer.h"

#include <string.h>

#include "tokenizer/wordpiece.h"

static int32_t wordpiece_n_vocab(const void *s) { return ((const qa_wordpiece *)s)->n_vocab; }

static const qa_tokenizer_kind kinds[] = {
    {"bert", qa_wordpiece_arena_size, qa_wordpiece_init, qa_wordpiece_encode, wordpiece_n_vocab},
};

const qa_tokenizer_kind *qa_tokenizer_kind_of(const qa_gguf *g, char *err, size_t err_len) {
    const qa_gguf_kv *kv = qa_gguf_find_kv(g, "tokenizer.ggml.model");
    if (!kv || kv->type != QA_GV_STRING) {
        qa_set_err(err, err_len, "missing tokenizer.ggml.model");
        return NULL;
    }
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--) n = n << 8 | kv->val[b];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (n == strlen(kinds[i].name) && !memcmp(kv->val + 8, kinds[i].name, n)) return &kinds[i];
    qa_set_err(err, err_len, "unsupported tokenizer.ggml.model '%.*s' (supported: bert)", (int)(n < 64 ? n : 64),
               (const char *)kv->val + 8);
    return NULL;
}
