"""Reading SOPs, and trainers' publishing with versions (PUT/DELETE, history, diff, rollback, preview)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CallerRole, Ready, TrainerCaller, TrainerRole
from api.routes.changes import minor_with_numbers, record_change
from api.schemas import ErrorResponse
from ingest.delete_check import DeleteCheck, check_delete
from ingest.draft_hits import DraftHits, DraftInvalidError, draft_hits
from ingest.preview import Preview, preview_bytes
from ingest.publishing import PublishResult
from kb_service.db.versions import VersionRecord
from kb_service.models import Sop
from kb_service.search.catalog import every_sop

router = APIRouter(tags=["文档 SOPs"])
MAX_VERSION = 1_000_000
SopId = Annotated[str, Path(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80, description="SOP id")]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (401, 403, 404, 409, 413, 415, 422, 503)
}
MARKDOWN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/markdown": {"schema": {"type": "string"}, "example": "---\nid: demo\n...\n---\n# 标题\n"}},
    }
}


class SopSummary(BaseModel):
    sop_id: str
    title: str
    category: str
    audience: str
    version: int
    path: str
    tags: list[str]
    review_by: str | None
    updated: str | None
    example: str | None = Field(default=None, description="第一条示例查询（控制台的示例按钮用；租客看不到）")


class VersionOut(BaseModel):
    version: int
    ts: float
    action: str
    author: str
    path: str
    restored: int | None = Field(default=None, description="回滚：这一版恢复的是哪一版的内容")


class VersionContent(VersionOut):
    content: str


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to_version": 2, "base_version": 4}]})

    to_version: int = Field(ge=1, le=MAX_VERSION)
    base_version: int = Field(ge=0, le=MAX_VERSION)


def _summary(sop: Sop) -> SopSummary:
    m = sop.meta  # a tenant's listing gets sop.public_view(): no path, owner, review date or examples
    return SopSummary(
        sop_id=m.id,
        title=sop.title,
        category=m.category,
        audience=m.audience,
        version=m.version,
        path=sop.path,
        tags=m.tags,
        review_by=m.review_by.isoformat() if m.review_by else None,
        updated=m.updated.isoformat() if m.updated else None,
        example=m.examples[0] if m.examples else None,
    )


@router.get("/v1/sops", response_model=list[SopSummary], responses=ERRORS)
def list_sops(role: CallerRole, state: Ready) -> list[SopSummary]:
    """All SOPs the caller may see (tenants: public documents only)."""
    sops = state.kb.searcher.catalog.every()
    return sorted(
        (
            _summary(s if role != "public" else s.public_view())
            for s in sops
            if role != "public" or s.meta.audience == "public"
        ),
        key=lambda s: (s.category, s.sop_id),
    )


@router.get("/v1/sops/{sop_id}", response_model=Sop, responses=ERRORS)
def get_sop(sop_id: SopId, role: CallerRole, state: Ready) -> Sop:
    """The whole structured SOP; tenants get public documents without `[内部]` sections."""
    sop = state.kb.searcher.get_sop(sop_id, "public" if role == "public" else "agent")
    if sop is None and (unreadable := state.kb.unreadable()) is not None:
        raise unreadable  # the published index cannot be read: 503, not "unknown SOP" (an operator's trial)
    if sop is None:
        raise HTTPException(404, f"没有 id 为 {sop_id} 的 SOP / unknown SOP '{sop_id}'")
    if role == "public":  # the file's hash covers its staff-only text: a tenant could tell when it changed
        return sop.model_copy(update={"content_hash": _view_hash(sop)})
    return sop


def _view_hash(view: Sop) -> str:
    """A hash of what the view holds (a security review: the tenant's view carried the file's hash, which changed
    with staff-only text alone, and with which a guess at that text could be checked offline)."""
    meta = view.meta.model_dump(mode="json", exclude={"version", "updated"})  # a publish of staff text bumps them
    held = json.dumps([meta, [s.model_dump(mode="json") for s in view.sections]])
    return hashlib.sha256(held.encode()).hexdigest()


async def _markdown(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("text/markdown", "text/plain", "text/x-markdown", "application/octet-stream", ""):
        raise HTTPException(
            415, "请以 Markdown 文本提交（Content-Type: text/markdown）/ send the file as text/markdown"
        )
    raw = await request.body()
    if not raw.strip():
        raise HTTPException(422, "文档内容为空 / empty document")
    return raw


@router.put("/v1/sops/{sop_id}", response_model=PublishResult, responses=ERRORS, openapi_extra=MARKDOWN_BODY)
async def put_sop(
    sop_id: SopId,
    request: Request,
    caller: TrainerCaller,
    state: Ready,
    base_version: Annotated[
        int | None, Query(ge=0, le=MAX_VERSION, description="您修改时基于的版本；更新已有文档时必填")
    ] = None,
    force: Annotated[bool, Query(description="示例查询回归失败时仍然发布")] = False,
    minor: Annotated[bool, Query(description="小改动（如错别字）：不要求坐席确认变更")] = False,
) -> PublishResult:
    """发布（新建或更新）一份 SOP：先校验，写入 SOP 文件夹，版本号加一，立即重新索引这一份文档。改动了步骤、
    话术、时限或升级处理且未标为小改动时，坐席会收到变更确认卡片。"""
    raw = await _markdown(request)
    before = state.kb.searcher.catalog.get(sop_id)
    res = await run_in_threadpool(
        state.publisher.put, sop_id, raw, base_version=base_version, author=caller.name, force=force
    )
    if res.action == "unchanged":  # the same text as the live version: nothing was published
        return res
    if minor and (numbers := await run_in_threadpool(minor_with_numbers, state, before, sop_id, res.version)):
        res.warnings.append(numbers)
        minor = False
    if not minor:
        await run_in_threadpool(record_change, state, before, sop_id, res.version, caller.name)
    res.minor = minor
    return res


@router.delete("/v1/sops/{sop_id}", response_model=PublishResult, responses=ERRORS)
async def delete_sop(
    sop_id: SopId,
    caller: TrainerCaller,
    state: Ready,
    base_version: Annotated[int | None, Query(ge=0, le=MAX_VERSION)] = None,
) -> PublishResult:
    """删除一份 SOP（历史版本保留，可回滚恢复）。"""
    res = await run_in_threadpool(state.publisher.delete, sop_id, base_version=base_version, author=caller.name)
    return res


@router.get("/v1/sops/{sop_id}/delete-check", response_model=DeleteCheck, responses=ERRORS)
async def delete_check(sop_id: SopId, _: TrainerRole, state: Ready) -> DeleteCheck:
    """删除前检查：删掉这份 SOP 会带走什么（最近 30 天它排第一的坐席检索和回答的租客问题、学到的问法、提到它的文档、
    分类的考试和任务），工作台在确认删除前显示。"""
    learned = state.learning.store if state.learning is not None else None
    try:
        return await run_in_threadpool(check_delete, state.kb.searcher.catalog, state.logbook, learned, sop_id)
    except KeyError:
        raise HTTPException(404, f"没有已发布的 SOP“{sop_id}” / no such SOP") from None


class SourceOut(BaseModel):
    sop_id: str
    version: int
    path: str
    content: str


@router.get("/v1/sops/{sop_id}/source", response_model=SourceOut, responses=ERRORS)
def source(sop_id: SopId, _: TrainerRole, state: Ready) -> SourceOut:
    """当前发布版本的 Markdown 原文（培训师编辑用）。"""
    content, version = state.publisher.source(sop_id)
    return SourceOut(
        sop_id=sop_id, version=version, path=state.kb.searcher.catalog.path_of(sop_id) or "", content=content
    )


@router.get("/v1/sops/{sop_id}/history", response_model=list[VersionOut], responses=ERRORS)
def history(sop_id: SopId, _: TrainerRole, state: Ready) -> list[VersionOut]:
    """Every published version, oldest first; a rollback names the version whose content it restored."""
    records = state.publisher.history(sop_id)
    return [
        VersionOut(
            version=r.version,
            ts=r.ts,
            action=r.action,
            author=r.author,
            path=r.path,
            restored=_restored(r, records[:i]) if r.action == "rollback" else None,
        )
        for i, r in enumerate(records)
    ]


_STAMPS = re.compile(r"(?m)^(?:version|updated)\s*:.*\n?")


def _restored(rollback: VersionRecord, earlier: list[VersionRecord]) -> int | None:
    """The latest earlier version with the rollback's content, its version and date stamps aside (a trainer's trial
    read 「v3 回滚」 and could not tell which version it had brought back)."""
    text = _STAMPS.sub("", rollback.content)
    return next((r.version for r in reversed(earlier) if r.content and _STAMPS.sub("", r.content) == text), None)


class DeletedOut(BaseModel):
    sop_id: str
    title: str = Field(description="删除前最后一版的标题")
    version: int = Field(description="删除所在的版本号（回滚到它之前的版本即可恢复）")
    ts: float
    author: str


@router.get("/v1/deleted-sops", response_model=list[DeletedOut], responses=ERRORS)
async def deleted_sops(_: TrainerRole, state: Ready) -> list[DeletedOut]:
    """已删除的 SOP（最新一版是删除的），最近删除的在前：打开后可回滚恢复。"""
    rows = await run_in_threadpool(state.publisher.deleted)
    return [DeletedOut(sop_id=r.sop_id, title=t, version=r.version, ts=r.ts, author=r.author) for r, t in rows]


@router.get("/v1/sops/{sop_id}/versions/{version}", response_model=VersionContent, responses=ERRORS)
def version_content(
    sop_id: SopId, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], _: TrainerRole, state: Ready
) -> VersionContent:
    r = state.publisher.version(sop_id, version)
    if r is None:
        raise HTTPException(404, f"SOP {sop_id} 没有版本 {version}")
    return VersionContent(version=r.version, ts=r.ts, action=r.action, author=r.author, path=r.path, content=r.content)


@router.get("/v1/sops/{sop_id}/diff", response_model=str, responses=ERRORS)
def diff(
    sop_id: SopId,
    _: TrainerRole,
    state: Ready,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
) -> str:
    """Unified diff between two versions."""
    return state.publisher.diff(sop_id, from_version, to_version)


@router.post("/v1/sops/{sop_id}/rollback", response_model=PublishResult, responses=ERRORS)
async def rollback(sop_id: SopId, body: RollbackRequest, caller: TrainerCaller, state: Ready) -> PublishResult:
    """回滚：把旧版本内容作为新版本重新发布（改动了步骤、话术、时限或升级处理时坐席会收到变更确认卡片）。"""
    before = state.kb.searcher.catalog.get(sop_id)
    res = await run_in_threadpool(
        state.publisher.rollback, sop_id, body.to_version, base_version=body.base_version, author=caller.name
    )
    # the versions between the one restored and the new one are taken back: their cards are withdrawn
    undone = list(range(body.to_version + 1, res.version))
    await run_in_threadpool(record_change, state, before, sop_id, res.version, caller.name, undone)
    return res


@router.post("/v1/preview", response_model=Preview, responses=ERRORS, openapi_extra=MARKDOWN_BODY)
async def preview(request: Request, _: TrainerRole, state: Ready) -> Preview:
    """预览：文档将如何切块和索引（不发布），以及每个小节对谁可见、为什么。

    Parsing runs in a worker thread: a hostile document must never hold up the event loop's other requests."""
    raw = await _markdown(request)
    catalog = state.kb.searcher.catalog
    return await run_in_threadpool(
        preview_bytes,
        "preview.md",
        raw,
        state.settings.sops_dir,
        published=lambda: every_sop(catalog),
        urgent_categories=state.settings.urgent_category_set,
    )


class DraftHitsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"markdown": "---\nid: pest-cockroach\n…", "queries": ["厨房老有小强"]}]},
    )

    markdown: str = Field(min_length=1, max_length=200_000, description="草稿全文（与发布时提交的 Markdown 相同）")
    queries: list[str] = Field(min_length=1, max_length=10, description="要测试的租客问法（1–10 条）")


@router.post("/v1/preview/hits", response_model=DraftHits, responses=ERRORS)
async def preview_hits(body: DraftHitsRequest, _: TrainerRole, state: Ready) -> DraftHits:
    """草稿命中测试：不发布，把草稿按发布时的方式建一份临时索引，检索这些问法，看草稿排第几（随后丢弃临时索引）。
    A hit test of a draft: indexed as a publish would, searched, dropped (about as long as a publish takes)."""
    limit = state.settings.max_query_chars
    queries = [q.strip() for q in body.queries if q.strip()]
    if not queries or any(len(q) > limit for q in queries):
        raise HTTPException(422, f"每条问法 1–{limit} 个字 / each query 1–{limit} characters")
    try:
        return await run_in_threadpool(draft_hits, state.kb, body.markdown.encode("utf-8"), queries)
    except DraftInvalidError as exc:
        raise HTTPException(422, str(exc)) from exc
