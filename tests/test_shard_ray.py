"""The sharded build and search on a local Ray cluster (ray.init(num_cpus=2)): a task
killed mid-build is retried and the result equals a clean build; shard searchers as Ray
actors answer as the local ShardedIndex, behind the same service. Skipped without ray."""
import os

import numpy as np
import pytest

import quantann
from conftest import brute, recall
from quantann.shard.build import build_sharded, embed_texts
from quantann.shard.runner import FAULT_ENV, LocalRunner, RayRunner

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster whose workers kill the first attempt of shard build 1 (once:
    the marker file remembers)."""
    d = tmp_path_factory.mktemp("ray")
    env = {FAULT_ENV: f"build:1:{d / 'build-killed'}"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield d
    ray.shutdown()


def files(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


N = 2000  # rows built: small, three builds run in this module


@pytest.fixture(scope="module")
def ray_built(real, cluster):
    x = real[0][:N]
    killed = cluster / "killed"
    killed.mkdir()
    build_sharded(str(killed / "s.json"), x, 4, RayRunner(), progress=False)  # shard 1's worker dies once
    return killed


def test_a_killed_ray_task_is_retried_and_the_build_equals_a_clean_one(real, cluster, ray_built, tmp_path):
    x = real[0][:N]
    assert (cluster / "build-killed").exists()  # the first attempt did die
    build_sharded(str(tmp_path / "s.json"), x, 4, RayRunner(), progress=False)  # marker there: no kill
    assert files(tmp_path) == files(ray_built)
    local = tmp_path / "local"
    local.mkdir()
    build_sharded(str(local / "s.json"), x, 4, LocalRunner(2), progress=False)  # the same code on a local pool
    assert files(local) == files(ray_built)


def test_ray_built_shards_search_as_well_as_the_single_index(real, ray_built):
    x, q = real[0][:N], real[1]
    truth = brute(x, q, 10, "cosine")
    single = quantann.Index.build(x, threads=1)
    s = quantann.open(ray_built / "s.json")
    r1 = recall(single.search(q, k=10, ef=64, rerank=4)[0], truth)
    r2 = recall(s.search(q, k=10, ef=64, rerank=4)[0], truth)
    assert r2 >= r1 - 0.01, (r1, r2)


def test_ray_actors_answer_as_the_local_sharded_index(real, ray_built):
    _, q = real
    local = quantann.open(ray_built / "s.json")
    remote = quantann.open(ray_built / "s.json", ray="local")  # joins the running cluster
    try:
        assert type(remote).__name__ == "RayShardedIndex" and len(remote) == len(local)
        assert remote.memory() == local.memory() and remote.dim == local.dim
        a = local.search(q, k=10, ef=64, rerank=4)
        b = remote.search(q, k=10, ef=64, rerank=4)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert remote.last_stats[0].store_reads == 4
        with pytest.raises(ValueError, match="ef"):
            remote.search(q, k=10, ef=0)
        with pytest.raises(ValueError, match="read-only"):
            remote.add(q[:1])
    finally:
        remote.close()


def test_ray_embedding_tasks_equal_one_process(cluster):
    from test_model_helpers import model_path
    from quantann.model.embedder import Embedder
    model = model_path("q8_0")
    texts = [f"passage number {i} about {w}" for i, w in enumerate(["tar", "gzip", "bread", "cats", "rain"] * 3)]
    got = embed_texts(texts, str(model), RayRunner(), block=4, progress=False)
    with Embedder.open(model, n_threads=1) as emb:
        assert np.allclose(got, emb.embed(texts), atol=1e-6)


def test_serve_on_ray_actors(ray_built):
    pytest.importorskip("uvicorn")
    from quantann.service.app import Service
    from quantann.service.pool import SearchPool
    from quantann.service.server import listen, run
    from test_serve import DEFAULTS, call
    from quantann.service.limits import Limits
    import threading
    index = quantann.open(ray_built / "s.json", ray="local")
    service = Service(SearchPool(index, 2), Limits(), DEFAULTS, None)
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    box, started = [], threading.Event()
    t = threading.Thread(target=run, args=(service, sock, lambda srv: (box.append(srv), started.set())), daemon=True)
    t.start()
    try:
        assert started.wait(30)
        x = next(quantann.open(ray_built / "s.json").shards[3].vectors())[4]
        status, body, _ = call(port, "POST", "/search", {"vector": x.tolist(), "k": 2})
        assert status == 200 and body["ids"][0][0] == 1504 and body["stats"][0]["store_reads"] == 4
        status, body, _ = call(port, "POST", "/search", {"vector": x.tolist(), "k": 2, "ef": 0})
        assert status == 400
        status, text, _ = call(port, "GET", "/metrics")
        assert "quantann_queries_total 1.0" in text
    finally:
        box[0].should_exit = True
        t.join(30)
        index.close()
