"""Live-call assist: `WS /v1/assist` (call platforms and the console), its HTTP form, and the console's tickets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from anyio import CancelScope, to_thread
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from api.deps import AppState, Ready, Role, Services, StaffCaller, StaffRole, resolve_caller
from api.errors import describe
from api.routes.assist_messages import (
    CallMessage,
    LiveCall,
    SegmentIn,
    SegmentMessage,
    SuggestionsOut,
    Ticket,
    clipped_text,
)
from api.schemas import ErrorResponse
from kb_service.assist.context import CALL_ID, CallContext
from kb_service.assist.follower import Suggestions
from kb_service.assist.tickets import TICKET_SECONDS, issue, verify
from kb_service.db.engine import DB_ERRORS
from kb_service.errors import KbError, first_line

log = logging.getLogger("kb.assist")
router = APIRouter(tags=["通话辅助 assist"])
POLICY_VIOLATION = 1008  # WebSocket close code: no valid credential
TRY_AGAIN_LATER = 1013  # the model and the index are still loading
MAX_CALLS_PER_CONNECTION = 64
RECHECK_SECONDS = 5.0  # a connection checks its key or ticket again this often (a disabled account stops the socket)
WATCH_INTERVAL = 0.2  # seconds between two looks at a watched call (a version number read from the shared store)


@router.post("/v1/assist/ticket", response_model=Ticket, responses={s: {"model": ErrorResponse} for s in (401, 503)})
def ticket(caller: StaffCaller, state: Ready) -> Ticket:
    """A ticket for the console's WebSocket (`/v1/assist?ticket=…`), valid 60 s, for browsers that cannot send an
    Authorization header on a WebSocket. It names its holder: disabling the account stops sockets opened with it."""
    return Ticket(ticket=issue(state.assist.calls.secret, caller.rights, caller.name), expires_in=TICKET_SECONDS)


LIVE_SECONDS = 300.0  # a call listed as live: a segment within the last five minutes


@router.get(
    "/v1/calls/live", response_model=list[LiveCall], responses={s: {"model": ErrorResponse} for s in (401, 403)}
)
async def live_calls(_: StaffRole, state: Ready) -> list[LiveCall]:
    """正在进行的通话（最近 5 分钟内有转写的），最新的在前：坐席在控制台里选一通跟随，不必手输通话编号。"""
    calls = await to_thread.run_sync(state.assist.calls.live, LIVE_SECONDS)
    return [LiveCall(**c) for c in calls]


@router.post(
    "/v1/assist/{call_id}/segments",
    response_model=SuggestionsOut,
    responses={s: {"model": ErrorResponse} for s in (401, 409, 422, 503)},
)
async def post_segment(call_id: str, body: SegmentIn, role: StaffRole, state: Ready) -> SuggestionsOut:
    """The HTTP form of a `segment` message: always answers with the current suggestions (`changed` says whether
    the first one changed). The call lives in the shared store, so any worker process may take any segment."""
    check_call_id(call_id)
    text = clipped_text(body.text, state.settings.max_query_chars)
    answer = await state.lane.submit(
        None, lambda _: state.assist.segment(call_id, body.speaker, text, body.final, body.segment_id)
    )
    return SuggestionsOut(**answer.message(), changed=answer.changed, clipped=text != body.text)


@router.post(
    "/v1/assist/{call_id}/end", status_code=204, responses={s: {"model": ErrorResponse} for s in (401, 422, 503)}
)
def end_call(call_id: str, role: StaffRole, state: Ready) -> None:
    """The HTTP form of an `end` message: the call's context is forgotten."""
    check_call_id(call_id)
    state.assist.end(call_id)


def check_call_id(call_id: str) -> None:
    if not re.fullmatch(CALL_ID, call_id):
        raise HTTPException(422, "call_id 只能含字母、数字和 ._:-，最长 100 / call_id: letters, digits, ._:- only")


