/* BERT WordPiece tokenizer (wordpiece.h): the vocabulary index over the file's token
 * strings, and the uncased BERT pipeline. */
#include "wordpiece.h"

#include <stdio.h>
#include <string.h>

#include "wordpiece_tables.h"

static int get_id(const qa_gguf *g, const char *key, uint32_t hi, int *out, char *err, size_t err_len) {
    uint32_t v;
    if (qa_gguf_get_u32(g, key, &v) != QA_OK) {
        qa_set_err(err, err_len, "missing or non-integer metadata key '%s'", key);
        return QA_ERR_FORMAT;
    }
    if (v > hi) {
        qa_set_err(err, err_len, "metadata '%s' = %u out of range [0, %u]", key, v, hi);
        return QA_ERR_FORMAT;
    }
    *out = (int)v;
    return QA_OK;
}

#define TRY(x)                        \
    do {                              \
        int rc_ = (x);                \
        if (rc_ != QA_OK) return rc_; \
    } while (0)

/* ---------------------------------------------------------------- vocabulary index */

static uint32_t fnv1a(const uint8_t *s, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

static uint32_t hash_cap(uint64_t n_vocab) {
    uint32_t cap = 1024;
    while (cap < n_vocab * 2) cap <<= 1;
    return cap;
}

uint64_t qa_wordpiece_arena_size(const qa_gguf *g) {
    const qa_gguf_kv *t = qa_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!t || t->type != QA_GV_ARRAY || t->arr_type != QA_GV_STRING || t->arr_n == 0 ||
        t->arr_n > (1u << 24))
        return 0;
    return (sizeof(qa_wordpiece) + 15) / 16 * 16 + t->arr_n * (sizeof(const uint8_t *) + sizeof(uint32_t)) +
           (uint64_t)hash_cap(t->arr_n) * 4 + 64;
}

int qa_wordpiece_find(const qa_wordpiece *m, const uint8_t *s, uint32_t n) {
    uint32_t h = fnv1a(s, n) & m->hash_mask;
    for (;;) {
        uint32_t e = m->hash[h];
        if (!e) return -1;
        uint32_t id = e - 1;
        if (m->tok_len[id] == n && !memcmp(m->tok_str[id], s, n)) return (int)id;
        h = (h + 1) & m->hash_mask;
    }
}

int qa_wordpiece_init(void *arena, const qa_gguf *g, uint64_t arena_size, char *err, size_t err_len) {
    qa_wordpiece *m = (qa_wordpiece *)(((uintptr_t)arena + 15) & ~(uintptr_t)15);
    memset(m, 0, sizeof *m);
    const qa_gguf_kv *toks = qa_gguf_find_kv(g, "tokenizer.ggml.tokens");
    uint64_t need = qa_wordpiece_arena_size(g);
    if (!toks || !need) {
        qa_set_err(err, err_len, "missing or bad tokenizer.ggml.tokens");
        return QA_ERR_FORMAT;
    }
    if (arena_size < need) {
        qa_set_err(err, err_len, "model arena too small");
        return QA_ERR_SPACE;
    }
    m->n_vocab = (int)toks->arr_n;
    uint8_t *a = (uint8_t *)(((uintptr_t)arena + 15) & ~(uintptr_t)15) + (sizeof(qa_wordpiece) + 15) / 16 * 16;
    m->tok_str = (const uint8_t **)a;
    a += (uint64_t)m->n_vocab * sizeof(const uint8_t *);
    m->tok_len = (uint32_t *)a;
    a += (uint64_t)m->n_vocab * 4;
    uint32_t cap = hash_cap(toks->arr_n);
    m->hash = (uint32_t *)a;
    m->hash_mask = cap - 1;
    memset(m->hash, 0, (size_t)cap * 4);
    const uint8_t *p = toks->val; /* strings validated by the parser */
    for (int i = 0; i < m->n_vocab; i++) {
        uint64_t n = 0;
        for (int b = 7; b >= 0; b--) n = n << 8 | p[b];
        if (n > 1024) {
            qa_set_err(err, err_len, "token %d is %llu bytes long", i, (unsigned long long)n);
            return QA_ERR_FORMAT;
        }
        m->tok_str[i] = p + 8;
        m->tok_len[i] = (uint32_t)n;
        p += 8 + n;
        if (qa_wordpiece_find(m, m->tok_str[i], m->tok_len[i]) >= 0) continue; /* first id wins */
        uint32_t h = fnv1a(m->tok_str[i], m->tok_len[i]) & m->hash_mask;
        while (m->hash[h]) h = (h + 1) & m->hash_mask;
        m->hash[h] = (uint32_t)i + 1;
    }
    const qa_gguf_kv *tt = qa_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (tt && tt->type == QA_GV_ARRAY && tt->arr_type == QA_GV_I32 && tt->arr_n == toks->arr_n) {
        for (int i = 0; i < m->n_vocab && m->n_control < 16; i++) {
            const uint8_t *q = tt->val + 4 * (uint64_t)i;
            int32_t ty = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24);
            if (ty == 3 && m->tok_len[i] > 0) m->control_ids[m->n_control++] = (uint32_t)i;
        }
    }
    uint32_t hi = (uint32_t)m->n_vocab - 1;
    if (qa_gguf_find_kv(g, "quantann.cls_token_id"))
        TRY(get_id(g, "quantann.cls_token_id", hi, &m->cls_id, err, err_len));
    else
        TRY(get_id(g, "tokenizer.ggml.bos_token_id", hi, &m->cls_id, err, err_len));
    if (qa_gguf_find_kv(g, "tokenizer.ggml.seperator_token_id"))
        TRY(get_id(g, "tokenizer.ggml.seperator_token_id", hi, &m->sep_id, err, err_len));
    else
        TRY(get_id(g, "tokenizer.ggml.eos_token_id", hi, &m->sep_id, err, err_len));
    TRY(get_id(g, "tokenizer.ggml.unknown_token_id", hi, &m->unk_id, err, err_len));
    m->pad_id = 0;
    if (qa_gguf_find_kv(g, "tokenizer.ggml.padding_token_id"))
        TRY(get_id(g, "tokenizer.ggml.padding_token_id", hi, &m->pad_id, err, err_len));
    m->max_word_chars = 100;

    return QA_OK;
}

