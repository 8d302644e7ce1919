"""The learned channel of agent search: a query is compared with every learned phrasing (one matrix product with the
query vector the search computed anyway, plus character overlap), and the SOPs those phrasings teach are lifted.

A near-identical phrasing (similarity ≥ `near`, or the same normalised text) puts its SOP first; a similar one adds
a boost that grows with the similarity and with how often agents confirmed it. Each process keeps the learned
vectors in memory and reloads them when the store's change counter moves (polled every `POLL_SECONDS` on a
background thread), so a vote taken by one process counts in every process within about a second.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field

import numpy as np

from kb_service.db.engine import DB_ERRORS
from kb_service.embedding.embedders import Embedder
from kb_service.errors import first_line
from kb_service.learning.store import ActiveRow, LearnedStore, phrasing_key
from kb_service.text.normalize import normalize, strip_fillers

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
CANDIDATES = 32  # learned rows (best cosine first) whose character overlap is computed


@dataclass(frozen=True)
class LearnedConfig:
    """How learned phrasings rank; chosen with benchmarks/learning_curve.py on the tuning set (see docs/learning.md)."""

    near: float = 0.9  # at or above this similarity the phrasing's SOP goes first
    floor: float = 0.5  # below this similarity a phrasing adds nothing (unrelated phrasings score 0.2-0.4)
    weight: float = 0.5  # the boost just below `near`, relative to the best score of the search
    overlap: float = 0.3  # share of the character-pair overlap (Dice) in the similarity, beside the cosine
    confirm_gain: float = 0.25  # each doubling of confirmations adds this share to the boost


@dataclass(frozen=True)
class LearnedMatch:
    """The best learned phrasing of one SOP for a query."""

    learned_id: int
    sop_id: str
    phrasing: str
    similarity: float
    cosine: float
    overlap: float
    confirmations: int
    exact: bool


@dataclass
class _Snapshot:
    version: int = -1
    rows: list[ActiveRow] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    pairs: list[frozenset[str]] = field(default_factory=list)
    by_key: dict[str, list[int]] = field(default_factory=dict)


def char_pairs(key: str) -> frozenset[str]:
    return frozenset(key[i : i + 2] for i in range(len(key) - 1)) or frozenset(key)


def dice(a: frozenset[str], b: frozenset[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


class LearnedIndex:
    """The learned phrasings of one process, refreshed from the store."""

    def __init__(self, store: LearnedStore, embedder: Embedder, config: LearnedConfig | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config or LearnedConfig()
        self._snap = _Snapshot()
        self._vectors: dict[int, np.ndarray] = {}  # by row id: reloads embed only phrasings not seen before
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._snap.rows)

    # -- keeping up with the store -------------------------------------------------------------------------
    def start(self, on_poll: Callable[[], None] | None = None) -> None:
        """Poll the store's change counter on a background thread; `on_poll` runs after each poll."""
        self.sync()
        self._thread = threading.Thread(target=self._poll, args=(on_poll,), name="learned-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self, on_poll: Callable[[], None] | None) -> None:
        failing = False
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.sync()
                if on_poll is not None:
                    on_poll()
                failing = False
            except (*DB_ERRORS, OSError) as exc:  # the database may be busy or read-only: keep what we have
                if not failing:
                    log.warning("could not read learned phrasings: %s", first_line(exc))
                failing = True

    def sync(self) -> bool:
        """Reload the pairs if the store changed; True when it did."""
        with self._lock:
            version = self.store.version()
            if version == self._snap.version:
                return False
            rows = self.store.active()
            vectors = []
            missing = [r for r in rows if r.id not in self._vectors]
            fresh = self._embed(missing)
            for r in rows:
                vec = self._vectors.get(r.id)
                if vec is None:
                    vec = fresh[r.id]
                vectors.append(vec)
            self._vectors = {r.id: v for r, v in zip(rows, vectors, strict=True)}
            by_key: dict[str, list[int]] = {}
            for i, r in enumerate(rows):
                by_key.setdefault(r.key, []).append(i)
            matrix = np.vstack(vectors) if vectors else np.zeros((0, self.embedder.dim), dtype=np.float32)
            self._snap = _Snapshot(version, rows, matrix, [char_pairs(r.key) for r in rows], by_key)
            return True

    def _embed(self, rows: list[ActiveRow]) -> dict[int, np.ndarray]:
        """Stored vectors of this process's model; phrasings another model embedded are embedded again."""
        out: dict[int, np.ndarray] = {}
        redo: list[ActiveRow] = []
        for r in rows:
            vec = np.frombuffer(r.vector, dtype=np.float32)
            if r.embedder == self.embedder.name and vec.shape[0] == self.embedder.dim:
                out[r.id] = vec
            else:
                redo.append(r)
        if redo:
            vecs = self.embedder.embed([strip_fillers(normalize(r.phrasing)) for r in redo])
            out.update({r.id: v for r, v in zip(redo, vecs, strict=True)})
        return out

    def near_ids(self, sop_id: str, query_vector: np.ndarray, phrasing: str) -> list[int]:
        """Active pairs of `sop_id` a 👎 on `phrasing` removes: the same phrasing, or one near-identical to it."""
        snap = self._snap
        key = phrasing_key(phrasing)
        out = []
        sims = snap.vectors @ query_vector if snap.rows else np.zeros(0)
        for i, r in enumerate(snap.rows):
            if r.sop_id == sop_id and (r.key == key or float(sims[i]) >= self.config.near):
                out.append(r.id)
        return out

    # -- matching ------------------------------------------------------------------------------------------
    def match(self, query_vector: np.ndarray, query: str, allowed: Container[str]) -> dict[str, LearnedMatch]:
        """The best learned phrasing per SOP (of those in `allowed`) at or above the floor similarity."""
        snap = self._snap
        if not snap.rows:
            return {}
        cfg = self.config
        cos = snap.vectors @ query_vector
        # Only rows whose cosine can reach the floor with full character overlap are looked at more closely.
        top = np.flatnonzero(cos >= (cfg.floor - cfg.overlap) / (1 - cfg.overlap))
        if len(top) > CANDIDATES:
            top = top[np.argpartition(-cos[top], CANDIDATES)[:CANDIDATES]]
        key = phrasing_key(query)
        exact = set(snap.by_key.get(key, ()))
        pairs = char_pairs(key)
        best: dict[str, LearnedMatch] = {}
        for i in {*top.tolist(), *exact}:
            row = snap.rows[i]
            if row.sop_id not in allowed:
                continue
            c = float(cos[i])
            o = dice(pairs, snap.pairs[i])
            is_exact = i in exact
            sim = 1.0 if is_exact else (1 - cfg.overlap) * c + cfg.overlap * o
            if sim < cfg.floor:
                continue
            prev = best.get(row.sop_id)
            if prev is None or (sim, row.confirmations) > (prev.similarity, prev.confirmations):
                best[row.sop_id] = LearnedMatch(
                    row.id, row.sop_id, row.phrasing, sim, c, o, row.confirmations, is_exact
                )
        return best

    def boost(self, match: LearnedMatch, score: float, top_score: float) -> float:
        """What a match adds to its SOP's `score`, given the best score of the search without learned pairs."""
        cfg = self.config
        top = max(top_score, 1e-6)
        if match.similarity >= cfg.near:
            return (2 + match.similarity) * top - score  # above every SOP without one; nearer phrasings first
        gain = (match.similarity - cfg.floor) / (cfg.near - cfg.floor)
        confirmed = 1 + cfg.confirm_gain * math.log2(max(1, match.confirmations))
        return top * cfg.weight * gain * confirmed