async def _socket_role(websocket: WebSocket, state: AppState, open_: bool = False) -> tuple[Role, str] | None:
    """The role of the upgrade's Authorization header, else of its `ticket` query parameter, and who holds it; None:
    refuse. `open_`: the connection is open already: its ticket opened it in time and only its holder's account is
    checked again (a ticket expires after a minute; the console's socket stays)."""
    header = websocket.headers.get("authorization", "")
    ticket_ = websocket.query_params.get("ticket", "")
    if ticket_ and not header:
        if state.services is None:
            return None
        holder = verify(state.services.assist.calls.secret, ticket_, now=0.0 if open_ else None)
        if holder is None or not await to_thread.run_sync(state.accounts.holds, holder.who):
            return None
        # One ticket opens one socket: it travels in a URL (proxy logs, history), and a security review opened two
        # with one. Spent in the limiter every worker and replica shares (it fails open, as limits do).
        if not open_ and await to_thread.run_sync(state.limiter.check, "assist-ticket", holder.nonce, 1) is not None:
            return None
        return holder.role, holder.who  # type: ignore[return-value]
    try:
        caller = await resolve_caller(state, header)
    except HTTPException as exc:
        if open_ and exc.status_code >= 500:
            raise  # accounts cannot be read just now: no answer either way (see _still_allowed)
        return None
    if caller.role == "public":
        return None
    return caller.rights, caller.name


async def _still_allowed(websocket: WebSocket, state: AppState) -> bool:
    """An open connection's credential, checked again: False once its key or its ticket holder's account is refused.
    While the accounts cannot be read (the service database restarting) it stays open: what was allowed stays
    allowed, as for requests (kb_service/accounts/directory.py), rather than every socket closing as refused."""
    try:
        return await _socket_role(websocket, state, open_=True) is not None
    except HTTPException:
        return True


@router.websocket("/v1/assist")
async def assist_socket(websocket: WebSocket) -> None:
    """Segments in, suggestions out; several calls may share the connection (each message names its call). A console
    may also `watch` a call another connection or the HTTP form feeds (see docs/assist.md)."""
    state: AppState = websocket.app.state.kb_state
    if (held_by := await _socket_role(websocket, state)) is None:
        await websocket.close(code=POLICY_VIOLATION, reason="需要坐席密钥或票据 / an agent key or ticket is required")
        return
    services = state.services
    if services is None:
        await websocket.close(code=TRY_AGAIN_LATER, reason="service is loading")
        return
    sockets = services.assist.sockets
    allowed, lease = await to_thread.run_sync(sockets.open, held_by[1]) if sockets else (True, None)
    if not allowed:  # a security review: one agent key opened connections without limit
        reason = "该账号的通话辅助连接数已达上限 / too many assist connections for this account"
        await websocket.close(code=POLICY_VIOLATION, reason=reason)
        return
    try:
        await _serve(websocket, state, services, lease)
    finally:
        if sockets is not None:
            with CancelScope(shield=True):  # a cancelled handler (server shutdown, client gone) still frees its place
                await to_thread.run_sync(sockets.close, lease)


async def _serve(websocket: WebSocket, state: AppState, services: Services, lease: str | None) -> None:
    await websocket.accept()
    conn = _Connection(websocket, services)
    checked = time.monotonic()
    inbox = _Inbox()
    reader = asyncio.create_task(inbox.fill(websocket))
    sockets = services.assist.sockets
    renew = partial(sockets.renew, lease) if sockets is not None and lease is not None else None
    guard = asyncio.create_task(_guard(websocket, state, inbox, renew))
    try:
        while True:
            item = await inbox.get()
            if item.revoked:
                await websocket.close(code=POLICY_VIOLATION, reason="密钥已失效 / the key is no longer valid")
                return
            if item.raw is None:
                return  # the connection closed
            if item.partial_of is not None and inbox.holds_segment_of(item.partial_of):
                conn.skipped(item.partial_of)  # still counted: `segment` numbers every segment the call received
                continue  # a partial already overtaken by a newer segment of its call: answering it only adds delay
            if time.monotonic() - checked > RECHECK_SECONDS:  # a message from a holder disabled since the upgrade
                if not await _still_allowed(websocket, state):
                    await websocket.close(code=POLICY_VIOLATION, reason="密钥已失效 / the key is no longer valid")
                    return
                checked = time.monotonic()
            reply = await conn.handle(item.raw)
            if reply is not None:
                await conn.send(reply)
            await conn.publish()  # after the answer, before the next message: the calls' order is kept
    except WebSocketDisconnect:
        return
    finally:
        reader.cancel()
        guard.cancel()
        for task in conn.watches.values():
            task.cancel()


async def _guard(websocket: WebSocket, state: AppState, inbox: _Inbox, renew: Callable[[], None] | None) -> None:
    """Checks the key or ticket every RECHECK_SECONDS, whether or not the connection sends anything: a console that
    only watches calls is closed too once its account is disabled (an integrator's idle socket kept receiving). Renews
    the connection's lease in the per-account count at the same pace."""
    while True:
        await asyncio.sleep(max(RECHECK_SECONDS, 0.05))
        if not await _still_allowed(websocket, state):
            inbox.revoke()
            return
        if renew is not None:
            await to_thread.run_sync(renew)


