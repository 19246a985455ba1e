"""The conformance corpus (tests/conformance/manifest.json): every bad file gives its
error, never a crash, through the one C reader. The same manifest runs under node
(web/test/conformance.test.js)."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import quantann

HERE = Path(__file__).parent / "conformance"
MANIFEST = json.loads((HERE / "manifest.json").read_text())


def open_file(kind, path):
    if kind == "index":
        return quantann.open(path)
    if kind == "model":
        from quantann.model.embedder import Embedder
        return Embedder.open(path)
    raise AssertionError(f"unknown kind {kind}")


@pytest.mark.parametrize("case", MANIFEST, ids=[c["file"] for c in MANIFEST])
def test_bad_file_gives_its_error(case):
    path = HERE / case["file"]
    with pytest.raises(quantann.FormatError) as e:
        open_file(case["kind"], path)
    assert case["error"] in str(e.value), str(e.value)
    assert str(path) in str(e.value)  # the message names the file


def test_corpus_base_opens_and_searches():
    idx = quantann.open(HERE / "index" / "good.qann")
    assert len(idx) == 48 and idx.has_user_ids
    ids, _ = idx.search(idx.store.read(np.array([3], np.int32))[0], k=3)
    assert ids[0, 0] == idx.ids[3]


def test_corpus_is_reproducible(tmp_path):
    """The script writes the same bytes again (the corpus in the repository is its output)."""
    subprocess.run([sys.executable, str(HERE / "make_index_corpus.py"), str(tmp_path)], check=True,
                   capture_output=True)
    for case in [c for c in MANIFEST if c["kind"] == "index"] + [{"file": "index/good.qann"}]:
        a = (HERE / case["file"]).read_bytes()
        b = (tmp_path / case["file"]).read_bytes()
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), case["file"]


def test_gguf_package_agrees_the_base_is_valid():
    """The gguf package (the oracle) reads the base file and finds what the C reader found."""
    from gguf import GGUFReader
    r = GGUFReader(HERE / "index" / "good.qann")
    names = {t.name for t in r.tensors}
    assert {"codes", "graph.links0", "vectors", "ids", "norms"} <= names
    idx = quantann.open(HERE / "index" / "good.qann")
    vt = next(t for t in r.tensors if t.name == "vectors")
    assert int(vt.data_offset) == idx.file.vectors_offset
    assert os.path.getsize(HERE / "index" / "good.qann") == idx.file.size
