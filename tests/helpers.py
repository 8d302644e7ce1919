"""Helpers shared by several test files: paths, API keys, settings and clients (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from kb_service.embedders import HashEmbedder
from kb_service.service import KnowledgeBase
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
