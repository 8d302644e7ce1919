"""Grouping the gap report's questions by meaning, incrementally.

A question's vector and group are stored (`gap_questions`) the first time a report sees it: a later report embeds
only questions it has not seen, in small batches that let searches use the model between them, and compares them
with the stored group leaders in one matrix product. Groups are greedy: a new question joins the most similar leader
above SIMILAR, or leads a group of its own. The first assignment stored wins, for every process.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kb_service.db.logbook import Logbook
from kb_service.embedding.embedders import Embedder

log = logging.getLogger(__name__)

SIMILAR = 0.75  # cosine above which two questions count as the same need (USE-multilingual)
MAX_LEADERS = 5000  # stored groups a new question is compared with (the most recently seen)
KEEP_SECONDS = 180 * 86400  # stored questions no report has seen for this long are forgotten
# Questions embedded per model call: the model serves one call at a time, so a search waits for at most one such
# batch. Measured (USE, a query embedded every 5 ms while 500 new questions were grouped): one call of 500 held a
# query for 1.1 s; batches of 16, 38 ms median; batches of 4, 4 ms median and 15 ms at most.
EMBED_BATCH = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS gap_questions (
    embedder TEXT NOT NULL,
    query TEXT NOT NULL,
    leader TEXT NOT NULL,            -- the question that opened its group (a leader's leader is itself)
    vector BLOB NOT NULL,            -- float32, L2-normalised
    seen REAL NOT NULL,              -- when a report last considered it
    PRIMARY KEY (embedder, query)
);
CREATE INDEX IF NOT EXISTS gap_questions_seen ON gap_questions(embedder, seen)
"""


def create_tables(logbook: Logbook, schema: str) -> bool:
    """Create tables of the gap report; False when the database cannot be written (they are then not stored)."""
    try:
        with logbook.transaction() as c:
            for statement in filter(str.strip, schema.split(";")):
                c.execute(statement)
    except sqlite3.Error as exc:
        log.warning("gap report tables cannot be created (%s)", exc)
        return False
    return True


def read_table(logbook: Logbook, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
    """Rows of the gap report's own tables: none when a read-only database could not create them."""
    try:
        return logbook.rows(sql, params)
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return []


@dataclass
class QuestionGroups:
    logbook: Logbook
    embedder: Embedder
    _ready: bool = field(default=False, init=False, repr=False)

    def leaders(self, questions: list[str]) -> dict[str, str]:
        """Each question's group leader, `questions` given most asked first."""
        self._ready = self._ready or create_tables(self.logbook, SCHEMA)
        name, now = self.embedder.name, time.time()
        known = self._stored(name, questions)
        new = [q for q in questions if q not in known]
        if new:
            vectors = self._embed(new)
            stored = [
                r
                for r in read_table(
                    self.logbook,
                    "SELECT query, vector FROM gap_questions WHERE embedder = ? AND leader = query "
                    "ORDER BY seen DESC LIMIT ?",
                    (name, MAX_LEADERS),
                )
                if len(r["vector"]) == vectors.shape[1] * 4
            ]
            n_stored = len(stored)
            names = [r["query"] for r in stored] + [""] * len(new)
            matrix = np.zeros((len(names), vectors.shape[1]), dtype=np.float32)
            for j, r in enumerate(stored):
                matrix[j] = np.frombuffer(r["vector"], dtype=np.float32)
            to_stored = vectors @ matrix[:n_stored].T
            filled = n_stored
            for i, q in enumerate(new):
                sims = np.concatenate([to_stored[i], matrix[n_stored:filled] @ vectors[i]])
                j = int(np.argmax(sims)) if sims.size else -1
                if j >= 0 and sims[j] >= SIMILAR:
                    known[q] = names[j]
                else:  # a group of its own, which the next questions may join
                    known[q] = names[filled] = q
                    matrix[filled] = vectors[i]
                    filled += 1
            self._store(name, now, [(q, known[q], vectors[i]) for i, q in enumerate(new)])
            # Another process may have stored some of these meanwhile: its assignment wins, for every process.
            known.update(self._stored(name, new))
        self._touch(name, now, questions)
        return known

    def _stored(self, name: str, questions: list[str]) -> dict[str, str]:
        known: dict[str, str] = {}
        for i in range(0, len(questions), 500):
            chunk = questions[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT query, leader FROM gap_questions WHERE embedder = ? AND query IN ({marks})"
            known.update((r["query"], r["leader"]) for r in read_table(self.logbook, sql, (name, *chunk)))
        return known

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Small batches with a pause between them: the model is shared with the searches, which get it in between
        (one call for everything held it for seconds and stalled agents' searches)."""
        parts = []
        for i in range(0, len(texts), EMBED_BATCH):
            parts.append(self.embedder.embed(texts[i : i + EMBED_BATCH]))
            time.sleep(0.002)
        return np.concatenate(parts).astype(np.float32)

    def _store(self, name: str, now: float, rows: list[tuple[str, str, np.ndarray]]) -> None:
        try:
            with self.logbook.transaction() as c:
                c.executemany(
                    "INSERT OR IGNORE INTO gap_questions (embedder, query, leader, vector, seen)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(name, q, leader, v.astype(np.float32).tobytes(), now) for q, leader, v in rows],
                )
        except sqlite3.Error as exc:
            log.warning("gap groups cannot be stored (%s): they are computed again next time", exc)

    def _touch(self, name: str, now: float, questions: list[str]) -> None:
        try:
            with self.logbook.transaction() as c:
                c.executemany(
                    "UPDATE gap_questions SET seen = ? WHERE embedder = ? AND query = ?",
                    [(now, name, q) for q in questions],
                )
                c.execute("DELETE FROM gap_questions WHERE seen < ? OR embedder != ?", (now - KEEP_SECONDS, name))
        except sqlite3.Error as exc:
            log.warning("gap groups cannot be updated (%s)", exc)
