"""Change acknowledgements (变更确认): a published change to a SOP's steps, scripts, time limits or escalation becomes
a change card every agent acknowledges; trainers see who has and who has not.

Who must acknowledge (`must_acknowledge`): the active named agent and trainer accounts made before the change, other
than its author. Admins manage accounts and are not asked; shared KB_API_KEYS keys and trial mode are nobody in
particular, so they may read and acknowledge cards but nothing is required of them. Only a trainer's publish (or
rollback) through the API makes a card: the SOP folder's own versions (imports, `kb ingest`) never do.

A change's id derives from its SOP and version (`<sop_id>-v<version>`), so recording it twice changes nothing. The
SQL is portable (named parameters, ON CONFLICT): the service database may move to PostgreSQL.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kb_service.accounts.store import Account, AccountRole, Database
from kb_service.models import Section, Sop

PARTS = {
    "steps": "处理步骤",
    "script": "标准话术",
    "time_limit": "时限要求",
    "escalation": "升级处理",
    "fees": "收费标准",  # a section headed as fees (an operator's trial changed a parking price and no card came)
}
_FEES = re.compile(r"收费|费用|价格|价目|资费|计费|标准价|报价|价目表")
ACK_WINDOW = 90 * 86400  # callers without an account date see the changes of the last 90 days
ACKNOWLEDGERS: tuple[AccountRole, ...] = ("agent", "trainer")  # the roles that must acknowledge change cards
_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)、])\s*")
INTERNAL_MARK = "（内部）"  # before a staff-only section's lines on a card


class DiffLine(BaseModel):
    op: str  # "-" removed, "+" added, " " unchanged (context), "=" the same words now staff-only or now public
    text: str
    moved: str | None = None  # with "=": "internal" (now [内部]: not for tenants) or "public" (tenants may be told)
    superseded_by: int | None = None  # an added line a later version changed again (the version that did)


class ChangedPart(BaseModel):
    part: str  # steps | script | time_limit | escalation
    label: str
    lines: list[DiffLine]


class Change(BaseModel):
    change_id: str
    sop_id: str
    version: int
    ts: float
    author: str
    title: str
    parts: list[ChangedPart]
    undoes: list[int] = []  # a rollback: the versions it took back (their cards are withdrawn)


def change_id(sop_id: str, version: int) -> str:
    """The card of one published version: `<sop_id>-v<version>`."""
    return f"{sop_id}-v{version}"


def part_lines(sop: Sop | None, part: str) -> list[str]:
    """The lines of one part of a SOP as agents read them (list markers dropped; a staff-only section's lines marked
    （内部）: a re-check found a [内部] script line under 标准话术 on a change card, read as one to say to a tenant)."""
    if sop is None:
        return []
    out: list[str] = []
    for s in sop.sections:
        if not _of_part(s, part):
            continue
        if part == "steps" and s.steps:
            lines = s.steps
        elif part == "script" and s.scripts:
            lines = s.scripts
        else:
            lines = [_MARKER.sub("", line).strip() for line in s.text.splitlines() if line.strip()]
        out.extend(f"{INTERNAL_MARK}{line}" if s.internal else line for line in lines)
    return out


def _of_part(section: Section, part: str) -> bool:
    if part == "fees":  # a section of no other part whose heading says it holds prices (## 收费标准, ## 费用说明)
        return section.kind not in PARTS and bool(_FEES.search(section.heading))
    return section.kind == part


def changed_parts(before: Sop | None, after: Sop) -> list[ChangedPart]:
    """What changed in the parts an agent acts on, as a readable line diff with one line of context."""
    parts = []
    for part, label in PARTS.items():
        old, new = part_lines(before, part), part_lines(after, part)
        if old == new:
            continue
        lines: list[DiffLine] = []
        ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
        for n, (tag, i1, i2, j1, j2) in enumerate(ops):
            if tag == "equal":  # one line of context next to each change
                kept = old[i1:i2]
                lead, trail = kept[:1] if n > 0 else [], kept[-1:] if n < len(ops) - 1 else []
                context = kept if len(kept) <= 2 else [*lead, *(["…"] if lead and trail else []), *trail]
                lines.extend(DiffLine(op=" ", text=t) for t in context)
                continue
            lines.extend(_replaced(old[i1:i2], new[j1:j2]))
        parts.append(ChangedPart(part=part, label=label, lines=lines))
    return parts


def _replaced(old: list[str], new: list[str]) -> list[DiffLine]:
    """Removed and added lines; a line whose words stay and only became staff-only (or public) is one "=" line:
    a section moved under [内部] showed every fee line struck and added again, read as new prices (a trial)."""
    bare = lambda t: t.removeprefix(INTERNAL_MARK)  # noqa: E731
    kept = {bare(t) for t in old} & {bare(t) for t in new}
    moved = {t for t in kept if (t in old) != (t in new)}  # the same words on both sides, marked on one only
    out = [DiffLine(op="-", text=t) for t in old if bare(t) not in moved]
    out += [DiffLine(op="+", text=t) for t in new if bare(t) not in moved]
    for t in new:
        if bare(t) in moved:
            out.append(DiffLine(op="=", text=bare(t), moved="internal" if t.startswith(INTERNAL_MARK) else "public"))
    return out


# A number written in figures or in Chinese (30, 2.5, 三十, 两): what a time limit, a sum or a count is made of
_NUMBER = re.compile(r"\d+(?:\.\d+)?|[零一二两三四五六七八九十百千万半]+")


def numbers_changed(parts: list[ChangedPart]) -> tuple[str, str] | None:
    """A removed and an added line whose numbers differ (「丢件：2小时内响应」 → 「丢件：1小时内响应」), or None when
    the change keeps every number: a typo fix (小改动) changes no time limit, sum or count."""
    for part in parts:
        removed = [line.text for line in part.lines if line.op == "-"]
        added = [line.text for line in part.lines if line.op == "+"]
        if sorted(n for t in removed for n in _NUMBER.findall(t)) != sorted(
            n for t in added for n in _NUMBER.findall(t)
        ):
            return (removed[0] if removed else "", added[0] if added else "")
    return None


@dataclass(frozen=True)
class AckStatus:
    change: Change
    acknowledged: list[tuple[str, float]]
    pending: list[str]
    withdrawn_by: int | None = None  # the rollback that took this version back (its card is withdrawn)


def required(account: Account | None) -> bool:
    """Whether this caller is someone change cards are required of (see the module docstring)."""
    return account is not None and account.active and account.role in ACKNOWLEDGERS


def must_acknowledge(account: Account, change: Change) -> bool:
    return required(account) and account.created_ts <= change.ts and account.name != change.author


# A card is withdrawn when its SOP's latest live version is a deletion: nothing is left to act on (a publish after
# the deletion brings the SOP back, and its own card).
_NOT_DELETED = (
    " AND NOT EXISTS (SELECT 1 FROM sop_versions v WHERE v.sop_id = c.sop_id AND v.state = 'live'"
    " AND v.action = 'delete' AND v.version = (SELECT MAX(w.version) FROM sop_versions w"
    " WHERE w.sop_id = c.sop_id AND w.state = 'live'))"
)


def _change(row: Any) -> Change:
    return Change(
        change_id=row["change_id"],
        sop_id=row["sop_id"],
        version=row["version"],
        ts=row["ts"],
        author=row["author"],
        title=row["title"],
        parts=[ChangedPart(**p) for p in json.loads(row["parts"])],
        undoes=json.loads(row["undoes"]) if row["undoes"] else [],
    )


class ChangeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, before: Sop | None, after: Sop, *, author: str, undoes: Sequence[int] = ()) -> Change | None:
        """A change card for a published version, unless it changed none of the parts agents act on (`undoes`: a
        rollback's versions taken back)."""
        parts = changed_parts(before, after)
        if not parts:
            return None
        change = Change(
            change_id=change_id(after.meta.id, after.meta.version),
            sop_id=after.meta.id,
            version=after.meta.version,
            ts=time.time(),
            author=author,
            title=after.title,
            parts=parts,
            undoes=list(undoes),
        )
        row = change.model_dump(exclude={"parts", "undoes"})
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO sop_changes (change_id, sop_id, version, ts, author, title, parts, undoes)"
                " VALUES (:change_id, :sop_id, :version, :ts, :author, :title, :parts, :undoes)"
                " ON CONFLICT (change_id) DO NOTHING",
                {
                    **row,
                    "parts": json.dumps([p.model_dump() for p in parts]),
                    "undoes": json.dumps(undoes) if undoes else None,
                },
            )
        return change

    def get(self, change_id: str) -> Change | None:
        rows = self.db.rows("SELECT * FROM sop_changes WHERE change_id = :id", {"id": change_id})
        return _change(rows[0]) if rows else None

    def unacknowledged(self, who: str, since: float | None) -> list[Change]:
        """The changes `who` has not acknowledged (their own changes and those of deleted SOPs excepted), the latest
        200 at most: the SOP changed last first, and one SOP's changes in the order they were made (a trial read a
        rollback's correction above the change it corrects)."""
        start = since if since is not None else time.time() - ACK_WINDOW
        rows = self.db.rows(
            "SELECT * FROM sop_changes c WHERE c.ts >= :since AND c.author != :who AND NOT EXISTS"
            " (SELECT 1 FROM change_acks a WHERE a.change_id = c.change_id AND a.who = :who)"
            f"{_NOT_DELETED} ORDER BY c.ts DESC LIMIT 200",
            {"since": start, "who": who},
        )
        by_sop: dict[str, list[Change]] = {}
        for change in map(_change, rows):  # newest first
            by_sop.setdefault(change.sop_id, []).insert(0, change)
        return self._for(who, [c for changes in by_sop.values() for c in changes])

    def _for(self, who: str, changes: list[Change]) -> list[Change]:
        """Without the cards a rollback took back, and with a rollback's card only for whoever had acknowledged one
        of those (the others never learned what it undoes: a trial's agents were left three cards for one change)."""
        undone = self._undone({c.sop_id for c in changes})
        if not undone:
            return changes
        acked = {r["change_id"] for r in self.db.rows("SELECT change_id FROM change_acks WHERE who = :w", {"w": who})}
        return [
            c
            for c in changes
            if (c.sop_id, c.version) not in undone
            and (not c.undoes or any(change_id(c.sop_id, v) in acked for v in c.undoes))
        ]

    def _rollbacks(self, sop_ids: set[str]) -> list[Change]:
        """The change cards of rollbacks of these SOPs (each names the versions it took back)."""
        if not sop_ids:
            return []
        rows = self.db.rows("SELECT * FROM sop_changes WHERE undoes IS NOT NULL")
        return [c for c in map(_change, rows) if c.sop_id in sop_ids]

    def _undone(self, sop_ids: set[str]) -> set[tuple[str, int]]:
        """(sop_id, version) of the versions of these SOPs that a rollback took back."""
        return {(c.sop_id, v) for c in self._rollbacks(sop_ids) for v in c.undoes}

    def cards(self, who: str, since: float | None) -> list[Change]:
        """The changes `who` has not acknowledged, as the console shows them (`mark_superseded`)."""
        return self.mark_superseded(self.unacknowledged(who, since))

    def mark_superseded(self, changes: list[Change]) -> list[Change]:
        """An added line that a later change of the same SOP removed again ("+ 20 分钟" after which "- 20 分钟, + 25
        分钟") is marked with that version, so a card nobody acknowledged yet does not teach an outdated line."""
        for sop_id in {c.sop_id for c in changes}:
            every = [_change(r) for r in self.db.rows("SELECT * FROM sop_changes WHERE sop_id = :s", {"s": sop_id})]
            undone = {v for c in every for v in c.undoes}
            later = [c for c in every if c.version not in undone]  # a rolled-back line supersedes nothing
            for card in (c for c in changes if c.sop_id == sop_id):
                for part in card.parts:
                    for line in part.lines:
                        if line.op != "+":
                            continue
                        line.superseded_by = min(
                            (
                                n.version
                                for n in later
                                if n.version > card.version
                                for p in n.parts
                                if p.part == part.part
                                for d in p.lines
                                if d.op == "-" and d.text == line.text
                            ),
                            default=None,
                        )
        return changes

    def acknowledge(self, change_id: str, who: str) -> float:
        """Record the acknowledgement (again: keeps the first time) and return when it was first made."""
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO change_acks (change_id, who, ts) VALUES (:id, :who, :ts)"
                " ON CONFLICT (change_id, who) DO NOTHING",
                {"id": change_id, "who": who, "ts": time.time()},
            )
            row = c.execute(
                "SELECT ts FROM change_acks WHERE change_id = :id AND who = :who", {"id": change_id, "who": who}
            ).fetchone()
        return float(row["ts"])

    def recent(self, limit: int = 50) -> list[Change]:
        rows = self.db.rows(
            f"SELECT * FROM sop_changes c WHERE TRUE{_NOT_DELETED} ORDER BY c.ts DESC LIMIT :n", {"n": limit}
        )
        return [_change(r) for r in rows]

    def acks(self, change_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        out: dict[str, list[tuple[str, float]]] = {i: [] for i in change_ids}
        for r in self.db.rows("SELECT change_id, who, ts FROM change_acks ORDER BY ts"):
            if r["change_id"] in out:
                out[r["change_id"]].append((r["who"], r["ts"]))
        return out

    def dated(self) -> list[tuple[str, float, str]]:
        """Every change card still standing as (sop_id, ts, author), oldest first."""
        sql = f"SELECT c.sop_id, c.version, c.ts, c.author FROM sop_changes c WHERE TRUE{_NOT_DELETED} ORDER BY c.ts"
        rows = self.db.rows(sql)
        undone = self._undone({r["sop_id"] for r in rows})
        return [(r["sop_id"], float(r["ts"]), r["author"]) for r in rows if (r["sop_id"], r["version"]) not in undone]

    def pending_count(self, who: str, since: float | None) -> int:
        return len(self.unacknowledged(who, since))

    def outstanding(self, account: Account | None) -> int:
        """How many change cards this person must still acknowledge (0 for whoever nothing is required of)."""
        return len(self.unacknowledged(account.name, account.created_ts)) if account and required(account) else 0

    def statuses(self, accounts: Sequence[Account], limit: int = 50) -> list[AckStatus]:
        """The latest changes with who acknowledged them and who of those who must has not yet."""
        recent = self.recent(limit)
        rollbacks = self._rollbacks({c.sop_id for c in recent})
        undone = {(c.sop_id, v) for c in rollbacks for v in c.undoes}
        acks = self.acks([c.change_id for c in recent] + [change_id(sop_id, v) for sop_id, v in undone])
        out = []
        for c in recent:
            done = acks.get(c.change_id, [])
            names = {who for who, _ in done}
            owed = [a.name for a in accounts if must_acknowledge(a, c) and a.name not in names]
            withdrawn_by = None
            if (c.sop_id, c.version) in undone:  # taken back: nobody needs to learn it now
                owed = []
                withdrawn_by = min(r.version for r in rollbacks if r.sop_id == c.sop_id and c.version in r.undoes)
            elif c.undoes:  # a rollback: owed by those who learned what it took back
                learned = {who for v in c.undoes for who, _ in acks.get(change_id(c.sop_id, v), [])}
                owed = [name for name in owed if name in learned]
            out.append(AckStatus(c, done, owed, withdrawn_by))
        return out


def changed_since(
    passes: Iterable[tuple[str, str, float]],
    dated: Sequence[tuple[str, float, str]],
    catalog: Mapping[str, Sop],
) -> dict[tuple[str, str], int]:
    """Per (person, category) pass: how many changes to the category's SOPs (steps, scripts, time limits,
    escalation) were published after it, other than the person's own. A certification older than the procedures it
    examined is a trainer's cue for a retake; the category is the SOP's current one."""
    cats = {sop_id: sop.meta.category if (sop := catalog.get(sop_id)) else None for sop_id, _, _ in dated}
    return {
        (who, category): n
        for who, category, ts in passes
        if (n := sum(1 for sop_id, t, author in dated if t > ts and cats[sop_id] == category and author != who))
    }
