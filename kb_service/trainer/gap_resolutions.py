"""Gap-report groups a trainer marked 已处理: kept in the service database, so every replica's report reads them.

A training manager's trial fixed a gap by publishing a SOP, and the report went on listing its questions for the rest of
the window with no way to say they were dealt with. A mark covers the questions it names; a group whose questions were
all asked before the latest mark among them is listed apart (已处理), and comes back to the open list, marked as
reopened, when someone asks one of them again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from kb_service.db.logbook import Logbook
from kb_service.trainer.gaps import GapGroup, GapMark, GapReport


class GapResolutions:
    def __init__(self, logbook: Logbook) -> None:
        self.logbook = logbook

    def mark(self, questions: Sequence[str], who: str, note: str = "", now: float | None = None) -> int:
        ts = time.time() if now is None else now
        rows = [{"q": q, "ts": ts, "who": who, "note": note} for q in dict.fromkeys(questions)]
        with self.logbook.transaction() as c:
            c.executemany(
                "INSERT INTO gap_resolutions (question, resolved_ts, who, note) VALUES (:q, :ts, :who, :note)", rows
            )
        return len(rows)

    def withdraw(self, questions: Sequence[str], now: float | None = None) -> int:
        """Undo the marks on these questions (a group marked by mistake goes back to the open list)."""
        ts = time.time() if now is None else now
        with self.logbook.transaction() as c:
            return sum(
                c.execute(
                    "UPDATE gap_resolutions SET withdrawn_ts = :ts WHERE question = :q AND withdrawn_ts IS NULL",
                    {"ts": ts, "q": q},
                ).rowcount
                for q in dict.fromkeys(questions)
            )

    def latest(self, questions: Sequence[str]) -> dict[str, GapMark]:
        """The latest standing mark of each of these questions that has one."""
        wanted = list(dict.fromkeys(questions))
        if not wanted:
            return {}
        names = {f"q{i}": q for i, q in enumerate(wanted)}
        rows = self.logbook.rows(
            "SELECT question, resolved_ts, who, note FROM gap_resolutions WHERE withdrawn_ts IS NULL"
            f" AND question IN ({', '.join(':' + k for k in names)}) ORDER BY resolved_ts",
            names,
        )
        return {r["question"]: GapMark(resolved_ts=r["resolved_ts"], who=r["who"], note=r["note"]) for r in rows}


def questions_of(group: GapGroup) -> list[str]:
    return list(dict.fromkeys([group.representative, *group.examples]))


def apply(report: GapReport, marks: Mapping[str, GapMark]) -> GapReport:
    """The report with the groups marked since they were last asked moved to `resolved`, and those asked again after
    their mark kept open with it (reopened)."""
    still: list[GapGroup] = []
    done: list[GapGroup] = []
    for group in report.unanswered:
        found = [marks[q] for q in questions_of(group) if q in marks]
        if not found:
            still.append(group)
            continue
        mark = max(found, key=lambda m: m.resolved_ts)
        marked = group.model_copy(update={"resolved": mark})
        (done if mark.resolved_ts >= group.last_asked else still).append(marked)
    return report.model_copy(update={"unanswered": still, "resolved": done})
