"""Named accounts through the API and the `kb users` command: keys stored as hashes only, roles, trial mode ending
when the first account appears, disabled and rotated keys refused within seconds (also across two worker processes of
a live `kb serve`), KB_API_KEYS still working, admins managing accounts, and the person's name in version history."""

from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.deps import Services
from cli.main import app as cli_app
from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.training.hub import Training
from tests.helpers import (
    AGENT,
    KEYS,
    ROOT,
    TRAINER,
    add_account,
    api_client,
    auth,
    connections_per_worker,
    free_port,
    hash_settings,
    healthy,
    wait_for,
    workers_of,
)

SECONDS = 4.0  # "within a few seconds": each process trusts what it read for 2 s


def training_of(c: TestClient) -> Training:
    services = c.app.state.kb_state.services  # type: ignore[attr-defined]
    assert services is not None
    return services.training  # type: ignore[no-any-return]


def add(c: TestClient, name: str, role: str) -> str:
    return add_account(c, name, role)


def until(check: Callable[[], bool], seconds: float = SECONDS) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.1)
    return time.monotonic() - started


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def kb_cli(data: Path, sops: Path, *args: str) -> Ran:
    """`kb users ...` run in this process (the command's own code and exit status; seconds of start-up saved)."""
    env = {"KB_DATA_DIR": str(data), "KB_SOPS_DIR": str(sops)}
    result = CliRunner().invoke(cli_app, ["users", *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def trial(tmp_path: Path, sops_copy: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, sops_copy) as c:
        yield c


@pytest.fixture
def keyed(tmp_path: Path, sops_copy: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        yield c


def test_the_first_account_ends_trial_mode_within_seconds_and_its_key_is_printed_alone(
    trial: TestClient, tmp_path: Path, sops_copy: Path
) -> None:
    assert trial.get("/v1/whoami").json() == {
        "role": "agent",
        "auth": False,
        "name": "trial",
        "admin": False,
        "max_query_chars": 500,
        "account": False,
        "company": "安居优寓",  # KB_COMPANY_NAME: the workspace's new-SOP template greets with it
    }
    done = kb_cli(tmp_path / "data", sops_copy, "add", "王芳", "--role", "admin")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert done.stdout == key + "\n" and key.startswith("kbu_") and len(key) > 40  # the key alone on stdout
    assert "王芳" in done.stderr
    took = until(lambda: trial.get("/v1/whoami").json()["role"] == "public")
    assert took < SECONDS
    assert trial.get("/v1/whoami").json()["auth"] is True
    me = trial.get("/v1/whoami", headers=auth(key)).json()
    assert me == {
        "role": "trainer",
        "auth": True,
        "name": "王芳",
        "admin": True,
        "max_query_chars": 500,
        "account": True,
        "company": "安居优寓",
    }
    # tenants no longer reach staff content, nor trainers' tools
    assert trial.post("/v1/search", json={"query": "漏水", "explain": True}).status_code == 403
    assert trial.get("/v1/reports/gaps").status_code == 401  # no key: 401 (403 is for a key without the right)


def test_keys_are_stored_only_as_hashes(keyed: TestClient, tmp_path: Path) -> None:
    key = add(keyed, "li-lei", "agent")
    db = tmp_path / "data" / "service.sqlite3"
    raw = b"".join(p.read_bytes() for p in db.parent.glob("service.sqlite3*"))
    assert key.encode() not in raw
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT key_hash FROM accounts WHERE name = 'li-lei'").fetchone()
    assert len(stored) == 64 and stored != key


def test_cli_lists_disables_and_rotates(tmp_path: Path, sops_copy: Path) -> None:
    data = tmp_path / "data"
    first = kb_cli(data, sops_copy, "add", "zhao", "--role", "agent")
    assert first.returncode == 0, first.stderr
    listed = kb_cli(data, sops_copy, "list")
    assert "zhao" in listed.stdout and "active" in listed.stdout
    assert kb_cli(data, sops_copy, "add", "zhao", "--role", "agent").returncode == 2
    bad = kb_cli(data, sops_copy, "add", "qian", "--role", "boss")
    assert bad.returncode == 2 and "agent、trainer 或 admin" in bad.stderr
    rotated = kb_cli(data, sops_copy, "rotate", "zhao")
    assert rotated.returncode == 0 and rotated.stdout.strip() != first.stdout.strip()
    promoted = kb_cli(data, sops_copy, "role", "zhao", "trainer")
    assert promoted.returncode == 0 and "trainer" in kb_cli(data, sops_copy, "list").stdout
    assert kb_cli(data, sops_copy, "role", "zhao", "boss").returncode == 2
    assert kb_cli(data, sops_copy, "disable", "zhao").returncode == 0
    assert "disabled" in kb_cli(data, sops_copy, "list").stdout
    assert kb_cli(data, sops_copy, "disable", "nobody").returncode == 2


def test_disabled_and_rotated_keys_stop_working_within_seconds(keyed: TestClient) -> None:
    key = add(keyed, "sun", "agent")
    assert keyed.get("/v1/whoami", headers=auth(key)).json()["name"] == "sun"
    store = training_of(keyed).accounts
    _, new = store.rotate("sun")
    until(lambda: keyed.get("/v1/whoami", headers=auth(key)).status_code == 401)
    assert keyed.get("/v1/whoami", headers=auth(new)).json()["name"] == "sun"
    store.disable("sun")
    until(lambda: keyed.get("/v1/whoami", headers=auth(new)).status_code == 401)
    r = keyed.post("/v1/search", json={"query": "漏水"}, headers=auth(new))
    assert r.status_code == 401 and "停用" in r.json()["error"]["message"]


def test_kb_api_keys_keep_working_next_to_accounts(keyed: TestClient) -> None:
    add(keyed, "zhou", "agent")
    assert keyed.get("/v1/whoami", headers=auth(AGENT)).json()["role"] == "agent"
    trainer = keyed.get("/v1/whoami", headers=auth(TRAINER)).json()
    assert trainer["role"] == "trainer" and trainer["name"].startswith("trainer:")
    assert keyed.get("/v1/whoami", headers=auth("not-a-key-at-all")).status_code == 401
    assert keyed.get("/v1/whoami", headers={"Authorization": "Basic abc"}).status_code == 401


def test_admins_manage_accounts_over_the_api(keyed: TestClient) -> None:
    admin = add(keyed, "admin-wu", "admin")
    trainer = add(keyed, "trainer-zheng", "trainer")
    assert keyed.get("/v1/users", headers=auth(trainer)).status_code == 403
    assert keyed.get("/v1/users", headers=auth(AGENT)).status_code == 403
    assert keyed.get("/v1/users").status_code == 401  # no key at all
    r = keyed.post("/v1/users", json={"name": "陈静", "role": "agent"}, headers=auth(admin))
    assert r.status_code == 201, r.text
    new_key = r.json()["key"]
    assert keyed.get("/v1/whoami", headers=auth(new_key)).json()["name"] == "陈静"
    assert keyed.post("/v1/users", json={"name": "陈静", "role": "agent"}, headers=auth(admin)).status_code == 409
    assert keyed.post("/v1/users", json={"name": "a:b", "role": "agent"}, headers=auth(admin)).status_code == 422
    assert keyed.post("/v1/users", json={"name": "x", "role": "root"}, headers=auth(admin)).status_code == 422
    listed = keyed.get("/v1/users", headers=auth(admin)).json()
    assert {a["name"] for a in listed} == {"admin-wu", "trainer-zheng", "陈静"} and "key" not in listed[0]
    assert keyed.post("/v1/users/admin-wu/disable", json={}, headers=auth(admin)).status_code == 422  # not oneself
    assert keyed.post("/v1/users/nobody/disable", json={}, headers=auth(admin)).status_code == 404
    assert keyed.post("/v1/users/陈静/disable", json={}, headers=auth(admin)).json()["active"] is False
    until(lambda: keyed.get("/v1/whoami", headers=auth(new_key)).status_code == 401)
    rotated = keyed.post("/v1/users/陈静/rotate", json={}, headers=auth(admin)).json()["key"]
    assert keyed.post("/v1/users/陈静/enable", json={}, headers=auth(admin)).json()["active"] is True
    until(lambda: keyed.get("/v1/whoami", headers=auth(rotated)).status_code == 200)
    assert keyed.get("/v1/whoami", headers=auth(new_key)).status_code == 401
    # an admin has a trainer's rights
    assert keyed.get("/v1/reports/gaps", headers=auth(admin)).status_code == 200


def test_an_admin_changes_a_persons_role_and_the_same_key_gets_the_new_rights(keyed: TestClient) -> None:
    """A trial: promoting an agent meant a new account, which split their practice history and certifications."""
    admin = add(keyed, "admin-he", "admin")
    agent = add(keyed, "agent-luo", "agent")
    assert keyed.get("/v1/reports/gaps", headers=auth(agent)).status_code == 403
    promote = {"role": "trainer"}
    assert keyed.post("/v1/users/agent-luo/role", json=promote, headers=auth(agent)).status_code == 403
    r = keyed.post("/v1/users/agent-luo/role", json=promote, headers=auth(admin))
    assert r.status_code == 200 and r.json()["role"] == "trainer" and "key" not in r.json()
    until(lambda: keyed.get("/v1/whoami", headers=auth(agent)).json()["role"] == "trainer")
    assert keyed.get("/v1/reports/gaps", headers=auth(agent)).status_code == 200
    assert keyed.post("/v1/users/admin-he/role", json={"role": "agent"}, headers=auth(admin)).status_code == 422
    assert keyed.post("/v1/users/agent-luo/role", json={"role": "root"}, headers=auth(admin)).status_code == 422
    assert keyed.post("/v1/users/nobody/role", json=promote, headers=auth(admin)).status_code == 404


def test_training_is_a_loaded_service_like_the_others() -> None:
    """The service database is required, so are its training tables: no route checks for a missing one (a request
    that cannot read them fails like any other database read, it does not get a special 503)."""
    assert get_type_hints(Services)["training"] is Training
    checks = [
        p.name for p in (ROOT / "api" / "routes").glob("*.py") if re.search(r"training is (not )?None", p.read_text())
    ]
    assert checks == []


def test_agents_go_on_searching_while_the_database_cannot_be_read(
    keyed: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL restart: a key looked up before keeps its answer (directory.STALE_GRACE), a key never seen is 503,
    and a route whose own database write fails answers 503 with Retry-After instead of a bare 500."""
    from sqlalchemy.exc import OperationalError

    from kb_service.accounts import directory

    key = add(keyed, "值班坐席周", "agent")
    assert keyed.get("/v1/whoami", headers=auth(key)).json()["name"] == "值班坐席周"
    other = add(keyed, "新坐席吴", "agent")
    store = keyed.app.state.kb_state.accounts.store  # type: ignore[attr-defined]

    def down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(store, "by_key", down)
    time.sleep(directory.TTL + 0.2)  # past the ordinary cache: every lookup now reads the database
    found = keyed.post("/v1/search", json={"query": "天花板漏水"}, headers=auth(key))
    assert found.status_code == 200 and found.json()["results"]
    assert keyed.get("/v1/whoami", headers=auth(other)).status_code == 503  # looked up only when it was added
    monkeypatch.setattr(directory, "STALE_GRACE", 0.0)
    assert keyed.get("/v1/whoami", headers=auth(key)).status_code == 503
    monkeypatch.undo()
    cases = keyed.app.state.kb_state.services.cases  # type: ignore[attr-defined]
    monkeypatch.setattr(cases, "open_case", down)
    contact = {"name": "刘女士", "room": "3-1502", "phone": "13800138000"}
    body = {"session_id": "s-db", "question": "热水器坏了", "contact": contact}
    refused = keyed.post("/v1/cases", json=body)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert refused.json()["error"]["code"] == "database_unavailable"


def test_a_key_this_process_never_looked_up_is_answered_as_last_read_while_the_database_is_down(
    keyed: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's trial: with PostgreSQL stopped, a scrape (or a search) with a staff key got 503 from a worker
    that had not looked that key up before. Each process reads every account now and then (directory.KNOWN_EVERY)."""
    from sqlalchemy.exc import OperationalError

    key = add(keyed, "值班坐席郑", "agent")
    accounts = keyed.app.state.kb_state.accounts  # type: ignore[attr-defined]
    accounts._known = None
    accounts._read_known()  # as it does at start and every KNOWN_EVERY seconds after a lookup

    def down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(accounts.store, "by_key", down)
    found = keyed.get("/v1/whoami", headers=auth(key))
    assert found.status_code == 200 and found.json()["name"] == "值班坐席郑"
    unknown = keyed.get("/v1/whoami", headers=auth("kb_" + "x" * 40))
    assert unknown.status_code == 503 and unknown.headers["retry-after"] == "5"  # not refused: it cannot be told


def test_version_history_records_the_trainers_name(keyed: TestClient) -> None:
    key = add(keyed, "培训师林", "trainer")
    text = keyed.get("/v1/sops/repair-drain-blocked/source", headers=auth(key)).json()
    changed = text["content"].replace("轻微堵塞可先指导", "轻微堵塞先指导")
    r = keyed.put(
        "/v1/sops/repair-drain-blocked",
        content=changed.encode(),
        params={"base_version": text["version"], "force": True},
        headers={**auth(key), "content-type": "text/markdown"},
    )
    assert r.status_code == 200, r.text
    history = keyed.get("/v1/sops/repair-drain-blocked/history", headers=auth(key)).json()
    assert history[-1]["author"] == "培训师林"


# -- two worker processes of a live server ---------------------------------------------------------------------
def _call(conn: http.client.HTTPConnection, path: str, key: str) -> tuple[int, Any]:
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"null")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads connections from Linux /proc")
def test_a_disabled_key_stops_working_in_both_worker_processes_within_seconds(tmp_path: Path, sops_copy: Path) -> None:
    settings = hash_settings(tmp_path, sops_copy)
    kb = KnowledgeBase.from_settings(settings, embedder=HashEmbedder())
    kb.ingest()
    kb.close()
    data = tmp_path / "data"
    key = kb_cli(data, sops_copy, "add", "worker-test", "--role", "agent").stdout.strip()
    port = free_port()
    env = {
        **os.environ,
        "KB_DATA_DIR": str(data),
        "KB_SOPS_DIR": str(sops_copy),
        "KB_EMBEDDER": "hash",
        "KB_KEEP_ALIVE_TIMEOUT": "120",
    }
    env.pop("KB_API_KEYS", None)
    with (tmp_path / "serve.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    conns: list[http.client.HTTPConnection] = []
    try:
        assert wait_for(lambda: len(workers_of(proc.pid)) == 2 and healthy(port), 300)
        held: dict[int, http.client.HTTPConnection] = {}
        deadline = time.time() + 120
        while len(held) < 2 and time.time() < deadline:
            before = connections_per_worker(proc.pid, port)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conns.append(conn)
            if _call(conn, "/healthz", key)[0] != 200:
                time.sleep(0.5)
                continue
            after = connections_per_worker(proc.pid, port)
            worker = next((w for w in after if after[w] > before.get(w, 0)), None)
            if worker is not None:
                held.setdefault(worker, conn)
        assert len(held) == 2, connections_per_worker(proc.pid, port)
        for conn in held.values():
            assert _call(conn, "/v1/whoami", key) == (
                200,
                {
                    "role": "agent",
                    "auth": True,
                    "name": "worker-test",
                    "admin": False,
                    "max_query_chars": 500,
                    "account": True,
                    "company": "安居优寓",
                },
            )
        assert kb_cli(data, sops_copy, "disable", "worker-test").returncode == 0
        took = until(lambda: all(_call(c, "/v1/whoami", key)[0] == 401 for c in held.values()), SECONDS)
        assert took < SECONDS
    finally:
        for conn in conns:
            conn.close()
        proc.terminate()
        proc.wait(timeout=60)


def test_a_starting_replica_says_it_is_loading_and_a_database_outage_is_logged_once_in_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An operator's trial: keyed requests to a starting replica got 'accounts cannot be read' (sending them to look
    at a healthy database), and an outage logged one warning per request."""
    from kb_service.accounts.directory import Directory, Refused

    class Down:
        def by_key(self, token: str) -> None:
            raise OSError("connection refused")

    directory = Directory({})
    with pytest.raises(Refused) as loading:
        directory.lookup("kbu_somekey")
    assert loading.value.status == 503 and "loading" in loading.value.message
    directory.attach(Down())  # type: ignore[arg-type]
    with caplog.at_level("WARNING"):
        for _ in range(50):
            with pytest.raises(Refused) as down:
                directory.lookup("kbu_somekey")
            assert "accounts cannot be read" in down.value.message
    assert len([r for r in caplog.records if "accounts could not be read" in r.getMessage()]) == 1


def test_only_the_agent_holding_a_case_replies_to_or_closes_it(keyed: TestClient) -> None:
    """A tenant trial: after 王芳 took a case, 李明's reply reached the tenant and his close went through (only taking
    checked the holder); a reply to a waiting case left it 待接入."""
    wang, li, boss = add(keyed, "王芳", "agent"), add(keyed, "李明", "agent"), add(keyed, "周主管", "trainer")
    contact = {"name": "张三", "room": "1201", "phone": "13800138000"}

    def case() -> str:
        r = keyed.post("/v1/cases", json={"session_id": "s", "question": "门卡丢了", "contact": contact})
        return str(r.json()["case_id"])

    first = case()
    assert keyed.post(f"/v1/cases/{first}/take", json={}, headers=auth(wang)).json()["taken_by"] == "王芳"
    other = keyed.post(f"/v1/cases/{first}/messages", json={"text": "我来处理"}, headers=auth(li))
    assert other.status_code == 409 and "王芳" in other.json()["error"]["message"]
    assert keyed.post(f"/v1/cases/{first}/close", json={}, headers=auth(li)).status_code == 409
    assert keyed.post(f"/v1/cases/{first}/messages", json={"text": "您好"}, headers=auth(wang)).status_code == 201
    assert keyed.post(f"/v1/cases/{first}/close", json={}, headers=auth(boss)).status_code == 200  # a supervisor
    # The platform's shared key may not act as a named account (an integrator's trial took 王芳's case "as" 王芳)
    held = case()
    assert keyed.post(f"/v1/cases/{held}/take", json={}, headers=auth(wang)).status_code == 200
    as_wang = keyed.post(f"/v1/cases/{held}/take", json={"agent": "王芳"}, headers=auth(AGENT))
    assert as_wang.status_code == 403 and "具名账号" in as_wang.json()["error"]["message"]
    for lookalike in ("王\u200b芳", "\u2060王芳", "王　芳"):  # a re-check: invisible and wide characters passed
        refused = keyed.post(f"/v1/cases/{held}/take", json={"agent": lookalike}, headers=auth(AGENT))
        assert refused.status_code == 403, lookalike
    label = keyed.post(f"/v1/cases/{held}/take", json={"agent": "外包坐席07"}, headers=auth(AGENT))
    assert label.status_code == 409  # a label of the shared key, refused as anyone else would be: 王芳 holds it
    waiting = case()
    assert keyed.post(f"/v1/cases/{waiting}/messages", json={"text": "您好"}, headers=auth(li)).status_code == 201
    got = keyed.get(f"/v1/cases/{waiting}", headers=auth(li)).json()
    assert (got["status"], got["taken_by"]) == ("taken", "李明")  # replying took it; the tenant was told
    assert any(m["author"] == "system" and "已接入" in m["text"] for m in got["messages"])


def test_every_account_is_re_read_in_the_background_until_closed(tmp_path: Path) -> None:
    """An operator's re-check: an account created a minute before an outage, unused since, was refused during it;
    each worker now re-reads every account every KNOWN_EVERY seconds in the background."""
    from kb_service.accounts.directory import Directory
    from kb_service.accounts.store import AccountStore, key_hash
    from kb_service.db.logbook import Logbook
    from tests.helpers import wait_for

    log = Logbook(tmp_path / "db.sqlite3")
    store = AccountStore(log)
    directory = Directory({})
    directory.attach(store, every=0.05)
    _, key = store.add("新坐席冯", "agent", by="test")
    assert wait_for(lambda: directory._known is not None and key_hash(key) in directory._known[1], 5)
    directory.close()
    time.sleep(0.2)
    _, later = store.add("更晚的坐席", "agent", by="test")
    time.sleep(0.3)
    assert directory._known is not None and key_hash(later) not in directory._known[1]  # stopped when closed
    log.close()
