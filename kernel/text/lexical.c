/* BM25 over an inverted index of a text store's passages: terms, build, check, search
 * (layout and term rule: lexical.h). */
#include "text/lexical.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "constants.h"
#include "errors.h"
#include "gguf/gguf.h"

enum { MAX_TERM = QA_LEXICAL_MAX_TERM_BYTES };

/* ---- terms ---------------------------------------------------------------------------- */

static int word_byte(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

uint64_t qa_lex_terms(const uint8_t *s, size_t len, qa_lex_term_fn fn, void *ctx) {
    uint8_t t[MAX_TERM];
    uint64_t count = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && !word_byte(s[i])) i++;
        if (i >= len) break;
        size_t n = 0, cut = 0; /* cut: the length at the last character boundary that fits */
        while (i < len && word_byte(s[i])) {
            uint8_t c = s[i];
            if (c >= 'A' && c <= 'Z') c += 32;
            /* Latin-1 capitals (U+00C0..U+00DE but U+00D7 ×) as C3 80..9E: lowercase is +0x20 */
            if (n > 0 && s[i - 1] == 0xC3 && c >= 0x80 && c <= 0x9E && c != 0x97)
                c += 0x20;
            if ((c & 0xC0) != 0x80 && n <= MAX_TERM) cut = n; /* a character starts here */
            if (n < MAX_TERM) t[n] = c;
            n++;
            i++;
        }
        if (n <= MAX_TERM) cut = n;
        if (cut == 0) continue; /* one character longer than MAX_TERM bytes: not possible in UTF-8 */
        fn(t, cut, ctx);
        count++;
    }
    return count;
}

/* ---- varints -------------------------------------------------------------------------- */

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a varint from *p (< end) into *v; 0 when it runs past end or over 35 bits. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (*p >= end) return 0;
        uint8_t c = *(*p)++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* ---- build ---------------------------------------------------------------------------- */

typedef struct {
    uint8_t *arena; /* term bytes, in order of first appearance */
    size_t arena_len, arena_cap;
    uint64_t *off; /* term -> (arena offset << 8) | length */
    uint32_t n_terms, off_cap;
    uint32_t *slots; /* open addressing: term + 1, 0 empty */
    uint32_t n_slots;
    uint32_t *doc; /* the current document's terms */
    size_t doc_len, doc_cap;
    int oom;
} builder;

static uint32_t hash(const uint8_t *t, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ t[i]) * 16777619u;
    return h;
}

static int grow(void **p, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * item);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

static int rehash(builder *b) {
    uint32_t n = b->n_slots ? b->n_slots * 2 : 1 << 16;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s) return 0;
    for (uint32_t t = 0; t < b->n_terms; t++) {
        uint32_t h = hash(b->arena + (b->off[t] >> 8), b->off[t] & 0xFF) & (n - 1);
        while (s[h]) h = (h + 1) & (n - 1);
        s[h] = t + 1;
    }
    free(b->slots);
    b->slots = s;
    b->n_slots = n;
    return 1;
}

static void add_term(const uint8_t *t, size_t n, void *ctx) {
    builder *b = ctx;
    if (b->oom) return;
    if ((uint64_t)b->n_terms * 2 >= b->n_slots && !rehash(b)) goto oom;
    uint32_t h = hash(t, n) & (b->n_slots - 1), id;
    for (;; h = (h + 1) & (b->n_slots - 1)) {
        if (!b->slots[h]) break;
        id = b->slots[h] - 1;
        if ((b->off[id] & 0xFF) == n && memcmp(b->arena + (b->off[id] >> 8), t, n) == 0) goto found;
    }
    size_t cap = b->off_cap;
    if (!grow((void **)&b->arena, &b->arena_cap, b->arena_len + n, 1) ||
        !grow((void **)&b->off, &cap, (size_t)b->n_terms + 1, sizeof *b->off))
        goto oom;
    b->off_cap = (uint32_t)cap;
    memcpy(b->arena + b->arena_len, t, n);
    b->off[b->n_terms] = ((uint64_t)b->arena_len << 8) | n;
    b->arena_len += n;
    id = b->n_terms++;
    b->slots[h] = id + 1;
found:
    if (!grow((void **)&b->doc, &b->doc_cap, b->doc_len + 1, sizeof *b->doc)) goto oom;
    b->doc[b->doc_len++] = id;
    return;
oom:
    b->oom = 1;
}

