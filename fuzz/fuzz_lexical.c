/* libFuzzer target: the lexical index (kernel/text/lexical.c, fuse.c).
 *
 * The input is texts, one per line; the first line is the query. The index built from the
 * others must pass its own check, and its search must give at most k documents, best first,
 * each < n. Then the built arrays are damaged (bytes flipped where the query's bytes say),
 * each copied into a buffer of exactly its length so that ASan catches any read past it: the
 * check must refuse or pass, never crash, and a passing index must search without crashing.
 * Build and run: fuzz/run.sh lexical (make fuzz).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "text/lexical.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void search_checked(const qa_lex *l, const uint8_t *q, size_t qn) {
    enum { K = 7 };
    uint32_t doc[K];
    float sc[K];
    int64_t m = qa_lex_search(l, q, qn, K, doc, sc);
    CHECK(m >= 0 && m <= K);
    for (int64_t i = 0; i < m; i++) {
        CHECK(doc[i] < l->n_docs && sc[i] > 0);
        if (i) CHECK(sc[i] < sc[i - 1] || (sc[i] == sc[i - 1] && doc[i] > doc[i - 1]));
    }
}

static void *dup(const void *p, size_t n) {
    void *q = malloc(n ? n : 1);
    memcpy(q, p, n);
    return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    const uint8_t *nl = memchr(d, '\n', n);
    size_t qn = nl ? (size_t)(nl - d) : n;
    const uint8_t *body = nl ? nl + 1 : d + n;
    size_t bn = (size_t)(d + n - body);
    uint64_t cap = 1, count = 0;
    for (size_t i = 0; i < bn; i++) cap += body[i] == '\n';
    uint64_t *off = malloc(sizeof *off * (cap + 1));
    off[0] = 0;
    for (size_t i = 0; i < bn; i++)
        if (body[i] == '\n') off[++count] = i + 1;
    off[++count] = bn; /* the last text runs to the end (its line break, if any, is in it: harmless) */
    qa_lex_built b;
    char err[256];
    int rc = qa_lex_build(body, off, count, &b, err, sizeof err);
    free(off);
    if (rc) {
        CHECK(rc == QA_ERR_NOMEM);
        return 0;
    }
    qa_lex l = b.lex;
    CHECK(qa_lex_check(&l, err, sizeof err) == QA_OK);
    search_checked(&l, d, qn);
    uint64_t ids[3] = {1, 2, 3}, out[6];
    double os[6];
    CHECK(qa_rrf_fuse(ids, 3, ids + 1, 2, 1.0, 1.0, 60.0, 6, out, os) == 3 && out[0] == 2);

    /* damaged copies, exactly sized */
    size_t sizes[6] = {l.terms_len, 4 * (l.n_terms + 1), 4 * (l.n_terms ? l.n_terms : 1), 8 * (l.n_terms + 1),
                       l.postings_len, 2 * l.n_docs};
    const void *src[6] = {l.terms, l.term_off, l.df, l.post_off, l.postings, l.doc_len};
    uint8_t *c[6];
    for (int i = 0; i < 6; i++) c[i] = dup(src[i], sizes[i]);
    for (size_t i = 0; i + 2 < qn; i += 3) {
        int part = d[i] % 6;
        if (sizes[part]) c[part][((size_t)d[i + 1] * 257 + d[i + 2]) % sizes[part]] ^= (uint8_t)(d[i + 2] | 1);
    }
    qa_lex bad = {l.n_docs, l.n_terms, c[0], l.terms_len, (const uint32_t *)c[1], (const uint32_t *)c[2],
                  (const uint64_t *)c[3], c[4], l.postings_len, (const uint16_t *)c[5], 0};
    if (qa_lex_check(&bad, err, sizeof err) == QA_OK) search_checked(&bad, d, qn);
    for (int i = 0; i < 6; i++) free(c[i]);
    qa_lex_built_free(&b);
    return 0;
}
