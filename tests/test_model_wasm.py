"""The model kernel's C compiles unchanged for wasm32 (SIMD128), with no OS calls."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (sorted((ROOT / "kernel" / "model").rglob("*.c")) + sorted((ROOT / "kernel" / "gguf").glob("*.c"))
           + [ROOT / "kernel" / "simd.c"])


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: str(p.relative_to(ROOT / "kernel")))
def test_compiles_for_wasm32(tmp_path, src):
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang not installed")
    probe = subprocess.run([clang, "--target=wasm32-wasi", "-x", "c", "-c", "-o", str(tmp_path / "p.o"), "-"],
                           input="#include <string.h>\n", capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("no wasm32-wasi sysroot (Debian: wasi-libc)")
    out = tmp_path / (src.stem + ".o")
    p = subprocess.run([clang, "--target=wasm32-wasi", "-O3", "-msimd128", "-std=c11", "-Wall", "-Werror",
                        "-Wno-unused-function", "-I", str(ROOT / "kernel"), "-c", str(src), "-o", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    nm = shutil.which("llvm-nm") or shutil.which("llvm-nm-14")
    if nm:
        undefined = subprocess.run([nm, "-u", str(out)], capture_output=True, text=True).stdout
        for call in ("open", "read", "mmap", "malloc", "pthread_create", "fopen"):
            assert f" {call}\n" not in undefined, f"{src.name} calls {call}"
