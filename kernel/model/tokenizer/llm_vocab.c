/* Decoder-LLM vocabulary from GGUF metadata: token table and lookup, BPE merge table,
 * special tokens (matched literally in the text before the model's own tokenization, longest
 * first, as llama.cpp's tokenizer_st_partition does), encode dispatch and streaming decode. */
#include <string.h>

#include "tokenizer.h"

#define MAX_VOCAB (1u << 24)

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t hash_bytes(const uint8_t *s, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h ^ (h >> 15);
}

static uint32_t hash_pair(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32);
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static int key_is(const qa_gguf_kv *e, const char *s) {
    return e && e->type == QA_GV_STRING && rd64(e->val) == strlen(s) && !memcmp(e->val + 8, s, strlen(s));
}

static const qa_gguf_kv *string_array(const qa_gguf *g, const char *key) {
    const qa_gguf_kv *e = qa_gguf_find_kv(g, key);
    return e && e->type == QA_GV_ARRAY && e->arr_type == QA_GV_STRING ? e : NULL;
}

/* --------------------------------------------------------------- pre-tokenizer names */

static int pre_kind(const uint8_t *s, uint64_t n, int *ignore_merges, int *add_bos) {
    static const char *gpt2[] = {"default", "gpt2", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
                                 "jina-v2-es", "jina-v2-de", "mpt", "olmo", "jais", "roberta-bpe",
                                 "jina-v1-en", "jina-v2-code", "exaone4", "trillion", "mellum", NULL};
    static const char *smollm[] = {"smollm", "starcoder", "refact", "command-r", "codeshell",
                                   "exaone", "minerva-7b", NULL};
    static const char *llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                   "pixtral", "midm-2.0", "lfm2", "dbrx", "smaug-bpe", NULL};
    static const char *qwen2[] = {"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "megrez", NULL};
    static const struct { const char **names; int pre; } groups[] = {
        {gpt2, QA_PRE_GPT2}, {smollm, QA_PRE_SMOLLM}, {llama3, QA_PRE_LLAMA3}, {qwen2, QA_PRE_QWEN2}};
    for (unsigned g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (const char **p = groups[g].names; *p; p++)
            if (strlen(*p) == n && !memcmp(*p, s, n)) {
                /* llama.cpp: the llama3 names (not dbrx / smaug) also imply add_bos */
                *ignore_merges = groups[g].pre == QA_PRE_LLAMA3;
                *add_bos = groups[g].pre == QA_PRE_LLAMA3 && p - groups[g].names < 8;
                return groups[g].pre;
            }
    return 0;
}

/* Kind, pre-tokenizer and flags from the metadata; 0 with err set if unusable. */
static int read_kind(const qa_gguf *g, int *pre, int *ignore_merges, int *add_bos, char *err,
                     size_t err_len) {
    const qa_gguf_kv *m = qa_gguf_find_kv(g, "tokenizer.ggml.model");
    *pre = 0;
    *ignore_merges = 0;
    *add_bos = 0;
    if (!m || m->type != QA_GV_STRING) {
        qa_set_err(err, err_len, "no tokenizer.ggml.model in this GGUF (no vocabulary)");
        return 0;
    }
    if (key_is(m, "llama")) {
        *add_bos = 1;
        return QA_TOK_SPM;
    }
    if (!key_is(m, "gpt2")) {
        uint64_t n = rd64(m->val);
        qa_set_err(err, err_len, "unsupported tokenizer model '%.*s' (gpt2 and llama are supported)",
                   (int)(n > 64 ? 64 : n), m->val + 8);
        return 0;
    }
    const qa_gguf_kv *p = qa_gguf_find_kv(g, "tokenizer.ggml.pre");
    if (!p || p->type != QA_GV_STRING) {
        *pre = QA_PRE_GPT2; /* llama.cpp falls back to 'default' */
    } else {
        uint64_t n = rd64(p->val);
        *pre = pre_kind(p->val + 8, n, ignore_merges, add_bos);
        if (!*pre) {
            qa_set_err(err, err_len, "unsupported pre-tokenizer '%.*s' (tokenizer.ggml.pre)",
                       (int)(n > 64 ? 64 : n), p->val + 8);
            return 0;
        }
    }
    if (!string_array(g, "tokenizer.ggml.merges")) {
        qa_set_err(err, err_len, "BPE vocabulary without tokenizer.ggml.merges");
        return 0;
    }
    return QA_TOK_BPE;
}

/* ------------------------------------------------------------------ arena layout */

typedef struct {
    uint64_t n, n_merges, text_bytes, max_len, hash_cap, merge_cap;
} sizes;

static int measure(const qa_gguf *g, sizes *z, char *err, size_t err_len) {
    const qa_gguf_kv *t = string_array(g, "tokenizer.ggml.tokens");
    if (!t || t->arr_n == 0 || t->arr_n > MAX_VOCAB) {
        qa_set_err(err, err_len, "missing or bad tokenizer.ggml.tokens");
        return 0;
    }
    memset(z, 0, sizeof *z);
    z->n = t->arr_n;
    const uint8_t *p = t->val;
    for (uint64_t i = 0; i < z->n; i++) {
        uint64_t l = rd64(p);
        if (l > 0xffff) {
            qa_set_err(err, err_len, "token %llu is %llu bytes long", (unsigned long long)i,
                       (unsigned long long)l);
            return 0;
        }
        z->text_bytes += l;
        if (l > z->max_len) z->max_len = l;
        p += 8 + l;
    }
    const qa_gguf_kv *m = string_array(g, "tokenizer.ggml.merges");
    z->n_merges = m ? m->arr_n : 0;
    z->hash_cap = pow2_at_least(2 * z->n);
    z->merge_cap = pow2_at_least(2 * z->n_merges);
    return 1;
}

#define ALIGN8(x) (((x) + 7) & ~(uint64_t)7)

static uint64_t layout_size(const sizes *z) {
    uint64_t n = z->n;
    return ALIGN8(n * sizeof(void *)) * 2 + ALIGN8(n * 4) * 4 + ALIGN8(n) + z->hash_cap * 8 +
           z->merge_cap * sizeof(qa_tok_merge) + ALIGN8(z->text_bytes) + ALIGN8(2 * z->max_len + 8) + 64;
}

uint64_t qa_tok_arena_size(const qa_gguf *g, char *err, size_t err_len) {
    int pre, im, ab;
    sizes z;
    if (!read_kind(g, &pre, &im, &ab, err, err_len) || !measure(g, &z, err, err_len)) return 0;
    return layout_size(&z);
}

typedef struct {
    uint8_t *p, *end;
} bump;

static void *take(bump *b, uint64_t n) {
    uint8_t *r = b->p;
    n = ALIGN8(n);
    if (n > (uint64_t)(b->end - b->p)) return NULL;
    b->p += n;
    return r;
}

/* ------------------------------------------------------------------ lookup */

/* Entries: id + 1 in the low half (0 = empty), the key's full hash in the high half, so a
 * probe touches a token's bytes only when the hashes agree. */
static const uint8_t *key_of(const qa_tok *t, uint32_t id, uint32_t *n) {
    int bpe = t->kind == QA_TOK_BPE;
    *n = bpe ? t->piece_len[id] : t->text_len[id];
    return bpe ? t->piece[id] : t->text[id];
}

int32_t qa_tok_find(const qa_tok *t, const uint8_t *s, uint32_t n) {
    uint32_t hv = hash_bytes(s, n), h = hv & t->hash_mask;
    for (;;) {
        uint64_t e = t->hash[h];
        if (!e) return -1;
        if ((uint32_t)(e >> 32) == hv) {
            uint32_t id = (uint32_t)e - 1, kl;
            const uint8_t *k = key_of(t, id, &kl);
            if (kl == n && !memcmp(k, s, n)) return (int32_t)id;
        }
        h = (h + 1) & t->hash_mask;
    }
}

/* Later ids replace earlier ones with the same key (llama.cpp's token_to_id map). */
static void hash_put(qa_tok *t, const uint8_t *s, uint32_t n, uint32_t id) {
    uint32_t hv = hash_bytes(s, n), h = hv & t->hash_mask;
    for (;;) {
        uint64_t e = t->hash[h];
        if (!e) break;
        if ((uint32_t)(e >> 32) == hv) {
            uint32_t kl;
            const uint8_t *k = key_of(t, (uint32_t)e - 1, &kl);
            if (kl == n && !memcmp(k, s, n)) break;
        }
        h = (h + 1) & t->hash_mask;
    }
    t->hash[h] = (uint64_t)hv << 32 | (id + 1);
}

/* GPT-2 byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68
 * bytes are U+0100.. in byte order. Returns the byte, or -1 for a codepoint outside it. */
static int byte_of_cp(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 0x100 || cp >= 0x144) return -1;
    uint32_t k = cp - 0x100;
    return k < 33 ? (int)k : k < 67 ? (int)(0x7F + k - 33) : 0xAD;
}

