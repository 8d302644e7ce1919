"""Who on the staff made a logged search: a 👍 teaches agent search the words of its voter's own searches only (a
trainer's trial: an agent's 👍 on a colleague's search, by its query id, taught a SOP their words).

- `queries.who`: the staff caller (an account's name, or the role and a fingerprint of its key); NULL for tenants
  and for rows of an earlier release.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("queries", sa.Column("who", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queries") as batch:
        batch.drop_column("who")
