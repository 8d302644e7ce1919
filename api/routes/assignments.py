"""Training assignments (培训任务): trainers ask named people to pass an exam or finish a practice round by a date;
agents see their own, trainers everyone's, each with how it stands (read from the practice records)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, Services, StaffCaller, TrainerCaller
from api.routes.practice import categories_of
from api.schemas import ErrorResponse
from kb_service.training import drills
from kb_service.training.assignments import Assignment, Progress
from kb_service.training.hub import logged_phrasings

router = APIRouter(tags=["练习 practice"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 422, 503)}
AssignmentId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
YEAR = 366 * 86400.0
ASSIGNABLE = ("agent", "trainer")  # admins manage accounts and answer no calls (as with change acknowledgements)


class AssignRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "exam", "category": "报修", "people": ["王芳"], "due_ts": 1765555199},
                {"kind": "practice", "sops": ["repair-leak-ceiling"], "size": 5, "people": ["王芳", "李雷"],
                 "due_ts": 1765555199, "note": "上周两次没找到漏水流程"},
            ]
        },
    )  # fmt: skip

    kind: Literal["exam", "practice"] = Field(description="exam：通过该分类的考试；practice：完成一轮练习")
    category: str | None = Field(
        default=None, min_length=1, max_length=40, description="考试必填（须已设置考试）；练习可选：只练这个分类"
    )
    sops: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(
        default_factory=list, max_length=50, description="练习：只练这些 SOP（不填：分类的全部，或全部分类）"
    )
    size: int = Field(default=5, ge=1, le=20, description="练习题数（考试的题数按考试设置）")
    people: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=500, description="布置给这些人（账号名，坐席或培训师）"
    )
    due_ts: float = Field(description="截止时间（Unix 秒，例如所选日期当天 23:59:59）")
    note: str = Field(default="", max_length=500, description="给学员的说明（为什么要练）")


class AssignmentOut(BaseModel):
    assignment_id: str
    who: str
    kind: str
    category: str | None
    sops: list[dict[str, str | None]] = Field(description="练习的 SOP：sop_id 和现在的标题（已删除为 null）")
    size: int = Field(description="题数（考试任务为该分类考试现在的题数）")
    due_ts: float
    note: str
    assigned_by: str
    assigned_ts: float
    status: str = Field(description="open 未完成 / overdue 已逾期 / done 已完成 / withdrawn 已撤下")
    done_ts: float | None = Field(description="完成时间：考试为任务布置后通过的时间，练习为那轮练习完成的时间")
    attempts: int = Field(description="布置后参加的该分类考试次数（练习任务：从任务开始的练习轮数）")
    best_score: float | None = Field(description="其中最好的得分（0–1）")
    existed: bool = Field(default=False, description="布置时：此人已有同样的未完成任务，只更新了截止时间和说明")
    certified: bool = Field(default=False, description="考试任务：此人已有该分类有效的认证（任务要求布置后再通过一次）")
    withdrawn_ts: float | None = Field(default=None, description="撤下的时间（已撤下的任务）")
    retired: bool = Field(
        default=False,
        description="任务已无法进行：分类已没有任何 SOP（文档都已删除），或考试任务的考试已撤下；可以撤下任务",
    )


class Assignee(BaseModel):
    name: str
    role: str


def _out(
    state: Services,
    sizes: dict[str, int],
    a: Assignment,
    p: Progress,
    live: set[str],
    existed: bool = False,
    certified: bool = False,
) -> AssignmentOut:
    """`live`: the categories that still have a SOP (a task on one whose documents were all deleted cannot be done)."""
    catalog = state.kb.searcher.catalog
    size = sizes.get(a.category or "", a.size) if a.kind == "exam" else a.size
    return AssignmentOut(
        assignment_id=a.assignment_id,
        who=a.who,
        kind=a.kind,
        category=a.category,
        sops=[{"sop_id": i, "title": sop.title if (sop := catalog.get(i)) else None} for i in a.sop_ids],
        size=size,
        due_ts=a.due_ts,
        note=a.note,
        assigned_by=a.assigned_by,
        assigned_ts=a.assigned_ts,
        status=p.status,
        done_ts=p.done_ts,
        attempts=p.attempts,
        best_score=p.best_score,
        existed=existed,
        certified=certified,
        withdrawn_ts=a.withdrawn_ts,
        # its category lost its last SOP, or (an exam task) its exam was withdrawn: it cannot be done (a re-check)
        retired=(a.category is not None and a.category not in live) or (a.kind == "exam" and a.category not in sizes),
    )


def _exam_sizes(state: Services) -> dict[str, int]:
    return {category: mark.size for category, mark in state.training.records.marks().items()}


def _check(state: Services, body: AssignRequest) -> None:
    """What the assignment names exists: the category (with an exam set, for an exam), SOPs of it, the people."""
    now = time.time()
    if not now - 60 <= body.due_ts <= now + YEAR:
        raise HTTPException(422, "截止时间须在今天到一年之内 / the due time must be within the coming year")
    if body.category is not None and body.category not in categories_of(state):
        raise HTTPException(422, f"没有分类“{body.category}” / unknown category")
    if body.kind == "exam":
        if body.category is None or body.category not in state.training.records.marks():
            raise HTTPException(
                422,
                "考试任务须选一个已设置考试的分类（先在「考试」里设置）"
                " / an exam assignment needs a category with an exam set",
            )
        if body.sops:
            raise HTTPException(422, "考试任务按考试的设置出题，不能另选 SOP / an exam assignment takes no SOPs")
    catalog = state.kb.searcher.catalog
    for sop_id in body.sops:
        sop = catalog.get(sop_id)
        if sop is None:
            raise HTTPException(422, f"没有 id 为 {sop_id} 的 SOP / unknown SOP")
        if body.category is not None and sop.meta.category != body.category:
            raise HTTPException(422, f"SOP “{sop_id}” 不属于分类“{body.category}” / not a SOP of this category")
    if body.kind == "practice":  # a task that can never be started (a re-check trial assigned a SOP with no utterance)
        chosen = [catalog.get(i) for i in body.sops] or [
            s for s in catalog.every() if body.category is None or s.meta.category == body.category
        ]
        found = drills.candidates([s for s in chosen if s is not None], logged_phrasings(state.logbook))
        if not found:
            raise HTTPException(
                422,
                "所选的 SOP 还没有练习问法（示例问法、常见问答、学到的问法），这个练习没法开始：请先给它们补充 examples"
                " / the chosen SOPs have no utterances to practise on",
            )
        if len(found) < body.size:  # a round cannot ask more (a re-check trial's 10 became 4 without a word)
            raise HTTPException(
                422,
                f"所选范围只有 {len(found)} 个练习问法，题数最多 {len(found)} 道：请减少题数或多选几份 SOP"
                f" / only {len(found)} utterances to practise on",
            )
    known = {a.name for a in state.training.accounts.names(ASSIGNABLE)}
    unknown = [p for p in body.people if p not in known]
    if unknown:
        raise HTTPException(
            422, f"这些人不是在用的坐席或培训师账号：{'、'.join(unknown[:10])} / not active agent or trainer accounts"
        )


@router.post("/v1/practice/assignments", response_model=list[AssignmentOut], status_code=201, responses=ERRORS)
async def assign(body: AssignRequest, caller: TrainerCaller, state: Ready) -> list[AssignmentOut]:
    """布置培训任务：让这些人在截止时间前通过某分类的考试，或完成一轮（指定 SOP 的）练习。
    同一人已有同样的未完成任务时，只更新截止时间和说明。"""

    def work() -> list[AssignmentOut]:
        _check(state, body)
        store = state.training.assignments
        made = store.assign(
            body.people,
            body.kind,
            category=body.category,
            sop_ids=body.sops,
            size=body.size,
            due_ts=body.due_ts,
            note=body.note.strip(),
            by=caller.name,
        )
        stands, sizes = store.progress([a for a, _ in made]), _exam_sizes(state)
        # An exam for someone certified already asks for a pass after now: the trainer is told (a re-check trial)
        certified = {(c.who, c.category) for c in state.training.records.valid_certifications()}
        live = categories_of(state)
        return [
            _out(
                state,
                sizes,
                a,
                stands[a.assignment_id],
                live,
                existed,
                a.kind == "exam" and (a.who, a.category) in certified,
            )
            for a, existed in made
        ]

    return await run_in_threadpool(work)


@router.get("/v1/practice/assignments", response_model=list[AssignmentOut], responses=ERRORS)
async def assignments(
    caller: StaffCaller,
    state: Ready,
    person: Annotated[str | None, Query(min_length=1, max_length=64, description="只看这个人的（培训师）")] = None,
    status: Annotated[
        Literal["open", "overdue", "done", "todo", "withdrawn"] | None,
        Query(description="只看这种状态（todo：未完成和已逾期；withdrawn：已撤下的，仅培训师）"),
    ] = None,
) -> list[AssignmentOut]:
    """培训任务和完成情况：坐席只看到自己的；培训师看到所有人的（可按人、按状态筛选）。"""
    if not caller.trainer and person not in (None, caller.name):
        raise HTTPException(403, "只能查看自己的培训任务 / agents see their own assignments only")
    if status == "withdrawn" and not caller.trainer:
        raise HTTPException(403, "已撤下的任务只有培训师能查看 / withdrawn assignments are for trainers")
    who = person or (None if caller.trainer else caller.name)

    def work() -> list[AssignmentOut]:
        store = state.training.assignments
        rows = store.list(people=None if who is None else [who], withdrawn=status == "withdrawn")
        stands = store.progress(rows)
        wanted = {"todo": ("open", "overdue")}.get(status or "", (status,) if status else None)
        rows = [a for a in rows if wanted is None or stands[a.assignment_id].status in wanted]
        sizes, live = _exam_sizes(state), categories_of(state)
        return [_out(state, sizes, a, stands[a.assignment_id], live) for a in rows]

    return await run_in_threadpool(work)


@router.delete("/v1/practice/assignments/{assignment_id}", status_code=204, responses=ERRORS)
async def withdraw(assignment_id: AssignmentId, _: TrainerCaller, state: Ready) -> None:
    """撤下一个培训任务（保留为记录，学员不再看到）。"""
    if not await run_in_threadpool(state.training.assignments.withdraw, assignment_id):
        raise HTTPException(404, "没有这个培训任务，或已撤下 / unknown or withdrawn assignment")


@router.get("/v1/practice/assignees", response_model=list[Assignee], responses=ERRORS)
async def assignees(_: TrainerCaller, state: Ready) -> list[Assignee]:
    """可以布置任务的人：在用的坐席和培训师账号。"""
    people = await run_in_threadpool(lambda: list(state.training.accounts.names(ASSIGNABLE)))
    return [Assignee(name=a.name, role=a.role) for a in sorted(people, key=lambda a: (a.role != "agent", a.name))]
