"""A publish's compare-and-set: the version a save names against the current one, and who published that one."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from ingest.frontmatter import with_version
from kb_service.db.engine import DB_ERRORS
from kb_service.db.logbook import Logbook
from kb_service.db.versions import SYSTEM_AUTHOR
from kb_service.errors import VersionConflictError


def published_by(logbook: Logbook, sop_id: str, version: int) -> str:
    """「，由 王芳 在 3 分钟前发布」 for a conflict message (a trial's named no colleague); '' when unknown."""
    try:
        record = logbook.version(sop_id, version)
    except DB_ERRORS:
        return ""
    if record is None or record.author == SYSTEM_AUTHOR:
        return ""
    minutes = max(0, round((time.time() - record.ts) / 60))
    return (
        f"，由 {record.author} 在 {minutes} 分钟前发布"
        if minutes < 120
        else f"，由 {record.author} 在 {minutes // 60} 小时前发布"
    )


def check_base(
    sop_id: str, exists: bool, base_version: int | None, current: int, who: Callable[[], str] = lambda: ""
) -> None:
    """A save names the version it edits (compare-and-set): none for a new SOP, the current one for an update.
    `who()`: who published the current version and when (「，由 王芳 在 3 分钟前发布」), read only on a conflict."""
    if exists and base_version is None:
        raise VersionConflictError(
            f"SOP {sop_id} 已存在（当前版本 {current}），保存时请带上 base_version={current} / "
            f"pass base_version={current} to update an existing SOP"
        )
    if base_version is not None and base_version != current:
        raise VersionConflictError(
            f"SOP {sop_id} 在您打开之后已有更新：您基于版本 {base_version} 修改，当前版本是 {current}{who()}。"
            "请刷新后合并再保存 / "
            f"version conflict: based on {base_version}, current is {current}"
        )


def same_text(live: bytes | None, raw: bytes, version: int) -> bool:
    """The text is the live file's, its version and date stamps aside (an operator's trial published the same
    text twice and got two versions)."""

    def stamped(text: bytes) -> str:
        return with_version(text.decode("utf-8-sig", "replace").replace("\r\n", "\n"), version, date(2000, 1, 1))

    return live is not None and stamped(live) == stamped(raw)
