"""The whole check of a SOP folder: what `kb lint` prints and the trainer workspace lists (GET /v1/lint)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ingest.checks import duplicate_issues, emergency_issues, reference_issues, title_issues
from ingest.documents import Corpus, load_corpus
from kb_service.models import Issue, Sop


@dataclass(frozen=True)
class FolderCheck:
    corpus: Corpus
    issues: list[Issue]  # sorted by file and line
    compared: int = 0  # SOPs of the knowledge base folder the files were compared with (`beside`)

    @property
    def documents(self) -> int:
        return len(self.corpus.sops) + len(self.corpus.failed_paths)

    @property
    def errors(self) -> int:
        return sum(i.severity == "error" for i in self.issues)

    @property
    def warnings(self) -> int:
        return sum(i.severity == "warning" for i in self.issues)


def check_folder(
    paths: list[Path], urgent_categories: Collection[str], root: Path | None = None, beside: Path | None = None
) -> FolderCheck:
    """Every problem of the SOP files under `paths`: the parser's, a title that differs from its heading, a title,
    content or example question another SOP has too, and an emergency procedure no tenant-visible safety text backs
    up. `root`: paths are shown relative to it. `beside`: the knowledge base folder the files join (a trainer's
    `kb lint new.md`): its other SOPs count for repeats, the ids a file names and the emergency check, and are not
    themselves checked."""
    corpus = load_corpus(paths, root=root)
    issues = list(corpus.issues)
    sources: dict[str, str | None] = {}
    changed: dict[str, float] = {}
    for sop in corpus.sops.values():
        source = (root / sop.path) if root is not None and not Path(sop.path).is_absolute() else Path(sop.path)
        sources[sop.path] = _read(source)
        changed[sop.path] = _mtime(source)
        issues += title_issues(sop, sources[sop.path])
    others = _others(beside, corpus) if beside is not None else []
    # the file changed last is told what it repeats (a trial's copy sorted before its original, which was blamed)
    issues += duplicate_issues(sorted(corpus.sops.values(), key=lambda s: changed[s.path]), sources, known=others)
    known_ids = set(corpus.sops) | {o.meta.id for o in others}
    issues += reference_issues(corpus.sops.values(), known_ids, sources)
    mine = {s.path for s in corpus.sops.values()}
    issues += [i for i in emergency_issues([*others, *corpus.sops.values()], urgent_categories) if i.path in mine]
    return FolderCheck(corpus, sorted(issues, key=lambda i: (i.path, i.line)), len(others))


def _others(folder: Path, checked: Corpus) -> list[Sop]:
    """The folder's SOPs other than the checked ones (by id: a file being edited outside it replaces its own)."""
    if not folder.is_dir():
        return []
    return [s for s in load_corpus([folder]).sops.values() if s.meta.id not in checked.sops]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
