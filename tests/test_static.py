"""The browser scripts: Biome lint and format, native ES modules of bounded size, the widget as one classic script,
and the labels the pages show kept in step with the Python side."""

from __future__ import annotations

import re
import shutil
import subprocess
import typing

import pytest

from ingest.headings import SECTION_SYNONYMS
from kb_service.models import Chunk
from kb_service.store.base import Channel
from tests.helpers import ROOT

STATIC = ROOT / "api" / "static"
MAX_LINES = 600


def test_biome_lint_and_format() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: Biome (the JS linter) cannot run here; CI has node")
    biome = ROOT / "node_modules" / ".bin" / "biome"
    assert biome.exists(), "Biome is not installed: run `npm ci` (make install does it)"
    result = subprocess.run([str(biome), "check", "api/static"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def test_pages_load_native_modules_of_bounded_size() -> None:
    for page in ("console", "trainer"):
        html = (STATIC / f"{page}.html").read_text(encoding="utf-8")
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts == [f'<script type="module" src="/static/{page}/main.js">'], scripts
    modules = sorted(p for p in STATIC.rglob("*.js") if p.name != "widget.js")
    assert len(modules) >= 10
    sizes = {str(p.relative_to(STATIC)): len(p.read_text(encoding="utf-8").splitlines()) for p in modules}
    assert all(n <= MAX_LINES for n in sizes.values()), sizes
    for p in modules:  # every relative import names a module that exists
        for target in re.findall(r"from '(\.{1,2}/[^']+)'", p.read_text(encoding="utf-8")):
            assert (p.parent / target).resolve().is_file(), (p, target)


def test_the_widget_stays_one_classic_script() -> None:
    text = (STATIC / "widget.js").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(import|export)\b", text, re.MULTILINE)
    assert len(text.splitlines()) <= MAX_LINES


def _js_object(name: str) -> dict[str, str]:
    text = (STATIC / "lib" / "labels.js").read_text(encoding="utf-8")
    body = re.search(rf"export const {name} = \{{(.*?)\}};", text, re.DOTALL)
    assert body, name
    return dict(re.findall(r"(\w+): '([^']*)'", body.group(1)))


def test_labels_are_defined_once_and_match_python() -> None:
    kinds = _js_object("KIND_LABELS")
    python_kinds = {
        k for arg in typing.get_args(Chunk.model_fields["section_kind"].annotation) for k in typing.get_args(arg)
    }
    assert set(kinds) == python_kinds
    for kind, names in SECTION_SYNONYMS.items():  # a heading kind is labelled with its standard heading
        assert kinds[kind] == names[0], kind
    assert set(_js_object("CHANNEL_LABELS")) == set(typing.get_args(Channel))
    for page in STATIC.rglob("*.js"):  # no second copy of the labels in another script
        if page.name != "labels.js":
            assert "KIND_LABELS = {" not in page.read_text(encoding="utf-8"), page
