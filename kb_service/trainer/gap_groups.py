"""Grouping the gap report's questions by meaning, incrementally.

A question's vector and group are stored (`gap_questions`) the first time a report sees it: a later report embeds
only questions it has not seen, in small batches that let searches use the model between them, and compares them
with the stored group leaders in one matrix product. Groups are greedy: a new question joins the most similar leader
above SIMILAR, or leads a group of its own. The first assignment stored wins, for every process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import RowMapping

from kb_service.db.engine import DB_ERRORS
from kb_service.db.logbook import Logbook
from kb_service.embedding.embedders import Embedder
from kb_service.errors import first_line

log = logging.getLogger(__name__)

SIMILAR = 0.75  # cosine above which two questions count as the same need (USE-multilingual)
MAX_LEADERS = 5000  # stored groups a new question is compared with (the most recently seen)
KEEP_SECONDS = 180 * 86400  # stored questions no report has seen for this long are forgotten
# Questions embedded per model call: the model serves one call at a time, so a search waits for at most one such
# batch. Measured (USE, a query embedded every 5 ms while 500 new questions were grouped): one call of 500 held a
# query for 1.1 s; batches of 16, 38 ms median; batches of 4, 4 ms median and 15 ms at most.
EMBED_BATCH = 4


def read_table(logbook: Logbook, sql: str, params: Mapping[str, object]) -> list[RowMapping]:
    """Rows of the gap report's own tables: none when a database made by an older release could not be migrated
    (read-only) and lacks them."""
    try:
        return logbook.rows(sql, params)
    except DB_ERRORS as exc:
        if "no such table" not in str(exc) and "does not exist" not in str(exc):
            raise
        return []


@dataclass
class QuestionGroups:
    logbook: Logbook
    embedder: Embedder

    def leaders(self, questions: list[str]) -> dict[str, str]:
        """Each question's group leader, `questions` given most asked first."""
        name, now = self.embedder.name, time.time()
        known = self._stored(name, questions)
        new = [q for q in questions if q not in known]
        if new:
            vectors = self._embed(new)
            stored = [
                r
                for r in read_table(
                    self.logbook,
                    "SELECT query, vector FROM gap_questions WHERE embedder = :name AND leader = query "
                    "ORDER BY seen DESC LIMIT :n",
                    {"name": name, "n": MAX_LEADERS},
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
            sql = "SELECT query, leader FROM gap_questions WHERE embedder = :name AND query IN :chunk"
            rows = read_table(self.logbook, sql, {"name": name, "chunk": chunk})
            known.update((r["query"], r["leader"]) for r in rows)
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
                    "INSERT INTO gap_questions (embedder, query, leader, vector, seen)"
                    " VALUES (:name, :query, :leader, :vector, :now) ON CONFLICT (embedder, query) DO NOTHING",
                    [
                        {"name": name, "query": q, "leader": lead, "vector": v.astype(np.float32).tobytes(), "now": now}
                        for q, lead, v in rows
                    ],
                )
        except DB_ERRORS as exc:
            log.warning("gap groups cannot be stored (%s): they are computed again next time", first_line(exc))

    def _touch(self, name: str, now: float, questions: list[str]) -> None:
        try:
            with self.logbook.transaction() as c:
                c.executemany(
                    "UPDATE gap_questions SET seen = :now WHERE embedder = :name AND query = :query",
                    [{"now": now, "name": name, "query": q} for q in questions],
                )
                c.execute(
                    "DELETE FROM gap_questions WHERE seen < :old OR embedder != :name",
                    {"old": now - KEEP_SECONDS, "name": name},
                )
        except DB_ERRORS as exc:
            log.warning("gap groups cannot be updated (%s)", first_line(exc))
