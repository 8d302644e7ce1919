"""`kb serve` with several worker processes: connections are spread evenly, a crashed worker is replaced, SIGTERM
stops cleanly, and an app that cannot start stops the service instead of restarting forever (api/serving/balancer.py).

Live processes on 127.0.0.1 with the hash embedder (mechanics only); workers are found through /proc (Linux)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    Served,
    connections_per_worker,
    free_port,
    healthy,
    index_with_hash,
    open_keepalive,
    start_serve,
    status,
    stop,
    takes_connections,
    wait_for,
    wait_until_serving,
    workers_of,
)

pytestmark = [  # every test starts a service of several model-loading processes
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads connections from Linux /proc"),
]


Service = Served


def start_service(
    tmp_path: Path, sops: Path, before_start: Callable[[Path], None] | None = None, **env_extra: str
) -> Service:
    """`kb serve --workers 2` over the indexed sample corpus; `before_start(generation_dir)` may damage the index."""
    generation = index_with_hash(tmp_path, sops)
    if before_start is not None:
        before_start(tmp_path / "data" / "index" / str(generation))
    return start_serve(tmp_path / "data", sops, tmp_path / "serve.log", **env_extra)


@pytest.fixture
def service(tmp_path: Path, sops_copy: Path) -> Iterator[Service]:
    svc = start_service(tmp_path, sops_copy)
    try:
        wait_until_serving(svc)  # both workers up and healthy: new connections go to the emptier one
        yield svc
    finally:
        stop(svc)


def test_a_burst_of_connections_while_the_workers_start_is_served_in_full(tmp_path: Path, sops_copy: Path) -> None:
    svc = start_service(tmp_path, sops_copy)
    try:
        assert wait_for(lambda: _listening(svc.port), 30), svc.output()
        # Connections arrive before the workers have imported the app: they queue for the workers, none is dropped.
        with ThreadPoolExecutor(40) as pool:
            statuses = list(pool.map(lambda _: status(svc.port, timeout=60), range(40)))
        assert all(s in (200, 503) for s in statuses), (statuses, svc.output())
    finally:
        svc.proc.kill()
        svc.proc.wait()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_keepalive_connections_are_spread_evenly_over_workers(
    service: Service,
) -> None:
    proc, port = service.proc, service.port
    conns = open_keepalive(port, 8)
    counts = connections_per_worker(proc.pid, port)
    assert sorted(counts.values()) == [4, 4], counts
    # Close the four held by one worker: closed connections are reported back, so the next four all go to it.
    first = connections_per_worker(proc.pid, port)
    for c in conns[0::2]:  # alternate hand-outs: the even ones went to the same worker
        c.close()
    assert wait_for(lambda: sorted(connections_per_worker(proc.pid, port).values()) == [0, 4], 10)
    time.sleep(0.3)
    kept = conns[1::2] + open_keepalive(port, 4)
    assert connections_per_worker(proc.pid, port) == first
    for c in kept:
        c.close()


def _metric(text: str, line_start: str) -> float:
    found = [line for line in text.splitlines() if line.startswith(line_start)]
    assert len(found) == 1, (line_start, text[:2000])
    return float(found[0].rsplit(" ", 1)[1])


def test_metrics_count_the_requests_of_every_worker_whichever_answers_the_scrape(service: Service) -> None:
    conns = open_keepalive(service.port, 8)
    assert sorted(connections_per_worker(service.proc.pid, service.port).values()) == [4, 4]
    for conn in conns:  # four requests to each worker
        conn.request("GET", "/no-such-page")
        conn.getresponse().read()
    count = 'kb_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}'
    for conn in conns[:2]:  # one scrape through each worker
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        text = response.read().decode()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/plain")
        assert _metric(text, count) == 8.0
        assert _metric(text, "kb_ready ") == 1.0 and _metric(text, "kb_database_up ") == 1.0
    for conn in conns:
        conn.close()


def test_a_crashed_worker_is_replaced_and_the_service_keeps_answering(
    service: Service,
) -> None:
    proc, port = service.proc, service.port
    victim = workers_of(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    # The other worker answers meanwhile (a connection handed over at the instant of the crash is lost with it).
    assert wait_for(lambda: healthy(port), 10)
    assert wait_for(lambda: len(workers_of(proc.pid)) == 2 and victim not in workers_of(proc.pid), 30)
    assert wait_for(lambda: takes_connections(proc.pid, port), 60), service.output()
    conns = open_keepalive(port, 6)
    assert sorted(connections_per_worker(proc.pid, port).values()) == [3, 3]
    for c in conns:
        c.close()
    assert proc.poll() is None


def test_sigterm_stops_the_workers_and_exits_cleanly(service: Service) -> None:
    proc = service.proc
    workers = workers_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{pid}").exists() and b"spawn_main" in _cmdline(pid) for pid in workers)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_an_app_that_cannot_start_stops_the_service_instead_of_restarting_it_forever() -> None:
    config = "uvicorn.Config('missing_module:app', port={port})"
    code = f"import uvicorn; from api.serving.balancer import run; run({config}, 2)"
    proc = subprocess.run(
        [sys.executable, "-c", code.format(port=free_port())], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "before it started" in proc.stderr


def test_workers_exit_when_the_parent_is_killed(service: Service) -> None:
    proc = service.proc
    workers = workers_of(proc.pid)
    proc.kill()  # SIGKILL: no chance to stop them; they see their channel close
    proc.wait()
    assert wait_for(lambda: not any(b"spawn_main" in _cmdline(pid) for pid in workers), 30), "orphaned workers"


def health(port: int) -> tuple[int, dict[str, object]]:
    """Status and body of GET /healthz; (-1, {}) if the connection failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    except OSError:
        return -1, {}
    finally:
        conn.close()


