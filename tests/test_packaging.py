"""The product carries no benchmark code: the lazy-loading baseline and the suite live in
bench/ (their own extension and wasm), not in the quantann package, its extension, its
wasm or its public JS module."""
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

import quantann
from quantann import _kernel

ROOT = Path(__file__).resolve().parent.parent
BENCH_SYMBOLS = ("qa_lazy", "qa_lru", "lazy")


def test_no_benchmark_modules_in_the_package():
    assert importlib.util.find_spec("quantann.bench") is None
    assert importlib.util.find_spec("quantann._lazy") is None
    pkg = Path(quantann.__file__).parent
    assert not [p for p in pkg.rglob("*") if "bench" in p.name or "lazy" in p.name]


@pytest.mark.skipif(not shutil.which("nm"), reason="no nm (binutils)")
def test_product_extension_has_no_benchmark_symbols():
    out = subprocess.run(["nm", _kernel.__file__], capture_output=True, text=True, check=True).stdout
    assert "qa_hnsw_search" in out or "PyInit__kernel" in out  # nm did read the symbols
    assert not [line for line in out.splitlines() if any(s in line.split()[-1] for s in BENCH_SYMBOLS)]


def test_product_wasm_and_js_module_have_no_lazy_baseline():
    wasm = ROOT / "web" / "dist" / "quantann.wasm"
    if wasm.exists():
        data = wasm.read_bytes()
        assert b"qa_wasm_search" in data and b"lazy" not in data
    src = (ROOT / "web" / "src")
    assert not (src / "lazy.js").exists()
    assert "lazy" not in (src / "quantann.js").read_text().lower()
