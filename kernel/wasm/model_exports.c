/* wasm32 entry points of the model kernel (web/dist/quantann-model.wasm, a second module
 * beside the index kernel): the encoder (kernel/model/model.h, arch/bert.c) and the
 * decoder (arch/llama.c, sample.c, tokenizer/) over the same C as the native build.
 *
 * Loading, in three steps so that the memory ceiling is checked before any weight byte
 * is fetched:
 * 1. qa_wasm_gguf_header_size over a prefix: how many bytes the header takes.
 * 2. qa_wasm_embedder_plan / qa_wasm_decoder_plan over that header: what the model will
 *    take in wasm memory (weights = the file, plus arena, KV cache, scratch), from the
 *    kernel's own size functions; the host checks its budget and the wasm32 limit.
 * 3. the host fills a buffer of the file's length (qa_wasm_alloc) and opens the model
 *    over it: the weights are used in place, as a memory map is natively.
 * No stdio, no threads (the pool runs inline in wasm), no WASI imports. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../errors.h"
#include "../gguf/gguf.h"
#include "../model/arch.h"
#include "../model/arch/llama.h"
#include "../model/model.h"
#include "../model/ops.h"
#include "../model/ops_decoder.h"
#include "../model/sample.h"
#include "../model/tokenizer/tokenizer.h"
#include "../model/types.h"
#include "../simd.h"

#define EXPORT(name) __attribute__((export_name(#name)))

/* The same three memory entry points as the index module (kernel/wasm/exports.c), so
 * that web/src/kernel.js drives either module. */
static char last_error[512];
EXPORT(qa_wasm_error) const char *qa_wasm_error(void) { return last_error; }
EXPORT(qa_wasm_alloc) void *qa_wasm_alloc(size_t n) { return malloc(n ? n : 1); }
EXPORT(qa_wasm_free) void qa_wasm_free(void *p) { free(p); }

static int fail(int rc, const char *msg) {
    qa_format(last_error, sizeof last_error, "%s", msg);
    return rc;
}

static void select_simd(void) {
    static int done;
    if (done) return;
    qa_cpu_init();
    qa_model_select_simd();
    qa_ops_decoder_init(1);
    done = 1;
}

/* The decoder ops' SIMD128 variants on (1, the default) or off (0: the scalar references),
 * for the tests that hold them to the references. */
EXPORT(qa_wasm_decoder_ops_simd) void qa_wasm_decoder_ops_simd(int on) {
    select_simd();
    qa_ops_decoder_init(on);
}

/* ---- the GGUF header, whole file or prefix (the one reader, kernel/gguf) ------------- */

typedef struct {
    qa_gguf g;
    qa_gguf_kv *kv;
    qa_gguf_tensor *tensors;
} gguf_hold;

static void gguf_release(gguf_hold *h) {
    free(h->kv);
    free(h->tensors);
    h->kv = NULL;
    h->tensors = NULL;
}

/* Parses buf[0, len) of a file of file_len bytes (a prefix when len < file_len). */
static int gguf_read(gguf_hold *h, const uint8_t *buf, uint64_t len, uint64_t file_len) {
    uint64_t n_kv, n_t;
    memset(h, 0, sizeof *h);
    int rc = qa_gguf_counts(buf, len, &n_kv, &n_t, last_error, sizeof last_error);
    if (rc) return rc;
    h->kv = (qa_gguf_kv *)malloc(sizeof(qa_gguf_kv) * (n_kv ? n_kv : 1));
    h->tensors = (qa_gguf_tensor *)malloc(sizeof(qa_gguf_tensor) * (n_t ? n_t : 1));
    if (!h->kv || !h->tensors) return gguf_release(h), fail(QA_ERR_NOMEM, "out of memory for the GGUF header");
    rc = len < file_len ? qa_gguf_parse_prefix(&h->g, buf, len, file_len, h->kv, n_kv, h->tensors, n_t,
                                               last_error, sizeof last_error)
                        : qa_gguf_parse(&h->g, buf, len, h->kv, n_kv, h->tensors, n_t, last_error, sizeof last_error);
    if (rc) gguf_release(h);
    return rc;
}

