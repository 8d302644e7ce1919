"""The trainers' gap report (JSON and CSV) and the supervisors' service figures."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, TrainerCaller, TrainerRole
from api.schemas import ErrorResponse, Moment
from kb_service.handover.metrics import ServiceReport, service_report
from kb_service.search.results import SearchResponse
from kb_service.trainer import gap_resolutions
from kb_service.trainer.gap_csv import to_csv
from kb_service.trainer.gap_resolutions import GapResolutions
from kb_service.trainer.gaps import STAFF_ANSWER_GROUPS, GapReport, staff_answer_of

router = APIRouter(tags=["培训师 trainer"])
Since = Annotated[Moment | None, Query(description="开始时间（Unix 秒或日期，如 2026-11-01），默认 30 天前")]
Until = Annotated[Moment | None, Query(description="结束时间（Unix 秒或日期），默认现在")]
_ERRORS: dict[int | str, dict[str, object]] = {s: {"model": ErrorResponse} for s in (403, 422)}


def _report(state: Ready, since: float | None, until: float | None) -> GapReport:
    end = until if until is not None else time.time() + 1
    if since is not None and since >= end:
        raise HTTPException(422, "开始时间必须早于结束时间 / since must be before until")
    report = state.gaps.report(since, until, state.kb.searcher.catalog)
    asked = [q for g in report.unanswered for q in gap_resolutions.questions_of(g)]
    # A SOP published in the last week has had no time to be found (a trial saw one listed a minute after publishing)
    new = state.logbook.created_since(max(report.since, time.time() - NEW_SOP_DAYS * 86400))
    report = report.model_copy(update={"never_found": [s for s in report.never_found if s not in new]})
    return gap_resolutions.apply(report, GapResolutions(state.logbook).latest(asked))


NEW_SOP_DAYS = 7

Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class GapMarkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    questions: list[Question] = Field(
        min_length=1, max_length=20, description="一组未解决问题的问法（representative 和 examples）"
    )
    note: str = Field(default="", max_length=200, description="怎么处理的，例如「已新增 SOP 阳台晾衣架维修」")


class GapMarkOut(BaseModel):
    questions: int = Field(description="标记（或撤销）了的问法数")


@router.post("/v1/reports/gaps/resolved", response_model=GapMarkOut, responses=_ERRORS)
async def mark_resolved(caller: TrainerCaller, state: Ready, body: GapMarkRequest) -> GapMarkOut:
    """把一组未解决问题标记为「已处理」：之前问过的不再列在未解决问题里（列在 resolved），之后再有人问就重新列出。"""
    marks = GapResolutions(state.logbook)
    return GapMarkOut(questions=await run_in_threadpool(marks.mark, body.questions, caller.name, body.note))


@router.post("/v1/reports/gaps/reopened", response_model=GapMarkOut, responses=_ERRORS)
async def reopen(_: TrainerCaller, state: Ready, body: GapMarkRequest) -> GapMarkOut:
    """撤销「已处理」：这些问法回到未解决问题里。"""
    marks = GapResolutions(state.logbook)
    return GapMarkOut(questions=await run_in_threadpool(marks.withdraw, body.questions))


@router.get("/v1/reports/gaps", response_model=GapReport, responses=_ERRORS)
async def gaps(_: TrainerRole, state: Ready, since: Since = None, until: Until = None) -> GapReport:
    """热门问题、未解决问题（按语义归组）、从未被找到的 SOP、复核过期的 SOP、各 SOP 的反馈。

    The report is computed in the background and shared by every process: `computed_at` says when (at most a minute
    ago, unless nobody asked for this window lately)."""
    report = await run_in_threadpool(_report, state, since, until)
    return await _with_staff_answers(state, report)


async def _with_staff_answers(state: Ready, report: GapReport) -> GapReport:
    """Mark the groups tenants asked that a staff-only SOP answers (agent search, through the search lane)."""

    def finder(question: str) -> Callable[[np.ndarray | None], SearchResponse]:
        def run(qvec: np.ndarray | None) -> SearchResponse:
            searcher = state.kb.searcher
            resp = searcher.search(question, audience="agent", with_confidence=True, query_vector=qvec)
            state.confidence.annotate(resp, searcher.catalog, "agent")  # as an agent's search is judged
            return resp

        return run

    groups = []
    for i, group in enumerate(report.unanswered):
        if i < STAFF_ANSWER_GROUPS and group.tenants:
            found = await state.lane.submit(group.representative, finder(group.representative))
            group = group.model_copy(update={"staff_answer": staff_answer_of(found)})  # the stored one unchanged
        groups.append(group)
    # A staff-only SOP that answers a tenants' question was found, by the question's agent search: not 从未被检索到
    # (a trial saw 邻里噪音投诉处理 in both lists)
    answering = {g.staff_answer.sop_id for g in groups if g.staff_answer is not None}
    never = [s for s in report.never_found if s not in answering]
    return report.model_copy(update={"unanswered": groups, "never_found": never})


@router.get("/v1/reports/gaps.csv", response_class=Response, responses=_ERRORS)
async def gaps_csv(_: TrainerRole, state: Ready, since: Since = None, until: Until = None) -> Response:
    """The same report as CSV (UTF-8 with BOM so that Excel shows Chinese correctly)."""
    report = await _with_staff_answers(state, await run_in_threadpool(_report, state, since, until))
    return Response(
        "\ufeff" + to_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="kb-gap-report.csv"'},
    )


@router.get("/v1/reports/service", response_model=ServiceReport, responses=_ERRORS)
async def service(_: TrainerRole, state: Ready, since: Since = None, until: Until = None) -> ServiceReport:
    """服务指标：转人工工单的首次回复用时（中位数、P90、目标内比例）、关闭数、一次回复即关闭数，按优先级和坐席；现在等待的
    工单；聊天自助答复率。目标时间见 KB_CASE_RESPONSE_MINUTES（默认紧急 5 分钟、普通 30 分钟）。"""
    now = time.time()
    end = until if until is not None else now + 1
    start = since if since is not None else end - 30 * 86400
    if start >= end:
        raise HTTPException(422, "开始时间必须早于结束时间 / since must be before until")
    targets = state.settings.case_response_targets
    low = state.settings.chat_min_confidence  # the gap report's 已答·置信度低 (api/app.py's GapReporter)
    return await run_in_threadpool(service_report, state.logbook, start, end, targets, now, low)
