"""quantann's shared constants, read from constants.json (the one definition; C and JS
get generated copies: scripts/gen_constants.py)."""
import json
from pathlib import Path

_C = json.loads((Path(__file__).with_name("constants.json")).read_text())

ARCH: str = _C["format"]["arch"]
FORMAT_VERSION: int = _C["format"]["version"]
FORMAT_MIN_VERSION: int = _C["format"]["min_version"]  # oldest format this version reads
ALIGNMENT: int = _C["format"]["alignment"]
METRICS: dict = dict(_C["metrics"])
CODECS: dict = dict(_C["codecs"])
KEYS: dict = dict(_C["keys"])
TENSORS: dict = dict(_C["tensors"])
LIMITS: dict = dict(_C["limits"])
SIZE_UNITS: dict = dict(_C["size_units"])
MANIFEST: dict = dict(_C["manifest"])  # the sharded index's manifest (quantann/shard/manifest.py)
TEXT_STORE: dict = dict(_C["text_store"])  # the payload store beside a text index (quantann/text.py)
ASK: dict = dict(_C["ask"])                # retrieval-augmented answers (quantann/ask.py)
LEXICAL: dict = {k: v for k, v in _C["lexical"].items() if not k.startswith("_")}  # BM25 and fusion (quantann/text.py)
