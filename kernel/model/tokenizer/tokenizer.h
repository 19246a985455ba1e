/* Decoder-LLM tokenizers read from a GGUF vocabulary (llama.cpp's conventions):
 *   byte-level BPE  (tokenizer.ggml.model = "gpt2": tokens + merges, pre-tokenizer named by
 *                    tokenizer.ggml.pre)           bpe.c + pretokenize.c
 *   SentencePiece   (tokenizer.ggml.model = "llama": scores, <0xXX> byte fallback, U+2581
 *                    as the space marker)          spm.c
 * Shared: vocabulary index, special tokens matched literally, decoding   llm_vocab.c
 *
 * No allocation and no OS calls (the same C runs in wasm): the host sizes and passes the
 * arena for the vocabulary (qa_tok_arena_size, then qa_tok_init) and the scratch of each
 * encode (qa_tok_scratch_size). Token strings are read in place from the GGUF buffer, which
 * must outlive the tokenizer.
 */
#ifndef QA_TOKENIZER_H
#define QA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../../gguf/gguf.h"

enum { QA_TOK_BPE = 1, QA_TOK_SPM = 2 };

/* Byte-level BPE pre-tokenizers (the split regex llama.cpp uses for each tokenizer.ggml.pre). */
enum {
    QA_PRE_GPT2 = 1, /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    QA_PRE_SMOLLM,   /* every \p{N} alone, then GPT2 (also starcoder, refact, command-r) */
    QA_PRE_LLAMA3,   /* (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
                        \s*[\r\n]+|\s+(?!\S)|\s+ */
    QA_PRE_QWEN2     /* as LLAMA3 with \p{N} one at a time */
};

/* tokenizer.ggml.token_type values */
enum { QA_TT_NORMAL = 1, QA_TT_UNKNOWN = 2, QA_TT_CONTROL = 3, QA_TT_USER = 4, QA_TT_UNUSED = 5,
       QA_TT_BYTE = 6 };

typedef struct {
    uint64_t key;           /* left id << 32 | right id */
    uint32_t rank;          /* merge rank + 1; 0 = empty slot */
    int32_t out;            /* the merged token */
} qa_tok_merge;

typedef struct {
    int kind, pre;
    int32_t n_vocab;
    const uint8_t **text;   /* token text as stored in the file (not NUL-terminated) */
    uint32_t *text_len;
    const uint8_t **piece;  /* the bytes a token decodes to (BPE: byte-level decoded; SPM:
                               U+2581 -> ' ', <0xXX> -> the byte); specials: their text */
    uint32_t *piece_len;
    uint8_t *type;          /* QA_TT_* */
    float *score;           /* SPM merge priority */
    /* Lookup: open addressing, hash << 32 | id + 1 (0 = empty). Keyed on the piece for BPE
     * (only tokens whose text is valid byte-level), on the text for SPM. */
    uint64_t *hash;
    uint32_t hash_mask;
    /* BPE merges: (left id, right id) -> rank, merged id; open addressing, one cache line
     * per probe */
    qa_tok_merge *merges;
    uint32_t merge_mask;
    int32_t byte_id[256];   /* token of each single byte (BPE) or of <0xXX> (SPM); -1 = none */
    int32_t *special;       /* control / user-defined / unknown ids, longest text first */
    int32_t n_special;
    uint32_t max_special_len;
    int32_t bos, eos, eot, eom, unk, pad, sep; /* -1 = none */
    int add_bos, add_eos, add_space_prefix, ignore_merges;
    const uint8_t *chat_template; /* tokenizer.chat_template (NULL if absent) */
    uint64_t chat_template_len;
} qa_tok;

/* Arena bytes qa_tok_init needs for this file's vocabulary; 0 with err set if the file has
 * no usable vocabulary (missing keys, unsupported model or pre-tokenizer: err names it). */
uint64_t qa_tok_arena_size(const qa_gguf *g, char *err, size_t err_len);
int qa_tok_init(qa_tok *t, const qa_gguf *g, void *arena, uint64_t arena_size, char *err,
                size_t err_len);

