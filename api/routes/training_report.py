"""The training-needs report (培训缺口) for trainers: JSON, CSV and weekly trend charts (SVG)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, Services, TrainerCaller
from api.routes.practice_history import MineItem, sessions_of
from api.schemas import ErrorResponse, Moment
from kb_service.training.report import TrainingReport, build_report, default_window
from kb_service.training.report_csv import to_csv
from kb_service.training.svg import trend_svg

router = APIRouter(tags=["培训师 trainer"])
ERRORS = {s: {"model": ErrorResponse} for s in (401, 403, 422, 503)}
Since = Annotated[Moment | None, Query(description="开始时间（Unix 秒或日期，如 2026-11-01），默认 12 周前")]
Until = Annotated[Moment | None, Query(description="结束时间（Unix 秒或日期），默认现在")]
Person = Annotated[str | None, Query(min_length=1, max_length=40, description="只看这个人")]


def _report(state: Services, since: float | None, until: float | None, person: str | None = None) -> TrainingReport:
    start, end = default_window(since, until)
    if start >= end:
        raise HTTPException(422, "开始时间必须早于结束时间 / since must be before until")
    return build_report(state.training, state.kb.searcher.catalog, start, end, person)


@router.get("/v1/practice/report", response_model=TrainingReport, responses=ERRORS)  # type: ignore[arg-type]
async def report(_: TrainerCaller, state: Ready, since: Since = None, until: Until = None) -> TrainingReport:
    """培训缺口：每个人、每份 SOP、每个分类的练习正确率与用时、在岗检索成功率、复制话术用时、👎 比例、未确认变更，
    以及按周的趋势。坐席密钥返回 403。"""
    return await run_in_threadpool(_report, state, since, until)


@router.get("/v1/practice/report.csv", response_class=Response, responses=ERRORS)  # type: ignore[arg-type]
async def report_csv(_: TrainerCaller, state: Ready, since: Since = None, until: Until = None) -> Response:
    """同一报告的 CSV（UTF-8 带 BOM；以 = + - @ 开头的单元格加 ' 防止被表格软件当作公式）。"""
    data = await run_in_threadpool(_report, state, since, until)
    return Response(
        "\ufeff" + to_csv(data, {s.meta.id: s.title for s in state.kb.searcher.catalog.every()}),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="kb-training-report.csv"'},
    )


@router.get("/v1/practice/report/trend.svg", response_class=Response, responses=ERRORS)  # type: ignore[arg-type]
async def trend(
    _: TrainerCaller, state: Ready, since: Since = None, until: Until = None, person: Person = None
) -> Response:
    """按周的趋势图（服务端生成的 SVG）：练习正确率与在岗检索成功率；可只看一个人。"""
    data = await run_in_threadpool(_report, state, since, until, person)
    weeks = data.weeks
    title = f"每周趋势 · {person}" if person else "每周趋势 · 全体"
    svg = trend_svg(
        title,
        [w.week for w in weeks],
        [("练习正确率", [w.accuracy for w in weeks]), ("检索成功率", [w.search_success for w in weeks])],
    )
    return Response(svg, media_type="image/svg+xml")


@router.get("/v1/practice/report/sessions", response_model=list[MineItem], responses=ERRORS)  # type: ignore[arg-type]
async def sessions(
    _: TrainerCaller,
    state: Ready,
    person: Annotated[str, Query(min_length=1, max_length=40, description="账号名")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[MineItem]:
    """培训师：一个人最近的练习和考试（最新的在前），考试附是否达到及格线，未通过的也在内。"""
    return await run_in_threadpool(sessions_of, state.training, person, limit)