static int cmp_u32(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return (a > c) - (a < c);
}

typedef struct {
    const uint8_t *p;
    uint32_t len, id;
} term_ref;

static int cmp_term(const void *x, const void *y) {
    const term_ref *a = x, *c = y;
    int r = memcmp(a->p, c->p, a->len < c->len ? a->len : c->len);
    return r ? r : (a->len > c->len) - (a->len < c->len);
}

void qa_lex_built_free(qa_lex_built *b) {
    free(b->terms);
    free(b->postings);
    free(b->term_off);
    free(b->df);
    free(b->post_off);
    free(b->doc_len);
    memset(b, 0, sizeof *b);
}

int qa_lex_build(const uint8_t *bytes, const uint64_t *offsets, uint64_t n, qa_lex_built *out, char *err,
                 size_t err_size) {
    memset(out, 0, sizeof *out);
    if (n == 0 || n >= UINT32_MAX) {
        qa_format(err, err_size, "%llu texts: the lexical index takes 1..%u", (unsigned long long)n, UINT32_MAX - 1);
        return QA_ERR_ARG;
    }
    for (uint64_t i = 0; i < n; i++)
        if (offsets[i + 1] < offsets[i]) {
            qa_format(err, err_size, "text offsets decrease at %llu", (unsigned long long)i);
            return QA_ERR_ARG;
        }
    builder b = {0};
    uint32_t *p_term = NULL, *p_doc = NULL, *s_doc = NULL, *rank = NULL;
    term_ref *ord = NULL;
    uint16_t *p_tf = NULL, *s_tf = NULL;
    size_t np = 0, p_cap = 0, t_cap = 0, d_cap = 0;
    uint64_t *start = NULL;
    int rc = QA_ERR_NOMEM;
    out->doc_len = malloc(n * sizeof *out->doc_len);
    if (!out->doc_len) goto done;
    for (uint64_t d = 0; d < n; d++) {
        b.doc_len = 0;
        uint64_t len = qa_lex_terms(bytes + offsets[d], (size_t)(offsets[d + 1] - offsets[d]), add_term, &b);
        if (b.oom) goto done;
        out->doc_len[d] = (uint16_t)(len > 65535 ? 65535 : len);
        if (b.doc_len > 1) qsort(b.doc, b.doc_len, sizeof *b.doc, cmp_u32);
        for (size_t i = 0; i < b.doc_len;) {
            size_t j = i;
            while (j < b.doc_len && b.doc[j] == b.doc[i]) j++;
            if (!grow((void **)&p_term, &p_cap, np + 1, sizeof *p_term) ||
                !grow((void **)&p_doc, &d_cap, np + 1, sizeof *p_doc) ||
                !grow((void **)&p_tf, &t_cap, np + 1, sizeof *p_tf))
                goto done;
            p_term[np] = b.doc[i];
            p_doc[np] = (uint32_t)d;
            p_tf[np] = (uint16_t)(j - i > 65535 ? 65535 : j - i);
            np++;
            i = j;
        }
    }
    if (b.arena_len >= UINT32_MAX) {
        qa_format(err, err_size, "the terms take %zu bytes: more than 4 GiB", b.arena_len);
        rc = QA_ERR_ARG;
        goto done;
    }
    /* terms in byte order; each pair's term renumbered to its rank */
    uint32_t nt = b.n_terms;
    ord = malloc((nt ? nt : 1) * sizeof *ord);
    rank = malloc((nt ? nt : 1) * sizeof *rank);
    out->term_off = malloc(((size_t)nt + 1) * sizeof *out->term_off);
    out->terms = malloc(b.arena_len + 1); /* + 1: never an empty tensor */
    out->df = calloc(nt ? nt : 1, sizeof *out->df);
    out->post_off = malloc(((size_t)nt + 1) * sizeof *out->post_off);
    start = calloc((size_t)nt + 1, sizeof *start);
    s_doc = malloc((np ? np : 1) * sizeof *s_doc);
    s_tf = malloc((np ? np : 1) * sizeof *s_tf);
    out->postings = malloc(np * 8 + 1); /* a gap needs <= 5 bytes, a count <= 3 */
    if (!ord || !rank || !out->term_off || !out->terms || !out->df || !out->post_off || !start || !s_doc ||
        !s_tf || !out->postings)
        goto done;
    for (uint32_t t = 0; t < nt; t++) ord[t] = (term_ref){b.arena + (b.off[t] >> 8), (uint32_t)(b.off[t] & 0xFF), t};
    qsort(ord, nt, sizeof *ord, cmp_term);
    size_t at = 0;
    for (uint32_t r = 0; r < nt; r++) {
        rank[ord[r].id] = r;
        out->term_off[r] = (uint32_t)at;
        memcpy(out->terms + at, ord[r].p, ord[r].len);
        at += ord[r].len;
    }
    out->term_off[nt] = (uint32_t)at;
    out->terms[at] = 0;
    /* counting sort of the pairs by term; documents stay ascending within a term */
    for (size_t i = 0; i < np; i++) out->df[rank[p_term[i]]]++;
    for (uint32_t r = 0; r < nt; r++) start[r + 1] = start[r] + out->df[r];
    for (size_t i = 0; i < np; i++) {
        uint64_t k = start[rank[p_term[i]]]++;
        s_doc[k] = p_doc[i];
        s_tf[k] = p_tf[i];
    }
    uint8_t *w = out->postings;
    size_t k = 0;
    for (uint32_t r = 0; r < nt; r++) {
        out->post_off[r] = (uint64_t)(w - out->postings);
        uint32_t prev = 0;
        for (uint32_t j = 0; j < out->df[r]; j++, k++) {
            w = put_varint(w, s_doc[k] - prev);
            w = put_varint(w, s_tf[k]);
            prev = s_doc[k];
        }
    }
    out->post_off[nt] = (uint64_t)(w - out->postings);
    *w = 0;
    qa_lex *lx = &out->lex;
    lx->n_docs = n;
    lx->n_terms = nt;
    lx->terms = out->terms;
    lx->terms_len = at + 1;
    lx->term_off = out->term_off;
    lx->df = out->df;
    lx->post_off = out->post_off;
    lx->postings = out->postings;
    lx->postings_len = out->post_off[nt] + 1;
    lx->doc_len = out->doc_len;
    uint64_t sum = 0;
    for (uint64_t d = 0; d < n; d++) sum += out->doc_len[d];
    lx->avg_len = sum ? (double)sum / (double)n : 1.0;
    rc = QA_OK;
done:
    if (rc == QA_ERR_NOMEM) qa_format(err, err_size, "out of memory building the lexical index");
    if (rc) qa_lex_built_free(out);
    free(b.arena);
    free(b.off);
    free(b.slots);
    free(b.doc);
    free(p_term);
    free(p_doc);
    free(p_tf);
    free(s_doc);
    free(s_tf);
    free(ord);
    free(rank);
    free(start);
    return rc;
}

