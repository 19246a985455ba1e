"""Records ggml's answers for tests/test_types_ggml.py into tests/data/ggml_oracle.json:
runs that test with llama-cpp-python's libggml-cpu live (build llama-cpp-python as issue 10
says) and keeps what ggml returned, so that the test holds the K-quant rows to ggml where
llama-cpp-python is not installed (CI).

    python tests/data/make_ggml_oracle.py
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "ggml_oracle.json")

if __name__ == "__main__":
    if os.path.exists(OUT):
        os.unlink(OUT)  # only what the test asks now
    env = dict(os.environ, QUANTANN_RECORD_GGML="1")
    rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          os.path.join(ROOT, "tests", "test_types_ggml.py")], cwd=ROOT, env=env)
    if rc == 0:
        print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    sys.exit(rc)
