"""Whether a finished exam certified its person (a trainer's trial saw an attempt on a category whose last SOP had
been deleted listed as 通过 in the records, though it certified nobody).

- `practice_sessions.certified`: 1 when finishing the exam granted the certification, 0 when it did not (below the
  mark, the exam withdrawn or its category without a SOP by then); NULL for practice rounds and exams finished before.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("practice_sessions", sa.Column("certified", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("practice_sessions") as batch:
        batch.drop_column("certified")
