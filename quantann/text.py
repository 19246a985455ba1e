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
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from .constants import TEXT_STORE as T
from .errors import FormatError
from .gguf_file import GGUFFile, atomic_write
from .index import Index

MODEL_KEY = T["model_key"]


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
    def write(path, texts: dict, model: str | None, fields: dict | None = None) -> None:
        """texts: {id: str}; fields: {id: dict} for the ids that have other fields."""
        if not texts:
            raise ValueError("no texts to write")
        ids = np.array(sorted(texts), np.uint64)
        offsets, blob = _pack([texts[int(i)].encode("utf-8") for i in ids])
        fields = {i: f for i, f in (fields or {}).items() if f and i in texts}
        if fields:
            f_offsets, f_blob = _pack([json.dumps(fields[int(i)], ensure_ascii=False).encode("utf-8")
                                       if int(i) in fields else b"" for i in ids])

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
        self._new_fields: dict[int, dict] = {}
        self._build_args = build_args or {}
        self._row_order = None  # argsort of user ids, for rows()

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
        if self.index is None:
            self.index = Index.build(vectors, metric="cosine", ids=ids, progress=progress, **self._build_args)
            new_ids = self.index.ids
        else:
            start = self.index.rows
            self.index.add(vectors, ids=ids, progress=progress)
            new_ids = self.index.ids[start:]
        for i, t in zip(new_ids, texts):
            self._new[int(i)] = t
        for i, f in zip(new_ids, fields or ()):
            if f:
                self._new_fields[int(i)] = dict(f)
        self._row_order = None
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
        """The index rows of ids (for an index built from VECTORS.npy + PASSAGES.jsonl, row i
        is line i of both); -1 for an id not in the index."""
        ids = np.asarray(ids, np.uint64).ravel()
        all_ids = self.index.ids
        if not self.index.has_user_ids:
            return np.where(ids < len(all_ids), ids, -1).astype(np.int64)
        if self._row_order is None:
            self._row_order = np.argsort(all_ids, kind="stable")
        pos = np.minimum(np.searchsorted(all_ids, ids, sorter=self._row_order), len(all_ids) - 1)
        rows = self._row_order[pos].astype(np.int64)
        return np.where(all_ids[rows] == ids, rows, -1)

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
        fields = dict(self._stored.items_fields()) if self._stored is not None else {}
        for i in self._new:
            fields.pop(i, None)  # a re-added id keeps only its new fields
        fields.update(self._new_fields)
        model = getattr(self.embedder, "path", None)
        if model:
            model = os.path.relpath(os.path.abspath(model), os.path.dirname(os.path.abspath(path)))
        TextStore.write(sidecar(path), merged, model, fields)
        self._stored, self._new, self._new_fields = TextStore(sidecar(path)), {}, {}
        self._row_order = None

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
