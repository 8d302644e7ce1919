"""A sealed generation's vector originals, kept beside the engine's and read by offset to rescore candidates.

The engine searches its in-memory codes (two bits a dimension) and rescores the best candidates with the originals
it maps from disk. Those reads scatter over the file, and each maps the 64 KB around it into the process: at 100k
chunks, 512 dimensions, 704 MB of sentence originals and 171 MB of passage vectors counted in every worker's RSS
(docs/benchmarks.md, session 56). Sealing therefore records every point's originals here as well (its passage
vector, then its sentence vectors, Float16, normalised where the engine compares cosines); a search takes the codes'
candidates from the engine unrescored and rescores them from this file (`rescored.py`): read with `pread`
(`record_file.py`), so the pages stay in the shared page cache and out of the process, and scored with SIMD Float16
dot products (`simsimd`). Only generations of `edge.VECTORS_FILE_MIN_POINTS` or more record them.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import simsimd

from kb_service.errors import REPAIR, IndexCorruptError
from kb_service.store import facets, manifest, parts, record_file
from kb_service.store.base import KEYWORD_FIELDS, IndexPoint, Vectors

DATA = "vectors.bin"
TABLE = "vectors.idx.npz"
PENDING = ".vectors-pending"  # the records of the points upserted into a generation being built
FILES = {DATA, TABLE}
CHANNELS = ("dense", "sent")  # row 0 of a record is the passage vector, the others its sentence vectors
_RECENT = 8  # a thread keeps the scores of its last queries' channels (by id, and by position: `scores_at`)
ReadFacets = Callable[[list[str]], dict[str, facets.Facet]]  # the facets of these points, read elsewhere


def encode(point: IndexPoint, normalise: bool) -> bytes:
    """One point's record: its passage vector and sentence vectors as Float16 rows."""
    rows = np.vstack([np.asarray(point.dense, dtype=np.float32)[None, :], np.asarray(point.sentences, np.float32)])
    if normalise:  # as the engine stores vectors it compares by cosine
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return rows.astype(np.float16).tobytes()


class Pending:
    """The records of the points upserted into a generation being built, appended to a file in it until sealed."""

    def __init__(self, root: Path, normalise: bool, rows: int | None = None) -> None:
        self.path, self.normalise, self.rows = root / PENDING, normalise, rows
        self._file = open(self.path, "w+b")  # noqa: SIM115 (closed when sealed or dropped)
        self.spans: dict[str, tuple[int, int]] = {}
        self.facets: dict[str, facets.Facet] = {}
        # The upserted points with more than `rows` sentence rows, and the payload their parts share (parts.py)
        self.long: dict[str, dict[str, Any]] = {}
        self._at = 0
        self.dim = 0

    def add(self, points: Sequence[IndexPoint]) -> None:
        for p in points:
            record = encode(p, self.normalise)
            self._file.write(record)
            self.spans[p.id] = (self._at, len(record))
            self.facets[p.id] = facets.of(p.payload)
            if self.rows is not None and len(p.sentences) > self.rows:  # (the filtered fields alone)
                self.long[p.id] = {k: p.payload[k] for k in KEYWORD_FIELDS if k in p.payload}
            elif p.id in self.long:
                del self.long[p.id]
            self._at += len(record)
            self.dim = len(p.dense)

    def sentences(self, point_id: str) -> np.ndarray:
        """An upserted point's sentence rows as recorded (Float16 read back as Float32)."""
        self._file.flush()
        at, size = self.spans[point_id]
        raw = os.pread(self._file.fileno(), size, at)
        return np.frombuffer(raw, dtype=np.float16).reshape(-1, self.dim)[1:].astype(np.float32)

    def copy_from(self, source: VectorFile, ids: list[str]) -> bool:
        """Append the records of `ids` from `source`, a run of adjacent ones at a time (a publish at 100k chunks
        copies 800 MB: by the kernel, without reading it into the process). False when one is not recorded there."""
        where, offsets, sizes = source.spans(ids)
        if len(where) != len(ids):
            return False
        self._file.flush()
        order = np.argsort(offsets, kind="stable")
        at, ends = offsets[order].astype(np.int64), (offsets[order] + sizes[order]).astype(np.int64)
        breaks = np.flatnonzero(at[1:] != ends[:-1]) + 1
        for a, b in zip(np.concatenate(([0], breaks)), np.concatenate((breaks, [len(at)])), strict=True):
            start, length = int(at[a]), int(ends[b - 1] - at[a])
            record_file.copy_range(source.fileno(), self._file.fileno(), start, self._at, length)
            for k in order[a:b]:
                self.spans[ids[where[k]]] = (self._at + int(offsets[k]) - start, int(sizes[k]))
            self._at += length
        return True

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def write(
    root: Path, ids: Iterable[str], pending: Pending, source: VectorFile | None, read_facets: ReadFacets | None = None
) -> bool:
    """Record the originals of the generation's points (`ids`): the upserted ones from `pending`, the others copied
    from the generation it was copied from (`source`) to the end of the pending file, which becomes the data file.
    False (nothing written) when a point has neither. Their facets come from the same places; `read_facets` reads
    those a source sealed before facets were recorded lacks (without, the table has none)."""
    ids, upserted = list(ids), set(pending.spans)
    kept = [i for i in ids if i not in upserted]
    if kept and (source is None or not pending.copy_from(source, kept)):
        return False
    keys = [record_file.key(i) for i in ids]
    if any(k is None for k in keys):
        return False
    pending.flush()
    dim = pending.dim or (source.dim if source is not None else 0)
    spans = [pending.spans[i] for i in ids]
    # The points upserted since the generation was built from scratch: they sit in segments of their own
    added = {*source.added, *upserted} & set(ids) if source is not None else set()
    extra = {"dim": dim, "normalised": pending.normalise, "added": np.array(sorted(added), dtype="U36")}
    extra["rows"] = pending.rows or 0  # the engine keeps a point's first `rows` sentence rows, parts the others
    per_point, names = _facets(ids, pending, source if kept else None, read_facets)
    record_file.write_table(root / TABLE, keys, spans, per_point, **extra, **names)  # type: ignore[arg-type]
    os.replace(pending.path, root / DATA)
    return True


