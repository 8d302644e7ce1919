"""Per-client limits on public search and chat, shared by every worker process of a server (api/ratelimit.py), and
KB_TRUSTED_PROXIES deciding who may name the client in X-Forwarded-For (cli/main.py serve).

The serving tests run `kb serve --workers 2` (hash embedder) and hold one keep-alive connection on each worker, so
alternate requests are counted by different processes."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.ratelimit import SharedRateLimiter, client_key
from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.errors import ConfigError
from kb_service.settings import get_settings
from tests.helpers import connections_per_worker, hash_settings, index_with_hash, serving

AGENT = "agent-key-123456"
SEARCH_LIMIT, CHAT_LIMIT = 4, 2


def test_counts_are_shared_by_every_limiter_on_one_file_and_limits_are_separate(tmp_path: Path) -> None:
    a, b = SharedRateLimiter(tmp_path / "limits.sqlite3"), SharedRateLimiter(tmp_path / "limits.sqlite3")
    answers = [(a if i % 2 else b).check("search", "198.51.100.1", 4) for i in range(6)]
    assert answers[:4] == [None] * 4 and all(r is not None and 1 <= r <= 16 for r in answers[4:])
    assert a.check("chat", "198.51.100.1", 4) is None  # another limit, its own count
    assert b.check("search", "198.51.100.2", 4) is None  # another client
    a.close()
    b.close()


def test_broken_storage_is_retried_by_a_health_check_and_its_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an outage `degraded` lasted until the next anonymous request (an operator's trial)."""
    monkeypatch.setattr("api.ratelimit.BACKOFF", 0.0)
    broken = tmp_path / "limits.sqlite3"
    broken.mkdir()  # not a database: every check fails
    limiter = SharedRateLimiter(broken)
    assert limiter.check("chat", "198.51.100.1", 4) is None  # fails open
    status = limiter.status()
    assert not status.ok and status.last_error and "\n" not in status.last_error
    broken.rmdir()  # the storage is back; no request comes
    back = limiter.status()
    assert back.ok and back.last_error is None and limiter.check("chat", "198.51.100.1", 4) is None
    limiter.close()


def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:198.51.100.7") == "198.51.100.7" and client_key("198.51.100.7") == "198.51.100.7"


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert get_settings(trusted_proxies=" 10.0.0.5, 10.1.0.0/16 ,::1").proxy_list == ["10.0.0.5", "10.1.0.0/16", "::1"]
    assert get_settings().proxy_list == []
    with pytest.raises(ConfigError, match="KB_TRUSTED_PROXIES"):
        get_settings(trusted_proxies="proxy.internal")


def test_broken_limit_storage_lets_requests_through_and_says_so(tmp_path: Path, sops_copy: Path) -> None:
    s = hash_settings(tmp_path, sops_copy, api_keys=f"agent:{AGENT}", public_search_rate_limit=1)
    kb = KnowledgeBase.from_settings(s, embedder=HashEmbedder())
    assert kb.ingest().ok
    kb.close()
    (s.data_dir / "ratelimit.sqlite3").mkdir()  # not a database: every check fails
    with TestClient(create_app(s, load_in_background=False)) as c:
        assert [c.post("/v1/search", json={"query": "漏水"}).status_code for _ in range(3)] == [200] * 3
        health = c.get("/healthz", headers={"Authorization": f"Bearer {AGENT}"}).json()
        assert health["status"] == "ok" and health["rate_limits"]["status"] == "degraded"
        assert health["rate_limits"]["failures"] == 3 and health["rate_limits"]["last_error"]


# -- two worker processes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    pid: int
    port: int


def serve(tmp_path: Path, sops: Path, name: str, **env: str) -> Iterator[Server]:
    index_with_hash(tmp_path / name, sops)
    limits = {
        "KB_API_KEYS": f"agent:{AGENT}",
        "KB_PUBLIC_SEARCH_RATE_LIMIT": str(SEARCH_LIMIT),
        "KB_CHAT_RATE_LIMIT": str(CHAT_LIMIT),
        "KB_TRUSTED_PROXIES": "",
    }
    with serving(tmp_path / name / "data", sops, tmp_path / f"{name}.log", **{**limits, **env}) as svc:
        yield Server(svc.pid, svc.port)