@dataclass(frozen=True)
class _Inbound:
    raw: str | None  # None: the connection closed
    segment_of: str | None = None  # the call a segment message is for
    partial_of: str | None = None  # the same, for a partial segment
    revoked: bool = False  # the credential no longer holds: close the connection


def _inbound(raw: str) -> _Inbound:
    try:
        data = json.loads(raw)
    except ValueError:
        return _Inbound(raw)
    if not isinstance(data, dict) or data.get("type") != "segment" or not isinstance(data.get("call_id"), str):
        return _Inbound(raw)
    call = data["call_id"]
    return _Inbound(raw, call, call if data.get("final") is False else None)


class _Inbox:
    """Messages read ahead of the searches. When several calls share a connection and the searches fall behind (32
    calls, a partial every 200 ms), a partial whose call has a newer segment waiting is skipped, so finals do not
    queue behind stale partials. Bounded: the reader waits when `limit` messages are unanswered."""

    def __init__(self, limit: int = 256) -> None:
        self.items: deque[_Inbound] = deque()
        self.limit = limit
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    async def fill(self, websocket: WebSocket) -> None:
        try:
            while True:
                raw = await _receive(websocket)
                while len(self.items) >= self.limit:
                    self._space.clear()
                    await self._space.wait()
                self.items.append(_inbound(raw))
                self._ready.set()
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.items.append(_Inbound(None))
            self._ready.set()

    async def get(self) -> _Inbound:
        while not self.items:
            self._ready.clear()
            await self._ready.wait()
        self._space.set()
        return self.items.popleft()

    def revoke(self) -> None:
        """Put the credential's end before anything still waiting."""
        self.items.appendleft(_Inbound(None, revoked=True))
        self._ready.set()

    def holds_segment_of(self, call_id: str) -> bool:
        return any(i.segment_of == call_id for i in self.items)


