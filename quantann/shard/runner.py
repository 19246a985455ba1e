"""Where the tasks of a sharded build run: Ray tasks, or a local pool of processes.

Both run a list of independent tasks (a picklable function and its arguments), report
progress as tasks finish, retry a task whose worker died, and return the results in task
order. A task that raises is not retried (the same input would fail again): its error is
the build's.

Why Ray, not Dask: the tasks here are coarse (an embedding block of a thousand texts, a
shard build of minutes) and carry numpy arrays; Ray's object store hands those to
workers without copies on a node, retries a task whose worker or node died
(`max_retries`) and schedules by CPUs per task, and the same cluster then serves the
shards as actors (`quantann serve --ray`). Dask's strength, collections and dataframe
graphs, is not used here, and it has no actors to serve with.
"""
from __future__ import annotations

import os

from ..errors import QuantannError
from ..progress import Progress

RETRIES = 3  # attempts after the first, for a task whose worker died
FAULT_ENV = "QUANTANN_FAULT_ONCE"  # test hook: "KIND:INDEX:MARKER" kills that task's first attempt
# (an empty MARKER: every attempt)


def fault_point(kind: str, i: int) -> None:
    """The retry test's hook (tests/test_shard_build.py): when QUANTANN_FAULT_ONCE names this
    task and its marker file does not exist yet, create it and kill this worker process."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    k, idx, marker = spec.split(":", 2)
    if k == kind and int(idx) == i and not (marker and os.path.exists(marker)):
        if marker:
            open(marker, "w").close()
        os._exit(17)


class LocalRunner:
    """Tasks on `workers` local processes (concurrent.futures). When a worker dies, the
    pool breaks: the tasks not finished are run again on a new pool, up to RETRIES times."""

    name = "local"

    def __init__(self, workers: int | None = None, retries: int = RETRIES):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.retries = retries

    def map(self, fn, args: list, desc: str = "", weights=None, unit: str = "task", progress: bool = True,
            cpus: int = 1) -> list:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        weights = weights or [1] * len(args)
        bar = Progress(sum(weights), desc, unit, progress)
        results: dict = {}
        rounds = 0
        try:
            while len(results) < len(args):
                todo = [i for i in range(len(args)) if i not in results]
                # fork: a spawned worker would re-run the caller's main script (no __main__ guard
                # needed here); the caller has no threads of ours running while tasks are forked
                ctx = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(min(self.workers, len(todo)), mp_context=ctx) as ex:
                    futures = {ex.submit(fn, *args[i]): i for i in todo}
                    try:
                        for f in as_completed(futures):
                            i = futures[f]
                            results[i] = f.result()
                            bar.update(weights[i])
                    except BrokenProcessPool:
                        rounds += 1
                        if rounds > self.retries:
                            raise QuantannError(f"{desc}: a worker process died {rounds} times; giving up") from None
        finally:
            bar.close()
        return [results[i] for i in range(len(args))]


class RayRunner:
    """Tasks on a Ray cluster: `address` None starts a local one (or joins $RAY_ADDRESS),
    else joins the cluster there. Ray retries a task whose worker died (max_retries)."""

    name = "ray"

    def __init__(self, address: str | None = None, retries: int = RETRIES):
        import ray
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        self.ray = ray
        self.retries = retries

    def map(self, fn, args: list, desc: str = "", weights=None, unit: str = "task", progress: bool = True,
            cpus: int = 1) -> list:
        ray = self.ray
        weights = weights or [1] * len(args)
        remote = ray.remote(num_cpus=cpus, max_retries=self.retries, retry_exceptions=False)(fn)
        refs = [remote.remote(*a) for a in args]
        where = {r: i for i, r in enumerate(refs)}
        bar = Progress(sum(weights), desc, unit, progress)
        try:
            left = list(refs)
            while left:
                done, left = ray.wait(left, num_returns=1)
                bar.update(weights[where[done[0]]])
            return ray.get(refs)
        except ray.exceptions.WorkerCrashedError:
            raise QuantannError(f"{desc}: a Ray worker died {self.retries + 1} times; giving up") from None
        finally:
            bar.close()


def make_runner(ray_address=None, use_ray: bool = False, workers: int | None = None, retries: int = RETRIES):
    """RayRunner when `use_ray` (at `ray_address`, or a local cluster), else LocalRunner."""
    if use_ray:
        return RayRunner(ray_address, retries)
    return LocalRunner(workers, retries)
