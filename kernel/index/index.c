/* The index ABI (index.h): an index over borrowed arrays, per-thread searchers, and the
 * two-phase query graph search -> rows to fetch -> exact rerank. */
#include "index.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/codec.h"
#include "../constants.h"
#include "../distance.h"
#include "../hnsw.h"
#include "../rerank.h"

/* Per-query buffers above this are given back after the query that needed them, so one
 * huge rerank does not hold its memory for good. */
#define KEEP_BYTES (1 << 20)

struct qa_index {
    qa_index_arrays a;
    qa_graph g;
    qa_quantizer qz;
    qa_space sp;
    int64_t live;
    uint8_t *linked; /* the linked level-0 records (qa_index_link_level0), or NULL */
};

struct qa_searcher {
    const qa_index *ix;
    qa_scratch s;
    float *q;                  /* [dpad] the query as searched (normalised under cosine) */
    int32_t *cand, *rows, *ranges;
    float *cand_d, *hi;        /* hi: upper bounds of the candidates (rerank auto) */
    int64_t cand_cap;          /* rows in cand, cand_d, rows; ranges holds 2x */
    float *vecs;
    int64_t vecs_cap;          /* rows in vecs */
    int64_t k, rerank;
    int begun;
    qa_search_stats st;
    char err[256];
};

/* Error messages: a tiny formatter (%s, %d, %lld) rather than vsnprintf, which would pull
 * stdio (and WASI imports) into the wasm build. */
static void say(char *err, size_t len, const char *fmt, ...) {
    if (!err || !len) return;
    size_t o = 0;
    va_list ap;
    va_start(ap, fmt);
#define PUT(ch) do { if (o + 1 < len) err[o++] = (ch); } while (0)
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') { PUT(*f); continue; }
        f++;
        if (*f == 's') {
            for (const char *t = va_arg(ap, const char *); *t; t++) PUT(*t);
            continue;
        }
        long long v;
        if (*f == 'd') v = va_arg(ap, int);
        else { f += 2; v = va_arg(ap, long long); } /* %lld */
        char digits[24];
        int nd = 0;
        unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        do { digits[nd++] = (char)('0' + u % 10); u /= 10; } while (u);
        if (v < 0) PUT('-');
        while (nd) PUT(digits[--nd]);
    }
#undef PUT
    err[o] = 0;
    va_end(ap);
}

/* ---- the index ---------------------------------------------------------------------- */

static int64_t count_deleted(const uint8_t *bits, int64_t n) {
    if (!bits) return 0;
    int64_t c = 0;
    for (int64_t i = 0; i < n / 8; i++) c += __builtin_popcount(bits[i]);
    for (int64_t i = n / 8 * 8; i < n; i++) c += bits[i >> 3] >> (i & 7) & 1;
    return c;
}

#define RANGE(v, lo, hi, what)                                                                 \
    if ((int64_t)(v) < (lo) || (int64_t)(v) > (hi)) {                                          \
        say(err, err_len, "%s=%lld is out of range: it must be %lld..%lld", what, (long long)(v), \
            (long long)(lo), (long long)(hi));                                                 \
        return QA_EINVAL;                                                                      \
    }

