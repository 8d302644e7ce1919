"""The service database: SQLite under the data directory (the default) or PostgreSQL (`KB_DATABASE_URL`).

Every module that keeps state in the service database goes through `Database` and `Session`, and so runs on both:

- Tables are created and changed only by migrations (`kb_service/db/migrations/versions/`, Alembic, applied at
  start-up and by `kb db upgrade`), never at run time. Portable column types: `sa.Double` for floats (PostgreSQL's
  REAL is 4 bytes), `sa.LargeBinary` for bytes, `sa.BigInteger` for ids that may exceed 2**31.
- SQL is written once, portable, with `:name` parameters (`sqlalchemy.text`): `ON CONFLICT (...) DO NOTHING /
  DO UPDATE` instead of `INSERT OR IGNORE / REPLACE`, `RETURNING id` instead of `lastrowid`. A list or tuple value
  expands: `WHERE id IN :ids`. What differs is asked of `tx.dialect` ("sqlite" or "postgresql").
- `session.transaction()` is one write transaction (SQLite: BEGIN IMMEDIATE, so writers queue instead of failing;
  PostgreSQL: BEGIN, READ COMMITTED). It yields a `Tx`: `tx.execute(sql, params)` returns a `Result` whose rows have
  mapping access (`row["name"]`, `dict(row)`); `tx.executemany(sql, [params, ...])`; `tx.lock(name)` serialises
  transactions that read before they write (a PostgreSQL advisory lock until commit; SQLite's IMMEDIATE already does).
  `durable=True` makes the commit survive a power cut before it returns (SQLite: synchronous=FULL for it).
- `session.rows(sql, params)` reads outside a transaction (autocommit) and returns mapping rows.
- Database errors are `DB_ERRORS` on both (SQLAlchemy wraps the drivers' own).
- Traps that SQLite forgives and PostgreSQL does not: a subquery in FROM needs an alias; integers are not booleans
  (`handoff <> 0`, `SUM(CASE WHEN vote = 1 THEN 1 ELSE 0 END)`); every selected column not aggregated is in GROUP BY;
  two-argument `MAX(a, b)` is `GREATEST`; JSON functions differ (`json_each` / `jsonb_array_elements_text`).
A new table or column is a new revision in `migrations/versions/` (the next number, `down_revision` the previous).
`Logbook.transaction()` and `Logbook.rows()` (kb_service/db/logbook.py) are this contract on the service's connection.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Integer, RowMapping, String, bindparam, create_engine, event, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from kb_service.db.deployment_mark import refuse_sqlite, remember
from kb_service.errors import ConfigError

log = logging.getLogger(__name__)

DB_ERRORS = (SQLAlchemyError, sqlite3.Error)
Dialect = Literal["sqlite", "postgresql"]
Params = Mapping[str, Any]

SQLITE_TIMEOUT = 10.0  # seconds a SQLite statement waits for another process's write lock
CONNECT_TIMEOUT = 5  # seconds to reach the PostgreSQL server


def engine_url(url: str) -> str:
    """The SQLAlchemy URL of a `KB_DATABASE_URL` (postgresql:// is served by psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("postgresql+psycopg://", "sqlite://")):
        return url
    raise ConfigError("KB_DATABASE_URL must start with postgresql:// (or be empty for SQLite under KB_DATA_DIR)")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.blake2b(f"kb:{name}".encode(), digest_size=8).digest(), "big", signed=True)


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    try:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # WAL with NORMAL sync never corrupts the database; a power cut may lose the last few log rows, which is the
        # right trade for a log written on every search. Publishing's rows are written durably (`durable=True`).
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error:  # a read-only file: it is still read, writes fail where they are tried
        pass


