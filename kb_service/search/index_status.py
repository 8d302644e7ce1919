"""What a searcher says about its index: whether searches can run now, and why not."""

from __future__ import annotations

from dataclasses import dataclass

from kb_service.errors import REPAIR


@dataclass(frozen=True)
class IndexStatus:
    """Whether searches can run now (`generation` is the one they use), and why not, or why it is not the latest
    published one (`reason`)."""

    generation: str | None
    reason: str | None = None
    chunks: int = 0

    @property
    def ready(self) -> bool:
        return self.generation is not None


NO_INDEX = "没有可用的已发布索引，请运行 kb ingest / no published index generation is available: run kb ingest"
DAMAGED = f"已发布的索引已损坏 / the published index is damaged. {REPAIR}"
