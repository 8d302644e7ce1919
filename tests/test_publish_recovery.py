"""Publishing as one transaction (ingest/publishing.py): concurrent saves on two server processes have exactly one
winner, a write error changes nothing, and a publish killed at any step is completed or undone at the next start,
ingest or publish. After each, the SOP file, the index and the history agree.

Hash embedder (mechanics only); the kills are real: a subprocess publishes and `os._exit`s at the named step."""

from __future__ import annotations

import errno
import http.client
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.knowledge_base import KnowledgeBase
from ingest.locking import FileWriterLock, file_writer_lock
from ingest.parser import content_hash
from ingest.publishing import STEPS, Publisher, PublishStorageError, with_version
from kb_service.db.logbook import Logbook, VersionRecord, has_pending_versions
from kb_service.embedding.embedders import HashEmbedder
from kb_service.settings import Settings
from kb_service.store import files
from tests.helpers import (
    AGENT,
    KEYS,
    NEW,
    ROOT,
    SOPS,
    TRAINER,
    auth,
    hash_settings,
    put,
    serving,
)
from tests.helpers import api_client as _client

LEAK = "repair-leak-ceiling"
LEAK_PATH = "repair/repair-leak-ceiling.md"
NEW_ID = "wifi-router-reset"
NEW_FILE = f"services/{NEW_ID}.md"  # beside the other SOP of its category (网络), as a new SOP is placed


def edited(original: str, marker: str) -> str:
    return original.replace("## 适用场景", f"## 适用场景\n- {marker}", 1)


# -- a workspace (SOP folder + indexed data) per test, copied from one indexed once ---------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("publish-template")
    shutil.copytree(SOPS, root / "sops")
    kb = KnowledgeBase.from_settings(hash_settings(root, root / "sops"), embedder=HashEmbedder())
    assert kb.ingest().ok
    kb.close()
    return root


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Path:
    for part in ("sops", "data"):
        files.copy_tree(template / part, tmp_path / part)
    return tmp_path


def settings_of(ws: Path, **extra: object) -> Settings:
    return hash_settings(ws, ws / "sops", **extra)


@dataclass
class Snapshot:
    file: str | None
    indexed_hash: str | None
    indexed_version: int | None
    history: list[VersionRecord]
    pending: int


def snapshot(ws: Path, sop_id: str, rel: str) -> Snapshot:
    """What the SOP folder, the published index and the history say, read as a new process would."""
    settings = settings_of(ws)
    kb = KnowledgeBase.from_settings(settings, embedder=HashEmbedder())
    try:
        kb.searcher.refresh(force=True)
        sop = kb.searcher.catalog.get(sop_id)
    finally:
        kb.close()
    path = ws / "sops" / rel
    history: list[VersionRecord] = []
    pending = 0
    if settings.db_path.exists():
        logbook = Logbook(settings.db_path)
        history = logbook.versions(sop_id)
        pending = len(logbook.pending_versions())
        logbook.close()
    return Snapshot(
        path.read_text(encoding="utf-8") if path.exists() else None,
        sop.content_hash if sop else None,
        sop.meta.version if sop else None,
        history,
        pending,
    )


def assert_consistent(snap: Snapshot) -> None:
    """File, index and history tell one story (a SOP either live in all three or deleted in all three)."""
    assert snap.pending == 0
    if snap.indexed_hash is None:
        assert snap.file is None
        assert not snap.history or snap.history[-1].action == "delete"
        return
    assert snap.file is not None and content_hash(snap.file.encode("utf-8")) == snap.indexed_hash
    if snap.history:  # (none for a SOP never changed through the API: the folder's file is all there is)
        assert snap.history[-1].content == snap.file
        assert snap.history[-1].version == snap.indexed_version


def ingest(ws: Path) -> list[str]:
    """Run `kb ingest` in this process; what it changed in the index."""
    kb = KnowledgeBase.from_settings(settings_of(ws), embedder=HashEmbedder())
    try:
        report = kb.ingest()
    finally:
        kb.close()
    assert report.ok, report.failed
    return report.added + report.updated + report.removed


