"""Learning from use: the rules that turn agents' votes, opens and copies into learned phrasings (learned.py), keep
them in step with the published SOPs, and let trainers promote one into a SOP's `examples`.

- A 👍 from staff on a SOP for one of their searches teaches the search's phrasing at once; a 👎 removes the pairs of
  that SOP with the same or a near-identical phrasing. Tenants' votes and votes on chat questions teach nothing.
- Opens and copies are weaker: they teach a phrasing once `EVENT_MIN` of them, from at least `EVENT_SEARCHES`
  searches with similar phrasings, point at the same SOP within `EVENT_DAYS`. An open or a copy after the agent left a
  search unused and asked again in other words (`reformulated`) counts for the words of that search too.
- Pairs of a SOP that is no longer published are dropped (each process checks when it polls).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ingest.frontmatter import split_front_matter
from ingest.knowledge_base import KnowledgeBase
from ingest.publishing import Publisher, PublishResult
from kb_service.db.engine import DB_ERRORS, Database
from kb_service.errors import KbError, NotFoundError, VersionConflictError, first_line
from kb_service.learning.matcher import LearnedIndex, char_pairs, dice
from kb_service.learning.store import EventType, LearnedStore, Outcome, QueryRow, phrasing_key
from kb_service.search.searcher import Searcher

log = logging.getLogger(__name__)

EVENT_MIN = 3
EVENT_SEARCHES = 2
EVENT_DAYS = 30
REFORMULATED_S = 90.0  # a search left unused at most this long before the one whose SOP was opened or copied
EVENT_SIMILAR = 0.75  # similarity (as the learned channel computes it) of searches whose opens count together

Embed = Callable[[Sequence[str]], np.ndarray]


class NotTeachableError(KbError):
    """The query a vote or event refers to cannot teach this caller's search (another audience, a chat)."""


@dataclass(frozen=True)
class EventOutcome:
    event_id: int
    similar_events: int  # opens and copies of this SOP from similar searches, this one included
    similar_searches: int
    learned: Outcome | None  # set when this event made the phrasing a learned example


