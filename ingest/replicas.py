"""Replicas that follow each other: several `kb serve` hosts, each with its own data directory (SOP folder and
embedded index), sharing one PostgreSQL service database.

The live SOP versions in PostgreSQL are the source of truth for content. A publish on any replica writes its version
row and, when the row goes live, announces it on the `kb_sop_versions` channel (NOTIFY). Every server process runs a
`Follower`: it listens on that channel and checks the newest live version of every SOP at least every
`POLL_INTERVAL` seconds (a lost notification or connection costs a few seconds, never a change); when its replica is
behind, it writes the newer files into its SOP folder and re-indexes them through the incremental indexer, under the
writer lock (the processes of one data directory apply a change once; the next finds its index up to date).

A publish catches up first, under the same lock, so that it builds on the newest content; two replicas publishing
the same SOP at once queue on the advisory lock, and the second finds its `base_version` stale (409).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from ingest.parser import content_hash, parse_bytes
from ingest.publishing import write_file
from ingest.settling import recover
from kb_service.db.engine import DB_ERRORS
from kb_service.db.logbook import Logbook, VersionRecord
from kb_service.db.outage import OutageLog
from kb_service.db.replica_reports import REPORT_SECONDS, ReplicaReport, write_report
from kb_service.db.versions import NOTIFY_CHANNEL
from kb_service.errors import KbError, first_line
from kb_service.models import Sop

if TYPE_CHECKING:
    from ingest.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)

POLL_INTERVAL = 2.0  # seconds between two checks of the newest versions when no notification comes


def _hand_edited(local: Sop, record: VersionRecord) -> bool:
    """The same version number with other content: a file edited by hand in this folder with its `version:` raised
    to the one published next (an operator's trial: that host served the hand edit, the others the trainer's)."""
    return (
        local.meta.version == record.version and bool(record.content_hash) and local.content_hash != record.content_hash
    )


class Follower:
    """Keeps one replica's SOP folder and index at the newest live versions of the shared database."""

    def __init__(self, kb: KnowledgeBase, logbook: Logbook, interval: float = POLL_INTERVAL) -> None:
        self.kb = kb
        self.logbook = logbook
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, int] = {}  # the newest live versions at the last check (their files are in place)
        self._outage = OutageLog(log, "replica follower")  # the database away: said when, then every 30 s
        self._unindexed = False  # said once that this replica waits for its first `kb ingest`
        self._reported = float("-inf")  # when this follower last reported what its replica serves (monotonic)

    def behind(self, latest: dict[str, VersionRecord]) -> list[VersionRecord]:
        """The newest live versions this replica's index does not hold yet."""
        catalog = self.kb.searcher.catalog
        out = []
        for sop_id, record in sorted(latest.items()):
            local = catalog.get(sop_id)
            if record.action == "delete":
                if local is not None and local.meta.version < record.version:
                    out.append(record)
            elif local is None or local.meta.version < record.version or _hand_edited(local, record):
                out.append(record)
        return out

    def catch_up(self) -> list[str]:
        """Apply what other replicas published; one line per SOP changed (none when up to date)."""
        latest = self.logbook.latest_live()
        if self.kb.searcher.refresh() is None:
            # No index yet: `kb ingest` builds it from this host's folder. Following alone would build one of only
            # the SOPs published through the API, and /healthz would call it ready (an operator's trial: 3 of 45).
            if not self._unindexed:
                log.warning("this replica has no index yet: run `kb ingest`; it follows the others once it has one")
                self._unindexed = True
            return []
        self._unindexed = False
        new = {k for k, r in latest.items() if self._seen.get(k) != r.version}
        if not new and not self.behind(latest):
            return []
        with self.kb.indexer.lock.hold("跟随其他副本的发布 / following other replicas' publishes"):
            self.kb.searcher.refresh(force=True)  # another process of this data directory may have applied them
            latest = self.logbook.latest_live()
            records = self.behind(latest)
            if records:
                self._apply(records)
            # With a shared index (a Qdrant server) the index is current but this host's folder may not be.
            self._sync_files([latest[k] for k in sorted(new) if k in latest])
            self._seen = {k: r.version for k, r in latest.items()}
        if not records:
            return []
        lines = [f"{r.sop_id} v{r.version} ({r.action}, {r.author})" for r in records]
        log.info("followed other replicas: %s", "; ".join(lines))
        return lines

    def settle_interrupted(self) -> list[str]:
        """Settle this replica's publishes that failed and could not be settled then (the database went away
        between the switch and marking the version live: this replica served the new version while the others,
        reading the database, kept the old; an operator's trial saw it last until the next publish). Under the
        writer lock no publish of this data directory is under way, so a pending row of its own is interrupted."""
        if not self.logbook.pending_versions():
            return []
        with self.kb.indexer.lock.hold("补完中断的发布 / settling interrupted publishes"):
            done = recover(self.kb.store, self.kb.settings.sops_dir, self.logbook)
        self.kb.searcher.refresh(force=True)
        return done

    def _apply(self, records: list[VersionRecord]) -> None:
        upserts, removals, files = self._changes(records)
        if not upserts and not removals:
            return

        def write_files(_generation: str) -> None:  # before the switch, as a publish does
            for path, content in files:
                if content is None:
                    path.unlink(missing_ok=True)
                else:
                    write_file(path, content.encode("utf-8"))

        self.kb.indexer.apply(upserts, removals, verify=write_files)
        self.kb.searcher.refresh(force=True)

    def _sync_files(self, records: list[VersionRecord]) -> None:
        """Files of SOPs the index holds at their newest version whose file in this folder differs."""
        catalog, root = self.kb.searcher.catalog, self.kb.settings.sops_dir
        for record in records:
            local = catalog.get(record.sop_id)
            if record.action == "delete":
                if local is None:
                    (root / record.path).unlink(missing_ok=True)
                continue
            if local is None or local.meta.version != record.version:
                continue
            path = root / (catalog.path_of(record.sop_id) or record.path)
            try:
                same = content_hash(path.read_bytes()) == record.content_hash
            except FileNotFoundError:
                same = False
            if not same:
                write_file(path, record.content.encode("utf-8"))

    def _changes(self, records: list[VersionRecord]) -> tuple[list[Sop], list[str], list[tuple[Path, str | None]]]:
        catalog, root = self.kb.searcher.catalog, self.kb.settings.sops_dir
        upserts: list[Sop] = []
        removals: list[str] = []
        files: list[tuple[Path, str | None]] = []
        for record in records:
            rel = catalog.path_of(record.sop_id) or record.path
            if record.action == "delete":
                removals.append(record.sop_id)
                files.append((root / rel, None))
                continue
            parsed = parse_bytes(rel, record.content.encode("utf-8"), today=date.today())
            if parsed.sop is None:  # it was valid when published; a newer parser may disagree: say so, go on
                log.error("cannot follow %s v%d: %s", record.sop_id, record.version, parsed.issues)
                continue
            upserts.append(parsed.sop)
            files.append((root / rel, record.content))
        return upserts, removals, files

    # -- the background thread ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="replica-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except (psycopg.Error, *DB_ERRORS) as exc:  # the server went away: poll until it is back
                self._away(exc)
                self._check(quiet=True)
                self._stop.wait(self.interval)

    def _away(self, exc: BaseException) -> None:
        self._outage.lost(exc, f"; retrying every {self.interval:.0f} s")

    def _back(self) -> None:
        self._outage.back()

    def _listen(self) -> None:
        url = self.logbook.db.engine.url.set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._back()
            while not self._stop.is_set():
                self._check()
                for _ in conn.notifies(timeout=self.interval, stop_after=1):
                    pass

    def own_report(self) -> ReplicaReport:
        """What this replica serves now (kb_service/db/replica_reports.py)."""
        catalog = self.kb.searcher.catalog
        host = f"{socket.gethostname()}:{self.kb.settings.data_dir}"
        return ReplicaReport(self.logbook.replica, host, time.time(), len(catalog), catalog.fingerprint())

    def report(self, force: bool = False) -> None:
        """Tell the other replicas what this one serves, at most every REPORT_SECONDS (`force`: now)."""
        if (force or time.monotonic() - self._reported >= REPORT_SECONDS) and self.kb.store.published() is not None:
            write_report(self.logbook, self.own_report())
            self._reported = time.monotonic()

    def _check(self, quiet: bool = False) -> None:
        try:
            self.settle_interrupted()
            self.catch_up()
            self.report()
        except (KbError, OSError, *DB_ERRORS) as exc:  # retried at the next check
            if not (quiet and isinstance(exc, DB_ERRORS)):  # `quiet`: the database is away, which `_away` says
                log.error("could not follow other replicas' publishes: %s", first_line(exc))
        except Exception:  # anything else is retried too: the follower thread must outlive one failed build
            log.exception("could not follow other replicas' publishes")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
