"""The service database as the releases before migrations left it: query log, feedback, versions, learned
phrasings, gap reports.

Those releases created their tables at run time (`CREATE TABLE IF NOT EXISTS`) and added columns as they came, so
this revision creates only what is missing: a database they made is adopted as it is, with its rows; an empty one
gets everything.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite keeps INTEGER PRIMARY KEY AUTOINCREMENT (query ids are reserved past sqlite_sequence); PostgreSQL a bigint.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(op.get_bind()).get_indexes(table)}


def _query_log(have: set[str]) -> None:
    if "queries" not in have:
        op.create_table(
            "queries",
            sa.Column("id", ID, primary_key=True, autoincrement=True),
            sa.Column("ts", sa.Double(), nullable=False),
            sa.Column("source", sa.Text(), nullable=False),  # search | chat
            sa.Column("audience", sa.Text(), nullable=False),
            sa.Column("query", sa.Text(), nullable=False),  # personal data masked before it is stored
            sa.Column("result_ids", sa.Text(), nullable=False),  # JSON list of sop ids in rank order
            sa.Column("top_sop", sa.Text()),
            sa.Column("top_score", sa.Double()),
            sa.Column("confidence", sa.Double()),
            sa.Column("handoff", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("took_ms", sa.Double()),
            sa.Column("client", sa.Text()),  # keyed hash of a public caller's address; NULL for staff
            sqlite_autoincrement=True,
        )
    elif "client" not in _columns("queries"):
        op.add_column("queries", sa.Column("client", sa.Text()))
    indexes = _indexes("queries")
    if "queries_ts" not in indexes:
        op.create_index("queries_ts", "queries", ["ts"])
    if "queries_client" not in indexes:  # the gap report reads a flooding client's latest rows only
        where = sa.text("client IS NOT NULL")
        op.create_index("queries_client", "queries", ["client", "ts"], sqlite_where=where, postgresql_where=where)
    if "feedback" not in have:
        op.create_table(
            "feedback",
            sa.Column("id", ID, primary_key=True, autoincrement=True),
            sa.Column("ts", sa.Double(), nullable=False),
            sa.Column("query_id", sa.BigInteger(), sa.ForeignKey("queries.id")),
            sa.Column("sop_id", sa.Text(), nullable=False),
            sa.Column("vote", sa.Integer(), nullable=False),
            sa.Column("source", sa.Text(), nullable=False),
            sa.Column("comment", sa.Text(), nullable=False, server_default=""),
            sa.CheckConstraint("vote IN (-1, 1)"),
            sqlite_autoincrement=True,
        )
        op.create_index("feedback_ts", "feedback", ["ts"])
    for name in ("id_blocks", "service_meta"):
        if name not in have:
            value: sa.Column[Any] = sa.Column("next_id", sa.BigInteger(), nullable=False)
            if name == "service_meta":
                value = sa.Column("value", sa.Text(), nullable=False)
            op.create_table(name, sa.Column("name", sa.Text(), primary_key=True), value)


def _versions(have: set[str]) -> None:
    added: list[sa.Column[Any]] = [
        sa.Column("state", sa.Text(), nullable=False, server_default="live"),  # pending while a publish is under way
        sa.Column("content_hash", sa.Text(), nullable=False, server_default=""),  # compared with the index's
        sa.Column("previous", sa.LargeBinary()),  # the file a pending publish replaced (NULL: there was none)
    ]
    if "sop_versions" in have:
        for column in added:
            if column.name not in _columns("sop_versions"):
                op.add_column("sop_versions", column)
        return
    op.create_table(
        "sop_versions",
        sa.Column("sop_id", sa.Text(), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),  # import | publish | rollback | delete
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        *added,
    )


def _learned(have: set[str]) -> None:
    if "learned" not in have:
        op.create_table(
            "learned",
            sa.Column("id", ID, primary_key=True, autoincrement=True),
            sa.Column("sop_id", sa.Text(), nullable=False),
            sa.Column("phrasing", sa.Text(), nullable=False),
            sa.Column("key", sa.Text(), nullable=False),
            sa.Column("vector", sa.LargeBinary(), nullable=False),
            sa.Column("embedder", sa.Text(), nullable=False),
            sa.Column("source", sa.Text(), nullable=False),
            sa.Column("who", sa.Text(), nullable=False),
            sa.Column("query_id", sa.BigInteger()),
            sa.Column("created_ts", sa.Double(), nullable=False),
            sa.Column("updated_ts", sa.Double(), nullable=False),
            sa.Column("confirmations", sa.Integer(), nullable=False, server_default="1"),
            sa.Column("removed_ts", sa.Double()),
            sa.Column("removed_by", sa.Text()),
            sa.Column("promoted_version", sa.Integer()),
            sa.UniqueConstraint("sop_id", "key"),
            sqlite_autoincrement=True,
        )
    if "learned_confirmations" not in have:
        op.create_table(
            "learned_confirmations",
            sa.Column("learned_id", sa.BigInteger(), sa.ForeignKey("learned.id", ondelete="CASCADE"), primary_key=True),
            sa.Column("query_id", sa.BigInteger(), primary_key=True),
            sa.Column("who", sa.Text(), nullable=False),
            sa.Column("ts", sa.Double(), nullable=False),
        )
    if "events" not in have:
        op.create_table(
            "events",
            sa.Column("id", ID, primary_key=True, autoincrement=True),
            sa.Column("ts", sa.Double(), nullable=False),
            sa.Column("query_id", sa.BigInteger(), nullable=False),
            sa.Column("sop_id", sa.Text(), nullable=False),
            sa.Column("type", sa.Text(), nullable=False),
            sa.Column("who", sa.Text(), nullable=False),
            sa.CheckConstraint("type IN ('open', 'copy')"),
            sqlite_autoincrement=True,
        )
        op.create_index("events_sop", "events", ["sop_id", "ts"])
    if "learned_meta" not in have:
        op.create_table(
            "learned_meta",
            sa.Column("name", sa.Text(), primary_key=True),
            sa.Column("value", sa.BigInteger(), nullable=False),
        )
    op.execute("INSERT INTO learned_meta (name, value) VALUES ('version', 0) ON CONFLICT (name) DO NOTHING")


def _gaps(have: set[str]) -> None:
    if "gap_reports" not in have:
        op.create_table(
            "gap_reports",
            sa.Column("key", sa.Text(), primary_key=True),
            sa.Column("computed_at", sa.Double(), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("refreshing_until", sa.Double(), nullable=False, server_default="0"),
        )
    if "gap_questions" not in have:
        op.create_table(
            "gap_questions",
            sa.Column("embedder", sa.Text(), primary_key=True),
            sa.Column("query", sa.Text(), primary_key=True),
            sa.Column("leader", sa.Text(), nullable=False),
            sa.Column("vector", sa.LargeBinary(), nullable=False),
            sa.Column("seen", sa.Double(), nullable=False),
        )
        op.create_index("gap_questions_seen", "gap_questions", ["embedder", "seen"])


def upgrade() -> None:
    have = _tables()
    _query_log(have)
    _versions(have)
    _learned(have)
    _gaps(have)
