"""The training tables together, and building a practice round with the search engine's help."""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from kb_service.accounts.store import AccountStore, Database
from kb_service.db.engine import DB_ERRORS
from kb_service.errors import first_line
from kb_service.models import Sop
from kb_service.search.searcher import Searcher
from kb_service.text.privacy import mask
from kb_service.training import drills
from kb_service.training.assignments import AssignmentStore
from kb_service.training.changes import ChangeStore
from kb_service.training.drills import Candidate, Drill, Probe, Source
from kb_service.training.matching import LineIndex, referred
from kb_service.training.practice import PracticeStore
from kb_service.training.records import Records

log = logging.getLogger(__name__)
MAX_POOL = 60  # candidate utterances probed with the search engine per round
LOG_ROWS = 2000  # recent logged questions read for utterances


@dataclass
class Training:
    accounts: AccountStore
    changes: ChangeStore
    practice: PracticeStore
    records: Records
    assignments: AssignmentStore

    @classmethod
    def open(cls, db: Database) -> Training:
        return cls(AccountStore(db), ChangeStore(db), PracticeStore(db), Records(db), AssignmentStore(db))


def withdrawn(db: Database) -> set[tuple[str, str]]:
    """(sop_id, prompt) of the utterances from use that trainers withdrew from practice (`withdraw`)."""
    try:
        return {(r["sop_id"], r["prompt"]) for r in db.rows("SELECT sop_id, prompt FROM drill_withdrawals")}
    except DB_ERRORS as exc:
        log.info("practice: no withdrawn utterances (%s)", first_line(exc))
        return set()


def withdraw(db: Database, sop_id: str, prompt: str, who: str, *, back: bool = False) -> bool:
    """Withdraw an utterance from use from a SOP's practice and exams (or bring it back); False if nothing changed."""
    with db.transaction() as c:
        if back:
            sql = "DELETE FROM drill_withdrawals WHERE sop_id = :s AND prompt = :p"
        else:
            sql = (
                "INSERT INTO drill_withdrawals (sop_id, prompt, who, ts) VALUES (:s, :p, :w, :ts)"
                " ON CONFLICT (sop_id, prompt) DO NOTHING"
            )
        return bool(c.execute(sql, {"s": sop_id, "p": prompt, "w": who, "ts": time.time()}).rowcount)


def logged_phrasings(db: Database, *, keep_withdrawn: bool = False) -> dict[str, list[tuple[str, Source]]]:
    """Utterances for SOPs from use: learned phrasings and searches whose first result agents acted on (opened or
    copied), less those a trainer withdrew (unless `keep_withdrawn`). Masked when logged; missing tables (learning
    unavailable) give none."""
    out: dict[str, list[tuple[str, Source]]] = defaultdict(list)
    gone = set() if keep_withdrawn else withdrawn(db)
    reads: list[tuple[str, Source]] = [
        (
            "SELECT sop_id, phrasing AS text FROM learned WHERE removed_ts IS NULL ORDER BY updated_ts DESC LIMIT :n",
            "learned",
        ),
        (
            # Only where the agent acted on the search's first result: a copy from the fifth card (the first with a
            # script line) keyed 楼道的灯坏了 to the burst-pipe procedure for everyone's practice (a trial)
            "SELECT e.sop_id, q.query AS text FROM events e JOIN queries q ON q.id = e.query_id"
            " WHERE e.sop_id = q.top_sop ORDER BY e.ts DESC LIMIT :n",
            "log",
        ),
    ]
    # Not tenants' chat questions: their top SOP is the public search's, so a question only a staff-only procedure
    # answers (能换个房间住吗: 内部换房办理) became a drill keyed to the public document the chat answered from, and
    # trainees who found the right procedure were marked wrong (a trainer's trial).
    for sql, source in reads:
        try:
            rows = db.rows(sql, {"n": LOG_ROWS})
        except DB_ERRORS as exc:
            log.info("practice: no %s utterances (%s)", source, first_line(exc))
            continue
        for r in rows:
            if not gone or (r["sop_id"], mask(r["text"].strip())) not in gone:  # masking only when there is any
                out[r["sop_id"]].append((r["text"], source))
    return out


