#!/usr/bin/env python3
"""Writes kernel/constants.h and web/src/constants.js from quantann/constants.json.

    python scripts/gen_constants.py          # rewrite both
    python scripts/gen_constants.py --check  # exit 1 if either is stale (run by the tests)
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "quantann" / "constants.json"
HEAD = "generated from quantann/constants.json by scripts/gen_constants.py: do not edit"


def ident(*parts: str) -> str:
    return "_".join(p.replace(".", "_") for p in parts).upper()


def c_header(c: dict) -> str:
    out = [f"/* {HEAD} */", "#ifndef QA_CONSTANTS_H", "#define QA_CONSTANTS_H", ""]
    f = c["format"]
    out += [f'#define QA_FORMAT_ARCH "{f["arch"]}"', f"#define QA_FORMAT_VERSION {f['version']}",
            f"#define QA_FORMAT_MIN_VERSION {f['min_version']}",
            f"#define QA_FORMAT_ALIGNMENT {f['alignment']}", ""]
    out += [f"#define QA_METRIC_{ident(k)} {v}" for k, v in c["metrics"].items() if k != "cosine"]
    out += [""] + [f"#define QA_CODEC_{ident(k)} {v}" for k, v in c["codecs"].items()]
    out += [f"#define QA_CODEC_COUNT {len(c['codecs'])}", ""]
    out += [f'#define QA_KEY_{ident(k)} "{v}"' for k, v in c["keys"].items()]
    out += ["/* every key of the index header, as an array initialiser */",
            "#define QA_KEY_LIST {" + ", ".join(f"QA_KEY_{ident(k)}" for k in c["keys"]) + "}", ""]
    out += [f'#define QA_TENSOR_{ident(k)} "{v}"' for k, v in c["tensors"].items()] + [""]
    out += [f'#define QA_TEXT_STORE_{ident(k)} "{v}"' for k, v in c["text_store"].items()] + [""]
    out += [f"#define QA_LEXICAL_{ident(k)} {v}" for k, v in c["lexical"].items() if not k.startswith("_")] + [""]
    out += [f"#define QA_{ident(k)} {v}LL" for k, v in c["limits"].items()] + ["", "#endif", ""]
    return "\n".join(out)


def js_module(c: dict) -> str:
    body = {k: v for k, v in c.items() if not k.startswith("_")}
    return f"// {HEAD}\nexport const CONSTANTS = Object.freeze({json.dumps(body, indent=2)});\n"


def main() -> int:
    c = json.loads(SRC.read_text())
    want = {ROOT / "kernel" / "constants.h": c_header(c), ROOT / "web" / "src" / "constants.js": js_module(c)}
    if "--check" in sys.argv:
        stale = [str(p.relative_to(ROOT)) for p, text in want.items() if not p.exists() or p.read_text() != text]
        if stale:
            print("stale (run python scripts/gen_constants.py):", ", ".join(stale))
            return 1
        return 0
    for p, text in want.items():
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
