"""Exams per category (a trainer sets the pass mark; passing is recorded per person) and the on-the-job outcomes the
agent console reports for the training-needs report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, StaffCaller, TrainerCaller
from api.routes.practice import categories_of
from api.schemas import ErrorResponse
from kb_service.training.changes import changed_since
from kb_service.training.hub import build_round, supply
from kb_service.training.records import Certification, ExamMark

router = APIRouter(tags=["练习 practice"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 422, 503)}
Category = Annotated[str, Path(min_length=1, max_length=40, description="SOP 分类")]


class MarkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pass_mark": 0.8, "size": 10}]})

    pass_mark: float = Field(gt=0, le=1, description="及格线：考试得分（两步合计，见作答接口）的最低值（0–1）")
    size: int = Field(default=10, ge=1, le=20, description="考试题数")
    valid_days: int | None = Field(
        default=None, ge=1, le=3650, description="认证有效期（天）：通过后多少天需要重考；不填则长期有效"
    )
    every_stage: bool = Field(
        default=False, description="每题第二步（选话术、排步骤）都须答对才算通过，得分够也不行（适合紧急事件）"
    )
    retake_minutes: int = Field(
        default=0, ge=0, le=10080, description="未通过后多少分钟才能重考（0：马上可以）：防止凭记忆反复重考"
    )
    sops: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(
        default_factory=list,
        max_length=100,
        description="只从这些 SOP（都须属于该分类）出题；不填则从整个分类出题。认证仍按分类",
    )


class ExamOut(BaseModel):
    category: str
    pass_mark: float
    size: int
    set_by: str
    valid_days: int | None = Field(default=None, description="认证有效期（天），空为长期有效")
    every_stage: bool = Field(default=False, description="通过还要求每题第二步都答对")
    retake_minutes: int = Field(default=0, description="未通过后多少分钟才能重考（0：马上可以）")
    sops: list[str] = Field(default_factory=list, description="只从这些 SOP 出题（空：整个分类）")
    certified: bool = Field(description="调用者现在是否持有有效认证（通过且未过期）")
    certified_ts: float | None = Field(description="调用者最近一次通过的时间（过期后仍保留）")
    score: float | None
    certified_mark: float | None = Field(
        default=None, description="调用者那次通过时的及格线（及格线后来改过时与 pass_mark 不同）"
    )
    expires_ts: float | None = Field(default=None, description="调用者的认证到期时间（Unix 秒），空为长期有效或未通过")
    expired: bool = Field(default=False, description="调用者通过过，但认证已过期，需要重考")
    changed_since: int = Field(
        default=0, description="调用者认证之后，该分类 SOP 的步骤、话术、时限或升级又发布了几处变更（建议重考）"
    )
    retired: bool = Field(default=False, description="该分类已没有任何 SOP（文档都已删除）：考试无法进行，可以撤下")


class CertificationOut(BaseModel):
    who: str
    category: str
    ts: float
    score: float
    expires_ts: float | None = Field(default=None, description="到期时间（Unix 秒），空为长期有效")
    valid: bool = Field(default=True, description="现在是否有效：未过期，且该分类仍设有考试")


def _exam_out(mark: ExamMark, mine: Certification | None, changed: int = 0, retired: bool = False) -> ExamOut:
    valid = mine is not None and mine.valid(mark)
    return ExamOut(
        category=mark.category,
        pass_mark=mark.pass_mark,
        size=mark.size,
        set_by=mark.set_by,
        valid_days=mark.valid_days,
        every_stage=mark.every_stage,
        retake_minutes=mark.retake_minutes,
        sops=list(mark.sop_ids),
        certified=valid,
        certified_ts=mine.ts if mine else None,
        score=mine.score if mine else None,
        certified_mark=mine.pass_mark if mine else None,
        expires_ts=mine.expires(mark) if mine else None,
        expired=mine is not None and not valid,
        changed_since=changed if valid else 0,
        retired=retired,
    )


class SopRef(BaseModel):
    sop_id: str
    title: str


class SupplyOut(BaseModel):
    category: str
    sops: int = Field(description="分类下的 SOP 数")
    utterances: int = Field(description="可用来出练习题的问法数（示例问法、常见问答、从坐席学到的问法）")
    exam_ready: int = Field(description="其中能用于考试的问法数（检索本身把正确 SOP 排在第一）：考试题数的上限")
    bare: list[SopRef] = Field(description="还没有任何问法的 SOP：练习和考试都不会出到它们，请补充示例问法")
    unstaged: list[SopRef] = Field(
        default_factory=list,
        description="有问法、却出不了第二步（话术里没有回应这些问法的句子，"
        "也没有连续几步不分情况的步骤可排顺序）的 SOP：考试先出有第二步的题，它们很少出到",
    )
    ready_by_sop: dict[str, int] = Field(
        default_factory=dict, description="每份 SOP 能出的考试题数：只考其中几份 SOP 时，题数上限是它们之和"
    )


class ActivityRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"outcome": "copy", "query_id": 12, "sop_id": "x", "ms": 9000}]}
    )

    outcome: Literal["copy", "open", "research", "abandon"] = Field(
        description="一次检索的结果：copy 复制话术、open 查看全文、research 改词重搜、abandon 放弃"
    )
    query_id: int | None = Field(default=None, ge=1, le=2**53)
    sop_id: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")
    ms: int | None = Field(default=None, ge=0, le=3_600_000, description="从第一次按键到这一结果的毫秒数")


class ActivityOut(BaseModel):
    id: str


@router.get("/v1/practice/exams", response_model=list[ExamOut], responses=ERRORS)
async def exams(caller: StaffCaller, state: Ready) -> list[ExamOut]:
    """设有考试的分类，以及调用者通过了哪些（控制台据此显示认证）。"""
    t = state.training
    marks = await run_in_threadpool(t.records.marks)
    mine = {c.category: c for c in await run_in_threadpool(t.records.certifications, caller.name)}
    passes = [(caller.name, c.category, c.ts) for c in mine.values()]
    stale = await run_in_threadpool(lambda: changed_since(passes, t.changes.dated(), state.kb.searcher.catalog))
    live = await run_in_threadpool(categories_of, state)
    return [
        _exam_out(m, mine.get(m.category), stale.get((caller.name, m.category), 0), m.category not in live)
        for m in marks.values()
    ]


@router.get("/v1/practice/supply", response_model=list[SupplyOut], responses=ERRORS)
async def drill_supply(_: TrainerCaller, state: Ready) -> list[SupplyOut]:
    """每个分类能出多少道练习题和考试题，以及哪些 SOP 还没有问法（设置考试前先看这里）。"""
    rows = await run_in_threadpool(supply, state.kb.searcher, state.logbook)
    return [
        SupplyOut(
            category=r.category,
            sops=r.sops,
            utterances=r.utterances,
            exam_ready=r.exam_ready,
            bare=[SopRef(sop_id=i, title=t) for i, t in r.bare],
            unstaged=[SopRef(sop_id=i, title=t) for i, t in r.unstaged],
            ready_by_sop=r.ready_by_sop,
        )
        for r in rows
    ]


@router.put("/v1/practice/exams/{category}", response_model=ExamOut, responses=ERRORS)
async def set_exam(category: Category, body: MarkRequest, caller: TrainerCaller, state: Ready) -> ExamOut:
    """为一个分类设置考试：及格线、题数和认证有效期。改及格线不影响已开考的考试（按开考时的及格线判定）。"""
    if category not in categories_of(state):
        raise HTTPException(422, f"没有分类“{category}” / unknown category")
    catalog = state.kb.searcher.catalog
    for sop_id in body.sops:
        sop = catalog.get(sop_id)
        if sop is None or sop.meta.category != category:
            raise HTTPException(422, f"SOP “{sop_id}” 不属于分类“{category}” / not a SOP of this category")
    # An exam the category cannot fill would refuse every agent who starts it: try one round now.
    trial = await run_in_threadpool(
        lambda: build_round(
            state.kb.searcher, state.logbook, size=body.size, category=category, level=0, exam=True, sop_ids=body.sops
        )
    )
    if len(trial) < body.size:
        where = f"所选的 {len(set(body.sops))} 份 SOP" if body.sops else f"分类“{category}”"
        raise HTTPException(
            422,
            (
                f"{where}还没有可用来出题的问法，请先给这些 SOP 补充示例问法（examples）或常见问答"
                if not trial
                else f"{where}现有的问法只够出 {len(trial)} 道题，请把题数设为不超过 {len(trial)}，"
                "或先给这些 SOP 补充示例问法（examples）或常见问答"
            )
            + f" / this category has utterances for {len(trial)} drill(s) only",
        )
    records = state.training.records
    mark = await run_in_threadpool(
        records.set_mark,
        category,
        body.pass_mark,
        body.size,
        caller.name,
        body.valid_days,
        body.every_stage,
        body.retake_minutes,
        body.sops,
    )
    mine = {c.category: c for c in await run_in_threadpool(records.certifications, caller.name)}
    return _exam_out(mark, mine.get(category))


@router.delete("/v1/practice/exams/{category}", status_code=204, responses=ERRORS)
async def withdraw_exam(category: Category, _: TrainerCaller, state: Ready) -> None:
    """撤下一个分类的考试。已有的通过记录保留为历史，但不再算作有效认证；重新设置考试后恢复（未过期的）。"""
    if not await run_in_threadpool(state.training.records.delete_mark, category):
        raise HTTPException(404, f"分类“{category}”没有设置考试 / no exam for this category")


@router.get("/v1/practice/certifications", response_model=list[CertificationOut], responses=ERRORS)
async def certifications(_: TrainerCaller, state: Ready) -> list[CertificationOut]:
    """每个人通过了哪些分类的考试，到期时间，以及现在是否有效。"""
    records = state.training.records
    rows, marks = await run_in_threadpool(lambda: (records.certifications(), records.marks()))
    return [
        CertificationOut(
            who=c.who,
            category=c.category,
            ts=c.ts,
            score=c.score,
            expires_ts=c.expires(marks.get(c.category)),
            valid=c.valid(marks.get(c.category)),
        )
        for c in rows
    ]


@router.post("/v1/practice/activity", response_model=ActivityOut, responses=ERRORS)
async def activity(body: ActivityRequest, caller: StaffCaller, state: Ready) -> ActivityOut:
    """控制台上报一次检索的结果（复制/查看/重搜/放弃）和用时，供培训缺口报告使用。"""
    episode = await run_in_threadpool(
        state.training.records.episode, caller.name, body.outcome, body.query_id, body.sop_id, body.ms
    )
    return ActivityOut(id=episode)