/* Byte-level text -> raw bytes; returns the length, or -1 if a character is outside the
 * alphabet (such a token can never be produced from text, as in llama.cpp). */
static int64_t bytelevel_decode(const uint8_t *s, uint32_t n, uint8_t *out) {
    uint64_t o = 0;
    for (uint32_t i = 0; i < n;) {
        uint32_t used;
        uint32_t cp = qa_utf8_next(s + i, n - i, &used);
        int b = byte_of_cp(cp);
        if (b < 0 || (cp == 0xFFFD && used == 1)) return -1;
        out[o++] = (uint8_t)b;
        i += used;
    }
    return (int64_t)o;
}

static int hexval(uint8_t c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* <0xXX> -> XX, or -1 */
static int byte_token(const uint8_t *s, uint32_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || hexval(s[3]) < 0 || hexval(s[4]) < 0) return -1;
    return hexval(s[3]) * 16 + hexval(s[4]);
}

/* ------------------------------------------------------------------ init */

static int is_special(int ty) { return ty == QA_TT_CONTROL || ty == QA_TT_USER || ty == QA_TT_UNKNOWN; }

static int32_t opt_id(const qa_gguf *g, const char *key, int32_t n) {
    uint32_t v;
    return qa_gguf_get_u32(g, key, &v) == QA_OK && v < (uint32_t)n ? (int32_t)v : -1;
}

