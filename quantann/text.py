"""Text in, neighbours out: an index whose vectors come from an on-device embedding
model, with the texts kept in a payload store beside it.

    ti = TextIndex.create("minilm-q8_0.gguf")
    ti.add_texts(["first passage", "second passage"])
    ti.save("notes.qann")                     # notes.qann + notes.qann.texts
    ti = TextIndex.open("notes.qann")
    hits = ti.search_text("a question", k=5)  # [[(id, distance, text), ...]]

The payload store (`INDEX.texts`) is a GGUF file too: `text.ids` (sorted u64 ids),
`text.offsets` (u64, one more than the ids) and `text.bytes` (UTF-8, concatenated), plus
the key `quantann.text.model` naming the model the vectors came from. When the texts came
with other fields (`{"text": ..., "src": ..., "url": ...}` lines), `text.fields.offsets` and
`text.fields.bytes` hold each text's other fields as one JSON object, in the same order;
stores without them (older files) read as empty fields. It is memory-mapped: texts are
read only for the results shown. Names: quantann/constants.json, "text_store".

The store also holds a lexical index of the texts (`lex.*` tensors, FORMAT.md; built by
the kernel, kernel/text/lexical.c, unless lexical=False): BM25 search by words, fused with
the vector search by reciprocal rank (`search_text(..., hybrid=True)`, and `ask`), so a
rare word the embedding model splits into pieces still finds the passage that holds it.
Stores without it (older files) open as before and search by vectors only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from . import _kernel
from .constants import LEXICAL, LIMITS
from .constants import TEXT_STORE as T
from .errors import FormatError
from .gguf_file import GGUFFile, atomic_write
from .index import Index

MODEL_KEY = T["model_key"]
# the lexical index's tensors: (name key, element type in memory, element type in the GGUF)
LEX_TENSORS = (("lex_terms", np.uint8, np.int8), ("lex_term_offsets", np.uint32, np.int32),
               ("lex_df", np.uint32, np.int32), ("lex_post_offsets", np.uint64, np.int64),
               ("lex_postings", np.uint8, np.int8), ("lex_doc_len", np.uint16, np.int16))


def sidecar(index_path) -> str:
    return os.fspath(index_path) + ".texts"


class TextStore:
    """Texts by id, memory-mapped."""

    def __init__(self, path):
        self.path = str(path)
        self._f = GGUFFile(self.path)
        if self._f.get("general.architecture") != T["arch"]:
            raise FormatError(f"{self.path}: not a quantann text store")
        self.ids = self._f.array(T["ids"], np.uint64)
        self.offsets = self._f.array(T["offsets"], np.uint64)
        self.blob = self._f.array(T["bytes"], np.uint8)
        if not _valid_offsets(self.offsets, len(self.ids), len(self.blob)) \
                or (np.diff(self.ids.astype(np.float64)) <= 0).any():
            raise FormatError(f"{self.path}: corrupt text store (offsets or ids out of order)")
        self.fields_offsets = self.fields_blob = None
        if T["fields_offsets"] in self._f.tensors:
            self.fields_offsets = self._f.array(T["fields_offsets"], np.uint64)
            self.fields_blob = self._f.array(T["fields_bytes"], np.uint8)
            if not _valid_offsets(self.fields_offsets, len(self.ids), len(self.fields_blob)):
                raise FormatError(f"{self.path}: corrupt text store (field offsets out of order)")
        self.model = self._f.get(MODEL_KEY)
        self.lexical, self.lexical_bytes = None, 0
        present = [T[key] in self._f.tensors for key, _, _ in LEX_TENSORS]
        if any(present):
            if not all(present):
                raise FormatError(f"{self.path}: corrupt text store (part of the lexical index is missing)")
            arrays = [self._f.array(T[key], dt) for key, dt, _ in LEX_TENSORS]
            try:
                self.lexical = _kernel.Lexical(len(self.ids), *arrays)  # checks every array
            except ValueError as e:
                raise FormatError(f"{self.path}: corrupt text store ({e})") from None
            self.lexical_bytes = sum(a.nbytes for a in arrays)

    def memory(self) -> dict:
        """Bytes of the store by part: `texts` (ids, offsets, texts, fields: mapped, read only
        for results shown) and `lexical` (the lexical index, searched by every hybrid query)."""
        texts = sum(a.nbytes for a in (self.ids, self.offsets, self.blob, self.fields_offsets, self.fields_blob)
                    if a is not None)
        return {"texts": texts, "lexical": self.lexical_bytes}

    def lexical_search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The BM25 top-k of query: (ids u64, scores f32), best first (only texts that hold
        one of its words, so maybe fewer than k)."""
        if self.lexical is None:
            raise ValueError(f"{self.path} has no lexical index: rebuild the index (quantann build ... --texts), "
                             "or save the text index again")
        pos, score = self.lexical.search(query, int(k))
        return self.ids[np.frombuffer(pos, np.uint32)], np.frombuffer(score, np.float32)

    def _at(self, p: int) -> str:
        a, b = int(self.offsets[p]), int(self.offsets[p + 1])
        return bytes(self.blob[a:b]).decode("utf-8", "replace")

    def _fields_at(self, p: int) -> dict:
        if self.fields_offsets is None:
            return {}
        a, b = int(self.fields_offsets[p]), int(self.fields_offsets[p + 1])
        if a == b:
            return {}
        try:
            out = json.loads(bytes(self.fields_blob[a:b]).decode("utf-8"))
        except ValueError:
            raise FormatError(f"{self.path}: corrupt text store (fields of id {int(self.ids[p])} are not JSON)") from None
        if not isinstance(out, dict):
            raise FormatError(f"{self.path}: corrupt text store (fields of id {int(self.ids[p])} are not an object)")
        return out

    def _positions(self, ids):
        ids = np.asarray(ids, np.uint64).ravel()
        pos = np.searchsorted(self.ids, ids)
        return [int(p) if p < len(self.ids) and self.ids[p] == i else None for i, p in zip(ids, pos)]

    def get(self, ids) -> list[str | None]:
        return [None if p is None else self._at(p) for p in self._positions(ids)]

    def get_fields(self, ids) -> list[dict | None]:
        """The other fields of each id's text ({} when it had none; None for an unknown id)."""
        return [None if p is None else self._fields_at(p) for p in self._positions(ids)]

    def items(self):
        for i in range(len(self.ids)):
            yield int(self.ids[i]), self._at(i)

    def items_fields(self):
        for i in range(len(self.ids)):
            yield int(self.ids[i]), self._fields_at(i)

    @staticmethod
    def write(path, texts: dict, model: str | None, fields: dict | None = None, lexical: bool = True) -> None:
        """texts: {id: str}; fields: {id: dict} for the ids that have other fields; lexical:
        build the lexical index of the texts too."""
        if not texts:
            raise ValueError("no texts to write")
        ids = np.array(sorted(texts), np.uint64)
        offsets, blob = _pack([texts[int(i)].encode("utf-8") for i in ids])
        fields = {i: f for i, f in (fields or {}).items() if f and i in texts}
        if fields:
            f_offsets, f_blob = _pack([json.dumps(fields[int(i)], ensure_ascii=False).encode("utf-8")
                                       if int(i) in fields else b"" for i in ids])
        lex = _kernel.lex_build(blob, offsets) if lexical else None

        def write(tmp):
            w = GGUFWriter(tmp, T["arch"])
            if model:
                w.add_string(MODEL_KEY, model)
            w.add_tensor(T["ids"], ids.view(np.int64))
            w.add_tensor(T["offsets"], offsets.view(np.int64))
            w.add_tensor(T["bytes"], blob.view(np.int8))
            if fields:
                w.add_tensor(T["fields_offsets"], f_offsets.view(np.int64))
                w.add_tensor(T["fields_bytes"], f_blob.view(np.int8))
            for (key, _, disk), part in zip(LEX_TENSORS, lex or ()):
                w.add_tensor(T[key], np.frombuffer(part, disk))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
        atomic_write(path, write)


