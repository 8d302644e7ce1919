"""Helpers shared by several test files: paths, API keys, settings and clients (fixtures live in conftest.py)."""

from __future__ import annotations

import http.client
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.settings import Settings, get_settings

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
    kb = KnowledgeBase.from_settings(s, embedder=HashEmbedder())
    kb.ingest()
    kb.close()
    return TestClient(create_app(s, load_in_background=False))


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
