"""The manifest of a sharded index: one small JSON file naming the shard files.

    {"format": "quantann-shards", "version": 1,
     "dim": 384, "metric": "cosine", "quant": "sq8", "count": 100000, "next_id": 100000,
     "shards": [{"file": "passages.shard0.qann", "count": 25000, "ids": "rows", "id_offset": 0,
                 "size": 51380768, "vectors_crc32": 1234567}, ...]}

A shard's global ids are its own ids (row numbers, or the ids stored in it) plus
`id_offset`. `size` and `vectors_crc32` tie the manifest to the exact files it was written
with (the .qann header's own checksum covers the rest of each file). Shard files are named
relative to the manifest, so the folder (or URL prefix) can move as a whole.
"""
from __future__ import annotations

import json
import os
import posixpath
import urllib.request
from dataclasses import asdict, dataclass, field

from ..constants import CODECS, MANIFEST, METRICS
from ..errors import FormatError

FORMAT, VERSION = MANIFEST["format"], MANIFEST["version"]
ID_KINDS = ("rows", "stored")


@dataclass
class ShardEntry:
    file: str  # relative to the manifest
    count: int  # rows in the shard file
    ids: str  # "rows": ids are the row numbers; "stored": the file holds its ids
    id_offset: int  # added to the shard's ids to make the global ids
    size: int  # bytes of the shard file
    vectors_crc32: int  # quantann.vectors.crc32 of the shard file


@dataclass
class Manifest:
    dim: int
    metric: str
    quant: str
    count: int
    next_id: int  # the id the next added vector gets (when ids are not given)
    shards: list[ShardEntry] = field(default_factory=list)

    def to_json(self) -> str:
        body = {"format": FORMAT, "version": VERSION, **asdict(self)}
        return json.dumps(body, indent=1) + "\n"


def is_url(path) -> bool:
    return isinstance(path, str) and path.startswith(("http://", "https://"))


def shard_location(manifest_path, file: str) -> str:
    """The path (or URL) of a shard file named in the manifest at `manifest_path`."""
    if is_url(manifest_path):
        base, _, _ = manifest_path.rpartition("/")
        return f"{base}/{file}"
    return os.path.join(os.path.dirname(os.path.abspath(manifest_path)), file)


def looks_like_manifest(path) -> bool:
    """True for a .json URL, or a local file that starts with '{' (a .qann starts with GGUF)."""
    if is_url(path):
        return path.split("?")[0].endswith(".json")
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip()[:1] == b"{"
    except (OSError, TypeError):
        return False


def read_manifest(path) -> Manifest:
    """The checked manifest at `path` (file or URL); FormatError naming it otherwise."""
    try:
        if is_url(path):
            with urllib.request.urlopen(path, timeout=30) as r:
                raw = r.read(1 << 24)
        else:
            with open(path, "rb") as f:
                raw = f.read(1 << 24)  # a manifest of a million shards is still smaller
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not a JSON manifest of a sharded index: {e}") from None
    return parse_manifest(body, str(path))


def parse_manifest(body, where: str) -> Manifest:
    def bad(msg):
        return FormatError(f"{where}: {msg}")

    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise bad(f'not a sharded index manifest (expected "format": "{FORMAT}")')
    version = body.get("version")
    if not _is_int(version) or version < 1:
        raise bad("the manifest has no valid version")
    if version > VERSION:
        raise bad(f"manifest version {version} is newer than this quantann reads ({VERSION}): upgrade quantann")

    def get(obj, key, kind, ctx=""):
        v = obj.get(key)
        ok = _is_int(v) and v >= 0 if kind is int else isinstance(v, kind)
        if not ok:
            raise bad(f"{ctx}{key!r} is missing or not a{'n' if kind is int else ''} {kind.__name__}")
        return v

    m = Manifest(get(body, "dim", int), get(body, "metric", str), get(body, "quant", str),
                 get(body, "count", int), get(body, "next_id", int))
    if m.metric not in METRICS:
        raise bad(f"unknown metric {m.metric!r}")
    if m.quant not in CODECS:
        raise bad(f"unknown quantizer {m.quant!r}")
    shards = body.get("shards")
    if not isinstance(shards, list) or not shards:
        raise bad("'shards' must be a non-empty list")
    for i, s in enumerate(shards):
        ctx = f"shard {i}: "
        if not isinstance(s, dict):
            raise bad(f"{ctx}not an object")
        e = ShardEntry(get(s, "file", str, ctx), get(s, "count", int, ctx), get(s, "ids", str, ctx),
                       get(s, "id_offset", int, ctx), get(s, "size", int, ctx), get(s, "vectors_crc32", int, ctx))
        f = e.file.replace("\\", "/")
        if not f or posixpath.isabs(f) or ".." in f.split("/"):
            raise bad(f"{ctx}file {e.file!r} must be a path inside the manifest's folder")
        if e.ids not in ID_KINDS:
            raise bad(f"{ctx}ids must be one of {', '.join(ID_KINDS)}, got {e.ids!r}")
        m.shards.append(e)
    if sum(s.count for s in m.shards) != m.count:
        raise bad(f"the shards hold {sum(s.count for s in m.shards)} rows, the manifest says {m.count}")
    if len({s.file for s in m.shards}) != len(m.shards):
        raise bad("two shards name the same file")
    return m


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