/* ---- check ---------------------------------------------------------------------------- */

int qa_lex_check(qa_lex *lx, char *err, size_t err_size) {
#define BAD(...)                                  \
    do {                                          \
        qa_format(err, err_size, __VA_ARGS__);    \
        return QA_ERR_FORMAT;                     \
    } while (0)
    if (lx->n_docs == 0 || lx->n_docs >= UINT32_MAX) BAD("lexical index over %llu documents", (unsigned long long)lx->n_docs);
    if (lx->term_off[0] != 0 || lx->post_off[0] != 0) BAD("lexical index offsets do not start at 0");
    for (uint64_t t = 0; t < lx->n_terms; t++) {
        uint32_t a = lx->term_off[t], b = lx->term_off[t + 1];
        if (b <= a || b - a > MAX_TERM || b > lx->terms_len) BAD("lexical term %llu out of bounds", (unsigned long long)t);
        if (t > 0) { /* strictly increasing, bytewise */
            uint32_t pa = lx->term_off[t - 1];
            size_t lp = a - pa, l = b - a;
            int r = memcmp(lx->terms + pa, lx->terms + a, lp < l ? lp : l);
            if (r > 0 || (r == 0 && lp >= l)) BAD("lexical terms out of order at %llu", (unsigned long long)t);
        }
        if (lx->post_off[t + 1] < lx->post_off[t] || lx->post_off[t + 1] > lx->postings_len)
            BAD("postings of lexical term %llu out of bounds", (unsigned long long)t);
        if (lx->df[t] == 0 || lx->df[t] > lx->n_docs) BAD("lexical term %llu: document frequency %u", (unsigned long long)t, lx->df[t]);
        const uint8_t *p = lx->postings + lx->post_off[t], *end = lx->postings + lx->post_off[t + 1];
        uint64_t doc = 0;
        for (uint32_t j = 0; j < lx->df[t]; j++) {
            uint64_t gap, tf;
            if (!get_varint(&p, end, &gap) || !get_varint(&p, end, &tf) || (j > 0 && gap == 0) || tf == 0 ||
                (doc += gap) >= lx->n_docs)
                BAD("postings of lexical term %llu are corrupt", (unsigned long long)t);
        }
        if (p != end) BAD("postings of lexical term %llu are corrupt", (unsigned long long)t);
    }
    uint64_t sum = 0;
    for (uint64_t d = 0; d < lx->n_docs; d++) sum += lx->doc_len[d];
    lx->avg_len = sum ? (double)sum / (double)lx->n_docs : 1.0; /* no terms at all: no division by 0 */
    return QA_OK;
#undef BAD
}

