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


def test_logged_errors_are_one_line() -> None:
    """A logged exception goes through `first_line` (kb_service/errors.py): a database driver's message goes on with
    the SQL statement, its parameters (a client's address among them) and a help link over several lines, which broke
    one-entry-per-line log shipping during an outage (two operators' trials)."""
    import ast

    bare = []
    for package in ("kb_service", "ingest", "api", "cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"debug", "info", "warning", "error", "critical"}
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "log"
                ):
                    continue
                if any(isinstance(a, ast.Name) and a.id in {"exc", "again", "err"} for a in node.args):
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []
