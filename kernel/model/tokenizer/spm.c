/* SentencePiece-style BPE (tokenizer.ggml.model = llama: TinyLlama, Llama 2, Gemma).
 *
 * Spaces become U+2581, one is put before the text when add_space_prefix says so; symbols
 * start as the UTF-8 characters of that text and the adjacent pair whose concatenation is the
 * highest-scoring token merges first (leftmost on ties), from a binary heap. A character that
 * is no token falls back to its bytes as <0xXX> tokens. This is llama.cpp's SPM session.
 */
#include <string.h>

#include "merge_heap.h"
#include "tokenizer.h"

typedef struct {
    uint32_t off, n;
    int32_t prev, next;
    int32_t id;            /* token of the symbol once merged, -1 before */
} sym;

typedef struct {
    float score;
    uint32_t left, right, size;
    int32_t id;
} pair;

#define ALIGN8(x) (((x) + 7) & ~(uint64_t)7)

uint64_t qa_spm_scratch_size(uint64_t len) {
    uint64_t r = 3 * (len + 1) + 4;
    return ALIGN8(r) + ALIGN8(r * sizeof(sym)) + ALIGN8(2 * r * sizeof(pair)) + 64;
}

static int pair_before(const pair *a, const pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

QA_DEFINE_MERGE_HEAP(pair, pair_before)

static void try_pair(const qa_tok *t, const uint8_t *text, const sym *s, pair *h, uint32_t *nh,
                     int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    uint32_t size = s[l].n + s[r].n;
    int32_t id = qa_tok_find(t, text + s[l].off, size); /* the two are adjacent in text */
    if (id < 0) return;
    heap_push(h, nh, (pair){t->score[id], (uint32_t)l, (uint32_t)r, size, id});
}

static int32_t byte_fallback(const qa_tok *t, uint8_t b) {
    if (t->byte_id[b] >= 0) return t->byte_id[b];
    int32_t id = qa_tok_find(t, &b, 1);
    return id >= 0 ? id : t->unk;
}

uint64_t qa_spm_encode(const qa_tok *t, const uint8_t *text, uint64_t len, int space_prefix,
                       int32_t *ids, void *scratch) {
    static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    uint8_t *e = scratch;
    uint64_t r = 3 * (len + 1) + 4;
    sym *s = (sym *)(e + ALIGN8(r));
    pair *h = (pair *)((uint8_t *)s + ALIGN8(r * sizeof(sym)));

    uint64_t m = 0;
    if (space_prefix) {
        memcpy(e, "\xE2\x96\x81", 3);
        m = 3;
    }
    for (uint64_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e + m, "\xE2\x96\x81", 3);
            m += 3;
        } else {
            e[m++] = text[i];
        }
    }
    if (!m) return 0;
    uint32_t n = 0;
    for (uint64_t o = 0; o < m; n++) {
        uint64_t l = utf8_len[e[o] >> 4];
        if (l > m - o) l = m - o;
        s[n] = (sym){(uint32_t)o, (uint32_t)l, (int32_t)n - 1, -1, -1};
        o += l;
        if (o < m) s[n].next = (int32_t)n + 1;
    }
    uint32_t nh = 0;
    for (uint32_t i = 0; i + 1 < n; i++) try_pair(t, e, s, h, &nh, (int32_t)i, (int32_t)i + 1);
    while (nh) {
        pair p = heap_pop(h, &nh);
        sym *a = &s[p.left], *b = &s[p.right];
        if (!a->n || !b->n || a->n + b->n != p.size) continue; /* one side changed */
        a->n += b->n;
        a->id = p.id;
        b->n = 0;
        a->next = b->next;
        if (b->next >= 0) s[b->next].prev = (int32_t)p.left;
        try_pair(t, e, s, h, &nh, a->prev, (int32_t)p.left);
        try_pair(t, e, s, h, &nh, (int32_t)p.left, a->next);
    }
    uint64_t k = 0;
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        int32_t id = s[i].id >= 0 ? s[i].id : qa_tok_find(t, e + s[i].off, s[i].n);
        if (id >= 0) {
            ids[k++] = id;
            continue;
        }
        for (uint32_t j = 0; j < s[i].n; j++) {
            int32_t b = byte_fallback(t, e[s[i].off + j]);
            if (b >= 0) ids[k++] = b;
        }
    }
    return k;
}
