"""Finding a closed case from what a tenant tells an agent who calls back or is called again: the case number as the
receipt prints it (编号 989A99), the phone number or its last digits (尾号 7000, 137-0013-7000), the room, the name or
words of the question. A trial found a closed case by its question, room or name only, and among the latest 200."""

from __future__ import annotations

import re
from typing import Any

MAX_WORDS = 64
_NUMBER = re.compile(r"^(?:编号|单号|工单号)?\s*[:：]?\s*", re.IGNORECASE)
_CASE_NUMBER = re.compile(r"^[0-9a-f]{4,32}$")
_PHONE_FORM = re.compile(r"^(?:手机|电话|号码|手机号|电话号码|尾号|手机尾号)*\s*[:：]?\s*[\d\s+()-]+$")
# A room as people write it: 3号楼1502, 3栋1502, 3-1502, 1502室, 2号楼808 and 2-808 are the same digits
_ROOM_FORM = re.compile(
    r"^(?:房号|房间|房间号)?\s*[:：]?\s*[A-Za-z]?[\d\s#-]*(?:号楼|栋|幢|座|单元|-)?[\d\s-]*(?:室|号|房)?$"
)
# The contact as stored (JSON text) without what people type inside a phone number or a room: 137 0013 7000,
# 137-0013-7000, 3号楼1502, 3栋1502 室 (REPLACE: the same on SQLite and PostgreSQL)
_SEPARATORS = (" ", "-", "+86", "号楼", "栋", "幢", "座", "单元", "室", "号", "#")
_CONTACT_DIGITS = "c.contact"
for _sep in _SEPARATORS:
    _CONTACT_DIGITS = f"REPLACE({_CONTACT_DIGITS}, '{_sep}', '')"


def _like(words: str) -> str:
    """A LIKE pattern for words anywhere, their own % and _ taken literally (ESCAPE '!')."""
    return "%" + words.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def closed_filter(typed: str) -> tuple[str, dict[str, Any]]:
    """A WHERE condition (on handover_cases as `c`) and its parameters for the cases matching what the agent typed;
    ("", {}) when nothing was typed."""
    words = typed.strip()[:MAX_WORDS]
    if not words:
        return "", {}
    number = _NUMBER.sub("", words).lower()
    by_number = " OR c.case_id LIKE :id" if _CASE_NUMBER.match(number) else ""  # the case id's first characters
    params: dict[str, Any] = {"id": number + "%"} if by_number else {}
    digits = re.sub(r"\D", "", words)
    if (_PHONE_FORM.match(words) or _ROOM_FORM.match(words)) and len(digits) >= 3:  # a phone (or its end), a room
        return f"({_CONTACT_DIGITS} LIKE :digits ESCAPE '!'{by_number})", params | {"digits": _like(digits)}
    return f"(c.question LIKE :w ESCAPE '!' OR c.contact LIKE :w ESCAPE '!'{by_number})", params | {"w": _like(words)}
