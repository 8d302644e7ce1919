"""How long a person waits after a failed exam before taking it again (a trial passed by memory: 60 % → 40 % → 100 %
in 12 minutes, the answers shown after each attempt).

- `exam_marks.retake_minutes`: minutes from the start of a failed attempt until the next may start (0/NULL: at once,
  as before).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("exam_marks", sa.Column("retake_minutes", sa.Integer(), nullable=True))
