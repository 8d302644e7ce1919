"""The domain glossary: synonym groups shipped with the package plus a per-corpus file trainers extend.

Format (YAML), for both the built-in `kb_service/data/glossary.yaml` and `<sops>/glossary.yaml`:

    version: 1
    groups:            # each entry: words used for the same thing; the first is the canonical term
      - [漏水, 渗水, 滴水, 水渍]
    terms:             # domain words worth keeping whole when segmenting (jieba dictionary)
      - 智能门锁
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from kb_service.models import Issue
from kb_service.text.normalize import normalize

CORPUS_GLOSSARY = "glossary.yaml"
# A phrasing with a gap, `天花板…叫`: its parts in this order, at most GAP characters apart within one sentence
# (天花板上那个圆圆的东西一直在叫). `…` reads as `...` once normalised (NFKC).
GAP_MARK = "..."
GAP = 12
_GAP_FILL = rf"[^。！？!?；;\n]{{0,{GAP}}}?"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the lexicons hold ~15,700 phrasings


def _occurs(word: str, text: str) -> bool:
    """`word` is in `text`, and a word that begins or ends with a digit is not part of a longer number there: 12345
    (the citizens' hotline, a lexicon phrase of complaints) is not in 13812345678 (a trial's tenant's phone)."""
    if word not in text:
        return False
    if not (word[0].isdigit() or word[-1].isdigit()):
        return True
    before = r"(?<!\d)" if word[0].isdigit() else ""
    after = r"(?!\d)" if word[-1].isdigit() else ""
    return re.search(before + re.escape(word) + after, text) is not None


@dataclass(frozen=True)
class Expansion:
    """A glossary hit in a text: the word found and the synonyms it brings."""

    found: str
    synonyms: tuple[str, ...]


@dataclass
class Glossary:
    groups: list[tuple[str, ...]] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    # One-way mappings from what tenants say to the words procedures use (the colloquial lexicon): (says, means).
    phrases: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._phrase_of: dict[str, int] = {}
        # first part -> (pattern, entry, the phrasing as written: what a hit reports, not the tenant's words matched)
        self._gapped: dict[str, list[tuple[re.Pattern[str], int, str]]] = {}
        for pi, (says, _) in enumerate(self.phrases):
            for phrase in map(normalize, says):
                parts = [p for p in phrase.split(GAP_MARK) if p.strip()] if GAP_MARK in phrase else []
                if len(parts) > 1:
                    pattern = re.compile(_GAP_FILL.join(map(re.escape, parts)))
                    self._gapped.setdefault(parts[0], []).append((pattern, pi, "…".join(parts)))
                elif not parts:
                    self._phrase_of.setdefault(phrase, pi)
        self._phrase_lengths = sorted({len(p) for p in self._phrase_of if p}, reverse=True)
        self._first_lengths = sorted({len(p) for p in self._gapped})
        self._means = [tuple(normalize(m) for m in means if normalize(m)) for _, means in self.phrases]
        self._by_word: dict[str, int] = {}
        for gi, group in enumerate(self.groups):
            for word in group:
                self._by_word.setdefault(normalize(word), gi)
        # Longest words first so that 水龙头 wins over 龙头 when both are listed.
        self._words = sorted(self._by_word, key=len, reverse=True)

    def expansions(self, text: str) -> list[Expansion]:
        """Synonym groups whose words occur in `text` (longest match first, each group once)."""
        norm = normalize(text)
        found: list[Expansion] = []
        used: set[int] = set()
        covered = norm
        for word in self._words:
            if word and word in covered and _occurs(word, covered):  # (the call only for words present)
                gi = self._by_word[word]
                covered = covered.replace(word, "\0")
                if gi in used:
                    continue
                used.add(gi)
                found.append(Expansion(word, tuple(w for w in self.groups[gi] if normalize(w) != word)))
        return found

    def meanings(self, text: str) -> list[Expansion]:
        """Colloquial phrases found in `text` and the procedure words they stand for (each entry once)."""
        norm = normalize(text)
        # Every substring of a listed length looked up (thousands of phrases, a sentence of tens of characters).
        present = {
            norm[i : i + n] for n in self._phrase_lengths for i in range(len(norm) - n + 1)
        } & self._phrase_of.keys()
        found: list[Expansion] = []
        used: set[int] = set()
        for phrase in sorted(present, key=lambda p: (-len(p), p)):  # longest first, as a trainer would read it
            pi = self._phrase_of[phrase]
            if pi not in used and _occurs(phrase, norm):
                used.add(pi)
                found.append(Expansion(phrase, self.phrases[pi][1]))
        return found + self._gapped_meanings(norm, present, used)

    def _gapped_meanings(self, norm: str, present: set[str], used: set[int]) -> list[Expansion]:
        """The parts of a scene told with the tenant's own words between, each entry once, and not within a listed
        phrasing the text holds: 冰箱门关不严 is the fridge's, not a door's 门…关不严."""
        firsts = {norm[i : i + n] for n in self._first_lengths for i in range(len(norm) - n + 1)} & self._gapped.keys()
        if not firsts:  # most texts: no listed phrasing's places to find
            return []
        spans = [(m.start(), m.end()) for p in present for m in re.finditer(re.escape(p), norm)]
        found: list[Expansion] = []
        for first in sorted(firsts):
            for pattern, pi, written in self._gapped[first]:
                hits = pattern.finditer(norm) if pi not in used else iter(())
                if any(not any(a <= h.start() and h.end() <= b for a, b in spans) for h in hits):
                    used.add(pi)
                    found.append(Expansion(written, self.phrases[pi][1]))
        return found

    def named_by(self, text: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """Colloquial entries whose procedure words `text` names (a title naming 晾衣架 gets 挂衣服的杆子 …).

        Measured and not done (session 22): naming only through words for things, not service words (报修, 故障),
        so that "热水器故障报修" is not named by the fridge's 故障 entries (blind R@1 -2 queries, chat -1 right); and
        not counting a word inside a longer named word (燃气 in 燃气热水器: it also took 燃气's homophone entries
        from the gas-leak SOP, whose tag 燃气泄漏 holds it; live-call assist on the tuning set without examples
        0.891 -> 0.865)."""
        norm = normalize(text)
        return [entry for entry, means in zip(self.phrases, self._means, strict=True) if any(m in norm for m in means)]

    def merged(self, other: Glossary) -> Glossary:
        return Glossary(
            groups=self.groups + other.groups, terms=self.terms + other.terms, phrases=self.phrases + other.phrases
        )


def _from_data(data: object, path: str) -> tuple[Glossary, list[Issue]]:
    issues: list[Issue] = []
    if data is None:
        return Glossary(), issues
    if not isinstance(data, dict):
        return Glossary(), [
            Issue(path=path, line=1, severity="error", message="词表必须包含 groups 和/或 terms 两个字段")
        ]
    groups: list[tuple[str, ...]] = []
    for i, g in enumerate(data.get("groups") or []):
        if not isinstance(g, list) or len(g) < 2 or not all(isinstance(w, (str, int)) for w in g):
            msg = f"groups 第 {i + 1} 组无效：每组必须是至少两个词的列表，例如 [漏水, 渗水]"
            issues.append(Issue(path=path, line=1, severity="error", message=msg))
            continue
        groups.append(tuple(str(w).strip() for w in g if str(w).strip()))
    terms = [str(t).strip() for t in (data.get("terms") or []) if str(t).strip()]
    seen: dict[str, int] = {}
    for gi, group in enumerate(groups):
        for w in group:
            if w in seen and seen[w] != gi:
                msg = f"词“{w}”同时出现在第 {seen[w] + 1} 组和第 {gi + 1} 组，请合并或删除其一"
                issues.append(Issue(path=path, line=1, severity="warning", message=msg))
            seen.setdefault(w, gi)
    phrases: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for i, e in enumerate(data.get("entries") or []):
        says, means = (e.get("says"), e.get("means")) if isinstance(e, dict) else (None, None)
        if not isinstance(says, list) or not isinstance(means, list) or not says or not means:
            msg = f"entries 第 {i + 1} 项无效：需要 says 和 means 两个列表"
            msg += "，例如 {says: [挂衣服的杆子], means: [晾衣架]}"
            issues.append(Issue(path=path, line=1, severity="error", message=msg))
            continue
        said = tuple(str(w).strip() for w in says)
        for phrase in said:
            if GAP_MARK in normalize(phrase) and not all(p.strip() for p in normalize(phrase).split(GAP_MARK)):
                msg = f"entries 第 {i + 1} 项的说法“{phrase}”无效：“…”两边都要有字，例如 天花板…叫"
                issues.append(Issue(path=path, line=1, severity="error", message=msg))
        phrases.append((said, tuple(str(w).strip() for w in means)))
    return Glossary(groups=groups, terms=terms, phrases=phrases), issues


def load_file(path: Path) -> tuple[Glossary, list[Issue]]:
    """Load and check a glossary file; problems are reported, never raised."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Glossary(), [
            Issue(path=str(path), line=1, severity="error", message="词表文件不是 UTF-8 编码，请另存为 UTF-8")
        ]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 1) if mark is not None else 1
        return Glossary(), [
            Issue(
                path=str(path),
                line=line,
                severity="error",
                message=f"词表 YAML 格式错误：{getattr(exc, 'problem', exc)}",
            )
        ]
    return _from_data(data, str(path))


@functools.cache
def builtin() -> Glossary:
    """The shipped synonym groups and the shipped colloquial lexicon (`colloquial*.yaml`: one file per writer), read
    once per process (~15,700 phrasings; callers never change it: `merged` builds a new glossary)."""
    out = Glossary()
    data = resources.files("kb_service") / "data"
    lexicons = sorted(ref.name for ref in data.iterdir() if ref.name.startswith("colloquial"))
    for name in ("glossary.yaml", *lexicons):
        loaded = yaml.load((data / name).read_text(encoding="utf-8"), Loader=_LOADER)
        out = out.merged(_from_data(loaded, f"builtin:{name}")[0])
    return out


def load(sops_dir: Path | None, use_builtin: bool = True) -> Glossary:
    """The built-in glossary extended by the corpus' own `glossary.yaml`, if present."""
    base = builtin() if use_builtin else Glossary()
    if sops_dir is not None and (sops_dir / CORPUS_GLOSSARY).is_file():
        extra, _ = load_file(sops_dir / CORPUS_GLOSSARY)
        return base.merged(extra)
    return base