/* End-of-generation texts (llama.cpp's list: a generation stops at any of them). */
static const char *const EOG_TEXT[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~[", NULL};
/* Further texts llama.cpp treats as control tokens whatever their token_type says
 * (fill-in-the-middle markers): not matched in text without parse_special, not decoded. */
static const char *const CONTROL_TEXT[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", "<|fim_suffix|>", "<fim-suffix>",
    "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "<SUF>", "\xE2\x96\x81<SUF>",
    "<|code_suffix|>", "<|suffix|>", "<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>",
    "<|middle|>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>",
    "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>", NULL};

static int text_in(const qa_tok *t, int32_t id, const char *const *list) {
    for (const char *const *p = list; *p; p++)
        if (t->text_len[id] == strlen(*p) && !memcmp(t->text[id], *p, t->text_len[id])) return 1;
    return 0;
}

static int build_merges(qa_tok *t, const qa_gguf *g, uint8_t *tmp, uint64_t max_len) {
    const qa_gguf_kv *m = string_array(g, "tokenizer.ggml.merges");
    const uint8_t *p = m->val;
    for (uint64_t r = 0; r < m->arr_n; r++) {
        uint64_t l = rd64(p);
        const uint8_t *s = p + 8;
        p += 8 + l;
        /* "A B": the first space after the first byte splits (A may itself be a space) */
        uint64_t sp = 1;
        while (sp < l && s[sp] != ' ') sp++;
        if (sp >= l || l - sp - 1 > max_len || sp > max_len) continue;
        int64_t na = bytelevel_decode(s, (uint32_t)sp, tmp);
        if (na < 0) continue;
        int64_t nb = bytelevel_decode(s + sp + 1, (uint32_t)(l - sp - 1), tmp + na);
        if (nb < 0) continue;
        int32_t a = qa_tok_find(t, tmp, (uint32_t)na), b = qa_tok_find(t, tmp + na, (uint32_t)nb);
        int32_t ab = qa_tok_find(t, tmp, (uint32_t)(na + nb));
        if (a < 0 || b < 0 || ab < 0) continue; /* the pair could never be formed or named */
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
        uint32_t h = hash_pair(key) & t->merge_mask;
        while (t->merges[h].rank && t->merges[h].key != key) h = (h + 1) & t->merge_mask;
        if (t->merges[h].rank) continue; /* first rank wins */
        t->merges[h] = (qa_tok_merge){key, (uint32_t)r + 1, ab};
    }
    return QA_OK;
}

/* a before b: longer text, then lower id */
static int special_before(const qa_tok *t, int32_t a, int32_t b) {
    return t->text_len[a] > t->text_len[b] || (t->text_len[a] == t->text_len[b] && a < b);
}

static void sift_down(const qa_tok *t, int32_t *v, int32_t i, int32_t n) {
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && special_before(t, v[c], v[c + 1])) c++; /* the later one rises */
        if (!special_before(t, v[i], v[c])) return;
        int32_t x = v[i];
        v[i] = v[c];
        v[c] = x;
        i = c;
    }
}

