"""Run every benchmark script in this folder (`make bench`); each writes results/<name>.json."""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
for script in sorted(here.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    if subprocess.run([sys.executable, str(script)]).returncode != 0:
        failed.append(script.name)
subprocess.run([sys.executable, str(here / "summarize.py")], check=True)
sys.exit(f"failed: {', '.join(failed)}" if failed else 0)
