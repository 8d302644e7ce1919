"""The service database behaves the same on SQLite and PostgreSQL (kb_service/db/): every test here runs on both
(`db_url`: SQLite always, PostgreSQL when KB_TEST_DATABASE_URL names a server, as .ci/run does), and databases made
by releases before migrations are upgraded in place."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from api.ratelimit import SharedRateLimiter
from kb_service.db import migrate
from kb_service.db.deployment_mark import MARK
from kb_service.db.engine import Database
from kb_service.db.logbook import FALLBACK_BASE, Logbook, VersionRecord, has_pending_versions
from kb_service.embedding.embedders import HashEmbedder
from kb_service.errors import ConfigError, VersionConflictError
from kb_service.learning.store import LearnedStore
from kb_service.settings import get_settings
from kb_service.trainer.gap_store import GapReports
from kb_service.trainer.gaps import GapReporter
from tests.helpers import FIXTURES, ROOT, SOPS, free_port


def open_db(db_url: str, tmp_path: Path) -> Database:
    return Database(db_url) if db_url else Database.sqlite(tmp_path / "service.sqlite3")


def pending(sop_id: str, version: int, content: str = "text", action: str = "publish") -> VersionRecord:
    return VersionRecord(
        sop_id, version, time.time(), action, "trainer", f"{sop_id}.md", content, "pending", "h", b"old"
    )


def test_the_query_log_and_feedback(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    a, b = Logbook(db), Logbook(db)
    try:
        ids = [log.log_query(source="search", audience="agent", query=f"停水 {i} 13812345678", result_ids=["water"],
                             top_score=0.5, client="203.0.113.9" if i % 2 else None)
               for i, log in enumerate([a, b, a, b])]  # fmt: skip
        assert len(set(ids)) == 4 and max(ids) < FALLBACK_BASE  # two processes' blocks never overlap
        a.flush()
        b.flush()
        rows = a.rows("SELECT id, query, client, handoff FROM queries ORDER BY ts")
        assert [r["id"] for r in rows[:4]] == ids and "13812345678" not in rows[0]["query"]  # masked
        assert rows[1]["client"] == a.client_key("203.0.113.9") == b.client_key("203.0.113.9")  # one shared salt
        assert a.add_feedback(sop_id="water", vote=1, source="search", query_id=ids[1], comment="手机 13812345678")
        a.add_feedback(sop_id="water", vote=-1, source="chat", query_id=123456789)  # unknown query: kept, unlinked
        fb = a.rows("SELECT query_id, vote, comment FROM feedback ORDER BY id")
        assert [(f["query_id"], f["vote"]) for f in fb] == [(ids[1], 1), (None, -1)]
        assert "13812345678" not in fb[0]["comment"]
        assert a.status().ok and a.status().rows_written == 2 and b.status().rows_written == 2
    finally:
        a.close()
        b.close()


def test_a_row_with_a_fallback_id_gets_a_fresh_one_past_every_reserved_block(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    log = Logbook(db)
    try:
        with log._ids:  # as when no reserved block was at hand
            log._next_id = log._block_end = 0
            log._spare = None
        fallback = log.log_query(source="search", audience="agent", query="q", result_ids=[], top_score=None)
        assert fallback >= FALLBACK_BASE and log.status().fallback_ids == 1
        log.flush()
        (row,) = log.rows("SELECT id FROM queries")
        assert row["id"] < FALLBACK_BASE
        blocks = log.rows("SELECT next_id FROM id_blocks WHERE name = 'queries'")
        assert row["id"] >= blocks[0]["next_id"]  # the database's counter was moved past the reserved blocks
    finally:
        log.close()


def test_versions_compare_and_set_pending_rows_and_replicas(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    a, b = Logbook(db, replica="a" if db.shared else ""), Logbook(db, replica="b" if db.shared else "")
    try:
        a.add_versions([pending("leak", 1, action="import"), pending("leak", 2, "v2")], expected_latest=0)
        # pending rows count: v2 is on its way (another replica's is named: a refresh would not help)
        with pytest.raises(VersionConflictError, match="正由另一副本（a）发布" if db.shared else "已更新到版本 2"):
            b.add_versions([pending("leak", 3)], expected_latest=1)
        assert a.versions("leak") == [] and a.latest_version("leak") == 0
        assert [r.version for r in a.pending_versions()] == [1, 2]
        assert b.pending_versions() == ([] if db.shared else a.pending_versions())  # another replica's to settle
        a.mark_live("leak", 2)
        assert [(r.version, r.state, r.previous) for r in b.versions("leak")] == [(1, "live", None), (2, "live", None)]
        assert b.latest_live()["leak"].content == "v2" and b.version("leak", 2).content == "v2"  # type: ignore[union-attr]
        b.add_versions([pending("leak", 3, "v3")], expected_latest=2)
        assert has_pending_versions(db if db.shared else db.path, b.replica)  # type: ignore[arg-type]
        b.discard_pending("leak", 3)
        assert b.latest_version("leak") == 2 and not b.pending_versions()
        assert not has_pending_versions(db if db.shared else db.path, b.replica)  # type: ignore[arg-type]
    finally:
        a.close()
        b.close()


def test_concurrent_saves_of_one_version_have_exactly_one_winner(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    logs = [Logbook(db) for _ in range(4)]
    outcomes: list[str] = []
    start = threading.Barrier(len(logs))

    def save(log: Logbook, n: int) -> None:
        start.wait()
        try:
            log.add_versions([pending("water", 1, f"writer {n}")], expected_latest=0)
            outcomes.append("won")
        except VersionConflictError:
            outcomes.append("409")

    threads = [threading.Thread(target=save, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(outcomes) == ["409", "409", "409", "won"]
        assert len(logs[0].pending_versions()) == 1
    finally:
        for log in logs:
            log.close()


def test_learned_phrasings(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    log = Logbook(db)
    store = LearnedStore(db)
    try:
        qid = log.log_query(source="search", audience="agent", query="屋顶漏水 13812345678", result_ids=[], top_score=1)
        log.flush()
        assert store.query(qid).query == "屋顶漏水 [手机号]"  # type: ignore[union-attr]
        vector = np.arange(4, dtype=np.float32)
        kw = {"sop_id": "leak", "vector": vector, "embedder": "hash", "who": "agent:1"}
        outcome, masked = store.learn(phrasing="屋顶漏水 13812345678", source="vote", query_id=qid, **kw)  # type: ignore[arg-type]
        assert outcome == "learned" and store.version() == 1 and "13812345678" not in store.get(masked).phrasing  # type: ignore[union-attr]
        outcome, pair = store.learn(phrasing="屋顶漏水", source="events", query_id=qid, **kw)  # type: ignore[arg-type]
        assert outcome == "learned" and pair != masked
        assert store.learn(phrasing="屋顶 漏水！", source="events", query_id=qid + 1, **kw) == ("confirmed", pair)  # type: ignore[arg-type]
        assert store.learn(phrasing="屋顶漏水", source="events", query_id=qid + 1, **kw) == ("unchanged", pair)  # type: ignore[arg-type]
        first = store.for_sop("leak")[0]
        assert first.id == pair and first.confirmations == 1  # one person's two searches on one day: one
        assert (
            store.learn(phrasing="屋顶漏水", source="events", query_id=qid + 5, **{**kw, "who": "agent:2"})[0]
            == "confirmed"
        )  # type: ignore[arg-type]
        with store._tx() as tx:  # the first person's searches were the day before yesterday
            tx.execute("UPDATE learned_confirmations SET ts = ts - 172800 WHERE who = 'agent:1'")
        store.learn(phrasing="屋顶漏水", source="events", query_id=qid + 6, **kw)  # type: ignore[arg-type]
        assert store.for_sop("leak")[0].confirmations == 3  # agent:1 on two days, agent:2 once
        assert np.array_equal(np.frombuffer(store.active()[0].vector, dtype=np.float32), vector)
        assert store.remove([pair, 99999], by="trainer:1") == 1
        assert store.learn(phrasing="屋顶漏水", source="events", query_id=qid + 2, **kw) == ("rejected", pair)  # type: ignore[arg-type]
        assert store.learn(phrasing="屋顶漏水", source="vote", query_id=qid + 3, **kw) == ("learned", pair)  # type: ignore[arg-type]
        store.mark_promoted(pair, 4)
        assert store.get(pair).promoted_version == 4  # type: ignore[union-attr]
        assert store.add_event(query_id=qid, sop_id="leak", kind="copy", who="agent:1") > 0
        assert store.recent_events("leak", since=0) == [(qid, "屋顶漏水 [手机号]")]
        assert store.sop_ids() == {"leak"} and store.ids_with_key("leak", "屋顶漏水!") == [pair]
        before = store.version()
        assert store.drop_sops(["leak"]) == 2 and store.version() == before + 1 and store.active() == []
    finally:
        store.close()
        log.close()


def test_rate_limits_are_shared_by_every_limiter_of_one_database(db_url: str, tmp_path: Path) -> None:
    shared = Database(db_url) if db_url else None
    if shared is not None:
        migrate.upgrade(shared)
    a = SharedRateLimiter(tmp_path / "ratelimit.sqlite3", shared)
    b = SharedRateLimiter(tmp_path / "ratelimit.sqlite3", shared)
    try:
        answers = [(a if i % 2 else b).check("search", "198.51.100.1", 4) for i in range(6)]
        assert answers[:4] == [None] * 4 and all(r is not None and 1 <= r <= 16 for r in answers[4:])
        assert a.check("chat", "198.51.100.1", 4) is None and b.check("search", "198.51.100.2", 4) is None
        assert a.status().ok and a.status().failures == 0
        # With PostgreSQL nothing of the service state is written to SQLite: no limits file appears.
        assert (tmp_path / "ratelimit.sqlite3").exists() is (shared is None)
    finally:
        a.close()
        b.close()


def test_the_gap_report_reads_and_stores_on_the_database(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    log = Logbook(db)
    try:
        asked = [("门禁卡丢了", [], None), ("门禁卡丢了", [], None), ("停水", ["water"], 0.9)]
        for i, (query, ids, conf) in enumerate(asked):
            client = f"203.0.113.{i}"
            log.log_query(
                source="chat",
                audience="public",
                query=query,
                result_ids=ids,
                top_score=conf,
                confidence=conf,
                client=client,
            )
        # A weak agent search whose first result the agent opened found what it needed: no gap (an EXISTS on events)
        weak = log.log_query(
            source="search", audience="agent", query="门锁没电了", result_ids=["lock"], top_score=0.5, confidence=0.1
        )
        log.flush()
        LearnedStore(db).add_event(query_id=weak, sop_id="lock", kind="open", who="agent-a")
        reports = GapReports(GapReporter(log, HashEmbedder(), 0.5))
        snapshot = reports._compute("fixed:x", 0, time.time() + 1)
        assert snapshot.total_queries == 4 and snapshot.found == ["lock", "water"]
        assert reports._stored("fixed:x").computed_at == snapshot.computed_at  # type: ignore[union-attr]
        assert [r["query"] for r in log.rows("SELECT query FROM gap_questions")] == ["门禁卡丢了"]
    finally:
        log.close()


def test_processes_starting_together_migrate_once(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url, tmp_path)
    results: list[bool] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        results.append(migrate.upgrade(db))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True] and migrate.current(db) == migrate.head()


def test_a_database_made_by_the_release_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    """The fixture is `sqlite3 .dump` of a database the previous release made (query, feedback, a live and a
    pending version, a learned pair, an event, a stored gap report)."""
    path = tmp_path / "service.sqlite3"
    with sqlite3.connect(path) as raw:
        raw.executescript((FIXTURES / "service-db-before-migrations.sql").read_text(encoding="utf-8"))
    assert migrate.current(Database.sqlite(path)) is None
    log = Logbook(path)
    store = LearnedStore(path)
    try:
        assert migrate.current(log.db) == migrate.head()
        assert [(r.version, r.action) for r in log.versions("leak")] == [(1, "import")]
        (still,) = log.pending_versions()  # an interrupted publish is still settled after the upgrade
        assert (still.version, still.previous, still.replica) == (2, b"old", "")
        qid = log.log_query(source="search", audience="agent", query="新的", result_ids=[], top_score=None)
        log.flush()
        assert qid > 1 and [r["id"] for r in log.rows("SELECT id FROM queries ORDER BY id")] == [1, qid]
        assert log.add_feedback(sop_id="leak", vote=1, source="search", query_id=1) == 2
        assert [p.phrasing for p in store.for_sop("leak")] == ["屋顶漏水了"] and store.version() == 1
        assert log.rows("SELECT body FROM gap_reports WHERE key = 'k'")[0]["body"] == "{}"
    finally:
        store.close()
        log.close()
    assert not migrate.upgrade(Database.sqlite(path))  # done once


def test_kb_db_status_reads_without_creating_and_upgrade_makes_the_database(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    data = tmp_path / "data"
    env = {"KB_DATA_DIR": str(data), "KB_DATABASE_URL": ""}
    missing = CliRunner().invoke(app, ["db", "status"], env=env)
    assert missing.exit_code == 1 and "尚无服务数据库" in missing.output, missing.output
    assert not data.exists()  # a status check created nothing
    assert CliRunner().invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    status = CliRunner().invoke(app, ["db", "status"], env=env)
    assert status.exit_code == 0 and migrate.head() in status.output, status.output


def test_a_postgresql_deployments_data_directory_is_never_opened_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    """An operator's trial started a server on the shared data directory from another folder: the .env with
    KB_DATABASE_URL went unread, and the server ran on a new SQLite file there, without authentication (no accounts:
    trial mode), serving staff-only text to anyone. A process on PostgreSQL marks the directory; without
    KB_DATABASE_URL every command that opens the service database refuses it, until the mark is removed on purpose."""
    data = tmp_path / "data"
    with_password = pg_url.replace("://kb@", "://kb:S3cretPW@", 1)  # the test server trusts any password
    Database.from_settings(get_settings(data_dir=data, database_url=with_password)).engine.dispose()
    mark = (data / MARK).read_text(encoding="utf-8")
    assert pg_url.rsplit("/", 1)[1] in mark and "S3cretPW" not in mark  # where it is, never its password
    with pytest.raises(ConfigError, match="KB_DATABASE_URL"):
        Database.from_settings(get_settings(data_dir=data, database_url=""))
    env = {**os.environ, "KB_DATA_DIR": str(data), "KB_DATABASE_URL": "", "KB_SOPS_DIR": str(SOPS)}
    for command in (["serve", "--port", str(free_port())], ["ingest"], ["users", "add", "王芳"]):
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        said = "".join((done.stdout + done.stderr).split())
        assert done.returncode == 2 and "属于使用PostgreSQL" in said and "Traceback" not in said, (command, said)
    assert not list(data.glob("*.sqlite3*"))  # nothing written beside the replicas' index
    (data / MARK).unlink()  # on purpose: the embedded database from now on
    assert Database.from_settings(get_settings(data_dir=data, database_url="")).dialect == "sqlite"