class TextIndex:
    """An Index plus an Embedder plus the texts."""

    def __init__(self, embedder, index: Index | None = None, texts: TextStore | None = None,
                 build_args: dict | None = None, lexical: bool = True):
        self.embedder = embedder
        self.index = index
        self._stored = texts
        self._new: dict[int, str] = {}
        self._new_fields: dict[int, dict] = {}
        self._build_args = build_args or {}
        self._lexical = lexical  # save() writes the lexical index

    @classmethod
    def create(cls, model=None, quant: str = "sq8", M: int = 16, ef_construction: int = 200,
               max_tokens: int | None = None, lexical: bool = True, row_order: str = "auto") -> "TextIndex":
        """An empty text index; `model` (a GGUF path or an Embedder) may be None when
        every `add_texts` call brings its vectors. `max_tokens` truncates the texts it
        embeds (default: the model's own max_seq_length). lexical=False: save() writes no
        lexical index (search by vectors only). row_order: of the first `add_texts`'s build
        (Index.build); text i is id i either way."""
        from .model.embedder import Embedder
        emb = Embedder.open(model, max_tokens=max_tokens) if isinstance(model, (str, os.PathLike)) else model
        return cls(emb, build_args=dict(quant=quant, M=M, ef_construction=ef_construction,
                                              row_order=row_order), lexical=lexical)

    @classmethod
    def open(cls, path, model=None, store: str = "pread", memory_budget=None) -> "TextIndex":
        from . import open as open_index
        from .model.embedder import Embedder
        index = open_index(path, store=store, memory_budget=memory_budget)
        texts = TextStore(sidecar(path)) if os.path.exists(sidecar(path)) else None
        model = model or (texts.model and _resolve(texts.model, path))
        if not model:
            raise ValueError(f"{path}: no embedding model recorded beside the index: pass model=")
        emb = model if not isinstance(model, (str, os.PathLike)) else Embedder.open(model)
        if emb.dim != index.dim:
            raise ValueError(f"model {getattr(emb, 'path', emb)} embeds {emb.dim}-d vectors, the index holds {index.dim}-d")
        return cls(emb, index, texts)

    def __len__(self):
        return 0 if self.index is None else len(self.index)

    @property
    def has_stored_texts(self) -> bool:
        """True when texts were saved beside the index (its payload store exists)."""
        return self._stored is not None

    def add_texts(self, texts, ids=None, vectors=None, progress: bool = False, fields=None) -> np.ndarray:
        """Embeds `texts` (unless `vectors` are given) and adds them; returns their ids.
        fields: one dict per text of other data kept with it (returned by `fields(ids)`)."""
        texts = list(texts)
        if not texts:
            raise ValueError("no texts to add")
        if vectors is None:
            if self.embedder is None:
                raise ValueError("no embedding model: pass vectors= or create the index with a model")
            vectors = self.embedder.embed(texts)
        if len(vectors) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        if self.embedder is not None and np.ndim(vectors) == 2 and np.shape(vectors)[1] != self.embedder.dim:
            raise ValueError(f"the vectors have dimension {np.shape(vectors)[1]}, the model "
                             f"{getattr(self.embedder, 'path', None) or 'given'} embeds {self.embedder.dim}-d vectors")
        if fields is not None:
            fields = list(fields)
            if len(fields) != len(texts) or not all(isinstance(f, dict) for f in fields):
                raise ValueError(f"fields must be one dict per text ({len(texts)})")
        if self.index is None:  # text i gets id i (or ids[i]), whatever order the rows are stored in
            self.index = Index.build(vectors, metric="cosine", ids=ids, progress=progress, **self._build_args)
            new_ids = np.arange(len(texts), dtype=np.uint64) if ids is None else np.asarray(ids, np.uint64)
        else:
            new_ids = self.index.add(vectors, ids=ids, progress=progress)
        for i, t in zip(new_ids, texts):
            self._new[int(i)] = t
        for i, f in zip(new_ids, fields or ()):
            if f:
                self._new_fields[int(i)] = dict(f)
        return new_ids

    @property
    def has_texts(self) -> bool:
        """True when there are texts to show (saved beside the index, or added)."""
        return self._stored is not None or bool(self._new)

    def texts(self, ids) -> list[str | None]:
        out = self._stored.get(ids) if self._stored is not None else [None] * len(np.ravel(ids))
        return [self._new.get(int(i), t) for i, t in zip(np.ravel(ids), out)]

    def fields(self, ids) -> list[dict]:
        """The other fields kept with each id's text ({} when none)."""
        out = self._stored.get_fields(ids) if self._stored is not None else [None] * len(np.ravel(ids))
        return [self._new_fields.get(int(i), f if f is not None and int(i) not in self._new else {})
                for i, f in zip(np.ravel(ids), out)]

    def rows(self, ids) -> np.ndarray:
        """The row of each id in the build's input (for an index built from VECTORS.npy +
        PASSAGES.jsonl, line i of both is id i, whatever order the index stores its rows
        in; with user ids: the index row); -1 for an id not in the index."""
        ids = np.asarray(ids, np.uint64).ravel()
        rows = self.index.rows_of(ids)
        return rows if self.index.has_user_ids else np.where(rows >= 0, ids.astype(np.int64), -1)

    @property
    def has_lexical(self) -> bool:
        """True when the saved texts carry a lexical index (hybrid search is possible)."""
        return self._stored is not None and self._stored.lexical is not None

    def memory(self) -> dict:
        """The index's memory (Index.memory) plus the lexical index's bytes (`lexical`)."""
        out = self.index.memory() if self.index is not None else {"total": 0}
        lex = self._stored.memory()["lexical"] if self._stored is not None else 0
        if lex:
            out["lexical"] = lex
            out["total"] += lex
        return out

    def search_text(self, queries, k: int = 10, ef: int = 64, rerank=None, hybrid: bool = False):
        """For one text (or a list): [(id, distance, text), ...] best first (a list of such
        lists for a list of queries). hybrid=True: the vector top-N and the BM25 top-N
        (N = constants.json lexical.candidates, at least k) fused by reciprocal rank; the
        distance is still the vector distance of each text (computed exactly for one the
        vector search did not return)."""
        if self.index is None:
            raise ValueError("the index is empty: add texts first")
        single = isinstance(queries, str)
        qs = [queries] if single else list(queries)
        vecs = self.embedder.embed(qs)
        if hybrid:
            res = [self.search_ids(v, q, k=k, ef=ef, rerank=rerank, hybrid=True) for v, q in zip(vecs, qs)]
        else:
            res = zip(*self.index.search(vecs, k=k, ef=ef, rerank=rerank))
        hits = [list(zip(map(int, i), map(float, d), self.texts(i))) for i, d in res]
        return hits[0] if single else hits

    def lexical_search(self, query: str, k: int = 10) -> list:
        """The BM25 top-k of the saved texts for query: [(id, score, text), ...] best first
        (only texts that hold one of its words)."""
        if self._stored is None:
            raise ValueError("no saved texts: save the text index first (the lexical index is built on save)")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        ids, scores = self._stored.lexical_search(query, k)
        return list(zip(map(int, ids), map(float, scores), self.texts(ids)))

    def search_ids(self, vector, text: str, k: int = 10, ef: int = 64, rerank=None,
                   hybrid: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One query given as its embedding and its text: (ids, distances), best first.
        hybrid: fuse the vector top-N with the BM25 top-N of text (kernel/text/fuse.c).
        rerank None: the index's default_rerank."""
        if not hybrid:
            ids, dist = self.index.search(np.asarray(vector)[None], k=k, ef=ef, rerank=rerank)
            return ids[0], dist[0]
        if not self.has_lexical:
            raise ValueError("this text index has no lexical index for hybrid search: build it with texts "
                             "(quantann build ... --texts, without --no-lexical) or save it again")
        n = max(int(k), int(LEXICAL["candidates"]))
        rerank = self.index.default_rerank if rerank is None else rerank
        # the vector top-n, reranked from as many candidates as the plain top-k would read (at least n)
        rr = rerank if rerank in (0, "auto") else max(1, -(-int(k) * int(rerank) // n))
        v_ids, v_dist = self.index.search(np.asarray(vector)[None], k=min(n, len(self), LIMITS["max_k"]),
                                          ef=max(ef, n), rerank=rr)
        v_ids, v_dist = v_ids[0], v_dist[0]
        ok = v_ids != np.iinfo(np.uint64).max
        v_ids, v_dist = v_ids[ok], v_dist[ok]
        l_ids, _ = self._stored.lexical_search(text, n)
        l_ids = l_ids[self.rows(l_ids) >= 0]  # texts whose vector is deleted (not saved yet) are out
        ids, _ = _kernel.rrf_fuse(v_ids.astype(np.uint64), l_ids.astype(np.uint64), 1.0, 1.0,
                                  float(LEXICAL["rrf_k"]), int(k))
        ids = np.frombuffer(ids, np.uint64)
        known = dict(zip(map(int, v_ids), map(float, v_dist)))
        missing = [int(i) for i in ids if int(i) not in known]
        if missing:
            known.update(zip(missing, self._distances(vector, missing)))
        return ids.copy(), np.array([known[int(i)] for i in ids], np.float32)

    def _distances(self, vector, ids) -> list:
        """Exact cosine distances from vector to the texts of ids, from one batched read."""
        rows = self.index.rows_of(ids).astype(np.int32)
        order = np.argsort(rows)
        ranges = np.frombuffer(_kernel.coalesce_rows(rows[order], 0), np.int32).reshape(-1, 2)
        vecs, _ = self.index._read(rows[order], ranges)
        q = self.index.prepare_queries(np.asarray(vector)[None])[0]
        out = np.empty(len(rows), np.float32)
        out[order] = 1.0 - vecs @ q
        return out.tolist()

    def save(self, path, progress: bool = False) -> None:
        if self.index is None:
            raise ValueError("nothing to save: add texts first")
        self.index.save(path, progress=progress)
        live = set(map(int, self.index.ids)) if self.index.n_deleted == 0 else None
        merged = dict(self._stored.items()) if self._stored is not None else {}
        merged.update(self._new)
        if live is None:
            from . import open as open_index
            live = set(map(int, open_index(path).ids))
        merged = {i: t for i, t in merged.items() if i in live}
        fields = dict(self._stored.items_fields()) if self._stored is not None else {}
        for i in self._new:
            fields.pop(i, None)  # a re-added id keeps only its new fields
        fields.update(self._new_fields)
        model = getattr(self.embedder, "path", None)
        if model:
            model = os.path.relpath(os.path.abspath(model), os.path.dirname(os.path.abspath(path)))
        TextStore.write(sidecar(path), merged, model, fields, lexical=self._lexical)
        self._stored, self._new, self._new_fields = TextStore(sidecar(path)), {}, {}

    def ask(self, question: str, generator=None, k: int = 5, stream: bool = False, **kw):
        """An answer to `question` from the top-k passages by a decoder LLM (default: the
        installed SmolLM2): see quantann.ask.ask."""
        from .ask import ask
        return ask(self, question, generator=generator, k=k, stream=stream, **kw)


def _pack(encoded: list) -> tuple:
    """Offsets (u64, one more than the items) and the concatenated bytes, with one trailing
    byte so that the tensor is never empty."""
    offsets = np.zeros(len(encoded) + 1, np.uint64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return offsets, np.frombuffer(b"".join(encoded) + b"\0", np.uint8)


def _valid_offsets(offsets, n: int, blob_len: int) -> bool:
    return (len(offsets) == n + 1 and offsets[0] == 0 and offsets[-1] < blob_len
            and not (np.diff(offsets.astype(np.int64)) < 0).any())


def _resolve(model: str, index_path) -> str:
    p = Path(model)
    return str(p if p.is_absolute() else Path(os.path.abspath(index_path)).parent / p)
