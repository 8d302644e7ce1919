"""An exam on chosen SOPs of its category (a training lead's trial: to examine the leak procedure just changed, the
whole 报修 category had to be set, 5 questions drawn from 46 across 11 SOPs).

- `exam_marks.sop_ids`: a JSON list of the SOP ids the exam draws its questions from (NULL: the whole category, as
  before). Certification stays per category.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("exam_marks", sa.Column("sop_ids", sa.Text(), nullable=True))