int qa_index_open(const qa_index_arrays *a, qa_index **out, char *err, size_t err_len) {
    *out = NULL;
    if (a->metric != QA_METRIC_L2 && a->metric != QA_METRIC_IP) {
        say(err, err_len, "unknown metric id %d", a->metric);
        return QA_EINVAL;
    }
    const qa_codec *c = qa_codec_get(a->codec);
    if (!c) {
        say(err, err_len, "unknown codec id %d", a->codec);
        return QA_EINVAL;
    }
    RANGE(a->d, 1, QA_MAX_DIM, "dim");
    RANGE(a->n, 0, QA_MAX_ROWS, "count");
    RANGE(a->M, 2, QA_MAX_M, "M");
    RANGE(a->M0, a->M, 2 * QA_MAX_M, "M0");
    RANGE(a->entry, -1, a->n - 1, "entry");
    RANGE(a->max_level, 0, QA_MAX_LEVEL, "max_level");
    RANGE(a->ef_construction, 1, QA_MAX_EF_CONSTRUCTION, "ef_construction");
    RANGE(a->n_up, 0, a->n, "upper-level nodes");
    RANGE(a->n_upper, 0, a->n_up * a->M * QA_MAX_LEVEL, "upper-level links");
    const int packed = a->link_bits != 0 && a->link_bits != QA_LINK_BITS_INT32;
    if (packed) RANGE(a->link_bits, qa_link_bits(a->n), QA_LINK_BITS_INT32 - 1, "link_bits");
    int sq = a->codec != QA_CODEC_NONE;
    if ((a->n && (!a->codes || !a->level || !(packed ? (const void *)a->links0_packed : (const void *)a->links0))) || (sq && (!a->vmin || !a->scale)) ||
        (a->n_up && (!a->up_nodes || !a->up_off)) || (a->n_upper && !a->upper)) {
        say(err, err_len, "an array of the index is missing");
        return QA_EINVAL;
    }
    if (a->n && a->metric == QA_METRIC_L2 && sq && !a->norms) {
        say(err, err_len, "an L2 index over codes needs its norms");
        return QA_EINVAL;
    }
    qa_index *ix = (qa_index *)calloc(1, sizeof *ix);
    if (!ix) {
        say(err, err_len, "out of memory");
        return QA_ENOMEM;
    }
    ix->a = *a;
    qa_quantizer_init(&ix->qz, a->codec, a->d, a->vmin, a->scale);
    /* the graph only reads through these (insert writes through qa_insert_params) */
    ix->g = (qa_graph){.n = a->n, .M = a->M, .M0 = a->M0, .links0 = packed ? NULL : (int32_t *)a->links0,
                       .packed0 = packed ? a->links0_packed : NULL, .link_bits = packed ? a->link_bits : 32,
                       .row_bytes = packed ? qa_link_row_bytes(a->M0, a->link_bits) : 0, .level = (uint8_t *)a->level, .up_nodes = a->up_nodes, .up_off = a->up_off,
                       .n_up = a->n_up, .upper = (int32_t *)a->upper, .entry = a->entry,
                       .max_level = a->max_level, .deleted = a->deleted};
    ix->sp = (qa_space){.metric = a->metric, .codec = c, .qz = &ix->qz, .codes = a->codes,
                        .norms = a->metric == QA_METRIC_L2 && sq ? a->norms : NULL};
    ix->live = a->n - count_deleted(a->deleted, a->n);
    *out = ix;
    return QA_OK;
}

void qa_index_close(qa_index *ix) {
    if (ix) free(ix->linked);
    free(ix);
}

int qa_index_link_level0(qa_index *ix, int on, char *err, size_t err_len) {
    const int64_t rb = qa_link_row_bytes(ix->a.M0, ix->a.link_bits), cs = ix->qz.code_size;
    if (!on) {
        if (!ix->linked) return QA_OK;
        free(ix->linked);
        ix->linked = NULL;
        ix->g.packed0 = ix->a.links0_packed;
        ix->g.row_bytes = rb;
        ix->sp.codes = ix->a.codes;
        ix->qz.stride = cs;
        return QA_OK;
    }
    if (ix->linked) return QA_OK;
    if (!ix->g.packed0 || ix->qz.kind == QA_CODEC_NONE) {
        say(err, err_len, "a linked level 0 needs packed links and codes (not float vectors)");
        return QA_EINVAL;
    }
    /* node r: its packed list, then its code, in one record (+ 8 bytes so the list
     * decoder's 64-bit loads of the last record stay inside) */
    const int64_t rec = rb + cs, n = ix->g.n;
    uint8_t *buf = (uint8_t *)malloc((size_t)(n * rec + 8));
    if (!buf) {
        say(err, err_len, "out of memory for the linked level 0");
        return QA_ENOMEM;
    }
    for (int64_t r = 0; r < n; r++) {
        memcpy(buf + r * rec, ix->a.links0_packed + r * rb, (size_t)rb);
        memcpy(buf + r * rec + rb, ix->a.codes + r * cs, (size_t)cs);
    }
    memset(buf + n * rec, 0, 8);
    ix->linked = buf;
    ix->g.packed0 = buf;
    ix->g.row_bytes = rec;
    ix->sp.codes = buf + rb;
    ix->qz.stride = rec;
    return QA_OK;
}

