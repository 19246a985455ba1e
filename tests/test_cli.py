"""The command line, end to end, as a user runs it."""
import json
import subprocess
import sys

import numpy as np
import pytest

from quantann.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "quantann", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory, real):
    x, q = real
    d = tmp_path_factory.mktemp("cli")
    np.save(d / "x.npy", x[:2000].astype(np.float16))
    np.save(d / "q.npy", q[:30])
    r = run("build", d / "x.npy", "-o", d / "i.qann", "--quant", "sq8", "--metric", "cosine", "-q")
    assert r.returncode == 0, r.stderr
    assert "of the float32 vectors" in r.stderr
    return d


def test_eval_json(files):
    r = run("eval", files / "i.qann", "--queries", files / "q.npy", "-k", 10, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("recall", "qps", "p50_ms", "p95_ms", "p99_ms", "memory_bytes", "float_bytes",
                "memory_fraction", "vectors_read_per_query"):
        assert key in out
    assert out["recall"] >= 0.95
    assert out["float_bytes"] == 2000 * 384 * 4
    assert out["memory_fraction"] == pytest.approx(out["memory_bytes"] / out["float_bytes"])
    # sq8's default rerank is "auto": between k and the pool of rerank 4 (40)
    assert out["rerank"] == "auto" and 10 <= out["vectors_read_per_query"] < 30
    assert out["p50_ms"] <= out["p95_ms"] <= out["p99_ms"]
    r = run("eval", files / "i.qann", "--queries", files / "q.npy", "-k", 10, "--rerank", 4, "--json")
    assert json.loads(r.stdout)["vectors_read_per_query"] == 40


def test_search_and_info(files, capsys):
    assert main(["search", str(files / "i.qann"), "--queries", str(files / "q.npy"), "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.array(out["ids"]).shape == (30, 3)
    assert main(["info", str(files / "i.qann"), "--verify"]) == 0
    text = capsys.readouterr().out
    assert "2000 x 384" in text and "vectors ok" in text


def test_errors_are_messages_not_tracebacks(files, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 7), np.float32))
    r = run("search", files / "i.qann", "--queries", tmp_path / "bad.npy")
    assert r.returncode == 1 and "dimension 7, the index has 384" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "junk.qann").write_bytes(b"hello")
    r = run("info", tmp_path / "junk.qann")
    assert r.returncode == 1 and "too short" in r.stderr
    r = run("eval", files / "i.qann", "--queries", files / "q.npy", "--memory-budget", "1KB")
    assert r.returncode == 1 and "over the budget" in r.stderr
    r = run("build", tmp_path / "nope.npy", "-o", tmp_path / "o.qann")
    assert r.returncode != 0 and "does not exist" in r.stderr


