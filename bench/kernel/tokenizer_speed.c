/* Native tokenizer speed, without any Python: quantann's C tokenizer and, built with
 * -DWITH_LLAMA, llama.cpp's llama_tokenize on the same texts (one call per line, no BOS,
 * specials not parsed), interleaved, median CPU seconds of 5 runs.
 *
 *   python -c "import json; [print(json.loads(l)['text'].replace('\n', ' ')) for l in
 *       open('../shared/datasets/minilm-100k/passages.jsonl')]" > /tmp/passages.txt
 *   cc -O2 -Ikernel bench/kernel/tokenizer_speed.c kernel/gguf/gguf.c \
 *       kernel/model/tokenizer/{llm_vocab,bpe,spm,pretokenize}.c \
 *       -o /tmp/tokspeed                                   # + -DWITH_LLAMA -I<llama.cpp>/include
 *                                                          #   -I<llama.cpp>/ggml/include -L<lib> -lllama
 *   taskset -c 1 /tmp/tokspeed MODEL.gguf /tmp/passages.txt [N_LINES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/tokenizer/tokenizer.h"
#ifdef WITH_LLAMA
#include "llama.h"
#endif

#define MAX_LINE 4096
#define RUNS 5

static char *slurp(const char *p, long *n) {
    FILE *f = fopen(p, "rb");
    if (!f) {
        fprintf(stderr, "error: cannot open %s\n", p);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n + 1);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) exit(1);
    fclose(f);
    b[*n] = 0;
    return b;
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef long (*encode_fn)(void *ctx, const char *s, int n, int32_t *ids, int cap);

static long run(encode_fn fn, void *ctx, char *text, long tl, int max_lines, int32_t *ids, double *sec) {
    long total = 0;
    int lines = 0;
    double t0 = cpu_now();
    for (char *p = text; p < text + tl && lines < max_lines; lines++) {
        char *e = memchr(p, '\n', (size_t)(text + tl - p));
        if (!e) e = text + tl;
        int n = (int)(e - p) > MAX_LINE ? MAX_LINE : (int)(e - p);
        total += fn(ctx, p, n, ids, 4 * MAX_LINE + 8);
        p = e + 1;
    }
    *sec = cpu_now() - t0;
    return total;
}

typedef struct {
    qa_tok t;
    void *scratch;
    uint64_t scratch_size;
} ours_ctx;

static long ours(void *c, const char *s, int n, int32_t *ids, int cap) {
    ours_ctx *o = c;
    return (long)qa_tok_encode(&o->t, (const uint8_t *)s, (uint64_t)n, 0, 0, ids, (uint64_t)cap, o->scratch,
                               o->scratch_size);
}

#ifdef WITH_LLAMA
static long theirs(void *v, const char *s, int n, int32_t *ids, int cap) {
    return llama_tokenize((const struct llama_vocab *)v, s, n, ids, cap, 0, 0);
}
#endif

static void report(const char *name, long tokens, double *t) {
    qsort(t, RUNS, sizeof *t, cmp_d);
    printf("  %-10s %ld tokens, median %.3f s CPU, %.2f M tokens/s\n", name, tokens, t[RUNS / 2],
           tokens / t[RUNS / 2] / 1e6);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf LINES.txt [N_LINES]\n", argv[0]);
        return 1;
    }
    int max_lines = argc > 3 ? atoi(argv[3]) : 20000;
    long len, tl;
    uint8_t *buf = (uint8_t *)slurp(argv[1], &len);
    char *text = slurp(argv[2], &tl), err[256];
    uint64_t nkv, nt;
    qa_gguf g;
    if (qa_gguf_counts(buf, (uint64_t)len, &nkv, &nt, err, sizeof err)) goto bad;
    qa_gguf_kv *kv = calloc(nkv, sizeof *kv);
    qa_gguf_tensor *ts = calloc(nt + 1, sizeof *ts);
    if (qa_gguf_parse(&g, buf, (uint64_t)len, kv, nkv, ts, nt, err, sizeof err)) goto bad;
    ours_ctx o;
    uint64_t asz = qa_tok_arena_size(&g, err, sizeof err);
    if (!asz || qa_tok_init(&o.t, &g, malloc(asz), asz, err, sizeof err)) goto bad;
    o.scratch_size = qa_tok_scratch_size(&o.t, MAX_LINE);
    o.scratch = malloc(o.scratch_size);
    int32_t *ids = malloc(sizeof(int32_t) * (4 * MAX_LINE + 8));
#ifdef WITH_LLAMA
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = 1;
    struct llama_model *m = llama_model_load_from_file(argv[1], mp);
    const struct llama_vocab *v = llama_model_get_vocab(m);
    double tl_[RUNS];
    long n_theirs = 0;
#endif
    double to[RUNS];
    long n_ours = 0;
    for (int r = 0; r < RUNS; r++) { /* interleaved */
        n_ours = run(ours, &o, text, tl, max_lines, ids, &to[r]);
#ifdef WITH_LLAMA
        n_theirs = run(theirs, (void *)v, text, tl, max_lines, ids, &tl_[r]);
#endif
    }
    printf("%s, %d lines of %s:\n", argv[1], max_lines, argv[2]);
    report("quantann", n_ours, to);
#ifdef WITH_LLAMA
    report("llama.cpp", n_theirs, tl_);
#endif
    return 0;
bad:
    fprintf(stderr, "error: %s\n", err);
    return 1;
}