/* ---------------------------------------------------------------- tokenizer */

static uint32_t uc_flags(uint32_t c) {
    int lo = 0, hi = (int)(sizeof qa_wp_ranges / sizeof qa_wp_ranges[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < qa_wp_ranges[mid][0]) hi = mid - 1;
        else if (c > qa_wp_ranges[mid][1]) lo = mid + 1;
        else return qa_wp_ranges[mid][2];
    }
    return 0;
}

/* Normalised form of one character (NFD, accents dropped, lower-cased); returns its length. */
static int uc_map(uint32_t c, uint32_t out[8]) {
    if (c < 0x80) {
        out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        return 1;
    }
    if (c >= 0xAC00 && c <= 0xD7A3) { /* Hangul syllable -> L V (T) jamo */
        uint32_t s = c - 0xAC00, t = s % 28;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        if (t) out[2] = 0x11A7 + t;
        return t ? 3 : 2;
    }
    int lo = 0, hi = (int)(sizeof qa_wp_map / sizeof qa_wp_map[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < qa_wp_map[mid][0]) hi = mid - 1;
        else if (c > qa_wp_map[mid][0]) lo = mid + 1;
        else {
            int n = (int)qa_wp_map[mid][2];
            if (n > 8) n = 8;
            for (int i = 0; i < n; i++) out[i] = qa_wp_pool[qa_wp_map[mid][1] + i];
            return n;
        }
    }
    out[0] = c;
    return 1;
}

/* Decodes one UTF-8 character at s[*i]; malformed input yields U+FFFD and advances one byte. */
static uint32_t utf8_next(const uint8_t *s, uint64_t n, uint64_t *i) {
    uint8_t b = s[*i];
    if (b < 0x80) { (*i)++; return b; }
    int len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
    if (!len || b > 0xF4 || *i + len > n) { (*i)++; return 0xFFFD; }
    uint32_t c = b & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        uint8_t cb = s[*i + k];
        if ((cb & 0xC0) != 0x80) { (*i)++; return 0xFFFD; }
        c = c << 6 | (cb & 0x3F);
    }
    static const uint32_t minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < minv[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) { (*i)++; return 0xFFFD; }
    *i += len;
    return c;
}

#define WORD_BYTES 512 /* 3 ("\u2581") + up to 100 characters of <= 4 bytes, with room */

typedef struct {
    const qa_wordpiece *m;
    int32_t *ids;
    int n, limit;         /* ids written; the last slot is kept for [SEP] */
    uint8_t buf[WORD_BYTES];
    int nb;               /* bytes of the current word after the 3-byte prefix */
    int nc;               /* characters of the current word */
    uint16_t off[128];    /* byte offset (after prefix) of each character, + end */
    int32_t pieces[128];
} tok_state;

