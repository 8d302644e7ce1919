"""The assist service a server process holds: the follower, and the calls of the HTTP form in the shared store."""

from __future__ import annotations

from dataclasses import dataclass

from kb_service.assist.context import CallContext, Speaker
from kb_service.assist.follower import Follower, Suggestions
from kb_service.assist.store import CallStore
from kb_service.errors import VersionConflictError

SAVE_ATTEMPTS = 5  # another process stored the same call meanwhile: load its segments and rank again


@dataclass
class Assist:
    follower: Follower
    calls: CallStore

    def segment(self, call_id: str, speaker: Speaker, text: str, final: bool) -> Suggestions:
        """One segment of a call of the HTTP form (any process may have taken the call's earlier segments)."""
        for _ in range(SAVE_ATTEMPTS):
            ctx, version = self.calls.load(call_id)
            answer = self.follower.step(ctx, speaker, text, final, quiet=False)
            if answer is not None and self.calls.save(ctx, version, answer.message()):
                return answer
        raise VersionConflictError("通话正被同时更新，请重试 / the call is being updated concurrently, retry")

    def owned_segment(self, ctx: CallContext, speaker: Speaker, text: str, final: bool) -> Suggestions | None:
        """One segment of a call a WebSocket connection owns (its context in that process's memory); the call is
        also published to the shared store for consoles that watch it."""
        answer = self.follower.step(ctx, speaker, text, final)
        self.calls.publish(ctx, answer.message() if answer is not None else None)
        return answer

    def end(self, call_id: str) -> bool:
        return self.calls.end(call_id)

    def close(self) -> None:
        self.calls.close()
