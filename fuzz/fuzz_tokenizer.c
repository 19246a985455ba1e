/* libFuzzer target: the decoder tokenizers (kernel/model/tokenizer/) over a fuzzed GGUF
 * vocabulary and fuzzed text: vocabulary init, encode (with and without special tokens),
 * streaming decode of the ids (and of fuzzed ids), the sizes the API promises held.
 *
 * Input: u16 text length (little endian) | u8 flags | text | GGUF vocabulary file.
 * fuzz/make_seeds.py writes seeds in this layout from tests/data/spm_synthetic.gguf and a
 * small byte-level BPE vocabulary. Build and run: fuzz/run.sh (make fuzz).
 */
#include "fuzz_input.h"
#include "model/tokenizer/tokenizer.h"

static void decode_all(const qa_tok *t, const int32_t *ids, int64_t n, int special, int strip) {
    uint64_t cap = 4; /* qa_tok_flush: at most the held bytes */
    for (int64_t i = 0; i < n; i++) cap += qa_tok_decode_max(t, ids[i]);
    uint8_t *out = malloc(cap);
    qa_tok_stream s;
    qa_tok_stream_init(&s, strip);
    uint64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t w = qa_tok_decode(t, &s, ids[i], special, out + o);
        CHECK(w <= qa_tok_decode_max(t, ids[i])); /* the bound the API gives */
        o += w;
        CHECK(o <= cap);
    }
    o += qa_tok_flush(&s, out + o);
    CHECK(o <= cap);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qa_fuzz_input in;
    if (!qa_fuzz_split(&in, data, size)) return 0;
    const uint8_t *text = in.text;
    uint64_t tlen = in.tlen;
    uint8_t flags = in.flags;
    char err[256];
    void *arena = NULL;
    qa_fuzz_gguf p;
    qa_tok t;
    if (qa_fuzz_parse(&p, in.file, in.flen) != QA_OK) goto done;
    uint64_t asz = qa_tok_arena_size(&p.g, err, sizeof err);
    if (!asz || asz > (256u << 20)) goto done;
    arena = malloc(asz);
    if (qa_tok_init(&t, &p.g, arena, asz, err, sizeof err) != QA_OK) goto done;
    CHECK(t.n_vocab > 0);

    uint64_t max_ids = qa_tok_max_ids(tlen);
    uint64_t ssz = qa_tok_scratch_size(&t, tlen);
    int32_t *ids = malloc(sizeof(int32_t) * (max_ids ? max_ids : 1));
    void *scratch = malloc(ssz ? ssz : 1);
    int64_t n = qa_tok_encode(&t, text, tlen, flags & 1, flags >> 1 & 1, ids, max_ids, scratch, ssz);
    CHECK(n >= 0 && (uint64_t)n <= max_ids); /* the promised sizes suffice */
    for (int64_t i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < t.n_vocab);
    decode_all(&t, ids, n, flags >> 2 & 1, flags >> 3 & 1);
    /* too small an output must be refused, not overrun */
    if (n > 1) (void)qa_tok_encode(&t, text, tlen, flags & 1, flags >> 1 & 1, ids, (uint64_t)n - 1, scratch, ssz);
    /* ids from the text's bytes, out of range included */
    int64_t m = tlen / 4;
    for (int64_t i = 0; i < m && i < (int64_t)max_ids; i++) memcpy(&ids[i], text + 4 * i, 4);
    decode_all(&t, ids, m < (int64_t)max_ids ? m : (int64_t)max_ids, flags >> 4 & 1, flags >> 5 & 1);
    for (int64_t i = 0; i < m && i < (int64_t)max_ids; i++) (void)qa_tok_is_eog(&t, ids[i]);
    free(ids);
    free(scratch);
done:
    free(arena);
    qa_fuzz_gguf_free(&p);
    qa_fuzz_input_free(&in);
    return 0;
}
