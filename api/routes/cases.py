"""Hand-over cases: a tenant opens one from the chat widget (no key, rate-limited, a short form), staff see the
待接入 queue, take a case, reply and close it; the tenant reads the conversation with the case's token."""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Header, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import (
    URGENT_CASES_FACTOR,
    Caller,
    CallerRole,
    Ready,
    Role,
    Services,
    StaffCaller,
    StaffRole,
    limit_cases,
    tenant_client,
)
from api.routes.case_match import case_match, emergency
from api.routes.case_models import (
    CaseCreate,
    CaseCreated,
    CaseDetail,
    CaseList,
    CaseOut,
    Conversation,
    DeliveryOut,
    MessageIn,
    MessageOut,
    TakeIn,
    TenantMessageOut,
)
from api.schemas import ErrorResponse
from kb_service.accounts.directory import Identity
from kb_service.handover.lookup import MAX_WORDS
from kb_service.handover.store import Case, Message, RequestTakenError
from kb_service.search.chat_models import Match
from kb_service.search.chat_wording import urgent_in_case
from kb_service.text import tone
from kb_service.text.privacy import mask

log = logging.getLogger("kb.api")
router = APIRouter(tags=["转人工 hand-over"])
FOLLOW_UP_TURNS = 3  # earlier tenant messages read for what a follow-up is about
Token = Annotated[str | None, Header(alias="X-Case-Token", max_length=100)]
TAKEN_MESSAGE = "人工客服已接入，正在为您处理。"
CONTACT_MESSAGE = "租客更新了联系方式。"
CLOSED_MESSAGE = "客服已结束本次会话。如还有问题，欢迎重新提问。"
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 409, 422, 429, 503)}


def case_out(case: Case) -> CaseOut:
    return CaseOut(
        **{k: v for k, v in case.__dict__.items() if k != "session_id" and k != "delivery"},
        delivery=DeliveryOut(**case.delivery.__dict__),
        complaint=tone.complains(case.question),  # as the service figures count it: marked in the queue too
    )


def _messages(found: list[Message]) -> list[MessageOut]:
    return [MessageOut(**m.__dict__) for m in found]


def _webhook_body(body: CaseCreate, match: Match, question: str, state: Ready) -> dict[str, Any] | None:
    if not state.settings.handover_webhook_url:
        return None
    return {
        "event": "case.opened",
        "priority": match.priority,
        "question": question,
        "contact": body.contact.model_dump(),
        "sop_id": match.sop_id,
        "sop_title": match.title,
        "conversation": [t.model_dump() for t in body.conversation],
        # The chat as the tenant's widget sent it: the service keeps no transcript to check its "bot" lines against.
        "conversation_verified": False,
    }


def _before(body: CaseCreate) -> list[str]:
    """The tenant's messages before the question (its last place in the conversation), the latest few."""
    turns = [(t.role, t.text) for t in body.conversation]
    end = max((i for i, t in enumerate(turns) if t == ("tenant", body.question)), default=len(turns))
    return [text for role, text in turns[:end] if role == "tenant" and text != body.question][-FOLLOW_UP_TURNS:]


async def _resent(state: Services, case: Case, body: CaseCreate, match: Match, question: str) -> Case:
    """A form sent again under its `request_id` (no answer came) may say more than the first: the tenant edited the
    question (等等，厨房着火了) or fixed the phone number. The new words become the tenant's message in the case, new
    contact details replace the old, an emergency makes the case urgent; each reaches the webhook as its own event
    (an integrator's re-check: the old case came back unchanged and the new words were dropped)."""
    said = {m.text for m in await run_in_threadpool(state.cases.messages, case.case_id) if m.author == "tenant"}
    edited = question != case.question and body.question not in said
    contact = body.contact.model_dump()
    if not edited and contact == await run_in_threadpool(state.cases.opened_with, case.case_id):
        return case  # a late copy of the first request: a correction sent since must stay (its re-check)
    if case.status == "closed":
        if edited or contact != case.contact:  # its re-check: an emergency dropped with a 201
            raise HTTPException(
                409, "该请求已关闭，请重新提交 / the case this request_id opened is closed: send a new one"
            )
        return case
    if edited:
        await run_in_threadpool(state.cases.add_message, case.case_id, "tenant", body.question)
    if await run_in_threadpool(state.cases.update_contact, case.case_id, contact):
        await run_in_threadpool(state.cases.add_message, case.case_id, "system", CONTACT_MESSAGE)
    if match.priority == "urgent":
        # Filed under the emergency the added words name (its re-check: 「厨房水龙头…等等，厨房着火了」 was raised
        # under the faucet repair), as a tenant's message in the case is
        added = body.question.removeprefix(case.question) if edited else body.question
        danger = state.chat.danger
        if edited and danger is not None and danger.found(added):
            match = (await state.lane.submit(added, partial(emergency, state, added)))[1]
        sop = (match.sop_id, match.title) if match.sop_id else None
        await run_in_threadpool(state.cases.make_urgent, case.case_id, sop, added.strip("，,。 ") if edited else None)
    return await run_in_threadpool(state.cases.get, case.case_id) or case


