"""Types and lint stay clean: the same checks a reviewer runs."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

PATHS = ["kb_service", "ingest", "api", "cli", "tests", "benchmarks"]


def test_ruff_lint_and_format() -> None:
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", *PATHS], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *PATHS], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