static int file_len_ok(double file_len) { return file_len >= 0 && file_len < 9007199254740992.0; }

/* The prefix length that holds the whole header: QA_OK with *need, QA_ERR_NEED_MORE with
 * *need = the prefix length to read next, or an error (see qa_wasm_error). */
EXPORT(qa_wasm_gguf_header_size)
int qa_wasm_gguf_header_size(const uint8_t *buf, size_t len, double file_len, double *need) {
    uint64_t n = 0;
    if (!file_len_ok(file_len)) return fail(QA_ERR_ARG, "bad file length");
    int rc = qa_gguf_header_size(buf, len, (uint64_t)file_len, &n, last_error, sizeof last_error);
    *need = (double)n;
    return rc;
}

/* ---- the encoder ---------------------------------------------------------------------- */

typedef struct {
    gguf_hold h;
    qa_model m;
    void *arena;
    qa_pool pool;
    int max_tokens;
    int32_t *ids;
    void *scratch;
    uint64_t scratch_size;
} embedder;

static int clamp_tokens(const qa_model *m, int max_tokens) {
    if (max_tokens <= 0) max_tokens = m->hp.max_tokens;
    if (max_tokens > m->hp.n_ctx) max_tokens = m->hp.n_ctx;
    return max_tokens < 2 ? 2 : max_tokens;
}

static int model_bind(qa_model *m, void **arena, const qa_gguf *g) {
    uint64_t asz = qa_model_arena_size(g, last_error, sizeof last_error);
    if (!asz) return QA_ERR_FORMAT;
    if (asz > SIZE_MAX || !(*arena = malloc((size_t)asz))) return fail(QA_ERR_NOMEM, "out of memory for the vocabulary");
    int rc = qa_model_init(m, g, *arena, asz, last_error, sizeof last_error);
    if (rc == QA_OK && !m->arch->encode) rc = fail(QA_ERR_UNSUPPORTED, "this GGUF is not an encoder model");
    return rc;
}

/* out[4]: arena bytes, scratch bytes (one text of max_tokens), n_embd, max_tokens, from
 * the header alone (buf: a prefix holding it). max_tokens <= 0: the model's own. */
EXPORT(qa_wasm_embedder_plan)
int qa_wasm_embedder_plan(const uint8_t *buf, size_t len, double file_len, int max_tokens, double *out) {
    gguf_hold h;
    qa_model m;
    void *arena = NULL;
    if (!file_len_ok(file_len)) return fail(QA_ERR_ARG, "bad file length");
    select_simd();
    int rc = gguf_read(&h, buf, len, (uint64_t)file_len);
    if (rc) return rc;
    rc = model_bind(&m, &arena, &h.g);
    if (rc == QA_OK) {
        int t = clamp_tokens(&m, max_tokens);
        out[0] = (double)qa_model_arena_size(&h.g, last_error, sizeof last_error);
        out[1] = (double)qa_model_scratch_size(&m, t, t, 1);
        out[2] = m.hp.n_embd;
        out[3] = t;
    }
    free(arena);
    gguf_release(&h);
    return rc;
}

EXPORT(qa_wasm_embedder_free) void qa_wasm_embedder_free(embedder *e) {
    if (!e) return;
    free(e->ids);
    free(e->scratch);
    free(e->arena);
    gguf_release(&e->h);
    free(e);
}

/* An encoder over the whole file in buf (kept by the host until qa_wasm_embedder_free). */
EXPORT(qa_wasm_embedder_open) embedder *qa_wasm_embedder_open(const uint8_t *buf, size_t len, int max_tokens) {
    select_simd();
    embedder *e = (embedder *)calloc(1, sizeof *e);
    if (!e) return fail(QA_ERR_NOMEM, "out of memory"), NULL;
    if (gguf_read(&e->h, buf, len, len) || model_bind(&e->m, &e->arena, &e->h.g)) goto fail;
    qa_pool_start(&e->pool, 1);
    e->max_tokens = clamp_tokens(&e->m, max_tokens);
    e->scratch_size = qa_model_scratch_size(&e->m, e->max_tokens, e->max_tokens, 1);
    e->ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)e->max_tokens);
    e->scratch = malloc((size_t)e->scratch_size);
    if (!e->ids || !e->scratch) {
        fail(QA_ERR_NOMEM, "out of memory for the encoder's scratch");
        goto fail;
    }
    return e;