# -- two worker processes, concurrent saves --------------------------------------------------------------------------
def request(port: int, method: str, url: str, body: object = None, key: str = TRAINER) -> tuple[int, bytes]:
    """One request on a new connection (so that both workers answer in turn); a dict body is sent as JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {**auth(key), "content-type": "application/json"}
        conn.request(method, url, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def two_workers(ws: Path) -> Iterator[int]:
    # A bad KB_PORT beside --port (an operator's trial: a traceback, then every worker stopped at start): the
    # command line's values are what the workers read
    with serving(ws / "data", ws / "sops", ws / "serve.log", KB_API_KEYS=KEYS, KB_PORT="99999") as svc:
        yield svc.port


Call = tuple[str, str, bytes, str]  # method, url, body, content type


def at_once(port: int, calls: list[Call]) -> list[tuple[int, bytes]]:
    """Send every call at the same instant, each on its own connection; every status and body."""
    results: list[tuple[int, bytes]] = [(0, b"")] * len(calls)
    # Every connection is open (and handed to a worker) before any request is sent.
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in calls]
    for c in conns:
        c.connect()
    barrier = threading.Barrier(len(calls))

    def send(i: int) -> None:
        method, url, body, ctype = calls[i]
        barrier.wait()
        conns[i].request(method, url, body=body, headers={**auth(TRAINER), "content-type": ctype})
        response = conns[i].getresponse()
        results[i] = (response.status, response.read())
        conns[i].close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return results


def one_winner(results: list[tuple[int, bytes]]) -> int:
    statuses = [s for s, _ in results]
    assert sorted(statuses) == [200] + [409] * (len(results) - 1), [r[1][:300] for r in results]
    for s, b in results:
        if s == 409:
            assert json.loads(b)["error"]["code"] == "version_conflict"
    return statuses.index(200)


def put_call(base: int, text: str) -> Call:
    return ("PUT", f"/v1/sops/{LEAK}?base_version={base}", text.encode(), "text/markdown")


def test_concurrent_saves_on_two_workers_have_exactly_one_winner(ws: Path, two_workers: int) -> None:
    port = two_workers
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    writers = 4
    for round_no in range(4):
        status, body = request(port, "GET", f"/v1/sops/{LEAK}/source")
        assert status == 200, body
        base = json.loads(body)["version"]
        texts = [edited(original, f"第{round_no}轮修改，来自培训师{i}号") for i in range(writers)]
        results = at_once(port, [put_call(base, t) for t in texts])
        winner = one_winner(results)
        assert json.loads(results[winner][1])["version"] == base + 1

        expected = with_version(texts[winner], base + 1, date.today())
        assert (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8") == expected
        time.sleep(1.2)  # a worker looks for a newly published index at most once a second
        for _ in range(4):  # new connections: both workers answer
            status, body = request(port, "GET", f"/v1/sops/{LEAK}", key=AGENT)
            sop = json.loads(body)
            assert sop["meta"]["version"] == base + 1
            assert f"培训师{winner}号" in json.dumps(sop, ensure_ascii=False)
            assert all(f"培训师{i}号" not in json.dumps(sop, ensure_ascii=False) for i in range(writers) if i != winner)
            status, body = request(port, "POST", "/v1/search", {"query": "天花板在滴水"}, AGENT)
            hit = next(h for h in json.loads(body)["results"] if h["sop_id"] == LEAK)
            assert hit["version"] == base + 1
        status, body = request(port, "GET", f"/v1/sops/{LEAK}/history")
        history = json.loads(body)
        assert history[-1]["version"] == base + 1 and [h["version"] for h in history] == sorted(
            {h["version"] for h in history}
        )
        status, body = request(port, "GET", f"/v1/sops/{LEAK}/versions/{base + 1}")
        assert json.loads(body)["content"] == expected

    # Delete and rollback go through the same lock and version check as a save.
    base += 1
    rollback = json.dumps({"to_version": 1, "base_version": base}).encode()
    calls: list[Call] = [
        ("POST", f"/v1/sops/{LEAK}/rollback", rollback, "application/json"),
        ("DELETE", f"/v1/sops/{LEAK}?base_version={base}", b"", "text/markdown"),
        put_call(base, edited(original, "与删除和回滚同时的修改")),
    ]
    results = at_once(port, calls)
    winner = one_winner(results)
    assert json.loads(results[winner][1])["version"] == base + 1
    time.sleep(1.2)
    path = ws / "sops" / LEAK_PATH
    status, body = request(port, "GET", f"/v1/sops/{LEAK}/history")
    last = json.loads(body)[-1]
    assert last["version"] == base + 1 and last["action"] == ("rollback", "delete", "publish")[winner]
    for _ in range(2):
        status, body = request(port, "GET", f"/v1/sops/{LEAK}", key=AGENT)
        if winner == 1:
            assert status == 404 and not path.exists()
        else:
            assert status == 200 and json.loads(body)["meta"]["version"] == base + 1
            text = original if winner == 0 else calls[2][2].decode()
            assert path.read_text(encoding="utf-8") == with_version(text, base + 1, date.today())
    assert not has_pending_versions(ws / "data" / "service.sqlite3")


# -- write errors ----------------------------------------------------------------------------------------------------
@pytest.fixture
def trainer(ws: Path) -> Iterator[TestClient]:
    with _client(ws, ws / "sops", api_keys=KEYS) as c:
        yield c


def _kb(c: TestClient) -> KnowledgeBase:
    kb = c.app.state.kb_state.services.kb  # type: ignore[attr-defined]
    assert isinstance(kb, KnowledgeBase)
    return kb


def _state(c: TestClient, ws: Path, sop_id: str, rel: str) -> tuple[object, ...]:
    path = ws / "sops" / rel
    history = c.get(f"/v1/sops/{sop_id}/history", headers=auth(TRAINER))
    return (
        path.read_bytes() if path.exists() else None,
        c.get("/healthz").json()["generation"],
        c.get(f"/v1/sops/{sop_id}", headers=auth(AGENT)).text,
        history.status_code,
        # the folder's own version (not recorded yet) is dated by its file, which a restore rewrites
        [{k: v for k, v in h.items() if k != "ts" or h["action"] != "import"} for h in history.json()]
        if history.status_code == 200
        else history.text,
        sorted(p.name for p in (ws / "sops").rglob("*") if p.name.endswith(".tmp")),
    )


def _assert_storage_error(r: object) -> None:
    assert r.status_code == 500, r.text  # type: ignore[attr-defined]
    err = r.json()["error"]  # type: ignore[attr-defined]
    assert err["code"] == "storage_error" and err["message"].startswith("保存失败")


def test_a_disk_full_while_writing_the_file_changes_nothing(
    trainer: TestClient, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sops_dir = str(ws / "sops")
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the SOP folder's disk is full: the new file's data cannot be written
        if os.readlink(f"/proc/self/fd/{fd}").startswith(sops_dir):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    before = _state(trainer, ws, LEAK, LEAK_PATH)
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    monkeypatch.setattr(os, "fsync", fsync)
    r = put(trainer, LEAK, edited(original, "磁盘满时的修改"), base_version=1)
    _assert_storage_error(r)
    assert "No space left" in r.json()["error"]["message"]  # type: ignore[attr-defined]
    monkeypatch.undo()
    assert _state(trainer, ws, LEAK, LEAK_PATH) == before  # file, index, history; no temporary file left behind
    assert_consistent_or_untouched(ws)
    ok = put(trainer, LEAK, edited(original, "恢复后的修改"), base_version=1)
    assert ok.status_code == 200 and ok.json()["version"] == 2  # type: ignore[attr-defined]


def assert_consistent_or_untouched(ws: Path) -> None:
    assert not has_pending_versions(ws / "data" / "service.sqlite3")


@pytest.mark.parametrize("case", ["update", "new", "delete"])
def test_a_failed_pointer_switch_restores_the_file(
    trainer: TestClient, ws: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The file is written before the switch; when the switch fails the file goes back to what it was."""
    sop_id, rel = (NEW_ID, f"{NEW_ID}.md") if case == "new" else (LEAK, LEAK_PATH)
    before = _state(trainer, ws, sop_id, rel)
    store = _kb(trainer).store

    def read_only(name: str) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(store, "publish", read_only)
    if case == "delete":
        r = trainer.delete(f"/v1/sops/{sop_id}", params={"base_version": 1}, headers=auth(TRAINER))
    elif case == "new":
        r = put(trainer, sop_id, NEW)  # type: ignore[assignment]
    else:
        original = (ws / "sops" / rel).read_text(encoding="utf-8")
        r = put(trainer, sop_id, edited(original, "不会生效的修改"), base_version=1)  # type: ignore[assignment]
    _assert_storage_error(r)
    monkeypatch.undo()
    assert _state(trainer, ws, sop_id, rel) == before
    assert_consistent_or_untouched(ws)


