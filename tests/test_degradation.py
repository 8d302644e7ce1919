"""Search never depends on the service database being writable (kb_service/db/logbook.py): with the SQLite file
read-only, every search and chat question is answered, the query log degrades visibly (/healthz) and feedback is a
clear 503; once the file is writable again the log resumes without a restart.

The file is made read-only for real: chmod 0444 for a normal user; as root, whom chmod does not stop, the immutable
attribute (chattr +i), which stops root too. A test that cannot do either is skipped, never faked."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.knowledge_base import KnowledgeBase
from kb_service.db.logbook import FALLBACK_BASE, Logbook
from kb_service.embedding.embedders import HashEmbedder
from kb_service.settings import Settings
from tests.helpers import hash_settings

AGENT = "agent-key-123456"
KEYS = f"agent:{AGENT},trainer:trainer-key-123456"
STAFF = {"Authorization": f"Bearer {AGENT}"}


@contextmanager
def unwritable(*files: Path) -> Iterator[str]:
    """Make the existing `files` unwritable for this process; yields how. Never the -shm file: SQLite maps it into
    memory, and an immutable mapping kills the process (SIGBUS)."""
    existing = [f for f in files if f.exists()]
    if os.geteuid() != 0:
        modes = {f: f.stat().st_mode for f in existing}
        for f in existing:
            f.chmod(0o444)
        try:
            yield "chmod"
        finally:
            for f, mode in modes.items():
                f.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    done = subprocess.run(["chattr", "+i", *map(str, existing)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"running as root and chattr +i failed ({done.stderr.strip()}): cannot make a file read-only")
    try:
        yield "chattr +i"
    finally:
        subprocess.run(["chattr", "-i", *map(str, existing)], check=True)


def really_unwritable(path: Path) -> bool:
    try:
        with path.open("r+b"):
            return False
    except PermissionError:
        return True


def settings_for(tmp_path: Path, sops: Path) -> Settings:
    s = hash_settings(tmp_path, sops, api_keys=KEYS, public_search_rate_limit=100_000, chat_rate_limit=100_000)
    kb = KnowledgeBase.from_settings(s, embedder=HashEmbedder())
    assert kb.ingest().ok
    kb.close()
    return s


def count_rows(db: Path, table: str = "queries") -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as raw:
        return int(raw.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def wait_for(predicate: Callable[[], Any], seconds: float) -> Any:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    return None


def searches(c: TestClient, n: int) -> list[int]:
    """`n` searches, alternately without a key and as an agent; every one must be answered."""
    ids = []
    for i in range(n):
        r = c.post("/v1/search", json={"query": f"天花板漏水 {i}"}, headers=STAFF if i % 2 else {})
        assert r.status_code == 200, r.text
        assert r.json()["results"]
        ids.append(r.json()["query_id"])
    return ids


def query_log(c: TestClient) -> dict[str, Any]:
    r = c.get("/healthz", headers=STAFF)
    assert r.status_code == 200 and r.json()["status"] == "ok"  # searches work: the service is healthy
    log: dict[str, Any] = r.json()["query_log"]
    return log


def degraded_and_answering(c: TestClient, before: int) -> None:
    ids = searches(c, 200)
    assert len(set(ids)) == len(ids) and min(ids) > before
    chat = c.post("/v1/chat", json={"question": "天花板漏水怎么办"})
    assert chat.status_code == 200 and chat.json()["answer"]
    vote = {"sop_id": "repair-leak-ceiling", "vote": 1, "query_id": ids[1]}
    fb = c.post("/v1/feedback", json=vote, headers=STAFF)
    assert fb.status_code == 503, fb.text
    assert fb.json()["error"]["code"] == "database_unavailable" and "不可写" in fb.json()["error"]["message"]
    assert fb.headers["retry-after"] == "5"  # an operator's trial: this one 503 said not when to come back
    log = wait_for(lambda: (lg := query_log(c))["rows_dropped"] >= 201 and lg, 10)
    assert log, query_log(c)
    assert log["status"] == "degraded" and log["failing_since"] is not None and log["last_error"]


def test_a_read_only_database_at_start_up_degrades_the_log_not_the_searches(tmp_path: Path, sops_copy: Path) -> None:
    s = settings_for(tmp_path, sops_copy)
    with TestClient(create_app(s, load_in_background=False)) as c:  # creates the database and logs a search
        first = searches(c, 1)[0]
    db = s.db_path
    before = count_rows(db)
    with ExitStack() as read_only:
        read_only.enter_context(unwritable(db, Path(f"{db}-wal")))
        assert really_unwritable(db)
        with TestClient(create_app(s, load_in_background=False)) as c:  # the service starts on the read-only file
            degraded_and_answering(c, first)
            assert query_log(c)["fallback_ids"] >= 201  # no block could be reserved: every id is a fallback id
            assert "readonly" in query_log(c)["last_error"]
            assert count_rows(db) == before
            read_only.close()
            # Writable again: the writer opens the file afresh and the log resumes, without a restart.
            assert wait_for(lambda: query_log(c)["status"] == "ok", 15), query_log(c)
            later = searches(c, 2)
            assert all(i < FALLBACK_BASE for i in later)
            assert wait_for(lambda: count_rows(db) == before + 2, 5)
            vote = {"sop_id": "repair-leak-ceiling", "vote": 1, "query_id": later[1]}
            assert c.post("/v1/feedback", json=vote, headers=STAFF).status_code == 200


@pytest.mark.skipif(os.geteuid() != 0, reason="only the immutable attribute (root) stops writes to an open file")
def test_the_database_turning_read_only_while_serving(tmp_path: Path, sops_copy: Path) -> None:
    s = settings_for(tmp_path, sops_copy)
    db = s.db_path
    with TestClient(create_app(s, load_in_background=False)) as c:
        ids = searches(c, 20)
        assert wait_for(lambda: count_rows(db) == 20, 5)
        with unwritable(db, Path(f"{db}-wal")):
            assert really_unwritable(db)
            degraded_and_answering(c, max(ids))
            assert count_rows(db) == 20
        assert wait_for(lambda: query_log(c)["status"] == "ok", 15), query_log(c)
        later = searches(c, 2)
        assert wait_for(lambda: count_rows(db) == 22, 5)
        vote = {"sop_id": "repair-leak-ceiling", "vote": -1, "query_id": later[1]}
        assert c.post("/v1/feedback", json=vote, headers=STAFF).status_code == 200
        assert count_rows(db, "feedback") == 1


def test_fallback_ids_never_collide_with_reserved_ones_and_are_never_written(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    log = Logbook(db)
    reserved = log.log_query(source="search", audience="agent", query="停水", result_ids=[], top_score=None)
    log.close()
    with unwritable(db, Path(f"{db}-wal")):
        ro = Logbook(db)
        fallback = [
            ro.log_query(source="search", audience="public", query=f"停电 {i}", result_ids=[], top_score=None)
            for i in range(50)
        ]
        ro.flush()
        status = ro.status()
        ro.close()
    assert all(FALLBACK_BASE <= i < 2**53 for i in fallback) and len(set(fallback)) == 50
    assert not status.ok and status.rows_dropped == 50 and status.fallback_ids == 50
    again = Logbook(db)
    nxt = again.log_query(source="search", audience="agent", query="新的", result_ids=[], top_score=None)
    again.close()
    assert reserved < nxt < FALLBACK_BASE
    with sqlite3.connect(db) as raw:
        assert [r[0] for r in raw.execute("SELECT query FROM queries ORDER BY ts")] == ["停水", "新的"]


def test_serve_without_an_index_says_to_ingest_first(tmp_path: Path, sops_copy: Path) -> None:
    from tests.helpers import start_serve, stop, wait_for

    svc = start_serve(tmp_path / "data", sops_copy, tmp_path / "serve.log", workers=1)
    try:
        assert wait_for(lambda: "kb ingest" in svc.output(), 60), svc.output()
    finally:
        stop(svc)
