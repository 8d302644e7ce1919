"""What each replica serves: its follower's latest report (kb_service/db/replica_reports.py), so that every replica's
/healthz can name one whose contents differ from the others'.

- `replica_reports`: one row per replica (data directory): where it runs, when it last reported, how many SOPs it
  serves and a fingerprint of their contents.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica_reports",
        sa.Column("replica", sa.Text(), primary_key=True),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
    )
