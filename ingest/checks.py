"""Checks over a parsed SOP that `kb lint` adds to the parser's own: things that parse but are likely mistakes."""

from __future__ import annotations

import re

from kb_service.models import Issue, Sop

_TITLE_LINE = re.compile(r"^title\s*:")


def title_issues(sop: Sop, source: str | None = None) -> list[Issue]:
    """A front-matter `title` that differs from the `#` heading: the heading is what search results and chat sources
    show, so the trainer is told which one wins. `source` (the file's text) locates the `title:` line."""
    if sop.meta.title.strip() == sop.title.strip():
        return []
    lines = (source or "").split("\n")
    line = next((n for n, text in enumerate(lines, start=1) if _TITLE_LINE.match(text)), 1)
    message = (
        f"文件头 title “{sop.meta.title}” 与正文 # 标题 “{sop.title}” 不一致，检索结果和聊天来源显示 # 标题；"
        "请把两处改成一致"
    )
    return [Issue(path=sop.path, line=line, severity="warning", message=message)]
