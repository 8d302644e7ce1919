"""The ingest pipeline: parse → validate → chunk → embed → index, incremental and crash-safe.

A run copies the published generation, deletes the chunks of changed and removed documents, embeds and adds
only the changed documents' chunks, seals the copy and publishes it in one atomic step. Until that step the
previous generation keeps serving; a run killed half-way leaves an unpublished copy that the next run removes.

A run that indexes everything again because the layout changed, or because the published generation is damaged,
takes the vectors of the chunks that generation holds intact instead of embedding them again (a chunk's id comes from
everything embedded for it); only `--rebuild` re-embeds every chunk.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingest.chunker import chunk_sop, embedding_text, expansion_chunk, lexical_text
from ingest.documents import Corpus
from ingest.locking import WriterLock, file_writer_lock
from kb_service.embedding.embedders import Embedder
from kb_service.errors import ConfigError, IndexCorruptError, IndexMismatchError, KbError, first_line
from kb_service.models import Chunk, Issue, Sop
from kb_service.search.catalog import IndexedDoc, indexed_docs, indexed_sops
from kb_service.store.base import IndexPoint, StoredVectors, Vectors, VectorStore
from kb_service.store.layout import LAYOUT_FIELD
from kb_service.text.lexical import DEFAULT_REF_LENGTH, LexicalEncoder

EMBED_BATCH = 64
SUPERSEDED_GRACE = 60.0  # seconds a superseded generation stays for processes that have not followed yet
log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    chunks: int = 0
    embedded_chunks: int = 0
    reused_chunks: int = 0  # vectors taken from the published generation instead of embedded again
    seconds: float = 0.0
    generation: str | None = None
    relayout: str | None = None  # "old → new" when the vector layout changed and everything was re-indexed
    repaired: str | None = None  # the damaged published generation everything was indexed again from
    lost: str | None = None  # the published generation whose folder was gone: everything was indexed anew

    @property
    def ok(self) -> bool:
        return not self.failed


def new_generation_name() -> str:
    return datetime.now(UTC).strftime("g%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class Indexer:
    def __init__(
        self,
        data_dir: Path,
        store: VectorStore,
        embedder: Embedder,
        lexical: LexicalEncoder,
        lock: WriterLock | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        # Shared with trainers' publishing, which holds it around a whole publish (re-entrant, see locking.py).
        self.lock = lock or file_writer_lock(data_dir)

    def _lock(self, purpose: str) -> AbstractContextManager[None]:
        """One writer at a time, across processes (CLI ingest and API publishing)."""
        return self.lock.hold(purpose)

    def check_compatible(self, generation: str, built_with: set[str]) -> None:
        """Refuse an index built by another embedder (`built_with`: the embedder names its documents record)."""
        info = self.store.info(generation)
        if (built_with and built_with != {self.embedder.name}) or (info.dim and info.dim != self.embedder.dim):
            raise IndexMismatchError(
                f"索引由嵌入模型 {'/'.join(sorted(built_with)) or '?'}（{info.dim} 维）构建，当前配置为 "
                f"{self.embedder.name}（{self.embedder.dim} 维），不能混用。请运行 `kb ingest --rebuild` 重新建立索引。"
                f" / The index was built with another embedder; re-ingest with `kb ingest --rebuild`."
            )

    def sync(
        self, corpus: Corpus, *, rebuild: bool = False, progress: Progress | None = None, allow_empty: bool = False
    ) -> IngestReport:
        """Make the published index match the corpus (only the documents that changed are re-embedded). A corpus
        without a single SOP file never empties an index that has documents, unless `allow_empty`."""
        started = time.perf_counter()
        report = IngestReport(failed=corpus.errors, warnings=corpus.warnings)
        with self._lock("同步索引 / indexing the SOP folder"):
            current, docs = self._published_or_damaged(rebuild, report)
            if not corpus.sops and not corpus.failed_paths and not allow_empty:
                held = len(indexed_docs(self.store, current) if rebuild and current else docs)  # rebuild: docs = {}
                if held or report.repaired:
                    raise ConfigError(
                        f"SOP 文件夹里没有任何 SOP 文件，而索引中有 {held} 篇：未做任何更改。若确实要清空索引，请用"
                        f" `kb ingest --allow-empty` / the folder holds no SOP file: the index ({held} documents) is"
                        " kept; `kb ingest --allow-empty` empties it on purpose"
                    )
            report.relayout = self._relayout(docs)
            reuse = self._reusable(current, docs) if (report.relayout or report.repaired) and not rebuild else None
            if report.relayout or report.repaired:  # never copy vectors stored one way into a generation configured
                rebuild, docs = True, {}  # another way (their values are taken point by point: `reuse`)
            self._set_ref_length(docs, list(corpus.sops.values()))
            kept_paths = set(corpus.failed_paths)  # a broken file keeps its last good version serving
            changed: list[Sop] = []
            for sop_id, sop in corpus.sops.items():
                old = docs.get(sop_id)
                if old is None:
                    report.added.append(sop_id)
                    changed.append(sop)
                elif (
                    old.content_hash != sop.content_hash
                    or old.path != sop.path
                    or old.expansion != self.expansion_id(sop)
                ):
                    report.updated.append(sop_id)
                    changed.append(sop)
                else:
                    report.unchanged.append(sop_id)
            report.removed = [i for i, d in docs.items() if i not in corpus.sops and d.path not in kept_paths]
            report.generation = current
            if current and not rebuild and not changed and not report.removed:
                for stale in self._retired(keep=(current,)):  # a killed run's copy goes even when nothing changed
                    self.store.drop(stale)
                report.chunks = self.store.info(current).points
                report.seconds = time.perf_counter() - started
                return report
            report.generation = self._build(
                current if not rebuild else None,
                changed,
                [*report.updated, *report.removed],
                report,
                progress,
                optimize=True,
                reuse=reuse,
            )
        report.seconds = time.perf_counter() - started
        return report

    def apply(
        self, upserts: Sequence[Sop], removals: Sequence[str], verify: Callable[[str], None] | None = None
    ) -> IngestReport:
        """Publish a change to a few documents (used by trainers' publishing), same path as `sync`.

        `verify(generation)` runs on the sealed, unpublished generation; if it raises, nothing is published."""
        started = time.perf_counter()
        report = IngestReport()
        with self._lock("发布 / publishing"):
            current, docs = self._published(use_it=True)
            self._set_ref_length(docs, list(upserts))
            for sop in upserts:
                (report.updated if sop.meta.id in docs else report.added).append(sop.meta.id)
            report.removed = [r for r in removals if r in docs]
            changed, base = list(upserts), current
            report.relayout = self._relayout(docs)
            reuse = None
            if report.relayout:  # re-index every document the published generation holds, from its recorded SOP
                skip = {s.meta.id for s in upserts} | set(removals)
                changed += [s for s in indexed_sops(self.store, str(current)) if s.meta.id not in skip]
                base, reuse = None, self._reusable(current, docs)
            deleted = [*report.updated, *report.removed]
            report.generation = self._build(base, changed, deleted, report, None, verify, reuse=reuse)
        report.seconds = time.perf_counter() - started
        return report

    def _published_or_damaged(self, rebuild: bool, report: IngestReport) -> tuple[str | None, dict[str, IndexedDoc]]:
        """`_published`, or a damaged published generation noted in `report.repaired` (everything is indexed again,
        its intact vectors taken)."""
        try:
            current, docs = self._published(use_it=not rebuild)
            report.lost = self.store.lost() if current is None else None
            if report.lost:  # deleted by hand (an operator's trial: the ingest then said nothing about it)
                log.warning("the published index %s is gone (its folder was deleted): indexing every SOP", report.lost)
            return current, docs
        except IndexCorruptError as exc:
            report.repaired = self.store.published()
            log.warning("the published index is damaged (%s): indexing every SOP again", first_line(exc))
            return report.repaired, {}

    def _published(self, use_it: bool) -> tuple[str | None, dict[str, IndexedDoc]]:
        """The published generation and, when it is to be built upon, what it holds (checked compatible)."""
        current = self.store.published()
        if current is None or not use_it:
            return current, {}
        docs = indexed_docs(self.store, current)
        self.check_compatible(current, {d.embedder for d in docs.values()})
        return current, docs

    def _relayout(self, docs: dict[str, IndexedDoc]) -> str | None:
        """ "old → new" when the published documents were indexed with another vector layout than configured."""
        wanted = self.store.layout.name
        found = sorted({d.layout for d in docs.values()} - {wanted})
        if not found:
            return None
        log.warning("index layout changed (%s → %s): re-indexing every document", "/".join(found), wanted)
        return f"{'/'.join(found)} → {wanted}"

    def _build(
        self,
        base: str | None,
        changed: list[Sop],
        deleted: list[str],
        report: IngestReport,
        progress: Progress | None,
        verify: Callable[[str], None] | None = None,
        optimize: bool = False,
        reuse: StoredVectors | None = None,
    ) -> str:
        name = new_generation_name()
        # Leftovers of runs that were killed before publishing are never read: remove them.
        published = self.store.published()
        for stale in self._retired(keep=(base, published)):
            self.store.drop(stale)
        self.store.create(name, self.embedder.dim, copy_from=base)
        self.store.delete_sops(name, deleted)
        total = len(changed)
        try:
            for done, sop in enumerate(changed, start=1):
                self.store.upsert(name, self.points_for(sop, reuse, report))
                if progress:
                    progress(done, total)
        finally:
            if reuse is not None:
                reuse.close()
        self.store.seal(name, optimize=optimize)
        report.chunks = self.store.info(name).points
        if verify is not None:
            try:
                verify(name)
            except BaseException:
                self.store.drop(name)
                raise
        self.store.publish(name)
        # Keep the previous generation one round so readers still holding it can finish.
        for old in self._retired(keep=(name, base)):
            self.store.drop(old)
        return name

    def _retired(self, keep: tuple[str | None, ...]) -> list[str]:
        """Generations to drop: all but `keep`, except one superseded less than `SUPERSEDED_GRACE` seconds ago.
        Another worker process or replica may still serve it until it follows the pointer (every 2 s, longer on a
        busy host): two publishes in quick succession dropped the generation it was on, and its searches failed."""
        sealed = {g: self.store.sealed_at(g) for g in self.store.generations()}
        now = time.time()
        out = []
        for old, at in sealed.items():
            if old in keep:
                continue
            # Superseded when the next generation was sealed; a generation never sealed (a killed run's) never served.
            later = [t for t in sealed.values() if at is not None and t is not None and t > at]
            if not later or now - min(later) >= SUPERSEDED_GRACE or not self._usable(old):
                out.append(old)
        return out

    def _usable(self, name: str) -> bool:
        """Whether a generation could still serve (a damaged one cannot: nobody needs it kept)."""
        try:
            self.store.check(name)
        except KbError:
            return False
        return True

    def _set_ref_length(self, docs: dict[str, IndexedDoc], sops: list[Sop]) -> None:
        """Reuse the index's recorded BM25 reference length; a new index measures it on the corpus."""
        if docs:
            self.lexical.ref_length = next(iter(docs.values())).ref_length
            return
        lengths = [len(self.lexical.terms(lexical_text(c))) for sop in sops for c in chunk_sop(sop)]
        self.lexical.ref_length = float(sum(lengths) / len(lengths)) if lengths else DEFAULT_REF_LENGTH

    def expansion_id(self, sop: Sop) -> str:
        """The id of the SOP's lexicon expansion chunk as it would be indexed now ("" when the lexicon names none of
        its title): a lexicon that changed since a SOP was indexed re-indexes it."""
        chunk = expansion_chunk(sop, self.lexical.glossary)
        return chunk.id if chunk is not None else ""

    def points_for(
        self, sop: Sop, stored: StoredVectors | None = None, report: IngestReport | None = None
    ) -> list[IndexPoint]:
        """The SOP's points. The vectors of the chunks `stored` holds (the published generation, same embedder) are
        taken from it, the others embedded; `report` counts both."""
        chunks = chunk_sop(sop, self.lexical.glossary)
        expansion = next((c.id for c in chunks if c.section_kind == "expansion"), "")
        vectors = {i: v for i, v in (stored.vectors([c.id for c in chunks]) if stored else {}).items() if self._fits(v)}
        fresh = [c for c in chunks if c.id not in vectors]
        vectors.update(self._embedded(fresh))
        if report is not None:
            report.embedded_chunks += len(fresh)
            report.reused_chunks += len(chunks) - len(fresh)
        points: list[IndexPoint] = []
        for chunk in chunks:
            dense, sent = vectors[chunk.id]
            lex, py = self.lexical.doc_vectors(lexical_text(chunk))
            points.append(
                IndexPoint(
                    id=chunk.id,
                    dense=dense,
                    sentences=sent,
                    lex=lex,
                    py=py,
                    payload=self._payload(chunk, sop, expansion),
                )
            )
        return points

    def _fits(self, vectors: tuple[np.ndarray, np.ndarray]) -> bool:
        return (
            vectors[0].shape == (self.embedder.dim,)
            and vectors[1].ndim == 2
            and vectors[1].shape[1] == self.embedder.dim
        )

    def _embedded(self, chunks: list[Chunk]) -> Vectors:
        """The chunks' passage vectors and sentence vectors, embedded in one pass."""
        passages = [embedding_text(c) for c in chunks]
        sentence_lists = [c.sentences or [c.heading] for c in chunks]
        vectors = self._embed(passages + [s for sl in sentence_lists for s in sl])
        dense, rest = vectors[: len(chunks)], vectors[len(chunks) :]
        out: Vectors = {}
        offset = 0
        for chunk, vec, sl in zip(chunks, dense, sentence_lists, strict=True):
            out[chunk.id] = (vec, rest[offset : offset + len(sl)])
            offset += len(sl)
        return out

    def _recorded_embedders(self, generation: str) -> set[str]:
        """The embedders a generation's recorded overviews name, read alone (its other files may be damaged)."""
        recorded = getattr(self.store, "checked_overviews", None)
        return {str(h.payload.get("embedder")) for h in recorded(generation)} if recorded is not None else set()

    def _reusable(self, generation: str | None, docs: dict[str, IndexedDoc]) -> StoredVectors | None:
        """The vectors of `generation` a new one may take: made by this embedder (read from its recorded overviews,
        checked alone, when it is damaged) and intact; None when they cannot be read so (everything is embedded)."""
        if generation is None:
            return None
        try:
            made_by = {d.embedder for d in docs.values()} if docs else self._recorded_embedders(generation)
            if made_by != {self.embedder.name}:
                return None
            return self.store.stored_vectors(generation)
        except Exception as exc:  # any damage (the engine's own errors too): nothing is taken, everything embedded
            log.warning("the vectors of %s cannot be taken (%s): embedding every chunk", generation, first_line(exc))
            return None

    def _payload(self, chunk: Chunk, sop: Sop, expansion: str) -> dict[str, object]:
        # The sentences are what the sentence vectors were embedded from; no reader needs their text (a third of
        # the payload's JSON; a tenth of the compressed payload file at 100k: docs/benchmarks.md, session 18).
        payload: dict[str, object] = chunk.model_dump(mode="json", exclude={"sentences"})
        if chunk.section_kind == "overview":
            payload.update(
                content_hash=sop.content_hash,
                expansion_id=expansion,
                path=sop.path,
                embedder=self.embedder.name,
                lexical_ref_length=self.lexical.ref_length,
                **{LAYOUT_FIELD: self.store.layout.name},
                # One JSON string, not a nested object: a search reads its result SOPs from here, and building
                # the nested Python objects was a third of the grouping stage at 100k (docs/benchmarks.md,
                # session 18); pydantic parses the string instead. Readers accept both forms.
                sop=sop.model_dump_json(),
            )
        return payload

    def _embed(self, texts: list[str]) -> np.ndarray:
        parts = [self.embedder.embed(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)
