"""A SOP's practice utterances as trainers see them: where each comes from, and withdrawing one that came from use (an
agent's search, a learned phrasing) from practice and exams, e.g. a search whose first result was opened by mistake.
Examples and FAQ questions are the document's own: a trainer edits the SOP to change them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, TrainerCaller
from api.routes.sops import SopId
from api.schemas import ErrorResponse
from ingest.learning import publish_examples
from ingest.publishing import PublishResult
from kb_service.training import suggest
from kb_service.training.drills import Source, candidates
from kb_service.training.hub import logged_phrasings, withdraw, withdrawn

router = APIRouter(tags=["练习 practice"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 409, 422, 503)}
FROM_USE: frozenset[Source] = frozenset({"learned", "log"})


class Utterance(BaseModel):
    prompt: str = Field(description="练习和考试里给坐席看的租客说法（个人信息已遮盖）")
    source: Source = Field(
        description="example 示例问法、faq 常见问答、learned 学到的问法、log 坐席检索（首条结果被查看或复制）"
    )
    withdrawn: bool = Field(default=False, description="培训师已把它撤出练习和考试（来自使用的问法才可撤下）")


class WithdrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"prompt": "楼道的灯坏了好几天了"}]})

    prompt: str = Field(min_length=1, max_length=500)


def _pool(state: Any, sop_id: str) -> list[Utterance]:
    sop = state.kb.searcher.catalog.get(sop_id)
    if sop is None:
        raise HTTPException(404, f"没有 SOP “{sop_id}” / unknown SOP")
    gone = withdrawn(state.logbook)
    found = candidates([sop], logged_phrasings(state.logbook, keep_withdrawn=True))
    return [Utterance(prompt=c.prompt, source=c.source, withdrawn=(sop_id, c.prompt) in gone) for c in found]


@router.get("/v1/sops/{sop_id}/drills", response_model=list[Utterance], responses=ERRORS)
async def sop_drills(sop_id: SopId, _: TrainerCaller, state: Ready) -> list[Utterance]:
    """这份 SOP 的练习问法：示例问法、常见问答，以及来自使用的问法（学到的问法、首条结果被查看或复制的坐席检索）。"""
    return await run_in_threadpool(_pool, state, sop_id)


class Suggested(BaseModel):
    phrasings: list[str] = Field(
        description="口语词库里租客对这份 SOP 标题或标签所说事情的说法（只是建议：请逐条确认后再加入示例问法）"
    )


class ExamplesRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"phrasings": ["煤气味很重", "燃气报警器一直响"]}]}
    )

    phrasings: list[str] = Field(min_length=1, max_length=20)
    force: bool = Field(False, description="示例查询回归失败时仍然发布")


def _suggested(state: Any, sop_id: str) -> Suggested:
    sop = state.kb.searcher.catalog.get(sop_id)
    if sop is None:
        raise HTTPException(404, f"没有 SOP “{sop_id}” / unknown SOP")
    taken = [u.prompt for u in _pool(state, sop_id)]
    everything = list(state.kb.searcher.catalog.every())
    glossary = state.kb.searcher.lexical.glossary
    urgent = sop.urgent(state.settings.urgent_category_set)
    found = suggest.suggestions(sop, everything, glossary, taken, suggest.danger_signals(), urgent)
    return Suggested(phrasings=found)


@router.get("/v1/sops/{sop_id}/drills/suggested", response_model=Suggested, responses=ERRORS)
async def suggested_drills(sop_id: SopId, _: TrainerCaller, state: Ready) -> Suggested:
    """建议的租客说法：练习问法少的 SOP（如没有 examples 的简练文档）可由培训师确认后加入示例问法。"""
    return await run_in_threadpool(_suggested, state, sop_id)


@router.post("/v1/sops/{sop_id}/examples", response_model=PublishResult, responses=ERRORS)
async def add_examples(sop_id: SopId, body: ExamplesRequest, caller: TrainerCaller, state: Ready) -> PublishResult:
    """把培训师确认的租客说法加入 SOP 文件头的示例问法（examples），发布为一个新版本（与发布一样做示例回归检查）。"""
    for p in body.phrasings:
        if not p.strip() or len(p) > 200:
            raise HTTPException(422, "每条问法 1–200 字 / each phrasing must have 1–200 characters")
    return await run_in_threadpool(
        lambda: publish_examples(state.publisher, sop_id, body.phrasings, author=caller.name, force=body.force)
    )


async def _change(sop_id: str, prompt: str, who: str, state: Any, *, back: bool) -> list[Utterance]:
    pool = await run_in_threadpool(_pool, state, sop_id)
    mine = next((u for u in pool if u.prompt == prompt), None)
    if mine is None:
        raise HTTPException(404, "这份 SOP 没有这条练习问法 / no such practice utterance for this SOP")
    if mine.source not in FROM_USE:
        raise HTTPException(422, "示例问法和常见问答是文档的一部分：请编辑 SOP 修改 / edit the SOP to change it")
    await run_in_threadpool(lambda: withdraw(state.logbook, sop_id, prompt, who, back=back))
    return await run_in_threadpool(_pool, state, sop_id)


@router.post("/v1/sops/{sop_id}/drills/withdrawn", response_model=list[Utterance], responses=ERRORS)
async def withdraw_drill(sop_id: SopId, body: WithdrawRequest, caller: TrainerCaller, state: Ready) -> list[Utterance]:
    """把一条来自使用的问法撤出这份 SOP 的练习和考试（检索和学到的问法不受影响）；返回更新后的列表。"""
    return await _change(sop_id, body.prompt, caller.name, state, back=False)


@router.delete("/v1/sops/{sop_id}/drills/withdrawn", response_model=list[Utterance], responses=ERRORS)
async def restore_drill(
    sop_id: SopId,
    caller: TrainerCaller,
    state: Ready,
    prompt: str = Query(min_length=1, max_length=500, description="要恢复的问法"),
) -> list[Utterance]:
    """恢复一条撤下的问法；返回更新后的列表。"""
    return await _change(sop_id, prompt, caller.name, state, back=True)
