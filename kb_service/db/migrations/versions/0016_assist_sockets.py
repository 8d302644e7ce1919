"""Open live-assist WebSocket connections, one row each, so a per-account cap holds across every worker process and
replica (a security review: one agent key opened connections without limit).

- `assist_sockets`: the connection's id, the account (or key) holding it, and until when its lease runs (renewed
  every few seconds while open; a process that died leaves rows that expire).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assist_sockets",
        sa.Column("socket_id", sa.Text(), primary_key=True),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("assist_sockets_holder", "assist_sockets", ["holder", "expires_at"])
