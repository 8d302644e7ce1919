"""Request-path machinery under concurrency: the batching search lane and the background query log."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from api.serving.lane import Lane
from kb_service.db.logbook import Logbook
from kb_service.db.query_log import ID_BLOCK
from kb_service.embedding.embedders import HashEmbedder, UseEmbedder


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


def lane_with(embedder: SlowEmbedder, max_batch: int = 4) -> Lane:
    return Lane(embedder.embed, threads=1, max_batch=max_batch)


def test_queued_requests_share_one_embedding_call_and_get_their_own_vectors() -> None:
    slow = SlowEmbedder()
    lane = lane_with(slow)
    texts = [f"问题{i}" for i in range(12)]

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(lane.submit(t, lambda v: v) for t in texts))

    vectors = asyncio.run(main())
    for got, want in zip(vectors, HashEmbedder(dim=8).embed(texts), strict=True):
        np.testing.assert_allclose(got, want)
    assert len(slow.calls) < len(texts)  # batched
    assert max(len(c) for c in slow.calls) <= 4  # bounded
    assert sorted(t for c in slow.calls for t in c) == sorted(texts)  # each embedded exactly once
    assert (lane.batches, lane.jobs) == (len(slow.calls), 12)


def test_a_lone_request_runs_at_once_and_jobs_without_a_query_embed_nothing() -> None:
    slow = SlowEmbedder()
    lane = lane_with(slow)

    async def main() -> tuple[object, object]:
        first = await lane.submit("一个问题", lambda v: v is not None)
        second = await lane.submit(None, lambda v: v)
        return first, second

    assert asyncio.run(main()) == (True, None)
    assert slow.calls == [["一个问题"]]


def test_errors_reach_their_own_requests_and_the_lane_keeps_serving() -> None:
    slow = SlowEmbedder(fail_on="坏")
    lane = lane_with(slow, max_batch=16)

    def boom(_: object) -> str:
        raise ValueError("job failed")

    async def outcome(query: str | None, run: object) -> str:
        try:
            await lane.submit(query, run)  # type: ignore[arg-type]
            return "ok"
        except (RuntimeError, ValueError) as exc:
            return str(exc)

    async def main() -> list[str]:
        together = [outcome("坏", lambda v: "ok"), outcome("a", lambda v: "ok"), outcome(None, lambda v: "ok")]
        together.append(outcome("b", boom))  # submitted in one go: one batch, one embedding call
        return [*await asyncio.gather(*together), await outcome("好", lambda v: "ok")]

    bad, same_batch, no_query, failing_job, after = asyncio.run(main())
    assert bad == same_batch == failing_job == "model failed"  # the batch's embedding failed: all that needed it
    assert no_query == "ok"  # a request with nothing to embed still runs
    assert after == "ok"  # nobody hangs and the next batch works
    assert slow.calls == [["坏", "a", "b"], ["好"]]


def test_a_job_failure_stays_with_its_request() -> None:
    lane = lane_with(SlowEmbedder())

    def boom(_: object) -> str:
        raise ValueError("job failed")

    async def main() -> list[object]:
        return await asyncio.gather(
            lane.submit("a", lambda v: "ok"),
            lane.submit("b", boom),
            lane.submit("c", lambda v: "ok"),
            return_exceptions=True,
        )

    a, b, c = asyncio.run(main())
    assert a == c == "ok"
    assert isinstance(b, ValueError)


def test_the_event_loop_stays_free_and_a_cancelled_request_is_skipped() -> None:
    slow = SlowEmbedder()
    lane = lane_with(slow)
    ran: list[str] = []

    async def main() -> int:
        first = asyncio.create_task(lane.submit("慢", lambda v: ran.append("慢")))
        await asyncio.sleep(0)
        gone = asyncio.create_task(lane.submit("走了", lambda v: ran.append("走了")))
        await asyncio.sleep(0)
        gone.cancel()  # the client went away while its request waited
        ticks = 0
        while not first.done():  # the loop keeps running while the lane's thread embeds (20 ms)
            ticks += 1
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        return ticks

    # Blocked, the loop would not tick at all; on a loaded machine a tick can take several ms (CI saw 3 in 20 ms)
    assert asyncio.run(main()) > 1
    assert ran == ["慢"]
    assert slow.calls == [["慢"]]


@pytest.mark.slow
@pytest.mark.parametrize("token_cache", [0, 4096])
def test_batched_use_vectors_match_single_query_vectors(token_cache: int) -> None:
    use = UseEmbedder(threads=2, token_cache=token_cache)
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


def test_a_job_sees_its_share_of_the_batch_embedding_time() -> None:
    # The hit test reports the query's embed time although the lane embedded it with its batch before the search.
    slow = SlowEmbedder()
    lane = lane_with(slow)

    async def main() -> list[float]:
        return await asyncio.gather(*(lane.submit(f"问题{i}", lambda _: lane.embed_ms()) for i in range(4)))

    shares = asyncio.run(main())
    assert all(ms > 0 for ms in shares)
    assert asyncio.run(lane.submit(None, lambda _: lane.embed_ms())) == 0.0  # nothing embedded for this batch
