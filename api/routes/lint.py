"""The whole knowledge base checked, for trainers: what `kb lint` prints, listed in the workspace (a trainer without a
shell saw problems only document by document, in the preview of the one open in the editor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, TrainerRole
from api.schemas import ErrorResponse
from ingest.folder_check import check_folder
from ingest.text_search import find_text

router = APIRouter(tags=["培训师 trainer"])


class LintIssue(BaseModel):
    path: str = Field(description="The file, relative to the SOP folder")
    sop_id: str | None = Field(description="The document's id (null for a file that does not parse)")
    line: int
    severity: str = Field(description="error | warning")
    message: str


class LintOut(BaseModel):
    documents: int
    errors: int
    warnings: int
    issues: list[LintIssue]


@router.get("/v1/lint", response_model=LintOut, responses={s: {"model": ErrorResponse} for s in (401, 403, 503)})
async def lint(_: TrainerRole, state: Ready) -> LintOut:
    """检查全部文档（与 `kb lint` 相同）：每个问题的文件、行号、错误或警告和说明。"""
    folder = state.settings.sops_dir
    checked = await run_in_threadpool(check_folder, [folder], state.settings.urgent_category_set, folder)
    ids = {sop.path: sop_id for sop_id, sop in checked.corpus.sops.items()}
    issues = [
        LintIssue(path=i.path, sop_id=ids.get(i.path), line=i.line, severity=i.severity, message=i.message)
        for i in checked.issues
    ]
    return LintOut(documents=checked.documents, errors=checked.errors, warnings=checked.warnings, issues=issues)


class TextLine(BaseModel):
    line: int
    text: str


class TextDocument(BaseModel):
    sop_id: str
    title: str
    path: str
    lines: list[TextLine]
    more: int = Field(description="该文档中超出列出条数的其他匹配行数")


class TextSearchOut(BaseModel):
    query: str
    documents: int = Field(description="包含这段文字的文档总数（列出至多 100 份）")
    results: list[TextDocument]


@router.get(
    "/v1/text-search",
    response_model=TextSearchOut,
    responses={s: {"model": ErrorResponse} for s in (401, 403, 422, 503)},
)
async def text_search(
    _: TrainerRole, state: Ready, q: Annotated[str, Query(min_length=1, max_length=100, description="要找的文字")]
) -> TextSearchOut:
    """在所有已发布 SOP 的文件（含 [内部] 小节和文件头）中查找一段文字，忽略空格和全角半角：
    改一条规则时找出写了它的每份文档。"""
    found, total = await run_in_threadpool(find_text, state.kb.searcher.catalog, state.settings.sops_dir, q)
    results = [
        TextDocument(
            sop_id=d.sop_id,
            title=d.title,
            path=d.path,
            lines=[TextLine(line=h.line, text=h.text) for h in d.lines],
            more=d.more,
        )
        for d in found
    ]
    return TextSearchOut(query=q, documents=total, results=results)
