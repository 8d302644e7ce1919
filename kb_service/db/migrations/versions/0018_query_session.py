"""The chat session a tenant's logged question came from: 服务指标 tells a question answered in the chat from one
followed by a hand-over of the same conversation by the widget's session, not by the caller's address (an operator's
trial: behind a proxy without KB_TRUSTED_PROXIES every tenant has one address, and the self-service share read 0 %).

- `queries.session`: keyed hash of the widget's `session_id` (NULL: none sent, staff, or a row of an earlier release),
  indexed with `ts` like `client`.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("queries", sa.Column("session", sa.Text(), nullable=True))
    where = sa.text("session IS NOT NULL")  # 服务指标 looks up a conversation's later hand-over, as by client
    op.create_index("queries_session", "queries", ["session", "ts"], sqlite_where=where, postgresql_where=where)
