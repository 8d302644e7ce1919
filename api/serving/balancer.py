"""Several uvicorn worker processes behind one accept loop that gives each new connection to the least-loaded worker.

uvicorn's own multi-process mode lets every worker accept from the shared listening socket, and whichever wakes first
takes all the connections that are waiting. Clients keep their connections open (keep-alive), so a burst of eight
connections can land 8/0 or 6/2 on two workers and stay that way: one core idles while the other queues requests
(measured: p95 at 8 clients 25-27 ms when the split was 4/4, 29-37 ms otherwise). Here the parent process owns the
listening socket, accepts, and passes each connection's file descriptor (SCM_RIGHTS over a Unix socket pair) to the
worker with the fewest open connections; a worker reports each closed connection back with one byte. After the
hand-over the parent is out of the request path: requests and responses flow between the client and the worker.

The parent restarts a worker that dies and, on SIGINT or SIGTERM, stops accepting and lets the workers finish their
requests (uvicorn's graceful shutdown) before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from kb_service.errors import first_line

log = logging.getLogger("uvicorn.error")
_spawn = multiprocessing.get_context("spawn")
_CLOSED = b"x"  # worker -> parent: one of my connections closed
_STARTED = b"s"  # worker -> parent: the app started; it serves the connections it is given
_HEALTHY = b"h"  # worker -> parent: its health check answers 200 (model and index loaded)
_CONN = b"c"  # parent -> worker: this message carries a connection's descriptor


class _ChannelServer(uvicorn.Server):
    """A uvicorn server that listens on nothing and serves the connections its parent hands over on `channel`."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket, health_path: str) -> None:
        super().__init__(config)
        self.channel = channel
        self.health_path = health_path
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbox = bytearray()  # messages to the parent that its full socket buffer has not taken yet
        self._retrying = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # lifespan start-up (the app loads its model and index); no listener
        base = self.config.http_protocol_class
        tell = self._tell

        class Counted(base):  # type: ignore[valid-type, misc]
            def connection_lost(self, exc: Exception | None) -> None:
                try:
                    super().connection_lost(exc)
                finally:  # the parent's count must follow every close
                    tell(_CLOSED)

        def factory() -> asyncio.Protocol:
            proto: asyncio.Protocol = Counted(
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state
            )
            return proto

        self._factory = factory
        self._loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        self._loop.add_reader(self.channel.fileno(), self._receive)
        self._tell(_STARTED)
        self._spawn_task(self._announce_health())

    def _tell(self, message: bytes = b"") -> None:
        """Send to the parent without blocking the loop; what its socket buffer cannot take now is sent later, in
        order, so no message (and no closed-connection count) is lost."""
        self._outbox += message
        if not self._outbox:
            return
        try:
            sent = self.channel.send(self._outbox)
        except BlockingIOError:
            sent = 0
        except OSError:  # the parent is gone: the channel's end of file stops this worker
            self._outbox.clear()
            return
        del self._outbox[:sent]
        if self._outbox and not self._retrying:
            self._retrying = True
            self._loop.call_later(0.05, self._retry)

    def _retry(self) -> None:
        self._retrying = False
        self._tell()

    def _spawn_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce_health(self) -> None:
        """Ask the app itself (an in-process ASGI call, no socket) until it is healthy, then tell the parent."""
        while not self.should_exit:
            if await _asgi_status(self.config.loaded_app, self.health_path, self.lifespan.state) == 200:
                self._tell(_HEALTHY)
                return
            await asyncio.sleep(0.2)

    def _receive(self) -> None:
        while True:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(self.channel, 16, 4)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            if not msg:  # the parent closed the channel: stop
                self._loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                conn = socket.socket(fileno=fd)
                conn.setblocking(False)
                self._spawn_task(self._loop.connect_accepted_socket(self._factory, conn))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if hasattr(self, "_loop"):
            self._loop.remove_reader(self.channel.fileno())
        await super().shutdown(sockets)


