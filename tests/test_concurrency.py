"""Request-path machinery under concurrency: coalesced query embeddings and the background query log."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from kb_service.coalesce import CoalescingEmbedder
from kb_service.embedders import HashEmbedder, UseEmbedder
from kb_service.logbook import ID_BLOCK, Logbook


class SlowEmbedder:
    """Records every batch it is asked for; each call takes a while, so concurrent callers pile up."""

    name = "slow"
    dim = 8

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.inner = HashEmbedder(dim=8)
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        pass

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
        time.sleep(0.02)
        if self.fail_on in texts:
            raise RuntimeError("model failed")
        return self.inner.embed(texts)


def test_concurrent_queries_share_model_calls_and_get_their_own_vectors() -> None:
    slow = SlowEmbedder()
    emb = CoalescingEmbedder(slow, max_batch=4)
    texts = [f"问题{i}" for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        vectors = list(pool.map(lambda t: emb.embed([t]), texts))
    expected = HashEmbedder(dim=8).embed(texts)
    for got, want in zip(vectors, expected, strict=True):
        assert got.shape == (1, 8)
        np.testing.assert_allclose(got[0], want)
    assert len(slow.calls) < len(texts)  # batched
    assert max(len(c) for c in slow.calls) <= 4  # bounded
    assert sorted(t for c in slow.calls for t in c) == sorted(texts)  # each embedded exactly once
    assert (emb.batches, emb.queries) == (len(slow.calls), 12)


def test_a_lone_query_is_embedded_at_once_and_batches_pass_through() -> None:
    slow = SlowEmbedder()
    emb = CoalescingEmbedder(slow)
    emb.embed(["一个问题"])
    emb.embed(["文档一", "文档二"])
    assert slow.calls == [["一个问题"], ["文档一", "文档二"]]


def test_a_failing_batch_fails_every_waiter_and_the_next_query_works() -> None:
    slow = SlowEmbedder(fail_on="坏")
    emb = CoalescingEmbedder(slow)
    barrier = threading.Barrier(6)

    def one(text: str) -> str:
        barrier.wait()
        try:
            emb.embed([text])
            return "ok"
        except RuntimeError:
            return "error"

    with ThreadPoolExecutor(6) as pool:
        texts = ["坏", "a", "b", "c", "d", "e"]
        outcomes = dict(zip(texts, pool.map(one, texts), strict=True))
    assert outcomes["坏"] == "error"  # nobody hangs; the others either shared its batch (error) or got a vector
    assert set(outcomes.values()) <= {"ok", "error"}
    assert emb.embed(["好"]).shape == (1, 8)


@pytest.mark.slow
def test_coalesced_use_vectors_match_single_query_vectors() -> None:
    use = UseEmbedder(threads=2)
    texts = ["天花板漏水怎么办", "门锁没电了进不去", "想提前退租押金怎么退", "热水器不出热水"]
    alone = np.stack([use.embed([t])[0] for t in texts])
    together = use.embed(texts)
    assert float((alone * together).sum(axis=1).min()) > 0.9999


def test_query_log_hands_out_unique_ids_across_processes_and_writes_in_the_background(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    a, b = Logbook(db), Logbook(db)  # two serving processes sharing one database
    ids = [
        log.log_query(source="search", audience="agent", query=f"问题 {i} 13812345678", result_ids=["x"], top_score=0.5)
        for i in range(ID_BLOCK + 10)
        for log in (a, b)
    ]
    assert len(set(ids)) == len(ids)
    deadline = time.time() + 5
    while time.time() < deadline:  # the writer threads store the rows without anyone asking
        with sqlite3.connect(db) as raw:
            if raw.execute("SELECT COUNT(*) FROM queries").fetchone()[0] == len(ids):
                break
        time.sleep(0.05)
    else:
        pytest.fail("query-log rows were not written in the background")
    rows = a.rows("SELECT id, query FROM queries")
    assert {r["id"] for r in rows} == set(ids)
    assert all("13812345678" not in r["query"] for r in rows)  # masked before it is stored
    a.close()
    b.close()


def test_feedback_right_after_a_search_keeps_its_query_and_close_writes_what_is_queued(tmp_path: Path) -> None:
    log = Logbook(tmp_path / "db.sqlite3")
    qid = log.log_query(source="search", audience="agent", query="停水", result_ids=["water"], top_score=0.7)
    log.add_feedback(sop_id="water", vote=1, source="console", query_id=qid)
    assert log.rows("SELECT query_id FROM feedback")[0]["query_id"] == qid
    log.log_query(source="chat", audience="public", query="最后一条", result_ids=[], top_score=None)
    log.close()
    again = Logbook(tmp_path / "db.sqlite3")
    assert [r["query"] for r in again.rows("SELECT query FROM queries ORDER BY ts")] == ["停水", "最后一条"]
    nxt = again.log_query(source="search", audience="agent", query="新的", result_ids=[], top_score=None)
    assert nxt > qid  # a new process continues after the ids already handed out
    again.close()


def test_rows_written_the_old_way_never_take_an_id_from_a_reserved_block(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    log = Logbook(db)
    mine = log.log_query(source="search", audience="agent", query="停电", result_ids=[], top_score=None)
    with sqlite3.connect(db) as raw:  # a writer relying on AUTOINCREMENT (the previous release, mid-upgrade)
        old = raw.execute(
            "INSERT INTO queries (ts, source, audience, query, result_ids) VALUES (?, 'search', 'agent', '旧', '[]')",
            (time.time(),),
        ).lastrowid
    assert old is not None and old >= mine + ID_BLOCK - 1
    later = [
        log.log_query(source="search", audience="agent", query="x", result_ids=[], top_score=None) for _ in range(3)
    ]
    log.close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT COUNT(*) FROM queries").fetchone()[0] == 5
    assert old not in later
