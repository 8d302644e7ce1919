"""Gap-report questions a trainer marked 已处理 (a training manager's trial fixed a gap by publishing a SOP, and the
report kept listing its questions, with no way to say they were dealt with).

- `gap_resolutions`: one row per question and mark; a group of the report whose questions were all asked before its
  latest mark is listed under 已处理, and comes back when someone asks it again. `withdrawn_ts`: the mark undone.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gap_resolutions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("resolved_ts", sa.Double(), nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("withdrawn_ts", sa.Double(), nullable=True),
    )
    op.create_index("gap_resolutions_question", "gap_resolutions", ["question", "resolved_ts"])


def downgrade() -> None:
    op.drop_index("gap_resolutions_question", table_name="gap_resolutions")
    op.drop_table("gap_resolutions")
