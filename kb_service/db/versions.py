"""Published SOP versions in the service database: the history trainers read, and the pending rows that make a
publish crash-safe (ingest/publishing.py).

A publish commits a *pending* row first (with the content's hash and the file it replaces), then goes live. The row
names the replica (data directory) whose index the publish changes: only that replica settles it after a crash.
With PostgreSQL, the live rows are also what replicas follow (ingest/replicas.py): each row going live is announced
on the `kb_sop_versions` channel.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb_service.db.engine import Database, Session
from kb_service.errors import VersionConflictError

NOTIFY_CHANNEL = "kb_sop_versions"
REPLICA_FILE = "replica-id"
# The author of every `import` row: the SOP folder's own version (from `kb ingest` or start-up), recorded when the
# first change through the API needs it as history. It is nobody's publish (an account may not take this name).
SYSTEM_AUTHOR = "system"


@dataclass(frozen=True)
class VersionRecord:
    sop_id: str
    version: int
    ts: float
    action: str  # import | publish | rollback | delete
    author: str  # the account (or service key) that published; SYSTEM_AUTHOR for an import
    path: str
    content: str
    state: str = "live"
    content_hash: str = ""
    previous: bytes | None = None
    replica: str = ""  # the replica that wrote a pending row ('' = any: one data directory)


def replica_name(data_dir: Path) -> str:
    """This data directory's replica id, made once and kept in `<data_dir>/replica-id` (every process of one data
    directory shares it; a copied data directory should get a new one)."""
    path = data_dir / REPLICA_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(uuid.uuid4().hex)
    except FileExistsError:  # another process made it first
        pass
    return path.read_text(encoding="utf-8").strip()


def _record(row: Any) -> VersionRecord:
    record = dict(row)
    if record["action"] == "import":  # rows written before imports had their own author named the trainer
        record["author"] = SYSTEM_AUTHOR
    return VersionRecord(**record)


def has_pending_versions(target: Path | Database, replica: str = "") -> bool:
    """Whether an interrupted publish of this replica left a pending version. A SQLite file is opened read-only
    (readers need not write the database)."""
    if isinstance(target, Database):
        session = target.session()
        try:
            rows = session.rows(
                "SELECT 1 AS x FROM sop_versions WHERE state = 'pending' AND replica IN ('', :replica) LIMIT 1",
                {"replica": replica},
            )
        finally:
            session.close()
        return bool(rows)
    if not target.exists():
        return False
    conn = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(sop_versions)")}
        if "state" not in columns:
            return False
        sql = "SELECT 1 FROM sop_versions WHERE state = 'pending'"
        if "replica" in columns:
            sql += " AND replica IN ('', ?)"
            return conn.execute(sql + " LIMIT 1", (replica,)).fetchone() is not None
        return conn.execute(sql + " LIMIT 1").fetchone() is not None
    finally:
        conn.close()


# Each SOP's newest live version row; and the SOPs whose newest live version is a deletion: deleted through a publish
# on whichever replica, not merely missing from one replica's index (ingest/learning.py keeps the learned phrasings
# of those)
LATEST_LIVE = (
    "SELECT v.* FROM sop_versions v JOIN (SELECT sop_id, MAX(version) AS version FROM sop_versions"
    " WHERE state = 'live' GROUP BY sop_id) m ON m.sop_id = v.sop_id AND m.version = v.version"
)
DELETED_SOPS = f"SELECT d.sop_id FROM ({LATEST_LIVE}) d WHERE d.action = 'delete'"


class Versions:
    """The version rows (a part of `Logbook`, which supplies the session, the replica id and `rows`)."""

    _session: Session
    replica: str

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        raise NotImplementedError

    def versions(self, sop_id: str) -> list[VersionRecord]:
        """The published (live) versions, oldest first."""
        sql = "SELECT * FROM sop_versions WHERE sop_id = :sop AND state = 'live' ORDER BY version"
        return [_record(r) for r in self.rows(sql, {"sop": sop_id})]

    def version(self, sop_id: str, version: int) -> VersionRecord | None:
        sql = "SELECT * FROM sop_versions WHERE sop_id = :sop AND version = :v AND state = 'live'"
        rows = self.rows(sql, {"sop": sop_id, "v": version})
        return _record(rows[0]) if rows else None

    def created_since(self, ts: float) -> set[str]:
        """SOPs created by a publish (their first version, not the import of a folder's file) after `ts`."""
        sql = "SELECT sop_id FROM sop_versions WHERE state = 'live' AND version = 1 AND action = 'publish' AND ts > :ts"
        return {r["sop_id"] for r in self.rows(sql, {"ts": ts})}

    def latest_version(self, sop_id: str) -> int:
        sql = "SELECT MAX(version) AS v FROM sop_versions WHERE sop_id = :sop AND state = 'live'"
        return int(self.rows(sql, {"sop": sop_id})[0]["v"] or 0)

    def latest_live(self) -> dict[str, VersionRecord]:
        """Each SOP's newest live version (what replicas follow)."""
        return {r["sop_id"]: _record(r) for r in self.rows(LATEST_LIVE)}

    def pending_versions(self) -> list[VersionRecord]:
        """This replica's versions whose publish has not finished (interrupted, or under way in the process holding
        the writer lock). Another replica's are its own to settle: its index decides them."""
        sql = "SELECT * FROM sop_versions WHERE state = 'pending' AND replica IN ('', :r) ORDER BY sop_id, version"
        return [_record(r) for r in self.rows(sql, {"r": self.replica})]

    def add_versions(self, records: list[VersionRecord], expected_latest: int) -> None:
        """Insert versions of one SOP in one transaction, only if no version, live or pending, came after
        `expected_latest` (compare-and-set), on disk before it returns."""
        sop_id = records[0].sop_id
        with self._session.transaction(durable=True) as tx:
            tx.lock(f"versions:{sop_id}")
            newest = tx.execute(
                "SELECT version, state, replica FROM sop_versions WHERE sop_id = :sop ORDER BY version DESC LIMIT 1",
                {"sop": sop_id},
            ).fetchone()
            now = int(newest["version"]) if newest is not None else 0
            if now != expected_latest:
                if newest is not None and newest["state"] == "pending" and newest["replica"] != self.replica:
                    raise VersionConflictError(  # refreshing would not help (an operator's trial went round in it)
                        f"SOP {sop_id} 的版本 {now} 正由另一副本（{newest['replica']}）发布，或它在发布中途停止："
                        f"请稍后再试；若那一副本不会再启动，请管理员运行 kb db discard-pending {newest['replica']} / "
                        f"version {now} of {sop_id} is being published by replica {newest['replica']}, or it stopped "
                        f"mid-publish: retry later; if that replica will not start again, run `kb db discard-pending "
                        f"{newest['replica']}`"
                    )
                raise VersionConflictError(
                    f"SOP {sop_id} 已更新到版本 {now}（在您打开之后），请刷新后再保存 / "
                    f"{sop_id} was changed by someone else (now version {now})"
                )
            tx.executemany(
                "INSERT INTO sop_versions (sop_id, version, ts, action, author, path, content, state, content_hash,"
                " previous, replica) VALUES (:sop_id, :version, :ts, :action, :author, :path, :content, :state,"
                " :content_hash, :previous, :replica)",
                [{**r.__dict__, "replica": self.replica} for r in records],
            )

    def mark_live(self, sop_id: str, version: int) -> None:
        """The pending version (and any pending one before it) went live: it joins the history."""
        with self._session.transaction(durable=True) as tx:
            tx.execute(
                "UPDATE sop_versions SET state = 'live', previous = NULL"
                " WHERE sop_id = :sop AND version <= :v AND state = 'pending'",
                {"sop": sop_id, "v": version},
            )
            if tx.dialect == "postgresql":  # delivered at commit, to every replica listening
                tx.execute("SELECT pg_notify(:channel, :sop)", {"channel": NOTIFY_CHANNEL, "sop": sop_id})

    def pending_of(self, replica: str) -> list[VersionRecord]:
        """Another replica's unfinished versions (for `kb db discard-pending` when that replica is gone for good)."""
        sql = "SELECT * FROM sop_versions WHERE state = 'pending' AND replica = :r ORDER BY sop_id, version"
        return [_record(r) for r in self.rows(sql, {"r": replica})]

    def discard_pending(self, sop_id: str, version: int) -> None:
        """The pending version (and any pending one before it) never went live: forget it."""
        with self._session.transaction(durable=True) as tx:
            tx.execute(
                "DELETE FROM sop_versions WHERE sop_id = :sop AND version <= :v AND state = 'pending'",
                {"sop": sop_id, "v": version},
            )