@pytest.fixture
def untrusting(tmp_path: Path, sops_copy: Path) -> Iterator[Server]:
    yield from serve(tmp_path, sops_copy, "untrusting")


@pytest.fixture
def behind_proxy(tmp_path: Path, sops_copy: Path) -> Iterator[Server]:
    yield from serve(tmp_path, sops_copy, "proxied", KB_TRUSTED_PROXIES="127.0.0.1")


class Worker:
    """One keep-alive connection, held by one worker process."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.connect()

    def post(self, path: str, body: dict[str, object], **headers: str) -> tuple[int, dict[str, str], dict[str, object]]:
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
        r = self.conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read())


def one_per_worker(server: Server) -> list[Worker]:
    pair = [Worker(server.port), Worker(server.port)]
    for w in pair:  # the first request hands the connection to a worker
        assert w.post("/v1/search", {"query": "停水"}, Authorization=f"Bearer {AGENT}")[0] == 200
    assert sorted(connections_per_worker(server.pid, server.port).values()) == [1, 1]
    return pair


def statuses(pair: list[Worker], path: str, field: str, n: int, **headers: str) -> list[int]:
    return [pair[i % 2].post(path, {field: f"漏水 {i}"}, **headers)[0] for i in range(n)]


def test_limits_hold_across_workers_and_ignore_forwarded_addresses_from_untrusted_peers(untrusting: Server) -> None:
    pair = one_per_worker(untrusting)
    assert statuses(pair, "/v1/search", "query", SEARCH_LIMIT) == [200] * SEARCH_LIMIT
    status, headers, body = pair[0].post("/v1/search", {"query": "漏水"})
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60 // SEARCH_LIMIT + 1
    assert "频繁" in body["error"]["message"]  # type: ignore[index]
    # A client cannot escape by naming other addresses: the peer (127.0.0.1) is not a trusted proxy.
    forged = [{"X-Forwarded-For": f"203.0.113.{i}"} for i in range(6)]
    spoofed = [pair[i % 2].post("/v1/search", {"query": "漏水"}, **h) for i, h in enumerate(forged)]
    assert [code for code, _, _ in spoofed] == [429] * 6
    # Staff keys are not limited; the chat has a limit of its own.
    assert statuses(pair, "/v1/search", "query", 10, Authorization=f"Bearer {AGENT}") == [200] * 10
    assert statuses(pair, "/v1/chat", "question", CHAT_LIMIT + 1) == [200] * CHAT_LIMIT + [429]


def test_a_trusted_proxy_names_the_client(behind_proxy: Server) -> None:
    pair = one_per_worker(behind_proxy)
    tenant = {"X-Forwarded-For": "203.0.113.7"}
    assert statuses(pair, "/v1/search", "query", SEARCH_LIMIT + 1, **tenant) == [200] * SEARCH_LIMIT + [429]
    assert statuses(pair, "/v1/search", "query", 2, **{"X-Forwarded-For": "203.0.113.8"}) == [200, 200]
    # Only the address the trusted proxy appended counts: one the client wrote before it is not believed.
    chained = {"X-Forwarded-For": "198.51.100.99, 203.0.113.7"}
    assert statuses(pair, "/v1/search", "query", 2, **chained) == [429, 429]


def test_public_health_shows_no_degradation_details(tmp_path: Path, sops_copy: Path) -> None:
    s = hash_settings(tmp_path, sops_copy, api_keys=f"agent:{AGENT}")
    kb = KnowledgeBase.from_settings(s, embedder=HashEmbedder())
    assert kb.ingest().ok
    kb.close()
    with TestClient(create_app(s, load_in_background=False)) as c:
        public = c.get("/healthz").json()
        staff = c.get("/healthz", headers={"Authorization": f"Bearer {AGENT}"}).json()
    assert public["query_log"] is None and public["rate_limits"] is None and public["documents"] is None
    assert staff["query_log"]["status"] == "ok" and staff["rate_limits"]["status"] == "ok"
    assert public["database"] is None and staff["database"]["status"] == "ok"
    assert staff["database"]["webhook"] is None  # no webhook configured
