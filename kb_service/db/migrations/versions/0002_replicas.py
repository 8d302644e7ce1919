"""Replicas: which replica holds a pending publish, and rate limits in the shared database.

- `sop_versions.replica`: the replica (data directory) whose publish left a pending row. Only that replica settles
  it, by what its own index holds; '' (rows of earlier releases, one data directory) is settled by any.
- `rate_limits`: the per-client limits when the service database is PostgreSQL (with SQLite they stay in their own
  file, `ratelimit.sqlite3`, so that a read-only service database changes nothing there). UNLOGGED on PostgreSQL:
  counts lost in a crash are harmless and a check then writes no WAL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sop_versions", sa.Column("replica", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "rate_limits",
        sa.Column("name", sa.Text(), primary_key=True),  # which limit: search | chat
        sa.Column("client", sa.Text(), primary_key=True),  # client address (IPv6: its /64 network)
        sa.Column("tat", sa.Double(), nullable=False),  # GCRA theoretical arrival time (Unix seconds)
        prefixes=["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else [],
    )
    op.create_index("rate_limits_tat", "rate_limits", ["tat"])
