"""What a search returns: one result per SOP with its matched sections, and why it ranked (explain)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kb_service.models import Audience


class MatchedSection(BaseModel):
    heading: str
    heading_path: list[str]
    kind: str
    text: str
    line_start: int
    line_end: int
    audience: Audience
    score: float


class ChannelScore(BaseModel):
    rank: int | None = Field(default=None, description="1-based rank of the SOP's best chunk in this channel alone")
    score: float | None = None


class LearnedExplain(BaseModel):
    """The learned phrasing that lifted a result (agent searches)."""

    learned_id: int
    phrasing: str
    similarity: float = Field(description="Combined similarity: cosine of the embeddings and character overlap")
    cosine: float
    overlap: float
    confirmations: int
    exact: bool = Field(description="The same phrasing after normalisation")
    boost: float
    decided_top: bool = Field(description="Without learned phrasings another SOP would be first")


class HitExplain(BaseModel):
    channels: dict[str, ChannelScore]
    fused_score: float = Field(
        description="融合分数。排序模型重排前十名后，分数按名次交还（第一名拿原来最高的分），所以它属于这个名次，不属于某一路通道"
    )
    evidence_rank: int | None = Field(
        default=None,
        description="排序模型挪动了这份 SOP 时，它按融合证据原本的名次（从 1 数起）；null 表示排序模型没有挪动它",
    )
    learned: LearnedExplain | None = None


class SopHit(BaseModel):
    sop_id: str
    title: str
    category: str
    audience: Audience
    version: int
    score: float
    path: str
    tags: list[str]
    sections: list[MatchedSection]
    steps: list[str]
    scripts: list[str]
    script_lines: list[str] = Field(
        default_factory=list,
        description="The script sections line by line with their labels (e.g. 安抚投诉人：) in order; `scripts` holds "
        "the lines to say",
    )
    time_limits: list[str]
    escalation: list[str]
    staff_only_sections: list[str]
    urgent: bool = Field(
        default=False,
        description="An emergency procedure: `priority: urgent`, or an urgent category (KB_URGENT_CATEGORIES)",
    )
    confidence: float | None = Field(default=None, description="Best sentence-level cosine similarity of this SOP")
    best_section: MatchedSection | None = Field(
        default=None, description="The passage most similar to the query (set with the confidence)"
    )
    match_confidence: float | None = Field(
        default=None,
        description="Calibrated confidence (0-1) that this SOP is what the query needs (search/confidence.py)",
    )
    explain: HitExplain | None = None


class Expansion(BaseModel):
    found: str
    synonyms: list[str]


class SearchResponse(BaseModel):
    query: str
    results: list[SopHit]
    took_ms: float
    generation: str | None = None
    expansions: list[Expansion] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    confidence: float | None = Field(default=None, description="The first result's calibrated confidence")
    weak: bool | None = Field(default=None, description="The confidence is below the measured threshold: a weak match")
    emergency: bool = Field(
        default=False,
        description="An emergency procedure is first for words with a danger signal: never a weak match, whatever the "
        "confidence",
    )
    learned_first: bool = Field(
        default=False,
        description="The first result is there for a phrasing agents confirmed (the same or near-identical words): "
        "never a weak match",
    )
