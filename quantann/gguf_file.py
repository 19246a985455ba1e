"""GGUF files on disk: a memory-mapped view parsed by the kernel's one GGUF reader
(kernel/gguf/gguf.c), and the atomic write every file of quantann goes through.

Writing: the file is written to a temporary beside the target, fsynced and renamed over
it, so a crash leaves the old file or the new one. The temporary's name carries the
writer's process and thread (`.NAME.tmp-PID-TID`), so two threads or processes saving one
path never share it, and a later open or save removes the temporaries of writers that
died (their process no longer exists).
"""
from __future__ import annotations

import glob
import mmap
import os
import threading

import numpy as np

from . import _kernel
from .errors import FormatError

# ggml tensor type id -> numpy dtype, for the plain types quantann's files use
_DTYPES = {0: np.float32, 1: np.float16, 24: np.int8, 25: np.int16, 26: np.int32, 27: np.int64, 28: np.float64}


def map_file(path) -> tuple[mmap.mmap, int]:
    """A read-only memory map of the whole file and its length."""
    path = os.fspath(path)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 24:
            raise FormatError(f"{path}: not a GGUF file: too short ({size} bytes, the header alone is 24)")
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), size


class GGUFFile:
    """A memory-mapped GGUF file: `metadata` (scalars and strings), `tensors` (name ->
    (type id, numpy shape, absolute offset, bytes)), `array(name)` a zero-copy view."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._mm, self.size = map_file(self.path)
        try:
            self.metadata, self.tensors = _kernel.gguf_header(self._mm, self.size)
        except ValueError as e:
            raise FormatError(f"{self.path}: {e}") from None

    def get(self, key, default=None):
        return self.metadata.get(key, default)

    def array(self, name: str, dtype=None) -> np.ndarray:
        if name not in self.tensors:
            raise FormatError(f"{self.path}: missing tensor {name}")
        type_id, shape, offset, nbytes = self.tensors[name]
        if type_id not in _DTYPES:
            raise FormatError(f"{self.path}: tensor {name} has type {type_id}, not a plain array")
        a = np.frombuffer(self._mm, np.uint8, nbytes, offset).view(_DTYPES[type_id]).reshape(shape)
        return a.view(dtype) if dtype is not None else a


# ---- writing --------------------------------------------------------------------------

def _temp_prefix(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.tmp-")


def pid_alive(pid: int) -> bool:
    """Whether a process of this pid exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_temps(path) -> list[str]:
    """Removes the temporaries a killed save of `path` left behind: only those whose
    writer process is gone. Returns what was removed."""
    prefix = _temp_prefix(os.fspath(path))
    removed = []
    for tmp in glob.glob(glob.escape(prefix) + "*"):
        pid = tmp[len(prefix):].split("-")[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            os.unlink(tmp)
            removed.append(tmp)
        except FileNotFoundError:
            pass  # another cleaner was first
    return removed


def atomic_write(path, write_fn):
    """Writes a file by `write_fn(tmp_path)`, fsyncs it and renames it over `path`, so a
    crash leaves the old file or the new one, never a torn one."""
    path = os.fspath(path)
    remove_stale_temps(path)
    d = os.path.dirname(os.path.abspath(path))
    tmp = f"{_temp_prefix(path)}{os.getpid()}-{threading.get_ident()}"
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