void qa_index_info_get(const qa_index *ix, qa_index_info *info) {
    info->entry = ix->g.entry;
    info->max_level = ix->g.max_level;
    info->n = ix->g.n;
    info->live = ix->live;
    info->d = ix->qz.d;
    info->code_size = ix->qz.code_size;
}

int qa_index_insert(qa_index *ix, const qa_insert_params *p, char *err, size_t err_len) {
    RANGE(p->start, 0, ix->g.n, "start");
    RANGE(p->end, p->start, ix->g.n, "end");
    RANGE(p->threads, 1, QA_MAX_THREADS, "threads");
    if (p->end > p->start && !p->vectors) {
        say(err, err_len, "insert needs the rows' vectors");
        return QA_EINVAL;
    }
    if (ix->g.packed0) {
        say(err, err_len, "insert needs the int32 level-0 lists: this index holds them packed (unpack first)");
        return QA_EINVAL;
    }
    if (p->links0 != ix->a.links0 || (ix->a.n_upper && p->upper != ix->a.upper)) {
        say(err, err_len, "insert must write the index's own link arrays");
        return QA_EINVAL;
    }
    ix->g.links0 = p->links0;
    ix->g.upper = p->upper;
    qa_quantizer fz;
    qa_space fsp, *sp = &ix->sp;
    if (p->space) { /* a build: distances between the full vectors (the NONE row) */
        qa_quantizer_init(&fz, QA_CODEC_NONE, ix->qz.d, NULL, NULL);
        fsp = (qa_space){.metric = ix->sp.metric, .codec = qa_codec_get(QA_CODEC_NONE), .qz = &fz,
                         .codes = (const uint8_t *)p->space, .norms = NULL};
        sp = &fsp;
    }
    if (qa_hnsw_insert(&ix->g, sp, p->start, p->end, p->vectors, ix->a.ef_construction, (int)p->threads)) {
        say(err, err_len, "out of memory inserting rows %lld..%lld", (long long)p->start, (long long)p->end);
        return QA_ENOMEM;
    }
    ix->a.entry = ix->g.entry;
    ix->a.max_level = ix->g.max_level;
    return QA_OK;
}

/* ---- searchers ---------------------------------------------------------------------- */

qa_searcher *qa_searcher_new(const qa_index *ix) {
    qa_searcher *s = (qa_searcher *)calloc(1, sizeof *s);
    if (!s) return NULL;
    s->ix = ix;
    s->q = (float *)calloc((size_t)ix->qz.dpad, sizeof(float));
    if (!s->q || qa_scratch_init(&s->s, ix->g.n, 64, ix->g.M0, ix->qz.dpad)) {
        free(s->q);
        free(s);
        return NULL;
    }
    return s;
}

static void drop_query_buffers(qa_searcher *s) {
    free(s->cand); free(s->cand_d); free(s->rows); free(s->ranges); free(s->vecs); free(s->hi);
    s->cand = s->rows = s->ranges = NULL;
    s->cand_d = s->vecs = s->hi = NULL;
    s->cand_cap = s->vecs_cap = 0;
}

void qa_searcher_free(qa_searcher *s) {
    if (!s) return;
    qa_scratch_free(&s->s);
    drop_query_buffers(s);
    free(s->q);
    free(s);
}

const char *qa_searcher_error(const qa_searcher *s) { return s->err; }
float *qa_searcher_query(qa_searcher *s) { return s->q; }
const int32_t *qa_searcher_rows(const qa_searcher *s) { return s->rows; }
const int32_t *qa_searcher_ranges(const qa_searcher *s) { return s->ranges; }
float *qa_searcher_vectors(qa_searcher *s) { return s->vecs; }
void qa_searcher_stats(const qa_searcher *s, qa_search_stats *st) { *st = s->st; }

static int grow_candidates(qa_searcher *s, int64_t m) {
    if (m <= s->cand_cap) return 0;
    free(s->cand); free(s->cand_d); free(s->rows); free(s->ranges); free(s->hi);
    s->cand = (int32_t *)malloc(sizeof(int32_t) * (size_t)m);
    s->cand_d = (float *)malloc(sizeof(float) * (size_t)m);
    s->hi = (float *)malloc(sizeof(float) * (size_t)m);
    s->rows = (int32_t *)malloc(sizeof(int32_t) * (size_t)m);
    s->ranges = (int32_t *)malloc(2 * sizeof(int32_t) * (size_t)m);
    s->cand_cap = s->cand && s->cand_d && s->rows && s->ranges && s->hi ? m : 0;
    return s->cand_cap ? 0 : -1;
}

