"""Ask your documents, measured: retrieval hit@5 over the 100,000 minilm-100k passages, how
often the answer uses the right passage, and first-token latency / tokens per second end
to end (embed + search + prompt + prefill + decode) at 1 and 2 threads. A report, not a test.

Questions: "What is a <word>?" for WordNet noun glosses ("eschar: a dry scab formed on the
skin ...") whose first lemma is lowercase and heads no other WordNet gloss, so the answer
passage is known and unique among the glosses (GCIDE may define the word too: counted
apart as `hit5_any`). Sampled with a fixed seed.

Uses the right passage: the answer's content words (3+ letters, not stop words, not words of
the question) shared with the gold gloss are at least 2 (`uses_gold`; at least 1:
`uses_gold_1`), and more than it shares with any other passage in the prompt. An answer
whose prompt does not hold the gold passage cannot pass. `uses_right` counts a GCIDE entry
of the same word as a right passage too (it answers the question as well as the gloss).

    python bench/ask_quality.py [--data DIR] [--questions 500] [--answers 40] [--latency 20]
                                [--max-tokens 48] [--llm M.gguf] [--json bench/results/ask-quality.json]
                                [--chat-template FILE] [--stop TEXT]   # a base model: a completion template
    python bench/ask_quality.py --rescore bench/results/ask-quality.json   # figures again, no LLM
    python bench/ask_quality.py --retrieval-only   # hit@5 vector / lexical / hybrid, search ms, bytes
    python bench/ask_quality.py --answers 40 --sweep     # prompt variants: cut, order, instruction, k
    python bench/ask_quality.py --answers 0 --latency 20 # first token only (< 5 min on 2 cores)

Latency: each question asked at 1 and 2 threads (alternating), warm (the Generator's KV cache
holds the previous question's prompt, as in a service slot: the system block is reused) and
cold (the cache emptied first).

The index (sq8, M=16, ef_construction=200) and the Q8_0 MiniLM embedder are built once into
--workdir (default bench/cache/ask).
"""
import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import quantann  # noqa: E402
import quantann.ask as ask_mod  # noqa: E402
from quantann.ask import PASSAGE_TOKENS, ask, open_generator  # noqa: E402
from quantann.jsonl import read_records  # noqa: E402
from quantann.text import TextIndex, TextStore, sidecar  # noqa: E402

STOP = set("""a an the of or and to in on for by with from as at is are was were be been being it its this that
these those which who whom what when where why how not no any all some such can could may might will would shall
should do does did done has have had having one two used use uses using usually especially also other than then
into onto upon about over under very more most many much only just like e.g i.e etc their there they them he she
his her you your we our us passage passages answer question cite""".split())


def words(text: str) -> set:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in STOP}


def questions(rows, n, seed):
    """[(gold row, word, question)] for unique lowercase WordNet noun lemmas."""
    heads = {}
    for r in rows:
        if r["src"] == "wordnet":
            for lemma in r["text"].split(": ", 1)[0].split(", "):
                heads[lemma.lower()] = heads.get(lemma.lower(), 0) + 1
    cands = []
    for i, r in enumerate(rows):
        if r["src"] != "wordnet" or not r["id"].startswith("noun:"):
            continue
        head, _, gloss = r["text"].partition(": ")
        w = head.split(", ")[0]
        if re.fullmatch(r"[a-z][a-z -]+", w) and heads[w] == 1 and len(words(gloss)) >= 3:
            cands.append((i, w, f"What is {'an' if w[0] in 'aeiou' else 'a'} {w}?"))
    pick = np.random.default_rng(seed).choice(len(cands), size=min(n, len(cands)), replace=False)
    return [cands[j] for j in pick], len(cands)


def gcide_heads(rows) -> dict:
    """word -> rows of the GCIDE entries that define it: the headword before the
    pronunciation ('Deckle \\Dec"kle\\, n. ...'), or the entry id ('<Word>#<chunk>')."""
    out = {}
    for i, r in enumerate(rows):
        if r["src"] == "gcide":
            for w in {r["text"].split(" \\", 1)[0].strip().lower(), r["id"].split("#")[0].lower()}:
                out.setdefault(w, set()).add(i)
    return out


def overlaps(answer, sources, question) -> dict:
    """row -> content words the answer shares with that passage (question words aside)."""
    qw = words(question)
    aw = words(answer) - qw
    return {s.row: len(aw & (words(s.text) - qw)) for s in sources}