def _facets(
    ids: list[str], pending: Pending, source: VectorFile | None, read_facets: ReadFacets | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The points' facets (in the order of `ids`) as the table's arrays; none when one is not known."""
    known = dict(pending.facets)
    if source is not None and source.facets is not None:
        todo = [i for i in ids if i not in known]
        where, at = source.positions(todo)
        known.update(zip([todo[w] for w in where], source.facets.at(at), strict=True))
    missing = [i for i in ids if i not in known]
    if missing and read_facets is not None:
        known.update(read_facets(missing))
    if any(i not in known for i in ids):
        return {}, {}
    return facets.arrays([known[i] for i in ids])


def open_checked(root: Path) -> VectorFile | None:
    """The generation's recorded originals, checked against its manifest first, as the files of a copy are: a
    publish copies them record by record, so damage would otherwise be carried into the new generation, sealed as
    good."""
    recorded = VectorFile.open_at(root)
    if recorded is not None:
        try:
            for name in sorted(FILES):
                manifest.check(root, full=True, only=name)
        except IndexCorruptError as exc:
            recorded.close()
            raise IndexCorruptError(f"{exc}（{REPAIR}）") from None
    return recorded


def left_out(source: Path) -> Callable[[str, list[str]], set[str]]:
    """What a copy of generation `source` leaves out (`shutil.copytree`'s ignore): its recorded originals."""
    return lambda folder, names: FILES & set(names) if Path(folder) == source else set()


class VectorFile(record_file.RecordFile):
    """The recorded originals of one sealed generation (open with `open_at`)."""

    def __init__(self, data: Path, table: Path) -> None:
        super().__init__(data, table)
        self._recent = threading.local()  # each thread's last queries' scores (a search runs on one thread)
        # The points upserted since the generation was built from scratch (by publishes): the engine keeps them in a
        # segment of their own whose codes score on a scale of their own, so a search takes their candidates from
        # the engine apart (`rescored.nearest`). Read once: every search asks.
        self.added = frozenset(str(i) for i in self.extra.get("added", ()))
        self.facets = facets.Facets.from_table(self.extra, len(self._ids))
        self._owners: parts.Owners | None = None
        self._owners_lock = threading.Lock()

    @property
    def rows(self) -> int | None:
        """How many sentence rows a point keeps in the engine, its others in parts (parts.py); None: all."""
        rows = int(self.extra.get("rows", 0))
        return rows or None

    @property
    def owners(self) -> parts.Owners | None:
        """Which point each of the engine's parts belongs to (None: the generation has no parts). Built once."""
        rows = self.rows
        if rows is None:
            return None
        with self._owners_lock:
            if self._owners is None:
                positions = np.flatnonzero(self._sizes // (2 * self.dim) - 1 > rows)
                counts = (self._sizes[positions] // (2 * self.dim) - 1).tolist()
                self._owners = parts.Owners(zip(self.ids_at(positions), counts, strict=True), rows)
            return self._owners

    @functools.cached_property
    def added_points(self) -> set[str]:
        """The points publishes added and their parts in the engine (the engine's ids to search them by)."""
        listed, rows = sorted(self.added), self.rows
        if rows is None or not listed:
            return set(listed)
        where, _, sizes = self.spans(listed)
        counts = (sizes // (2 * self.dim) - 1).tolist()
        return {*listed, *(p for w, n in zip(where, counts, strict=True) for p in parts.ids_of(listed[w], n, rows))}

    def vectors(self, ids: Sequence[str]) -> Vectors:
        """The recorded originals of those of these points the file holds (`StoredVectors`)."""
        out: Vectors = {}
        for i in ids:
            raw = self.record(i)
            if raw is None:
                continue
            if len(raw) % (2 * self.dim) or len(raw) < 4 * self.dim:
                raise self.damaged(f"a record's {len(raw)} bytes")
            rows = np.frombuffer(raw, dtype=np.float16).reshape(-1, self.dim).astype(np.float32)
            out[i] = (rows[0], rows[1:])
        return out

    @classmethod
    def open_at(cls, root: Path) -> VectorFile | None:
        data, table = root / DATA, root / TABLE
        return cls(data, table) if data.is_file() and table.is_file() else None

    @property
    def dim(self) -> int:
        return int(self.extra["dim"])

    def scores(self, ids: Sequence[str], query: np.ndarray, channel: str) -> dict[str, float]:
        """The true similarity of `query` to each recorded point: its passage vector's ("dense"), or its best
        sentence's ("sent", the engine's max-sim of a one-vector query). Unrecorded ids are left out.

        A search asks for the same query's scores several times (the fused search, then the ranker's and the
        confidence's searches of the first SOPs): the scores of this thread's last few queries are kept, and only
        points not yet scored are read."""
        q = self._query(query)
        known = self._known(channel, q)
        todo = [i for i in dict.fromkeys(ids) if i not in known]
        if todo:
            where, at = self.positions(todo)
            if where:
                best = self._best(at, q, channel)
                known.update((todo[w], float(v)) for w, v in zip(where, best, strict=True))
        return {i: known[i] for i in ids if i in known}

    def scores_at(self, positions: np.ndarray, query: np.ndarray, channel: str) -> np.ndarray:
        """`scores` of the points at these table positions, in their order (`within.py`). Both channels' scores are
        read at once and kept for this thread's last queries: the ranker searches the same SOPs' passage vectors,
        sentences and content sentences in turn (three reads of their records: 1.5 ms a search at 100k chunks)."""
        if not len(positions):
            return np.zeros(0, np.float32)
        q = self._query(query)
        known = self._known(f"at-{channel}", q)
        other = self._known("at-sent" if channel == "dense" else "at-dense", q)
        todo = [p for p in dict.fromkeys(positions.tolist()) if p not in known]
        if todo:
            at = np.asarray(todo, dtype=np.int64)
            dense, sent = self._both(at, q)
            known.update(zip(todo, (dense if channel == "dense" else sent).tolist(), strict=True))
            other.update(zip(todo, (sent if channel == "dense" else dense).tolist(), strict=True))
        return np.fromiter((known[p] for p in positions.tolist()), dtype=np.float32, count=len(positions))

    def _query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32)
        return q / max(float(np.linalg.norm(q)), 1e-12) if bool(self.extra["normalised"]) else q

    def _known(self, channel: str, q: np.ndarray) -> dict[str, float]:
        recent: OrderedDict[tuple[str, bytes], dict[str, float]] | None = getattr(self._recent, "scores", None)
        if recent is None:
            recent = self._recent.scores = OrderedDict()
        key = (channel, q.tobytes())
        if key in recent:
            recent.move_to_end(key)
            return recent[key]
        while len(recent) >= _RECENT:
            recent.popitem(last=False)
        return recent.setdefault(key, {})

    def _best(self, positions: np.ndarray, q: np.ndarray, channel: str) -> np.ndarray:
        """The scores of the points at these table positions, in their order."""
        if channel != "dense":
            return self._both(positions, q)[1]
        offsets, _ = self._spans(positions)
        raw = b"".join(self.read_at(int(o), 2 * self.dim) for o in offsets)  # the first row alone
        return self._checked(self._sims(raw, q))

    def _both(self, positions: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The passage vector's and the best sentence's scores of the points at these positions, in their order."""
        offsets, sizes = self._spans(positions)
        raw, order = self.read_many(offsets, sizes)  # the chunks of one SOP lie side by side: one read a run of them
        sims = self._sims(raw, q)
        starts = np.concatenate(([0], np.cumsum(sizes[order].astype(np.int64) // (2 * self.dim))[:-1]))
        # each record's best sentence: its rows after the first
        best = np.maximum.reduceat(np.where(_firsts(starts, len(sims)), -np.inf, sims), starts)
        dense, sent = np.empty(len(positions), np.float32), np.empty(len(positions), np.float32)
        dense[order], sent[order] = self._checked(sims[starts]), self._checked(best)
        return dense, sent

    def _spans(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        row = 2 * self.dim
        offsets, sizes = self.spans_at(positions)
        if np.any(sizes % row) or np.any(sizes < 2 * row):
            raise self.damaged(f"a record's {int(sizes[np.argmax((sizes % row) | (sizes < 2 * row))])} bytes")
        return offsets, sizes

    def _sims(self, raw: bytes, q: np.ndarray) -> np.ndarray:
        """The query's dot product with each row (the query in Float16 as well, as the engine compares it)."""
        rows = np.frombuffer(raw, dtype=np.float16).reshape(-1, self.dim)
        return np.asarray(simsimd.cdist(q.astype(np.float16)[None, :], rows, metric="dot"), dtype=np.float32)[0]

    def _checked(self, scores: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(scores)):  # bytes changed in place (an operator's trial: the same size, so only a
            raise self.damaged("records that are not vectors")  # digest at the next start saw it; results were wrong)
        return scores


def _firsts(starts: np.ndarray, n: int) -> np.ndarray:
    """A mask of the rows that start a record (its passage vector)."""
    mask = np.zeros(n, dtype=bool)
    mask[starts] = True
    return mask
