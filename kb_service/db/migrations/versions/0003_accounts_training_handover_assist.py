"""Named accounts, training records, hand-over cases and assisted calls in the service database.

These features first created their tables at run time (`CREATE TABLE IF NOT EXISTS`, and the assisted calls in a
file of their own, `assist.sqlite3`), so this revision creates only what is missing: a database they made is adopted
as it is, with its rows. Calls are short-lived (`KB_ASSIST_CALL_TTL`), so those of `assist.sqlite3` are not carried
over; the console's ticket secret is made afresh in `service_meta` (tickets live 60 seconds).

Flags (`exam`, `correct`, `followup_correct`) are integers 0/1, as the code writes and reads them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.Double  # Unix seconds


def _col(name: str, kind: Any, *, null: bool = False, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, kind() if isinstance(kind, type) else kind, nullable=null, **kw)


def _accounts() -> dict[str, list[Any]]:
    """Accounts and per-person training records (fresh column objects each run: a column belongs to one table)."""
    return {
        "accounts": [
            _col("name", sa.Text, primary_key=True),
            _col("role", sa.Text),
            _col("key_hash", sa.Text),  # sha256 hex of the current key; the key itself is never stored
            _col("created_ts", TS),
            _col("updated_ts", TS),
            _col("disabled_ts", TS, null=True),  # set by `kb users disable`; the key stops working
            _col("created_by", sa.Text),
            sa.UniqueConstraint("key_hash", name="accounts_key_hash"),
        ],
        "exam_marks": [
            _col("category", sa.Text, primary_key=True),
            _col("pass_mark", sa.Double),  # share of drills answered right, 0-1
            _col("size", sa.Integer),  # drills in an exam
            _col("set_by", sa.Text),
            _col("ts", TS),
        ],
        "certifications": [
            _col("who", sa.Text, primary_key=True),
            _col("category", sa.Text, primary_key=True),
            _col("ts", TS),
            _col("score", sa.Double),
            _col("session_id", sa.Text),
        ],
        "work_episodes": [
            _col("episode_id", sa.Text, primary_key=True),
            _col("ts", TS),
            _col("who", sa.Text),
            _col("query_id", sa.BigInteger, null=True),
            _col("sop_id", sa.Text, null=True),
            _col("outcome", sa.Text),  # copy | open | research | abandon
            _col("ms", sa.BigInteger, null=True),  # first keystroke to this outcome
        ],
        "person_votes": [
            _col("feedback_id", sa.BigInteger, primary_key=True, autoincrement=False),  # feedback.id
            _col("ts", TS),
            _col("who", sa.Text),
            _col("sop_id", sa.Text),
            _col("vote", sa.Integer),
        ],
    }


def _practice() -> dict[str, list[Any]]:
    """Practice rounds and change acknowledgements."""
    return {
        "practice_sessions": [
            _col("session_id", sa.Text, primary_key=True),
            _col("who", sa.Text),
            _col("ts", TS),
            _col("category", sa.Text, null=True),
            _col("exam", sa.Integer, server_default="0"),
            _col("size", sa.Integer),
            _col("finished_ts", TS, null=True),
            _col("score", sa.Double, null=True),
        ],
        "practice_drills": [
            _col("drill_id", sa.Text, primary_key=True),
            _col("session_id", sa.Text),
            _col("position", sa.Integer),
            _col("sop_id", sa.Text),
            _col("category", sa.Text),
            _col("prompt", sa.Text),
            _col("source", sa.Text),
            _col("difficulty", sa.Integer),
            _col("followup", sa.Text),  # JSON: the second stage with its answer ({} = none)
            _col("created_ts", TS),
            _col("answered_ts", TS, null=True),
            _col("answer_sop", sa.Text, null=True),
            _col("correct", sa.Integer, null=True),
            _col("ms", sa.BigInteger, null=True),
            _col("followup_ts", TS, null=True),
            _col("followup_correct", sa.Integer, null=True),
        ],
        "sop_changes": [
            _col("change_id", sa.Text, primary_key=True),  # <sop_id>-v<version>
            _col("sop_id", sa.Text),
            _col("version", sa.Integer),
            _col("ts", TS),
            _col("author", sa.Text),
            _col("title", sa.Text),
            _col("parts", sa.Text),  # JSON list of ChangedPart
        ],
        "change_acks": [
            _col("change_id", sa.Text, primary_key=True),
            _col("who", sa.Text, primary_key=True),
            _col("ts", TS),
        ],
    }


def _handover() -> dict[str, list[Any]]:
    """Hand-over cases and assisted calls."""
    return {
        "handover_cases": [
            _col("case_id", sa.Text, primary_key=True),
            _col("token_hash", sa.Text),  # sha256 of the tenant's token (the token itself is never stored)
            _col("session_id", sa.Text),
            _col("status", sa.Text),  # open | taken | closed
            _col("priority", sa.Text),  # urgent | normal
            _col("question", sa.Text),
            _col("contact", sa.Text),  # JSON object: name, room, phone, best_time, extra {label: answer}
            _col("sop_id", sa.Text, null=True),  # the SOP that best matched the question (suggested to the agent)
            _col("sop_title", sa.Text, null=True),
            _col("taken_by", sa.Text, null=True),
            _col("created_at", TS),
            _col("updated_at", TS),
            _col("closed_at", TS, null=True),
            _col("expires_at", TS),
        ],
        "handover_messages": [
            _col("case_id", sa.Text, primary_key=True),
            _col("seq", sa.Integer, primary_key=True, autoincrement=False),
            _col("author", sa.Text),  # tenant | bot | agent | system
            _col("text", sa.Text),
            _col("created_at", TS),
        ],
        "handover_outbox": [
            _col("event_id", sa.Text, primary_key=True),
            _col("case_id", sa.Text),
            _col("body", sa.Text),  # the exact JSON the webhook receives (what the signature covers)
            _col("status", sa.Text),  # pending | delivered | failed
            _col("attempts", sa.Integer),
            _col("next_attempt_at", TS),
            _col("lease_owner", sa.Text, null=True),
            _col("lease_until", TS),
            _col("last_error", sa.Text, null=True),
            _col("delivered_at", TS, null=True),
            _col("created_at", TS),
        ],
        "assist_calls": [
            _col("call_id", sa.Text, primary_key=True),
            _col("context", sa.Text),  # CallContext as JSON (transcript text, numbers masked: never logged)
            _col("suggestions", sa.Text, null=True),  # the latest suggestions message, for consoles that watch the call
            _col("version", sa.BigInteger),
            _col("updated", TS),
        ],
    }


INDEXES: list[tuple[str, str, list[str]]] = [
    ("work_episodes_ts", "work_episodes", ["ts"]),
    ("person_votes_ts", "person_votes", ["ts"]),
    ("practice_sessions_who", "practice_sessions", ["who", "ts"]),
    ("practice_drills_session", "practice_drills", ["session_id", "position"]),
    ("practice_drills_answered", "practice_drills", ["answered_ts"]),
    ("sop_changes_ts", "sop_changes", ["ts"]),
    ("handover_cases_status", "handover_cases", ["status", "created_at"]),
    ("handover_outbox_due", "handover_outbox", ["status", "next_attempt_at"]),
    ("assist_calls_updated", "assist_calls", ["updated"]),
]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    have = set(inspector.get_table_names())
    for name, columns in {**_accounts(), **_practice(), **_handover()}.items():
        if name not in have:
            op.create_table(name, *columns)
    for index, table, columns in INDEXES:
        if table not in have or index not in {str(i["name"]) for i in inspector.get_indexes(table)}:
            op.create_index(index, table, columns)
