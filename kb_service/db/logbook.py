"""The service database as the service uses it: query log and feedback (query_log.py), published SOP versions
(versions.py), and `transaction()` / `rows()` for the other tables (gap reports, ...).

`Logbook(target)` takes a `Database` (SQLite or PostgreSQL, kb_service/db/engine.py) or the path of a SQLite file,
and brings its schema to the newest migration first (kb_service/db/migrate.py). `transaction()` yields a `Tx`
(`tx.execute(sql, params)` with `:name` parameters, rows with mapping access) and `rows(sql, params)` returns
mapping rows: portable SQL written to that contract runs on both databases (see engine.py's docstring).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import RowMapping

from kb_service.db import migrate
from kb_service.db.engine import Database, Tx
from kb_service.db.query_log import FALLBACK_BASE, LogStatus, QueryLog
from kb_service.db.versions import VersionRecord, Versions, has_pending_versions

__all__ = ["FALLBACK_BASE", "LogStatus", "Logbook", "VersionRecord", "has_pending_versions"]


class Logbook(QueryLog, Versions):
    """Thread-safe access to the service database; every write other than the query log's is its own transaction.

    `replica` names the data directory whose index this process changes (pending versions are settled only by it);
    '' where one data directory is the only one (SQLite)."""

    def __init__(self, target: Database | Path, *, replica: str = "") -> None:
        self.db = Database.of(target)
        self.replica = replica
        self._session = self.db.session()
        self._start_log()

    def _prepare(self) -> None:
        migrate.upgrade(self.db)

    def transaction(self) -> AbstractContextManager[Tx]:
        """One write transaction, for the other service tables (e.g. the gap report's)."""
        return self._session.transaction()

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[RowMapping]:
        self.flush()  # a report sees every query this process has answered
        return self._session.rows(sql, params)

    def close(self) -> None:
        self._stop.set()
        self._writer.join(timeout=10)
        self.flush()
        self._session.close()