async def _opened(
    state: Services, body: CaseCreate, match: Match, question: str, turns: Sequence[tuple[str, str]], owner: str
) -> tuple[Case, str]:
    """The new case and its token, or the case this caller's request opened before (409 another caller's); `owner`:
    the public caller's address (or the request's own secret key, which follows a phone onto another network), or
    the staff caller's name (a re-check took over a case a service key had opened)."""
    try:
        return await run_in_threadpool(
            state.cases.open_case,
            session_id=body.session_id,
            question=question,
            contact=body.contact.model_dump(),
            priority=match.priority,
            sop=(match.sop_id, match.title or "") if match.sop_id else None,
            conversation=turns,
            webhook_body=_webhook_body(body, match, question, state),
            request_id=body.request_id,
            opened_by=state.logbook.client_key(owner),  # a repeat gets it back from this address or key only
        )
    except RequestTakenError:
        raise HTTPException(
            409,
            "无法确认这次提交与最初的提交来自同一处，请重新提交 / this request_id was sent before by another caller, "
            "or with a request_key this one does not show: send a new one",
        ) from None


@router.post("/v1/cases", response_model=CaseCreated, status_code=201, responses=ERRORS)
async def open_case(body: CaseCreate, request: Request, role: CallerRole, state: Ready) -> CaseCreated:
    """租客转人工：保存对话、联系方式、匹配的 SOP 与优先级，推送给公司系统（webhook），进入坐席的待接入队列。
    返回 `token`：租客凭它（`X-Case-Token` 头）查看回复、补充消息。填写有误被退回（422）的表单不计入限速。"""
    danger = state.chat.danger
    limit_cases(request, role, state, urgent=danger is not None and bool(danger.found(body.question)))

    earlier = _before(body)

    def run(query_vector: np.ndarray | None) -> tuple[Match, str]:
        qvec = state.kb.searcher.embed_queries([body.question])[0] if query_vector is None else query_vector
        return case_match(state, body.question, qvec, earlier)

    # the SOP and the priority are the server's own judgement
    match, question = await state.lane.submit(body.question, run)
    turns = [(t.role, t.text) for t in body.conversation]
    if ("tenant", body.question) not in turns:
        turns.append(("tenant", body.question))
    asked = time.time()
    client = tenant_client(role, state, request)
    owner = f"key:{body.request_key}" if client and body.request_key else client or f"staff:{request.state.caller.name}"
    case, token = await _opened(state, body, match, question, turns, owner)
    if case.created_at < asked:  # the request sent again (request_id): what the tenant changed since is not lost
        case = await _resent(state, case, body, match, question)
    else:  # a new case (the one sent again was logged when it opened the case)
        state.logbook.log_query(  # the question (masked like every logged question), never the contact details
            source="handover",
            audience="public",
            query=body.question,
            result_ids=[match.sop_id] if match.sop_id else [],
            top_score=None,
            handoff=True,
            client=client,
            session=body.session_id if client else None,
        )
    hours = state.settings.service_window
    open_now = hours is None or hours.open_now()
    # An urgent case, or any case while nobody answers (the tenant is told where to call if it cannot wait).
    phone = state.settings.emergency_phone if match.priority == "urgent" or not open_now else None
    # nobody is ahead of a case a person has (or had): a form sent again after it was taken or closed
    ahead = await run_in_threadpool(state.cases.ahead_of, case) if case.status == "open" else 0
    target = state.settings.case_response_targets.get(case.priority, 0.0)
    return CaseCreated(
        case_id=case.case_id,
        token=token,
        status=case.status,
        priority=case.priority,
        emergency_phone=phone,
        ahead=ahead,
        reply_within_minutes=max(1, round(target / 60)),
        in_service_hours=open_now,
        service_hours=hours.label if hours is not None else None,
    )