/* heap sort: no allocation, n log n whatever the lengths in the file */
static void sort_specials(qa_tok *t) {
    int32_t *v = t->special, n = t->n_special;
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(t, v, i, n);
    for (int32_t end = n - 1; end > 0; end--) {
        int32_t x = v[0];
        v[0] = v[end];
        v[end] = x;
        sift_down(t, v, 0, end);
    }
}

int qa_tok_init(qa_tok *t, const qa_gguf *g, void *arena, uint64_t arena_size, char *err,
                size_t err_len) {
    int pre, ignore_merges, add_bos;
    sizes z;
    memset(t, 0, sizeof *t);
    int kind = read_kind(g, &pre, &ignore_merges, &add_bos, err, err_len);
    if (!kind || !measure(g, &z, err, err_len)) return QA_ERR_FORMAT;
    if (arena_size < layout_size(&z)) {
        qa_set_err(err, err_len, "tokenizer arena of %llu bytes, %llu needed",
                   (unsigned long long)arena_size, (unsigned long long)layout_size(&z));
        return QA_ERR_SPACE;
    }
    bump b = {(uint8_t *)(((uintptr_t)arena + 7) & ~(uintptr_t)7), (uint8_t *)arena + arena_size};
    uint64_t n = z.n;
    t->kind = kind;
    t->pre = pre;
    t->n_vocab = (int32_t)n;
    t->text = take(&b, n * sizeof(void *));
    t->piece = take(&b, n * sizeof(void *));
    t->text_len = take(&b, n * 4);
    t->piece_len = take(&b, n * 4);
    t->score = take(&b, n * 4);
    t->special = take(&b, n * 4);
    t->type = take(&b, n);
    t->hash = take(&b, z.hash_cap * 8);
    t->merges = take(&b, z.merge_cap * sizeof(qa_tok_merge));
    uint8_t *pieces = take(&b, z.text_bytes ? z.text_bytes : 1);
    uint8_t *tmp = take(&b, 2 * z.max_len + 8);
    if (!tmp) {
        qa_set_err(err, err_len, "tokenizer arena too small");
        return QA_ERR_SPACE;
    }
    t->hash_mask = (uint32_t)z.hash_cap - 1;
    t->merge_mask = (uint32_t)z.merge_cap - 1;
    memset(t->hash, 0, z.hash_cap * 8);
    memset(t->merges, 0, z.merge_cap * sizeof(qa_tok_merge));

    const qa_gguf_kv *types = qa_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (types && (types->type != QA_GV_ARRAY || types->arr_type != QA_GV_I32 || types->arr_n < n)) {
        qa_set_err(err, err_len, "bad tokenizer.ggml.token_type (int32 array of n_vocab expected)");
        return QA_ERR_FORMAT;
    }
    const qa_gguf_kv *scores = qa_gguf_find_kv(g, "tokenizer.ggml.scores");
    if (scores && (scores->type != QA_GV_ARRAY || scores->arr_type != QA_GV_F32 || scores->arr_n < n)) {
        qa_set_err(err, err_len, "bad tokenizer.ggml.scores (float32 array of n_vocab expected)");
        return QA_ERR_FORMAT;
    }

    const uint8_t *p = string_array(g, "tokenizer.ggml.tokens")->val;
    uint64_t po = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)rd64(p);
        const uint8_t *s = p + 8;
        p += 8 + l;
        int32_t ty = QA_TT_NORMAL;
        if (types) memcpy(&ty, types->val + 4 * i, 4);
        if (ty < QA_TT_NORMAL || ty > QA_TT_BYTE) ty = QA_TT_NORMAL;
        t->type[i] = (uint8_t)ty;
        t->text[i] = s;
        t->text_len[i] = l;
        t->piece[i] = s;
        t->piece_len[i] = l;
        if (scores) memcpy(&t->score[i], scores->val + 4 * i, 4);
        else t->score[i] = 0.0f;
        int bt = byte_token(s, l);
        if (kind == QA_TOK_BPE) {
            /* Keyed on the raw bytes of its byte-level text (specials such as <|im_end|> too:
             * ASCII decodes to itself); a text outside the alphabet is never looked up. */
            int64_t r = bytelevel_decode(s, l, pieces + po);
            if (ty == QA_TT_BYTE && bt >= 0) {
                pieces[po] = (uint8_t)bt;
                r = 1;
            }
            if (r >= 0 && l > 0) {
                t->piece[i] = pieces + po;
                t->piece_len[i] = (uint32_t)r;
                po += (uint64_t)r;
                hash_put(t, t->piece[i], (uint32_t)r, (uint32_t)i);
            }
        } else {
            if (ty == QA_TT_BYTE && bt >= 0) {
                pieces[po] = (uint8_t)bt;
                t->piece[i] = pieces + po++;
                t->piece_len[i] = 1;
            } else if (ty == QA_TT_NORMAL) {
                /* U+2581 (e2 96 81) -> ' ' */
                uint64_t o = po;
                for (uint32_t j = 0; j < l;) {
                    if (j + 2 < l && s[j] == 0xE2 && s[j + 1] == 0x96 && s[j + 2] == 0x81) {
                        pieces[o++] = ' ';
                        j += 3;
                    } else {
                        pieces[o++] = s[j++];
                    }
                }
                t->piece[i] = pieces + po;
                t->piece_len[i] = (uint32_t)(o - po);
                po = o;
            }
            if (l > 0) hash_put(t, s, l, (uint32_t)i);
        }
    }
    if (po > z.text_bytes) return QA_ERR_SPACE; /* cannot happen: pieces never grow */

    for (int c = 0; c < 256; c++) {
        uint8_t k[6] = {'<', '0', 'x', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15], '>'};
        uint8_t one = (uint8_t)c;
        t->byte_id[c] = kind == QA_TOK_BPE ? qa_tok_find(t, &one, 1) : qa_tok_find(t, k, 6);
    }
    if (kind == QA_TOK_BPE) build_merges(t, g, tmp, z.max_len);

    /* control-looking texts become control tokens, as llama.cpp overrides them */
    for (uint64_t i = 0; i < n; i++) {
        uint8_t c = t->text_len[i] ? t->text[i][0] : 0;
        if ((c == '<' || c == '[' || c == '_' || c == 0xE2) &&
            (text_in(t, (int32_t)i, EOG_TEXT) || text_in(t, (int32_t)i, CONTROL_TEXT)))
            t->type[i] = QA_TT_CONTROL;
    }

    /* special tokens, longest text first (ties by id) */
    for (uint64_t i = 0; i < n; i++)
        if (is_special(t->type[i]) && t->text_len[i] > 0) {
            t->special[t->n_special++] = (int32_t)i;
            if (t->text_len[i] > t->max_special_len) t->max_special_len = t->text_len[i];
        }
    sort_specials(t);

    int32_t nv = (int32_t)n;
    t->bos = opt_id(g, "tokenizer.ggml.bos_token_id", nv);
    t->eos = opt_id(g, "tokenizer.ggml.eos_token_id", nv);
    t->eot = opt_id(g, "tokenizer.ggml.eot_token_id", nv);
    t->eom = opt_id(g, "tokenizer.ggml.eom_token_id", nv);
    t->unk = opt_id(g, "tokenizer.ggml.unknown_token_id", nv);
    t->pad = opt_id(g, "tokenizer.ggml.padding_token_id", nv);
    t->sep = opt_id(g, "tokenizer.ggml.seperator_token_id", nv);
    if (t->eot < 0) { /* as llama.cpp: an end-of-turn token found by its text */
        static const char *const eot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                          "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                          "<end_of_utterance>", NULL};
        for (const char *const *q = eot; *q && t->eot < 0; q++)
            for (int32_t i = 0; i < t->n_special; i++) {
                const char *one[] = {*q, NULL};
                if (text_in(t, t->special[i], one)) {
                    t->eot = t->special[i];
                    break;
                }
            }
    }
    int v;
    t->add_bos = add_bos;
    t->add_eos = 0;
    t->add_space_prefix = kind == QA_TOK_SPM;
    t->ignore_merges = ignore_merges;
    if (qa_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &v) == QA_OK) t->add_bos = v;
    if (qa_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &v) == QA_OK) t->add_eos = v;
    if (qa_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &v) == QA_OK) t->add_space_prefix = v;
    if (t->add_bos && t->bos < 0) t->add_bos = 0;
    if (t->add_eos && t->eos < 0) t->add_eos = 0;
    const qa_gguf_kv *ct = qa_gguf_find_kv(g, "tokenizer.chat_template");
    if (ct && ct->type == QA_GV_STRING) {
        t->chat_template = ct->val + 8;
        t->chat_template_len = rd64(ct->val);
    }
    return QA_OK;
}

