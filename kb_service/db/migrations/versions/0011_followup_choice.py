"""What a trainee chose in a drill's second stage, so the review shows it beside the right one (a training lead's
trial: the per-question review gave only ✓/✗ for 第二步, nothing to coach from).

- `practice_drills.followup_choice`: JSON, the option index chosen (a script line) or the order given (a list).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("practice_drills", sa.Column("followup_choice", sa.Text(), nullable=True))
