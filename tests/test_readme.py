"""The README's snippets run as written: every ```python and ```sh block of README.md, in
order, in one temporary folder (a reader following along), with `quantann` and `python`
meaning this checkout. A block may be skipped only by an HTML comment right above it:
<!-- test: skip (reason) -->."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?:<!--\s*test:\s*skip\s*\((?P<why>[^)]*)\)\s*-->\s*\n)?```(?P<lang>python|sh)\n(?P<code>.*?)```",
                   re.S)


def blocks():
    text = (ROOT / "README.md").read_text()
    return [(m.group("lang"), m.group("code"), m.group("why"), text[:m.start()].count("\n") + 1)
            for m in BLOCK.finditer(text)]


def test_readme_has_runnable_blocks_and_few_skips():
    b = blocks()
    assert sum(lang == "python" for lang, *_ in b) >= 2 and sum(lang == "sh" for lang, *_ in b) >= 2
    assert sum(why is not None for _, _, why, _ in b) <= 2, "keep skipped README blocks rare"


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    """A working folder, and an environment where `quantann` and `python` are this checkout."""
    work = tmp_path_factory.mktemp("readme")
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    for name, cmd in (("python", f'exec "{sys.executable}" "$@"'),
                      ("quantann", f'exec "{sys.executable}" -m quantann "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{cmd}\n")
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return work, env


def test_readme_blocks_run_as_written(reader):
    work, env = reader
    for i, (lang, code, why, line) in enumerate(blocks()):
        if why is not None:
            continue
        if lang == "python":
            script = work / f"block{i}.py"
            script.write_text(code)
            cmd = [sys.executable, str(script)]
        else:
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"README.md line {line} ({lang}) failed:\n{code}\n--- stderr:\n{r.stderr[-3000:]}"