/* ---- search --------------------------------------------------------------------------- */

int64_t qa_lex_find(const qa_lex *lx, const uint8_t *term, size_t len) {
    uint64_t lo = 0, hi = lx->n_terms;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        uint32_t a = lx->term_off[mid], l = lx->term_off[mid + 1] - a;
        int r = memcmp(lx->terms + a, term, l < len ? l : len);
        if (r == 0) r = (l > len) - (l < len);
        if (r == 0) return (int64_t)mid;
        if (r < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

typedef struct {
    const qa_lex *lx;
    uint32_t *ids;
    size_t n, cap;
    int oom;
} query_terms;

static void query_term(const uint8_t *t, size_t n, void *ctx) {
    query_terms *q = ctx;
    int64_t id = qa_lex_find(q->lx, t, n);
    if (id < 0 || q->oom) return;
    if (!grow((void **)&q->ids, &q->cap, q->n + 1, sizeof *q->ids)) {
        q->oom = 1;
        return;
    }
    q->ids[q->n++] = (uint32_t)id;
}

/* a better result: higher score, then lower position */
static int better(float sa, uint32_t da, float sb, uint32_t db) { return sa > sb || (sa == sb && da < db); }

int64_t qa_lex_search(const qa_lex *lx, const uint8_t *query, size_t len, int64_t k, uint32_t *out_doc,
                      float *out_score) {
    if (k <= 0) return 0;
    query_terms q = {lx, NULL, 0, 0, 0};
    qa_lex_terms(query, len, query_term, &q);
    if (q.oom) {
        free(q.ids);
        return QA_ERR_NOMEM;
    }
    if (q.n == 0) {
        free(q.ids);
        return 0;
    }
    qsort(q.ids, q.n, sizeof *q.ids, cmp_u32); /* a fixed order of summation; repeats once */
    float *acc = calloc(lx->n_docs, sizeof *acc);
    if (!acc) {
        free(q.ids);
        return QA_ERR_NOMEM;
    }
    const float k1 = (float)QA_LEXICAL_K1, b = (float)QA_LEXICAL_B, avg = (float)lx->avg_len;
    const double N = (double)lx->n_docs;
    /* common terms (df > common_df * N: "a", "the", "is") are skipped when the query has a
     * rarer one: their postings are most of a search's work, their idf at most ln 4 */
    const double common = QA_LEXICAL_COMMON_DF * N;
    int skip_common = 0;
    for (size_t i = 0; i < q.n; i++) skip_common |= lx->df[q.ids[i]] <= common;
    for (size_t i = 0; i < q.n; i++) {
        if (i > 0 && q.ids[i] == q.ids[i - 1]) continue;
        uint32_t t = q.ids[i];
        if (skip_common && lx->df[t] > common) continue;
        const float idf = (float)log(1.0 + (N - lx->df[t] + 0.5) / (lx->df[t] + 0.5));
        const uint8_t *p = lx->postings + lx->post_off[t], *end = lx->postings + lx->post_off[t + 1];
        uint64_t doc = 0;
        for (uint32_t j = 0; j < lx->df[t]; j++) {
            uint64_t gap = 0, tf = 1;
            get_varint(&p, end, &gap); /* checked on open (qa_lex_check) */
            get_varint(&p, end, &tf);
            doc += gap;
            const float f = (float)tf, norm = k1 * (1.0f - b + b * (float)lx->doc_len[doc] / avg);
            acc[doc] += idf * (f * (k1 + 1.0f)) / (f + norm);
        }
    }
    free(q.ids);
    /* top k: a min-heap of the best so far, its worst at the root */
    int64_t m = 0;
    for (uint64_t d = 0; d < lx->n_docs; d++) {
        float s = acc[d];
        if (s <= 0.0f) continue;
        if (m == k && !better(s, (uint32_t)d, out_score[0], out_doc[0])) continue;
        int64_t i;
        if (m < k) { /* sift up from the end */
            i = m++;
            while (i > 0) {
                int64_t p = (i - 1) / 2;
                if (!better(out_score[p], out_doc[p], s, (uint32_t)d)) break;
                out_score[i] = out_score[p];
                out_doc[i] = out_doc[p];
                i = p;
            }
        } else { /* replace the root, sift down */
            i = 0;
            for (;;) {
                int64_t c = 2 * i + 1;
                if (c >= m) break;
                if (c + 1 < m && better(out_score[c], out_doc[c], out_score[c + 1], out_doc[c + 1])) c++;
                if (!better(s, (uint32_t)d, out_score[c], out_doc[c])) break;
                out_score[i] = out_score[c];
                out_doc[i] = out_doc[c];
                i = c;
            }
        }
        out_score[i] = s;
        out_doc[i] = (uint32_t)d;
    }
    free(acc);
    /* heap -> best first: pop the worst to the end */
    for (int64_t e = m - 1; e > 0; e--) {
        float s = out_score[e];
        uint32_t d = out_doc[e];
        out_score[e] = out_score[0];
        out_doc[e] = out_doc[0];
        int64_t i = 0;
        for (;;) {
            int64_t c = 2 * i + 1;
            if (c >= e) break;
            if (c + 1 < e && better(out_score[c], out_doc[c], out_score[c + 1], out_doc[c + 1])) c++;
            if (!better(s, d, out_score[c], out_doc[c])) break;
            out_score[i] = out_score[c];
            out_doc[i] = out_doc[c];
            i = c;
        }
        out_score[i] = s;
        out_doc[i] = d;
    }
    return m;
}
