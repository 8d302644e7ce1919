"""What a section made staff-only leaves public: a trial moved the parking SOP's 收费标准 under [内部], and its FAQ
answers and script lines went on telling tenants 1元/4小时 and 2小时内免费 while the agents' change card said
「改为内部：不要告知租客」. Warned in preview and on publish, line by line; the trainer decides."""

from __future__ import annotations

import re

from kb_service.models import Issue, Sop

# A sum as a document writes it, with its unit of charge when it has one: 500元/月, 1元/4小时, 40元, 30 元
_SUM = re.compile(r"\d+(?:[.,]\d+)?\s*(?:元|块)(?:\s*/\s*[\d\u4e00-\u9fff]{1,4})?")


def left_public(before: Sop | None, after: Sop, path: str, text: str) -> list[Issue]:
    """Lines of public sections that still state a sum of a section this edit made staff-only (against the version
    it replaces)."""
    if before is None:
        return []
    was_public = {tuple(s.heading_path) for s in before.sections if s.audience == "public"}
    moved = [s for s in after.sections if s.audience != "public" and tuple(s.heading_path) in was_public]
    sums = {_plain(m.group(0)): s.heading for s in moved for m in _SUM.finditer(s.text)}
    if not sums:
        return []
    public = [(s.line_start, s.line_end) for s in after.sections if s.audience == "public"]
    issues = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not any(a <= number <= b for a, b in public):
            continue
        said = next((m.group(0) for m in _SUM.finditer(line) if _plain(m.group(0)) in sums), None)
        if said is not None:
            msg = (
                f"「{sums[_plain(said)]}」已改为内部，这一行仍对租客写着「{said}」：如不应告知租客，请一并改为内部或"
                f"删去 / a section now staff-only states {said}; this public line still does"
            )
            issues.append(Issue(path=path, line=number, severity="warning", message=msg))
    return issues


def _plain(figure: str) -> str:
    """The amount of a sum (1元/4小时 and 4小时1块钱 are both 1元)."""
    return re.sub(r"[\s,]", "", figure.split("/")[0]).replace("块", "元")