fail:
    qa_wasm_embedder_free(e);
    return NULL;
}

EXPORT(qa_wasm_embedder_dim) int qa_wasm_embedder_dim(const embedder *e) { return e->m.hp.n_embd; }

/* Tokenizes text[0, len) (truncated to max_tokens) and writes its pooled embedding (n_embd
 * floats) to out. Returns the number of tokens, or a negative error (see qa_wasm_error). */
EXPORT(qa_wasm_embed) int qa_wasm_embed(embedder *e, const uint8_t *text, size_t len, float *out) {
    int32_t n = qa_model_tokenize(&e->m, text, len, e->ids, e->max_tokens);
    if (n <= 0) return fail(QA_ERR_ARG, "the text gives no tokens");
    int rc = qa_model_encode(&e->m, &e->pool, e->ids, &n, 1, out, NULL, e->scratch, e->scratch_size, last_error,
                             sizeof last_error);
    return rc ? rc : n;
}

/* ---- the decoder ---------------------------------------------------------------------- */

#define RECENT 64 /* tokens the repetition penalty looks back over (llama.cpp's default) */

typedef struct {
    gguf_hold h;
    qa_llama m;
    qa_tok tok;
    void *tok_arena;
    qa_pool pool;
    qa_llama_ctx ctx;
    void *kv, *scratch, *sample_work, *tok_scratch;
    uint64_t tok_scratch_size;
    float *logits;
    int32_t *ids;
    uint64_t ids_cap;
    int32_t recent[RECENT];
    int n_recent;
    uint64_t rng;
    qa_tok_stream stream;
    uint8_t *text; /* the bytes of the last decoded token */
} decoder;

static uint64_t decoder_scratch(const qa_llama *m, int n_ctx, int n_batch) {
    /* + sampling work: n_vocab floats and n_vocab int32 (sample.h), + the logits */
    return qa_llama_scratch_bytes(m, n_batch, n_ctx, 1) + (uint64_t)m->n_vocab * 12;
}

static int default_ctx(const qa_llama *m, int n_ctx) {
    if (n_ctx > 0) return n_ctx;
    return m->n_ctx_train > 0 && m->n_ctx_train < 2048 ? m->n_ctx_train : 2048;
}

/* out[6]: KV cache bytes, scratch bytes, tokenizer arena bytes, n_ctx (n_ctx <= 0: the
 * default, min(2048, the model's)), n_vocab, n_ctx_train, from the header alone. */
EXPORT(qa_wasm_decoder_plan)
int qa_wasm_decoder_plan(const uint8_t *buf, size_t len, double file_len, int n_ctx, int n_batch, double *out) {
    gguf_hold h;
    if (!file_len_ok(file_len)) return fail(QA_ERR_ARG, "bad file length");
    select_simd();
    qa_llama *m = (qa_llama *)malloc(sizeof *m);
    if (!m) return fail(QA_ERR_NOMEM, "out of memory");
    int rc = gguf_read(&h, buf, len, (uint64_t)file_len);
    if (rc == QA_OK) {
        rc = qa_llama_load(m, &h.g, last_error, sizeof last_error);
        uint64_t ta = rc ? 0 : qa_tok_arena_size(&h.g, last_error, sizeof last_error);
        if (rc == QA_OK && !ta) rc = QA_ERR_FORMAT;
        if (rc == QA_OK) {
            int c = default_ctx(m, n_ctx);
            out[0] = (double)qa_llama_kv_bytes(m, c);
            out[1] = (double)decoder_scratch(m, c, n_batch);
            out[2] = (double)ta;
            out[3] = c;
            out[4] = m->n_vocab;
            out[5] = m->n_ctx_train;
        }
        gguf_release(&h);
    }
    free(m);
    return rc;
}