@router.get("/v1/cases", response_model=CaseList, responses=ERRORS)
async def list_cases(
    _: StaffRole,
    state: Ready,
    status: Annotated[Literal["open", "taken", "closed", "active"], Query()] = "active",
    q: Annotated[str, Query(max_length=MAX_WORDS, description="编号、电话（或尾号）、房号、姓名或问题里的词")] = "",
) -> CaseList:
    """坐席：待接入（open）与处理中（taken）的转人工请求，紧急的在前；`status=closed` 看已关闭的（最近关闭的在前）；
    `q` 只列出与之相符的（租客再来电时按电话尾号、房号、姓名或编号找回以前的请求）。"""
    statuses = ("open", "taken") if status == "active" else (status,)
    cases = await run_in_threadpool(partial(state.cases.list_cases, statuses, typed=q))
    counts = await run_in_threadpool(state.cases.outbox_counts)
    targets = dict(state.settings.case_response_targets)
    return CaseList(cases=[case_out(c) for c in cases], deliveries=counts, targets_s=targets)


async def staff_case(state: Ready, case_id: str) -> Case:
    case = await run_in_threadpool(state.cases.get, case_id)
    if case is None:
        raise HTTPException(404, f"没有编号为 {mask(case_id)[:40]} 的转人工请求 / unknown case")
    return case


@router.get("/v1/cases/{case_id}", response_model=CaseDetail, responses=ERRORS)
async def get_case(case_id: str, _: StaffRole, state: Ready) -> CaseDetail:
    """坐席：一个转人工请求的全部信息（联系方式、对话、建议的 SOP、推送状态）。"""
    case = await staff_case(state, case_id)
    found = await run_in_threadpool(state.cases.messages, case_id)
    return CaseDetail(**case_out(case).model_dump(), messages=_messages(found))


def taker(caller: Identity, given: str) -> str:
    """Who takes a case: the named account; with a shared service key (KB_API_KEYS) or in trial mode, the name the
    console sends, else the key's label."""
    return caller.name if caller.kind == "account" else (given.strip() or caller.name)


@router.post("/v1/cases/{case_id}/take", response_model=CaseOut, responses=ERRORS)
async def take_case(case_id: str, body: TakeIn, caller: StaffCaller, state: Ready) -> CaseOut:
    """坐席接入一个请求（状态 taken）；已关闭的请求、或已由其他坐席接入的请求（除非 `force` 接管）不能再接入（409）。"""
    given = body.agent.strip()
    if caller.kind != "account" and given and await run_in_threadpool(_names_an_account, state, given):
        # A shared key naming a named account would act as that person (an integrator's trial took a case held by
        # 王芳 "as" 王芳 with the platform's key): that person's own key does
        raise HTTPException(
            403, f"“{given}”是具名账号，请用该账号自己的密钥接入 / {given} is a named account: take it with its own key"
        )
    await hold(state, case_id, caller, given=body.agent, force=body.force, strict=True)
    return case_out(await staff_case(state, case_id))


def _plain_name(name: str) -> str:
    """A name as read: compatibility forms folded, invisible and space characters dropped, case ignored."""
    return "".join(c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c)[0] not in "CZ").casefold()


def _names_an_account(state: Services, given: str) -> bool:
    """Whether a label reads as a named account's name (a re-check: 王\u200b芳, ａｌｉｃｅ passed for 王芳, alice)."""
    plain = _plain_name(given)
    return any(_plain_name(a.name) == plain for a in state.training.accounts.list())


def _held_by(agent: str | None) -> str:
    return f"该请求已由{agent}接入；如需接手请点「仍要接管」 / {agent} has taken this case (take it over with force)"


async def hold(
    state: Services,
    case_id: str,
    caller: Identity,
    *,
    given: str = "",
    force: bool = False,
    strict: bool | None = None,
    announce: bool = True,
) -> None:
    """The caller holds the case (taking, replying, closing): a waiting case becomes theirs and the tenant is told a
    person has it (`announce`), one they hold stays theirs, one somebody else holds is a 409 unless `force` takes it
    over. `strict` None: only named accounts are held to that (a shared service key, KB_API_KEYS, or trial mode names
    nobody in particular, and the names given when taking are labels)."""
    before = await staff_case(state, case_id)
    if not await run_in_threadpool(state.cases.take, case_id, taker(caller, given), force):
        case = await staff_case(state, case_id)
        if case.status == "closed":
            raise HTTPException(409, "该请求已关闭 / the case is closed")
        if strict or (strict is None and caller.kind == "account"):
            raise HTTPException(409, _held_by(case.taken_by))
    if before.status == "open" and announce:  # not again on a re-take
        await run_in_threadpool(state.cases.add_message, case_id, "system", TAKEN_MESSAGE)


