"""Fuzzing (docs/FUZZING.md): the findings stay fixed, and every libFuzzer target builds and
runs clean for a few seconds (the long runs are `make fuzz`, FUZZ_SECONDS=N)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import quantann

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "tests" / "conformance"
FINDINGS = json.loads((CONF / "fuzz" / "manifest.json").read_text())


def open_file(kind, path, case_text=""):
    if kind == "index":
        return quantann.open(path)
    if kind == "model":
        from quantann.model.embedder import Embedder
        with Embedder.open(path, n_threads=1) as e:
            return e.embed([case_text])
    if kind == "tokenizer":
        from quantann._model import Tokenizer
        return Tokenizer(path.read_bytes())
    raise AssertionError(f"unknown kind {kind}")


@pytest.mark.parametrize("case", FINDINGS, ids=[c["file"] for c in FINDINGS])
def test_finding_gives_its_error(case):
    path = CONF / case["file"]
    with pytest.raises((quantann.FormatError, ValueError)) as e:
        open_file(case["kind"], path, case.get("text", ""))
    assert case["error"] in str(e.value), str(e.value)


def test_every_target_runs_clean(tmp_path):
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (scripts/setup.sh --full installs it)")
    env = dict(os.environ, FUZZ_SECONDS="2", FUZZ_OUT=str(tmp_path), PYTHON=sys.executable)
    r = subprocess.run([str(ROOT / "fuzz" / "run.sh")], env=env, capture_output=True, text=True, timeout=600)
    if r.returncode == 2:
        pytest.skip("clang cannot link -fsanitize=fuzzer: " + r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    targets = sorted(p.stem[len("fuzz_"):] for p in (ROOT / "fuzz").glob("fuzz_*.c"))
    for t in targets:
        assert f"fuzz_{t}: ok" in r.stdout, r.stdout