EXPORT(qa_wasm_decoder_free) void qa_wasm_decoder_free(decoder *d) {
    if (!d) return;
    free(d->kv);
    free(d->scratch);
    free(d->sample_work);
    free(d->logits);
    free(d->tok_arena);
    free(d->tok_scratch);
    free(d->ids);
    free(d->text);
    gguf_release(&d->h);
    free(d);
}

/* A decoder over the whole file in buf (kept by the host until qa_wasm_decoder_free),
 * with a KV cache of n_ctx positions (<= 0: the default of qa_wasm_decoder_plan). */
EXPORT(qa_wasm_decoder_open) decoder *qa_wasm_decoder_open(const uint8_t *buf, size_t len, int n_ctx, int n_batch) {
    select_simd();
    decoder *d = (decoder *)calloc(1, sizeof *d);
    if (!d) return fail(QA_ERR_NOMEM, "out of memory"), NULL;
    if (n_batch < 1 || n_batch > 4096) {
        fail(QA_ERR_ARG, "n_batch must be in 1..4096");
        goto fail;
    }
    if (gguf_read(&d->h, buf, len, len) || qa_llama_load(&d->m, &d->h.g, last_error, sizeof last_error)) goto fail;
    n_ctx = default_ctx(&d->m, n_ctx);
    if (n_ctx > (1 << 20)) {
        fail(QA_ERR_ARG, "n_ctx must be at most 1048576");
        goto fail;
    }
    uint64_t ta = qa_tok_arena_size(&d->h.g, last_error, sizeof last_error);
    if (!ta || !(d->tok_arena = malloc((size_t)ta))) {
        if (ta) fail(QA_ERR_NOMEM, "out of memory for the vocabulary");
        goto fail;
    }
    if (qa_tok_init(&d->tok, &d->h.g, d->tok_arena, ta, last_error, sizeof last_error)) goto fail;
    qa_pool_start(&d->pool, 1);
    uint64_t kvb = qa_llama_kv_bytes(&d->m, n_ctx), sb = qa_llama_scratch_bytes(&d->m, n_batch, n_ctx, 1);
    uint64_t nv = (uint64_t)d->m.n_vocab;
    if (kvb > SIZE_MAX || sb > SIZE_MAX) {
        fail(QA_ERR_NOMEM, "the KV cache does not fit in wasm32 memory");
        goto fail;
    }
    d->kv = malloc((size_t)kvb);
    d->scratch = malloc((size_t)sb);
    d->sample_work = malloc((size_t)nv * 8);
    d->logits = (float *)malloc((size_t)nv * 4);
    d->text = (uint8_t *)malloc(256);
    if (!d->kv || !d->scratch || !d->sample_work || !d->logits || !d->text) {
        fail(QA_ERR_NOMEM, "out of wasm memory for the KV cache and scratch");
        goto fail;
    }
    if (qa_llama_ctx_init(&d->ctx, &d->m, &d->pool, n_ctx, n_batch, d->kv, kvb, d->scratch, sb, last_error,
                          sizeof last_error))
        goto fail;
    return d;
fail:
    qa_wasm_decoder_free(d);
    return NULL;
}

/* out[8]: n_vocab, n_ctx, bos, eos, eot (-1 = none), add_bos, n_layer, n_embd */
EXPORT(qa_wasm_decoder_info) void qa_wasm_decoder_info(const decoder *d, double *out) {
    double v[8] = {d->m.n_vocab, d->ctx.n_ctx, d->tok.bos, d->tok.eos, d->tok.eot, d->tok.add_bos,
                   d->m.n_layer, d->m.n_embd};
    memcpy(out, v, sizeof v);
}

/* The file's tokenizer.chat_template (NULL if absent); its length in *len. */
EXPORT(qa_wasm_decoder_chat_template) const uint8_t *qa_wasm_decoder_chat_template(const decoder *d, uint32_t *len) {
    *len = (uint32_t)d->tok.chat_template_len;
    return d->tok.chat_template;
}