class Learning:
    """The learned phrasings of one server process: store, matcher and the rules between them."""

    def __init__(self, store: LearnedStore, index: LearnedIndex, searcher: Searcher) -> None:
        self.store = store
        self.index = index
        self.searcher = searcher
        self._checked: tuple[str | None, int] = (None, -1)
        self._drop_lock = threading.Lock()

    @classmethod
    def open(cls, kb: KnowledgeBase, db: Database | Path) -> Learning:
        """The learned phrasings in the service database `db`, applied to `kb`'s agent searches."""
        store = LearnedStore(db)
        learning = cls(store, LearnedIndex(store, kb.embedder), kb.searcher)
        learning.start()
        return learning

    def start(self) -> None:
        self.searcher.learned = self.index
        try:
            self.drop_absent()
        except DB_ERRORS as exc:  # a read-only or broken database: searches go on, the poll retries
            log.error("learned phrasings could not be checked at start-up (%s)", first_line(exc))
        self.index.start(on_poll=self.drop_absent)

    def close(self) -> None:
        self.index.stop()
        self.store.close()

    # -- votes ---------------------------------------------------------------------------------------------
    def vote(self, query: QueryRow, sop_id: str, vote: int, who: str, vector: np.ndarray) -> Outcome | None:
        """Apply a staff vote on `sop_id` for a logged search; `vector` is the search text's embedding."""
        if query.source != "search" or query.client is not None:
            return None  # a chat question or a search is the tenant's, whoever votes on it
        if vote > 0:
            outcome, _ = self.store.learn(
                sop_id=sop_id,
                phrasing=query.query,
                vector=vector,
                embedder=self.index.embedder.name,
                source="vote",
                who=who,
                query_id=query.id,
            )
            return outcome
        ids = set(self.store.ids_with_key(sop_id, query.query)) | set(self.index.near_ids(sop_id, vector, query.query))
        return "rejected" if self.store.remove(sorted(ids), by=f"vote:{who}") else "unchanged"

    # -- opens and copies ----------------------------------------------------------------------------------
    def reformulated(self, before: QueryRow, after: QueryRow, sop_id: str) -> bool:
        """Whether `before` is a search the agent left unused for `after`, in other words, shortly before: then what
        they opened or copied after it answers `before`'s words too (a training manager's trial: a confident wrong
        first result taught nothing and reached no report). Not a search being typed (门 → 门锁没电了), nor one
        whose first result was that SOP already."""
        if before.source != "search" or before.id == after.id or not 0 < after.ts - before.ts <= REFORMULATED_S:
            return False
        first, then = phrasing_key(before.query), phrasing_key(after.query)
        if not first or first[:2] == then[:2]:  # the console's rule for one search being typed
            return False
        try:
            shown = json.loads(before.result_ids or "[]")
        except ValueError:
            return False
        return not shown or shown[0] != sop_id

    def event(self, query: QueryRow, sop_id: str, kind: EventType, who: str, embed: Embed) -> EventOutcome:
        """Record an open or a copy; teach the phrasing once enough similar searches picked the same SOP."""
        event_id = self.store.add_event(query_id=query.id, sop_id=sop_id, kind=kind, who=who)
        if query.source != "search" or query.client is not None:  # (a tenant's words, whoever opened the SOP)
            return EventOutcome(event_id, 0, 0, None)
        recent = self.store.recent_events(sop_id, time.time() - EVENT_DAYS * 86400)
        texts = list(dict.fromkeys([query.query, *(text for _, text in recent)]))
        vectors = dict(zip(texts, embed(texts), strict=True))
        key = phrasing_key(query.query)
        pairs = char_pairs(key)
        overlap = self.index.config.overlap

        def similar(text: str) -> bool:
            other = phrasing_key(text)
            if other == key:
                return True
            cos = float(vectors[text] @ vectors[query.query])
            return (1 - overlap) * cos + overlap * dice(pairs, char_pairs(other)) >= EVENT_SIMILAR

        close = [qid for qid, text in recent if similar(text)]
        searches = len(set(close))
        learned: Outcome | None = None
        enough = len(close) >= EVENT_MIN and searches >= EVENT_SEARCHES
        if enough and self._was_removed(sop_id, key, vectors[query.query]):
            learned = "rejected"  # (a trial: a trainer's delete came back within a minute as a variant, 降不下来了)
        elif enough:
            learned, _ = self.store.learn(
                sop_id=sop_id,
                phrasing=query.query,
                vector=vectors[query.query],
                embedder=self.index.embedder.name,
                source="events",
                who=who,
                query_id=query.id,
            )
        return EventOutcome(event_id, len(close), searches, learned)

    def _was_removed(self, sop_id: str, key: str, vector: np.ndarray) -> bool:
        """Whether a 👎 or a trainer removed this phrasing from the SOP, or one near-identical to it (as a 👎 removes):
        opens and copies never teach it again, only a new 👍 does."""
        q = vector / max(float(np.linalg.norm(vector)), 1e-12)
        for other, v in self.store.removed(sop_id, self.index.embedder.name):
            if other == key or (
                len(v) == len(q) and float(v @ q) / max(float(np.linalg.norm(v)), 1e-12) >= self.index.config.near
            ):
                return True
        return False

    # -- keeping pairs in step with the SOPs -----------------------------------------------------------------
    def drop_absent(self) -> None:
        """Forget pairs of SOPs that are no longer published and whose deletion the version history records (a
        trainer deleted them, on any replica). A SOP missing only from this replica's index keeps its pairs, unused
        while it is missing: one host started before its `kb ingest`, or a file moved away by hand and back, deleted
        every replica's learned phrasings of SOPs the others still served (an operator's trial)."""
        with self._drop_lock:
            # Read the published pointer without refreshing the searcher: its refresh timing stays the requests'.
            generation = self.searcher.store.published()
            version = self.store.version()
            if (generation, version) == self._checked or generation is None:
                return
            if self.searcher.refresh() != generation:
                # Compare with the newest published generation: publishing only moves forward, so what it lacks was
                # deleted (a searcher still on an older one must not drop the pairs of a SOP published since).
                self.searcher.refresh(force=True)
            catalog = self.searcher.catalog
            gone = [s for s in self.store.sop_ids() if s not in catalog]
            if gone:
                deleted = self.store.deleted_sops()
                gone = [s for s in gone if s in deleted]
            if gone and self.store.drop_sops(gone):
                log.info("dropped learned phrasings of deleted SOPs: %s", ", ".join(gone))
            self._checked = (generation, version)

    # -- trainers ------------------------------------------------------------------------------------------
    def promote(self, learned_id: int, publisher: Publisher, *, author: str, force: bool) -> PublishResult:
        """Add a learned phrasing to its SOP's front-matter `examples` as a new published version."""
        pair = self.store.get(learned_id)
        if pair is None or pair.removed_ts is not None:
            raise NotFoundError(f"没有编号为 {learned_id} 的学到的问法 / unknown learned phrasing {learned_id}")
        text, version = publisher.source(pair.sop_id)
        sop = self.searcher.catalog.get(pair.sop_id)
        if sop is not None and pair.phrasing in sop.meta.examples:
            raise VersionConflictError(
                f"“{pair.phrasing}” 已在 SOP {pair.sop_id} 的示例问法中 / already one of the SOP's examples"
            )
        result = publisher.put(
            pair.sop_id,
            add_example(text, pair.phrasing).encode("utf-8"),
            base_version=version,
            author=author,
            force=force,
            unchecked=(pair.phrasing,),
        )
        self.store.mark_promoted(learned_id, result.version)
        return result


