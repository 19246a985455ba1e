"""The text-level index: texts stored beside the index, searched by text."""
import numpy as np
import pytest

import quantann
from quantann.text import TextIndex, TextStore, sidecar


class HashEmbedder:
    """Stands in for the GGUF model (tested on its own in test_model_*): a text's vector
    is a fixed random direction per word, so texts sharing words are near."""
    dim = 32
    path = None

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i] += np.random.default_rng(abs(hash(w)) % 2**32).normal(size=self.dim)
        out += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


WORDS = "apple banana cherry river mountain ocean python rust compiler kernel graph vector".split()


def corpus(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 3, replace=False)) + f" doc{i}" for i in range(n)]


def test_add_search_save_open(tmp_path):
    emb = HashEmbedder()
    ti = TextIndex.create(emb)
    texts = corpus(300)
    ids = ti.add_texts(texts)
    assert list(ids) == list(range(300))
    hit = ti.search_text(texts[17], k=3)
    assert hit[0][0] == 17 and hit[0][2] == texts[17]
    more = ti.add_texts(["ocean river mountain extra"])
    assert list(more) == [300]
    ti.index.delete([5])
    ti.save(tmp_path / "t.qann")
    store = TextStore(sidecar(tmp_path / "t.qann"))
    assert store.get([300, 5, 0]) == ["ocean river mountain extra", None, texts[0]]
    again = TextIndex.open(tmp_path / "t.qann", model=emb)
    assert len(again) == 300
    hits = again.search_text(["ocean river mountain extra", texts[42]], k=2)
    assert hits[0][0][2] == "ocean river mountain extra"
    assert hits[1][0][:1] == (42,) and hits[1][0][2] == texts[42]


def test_unicode_and_user_ids(tmp_path):
    emb = HashEmbedder()
    ti = TextIndex.create(emb)
    texts = ["naïve café über", "日本語 テキスト", "emoji 🚀 rocket", "plain ascii"]
    ti.add_texts(texts, ids=[10, 20, 30, 2**40])
    ti.save(tmp_path / "u.qann")
    assert TextStore(sidecar(tmp_path / "u.qann")).get([20, 2**40, 30]) == [texts[1], texts[3], texts[2]]


def test_errors(tmp_path):
    ti = TextIndex.create(None)
    with pytest.raises(ValueError, match="no embedding model"):
        ti.add_texts(["x"])
    with pytest.raises(ValueError, match="empty"):
        ti.search_text("x")
    ti.add_texts(["a b", "c d"], vectors=np.eye(2, 8, dtype=np.float32) + 0.1)
    ti.save(tmp_path / "v.qann")
    with pytest.raises(ValueError, match="no embedding model recorded"):
        TextIndex.open(tmp_path / "v.qann")
    with pytest.raises(ValueError, match="embeds 32-d vectors, the index holds 8-d"):
        TextIndex.open(tmp_path / "v.qann", model=HashEmbedder())
    side = sidecar(tmp_path / "v.qann")
    data = open(side, "rb").read()
    open(side, "wb").write(data[: len(data) - 40])
    with pytest.raises(quantann.FormatError):
        TextStore(side)
