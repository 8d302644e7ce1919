"""Meaningful section headings and their accepted synonyms."""

from __future__ import annotations

import re

from kb_service.models import SectionKind

INTERNAL_MARK = re.compile(r"\s*[\[【]\s*内部\s*[\]】]\s*$")

SECTION_SYNONYMS: dict[SectionKind, tuple[str, ...]] = {
    "scenario": ("适用场景", "适用范围", "场景说明", "适用情形", "场景"),
    "steps": ("处理步骤", "操作步骤", "处理流程", "操作流程", "流程", "步骤", "处理办法"),
    "script": ("标准话术", "话术", "参考话术", "沟通话术", "服务话术", "标准用语"),
    "time_limit": ("时限要求", "时限", "时效要求", "响应时限", "服务时限", "时效"),
    "notes": ("注意事项", "注意", "温馨提示", "重要提示", "提示"),
    "escalation": ("升级处理", "升级路径", "上报流程", "升级流程", "升级"),
    "faq": ("常见问题", "faq", "常见问答", "问答", "常见问题解答"),
}

_LOOKUP = {name.lower(): kind for kind, names in SECTION_SYNONYMS.items() for name in names}


def split_internal(heading: str) -> tuple[str, bool]:
    """Strip a trailing `[内部]` marker; return the clean heading and whether it was there."""
    cleaned = INTERNAL_MARK.sub("", heading).strip()
    return cleaned, cleaned != heading.strip()


def section_kind(heading: str) -> SectionKind:
    """Kind of a `##` heading; unknown headings are plain sections."""
    key = re.sub(r"[\s:：]+$", "", heading.strip()).lower()
    return _LOOKUP.get(key, "plain")
