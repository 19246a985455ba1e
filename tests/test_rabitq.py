"""RaBitQ codes (kernel/codec/rabitq.c): the estimate is unbiased, its error bound holds
at its stated confidence, more bits estimate better, and rerank="auto" reads only the
candidates the bound keeps, at a recall floor on real embeddings."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quantann import Index, _kernel
from quantann.constants import CODECS, METRICS
from quantann.quantize import Quantizer

RABITQ = [f"rabitq{b}" for b in range(1, 5)]
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "minilm-100k"
if not DATA.exists():
    DATA = Path("/work/shared/datasets/minilm-100k")


def estimates(kind, qz, q, codes, metric):
    return np.frombuffer(_kernel.codec_distances(CODECS[kind], "ref", metric, qz.d, qz.vmin, qz.scale, q, codes,
                                                 None, True), np.float32)


def clustered(n, d, rng):
    c = rng.normal(size=(8, d)).astype(np.float32)
    return (c[rng.integers(0, 8, n)] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_estimate_unbiased_and_better_with_bits(metric):
    rng = np.random.default_rng(3)
    d = 200
    x = clustered(3000, d, rng)
    qs = clustered(20, d, rng)
    m = METRICS[metric]
    sds = []
    for kind in RABITQ:
        qz = Quantizer.train(kind, x)
        codes = qz.encode(x)
        errs = []
        for q in qs:
            exact = ((x - q) ** 2).sum(1) if metric == "l2" else 1 - x @ q
            errs.append(estimates(kind, qz, q, codes, m) - exact)
        e = np.concatenate(errs)
        assert abs(e.mean()) < 0.05 * e.std(), (kind, e.mean(), e.std())  # unbiased, within noise
        sds.append(e.std())
    assert all(a > 1.5 * b for a, b in zip(sds, sds[1:])), sds  # each bit about halves the error


@pytest.mark.parametrize("kind", RABITQ)
def test_error_bound_holds(kind):
    """|estimate - exact| <= bound for ~95% of pairs (the bound's confidence) on clustered data
    and on real embeddings; the bound is not vacuous (well under the spread of distances)."""
    rng = np.random.default_rng(5)
    for x in (clustered(2000, 96, rng), np.load(DATA / "vectors.npy", mmap_mode="r")[:2000].astype(np.float32)):
        qz = Quantizer.train(kind, x)
        codes = qz.encode(x)
        inside, widths = [], []
        for q in x[rng.choice(len(x), 10, replace=False)] + 0.05:
            est = estimates(kind, qz, q, codes, METRICS["l2"])
            exact = ((x - q) ** 2).sum(1)
            b = np.frombuffer(_kernel.codec_bounds(CODECS[kind], METRICS["l2"], qz.d, qz.vmin, qz.scale, q, codes),
                              np.float32)
            inside.append(np.abs(est - exact) <= b)
            widths.append(b.mean() / exact.std())
        assert np.mean(inside) >= 0.93, (kind, np.mean(inside))
        assert np.mean(widths) < 2.0


def test_decode_is_the_projection():
    """The decoded point is c + the residual's projection on the code's direction: closer to
    x than the centroid, and closer with more bits."""
    rng = np.random.default_rng(7)
    x = clustered(500, 64, rng)
    errs = []
    for kind in RABITQ:
        qz = Quantizer.train(kind, x)
        errs.append(np.linalg.norm(qz.decode(qz.encode(x)) - x) / np.linalg.norm(x - qz.vmin[:64]))
    assert errs[0] < 0.9 and all(a > b for a, b in zip(errs, errs[1:])), errs


@pytest.fixture(scope="module")
def minilm10k():
    x = np.load(DATA / "vectors.npy", mmap_mode="r")[:10000].astype(np.float32)
    q = np.load(DATA / "queries.npy")[:100].astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    truth = np.argsort(-(qn @ xn.T), axis=1)[:, :10]
    return x, q, truth


def recall(ids, truth):
    return np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(ids.astype(np.int64), truth)])


def test_rerank_auto_recall_floor_and_reads(minilm10k, tmp_path):
    x, q, truth = minilm10k
    idx = Index.build(x, quant="rabitq4", M=16, seed=0)
    ids, dist = idx.search(q, k=10, ef=128, rerank="auto")
    reads = [s.vectors_read for s in idx.last_stats]
    assert recall(ids, truth) >= 0.97
    assert 10 <= min(reads) and np.mean(reads) < 20  # fewer than a fixed 2k, never fewer than k
    assert (np.diff(dist, axis=1) >= 0).all()  # exact distances, best first
    # the same results from the file
    idx.save(tmp_path / "a.qann")
    ids2, dist2 = Index.open(tmp_path / "a.qann").search(q, k=10, ef=128, rerank="auto")
    assert np.array_equal(ids, ids2) and np.array_equal(dist, dist2)


def test_rerank_auto_errors():
    x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    with pytest.raises(ValueError, match="rerank=auto needs codes with an error bound"):
        Index.build(x, quant="sq4").search(x[:1], k=5, rerank="auto")
    idx = Index.build(x, quant="rabitq2")
    with pytest.raises(ValueError, match="rerank=-1 is out of range"):
        idx.search(x[:1], k=5, rerank=-1)
    with pytest.raises(ValueError, match="rerank must be an integer"):
        idx.search(x[:1], k=5, rerank="automatic")


def test_file_rejects_bad_factors(tmp_path):
    """A rabitq code whose factors are not finite is a bad file, named as such."""
    x = np.random.default_rng(1).normal(size=(200, 16)).astype(np.float32)
    p = tmp_path / "a.qann"
    Index.build(x, quant="rabitq1", metric="l2").save(p)
    data = bytearray(p.read_bytes())
    idx = Index.open(p)
    code = idx.codes[7].tobytes()
    at = bytes(data).find(idx.codes.tobytes())
    assert at > 0
    cs = idx.quantizer.code_size
    data[at + 7 * cs + cs - 16: at + 7 * cs + cs - 12] = np.float32(np.nan).tobytes()
    assert code != bytes(data[at + 7 * cs: at + 8 * cs])
    p.write_bytes(bytes(data))
    with pytest.raises(Exception, match="rabitq code 7 has bad factors|checksum|CRC"):
        Index.open(p)


def test_cli_build_eval_auto(tmp_path):
    x = np.random.default_rng(2).normal(size=(2000, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "q.npy", x[:30] + 0.01)
    run = [sys.executable, "-m", "quantann"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run(run + ["build", str(tmp_path / "x.npy"), "-o", str(tmp_path / "i.qann"), "--quant", "rabitq4",
                          "-q"], check=True, env=env)
    out = subprocess.run(run + ["eval", str(tmp_path / "i.qann"), "--queries", str(tmp_path / "q.npy"),
                                "--rerank", "auto", "--json"], check=True, env=env, capture_output=True, text=True)
    r = json.loads(out.stdout)
    assert r["quant"] == "rabitq4" and r["recall"] >= 0.9
    assert r["memory_fraction"] > 0 and r["memory_fraction"] == pytest.approx(r["memory_bytes"] / r["float_bytes"])
    assert 10 <= r["vectors_read_per_query"] < 30 * 10  # at least k, at most the ef beam
    bad = subprocess.run(run + ["eval", str(tmp_path / "i.qann"), "--queries", str(tmp_path / "q.npy"),
                                "--rerank", "lots"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "expected an integer or 'auto'" in bad.stderr


def test_calibrated_bound_reads_fewer_at_equal_recall(minilm10k, tmp_path):
    """The build calibrates rerank auto's bound multiplier (quant.scale[0]) on sample rows:
    tighter than the paper's 1.9 on real embeddings, it reads fewer rows than the default
    and than a fixed 2k, at the recall of the fixed 2k; the file keeps it."""
    x, q, truth = minilm10k
    idx = Index.build(x, quant="rabitq3", M=12, seed=0)
    eps = float(idx.quantizer.scale[0])
    assert 0.0625 <= eps < 1.9
    runs = {}
    for name, mult in (("calibrated", eps), ("default", 0.0)):
        idx.quantizer.scale[0] = mult
        idx._reset_searchers()
        ids, _ = idx.search(q, k=10, ef=128, rerank="auto")
        runs[name] = recall(ids, truth), np.mean([s.vectors_read for s in idx.last_stats])
    idx.quantizer.scale[0] = eps
    idx._reset_searchers()
    ids2, _ = idx.search(q, k=10, ef=128, rerank=2)
    assert runs["calibrated"][1] < min(runs["default"][1], 20)
    assert runs["calibrated"][0] >= recall(ids2, truth) - 0.002, (runs, recall(ids2, truth))
    idx.save(tmp_path / "a.qann")
    back = Index.open(tmp_path / "a.qann")
    assert back.quantizer.scale[0] == np.float32(eps)
    ids3, _ = back.search(q, k=10, ef=128, rerank="auto")
    assert np.mean([s.vectors_read for s in back.last_stats]) == runs["calibrated"][1]


def test_calibration_follows_the_allowed_misses(minilm10k):
    """More allowed misses, a smaller multiplier (never larger); none allowed, every exact
    top-k row of the sample beams kept, so a multiplier at least as large."""
    x, _, _ = minilm10k
    idx = Index.build(x[:3000], quant="rabitq2", M=12, seed=0)
    kix = idx._kernel_index()
    xs = np.concatenate(list(idx.vectors()))
    eps = [kix.calibrate_bound(xs, 100, 10, 64, m, m) for m in (0.0, 0.001, 0.01, 0.1, 1.0)]
    assert all(a >= b for a, b in zip(eps, eps[1:])), eps
    assert eps[0] > eps[-1] and eps[-1] == 0.0625  # all misses allowed: the floor
    # the build's allowance: what the fixed 2k misses, held within [lo, hi]
    as_2k = kix.calibrate_bound(xs, 100, 10, 64, 0.0, 1.0)
    assert kix.calibrate_bound(xs, 100, 10, 64, 0.0, 0.0) >= as_2k >= kix.calibrate_bound(xs, 100, 10, 64, 1.0, 1.0)
    assert eps[1] >= kix.calibrate_bound(xs, 100, 10, 64, 0.001, 0.01) >= eps[2]
    with pytest.raises(ValueError, match="ef=5 is out of range"):
        kix.calibrate_bound(xs, 100, 10, 5)


def test_shared_quantizer_and_bad_multiplier(tmp_path):
    """A quantizer given to build (shards share one) is left as given; a file whose
    multiplier is negative is refused by name."""
    x = np.random.default_rng(3).normal(size=(500, 32)).astype(np.float32)
    qz = Quantizer.train("rabitq2", x)
    idx = Index.build(x, quant="rabitq2", quantizer=qz)
    assert idx.quantizer.scale[0] == 0 and qz.scale[0] == 0
    own = Index.build(x, quant="rabitq2")
    assert own.quantizer.scale[0] > 0 and qz.scale[0] == 0
    own.quantizer.scale[0] = -1.0
    own.save(tmp_path / "bad.qann")
    with pytest.raises(Exception, match="bound multiplier"):
        Index.open(tmp_path / "bad.qann")
    with pytest.raises(ValueError, match="calibrate_bound needs rabitq codes"):
        Index.build(x, quant="sq8").calibrate_bound()


def test_calibrate_an_opened_file(tmp_path):
    """A file written before calibration (multiplier 0: the default 1.9 stands) is
    calibrated from its own vectors to the multiplier a build finds on the same rows."""
    x = np.random.default_rng(4).normal(size=(1500, 48)).astype(np.float32)
    idx = Index.build(x, quant="rabitq3", M=8)
    built = float(idx.quantizer.scale[0])
    idx.quantizer.scale[0] = 0.0
    idx.save(tmp_path / "old.qann")
    old = Index.open(tmp_path / "old.qann")
    assert old.quantizer.scale[0] == 0.0
    assert old.calibrate_bound() == pytest.approx(built) and old.quantizer.scale[0] == np.float32(built)
