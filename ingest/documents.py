"""Reading a SOP folder: every file parsed and checked, duplicate ids caught, one bad file never stops the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ingest.parser import ParseResult, parse_file
from kb_service.models import Issue, Sop
from kb_service.text import glossary as glossary_mod

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    sops: dict[str, Sop] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    failed_paths: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


def sop_files(paths: list[Path]) -> tuple[list[Path], list[Issue]]:
    """Markdown files under the given files or folders, in a stable order."""
    files: list[Path] = []
    issues: list[Issue] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.md") if f.is_file() and not f.name.lower().startswith("readme"))
        elif p.is_file():
            files.append(p)
        else:
            issues.append(Issue(path=str(p), line=1, severity="error", message="文件或文件夹不存在"))
    return files, issues


def _duplicate(doc_id: str, path: str, first: str) -> Issue:
    msg = f"id “{doc_id}” 与 {first} 重复：每个 SOP 的 id 必须唯一"
    return Issue(path=path, line=2, severity="error", message=msg)


def load_corpus(paths: list[Path], *, today: date | None = None, root: Path | None = None) -> Corpus:
    """Parse every SOP file; duplicate ids fail the later file. Corpus glossaries are checked too."""
    files, issues = sop_files(paths)
    corpus = Corpus(issues=issues)
    first_seen: dict[str, str] = {}
    broken: list[tuple[str, str]] = []  # (id, path) of files with errors that declare an id
    for f in files:
        shown = str(f.relative_to(root)) if root and f.is_relative_to(root) else str(f)
        try:
            result = parse_file(f, today=today, display_path=shown)
        except Exception as exc:  # a parser bug on one file must not stop the folder: report it as that file's error
            log.exception("parsing %s failed", shown)
            msg = f"无法解析此文件（{type(exc).__name__}），已跳过；请联系管理员 / the parser failed on this file"
            result = ParseResult(None, [Issue(path=shown, line=1, severity="error", message=msg)])
        corpus.issues += result.issues
        sop = result.sop
        if sop is None:
            corpus.failed_paths.append(shown)
            if result.declared_id:
                broken.append((result.declared_id, shown))
            continue
        if sop.meta.id in first_seen:
            corpus.issues.append(_duplicate(sop.meta.id, shown, first_seen[sop.meta.id]))
            corpus.failed_paths.append(shown)
            continue
        first_seen[sop.meta.id] = shown
        corpus.sops[sop.meta.id] = sop
    # A file with errors that repeats an id is told so now, not once its other errors are fixed (a new customer's
    # trial: lint had to be run twice); it takes no id from a file that parses
    for doc_id, shown in broken:
        if doc_id in first_seen:
            corpus.issues.append(_duplicate(doc_id, shown, first_seen[doc_id]))
        else:
            first_seen[doc_id] = shown
    for p in paths:
        gfile = p / glossary_mod.CORPUS_GLOSSARY if p.is_dir() else None
        if gfile is not None and gfile.is_file():
            corpus.issues += glossary_mod.load_file(gfile)[1]
    return corpus
