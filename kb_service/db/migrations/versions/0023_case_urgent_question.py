"""The tenant's words that raised an open case to urgent, so the agents' queue shows the emergency and not the
question the case was opened with (a trial: a case opened with 空调不制冷 and raised by 厨房着火了 was listed as
空调不制冷).

- `handover_cases.urgent_question`: those words (NULL: opened urgent, never raised, or raised before this column).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handover_cases", sa.Column("urgent_question", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handover_cases") as batch:
        batch.drop_column("urgent_question")
