"""Helpers shared by several test files: paths, API keys, settings and clients (fixtures live in conftest.py)."""

from __future__ import annotations

import atexit
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.settings import Settings, get_settings
from kb_service.store import files
from kb_service.store.base import IndexPoint
from kb_service.store.edge import EdgeStore
from kb_service.store.sparse import SparseVec

ROOT = Path(__file__).resolve().parent.parent
SOPS = ROOT / "sops"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUERIES = ROOT / "eval" / "queries.jsonl"

AGENT, TRAINER = "agent-key-123456", "trainer-key-123456"
KEYS = f"agent:{AGENT},trainer:{TRAINER}"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def hash_settings(tmp_path: Path, sops: Path, **extra: object) -> Settings:
    """Settings for mechanics tests: the deterministic hash embedder and a private data folder."""
    return get_settings(data_dir=tmp_path / "data", sops_dir=sops, embedder="hash", **extra)


def api_client(tmp_path: Path, sops: Path, **extra: object) -> TestClient:
    """A test client over `sops` indexed with the hash embedder (enter it with `with` to run the lifespan)."""
    s = hash_settings(tmp_path, sops, **extra)
    _hash_index(s)
    return TestClient(create_app(s, load_in_background=False))


_INDEXED: dict[str, Path] = {}  # this test process's hash-embedder indexes, by what they were built from


def _hash_index(settings: Settings) -> None:
    """Index `settings.sops_dir` into `settings.data_dir` with the hash embedder. Most tests index the same sample
    folder with the same settings: the first build is kept and later ones get a copy of its files (the index a build
    would write, ids and vectors coming from content, under the first build's generation name), which saves seconds
    of tokenising a test."""
    digest = hashlib.sha256(settings.model_dump_json(exclude={"data_dir", "sops_dir"}).encode())
    for f in sorted(settings.sops_dir.rglob("*")):
        if f.is_file():
            digest.update(f"{f.relative_to(settings.sops_dir)}\0".encode() + f.read_bytes() + b"\0")
    key = digest.hexdigest()
    built = _INDEXED.get(key)
    if built is not None and not settings.data_dir.exists():  # (never built for a Qdrant server: nothing to copy)
        files.copy_tree(built, settings.data_dir, ignore=shutil.ignore_patterns("*.lock"))
        return
    kb = KnowledgeBase.from_settings(settings, embedder=HashEmbedder())
    try:
        if not kb.ingest().ok:
            raise RuntimeError(f"the SOPs in {settings.sops_dir} did not index")
    finally:
        kb.close()
    if built is None and not settings.qdrant_url and not (settings.data_dir / "service.sqlite3").exists():
        keep = Path(tempfile.mkdtemp(prefix="kb-test-index-")) / "data"
        atexit.register(shutil.rmtree, keep.parent, True)
        files.copy_tree(settings.data_dir, keep, ignore=shutil.ignore_patterns("*.lock"))
        _INDEXED[key] = keep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- live servers (found through /proc, Linux) -----------------------------------------------------------------