_EXAMPLES = re.compile(r"^examples\s*:(.*)$")
_PLAIN = re.compile(r"^[\w\u3400-\u9fff][\w\u3400-\u9fff ，。、？！（）·]*$")


def _yaml_item(text: str) -> str:
    """The phrasing as a YAML scalar: plain when that is unambiguous, else double-quoted."""
    return text if _PLAIN.match(text) and not text.endswith(" ") else json.dumps(text, ensure_ascii=False)


def add_example(markdown: str, phrasing: str) -> str:
    """The SOP's Markdown with `phrasing` appended to its front-matter `examples` (other lines untouched)."""
    lines = markdown.split("\n")
    bounds = split_front_matter(lines)
    if bounds is None or bounds[1] < 0:
        raise NotFoundError("SOP 文件缺少 --- 文件头，无法添加示例 / the SOP has no front matter")
    start, end = bounds
    item = _yaml_item(phrasing)
    at = next((i for i in range(start, end) if _EXAMPLES.match(lines[i])), None)
    if at is None:
        return "\n".join([*lines[:end], "examples:", f"  - {item}", *lines[end:]])
    inline = _EXAMPLES.match(lines[at]).group(1).strip()  # type: ignore[union-attr]
    if inline and not inline.startswith("#"):
        # A flow list (`examples: [a, b]`) or a single value: rewrite it as a block list.
        values = yaml.safe_load(inline)
        existing = values if isinstance(values, list) else [values]
        block = [f"  - {_yaml_item(str(v))}" for v in existing]
        return "\n".join([*lines[:at], "examples:", *block, f"  - {item}", *lines[at + 1 :]])
    last, indent = at, "  "
    for i in range(at + 1, end):
        stripped = lines[i].lstrip()
        if stripped.startswith("- "):
            last, indent = i, lines[i][: len(lines[i]) - len(stripped)]
        elif stripped and lines[i][:1].isspace():
            last = i  # an item's continuation line
        elif stripped:
            break  # the next key
    return "\n".join([*lines[: last + 1], f"{indent}- {item}", *lines[last + 1 :]])


def publish_examples(
    publisher: Publisher, sop_id: str, phrasings: Sequence[str], *, author: str, force: bool
) -> PublishResult:
    """Add `phrasings` (those not yet among the SOP's examples) to its front-matter `examples` as one new published
    version: a trainer confirming suggested tenant phrasings (kb_service/training/suggest.py)."""
    text, version = publisher.source(sop_id)  # NotFoundError for an unknown SOP
    sop = publisher.kb.searcher.catalog.get(sop_id)
    existing = set(sop.meta.examples) if sop is not None else set()
    new = [p for p in dict.fromkeys(x.strip() for x in phrasings) if p and p not in existing]
    if not new:
        raise VersionConflictError("这些问法已在 SOP 的示例问法中 / already among the SOP's examples")
    for phrasing in new:
        text = add_example(text, phrasing)
    return publisher.put(sop_id, text.encode("utf-8"), base_version=version, author=author, force=force)