static int grow_vectors(qa_searcher *s, int64_t m) {
    if (m <= s->vecs_cap) return 0;
    free(s->vecs);
    s->vecs = (float *)malloc(sizeof(float) * (size_t)m * (size_t)s->ix->qz.d);
    s->vecs_cap = s->vecs ? m : 0;
    return s->vecs ? 0 : -1;
}

int64_t qa_coalesce_rows(const int32_t *rows, int64_t m, int64_t max_gap, int32_t *ranges, int64_t *span) {
    int64_t nr = 0, covered = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        while (j + 1 < m && rows[j + 1] > rows[j] && (int64_t)rows[j + 1] - rows[j] <= max_gap + 1) j++;
        ranges[2 * nr] = rows[i];
        ranges[2 * nr + 1] = rows[j];
        covered += (int64_t)rows[j] - rows[i] + 1;
        nr++;
        i = j + 1;
    }
    if (span) *span = covered;
    return nr;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Ascending rows: an insertion sort for a query's few candidates (wasi-libc's qsort is a
 * smoothsort calling the comparator per step: a few % of a wasm query), qsort beyond. */
static void sort_rows(int32_t *a, int64_t m) {
    if (m > 64) {
        qsort(a, (size_t)m, sizeof *a, cmp_i32);
        return;
    }
    for (int64_t i = 1; i < m; i++) {
        const int32_t v = a[i];
        int64_t j = i;
        for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
        a[j] = v;
    }
}

/* rerank auto: keeps, in place, the candidates whose lower bound (estimate - the codec's
 * error bound, with the row's residual when the index has them) is not above the k-th
 * smallest upper bound (qa_bound_cut): the others cannot be in the top k (with the bound's
 * confidence). Returns how many are kept (>= k when found >= k). */
static int64_t keep_by_bound(qa_searcher *s, int64_t found, int64_t k) {
    const qa_index *ix = s->ix;
    const qa_codec *c = ix->sp.codec;
    const int64_t cs = ix->qz.stride;
    qa_query qq = {.w = s->s.wbuf[0]};
    c->prepare(&ix->qz, s->q, &qq);
    float *lo = s->cand_d; /* becomes the lower bounds, as hi the upper */
    for (int64_t i = 0; i < found; i++) {
        const int32_t r = s->cand[i];
        float b = c->error_bound(&ix->qz, ix->sp.metric, &qq, ix->sp.codes + r * cs, ix->a.resid ? ix->a.resid[r] : -1.0f);
        s->hi[i] = lo[i] + b;
        lo[i] -= b;
    }
    if (found <= k) return found;
    const float cut = qa_bound_cut(s->hi, found, k, (float *)(void *)s->rows); /* rows: scratch (same size) */
    int64_t m = 0;
    for (int64_t i = 0; i < found; i++)
        if (lo[i] <= cut) s->cand[m++] = s->cand[i];
    return m;
}

#define CHECK(v, lo, hi, what)                                                                 \
    if ((v) < (lo) || (v) > (hi)) {                                                            \
        say(s->err, sizeof s->err, "%s=%lld is out of range: it must be %lld..%lld", what,     \
            (long long)(v), (long long)(lo), (long long)(hi));                                 \
        return QA_EINVAL;                                                                      \
    }

