"""Native answers the ask page is compared with (web/test/ask.test.js, ask-browsers.test.js),
as JSON on stdout. Reads a JSON request on stdin:
  {"op": "make", "dir", "model"}   -> {"index", "bare"}: a small text index of PASSAGES (with
                                      fields) built with the embedding GGUF `model`, and a copy
                                      of it with no texts beside it
  {"op": "prompt", "llm", "question", "passages", "max_tokens", "passage_tokens"}
                                   -> {"ids", "dropped"}: quantann.ask.build_prompt's
  {"op": "ask", "index", "llm", "question", "k", "max_tokens"}
                                   -> {"answer", "tokens", "prompt_ids", "sources", "dropped"}:
                                      native ask, greedy, one thread, the scalar kernels
  {"op": "docs", "dir", "model", "n"} -> {"index"}: DIR/docs.qann, README's "Ask your documents"
                                      index (the first n demo vectors and passages, no re-embedding)
  {"op": "bench", "index", "llm", "rounds": [[question, ...], ...], "k", "max_tokens", "threads"}
                                   -> {"rounds": per round, per question {"sources" [[row, id]],
                                      "answer", "timings"}}: native ask on the default
                                      (SIMD) kernels, greedy; each round a cold KV cache, its later
                                      questions warm (as the page's Generator)
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# short and long passages (the long ones are cut to the prompt's passage_tokens), a few with fields
PASSAGES = [
    {"text": "An eschar is a slough or piece of dead tissue that is cast off from the surface of the skin, "
             "often after a burn injury.", "src": "wordnet", "url": "https://example.org/eschar"},
    {"text": "The capital of France is Paris, which lies on the river Seine.", "src": "atlas"},
    {"text": "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to make "
             "glucose and oxygen. It takes place in the chloroplasts, mainly in the leaves, where the pigment "
             "chlorophyll absorbs light. The light reactions split water and release oxygen; the Calvin cycle "
             "then fixes carbon dioxide into sugars that the plant uses for energy and growth."},
    {"text": "A debian package can be installed from a local .deb file with apt install ./file.deb, which also "
             "fetches its dependencies."},
    {"text": "The mitochondrion is the organelle that produces most of the chemical energy of a cell, as ATP."},
    {"text": "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level at 8849 m."},
    {"text": "naïve café — 東京 🙂: text in many scripts is kept byte for byte.", "lang": "mixed"},
    {"text": "A haiku is a short Japanese poem of three lines with five, seven and five syllables."},
    {"text": "The Rhine flows from the Swiss Alps through Germany and the Netherlands into the North Sea; it is "
             "one of the longest rivers of Europe, and for centuries it has carried barges of coal, grain and "
             "wine between the cities on its banks, among them Basel, Strasbourg, Cologne and Rotterdam."},
    {"text": "Water boils at 100 degrees Celsius at sea level; at higher altitudes it boils at lower temperatures."},
    {"text": "An eschar may also form after a spider bite or in anthrax."},
    {"text": "The violin is a string instrument played with a bow; it is the smallest and highest of its family."},
]


def scalar():
    from quantann import _model
    _model.set_simd(0)
    try:  # the decoder's own extension, until it joins quantann._model
        from quantann import _decoder
        _decoder.set_simd(0)
    except ImportError:
        pass


def make_docs(folder, model, n):
    import gzip
    import itertools

    import numpy as np
    from quantann.demo import BUILTIN
    from quantann.jsonl import read_records
    from quantann.text import TextIndex, sidecar
    path = os.path.join(folder, "docs.qann")
    if os.path.exists(path) and os.path.exists(sidecar(path)):
        return path
    os.makedirs(folder, exist_ok=True)
    jsonl = os.path.join(folder, "passages.jsonl")
    with gzip.open(BUILTIN / "passages.jsonl.gz", "rt") as f, open(jsonl, "w") as out:
        out.writelines(itertools.islice(f, n))
    texts, fields = read_records(jsonl)
    ti = TextIndex.create(model)
    ti.add_texts(texts, vectors=np.load(BUILTIN / "vectors.npy")[:n], fields=fields)
    ti.save(path)
    return path


def bench(req):
    import quantann
    from quantann import ask
    from quantann.text import TextIndex
    ti = TextIndex.open(req["index"])
    gen = quantann.Generator.open(req["llm"], threads=req.get("threads", 1))
    out = []
    for questions in req["rounds"]:
        gen.forget()
        answers = []
        for q in questions:
            a = ask.ask(ti, q, generator=gen, k=req["k"], max_tokens=req["max_tokens"], temperature=0.0)
            answers.append({"sources": [[s.row, s.id] for s in a.sources], "answer": a.answer, "timings": a.timings})
        out.append(answers)
    return {"rounds": out}


def main(req):
    op = req["op"]
    if op == "make":
        from quantann.text import TextIndex, sidecar
        path = os.path.join(req["dir"], "passages.qann")
        ti = TextIndex.create(req["model"])
        ti.add_texts([p["text"] for p in PASSAGES], fields=[{k: v for k, v in p.items() if k != "text"} for p in PASSAGES])
        ti.save(path)
        bare = os.path.join(req["dir"], "bare.qann")
        shutil.copyfile(path, bare)
        assert not os.path.exists(sidecar(bare))
        return {"index": path, "bare": bare}
    if op == "docs":
        return {"index": make_docs(req["dir"], req["model"], req["n"])}
    if op == "bench":
        return bench(req)
    scalar()
    import quantann
    from quantann import ask
    gen = quantann.Generator.open(req["llm"], threads=1)
    if op == "prompt":
        sources = [ask.Source(i, i, 0.0, t) for i, t in enumerate(req["passages"])]
        ids, dropped = ask.build_prompt(gen, req["question"], sources, req["max_tokens"], req.get("passage_tokens", ask.PASSAGE_TOKENS))
        return {"ids": ids, "dropped": dropped}
    if op == "ask":
        from quantann.text import TextIndex
        ti = TextIndex.open(req["index"])
        a = ask.ask(ti, req["question"], generator=gen, k=req["k"], max_tokens=req["max_tokens"], temperature=0.0)
        q = ask.check_question(req["question"])
        sources, _ = ask.retrieve(ti, q, req["k"])
        ids, dropped = ask.build_prompt(gen, q, sources, req["max_tokens"])
        tokens = []
        gen.generate(ids, max_tokens=req["max_tokens"], temperature=0, tokens_out=tokens)
        return {"answer": a.answer, "tokens": tokens, "prompt_ids": ids, "dropped": a.dropped,
                "sources": [s.as_dict() for s in a.sources], "timings": a.timings}
    raise ValueError(f"unknown op {op}")


if __name__ == "__main__":
    print(json.dumps(main(json.load(sys.stdin))))
