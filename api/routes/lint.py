"""The whole knowledge base checked, for trainers: what `kb lint` prints, listed in the workspace (a trainer without a
shell saw problems only document by document, in the preview of the one open in the editor)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, TrainerRole
from api.schemas import ErrorResponse
from ingest.folder_check import check_folder

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