/* The bytes of token id (NULL for an id out of range); its length in *len. */
EXPORT(qa_wasm_decoder_piece) const uint8_t *qa_wasm_decoder_piece(const decoder *d, int32_t id, uint32_t *len) {
    return qa_tok_piece(&d->tok, id, len);
}

/* Token ids of text[0, len): control tokens written in it parsed (<|im_start|>), BOS first
 * when add_bos. Returns the count (ids at qa_wasm_decoder_ids) or a negative error. */
EXPORT(qa_wasm_decoder_tokenize) int qa_wasm_decoder_tokenize(decoder *d, const uint8_t *text, size_t len, int add_bos) {
    uint64_t cap = qa_tok_max_ids(len) + 1, ss = qa_tok_scratch_size(&d->tok, len);
    if (cap > d->ids_cap) {
        free(d->ids);
        d->ids_cap = 0;
        if (!(d->ids = (int32_t *)malloc((size_t)cap * 4))) return fail(QA_ERR_NOMEM, "out of memory for the token ids");
        d->ids_cap = cap;
    }
    if (ss > d->tok_scratch_size) {
        free(d->tok_scratch);
        d->tok_scratch_size = 0;
        if (!(d->tok_scratch = malloc((size_t)ss))) return fail(QA_ERR_NOMEM, "out of memory for the tokenizer");
        d->tok_scratch_size = ss;
    }
    int first = add_bos && d->tok.bos >= 0;
    if (first) d->ids[0] = d->tok.bos;
    int64_t n = qa_tok_encode(&d->tok, text, len, 0, 1, d->ids + first, cap - 1, d->tok_scratch, d->tok_scratch_size);
    if (n < 0) return fail((int)n, "tokenizer buffers too small");
    return (int)n + first;
}

EXPORT(qa_wasm_decoder_ids) int32_t *qa_wasm_decoder_ids(decoder *d) { return d->ids; }

/* Starts a generation: the cache keeps its first `keep` positions (the host's previous
 * prompt shared ids[0, keep): see qa_llama_keep; 0 clears it), the rest of the prompt is
 * evaluated (logits of its last token kept for qa_wasm_decoder_sample), the random state
 * seeded. 0 or an error. */
EXPORT(qa_wasm_decoder_prefill)
int qa_wasm_decoder_prefill(decoder *d, const int32_t *ids, int n, int keep, double seed_hi, double seed_lo) {
    if (n < 1) return fail(QA_ERR_ARG, "the prompt is empty");
    if (keep < 0 || keep >= n) return fail(QA_ERR_ARG, "keep must be in 0..n-1");
    if (qa_llama_keep(&d->ctx, keep, last_error, sizeof last_error)) return QA_ERR_ARG;
    d->rng = ((uint64_t)seed_hi << 32) | (uint64_t)seed_lo;
    d->n_recent = 0;
    for (int i = n > RECENT ? n - RECENT : 0; i < n; i++) d->recent[d->n_recent++] = ids[i];
    qa_tok_stream_init(&d->stream, 0);
    return qa_llama_eval(&d->ctx, ids + keep, n - keep, d->logits, 0, last_error, sizeof last_error);
}

/* The next token from the current logits (temperature <= 0: greedy); the logits are
 * modified by the repetition penalty. Returns the id or a negative error. */
EXPORT(qa_wasm_decoder_sample)
int qa_wasm_decoder_sample(decoder *d, float temperature, int top_k, float top_p, float min_p, float repeat_penalty) {
    if (!(top_p > 0.0f && top_p <= 1.0f) || !(min_p >= 0.0f && min_p <= 1.0f) || !(repeat_penalty > 0.0f) ||
        !(temperature >= 0.0f) || temperature > 1e30f)
        return fail(QA_ERR_ARG, "bad sampling parameters");
    return qa_sample(d->logits, d->m.n_vocab, &(qa_sample_params){temperature, top_p, min_p, repeat_penalty, top_k},
                     d->recent, d->n_recent, &d->rng, d->sample_work);
}

/* Whether a token ends the generation: the kernel's one rule (qa_tok_is_eog), as
 * quantann/generate.py's Generator.is_end. */