def search_status(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/search", body=json.dumps({"query": "天花板漏水"}), headers=JSON)
        return conn.getresponse().status
    finally:
        conn.close()


JSON = {"Content-Type": "application/json"}


def health_of_each_worker(port: int, workers: int = 2) -> list[tuple[int, dict[str, object]]]:
    """GET /healthz on `workers` connections held open together: while none is healthy the balancer hands a new
    connection to the worker holding fewest, so each worker answers one (one at a time, all went to the first)."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(workers)]
    out: list[tuple[int, dict[str, object]]] = []
    try:
        for conn in conns:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            out.append((response.status, json.loads(response.read() or b"{}")))
    except OSError:
        out.append((-1, {}))
    finally:
        for conn in conns:
            conn.close()
    return out


def vector_file(generation: Path) -> Path:
    return next(generation.glob("segments/*/vector_storage-dense/vectors/chunk_0.mmap"))


def rebuild(tmp_path: Path, sops: Path) -> None:
    """`kb ingest --rebuild` from another process, next to the running server."""
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "data"), "KB_SOPS_DIR": str(sops), "KB_EMBEDDER": "hash"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest", "--rebuild"], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_damaged_index_at_start_is_not_ready_with_a_reason_and_a_rebuild_is_served_without_a_restart(
    tmp_path: Path, sops_copy: Path
) -> None:
    svc = start_service(tmp_path, sops_copy, before_start=lambda g: os.truncate(vector_file(g), 4096))
    try:
        # Both workers have loaded the model and checked the index.
        assert wait_for(lambda: all(b.get("status") == "error" for _, b in health_of_each_worker(svc.port)), 90), (
            svc.output()
        )
        code, body = health(svc.port)
        assert code == 503 and body["status"] == "error", body
        assert "chunk_0.mmap" in str(body["reason"]) and "kb ingest" in str(body["reason"]), body
        assert search_status(svc.port) == 503
        workers = workers_of(svc.proc.pid)
        rebuild(tmp_path, sops_copy)
        # Both workers pick the new generation up.
        assert wait_for(lambda: all(c == 200 for c, _ in health_of_each_worker(svc.port)), 30), svc.output()
        assert search_status(svc.port) == 200
        assert workers_of(svc.proc.pid) == workers and svc.proc.poll() is None  # no worker restarted or crashed
    finally:
        svc.proc.kill()
        svc.proc.wait()


def test_a_deleted_live_generation_is_503_in_healthz_until_one_is_published(
    service: Service, tmp_path: Path, sops_copy: Path
) -> None:
    code, body = health(service.port)
    assert code == 200 and body["reason"] is None
    shutil.rmtree(tmp_path / "data" / "index" / str(body["generation"]))
    assert wait_for(lambda: all(health(service.port)[0] == 503 for _ in range(4)), 10), service.output()
    # /healthz looks at the files on every call; a search notices at its worker's next check (every second), and the
    # files it has open stay readable until then.
    assert wait_for(lambda: all(search_status(service.port) == 503 for _ in range(4)), 5), service.output()
    rebuild(tmp_path, sops_copy)
    assert wait_for(lambda: all(health(service.port)[0] == 200 for _ in range(4)), 30), service.output()
    # Each worker follows on its own: one may still be opening the new generation when another says it is ready.
    assert wait_for(lambda: all(search_status(service.port) == 200 for _ in range(4)), 10), service.output()


def test_a_file_cut_short_under_a_running_server_is_reported_instead_of_read(service: Service, tmp_path: Path) -> None:
    _, body = health(service.port)
    workers = workers_of(service.proc.pid)
    # Reading a mapped page past the new end of a file kills the process (SIGBUS): /healthz checks the files' sizes
    # before its probe reads from them, and searches stop using the generation at their next check (every second).
    os.truncate(vector_file(tmp_path / "data" / "index" / str(body["generation"])), 0)
    assert wait_for(lambda: all(health(service.port)[0] == 503 for _ in range(4)), 10), service.output()
    _, body = health(service.port)
    assert "chunk_0.mmap" in str(body["reason"]), body
    time.sleep(1.5)
    assert search_status(service.port) == 503
    assert workers_of(service.proc.pid) == workers and service.proc.poll() is None
