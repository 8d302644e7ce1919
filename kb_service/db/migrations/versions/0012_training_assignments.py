"""Training assignments (培训任务): a trainer asks named people to pass a category's exam or to finish a practice
round on chosen SOPs by a due date (a training lead's trial had no way to give one agent this week's training).

- `training_assignments`: one row per person and task; whether it is done is read from the practice records.
- `practice_sessions.assignment_id`: the assignment a practice round was started from (NULL: the trainee's own).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_assignments",
        sa.Column("assignment_id", sa.Text(), primary_key=True),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),  # exam | practice
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("sop_ids", sa.Text(), nullable=True),  # JSON list (practice on chosen SOPs)
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("due_ts", sa.Double(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("assigned_by", sa.Text(), nullable=False),
        sa.Column("assigned_ts", sa.Double(), nullable=False),
        sa.Column("withdrawn_ts", sa.Double(), nullable=True),
    )
    op.create_index("training_assignments_who", "training_assignments", ["who", "assigned_ts"])
    op.add_column("practice_sessions", sa.Column("assignment_id", sa.Text(), nullable=True))