static int emit(tok_state *st, int32_t id) {
    if (st->n >= st->limit) return 0;
    st->ids[st->n++] = id;
    return 1;
}

/* WordPiece of the current word; returns 0 when the id limit is reached. */
static int flush(tok_state *st) {
    int nc = st->nc, ok = 1;
    if (!nc) return 1;
    st->nc = 0;
    if (nc > st->m->max_word_chars) {
        st->nb = 0;
        return emit(st, st->m->unk_id);
    }
    st->off[nc] = (uint16_t)st->nb;
    st->nb = 0;
    int np = 0, start = 0;
    while (start < nc) {
        int end = nc, id = -1;
        for (; end > start; end--) {
            const uint8_t *s = start == 0 ? st->buf : st->buf + 3 + st->off[start];
            uint32_t len = (uint32_t)(st->off[end] - st->off[start]) + (start == 0 ? 3 : 0);
            id = qa_wordpiece_find(st->m, s, len);
            if (id >= 0) break;
        }
        if (id < 0) return emit(st, st->m->unk_id);
        st->pieces[np++] = id;
        start = end;
    }
    for (int i = 0; i < np && ok; i++) ok = emit(st, st->pieces[i]);
    return ok;
}

static int push_char(tok_state *st, uint32_t c) {
    if (st->nc >= st->m->max_word_chars || st->nc >= 127) { /* too long: counts only */
        if (st->nc < 1 << 30) st->nc++;
        return 1;
    }
    uint8_t *p = st->buf + 3 + st->nb;
    st->off[st->nc++] = (uint16_t)st->nb;
    if (c < 0x80) { p[0] = (uint8_t)c; st->nb += 1; }
    else if (c < 0x800) { p[0] = 0xC0 | c >> 6; p[1] = 0x80 | (c & 63); st->nb += 2; }
    else if (c < 0x10000) { p[0] = 0xE0 | c >> 12; p[1] = 0x80 | (c >> 6 & 63); p[2] = 0x80 | (c & 63); st->nb += 3; }
    else { p[0] = 0xF0 | c >> 18; p[1] = 0x80 | (c >> 12 & 63); p[2] = 0x80 | (c >> 6 & 63); p[3] = 0x80 | (c & 63); st->nb += 4; }
    return 1;
}

int qa_wordpiece_encode(const void *w, const uint8_t *text, uint64_t len, int32_t *ids, int max_tokens) {
    const qa_wordpiece *m = (const qa_wordpiece *)w;
    if (max_tokens < 2) return 0;
    tok_state st;
    st.m = m;
    st.ids = ids;
    st.n = 0;
    st.limit = max_tokens - 1;
    st.nb = st.nc = 0;
    st.buf[0] = 0xE2; st.buf[1] = 0x96; st.buf[2] = 0x81; /* U+2581, llama.cpp's word-start mark */
    emit(&st, m->cls_id);
    uint64_t i = 0;
    int more = 1;
    while (i < len && more) {
        if (text[i] == '[') { /* special tokens written literally ([SEP], [MASK], ...) */
            int hit = -1;
            for (int c = 0; c < m->n_control; c++) {
                uint32_t id = m->control_ids[c], n = m->tok_len[id];
                if (n <= len - i && !memcmp(text + i, m->tok_str[id], n)) { hit = (int)id; break; }
            }
            if (hit >= 0) {
                more = flush(&st) && emit(&st, hit);
                i += m->tok_len[hit];
                continue;
            }
        }
        uint32_t c = utf8_next(text, len, &i);
        uint32_t f = uc_flags(c);
        if (c == 0 || c == 0xFFFD || (f & QA_WP_CTRL)) continue;
        if (f & QA_WP_WS) { more = flush(&st); continue; }
        if (f & QA_WP_CJK) more = flush(&st);
        uint32_t mc[8];
        int k = uc_map(c, mc);
        for (int j = 0; j < k && more; j++) {
            uint32_t g = mc[j] == c ? f : uc_flags(mc[j]);
            if (g & QA_WP_WS) more = flush(&st);
            else if (g & QA_WP_PUNCT) more = flush(&st) && push_char(&st, mc[j]) && flush(&st);
            else push_char(&st, mc[j]);
        }
        if (more && (f & QA_WP_CJK)) more = flush(&st);
    }
    if (more) flush(&st);
    ids[st.n++] = m->sep_id;
    return st.n;
}
