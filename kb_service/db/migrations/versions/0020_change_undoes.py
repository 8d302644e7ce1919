"""A rollback's change card names the versions it undid (a trainer's trial published a wrong time limit and rolled it
back: agents were left three cards for one net change, one teaching a 2-minute rule they never had).

- `sop_changes.undoes`: JSON list of the versions a rollback took back (NULL for any other publish). Their cards are
  withdrawn for whoever had not acknowledged them, and the rollback's card goes only to those who had.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sop_changes", sa.Column("undoes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sop_changes") as batch:
        batch.drop_column("undoes")
