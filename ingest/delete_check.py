"""What deleting a SOP would take away, told before the trainer confirms (a trainer's trial deleted one through a
dialog that said only that history is kept; what it cost showed after the fact)."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from ingest.publish_warnings import category_left_empty
from kb_service.db.engine import DB_ERRORS
from kb_service.db.logbook import Logbook
from kb_service.learning.store import LearnedStore
from kb_service.search.catalog import Catalog

WINDOW_DAYS = 30


class Mention(BaseModel):
    sop_id: str
    title: str


class DeleteCheck(BaseModel):
    sop_id: str
    title: str
    warnings: list[str] = Field(description="分类的考试和培训任务将无法进行等（删除时同样返回）")
    agent_searches: int = Field(description="最近 30 天坐席检索把它排在第一的次数")
    tenant_answers: int = Field(description="最近 30 天租客聊天由它回答（未转人工）的次数")
    learned: int = Field(description="坐席确认过的问法（学到的问法），随文档一起删除")
    mentioned_by: list[Mention] = Field(description="正文提到它（标题或 id）的其他文档")


def check_delete(catalog: Catalog, logbook: Logbook, learned: LearnedStore | None, sop_id: str) -> DeleteCheck:
    """KeyError when no such SOP is published."""
    sop = catalog[sop_id]
    agent, tenant = _asked(logbook, sop_id)
    mentions = [
        Mention(sop_id=o.meta.id, title=o.title)
        for o in catalog.every()
        if o.meta.id != sop_id and any(sop.title in s.text or sop_id in s.text for s in o.sections)
    ]
    try:
        taught = len(learned.for_sop(sop_id)) if learned is not None else 0
    except DB_ERRORS:  # learning unavailable: nothing to count
        taught = 0
    return DeleteCheck(
        sop_id=sop_id,
        title=sop.title,
        warnings=category_left_empty(catalog, sop_id),
        agent_searches=agent,
        tenant_answers=tenant,
        learned=taught,
        mentioned_by=mentions,
    )


def _asked(logbook: Logbook, sop_id: str) -> tuple[int, int]:
    """Agents' searches with the SOP first and tenants' questions it answered, in the window (0, 0 when the query log
    cannot be read)."""
    try:
        rows = logbook.rows(
            "SELECT source, COUNT(*) AS n FROM queries WHERE ts >= :since AND top_sop = :sop"
            " AND ((source = 'search' AND audience <> 'public') OR (source = 'chat' AND handoff = 0))"
            " GROUP BY source",
            {"since": time.time() - WINDOW_DAYS * 86400, "sop": sop_id},
        )
    except DB_ERRORS:
        return 0, 0
    counts = {str(r["source"]): int(r["n"]) for r in rows}
    return counts.get("search", 0), counts.get("chat", 0)
