"""What each replica serves, reported by its follower to the shared database every REPORT_SECONDS: how many SOPs and
a fingerprint of their contents (`Catalog.fingerprint`). Replicas serving the same versions report the same
fingerprint; a host whose SOP folder was changed by hand and re-ingested (a file moved away or edited there) does not,
and every replica's `/healthz` names it to staff (an operator's trial: a host served 44 of 45 SOPs, unnoticed, its
`/healthz` ok). The contents hash includes the parser's version: during a rolling upgrade old and new hosts differ.

Replicas follow a publish within seconds, so a report is compared only when it was written FOLLOW_SECONDS after the
newest live version or later (before that it may predate the publish reaching its replica)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from kb_service.db.logbook import Logbook

REPORT_SECONDS = 15.0
RECENT_SECONDS = 300.0  # a replica silent for longer is gone (stopped, or without the database)
FOLLOW_SECONDS = 10.0

_UPSERT = """
INSERT INTO replica_reports (replica, host, ts, documents, fingerprint)
VALUES (:replica, :host, :ts, :documents, :fingerprint)
ON CONFLICT (replica) DO UPDATE SET host = excluded.host, ts = excluded.ts, documents = excluded.documents,
    fingerprint = excluded.fingerprint
"""


@dataclass(frozen=True)
class ReplicaReport:
    replica: str  # the data directory's replica id
    host: str  # where it runs: host name and data directory
    ts: float
    documents: int
    fingerprint: str


@dataclass(frozen=True)
class Compared:
    report: ReplicaReport
    same: bool | None  # None: written before the newest publish could reach it


@dataclass(frozen=True)
class Agreement:
    status: Literal["same", "differs"]
    replicas: list[Compared]


def write_report(logbook: Logbook, report: ReplicaReport) -> None:
    with logbook.transaction() as tx:
        tx.execute(_UPSERT, asdict(report))


def agreement(
    logbook: Logbook, own: ReplicaReport, now: float, follow: float = FOLLOW_SECONDS, recent: float = RECENT_SECONDS
) -> Agreement:
    """The replicas heard from in the last `recent` seconds, each compared with this one's contents (`own`)."""
    rows = logbook.rows("SELECT * FROM replica_reports WHERE ts >= :since ORDER BY host", {"since": now - recent})
    newest = logbook.rows("SELECT MAX(ts) AS ts FROM sop_versions WHERE state = 'live'")[0]["ts"] or 0.0
    settled = newest + follow  # reports from then on have followed the newest publish
    out = []
    for row in rows:
        report = ReplicaReport(**dict(row))
        if report.replica == own.replica:
            continue  # this replica: `own`, read now
        compared = report.ts >= settled and now >= settled
        out.append(Compared(report, report.fingerprint == own.fingerprint if compared else None))
    status: Literal["same", "differs"] = "differs" if any(c.same is False for c in out) else "same"
    return Agreement(status, out)