async def _receive(websocket: WebSocket) -> str:
    """The next message's text; a binary frame is read as UTF-8 (some platforms send JSON that way)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("text") is not None:
        return str(message["text"])
    return bytes(message.get("bytes") or b"").decode("utf-8", errors="replace")


def _error(message: str, call_id: object = None) -> dict[str, Any]:
    return {"type": "error", "call_id": call_id if isinstance(call_id, str) else None, "message": message}


class _Connection:
    """One WebSocket connection: the calls it feeds (in this process's memory) and the calls it watches."""

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.websocket = websocket
        self.services = services
        self.calls: dict[str, CallContext] = {}
        self.watches: dict[str, asyncio.Task[None]] = {}
        self._sending = asyncio.Lock()
        self._unpublished: tuple[CallContext, Suggestions | None] | None = None
        self.last: dict[str, dict[str, Any]] = {}  # each call's latest suggestions: a platform's retry gets them

    async def publish(self) -> None:
        """Write the call the last segment changed to the shared store (for watching consoles), off the search
        thread: a database write per segment on it delayed every other call's suggestions."""
        if self._unpublished is not None:
            ctx, answer = self._unpublished
            self._unpublished = None
            try:
                await to_thread.run_sync(self.services.assist.publish, ctx, answer)
            except DB_ERRORS as exc:  # watching consoles miss this update; the call and its suggestions go on
                log.warning("call %s not published to watchers: %s", ctx.call_id, first_line(exc))

    async def send(self, message: dict[str, Any]) -> None:
        async with self._sending:
            await self.websocket.send_json(message)

    async def handle(self, raw: str) -> dict[str, Any] | None:
        """One message in; the reply (suggestions or an error) or None. Bad input gets an error and loses nothing."""
        try:
            data = json.loads(raw)
        except ValueError:
            return _error("消息必须是 JSON / a message must be JSON")
        kind = data.get("type") if isinstance(data, dict) else None
        call_id = data.get("call_id") if isinstance(data, dict) else None
        try:
            if kind in ("end", "watch", "unwatch"):
                return await self._control(kind, CallMessage.model_validate(data).call_id)
            if kind != "segment":
                return _error(
                    "type 应为 segment、end、watch 或 unwatch / type must be segment, end, watch or unwatch", call_id
                )
            msg = SegmentMessage.model_validate(data)
        except ValidationError as exc:
            return _error(f"消息格式错误 / invalid message: {describe(dict(exc.errors()[0]))}", call_id)
        except KbError as exc:
            return _error(str(exc), call_id)
        return await self._segment(msg)

    def skipped(self, call_id: str) -> None:
        """A partial of a call this connection holds was skipped unsearched: the call still received it."""
        held = self.calls.get(call_id)
        if held is not None:
            held.segments += 1

    async def _segment(self, msg: SegmentMessage) -> dict[str, Any] | None:
        held = self.calls.get(msg.call_id)
        if held is None:
            if len(self.calls) >= MAX_CALLS_PER_CONNECTION:
                return _error(
                    f"一个连接最多同时 {MAX_CALLS_PER_CONNECTION} 通电话，请先结束 / at most "
                    f"{MAX_CALLS_PER_CONNECTION} open calls per connection: end one first",
                    msg.call_id,
                )
            # A call this connection does not hold yet: a new one, or one a dropped connection (or the HTTP form) fed
            # before. The shared store has what the call said so far, so a reconnecting platform loses nothing.
            held = self.calls[msg.call_id] = await self._load(msg.call_id)
        ctx: CallContext = held
        text = clipped_text(msg.text, self.services.settings.max_query_chars)
        retry = msg.final and msg.segment_id is not None and msg.segment_id in ctx.segment_ids
        assist = self.services.assist
        if retry:  # answered as the HTTP form answers it, on a new connection too (a re-check: a reconnect got none)
            last = self.last.get(msg.call_id)
            if last is None:
                last = (await to_thread.run_sync(assist.latest, msg.call_id, ctx)).message()
            return {**last, "changed": False, "clipped": text != msg.text, "repeated": True}
        try:
            answer = await self.services.lane.submit(
                None, lambda _: assist.owned_segment(ctx, msg.speaker, text, msg.final, msg.segment_id)
            )
        except KbError as exc:  # e.g. no usable index just now: the call and the connection stay
            return _error(str(exc), msg.call_id)
        self._unpublished = (ctx, answer)
        if answer is None:
            return None
        self.last[msg.call_id] = answer.message()
        return {**answer.message(), "changed": answer.changed, "clipped": text != msg.text}

    async def _load(self, call_id: str) -> CallContext:
        try:
            ctx, _ = await to_thread.run_sync(self.services.assist.calls.load, call_id)
            return ctx
        except DB_ERRORS as exc:  # the store cannot be read just now: the call starts from this segment
            log.warning("call %s not loaded from the shared store: %s", call_id, first_line(exc))
            return CallContext(call_id)

    async def _control(self, kind: str, call_id: str) -> dict[str, Any] | None:
        if kind == "end":
            # Also a call this connection does not hold (a platform that reconnected and only ends it): the shared
            # store forgets it. Acknowledged, so the platform knows the call is over before it closes the socket.
            self.calls.pop(call_id, None)
            self.last.pop(call_id, None)
            try:
                await to_thread.run_sync(self.services.assist.end, call_id)
            except DB_ERRORS as exc:
                log.warning("call %s not ended in the shared store: %s", call_id, first_line(exc))
                return _error("通话暂时无法结束，请重发 end / the call could not be ended now: send end again", call_id)
            return {"type": "ended", "call_id": call_id}
        task = self.watches.pop(call_id, None)
        if task is not None:
            task.cancel()
        if kind == "watch":
            self.watches[call_id] = asyncio.create_task(self._watching(call_id))
        return {"type": "watching" if kind == "watch" else "unwatched", "call_id": call_id}

    async def _watching(self, call_id: str) -> None:
        try:
            await self._watch(call_id)
        except (WebSocketDisconnect, RuntimeError, OSError):  # the connection closed: its main loop ends too
            return

    async def _watch(self, call_id: str) -> None:
        """Send the call's transcript and latest suggestions whenever it changes, `ended` when it ends."""
        store = self.services.assist.calls
        seen: int | None = None
        while True:
            version = store.version(call_id)
            if version is None and seen is not None:
                await self.send({"type": "ended", "call_id": call_id})
                seen = None
            elif version is not None and version != seen and (found := store.watch(call_id)) is not None:
                seen, ctx, suggestions = found
                await self.send(
                    {
                        "type": "transcript",
                        "call_id": call_id,
                        "segments": ctx.transcript(),
                        "started_ts": ctx.started,
                        "topic_started_ts": ctx.topic_started(),
                    }
                )
                # A call this connection feeds itself got its suggestions as each segment's answer: not twice.
                if suggestions is not None and call_id not in self.calls:
                    await self.send({**suggestions, "changed": True})
            await asyncio.sleep(WATCH_INTERVAL)
