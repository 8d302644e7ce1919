"""The gap report off the request path: computed reports are stored in the service database (`gap_reports`) and
served to every process. A request gets the stored report at once; when it is older than TTL, one process (the one
that claims it in the database) refreshes it in the background. Only a window nobody asked for lately is computed in
the request, at the bounded cost of kb_service/trainer/gaps.py. When the database cannot be written, reports are kept in
the process instead.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from datetime import date

from kb_service.db.engine import DB_ERRORS
from kb_service.errors import first_line
from kb_service.models import Sop
from kb_service.trainer.gap_groups import read_table
from kb_service.trainer.gaps import GapReport, GapReporter, GapSnapshot

log = logging.getLogger(__name__)

TTL = 60.0  # seconds a stored report is served before a background refresh
REFRESH_TIMEOUT = 600.0  # seconds after which another process may take over a refresh that never finished
DEFAULT_DAYS = 30


def window_key(since: float | None, until: float | None, now: float) -> tuple[str, float, float]:
    """The stored report's key and the window it covers. A window up to now is keyed by its start, rounded to about
    1-2% of its length (a power of two minutes), so that "the last 7 days" asked an hour later or "today" asked in
    the afternoon is the stored report (refreshed in the background), not a new one computed in the request."""
    if until is None:
        start = since if since is not None else now - DEFAULT_DAYS * 86400
        grain = 60 * 2 ** max(0, math.floor(math.log2(max(now - start, 1) / 6000)))
        return f"recent:{grain}:{int(start // grain)}", start, now + 1
    start = since if since is not None else until - DEFAULT_DAYS * 86400
    return f"fixed:{start!r}:{until!r}", start, until


class GapReports:
    """Stored reports shared by every process: `report()` answers at once unless nobody asked for the window lately."""

    def __init__(self, reporter: GapReporter, ttl: float = TTL) -> None:
        self.reporter = reporter
        self.ttl = ttl
        self._memory: dict[str, GapSnapshot] = {}  # when the database cannot store a report
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def report(
        self, since: float | None, until: float | None, catalog: Mapping[str, Sop], today: date | None = None
    ) -> GapReport:
        key, start, end = window_key(since, until, time.time())
        snapshot = self._stored(key)
        if snapshot is None:
            snapshot = self._compute(key, start, end)
        elif time.time() - snapshot.computed_at >= self.ttl:
            self._refresh_in_background(key, since, until)
        return snapshot.report(catalog, today)

    def _stored(self, key: str) -> GapSnapshot | None:
        rows = read_table(self.reporter.logbook, "SELECT body FROM gap_reports WHERE key = :key", {"key": key})
        stored = GapSnapshot.model_validate_json(rows[0]["body"]) if rows else None
        memory = self._memory.get(key)
        if memory is not None and (stored is None or memory.computed_at > stored.computed_at):
            return memory
        return stored

    def _compute(self, key: str, start: float, end: float) -> GapSnapshot:
        snapshot = self.reporter.compute(start, end)
        try:
            with self.reporter.logbook.transaction() as c:
                c.execute(
                    "INSERT INTO gap_reports (key, computed_at, body) VALUES (:key, :at, :body) ON CONFLICT (key) DO "
                    "UPDATE SET computed_at = excluded.computed_at, body = excluded.body, refreshing_until = 0 "
                    "WHERE excluded.computed_at > gap_reports.computed_at",
                    {"key": key, "at": snapshot.computed_at, "body": snapshot.model_dump_json()},
                )
                c.execute("DELETE FROM gap_reports WHERE computed_at < :old", {"old": snapshot.computed_at - 86400})
        except DB_ERRORS as exc:
            log.warning("gap report cannot be stored (%s): kept in this process", first_line(exc))
            with self._lock:
                self._memory[key] = snapshot
        return snapshot

    def _claim(self, key: str) -> bool:
        """Whether this process refreshes `key` now (one process at a time; every process if none can write)."""
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
        now = time.time()
        try:
            with self.reporter.logbook.transaction() as c:
                claimed = c.execute(
                    "UPDATE gap_reports SET refreshing_until = :until WHERE key = :key AND refreshing_until < :now",
                    {"until": now + REFRESH_TIMEOUT, "key": key, "now": now},
                ).rowcount
        except DB_ERRORS:
            claimed = 1
        if not claimed:
            with self._lock:
                self._refreshing.discard(key)
        return bool(claimed)

    def _refresh_in_background(self, key: str, since: float | None, until: float | None) -> None:
        if not self._claim(key):
            return

        def run() -> None:
            try:
                _, start, end = window_key(since, until, time.time())
                self._compute(key, start, end)
            except Exception:  # a failed refresh leaves the stored report; the claim expires
                log.exception("gap report refresh failed")
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, name="gap-report", daemon=True).start()
