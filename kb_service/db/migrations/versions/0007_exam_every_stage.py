"""Exams that require every second stage right (e.g. emergencies: the script line or the order of the steps is what
keeps people safe, and a score of 80 % may hide a wrong one).

- `exam_marks.every_stage`: 1 when a pass also needs every second stage answered right (0/NULL: the score alone, as
  before).
- `practice_sessions.every_stage`: the rule an exam was started under, as its pass mark (0004): a trainer who changes
  it later does not change the verdict of exams already taken.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("exam_marks", sa.Column("every_stage", sa.Integer(), nullable=True))
    op.add_column("practice_sessions", sa.Column("every_stage", sa.Integer(), nullable=True))