def uses_gold(got: dict, gold, least: int = 2) -> bool:
    """The answer shares >= least words with a right passage (gold: a row or a set of rows),
    more than with any other passage of its prompt."""
    right = {gold} if isinstance(gold, int) else set(gold)
    best = max((v for r, v in got.items() if r in right), default=-1)
    other = max((v for r, v in got.items() if r not in right), default=0)
    return best >= least and best > other


def score(answers, rows):
    """The answer-use figures of a list of answer records (also from a results file)."""
    n = max(1, len(answers))
    gcide = gcide_heads(rows)
    for x in answers:
        got = {int(r): v for r, v in x["overlaps"].items()}
        word = x["question"].rstrip("?").split(" ", 3)[3]
        x["uses_gold"] = uses_gold(got, x["gold_row"])
        x["uses_gold_1"] = uses_gold(got, x["gold_row"], 1)
        x["uses_right"] = uses_gold(got, {x["gold_row"]} | gcide.get(word, set()))
    return {"answers": len(answers), "uses_gold": sum(x["uses_gold"] for x in answers) / n,
            "uses_gold_1": sum(x["uses_gold_1"] for x in answers) / n,
            "uses_right": sum(x["uses_right"] for x in answers) / n,
            "retrieved": sum(x["retrieved"] for x in answers) / n,
            "uses_gold_when_retrieved": (sum(x["uses_gold"] for x in answers)
                                         / max(1, sum(x["retrieved"] for x in answers)))}


def print_use(use, max_tokens):
    print(f"answers: {use['uses_gold']:.3f} use the gold passage (>= 2 shared words; >= 1: {use['uses_gold_1']:.3f}); "
          f"{use['uses_gold_when_retrieved']:.3f} of the {use['retrieved']:.0%} whose prompt holds it; "
          f"{use['uses_right']:.3f} use a right passage (the gloss or a GCIDE entry of the word); "
          f"{use['answers']} answers, max_tokens {max_tokens}")


def prepare(data: Path, work: Path):
    work.mkdir(parents=True, exist_ok=True)
    model = work / "minilm-q8_0.gguf"
    if not model.exists():
        from quantann.model.convert import convert
        convert(None, model, "q8_0")
    path = work / "minilm-100k.qann"
    texts, fields = read_records(data / "passages.jsonl")
    if not (path.exists() and os.path.exists(sidecar(path))):
        t0 = time.perf_counter()
        ti = TextIndex.create(str(model))
        ti.add_texts(texts, vectors=np.load(data / "vectors.npy"), fields=fields, progress=True)
        ti.save(path)
        print(f"built {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows = [dict(f, text=t) for t, f in zip(texts, fields)]
    ti = TextIndex.open(path)
    if not ti.has_lexical:  # a store written before the lexical index: add it (the texts stay as they are)
        t0 = time.perf_counter()
        st = ti._stored
        TextStore.write(sidecar(path), dict(st.items()), st.model, dict(st.items_fields()))
        print(f"added the lexical index to {sidecar(path)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        ti = TextIndex.open(path)
    return ti, rows


def pin(threads):
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1} if threads == 1 else set(range(min(threads, os.cpu_count()))))


