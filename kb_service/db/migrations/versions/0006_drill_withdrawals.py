"""Practice utterances a trainer withdrew: a phrasing from use (an agent's search, a learned phrasing) that must not
be asked in practice or exams for that SOP, e.g. a search whose first result the agent opened by mistake.

- `drill_withdrawals`: (SOP, masked prompt) with who and when. Examples and FAQ questions are withdrawn by editing
  the SOP instead.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drill_withdrawals",
        sa.Column("sop_id", sa.Text(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sop_id", "prompt"),
    )
