"""Native side of the interleaved embedding timings (web/tools/model-bench.js,
web/tools/model-cpu-bench.js): one process that keeps a MiniLM Embedder open (one thread, the
default SIMD build) and embeds one text in rounds the caller asks for, so the browser's or
Node's rounds and native's alternate under the same machine load.

stdin: a JSON line {"embedder": PATH, "text": TEXT}, then one line per round: the number of
calls. stdout: {"ready": true, "tokens": N} once open, then per round {"ms": [...], "cpu_ms":
[...]}: each call's wall time (perf_counter) and this process's CPU time (process_time)."""
import json
import sys
import time


def main():
    req = json.loads(sys.stdin.readline())
    from quantann.model.embedder import Embedder

    m = Embedder.open(req["embedder"], n_threads=1)
    text = [req["text"]]
    m.embed(text)
    print(json.dumps({"ready": True, "tokens": len(m.tokenize(req["text"]))}), flush=True)
    for line in sys.stdin:
        ms, cpu_ms = [], []
        for _ in range(int(line)):
            t0, c0 = time.perf_counter(), time.process_time()
            m.embed(text)
            ms.append((time.perf_counter() - t0) * 1000)
            cpu_ms.append((time.process_time() - c0) * 1000)
        print(json.dumps({"ms": ms, "cpu_ms": cpu_ms}), flush=True)


if __name__ == "__main__":
    main()