def own_searches(db: Database, who: str) -> set[str]:
    """The searches a person acted on (as drills read them: masked): an exam asks them only when nothing else fills
    the round (a trainer's trial: an agent's exam opened with her own search of the day before)."""
    sql = "SELECT DISTINCT q.query AS text FROM events e JOIN queries q ON q.id = e.query_id WHERE e.who = :who"
    try:
        return {mask(r["text"].strip()) for r in db.rows(sql + " LIMIT :n", {"who": who, "n": LOG_ROWS})}
    except DB_ERRORS as exc:
        log.info("practice: the person's searches are not known (%s)", first_line(exc))
        return set()


def probe_all(searcher: Searcher, pool: Sequence[Candidate]) -> list[tuple[Candidate, Probe]]:
    """Search each utterance as an agent would (one model call for all) and read its near misses."""
    if not pool:
        return []
    vectors = searcher.embed_queries([c.prompt for c in pool])
    # By the content: a phrasing agents taught (学到的问法) puts its SOP first whatever the documents say, so a pair
    # left on the old SOP after a split kept its drill keyed there (a re-check)
    content = replace(searcher.config, learned=False)
    out = []
    for c, vec in zip(pool, vectors, strict=True):
        resp = searcher.search(c.prompt, top_k=6, audience="agent", query_vector=vec, config=content)
        out.append((c, drills.probe(c.sop_id, [(h.sop_id, h.score) for h in resp.results])))
    return out


@dataclass(frozen=True)
class Supply:
    """What one category can set: utterances in all, how many of them an exam may ask (their SOP is the search's
    first), and the SOPs that supply none (no examples, FAQ questions or phrasings learned from agents)."""

    category: str
    sops: int
    utterances: int
    exam_ready: int
    bare: list[tuple[str, str]]  # (sop_id, title) of SOPs without a usable utterance
    # SOPs with utterances but no second stage for any (no script line, steps or answer to ask): an exam asks the
    # staged ones first, so these come up only when a category has too few (a trial's exam never reached one)
    unstaged: list[tuple[str, str]] = field(default_factory=list)
    # how many of `exam_ready` each SOP supplies: an exam set on a few SOPs can ask at most their sum
    ready_by_sop: dict[str, int] = field(default_factory=dict)


def supply(searcher: Searcher, db: Database) -> list[Supply]:
    """Every category's drill supply, probing every utterance once (a trainer sees what an exam can hold before
    setting it: a trial found most categories of a terse knowledge base able to set 0–4 questions)."""
    everything = list(searcher.catalog.every())
    pool = drills.candidates(everything, logged_phrasings(db))
    ready: dict[str, int] = defaultdict(int)
    by_sop: dict[str, int] = defaultdict(int)
    for c, p in probe_all(searcher, pool):
        ready[c.category] += p.rank == 1
        by_sop[c.sop_id] += p.rank == 1
    have = {c.sop_id for c in pool}
    index = LineIndex(everything)
    by_id = {s.meta.id: s for s in everything}
    staged: set[str] = set()  # one utterance with a second stage is enough for its SOP: the rest are not probed
    for c in pool:
        if c.sop_id not in staged and _staged(c, by_id[c.sop_id], everything, index):
            staged.add(c.sop_id)
    out = []
    for category in sorted({s.meta.category for s in everything}):
        sops = [s for s in everything if s.meta.category == category]
        out.append(
            Supply(
                category,
                len(sops),
                sum(c.category == category for c in pool),
                ready[category],
                [(s.meta.id, s.title) for s in sops if s.meta.id not in have],
                [(s.meta.id, s.title) for s in sops if s.meta.id in have and s.meta.id not in staged],
                {s.meta.id: by_sop.get(s.meta.id, 0) for s in sops},
            )
        )
    return out