EXPORT(qa_wasm_decoder_is_eog) int qa_wasm_decoder_is_eog(const decoder *d, int32_t id) {
    return qa_tok_is_eog(&d->tok, id);
}

/* The text bytes of a generated token (complete UTF-8 only; the rest held for the next
 * call, flushed with id < 0), at qa_wasm_decoder_text. Returns the byte count. */
EXPORT(qa_wasm_decoder_decode) int qa_wasm_decoder_decode(decoder *d, int32_t id) {
    if (id < 0) return (int)qa_tok_flush(&d->stream, d->text);
    uint64_t need = qa_tok_decode_max(&d->tok, id);
    if (need > 256) {
        uint8_t *t = (uint8_t *)realloc(d->text, (size_t)need);
        if (!t) return fail(QA_ERR_NOMEM, "out of memory");
        d->text = t;
    }
    return (int)qa_tok_decode(&d->tok, &d->stream, id, 0, d->text);
}

EXPORT(qa_wasm_decoder_text) const uint8_t *qa_wasm_decoder_text(const decoder *d) { return d->text; }

/* The text of ids[0, n) as native Tokenizer.decode gives it (no control tokens; an SPM
 * vocabulary's first space stripped), at qa_wasm_decoder_text. Returns the byte count or
 * a negative error. The generation's own stream is left alone. */
EXPORT(qa_wasm_decoder_detokenize) int qa_wasm_decoder_detokenize(decoder *d, const int32_t *ids, int n) {
    uint64_t need = 8;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= d->m.n_vocab) return fail(QA_ERR_ARG, "a token id is out of the vocabulary");
        need += qa_tok_decode_max(&d->tok, ids[i]);
    }
    if (need > INT32_MAX) return fail(QA_ERR_ARG, "too many tokens to detokenize");
    if (need > 256) {
        uint8_t *t = (uint8_t *)realloc(d->text, (size_t)need);
        if (!t) return fail(QA_ERR_NOMEM, "out of memory");
        d->text = t;
    }
    qa_tok_stream s;
    qa_tok_stream_init(&s, d->tok.add_space_prefix);
    uint64_t o = 0;
    for (int i = 0; i < n; i++) o += qa_tok_decode(&d->tok, &s, ids[i], 0, d->text + o);
    return (int)(o + qa_tok_flush(&s, d->text + o));
}

/* Appends a generated token: evaluated at the next position, its logits kept. */
EXPORT(qa_wasm_decoder_step) int qa_wasm_decoder_step(decoder *d, int32_t id) {
    if (d->n_recent == RECENT) memmove(d->recent, d->recent + 1, sizeof(int32_t) * (RECENT - 1)), d->n_recent--;
    d->recent[d->n_recent++] = id;
    return qa_llama_eval(&d->ctx, &id, 1, d->logits, 0, last_error, sizeof last_error);
}

EXPORT(qa_wasm_decoder_logits) const float *qa_wasm_decoder_logits(const decoder *d) { return d->logits; }

/* ---- test hook: a type's dot product, dispatched (SIMD128) or the scalar reference ---- */

/* n values of weight blocks w (type) times activation blocks a of its act_type; ref != 0
 * runs the scalar reference. For the tests holding each SIMD128 variant to it. */
EXPORT(qa_wasm_type_dot) float qa_wasm_type_dot(uint32_t type, int ref, int n, const void *w, const void *a) {
    select_simd();
    const qa_type_traits *tt = qa_type_get(type);
    if (!tt || !tt->vec_dot) return 0.0f;
    return (ref ? tt->vec_dot_ref : tt->vec_dot)(n, w, a);
}

/* Quantizes n floats to type's activation blocks with the dispatched quantizer (ref: the
 * scalar reference); returns the bytes written or 0. */
EXPORT(qa_wasm_type_quantize_act) int qa_wasm_type_quantize_act(uint32_t type, int ref, int n, const float *x, void *y) {
    select_simd();
    const qa_type_traits *tt = qa_type_get(type), *at = tt ? qa_type_get(tt->act_type) : NULL;
    if (!at || !at->quantize_act || n % at->blck) return 0;
    (ref ? at->quantize_act_ref : at->quantize_act)(x, y, n);
    return n / at->blck * at->size;
}