@pytest.mark.parametrize("cmd", ["build", "search", "eval", "info", "demo"])
def test_help(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0 and "usage: quantann " + cmd in r.stdout


def test_demo_runs_on_builtin_data(tmp_path):
    r = run("demo", "--workdir", tmp_path, "--queries", 30, "--show", 1)
    assert r.returncode == 0, r.stderr
    assert "sq8 codes + rerank x4 from disk" in r.stdout and "query:" in r.stdout
    line = next(l for l in r.stdout.splitlines() if l.startswith("sq8 codes + rerank"))
    assert float(line.split()[7]) >= 0.9  # recall@10 column


# ---- a user's mistakes: `error: ...`, exit 1 (2 only for usage), never a traceback -------

def failed(r, *needles):
    """The run ended as a user error should: status 1, an `error:` line, no traceback."""
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "error:" in r.stderr and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_index_url_on_a_server_that_is_down(files):
    url = f"http://127.0.0.1:{free_port()}/i.qann"
    failed(run("search", url, "--queries", files / "q.npy"), "cannot reach", url)
    failed(run("info", url), "cannot reach")


def test_text_query_on_a_vector_only_index(files):
    failed(run("search", files / "i.qann", "--text", "a question"), "holds vectors only", "--queries")


def test_serve_on_a_port_in_use(files):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        failed(run("serve", files / "i.qann", "--port", port), "is in use", f"127.0.0.1:{port}", "--port")


def test_serve_without_its_extra_names_the_install_command(files):
    # the service's packages made unimportable, as in an install without [serve]
    code = ("import sys\n"
            "for m in ('prometheus_client', 'uvicorn', 'starlette'): sys.modules[m] = None\n"
            "from quantann.cli import main\n"
            f"sys.exit(main(['serve', {str(files / 'i.qann')!r}, '--port', '0']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    failed(r, "pip install 'quantann[serve]'")


def test_embed_and_build_fail_alike_on_the_same_bad_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json at all\n')
    b = run("build", bad, "--model", tmp_path / "m.gguf", "-o", tmp_path / "o.qann")
    e = run("embed", tmp_path / "m.gguf", "--input", bad, "-o", tmp_path / "o.npy")
    failed(b)
    failed(e)
    assert b.stderr.splitlines()[-1] == e.stderr.splitlines()[-1]
    assert run("embed").returncode == 2  # usage stays 2


def test_info_verify_fails_on_a_corrupt_vector(files, tmp_path):
    data = bytearray((files / "i.qann").read_bytes())
    data[-100] ^= 0xFF  # inside the full vectors, the file's last tensor
    (tmp_path / "c.qann").write_bytes(bytes(data))
    assert run("info", tmp_path / "c.qann").returncode == 0  # the in-memory part is intact
    r = run("info", tmp_path / "c.qann", "--verify")
    failed(r, "checksum")
    assert "MISMATCH" in r.stdout


def test_build_with_rows_in_cells_order(files, tmp_path, capsys):
    r = run("build", files / "x.npy", "-o", tmp_path / "c.qann", "--row-order", "cells", "-q")
    assert r.returncode == 0, r.stderr
    assert main(["search", str(tmp_path / "c.qann"), "--queries", str(files / "q.npy"), "-k", "10", "--json"]) == 0
    ordered = np.array(json.loads(capsys.readouterr().out)["ids"])
    assert main(["search", str(files / "i.qann"), "--queries", str(files / "q.npy"), "-k", "10", "--json"]) == 0
    plain = np.array(json.loads(capsys.readouterr().out)["ids"])
    # the input's row numbers: the same neighbour sets as the plain index's (storage rows would share ~none);
    # sets, not positions, since two threaded builds differ in near ties
    overlap = np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ordered, plain)])
    assert ordered.max() < 2000 and overlap > 0.9, overlap
    assert main(["info", str(tmp_path / "c.qann")]) == 0
    assert "numbered by the index (rows in a locality order), next id 2000" in capsys.readouterr().out
    assert main(["info", str(files / "i.qann")]) == 0
    assert "ids         row numbers" in capsys.readouterr().out
    evals = [json.loads(run("eval", f, "--queries", files / "q.npy", "-k", 10, "--json").stdout)
             for f in (tmp_path / "c.qann", files / "i.qann")]  # ground truth by ids: the same recall
    assert evals[0]["recall"] >= 0.95 and abs(evals[0]["recall"] - evals[1]["recall"]) <= 0.02
    r = run("build", files / "x.npy", "-o", tmp_path / "d.qann", "--row-order", "zorder")
    assert r.returncode == 2 and "invalid choice: 'zorder'" in r.stderr


def test_bench_forwards_every_argument_to_the_suite():
    """`quantann bench ARGS` is `python -m bench.run ARGS` in the checkout, options included."""
    r = run("bench", "--help")
    assert r.returncode == 0, r.stderr
    assert "python -m bench.run" in r.stdout and "--generate" in r.stdout and "--browser-name" in r.stdout
    r = run("bench", "--browser", "--no-such-option")
    assert r.returncode == 2 and "unrecognized arguments: --no-such-option" in r.stderr


def test_bench_outside_a_checkout_is_a_clear_error(monkeypatch, tmp_path, capsys):
    import quantann.suite_cli as suite_cli
    monkeypatch.setattr(suite_cli, "REPO", str(tmp_path))
    assert main(["bench", "--browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the benchmarks ship with the source checkout") and "Traceback" not in err
