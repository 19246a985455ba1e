/* Lexical retrieval over a text store's passages: BM25 on an inverted index, and the
 * fusion of its ranking with the vector search's (reciprocal rank fusion). One C
 * implementation for the native extension and wasm (web/src/texts.js).
 *
 * Terms (qa_lex_terms): maximal runs of ASCII letters and digits and of non-ASCII UTF-8
 * bytes; ASCII is lowercased, and so are the Latin-1 capitals À..Þ (U+00C0..U+00DE but ×);
 * other scripts are kept as they are (no case folding, no stemming, no stop words: BM25's
 * idf weighs common words down). A term longer than QA_LEXICAL_MAX_TERM_BYTES is cut there,
 * at a UTF-8 character boundary.
 *
 * The index (FORMAT.md, "The text store"): documents are the store's positions 0..n-1 (its
 * sorted ids). Terms sorted bytewise, concatenated (`terms`, `term_off` n_terms + 1 u32);
 * each term's document frequency (`df` u32); its postings at post_off[t]..post_off[t+1] of
 * `postings`: per document, ascending, LEB128 varints of the gap to the previous document
 * (the first: the document itself) and of the term's count in it (>= 1); each document's
 * length in terms (`doc_len` u16, saturated at 65535).
 */
#ifndef QA_TEXT_LEXICAL_H
#define QA_TEXT_LEXICAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t n_docs, n_terms;
    const uint8_t *terms;
    uint64_t terms_len;
    const uint32_t *term_off; /* n_terms + 1 */
    const uint32_t *df;       /* n_terms */
    const uint64_t *post_off; /* n_terms + 1 */
    const uint8_t *postings;
    uint64_t postings_len;
    const uint16_t *doc_len; /* n_docs */
    double avg_len;          /* set by qa_lex_check */
} qa_lex;

/* What qa_lex_build allocates (free with qa_lex_built_free); `lex` points into it. */
typedef struct {
    qa_lex lex;
    uint8_t *terms, *postings;
    uint32_t *term_off, *df;
    uint64_t *post_off;
    uint16_t *doc_len;
} qa_lex_built;

/* Calls fn(term, len, ctx) for each term of text in order (lowercased into a scratch of
 * QA_LEXICAL_MAX_TERM_BYTES). Returns the number of terms. */
typedef void (*qa_lex_term_fn)(const uint8_t *term, size_t len, void *ctx);
uint64_t qa_lex_terms(const uint8_t *text, size_t len, qa_lex_term_fn fn, void *ctx);

/* Builds the index of n texts: text i is bytes[offsets[i] .. offsets[i+1]). QA_OK, or
 * QA_ERR_ARG / QA_ERR_NOMEM with a message in err. */
int qa_lex_build(const uint8_t *bytes, const uint64_t *offsets, uint64_t n, qa_lex_built *out, char *err,
                 size_t err_size);
void qa_lex_built_free(qa_lex_built *b);

/* Checks every array of lx (lengths given in it: n_docs, n_terms, terms_len, postings_len)
 * as a reader must before searching: offsets ascending and inside their blobs, terms
 * strictly increasing, every postings list decoding to exactly df ascending documents < n_docs
 * with counts >= 1. Sets lx->avg_len. QA_OK or QA_ERR_FORMAT with a message in err. */
int qa_lex_check(qa_lex *lx, char *err, size_t err_size);

/* The term's number, or -1. */
int64_t qa_lex_find(const qa_lex *lx, const uint8_t *term, size_t len);

/* The BM25 top-k documents of query (at most k; only documents holding one of its terms),
 * best first, ties by position: out_doc, out_score. A term in more than
 * QA_LEXICAL_COMMON_DF of the documents counts only when every query term does (FORMAT.md).
 * Returns their count, or QA_ERR_NOMEM. */
int64_t qa_lex_search(const qa_lex *lx, const uint8_t *query, size_t len, int64_t k, uint32_t *out_doc,
                      float *out_score);

/* Reciprocal rank fusion of two rankings of ids (best first; an id at most once in each):
 * score(id) = wa / (rrf_k + rank in a) + wb / (rrf_k + rank in b), ranks from 1, absent
 * ones adding nothing. The top k ids by score, ties by the better rank in a, then in b:
 * out_id, out_score. Returns their count (<= k), or QA_ERR_NOMEM. */
int64_t qa_rrf_fuse(const uint64_t *a, int64_t na, const uint64_t *b, int64_t nb, double wa, double wb,
                    double rrf_k, int64_t k, uint64_t *out_id, double *out_score);

#endif
