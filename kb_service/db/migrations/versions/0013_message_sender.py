"""Who wrote an agent's message in a hand-over case: the service figures credit a case's first reply to the agent who
sent it, not to whoever holds the case at the end (a supervisor's trial: a case answered by one agent and taken over
by another counted the first reply for the second).

- `handover_messages.sender`: the account (or service key label) that held the case when it wrote an `agent` message;
  NULL for the tenant's, the chat's and the service's own messages, and for agent messages from before this revision.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handover_messages", sa.Column("sender", sa.Text(), nullable=True))
