"""Live calls: which procedure an agent pinned during a call (the call's outcome a contact-centre platform reads back
for its CRM, and what a supervisor reviews).

- `assist_pins`: one row per pin (call, SOP, who, when). Kept `KB_ASSIST_CALL_TTL` seconds like the calls, and after
  a call ends: the platform reads them once the call is over.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assist_pins",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("sop_id", sa.Text(), nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
    )
    op.create_index("assist_pins_call", "assist_pins", ["call_id", "ts"])
    op.create_index("assist_pins_ts", "assist_pins", ["ts"])