int64_t qa_search_begin(qa_searcher *s, const float *q, const qa_search_params *p) {
    const qa_index *ix = s->ix;
    const int d = ix->qz.d;
    s->begun = 0;
    s->err[0] = 0;
    memset(&s->st, 0, sizeof s->st);
    CHECK(p->k, 1, QA_MAX_K, "k");
    CHECK(p->ef, 1, QA_MAX_EF, "ef");
    const int autor = p->rerank == QA_RERANK_AUTO;
    if (!autor) CHECK(p->rerank, 0, QA_MAX_CANDIDATES, "rerank");
    CHECK(p->max_gap, 0, QA_MAX_ROWS, "max_gap");
    if (autor && !ix->sp.codec->error_bound) {
        say(s->err, sizeof s->err, "rerank=auto needs codes with an error bound (sq8, rabitq1..rabitq4), not %s",
            ix->sp.codec->name);
        return QA_EINVAL;
    }
    /* auto: every candidate of the beam (at least the codec's auto_pool * k), then the bound
     * picks which to read */
    int64_t nres = autor ? (p->ef > p->k ? p->ef : p->k) : p->rerank ? p->k * p->rerank : p->k;
    if (autor && nres < p->k * ix->sp.codec->auto_pool) nres = p->k * ix->sp.codec->auto_pool;
    if (nres > QA_MAX_CANDIDATES) {
        say(s->err, sizeof s->err, "k*rerank=%lld candidates is over the limit of %lld",
            (long long)nres, (long long)QA_MAX_CANDIDATES);
        return QA_EINVAL;
    }
    if (ix->live == 0 || ix->g.entry < 0) {
        say(s->err, sizeof s->err, "the index is empty");
        return QA_EINVAL;
    }
    if (p->k > ix->live) {
        say(s->err, sizeof s->err, "k=%lld is larger than the %lld vectors in the index",
            (long long)p->k, (long long)ix->live);
        return QA_EINVAL;
    }
    if (nres > ix->live) nres = ix->live;
    int64_t ef = p->ef > nres ? p->ef : nres;
    if (q != s->q) memcpy(s->q, q, sizeof(float) * (size_t)d);
    for (int i = 0; i < d; i++)
        if (!isfinite(s->q[i])) {
            say(s->err, sizeof s->err, "the query contains NaN or infinity");
            return QA_EINVAL;
        }
    if (ix->a.cosine && qa_normalize(s->q, (size_t)d)) {
        say(s->err, sizeof s->err, "the query is all zeros and has no direction under the cosine metric");
        return QA_EINVAL;
    }
    if (grow_candidates(s, nres)) {
        say(s->err, sizeof s->err, "out of memory for %lld candidates", (long long)nres);
        return QA_ENOMEM;
    }
    int found = qa_hnsw_search(&ix->g, &ix->sp, s->q, (int)ef, (int)nres, &s->s, s->cand, s->cand_d,
                               &s->st.distances);
    qa_scratch_trim(&s->s, 64, ix->g.M0);
    if (found < 0) {
        say(s->err, sizeof s->err, "out of memory in the graph search (ef=%lld)", (long long)ef);
        return QA_ENOMEM;
    }
    s->k = p->k;
    s->rerank = p->rerank;
    s->st.candidates = found;
    if (autor) found = (int)keep_by_bound(s, found, p->k);
    if (p->rerank && found) {
        memcpy(s->rows, s->cand, sizeof(int32_t) * (size_t)found);
        sort_rows(s->rows, found);
        int64_t span, nr = qa_coalesce_rows(s->rows, found, p->max_gap, s->ranges, &span);
        if (grow_vectors(s, found)) {
            say(s->err, sizeof s->err, "out of memory for %d candidate vectors", found);
            return QA_ENOMEM;
        }
        s->st.fetch = found;
        s->st.ranges = nr;
        s->st.span = span;
    }
    s->begun = 1;
    return s->st.fetch;
}

int qa_search_finish(qa_searcher *s, const float *vectors, int32_t *out_rows, float *out_d,
                     qa_search_stats *st) {
    if (!s->begun) {
        say(s->err, sizeof s->err, "finish without a successful begin");
        return QA_EINVAL;
    }
    s->begun = 0;
    const int k = (int)s->k, d = s->ix->qz.d;
    int m;
    if (s->st.fetch) {
        m = qa_rerank(s->ix->sp.metric, s->q, vectors ? vectors : s->vecs, s->rows, (int)s->st.fetch, d, k,
                      out_rows, out_d);
        if (m < 0) {
            say(s->err, sizeof s->err, "out of memory in rerank");
            return QA_ENOMEM;
        }
    } else {
        m = s->st.candidates < k ? (int)s->st.candidates : k;
        memcpy(out_rows, s->cand, sizeof(int32_t) * (size_t)m);
        memcpy(out_d, s->cand_d, sizeof(float) * (size_t)m);
    }
    for (int i = m; i < k; i++) {
        out_rows[i] = -1;
        out_d[i] = INFINITY;
    }
    s->st.found = m;
    if (st) *st = s->st;
    if ((size_t)s->vecs_cap * (size_t)d * sizeof(float) > KEEP_BYTES ||
        (size_t)s->cand_cap * 20 > KEEP_BYTES)
        drop_query_buffers(s);
    return QA_OK;
}

