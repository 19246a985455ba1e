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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

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
    if (size < 3) return 0;
    uint64_t tlen = data[0] | data[1] << 8;
    uint8_t flags = data[2];
    if (tlen > size - 3) tlen = size - 3;
    uint8_t *text = malloc(tlen ? tlen : 1);
    memcpy(text, data + 3, tlen);
    uint64_t flen = size - 3 - tlen;
    uint8_t *file = malloc(flen ? flen : 1); /* 8-byte aligned, exactly the file */
    memcpy(file, data + 3 + tlen, flen);

    char err[256];
    uint64_t nkv, nt;
    qa_gguf_kv *kv = NULL;
    qa_gguf_tensor *tens = NULL;
    void *arena = NULL;
    qa_gguf g;
    qa_model m;
    if (qa_gguf_counts(file, flen, &nkv, &nt, err, sizeof err) != QA_OK) goto out;
    kv = calloc(nkv ? nkv : 1, sizeof *kv);
    tens = calloc(nt ? nt : 1, sizeof *tens);
    if (qa_gguf_parse(&g, file, flen, kv, nkv, tens, nt, err, sizeof err) != QA_OK) goto out;
    uint64_t asz = qa_model_arena_size(&g, err, sizeof err);
    if (!asz || asz > (256u << 20)) goto out;
    arena = malloc(asz);
    if (qa_model_init(&m, &g, arena, asz, err, sizeof err) != QA_OK) goto out;

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
    free(kv);
    free(tens);
    free(text);
    free(file);
    return 0;
}
