"""The shape of the code: dependencies run one way (cli → api → ingest → kb_service), modules stay small, long
functions say why, and no `assert` steers production code (it vanishes under `python -O`).

The allow-lists below name today's exceptions. They must only shrink: an entry that no longer offends fails the test
until it is removed, so a fix cannot silently leave room for a new offender."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT

# Lowest first: a module may import its own package and the ones before it, never one after it.
LAYERS = ("kb_service", "ingest", "api", "cli")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
LONG_REASON = "# long:"  # a function may be longer when a comment in its first lines starts with this and says why

# Modules over MAX_MODULE_LINES (dotted name -> why it is tolerated for now).
OVERSIZED_MODULES: dict[str, str] = {}

# Functions over MAX_FUNCTION_LINES without a `# long:` reason (qualified name -> line count when listed).
LONG_FUNCTIONS: dict[str, int] = {}  # none left

# Production modules that still use `assert` (dotted name -> count).
ASSERTS: dict[str, int] = {}  # none left: raise a clear error instead


def _modules() -> Iterator[tuple[str, Path]]:
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # function-level imports count too
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:  # relative: from the importing module's package
            base = package[: len(package) - node.level + 1]
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module


def _functions(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}.{child.name}", child
            yield from _functions(child, f"{prefix}.{child.name}")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}.{child.name}")


def test_dependencies_run_one_way() -> None:
    wrong = []
    for module, path in _modules():
        layer = LAYERS.index(module.split(".")[0])
        for line, target in _imports(module, path):
            top = target.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > layer:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_modules_stay_small() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in _modules()}
    over = {m for m, n in sizes.items() if n > MAX_MODULE_LINES}
    assert over <= set(OVERSIZED_MODULES), {m: sizes[m] for m in over - set(OVERSIZED_MODULES)}
    fixed = set(OVERSIZED_MODULES) - over
    assert not fixed, f"no longer oversized, remove from OVERSIZED_MODULES: {fixed}"


def test_long_functions_give_a_reason() -> None:
    found: dict[str, int] = {}
    for module, path in _modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for name, fn in _functions(ast.parse("\n".join(lines)), module):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            head = lines[fn.lineno - 1 : fn.lineno + 4]
            if length > MAX_FUNCTION_LINES and not any(LONG_REASON in line for line in head):
                found[name] = length
    new = {n: length for n, length in found.items() if n not in LONG_FUNCTIONS}
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines: split them or say why with `{LONG_REASON}`: {new}"
    fixed = set(LONG_FUNCTIONS) - set(found)
    assert not fixed, f"short enough now, remove from LONG_FUNCTIONS: {fixed}"
    grown = {n: (LONG_FUNCTIONS[n], found[n]) for n in found if found[n] > LONG_FUNCTIONS[n]}
    assert not grown, f"allow-listed functions grew (listed, now): {grown}"


def test_no_assert_steers_production_code() -> None:
    counts = Counter(
        module
        for module, path in _modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    )
    new = {m: n for m, n in counts.items() if n > ASSERTS.get(m, 0)}
    assert not new, f"`assert` in production code (raise a clear error instead): {new}"
    fewer = {m: (n, counts.get(m, 0)) for m, n in ASSERTS.items() if counts.get(m, 0) < n}
    assert not fewer, f"fewer asserts than listed, lower ASSERTS (listed, now): {fewer}"


def test_a_process_that_only_serves_searches_never_loads_the_pinyin_dictionary() -> None:
    """pypinyin's phrase dictionary holds ~53 MB per process; only indexing, hit tests and drill suggestions read
    pinyin, so importing the service (every route, the search, the chat) must not load it."""
    import subprocess
    import sys

    code = (
        "import sys, api.app, kb_service.search.answers, kb_service.training.suggest; print('pypinyin' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
