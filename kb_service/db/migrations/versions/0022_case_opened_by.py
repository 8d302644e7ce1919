"""Who opened a hand-over case, so that only they get it back by sending its request again (a security review: anyone
who knew a case's session_id and request_id got a new token for it and locked the tenant out).

- `handover_cases.opened_by`: the keyed hash of the public caller's address that opened the case (NULL for staff and
  for cases opened before).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handover_cases", sa.Column("opened_by", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handover_cases") as batch:
        batch.drop_column("opened_by")
