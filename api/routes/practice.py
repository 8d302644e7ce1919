"""Practice drills (在线练习) and exams per category: rounds built from the knowledge base, answers checked here."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, Services, StaffCaller
from api.routes.exam_attempts import (
    EXPOSED_SECONDS,
    PRACTISED_SECONDS,
    abandoned,
    combined_score,
    handed_in,
    unfinished_exam,
    wait_to_retake,
)
from api.schemas import ErrorResponse
from kb_service.accounts.directory import Identity
from kb_service.training import drills, verdict
from kb_service.training.hub import Training, build_round, own_searches
from kb_service.training.matching import LineIndex
from kb_service.training.practice import DrillRow, PracticeError, Session

router = APIRouter(tags=["练习 practice"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 409, 422, 429, 503)}
SessionId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Category = Annotated[str, Path(min_length=1, max_length=40)]
SECONDS = 60  # the clock a drill shows: a tenant on the line waits about this long for the right procedure


class SessionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"size": 5}, {"size": 10, "category": "报修"}]}
    )

    size: int = Field(default=5, ge=1, le=20, description="题数")
    category: str | None = Field(default=None, min_length=1, max_length=40, description="只练这个分类")
    exam: bool = Field(default=False, description="考试：需培训师先为该分类设置及格线；题数取及格线设置的题数")
    assignment_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="完成培训师布置的练习任务：分类、SOP 和题数取自任务（其余字段不用填）",
    )


class DrillOut(BaseModel):
    drill_id: str
    prompt: str = Field(description="租客说的话（来自示例问法、常见问题、学到的问法和租客的提问，已隐去个人信息）")
    position: int
    category: str
    difficulty: int = Field(description="0 易 … 5 难：相近 SOP 越多越难")
    seconds: int = Field(description="建议作答时间")
    pending: dict[str, Any] | None = Field(
        default=None, description="找 SOP 已作答、第二步还没答（上次中断）：接着答这一步，形状同作答返回的 next"
    )


class SessionOut(BaseModel):
    session_id: str
    category: str | None
    exam: bool
    pass_mark: float | None
    every_stage: bool = Field(default=False, description="考试：每题第二步都须答对才算通过")
    drills: list[DrillOut]
    answered: int = Field(default=0, description="已作答的题数：继续一轮未完成的任务练习时，从第 answered + 1 题接着答")
    resumed: bool = Field(
        default=False, description="这是同一培训任务或同一分类考试未完成的那一轮（接着答，不算新的一次尝试）"
    )


class AnswerRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"drill_id": "abc", "sop_id": "repair-leak-ceiling", "ms": 8200},
                {"drill_id": "abc", "stage": "script", "choice": 2},
                {"drill_id": "abc", "stage": "order", "order": [2, 0, 1]},
            ]
        },
    )

    drill_id: str = Field(min_length=1, max_length=40)
    sop_id: str | None = Field(default=None, min_length=1, max_length=80, description="找到的 SOP（第一步必填）")
    stage: Literal["find", "script", "order"] = Field(
        default="find", description="find = 找 SOP；script / order = 第二步"
    )
    choice: int | None = Field(default=None, ge=0, le=20, description="第二步选择的话术序号")
    order: list[int] | None = Field(default=None, max_length=20, description="第二步：步骤按正确顺序排列后的序号")
    ms: int | None = Field(default=None, ge=0, le=3_600_000, description="从题目出现到作答的毫秒数（控制台计时）")


class Progress(BaseModel):
    answered: int = Field(description="已作答（找 SOP）的题数")
    correct: int | None = Field(description="找对 SOP 的题数（考试交卷前为 null）")
    total: int
    finished: bool = Field(description="每题的每一步（找 SOP 和第二步）都已作答")
    score: float | None = Field(
        description="完成后的得分：每一步算一分，(找对的 SOP 数 + 第二步答对数) / (题数 + 有第二步的题数)"
    )
    certified: bool | None = Field(default=None, description="考试：得分达到及格线即通过（完成后）")
    second_answered: int = Field(default=0, description="已作答的第二步数")
    second_correct: int | None = Field(default=0, description="第二步答对数（考试交卷前为 null）")
    second_total: int = Field(default=0, description="有第二步的题数")


class AnswerOut(BaseModel):
    correct: bool | None = Field(description="是否答对；考试交卷前为 null（对错和正确答案在交卷后的回顾里给出）")
    stage: str
    expected_sop_id: str | None
    expected_title: str | None
    answered_sop_id: str | None = None
    ms: int | None = None
    next: dict[str, Any] | None = Field(default=None, description="第二步（找 SOP 之后）：选话术或排步骤")
    expected_choice: int | None = None
    expected_order: list[int] | None = None
    accepted_sop_ids: list[str] = Field(
        default_factory=list, description="找 SOP 时同样算对的其他 SOP（题目答案转介的 SOP），作答后给出"
    )
    expected_scene: str | None = Field(default=None, description="练习中选错 SOP 时：正确 SOP 的适用场景（第一句）")
    answered_title: str | None = Field(default=None, description="练习中选错 SOP 时：所选 SOP 的标题")
    answered_scene: str | None = Field(default=None, description="练习中选错 SOP 时：所选 SOP 的适用场景（第一句）")
    session: Progress


def _fail(exc: PracticeError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


def categories_of(state: Services) -> set[str]:
    return {s.meta.category for s in state.kb.searcher.catalog.every()}


def _new_session(
    state: Services, t: Training, caller: Identity, body: SessionRequest
) -> tuple[Session, list[DrillRow]]:
    size, mark = body.size, None
    sop_ids: tuple[str, ...] = ()
    if body.assignment_id is not None:
        body, sop_ids = _assigned(t, caller, body)
        size = body.size
    if body.category is not None and body.category not in categories_of(state):
        raise HTTPException(422, f"没有分类“{body.category}” / unknown category")
    if body.exam:
        if body.category is None:
            raise HTTPException(422, "考试需要指定分类 / an exam needs a category")
        mark = t.records.marks().get(body.category)
        if mark is None:
            raise HTTPException(422, "培训师还没有为这个分类设置考试 / no exam is set for this category")
        size = mark.size
    level = drills.level(t.practice.recent_results(caller.name))
    # A retake asks other utterances where the category has them (a trial passed a minute after failing, on the
    # questions whose answers the failed attempt had just shown)
    latest = t.practice.history(caller.name, limit=10) if body.exam else []
    attempts = [(x, ds) for x, ds in latest if x.exam and x.category == body.category]
    # An attempt left unfinished after an answer is handed in as it stands, unanswered stages wrong (a trial left an
    # exam going badly and started a fresh one: the bad attempt stayed 未完成 for good and no wait applied); one with
    # no answer at all is left as it is. An attempt of the last day is continued instead (`unfinished_exam`), so
    # what is handed in here is older.
    attempts = [(handed_in(t, x, ds), ds) if abandoned(x, ds) else (x, ds) for x, ds in attempts]
    if mark is not None and mark.retake_minutes:
        wait_to_retake(t, caller.name, mark, [x for x, _ in attempts if x.finished_ts is not None])
    # ... and what the person practised in the last day (a trial: two practice questions, answers shown, were asked
    # again in the exam two minutes later)
    practised = [ds for x, ds in latest if not x.exam and x.ts > time.time() - PRACTISED_SECONDS]
    seen = {d.prompt for _, ds in attempts for d in ds} | {d.prompt for ds in practised for d in ds}
    if body.exam:  # nor what the person searched for on the job (a trial's exam opened with her own search)
        seen |= own_searches(state.logbook, caller.name)
    chosen = build_round(
        state.kb.searcher,
        state.logbook,
        size=size,
        category=body.category,
        level=level,
        exam=body.exam,
        avoid=seen,
        sop_ids=mark.sop_ids if mark is not None else sop_ids,
        exposed=t.practice.asked_others(caller.name, time.time() - EXPOSED_SECONDS) if body.exam else (),
    )
    if not chosen or (body.exam and len(chosen) < size):
        # A trial's agents chose 紧急事件 on a knowledge base without examples and read only 「问法不够」
        where = f"“{body.category}”" if body.category else "知识库"
        raise HTTPException(
            422,
            f"{where}还没有足够的练习问法（SOP 的示例问法和常见问答）：可以先选「全部分类」练习，或请培训师补充问法"
            " / not enough utterances to practise on here",
        )
    if mark is None:
        return t.practice.create(caller.name, body.category, body.exam, chosen, assignment_id=body.assignment_id)
    return t.practice.create(caller.name, body.category, body.exam, chosen, mark.pass_mark, mark.every_stage)


def _assigned(t: Training, caller: Identity, body: SessionRequest) -> tuple[SessionRequest, tuple[str, ...]]:
    """The round a practice assignment asks for (its category, SOPs and size), for its own assignee only."""
    task = t.assignments.get(body.assignment_id or "")
    if task is None or task.withdrawn_ts is not None:
        raise HTTPException(404, "没有这个培训任务，或已被撤下 / unknown or withdrawn assignment")
    if task.who != caller.name:
        raise HTTPException(403, "这是布置给别人的任务 / this assignment is someone else's")
    if task.kind != "practice":
        raise HTTPException(422, f"这是“{task.category}”考试任务：请直接参加该分类的考试 / an exam assignment")
    request = SessionRequest(size=task.size, category=task.category, assignment_id=task.assignment_id)
    return request, task.sop_ids


def _unfinished_round(t: Training, caller: Identity, body: SessionRequest) -> tuple[Session, list[DrillRow]] | None:
    """The task's round this person started in the last day and has not finished: 开始练习 again continues it
    (a re-check trial: each click started a new round and counted as another attempt)."""
    _assigned(t, caller, body)  # still theirs, not withdrawn
    who, assignment_id, since = caller.name, body.assignment_id, time.time() - PRACTISED_SECONDS
    return next(
        (
            (x, ds)
            for x, ds in t.practice.history(who, limit=10)
            if x.assignment_id == assignment_id and x.finished_ts is None and x.ts > since
        ),
        None,
    )


@router.post("/v1/practice/sessions", response_model=SessionOut, status_code=201, responses=ERRORS)
async def new_session(body: SessionRequest, caller: StaffCaller, state: Ready) -> SessionOut:
    """开始一轮练习：每题一句租客的话，找出对应的 SOP；答对后选话术或排步骤。难度随相近 SOP 增加。"""
    t = state.training
    going = None
    if body.assignment_id is not None:
        going = await run_in_threadpool(_unfinished_round, t, caller, body)
    elif body.exam and body.category is not None:
        going = await run_in_threadpool(unfinished_exam, t, caller, body.category)
    resumed = going is not None
    if going is None:
        going = await run_in_threadpool(_new_session, state, t, caller, body)
    session, rows = going
    return SessionOut(
        session_id=session.session_id,
        category=session.category,
        exam=session.exam,
        pass_mark=session.pass_mark,
        every_stage=session.every_stage,
        drills=[
            DrillOut(
                drill_id=d.drill_id,
                prompt=d.prompt,
                position=d.position,
                category=d.category,
                difficulty=d.difficulty,
                seconds=SECONDS,
                pending=_pending(d),
            )
            for d in rows
        ],
        answered=next((i for i, d in enumerate(rows) if d.answered_ts is None or _pending(d)), len(rows)),
        resumed=resumed,
    )


def _pending(d: DrillRow) -> dict[str, Any] | None:
    """The second stage of a drill whose SOP was picked and whose stage was not answered (a trial's agent took a call
    with it on screen: 开始练习 again went on at the next drill, and the task could never be finished)."""
    if d.answered_ts is None or d.followup_ts is not None or not d.followup.get("kind"):
        return None
    return drills.public_followup(d.followup.get("decoy") or d.followup)


def _progress(t: Training, session: Session, live: Callable[[str], bool]) -> Progress:
    """`live(category)`: the category still has a SOP (an exam on retired procedures certifies nobody)."""
    rows = t.practice.drills(session.session_id)
    answered = [d for d in rows if d.answered_ts is not None]
    correct = sum(1 for d in answered if d.correct)
    second = [d for d in rows if d.followup.get("kind")]
    second_done = [d for d in second if d.followup_ts is not None]
    finished = len(answered) == len(rows) and len(second_done) == len(second)
    score = combined_score(rows) if finished and rows else None
    certified = None
    if finished and score is not None:
        if session.exam and session.category:
            # Judged against the pass mark the exam was started under (one set later does not move the bar); an exam
            # withdrawn meanwhile certifies nobody.
            marks = t.records.marks()
            passed = bool(verdict.passed(session, score, marks, rows)) and session.category in marks
            # ... nor does one whose category lost its last SOP meanwhile (a trial certified 88 % on a deleted SOP)
            certified = passed and live(session.category)
        if t.practice.finish(session.session_id, score, certified) and certified and session.category:
            t.records.certify(session.who, session.category, score, session.session_id)
    return Progress(
        answered=len(answered),
        correct=correct,
        total=len(rows),
        finished=finished,
        score=score,
        certified=certified,
        second_answered=len(second_done),
        second_correct=sum(1 for d in second_done if d.followup_correct),
        second_total=len(second),
    )


def _elapsed_ms(t: Training, session: Session) -> int:
    """Server-side time since the session began or its last answer: a reported time can only be shorter."""
    last = max([session.ts, *(d.answered_ts or 0 for d in t.practice.drills(session.session_id))])
    return int((time.time() - last) * 1000)


def _answer(state: Services, t: Training, caller: Identity, session_id: str, body: AnswerRequest) -> AnswerOut:
    session, drill = t.practice.owned(session_id, body.drill_id, caller.name)
    expected = state.kb.searcher.catalog.get(drill.sop_id)
    title = expected.title if expected is not None else drill.sop_id
    out = AnswerOut(
        correct=False,
        stage=body.stage,
        expected_sop_id=drill.sop_id,
        expected_title=title,
        session=Progress(answered=0, correct=0, total=0, finished=False, score=None),
    )
    if body.stage == "find":
        if body.sop_id is None:
            raise HTTPException(422, "请给出找到的 SOP（sop_id）/ sop_id is required")
        accepted = {drill.sop_id, *drill.followup.get("accept", [])}
        if body.sop_id not in accepted and state.kb.searcher.catalog.get(body.sop_id) is None:
            # a typo or a stale id used up the drill as a wrong answer (a trial): nothing is recorded for it
            raise HTTPException(422, f"没有这份 SOP：{body.sop_id} / unknown sop_id")
        elapsed = _elapsed_ms(t, session)
        ms = min(body.ms, elapsed) if body.ms is not None else elapsed
        # a FAQ answer that refers the tenant to another SOP accepts that one too
        out.correct = body.sop_id == drill.sop_id or body.sop_id in drill.followup.get("accept", [])
        t.practice.answer_find(drill.drill_id, body.sop_id, out.correct, ms)
        out.answered_sop_id, out.ms = body.sop_id, ms
        out.accepted_sop_ids = list(drill.followup.get("accept", []))
        out.next = drills.public_followup(drill.followup)
        if session.exam and not out.correct and out.next is not None:
            out.next = _decoy(state, t, drill, body.sop_id)
        elif not session.exam and not out.correct:  # what each SOP is for: the difference to learn (a trial)
            picked = state.kb.searcher.catalog.get(body.sop_id)
            out.expected_scene = drills.scene(expected) if expected is not None else None
            out.answered_title = picked.title if picked is not None else None
            out.answered_scene = drills.scene(picked) if picked is not None else None
    else:
        _second_stage(t, drill, body, out)
    out.session = _progress(t, session, lambda category: category in categories_of(state))
    return _sealed(out) if session.exam and not out.session.finished else out


def _decoy(state: Services, t: Training, drill: DrillRow, picked_id: str) -> dict[str, Any] | None:
    """An exam's wrong pick: the right SOP's lines or steps would show which SOP it was (a trial ordered them for a
    point), and no second stage at all would show the pick was wrong (a training manager's trial). A second stage
    from the picked SOP is asked instead, none of its answers right; without one, the stage is recorded wrong."""
    picked = state.kb.searcher.catalog.get(picked_id)
    everything = list(state.kb.searcher.catalog.every())
    rest = [s for s in everything if s.meta.id not in (picked_id, drill.sop_id)]
    rng = random.Random()
    fake = drills.decoy(drill.followup, picked, drill.prompt, LineIndex(everything), rng, rest) if picked else {}
    if not fake:
        t.practice.answer_followup(drill.drill_id, False)
        return None
    t.practice.set_followup(drill.drill_id, {**drill.followup, "decoy": fake})
    return drills.public_followup(fake)


def _second_stage(t: Training, drill: DrillRow, body: AnswerRequest, out: AnswerOut) -> None:
    """Judge and record the second stage (an exam's decoy after a wrong pick: recorded wrong whatever is chosen)."""
    stage = drill.followup.get("decoy") or drill.followup
    if drill.answered_ts is None:
        raise HTTPException(409, "请先找出 SOP / answer the find stage first")
    if stage.get("kind") != body.stage:
        raise HTTPException(422, "这道题没有这一步 / this drill has no such stage")
    if body.stage == "script":
        if body.choice is None or body.choice >= len(stage["options"]):
            raise HTTPException(422, "请选择一句话术（choice）/ choice must name one of the options")
        out.correct, out.expected_choice = body.choice == stage["answer"], stage["answer"]
    else:
        if body.order is None or sorted(body.order) != list(range(len(stage["steps"]))):
            raise HTTPException(422, "order 必须是所有步骤序号的一个排列 / order must list every step index once")
        out.correct, out.expected_order = body.order == stage["answer"], stage["answer"]
    chosen = body.choice if body.stage == "script" else body.order
    t.practice.answer_followup(drill.drill_id, bool(out.correct), None if "decoy" in drill.followup else chosen)


def _sealed(out: AnswerOut) -> AnswerOut:
    """An exam's answer before the last stage: recorded, neither judged nor answered for the trainee (a trial passed a
    retake on the answers each wrong one had shown); the review after the last stage gives both."""
    progress = out.session.model_copy(update={"correct": None, "second_correct": None})
    hidden = {"correct": None, "expected_sop_id": None, "expected_title": None, "expected_choice": None}
    return out.model_copy(update={**hidden, "expected_order": None, "accepted_sop_ids": [], "session": progress})


@router.post("/v1/practice/sessions/{session_id}/answers", response_model=AnswerOut, responses=ERRORS)
async def answer(session_id: SessionId, body: AnswerRequest, caller: StaffCaller, state: Ready) -> AnswerOut:
    """作答：服务端判分；正确的 SOP 只在作答后给出。每一步只能答一次。

    得分（session.score，每题的两步都答完后给出）：每一步算一分，
    score = (找对的 SOP 数 + 第二步答对数) / (题数 + 有第二步的题数)；考试以此得分对照及格线认证。
    题目来自常见问题、而答案把租客转给另一份 SOP（如“这属于提前退租…”）时，那份 SOP 也算答对。"""
    try:
        return await run_in_threadpool(_answer, state, state.training, caller, session_id, body)
    except PracticeError as exc:
        raise _fail(exc) from None
