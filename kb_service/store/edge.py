"""The embedded default: Qdrant's in-process engine (qdrant-edge-py), one shard directory per generation."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from kb_service.errors import REPAIR, IndexCorruptError, IndexNotReadyError
from kb_service.store import files, manifest, overviews, parts, payload_file, record_file, vector_file
from kb_service.store.base import (
    HEAVY_FIELDS,
    KEYWORD_FIELDS,
    OVERVIEWS,
    ChannelQuery,
    FilterSpec,
    IndexPoint,
    SearchSpec,
    StoredVectors,
    StoreHit,
    StoreInfo,
)
from kb_service.store.edge_search import ShardSearch
from kb_service.store.edge_translate import EdgeTranslator, EngineVectors
from kb_service.store.layout import IndexLayout
from kb_service.store.translate import Page, hits, pages

log = logging.getLogger("kb.store")
POINTER = "CURRENT"
_BATCH = 512
# Below this many points an exact scan is fast enough; above it, build HNSW graphs when a full ingest seals a
# generation (measured at 10k chunks: the exact max-sim scan over sentence vectors took 5 ms, HNSW 1.8 ms).
HNSW_MIN_POINTS = 5_000
# Qdrant builds graphs and int8 codes only for segments above its indexing threshold (KB of vectors; None: its
# default). Benchmarks and tests set 1 (and HNSW_MIN_POINTS 0) to run a small corpus through the indexed, quantised
# path a large index serves from.
INDEXING_THRESHOLD_KB: int | None = None
# From this many points a new generation with codes records its originals for rescoring (vector_file.py): below it the
# engine's mapped originals cost less memory than reading them from the file costs time (10k chunks: 86 MB of RSS
# against 2.4 ms a search; 100k: 886 MB against 2.8 ms; docs/benchmarks.md, session 57).
VECTORS_FILE_MIN_POINTS = 20_000

_QE = EdgeTranslator()
_OWNED = _QE.owned(FilterSpec())  # every point but the parts of split ones (parts.py)
_R = TypeVar("_R", bound=record_file.RecordFile)


class EdgeStore:
    """Generations live in `<root>/<name>/`; the `CURRENT` file names the published one.

    Sealing records every file's size and digest (`manifest.py`); a generation is opened only after its files match
    (content digests, once per process), and `check` compares sizes of an open one, so a damaged file is refused with
    an `IndexCorruptError` instead of reaching the engine."""

    def __init__(self, root: Path, hnsw_ef: int = 128, layout: IndexLayout | None = None) -> None:
        self.root = root
        self.layout = layout or IndexLayout()
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._payloads: dict[str, payload_file.PayloadFile | None] = {}  # by generation, opened with its shard
        # The points upserted into each copied generation not sealed yet (the others' payload records are copied)
        self._changed: dict[str, set[str]] = {}
        # Originals: upserted into each generation being built, of a copied one's source, of sealed ones (vector_file)
        self._pending: dict[str, vector_file.Pending] = {}
        self._sources: dict[str, vector_file.VectorFile | None] = {}
        self._vectors: dict[str, vector_file.VectorFile | None] = {}
        self._lock = threading.Lock()
        self._hnsw_ef = hnsw_ef

    def _config(self, dim: int, indexing_threshold_kb: int | None = None) -> qe.EdgeConfig:
        return _QE.config(dim, self.layout, indexing_threshold_kb or INDEXING_THRESHOLD_KB)

    def _shard(self, name: str) -> qe.EdgeShard:
        with self._lock:
            shard = self._shards.get(name)
        if shard is not None:
            return shard
        path = self.root / name
        if not path.is_dir():
            raise IndexNotReadyError(f"index generation {name} does not exist")
        opened = self._open(path)  # outside the lock: searches on other generations go on while it is verified
        with self._lock:
            shard = self._shards.setdefault(name, opened)
        if shard is not opened:  # another thread opened it meanwhile
            opened.close()
        return shard

    @staticmethod
    def _open(path: Path, skip: tuple[str, ...] = ()) -> qe.EdgeShard:
        """Load a generation from disk once its files match its manifest (`skip`: files not copied with it)."""
        try:
            manifest.check(path, full=True, skip=skip)
            shard = qe.EdgeShard.load(str(path))
        except IndexCorruptError as exc:
            reason = str(exc)
        except Exception as exc:  # the engine reports the damage it notices itself as a plain Exception
            reason = f"索引版本 {path.name} 无法打开 / index generation {path.name} cannot be opened: {exc}"
        else:
            if not manifest.exists(path):
                log.warning("index generation %s has no checksums (sealed by an older version)", path.name)
            return shard
        raise IndexCorruptError(f"{reason}（{REPAIR}）")

    def check(self, name: str) -> None:
        """Cheap check of an open generation: its files are all there at their sealed sizes, and no read of its
        payload or vector file found a damaged record."""
        with self._lock:
            files = (self._payloads.get(name), self._vectors.get(name))
            damaged = [f.fault for f in files if f is not None and f.fault]
        try:
            if damaged:
                raise damaged[0]
            manifest.check(self.root / name, full=False)
        except IndexNotReadyError:
            # Opening it again must verify it from disk. The handle is not closed here: requests still holding it
            # finish first, and it closes when the last one lets go.
            with self._lock:
                self._shards.pop(name, None)
                self._payloads.pop(name, None)
                self._vectors.pop(name, None)
            raise

    def _pointed(self) -> str | None:
        pointer = self.root / POINTER
        return (pointer.read_text().strip() or None) if pointer.is_file() else None

    def published(self) -> str | None:
        name = self._pointed()
        return name if name and (self.root / name).is_dir() else None

    def lost(self) -> str | None:
        name = self._pointed()
        return name if name and not (self.root / name).is_dir() else None

    def generations(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def create(self, name: str, dim: int, copy_from: str | None) -> None:
        target = self.root / name
        if copy_from is not None:
            # Sealed generations are immutable and have no WAL, so their files are complete while open. The source
            # stays open: it is usually the published generation, and closing it under a search on another thread
            # failed ("Already borrowed") and stopped a replica's follower (session 18).
            # The source's recorded originals are read from its own file (kept open), not copied: a publish copies the
            # records of the points it leaves alone when it is sealed.
            source = self.root / copy_from
            recorded = vector_file.open_checked(source)
            files.copy_tree(source, target, ignore=vector_file.left_out(source))
            try:  # the copy, checked against its source's manifest, so damage is never carried into a new generation
                shard = self._open(target, skip=tuple(vector_file.FILES))
            except IndexCorruptError:
                shutil.rmtree(target, ignore_errors=True)
                if recorded is not None:
                    recorded.close()
                raise
            self._sources[name] = recorded
            manifest.remove(target)
            overviews.remove(target)
            payload_file.set_aside(target)
            self._changed[name] = set()
        else:
            shard = qe.EdgeShard.create(str(target), self._config(dim))
            for key in KEYWORD_FIELDS:
                shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
        if self.layout.recorded and (copy_from is None or self._sources[name] is not None):  # else nothing to add to
            copied = self._sources.get(name)
            rows = copied.rows if copied is not None else self.layout.sentence_rows
            self._pending[name] = vector_file.Pending(target, normalise=not self.layout.dot, rows=rows)
        with self._lock:
            self._shards[name] = shard

    def forget(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
            self._payloads.pop(name, None)  # its file closes when the last search reading it lets go
            self._vectors.pop(name, None)
        if shard is not None:
            shard.close()

    def upsert(self, name: str, points: Sequence[IndexPoint]) -> None:
        shard = self._shard(name)
        if name in self._changed:
            self._changed[name].update(p.id for p in points)
        if name in self._pending:
            self._pending[name].add(points)
        for batch in _QE.points(points, _BATCH):
            shard.update(qe.UpdateOperation.upsert_points(batch))

    def delete_sops(self, name: str, sop_ids: Sequence[str]) -> None:
        if sop_ids:
            self._shard(name).update(qe.UpdateOperation.delete_points_by_filter(_QE.sop_filter(sop_ids)))

    def seal(self, name: str, optimize: bool = True) -> None:
        shard = self._shard(name)
        info = shard.info()
        pending = self._pending.get(name)
        large = optimize and info.points_count >= max(HNSW_MIN_POINTS, VECTORS_FILE_MIN_POINTS)
        split = pending is not None and pending.rows is not None and (name in self._sources or large)
        if split and pending is not None:  # (a copy's points are split as its source's were)
            self._split(name, pending)
        if name in self._changed and info.indexed_vectors_count and info.points_count:  # a publish's copy
            shard = self._index_changes(name)
        elif optimize and info.points_count >= HNSW_MIN_POINTS:
            shard.optimize()
        shard.flush()
        # Read while the shard is open: closing it below unmaps the payload pages this read touched.
        overviews.write(self.root / name, self.scroll(name, OVERVIEWS, light=True))
        payload_file.write(self.root / name, self._records(name))
        payload_file.discard_aside(self.root / name)
        self._record_vectors(name, split)
        # The first open of a flushed shard still changes its files (it applies journals and completes its config
        # file); do that now, so every later open finds them exactly as the manifest records them.
        path = self.root / name
        self.forget(name)
        qe.EdgeShard.load(str(path)).close()
        manifest.write(path)
        with self._lock:
            self._shards[name] = qe.EdgeShard.load(str(path))

    def _split(self, name: str, pending: vector_file.Pending) -> None:
        """Leave the upserted points their first `rows` sentence rows and give the others to parts (parts.py)."""
        shard, rows, long = self._shard(name), pending.rows, list(pending.long.items())
        if rows is None:
            return
        for start in range(0, len(long), _BATCH):
            kept, split = [], []
            for owner, payload in long[start : start + _BATCH]:
                sentences = pending.sentences(owner)
                kept.append(qe.PointVectors(id=owner, vector={"sent": sentences[:rows].tolist()}))
                made = parts.split(owner, sentences, payload, rows)
                split += [_QE.point(i, {"sent": v.tolist()}, p) for i, v, p in made]
            shard.update(qe.UpdateOperation.update_vectors(kept))
            shard.update(qe.UpdateOperation.upsert_points(split))

    def _index_changes(self, name: str) -> qe.EdgeShard:
        """Index a publish's points in a small segment of their own: in the engine's appendable one every worker held
        its preallocated code files (3 × 32 MB at 512 dimensions: 820 MB RSS in an operator's trial)."""
        dim = self.info(name).dim
        self.forget(name)
        shard = qe.EdgeShard.load(str(self.root / name), self._config(dim, indexing_threshold_kb=1))
        with self._lock:
            self._shards[name] = shard
        shard.optimize()
        return shard

    def _records(self, name: str) -> Iterator[tuple[str, bytes]]:
        """Every point's payload record: of a copied generation, the unchanged points' copied from the source's
        records (a publish at 100k chunks re-encoded all of them, 7.8 s), the others read from the engine."""
        shard, changed = self._shard(name), self._changed.pop(name, None)
        source = payload_file.set_aside_file(self.root / name) if changed is not None else None
        if changed is None or source is None:
            yield from ((hit.id, payload_file.encode(hit.payload)) for hit in self.scroll(name, FilterSpec()))
            return

        def fetch(offset: Any) -> Page:
            return shard.scroll(qe.ScrollRequest(offset=offset, limit=1000, filter=_OWNED, with_payload=False))

        try:
            ids = [hit.id for page in pages(fetch) for hit in hits(page)]
            kept = {i: record for i in ids if i not in changed and (record := source.record(i)) is not None}
            fresh: list[Any] = [i for i in ids if i not in kept]
            read = hits(shard.retrieve(fresh, with_payload=True, with_vector=False)) if fresh else []
            payloads = {hit.id: hit.payload for hit in read}
            yield from ((i, kept[i] if i in kept else payload_file.encode(payloads[i])) for i in ids)
        finally:
            source.close()

    def _record_vectors(self, name: str, split: bool) -> None:
        """Record the sealed generation's originals (vector_file.py): a copied generation's only where its source
        recorded them, a new one's only where the engine built codes (a small index has none to rescore), and
        always where its points were split (the file holds the rows parts took from the engine)."""
        pending, copied = self._pending.pop(name, None), name in self._sources
        source = self._sources.pop(name, None)
        try:
            if pending is None:
                return
            shard = self._shard(name)
            info = shard.info()
            small = not info.indexed_vectors_count or info.points_count < VECTORS_FILE_MIN_POINTS
            if not copied and not split and small:
                return

            def fetch(offset: Any) -> Page:
                return shard.scroll(qe.ScrollRequest(offset=offset, limit=1000, filter=_OWNED, with_payload=False))

            ids = (hit.id for page in pages(fetch) for hit in hits(page))
            facets = payload_file.read_facets(self.root / name)
            written = vector_file.write(self.root / name, ids, pending, source, facets)
            if split and not written:  # the rows the parts took would be lost to rescoring: never publish it
                raise IndexCorruptError(f"index generation {name}: its vectors' originals could not be recorded")
        finally:
            if pending is not None:
                pending.close()
            if source is not None:
                source.close()

    def publish(self, name: str) -> None:
        files.write_file(self.root / POINTER, name.encode())

    def sealed_at(self, name: str) -> float | None:
        try:
            return (self.root / name / manifest.MANIFEST).stat().st_mtime
        except OSError:
            return None

    def drop(self, name: str) -> None:
        self.forget(name)
        self._changed.pop(name, None)
        for unsealed in (self._pending.pop(name, None), self._sources.pop(name, None)):
            if unsealed is not None:
                unsealed.close()
        shutil.rmtree(self.root / name, ignore_errors=True)

    def info(self, name: str) -> StoreInfo:
        shard = self._shard(name)
        points = shard.count(qe.CountRequest(exact=True, filter=_OWNED))  # parts are not chunks
        dim = 0
        records, _ = shard.scroll(qe.ScrollRequest(limit=1, filter=_OWNED, with_vector=["dense"]))
        if records and records[0].vector:
            vec: Any = records[0].vector
            dense = vec.get("dense") if isinstance(vec, dict) else vec
            dim = len(dense) if dense is not None else 0
        return StoreInfo(generation=name, points=points, dim=dim)

    def _opened(self, name: str, cache: dict[str, _R | None], open_at: Callable[[Path], _R | None]) -> _R | None:
        """A sealed generation's recorded file, opened once after the generation (checked by its manifest), or None."""
        self._shard(name)
        with self._lock:
            if name in cache:
                return cache[name]
        opened = open_at(self.root / name)
        with self._lock:
            return cache.setdefault(name, opened)

    def _payload_file(self, name: str) -> payload_file.PayloadFile | None:
        """The sealed generation's payloads read by offset (None: read them from the engine)."""
        return self._opened(name, self._payloads, payload_file.PayloadFile.open_at)

    def scroll(self, name: str, flt: FilterSpec, with_vectors: bool = False, light: bool = False) -> Iterator[StoreHit]:
        shard, condition = self._shard(name), _QE.owned(flt)
        recorded = None if with_vectors else self._payload_file(name)
        payload = False if recorded is not None else qe.PayloadSelector.Exclude(HEAVY_FIELDS) if light else True

        def fetch(offset: Any) -> Page:
            request = qe.ScrollRequest(
                offset=offset, limit=1000, filter=condition, with_payload=payload, with_vector=with_vectors
            )
            return shard.scroll(request)

        found = (hits(page) for page in pages(fetch))
        if recorded is not None:
            exclude = HEAVY_FIELDS if light else ()
            found = (recorded.read([h.id for h in page], exclude=exclude) for page in found)
        return (hit for page in found for hit in page)

    def overviews(self, name: str) -> Iterator[StoreHit]:
        self._shard(name)  # opened (verified against its manifest, the recorded overviews included) before reading
        recorded = overviews.read(self.root / name)
        return iter(recorded) if recorded is not None else self.scroll(name, OVERVIEWS, light=True)

    def checked_overviews(self, name: str) -> list[StoreHit]:
        """The generation's recorded overviews, checked alone against its manifest: what a damaged generation
        published (an engine file or the payload file cut short) can still tell when a publish is settled."""
        path = self.root / name
        manifest.check(path, full=True, only=overviews.FILE)
        recorded = overviews.read(path)
        if recorded is None:
            raise IndexCorruptError(f"索引版本 {name} 没有记录概览 / {name} has no recorded overviews")
        return recorded

    def _vector_file(self, name: str) -> vector_file.VectorFile | None:
        """The sealed generation's recorded originals (None: the engine rescores from its own)."""
        return self._opened(name, self._vectors, vector_file.VectorFile.open_at)

    def _searching(self, name: str) -> ShardSearch:
        return ShardSearch(self._shard(name), self._vector_file(name), self.layout, self._hnsw_ef)

    def search(self, name: str, spec: SearchSpec) -> list[StoreHit]:
        return self._searching(name).fused(spec)

    def search_channel(self, name: str, query: ChannelQuery, flt: FilterSpec) -> list[StoreHit]:
        return self._searching(name).channel(query, flt)

    def retrieve(self, name: str, ids: Sequence[str], fields: Sequence[str] = ()) -> list[StoreHit]:
        recorded = self._payload_file(name)
        if recorded is not None:
            return recorded.read(ids, fields, exclude=HEAVY_FIELDS)
        selector = qe.PayloadSelector.Include(list(fields)) if fields else qe.PayloadSelector.Exclude(HEAVY_FIELDS)
        records = self._shard(name).retrieve(list(ids), with_payload=selector, with_vector=False)
        return hits(records)

    def stored_vectors(self, name: str) -> StoredVectors:
        """The recorded originals, checked alone (the engine's files may be damaged), else the engine's vectors."""
        recorded = vector_file.open_checked(self.root / name)
        return recorded if recorded is not None else EngineVectors(self._shard(name))

    def close(self) -> None:
        with self._lock:
            shards, self._shards = list(self._shards.values()), {}
            recorded = [f for f in [*self._payloads.values(), *self._vectors.values()] if f is not None]
            self._payloads, self._vectors = {}, {}
            unsealed: list[vector_file.Pending | vector_file.VectorFile] = [*self._pending.values()]
            unsealed += [f for f in self._sources.values() if f is not None]
            self._pending, self._sources = {}, {}
        for p in [*recorded, *unsealed]:
            p.close()
        for shard in shards:
            shard.close()