def test_an_error_after_the_switch_still_completes_the_publish(
    trainer: TestClient, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logbook = trainer.app.state.kb_state.services.logbook  # type: ignore[attr-defined]
    real = logbook.mark_live
    calls: list[int] = []

    def busy_once(sop_id: str, version: int) -> None:
        calls.append(version)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        real(sop_id, version)

    monkeypatch.setattr(logbook, "mark_live", busy_once)
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    r = put(trainer, LEAK, edited(original, "提交点之后出错的修改"), base_version=1)
    assert r.status_code == 200 and r.json()["version"] == 2  # type: ignore[attr-defined]
    assert calls == [2, 2]
    monkeypatch.undo()
    snap = snapshot(ws, LEAK, LEAK_PATH)
    assert_consistent(snap)
    assert snap.indexed_version == 2 and "提交点之后出错的修改" in (snap.file or "")


# -- kills at each step ----------------------------------------------------------------------------------------------
KILL_SCRIPT = """
import os, sys
from pathlib import Path
from kb_service.db.logbook import Logbook
from ingest.publishing import Publisher
from ingest.knowledge_base import KnowledgeBase
from kb_service.settings import get_settings

data, sops, action, sop_id, step, body = sys.argv[1:7]
settings = get_settings(data_dir=Path(data), sops_dir=Path(sops), embedder="hash")
kb = KnowledgeBase.from_settings(settings)
publisher = Publisher(kb, Logbook(settings.db_path))
publisher.fault = lambda at: os._exit(17) if at == step else None
if action == "delete":
    publisher.delete(sop_id, base_version=1, author="trainer")
else:
    publisher.put(sop_id, Path(body).read_bytes(), base_version=None if action == "new" else 1, author="trainer")
print("not killed")
"""


def publish_and_die(ws: Path, action: str, sop_id: str, step: str, text: str = "") -> None:
    body = ws / "body.md"
    body.write_text(text, encoding="utf-8")
    args = [str(ws / "data"), str(ws / "sops"), action, sop_id, step, str(body)]
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 17, proc.stdout + proc.stderr


def recover_by(ws: Path, how: str) -> list[str]:
    """Start again the given way; what the index changed (an ingest's report; empty for the others)."""
    if how == "ingest":
        return ingest(ws)
    if how == "cli":
        env = {**os.environ, "KB_DATA_DIR": str(ws / "data"), "KB_SOPS_DIR": str(ws / "sops"), "KB_EMBEDDER": "hash"}
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", "ingest"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "interrupted publish" in proc.stderr
        assert "updated 0" in proc.stdout and "removed 0" in proc.stdout and "added 0" in proc.stdout
        return []
    kb = KnowledgeBase.from_settings(settings_of(ws), embedder=HashEmbedder())
    try:
        if how == "start":
            kb.warm_up()
        else:  # the next publish, by a trainer who read the current version
            assert how == "publish"
            logbook = Logbook(settings_of(ws).db_path)
            publisher = Publisher(kb, logbook)
            text, version = publisher.source(LEAK)
            publisher.put(LEAK, edited(text, "下一次保存").encode(), base_version=version, author="trainer")
            logbook.close()
    finally:
        kb.close()
    return []


# Before the switch the publish is undone; from the switch on it is completed.
@pytest.mark.parametrize(
    ("step", "how"),
    [(s, "ingest") for s in STEPS]
    + [("written", "start"), ("switched", "start"), ("written", "publish")]
    + [("switched", "publish"), ("switched", "cli")],
)
def test_a_publish_killed_at_each_step_is_completed_or_undone(ws: Path, step: str, how: str) -> None:
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    publish_and_die(ws, "update", LEAK, step, edited(original, "被中断的修改"))
    assert has_pending_versions(ws / "data" / "service.sqlite3")
    changed = recover_by(ws, how)
    assert changed == []  # the recovering ingest indexed nothing: file and index already agreed
    snap = snapshot(ws, LEAK, LEAK_PATH)
    assert_consistent(snap)
    went_live = step == "switched"
    if how == "publish":
        assert snap.indexed_version == (3 if went_live else 2) and "下一次保存" in (snap.file or "")
    else:
        assert snap.indexed_version == (2 if went_live else 1)
        assert ("被中断的修改" in (snap.file or "")) is went_live
        assert snap.file == (with_version(edited(original, "被中断的修改"), 2, date.today()) if went_live else original)
    assert ("被中断的修改" in (snap.file or "")) is went_live
    assert ingest(ws) == []  # a later ingest never reverts (nor re-does) anything
    assert snapshot(ws, LEAK, LEAK_PATH) == snap


@pytest.mark.parametrize(("step", "how"), [("written", "ingest"), ("switched", "start")])
def test_a_delete_killed_at_a_step_is_completed_or_undone(ws: Path, step: str, how: str) -> None:
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    publish_and_die(ws, "delete", LEAK, step)
    assert not (ws / "sops" / LEAK_PATH).exists()  # the file was removed before the kill
    assert recover_by(ws, how) == []
    snap = snapshot(ws, LEAK, LEAK_PATH)
    assert_consistent(snap)
    if step == "switched":
        assert snap.file is None and snap.history[-1].action == "delete"
    else:
        assert snap.file == original and snap.indexed_version == 1
    assert ingest(ws) == []


@pytest.mark.parametrize(("step", "how"), [("written", "start"), ("switched", "ingest")])
def test_a_new_sop_killed_at_a_step_is_completed_or_undone(ws: Path, step: str, how: str) -> None:
    publish_and_die(ws, "new", NEW_ID, step, NEW)
    assert (ws / "sops" / NEW_FILE).exists()
    assert recover_by(ws, how) == []
    snap = snapshot(ws, NEW_ID, NEW_FILE)
    assert_consistent(snap)
    if step == "switched":
        assert snap.indexed_version == 1 and snap.file == with_version(NEW, 1, date.today())
    else:  # the file the publish created is removed again
        assert snap.file is None and snap.history == []
    assert ingest(ws) == []


def test_ingest_refuses_to_run_while_an_interrupted_publish_cannot_be_settled(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after writing the file: the old text must be put back before the folder is indexed again."""
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    publish_and_die(ws, "update", LEAK, "written", edited(original, "没有发布完的修改"))
    from ingest import settling

    def read_only(path: Path, data: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(settling, "write_file", read_only)
    with pytest.raises(PublishStorageError, match="无法完成或撤销中断的发布"):
        ingest(ws)
    kb = KnowledgeBase.from_settings(settings_of(ws), embedder=HashEmbedder())
    kb.warm_up()  # start-up still serves (and logs the problem)
    assert kb.searcher.catalog[LEAK].meta.version == 1  # the unfinished text was not indexed
    kb.close()
    monkeypatch.undo()
    assert ingest(ws) == []
    snap = snapshot(ws, LEAK, LEAK_PATH)
    assert_consistent(snap)
    assert snap.file == original


def test_a_publish_on_a_damaged_index_is_undone_and_a_rebuild_then_repairs_it(trainer: TestClient, ws: Path) -> None:
    """An operator's trial: the published generation's payload file cut short, a trainer's publish was refused and
    left its version pending, and `kb ingest --rebuild` then refused with the very damage it repairs (the pending
    version could not be settled from the damaged index)."""
    store = _kb(trainer).store
    generation = str(store.published())
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    before = trainer.get(f"/v1/sops/{LEAK}/history", headers=auth(TRAINER)).json()
    damaged = store.root / generation / "payloads.bin"  # type: ignore[attr-defined]
    os.truncate(damaged, 1000)
    store.forget(generation)  # opened again from disk, as by a restarted server
    r = put(trainer, LEAK, edited(original, "索引损坏时的修改"), base_version=1)
    assert r.status_code == 503 and r.json()["error"]["code"] == "index_not_ready", r.text  # type: ignore[attr-defined]
    # Settled at once by what the damaged generation recorded it published: not this version
    assert not has_pending_versions(ws / "data" / "service.sqlite3")
    assert (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8") == original
    assert trainer.get(f"/v1/sops/{LEAK}", headers=auth(AGENT)).status_code == 503  # not "unknown SOP"
    kb = KnowledgeBase.from_settings(settings_of(ws), embedder=HashEmbedder())
    try:
        report = kb.ingest(rebuild=True)
        assert report.ok and kb.store.published() != generation
        assert kb.searcher.catalog[LEAK].meta.version == 1
    finally:
        kb.close()
    _kb(trainer).searcher.refresh(force=True)  # the server follows the rebuilt index (else within its check interval)
    assert trainer.get(f"/v1/sops/{LEAK}/history", headers=auth(TRAINER)).json() == before
    ok = put(trainer, LEAK, edited(original, "重建后的修改"), base_version=1)
    assert ok.status_code == 200 and ok.json()["version"] == 2  # type: ignore[attr-defined]


def test_an_interrupted_publish_is_settled_from_a_damaged_index_and_the_rebuild_runs(ws: Path) -> None:
    """... and a publish killed after writing its file, the index then damaged: the rebuild settles it by what the
    damaged generation recorded it published (its overviews, checked alone) instead of refusing."""
    original = (ws / "sops" / LEAK_PATH).read_text(encoding="utf-8")
    publish_and_die(ws, "update", LEAK, "written", edited(original, "没有发布完的修改"))
    generation = (ws / "data" / "index" / "CURRENT").read_text().strip()
    os.truncate(ws / "data" / "index" / generation / "payloads.bin", 1000)
    kb = KnowledgeBase.from_settings(settings_of(ws), embedder=HashEmbedder())
    try:
        assert kb.ingest(rebuild=True).ok and kb.store.published() != generation
        assert kb.searcher.catalog[LEAK].meta.version == 1
    finally:
        kb.close()
    snap = snapshot(ws, LEAK, LEAK_PATH)
    assert_consistent(snap)
    assert snap.file == original  # the unfinished text was put back, not indexed


# -- the lock and the schema -----------------------------------------------------------------------------------------
def test_the_replicas_lock_lost_with_its_connection_does_not_fail_the_work_it_guarded(pg_url: str) -> None:
    """An operator's trial: PostgreSQL stopped at the end of a publish; unlocking the advisory lock then failed and
    the finished publish answered 503 "retry shortly"."""
    import sqlalchemy as sa

    from ingest.locking import AdvisoryWriterLock
    from kb_service.db.engine import Database

    db = Database(pg_url)
    lock = AdvisoryWriterLock(db)
    done = False
    with lock.hold():
        assert lock._conn is not None
        pid = lock._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with db.engine.connect() as other:  # the server ends the lock's session, as a restart does
            other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        done = True
    assert done and lock._conn is None
    with lock.hold():  # free again
        pass
    db.engine.dispose()


def _waited(log: str) -> float:
    """The seconds a writer said it waited for the lock."""
    said = re.search(r"took the writer lock after waiting (\d+\.\d) s", log)
    assert said, log
    return float(said.group(1))


def test_a_writer_that_waited_says_for_how_long(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An operator's trial: `kb ingest` said what it waited for, not how long."""
    # two processes' locks on one data directory (one process shares one: `file_writer_lock`)
    first, second = FileWriterLock(tmp_path / "ingest.lock"), FileWriterLock(tmp_path / "ingest.lock")
    held = threading.Event()

    def hold_briefly() -> None:
        with first.hold("a trainer's publish"):
            held.set()
            time.sleep(0.6)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    held.wait(10)
    with caplog.at_level(logging.WARNING, logger="ingest.locking"), second.hold("kb ingest"):
        pass
    holder.join()
    assert "a trainer's publish" in caplog.text and 0.3 <= _waited(caplog.text) < 10


def test_a_replica_waiting_for_the_others_writer_lock_says_so(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """An operator's trial: two hosts' first `kb ingest` together; the second took twice as long, printing nothing."""
    from ingest.locking import AdvisoryWriterLock
    from kb_service.db.engine import Database

    db = Database(pg_url)
    first, second = AdvisoryWriterLock(db), AdvisoryWriterLock(db)
    held = threading.Event()

    def hold_briefly() -> None:
        with first.hold():
            held.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    held.wait(10)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ingest.locking"), second.hold():
        assert time.monotonic() - started >= 0.3  # it waited for the other to finish
    holder.join()
    assert "waiting for the writer lock" in caplog.text and "another replica" in caplog.text
    assert _waited(caplog.text) >= 0.3
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ingest.locking"), second.hold():
        pass
    assert "waiting" not in caplog.text  # free: nothing to say
    db.engine.dispose()


def test_a_replica_that_may_not_wait_long_is_refused_naming_the_other_replica(pg_url: str) -> None:
    from ingest.locking import AdvisoryWriterLock
    from kb_service.db.engine import Database
    from kb_service.errors import WriterBusyError

    db = Database(pg_url)
    ingesting, publishing = AdvisoryWriterLock(db), AdvisoryWriterLock(db)  # two hosts' locks
    with ingesting.hold("同步 SOP 文件夹"):
        started = time.monotonic()
        with pytest.raises(WriterBusyError, match="另一台副本"), publishing.hold("发布", wait=0.3):
            pass
        assert 0.3 <= time.monotonic() - started < 3
    with publishing.hold("发布", wait=0.3):  # free again
        pass
    db.engine.dispose()


def test_the_writer_lock_is_reentrant_in_a_process_and_exclusive_across_processes(tmp_path: Path) -> None:
    lock = file_writer_lock(tmp_path)
    assert file_writer_lock(tmp_path) is lock  # one lock object per data folder and process
    probe = (
        "import fcntl, sys; fh = open(sys.argv[1], 'a')\n"
        "try:\n    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
        "except BlockingIOError:\n    print('held')"
    )

    def other_process_sees() -> str:
        lock_file = str(tmp_path / "ingest.lock")
        out = subprocess.run([sys.executable, "-c", probe, lock_file], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    got: list[float] = []

    def other_thread() -> None:
        with lock.hold():
            got.append(time.monotonic())

    with lock.hold():
        with lock.hold():  # Indexer.apply inside a publish
            assert other_process_sees() == "held"
        assert other_process_sees() == "held"
        t = threading.Thread(target=other_thread)
        t.start()
        time.sleep(0.3)
        assert got == []  # another thread of the process waits too
        released = time.monotonic()
    t.join(timeout=5)
    assert got and got[0] >= released
    assert other_process_sees() == "free"


def test_an_existing_database_gets_the_version_state_and_its_rows_stay_history(tmp_path: Path) -> None:
    db = tmp_path / "service.sqlite3"
    with sqlite3.connect(db) as raw:  # the table as the previous release created it
        raw.execute(
            "CREATE TABLE sop_versions (sop_id TEXT NOT NULL, version INTEGER NOT NULL, ts REAL NOT NULL,"
            " action TEXT NOT NULL, author TEXT NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL,"
            " PRIMARY KEY (sop_id, version))"
        )
        raw.execute("INSERT INTO sop_versions VALUES ('a', 1, 0, 'publish', 't', 'a.md', '旧内容')")
    assert not has_pending_versions(db)
    logbook, again = Logbook(db), Logbook(db)  # the second process to open it finds the columns there
    assert [(r.version, r.state, r.content) for r in logbook.versions("a")] == [(1, "live", "旧内容")]
    logbook.add_versions([VersionRecord("a", 2, 1, "publish", "t", "a.md", "新", "pending", "h", b"x")], 1)
    assert logbook.latest_version("a") == 1 and logbook.version("a", 2) is None  # pending is not history
    assert has_pending_versions(db)
    logbook.mark_live("a", 2)
    assert again.latest_version("a") == 2 and again.version("a", 2).previous is None  # type: ignore[union-attr]
    logbook.close()
    again.close()
