"""The contact details a hand-over case was opened with, beside the current ones: a late copy of the first request
(a client's retry arriving after the tenant's correction) is recognised as a copy and changes nothing, instead of
putting the old phone number back (a re-check helper, session 43).

- `handover_cases.opened_contact`: the contact JSON of the request that opened the case (NULL: a case of an earlier
  release).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handover_cases", sa.Column("opened_contact", sa.Text(), nullable=True))