def retrieval(ti, rows, qs, data: Path, k: int) -> dict:
    """hit@1 and hit@k of the questions (embedded in one batch), with their breakdowns."""
    t0 = time.perf_counter()
    vecs = ti.embedder.embed([q for _, _, q in qs])
    ids, _ = ti.index.search(vecs, k=k, ef=64)
    dt = time.perf_counter() - t0
    found = [set(map(int, ti.rows(i))) for i in ids]
    hit = np.array([g in f for (g, _, _), f in zip(qs, found)])
    hit1 = [int(ti.rows(i[:1])[0]) == g for (g, _, _), i in zip(qs, ids)]
    gcide = gcide_heads(rows)
    hit_any = [g in f or bool(gcide.get(w, set()) & f) for (g, w, _), f in zip(qs, found)]
    # exact search over the same vectors: what the embedding model allows, the index aside
    base = np.load(data / "vectors.npy").astype(np.float32)
    exact = [set(np.argpartition(-(base @ v), k)[:k].tolist()) for v in vecs]
    del base
    hit_exact = [g in e for (g, _, _), e in zip(qs, exact)]
    # words the MiniLM vocabulary holds whole (rare words split into pieces embed poorly)
    vocab = np.array([all(len(ti.embedder.tokenize(p)) == 3 for p in re.findall("[a-z]+", w)) for _, w, _ in qs])
    ret = {"questions": len(qs), "hit1": float(np.mean(hit1)), f"hit{k}": float(np.mean(hit)),
           **lexical_hybrid(ti, qs, vecs, k, vocab, hit),
           f"hit{k}_exact_search": float(np.mean(hit_exact)), f"hit{k}_any": float(np.mean(hit_any)),
           "in_vocab_share": float(vocab.mean()), f"hit{k}_in_vocab": float(hit[vocab].mean()),
           f"hit{k}_out_of_vocab": float(hit[~vocab].mean()),
           "embed_search_ms_per_question": dt * 1000 / len(qs)}
    print(f"retrieval: hit@1 {ret['hit1']:.3f}  hit@{k} {ret[f'hit{k}']:.3f} (exact search "
          f"{ret[f'hit{k}_exact_search']:.3f}; gold or a GCIDE entry of the word {ret[f'hit{k}_any']:.3f}; "
          f"words whole in the MiniLM vocabulary ({ret['in_vocab_share']:.0%}) {ret[f'hit{k}_in_vocab']:.3f}, "
          f"others {ret[f'hit{k}_out_of_vocab']:.3f})  "
          f"{ret['embed_search_ms_per_question']:.1f} ms/question (embed + search, batched)")
    print(f"lexical (BM25) hit@{k} {ret[f'hit{k}_lexical']:.3f}, hybrid (reciprocal rank fusion) hit@1 "
          f"{ret['hit1_hybrid']:.3f} hit@{k} {ret[f'hit{k}_hybrid']:.3f} (in vocabulary "
          f"{ret[f'hit{k}_hybrid_in_vocab']:.3f}, others {ret[f'hit{k}_hybrid_out_of_vocab']:.3f}); per question "
          f"(median ms, embedding aside): vector {ret['search_ms_vector']:.2f}, lexical {ret['search_ms_lexical']:.2f}, "
          f"hybrid {ret['search_ms_hybrid']:.2f}; lexical index {ret['lexical_bytes'] / 1e6:.1f} MB "
          f"({ret['lexical_bytes'] / ret['index_memory_bytes']:.0%} of the index's memory); hybrid found "
          f"{ret['hybrid_gained']} gold passages the vector search missed, lost {ret['hybrid_lost']} it found, and found "
          f"{ret['hybrid_beyond_lexical']} the lexical search alone missed")
    return ret


def lexical_hybrid(ti, qs, vecs, k: int, vocab, hit_vector) -> dict:
    """hit@k of the lexical (BM25) search alone and of the hybrid search (TextIndex.search_ids),
    and the search time per question of each (one question at a time, the three interleaved;
    medians), and the lexical index's bytes."""
    gold = [g for g, _, _ in qs]
    t = {"vector": [], "lexical": [], "hybrid": []}
    hit_l, hit_h, hit1_h = [], [], []
    clock = time.perf_counter
    for (g, _, q), v in zip(qs, vecs):
        t0 = clock()
        ti.search_ids(v, q, k=k, ef=64)
        t1 = clock()
        lex = ti.lexical_search(q, k)
        t2 = clock()
        ids, _ = ti.search_ids(v, q, k=k, ef=64, hybrid=True)
        t3 = clock()
        t["vector"].append(t1 - t0)
        t["lexical"].append(t2 - t1)
        t["hybrid"].append(t3 - t2)
        hit_l.append(g in set(map(int, ti.rows([i for i, _, _ in lex]))))
        rows = list(map(int, ti.rows(ids)))
        hit_h.append(g in rows)
        hit1_h.append(rows[:1] == [g])
    hit_h, hit_l = np.array(hit_h), np.array(hit_l)
    mem = ti.memory()
    return {f"hit{k}_lexical": float(np.mean(hit_l)), f"hit{k}_hybrid": float(hit_h.mean()),
            "hit1_hybrid": float(np.mean(hit1_h)), f"hit{k}_hybrid_in_vocab": float(hit_h[vocab].mean()),
            f"hit{k}_hybrid_out_of_vocab": float(hit_h[~vocab].mean()),
            "hybrid_lost": int((hit_vector & ~hit_h).sum()), "hybrid_gained": int((~hit_vector & hit_h).sum()),
            "hybrid_beyond_lexical": int((~hit_l & hit_h).sum()),
            **{f"search_ms_{key}": statistics.median(v) * 1000 for key, v in t.items()},
            "lexical_bytes": int(mem.get("lexical", 0)), "index_memory_bytes": int(mem["total"] - mem.get("lexical", 0))}


