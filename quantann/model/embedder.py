"""Text -> embedding with a GGUF BERT encoder run by the C kernel (quantann._model).

    emb = Embedder.open("minilm-q8_0.gguf")
    vectors = emb.embed(["first passage", "second passage"])   # (2, 384) float32, unit norm

The file is memory-mapped and its weights are used in place (nothing is copied or
dequantized ahead of time); the tokenizer reads the vocabulary stored in the file.
Importing this module is cheap: it needs numpy and the kernel, never torch.
"""
from __future__ import annotations

import mmap
import os
from typing import Iterable, Sequence

import numpy as np

from ..errors import FormatError


def _default_threads() -> int:
    n = os.cpu_count() or 1
    return max(1, min(n, 8))


class Embedder:
    """A BERT-family sentence encoder (llama.cpp `bert` GGUF: F32, F16, Q8_0 or Q4_0).

    Texts are tokenized with BERT WordPiece from the file's vocabulary, truncated to
    `max_tokens` (default: the model's own max_seq_length when the file records it, 256 for
    all-MiniLM-L6-v2, else its context; [CLS] and [SEP] included),
    run through the encoder in batches of about `batch_tokens` tokens (sequences are packed,
    not padded), mean-pooled and L2-normalised as the file's metadata says.
    """

    def __init__(self, path: str | os.PathLike, n_threads: int | None = None,
                 max_tokens: int | None = None):
        from .. import _model  # the C kernel

        self.path = os.fspath(path)
        self._file = open(self.path, "rb")
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size == 0:
                raise FormatError(f"{self.path}: empty file, not a GGUF model")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                self._m = _model.Model(self._map, n_threads or _default_threads())
            except _model.GGUFError as e:
                raise FormatError(f"{self.path}: {e}") from None
        except BaseException:
            self.close()
            raise
        self.info = self._m.info()
        self.dim = int(self.info["n_embd"])
        self.context = int(self.info["n_ctx"])
        # the model's own truncation (sentence-transformers' max_seq_length, stored at
        # conversion) unless the caller asks for another, at most the context
        default = int(self.info.get("max_tokens", self.context))
        self.max_tokens = default if not max_tokens else max(2, min(int(max_tokens), self.context))
        self.weight_type = self.info["weight_type"]
        self.n_threads = int(self.info["n_threads"])

    @classmethod
    def open(cls, path: str | os.PathLike, n_threads: int | None = None,
             max_tokens: int | None = None) -> "Embedder":
        """Opens a GGUF model file (memory-mapped). Raises quantann.FormatError if it is bad."""
        return cls(path, n_threads=n_threads, max_tokens=max_tokens)

    def tokenize(self, text: str, max_tokens: int | None = None) -> list[int]:
        """Token ids of one text: [CLS] WordPiece pieces [SEP], truncated to max_tokens."""
        return self._m.tokenize(text, max_tokens or self.max_tokens)

    def embed(self, texts: Sequence[str] | str, batch_tokens: int = 1024) -> np.ndarray:
        """(n, dim) float32 embeddings, rows in input order. A single str gives (1, dim)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        elif not isinstance(texts, (list, tuple)):
            texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._checked(self._m.embed, texts, self.max_tokens, int(batch_tokens))

    def embed_iter(self, texts: Iterable[str], chunk: int = 256, batch_tokens: int = 1024):
        """Yields (start_row, embeddings) for consecutive chunks of texts."""
        buf, start = [], 0
        for t in texts:
            buf.append(t)
            if len(buf) == chunk:
                yield start, self.embed(buf, batch_tokens)
                start += len(buf)
                buf = []
        if buf:
            yield start, self.embed(buf, batch_tokens)

    def hidden_states(self, texts: Sequence[str]):
        """(embeddings (n, dim), hidden states (n_layer + 1, T, dim), lengths (n,)).

        Hidden states after the embedding layer norm and after each layer, for all T tokens
        of the batch packed in input order (sequence i has lengths[i] tokens)."""
        ids = [self.tokenize(t) for t in texts]
        lengths = np.array([len(x) for x in ids], dtype=np.int32)
        flat = np.concatenate([np.asarray(x, dtype=np.int32) for x in ids]) if ids else np.zeros(0, np.int32)
        emb, hidden = self._checked(self._m.forward, flat, lengths, hidden=True)
        return emb, hidden, lengths

    def _checked(self, fn, *args, **kw):
        """Runs a kernel call; a corrupt model found while computing (a non-finite output)
        is a FormatError naming the file, as at open."""
        from .. import _model

        try:
            return fn(*args, **kw)
        except _model.GGUFError as e:
            raise FormatError(f"{self.path}: {e}") from None

    def close(self) -> None:
        self._m = None
        m, self._map = getattr(self, "_map", None), None
        if m is not None:
            try:
                m.close()
            except BufferError:  # still exported by a live kernel object; freed with it
                pass
        f = getattr(self, "_file", None)
        if f is not None:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"Embedder({self.path!r}, {self.weight_type}, dim={self.dim}, "
                f"max_tokens={self.max_tokens}, threads={self.n_threads})")