def _engine(url: str) -> Engine:
    """One engine per URL and process, in autocommit mode: transactions are begun explicitly (`Session`)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                # Each session holds its own connection for its lifetime; SQLite's file locks do the rest.
                engine = create_engine(
                    url,
                    poolclass=NullPool,
                    isolation_level="AUTOCOMMIT",
                    connect_args={"timeout": SQLITE_TIMEOUT, "check_same_thread": False},
                )
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(
                    url,
                    isolation_level="AUTOCOMMIT",
                    pool_pre_ping=True,
                    pool_size=4,
                    max_overflow=16,
                    connect_args={"connect_timeout": CONNECT_TIMEOUT, "application_name": "kb"},
                )
            _engines[url] = engine
        return engine


class Database:
    """Which service database: a SQLite file or a PostgreSQL server (`from_settings`)."""

    def __init__(self, url: str) -> None:
        self.url = engine_url(url)
        self.dialect: Dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        self.path = Path(self.url.removeprefix("sqlite:///")) if self.dialect == "sqlite" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def sqlite(cls, path: Path) -> Database:
        return cls(f"sqlite:///{path}")

    @classmethod
    def from_settings(cls, settings: Any) -> Database:
        """PostgreSQL when `KB_DATABASE_URL` is set, else `service.sqlite3` under the data directory, unless the
        directory is a PostgreSQL deployment's (ConfigError; kb_service/db/deployment_mark.py)."""
        if not settings.database_url:
            refuse_sqlite(settings.data_dir)
            return cls.sqlite(settings.db_path)
        database = cls(settings.database_url)
        remember(settings.data_dir, database.describe())
        return database

    @classmethod
    def of(cls, target: Database | Path) -> Database:
        return target if isinstance(target, Database) else cls.sqlite(target)

    @property
    def engine(self) -> Engine:
        return _engine(self.url)

    @property
    def shared(self) -> bool:
        """Whether several hosts may share it (replicas then follow each other's publishes)."""
        return self.dialect == "postgresql"

    def session(self, *, statement_timeout_ms: int = 0) -> Session:
        return Session(self, statement_timeout_ms=statement_timeout_ms)

    def describe(self) -> str:
        """Where it is, without a password (for logs and `kb db` output)."""
        return str(self.path) if self.path is not None else self.engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.describe()!r})"


class Result:
    """A statement's rows (fetched at once, with mapping access) and how many rows it changed."""

    def __init__(self, rows: list[RowMapping], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> RowMapping | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[RowMapping]:
        return self.rows

    def scalar(self) -> Any:
        return next(iter(self.rows[0].values())) if self.rows else None


def _statement(sql: str, params: Params) -> Any:
    stmt = text(sql)
    expanding = [k for k, v in params.items() if isinstance(v, (list, tuple))]
    if expanding:  # typed by their items (an empty list compares as text: guard empty lists of numbers)
        kinds = {
            k: Integer() if params[k] and all(isinstance(v, int) for v in params[k]) else String() for k in expanding
        }
        stmt = stmt.bindparams(*(bindparam(k, expanding=True, type_=kinds[k]) for k in expanding))
    return stmt


def _run(conn: Connection, sql: str, params: Params) -> Result:
    cursor = conn.execute(_statement(sql, params), dict(params))
    rows = list(cursor.mappings().all()) if cursor.returns_rows else []
    return Result(rows, cursor.rowcount if cursor.rowcount >= 0 else len(rows))


class Tx:
    """One transaction of a `Session` (see the module docstring)."""

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect: Dialect = dialect

    def execute(self, sql: str, params: Params | None = None) -> Result:
        return _run(self._conn, sql, params or {})

    def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        if not rows:
            return 0
        return int(self._conn.execute(_statement(sql, rows[0]), [dict(r) for r in rows]).rowcount)

    def lock(self, name: str) -> None:
        """Hold `name` until the transaction ends: transactions that read, then write what they read, queue here."""
        if self.dialect == "postgresql":
            self._conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({lock_key(name)})")


class Session:
    """One connection of one component (the query log, the learned store, ...), used by one thread at a time.

    A connection that fails is dropped and opened afresh at the next use (a repaired SQLite file, a restarted
    PostgreSQL server)."""

    def __init__(self, db: Database, *, statement_timeout_ms: int = 0) -> None:
        self.db = db
        self.dialect = db.dialect
        self._statement_timeout_ms = statement_timeout_ms
        self._conn: Connection | None = None
        self._lock = threading.RLock()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._drop()
            conn = self.db.engine.connect()
            if self._statement_timeout_ms and self.dialect == "postgresql":
                conn.exec_driver_sql(f"SET statement_timeout = {int(self._statement_timeout_ms)}")
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(*DB_ERRORS):
                conn.close()

    def reset(self) -> None:
        """Drop the connection: the next use opens a new one."""
        with self._lock:
            self._drop()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[Tx]:
        with self._lock:
            conn = self._connection()
            sqlite_durable = durable and self.dialect == "sqlite"
            try:
                if sqlite_durable:
                    conn.exec_driver_sql("PRAGMA synchronous=FULL")
                conn.exec_driver_sql("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
            except DB_ERRORS:
                self._drop()
                raise
            try:
                yield Tx(conn, self.dialect)
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                if sqlite_durable and self._conn is conn:
                    try:
                        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    except DB_ERRORS:
                        self._drop()

    def _rollback(self, conn: Connection) -> None:
        try:
            conn.exec_driver_sql("ROLLBACK")
        except DB_ERRORS:  # rolled back already (SQLite after an I/O error) or the connection is gone
            self._drop()

    def rows(self, sql: str, params: Params | None = None) -> list[RowMapping]:
        with self._lock:
            conn = self._connection()
            try:
                return _run(conn, sql, params or {}).rows
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    self._drop()
                raise

    def close(self) -> None:
        self.reset()
