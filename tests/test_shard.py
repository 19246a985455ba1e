"""The sharded index (quantann/shard/): the build on a local process pool, scatter-gather
search against the single index and brute force, a worker killed mid-build, add/delete/
save, bad manifests, the CLI and the service. Ray: tests/test_shard_ray.py."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import quantann
from conftest import brute, recall
from quantann.shard.build import build_sharded, train_shared
from quantann.shard.runner import FAULT_ENV, LocalRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def files(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def built(real, tmp_path_factory):
    """4 shards of the 4,000 real vectors (a local pool of 2 processes) and the single index."""
    x, q = real
    d = tmp_path_factory.mktemp("sharded")
    build_sharded(str(d / "s.json"), x, 4, LocalRunner(2), progress=False)
    single = quantann.Index.build(x, threads=1)
    return d, single


def test_shards_share_the_single_index_quantizer_and_split_the_rows(real, built):
    x, _ = real
    d, single = built
    s = quantann.open(d / "s.json")
    assert type(s).__name__ == "ShardedIndex" and len(s.shards) == 4 and len(s) == len(x)
    for shard in s.shards:  # trained once, on all rows: the single index's ranges exactly
        assert np.array_equal(shard.quantizer.vmin, single.quantizer.vmin)
        assert np.array_equal(shard.quantizer.scale, single.quantizer.scale)
    m = json.load(open(d / "s.json"))
    assert [e["id_offset"] for e in m["shards"]] == [0, 1000, 2000, 3000]
    assert np.array_equal(s.ids, np.arange(len(x)))
    ids, dist = s.search(x[[5, 1500, 3999]], k=1, ef=64, rerank=4)  # global ids: a base row finds itself
    assert ids[:, 0].tolist() == [5, 1500, 3999] and np.allclose(dist[:, 0], 0, atol=1e-5)


def test_sharded_recall_is_the_single_index_recall(real, built):
    x, q = real
    d, single = built
    s = quantann.open(d / "s.json")
    truth = brute(x, q, 10, "cosine")
    for ef, rr in ((32, 2), (64, 4)):
        r_single = recall(single.search(q, k=10, ef=ef, rerank=rr)[0], truth)
        r_shard = recall(s.search(q, k=10, ef=ef, rerank=rr)[0], truth)
        assert r_shard >= r_single - 0.01, (ef, rr, r_single, r_shard)
    st = s.last_stats[0]  # one batched read per shard, costs summed over the shards
    assert st.store_reads == 4 and st.vectors_read == 4 * 10 * 4


def test_scatter_gather_is_exact_with_exact_shards(real, tmp_path):
    """Float codes and a beam wider than a shard: every shard is exact, so the merge must be."""
    x, q = real
    build_sharded(str(tmp_path / "f.json"), x[:1200], 3, LocalRunner(2), quant="none", metric="l2", progress=False)
    s = quantann.open(tmp_path / "f.json")
    ids, dist = s.search(q, k=10, ef=500, rerank=0)
    truth = brute(x[:1200], q, 10, "l2")
    assert recall(ids, truth) == 1.0
    assert (np.diff(dist, axis=1) >= 0).all()


def test_parallel_and_sequential_search_agree(real, built):
    _, q = real
    s = quantann.open(built[0] / "s.json")
    a = s.search(q, k=10, ef=64, rerank=4)
    s.parallel = False
    b = s.search(q, k=10, ef=64, rerank=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_search_checks_its_arguments(real, built):
    x, q = real
    s = quantann.open(built[0] / "s.json")
    with pytest.raises(ValueError, match="k=4001"):
        s.search(q, k=4001)
    with pytest.raises(ValueError, match="dimension"):
        s.search(q[:, :10])
    with pytest.raises(ValueError, match="ef"):
        s.search(q, k=10, ef=0)


def test_a_worker_killed_mid_build_is_retried_and_the_result_equals_a_clean_build(real, tmp_path, monkeypatch):
    x, _ = real
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir(), killed.mkdir()
    build_sharded(str(clean / "s.json"), x[:2000], 3, LocalRunner(2), progress=False)
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(FAULT_ENV, f"build:1:{marker}")  # shard 1's first attempt: os._exit
    build_sharded(str(killed / "s.json"), x[:2000], 3, LocalRunner(2), progress=False)
    assert marker.exists()  # the worker did die
    assert files(clean) == files(killed)  # byte-equal shard files and manifest


def test_a_task_that_always_dies_fails_the_build_with_a_clear_error(real, tmp_path, monkeypatch):
    x, _ = real
    monkeypatch.setenv(FAULT_ENV, "build:0:")  # no marker: every attempt of shard 0 dies
    from quantann.errors import QuantannError
    with pytest.raises(QuantannError, match="died 2 times"):
        build_sharded(str(tmp_path / "s.json"), x[:500], 2, LocalRunner(2, retries=1), progress=False)
    assert not (tmp_path / "s.json").exists()


def test_add_goes_to_the_smallest_shard_and_survives_save(real, built, tmp_path):
    x, q = real
    shutil.copytree(built[0], tmp_path / "c")
    path = tmp_path / "c" / "s.json"
    s = quantann.open(path)
    s.delete([1000, 1001, 1002])  # shard 1 is now the smallest
    assert len(s) == 3997 and len(s.shards[1]) == 997
    new = s.add(q[:5] * 2)  # cosine: the same directions as the queries
    assert new.tolist() == [4000, 4001, 4002, 4003, 4004] and s.shards[1].rows == 1005
    ids, _ = s.search(q[:5], k=1, ef=64, rerank=4)
    assert ids[:, 0].tolist() == new.tolist()
    assert 1000 not in s.search(x[1000], k=5)[0]
    with pytest.raises(ValueError, match="already in the index"):
        s.add(q[:1], ids=[7])
    s.save()
    m = json.load(open(path))
    assert m["count"] == 4002 and m["next_id"] == 4005 and m["shards"][1]["ids"] == "stored"
    assert m["shards"][1]["file"] == "s.shard1.b.qann" and m["shards"][0]["file"] == "s.shard0.qann"
    assert not (tmp_path / "c" / "s.shard1.qann").exists()  # the replaced shard file is gone
    r = quantann.open(path)
    assert len(r) == 4002 and r.search(q[:5], k=1, ef=64, rerank=4)[0][:, 0].tolist() == new.tolist()
    assert r.add(q[5:6] * 3).tolist() == [4005]
    with pytest.raises(KeyError, match="123456"):
        r.delete([123456])


def test_save_to_a_new_path_writes_every_shard(built, tmp_path):
    s = quantann.open(built[0] / "s.json")
    s.save(tmp_path / "copy.json")
    assert sorted(os.listdir(tmp_path)) == ["copy.json"] + [f"copy.shard{i}.qann" for i in range(4)]
    assert np.array_equal(quantann.open(tmp_path / "copy.json").ids, np.arange(4000))


def _manifest(built, tmp_path, edit):
    shutil.copytree(built[0], tmp_path / "m")
    path = tmp_path / "m" / "s.json"
    m = json.load(open(path))
    edit(m, tmp_path / "m")
    path.write_text(json.dumps(m))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda m, d: m.update(version=2), "newer than this quantann reads"),
    (lambda m, d: m.update(format="other"), "not a sharded index manifest"),
    (lambda m, d: m["shards"][0].pop("size"), "'size' is missing"),
    (lambda m, d: m["shards"][0].update(file="../s.shard0.qann"), "inside the manifest's folder"),
    (lambda m, d: m["shards"][2].update(id_offset=500), "overlap"),
    (lambda m, d: m.update(count=5), "the shards hold 4000 rows"),
    (lambda m, d: shutil.copy(d / "s.shard0.qann", d / "s.shard1.qann"), "not the one the manifest was written with"),
    (lambda m, d: m["shards"][1].update(file="s.shard0.qann"), "two shards name the same file"),
    (lambda m, d: m.update(shards=[]), "non-empty list"),
])
def test_bad_manifests_are_refused_with_a_clear_error(built, tmp_path, edit, message):
    path = _manifest(built, tmp_path, edit)
    with pytest.raises(quantann.FormatError, match=message):
        quantann.open(path)


def test_id_ranges_after_saved_deletes_reach_the_next_id(real, tmp_path):
    """A shard numbered by its rows keeps the ids of its deleted rows taken (its file's
    quantann.ids.next runs past its count): the next shard may start there, not before."""
    x, _ = real
    path = tmp_path / "s.json"
    build_sharded(str(path), x[:600], 2, LocalRunner(1), progress=False)
    s = quantann.open(path)
    s.delete([5, 299])
    s.save()
    m = json.load(open(path))
    assert [e["count"] for e in m["shards"]] == [298, 300] and [e["ids"] for e in m["shards"]] == ["rows", "rows"]
    assert quantann.open(tmp_path / m["shards"][0]["file"]).next_id == 300
    r = quantann.open(path)  # [0, 300) and [300, 600): they touch, no overlap
    assert len(r) == 598 and r.search(x[[298, 300]], k=1)[0][:, 0].tolist() == [298, 300]
    m["shards"][1]["id_offset"] = 298  # count alone says [0, 298): id 298 would be held twice
    path.write_text(json.dumps(m))
    with pytest.raises(quantann.FormatError, match="id ranges of shards 0 and 1 overlap .at id 298; shard 0's ids run to 299"):
        quantann.open(path)


def test_a_shard_with_another_quantizer_is_refused(real, built, tmp_path):
    x, _ = real

    def swap(m, d):  # shard 3 rebuilt with its own quantizer, its entry updated to match
        quantann.Index.build(x[3000:], threads=1).save(d / "s.shard3.qann")
        f = quantann.open(d / "s.shard3.qann").file
        m["shards"][3].update(size=f.size, vectors_crc32=f.vectors_crc32)
    with pytest.raises(quantann.FormatError, match="quantizer differs"):
        quantann.open(_manifest(built, tmp_path, swap))


def test_a_missing_shard_file_names_it(built, tmp_path):
    path = _manifest(built, tmp_path, lambda m, d: os.unlink(d / "s.shard2.qann"))
    with pytest.raises(OSError, match="shard2"):
        quantann.open(path)


def test_memory_budget_counts_every_shard(built):
    with pytest.raises(quantann.MemoryBudgetError):
        quantann.open(built[0] / "s.json", memory_budget="1MB")
    assert quantann.open(built[0] / "s.json", memory_budget="10MB").memory()["total"] < 10_000_000


def test_add_checks_the_memory_budget_before_changing_anything(real, built):
    x, q = real
    s = quantann.open(built[0] / "s.json")
    total = s.memory()["total"]
    grown = s.memory(extra_rows=500)
    assert grown["total"] > total and grown["codes"] > s.memory()["codes"]  # counted in the shard add fills
    s = quantann.open(built[0] / "s.json", memory_budget=total + 10_000)
    with pytest.raises(quantann.MemoryBudgetError, match="adding 500 vectors would need"):
        s.add(np.repeat(q[:1], 500, axis=0))
    assert len(s) == len(x) and s.memory()["total"] == total  # nothing added
    assert s.add(q[:1]).tolist() == [len(x)]  # a row fits in the slack


def test_quantizer_sample_is_every_row_up_to_the_sample_size(real):
    x, _ = real
    a = train_shared(x, "sq4", "cosine")
    b = quantann.Index.build(x, quant="sq4", threads=1).quantizer
    assert np.array_equal(a.vmin, b.vmin) and np.array_equal(a.scale, b.scale)


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "quantann", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_cli_builds_searches_and_evaluates_a_sharded_index(real, tmp_path):
    x, q = real
    np.save(tmp_path / "x.npy", x[:1500])
    np.save(tmp_path / "q.npy", q[:20])
    r = cli("build", tmp_path / "x.npy", "--shards", "3", "--workers", "2", "-o", tmp_path / "s.json", "-q")
    assert r.returncode == 0, r.stderr
    r = cli("search", tmp_path / "s.json", "--queries", tmp_path / "q.npy", "-k", "3", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["ids"]
    assert recall(np.array(got), brute(x[:1500], q[:20], 3, "cosine")) >= 0.9
    r = cli("eval", tmp_path / "s.json", "--queries", tmp_path / "q.npy", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["recall"] >= 0.9, r.stderr
    r = cli("info", tmp_path / "s.json", "--verify")
    assert r.returncode == 0 and "3 shards" in r.stdout and r.stdout.count("vectors ok") == 3, r.stderr
    f = quantann.open(tmp_path / "s.json").shards[1].file
    with open(tmp_path / "s.shard1.qann", "r+b") as fh:  # one byte of a full vector
        fh.seek(f.vectors_offset + 100)
        b = fh.read(1)
        fh.seek(f.vectors_offset + 100)
        fh.write(bytes([b[0] ^ 0x40]))
    r = cli("info", tmp_path / "s.json", "--verify")
    assert r.returncode == 1 and "s.shard1.qann" in r.stderr and "corrupt" in r.stderr, r.stderr


@pytest.mark.parametrize("args, message", [
    (["--ray"], "--ray runs a sharded build: give --shards N too"),
    (["--shards", "2", "-o", "x.qann"], "name it .json"),
    (["--shards", "0"], "--shards must be at least 1"),
    (["--shards", "5000"], "shards=5000 is out of range"),
])
def test_cli_refuses_bad_sharded_builds(real, tmp_path, args, message):
    np.save(tmp_path / "x.npy", real[0][:100])
    if "-o" not in args:
        args = args + ["-o", "s.json"]
    r = cli("build", tmp_path / "x.npy", *args, cwd=tmp_path)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_text_build_embeds_in_tasks_and_searches_by_text(tmp_path):
    from test_model_helpers import model_path
    model = model_path("q8_0")
    texts = ["gzip and zstd compress files", "a loaf of sourdough bread", "tar bundles a folder into one archive",
             "the cat sleeps on the warm windowsill", "stock prices fell sharply today", "bake the bread for an hour"]
    with open(tmp_path / "p.jsonl", "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t, "n": len(t)}) + "\n")
    r = cli("build", tmp_path / "p.jsonl", "--model", model, "--shards", "2", "--block", "2", "--workers", "2",
            "-o", tmp_path / "t.json", "-q")
    assert r.returncode == 0, r.stderr
    from quantann.model.embedder import Embedder
    with Embedder.open(model, n_threads=1) as emb:  # the tasks' vectors are the single-process ones
        want = emb.embed(texts)
    s = quantann.open(tmp_path / "t.json")
    got = np.concatenate(list(s.vectors()))
    assert np.allclose(got, want, atol=1e-6)
    r = cli("search", tmp_path / "t.json", "--text", "how do I compress a file", "-k", "2", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert hits[0]["text"] in (texts[0], texts[2]) and hits[0]["id"] in (0, 2)
    assert [h["fields"] for h in hits] == [{"n": len(texts[h["id"]])} for h in hits]  # the other fields kept


def test_hybrid_search_on_a_sharded_text_index_equals_the_single_index(tmp_path):
    """The sharded build writes one text store beside the manifest, its lexical index over every
    shard's texts: BM25 ranks with the whole collection's statistics (document count, average
    length, document frequencies), so the word ranking equals the single index's exactly. The
    fused ids then differ from the single index's only where the vector top-N does (two
    different approximate graphs): equal for every question whose vector top-N is equal, and
    for >= 90% of all. A text only the words found gets its exact distance from the shard that
    holds it (ShardedIndex._read; before, an AttributeError)."""
    import gzip
    import itertools
    from quantann.demo import BUILTIN
    from quantann.text import TextIndex
    from test_model_helpers import model_path
    model, n = model_path("q8_0"), 1500
    np.save(tmp_path / "v.npy", np.load(BUILTIN / "vectors.npy")[:n])
    with gzip.open(BUILTIN / "passages.jsonl.gz", "rt") as f:
        lines = list(itertools.islice(f, n))
    (tmp_path / "p.jsonl").write_text("".join(lines))
    for out, extra in (("s.json", ("--shards", "3", "--workers", "2")), ("one.qann", ())):
        r = cli("build", "v.npy", "--texts", "p.jsonl", "--model", model, *extra, "-o", out, "-q", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    sharded, single = TextIndex.open(tmp_path / "s.json"), TextIndex.open(tmp_path / "one.qann")
    assert type(sharded.index).__name__ == "ShardedIndex" and sharded.has_lexical
    words = [json.loads(x)["text"].split(":")[0].split(" \\")[0] for x in lines[::15]]
    questions = [f"What is a {w}?" for w in words]
    n_top = quantann.constants.LEXICAL["candidates"]
    equal = lexical_only = 0
    for v, q in zip(single.embedder.embed(questions), questions):
        assert sharded.lexical_search(q, n_top) == single.lexical_search(q, n_top)
        a, da = sharded.search_ids(v, q, k=5, hybrid=True)
        b, db = single.search_ids(v, q, k=5, hybrid=True)
        vec_a, vec_b = sharded.search_ids(v, q, k=n_top, ef=n_top, rerank=1)[0], \
            single.search_ids(v, q, k=n_top, ef=n_top, rerank=1)[0]
        if list(vec_a) == list(vec_b):
            assert list(a) == list(b), q
        lexical_only += len(set(map(int, a)) - set(map(int, vec_a)))
        if list(a) == list(b):
            equal += 1
            assert np.allclose(da, db, atol=1e-5)
        want = 1 - sharded.index.prepare_queries(v[None])[0] @ np.load(tmp_path / "v.npy")[a.astype(np.int64)].T
        assert np.allclose(da, want, atol=1e-4)  # exact distances, read from the shards (float16 input)
    assert equal >= 0.9 * len(questions), (equal, len(questions))
    assert lexical_only > 0  # some fused results came from the words alone (their distances read above)


def test_the_service_serves_a_manifest(built):
    pytest.importorskip("uvicorn")
    from test_serve import Running, call
    s = Running(str(built[0] / "s.json"))
    try:
        x = quantann.open(built[0] / "s.json").shards[2].vectors().__next__()[7]
        status, body, _ = call(s.port, "POST", "/search", {"vector": x.tolist(), "k": 3})
        assert status == 200 and body["ids"][0][0] == 2007
        status, body, _ = call(s.port, "GET", "/healthz")
        assert status == 200 and body["vectors"] == 4000
        status, text, _ = call(s.port, "GET", "/metrics")
        assert 'quantann_index_memory_bytes{part="codes"}' in text
    finally:
        s.stop()


def test_a_manifest_url_opens_its_shards_over_http(real, built):
    from quantann.pageserver import Server
    from quantann.store.http import HttpStore
    _, q = real
    local = quantann.open(built[0] / "s.json")
    with Server({"/": str(built[0])}) as srv:
        remote = quantann.open(f"{srv.url}/s.json")
        assert all(isinstance(s.store, HttpStore) for s in remote.shards)
        a = local.search(q[:20], k=10, ef=64, rerank=4)
        b = remote.search(q[:20], k=10, ef=64, rerank=4)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert remote.last_stats[0].store_reads == 4
        with pytest.raises(ValueError, match="local path"):
            remote.save()
