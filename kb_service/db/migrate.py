"""Schema migrations of the service database (Alembic, `kb_service/db/migrations/versions/`).

`upgrade(db)` brings a database to the newest revision; every process calls it at start-up and `kb db upgrade` runs
it by hand. A database already there is only read (a read-only SQLite file still opens). Processes starting together
take turns: a PostgreSQL advisory lock, or a lock file beside the SQLite database, around the check and the upgrade,
so each revision runs once. Databases made by releases before migrations are adopted by revision 0001, which creates
only what is missing.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from kb_service.db.engine import DB_ERRORS, Database, lock_key

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return revision


def current(db: Database) -> str | None:
    """The database's revision (None: never migrated, e.g. made by a release before migrations, or empty)."""
    with db.engine.connect() as conn:
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except DB_ERRORS:
            return None
    return str(row[0]) if row else None


@contextmanager
def _exclusive(db: Database) -> Iterator[None]:
    """One upgrading process at a time, for every process that shares the database."""
    if db.path is not None:
        with open(db.path.with_name(db.path.name + ".migrate.lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with db.engine.connect() as conn:
        key = lock_key("migrate")
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")


def upgrade(db: Database) -> bool:
    """Bring `db` to the newest revision; True when something was applied."""
    if current(db) == head():
        return False
    with _exclusive(db):
        before = current(db)
        if before == head():  # another process did it while this one waited
            return False
        engine = create_engine(db.url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                config = _config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        finally:
            engine.dispose()
    log.info("service database %s upgraded from %s to %s", db.describe(), before or "(none)", head())
    return True
