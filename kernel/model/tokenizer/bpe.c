/* Byte-level BPE (tokenizer.ggml.model = gpt2).
 *
 * Works on raw bytes: the vocabulary was keyed on the bytes its byte-level strings stand for,
 * so a word's initial symbols are its bytes and the GPT-2 byte<->unicode mapping is never
 * applied to text. Merges go lowest rank first, leftmost on ties (llama.cpp's order), from a
 * binary heap of candidate pairs; a popped pair is stale if either side changed since it was
 * pushed. Text is read as llama.cpp reads it: invalid UTF-8 bytes become U+FFFD.
 */
#include <string.h>

#include "merge_heap.h"
#include "tokenizer.h"

typedef struct {
    int32_t id;            /* token of the symbol's bytes (-1: a byte with no token) */
    uint32_t off, n;       /* bytes of the word */
    int32_t prev, next;
} sym;

typedef struct {
    uint32_t rank, left, right;
    int32_t lid, rid;      /* the ids the pair was made of */
    int32_t out;           /* the merged token */
} pair;

#define ALIGN8(x) (((x) + 7) & ~(uint64_t)7)

/* Layout for a fragment of len bytes: codepoints, their byte offsets, classes, the text
 * re-encoded (U+FFFD for bad bytes: up to 3 bytes each), symbols and heap over one word. */
uint64_t qa_bpe_scratch_size(uint64_t len) {
    uint64_t r = 3 * len + 4;
    return ALIGN8(4 * len) + ALIGN8(4 * (len + 1)) + ALIGN8(len) + ALIGN8(r) + ALIGN8(r * sizeof(sym)) +
           ALIGN8(2 * r * sizeof(pair)) + 64;
}

static int pair_less(const pair *a, const pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

QA_DEFINE_MERGE_HEAP(pair, pair_less)

static int merge_find(const qa_tok *t, int32_t a, int32_t b, uint32_t *rank, int32_t *out) {
    if (a < 0 || b < 0) return 0;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint64_t k = key * 0x9E3779B97F4A7C15ull;
    uint32_t h = (uint32_t)(k >> 32) & t->merge_mask;
    for (;;) {
        const qa_tok_merge *m = &t->merges[h];
        if (!m->rank) return 0;
        if (m->key == key) {
            *rank = m->rank;
            *out = m->out;
            return 1;
        }
        h = (h + 1) & t->merge_mask;
    }
}

static void try_pair(const qa_tok *t, const sym *s, pair *h, uint32_t *nh, int32_t l, int32_t r) {
    uint32_t rank;
    int32_t out;
    if (l < 0 || r < 0 || !merge_find(t, s[l].id, s[r].id, &rank, &out)) return;
    heap_push(h, nh, (pair){rank, (uint32_t)l, (uint32_t)r, s[l].id, s[r].id, out});
}

/* One pre-tokenized word (raw bytes) -> ids. */
static uint64_t bpe_word(const qa_tok *t, const uint8_t *w, uint32_t n, int32_t *ids, sym *s, pair *h) {
    if (t->ignore_merges) {
        int32_t id = qa_tok_find(t, w, n);
        if (id >= 0) {
            ids[0] = id;
            return 1;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        s[i] = (sym){t->byte_id[w[i]], i, 1, (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    uint32_t nh = 0;
    for (uint32_t i = 0; i + 1 < n; i++) try_pair(t, s, h, &nh, (int32_t)i, (int32_t)i + 1);
    while (nh) {
        pair p = heap_pop(h, &nh);
        sym *l = &s[p.left], *r = &s[p.right];
        if (!l->n || !r->n || l->next != (int32_t)p.right || l->id != p.lid || r->id != p.rid) continue;
        l->id = p.out;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = (int32_t)p.left;
        try_pair(t, s, h, &nh, l->prev, (int32_t)p.left);
        try_pair(t, s, h, &nh, (int32_t)p.left, l->next);
    }
    uint64_t k = 0;
    for (int32_t i = 0; i >= 0; i = s[i].next)
        if (s[i].id >= 0) ids[k++] = s[i].id; /* a byte without a token is dropped, as llama.cpp */
    return k;
}

uint64_t qa_bpe_encode(const qa_tok *t, const uint8_t *text, uint64_t len, int32_t *ids, void *scratch) {
    uint8_t *p = scratch;
    uint32_t *cp = (uint32_t *)p;
    p += ALIGN8(4 * len);
    uint32_t *off = (uint32_t *)p;
    p += ALIGN8(4 * (len + 1));
    uint8_t *cls = p;
    p += ALIGN8(len);
    uint8_t *bytes = p;
    p += ALIGN8(3 * len + 4);
    sym *s = (sym *)p;
    p += ALIGN8((3 * len + 4) * sizeof(sym));
    pair *h = (pair *)p;

    uint64_t n = 0, o = 0;
    for (uint64_t i = 0; i < len;) {
        uint32_t used;
        uint32_t c = qa_utf8_next(text + i, len - i, &used);
        cp[n] = c;
        cls[n] = qa_uc_class(c);
        off[n++] = (uint32_t)o;
        o += qa_utf8_put(c, bytes + o);
        i += used;
    }
    off[n] = (uint32_t)o;

    qa_pretok pt;
    qa_pretok_begin(&pt, t->pre, cp, cls, n);
    uint64_t a, b, k = 0;
    while (qa_pretok_next(&pt, &a, &b))
        k += bpe_word(t, bytes + off[a], off[b] - off[a], ids + k, s, h);
    return k;
}
