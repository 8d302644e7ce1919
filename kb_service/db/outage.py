"""One log line when a loop loses the service database, one every OUTAGE_LOG_SECONDS while it stays away, and one when
it is back (an operator's trial: the hand-over worker logged a 55-line traceback every second of a PostgreSQL
restart, burying the lines that mattered)."""

from __future__ import annotations

import logging
import threading
import time

from kb_service.errors import first_line

OUTAGE_LOG_SECONDS = 30.0


class OutageLog:
    def __init__(self, log: logging.Logger, what: str, every: float = OUTAGE_LOG_SECONDS) -> None:
        self.log = log
        self.what = what  # who lost it: "replica follower", "hand-over worker"
        self.every = every
        self._lock = threading.Lock()
        self._outage: tuple[float, float] | None = None  # since when, last said when (monotonic)

    @property
    def away(self) -> bool:
        return self._outage is not None

    def lost(self, exc: BaseException, retrying: str = "") -> None:
        """The database is unreachable: said when it happens, then once every `every` seconds (no traceback)."""
        now, first = time.monotonic(), first_line(exc)  # not SQL and links
        with self._lock:
            if self._outage is None:
                self._outage = (now, now)
                self.log.warning("%s lost the database (%s)%s", self.what, first, retrying)
            elif now - self._outage[1] >= self.every:
                since = now - self._outage[0]
                self.log.warning("%s still without the database after %.0f s (%s)", self.what, since, first)
                self._outage = (self._outage[0], now)

    def back(self) -> None:
        with self._lock:
            if self._outage is not None:
                since = time.monotonic() - self._outage[0]
                self.log.warning("%s has the database again after %.0f s", self.what, since)
                self._outage = None
