/* Next-token sampling from logits: repetition penalty, then top-k, top-p, min-p (on the
 * untempered distribution), then temperature and a draw (llama.cpp's default order).
 * temperature <= 0 is greedy. The random state is the caller's, so a seed reproduces a run. */
#ifndef QA_SAMPLE_H
#define QA_SAMPLE_H

#include <stdint.h>

typedef struct {
    float temperature, top_p, min_p, repeat_penalty;
    int top_k; /* <= 0: all */
} qa_sample_params;

/* logits is modified (penalties). recent: the last n_recent tokens (penalised once each).
 * work: n_vocab floats + n_vocab int32. Returns the token id. */
int qa_sample(float *logits, int n_vocab, const qa_sample_params *p, const int32_t *recent, int n_recent,
              uint64_t *rng, void *work);
/* A uniform float in [0, 1) from the state (splitmix64). */
float qa_rand_uniform(uint64_t *rng);

#endif