def answer_quality(ti, rows, qs, gen, a, quiet=False) -> list:
    """The first a.answers questions answered (2 threads): answer records with overlaps."""
    pin(2)
    answers = []
    for j, (g, w, q) in enumerate(qs[:a.answers]):
        ans = ask(ti, q, generator=gen, k=a.k, max_tokens=a.max_tokens, passage_tokens=a.passage_tokens, stop=a.stop)
        got = overlaps(ans.answer, ans.sources, q)
        answers.append({"question": q, "gold_row": g, "gold": rows[g]["text"], "answer": ans.answer,
                        "retrieved": g in got, "overlaps": {str(r): v for r, v in got.items()},
                        "timings": ans.timings})
        if not quiet:
            print(f"  [{j + 1}/{min(a.answers, len(qs))}] {'USES' if uses_gold(got, g) else 'miss'} {q} -> "
                  f"{ans.answer[:90]!r}", flush=True)
    return answers


def latency(ti, qs, gens, a) -> dict:
    """End to end timings, medians per thread count; the thread counts alternate. Each
    question is asked warm (the generator's KV cache holds the previous question's prompt,
    as in a running service: the system block is reused) and cold (the cache emptied first;
    first token only)."""
    lat = {(t, c): [] for t in (1, 2) for c in ("warm", "cold")}
    for t in (1, 2):  # a first question fills each cache
        ask(ti, qs[0][2], generator=gens[t], k=a.k, max_tokens=1, passage_tokens=a.passage_tokens)
    for j, (g, w, q) in enumerate(qs[-a.latency:]):
        for t in ((1, 2) if j % 2 == 0 else (2, 1)):
            pin(t)
            lat[t, "warm"].append(ask(ti, q, generator=gens[t], k=a.k, max_tokens=a.max_tokens,
                                      passage_tokens=a.passage_tokens, stop=a.stop).timings)
            gens[t].forget()
            lat[t, "cold"].append(ask(ti, q, generator=gens[t], k=a.k, max_tokens=1,
                                      passage_tokens=a.passage_tokens).timings)
    pin(2)
    speed = {}
    for (t, c), runs in lat.items():
        med = {key: statistics.median(r[key] for r in runs) for key in
               ("prompt_tokens", "cached_tokens", "embed_ms", "search_ms", "prefill_ms", "first_token_ms",
                "decode_tok_s", "total_ms")}
        med["first_token_ms_spread"] = [min(r["first_token_ms"] for r in runs), max(r["first_token_ms"] for r in runs)]
        med["prefill_tok_s"] = ((med["prompt_tokens"] - med["cached_tokens"]) / med["prefill_ms"] * 1000
                                if med["prefill_ms"] else 0.0)
        speed[f"{t}_{c}"] = med
    print("\n| threads | KV cache | prompt tokens | reused | embed ms | search ms | prefill ms | prefill tok/s | "
          "first token ms (min-max) | decode tok/s | total s |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for key, m in speed.items():
        t, c = key.split("_")
        warm = c == "warm"
        print(f"| {t} | {c} | {m['prompt_tokens']:.0f} | {m['cached_tokens']:.0f} | {m['embed_ms']:.1f} | "
              f"{m['search_ms']:.2f} | {m['prefill_ms']:.0f} | {m['prefill_tok_s']:.0f} | **{m['first_token_ms']:.0f}** "
              f"({m['first_token_ms_spread'][0]:.0f}-{m['first_token_ms_spread'][1]:.0f}) | "
              f"{m['decode_tok_s']:.1f} | {m['total_ms'] / 1000 if warm else float('nan'):.1f} |")
    print(f"(medians over {a.latency} questions each, k={a.k}, passage_tokens={a.passage_tokens}, "
          f"best_last={ask_mod.BEST_LAST}, max_tokens={a.max_tokens} warm, 1 cold; "
          f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return speed


# the prompt variants --sweep compares: (name, passage_tokens, k, best_last, system or None = constants.json)
SHORT_SYSTEM = "Answer the question from the numbered passages. Cite them as [n]."
VARIANTS = [("64 tok, best first (before)", 64, 5, False, None),
            ("48 tok, best first", 48, 5, False, None),
            ("32 tok, best first", 32, 5, False, None),
            ("64 tok, best last", 64, 5, True, None),
            ("48 tok, best last", 48, 5, True, None),
            ("32 tok, best last", 32, 5, True, None),
            ("48 tok, best first, short instruction", 48, 5, False, SHORT_SYSTEM),
            ("48 tok, k=3, best first", 48, 3, False, None)]


def sweep(ti, rows, qs, gen, a) -> list:
    """Answer use and prompt cost of each prompt variant over the same questions (2 threads,
    warm cache: tokens evaluated = prompt tokens - the reused prefix)."""
    out = []
    keep = ask_mod.SYSTEM, ask_mod.BEST_LAST
    for name, pt, k, best_last, system in VARIANTS:
        ask_mod.SYSTEM, ask_mod.BEST_LAST = system or keep[0], best_last
        v = argparse.Namespace(**dict(vars(a), passage_tokens=pt, k=k))
        answers = answer_quality(ti, rows, qs, gen, v, quiet=True)
        use = score(answers, rows)
        tm = [x["timings"] for x in answers]
        row = {"variant": name, "passage_tokens": pt, "k": k, "best_last": best_last, "system": system or keep[0],
               **use, "prompt_tokens": statistics.median(t["prompt_tokens"] for t in tm),
               "evaluated_tokens": statistics.median(t["prompt_tokens"] - t["cached_tokens"] for t in tm),
               "first_token_ms": statistics.median(t["first_token_ms"] for t in tm), "answers_detail": answers}
        out.append(row)
        print(f"| {name} | {row['uses_gold']:.3f} | {row['uses_right']:.3f} | {row['retrieved']:.3f} | "
              f"{row['prompt_tokens']:.0f} | {row['evaluated_tokens']:.0f} | {row['first_token_ms']:.0f} |", flush=True)
    ask_mod.SYSTEM, ask_mod.BEST_LAST = keep
    return out


def main():
    from quantann.model.report import default_dataset
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default_dataset())
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "cache" / "ask")
    p.add_argument("--questions", type=int, default=500, help="questions for retrieval hit@5")
    p.add_argument("--answers", type=int, default=40, help="of them, answered by the LLM (2 threads)")
    p.add_argument("--latency", type=int, default=20, help="questions timed per thread count (1, 2), alternating")
    p.add_argument("--sweep", action="store_true",
                   help="compare the prompt variants (passage cut, order, instruction, k) on --answers questions")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--passage-tokens", type=int, default=PASSAGE_TOKENS,
                   help="cut each passage in the prompt to this many tokens (0: whole passages)")
    p.add_argument("--llm", default=None, help="GGUF decoder (default: the installed SmolLM2-135M-Instruct Q4_1)")
    p.add_argument("--chat-template", type=Path, default=None,
                   help="a jinja2 chat template file instead of the LLM's own (a base model: bench/templates/completion.jinja)")
    p.add_argument("--stop", action="append", default=None, help="a text that ends each answer (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--retrieval-only", action="store_true", help="stop after the retrieval figures (no LLM run)")
    p.add_argument("--rescore", type=Path, default=None,
                   help="a results file: recompute its retrieval figures and, from its stored overlaps, its "
                        "answer-use figures, and rewrite it (no LLM run)")
    a = p.parse_args()
    if a.data is None:
        sys.exit("error: minilm-100k not found: pass --data DIR")

    ti, rows = prepare(a.data, a.workdir)
    qs, n_cands = questions(rows, a.questions, a.seed)
    print(f"{len(qs)} questions from {n_cands} unique WordNet noun lemmas; index of {len(ti)} passages")
    ret = retrieval(ti, rows, qs, a.data, a.k)
    if a.retrieval_only:
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps({"command": " ".join(sys.argv), "k": a.k, "retrieval": ret,
                                          "loadavg": os.getloadavg()}, indent=1))
        return
    if a.rescore:
        res = json.loads(a.rescore.read_text())
        res["retrieval"], res["answer_use"] = ret, score(res["answers"], rows)
        print_use(res["answer_use"], res["max_tokens"])
        a.rescore.write_text(json.dumps(res, indent=1))
        return
    template = a.chat_template.read_text() if a.chat_template else None
    gens = {t: open_generator(a.llm, threads=t, n_ctx=2048, chat_template=template) for t in (1, 2)}
    if a.sweep:
        pin(2)
        print("\n| prompt | uses gold | uses a right passage | gold in prompt | prompt tokens | evaluated | "
              "first token ms |\n|---|---|---|---|---|---|---|")
        res = sweep(ti, rows, qs, gens[2], a)
        print(f"({a.answers} answers each, max_tokens {a.max_tokens}, 2 threads, load average at the end "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps({"command": " ".join(sys.argv), "variants": res}, indent=1))
        return
    answers = answer_quality(ti, rows, qs, gens[2], a)
    use = score(answers, rows)
    if answers:
        print_use(use, a.max_tokens)
    speed = latency(ti, qs, gens, a)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({
            "command": " ".join(sys.argv), "llm": gens[2].path, "chat_template": template, "stop": a.stop,
            "k": a.k, "max_tokens": a.max_tokens,
            "passage_tokens": a.passage_tokens,
            "retrieval": ret, "answer_use": use, "speed": speed, "loadavg": os.getloadavg(),
            "answers": answers}, indent=1))


if __name__ == "__main__":
    main()
