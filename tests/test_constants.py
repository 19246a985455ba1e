"""The generated C and JS copies of quantann/constants.json are current."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_constants_are_current():
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_constants.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
