"""Native side of web/tools/model-cpu-bench.js's decoding: CPU time (this process's, so other
load on a shared machine counts less than in wall time) of SmolLM2 decoding, single thread,
the default SIMD build. Reads {"generator", "prompt", "tokens", "repeat"} as JSON on stdin;
prints {"decode_cpu_ms"} (the median). The embedding's native side is embed_native.py."""
import json
import statistics
import sys
import time


def main():
    req = json.load(sys.stdin)
    import quantann
    cpu = time.process_time
    g = quantann.Generator.open(req["generator"], threads=1)
    per_token = []
    for _ in range(req.get("repeat", 3)):  # decode = (prefill + n steps) - (prefill + 1 step)
        c0 = cpu()
        g.generate(req["prompt"], max_tokens=1, temperature=0)
        c1 = cpu()
        g.generate(req["prompt"], max_tokens=req["tokens"] + 1, temperature=0)
        c2 = cpu()
        per_token.append(((c2 - c1) - (c1 - c0)) / req["tokens"] * 1000)
    print(json.dumps({"decode_cpu_ms": statistics.median(per_token)}))


if __name__ == "__main__":
    main()
