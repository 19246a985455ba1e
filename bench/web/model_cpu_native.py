"""Native side of web/tools/model-cpu-bench.js's decoding: CPU time (this process's, so other
load on a shared machine counts less than in wall time) of SmolLM2 decoding and prompt prefill,
single thread, the default SIMD build. Reads {"generator", "prompt", "tokens", "repeat",
"prefill_prompt" (optional)} as JSON on stdin; prints {"decode_cpu_ms"} (the median) and
"prefill_cpu_ms" when asked. The embedding's native side is embed_native.py."""
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
    out = {"decode_cpu_ms": statistics.median(per_token)}
    if req.get("prefill_prompt"):  # the faster of 2 cold prefills (+ the first token), as the wasm side
        prefill = []
        for _ in range(2):
            g.forget()
            c0 = cpu()
            g.generate(req["prefill_prompt"], max_tokens=1, temperature=0)
            prefill.append((cpu() - c0) * 1000)
        out["prefill_cpu_ms"] = min(prefill)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