def workers_of(parent: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            out.append(int(entry.name))
    return sorted(out)


def established_inodes(port: int) -> set[str]:
    """Socket inodes of the server side of established TCP connections to `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "01":
            inodes.add(fields[9])
    return inodes


def connections_per_worker(parent: int, port: int) -> dict[int, int]:
    inodes = established_inodes(port)
    counts = {}
    for pid in workers_of(parent):
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts[pid] = held
    return counts


def status(port: int, timeout: float = 5) -> int:
    """Status of one GET /healthz on a new connection; -1 if it was refused, reset or timed out."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    except OSError:
        return -1
    finally:
        conn.close()


def healthy(port: int) -> bool:
    return status(port) == 200


def wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


# -- live servers ----------------------------------------------------------------------------------------------
@dataclass
class Served:
    """A live `kb serve` started by `serving`."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """The end of the service's log, for failure messages."""
        return self.log.read_text(errors="replace")[-3000:]


def index_with_hash(root: Path, sops: Path) -> str | None:
    """Index `sops` into `root/data` with the hash test embedder (no model); the published generation's name."""
    settings = hash_settings(root, sops)
    _hash_index(settings)
    return EdgeStore(settings.data_dir / "index").published()


def start_serve(
    data_dir: Path, sops: Path, log: Path, *, workers: int = 2, embedder: str | None = "hash", **env: str
) -> Served:
    """`kb serve --workers N` on a free port over `data_dir` and `sops`; `env` adds or overrides KB_* variables
    (no keys unless given). `embedder=None`: the configured model (the real one), not the hash test embedder."""
    port = free_port()
    full_env = {**os.environ, "KB_DATA_DIR": str(data_dir), "KB_SOPS_DIR": str(sops), "KB_API_KEYS": "", **env}
    if embedder is not None:
        full_env["KB_EMBEDDER"] = embedder
    full_env.pop("FORWARDED_ALLOW_IPS", None)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Served(proc, port, log)


def wait_until_serving(svc: Served, workers: int = 2, seconds: float = 120) -> None:
    """Every worker started and /healthz answering 200, and (with several workers) every worker's health check
    passed: new connections then reach every worker (the balancer sends them to the emptier healthy one)."""
    # One worker runs in the `kb serve` process itself; more are its child processes.
    started = wait_for(lambda: (workers == 1 or len(workers_of(svc.pid)) == workers) and healthy(svc.port), seconds)
    if not started:
        raise AssertionError(f"kb serve did not start in {seconds} s:\n{svc.output()}")
    if workers > 1 and not wait_for(lambda: takes_connections(svc.pid, svc.port, workers), seconds):
        raise AssertionError(f"kb serve's workers did not all become healthy in {seconds} s:\n{svc.output()}")


def open_keepalive(port: int, n: int) -> list[http.client.HTTPConnection]:
    """`n` kept-alive connections to the service, each having answered one GET /healthz."""
    conns = []
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        conns.append(conn)
    return conns


def takes_connections(parent: int, port: int, workers: int = 2) -> bool:
    """Whether `workers` new connections land one on each worker (a worker gets none until its health check
    passes); the connections are closed again and their closing has reached the balancer when this returns."""
    conns, spread = [], False
    for _ in range(workers):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conns.append(conn)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        if response.status != 200:  # a worker still loading (handed connections while none was healthy yet)
            break
    else:
        spread = sorted(connections_per_worker(parent, port).values()) == [1] * workers
    for c in conns:
        c.close()
    wait_for(lambda: not established_inodes(port), 5)
    time.sleep(0.2)
    return spread


def stop(svc: Served) -> None:
    if svc.proc.poll() is None:
        svc.proc.kill()
        svc.proc.wait()


@contextmanager
def serving(
    data_dir: Path, sops: Path, log: Path, *, workers: int = 2, embedder: str | None = "hash", **env: str
) -> Iterator[Served]:
    """A live `kb serve` for the block, killed at its end (see `start_serve`)."""
    svc = start_serve(data_dir, sops, log, workers=workers, embedder=embedder, **env)
    try:
        wait_until_serving(svc, workers)
        yield svc
    finally:
        stop(svc)


# -- publishing ----------------------------------------------------------------------------------------------
NEW = """---
id: wifi-router-reset
title: 路由器重启指引
category: 网络
audience: public
tags: [路由器, 重启]
examples: [路由器怎么重启]
---
# 路由器重启指引

## 处理步骤
1. 拔掉路由器电源，等待 30 秒。
2. 重新插上电源，等待指示灯变绿。

## 标准话术
> 您好，请先把路由器断电 30 秒后再插上试试。

## 密码规则 [内部]
- 管理员密码 kb-secret-9931。
"""


def put(c: TestClient, sop_id: str, text: str, **params: object) -> object:
    return c.put(
        f"/v1/sops/{sop_id}",
        content=text.encode(),
        params=params,
        headers={**auth(TRAINER), "content-type": "text/markdown"},
    )


# -- named accounts ------------------------------------------------------------------------------------------
def add_account(c: TestClient, name: str, role: str) -> str:
    """A named account in the app's service database; returns its key."""
    services = c.app.state.kb_state.services  # type: ignore[attr-defined]
    if services is None:
        raise RuntimeError("the app has not loaded")
    _, key = services.training.accounts.add(name, role, by="test")
    return str(key)


# -- the service database on both backends ----------------------------------------------------------------------
TEST_DATABASE_ENV = "KB_TEST_DATABASE_URL"  # a PostgreSQL server where tests may create and drop databases


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on the KB_TEST_DATABASE_URL server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(os.environ[TEST_DATABASE_ENV]).set(drivername="postgresql+psycopg")
    name = f"kbtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name, drivername="postgresql").render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- store points ------------------------------------------------------------------------------------------------
DIM = 8  # dimension of the test points' vectors


def point(sop: str, n: int, audience: str = "agent", kind: str = "steps") -> IndexPoint:
    """A test point of `sop` with vectors derived from its name and number."""
    rng = np.random.default_rng(zlib.crc32(f"{sop}/{n}".encode()))  # the same vectors in every process
    vec = rng.normal(size=DIM).astype(np.float32)
    vec /= np.linalg.norm(vec)
    prefix = uuid.uuid5(uuid.NAMESPACE_DNS, sop).hex[:12]
    pid = str(uuid.UUID(prefix + uuid.uuid5(uuid.NAMESPACE_DNS, f"{sop}{n}").hex[12:]))
    return IndexPoint(
        id=pid,
        dense=vec,
        sentences=np.stack([vec, -vec]),
        lex=SparseVec([n + 1, 100], [1.0, 0.5]),
        py=SparseVec([n + 7], [1.0]),
        payload={
            "sop_id": sop,
            "audience": audience,
            "section_kind": kind,
            "category": "报修",
            "tags": ["x"],
            "heading": f"h{n}",
            "text": f"t{n}",
            "sop": {"big": "x" * 100},
        },
    )