int qa_tok_is_eog(const qa_tok *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return 0;
    if (id == t->eos || id == t->eot || id == t->eom) return 1;
    return text_in(t, id, EOG_TEXT);
}

/* Specials decode to their text as written; others to their piece. */
const uint8_t *qa_tok_piece(const qa_tok *t, int32_t id, uint32_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    int sp = is_special(t->type[id]);
    *len = sp ? t->text_len[id] : t->piece_len[id];
    return sp ? t->text[id] : t->piece[id];
}

/* ------------------------------------------------------------------ encode */

typedef struct {
    uint64_t off, len;
    int32_t id; /* -1: raw text */
} frag;

uint64_t qa_tok_max_ids(uint64_t len) { return 4 * len + 8; } /* a 1-byte special + U+2581 prefix: 4 ids */

static uint64_t frag_cap(uint64_t len) { return 2 * len + 2; }

uint64_t qa_tok_scratch_size(const qa_tok *t, uint64_t len) {
    uint64_t model = t->kind == QA_TOK_BPE ? qa_bpe_scratch_size(len) : qa_spm_scratch_size(len);
    return 2 * ALIGN8(frag_cap(len) * sizeof(frag)) + 65536 / 8 + model + 16;
}

static const uint8_t *find_bytes(const uint8_t *h, uint64_t hn, const uint8_t *s, uint32_t sn) {
    if (sn == 0 || hn < sn) return NULL;
    const uint8_t *end = h + hn - sn + 1;
    while (h < end) {
        h = memchr(h, s[0], (size_t)(end - h));
        if (!h) return NULL;
        if (!memcmp(h, s, sn)) return h;
        h++;
    }
    return NULL;
}