async def _asgi_status(app: Any, path: str, state: dict[str, Any]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "state": dict(state),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    try:
        await app(scope, receive, send)
    except Exception:  # an app that fails its health check is simply not healthy yet
        return 0
    return status


def _worker_main(config: uvicorn.Config, channel: socket.socket, health_path: str) -> None:
    config.configure_logging()
    # uvicorn re-raises a captured Ctrl+C after its graceful shutdown; the parent expects this exit, as uvicorn's own
    # worker processes do, so no traceback.
    with contextlib.suppress(KeyboardInterrupt):
        _ChannelServer(config, channel, health_path).run()


@dataclass
class _Worker:
    index: int
    process: SpawnProcess
    channel: socket.socket
    connections: int = 0
    started: bool = False
    healthy: bool = False


class Balancer:
    """The parent process: owns the listening socket, spawns `workers` processes and balances connections."""

    def __init__(self, config: uvicorn.Config, workers: int, health_path: str) -> None:
        self.config = config
        self.n = workers
        self.health_path = health_path
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.exit_code: int | None = None

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (exit status 0) or until a worker fails to start (its status)."""
        listener = self.config.bind_socket()
        listener.listen(self.config.backlog)
        listener.setblocking(False)
        log.info("Balancing connections over %d worker processes [%d]", self.n, os.getpid())
        self.workers = [self._spawn(i) for i in range(self.n)]
        self.selector.register(listener, selectors.EVENT_READ, None)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.exit_code is None:
                for key, _ in self.selector.select(timeout=0.5):
                    if key.data is None:
                        self._accept(listener)
                    else:
                        self._drain(key.data)
                self._reap()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.selector.unregister(listener)
            listener.close()
            self._stop_workers()
        return self.exit_code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("Shutting down: no new connections; workers finish their requests")
        self.exit_code = 0

    def _spawn(self, index: int) -> _Worker:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = _spawn.Process(
            target=_worker_main, args=(self.config, child_end, self.health_path), name=f"kb-worker-{index}"
        )
        process.start()
        child_end.close()
        parent_end.setblocking(False)
        worker = _Worker(index, process, parent_end)
        self.selector.register(parent_end, selectors.EVENT_READ, worker)
        return worker

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: keep serving the connections we have
                log.warning("accept failed: %s", first_line(exc))
                return
            with conn:
                # Healthy workers first (one restarting after a crash is still loading its model), then the fewest
                # open connections; ties go to the lowest index, which spreads a burst evenly. A worker that died
                # since the last check fails the hand-over, and the next one takes the connection.
                ranked = sorted(self.workers, key=lambda w: (not w.healthy, w.connections, w.index))
                for target in ranked:
                    try:
                        socket.send_fds(target.channel, [_CONN], [conn.fileno()])
                    except OSError as exc:
                        log.warning("could not hand a connection to worker %d: %s", target.index, first_line(exc))
                        continue
                    target.connections += 1
                    break

    def _drain(self, worker: _Worker) -> None:
        while True:
            try:
                data = worker.channel.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the worker exited; _reap restarts it
                worker.healthy = False
                self.selector.unregister(worker.channel)
                return
            worker.started = worker.started or _STARTED in data
            worker.healthy = worker.healthy or _HEALTHY in data
            worker.connections = max(0, worker.connections - data.count(_CLOSED))

    def _reap(self) -> None:
        for i, worker in enumerate(self.workers):
            if worker.process.is_alive() or self.exit_code is not None:
                continue
            if not worker.started:  # it never started (e.g. the app does not import): a restart fails the same way
                log.error("Worker %d exited with code %s before it started; stopping", i, worker.process.exitcode)
                self.exit_code = worker.process.exitcode or STARTUP_FAILURE
                return
            log.error("Worker %d exited with code %s; restarting it", i, worker.process.exitcode)
            with contextlib.suppress(KeyError, ValueError):  # already unregistered when its channel closed
                self.selector.unregister(worker.channel)
            worker.channel.close()
            self.workers[i] = self._spawn(i)

    def _stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + (self.config.timeout_graceful_shutdown or 30)
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()


def run(config: uvicorn.Config, workers: int, health_path: str = "/healthz") -> None:
    """Serve `config` from `workers` processes (one process: plain uvicorn, nothing to balance). New connections go
    to workers whose `health_path` answers 200 while any does."""
    if workers <= 1:
        uvicorn.Server(config).run()
        return
    sys.exit(Balancer(config, workers, health_path).run())
