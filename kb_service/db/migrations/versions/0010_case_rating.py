"""The tenant's rating of a closed hand-over case (满意 / 不满意 in the widget once a person has closed it): the
satisfaction figure of the service report (a training lead found no satisfaction measure anywhere).

- `handover_cases.rating`: 1 satisfied, -1 not satisfied (NULL: not rated); `rated_at`: when.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handover_cases", sa.Column("rating", sa.Integer(), nullable=True))
    op.add_column("handover_cases", sa.Column("rated_at", sa.Double(), nullable=True))
