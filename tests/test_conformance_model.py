"""The model side of the conformance corpus (tests/conformance/model/manifest.json): every
bad model file gives quantann.FormatError with its expected message, when opened or at the
first embedding; never another exception (UnicodeDecodeError, ...), a crash, or NaN."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent / "conformance"
MANIFEST = json.loads((HERE / "model" / "manifest.json").read_text())
TEXTS = ["hello world", "the good text file", "x y z " * 20]


def open_and_embed(path):
    from quantann.model.embedder import Embedder

    with Embedder.open(path, n_threads=2) as e:
        info = e.info  # display strings decode (invalid UTF-8 shown as U+FFFD)
        assert {t["name"] for t in info["tensors"]}
        return e.embed(TEXTS)


def test_manifest_format():
    assert len(MANIFEST) >= 8
    for entry in MANIFEST:
        assert set(entry) == {"file", "kind", "error"} and entry["kind"] == "model"
        assert (HERE / "model" / entry["file"]).is_file(), entry["file"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_bad_model_gives_its_error(entry):
    from quantann.errors import FormatError

    with pytest.raises(FormatError) as exc:
        open_and_embed(HERE / "model" / entry["file"])
    assert entry["error"] in str(exc.value), str(exc.value)


def test_the_corpus_model_itself_is_good(tmp_path):
    """The synthetic model the bad files are made from loads and embeds (so every error above
    is the one thing each file breaks), and the script writes the committed bytes again."""
    sys.path.insert(0, str(HERE))
    try:
        import make_model_corpus
    finally:
        sys.path.pop(0)
    good = make_model_corpus.write(tmp_path / "good.gguf")
    e = open_and_embed(good)
    assert e.shape == (3, make_model_corpus.D) and np.isfinite(e).all()
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    make_model_corpus.build(tmp_path / "again")
    for entry in MANIFEST:
        assert (tmp_path / "again" / entry["file"]).read_bytes() == (HERE / "model" / entry["file"]).read_bytes()


def test_bad_utf8_in_keys_and_values_is_displayed_not_raised(tmp_path):
    """Metadata that is only shown (a key, general.name) may hold any bytes."""
    sys.path.insert(0, str(HERE))
    try:
        import make_model_corpus
    finally:
        sys.path.pop(0)
    import gguf

    p = make_model_corpus.write(tmp_path / "m.gguf", kv={"general.name": ("zzzzzz", gguf.GGUFValueType.STRING),
                                                        "quantann.qqqq": (1, gguf.GGUFValueType.UINT32)})
    make_model_corpus.patch(p, b"zzzzzz", b"\xff\xfe\xc3(ok")
    make_model_corpus.patch(p, b"quantann.qqqq", b"quantann.\xff\xfeqq")
    assert np.isfinite(open_and_embed(p)).all()