/* Splits the raw fragments of a at every occurrence of each special token, into b
 * (ping-pong). Returns the fragment count and which buffer holds the result. pairs is a
 * bitmap of the byte pairs in the text: most specials (Gemma has thousands) are ruled out
 * by their first two bytes without a search. */
static uint64_t partition(const qa_tok *t, const uint8_t *text, uint64_t len, int parse_special,
                          frag *a, frag *b, uint64_t *pairs, frag **out) {
    uint64_t n = 0;
    if (len) a[n++] = (frag){0, len, -1};
    if (!t->n_special || !len) {
        *out = a;
        return n;
    }
    memset(pairs, 0, 65536 / 8);
    for (uint64_t i = 0; i + 1 < len; i++) {
        uint32_t k = (uint32_t)text[i] << 8 | text[i + 1];
        pairs[k >> 6] |= 1ull << (k & 63);
    }
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        int ty = t->type[id];
        if (!parse_special && ty != QA_TT_USER) continue;
        const uint8_t *s = t->text[id];
        uint32_t sl = t->text_len[id];
        if (sl > len) continue;
        if (sl >= 2) {
            uint32_t pk = (uint32_t)s[0] << 8 | s[1];
            if (!(pairs[pk >> 6] >> (pk & 63) & 1)) continue;
        }
        if (!find_bytes(text, len, s, sl)) continue; /* common case: not in the text at all */
        uint64_t m = 0;
        for (uint64_t i = 0; i < n; i++) {
            frag f = a[i];
            if (f.id >= 0) {
                b[m++] = f;
                continue;
            }
            for (;;) {
                const uint8_t *hit = find_bytes(text + f.off, f.len, s, sl);
                if (!hit) {
                    b[m++] = f;
                    break;
                }
                uint64_t at = (uint64_t)(hit - text);
                if (at > f.off) b[m++] = (frag){f.off, at - f.off, -1};
                b[m++] = (frag){at, sl, id};
                uint64_t rest = f.off + f.len - (at + sl);
                if (!rest) break;
                f = (frag){at + sl, rest, -1};
            }
        }
        frag *sw = a;
        a = b;
        b = sw;
        n = m;
    }
    *out = a;
    return n;
}

