"""The assist service a server process holds: the follower, and the calls of the HTTP form in the shared store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kb_service.assist.context import CallContext, Speaker
from kb_service.assist.follower import Follower, Suggestions
from kb_service.assist.sockets import SocketLeases
from kb_service.assist.store import CallStore
from kb_service.db.query_log import QueryLog
from kb_service.errors import VersionConflictError

SAVE_ATTEMPTS = 25  # another process stored the same call meanwhile: load its segments and rank again
LOG_SOURCE = "assist"  # the query log's `source` of a suggestion made during a call


@dataclass
class Assist:
    follower: Follower
    calls: CallStore
    # The query log: each final segment's suggestions are logged (source "assist") so that the reports know which
    # SOPs agents were shown on calls. Queued in memory (no database write on the call's path); partials never are.
    log: QueryLog
    sockets: SocketLeases | None = None  # WebSocket connections per account, counted across processes

    def segment(
        self, call_id: str, speaker: Speaker, text: str, final: bool, segment_id: str | None = None
    ) -> Suggestions:
        """One segment of a call of the HTTP form (any process may have taken the call's earlier segments). A
        segment whose `segment_id` the call has taken already (a retry) is not added again: the call's latest
        suggestions answer it."""
        for _ in range(SAVE_ATTEMPTS):
            ctx, version = self.calls.load(call_id)
            if ctx.repeated(segment_id, final):
                return self.latest(call_id, ctx)
            answer = self.follower.step(ctx, speaker, text, final, quiet=False)
            logged = answer is not None and self._to_log(ctx, answer, final)  # marked in the call before it is saved
            if answer is not None and self.calls.save(ctx, version, answer.message()):
                if logged:
                    self._log(ctx, answer)
                return answer
        raise VersionConflictError("通话正被同时更新，请重试 / the call is being updated concurrently, retry")

    def owned_segment(
        self, ctx: CallContext, speaker: Speaker, text: str, final: bool, segment_id: str | None = None
    ) -> Suggestions | None:
        """One segment of a call a WebSocket connection owns (its context in that process's memory). The caller
        then `publish`es the call for consoles that watch it, after answering: the database write is not on the
        search thread's path. A segment whose `segment_id` was taken already is ignored (None)."""
        if ctx.repeated(segment_id, final):
            return None
        answer = self.follower.step(ctx, speaker, text, final)
        if answer is not None and self._to_log(ctx, answer, final):
            self._log(ctx, answer)
        return answer

    def latest(self, call_id: str, ctx: CallContext) -> Suggestions:
        """The call's latest suggestions as stored (nothing changed by a repeated segment)."""
        found = self.calls.watch(call_id)
        message = found[2] if found is not None and found[2] is not None else {}
        return Suggestions(
            call_id,
            ctx.segments,
            message.get("items", []),
            False,
            False,
            bool(message.get("weak", True)),
            0.0,
            repeated=True,
        )

    def publish(self, ctx: CallContext, answer: Suggestions | None) -> None:
        """Store an owned call's context (and its latest answer) in the shared store."""
        self.calls.publish(ctx, answer.message() if answer is not None else None)

    @staticmethod
    def _to_log(ctx: CallContext, answer: Suggestions, final: bool) -> bool:
        """Whether a final segment's suggestions go to the query log: once for each wording of the tenant's words (an
        agent's reply, an empty or filler-only segment, leave them as they were: not logged again). Marks the call."""
        if not final or not answer.items:
            return False
        digest = hashlib.blake2b(ctx.tenant_context().encode(), digest_size=8).hexdigest()
        if digest == ctx.logged:
            return False
        ctx.logged = digest
        return True

    def _log(self, ctx: CallContext, answer: Suggestions) -> None:
        """The suggestions, with the tenant's words they were ranked for (masked when written)."""
        first = answer.items[0]
        self.log.log_query(
            source=LOG_SOURCE,
            audience="agent",
            query=ctx.tenant_context(),
            result_ids=[i["sop_id"] for i in answer.items],
            top_score=first.get("search_score"),
            confidence=first.get("match_confidence"),
            took_ms=answer.took_ms,
        )

    def end(self, call_id: str) -> bool:
        return self.calls.end(call_id)

    def close(self) -> None:
        self.calls.close()
