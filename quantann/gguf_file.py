"""GGUF files: written with the `gguf` package, read by a strict parser.

The reader trusts nothing it has not checked against the file's length: every count,
string length, tensor shape, type and offset is validated before use, and a bad file
raises FormatError naming the problem. Tensor data is returned as zero-copy views of a
read-only memory map, so opening a file reads only its header.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

import numpy as np

from .errors import FormatError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
# GGUF value types -> struct format (scalars)
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
# GGML tensor types -> (numpy dtype or None, block elements, block bytes)
TENSOR_TYPES = {
    0: ("F32", np.float32, 1, 4), 1: ("F16", np.float16, 1, 2), 2: ("Q4_0", None, 32, 18),
    8: ("Q8_0", None, 32, 34), 24: ("I8", np.int8, 1, 1), 25: ("I16", np.int16, 1, 2),
    26: ("I32", np.int32, 1, 4), 27: ("I64", np.int64, 1, 8), 28: ("F64", np.float64, 1, 8),
    30: ("BF16", None, 1, 2),
}
MAX_DIMS = 4


@dataclass
class TensorInfo:
    name: str
    type_id: int
    shape: tuple  # numpy order (slowest first); GGUF stores it fastest first
    offset: int  # absolute byte offset in the file
    nbytes: int

    @property
    def type_name(self) -> str:
        return TENSOR_TYPES[self.type_id][0]


class _Cursor:
    def __init__(self, buf, path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise FormatError(f"{self.path}: truncated or corrupt: {what} at byte {self.pos} "
                              f"needs {n} bytes, file has {len(self.buf)}")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def scalar(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.scalar("<Q", what)
        raw = self.take(n, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{self.path}: {what} at byte {self.pos - n} is not UTF-8") from None

    def value(self, vtype: int, what: str, depth: int = 0):
        if vtype in _SCALAR:
            return self.scalar(_SCALAR[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY and depth == 0:
            etype = self.scalar("<I", what)
            count = self.scalar("<Q", what)
            if count > len(self.buf) - self.pos:  # every element takes at least one byte
                raise FormatError(f"{self.path}: {what}: array of {count} items cannot fit in the file")
            if etype in _SCALAR and etype != 7:
                fmt = _SCALAR[etype]
                size = struct.calcsize(fmt)
                raw = self.take(count * size, what)
                return np.frombuffer(raw, dtype=np.dtype(fmt)).copy()
            return [self.value(etype, what, depth + 1) for _ in range(count)]
        raise FormatError(f"{self.path}: {what}: unknown value type {vtype}")


class GGUFFile:
    """A parsed, validated GGUF file. `metadata` holds the key/values, `tensors` the
    tensor infos; `array(name)` maps a tensor's data."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self._fh = open(self.path, "rb")
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: no such file") from None
        self.size = os.fstat(self._fh.fileno()).st_size
        if self.size < 24:
            self._fh.close()
            raise FormatError(f"{self.path}: too short to be a GGUF file ({self.size} bytes)")
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._parse(memoryview(self._mm))
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_bytes(cls, buf: bytes, size: int | None = None, path: str = "<bytes>") -> "GGUFFile":
        """Parses a file held in memory, or a prefix of it: `buf` holds the first bytes of a
        file of `size` bytes (default len(buf)). Tensors are checked against `size`; only
        those inside `buf` can be read (e.g. a header and the tensors before `vectors`
        fetched over HTTP)."""
        self = cls.__new__(cls)
        self.path, self._fh, self._mm = str(path), None, buf
        self.size = len(buf) if size is None else int(size)
        if self.size < 24:
            raise FormatError(f"{self.path}: too short to be a GGUF file ({self.size} bytes)")
        self._parse(memoryview(buf))
        return self

    def _parse(self, buf):
        c = _Cursor(buf, self.path)
        magic = bytes(c.take(4, "magic"))
        if magic != MAGIC:
            raise FormatError(f"{self.path}: not a GGUF file (magic {magic!r}, expected {MAGIC!r})")
        self.version = c.scalar("<I", "version")
        if self.version not in SUPPORTED_VERSIONS:
            raise FormatError(f"{self.path}: GGUF version {self.version} is not supported "
                              f"(this reader knows {SUPPORTED_VERSIONS})")
        n_tensors = c.scalar("<Q", "tensor count")
        n_kv = c.scalar("<Q", "metadata count")
        if n_tensors > self.size // 24 or n_kv > self.size // 12:
            raise FormatError(f"{self.path}: corrupt header: {n_tensors} tensors, {n_kv} keys "
                              f"cannot fit in {self.size} bytes")
        self.metadata = {}
        for i in range(n_kv):
            key = c.string(f"metadata key #{i}")
            vtype = c.scalar("<I", f"type of {key}")
            self.metadata[key] = c.value(vtype, f"value of {key}")
        infos = []
        for i in range(n_tensors):
            name = c.string(f"tensor name #{i}")
            nd = c.scalar("<I", f"dims of {name}")
            if not 1 <= nd <= MAX_DIMS:
                raise FormatError(f"{self.path}: tensor {name}: {nd} dimensions")
            dims = [c.scalar("<Q", f"shape of {name}") for _ in range(nd)]
            tid = c.scalar("<I", f"type of {name}")
            off = c.scalar("<Q", f"offset of {name}")
            infos.append((name, dims, tid, off))
        align = self.metadata.get("general.alignment", 32)
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            raise FormatError(f"{self.path}: bad general.alignment {align!r}")
        self.data_offset = (c.pos + align - 1) // align * align
        self.tensors = {}
        spans = []
        for name, dims, tid, off in infos:
            if tid not in TENSOR_TYPES:
                raise FormatError(f"{self.path}: tensor {name}: unsupported type id {tid}")
            tname, _, blk, bsize = TENSOR_TYPES[tid]
            count = 1
            for dim in dims:
                if dim > self.size * 8:
                    raise FormatError(f"{self.path}: tensor {name}: dimension {dim} is impossible")
                count *= dim
            if dims[0] % blk:
                raise FormatError(f"{self.path}: tensor {name}: row of {dims[0]} is not a multiple of {tname}'s block {blk}")
            nbytes = count // blk * bsize
            start = self.data_offset + off
            if off % align:
                raise FormatError(f"{self.path}: tensor {name}: offset {off} not aligned to {align}")
            if start + nbytes > self.size:
                raise FormatError(f"{self.path}: truncated: tensor {name} needs bytes {start}..{start + nbytes}, "
                                  f"file has {self.size}")
            if name in self.tensors:
                raise FormatError(f"{self.path}: tensor {name} appears twice")
            self.tensors[name] = TensorInfo(name, tid, tuple(reversed(dims)), start, nbytes)
            spans.append((start, start + nbytes, name))
        spans.sort()
        for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
            if b0 < a1:
                raise FormatError(f"{self.path}: tensors {an} and {bn} overlap")

    def get(self, key, default=None):
        return self.metadata.get(key, default)

    def require(self, key, types=None):
        if key not in self.metadata:
            raise FormatError(f"{self.path}: missing metadata key {key}")
        v = self.metadata[key]
        if types is not None and not isinstance(v, types):
            raise FormatError(f"{self.path}: metadata {key} has the wrong type ({type(v).__name__})")
        return v

    def _held(self, name: str) -> TensorInfo:
        t = self.tensor(name)
        if t.offset + t.nbytes > len(self._mm):
            raise FormatError(f"{self.path}: tensor {name} lies past the {len(self._mm)} bytes read")
        return t

    def raw(self, name: str) -> memoryview:
        t = self._held(name)
        return memoryview(self._mm)[t.offset:t.offset + t.nbytes]

    def tensor(self, name: str) -> TensorInfo:
        if name not in self.tensors:
            raise FormatError(f"{self.path}: missing tensor {name}")
        return self.tensors[name]

    def array(self, name: str, dtype=None) -> np.ndarray:
        """Zero-copy read-only view of a tensor (plain types; `dtype` reinterprets)."""
        t = self._held(name)
        npdt = TENSOR_TYPES[t.type_id][1]
        if npdt is None and dtype is None:
            raise FormatError(f"{self.path}: tensor {name} is {t.type_name}; give a dtype to view it raw")
        a = np.frombuffer(self._mm, dtype=npdt or np.uint8, count=t.nbytes // np.dtype(npdt or np.uint8).itemsize,
                          offset=t.offset)
        if npdt is not None:
            a = a.reshape(t.shape)
        return a.view(dtype) if dtype is not None else a

    def close(self):
        mm, self._mm = getattr(self, "_mm", None), None
        if mm is not None and hasattr(mm, "close"):
            try:
                mm.close()
            except BufferError:
                pass  # views still alive; the map is released with them
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()


def atomic_write(path, write_fn):
    """Writes a file by `write_fn(tmp_path)`, fsyncs it and renames it over `path`, so a
    crash leaves the old file or the new one, never a torn one."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        write_fn(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
