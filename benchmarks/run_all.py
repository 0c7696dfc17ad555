"""Run every benchmark script in this folder (`make bench`); each writes results/<name>.json.

`python benchmarks/run_all.py --quick` smoke-tests them all (nothing is saved or summarized).
"""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
for script in sorted(here.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    if subprocess.run([sys.executable, str(script), *sys.argv[1:]]).returncode != 0:
        failed.append(script.name)
if "--quick" not in sys.argv:
    subprocess.run([sys.executable, str(here / "summarize.py")], check=True)
sys.exit(f"failed: {', '.join(failed)}" if failed else 0)
