"""Masking personal data in logged questions: phone numbers, ID-card numbers and room numbers."""

from __future__ import annotations

import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"), "[身份证号]"),
    (re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)"), "[手机号]"),
    (re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"), "[电话]"),
    (
        re.compile(r"(?:[A-Za-z]|\d{1,2})\s*(?:栋|幢|座|号楼|单元)\s*\d{1,2}?\s*(?:单元)?\s*\d{3,4}\s*(?:室|房|号)?"),
        "[房号]",
    ),
    (re.compile(r"(?<![\d-])\d{1,2}-\d{1,2}-\d{3,4}(?![\d-])"), "[房号]"),
    (re.compile(r"(?<!\d)\d{3,4}\s*(?:室|房间|号房)"), "[房号]"),
)


def mask(text: str) -> str:
    """The text with phone, ID-card and room numbers replaced by placeholders."""
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text