/* The 2 x 4 tile of a type (w: 2 rows of n values, ws bytes apart; a: 4 activation rows,
 * as bytes apart) into out[8]; 0, or -1 when the type has no tile. */
EXPORT(qa_wasm_type_tile)
int qa_wasm_type_tile(uint32_t type, int n, const void *w, size_t ws, const void *a, size_t as, float *out) {
    select_simd();
    const qa_type_traits *tt = qa_type_get(type);
    if (!tt || !tt->tile) return -1;
    tt->tile(n, w, ws, a, as, out);
    return 0;
}

/* The 4-row single-token dot of a type (w: 4 rows of n values, ws bytes apart; a: one
 * activation row) into out[4]; 0, or -1 when the type has none. */
EXPORT(qa_wasm_type_rows4)
int qa_wasm_type_rows4(uint32_t type, int n, const void *w, size_t ws, const void *a, float *out) {
    select_simd();
    const qa_type_traits *tt = qa_type_get(type);
    if (!tt || !tt->rows4) return -1;
    tt->rows4(n, w, ws, a, out);
    return 0;
}

/* The matmul (ops.c) of one type: rows weight rows of n values (w) times tokens float rows
 * (x), y[t * rows + o], through whatever the token and row counts reach (panels, tiles,
 * 4-row and single dots); 0, or -1 for a type without quantized activations or no memory.
 * For the tests holding every path to the scalar reference. */
EXPORT(qa_wasm_type_matmul)
int qa_wasm_type_matmul(uint32_t type, int n, int rows, const void *w, const float *x, int tokens, float *y) {
    select_simd();
    const qa_type_traits *tt = qa_type_get(type);
    if (!tt || tt->act_type == QA_T_F32 || n % tt->blck || rows < 1 || tokens < 1) return -1;
    const qa_mat m = {tt, n, rows, qa_ggml_row_bytes(type, n), (const uint8_t *)w};
    void *xq = malloc((size_t)tokens * qa_act_row_bytes(&m));
    float *rb = malloc(qa_matmul_rowbuf_floats(n) * sizeof(float));
    if (xq && rb) qa_matmul(NULL, &m, NULL, x, tokens, y, xq, 0, NULL, 0, rb);
    int rc = xq && rb ? 0 : -1;
    free(xq);
    free(rb);
    return rc;
}

/* The encoder's activations on n floats in place (kernel/model/ops_act.c): op 0 GELU, 1
 * exp(x - m); ref != 0 runs the scalar reference. For the tests holding SIMD128 to it. */
EXPORT(qa_wasm_act) int qa_wasm_act(int op, int ref, float *x, int n, float m) {
    select_simd();
    if (op == 0) (ref ? qa_gelu_ref : qa_gelu)(x, n);
    else if (op == 1) (ref ? qa_exp_sub_ref : qa_exp_sub)(x, n, m);
    else return -1;
    return 0;
}

/* Causal attention (ops_decoder.c) of n query rows at positions pos0.. over a KV cache
 * (k, v: n_head_kv x n_ctx x head_dim fp16), into out (the query layout); ref != 0 runs
 * the scalar references. 0, or -1 without memory. For the test holding the SIMD128 rows
 * to the reference on shapes the models do not reach. */
EXPORT(qa_wasm_attention)
int qa_wasm_attention(int ref, uint16_t *k, uint16_t *v, int n_ctx, int n_head_kv, int head_dim, const float *q,
                      int row_stride, int n, int pos0, int n_head, float scale, int n_swa, float *out) {
    select_simd();
    float *work = malloc(qa_attention_work_floats(n_ctx, head_dim) * sizeof(float));
    if (!work) return -1;
    const qa_kv_layer kv = {k, v, n_ctx, n_head_kv, head_dim};
    qa_ops_decoder_init(!ref);
    qa_attention(NULL, &kv, q, row_stride, n, pos0, n_head, scale, n_swa, out, work);
    qa_ops_decoder_init(1);
    free(work);
    return 0;
}
