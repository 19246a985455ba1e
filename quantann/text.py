"""Text in, neighbours out: an index whose vectors come from an on-device embedding
model, with the texts kept in a payload store beside it.

    ti = TextIndex.create("minilm-q8_0.gguf")
    ti.add_texts(["first passage", "second passage"])
    ti.save("notes.qann")                     # notes.qann + notes.qann.texts
    ti = TextIndex.open("notes.qann")
    hits = ti.search_text("a question", k=5)  # [[(id, distance, text), ...]]

The payload store (`INDEX.texts`) is a GGUF file too: `text.ids` (sorted u64 ids),
`text.offsets` (u64, one more than the ids) and `text.bytes` (UTF-8, concatenated), plus
the key `quantann.text.model` naming the model the vectors came from. It is memory-mapped:
texts are read only for the results shown.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from .errors import FormatError
from .gguf_file import GGUFFile, atomic_write
from .index import Index

MODEL_KEY = "quantann.text.model"


def sidecar(index_path) -> str:
    return os.fspath(index_path) + ".texts"


class TextStore:
    """Texts by id, memory-mapped."""

    def __init__(self, path):
        self.path = str(path)
        self._f = GGUFFile(self.path)
        if self._f.get("general.architecture") != "quantann-texts":
            raise FormatError(f"{self.path}: not a quantann text store")
        self.ids = self._f.array("text.ids", np.uint64)
        self.offsets = self._f.array("text.offsets", np.uint64)
        self.blob = self._f.array("text.bytes", np.uint8)
        if (len(self.offsets) != len(self.ids) + 1 or self.offsets[0] != 0
                or self.offsets[-1] >= len(self.blob) or (np.diff(self.offsets.astype(np.int64)) < 0).any()
                or (np.diff(self.ids.astype(np.float64)) <= 0).any()):
            raise FormatError(f"{self.path}: corrupt text store (offsets or ids out of order)")
        self.model = self._f.get(MODEL_KEY)

    def get(self, ids) -> list[str | None]:
        ids = np.asarray(ids, np.uint64).ravel()
        pos = np.searchsorted(self.ids, ids)
        out = []
        for i, p in zip(ids, pos):
            if p < len(self.ids) and self.ids[p] == i:
                a, b = int(self.offsets[p]), int(self.offsets[p + 1])
                out.append(bytes(self.blob[a:b]).decode("utf-8", "replace"))
            else:
                out.append(None)
        return out

    def items(self):
        for i in range(len(self.ids)):
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            yield int(self.ids[i]), bytes(self.blob[a:b]).decode("utf-8", "replace")

    @staticmethod
    def write(path, texts: dict, model: str | None) -> None:
        if not texts:
            raise ValueError("no texts to write")
        ids = np.array(sorted(texts), np.uint64)
        enc = [texts[int(i)].encode("utf-8") for i in ids]
        offsets = np.zeros(len(enc) + 1, np.uint64)
        offsets[1:] = np.cumsum([len(e) for e in enc])
        # one trailing byte so that the tensor is never empty
        blob = np.frombuffer(b"".join(enc) + b"\0", np.uint8)

        def write(tmp):
            w = GGUFWriter(tmp, "quantann-texts")
            if model:
                w.add_string(MODEL_KEY, model)
            w.add_tensor("text.ids", ids.view(np.int64))
            w.add_tensor("text.offsets", offsets.view(np.int64))
            w.add_tensor("text.bytes", blob.view(np.int8))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
        atomic_write(path, write)


class TextIndex:
    """An Index plus an Embedder plus the texts."""

    def __init__(self, embedder, index: Index | None = None, texts: TextStore | None = None,
                 build_args: dict | None = None):
        self.embedder = embedder
        self.index = index
        self._stored = texts
        self._new: dict[int, str] = {}
        self._build_args = build_args or {}

    @classmethod
    def create(cls, model=None, quant: str = "sq8", M: int = 16, ef_construction: int = 200,
               max_tokens: int | None = None) -> "TextIndex":
        """An empty text index; `model` (a GGUF path or an Embedder) may be None when
        every `add_texts` call brings its vectors. `max_tokens` truncates the texts it
        embeds (default: the model's own max_seq_length)."""
        from .model.embedder import Embedder
        emb = Embedder.open(model, max_tokens=max_tokens) if isinstance(model, (str, os.PathLike)) else model
        return cls(emb, build_args=dict(quant=quant, M=M, ef_construction=ef_construction))

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

    def add_texts(self, texts, ids=None, vectors=None, progress: bool = False) -> np.ndarray:
        """Embeds `texts` (unless `vectors` are given) and adds them; returns their ids."""
        texts = list(texts)
        if not texts:
            raise ValueError("no texts to add")
        if vectors is None:
            if self.embedder is None:
                raise ValueError("no embedding model: pass vectors= or create the index with a model")
            vectors = self.embedder.embed(texts)
        if len(vectors) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        if self.index is None:
            self.index = Index.build(vectors, metric="cosine", ids=ids, progress=progress, **self._build_args)
            new_ids = self.index.ids
        else:
            start = self.index.rows
            self.index.add(vectors, ids=ids, progress=progress)
            new_ids = self.index.ids[start:]
        for i, t in zip(new_ids, texts):
            self._new[int(i)] = t
        return new_ids

    def texts(self, ids) -> list[str | None]:
        out = self._stored.get(ids) if self._stored is not None else [None] * len(np.ravel(ids))
        return [self._new.get(int(i), t) for i, t in zip(np.ravel(ids), out)]

    def search_text(self, queries, k: int = 10, ef: int = 64, rerank: int = 4):
        """For one text (or a list): [(id, distance, text), ...] best first (a list of such
        lists for a list of queries)."""
        if self.index is None:
            raise ValueError("the index is empty: add texts first")
        single = isinstance(queries, str)
        qs = [queries] if single else list(queries)
        ids, dist = self.index.search(self.embedder.embed(qs), k=k, ef=ef, rerank=rerank)
        hits = [list(zip(map(int, i), map(float, d), self.texts(i))) for i, d in zip(ids, dist)]
        return hits[0] if single else hits

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
        model = getattr(self.embedder, "path", None)
        if model:
            model = os.path.relpath(os.path.abspath(model), os.path.dirname(os.path.abspath(path)))
        TextStore.write(sidecar(path), merged, model)
        self._stored, self._new = TextStore(sidecar(path)), {}


def _resolve(model: str, index_path) -> str:
    p = Path(model)
    return str(p if p.is_absolute() else Path(os.path.abspath(index_path)).parent / p)