/* ---- calibrating rerank auto's bound ------------------------------------------------ */

int qa_index_calibrate_bound(const qa_index *ix, const float *vectors, int nq, int k, int ef, double miss_lo,
                             double miss_hi,
                             float *eps, char *err, size_t err_len) {
    const qa_codec *c = ix->sp.codec;
    const int d = ix->qz.d;
    *eps = 0.0f;
    if (!c->error_bound) {
        say(err, err_len, "codes %s have no error bound to calibrate", c->name);
        return QA_EINVAL;
    }
    RANGE(nq, 1, 1 << 20, "sample queries");
    RANGE(k, 1, QA_MAX_K, "k");
    RANGE(ef, k, QA_MAX_EF, "ef");
    if (ix->live < (int64_t)k + 2) return QA_OK; /* too few rows to learn from: the default stands */
    /* the bound is linear in the multiplier (scale[0]): at 1 and 2 it gives a and r */
    const float one = 1.0f, two = 2.0f;
    qa_quantizer q1 = ix->qz, q2 = ix->qz;
    q1.scale = &one;
    q2.scale = &two;
    qa_quantizer fz;
    qa_quantizer_init(&fz, QA_CODEC_NONE, d, NULL, NULL);
    const qa_codec *fc = qa_codec_get(QA_CODEC_NONE);
    const int64_t cap = (int64_t)nq * ef;
    float *est = malloc(sizeof(float) * (size_t)cap), *a = malloc(sizeof(float) * (size_t)cap);
    float *r = malloc(sizeof(float) * (size_t)cap), *ex = malloc(sizeof(float) * (size_t)cap);
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(nq + 1));
    qa_searcher *s = qa_searcher_new(ix);
    int rc = QA_ENOMEM;
    if (!est || !a || !r || !ex || !off || !s || grow_candidates(s, ef)) goto done;
    int64_t o = 0, nj = 0;
    off[0] = 0;
    for (int j = 0; j < nq; j++) {
        /* sample rows spread over the index stand for queries; each leaves itself out */
        const int32_t row = (int32_t)((int64_t)j * ix->g.n / nq);
        if (qa_is_deleted(&ix->g, row)) continue;
        memcpy(s->q, vectors + (int64_t)row * d, sizeof(float) * (size_t)d);
        int found = qa_hnsw_search(&ix->g, &ix->sp, s->q, ef, ef, &s->s, s->cand, s->cand_d, NULL);
        if (found < 0) goto done;
        qa_query qq = {.w = s->s.wbuf[0]}, fq;
        c->prepare(&ix->qz, s->q, &qq);
        fc->prepare(&fz, s->q, &fq);
        for (int i = 0; i < found; i++) {
            const int32_t x = s->cand[i];
            if (x == row) continue;
            const uint8_t *code = ix->sp.codes + (int64_t)x * ix->qz.stride;
            const float b1 = c->error_bound(&q1, ix->sp.metric, &qq, code, -1.0f);
            const float b2 = c->error_bound(&q2, ix->sp.metric, &qq, code, -1.0f);
            est[o] = s->cand_d[i];
            a[o] = b2 - b1;
            r[o] = b1 - a[o];
            ex[o] = fc->dist(&fz, ix->sp.metric, &fq, (const uint8_t *)(vectors + (int64_t)x * d), 0.0f);
            o++;
        }
        off[++nj] = o;
    }
    qa_scratch_trim(&s->s, 64, ix->g.M0);
    *eps = qa_rerank_calibrate(est, a, r, ex, off, (int)nj, k, miss_lo, miss_hi);
    if (*eps < 0.0f) goto done;
    /* 0 in the file means "not calibrated": the smallest stored value is 1/16 */
    if (*eps < 0.0625f) *eps = 0.0625f;
    rc = QA_OK;
done:
    if (rc) say(err, err_len, "out of memory calibrating the bound");
    free(est); free(a); free(r); free(ex); free(off);
    qa_searcher_free(s);
    return rc;
}
