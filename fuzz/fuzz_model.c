/* libFuzzer target: a model GGUF opened and run (kernel/model/): architecture and
 * hyper-parameters bound, tensors bound in place, the vocabulary, tokenize a fuzzed text,
 * encode it (two sequences packed back to back) and encode fuzzed token ids. A bad file
 * must give an error; an encode that succeeds gives finite embeddings.
 *
 * Input: u16 text length (little endian) | u8 flags | text | model GGUF file.
 * fuzz/make_seeds.py writes seeds in this layout from tests/conformance/model/ (tiny
 * synthetic BERTs, each bad in one way). Build and run: fuzz/run.sh (make fuzz).
 */
#include <math.h>

#include "fuzz_input.h"
#include "model/model.h"

static qa_pool pool;

static void encode(const qa_model *m, const int32_t *ids, const int32_t *lens, int n_seq) {
    int total = 0, max_seq = 0;
    for (int s = 0; s < n_seq; s++) {
        total += lens[s];
        if (lens[s] > max_seq) max_seq = lens[s];
    }
    uint64_t ssz = qa_model_scratch_size(m, total, max_seq, pool.n_threads);
    if (ssz > (512u << 20)) return;
    void *scratch = malloc(ssz ? ssz : 1);
    float *out = malloc(sizeof(float) * (size_t)n_seq * m->hp.n_embd);
    char err[256];
    if (qa_model_encode(m, &pool, ids, lens, n_seq, out, NULL, scratch, ssz, err, sizeof err) == QA_OK)
        for (int64_t i = 0; i < (int64_t)n_seq * m->hp.n_embd; i++) CHECK(isfinite(out[i]));
    free(scratch);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int started;
    if (!started) {
        qa_model_select_simd();
        qa_pool_start(&pool, 1);
        started = 1;
    }
    qa_fuzz_input in;
    if (!qa_fuzz_split(&in, data, size)) return 0;
    const uint8_t *text = in.text;
    uint64_t tlen = in.tlen;
    uint8_t flags = in.flags;
    char err[256];
    void *arena = NULL;
    qa_fuzz_gguf p;
    qa_model m;
    if (qa_fuzz_parse(&p, in.file, in.flen) != QA_OK) goto out;
    uint64_t asz = qa_model_arena_size(&p.g, err, sizeof err);
    if (!asz || asz > (256u << 20)) goto out;
    arena = malloc(asz);
    if (qa_model_init(&m, &p.g, arena, asz, err, sizeof err) != QA_OK) goto out;

    int max_tokens = m.hp.max_tokens < 1 ? 1 : m.hp.max_tokens > 48 ? 48 : m.hp.max_tokens;
    int32_t *ids = malloc(sizeof(int32_t) * (max_tokens + tlen / 4 + 1));
    int n = qa_model_tokenize(&m, text, tlen, ids, max_tokens);
    CHECK(n >= 0 && n <= max_tokens);
    for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < m.hp.n_vocab);
    if (n > 0) {
        int32_t lens[2] = {n, (n + 1) / 2};
        memcpy(ids + n, ids, sizeof(int32_t) * lens[1]);
        encode(&m, ids, lens, flags & 1 ? 2 : 1);
    }
    /* ids and lengths straight from the text's bytes: out of range ones must be refused */
    int k = (int)(tlen / 4);
    if (k > 0 && (flags & 2)) {
        memcpy(ids, text, 4ull * k);
        int32_t lens[1] = {k};
        encode(&m, ids, lens, 1);
    }
    free(ids);
out:
    free(arena);
    qa_fuzz_gguf_free(&p);
    qa_fuzz_input_free(&in);
    return 0;
}