int64_t qa_tok_encode(const qa_tok *t, const uint8_t *text, uint64_t len, int add_special,
                      int parse_special, int32_t *ids, uint64_t max_ids, void *scratch,
                      uint64_t scratch_size) {
    if (len > (1u << 30)) return QA_ERR_ARG;
    if (max_ids < qa_tok_max_ids(len) || scratch_size < qa_tok_scratch_size(t, len)) return QA_ERR_SPACE;
    uint8_t *sp = (uint8_t *)(((uintptr_t)scratch + 7) & ~(uintptr_t)7);
    frag *fa = (frag *)sp;
    frag *fb = (frag *)(sp + ALIGN8(frag_cap(len) * sizeof(frag)));
    uint64_t *pairs = (uint64_t *)(sp + 2 * ALIGN8(frag_cap(len) * sizeof(frag)));
    void *model_scratch = (uint8_t *)pairs + 65536 / 8;
    frag *fr;
    uint64_t nf = partition(t, text, len, parse_special, fa, fb, pairs, &fr);
    uint64_t n = 0;
    if (add_special && t->add_bos) ids[n++] = t->bos;
    int prev_special = 1; /* SPM: a space goes before text that starts the input or follows a special */
    for (uint64_t i = 0; i < nf; i++) {
        if (fr[i].id >= 0) {
            ids[n++] = fr[i].id;
            prev_special = 1;
            continue;
        }
        if (t->kind == QA_TOK_BPE)
            n += qa_bpe_encode(t, text + fr[i].off, fr[i].len, ids + n, model_scratch);
        else
            n += qa_spm_encode(t, text + fr[i].off, fr[i].len, t->add_space_prefix && prev_special,
                               ids + n, model_scratch);
        prev_special = 0;
    }
    if (add_special && t->add_eos) ids[n++] = t->eos;
    return (int64_t)n;
}

/* ------------------------------------------------------------------ decode */

void qa_tok_stream_init(qa_tok_stream *s, int strip_space) {
    memset(s, 0, sizeof *s);
    s->strip_space = strip_space;
}

uint64_t qa_tok_decode_max(const qa_tok *t, int32_t id) {
    uint32_t n;
    qa_tok_piece(t, id, &n);
    return (uint64_t)n + 4;
}

static int seq_len(uint8_t b) {
    return b >= 0xC0 && b < 0xE0 ? 2 : b >= 0xE0 && b < 0xF0 ? 3 : b >= 0xF0 && b < 0xF8 ? 4 : 0;
}

uint64_t qa_tok_decode(const qa_tok *t, qa_tok_stream *s, int32_t id, int special, uint8_t *out) {
    if (id < 0 || id >= t->n_vocab) return 0;
    int ty = t->type[id];
    if (ty == QA_TT_UNUSED || (!special && (ty == QA_TT_CONTROL || ty == QA_TT_UNKNOWN))) return 0;
    uint32_t n;
    const uint8_t *p = qa_tok_piece(t, id, &n);
    if (!n) return 0;
    if (s->strip_space && !s->started && p[0] == ' ') {
        p++;
        n--;
    }
    s->started = 1;
    uint64_t o = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (s->n_pend) {
            if ((c & 0xC0) == 0x80) {
                s->pend[s->n_pend++] = c;
                if (s->n_pend == seq_len(s->pend[0])) {
                    memcpy(out + o, s->pend, (size_t)s->n_pend);
                    o += (uint64_t)s->n_pend;
                    s->n_pend = 0;
                }
                continue;
            }
            memcpy(out + o, s->pend, (size_t)s->n_pend); /* broken sequence: pass it through */
            o += (uint64_t)s->n_pend;
            s->n_pend = 0;
        }
        if (seq_len(c)) s->pend[s->n_pend++] = c;
        else out[o++] = c;
    }
    return o;
}

uint64_t qa_tok_flush(qa_tok_stream *s, uint8_t *out) {
    uint64_t n = (uint64_t)s->n_pend;
    memcpy(out, s->pend, (size_t)n);
    s->n_pend = 0;
    return n;
}