def _staged(c: Candidate, sop: Sop, everything: Sequence[Sop], index: LineIndex) -> bool:
    """Whether the utterance gets a second stage (a line, an answer or steps to order): the position only chooses
    between a line and steps, so one position tells."""
    rest = [s for s in everything if s.meta.id != sop.meta.id]
    return bool(drills.followup(Drill(c, 0), 0, sop, [], random.Random(0), rest, index))


def build_round(
    searcher: Searcher,
    db: Database,
    *,
    size: int,
    category: str | None,
    level: int,
    rng: random.Random | None = None,
    exam: bool = False,
    avoid: set[str] | None = None,
    sop_ids: Collection[str] = (),
    exposed: Collection[str] = (),
) -> list[Drill]:
    """`size` drills (fewer if the knowledge base has fewer usable utterances) with their second stages. An exam
    asks only utterances whose SOP the search itself puts first: where another SOP ranks above it, two documents
    answer the words (a trainer's new SOP on filter cleaning and the air-conditioning FAQ 空调要多久清洗一次) and the
    item would mark a right pick wrong. Practice keeps them: telling near misses apart is what it trains. Prompts in
    `avoid` (the person's latest exams) are asked only when the others do not fill the round; in an exam, before them,
    those in `exposed` (asked lately in colleagues' rounds: they saw them, and their answers). `sop_ids`: an exam set
    on chosen SOPs of the category asks only theirs (all of the category when none of them is left in it)."""
    rng = rng or random.Random()
    everything = list(searcher.catalog.every())
    sops: list[Sop] = [s for s in everything if category is None or s.meta.category == category]
    sops = [s for s in sops if s.meta.id in sop_ids] or sops
    pool = drills.candidates(sops, logged_phrasings(db))
    rng.shuffle(pool)
    scored = probe_all(searcher, pool[: max(MAX_POOL, size * 3)])
    # An utterance from use is keyed by what an agent did with it once: asked only while the search agrees. A trainer
    # split a SOP, and the searches agents had acted on stayed keyed to the old one: the new SOP, now first, was
    # marked wrong and the report counted it as confused (a trial). Trainers' own examples and FAQ keep near misses.
    scored = [(c, p) for c, p in scored if c.source not in drills.FROM_USE or p.rank == 1]
    by_id = {s.meta.id: s for s in everything}
    index = LineIndex(everything)
    later: list[set[str]] = []
    if exam:
        scored = [(c, p) for c, p in scored if p.rank == 1]
        # An exam examines what the agent says and does too: utterances with a second stage first (a trial's
        # complaints exam drew three noise complaints that had none, and its rules were never examined)
        unstaged = {c.prompt for c, _ in scored if not _staged(c, by_id[c.sop_id], everything, index)}
        # A SOP's first example is what the console's home page suggests (GET /v1/sops `example`): agents see those
        # every day, so they come after the other staged ones (a trial found three exam questions among them)
        shown = {mask(s.meta.examples[0].strip()) for s in sops if s.meta.examples}
        # ... and what colleagues were asked lately comes last: a training manager's trial found three or four of ten
        # questions shared by any two new agents' exams, answers shown to the one who failed first
        seen = set(exposed)
        later = [shown - unstaged - seen, unstaged - seen, seen]
    chosen = drills.choose(scored, size, level, rng, avoid or set(), later)
    probes = {(c.sop_id, c.prompt): p for c, p in scored}
    ordered: set[str] = set()  # SOPs whose steps the round already asks to order
    for i, d in enumerate(chosen):
        sop = by_id[d.candidate.sop_id]
        near = [by_id[s] for s in probes[(d.candidate.sop_id, d.candidate.prompt)].others if s in by_id]
        rest = [s for s in everything if s.meta.id != sop.meta.id]
        d.followup = drills.followup(d, i, sop, near, rng, rest, index, sop.meta.id in ordered)
        if d.followup.get("kind") == "order":
            ordered.add(sop.meta.id)
        accept = referred(d.candidate.answer, everything, sop.meta.id) if d.candidate.answer else []
        if accept:  # kept with the second stage (the drill's one JSON column): SOPs the answer refers the tenant to
            d.followup["accept"] = accept
    return chosen
