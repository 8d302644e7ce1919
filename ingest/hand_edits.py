"""Changes made to a SOP's file outside the workspace: a colleague editing the folder's Markdown by hand, without a new
`version:` (with or without `kb ingest` after it).

The version check of a save compares version numbers only, so such an edit kept the number and a trainer's save built
on the text before it replaced it without a word (a new customer's trial lost a colleague's added rule twice, once
after `kb ingest` had put it live). Before a save, a deletion, or a trainer opening the source, the file is compared
with what its version holds (the recorded text, or the indexed content for a SOP never changed through the workspace);
a difference is kept as the next version, the system's import, so that a save based on the version before it gets
409 and the trainer sees the edit.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from ingest.frontmatter import with_version
from ingest.parser import content_hash, parse_bytes
from kb_service.db.versions import SYSTEM_AUTHOR, VersionRecord
from kb_service.errors import VersionConflictError
from kb_service.models import Sop


def _text(raw: bytes) -> str:
    return raw.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def hand_edit(
    sop: Sop, path: Path, rel: str, recorded: VersionRecord | None, current: int
) -> tuple[VersionRecord, Sop] | None:
    """The file as edited by hand, as version `current + 1` (pending, to commit) with the SOP it holds; None when the
    file holds what version `current` is. VersionConflictError when the edited file is no valid SOP (nothing can be
    saved over it unseen)."""
    try:
        disk = path.read_bytes()
    except OSError:
        return None  # a missing file is the publisher's own business (a delete, a first save)
    if recorded is not None and recorded.action != "delete" and recorded.content:
        if _text(disk) == _text(recorded.content.encode("utf-8")):
            return None
    elif content_hash(disk) == sop.content_hash:
        return None
    text = with_version(_text(disk), current + 1, date.today())
    parsed = parse_bytes(rel, text.encode("utf-8"), today=date.today())
    errors = [i for i in parsed.issues if i.severity == "error"]
    if parsed.sop is None or errors or parsed.sop.meta.id != sop.meta.id:
        first = errors[0] if errors else None
        why = f"（{first.message}，第 {first.line} 行）" if first else ""
        raise VersionConflictError(
            f"SOP {sop.meta.id} 的文件 {rel} 在工作台之外被改过，且现在无法读取{why}：请先修好这个文件（kb lint），"
            "否则保存会覆盖别人的修改 / the SOP's file was edited outside the workspace and is not a valid SOP now: "
            "fix it first, or a save would overwrite that edit"
        )
    record = VersionRecord(
        sop.meta.id,
        current + 1,
        time.time(),
        "import",
        SYSTEM_AUTHOR,
        rel,
        text,
        "pending",
        parsed.sop.content_hash,
        disk,
    )
    return record, parsed.sop


def conflict(sop_id: str, base_version: int | None, adopted: int) -> VersionConflictError | None:
    """The 409 for a save based on a version before the hand edit just kept as `adopted`."""
    if base_version is None or base_version >= adopted:
        return None
    return VersionConflictError(
        f"SOP {sop_id} 的文件在工作台之外被改过（例如有人直接改了 SOP 文件夹里的文件），"
        f"这些修改已保存为版本 {adopted}。您基于版本 {base_version} 修改：请重新打开，合并后再保存 / "
        f"the SOP's file was edited outside the workspace; that edit is now version {adopted}, "
        f"yours is based on {base_version}: reload and merge"
    )
