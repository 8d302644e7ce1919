"""Request and response models of the HTTP API (unknown fields are rejected)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from kb_service.settings import Settings

# The request model accepts what any configuration could allow; `check_query_length` applies the configured
# KB_MAX_QUERY_CHARS of the app that serves the request.
QUERY_CHARS_CEILING: int = next(m.le for m in Settings.model_fields["max_query_chars"].metadata if hasattr(m, "le"))
MAX_CHAT_CHARS = 300


def moment(value: Any) -> Any:
    """A report's `since`/`until`: Unix seconds, or an ISO date or time (2026-11-01, 2026-11-01T08:00, with an offset
    or in the server's time zone) as a trainer would type it."""
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.strip()).astimezone().timestamp()
    except ValueError:
        raise ValueError("时间应为 Unix 秒或日期，如 2026-11-01 / Unix seconds or a date, e.g. 2026-11-01") from None


# A report period's end: Unix seconds or a date (`moment`), within 1970–2100.
Moment = Annotated[float, BeforeValidator(moment), Field(ge=0, le=4_102_444_800)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("不能为空 / must not be empty or whitespace")
    return value


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: list[str] = Field(default_factory=list, max_length=20, description="只返回这些分类")
    tags: list[str] = Field(default_factory=list, max_length=20, description="只返回带这些标签之一的 SOP")


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "天花板在滴水", "top_k": 5, "audience": "agent"},
                {"query": "钥匙丢了进不去", "filters": {"category": ["门禁钥匙"]}},
            ]
        },
    )

    query: str = Field(
        min_length=1,
        max_length=QUERY_CHARS_CEILING,
        description="租客说的话或关键词；最长 KB_MAX_QUERY_CHARS 个字符（默认 500），更长返回 422",
    )
    top_k: int = Field(5, ge=1, le=20)
    audience: Literal["agent", "public"] = "agent"
    filters: SearchFilters = Field(default_factory=SearchFilters)
    explain: bool = Field(
        False, description="命中测试：附上各通道排名、融合分数和耗时（仅培训师）；不记入查询日志和缺口报告"
    )
    practice: bool = Field(
        False, description="练习或考试中的检索（练习页发送）：不记入查询日志、缺口报告和在岗检索统计"
    )

    _check_query = field_validator("query")(_not_blank)


def check_query_length(query: str, limit: int) -> None:
    """A query longer than KB_MAX_QUERY_CHARS is rejected like any other invalid field (422 `invalid_request`)."""
    if len(query) > limit:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("body", "query"),
                    "msg": f"查询过长，最多 {limit} 个字符 / at most {limit} characters",
                    "input": query[:40],
                    "ctx": {"max_length": limit},
                }
            ]
        )


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"question": "怎么开发票？", "session_id": "s-123"}]}
    )

    question: str = Field(min_length=1, max_length=MAX_CHAT_CHARS)
    session_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")

    _check_question = field_validator("question")(_not_blank)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"sop_id": "repair-leak-ceiling", "vote": 1, "query_id": 12}]}
    )

    sop_id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")
    vote: Literal[-1, 1]
    query_id: int | None = Field(default=None, ge=1, le=2**53)
    comment: str = Field("", max_length=500)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[str] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody


class QueryLogHealth(BaseModel):
    """The query log of the process that answered: searches go on when it cannot write (rows are then dropped)."""

    status: Literal["ok", "degraded"]
    rows_written: int
    rows_dropped: int
    fallback_ids: int = Field(description="query ids handed out while no reserved block was at hand")
    pending: int
    failing_since: float | None = Field(description="Unix seconds of the first failure of the current run")
    last_error: str | None
    last_error_at: float | None


class RateLimitHealth(BaseModel):
    """The shared per-client limits of the process that answered: they let requests through when their storage fails."""

    status: Literal["ok", "degraded"]
    failures: int = Field(description="checks that let a request through because the limit's storage failed")
    failing_since: float | None
    last_error: str | None


class ReplicaHealth(BaseModel):
    replica: str = Field(description="副本 id（数据目录的 replica-id）的前 8 位")
    host: str = Field(description="主机名:数据目录")
    documents: int
    fingerprint: str = Field(description="所服务 SOP 内容的指纹：内容相同的副本指纹相同")
    seen_s_ago: float = Field(description="多少秒前报告")
    same: bool | None = Field(description="与本副本内容相同；null：报告早于最新发布传到它的时间，暂不比较")


class ReplicasHealth(BaseModel):
    """What the replicas sharing the PostgreSQL database serve (each reports every 15 s): `differs` names a host
    whose SOP folder was changed by hand (a file moved away or edited there and re-ingested)."""

    status: Literal["same", "differs"]
    documents: int = Field(description="本副本服务的 SOP 数")
    fingerprint: str = Field(description="本副本所服务 SOP 内容的指纹")
    others: list[ReplicaHealth]


class DatabaseHealth(BaseModel):
    """The service database as the process that answered last read it (at most every few seconds)."""

    status: Literal["ok", "unavailable"]
    checked_at: float = Field(description="Unix seconds of the read")
    error: str | None = None
    webhook: dict[str, int] | None = Field(
        None, description="hand-over webhook events by status (pending, delivered, failed) when a webhook is set"
    )
    replicas: ReplicasHealth | None = Field(None, description="多副本（PostgreSQL）时：各副本所服务的内容是否一致")


class Health(BaseModel):
    status: Literal["ok", "loading", "error"]
    documents: int | None = Field(description="文档数（仅员工密钥可见）/ documents (staff keys only)")
    chunks: int | None = Field(description="索引块数（仅员工密钥可见）/ chunks (staff keys only)")
    embedder: str
    generation: str | None = Field(description="在用的索引版本（仅员工密钥可见）/ generation in use (staff only)")
    auth: bool
    query_log: QueryLogHealth | None = None
    rate_limits: RateLimitHealth | None = None
    database: DatabaseHealth | None = None
    reason: str | None = Field(None, description="不可用（或未用最新版本）的原因 / why not ready (or not the latest)")
