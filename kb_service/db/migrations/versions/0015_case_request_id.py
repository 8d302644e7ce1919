"""A hand-over request's own id: a tenant's widget (or an integrator's client) that got no answer sends the same
request again, and gets the case the first one opened instead of a second case (an integrator's trial: an identical
body sent twice made two cases and two case.opened webhooks).

- `handover_cases.request_id`: the client's id of the request that opened the case (NULL: none sent, or a case of
  an earlier release); unique per session.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handover_cases", sa.Column("request_id", sa.Text(), nullable=True))
    op.create_index("handover_cases_request", "handover_cases", ["session_id", "request_id"], unique=True)
