"""Shared fixtures (plain helpers shared by test files are in helpers.py). Mechanics tests use the deterministic hash
embedder; quality tests use the real model."""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.settings import get_settings
from kb_service.store import files
from kb_service.store.base import VectorStore
from kb_service.store.edge import EdgeStore
from tests.helpers import SOPS, TEST_DATABASE_ENV, fresh_postgres, hash_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the sample corpus indexed with the real model is slow (the first one pays for the index)."""
    for item in items:
        if "use_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def sops_copy(tmp_path: Path) -> Path:
    """A private copy of the sample SOP folder that a test may change."""
    target = tmp_path / "sops"
    shutil.copytree(SOPS, target)
    return target


@pytest.fixture
def hash_kb(tmp_path: Path, sops_copy: Path) -> Iterator[KnowledgeBase]:
    kb = KnowledgeBase.from_settings(hash_settings(tmp_path, sops_copy), embedder=HashEmbedder())
    yield kb
    kb.close()


def _index_with_use(data: Path) -> None:
    kb = KnowledgeBase.from_settings(get_settings(data_dir=data, sops_dir=SOPS))
    report = kb.ingest(SOPS)
    assert report.ok, report.failed
    kb.close()


@pytest.fixture(scope="session")
def use_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus indexed once with the real USE-multilingual model. Under pytest-xdist the first test process
    to need it builds it in the run's shared temporary folder and every process gets its own copy (a minute of
    embedding saved per extra process)."""
    data = tmp_path_factory.mktemp("use-data")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        _index_with_use(data)
        return data
    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, shared by its test processes
    built = shared / "use-data-built"
    with (shared / "use-data.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other process waits for the build instead of doing it again
        if not (shared / "use-data.ready").exists():
            shutil.rmtree(built, ignore_errors=True)  # a build cut short by a failure is started over
            _index_with_use(built)
            (shared / "use-data.ready").touch()
    shutil.rmtree(data)
    files.copy_tree(built, data, ignore=shutil.ignore_patterns("*.lock"))
    return data


@pytest.fixture(scope="session")
def use_kb(use_data: Path) -> Iterator[KnowledgeBase]:
    kb = KnowledgeBase.from_settings(get_settings(data_dir=use_data, sops_dir=SOPS))
    kb.warm_up()
    yield kb
    kb.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the KB_TEST_DATABASE_URL server (.ci/run starts one); skipped without it."""
    if not os.environ.get(TEST_DATABASE_ENV):
        pytest.skip(f"no PostgreSQL: set {TEST_DATABASE_ENV}=postgresql://user@host:port/db (.ci/run starts one)")
    with fresh_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The service database a database-level test runs on: '' (SQLite under the data directory, the default) and a
    fresh PostgreSQL database (`pg_url`)."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


STORE_BACKENDS = ["edge", "client-local"] + (["server"] if os.environ.get("KB_QDRANT_URL") else [])


@pytest.fixture(params=STORE_BACKENDS)
def store(  # the store contract's backends: embedded engine, qdrant-client local mode, a server when configured
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[VectorStore]:
    if request.param == "edge":
        s: VectorStore = EdgeStore(tmp_path / "index")
    else:
        from qdrant_client import QdrantClient

        from kb_service.store.server import ServerStore

        client = (
            QdrantClient(location=":memory:")
            if request.param == "client-local"
            else QdrantClient(url=os.environ["KB_QDRANT_URL"])
        )
        s = ServerStore(client, f"test_{uuid.uuid4().hex[:8]}")
    yield s
    for g in s.generations():
        s.drop(g)
    s.close()


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """More KB_* settings for a browser module's live server (tests/browser_kit.py `server`; a module overrides it)."""
    return {}
