"""Every benchmark script still imports and parses its arguments (`--help`): the figures in docs/benchmarks.md must
stay reproducible with the commands printed there, and a helper moved between modules once broke one silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))

# One process imports every script as `__main__` would and asks each for --help (argparse exits with 0).
CHECK = """
import runpy, sys
sys.path.insert(0, "benchmarks")
failed = []
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            failed.append(f"{path}: exit {exc.code}")
        continue
    failed.append(f"{path}: no --help")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_benchmark_script_imports_and_answers_help() -> None:
    assert len(SCRIPTS) >= 10
    done = subprocess.run(
        [sys.executable, "-c", CHECK, *map(str, SCRIPTS)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
