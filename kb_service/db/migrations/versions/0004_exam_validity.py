"""Exams: how long a certification stays valid, and the pass mark an exam was taken under.

- `exam_marks.valid_days`: days a pass certifies for (NULL: no expiry, as before). An expired certification is kept
  as history and no longer counts as certified.
- `practice_sessions.pass_mark`: the exam's pass mark when the session started. A trainer who later raises or lowers
  the mark does not change the verdict of exams already taken. NULL for practice rounds and for exams taken before
  this revision (those are judged against the category's current mark, as before).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("exam_marks", sa.Column("valid_days", sa.Integer(), nullable=True))
    op.add_column("practice_sessions", sa.Column("pass_mark", sa.Double(), nullable=True))