/* Encoding. At most qa_tok_max_ids(len) ids result from len bytes of text; the scratch of
 * one encode call is qa_tok_scratch_size(t, len) bytes. add_special adds BOS/EOS as the
 * file says (add_bos_token / add_eos_token); parse_special matches control tokens written in
 * the text (user-defined tokens are always matched, as llama.cpp does). Returns the number of
 * ids, or a negative QA_ERR_* if ids or scratch are too small. */
uint64_t qa_tok_max_ids(uint64_t len);
uint64_t qa_tok_scratch_size(const qa_tok *t, uint64_t len);
int64_t qa_tok_encode(const qa_tok *t, const uint8_t *text, uint64_t len, int add_special,
                      int parse_special, int32_t *ids, uint64_t max_ids, void *scratch,
                      uint64_t scratch_size);

/* The bytes of one token (NULL, 0 for an id out of range). */
const uint8_t *qa_tok_piece(const qa_tok *t, int32_t id, uint32_t *len);
/* End-of-generation: eos, eot, eom, or a control token whose text ends a turn. */
int qa_tok_is_eog(const qa_tok *t, int32_t id);

/* Streaming decode: feed ids one at a time; only complete UTF-8 sequences are written, an
 * incomplete one at the end is held in the state until the next call (or qa_tok_flush).
 * Bytes that cannot start or continue a valid sequence are passed through as they are.
 * Control and unknown tokens are written only with special != 0. With strip_space the first
 * piece loses one leading space: decoding a whole SPM text (add_space_prefix) gives back
 * what was encoded; a stream of generated tokens keeps it. Returns the bytes written (out
 * needs qa_tok_decode_max bytes). */
typedef struct {
    uint8_t pend[4];
    int n_pend;
    int strip_space;
    int started;           /* a non-empty piece was emitted */
} qa_tok_stream;

void qa_tok_stream_init(qa_tok_stream *s, int strip_space);
uint64_t qa_tok_decode_max(const qa_tok *t, int32_t id); /* bytes qa_tok_decode may write */
uint64_t qa_tok_decode(const qa_tok *t, qa_tok_stream *s, int32_t id, int special, uint8_t *out);
uint64_t qa_tok_flush(qa_tok_stream *s, uint8_t *out); /* writes held bytes as they are */

/* ---- internal, shared by bpe.c / spm.c / pretokenize.c / llm_vocab.c ---- */

int32_t qa_tok_find(const qa_tok *t, const uint8_t *s, uint32_t n);
/* One fragment of raw text (no special tokens inside); appends ids, returns the count. */
uint64_t qa_bpe_encode(const qa_tok *t, const uint8_t *text, uint64_t len, int32_t *ids,
                       void *scratch);
uint64_t qa_bpe_scratch_size(uint64_t len);
uint64_t qa_spm_encode(const qa_tok *t, const uint8_t *text, uint64_t len, int space_prefix,
                       int32_t *ids, void *scratch);
uint64_t qa_spm_scratch_size(uint64_t len);

/* Pre-tokenizer over codepoints cp[0..n) with classes cls[] (QA_UC_*): qa_pretok_next gives
 * the next word as [*start, *end) and returns 1, or 0 at the end. The state carries the end
 * of the current digit-free run (SMOLLM splits every digit off first). */
typedef struct {
    int pre;
    const uint32_t *cp;
    const uint8_t *cls;
    uint64_t n, pos, run_end;
} qa_pretok;

uint8_t qa_uc_class(uint32_t cp);
void qa_pretok_begin(qa_pretok *p, int pre, const uint32_t *cp, const uint8_t *cls, uint64_t n);
int qa_pretok_next(qa_pretok *p, uint64_t *start, uint64_t *end);
/* llama.cpp's lenient UTF-8 reading: each byte that does not start a well-formed sequence
 * becomes U+FFFD. Returns the codepoint and sets *used (1..4). */
uint32_t qa_utf8_next(const uint8_t *s, uint64_t n, uint32_t *used);
uint32_t qa_utf8_put(uint32_t cp, uint8_t *out);

#endif
