"""What a publish changes for the questions people actually ask.

A trainer's trial split a SOP, deleted one, moved a section to staff-only and gave a new SOP a tag: each time the
publish checked only the SOP's own examples, and questions agents and tenants had asked landed elsewhere (a tenant's
「东西被水泡了谁赔」 answered with a lost parcel's compensation; 「共享厨房怎么预约」 with a cleaning price) without a
word. Before a new generation goes live, the most asked recent questions of the query log (agents' searches with the
agent's view, tenants' chat questions with the public one) are searched on the published generation and on the new
one; those whose first SOP changes come back with the publish result, most asked first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Literal, cast

import numpy as np
from pydantic import BaseModel

from ingest.text_search import squashed
from kb_service.db.engine import DB_ERRORS
from kb_service.db.logbook import Logbook
from kb_service.errors import ExampleRegressionError
from kb_service.models import Sop
from kb_service.search.config import SearchConfig
from kb_service.search.searcher import Searcher

WINDOW_DAYS = 30
QUESTIONS = 100  # the most asked distinct questions of the window read (two searches each, ~10–20 ms)
BUDGET_SECONDS = 2.0  # a publish waits at most this long for them; the result says how many were compared
SHOWN = 30
EXAMPLE_TOP_K = 3


class MovedQuestion(BaseModel):
    """A recent question whose first SOP the publish changes (None: no result, or only weak ones below the cut)."""

    query: str
    audience: Literal["agent", "public"]  # agents' searches, tenants' chat questions
    asked: int  # times in the window
    before: str | None
    before_title: str | None
    after: str | None
    after_title: str | None
    # a phrasing agents confirmed for this SOP (学到的问法): it keeps taking agents' search there whatever the content
    # now says, until a trainer removes it (a re-check split a SOP and its learned phrasings stayed on the old one)
    learned: str | None = None
    # a tenant's question whose SOP stays first but whose answering passage is no longer public (a trial moved a
    # section to [内部] and was told that nothing changed): the heading tenants were answered from
    section_gone: str | None = None


class Impact(BaseModel):
    compared: int = 0  # recent questions searched on both generations
    moved: list[MovedQuestion] = []  # at most SHOWN
    moved_total: int = 0


def checked_examples(sop: Sop, unchecked: Sequence[str], force: bool = False) -> Sop | None:
    """The SOP as its examples are checked (None: not checked, forced): without those `unchecked` (a learned phrasing
    being promoted: search did not find the SOP by its content for it, which is why an agent pointed to it; a trial's
    promotion was refused with "修改后…找不到本 SOP", though the example itself then found it)."""
    if force:
        return None
    if not unchecked:
        return sop
    meta = sop.meta.model_copy(update={"examples": [e for e in sop.meta.examples if e not in unchecked]})
    return sop.model_copy(update={"meta": meta})


def check_examples(searcher: Searcher, sop: Sop, generation: str) -> None:
    """Each example of the SOP still finds it in the first EXAMPLE_TOP_K of `generation` by its content (the example
    chunk itself left out: it would always match); ExampleRegressionError otherwise."""
    failures: list[dict[str, object]] = []
    for q in sop.meta.examples:
        hits = searcher.search(q, top_k=EXAMPLE_TOP_K, generation=generation, without_examples_of=sop.meta.id).results
        ids = [h.sop_id for h in hits]
        if sop.meta.id not in ids:
            failures.append({"query": q, "top": ids})
    if failures:
        listing = "；".join(
            f"“{f['query']}” 前 {EXAMPLE_TOP_K} 名是 {'、'.join(f['top']) or '（无结果）'}"  # type: ignore[arg-type]
            for f in failures
        )
        raise ExampleRegressionError(
            f"修改后以下示例查询找不到本 SOP：{listing}。请调整内容或示例；确需发布请使用 force=true / "
            f"the change would stop {len(failures)} example queries finding this SOP (use force=true to override)",
            failures,
        )


Question = tuple[str, str, int, str | None]  # text, audience, times asked, the SOP it was learned for (or None)


def recent_questions(logbook: Logbook, sop_ids: Sequence[str] = (), now: float | None = None) -> list[Question]:
    """The phrasings agents confirmed for the SOPs of the change (`sop_ids`), then agents' searches and tenants' chat
    questions of the window, most asked first (none when the database cannot be read: a publish never fails for it)."""
    since = (time.time() if now is None else now) - WINDOW_DAYS * 86400
    try:
        rows = logbook.rows(
            "SELECT query, audience, COUNT(*) AS n, MAX(ts) AS last FROM queries"
            " WHERE ts >= :since AND source IN ('search', 'chat') AND query <> ''"
            " GROUP BY query, audience ORDER BY n DESC, last DESC LIMIT :limit",
            {"since": since, "limit": QUESTIONS},
        )
    except DB_ERRORS:
        return []
    asked: list[Question] = [
        (str(r["query"]), "public" if r["audience"] == "public" else "agent", int(r["n"]), None) for r in rows
    ]
    return _learned(logbook, sop_ids) + asked


def _learned(logbook: Logbook, sop_ids: Sequence[str]) -> list[Question]:
    if not sop_ids:
        return []
    names = {f"s{i}": s for i, s in enumerate(sop_ids)}
    try:
        rows = logbook.rows(
            "SELECT sop_id, phrasing, confirmations FROM learned WHERE removed_ts IS NULL"
            f" AND sop_id IN ({', '.join(':' + k for k in names)}) ORDER BY confirmations DESC LIMIT :limit",
            {**names, "limit": QUESTIONS},
        )
    except DB_ERRORS:  # learning unavailable: nothing learned to compare
        return []
    return [(str(r["phrasing"]), "agent", int(r["confirmations"]), str(r["sop_id"])) for r in rows]


def compare(
    searcher: Searcher,
    before: str | None,
    after: str,
    questions: list[Question],
    title: Callable[[str], str | None],
    budget: float | None = None,
    lost: Mapping[str, str] | None = None,
) -> Impact:
    """Search each question on generation `before` (None: nothing published yet) and `after`, within `budget`
    seconds (BUDGET_SECONDS when None), by their content: learned phrasings apply to the published generation only,
    so both searches leave them out (with them, a learned question read as moved). A learned phrasing is listed when
    the content now puts another SOP first than the one agents taught it for: it keeps agents' search there. A
    tenant's question whose first SOP stays first is listed when that SOP lost public sections (`lost`, by SOP id:
    `lost_sections`), with them."""
    lost = lost or {}
    if not questions:
        return Impact()
    started = time.perf_counter()
    vectors = searcher.embed_queries([q for q, _, _, _ in questions])
    content = replace(searcher.config, learned=False)
    moved: list[MovedQuestion] = []
    compared = 0
    for (query, audience, asked, learned), vector in zip(questions, vectors, strict=True):
        if time.perf_counter() - started > (BUDGET_SECONDS if budget is None else budget):
            break
        aud = cast(Literal["agent", "public"], audience)
        was, now = (_first(searcher, query, aud, gen, vector, content) if gen else None for gen in (before, after))
        compared += 1
        was = learned if learned is not None else was  # what agents taught stays until a trainer removes it
        gone = lost.get(now) if aud == "public" and was == now and now is not None else None
        if was != now or gone:
            names = (title(was) if was else None, title(now) if now else None)
            moved.append(
                MovedQuestion(
                    query=query,
                    audience=aud,
                    asked=asked,
                    before=was,
                    after=now,
                    before_title=names[0],
                    after_title=names[1],
                    learned=learned,
                    section_gone=gone,
                )
            )
    return Impact(compared=compared, moved=moved[:SHOWN], moved_total=len(moved))


def lost_sections(before: Sop | None, after: Sop) -> str | None:
    """The sections and FAQ pairs of `before` that tenants could read and cannot in `after` (made 内部 or removed;
    a renamed heading whose words stay public is no loss), as their headings, or None."""
    if before is None:
        return None
    now = after.public_view().sections
    paths = {tuple(s.heading_path) for s in now} | {(*s.heading_path, q.question) for s in now for q in s.qa}
    texts = [squashed(s.text) for s in now] + [squashed(q.question + q.answer) for s in now for q in s.qa]

    def kept(path: tuple[str, ...], text: str) -> bool:
        line = squashed(max(text.splitlines() or [""], key=len))
        return path in paths or any(line and line in t for t in texts)

    was = before.public_view().sections
    lost = [s.heading for s in was if s.text.strip() and not kept(tuple(s.heading_path), s.text)]
    lost += [q.question for s in was for q in s.qa if not kept((*s.heading_path, q.question), q.question + q.answer)]
    return "、".join(lost) or None


def _first(
    searcher: Searcher,
    query: str,
    audience: Literal["agent", "public"],
    generation: str,
    vector: np.ndarray,
    config: SearchConfig,
) -> str | None:
    found = searcher.search(
        query, top_k=1, audience=audience, generation=generation, query_vector=vector, config=config
    )
    return found.results[0].sop_id if found.results else None