def limit_tenant(state: Services, role: Role, request: Request, said: str, english: str, urgent: bool = False) -> None:
    """A tenant's messages and ratings of a case, per client (`KB_CASE_RATE_LIMIT`): 429 with Retry-After. A message
    reporting an emergency counts in a bucket of its own, as new cases do (a re-check trial: 「厨房着火了！！」 from a
    shared address got 发送太频繁 and no safety advice)."""
    client = tenant_client(role, state, request) or "staff-token"
    limit = state.settings.case_rate_limit * (URGENT_CASES_FACTOR if urgent else 1)
    retry = state.limiter.check("case-message-urgent" if urgent else "case-message", client, limit)
    if retry is not None:
        message = f"{said}，请 {retry} 秒后再试 / {english}, retry in {retry} s"
        raise HTTPException(429, message, headers={"Retry-After": str(retry)})


async def reader(case_id: str, role: Role, token: str | None, state: Ready) -> Literal["staff", "tenant"]:
    """Staff (a key) or the tenant who holds the case's token; anybody else gets the same 404 as for no case."""
    if role != "public" and token is None:
        await staff_case(state, case_id)
        return "staff"
    if token is None:
        raise HTTPException(401, "需要 X-Case-Token 或坐席密钥 / send the case's X-Case-Token or a staff key")
    matches: bool = await run_in_threadpool(state.cases.token_matches, case_id, token)
    if not matches:
        raise HTTPException(404, "没有这个转人工请求，或凭证不对 / unknown case or wrong token")
    return "tenant"


@router.get("/v1/cases/{case_id}/messages", response_model=Conversation, responses=ERRORS)
async def read_messages(
    case_id: str,
    role: CallerRole,
    state: Ready,
    x_case_token: Token = None,
    after: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Conversation:
    """对话（`after` 之后的消息）：租客凭 `X-Case-Token`，坐席凭密钥；其他人 404。"""
    await reader(case_id, role, x_case_token, state)
    case = await staff_case(state, case_id)
    found = await run_in_threadpool(state.cases.messages, case_id, after)
    ahead = await run_in_threadpool(state.cases.ahead_of, case) if case.status == "open" else None
    return Conversation(case_id=case_id, status=case.status, messages=_messages(found), ahead=ahead)


@router.post("/v1/cases/{case_id}/messages", response_model=TenantMessageOut, status_code=201, responses=ERRORS)
async def post_message(
    case_id: str, body: MessageIn, request: Request, caller: Caller, state: Ready, x_case_token: Token = None
) -> MessageOut:
    """坐席回复（显示在租客的聊天窗口），或租客凭 `X-Case-Token` 补充消息（按客户端限速）。租客的消息报告紧急情况时
    （危险信号），请求升为紧急，并返回紧急电话与安全提示。"""
    role = caller.rights
    who = await reader(case_id, role, x_case_token, state)
    if who == "staff" and body.text:  # a reply: the agent holds the case (a waiting one is taken by replying)
        await hold(state, case_id, caller)
    if who == "tenant":
        danger = state.chat.danger
        reports_danger = danger is not None and bool(danger.found(body.text))
        limit_tenant(state, role, request, "发送太频繁", "too many messages", urgent=reports_danger)
    if not body.text:
        raise HTTPException(422, "消息不能为空 / empty message")
    message = await run_in_threadpool(
        state.cases.add_message, case_id, "agent" if who == "staff" else "tenant", body.text
    )
    if message is None:
        raise HTTPException(409, "该请求已关闭 / the case is closed")
    danger = state.chat.danger
    if who == "staff" or danger is None or not danger.found(body.text):
        return TenantMessageOut(**message.__dict__)
    # 等等，厨房着火了: the case is queued first from now on, and the tenant sees what to do while waiting.
    urgent, match = await state.lane.submit(body.text, partial(emergency, state, body.text))
    # The agent who takes it reads the emergency's procedure (a trial's bare 转人工 case had none)
    sop = (match.sop_id, match.title) if match.sop_id else None
    if await run_in_threadpool(state.cases.make_urgent, case_id, sop, body.text):
        log.info("case %s raised to urgent by a tenant's message", case_id)
    elif sop is not None:
        await run_in_threadpool(state.cases.set_sop, case_id, *sop)
    # What the tenant was told goes into the case too: the agent who takes it sees the safety instruction given.
    hours = state.settings.service_window
    answer = urgent_in_case(urgent.answer, hours is None or hours.open_now())
    await run_in_threadpool(state.cases.add_message, case_id, "bot", answer)
    phone = state.settings.emergency_phone
    return TenantMessageOut(**message.__dict__, urgent=True, emergency_phone=phone, answer=answer)
